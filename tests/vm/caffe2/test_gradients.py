"""Caffe2 gradient operators: Caffe2's naming, and every mapped gradient against finite differences."""
import numpy as np
import pytest

from dragon.vm.caffe2.python import core, operators, workspace


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def _names(ops):
    return [(op.type, list(op.input), list(op.output)) for op in ops]


# -- naming ------------------------------------------------------------------------------------------

def test_gradient_map_names_and_seed():
    net = core.Net("naming")
    y = net.FC(["X", "W", "b"], "Y")
    loss = net.AveragedLoss(net.Relu(y, "R"), "loss")
    grads = net.AddGradientOperators([loss])
    assert {str(k): str(v) for k, v in grads.items()} == {
        "loss": "loss_autogen_grad", "R": "R_grad", "Y": "Y_grad", "X": "X_grad",
        "W": "W_grad", "b": "b_grad"}
    assert grads["W"] == "W_grad" and isinstance(grads["W"], core.BlobReference)
    seed = [op for op in net.Proto().op if op.type == "ConstantFill"][0]
    assert (list(seed.input), list(seed.output)) == (["loss"], ["loss_autogen_grad"])
    assert seed.arg[0].name == "value" and seed.arg[0].f == 1.0
    types = [op.type for op in net.Proto().op]
    assert types[-3:] == ["AveragedLossGradient", "ReluGradient", "FCGradient"]
    assert all(op.is_gradient_op for op in net.Proto().op[4:])


def test_blob_used_twice_sums_partial_gradients():
    net = core.Net("twice")
    h1 = net.FC(["X", "W1", "b1"], "h1")
    h2 = net.FC(["X", "W2", "b2"], "h2")
    loss = net.AveragedLoss(net.Add([h1, h2], "s"), "loss")
    grads = net.AddGradientOperators([loss])
    ops = list(net.Proto().op)
    sums = [op for op in ops if op.type == "Sum"]
    assert _names(sums) == [("Sum", ["X_grad", "_X_grad_autosplit_0"], ["X_grad"])]
    fc_grads = [op for op in ops if op.type == "FCGradient"]
    assert [op.output[0] for op in fc_grads] == ["X_grad", "_X_grad_autosplit_0"]
    assert ops.index(sums[0]) == len(ops) - 1 and grads["X"] == "X_grad"

    workspace.FeedBlob("X", np.random.randn(4, 3).astype(np.float32))
    for i in (1, 2):
        workspace.FeedBlob(f"W{i}", np.random.randn(5, 3).astype(np.float32))
        workspace.FeedBlob(f"b{i}", np.zeros(5, np.float32))
    workspace.RunNetOnce(net)
    expected = np.ones((4, 5), np.float32) / 20 @ (workspace.FetchBlob("W1") +
                                                   workspace.FetchBlob("W2"))
    np.testing.assert_allclose(workspace.FetchBlob("X_grad"), expected, rtol=1e-5)


def test_in_place_ops_and_stop_gradient():
    net = core.Net("inplace")
    data = net.StopGradient("data", "data")
    h = net.FC([data, "W", "b"], "h")
    h = net.Relu(h, h)
    loss = net.AveragedLoss(h, "loss")
    grads = net.AddGradientOperators([loss])
    assert "data" not in grads and grads["h"] == "h_grad"
    relu_grad = [op for op in net.Proto().op if op.type == "ReluGradient"][0]
    assert list(relu_grad.output) == ["h_grad"] and "h_grad" in relu_grad.input
    workspace.FeedBlob("data", np.random.randn(3, 4).astype(np.float32))
    workspace.FeedBlob("W", np.random.randn(2, 4).astype(np.float32))
    workspace.FeedBlob("b", np.full(2, 0.1, np.float32))
    workspace.RunNetOnce(net)
    pre = workspace.FetchBlob("data") @ workspace.FetchBlob("W").T + 0.1
    np.testing.assert_allclose(workspace.FetchBlob("h_grad"), (pre > 0) / 6.0, rtol=1e-5)
    assert not workspace.HasBlob("data_grad")  # nothing could read it


def test_given_output_gradients():
    net = core.Net("given")
    net.Sigmoid("x", "y")
    grads = net.AddGradientOperators({"y": "dy"})
    assert grads["x"] == "x_grad" and grads["y"] == "dy"
    x = np.random.randn(5).astype(np.float32)
    workspace.FeedBlob("x", x)
    workspace.FeedBlob("dy", np.full(5, 2.0, np.float32))
    workspace.RunNetOnce(net)
    s = 1 / (1 + np.exp(-x))
    np.testing.assert_allclose(workspace.FetchBlob("x_grad"), 2 * s * (1 - s), rtol=1e-5)


def test_gradients_across_a_host_operator(capsys):
    """Print splits the net in two graphs: the gradients recompute what they need."""
    def build(with_print):
        net = core.Net("split")
        y = net.FC(["X", "W", "b"], "y")
        pooled = net.MaxPool(net.Reshape(y, ["y4", "old"], shape=[2, 1, 2, 3])[0], "p",
                             kernel=2, stride=1)
        s = net.Softmax(pooled, "s")
        if with_print:
            net.Print([s], [])
        net.AddGradientOperators([net.AveragedLoss(net.Sqr(s, "q"), "loss")])
        return net

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    w = rng.standard_normal((6, 4)).astype(np.float32)
    results = []
    for with_print in (False, True):
        workspace.ResetWorkspace()
        workspace.FeedBlob("X", x)
        workspace.FeedBlob("W", w)
        workspace.FeedBlob("b", np.zeros(6, np.float32))
        workspace.RunNetOnce(build(with_print))
        results.append([workspace.FetchBlob(n) for n in ("X_grad", "W_grad", "y_grad")])
    for plain, printed in zip(*results):
        np.testing.assert_allclose(printed, plain, rtol=1e-6)
    assert "s (float32" in capsys.readouterr().out


# -- every mapped gradient against finite differences ------------------------------------------------

def _rand(*shape, low=-1.0, high=1.0, seed=0):
    return np.random.default_rng(seed + sum(shape)).uniform(low, high, shape)


def _away(x, points=(0.0,), margin=0.1):
    x = np.array(x)
    for p in points:
        near = np.abs(x - p) < margin
        x[near] = p + np.where(x[near] >= p, margin, -margin)
    return x


def _distinct(*shape, seed=0):
    """Values far apart, so max pooling has no near-ties."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape(shape) / n - 0.5


PROBS = np.random.default_rng(3).dirichlet(np.ones(4), size=3)
LABELS = np.array([1, 0, 3], np.int32)

# (op type, {input name: array}, output count, arguments, inputs to check, id)
CASES = [
    ("FC", {"X": _rand(3, 4), "W": _rand(2, 4), "b": _rand(2)}, 1, {}, None, ""),
    ("FC", {"X": _rand(2, 3, 2), "W": _rand(2, 6), "b": _rand(2)}, 1, {"axis": 1}, None, "4d"),
    ("FCTransposed", {"X": _rand(3, 4), "W": _rand(4, 2), "b": _rand(2)}, 1, {}, None, ""),
    ("Conv", {"X": _rand(1, 2, 5, 5), "W": _rand(3, 2, 3, 3), "b": _rand(3)}, 1,
     {"kernel": 3, "stride": 2, "pad": 1}, None, ""),
    ("Conv", {"X": _rand(1, 4, 4, 4), "W": _rand(2, 2, 2, 2)}, 1,
     {"kernel": 2, "group": 2, "pads": [0, 1, 1, 0]}, None, "group"),
    ("ConvTranspose", {"X": _rand(1, 2, 3, 3), "W": _rand(2, 3, 3, 3), "b": _rand(3)}, 1,
     {"kernel": 3, "stride": 2, "pad": 1}, None, ""),
    ("Conv2D", {"X": _rand(1, 1, 4, 4), "W": _rand(2, 1, 2, 2), "b": _rand(2)}, 1,
     {"kernel_h": 2, "kernel_w": 2, "dilation": 2}, None, ""),
    ("MaxPool", {"X": _distinct(1, 2, 5, 5)}, 1, {"kernel": 2, "stride": 2}, None, ""),
    ("MaxPool2D", {"X": _distinct(1, 1, 4, 4)}, 1, {"kernels": [2, 3], "strides": [2, 1]},
     None, ""),
    ("AveragePool2D", {"X": _rand(1, 1, 4, 4)}, 1, {"kernel": 2, "stride": 1, "legacy_pad": 3,
                                                    "pad": 1}, None, ""),
    ("MaxPool", {"X": _distinct(1, 1, 5, 5)}, 1, {"kernel": 3, "stride": 2, "legacy_pad": 3},
     None, "caffe"),
    ("AveragePool", {"X": _rand(1, 2, 5, 5)}, 1, {"kernel": 3, "stride": 2, "pad": 1}, None, ""),
    ("AveragePool", {"X": _rand(1, 2, 4, 4)}, 1, {"global_pooling": 1}, None, "global"),
    ("Relu", {"X": _away(_rand(3, 4))}, 1, {}, None, ""),
    ("LeakyRelu", {"X": _away(_rand(3, 4))}, 1, {"alpha": 0.2}, None, ""),
    ("Sigmoid", {"X": _rand(3, 4)}, 1, {}, None, ""),
    ("Tanh", {"X": _rand(3, 4)}, 1, {}, None, ""),
    ("Softplus", {"X": _rand(3, 4)}, 1, {}, None, ""),
    ("Softsign", {"X": _rand(3, 4)}, 1, {}, None, ""),
    ("Elu", {"X": _away(_rand(3, 4))}, 1, {"alpha": 0.5}, None, ""),
    ("Exp", {"X": _rand(3, 4)}, 1, {}, None, ""),
    ("Log", {"X": _rand(3, 4, low=0.5, high=2.0)}, 1, {}, None, ""),
    ("Sqrt", {"X": _rand(3, 4, low=0.5, high=2.0)}, 1, {}, None, ""),
    ("Abs", {"X": _away(_rand(3, 4))}, 1, {}, None, ""),
    ("Sqr", {"X": _rand(3, 4)}, 1, {}, None, ""),
    ("Negative", {"X": _rand(3, 4)}, 1, {}, None, ""),
    ("Copy", {"X": _rand(3, 4)}, 1, {}, None, ""),
    ("EnsureCPUOutput", {"X": _rand(3, 4)}, 1, {}, None, ""),
    ("CopyCPUToGPU", {"X": _rand(3, 4)}, 1, {}, None, ""),
    ("CopyGPUToCPU", {"X": _rand(3, 4)}, 1, {}, None, ""),
    ("Alias", {"X": _rand(3, 4)}, 1, {}, None, ""),
    ("PRelu", {"X": _away(_rand(2, 3, 2, 2)), "slope": _rand(3)}, 1, {}, None, ""),
    ("Softmax", {"X": _rand(3, 5)}, 1, {}, None, ""),
    ("Softmax", {"X": _rand(2, 3, 2, 2)}, 1, {}, None, "4d"),
    ("SoftmaxWithLoss", {"X": _rand(3, 4), "label": LABELS}, 2, {}, ["X"], ""),
    ("SoftmaxWithLoss", {"X": _rand(3, 4), "label": LABELS.reshape(3, 1)}, 2, {"scale": 2.0},
     ["X"], "scaled"),
    ("SoftmaxWithLoss", {"X": _rand(3, 4), "label": PROBS}, 2, {"label_prob": 1}, ["X"], "soft"),
    ("LabelCrossEntropy", {"X": PROBS, "label": LABELS}, 1, {}, ["X"], ""),
    ("CrossEntropy", {"X": PROBS, "label": PROBS[::-1].copy()}, 1, {}, ["X"], ""),
    ("AveragedLoss", {"X": _rand(3, 4)}, 1, {}, None, ""),
    ("SquaredL2Distance", {"X": _rand(3, 4), "Y": _rand(3, 4, seed=1)}, 1, {}, None, ""),
    ("Add", {"A": _rand(2, 3, 4), "B": _rand(3, 4, seed=1)}, 1, {"broadcast": 1}, None, ""),
    ("Sub", {"A": _rand(2, 3, 4), "B": _rand(3, seed=1)}, 1, {"broadcast": 1, "axis": 1}, None,
     ""),
    ("Mul", {"A": _rand(2, 3), "B": _rand(2, 3, seed=1)}, 1, {}, None, ""),
    ("Div", {"A": _rand(2, 3), "B": _rand(3, low=0.5, high=2.0)}, 1, {"broadcast": 1}, None, ""),
    ("Sum", {"A": _rand(2, 3), "B": _rand(2, 3, seed=1), "C": _rand(2, 3, seed=2)}, 1, {},
     None, ""),
    ("WeightedSum", {"X0": _rand(2, 3), "w0": np.array([0.5]), "X1": _rand(2, 3, seed=1),
                     "w1": np.array([-2.0])}, 1, {}, ["X0", "X1"], ""),
    ("MatMul", {"A": _rand(3, 4), "B": _rand(2, 4, seed=1)}, 1, {"trans_b": 1}, None, ""),
    ("ReduceSum", {"X": _rand(2, 3, 4)}, 1, {"axes": [1], "keepdims": 0}, None, ""),
    ("ReduceMean", {"X": _rand(2, 3, 4)}, 1, {}, None, ""),
    ("Scale", {"X": _rand(3, 4)}, 1, {"scale": 0.25}, None, ""),
    ("Pow", {"X": _rand(3, 4, low=0.5, high=2.0)}, 1, {"exponent": 3.0}, None, ""),
    ("Clip", {"X": _away(_rand(3, 4), points=(-0.5, 0.5))}, 1, {"min": -0.5, "max": 0.5}, None,
     ""),
    ("Reshape", {"X": _rand(2, 2, 3)}, 2, {"shape": [3, 0, -1]}, None, ""),
    ("Flatten", {"X": _rand(2, 3, 2)}, 1, {}, None, ""),
    ("FlattenToVec", {"X": _rand(2, 3)}, 1, {}, None, ""),
    ("ExpandDims", {"X": _rand(2, 3)}, 1, {"dims": [0, 2]}, None, ""),
    ("Squeeze", {"X": _rand(2, 1, 3)}, 1, {"dims": [1]}, None, ""),
    ("Transpose", {"X": _rand(2, 3, 4)}, 1, {"axes": [2, 0, 1]}, None, ""),
    ("Concat", {"A": _rand(2, 3), "B": _rand(2, 2, seed=1)}, 2, {"axis": 1}, None, ""),
    ("DepthConcat", {"A": _rand(1, 2, 2, 2), "B": _rand(1, 1, 2, 2, seed=1)}, 2, {}, None, ""),
    ("Split", {"X": _rand(2, 5)}, 2, {"axis": 1, "split": [2, 3]}, None, ""),
    ("DepthSplit", {"X": _rand(1, 4, 2, 2)}, 2, {}, None, ""),
    ("Cast", {"X": _rand(3, 4)}, 1, {"to": core.DataType.DOUBLE}, None, ""),
    ("SpatialBN", {"X": _rand(3, 2, 2, 2), "s": _rand(2, low=0.5), "b": _rand(2),
                   "rm": np.zeros(2), "riv": np.ones(2)}, 5, {"epsilon": 1e-3},
     ["X", "s", "b"], ""),
    ("LRN", {"X": _rand(1, 5, 2, 2)}, 2, {"size": 3, "alpha": 0.5, "beta": 0.75, "bias": 2.0},
     None, ""),
    ("Dropout", {"X": _rand(3, 4)}, 2, {"ratio": 0.5, "is_test": 1}, None, ""),
]


def _case_id(case):
    return case[0] + (f"-{case[5]}" if case[5] else "")


def _outputs(op_type, count):
    return [f"{op_type}_out{k}" for k in range(count)]


def _loss_net(name, op_type, inputs, outputs, args):
    """The op, then loss = sum_k mean(out_k * R_k) over the outputs with gradients."""
    net = core.Net(name)
    getattr(net, op_type)(list(inputs), outputs, **args)
    entry = operators.get(op_type)
    terms = []
    for k in entry.grad_outputs(len(outputs)):
        weighted = net.Mul([outputs[k], f"R{k}"], f"weighted{k}")
        terms.append(net.AveragedLoss(weighted, f"term{k}"))
    return net, terms[0] if len(terms) == 1 else net.Sum(terms, "loss")


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_gradient_matches_finite_differences(case):
    op_type, inputs, n_out, args, wrt, _ = case
    wrt = wrt or [n for n, a in inputs.items() if np.asarray(a).dtype.kind == "f"]
    for name, value in inputs.items():
        workspace.FeedBlob(name, value)
    outputs = _outputs(op_type, n_out)
    probe = core.Net("probe")
    getattr(probe, op_type)(list(inputs), outputs, **args)
    workspace.RunNetOnce(probe)
    rng = np.random.default_rng(7)
    for k in range(n_out):
        shape = workspace.FetchBlob(outputs[k]).shape
        workspace.FeedBlob(f"R{k}", rng.standard_normal(shape))

    forward, loss = _loss_net("forward", op_type, inputs, outputs, args)
    backward, loss = _loss_net("backward", op_type, inputs, outputs, args)
    grads = backward.AddGradientOperators([loss])
    workspace.RunNetOnce(backward)
    workspace.CreateNet(forward)

    def cost():
        workspace.RunNet(forward)
        return float(workspace.FetchBlob(str(loss)))

    eps = 1e-6
    for name in wrt:
        assert name in grads, f"{op_type}: no gradient for input {name}"
        analytic = workspace.FetchBlob(grads[name])
        x = np.array(inputs[name], np.float64)
        numeric = np.zeros_like(x)
        for i in range(x.size):
            for sign in (1, -1):
                bumped = x.copy()
                bumped.flat[i] += sign * eps
                workspace.FeedBlob(name, bumped)
                numeric.flat[i] += sign * cost() / (2 * eps)
        workspace.FeedBlob(name, x)
        assert analytic.shape == x.shape
        np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-7,
                                   err_msg=f"{op_type}: gradient of {name}")


def test_every_differentiable_operator_has_a_case():
    covered = {c[0] for c in CASES}
    differentiable = {t for t in operators.registered() if operators.get(t).differentiable}
    assert differentiable <= covered, sorted(differentiable - covered)
