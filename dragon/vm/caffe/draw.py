"""pycaffe's ``caffe.draw``: a net's layers and blobs as a graphviz graph (pydot).

    from dragon.vm import caffe
    from dragon.vm.caffe import proto_io
    net = proto_io.read_net("lenet_train_test.prototxt")
    caffe.draw.draw_net_to_file(net, "lenet.dot", "TB", phase=caffe.TRAIN)  # no graphviz needed
    caffe.draw.draw_net_to_file(net, "lenet.png")                           # needs `dot`

Layers are boxes (coloured by type; in-place neuron layers green), blobs are
octagons, edges out of a layer carry its output size (num_output, batch size).
Formats ``dot``, ``gv`` and ``raw`` are written by pydot itself; image formats
are rendered by graphviz's ``dot`` program, which must be on the PATH.
"""
from __future__ import annotations

import os
import shutil

from dragon.vm.caffe.proto import caffe_pb2

__all__ = ["get_pydot_graph", "draw_net", "draw_net_to_file", "get_edge_label",
           "get_layer_label", "choose_color_by_layertype", "get_pooling_types_dict"]

LAYER_STYLE_DEFAULT = {"shape": "record", "fillcolor": "#6495ED", "style": "filled"}
NEURON_LAYER_STYLE = {"shape": "record", "fillcolor": "#90EE90", "style": "filled"}
BLOB_STYLE = {"shape": "octagon", "fillcolor": "#E0E0E0", "style": "filled"}

#: Formats written without graphviz: the graph's own dot text.
TEXT_FORMATS = ("dot", "gv", "raw")


def get_pooling_types_dict():
    """Pooling enum value -> name: ``{0: 'MAX', 1: 'AVE', 2: 'STOCHASTIC'}``."""
    enum = caffe_pb2.PoolingParameter.PoolMethod
    return {value: name for name, value in enum.items()}


def _first(values, default):
    return values[0] if len(values) else default


def get_edge_label(layer):
    """The label of edges out of ``layer``: its batch size or number of outputs."""
    if layer.type == "Data":
        return "Batch " + str(layer.data_param.batch_size)
    if layer.type in ("Convolution", "Deconvolution"):
        return str(layer.convolution_param.num_output)
    if layer.type == "InnerProduct":
        return str(layer.inner_product_param.num_output)
    return '""'


def get_layer_label(layer, rankdir):
    """A layer's node label: name, type and, for convolution/pooling, the window."""
    separator = " " if rankdir in ("TB", "BT") else "\\n"
    if layer.type in ("Convolution", "Deconvolution"):
        p = layer.convolution_param
        kernel = p.kernel_h or _first(p.kernel_size, 1)
        stride = p.stride_h or _first(p.stride, 1)
        pad = p.pad_h or _first(p.pad, 0)
        return ('"%s%s(%s)%skernel size: %d%sstride: %d%spad: %d"'
                % (layer.name, separator, layer.type, separator, kernel, separator, stride,
                   separator, pad))
    if layer.type == "Pooling":
        p = layer.pooling_param
        pool = get_pooling_types_dict()[p.pool]
        kernel = "global" if p.global_pooling else "%d" % (p.kernel_h or p.kernel_size)
        return ('"%s%s(%s %s)%skernel size: %s%sstride: %d%spad: %d"'
                % (layer.name, separator, pool, layer.type, separator, kernel, separator,
                   p.stride_h or p.stride, separator, p.pad_h or p.pad))
    return '"%s%s(%s)"' % (layer.name, separator, layer.type)


def choose_color_by_layertype(layertype):
    """Fill colour of a layer box by its type."""
    if layertype in ("Convolution", "Deconvolution"):
        return "#FF5050"
    if layertype == "Pooling":
        return "#FF9900"
    if layertype == "InnerProduct":
        return "#CC33FF"
    return "#6495ED"


def _included(layer, phase):
    if len(layer.include) and len(layer.exclude):
        raise ValueError(f"layer '{layer.name}' has both include and exclude rules")
    if not len(layer.include) and not len(layer.exclude):
        return True
    if len(layer.include):
        return any(rule.phase == phase for rule in layer.include)
    return not any(rule.phase == phase for rule in layer.exclude)


def _as_net_param(caffe_net):
    if isinstance(caffe_net, caffe_pb2.NetParameter):
        return caffe_net
    if isinstance(caffe_net, (str, os.PathLike)):
        from dragon.vm.caffe import proto_io
        return proto_io.read_net(caffe_net)
    raise TypeError(f"draw needs a caffe_pb2.NetParameter or a prototxt path, "
                    f"got {type(caffe_net).__name__}")


def get_pydot_graph(caffe_net, rankdir, label_edges=True, phase=None):
    """A ``pydot.Dot`` graph of ``caffe_net`` (a NetParameter or prototxt path).

    phase: ``caffe.TRAIN``/``caffe.TEST`` keeps only that phase's layers; None keeps all.

    >>> graph = get_pydot_graph(net_param, "LR", phase=caffe.TEST)
    >>> graph.to_string()[:7]
    'digraph'
    """
    import pydot
    net = _as_net_param(caffe_net)
    graph = pydot.Dot(_quote(net.name or "Net"), graph_type="digraph", rankdir=rankdir)
    nodes = {}
    edges = []
    for layer in net.layer:
        if phase is not None and not _included(layer, phase):
            continue
        node_name = "%s_%s" % (layer.name, layer.type)
        label = get_layer_label(layer, rankdir)
        in_place = list(layer.bottom) == list(layer.top) and len(layer.top) == 1
        if in_place:
            style = NEURON_LAYER_STYLE
        else:
            style = dict(LAYER_STYLE_DEFAULT, fillcolor=choose_color_by_layertype(layer.type))
        nodes[node_name] = pydot.Node(_quote(node_name), label=label, **style)
        for bottom in layer.bottom:
            nodes[bottom + "_blob"] = pydot.Node(_quote(bottom + "_blob"), label=_quote(bottom),
                                                 **BLOB_STYLE)
            edges.append((bottom + "_blob", node_name, '""'))
        edge_label = get_edge_label(layer) if label_edges else '""'
        for top in layer.top:
            nodes[top + "_blob"] = pydot.Node(_quote(top + "_blob"), label=_quote(top),
                                              **BLOB_STYLE)
            edges.append((node_name, top + "_blob", _quote(edge_label)))
    for node in nodes.values():
        graph.add_node(node)
    for src, dst, label in edges:
        graph.add_edge(pydot.Edge(nodes[src], nodes[dst], label=label))
    return graph


def _quote(text):
    text = str(text)
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text
    return '"%s"' % text.replace('"', '\\"')


def draw_net(caffe_net, rankdir, ext="png", phase=None):
    """The drawing of ``caffe_net`` as bytes in format ``ext``.

    ``dot``/``gv``/``raw`` give the graph's dot text without graphviz; other
    formats (png, svg, pdf, ...) need graphviz's ``dot`` program.

    >>> draw_net(net_param, "LR", ext="dot")[:7]
    b'digraph'
    """
    graph = get_pydot_graph(caffe_net, rankdir, phase=phase)
    if ext in TEXT_FORMATS:
        return graph.to_string().encode("utf-8")
    if shutil.which("dot") is None:
        raise RuntimeError(f"drawing to '{ext}' needs graphviz's 'dot' program, which is not "
                           f"on the PATH; install graphviz or write a .dot file")
    return graph.create(format=ext)


def draw_net_to_file(caffe_net, filename, rankdir="LR", phase=None):
    """Draw ``caffe_net`` into ``filename``; the format is the file's extension.

    >>> draw_net_to_file(net_param, "net.dot", "TB")
    """
    filename = os.fspath(filename)
    ext = filename[filename.rfind(".") + 1:] if "." in os.path.basename(filename) else "png"
    data = draw_net(caffe_net, rankdir, ext, phase)
    with open(filename, "wb") as f:
        f.write(data)
