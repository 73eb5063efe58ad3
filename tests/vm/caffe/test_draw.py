"""caffe.draw: pydot graphs of real prototxts; dot text without graphviz, images with it."""
import shutil
from pathlib import Path

import pytest

import dragon.vm.caffe as caffe
from dragon.vm.caffe import draw, proto_io
from dragon.vm.caffe.proto import caffe_pb2

pydot = pytest.importorskip("pydot", reason="caffe.draw needs pydot")

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
LENET = DATA / "caffe" / "examples" / "mnist" / "lenet_train_test.prototxt"
GOOGLENET = DATA / "caffe" / "models" / "bvlc_googlenet" / "train_val.prototxt"


def _net(path):
    if not path.is_file():
        pytest.skip(f"the Caffe example {path} is absent")
    return proto_io.read_net(str(path))


def _parse(dot_bytes):
    graphs = pydot.graph_from_dot_data(dot_bytes.decode("utf-8"))
    assert graphs and len(graphs) == 1
    return graphs[0]


def _node_names(graph):
    return {n.get_name().strip('"') for n in graph.get_nodes()} - {"node", "edge", "graph"}


def test_caffe_draw_is_this_module():
    assert caffe.draw is draw


def test_lenet_graph_nodes_edges_and_labels():
    net = _net(LENET)
    graph = _parse(draw.draw_net(net, "LR", ext="dot"))
    names = _node_names(graph)
    assert {"conv1_Convolution", "pool1_Pooling", "relu1_ReLU", "loss_SoftmaxWithLoss",
            "data_blob", "label_blob", "ip2_blob"} <= names
    labels = {n.get_name().strip('"'): n.get("label") for n in graph.get_nodes()}
    assert "kernel size: 5" in labels["conv1_Convolution"]
    assert "MAX Pooling" in labels["pool1_Pooling"]
    conv = graph.get_node('"conv1_Convolution"')[0]
    assert conv.get("fillcolor").strip('"') == "#FF5050"
    relu = graph.get_node('"relu1_ReLU"')[0]       # in place: the neuron style
    assert relu.get("fillcolor").strip('"') == "#90EE90"
    edge_labels = {(e.get_source().strip('"'), e.get_destination().strip('"')): e.get("label")
                   for e in graph.get_edges()}
    assert edge_labels[("conv1_Convolution", "conv1_blob")].strip('"') == "20"
    assert edge_labels[("ip1_InnerProduct", "ip1_blob")].strip('"') == "500"
    assert edge_labels[("mnist_Data", "data_blob")].strip('"') in ("Batch 64", "Batch 100")


def test_phase_filter():
    net = _net(LENET)
    train = _node_names(_parse(draw.draw_net(net, "TB", ext="dot", phase=caffe_pb2.TRAIN)))
    test = _node_names(_parse(draw.draw_net(net, "TB", ext="dot", phase=caffe_pb2.TEST)))
    both = _node_names(_parse(draw.draw_net(net, "TB", ext="dot")))
    assert "accuracy_Accuracy" in test and "accuracy_Accuracy" not in train
    assert "accuracy_Accuracy" in both


def test_rankdir_changes_the_label_separator():
    net = _net(LENET)
    lr = draw.get_pydot_graph(net, "LR")
    tb = draw.get_pydot_graph(net, "TB")
    assert "\\n(Convolution)" in lr.get_node('"conv1_Convolution"')[0].get("label")
    assert " (Convolution)" in tb.get_node('"conv1_Convolution"')[0].get("label")
    assert lr.get("rankdir") == "LR"


def test_draw_to_dot_file_without_graphviz(tmp_path):
    net = _net(GOOGLENET)
    out = tmp_path / "googlenet.dot"
    draw.draw_net_to_file(net, str(out), "TB", phase=caffe_pb2.TEST)
    text = out.read_text()      # (pydot's parser takes seconds on GoogLeNet: check the text)
    assert text.startswith('digraph "GoogleNet"') and text.rstrip().endswith("}")
    assert '"inception_3a/output_Concat" [label="inception_3a/output (Concat)"' in text
    assert '"loss1/loss_SoftmaxWithLoss" -> "loss1/loss1_blob"' in text
    assert text.count("->") == sum(len(l.bottom) + len(l.top) for l in net.layer
                                   if not any(r.phase == caffe_pb2.TRAIN for r in l.include))
    # a prototxt path works as well as a NetParameter
    draw.draw_net_to_file(str(LENET), str(tmp_path / "lenet.gv"))
    assert (tmp_path / "lenet.gv").read_bytes().startswith(b"digraph")


def test_image_formats_need_graphviz(tmp_path):
    net = _net(LENET)
    if shutil.which("dot") is None:
        with pytest.raises(RuntimeError, match="graphviz's 'dot' program"):
            draw.draw_net_to_file(net, str(tmp_path / "lenet.png"))
        pytest.skip("graphviz's dot program is not installed: image rendering not checked")
    draw.draw_net_to_file(net, str(tmp_path / "lenet.png"))
    assert (tmp_path / "lenet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = draw.draw_net(net, "LR", ext="svg")
    assert b"<svg" in svg


def test_include_and_exclude_together_is_an_error():
    net = caffe_pb2.NetParameter()
    layer = net.layer.add(name="bad", type="ReLU", bottom=["x"], top=["x"])
    layer.include.add(phase=caffe_pb2.TRAIN)
    layer.exclude.add(phase=caffe_pb2.TEST)
    with pytest.raises(ValueError, match="layer 'bad' has both include and exclude"):
        draw.get_pydot_graph(net, "LR", phase=caffe_pb2.TRAIN)
