"""``theano.tensor.shared_randomstreams``: random variables whose state is a shared variable.

    from dragon.vm.theano.tensor.shared_randomstreams import RandomStreams
    srng = RandomStreams(seed=234)
    rv_u = srng.uniform((2, 2))
    rv_n = srng.normal((2, 2))
    f = theano.function([], rv_u)                              # new numbers every call
    g = theano.function([], rv_n, no_default_updates=True)     # the same numbers every call
    nearly_zeros = theano.function([], rv_u + rv_u - 2 * rv_u)  # one draw per call: zeros

As in Theano, every draw owns a shared variable holding a ``numpy.random.RandomState``
(``rv.rng``) whose ``default_update`` is the state after the draw, so a function that
uses the draw advances it unless ``no_default_updates`` says otherwise. A stream's
seed generator gives each new draw the seed ``randint(2 ** 30)`` and draws call the
RandomState's own methods, so the numbers are the ones Theano gives. The draw lowers
to the core's ``RandomState*`` ops, pure functions of the state.
"""
from __future__ import annotations

import numpy as np

from dragon.core.tensor import apply as core_apply
from dragon.ops.random_state import STATE_WORDS, pack_state, unpack_state
from dragon.vm.theano.configparser import config
from dragon.vm.theano.tensor import basic
from dragon.vm.theano.tensor import type as ttype
from dragon.vm.theano.tensor.type import TensorType
from dragon.vm.theano.tensor.var import (Apply, Op, TensorConstant, TensorSharedVariable,
                                         as_tensor_variable)

STATE_TYPE = TensorType("uint32", (False,))


# -- the state: a shared variable holding a RandomState -------------------------------------

def _state_words(value):
    if isinstance(value, np.random.RandomState):
        return pack_state(value)
    words = np.asarray(value)
    if words.dtype != np.uint32 or words.shape != (STATE_WORDS,):
        raise TypeError(f"a random state variable holds a numpy.random.RandomState, got "
                        f"{type(value).__name__}")
    return words


class RandomStateSharedVariable(TensorSharedVariable):
    """A shared ``numpy.random.RandomState``: ``get_value()`` returns one (a copy),
    ``set_value(rng)`` stores one.

    >>> rng = rv.rng.get_value(borrow=True); rng.seed(3); rv.rng.set_value(rng, borrow=True)
    """

    def __init__(self, name, value):
        TensorSharedVariable.__init__(self, name, STATE_TYPE, _state_words(value))
        self.tag.is_rng = True

    def get_value(self, borrow=False, return_internal_type=False):
        words = TensorSharedVariable.get_value(self, borrow=borrow)
        return words if return_internal_type else unpack_state(words)

    def set_value(self, value, borrow=False):
        TensorSharedVariable.set_value(self, _state_words(value))

    def clone(self):
        copy = RandomStateSharedVariable(self.name, self.get_value())
        copy.default_update = self.default_update
        return copy

    def __str__(self):
        return self.name if self.name is not None else "<RandomStateType>"

    def __setstate__(self, state):
        state["_value"] = _state_words(state["_value"])
        TensorSharedVariable.__setstate__(self, state)


def shared_random_state(rng, name=None):
    """A shared variable holding RandomState ``rng`` (Theano's ``shared(RandomState(...))``)."""
    return RandomStateSharedVariable(name, rng)


# -- the draw op --------------------------------------------------------------------------

_CORE_OPS = {"uniform": "RandomStateUniform", "normal": "RandomStateNormal",
             "binomial": "RandomStateBinomial", "random_integers": "RandomStateIntegers"}


class RandomFunction(Op):
    """One draw: (state, size entries..., parameters...) -> (new state, sample).

    Theano's order of outputs: ``new_state, sample = RandomFunction(...)(...)``.
    """

    def __init__(self, distribution, out_type, size_template, n_params):
        self.distribution = distribution
        self.out_type = out_type
        self.size_template = size_template     # ints and ('in', k) entries, or 'vector' or None
        self.n_params = n_params
        self.name = distribution

    connected = False     # a draw has no gradient with respect to its parameters

    def make_node(self, state, size_vars, params):
        return Apply(self, [state] + list(size_vars) + list(params),
                     [STATE_TYPE(), self.out_type()])

    def _shape(self, ctx, node):
        n_size = len(node.inputs) - 1 - self.n_params
        params = node.inputs[1 + n_size:]
        if self.size_template is None:
            return list(np.broadcast_shapes(*[tuple(ctx.lower(p).shape) for p in params]))
        if self.size_template == "vector":
            return [int(d) for d in np.atleast_1d(ctx.value(node.inputs[1]))]
        return basic._resolve_dims(ctx, node, self.size_template, 1)

    def lower(self, ctx, node, state, *rest):
        shape = self._shape(ctx, node)
        if len(shape) != self.out_type.ndim:
            raise ValueError(f"{self.distribution}: the size {tuple(shape)} has {len(shape)} "
                             f"dimensions, the random variable was declared with "
                             f"{self.out_type.ndim} ({self.out_type})")
        params = list(rest[len(rest) - self.n_params:])
        work = "int64" if self.distribution == "random_integers" else "float64"
        if self.distribution == "binomial":
            params = [basic.cast_core(params[0], "int64"), basic.cast_core(params[1], "float64")]
        else:
            params = [basic.cast_core(p, work) for p in params]
        sample, new_state = core_apply(_CORE_OPS[self.distribution], [state] + params,
                                       shape=shape, dtype=self.out_type.dtype)
        return [new_state, sample]


def _size_entries(size):
    """(template, variables, ndim, broadcastable) of a ``size`` argument."""
    if size is None:
        return None, [], None, None
    entries = basic._as_shape_entries(size)
    if isinstance(entries, list):
        template, variables = basic._shape_template(entries)
        pattern = tuple(isinstance(e, int) and e == 1 for e in entries)
        return template, variables, len(entries), pattern
    length = entries._static_length()
    return "vector", [entries], length, None if length is None else (False,) * length


def draw(random_state, distribution, size, params, dtype, ndim=None):
    """(new_state, sample): ``distribution`` drawn from shared ``random_state``."""
    params = [as_tensor_variable(p) for p in params]
    template, size_vars, size_ndim, pattern = _size_entries(size)
    if template is None:
        pattern = basic._broadcast_pattern(*params) if params else ()
        size_ndim = len(pattern)
    if size_ndim is None:
        if ndim is None:
            raise ValueError(f"{distribution}: the size '{size}' has an unknown length; pass "
                             f"ndim=")
        size_ndim, pattern = int(ndim), (False,) * int(ndim)
    if ndim is not None and int(ndim) != size_ndim:
        raise ValueError(f"{distribution}: ndim={ndim} does not match the size {size!r} "
                         f"({size_ndim} dimensions)")
    for p in params:
        if p.ndim > size_ndim:
            raise ValueError(f"{distribution}: the parameter '{p}' ({p.type}) has more "
                             f"dimensions than the {size_ndim}-d sample")
    out_type = TensorType(dtype, pattern)
    op = RandomFunction(distribution, out_type, template, len(params))
    node = op.make_node(random_state, size_vars, params)
    return node.outputs[0], node.outputs[1]


# -- RandomStreams --------------------------------------------------------------------------

def _float_dtype(dtype, *params):
    if dtype is not None:
        return config.floatX if dtype == "floatX" else str(np.dtype(dtype))
    return ttype.upcast(config.floatX, *[as_tensor_variable(p).dtype for p in params])


class RandomStreams:
    """A factory of random variables, each with its own shared RandomState.

    ``seed(s)`` reseeds every variable made so far, ``updates()`` lists the
    ``(state, new_state)`` pairs (also each state's ``default_update``).

    >>> srng = RandomStreams(seed=234)
    >>> u = srng.uniform((2, 2)); mask = srng.binomial(size=x.shape, p=0.8, dtype=x.dtype)
    """

    def __init__(self, seed=None):
        self.state_updates = []
        self.default_instance_seed = seed
        self.gen_seedgen = np.random.RandomState(seed)

    def updates(self):
        """The ``(random state, state after the draw)`` pairs of every variable made."""
        return list(self.state_updates)

    def seed(self, seed=None):
        """Reseed every random variable made so far (from ``seed``, or the stream's own)."""
        if seed is None:
            seed = self.default_instance_seed
        seedgen = np.random.RandomState(seed)
        for state, _ in self.state_updates:
            state.set_value(np.random.RandomState(int(seedgen.randint(2 ** 30))), borrow=True)

    def __getitem__(self, item):
        return item.get_value(borrow=True)

    def __setitem__(self, item, value):
        item.set_value(value, borrow=True)

    def gen(self, distribution, size, params, dtype, ndim=None):
        """A new random variable of ``distribution`` with its own seeded state."""
        seed = int(self.gen_seedgen.randint(2 ** 30))
        state = shared_random_state(np.random.RandomState(seed))
        new_state, out = draw(state, distribution, size, params, dtype, ndim)
        out.rng = state
        out.update = (state, new_state)
        self.state_updates.append(out.update)
        state.default_update = new_state
        return out

    # -- distributions ----------------------------------------------------------------
    def uniform(self, size=None, low=0.0, high=1.0, ndim=None, dtype=None):
        """Samples from U(low, high); dtype defaults to the upcast of floatX, low and high."""
        return self.gen("uniform", size, [low, high], _float_dtype(dtype, low, high), ndim)

    def normal(self, size=None, avg=0.0, std=1.0, ndim=None, dtype=None):
        """Samples from N(avg, std^2)."""
        return self.gen("normal", size, [avg, std], _float_dtype(dtype, avg, std), ndim)

    def binomial(self, size=None, n=1, p=0.5, ndim=None, dtype="int64", prob=None):
        """Numbers of successes in ``n`` trials of probability ``p`` (int64 by default).

        >>> mask = srng.binomial(size=x.shape, n=1, p=0.9, dtype=theano.config.floatX)
        """
        if prob is not None:
            p = prob
        dtype = config.floatX if dtype == "floatX" else dtype
        return self.gen("binomial", size, [n, p], dtype, ndim)

    def random_integers(self, size=None, low=0, high=1, ndim=None, dtype="int64"):
        """Integers drawn uniformly from low..high (both included)."""
        for name, bound in (("low", low), ("high", high)):
            if not isinstance(as_tensor_variable(bound), TensorConstant):
                raise NotImplementedError(f"random_integers with a symbolic {name} bound")
        return self.gen("random_integers", size, [low, high], dtype, ndim)
