"""caffe.NetSpec, caffe.layers, caffe.params, caffe.to_proto, as pycaffe programs use them."""
from pathlib import Path

import pytest
from google.protobuf import text_format

import dragon.vm.caffe as caffe
from dragon.vm.caffe import proto_io
from dragon.vm.caffe.net_spec import layers as L, params as P, NetSpec, to_proto, param_name_dict
from dragon.vm.caffe.proto import caffe_pb2

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
LENET = DATA / "caffe" / "examples" / "mnist" / "lenet_train_test.prototxt"
TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST


def lenet_spec(batch_size=64):
    """pycaffe's LeNet example, written with NetSpec (the train phase plus accuracy)."""
    n = NetSpec()
    n.data, n.label = L.Data(batch_size=batch_size, backend=P.Data.LMDB,
                             source="examples/mnist/mnist_train_lmdb",
                             transform_param=dict(scale=0.00390625), ntop=2,
                             include=dict(phase=TRAIN))
    conv = dict(param=[dict(lr_mult=1), dict(lr_mult=2)], stride=1,
                weight_filler=dict(type="xavier"), bias_filler=dict(type="constant"))
    n.conv1 = L.Convolution(n.data, num_output=20, kernel_size=5, **conv)
    n.pool1 = L.Pooling(n.conv1, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    n.conv2 = L.Convolution(n.pool1, num_output=50, kernel_size=5, **conv)
    n.pool2 = L.Pooling(n.conv2, pool=P.Pooling.MAX, kernel_size=2, stride=2)
    fc = dict(param=[dict(lr_mult=1), dict(lr_mult=2)], weight_filler=dict(type="xavier"),
              bias_filler=dict(type="constant"))
    n.ip1 = L.InnerProduct(n.pool2, num_output=500, **fc)
    n.relu1 = L.ReLU(n.ip1, in_place=True)
    n.ip2 = L.InnerProduct(n.relu1, num_output=10, **fc)
    n.accuracy = L.Accuracy(n.ip2, n.label, include=dict(phase=TEST))
    n.loss = L.SoftmaxWithLoss(n.ip2, n.label)
    return n


def _without_test_data(net):
    keep = [layer for layer in net.layer
            if not (layer.type == "Data" and any(r.phase == TEST for r in layer.include))]
    del net.layer[:]
    net.layer.extend(keep)
    return net


def test_lenet_matches_the_example_file():
    if not LENET.is_file():
        pytest.skip(f"the Caffe example {LENET} is absent")
    expected = _without_test_data(proto_io.read_net(str(LENET)))
    expected.ClearField("name")
    built = lenet_spec().to_proto()
    built.layer[0].name = "mnist"    # NetSpec names a layer after its first top
    assert [l.name for l in built.layer] == [l.name for l in expected.layer]
    for got, want in zip(built.layer, expected.layer):
        assert got == want, f"layer {want.name}:\n{got}\n!=\n{want}"


def test_public_names_are_pycaffe_ones():
    assert caffe.NetSpec is NetSpec
    assert caffe.layers is L and caffe.params is P
    assert caffe.to_proto is to_proto


def test_param_names_follow_the_parameter_messages():
    names = param_name_dict()
    assert names["InnerProduct"] == "inner_product"
    assert names["Convolution"] == "convolution"
    assert names["ReLU"] == "relu"
    assert names["Input"] == "input"


def test_kwargs_go_to_the_type_param_or_the_layer():
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[2, 3, 8, 8]))
    n.ip = L.InnerProduct(n.data, num_output=10, loss_weight=0.5, bias_term=False,
                          param=[dict(lr_mult=0, decay_mult=0, name="shared_w")])
    layer = n.to_proto().layer[1]
    assert layer.inner_product_param.num_output == 10
    assert layer.inner_product_param.bias_term is False
    assert list(layer.loss_weight) == [0.5]
    assert layer.param[0].name == "shared_w" and layer.param[0].lr_mult == 0
    assert list(n.to_proto().layer[0].input_param.shape[0].dim) == [2, 3, 8, 8]


def test_repeated_fields_take_lists_and_scalars():
    n = NetSpec()
    n.data = L.Input(shape=[dict(dim=[1, 3, 9, 9])])
    n.conv = L.Convolution(n.data, kernel_size=[3, 5], stride=2, pad=[1, 2], num_output=4)
    p = n.to_proto().layer[1].convolution_param
    assert list(p.kernel_size) == [3, 5] and list(p.stride) == [2] and list(p.pad) == [1, 2]


def test_enums_from_params():
    assert P.Pooling.MAX == caffe_pb2.PoolingParameter.MAX
    assert P.Pooling.AVE == caffe_pb2.PoolingParameter.AVE
    assert P.Eltwise.SUM == caffe_pb2.EltwiseParameter.SUM
    with pytest.raises(AttributeError, match="PoolingParameter has no value 'MEDIAN'"):
        P.Pooling.MEDIAN


def test_in_place_layer_keeps_its_bottom_as_top():
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 4]))
    n.relu = L.ReLU(n.data, in_place=True)
    n.drop = L.Dropout(n.relu, dropout_ratio=0.3, in_place=True)
    layers = n.to_proto().layer
    assert [l.name for l in layers] == ["data", "relu", "drop"]
    assert list(layers[1].top) == ["data"] and list(layers[2].bottom) == ["data"]
    assert layers[2].dropout_param.dropout_ratio == pytest.approx(0.3)


def test_unnamed_tops_get_type_counters_and_ntop():
    data, label = L.Input(shape=[dict(dim=[2, 3]), dict(dim=[2])], ntop=2)
    ip = L.InnerProduct(data, num_output=5)
    loss = L.SoftmaxWithLoss(L.InnerProduct(ip, num_output=3), label)
    net = to_proto(loss)
    assert [l.name for l in net.layer] == ["Input1", "InnerProduct1", "InnerProduct2",
                                           "SoftmaxWithLoss1"]
    assert list(net.layer[0].top) == ["Input1", "Input2"]
    assert list(net.layer[3].bottom) == ["InnerProduct2", "Input2"]


def test_ntop_zero_gives_a_layer_without_tops():
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 2]))
    n.silence = L.Silence(n.data, ntop=0)
    assert isinstance(n.silence, caffe.net_spec.Function)
    layer = n.to_proto().layer[1]
    assert (layer.name, layer.type, list(layer.bottom), list(layer.top)) == \
        ("silence", "Silence", ["data"], [])
    net = to_proto(L.Silence(L.Input(shape=dict(dim=[1])), ntop=0).inputs[0])
    assert [l.name for l in net.layer] == ["Input1"]


def test_netspec_behaves_like_a_dict():
    n = NetSpec()
    n["data"] = L.Input(shape=dict(dim=[1, 2]))
    n.relu = L.ReLU(n["data"])
    assert n.keys() == ["data", "relu"] and len(n.vals()) == 2
    del n["relu"]
    assert n.keys() == ["data"]
    with pytest.raises(AttributeError, match="no top named 'missing'"):
        n.missing


def test_bad_arguments_name_the_layer():
    n = NetSpec()
    n.data = L.Input(shape=dict(dim=[1, 2]))
    n.ip = L.InnerProduct(n.data, num_ouput=10)   # typo
    with pytest.raises(AttributeError, match=r"layer 'ip' \(InnerProduct\).*num_ouput"):
        n.to_proto()
    with pytest.raises(TypeError, match="InnerProduct input 0 is not a Top"):
        L.InnerProduct("data", num_output=1)


def test_text_round_trip_parses_back():
    net = lenet_spec().to_proto()
    net.name = "LeNet"
    text = text_format.MessageToString(net)
    again = proto_io.read_net(text)
    assert again == net


def test_netspec_net_builds():
    n = NetSpec()
    n.data, n.label = L.Input(shape=[dict(dim=[4, 1, 28, 28]), dict(dim=[4])], ntop=2)
    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=8,
                            weight_filler=dict(type="xavier"))
    n.pool1 = L.Pooling(n.conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.ip = L.InnerProduct(n.pool1, num_output=10, weight_filler=dict(type="xavier"))
    n.loss = L.SoftmaxWithLoss(n.ip, n.label)
    net = caffe.Net(n.to_proto(), caffe.TRAIN)
    assert net.blobs["pool1"].data.shape == (4, 8, 12, 12)
    assert net.blobs["ip"].data.shape == (4, 10)
    assert net.outputs == ["loss"]
