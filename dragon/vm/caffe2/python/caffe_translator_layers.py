"""Caffe layer -> Caffe2 operator translations, one function per Caffe layer type.

A translation reads one ``caffe_pb2.LayerParameter`` and adds Caffe2 operators
and parameter tensors through a ``LayerContext`` (``caffe_translator`` makes
one per layer)::

    @TranslatorRegistry.Register("TanH")
    def _tanh(layer, ctx):
        ctx.op("Tanh", [layer.bottom[0]], [layer.top[0]])

``ctx.blobs()`` gives the layer's pretrained blobs as float32 arrays,
``ctx.param(suffix, array)`` adds a parameter tensor named ``<layer>_<suffix>``,
``ctx.shape(blob)`` the blob's shape when the input shapes are known. Blobs keep
their Caffe names; auxiliary outputs Caffe has no top for are named
``_<top>_<tag>``.
"""
from __future__ import annotations

import math

import numpy as np

from dragon.vm.caffe.proto import caffe_pb2

#: Caffe2's ``legacy_pad`` value for Caffe's pooling geometry (ceil rounding).
CAFFE_LEGACY_POOLING = 3

#: Layers that only name the net's inputs: their tops become external inputs.
INPUT_LAYERS = ("Input", "Data", "ImageData", "HDF5Data", "MemoryData", "WindowData")


class TranslatorRegistry:
    """Caffe layer type -> translation function ``fn(layer, ctx)``.

    >>> @TranslatorRegistry.Register("Exp")   # base e, scale 1, shift 0 only
    ... def _exp(layer, ctx):
    ...     ctx.op("Exp", [layer.bottom[0]], [layer.top[0]])
    """

    registry_: dict = {}

    @classmethod
    def Register(cls, *layer_types):  # noqa: N802 - Caffe2's name
        def wrap(fn):
            for layer_type in layer_types:
                cls.registry_[layer_type] = fn
            return fn
        return wrap

    @classmethod
    def Get(cls, layer):  # noqa: N802
        """The translation of ``layer``; NotImplementedError naming the layer and its type."""
        fn = cls.registry_.get(layer.type)
        if fn is None:
            raise NotImplementedError(
                f"layer '{layer.name}' (type {layer.type}): the Caffe-to-Caffe2 translator does "
                f"not support this layer type; supported: {', '.join(sorted(cls.registry_))}")
        return fn


register = TranslatorRegistry.Register


def proto_float(value) -> float:
    """A proto float field as the decimal written in the prototxt (0.0001, not 9.99e-05)."""
    return float(str(np.float32(value)))


def _unsupported(layer, what, hint=""):
    return NotImplementedError(f"layer '{layer.name}' (type {layer.type}): {what} is not "
                               f"supported by the Caffe-to-Caffe2 translator"
                               + (f"; {hint}" if hint else ""))


def _error(layer, message):
    return ValueError(f"layer '{layer.name}' (type {layer.type}): {message}")


def _aux(top, tag):
    return f"_{top}_{tag}"


def _canonical(layer, ctx, axis, blob):
    """A Caffe axis (negative counts from the end) as an index, using the blob's rank."""
    if axis >= 0:
        return axis
    shape = ctx.require_shape(blob, f"a negative axis ({axis})")
    return axis + len(shape)


# -- window geometry ----------------------------------------------------------------------------

def _pair(layer, values, h, w, name, default):
    if h is not None or w is not None:
        return int(h if h is not None else default), int(w if w is not None else default)
    values = [int(v) for v in values]
    if not values:
        return default, default
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    raise _unsupported(layer, f"{name} with {len(values)} spatial axes", "only 2-d is")


def _field(param, name):
    return getattr(param, name) if param.HasField(name) else None


def window_args(kernel, stride=(1, 1), pad=(0, 0, 0, 0), dilation=(1, 1)):
    """Caffe2 arguments of a 2-d window: ``kernel`` or ``kernel_h``/``kernel_w``, and so on.

    ``pad`` is (top, left, bottom, right).
    """
    args = {}
    for name, (h, w), default in (("kernel", kernel, None), ("stride", stride, 1),
                                  ("dilation", dilation, 1)):
        if h == w == default:
            continue
        if h == w:
            args[name] = int(h)
        else:
            args[f"{name}_h"], args[f"{name}_w"] = int(h), int(w)
    if len(set(pad)) == 1:
        if pad[0]:
            args["pad"] = int(pad[0])
    else:
        args.update(pad_t=int(pad[0]), pad_l=int(pad[1]), pad_b=int(pad[2]),
                    pad_r=int(pad[3]))
    return args


def _conv_geometry(layer, p):
    if p.axis != 1:
        raise _unsupported(layer, f"convolution_param.axis {p.axis}", "only NCHW (axis 1) is")
    kernel = _pair(layer, p.kernel_size, _field(p, "kernel_h"), _field(p, "kernel_w"),
                   "kernel_size", 0)
    if min(kernel) < 1:
        raise _error(layer, "convolution_param needs kernel_size or kernel_h and kernel_w")
    stride = _pair(layer, p.stride, _field(p, "stride_h"), _field(p, "stride_w"), "stride", 1)
    pad = _pair(layer, p.pad, _field(p, "pad_h"), _field(p, "pad_w"), "pad", 0)
    dilation = _pair(layer, p.dilation, None, None, "dilation", 1)
    return kernel, stride, pad * 2, dilation


# -- inputs -------------------------------------------------------------------------------------

@register(*INPUT_LAYERS)
def _input(layer, ctx):
    """No operator: the tops are external inputs (shaped by ``input_param`` if given)."""
    shapes = [tuple(int(d) for d in s.dim) for s in layer.input_param.shape]
    for k, top in enumerate(layer.top):
        shape = shapes[k] if k < len(shapes) else (shapes[0] if len(shapes) == 1 else None)
        ctx.add_input(top, shape)


# -- vision -------------------------------------------------------------------------------------

@register("Convolution")
def _convolution(layer, ctx):
    """Convolution -> Conv; weights (num_output, C/group, kh, kw) as Caffe stores them."""
    p = layer.convolution_param
    kernel, stride, pad, dilation = _conv_geometry(layer, p)
    blobs = ctx.blobs(2 if p.bias_term else 1)
    group = int(p.group)
    weights = blobs[0].reshape((int(p.num_output), -1) + kernel)
    inputs = [layer.bottom[0], ctx.param("w", weights)]
    if p.bias_term:
        inputs.append(ctx.param("b", blobs[1].reshape(-1)))
    args = window_args(kernel, stride, pad, dilation)
    if group != 1:
        args["group"] = group
    ctx.op("Conv", inputs, [layer.top[0]], order="NCHW", **args)


@register("Deconvolution")
def _deconvolution(layer, ctx):
    """Deconvolution -> ConvTranspose; Caffe's (C_in, num_output/group, kh, kw) weights fit."""
    p = layer.convolution_param
    kernel, stride, pad, dilation = _conv_geometry(layer, p)
    if dilation != (1, 1):
        raise _unsupported(layer, f"dilation {dilation}", "Caffe2's ConvTranspose has none")
    blobs = ctx.blobs(2 if p.bias_term else 1)
    weights = blobs[0].reshape((blobs[0].shape[0], -1) + kernel)
    # Caffe2's ConvTranspose always reads a bias.
    bias = blobs[1].reshape(-1) if p.bias_term else np.zeros(int(p.num_output), np.float32)
    args = window_args(kernel, stride, pad)
    if p.group != 1:
        args["group"] = int(p.group)
    ctx.op("ConvTranspose", [layer.bottom[0], ctx.param("w", weights), ctx.param("b", bias)],
           [layer.top[0]], order="NCHW", **args)


def caffe_pooled_size(size, kernel, stride, pad):
    """Caffe's pooled size: ceil rounding, minus a last window starting in the padding."""
    out = -(-(size + 2 * pad - kernel) // stride) + 1
    if pad and (out - 1) * stride >= size + pad:
        out -= 1
    return out


@register("Pooling")
def _pooling(layer, ctx):
    """Pooling -> MaxPool/AveragePool; Caffe's ceil rounding is ``legacy_pad=3``.

    With ``remove_legacy_pad`` a max pooling gets the extra bottom/right padding
    the ceil rounding implies instead (shapes must be known).
    """
    p = layer.pooling_param
    method = caffe_pb2.PoolingParameter.PoolMethod.Name(p.pool)
    if method == "STOCHASTIC":
        raise _unsupported(layer, "STOCHASTIC pooling")
    if len(layer.top) > 1:
        raise _unsupported(layer, "a second top (the max pooling mask)")
    op_type = "MaxPool" if method == "MAX" else "AveragePool"
    args = {"order": "NCHW"}
    if p.global_pooling:
        ctx.op(op_type, [layer.bottom[0]], [layer.top[0]], global_pooling=1, **args)
        return
    if p.HasField("kernel_h") or p.HasField("kernel_w"):
        kernel = (int(p.kernel_h), int(p.kernel_w))
    elif p.HasField("kernel_size"):
        kernel = (int(p.kernel_size),) * 2
    else:
        raise _error(layer, "pooling_param needs kernel_size, kernel_h/kernel_w or "
                            "global_pooling")
    pad = (int(p.pad_h), int(p.pad_w)) if p.HasField("pad_h") or p.HasField("pad_w") \
        else (int(p.pad),) * 2
    stride = (int(p.stride_h), int(p.stride_w)) if p.HasField("stride_h") or \
        p.HasField("stride_w") else (int(p.stride),) * 2
    pads = list(pad) * 2
    ceil = p.round_mode == caffe_pb2.PoolingParameter.CEIL
    if ceil and ctx.remove_legacy_pad:
        pads, ceil = _explicit_padding(layer, ctx, op_type, kernel, stride, pad)
    if ceil:
        args["legacy_pad"] = CAFFE_LEGACY_POOLING
    elif op_type == "AveragePool" and any(pads):
        args["count_include_pad"] = 1  # Caffe divides by the padded window size
    ctx.op(op_type, [layer.bottom[0]], [layer.top[0]],
           **window_args(kernel, stride, tuple(pads)), **args)


def _explicit_padding(layer, ctx, op_type, kernel, stride, pad):
    """(pads, still needs legacy_pad) giving Caffe's output size with floor rounding."""
    shape = ctx.require_shape(layer.bottom[0], "remove_legacy_pad")
    extra = []
    for size, k, s, p in zip(shape[2:], kernel, stride, pad):
        # the least padding after which floor rounding reaches the last Caffe window
        extra.append(max(0, (caffe_pooled_size(size, k, s, p) - 1) * s + k - size - 2 * p))
    pads = [pad[0], pad[1], pad[0] + extra[0], pad[1] + extra[1]]
    if not any(extra):
        return pads, False
    if op_type == "AveragePool":
        # More padding would change the divisor of the last windows.
        ctx.warn(f"layer '{layer.name}': kept legacy_pad, an average pooling cannot take "
                 f"Caffe's rounding as extra padding")
        return list(pad) * 2, True
    return pads, False


@register("LRN")
def _lrn(layer, ctx):
    """LRN (ACROSS_CHANNELS) -> LRN(size, alpha, beta, bias=k); both scale alpha by 1/size."""
    p = layer.lrn_param
    if p.norm_region != caffe_pb2.LRNParameter.ACROSS_CHANNELS:
        raise _unsupported(layer, "WITHIN_CHANNEL normalization", "Caffe2's LRN works "
                                  "across channels only")
    ctx.op("LRN", [layer.bottom[0]], [layer.top[0]], size=int(p.local_size),
           alpha=proto_float(p.alpha), beta=proto_float(p.beta), bias=proto_float(p.k),
           order="NCHW")


@register("Crop")
def _crop(layer, ctx):
    """Crop -> Slice of bottom 0 to bottom 1's shape from ``axis`` on (shapes must be known)."""
    p = layer.crop_param
    x_shape = ctx.require_shape(layer.bottom[0], "Crop")
    ref_shape = ctx.require_shape(layer.bottom[1], "Crop")
    axis = p.axis + len(x_shape) if p.axis < 0 else p.axis
    cropped = len(x_shape) - axis
    offsets = [int(o) for o in p.offset]
    if len(offsets) not in (0, 1, cropped):
        raise _error(layer, f"crop_param.offset has {len(offsets)} values; give 0, 1 or "
                            f"{cropped}")
    offsets = offsets * cropped if len(offsets) == 1 else (offsets or [0] * cropped)
    starts = [0] * axis + offsets
    ends = [-1] * axis + [o + d for o, d in zip(offsets, ref_shape[axis:])]
    ctx.op("Slice", [layer.bottom[0]], [layer.top[0]], starts=starts, ends=ends)


# -- common -------------------------------------------------------------------------------------

@register("InnerProduct")
def _inner_product(layer, ctx):
    """InnerProduct -> FC (flattening at ``axis``); weights (num_output, K)."""
    p = layer.inner_product_param
    blobs = ctx.blobs(2 if p.bias_term else 1)
    n = int(p.num_output)
    weights = blobs[0].reshape(-1, n).T if p.transpose else blobs[0].reshape(n, -1)
    inputs = [layer.bottom[0], ctx.param("w", np.ascontiguousarray(weights))]
    if p.bias_term:
        inputs.append(ctx.param("b", blobs[1].reshape(-1)))
    else:
        inputs.append(ctx.param("b", np.zeros(n, np.float32)))  # Caffe2's FC reads a bias
    axis = _canonical(layer, ctx, p.axis, layer.bottom[0])
    ctx.op("FC", inputs, [layer.top[0]], **({"axis": axis} if axis != 1 else {}))


@register("BatchNorm")
def _batch_norm(layer, ctx):
    """BatchNorm -> SpatialBN: mean and variance divided by the scale factor, scale 1, bias 0.

    Test mode follows Caffe: ``use_global_stats`` when set, else the translation's
    ``is_test``.
    """
    p = layer.batch_norm_param
    mean, var, factor = ctx.blobs(3)
    factor = float(factor.reshape(-1)[0])
    inverse = 0.0 if factor == 0 else 1.0 / factor  # Caffe: a factor of 0 zeroes the statistics
    channels = mean.size
    is_test = p.use_global_stats if p.HasField("use_global_stats") else ctx.is_test
    inputs = [layer.bottom[0], ctx.param("s", np.ones(channels, np.float32)),
              ctx.param("b", np.zeros(channels, np.float32)),
              ctx.param("rm", (mean.reshape(-1) * inverse).astype(np.float32)),
              ctx.param("riv", (var.reshape(-1) * inverse).astype(np.float32))]
    outputs = [layer.top[0]]
    if not is_test:
        outputs += [inputs[3], inputs[4], _aux(layer.top[0], "saved_mean"),
                    _aux(layer.top[0], "saved_var")]
    ctx.op("SpatialBN", inputs, outputs, is_test=int(bool(is_test)),
           epsilon=proto_float(p.eps), momentum=proto_float(p.moving_average_fraction),
           order="NCHW")


def _broadcast(layer, ctx, axis, operand_shape):
    """``broadcast=1`` (and ``axis``) for a Caffe2 Mul/Add whose B spans axes from ``axis``.

    A one-value B needs no axis: Caffe2 broadcasts it as a scalar.
    """
    if operand_shape is not None and math.prod(operand_shape) == 1:
        return {"broadcast": 1}
    return {"broadcast": 1, "axis": _canonical(layer, ctx, axis, layer.bottom[0])}


@register("Scale")
def _scale(layer, ctx):
    """Scale -> Mul (then Add for the bias) with ``broadcast=1, axis``."""
    p = layer.scale_param
    x, top = layer.bottom[0], layer.top[0]
    if len(layer.bottom) > 1:
        gamma = layer.bottom[1]
        gamma_shape = ctx.shape(gamma)
        bias = ctx.blobs(1)[0] if p.bias_term else None
    else:
        blobs = ctx.blobs(2 if p.bias_term else 1)
        gamma_shape = blobs[0].shape or (1,)
        gamma = ctx.param("w", blobs[0].reshape(gamma_shape))
        bias = blobs[1] if p.bias_term else None
    args = _broadcast(layer, ctx, p.axis, gamma_shape)
    ctx.op("Mul", [x, gamma], [top], **args)
    if bias is not None:
        b = ctx.param("b", bias.reshape(bias.shape or (1,)))
        ctx.op("Add", [top, b], [top], **_broadcast(layer, ctx, p.axis, bias.shape))


@register("Bias")
def _bias(layer, ctx):
    """Bias -> Add with ``broadcast=1, axis``."""
    p = layer.bias_param
    if len(layer.bottom) > 1:
        b, shape = layer.bottom[1], ctx.shape(layer.bottom[1])
    else:
        blob = ctx.blobs(1)[0]
        shape = blob.shape or (1,)
        b = ctx.param("b", blob.reshape(shape))
    ctx.op("Add", [layer.bottom[0], b], [layer.top[0]], **_broadcast(layer, ctx, p.axis, shape))


@register("Softmax")
def _softmax(layer, ctx):
    """Softmax -> Softmax; over one axis with more after it, Transpose it last around it.

    Caffe2's Softmax normalizes over every axis from ``axis`` on, Caffe's over one.
    """
    x, top = layer.bottom[0], layer.top[0]
    p = layer.softmax_param
    shape = ctx.shape(x)
    if shape is None:
        if p.axis < 0:
            ctx.require_shape(x, f"softmax_param.axis {p.axis}")
        ctx.op("Softmax", [x], [top], **({"axis": p.axis} if p.axis != 1 else {}))
        return
    axis = p.axis % len(shape)
    if math.prod(shape[axis + 1:]) == 1:
        ctx.op("Softmax", [x], [top], **({"axis": axis} if axis != 1 else {}))
        return
    last = len(shape) - 1
    perm = [a for a in range(len(shape)) if a != axis] + [axis]
    moved = ctx.op("Transpose", [x], [_aux(top, "axis_last")], axes=perm)
    prob = ctx.op("Softmax", moved, [_aux(top, "softmax")], axis=last)
    ctx.op("Transpose", prob, [top], axes=[int(i) for i in np.argsort(perm)])


@register("Concat")
def _concat(layer, ctx):
    """Concat -> Concat along ``axis`` (or ``concat_dim``); outputs the top and its split info."""
    p = layer.concat_param
    axis = p.concat_dim if p.HasField("concat_dim") else p.axis
    axis = _canonical(layer, ctx, axis, layer.bottom[0])
    ctx.op("Concat", list(layer.bottom), [layer.top[0], _aux(layer.top[0], "dims")], axis=axis)


@register("Slice")
def _slice(layer, ctx):
    """Slice -> Split at the ``slice_point``s (or in equal parts) along ``axis``."""
    p = layer.slice_param
    axis = p.slice_dim if p.HasField("slice_dim") else p.axis
    axis = _canonical(layer, ctx, axis, layer.bottom[0])
    args = {"axis": axis}
    points = [int(v) for v in p.slice_point]
    if points:
        dim = ctx.require_shape(layer.bottom[0], "Slice with slice_point")[axis]
        bounds = [0] + points + [dim]
        args["split"] = [b - a for a, b in zip(bounds, bounds[1:])]
    ctx.op("Split", [layer.bottom[0]], list(layer.top), **args)


@register("Split")
def _split(layer, ctx):
    """Split: Caffe2 blobs may be read many times; each differently named top is a Copy."""
    for top in layer.top:
        if top != layer.bottom[0]:
            ctx.op("Copy", [layer.bottom[0]], [top])


@register("Flatten")
def _flatten(layer, ctx):
    """Flatten -> Flatten (axis 1 to the end), else Reshape with 0 (keep) for leading axes."""
    p = layer.flatten_param
    x, top = layer.bottom[0], layer.top[0]
    if p.axis == 1 and p.end_axis == -1:
        ctx.op("Flatten", [x], [top], axis=1)
        return
    shape = ctx.require_shape(x, f"Flatten of axes {p.axis}..{p.end_axis}")
    axis, end = p.axis % len(shape), p.end_axis % len(shape)
    dims = [0] * axis + [-1] + list(shape[end + 1:])
    ctx.op("Reshape", [x], [top, _aux(top, "old_shape")], shape=dims)


@register("Reshape")
def _reshape(layer, ctx):
    """Reshape -> Reshape; 0 copies and -1 infers a dimension in both frameworks."""
    p = layer.reshape_param
    x, top = layer.bottom[0], layer.top[0]
    dims = [int(d) for d in p.shape.dim]
    if p.axis >= 0 and p.num_axes == -1:
        shape = [0] * p.axis + dims
    else:
        x_shape = ctx.require_shape(x, f"reshape_param axis {p.axis}, num_axes {p.num_axes}")
        start = p.axis + len(x_shape) + 1 if p.axis < 0 else p.axis
        end = len(x_shape) if p.num_axes == -1 else start + p.num_axes
        shape = [0] * start + dims + list(x_shape[end:])
    ctx.op("Reshape", [x], [top, _aux(top, "old_shape")], shape=shape)


_ELTWISE = {caffe_pb2.EltwiseParameter.PROD: "Mul", caffe_pb2.EltwiseParameter.MAX: "Max"}


@register("Eltwise")
def _eltwise(layer, ctx):
    """Eltwise -> Sum (after a Scale of each input whose coefficient is not 1), Mul or Max."""
    p = layer.eltwise_param
    bottoms, top = list(layer.bottom), layer.top[0]
    if p.operation == caffe_pb2.EltwiseParameter.SUM:
        coeffs = [proto_float(c) for c in p.coeff] or [1.0] * len(bottoms)
        if len(coeffs) != len(bottoms):
            raise _error(layer, f"eltwise_param.coeff has {len(coeffs)} values for "
                                f"{len(bottoms)} bottoms")
        terms = []
        for k, (b, c) in enumerate(zip(bottoms, coeffs)):
            terms += [b] if c == 1.0 else ctx.op("Scale", [b], [_aux(top, f"term{k}")], scale=c)
        ctx.op("Sum", terms, [top])
    elif p.coeff:
        raise _error(layer, "eltwise_param.coeff is only for SUM")
    elif _ELTWISE[p.operation] == "Max":
        ctx.op("Max", bottoms, [top])
    else:
        product = bottoms[0]
        for k, b in enumerate(bottoms[1:], start=1):
            out = top if k == len(bottoms) - 1 else _aux(top, f"product{k}")
            product = ctx.op("Mul", [product, b], [out])[0]
        if len(bottoms) == 1:
            ctx.op("Copy", bottoms, [top])


# -- neurons ------------------------------------------------------------------------------------

def _unary(caffe2_type):
    def translate(layer, ctx):
        ctx.op(caffe2_type, [layer.bottom[0]], [layer.top[0]])
    translate.__doc__ = f"-> {caffe2_type}"
    return translate


for _layer_type, _caffe2_type in (("Sigmoid", "Sigmoid"), ("TanH", "Tanh"), ("AbsVal", "Abs"),
                                  ("BNLL", "Softplus")):
    register(_layer_type)(_unary(_caffe2_type))


@register("ReLU")
def _relu(layer, ctx):
    """ReLU -> Relu, or LeakyRelu(alpha) for a negative_slope."""
    slope = proto_float(layer.relu_param.negative_slope)
    if slope:
        ctx.op("LeakyRelu", [layer.bottom[0]], [layer.top[0]], alpha=slope)
    else:
        ctx.op("Relu", [layer.bottom[0]], [layer.top[0]])


@register("PReLU")
def _prelu(layer, ctx):
    """PReLU -> PRelu with the learned slope per channel (or one shared)."""
    slope = ctx.blobs(1)[0].reshape(-1)
    ctx.op("PRelu", [layer.bottom[0], ctx.param("slope", slope)], [layer.top[0]], order="NCHW")


@register("ELU")
def _elu(layer, ctx):
    """ELU -> Elu(alpha)."""
    ctx.op("Elu", [layer.bottom[0]], [layer.top[0]], alpha=proto_float(layer.elu_param.alpha))


@register("Power")
def _power(layer, ctx):
    """Power (shift + scale * x) ^ power -> Scale, Add of a one-value shift blob, Pow."""
    p = layer.power_param
    power, scale, shift = proto_float(p.power), proto_float(p.scale), proto_float(p.shift)
    x, top = layer.bottom[0], layer.top[0]
    steps = [s for s, needed in (("scale", scale != 1.0), ("shift", shift != 0.0),
                                 ("pow", power != 1.0)) if needed]
    if not steps:
        ctx.op("Copy", [x], [top])
    for k, step in enumerate(steps):
        out = top if k == len(steps) - 1 else _aux(top, step)
        if step == "scale":
            ctx.op("Scale", [x], [out], scale=scale)
        elif step == "shift":
            ctx.op("Add", [x, ctx.param("shift", np.full(1, shift, np.float32))], [out],
                   broadcast=1)
        else:
            ctx.op("Pow", [x], [out], exponent=power)
        x = out


@register("Dropout")
def _dropout(layer, ctx):
    """Dropout -> Dropout(ratio, is_test) with the mask as a second output."""
    ctx.op("Dropout", [layer.bottom[0]], [layer.top[0], _aux(layer.top[0], "mask")],
           ratio=proto_float(layer.dropout_param.dropout_ratio), is_test=int(ctx.is_test))


@register("Silence")
def _silence(layer, ctx):
    """Silence: nothing to compute."""


# -- losses and metrics -------------------------------------------------------------------------

@register("SoftmaxWithLoss")
def _softmax_with_loss(layer, ctx):
    """SoftmaxWithLoss -> SoftmaxWithLoss (the probabilities as a first, auxiliary output)."""
    if layer.loss_param.HasField("ignore_label"):
        raise _unsupported(layer, "loss_param.ignore_label")
    if layer.softmax_param.axis != 1:
        raise _unsupported(layer, f"softmax_param.axis {layer.softmax_param.axis}")
    top = layer.top[0]
    ctx.op("SoftmaxWithLoss", list(layer.bottom[:2]), [_aux(top, "prob"), top])


@register("Accuracy")
def _accuracy(layer, ctx):
    """Accuracy -> Accuracy(top_k)."""
    p = layer.accuracy_param
    if p.HasField("ignore_label") or p.axis != 1 or len(layer.top) > 1:
        raise _unsupported(layer, "ignore_label, axis other than 1 or per-class accuracy")
    ctx.op("Accuracy", list(layer.bottom[:2]), [layer.top[0]], top_k=int(p.top_k))
