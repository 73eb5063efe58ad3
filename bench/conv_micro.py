"""Convolution micro-benchmarks: Dragon vs PyTorch CPU, forward and forward+backward.

    python bench/conv_micro.py [--threads 2] [--json out.json] [--keep-blas-env]

Workloads: a 3x3 convolution 64->64 on 8x64x56x56 and a depthwise 3x3 on
1x512x14x14 (both pad 1). Dragon runs a compiled function (feeding X, fetching
the results); the "kernels" line adds the time of the vision ops alone.
Target: forward within ~1.5x of PyTorch with 2 threads.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import best_time, blas_description, report, use_native_blas_kernel  # noqa: E402

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
    x = torch.from_numpy(x_value)
    w = torch.from_numpy(w_value)
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


def kernel_seconds(function, feeds, repeat):
    """Median seconds per run spent in the vision ops of ``function``'s plan."""
    function(*feeds)
    profile = function.last_plan.profile(feeds, repeat=repeat)
    return sum(t for op, t in profile.items() if op.startswith("Conv2d")) / repeat


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=30)
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
    print(f"BLAS: {blas_description()}")
    rng = np.random.default_rng(0)
    rows = []
    for name, shapes in WORKLOADS.items():
        x = rng.standard_normal(shapes["x"]).astype("float32")
        w = (rng.standard_normal(shapes["w"]) * 0.1).astype("float32")
        forward, both = dragon_functions(x, w, shapes["group"])
        dy = rng.standard_normal(forward(x).shape).astype("float32")
        timed = {"forward": (lambda: forward(x), kernel_seconds(forward, [x], args.repeat)),
                 "forward+backward": (lambda: both(x, dy),
                                      kernel_seconds(both, [x, dy], args.repeat))}
        if torch is not None:
            t_forward, t_both = torch_functions(torch, x, w, shapes["group"])
            t_dy = torch.from_numpy(dy)
            peers = {"forward": t_forward, "forward+backward": lambda: t_both(t_dy)}
        for phase, (run, kernels) in timed.items():
            median, _ = best_time(run, repeat=args.repeat)
            row = {"workload": f"{name} {phase}", "dragon_s": median, "dragon_kernels_s": kernels}
            if torch is not None:
                row.update(peer=f"torch {torch.__version__}",
                           peer_s=best_time(peers[phase], repeat=args.repeat)[0])
            rows.append(row)
    report(rows, args.json)
    for row in rows:
        ratio = row["dragon_kernels_s"] / row["peer_s"] if row.get("peer_s") else float("nan")
        print(f"  {row['workload']:<50} kernels alone {row['dragon_kernels_s'] * 1e3:8.2f} ms"
              f"  ratio {ratio:5.2f}")


if __name__ == "__main__":
    main()
