"""Array kernels behind the vision ops: window geometry, im2col/col2im, convolution, pooling.

Convolution is a GEMM over an im2col matrix whose rows are ``(c, i, j)`` (input
channel, kernel row, kernel column) and whose columns are window positions with
the batch folded in, so each group costs one large GEMM::

    cols    (C*kh*kw, N*oh*ow)    im2col of the padded input, channel-major (C, N, Hp, Wp)
    result  (C_out,   N*oh*ow)    = W (C_out, C/g*kh*kw) @ cols, per group
    Y       (N, C_out, oh, ow)    result transposed back to NCHW (+ bias)

Depthwise-like convolutions (one input channel per group) at stride 1 are copy
bound instead, so their windows are enumerated "flat": every column is a point
of the whole padded grid, each im2col row is then one contiguous slice of the
padded input, and the invalid columns are dropped when the result is stored.

The kernels here take plain tuples and arrays; ``dragon.ops.vision`` registers
the ops and owns argument checking.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

_ALIGN = 64  # bytes between scratch views, so every view starts SIMD-aligned


# -- geometry ---------------------------------------------------------------------------------

class Windows(NamedTuple):
    """Where the kernel windows of a 2-d op sit on its padded input."""

    size: tuple        # (H, W) of the input
    kernel: tuple      # (kh, kw)
    stride: tuple      # (sh, sw)
    dilation: tuple    # (dh, dw)
    pads: tuple        # (top, left, bottom, right)
    out: tuple         # (oh, ow): window positions per axis
    padded: tuple      # (Hp, Wp): input + pads + any overhang of the last window

    @property
    def has_border(self):
        return self.padded != self.size

    @property
    def max_offset(self):
        """Flat distance, on the padded grid, from a window's first tap to its last."""
        (kh, kw), (dh, dw) = self.kernel, self.dilation
        return dh * (kh - 1) * self.padded[1] + dw * (kw - 1)


def window_count(size, kernel, stride, dilation, pad_begin, pad_end, ceil_mode=False):
    """Window positions along one axis (Caffe's rules, also for ceil mode)."""
    span = size + pad_begin + pad_end - (dilation * (kernel - 1) + 1)
    if span < 0:
        return 0
    count = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (count - 1) * stride >= size + pad_begin:
        count -= 1  # the last window would start past the input
    return count


def make_windows(size, kernel, stride, dilation, pads, out):
    """Windows for ``out`` positions; the padded size covers every one of them."""
    padded = tuple(
        max(size[a] + pads[a] + pads[a + 2], (out[a] - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1)
        for a in range(2))
    return Windows(tuple(size), tuple(kernel), tuple(stride), tuple(dilation), tuple(pads),
                   tuple(out), padded)


class ConvGeometry(NamedTuple):
    """A grouped cross-correlation of an (N, C, H, W) image with (C_out, C/g, kh, kw) filters."""

    batch: int
    channels: int
    out_channels: int
    group: int
    win: Windows

    @property
    def pointwise(self):
        w = self.win
        return w.kernel == (1, 1) and w.stride == (1, 1) and not any(w.pads)

    @property
    def flat(self):
        return (self.win.stride == (1, 1) and self.channels == self.group
                and not self.pointwise)

    @property
    def needs_pad_buffer(self):
        """Whether the channel-major padded image needs its own buffer (else it is a view)."""
        return self.win.has_border or (self.flat and self.batch > 1)

    @property
    def needs_matrix_buffer(self):
        """Whether the (C_out, positions) matrix needs its own buffer (else it is Y or dY)."""
        return self.flat or self.batch > 1

    @property
    def col_rows(self):
        kh, kw = self.win.kernel
        return self.channels * kh * kw

    @property
    def columns(self):
        """Columns of the im2col matrix."""
        (hp, wp), (oh, ow) = self.win.padded, self.win.out
        if self.flat:
            return self.batch * hp * wp - self.win.max_offset
        return self.batch * oh * ow

    @property
    def matrix_columns(self):
        """Columns of the (C_out, .) result matrix: the flat layout keeps the whole grid."""
        hp, wp = self.win.padded
        return self.batch * hp * wp if self.flat else self.columns


@functools.lru_cache(maxsize=512)
def conv_geometry(image_shape, filter_shape, stride, dilation, pads, group, out=None):
    """Geometry of correlating ``image_shape`` with ``filter_shape`` (C_out first).

    ``out`` forces the window count per axis (a transposed convolution knows it);
    by default it is Caffe's floor((H + pads - dil*(k-1) - 1) / stride) + 1.
    """
    n, c, h, w = image_shape
    kernel = tuple(filter_shape[2:])
    if out is None:
        out = tuple(window_count((h, w)[a], kernel[a], stride[a], dilation[a], pads[a], pads[a + 2])
                    for a in range(2))
    win = make_windows((h, w), kernel, stride, dilation, pads, out)
    return ConvGeometry(n, c, filter_shape[0], group, win)


# -- scratch --------------------------------------------------------------------------------------

def layout_bytes(layout):
    """Bytes of one scratch buffer holding every (shape, dtype) of ``layout``."""
    return sum(_aligned(math.prod(shape) * np.dtype(dtype).itemsize) for shape, dtype in layout)


def carve(scratch, layout):
    """Views, in order, of the kernel's ``scratch`` buffer for each (shape, dtype) of ``layout``."""
    views, offset = [], 0
    for shape, dtype in layout:
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        views.append(scratch[0][offset:offset + nbytes].view(dtype).reshape(shape))
        offset += _aligned(nbytes)
    return views


def _aligned(nbytes):
    return -(-nbytes // _ALIGN) * _ALIGN


@functools.lru_cache(maxsize=512)
def conv_buffers(geo, dtype, tasks):
    """Named scratch buffers of a convolution kernel doing ``tasks``.

    tasks: a tuple of 'correlate' (Y from X), 'filter' (dW) and 'data' (dX or a
    transposed convolution). Returns ``((name, shape, dtype), ...)``.
    """
    if geo.pointwise and "filter" not in tasks:
        return ()  # plain batched GEMMs on the NCHW arrays
    hp, wp = geo.win.padded
    buffers = []
    if geo.needs_pad_buffer:
        buffers.append(("pad", (geo.channels, geo.batch, hp, wp), dtype))
    if not (geo.pointwise and geo.batch == 1):
        buffers.append(("cols", (geo.col_rows, geo.columns), dtype))
    if geo.needs_matrix_buffer:
        buffers.append(("matrix", (geo.out_channels, geo.matrix_columns), dtype))
    return tuple(buffers)


def conv_layout(geo, dtype, tasks):
    return tuple((shape, dt) for _, shape, dt in conv_buffers(geo, dtype, tasks))


class _ConvScratch:
    """The pad, cols and matrix views of ``conv_buffers`` (None where not needed)."""

    def __init__(self, geo, scratch, dtype, tasks):
        buffers = conv_buffers(geo, np.dtype(dtype).str, tasks)
        views = carve(scratch, [(shape, dt) for _, shape, dt in buffers])
        named = {name: view for (name, _, _), view in zip(buffers, views)}
        self.pad = named.get("pad")
        self.cols = named.get("cols")
        self.matrix = named.get("matrix")


# -- windows on padded arrays ---------------------------------------------------------------------

def fill_padded(xp, dst, src, win, fill):
    """``dst`` (..., Hp, Wp) = ``src`` (..., H, W) surrounded by ``fill``."""
    (h, w), (hp, wp) = win.size, win.padded
    top, left = win.pads[0], win.pads[1]
    bottom, right = top + h, left + w
    if top:
        dst[..., :top, :] = fill
    if bottom < hp:
        dst[..., bottom:, :] = fill
    if left:
        dst[..., top:bottom, :left] = fill
    if right < wp:
        dst[..., top:bottom, right:] = fill
    xp.copyto(dst[..., top:bottom, left:right], src)
    return dst


def crop(padded, win):
    """The input-sized interior of a padded (..., Hp, Wp) array."""
    (h, w), (top, left) = win.size, win.pads[:2]
    return padded[..., top:top + h, left:left + w]


def window_tap(padded, win, i, j):
    """View (..., oh, ow) of tap (i, j) of every window of ``padded`` (..., Hp, Wp)."""
    (sh, sw), (dh, dw), (oh, ow) = win.stride, win.dilation, win.out
    return padded[..., i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]


def sliding_windows(xp, padded, win):
    """View (..., kh, kw, oh, ow) of every window of ``padded`` (..., Hp, Wp)."""
    *lead, row, col = padded.strides
    (sh, sw), (dh, dw) = win.stride, win.dilation
    shape = tuple(padded.shape[:-2]) + win.kernel + win.out
    strides = (*lead, dh * row, dw * col, sh * row, sw * col)
    return xp.lib.stride_tricks.as_strided(padded, shape, strides)


def _flat_windows(xp, padded, geo):
    """View (C, kh, kw, columns) of the flat windows of (C, N, Hp, Wp) ``padded``.

    Column q is the window whose first tap is the q-th point of the padded grid;
    ``padded`` must be contiguous within each channel (a buffer, or a batch of one).
    """
    win = geo.win
    channel, _, row, col = padded.strides
    shape = (geo.channels,) + win.kernel + (geo.columns,)
    strides = (channel, win.dilation[0] * row, win.dilation[1] * col, col)
    return xp.lib.stride_tricks.as_strided(padded, shape, strides)


# -- convolution ----------------------------------------------------------------------------------

def _channel_major(array):
    return array.transpose(1, 0, 2, 3)


def _padded_image(xp, image, geo, ws):
    """The image as a channel-major (C, N, Hp, Wp) array with zero borders."""
    if not geo.needs_pad_buffer:
        return _channel_major(image)
    return fill_padded(xp, ws.pad, _channel_major(image), geo.win, 0)


def _im2col(xp, padded, geo, ws):
    """The (C*kh*kw, columns) im2col matrix of a channel-major padded image."""
    if geo.pointwise and geo.batch == 1:
        return padded.reshape(geo.channels, -1)
    if geo.flat:
        xp.copyto(ws.cols.reshape((geo.channels,) + geo.win.kernel + (-1,)),
                  _flat_windows(xp, padded, geo))
    else:
        view = sliding_windows(xp, padded, geo.win).transpose(0, 2, 3, 1, 4, 5)
        xp.copyto(ws.cols.reshape(view.shape), view)
    return ws.cols


def _col2im(xp, cols, target, geo):
    """Accumulate the columns of ``cols`` into the zeroed padded image ``target``."""
    kh, kw = geo.win.kernel
    cols = cols.reshape((geo.channels, kh, kw) + ((-1,) if geo.flat else
                                                   (geo.batch,) + geo.win.out))
    windows = _flat_windows(xp, target, geo) if geo.flat else None
    for i in range(kh):
        for j in range(kw):
            tap = windows[:, i, j] if geo.flat else window_tap(target, geo.win, i, j)
            xp.add(tap, cols[:, i, j], out=tap)


def _by_group(matrix, group):
    """A (rows, cols) matrix as (group, rows/group, cols), without copying."""
    return matrix.reshape(group, matrix.shape[0] // group, matrix.shape[1])


def _filter_matrix(w):
    return w.reshape(w.shape[0], -1)


def _result_grid(matrix, geo):
    """The valid (C_out, N, oh, ow) part of a (C_out, matrix_columns) result matrix."""
    (hp, wp), (oh, ow) = geo.win.padded, geo.win.out
    if geo.flat:
        return matrix.reshape(geo.out_channels, geo.batch, hp, wp)[:, :, :oh, :ow]
    return matrix.reshape(geo.out_channels, geo.batch, oh, ow)


def _add_bias(xp, y, bias):
    if bias is not None:
        xp.add(y, bias.reshape(1, -1, 1, 1), out=y)


def correlate(xp, image, w, y, geo, scratch, bias=None):
    """``y`` = grouped cross-correlation of ``image`` with filters ``w`` (+ ``bias``)."""
    g = geo.group
    if geo.pointwise:
        n, c = image.shape[:2]
        xp.matmul(w.reshape(g, -1, c // g), image.reshape(n, g, c // g, -1),
                  out=y.reshape(n, g, geo.out_channels // g, -1))
        _add_bias(xp, y, bias)
        return
    ws = _ConvScratch(geo, scratch, y.dtype, ("correlate",))
    cols = _im2col(xp, _padded_image(xp, image, geo, ws), geo, ws)
    matrix = ws.matrix if geo.needs_matrix_buffer else y.reshape(geo.out_channels, -1)
    xp.matmul(_by_group(_filter_matrix(w), g), _by_group(cols, g),
              out=_by_group(matrix[:, :geo.columns], g))
    if geo.needs_matrix_buffer:
        grid = _channel_major(_result_grid(matrix, geo))
        if bias is None:
            xp.copyto(y, grid)
        else:
            xp.add(grid, bias.reshape(1, -1, 1, 1), out=y)
    else:
        _add_bias(xp, y, bias)


def _gradient_matrix(xp, dy, geo, ws):
    """dY as the (C_out, columns) matrix matching the im2col columns (zeros off-grid)."""
    if not geo.needs_matrix_buffer:
        return dy.reshape(geo.out_channels, -1)
    matrix = ws.matrix
    if geo.flat:
        (oh, ow), grid = geo.win.out, matrix.reshape(geo.out_channels, geo.batch, *geo.win.padded)
        grid[:, :, oh:, :] = 0
        grid[:, :, :oh, ow:] = 0
    xp.copyto(_result_grid(matrix, geo), _channel_major(dy))
    return matrix[:, :geo.columns]


def correlation_grads(xp, image, dy, w, dimage, dw, geo, scratch):
    """Gradients of ``correlate`` w.r.t. the image and the filters (either may be None)."""
    g = geo.group
    if geo.pointwise and dw is None:
        _pointwise_data_grad(xp, dy, w, dimage, geo)
        return
    tasks = ("filter",) if dimage is None else (("data",) if dw is None else ("data", "filter"))
    ws = _ConvScratch(geo, scratch, dy.dtype, tasks)
    grad = _gradient_matrix(xp, dy, geo, ws)
    if dw is not None:
        cols = _im2col(xp, _padded_image(xp, image, geo, ws), geo, ws)
        xp.matmul(_by_group(grad, g), _by_group(cols, g).transpose(0, 2, 1),
                  out=_by_group(_filter_matrix(dw), g))
    if dimage is None:
        return
    if geo.pointwise:
        _pointwise_data_grad(xp, dy, w, dimage, geo)
        return
    image_grad(xp, grad, w, dimage, geo, ws)


def _pointwise_data_grad(xp, dy, w, dimage, geo):
    n, g = dy.shape[0], geo.group
    xp.matmul(w.reshape(g, geo.out_channels // g, -1).transpose(0, 2, 1),
              dy.reshape(n, g, geo.out_channels // g, -1),
              out=dimage.reshape(n, g, geo.channels // g, -1))


def image_grad(xp, grad, w, dimage, geo, ws, bias=None):
    """``dimage`` = col2im(W^T @ grad) (+ bias): the image gradient, or a transposed conv."""
    g = geo.group
    cols = ws.cols
    xp.matmul(_by_group(_filter_matrix(w), g).transpose(0, 2, 1), _by_group(grad, g),
              out=_by_group(cols, g))
    if geo.needs_pad_buffer:
        target = ws.pad
    else:
        target = _channel_major(dimage)
    target.fill(0)
    _col2im(xp, cols, target, geo)
    if geo.needs_pad_buffer:
        if bias is None:
            xp.copyto(dimage, _channel_major(crop(target, geo.win)))
        else:
            xp.add(_channel_major(crop(target, geo.win)), bias.reshape(1, -1, 1, 1), out=dimage)
    else:
        _add_bias(xp, dimage, bias)


def transposed_correlate(xp, x, w, y, geo, scratch, bias=None):
    """``y`` = transposed convolution of ``x``: the image gradient of correlating ``y``'s shape."""
    if geo.pointwise:
        _pointwise_data_grad(xp, x, w, y, geo)
        _add_bias(xp, y, bias)
        return
    ws = _ConvScratch(geo, scratch, y.dtype, ("data",))
    image_grad(xp, _gradient_matrix(xp, x, geo, ws), w, y, geo, ws, bias)


# -- pooling --------------------------------------------------------------------------------------

def is_global(win):
    return win.out == (1, 1) and win.kernel == win.size and not any(win.pads)


def pool_layout(shape, win, dtype, mode, backward):
    """Scratch of a pooling kernel: padded input/gradient, mask and a temporary."""
    if is_global(win):
        return ()
    n, c = shape[:2]
    layout = []
    if win.has_border:
        layout.append(((n, c) + win.padded, dtype))
    if mode == "MAX":
        layout.append(((n, c) + win.out, "bool"))
    if backward:
        layout.append(((n, c) + win.out, dtype))
    return tuple(layout)


def _plane_index(xp, win, i, j):
    """Index in the (H, W) input plane of tap (i, j) of each window, shape (oh, ow)."""
    (sh, sw), (oh, ow), width = win.stride, win.out, win.size[1]
    rows = xp.arange(oh, dtype=np.int64) * sh + (i - win.pads[0])
    cols = xp.arange(ow, dtype=np.int64) * sw + (j - win.pads[1])
    return rows[:, None] * width + cols[None, :]


def _window_divisors(xp, win, count_include_pad, dtype):
    """1 / the number of pixels Caffe averages over in each window, shape (oh, ow)."""
    factors = []
    for a in range(2):
        starts = np.arange(win.out[a]) * win.stride[a] - win.pads[a]
        ends = np.minimum(starts + win.kernel[a], win.size[a] + win.pads[a + 2])
        if not count_include_pad:
            starts, ends = np.maximum(starts, 0), np.minimum(ends, win.size[a])
        factors.append(ends - starts)
    return xp.asarray(1.0 / np.outer(factors[0], factors[1]), dtype=dtype)


def _taps(win):
    kh, kw = win.kernel
    return [(i, j) for i in range(kh) for j in range(kw)]


def pool(xp, x, y, index, win, mode, count_include_pad, scratch):
    """Max or average pooling of ``x`` into ``y``; ``index`` gets each max's plane index."""
    n, c = x.shape[:2]
    if is_global(win):
        planes = x.reshape(n, c, -1)
        if mode == "MAX":
            xp.max(planes, axis=2, out=y.reshape(n, c))
            xp.argmax(planes, axis=2, out=index.reshape(n, c))
        else:
            xp.mean(planes, axis=2, out=y.reshape(n, c))
        return
    views = iter(carve(scratch, pool_layout(x.shape, win, x.dtype.str, mode, False)))
    fill = -np.inf if mode == "MAX" else 0
    padded = fill_padded(xp, next(views), x, win, fill) if win.has_border else x
    taps = _taps(win)
    xp.copyto(y, window_tap(padded, win, *taps[0]))
    if mode == "MAX":
        mask = next(views)
        index[...] = _plane_index(xp, win, *taps[0])
        for i, j in taps[1:]:
            tap = window_tap(padded, win, i, j)
            xp.greater(tap, y, out=mask)
            xp.copyto(y, tap, where=mask)
            xp.copyto(index, _plane_index(xp, win, i, j), where=mask)
    else:
        for i, j in taps[1:]:
            xp.add(y, window_tap(padded, win, i, j), out=y)
        xp.multiply(y, _window_divisors(xp, win, count_include_pad, y.dtype), out=y)


def pool_grad(xp, x, dy, index, dx, win, mode, count_include_pad, scratch):
    """``dx`` = gradient of ``pool`` given ``dy`` (and the max ``index`` for MAX)."""
    n, c = x.shape[:2]
    if is_global(win):
        planes = dx.reshape(n, c, -1)
        if mode == "MAX":
            planes.fill(0)
            rows = xp.arange(n * c, dtype=np.int64) * planes.shape[2]
            planes.reshape(-1)[rows + index.reshape(-1)] = dy.reshape(-1)
        else:
            xp.multiply(dy.reshape(n, c, 1), 1.0 / planes.shape[2], out=planes)
        return
    views = iter(carve(scratch, pool_layout(x.shape, win, x.dtype.str, mode, True)))
    target = next(views) if win.has_border else dx
    mask = next(views) if mode == "MAX" else None
    share = next(views)
    target.fill(0)
    if mode == "AVG":
        xp.multiply(dy, _window_divisors(xp, win, count_include_pad, dy.dtype), out=share)
    for i, j in _taps(win):
        if mode == "MAX":
            xp.equal(index, _plane_index(xp, win, i, j), out=mask)
            xp.multiply(dy, mask, out=share)
        tap = window_tap(target, win, i, j)
        xp.add(tap, share, out=tap)
    if win.has_border:
        xp.copyto(dx, crop(target, win))


# -- im2col as an op (Caffe's Im2col layer) -------------------------------------------------------

def im2col_layout(shape, win, dtype):
    return (((shape[0], shape[1]) + win.padded, dtype),) if win.has_border else ()


def im2col(xp, x, cols, win, scratch):
    """``cols`` (N, C*kh*kw, oh, ow) = the window taps of zero-padded ``x``."""
    padded = fill_padded(xp, carve(scratch, im2col_layout(x.shape, win, x.dtype.str))[0],
                         x, win, 0) if win.has_border else x
    view = sliding_windows(xp, padded, win)
    xp.copyto(cols.reshape(view.shape), view)


def col2im(xp, cols, dx, win, scratch):
    """``dx`` = the sum of the window taps of ``cols`` (N, C*kh*kw, oh, ow) at their pixels."""
    n, c = dx.shape[:2]
    target = carve(scratch, im2col_layout(dx.shape, win, dx.dtype.str))[0] \
        if win.has_border else dx
    target.fill(0)
    taps = cols.reshape((n, c) + win.kernel + win.out)
    for i, j in _taps(win):
        tap = window_tap(target, win, i, j)
        xp.add(tap, taps[:, :, i, j], out=tap)
    if win.has_border:
        xp.copyto(dx, crop(target, win))
