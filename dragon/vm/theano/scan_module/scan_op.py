"""The Scan op: a step graph applied over time, lowered by unrolling it or as a core Loop.

``theano.scan`` (``scan_builder``) calls the user's step function once on
placeholder variables, which gives the *inner graph*; a ``ScanOp`` node holds it
together with the outer variables it reads. When a function lowers the node every
shape is known, so the number of steps is a number, and there are two lowerings:

- unrolled (up to ``UNROLL_MAX_STEPS`` steps, and whenever the step takes a
  gradient or has an ``until`` condition): the step graph is lowered once per step
  through ``ctx.child({placeholder: core tensor})``, each step reading the core
  tensors the previous ones made; the core's autodiff differentiates the unrolled
  graph (backpropagation through time) and second derivatives work;
- one core ``Loop`` op (``dragon/ops/loop.py``): the step is lowered once into a
  small graph that a sub-plan runs ``n`` times; compile time and graph size do not
  grow with the number of steps, and ``LoopGradient`` does the BPTT.

Outer expressions the step reads but does not change (weights, ``W.T``) are node
inputs, lowered once, not once per step.

Node inputs, in order::

    n_steps (an int scalar; an unused constant when not given)
    sequences (whole)  initial states (outputs with taps)
    shared variables the loop updates (their value before the loop)
    other outer variables the step reads

Node outputs: one stacked tensor per step output (steps x output shape), then
the value of each updated shared variable after the loop.
"""
from __future__ import annotations

import numpy as np

from dragon.core.errors import DragonError
from dragon.core.tensor import apply as core_apply
from dragon.vm.theano.compile.graph import _resolve
from dragon.vm.theano.tensor.basic import cast_core
from dragon.vm.theano.tensor.type import TensorType
from dragon.vm.theano.tensor.var import Apply, Op, lowered


class ScanOp(Op):
    """One ``theano.scan``: the inner graph and how its inputs and outputs line up.

    seq_taps: per sequence, its taps. out_taps: per output, its taps (None: the
    output does not feed back). inner_seqs: the step's sequence placeholders (one
    per sequence tap); inner_states: per output with taps, one placeholder per tap;
    inner_outputs / inner_updates: what the step computes; updated: the shared
    variables the loop updates; frontier: the outer variables the step reads.
    """

    def __init__(self, name, seq_taps, out_taps, inner_seqs, inner_states, inner_outputs,
                 updated, inner_updates, frontier, constants, condition, truncate_gradient,
                 go_backwards, n_steps_given):
        self.scan_name = name or "scan_fn"
        self.name = f"for{{cpu,{self.scan_name}}}"
        self.seq_taps = seq_taps
        self.out_taps = out_taps
        self.inner_seqs = inner_seqs
        self.inner_states = inner_states
        self.inner_outputs = inner_outputs
        self.updated = updated
        self.inner_updates = inner_updates
        self.frontier = frontier
        self.constants = constants
        self.condition = condition
        self.truncate_gradient = truncate_gradient
        self.go_backwards = go_backwards
        self.n_steps_given = n_steps_given

    # -- the node ---------------------------------------------------------------------
    @property
    def n_seqs(self):
        return len(self.seq_taps)

    @property
    def n_inits(self):
        return sum(1 for taps in self.out_taps if taps is not None)

    def make_node(self, n_steps, sequences, initials):
        inputs = [n_steps] + list(sequences) + list(initials) + list(self.updated) + \
            list(self.frontier)
        outputs = []
        for k, out in enumerate(self.inner_outputs):
            pattern = out.broadcastable
            if self.out_taps[k] is not None:
                pattern = self.inner_states[self._state_index(k)][0].broadcastable
            outputs.append(TensorType(out.dtype, (False,) + tuple(pattern))())
        outputs += [var.type() for var in self.updated]
        return Apply(self, inputs, outputs)

    def is_connected(self, index):
        return index != 0          # the number of steps carries no gradient

    def _state_index(self, k):
        return sum(1 for taps in self.out_taps[:k] if taps is not None)

    def _split_inputs(self, items):
        i = 1
        seqs = items[i:i + self.n_seqs]
        i += self.n_seqs
        inits = items[i:i + self.n_inits]
        i += self.n_inits
        shared = items[i:i + len(self.updated)]
        i += len(self.updated)
        return items[0], seqs, inits, shared, items[i:]

    # -- lowering ---------------------------------------------------------------------
    def lower(self, ctx, node, *cores):
        n_steps_var = node.inputs[0]
        _, seqs, inits, shared, frontier = self._split_inputs(list(cores))
        limit = self._steps_limit(ctx, n_steps_var, seqs)
        if self.condition is not None:
            n = self._steps_until(ctx, node, limit)
        else:
            n = limit
        if n > UNROLL_MAX_STEPS and self.loopable():
            outs = _as_loop(self, ctx, seqs, inits, shared, frontier, n)
            if outs is not None:
                return outs
        return _Unroll(self, ctx, self.outer_values(ctx, frontier), seqs, inits, shared, n).run()

    def outer_values(self, ctx, frontier):
        """{outer variable: core tensor} for what the step reads from outside."""
        base = {_resolve(var, ctx.givens): core for var, core in zip(self.frontier, frontier)}
        for const in self.constants:
            base[const] = ctx.lower(const)
        return base

    def loopable(self):
        """Whether the step can run as one core Loop: no until-condition (the step
        count comes from unrolled conditions) and no gradient taken inside the step
        (its backward graph would reach through the outer graph into the Loop)."""
        if self.condition is not None:
            return False
        cached = self.__dict__.get("_loopable")
        if cached is None:
            cached = self.__dict__["_loopable"] = not _takes_gradients(
                self.inner_outputs + self.inner_updates, self.frontier)
        return cached

    def _steps_limit(self, ctx, n_steps_var, seqs):
        given = None
        if self.n_steps_given:
            given = int(ctx.value(n_steps_var))
            if given < 0:
                raise IndexError(f"theano.scan '{self.scan_name}' was asked to run for a "
                                 f"negative number of steps ({given})")
        for k, seq in enumerate(seqs):
            if seq.shape is None or seq.shape[0] is None:
                raise ValueError(f"theano.scan '{self.scan_name}': the length of sequence {k} "
                                 f"is unknown when the function compiles")
        lengths = [self._usable_length(seq, taps) for seq, taps in zip(seqs, self.seq_taps)]
        if given is None:
            n = min(lengths)
        else:
            n = given
            for k, length in enumerate(lengths):
                if length < n:
                    raise ValueError(
                        f"theano.scan '{self.scan_name}': sequence {k} is shorter than the "
                        f"required number of steps: {n} steps, but with taps "
                        f"{self.seq_taps[k]} its {seqs[k].shape[0]} rows give {length}")
        if n == 0:
            raise NotImplementedError(f"theano.scan '{self.scan_name}' would run 0 steps (an "
                                      f"empty sequence or n_steps=0); Theano does not support "
                                      f"scans of zero iterations either")
        return n

    @staticmethod
    def _usable_length(seq, taps):
        return seq.shape[0] - (max(max(taps), 0) - min(min(taps), 0))

    def _steps_until(self, ctx, node, limit):
        """Steps a do-while scan runs: its conditions are computed for 1, 2, 4, ... steps
        (values of the inputs they depend on; the function compiles per such value)."""
        probe = 1
        while True:
            probe = min(probe, limit)
            flags = lowered(_lower_conditions, list(node.inputs), TensorType("int8", (False,)),
                            name="scan_conditions", scan_op=self, steps=probe)
            values = np.asarray(ctx.value(flags)).reshape(-1)
            hits = np.flatnonzero(values)
            if hits.size:
                return int(hits[0]) + 1
            if probe >= limit:
                return limit
            probe *= 2


# Scans of up to this many steps are unrolled; longer ones run as one core Loop op. An
# unrolled plan runs about a quarter faster (no per-step copies) but its compile time
# grows with the steps (about 0.3 s for 64 steps of a small RNN with its gradient,
# against about 0.02 s for a Loop at any length).
UNROLL_MAX_STEPS = 64


def _takes_gradients(roots, frontier):
    """Whether the graph from ``frontier`` to ``roots`` differentiates (grad, Rop,
    jacobian), here or in a nested scan."""
    from dragon.vm.theano.compile.graph import apply_nodes
    from dragon.vm.theano.gradient import GradOp, RopOp
    for node in apply_nodes(roots, stop=frontier):
        op = node.op
        if isinstance(op, (GradOp, RopOp)) or getattr(op, "name", None) == "jacobian":
            return True
        if isinstance(op, ScanOp) and not op.loopable():
            return True
    return False


def _lower_conditions(ctx, node, *cores, scan_op, steps):
    """The until-conditions of the first ``steps`` steps, as an int8 vector."""
    _, seqs, inits, shared, frontier = scan_op._split_inputs(list(cores))
    unroll = _Unroll(scan_op, ctx, scan_op.outer_values(ctx, frontier), seqs, inits, shared,
                     steps)
    unroll.run()
    flags = [cast_core(c, "int8") for c in unroll.conditions]
    if len(flags) == 1:
        return core_apply("ExpandDims", flags, axis=0)
    return core_apply("Stack", flags, axis=0)


def _as_loop(op, ctx, seqs, inits, shared, frontier, n):
    """The scan's outputs from one core Loop op, or None when the step cannot be one
    (a stateful op in it, or an op that reads a step value while it lowers)."""
    from dragon.ops.loop import step_graph
    builder = _LoopInputs(op, ctx, n)
    builder.add_sequences(seqs)
    if not builder.add_states(inits, shared):
        return None
    # The step reads outer expressions as they are (so ops may read their values when
    # they lower); the step graph is cut at them and they enter the Loop as invariants.
    cut = {}
    for var, core in zip(op.frontier, frontier):
        if core.kind != "constant" and core not in cut:
            cut[core] = builder.slot(core, str(var))
            builder.invariants.append(core)
    child = ctx.child({**op.outer_values(ctx, frontier), **builder.replace})
    try:
        outs = [child.lower(v) for v in op.inner_outputs]
        news = [cast_core(child.lower(u), var.dtype)
                for u, var in zip(op.inner_updates, op.updated)]
    except KeyError:
        return None   # an op read the value of a step input while lowering: unroll
    except (DragonError, ValueError, IndexError, TypeError) as exc:
        raise _in_step(exc, op, 0) from exc
    feeding = [k for k, taps in enumerate(op.out_taps) if taps is not None]
    states = [cast_core(outs[k], inits[i].dtype) for i, k in enumerate(feeding)] + news
    others = [outs[k] for k, taps in enumerate(op.out_taps) if taps is None]
    try:
        text, names, out_names, extra = step_graph(builder.step_inputs, states + others,
                                                   name=op.scan_name, cut=cut)
    except ValueError:
        return None         # a stateful op: unroll instead
    stacked = core_apply("Loop", builder.rows + builder.initial_rows + builder.invariants + extra,
                         step=text, steps=n, sequences=len(builder.rows),
                         state_taps=builder.taps, state_tap_counts=builder.counts,
                         step_inputs=names, step_outputs=out_names,
                         truncate=op.truncate_gradient)
    stacked = stacked if isinstance(stacked, list) else [stacked]
    state_out, other_out = iter(stacked[:len(states)]), iter(stacked[len(states):])
    results = [next(state_out) if taps is not None else next(other_out) for taps in op.out_taps]
    for var in op.updated:
        last = core_apply("StridedSlice", [next(state_out)], begin=[n - 1], end=[n], step=[1],
                          squeeze=[0])
        results.append(cast_core(last, var.dtype))
    return results


class _LoopInputs:
    """The inputs of a scan's Loop op and the step placeholders standing for them."""

    def __init__(self, op, ctx, n):
        self.op, self.ctx, self.n = op, ctx, n
        self.rows, self.initial_rows, self.invariants = [], [], []
        self.step_inputs, self.replace = [], {}
        self.taps, self.counts = [], []

    def slot(self, like, label):
        """A new step placeholder shaped like ``like`` (a tensor or Spec)."""
        from dragon.core import scope
        from dragon.core.tensor import placeholder
        ph = placeholder(like.shape, like.dtype,
                         name=scope.unique_name(f"{self.op.scan_name}/step/{label}"))
        self.step_inputs.append(ph)
        return ph

    def add_sequences(self, seqs):
        """One Loop sequence per tap: the rows that tap reads, in the order of the steps."""
        from dragon.ops.array import SLICE_END
        op, n, j = self.op, self.n, 0
        for seq, taps in zip(seqs, op.seq_taps):
            lo_tap = min(min(taps), 0)
            usable = op._usable_length(seq, taps)
            for k in taps:
                start = k - lo_tap
                if op.go_backwards:
                    end = start + usable - n - 1
                    rows = core_apply("StridedSlice", [seq], begin=[start + usable - 1],
                                      end=[end if end >= 0 else -SLICE_END - 1], step=[-1])
                elif start == 0 and n == seq.shape[0]:
                    rows = seq
                else:
                    rows = core_apply("StridedSlice", [seq], begin=[start], end=[start + n],
                                      step=[1])
                self.replace[op.inner_seqs[j]] = self.slot(_row_spec(rows), f"seq{j}")
                self.rows.append(rows)
                j += 1

    def add_states(self, inits, shared):
        """Loop states: outputs that feed back (their initial rows), then the shared
        variables the loop updates. False when an initial value is too short."""
        op = self.op
        feeding = [k for k, taps in enumerate(op.out_taps) if taps is not None]
        for index, (k, init) in enumerate(zip(feeding, inits)):
            taps = op.out_taps[k]
            depth = -min(taps)
            if taps == [-1]:
                rows = core_apply("ExpandDims", [init], axis=0)
            elif init.shape[0] < depth:
                return False     # the unrolled lowering explains the error
            else:
                rows = init if init.shape[0] == depth else core_apply(
                    "StridedSlice", [init], begin=[0], end=[depth], step=[1])
            self.initial_rows.append(rows)
            for var, tap in zip(op.inner_states[index], taps):
                self.replace[var] = self.slot(_row_spec(rows), f"out{k}[t{tap}]")
            self.taps += taps
            self.counts.append(len(taps))
        for var, value in zip(op.updated, shared):
            rows = core_apply("ExpandDims", [value], axis=0)
            self.initial_rows.append(rows)
            label = f"{var}[t-1]"
            self.replace[_resolve(var, self.ctx.givens)] = self.slot(_row_spec(rows), label)
            self.taps.append(-1)
            self.counts.append(1)
        return True


def _row_spec(rows):
    from dragon.ops.registry import Spec
    return Spec(tuple(rows.shape[1:]), rows.dtype)


class _Unroll:
    """The core tensors of ``n`` steps of a scan, built step after step."""

    def __init__(self, op, ctx, base, seqs, inits, shared, n):
        self.op, self.ctx, self.base, self.n = op, ctx, base, n
        self.usable = [op._usable_length(seq, taps) for seq, taps in zip(seqs, op.seq_taps)]
        self.rows = [self._sequence_rows(seq, taps, usable)
                     for seq, taps, usable in zip(seqs, op.seq_taps, self.usable)]
        self.history = [self._initial_rows(k, init) for k, init in enumerate(inits)]
        self.states = list(shared)
        self.conditions = []

    # -- inputs of a step ---------------------------------------------------------------
    def _sequence_rows(self, seq, taps, usable):
        """{row index: core tensor} for the rows of ``seq`` the steps read."""
        lo_tap = min(min(taps), 0)
        wanted = sorted({self._row_index(t, k, lo_tap, usable) for t in range(self.n)
                         for k in taps})
        first, last = wanted[0], wanted[-1]
        part = seq
        if first != 0 or last != seq.shape[0] - 1:
            part = core_apply("StridedSlice", [seq], begin=[first], end=[last + 1], step=[1])
        count = last - first + 1
        pieces = core_apply("Split", [part], axis=0, num=count) if count > 1 else [part]
        pieces = pieces if isinstance(pieces, list) else [pieces]
        return {first + i: core_apply("Squeeze", [p], axes=[0]) for i, p in enumerate(pieces)}

    def _row_index(self, t, k, lo_tap, usable):
        if self.op.go_backwards:
            return (k - lo_tap) + (usable - 1 - t)
        return t + k - lo_tap

    def _initial_rows(self, index, init):
        """The initial values an output's taps read: [init] or init's first rows."""
        k = [i for i, taps in enumerate(self.op.out_taps) if taps is not None][index]
        taps = self.op.out_taps[k]
        if taps == [-1]:
            return [init]
        depth = -min(taps)
        if init.shape[0] < depth:
            raise ValueError(
                f"theano.scan '{self.op.scan_name}': outputs_info[{k}] has taps {taps}, so "
                f"its initial value needs at least {depth} rows; it has shape "
                f"{tuple(init.shape)}")
        part = init if init.shape[0] == depth else core_apply(
            "StridedSlice", [init], begin=[0], end=[depth], step=[1])
        pieces = core_apply("Split", [part], axis=0, num=depth) if depth > 1 else [part]
        pieces = pieces if isinstance(pieces, list) else [pieces]
        return [core_apply("Squeeze", [p], axes=[0]) for p in pieces]

    # -- the loop -----------------------------------------------------------------------
    def run(self):
        op = self.op
        stacked = [[] for _ in op.inner_outputs]
        cut = self._gradient_cut()
        for t in range(self.n):
            if t == cut and cut > 0:
                self._stop_gradients()
            outs, news = self._step(t)
            for k, out in enumerate(outs):
                stacked[k].append(core_apply("StopGradient", [out]) if t < cut else out)
                if op.out_taps[k] is not None:
                    self.history[op._state_index(k)].append(out)
            self.states = news
        results = [self._stack(k, items) for k, items in enumerate(stacked)]
        results += [cast_core(s, var.dtype) for s, var in zip(self.states, op.updated)]
        return results

    def _gradient_cut(self):
        """Steps before this one pass no gradient back (truncate_gradient)."""
        k = self.op.truncate_gradient
        if k is None or k < 0 or k >= self.n:
            return 0
        return self.n - k

    def _stop_gradients(self):
        self.history = [[core_apply("StopGradient", [c]) for c in rows] for rows in self.history]
        self.states = [core_apply("StopGradient", [s]) for s in self.states]

    def _step(self, t):
        op = self.op
        replace = dict(self.base)
        j = 0
        for rows, taps, usable in zip(self.rows, op.seq_taps, self.usable):
            lo_tap = min(min(taps), 0)
            for k in taps:
                replace[op.inner_seqs[j]] = rows[self._row_index(t, k, lo_tap, usable)]
                j += 1
        for history, placeholders, taps in zip(self.history, op.inner_states,
                                               [x for x in op.out_taps if x is not None]):
            depth = len(history)
            for var, k in zip(placeholders, taps):
                replace[var] = history[depth + k]
        for var, state in zip(op.updated, self.states):
            replace[_resolve(var, self.ctx.givens)] = state
        child = self.ctx.child(replace)
        try:
            outs = [child.lower(v) for v in op.inner_outputs]
            news = [cast_core(child.lower(u), var.dtype)
                    for u, var in zip(op.inner_updates, op.updated)]
            if op.condition is not None:
                self.conditions.append(child.lower(op.condition))
        except (DragonError, ValueError, IndexError, TypeError) as exc:
            raise _in_step(exc, op, t) from exc
        for k, out in enumerate(outs):
            self._check_state_shape(k, out)
        return outs, news

    def _check_state_shape(self, k, out):
        taps = self.op.out_taps[k]
        if taps is None:
            return
        history = self.history[self.op._state_index(k)]
        expected = history[0].shape
        if out.shape is not None and expected is not None and tuple(out.shape) != tuple(expected):
            raise ValueError(
                f"theano.scan '{self.op.scan_name}': output {k} of the step function has shape "
                f"{tuple(out.shape)}, but its state (outputs_info[{k}]) has shape "
                f"{tuple(expected)}; the step must return values of its state's shape")

    def _stack(self, k, items):
        if len(items) == 1:
            return core_apply("ExpandDims", items, axis=0)
        try:
            return core_apply("Stack", items, axis=0)
        except DragonError as exc:
            shapes = sorted({tuple(i.shape) for i in items if i.shape is not None})
            raise ValueError(f"theano.scan '{self.op.scan_name}': output {k} has different "
                             f"shapes in different steps ({shapes}); scan stacks the steps' "
                             f"outputs, so they must all have one shape") from exc


def _in_step(exc, op, t):
    """``exc`` with the scan and the step it happened in named."""
    message = f"in step {t} of theano.scan '{op.scan_name}': {exc}"
    try:
        err = type(exc)(message)
    except Exception:  # noqa: BLE001 - exception types with other signatures
        err = ValueError(message)
    err._theano_explained = True
    return err
