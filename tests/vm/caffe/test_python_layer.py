"""Python layers (``type: "Python"``): a module written by the test, run inside plans."""
import textwrap

import numpy as np
import pytest

import dragon
import dragon.vm.caffe as caffe
from dragon.vm.caffe.python_layer import PythonLayerError

MODULE = '''
import numpy as np
import dragon.vm.caffe as caffe

CALLS = []


class EuclideanLoss(caffe.Layer):
    """pycaffe's example loss layer, as users write it."""

    def setup(self, bottom, top):
        if len(bottom) != 2:
            raise Exception("Need two inputs to compute distance.")
        self.scale = float(self.param_str or 1.0)
        CALLS.append(("setup", self.phase))

    def reshape(self, bottom, top):
        self.diff = np.zeros_like(bottom[0].data, dtype=np.float32)
        top[0].reshape(1)
        CALLS.append("reshape")

    def forward(self, bottom, top):
        self.diff[...] = bottom[0].data - bottom[1].data
        top[0].data[...] = self.scale * np.sum(self.diff ** 2) / bottom[0].num / 2.0

    def backward(self, top, propagate_down, bottom):
        for i in range(2):
            if propagate_down[i]:
                sign = 1 if i == 0 else -1
                bottom[i].diff[...] = sign * self.scale * self.diff / bottom[i].num


class Scale(caffe.Layer):
    """A learnable per-feature scale: a Python layer with a param blob."""

    def setup(self, bottom, top):
        self.blobs.add_blob(bottom[0].data.shape[1])
        self.blobs[0].data[...] = 2.0

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data * self.blobs[0].data

    def backward(self, top, propagate_down, bottom):
        self.blobs[0].diff[...] += (top[0].diff * bottom[0].data).sum(0)
        if propagate_down[0]:
            bottom[0].diff[...] = top[0].diff * self.blobs[0].data


class Counter(caffe.Layer):
    """No tops: it only counts forward passes."""

    def setup(self, bottom, top):
        self.count = 0

    def forward(self, bottom, top):
        self.count += 1


class Broken(caffe.Layer):
    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        raise ZeroDivisionError("deliberately")
'''

NET = """
name: "pynet"
layer { name: "in" type: "Input" top: "x" top: "t"
        input_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 3 } } }
layer { name: "ip" type: "InnerProduct" bottom: "x" top: "ip"
        inner_product_param { num_output: 3 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "scale" type: "Python" bottom: "ip" top: "s"
        python_param { module: "%(module)s" layer: "Scale" } }
layer { name: "loss" type: "Python" bottom: "s" bottom: "t" top: "loss"
        python_param { module: "%(module)s" layer: "EuclideanLoss" param_str: "2" }
        loss_weight: 1 }
layer { name: "count" type: "Python" bottom: "x"
        python_param { module: "%(module)s" layer: "Counter" } }
"""


@pytest.fixture
def module(tmp_path, monkeypatch, request):
    name = f"pylayers_{request.node.name.split('[')[0]}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def make(tmp_path, module, text=NET, phase=caffe.TRAIN):
    path = tmp_path / "net.prototxt"
    path.write_text(text % {"module": module})
    return caffe.Net(str(path), phase)


@pytest.mark.parametrize("level", [0, 2])
def test_python_layers_forward_backward_and_params(tmp_path, module, level):
    previous = dragon.config.get_optimization_level()
    dragon.config.set_optimization_level(level)
    try:
        net = make(tmp_path, module)
    finally:
        dragon.config.set_optimization_level(previous)
    import importlib
    mod = importlib.import_module(module)
    assert mod.CALLS[:2] == [("setup", caffe.TRAIN), "reshape"]
    loss_layer = net.layers[net._layer_names.index("loss")]
    assert isinstance(loss_layer, mod.EuclideanLoss) and loss_layer.param_str == "2"
    assert loss_layer.type == "Python"
    assert list(net.params) == ["ip", "scale"]
    np.testing.assert_array_equal(net.params["scale"][0].data, 2.0)
    assert net.layers[net._layer_names.index("scale")].blobs[0] is net.params["scale"][0]
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    net.blobs["x"].data[...], net.blobs["t"].data[...] = x, t
    w = net.params["ip"][0].data.astype(np.float64)
    out = net.forward()
    h = x @ w.T
    s = 2 * h
    loss = float(out["loss"][0])
    assert loss == pytest.approx(2 * np.sum((s - t) ** 2) / 4 / 2, rel=1e-5)
    calls = mod.CALLS.count("reshape")
    net.backward()
    ds = 2 * (s - t) / 4
    np.testing.assert_allclose(net.params["scale"][0].diff, (ds * h).sum(0), rtol=1e-4)
    np.testing.assert_allclose(net.params["ip"][0].diff, (2 * ds).T @ x, rtol=1e-4)
    net.forward()
    assert mod.CALLS.count("reshape") == calls + 1          # reshape runs before each forward
    assert net.layers[net._layer_names.index("count")].count == 2
    net.clear_param_diffs()
    assert net._forward_backward() == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(net.params["scale"][0].diff, (ds * h).sum(0), rtol=1e-4)


def test_python_layer_params_are_saved_and_loaded(tmp_path, module):
    net = make(tmp_path, module)
    net.params["scale"][0].data[...] = [1.0, 3.0, 5.0]
    net.save(str(tmp_path / "w.caffemodel"))
    other = make(tmp_path, module)
    other.copy_from(str(tmp_path / "w.caffemodel"))
    np.testing.assert_array_equal(other.params["scale"][0].data, [1.0, 3.0, 5.0])
    x = np.ones((4, 3), np.float32)
    other.blobs["x"].data[...] = x
    other.forward()
    np.testing.assert_allclose(other.blobs["s"].data, other.blobs["ip"].data * [1, 3, 5])


def test_python_layer_errors_name_the_layer(tmp_path, module):
    text = NET.replace('layer: "Scale"', 'layer: "Broken"')
    net = make(tmp_path, module, text)
    with pytest.raises(PythonLayerError, match=r"Python layer 'scale' \(.*Broken\)\.forward "
                                               r"failed: ZeroDivisionError"):
        net.forward()
    with pytest.raises(AttributeError, match="has no class 'Scal'.*did you mean 'Scale'"):
        make(tmp_path, module, NET.replace('layer: "Scale"', 'layer: "Scal"'))
    with pytest.raises(ImportError, match="cannot import python_param.module 'no_such_module'"):
        make(tmp_path, module, NET.replace('module: "%(module)s" layer: "Scale"',
                                           'module: "no_such_module" layer: "Scale"'))
