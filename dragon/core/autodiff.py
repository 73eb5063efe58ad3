"""Reverse-mode autodiff over tensors, from the per-op gradient rules.

    loss = dragon.ops.reduce_mean((x @ w - y) ** 2)
    gw, = dragon.grad(loss, [w])

A rule receives a ``GradContext`` ``g`` for one node and returns one gradient (or
None) per input, building ops with ``g.op``. Gradients of a tensor used several
times are summed with one ``Sum`` op.
"""
from __future__ import annotations

from dragon.core.errors import DisconnectedInputError, NoGradientError
from dragon.core.graph import collect_nodes
from dragon.core.tensor import Tensor, apply
from dragon.ops import registry


class GradContext:
    """What a gradient rule sees of one node."""

    def __init__(self, node, dys, needed):
        self.node = node
        self._dys = dys
        self._needed = needed
        self.args = registry.get(node.type).full_args(node.args)

    def X(self, i):  # noqa: N802 - the X/Y/dY names of the design
        return self.node.inputs[i]

    def Y(self, i):  # noqa: N802
        return self.node.outputs[i]

    def dY(self, i):  # noqa: N802
        """The gradient of output ``i`` (zeros where nothing flows into it)."""
        if self._dys[i] is None:
            self._dys[i] = apply("ZerosLike", [self.node.outputs[i]], is_gradient=True)
        return self._dys[i]

    def has_dY(self, i):  # noqa: N802
        return self._dys[i] is not None

    def needs(self, i) -> bool:
        """Whether input ``i``'s gradient is wanted (rules may skip the others)."""
        return self._needed[i]

    @property
    def num_inputs(self):
        return len(self.node.inputs)

    def op(self, op_type, inputs, **args):
        """Build a gradient op; returns its output Tensor (or list)."""
        return apply(op_type, inputs, is_gradient=True, **args)


def grad(cost, wrt, grad_cost=None, consider_constant=(), known_grads=None,
         disconnected="raise"):
    """Gradients of ``cost`` with respect to each tensor of ``wrt``.

    grad_cost: the gradient flowing into ``cost`` (ones by default).
    consider_constant: tensors treated as constants (no gradient flows through them).
    known_grads: ``{tensor: gradient}`` added to what flows back, as Theano's.
    disconnected: 'raise', 'warn' or 'ignore' for a wrt the cost does not reach
    (None is returned for it unless 'raise').

    >>> gw, gb = dragon.grad(loss, [w, b])
    """
    single = isinstance(wrt, Tensor)
    wrt_list = [wrt] if single else list(wrt)
    costs = [] if cost is None else ([cost] if isinstance(cost, Tensor) else list(cost))
    known = dict(known_grads or {})
    grads = gradients(costs, wrt_list, grad_cost, consider_constant, known)
    for t, g in zip(wrt_list, grads):
        if g is None and disconnected == "raise":
            raise DisconnectedInputError(
                f"the cost does not depend on '{t.name}' ({t!r}); pass "
                f"disconnected_inputs='ignore' to get None for it")
    return grads[0] if single else grads


def gradients(ys, xs, grad_ys=None, stop=(), known=None):
    """Gradient tensors of ``sum(ys)`` w.r.t. ``xs`` (None where disconnected)."""
    known = dict(known or {})
    roots = list(ys) + list(known)
    nodes, _ = collect_nodes(roots)
    stop_ids = {id(t) for t in stop}
    x_ids = {id(t) for t in xs}

    reach = set(x_ids)  # tensors that depend on some x, differentiably
    for node in nodes:
        if node.type == "StopGradient":
            continue
        if any(id(i) in reach and id(i) not in stop_ids for i in node.inputs):
            reach.update(id(o) for o in node.outputs)

    partials: dict[int, list] = {}
    seeds = grad_ys if isinstance(grad_ys, (list, tuple)) else [grad_ys] * len(ys)
    for y, seed in zip(ys, seeds):
        if seed is None:
            seed = apply("OnesLike", [y], is_gradient=True)
        partials.setdefault(id(y), []).append(seed)
    for t, g in known.items():
        partials.setdefault(id(t), []).append(g)

    for node in reversed(nodes):
        if not any(id(o) in partials for o in node.outputs):
            continue
        needed = [id(i) in reach and id(i) not in stop_ids for i in node.inputs]
        if not any(needed) or any(id(o) in stop_ids for o in node.outputs):
            continue
        schema = registry.get(node.type)
        if schema.grad_fn is None:
            raise NoGradientError(
                f"op '{node.name}' ({node.type}) has no gradient, but the cost depends on "
                f"a wrt tensor through it; use stop_gradient to cut it")
        dys = [_summed(partials.get(id(o))) for o in node.outputs]
        ctx = GradContext(node, dys, needed)
        dxs = schema.grad_fn(ctx)
        if len(dxs) != len(node.inputs):
            raise AssertionError(f"gradient rule of {node.type} returned {len(dxs)} "
                                 f"gradients for {len(node.inputs)} inputs")
        for inp, dx, need in zip(node.inputs, dxs, needed):
            if need and dx is not None:
                partials.setdefault(id(inp), []).append(dx)
    return [_summed(partials.get(id(x))) for x in xs]


def _summed(parts):
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    total = apply("Sum", parts, is_gradient=True)
    parts[:] = [total]
    return total


def stop_gradient(x):
    """``x`` with no gradient flowing back through it.

    >>> target = dragon.stop_gradient(y)
    """
    return apply("StopGradient", [x])
