"""Caffe64 on Dragon: the original's text formats, weights.bin and train/test commands.

    from dragon.vm import caffe64
    net = caffe64.Network.from_file("mnist/network5.txt")
    optim = caffe64.Optim.from_file("mnist/optimsetting.txt")
    X = caffe64.read_matrix("trainX.txt", rows=8000, cols=net.features)
    y = caffe64.read_labels("trainY.txt", rows=8000, classes=net.outputs)
    params = caffe64.train(net, optim, X, y)
    caffe64.write_weights("weights.bin", net, params)
    posteriors = caffe64.test(net, caffe64.read_weights("weights.bin", net), X[:100])

The command line is ``python -m dragon.vm.caffe64 train|test ...`` (see ``cli``).
"""
from dragon.vm.caffe64.data import read_labels, read_matrix, write_matrix  # noqa: F401
from dragon.vm.caffe64.errors import Caffe64Error  # noqa: F401
from dragon.vm.caffe64.formats import Layer, Network, Optim  # noqa: F401
from dragon.vm.caffe64.net import lower, test, train  # noqa: F401
from dragon.vm.caffe64.weights import init_params, read_weights, write_weights  # noqa: F401
from dragon.vm.caffe64.cli import main  # noqa: F401,E402
