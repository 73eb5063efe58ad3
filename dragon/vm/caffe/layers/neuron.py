"""Neuron layers: elementwise activations, one core op each (two for Exp and Log).

    layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1"
            relu_param { negative_slope: 0.1 } }

becomes ``Relu(conv1, slope=0.1)``; written in place, as here, the executor
gives the new value its own SSA name and the planner reuses the buffer.
"""
from __future__ import annotations

import math

from dragon.vm.caffe.layers.common import constant_filler, layer_error
from dragon.vm.caffe.layers.fillers import proto_float
from dragon.vm.caffe.layers.registry import lowering


def _unary(op_type, **args):
    def build(ctx):
        return [ctx.op(op_type, [ctx.bottoms[0]], **args)]
    build.__doc__ = f"-> {op_type}"
    return build


lowering("Sigmoid")(_unary("Sigmoid"))
lowering("TanH")(_unary("Tanh"))
lowering("AbsVal")(_unary("Abs"))
lowering("BNLL")(_unary("Softplus"))


@lowering("ReLU")
def relu(ctx):
    """ReLU -> Relu: max(x, 0) + negative_slope * min(x, 0)."""
    return [ctx.op("Relu", [ctx.bottoms[0]],
                   slope=proto_float(ctx.param.relu_param.negative_slope))]


@lowering("PReLU")
def prelu(ctx):
    """PReLU -> PRelu with a learned slope per channel (or one shared), filler default 0.25."""
    p = ctx.param.prelu_param
    x = ctx.bottoms[0]
    if x.ndim < 2 and not p.channel_shared:
        raise layer_error(ctx, f"bottom {tuple(x.shape)} has no channel axis; set channel_shared")
    shape = (1,) if p.channel_shared else (x.shape[1],)
    filler = p.filler if p.HasField("filler") else constant_filler(0.25)
    return [ctx.op("PRelu", [x, ctx.blob(0, shape, filler)])]


@lowering("ELU")
def elu(ctx):
    """ELU -> Elu(alpha)."""
    return [ctx.op("Elu", [ctx.bottoms[0]], alpha=proto_float(ctx.param.elu_param.alpha))]


@lowering("Swish")
def swish(ctx):
    """Swish -> Swish: x * sigmoid(beta * x)."""
    return [ctx.op("Swish", [ctx.bottoms[0]], beta=proto_float(ctx.param.swish_param.beta))]


@lowering("Clip")
def clip(ctx):
    """Clip -> Clip(min, max)."""
    p = ctx.param.clip_param
    if p.min > p.max:
        raise layer_error(ctx, f"clip_param.min {p.min} exceeds max {p.max}")
    return [ctx.op("Clip", [ctx.bottoms[0]], low=proto_float(p.min), high=proto_float(p.max))]


@lowering("Power")
def power(ctx):
    """Power -> Power: (shift + scale * x) ^ power."""
    p = ctx.param.power_param
    return [ctx.op("Power", [ctx.bottoms[0]], power=proto_float(p.power),
                   scale=proto_float(p.scale), shift=proto_float(p.shift))]


def _log_base(ctx, base, field):
    base = proto_float(base)
    if base == -1.0:
        return 1.0
    if base <= 0:
        raise layer_error(ctx, f"{field}.base must be positive or -1 (for e), got {base}")
    return math.log(base)


@lowering("Exp")
def exp(ctx):
    """Exp: y = base ^ (shift + scale * x), base -1 meaning e."""
    p = ctx.param.exp_param
    log_base = _log_base(ctx, p.base, "exp_param")
    inner_scale = log_base * proto_float(p.scale)
    inner_shift = log_base * proto_float(p.shift)
    x = ctx.bottoms[0]
    if inner_scale != 1.0 or inner_shift != 0.0:
        x = ctx.op("Power", [x], scale=inner_scale, shift=inner_shift)
    return [ctx.op("Exp", [x])]


@lowering("Log")
def log(ctx):
    """Log: y = log_base(shift + scale * x), base -1 meaning e."""
    p = ctx.param.log_param
    log_base = _log_base(ctx, p.base, "log_param")
    x = ctx.bottoms[0]
    scale, shift = proto_float(p.scale), proto_float(p.shift)
    if scale != 1.0 or shift != 0.0:
        x = ctx.op("Power", [x], scale=scale, shift=shift)
    y = ctx.op("Log", [x])
    return [y if log_base == 1.0 else ctx.op("Power", [y], scale=1.0 / log_base)]


@lowering("Threshold")
def threshold(ctx):
    """Threshold -> Threshold: 1 where x > threshold, else 0."""
    return [ctx.op("Threshold", [ctx.bottoms[0]],
                   threshold=proto_float(ctx.param.threshold_param.threshold))]


@lowering("Dropout")
def dropout(ctx):
    """Dropout: TRAIN zeroes with probability p and scales the rest by 1 / (1 - p); TEST copies."""
    ratio = proto_float(ctx.param.dropout_param.dropout_ratio)
    if not 0.0 <= ratio < 1.0:
        raise layer_error(ctx, f"dropout_ratio must lie in [0, 1), got {ratio}")
    x = ctx.bottoms[0]
    if ctx.phase != "TRAIN":
        return [ctx.op("Copy", [x])]
    y, _mask = ctx.op("Dropout", [x], prob=ratio, training=True, scale=True)
    return [y]
