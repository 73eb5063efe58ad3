"""Convolution micro-benchmarks: Dragon vs PyTorch CPU, forward and forward+backward.

    python bench/conv_micro.py [--threads 2] [--rounds 20] [--json out.json] [--keep-blas-env]

Workloads: a 3x3 convolution 64->64 on 8x64x56x56 and a depthwise 3x3 on
1x512x14x14 (both pad 1). Dragon runs compiled functions (feeding X, fetching
the results); the "kernels" column is the time of Dragon's convolution ops
alone, without the feed and fetch copies. Dragon and PyTorch run in alternating
blocks (not call by call: each library's idle worker threads spin for a while
and would steal the cores from the other) and each reports its best run.
Target: forward within ~1.5x of PyTorch with 2 threads.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import blas_description, report, use_native_blas_kernel  # noqa: E402

use_native_blas_kernel()

import numpy as np  # noqa: E402

import dragon  # noqa: E402

WORKLOADS = {
    "conv3x3 64->64 8x64x56x56": dict(x=(8, 64, 56, 56), w=(64, 64, 3, 3), group=1),
    "depthwise3x3 1x512x14x14": dict(x=(1, 512, 14, 14), w=(512, 1, 3, 3), group=512),
}


def dragon_functions(x_value, w_value, group):
    x = dragon.placeholder(x_value.shape, "float32", name="bench_x")
    w = dragon.variable(w_value, name="bench_w")
    y = dragon.ops.conv2d(x, w, pads=[1, 1], group=group)
    dy = dragon.placeholder(y.shape, "float32", name="bench_dy")
    dx, dw = dragon.grad(y, [x, w], grad_cost=dy)
    return dragon.function([x], y), dragon.function([x, dy], [y, dx, dw])


def torch_functions(torch, x_value, w_value, group):
    x, w = torch.from_numpy(x_value), torch.from_numpy(w_value)
    xg, wg = x.clone().requires_grad_(), w.clone().requires_grad_()

    def forward():
        with torch.no_grad():
            return torch.nn.functional.conv2d(x, w, padding=1, groups=group)

    def forward_backward(dy):
        xg.grad = wg.grad = None
        y = torch.nn.functional.conv2d(xg, wg, padding=1, groups=group)
        y.backward(dy)
        return y, xg.grad, wg.grad
    return forward, forward_backward


def _seconds(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def convolution_steps(function, feeds):
    """The bound calls of ``function``'s plan that run convolution ops."""
    function(*feeds)
    plan = function.last_plan
    return [call for step, call in zip(plan.steps, plan.calls)
            if step.op_def.type.startswith("Conv2d")]


def best_in_blocks(runs, rounds, blocks=2, warmup=3):
    """Best seconds of each named callable, run ``rounds`` times per block, blocks in turn."""
    best = {name: float("inf") for name in runs}
    for _ in range(blocks):
        for name, fn in runs.items():
            for _ in range(warmup):
                fn()
            best[name] = min([best[name]] + [_seconds(fn) for _ in range(rounds)])
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json")
    parser.add_argument("--keep-blas-env", action="store_true")
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed (pip install -e '.[bench]'): no peer timing")
    else:
        torch.set_num_threads(args.threads)
    print(f"BLAS: {blas_description()}; best of 2 blocks of {args.rounds} runs")
    rng = np.random.default_rng(0)
    rows = []
    for name, shapes in WORKLOADS.items():
        x = rng.standard_normal(shapes["x"]).astype("float32")
        w = (rng.standard_normal(shapes["w"]) * 0.1).astype("float32")
        forward, both = dragon_functions(x, w, shapes["group"])
        dy = rng.standard_normal(forward(x).shape).astype("float32")
        phases = {"forward": (forward, [x]), "forward+backward": (both, [x, dy])}
        if torch is not None:
            t_forward, t_both = torch_functions(torch, x, w, shapes["group"])
            t_dy = torch.from_numpy(dy)
            peers = {"forward": t_forward, "forward+backward": lambda: t_both(t_dy)}
        for phase, (function, feeds) in phases.items():
            steps = convolution_steps(function, feeds)
            runs = {"dragon": lambda: function(*feeds),
                    "kernels": lambda: [call() for call in steps]}
            if torch is not None:
                runs["peer"] = peers[phase]
            best = best_in_blocks(runs, args.rounds)
            row = {"workload": f"{name} {phase}", "dragon_s": best["dragon"],
                   "dragon_kernels_s": best["kernels"]}
            if torch is not None:
                row.update(peer=f"torch {torch.__version__}", peer_s=best["peer"])
            rows.append(row)
    report(rows, args.json)
    print("Dragon's convolution kernels alone (no feed/fetch copies):")
    for row in rows:
        ratio = row["dragon_kernels_s"] / row["peer_s"] if row.get("peer_s") else float("nan")
        kernels_ms = row["dragon_kernels_s"] * 1e3
        print(f"  {row['workload']:<50} {kernels_ms:8.2f} ms  ratio {ratio:5.2f}")


if __name__ == "__main__":
    main()
