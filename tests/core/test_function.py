"""dragon.function, dragon.grad and the workspace, through the public API."""
import numpy as np
import pytest

import dragon
from dragon.proto import dragon_pb2


def test_function_computes_and_updates_variables():
    x = dragon.placeholder((None, 3), name="fx")
    w = dragon.variable(np.ones((3, 2), "float32"), name="fw")
    loss = dragon.ops.reduce_mean(x @ w)
    gw = dragon.grad(loss, w)
    step = dragon.function([x], [loss, gw], updates=[(w, w - 0.5 * gw)])
    xb = np.arange(12, dtype="float32").reshape(4, 3)
    loss_value, gw_value = step(xb)
    assert loss_value == pytest.approx((xb @ np.ones((3, 2))).mean())
    expected_gw = np.repeat(xb.mean(axis=0)[:, None] / 2, 2, axis=1)
    np.testing.assert_allclose(gw_value, expected_gw, rtol=1e-6)
    np.testing.assert_allclose(dragon.workspace.fetch_tensor("fw"), 1 - 0.5 * expected_gw,
                               rtol=1e-6)


def test_updates_read_old_values():
    a = dragon.variable(np.float32(1.0), name="swap_a")
    b = dragon.variable(np.float32(2.0), name="swap_b")
    swap = dragon.function([], [], updates=[(a, b), (b, a)])
    swap()
    assert dragon.workspace.fetch_tensor("swap_a") == 2.0
    assert dragon.workspace.fetch_tensor("swap_b") == 1.0


def test_compiles_once_per_input_shape_set():
    x = dragon.placeholder((None, 2), name="cx")
    f = dragon.function([x], dragon.ops.reduce_sum(x * 2.0))
    assert f(np.ones((3, 2), "float32")) == 12
    assert f(np.ones((3, 2), "float32")) == 12
    assert f(np.ones((5, 2), "float32")) == 20
    assert len(f._plans) == 2


def test_givens_replace_a_tensor():
    x = dragon.placeholder((None,), name="gx")
    data = dragon.variable(np.arange(6, dtype="float32"), name="gdata")
    y = dragon.placeholder((None,), name="gy")
    f = dragon.function([x], dragon.ops.reduce_sum(y * x), givens={y: data})
    assert f(np.ones(6, "float32")) == 15


def test_gradient_of_a_tensor_used_twice_is_summed():
    x = dragon.placeholder((3,), "float64", name="twice")
    y = dragon.ops.reduce_sum(x * x + x)
    g = dragon.function([x], dragon.grad(y, x))
    np.testing.assert_allclose(g(np.array([1.0, 2.0, 3.0])), [3.0, 5.0, 7.0])


def test_stop_gradient_and_consider_constant():
    x = dragon.placeholder((2,), "float64", name="sg")
    y = dragon.ops.reduce_sum(dragon.stop_gradient(x) * x)
    g = dragon.function([x], dragon.grad(y, x))
    np.testing.assert_allclose(g(np.array([2.0, 3.0])), [2.0, 3.0])
    z = x * x
    y2 = dragon.ops.reduce_sum(z * x)
    g2 = dragon.function([x], dragon.grad(y2, x, consider_constant=[z]))
    np.testing.assert_allclose(g2(np.array([2.0, 3.0])), [4.0, 9.0])


def test_disconnected_wrt_raises_unless_ignored():
    x = dragon.placeholder((2,), name="dx")
    other = dragon.placeholder((2,), name="dother")
    cost = dragon.ops.reduce_sum(x)
    with pytest.raises(dragon.DisconnectedInputError, match="dother"):
        dragon.grad(cost, [other])
    assert dragon.grad(cost, [other], disconnected="ignore") == [None]


def test_op_without_gradient_says_so():
    x = dragon.placeholder((2, 3), name="ng")
    y = dragon.ops.reduce_sum(dragon.core.tensor.apply("OnesLike", [x]) * 1.0)
    assert dragon.grad(y, x, disconnected="ignore") is None
    rg = dragon.core.tensor.apply("ReluGradient", [x, x])
    with pytest.raises(dragon.NoGradientError, match="ReluGradient"):
        dragon.grad(dragon.ops.reduce_sum(rg), x)


def test_workspaces_switch_and_reset():
    ws = dragon.workspace
    start = ws.current_workspace()
    ws.switch_workspace("test_ws_a")
    ws.feed_tensor("t", np.ones(3, "float32"))
    assert ws.has_tensor("t")
    ws.switch_workspace("test_ws_b")
    assert not ws.has_tensor("t")
    with pytest.raises(RuntimeError, match="missing_ws"):
        ws.switch_workspace("missing_ws", create_if_missing=False)
    ws.switch_workspace("test_ws_a")
    assert ws.fetch_tensor("t").sum() == 3
    ws.reset_workspace()
    assert not ws.has_tensor("t")
    ws.switch_workspace(start)


def test_run_operator_and_graph_on_workspace_names():
    ws = dragon.workspace
    ws.switch_workspace("ops_by_name")
    ws.feed_tensor("a", np.array([-1.0, 2.0], "float32"))
    ws.run_operator(dragon_pb2.OperatorDef(type="Relu", input=["a"], output=["b"]))
    np.testing.assert_array_equal(ws.fetch_tensor("b"), [0.0, 2.0])
    graph = dragon_pb2.GraphDef(name="g")
    graph.op.add(type="Add", input=["a", "b"], output=["c"])
    graph.op.add(type="Relu", input=["c"], output=["c"])  # Caffe-style in-place name reuse
    ws.create_graph(graph)
    ws.run_graph("g")
    np.testing.assert_array_equal(ws.fetch_tensor("c"), [0.0, 4.0])
    ws.feed_tensor("a", np.array([3.0, 1.0], "float32"))
    ws.run_graph("g")
    np.testing.assert_array_equal(ws.fetch_tensor("c"), [3.0, 3.0])
    ws.switch_workspace("default")


def test_serialized_op_def_runs():
    ws = dragon.workspace
    ws.switch_workspace("serialized")
    ws.feed_tensor("x", np.array([-2.0, 5.0], "float32"))
    op = dragon_pb2.OperatorDef(type="Relu", input=["x"], output=["y"])
    ws.run_operator(op.SerializeToString())
    np.testing.assert_array_equal(ws.fetch_tensor("y"), [0.0, 5.0])
    ws.switch_workspace("default")


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_every_optimization_level_gives_the_same_training(level):
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((16, 8)).astype("float32")
    dragon.config.set_optimization_level(level)
    try:
        with dragon.name_scope(f"lvl{level}"):
            x = dragon.placeholder((None, 8), name="x")
            w1 = dragon.variable(rng.standard_normal((8, 8)).astype("float32") * 0.3, name="w1")
            w2 = dragon.variable(rng.standard_normal((8, 1)).astype("float32") * 0.3, name="w2")
            h = dragon.ops.relu(x @ w1)
            h2 = dragon.ops.relu(h @ w1)
            loss = dragon.ops.reduce_mean((h2 @ w2) * (h2 @ w2))
            g1, g2 = dragon.grad(loss, [w1, w2])
            f = dragon.function([x], loss, updates=[(w1, w1 - 0.1 * g1), (w2, w2 - 0.1 * g2)])
            losses = [float(f(xb)) for _ in range(3)]
    finally:
        dragon.config.set_optimization_level(2)
    rng = np.random.default_rng(0)
    rng.standard_normal((16, 8))
    W1 = rng.standard_normal((8, 8)).astype("float32") * 0.3
    W2 = rng.standard_normal((8, 1)).astype("float32") * 0.3
    expected = []
    for _ in range(3):
        a1 = xb @ W1; h = np.maximum(a1, 0)
        a2 = h @ W1; h2 = np.maximum(a2, 0)
        out = h2 @ W2
        expected.append(float((out * out).mean()))
        d_out = 2 * out / out.size
        dW2 = h2.T @ d_out
        d_a2 = (d_out @ W2.T) * (a2 > 0)
        dW1 = h.T @ d_a2
        d_a1 = (d_a2 @ W1.T) * (a1 > 0)
        dW1 = dW1 + xb.T @ d_a1
        W1 = W1 - 0.1 * dW1; W2 = W2 - 0.1 * dW2
    np.testing.assert_allclose(losses, expected, rtol=1e-5)


def test_update_reading_a_view_runs_after_the_view_source():
    ws = dragon.workspace
    ws.switch_workspace("early_alias")
    ws.feed_tensor("p", np.array([1.0, -2.0], "float32"))
    ws.feed_tensor("y", np.zeros(2, "float32"))
    graph = dragon_pb2.GraphDef(name="g")
    graph.op.add(type="Neg", input=["p"], output=["t"])
    graph.op.add(type="StopGradient", input=["t"], output=["s"])
    graph.op.add(type="Relu", input=["s"], output=["y"])
    dragon.config.set_optimization_level(2)
    ws.run_graph_once(graph, level=2)
    np.testing.assert_array_equal(ws.fetch_tensor("y"), [0.0, 2.0])
    ws.switch_workspace("default")


def test_gradient_does_not_flow_into_stop_gradient_inputs():
    x = dragon.placeholder((4,), "float64", name="sg_x")
    t = dragon.placeholder((4,), "float64", name="sg_t")
    loss, _ = dragon.ops.sigmoid_cross_entropy(x, dragon.stop_gradient(t)), None
    gx, gt = dragon.grad(loss, [x, t], disconnected="ignore")
    assert gt is None and gx is not None
