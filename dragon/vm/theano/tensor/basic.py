"""``theano.tensor``'s functions: elementwise math, reductions, shapes, joins, dot.

Every function types its result by Theano's rules at graph-building time and
lowers to core ops when a function compiles::

    import dragon.vm.theano.tensor as T
    x = T.fmatrix("x")
    y = T.switch(T.gt(x, 0), x, 0.1 * x).sum(axis=1)      # float32 vector
    z = T.dot(x, x.T) + T.ones_like(x).mean()

Symbolic sizes (``x.shape[0]``, ``T.arange(n)``, ``x.reshape((n, -1))``) are
numbers by the time a function lowers them: shapes are known then, and a size that
depends on an input's *value* makes the function compile once per such value.
"""
from __future__ import annotations

import builtins

import numpy as np

from dragon.core.tensor import apply as core_apply
from dragon.core.tensor import constant as core_constant
from dragon.vm.theano.configparser import config
from dragon.vm.theano.tensor import type as ttype
from dragon.vm.theano.tensor.type import TensorType
from dragon.vm.theano.tensor.var import (Op, TensorConstant, TensorVariable, Apply,  # noqa: F401
                                         as_tensor_variable, constant, core, lowered)

_python_abs = builtins.abs
_python_max = builtins.max


# -- helpers -----------------------------------------------------------------------

def _broadcast_pattern(*variables):
    ndim = _python_max(v.ndim for v in variables)
    pattern = []
    for axis in range(ndim):
        flags = []
        for v in variables:
            k = axis - (ndim - v.ndim)
            flags.append(True if k < 0 else v.broadcastable[k])
        pattern.append(builtins.all(flags))
    return tuple(pattern)


def cast_core(x, dtype):
    """Core tensor ``x`` in ``dtype`` (constants are converted, not given a Cast op)."""
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if x.kind == "constant":
        return core_constant(np.asarray(x._value).astype(dtype), dtype=dtype)
    return core_apply("Cast", [x], dtype=str(dtype))


def _lower_elemwise(ctx, node, *xs, op_type, compute_dtype, args):
    if compute_dtype is not None:
        xs = [cast_core(x, compute_dtype) for x in xs]
    return core_apply(op_type, list(xs), **args)


def elemwise(op_type, inputs, dtype, compute_dtype=None, name=None, args=None, **kwargs):
    """Apply core op ``op_type`` elementwise (broadcasting) with output ``dtype``.

    The core op's arguments come as ``args={...}`` or keywords.

    ``compute_dtype``: inputs are cast to it first (default: the output dtype when
    that is a number type; pass False to feed inputs unchanged).
    """
    inputs = [as_tensor_variable(i) for i in inputs]
    if compute_dtype is None:
        compute_dtype = dtype
    args = dict(args or {}, **kwargs)
    return lowered(_lower_elemwise, inputs, TensorType(dtype, _broadcast_pattern(*inputs)),
                   name=name or ttype_name(op_type), op_type=op_type,
                   compute_dtype=compute_dtype or None, args=args)


def ttype_name(op_type):
    from dragon.vm.theano.tensor.var import _snake
    return _snake(op_type)


def _vars(*xs):
    return [as_tensor_variable(x) for x in xs]


def _float_unary(op_type, name):
    def fn(x):
        x = as_tensor_variable(x)
        return elemwise(op_type, [x], ttype.upgrade_to_float(x.dtype), name=name)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name}: ``T.{name}(x)`` (integers give floats, as Theano)."
    return fn


def _same_unary(op_type, name):
    def fn(x):
        x = as_tensor_variable(x)
        return elemwise(op_type, [x], x.dtype, name=name)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise {name}: ``T.{name}(x)``, same dtype as x."
    return fn


# -- arithmetic ----------------------------------------------------------------------

def add(*terms):
    """``a + b + ...`` with broadcasting: ``T.add(x, y, 1)``."""
    terms = _vars(*terms)
    out = terms[0]
    for t in terms[1:]:
        out = elemwise("Add", [out, t], ttype.upcast(out.dtype, t.dtype), name="add")
    return out


def sub(a, b):
    a, b = _vars(a, b)
    return elemwise("Sub", [a, b], ttype.upcast(a.dtype, b.dtype), name="sub")


def mul(*factors):
    """``a * b * ...`` with broadcasting."""
    factors = _vars(*factors)
    out = factors[0]
    for f in factors[1:]:
        out = elemwise("Mul", [out, f], ttype.upcast(out.dtype, f.dtype), name="mul")
    return out


def true_div(a, b):
    """``a / b``; integers divide to floatX, as Theano's true_div."""
    a, b = _vars(a, b)
    return elemwise("Div", [a, b], ttype.true_div_dtype(a.dtype, b.dtype), name="true_div")


def _lower_floor_div(ctx, node, a, b):
    out = np.dtype(node.outputs[0].dtype)
    work = out if out.kind == "f" else np.dtype("float64")
    q = core_apply("Floor", [core_apply("Div", [cast_core(a, work), cast_core(b, work)])])
    return cast_core(q, out)


def int_div(a, b):
    """``a // b`` (floor division; integers stay integers)."""
    a, b = _vars(a, b)
    return lowered(_lower_floor_div, [a, b], TensorType(ttype.upcast(a.dtype, b.dtype),
                                                       _broadcast_pattern(a, b)), name="int_div")


floor_div = int_div


def mod(a, b):
    """``a % b`` with Python's sign convention."""
    a, b = _vars(a, b)
    return elemwise("Mod", [a, b], ttype.upcast(a.dtype, b.dtype), name="mod")


def pow(a, b):  # noqa: A001 - Theano's name
    a, b = _vars(a, b)
    return elemwise("Pow", [a, b], ttype.upcast(a.dtype, b.dtype), name="pow")


def neg(x):
    return _same_unary("Neg", "neg")(x)


def abs_(x):
    """Elementwise |x| (``abs(x)`` works too)."""
    return _same_unary("Abs", "abs_")(x)


def sgn(x):
    return _same_unary("Sign", "sgn")(x)


def inv(x):
    """Elementwise 1 / x."""
    return _float_unary("Reciprocal", "inv")(x)


reciprocal = inv


def sqr(x):
    """Elementwise x * x."""
    return _same_unary("Square", "sqr")(x)


square = sqr
exp = _float_unary("Exp", "exp")
expm1 = _float_unary("Expm1", "expm1")
log = _float_unary("Log", "log")
log1p = _float_unary("Log1p", "log1p")
sqrt = _float_unary("Sqrt", "sqrt")
sin = _float_unary("Sin", "sin")
cos = _float_unary("Cos", "cos")
tanh = _float_unary("Tanh", "tanh")
erf = _float_unary("Erf", "erf")


def log2(x):
    return true_div(log(x), np.log(2.0).astype(ttype.upgrade_to_float(as_tensor_variable(x).dtype)))


def log10(x):
    return true_div(log(x), np.log(10.0).astype(ttype.upgrade_to_float(as_tensor_variable(x).dtype)))


def exp2(x):
    x = as_tensor_variable(x)
    return pow(np.asarray(2.0, ttype.upgrade_to_float(x.dtype)), x)


def tan(x):
    return true_div(sin(x), cos(x))


def sinh(x):
    x = as_tensor_variable(x)
    return (exp(x) - exp(-x)) * np.asarray(0.5, ttype.upgrade_to_float(x.dtype))


def cosh(x):
    x = as_tensor_variable(x)
    return (exp(x) + exp(-x)) * np.asarray(0.5, ttype.upgrade_to_float(x.dtype))


def floor(x):
    x = as_tensor_variable(x)
    return elemwise("Floor", [x], ttype.upgrade_to_float(x.dtype), name="floor")


def ceil(x):
    x = as_tensor_variable(x)
    return elemwise("Ceil", [x], ttype.upgrade_to_float(x.dtype), name="ceil")


def round(x, mode=None):  # noqa: A001 - Theano's name
    """Round to integers: ``mode`` 'half_away_from_zero' (Theano 1.0's default) or 'half_to_even'."""
    x = as_tensor_variable(x)
    mode = mode or "half_away_from_zero"
    if mode not in ("half_away_from_zero", "half_to_even"):
        raise ValueError(f"round: mode must be 'half_away_from_zero' or 'half_to_even', got {mode!r}")
    return elemwise("Round", [x], ttype.upgrade_to_float(x.dtype), name="round", mode=mode)


def round_half_to_even(x):
    return round(x, "half_to_even")


def round_half_away_from_zero(x):
    return round(x, "half_away_from_zero")


def iround(x, mode=None):
    return cast(round(x, mode), "int64")


def maximum(a, b):
    a, b = _vars(a, b)
    return elemwise("Maximum", [a, b], ttype.upcast(a.dtype, b.dtype), name="maximum")


def minimum(a, b):
    a, b = _vars(a, b)
    return elemwise("Minimum", [a, b], ttype.upcast(a.dtype, b.dtype), name="minimum")


def largest(*args):
    """Elementwise maximum of all arguments."""
    out = as_tensor_variable(args[0])
    for a in args[1:]:
        out = maximum(out, a)
    return out


def smallest(*args):
    out = as_tensor_variable(args[0])
    for a in args[1:]:
        out = minimum(out, a)
    return out


def clip(x, a_min, a_max):
    """x clipped to [a_min, a_max]; the gradient passes inside the bounds."""
    x, lo, hi = _vars(x, a_min, a_max)
    dtype = ttype.upcast(x.dtype, lo.dtype, hi.dtype)
    if isinstance(lo, TensorConstant) and isinstance(hi, TensorConstant) \
            and lo.data.ndim == 0 and hi.data.ndim == 0:
        return elemwise("Clip", [x], dtype, name="clip", low=float(lo.data), high=float(hi.data))
    return minimum(maximum(x, lo), hi)


def switch(cond, ift, iff):
    """Elementwise ``ift if cond else iff`` (both branches are computed)."""
    cond, ift, iff = _vars(cond, ift, iff)
    dtype = ttype.upcast(ift.dtype, iff.dtype)
    return lowered(_lower_switch, [cond, ift, iff],
                   TensorType(dtype, _broadcast_pattern(cond, ift, iff)), name="switch")


def _lower_switch(ctx, node, cond, a, b):
    dtype = node.outputs[0].dtype
    return core_apply("Where", [cond, cast_core(a, dtype), cast_core(b, dtype)])


where = switch


def _compare(op_type, name):
    def fn(a, b):
        a, b = _vars(a, b)
        return elemwise(op_type, [a, b], "bool", compute_dtype=ttype.upcast(a.dtype, b.dtype),
                        name=name)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise comparison ``T.{name}(a, b)`` (bool)."
    return fn


eq = _compare("Equal", "eq")
neq = _compare("NotEqual", "neq")
lt = _compare("Less", "lt")
gt = _compare("Greater", "gt")
le = _compare("LessEqual", "le")
ge = _compare("GreaterEqual", "ge")


def _logical(op_type, name):
    def fn(a, b):
        a, b = _vars(a, b)
        dtype = ttype.upcast(a.dtype, b.dtype)
        if dtype.startswith("float"):
            raise TypeError(f"T.{name} takes bool or integer tensors, got {a.dtype} and {b.dtype}")
        return elemwise(op_type, [a, b], dtype, compute_dtype=False, name=name)
    fn.__name__ = name
    fn.__doc__ = (f"Elementwise logical {name} of bool (or 0/1 integer) tensors; integer "
                  f"inputs give 0/1 in their upcast dtype.")
    return fn


and_ = _logical("And", "and_")
or_ = _logical("Or", "or_")
xor = _logical("Xor", "xor")
bitwise_and, bitwise_or, bitwise_xor = and_, or_, xor


def invert(x):
    x = as_tensor_variable(x)
    if x.dtype != "bool":
        raise TypeError(f"~ / T.invert is supported on bool tensors here, got {x.dtype}")
    return elemwise("Not", [x], "bool", compute_dtype=False, name="invert")


bitwise_not = invert


def isnan(x):
    x = as_tensor_variable(x)
    return elemwise("IsNan", [x], "bool", compute_dtype=False, name="isnan")


def isinf(x):
    x = as_tensor_variable(x)
    return elemwise("IsInf", [x], "bool", compute_dtype=False, name="isinf")


def cast(x, dtype):
    """``x`` converted to ``dtype`` ('floatX' means config.floatX)."""
    x = as_tensor_variable(x)
    dtype = config.floatX if dtype == "floatX" else str(np.dtype(dtype))
    if x.dtype == dtype:
        return x
    return elemwise("Cast", [x], dtype, compute_dtype=False, name=f"cast_{dtype}",
                    args={"dtype": dtype})


def tensor_copy(x):
    x = as_tensor_variable(x)
    return elemwise("Copy", [x], x.dtype, compute_dtype=False, name="tensor_copy")


def second(a, b):
    """``b`` broadcast to the shape of ``a`` (Theano's fill/second)."""
    a, b = _vars(a, b)
    return lowered(_lower_second, [a, b], TensorType(b.dtype, _broadcast_pattern(a, b)),
                   name="second")


def _lower_second(ctx, node, a, b):
    shape = np.broadcast_shapes(a.shape, b.shape)
    return core_apply("BroadcastLike", [b, _zeros_core(shape, b.dtype)])


def fill(model, value):
    """``value`` broadcast to the shape of ``model``: ``T.fill(x, 0.5)``."""
    return second(model, value)


def _zeros_core(shape, dtype):
    return core_apply("Fill", [], shape=[int(d) for d in shape], value=0.0, dtype=str(np.dtype(dtype)))


# -- reductions ------------------------------------------------------------------------

def _axes(x, axis):
    if axis is None:
        return list(range(x.ndim))
    if isinstance(axis, (list, tuple)):
        axes = list(axis)
    else:
        axes = [axis]
    out = []
    for a in axes:
        if isinstance(a, TensorConstant):
            a = int(a.data)
        elif not isinstance(a, (int, np.integer)):
            raise TypeError(f"axis must be an int or a list of ints, got {a!r}")
        a = int(a)
        if not -x.ndim <= a < _python_max(x.ndim, 1):
            raise ValueError(f"axis {a} is out of range for the {x.ndim}-d tensor '{x}'")
        out.append(a % _python_max(x.ndim, 1))
    return sorted(set(out))


def _reduced_pattern(x, axes, keepdims):
    if keepdims:
        return tuple(True if i in axes else b for i, b in enumerate(x.broadcastable))
    return tuple(b for i, b in enumerate(x.broadcastable) if i not in axes)


def _lower_reduce(ctx, node, x, op_type, axes, keepdims, compute_dtype):
    if compute_dtype is not None:
        x = cast_core(x, compute_dtype)
    if not axes:
        return core_apply("Copy", [x])
    empty = x.shape is not None and 0 in [x.shape[a] for a in axes]
    if op_type in ("ReduceMax", "ReduceMin") and empty:
        raise ValueError(f"{node.op} of an empty axis of '{node.inputs[0]}' "
                         f"(shape {tuple(x.shape)})")
    return core_apply(op_type, [x], axes=list(axes), keepdims=bool(keepdims))


def _reduce(op_type, name, x, axis, keepdims, dtype, compute_dtype=None):
    x = as_tensor_variable(x)
    axes = _axes(x, axis)
    return lowered(_lower_reduce, [x], TensorType(dtype, _reduced_pattern(x, axes, keepdims)),
                   name=name, op_type=op_type, axes=axes, keepdims=keepdims,
                   compute_dtype=compute_dtype)


def sum(input, axis=None, dtype=None, keepdims=False, acc_dtype=None):  # noqa: A001,A002
    """Sum over ``axis`` (all axes by default); small integers accumulate in int64."""
    x = as_tensor_variable(input)
    out = dtype or ttype.sum_dtype(x.dtype)
    return _reduce("ReduceSum", "sum", x, axis, keepdims, out, compute_dtype=out)


def prod(input, axis=None, dtype=None, keepdims=False, acc_dtype=None,  # noqa: A002
         no_zeros_in_input=False):
    x = as_tensor_variable(input)
    out = dtype or ttype.sum_dtype(x.dtype)
    return _reduce("ReduceProd", "prod", x, axis, keepdims, out, compute_dtype=out)


def mean(input, axis=None, dtype=None, op=False, keepdims=False, acc_dtype=None):  # noqa: A002
    """Mean over ``axis``; integers give float64, as Theano."""
    x = as_tensor_variable(input)
    out = dtype or ttype.mean_dtype(x.dtype)
    return _reduce("ReduceMean", "mean", x, axis, keepdims, out, compute_dtype=out)


def max(x, axis=None, keepdims=False):  # noqa: A001 - Theano's name
    x = as_tensor_variable(x)
    return _reduce("ReduceMax", "max", x, axis, keepdims, x.dtype)


def min(x, axis=None, keepdims=False):  # noqa: A001
    x = as_tensor_variable(x)
    return _reduce("ReduceMin", "min", x, axis, keepdims, x.dtype)


def all(x, axis=None, keepdims=False):  # noqa: A001
    x = as_tensor_variable(x)
    return cast(_reduce("ReduceMin", "all", neq(x, 0), axis, keepdims, "bool",
                        compute_dtype="int8"), "bool")


def any(x, axis=None, keepdims=False):  # noqa: A001
    x = as_tensor_variable(x)
    return cast(_reduce("ReduceMax", "any", neq(x, 0), axis, keepdims, "bool",
                        compute_dtype="int8"), "bool")


def _lower_argext(ctx, node, x, op_type, axes, keepdims):
    source_shape = tuple(x.shape)
    if x.ndim == 0:
        return core_constant(np.asarray(0, np.int64))
    keep = [i for i in range(x.ndim) if i not in axes]
    if len(axes) != 1:
        moved = core_apply("Transpose", [x], perm=keep + axes)
        x = core_apply("Reshape", [moved], shape=[source_shape[i] for i in keep] + [-1])
        axis = len(keep)
    else:
        axis = axes[0]
    out = core_apply(op_type, [x], axis=axis, keepdims=False)
    if keepdims:
        out = core_apply("Reshape", [out], shape=[1 if i in axes else d
                                                  for i, d in enumerate(source_shape)])
    return cast_core(out, "int64")


def _argext(op_type, name, x, axis, keepdims):
    x = as_tensor_variable(x)
    axes = _axes(x, axis)
    return lowered(_lower_argext, [x], TensorType("int64", _reduced_pattern(x, axes, keepdims)),
                   name=name, op_type=op_type, axes=axes, keepdims=keepdims)


def argmax(x, axis=None, keepdims=False):
    """Index of the largest entry along ``axis`` (of the flattened tensor by default)."""
    return _argext("ArgMax", "argmax", x, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    return _argext("ArgMin", "argmin", x, axis, keepdims)


def max_and_argmax(x, axis=None, keepdims=False):
    return max(x, axis, keepdims), argmax(x, axis, keepdims)


def var(input, axis=None, ddof=0, keepdims=False, corrected=False):  # noqa: A002
    """Variance over ``axis`` (``ddof`` as numpy's)."""
    x = as_tensor_variable(input)
    axes = _axes(x, axis)
    centered = x - mean(x, axis=axes, keepdims=True)
    squares = sqr(centered)
    if ddof:
        return true_div(sum(squares, axis=axes, keepdims=keepdims),
                        _count(x, axes) - ddof)
    return mean(squares, axis=axes, keepdims=keepdims)


def _count(x, axes):
    sizes = [shape(x)[a] for a in axes]
    return prod(stack(sizes)) if sizes else constant(1)


def std(input, axis=None, ddof=0, keepdims=False, corrected=False):  # noqa: A002
    return sqrt(var(input, axis=axis, ddof=ddof, keepdims=keepdims))


def norm(x, ord, axis=None, keepdims=False):  # noqa: A002
    """Lp norm over ``axis``: ``x.norm(2)``, ``T.norm(x, 1, axis=0)``."""
    x = as_tensor_variable(x)
    if ord == 1:
        return sum(abs_(x), axis=axis, keepdims=keepdims)
    if ord == 2:
        return sqrt(sum(sqr(x), axis=axis, keepdims=keepdims))
    if ord in (np.inf, "inf"):
        return max(abs_(x), axis=axis, keepdims=keepdims)
    return pow(sum(pow(abs_(x), ord), axis=axis, keepdims=keepdims), 1.0 / ord)


# -- shapes --------------------------------------------------------------------------

def _lower_shape(ctx, node, x):
    return core_constant(np.asarray(x.shape, dtype=np.int64), dtype=np.int64)


def shape(x):
    """The shape of ``x`` as an int64 vector (``x.shape``; ``x.shape[0]`` is a scalar)."""
    x = as_tensor_variable(x)
    return lowered(_lower_shape, [x], TensorType("int64", (False,)), name="shape",
                   connected=False)


_lower_shape.static_length = lambda node: node.inputs[0].ndim


def _as_shape_entries(shape_arg):
    """A shape argument as a list of ints and scalar variables (or one vector variable)."""
    if isinstance(shape_arg, (TensorVariable, TensorConstant)) or hasattr(shape_arg, "owner"):
        v = as_tensor_variable(shape_arg)
        if isinstance(v, TensorConstant):
            return [int(d) for d in np.atleast_1d(v.data)]
        if v.ndim == 0:
            return [v]
        return v
    if isinstance(shape_arg, (int, np.integer)):
        return [int(shape_arg)]
    entries = []
    for d in shape_arg:
        if isinstance(d, (int, np.integer)):
            entries.append(int(d))
        else:
            v = as_tensor_variable(d)
            entries.append(int(v.data) if isinstance(v, TensorConstant) else v)
    return entries


def _resolve_dims(ctx, node, entries_template, first_dim_input):
    """Concrete ints for a shape template: ints stay, ('in', k) reads node input k's value."""
    dims = []
    for entry in entries_template:
        if isinstance(entry, tuple):
            dims.append(int(ctx.value(node.inputs[first_dim_input + entry[1]])))
        else:
            dims.append(int(entry))
    return dims


def _shape_template(entries):
    """(template, variables): ints kept, variables replaced by ('in', k)."""
    template, variables = [], []
    for e in entries:
        if isinstance(e, int):
            template.append(e)
        else:
            template.append(("in", len(variables)))
            variables.append(e)
    return template, variables


def _lower_reshape(ctx, node, x, *dims_inputs, template, vector):
    if vector:
        dims = [int(d) for d in ctx.value(node.inputs[1])]
    else:
        dims = _resolve_dims(ctx, node, template, 1)
    size = int(np.prod(x.shape, dtype=np.int64))
    if dims.count(-1) > 1:
        raise ValueError(f"reshape of '{node.inputs[0]}' to {dims}: only one -1 is allowed")
    if -1 in dims:
        known = int(np.prod([d for d in dims if d != -1], dtype=np.int64))
        if known == 0 or size % known:
            raise ValueError(f"cannot reshape '{node.inputs[0]}' of shape {tuple(x.shape)} "
                             f"to {tuple(dims)}")
        dims[dims.index(-1)] = size // known
    if int(np.prod(dims, dtype=np.int64)) != size:
        raise ValueError(f"cannot reshape '{node.inputs[0]}' of shape {tuple(x.shape)} "
                         f"(size {size}) to {tuple(dims)}")
    if tuple(dims) == tuple(x.shape):
        return x
    return core_apply("Reshape", [x], shape=dims)


def reshape(x, newshape, ndim=None):
    """``x`` with shape ``newshape`` (ints, -1 once, or symbolic sizes such as x.shape[0]).

    >>> x.reshape((x.shape[0], -1)); T.reshape(v, (2, 3))
    """
    x = as_tensor_variable(x)
    entries = _as_shape_entries(newshape)
    if isinstance(entries, list):
        template, variables = _shape_template(entries)
        pattern = tuple(isinstance(e, int) and e == 1 for e in entries)
        return lowered(_lower_reshape, [x] + variables, TensorType(x.dtype, pattern),
                       name="reshape", connected=[True] + [False] * len(variables),
                       template=template, vector=False)
    vector = entries
    if ndim is None:
        length = vector._static_length()
        if length is None:
            raise ValueError(f"reshape of '{x}' to the symbolic shape '{vector}' needs ndim=")
        ndim = length
    return lowered(_lower_reshape, [x, vector], TensorType(x.dtype, (False,) * ndim),
                   name="reshape", connected=[True, False], template=None, vector=True)


def _lower_flatten(ctx, node, x, outdim):
    shape = list(x.shape[:outdim - 1]) + [int(np.prod(x.shape[outdim - 1:], dtype=np.int64))]
    if tuple(shape) == tuple(x.shape):
        return x
    return core_apply("Reshape", [x], shape=shape)


def flatten(x, ndim=1, outdim=None):
    """``x`` with its last axes merged so it has ``ndim`` axes: ``x.flatten(2)``."""
    x = as_tensor_variable(x)
    ndim = outdim if outdim is not None else ndim
    if not 1 <= ndim <= _python_max(x.ndim, 1):
        raise ValueError(f"flatten of the {x.ndim}-d tensor '{x}' to {ndim} dimensions")
    pattern = x.broadcastable[:ndim - 1] + (builtins.all(x.broadcastable[ndim - 1:]),)
    return lowered(_lower_flatten, [x], TensorType(x.dtype, pattern), name="flatten",
                   outdim=ndim)


def _lower_dimshuffle(ctx, node, x, pattern):
    kept = [p for p in pattern if p != "x"]
    dropped = [i for i in range(x.ndim) if i not in kept]
    if kept != sorted(kept):
        order = kept + dropped
        x = core_apply("Transpose", [x], perm=order)
        src = [x.shape[order.index(p)] for p in kept]
    else:
        src = [x.shape[p] for p in kept]
    it = iter(src)
    shape = [1 if p == "x" else next(it) for p in pattern]
    if tuple(shape) == tuple(x.shape):
        return x
    return core_apply("Reshape", [x], shape=shape)


def dimshuffle(x, pattern):
    """Permute axes, add broadcastable axes ('x'), drop broadcastable ones.

    >>> b.dimshuffle('x', 0, 'x', 'x')     # a bias (C,) against (N, C, H, W)
    """
    x = as_tensor_variable(x)
    pattern = tuple(p if p == "x" else int(p) for p in pattern)
    kept = [p for p in pattern if p != "x"]
    if len(set(kept)) != len(kept) or builtins.any(not 0 <= p < x.ndim for p in kept):
        raise ValueError(f"dimshuffle{pattern} of the {x.ndim}-d tensor '{x}': each axis "
                         f"0..{x.ndim - 1} at most once")
    for axis in range(x.ndim):
        if axis not in kept and not x.broadcastable[axis]:
            raise ValueError(f"dimshuffle{pattern} drops axis {axis} of '{x}', which is not "
                             f"broadcastable ({x.type}); use addbroadcast first")
    out_pattern = tuple(True if p == "x" else x.broadcastable[p] for p in pattern)
    if pattern == tuple(range(x.ndim)):
        return x
    return lowered(_lower_dimshuffle, [x], TensorType(x.dtype, out_pattern), name="dimshuffle",
                   pattern=pattern)


def transpose(x, axes=None):
    """Axes reversed, or permuted by ``axes``."""
    x = as_tensor_variable(x)
    axes = tuple(range(x.ndim))[::-1] if axes is None else tuple(int(a) for a in axes)
    return dimshuffle(x, axes)


def swapaxes(x, axis1, axis2):
    x = as_tensor_variable(x)
    order = list(range(x.ndim))
    order[axis1], order[axis2] = order[axis2], order[axis1]
    return dimshuffle(x, order)


def squeeze(x):
    """``x`` without its broadcastable axes."""
    x = as_tensor_variable(x)
    return dimshuffle(x, [i for i, b in enumerate(x.broadcastable) if not b])


def shape_padleft(x, n_ones=1):
    x = as_tensor_variable(x)
    return dimshuffle(x, ("x",) * n_ones + tuple(range(x.ndim)))


def shape_padright(x, n_ones=1):
    x = as_tensor_variable(x)
    return dimshuffle(x, tuple(range(x.ndim)) + ("x",) * n_ones)


def shape_padaxis(x, axis):
    x = as_tensor_variable(x)
    axis = axis % (x.ndim + 1)
    order = list(range(x.ndim))
    order.insert(axis, "x")
    return dimshuffle(x, order)


def _lower_rebroadcast(ctx, node, x, pattern):
    for axis, b in enumerate(pattern):
        if b and x.shape[axis] != 1:
            raise ValueError(f"'{node.inputs[0]}' was declared broadcastable on axis {axis}, "
                             f"but has shape {tuple(x.shape)}")
    return x


def patternbroadcast(x, broadcastable):
    """``x`` with its broadcastable pattern set (checked when the function runs)."""
    x = as_tensor_variable(x)
    broadcastable = tuple(bool(b) for b in broadcastable)
    if broadcastable == x.broadcastable:
        return x
    return lowered(_lower_rebroadcast, [x], TensorType(x.dtype, broadcastable),
                   name="rebroadcast", pattern=broadcastable)


def addbroadcast(x, *axes):
    x = as_tensor_variable(x)
    pattern = list(x.broadcastable)
    for a in axes:
        pattern[a] = True
    return patternbroadcast(x, pattern)


def unbroadcast(x, *axes):
    x = as_tensor_variable(x)
    pattern = list(x.broadcastable)
    for a in axes:
        pattern[a] = False
    return patternbroadcast(x, pattern)


# -- making tensors --------------------------------------------------------------------

def zeros_like(x, dtype=None):
    x = as_tensor_variable(x)
    return alloc(np.asarray(0, dtype or x.dtype), *_shape_list(x))


def ones_like(x, dtype=None):
    x = as_tensor_variable(x)
    return alloc(np.asarray(1, dtype or x.dtype), *_shape_list(x))


def _shape_list(x):
    s = shape(x)
    return [1 if b else s[i] for i, b in enumerate(x.broadcastable)]


def zeros(shape, dtype=None):
    """A tensor of zeros: ``T.zeros((n, 3))`` (sizes may be symbolic)."""
    return alloc(np.asarray(0, dtype or config.floatX), *_shape_arg_list(shape))


def ones(shape, dtype=None):
    return alloc(np.asarray(1, dtype or config.floatX), *_shape_arg_list(shape))


def _shape_arg_list(shape):
    entries = _as_shape_entries(shape)
    if isinstance(entries, list):
        return entries
    length = entries._static_length()
    if length is None:
        raise ValueError(f"the shape '{entries}' has an unknown length; pass a tuple of sizes")
    return [entries[i] for i in range(length)]


def _lower_alloc(ctx, node, value, *dims, template):
    shape = _resolve_dims(ctx, node, template, 1)
    if value.kind == "constant" and np.asarray(value._value).ndim == 0:
        return core_apply("Fill", [], shape=shape, value=float(value._value), dtype=str(value.dtype))
    if tuple(value.shape) == tuple(shape):
        return core_apply("Copy", [value])
    return core_apply("BroadcastLike", [value, _zeros_core(shape, value.dtype)])


def alloc(value, *shape):
    """``value`` broadcast to ``shape``: ``T.alloc(0., n, 10)``, ``T.alloc(b, 3, 4)``."""
    value = as_tensor_variable(value)
    entries = []
    for d in shape:
        if isinstance(d, (int, np.integer)):
            entries.append(int(d))
        else:
            v = as_tensor_variable(d)
            entries.append(int(v.data) if isinstance(v, TensorConstant) else v)
    if len(entries) < value.ndim:
        raise ValueError(f"alloc of the {value.ndim}-d '{value}' to {len(entries)} dimensions")
    template, variables = _shape_template(entries)
    offset = len(entries) - value.ndim
    pattern = tuple((isinstance(e, int) and e == 1) or (
        i >= offset and value.broadcastable[i - offset] and isinstance(e, int) and e == 1)
        for i, e in enumerate(entries))
    return lowered(_lower_alloc, [value] + variables, TensorType(value.dtype, pattern),
                   name="alloc", connected=[True] + [False] * len(variables), template=template)


def _lower_arange(ctx, node, *xs, dtype):
    start, stop, step = (ctx.value(v).item() for v in node.inputs)
    return core_apply("Arange", [], start=start, stop=stop, step=step, dtype=dtype)


def arange(start, stop=None, step=1, dtype=None):
    """``T.arange(n)``, ``T.arange(a, b, step)``; bounds may be symbolic (e.g. y.shape[0])."""
    if stop is None:
        start, stop = 0, start
    start, stop, step = _vars(start, stop, step)
    if dtype is None:
        dtype = ttype.upcast(start.dtype, stop.dtype, step.dtype)
        if dtype in ttype.DISCRETE_DTYPES:
            dtype = "int64"
        elif config.floatX == "float32" and dtype == "float64" and builtins.all(
                isinstance(v, TensorConstant) for v in (start, stop, step)):
            dtype = "float32"
    static = None
    if builtins.all(isinstance(v, TensorConstant) for v in (start, stop, step)):
        static = len(np.arange(start.data, stop.data, step.data))
    out = lowered(_lower_arange, [start, stop, step],
                  TensorType(dtype, (static == 1,)), name="arange", connected=False,
                  dtype=str(np.dtype(dtype)))
    return out


def _lower_eye(ctx, node, *xs, k, dtype):
    n, m = (int(ctx.value(v)) for v in node.inputs)
    return core_constant(np.eye(n, m, k, dtype=dtype), dtype=dtype)


def eye(n, m=None, k=0, dtype=None):
    """An n x m matrix with ones on diagonal ``k`` (sizes may be symbolic)."""
    n = as_tensor_variable(n)
    m = n if m is None else as_tensor_variable(m)
    return lowered(_lower_eye, [n, m], TensorType(dtype or config.floatX, (False, False)),
                   name="eye", connected=False, k=int(k), dtype=str(np.dtype(dtype or config.floatX)))


def identity_like(x):
    """The identity matrix shaped like matrix ``x``."""
    x = as_tensor_variable(x)
    return eye(x.shape[0], x.shape[1], dtype=x.dtype)


def diag(v, k=0):
    """The diagonal of a matrix, or the square matrix with vector ``v`` on its diagonal."""
    v = as_tensor_variable(v)
    if k:
        raise NotImplementedError("T.diag with k != 0")
    if v.ndim == 1:
        return mul(eye(v.shape[0], dtype=v.dtype), dimshuffle(v, ("x", 0)))
    if v.ndim == 2:
        idx = arange(minimum(v.shape[0], v.shape[1]))
        return v[idx, idx]
    raise TypeError(f"T.diag takes a vector or a matrix, got '{v}' ({v.type})")


# -- joining ---------------------------------------------------------------------------

def _lower_concat(ctx, node, *xs, axis):
    dtype = node.outputs[0].dtype
    xs = [cast_core(x, dtype) for x in xs]
    if len(xs) == 1:
        return core_apply("Copy", xs)
    return core_apply("Concat", xs, axis=axis)


def concatenate(tensor_list, axis=0):
    """Join tensors along an existing ``axis``."""
    tensors = _vars(*tensor_list)
    if not tensors:
        raise ValueError("concatenate needs at least one tensor")
    ndim = tensors[0].ndim
    if builtins.any(t.ndim != ndim for t in tensors):
        raise TypeError(f"concatenate: tensors have different ranks: {[t.ndim for t in tensors]}")
    if ndim == 0:
        raise TypeError("concatenate: 0-d tensors cannot be joined; use T.stack")
    axis = axis % ndim
    pattern = tuple(False if i == axis else builtins.any(t.broadcastable[i] for t in tensors)
                    for i in range(ndim))
    if len(tensors) == 1:
        pattern = tensors[0].broadcastable
    dtype = ttype.upcast(*[t.dtype for t in tensors])
    return lowered(_lower_concat, tensors, TensorType(dtype, pattern), name="join", axis=axis)


def join(axis, *tensors):
    """``T.join(axis, a, b, ...)``: Theano's argument order for concatenate."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    return concatenate(tensors, axis=axis)


def _lower_stack(ctx, node, *xs, axis):
    dtype = node.outputs[0].dtype
    return core_apply("Stack", [cast_core(x, dtype) for x in xs], axis=axis)


def stack(*tensors, axis=0):
    """Stack equal-shaped tensors along a new ``axis``: ``T.stack([a, b])``, ``T.stack(a, b)``."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    tensors = _vars(*tensors)
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    ndim = tensors[0].ndim
    axis = axis % (ndim + 1)
    inner = tuple(builtins.all(t.broadcastable[i] for t in tensors) for i in range(ndim))
    pattern = inner[:axis] + (len(tensors) == 1,) + inner[axis:]
    dtype = ttype.upcast(*[t.dtype for t in tensors])
    return lowered(_lower_stack, tensors, TensorType(dtype, pattern), name="stack", axis=axis)


_lower_stack.static_length = lambda node: len(node.inputs) if node.op.params["axis"] == 0 else None


def _lower_split(ctx, node, x, *rest, sizes_template, axis):
    sizes = _resolve_dims(ctx, node, sizes_template, 1)
    outs = core_apply("Split", [x], axis=axis, sizes=sizes)
    return outs if isinstance(outs, list) else [outs]


def split(x, splits_size, n_splits, axis=0):
    """``x`` cut along ``axis`` into ``n_splits`` pieces of ``splits_size``."""
    x = as_tensor_variable(x)
    entries = _as_shape_entries(splits_size)
    if not isinstance(entries, list):
        entries = [entries[i] for i in range(n_splits)]
    template, variables = _shape_template(entries)
    axis = axis % x.ndim
    pattern = tuple(False if i == axis else b for i, b in enumerate(x.broadcastable))
    types = [TensorType(x.dtype, pattern) for _ in range(n_splits)]
    return lowered(_lower_split, [x] + variables, types, name="split",
                   connected=[True] + [False] * len(variables), sizes_template=template, axis=axis)


# -- products --------------------------------------------------------------------------

def _lower_dot(ctx, node, a, b):
    dtype = node.outputs[0].dtype
    a, b = cast_core(a, dtype), cast_core(b, dtype)
    if a.ndim == 0 or b.ndim == 0:
        return core_apply("Mul", [a, b])
    if a.ndim <= 2 and b.ndim <= 2:
        return core_apply("MatMul", [a, b])
    # numpy.dot: contract a's last axis with b's second-to-last.
    a2 = core_apply("Reshape", [a], shape=[-1, a.shape[-1]])
    if b.ndim == 1:
        out = core_apply("MatMul", [a2, b])
        return core_apply("Reshape", [out], shape=list(a.shape[:-1]))
    perm = [b.ndim - 2] + [i for i in range(b.ndim) if i != b.ndim - 2]
    bt = core_apply("Transpose", [b], perm=perm)
    b2 = core_apply("Reshape", [bt], shape=[b.shape[-2], -1])
    out = core_apply("MatMul", [a2, b2])
    rest = [b.shape[i] for i in perm[1:]]
    return core_apply("Reshape", [out], shape=list(a.shape[:-1]) + rest)


def dot(a, b):
    """Matrix product with numpy.dot's rules (vectors, matrices and higher ranks).

    >>> T.dot(x, W) + b
    """
    a, b = _vars(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return mul(a, b)
    pattern = a.broadcastable[:-1] + (b.broadcastable[:-2] + b.broadcastable[-1:]
                                      if b.ndim >= 2 else ())
    return lowered(_lower_dot, [a, b], TensorType(ttype.upcast(a.dtype, b.dtype), pattern),
                   name="dot")


def outer(x, y):
    """Outer product of two vectors."""
    x, y = _vars(x, y)
    return mul(dimshuffle(x.flatten(), (0, "x")), dimshuffle(y.flatten(), ("x", 0)))


def _lower_tensordot(ctx, node, a, b, axes_a, axes_b):
    dtype = node.outputs[0].dtype
    a, b = cast_core(a, dtype), cast_core(b, dtype)
    free_a = [i for i in range(a.ndim) if i not in axes_a]
    free_b = [i for i in range(b.ndim) if i not in axes_b]
    inner = int(np.prod([a.shape[i] for i in axes_a], dtype=np.int64))
    at = core_apply("Transpose", [a], perm=free_a + list(axes_a)) if a.ndim > 1 else a
    bt = core_apply("Transpose", [b], perm=list(axes_b) + free_b) if b.ndim > 1 else b
    a2 = core_apply("Reshape", [at], shape=[-1, inner])
    b2 = core_apply("Reshape", [bt], shape=[inner, -1])
    out = core_apply("MatMul", [a2, b2])
    return core_apply("Reshape", [out], shape=[a.shape[i] for i in free_a] +
                      [b.shape[i] for i in free_b])


def tensordot(a, b, axes=2):
    """numpy.tensordot: ``axes`` an int (last/first axes) or a pair of axis lists."""
    a, b = _vars(a, b)
    if isinstance(axes, (int, np.integer)):
        axes_a = list(range(a.ndim - axes, a.ndim))
        axes_b = list(range(axes))
    else:
        axes_a, axes_b = ([int(i) for i in np.atleast_1d(x)] for x in axes)
    axes_a = [i % a.ndim for i in axes_a]
    axes_b = [i % b.ndim for i in axes_b]
    pattern = tuple(a.broadcastable[i] for i in range(a.ndim) if i not in axes_a) + \
        tuple(b.broadcastable[i] for i in range(b.ndim) if i not in axes_b)
    return lowered(_lower_tensordot, [a, b], TensorType(ttype.upcast(a.dtype, b.dtype), pattern),
                   name="tensordot", axes_a=axes_a, axes_b=axes_b)


def batched_dot(a, b):
    """``a[i] . b[i]`` for each i of the first axis."""
    a, b = _vars(a, b)
    if a.ndim == 2 and b.ndim == 2:
        return sum(a * b, axis=1)
    if a.ndim == 3 and b.ndim == 3:
        dtype = ttype.upcast(a.dtype, b.dtype)
        pattern = (a.broadcastable[0] and b.broadcastable[0], a.broadcastable[1], b.broadcastable[2])
        return lowered(_lower_batched_matmul, [a, b], TensorType(dtype, pattern),
                       name="batched_dot")
    if a.ndim == 3 and b.ndim == 2:
        return dimshuffle(batched_dot(a, dimshuffle(b, (0, 1, "x"))), (0, 1))
    if a.ndim == 2 and b.ndim == 3:
        return dimshuffle(batched_dot(dimshuffle(a, (0, "x", 1)), b), (0, 2))
    raise NotImplementedError(f"batched_dot of {a.ndim}-d and {b.ndim}-d tensors")


def _lower_batched_matmul(ctx, node, a, b):
    dtype = node.outputs[0].dtype
    return core_apply("MatMul", [cast_core(a, dtype), cast_core(b, dtype)])


# -- constants -------------------------------------------------------------------------

class NotScalarConstantError(Exception):
    """Raised by get_scalar_constant_value for a variable whose value is not known."""


def get_scalar_constant_value(v):
    """The number ``v`` stands for, when the graph fixes it (constants, shapes of constants)."""
    if isinstance(v, (int, float, np.number, np.ndarray)):
        array = np.asarray(v)
        if array.size == 1:
            return array.reshape(())
    if isinstance(v, TensorConstant) and v.data.size == 1:
        return v.data.reshape(())
    raise NotScalarConstantError(f"{v!r} is not a scalar constant")


# Theano's aliases
abs = abs_  # noqa: A001 - T.abs exists in later Theano
true_divide = true_div
