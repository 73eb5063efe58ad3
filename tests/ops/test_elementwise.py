"""Behaviour of dragon/ops/elementwise.py that the registry cases do not cover:
errors, dtypes, tie rules, exact gradients at zeros and kinks, in-place runs."""
import math

import numpy as np
import pytest

import dragon
from dragon.core.tensor import apply


def _placeholders(inputs):
    return [dragon.placeholder(np.shape(x), np.asarray(x).dtype) for x in inputs]


def run(op_type, *inputs, level=0, **args):
    """The outputs of ``op_type`` on ``inputs`` at optimization ``level``."""
    phs = _placeholders(inputs)
    previous = dragon.config.get_optimization_level()
    dragon.config.set_optimization_level(level)
    try:
        outputs = apply(op_type, phs, **args)
        return dragon.function(phs, outputs if isinstance(outputs, list) else [outputs])(*inputs)
    finally:
        dragon.config.set_optimization_level(previous)


def gradients(op_type, *inputs, **args):
    """Gradients of sum(op(inputs)) for every input (None where none flows)."""
    phs = _placeholders(inputs)
    cost = dragon.ops.reduce_sum(apply(op_type, phs, **args))
    grads = dragon.grad(cost, phs, disconnected="ignore")
    present = [g for g in grads if g is not None]
    values = iter(dragon.function(phs, present)(*inputs) if present else [])
    return [None if g is None else next(values) for g in grads]


# -- errors name the op, the shapes and the bad argument -------------------------------------

def test_binary_shapes_that_do_not_broadcast():
    a, b = dragon.placeholder((3, 4)), dragon.placeholder((5,))
    with pytest.raises(dragon.ShapeError, match=r"Maximum.*\(3, 4\).*\(5,\)"):
        dragon.ops.maximum(a, b)
    with pytest.raises(dragon.ShapeError, match=r"Less.*\(3, 4\).*\(5,\)"):
        a < b


def test_clip_bounds_out_of_order():
    x = dragon.placeholder((2,))
    with pytest.raises(dragon.ShapeError, match=r"Clip.*low=1\.0 must not exceed high=-1\.0"):
        dragon.ops.clip(x, low=1.0, high=-1.0)


def test_round_unknown_mode():
    x = dragon.placeholder((2,))
    with pytest.raises(dragon.ShapeError, match=r"Round.*half_to_even.*'half_up'"):
        dragon.ops.round(x, mode="half_up")


def test_cumsum_axis_out_of_range_and_scalar_input():
    with pytest.raises(dragon.ShapeError, match=r"CumSum.*axis 2 is out of range.*\(3, 4\)"):
        dragon.ops.cum_sum(dragon.placeholder((3, 4)), axis=2)
    with pytest.raises(dragon.ShapeError, match=r"CumSum.*at least 1 dimension"):
        dragon.ops.cum_sum(dragon.placeholder(()))


def test_max_over_an_empty_axis():
    with pytest.raises(dragon.ShapeError, match=r"ReduceMax.*empty axes \[1\].*\(2, 0\)"):
        dragon.ops.reduce_max(dragon.placeholder((2, 0)), axes=[1])


def test_dtype_errors_name_the_dtype():
    with pytest.raises(dragon.ShapeError, match=r"Abs.*integer or float.*bool"):
        dragon.ops.abs(dragon.placeholder((2,), "bool"))
    with pytest.raises(dragon.ShapeError, match=r"Exp.*complex128"):
        dragon.ops.exp(dragon.placeholder((2,), "complex128"))


def test_gradient_op_checks_dy_shape():
    x, y, dy = dragon.placeholder((2, 3)), dragon.placeholder((2,)), dragon.placeholder((3,))
    with pytest.raises(dragon.ShapeError, match=r"ReduceExtremumGradient.*dY has shape \(3,\)"):
        apply("ReduceExtremumGradient", [x, y, dy], axes=[1])


# -- dtypes ----------------------------------------------------------------------------------

def test_float_ops_upcast_integers_like_theano():
    small = np.array([1, 2, 3], np.int8)
    y, = run("Exp", small)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, np.exp(small.astype(np.float64)), rtol=1e-6)  # not float16
    y, = run("Sqrt", np.array([4, 9], np.int32))
    assert y.dtype == np.float64 and y.tolist() == [2.0, 3.0]
    y, = run("Power", np.array([1, 2], np.int64), power=2.0, scale=0.5)
    assert y.dtype == np.float64 and y.tolist() == [0.25, 1.0]


def test_integral_ops_keep_integer_dtypes():
    x = np.array([-2, 0, 3], np.int64)
    for op_type in ("Abs", "Sign", "Floor", "Ceil", "Round"):
        y, = run(op_type, x)
        assert y.dtype == np.int64, op_type
    y, = run("Round", x, mode="half_away_from_zero")
    assert y.tolist() == [-2, 0, 3]


def test_comparisons_and_logic_give_bool():
    a, b = np.array([1, 5, 3], np.int32), np.array([2.0, 5.0, 1.0])
    assert run("GreaterEqual", a, b)[0].tolist() == [False, True, True]
    y, = run("Xor", a, np.array([0, 1, 1], np.int32))
    assert y.dtype == np.bool_ and y.tolist() == [True, False, False]


def test_python_operators_build_these_ops():
    x, y = dragon.placeholder((2,)), dragon.placeholder((2,))
    assert (x ** 2).node.type == "Pow"
    assert abs(x).node.type == "Abs"
    assert (x < y).node.type == "Less" and (x >= 0.5).node.type == "GreaterEqual"


# -- rounding ----------------------------------------------------------------------------------

def test_round_modes_on_ties():
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
    assert run("Round", x)[0].tolist() == [-2, -2, -0, 0, 2, 2]
    assert run("Round", x, mode="half_away_from_zero")[0].tolist() == [-3, -2, -1, 1, 2, 3]


def test_round_away_from_zero_just_below_a_half():
    # 0.49999999999999994 + 0.5 rounds up to 1.0 in float64: a naive floor(x + 0.5) gives 1.
    x = np.array([0.49999999999999994, -0.49999999999999994, 2.0**52 - 0.5, 1e300])
    y, = run("Round", x, mode="half_away_from_zero")
    assert y.tolist() == [0.0, 0.0, 2.0**52, 1e300]


# -- erf ---------------------------------------------------------------------------------------

def test_erf_matches_math_erf_everywhere():
    x = np.linspace(-8.0, 8.0, 4001)
    expected = np.array([math.erf(v) for v in x])
    y, = run("Erf", x)
    np.testing.assert_allclose(y, expected, rtol=1e-13, atol=1e-300)
    y32, = run("Erf", x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, expected, rtol=0, atol=1e-5)


def test_erf_non_finite_and_empty():
    y, = run("Erf", np.array([np.nan, np.inf, -np.inf]))
    assert np.isnan(y[0]) and y[1:].tolist() == [1.0, -1.0]
    assert run("Erf", np.zeros((0, 3)))[0].shape == (0, 3)


# -- gradients at ties, zeros and kinks --------------------------------------------------------

def test_maximum_and_minimum_send_ties_to_the_first_input():
    a, b = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 3.0])
    da, db = gradients("Maximum", a, b)
    assert da.tolist() == [1.0, 1.0, 1.0] and db.tolist() == [0.0, 0.0, 0.0]
    da, db = gradients("Minimum", a, b)
    assert da.tolist() == [1.0, 0.0, 1.0] and db.tolist() == [0.0, 1.0, 0.0]


def test_maximum_gradient_sums_over_broadcast_axes():
    da, db = gradients("Maximum", np.array([[0.0, 5.0], [2.0, -1.0]]), np.array([1.0]))
    assert da.tolist() == [[0.0, 1.0], [1.0, 0.0]] and db.tolist() == [2.0]


def test_reduce_max_and_min_split_ties_equally():
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, 5.0, 1.0]])
    dx, = gradients("ReduceMax", x, axes=[1])
    np.testing.assert_allclose(dx, [[0, 0.5, 0.5], [1 / 3] * 3, [0, 1, 0]])
    dx, = gradients("ReduceMin", x, axes=[0], keepdims=True)
    np.testing.assert_allclose(dx, [[0, 0, 0], [0, 1, 0], [1, 0, 1]])


def test_reduce_prod_gradient_is_exact_at_zeros():
    x = np.array([[2.0, 3.0, 4.0], [2.0, 0.0, 4.0], [0.0, 3.0, 0.0]])
    dx, = gradients("ReduceProd", x, axes=[1])
    assert dx.tolist() == [[12.0, 8.0, 6.0], [0.0, 8.0, 0.0], [0.0, 0.0, 0.0]]


def test_clip_gradient_is_zero_on_the_bounds():
    dx, = gradients("Clip", np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), low=-1.0, high=1.0)
    assert dx.tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    dx, = gradients("Clip", np.array([-1e30, 1e30]))  # no bounds: identity
    assert dx.tolist() == [1.0, 1.0]


def test_pow_gradients_at_zero_and_negative_bases():
    with np.errstate(divide="ignore", invalid="ignore"):
        da, db = gradients("Pow", np.array([0.0, 2.0, -2.0]), np.array([3.0, 0.5, 2.0]))
    np.testing.assert_allclose(da, [0.0, 0.5 / math.sqrt(2.0), -4.0])  # b a^(b-1) stays finite
    np.testing.assert_allclose(db[1], math.sqrt(2.0) * math.log(2.0))
    assert np.isnan(db[0]) and np.isnan(db[2])  # y log(a): documented NaN where a <= 0


def test_abs_gradient_at_zero_is_zero():
    assert gradients("Abs", np.array([-2.0, 0.0, 3.0]))[0].tolist() == [-1.0, 0.0, 1.0]


def test_piecewise_constant_ops_pass_no_gradient():
    for op_type in ("Floor", "Ceil", "Round", "Sign"):
        assert gradients(op_type, np.array([0.3, 1.7])) == [None], op_type
    x = dragon.placeholder((2,), "float64")
    cost = dragon.ops.reduce_sum(x * dragon.ops.floor(x))  # the other path still carries one
    g, = dragon.grad(cost, [x])
    assert dragon.function([x], g)(np.array([0.5, 2.5])).tolist() == [0.0, 2.0]


def test_power_gradient_special_powers():
    x = np.array([-1.0, 0.0, 2.0])
    assert gradients("Power", x, power=0.0, scale=3.0) == [None]
    assert gradients("Power", x, power=1.0, scale=3.0, shift=5.0)[0].tolist() == [3.0] * 3
    dx, = gradients("Power", x, power=3.0, scale=2.0, shift=1.0)  # 6 (1 + 2x)^2
    assert dx.tolist() == [6.0, 6.0, 150.0]


def test_cumsum_on_an_empty_axis():
    y, = run("CumSum", np.zeros((0, 2)), exclusive=True, reverse=True)
    assert y.shape == (0, 2)


# -- in-place and shared buffers -------------------------------------------------------------

@pytest.mark.parametrize("level", [1, 2, 3])
def test_chained_ops_agree_across_optimization_levels(level):
    x = dragon.placeholder((4, 3), "float64")
    h = dragon.ops.round(dragon.ops.power(x, power=1.0, scale=3.0), mode="half_away_from_zero")
    h = dragon.ops.erf(dragon.ops.clip(x + 0.1 * h, low=-0.8, high=0.9))
    h = dragon.ops.maximum(dragon.ops.cum_sum(h, axis=1, reverse=True), 0.2 * x)
    top, product = dragon.ops.reduce_max(h, axes=[0]), dragon.ops.reduce_prod(h, axes=[0])
    cost = dragon.ops.reduce_sum(top * product)
    g, = dragon.grad(cost, [x])
    value = np.random.default_rng(3).uniform(-1.2, 1.2, size=(4, 3))
    previous = dragon.config.get_optimization_level()
    try:
        results = []
        for lv in (0, level):
            dragon.config.set_optimization_level(lv)
            results.append(dragon.function([x], [cost, g])(value))
    finally:
        dragon.config.set_optimization_level(previous)
    for plain, optimized in zip(*results):
        np.testing.assert_allclose(optimized, plain, rtol=1e-12)

