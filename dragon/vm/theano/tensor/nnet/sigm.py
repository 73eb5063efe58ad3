"""The sigmoid family: sigmoid, softplus, ultra_fast_sigmoid, hard_sigmoid.

    h = T.nnet.sigmoid(T.dot(x, W) + b)
    T.log(T.nnet.sigmoid(z))            # becomes -softplus(-z) when the function compiles

``sigmoid`` and ``softplus`` are the core's elementwise ops, built with
``basic.elemwise`` so that the stability rewrites (``1 / (1 + exp(-z))`` ->
sigmoid, ``log(sigmoid(z))`` -> ``-softplus(-z)``) recognise them.
"""
from __future__ import annotations

import numpy as np

from dragon.vm.theano.tensor import basic
from dragon.vm.theano.tensor import type as ttype
from dragon.vm.theano.tensor.var import as_tensor_variable


def sigmoid(x):
    """Elementwise 1 / (1 + exp(-x)).

    >>> v = T.dvector("v"); T.nnet.sigmoid(v).eval({v: [0.0]})
    array([0.5])
    """
    x = as_tensor_variable(x)
    return basic.elemwise("Sigmoid", [x], ttype.upgrade_to_float(x.dtype), name="sigmoid")


def softplus(x):
    """Elementwise log(1 + exp(x)), without overflow."""
    x = as_tensor_variable(x)
    return basic.elemwise("Softplus", [x], ttype.upgrade_to_float(x.dtype), name="softplus")


def hard_sigmoid(x):
    """Elementwise clip(0.2 * x + 0.5, 0, 1): a piecewise-linear sigmoid."""
    x = as_tensor_variable(x)
    return basic.elemwise("HardSigmoid", [x], ttype.upgrade_to_float(x.dtype),
                          name="hard_sigmoid", alpha=0.2, beta=0.5)


def ultra_fast_sigmoid(x):
    """Theano's fast piecewise approximation of the sigmoid (within ~0.02 of it).

    sigmoid(x) ~ (1 + t(x / 2)) / 2, with t a rational/linear approximation of tanh.
    Unlike Theano's, it has a gradient: the derivative of the approximation.
    """
    x = as_tensor_variable(x)
    dtype = ttype.upgrade_to_float(x.dtype)

    def c(v):
        return np.asarray(v, dtype=dtype)

    half = x * c(0.5)
    a = basic.abs_(half)
    rational = c(1.5) * a / (c(1.0) + a)
    linear = c(0.935409070603099) + c(0.0458812946797165) * (a - c(1.7))
    magnitude = basic.switch(basic.lt(a, c(1.7)), rational,
                             basic.switch(basic.lt(a, c(3.0)), linear, c(0.99505475368673)))
    signed = basic.switch(basic.ge(half, c(0.0)), magnitude, -magnitude)
    return c(0.5) * (signed + c(1.0))
