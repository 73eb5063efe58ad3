"""Walking and rewriting Theano expression graphs (iteratively: deep graphs are common).

    ancestors([cost])                  # every variable cost depends on
    apply_nodes([cost])                # the Apply nodes, inputs before users
    clone([y], replace={x: x2})        # y rebuilt on x2
"""
from __future__ import annotations


def _resolve(var, givens):
    hops = 0
    while givens and var in givens:
        var = givens[var]
        hops += 1
        if hops > len(givens):
            raise ValueError("givens form a cycle")
    return var


def apply_nodes(outputs, givens=None, stop=()):
    """Apply nodes needed for ``outputs``, in an order where inputs come first.

    ``givens`` replaces variables before walking; the walk stops at ``stop``.
    """
    stop_ids = {id(v) for v in stop}
    order, seen = [], set()
    for root in outputs:
        stack = [(_resolve(root, givens), False)]
        while stack:
            var, expanded = stack.pop()
            node = var.owner
            if node is None or id(var) in stop_ids:
                continue
            if expanded:
                if id(node) not in seen:
                    seen.add(id(node))
                    order.append(node)
                continue
            if id(node) in seen:
                continue
            stack.append((var, True))
            for inp in reversed(node.inputs):
                inp = _resolve(inp, givens)
                if inp.owner is not None and id(inp.owner) not in seen and id(inp) not in stop_ids:
                    stack.append((inp, False))
    return order


def ancestors(outputs, givens=None, stop=()):
    """Every variable the outputs depend on (themselves included), after givens."""
    found, seen = [], set()
    stop_ids = {id(v) for v in stop}
    stack = [_resolve(v, givens) for v in outputs]
    while stack:
        var = stack.pop()
        if id(var) in seen:
            continue
        seen.add(id(var))
        found.append(var)
        if var.owner is not None and id(var) not in stop_ids:
            stack.extend(_resolve(i, givens) for i in var.owner.inputs)
    return found


def inputs(outputs, givens=None):
    """The leaf variables the outputs depend on (Theano's graph.inputs)."""
    return [v for v in ancestors(outputs, givens) if v.owner is None]


def clone(output, replace=None, share_inputs=True):
    """``output`` (a variable or list) rebuilt with ``replace``'s variables substituted.

    >>> y2 = theano.clone(y, replace={x: 2 * x})
    """
    from dragon.vm.theano.tensor.var import Apply
    single = not isinstance(output, (list, tuple))
    outputs = [output] if single else list(output)
    replace = dict(replace.items() if hasattr(replace, "items") else (replace or []))
    memo = {id(k): v for k, v in replace.items()}
    for node in apply_nodes(outputs, stop=list(replace)):
        new_inputs = [memo.get(id(i), i) for i in node.inputs]
        if all(a is b for a, b in zip(new_inputs, node.inputs)):
            for out in node.outputs:
                memo.setdefault(id(out), out)
            continue
        copies = [o.clone() for o in node.outputs]
        Apply(node.op, new_inputs, copies)
        for old, new in zip(node.outputs, copies):
            new.name = old.name
            memo[id(old)] = new
    result = [memo.get(id(o), o) for o in outputs]
    return result[0] if single else result
