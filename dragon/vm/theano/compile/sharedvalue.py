"""``theano.shared``: values that live in the engine and persist between calls.

    w = theano.shared(np.zeros((784, 10), dtype=theano.config.floatX), name="W")
    state = theano.shared(0)            # int64, whatever floatX says
    b = theano.shared(0.)               # float64, whatever floatX says
    w.get_value().shape                 # (784, 10)
"""
from __future__ import annotations

import numpy as np

from dragon.vm.theano.tensor.type import TensorType
from dragon.vm.theano.tensor.var import TensorSharedVariable, Variable

SharedVariable = TensorSharedVariable


def shared(value, name=None, strict=False, allow_downcast=None, borrow=False,
           broadcastable=None, target="cpu"):
    """A shared variable holding ``value`` (its dtype as numpy gives it: 0 -> int64, 0. -> float64).

    broadcastable: the pattern to declare (default: no axis broadcastable, as Theano).
    borrow: use ``value``'s array as storage when it can (CPU, contiguous).
    """
    if isinstance(value, Variable):
        raise TypeError(f"theano.shared takes a value, not the symbolic variable '{value}'")
    if isinstance(value, (bool, np.bool_)):
        array = np.asarray(value, dtype=bool)
    elif isinstance(value, int):
        array = np.asarray(value, dtype=np.int64)
    elif isinstance(value, float):
        array = np.asarray(value, dtype=np.float64)
    else:
        array = np.asarray(value)
    if array.dtype == object or array.dtype.kind in "USc":
        raise TypeError(f"theano.shared cannot hold a value of dtype {array.dtype} ({value!r})")
    if broadcastable is None:
        broadcastable = (False,) * array.ndim
    if len(broadcastable) != array.ndim:
        raise TypeError(f"broadcastable {tuple(broadcastable)} has {len(broadcastable)} axes, "
                        f"the value has shape {array.shape}")
    kind = TensorType(str(array.dtype), broadcastable)
    if not borrow or not isinstance(value, np.ndarray):
        array = np.array(array, copy=True)
    return TensorSharedVariable(name, kind, array, strict=strict, allow_downcast=allow_downcast,
                                borrow=borrow)
