"""Activations beyond the registry-wide cases: extreme inputs, dtypes, planning, dropout, errors."""
import warnings

import numpy as np
import pytest

import dragon
from dragon.core.tensor import apply
from tests.ops import opcase
from tests.ops.cases_activation import CASES

EXTREMES = np.array([-1000.0, -100.0, -20.0, -1e-3, 0.0, 1e-3, 20.0, 100.0, 1000.0])
GRAD_CASES = [c for c in CASES if c.grad_indices()]


def _run(op_type, x, **args):
    """Forward of ``op_type`` on ``x`` and the gradient of sum(Y) w.r.t. ``x``."""
    ph = dragon.placeholder(x.shape, x.dtype, name="x")
    y = apply(op_type, [ph], **args)
    gx = dragon.grad(dragon.ops.reduce_sum(y), ph)
    return dragon.function([ph], [y, gx])(x)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op_type, forward, derivative", [
    ("Sigmoid", lambda x: 1 / (1 + np.exp(-x)), lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2),
    ("Softplus", lambda x: np.logaddexp(0, x), lambda x: 1 / (1 + np.exp(-x))),
    ("Elu", lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
     lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0)))),
    ("Swish", lambda x: x / (1 + np.exp(-x)),
     lambda x: 1 / (1 + np.exp(-x)) + x * np.exp(-x) / (1 + np.exp(-x)) ** 2),
    ("Tanh", np.tanh, lambda x: 1 / np.cosh(x) ** 2),
    ("Softsign", lambda x: x / (1 + abs(x)), lambda x: 1 / (1 + abs(x)) ** 2),
])
def test_extreme_inputs_neither_overflow_nor_warn(op_type, forward, derivative, dtype):
    x = EXTREMES.astype(dtype)
    with np.errstate(all="ignore"):
        want_y, want_dx = forward(EXTREMES), np.nan_to_num(derivative(EXTREMES))
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        y, dx = _run(op_type, x)
    assert y.dtype == dx.dtype == np.dtype(dtype)
    tol = 1e-6 if dtype == "float32" else 1e-13
    np.testing.assert_allclose(y, want_y, rtol=tol, atol=tol)
    np.testing.assert_allclose(dx, want_dx, rtol=tol, atol=tol)


def test_softplus_keeps_tiny_values_and_gradients_precise():
    x = np.array([-30.0, -60.0], "float64")
    y, dx = _run("Softplus", x)
    np.testing.assert_allclose(y, np.exp(x), rtol=1e-12)   # log(1 + e) ~ e
    np.testing.assert_allclose(dx, np.exp(x), rtol=1e-12)  # sigmoid(x) ~ e^x


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax"])
def test_softmax_is_shift_invariant_for_huge_logits(op_type):
    small = np.array([[0.0, 1.0, 2.0]], "float32")
    y_big, _ = _run(op_type, small + 1e4, axis=-1)
    y_small, _ = _run(op_type, small, axis=-1)
    assert np.isfinite(y_big).all()
    np.testing.assert_allclose(y_big, y_small, rtol=1e-6, atol=1e-6)


def test_log_softmax_stays_finite_where_softmax_underflows():
    x = np.array([[0.0, -1e4]], "float32")
    y, dx = _run("LogSoftmax", x, axis=1)
    np.testing.assert_allclose(y, [[0.0, -1e4]], rtol=1e-6)
    assert np.isfinite(dx).all()


def test_softmax_default_axis_is_the_channel_axis():
    x = opcase.rand(2, 3, 4, 5)
    y, _ = _run("Softmax", x)
    np.testing.assert_allclose(y.sum(axis=1), np.ones((2, 4, 5)), rtol=1e-12)


@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.id for c in GRAD_CASES])
def test_gradients_of_float32_inputs_are_float32(case):
    inputs = [np.asarray(x, np.float32) for x in case.inputs]
    phs, cost = opcase._cost_graph(opcase.Case(case.op, inputs, case.args,
                                               grad_outputs=case.grad_outputs))
    grads = dragon.grad(cost, [phs[i] for i in case.grad_indices()])
    if case.seed is not None:
        dragon.config.set_random_seed(case.seed)
    for g in dragon.function(phs, grads)(*inputs):
        assert g.dtype == np.float32


def _at_level(level, phs, outputs, case):
    previous = dragon.config.get_optimization_level()
    dragon.config.set_optimization_level(level)
    try:
        f = dragon.function(phs, outputs)
        if case.seed is not None:
            dragon.config.set_random_seed(case.seed)
        return f(*case.inputs)
    finally:
        dragon.config.set_optimization_level(previous)


@pytest.mark.parametrize("case", GRAD_CASES, ids=[c.id for c in GRAD_CASES])
def test_in_place_and_shared_buffers_do_not_change_results(case):
    """Levels 1-3 run the declared in-place kernels over dying inputs; level 0 never does."""
    phs, outs = opcase.build(case)
    phs_g, cost = opcase._cost_graph(case)
    grads = dragon.grad(cost, [phs_g[i] for i in case.grad_indices()])
    for phs_k, fetch in ((phs, outs), (phs_g, grads)):
        want = _at_level(0, phs_k, fetch, case)
        for level in (1, 2, 3):
            for got, expected in zip(_at_level(level, phs_k, fetch, case), want):
                np.testing.assert_array_equal(got, expected, err_msg=f"level {level}")


def test_ultra_fast_sigmoid_approximates_sigmoid_and_has_no_gradient():
    x = np.linspace(-10, 10, 201)
    ph = dragon.placeholder(x.shape, x.dtype, name="ufs_x")
    y = dragon.ops.ultra_fast_sigmoid(ph)
    np.testing.assert_allclose(dragon.function([ph], y)(x), 1 / (1 + np.exp(-x)), atol=0.03)
    with pytest.raises(dragon.NoGradientError, match="UltraFastSigmoid"):
        dragon.grad(dragon.ops.reduce_sum(y), ph)


def test_threshold_passes_no_gradient():
    x = opcase.rand(3, 4)
    ph = dragon.placeholder(x.shape, x.dtype, name="thr_x")
    cost = dragon.ops.reduce_sum(dragon.ops.threshold(ph, threshold=0.2) + ph)
    gx = dragon.function([ph], dragon.grad(cost, ph))(x)
    np.testing.assert_array_equal(gx, np.ones_like(x))


def test_prelu_takes_a_scalar_shared_slope():
    case = opcase.Case("PRelu", [opcase.away_from(opcase.rand(2, 3)), np.array(0.3)],
                       reference=lambda x, s: np.where(x > 0, x, s * x))
    opcase.check_forward(case)
    opcase.check_gradient(case)


# -- dropout ---------------------------------------------------------------------------------

def _dropout(x, seed, **args):
    ph = dragon.placeholder(x.shape, x.dtype, name="drop_x")
    f = dragon.function([ph], apply("Dropout", [ph], **args))
    dragon.config.set_random_seed(seed)
    return f(x)


def test_dropout_masks_repeat_bit_for_bit_under_one_seed():
    x = np.ones((50, 40), "float32")
    _, mask_a = _dropout(x, 11, prob=0.5)
    _, mask_b = _dropout(x, 11, prob=0.5)
    _, mask_c = _dropout(x, 12, prob=0.5)
    np.testing.assert_array_equal(mask_a, mask_b)
    assert (mask_a != mask_c).any()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dropout_keeps_the_expected_fraction_in_the_input_dtype(dtype):
    x = np.full((100, 100), 2.0, dtype)
    y, mask = _dropout(x, 5, prob=0.2)
    assert y.dtype == mask.dtype == np.dtype(dtype)
    assert set(np.unique(mask)) == {0.0, np.dtype(dtype).type(1 / 0.8)}
    assert abs(np.count_nonzero(mask) / mask.size - 0.8) < 0.03
    assert abs(y.mean() - 2.0) < 0.1  # scaling keeps the expectation


def test_dropout_in_inference_passes_the_input_through():
    x = opcase.rand(3, 4)
    y, mask = _dropout(x, 1, prob=0.5, training=False)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(mask, np.ones_like(x))


@pytest.mark.parametrize("prob", [-0.1, 1.0, 1.5])
def test_dropout_rejects_probabilities_outside_0_1(prob):
    ph = dragon.placeholder((2, 3), name="bad_drop")
    with pytest.raises(dragon.ShapeError, match=rf"Dropout.*prob must be in \[0, 1\), got {prob}"):
        apply("Dropout", [ph], prob=prob)


# -- errors name the shapes and arguments ----------------------------------------------------

@pytest.mark.parametrize("x_shape, slope_shape", [((2, 3, 4), (4,)), ((2, 3), (1, 1)), ((5,), (5,))])
def test_prelu_slope_that_does_not_fit_names_both_shapes(x_shape, slope_shape):
    x = dragon.placeholder(x_shape, name="px")
    s = dragon.placeholder(slope_shape, name="ps")
    with pytest.raises(dragon.ShapeError, match=rf"PRelu: slope of shape \({slope_shape[0]},.*"
                                                rf"input of shape \({x_shape[0]},"):
        apply("PRelu", [x, s])


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax"])
def test_softmax_axis_out_of_range(op_type):
    x = dragon.placeholder((4, 5), name="sx")
    with pytest.raises(dragon.ShapeError, match=rf"{op_type}: axis 2 is out of range for 2-d"):
        apply(op_type, [x], axis=2)


@pytest.mark.parametrize("op_type", ["Sigmoid", "Tanh", "Softmax", "Dropout", "PRelu"])
def test_integer_inputs_are_rejected(op_type):
    x = dragon.placeholder((2, 3), "int32", name="ix")
    inputs = [x, dragon.placeholder((3,), name="is")] if op_type == "PRelu" else [x]
    with pytest.raises(dragon.ShapeError, match=rf"{op_type}: needs a floating-point input, got int32"):
        apply(op_type, inputs)


@pytest.mark.parametrize("op_type, args, message", [
    ("Elu", {"alpha": -1.0}, "alpha must be >= 0, got -1.0"),
    ("Selu", {"scale": 0.0}, "scale must be > 0, got 0.0"),
])
def test_elu_arguments_are_validated(op_type, args, message):
    x = dragon.placeholder((2, 3), name="ex")
    with pytest.raises(dragon.ShapeError, match=rf"{op_type}: {message}"):
        apply(op_type, [x], **args)


def test_gradient_op_with_mismatched_dy_names_both_shapes():
    y = dragon.placeholder((2, 3), name="gy")
    dy = dragon.placeholder((3, 2), name="gdy")
    with pytest.raises(dragon.ShapeError,
                       match=r"SigmoidGradient: dY has shape \(3, 2\) but the forward tensor "
                             r"has shape \(2, 3\)"):
        apply("SigmoidGradient", [y, dy])
