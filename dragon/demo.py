"""The main job: train a small net on scikit-learn's 8x8 digits, print test accuracy.

Run ``python -m dragon.demo``. The same two-layer classifier is trained through
each front end that exists, all lowering to the one engine:

- ``core``: ``dragon.function`` with the SGD updater, written directly.
- ``caffe``: the same net as a Caffe prototxt with MemoryData layers, trained by
  pycaffe's ``SGDSolver`` through ``dragon.vm.caffe``.
- ``caffe2``: the same net built with Caffe2's ``ModelHelper``, ``brew`` and
  ``optimizer.build_sgd`` through ``dragon.vm.caffe2``.
- ``theano``: the same net as a Theano program (``theano.function`` with
  ``T.grad`` updates) through ``dragon.vm.theano``.
- ``caffe64``: the same net as a Caffe64 network.txt and optim.txt, through
  ``dragon.vm.caffe64`` (the original's text formats and training rule).

Each prints its test accuracy on the last 30% of the 1,797 digits.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import dragon


def load_digits(seed=0):
    """(x_train, y_train, x_test, y_test) from sklearn's digits, pixels scaled to [0, 1]."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise SystemExit("the demo needs scikit-learn: pip install -e '.[demo]'") from None
    digits = sk_load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int64")
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    split = int(0.7 * len(x))
    return x[:split], y[:split], x[split:], y[split:]


def train_core(data, epochs=30, batch=32, hidden=64, seed=0):
    """The classifier written against the core API; returns test accuracy."""
    x_train, y_train, x_test, y_test = data
    rng = np.random.default_rng(seed)
    with dragon.name_scope("demo_core"):
        x = dragon.placeholder((None, 64), name="x")
        labels = dragon.placeholder((None,), "int64", name="labels")
        w1 = dragon.variable((rng.standard_normal((hidden, 64)) * 0.1).astype("float32"), name="w1")
        b1 = dragon.variable(np.zeros(hidden, "float32"), name="b1")
        w2 = dragon.variable((rng.standard_normal((10, hidden)) * 0.1).astype("float32"), name="w2")
        b2 = dragon.variable(np.zeros(10, "float32"), name="b2")
        hid = dragon.ops.relu(dragon.ops.fully_connected(x, w1, b1))
        logits = dragon.ops.fully_connected(hid, w2, b2)
        loss, _ = dragon.ops.softmax_cross_entropy(logits, labels)
        opt = dragon.updaters.SGD(lr=0.1, momentum=0.9)
        train = dragon.function([x, labels], loss, updates=opt.minimize(loss, [w1, b1, w2, b2]))
        predict = dragon.function([x], dragon.ops.arg_max(logits, axis=1))
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for i in range(0, len(order) - batch + 1, batch):
            idx = order[i:i + batch]
            train(x_train[idx], y_train[idx])
    return float((predict(x_test) == y_test).mean())


CAFFE_NET = """
name: "digits"
layer { name: "data" type: "MemoryData" top: "data" top: "label"
        memory_data_param { batch_size: 32 channels: 64 height: 1 width: 1 } }
layer { name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1"
        inner_product_param { num_output: 64 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "relu1" type: "ReLU" bottom: "ip1" top: "ip1" }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2"
        inner_product_param { num_output: 10 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
"""
CAFFE_SOLVER = """
base_lr: 0.1 momentum: 0.9 lr_policy: "fixed" max_iter: 1170 display: 0
snapshot_after_train: false random_seed: 0 solver_mode: CPU
"""


def train_caffe(data, epochs=30, batch=32):
    """The classifier as a Caffe prototxt, trained by pycaffe's SGDSolver; returns test accuracy."""
    from google.protobuf import text_format

    import dragon.vm.caffe as caffe
    from dragon.vm.caffe.proto import caffe_pb2
    x_train, y_train, x_test, y_test = data
    param = text_format.Parse(CAFFE_SOLVER, caffe_pb2.SolverParameter())
    text_format.Parse(CAFFE_NET, param.net_param)
    param.max_iter = epochs * (len(x_train) // batch)
    dragon.config.set_logging_level("WARNING")  # the solver's glog lines would drown the summary
    solver = caffe.SGDSolver(param)
    usable = len(x_train) // batch * batch  # MemoryData takes whole batches, as in Caffe
    solver.net.set_input_arrays(x_train[:usable].reshape(-1, 64, 1, 1),
                                y_train[:usable].astype("float32"))
    solver.solve()
    dragon.config.set_logging_level("INFO")
    net = solver.net
    correct = 0
    for i in range(0, len(x_test) - batch + 1, batch):
        net.blobs["data"].data[...] = x_test[i:i + batch].reshape(-1, 64, 1, 1)
        net.forward(start="ip1", end="ip2")
        correct += int((net.blobs["ip2"].data.argmax(axis=1) == y_test[i:i + batch]).sum())
    return correct / (len(x_test) // batch * batch)


def train_caffe2(data, epochs=30, batch=32):
    """The classifier built with Caffe2's brew and optimizer; returns test accuracy."""
    from dragon.vm.caffe2.python import brew, model_helper, optimizer, workspace
    x_train, y_train, x_test, y_test = data
    workspace.SwitchWorkspace("demo_caffe2", True)
    model = model_helper.ModelHelper(name="digits")
    hidden = brew.relu(model, brew.fc(model, "data", "fc1", dim_in=64, dim_out=64), "fc1")
    logits = brew.fc(model, hidden, "fc2", dim_in=64, dim_out=10)
    softmax = brew.softmax(model, logits, "softmax")
    xent = model.LabelCrossEntropy([softmax, "label"], "xent")
    loss = model.AveragedLoss(xent, "loss")
    model.AddGradientOperators([loss])
    optimizer.build_sgd(model, 0.1, policy="fixed", momentum=0.9)
    workspace.FeedBlob("data", x_train[:batch])
    workspace.FeedBlob("label", y_train[:batch].astype("int32"))
    workspace.RunNetOnce(model.param_init_net)
    workspace.CreateNet(model.net)
    rng = np.random.default_rng(0)
    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for i in range(0, len(order) - batch + 1, batch):
            idx = order[i:i + batch]
            workspace.FeedBlob("data", x_train[idx])
            workspace.FeedBlob("label", y_train[idx].astype("int32"))
            workspace.RunNet(model.net.Proto().name)
    workspace.FeedBlob("data", x_test)
    workspace.FeedBlob("label", y_test.astype("int32"))
    workspace.RunNetOnce(model.net)  # one more pass just to score the test set
    accuracy = float((workspace.FetchBlob("softmax").argmax(axis=1) == y_test).mean())
    workspace.SwitchWorkspace("default")
    return accuracy


CAFFE64_NETWORK = """5
inp 64 32
lin 64 -1
rel
lin 10 -1
sce
"""
CAFFE64_OPTIM = "0.1\n20\n0.1\n0.0001\n0.9\n30\n"  # lr, step, drop, decay, momentum, epochs


def train_caffe64(data, seed=0):
    """The classifier as a Caffe64 network file; returns test accuracy."""
    from dragon.vm import caffe64
    x_train, y_train, x_test, y_test = data
    net = caffe64.Network.from_text(CAFFE64_NETWORK)
    optim = caffe64.Optim.from_text(CAFFE64_OPTIM)
    params = caffe64.train(net, optim, x_train, y_train, seed=seed, log=lambda *a: None)
    posteriors = caffe64.test(net, params, x_test, log=lambda *a: None)
    return float((posteriors.argmax(axis=1) == y_test).mean())


def train_theano(data):
    """The classifier as a classic Theano program; returns test accuracy."""
    from dragon.vm.theano.demo_digits import train_digits
    return train_digits(data)


FRONT_ENDS = {"core": train_core, "caffe": train_caffe, "caffe2": train_caffe2,
              "theano": train_theano, "caffe64": train_caffe64}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--front-end", choices=sorted(FRONT_ENDS), action="append",
                        help="run only these front ends (default: all)")
    args = parser.parse_args(argv)
    data = load_digits()
    print(f"digits: {len(data[0])} training and {len(data[2])} test images (8x8)")
    for name in args.front_end or list(FRONT_ENDS):
        start = time.perf_counter()
        accuracy = FRONT_ENDS[name](data)
        print(f"{name:>8}: test accuracy {accuracy:.2%} ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
