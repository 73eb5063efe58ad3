"""Cases for dragon/ops/vision.py, against naive float64 loops over output positions."""
import math

import numpy as np

from tests.ops.opcase import Case, rand


def _four(pads):
    pads = list(pads)
    return pads * 2 if len(pads) == 2 else pads


def _zero_padded(x, pads, fill=0.0):
    top, left, bottom, right = _four(pads)
    n, c, h, w = x.shape
    padded = np.full((n, c, h + top + bottom, w + left + right), fill)
    padded[:, :, top:top + h, left:left + w] = x
    return padded


def conv_reference(x, w, b=None, kernel_shape=(), strides=(1, 1), pads=(0, 0),
                   dilations=(1, 1), group=1):
    padded = _zero_padded(x, pads)
    n, c = x.shape[:2]
    c_out, c_per_group, kh, kw = w.shape
    (sh, sw), (dh, dw) = strides, dilations
    oh = (padded.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (padded.shape[3] - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, c_out, oh, ow))
    outs_per_group = c_out // group
    for b_ in range(n):
        for o in range(c_out):
            first = (o // outs_per_group) * c_per_group
            for r in range(oh):
                for s in range(ow):
                    patch = padded[b_, first:first + c_per_group,
                                   r * sh:r * sh + dh * (kh - 1) + 1:dh,
                                   s * sw:s * sw + dw * (kw - 1) + 1:dw]
                    y[b_, o, r, s] = np.sum(patch * w[o])
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def deconv_reference(x, w, b=None, kernel_shape=(), strides=(1, 1), pads=(0, 0),
                     dilations=(1, 1), group=1, output_padding=(0, 0)):
    """Scatter every input pixel times its filter into the output."""
    n, c_in, h, wd = x.shape
    _, outs_per_group, kh, kw = w.shape
    (sh, sw), (dh, dw), (eh, ew) = strides, dilations, output_padding
    top, left, bottom, right = _four(pads)
    full_h, full_w = sh * (h - 1) + dh * (kh - 1) + 1, sw * (wd - 1) + dw * (kw - 1) + 1
    full = np.zeros((n, outs_per_group * group, full_h + eh, full_w + ew))
    ins_per_group = c_in // group
    for b_ in range(n):
        for ci in range(c_in):
            first = (ci // ins_per_group) * outs_per_group
            for r in range(h):
                for s in range(wd):
                    for i in range(kh):
                        for j in range(kw):
                            full[b_, first:first + outs_per_group, r * sh + i * dh,
                                 s * sw + j * dw] += x[b_, ci, r, s] * w[ci, :, i, j]
    y = full[:, :, top:full_h - bottom + eh, left:full_w - right + ew]
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y


def _caffe_pooled(size, k, s, pad_begin, pad_end, ceil_mode):
    span = size + pad_begin + pad_end - k
    out = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (pad_begin or pad_end) and (out - 1) * s >= size + pad_begin:
        out -= 1
    return out


def pool_reference(x, kernel_shape=(), strides=(1, 1), pads=(0, 0), mode="MAX",
                   global_pooling=False, ceil_mode=True, count_include_pad=True):
    """Caffe's pooling loops: AVG divides by the window clipped to input + pads."""
    n, c, h, w = x.shape
    if global_pooling:
        kernel_shape, strides, pads = (h, w), (1, 1), (0, 0)
    (kh, kw), (sh, sw) = kernel_shape, strides
    top, left, bottom, right = _four(pads)
    oh = _caffe_pooled(h, kh, sh, top, bottom, ceil_mode)
    ow = _caffe_pooled(w, kw, sw, left, right, ceil_mode)
    y = np.zeros((n, c, oh, ow))
    index = np.zeros((n, c, oh, ow), dtype=np.int64)
    for r in range(oh):
        for s in range(ow):
            h0, w0 = r * sh - top, s * sw - left
            h1, w1 = min(h0 + kh, h + bottom), min(w0 + kw, w + right)
            size = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h), min(w1, w)
            region = x[:, :, h0:h1, w0:w1].reshape(n, c, -1)
            if mode == "MAX":
                best = region.argmax(axis=2)
                y[:, :, r, s] = region.max(axis=2)
                index[:, :, r, s] = (h0 + best // (w1 - w0)) * w + w0 + best % (w1 - w0)
            else:
                divisor = size if count_include_pad else (h1 - h0) * (w1 - w0)
                y[:, :, r, s] = region.sum(axis=2) / divisor
    return (y, index) if mode == "MAX" else y


def im2col_reference(x, kernel_shape, strides=(1, 1), pads=(0, 0), dilations=(1, 1)):
    padded = _zero_padded(x, pads)
    n, c = x.shape[:2]
    (kh, kw), (sh, sw), (dh, dw) = kernel_shape, strides, dilations
    oh = (padded.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (padded.shape[3] - dw * (kw - 1) - 1) // sw + 1
    cols = np.zeros((n, c * kh * kw, oh, ow))
    for ch in range(c):
        for i in range(kh):
            for j in range(kw):
                for r in range(oh):
                    for s in range(ow):
                        cols[:, (ch * kh + i) * kw + j, r, s] = padded[:, ch, r * sh + i * dh,
                                                                       s * sw + j * dw]
    return cols


def col2im_reference(cols, x, kernel_shape, strides=(1, 1), pads=(0, 0), dilations=(1, 1)):
    top, left, bottom, right = _four(pads)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel_shape, strides, dilations
    padded = np.zeros((n, c, h + top + bottom, w + left + right))
    for ch in range(c):
        for i in range(kh):
            for j in range(kw):
                for r in range(cols.shape[2]):
                    for s in range(cols.shape[3]):
                        padded[:, ch, r * sh + i * dh, s * sw + j * dw] += \
                            cols[:, (ch * kh + i) * kw + j, r, s]
    return padded[:, :, top:top + h, left:left + w]


def _conv(name, x, w, b=None, **args):
    inputs = [x, w] if b is None else [x, w, b]
    return Case("Conv2d", inputs, args=args, reference=conv_reference, name=name)


def _deconv(name, x, w, b=None, **args):
    inputs = [x, w] if b is None else [x, w, b]
    return Case("Conv2dTranspose", inputs, args=args, reference=deconv_reference, name=name)


def _pool(name, x, **args):
    return Case("Pool2d", [x], args=args, reference=pool_reference, grad_outputs=(0,), name=name)


CONV_CASES = [
    _conv("plain_bias", rand(2, 2, 5, 5), rand(3, 2, 3, 3, seed=1), rand(3, seed=2)),
    _conv("stride2_pad1", rand(2, 2, 5, 5), rand(3, 2, 3, 3, seed=1), strides=[2, 2],
          pads=[1, 1]),
    _conv("asymmetric_pads", rand(2, 2, 5, 4), rand(2, 2, 3, 2, seed=1), pads=[1, 0, 2, 1],
          strides=[1, 2]),
    _conv("dilation2", rand(2, 1, 7, 7), rand(2, 1, 3, 3, seed=1), rand(2, seed=2),
          dilations=[2, 2], pads=[1, 1]),
    _conv("group2", rand(2, 4, 3, 4), rand(6, 2, 3, 3, seed=1), rand(6, seed=2), pads=[1, 1],
          group=2),
    _conv("depthwise", rand(2, 3, 4, 4), rand(3, 1, 3, 3, seed=1), rand(3, seed=2), pads=[1, 1],
          group=3),
    _conv("depthwise_batch1", rand(1, 4, 5, 5), rand(4, 1, 3, 3, seed=1), rand(4, seed=2),
          pads=[1, 1], group=4),
    _conv("depthwise_multiplier", rand(1, 3, 4, 5), rand(6, 1, 3, 3, seed=1), pads=[1, 1],
          group=3),
    _conv("depthwise_overpadded_multiplier", rand(1, 3, 4, 5), rand(6, 1, 3, 3, seed=1),
          pads=[1, 2], group=3),
    _conv("depthwise_dilated_asymmetric", rand(2, 2, 6, 5), rand(2, 1, 3, 3, seed=1),
          dilations=[2, 2], pads=[0, 3, 2, 1], group=2),
    _conv("depthwise_dilated_narrow", rand(1, 2, 4, 3), rand(2, 1, 3, 3, seed=1),
          dilations=[2, 2], pads=[1, 0, 1, 2], group=2),
    _conv("depthwise_no_pad", rand(1, 3, 5, 5), rand(3, 1, 3, 2, seed=1), group=3),
    _conv("depthwise_stride2", rand(2, 2, 5, 5), rand(2, 1, 3, 3, seed=1), rand(2, seed=2),
          strides=[2, 2], pads=[1, 1], group=2),
    _conv("pointwise", rand(2, 3, 4, 4), rand(5, 3, 1, 1, seed=1), rand(5, seed=2)),
    _conv("pointwise_group", rand(2, 4, 3, 3), rand(6, 2, 1, 1, seed=1), group=2),
    _conv("pointwise_stride2", rand(2, 2, 5, 5), rand(3, 2, 1, 1, seed=1), strides=[2, 2]),
    _conv("wide_rows", rand(2, 2, 2, 18), rand(2, 2, 2, 2, seed=1), rand(2, seed=2),
          pads=[0, 1]),
    _conv("batch1_no_pad", rand(1, 2, 5, 5), rand(3, 2, 3, 3, seed=1), rand(3, seed=2),
          kernel_shape=[3, 3]),
]

DECONV_CASES = [
    _deconv("stride2_bias", rand(2, 3, 3, 3), rand(3, 2, 3, 3, seed=1), rand(2, seed=2),
            strides=[2, 2], pads=[1, 1]),
    _deconv("output_padding", rand(2, 2, 3, 3), rand(2, 2, 3, 3, seed=1), strides=[2, 2],
            pads=[1, 0, 1, 1], output_padding=[1, 1]),
    _deconv("group2", rand(2, 4, 3, 3), rand(4, 1, 3, 3, seed=1), rand(2, seed=2), group=2),
    _deconv("depthwise_upsample", rand(1, 3, 4, 4), rand(3, 1, 4, 4, seed=1), strides=[2, 2],
            pads=[1, 1], group=3),
    _deconv("depthwise_stride1", rand(2, 2, 4, 4), rand(2, 1, 3, 3, seed=1), pads=[1, 1], group=2),
    _deconv("depthwise_stride1_batch1", rand(1, 3, 4, 4), rand(3, 1, 3, 3, seed=1),
            rand(3, seed=2), pads=[1, 1], group=3),
    _deconv("dilation2", rand(2, 2, 3, 3), rand(2, 3, 3, 3, seed=1), dilations=[2, 2]),
    _deconv("wide_rows", rand(2, 1, 2, 17), rand(1, 2, 1, 3, seed=1), strides=[1, 2],
            pads=[0, 1]),
    _deconv("pointwise_bias", rand(2, 3, 4, 4), rand(3, 2, 1, 1, seed=1), rand(2, seed=2)),
]

POOL_CASES = [
    _pool("max_ceil", rand(1, 2, 6, 6), kernel_shape=[3, 3], strides=[2, 2]),
    _pool("max_pad", rand(2, 2, 5, 5), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1]),
    _pool("max_floor", rand(2, 2, 5, 5), kernel_shape=[2, 2], strides=[2, 2], ceil_mode=False),
    _pool("max_asymmetric_pads", rand(2, 1, 5, 6), kernel_shape=[3, 2], strides=[2, 1],
          pads=[0, 1, 2, 1]),
    _pool("max_overhang", rand(2, 2, 5, 5), kernel_shape=[2, 2], strides=[2, 2]),
    _pool("avg_pad", rand(2, 2, 5, 5), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1],
          mode="AVG"),
    _pool("avg_ceil_overhang", rand(1, 2, 6, 6), kernel_shape=[3, 3], strides=[2, 2],
          mode="AVG"),
    _pool("avg_exclude_pad", rand(1, 2, 6, 6), kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1],
          mode="AVG", count_include_pad=False),
    _pool("avg_exclude_overhang", rand(2, 2, 5, 5), kernel_shape=[2, 2], strides=[2, 2],
          mode="AVG", count_include_pad=False),
    _pool("global_max", rand(2, 3, 4, 4), global_pooling=True),
    _pool("global_avg", rand(2, 3, 4, 4), global_pooling=True, mode="AVG"),
]

IM2COL_ARGS = {"kernel_shape": [3, 3], "strides": [2, 1], "pads": [1, 1]}

IM2COL_CASES = [
    Case("Im2Col", [rand(2, 2, 5, 5)], args=IM2COL_ARGS, reference=im2col_reference),
    Case("Im2Col", [rand(1, 2, 6, 6)], args={"kernel_shape": [2, 2], "dilations": [2, 2]},
         reference=im2col_reference, name="dilation2_no_pad"),
    Case("Col2Im", [rand(1, 9, 2, 4), rand(1, 1, 4, 4, seed=1)], args=IM2COL_ARGS,
         reference=col2im_reference, grad=(0,)),
]

CASES = CONV_CASES + DECONV_CASES + POOL_CASES + IM2COL_CASES
