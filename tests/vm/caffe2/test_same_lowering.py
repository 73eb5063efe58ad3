"""LeNet written for Caffe and for Caffe2 lowers to the same core graph.

What is compared: the compiled plan each front end runs for LeNet's forward pass,
as the list of core op types in execution order with the shape of each op's
first output. On the Caffe side the plan is the one ``Net.forward()`` compiles
(``examples/mnist/lenet.prototxt``); on the Caffe2 side it is the plan
``workspace.CreateNet`` + ``RunNet`` compiles for the deploy net built with brew
as in Caffe2's MNIST tutorial (conv, max_pool, conv, max_pool, fc, relu, fc,
softmax), and for the same prototxt run through the Caffe-to-Caffe2 translator.
Ops that only one side may need for bookkeeping (fills of constants, copies
into named blobs) are left out of the comparison; parameter initialization is
not part of any of these plans. Plans are reached through each front end's
internals (``Net._graph.plans``, the core workspace's ``graphs``), which is
what this test is about.
"""
from pathlib import Path

import numpy as np
import pytest

import dragon.vm.caffe as caffe
from dragon.core import workspace as core_workspace
from dragon.vm.caffe import proto_io
from dragon.vm.caffe.proto import caffe_pb2
from dragon.vm.caffe2.python import brew, caffe_translator, model_helper, workspace

LENET = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "caffe" / \
    "examples" / "mnist" / "lenet.prototxt"

BOOKKEEPING = {"GivenTensorFill", "Fill", "Copy", "Alias"}
EXPECTED = ["Conv2d", "Pool2d", "Conv2d", "Pool2d", "FullyConnected", "Relu", "FullyConnected",
            "Softmax"]


@pytest.fixture(scope="module")
def lenet_file():
    if not LENET.is_file():
        pytest.skip(f"the Caffe LeNet prototxt {LENET} is absent (shared data not installed)")
    return LENET


@pytest.fixture(autouse=True)
def caffe2_workspace():
    previous = workspace.CurrentWorkspace()
    workspace.SwitchWorkspace("same_lowering_test", True)
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()
    workspace.SwitchWorkspace(previous)


def lowered(steps):
    """(core op type, shape of its first output) of each step but the bookkeeping ones."""
    return [(s.op_def.type, tuple(s.outputs[0].spec.shape)) for s in steps
            if s.op_def.type not in BOOKKEEPING]


def caffe_plan(net):
    net.forward()
    plans = [plan for key, plan in net._graph.plans.items() if key[0] == "forward"]
    assert len(plans) == 1
    return lowered(plans[0].steps)


def caffe2_plan(net_def, batch):
    workspace.FeedBlob("data", np.zeros((batch, 1, 28, 28), np.float32))
    workspace.CreateNet(net_def, overwrite=True)
    workspace.RunNet(net_def.name)
    graphs = core_workspace.get_workspace().graphs
    plans = [plan for name, plan in graphs.items() if name.startswith(f"caffe2:{net_def.name}#")]
    assert len(plans) == 1, list(graphs)
    return lowered(plans[0].steps)


def brew_lenet():
    model = model_helper.ModelHelper(name="lenet_brew")
    conv1 = brew.conv(model, "data", "conv1", dim_in=1, dim_out=20, kernel=5)
    pool1 = brew.max_pool(model, conv1, "pool1", kernel=2, stride=2)
    conv2 = brew.conv(model, pool1, "conv2", dim_in=20, dim_out=50, kernel=5)
    pool2 = brew.max_pool(model, conv2, "pool2", kernel=2, stride=2)
    fc3 = brew.fc(model, pool2, "fc3", dim_in=50 * 4 * 4, dim_out=500)
    relu = brew.relu(model, fc3, fc3)
    pred = brew.fc(model, relu, "pred", 500, 10)
    brew.softmax(model, pred, "softmax")
    return model


def test_brew_lenet_lowers_like_caffe_lenet(lenet_file):
    net = caffe.Net(str(lenet_file), caffe.TEST)
    batch = net.blobs["data"].data.shape[0]
    from_caffe = caffe_plan(net)
    assert [op for op, _ in from_caffe] == EXPECTED

    model = brew_lenet()
    workspace.RunNetOnce(model.param_init_net)
    from_caffe2 = caffe2_plan(model.net.Proto(), batch)
    assert from_caffe2 == from_caffe


def test_translated_lenet_lowers_like_caffe_lenet(lenet_file, tmp_path):
    net = caffe.Net(str(lenet_file), caffe.TEST)
    batch = net.blobs["data"].data.shape[0]
    from_caffe = caffe_plan(net)
    weights = tmp_path / "lenet.caffemodel"
    net.save(str(weights))

    predict_net, params = caffe_translator.TranslateModel(
        proto_io.read_net(str(lenet_file)),
        proto_io.read_binary(str(weights), caffe_pb2.NetParameter), is_test=True)
    workspace.RunNetOnce(caffe_translator.ConvertTensorProtosToInitNet(params, "data"))
    assert caffe2_plan(predict_net, batch) == from_caffe
