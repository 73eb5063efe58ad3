"""Array kernels behind the vision ops: window geometry, convolution, pooling, im2col.

Convolution is a GEMM over an im2col matrix whose rows are ``(c, i, j)`` (input
channel, kernel row, kernel column) and whose columns are window positions with
the batch folded in, so each group costs one large GEMM::

    cols    (C*kh*kw, N*oh*ow)    im2col of the zero-padded, channel-major (C, N, Hp, Wp) input
    result  (C_out,   N*oh*ow)    = W (C_out, C/g*kh*kw) @ cols, per group
    Y       (N, C_out, oh, ow)    result transposed back to NCHW (+ bias)

Depthwise convolutions (one channel in and out per group) at stride 1 are bound by
copies, not arithmetic, so they enumerate windows "flat": the image is a grid
of rows of width W (zero rows above and below), each im2col row is a contiguous
slice of it, and horizontal padding is virtual: taps that would wrap into the
neighbouring row are zeroed in the im2col matrix. With a batch of one and
"same" padding the GEMM then writes Y directly.

Pooling and the Im2Col op visit the kernel taps one by one on the unpadded
input, each on the windows it lands inside (``tap_slices``).

The kernels take plain tuples and arrays; ``dragon.ops.vision`` registers the
ops and checks their arguments.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

_ALIGN = 64  # bytes between scratch views, so every view starts SIMD-aligned
# Output rows this narrow make im2col copy short runs; the batch goes innermost instead.
_BATCH_LAST_WIDTH = 16


# -- geometry ---------------------------------------------------------------------------------

class Windows(NamedTuple):
    """Where the kernel windows of a 2-d op sit on its input."""

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
        max(size[a] + pads[a] + pads[a + 2],
            (out[a] - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1)
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
        """Depthwise (one input and one output channel per group) at stride 1, with horizontal
        pads no wider than the kernel: the flat layout."""
        w = self.win
        return (w.stride == (1, 1) and self.channels == self.group == self.out_channels
                and not self.pointwise
                and w.pads[1] + w.pads[3] <= w.dilation[1] * (w.kernel[1] - 1))

    @property
    def batch_last(self):
        """Strided layout with window positions in (oh, ow, N) order instead of (N, oh, ow)."""
        return (not self.flat and not self.pointwise and self.batch > 1
                and self.win.out[1] <= _BATCH_LAST_WIDTH)

    @property
    def col_rows(self):
        kh, kw = self.win.kernel
        return self.channels * kh * kw

    @property
    def columns(self):
        """Columns of the im2col matrix: window positions (flat: grid points to the last one)."""
        oh, ow = self.win.out
        if self.flat:
            return ((self.batch - 1) * self.grid_rows + oh) * self.win.size[1]
        return self.batch * oh * ow

    # -- the flat layout --
    @property
    def grid_rows(self):
        """Rows of one image in the flat grid: the input's and the vertical pads'."""
        return self.win.size[0] + self.win.pads[0] + self.win.pads[2]

    @property
    def grid_size(self):
        return self.batch * self.grid_rows * self.win.size[1]

    @property
    def reach(self):
        """Flat distance from a window's first tap to its last."""
        (kh, kw), (dh, dw) = self.win.kernel, self.win.dilation
        return dh * (kh - 1) * self.win.size[1] + dw * (kw - 1)

    @property
    def image_columns(self):
        """Grid points from the first input row of the first image to the last of the last."""
        return ((self.batch - 1) * self.grid_rows + self.win.size[0]) * self.win.size[1]


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
    if geo.flat:
        return _flat_buffers(geo, dtype, tasks)
    if geo.pointwise and "filter" not in tasks:
        return ()  # plain batched GEMMs on the NCHW arrays
    hp, wp = geo.win.padded
    buffers = []
    if geo.batch_last:  # also where col2im accumulates
        buffers.append(("pad", (geo.channels, hp, wp, geo.batch), dtype))
    elif geo.win.has_border and tasks != ("data",):
        buffers.append(("pad", (geo.channels, geo.batch, hp, wp), dtype))
    if not (geo.pointwise and geo.batch == 1):
        buffers.append(("cols", (geo.col_rows * geo.columns,), dtype))
    if geo.batch > 1:
        buffers.append(("matrix", (geo.out_channels, geo.columns), dtype))
    return tuple(buffers)


def _flat_buffers(geo, dtype, tasks):
    kh, kw = geo.win.kernel
    grid = geo.grid_size + geo.reach  # with the zeros the first and last windows reach into
    forward = tasks == ("correlate",)
    cols = geo.col_rows * geo.columns if forward else geo.out_channels * kh * kw * geo.image_columns
    buffers = []
    if forward or geo.batch > 1:  # the image, or a batch's image (gradient) laid out on the grid
        buffers.append(("pad", (geo.channels, grid), dtype))
    buffers.append(("cols", (cols,), dtype))
    if not (forward and _writes_y_directly(geo)):  # dY, or the result
        buffers.append(("matrix", (geo.out_channels, grid), dtype))
    if not forward:
        buffers.append(("filters", (geo.out_channels, 1, kh, kw), dtype))
    return tuple(buffers)


def conv_layout(geo, dtype, tasks):
    return tuple((shape, dt) for _, shape, dt in conv_buffers(geo, dtype, tasks))


class _ConvScratch:
    """The views of ``conv_buffers`` by name: pad, cols, matrix, filters (None if absent)."""

    def __init__(self, geo, scratch, dtype, tasks):
        buffers = conv_buffers(geo, dtype.str, tasks)
        views = carve(scratch, [(shape, dt) for _, shape, dt in buffers])
        named = {name: view for (name, _, _), view in zip(buffers, views)}
        self.pad = named.get("pad")
        self.cols = named.get("cols")
        self.matrix = named.get("matrix")
        self.filters = named.get("filters")

    def cols_matrix(self, rows, columns):
        return self.cols[:rows * columns].reshape(rows, columns)


# -- taps on unpadded arrays ---------------------------------------------------------------------

def _tap_span(win, axis, tap):
    """Output slice and input slice, along ``axis``, of the windows whose ``tap`` lands inside
    the input (the others see padding or overhang); None when there are none."""
    stride, size = win.stride[axis], win.size[axis]
    offset = tap * win.dilation[axis] - win.pads[axis]  # input position of window 0's tap
    first = max(0, -(offset // stride))
    stop = min(win.out[axis], (size - 1 - offset) // stride + 1)
    if stop <= first:
        return None
    start = first * stride + offset
    return slice(first, stop), slice(start, start + (stop - first - 1) * stride + 1, stride)


def tap_slices(win, i, j):
    """``(outputs, inputs)``: index tuples of the windows whose tap (i, j) is inside the input
    and of the pixels it reads there, or None."""
    rows, cols = _tap_span(win, 0, i), _tap_span(win, 1, j)
    if rows is None or cols is None:
        return None
    return (Ellipsis, rows[0], cols[0]), (Ellipsis, rows[1], cols[1])


# -- padded and flat images -----------------------------------------------------------------------

_SHORT_ROW = 32  # below this padded width one memset beats writing the side borders row by row


def fill_padded(xp, dst, src, win, fill):
    """``dst`` (..., Hp, Wp) = ``src`` (..., H, W) surrounded by ``fill``."""
    (h, w), (hp, wp) = win.size, win.padded
    top, left = win.pads[0], win.pads[1]
    bottom, right = top + h, left + w
    if win.has_border and wp < _SHORT_ROW:
        dst.fill(fill)
    elif win.has_border:
        dst[..., :top, :] = fill
        dst[..., bottom:, :] = fill
        dst[..., top:bottom, :left] = fill
        dst[..., top:bottom, right:] = fill
    xp.copyto(dst[..., top:bottom, left:right], src)
    return dst


def sliding_windows(xp, padded, win):
    """View (..., kh, kw, oh, ow) of every window of ``padded`` (..., Hp, Wp)."""
    *lead, row, col = padded.strides
    (sh, sw), (dh, dw) = win.stride, win.dilation
    shape = tuple(padded.shape[:-2]) + win.kernel + win.out
    strides = (*lead, dh * row, dw * col, sh * row, sw * col)
    return xp.lib.stride_tricks.as_strided(padded, shape, strides)


def _grid(rows, geo, lead):
    """The (C, N, grid_rows, W) flat grid stored in ``rows`` after ``lead`` elements."""
    (_, width), size = geo.win.size, geo.grid_size
    return rows[:, lead:lead + size].reshape(rows.shape[0], geo.batch, geo.grid_rows, width)


def _fill_flat(xp, rows, values, geo, lead, top):
    """``rows`` = zeros, with the (C, N, h, w) ``values`` at row ``top``, column 0 of each image."""
    rows.fill(0)
    h, w = values.shape[2:]
    xp.copyto(_grid(rows, geo, lead)[:, :, top:top + h, :w], values)


def _flat_windows(xp, rows, geo, start, columns):
    """View (R, kh, kw, columns) of ``rows`` (R, .): tap (i, j) of column q is element
    start + q + i*dh*W + j*dw."""
    (dh, dw), width = geo.win.dilation, geo.win.size[1]
    row, col = rows.strides
    return xp.lib.stride_tricks.as_strided(
        rows[:, start:], (rows.shape[0],) + geo.win.kernel + (columns,),
        (row, dh * width * col, dw * col, col))


def _flat_cols(xp, rows, geo, start, cols, shift):
    """``cols`` = the flat windows of ``rows`` from ``start``, with the taps that wrap to
    another grid row zeroed: with tap j, column q reads grid column q % W + shift(j)."""
    kw, width, columns = geo.win.kernel[1], geo.win.size[1], cols.shape[1]
    view = _flat_windows(xp, rows, geo, start, columns)
    taps = cols.reshape(view.shape)
    xp.copyto(taps, view)
    by_column = taps.reshape(taps.shape[:3] + (columns // width, width))
    for j in range(kw):
        offset = shift(j)
        if offset < 0:
            by_column[:, :, j, :, :min(-offset, width)] = 0
        elif offset > 0:
            by_column[:, :, j, :, max(width - offset, 0):] = 0
    return cols


# -- convolution ----------------------------------------------------------------------------------

def _channel_major(array):
    return array.transpose(1, 0, 2, 3)


def _by_group(matrix, group):
    """A (rows, cols) matrix as (group, rows/group, cols), without copying."""
    return matrix.reshape(group, matrix.shape[0] // group, matrix.shape[1])


def _filter_matrix(w):
    return w.reshape(w.shape[0], -1)


def _store(xp, channel_major_src, dst, bias):
    """``dst`` (NCHW) = a channel-major (C, N, H, W) view, plus ``bias`` per channel."""
    if bias is None:
        xp.copyto(dst, _channel_major(channel_major_src))
    else:
        xp.add(_channel_major(channel_major_src), bias.reshape(1, -1, 1, 1), out=dst)


def _add_bias(xp, y, bias):
    if bias is not None:
        xp.add(y, bias.reshape(1, -1, 1, 1), out=y)


def _positions(matrix, geo):
    """The (rows, N, oh, ow) view of a (rows, columns) matrix of the strided layout."""
    oh, ow = geo.win.out
    if geo.batch_last:
        return matrix.reshape(matrix.shape[0], oh, ow, geo.batch).transpose(0, 3, 1, 2)
    return matrix.reshape(matrix.shape[0], geo.batch, oh, ow)


def _padded_buffer(ws, geo):
    """The pad buffer as a channel-major (C, N, Hp, Wp) view."""
    return ws.pad.transpose(0, 3, 1, 2) if geo.batch_last else ws.pad


def _im2col(xp, image, geo, ws):
    """The (C*kh*kw, columns) im2col matrix of an NCHW image."""
    win = geo.win
    if geo.flat:
        left = win.pads[1]
        _fill_flat(xp, ws.pad, _channel_major(image), geo, left, win.pads[0])
        return _flat_cols(xp, ws.pad, geo, 0, ws.cols_matrix(geo.col_rows, geo.columns),
                          lambda j: j * win.dilation[1] - left)
    padded = _channel_major(image)
    if win.has_border or geo.batch_last:
        padded = fill_padded(xp, _padded_buffer(ws, geo), padded, win, 0)
    if geo.pointwise and geo.batch == 1:
        return padded.reshape(geo.channels, -1)
    cols = ws.cols_matrix(geo.col_rows, geo.columns)
    view = sliding_windows(xp, padded, win).transpose(0, 2, 3, 1, 4, 5)
    xp.copyto(_positions(cols, geo).reshape(view.shape), view)
    return cols


def _col2im(xp, cols, image, geo, ws):
    """``image`` (NCHW) = the (C*kh*kw, columns) columns summed onto the pixels they read."""
    kh, kw = geo.win.kernel
    cols = _positions(cols, geo).reshape((geo.channels, kh, kw, geo.batch) + geo.win.out)
    if geo.batch_last:  # accumulate in the same memory order as the columns
        (top, left), (h, w) = geo.win.pads[:2], geo.win.size
        target = _padded_buffer(ws, geo)[:, :, top:top + h, left:left + w]
    else:
        target = _channel_major(image)
    target.fill(0)
    for i in range(kh):
        for j in range(kw):
            spans = tap_slices(geo.win, i, j)
            if spans is not None:
                pixels = target[spans[1]]
                xp.add(pixels, cols[:, i, j][spans[0]], out=pixels)
    if geo.batch_last:
        xp.copyto(image, _channel_major(target))


def _writes_y_directly(geo):
    """Whether the GEMM's (C_out, columns) result already is Y (a batch of one, same layout)."""
    return geo.batch == 1 and not (geo.flat and geo.win.out[1] != geo.win.size[1])


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
    cols = _im2col(xp, image, geo, ws)
    direct = _writes_y_directly(geo)
    result = y.reshape(geo.out_channels, -1) if direct else ws.matrix[:, :geo.columns]
    xp.matmul(_by_group(_filter_matrix(w), g), _by_group(cols, g), out=_by_group(result, g))
    if direct:
        _add_bias(xp, y, bias)
        return
    oh, ow = geo.win.out
    outputs = _grid(ws.matrix, geo, 0)[:, :, :oh, :ow] if geo.flat else _positions(result, geo)
    _store(xp, outputs, y, bias)


def _gradient_matrix(xp, dy, geo, ws):
    """dY as the (C_out, columns) matrix whose columns match the im2col columns.

    In the flat layout it sits in the matrix buffer after ``reach - left pad``
    zeros, zero off the valid outputs, so the image gradient can read it with
    flipped windows.
    """
    if geo.flat:
        lead = geo.reach - geo.win.pads[1]
        _fill_flat(xp, ws.matrix, _channel_major(dy), geo, lead, 0)
        return ws.matrix[:, lead:lead + geo.columns]
    if geo.batch == 1:
        return dy.reshape(geo.out_channels, -1)
    xp.copyto(_positions(ws.matrix, geo), _channel_major(dy))
    return ws.matrix


def correlation_grads(xp, image, dy, w, dimage, dw, geo, scratch):
    """Gradients of ``correlate`` w.r.t. the image and the filters (either may be None)."""
    if geo.pointwise and dw is None:
        _pointwise_image_grad(xp, dy, w, dimage, geo)
        return
    tasks = ("filter",) if dimage is None else (("data",) if dw is None else ("data", "filter"))
    ws = _ConvScratch(geo, scratch, dy.dtype, tasks)
    grad = _gradient_matrix(xp, dy, geo, ws)
    if geo.flat:
        _flat_grads(xp, image, w, dimage, dw, geo, ws)
        return
    if dw is not None:
        g = geo.group
        cols = _im2col(xp, image, geo, ws)
        xp.matmul(_by_group(grad, g), _by_group(cols, g).transpose(0, 2, 1),
                  out=_by_group(_filter_matrix(dw), g))
    if dimage is None:
        return
    if geo.pointwise:
        _pointwise_image_grad(xp, dy, w, dimage, geo)
    else:
        image_grad(xp, grad, w, dimage, geo, ws)


def _pointwise_image_grad(xp, dy, w, dimage, geo):
    n, g = dy.shape[0], geo.group
    xp.matmul(w.reshape(g, geo.out_channels // g, -1).transpose(0, 2, 1),
              dy.reshape(n, g, geo.out_channels // g, -1),
              out=dimage.reshape(n, g, geo.channels // g, -1))


def image_grad(xp, grad, w, dimage, geo, ws, bias=None):
    """``dimage`` = the image gradient of ``correlate`` for the dY matrix ``grad`` (+ bias).

    This is also a transposed convolution of ``grad``: col2im(W^T @ grad), or, in
    the flat layout, a correlation of ``grad`` with the spatially flipped filters.
    """
    if geo.flat:
        _flat_grads(xp, None, w, dimage, None, geo, ws, bias)
        return
    g = geo.group
    cols = ws.cols_matrix(geo.col_rows, geo.columns)
    filters = _by_group(_filter_matrix(w), g).transpose(0, 2, 1)
    if geo.out_channels == g:  # a GEMM with an inner size of 1 is an outer product
        xp.multiply(filters, _by_group(grad, g), out=_by_group(cols, g))
    else:
        xp.matmul(filters, _by_group(grad, g), out=_by_group(cols, g))
    _col2im(xp, cols, dimage, geo, ws)
    _add_bias(xp, dimage, bias)


def _flat_grads(xp, image, w, dimage, dw, geo, ws, bias=None):
    """Image and filter gradients (either may be None) in the flat layout, from the dY
    matrix ``_gradient_matrix`` left, through one im2col of it with flipped windows.

    Image point q (counted from the first input row) gets tap (a, b) of the flipped
    filters times dY at grid point q + top*W + a*dh*W + b*dw of the matrix buffer
    (taps whose dY column wraps to another row are zeroed); the same columns
    times the image give the filter gradient, flipped.
    """
    g, (kh, kw) = geo.group, geo.win.kernel
    (top, left), (height, width), dilation = geo.win.pads[:2], geo.win.size, geo.win.dilation[1]
    columns, batch_of_one = geo.image_columns, geo.batch == 1
    cols = _by_group(_flat_cols(xp, ws.matrix, geo, top * width,
                                ws.cols_matrix(geo.out_channels * kh * kw, columns),
                                lambda b: left - (kw - 1 - b) * dilation), g)
    flipped = ws.filters.reshape(g, 1, -1)
    image_rows = ws.pad[:, :columns].reshape(g, 1, columns) if ws.pad is not None else None
    if dw is not None:
        if batch_of_one:
            image_rows = image.reshape(g, 1, columns)
        else:
            _fill_flat(xp, ws.pad, _channel_major(image), geo, 0, 0)
        xp.matmul(image_rows, cols.transpose(0, 2, 1), out=flipped)
        xp.copyto(dw, ws.filters[:, :, ::-1, ::-1])
    if dimage is None:
        return
    xp.copyto(ws.filters, w[:, :, ::-1, ::-1])
    if batch_of_one:
        xp.matmul(flipped, cols, out=dimage.reshape(g, 1, columns))
        _add_bias(xp, dimage, bias)
    else:
        xp.matmul(flipped, cols, out=image_rows)
        _store(xp, _grid(ws.pad, geo, 0)[:, :, :height], dimage, bias)


def transposed_correlate(xp, x, w, y, geo, scratch, bias=None):
    """``y`` = transposed convolution of ``x``: the image gradient of correlating ``y``'s shape."""
    if geo.pointwise:
        _pointwise_image_grad(xp, x, w, y, geo)
        _add_bias(xp, y, bias)
        return
    ws = _ConvScratch(geo, scratch, y.dtype, ("data",))
    image_grad(xp, _gradient_matrix(xp, x, geo, ws), w, y, geo, ws, bias)


# -- pooling --------------------------------------------------------------------------------------

INDEX_DTYPE = np.dtype(np.int32)  # max pooling's index output: h * W + w in the input plane


def is_global(win):
    return win.out == (1, 1) and win.kernel == win.size and not any(win.pads)


def _taps(win):
    kh, kw = win.kernel
    return [(i, j) for i in range(kh) for j in range(kw)]


def _tap_dtype(win):
    return np.dtype(np.uint8 if len(_taps(win)) <= 256 else np.int32)


def pool_layout(shape, win, dtype, mode, backward):
    """Scratch of a pooling kernel: per-output temporaries."""
    if is_global(win):
        return ()
    per_output = (shape[0], shape[1]) + win.out
    layout = [(per_output, "bool")] if mode == "MAX" else []
    if backward:
        layout.append((per_output, dtype))
    elif mode == "MAX":  # the winning tap so far, and a candidate tap
        layout += [(per_output, _tap_dtype(win).str)] * 2
    return tuple(layout)


def _window_starts(xp, win):
    """Plane index h * W + w of each window's first tap (maybe in the padding), shape (oh, ow)."""
    (sh, sw), (oh, ow), width = win.stride, win.out, win.size[1]
    rows = xp.arange(oh, dtype=INDEX_DTYPE) * sh - win.pads[0]
    cols = xp.arange(ow, dtype=INDEX_DTYPE) * sw - win.pads[1]
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


def _global_pool(xp, x, y, index, mode):
    n, c = x.shape[:2]
    planes = x.reshape(n, c, -1)
    if mode == "MAX":
        xp.max(planes, axis=2, out=y.reshape(n, c))
        index.reshape(n, c)[...] = xp.argmax(planes, axis=2)
    else:  # a GEMV: much faster than a reduction over short rows
        weights = xp.full(planes.shape[2], 1.0 / planes.shape[2], dtype=x.dtype)
        xp.matmul(planes, weights, out=y.reshape(n, c))


def pool(xp, x, y, index, win, mode, count_include_pad, scratch):
    """Max or average pooling of ``x`` into ``y``; ``index`` gets each max's plane index.

    Taps read the unpadded input: the windows a tap sees padding or overhang in skip it.
    """
    if is_global(win):
        _global_pool(xp, x, y, index, mode)
        return
    views = carve(scratch, pool_layout(x.shape, win, x.dtype.str, mode, False))
    taps = _taps(win)
    if mode == "AVG":
        y.fill(0)
        for i, j in taps:
            spans = tap_slices(win, i, j)
            if spans is not None:
                out = y[spans[0]]
                xp.add(out, x[spans[1]], out=out)
        xp.multiply(y, _window_divisors(xp, win, count_include_pad, y.dtype), out=y)
        return
    mask, winner, candidate = views
    y.fill(-np.inf)
    winner.fill(0)
    for k, (i, j) in enumerate(taps):
        spans = tap_slices(win, i, j)
        if spans is None:
            continue
        outs, ins = spans
        tap, best = x[ins], y[outs]
        xp.greater(tap, best, out=mask[outs])
        xp.maximum(best, tap, out=best)
        # Taps come in increasing k: the last strictly greater one has the largest k,
        # so a maximum tracks the winner (the first max in row-major order, as Caffe).
        xp.multiply(mask[outs], winner.dtype.type(k), out=candidate[outs])
        xp.maximum(winner[outs], candidate[outs], out=winner[outs])
    width = win.size[1]
    tap_offsets = xp.asarray([i * width + j for i, j in taps], dtype=INDEX_DTYPE)
    xp.take(tap_offsets, winner, out=index)
    xp.add(index, _window_starts(xp, win), out=index)


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
    mask = next(views) if mode == "MAX" else None
    share = next(views)
    dx.fill(0)
    if mode == "AVG":
        xp.multiply(dy, _window_divisors(xp, win, count_include_pad, dy.dtype), out=share)
    starts = _window_starts(xp, win) if mode == "MAX" else None
    for i, j in _taps(win):
        spans = tap_slices(win, i, j)
        if spans is None:
            continue
        outs, ins = spans
        if mode == "MAX":
            xp.equal(index[outs], starts[outs[1:]] + (i * win.size[1] + j), out=mask[outs])
            xp.multiply(dy[outs], mask[outs], out=share[outs])
        target = dx[ins]
        xp.add(target, share[outs], out=target)


# -- im2col as an op (Caffe's Im2col layer) -------------------------------------------------------

def im2col(xp, x, cols, win):
    """``cols`` (N, C*kh*kw, oh, ow) = the window taps of zero-padded ``x``."""
    n, c = x.shape[:2]
    taps = cols.reshape((n, c) + win.kernel + win.out)
    if win.has_border:
        cols.fill(0)
    for i, j in _taps(win):
        spans = tap_slices(win, i, j)
        if spans is not None:
            xp.copyto(taps[:, :, i, j][spans[0]], x[spans[1]])


def col2im(xp, cols, dx, win):
    """``dx`` = the sum of the window taps of ``cols`` (N, C*kh*kw, oh, ow) at their pixels."""
    n, c = dx.shape[:2]
    taps = cols.reshape((n, c) + win.kernel + win.out)
    dx.fill(0)
    for i, j in _taps(win):
        spans = tap_slices(win, i, j)
        if spans is not None:
            target = dx[spans[1]]
            xp.add(target, taps[:, :, i, j][spans[0]], out=target)
