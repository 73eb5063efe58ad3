"""weights.bin: the original's exact layout, round trips, and files that do not fit."""
import io
import struct

import numpy as np
import pytest

from dragon.vm import caffe64
from dragon.vm.caffe64 import Caffe64Error, Network, Optim

from ._shared import quiet, toy_classifier_data, write

NET = "5\ninp 4 8\nlin 5 -1\nrel\nlin 3 -1\nsce\n"


def test_layout_is_the_originals(tmp_path):
    net = Network.from_text("3\ninp 2 1\nlin 3 0\nl2l\n")
    W = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([10, 20, 30], np.float32)
    caffe64.write_weights(tmp_path / "w.bin", net, [None, (W, b), None])
    raw = (tmp_path / "w.bin").read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["w.bin"]  # no temporary file left
    expected = (struct.pack("<q", 3) + struct.pack("<q", 0) + struct.pack("<q", 9)
                + struct.pack("<9f", 0, 1, 2, 3, 4, 5, 10, 20, 30) + struct.pack("<q", 0))
    assert raw == expected


def test_train_save_load_test_gives_the_same_posteriors(tmp_path):
    net = Network.from_text(NET)
    optim = Optim.from_text("0.1 2 0.5 0.0001 0.9 3")
    X, y = toy_classifier_data()
    params = caffe64.train(net, optim, X, y, seed=1, log=quiet)
    caffe64.write_weights(tmp_path / "w.bin", net, params)
    loaded = caffe64.read_weights(tmp_path / "w.bin", net)
    for p, q in zip(params, loaded):
        assert (p is None) == (q is None)
        if p is not None:
            np.testing.assert_array_equal(p[0], q[0])
            np.testing.assert_array_equal(p[1], q[1])
    before = caffe64.test(net, params, X, log=quiet)
    after = caffe64.test(net, loaded, X, log=quiet)
    np.testing.assert_array_equal(before, after)
    assert (after.argmax(1) == y).mean() > 0.9
    np.testing.assert_allclose(after.sum(1), 1, rtol=1e-5)


def test_cli_round_trip(tmp_path):
    net = Network.from_text(NET)
    X, y = toy_classifier_data(n=96)
    caffe64.write_matrix(tmp_path / "X.txt", X, fmt="%f")
    caffe64.write_matrix(tmp_path / "Y.txt", y, fmt="%d")
    write(tmp_path / "net.txt", NET)
    write(tmp_path / "optim.txt", "0.1\n2\n0.5\n0.0001\n0.9\n2\n")
    d = str(tmp_path)
    assert caffe64.main(["train", f"{d}/net.txt", f"{d}/w.bin", f"{d}/optim.txt", "96",
                         f"{d}/X.txt", f"{d}/Y.txt", "--seed", "3"], out=io.StringIO()) == 0
    assert caffe64.main(["test", f"{d}/net.txt", f"{d}/w.bin", "96", f"{d}/X.txt",
                         f"{d}/p.txt"], out=io.StringIO()) == 0
    params = caffe64.read_weights(tmp_path / "w.bin", net)
    X_file = caffe64.read_matrix(tmp_path / "X.txt", 96, 4)
    expected = caffe64.test(net, params, X_file, log=quiet)
    written = np.loadtxt(tmp_path / "p.txt")
    np.testing.assert_allclose(written, expected, atol=5e-7)


def wrong_size_message(tmp_path, written_net, read_net):
    path = tmp_path / "w.bin"
    net = Network.from_text(written_net)
    caffe64.write_weights(path, net, caffe64.init_params(net, seed=0))
    with pytest.raises(Caffe64Error) as info:
        caffe64.read_weights(path, Network.from_text(read_net, "other.txt"))
    return str(info.value)


def test_wrong_size_names_expected_and_actual_counts(tmp_path):
    message = wrong_size_message(tmp_path, NET, NET.replace("lin 5 -1", "lin 6 -1"))
    # lin 4 -> 5: 25 parameters written; lin 4 -> 6 expects 30
    assert "w.bin" in message and "layer 2" in message and "other.txt line 3" in message
    assert "25 parameters in the file" in message and "expects 30" in message


def test_wrong_layer_count_and_truncation(tmp_path):
    message = wrong_size_message(tmp_path, NET, "3\ninp 4 8\nlin 3 -1\nsce\n")
    assert "holds 5 layers" in message and "has 3" in message
    net = Network.from_text(NET)
    path = tmp_path / "w.bin"
    caffe64.write_weights(path, net, caffe64.init_params(net, seed=0))
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(Caffe64Error, match=r"ends inside layer 4; expected 18 parameters"):
        caffe64.read_weights(path, net)
    caffe64.write_weights(path, net, caffe64.init_params(net, seed=0))
    path.write_bytes(path.read_bytes() + b"\0" * 8)
    with pytest.raises(Caffe64Error, match=r"8 bytes after the last layer; .* expects 43 "
                                           r"parameters"):
        caffe64.read_weights(path, net)


def test_cli_rejects_weights_of_another_network(tmp_path, capsys):
    net = Network.from_text(NET)
    caffe64.write_weights(tmp_path / "w.bin", net, caffe64.init_params(net, seed=0))
    write(tmp_path / "net2.txt", NET.replace("lin 3 -1", "lin 2 -1"))
    caffe64.write_matrix(tmp_path / "X.txt", np.zeros((8, 4)), fmt="%f")
    d = str(tmp_path)
    status = caffe64.main(["test", f"{d}/net2.txt", f"{d}/w.bin", "8", f"{d}/X.txt",
                           f"{d}/p.txt"], out=io.StringIO())
    assert status == 1
    err = capsys.readouterr().err
    assert "18 parameters in the file" in err and "expects 12" in err
    assert not (tmp_path / "p.txt").exists()


def test_initial_weights_follow_the_scale_exponent():
    net = Network.from_text("3\ninp 300 4\nlin 200 -2\nl2l\n")
    W, b = caffe64.init_params(net, seed=0)[1]
    assert W.dtype == np.float32 and abs(W.std() - 0.01) < 0.001 and abs(W.mean()) < 0.001
    # the original fills the biases from the same Gaussian (not zeros)
    assert 0.005 < b.std() < 0.015
