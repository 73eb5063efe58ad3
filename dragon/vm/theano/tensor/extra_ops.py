"""``theano.tensor.extra_ops``: cumsum, to_one_hot, repeat, diff, squeeze and friends.

    from dragon.vm.theano.tensor import extra_ops
    Y = extra_ops.to_one_hot(y, 10)          # (n,) ints -> (n, 10) floatX
    c = extra_ops.cumsum(x, axis=0)
"""
from __future__ import annotations

import numpy as np

from dragon.core.tensor import apply as core_apply
from dragon.core.tensor import constant as core_constant
from dragon.vm.theano.configparser import config
from dragon.vm.theano.tensor import basic
from dragon.vm.theano.tensor.type import TensorType
from dragon.vm.theano.tensor.var import as_tensor_variable, lowered


def _lower_cumsum(ctx, node, x, axis):
    if axis is None:
        x = core_apply("Reshape", [x], shape=[-1])
        axis = 0
    return core_apply("CumSum", [basic.cast_core(x, node.outputs[0].dtype)], axis=axis)


def cumsum(x, axis=None):
    """Cumulative sum along ``axis`` (of the flattened tensor when None)."""
    x = as_tensor_variable(x)
    pattern = (False,) if axis is None else x.broadcastable
    if axis is not None:
        axis = axis % x.ndim
    return lowered(_lower_cumsum, [x], TensorType(x.dtype, pattern), name="cumsum", axis=axis)


def _lower_cumprod(ctx, node, x, axis):
    # exp(cumsum(log|x|)) with the sign tracked would lose exact zeros; take products by slices.
    if axis is None:
        x = core_apply("Reshape", [x], shape=[-1])
        axis = 0
    n = x.shape[axis]
    pieces, running = [], None
    for i in range(n):
        begin = [0] * x.ndim
        end = [2**31 - 1] * x.ndim
        begin[axis], end[axis] = i, i + 1
        piece = core_apply("StridedSlice", [x], begin=begin, end=end, step=[1] * x.ndim)
        running = piece if running is None else core_apply("Mul", [running, piece])
        pieces.append(running)
    return core_apply("Concat", pieces, axis=axis) if len(pieces) > 1 else core_apply("Copy", pieces)


def cumprod(x, axis=None):
    """Cumulative product along ``axis`` (of the flattened tensor when None)."""
    x = as_tensor_variable(x)
    pattern = (False,) if axis is None else x.broadcastable
    if axis is not None:
        axis = axis % x.ndim
    return lowered(_lower_cumprod, [x], TensorType(x.dtype, pattern), name="cumprod", axis=axis)


def _lower_one_hot(ctx, node, y, nb_class):
    out = core_apply("OneHot", [y], depth=int(nb_class))
    return basic.cast_core(out, node.outputs[0].dtype)


def to_one_hot(y, nb_class, dtype=None):
    """Integer vector ``y`` as rows of one-hot vectors of length ``nb_class`` (floatX)."""
    y = as_tensor_variable(y)
    if y.ndim != 1 or not y.dtype.startswith(("int", "uint")):
        raise TypeError(f"to_one_hot takes an integer vector, got '{y}' ({y.type})")
    return lowered(_lower_one_hot, [y], TensorType(dtype or config.floatX, (False, False)),
                   name="to_one_hot", connected=False, nb_class=int(nb_class))


def _lower_repeat(ctx, node, x, *rest, repeats, axis):
    if repeats is None:
        repeats = ctx.value(node.inputs[1])
    if axis is None:
        x = core_apply("Reshape", [x], shape=[-1])
        axis = 0
    index = np.repeat(np.arange(x.shape[axis]), np.asarray(repeats)).astype(np.int64)
    return core_apply("Gather", [x, core_constant(index, dtype=np.int64)], axis=axis)


def repeat(x, repeats, axis=None):
    """numpy.repeat: each entry ``repeats`` times along ``axis`` (flattened when None)."""
    x = as_tensor_variable(x)
    pattern = (False,) if axis is None else tuple(
        False if i == axis % x.ndim else b for i, b in enumerate(x.broadcastable))
    axis = None if axis is None else axis % x.ndim
    if isinstance(repeats, (int, np.integer, list, tuple, np.ndarray)):
        return lowered(_lower_repeat, [x], TensorType(x.dtype, pattern), name="repeat",
                       repeats=np.asarray(repeats).tolist(), axis=axis)
    r = as_tensor_variable(repeats)
    return lowered(_lower_repeat, [x, r], TensorType(x.dtype, pattern), name="repeat",
                   connected=[True, False], repeats=None, axis=axis)


def diff(x, n=1, axis=-1):
    """n-th discrete difference along ``axis``."""
    x = as_tensor_variable(x)
    axis = axis % x.ndim
    for _ in range(n):
        hi = [slice(None)] * x.ndim
        lo = [slice(None)] * x.ndim
        hi[axis] = slice(1, None)
        lo[axis] = slice(None, -1)
        x = x[tuple(hi)] - x[tuple(lo)]
    return x


def squeeze(x):
    """``x`` without its broadcastable axes."""
    return basic.squeeze(x)


def fill_diagonal(a, val):
    """``a`` (a matrix) with ``val`` on its diagonal."""
    a, val = as_tensor_variable(a), as_tensor_variable(val)
    from dragon.vm.theano.tensor.subtensor import set_subtensor
    n = basic.minimum(a.shape[0], a.shape[1])
    idx = basic.arange(n)
    return set_subtensor(a[idx, idx], val)
