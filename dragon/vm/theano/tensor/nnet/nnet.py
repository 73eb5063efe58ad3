"""Softmax, rectifiers and cross-entropies of ``theano.tensor.nnet``.

    p_y_given_x = T.nnet.softmax(T.dot(x, W) + b)
    nll = -T.mean(T.log(p_y_given_x)[T.arange(y.shape[0]), y])    # log(softmax) -> logsoftmax
    cost = T.nnet.categorical_crossentropy(p_y_given_x, y).mean()  # stable the same way
    h = T.nnet.relu(T.dot(x, W1) + b1)

As Theano's optimizer does, ``log(softmax(x))`` is rewritten to ``logsoftmax(x)`` and
the cross-entropy of a softmax reads the log-probabilities directly, so saturated
softmaxes give finite costs and gradients.
"""
from __future__ import annotations

import warnings

import numpy as np

from dragon.core.tensor import apply as core_apply
from dragon.vm.theano.compile.rewrite import elemwise_type, register_rewrite
from dragon.vm.theano.tensor import basic
from dragon.vm.theano.tensor import type as ttype
from dragon.vm.theano.tensor.nnet.sigm import sigmoid, softplus
from dragon.vm.theano.tensor.type import TensorType
from dragon.vm.theano.tensor.var import TensorConstant, as_tensor_variable, lowered


# -- softmax -----------------------------------------------------------------------------

def _lower_softmax(ctx, node, x, op_type):
    return core_apply(op_type, [x], axis=-1)


def _softmax_like(op_type, name, c):
    c = as_tensor_variable(c)
    if not c.dtype.startswith("float"):
        raise ValueError(f"{name}: x must be a tensor of floats, got '{c}' ({c.type})")
    if c.ndim == 0:
        raise ValueError(f"{name}: x must be at least 1-d, got the scalar '{c}'")
    if c.ndim == 1:
        # Theano 1.0 pads a vector to a row (and warns that this will change).
        c = basic.shape_padleft(c)
    elif c.broadcastable[-1]:
        warnings.warn(f"The {name} is applied on a dimension of shape 1, which does not have a "
                      f"semantic meaning.", stacklevel=3)
    return lowered(_lower_softmax, [c], c.type, name=name, op_type=op_type)


def softmax(c, axis=-1):
    """Row-wise softmax: exp(c) / exp(c).sum(axis=-1, keepdims=True), computed stably.

    A vector gives a one-row matrix, as in Theano 1.0.

    >>> probs = T.nnet.softmax(T.dot(x, W) + b)       # (batch, classes)
    """
    if axis not in (-1, None) and axis != as_tensor_variable(c).ndim - 1:
        raise NotImplementedError("T.nnet.softmax normalizes the last axis (dimshuffle first)")
    return _softmax_like("Softmax", "softmax", c)


def logsoftmax(c):
    """Row-wise log(softmax(c)), computed as c - logsumexp(c)."""
    return _softmax_like("LogSoftmax", "logsoftmax", c)


def softmax_with_bias(x, b):
    """softmax(x + b) with ``b`` a bias vector broadcast over the rows."""
    return softmax(basic.add(x, b))


def softmax_graph(c):
    """The softmax written with exp and sum (no fused op)."""
    c = as_tensor_variable(c)
    e = basic.exp(c - basic.max(c, axis=-1, keepdims=True))
    return e / basic.sum(e, axis=-1, keepdims=True)


def _softmax_input(var):
    """x when ``var`` is softmax(x) made here, else None."""
    node = getattr(var, "owner", None)
    if node is None or getattr(node.op, "fn", None) is not _lower_softmax:
        return None
    if node.op.params.get("op_type") != "Softmax":
        return None
    return node.inputs[0]


@register_rewrite
def log_of_softmax(node, out):
    """log(softmax(x)) -> logsoftmax(x)."""
    if elemwise_type(out) != "Log":
        return None
    x = _softmax_input(out.owner.inputs[0])
    if x is None:
        return None
    return lowered(_lower_softmax, [x], x.type, name="logsoftmax", op_type="LogSoftmax")


# -- rectifiers --------------------------------------------------------------------------

def _number(value):
    """``value`` as a Python float when it is a number or a scalar constant, else None."""
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    if isinstance(value, TensorConstant) and value.data.size == 1:
        return float(value.data)
    return None


def relu(x, alpha=0):
    """Rectified linear unit: max(x, 0) + alpha * min(x, 0) (``alpha`` may be symbolic).

    >>> h = T.nnet.relu(T.dot(x, W) + b); leaky = T.nnet.relu(z, 0.1)
    """
    x = as_tensor_variable(x)
    slope = _number(alpha)
    if slope is None:
        alpha = as_tensor_variable(alpha)
        f1 = 0.5 * (1 + alpha)
        f2 = 0.5 * (1 - alpha)
        return f1 * x + f2 * basic.abs_(x)
    return basic.elemwise("Relu", [x], x.dtype, name="relu", slope=slope)


def elu(x, alpha=1):
    """Exponential linear unit: x where x > 0, alpha * (exp(x) - 1) elsewhere."""
    x = as_tensor_variable(x)
    value = _number(alpha)
    if value is None:
        return basic.switch(basic.gt(x, 0), x, alpha * basic.expm1(x))
    return basic.elemwise("Elu", [x], ttype.upgrade_to_float(x.dtype), name="elu", alpha=value)


def selu(x):
    """Scaled exponential linear unit (Klambauer et al. 2017): scale * elu(x, alpha)."""
    x = as_tensor_variable(x)
    return basic.elemwise("Selu", [x], ttype.upgrade_to_float(x.dtype), name="selu")


def softsign(x):
    """Elementwise x / (1 + |x|)."""
    x = as_tensor_variable(x)
    return basic.elemwise("Softsign", [x], ttype.upgrade_to_float(x.dtype), name="softsign")


# -- cross-entropies -------------------------------------------------------------------------

def _lower_xent_1hot(ctx, node, coding, labels):
    dtype = node.outputs[0].dtype
    depth = int(coding.shape[-1])
    mask = basic.cast_core(core_apply("OneHot", [labels], depth=depth), dtype)
    x = _softmax_input(node.inputs[0])
    if x is not None:
        log_p = basic.cast_core(core_apply("LogSoftmax", [ctx.lower(x)], axis=-1), dtype)
        picked = core_apply("ReduceSum", [core_apply("Mul", [log_p, mask])], axes=[1])
        return core_apply("Neg", [picked])
    picked = core_apply("ReduceSum", [core_apply("Mul", [basic.cast_core(coding, dtype), mask])],
                        axes=[1])
    return core_apply("Neg", [core_apply("Log", [picked])])


def crossentropy_categorical_1hot(coding_dist, true_idx):
    """-log(coding_dist[i, true_idx[i]]) for each row i (labels as integers)."""
    coding_dist = as_tensor_variable(coding_dist)
    true_idx = as_tensor_variable(true_idx)
    if coding_dist.ndim != 2 or not coding_dist.dtype.startswith("float"):
        raise TypeError(f"the coding distribution must be a matrix of floats, got "
                        f"'{coding_dist}' ({coding_dist.type})")
    if true_idx.ndim != 1 or not true_idx.dtype.startswith(("int", "uint")):
        raise TypeError(f"the true labels must be a vector of integers, got '{true_idx}' "
                        f"({true_idx.type})")
    return lowered(_lower_xent_1hot, [coding_dist, true_idx],
                   TensorType(coding_dist.dtype, coding_dist.broadcastable[:1]),
                   name="crossentropy_categorical_1hot", connected=[True, False])


def categorical_crossentropy(coding_dist, true_dist):
    """Cross-entropy per row: -sum(true_dist * log(coding_dist), axis=-1), or
    -log(coding_dist[i, true_dist[i]]) when ``true_dist`` holds integer labels.

    >>> loss = T.nnet.categorical_crossentropy(T.nnet.softmax(z), y).mean()
    """
    coding_dist = as_tensor_variable(coding_dist)
    true_dist = as_tensor_variable(true_dist)
    if true_dist.ndim == coding_dist.ndim:
        return -basic.sum(true_dist * basic.log(coding_dist), axis=coding_dist.ndim - 1)
    if true_dist.ndim == coding_dist.ndim - 1:
        return crossentropy_categorical_1hot(coding_dist, true_dist)
    raise TypeError(f"rank mismatch between coding and true distributions: '{coding_dist}' "
                    f"({coding_dist.type}) and '{true_dist}' ({true_dist.type})")


def crossentropy_softmax_1hot(x, y_idx):
    """(cross-entropy per row, softmax(x)) for integer labels ``y_idx``."""
    sm = softmax(x)
    return crossentropy_categorical_1hot(sm, y_idx), sm


def crossentropy_softmax_1hot_with_bias(x, b, y_idx):
    """(cross-entropy per row, softmax(x + b)) for integer labels ``y_idx``."""
    return crossentropy_softmax_1hot(basic.add(x, b), y_idx)


def binary_crossentropy(output, target):
    """Elementwise -(target * log(output) + (1 - target) * log(1 - output)).

    With ``output = sigmoid(z)`` the logs become softplus terms when the function compiles.
    """
    output = as_tensor_variable(output)
    target = as_tensor_variable(target)
    return -(target * basic.log(output) + (1.0 - target) * basic.log(1.0 - output))


def sigmoid_binary_crossentropy(output, target):
    """binary_crossentropy(sigmoid(output), target) from the logits ``output``, stably:
    softplus(-|output|) + output * ((output > 0) - target)."""
    output = as_tensor_variable(output)
    target = as_tensor_variable(target)
    positive = basic.cast(basic.gt(output, 0), output.dtype)
    return softplus(-basic.abs_(output)) + output * (positive - target)


__all__ = ["softmax", "logsoftmax", "softmax_with_bias", "softmax_graph", "relu", "elu", "selu",
           "softsign", "sigmoid", "softplus", "categorical_crossentropy",
           "crossentropy_categorical_1hot", "crossentropy_softmax_1hot",
           "crossentropy_softmax_1hot_with_bias", "binary_crossentropy",
           "sigmoid_binary_crossentropy"]
