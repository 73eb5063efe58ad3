"""MLP 784-1000-1000-10 training step (batch 256, SGD momentum): Dragon vs PyTorch CPU.

    python bench/mlp.py [--threads 2] [--json out.json] [--keep-blas-env]

Both run in this process on the same data; prints each step time, the ratio
(target <= 1.0) and Dragon's FLOP rate against numpy's own sgemm peak.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import best_time, blas_description, report, use_native_blas_kernel  # noqa: E402

use_native_blas_kernel()

import numpy as np  # noqa: E402

import dragon  # noqa: E402

SIZES = (784, 1000, 1000, 10)


def dragon_step(batch, rng):
    x = dragon.placeholder((batch, SIZES[0]), name="bench_x")
    labels = dragon.placeholder((batch,), "int64", name="bench_y")
    h, params = x, []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        w = dragon.variable((rng.standard_normal((n_out, n_in)) * np.sqrt(2 / n_in)).astype("float32"),
                            name=f"bench_w{i}")
        b = dragon.variable(np.zeros(n_out, "float32"), name=f"bench_b{i}")
        h = dragon.ops.fully_connected(h, w, b)
        if i < len(SIZES) - 2:
            h = dragon.ops.relu(h)
        params += [w, b]
    loss, _ = dragon.ops.softmax_cross_entropy(h, labels)
    opt = dragon.updaters.SGD(lr=0.01, momentum=0.9)
    return dragon.function([x, labels], loss, updates=opt.minimize(loss, params)), params


def torch_step(torch, params):
    layers = []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        lin = torch.nn.Linear(n_in, n_out)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(params[2 * i].get_value()))
            lin.bias.zero_()
        layers.append(lin)
        if i < len(SIZES) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def sgemm_peak(repeat=5):
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype("float32")
    median, best = best_time(lambda: a @ a, repeat=repeat, warmup=1)
    return 2 * 2048 ** 3 / best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--json")
    parser.add_argument("--keep-blas-env", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((args.batch, SIZES[0])).astype("float32")
    yb = rng.integers(0, SIZES[-1], args.batch)
    step, params = dragon_step(args.batch, rng)
    rows = []
    d_median, _ = best_time(lambda: step(xb, yb), repeat=args.repeat)
    flops = 6 * args.batch * sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))
    peak = sgemm_peak()
    print(f"BLAS: {blas_description()}; numpy sgemm peak {peak / 1e9:.0f} GFLOP/s; "
          f"Dragon MLP {flops / d_median / 1e9:.0f} GFLOP/s = {flops / d_median / peak:.2f} of peak")
    row = {"workload": f"MLP {'-'.join(map(str, SIZES))} step, batch {args.batch}",
           "dragon_s": d_median, "flop_fraction_of_peak": flops / d_median / peak}
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed (pip install -e '.[bench]'): no peer timing")
    else:
        torch.set_num_threads(args.threads)
        t_step = torch_step(torch, params)
        tx, ty = torch.from_numpy(xb), torch.from_numpy(yb)
        t_median, _ = best_time(lambda: t_step(tx, ty), repeat=args.repeat)
        row.update(peer=f"torch {torch.__version__}", peer_s=t_median)
    rows.append(row)
    report(rows, args.json)


if __name__ == "__main__":
    main()
