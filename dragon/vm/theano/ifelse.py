"""``theano.ifelse.ifelse``: choose between two expressions on a scalar condition.

    from dragon.vm.theano.ifelse import ifelse
    z = ifelse(T.lt(a, b), T.mean(x), T.mean(y))

Both branches are computed (the choice lowers to the core's Where); Theano's lazy
evaluation, which skips the unused branch, is not reproduced, so this is for
choosing values, not for saving work.
"""
from __future__ import annotations

from dragon.vm.theano.tensor import basic
from dragon.vm.theano.tensor.var import as_tensor_variable


def ifelse(condition, then_branch, else_branch, name=None):
    """``then_branch`` where scalar ``condition`` is true, else ``else_branch`` (lists pair up)."""
    condition = as_tensor_variable(condition)
    if condition.ndim != 0:
        raise TypeError(f"ifelse's condition must be a scalar, got '{condition}' ({condition.type})")
    single = not isinstance(then_branch, (list, tuple))
    thens = [then_branch] if single else list(then_branch)
    elses = [else_branch] if not isinstance(else_branch, (list, tuple)) else list(else_branch)
    if len(thens) != len(elses):
        raise ValueError(f"ifelse: {len(thens)} values for the true branch, {len(elses)} for the "
                         f"false one")
    outs = []
    for a, b in zip(thens, elses):
        a, b = as_tensor_variable(a), as_tensor_variable(b)
        if a.ndim != b.ndim:
            raise TypeError(f"ifelse: the branches '{a}' ({a.type}) and '{b}' ({b.type}) have "
                            f"different numbers of dimensions")
        out = basic.switch(condition, a, b)
        if name:
            out.name = name
        outs.append(out)
    return outs[0] if single else outs


IfElse = ifelse
