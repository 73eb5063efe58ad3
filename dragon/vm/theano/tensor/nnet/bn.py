"""Batch normalization (``theano.tensor.nnet.bn``), written with tensor ops so gradients flow.

    out = T.nnet.batch_normalization(x, gamma, beta, mean, std)       # given statistics
    out, mean, invstd = bn.batch_normalization_train(x, gamma, beta, axes="spatial")
    out, mean, invstd, new_rm, new_rv = bn.batch_normalization_train(
        x, gamma, beta, running_mean=rm, running_var=rv)              # update rm, rv with these
    out = bn.batch_normalization_test(x, gamma, beta, rm, rv)
"""
from __future__ import annotations

import numpy as np

from dragon.vm.theano.configparser import config
from dragon.vm.theano.tensor import basic
from dragon.vm.theano.tensor.var import as_tensor_variable


def batch_normalization(inputs, gamma, beta, mean, std, mode="low_mem"):
    """(inputs - mean) * (gamma / std) + beta, all broadcasting elementwise.

    mode: 'low_mem' or 'high_mem' (Theano's memory trade-off; the same result here).

    >>> out = T.nnet.batch_normalization(x, g, b, x.mean(0, keepdims=True),
    ...                                  T.sqrt(x.var(0, keepdims=True) + 1e-4))
    """
    if mode not in ("low_mem", "high_mem"):
        raise ValueError(f'mode must be "low_mem" or "high_mem", got {mode!r}')
    inputs, gamma, beta, mean, std = (as_tensor_variable(v) for v in (inputs, gamma, beta,
                                                                        mean, std))
    return (inputs - mean) * (gamma / std) + beta


def _axes(axes, ndim):
    """(normalized axes, the other axes) for 'per-activation', 'spatial' or a tuple."""
    if axes == "per-activation":
        axes = (0,)
    elif axes == "spatial":
        axes = (0,) + tuple(range(2, ndim))
    elif isinstance(axes, (tuple, list, np.ndarray)):
        axes = tuple(int(a) % ndim for a in axes)
    else:
        raise ValueError(f"invalid axes: {axes!r} (use 'per-activation', 'spatial' or a tuple)")
    axes = tuple(sorted(set(axes)))
    if not axes:
        raise ValueError("there should be at least one normalization axis")
    return axes, tuple(a for a in range(ndim) if a not in axes)


def _broadcast_params(params, ndim, axes, kept):
    """Parameters given without the normalized axes get them back as broadcastable axes."""
    out = []
    for name, p in params:
        p = as_tensor_variable(p)
        if p.ndim == ndim:
            out.append(basic.addbroadcast(p, *axes))
        elif p.ndim == len(kept):
            pattern = ["x"] * ndim
            for i, axis in enumerate(kept):
                pattern[axis] = i
            out.append(p.dimshuffle(pattern))
        else:
            raise ValueError(f"{name} '{p}' ({p.type}) should have {ndim} or {len(kept)} "
                             f"dimensions for inputs of {ndim} normalized over axes {axes}")
    return out


def _epsilon(epsilon):
    value = np.asarray(epsilon, dtype=config.floatX)
    if value < 1e-5:
        raise ValueError(f"epsilon must be at least 1e-5, got {epsilon}")
    return value


def batch_normalization_train(inputs, gamma, beta, axes="per-activation", epsilon=1e-4,
                              running_average_factor=0.1, running_mean=None, running_var=None):
    """Normalize with the batch's statistics over ``axes``.

    Returns (out, mean, invstd), plus (new running mean, new running var) when both
    running averages are given; the running variance averages the unbiased variance.
    Statistics are shaped like ``gamma`` (with or without the normalized axes).
    """
    inputs = as_tensor_variable(inputs)
    ndim = inputs.ndim
    axes, kept = _axes(axes, ndim)
    squeeze = as_tensor_variable(gamma).ndim != ndim
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be given or both None")
    gamma, beta = _broadcast_params([("gamma", gamma), ("beta", beta)], ndim, axes, kept)
    eps = _epsilon(epsilon)
    mean = basic.mean(inputs, axis=axes, keepdims=True)
    var = basic.var(inputs, axis=axes, keepdims=True)
    invstd = basic.inv(basic.sqrt(var + eps))
    out = (inputs - mean) * (gamma * invstd) + beta
    results = [mean, invstd]
    if running_mean is not None:
        running_mean, running_var = _broadcast_params(
            [("running_mean", running_mean), ("running_var", running_var)], ndim, axes, kept)
        factor = np.asarray(running_average_factor, dtype=config.floatX)
        count = basic.prod(basic.stack([inputs.shape[a] for a in axes]))
        unbiased = var * basic.cast(count, var.dtype) / basic.cast(count - 1, var.dtype)
        results.append(running_mean * (1.0 - factor) + mean * factor)
        results.append(running_var * (1.0 - factor) + unbiased * factor)
    if squeeze:
        results = [r.dimshuffle(kept) for r in results]
    return tuple([out] + results)


def batch_normalization_test(inputs, gamma, beta, mean, var, axes="per-activation",
                             epsilon=1e-4):
    """Normalize with given statistics: (inputs - mean) * gamma / sqrt(var + epsilon) + beta."""
    inputs = as_tensor_variable(inputs)
    ndim = inputs.ndim
    axes, kept = _axes(axes, ndim)
    gamma, beta, mean, var = _broadcast_params(
        [("gamma", gamma), ("beta", beta), ("mean", mean), ("var", var)], ndim, axes, kept)
    eps = _epsilon(epsilon)
    return (inputs - mean) * (gamma / basic.sqrt(var + eps)) + beta
