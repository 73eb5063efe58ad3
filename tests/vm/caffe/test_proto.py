"""Caffe's protobuf schema and dragon.vm.caffe.proto_io."""
import os
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format

from dragon.vm.caffe import proto_io
from dragon.vm.caffe.proto import caffe_pb2

REPO = Path(__file__).resolve().parents[3]
CAFFE_DATA = REPO / ".." / "shared" / "data" / "caffe"


def _prototxts():
    files = sorted(CAFFE_DATA.rglob("*.prototxt")) if CAFFE_DATA.is_dir() else []
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(
            reason="no Caffe example files at %s" % CAFFE_DATA))]
    return [pytest.param(f, id=str(f.relative_to(CAFFE_DATA))) for f in files]


def _data_file(*parts):
    path = CAFFE_DATA.joinpath(*parts)
    if not path.is_file():
        pytest.skip("Caffe example file %s is absent" % path)
    return path


def _number(message_cls, field):
    return message_cls.DESCRIPTOR.fields_by_name[field].number


# ---------------------------------------------------------------------------
# Field numbers (the wire format)

LAYER_PARAM_NUMBERS = dict(
    name=1, type=2, bottom=3, top=4, loss_weight=5, param=6, blobs=7, include=8, exclude=9,
    phase=10, propagate_down=11, transform_param=100, loss_param=101,
    accuracy_param=102, argmax_param=103, concat_param=104, contrastive_loss_param=105,
    convolution_param=106, data_param=107, dropout_param=108, dummy_data_param=109,
    eltwise_param=110, exp_param=111, hdf5_data_param=112, hdf5_output_param=113,
    hinge_loss_param=114, image_data_param=115, infogain_loss_param=116,
    inner_product_param=117, lrn_param=118, memory_data_param=119, mvn_param=120,
    pooling_param=121, power_param=122, relu_param=123, sigmoid_param=124,
    softmax_param=125, slice_param=126, tanh_param=127, threshold_param=128,
    window_data_param=129, python_param=130, prelu_param=131, spp_param=132,
    reshape_param=133, log_param=134, flatten_param=135, reduction_param=136,
    embed_param=137, tile_param=138, batch_norm_param=139, elu_param=140, bias_param=141,
    scale_param=142, input_param=143, crop_param=144, parameter_param=145,
    recurrent_param=146, swish_param=147, clip_param=148,
)

SOLVER_NUMBERS = dict(
    train_net=1, test_net=2, test_iter=3, test_interval=4, base_lr=5, display=6, max_iter=7,
    lr_policy=8, gamma=9, power=10, momentum=11, weight_decay=12, stepsize=13, snapshot=14,
    snapshot_prefix=15, snapshot_diff=16, solver_mode=17, device_id=18, test_compute_loss=19,
    random_seed=20, train_net_param=21, test_net_param=22, debug_info=23, net=24,
    net_param=25, train_state=26, test_state=27, snapshot_after_train=28,
    regularization_type=29, solver_type=30, delta=31, test_initialization=32,
    average_loss=33, stepvalue=34, clip_gradients=35, iter_size=36, snapshot_format=37,
    rms_decay=38, momentum2=39, type=40, layer_wise_reduce=41, weights=42,
)

MESSAGE_NUMBERS = {
    caffe_pb2.BlobShape: dict(dim=1),
    caffe_pb2.BlobProto: dict(num=1, channels=2, height=3, width=4, data=5, diff=6, shape=7,
                              double_data=8, double_diff=9),
    caffe_pb2.BlobProtoVector: dict(blobs=1),
    caffe_pb2.Datum: dict(channels=1, height=2, width=3, data=4, label=5, float_data=6,
                          encoded=7),
    caffe_pb2.NetParameter: dict(name=1, layers=2, input=3, input_dim=4, force_backward=5,
                                 state=6, debug_info=7, input_shape=8, layer=100),
    caffe_pb2.ParamSpec: dict(name=1, share_mode=2, lr_mult=3, decay_mult=4),
    caffe_pb2.NetState: dict(phase=1, level=2, stage=3),
    caffe_pb2.NetStateRule: dict(phase=1, min_level=2, max_level=3, stage=4, not_stage=5),
    caffe_pb2.SolverState: dict(iter=1, learned_net=2, history=3, current_step=4),
    caffe_pb2.V1LayerParameter: dict(bottom=2, top=3, name=4, type=5, blobs=6, blobs_lr=7,
                                     weight_decay=8, include=32, exclude=33, loss_weight=35,
                                     param=1001, layer=1, convolution_param=10,
                                     inner_product_param=17, pooling_param=19,
                                     data_param=11, transform_param=36, loss_param=42),
    caffe_pb2.LayerParameter: LAYER_PARAM_NUMBERS,
    caffe_pb2.SolverParameter: SOLVER_NUMBERS,
    caffe_pb2.ConvolutionParameter: dict(num_output=1, bias_term=2, pad=3, kernel_size=4,
                                         group=5, stride=6, weight_filler=7, bias_filler=8,
                                         pad_h=9, pad_w=10, kernel_h=11, kernel_w=12,
                                         stride_h=13, stride_w=14, engine=15, axis=16,
                                         force_nd_im2col=17, dilation=18),
    caffe_pb2.PoolingParameter: dict(pool=1, kernel_size=2, stride=3, pad=4, kernel_h=5,
                                     kernel_w=6, stride_h=7, stride_w=8, pad_h=9, pad_w=10,
                                     engine=11, global_pooling=12, round_mode=13),
    caffe_pb2.BatchNormParameter: dict(use_global_stats=1, moving_average_fraction=2, eps=3),
    caffe_pb2.InnerProductParameter: dict(num_output=1, bias_term=2, weight_filler=3,
                                          bias_filler=4, axis=5, transpose=6),
    caffe_pb2.TransformationParameter: dict(scale=1, mirror=2, crop_size=3, mean_file=4,
                                            mean_value=5, force_color=6, force_gray=7),
    caffe_pb2.LossParameter: dict(ignore_label=1, normalize=2, normalization=3),
    caffe_pb2.FillerParameter: dict(type=1, value=2, min=3, max=4, mean=5, std=6, sparse=7,
                                    variance_norm=8),
}


@pytest.mark.parametrize("message_cls", list(MESSAGE_NUMBERS), ids=lambda c: c.__name__)
def test_field_numbers_match_bvlc(message_cls):
    fields = message_cls.DESCRIPTOR.fields_by_name
    for name, number in MESSAGE_NUMBERS[message_cls].items():
        assert name in fields, "%s.%s missing" % (message_cls.__name__, name)
        assert fields[name].number == number, "%s.%s" % (message_cls.__name__, name)


def test_every_layer_param_message_exists_with_bvlc_name():
    fields = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
    assert fields["prelu_param"].message_type.name == "PReLUParameter"
    assert fields["swish_param"].message_type.name == "SwishParameter"
    assert fields["clip_param"].message_type.name == "ClipParameter"
    assert fields["elu_param"].message_type.name == "ELUParameter"
    assert fields["spp_param"].message_type.name == "SPPParameter"


def test_packed_and_enum_values():
    blob = caffe_pb2.BlobProto.DESCRIPTOR.fields_by_name
    assert blob["data"].is_packed and blob["diff"].is_packed
    assert caffe_pb2.BlobShape.DESCRIPTOR.fields_by_name["dim"].is_packed
    assert (caffe_pb2.TRAIN, caffe_pb2.TEST) == (0, 1)
    v1 = caffe_pb2.V1LayerParameter
    assert (v1.CONVOLUTION, v1.DATA, v1.INNER_PRODUCT, v1.POOLING, v1.RELU,
            v1.SOFTMAX_LOSS) == (4, 5, 14, 17, 18, 21)
    assert (caffe_pb2.SolverParameter.CPU, caffe_pb2.SolverParameter.GPU) == (0, 1)
    assert (caffe_pb2.SolverParameter.HDF5, caffe_pb2.SolverParameter.BINARYPROTO) == (0, 1)
    assert caffe_pb2.PoolingParameter.STOCHASTIC == 2
    assert (caffe_pb2.EltwiseParameter.PROD, caffe_pb2.EltwiseParameter.MAX) == (0, 2)
    assert caffe_pb2.LossParameter.NONE == 3


def test_blob_wire_bytes():
    # Tag bytes written by hand: shape (7, LEN) holding packed dims (1, LEN),
    # then packed float data (5, LEN).
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend([2, 3])
    blob.data.extend([1.0])
    assert blob.SerializeToString() == (
        b"\x2a\x04" + np.float32(1.0).tobytes() + b"\x3a\x04\x0a\x02\x02\x03")


def test_defaults():
    assert caffe_pb2.ConvolutionParameter().bias_term is True
    assert caffe_pb2.ConvolutionParameter().group == 1
    assert caffe_pb2.InnerProductParameter().bias_term is True
    pool = caffe_pb2.PoolingParameter()
    assert pool.pool == caffe_pb2.PoolingParameter.MAX
    assert pool.stride == 1 and pool.round_mode == caffe_pb2.PoolingParameter.CEIL
    solver = caffe_pb2.SolverParameter()
    assert solver.solver_mode == caffe_pb2.SolverParameter.GPU
    assert solver.delta == pytest.approx(1e-8)
    assert solver.momentum2 == pytest.approx(0.999)
    assert solver.rms_decay == pytest.approx(0.99)
    assert solver.clip_gradients == -1
    assert solver.type == "SGD" and solver.regularization_type == "L2"
    assert solver.random_seed == -1 and solver.average_loss == 1 and solver.iter_size == 1
    assert solver.snapshot_format == caffe_pb2.SolverParameter.BINARYPROTO
    assert solver.test_initialization is True and solver.snapshot_after_train is True
    assert solver.layer_wise_reduce is True
    assert caffe_pb2.NetState().phase == caffe_pb2.TEST
    assert caffe_pb2.LossParameter().normalization == caffe_pb2.LossParameter.VALID
    bn = caffe_pb2.BatchNormParameter()
    assert bn.eps == pytest.approx(1e-5)
    assert bn.moving_average_fraction == pytest.approx(0.999)
    spec = caffe_pb2.ParamSpec()
    assert spec.lr_mult == 1.0 and spec.decay_mult == 1.0
    filler = caffe_pb2.FillerParameter()
    assert filler.type == "constant" and filler.std == 1 and filler.max == 1
    assert filler.sparse == -1
    lrn = caffe_pb2.LRNParameter()
    assert (lrn.local_size, lrn.alpha, lrn.beta, lrn.k) == (5, 1.0, 0.75, 1.0)
    assert caffe_pb2.DropoutParameter().dropout_ratio == 0.5
    assert caffe_pb2.EltwiseParameter().operation == caffe_pb2.EltwiseParameter.SUM
    assert caffe_pb2.ConcatParameter().axis == 1
    assert caffe_pb2.FlattenParameter().end_axis == -1
    assert caffe_pb2.ReshapeParameter().num_axes == -1
    assert caffe_pb2.CropParameter().axis == 2
    assert caffe_pb2.ScaleParameter().bias_term is False
    assert caffe_pb2.AccuracyParameter().top_k == 1
    assert caffe_pb2.ExpParameter().base == -1
    assert caffe_pb2.MVNParameter().eps == pytest.approx(1e-9)
    assert caffe_pb2.SwishParameter().beta == 1
    assert caffe_pb2.DataParameter().backend == caffe_pb2.DataParameter.LEVELDB
    assert caffe_pb2.TransformationParameter().scale == 1
    assert caffe_pb2.WindowDataParameter().crop_mode == "warp"


# ---------------------------------------------------------------------------
# Reading the example files


@pytest.mark.parametrize("path", _prototxts())
def test_example_prototxt_parses(path):
    if "solver" in path.name:
        solver = proto_io.read_solver(path)
        assert isinstance(solver, caffe_pb2.SolverParameter)
        assert solver.base_lr > 0
    else:
        net = proto_io.read_net(path)
        assert isinstance(net, caffe_pb2.NetParameter)
        assert len(net.layer) > 0 and not len(net.layers) and not len(net.input)
        assert all(layer.type for layer in net.layer)


def test_resnet50_input_header_becomes_input_layer():
    path = _data_file("models", "resnet", "ResNet-50-deploy.prototxt")
    raw = proto_io.read_net(path, upgrade=False)
    assert list(raw.input) == ["data"] and list(raw.input_dim) == [1, 3, 224, 224]
    assert raw.layer[0].type == "Convolution"

    net = proto_io.read_net(path)
    first = net.layer[0]
    assert (first.name, first.type, list(first.top)) == ("input", "Input", ["data"])
    assert [list(s.dim) for s in first.input_param.shape] == [[1, 3, 224, 224]]
    assert net.layer[1].name == "conv1"
    assert len(net.layer) == len(raw.layer) + 1
    assert not len(net.input) and not len(net.input_dim)
    bn = [layer for layer in net.layer if layer.type == "BatchNorm"]
    assert bn and all(layer.batch_norm_param.use_global_stats for layer in bn)


def test_lenet_solver_values():
    solver = proto_io.read_solver(_data_file("examples", "mnist", "lenet_solver.prototxt"))
    assert solver.lr_policy == "inv" and solver.max_iter == 10000
    assert solver.base_lr == pytest.approx(0.01) and solver.momentum == pytest.approx(0.9)


def test_input_shape_header_upgrade():
    net = proto_io.read_net(
        'input: "a" input_shape { dim: 2 dim: 5 } input: "b" input_shape { dim: 7 }\n'
        'layer { name: "ip" type: "InnerProduct" bottom: "a" top: "ip" }\n')
    assert net.layer[0].type == "Input" and list(net.layer[0].top) == ["a", "b"]
    assert [list(s.dim) for s in net.layer[0].input_param.shape] == [[2, 5], [7]]
    assert net.layer[1].name == "ip"


def test_bare_input_names_are_dropped():
    net = caffe_pb2.NetParameter(input=["data"])
    net.layer.add(name="ip", type="InnerProduct")
    proto_io.upgrade_net(net)
    assert not len(net.input) and [layer.name for layer in net.layer] == ["ip"]


# ---------------------------------------------------------------------------
# V1 upgrade

V1_LENET = """
name: "LeNetV1"
layers {
  name: "mnist"
  type: DATA
  top: "data"
  top: "label"
  data_param { source: "mnist_train_lmdb" batch_size: 64 scale: 0.00390625 backend: LMDB }
  include { phase: TRAIN }
}
layers {
  name: "conv1"
  type: CONVOLUTION
  bottom: "data"
  top: "conv1"
  blobs_lr: 1
  blobs_lr: 2
  weight_decay: 1
  weight_decay: 0
  convolution_param {
    num_output: 20
    kernel_size: 5
    stride: 1
    weight_filler { type: "xavier" }
    bias_filler { type: "constant" }
  }
}
layers {
  name: "pool1"
  type: POOLING
  bottom: "conv1"
  top: "pool1"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 }
}
layers {
  name: "ip1"
  type: INNER_PRODUCT
  bottom: "pool1"
  top: "ip1"
  param: "ip1_w"
  param: "ip1_b"
  blobs_lr: 1
  blobs_lr: 2
  inner_product_param { num_output: 500 }
}
layers { name: "relu1" type: RELU bottom: "ip1" top: "ip1" }
layers {
  name: "accuracy"
  type: ACCURACY
  bottom: "ip1"
  bottom: "label"
  top: "accuracy"
  include { phase: TEST }
}
layers {
  name: "loss"
  type: SOFTMAX_LOSS
  bottom: "ip1"
  bottom: "label"
  top: "loss"
  loss_weight: 1
}
"""


def test_v1_layers_upgrade():
    raw = proto_io.read_net(V1_LENET, upgrade=False)
    assert len(raw.layers) == 7 and not len(raw.layer)

    net = proto_io.read_net(V1_LENET)
    assert not len(net.layers)
    assert [layer.type for layer in net.layer] == [
        "Data", "Convolution", "Pooling", "InnerProduct", "ReLU", "Accuracy",
        "SoftmaxWithLoss"]
    data, conv, pool, ip, relu, acc, loss = net.layer
    assert data.include[0].phase == caffe_pb2.TRAIN and acc.include[0].phase == caffe_pb2.TEST
    # Deprecated data_param fields move to transform_param, as in Caffe.
    assert data.transform_param.scale == pytest.approx(0.00390625)
    assert not data.data_param.HasField("scale")
    assert data.data_param.backend == caffe_pb2.DataParameter.LMDB
    assert [(p.lr_mult, p.decay_mult) for p in conv.param] == [(1, 1), (2, 0)]
    assert conv.convolution_param.num_output == 20
    assert list(conv.convolution_param.kernel_size) == [5]
    assert conv.convolution_param.weight_filler.type == "xavier"
    assert pool.pooling_param.kernel_size == 2
    assert [(p.name, p.lr_mult, p.decay_mult) for p in ip.param] == [
        ("ip1_w", 1, 1), ("ip1_b", 2, 1)]
    assert list(relu.bottom) == list(relu.top) == ["ip1"]
    assert list(loss.loss_weight) == [1]
    assert list(loss.bottom) == ["ip1", "label"]


def test_v1_binary_keeps_blobs(tmp_path):
    net = caffe_pb2.NetParameter(name="vgg-ish")
    v1 = net.layers.add(name="fc6", type=caffe_pb2.V1LayerParameter.INNER_PRODUCT)
    v1.bottom.append("pool5")
    v1.top.append("fc6")
    weight = v1.blobs.add(num=1, channels=1, height=3, width=2)
    weight.data.extend(np.arange(6, dtype=np.float32).tolist())
    v1.blobs.add(num=1, channels=1, height=1, width=3).data.extend([0.5, -0.5, 1.5])
    path = tmp_path / "vgg.caffemodel"
    proto_io.write_binary(path, net)

    loaded = proto_io.read_binary(path, caffe_pb2.NetParameter)
    layer = loaded.layer[0]
    assert (layer.name, layer.type) == ("fc6", "InnerProduct")
    assert [(b.height, b.width) for b in layer.blobs] == [(3, 2), (1, 3)]
    assert list(layer.blobs[1].data) == [0.5, -0.5, 1.5]
    assert len(proto_io.read_binary(path, caffe_pb2.NetParameter, upgrade=False).layers) == 1


def test_mixed_layer_formats_are_rejected():
    with pytest.raises(ValueError, match="both"):
        proto_io.read_net('layer { name: "a" type: "ReLU" } layers { name: "b" type: RELU }')


def test_v0_layers_are_rejected_clearly():
    with pytest.raises(ValueError, match="V0"):
        proto_io.read_net('layers { layer { name: "conv1" type: "conv" } }')


def test_batch_norm_with_three_params_is_frozen():
    net = proto_io.read_net(
        'layer { name: "bn" type: "BatchNorm" param { lr_mult: 1 } param { lr_mult: 1 }'
        ' param { lr_mult: 1 decay_mult: 1 } }')
    assert [(p.lr_mult, p.decay_mult) for p in net.layer[0].param] == [(0, 0)] * 3


def test_solver_type_enum_upgrade():
    solver = proto_io.read_solver('base_lr: 0.1 solver_type: ADAM')
    assert solver.type == "Adam" and not solver.HasField("solver_type")
    assert proto_io.read_solver('solver_type: RMSPROP', upgrade=False).type == "SGD"
    inline = proto_io.read_solver(
        'net_param { input: "x" input_dim: 1 input_dim: 1 input_dim: 2 input_dim: 2 }')
    assert inline.net_param.layer[0].type == "Input"


# ---------------------------------------------------------------------------
# Errors


def test_malformed_prototxt_names_file_line_and_column(tmp_path):
    path = tmp_path / "broken.prototxt"
    path.write_text('name: "x"\nlayer {\n  name: "conv1"\n  kernal_size: 3\n}\n')
    with pytest.raises(proto_io.PrototxtError) as info:
        proto_io.read_net(path)
    err = info.value
    assert isinstance(err, ValueError)
    assert (err.path, err.line, err.column) == (str(path), 4, 3)
    text = str(err)
    assert "%s:4:3" % path in text and "kernal_size" in text

    solver = tmp_path / "solver.prototxt"
    solver.write_text('base_lr: 0.01\nmax_iter: 100\nmomentum 0.9\n')
    with pytest.raises(proto_io.PrototxtError) as info:
        proto_io.read_solver(solver)
    assert info.value.line == 3 and str(solver) in str(info.value)


def test_malformed_text_without_file():
    with pytest.raises(proto_io.PrototxtError, match=r"<string>:1:\d+"):
        proto_io.read_net('layer { name: "a" ')


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        proto_io.read_net("does_not_exist.prototxt")


def test_undecodable_binary_names_the_file(tmp_path):
    path = tmp_path / "garbage.caffemodel"
    path.write_bytes(b"\xff\xff\xff\xff\xff")
    with pytest.raises(proto_io.BinaryProtoError, match="garbage.caffemodel") as info:
        proto_io.read_binary(path, caffe_pb2.NetParameter)
    assert isinstance(info.value, ValueError)


# ---------------------------------------------------------------------------
# Writing


def _small_net():
    net = caffe_pb2.NetParameter(name="small")
    net.layer.add(name="input", type="Input", top=["data"]).input_param.shape.add(
        dim=[1, 2, 4, 4])
    conv = net.layer.add(name="conv", type="Convolution", bottom=["data"], top=["conv"])
    conv.convolution_param.num_output = 3
    conv.convolution_param.kernel_size.append(3)
    conv.convolution_param.pad.append(1)
    rng = np.random.RandomState(0)
    weight = conv.blobs.add()
    weight.shape.dim.extend([3, 2, 3, 3])
    weight.data.extend(rng.randn(54).astype(np.float32).tolist())
    bias = conv.blobs.add()
    bias.shape.dim.append(3)
    bias.data.extend([0.1, -0.2, 0.3])
    net.layer.add(name="relu", type="ReLU", bottom=["conv"], top=["conv"])
    pool = net.layer.add(name="pool", type="Pooling", bottom=["conv"], top=["pool"])
    pool.pooling_param.pool = caffe_pb2.PoolingParameter.MAX
    pool.pooling_param.kernel_size = 2
    pool.pooling_param.stride = 2
    return net


def test_binary_round_trip(tmp_path):
    net = _small_net()
    path = tmp_path / "small.caffemodel"
    proto_io.write_binary(path, net)
    loaded = proto_io.read_binary(path, caffe_pb2.NetParameter)
    assert loaded == net
    np.testing.assert_array_equal(np.array(loaded.layer[1].blobs[0].data, np.float32),
                                  np.array(net.layer[1].blobs[0].data, np.float32))
    # Not mkstemp's 0600: a new file gets the umask mode, a rewritten one keeps its own.
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~proto_io._UMASK
    os.chmod(path, 0o640)
    proto_io.write_binary(path, net)
    assert os.stat(path).st_mode & 0o777 == 0o640


def test_text_round_trip(tmp_path):
    net = _small_net()
    path = tmp_path / "small.prototxt"
    proto_io.write_text(path, net)
    assert proto_io.read_net(path) == net
    assert 'type: "Convolution"' in path.read_text()


def test_other_binary_messages_round_trip(tmp_path):
    state = caffe_pb2.SolverState(iter=100, learned_net="snap_iter_100.caffemodel",
                                  current_step=2)
    state.history.add(data=[1.0, 2.0])
    datum = caffe_pb2.Datum(channels=1, height=1, width=2, data=b"\x00\xff", label=7)
    for name, msg in [("s.solverstate", state), ("d.bin", datum),
                      ("m.binaryproto", caffe_pb2.BlobProto(num=1, data=[3.0]))]:
        proto_io.write_binary(tmp_path / name, msg)
        assert proto_io.read_binary(tmp_path / name, type(msg)) == msg


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_failed_serialization_keeps_earlier_file(tmp_path):
    path = tmp_path / "model.caffemodel"
    proto_io.write_binary(path, _small_net())
    before = path.read_bytes()

    bad = _small_net()
    bad.layer.add(name="clip", type="Clip").clip_param.min = 0.0  # required max unset
    with pytest.raises(Exception):
        proto_io.write_binary(path, bad)
    assert path.read_bytes() == before and _leftovers(tmp_path) == []


def test_failed_replace_keeps_earlier_file(tmp_path, monkeypatch):
    for write, name in [(proto_io.write_binary, "a.caffemodel"),
                        (proto_io.write_text, "a.prototxt")]:
        path = tmp_path / name
        write(path, _small_net())
        before = path.read_bytes()

        def boom(*args, **kwargs):
            raise OSError("disk full")

        with monkeypatch.context() as patch:
            patch.setattr(proto_io.os, "replace", boom)
            with pytest.raises(OSError, match="disk full"):
                write(path, caffe_pb2.NetParameter(name="other"))
        assert path.read_bytes() == before and _leftovers(tmp_path) == []


def test_failed_write_keeps_earlier_file(tmp_path, monkeypatch):
    path = tmp_path / "a.caffemodel"
    proto_io.write_binary(path, _small_net())
    before = path.read_bytes()
    real_fsync = os.fsync

    def boom(fd):
        real_fsync(fd)
        raise OSError("I/O error")

    monkeypatch.setattr(proto_io.os, "fsync", boom)
    with pytest.raises(OSError, match="I/O error"):
        proto_io.write_binary(path, caffe_pb2.NetParameter(name="other"))
    assert path.read_bytes() == before and _leftovers(tmp_path) == []


# ---------------------------------------------------------------------------
# OpenCV's Caffe importer reads what we write


def _reference_forward(net, x):
    conv = net.layer[1]
    w = np.array(conv.blobs[0].data, np.float32).reshape(3, 2, 3, 3)
    b = np.array(conv.blobs[1].data, np.float32)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    y = np.zeros((1, 3, 4, 4), np.float32)
    for i in range(4):
        for j in range(4):
            patch = padded[0, :, i:i + 3, j:j + 3]
            y[0, :, i, j] = np.tensordot(w, patch, axes=3) + b
    y = np.maximum(y, 0)
    return y.reshape(1, 3, 2, 2, 2, 2).max(axis=(3, 5))


def test_opencv_reads_written_files(tmp_path):
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless<5 (the bench extra) is not installed")
    net = _small_net()
    proto_io.write_text(tmp_path / "deploy.prototxt", net)
    weights = caffe_pb2.NetParameter()
    weights.CopyFrom(net)
    proto_io.write_binary(tmp_path / "weights.caffemodel", weights)

    reader = cv2.dnn.readNetFromCaffe(str(tmp_path / "deploy.prototxt"),
                                      str(tmp_path / "weights.caffemodel"))
    x = np.random.RandomState(1).randn(1, 2, 4, 4).astype(np.float32)
    reader.setInput(x, "data")
    out = reader.forward("pool")
    np.testing.assert_allclose(out, _reference_forward(net, x), rtol=1e-5, atol=1e-5)


def test_text_format_matches_caffe_spelling():
    net = _small_net()
    text = text_format.MessageToString(net)
    assert "convolution_param {" in text and "pool: MAX" in text
