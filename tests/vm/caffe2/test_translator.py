"""The Caffe-to-Caffe2 translator: translated nets compute what the Caffe nets compute.

Each net is built with ``dragon.vm.caffe.Net(prototxt, caffe.TEST)`` at batch 1,
its parameters are filled with deterministic random values (BatchNorm with a
scale factor of 2, so the translation must divide the statistics by it),
``net.save`` writes a caffemodel, and ``TranslateModel`` turns prototxt and
caffemodel into a Caffe2 predict net and its TensorProtos. The predict net then
runs through the Caffe2 workspace on the same input and every net output, and
the logits the final Softmax reads, must match Caffe's within 1e-5 of their
largest magnitude.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dragon.vm.caffe as caffe
from dragon.vm.caffe import proto_io
from dragon.vm.caffe.proto import caffe_pb2
from dragon.vm.caffe2.proto import caffe2_pb2
from dragon.vm.caffe2.python import caffe_translator, core, utils, workspace

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "caffe"

ZOO = {
    "lenet": "examples/mnist/lenet.prototxt",
    "alexnet": "models/bvlc_alexnet/deploy.prototxt",
    "caffenet": "models/bvlc_reference_caffenet/deploy.prototxt",
    "googlenet": "models/bvlc_googlenet/deploy.prototxt",
    "resnet50": "models/resnet/ResNet-50-deploy.prototxt",
    "squeezenet_v1.1": "models/squeezenet/squeezenet_v1.1_deploy.prototxt",
    "mobilenet_v1": "models/mobilenet/mobilenet_deploy.prototxt",
}

# Running an init net of GivenTensorFill ops costs about a microsecond per value in the
# engine; nets with more parameters than this load the same TensorProtos with FeedBlob.
INIT_NET_MAX_VALUES = 8_000_000

TOLERANCE = 1e-5


@pytest.fixture(autouse=True)
def caffe2_workspace():
    """A workspace of its own, so Caffe2 blob names cannot meet the Caffe net's arrays."""
    previous = workspace.CurrentWorkspace()
    workspace.SwitchWorkspace("caffe_translator_test", True)
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()
    workspace.SwitchWorkspace(previous)


def zoo_file(name):
    path = DATA / ZOO[name]
    if not path.is_file():
        pytest.skip(f"the Caffe model file {path} is absent (shared data not installed)")
    return path


def at_batch_one(path, tmp_path):
    """The prototxt with its input's batch dimension set to 1, written under tmp_path."""
    param = proto_io.read_net(str(path))
    for layer in param.layer:
        if layer.type == "Input":
            for shape in layer.input_param.shape:
                shape.dim[0] = 1
    out = tmp_path / f"{Path(path).stem}-batch1.prototxt"
    proto_io.write_text(str(out), param)
    return out


def randomize(net, seed):
    """Deterministic parameters keeping activations O(1); BatchNorm's factor is 2."""
    rng = np.random.default_rng(seed)
    for layer, blobs in net.params.items():
        kind = net.layer_dict[layer].type
        for i, blob in enumerate(blobs):
            shape = blob.data.shape
            if kind == "BatchNorm":
                value = [rng.normal(0, 0.2, shape), rng.uniform(1.0, 3.0, shape),
                         np.full(shape, 2.0)][i]
            elif kind == "Scale":
                value = rng.uniform(0.8, 1.2, shape) if i == 0 else rng.normal(0, 0.1, shape)
            elif kind == "PReLU":
                value = rng.uniform(0.1, 0.3, shape)
            elif len(shape) > 1:
                fan_in = shape[0] if kind == "Deconvolution" else int(np.prod(shape[1:]))
                value = rng.normal(0, np.sqrt(1.0 / fan_in), shape)
            else:
                value = rng.normal(0, 0.1, shape)
            blob.data[...] = value


def caffe_reference(prototxt, tmp_path, seed, every_blob=False):
    """(input name, input, {blob: Caffe's value}, caffemodel path) for a random-weight net.

    The values are the net's outputs and the logits, or every blob but Caffe's splits.
    """
    net = caffe.Net(str(prototxt), caffe.TEST)
    randomize(net, seed)
    weights = tmp_path / "weights.caffemodel"
    net.save(str(weights))
    data = net.inputs[0]
    x = np.random.default_rng(seed + 1).uniform(-1, 1, net.blobs[data].data.shape)
    net.blobs[data].data[...] = x
    out = net.forward()
    wanted = list(out)
    if every_blob:
        wanted += [name for name in net.blobs if "_split_" not in name]
    last = list(net.layer_dict)[-1]
    if net.layer_dict[last].type == "Softmax":
        wanted.append(net.bottom_names[last][0])
    values = {name: net.blobs[name].data.copy() for name in dict.fromkeys(wanted)}
    return data, x.astype(np.float32), values, weights


def translate(prototxt, weights, **kwargs):
    return caffe_translator.TranslateModel(
        proto_io.read_net(str(prototxt)),
        proto_io.read_binary(str(weights), caffe_pb2.NetParameter), **kwargs)


def load_params(params, input_name):
    """The parameters into the workspace: by the init net, or FeedBlob for big nets."""
    total = sum(int(np.prod(p.dims)) for p in params.protos)
    init_net = caffe_translator.ConvertTensorProtosToInitNet(params, input_name)
    assert [op.type for op in init_net.op] == ["GivenTensorFill"] * len(params.protos) + \
        ["ConstantFill"]
    assert [op.output[0] for op in init_net.op] == [p.name for p in params.protos] + [input_name]
    if total <= INIT_NET_MAX_VALUES:
        workspace.RunNetOnce(init_net)
    else:
        for proto in params.protos:
            workspace.FeedBlob(proto.name, utils.Caffe2TensorToNumpyArray(proto))


def run_caffe2(predict_net, params, data, x, names):
    load_params(params, data)
    workspace.FeedBlob(data, x)
    workspace.RunNetOnce(predict_net)
    return {name: workspace.FetchBlob(name) for name in names}


def arguments(op):
    """An OperatorDef's arguments as {name: value}."""
    values = {}
    for arg in op.arg:
        fields = [f for f in ("i", "f", "s") if arg.HasField(f)]
        values[arg.name] = getattr(arg, fields[0]) if fields else list(arg.ints or arg.floats)
    return values


def assert_close(ours, theirs, what):
    for name, expected in theirs.items():
        got = ours[name]
        assert got.shape == expected.shape, f"{what}: '{name}' {got.shape} != {expected.shape}"
        scale = float(np.abs(expected).max()) or 1.0
        diff = float(np.abs(got - expected).max())
        assert diff <= TOLERANCE * scale, f"{what}: '{name}' differs by {diff} (scale {scale})"


# -- the model zoo --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_net_gives_caffe_outputs(tmp_path, name):
    prototxt = at_batch_one(zoo_file(name), tmp_path)
    data, x, expected, weights = caffe_reference(prototxt, tmp_path, seed=len(name))
    predict_net, params = translate(prototxt, weights, is_test=True)
    assert predict_net.external_input[0] == data
    assert set(p.name for p in params.protos) <= set(predict_net.external_input)
    got = run_caffe2(predict_net, params, data, x, expected)
    assert_close(got, expected, name)


# -- layer by layer, on small nets ----------------------------------------------------------------

def layer(name, kind, bottoms, tops, params=""):
    """One prototxt layer; ``bottoms`` and ``tops`` are space-separated blob names."""
    fields = "".join(f' bottom: "{b}"' for b in bottoms.split()) + \
        "".join(f' top: "{t}"' for t in tops.split())
    return f'layer {{ name: "{name}" type: "{kind}"{fields} {params} }}'


def prototxt_text(name, input_shape, *layers):
    dims = " ".join(f"dim: {d}" for d in input_shape)
    head = layer("data", "Input", "", "data", f"input_param {{ shape {{ {dims} }} }}")
    return "\n".join([f'name: "{name}"', head, *layers])


VISION = prototxt_text(
    "vision", (2, 3, 13, 11),
    layer("conv", "Convolution", "data", "conv",
          "convolution_param { num_output: 6 kernel_h: 3 kernel_w: 2 stride_h: 2 stride_w: 1 "
          "pad_h: 1 pad_w: 0 }"),
    layer("leaky", "ReLU", "conv", "conv", "relu_param { negative_slope: 0.1 }"),
    layer("dilated", "Convolution", "conv", "dilated",
          "convolution_param { num_output: 4 kernel_size: 3 pad: 2 dilation: 2 group: 2 "
          "bias_term: false }"),
    layer("ave", "Pooling", "dilated", "ave",
          "pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 }"),
    layer("deconv", "Deconvolution", "ave", "deconv",
          "convolution_param { num_output: 4 kernel_size: 4 stride: 2 pad: 1 group: 2 }"),
    layer("prelu", "PReLU", "deconv", "deconv"),
    layer("lrn", "LRN", "deconv", "lrn", "lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: 2 }"),
    layer("max", "Pooling", "lrn", "max", "pooling_param { pool: MAX kernel_size: 3 stride: 2 }"),
    layer("floor", "Pooling", "lrn", "floor",
          "pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 round_mode: FLOOR }"),
    layer("global", "Pooling", "lrn", "global",
          "pooling_param { pool: MAX global_pooling: true }"),
    layer("crop", "Crop", "lrn max", "crop", "crop_param { axis: 2 offset: 1 offset: 2 }"),
    layer("softmax", "Softmax", "crop", "softmax"))

COMMON = prototxt_text(
    "common", (2, 4, 5, 5),
    layer("a", "Convolution", "data", "a", "convolution_param { num_output: 4 kernel_size: 1 }"),
    layer("b", "Convolution", "data", "b", "convolution_param { num_output: 4 kernel_size: 1 }"),
    layer("sum", "Eltwise", "a b", "sum", "eltwise_param { coeff: 0.5 coeff: -2 }"),
    layer("prod", "Eltwise", "a b sum", "prod", "eltwise_param { operation: PROD }"),
    layer("emax", "Eltwise", "a b", "emax", "eltwise_param { operation: MAX }"),
    layer("concat", "Concat", "sum prod emax", "concat"),
    layer("bn", "BatchNorm", "concat", "concat"),
    layer("scale", "Scale", "concat", "concat", "scale_param { bias_term: true }"),
    layer("bias", "Bias", "concat", "biased"),
    layer("power", "Power", "biased", "power", "power_param { power: 2 scale: 0.5 shift: 1 }"),
    layer("tanh", "TanH", "power", "tanh"),
    layer("slice", "Slice", "tanh", "s1 s2", "slice_param { axis: 1 slice_point: 5 }"),
    layer("split", "Split", "s2", "s2a s2b"),
    layer("sigmoid", "Sigmoid", "s2a", "sigmoid"),
    layer("reshape", "Reshape", "s1", "reshaped",
          "reshape_param { shape { dim: 0 dim: -1 dim: 5 } }"),
    layer("flatten", "Flatten", "s2b", "flat", "flatten_param { axis: 2 }"),
    layer("ip", "InnerProduct", "reshaped", "ip",
          "inner_product_param { num_output: 3 axis: 2 }"),
    layer("ipt", "InnerProduct", "flat", "ipt",
          "inner_product_param { num_output: 6 transpose: true }"),
    layer("drop", "Dropout", "ipt", "ipt", "dropout_param { dropout_ratio: 0.3 }"),
    layer("softmax", "Softmax", "ip", "prob", "softmax_param { axis: 1 }"),
    layer("abs", "AbsVal", "sigmoid", "abs"))


def _small_net(tmp_path, text):
    path = tmp_path / "net.prototxt"
    path.write_text(text)
    return path


@pytest.mark.parametrize("text", [VISION, COMMON], ids=["vision", "common"])
def test_small_net_layers_give_caffe_outputs(tmp_path, text):
    prototxt = _small_net(tmp_path, text)
    data, x, expected, weights = caffe_reference(prototxt, tmp_path, seed=3, every_blob=True)
    predict_net, params = translate(prototxt, weights, is_test=True)
    got = run_caffe2(predict_net, params, data, x, expected)
    assert_close(got, expected, "small net")


def test_translated_operators_and_arguments(tmp_path):
    prototxt = _small_net(tmp_path, VISION)
    _, _, _, weights = caffe_reference(prototxt, tmp_path, seed=1)
    net, params = translate(prototxt, weights, is_test=True)
    ops = {}
    for op in net.op:  # the first operator of each layer
        ops.setdefault(op.name, op)
    args = {name: arguments(op) for name, op in ops.items()}
    assert ops["conv"].type == "Conv" and args["conv"]["kernel_h"] == 3
    assert ops["leaky"].type == "LeakyRelu" and list(ops["leaky"].output) == ["conv"]
    assert args["dilated"]["dilation"] == 2 and args["dilated"]["group"] == 2
    assert list(ops["dilated"].input) == ["conv", "dilated_w"]
    assert ops["ave"].type == "AveragePool" and args["ave"]["legacy_pad"] == 3
    assert ops["deconv"].type == "ConvTranspose" and ops["prelu"].type == "PRelu"
    assert ops["max"].type == "MaxPool" and args["global"]["global_pooling"] == 1
    assert "legacy_pad" not in args["floor"] and args["floor"]["count_include_pad"] == 1
    assert ops["crop"].type == "Slice" and args["crop"]["starts"] == [0, 0, 1, 2]
    assert args["crop"]["ends"] == [-1, -1, 5, 8]
    assert [op.type for op in net.op if op.name == "softmax"] == ["Transpose", "Softmax",
                                                                  "Transpose"]
    assert list(net.external_output) == ["floor", "global", "softmax"]
    assert [p.name for p in params.protos] == [
        "conv_w", "conv_b", "dilated_w", "deconv_w", "deconv_b", "prelu_slope"]


def test_remove_legacy_pad_gives_the_same_outputs(tmp_path):
    prototxt = _small_net(tmp_path, VISION)
    data, x, expected, weights = caffe_reference(prototxt, tmp_path, seed=5, every_blob=True)
    net, params = translate(prototxt, weights, is_test=True, remove_legacy_pad=True)
    pools = {op.output[0]: arguments(op) for op in net.op if op.type.endswith("Pool")}
    assert "legacy_pad" not in pools["max"]
    assert [pools["max"][k] for k in ("pad_t", "pad_l", "pad_b", "pad_r")] == [0, 0, 1, 1]
    assert pools["ave"]["legacy_pad"] == 3  # an average pooling keeps Caffe's rounding
    got = run_caffe2(net, params, data, x, expected)
    assert_close(got, expected, "remove_legacy_pad")


def test_batch_norm_in_training_mode_uses_batch_statistics(tmp_path):
    prototxt = _small_net(tmp_path, COMMON)
    _, _, _, weights = caffe_reference(prototxt, tmp_path, seed=2)
    net, _ = translate(prototxt, weights, is_test=False)
    bn = next(op for op in net.op if op.type == "SpatialBN")
    assert arguments(bn)["is_test"] == 0
    assert list(bn.output[1:3]) == ["bn_rm", "bn_riv"]
    drop = next(op for op in net.op if op.type == "Dropout")
    assert arguments(drop)["is_test"] == 0


def test_v1_net_is_upgraded(tmp_path):
    v1 = """
    name: "v1"
    input: "data" input_dim: 1 input_dim: 2 input_dim: 6 input_dim: 6
    layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv"
             convolution_param { num_output: 3 kernel_size: 3 } }
    layers { name: "relu" type: RELU bottom: "conv" top: "conv" }
    layers { name: "pool" type: POOLING bottom: "conv" top: "pool"
             pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
    layers { name: "ip" type: INNER_PRODUCT bottom: "pool" top: "ip"
             inner_product_param { num_output: 4 } }
    layers { name: "prob" type: SOFTMAX bottom: "ip" top: "prob" }
    """
    prototxt = _small_net(tmp_path, v1)
    data, x, expected, weights = caffe_reference(prototxt, tmp_path, seed=4)
    v1_param = proto_io.read_net(v1, upgrade=False)
    assert len(v1_param.layers) == 5 and v1_param.input == ["data"]
    net, params = caffe_translator.TranslateModel(
        v1_param, proto_io.read_binary(str(weights), caffe_pb2.NetParameter), is_test=True)
    assert [op.type for op in net.op] == ["Conv", "Relu", "MaxPool", "FC", "Softmax"]
    assert_close(run_caffe2(net, params, data, x, expected), expected, "V1 net")


def test_layers_filtered_by_phase(tmp_path):
    text = VISION.replace('layer { name: "softmax"',
                          'layer { name: "softmax" include { phase: TRAIN }')
    prototxt = _small_net(tmp_path, text)
    _, _, _, weights = caffe_reference(prototxt, tmp_path, seed=1)
    net, _ = translate(prototxt, weights, is_test=True)
    assert "softmax" not in {op.name for op in net.op}
    state = caffe_pb2.NetState(phase=caffe_pb2.TRAIN)
    net, _ = translate(prototxt, weights, is_test=False, net_state=state)
    assert "softmax" in {op.name for op in net.op}


def test_max_and_slice_operators_the_translator_adds():
    rng = np.random.default_rng(0)
    arrays = {name: rng.normal(size=(3, 4, 5)).astype(np.float32) for name in "abc"}
    for name, value in arrays.items():
        workspace.FeedBlob(name, value)
    workspace.RunOperatorOnce(core.CreateOperator("Max", ["a", "b", "c"], ["m"]))
    np.testing.assert_array_equal(workspace.FetchBlob("m"),
                                  np.maximum.reduce(list(arrays.values())))

    # Caffe2's Slice: a negative index i stands for dim + 1 + i, so -1 runs to the end
    workspace.RunOperatorOnce(core.CreateOperator("Slice", ["a"], ["s"], starts=[0, 1, -3],
                                                  ends=[-1, 3, -1]))
    np.testing.assert_array_equal(workspace.FetchBlob("s"), arrays["a"][:, 1:3, 3:])
    workspace.FeedBlob("starts", np.array([1, 0], np.int32))
    workspace.FeedBlob("ends", np.array([2, -2], np.int32))
    workspace.RunOperatorOnce(core.CreateOperator("Slice", ["a", "starts", "ends"], ["t"]))
    np.testing.assert_array_equal(workspace.FetchBlob("t"), arrays["a"][1:2, :3])


def test_input_dims_shape_the_data_layer_input():
    text = """
    name: "data_layer"
    layer { name: "data" type: "Data" top: "data" top: "label" }
    layer { name: "softmax" type: "Softmax" bottom: "data" top: "prob" }
    """
    param = proto_io.read_net(text)
    net, _ = caffe_translator.TranslateModel(param, None, input_dims=[1, 3, 4, 4])
    assert [op.type for op in net.op] == ["Transpose", "Softmax", "Transpose"]
    assert list(net.external_input) == ["data", "label"]
    assert list(net.external_output) == ["label", "prob"]
    net, _ = caffe_translator.TranslateModel(param, None)  # shapes unknown: Caffe2's Softmax
    assert [op.type for op in net.op] == ["Softmax"]


# -- errors ---------------------------------------------------------------------------------------

def test_unsupported_layer_names_layer_and_type(tmp_path):
    text = """
    name: "spp"
    layer { name: "data" type: "Input" top: "data"
            input_param { shape { dim: 1 dim: 2 dim: 8 dim: 8 } } }
    layer { name: "pyramid" type: "SPP" bottom: "data" top: "spp" spp_param { pyramid_height: 2 } }
    """
    param = proto_io.read_net(text)
    with pytest.raises(NotImplementedError, match="'pyramid'.*SPP"):
        caffe_translator.TranslateModel(param, caffe_pb2.NetParameter())
    stochastic = text.replace('type: "SPP"', 'type: "Pooling"').replace(
        "spp_param { pyramid_height: 2 }", "pooling_param { pool: STOCHASTIC kernel_size: 2 }")
    with pytest.raises(NotImplementedError, match="'pyramid'.*STOCHASTIC"):
        caffe_translator.TranslateModel(proto_io.read_net(stochastic), caffe_pb2.NetParameter())


def test_missing_weights_and_shapes_are_named():
    conv = """
    name: "needs"
    layer { name: "data" type: "Data" top: "data" top: "label" }
    layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
            convolution_param { num_output: 2 kernel_size: 1 } }
    """
    with pytest.raises(ValueError, match="'conv'.*no layer of that name"):
        caffe_translator.TranslateModel(proto_io.read_net(conv), caffe_pb2.NetParameter())
    crop = conv.replace('type: "Convolution"', 'type: "Crop"').replace(
        'bottom: "data" top: "conv"', 'bottom: "data" bottom: "label" top: "conv"')
    with pytest.raises(ValueError, match="'conv'.*input_dims"):
        caffe_translator.TranslateModel(proto_io.read_net(crop), caffe_pb2.NetParameter())


# -- the command line -----------------------------------------------------------------------------

def test_command_line_round_trip_on_lenet(tmp_path):
    prototxt = zoo_file("lenet")
    data, x, expected, weights = caffe_reference(prototxt, tmp_path, seed=11)
    init_pb, predict_pb = tmp_path / "init.pb", tmp_path / "predict.pb"
    done = subprocess.run(
        [sys.executable, "-m", "dragon.vm.caffe2.python.caffe_translator", str(prototxt),
         str(weights), "--init_net", str(init_pb), "--predict_net", str(predict_pb)],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[3])
    assert done.returncode == 0, done.stderr
    init_net, predict_net = caffe2_pb2.NetDef(), caffe2_pb2.NetDef()
    init_net.ParseFromString(init_pb.read_bytes())
    predict_net.ParseFromString(predict_pb.read_bytes())
    assert list(predict_net.external_output) == ["prob"]
    workspace.RunNetOnce(init_pb.read_bytes())
    workspace.FeedBlob(data, x)
    workspace.CreateNet(predict_net)
    workspace.RunNet(predict_net.name)
    assert_close({name: workspace.FetchBlob(name) for name in expected}, expected, "lenet CLI")


def test_command_line_options_and_errors(tmp_path, capsys):
    prototxt = zoo_file("lenet")
    data, x, expected, weights = caffe_reference(prototxt, tmp_path, seed=12)
    init_pb, predict_pb = tmp_path / "init.pb", tmp_path / "predict.pb"
    code = caffe_translator.main([str(prototxt), str(weights), "--init_net", str(init_pb),
                                  "--predict_net", str(predict_pb), "--remove_legacy_pad",
                                  "--input_dims", "1", "1", "28", "28"])
    assert code == 0
    predict_net = caffe2_pb2.NetDef()
    predict_net.ParseFromString(predict_pb.read_bytes())
    # LeNet's poolings divide evenly: without legacy_pad they need no extra padding
    assert all("legacy_pad" not in arguments(op) for op in predict_net.op)
    workspace.RunNetOnce(init_pb.read_bytes())
    workspace.FeedBlob(data, x)
    workspace.RunNetOnce(predict_pb.read_bytes())
    assert_close({n: workspace.FetchBlob(n) for n in expected}, expected, "lenet options")

    assert caffe_translator.main([str(tmp_path / "missing.prototxt"), str(weights)]) == 1
    assert "missing.prototxt" in capsys.readouterr().err
