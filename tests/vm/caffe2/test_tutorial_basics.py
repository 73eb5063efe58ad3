"""Caffe2's Basics tutorial, step by step, through the public API."""
import numpy as np
import pytest

from dragon.vm.caffe2.python import core, workspace


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.SwitchWorkspace("default", True)
    workspace.ResetWorkspace()
    yield
    workspace.SwitchWorkspace("default", True)
    workspace.ResetWorkspace()


def test_workspace_basics():
    assert workspace.Blobs() == []
    assert workspace.HasBlob("X") is False
    X = np.random.randn(2, 3).astype(np.float32)
    assert workspace.FeedBlob("X", X) is True
    assert workspace.Blobs() == ["X"] and workspace.HasBlob("X")
    np.testing.assert_array_equal(workspace.FetchBlob("X"), X)
    with pytest.raises(RuntimeError):
        workspace.FetchBlob("invincible_pink_unicorn")

    assert workspace.CurrentWorkspace() == "default"
    workspace.SwitchWorkspace("gutentag", True)
    assert workspace.CurrentWorkspace() == "gutentag" and workspace.Blobs() == []
    workspace.SwitchWorkspace("default")
    assert workspace.Blobs() == ["X"]
    workspace.ResetWorkspace()
    assert workspace.Blobs() == []


def test_operators():
    op = core.CreateOperator("Relu", ["X"], ["Y"])
    assert (op.type, list(op.input), list(op.output)) == ("Relu", ["X"], ["Y"])
    X = np.random.randn(2, 3).astype(np.float32)
    workspace.FeedBlob("X", X)
    assert workspace.RunOperatorOnce(op) is True
    np.testing.assert_array_equal(workspace.FetchBlob("Y"), np.maximum(X, 0))

    op = core.CreateOperator("GaussianFill", [], ["Z"], shape=[100, 100], mean=1.0, std=1.0)
    assert {a.name for a in op.arg} == {"shape", "mean", "std"}
    workspace.RunOperatorOnce(op)
    Z = workspace.FetchBlob("Z")
    assert Z.shape == (100, 100) and Z.dtype == np.float32
    assert abs(Z.mean() - 1.0) < 0.05 and abs(Z.std() - 1.0) < 0.05


def _first_net():
    net = core.Net("my_first_net")
    X = net.GaussianFill([], ["X"], mean=0.0, std=1.0, shape=[2, 3], run_once=0)
    W = net.GaussianFill([], ["W"], mean=0.0, std=1.0, shape=[5, 3], run_once=0)
    b = net.ConstantFill([], ["b"], shape=[5], value=1.0, run_once=0)
    Y = X.FC([W, b], ["Y"])
    return net, Y


def test_nets():
    net, Y = _first_net()
    assert Y == "Y" and isinstance(Y, core.BlobReference)
    proto = net.Proto()
    assert [op.type for op in proto.op] == ["GaussianFill", "GaussianFill", "ConstantFill", "FC"]
    assert list(proto.op[3].input) == ["X", "W", "b"]
    assert list(proto.external_input) == []

    workspace.ResetWorkspace()
    assert workspace.RunNetOnce(net) is True
    assert workspace.Blobs() == ["W", "X", "Y", "b"]
    X, W = workspace.FetchBlob("X"), workspace.FetchBlob("W")
    np.testing.assert_allclose(workspace.FetchBlob("Y"), X @ W.T + 1.0, rtol=1e-5)

    workspace.ResetWorkspace()
    workspace.CreateNet(net)
    workspace.RunNet(net.Proto().name)
    first = workspace.FetchBlob("X")
    for _ in range(10):
        workspace.RunNet(net.Proto().name)
    X, W = workspace.FetchBlob("X"), workspace.FetchBlob("W")
    assert not np.array_equal(first, X)          # the fills draw anew every run
    np.testing.assert_allclose(workspace.FetchBlob("Y"), X @ W.T + 1.0, rtol=1e-5)
