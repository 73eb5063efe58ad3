"""Vision layers: Convolution, Deconvolution, Pooling, SPP, Crop, Im2col, LRN.

Each lowers to the core NCHW ops (``Conv2d``, ``Conv2dTranspose``, ``Pool2d``,
``Crop``, ``Im2Col``, ``LRN``) with Caffe's geometry: convolution sizes round
down, pooling sizes round up (``round_mode``), and a pooling window that would
start in the bottom/right padding is dropped. For example the prototxt layer::

    layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
            convolution_param { num_output: 20 kernel_size: 5 stride: 1 } }

becomes ``Conv2d(data, conv1_w (20, C, 5, 5), conv1_b (20,))``.
"""
from __future__ import annotations

from dragon.vm.caffe.layers.common import layer_error, not_implemented
from dragon.vm.caffe.layers.fillers import proto_float
from dragon.vm.caffe.layers.registry import lowering


# -- geometry fields ----------------------------------------------------------------------------

def _spatial(ctx, param, name, default, hw_fields=None):
    """(h, w) from the ``hw_fields`` (``kernel_h``, ``kernel_w``) when set, else ``name``."""
    if hw_fields and (param.HasField(hw_fields[0]) or param.HasField(hw_fields[1])):
        return int(getattr(param, hw_fields[0])), int(getattr(param, hw_fields[1]))
    values = [int(v) for v in getattr(param, name)]
    if not values:
        return default, default
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise not_implemented(ctx, f"{name} with {len(values)} values {values}",
                          "only 2-d (height, width) geometry is supported")


def conv_geometry(ctx, p):
    """(kernel, stride, pad, dilation) pairs of a ConvolutionParameter."""
    if not (p.kernel_size or p.HasField("kernel_h") or p.HasField("kernel_w")):
        raise layer_error(ctx, "convolution_param needs kernel_size or kernel_h and kernel_w")
    kernel = _spatial(ctx, p, "kernel_size", 0, ("kernel_h", "kernel_w"))
    stride = _spatial(ctx, p, "stride", 1, ("stride_h", "stride_w"))
    pad = _spatial(ctx, p, "pad", 0, ("pad_h", "pad_w"))
    dilation = _spatial(ctx, p, "dilation", 1)
    if min(kernel) < 1 or min(stride) < 1 or min(dilation) < 1:
        raise layer_error(ctx, f"kernel {kernel}, stride {stride} and dilation {dilation} "
                               "must be positive")
    return kernel, stride, pad, dilation


def _check_4d(ctx, x, what="bottom"):
    if x.ndim != 4:
        raise not_implemented(ctx, f"a {x.ndim}-d {what} ('{ctx.param.bottom[0]}' {x.shape})",
                              "only 4-d NCHW blobs (2 spatial axes) are supported")


def _check_conv(ctx, p, x):
    if p.axis != 1:
        raise not_implemented(ctx, f"convolution_param.axis {p.axis}",
                              "only axis 1 (NCHW) is supported")
    _check_4d(ctx, x)
    if not p.HasField("num_output") or p.num_output < 1:
        raise layer_error(ctx, "convolution_param.num_output must be set and positive")
    group = int(p.group)
    if group < 1 or x.shape[1] % group or p.num_output % group:
        raise layer_error(ctx, f"group {group} must divide both the {x.shape[1]} input "
                               f"channels of '{ctx.param.bottom[0]}' {x.shape} and "
                               f"num_output {p.num_output}")
    return group


# -- layers -------------------------------------------------------------------------------------

@lowering("Convolution")
def convolution(ctx):
    """Convolution -> Conv2d; weights (num_output, C/group, kh, kw), bias (num_output,)."""
    p = ctx.param.convolution_param
    x = ctx.bottoms[0]
    group = _check_conv(ctx, p, x)
    kernel, stride, pad, dilation = conv_geometry(ctx, p)
    inputs = [x, ctx.blob(0, (p.num_output, x.shape[1] // group) + kernel, p.weight_filler)]
    if p.bias_term:
        inputs.append(ctx.blob(1, (p.num_output,), p.bias_filler))
    return [ctx.op("Conv2d", inputs, kernel_shape=list(kernel), strides=list(stride),
                   pads=list(pad), dilations=list(dilation), group=group)]


@lowering("Deconvolution")
def deconvolution(ctx):
    """Deconvolution -> Conv2dTranspose; weights (C_in, num_output/group, kh, kw)."""
    p = ctx.param.convolution_param
    x = ctx.bottoms[0]
    group = _check_conv(ctx, p, x)
    kernel, stride, pad, dilation = conv_geometry(ctx, p)
    inputs = [x, ctx.blob(0, (x.shape[1], p.num_output // group) + kernel, p.weight_filler)]
    if p.bias_term:
        inputs.append(ctx.blob(1, (p.num_output,), p.bias_filler))
    return [ctx.op("Conv2dTranspose", inputs, kernel_shape=list(kernel), strides=list(stride),
                   pads=list(pad), dilations=list(dilation), group=group)]


_POOL_METHODS = {0: "MAX", 1: "AVE", 2: "STOCHASTIC"}


def pooling_geometry(ctx, p, x):
    """(kernel, stride, pad) of a PoolingParameter on bottom ``x``."""
    if p.global_pooling:
        if p.HasField("kernel_size") or p.HasField("kernel_h") or p.HasField("kernel_w"):
            raise layer_error(ctx, "with global_pooling the kernel size may not be set")
        kernel = tuple(x.shape[2:])
    elif p.HasField("kernel_h") or p.HasField("kernel_w"):
        if not (p.HasField("kernel_h") and p.HasField("kernel_w")):
            raise layer_error(ctx, "pooling_param needs both kernel_h and kernel_w")
        kernel = (int(p.kernel_h), int(p.kernel_w))
    elif p.HasField("kernel_size"):
        kernel = (int(p.kernel_size),) * 2
    else:
        raise layer_error(ctx, "pooling_param needs kernel_size, kernel_h/kernel_w or "
                               "global_pooling")
    if p.HasField("pad_h") or p.HasField("pad_w"):
        pad = (int(p.pad_h), int(p.pad_w))
    else:
        pad = (int(p.pad),) * 2
    if p.HasField("stride_h") or p.HasField("stride_w"):
        stride = (int(p.stride_h), int(p.stride_w))
    else:
        stride = (int(p.stride),) * 2
    if p.global_pooling and (any(pad) or stride != (1, 1)):
        raise layer_error(ctx, f"with global_pooling pad must be 0 and stride 1, got pad {pad} "
                               f"and stride {stride}")
    if min(kernel) < 1 or min(stride) < 1:
        raise layer_error(ctx, f"kernel {kernel} and stride {stride} must be positive")
    if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
        raise layer_error(ctx, f"pad {pad} must be smaller than the kernel {kernel}")
    return kernel, stride, pad


def _pool(ctx, x, method, kernel, stride, pad, ceil_mode=True, global_pooling=False):
    mode = {"MAX": "MAX", "AVE": "AVG"}[method]
    y, index = ctx.op("Pool2d", [x], kernel_shape=list(kernel), strides=list(stride),
                      pads=list(pad), mode=mode, ceil_mode=ceil_mode,
                      global_pooling=global_pooling, count_include_pad=True)
    return y, index


@lowering("Pooling")
def pooling(ctx):
    """Pooling -> Pool2d (MAX, AVE; STOCHASTIC at TEST); a second top gets MAX's argmax mask."""
    p = ctx.param.pooling_param
    x = ctx.bottoms[0]
    _check_4d(ctx, x)
    kernel, stride, pad = pooling_geometry(ctx, p, x)
    method = _POOL_METHODS[int(p.pool)]
    ceil_mode = int(p.round_mode) == 0
    global_pooling = bool(p.global_pooling)
    if method == "STOCHASTIC":
        return [_stochastic_pool_test(ctx, x, kernel, stride, pad, ceil_mode)]
    y, index = _pool(ctx, x, method, kernel, stride, pad, ceil_mode, global_pooling)
    if ctx.num_tops == 1:
        return [y]
    if method != "MAX" or ctx.num_tops != 2:
        raise layer_error(ctx, f"{method} pooling has one top, got {ctx.num_tops}")
    return [y, ctx.op("Cast", [index], dtype="float32")]


def _stochastic_pool_test(ctx, x, kernel, stride, pad, ceil_mode):
    # Caffe's TEST-phase stochastic pooling weights each activation by its share of
    # the window's sum: sum(x^2) / sum(x). Both averages share one divisor.
    if ctx.phase != "TEST":
        raise not_implemented(ctx, "STOCHASTIC pooling in the TRAIN phase (sampling)",
                              "its TEST phase (probability-weighted average) is supported")
    if any(pad):
        raise layer_error(ctx, "STOCHASTIC pooling takes no padding")
    squares, _ = _pool(ctx, ctx.op("Square", [x]), "AVE", kernel, stride, pad, ceil_mode)
    sums, _ = _pool(ctx, x, "AVE", kernel, stride, pad, ceil_mode)
    return ctx.op("Div", [squares, sums])


@lowering("SPP")
def spatial_pyramid_pooling(ctx):
    """SPP: a pyramid of Pool2d over 1, 2x2, 4x4, ... bins, flattened and concatenated."""
    p = ctx.param.spp_param
    x = ctx.bottoms[0]
    _check_4d(ctx, x)
    method = {0: "MAX", 1: "AVE", 2: "STOCHASTIC"}[int(p.pool)]
    if method == "STOCHASTIC":
        raise not_implemented(ctx, "STOCHASTIC spatial pyramid pooling")
    height = int(p.pyramid_height)
    if height < 1:
        raise layer_error(ctx, "spp_param.pyramid_height must be >= 1")
    if height == 1:  # Caffe keeps the single pooling's 4-d output
        return [_spp_level(ctx, x, method, 0)]
    levels = [ctx.op("Flatten", [_spp_level(ctx, x, method, level)], axis=1, end_axis=-1)
              for level in range(height)]
    return [ctx.op("Concat", levels, axis=1)]


def _spp_level(ctx, x, method, level):
    bins = 2 ** level
    kernel, pad = [], []
    for size in x.shape[2:]:
        k = -(-size // bins)
        kernel.append(k)
        pad.append((k * bins - size + 1) // 2)
    if pad[0] >= kernel[0] or pad[1] >= kernel[1]:
        raise layer_error(ctx, f"pyramid level {level} of bottom {x.shape} needs pad {pad} "
                               f">= kernel {kernel}, which Caffe's pooling rejects too")
    y, _ = _pool(ctx, x, method, kernel, kernel, pad)
    return y


@lowering("Crop")
def crop(ctx):
    """Crop bottom 0 to bottom 1's shape from ``axis`` on, at ``offset`` -> Crop."""
    p = ctx.param.crop_param
    x, reference = ctx.bottoms[:2]
    axis = p.axis + x.ndim if p.axis < 0 else p.axis
    if not 0 <= axis < x.ndim:
        raise layer_error(ctx, f"crop_param.axis {p.axis} is out of range for bottom {x.shape}")
    offsets = [int(o) for o in p.offset]
    cropped = x.ndim - axis
    if len(offsets) not in (0, 1, cropped):
        raise layer_error(ctx, f"crop_param.offset has {len(offsets)} values; give 0, 1 or "
                               f"{cropped} (one per axis from {axis})")
    for i in range(axis, x.ndim):
        off = offsets[0] if len(offsets) == 1 else (offsets[i - axis] if offsets else 0)
        if reference.shape[i] + off > x.shape[i]:
            raise layer_error(ctx, f"crop of axis {i} to {reference.shape[i]} at offset {off} "
                                   f"does not fit bottom '{ctx.param.bottom[0]}' {x.shape}")
    return [ctx.op("Crop", [x, reference], axis=axis, offset=offsets)]


@lowering("Im2col")
def im2col(ctx):
    """Im2col -> Im2Col: (N, C*kh*kw, out_h, out_w) columns, Caffe's row order."""
    p = ctx.param.convolution_param
    x = ctx.bottoms[0]
    _check_4d(ctx, x)
    if p.axis != 1:
        raise not_implemented(ctx, f"convolution_param.axis {p.axis}",
                              "only axis 1 (NCHW) is supported")
    kernel, stride, pad, dilation = conv_geometry(ctx, p)
    return [ctx.op("Im2Col", [x], kernel_shape=list(kernel), strides=list(stride),
                   pads=list(pad), dilations=list(dilation))]


@lowering("LRN")
def local_response_normalization(ctx):
    """LRN -> LRN (ACROSS_CHANNELS or WITHIN_CHANNEL, Caffe's alpha / n scaling)."""
    p = ctx.param.lrn_param
    x = ctx.bottoms[0]
    _check_4d(ctx, x)
    size = int(p.local_size)
    if size % 2 == 0:
        raise layer_error(ctx, f"lrn_param.local_size must be odd, got {size}")
    within = int(p.norm_region) == 1
    return [ctx.op("LRN", [x], size=size, alpha=proto_float(p.alpha), beta=proto_float(p.beta),
                   k=1.0 if within else proto_float(p.k),
                   mode="within_channel" if within else "across_channels")]
