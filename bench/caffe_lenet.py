"""Caffe LeNet training step (batch 64, lenet_solver.prototxt's SGD): Dragon vs PyTorch CPU.

    python bench/caffe_lenet.py [--threads 2] [--batch 64] [--json out.json] [--keep-blas-env]

Dragon runs ``caffe.SGDSolver.step(1)`` on the layers of
examples/mnist/lenet_train_test.prototxt (the Data layer replaced by an Input
layer fed through ``net.blobs``); PyTorch runs the same net (conv 20, pool,
conv 50, pool, fc 500, relu, fc 10, softmax loss) with SGD momentum 0.9,
weight decay 5e-4 and the bias lr multiplier 2. Both in this process, on the
same MNIST batches when /work/shared/data is present (random ones otherwise).
Prints each step time and the ratio (target <= 1.0).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import best_time, blas_description, report, use_native_blas_kernel  # noqa: E402

use_native_blas_kernel()

import numpy as np  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
EXAMPLES = DATA / "caffe" / "examples" / "mnist"


def lenet_train_net(batch):
    """lenet_train_test.prototxt's TRAIN net with an Input layer for data and label."""
    from dragon.vm.caffe import proto_io
    from dragon.vm.caffe.proto import caffe_pb2
    path = EXAMPLES / "lenet_train_test.prototxt"
    if path.is_file():
        net = proto_io.read_net(str(path))
    else:
        from dragon.vm.caffe.net_spec import layers as L, params as P, NetSpec
        n = NetSpec()
        n.data, n.label = L.Data(ntop=2)
        fill = dict(weight_filler=dict(type="xavier"), bias_filler=dict(type="constant"),
                    param=[dict(lr_mult=1), dict(lr_mult=2)])
        n.conv1 = L.Convolution(n.data, num_output=20, kernel_size=5, **fill)
        n.pool1 = L.Pooling(n.conv1, pool=P.Pooling.MAX, kernel_size=2, stride=2)
        n.conv2 = L.Convolution(n.pool1, num_output=50, kernel_size=5, **fill)
        n.pool2 = L.Pooling(n.conv2, pool=P.Pooling.MAX, kernel_size=2, stride=2)
        n.ip1 = L.InnerProduct(n.pool2, num_output=500, **fill)
        n.relu1 = L.ReLU(n.ip1, in_place=True)
        n.ip2 = L.InnerProduct(n.relu1, num_output=10, **fill)
        n.loss = L.SoftmaxWithLoss(n.ip2, n.label)
        net = n.to_proto()
    layers = []
    for layer in net.layer:
        if any(rule.phase == caffe_pb2.TEST for rule in layer.include):
            continue
        if layer.type == "Data":
            data = caffe_pb2.LayerParameter(name=layer.name, type="Input", top=list(layer.top))
            data.input_param.shape.add(dim=[batch, 1, 28, 28])
            data.input_param.shape.add(dim=[batch])
            layer = data
        layers.append(layer)
    del net.layer[:]
    net.layer.extend(layers)
    return net


def solver_param(batch):
    from dragon.vm.caffe import proto_io
    from dragon.vm.caffe.proto import caffe_pb2
    path = EXAMPLES / "lenet_solver.prototxt"
    if path.is_file():
        param = proto_io.read_solver(str(path))
    else:
        param = caffe_pb2.SolverParameter(base_lr=0.01, momentum=0.9, weight_decay=5e-4,
                                          lr_policy="inv", gamma=1e-4, power=0.75)
    param.ClearField("net")
    param.net_param.CopyFrom(lenet_train_net(batch))
    param.ClearField("test_iter")
    param.test_interval = 0
    param.display = 0
    param.snapshot = 0
    param.snapshot_after_train = False
    return param


def batches(batch, count, rng):
    try:
        from dragon.vm.caffe import mnist
        images, labels = mnist.load(DATA / "mnist")
        images = images[:8000].astype(np.float32) * np.float32(0.00390625)
        labels = labels[:8000]
    except (FileNotFoundError, OSError):
        images = rng.random((count * batch, 1, 28, 28), dtype=np.float32)
        labels = rng.integers(0, 10, count * batch)
    return [(images[i * batch:(i + 1) * batch], labels[i * batch:(i + 1) * batch])
            for i in range(count)]


def dragon_step(batch, data):
    import dragon
    from dragon.vm import caffe
    dragon.config.set_logging_level("WARNING")
    solver = caffe.SGDSolver(solver_param(batch))
    net = solver.net
    state = {"i": 0}

    def step():
        x, y = data[state["i"] % len(data)]
        state["i"] += 1
        net.blobs["data"].data[...] = x
        net.blobs["label"].data[...] = y
        solver.step(1)
    return step, solver


def torch_step(torch, solver, data):
    nn = torch.nn

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 20, 5)
            self.conv2 = nn.Conv2d(20, 50, 5)
            self.ip1 = nn.Linear(800, 500)
            self.ip2 = nn.Linear(500, 10)

        def forward(self, x):
            x = nn.functional.max_pool2d(self.conv1(x), 2, 2)
            x = nn.functional.max_pool2d(self.conv2(x), 2, 2)
            x = nn.functional.relu(self.ip1(x.flatten(1)))
            return self.ip2(x)

    model = LeNet()
    with torch.no_grad():   # start from Dragon's initial weights
        for name in ("conv1", "conv2", "ip1", "ip2"):
            w, b = solver.net.params[name]
            getattr(model, name).weight.copy_(torch.from_numpy(np.array(w.data)))
            getattr(model, name).bias.copy_(torch.from_numpy(np.array(b.data)))
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    opt = torch.optim.SGD([{"params": weights}, {"params": biases, "lr": 0.02}],
                          lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    tensors = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data]
    state = {"i": 0}

    def step():
        x, y = tensors[state["i"] % len(tensors)]
        state["i"] += 1
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--json")
    parser.add_argument("--keep-blas-env", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    data = batches(args.batch, 16, rng)
    step, solver = dragon_step(args.batch, data)
    rows = []
    dragon_median, _ = best_time(step, repeat=args.repeat, warmup=5)
    row = {"workload": f"Caffe LeNet train step (batch {args.batch})", "dragon_s": dragon_median}
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: Dragon's time only")
    else:
        torch.set_num_threads(args.threads)
        peer = torch_step(torch, solver, data)
        peer_median, _ = best_time(peer, repeat=args.repeat, warmup=5)
        row.update(peer=f"PyTorch {torch.__version__.split('+')[0]} x{args.threads}",
                   peer_s=peer_median)
    rows.append(row)
    print(f"BLAS: {blas_description()}")
    report(rows, args.json)
    print(f"Dragon: {args.batch / dragon_median:.0f} images/s")


if __name__ == "__main__":
    main()
