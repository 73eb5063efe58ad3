"""Normalization: batch norm, Caffe's channel-wise Scale and Bias, LRN, MVN, L2 normalization.

Per-channel kernels view an input as ``(outer, C, inner)`` around the channel
axis, so one code path serves NCHW (axis 1), NHWC (axis -1) and 2-d (N, C)
inputs. Per-channel sums are matrix-vector products or ``einsum`` reductions
over that view: they read the data once and write nothing the input's size.
"""
from __future__ import annotations

import math

import numpy as np

from dragon.core.errors import ShapeError
from dragon.ops.registry import Spec, normalize_axis, register


def _split_around(shape, axis, span=1):
    """(outer, middle, inner) sizes of ``shape`` around its axes ``[axis, axis + span)``."""
    return (math.prod(shape[:axis]), math.prod(shape[axis:axis + span]),
            math.prod(shape[axis + span:]))


def _view3(a, axis, span=1):
    """``a`` as an ``(outer, middle, inner)`` array around its axes ``[axis, axis + span)``."""
    return a.reshape(_split_around(a.shape, axis % a.ndim, span))


def _per_channel(v):
    """A per-channel vector shaped to broadcast against an ``(outer, C, inner)`` view."""
    return v.reshape(1, -1, 1)


def _channel_sums(xp, a3):
    """Per-channel sums of an ``(outer, C, inner)`` array, as a BLAS matrix-vector product."""
    return xp.matmul(a3, xp.ones(a3.shape[2], a3.dtype)).sum(axis=0)


def _grad_outputs(out, need):
    """The output arrays of a gradient kernel, None where ``need`` has no flag."""
    arrays = iter(out if isinstance(out, tuple) else (out,))
    return [next(arrays) if flag else None for flag in need]


def _count_needed(args):
    return max(1, sum(args["need"]))


# -- batch normalization -----------------------------------------------------------------------

_RUNNING_UPDATES = ("ema", "accumulate")


@register("BatchNorm", inputs=(3, 5), outputs=3, inplace={0: 0}, stateful=True,
          args={"axis": 1, "eps": 1e-5, "momentum": 0.9, "training": True,
                "running_update": "ema", "unbiased_running_var": True})
def batch_norm(xp, x, running_mean, running_var, gamma=None, beta=None, *, out, axis, eps,
               momentum, training, running_update, unbiased_running_var):
    """Y = (X - mean) / sqrt(var + eps) * gamma + beta per channel of ``axis``.

    Outputs (Y, saved_mean, saved_inv_std); the last two hold the mean and
    1 / sqrt(var + eps) that normalized X. training: the statistics are the
    batch's over every axis but ``axis`` (biased variance), and the running
    statistics are updated in place: "ema" sets running = momentum * running +
    (1 - momentum) * batch, "accumulate" running = momentum * running + batch
    (Caffe's moving average, which its front end divides by its scale factor).
    unbiased_running_var stores the m / (m - 1) corrected batch variance, as
    Caffe and Caffe2 do. Otherwise the running statistics normalize X.
    """
    y, saved_mean, saved_inv_std = out
    x3 = _view3(x, axis)
    y3 = y.reshape(x3.shape)
    if training:
        count = x3.shape[0] * x3.shape[2]
        xp.divide(_channel_sums(xp, x3), count, out=saved_mean)
        xp.subtract(x3, _per_channel(saved_mean), out=y3)
        batch_var = xp.einsum("ocs,ocs->c", y3, y3) / count
        _update_running(running_mean, running_var, saved_mean, batch_var, count,
                        momentum, running_update, unbiased_running_var)
        _inverse_std(xp, batch_var, eps, saved_inv_std)
        scale = saved_inv_std if gamma is None else saved_inv_std * gamma
        xp.multiply(y3, _per_channel(scale), out=y3)
        if beta is not None:
            xp.add(y3, _per_channel(beta), out=y3)
        return
    saved_mean[...] = running_mean
    _inverse_std(xp, running_var, eps, saved_inv_std)
    scale = saved_inv_std if gamma is None else saved_inv_std * gamma
    shift = -saved_mean * scale
    if beta is not None:
        shift += beta
    xp.multiply(x3, _per_channel(scale), out=y3)
    xp.add(y3, _per_channel(shift), out=y3)


def _inverse_std(xp, var, eps, out):
    xp.add(var, eps, out=out)
    xp.sqrt(out, out=out)
    xp.reciprocal(out, out=out)


def _update_running(running_mean, running_var, batch_mean, batch_var, count, momentum,
                    running_update, unbiased):
    if unbiased and count > 1:
        batch_var = batch_var * (count / (count - 1))
    batch_weight = 1.0 - momentum if running_update == "ema" else 1.0
    for running, batch in ((running_mean, batch_mean), (running_var, batch_var)):
        running *= momentum
        running += batch_weight * batch


@batch_norm.shape
def _(x, running_mean, running_var, gamma=None, beta=None, *, axis, eps, momentum, training,
      running_update, unbiased_running_var):
    if x.ndim < 2:
        raise ShapeError(f"BatchNorm needs an input of at least 2 dimensions (N, C, ...), "
                         f"got {tuple(x.shape)}")
    if running_update not in _RUNNING_UPDATES:
        raise ShapeError(f"running_update must be one of {list(_RUNNING_UPDATES)}, "
                         f"got {running_update!r}")
    if eps < 0:
        raise ShapeError(f"eps must be >= 0, got {eps}")
    channels = x.shape[normalize_axis(axis, x.ndim)]
    named = {"running_mean": running_mean, "running_var": running_var, "gamma": gamma,
             "beta": beta}
    for name, param in named.items():
        if param is not None and tuple(param.shape) != (channels,):
            raise ShapeError(f"{name} has shape {tuple(param.shape)}, expected ({channels},) "
                             f"for the {channels} channels of axis {axis} of input "
                             f"{tuple(x.shape)}")
    stats = Spec((channels,), x.dtype)
    return [x, stats, stats]


@batch_norm.grad
def _(g):
    has_gamma, has_beta = g.num_inputs >= 4, g.num_inputs >= 5
    need = [g.needs(0), has_gamma and g.needs(3), has_beta and g.needs(4)]
    if not any(need):
        return [None] * g.num_inputs
    # In training the saved statistics depend on X, so gradients reaching them flow into dX.
    stat_grads = bool(need[0] and g.args["training"] and (g.has_dY(1) or g.has_dY(2)))
    inputs = [g.dY(0), g.X(0), g.Y(1), g.Y(2)]
    if stat_grads:
        inputs += [g.dY(1), g.dY(2)]
    if has_gamma:
        inputs.append(g.X(3))
    outs = g.op("BatchNormGradient", inputs, axis=g.args["axis"], training=g.args["training"],
                stat_grads=stat_grads, need=[int(n) for n in need])
    outs = iter(outs if isinstance(outs, list) else [outs])
    dx, dgamma, dbeta = [next(outs) if n else None for n in need]
    return [dx, None, None, dgamma, dbeta][:g.num_inputs]


@register("BatchNormGradient", inputs=(4, 7), outputs=_count_needed, inplace={0: 0},
          args={"axis": 1, "training": True, "stat_grads": False, "need": [1, 1, 1]})
def batch_norm_gradient(xp, dy, x, saved_mean, saved_inv_std, *rest, out, scratch=(), axis,
                        training, stat_grads, need):
    """dX, dgamma, dbeta of BatchNorm (those ``need`` flags), from its saved mean and inv_std.

    Inputs: dY, X, saved_mean, saved_inv_std, then the gradients of saved_mean
    and saved_inv_std when stat_grads, then gamma if BatchNorm had one.
    """
    d_mean, d_inv_std = rest[:2] if stat_grads else (None, None)
    gamma = rest[-1] if len(rest) > (2 if stat_grads else 0) else None
    dx, dgamma, dbeta = _grad_outputs(out, need)
    x3 = _view3(x, axis)
    dy3 = dy.reshape(x3.shape)
    sum_dy = _channel_sums(xp, dy3)
    if dbeta is not None:
        dbeta[...] = sum_dy
    scale = saved_inv_std if gamma is None else saved_inv_std * gamma
    if not _needs_centered(need, training):
        if dx is not None:
            xp.multiply(dy3, _per_channel(scale), out=dx.reshape(x3.shape))
        return
    centered = scratch[0].reshape(x3.shape)
    xp.subtract(x3, _per_channel(saved_mean), out=centered)
    dot = xp.einsum("ocs,ocs->c", dy3, centered)  # sum of dY * (X - mean)
    if dgamma is not None:
        xp.multiply(dot, saved_inv_std, out=dgamma)
    if dx is None:
        return
    dx3 = dx.reshape(x3.shape)
    xp.multiply(dy3, _per_channel(scale), out=dx3)
    if not training:
        return
    # dX = scale * (dY - mean(dY) - xhat * mean(dY * xhat)) with xhat = (X - mean) * inv_std,
    # plus what flows through the saved statistics: d_mean / m and d_inv_std * d(inv_std)/dX.
    count = x3.shape[0] * x3.shape[2]
    inv_var = saved_inv_std * saved_inv_std
    centered_coef = -scale * inv_var * dot / count
    shift = -scale * sum_dy / count
    if stat_grads:
        centered_coef -= d_inv_std * inv_var * saved_inv_std / count
        shift += d_mean / count
    xp.multiply(centered, _per_channel(centered_coef), out=centered)
    xp.add(dx3, centered, out=dx3)
    xp.add(dx3, _per_channel(shift), out=dx3)


@batch_norm_gradient.shape
def _(dy, x, saved_mean, saved_inv_std, *rest, axis, training, stat_grads, need):
    if tuple(dy.shape) != tuple(x.shape):
        raise ShapeError(f"dY has shape {tuple(dy.shape)}, X has {tuple(x.shape)}")
    stats = Spec(tuple(saved_mean.shape), dy.dtype)
    specs = [x.with_dtype(dy.dtype), stats, stats]
    return [s for s, flag in zip(specs, need) if flag]


def _needs_centered(need, training):
    """Whether BatchNormGradient needs X - mean: for dgamma, and for dX in training."""
    return bool(need[1] or (need[0] and training))


@batch_norm_gradient.scratch
def _(dy, x, *rest, axis, training, stat_grads, need):
    return [x.with_dtype(dy.dtype)] if _needs_centered(need, training) else []


# -- Caffe's Scale and Bias: a parameter spanning some axes of X ------------------------------

def _span_view(param, ndim, axis):
    """``param`` shaped to broadcast over X's axes ``[axis, axis + param.ndim)``."""
    return param.reshape(param.shape + (1,) * (ndim - axis % ndim - param.ndim))


def _check_span(x, param, axis, name):
    axis = normalize_axis(axis, x.ndim)
    spanned = tuple(x.shape[axis:axis + param.ndim])
    if axis + param.ndim > x.ndim or spanned != tuple(param.shape):
        raise ShapeError(f"{name} of shape {tuple(param.shape)} must match the axes from "
                         f"{axis} of input {tuple(x.shape)}, i.e. have shape {spanned}")


@register("Scale", inputs=(2, 3), args={"axis": 1}, inplace={0: 0}, recompute=True)
def scale(xp, x, gamma, beta=None, *, out, axis):
    """Y = X * gamma (+ beta), gamma spanning X's axes [axis, axis + gamma.ndim) (Caffe's Scale)."""
    xp.multiply(x, _span_view(gamma, x.ndim, axis), out=out)
    if beta is not None:
        xp.add(out, _span_view(beta, x.ndim, axis), out=out)


@scale.shape
def _(x, gamma, beta=None, *, axis):
    _check_span(x, gamma, axis, "gamma")
    if beta is not None:
        _check_span(x, beta, axis, "beta")
    return x


@scale.grad
def _(g):
    dy, axis = g.dY(0), g.args["axis"]
    dx = g.op("Scale", [dy, g.X(1)], axis=axis) if g.needs(0) else None
    dgamma = g.op("ScaleGradient", [dy, g.X(0), g.X(1)], axis=axis) if g.needs(1) else None
    if g.num_inputs == 2:
        return [dx, dgamma]
    dbeta = g.op("BiasAddGradient", [dy, g.X(2)], axis=axis) if g.needs(2) else None
    return [dx, dgamma, dbeta]


@register("ScaleGradient", inputs=3, args={"axis": 1})
def scale_gradient(xp, dy, x, gamma, *, out, axis):
    """dgamma of Scale: dY * X summed over the axes gamma does not span."""
    dy3 = _view3(dy, axis, gamma.ndim)
    out.reshape(-1)[...] = xp.einsum("ogi,ogi->g", dy3, x.reshape(dy3.shape))


@scale_gradient.shape
def _(dy, x, gamma, *, axis):
    _check_span(x, gamma, axis, "gamma")
    if tuple(dy.shape) != tuple(x.shape):
        raise ShapeError(f"dY has shape {tuple(dy.shape)}, X has {tuple(x.shape)}")
    return gamma.with_dtype(dy.dtype)


@register("BiasAdd", inputs=2, args={"axis": 1}, inplace={0: 0}, recompute=True)
def bias_add(xp, x, b, *, out, axis):
    """Y = X + b, b spanning X's axes [axis, axis + b.ndim) (Caffe's Bias)."""
    xp.add(x, _span_view(b, x.ndim, axis), out=out)


@bias_add.shape
def _(x, b, *, axis):
    _check_span(x, b, axis, "bias")
    return x


@bias_add.grad
def _(g):
    dy = g.dY(0)
    db = g.op("BiasAddGradient", [dy, g.X(1)], axis=g.args["axis"]) if g.needs(1) else None
    return [dy, db]


@register("BiasAddGradient", inputs=2, args={"axis": 1})
def bias_add_gradient(xp, dy, b, *, out, axis):
    """db of BiasAdd (and dbeta of Scale): dY summed over the axes b does not span."""
    out.reshape(-1)[...] = _channel_sums(xp, _view3(dy, axis, b.ndim))


@bias_add_gradient.shape
def _(dy, b, *, axis):
    _check_span(dy, b, axis, "bias")
    return b.with_dtype(dy.dtype)


# -- local response normalization --------------------------------------------------------------

_LRN_MODES = ("across_channels", "within_channel")


def _lrn_axes(ndim, mode):
    return (1,) if mode == "across_channels" else tuple(range(2, ndim))


def _window_sum(xp, src, other, axes, size):
    """Sums of ``src`` over a centred, zero-padded window of ``size`` along each of ``axes``.

    Ping-pongs between ``src`` and ``other``, overwriting both; returns the one
    holding the result.
    """
    half = (size - 1) // 2
    for axis in axes:
        xp.copyto(other, src)
        n, head = src.shape[axis], (slice(None),) * axis
        for offset in range(1, min(half, n - 1) + 1):
            lower, upper = head + (slice(0, n - offset),), head + (slice(offset, n),)
            xp.add(other[lower], src[upper], out=other[lower])
            xp.add(other[upper], src[lower], out=other[upper])
        src, other = other, src
    return src


def _lrn_denominator(xp, x, buffer, other, *, size, alpha, k, mode):
    """k + alpha / n * (window sum of X^2), n the window's element count; in buffer or other."""
    axes = _lrn_axes(x.ndim, mode)
    xp.multiply(x, x, out=buffer)
    total = _window_sum(xp, buffer, other, axes, size)
    xp.multiply(total, alpha / size ** len(axes), out=total)
    xp.add(total, k, out=total)
    return total


def _power(xp, base, exponent, out, spare):
    """out = base ** exponent, overwriting ``spare``; ``base`` may be ``out`` or ``spare``.

    0.75, the LRN beta of AlexNet and GoogLeNet, goes through square roots,
    several times faster than ``power``.
    """
    if exponent == 0.75:
        xp.sqrt(base, out=out)
        xp.sqrt(out, out=spare)
        xp.multiply(out, spare, out=out)
    else:
        xp.power(base, exponent, out=out)


@register("LRN", args={"size": 5, "alpha": 1e-4, "beta": 0.75, "k": 1.0,
                       "mode": "across_channels"})
def lrn(xp, x, *, out, scratch, size, alpha, beta, k, mode):
    """Y = X * (k + alpha / n * sum of X^2 over a local window)^-beta (Caffe's LRN).

    across_channels: the window is ``size`` neighbouring channels (n = size).
    within_channel: a size x size spatial window, zero padded (n = size^2), as
    Caffe's average pooling of X^2; Caffe's WITHIN_CHANNEL always uses k = 1.
    """
    denominator = _lrn_denominator(xp, x, out, scratch[0], size=size, alpha=alpha, k=k,
                                   mode=mode)
    _power(xp, denominator, beta, out, spare=scratch[0])
    xp.divide(x, out, out=out)


def _check_lrn(x, size, mode):
    if mode not in _LRN_MODES:
        raise ShapeError(f"mode must be one of {list(_LRN_MODES)}, got {mode!r}")
    if size < 1 or size % 2 == 0:
        raise ShapeError(f"LRN needs an odd window size, got size={size}")
    least = 2 if mode == "across_channels" else 3
    if x.ndim < least:
        raise ShapeError(f"LRN {mode} needs an input of at least {least} dimensions "
                         f"(N, C{', spatial...' if least == 3 else ''}), got {tuple(x.shape)}")


@lrn.shape
def _(x, *, size, alpha, beta, k, mode):
    _check_lrn(x, size, mode)
    return x


@lrn.scratch
def _(x, **args):
    return [x]


@lrn.grad
def _(g):
    return [g.op("LRNGradient", [g.X(0), g.Y(0), g.dY(0)], **g.args)]


@register("LRNGradient", inputs=3, args=dict(lrn.args))
def lrn_gradient(xp, x, y, dy, *, out, scratch, size, alpha, beta, k, mode):
    """dX of LRN: dY * d^-beta - 2 alpha beta / n * X * (window sum of dY * Y / d).

    d is LRN's denominator, recomputed from X.
    """
    buffers = [out, *scratch]
    denominator = _lrn_denominator(xp, x, out, scratch[0], size=size, alpha=alpha, k=k,
                                   mode=mode)
    ratio, other = [b for b in buffers if b is not denominator]
    xp.multiply(dy, y, out=ratio)
    xp.divide(ratio, denominator, out=ratio)
    axes = _lrn_axes(x.ndim, mode)
    spread = _window_sum(xp, ratio, other, axes, size)
    xp.multiply(spread, x, out=spread)
    xp.multiply(spread, 2.0 * alpha * beta / size ** len(axes), out=spread)
    spare = other if spread is ratio else ratio
    _power(xp, denominator, beta, denominator, spare)
    xp.divide(dy, denominator, out=denominator)
    xp.subtract(denominator, spread, out=out)


@lrn_gradient.shape
def _(x, y, dy, *, size, alpha, beta, k, mode):
    _check_lrn(x, size, mode)
    if tuple(dy.shape) != tuple(x.shape) or tuple(y.shape) != tuple(x.shape):
        raise ShapeError(f"X {tuple(x.shape)}, Y {tuple(y.shape)} and dY {tuple(dy.shape)} "
                         f"must have one shape")
    return x.with_dtype(dy.dtype)


@lrn_gradient.scratch
def _(x, y, dy, **args):
    return [x, x]


# -- mean-variance normalization ---------------------------------------------------------------

def _mvn_rows(a, across_channels):
    """``a`` as (groups, elements): one row per (n, c), or per n when across_channels."""
    groups = a.shape[0] if across_channels else a.shape[0] * a.shape[1]
    return a.reshape(groups, -1)


def _row_std(xp, centered):
    return xp.sqrt(xp.einsum("ge,ge->g", centered, centered) / centered.shape[1])


@register("MVN", args={"normalize_variance": True, "across_channels": False, "eps": 1e-9},
          inplace={0: 0})
def mvn(xp, x, *, out, normalize_variance, across_channels, eps):
    """Y = (X - mean) / (std + eps) over each (n, c) slice, or each n if across_channels.

    Caffe's MVN: std is the biased standard deviation and eps is added to it, not
    to the variance; without normalize_variance, Y = X - mean.
    """
    x2, y2 = _mvn_rows(x, across_channels), _mvn_rows(out, across_channels)
    xp.subtract(x2, x2.mean(axis=1, keepdims=True), out=y2)
    if normalize_variance:
        xp.divide(y2, (_row_std(xp, y2) + eps)[:, None], out=y2)


def _check_mvn(x):
    if x.ndim < 2:
        raise ShapeError(f"MVN needs an input of at least 2 dimensions (N, C, ...), "
                         f"got {tuple(x.shape)}")


@mvn.shape
def _(x, *, normalize_variance, across_channels, eps):
    _check_mvn(x)
    return x


@mvn.grad
def _(g):
    inputs = [g.dY(0), g.X(0)] if g.args["normalize_variance"] else [g.dY(0)]
    return [g.op("MVNGradient", inputs, **g.args)]


@register("MVNGradient", inputs=(1, 2), args=dict(mvn.args))
def mvn_gradient(xp, dy, x=None, *, out, normalize_variance, across_channels, eps):
    """dX of MVN from dY (and X when it normalizes the variance).

    dX = (dY - mean(dY) - (X - mean) / std * mean(dY * Y)) / (std + eps), the
    exact gradient (Caffe drops the std / (std + eps) factor of the last term).
    """
    dy2, dx2 = _mvn_rows(dy, across_channels), _mvn_rows(out, across_channels)
    if not normalize_variance:
        xp.subtract(dy2, dy2.mean(axis=1, keepdims=True), out=dx2)
        return
    x2 = _mvn_rows(x, across_channels)
    xp.subtract(x2, x2.mean(axis=1, keepdims=True), out=dx2)
    std = _row_std(xp, dx2)
    denominator = std + eps
    mean_dy_y = xp.einsum("ge,ge->g", dy2, dx2) / (dx2.shape[1] * denominator)
    # A constant row has std 0 and X - mean 0: any finite coefficient gives its 0 term.
    centered_coef = -mean_dy_y / xp.maximum(std, np.finfo(std.dtype).tiny)
    xp.multiply(dx2, centered_coef[:, None], out=dx2)
    xp.add(dx2, dy2, out=dx2)
    xp.subtract(dx2, dy2.mean(axis=1, keepdims=True), out=dx2)
    xp.divide(dx2, denominator[:, None], out=dx2)


@mvn_gradient.shape
def _(dy, x=None, *, normalize_variance, across_channels, eps):
    _check_mvn(dy)
    if normalize_variance and (x is None or tuple(x.shape) != tuple(dy.shape)):
        raise ShapeError("with normalize_variance, MVNGradient takes dY and X of one shape")
    return dy


# -- layer normalization -----------------------------------------------------------------------

def _layer_rows(a, axis):
    """``a`` as (rows, features), the features being its axes from ``axis`` on."""
    return a.reshape(math.prod(a.shape[:axis % a.ndim]), -1)


def _row_inv_std(xp, centered, eps):
    return 1.0 / xp.sqrt(xp.einsum("re,re->r", centered, centered) / centered.shape[1] + eps)


@register("LayerNorm", inputs=(1, 3), args={"axis": -1, "eps": 1e-5}, inplace={0: 0})
def layer_norm(xp, x, gamma=None, beta=None, *, out, axis, eps):
    """Y = (X - mean) / sqrt(var + eps) * gamma + beta, statistics over X's axes from ``axis`` on.

    gamma and beta have the shape of those axes.
    """
    x2, y2 = _layer_rows(x, axis), _layer_rows(out, axis)
    xp.subtract(x2, x2.mean(axis=1, keepdims=True), out=y2)
    xp.multiply(y2, _row_inv_std(xp, y2, eps)[:, None], out=y2)
    if gamma is not None:
        xp.multiply(y2, gamma.reshape(1, -1), out=y2)
    if beta is not None:
        xp.add(y2, beta.reshape(1, -1), out=y2)


@layer_norm.shape
def _(x, gamma=None, beta=None, *, axis, eps):
    axis = normalize_axis(axis, x.ndim)
    features = tuple(x.shape[axis:])
    for name, param in (("gamma", gamma), ("beta", beta)):
        if param is not None and tuple(param.shape) != features:
            raise ShapeError(f"{name} has shape {tuple(param.shape)}, expected {features}: "
                             f"the axes from {axis} of input {tuple(x.shape)}")
    return x


@layer_norm.grad
def _(g):
    need = [i < g.num_inputs and g.needs(i) for i in range(3)]
    inputs = [g.dY(0), g.X(0)] + ([g.X(1)] if g.num_inputs >= 2 else [])
    outs = g.op("LayerNormGradient", inputs, axis=g.args["axis"], eps=g.args["eps"],
                need=[int(n) for n in need])
    outs = iter(outs if isinstance(outs, list) else [outs])
    return [next(outs) if n else None for n in need][:g.num_inputs]


@register("LayerNormGradient", inputs=(2, 3), outputs=_count_needed,
          args={"axis": -1, "eps": 1e-5, "need": [1, 1, 1]})
def layer_norm_gradient(xp, dy, x, gamma=None, *, out, scratch, axis, eps, need):
    """dX, dgamma, dbeta of LayerNorm (those ``need`` flags), from dY, X and gamma if any."""
    dx, dgamma, dbeta = _grad_outputs(out, need)
    x2, dy2 = _layer_rows(x, axis), _layer_rows(dy, axis)
    normalized = _layer_rows(scratch[0], axis)
    xp.subtract(x2, x2.mean(axis=1, keepdims=True), out=normalized)
    inv_std = _row_inv_std(xp, normalized, eps)[:, None]
    xp.multiply(normalized, inv_std, out=normalized)
    if dgamma is not None:
        dgamma.reshape(-1)[...] = xp.einsum("re,re->e", dy2, normalized)
    if dbeta is not None:
        dbeta.reshape(-1)[...] = dy2.sum(axis=0)
    if dx is None:
        return
    # dX = inv_std * (G - mean(G) - Xhat * mean(G * Xhat)) with G = dY * gamma
    dx2 = _layer_rows(dx, axis)
    if gamma is None:
        xp.copyto(dx2, dy2)
    else:
        xp.multiply(dy2, gamma.reshape(1, -1), out=dx2)
    mean_g_xhat = xp.einsum("re,re->r", dx2, normalized)[:, None] / dx2.shape[1]
    mean_g = dx2.mean(axis=1, keepdims=True)
    xp.multiply(normalized, mean_g_xhat, out=normalized)
    xp.subtract(dx2, normalized, out=dx2)
    xp.subtract(dx2, mean_g, out=dx2)
    xp.multiply(dx2, inv_std, out=dx2)


@layer_norm_gradient.shape
def _(dy, x, gamma=None, *, axis, eps, need):
    if tuple(dy.shape) != tuple(x.shape):
        raise ShapeError(f"dY has shape {tuple(dy.shape)}, X has {tuple(x.shape)}")
    params = Spec(tuple(x.shape[normalize_axis(axis, x.ndim):]), dy.dtype)
    specs = [x.with_dtype(dy.dtype), params, params]
    return [s for s, flag in zip(specs, need) if flag]


@layer_norm_gradient.scratch
def _(dy, x, gamma=None, **args):
    return [x.with_dtype(dy.dtype)]


# -- L2 normalization --------------------------------------------------------------------------

def _l2_norm(xp, x3, eps):
    """sqrt(sum over the middle axis of X^2 + eps), shaped (outer, 1, inner)."""
    return xp.sqrt(xp.einsum("oci,oci->oi", x3, x3) + eps)[:, None, :]


@register("L2Normalize", args={"axis": 1, "eps": 1e-10}, inplace={0: 0})
def l2_normalize(xp, x, *, out, axis, eps):
    """Y = X / sqrt(sum of X^2 over ``axis`` + eps) (the SSD Caffe Normalize layer's norm)."""
    x3 = _view3(x, axis)
    xp.divide(x3, _l2_norm(xp, x3, eps), out=out.reshape(x3.shape))


@l2_normalize.shape
def _(x, *, axis, eps):
    normalize_axis(axis, x.ndim)
    return x


@l2_normalize.grad
def _(g):
    return [g.op("L2NormalizeGradient", [g.X(0), g.Y(0), g.dY(0)], **g.args)]


@register("L2NormalizeGradient", inputs=3, args=dict(l2_normalize.args))
def l2_normalize_gradient(xp, x, y, dy, *, out, axis, eps):
    """dX of L2Normalize: (dY - Y * sum over ``axis`` of dY * Y) / norm."""
    x3 = _view3(x, axis)
    y3, dy3, dx3 = (a.reshape(x3.shape) for a in (y, dy, out))
    projection = xp.einsum("oci,oci->oi", dy3, y3)[:, None, :]
    xp.multiply(y3, -projection, out=dx3)
    xp.add(dx3, dy3, out=dx3)
    xp.divide(dx3, _l2_norm(xp, x3, eps), out=dx3)


@l2_normalize_gradient.shape
def _(x, y, dy, *, axis, eps):
    normalize_axis(axis, x.ndim)
    return x.with_dtype(dy.dtype)
