"""Activations: elementwise nonlinearities, PReLU, softmax and dropout.

Where an input gradient can be written from the output Y, the gradient op reads
Y rather than X, so the memory planner may free X right after the forward op.
"""
from __future__ import annotations

import numpy as np

from dragon import backend
from dragon.core.errors import ShapeError
from dragon.ops.registry import normalize_axis, register

#: SELU's constants (Klambauer et al. 2017, "Self-Normalizing Neural Networks").
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def _floating(x, **args):
    """``x``'s spec after checking that it is a floating-point tensor."""
    if np.dtype(x.dtype).kind != "f":
        raise ShapeError(f"needs a floating-point input, got {np.dtype(x.dtype)}")
    return x


def _like_dy(*specs, **args):
    """dX's spec for a gradient op whose last input is dY: every input has dY's shape."""
    *forward, dy = specs
    for spec in forward:
        if tuple(spec.shape) != tuple(dy.shape):
            raise ShapeError(f"dY has shape {tuple(dy.shape)} but the forward tensor "
                             f"has shape {tuple(spec.shape)}")
    return dy


# -- ReLU ------------------------------------------------------------------------------------

@register("Relu", args={"slope": 0.0}, inplace={0: 0}, recompute=True)
def relu(xp, x, *, out, slope):
    """Y = max(X, 0) + slope * min(X, 0) (Caffe's ReLU with negative_slope)."""
    if slope == 0.0:
        xp.maximum(x, 0, out=out)
    else:
        xp.multiply(x, xp.where(x > 0, 1.0, slope).astype(x.dtype, copy=False), out=out)


@relu.shape
def _(x, *, slope):
    return x


@relu.grad
def _(g):
    return [g.op("ReluGradient", [g.Y(0), g.dY(0)], slope=g.args["slope"])]


@register("ReluGradient", inputs=2, args={"slope": 0.0}, inplace={0: 1})
def relu_gradient(xp, y, dy, *, out, slope):
    """dX = dY where Y > 0, slope * dY elsewhere."""
    if slope == 0.0:
        xp.multiply(dy, y > 0, out=out)
    else:
        xp.multiply(dy, xp.where(y > 0, 1.0, slope).astype(dy.dtype, copy=False), out=out)


@relu_gradient.shape
def _(y, dy, *, slope):
    return dy


# -- sigmoids --------------------------------------------------------------------------------

def _sigmoid_into(xp, x, out, beta=1.0):
    """out = sigmoid(beta * X), as 0.5 * tanh(beta * X / 2) + 0.5 (Caffe's formula).

    Unlike 1 / (1 + exp(-X)) it never overflows, and it runs in place over X.
    """
    xp.multiply(x, 0.5 * beta, out=out)
    xp.tanh(out, out=out)
    out *= 0.5
    out += 0.5


@register("Sigmoid", inplace={0: 0}, recompute=True)
def sigmoid(xp, x, *, out):
    """Y = 1 / (1 + exp(-X))."""
    _sigmoid_into(xp, x, out)


sigmoid.shape(_floating)


@sigmoid.grad
def _(g):
    return [g.op("SigmoidGradient", [g.Y(0), g.dY(0)])]


@register("SigmoidGradient", inputs=2)
def sigmoid_gradient(xp, y, dy, *, out):
    """dX = dY * Y * (1 - Y)."""
    xp.subtract(1, y, out=out)
    out *= y
    out *= dy


sigmoid_gradient.shape(_like_dy)


@sigmoid_gradient.grad
def _(g):
    y, dy, ddx = g.X(0), g.X(1), g.dY(0)
    d_y = g.op("Mul", [g.op("Mul", [ddx, dy]), g.op("Power", [y], scale=-2.0, shift=1.0)])
    return [d_y, g.op("SigmoidGradient", [y, ddx])]


@register("HardSigmoid", args={"alpha": 0.2, "beta": 0.5}, inplace={0: 0}, recompute=True)
def hard_sigmoid(xp, x, *, out, alpha, beta):
    """Y = clip(alpha * X + beta, 0, 1) (Theano's hard_sigmoid)."""
    xp.multiply(x, alpha, out=out)
    out += beta
    xp.clip(out, 0, 1, out=out)


hard_sigmoid.shape(_floating)


@hard_sigmoid.grad
def _(g):
    return [g.op("HardSigmoidGradient", [g.Y(0), g.dY(0)], alpha=g.args["alpha"])]


@register("HardSigmoidGradient", inputs=2, args={"alpha": 0.2}, inplace={0: 1})
def hard_sigmoid_gradient(xp, y, dy, *, out, alpha):
    """dX = alpha * dY where 0 < Y < 1, 0 where Y is clipped."""
    xp.multiply(dy, (y > 0) & (y < 1), out=out)
    out *= alpha


hard_sigmoid_gradient.shape(_like_dy)


@register("UltraFastSigmoid", recompute=True)
def ultra_fast_sigmoid(xp, x, *, out, scratch):
    """Y = (1 + T(X / 2)) / 2 with T Theano's piecewise approximation of tanh.

    T(t) = sign(t) * 1.5|t| / (1 + |t|) for |t| < 1.7, else
    sign(t) * (0.935409070603099 + 0.0458812946797165 * (min(|t|, 3) - 1.7)).
    Like Theano's ultra_fast_sigmoid it is a forward approximation with no gradient.
    """
    t, = scratch
    xp.abs(x, out=t)
    t *= 0.5
    linear = t >= 1.7
    xp.add(t, 1, out=out)
    xp.divide(t, out, out=out)
    out *= 1.5
    xp.minimum(t, 3.0, out=t)
    t -= 1.7
    t *= 0.0458812946797165
    t += 0.935409070603099
    xp.copyto(out, t, where=linear)
    xp.copysign(out, x, out=out)
    out += 1
    out *= 0.5


ultra_fast_sigmoid.shape(_floating)


@ultra_fast_sigmoid.scratch
def _(x):
    return [x]


@register("Swish", args={"beta": 1.0}, recompute=True)
def swish(xp, x, *, out, beta):
    """Y = X * sigmoid(beta * X) (Caffe's Swish)."""
    _sigmoid_into(xp, x, out, beta)
    out *= x


swish.shape(_floating)


@swish.grad
def _(g):
    return [g.op("SwishGradient", [g.X(0), g.Y(0), g.dY(0)], beta=g.args["beta"])]


@register("SwishGradient", inputs=3, args={"beta": 1.0}, inplace={0: 0})
def swish_gradient(xp, x, y, dy, *, out, beta, scratch):
    """dX = dY * (s + beta * Y * (1 - s)) with s = sigmoid(beta * X)."""
    s, = scratch
    _sigmoid_into(xp, x, s, beta)
    xp.subtract(1, s, out=out)
    out *= y
    out *= beta
    out += s
    out *= dy


swish_gradient.shape(_like_dy)


@swish_gradient.scratch
def _(x, y, dy, *, beta):
    return [dy]


# -- tanh, ELU, SELU, softplus, softsign -----------------------------------------------------

@register("Tanh", inplace={0: 0}, recompute=True)
def tanh(xp, x, *, out):
    """Y = tanh(X)."""
    xp.tanh(x, out=out)


tanh.shape(_floating)


@tanh.grad
def _(g):
    return [g.op("TanhGradient", [g.Y(0), g.dY(0)])]


@register("TanhGradient", inputs=2, inplace={0: 0})
def tanh_gradient(xp, y, dy, *, out):
    """dX = dY * (1 - Y^2)."""
    xp.square(y, out=out)
    xp.subtract(1, out, out=out)
    out *= dy


tanh_gradient.shape(_like_dy)


@tanh_gradient.grad
def _(g):
    y, dy, ddx = g.X(0), g.X(1), g.dY(0)
    d_y = g.op("Mul", [g.op("Mul", [ddx, dy]), g.op("Power", [y], scale=-2.0)])
    return [d_y, g.op("TanhGradient", [y, ddx])]


def _elu_into(xp, x, out, alpha, scale):
    """out = scale * (X where X > 0, alpha * (exp(X) - 1) elsewhere)."""
    xp.minimum(x, 0, out=out)  # so that exp cannot overflow for large X
    xp.expm1(out, out=out)
    out *= alpha
    xp.copyto(out, x, where=x > 0)
    if scale != 1.0:
        out *= scale


def _elu_gradient_into(xp, y, dy, out, alpha, scale):
    """out = dY * (scale where Y > 0, Y + scale * alpha elsewhere)."""
    positive = y > 0  # taken before out, which may be Y's buffer, is written
    xp.add(y, scale * alpha, out=out)
    xp.copyto(out, scale, where=positive)
    out *= dy


def _check_elu_args(alpha, scale=1.0):
    # The gradient tells X > 0 from Y > 0, which needs alpha >= 0 and scale > 0.
    if alpha < 0:
        raise ShapeError(f"alpha must be >= 0, got {alpha}")
    if scale <= 0:
        raise ShapeError(f"scale must be > 0, got {scale}")


@register("Elu", args={"alpha": 1.0}, recompute=True)
def elu(xp, x, *, out, alpha):
    """Y = X where X > 0, alpha * (exp(X) - 1) elsewhere."""
    _elu_into(xp, x, out, alpha, 1.0)


@elu.shape
def _(x, *, alpha):
    _check_elu_args(alpha)
    return _floating(x)


@elu.grad
def _(g):
    return [g.op("EluGradient", [g.Y(0), g.dY(0)], alpha=g.args["alpha"])]


@register("EluGradient", inputs=2, args={"alpha": 1.0}, inplace={0: 0})
def elu_gradient(xp, y, dy, *, out, alpha):
    """dX = dY where Y > 0, dY * (Y + alpha) elsewhere."""
    _elu_gradient_into(xp, y, dy, out, alpha, 1.0)


elu_gradient.shape(_like_dy)


@register("Selu", args={"alpha": SELU_ALPHA, "scale": SELU_SCALE}, recompute=True)
def selu(xp, x, *, out, alpha, scale):
    """Y = scale * (X where X > 0, alpha * (exp(X) - 1) elsewhere), SELU's constants by default."""
    _elu_into(xp, x, out, alpha, scale)


@selu.shape
def _(x, *, alpha, scale):
    _check_elu_args(alpha, scale)
    return _floating(x)


@selu.grad
def _(g):
    return [g.op("SeluGradient", [g.Y(0), g.dY(0)], alpha=g.args["alpha"],
                 scale=g.args["scale"])]


@register("SeluGradient", inputs=2, args={"alpha": SELU_ALPHA, "scale": SELU_SCALE},
          inplace={0: 0})
def selu_gradient(xp, y, dy, *, out, alpha, scale):
    """dX = scale * dY where Y > 0, dY * (Y + scale * alpha) elsewhere."""
    _elu_gradient_into(xp, y, dy, out, alpha, scale)


selu_gradient.shape(_like_dy)


@register("Softplus", inplace={0: 0}, recompute=True)
def softplus(xp, x, *, out):
    """Y = log(1 + exp(X)) (Caffe's BNLL), as logaddexp(X, 0), which never overflows."""
    xp.logaddexp(x, 0, out=out)


softplus.shape(_floating)


@softplus.grad
def _(g):
    return [g.op("SoftplusGradient", [g.Y(0), g.dY(0)])]


@register("SoftplusGradient", inputs=2, inplace={0: 0})
def softplus_gradient(xp, y, dy, *, out):
    """dX = dY * sigmoid(X), with sigmoid(X) = 1 - exp(-Y) read from Y."""
    xp.negative(y, out=out)
    xp.expm1(out, out=out)  # keeps 1 - exp(-Y) precise where Y is tiny
    out *= dy
    xp.negative(out, out=out)


softplus_gradient.shape(_like_dy)


@softplus_gradient.grad
def _(g):
    y, dy, ddx = g.X(0), g.X(1), g.dY(0)
    d_y = g.op("Mul", [g.op("Mul", [ddx, dy]), g.op("Exp", [g.op("Neg", [y])])])
    return [d_y, g.op("SoftplusGradient", [y, ddx])]


@register("Softsign", recompute=True)
def softsign(xp, x, *, out):
    """Y = X / (1 + |X|)."""
    xp.abs(x, out=out)
    out += 1
    xp.divide(x, out, out=out)


softsign.shape(_floating)


@softsign.grad
def _(g):
    return [g.op("SoftsignGradient", [g.Y(0), g.dY(0)])]


@register("SoftsignGradient", inputs=2, inplace={0: 0})
def softsign_gradient(xp, y, dy, *, out):
    """dX = dY * (1 - |Y|)^2, which equals dY / (1 + |X|)^2."""
    xp.abs(y, out=out)
    xp.subtract(1, out, out=out)
    xp.square(out, out=out)
    out *= dy


softsign_gradient.shape(_like_dy)


# -- threshold -------------------------------------------------------------------------------

@register("Threshold", args={"threshold": 0.0}, inplace={0: 0}, recompute=True)
def threshold_step(xp, x, *, out, threshold):
    """Y = 1 where X > threshold, 0 elsewhere (Caffe's Threshold)."""
    xp.greater(x, threshold, out=out)


@threshold_step.shape
def _(x, *, threshold):
    return x


@threshold_step.grad
def _(g):
    return [None]  # a step function: zero gradient wherever it is defined


# -- PReLU -----------------------------------------------------------------------------------

def _slope_along_channels(slope, x):
    """``slope`` shaped to broadcast over X: a scalar when shared, else along axis 1."""
    if slope.size == 1:
        return slope.reshape(())
    return slope.reshape((-1,) + (1,) * (x.ndim - 2))


def _check_slope(x, slope):
    if slope.size == 1 and slope.ndim <= 1:
        return
    if x.ndim >= 2 and slope.ndim == 1 and slope.shape[0] == x.shape[1]:
        return
    per_channel = (f"{x.shape[1]} entries (one per channel of axis 1) or "
                   if x.ndim >= 2 else "")
    raise ShapeError(f"slope of shape {tuple(slope.shape)} does not fit input of shape "
                     f"{tuple(x.shape)}: it needs {per_channel}1 entry shared by all")


@register("PRelu", inputs=2, recompute=True)
def prelu(xp, x, slope, *, out):
    """Y = X where X > 0, slope * X elsewhere; slope of shape (C,) for axis 1 or (1,) shared."""
    xp.multiply(x, _slope_along_channels(slope, x), out=out)
    xp.copyto(out, x, where=x > 0)


@prelu.shape
def _(x, slope):
    _check_slope(x, slope)
    return _floating(x)


@prelu.grad
def _(g):
    inputs = [g.X(0), g.X(1), g.dY(0)]
    return [g.op("PReluGradient", inputs) if g.needs(0) else None,
            g.op("PReluSlopeGradient", inputs) if g.needs(1) else None]


@register("PReluGradient", inputs=3, inplace={0: 0})
def prelu_gradient(xp, x, slope, dy, *, out):
    """dX = dY where X > 0, slope * dY elsewhere."""
    positive = x > 0  # taken before out, which may be X's buffer, is written
    xp.multiply(dy, _slope_along_channels(slope, x), out=out)
    xp.copyto(out, dy, where=positive)


@prelu_gradient.shape
def _(x, slope, dy):
    return _like_dy(x, dy)


@register("PReluSlopeGradient", inputs=3)
def prelu_slope_gradient(xp, x, slope, dy, *, out, scratch):
    """dSlope = sum of dY * min(X, 0) over every axis but axis 1 (over all when shared)."""
    product, = scratch
    xp.minimum(x, 0, out=product)
    product *= dy
    if slope.size == 1:
        xp.sum(product, out=out.reshape(()))
    else:
        xp.sum(product, axis=(0,) + tuple(range(2, x.ndim)), out=out)


@prelu_slope_gradient.shape
def _(x, slope, dy):
    _like_dy(x, dy)
    return slope.with_dtype(dy.dtype)


@prelu_slope_gradient.scratch
def _(x, slope, dy):
    return [dy]


# -- softmax ---------------------------------------------------------------------------------

def _around(a, axis):
    """``a`` viewed as (outer, a.shape[axis], inner), so that ``axis`` becomes axis 1."""
    axis %= a.ndim
    outer = int(np.prod(a.shape[:axis], dtype=np.int64))
    inner = int(np.prod(a.shape[axis + 1:], dtype=np.int64))
    return a.reshape(outer, a.shape[axis], inner)


def _softmax_spec(x, *, axis):
    if x.ndim == 0:
        raise ShapeError("needs an input of at least 1 dimension")
    normalize_axis(axis, x.ndim)
    return _floating(x)


def _softmax_gradient_spec(y, dy, *, axis):
    normalize_axis(axis, y.ndim)
    return _like_dy(y, dy)


@register("Softmax", args={"axis": 1}, inplace={0: 0})
def softmax(xp, x, *, out, axis):
    """Y = exp(X) / sum(exp(X)) along ``axis``, computed from X - max(X).

    The default axis 1 is Caffe's channel axis; Theano's front end passes axis=-1.
    """
    x3, y3 = _around(x, axis), _around(out, axis)
    xp.subtract(x3, x3.max(axis=1, keepdims=True), out=y3)
    xp.exp(y3, out=y3)
    y3 /= y3.sum(axis=1, keepdims=True)


softmax.shape(_softmax_spec)


@softmax.grad
def _(g):
    return [g.op("SoftmaxGradient", [g.Y(0), g.dY(0)], axis=g.args["axis"])]


@register("SoftmaxGradient", inputs=2, args={"axis": 1}, inplace={0: 1})
def softmax_gradient(xp, y, dy, *, out, axis):
    """dX = Y * (dY - sum(dY * Y)) along ``axis``."""
    y3, dy3, dx3 = _around(y, axis), _around(dy, axis), _around(out, axis)
    dot = xp.einsum("oci,oci->oi", dy3, y3)[:, None, :]
    xp.subtract(dy3, dot, out=dx3)
    dx3 *= y3


softmax_gradient.shape(_softmax_gradient_spec)


def _sum_along(g, a, axis):
    return g.op("ReduceSum", [a], axes=[axis], keepdims=True)


@softmax_gradient.grad
def _(g):
    # dX = Y * (dY - s), s = sum(dY * Y): linear in dY; along Y, with t = sum(ddX * Y),
    # d/dY = ddX * (dY - s) - dY * t.
    y, dy, ddx, axis = g.X(0), g.X(1), g.dY(0), g.args["axis"]
    s = _sum_along(g, g.op("Mul", [dy, y]), axis)
    t = _sum_along(g, g.op("Mul", [ddx, y]), axis)
    d_y = g.op("Sub", [g.op("Mul", [ddx, g.op("Sub", [dy, s])]), g.op("Mul", [dy, t])])
    return [d_y, g.op("SoftmaxGradient", [y, ddx], axis=axis)]


@register("LogSoftmax", args={"axis": 1}, inplace={0: 0})
def log_softmax(xp, x, *, out, axis, scratch):
    """Y = X - log(sum(exp(X))) along ``axis``, computed from X - max(X).

    The default axis 1 is Caffe's channel axis; Theano's front end passes axis=-1.
    """
    x3, y3, e3 = _around(x, axis), _around(out, axis), _around(scratch[0], axis)
    xp.subtract(x3, x3.max(axis=1, keepdims=True), out=y3)
    xp.exp(y3, out=e3)
    y3 -= xp.log(e3.sum(axis=1, keepdims=True))


log_softmax.shape(_softmax_spec)


@log_softmax.scratch
def _(x, *, axis):
    return [x]


@log_softmax.grad
def _(g):
    return [g.op("LogSoftmaxGradient", [g.Y(0), g.dY(0)], axis=g.args["axis"])]


@register("LogSoftmaxGradient", inputs=2, args={"axis": 1}, inplace={0: 0})
def log_softmax_gradient(xp, y, dy, *, out, axis):
    """dX = dY - exp(Y) * sum(dY) along ``axis``."""
    y3, dy3, dx3 = _around(y, axis), _around(dy, axis), _around(out, axis)
    xp.exp(y3, out=dx3)
    dx3 *= dy3.sum(axis=1, keepdims=True)
    xp.subtract(dy3, dx3, out=dx3)


log_softmax_gradient.shape(_softmax_gradient_spec)


@log_softmax_gradient.grad
def _(g):
    # dX = dY - exp(Y) * S, S = sum(dY): d/d(dY) = ddX - sum(ddX * exp(Y)),
    # d/dY = -ddX * exp(Y) * S.
    y, dy, ddx, axis = g.X(0), g.X(1), g.dY(0), g.args["axis"]
    weighted = g.op("Mul", [ddx, g.op("Exp", [y])])
    d_dy = g.op("Sub", [ddx, _sum_along(g, weighted, axis)])
    d_y = g.op("Neg", [g.op("Mul", [weighted, _sum_along(g, dy, axis)])])
    return [d_y, d_dy]


# -- dropout ---------------------------------------------------------------------------------

def _uniform_into(xp, out):
    """Fill ``out`` with uniform [0, 1) draws of the seeded generator, equal on CPU and GPU."""
    if xp is np:
        backend.rng().random(dtype=out.dtype, out=out)  # straight into the planner's buffer
    else:
        backend.random_array(xp, lambda gen, shape: gen.random(shape, dtype=out.dtype), out)


@register("Dropout", args={"prob": 0.5, "training": True, "scale": True}, outputs=2,
          inplace={0: 0}, stateful=True)
def dropout(xp, x, *, out, prob, training, scale):
    """Y = X * mask, the mask (second output) zeroing each entry with probability ``prob``.

    Training: mask is 0 or 1 / (1 - prob) (0 or 1 without ``scale``), drawn from the
    seeded generator. Inference: mask is 1 (1 - prob without ``scale``, keeping the
    training-time expectation). The gradient is dY * mask.
    """
    y, mask = out
    if training:
        _uniform_into(xp, mask)
        xp.greater_equal(mask, prob, out=mask)
        if scale:
            mask *= 1.0 / (1.0 - prob)
    else:
        mask.fill(1.0 if scale else 1.0 - prob)
    xp.multiply(x, mask, out=y)


@dropout.shape
def _(x, *, prob, training, scale):
    if not 0.0 <= prob < 1.0:
        raise ShapeError(f"prob must be in [0, 1), got {prob}")
    _floating(x)
    return [x, x]


@dropout.grad
def _(g):
    return [g.op("Mul", [g.dY(0), g.Y(1)])]
