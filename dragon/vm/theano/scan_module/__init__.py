"""``theano.scan_module``: loops with gradients (``theano.scan`` and its shapes).

    import dragon.vm.theano as theano
    import dragon.vm.theano.tensor as T

    k = T.iscalar("k"); A = T.vector("A")
    result, updates = theano.scan(lambda prior, A: prior * A, outputs_info=T.ones_like(A),
                                  non_sequences=A, n_steps=k)
    power = theano.function([A, k], result[-1], updates=updates)

The number of steps is known when the function compiles. Short scans (and those
that take gradients inside the step or stop on ``until``) are unrolled into the
core graph; longer ones become one core ``Loop`` op that runs a compiled step
sub-plan. Either way gradients flow through the loop (backpropagation through
time). See ``scan_op`` for the lowerings, ``scan_builder`` for the arguments.
"""
from dragon.vm.theano.scan_module.scan_builder import scan
from dragon.vm.theano.scan_module.scan_utils import OrderedUpdates, until
from dragon.vm.theano.scan_module.scan_views import (foldl, foldr, map, reduce,  # noqa: A004
                                                     scan_checkpoints)

__all__ = ["scan", "until", "map", "reduce", "foldl", "foldr", "scan_checkpoints",
           "OrderedUpdates"]
