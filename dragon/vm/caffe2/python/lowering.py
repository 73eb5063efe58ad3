"""Lowering Caffe2 nets onto the engine: OperatorDefs in, a core GraphDef out.

``Lowering`` walks a Caffe2 net op by op with the shapes of the blobs it reads
from the workspace, calls each operator's entry of the table
(``operators.py``) with an ``OpContext``, and keeps the latest core Tensor of
every blob name; the core GraphDef it yields keeps the Caffe2 blob names, so
``Relu(fc3) -> fc3`` is an ordinary in-place op::

    lowering = Lowering(spec_of=lambda name: workspace_specs.get(name))
    for op in net_def.op:
        lowering.lower(op)
    graph_def = lowering.graph_def("net")

A ``<Type>Gradient`` operator is lowered by replaying its forward operator's
lowering on stand-in inputs (with the same auxiliary tensor names), running the
core's autodiff over that one operator and emitting the gradient ops under the
Caffe2 gradient blob names.
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from dragon.core import autodiff
from dragon.core.errors import DragonError
from dragon.core.graph import collect_nodes, node_to_op_def
from dragon.core.tensor import Tensor, apply
from dragon.ops import registry
from dragon.ops.registry import Spec
from dragon.proto import dragon_pb2
from dragon.vm.caffe2.proto import caffe2_pb2
from dragon.vm.caffe2.python.operators import (GRADIENT_SUFFIX, decode_args, describe, get,
                                               is_gradient_op)


def _leaf(name, spec):
    """A Tensor standing for a blob that exists before the graph runs (no producer)."""
    t = Tensor.__new__(Tensor)
    t.name, t.shape, t.dtype = name, tuple(spec.shape), np.dtype(spec.dtype)
    t.node, t.index, t.kind, t._value = None, 0, "variable", None
    return t


def _spec(t):
    return Spec(tuple(t.shape), t.dtype)


@dataclasses.dataclass
class _Record:
    """A lowered forward op, kept so that its gradient op can replay its lowering."""

    op_def: object
    args: dict
    specs: dict      # input name -> Spec the lowering saw
    aux: list        # auxiliary tensor names it made, in order
    taken: bool = False

    def matches(self, op_type, inputs, outputs):
        return (not self.taken and self.op_def.type == op_type
                and list(self.op_def.input) == inputs and list(self.op_def.output) == outputs)


class OpContext:
    """What a lowering function sees of one Caffe2 operator."""

    def __init__(self, lowering, op_def, args, aux=None):
        self.lowering = lowering
        self.op = op_def
        self.args = args
        self.touched: dict[str, Tensor] = {}
        self.aux_names: list[str] = []
        self._replay = iter(aux) if aux is not None else None

    def arg(self, name, default=None):
        return self.args.get(name, default)

    @property
    def num_inputs(self):
        return len(self.op.input)

    @property
    def num_outputs(self):
        return len(self.op.output)

    def input(self, i) -> Tensor:
        name = self.op.input[i]
        t = self.lowering.blob(name, self.op)
        self.touched.setdefault(name, t)
        return t

    def inputs(self):
        return [self.input(i) for i in range(self.num_inputs)]

    def value(self, i):
        """The workspace value of input ``i`` (for shape-giving inputs)."""
        value = self.lowering.value_of(self.op.input[i])
        if value is None:
            raise RuntimeError(f"{describe(self.op)}: input '{self.op.input[i]}' must be a blob "
                               f"in the workspace before the net runs (its value sets a shape)")
        return value

    def aux(self, tag="aux"):
        """A fresh name for a tensor that is no Caffe2 output."""
        if self._replay is not None:
            name = next(self._replay, None)
            if name is None:
                raise RuntimeError(f"{describe(self.op)}: its lowering made other tensors "
                                   f"when replayed for its gradient")
            return name
        base = self.op.output[0] if self.op.output else self.op.type
        name = self.lowering.new_aux(base, tag)
        self.aux_names.append(name)
        return name

    def out(self, k, tag=None):
        """The name of Caffe2 output ``k``, or an auxiliary name when the op has fewer."""
        return self.op.output[k] if k < self.num_outputs else self.aux(tag or f"out{k}")

    def emit(self, core_type, inputs, outputs, **args) -> list:
        """Apply core op ``core_type``; ``outputs`` names its outputs. Returns the Tensors."""
        name = self.op.name or f"{self.op.type}({outputs[0] if outputs else ''})"
        result = apply(core_type, list(inputs), out_names=list(outputs), name=name,
                       num_outputs=len(outputs), **args)
        result = result if isinstance(result, list) else [result]
        self.lowering.add_node(result[0].node)
        return result


class Lowering:
    """Lowers Caffe2 operators to core nodes, tracking the latest Tensor of each blob.

    spec_of(name) -> Spec or None: blobs that exist before the net runs.
    value_of(name) -> array or None: their values, for inputs that give shapes.
    """

    def __init__(self, spec_of, value_of=None):
        self.spec_of = spec_of
        self.value_of = value_of or (lambda name: None)
        self.tensors: dict[str, Tensor] = {}
        self.read_first: list[str] = []
        self.produced: dict[str, None] = {}
        self.nodes: list = []
        self.records: list[_Record] = []
        self._aux = itertools.count()
        self._defined_constants: set[str] = set()

    # -- blobs --------------------------------------------------------------------------------
    def blob(self, name, op_def=None) -> Tensor:
        t = self.tensors.get(name)
        if t is None:
            spec = self.spec_of(name)
            if spec is None:
                where = describe(op_def) if op_def is not None else "the net"
                raise RuntimeError(f"{where}: input blob '{name}' does not exist; feed it or run "
                                   f"the net that makes it first")
            t = _leaf(name, spec)
            self.tensors[name] = t
            self.read_first.append(name)
        return t

    def new_aux(self, base, tag):
        return f"_{base}/{tag}_{next(self._aux)}"

    def add_node(self, node):
        for t in node.inputs:
            if t.kind == "constant" and t.name not in self._defined_constants:
                self._define_constant(t)
        self.nodes.append(node)

    def _define_constant(self, t):
        value = np.asarray(t._value)
        fill = apply("GivenTensorFill", [], out_names=[t.name], name=t.name,
                     values=value.ravel().tolist(), shape=list(value.shape),
                     dtype=value.dtype.name)
        self._defined_constants.add(t.name)
        self.nodes.append(fill.node)

    # -- operators ------------------------------------------------------------------------------
    def lower(self, op_def):
        """Emit the core ops of one Caffe2 OperatorDef."""
        if is_gradient_op(op_def):
            return self._lower_gradient(op_def)
        entry = get(op_def.type)
        if entry.lower is None:
            raise RuntimeError(f"{describe(op_def)} runs on the host and cannot be part of a "
                               f"compiled graph")
        args = decode_args(op_def)
        ctx = OpContext(self, op_def, args)
        outs = self._call(entry, ctx)
        self._bind(op_def, outs)
        self.records.append(_Record(op_def, args, {n: _spec(t) for n, t in ctx.touched.items()},
                                    ctx.aux_names))

    def _call(self, entry, ctx):
        try:
            outs = entry.lower(ctx)
        except RuntimeError:
            raise
        except (DragonError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise RuntimeError(f"{describe(ctx.op)}: {exc}") from None
        return list(outs or [])

    def _bind(self, op_def, outs):
        for k, name in enumerate(op_def.output):
            t = outs[k] if k < len(outs) else None
            if t is None:
                continue
            if t.name != name:
                t = apply("Copy", [t], out_names=[name], name=f"Copy({name})")
                self.add_node(t.node)
            self.tensors[name] = t
            self.produced[name] = None

    def _take_record(self, op_type, inputs, outputs):
        for record in reversed(self.records):
            if record.matches(op_type, inputs, outputs):
                record.taken = True
                return record
        return None

    def _lower_gradient(self, op_def):
        args = decode_args(op_def)
        in_flags = [int(f) for f in args.pop("input_grads")]
        out_flags = [int(f) for f in args.pop("output_grads", [])]
        n_in, n_out = len(in_flags), len(out_flags)
        fwd_type = op_def.type[:-len(GRADIENT_SUFFIX)]
        fwd_in = list(op_def.input[:n_in])
        fwd_out = list(op_def.input[n_in:n_in + n_out])
        dy_names = iter(op_def.input[n_in + n_out:])
        dx_names = iter(op_def.output)
        record = self._take_record(fwd_type, fwd_in, fwd_out)
        recompute = record is None
        if recompute:  # lowered elsewhere (another graph step or net): redo what it needs
            record = self._record_from(op_def, fwd_type, fwd_in, fwd_out, args)
        replay = _Replay(self, record)
        outs = self._call(get(fwd_type), OpContext(replay, record.op_def, record.args,
                                                   aux=None if recompute else record.aux))
        outs += [None] * (n_out - len(outs))
        ys, seeds = [], []
        for k, flag in enumerate(out_flags):
            if flag:
                dy = self.blob(next(dy_names), op_def)
                if outs[k] is not None:
                    ys.append(outs[k])
                    seeds.append(_leaf(dy.name, _spec(dy)))
        wanted = []
        for i, flag in enumerate(in_flags):
            if flag:
                wanted.append((next(dx_names), replay.tensors.get(fwd_in[i])))
        xs = list({id(x): x for _, x in wanted if x is not None}.values())
        try:
            grads = autodiff.gradients(ys, xs, seeds) if ys else [None] * len(xs)
        except DragonError as exc:
            raise RuntimeError(f"{describe(op_def)}: {exc}") from None
        self._emit_gradients(replay, dict(zip(map(id, xs), grads)), wanted,
                             set(fwd_in) | set(fwd_out) if recompute else None, op_def)

    def _record_from(self, op_def, fwd_type, fwd_in, fwd_out, args):
        """A record for a forward op this lowering has not seen, from its gradient op."""
        forward = caffe2_pb2.OperatorDef(type=fwd_type, input=fwd_in, output=fwd_out)
        forward.arg.extend(a for a in op_def.arg if a.name not in ("input_grads", "output_grads"))
        specs = {}
        for name in fwd_in:
            if name in self.tensors or self.spec_of(name) is not None:
                specs[name] = _spec(self.blob(name, op_def))
        return _Record(forward, args, specs, [])

    def _emit_gradients(self, replay, grad_of, wanted, recompute=None, op_def=None):
        forward = {id(n) for n in replay.nodes}
        found = [g for g in grad_of.values() if g is not None]
        nodes = [n for n in collect_nodes(found)[0] if id(n) not in forward] if found else []
        if recompute is not None:
            nodes = self._recomputed(replay, nodes, recompute, op_def) + nodes
        read = {t.name for n in nodes for t in n.inputs}
        named, tail = set(), []
        for dx_name, x in wanted:
            g = grad_of.get(id(x)) if x is not None else None
            if g is None:
                tail.append((dx_name, x, None))
            elif g.node is None or id(g.node) in forward or id(g) in named or dx_name in read:
                tail.append((dx_name, x, g))
            else:
                g.name = dx_name
                named.add(id(g))
                self.tensors[dx_name] = g
                self.produced[dx_name] = None
        for n in nodes:
            self.add_node(n)
        for dx_name, x, g in tail:
            if g is None:  # no path from the outputs: the gradient is zero
                if x is None:
                    raise RuntimeError(f"the gradient '{dx_name}' has no forward input to shape it")
                t = apply("Fill", [], out_names=[dx_name], name=f"Fill({dx_name})",
                          shape=list(x.shape), value=0.0, dtype=x.dtype.name)
            else:
                t = apply("Copy", [g], out_names=[dx_name], name=f"Copy({dx_name})")
            self.add_node(t.node)
            self.tensors[dx_name] = t
            self.produced[dx_name] = None

    @staticmethod
    def _recomputed(replay, gradient_nodes, caffe2_names, op_def):
        """Forward nodes making the auxiliary tensors the gradient nodes read, in order."""
        producer = {id(t): n for n in replay.nodes for t in n.outputs}
        wanted, stack = {}, [t for n in gradient_nodes for t in n.inputs]
        while stack:
            t = stack.pop()
            node = producer.get(id(t))
            if node is None or t.name in caffe2_names or id(node) in wanted:
                continue
            if registry.get(node.type).stateful:
                raise RuntimeError(f"{describe(op_def)}: its forward operator is not earlier in "
                                   f"this graph and its {node.type} cannot be run again")
            wanted[id(node)] = node
            stack.extend(node.inputs)
        return [n for n in replay.nodes if id(n) in wanted]

    # -- results --------------------------------------------------------------------------------
    def graph_def(self, name) -> dragon_pb2.GraphDef:
        graph = dragon_pb2.GraphDef(name=name)
        graph.op.extend(node_to_op_def(n) for n in self.nodes)
        return graph

    def written(self) -> list[str]:
        """Every name the core graph writes, in order."""
        return list(dict.fromkeys(t.name for n in self.nodes for t in n.outputs))


class _Replay:
    """A forward op's lowering redone on stand-in inputs, for autodiff over that op alone."""

    def __init__(self, lowering, record):
        self.value_of = lowering.value_of
        self.new_aux = lowering.new_aux
        self.tensors = {name: _leaf(name, spec) for name, spec in record.specs.items()}
        self.nodes = []

    def blob(self, name, op_def=None):
        return self.tensors[name]

    def add_node(self, node):
        self.nodes.append(node)
