"""``theano.sandbox.rng_mrg``: ``MRG_RandomStreams``, the random streams of the tutorials.

    from dragon.vm.theano.sandbox.rng_mrg import MRG_RandomStreams
    theano_rng = MRG_RandomStreams(1234)
    corrupted = theano_rng.binomial(size=x.shape, n=1, p=0.7, dtype=theano.config.floatX) * x
    noise = theano_rng.normal((batch, 10), avg=0.0, std=0.1)

The API and dtype rules are Theano's (``binomial`` draws uniforms and compares them
with ``p``, so ``p`` may be any tensor; ``multinomial`` samples one-hot rows from
``pvals``). The numbers come from the same per-draw shared random states as
``shared_randomstreams`` (not from Theano's MRG31k3p generator), so they differ from
Theano's while following the same distributions; each draw advances its state on every
call unless ``no_default_updates`` says otherwise.
"""
from __future__ import annotations

import numpy as np

from dragon.vm.theano.configparser import config
from dragon.vm.theano.tensor import basic, extra_ops
from dragon.vm.theano.tensor import type as ttype
from dragon.vm.theano.tensor.shared_randomstreams import draw, shared_random_state
from dragon.vm.theano.tensor.var import as_tensor_variable


def _seed_generator(seed):
    """The generator of per-draw seeds: an int seed, or Theano's list of six ints."""
    if isinstance(seed, (list, tuple, np.ndarray)):
        words = [int(s) for s in seed]
        if len(words) != 6 or any(w < 0 for w in words) or not any(words):
            raise ValueError(f"an MRG seed is an int or 6 non-negative ints, not all zero; got "
                             f"{seed!r}")
        return np.random.RandomState(np.asarray(words, dtype=np.uint32))
    if not isinstance(seed, (int, np.integer)) or seed <= 0:
        raise ValueError(f"an MRG seed must be a positive int, got {seed!r}")
    return np.random.RandomState(int(seed) % (2 ** 32))


class MRG_RandomStreams:  # noqa: N801 - Theano's name
    """Random variables for ``theano.function`` graphs (see the module docstring).

    >>> srng = MRG_RandomStreams(seed=1234)
    >>> u = srng.uniform((3, 2)); bits = srng.binomial(size=(5,), p=0.3, dtype="int8")
    """

    def __init__(self, seed=12345):
        self.state_updates = []
        self.default_instance_seed = seed
        self._seedgen = _seed_generator(seed)

    def seed(self, seed=None):
        """Reseed every variable made so far (Theano resets its substreams the same way)."""
        if seed is None:
            seed = self.default_instance_seed
        seedgen = _seed_generator(seed)
        for state, _ in self.state_updates:
            state.set_value(np.random.RandomState(int(seedgen.randint(2 ** 30))), borrow=True)
        self._seedgen = seedgen

    def updates(self):
        """The ``(random state, state after the draw)`` pairs of every variable made."""
        return list(self.state_updates)

    def _gen(self, distribution, size, params, dtype, ndim=None):
        state = shared_random_state(np.random.RandomState(int(self._seedgen.randint(2 ** 30))))
        new_state, out = draw(state, distribution, size, params, dtype, ndim)
        out.rng = out.rstate = state
        out.update = (state, new_state)
        self.state_updates.append(out.update)
        state.default_update = new_state
        return out

    # -- distributions ----------------------------------------------------------------
    def uniform(self, size, low=0.0, high=1.0, ndim=None, dtype=None, nstreams=None, **kwargs):
        """Samples from U(low, high) of shape ``size`` (a tuple or a shape vector).

        dtype: default the upcast of floatX, low and high.
        """
        if size is None:
            raise TypeError("MRG_RandomStreams.uniform needs a size (a tuple of ints or "
                            "symbolic sizes, or a shape vector such as x.shape)")
        low, high = as_tensor_variable(low), as_tensor_variable(high)
        if dtype is None:
            dtype = ttype.upcast(config.floatX, low.dtype, high.dtype)
        dtype = config.floatX if dtype == "floatX" else str(np.dtype(dtype))
        return self._gen("uniform", size, [low, high], dtype, ndim)

    def binomial(self, size=None, n=1, p=0.5, ndim=None, dtype="int64", nstreams=None,
                 **kwargs):
        """Bernoulli trials: ``cast(uniform(size) < p, dtype)``; ``p`` may be a tensor."""
        if n != 1:
            raise NotImplementedError("MRG_RandomStreams.binomial with n > 1")
        p = as_tensor_variable(p)
        if size is None:
            size = p.shape
            ndim = p.ndim if ndim is None else ndim
        u = self.uniform(size=size, ndim=ndim)
        return basic.cast(basic.lt(u, p), config.floatX if dtype == "floatX" else dtype)

    def normal(self, size, avg=0.0, std=1.0, ndim=None, dtype=None, nstreams=None,
               truncate=False, **kwargs):
        """Samples from N(avg, std^2) of shape ``size``."""
        if truncate:
            raise NotImplementedError("MRG_RandomStreams.normal(truncate=True) is not supported")
        if size is None:
            raise TypeError("MRG_RandomStreams.normal needs a size")
        avg, std = as_tensor_variable(avg), as_tensor_variable(std)
        if dtype is None:
            dtype = ttype.upcast(config.floatX, avg.dtype, std.dtype)
        dtype = config.floatX if dtype == "floatX" else str(np.dtype(dtype))
        return self._gen("normal", size, [avg, std], dtype, ndim)

    def multinomial(self, size=None, n=1, pvals=None, ndim=None, dtype="int64", nstreams=None,
                    **kwargs):
        """One row of counts per row of ``pvals`` (a matrix of probabilities): each of the
        ``n`` trials adds 1 to the column it picks.

        >>> picks = srng.multinomial(pvals=probs)          # one-hot rows
        """
        if pvals is None:
            raise TypeError("MRG_RandomStreams.multinomial needs pvals")
        pvals = as_tensor_variable(pvals)
        if pvals.ndim != 2:
            raise NotImplementedError(f"multinomial takes a matrix of pvals, got {pvals.type}")
        if size is not None:
            raise ValueError("MRG_RandomStreams.multinomial takes its shape from pvals; pass "
                             "size=None")
        cdf = extra_ops.cumsum(pvals, axis=1)
        # the last column always takes what rounding leaves below 1
        cdf = basic.concatenate([cdf[:, :-1], basic.ones_like(cdf[:, -1:]) * 2], axis=1)
        counts = None
        for _ in range(int(n)):
            u = self.uniform(size=(pvals.shape[0],), dtype=cdf.dtype).dimshuffle(0, "x")
            below = basic.cast(basic.lt(u, cdf), "int8")
            first = below - basic.concatenate([basic.zeros_like(below[:, :1]), below[:, :-1]],
                                              axis=1)
            counts = first if counts is None else counts + first
        return basic.cast(counts, dtype)

    def choice(self, size=1, a=None, replace=True, p=None, ndim=None, dtype="int64",
               nstreams=None, **kwargs):
        raise NotImplementedError("MRG_RandomStreams.choice is not supported; use multinomial")
