"""``theano.map``, ``reduce``, ``foldl``, ``foldr``, ``scan_checkpoints``: shapes of ``scan``.

    squares, _ = theano.map(lambda v: v ** 2, sequences=x)
    total, _ = theano.reduce(lambda v, acc: acc + v, sequences=x,
                             outputs_info=T.as_tensor_variable(np.float64(0)))
"""
from __future__ import annotations

from dragon.vm.theano.scan_module.scan_builder import scan


def map(fn, sequences, non_sequences=None, truncate_gradient=-1, go_backwards=False,  # noqa: A001
        mode=None, name=None):
    """``fn`` applied to every step of ``sequences``; returns (outputs, updates).

    >>> doubled, _ = theano.map(lambda v: 2 * v, sequences=x)
    """
    return scan(fn, sequences=sequences, outputs_info=None, non_sequences=non_sequences,
                truncate_gradient=truncate_gradient, go_backwards=go_backwards, mode=mode,
                name=name)


def reduce(fn, sequences, outputs_info, non_sequences=None,  # noqa: A001 - Theano's name
           go_backwards=False, mode=None, name=None):
    """The last step of ``scan(fn, ...)``; returns (outputs, updates).

    >>> total, _ = theano.reduce(lambda v, acc: acc + v, x, T.constant(0.))
    """
    outputs, updates = scan(fn, sequences=sequences, outputs_info=outputs_info,
                            non_sequences=non_sequences, go_backwards=go_backwards,
                            truncate_gradient=-1, mode=mode, name=name)
    if isinstance(outputs, (list, tuple)):
        return [out[-1] for out in outputs], updates
    return outputs[-1], updates


def foldl(fn, sequences, outputs_info, non_sequences=None, mode=None, name=None):
    """``reduce`` from the first step to the last."""
    return reduce(fn, sequences, outputs_info, non_sequences=non_sequences, go_backwards=False,
                  mode=mode, name=name)


def foldr(fn, sequences, outputs_info, non_sequences=None, mode=None, name=None):
    """``reduce`` from the last step to the first."""
    return reduce(fn, sequences, outputs_info, non_sequences=non_sequences, go_backwards=True,
                  mode=mode, name=name)


def scan_checkpoints(fn, sequences=(), outputs_info=None, non_sequences=(),
                     name="checkpointscan_fn", n_steps=None, save_every_N=10,  # noqa: N803
                     padding=True):
    """Theano's memory-saving scan: here the same as ``scan`` (a long scan already runs
    as one Loop op that keeps only the steps' outputs for its gradient).

    >>> h, _ = theano.scan_module.scan_checkpoints(step, sequences=[x], outputs_info=[h0])
    """
    return scan(fn, sequences=list(sequences), outputs_info=outputs_info,
                non_sequences=list(non_sequences), n_steps=n_steps, name=name)
