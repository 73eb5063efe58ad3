"""Caffe2's workspace module: blobs, dtypes, workspaces, nets and serialized protos."""
import numpy as np
import pytest

from dragon.vm.caffe2.proto import caffe2_pb2
from dragon.vm.caffe2.python import core, utils, workspace


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.SwitchWorkspace("default", True)
    workspace.ResetWorkspace()
    yield
    workspace.SwitchWorkspace("default", True)
    workspace.ResetWorkspace()


DTYPES = [np.float16, np.float32, np.float64, np.bool_, np.int8, np.int16, np.int32, np.int64,
          np.uint8, np.uint16]


@pytest.mark.parametrize("dtype", DTYPES, ids=[np.dtype(d).name for d in DTYPES])
def test_feed_fetch_round_trip_keeps_dtype(dtype):
    value = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    assert workspace.FeedBlob("x", value) is True
    back = workspace.FetchBlob("x")
    assert back.dtype == np.dtype(dtype) and back.shape == (3, 4)
    np.testing.assert_array_equal(back, value)
    back[0, 0] = 1  # a copy: the blob is untouched
    assert workspace.FetchBlob("x")[0, 0] == value[0, 0]


def test_zero_d_and_scalars():
    workspace.FeedBlob("s", np.array(3.5, np.float32))
    assert workspace.FetchBlob("s").shape == () and workspace.FetchBlob("s") == 3.5
    workspace.FeedBlob("i", 7)
    assert workspace.FetchBlob("i").shape == () and workspace.FetchBlob("i") == 7


def test_blobs_has_blob_and_missing_blob():
    assert workspace.Blobs() == [] and not workspace.HasBlob("x")
    workspace.FeedBlob("x", np.ones(2, np.float32))
    workspace.FeedBlob(core.BlobReference("y"), np.ones(2, np.float32))
    assert workspace.Blobs() == ["x", "y"] and workspace.HasBlob("y")
    with pytest.raises(RuntimeError, match="nope"):
        workspace.FetchBlob("nope")
    a, b = workspace.FetchBlobs(["x", "y"])
    assert a.shape == b.shape == (2,)


def test_blobs_dict():
    workspace.blobs["w"] = np.full((2, 2), 2.0, np.float32)
    assert "w" in workspace.blobs and workspace.blobs["w"].sum() == 8.0
    assert list(workspace.blobs) == ["w"] and len(workspace.blobs) == 1


def test_feed_tensor_proto():
    proto = utils.NumpyArrayToCaffe2Tensor(np.arange(6, dtype=np.int32).reshape(2, 3), "t")
    workspace.FeedBlob("t", proto)
    np.testing.assert_array_equal(workspace.FetchBlob("t"), np.arange(6).reshape(2, 3))


def test_switch_workspace():
    workspace.FeedBlob("x", np.ones(3, np.float32))
    assert workspace.CurrentWorkspace() == "default"
    workspace.SwitchWorkspace("gutentag", True)
    assert workspace.CurrentWorkspace() == "gutentag" and workspace.Blobs() == []
    assert "gutentag" in workspace.Workspaces()
    workspace.SwitchWorkspace("default")
    assert workspace.Blobs() == ["x"]
    with pytest.raises(RuntimeError, match="nowhere"):
        workspace.SwitchWorkspace("nowhere")
    assert workspace.CurrentWorkspace() == "default"


def test_reset_workspace_drops_blobs_and_nets():
    net = core.Net("resettable")
    net.ConstantFill([], "c", shape=[2], value=1.0)
    workspace.CreateNet(net)
    assert workspace.ResetWorkspace() is True
    assert workspace.Blobs() == [] and workspace.Nets() == []
    with pytest.raises(RuntimeError, match="resettable"):
        workspace.RunNet(net)


def test_create_net_run_net_and_overwrite():
    net = core.Net("counter")
    net.Iter("it", "it")
    workspace.FeedBlob("it", np.zeros(1, np.int64))
    assert workspace.CreateNet(net) is True
    assert workspace.RunNet(net.Proto().name, num_iter=3) is True
    assert workspace.FetchBlob("it")[0] == 3
    with pytest.raises(RuntimeError, match="overwrite"):
        workspace.CreateNet(net)
    workspace.CreateNet(net, overwrite=True)
    workspace.RunNet(net)
    assert workspace.FetchBlob("it")[0] == 4


def test_protos_and_serialized_bytes_are_accepted():
    op = core.CreateOperator("ConstantFill", [], ["z"], shape=[2, 2], value=3.0)
    workspace.RunOperatorOnce(op.SerializeToString())
    assert workspace.FetchBlob("z").sum() == 12.0
    net = core.Net("bytes_net")
    net.Scale("z", "z2", scale=2.0)
    workspace.RunNetOnce(net.Proto().SerializeToString())
    assert workspace.FetchBlob("z2").sum() == 24.0
    workspace.CreateNet(workspace.StringifyProto(net))
    workspace.RunNet("bytes_net")
    workspace.RunOperatorsOnce([core.CreateOperator("Relu", ["z"], ["r"])])
    assert workspace.HasBlob("r")


def test_net_blobs_resize_between_runs():
    net = core.Net("resize")
    net.Relu("x", "y")
    workspace.FeedBlob("x", np.ones((1, 3), np.float32))
    workspace.CreateNet(net)
    for n in (2, 5, 2):
        workspace.FeedBlob("x", -np.ones((n, 3), np.float32))
        workspace.RunNet(net)
        assert workspace.FetchBlob("y").shape == (n, 3)
    other = core.Net("resize_again")
    other.Sigmoid("x", "y")   # another net writing the same blob with its own shape
    workspace.FeedBlob("x", np.zeros((4, 1), np.float32))
    workspace.RunNetOnce(other)
    np.testing.assert_allclose(workspace.FetchBlob("y"), 0.5)


def test_feed_between_runs_reaches_a_created_net():
    net = core.Net("refeed")
    net.Scale("x", "y", scale=3.0)
    workspace.FeedBlob("x", np.ones(4, np.float32))
    workspace.CreateNet(net)
    workspace.RunNet(net)
    workspace.FeedBlob("x", np.full(4, 2.0, np.float32))
    workspace.RunNet(net)
    np.testing.assert_allclose(workspace.FetchBlob("y"), 6.0)


def test_registered_operators_and_utilities():
    ops = workspace.RegisteredOperators()
    assert {"FC", "Conv", "WeightedSum", "TensorProtosDBInput"} <= set(ops)
    assert workspace.GlobalInit(["caffe2", "--caffe2_log_level=0"]) is True
    assert isinstance(workspace.NumGpuDevices(), int)
    t = utils.NumpyArrayToCaffe2Tensor(np.array([1.5, -2.0], np.float16))
    assert t.data_type == caffe2_pb2.TensorProto.FLOAT16
    np.testing.assert_array_equal(utils.Caffe2TensorToNumpyArray(t), [1.5, -2.0])
