"""``Tensor.__getitem__``: numpy indexing lowered to array ops.

    x[1:3, ::2]     # StridedSlice
    x[..., 0]       # StridedSlice removing the last axis
    x[:, None]      # ExpandDims
    x[idx]          # Gather (idx: an integer Tensor, numpy array or list)

Ints, slices, ``...`` and ``None`` follow numpy's basic indexing; one integer
array may index one axis, as numpy's advanced indexing does. Anything else
(boolean masks, several arrays, tensors inside slices) raises NotImplementedError.
"""
from __future__ import annotations

import numpy as np

from dragon.core.tensor import Tensor, apply
from dragon.ops.array import SLICE_END


def getitem(tensor: Tensor, key):
    """``tensor[key]`` as StridedSlice, Gather and ExpandDims ops.

    >>> x[1:3, ::2], x[..., 0], x[:, None], x[np.array([2, 0])]
    """
    entries = [_classify(e, key) for e in (key if isinstance(key, tuple) else (key,))]
    entries = _expand_ellipsis(entries, tensor.ndim, key)
    _check_array_placement(entries, key)

    begin, end, step, squeeze = [], [], [], []
    new_axes = []          # positions of None entries in the result
    gather = None          # (axis in the sliced tensor, indices)
    sliced_pos = out_pos = 0
    for kind, value in entries:
        if kind == "new":
            new_axes.append(out_pos)
            out_pos += 1
        elif kind == "int":
            squeeze.append(len(begin))
            begin.append(value)
            end.append(SLICE_END)
            step.append(1)
        else:
            if kind == "slice":
                b, e, s = _slice_bounds(value)
            else:
                b, e, s = 0, SLICE_END, 1
                gather = (sliced_pos, value)
            begin.append(b)
            end.append(e)
            step.append(s)
            sliced_pos += 1
            out_pos += _index_ndim(value) if kind == "array" else 1

    if tensor.ndim is not None and len(begin) > tensor.ndim:
        raise IndexError(f"too many indices in {key!r} for a {tensor.ndim}-d tensor "
                         f"'{tensor.name}'")
    result = tensor
    if not _is_whole(begin, end, step, squeeze):
        result = apply("StridedSlice", [result], begin=begin, end=end, step=step, squeeze=squeeze)
    if gather is not None:
        result = apply("Gather", [result, gather[1]], axis=gather[0])
    for axis in new_axes:
        result = apply("ExpandDims", [result], axis=axis)
    return result


def _classify(entry, key):
    """(kind, value) of one entry of an index key: int, slice, new, ellipsis or array."""
    if entry is Ellipsis:
        return "ellipsis", None
    if entry is None:
        return "new", None
    if isinstance(entry, (bool, np.bool_)):
        raise NotImplementedError(f"indexing with the boolean {entry!r} (in key {key!r})")
    if isinstance(entry, (int, np.integer)):
        return "int", int(entry)
    if isinstance(entry, slice):
        if not all(v is None or isinstance(v, (int, np.integer))
                   for v in (entry.start, entry.stop, entry.step)):
            raise NotImplementedError(f"slice {entry!r} (in key {key!r}) has bounds that are not "
                                      f"Python ints")
        if entry.step == 0:
            raise ValueError(f"slice {entry!r} (in key {key!r}) has step 0")
        return "slice", entry
    if isinstance(entry, Tensor):
        if entry.dtype is not None and entry.dtype.kind not in "iu":
            raise NotImplementedError(f"indexing with tensor '{entry.name}' of dtype {entry.dtype} "
                                      f"(in key {key!r}); only integer tensors index")
        return "array", entry
    if isinstance(entry, (np.ndarray, list)):
        array = np.asarray(entry)
        if array.dtype.kind in "iu" or (array.size == 0 and array.dtype.kind == "f"):
            if array.ndim == 0:
                return "int", int(array)
            return "array", array.astype(np.int64)
    raise NotImplementedError(f"indexing with {entry!r} (in key {key!r}); use ints, slices, ..., "
                              f"None or one integer array")


def _expand_ellipsis(entries, ndim, key):
    """``entries`` with ``...`` replaced by whole slices of the axes it stands for."""
    where = [i for i, (kind, _) in enumerate(entries) if kind == "ellipsis"]
    if not where:
        return entries
    if len(where) > 1:
        raise IndexError(f"key {key!r} has more than one ellipsis")
    at = where[0]
    before, after = entries[:at], entries[at + 1:]
    if not after:
        return before
    if ndim is None:
        raise NotImplementedError(f"key {key!r} indexes after '...' a tensor of unknown rank")
    consumed = sum(1 for kind, _ in before + after if kind not in ("new",))
    if consumed > ndim:
        raise IndexError(f"too many indices in {key!r} for a {ndim}-d tensor")
    return before + [("slice", slice(None))] * (ndim - consumed) + after


def _check_array_placement(entries, key):
    """One array at most, and, with ints, next to them (numpy would move its axes first)."""
    arrays = [i for i, (kind, _) in enumerate(entries) if kind == "array"]
    if len(arrays) > 1:
        raise NotImplementedError(f"key {key!r} has several index arrays; use one")
    if not arrays:
        return
    advanced = [i for i, (kind, _) in enumerate(entries) if kind in ("array", "int")]
    if advanced[-1] - advanced[0] + 1 != len(advanced):
        raise NotImplementedError(f"key {key!r} separates its index array from an int index; numpy "
                                  f"would move the array's axes to the front")


def _slice_bounds(s):
    """(begin, end, step) of a Python slice, with StridedSlice's sentinels for the Nones."""
    step = 1 if s.step is None else int(s.step)
    if s.start is not None:
        begin = int(s.start)
    else:
        begin = 0 if step > 0 else SLICE_END
    if s.stop is not None:
        end = int(s.stop)
    else:
        end = SLICE_END if step > 0 else -SLICE_END - 1
    return begin, end, step


def _index_ndim(indices):
    ndim = indices.ndim
    return 1 if ndim is None else ndim


def _is_whole(begin, end, step, squeeze):
    """Whether the slice takes every element of every axis (no op needed)."""
    return not squeeze and all(b == 0 and e == SLICE_END and s == 1
                               for b, e, s in zip(begin, end, step))
