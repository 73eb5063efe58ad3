"""network.txt and optim.txt: the examples parse and build; malformed files name file and line."""
import numpy as np
import pytest

import dragon
from dragon.vm import caffe64
from dragon.vm.caffe64 import Caffe64Error, Network, Optim

from ._shared import EXAMPLES, need, quiet, write


def example_files():
    if not EXAMPLES.exists():
        return []
    return sorted(EXAMPLES.rglob("*.txt"))


def is_optim(path):
    return "optim" in path.name


@pytest.mark.parametrize("path", [p for p in example_files() if not is_optim(p)] or
                         [pytest.param(None, marks=pytest.mark.skip(
                             reason=f"{EXAMPLES} is absent"))],
                         ids=lambda p: p and f"{p.parent.name}/{p.name}")
def test_example_network_parses_and_builds(path):
    net = Network.from_file(path)
    assert net.layers[0].kind == "inp" and net.loss in ("sce", "l2l")
    params = caffe64.init_params(net, seed=0)
    for layer, p in zip(net.layers, params):
        if layer.kind == "lin":
            assert p[0].shape == (layer.inputs, layer.outputs) and p[1].shape == (layer.outputs,)
        else:
            assert p is None
    # one training step and one test pass through the compiled Dragon graph
    low = caffe64.lower(net, params, training=True)
    loss = dragon.function([low.x, low.labels], low.loss)
    x = np.zeros((net.batch, net.features), np.float32)
    y = (np.zeros(net.batch, np.int64) if net.loss == "sce"
         else np.zeros((net.batch, net.outputs), np.float32))
    assert np.isfinite(loss(x, y))
    out = caffe64.test(net, params, x[:3], log=quiet)
    assert out.shape == (3, net.outputs)


@pytest.mark.parametrize("path", [p for p in example_files() if is_optim(p)] or
                         [pytest.param(None, marks=pytest.mark.skip(
                             reason=f"{EXAMPLES} is absent"))],
                         ids=lambda p: p and f"{p.parent.name}/{p.name}")
def test_example_optim_parses(path):
    optim = Optim.from_file(path)
    assert optim.lr > 0 and optim.step >= 1 and optim.epochs >= 1


def test_mnist_network_is_the_documented_one():
    net = Network.from_file(need(EXAMPLES / "mnist" / "network5.txt"))
    assert [l.kind for l in net.layers] == ["inp", "lin", "rel", "lin", "sce"]
    assert (net.features, net.batch, net.outputs) == (784, 100, 10)
    assert net.param_counts() == [0, 784 * 100 + 100, 0, 100 * 10 + 10, 0]
    assert net.layers[1].exponent == -2
    optim = Optim.from_file(need(EXAMPLES / "mnist" / "optimsetting.txt"))
    assert (optim.lr, optim.step, optim.factor, optim.weight_decay, optim.momentum,
            optim.epochs) == (0.0001, 5, 0.1, 0.00001, 0.9, 15)


BAD_NETWORKS = [
    ("3\ninp 4 2\ncnv 3 -1\nsce\n", 3, "unknown layer 'cnv'"),
    ("3\ninp 4 2\nlin 3\nsce\n", 3, "'lin' takes two integers"),
    ("3\ninp 4 2\nlin 3 x\nsce\n", 3, "'lin' takes two integers"),
    ("3\ninp 4 2\nrel 1\nsce\n", 3, "'rel' takes no arguments"),
    ("3\nlin 3 -1\ninp 4 2\nsce\n", 2, "'inp' must be the first layer"),
    ("4\ninp 4 2\nsce\nlin 3 -1\nsce\n", 3, "must be the last layer"),
    ("4\ninp 4 2\nlin 3 -1\nsce\n", 4, "declares 4 layers but holds 3"),
    ("2\ninp 4 2\nlin 3 -1\nsce\n", 4, "this line would be layer 3"),
    ("three\ninp 4 2\n", 1, "number of layers"),
    ("2\ninp 0 2\nl2l\n", 2, "features >= 1"),
    ("2\ninp 4 2\nlin 0 -1\n", 3, "at least 1 output"),
]


@pytest.mark.parametrize("text,line,fragment", BAD_NETWORKS)
def test_malformed_network_names_file_and_line(tmp_path, text, line, fragment):
    path = write(tmp_path / "bad_net.txt", text)
    with pytest.raises(Caffe64Error) as info:
        Network.from_file(path)
    message = str(info.value)
    assert str(path) in message and f"line {line}:" in message and fragment in message


BAD_OPTIMS = [
    ("0.01\n5\n0.1\n0.0001\nfast\n15\n", 5, "'fast' is not a number (momentum)"),
    ("0.01\n0\n0.1\n0.0001\n0.9\n15\n", 2, "LR step must be >= 1"),
    ("0.01\n5\n0.1\n0.0001\n0.9\n0\n", 6, "number of epochs must be >= 1"),
    ("0.01\n5\n0.1\n-1\n0.9\n15\n", 4, "weight decay must be >= 0"),
    ("0.01\n5\n0.1\n0.0001\n0.9\n15\n7\n", 7, "more than 6 numbers"),
]


@pytest.mark.parametrize("text,line,fragment", BAD_OPTIMS)
def test_malformed_optim_names_file_and_line(tmp_path, text, line, fragment):
    path = write(tmp_path / "bad_optim.txt", text)
    with pytest.raises(Caffe64Error) as info:
        Optim.from_file(path)
    message = str(info.value)
    assert str(path) in message and f"line {line}:" in message and fragment in message


def test_short_optim_names_what_is_missing(tmp_path):
    path = write(tmp_path / "short.txt", "0.01\n5\n0.1\n")
    with pytest.raises(Caffe64Error, match=r"short\.txt: holds 3 numbers.*missing: weight decay"):
        Optim.from_file(path)


def test_optim_reads_any_spacing_and_rounds_counts_like_the_original():
    optim = Optim.from_text("0.01 8 0.1\n0.000001 0.99 20.0\n")
    assert (optim.step, optim.epochs, optim.momentum) == (8, 20, 0.99)


def test_network_from_text_infers_sizes():
    net = Network.from_text("4\ninp 2 5\nlin 7 -1\ntnh\nl2l\n")
    assert [(l.inputs, l.outputs) for l in net.layers] == [(2, 2), (2, 7), (7, 7), (7, 7)]
    assert net.loss == "l2l" and net.batch == 5


def test_missing_network_file_is_named(tmp_path):
    with pytest.raises(Caffe64Error, match=r"nowhere\.txt: cannot read"):
        Network.from_file(tmp_path / "nowhere.txt")
