"""Elementwise math, comparisons and logic, and the max/min/prod/cumulative reductions.

Unary ops whose result stays integral (Abs, Square, Sign, Floor, Ceil, Round)
keep an integer input's dtype; the others give floats, as Theano does: bool,
int8 and int16 become float32, wider integers float64. Binary ops broadcast
like numpy, and their gradients are summed back to each input's shape::

    y = dragon.ops.power(x, power=2.0, scale=0.5, shift=1.0)   # (1 + x / 2) ** 2
    m = dragon.ops.reduce_max(x, axes=[1], keepdims=True)
    mask = dragon.ops.less(x, m)                               # bool, no gradient
"""
from __future__ import annotations

import math

import numpy as np

from dragon.core.errors import ShapeError
from dragon.ops.math import _reduce_shape, _register_binary, _unbroadcast
from dragon.ops.registry import Spec, broadcast_shapes, normalize_axis, register

_NUMERIC_KINDS = "iuf"
_REAL_KINDS = "biuf"


# -- shape rules and small helpers -----------------------------------------------------------

def _require_kind(x, kinds, what):
    if x.dtype.kind not in kinds:
        raise ShapeError(f"needs {what} input, got dtype {x.dtype}")


def _float_dtype(dtype):
    """The float dtype a float-valued op gives for ``dtype`` (Theano's upcast)."""
    if dtype.kind == "f":
        return dtype
    return np.result_type(dtype, np.float32)


def _same_numeric_spec(x, **args):
    _require_kind(x, _NUMERIC_KINDS, "an integer or float")
    return x


def _float_spec(x, **args):
    _require_kind(x, _REAL_KINDS, "a bool, integer or float")
    return x.with_dtype(_float_dtype(x.dtype))


def _bool_spec(x):
    return x.with_dtype(np.bool_)


def _bool_binary_spec(a, b):
    return Spec(broadcast_shapes(a.shape, b.shape), np.dtype(np.bool_))


def _no_gradient(g):
    return [None] * g.num_inputs


def _affine(g, t, scale=1.0, shift=0.0):
    """``scale * t + shift``, built with the Power op at power 1."""
    return g.op("Power", [t], scale=float(scale), shift=float(shift))


def _copy(xp, x, out):
    if out is not x:
        xp.copyto(out, x)


# -- unary math ------------------------------------------------------------------------------

def _register_float_unary(type_name, ufunc_name, doc, grad_rule):
    def kernel(xp, x, *, out):
        # dtype= makes small integer inputs compute in the output's float type, not float16.
        getattr(xp, ufunc_name)(x, out=out, dtype=out.dtype)
    kernel.__doc__ = doc
    schema = register(type_name, inplace={0: 0}, recompute=True)(kernel)
    schema.shape(_float_spec)
    schema.grad(grad_rule)
    return schema


_register_float_unary("Exp", "exp", "Y = exp(X).",
                      lambda g: [g.op("Mul", [g.dY(0), g.Y(0)])])
_register_float_unary("Log", "log", "Y = log(X), natural logarithm.",
                      lambda g: [g.op("Div", [g.dY(0), g.X(0)])])
_register_float_unary("Log1p", "log1p", "Y = log(1 + X), accurate for small X.",
                      lambda g: [g.op("Div", [g.dY(0), _affine(g, g.X(0), shift=1.0)])])
_register_float_unary("Expm1", "expm1", "Y = exp(X) - 1, accurate for small X.",
                      lambda g: [g.op("Mul", [g.dY(0), _affine(g, g.Y(0), shift=1.0)])])
_register_float_unary("Sqrt", "sqrt", "Y = sqrt(X).",
                      lambda g: [g.op("Div", [g.dY(0), _affine(g, g.Y(0), scale=2.0)])])
_register_float_unary("Sin", "sin", "Y = sin(X), X in radians.",
                      lambda g: [g.op("Mul", [g.dY(0), g.op("Cos", [g.X(0)])])])
_register_float_unary("Cos", "cos", "Y = cos(X), X in radians.",
                      lambda g: [g.op("Neg", [g.op("Mul", [g.dY(0), g.op("Sin", [g.X(0)])])])])


@register("Rsqrt", inplace={0: 0}, recompute=True)
def rsqrt(xp, x, *, out):
    """Y = 1 / sqrt(X)."""
    xp.sqrt(x, out=out, dtype=out.dtype)
    xp.true_divide(1, out, out=out)


rsqrt.shape(_float_spec)


@rsqrt.grad
def _(g):  # d/dx x^(-1/2) = -y^3 / 2
    return [g.op("Mul", [_affine(g, g.dY(0), scale=-0.5), g.op("Power", [g.Y(0)], power=3.0)])]


@register("Reciprocal", inplace={0: 0}, recompute=True)
def reciprocal(xp, x, *, out):
    """Y = 1 / X (true division: integer inputs give floats)."""
    xp.true_divide(1, x, out=out, dtype=out.dtype)


reciprocal.shape(_float_spec)


@reciprocal.grad
def _(g):
    return [g.op("Neg", [g.op("Mul", [g.dY(0), g.op("Square", [g.Y(0)])])])]


@register("Abs", inplace={0: 0}, recompute=True)
def abs_(xp, x, *, out):
    """Y = |X|."""
    xp.absolute(x, out=out)


abs_.shape(_same_numeric_spec)


@abs_.grad
def _(g):
    return [g.op("Mul", [g.dY(0), g.op("Sign", [g.X(0)])])]


@register("Square", inplace={0: 0}, recompute=True)
def square(xp, x, *, out):
    """Y = X * X."""
    xp.square(x, out=out)


square.shape(_same_numeric_spec)


@square.grad
def _(g):
    return [g.op("Mul", [g.dY(0), _affine(g, g.X(0), scale=2.0)])]


@register("Sign", inplace={0: 0}, recompute=True)
def sign(xp, x, *, out):
    """Y = -1, 0 or 1 as X is negative, zero or positive (NaN stays NaN); zero gradient."""
    xp.sign(x, out=out)


sign.shape(_same_numeric_spec)
sign.grad(_no_gradient)


def _register_integral_unary(type_name, ufunc_name, doc):
    def kernel(xp, x, *, out):
        if x.dtype.kind in "iu":  # already integral
            _copy(xp, x, out)
        else:
            getattr(xp, ufunc_name)(x, out=out)
    kernel.__doc__ = doc
    schema = register(type_name, inplace={0: 0}, recompute=True)(kernel)
    schema.shape(_same_numeric_spec)
    schema.grad(_no_gradient)
    return schema


_register_integral_unary("Floor", "floor", "Y = the largest integer <= X; zero gradient.")
_register_integral_unary("Ceil", "ceil", "Y = the smallest integer >= X; zero gradient.")

_ROUND_MODES = ("half_to_even", "half_away_from_zero")


@register("Round", args={"mode": "half_to_even"}, inplace={0: 0}, recompute=True)
def round_(xp, x, *, out, mode, scratch=()):
    """Y = X rounded to the nearest integer; zero gradient.

    Ties go to the even neighbour with mode="half_to_even" (numpy's rounding,
    2.5 -> 2) and away from zero with mode="half_away_from_zero" (Theano's
    default, C's round(), 2.5 -> 3).
    """
    if x.dtype.kind in "iu":
        _copy(xp, x, out)
    elif mode == "half_to_even":
        xp.round(x, out=out)
    else:
        _round_half_away_from_zero(xp, x, out, scratch[0])


def _round_half_away_from_zero(xp, x, out, whole):
    # floor(|x| + 0.5) would round 0.49999999999999994 up; the fraction x - trunc(x) is exact.
    xp.trunc(x, out=whole)                   # keeps x's sign, even as -0.0
    xp.subtract(x, whole, out=out)
    xp.absolute(out, out=out)
    xp.greater_equal(out, 0.5, out=out)      # 1 where the fraction rounds away
    xp.copysign(out, whole, out=out)
    xp.add(whole, out, out=out)


@round_.shape
def _(x, *, mode):
    if mode not in _ROUND_MODES:
        raise ShapeError(f"mode must be one of {list(_ROUND_MODES)}, got {mode!r}")
    return _same_numeric_spec(x)


@round_.scratch
def _(x, *, mode):
    return [x] if mode == "half_away_from_zero" and x.dtype.kind == "f" else []


round_.grad(_no_gradient)

# erf(x) rounds to +-1 in float64 beyond |x| = 6.
_ERF_SATURATION = 6.0


@register("Erf", inplace={0: 0})
def erf(xp, x, *, out, scratch):
    """Y = erf(X) = 2 / sqrt(pi) * integral from 0 to X of exp(-t^2) dt."""
    # Abramowitz & Stegun 7.1.6: erf(x) = 2/sqrt(pi) exp(-x^2) sum_n x (2x^2)^n / (1*3*...*(2n+1)).
    # Every term has x's sign, so the sum does not cancel as the Taylor series does.
    term, two_x2 = scratch
    xp.clip(x, -_ERF_SATURATION, _ERF_SATURATION, out=term)
    xp.multiply(term, term, out=two_x2)
    xp.multiply(two_x2, 2, out=two_x2)
    xp.copyto(out, term)
    for n in range(1, _erf_terms(term) + 1):
        xp.multiply(term, two_x2, out=term)
        xp.true_divide(term, 2 * n + 1, out=term)
        xp.add(out, term, out=out)
    xp.multiply(two_x2, -0.5, out=two_x2)
    xp.exp(two_x2, out=two_x2)
    xp.multiply(out, two_x2, out=out)
    xp.multiply(out, 2 / math.sqrt(math.pi), out=out)
    xp.clip(out, -1, 1, out=out)  # rounding can leave the tails an ulp or two beyond +-1


def _erf_terms(clipped):
    """Series terms that bring erf to float64 accuracy for every entry of ``clipped``.

    The terms peak near n = x^2 and then fall fast; x^2 + 9|x| + 8 keeps the
    relative error below 1e-13 up to |x| = 6 (checked against math.erf).
    """
    reach = float(max(clipped.max(), -clipped.min())) if clipped.size else 0.0
    if not reach <= _ERF_SATURATION:  # NaN entries stay NaN whatever the count
        reach = _ERF_SATURATION
    return math.ceil(reach * (reach + 9.0)) + 8


erf.shape(_float_spec)


@erf.scratch
def _(x):
    spec = _float_spec(x)
    return [spec, spec]


@erf.grad
def _(g):  # 2 / sqrt(pi) * exp(-x^2)
    bell = g.op("Exp", [g.op("Neg", [g.op("Square", [g.X(0)])])])
    return [g.op("Mul", [_affine(g, g.dY(0), scale=2 / math.sqrt(math.pi)), bell])]


# -- Caffe's Power layer and clipping ---------------------------------------------------------

@register("Power", args={"power": 1.0, "scale": 1.0, "shift": 0.0}, inplace={0: 0},
          recompute=True)
def power(xp, x, *, out, power, scale, shift):
    """Y = (shift + scale * X) ^ power (Caffe's Power layer); at power 1 an affine map.

    A negative base gives NaN unless ``power`` is a whole number.
    """
    if scale != 1:
        xp.multiply(x, scale, out=out, dtype=out.dtype)
    else:
        _copy(xp, x, out)
    if shift != 0:
        xp.add(out, shift, out=out)
    if power == 2:
        xp.square(out, out=out)
    elif power != 1:
        xp.power(out, power, out=out)


power.shape(_float_spec)


@power.grad
def _(g):
    exponent, scale, shift = g.args["power"], g.args["scale"], g.args["shift"]
    if exponent == 0 or scale == 0:
        return [None]  # Y is a constant
    if exponent == 1:
        return [_affine(g, g.dY(0), scale=scale)]
    # dY/dX = power * scale * (shift + scale * X) ^ (power - 1)
    base_power = g.op("Power", [g.X(0)], power=float(exponent - 1), scale=float(scale),
                      shift=float(shift))
    return [_affine(g, g.op("Mul", [g.dY(0), base_power]), scale=exponent * scale)]


@register("Clip", args={"low": -math.inf, "high": math.inf}, inplace={0: 0}, recompute=True)
def clip(xp, x, *, out, low, high):
    """Y = min(max(X, low), high); the gradient passes where low < X < high."""
    if x.dtype.kind in "iu":
        low, high = _integer_bounds(x.dtype, low, high)
    xp.clip(x, low, high, out=out)


def _integer_bounds(dtype, low, high):
    """The bounds as integers of ``dtype`` that clip integers the same way."""
    info = np.iinfo(dtype)

    def inside(v):
        return int(min(max(v, info.min), info.max))
    return (inside(math.ceil(low) if math.isfinite(low) else low),
            inside(math.floor(high) if math.isfinite(high) else high))


@clip.shape
def _(x, *, low, high):
    if not low <= high:
        raise ShapeError(f"low={low} must not exceed high={high}")
    return _same_numeric_spec(x)


@clip.grad
def _(g):
    return [g.op("ClipGradient", [g.Y(0), g.dY(0)], low=g.args["low"], high=g.args["high"])]


@register("ClipGradient", inputs=2, args={"low": -math.inf, "high": math.inf}, inplace={0: 1})
def clip_gradient(xp, y, dy, *, out, scratch, low, high):
    """dX of Clip: dY where low < Y < high (X strictly inside the bounds), 0 elsewhere."""
    inside, = scratch
    xp.greater(y, low, out=inside)
    xp.multiply(dy, inside, out=out)
    xp.less(y, high, out=inside)
    xp.multiply(out, inside, out=out)


@clip_gradient.shape
def _(y, dy, *, low, high):
    if tuple(y.shape) != tuple(dy.shape):
        raise ShapeError(f"Y has shape {tuple(y.shape)} but dY has shape {tuple(dy.shape)}")
    return dy


@clip_gradient.scratch
def _(y, dy, *, low, high):
    return [y.with_dtype(np.bool_)]


# -- binary math with broadcasting ------------------------------------------------------------

def _pow_grad(g):
    a, b, y, dy = g.X(0), g.X(1), g.Y(0), g.dY(0)
    da = db = None
    if g.needs(0):  # b * a^(b-1): finite at a = 0, where y / a is not
        slope = g.op("Mul", [b, g.op("Pow", [a, _affine(g, b, shift=-1.0)])])
        da = _unbroadcast(g, g.op("Mul", [dy, slope]), a)
    if g.needs(1):  # y * log(a): NaN where a <= 0 (log is undefined there)
        db = _unbroadcast(g, g.op("Mul", [g.op("Mul", [dy, y]), g.op("Log", [a])]), b)
    return [da, db]


def _select_grad(mask_type):
    """Gradient of Maximum/Minimum: dY goes to A where ``mask_type(A, B)`` holds, else to B."""
    def rule(g):
        a, b, dy = g.X(0), g.X(1), g.dY(0)
        to_a = g.op("Mul", [dy, g.op(mask_type, [a, b])])
        return [_unbroadcast(g, to_a, a) if g.needs(0) else None,
                _unbroadcast(g, g.op("Sub", [dy, to_a]), b) if g.needs(1) else None]
    return rule


def _mod_grad(g):  # a mod b = a - floor(a / b) * b
    a, b, dy = g.X(0), g.X(1), g.dY(0)
    db = None
    if g.needs(1):
        quotient = g.op("Floor", [g.op("Div", [a, b])])
        db = _unbroadcast(g, g.op("Neg", [g.op("Mul", [dy, quotient])]), b)
    return [_unbroadcast(g, dy, a) if g.needs(0) else None, db]


_register_binary("Pow", "power",
                 "Y = A ^ B (broadcasting); the gradient for B is NaN where A <= 0.", _pow_grad)
_register_binary("Maximum", "maximum",
                 "Y = max(A, B) (broadcasting); on ties the gradient goes to A.",
                 _select_grad("GreaterEqual"))
_register_binary("Minimum", "minimum",
                 "Y = min(A, B) (broadcasting); on ties the gradient goes to A.",
                 _select_grad("LessEqual"))
_register_binary("Mod", "remainder",
                 "Y = A mod B = A - floor(A / B) * B (numpy's mod: the sign of B; broadcasting).",
                 _mod_grad)


# -- comparisons and logic: bool results, no gradient -----------------------------------------

def _register_predicate(type_name, ufunc_name, doc, inputs):
    def kernel(xp, *xs, out):
        getattr(xp, ufunc_name)(*xs, out=out)
    kernel.__doc__ = doc
    schema = register(type_name, inputs=inputs, recompute=True)(kernel)
    schema.shape(_bool_binary_spec if inputs == 2 else _bool_spec)
    schema.grad(_no_gradient)
    return schema


for _type, _ufunc, _doc in [
        ("Equal", "equal", "Y = A == B (broadcasting, bool)."),
        ("NotEqual", "not_equal", "Y = A != B (broadcasting, bool)."),
        ("Less", "less", "Y = A < B (broadcasting, bool)."),
        ("LessEqual", "less_equal", "Y = A <= B (broadcasting, bool)."),
        ("Greater", "greater", "Y = A > B (broadcasting, bool)."),
        ("GreaterEqual", "greater_equal", "Y = A >= B (broadcasting, bool)."),
        ("And", "logical_and", "Y = A and B (broadcasting, bool; nonzero numbers are true)."),
        ("Or", "logical_or", "Y = A or B (broadcasting, bool; nonzero numbers are true)."),
        ("Xor", "logical_xor", "Y = A xor B (broadcasting, bool; nonzero numbers are true)."),
]:
    _register_predicate(_type, _ufunc, _doc, inputs=2)

for _type, _ufunc, _doc in [
        ("Not", "logical_not", "Y = not X (bool; nonzero numbers are true)."),
        ("IsNan", "isnan", "Y = X is NaN (bool)."),
        ("IsInf", "isinf", "Y = X is +inf or -inf (bool)."),
]:
    _register_predicate(_type, _ufunc, _doc, inputs=1)


# -- reductions ------------------------------------------------------------------------------

def _reduction_axes(axes):
    return tuple(axes) if axes else None


@register("ReduceMax", args={"axes": [], "keepdims": False})
def reduce_max(xp, x, *, out, axes, keepdims):
    """Y = maximum of X over ``axes`` (every axis when empty); ties share the gradient equally."""
    xp.max(x, axis=_reduction_axes(axes), keepdims=keepdims, out=out)


@register("ReduceMin", args={"axes": [], "keepdims": False})
def reduce_min(xp, x, *, out, axes, keepdims):
    """Y = minimum of X over ``axes`` (every axis when empty); ties share the gradient equally."""
    xp.min(x, axis=_reduction_axes(axes), keepdims=keepdims, out=out)


def _extremum_spec(x, *, axes, keepdims):
    shape, reduced = _reduce_shape(x, axes, keepdims)
    empty = [a for a in reduced if x.shape[a] == 0]
    if empty:
        raise ShapeError(f"cannot take a maximum or minimum over empty axes {empty}")
    return Spec(shape, x.dtype)


def _extremum_grad(g):
    return [g.op("ReduceExtremumGradient", [g.X(0), g.Y(0), g.dY(0)],
                 axes=g.args["axes"], keepdims=g.args["keepdims"])]


for _op in (reduce_max, reduce_min):
    _op.shape(_extremum_spec)
    _op.grad(_extremum_grad)


@register("ReduceExtremumGradient", inputs=3, args={"axes": [], "keepdims": False})
def reduce_extremum_gradient(xp, x, y, dy, *, out, scratch, axes, keepdims):
    """dX of ReduceMax/ReduceMin: dY split equally among the entries of X equal to Y."""
    shape, reduced = _reduce_shape(x, axes, True)
    share, = scratch
    xp.equal(x, y.reshape(shape), out=out)
    xp.sum(out, axis=tuple(reduced), keepdims=True, out=share)
    xp.true_divide(dy.reshape(shape), share, out=share)
    xp.multiply(out, share, out=out)


def _check_reduced(name, t, x, axes, keepdims):
    expected, _ = _reduce_shape(x, axes, keepdims)
    if tuple(t.shape) != expected:
        raise ShapeError(f"{name} has shape {tuple(t.shape)}, expected {expected}")


@reduce_extremum_gradient.shape
def _(x, y, dy, *, axes, keepdims):
    _check_reduced("Y", y, x, axes, keepdims)
    _check_reduced("dY", dy, x, axes, keepdims)
    return x.with_dtype(dy.dtype)


@reduce_extremum_gradient.scratch
def _(x, y, dy, *, axes, keepdims):
    shape, _ = _reduce_shape(x, axes, True)
    return [Spec(shape, dy.dtype)]


@register("ReduceProd", args={"axes": [], "keepdims": False})
def reduce_prod(xp, x, *, out, axes, keepdims):
    """Y = product of X over ``axes`` (every axis when empty)."""
    xp.prod(x, axis=_reduction_axes(axes), keepdims=keepdims, out=out)


@reduce_prod.shape
def _(x, *, axes, keepdims):
    _same_numeric_spec(x)
    shape, _ = _reduce_shape(x, axes, keepdims)
    return Spec(shape, x.dtype)


@reduce_prod.grad
def _(g):
    return [g.op("ReduceProdGradient", [g.X(0), g.dY(0)],
                 axes=g.args["axes"], keepdims=g.args["keepdims"])]


@register("ReduceProdGradient", inputs=2, args={"axes": [], "keepdims": False})
def reduce_prod_gradient(xp, x, dy, *, out, scratch, axes, keepdims):
    """dX of ReduceProd: dY times the product of the other entries, exact where X has zeros."""
    shape, reduced = _reduce_shape(x, axes, True)
    reduced = tuple(reduced)
    zero_count, scaled_product = scratch
    xp.equal(x, 0, out=out)
    xp.sum(out, axis=reduced, keepdims=True, out=zero_count)
    xp.add(x, out, out=out)  # X with its zeros replaced by ones
    xp.prod(out, axis=reduced, keepdims=True, out=scaled_product)
    xp.multiply(scaled_product, dy.reshape(shape), out=scaled_product)
    xp.true_divide(scaled_product, out, out=out)
    # Where a product holds zeros, only a lone zero has a nonzero product of the others.
    out *= (zero_count == 0) | ((zero_count == 1) & (x == 0))


@reduce_prod_gradient.shape
def _(x, dy, *, axes, keepdims):
    _check_reduced("dY", dy, x, axes, keepdims)
    return x.with_dtype(dy.dtype)


@reduce_prod_gradient.scratch
def _(x, dy, *, axes, keepdims):
    shape, _ = _reduce_shape(x, axes, True)
    return [Spec(shape, dy.dtype)] * 2


# -- running sums ----------------------------------------------------------------------------

@register("CumSum", args={"axis": 0, "exclusive": False, "reverse": False})
def cumsum(xp, x, *, out, axis, exclusive, reverse):
    """Y[i] = X[0] + ... + X[i] along ``axis``.

    exclusive: leave X[i] out (Y[0] = 0). reverse: sum from the end,
    Y[i] = X[i] + ... + X[n-1].
    """
    if reverse:
        x, out = xp.flip(x, axis), xp.flip(out, axis)
    if exclusive:
        out[_along(axis, out.ndim, slice(0, 1))] = 0
        x = x[_along(axis, x.ndim, slice(0, -1))]
        out = out[_along(axis, out.ndim, slice(1, None))]
    xp.cumsum(x, axis=axis, out=out)


def _along(axis, ndim, part):
    """An index taking ``part`` (a slice) of ``axis`` and everything of the other axes."""
    index = [slice(None)] * ndim
    index[axis] = part
    return tuple(index)


@cumsum.shape
def _(x, *, axis, exclusive, reverse):
    if x.ndim == 0:
        raise ShapeError("needs an input of at least 1 dimension")
    normalize_axis(axis, x.ndim)
    return _same_numeric_spec(x)


@cumsum.grad
def _(g):  # each X[j] feeds every later Y[i]: the gradient is the running sum from the other end
    return [g.op("CumSum", [g.dY(0)], axis=g.args["axis"], exclusive=g.args["exclusive"],
                 reverse=not g.args["reverse"])]
