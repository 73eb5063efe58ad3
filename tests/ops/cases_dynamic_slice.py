"""Cases for dragon/ops/dynamic_slice.py: references slice with Python's own slices."""
import numpy as np

from tests.ops.opcase import Case, rand


def _take(x, start, *stop, axis, size):
    n = x.shape[axis]
    if stop:
        begin, end, _ = slice(int(start), int(stop[0])).indices(n)
    else:
        begin = int(start) % n
        end = begin + size
    index = [slice(None)] * x.ndim
    index[axis] = slice(begin, end)
    return x[tuple(index)]


def _put(x, start, dy, *stop, axis, size):
    out = np.zeros(x.shape, dtype=np.result_type(dy))
    n = x.shape[axis]
    begin = int(start) % n if not stop else slice(int(start), int(stop[0])).indices(n)[0]
    index = [slice(None)] * x.ndim
    index[axis] = slice(begin, begin + size)
    out[tuple(index)] = dy
    return out


def _i(v):
    return np.asarray(v, dtype=np.int64)


CASES = [
    Case("DynamicSlice", [rand(6, 3), _i(2)], args={"axis": 0, "size": 3}, reference=_take),
    Case("DynamicSlice", [rand(2, 5), _i(-2)], args={"axis": 1, "size": 1}, reference=_take,
         name="negative_start"),
    Case("DynamicSlice", [rand(8, 2), _i(4), _i(6)], args={"axis": 0, "size": 2},
         reference=_take, name="with_stop"),
    Case("DynamicSliceGradient", [rand(5, 3), _i(1), rand(2, 3, seed=1)],
         args={"axis": 0, "size": 2}, reference=_put, grad=(2,)),
    Case("DynamicSliceGradient", [rand(3, 6), _i(0), rand(3, 4, seed=2), _i(4)],
         args={"axis": 1, "size": 4}, reference=_put, grad=(2,), name="with_stop"),
]
