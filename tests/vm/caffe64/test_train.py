"""Training and testing: the original's progress lines, output format, and MNIST accuracy."""
import io
import re

import numpy as np
import pytest

from dragon.vm import caffe64
from dragon.vm.caffe64 import Caffe64Error, Network, Optim, mnist

from ._shared import EXAMPLES, MNIST, need, quiet, toy_classifier_data, write

TRAIN_LINE = re.compile(r"^\[Training\] Epoch (\d+) / (\d+) MBIter (\d+) / (\d+) "
                        r"LR (\d+\.\d{6}) Loss (\d+\.\d{6})$")
TEST_LINE = re.compile(r"^\[Testing\] Epoch 1 / 1 MBIter (\d+) / (\d+)$")
ROW = re.compile(r"^-?\d+\.\d{6}( -?\d+\.\d{6})*$")


def losses(lines):
    return [float(m.group(6)) for m in map(TRAIN_LINE.match, lines) if m]


def test_regression_loss_decreases():
    net = Network.from_file(need(EXAMPLES / "image_reco" / "networkReg.txt"))
    optim = Optim.from_file(need(EXAMPLES / "image_reco" / "optimsetting.txt"))
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (2000, 2)).astype(np.float32)     # (x, y) -> intensity
    Y = (0.8 * np.sin(3 * X[:, 0]) * np.cos(2 * X[:, 1]))[:, None].astype(np.float32)
    lines = []
    params = caffe64.train(net, optim, X, Y, seed=0, log=lines.append)
    shown = losses(lines)
    assert len(shown) == optim.epochs   # 20 minibatches an epoch: one line each
    assert shown[-1] < 0.25 * shown[0]
    # the printed loss is the original's sum((y - t)^2) / B, averaged over 20 minibatches
    mse = float(((caffe64.test(net, params, X, log=quiet) - Y) ** 2).mean())
    assert mse == pytest.approx(shown[-1], rel=0.5)


def test_multi_output_regression_and_tanh_and_softmax_layers():
    net = Network.from_text("5\ninp 3 10\nlin 8 -1\ntnh\nlin 2 -1\nl2l\n")
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 3)).astype(np.float32)
    Y = np.stack([X[:, 0] - X[:, 1], 0.5 * X[:, 2]], 1).astype(np.float32)
    lines = []
    caffe64.train(net, Optim.from_text("0.05 100 1 0 0.9 20"), X, Y, seed=0, log=lines.append)
    assert losses(lines)[-1] < 0.2 * losses(lines)[0]
    soft = Network.from_text("3\ninp 3 10\nlin 4 -1\nsmx\n")
    out = caffe64.test(soft, caffe64.init_params(soft, seed=0), X, log=quiet)
    np.testing.assert_allclose(out.sum(1), 1, rtol=1e-5)


def test_progress_lines_and_lr_drops():
    net = Network.from_text("3\ninp 4 5\nlin 3 -1\nsce\n")
    X, y = toy_classifier_data(n=203)    # 40 minibatches of 5, 3 samples left over
    lines = []
    caffe64.train(net, Optim.from_text("0.01 2 0.1 0 0.9 3"), X, y, seed=0, log=lines.append)
    expected_heads = ["Epoch 1 / 3 MBIter 20 / 40 LR 0.010000", "Epoch 1 / 3 MBIter 40 / 40",
                      "", "Epoch 2 / 3 MBIter 20 / 40", "Epoch 2 / 3 MBIter 40 / 40", "",
                      "LR Drop. Multiplying by 0.100000", "Epoch 3 / 3 MBIter 20 / 40 LR 0.001000",
                      "Epoch 3 / 3 MBIter 40 / 40", ""]
    assert len(lines) == len(expected_heads)
    for line, head in zip(lines, expected_heads):
        assert head in line
        if "MBIter" in line:
            assert TRAIN_LINE.match(line)


def test_train_needs_a_loss_and_a_full_minibatch():
    X, y = toy_classifier_data(n=40)
    with pytest.raises(Caffe64Error, match="does not end in a loss"):
        caffe64.train(Network.from_text("2\ninp 4 8\nlin 3 -1\n"), Optim.from_text(
            "0.1 1 1 0 0 1"), X, y)
    with pytest.raises(Caffe64Error, match="40 samples do not fill one minibatch of 50"):
        caffe64.train(Network.from_text("3\ninp 4 50\nlin 3 -1\nsce\n"), Optim.from_text(
            "0.1 1 1 0 0 1"), X, y)


def test_cli_test_output_is_percent_f_rows(tmp_path):
    net_text = "5\ninp 4 8\nlin 5 -1\nrel\nlin 3 -1\nsce\n"
    net = Network.from_text(net_text)
    caffe64.write_weights(tmp_path / "w.bin", net, caffe64.init_params(net, seed=0))
    write(tmp_path / "net.txt", net_text)
    X, _ = toy_classifier_data(n=170)
    caffe64.write_matrix(tmp_path / "X.txt", X, fmt="%f")
    log = io.StringIO()
    d = str(tmp_path)
    assert caffe64.main(["test", f"{d}/net.txt", f"{d}/w.bin", "170", f"{d}/X.txt",
                         f"{d}/p.txt"], out=log) == 0
    rows = (tmp_path / "p.txt").read_text().splitlines()
    assert len(rows) == 170 and all(ROW.match(r) and len(r.split()) == 3 for r in rows)
    lines = log.getvalue().splitlines()
    assert lines[5:8] == ["Parsing net...", "Loading net...", "Loading X..."]
    # 22 minibatches of 8 (the last partial); the original prints the full ones' count
    assert [TEST_LINE.match(l).groups() for l in lines if TEST_LINE.match(l)] == [("20", "21")]
    assert re.match(r"^Finished normally in \d+s$", lines[-1])


def test_cli_usage_and_missing_files(tmp_path, capsys):
    assert caffe64.main([]) == 1
    assert "caffe64 train network.txt" in capsys.readouterr().err
    assert caffe64.main(["test", "nonet.txt", "w.bin", "3", "X.txt", "p.txt"]) == 1
    assert "Couldn't find file nonet.txt" in capsys.readouterr().err


@pytest.fixture(scope="module")
def mnist_files(tmp_path_factory):
    need(MNIST / "t10k-images-idx3-ubyte.gz")
    need(MNIST / "t10k-labels-idx1-ubyte.gz")
    images, labels = mnist.read_idx_pair(MNIST, "t10k")
    assert images.shape == (10000, 784) and labels.shape == (10000,)
    return mnist.write_split(images, labels, tmp_path_factory.mktemp("mnist"), 8000, 2000)


def test_mnist_through_the_cli_reaches_93_percent(mnist_files, tmp_path):
    network = need(EXAMPLES / "mnist" / "network5.txt")
    optim = need(EXAMPLES / "mnist" / "optimsetting.txt")
    weights, posteriors = tmp_path / "weights.bin", tmp_path / "p.txt"
    log = io.StringIO()
    assert caffe64.main(["train", str(network), str(weights), str(optim), "8000",
                         str(mnist_files["trainX"]), str(mnist_files["trainY"]),
                         "--seed", "0"], out=log) == 0
    lines = log.getvalue().splitlines()
    assert lines[5:8] == ["Parsing net...", "Loading X...", "Loading Y..."]
    assert TRAIN_LINE.match(lines[8]).groups()[:5] == ("01", "15", "20", "80", "0.000100")
    shown = losses(lines)
    assert len(shown) == 15 * 4 and shown[-1] < 0.5 * shown[0]
    assert lines.count("LR Drop. Multiplying by 0.100000") == 3
    assert weights.stat().st_size == 8 + 5 * 8 + 4 * (784 * 100 + 100 + 100 * 10 + 10)
    assert caffe64.main(["test", str(network), str(weights), "2000",
                         str(mnist_files["testX"]), str(posteriors)], out=io.StringIO()) == 0
    p = np.loadtxt(posteriors)
    truth = np.loadtxt(mnist_files["testY"])
    assert p.shape == (2000, 10)
    accuracy = (p.argmax(1) == truth).mean()
    assert accuracy >= 0.93, f"test accuracy {accuracy:.3f}"


def test_train_and_test_leave_nothing_in_the_workspace():
    import dragon
    before = set(dragon.workspace.tensors())
    net = Network.from_text("3\ninp 4 5\nlin 3 -1\nsce\n")
    X, y = toy_classifier_data(n=20)
    params = caffe64.train(net, Optim.from_text("0.01 1 1 0 0.9 1"), X, y, seed=0, log=quiet)
    caffe64.test(net, params, X, log=quiet)
    assert {n for n in dragon.workspace.tensors() if n.startswith("caffe64_")} <= before
