"""``theano.scan``: build the step graph once and wrap it in a ``ScanOp`` node.

    k = T.iscalar("k"); A = T.vector("A")
    result, updates = theano.scan(lambda prior, A: prior * A, outputs_info=T.ones_like(A),
                                  non_sequences=A, n_steps=k)
    power = theano.function([A, k], result[-1], updates=updates)
    power(range(10), 2)          # [0., 1., 4., ..., 81.]

The step function is called once, on placeholder variables, in Theano's argument
order: every tap of every sequence, every tap of every output that feeds back,
then the non-sequences. What it returns (outputs, updates, ``until``) is checked
here, with Theano's errors; shared variables it updates (explicitly or through
their ``default_update``, e.g. random streams) are carried from step to step and
returned as updates holding their value after the loop.
"""
from __future__ import annotations

import math

import numpy as np

from dragon.vm.theano.compile import rewrite
from dragon.vm.theano.compile.graph import ancestors, apply_nodes
from dragon.vm.theano.scan_module.scan_op import ScanOp
from dragon.vm.theano.scan_module.scan_utils import OrderedUpdates, split_step_result
from dragon.vm.theano.tensor.type import TensorType
from dragon.vm.theano.tensor.var import (TensorConstant, TensorSharedVariable, Variable,
                                         as_tensor_variable, constant)


def scan(fn, sequences=None, outputs_info=None, non_sequences=None, n_steps=None,
         truncate_gradient=-1, go_backwards=False, mode=None, name=None, profile=False,
         allow_gc=None, strict=False, return_list=False):
    """Apply ``fn`` over time; returns ``(outputs, updates)``.

    sequences: variables (iterated over their first axis) or dicts
    ``dict(input=x, taps=[-1, 0, 2])``. outputs_info: per output, None (the output
    does not feed back), its initial value (``fn`` gets the previous value) or
    ``dict(initial=x0, taps=[-2, -1])`` (``x0`` holds the first rows). non_sequences:
    passed unchanged to every step. n_steps: the number of steps (default: the
    shortest sequence). go_backwards: iterate the sequences from their end.
    truncate_gradient: backpropagate through the last k steps only (-1: all).
    Outputs stack the steps (the initial rows are not included); updates map shared
    variables to their value after the loop: pass them to ``theano.function``.

    >>> fib, _ = theano.scan(lambda a, b: a + b, n_steps=8,
    ...                      outputs_info=dict(initial=T.as_tensor_variable([1., 1.]),
    ...                                        taps=[-2, -1]))
    """
    sequences = _seq_specs(_as_list(sequences))
    outputs = _output_specs(_as_list(outputs_info))
    non_seqs = [v if isinstance(v, Variable) else as_tensor_variable(v)
                for v in _as_list(non_sequences)]
    n_steps_var = _n_steps(n_steps, sequences)

    inner_seqs = []
    for seq, taps in sequences:
        for k in taps:
            inner_seqs.append(TensorType(seq.dtype, seq.broadcastable[1:])(
                _tap_name(seq, k)))
    inner_states = []
    for initial, taps in outputs:
        if taps is None:
            continue
        if taps == [-1]:
            var = initial.type()
            var.name = None if initial.name is None else f"{initial.name}[t-1]"
            inner_states.append([var])
        else:
            inner_states.append([TensorType(initial.dtype, initial.broadcastable[1:])(
                _tap_name(initial, k)) for k in taps])
    args = inner_seqs + [v for group in inner_states for v in group] + non_seqs

    condition, step_outputs, explicit = split_step_result(fn(*args))
    if outputs and len(step_outputs) != len(outputs):
        raise ValueError(
            f"theano.scan: the step function returned {len(step_outputs)} outputs but "
            f"outputs_info has {len(outputs)} entries. Please provide None as outputs_info for "
            f"any output that does not feed back into scan (i.e. it behaves like a map)")
    if not outputs:
        outputs = [(None, None)] * len(step_outputs)
    _check_states(outputs, step_outputs, inner_states)

    placeholders = inner_seqs + [v for group in inner_states for v in group]
    updated, update_values = _loop_updates(explicit, step_outputs, condition, non_seqs,
                                           placeholders)
    roots = step_outputs + update_values + ([condition] if condition is not None else [])
    memo = rewrite.rewrite(roots, stop=placeholders + list(updated) + non_seqs)
    roots = [memo.get(id(r), r) for r in roots]
    n_out = len(step_outputs)
    step_outputs = roots[:n_out]
    update_values = roots[n_out:n_out + len(updated)]
    condition = roots[-1] if condition is not None else None

    frontier, constants = _frontier(roots, placeholders + list(updated), non_seqs)
    if strict:
        _check_strict(roots, placeholders + list(updated), non_seqs)
    op = ScanOp(name, [taps for _, taps in sequences], [taps for _, taps in outputs],
                inner_seqs, inner_states, step_outputs, updated, update_values, frontier,
                constants, condition, _truncate(truncate_gradient), bool(go_backwards),
                n_steps_given=n_steps is not None and not _missing(n_steps))
    node = op.make_node(n_steps_var, [seq for seq, _ in sequences],
                        [initial for initial, taps in outputs if taps is not None])
    results = node.outputs[:n_out]
    updates = OrderedUpdates()
    for var, final in zip(updated, node.outputs[n_out:]):
        updates[var] = final
    if return_list:
        return (results if results else None), updates
    if len(results) == 1:
        return results[0], updates
    return (results if results else None), updates


# -- arguments -----------------------------------------------------------------------

def _as_list(x):
    if x is None:
        return []
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def _seq_specs(items):
    specs = []
    for k, item in enumerate(items):
        if isinstance(item, dict):
            if "input" not in item:
                raise ValueError(f"theano.scan: sequences[{k}] is a dict without 'input': {item}")
            var, taps = item["input"], item.get("taps")
            taps = [0] if taps is None else _as_list(taps)
        else:
            var, taps = item, [0]
        var = as_tensor_variable(var)
        if var.ndim == 0:
            raise ValueError(f"theano.scan: sequences[{k}] ('{var}', {var.type}) is a scalar; "
                             f"a sequence is iterated over its first axis")
        if not taps or any(not isinstance(t, (int, np.integer)) for t in taps):
            raise ValueError(f"theano.scan: the taps of sequences[{k}] must be integers, got "
                             f"{taps}")
        specs.append((var, [int(t) for t in taps]))
    return specs


def _output_specs(items):
    specs = []
    for k, item in enumerate(items):
        if item is None:
            specs.append((None, None))
            continue
        if not isinstance(item, dict):
            specs.append((as_tensor_variable(item), [-1]))
            continue
        if item.get("return_steps") is not None:
            raise ValueError("Using `return_steps` has been deprecated. Simply select the "
                             "entries you need using a subtensor.")
        initial, taps = item.get("initial"), item.get("taps")
        if initial is None:
            if taps is not None:
                raise ValueError(f"If you are using slices of an output you need to provide "
                                 f"an initial state for it: outputs_info[{k}] = {item}")
            specs.append((None, None))
            continue
        taps = [-1] if taps is None else [int(t) for t in _as_list(taps)]
        if any(t >= 0 for t in taps):
            raise ValueError(f"Can not use future taps of outputs: outputs_info[{k}] has taps "
                             f"{taps} (they must be negative)")
        if len(set(taps)) != len(taps):
            raise ValueError(f"All the taps must be different in outputs_info[{k}]: {taps}")
        initial = as_tensor_variable(initial)
        if taps != [-1] and initial.ndim == 0:
            raise ValueError(f"outputs_info[{k}] has taps {taps}: its initial value must have "
                             f"a leading axis of at least {-min(taps)} rows, got the scalar "
                             f"'{initial}'")
        specs.append((initial, taps))
    return specs


def _missing(n_steps):
    return n_steps is None or (isinstance(n_steps, (float, np.floating))
                               and not math.isfinite(n_steps))


def _n_steps(n_steps, sequences):
    if _missing(n_steps):
        if not sequences:
            raise ValueError("No information about the number of steps provided. Either "
                             "provide a value for n_steps argument of scan or provide an input "
                             "sequence")
        return constant(np.int64(-1))
    if isinstance(n_steps, (int, float, np.integer, np.floating)):
        return constant(np.int64(int(n_steps)))
    var = as_tensor_variable(n_steps)
    if not var.dtype.startswith(("int", "uint")):
        raise ValueError(f" n_steps must be an int. dtype provided is {var.dtype}")
    if var.ndim != 0:
        raise ValueError(f"n_steps must be a scalar, got '{var}' of type {var.type}")
    return var


def _truncate(k):
    k = int(k)
    return -1 if k < 0 else k


def _tap_name(var, k):
    if var.name is None:
        return None
    if k == 0:
        return f"{var.name}[t]"
    return f"{var.name}[t{k:+d}]"


# -- checks and the loop's shared variables -------------------------------------------

def _check_states(outputs, step_outputs, inner_states):
    """Theano's rule: an output that feeds back has its initial state's type."""
    groups = iter(inner_states)
    for k, ((initial, taps), out) in enumerate(zip(outputs, step_outputs)):
        if taps is None:
            continue
        slot = next(groups)[0]
        if out.dtype != slot.dtype:
            raise TypeError(
                f"theano.scan: the initial state (outputs_info[{k}], '{initial}') has dtype "
                f"{slot.dtype}, while the result of the inner function (fn) '{out}' has dtype "
                f"{out.dtype}. This can happen if the inner function of scan results in an "
                f"upcast or downcast; cast the initial state or the result (T.cast)")
        if out.ndim != slot.ndim:
            raise ValueError(
                f"theano.scan: output {k} of the inner function ('{out}', {out.type}) has "
                f"{out.ndim} dimensions, but its state (outputs_info[{k}] = '{initial}', "
                f"{slot.type}{' per tap' if taps != [-1] else ''}) has {slot.ndim}")
        for axis, (state_b, out_b) in enumerate(zip(slot.broadcastable, out.broadcastable)):
            if state_b and not out_b:
                raise TypeError(
                    f"theano.scan: an input and an output are associated with the same "
                    f"recurrent state (outputs_info[{k}]) and should have the same type but "
                    f"have type '{slot.type}' and '{out.type}' respectively (axis {axis} is "
                    f"broadcastable in the initial state only); use T.unbroadcast(initial, "
                    f"{axis}) or T.patternbroadcast on the step's result")


def _loop_updates(explicit, step_outputs, condition, non_seqs, placeholders):
    """(shared variables, their step updates): the step's updates, then the default
    updates of shared variables the step reads (as Theano's inner function applies)."""
    updated, values = [], []
    for var, new in explicit.items():
        new = as_tensor_variable(new)
        if var.type.convert_variable(new) is None:
            raise TypeError(
                f"An update must have the same type as the original shared variable "
                f"(shared_var={var}, shared_var.type={var.type}, update_val={new}, "
                f"update_val.type={new.type}); cast the value (T.cast(value, '{var.dtype}'))")
        updated.append(var)
        values.append(new)
    stop = list(non_seqs) + list(placeholders)
    queue = list(step_outputs) + list(values) + ([condition] if condition is not None else [])
    seen = set()
    while queue:
        found = [v for v in ancestors(queue, stop=stop) if id(v) not in seen]
        queue = []
        for v in found:
            seen.add(id(v))
            if isinstance(v, TensorSharedVariable) and v.default_update is not None \
                    and all(v is not u for u in updated) and all(v is not s for s in non_seqs):
                update = as_tensor_variable(v.default_update)
                updated.append(v)
                values.append(update)
                queue.append(update)
    return updated, values


def _frontier(roots, step_vars, non_seqs):
    """(outer variables the step reads, constants it reads): the variables that do not
    depend on a step input but feed a node that does (or are outputs themselves)."""
    stop = list(step_vars) + list(non_seqs)
    dependent = {id(v) for v in step_vars}
    frontier, constants, seen = [], [], set()

    def keep(var):
        if id(var) in dependent or id(var) in seen:
            return
        seen.add(id(var))
        (constants if isinstance(var, TensorConstant) else frontier).append(var)

    for node in apply_nodes(roots, stop=stop):
        if any(id(i) in dependent for i in node.inputs):
            dependent.update(id(o) for o in node.outputs)
            for inp in node.inputs:
                keep(inp)
    for root in roots:
        keep(root)
    return frontier, constants


def _check_strict(roots, step_vars, non_seqs):
    from dragon.vm.theano.compile.function import MissingInputError
    updated_ids = {id(v) for v in step_vars}
    given = {id(v) for v in non_seqs}
    for v in ancestors(roots, stop=list(step_vars) + list(non_seqs)):
        if isinstance(v, TensorSharedVariable) and id(v) not in given and id(v) not in updated_ids:
            raise MissingInputError(
                f"theano.scan(strict=True): the step function uses the shared variable '{v}' "
                f"({v.type}) without it being passed in non_sequences")
