"""caffe.Net through pycaffe's API: blobs, forward/backward, splits, filtering, weights I/O.

Small hand-written prototxts check values against numpy; every deploy net of the
shared model zoo builds with Caffe's blob shapes.
"""
from pathlib import Path

import numpy as np
import pytest

import dragon
import dragon.vm.caffe as caffe
from dragon.vm.caffe.proto import caffe_pb2

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
ZOO = DATA / "caffe"
RNG = np.random.default_rng(7)

TINY = """
name: "tiny"
layer { name: "input" type: "Input" top: "data" top: "label"
        input_param { shape { dim: 4 dim: 3 } shape { dim: 4 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        inner_product_param { num_output: 5 weight_filler { type: "gaussian" std: 0.5 }
                              bias_filler { type: "constant" value: 0.1 } } }
layer { name: "relu" type: "ReLU" bottom: "ip" top: "ip" }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""


def make(tmp_path, text, phase=caffe.TRAIN, name="net.prototxt", **kwargs):
    path = tmp_path / name
    path.write_text(text)
    return caffe.Net(str(path), phase, **kwargs)


def feed_tiny(net):
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    y = np.array([0, 1, 2, 4], np.float32)
    net.blobs["data"].data[...] = x
    net.blobs["label"].data[...] = y
    return x, y


def tiny_reference(net, x, y):
    """Loss and the gradients of the tiny net, in float64."""
    w, b = (p.data.astype(np.float64) for p in net.params["ip"])
    z = x @ w.T + b
    r = np.maximum(z, 0)
    e = np.exp(r - r.max(1, keepdims=True))
    p = e / e.sum(1, keepdims=True)
    labels = y.astype(int)
    loss = -np.log(p[np.arange(4), labels]).mean()
    dr = p.copy()
    dr[np.arange(4), labels] -= 1
    dz = dr / 4 * (z > 0)
    return loss, dz, dz.T @ x, dz.sum(0), dz @ w


@pytest.fixture(autouse=True)
def _level():
    previous = dragon.config.get_optimization_level()
    yield
    dragon.config.set_optimization_level(previous)


# -- the pycaffe surface ---------------------------------------------------------------------------

def test_blobs_are_live_arrays_fed_and_read_around_forward(tmp_path):
    net = make(tmp_path, TINY)
    assert net.inputs == ["data", "label"] and net.outputs == ["loss"]
    assert net._layer_names == ["input", "ip", "relu", "loss"]
    assert list(net.blobs) == net._blob_names == ["data", "label", "ip", "loss"]
    assert list(net.params) == ["ip"] and [b.shape for b in net.params["ip"]] == [(5, 3), (5,)]
    assert net.top_names["relu"] == ["ip"] and net.bottom_names["loss"] == ["ip", "label"]
    assert dict(net.blob_loss_weights) == {"data": 0, "label": 0, "ip": 0, "loss": 1}
    assert [layer.type for layer in net.layers] == ["Input", "InnerProduct", "ReLU",
                                                    "SoftmaxWithLoss"]
    assert net.layer_dict["ip"].blobs[0] is net.params["ip"][0]
    assert isinstance(net.layers[0], caffe.Layer)
    data_view, ip_view = net.blobs["data"].data, net.blobs["ip"].data
    x, y = feed_tiny(net)
    out = net.forward()
    loss, dz, *_ = tiny_reference(net, x, y)
    assert out["loss"] == pytest.approx(loss, rel=1e-5)
    w, b = net.params["ip"][0].data, net.params["ip"][1].data
    np.testing.assert_allclose(ip_view, np.maximum(x @ w.T + b, 0), rtol=1e-5, atol=1e-6)
    assert ip_view is net.blobs["ip"].data and data_view is net.blobs["data"].data
    blob = net.blobs["data"]
    assert (blob.num, blob.channels, blob.height, blob.width, blob.count) == (4, 3, 1, 1, 12)
    np.testing.assert_array_equal(net.params["ip"][1].data, np.float32(0.1))


def test_legacy_constructor_and_keyword_inputs(tmp_path):
    net = make(tmp_path, TINY)
    net.save(str(tmp_path / "w.caffemodel"))
    legacy = caffe.Net(str(tmp_path / "net.prototxt"), str(tmp_path / "w.caffemodel"), caffe.TEST)
    np.testing.assert_array_equal(legacy.params["ip"][0].data, net.params["ip"][0].data)
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    out = legacy.forward(data=x, label=np.zeros(4, np.float32))
    np.testing.assert_array_equal(legacy.blobs["data"].data, x)
    assert set(out) == {"loss"}
    with pytest.raises(ValueError, match="do not match"):
        legacy.forward(data=x)


def test_backward_matches_numpy_and_param_diffs_accumulate(tmp_path):
    net = make(tmp_path, TINY.replace('name: "tiny"', 'name: "tiny" force_backward: true'))
    x, y = feed_tiny(net)
    net.forward()
    diffs = net.backward()
    loss, dz, dw, db, dx = tiny_reference(net, x, y)
    np.testing.assert_allclose(net.params["ip"][0].diff, dw, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(net.params["ip"][1].diff, db, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(diffs["data"], dx, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(net.blobs["ip"].diff, dz, rtol=1e-4, atol=1e-6)
    assert set(diffs) == {"data", "label"} and net.blobs["loss"].diff == 1
    net.backward()
    np.testing.assert_allclose(net.params["ip"][1].diff, 2 * db, rtol=1e-4, atol=1e-6)
    net.clear_param_diffs()
    assert not net.params["ip"][0].diff.any()
    assert net._forward_backward() == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(net.params["ip"][0].diff, dw, rtol=1e-4, atol=1e-6)


def test_without_force_backward_input_diffs_stay_zero(tmp_path):
    net = make(tmp_path, TINY)
    feed_tiny(net)
    net.forward()
    assert not net.backward()["data"].any()
    assert net.params["ip"][0].diff.any()


CHAIN = """
name: "chain"
layer { name: "input" type: "Input" top: "x" top: "t"
        input_param { shape { dim: 2 dim: 3 } shape { dim: 2 dim: 2 } } }
layer { name: "ip1" type: "InnerProduct" bottom: "x" top: "a"
        inner_product_param { num_output: 4 bias_term: false
                              weight_filler { type: "gaussian" std: 1 } } }
layer { name: "relu1" type: "ReLU" bottom: "a" top: "a" }
layer { name: "ip2" type: "InnerProduct" bottom: "a" top: "b"
        inner_product_param { num_output: 2 bias_term: false
                              weight_filler { type: "gaussian" std: 1 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "b" bottom: "t" top: "loss" }
"""


def test_forward_and_backward_ranges(tmp_path):
    net = make(tmp_path, CHAIN)
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    net.blobs["x"].data[...] = x
    w1, w2 = net.params["ip1"][0].data, net.params["ip2"][0].data
    out = net.forward(end="ip1")
    assert set(out) == {"a"}
    np.testing.assert_allclose(out["a"], x @ w1.T, rtol=1e-5, atol=1e-6)   # before the ReLU
    net.forward(start="relu1", end="relu1")
    np.testing.assert_allclose(net.blobs["a"].data, np.maximum(x @ w1.T, 0), rtol=1e-5,
                               atol=1e-6)
    net.blobs["a"].data[...] = 1.0             # ip2 reads the blob as the program left it
    out = net.forward(start="ip2", blobs=["b"])
    assert set(out) == {"loss", "b"}
    np.testing.assert_allclose(out["b"], np.ones((2, 4)) @ w2.T, rtol=1e-5, atol=1e-6)
    net.blobs["b"].diff[...] = 1.0             # backward from ip2 reads b's diff as set
    net.clear_param_diffs()
    diffs = net.backward(start="ip2", end="ip2")
    da = np.ones((2, 2)) @ w2
    np.testing.assert_allclose(diffs["a"], da, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.params["ip2"][0].diff, np.full((2, 4), 2.0), rtol=1e-5)
    assert not net.params["ip1"][0].diff.any()
    diffs = net.backward(start="relu1", end="ip1")
    assert set(diffs) == {"x"}
    np.testing.assert_allclose(net.params["ip1"][0].diff, da.T @ x, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="no layer 'ip3'"):
        net.forward(start="ip3")


def test_split_layers_get_caffes_names_and_sum_gradients(tmp_path):
    text = """
    name: "split"
    force_backward: true
    layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "double" type: "Eltwise" bottom: "x" bottom: "x" top: "y"
            eltwise_param { operation: SUM } }
    layer { name: "sq" type: "Eltwise" bottom: "x" bottom: "y" top: "loss"
            eltwise_param { operation: PROD } loss_weight: 1 }
    """
    net = make(tmp_path, text)
    assert net._layer_names == ["in", "x_in_0_split", "double", "sq"]
    assert net.top_names["x_in_0_split"] == ["x_in_0_split_0", "x_in_0_split_1",
                                             "x_in_0_split_2"]
    assert net.bottom_names["double"] == ["x_in_0_split_0", "x_in_0_split_1"]
    assert net.layers[1].type == "Split"
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    out = net.forward(x=x)
    np.testing.assert_allclose(out["loss"], 2 * x * x, rtol=1e-6)
    diffs = net.backward()
    np.testing.assert_allclose(diffs["x"], 4 * x, rtol=1e-5)     # d(2x^2)/dx
    np.testing.assert_allclose(net.blobs["x_in_0_split_2"].diff, 2 * x, rtol=1e-5)


def test_split_of_a_weighted_top_carries_its_loss_weight(tmp_path):
    text = """
    name: "lossplit"
    layer { name: "in" type: "Input" top: "a" input_param { shape { dim: 2 } } }
    layer { name: "ip" type: "InnerProduct" bottom: "a" top: "h" loss_weight: 3
            inner_product_param { num_output: 2 weight_filler { type: "constant" value: 1 } } }
    layer { name: "p" type: "Power" bottom: "h" top: "q" power_param { scale: 2 } loss_weight: 1 }
    """
    net = make(tmp_path, text.replace('shape { dim: 2 }', 'shape { dim: 1 dim: 2 }'))
    assert net._layer_names == ["in", "ip", "h_ip_0_split", "p"]
    assert net.top_names["h_ip_0_split"] == ["h_ip_0_split_0", "h_ip_0_split_1"]
    assert net.blob_loss_weights["h_ip_0_split_0"] == 3 and net.blob_loss_weights["h"] == 0
    assert net.blob_loss_weights["h_ip_0_split_1"] == 0 and net.blob_loss_weights["q"] == 1
    assert net.outputs == ["h_ip_0_split_0", "q"]
    net.blobs["a"].data[...] = [[1.0, 2.0]]
    assert net._forward_backward() == pytest.approx(5 * 2 * 3.0)   # 3 * h + 2 * h, h = (3, 3)
    np.testing.assert_allclose(net.params["ip"][0].diff, np.full((2, 2), 5.0) * [[1.0, 2.0]])


def test_phase_level_and_stage_rules(tmp_path):
    text = """
    name: "rules"
    layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }
    layer { name: "train" type: "Power" bottom: "x" top: "t" include { phase: TRAIN } }
    layer { name: "test" type: "Power" bottom: "x" top: "t" include { phase: TEST } }
    layer { name: "deep" type: "Power" bottom: "x" top: "d" include { min_level: 2 } }
    layer { name: "shallow" type: "Power" bottom: "x" top: "s" exclude { min_level: 1 } }
    layer { name: "staged" type: "Power" bottom: "x" top: "st"
            include { stage: "a" stage: "b" } }
    layer { name: "not_b" type: "Power" bottom: "x" top: "nb" include { not_stage: "b" } }
    """
    names = lambda net: [n for n in net._layer_names if "split" not in n]  # noqa: E731
    assert names(make(tmp_path, text, caffe.TRAIN)) == ["in", "train", "shallow", "not_b"]
    assert names(make(tmp_path, text, caffe.TEST, level=2)) == ["in", "test", "deep", "not_b"]
    net = make(tmp_path, text, caffe.TEST, stages=["a", "b"])
    assert names(net) == ["in", "test", "shallow", "staged"]
    assert names(make(tmp_path, text, caffe.TEST, stages=["a"])) == ["in", "test", "shallow",
                                                                     "not_b"]


def test_in_place_batchnorm_scale_relu_chain_gradients(tmp_path):
    text = """
    name: "bnchain"
    force_backward: true
    layer { name: "in" type: "Input" top: "x" top: "t"
            input_param { shape { dim: 4 dim: 2 dim: 3 dim: 3 }
                          shape { dim: 4 dim: 3 dim: 2 dim: 2 } } }
    layer { name: "conv" type: "Convolution" bottom: "x" top: "c"
            convolution_param { num_output: 3 kernel_size: 2
                                weight_filler { type: "gaussian" std: 0.5 } } }
    layer { name: "bn" type: "BatchNorm" bottom: "c" top: "c"
            batch_norm_param { use_global_stats: false } }
    layer { name: "scale" type: "Scale" bottom: "c" top: "c"
            scale_param { bias_term: true filler { type: "uniform" min: 0.5 max: 1.5 } } }
    layer { name: "relu" type: "ReLU" bottom: "c" top: "c" }
    layer { name: "loss" type: "EuclideanLoss" bottom: "c" bottom: "t" top: "loss" }
    """
    net = make(tmp_path, text)
    net.blobs["x"].data[...] = RNG.standard_normal((4, 2, 3, 3))
    net.blobs["t"].data[...] = RNG.standard_normal((4, 3, 2, 2))
    net.forward()
    for p in net.params["bn"]:
        p.data[...] = 0     # the running statistics do not affect a TRAIN forward pass
    net.clear_param_diffs()
    net.forward()
    diffs = net.backward()
    checks = [("x", net.blobs["x"].data, diffs["x"]),
              ("conv w", net.params["conv"][0].data, net.params["conv"][0].diff),
              ("scale", net.params["scale"][0].data, net.params["scale"][0].diff)]
    for label, data, analytic in checks:
        analytic = analytic.copy()
        flat, grad = data.reshape(-1), analytic.reshape(-1)
        for i in RNG.choice(flat.size, size=min(4, flat.size), replace=False):
            keep = flat[i]
            flat[i] = keep + 1e-2
            up = float(net.forward()["loss"])
            flat[i] = keep - 1e-2
            down = float(net.forward()["loss"])
            flat[i] = keep
            numeric = (up - down) / 2e-2
            assert abs(numeric - grad[i]) <= 2e-3 + 3e-2 * abs(grad[i]), (label, i, numeric,
                                                                          grad[i])


def test_params_shared_by_name_share_data_and_sum_gradients(tmp_path):
    text = """
    name: "siamese"
    layer { name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 2 dim: 3 } } }
    layer { name: "fa" type: "InnerProduct" bottom: "a" top: "ya" param { name: "w" lr_mult: 1 }
            inner_product_param { num_output: 2 bias_term: false
                                  weight_filler { type: "gaussian" std: 1 } } }
    layer { name: "fb" type: "InnerProduct" bottom: "b" top: "yb" param { name: "w" lr_mult: 1 }
            inner_product_param { num_output: 2 bias_term: false } }
    layer { name: "loss" type: "EuclideanLoss" bottom: "ya" bottom: "yb" top: "loss" }
    """
    net = make(tmp_path, text)
    wa, wb = net.params["fa"][0], net.params["fb"][0]
    assert wa.data is wb.data and wa.diff is wb.diff
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3))
    net.blobs["a"].data[...], net.blobs["b"].data[...] = a, b
    net.forward()
    net.backward()
    w = wa.data.astype(np.float64)
    d = (a - b) @ w.T / 2                      # dloss/dya; dloss/dyb = -d
    np.testing.assert_allclose(wa.diff, d.T @ a - d.T @ b, rtol=1e-4, atol=1e-6)
    flags = net._param_owner_flags()
    assert flags["fa"] == [True] and flags["fb"] == [False]


def test_loss_weight_and_propagate_down(tmp_path):
    text = """
    name: "weights"
    layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 3 } } }
    layer { name: "sa" type: "Scale" bottom: "x" top: "a"
            scale_param { axis: 0 filler { type: "constant" value: 1 } } }
    layer { name: "sb" type: "Scale" bottom: "x" top: "b"
            scale_param { axis: 0 filler { type: "constant" value: 2 } } }
    layer { name: "loss" type: "EuclideanLoss" bottom: "a" bottom: "b" top: "loss"
            loss_weight: 4 propagate_down: true propagate_down: false }
    layer { name: "extra" type: "Power" bottom: "x" top: "p" loss_weight: 0.5 }
    """
    net = make(tmp_path, text)
    x = np.array([1.0, 2.0, 3.0], np.float32)
    net.blobs["x"].data[...] = x
    loss = np.sum(x ** 2) / 3 / 2                  # a - b = -x; Caffe divides by num (3)
    assert net._forward_backward() == pytest.approx(4 * loss + 0.5 * x.sum(), rel=1e-5)
    np.testing.assert_allclose(net.params["sa"][0].diff, 4 * (-x) / 3 * x, rtol=1e-5)
    assert not net.params["sb"][0].diff.any()       # propagate_down: false stops it
    np.testing.assert_allclose(net.blobs["a"].diff, 4 * (-x) / 3, rtol=1e-5)
    assert net.blob_loss_weights["loss"] == 4 and net.blob_loss_weights["p"] == 0.5
    # force_backward overrides propagate_down where the layer allows it, as in Caffe
    forced = make(tmp_path, text.replace('name: "weights"', 'name: "weights" force_backward: true'),
                  name="forced.prototxt")
    forced.blobs["x"].data[...] = x
    forced._forward_backward()
    assert forced.params["sb"][0].diff.any()


# -- weights ---------------------------------------------------------------------------------------

CONV = """
name: "convnet"
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "xavier" }
                            bias_filler { type: "constant" value: 0.2 } } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"
        inner_product_param { num_output: 5 weight_filler { type: "xavier" } } }
"""


def test_save_and_copy_from_round_trip_including_legacy_shapes(tmp_path):
    net = make(tmp_path, CONV, caffe.TEST)
    for blobs in net.params.values():
        for b in blobs:
            b.data[...] = RNG.standard_normal(b.shape)
    net.params["bn"][1].data[...] = RNG.uniform(0.5, 2.0, 4)     # variances
    net.params["bn"][2].data[...] = 1.0
    net.save(str(tmp_path / "w.caffemodel"))
    other = make(tmp_path, CONV, caffe.TEST, name="other.prototxt")
    other.copy_from(str(tmp_path / "w.caffemodel"))
    for name, blobs in net.params.items():
        for b, c in zip(blobs, other.params[name]):
            np.testing.assert_array_equal(b.data, c.data)
    x = RNG.standard_normal((2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(net.forward(data=x)["fc"], other.forward(data=x)["fc"], rtol=1e-6)
    # An old caffemodel: V1 layers, 4-d legacy blob shapes for the InnerProduct weights.
    legacy = caffe_pb2.NetParameter(name="old")
    v1 = legacy.layers.add(name="fc", type=caffe_pb2.V1LayerParameter.INNER_PRODUCT)
    blob = v1.blobs.add(num=1, channels=1, height=5, width=4 * 6 * 6)
    values = RNG.standard_normal(5 * 144).astype(np.float32)
    blob.data.extend(values.tolist())
    bias = v1.blobs.add(num=1, channels=1, height=1, width=5)
    bias.data.extend([1, 2, 3, 4, 5])
    legacy.layers.add(name="unknown_layer", type=caffe_pb2.V1LayerParameter.RELU)
    (tmp_path / "old.caffemodel").write_bytes(legacy.SerializeToString())
    other.copy_from(str(tmp_path / "old.caffemodel"))
    np.testing.assert_array_equal(other.params["fc"][0].data.ravel(), values)
    np.testing.assert_array_equal(other.params["fc"][1].data, [1, 2, 3, 4, 5])
    weights = caffe.Net(str(tmp_path / "net.prototxt"), caffe.TEST,
                        weights=str(tmp_path / "w.caffemodel"))
    np.testing.assert_array_equal(weights.params["conv"][0].data, net.params["conv"][0].data)


def test_saved_model_has_every_layer_and_shaped_blobs(tmp_path):
    net = make(tmp_path, CONV, caffe.TEST)
    net.save(str(tmp_path / "w.caffemodel"))
    saved = caffe_pb2.NetParameter()
    saved.ParseFromString((tmp_path / "w.caffemodel").read_bytes())
    assert [layer.name for layer in saved.layer] == net._layer_names
    conv = saved.layer[1]
    assert list(conv.blobs[0].shape.dim) == [4, 3, 3, 3] and len(conv.blobs[0].data) == 108
    assert len(saved.layer[2].blobs) == 3 and saved.layer[2].phase == caffe.TEST


def test_hdf5_round_trip(tmp_path):
    pytest.importorskip("h5py", reason="h5py (the data extra) is not installed")
    import h5py
    net = make(tmp_path, CONV, caffe.TEST)
    net.save_hdf5(str(tmp_path / "w.h5"))
    with h5py.File(tmp_path / "w.h5", "r") as f:
        assert sorted(f["data"]) == sorted(net._layer_names)
        assert f["data/conv/0"].shape == (4, 3, 3, 3) and len(f["data/in"]) == 0
    other = make(tmp_path, CONV, caffe.TEST, name="other.prototxt")
    other.load_hdf5(str(tmp_path / "w.h5"))
    np.testing.assert_array_equal(other.params["fc"][0].data, net.params["fc"][0].data)
    third = make(tmp_path, CONV, caffe.TEST, name="third.prototxt")
    third.copy_from(str(tmp_path / "w.h5"))          # copy_from recognises HDF5
    np.testing.assert_array_equal(third.params["conv"][0].data, net.params["conv"][0].data)


def test_share_with_uses_the_other_nets_params(tmp_path):
    train = make(tmp_path, CONV, caffe.TRAIN)
    test = make(tmp_path, CONV, caffe.TEST, name="test.prototxt")
    test.share_with(train)
    assert test.params["conv"][0].data is train.params["conv"][0].data
    assert test.params["conv"][0].diff is not train.params["conv"][0].diff
    train.params["fc"][0].data[...] = 0.5
    x = RNG.standard_normal((2, 3, 8, 8)).astype(np.float32)
    out = test.forward(data=x)["fc"]
    conv = test.blobs["conv"].data.reshape(2, -1)
    np.testing.assert_allclose(out, conv.sum(1, keepdims=True) * np.full((1, 5), 0.5), rtol=1e-4)


# -- batching, memory data, reshaping --------------------------------------------------------------

def test_forward_all_pads_the_last_batch_and_cuts_it(tmp_path):
    net = make(tmp_path, CONV, caffe.TEST)
    x = RNG.standard_normal((5, 3, 8, 8)).astype(np.float32)
    out = net.forward_all(data=x, blobs=["conv"])
    assert out["fc"].shape == (5, 5) and out["conv"].shape == (5, 4, 6, 6)
    for i in range(0, 4, 2):
        np.testing.assert_allclose(out["fc"][i:i + 2], net.forward(data=x[i:i + 2])["fc"],
                                   rtol=1e-5)
    text = CONV.replace('name: "convnet"', 'name: "convnet" force_backward: true')
    net = make(tmp_path, text, caffe.TEST, name="fb.prototxt")
    outs, diffs = net.forward_backward_all(data=x, fc=np.ones((5, 5), np.float32))
    assert outs["fc"].shape == (5, 5) and diffs["data"].shape == (5, 3, 8, 8)
    assert diffs["data"].any()


def test_set_input_arrays_serves_memory_data_batches(tmp_path):
    text = """
    name: "memory"
    layer { name: "mem" type: "MemoryData" top: "data" top: "label"
            memory_data_param { batch_size: 2 channels: 1 height: 2 width: 2 } }
    layer { name: "p" type: "Power" bottom: "data" top: "p" }
    layer { name: "silence" type: "Silence" bottom: "label" }
    """
    net = make(tmp_path, text, caffe.TEST)
    data = np.arange(24, dtype=np.float32).reshape(6, 1, 2, 2)
    labels = np.arange(6, dtype=np.float32)
    net.set_input_arrays(data, labels)
    for start in (0, 2, 4, 0):
        net.forward()
        np.testing.assert_array_equal(net.blobs["p"].data, data[start:start + 2])
        np.testing.assert_array_equal(net.blobs["label"].data, labels[start:start + 2])
    with pytest.raises(ValueError, match="multiple of the batch size"):
        net.set_input_arrays(data[:3], labels[:3])
    with pytest.raises(ValueError, match="does not fit"):
        net.set_input_arrays(np.zeros((2, 1, 3, 3), np.float32), labels[:2])


def test_reshaping_an_input_blob_reshapes_the_net(tmp_path):
    net = make(tmp_path, CONV.replace("InnerProduct", "Pooling").replace(
        "inner_product_param { num_output: 5 weight_filler { type: \"xavier\" } }",
        "pooling_param { global_pooling: true }"), caffe.TEST)
    assert net.blobs["fc"].shape == (2, 4, 1, 1)
    net.blobs["data"].reshape(3, 3, 10, 12)
    net.reshape()
    assert net.blobs["conv"].shape == (3, 4, 8, 10)
    x = RNG.standard_normal((3, 3, 10, 12)).astype(np.float32)
    net.blobs["data"].data[...] = x
    out = net.forward()["fc"]
    np.testing.assert_allclose(out.ravel(), net.blobs["conv"].data.max(axis=(2, 3)).ravel())
    net.blobs["data"].reshape(1, 3, 5, 5)        # forward() alone re-infers too
    assert net.forward()["fc"].shape == (1, 4, 1, 1)


def test_optimization_level_3_keeps_outputs_losses_params_and_inputs(tmp_path):
    dragon.config.set_optimization_level(2)
    reference = make(tmp_path, TINY)
    x, y = feed_tiny(reference)
    reference.forward()
    reference.backward()
    dragon.config.set_optimization_level(3)
    net = make(tmp_path, TINY, name="l3.prototxt")
    for name in ("ip",):
        for a, b in zip(net.params[name], reference.params[name]):
            a.data[...] = b.data
    net.blobs["data"].data[...], net.blobs["label"].data[...] = x, y
    assert net.forward()["loss"] == pytest.approx(float(reference.blobs["loss"].data), rel=1e-6)
    with pytest.raises(RuntimeError, match="level 3.*set_optimization_level"):
        net.blobs["ip"].data
    net.backward()
    np.testing.assert_allclose(net.params["ip"][0].diff, reference.params["ip"][0].diff,
                               rtol=1e-5)
    assert net.blobs["data"].diff.shape == (4, 3)
    with pytest.raises(RuntimeError, match="level 2 or lower"):
        net.forward(end="ip")


# -- the model zoo ---------------------------------------------------------------------------------

ZOO_SHAPES = {
    "models/bvlc_alexnet/deploy.prototxt":
        {"data": (10, 3, 227, 227), "conv1": (10, 96, 55, 55), "pool5": (10, 256, 6, 6),
         "fc8": (10, 1000), "prob": (10, 1000)},
    "models/bvlc_reference_caffenet/deploy.prototxt":
        {"conv1": (10, 96, 55, 55), "pool1": (10, 96, 27, 27), "fc6": (10, 4096),
         "prob": (10, 1000)},
    "models/bvlc_googlenet/deploy.prototxt":
        {"inception_3a/output": (10, 256, 28, 28), "pool5/7x7_s1": (10, 1024, 1, 1),
         "loss3/classifier": (10, 1000), "prob": (10, 1000)},
    "models/resnet/ResNet-50-deploy.prototxt":
        {"conv1": (1, 64, 112, 112), "pool1": (1, 64, 56, 56), "res2a": (1, 256, 56, 56),
         "res5c": (1, 2048, 7, 7), "pool5": (1, 2048, 1, 1), "fc1000": (1, 1000)},
    "models/squeezenet/squeezenet_v1.1_deploy.prototxt":
        {"conv1": (10, 64, 113, 113), "pool1": (10, 64, 56, 56), "fire2/concat": (10, 128, 56, 56),
         "pool10": (10, 1000, 1, 1), "prob": (10, 1000, 1, 1)},
    "models/mobilenet/mobilenet_deploy.prototxt":
        {"conv1": (1, 32, 112, 112), "conv6/sep": (1, 1024, 7, 7), "pool6": (1, 1024, 1, 1),
         "fc7": (1, 1000, 1, 1)},
    "examples/mnist/lenet.prototxt":
        {"data": (64, 1, 28, 28), "pool2": (64, 50, 4, 4), "ip1": (64, 500), "prob": (64, 10)},
    "examples/cifar10/cifar10_quick.prototxt":
        {"data": (1, 3, 32, 32), "pool1": (1, 32, 16, 16), "ip1": (1, 64), "prob": (1, 10)},
    "examples/cifar10/cifar10_full.prototxt":
        {"pool3": (1, 64, 4, 4), "ip1": (1, 10), "prob": (1, 10)},
}


@pytest.mark.parametrize("relative", sorted(ZOO_SHAPES), ids=lambda p: p.split("/")[-2])
def test_zoo_deploy_nets_build_with_caffes_blob_shapes(relative):
    path = ZOO / relative
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared Caffe model zoo files are needed")
    net = caffe.Net(str(path), caffe.TEST)
    for name, shape in ZOO_SHAPES[relative].items():
        assert net.blobs[name].shape == shape, name
    assert net.inputs == ["data"] and net.outputs == ["prob"]
    splits = [n for n in net._layer_names if n.endswith("_split")]
    if "resnet" in relative:
        assert "res2a_res2a_relu_0_split" in splits
        assert net.top_names["res2a_res2a_relu_0_split"] == ["res2a_res2a_relu_0_split_0",
                                                             "res2a_res2a_relu_0_split_1"]
        assert [b.shape for b in net.params["bn_conv1"]] == [(64,), (64,), (1,)]
    if "googlenet" in relative:
        assert "pool2/3x3_s2_pool2/3x3_s2_0_split" in splits
