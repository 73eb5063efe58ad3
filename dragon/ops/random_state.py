"""Draws from a random state held in a tensor (the random streams of Theano's front end).

A state is numpy's legacy Mersenne Twister (``np.random.RandomState``) packed into a
uint32 vector of ``STATE_WORDS`` words: the 624 key words, the position, the
has-Gaussian flag and the cached Gaussian (two words). Each op reads a state and
parameters and writes (sample, state after the draw): it is a pure function of its
inputs, so a front end advances a stream by writing the second output back into the
state variable, and replays it by not doing so. The sample equals what
``RandomState.uniform(low, high, size)`` (``normal``, ``binomial``,
``random_integers``) returns from that state, cast to ``dtype``::

    state = dragon.constant(pack_state(np.random.RandomState(234)))
    y, after = dragon.ops.random_state_uniform(state, 0.0, 1.0, shape=[2, 2], dtype="float64")
"""
from __future__ import annotations

import numpy as np

from dragon.backend import to_numpy
from dragon.core.errors import ShapeError
from dragon.ops.registry import REQUIRED, Spec, register

KEY_WORDS = 624
STATE_WORDS = KEY_WORDS + 4
_ARGS = {"shape": REQUIRED, "dtype": "float64"}


def pack_state(rng: np.random.RandomState) -> np.ndarray:
    """The uint32 vector holding ``rng``'s state."""
    name, key, pos, has_gauss, gauss = rng.get_state(legacy=True)
    tail = np.array([pos, has_gauss], np.uint32)
    return np.concatenate([np.asarray(key, np.uint32), tail,
                           np.array([gauss], np.float64).view(np.uint32)])


def unpack_state(words) -> np.random.RandomState:
    """A RandomState in the state ``words`` (from ``pack_state``) hold."""
    words = np.ascontiguousarray(to_numpy(words), dtype=np.uint32)
    if words.shape != (STATE_WORDS,):
        raise ShapeError(f"a random state is a uint32 vector of {STATE_WORDS} words, got shape "
                         f"{words.shape}")
    rng = np.random.RandomState()
    gauss = float(words[KEY_WORDS + 2:].view(np.float64)[0])
    rng.set_state(("MT19937", words[:KEY_WORDS], int(words[KEY_WORDS]),
                   int(words[KEY_WORDS + 1]), gauss))
    return rng


def _write(xp, out, values):
    values = np.ascontiguousarray(values, dtype=out.dtype).reshape(out.shape)
    if xp is np:
        out[...] = values
    else:
        out.set(values)


def _draw(xp, method, state, params, out, shape):
    rng = unpack_state(state)
    host = [to_numpy(p) for p in params]
    _write(xp, out[0], getattr(rng, method)(*host, size=tuple(shape)))
    _write(xp, out[1], pack_state(rng))


def _specs(state, *params, shape, dtype, float_only=True):
    if tuple(state.shape) != (STATE_WORDS,) or state.dtype != np.uint32:
        raise ShapeError(f"the state must be a uint32 vector of {STATE_WORDS} words, got "
                         f"{state.dtype} {tuple(state.shape)}")
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ShapeError(f"shape {list(shape)} must hold non-negative sizes")
    try:
        np.broadcast_shapes(shape, *[p.shape for p in params])
    except ValueError:
        raise ShapeError(f"parameters of shapes {[tuple(p.shape) for p in params]} do not "
                         f"broadcast to the sample shape {list(shape)}") from None
    dtype = np.dtype(dtype)
    if (float_only and dtype.kind != "f") or dtype.kind not in "biuf":
        raise ShapeError(f"dtype {dtype} cannot hold these samples")
    return [Spec(shape, dtype), Spec((STATE_WORDS,), np.dtype(np.uint32))]


def _no_gradient(g):
    return [None] * g.num_inputs


@register("RandomStateUniform", inputs=3, outputs=2, args=_ARGS)
def random_state_uniform(xp, state, low, high, *, out, shape, dtype):
    """(Y, state') with Y ~ U(low, high) drawn from ``state`` (RandomState.uniform)."""
    _draw(xp, "uniform", state, (low, high), out, shape)


@register("RandomStateNormal", inputs=3, outputs=2, args=_ARGS)
def random_state_normal(xp, state, mean, std, *, out, shape, dtype):
    """(Y, state') with Y ~ N(mean, std^2) drawn from ``state`` (RandomState.normal)."""
    _draw(xp, "normal", state, (mean, std), out, shape)


@register("RandomStateBinomial", inputs=3, outputs=2, args=_ARGS)
def random_state_binomial(xp, state, n, p, *, out, shape, dtype):
    """(Y, state') with Y ~ Binomial(n, p) drawn from ``state`` (RandomState.binomial)."""
    _draw(xp, "binomial", state, (n, p), out, shape)


@register("RandomStateIntegers", inputs=3, outputs=2, args=_ARGS)
def random_state_integers(xp, state, low, high, *, out, shape, dtype):
    """(Y, state') with Y uniform over the integers low..high inclusive (random_integers)."""
    rng = unpack_state(state)
    low, high = to_numpy(low), to_numpy(high)
    # RandomState.random_integers is deprecated; randint(low, high + 1) draws the same.
    _write(xp, out[0], rng.randint(low, np.asarray(high) + 1, size=tuple(shape)))
    _write(xp, out[1], pack_state(rng))


@random_state_uniform.shape
def _(state, low, high, *, shape, dtype):
    return _specs(state, low, high, shape=shape, dtype=dtype)


@random_state_normal.shape
def _(state, mean, std, *, shape, dtype):
    return _specs(state, mean, std, shape=shape, dtype=dtype)


@random_state_binomial.shape
def _(state, n, p, *, shape, dtype):
    return _specs(state, n, p, shape=shape, dtype=dtype, float_only=False)


@random_state_integers.shape
def _(state, low, high, *, shape, dtype):
    return _specs(state, low, high, shape=shape, dtype=dtype, float_only=False)


for _op in (random_state_uniform, random_state_normal, random_state_binomial,
            random_state_integers):
    _op.grad(_no_gradient)
