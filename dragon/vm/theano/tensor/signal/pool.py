"""``theano.tensor.signal.pool``: pooling over the last two axes.

    from dragon.vm.theano.tensor.signal import pool
    out = pool.pool_2d(conv_out, ws=(2, 2), ignore_border=True)            # Theano 1.0 names
    out = pool.pool_2d(conv_out, ds=(2, 2), ignore_border=True)            # the old names
    out = pool.pool_2d(x, ws=(3, 3), stride=(2, 2), pad=(1, 1), mode="average_exc_pad",
                       ignore_border=True)

Window rules are Theano's. ignore_border=True keeps whole windows only (of the image
padded by ``pad``); ignore_border=False (no padding allowed) adds a last, partial window
where the stride leaves cells over. 'max' and 'sum' never count the padding;
'average_inc_pad' divides by the window size including padding (by the cells the window
covers when it hangs over the border), 'average_exc_pad' by the image cells it covers.
The work is the core's Pool2d (floor or ceil sizes, with or without padding counted);
'sum' multiplies the exclusive average by each window's count of image cells.
"""
from __future__ import annotations

import warnings

import numpy as np

from dragon.core.tensor import apply as core_apply
from dragon.core.tensor import constant as core_constant
from dragon.vm.theano.tensor.type import TensorType
from dragon.vm.theano.tensor.var import as_tensor_variable, lowered

MODES = ("max", "sum", "average_inc_pad", "average_exc_pad")


def _pair(value, name, minimum):
    values = tuple(value) if isinstance(value, (tuple, list, np.ndarray)) else (value, value)
    if len(values) != 2 or any(int(v) != v or v < minimum for v in values):
        raise ValueError(f"pool_2d: {name} must be a pair of ints >= {minimum}, got {value!r}")
    return tuple(int(v) for v in values)


def out_size(size, ws, stride, pad, ignore_border):
    """Theano's number of windows along one axis of ``size`` cells."""
    padded = size + 2 * pad
    if ignore_border:
        return max(0, (padded - ws) // stride + 1)
    if stride >= ws:
        return (padded - 1) // stride + 1
    return max(0, (padded - 1 - ws) // stride + 1) + 1


def window_counts(size, ws, stride, pad, ignore_border, include_pad):
    """Cells each window covers along one axis (image cells only unless ``include_pad``)."""
    padded = size + 2 * pad
    counts = []
    for k in range(out_size(size, ws, stride, pad, ignore_border)):
        start, end = k * stride, min(k * stride + ws, padded)
        if not include_pad:
            start, end = max(start, pad), min(end, size + pad)
        counts.append(max(0, end - start))
    return np.asarray(counts)


def _old_name(new, old, new_name, old_name):
    if old is None:
        return new
    if new is not None:
        raise ValueError(f"You can't provide a tuple value to both '{new_name}' and "
                         f"'{old_name}'.")
    warnings.warn(f"DEPRECATION: the '{old_name}' parameter is not going to exist anymore as it "
                  f"is going to be replaced by the parameter '{new_name}'.", stacklevel=3)
    return old


def _lower_pool(ctx, node, x, *, ws, stride, pad, ignore_border, mode):
    shape = tuple(x.shape)
    rows, cols = shape[-2:]
    out = [out_size(rows, ws[0], stride[0], pad[0], ignore_border),
           out_size(cols, ws[1], stride[1], pad[1], ignore_border)]
    if min(out) < 1:
        raise ValueError(f"pool_2d: windows of {ws} (stride {stride}, pad {pad}) do not fit "
                         f"the image of '{node.inputs[0]}' (shape {shape}) with "
                         f"ignore_border={ignore_border}")
    lead = int(np.prod(shape[:-2], dtype=np.int64))
    images = x if x.ndim == 4 else core_apply("Reshape", [x], shape=[lead, 1, rows, cols])
    core_mode = "MAX" if mode == "max" else "AVG"
    include_pad = mode == "average_inc_pad"
    pooled = core_apply("Pool2d", [images], kernel_shape=list(ws), strides=list(stride),
                        pads=list(pad), mode=core_mode, ceil_mode=not ignore_border,
                        count_include_pad=include_pad)[0]
    got = tuple(pooled.shape[-2:])
    if got != tuple(out):
        raise AssertionError(f"the core's Pool2d made {got} windows where Theano makes "
                             f"{tuple(out)} (input {shape}, ws {ws}, stride {stride}, pad {pad})")
    if mode == "sum":
        counts = np.outer(window_counts(rows, ws[0], stride[0], pad[0], ignore_border, False),
                          window_counts(cols, ws[1], stride[1], pad[1], ignore_border, False))
        pooled = core_apply("Mul", [pooled, core_constant(counts.astype(pooled.dtype))])
    if x.ndim != 4:
        pooled = core_apply("Reshape", [pooled], shape=list(shape[:-2]) + out)
    return pooled


def pool_2d(input, ws=None, ignore_border=None, stride=None, pad=(0, 0),  # noqa: A002
            mode="max", ds=None, st=None, padding=None):
    """Pool windows of ``ws`` over the last two axes of ``input`` (2 or more dimensions).

    ws / ds: window (rows, cols); stride / st: step (default: ws); pad / padding: zeros
    added on both sides (needs ignore_border=True). ignore_border: None warns and uses
    False, as Theano 1.0. mode: 'max', 'sum', 'average_inc_pad' or 'average_exc_pad'.

    >>> pooled = pool_2d(conv_out, ws=(2, 2), ignore_border=True)
    """
    ws = _old_name(ws, ds, "ws", "ds")
    stride = _old_name(stride, st, "stride", "st")
    pad = _old_name(None if padding is not None else pad, padding, "pad", "padding")
    if ws is None:
        raise ValueError("You must provide a tuple value for the window size.")
    x = as_tensor_variable(input)
    if x.ndim < 2:
        raise NotImplementedError(f"pool_2d requires a dimension >= 2, got '{x}' ({x.type})")
    if ignore_border is None:
        warnings.warn("pool_2d() will have the parameter ignore_border default value changed "
                      "to True (currently False). To have consistent behavior with all Theano "
                      "versions, explicitly add the parameter ignore_border=True.", stacklevel=2)
        ignore_border = False
    if mode == "max_deterministic":
        mode = "max"
    if mode not in MODES:
        raise ValueError(f"Pool mode parameter only support 'max', 'sum', 'average_inc_pad' and "
                         f"'average_exc_pad'. Got {mode!r}")
    ws = _pair(ws, "ws", 1)
    stride = ws if stride is None else _pair(stride, "stride", 1)
    pad = _pair((0, 0) if pad is None else pad, "pad", 0)
    if pad != (0, 0) and not ignore_border:
        raise NotImplementedError("padding works only with ignore_border=True")
    if pad[0] >= ws[0] or pad[1] >= ws[1]:
        raise NotImplementedError("padding must be smaller than strides")
    pattern = x.broadcastable[:-2] + (False, False)
    return lowered(_lower_pool, [x], TensorType(x.dtype, pattern), name=f"pool_{mode}",
                   ws=ws, stride=stride, pad=pad, ignore_border=bool(ignore_border), mode=mode)


def max_pool_2d_same_size(input, patch_size):  # noqa: A002
    """``input`` where it is the maximum of its (patch_size, non-overlapping) patch, else 0.

    >>> kept = max_pool_2d_same_size(x, (2, 2))
    """
    x = as_tensor_variable(input)
    pooled = pool_2d(x, ws=patch_size, ignore_border=True)
    from dragon.vm.theano.gradient import Lop, disconnected_grad
    # The max pool's gradient routes each patch's value to where its maximum is.
    return Lop(pooled, x, disconnected_grad(pooled))


__all__ = ["pool_2d", "max_pool_2d_same_size", "out_size", "window_counts"]
