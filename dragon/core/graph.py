"""From tensors to a GraphDef: collect the nodes outputs need, order them, serialize.

    graph_def = dragon.core.graph.to_graph_def([loss], updates=[...])
    print(graph_def)      # a plain protobuf: print, save, diff
"""
from __future__ import annotations

import numpy as np

from dragon.core.tensor import Node, Tensor
from dragon.proto import dragon_pb2


# -- arguments ----------------------------------------------------------------------

def encode_arg(name: str, value) -> dragon_pb2.Argument:
    """A Python value as an Argument (bool/int -> i, float -> d, str -> s, lists)."""
    arg = dragon_pb2.Argument(name=name)
    if isinstance(value, (bool, np.bool_)):
        arg.i = int(value)
    elif isinstance(value, (int, np.integer)):
        arg.i = int(value)
    elif isinstance(value, (float, np.floating)):
        arg.d = float(value)
    elif isinstance(value, str):
        arg.s = value.encode()
    elif isinstance(value, bytes):
        arg.s = value
    elif isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        # Whole arrays (GivenTensorFill's values) go in one C-level call, not per item.
        flat = value.ravel().tolist()
        (arg.doubles if value.dtype.kind == "f" else arg.ints).extend(flat)
    elif isinstance(value, (list, tuple, np.ndarray)):
        items = list(np.asarray(value).ravel()) if isinstance(value, np.ndarray) else list(value)
        if len(items) > 64:
            kind = np.asarray(items).dtype.kind
            if kind in "biuf":
                return encode_arg(name, np.asarray(items))
        if all(isinstance(v, (bool, int, np.integer, np.bool_)) for v in items):
            arg.ints.extend(int(v) for v in items)
        elif all(isinstance(v, (int, float, np.number)) for v in items):
            arg.doubles.extend(float(v) for v in items)
        elif all(isinstance(v, (str, bytes)) for v in items):
            arg.strings.extend(v.encode() if isinstance(v, str) else v for v in items)
        else:
            raise TypeError(f"argument '{name}': cannot encode list {value!r}")
    elif value is None:
        raise ValueError(f"argument '{name}' is None")
    else:
        raise TypeError(f"argument '{name}': cannot encode {type(value).__name__} {value!r}")
    return arg


def decode_arg(arg):
    """The Python value of an Argument (Dragon's or Caffe2's message)."""
    for field in ("d", "f", "i"):
        if arg.HasField(field):
            return getattr(arg, field)
    if arg.HasField("s"):
        return arg.s.decode()
    if len(getattr(arg, "doubles", ())):
        return list(arg.doubles)
    if len(arg.floats):
        return list(arg.floats)
    if len(arg.ints):
        return list(arg.ints)
    if len(arg.strings):
        return [s.decode() for s in arg.strings]
    return []


def decode_args(op_def) -> dict:
    return {a.name: decode_arg(a) for a in op_def.arg}


# -- collecting and ordering ----------------------------------------------------------

def collect_nodes(outputs, extra_nodes=(), givens=None):
    """Nodes needed to compute ``outputs`` plus ``extra_nodes``, in a valid run order.

    Nodes that assign variables (updates) run after every other node, in the order
    given, so every read sees the old value. ``givens`` maps tensors to the tensors
    that replace them; returns ``(nodes, rename)`` where ``rename`` maps a replaced
    tensor's name to its replacement's name.
    """
    givens = dict(givens or {})
    rename = {}
    order: list[Node] = []
    seen: set[int] = set()

    def resolve(t: Tensor) -> Tensor:
        hops = 0
        while t in givens:
            replacement = givens[t]
            rename[t.name] = replacement.name
            t = replacement
            hops += 1
            if hops > len(givens):
                raise ValueError("givens form a cycle")
        return t

    def visit(root: Tensor):
        # Iterative post-order DFS: deep nets must not hit Python's recursion limit.
        stack = [(resolve(root), False)]
        while stack:
            t, expanded = stack.pop()
            node = t.node
            if node is None or id(node) in seen:
                continue
            if expanded:
                seen.add(id(node))
                order.append(node)
                continue
            stack.append((t, True))
            for inp in reversed(node.inputs):
                inp = resolve(inp)
                if inp.node is not None and id(inp.node) not in seen:
                    stack.append((inp, False))

    for t in outputs:
        visit(t)
    assigning = []
    for node in extra_nodes:
        for inp in node.inputs:
            visit(inp)
        assigning.append(node)
    body = [n for n in order if not n.assigns]
    late = [n for n in order if n.assigns] + [n for n in assigning if id(n) not in seen]
    for n in late:
        seen.add(id(n))
    return body + late, rename


def leaves(nodes, rename=None):
    """Leaf tensors (no producing node) read by ``nodes``, in first-use order."""
    rename = rename or {}
    found, seen = [], set()
    for node in nodes:
        for t in node.inputs:
            if t.node is None and t.name not in seen and t.name not in rename:
                seen.add(t.name)
                found.append(t)
    return found


def node_to_op_def(node: Node, rename=None) -> dragon_pb2.OperatorDef:
    rename = rename or {}
    op = dragon_pb2.OperatorDef(
        type=node.type, name=node.name,
        input=[rename.get(t.name, t.name) for t in node.inputs],
        output=[t.name for t in node.outputs],
        is_gradient_op=node.is_gradient)
    if node.debug_info:
        op.debug_info = node.debug_info
    if node.device is not None:
        kind, index = node.device
        op.device_option.device_type = dragon_pb2.CUDA if kind in ("cuda", "gpu") else dragon_pb2.CPU
        op.device_option.device_id = index
    op.arg.extend(encode_arg(k, v) for k, v in sorted(node.args.items()))
    return op


def to_graph_def(outputs, extra_nodes=(), givens=None, name="graph"):
    """A GraphDef computing ``outputs`` (and running ``extra_nodes``)."""
    nodes, rename = collect_nodes(outputs, extra_nodes, givens)
    graph = dragon_pb2.GraphDef(name=name)
    graph.op.extend(node_to_op_def(n, rename) for n in nodes)
    graph.output.extend(rename.get(t.name, t.name) for t in outputs)
    return graph
