"""Vision ops on NCHW images: convolution, transposed convolution, pooling, im2col.

    y = dragon.ops.conv2d(x, w, b, strides=[2, 2], pads=[1, 1])
    y, argmax = dragon.ops.pool2d(y, kernel_shape=[3, 3], strides=[2, 2], mode="MAX")

Shapes follow Caffe: pads are 2 values (top/bottom, left/right) or 4 (top, left,
bottom, right); convolution sizes round down, pooling sizes round up unless
``ceil_mode=False``. The kernels live in ``vision_kernels``.
"""
from __future__ import annotations

import functools

import numpy as np

from dragon.core.errors import ShapeError
from dragon.ops import vision_kernels as vk
from dragon.ops.registry import REQUIRED, Spec, register, result_dtype

_WINDOW_ARGS = {"kernel_shape": [], "strides": [1, 1], "pads": [0, 0], "dilations": [1, 1]}
_CONV_ARGS = dict(_WINDOW_ARGS, group=1)
_DECONV_ARGS = dict(_CONV_ARGS, output_padding=[0, 0])
_POOL_ARGS = {"kernel_shape": [], "strides": [1, 1], "pads": [0, 0], "mode": "MAX",
              "global_pooling": False, "ceil_mode": True, "count_include_pad": True}
_IM2COL_ARGS = dict(_WINDOW_ARGS, kernel_shape=REQUIRED)
_GRAD_NEED = {"need": [1, 1, 1]}  # which of (dX, dW, db) a gradient op computes


# -- argument normalization --------------------------------------------------------------------

def _ints(value, name):
    values = [value] if isinstance(value, (int, float, np.integer)) else list(value)
    if any(int(v) != v for v in values):
        raise ShapeError(f"{name} must be integers, got {value!r}")
    return [int(v) for v in values]


def _pair(value, name, minimum):
    values = _ints(value, name)
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) < minimum:
        raise ShapeError(f"{name} must be 1 or 2 integers >= {minimum}, got {value!r}")
    return tuple(values)


def _pads(value):
    """(top, left, bottom, right) from 1, 2 (height, width) or 4 values."""
    values = _ints(value, "pads")
    if len(values) in (1, 2):
        values = (values * 2)[:2] * 2
    if len(values) != 4 or min(values) < 0:
        raise ShapeError(f"pads must be 1, 2 or 4 integers >= 0, got {value!r}")
    return tuple(values)


def _check_4d(**shapes):
    for name, shape in shapes.items():
        if len(shape) != 4:
            listed = ", ".join(f"{k} {tuple(s)}" for k, s in shapes.items())
            raise ShapeError(f"needs 4-d NCHW arrays, got {listed}")


def _check_kernel(kernel_shape, w_shape):
    if kernel_shape and _pair(kernel_shape, "kernel_shape", 1) != tuple(w_shape[2:]):
        raise ShapeError(f"kernel_shape {kernel_shape!r} differs from the weights' "
                         f"{tuple(w_shape)} spatial size {tuple(w_shape[2:])}")


# -- geometry (cached: kernels ask on every call) -----------------------------------------------

def _hashable(value):
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _window_key(args):
    """The window args as a cache key (checked by the cached functions themselves)."""
    return (_hashable(args["kernel_shape"]), _hashable(args["strides"]),
            _hashable(args["pads"]), _hashable(args["dilations"]))


@functools.lru_cache(maxsize=1024)
def _conv_geometry(x_shape, w_shape, kernel_shape, strides, pads, dilations, group):
    _check_4d(input=x_shape, weights=w_shape)
    _check_kernel(kernel_shape, w_shape)
    stride, dilation = _pair(strides, "strides", 1), _pair(dilations, "dilations", 1)
    pads, group = _pads(pads), int(group)
    c, (c_out, c_per_group) = x_shape[1], w_shape[:2]
    if group < 1 or c % group or c_out % group or c_per_group * group != c:
        raise ShapeError(f"input {tuple(x_shape)} has {c} channels but weights {tuple(w_shape)} "
                         f"with group {group} expect {c_per_group * group} (and C_out "
                         f"divisible by the group)")
    geo = vk.conv_geometry(tuple(x_shape), tuple(w_shape), stride, dilation, pads, group)
    if min(geo.win.out) < 1:
        raise ShapeError(f"kernel {tuple(w_shape[2:])} with dilation {dilation} does not fit "
                         f"input {tuple(x_shape)} padded by {pads}")
    return geo


def conv_geometry(x_shape, w_shape, args):
    """The ``ConvGeometry`` of Conv2d on these shapes with these (full) args."""
    return _conv_geometry(tuple(x_shape), tuple(w_shape), *_window_key(args), args["group"])


@functools.lru_cache(maxsize=1024)
def _deconv_geometry(x_shape, w_shape, kernel_shape, strides, pads, dilations, group,
                     output_padding):
    _check_4d(input=x_shape, weights=w_shape)
    _check_kernel(kernel_shape, w_shape)
    stride, dilation = _pair(strides, "strides", 1), _pair(dilations, "dilations", 1)
    pads, group = _pads(pads), int(group)
    extra = _pair(output_padding, "output_padding", 0)
    n, c_in, h, w = x_shape
    if group < 1 or w_shape[0] != c_in or c_in % group:
        raise ShapeError(f"input {tuple(x_shape)} has {c_in} channels but weights "
                         f"{tuple(w_shape)} (C_in, C_out/group, kh, kw) with group {group} "
                         f"expect {w_shape[0]}")
    if any(extra[a] >= max(stride[a], dilation[a]) for a in range(2)):
        raise ShapeError(f"output_padding {extra} must be smaller than the stride {stride} "
                         f"or the dilation {dilation}")
    kernel = tuple(w_shape[2:])
    size = tuple(stride[a] * ((h, w)[a] - 1) + dilation[a] * (kernel[a] - 1) + 1
                 - pads[a] - pads[a + 2] + extra[a] for a in range(2))
    if min(size) < 1:
        raise ShapeError(f"pads {pads} leave no output for input {tuple(x_shape)} and "
                         f"weights {tuple(w_shape)}")
    image = (n, w_shape[1] * group) + size
    return vk.conv_geometry(image, tuple(w_shape), stride, dilation, pads, group, out=(h, w))


def deconv_geometry(x_shape, w_shape, args):
    """The ``ConvGeometry`` whose image gradient is Conv2dTranspose on these shapes."""
    return _deconv_geometry(tuple(x_shape), tuple(w_shape), *_window_key(args), args["group"],
                            _hashable(args["output_padding"]))


@functools.lru_cache(maxsize=1024)
def _pool_windows(x_shape, kernel_shape, strides, pads, global_pooling, ceil_mode):
    if len(x_shape) != 4:
        raise ShapeError(f"needs a 4-d NCHW input, got {tuple(x_shape)}")
    size = tuple(x_shape[2:])
    stride, pads = _pair(strides, "strides", 1), _pads(pads)
    if global_pooling:
        if any(pads) or stride != (1, 1):
            raise ShapeError(f"global pooling takes no pads or strides, got pads {pads} and "
                             f"strides {stride}")
        kernel = size
    elif not kernel_shape:
        raise ShapeError("pooling needs kernel_shape unless global_pooling is set")
    else:
        kernel = _pair(kernel_shape, "kernel_shape", 1)
    if any(pads[a] >= kernel[a % 2] for a in range(4)):
        raise ShapeError(f"pads {pads} must be smaller than the kernel {kernel}")
    out = tuple(vk.window_count(size[a], kernel[a], stride[a], 1, pads[a], pads[a + 2],
                                ceil_mode) for a in range(2))
    if min(out) < 1:
        raise ShapeError(f"kernel {kernel} does not fit input {tuple(x_shape)} padded by {pads}")
    return vk.make_windows(size, kernel, stride, (1, 1), pads, out)


def pool_windows(x_shape, args):
    """The ``Windows`` of Pool2d on an input of ``x_shape``."""
    return _pool_windows(tuple(x_shape), _hashable(args["kernel_shape"]),
                         _hashable(args["strides"]), _hashable(args["pads"]),
                         bool(args["global_pooling"]), bool(args["ceil_mode"]))


@functools.lru_cache(maxsize=1024)
def _im2col_windows(x_shape, kernel_shape, strides, pads, dilations):
    if len(x_shape) != 4:
        raise ShapeError(f"needs a 4-d NCHW input, got {tuple(x_shape)}")
    kernel = _pair(kernel_shape, "kernel_shape", 1)
    stride, dilation = _pair(strides, "strides", 1), _pair(dilations, "dilations", 1)
    pads, size = _pads(pads), tuple(x_shape[2:])
    out = tuple(vk.window_count(size[a], kernel[a], stride[a], dilation[a], pads[a], pads[a + 2])
                for a in range(2))
    if min(out) < 1:
        raise ShapeError(f"kernel {kernel} with dilation {dilation} does not fit input "
                         f"{tuple(x_shape)} padded by {pads}")
    return vk.make_windows(size, kernel, stride, dilation, pads, out)


def im2col_windows(x_shape, args):
    return _im2col_windows(tuple(x_shape), *_window_key(args))


def _scratch_specs(layout):
    nbytes = vk.layout_bytes(layout)
    return [Spec((nbytes,), np.dtype(np.uint8))] if nbytes else []


def _window_args(args):
    return {k: args[k] for k in _WINDOW_ARGS}


def _conv_args(args):
    return {k: args[k] for k in _CONV_ARGS}


def _deconv_args(args):
    return {k: args[k] for k in _DECONV_ARGS}


# -- gradients with need flags ------------------------------------------------------------------

def _needed_inputs(g):
    return [int(g.needs(i)) for i in range(g.num_inputs)] + [0] * (3 - g.num_inputs)


def _spread(outputs, need, num_inputs):
    """The gradient op's outputs placed at the inputs ``need`` asked for (None elsewhere)."""
    outputs = iter(outputs if isinstance(outputs, list) else [outputs])
    return [next(outputs) if flag else None for flag in need[:num_inputs]]


def _grad_outputs(out, need):
    """(dX, dW, db) arrays of a gradient kernel's ``out``, None where not needed."""
    given = iter(out if isinstance(out, tuple) else (out,))
    return [next(given) if flag else None for flag in need]


def _grad_count(args):
    return max(1, sum(map(bool, args["need"])))


def _grad_specs(dy, x, w, c_out, need):
    specs = [x, w, Spec((c_out,), dy.dtype)]
    return [s.with_dtype(dy.dtype) for s, flag in zip(specs, need) if flag]


def _check_bias(b, c_out):
    if b is not None and tuple(b.shape) != (c_out,):
        raise ShapeError(f"bias {tuple(b.shape)} must have shape ({c_out},)")


def _bias_grad(xp, dy, db):
    if db is not None:
        xp.sum(dy, axis=(0, 2, 3), out=db)


def _conv_flops(geo):
    """Floating-point operations of one correlation (its GEMMs)."""
    (kh, kw), (oh, ow) = geo.win.kernel, geo.win.out
    return 2 * geo.batch * geo.out_channels * oh * ow * (geo.channels // geo.group) * kh * kw


def _grad_flops(geo, need):
    return _conv_flops(geo) * sum(map(bool, need[:2]))


# -- Conv2d --------------------------------------------------------------------------------------

@register("Conv2d", inputs=(2, 3), args=_CONV_ARGS)
def conv2d(xp, x, w, b=None, *, out, scratch=(), **args):
    """Y = conv(X, W) + b: grouped 2-d cross-correlation, NCHW, W (C_out, C/group, kh, kw)."""
    vk.correlate(xp, x, w, out, conv_geometry(x.shape, w.shape, args), scratch, b)


@conv2d.shape
def _(x, w, b=None, **args):
    geo = conv_geometry(x.shape, w.shape, args)
    _check_bias(b, geo.out_channels)
    return Spec((geo.batch, geo.out_channels) + geo.win.out, result_dtype(x, w))


@conv2d.scratch
def _(x, w, b=None, **args):
    geo = conv_geometry(x.shape, w.shape, args)
    return _scratch_specs(vk.conv_layout(geo, result_dtype(x, w).str, ("correlate",)))


@conv2d.flops
def _(x, w, b=None, **args):
    return _conv_flops(conv_geometry(x.shape, w.shape, args))


@conv2d.grad
def _(g):
    need = _needed_inputs(g)
    grads = g.op("Conv2dGradient", [g.dY(0), g.X(0), g.X(1)], need=need, **_conv_args(g.args))
    return _spread(grads, need, g.num_inputs)


def _conv_grad_tasks(need):
    return tuple(task for task, flag in (("data", need[0]), ("filter", need[1])) if flag)


@register("Conv2dGradient", inputs=3, outputs=_grad_count, args=dict(_CONV_ARGS, **_GRAD_NEED))
def conv2d_gradient(xp, dy, x, w, *, out, need, scratch=(), **args):
    """dX, dW, db of Conv2d from (dY, X, W): those the ``need`` flags ask for, in that order."""
    geo = conv_geometry(x.shape, w.shape, args)
    dx, dw, db = _grad_outputs(out, need)
    _bias_grad(xp, dy, db)
    if dx is not None or dw is not None:
        vk.correlation_grads(xp, x, dy, w, dx, dw, geo, scratch)


@conv2d_gradient.shape
def _(dy, x, w, *, need, **args):
    geo = conv_geometry(x.shape, w.shape, args)
    expected = (geo.batch, geo.out_channels) + geo.win.out
    if tuple(dy.shape) != expected:
        raise ShapeError(f"dY has shape {tuple(dy.shape)}, expected {expected}")
    return _grad_specs(dy, x, w, geo.out_channels, need)


@conv2d_gradient.flops
def _(dy, x, w, *, need, **args):
    return _grad_flops(conv_geometry(x.shape, w.shape, args), need)


@conv2d_gradient.scratch
def _(dy, x, w, *, need, **args):
    geo = conv_geometry(x.shape, w.shape, args)
    tasks = _conv_grad_tasks(need)
    return _scratch_specs(vk.conv_layout(geo, dy.dtype.str, tasks)) if tasks else []


# -- Conv2dTranspose ------------------------------------------------------------------------------

@register("Conv2dTranspose", inputs=(2, 3), args=_DECONV_ARGS)
def conv2d_transpose(xp, x, w, b=None, *, out, scratch=(), **args):
    """Y = deconv(X, W) + b: transposed conv (Caffe's Deconvolution), W (C_in, C_out/g, kh, kw)."""
    vk.transposed_correlate(xp, x, w, out, deconv_geometry(x.shape, w.shape, args), scratch, b)


@conv2d_transpose.shape
def _(x, w, b=None, **args):
    geo = deconv_geometry(x.shape, w.shape, args)
    _check_bias(b, geo.channels)
    return Spec((geo.batch, geo.channels) + geo.win.size, result_dtype(x, w))


@conv2d_transpose.scratch
def _(x, w, b=None, **args):
    geo = deconv_geometry(x.shape, w.shape, args)
    return _scratch_specs(vk.conv_layout(geo, result_dtype(x, w).str, ("data",)))


@conv2d_transpose.flops
def _(x, w, b=None, **args):
    return _conv_flops(deconv_geometry(x.shape, w.shape, args))


@conv2d_transpose.grad
def _(g):
    need = _needed_inputs(g)
    grads = g.op("Conv2dTransposeGradient", [g.dY(0), g.X(0), g.X(1)], need=need,
                 **_deconv_args(g.args))
    return _spread(grads, need, g.num_inputs)


def _deconv_grad_tasks(need):
    return tuple(task for task, flag in (("correlate", need[0]), ("filter", need[1])) if flag)


@register("Conv2dTransposeGradient", inputs=3, outputs=_grad_count,
          args=dict(_DECONV_ARGS, **_GRAD_NEED))
def conv2d_transpose_gradient(xp, dy, x, w, *, out, need, scratch=(), **args):
    """dX, dW, db of Conv2dTranspose from (dY, X, W): dX = conv(dY, W), for the ``need`` flags."""
    geo = deconv_geometry(x.shape, w.shape, args)
    dx, dw, db = _grad_outputs(out, need)
    _bias_grad(xp, dy, db)
    if dw is not None:  # before dX: both use the same scratch
        vk.correlation_grads(xp, dy, x, w, None, dw, geo, scratch)
    if dx is not None:
        vk.correlate(xp, dy, w, dx, geo, scratch)


@conv2d_transpose_gradient.shape
def _(dy, x, w, *, need, **args):
    geo = deconv_geometry(x.shape, w.shape, args)
    expected = (geo.batch, geo.channels) + geo.win.size
    if tuple(dy.shape) != expected:
        raise ShapeError(f"dY has shape {tuple(dy.shape)}, expected {expected}")
    return _grad_specs(dy, x, w, geo.channels, need)


@conv2d_transpose_gradient.flops
def _(dy, x, w, *, need, **args):
    return _grad_flops(deconv_geometry(x.shape, w.shape, args), need)


@conv2d_transpose_gradient.scratch
def _(dy, x, w, *, need, **args):
    geo = deconv_geometry(x.shape, w.shape, args)
    tasks = _deconv_grad_tasks(need)
    return _scratch_specs(vk.conv_layout(geo, dy.dtype.str, tasks)) if tasks else []


# -- Pool2d -------------------------------------------------------------------------------------

def _mode(mode):
    if mode not in ("MAX", "AVG"):
        raise ShapeError(f"pooling mode must be 'MAX' or 'AVG', got {mode!r}")
    return mode


@register("Pool2d", outputs=2, recompute=True, args=_POOL_ARGS)
def pool2d(xp, x, *, out, mode, count_include_pad, scratch=(), **args):
    """Y = max or mean of X over each window (Caffe's Pooling); output 1: each max's h*W + w."""
    y, index = out
    vk.pool(xp, x, y, index, pool_windows(x.shape, args), mode, count_include_pad, scratch)


@pool2d.shape
def _(x, *, mode, count_include_pad, **args):
    win = pool_windows(x.shape, args)
    y_shape = tuple(x.shape[:2]) + win.out
    index_shape = y_shape if _mode(mode) == "MAX" else (0,)
    return [x.with_shape(y_shape), Spec(index_shape, vk.INDEX_DTYPE)]


@pool2d.scratch
def _(x, *, mode, count_include_pad, **args):
    win = pool_windows(x.shape, args)
    return _scratch_specs(vk.pool_layout(x.shape, win, x.dtype.str, mode, False))


@pool2d.grad
def _(g):
    return [g.op("Pool2dGradient", [g.X(0), g.dY(0), g.Y(1)], **g.args)]


@register("Pool2dGradient", inputs=3, args=_POOL_ARGS)
def pool2d_gradient(xp, x, dy, index, *, out, mode, count_include_pad, scratch=(), **args):
    """dX of Pool2d from (X, dY, max index): dY routed to each max, or spread over each window."""
    vk.pool_grad(xp, x, dy, index, out, pool_windows(x.shape, args), mode, count_include_pad,
                 scratch)


@pool2d_gradient.shape
def _(x, dy, index, *, mode, count_include_pad, **args):
    win = pool_windows(x.shape, args)
    expected = tuple(x.shape[:2]) + win.out
    if tuple(dy.shape) != expected:
        raise ShapeError(f"dY has shape {tuple(dy.shape)}, expected {expected}")
    if _mode(mode) == "MAX" and tuple(index.shape) != expected:
        raise ShapeError(f"the max index has shape {tuple(index.shape)}, expected {expected}")
    return x.with_dtype(dy.dtype)


@pool2d_gradient.scratch
def _(x, dy, index, *, mode, count_include_pad, **args):
    win = pool_windows(x.shape, args)
    return _scratch_specs(vk.pool_layout(x.shape, win, dy.dtype.str, mode, True))


# -- Im2Col / Col2Im ------------------------------------------------------------------------------

@register("Im2Col", recompute=True, args=_IM2COL_ARGS)
def im2col(xp, x, *, out, **args):
    """Y (N, C*kh*kw, oh, ow) = window taps of zero-padded X (Caffe's Im2col), row (c*kh+i)*kw+j."""
    vk.im2col(xp, x, out, im2col_windows(x.shape, args))


@im2col.shape
def _(x, **args):
    win = im2col_windows(x.shape, args)
    kh, kw = win.kernel
    return x.with_shape((x.shape[0], x.shape[1] * kh * kw) + win.out)


@im2col.grad
def _(g):
    return [g.op("Col2Im", [g.dY(0), g.X(0)], **_window_args(g.args))]


@register("Col2Im", inputs=2, args=_IM2COL_ARGS)
def col2im(xp, cols, x, *, out, **args):
    """Y (shaped like X) = the columns of Im2Col summed back onto the pixels they came from."""
    vk.col2im(xp, cols, out, im2col_windows(x.shape, args))


@col2im.shape
def _(cols, x, **args):
    win = im2col_windows(x.shape, args)
    kh, kw = win.kernel
    expected = (x.shape[0], x.shape[1] * kh * kw) + win.out
    if tuple(cols.shape) != expected:
        raise ShapeError(f"columns have shape {tuple(cols.shape)}, but Im2Col of {tuple(x.shape)} "
                         f"gives {expected}")
    return x.with_dtype(cols.dtype)


@col2im.grad
def _(g):
    return [g.op("Im2Col", [g.dY(0)], **_window_args(g.args)), None]
