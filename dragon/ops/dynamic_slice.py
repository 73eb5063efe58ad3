"""Slices whose start is a tensor: ``X[start:start + size]`` along one axis.

The size is fixed when the graph compiles (so the plan knows every shape); the
start is read when the op runs. Theano's minibatch pattern
``data[i * bs:(i + 1) * bs]`` lowers to this with ``size = bs``; the optional
``stop`` input is checked against the compiled size at run time.

    batch = dragon.ops.dynamic_slice(data, start, axis=0, size=20)
"""
from __future__ import annotations

import numpy as np

from dragon.core.errors import ShapeError
from dragon.ops.registry import REQUIRED, Spec, normalize_axis, register

_ARGS = {"axis": 0, "size": REQUIRED}


def _bounds(x_shape, start, stop, axis, size):
    """(begin, end) of the slice, or IndexError saying how the values miss the compiled size."""
    n = int(x_shape[axis])
    raw = int(start)
    if stop is not None:
        raw_stop = int(stop)
        begin, end, _ = slice(raw, raw_stop).indices(n)
        if max(end - begin, 0) != size:
            raise IndexError(f"slice [{raw}:{raw_stop}] of an axis of size {n} has "
                             f"{max(end - begin, 0)} elements when run; it was compiled for "
                             f"{size} (axis {axis})")
        return begin, end
    begin = raw + n if raw < 0 else raw
    if not 0 <= begin <= n - size:
        what = f"index {raw}" if size == 1 else f"slice [{raw}:{raw + size}]"
        raise IndexError(f"{what} is out of bounds for axis {axis} with size {n}")
    return begin, begin + size


def _key(axis, begin, end):
    return (slice(None),) * axis + (slice(begin, end),)


def _check(x, start, stop, axis, size):
    axis = normalize_axis(axis, x.ndim)
    for what, s in (("start", start), ("stop", stop)):
        if s is not None and (s.ndim != 0 or np.dtype(s.dtype).kind not in "iu"):
            raise ShapeError(f"{what} must be an integer scalar, got shape {tuple(s.shape)} "
                             f"dtype {s.dtype}")
    if not 0 <= size <= x.shape[axis]:
        raise ShapeError(f"size {size} does not fit axis {axis} of size {x.shape[axis]}")
    return axis


@register("DynamicSlice", args=_ARGS, inputs=(2, 3), recompute=True)
def dynamic_slice(xp, x, start, *stop, out, axis, size):
    """Y = X[start:start + size] along ``axis``; start from a tensor (negatives count from the end).

    With a third input ``stop`` the slice is X[start:stop] (Python's clamping), which
    must have ``size`` elements.
    """
    axis = axis % x.ndim
    begin, end = _bounds(x.shape, start, stop[0] if stop else None, axis, size)
    xp.copyto(out, x[_key(axis, begin, end)])


@dynamic_slice.shape
def _(x, start, *stop, axis, size):
    axis = _check(x, start, stop[0] if stop else None, axis, size)
    shape = list(x.shape)
    shape[axis] = size
    return Spec(tuple(shape), x.dtype)


@dynamic_slice.grad
def _(g):
    extra = [g.X(2)] if g.num_inputs == 3 else []
    dx = g.op("DynamicSliceGradient", [g.X(0), g.X(1), g.dY(0)] + extra, **g.args)
    return [dx, None] + [None] * len(extra)


@register("DynamicSliceGradient", args=_ARGS, inputs=(3, 4))
def dynamic_slice_gradient(xp, x, start, dy, *stop, out, axis, size):
    """dX of DynamicSlice: zeros of X's shape with dY written at [start:start + size]."""
    axis = axis % x.ndim
    begin, end = _bounds(x.shape, start, stop[0] if stop else None, axis, size)
    out.fill(0)
    out[_key(axis, begin, end)] = dy


@dynamic_slice_gradient.shape
def _(x, start, dy, *stop, axis, size):
    axis = _check(x, start, stop[0] if stop else None, axis, size)
    expected = list(x.shape)
    expected[axis] = size
    if tuple(dy.shape) != tuple(expected):
        raise ShapeError(f"dY has shape {tuple(dy.shape)}, the slice has {tuple(expected)}")
    return Spec(tuple(x.shape), dy.dtype)


@dynamic_slice_gradient.grad
def _(g):
    extra = [g.X(3)] if g.num_inputs == 4 else []
    ddy = g.op("DynamicSlice", [g.dY(0), g.X(1)] + extra, **g.args)
    return [None, None, ddy] + [None] * len(extra)
