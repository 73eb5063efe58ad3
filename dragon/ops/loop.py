"""Loops over time: a step graph run once per step by one compiled sub-plan.

``Loop`` is what a recurrence (Theano's scan, an RNN) lowers to when unrolling it
would make a graph too long: the step is a small GraphDef, carried as an argument
in protobuf text format (graphs are data), compiled once into a plan and run
``steps`` times. Its inputs, in order::

    sequences     S inputs iterated over axis 0: step t reads X[t]
    states        R initial values, each with a leading axis of ``depth`` rows; a
                  state's taps (negative) read its earlier values: tap -1 the
                  previous step's, tap -k the one k steps back (the initial rows
                  first, then the values the steps produced)
    invariants    the rest, read whole by every step

``step_inputs`` names the step graph's inputs in that order (one per sequence,
one per state tap, one per invariant) and ``step_outputs`` its outputs: first
each state's new value, then the other per-step outputs. The op's outputs stack
them over the steps (steps x value shape). ``step_graph`` makes the arguments::

    x_t, h_tm1, w = (placeholder(s, "float64") for s in [(3,), (4,), (4, 4)])
    text, names, outs, extra = step_graph([x_t, h_tm1, w], [tanh(x_t @ u + h_tm1 @ w)])
    h = apply("Loop", [x, h0_rows, W] + extra, step=text, steps=5, sequences=1,
              state_taps=[-1], state_tap_counts=[1], step_inputs=names, step_outputs=outs)

The gradient, ``LoopGradient``, runs the step's vector-Jacobian graph (made by the
core's autodiff from the step graph) from the last step to the first, recomputing
each step from its inputs (backpropagation through time; only the stacked
outputs are kept between the passes). ``truncate`` = k stops it after k steps
(truncated BPTT). Step graphs must be deterministic (no stateful ops): the
backward pass recomputes them.
"""
from __future__ import annotations

import numpy as np
from google.protobuf import text_format

from dragon import config
from dragon.core.errors import DragonError, ShapeError
from dragon.ops.registry import REQUIRED, Spec, register

_MANY = 1 << 16
_ARGS = {"step": REQUIRED, "steps": REQUIRED, "sequences": 0, "state_taps": [],
         "state_tap_counts": [], "step_inputs": REQUIRED, "step_outputs": REQUIRED, "truncate": -1}
_PLANS: dict = {}          # compiled step plans, oldest first
_MAX_PLANS = 256


# -- the step graph -------------------------------------------------------------------------

def parse_graph(text):
    """The GraphDef in protobuf text ``text``."""
    from dragon.proto import dragon_pb2
    graph = dragon_pb2.GraphDef()
    text_format.Parse(text, graph)
    return graph


def graph_text(graph_def):
    """``graph_def`` as protobuf text (the form a Loop carries its step in)."""
    return text_format.MessageToString(graph_def)


def step_graph(inputs, outputs, name="loop_step", cut=None):
    """A Loop's step from tensors: (text, step_inputs, step_outputs, extra).

    ``inputs`` are the placeholders a step is fed (sequence rows, state taps,
    invariants, in the Loop's order); ``outputs`` what it computes (state values
    first). ``cut`` maps outer tensors the step reads to the placeholders (among
    ``inputs``) that stand for them, so the step graph stops there. Other leaves
    the step reads (constants, outer inputs) are ``extra``: their names end
    ``step_inputs`` and the caller passes them as the Loop's last invariants.
    Raises ValueError when the step has a stateful op (random draws from the
    engine's generator), which backpropagation could not recompute.

    >>> text, ins, outs, extra = step_graph([x_t, h_tm1], [tanh(x_t + h_tm1)])
    """
    from dragon.core import graph as core_graph
    from dragon.ops import registry
    cut = dict(cut or {})
    outputs = [apply_copy_if_leaf(o, is_gradient=False) if o.node is None or o in cut else o
               for o in outputs]
    nodes, rename = core_graph.collect_nodes(outputs, givens=cut)
    for node in nodes:
        if registry.get(node.type).stateful:
            raise ValueError(f"a Loop step must be deterministic; op '{node.name}' "
                             f"({node.type}) is stateful")
    fed = {t.name for t in inputs}
    extra = [t for t in core_graph.leaves(nodes, rename) if t.name not in fed]
    graph = core_graph.to_graph_def(outputs, givens=cut, name=name)
    return (graph_text(graph), [t.name for t in inputs] + [t.name for t in extra],
            list(graph.output), extra)


def apply_copy_if_leaf(t, is_gradient=True):
    from dragon.core.tensor import apply
    return apply("Copy", [t], is_gradient=is_gradient)


class _Layout:
    """Where a Loop's inputs and the step's inputs line up (from the op's arguments)."""

    def __init__(self, n_inputs, args):
        self.n = int(args["steps"])
        self.n_seqs = int(args["sequences"])
        self.counts = [int(c) for c in args["state_tap_counts"]]
        taps = [int(t) for t in args["state_taps"]]
        self.taps, at = [], 0
        for c in self.counts:
            self.taps.append(taps[at:at + c])
            at += c
        self.depths = [-min(t) for t in self.taps]
        self.n_states = len(self.counts)
        self.n_invariants = n_inputs - self.n_seqs - self.n_states
        self.inputs = list(args["step_inputs"])
        self.outputs = list(args["step_outputs"])
        fits = (self.n_invariants >= 0 and len(self.outputs) >= self.n_states
                and len(self.inputs) == self.n_seqs + sum(self.counts) + self.n_invariants
                and sum(self.counts) == len(taps) and all(t < 0 for t in taps)
                and all(c >= 1 for c in self.counts))
        if not fits:
            raise ShapeError(
                f"Loop: {n_inputs} inputs do not fit sequences={self.n_seqs}, state_tap_counts="
                f"{self.counts}, state_taps={taps}, {len(self.inputs)} step inputs and "
                f"{len(self.outputs)} step outputs")
        if self.n < 1:
            raise ShapeError(f"Loop: steps must be at least 1, got {self.n}")

    def step_specs(self, specs):
        """The specs the step graph's inputs have, from the Loop's input specs."""
        seqs = specs[:self.n_seqs]
        states = specs[self.n_seqs:self.n_seqs + self.n_states]
        result = []
        for k, s in enumerate(seqs):
            if s.ndim == 0 or s.shape[0] < self.n:
                raise ShapeError(f"Loop: sequence {k} has shape {tuple(s.shape)}, shorter than "
                                 f"{self.n} steps")
            result.append(Spec(tuple(s.shape[1:]), s.dtype))
        for k, (s, depth) in enumerate(zip(states, self.depths)):
            if s.ndim == 0 or s.shape[0] < depth:
                raise ShapeError(f"Loop: state {k} has taps {self.taps[k]}, its initial value "
                                 f"needs {depth} rows, got shape {tuple(s.shape)}")
            result += [Spec(tuple(s.shape[1:]), s.dtype)] * self.counts[k]
        result += list(specs[self.n_seqs + self.n_states:])
        return result


class _SubPlan:
    """A step graph compiled for one set of input specs, in a private workspace."""

    def __init__(self, text, names, specs, fetches, keep):
        from dragon.core import executor
        from dragon.core.workspace import Workspace
        graph = parse_graph(text)
        self.workspace = Workspace(f"loop:{graph.name}")
        feeds = dict(zip(names, specs))
        if len(feeds) != len(names):
            raise ShapeError(f"Loop step graph '{graph.name}': its input names repeat: {names}")
        self.plan = executor.compile_graph(graph, feeds, fetches, self.workspace, keep=keep,
                                           name=graph.name or "loop_step")
        self.slots = self.plan.feed_views
        self.results = self.plan.fetch_views
        self.calls = self.plan.calls

    def run(self, where):
        index = 0
        try:
            for call in self.calls:
                call()
                index += 1
        except DragonError as exc:
            raise type(exc)(f"{where}: {exc}") from exc
        except Exception as exc:
            step = self.plan.steps[index]
            raise ShapeError(f"{where}: {step.label} failed with input shapes "
                             f"{[tuple(v.spec.shape) for v in step.inputs]}: "
                             f"{type(exc).__name__}: {exc}") from exc


def _sub_plan(text, names, specs, fetches, keep=()):
    key = (text, tuple(names), tuple((tuple(s.shape), np.dtype(s.dtype).str) for s in specs),
           tuple(fetches), tuple(keep), config.get_optimization_level(), config.get_device())
    plan = _PLANS.get(key)
    if plan is None:
        plan = _SubPlan(text, names, specs, fetches, keep)
        _PLANS[key] = plan
        if len(_PLANS) > _MAX_PLANS:
            del _PLANS[next(iter(_PLANS))]
    return plan


def _outs(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _history(layout, inits, stacked, r, index):
    """Value ``index`` of state r's history: its initial rows, then the steps' values."""
    depth = layout.depths[r]
    return inits[r][index] if index < depth else stacked[r][index - depth]


# -- Loop ---------------------------------------------------------------------------------------

def _output_count(args):
    return len(args["step_outputs"])


@register("Loop", inputs=(0, _MANY), outputs=_output_count, args=_ARGS)
def loop(xp, *values, out, step, steps, sequences, state_taps, state_tap_counts, step_inputs,
         step_outputs, truncate):
    """Y_k = the step graph's output k at every step, stacked (see the module docstring)."""
    layout = _Layout(len(values), locals())
    specs = [Spec(tuple(v.shape), v.dtype) for v in values]
    sub = _sub_plan(step, step_inputs, layout.step_specs(specs), step_outputs,
                    keep=_invariant_names(layout))
    seqs = values[:layout.n_seqs]
    inits = values[layout.n_seqs:layout.n_seqs + layout.n_states]
    stacked = _outs(out)
    slots = sub.slots
    tap_at = layout.n_seqs
    inv_at = tap_at + sum(layout.counts)
    for slot, value in zip(slots[inv_at:], values[layout.n_seqs + layout.n_states:]):
        slot[...] = value
    for t in range(layout.n):
        for slot, seq in zip(slots, seqs):
            slot[...] = seq[t]
        k = tap_at
        for r, taps in enumerate(layout.taps):
            for tap in taps:
                slots[k][...] = _history(layout, inits, stacked, r, t + layout.depths[r] + tap)
                k += 1
        sub.run(f"step {t} of Loop")
        for target, result in zip(stacked, sub.results):
            target[t] = result


def _invariant_names(layout):
    return layout.inputs[len(layout.inputs) - layout.n_invariants:] if layout.n_invariants else []




@loop.shape
def _(*specs, step, steps, sequences, state_taps, state_tap_counts, step_inputs, step_outputs,
      truncate):
    layout = _Layout(len(specs), locals())
    sub = _sub_plan(step, step_inputs, layout.step_specs(list(specs)), step_outputs,
                    keep=_invariant_names(layout))
    result = []
    for k, v in enumerate(sub.plan.fetch_values):
        spec = v.spec
        if k < layout.n_states:
            state = specs[layout.n_seqs + k]
            if tuple(state.shape[1:]) != tuple(spec.shape) or \
                    np.dtype(state.dtype) != np.dtype(spec.dtype):
                raise ShapeError(
                    f"Loop: step output '{step_outputs[k]}' ({tuple(spec.shape)}, {spec.dtype}) "
                    f"does not fit its state ({tuple(state.shape[1:])}, {state.dtype})")
        result.append(Spec((int(steps),) + tuple(spec.shape), spec.dtype))
    return result


@loop.grad
def _(g):
    layout = _Layout(g.num_inputs, g.args)
    backward, names, extra = _backward_graph(g.node, g.args, layout)
    dys = [g.dY(i) for i in range(len(g.node.outputs))]
    grads = g.op("LoopGradient", list(g.node.inputs) + list(g.node.outputs) + dys + extra,
                 backward=backward, backward_inputs=names["inputs"],
                 backward_outputs=names["outputs"], constants=len(extra),
                 **{k: g.args[k] for k in _ARGS})
    grads = grads if isinstance(grads, list) else [grads]
    return [d if g.needs(i) else None for i, d in enumerate(grads)]


def _backward_graph(node, args, layout):
    """The step's vector-Jacobian graph as text, its input/output names and constants.

    Inputs: the step's inputs, then one gradient per step output. Outputs: one
    gradient per step input ('' where the step does not depend on it). Constants
    the autodiff rules made become extra inputs of the LoopGradient node.
    """
    from dragon.core import autodiff
    from dragon.core import graph as core_graph
    from dragon.core.tensor import placeholder
    forward = parse_graph(args["step"])
    specs = layout.step_specs([Spec(tuple(t.shape), t.dtype) for t in node.inputs])
    env = {}
    step_inputs = []
    for name, spec in zip(args["step_inputs"], specs):
        ph = placeholder(spec.shape, spec.dtype, name=f"{node.name}/bw/{name}")
        env[name] = ph
        step_inputs.append(ph)
    step_outputs = import_ops(forward, env)
    outs = [step_outputs[name] for name in args["step_outputs"]]
    d_outs = [placeholder(o.shape, o.dtype, name=f"{node.name}/bw/d_{k}")
              for k, o in enumerate(outs)]
    float_inputs = [t for t in step_inputs if np.dtype(t.dtype).kind == "f"]
    seeded = [(o, d) for o, d in zip(outs, d_outs) if np.dtype(o.dtype).kind == "f"]
    grads = autodiff.gradients([o for o, _ in seeded], float_inputs,
                               grad_ys=[d for _, d in seeded]) if seeded else []
    by_input = dict(zip((id(t) for t in float_inputs), grads)) if seeded else {}
    d_inputs = [by_input.get(id(t)) for t in step_inputs]
    fetched = [d for d in d_inputs if d is not None]
    fetched = [apply_copy_if_leaf(d) if d.node is None else d for d in fetched]
    graph = core_graph.to_graph_def(fetched, name=f"{forward.name}_backward")
    nodes, _ = core_graph.collect_nodes(fetched)
    fed = {t.name for t in step_inputs + d_outs}
    extra = [t for t in core_graph.leaves(nodes) if t.name not in fed]
    it = iter(graph.output)
    out_names = [next(it) if d is not None else "" for d in d_inputs]
    names = {"inputs": [t.name for t in step_inputs + d_outs] + [t.name for t in extra],
             "outputs": out_names}
    return graph_text(graph), names, extra


def import_ops(graph_def, env):
    """Tensors for the ops of ``graph_def``, reading ``env`` (name -> Tensor) for its inputs.

    Returns the updated name -> Tensor map (the graph's outputs included).
    """
    from dragon.core.graph import decode_args
    from dragon.core.tensor import apply
    env = dict(env)
    for op_def in graph_def.op:
        try:
            ins = [env[name] for name in op_def.input]
        except KeyError as exc:
            raise ShapeError(f"step graph '{graph_def.name}': op '{op_def.name}' reads {exc}, "
                             f"which is neither a step input nor made by an earlier op") from None
        outs = apply(op_def.type, ins, num_outputs=len(op_def.output), **decode_args(op_def))
        outs = outs if isinstance(outs, list) else [outs]
        for name, t in zip(op_def.output, outs):
            env[name] = t
    return env


# -- LoopGradient --------------------------------------------------------------------------

_GRAD_ARGS = dict(_ARGS, backward=REQUIRED, backward_inputs=REQUIRED, backward_outputs=REQUIRED,
                  constants=0)


def _grad_split(n_values, args):
    """(forward input count, forward output count) of a LoopGradient's inputs."""
    n_out = len(args["step_outputs"])
    n_in = n_values - int(args["constants"]) - 2 * n_out
    return n_in, n_out


def _forward_input_count(args):
    n_seqs, counts = int(args["sequences"]), [int(c) for c in args["state_tap_counts"]]
    return n_seqs + len(counts) + (len(args["step_inputs"]) - n_seqs - sum(counts))


@register("LoopGradient", inputs=(0, _MANY), outputs=_forward_input_count, args=_GRAD_ARGS)
def loop_gradient(xp, *values, out, step, steps, sequences, state_taps, state_tap_counts,
                  step_inputs, step_outputs, truncate, backward, backward_inputs, backward_outputs,
                  constants):
    """dX for every Loop input: the backward step run from the last step to the first."""
    n_in, n_out = _grad_split(len(values), locals())
    fwd_values = values[:n_in]
    stacked = values[n_in:n_in + n_out]
    dys = values[n_in + n_out:n_in + 2 * n_out]
    extra = values[n_in + 2 * n_out:]
    layout = _Layout(n_in, locals())
    specs = layout.step_specs([Spec(tuple(v.shape), v.dtype) for v in fwd_values])
    d_specs = [Spec(tuple(s.shape[1:]), s.dtype) for s in stacked]
    extra_specs = [Spec(tuple(v.shape), v.dtype) for v in extra]
    fetches = [name for name in backward_outputs if name]
    n_step_inputs = len(step_inputs)
    invariant_names = backward_inputs[n_step_inputs - layout.n_invariants:n_step_inputs] \
        if layout.n_invariants else []
    keep = invariant_names + backward_inputs[n_step_inputs + n_out:]
    sub = _sub_plan(backward, backward_inputs, specs + d_specs + extra_specs, fetches, keep=keep)
    grads = _outs(out)
    for g in grads:
        g[...] = 0
    seqs = fwd_values[:layout.n_seqs]
    inits = fwd_values[layout.n_seqs:layout.n_seqs + layout.n_states]
    slots = sub.slots
    tap_at = layout.n_seqs
    inv_at = tap_at + sum(layout.counts)
    d_at = n_step_inputs
    for slot, value in zip(slots[inv_at:d_at], fwd_values[layout.n_seqs + layout.n_states:]):
        slot[...] = value
    for slot, value in zip(slots[d_at + n_out:], extra):
        slot[...] = value
    # d_hist[r][i]: the gradient reaching value i of state r's history (initial rows first).
    d_hist = [xp.zeros((layout.depths[r] + layout.n,) + tuple(stacked[r].shape[1:]),
                       dtype=stacked[r].dtype) for r in range(layout.n_states)]
    for r in range(layout.n_states):
        d_hist[r][layout.depths[r]:] += dys[r]
    result_of = {}
    it = iter(sub.results)
    for k, name in enumerate(backward_outputs):
        if name:
            result_of[k] = next(it)
    first = 0 if truncate is None or truncate < 0 else max(0, layout.n - int(truncate))
    for t in range(layout.n - 1, first - 1, -1):
        for slot, seq in zip(slots, seqs):
            slot[...] = seq[t]
        k = tap_at
        for r, taps in enumerate(layout.taps):
            for tap in taps:
                slots[k][...] = _history(layout, inits, stacked, r, t + layout.depths[r] + tap)
                k += 1
        for r in range(layout.n_states):
            slots[d_at + r][...] = d_hist[r][t + layout.depths[r]]
        for j in range(layout.n_states, n_out):
            slots[d_at + j][...] = dys[j][t]
        sub.run(f"step {t} of LoopGradient")
        for s in range(layout.n_seqs):
            if s in result_of:
                grads[s][t] = result_of[s]
        k = tap_at
        for r, taps in enumerate(layout.taps):
            for tap in taps:
                if k in result_of:
                    d_hist[r][t + layout.depths[r] + tap] += result_of[k]
                k += 1
        for j in range(layout.n_invariants):
            if inv_at + j in result_of:
                grads[layout.n_seqs + layout.n_states + j] += result_of[inv_at + j]
    for r in range(layout.n_states):
        target = grads[layout.n_seqs + r]
        target[:layout.depths[r]] = d_hist[r][:layout.depths[r]]


@loop_gradient.shape
def _(*specs, step, steps, sequences, state_taps, state_tap_counts, step_inputs, step_outputs,
      truncate, backward, backward_inputs, backward_outputs, constants):
    n_in, _ = _grad_split(len(specs), locals())
    return [Spec(tuple(s.shape), s.dtype) for s in specs[:n_in]]
