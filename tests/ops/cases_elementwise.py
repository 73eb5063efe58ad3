"""Cases for dragon/ops/elementwise.py.

References are written independently of the kernels: math-module functions
elementwise, explicit formulas, or loops.
"""
import itertools
import math
from decimal import ROUND_HALF_UP, Decimal

import numpy as np

from tests.ops.opcase import Case, away_from, rand


def _elementwise(fn, otype=np.float64):
    """``fn`` of one Python float applied to every entry."""
    return np.vectorize(lambda v: fn(float(v)), otypes=[otype])


def _round_half_away(x, mode):
    # Decimal holds a float exactly; its ROUND_HALF_UP rounds ties away from zero.
    return _elementwise(lambda v: float(Decimal(v).to_integral_value(rounding=ROUND_HALF_UP)))(x)


def _caffe_power(x, power, scale, shift):
    return np.array([(shift + scale * v) ** power for v in x.ravel()]).reshape(x.shape)


def _reduce_loop(x, axes, keepdims, combine):
    """``combine`` (a function of a list of floats) over ``axes`` of ``x``, by loops."""
    axes = sorted(a % x.ndim for a in axes) if axes else list(range(x.ndim))
    kept = [a for a in range(x.ndim) if a not in axes]
    out_shape = tuple(1 if a in axes else x.shape[a] for a in range(x.ndim))
    result = np.zeros(out_shape, x.dtype)
    for out_index in itertools.product(*[range(d) for d in out_shape]):
        values = []
        for red_index in itertools.product(*[range(x.shape[a]) for a in axes]):
            index = list(out_index)
            for a, i in zip(axes, red_index):
                index[a] = i
            values.append(x[tuple(index)])
        result[out_index] = combine(values)
    return result if keepdims else result.reshape([x.shape[a] for a in kept])


def _reference_reduction(combine):
    def reference(x, axes=(), keepdims=False):
        return _reduce_loop(x, axes, keepdims, combine)
    return reference


def _cumsum_loop(x, axis=0, exclusive=False, reverse=False):
    moved = np.moveaxis(x, axis, 0)
    n = moved.shape[0]
    result = np.zeros_like(moved)
    for i in range(n):
        js = range(i, n) if reverse else range(0, i + 1)
        for j in js:
            if not (exclusive and j == i):
                result[i] += moved[j]
    return np.moveaxis(result, 0, axis)


def _away_from_integers(x, margin=0.05):
    return away_from(x, points=np.arange(-5.0, 6.0), margin=margin)


def _with_zeros(x, positions):
    x = np.array(x, copy=True)
    for p in positions:
        x[p] = 0.0
    return x


def _mod_inputs():
    # a = b * (k + f) with the fraction f kept off 0 and 1: no kinks near the inputs.
    rng = np.random.default_rng(7)
    b = np.array([0.7, -1.3, 2.1, -0.4])
    a = b * (rng.integers(-3, 3, size=(3, 4)) + rng.uniform(0.15, 0.85, size=(3, 4)))
    return [a, b]


def _exactly(reference, dtype):
    def check(outputs, inputs, args):
        got, = outputs
        assert got.dtype == dtype, f"dtype {got.dtype}, expected {dtype}"
        np.testing.assert_array_equal(got, reference(*inputs, **args))
    return check


_INT_VALUES = np.array([[-3, -1, 0], [2, 5, -7]], np.int32)
_TIED = np.array([[1.0, 2.0, 2.0], [3.0, 0.0, 3.0]])
_NON_FINITE = np.array([0.5, np.nan, np.inf, -np.inf, -2.0, 0.0])

_UNARY = [
    Case("Exp", [rand(3, 4)], reference=_elementwise(math.exp)),
    Case("Log", [rand(3, 4, low=0.2, high=3.0)], reference=_elementwise(math.log)),
    Case("Log1p", [rand(3, 4, low=-0.5, high=2.0)], reference=_elementwise(math.log1p)),
    Case("Expm1", [rand(3, 4)], reference=_elementwise(math.expm1)),
    Case("Sqrt", [rand(3, 4, low=0.2, high=3.0)], reference=_elementwise(math.sqrt)),
    Case("Rsqrt", [rand(3, 4, low=0.2, high=3.0)],
         reference=_elementwise(lambda v: 1.0 / math.sqrt(v))),
    Case("Reciprocal", [away_from(rand(3, 4), margin=0.3)],
         reference=_elementwise(lambda v: 1.0 / v)),
    Case("Reciprocal", [_INT_VALUES[:, :2]], grad=(),
         check=_exactly(lambda x: 1.0 / x.astype(np.float64), np.float64), name="int32"),
    Case("Sin", [rand(3, 4, low=-4.0, high=4.0)], reference=_elementwise(math.sin)),
    Case("Cos", [rand(3, 4, low=-4.0, high=4.0)], reference=_elementwise(math.cos)),
    Case("Erf", [rand(4, 5, low=-3.0, high=3.0)], reference=_elementwise(math.erf), rtol=1e-12),
    Case("Erf", [np.array([-40.0, -6.5, -5.9, -4.2, -1e-3, 0.0, 2e-9, 0.7, 2.2, 5.5, 6.0, np.inf])],
         reference=_elementwise(math.erf), rtol=1e-12, grad=(), name="tails"),
    Case("Abs", [away_from(rand(3, 4))], reference=_elementwise(abs)),
    Case("Abs", [_INT_VALUES], check=_exactly(lambda x: np.where(x < 0, -x, x), np.int32),
         name="int32"),
    Case("Square", [rand(3, 4)], reference=_elementwise(lambda v: v * v)),
    Case("Square", [_INT_VALUES], check=_exactly(lambda x: x * x, np.int32),
         name="int32"),
    Case("Sign", [np.array([-2.5, -0.0, 0.0, 1e-30, 3.0])],
         reference=_elementwise(lambda v: (v > 0) - (v < 0)), grad=()),
    Case("Floor", [_away_from_integers(rand(3, 4, low=-3.0, high=3.0))],
         reference=_elementwise(math.floor), grad=()),
    Case("Floor", [_INT_VALUES], check=_exactly(lambda x: x, np.int32), name="int32"),
    Case("Ceil", [_away_from_integers(rand(3, 4, low=-3.0, high=3.0))],
         reference=_elementwise(math.ceil), grad=()),
    Case("Round", [np.array([-2.5, -1.5, -0.5, -0.4, 0.5, 1.5, 2.5, 2.6])],
         reference=_elementwise(round), grad=()),
    Case("Round", [np.array([-2.5, -1.5, -0.5, -0.4, -0.0, 0.5, 1.5, 2.5, 2.6])],
         args={"mode": "half_away_from_zero"}, reference=_round_half_away, grad=(), name="away"),
    Case("IsNan", [_NON_FINITE], reference=_elementwise(math.isnan, bool), grad=()),
    Case("IsInf", [_NON_FINITE], reference=_elementwise(math.isinf, bool), grad=()),
]

_POWER = [
    Case("Power", [rand(3, 4)], args={"power": 2.0, "scale": 0.5, "shift": 1.0},
         reference=_caffe_power),
    Case("Power", [rand(3, 4)], args={"power": 1.0, "scale": -3.0, "shift": 0.25},
         reference=_caffe_power, name="affine"),
    Case("Power", [rand(2, 3, low=-2.0, high=-0.5)],
         args={"power": 3.0, "scale": 1.5, "shift": 0.0},
         reference=_caffe_power, name="negative_base"),
    Case("Power", [rand(2, 3, low=0.5, high=2.0)], args={"power": -1.5, "scale": 2.0, "shift": 0.5},
         reference=_caffe_power, name="fractional"),
    Case("Power", [rand(2, 3)], args={"power": 0.0, "scale": 2.0, "shift": 1.0},
         reference=_caffe_power, grad=(), name="zero_power"),
]

_BINARY = [
    Case("Pow", [rand(2, 3, low=0.5, high=2.0), rand(3, seed=1, low=-2.0, high=2.0)],
         reference=lambda a, b: np.vectorize(math.pow)(a, b)),
    Case("Pow", [away_from(rand(2, 3, low=-2.0, high=2.0), margin=0.3), np.array([2.0, 3.0, -1.0])],
         reference=lambda a, b: np.vectorize(math.pow)(a, b), grad=(0,), name="integer_exponent"),
    Case("Maximum", [rand(3, 4), rand(4, seed=2)],
         reference=lambda a, b: np.vectorize(max)(a, b)),
    Case("Minimum", [rand(3, 1), rand(2, 3, 4, seed=2)],
         reference=lambda a, b: np.vectorize(min)(a, b)),
    Case("Mod", _mod_inputs(), reference=lambda a, b: a - np.vectorize(math.floor)(a / b) * b,
         rtol=1e-9, atol=1e-12),
    Case("Mod", [np.array([-7, -1, 0, 5, 9], np.int32), np.array([3, 3, 2, -2, 4], np.int32)],
         check=_exactly(lambda a, b: np.array([2, 2, 0, -1, 1]), np.int32),
         name="int32"),
]

_CLIP = [
    Case("Clip", [away_from(rand(4, 5), points=(-0.4, 0.3))], args={"low": -0.4, "high": 0.3},
         reference=lambda x, low, high: np.vectorize(lambda v: min(max(v, low), high))(x)),
    Case("Clip", [away_from(rand(4, 5), points=(0.2,))], args={"high": 0.2},
         reference=lambda x, high: np.vectorize(lambda v: min(v, high))(x), name="high_only"),
    Case("Clip", [_INT_VALUES], args={"low": -2.5, "high": 4.5},
         check=_exactly(
             lambda x, low, high: np.array([[-2, -1, 0], [2, 4, -2]]), np.int32), name="int32"),
]


def _comparison(type_name, python_op):
    reference = lambda a, b: np.vectorize(python_op, otypes=[bool])(a, b)  # noqa: E731
    return [
        Case(type_name, [np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]), np.array([2.0, 2.0, 2.0])],
             reference=reference, grad=()),
        Case(type_name, [np.array([[-1, 0, 4]], np.int32), np.array([[0], [4]], np.int64)],
             reference=reference, grad=(), name="int"),
    ]


_COMPARISONS = (_comparison("Equal", lambda a, b: a == b)
                + _comparison("NotEqual", lambda a, b: a != b)
                + _comparison("Less", lambda a, b: a < b)
                + _comparison("LessEqual", lambda a, b: a <= b)
                + _comparison("Greater", lambda a, b: a > b)
                + _comparison("GreaterEqual", lambda a, b: a >= b))


def _logic(type_name, python_op):
    reference = lambda a, b: np.vectorize(lambda u, v: python_op(bool(u), bool(v)),  # noqa: E731
                                          otypes=[bool])(a, b)
    bools = np.array([[True, True, False, False]])
    return [
        Case(type_name, [bools, np.array([[True], [False]])], reference=reference, grad=()),
        Case(type_name, [np.array([0.0, 2.5, -1.0, 0.0]), np.array([3, 0, 7, 0], np.int32)],
             reference=reference, grad=(), name="truthy"),
    ]


_LOGIC = (_logic("And", lambda u, v: u and v)
          + _logic("Or", lambda u, v: u or v)
          + _logic("Xor", lambda u, v: u != v)
          + [Case("Not", [np.array([True, False])], reference=lambda x: np.array([False, True]),
                  grad=()),
             Case("Not", [np.array([0.0, -2.0, 0.5])],
                  reference=lambda x: np.array([True, False, False]),
                  grad=(), name="truthy")])

_REDUCTIONS = [
    Case("ReduceMax", [rand(2, 3, 4)], args={"axes": [1]}, reference=_reference_reduction(max)),
    Case("ReduceMax", [rand(3, 4)], reference=_reference_reduction(max), name="all"),
    Case("ReduceMax", [_TIED], args={"axes": [1], "keepdims": True},
         reference=_reference_reduction(max), grad=(), name="ties"),
    Case("ReduceMin", [rand(2, 3, 4)], args={"axes": [0, -1], "keepdims": True},
         reference=_reference_reduction(min)),
    Case("ReduceMin", [_INT_VALUES], args={"axes": [0]},
         check=_exactly(lambda x, axes: np.array([-3, -1, -7]), np.int32), name="int32"),
    Case("ReduceProd", [rand(2, 3, 4, low=0.5, high=1.5)], args={"axes": [2]},
         reference=_reference_reduction(math.prod)),
    Case("ReduceProd", [_with_zeros(rand(3, 4), [(0, 1), (1, 0), (1, 3)])], args={"axes": [1]},
         reference=_reference_reduction(math.prod), name="zeros"),
    Case("ReduceProd", [rand(2, 3)], args={"keepdims": True},
         reference=_reference_reduction(math.prod), name="all"),
    Case("CumSum", [rand(4, 3)], reference=_cumsum_loop),
    Case("CumSum", [rand(2, 3, 4)], args={"axis": -1, "exclusive": True},
         reference=_cumsum_loop, name="exclusive"),
    Case("CumSum", [rand(2, 5)], args={"axis": 1, "reverse": True},
         reference=_cumsum_loop, name="reverse"),
    Case("CumSum", [rand(3, 2)], args={"exclusive": True, "reverse": True},
         reference=_cumsum_loop, name="exclusive_reverse"),
    Case("CumSum", [_INT_VALUES], args={"axis": 1},
         check=_exactly(lambda x, axis: np.array([[-3, -4, -4], [2, 7, 0]]), np.int32),
         name="int32"),
]

CASES = _UNARY + _POWER + _BINARY + _CLIP + _COMPARISONS + _LOGIC + _REDUCTIONS
