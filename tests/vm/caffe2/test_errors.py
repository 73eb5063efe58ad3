"""Bad Caffe2 programs fail as Caffe2 does, naming the operator type or blob at fault."""
import numpy as np
import pytest

from dragon.vm.caffe2.python import brew, core, model_helper, optimizer, workspace


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def test_unknown_operator_type_is_an_attribute_error():
    net = core.Net("unknown")
    with pytest.raises(AttributeError, match="NotAnOp"):
        net.NotAnOp(["x"], ["y"])
    with pytest.raises(AttributeError, match="Relux.*Relu"):
        net.Relux(["x"], ["y"])
    x = net.ConstantFill([], "x", shape=[1], value=1.0)
    with pytest.raises(AttributeError, match="NotAnOp"):
        x.NotAnOp([], "y")
    model = model_helper.ModelHelper(name="unknown_model")
    with pytest.raises(AttributeError, match="NotAnOp"):
        model.NotAnOp(["x"], ["y"])
    with pytest.raises(AttributeError):
        brew.not_a_helper(model)


def test_running_an_unknown_operator_names_it():
    op = core.CreateOperator("NotAnOp", ["x"], ["y"])
    workspace.FeedBlob("x", np.ones(2, np.float32))
    with pytest.raises(RuntimeError, match="NotAnOp"):
        workspace.RunOperatorOnce(op)
    net = core.Net("has_unknown")
    net.Proto().op.extend([op])
    with pytest.raises(RuntimeError, match="NotAnOp"):
        workspace.CreateNet(net)


def test_none_argument_is_a_value_error():
    with pytest.raises(ValueError, match="axis"):
        core.CreateOperator("FC", ["X", "W", "b"], ["Y"], axis=None)
    with pytest.raises(ValueError):
        core.Net("none_arg").Relu("x", "y", slope=None)


def test_missing_input_blob_is_named():
    net = core.Net("never_fed")
    net.FC(["data", "W", "b"], "fc")
    workspace.FeedBlob("W", np.ones((2, 3), np.float32))
    workspace.FeedBlob("b", np.ones(2, np.float32))
    with pytest.raises(RuntimeError, match="'?data'?"):
        workspace.CreateNet(net)
    with pytest.raises(RuntimeError, match="data"):
        workspace.RunNetOnce(net)
    with pytest.raises(RuntimeError, match="nope"):
        workspace.RunOperatorOnce(core.CreateOperator("Relu", ["nope"], ["y"]))


def test_shape_errors_name_the_operator_and_shapes():
    workspace.FeedBlob("X", np.ones((2, 3), np.float32))
    workspace.FeedBlob("W", np.ones((4, 5), np.float32))
    workspace.FeedBlob("b", np.ones(4, np.float32))
    net = core.Net("bad_shapes")
    net.FC(["X", "W", "b"], "Y")
    with pytest.raises(RuntimeError, match=r"FC\(X, W, b -> Y\).*\(2, 3\)"):
        workspace.RunNetOnce(net)
    workspace.FeedBlob("A", np.ones((2, 3), np.float32))
    workspace.FeedBlob("B", np.ones(4, np.float32))
    with pytest.raises(RuntimeError, match="broadcast"):
        workspace.RunOperatorOnce(core.CreateOperator("Add", ["A", "B"], ["C"], broadcast=1))


def test_unsupported_settings_are_explained():
    workspace.FeedBlob("X", np.ones((1, 4, 4, 1), np.float32))
    with pytest.raises(RuntimeError, match="NHWC"):
        workspace.RunOperatorOnce(core.CreateOperator("MaxPool", ["X"], ["Y"], kernel=2,
                                                      order="NHWC"))
    with pytest.raises(RuntimeError, match="base_lr"):
        workspace.FeedBlob("it", np.zeros(1, np.int64))
        workspace.RunOperatorOnce(core.CreateOperator("LearningRate", ["it"], ["lr"]))


def test_nets_and_workspaces_that_do_not_exist():
    with pytest.raises(RuntimeError, match="no_such_net"):
        workspace.RunNet("no_such_net")
    with pytest.raises(RuntimeError, match="no_such_workspace"):
        workspace.SwitchWorkspace("no_such_workspace")
    with pytest.raises(RuntimeError, match="no_such_blob"):
        workspace.FetchBlob("no_such_blob")


def test_model_misuse():
    model = model_helper.ModelHelper(name="misuse")
    brew.fc(model, "x", "y", 3, 2)
    with pytest.raises(RuntimeError, match="AddGradientOperators"):
        optimizer.build_sgd(model, 0.1)
    loss = model.AveragedLoss("y", "loss")
    model.AddGradientOperators([loss])
    with pytest.raises(RuntimeError, match="twice"):
        model.AddGradientOperators([loss])
    with pytest.raises(TypeError):
        workspace.RunNetOnce(42)


def test_gradient_of_an_operator_without_one():
    net = core.Net("no_gradient")
    net.Iter("it", "it")
    net.Cast("it", "f", to=core.DataType.FLOAT)
    grads = net.AddGradientOperators(["f"])   # Iter has no gradient: it stops there
    assert "it" not in grads and [op.type for op in net.Proto().op][-1] == "CastGradient"
    proto = net.Proto()
    proto.op.add(type="Foo", input=["f"], output=["g"])
    with pytest.raises(RuntimeError, match="Foo"):
        net.AddGradientOperators(["g"])
