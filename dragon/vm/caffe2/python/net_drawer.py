"""Caffe2's ``net_drawer``: pydot graphs of nets (pydot is optional: ``pip install pydot``).

    graph = net_drawer.GetPydotGraph(train_model.net, rankdir="TB")
    graph.write_png("mnist.png")                 # needs Graphviz's dot
    print(graph.to_string())                     # the DOT source needs nothing more

Operators are green boxes; blobs are octagons, one per version of a name, so an
in-place operator such as ``Relu(fc3) -> fc3`` draws as a chain.
"""
from __future__ import annotations

import json

from dragon.vm.caffe2.proto import caffe2_pb2

OP_STYLE = {"shape": "box", "color": "#0F9D58", "style": "filled", "fontcolor": "#FFFFFF"}
BLOB_STYLE = {"shape": "octagon"}


def _pydot():
    try:
        import pydot
    except ImportError:
        raise ImportError("net_drawer needs pydot: pip install pydot (and Graphviz to render)") \
            from None
    return pydot


def _rectify_operator_and_name(operators_or_net, name):
    """(list of OperatorDefs, graph name) from a core.Net, NetDef or operator list."""
    if hasattr(operators_or_net, "Proto"):
        operators_or_net = operators_or_net.Proto()
    if isinstance(operators_or_net, caffe2_pb2.NetDef):
        return list(operators_or_net.op), name or operators_or_net.name
    return list(operators_or_net), name or "unnamed"


def _escape(label):
    return json.dumps(str(label))


def op_node_producer(op, op_id):
    label = f"{op.name}\n{op.type}" if op.name else op.type
    return _pydot().Node(f"op{op_id}", label=_escape(label), **OP_STYLE)


def blob_node_producer(name, node_id):
    return _pydot().Node(f"blob{node_id}", label=_escape(name), **BLOB_STYLE)


def GetPydotGraph(operators_or_net, name=None, rankdir="LR", op_node_producer=op_node_producer,  # noqa: N802
                  blob_node_producer=blob_node_producer):
    """A pydot.Dot with a node per operator and per blob version, edges along the data flow."""
    pydot = _pydot()
    ops, name = _rectify_operator_and_name(operators_or_net, name)
    graph = pydot.Dot(name, rankdir=rankdir)
    current: dict[str, object] = {}
    count = 0

    def blob_node(blob, fresh):
        nonlocal count
        if fresh or blob not in current:
            node = blob_node_producer(blob, count)
            count += 1
            graph.add_node(node)
            current[blob] = node
        return current[blob]

    for op_id, op in enumerate(ops):
        op_node = op_node_producer(op, op_id)
        graph.add_node(op_node)
        for blob in op.input:
            graph.add_edge(pydot.Edge(blob_node(blob, False), op_node))
        for blob in op.output:
            graph.add_edge(pydot.Edge(op_node, blob_node(blob, True)))
    return graph


def GetPydotGraphMinimal(operators_or_net, name=None, rankdir="LR",  # noqa: N802
                         minimal_dependency=False, op_node_producer=op_node_producer):
    """A pydot.Dot of operators only, an edge where one operator's output feeds another."""
    pydot = _pydot()
    ops, name = _rectify_operator_and_name(operators_or_net, name)
    graph = pydot.Dot(name, rankdir=rankdir)
    producer: dict[str, object] = {}
    for op_id, op in enumerate(ops):
        node = op_node_producer(op, op_id)
        graph.add_node(node)
        sources = {id(producer[b]): producer[b] for b in op.input if b in producer}
        for source in sources.values():
            graph.add_edge(pydot.Edge(source, node))
        for blob in op.output:
            producer[blob] = node
    return graph
