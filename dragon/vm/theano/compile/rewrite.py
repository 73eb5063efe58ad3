"""Graph rewrites applied when a function is made: Theano's numerical stabilizations.

Theano's optimizer turns ``1 / (1 + exp(-x))`` into ``sigmoid(x)`` and
``log(sigmoid(x))`` into ``-softplus(-x)``; tutorials rely on it (the logistic
regression of the docs saturates to log(0) without it). The same rewrites run here
on the Theano graph before it lowers. Front-end modules add their own with
``register_rewrite``:

    @register_rewrite
    def log_of_softmax(node, out):
        # node: the Apply node being built (inputs already rewritten); return a
        # replacement for ``out`` or None to keep it
        ...

Helpers: ``elemwise_type(var)`` is the core op type of an elementwise variable
(``'Exp'``, ``'Sigmoid'``...), ``is_constant_value(var, 1)`` tests a scalar constant.
"""
from __future__ import annotations

import numpy as np

from dragon.vm.theano.compile.graph import apply_nodes
from dragon.vm.theano.tensor.var import Apply, TensorConstant

_RULES = []


def register_rewrite(rule):
    """Add ``rule(node, out) -> replacement or None`` to the rewrites every function runs."""
    _RULES.append(rule)
    return rule


def elemwise_type(var):
    """The core op type of an elementwise variable made by ``basic.elemwise``, else None."""
    node = getattr(var, "owner", None)
    if node is None:
        return None
    fn = getattr(node.op, "fn", None)
    if fn is None or fn.__name__ != "_lower_elemwise":
        return None
    return node.op.params.get("op_type")


def is_constant_value(var, value):
    """Whether ``var`` is a constant whose every entry equals ``value``."""
    return isinstance(var, TensorConstant) and var.data.size >= 1 and bool(np.all(var.data == value))


def rewrite(roots, stop=()):
    """``roots`` with every registered rewrite applied, bottom-up (a dict old id -> new)."""
    memo = {}
    if not _RULES:
        return memo
    stop_ids = {id(v) for v in stop}
    for node in apply_nodes(roots, stop=stop):
        if any(id(o) in stop_ids for o in node.outputs):
            continue
        inputs = [memo.get(id(i), i) for i in node.inputs]
        current = node
        if any(a is not b for a, b in zip(inputs, node.inputs)):
            copies = [o.clone() for o in node.outputs]
            current = Apply(node.op, inputs, copies)
            for old, new in zip(node.outputs, copies):
                new.name = old.name
                memo[id(old)] = new
        if len(current.outputs) == 1:
            out = current.outputs[0]
            for rule in _RULES:
                replacement = rule(current, out)
                if replacement is not None and replacement is not out:
                    if replacement.type.dtype != out.type.dtype or replacement.ndim != out.ndim:
                        continue
                    replacement.name = replacement.name or out.name
                    memo[id(node.outputs[0])] = replacement
                    break
    return memo


# -- the sigmoid family ------------------------------------------------------------------

def _sigmoid_argument(var):
    """z when ``var`` is 1 / (1 + exp(-z)) (in any operand order), else None."""
    if elemwise_type(var) != "Div":
        return None
    num, den = var.owner.inputs
    if not is_constant_value(num, 1) or elemwise_type(den) != "Add":
        return None
    a, b = den.owner.inputs
    if is_constant_value(b, 1):
        a, b = b, a
    if not is_constant_value(a, 1):
        return None
    # exp(-z): the negation may be a neg op or a subtraction from zero.
    if elemwise_type(b) != "Exp":
        return None
    inner = b.owner.inputs[0]
    if elemwise_type(inner) == "Neg":
        return inner.owner.inputs[0]
    if elemwise_type(inner) == "Sub":
        left, right = inner.owner.inputs
        if elemwise_type(left) == "Neg":  # -a - b == -(a + b)
            from dragon.vm.theano.tensor import basic
            return basic.add(left.owner.inputs[0], right)
    return None


@register_rewrite
def sigmoid_from_exp(node, out):
    """1 / (1 + exp(-z)) -> sigmoid(z)."""
    z = _sigmoid_argument(out)
    if z is None:
        return None
    from dragon.vm.theano.tensor import basic
    if out.broadcastable != basic._broadcast_pattern(z):
        return None
    return basic.elemwise("Sigmoid", [z], out.dtype, name="sigmoid")


def _sigmoid_input(var):
    return var.owner.inputs[0] if elemwise_type(var) == "Sigmoid" else None


@register_rewrite
def log_sigmoid(node, out):
    """log(sigmoid(z)) -> -softplus(-z); log(1 - sigmoid(z)) -> -softplus(z)."""
    if elemwise_type(out) != "Log":
        return None
    from dragon.vm.theano.tensor import basic
    arg = out.owner.inputs[0]
    z = _sigmoid_input(arg)
    if z is not None:
        return basic.neg(basic.elemwise("Softplus", [basic.neg(z)], out.dtype, name="softplus"))
    if elemwise_type(arg) == "Sub":
        one, s = arg.owner.inputs
        z = _sigmoid_input(s)
        if z is not None and is_constant_value(one, 1) and one.ndim == 0:
            return basic.neg(basic.elemwise("Softplus", [z], out.dtype, name="softplus"))
    return None


# -- algebra -----------------------------------------------------------------------------

@register_rewrite
def scalar_times_zero(node, out):
    """0 * x -> 0 for a scalar result (Theano's local_mul_zero).

    The tutorials write ``cost + L1_reg * L1`` with ``L1_reg = 0.0``; without this
    the L1 norm and its gradient would be computed on every step for nothing.
    """
    if elemwise_type(out) != "Mul" or out.ndim != 0:
        return None
    if not any(is_constant_value(i, 0) for i in node.inputs):
        return None
    from dragon.vm.theano.tensor.var import as_tensor_variable
    return as_tensor_variable(np.zeros((), out.dtype))
