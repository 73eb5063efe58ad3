"""Caffe2 LeNet training step (batch 64, SGD momentum): Dragon's Caffe2 front end vs PyTorch CPU.

    python bench/caffe2_lenet.py [--threads 2] [--rounds 20] [--json out.json] [--keep-blas-env]

The Caffe2 program is the MNIST tutorial's LeNet built with brew (conv 5x5 20,
max pool 2, conv 5x5 50, max pool 2, fc 500, relu, fc 10, softmax,
LabelCrossEntropy, AveragedLoss, accuracy, AddGradientOperators, build_sgd with
momentum); a step is one ``workspace.RunNet`` on fed data. PyTorch runs the same
network and update. The two run in alternating blocks (each library's idle
worker threads spin for a while and would steal the cores from the other) and
each reports the median of its better block.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import blas_description, report, use_native_blas_kernel  # noqa: E402

use_native_blas_kernel()

import numpy as np  # noqa: E402

from dragon.vm.caffe2.python import brew, model_helper, optimizer, workspace  # noqa: E402

BATCH, LR, MOMENTUM = 64, 0.01, 0.9


def caffe2_step(images, labels):
    model = model_helper.ModelHelper(name="bench_lenet")
    conv1 = brew.conv(model, "data", "conv1", dim_in=1, dim_out=20, kernel=5)
    pool1 = brew.max_pool(model, conv1, "pool1", kernel=2, stride=2)
    conv2 = brew.conv(model, pool1, "conv2", dim_in=20, dim_out=50, kernel=5)
    pool2 = brew.max_pool(model, conv2, "pool2", kernel=2, stride=2)
    fc3 = brew.fc(model, pool2, "fc3", dim_in=50 * 4 * 4, dim_out=500)
    fc3 = brew.relu(model, fc3, fc3)
    pred = brew.fc(model, fc3, "pred", 500, 10)
    softmax = brew.softmax(model, pred, "softmax")
    xent = model.LabelCrossEntropy([softmax, "label"], "xent")
    loss = model.AveragedLoss(xent, "loss")
    brew.accuracy(model, [softmax, "label"], "accuracy")
    model.AddGradientOperators([loss])
    optimizer.build_sgd(model, LR, momentum=MOMENTUM)
    workspace.ResetWorkspace()
    workspace.FeedBlob("data", images)
    workspace.FeedBlob("label", labels)
    workspace.RunNetOnce(model.param_init_net)
    workspace.CreateNet(model.net)
    weights = {str(p): workspace.FetchBlob(p) for p in model.params}
    return (lambda: workspace.RunNet(model.net)), weights


def torch_step(torch, weights):
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 20, 5), nn.MaxPool2d(2, 2), nn.Conv2d(20, 50, 5),
                        nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(800, 500), nn.ReLU(),
                        nn.Linear(500, 10))
    with torch.no_grad():
        for module, name in ((net[0], "conv1"), (net[2], "conv2"), (net[5], "fc3"),
                             (net[7], "pred")):
            module.weight.copy_(torch.from_numpy(weights[name + "_w"]))
            module.bias.copy_(torch.from_numpy(weights[name + "_b"]))
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = nn.CrossEntropyLoss()

    def step(x, y):
        opt.zero_grad(set_to_none=False)
        logits = net(x)
        loss = loss_fn(logits, y)
        (logits.argmax(1) == y).float().mean()
        loss.backward()
        opt.step()
        return loss
    return step


def median_in_blocks(runs, rounds, blocks=2, warmup=3):
    """Per named callable: the median seconds of its best block of ``rounds`` runs."""
    best = {name: float("inf") for name in runs}
    for _ in range(blocks):
        for name, fn in runs.items():
            for _ in range(warmup):
                fn()
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            best[name] = min(best[name], statistics.median(times))
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json")
    parser.add_argument("--keep-blas-env", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (BATCH, 1, 28, 28)).astype("float32")
    labels = rng.integers(0, 10, BATCH).astype("int32")
    step, weights = caffe2_step(images, labels)
    runs = {"dragon": step}
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch is not installed (pip install -e '.[bench]'): no peer timing")
    else:
        torch.set_num_threads(args.threads)
        t_step = torch_step(torch, weights)
        tx, ty = torch.from_numpy(images), torch.from_numpy(labels.astype("int64"))
        runs["torch"] = lambda: t_step(tx, ty)
    print(f"BLAS: {blas_description()}; median of the better of 2 blocks of {args.rounds} steps")
    times = median_in_blocks(runs, args.rounds)
    row = {"workload": f"Caffe2 LeNet training step, batch {BATCH}", "dragon_s": times["dragon"]}
    if torch is not None:
        row.update(peer=f"torch {torch.__version__}", peer_s=times["torch"])
    report([row], args.json)


if __name__ == "__main__":
    main()
