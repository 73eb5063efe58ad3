"""Indexing tensors (numpy's basic and advanced rules) and writing into slices.

    x[1:3, ::2]; x[:, None]; x[..., 0]; x[i]              # i may be a symbolic int
    data[i * bs:(i + 1) * bs]                           # slice bounds may be symbolic
    p[T.arange(y.shape[0]), y]                          # advanced: one entry per row
    T.set_subtensor(x[2:4], 0.); T.inc_subtensor(W[idx], delta)

A slice with symbolic bounds whose length does not depend on the inputs' values
(``[i * bs:(i + 1) * bs]``) compiles once; its length is checked when it runs, and
a call where it differs (a slice clamped at the end) recompiles that slice once per
value, as does a length that depends on the values (``x[:n]``). Boolean mask
indexing is not supported.
"""
from __future__ import annotations

import numpy as np

from dragon.core.tensor import apply as core_apply
from dragon.core.tensor import constant as core_constant
from dragon.ops.array import SLICE_END
from dragon.vm.theano.tensor.basic import _broadcast_pattern, cast_core
from dragon.vm.theano.tensor.type import TensorType
from dragon.vm.theano.tensor.var import (Apply, Op, TensorConstant, Variable,
                                         as_tensor_variable)


# -- the key, as data ----------------------------------------------------------------
# An entry is ("new",), ("int", v), ("slice", start, stop, step) or ("adv", v), where v,
# start, stop and step are Python ints, None, or ("in", k) naming the node's input k + 1.

def _parse_key(x, key):
    """(entries, variables) for ``x[key]``: symbolic parts become node inputs."""
    key = key if isinstance(key, tuple) else (key,)
    variables = []

    def ref(v):
        variables.append(v)
        return ("in", len(variables) - 1)

    def scalar(value, what):
        if value is None or isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return None if value is None else int(value)
        v = as_tensor_variable(value)
        if v.dtype not in ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"):
            raise TypeError(f"{what} of x[{_key_text(key)}] must be an integer, got '{v}' of "
                            f"type {v.type}")
        if v.ndim != 0:
            raise TypeError(f"{what} of x[{_key_text(key)}] must be a scalar, got '{v}' of "
                            f"type {v.type}")
        if isinstance(v, TensorConstant):
            return int(v.data)
        return ref(v)

    entries = []
    for item in key:
        if item is Ellipsis:
            entries.append(("ellipsis",))
        elif item is None:
            entries.append(("new",))
        elif isinstance(item, slice):
            if item.step is not None and isinstance(item.step, (int, np.integer)) and item.step == 0:
                raise ValueError(f"slice step cannot be zero in x[{_key_text(key)}]")
            entries.append(("slice", scalar(item.start, "a slice start"),
                            scalar(item.stop, "a slice stop"), scalar(item.step, "a slice step")))
        elif isinstance(item, (bool, np.bool_)):
            raise NotImplementedError(f"indexing with the boolean {item!r} is not supported")
        elif isinstance(item, (int, np.integer)):
            entries.append(("int", int(item)))
        else:
            v = as_tensor_variable(item)
            if v.dtype == "bool":
                raise NotImplementedError(
                    f"boolean mask indexing (x[{_key_text(key)}]) is not supported; use "
                    f"T.switch, or integer indices")
            if not v.dtype.startswith(("int", "uint")):
                raise TypeError(f"index '{v}' of x[{_key_text(key)}] must be integer, "
                                f"got {v.type}")
            if v.ndim == 0:
                entries.append(("int", int(v.data) if isinstance(v, TensorConstant) else ref(v)))
            else:
                entries.append(("adv", ref(v)))
    entries = _expand_ellipsis(entries, x.ndim, key)
    return entries, variables


def _key_text(key):
    def one(e):
        if isinstance(e, slice):
            parts = ["" if p is None else str(p) for p in (e.start, e.stop, e.step)]
            return ":".join(parts[:2]) + (f":{parts[2]}" if e.step is not None else "")
        return "..." if e is Ellipsis else str(e)
    return ", ".join(one(e) for e in key)


def _expand_ellipsis(entries, ndim, key):
    where = [i for i, e in enumerate(entries) if e[0] == "ellipsis"]
    if len(where) > 1:
        raise IndexError(f"an index can only have a single ellipsis: x[{_key_text(key)}]")
    consumed = sum(1 for e in entries if e[0] in ("int", "slice", "adv"))
    if consumed > ndim:
        raise IndexError(f"too many indices for a {ndim}-d tensor: x[{_key_text(key)}]")
    full = [("slice", None, None, None)] * (ndim - consumed)
    if where:
        at = where[0]
        return entries[:at] + full + entries[at + 1:]
    return entries + full


def _has_adv(entries):
    return any(e[0] == "adv" for e in entries)


def _is_full(entry):
    return entry[0] == "slice" and entry[1:] in ((None, None, None), (None, None, 1), (0, None, None),
                                                 (0, None, 1))


def _layout(entries, axis_sizes, adv_block):
    """The output dims, walking the key: new axes, slices, and the advanced block's place.

    axis_sizes: per non-new entry, its dim after slicing (or flag); adv_block: the dims
    of the broadcast index arrays. numpy's rule: adjacent advanced indices keep their
    place, separated ones go first.
    """
    dims = []
    adv_positions = [i for i, e in enumerate(e for e in entries if e[0] != "new")
                     if e[0] in ("adv", "int")] if adv_block is not None else []
    adjacent = not adv_positions or adv_positions[-1] - adv_positions[0] + 1 == len(adv_positions)
    if adv_block is not None and not adjacent:
        dims.extend(adv_block)
    axis = 0
    placed = False
    for e in entries:
        if e[0] == "new":
            dims.append("new")
            continue
        if e[0] == "slice":
            dims.append(axis_sizes[axis])
        elif adv_block is not None and adjacent and not placed:
            dims.extend(adv_block)
            placed = True
        axis += 1
    return dims


# -- the op ----------------------------------------------------------------------------

class Subtensor(Op):
    """``x[key]``: ``entries`` describe the key; symbolic parts are inputs 1.."""

    def __init__(self, entries):
        self.entries = entries

    def make_node(self, x, *variables):
        x = as_tensor_variable(x)
        variables = [as_tensor_variable(v) for v in variables]
        return Apply(self, [x] + variables, [TensorType(x.dtype, self.out_pattern(x, variables))()])

    def out_pattern(self, x, variables):
        flags = []
        axis = 0
        for e in self.entries:
            if e[0] == "new":
                continue
            flags.append(x.broadcastable[axis] if _is_full(e) else False)
            axis += 1
        block = None
        if _has_adv(self.entries):
            arrays = [variables[e[1][1]] if isinstance(e[1], tuple) else as_tensor_variable(e[1])
                      for e in self.entries if e[0] in ("adv", "int")]
            block = list(_broadcast_pattern(*arrays)) if arrays else []
        dims = _layout(self.entries, flags, block)
        return tuple(True if d == "new" else d for d in dims)

    def is_connected(self, index):
        return index == 0

    def lower(self, ctx, node, x, *variables):
        return lower_subtensor(ctx, node, x, self.entries)

    def pp(self, texts):
        return f"{texts[0]}[{_key_pp(self.entries, texts[1:])}]"

    def __str__(self):
        def part(v):
            if v is None:
                return ""
            return "*" if isinstance(v, tuple) else str(v)
        texts = []
        for e in self.entries:
            if e[0] == "new":
                texts.append("None")
            elif e[0] == "slice":
                step = f":{part(e[3])}" if e[3] is not None else ""
                texts.append(":".join(part(p) for p in e[1:3]) + step)
            else:
                texts.append(part(e[1]) if e[0] == "int" else "[*]")
        return f"Subtensor{{{', '.join(texts)}}}"


def getitem(x, key):
    """``x[key]`` for a tensor variable (see the module docstring)."""
    x = as_tensor_variable(x)
    entries, variables = _parse_key(x, key)
    if all(_is_full(e) for e in entries if e[0] != "new") and not any(e[0] == "new" for e in entries):
        return x
    return Subtensor(entries)(x, *variables)


def _key_pp(entries, texts):
    """The index key as the user wrote it, symbolic parts shown by their expressions."""
    def part(v):
        if v is None:
            return ""
        return texts[v[1]] if isinstance(v, tuple) else str(v)
    shown = []
    for e in entries:
        if e[0] == "new":
            shown.append("None")
        elif e[0] == "slice":
            text = f"{part(e[1])}:{part(e[2])}"
            shown.append(text + (f":{part(e[3])}" if e[3] is not None else ""))
        else:
            shown.append(part(e[1]))
    while len(shown) > 1 and shown[-1] == ":":
        shown.pop()
    return ", ".join(shown)


# -- lowering --------------------------------------------------------------------------

def _value_of(ctx, node, ref):
    """A Python int for a key part: itself, or the value of the node input it names."""
    if ref is None or isinstance(ref, int):
        return ref
    return int(ctx.value(node.inputs[1 + ref[1]]))


def _core_of(ctx, node, ref, dtype="int64"):
    if isinstance(ref, int):
        return core_constant(np.asarray(ref, dtype=dtype), dtype=dtype)
    return cast_core(ctx.lower(node.inputs[1 + ref[1]]), dtype)


def _slice_plan(ctx, node, entry, size):
    """('static', begin, end, step) or ('dynamic', start_ref, stop_ref, length) for a slice."""
    _, start, stop, step = entry
    step_value = _value_of(ctx, node, step) if step is not None else 1
    if step_value == 0:
        raise ValueError(f"slice step of '{node.outputs[0]}' is zero")
    symbolic = [p for p in (start, stop) if isinstance(p, tuple)]
    if not symbolic:
        return ("static",) + slice(start, stop, step_value).indices(size)
    if step_value == 1 and start is not None and id(node) not in ctx.static_slices:
        length = _invariant_length(ctx, node, start, stop, size)
        if length is not None:
            return ("dynamic", start, stop, length)
    begin = _value_of(ctx, node, start)
    end = _value_of(ctx, node, stop)
    return ("static",) + slice(begin, end, step_value).indices(size)


def _invariant_length(ctx, node, start, stop, size):
    """The slice's length when it does not depend on input values, else None.

    The bounds are computed for the current inputs and a few other values of them;
    samples whose bounds fall outside the axis are ignored (they would fail the
    run-time check anyway). The op checks the length on every run.
    """
    refs = {"start": start, "stop": stop}
    variables = {k: node.inputs[1 + v[1]] for k, v in refs.items() if isinstance(v, tuple)}
    samples = ctx.value_samples(list(variables.values()))
    if samples is None:
        return None
    lengths = set()
    for sample in samples:
        values = {k: v for k, v in refs.items() if not isinstance(v, tuple)}
        values.update({k: int(s) for k, s in zip(variables, sample)})
        bounds = [values.get("start"), values.get("stop")]
        if any(b is not None and not -size <= b <= size for b in bounds):
            continue
        b, e, _ = slice(*bounds).indices(size)
        lengths.add(max(e - b, 0))
    return lengths.pop() if len(lengths) == 1 else None


def lower_subtensor(ctx, node, x, entries):
    """Core tensors computing ``x[entries]`` (shapes are concrete here)."""
    adv = _has_adv(entries)
    real = [e for e in entries if e[0] != "new"]
    begin, end, step = [], [], []
    dynamic = []           # (axis, start_ref, stop_ref, length)
    drop = []              # axes removed by int indices (no advanced indices)
    adv_axes = []          # (axis, ref) when advanced
    for axis, e in enumerate(real):
        size = x.shape[axis]
        b, en, st = 0, SLICE_END, 1
        if e[0] == "slice":
            plan = _slice_plan(ctx, node, e, size)
            if plan[0] == "static":
                b, en, st = plan[1:]
                if st < 0 and en < 0:
                    en = -SLICE_END - 1
                if (b, st) == (0, 1) and en >= size:  # the whole axis: no copy
                    en = SLICE_END
            else:
                dynamic.append((axis, plan[1], plan[2], plan[3]))
        elif e[0] == "int":
            if adv:
                adv_axes.append((axis, e[1]))
            elif isinstance(e[1], int):
                k = e[1]
                if not -size <= k < size:
                    raise IndexError(f"index {k} is out of bounds for axis {axis} with size "
                                     f"{size} in '{node.outputs[0]}'")
                b, en = k % size, k % size + 1
                drop.append(axis)
            else:
                dynamic.append((axis, e[1], None, 1))
                drop.append(axis)
        else:
            adv_axes.append((axis, e[1]))
        begin.append(b)
        end.append(en)
        step.append(st)
    y = x
    if any((b, e, s) != (0, SLICE_END, 1) for b, e, s in zip(begin, end, step)):
        y = core_apply("StridedSlice", [y], begin=begin, end=end, step=step)
    for axis, start, stop, length in dynamic:
        inputs = [y, _core_of(ctx, node, start)]
        if stop is not None:
            inputs.append(_core_of(ctx, node, stop))
        y = core_apply("DynamicSlice", inputs, axis=axis, size=int(length))
    if adv:
        y, block = _gather_advanced(ctx, node, y, adv_axes, real)
        dims = _adv_dims(entries, y, block)
    else:
        dims = []
        axis = 0
        for e in entries:
            if e[0] == "new":
                dims.append(1)
                continue
            if axis not in drop:
                dims.append(y.shape[axis])
            axis += 1
    if tuple(dims) != tuple(y.shape):
        y = core_apply("Reshape", [y], shape=[int(d) for d in dims])
    return y


def _adjacent(real):
    positions = [i for i, e in enumerate(real) if e[0] in ("adv", "int")]
    return not positions or positions[-1] - positions[0] + 1 == len(positions)


def _gather_advanced(ctx, node, y, adv_axes, real):
    """Gather the advanced-indexed axes: the result has the index block where numpy puts it.

    Returns (tensor, block_dims); the block sits first when the advanced entries are
    not adjacent, else at the first advanced axis's place.
    """
    indices = []
    for axis, ref in adv_axes:
        idx = _core_of(ctx, node, ref)
        n = core_constant(np.asarray(y.shape[axis], np.int64), dtype=np.int64)
        zero = core_constant(np.asarray(0, np.int64), dtype=np.int64)
        if idx.kind != "constant" or (np.asarray(idx._value) < 0).any():
            idx = core_apply("Where", [core_apply("Less", [idx, zero]),
                                       core_apply("Add", [idx, n]), idx])
        indices.append(idx)
    block = list(np.broadcast_shapes(*[tuple(i.shape) for i in indices]))
    axes = [a for a, _ in adv_axes]
    if len(axes) == 1:
        return core_apply("Gather", [y, indices[0]], axis=axes[0]), block
    others = [a for a in range(y.ndim) if a not in axes]
    moved = core_apply("Transpose", [y], perm=axes + others)
    flat = core_apply("Reshape", [moved], shape=[-1] + [y.shape[a] for a in others])
    strides = np.cumprod([1] + [y.shape[a] for a in axes[::-1]][:-1])[::-1]
    position = None
    for idx, stride in zip(indices, strides):
        term = idx if stride == 1 else core_apply(
            "Mul", [idx, core_constant(np.asarray(stride, np.int64), dtype=np.int64)])
        position = term if position is None else core_apply("Add", [position, term])
    out = core_apply("Gather", [flat, position], axis=0)
    if _adjacent(real) and axes[0] > 0:
        k = len(block)
        lead = axes[0]
        rest = out.ndim - k
        perm = list(range(k, k + lead)) + list(range(k)) + list(range(k + lead, k + rest))
        out = core_apply("Transpose", [out], perm=perm)
    return out, block


def _adv_dims(entries, y, block):
    """Final dims of an advanced index: y's dims with the new axes inserted."""
    real = [e for e in entries if e[0] != "new"]
    adjacent = _adjacent(real)
    dims = list(y.shape)
    if not any(e[0] == "new" for e in entries):
        return dims
    # Walk the key like _layout, consuming y's dims.
    it = iter(dims)
    out = []
    if not adjacent:
        out.extend(next(it) for _ in block)
    placed = False
    for e in entries:
        if e[0] == "new":
            out.append(1)
        elif e[0] == "slice":
            out.append(next(it))
        elif adjacent and not placed:
            out.extend(next(it) for _ in block)
            placed = True
    return out


# -- writing into slices -----------------------------------------------------------------

class IncSubtensor(Op):
    """``x`` with ``y`` added to (or written over) ``x[entries]``."""

    def __init__(self, entries, set_instead_of_inc):
        self.entries = entries
        self.set_instead_of_inc = set_instead_of_inc

    def make_node(self, x, y, *variables):
        return Apply(self, [x, y] + list(variables), [x.type()])

    def is_connected(self, index):
        return index < 2

    def lower(self, ctx, node, x, y, *variables):
        return lower_inc_subtensor(ctx, node, x, y, self.entries, self.set_instead_of_inc)

    def pp(self, texts):
        what = "set_subtensor" if self.set_instead_of_inc else "inc_subtensor"
        return f"{what}({texts[0]}[{_key_pp(self.entries, texts[2:])}], {texts[1]})"

    def __str__(self):
        return "SetSubtensor" if self.set_instead_of_inc else "IncSubtensor"


class _SubNode:
    """The Subtensor node's view of an IncSubtensor node (inputs shifted past y)."""

    def __init__(self, node):
        self.inputs = [node.inputs[0]] + node.inputs[2:]
        self.outputs = node.outputs


def lower_inc_subtensor(ctx, node, x, y, entries, set_mode):
    sub_node = _SubNode(node)
    sub = lower_subtensor(ctx, sub_node, x, entries)
    y = cast_core(y, x.dtype)
    if tuple(y.shape) != tuple(sub.shape):
        y = core_apply("BroadcastLike", [y, core_apply("ZerosLike", [sub])])
    scatter, count = _scatter(ctx, sub_node, x, y, entries, sub)
    zero = core_constant(np.asarray(0, count.dtype), dtype=count.dtype)
    if set_mode:
        mask = core_apply("NotEqual", [count, zero])
        if not static_entries(entries):
            # Repeated indices wrote their values' sum: divide by how often each place was hit.
            safe = core_apply("Maximum", [count, core_constant(np.asarray(1, count.dtype),
                                                               dtype=count.dtype)])
            scatter = cast_core(core_apply("Div", [scatter, safe]), x.dtype)
        return core_apply("Where", [mask, scatter, x])
    return core_apply("Add", [x, scatter])


def static_entries(entries):
    """Whether the key has only ints and slices with fixed bounds (no place is hit twice)."""
    return all(e[0] in ("slice", "int", "new") and not any(isinstance(p, tuple) for p in e[1:])
               for e in entries)


def _scatter(ctx, sub_node, x, y, entries, sub):
    """(zeros of x's shape with y added at x[entries], how often each place was written)."""
    real = [e for e in entries if e[0] != "new"]
    static = static_entries(real)
    ones = core_apply("OnesLike", [y])
    if static:
        begin, end, step = [], [], []
        shape = []
        for axis, e in enumerate(real):
            size = x.shape[axis]
            if e[0] == "int":
                k = e[1] % size
                begin.append(k)
                end.append(k + 1)
                step.append(1)
                shape.append(1)
            else:
                b, en, st = slice(*e[1:]).indices(size)
                if st < 0 and en < 0:
                    en = -SLICE_END - 1
                begin.append(b)
                end.append(en)
                step.append(st)
                shape.append(len(range(*slice(*e[1:]).indices(size))))
        y_full = core_apply("Reshape", [y], shape=shape)
        ones_full = core_apply("Reshape", [ones], shape=shape)
        args = dict(begin=begin, end=end, step=step)
        scatter = core_apply("StridedSliceGradient", [y_full, x], **args)
        mask = core_apply("StridedSliceGradient", [ones_full, x], **args)
    else:
        positions = core_apply("Reshape", [core_apply("Arange", [], start=0,
                                                      stop=int(np.prod(x.shape)), dtype="int64")],
                               shape=list(x.shape))
        where = lower_subtensor(ctx, sub_node, positions, entries)
        flat_x = core_apply("Reshape", [x], shape=[-1])
        flat_where = core_apply("Reshape", [where], shape=[-1])
        flat_y = core_apply("Reshape", [y], shape=[-1])
        scatter = core_apply("GatherGradient", [flat_y, flat_where, flat_x], axis=0)
        mask = core_apply("GatherGradient", [core_apply("Reshape", [ones], shape=[-1]),
                                             flat_where, flat_x], axis=0)
        scatter = core_apply("Reshape", [scatter], shape=list(x.shape))
        mask = core_apply("Reshape", [mask], shape=list(x.shape))
    return scatter, mask


def _inc_or_set(x_sub, y, set_mode, what):
    node = getattr(x_sub, "owner", None) if isinstance(x_sub, Variable) else None
    if node is None or not isinstance(node.op, Subtensor):
        raise TypeError(f"T.{what}'s first argument must be a subtensor such as x[2:4] or "
                        f"x[idx], got '{x_sub}'")
    node = x_sub.owner
    x = node.inputs[0]
    y = as_tensor_variable(y)
    if y.ndim > x_sub.ndim:
        raise TypeError(f"T.{what}: '{y}' has {y.ndim} dimensions, more than the "
                        f"{x_sub.ndim}-d subtensor '{x_sub}'")
    op = IncSubtensor(node.op.entries, set_mode)
    return op(x, y, *node.inputs[1:])


def set_subtensor(x, y, inplace=False, tolerate_inplace_aliasing=False):
    """A copy of the tensor under ``x`` (a subtensor) with ``y`` written at ``x``'s place.

    >>> T.set_subtensor(m[1:3], 0.)    # m with rows 1 and 2 zeroed
    """
    return _inc_or_set(x, y, True, "set_subtensor")


def inc_subtensor(x, y, inplace=False, set_instead_of_inc=False, tolerate_inplace_aliasing=False):
    """A copy of the tensor under ``x`` (a subtensor) with ``y`` added at ``x``'s place.

    Repeated advanced indices add up (as Theano's AdvancedIncSubtensor1).

    >>> T.inc_subtensor(W[idx], delta)
    """
    return _inc_or_set(x, y, set_instead_of_inc, "inc_subtensor")
