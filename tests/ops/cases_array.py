"""Cases for dragon/ops/array.py.

References index element by element (np.ndindex loops, index lists from
``range``) or use a numpy routine the kernel does not (np.pad, np.tile), so
they do not share the kernels' formulation.
"""
import numpy as np

from dragon.ops.array import SLICE_END
from tests.ops.opcase import Case, rand


def _naive_transpose(x, perm=()):
    perm = list(perm) or list(range(x.ndim))[::-1]
    y = np.empty([x.shape[p] for p in perm])
    for index in np.ndindex(*y.shape):
        source = [0] * x.ndim
        for out_axis, in_axis in enumerate(perm):
            source[in_axis] = index[out_axis]
        y[index] = x[tuple(source)]
    return y


def _take_positions(x, axis, positions):
    """x restricted to ``positions`` along ``axis`` (a list of ints), one by one."""
    moved = np.moveaxis(x, axis, 0)
    picked = np.array([moved[p] for p in positions]).reshape((len(positions),) + moved.shape[1:])
    return np.moveaxis(picked, 0, axis)


def _naive_concat(*xs, axis=1):
    axis %= xs[0].ndim
    rows = [np.moveaxis(x, axis, 0)[i] for x in xs for i in range(x.shape[axis])]
    return np.moveaxis(np.array(rows), 0, axis)


def _naive_split(x, axis=1, sizes=(), num=0):
    axis %= x.ndim
    sizes = list(sizes) or [x.shape[axis] // num] * num
    if -1 in sizes:
        sizes[sizes.index(-1)] = x.shape[axis] - (sum(sizes) + 1)
    starts = np.cumsum([0] + sizes)
    return tuple(_take_positions(x, axis, list(range(a, a + n))) for a, n in zip(starts, sizes))


def _concat_gradient(dy, *xs, axis=1, need=()):
    pieces = _naive_split(dy, axis=axis, sizes=[x.shape[axis] for x in xs])
    return tuple(p for p, n in zip(pieces, need) if n)


def _naive_stack(*xs, axis=0):
    axis %= xs[0].ndim + 1
    y = np.empty(xs[0].shape[:axis] + (len(xs),) + xs[0].shape[axis:])
    for index in np.ndindex(*y.shape):
        rest = index[:axis] + index[axis + 1:]
        y[index] = xs[index[axis]][rest]
    return y


def _naive_strided(x, begin=(), end=(), step=(), squeeze=()):
    for axis in reversed(range(len(begin))):
        if axis in squeeze:
            x = np.moveaxis(x, axis, 0)[begin[axis]]
            continue
        s = step[axis] if step else 1
        e = end[axis] if end else (SLICE_END if s > 0 else -SLICE_END - 1)
        x = _take_positions(x, axis, list(range(*slice(begin[axis], e, s).indices(x.shape[axis]))))
    return x


def _strided_gradient(dy, x, **args):
    """dX by linearity: each element of X's slice gets the dY element it became."""
    positions = np.arange(x.size).reshape(x.shape)
    taken = _naive_strided(positions, **args)
    dx = np.zeros(x.size)
    for p, v in zip(taken.ravel(), dy.ravel()):
        dx[p] += v
    return dx.reshape(x.shape)


def _naive_crop(x, reference, axis=2, offset=()):
    axis %= x.ndim
    offsets = list(offset) if len(offset) > 1 else [offset[0] if offset else 0] * (x.ndim - axis)
    for i in range(axis, x.ndim):
        o = offsets[i - axis]
        x = _take_positions(x, i, list(range(o, o + reference.shape[i])))
    return x


def _crop_gradient(dy, x, axis=2, offset=()):
    positions = np.arange(x.size).reshape(x.shape)
    taken = _naive_crop(positions, dy, axis=axis, offset=offset)
    dx = np.zeros(x.size)
    dx[taken.ravel()] = dy.ravel()
    return dx.reshape(x.shape)


def _np_pad(x, pads, mode="constant", value=0.0):
    n = x.ndim
    widths = list(zip(pads[:n], pads[n:]))
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=value)
    return np.pad(x, widths, mode=mode)


def _pad_gradient(dy, pads, mode="constant"):
    """dX of np.pad by padding X's element positions and summing dY at each one."""
    n = dy.ndim
    shape = [d - b - a for d, b, a in zip(dy.shape, pads[:n], pads[n:])]
    positions = np.arange(int(np.prod(shape))).reshape(shape)
    padded = _np_pad(positions, pads, mode, value=-1)
    dx = np.zeros(positions.size)
    for p, v in zip(padded.ravel(), dy.ravel()):
        if p >= 0:
            dx[p] += v
    return dx.reshape(shape)


def _np_tile(x, multiples):
    return np.tile(x, multiples)


def _tile_gradient(dy, x, multiples=()):
    positions = np.tile(np.arange(x.size).reshape(x.shape), multiples)
    dx = np.zeros(x.size)
    for p, v in zip(positions.ravel(), dy.ravel()):
        dx[p] += v
    return dx.reshape(x.shape)


def _naive_gather(x, indices, axis=0):
    axis %= x.ndim
    flat = [int(i) for i in np.ravel(indices)]
    taken = _take_positions(x, axis, flat)
    return taken.reshape(x.shape[:axis] + np.shape(indices) + x.shape[axis + 1:])


def _gather_gradient(dy, indices, x, axis=0):
    positions = np.arange(x.size).reshape(x.shape)
    taken = _naive_gather(positions, indices, axis=axis)
    dx = np.zeros(x.size)
    for p, v in zip(taken.ravel(), dy.ravel()):
        dx[p] += v
    return dx.reshape(x.shape)


def _naive_one_hot(indices, depth, on_value=1.0, off_value=0.0):
    y = np.full(np.shape(indices) + (depth,), off_value)
    for index in np.ndindex(*np.shape(indices)):
        y[index + (int(indices[index]),)] = on_value
    return y


def _naive_arg(x, axis=-1, keepdims=False, top_k=1, largest=True):
    """Indices of the top_k largest (or smallest) along ``axis``, ties to the lower index."""
    axis %= x.ndim
    moved = np.moveaxis(x, axis, -1)
    y = np.empty(moved.shape[:-1] + (top_k,), dtype=np.int64)
    for index in np.ndindex(*moved.shape[:-1]):
        row = list(moved[index])
        sign = -1 if largest else 1
        y[index] = sorted(range(len(row)), key=lambda i: (sign * row[i], i))[:top_k]
    y = np.moveaxis(y, -1, axis)
    return y if keepdims or top_k > 1 else y.squeeze(axis)


def _naive_where(cond, a, b):
    shape = np.broadcast_shapes(cond.shape, a.shape, b.shape)
    cond, a, b = (np.broadcast_to(v, shape) for v in (cond, a, b))
    y = np.empty(shape)
    for index in np.ndindex(*shape):
        y[index] = a[index] if cond[index] else b[index]
    return y


_INDICES = np.array([[0, 2], [3, 0]], dtype=np.int64)

CASES = [
    # reshaping
    Case("Reshape", [rand(2, 3, 4)], args={"shape": [0, -1, 2]},
         reference=lambda x, shape: x.reshape(2, 6, 2)),
    Case("Reshape", [rand(2, 3, 4)], args={"shape": [-1, 4]},
         reference=lambda x, shape: x.reshape(6, 4), name="infer_first"),
    Case("ReshapeLike", [rand(6, 2), rand(3, 4, seed=1)],
         reference=lambda x, like: x.reshape(like.shape), grad=(0,)),
    Case("Flatten", [rand(2, 3, 2, 2)], args={"axis": 1, "end_axis": 2},
         reference=lambda x, axis, end_axis: x.reshape(2, 6, 2)),
    Case("Flatten", [rand(2, 3, 2)], reference=lambda x: x.reshape(2, 6), name="default"),
    Case("ExpandDims", [rand(2, 3)], args={"axis": -1},
         reference=lambda x, axis: x.reshape(2, 3, 1)),
    Case("ExpandDims", [rand(2, 3)], args={"axis": 1},
         reference=lambda x, axis: x.reshape(2, 1, 3), name="middle"),
    Case("Squeeze", [rand(2, 1, 3, 1)], reference=lambda x: x.reshape(2, 3)),
    Case("Squeeze", [rand(2, 1, 3, 1)], args={"axes": [-1]},
         reference=lambda x, axes: x.reshape(2, 1, 3), name="one_axis"),
    # transposing
    Case("Transpose", [rand(2, 3, 4)], args={"perm": [1, 2, 0]}, reference=_naive_transpose),
    Case("Transpose", [rand(2, 3, 4)], reference=_naive_transpose, name="reverse"),
    # joining and splitting
    Case("Concat", [rand(2, 1, 3), rand(2, 2, 3, seed=1), rand(2, 3, 3, seed=2)],
         reference=_naive_concat),
    Case("Concat", [rand(2, 2), rand(2, 3, seed=1)], args={"axis": -1},
         reference=_naive_concat, name="last_axis"),
    Case("ConcatGradient", [rand(2, 5), rand(2, 2, seed=1), rand(2, 3, seed=2)],
         args={"need": [1, 1]}, reference=_concat_gradient, grad=(0,)),
    Case("ConcatGradient", [rand(2, 5), rand(2, 2, seed=1), rand(2, 3, seed=2)],
         args={"need": [0, 1]}, reference=_concat_gradient, grad=(0,), name="partial"),
    Case("Split", [rand(2, 6, 2)], args={"sizes": [1, -1, 2]}, reference=_naive_split),
    Case("Split", [rand(6, 2)], args={"axis": 0, "num": 3}, reference=_naive_split, name="num"),
    Case("Split", [rand(4, 2)], args={"axis": 0, "num": 2}, reference=_naive_split,
         grad_outputs=(1,), name="one_output_used"),
    Case("Stack", [rand(2, 3), rand(2, 3, seed=1), rand(2, 3, seed=2)], args={"axis": 1},
         reference=_naive_stack),
    Case("Stack", [rand(2, 3), rand(2, 3, seed=1)], args={"axis": -1},
         reference=_naive_stack, name="last_axis"),
    # slicing
    Case("StridedSlice", [rand(4, 5, 2)], args={"begin": [1, 0], "end": [3, SLICE_END],
                                               "step": [1, 2]},
         reference=_naive_strided),
    Case("StridedSlice", [rand(4, 5)], args={"begin": [SLICE_END, 3],
                                            "end": [-SLICE_END - 1, 0], "step": [-1, -2]},
         reference=_naive_strided, name="negative_steps"),
    Case("StridedSlice", [rand(3, 4, 2)], args={"begin": [1, -1], "squeeze": [0, 1]},
         reference=_naive_strided, name="squeeze"),
    Case("StridedSlice", [rand(3, 4)], args={"begin": [-2, 10], "end": [100, 20]},
         reference=_naive_strided, grad=(0,), name="clamped_empty"),
    Case("StridedSliceGradient", [rand(2, 2), rand(4, 5, seed=1)],
         args={"begin": [1, 0], "end": [3, SLICE_END], "step": [1, 3]},
         reference=_strided_gradient, grad=(0,)),
    Case("Crop", [rand(2, 2, 5, 6), rand(2, 2, 3, 4, seed=1)], args={"offset": [1, 2]},
         reference=_naive_crop, grad=(0,)),
    Case("Crop", [rand(2, 3, 4), rand(2, 1, 2, seed=1)], args={"axis": 1, "offset": [1]},
         reference=_naive_crop, grad=(0,), name="shared_offset"),
    Case("Crop", [rand(2, 3, 4), rand(1, 2, 2, seed=1)], args={"axis": 0},
         reference=_naive_crop, grad=(0,), name="no_offset"),
    Case("CropGradient", [rand(2, 2, 3), rand(2, 4, 5, seed=1)], args={"axis": 1, "offset": [1, 2]},
         reference=_crop_gradient, grad=(0,)),
    # padding
    Case("Pad", [rand(2, 3)], args={"pads": [1, 0, 2, 1], "value": 0.5}, reference=_np_pad),
    Case("Pad", [rand(3, 4)], args={"pads": [2, 1, 1, 3], "mode": "reflect"},
         reference=_np_pad, name="reflect"),
    Case("Pad", [rand(2, 3, 4)], args={"pads": [1, 0, 2, 0, 2, 3], "mode": "reflect"},
         reference=_np_pad, name="reflect_3d"),
    Case("Pad", [rand(3, 2)], args={"pads": [1, 2, 3, 0], "mode": "edge"},
         reference=_np_pad, name="edge"),
    Case("PadGradient", [rand(5, 6)], args={"pads": [1, 0, 2, 1]}, reference=_pad_gradient),
    Case("PadGradient", [rand(6, 8)], args={"pads": [2, 1, 1, 3], "mode": "reflect"},
         reference=_pad_gradient, name="reflect"),
    Case("PadGradient", [rand(6, 5)], args={"pads": [1, 2, 3, 0], "mode": "edge"},
         reference=_pad_gradient, name="edge"),
    # tiling
    Case("Tile", [rand(2, 3)], args={"multiples": [2, 3]}, reference=_np_tile),
    Case("Tile", [rand(2, 3)], args={"multiples": [2, 1, 2]}, reference=_np_tile, name="new_axis"),
    Case("TileGradient", [rand(4, 9), rand(2, 3, seed=1)], args={"multiples": [2, 3]},
         reference=_tile_gradient, grad=(0,)),
    # gathering
    Case("Gather", [rand(4, 3), _INDICES], reference=_naive_gather),
    Case("Gather", [rand(2, 3, 2), np.array([2, -1, 0], dtype=np.int32)], args={"axis": 1},
         reference=_naive_gather, name="axis1_negative_index"),
    Case("Gather", [rand(4, 2), np.array([3.0, 1.0])], reference=_naive_gather, grad=(0,),
         name="float_indices"),
    Case("GatherGradient", [rand(2, 2, 3), _INDICES, rand(4, 3, seed=1)],
         reference=_gather_gradient, grad=(0,)),
    Case("OneHot", [np.array([[0, 2], [1, 3]])], args={"depth": 4, "on_value": 2.0,
                                                      "off_value": -1.0},
         reference=_naive_one_hot, grad=()),
    Case("OneHot", [np.array([1.0, 0.0, 2.0])], args={"depth": 3}, reference=_naive_one_hot,
         grad=(), name="float_labels"),
    # arg reductions
    Case("ArgMax", [rand(3, 5)], reference=_naive_arg, grad=()),
    Case("ArgMax", [rand(4, 3)], args={"axis": 0, "keepdims": True}, reference=_naive_arg,
         grad=(), name="keepdims"),
    Case("ArgMax", [np.array([[1.0, 3.0, 3.0, 0.0], [2.0, -1.0, 5.0, 4.0]])],
         args={"axis": 1, "top_k": 3}, reference=_naive_arg, grad=(), name="top_k_ties"),
    Case("ArgMin", [rand(3, 4)], args={"axis": 0},
         reference=lambda x, axis: _naive_arg(x, axis, largest=False), grad=()),
    # dtypes
    Case("Cast", [rand(2, 3, low=-9, high=9)], args={"dtype": "int32"},
         reference=lambda x, dtype: np.trunc(x).astype(np.int32), grad=()),
    Case("Cast", [rand(2, 3)], args={"dtype": "float64"},
         reference=lambda x, dtype: x, float32=False, name="float64"),
    Case("Cast", [np.array([[1, -2], [3, 4]], dtype=np.int64)], args={"dtype": "float32"},
         reference=lambda x, dtype: x.astype(np.float64), name="int_to_float"),
    Case("CastLike", [rand(2, 3), rand(1, seed=1)], reference=lambda x, like: x, grad=(0,)),
    # made from arguments
    Case("Arange", [], args={"start": 2, "stop": 11, "step": 3},
         reference=lambda **a: np.array([2, 5, 8])),
    Case("Arange", [], args={"start": 1.0, "stop": -0.5, "step": -0.5, "dtype": "float64"},
         reference=lambda **a: np.array([1.0, 0.5, 0.0]), float32=False, name="float_down"),
    Case("Fill", [], args={"shape": [2, 3], "value": 1.5},
         reference=lambda **a: np.full((2, 3), 1.5)),
    Case("Where", [np.array([[True, False, True], [False, False, True]]), rand(2, 3),
                   rand(3, seed=1)], reference=_naive_where),
    Case("Where", [np.array([[0.0, 2.0, 0.0]]), rand(2, 3), rand(2, 1, seed=1)],
         reference=_naive_where, grad=(1, 2), name="float_condition"),
]
