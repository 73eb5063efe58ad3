"""Bad input: every error names the op, the tensor and the shapes."""
import numpy as np
import pytest

import dragon
from dragon.proto import dragon_pb2


def test_unknown_op_type_names_the_op_and_suggests():
    ws = dragon.workspace
    ws.switch_workspace("errors")
    ws.feed_tensor("x", np.ones(2, "float32"))
    op = dragon_pb2.OperatorDef(type="Rellu", name="act1", input=["x"], output=["y"])
    with pytest.raises(dragon.UnknownOpError, match=r"act1.*Rellu.*did you mean Relu"):
        ws.run_operator(op)
    ws.switch_workspace("default")


def test_unknown_op_type_when_building():
    x = dragon.placeholder((2,), name="unk")
    with pytest.raises(dragon.UnknownOpError, match="NoSuchOp"):
        dragon.core.tensor.apply("NoSuchOp", [x])


def test_shape_mismatch_at_graph_building_names_op_and_shapes():
    a = dragon.placeholder((3, 4), name="sa")
    b = dragon.placeholder((5, 6), name="sb")
    with pytest.raises(dragon.ShapeError, match=r"MatMul.*\(3, 4\).*\(5, 6\)"):
        a @ b


def test_shape_mismatch_at_compile_time_names_op_and_shapes():
    a = dragon.placeholder((None, 4), name="ca")
    b = dragon.placeholder((None, 6), name="cb")
    y = dragon.ops.add(a, b, name="my_add")
    f = dragon.function([a, b], y)
    with pytest.raises(dragon.ShapeError, match=r"my_add.*\(2, 4\).*\(2, 6\)"):
        f(np.ones((2, 4), "float32"), np.ones((2, 6), "float32"))


def test_feed_of_wrong_dtype_names_the_input():
    x = dragon.placeholder((2,), "float32", name="dtype_in")
    f = dragon.function([x], x * 2.0)
    with pytest.raises(dragon.FeedError, match=r"dtype_in.*float32.*float64"):
        f(np.ones(2, "float64"))
    assert f(np.ones(2, "int8")).dtype == np.float32  # safe casts are fine


def test_feed_of_wrong_shape_names_the_input():
    x = dragon.placeholder((None, 3), "float32", name="shape_in")
    f = dragon.function([x], x * 2.0)
    with pytest.raises(dragon.FeedError, match=r"shape_in.*\(\?, 3\).*\(2, 4\)"):
        f(np.ones((2, 4), "float32"))


def test_wrong_number_of_inputs():
    x = dragon.placeholder((2,), name="n_in")
    f = dragon.function([x], x * 2.0)
    with pytest.raises(TypeError, match="n_in"):
        f()


def test_missing_tensor_names_op_and_tensor():
    ws = dragon.workspace
    ws.switch_workspace("missing")
    graph = dragon_pb2.GraphDef(name="g")
    graph.op.add(type="Relu", name="r1", input=["never_fed"], output=["y"])
    with pytest.raises(dragon.MissingTensorError, match=r"r1.*never_fed"):
        ws.create_graph(graph)
    with pytest.raises(dragon.MissingTensorError, match="nope"):
        ws.fetch_tensor("nope")
    ws.switch_workspace("default")


def test_unknown_argument_names_op_and_argument():
    x = dragon.placeholder((2,), name="arg_in")
    with pytest.raises(TypeError, match=r"Relu.*negative_slop"):
        dragon.ops.relu(x, negative_slop=0.1)


def test_update_writing_wrong_shape_is_rejected():
    ws = dragon.workspace
    ws.switch_workspace("wrong_update")
    ws.feed_tensor("w", np.ones((2, 2), "float32"))
    ws.feed_tensor("v", np.ones((3,), "float32"))
    graph = dragon_pb2.GraphDef(name="g")
    graph.op.add(type="Copy", name="assign", input=["v"], output=["w"])
    with pytest.raises(dragon.ShapeError, match=r"assign.*'w'.*\(3,\).*\(2, 2\)"):
        ws.create_graph(graph)
    ws.switch_workspace("default")
