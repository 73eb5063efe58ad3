"""Bad input to caffe.Net: every error names the file, line, layer, blob and shapes at fault."""
import os

import numpy as np
import pytest

import dragon.vm.caffe as caffe
from dragon.vm.caffe import proto_io
from dragon.vm.caffe.model_io import WeightsError
from dragon.vm.caffe.proto import caffe_pb2

GOOD = """name: "good"
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc"
        inner_product_param { num_output: 4 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def write(tmp_path, text, name="net.prototxt"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_malformed_prototxt_names_file_line_and_column(tmp_path):
    path = write(tmp_path, GOOD.replace("num_output: 4", "num_output: 4 }}"))
    with pytest.raises(proto_io.PrototxtError) as info:
        caffe.Net(path, caffe.TEST)
    assert info.value.path == path and info.value.line == 4
    assert str(info.value).startswith(f"{path}:4:")
    path = write(tmp_path, GOOD.replace("num_output", "num_outputs"), "typo.prototxt")
    with pytest.raises(proto_io.PrototxtError, match=r"typo.prototxt:4:\d+: .*num_outputs"):
        caffe.Net(path, caffe.TEST)


def test_unknown_layer_type_names_the_layer_and_close_types(tmp_path):
    path = write(tmp_path, GOOD.replace('type: "InnerProduct"', 'type: "InnerProdcut"'))
    with pytest.raises(ValueError) as info:
        caffe.Net(path, caffe.TEST)
    text = str(info.value)
    assert text.startswith(f"{path}:3:") and "layer 'fc'" in text
    assert "unknown type 'InnerProdcut'" in text and "'InnerProduct'" in text


def test_bottom_nobody_produces_names_layer_and_blob(tmp_path):
    path = write(tmp_path, GOOD.replace('bottom: "fc"', 'bottom: "fc7"'))
    with pytest.raises(ValueError) as info:
        caffe.Net(path, caffe.TEST)
    text = str(info.value)
    assert text.startswith(f"{path}:5:")
    assert "layer 'prob'" in text and "bottom blob 'fc7'" in text and "'fc'" in text


def test_top_written_by_two_layers_is_refused(tmp_path):
    path = write(tmp_path, GOOD + 'layer { name: "again" type: "Softmax" bottom: "data" '
                                  'top: "fc" }\n')
    with pytest.raises(ValueError, match=r"net.prototxt:6: top blob 'fc' of layer 'again' is "
                                         r"produced by an earlier layer"):
        caffe.Net(path, caffe.TEST)


def test_layer_shape_errors_name_file_and_layer(tmp_path):
    text = GOOD + ('layer { name: "sum" type: "Eltwise" bottom: "prob" bottom: "data" top: "s" }\n')
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as info:
        caffe.Net(path, caffe.TEST)
    assert str(info.value).startswith(f"{path}:6:") and "'sum'" in str(info.value)


def test_loss_weight_count_must_fit_the_tops(tmp_path):
    path = write(tmp_path, GOOD.replace('top: "prob" }', 'top: "prob" loss_weight: 1 '
                                                         'loss_weight: 2 }'))
    with pytest.raises(ValueError, match="2 loss_weight values for 1 tops"):
        caffe.Net(path, caffe.TEST)


def _saved(tmp_path, text, name):
    net = caffe.Net(write(tmp_path, text, name + ".prototxt"), caffe.TEST)
    path = str(tmp_path / (name + ".caffemodel"))
    net.save(path)
    return path


def test_caffemodel_blob_shape_mismatch_names_layer_and_both_shapes(tmp_path):
    weights = _saved(tmp_path, GOOD.replace("num_output: 4", "num_output: 6"), "wide")
    net = caffe.Net(write(tmp_path, GOOD), caffe.TEST)
    with pytest.raises(WeightsError) as info:
        net.copy_from(weights)
    text = str(info.value)
    assert text.startswith(weights) and "layer 'fc'" in text
    assert "(6, 3)" in text and "(4, 3)" in text
    with pytest.raises(WeightsError):
        caffe.Net(write(tmp_path, GOOD, "again.prototxt"), caffe.TEST, weights=weights)


def test_caffemodel_blob_count_mismatch_names_the_layer(tmp_path):
    weights = _saved(tmp_path, GOOD.replace("num_output: 4", "num_output: 4 bias_term: false"),
                     "nobias")
    net = caffe.Net(write(tmp_path, GOOD), caffe.TEST)
    with pytest.raises(WeightsError, match="layer 'fc' holds 1 blobs, the net's layer 'fc' has 2"):
        net.copy_from(weights)
    with pytest.raises(FileNotFoundError, match="no such weights file"):
        net.copy_from(str(tmp_path / "missing.caffemodel"))


def test_failed_save_leaves_the_earlier_file_intact(tmp_path, monkeypatch):
    net = caffe.Net(write(tmp_path, GOOD), caffe.TEST)
    path = str(tmp_path / "model.caffemodel")
    net.save(path)
    before = open(path, "rb").read()
    net.params["fc"][0].data[...] = 42.0

    def disk_full(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        net.save(path)
    monkeypatch.undo()
    assert open(path, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["model.caffemodel", "net.prototxt"]   # no temp left
    saved = caffe_pb2.NetParameter()
    saved.ParseFromString(before)
    assert not np.any(np.asarray(saved.layer[1].blobs[0].data) == 42.0)


def test_failed_hdf5_save_leaves_the_earlier_file_intact(tmp_path, monkeypatch):
    pytest.importorskip("h5py", reason="h5py (the data extra) is not installed")
    net = caffe.Net(write(tmp_path, GOOD), caffe.TEST)
    path = str(tmp_path / "model.h5")
    net.save_hdf5(path)
    before = open(path, "rb").read()

    def broken_replace(src, dst):
        raise OSError("rename failed")
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="rename failed"):
        net.save_hdf5(path)
    monkeypatch.undo()
    assert open(path, "rb").read() == before
    assert sorted(os.listdir(tmp_path)) == ["model.h5", "net.prototxt"]


def test_forward_arguments_are_checked(tmp_path):
    net = caffe.Net(write(tmp_path, GOOD), caffe.TEST)
    with pytest.raises(ValueError, match=r"do not match the net's inputs \['data'\]"):
        net.forward(image=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="batch size 5, the blob has 2"):
        net.forward(data=np.zeros((5, 3), np.float32))
    with pytest.raises(ValueError, match="no layer 'fc8'.*'fc'"):
        net.forward(end="fc8")
    with pytest.raises(ValueError, match="phase must be caffe.TRAIN"):
        caffe.Net(write(tmp_path, GOOD, "p.prototxt"), 7)
    with pytest.raises(FileNotFoundError, match="no such network file"):
        caffe.Net(str(tmp_path / "absent.prototxt"), caffe.TEST)


def test_shared_param_shapes_must_agree(tmp_path):
    text = GOOD.replace('inner_product_param { num_output: 4 }',
                        'param { name: "w" } inner_product_param { num_output: 4 }')
    text += ('layer { name: "fc2" type: "InnerProduct" bottom: "prob" top: "fc2" '
             'param { name: "w" } inner_product_param { num_output: 4 } }\n')
    with pytest.raises(ValueError, match=r"layer 'fc2'.*cannot share param 'w' owned by layer "
                                         r"'fc'.*\(4, 3\).*\(4, 4\)"):
        caffe.Net(write(tmp_path, text), caffe.TEST)
