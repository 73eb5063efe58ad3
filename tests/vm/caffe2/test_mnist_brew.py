"""Caffe2's MNIST tutorial with brew: LeNet trained from an LMDB of TensorProtos.

Trains on the first 8,000 images of MNIST's t10k set and tests on the last 2,000
with a test model that shares the parameters (init_params=False).
"""
from pathlib import Path

import numpy as np
import pytest

import dragon
from dragon.vm.caffe2.proto import caffe2_pb2
from dragon.vm.caffe2.python import brew, core, mnist_lmdb, model_helper, workspace
from dragon.vm.caffe2.python.helpers.db_input import DBReader

MNIST = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mnist"
IMAGES, LABELS = MNIST / "t10k-images-idx3-ubyte.gz", MNIST / "t10k-labels-idx1-ubyte.gz"

pytestmark = pytest.mark.skipif(not IMAGES.exists() or not LABELS.exists(),
                                reason=f"MNIST IDX files not found in {MNIST}")


@pytest.fixture(scope="module")
def dbs(tmp_path_factory):
    pytest.importorskip("lmdb", reason="lmdb (the data extra) is not installed")
    root = tmp_path_factory.mktemp("mnist")
    train, test = root / "mnist-train-nchw-lmdb", root / "mnist-test-nchw-lmdb"
    assert mnist_lmdb.write_lmdb(IMAGES, LABELS, train, start=0, count=8000) == 8000
    assert mnist_lmdb.write_lmdb(IMAGES, LABELS, test, start=8000) == 2000
    return str(train), str(test)


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def add_input(model, batch_size, db, db_type):
    data_uint8, label = model.TensorProtosDBInput(
        [], ["data_uint8", "label"], batch_size=batch_size, db=db, db_type=db_type)
    data = model.Cast(data_uint8, "data", to=core.DataType.FLOAT)
    data = model.Scale(data, data, scale=float(1. / 256))
    data = model.StopGradient(data, data)
    return data, label


def add_lenet(model, data):
    conv1 = brew.conv(model, data, "conv1", dim_in=1, dim_out=20, kernel=5)
    pool1 = brew.max_pool(model, conv1, "pool1", kernel=2, stride=2)
    conv2 = brew.conv(model, pool1, "conv2", dim_in=20, dim_out=50, kernel=5)
    pool2 = brew.max_pool(model, conv2, "pool2", kernel=2, stride=2)
    fc3 = brew.fc(model, pool2, "fc3", dim_in=50 * 4 * 4, dim_out=500)
    relu = brew.relu(model, fc3, fc3)
    pred = brew.fc(model, relu, "pred", 500, 10)
    return brew.softmax(model, pred, "softmax")


def add_accuracy(model, softmax, label):
    return brew.accuracy(model, [softmax, label], "accuracy")


def add_training_operators(model, softmax, label):
    xent = model.LabelCrossEntropy([softmax, label], "xent")
    loss = model.AveragedLoss(xent, "loss")
    add_accuracy(model, softmax, label)
    model.AddGradientOperators([loss])
    ITER = brew.iter(model, "iter")
    LR = model.LearningRate(ITER, "LR", base_lr=-0.2, policy="step", stepsize=1, gamma=0.999)
    ONE = model.param_init_net.ConstantFill([], "ONE", shape=[1], value=1.0)
    for param in model.params:
        param_grad = model.param_to_grad[param]
        model.WeightedSum([param, ONE, param_grad, LR], param)


def test_lmdb_holds_tensor_protos(dbs):
    import lmdb
    env = lmdb.open(dbs[0], readonly=True, lock=False)
    with env.begin() as txn:
        assert txn.stat()["entries"] == 8000
        protos = caffe2_pb2.TensorProtos.FromString(txn.get(b"00000000")).protos
    env.close()
    image, label = protos
    assert image.data_type == caffe2_pb2.TensorProto.BYTE and list(image.dims) == [1, 28, 28]
    assert label.data_type == caffe2_pb2.TensorProto.INT32 and len(label.int32_data) == 1
    expected = mnist_lmdb.read_idx_images(IMAGES)[0]
    np.testing.assert_array_equal(np.frombuffer(image.byte_data, np.uint8).reshape(28, 28),
                                  expected)
    reader = DBReader(dbs[1])
    images, labels = reader.read(3)
    assert images.shape == (3, 1, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (3,) and labels.dtype == np.int32
    np.testing.assert_array_equal(labels, mnist_lmdb.read_idx_labels(LABELS)[8000:8003])
    assert len(reader) == 2000


def test_lenet_reaches_97_percent(dbs):
    dragon.config.set_random_seed(5)
    arg_scope = {"order": "NCHW"}
    train_model = model_helper.ModelHelper(name="mnist_train", arg_scope=arg_scope)
    data, label = add_input(train_model, batch_size=64, db=dbs[0], db_type="lmdb")
    softmax = add_lenet(train_model, data)
    add_training_operators(train_model, softmax, label)
    assert [str(p) for p in train_model.GetParams()] == [
        "conv1_w", "conv1_b", "conv2_w", "conv2_b", "fc3_w", "fc3_b", "pred_w", "pred_b"]
    assert train_model.param_init_net.Name() == "mnist_train_init"

    test_model = model_helper.ModelHelper(name="mnist_test", arg_scope=arg_scope,
                                          init_params=False)
    data, label = add_input(test_model, batch_size=100, db=dbs[1], db_type="lmdb")
    softmax = add_lenet(test_model, data)
    add_accuracy(test_model, softmax, label)
    assert [op.type for op in test_model.param_init_net.Proto().op] == ["CreateDB"]

    deploy_model = model_helper.ModelHelper(name="mnist_deploy", arg_scope=arg_scope,
                                            init_params=False)
    add_lenet(deploy_model, "data")

    workspace.RunNetOnce(train_model.param_init_net)
    workspace.CreateNet(train_model.net, overwrite=True)
    losses = []
    for _ in range(500):  # four passes over the 8,000 images
        workspace.RunNet(train_model.net)
        losses.append(float(workspace.blobs["loss"]))
    assert np.mean(losses[-50:]) < 0.2 < np.mean(losses[:20])
    assert workspace.FetchBlob("iter")[0] == 500

    workspace.RunNetOnce(test_model.param_init_net)
    workspace.CreateNet(test_model.net, overwrite=True)
    accuracy = []
    for _ in range(20):
        workspace.RunNet(test_model.net.Proto().name)
        accuracy.append(float(workspace.FetchBlob("accuracy")))
    assert np.mean(accuracy) >= 0.97, np.mean(accuracy)

    images = mnist_lmdb.read_idx_images(IMAGES)[8000:8500].astype(np.float32)[:, None] / 256
    workspace.FeedBlob("data", images)
    workspace.RunNetOnce(deploy_model.net)
    predicted = workspace.FetchBlob("softmax").argmax(axis=1)
    truth = mnist_lmdb.read_idx_labels(LABELS)[8000:8500]
    assert (predicted == truth).mean() >= 0.96
