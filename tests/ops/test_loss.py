"""Losses and metrics: argument and shape errors, ignored labels, extremes, ties, the planner."""
import numpy as np
import pytest

import dragon
from dragon import ops
from tests.ops import opcase
from tests.ops.cases_loss import CASES


def run(outputs, feeds, level=None):
    """Outputs of a function of the placeholders in ``feeds`` ({placeholder: value})."""
    previous = dragon.config.get_optimization_level()
    if level is not None:
        dragon.config.set_optimization_level(level)
    try:
        return dragon.function(list(feeds), outputs)(*feeds.values())
    finally:
        dragon.config.set_optimization_level(previous)


def ph(value, name=None):
    value = np.asarray(value)
    return dragon.placeholder(value.shape, value.dtype, name=name)


# -- errors at graph-building time ------------------------------------------------------------

def test_softmax_cross_entropy_names_the_label_shape_it_expected():
    x = dragon.placeholder((2, 3, 4), "float32", name="scores_lbl")
    y = dragon.placeholder((2, 3), "int64", name="labels_lbl")
    with pytest.raises(dragon.ShapeError, match=r"labels \(2, 3\) have 6 entries; expected 8.*"
                                                r"logits \(2, 3, 4\) without axis 1"):
        ops.softmax_cross_entropy(x, y)


def test_spatial_labels_with_a_singleton_channel_are_accepted():
    x = dragon.placeholder((2, 3, 4, 4), "float32")
    y = dragon.placeholder((2, 1, 4, 4), "int64")
    loss, prob = ops.softmax_cross_entropy(x, y)
    assert loss.shape == () and prob.shape == (2, 3, 4, 4)


@pytest.mark.parametrize("build, message", [
    (lambda: ops.softmax_cross_entropy(dragon.placeholder((2, 3)), dragon.placeholder((2,), "int64"),
                                       axis=2), "axis 2 is out of range for 2-d input"),
    (lambda: ops.softmax_cross_entropy(dragon.placeholder((2, 3)), dragon.placeholder((2,), "int64"),
                                       normalization="MEAN"), "normalization must be one of"),
    (lambda: ops.softmax_cross_entropy(dragon.placeholder((2, 3), "int32"),
                                       dragon.placeholder((2,), "int64")),
     "logits must be a float tensor, got int32"),
    (lambda: ops.sigmoid_cross_entropy(dragon.placeholder((2, 3)), dragon.placeholder((2, 4))),
     r"targets \(2, 4\) must have as many entries as logits \(2, 3\)"),
    (lambda: ops.euclidean_loss(dragon.placeholder((2, 3)), dragon.placeholder((3, 2))),
     r"B \(3, 2\) must have the shape of A \(2, 3\)"),
    (lambda: ops.smooth_l1_loss(dragon.placeholder((2, 3)), dragon.placeholder((2, 3)), sigma=0.0),
     "sigma must be positive"),
    (lambda: ops.smooth_l1_loss(dragon.placeholder((2, 3)), dragon.placeholder((2, 3)),
                                normalization="VALID"), r"one of \['FULL', 'BATCH_SIZE', 'NONE'\]"),
    (lambda: ops.smooth_l1_loss(dragon.placeholder((2, 3)), dragon.placeholder((2, 3)),
                                dragon.placeholder((3, 2))),
     r"inside weights \(3, 2\) must have the shape of X \(2, 3\)"),
    (lambda: ops.hinge_loss(dragon.placeholder((2, 3)), dragon.placeholder((2,), "int64"),
                            norm="L3"), "norm must be one of"),
    (lambda: ops.hinge_loss(dragon.placeholder((4,)), dragon.placeholder((4,), "int64")),
     r"scores \(4,\) must have shape \(N, C, ...\)"),
    (lambda: ops.infogain_loss(dragon.placeholder((2, 3)), dragon.placeholder((2,), "int64"),
                               dragon.placeholder((2, 2))), r"H \(2, 2\) must be 3x3"),
    (lambda: ops.contrastive_loss(dragon.placeholder((4, 2)), dragon.placeholder((4, 2)),
                                  dragon.placeholder((3,))), "one entry per row"),
    (lambda: ops.categorical_cross_entropy(dragon.placeholder((2, 3)),
                                           dragon.placeholder((2, 3, 1))),
     r"targets \(2, 3, 1\) must be class indices \(N,\) or rows"),
    (lambda: ops.label_cross_entropy(dragon.placeholder((2, 3, 4)),
                                     dragon.placeholder((2,), "int64")),
     r"must be a matrix \(N, C\)"),
    (lambda: ops.accuracy(dragon.placeholder((2, 3)), dragon.placeholder((2,), "int64"), top_k=4),
     r"top_k must be in \[1, 3\]"),
])
def test_bad_shapes_and_arguments_raise_clear_errors(build, message):
    with pytest.raises(dragon.ShapeError, match=message):
        build()


def test_out_of_range_label_fails_at_run_time_naming_the_label():
    x, y = ph(np.zeros((2, 3), "float32")), ph(np.array([0, 3]))
    loss, _ = ops.softmax_cross_entropy(x, y, name="xent_range")
    with pytest.raises(dragon.ShapeError, match=r"xent_range.*label 3 is not a class index in "
                                                r"\[0, 3\)"):
        run(loss, {x: np.zeros((2, 3), "float32"), y: np.array([0, 3])})


def test_negative_label_is_an_error_unless_it_is_the_ignore_label():
    scores = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], "float32")
    x, y = ph(scores), ph(np.array([0, -1]))
    feeds = {x: scores, y: np.array([0, -1])}
    with pytest.raises(dragon.ShapeError, match="label -1"):
        run(ops.accuracy(x, y), feeds)
    assert run(ops.accuracy(x, y, ignore_label=-1, has_ignore_label=True), feeds) == 1.0


def test_no_gradient_for_sigmoid_targets_or_smooth_l1_weights():
    x, t = dragon.placeholder((2, 3), "float64"), dragon.placeholder((2, 3), "float64")
    with pytest.raises(dragon.NoGradientError, match="SigmoidCrossEntropy.*targets"):
        dragon.grad(ops.sigmoid_cross_entropy(x, t), [x, t])
    w = dragon.placeholder((2, 3), "float64")
    with pytest.raises(dragon.NoGradientError, match="SmoothL1Loss.*weights"):
        dragon.grad(ops.smooth_l1_loss(x, t, w), [x, w])


# -- values --------------------------------------------------------------------------------------

def test_all_labels_ignored_costs_zero_with_zero_gradient():
    logits = np.array([[1.0, 2.0], [0.5, -1.0]])
    x, y = ph(logits), ph(np.array([7, 7]))
    loss, _ = ops.softmax_cross_entropy(x, y, ignore_label=7, has_ignore_label=True)
    value, grad = run([loss, dragon.grad(loss, x)], {x: logits, y: np.array([7, 7])})
    assert value == 0.0
    np.testing.assert_array_equal(grad, np.zeros_like(logits))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_cross_entropy_is_exact_where_the_probability_underflows(dtype):
    logits = np.array([[0.0, 1000.0], [-500.0, 500.0]], dtype)
    x, y = ph(logits), ph(np.array([0, 0]))
    loss, prob = ops.softmax_cross_entropy(x, y, normalization="NONE")
    value, probabilities = run([loss, prob], {x: logits, y: np.array([0, 0])})
    assert value.dtype == np.dtype(dtype) and value.shape == ()
    assert value == pytest.approx(2000.0)
    np.testing.assert_array_equal(probabilities, [[0.0, 1.0], [0.0, 1.0]])


def test_sigmoid_cross_entropy_does_not_overflow():
    logits = np.array([[-200.0, 200.0]], "float32")
    x, t = ph(logits), ph(np.array([[1.0, 0.0]], "float32"))
    loss = ops.sigmoid_cross_entropy(x, t)
    value, grad = run([loss, dragon.grad(loss, x)], {x: logits, t: np.array([[1.0, 0.0]], "float32")})
    assert value == pytest.approx(400.0)
    np.testing.assert_allclose(grad, [[-1.0, 1.0]])


def test_zero_probability_costs_log_floor_not_inf():
    p, t = ph(np.array([0.0, 1.0])), ph(np.array([1.0, 0.0]))
    value = run(ops.binary_cross_entropy(p, t), {p: np.array([0.0, 1.0]), t: np.array([1.0, 0.0])})
    np.testing.assert_allclose(value, [-np.log(1e-20)] * 2)


def test_accuracy_counts_ties_against_the_label():
    scores = np.full((2, 4), 0.25)
    x, y = ph(scores), ph(np.array([0, 3]))
    feeds = {x: scores, y: np.array([0, 3])}
    assert run(ops.accuracy(x, y, top_k=3), feeds) == 0.0
    assert run(ops.accuracy(x, y, top_k=4), feeds) == 1.0


def test_accuracy_with_every_label_ignored_is_zero():
    x, y = ph(np.ones((2, 3))), ph(np.array([5, 5]))
    value = run(ops.accuracy(x, y, ignore_label=5, has_ignore_label=True),
                {x: np.ones((2, 3)), y: np.array([5, 5])})
    assert value == 0.0


def test_categorical_cross_entropy_gives_soft_targets_a_gradient():
    probs = np.array([[0.2, 0.8], [0.6, 0.4]])
    targets = np.array([[0.0, 1.0], [0.5, 0.5]])
    p, t = ph(probs), ph(targets)
    cost = ops.reduce_sum(ops.categorical_cross_entropy(p, t))
    dp, dt = run(dragon.grad(cost, [p, t]), {p: probs, t: targets})
    np.testing.assert_allclose(dp, -targets / probs)
    np.testing.assert_allclose(dt, -np.log(probs))


# -- through the planner ----------------------------------------------------------------------

def test_training_graph_gives_the_same_results_at_every_optimization_level():
    rng = np.random.default_rng(0)
    data = rng.standard_normal((6, 4))
    label_values = np.array([0, 2, 1, 2, 0, 1])
    x, y = ph(data, "plan_x"), ph(label_values, "plan_y")
    w = dragon.variable(rng.standard_normal((4, 3)), name="plan_w")
    scores = x @ w
    loss, _ = ops.softmax_cross_entropy(scores, y)
    hinge = ops.hinge_loss(scores, y, norm="L2")
    cost = loss + hinge + ops.reduce_mean(ops.label_cross_entropy(ops.softmax(scores, axis=1), y))
    outputs = [cost, ops.accuracy(scores, y), dragon.grad(cost, w)]
    feeds = {x: data, y: label_values}
    levels = [run(outputs, feeds, level) for level in range(4)]
    for results in levels[1:]:
        for got, want in zip(results, levels[0]):
            np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_case_gives_the_same_values_and_gradients_at_every_optimization_level(case):
    phs, outs = opcase.build(case)
    fetches = list(outs)
    if case.grad_indices():
        cost = ops.reduce_sum(outs[0])
        fetches += dragon.grad(cost, [phs[i] for i in case.grad_indices()])
    feeds = dict(zip(phs, case.inputs))
    results = [run(fetches, feeds, level) for level in range(4)]
    for level, values in enumerate(results[1:], start=1):
        for got, want in zip(values, results[0]):
            np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"level {level}")
