"""Array ops: reshaping, transposing, joining, splitting, slicing, gathering, padding, casting.

Most of these move data without arithmetic, so their gradients move it back:
Reshape's is ``ReshapeLike(dY, X)``, StridedSlice's writes dY into zeros of X's
shape, Gather's scatter-adds. Gradient ops take the forward input ``X`` as an
extra input wherever they need its shape, since shapes may be unknown when the
backward graph is built.

    y = dragon.ops.transpose(dragon.ops.reshape(x, shape=[0, -1, 4]), perm=[0, 2, 1])
"""
from __future__ import annotations

import math

import numpy as np

from dragon.core.errors import ShapeError
from dragon.ops.math import _unbroadcast
from dragon.ops.registry import (REQUIRED, Spec, broadcast_shapes, normalize_axis, register,
                                 result_dtype)

# StridedSlice's "to the end" bound: slices clamp like Python's, so begin=SLICE_END with a
# negative step starts at the last element, end=SLICE_END with a positive step runs to the
# end and end=-SLICE_END - 1 with a negative step runs through index 0.
SLICE_END = 2**31 - 1

_MANY = 1 << 16  # the most inputs a variadic op takes


def _along(axis, index):
    """An indexing key applying ``index`` to ``axis`` and taking every other axis whole."""
    return (slice(None),) * axis + (index,)


def _dtype(name):
    try:
        return np.dtype(name)
    except TypeError:
        raise ShapeError(f"unknown dtype {name!r}") from None


def _shapes(*specs):
    return [tuple(s.shape) for s in specs]


def _outputs(out):
    return out if isinstance(out, tuple) else (out,)


def _as_list(tensors):
    return tensors if isinstance(tensors, list) else [tensors]


def _as_index(xp, indices):
    """Integer indices as an integer array (labels often arrive as floats)."""
    return indices if indices.dtype.kind in "iu" else indices.astype(xp.int64)


def _check_index_dtype(indices):
    if np.dtype(indices.dtype).kind not in "iuf":
        raise ShapeError(f"indices must be integers (or integral floats), got dtype {indices.dtype}")


# -- reshaping: the output is the input's data with another shape ----------------------------

def _copy_reshaped(xp, x, out):
    xp.copyto(out, x.reshape(out.shape))


def _reshape_to_input(g):
    return [g.op("ReshapeLike", [g.dY(0), g.X(0)])]


@register("Reshape", args={"shape": REQUIRED}, recompute=True, alias=0)
def reshape(xp, x, *, out, shape):
    """Y = X with shape ``shape``: 0 copies X's dimension at that position, one -1 is inferred."""
    _copy_reshaped(xp, x, out)


@reshape.shape
def _(x, *, shape):
    dims = []
    inferred = None
    for i, d in enumerate(shape):
        if d == 0:
            if i >= x.ndim:
                raise ShapeError(f"shape {list(shape)} copies input dimension {i} (the 0 there), "
                                 f"but the input has {x.ndim}")
            dims.append(x.shape[i])
        elif d == -1:
            if inferred is not None:
                raise ShapeError(f"shape {list(shape)} has more than one -1")
            inferred = i
            dims.append(1)
        elif d < 0:
            raise ShapeError(f"shape {list(shape)} has a negative dimension {d}")
        else:
            dims.append(int(d))
    known = math.prod(dims)
    if inferred is not None:
        if known == 0 or x.size % known:
            raise ShapeError(f"cannot infer the -1 of shape {list(shape)} for {x.size} elements")
        dims[inferred] = x.size // known
    elif known != x.size:
        raise ShapeError(f"cannot reshape {x.size} elements into shape {list(shape)}")
    return x.with_shape(dims)


reshape.grad(_reshape_to_input)


@register("ReshapeLike", inputs=2, recompute=True, alias=0)
def reshape_like(xp, x, like, *, out):
    """Y = X with the shape of ``like`` (same number of elements)."""
    _copy_reshaped(xp, x, out)


@reshape_like.shape
def _(x, like):
    if x.size != like.size:
        raise ShapeError(f"cannot reshape {x.size} elements like a tensor of {like.size}")
    return like.with_dtype(x.dtype)


@reshape_like.grad
def _(g):
    return [g.op("ReshapeLike", [g.dY(0), g.X(0)]), None]


@register("Flatten", args={"axis": 1, "end_axis": -1}, recompute=True, alias=0)
def flatten(xp, x, *, out, axis, end_axis):
    """Y = X with axes ``axis`` .. ``end_axis`` (inclusive) merged into one (Caffe's Flatten)."""
    _copy_reshaped(xp, x, out)


@flatten.shape
def _(x, *, axis, end_axis):
    first, last = normalize_axis(axis, x.ndim), normalize_axis(end_axis, x.ndim)
    if first > last:
        raise ShapeError(f"axis {axis} comes after end_axis {end_axis}")
    merged = math.prod(x.shape[first:last + 1])
    return x.with_shape(x.shape[:first] + (merged,) + x.shape[last + 1:])


flatten.grad(_reshape_to_input)


@register("ExpandDims", args={"axis": REQUIRED}, recompute=True, alias=0)
def expand_dims(xp, x, *, out, axis):
    """Y = X with a new axis of size 1 at ``axis`` of Y (numpy's expand_dims)."""
    _copy_reshaped(xp, x, out)


@expand_dims.shape
def _(x, *, axis):
    at = normalize_axis(axis, x.ndim + 1)
    return x.with_shape(x.shape[:at] + (1,) + x.shape[at:])


expand_dims.grad(_reshape_to_input)


@register("Squeeze", args={"axes": []}, recompute=True, alias=0)
def squeeze(xp, x, *, out, axes):
    """Y = X without the size-1 axes ``axes`` (every size-1 axis when empty)."""
    _copy_reshaped(xp, x, out)


@squeeze.shape
def _(x, *, axes):
    if not axes:
        return x.with_shape([d for d in x.shape if d != 1])
    drop = {normalize_axis(a, x.ndim) for a in axes}
    for a in sorted(drop):
        if x.shape[a] != 1:
            raise ShapeError(f"cannot squeeze axis {a} of size {x.shape[a]}")
    return x.with_shape([d for i, d in enumerate(x.shape) if i not in drop])


squeeze.grad(_reshape_to_input)


# -- transposing ------------------------------------------------------------------------------

@register("Transpose", args={"perm": []}, recompute=True)
def transpose(xp, x, *, out, perm):
    """Y = X with its axes permuted by ``perm`` (reversed when empty)."""
    xp.copyto(out, x.transpose(perm or None))


@transpose.shape
def _(x, *, perm):
    if not perm:
        return x.with_shape(x.shape[::-1])
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"perm {list(perm)} is not a permutation of the {x.ndim} axes")
    return x.with_shape([x.shape[p] for p in perm])


@transpose.grad
def _(g):
    perm = g.args["perm"]
    inverse = [int(i) for i in np.argsort(perm)] if perm else []
    return [g.op("Transpose", [g.dY(0)], perm=inverse)]


# -- joining and splitting --------------------------------------------------------------------

@register("Concat", args={"axis": 1}, inputs=(1, _MANY), recompute=True)
def concat(xp, *xs, out, axis):
    """Y = X0, X1, ... joined along ``axis``."""
    xp.concatenate(xs, axis=axis % out.ndim, out=out)


@concat.shape
def _(*xs, axis):
    first = xs[0]
    at = normalize_axis(axis, first.ndim)
    for x in xs[1:]:
        if x.ndim != first.ndim or any(
                d != e for i, (d, e) in enumerate(zip(x.shape, first.shape)) if i != at):
            raise ShapeError(f"inputs {_shapes(*xs)} differ outside axis {at}")
    total = sum(x.shape[at] for x in xs)
    return Spec(first.shape[:at] + (total,) + first.shape[at + 1:], result_dtype(*xs))


@concat.grad
def _(g):
    need = [int(g.needs(i)) for i in range(g.num_inputs)]
    parts = iter(_as_list(g.op("ConcatGradient", [g.dY(0)] + g.node.inputs,
                               axis=g.args["axis"], need=need)))
    return [next(parts) if n else None for n in need]


def _count_needed(args):
    return sum(1 for n in args["need"] if n)


@register("ConcatGradient", args={"axis": 1, "need": REQUIRED}, inputs=(2, _MANY),
          outputs=_count_needed)
def concat_gradient(xp, dy, *xs, out, axis, need):
    """dX0, dX1, ... of Concat: the pieces of dY along ``axis``, for the inputs ``need`` flags."""
    at = axis % dy.ndim
    outs = iter(_outputs(out))
    start = 0
    for x, wanted in zip(xs, need):
        stop = start + x.shape[at]
        if wanted:
            xp.copyto(next(outs), dy[_along(at, slice(start, stop))])
        start = stop


@concat_gradient.shape
def _(dy, *xs, axis, need):
    if len(need) != len(xs):
        raise ShapeError(f"need has {len(need)} flags for {len(xs)} inputs")
    if not any(need):
        raise ShapeError("need flags no input")
    joined = concat.shape_fn(*xs, axis=axis)
    if tuple(dy.shape) != joined.shape:
        raise ShapeError(f"dY has shape {tuple(dy.shape)}, the inputs join to {joined.shape}")
    return [x.with_dtype(dy.dtype) for x, n in zip(xs, need) if n]


@concat_gradient.grad
def _(g):
    xs = g.node.inputs[1:]
    output_index = iter(range(len(g.node.outputs)))
    parts = [g.dY(next(output_index)) if n else g.op("ZerosLike", [x])
             for x, n in zip(xs, g.args["need"])]
    return [g.op("Concat", parts, axis=g.args["axis"])] + [None] * len(xs)


def _split_count(args):
    count = len(args["sizes"]) or args["num"]
    if count < 1:
        raise ShapeError(f"Split needs `sizes` or a positive `num`, got sizes={args['sizes']!r} "
                         f"and num={args['num']!r}")
    return count


def _split_sizes(dim, sizes, num):
    if not sizes:
        if dim % num:
            raise ShapeError(f"cannot split a dimension of {dim} into {num} equal parts")
        return [dim // num] * num
    sizes = list(sizes)
    if sizes.count(-1) > 1 or any(s < -1 for s in sizes):
        raise ShapeError(f"sizes {sizes} may hold one -1 and no other negative size")
    if -1 in sizes:
        rest = dim - (sum(sizes) + 1)
        if rest < 0:
            raise ShapeError(f"sizes {sizes} exceed the dimension of {dim}")
        sizes[sizes.index(-1)] = rest
    if sum(sizes) != dim:
        raise ShapeError(f"sizes {sizes} do not add up to the dimension of {dim}")
    return sizes


@register("Split", args={"axis": 1, "sizes": [], "num": 0}, outputs=_split_count, recompute=True)
def split(xp, x, *, out, axis, sizes, num):
    """Y0, Y1, ... = X cut along ``axis`` into pieces of ``sizes`` or into ``num`` equal ones.

    One of ``sizes`` may be -1 (the rest of the axis); ``sizes`` wins over ``num``.
    """
    at = axis % x.ndim
    start = 0
    for y in _outputs(out):
        stop = start + y.shape[at]
        xp.copyto(y, x[_along(at, slice(start, stop))])
        start = stop


@split.shape
def _(x, *, axis, sizes, num):
    at = normalize_axis(axis, x.ndim)
    pieces = _split_sizes(x.shape[at], sizes, num)
    return [x.with_shape(x.shape[:at] + (n,) + x.shape[at + 1:]) for n in pieces]


@split.grad
def _(g):
    dys = [g.dY(i) for i in range(len(g.node.outputs))]
    return [g.op("Concat", dys, axis=g.args["axis"])]


@register("Stack", args={"axis": 0}, inputs=(1, _MANY), recompute=True)
def stack(xp, *xs, out, axis):
    """Y = X0, X1, ... (equal shapes) stacked along a new axis ``axis`` of Y."""
    xp.stack(xs, axis=axis % out.ndim, out=out)


@stack.shape
def _(*xs, axis):
    first = xs[0]
    if any(tuple(x.shape) != tuple(first.shape) for x in xs):
        raise ShapeError(f"Stack needs equal shapes, got {_shapes(*xs)}")
    at = normalize_axis(axis, first.ndim + 1)
    return Spec(first.shape[:at] + (len(xs),) + first.shape[at:], result_dtype(*xs))


@stack.grad
def _(g):
    axis = g.args["axis"]
    pieces = _as_list(g.op("Split", [g.dY(0)], axis=axis, num=g.num_inputs))
    return [g.op("Squeeze", [p], axes=[axis]) if g.needs(i) else None
            for i, p in enumerate(pieces)]


# -- slicing ----------------------------------------------------------------------------------

def _strided_key(begin, end, step, squeeze):
    """The numpy key of a StridedSlice: a slice per listed axis, an int for squeezed ones."""
    key = []
    for i, b in enumerate(begin):
        s = step[i] if step else 1
        if i in squeeze:
            key.append(int(b))
        elif end:
            key.append(slice(b, end[i], s))
        else:  # no end given: run to the end in the step's direction
            key.append(slice(b, SLICE_END if s > 0 else -SLICE_END - 1, s))
    return tuple(key)


def _check_strided_args(x, begin, end, step, squeeze):
    n = len(begin)
    if n > x.ndim:
        raise ShapeError(f"begin {list(begin)} lists {n} axes of a {x.ndim}-d input")
    for name, values in (("end", end), ("step", step)):
        if values and len(values) != n:
            raise ShapeError(f"{name} {list(values)} must be empty or as long as "
                             f"begin {list(begin)}")
    if 0 in step:
        raise ShapeError(f"step {list(step)} has a 0")
    for a in squeeze:
        if not 0 <= a < n:
            raise ShapeError(f"squeeze axis {a} has no begin index (begin {list(begin)})")
        if not -x.shape[a] <= begin[a] < x.shape[a]:
            raise ShapeError(f"index {begin[a]} is out of range for axis {a} of size {x.shape[a]}")


def _strided_shape(x, begin, end, step, squeeze):
    _check_strided_args(x, begin, end, step, squeeze)
    key = _strided_key(begin, end, step, squeeze)
    dims = [len(range(*k.indices(d))) for k, d in zip(key, x.shape) if isinstance(k, slice)]
    return x.with_shape(dims + list(x.shape[len(key):]))


_STRIDED_ARGS = {"begin": [], "end": [], "step": [], "squeeze": []}


@register("StridedSlice", args=_STRIDED_ARGS, recompute=True)
def strided_slice(xp, x, *, out, begin, end, step, squeeze):
    """Y = X[begin[0]:end[0]:step[0], ...] (Python slices); ``squeeze`` axes take X[begin[i]].

    Axes past ``len(begin)`` are taken whole; empty ``end`` or ``step`` mean "to the
    end" and 1. Bounds clamp like Python's: SLICE_END (2**31 - 1) reaches the end,
    and -SLICE_END - 1 as ``end`` with a negative step runs through index 0. For the
    ``squeeze`` axes ``end`` and ``step`` are ignored and the axis is removed.
    """
    xp.copyto(out, x[_strided_key(begin, end, step, squeeze)])


@strided_slice.shape
def _(x, *, begin, end, step, squeeze):
    return _strided_shape(x, begin, end, step, squeeze)


@strided_slice.grad
def _(g):
    return [g.op("StridedSliceGradient", [g.dY(0), g.X(0)], **g.args)]


@register("StridedSliceGradient", args=_STRIDED_ARGS, inputs=2)
def strided_slice_gradient(xp, dy, x, *, out, begin, end, step, squeeze):
    """dX of StridedSlice: zeros of X's shape with dY written where the slice was taken."""
    out.fill(0)
    out[_strided_key(begin, end, step, squeeze)] = dy


@strided_slice_gradient.shape
def _(dy, x, *, begin, end, step, squeeze):
    expected = _strided_shape(x, begin, end, step, squeeze).shape
    if tuple(dy.shape) != expected:
        raise ShapeError(f"dY has shape {tuple(dy.shape)}, the slice has {expected}")
    return x.with_dtype(dy.dtype)


@strided_slice_gradient.grad
def _(g):
    return [g.op("StridedSlice", [g.dY(0)], **g.args), None]


def _crop_offsets(ndim, axis, offset):
    count = ndim - axis
    if len(offset) == 0:
        return [0] * count
    if len(offset) == 1:
        return [int(offset[0])] * count
    if len(offset) != count:
        raise ShapeError(f"offset {list(offset)} needs 1 or {count} values for axes {axis}.."
                         f"{ndim - 1}")
    return [int(o) for o in offset]


def _crop_key(ndim, axis, offset, cropped_shape):
    axis = axis % ndim
    offsets = _crop_offsets(ndim, axis, offset)
    return (slice(None),) * axis + tuple(
        slice(o, o + d) for o, d in zip(offsets, cropped_shape[axis:]))


def _check_crop(x, cropped_shape, axis, offset):
    """Validate cropping X to ``cropped_shape`` from ``axis`` on; returns that axis."""
    at = normalize_axis(axis, x.ndim)
    if len(cropped_shape) != x.ndim:
        raise ShapeError(f"the reference has {len(cropped_shape)} axes, the input {x.ndim}")
    offsets = _crop_offsets(x.ndim, at, offset)
    for i, (o, d) in enumerate(zip(offsets, cropped_shape[at:]), start=at):
        if o < 0 or o + d > x.shape[i]:
            raise ShapeError(f"cropping {d} at offset {o} does not fit axis {i} "
                             f"of size {x.shape[i]}")
    return at


@register("Crop", args={"axis": 2, "offset": []}, inputs=2, recompute=True)
def crop(xp, x, reference, *, out, axis, offset):
    """Y = X cropped to ``reference``'s shape on axes ``axis``.. at ``offset`` (Caffe's Crop).

    ``offset`` holds one offset per cropped axis, one shared by all, or none (zeros).
    """
    xp.copyto(out, x[_crop_key(x.ndim, axis, offset, out.shape)])


@crop.shape
def _(x, reference, *, axis, offset):
    at = _check_crop(x, reference.shape, axis, offset)
    return x.with_shape(x.shape[:at] + tuple(reference.shape[at:]))


@crop.grad
def _(g):
    return [g.op("CropGradient", [g.dY(0), g.X(0)], axis=g.args["axis"], offset=g.args["offset"]),
            None]


@register("CropGradient", args={"axis": 2, "offset": []}, inputs=2)
def crop_gradient(xp, dy, x, *, out, axis, offset):
    """dX of Crop: zeros of X's shape with dY written at the crop's offset."""
    out.fill(0)
    out[_crop_key(x.ndim, axis, offset, dy.shape)] = dy


@crop_gradient.shape
def _(dy, x, *, axis, offset):
    at = _check_crop(x, dy.shape, axis, offset)
    if tuple(dy.shape[:at]) != tuple(x.shape[:at]):
        raise ShapeError(f"dY {tuple(dy.shape)} and X {tuple(x.shape)} differ before axis {at}")
    return x.with_dtype(dy.dtype)


@crop_gradient.grad
def _(g):
    return [g.op("Crop", [g.dY(0), g.X(0)], axis=g.args["axis"], offset=g.args["offset"]), None]


# -- padding ----------------------------------------------------------------------------------

_PAD_MODES = ("constant", "reflect", "edge")


def _reverse_slice(start, count):
    """``count`` positions from ``start`` going down."""
    stop = start - count
    return slice(start, stop if stop >= 0 else None, -1)


def _check_pads(shape, pads, mode):
    """(before, after) pad lists for an unpadded ``shape``, validated."""
    n = len(shape)
    if len(pads) != 2 * n:
        raise ShapeError(f"pads {list(pads)} need 2 x {n} values (all befores, then all afters)")
    if any(p < 0 for p in pads):
        raise ShapeError(f"pads {list(pads)} are negative")
    if mode not in _PAD_MODES:
        raise ShapeError(f"mode {mode!r} is not one of {', '.join(_PAD_MODES)}")
    before, after = list(pads[:n]), list(pads[n:])
    for axis, (b, a, d) in enumerate(zip(before, after, shape)):
        if mode == "reflect" and max(b, a) >= d:
            raise ShapeError(f"reflect pads ({b}, {a}) of axis {axis} must be below its size {d}")
        if mode == "edge" and d == 0 and (b or a):
            raise ShapeError(f"edge padding of the empty axis {axis}")
    return before, after


def _fill_borders(out, axis, before, after, stop, mode):
    """Pad ``out`` along ``axis`` whose data sits in [before, stop): np.pad's edge/reflect."""
    if mode == "edge":
        out[_along(axis, slice(0, before))] = out[_along(axis, slice(before, before + 1))]
        out[_along(axis, slice(stop, stop + after))] = out[_along(axis, slice(stop - 1, stop))]
    else:
        head_source = _reverse_slice(2 * before, before)
        tail_source = _reverse_slice(stop - 2, after)
        out[_along(axis, slice(0, before))] = out[_along(axis, head_source)]
        out[_along(axis, slice(stop, stop + after))] = out[_along(axis, tail_source)]


def _fold_borders(xp, grad, axis, before, after, stop, mode):
    """The adjoint of ``_fill_borders``: add each border's gradient to the data it copied."""
    head = grad[_along(axis, slice(0, before))]
    tail = grad[_along(axis, slice(stop, stop + after))]
    if mode == "edge":
        first = grad[_along(axis, slice(before, before + 1))]
        last = grad[_along(axis, slice(stop - 1, stop))]
        xp.add(first, head.sum(axis=axis, keepdims=True), out=first)
        xp.add(last, tail.sum(axis=axis, keepdims=True), out=last)
    else:
        mirrored_head = grad[_along(axis, _reverse_slice(2 * before, before))]
        mirrored_tail = grad[_along(axis, _reverse_slice(stop - 2, after))]
        xp.add(mirrored_head, head, out=mirrored_head)
        xp.add(mirrored_tail, tail, out=mirrored_tail)


@register("Pad", args={"pads": REQUIRED, "mode": "constant", "value": 0.0}, recompute=True)
def pad(xp, x, *, out, pads, mode, value):
    """Y = X padded by ``pads``: [before_0, ..., before_n-1, after_0, ..., after_n-1] (ONNX's).

    mode: "constant" (fills ``value``), "reflect" (mirrors without repeating the edge)
    or "edge" (repeats the edge), as numpy's pad.
    """
    n = x.ndim
    before = pads[:n]
    center = tuple(slice(b, b + d) for b, d in zip(before, x.shape))
    if mode == "constant":
        out.fill(value)
        out[center] = x
        return
    out[center] = x
    # Axis by axis, each pass reading the axes padded before it, as np.pad does.
    for axis in range(n):
        _fill_borders(out, axis, before[axis], pads[n + axis], before[axis] + x.shape[axis], mode)


@pad.shape
def _(x, *, pads, mode, value):
    before, after = _check_pads(x.shape, pads, mode)
    return x.with_shape([b + d + a for b, d, a in zip(before, x.shape, after)])


@pad.grad
def _(g):
    return [g.op("PadGradient", [g.dY(0)], pads=g.args["pads"], mode=g.args["mode"])]


@register("PadGradient", args={"pads": REQUIRED, "mode": "constant"})
def pad_gradient(xp, dy, *, out, pads, mode, scratch=()):
    """dX of Pad: dY's center, plus (reflect, edge) each border's gradient added to its source."""
    n = dy.ndim
    before, after = pads[:n], pads[n:]
    center = tuple(slice(b, d - a) for b, a, d in zip(before, after, dy.shape))
    if mode == "constant":
        xp.copyto(out, dy[center])
        return
    grad = scratch[0]
    xp.copyto(grad, dy)
    for axis in reversed(range(n)):
        _fold_borders(xp, grad, axis, before[axis], after[axis], dy.shape[axis] - after[axis], mode)
    xp.copyto(out, grad[center])


def _unpadded_shape(dy, pads):
    n = dy.ndim
    if len(pads) != 2 * n:
        raise ShapeError(f"pads {list(pads)} need 2 x {n} values (all befores, then all afters)")
    shape = [d - b - a for d, b, a in zip(dy.shape, pads[:n], pads[n:])]
    if any(d < 0 for d in shape):
        raise ShapeError(f"pads {list(pads)} are larger than dY {tuple(dy.shape)}")
    return shape


@pad_gradient.shape
def _(dy, *, pads, mode):
    shape = _unpadded_shape(dy, pads)
    _check_pads(shape, pads, mode)
    return dy.with_shape(shape)


@pad_gradient.scratch
def _(dy, *, pads, mode):
    return [] if mode == "constant" else [dy]


@pad_gradient.grad
def _(g):
    return [g.op("Pad", [g.dY(0)], pads=g.args["pads"], mode=g.args["mode"], value=0.0)]


# -- tiling -----------------------------------------------------------------------------------

def _tile_layout(shape, multiples):
    """(multiples, X's shape) padded with leading 1s to a common length, as numpy's tile."""
    n = max(len(shape), len(multiples))
    reps = [1] * (n - len(multiples)) + [int(m) for m in multiples]
    dims = [1] * (n - len(shape)) + list(shape)
    return reps, dims


def _interleaved(reps, dims):
    return tuple(v for pair in zip(reps, dims) for v in pair)


@register("Tile", args={"multiples": []}, recompute=True)
def tile(xp, x, *, out, multiples):
    """Y = X repeated ``multiples[i]`` times along axis i (numpy's tile)."""
    reps, dims = _tile_layout(x.shape, multiples)
    # Y viewed as (m0, d0, m1, d1, ...) is X broadcast over every m axis.
    out.reshape(_interleaved(reps, dims))[...] = x.reshape(_interleaved([1] * len(dims), dims))


@tile.shape
def _(x, *, multiples):
    if any(m < 0 for m in multiples):
        raise ShapeError(f"multiples {list(multiples)} are negative")
    reps, dims = _tile_layout(x.shape, multiples)
    return x.with_shape([m * d for m, d in zip(reps, dims)])


@tile.grad
def _(g):
    return [g.op("TileGradient", [g.dY(0), g.X(0)], multiples=g.args["multiples"])]


@register("TileGradient", args={"multiples": []}, inputs=2)
def tile_gradient(xp, dy, x, *, out, multiples):
    """dX of Tile: dY summed over the tiles."""
    reps, dims = _tile_layout(x.shape, multiples)
    tile_axes = tuple(range(0, 2 * len(dims), 2))
    xp.sum(dy.reshape(_interleaved(reps, dims)), axis=tile_axes, out=out.reshape(dims))


@tile_gradient.shape
def _(dy, x, *, multiples):
    expected = tile.shape_fn(x, multiples=multiples).shape
    if tuple(dy.shape) != expected:
        raise ShapeError(f"dY has shape {tuple(dy.shape)}, the tiled input has {expected}")
    return x.with_dtype(dy.dtype)


@tile_gradient.grad
def _(g):
    return [g.op("Tile", [g.dY(0)], multiples=g.args["multiples"]), None]


# -- gathering --------------------------------------------------------------------------------

def _scatter_add(xp, target, key, values):
    """target[key] += values, adding repeated indices up (unbuffered)."""
    if xp is np:
        np.add.at(target, key, values)
    else:
        import cupyx
        cupyx.scatter_add(target, key, values)


def _gather_shape(x, indices, axis):
    at = normalize_axis(axis, x.ndim)
    _check_index_dtype(indices)
    return x.with_shape(x.shape[:at] + tuple(indices.shape) + x.shape[at + 1:])


@register("Gather", args={"axis": 0}, inputs=2, recompute=True)
def gather(xp, x, indices, *, out, axis):
    """Y = take(X, indices, axis): X at ``indices`` along ``axis`` (negatives from the end)."""
    xp.take(x, _as_index(xp, indices), axis=axis % x.ndim, out=out)


@gather.shape
def _(x, indices, *, axis):
    return _gather_shape(x, indices, axis)


@gather.grad
def _(g):
    return [g.op("GatherGradient", [g.dY(0), g.X(1), g.X(0)], axis=g.args["axis"]), None]


@register("GatherGradient", args={"axis": 0}, inputs=3)
def gather_gradient(xp, dy, indices, x, *, out, axis):
    """dX of Gather: zeros of X's shape with dY added at ``indices`` (repeats add up)."""
    out.fill(0)
    _scatter_add(xp, out, _along(axis % x.ndim, _as_index(xp, indices)), dy)


@gather_gradient.shape
def _(dy, indices, x, *, axis):
    expected = _gather_shape(x, indices, axis).shape
    if tuple(dy.shape) != expected:
        raise ShapeError(f"dY has shape {tuple(dy.shape)}, the gather makes {expected}")
    return x.with_dtype(dy.dtype)


@gather_gradient.grad
def _(g):
    return [g.op("Gather", [g.dY(0), g.X(1)], axis=g.args["axis"]), None, None]


@register("OneHot", args={"depth": REQUIRED, "on_value": 1.0, "off_value": 0.0}, recompute=True)
def one_hot(xp, indices, *, out, depth, on_value, off_value):
    """Y[..., k] = on_value where indices[...] == k, else off_value (float32, indices < depth)."""
    out.fill(off_value)
    rows = out.reshape(-1, depth)
    rows[xp.arange(rows.shape[0]), _as_index(xp, indices).reshape(-1)] = on_value


@one_hot.shape
def _(indices, *, depth, on_value, off_value):
    _check_index_dtype(indices)
    if depth < 1:
        raise ShapeError(f"depth must be positive, got {depth}")
    return Spec(tuple(indices.shape) + (int(depth),), np.dtype(np.float32))


one_hot.grad(lambda g: [None])


# -- arg reductions ---------------------------------------------------------------------------

@register("ArgMax", args={"axis": -1, "keepdims": False, "top_k": 1})
def arg_max(xp, x, *, out, axis, keepdims, top_k):
    """Y = index of the largest X along ``axis`` (int64); top_k > 1: top_k indices, largest first.

    With top_k > 1 the axis keeps its place with size top_k (Caffe's ArgMax); ties
    go to the lower index.
    """
    axis = axis % x.ndim
    if top_k == 1:
        xp.argmax(x, axis=axis, out=out, keepdims=bool(keepdims))
        return
    order = xp.argsort(xp.negative(x), axis=axis, kind="stable")
    xp.copyto(out, order[_along(axis, slice(0, top_k))])


@arg_max.shape
def _(x, *, axis, keepdims, top_k):
    at = normalize_axis(axis, x.ndim)
    if not 1 <= top_k <= x.shape[at]:
        raise ShapeError(f"top_k {top_k} is outside 1..{x.shape[at]} (axis {at})")
    if top_k > 1:
        return Spec(x.shape[:at] + (int(top_k),) + x.shape[at + 1:], np.dtype(np.int64))
    return _arg_reduced(x, at, keepdims)


def _arg_reduced(x, at, keepdims):
    if x.shape[at] == 0:
        raise ShapeError(f"axis {at} is empty")
    kept = (1,) if keepdims else ()
    return Spec(x.shape[:at] + kept + x.shape[at + 1:], np.dtype(np.int64))


@register("ArgMin", args={"axis": -1, "keepdims": False})
def arg_min(xp, x, *, out, axis, keepdims):
    """Y = index of the smallest X along ``axis`` (int64; ties go to the lower index)."""
    xp.argmin(x, axis=axis % x.ndim, out=out, keepdims=bool(keepdims))


@arg_min.shape
def _(x, *, axis, keepdims):
    return _arg_reduced(x, normalize_axis(axis, x.ndim), keepdims)


for _op in (arg_max, arg_min):
    _op.grad(lambda g: [None])


# -- dtypes -----------------------------------------------------------------------------------

@register("Cast", args={"dtype": "float32"}, recompute=True, alias=0)
def cast(xp, x, *, out, dtype):
    """Y = X converted to ``dtype`` (numpy's astype: floats truncate toward 0 into ints)."""
    xp.copyto(out, x, casting="unsafe")


@cast.shape
def _(x, *, dtype):
    return x.with_dtype(_dtype(dtype))


@cast.grad
def _(g):
    x = g.X(0)
    if (x.dtype is not None and x.dtype.kind != "f") or np.dtype(g.args["dtype"]).kind != "f":
        return [None]
    return [g.op("CastLike", [g.dY(0), x])]


@register("CastLike", inputs=2, recompute=True, alias=0)
def cast_like(xp, x, like, *, out):
    """Y = X converted to the dtype of ``like``."""
    xp.copyto(out, x, casting="unsafe")


@cast_like.shape
def _(x, like):
    return x.with_dtype(like.dtype)


@cast_like.grad
def _(g):
    return [g.op("CastLike", [g.dY(0), g.X(0)]), None]


# -- made from arguments alone ----------------------------------------------------------------

@register("Arange", args={"start": REQUIRED, "stop": REQUIRED, "step": 1, "dtype": "int64"},
          inputs=0, recompute=True)
def arange(xp, *, out, start, stop, step, dtype):
    """Y = start, start + step, ... up to (excluding) stop, as numpy's arange."""
    out[...] = xp.arange(start, stop, step, dtype=out.dtype)


@arange.shape
def _(*, start, stop, step, dtype):
    if step == 0:
        raise ShapeError("step must not be 0")
    # numpy's own length formula, so the kernel's arange fills the buffer exactly.
    count = max(0, math.ceil((stop - start) / step))
    return Spec((count,), _dtype(dtype))


@register("Fill", args={"shape": REQUIRED, "value": 0.0, "dtype": "float32"},
          inputs=0, recompute=True)
def fill(xp, *, out, shape, value, dtype):
    """Y = ``value`` everywhere, with shape ``shape`` and dtype ``dtype``."""
    out.fill(value)


@fill.shape
def _(*, shape, value, dtype):
    if any(d < 0 for d in shape):
        raise ShapeError(f"shape {list(shape)} has a negative dimension")
    return Spec(tuple(int(d) for d in shape), _dtype(dtype))


@register("Where", inputs=3, recompute=True)
def where(xp, cond, a, b, *, out):
    """Y = A where cond is true (nonzero), B elsewhere (broadcasting)."""
    xp.copyto(out, b, casting="unsafe")
    xp.copyto(out, a, casting="unsafe", where=cond if cond.dtype == bool else cond.astype(bool))


@where.shape
def _(cond, a, b):
    return Spec(broadcast_shapes(cond.shape, a.shape, b.shape), result_dtype(a, b))


@where.grad
def _(g):
    cond, dy = g.X(0), g.dY(0)
    da = _unbroadcast(g, g.op("Where", [cond, dy, 0.0]), g.X(1)) if g.needs(1) else None
    db = _unbroadcast(g, g.op("Where", [cond, 0.0, dy]), g.X(2)) if g.needs(2) else None
    return [None, da, db]
