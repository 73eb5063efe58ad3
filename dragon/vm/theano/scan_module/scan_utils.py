"""What a scan step function may return, and the updates scan hands back.

A step function returns its outputs (a variable or a list), optionally with a
dict (or list of pairs) of shared-variable updates, optionally followed by
``until(condition)`` to stop the loop early::

    def step(x_tm1):
        return x_tm1 * 2, until(x_tm1 * 2 > 40)

    def step(x_tm1, W):
        return T.dot(x_tm1, W), {counter: counter + 1}
"""
from __future__ import annotations

from collections import OrderedDict

from dragon.vm.theano.tensor.var import TensorSharedVariable, Variable, as_tensor_variable


class until:  # noqa: N801 - Theano's name
    """Stop a scan after the step where ``condition`` is true (a do-while loop).

    >>> values, _ = theano.scan(lambda p, m: (p * 2, until(p * 2 > m)),
    ...                         outputs_info=T.constant(1.), non_sequences=m, n_steps=1024)
    """

    def __init__(self, condition):
        condition = as_tensor_variable(condition)
        if condition.ndim != 0:
            raise TypeError(f"theano.scan_module.until needs a scalar condition, got "
                            f"'{condition}' of type {condition.type}")
        self.condition = condition


class OrderedUpdates(OrderedDict):
    """The updates scan returns: shared variable -> its value after the loop.

    Keys must be shared variables; adding two update dicts that disagree on a key is
    an error (Theano's ``OrderedUpdates``).
    """

    def __setitem__(self, key, value):
        if not isinstance(key, TensorSharedVariable):
            raise TypeError(f"an update key must be a shared variable, got '{key}' "
                            f"({type(key).__name__})")
        super().__setitem__(key, value)

    def update(self, other=None, **kwargs):
        if other is None:
            return
        items = other.items() if hasattr(other, "items") else other
        for key, value in items:
            if key in self and self[key] is not value:
                raise KeyError(f"collision: shared variable '{key}' has two different updates")
            self[key] = value

    def __add__(self, other):
        merged = OrderedUpdates(self)
        merged.update(other)
        return merged


def _is_outputs(x):
    if isinstance(x, Variable):
        return True
    return isinstance(x, (list, tuple)) and all(isinstance(e, Variable) for e in x)


def _is_updates(x):
    if isinstance(x, dict):
        return True
    return isinstance(x, (list, tuple)) and len(x) > 0 and all(
        isinstance(e, (list, tuple)) and len(e) == 2 and isinstance(e[0], TensorSharedVariable)
        for e in x)


def _as_outputs(x):
    if x is None:
        return []
    if isinstance(x, Variable):
        return [as_tensor_variable(x)]
    return [as_tensor_variable(e) for e in x]


def _as_updates(x):
    items = list(x.items()) if isinstance(x, dict) else list(x)
    result = OrderedUpdates()
    for key, value in items:
        result[key] = as_tensor_variable(value)
    return result


def split_step_result(result):
    """(condition or None, outputs list, updates) from what a step function returned.

    Accepted forms (Theano's): outputs; updates; (outputs, updates); any of these
    followed by ``until(condition)``. (updates, outputs) is refused, as Theano does.
    """
    parts = list(result) if isinstance(result, tuple) else [result]
    if isinstance(result, list) and result and isinstance(result[-1], until):
        parts = [result[:-1], result[-1]]
    condition = None
    if parts and isinstance(parts[-1], until):
        condition = parts.pop().condition
    if any(isinstance(p, until) for p in parts):
        raise ValueError("theano.scan: the until(...) condition must be the last thing the step "
                         "function returns")
    updates = OrderedUpdates()
    if parts and _is_updates(parts[-1]) and not _is_outputs(parts[-1]):
        updates = _as_updates(parts.pop())
    if parts and _is_updates(parts[0]) and not _is_outputs(parts[0]):
        raise ValueError("theano.scan: the step function returned (updates, outputs); return "
                         "(outputs, updates) instead")
    if not parts:
        return condition, [], updates
    outputs = _checked_outputs(parts[0] if len(parts) == 1 else parts)
    return condition, outputs, updates


def _checked_outputs(x):
    items = [x] if not isinstance(x, (list, tuple)) else list(x)
    for item in items:
        if isinstance(item, (dict, until)) or item is None:
            raise ValueError(
                f"theano.scan cannot parse the return value of the step function: {x!r}. It "
                f"may return outputs (a variable or a list), updates (a dict), (outputs, "
                f"updates), optionally followed by until(condition)")
    try:
        return _as_outputs(items)
    except TypeError as exc:
        raise ValueError(f"theano.scan: the step function returned {x!r}, which is not made of "
                         f"theano variables ({exc})") from None
