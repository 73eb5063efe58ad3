"""Fillers (Caffe's and Caffe2's weight initializers) and Theano's random streams.

Fillers take no input and make a tensor of the ``shape`` and ``dtype`` they are
given. The ``Random*`` ops draw with the shape of their optional input, or
``shape`` without one. Every draw comes from ``dragon.backend.rng()`` on the
host, so one seed gives bit-identical values on CPU and GPU::

    w = dragon.ops.xavier_fill(shape=[64, 3, 3, 3])
    mask = dragon.ops.random_binomial(x, p=0.5)
"""
from __future__ import annotations

import numpy as np

from dragon.backend import random_array
from dragon.core.errors import ShapeError
from dragon.ops.registry import REQUIRED, Spec, register

VARIANCE_NORMS = ("FAN_IN", "FAN_OUT", "AVERAGE")


# -- shape rules shared by every filler ------------------------------------------------------

def _dtype(dtype, float_only=True):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ShapeError(f"dtype {dtype!r} is not a dtype") from None
    if float_only and dtype.kind != "f":
        raise ShapeError(f"dtype must be a floating-point type, got {dtype}")
    if dtype.kind not in "biuf":
        raise ShapeError(f"dtype must be a boolean or numeric type, got {dtype}")
    return dtype


def _fill_spec(shape, dtype, float_only=True):
    shape = tuple(shape)
    if any(int(d) != d or d < 0 for d in shape):
        raise ShapeError(f"shape {list(shape)} must hold non-negative integers")
    return Spec(tuple(int(d) for d in shape), _dtype(dtype, float_only))


def _random_spec(like, shape, dtype, float_only=True):
    """The output of a Random* op: the input's shape if there is one, else ``shape``."""
    if not like:
        return _fill_spec(shape, dtype, float_only)
    if shape and tuple(shape) != tuple(like[0].shape):
        raise ShapeError(f"shape {list(shape)} differs from the input's shape "
                         f"{tuple(like[0].shape)}; give one or the other")
    return _fill_spec(like[0].shape, dtype, float_only)


def _check_nonnegative(name, value):
    if value < 0:
        raise ShapeError(f"{name} must be >= 0, got {value}")


def _check_range(low, high):
    if low > high:
        raise ShapeError(f"low ({low}) must not exceed high ({high})")


def _no_gradient(g):
    return [None] * g.num_inputs


# -- Caffe's fan-in/fan-out scaled fillers -----------------------------------------------------

def _fans(shape):
    """Caffe's fan_in = count / num and fan_out = count / channels (missing axes count 1)."""
    count = int(np.prod(shape, dtype=np.int64))
    num = shape[0] if len(shape) >= 1 else 1
    channels = shape[1] if len(shape) >= 2 else 1
    return count // num, count // channels


def _scale_denominator(shape, variance_norm):
    fan_in, fan_out = _fans(shape)
    if variance_norm == "FAN_OUT":
        return fan_out
    if variance_norm == "AVERAGE":
        return (fan_in + fan_out) / 2.0
    return fan_in


def _fan_spec(shape, dtype, variance_norm):
    spec = _fill_spec(shape, dtype)
    if variance_norm not in VARIANCE_NORMS:
        raise ShapeError(f"variance_norm must be one of {list(VARIANCE_NORMS)}, "
                         f"got {variance_norm!r}")
    if spec.size == 0:
        raise ShapeError(f"shape {list(shape)} has no elements to scale by")
    return spec


# -- fillers ---------------------------------------------------------------------------------

@register("UniformFill", inputs=0, stateful=True,
          args={"shape": REQUIRED, "dtype": "float32", "low": 0.0, "high": 1.0})
def uniform_fill(xp, *, out, shape, dtype, low, high):
    """Y ~ U(low, high), of the given shape and dtype (Caffe's uniform filler)."""
    random_array(xp, lambda gen, size: gen.uniform(low, high, size), out)


@uniform_fill.shape
def _(*, shape, dtype, low, high):
    _check_range(low, high)
    return _fill_spec(shape, dtype)


@register("GaussianFill", inputs=0, stateful=True,
          args={"shape": REQUIRED, "dtype": "float32", "mean": 0.0, "std": 1.0})
def gaussian_fill(xp, *, out, shape, dtype, mean, std):
    """Y ~ N(mean, std^2), of the given shape and dtype (Caffe's gaussian filler)."""
    random_array(xp, lambda gen, size: gen.normal(mean, std, size), out)


@gaussian_fill.shape
def _(*, shape, dtype, mean, std):
    _check_nonnegative("std", std)
    return _fill_spec(shape, dtype)


def _truncated_normal(gen, size, mean, std):
    values = gen.normal(mean, std, size)
    outside = np.abs(values - mean) > 2 * std
    while outside.any():  # rounds of redraws, each over the few values left outside
        values[outside] = gen.normal(mean, std, int(outside.sum()))
        outside = np.abs(values - mean) > 2 * std
    return values


@register("TruncatedNormalFill", inputs=0, stateful=True,
          args={"shape": REQUIRED, "dtype": "float32", "mean": 0.0, "std": 1.0})
def truncated_normal_fill(xp, *, out, shape, dtype, mean, std):
    """Y ~ N(mean, std^2) redrawn until within 2 std of the mean."""
    random_array(xp, lambda gen, size: _truncated_normal(gen, size, mean, std), out)


@truncated_normal_fill.shape
def _(*, shape, dtype, mean, std):
    _check_nonnegative("std", std)
    return _fill_spec(shape, dtype)


@register("XavierFill", inputs=0, stateful=True,
          args={"shape": REQUIRED, "dtype": "float32", "variance_norm": "FAN_IN"})
def xavier_fill(xp, *, out, shape, dtype, variance_norm):
    """Y ~ U(-a, a) with a = sqrt(3 / n), n the fan-in, fan-out or their average (Caffe)."""
    limit = np.sqrt(3.0 / _scale_denominator(tuple(shape), variance_norm))
    random_array(xp, lambda gen, size: gen.uniform(-limit, limit, size), out)


@xavier_fill.shape
def _(*, shape, dtype, variance_norm):
    return _fan_spec(shape, dtype, variance_norm)


@register("MSRAFill", inputs=0, stateful=True,
          args={"shape": REQUIRED, "dtype": "float32", "variance_norm": "FAN_IN"})
def msra_fill(xp, *, out, shape, dtype, variance_norm):
    """Y ~ N(0, 2 / n), n the fan-in, fan-out or their average (Caffe's msra filler)."""
    std = np.sqrt(2.0 / _scale_denominator(tuple(shape), variance_norm))
    random_array(xp, lambda gen, size: gen.normal(0.0, std, size), out)


@msra_fill.shape
def _(*, shape, dtype, variance_norm):
    return _fan_spec(shape, dtype, variance_norm)


def _unit_rows(gen, size):
    values = gen.uniform(0.0, 1.0, size)
    rows = values.reshape(size[0] if size else 1, -1)
    rows /= rows.sum(axis=1, keepdims=True)
    return values


@register("PositiveUnitballFill", inputs=0, stateful=True,
          args={"shape": REQUIRED, "dtype": "float32"})
def positive_unitball_fill(xp, *, out, shape, dtype):
    """Y ~ U(0, 1), each of the shape[0] rows then divided by its sum (Caffe)."""
    random_array(xp, _unit_rows, out)


@positive_unitball_fill.shape
def _(*, shape, dtype):
    spec = _fill_spec(shape, dtype)
    if spec.size == 0:
        raise ShapeError(f"shape {list(shape)} has no elements to normalize")
    return spec


@register("BilinearFill", inputs=0, recompute=True, args={"shape": REQUIRED, "dtype": "float32"})
def bilinear_fill(xp, *, out, shape, dtype):
    """Y[n, c] = the K x K bilinear upsampling kernel (Caffe's bilinear filler), for every n, c."""
    size = out.shape[-1]
    f = np.ceil(size / 2.0)
    center = (size - 1) / (2.0 * f)
    profile = 1.0 - xp.abs(xp.arange(size, dtype=out.dtype) / f - center)
    out[...] = profile[:, None] * profile[None, :]


@bilinear_fill.shape
def _(*, shape, dtype):
    spec = _fill_spec(shape, dtype)
    if spec.ndim != 4 or spec.shape[2] != spec.shape[3]:
        raise ShapeError(f"the bilinear filler needs a 4-d (N, C, K, K) shape, got {list(shape)}")
    return spec


@register("GivenTensorFill", inputs=0, recompute=True,
          args={"values": REQUIRED, "shape": REQUIRED, "dtype": "float32"})
def given_tensor_fill(xp, *, out, values, shape, dtype):
    """Y = ``values`` (flat, row-major) reshaped to ``shape``."""
    out[...] = xp.asarray(values, dtype=out.dtype).reshape(out.shape)


@given_tensor_fill.shape
def _(*, values, shape, dtype):
    spec = _fill_spec(shape, dtype, float_only=False)
    if len(values) != spec.size:
        raise ShapeError(f"{len(values)} values cannot fill shape {list(shape)} "
                         f"({spec.size} elements)")
    return spec


# -- Theano's RandomStreams ------------------------------------------------------------------

@register("RandomUniform", inputs=(0, 1), stateful=True,
          args={"shape": [], "dtype": "float32", "low": 0.0, "high": 1.0})
def random_uniform(xp, *like, out, shape, dtype, low, high):
    """Y ~ U(low, high), shaped like the input (or ``shape`` without one)."""
    random_array(xp, lambda gen, size: gen.uniform(low, high, size), out)


@random_uniform.shape
def _(*like, shape, dtype, low, high):
    _check_range(low, high)
    return _random_spec(like, shape, dtype)


@register("RandomNormal", inputs=(0, 1), stateful=True,
          args={"shape": [], "dtype": "float32", "mean": 0.0, "std": 1.0})
def random_normal(xp, *like, out, shape, dtype, mean, std):
    """Y ~ N(mean, std^2), shaped like the input (or ``shape`` without one)."""
    random_array(xp, lambda gen, size: gen.normal(mean, std, size), out)


@random_normal.shape
def _(*like, shape, dtype, mean, std):
    _check_nonnegative("std", std)
    return _random_spec(like, shape, dtype)


@register("RandomBinomial", inputs=(0, 1), stateful=True,
          args={"shape": [], "dtype": "float32", "n": 1, "p": 0.5})
def random_binomial(xp, *like, out, shape, dtype, n, p):
    """Y ~ Binomial(n, p) (successes in n trials), shaped like the input (or ``shape``)."""
    random_array(xp, lambda gen, size: gen.binomial(n, p, size), out)


@random_binomial.shape
def _(*like, shape, dtype, n, p):
    if int(n) != n or n < 0:
        raise ShapeError(f"n must be a non-negative integer, got {n}")
    if not 0.0 <= p <= 1.0:
        raise ShapeError(f"p must be within [0, 1], got {p}")
    return _random_spec(like, shape, dtype, float_only=False)


for _op in (random_uniform, random_normal, random_binomial):
    _op.grad(_no_gradient)
