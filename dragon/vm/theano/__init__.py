"""The Theano front end: run Theano 1.0 programs on Dragon's engine.

    import dragon.vm.theano as theano
    import dragon.vm.theano.tensor as T

    x = T.dmatrix("x")
    s = 1 / (1 + T.exp(-x))
    logistic = theano.function([x], s)
    logistic([[0, 1], [-1, -2]])     # array([[0.5, 0.731...], [0.269..., 0.119...]])

Graphs are Theano's (variables, Apply nodes, ops); ``theano.function`` lowers them
to the core's tensors and compiles one core plan per set of input shapes.
"""
from dragon.vm.theano.configparser import change_flags, config  # noqa: F401
from dragon.vm.theano import compile, gradient, ifelse, printing, tensor  # noqa: F401,A004
from dragon.vm.theano.compile import (FAST_COMPILE, FAST_RUN, Function, In, Mode,  # noqa: F401
                                      Out, Param, SharedVariable, function, shared)
from dragon.vm.theano.compile.function import MissingInputError, UnusedInputError  # noqa: F401
from dragon.vm.theano.compile.graph import clone  # noqa: F401
from dragon.vm.theano.gradient import grad  # noqa: F401
from dragon.vm.theano.printing import pp  # noqa: F401
from dragon.vm.theano.tensor.basic import dot  # noqa: F401
from dragon.vm.theano.tensor.var import Apply, Op, Variable  # noqa: F401
from dragon.vm.theano import sandbox, scan_module  # noqa: F401

__version__ = "1.0.0+dragon"

_SCAN_NAMES = ("scan", "map", "reduce", "foldl", "foldr")


def __getattr__(name):
    # theano.scan and friends come from scan_module once it defines them.
    if name in _SCAN_NAMES:
        value = getattr(scan_module, name, None)
        if value is not None:
            return value
        raise AttributeError(f"theano.{name} is not available yet (dragon.vm.theano.scan_module "
                             f"does not define it)")
    raise AttributeError(f"module 'dragon.vm.theano' has no attribute '{name}'")
