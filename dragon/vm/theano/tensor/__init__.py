"""``theano.tensor``: tensor types, constructors and the functions on tensors.

    import dragon.vm.theano.tensor as T
    x, y = T.dmatrices("x", "y")
    z = T.dot(x, y.T) + T.exp(-x).sum(axis=1).dimshuffle(0, "x")
    gz = T.grad(z.sum(), x)

Submodules: ``T.nnet``, ``T.signal.pool``, ``T.shared_randomstreams``, ``T.extra_ops``.
"""
from dragon.vm.theano.tensor.type import (TensorType, constructors as _constructors,  # noqa: F401
                                          tensor, upcast)
from dragon.vm.theano.tensor.var import (Apply, CoreOp, FunctionOp, Op,  # noqa: F401
                                         TensorConstant, TensorSharedVariable, TensorVariable,
                                         Variable, as_tensor_variable, constant, core, lowered)
from dragon.vm.theano.tensor.basic import *  # noqa: F401,F403
from dragon.vm.theano.tensor.basic import (abs_, all, any, max, min, pow, round, sum,  # noqa: F401
                                           NotScalarConstantError, get_scalar_constant_value)
from dragon.vm.theano.tensor.subtensor import inc_subtensor, set_subtensor  # noqa: F401
from dragon.vm.theano.tensor import extra_ops  # noqa: F401
from dragon.vm.theano.tensor.extra_ops import cumprod, cumsum, repeat  # noqa: F401
from dragon.vm.theano.gradient import (Lop, Rop, grad, hessian, jacobian,  # noqa: F401
                                       consider_constant, zero_grad)
from dragon.vm.theano.tensor import nnet, signal, shared_randomstreams  # noqa: F401
from dragon.vm.theano.tensor.var import TensorVariable as _TensorVariable

globals().update(_constructors)
as_tensor = as_tensor_variable
SharedVariable = TensorSharedVariable
shared_randomstreams = shared_randomstreams
TensorVariable = _TensorVariable
