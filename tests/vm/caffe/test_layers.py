"""Every Caffe layer type through the pycaffe API on tiny nets.

Forward results are checked against numpy references written from Caffe's layer
semantics; backward results (bottom and parameter diffs from ``Net.backward``)
against central finite differences of forward passes.
"""
import math

import numpy as np
import pytest

import dragon
import dragon.vm.caffe as caffe
from dragon.vm.caffe.proto import caffe_pb2

RNG = np.random.default_rng(20240601)


# -- building and running tiny nets ---------------------------------------------------------------

def build(tmp_path, body, inputs, phase=None, name="net.prototxt"):
    """A net with one Input layer per entry of ``inputs`` ({name: shape}) followed by ``body``."""
    lines = ["name: 'tiny'", "force_backward: true"]
    for top, shape in inputs.items():
        dims = " ".join(f"dim: {d}" for d in shape)
        lines.append(f'layer {{ name: "{top}" type: "Input" top: "{top}" '
                     f"input_param {{ shape {{ {dims} }} }} }}")
    lines.append(body)
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return caffe.Net(str(path), caffe.TEST if phase is None else phase)


def run(tmp_path, body, inputs, params=None, phase=None):
    """Build, feed ``inputs`` ({name: array}), set ``params`` ({(layer, i): array}), forward."""
    net = build(tmp_path, body, {k: v.shape for k, v in inputs.items()}, phase)
    for k, v in inputs.items():
        net.blobs[k].data[...] = v
    for (layer, i), v in (params or {}).items():
        net.params[layer][i].data[...] = v
    net.forward()
    return net


def objective_weights(net, seed=0):
    """Loss tops weigh by their loss weight; other outputs by fixed random arrays."""
    rng = np.random.default_rng(seed)
    losses = {n: w for n, w in net.blob_loss_weights.items() if w and n in net.outputs}
    if losses:
        return losses, True
    return {n: rng.standard_normal(net.blobs[n].data.shape).astype("float32")
            for n in net.outputs}, False


def objective(net, weights):
    return sum(float(np.sum(np.asarray(w, "float64") * net.blobs[n].data)) for n, w in weights.items())


def check_backward(net, inputs=(), params=True, reseed=None, eps=1e-2, rtol=3e-2, atol=2e-3,
                   samples=6, seed=0):
    """Net.backward's diffs against central differences of forward passes."""
    weights, is_loss = objective_weights(net, seed)

    def forward():
        if reseed is not None:
            reseed()
        net.forward()

    forward()
    for blobs in net.params.values():
        for b in blobs:
            b.diff[...] = 0
    if is_loss:
        net.backward()
    else:
        net.backward(**weights)
    targets = [(f"blob {n}", net.blobs[n]) for n in inputs]
    if params:
        targets += [(f"param {layer}[{i}]", b) for layer, blobs in net.params.items()
                    for i, b in enumerate(blobs)]
    analytic = {label: b.diff.copy() for label, b in targets}
    rng = np.random.default_rng(seed + 1)
    checked = 0
    for label, blob in targets:
        data = blob.data
        flat = data.reshape(-1)
        picks = rng.choice(flat.size, size=min(samples, flat.size), replace=False)
        grad = analytic[label].reshape(-1)
        scale = float(np.abs(grad).max()) if grad.size else 0.0
        for index in picks:
            keep = flat[index].copy()
            flat[index] = keep + eps
            forward()
            up = objective(net, weights)
            flat[index] = keep - eps
            forward()
            down = objective(net, weights)
            flat[index] = keep
            numeric = (up - down) / (2 * eps)
            assert abs(numeric - grad[index]) <= atol + 1e-2 * scale + rtol * abs(grad[index]), (
                f"{label} at flat index {index}: numeric {numeric:.6g} vs backward "
                f"{grad[index]:.6g}")
            checked += 1
    assert checked > 0
    forward()


def away_from(values, points=(0.0,), gap=0.05):
    """``values`` nudged at least ``gap`` away from the kinks at ``points``."""
    values = np.array(values, dtype="float32")
    for p in points:
        near = np.abs(values - p) < gap
        values[near] = p + np.where(values[near] >= p, gap, -gap)
    return values


def distinct(shape, low=-1.0, high=1.0, rng=RNG):
    """Values at least (high - low) / size apart: max and sort ties cannot occur."""
    size = int(np.prod(shape))
    return rng.permutation(np.linspace(low, high, size)).reshape(shape).astype("float32")


def normal(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype("float32")


def uniform(*shape, low=-1.0, high=1.0):
    return RNG.uniform(low, high, shape).astype("float32")


def close(actual, expected, tol=1e-5):
    expected = np.asarray(expected, dtype="float64")
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * max(1.0, np.abs(expected).max(
        initial=0.0)))


# -- numpy references of Caffe's layers -----------------------------------------------------------

def conv_ref(x, w, b=None, stride=(1, 1), pad=(0, 0), dilation=(1, 1), group=1):
    n, c, h, width = x.shape
    c_out, c_group, kh, kw = w.shape
    xp = np.pad(x.astype("float64"), ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    oh = (h + 2 * pad[0] - (dilation[0] * (kh - 1) + 1)) // stride[0] + 1
    ow = (width + 2 * pad[1] - (dilation[1] * (kw - 1) + 1)) // stride[1] + 1
    y = np.zeros((n, c_out, oh, ow))
    out_group = c_out // group
    for i in range(kh):
        for j in range(kw):
            r, s = i * dilation[0], j * dilation[1]
            patch = xp[:, :, r:r + stride[0] * (oh - 1) + 1:stride[0],
                       s:s + stride[1] * (ow - 1) + 1:stride[1]]
            for g in range(group):
                y[:, g * out_group:(g + 1) * out_group] += np.einsum(
                    "nchw,oc->nohw", patch[:, g * c_group:(g + 1) * c_group],
                    w[g * out_group:(g + 1) * out_group, :, i, j])
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def deconv_ref(x, w, b=None, stride=(1, 1), pad=(0, 0), dilation=(1, 1), group=1):
    n, c_in, h, width = x.shape
    _, out_group, kh, kw = w.shape
    fh = (h - 1) * stride[0] + dilation[0] * (kh - 1) + 1
    fw = (width - 1) * stride[1] + dilation[1] * (kw - 1) + 1
    y = np.zeros((n, out_group * group, fh, fw))
    in_group = c_in // group
    for i in range(kh):
        for j in range(kw):
            r, s = i * dilation[0], j * dilation[1]
            for g in range(group):
                y[:, g * out_group:(g + 1) * out_group, r:r + stride[0] * (h - 1) + 1:stride[0],
                  s:s + stride[1] * (width - 1) + 1:stride[1]] += np.einsum(
                    "nchw,co->nohw", x[:, g * in_group:(g + 1) * in_group],
                    w[g * in_group:(g + 1) * in_group, :, i, j])
    y = y[:, :, pad[0]:fh - pad[0], pad[1]:fw - pad[1]]
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def pool_ref(x, kernel, stride, pad, mode, ceil=True):
    n, c, h, w = x.shape
    out = []
    for size, k, s, p in zip((h, w), kernel, stride, pad):
        span = size + 2 * p - k
        count = (-(-span // s) if ceil else span // s) + 1
        if p and (count - 1) * s >= size + p:
            count -= 1
        out.append(count)
    y = np.zeros((n, c, out[0], out[1]))
    for i in range(out[0]):
        for j in range(out[1]):
            hs, ws = i * stride[0] - pad[0], j * stride[1] - pad[1]
            he, we = min(hs + kernel[0], h + pad[0]), min(ws + kernel[1], w + pad[1])
            area = (he - hs) * (we - ws)
            hs, ws, he, we = max(hs, 0), max(ws, 0), min(he, h), min(we, w)
            window = x[:, :, hs:he, ws:we].astype("float64")
            y[:, :, i, j] = window.max(axis=(2, 3)) if mode == "MAX" else (
                window.sum(axis=(2, 3)) / area)
    return y


def lrn_across_ref(x, size, alpha, beta, k):
    sq = x.astype("float64") ** 2
    c = x.shape[1]
    half = (size - 1) // 2
    scale = np.empty_like(sq)
    for ch in range(c):
        lo, hi = max(0, ch - half), min(c, ch + half + 1)
        scale[:, ch] = k + alpha / size * sq[:, lo:hi].sum(axis=1)
    return x * scale ** -beta


def lrn_within_ref(x, size, alpha, beta):
    half = (size - 1) // 2
    mean_sq = pool_ref(x.astype("float64") ** 2, (size, size), (1, 1), (half, half), "AVE")
    return x * (1 + alpha * mean_sq) ** -beta


def sigmoid(x):
    return 1 / (1 + np.exp(-np.asarray(x, "float64")))


def softmax_ref(x, axis=1):
    x = np.asarray(x, "float64")
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# -- vision ------------------------------------------------------------------------------------

CONV = """layer {{ name: "conv" type: "{type}" bottom: "x" top: "y"
  convolution_param {{ num_output: {num_output} {geometry} {extra}
    weight_filler {{ type: "gaussian" std: 0.3 }} bias_filler {{ type: "constant" value: 0.1 }} }} }}"""


@pytest.mark.parametrize("geometry, stride, pad, dilation, group", [
    ("kernel_size: 3", (1, 1), (0, 0), (1, 1), 1),
    ("kernel_size: 3 stride: 2 pad: 1 group: 2", (2, 2), (1, 1), (1, 1), 2),
    ("kernel_h: 3 kernel_w: 2 stride_h: 1 stride_w: 2 pad_h: 1 pad_w: 0", (1, 2), (1, 0), (1, 1), 1),
    ("kernel_size: 2 dilation: 2 pad: 1", (1, 1), (1, 1), (2, 2), 1),
])
def test_convolution(tmp_path, geometry, stride, pad, dilation, group):
    x = normal(2, 4, 6, 5)
    net = run(tmp_path, CONV.format(type="Convolution", num_output=4, geometry=geometry, extra=""),
              {"x": x})
    w, b = net.params["conv"][0].data, net.params["conv"][1].data
    assert w.shape[:2] == (4, 4 // group) and b.shape == (4,)
    np.testing.assert_allclose(b, 0.1, rtol=1e-6)
    close(net.blobs["y"].data, conv_ref(x, w, b, stride, pad, dilation, group))
    check_backward(net, inputs=["x"])


def test_convolution_without_bias_and_with_unsupported_axis(tmp_path):
    x = normal(1, 2, 4, 4)
    net = run(tmp_path, CONV.format(type="Convolution", num_output=3, geometry="kernel_size: 3",
                                    extra="bias_term: false"), {"x": x})
    assert len(net.params["conv"]) == 1
    close(net.blobs["y"].data, conv_ref(x, net.params["conv"][0].data))
    with pytest.raises(NotImplementedError, match="conv.*axis"):
        build(tmp_path, CONV.format(type="Convolution", num_output=3, geometry="kernel_size: 3",
                                    extra="axis: 2"), {"x": x.shape})


@pytest.mark.parametrize("geometry, stride, pad, group", [
    ("kernel_size: 3 stride: 2 pad: 1", (2, 2), (1, 1), 1),
    ("kernel_size: 2 stride: 2", (2, 2), (0, 0), 2),
])
def test_deconvolution(tmp_path, geometry, stride, pad, group):
    x = normal(2, 4, 3, 4)
    net = run(tmp_path, CONV.format(type="Deconvolution", num_output=6, geometry=geometry,
                                    extra=f"group: {group}" if group > 1 else ""), {"x": x})
    w, b = net.params["conv"][0].data, net.params["conv"][1].data
    assert w.shape[:2] == (4, 6 // group)          # Caffe's (C_in, C_out / group, kh, kw)
    close(net.blobs["y"].data, deconv_ref(x, w, b, stride, pad, (1, 1), group))
    check_backward(net, inputs=["x"])


POOL = 'layer { name: "pool" type: "Pooling" bottom: "x" top: "y" pooling_param { %s } }'


@pytest.mark.parametrize("spec, kernel, stride, pad, mode, ceil", [
    ("pool: MAX kernel_size: 3 stride: 2", (3, 3), (2, 2), (0, 0), "MAX", True),
    ("pool: AVE kernel_size: 3 stride: 2 pad: 1", (3, 3), (2, 2), (1, 1), "AVE", True),
    ("pool: MAX kernel_h: 2 kernel_w: 3 stride_h: 2 stride_w: 1 pad_h: 1 pad_w: 1",
     (2, 3), (2, 1), (1, 1), "MAX", True),
    ("pool: AVE kernel_size: 2 stride: 2 round_mode: FLOOR", (2, 2), (2, 2), (0, 0), "AVE", False),
])
def test_pooling(tmp_path, spec, kernel, stride, pad, mode, ceil):
    x = distinct((2, 3, 7, 6))
    net = run(tmp_path, POOL % spec, {"x": x})
    close(net.blobs["y"].data, pool_ref(x, kernel, stride, pad, mode, ceil))
    check_backward(net, inputs=["x"], eps=1e-3, atol=5e-3)


def test_pooling_ceil_shape_and_global(tmp_path):
    # AlexNet's pool1: 55 -> 27 with kernel 3 stride 2 (ceil rounding); a 6x6 input -> 3x3.
    net = build(tmp_path, POOL % "pool: MAX kernel_size: 3 stride: 2", {"x": (1, 1, 6, 6)})
    assert net.blobs["y"].data.shape == (1, 1, 3, 3)
    x = distinct((2, 3, 5, 4))
    net = run(tmp_path, POOL % "pool: AVE global_pooling: true", {"x": x})
    close(net.blobs["y"].data, x.mean(axis=(2, 3), keepdims=True))
    net = run(tmp_path, POOL % "pool: MAX global_pooling: true", {"x": x})
    close(net.blobs["y"].data, x.max(axis=(2, 3), keepdims=True))
    check_backward(net, inputs=["x"], eps=1e-3)


def test_pooling_max_mask_top_and_stochastic_test_phase(tmp_path):
    x = distinct((1, 2, 4, 4), 0.1, 1.0)
    net = run(tmp_path, 'layer { name: "pool" type: "Pooling" bottom: "x" top: "y" top: "mask" '
                        "pooling_param { pool: MAX kernel_size: 2 stride: 2 } }", {"x": x})
    flat = x.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 2, 2, 4)
    picks = flat.argmax(axis=-1)
    rows = np.arange(2)[:, None] * 2 + picks // 2
    cols = np.arange(2)[None, :] * 2 + picks % 2
    np.testing.assert_array_equal(net.blobs["mask"].data, rows * 4 + cols)
    net = run(tmp_path, POOL % "pool: STOCHASTIC kernel_size: 2 stride: 2", {"x": x})
    windows = x.reshape(1, 2, 2, 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 2, 2, 4)
    close(net.blobs["y"].data, (windows ** 2).sum(-1) / windows.sum(-1))


@pytest.mark.parametrize("pool", ["MAX", "AVE"])
def test_spp(tmp_path, pool):
    x = distinct((2, 3, 7, 6))
    net = run(tmp_path, 'layer { name: "spp" type: "SPP" bottom: "x" top: "y" '
                        f"spp_param {{ pyramid_height: 3 pool: {pool} }} }}", {"x": x})
    levels = []
    for level in range(3):
        bins = 2 ** level
        kernel = [-(-s // bins) for s in x.shape[2:]]
        pad = [(k * bins - s + 1) // 2 for k, s in zip(kernel, x.shape[2:])]
        levels.append(pool_ref(x, kernel, kernel, pad, pool).reshape(2, -1))
    expected = np.concatenate(levels, axis=1)
    assert net.blobs["y"].data.shape == (2, 3 * (1 + 4 + 16))
    close(net.blobs["y"].data, expected)
    check_backward(net, inputs=["x"], eps=1e-3, atol=5e-3)


def test_crop(tmp_path):
    x, ref = normal(2, 3, 6, 7), normal(2, 3, 4, 4)
    net = run(tmp_path, 'layer { name: "crop" type: "Crop" bottom: "x" bottom: "ref" top: "y" '
                        "crop_param { axis: 2 offset: 1 offset: 2 } }", {"x": x, "ref": ref})
    close(net.blobs["y"].data, x[:, :, 1:5, 2:6])
    check_backward(net, inputs=["x"])


def test_im2col(tmp_path):
    x = normal(2, 3, 5, 4)
    net = run(tmp_path, 'layer { name: "cols" type: "Im2col" bottom: "x" top: "y" '
                        "convolution_param { kernel_size: 3 stride: 1 pad: 1 } }", {"x": x})
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.stack([xp[:, c, i:i + 5, j:j + 4] for c in range(3) for i in range(3)
                         for j in range(3)], axis=1)
    close(net.blobs["y"].data, expected)
    check_backward(net, inputs=["x"])


@pytest.mark.parametrize("region", ["ACROSS_CHANNELS", "WITHIN_CHANNEL"])
def test_lrn(tmp_path, region):
    x = normal(2, 7, 4, 5)
    net = run(tmp_path, 'layer { name: "norm" type: "LRN" bottom: "x" top: "y" lrn_param { '
                        f"local_size: 3 alpha: 0.5 beta: 0.75 k: 2 norm_region: {region} }} }}",
              {"x": x})
    expected = (lrn_across_ref(x, 3, 0.5, 0.75, 2.0) if region == "ACROSS_CHANNELS"
                else lrn_within_ref(x, 3, 0.5, 0.75))
    close(net.blobs["y"].data, expected)
    check_backward(net, inputs=["x"])


# -- neuron ------------------------------------------------------------------------------------

NEURON = 'layer {{ name: "act" type: "{type}" bottom: "x" top: "y" {param} }}'


@pytest.mark.parametrize("type_, param, reference, kinks, low, high", [
    ("ReLU", "", lambda x: np.maximum(x, 0), (0.0,), -1, 1),
    ("ReLU", "relu_param { negative_slope: 0.1 }", lambda x: np.where(x > 0, x, 0.1 * x), (0.0,),
     -1, 1),
    ("ELU", "elu_param { alpha: 0.5 }", lambda x: np.where(x > 0, x, 0.5 * np.expm1(x)), (0.0,),
     -1, 1),
    ("Sigmoid", "", sigmoid, (), -3, 3),
    ("TanH", "", np.tanh, (), -3, 3),
    ("AbsVal", "", np.abs, (0.0,), -1, 1),
    ("BNLL", "", lambda x: np.log1p(np.exp(x)), (), -3, 3),
    ("Power", "power_param { power: 2 scale: 0.5 shift: 1 }", lambda x: (1 + 0.5 * x) ** 2, (),
     -1, 1),
    ("Exp", "exp_param { base: 2 scale: 0.5 shift: 1 }", lambda x: 2.0 ** (1 + 0.5 * x), (), -1, 1),
    ("Exp", "", np.exp, (), -1, 1),
    ("Log", "log_param { base: 10 scale: 2 shift: 3 }", lambda x: np.log10(3 + 2 * x), (), -1, 1),
    ("Log", "", np.log, (), 0.2, 2),
    ("Swish", "swish_param { beta: 1.5 }", lambda x: x * sigmoid(1.5 * x), (), -3, 3),
    ("Clip", "clip_param { min: -0.5 max: 0.6 }", lambda x: np.clip(x, -0.5, 0.6), (-0.5, 0.6),
     -1, 1),
])
def test_elementwise_neurons(tmp_path, type_, param, reference, kinks, low, high):
    x = away_from(uniform(2, 3, 4, low=low, high=high), kinks)
    net = run(tmp_path, NEURON.format(type=type_, param=param), {"x": x})
    close(net.blobs["y"].data, reference(x.astype("float64")))
    check_backward(net, inputs=["x"])


def test_threshold_forward(tmp_path):
    x = away_from(uniform(3, 4), (0.25,))
    net = run(tmp_path, NEURON.format(type="Threshold", param="threshold_param { threshold: 0.25 }"),
              {"x": x})
    np.testing.assert_array_equal(net.blobs["y"].data, (x > 0.25).astype("float32"))


@pytest.mark.parametrize("shared", [False, True])
def test_prelu(tmp_path, shared):
    x = away_from(uniform(2, 3, 4, 4))
    net = run(tmp_path, NEURON.format(type="PReLU", param=f"prelu_param {{ channel_shared: "
                                                          f"{str(shared).lower()} }}"), {"x": x})
    slope = net.params["act"][0].data
    assert slope.shape == ((1,) if shared else (3,))
    np.testing.assert_allclose(slope, 0.25)                  # Caffe's default filler
    net.params["act"][0].data[...] = uniform(*slope.shape, low=0.1, high=0.5)
    net.forward()
    a = net.params["act"][0].data.reshape(1, -1, 1, 1) if not shared else net.params["act"][0].data
    close(net.blobs["y"].data, np.where(x > 0, x, a * x))
    check_backward(net, inputs=["x"])


def test_dropout_phases(tmp_path):
    x = uniform(4, 50, low=0.5, high=1.5)
    body = NEURON.format(type="Dropout", param="dropout_param { dropout_ratio: 0.3 }")
    net = run(tmp_path, body, {"x": x})
    close(net.blobs["y"].data, x)                           # TEST: identity
    net = run(tmp_path, body, {"x": x}, phase=caffe.TRAIN)
    y = net.blobs["y"].data
    kept = y != 0
    close(y[kept], x[kept] / 0.7)
    assert 0.5 < kept.mean() < 0.9

    def reseed():
        dragon.config.set_random_seed(7)
    check_backward(net, inputs=["x"], reseed=reseed)


# -- common ------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis, transpose", [(1, False), (2, False), (1, True)])
def test_inner_product(tmp_path, axis, transpose):
    x = normal(2, 3, 2, 2)
    net = run(tmp_path, 'layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" '
                        f"inner_product_param {{ num_output: 5 axis: {axis} "
                        f"transpose: {str(transpose).lower()} weight_filler {{ type: 'xavier' }} "
                        "bias_filler { type: 'gaussian' } } }", {"x": x})
    w, b = net.params["ip"][0].data, net.params["ip"][1].data
    k = int(np.prod(x.shape[axis:]))
    assert w.shape == ((k, 5) if transpose else (5, k))
    flat = x.reshape(int(np.prod(x.shape[:axis])), k).astype("float64")
    y = flat @ (w if transpose else w.T) + b
    close(net.blobs["y"].data, y.reshape(x.shape[:axis] + (5,)))
    check_backward(net, inputs=["x"])


def test_embed(tmp_path):
    index = np.array([[0, 3, 2], [4, 4, 1]], "float32")
    net = run(tmp_path, 'layer { name: "embed" type: "Embed" bottom: "i" top: "y" '
                        "embed_param { num_output: 3 input_dim: 5 weight_filler { type: 'uniform' } "
                        "bias_filler { type: 'uniform' } } }", {"i": index})
    table, bias = net.params["embed"][0].data, net.params["embed"][1].data
    close(net.blobs["y"].data, table[index.astype(int)] + bias)
    check_backward(net, params=True)


@pytest.mark.parametrize("axis, num_axes, shape", [(1, 1, (3,)), (1, 2, (3, 4)), (0, -1, (2, 3, 4, 2)),
                                                  (2, 0, ())])
def test_bias_learned(tmp_path, axis, num_axes, shape):
    x = normal(2, 3, 4, 2)
    net = run(tmp_path, 'layer { name: "bias" type: "Bias" bottom: "x" top: "y" '
                        f"bias_param {{ axis: {axis} num_axes: {num_axes} "
                        "filler { type: 'gaussian' } } }", {"x": x})
    b = net.params["bias"][0].data
    assert b.shape == shape
    close(net.blobs["y"].data, x + b.reshape(b.shape + (1,) * (x.ndim - axis - b.ndim)))
    check_backward(net, inputs=["x"])


def test_bias_from_bottom(tmp_path):
    x, b = normal(2, 3, 4), normal(3, 4)
    net = run(tmp_path, 'layer { name: "bias" type: "Bias" bottom: "x" bottom: "b" top: "y" }',
              {"x": x, "b": b})
    close(net.blobs["y"].data, x + b)
    check_backward(net, inputs=["x", "b"])


def test_scale_learned_with_bias(tmp_path):
    x = normal(2, 3, 4, 2)
    net = run(tmp_path, 'layer { name: "scale" type: "Scale" bottom: "x" top: "y" '
                        "scale_param { bias_term: true } }", {"x": x})
    gamma, beta = (b.data for b in net.params["scale"])
    np.testing.assert_allclose(gamma, 1.0)                  # Caffe's default scale filler
    np.testing.assert_allclose(beta, 0.0)
    net.params["scale"][0].data[...] = uniform(3)
    net.params["scale"][1].data[...] = uniform(3)
    net.forward()
    close(net.blobs["y"].data, x * gamma.reshape(1, 3, 1, 1) + beta.reshape(1, 3, 1, 1))
    check_backward(net, inputs=["x"])


def test_scale_from_bottom(tmp_path):
    x, s = normal(2, 3, 4), normal(2, 3)
    net = run(tmp_path, 'layer { name: "scale" type: "Scale" bottom: "x" bottom: "s" top: "y" '
                        "scale_param { axis: 0 bias_term: true } }", {"x": x, "s": s})
    assert net.params["scale"][0].data.shape == (2, 3)
    net.params["scale"][0].data[...] = uniform(2, 3)
    net.forward()
    close(net.blobs["y"].data, x * s[..., None] + net.params["scale"][0].data[..., None])
    check_backward(net, inputs=["x", "s"])


BATCH_NORM = """layer {{ name: "bn" type: "BatchNorm" bottom: "x" top: "y"
  batch_norm_param {{ {param} eps: 0.001 }} }}"""


def test_batch_norm_global_stats(tmp_path):
    x = normal(2, 3, 4, 4)
    net = build(tmp_path, BATCH_NORM.format(param=""), {"x": x.shape})
    assert [b.data.shape for b in net.params["bn"]] == [(3,), (3,), (1,)]
    mean, var = uniform(3), uniform(3, low=0.5, high=2.0)
    net.blobs["x"].data[...] = x
    net.params["bn"][0].data[...] = mean * 4
    net.params["bn"][1].data[...] = var * 4
    net.params["bn"][2].data[...] = 4
    net.forward()
    expected = (x - mean.reshape(1, 3, 1, 1)) / np.sqrt(var.reshape(1, 3, 1, 1) + 0.001)
    close(net.blobs["y"].data, expected, 1e-4)
    net.params["bn"][2].data[...] = 0                       # factor 0: statistics count as 0
    net.forward()
    close(net.blobs["y"].data, x / np.sqrt(0.001), 1e-4)
    net.params["bn"][2].data[...] = 4
    check_backward(net, inputs=["x"], params=False)


def test_batch_norm_training_statistics(tmp_path):
    x = normal(4, 3, 2, 2) + 1.0
    net = build(tmp_path, BATCH_NORM.format(param="moving_average_fraction: 0.9"), {"x": x.shape},
                phase=caffe.TRAIN)
    net.blobs["x"].data[...] = x
    mean0, var0 = uniform(3), uniform(3, low=0.5, high=1.0)
    net.params["bn"][0].data[...] = mean0
    net.params["bn"][1].data[...] = var0
    net.params["bn"][2].data[...] = 2.0
    net.forward()
    batch_mean = x.mean(axis=(0, 2, 3))
    batch_var = x.var(axis=(0, 2, 3))
    expected = (x - batch_mean.reshape(1, 3, 1, 1)) / np.sqrt(batch_var.reshape(1, 3, 1, 1) + 0.001)
    close(net.blobs["y"].data, expected, 1e-4)
    m = x.size // 3
    close(net.params["bn"][0].data, 0.9 * mean0 + batch_mean, 1e-5)
    close(net.params["bn"][1].data, 0.9 * var0 + m / (m - 1) * batch_var, 1e-5)
    close(net.params["bn"][2].data, [0.9 * 2.0 + 1.0])
    check_backward(net, inputs=["x"], params=False)


@pytest.mark.parametrize("variance, across", [(True, False), (False, False), (True, True)])
def test_mvn(tmp_path, variance, across):
    x = normal(2, 3, 4, 5)
    net = run(tmp_path, 'layer { name: "mvn" type: "MVN" bottom: "x" top: "y" mvn_param { '
                        f"normalize_variance: {str(variance).lower()} "
                        f"across_channels: {str(across).lower()} eps: 1e-6 }} }}", {"x": x})
    axes = (1, 2, 3) if across else (2, 3)
    centered = x - x.mean(axis=axes, keepdims=True)
    expected = centered / (centered.std(axis=axes, keepdims=True) + 1e-6) if variance else centered
    close(net.blobs["y"].data, expected, 1e-4)
    check_backward(net, inputs=["x"])


def test_flatten_and_reshape(tmp_path):
    x = normal(2, 3, 4, 5)
    net = run(tmp_path, 'layer { name: "f" type: "Flatten" bottom: "x" top: "f" '
                        "flatten_param { axis: 1 end_axis: 2 } }\n"
                        'layer { name: "r" type: "Reshape" bottom: "x" top: "r" '
                        "reshape_param { shape { dim: 0 dim: -1 dim: 2 } axis: 1 num_axes: 2 } }\n"
                        'layer { name: "r2" type: "Reshape" bottom: "x" top: "r2" '
                        "reshape_param { shape { dim: 0 dim: -1 } } }", {"x": x})
    close(net.blobs["f"].data, x.reshape(2, 12, 5))
    close(net.blobs["r"].data, x.reshape(2, 3, 2, 2, 5))
    close(net.blobs["r2"].data, x.reshape(2, 60))
    check_backward(net, inputs=["x"])


@pytest.mark.parametrize("param, axis", [("axis: 2", 2), ("concat_dim: 0", 0), ("axis: -1", 3)])
def test_concat(tmp_path, param, axis):
    shape_a = [2, 3, 4, 2]
    shape_b = list(shape_a)
    shape_b[axis] = 3
    a, b = normal(*shape_a), normal(*shape_b)
    net = run(tmp_path, 'layer { name: "cat" type: "Concat" bottom: "a" bottom: "b" top: "y" '
                        f"concat_param {{ {param} }} }}", {"a": a, "b": b})
    close(net.blobs["y"].data, np.concatenate([a, b], axis=axis))
    check_backward(net, inputs=["a", "b"])


def test_slice_and_split(tmp_path):
    x = normal(2, 6, 3)
    net = run(tmp_path, 'layer { name: "s" type: "Slice" bottom: "x" top: "a" top: "b" top: "c" '
                        "slice_param { axis: 1 slice_point: 1 slice_point: 4 } }\n"
                        'layer { name: "e" type: "Slice" bottom: "x" top: "d" top: "e" '
                        "slice_param { slice_dim: 0 } }\n"
                        'layer { name: "sp" type: "Split" bottom: "x" top: "s1" top: "s2" }',
              {"x": x})
    close(net.blobs["a"].data, x[:, :1])
    close(net.blobs["b"].data, x[:, 1:4])
    close(net.blobs["c"].data, x[:, 4:])
    close(net.blobs["d"].data, x[:1])
    close(net.blobs["e"].data, x[1:])
    close(net.blobs["s1"].data, x)
    close(net.blobs["s2"].data, x)
    check_backward(net, inputs=["x"])


@pytest.mark.parametrize("param, reference", [
    ("operation: SUM", lambda a, b, c: a + b + c),
    ("operation: SUM coeff: 0.5 coeff: -2 coeff: 1", lambda a, b, c: 0.5 * a - 2 * b + c),
    ("operation: PROD", lambda a, b, c: a * b * c),
    ("operation: MAX", lambda a, b, c: np.maximum(np.maximum(a, b), c)),
])
def test_eltwise(tmp_path, param, reference):
    values = distinct((3, 2, 3, 4))
    a, b, c = values
    net = run(tmp_path, 'layer { name: "el" type: "Eltwise" bottom: "a" bottom: "b" bottom: "c" '
                        f"top: \"y\" eltwise_param {{ {param} }} }}", {"a": a, "b": b, "c": c})
    close(net.blobs["y"].data, reference(*(v.astype("float64") for v in (a, b, c))))
    check_backward(net, inputs=["a", "b", "c"], eps=1e-3, atol=5e-3)


@pytest.mark.parametrize("operation, axis, reference", [
    ("SUM", 0, lambda x: x.sum()),
    ("ASUM", 1, lambda x: np.abs(x).sum(axis=(1, 2))),
    ("SUMSQ", 2, lambda x: (x ** 2).sum(axis=2)),
    ("MEAN", -1, lambda x: x.mean(axis=2)),
])
def test_reduction(tmp_path, operation, axis, reference):
    x = away_from(uniform(2, 3, 4))
    net = run(tmp_path, 'layer { name: "red" type: "Reduction" bottom: "x" top: "y" '
                        f"reduction_param {{ operation: {operation} axis: {axis} coeff: 1.5 }} }}",
              {"x": x})
    close(net.blobs["y"].data, 1.5 * reference(x.astype("float64")))
    check_backward(net, inputs=["x"])


@pytest.mark.parametrize("axis", [1, 2])
def test_softmax(tmp_path, axis):
    x = normal(2, 3, 4)
    net = run(tmp_path, 'layer { name: "sm" type: "Softmax" bottom: "x" top: "y" '
                        f"softmax_param {{ axis: {axis} }} }}", {"x": x})
    close(net.blobs["y"].data, softmax_ref(x, axis))
    check_backward(net, inputs=["x"])


def test_argmax(tmp_path):
    x = distinct((2, 3, 4))
    net = run(tmp_path, 'layer { name: "a1" type: "ArgMax" bottom: "x" top: "i" '
                        "argmax_param { top_k: 2 } }\n"
                        'layer { name: "a2" type: "ArgMax" bottom: "x" top: "iv" '
                        "argmax_param { top_k: 2 out_max_val: true } }\n"
                        'layer { name: "a3" type: "ArgMax" bottom: "x" top: "ai" '
                        "argmax_param { axis: 1 } }\n"
                        'layer { name: "a4" type: "ArgMax" bottom: "x" top: "av" '
                        "argmax_param { axis: 2 top_k: 3 out_max_val: true } }", {"x": x})
    flat = x.reshape(2, 12)
    order = np.argsort(-flat, axis=1)[:, :2]
    np.testing.assert_array_equal(net.blobs["i"].data, order.reshape(2, 1, 2))
    expected = np.stack([order, np.take_along_axis(flat, order, 1)], axis=1)
    close(net.blobs["iv"].data, expected)
    np.testing.assert_array_equal(net.blobs["ai"].data, x.argmax(axis=1)[:, None])
    close(net.blobs["av"].data, -np.sort(-x, axis=2)[:, :, :3])


def test_tile_silence_parameter(tmp_path):
    x = normal(2, 3)
    net = run(tmp_path, 'layer { name: "tile" type: "Tile" bottom: "x" top: "t" '
                        "tile_param { axis: 1 tiles: 3 } }\n"
                        'layer { name: "p" type: "Parameter" top: "p" '
                        "parameter_param { shape { dim: 2 dim: 2 } } }\n"
                        'layer { name: "quiet" type: "Silence" bottom: "p" }', {"x": x})
    close(net.blobs["t"].data, np.tile(x, (1, 3)))
    assert net.params["p"][0].data.shape == (2, 2)
    net.params["p"][0].data[...] = [[1, 2], [3, 4]]
    net.forward()
    close(net.blobs["p"].data, [[1, 2], [3, 4]])
    assert "quiet" in net.layer_dict
    check_backward(net, inputs=["x"])


def test_parameter_gradient(tmp_path):
    net = run(tmp_path, 'layer { name: "p" type: "Parameter" top: "p" '
                        "parameter_param { shape { dim: 3 } } }\n"
                        'layer { name: "sq" type: "Power" bottom: "p" top: "y" '
                        "power_param { power: 2 } }", {"x": normal(1)})
    net.params["p"][0].data[...] = [0.5, -1.0, 2.0]
    check_backward(net)


def test_batch_reindex(tmp_path):
    x, index = normal(3, 2, 2), np.array([2, 0, 2, 1], "float32")
    net = run(tmp_path, 'layer { name: "re" type: "BatchReindex" bottom: "x" bottom: "i" '
                        'top: "y" }', {"x": x, "i": index})
    close(net.blobs["y"].data, x[[2, 0, 2, 1]])
    check_backward(net, inputs=["x"])


def test_filter_names_the_layer(tmp_path):
    with pytest.raises(NotImplementedError, match="'picky'.*Filter"):
        build(tmp_path, 'layer { name: "picky" type: "Filter" bottom: "x" bottom: "s" top: "y" }',
              {"x": (2, 3), "s": (2,)})


# -- recurrence --------------------------------------------------------------------------------

def lstm_unit_ref(c_prev, gates, cont):
    h = c_prev.shape[-1]
    i, f, o = (sigmoid(gates[..., k * h:(k + 1) * h]) for k in range(3))
    g = np.tanh(gates[..., 3 * h:])
    c = cont[..., None] * f * c_prev + i * g
    return c, o * np.tanh(c)


def test_lstm_unit(tmp_path):
    c_prev, gates = normal(1, 3, 4), normal(1, 3, 16)
    cont = np.array([[1, 0, 1]], "float32")
    net = run(tmp_path, 'layer { name: "unit" type: "LSTMUnit" bottom: "c_prev" bottom: "gates" '
                        'bottom: "cont" top: "c" top: "h" }',
              {"c_prev": c_prev, "gates": gates, "cont": cont})
    c, h = lstm_unit_ref(c_prev, gates, cont)
    close(net.blobs["c"].data, c)
    close(net.blobs["h"].data, h)
    check_backward(net, inputs=["c_prev", "gates"])


RECURRENT = """layer {{ name: "rec" type: "{type}" bottom: "x" bottom: "cont" {static} top: "y"
  recurrent_param {{ num_output: 3 weight_filler {{ type: "uniform" min: -0.5 max: 0.5 }}
                    bias_filler {{ type: "uniform" min: -0.5 max: 0.5 }} }} }}"""


def _sequences():
    x = normal(4, 2, 3)
    cont = np.array([[0, 0], [1, 1], [1, 0], [1, 1]], "float32")
    return x, cont


def test_lstm(tmp_path):
    x, cont = _sequences()
    net = run(tmp_path, RECURRENT.format(type="LSTM", static=""), {"x": x, "cont": cont})
    w_xc, b_c, w_hc = (b.data.astype("float64") for b in net.params["rec"])
    assert w_xc.shape == (12, 3) and b_c.shape == (12,) and w_hc.shape == (12, 3)
    h, c, outputs = np.zeros((1, 2, 3)), np.zeros((1, 2, 3)), []
    for t in range(4):
        gates = (cont[t][None, :, None] * h) @ w_hc.T + x[t:t + 1] @ w_xc.T + b_c
        c, h = lstm_unit_ref(c, gates, cont[t:t + 1])
        outputs.append(h)
    close(net.blobs["y"].data, np.concatenate(outputs), 1e-4)
    check_backward(net, inputs=["x"])


def test_rnn_with_static_input(tmp_path):
    x, cont = _sequences()
    static = normal(2, 5)
    net = run(tmp_path, RECURRENT.format(type="RNN", static='bottom: "static"'),
              {"x": x, "cont": cont, "static": static})
    w_xh, b_h, w_static, w_hh, w_ho, b_o = (b.data.astype("float64") for b in net.params["rec"])
    assert w_static.shape == (3, 5) and w_ho.shape == (3, 3)
    h, outputs = np.zeros((1, 2, 3)), []
    for t in range(4):
        h = np.tanh((cont[t][None, :, None] * h) @ w_hh.T + x[t:t + 1] @ w_xh.T + b_h
                    + (static @ w_static.T)[None])
        outputs.append(np.tanh(h @ w_ho.T + b_o))
    close(net.blobs["y"].data, np.concatenate(outputs), 1e-4)
    check_backward(net, inputs=["x", "static"])


# -- loss --------------------------------------------------------------------------------------

def test_softmax_with_loss(tmp_path):
    x = normal(3, 4, 2)
    label = np.array([[0, 3], [255, 1], [2, 255]], "float32")
    net = run(tmp_path, 'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "label" '
                        'top: "loss" top: "prob" loss_param { ignore_label: 255 } }',
              {"x": x, "label": label})
    prob = softmax_ref(x, 1)
    picks = [(n, int(label[n, s]), s) for n in range(3) for s in range(2) if label[n, s] != 255]
    expected = -sum(np.log(prob[n, k, s]) for n, k, s in picks) / len(picks)
    close(net.blobs["loss"].data, expected)
    close(net.blobs["prob"].data, prob)
    assert net.blob_loss_weights["loss"] == 1 and net.blob_loss_weights["prob"] == 0
    check_backward(net, inputs=["x"])


@pytest.mark.parametrize("param, divisor", [("normalization: FULL", 6), ("normalization: BATCH_SIZE", 3),
                                           ("normalization: NONE", 1), ("normalize: false", 3)])
def test_softmax_with_loss_normalization(tmp_path, param, divisor):
    x = normal(3, 4, 2)
    label = np.array([[0, 3], [255, 1], [2, 0]], "float32")
    net = run(tmp_path, 'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "label" '
                        f'top: "loss" loss_param {{ ignore_label: 255 {param} }} loss_weight: 2 }}',
              {"x": x, "label": label})
    prob = softmax_ref(x, 1)
    total = -sum(np.log(prob[n, int(label[n, s]), s]) for n in range(3) for s in range(2)
                 if label[n, s] != 255)
    close(net.blobs["loss"].data, total / divisor)
    check_backward(net, inputs=["x"])


def test_sigmoid_cross_entropy_loss(tmp_path):
    x, target = normal(3, 4), (RNG.uniform(size=(3, 4)) > 0.5).astype("float32")
    net = run(tmp_path, 'layer { name: "loss" type: "SigmoidCrossEntropyLoss" bottom: "x" '
                        'bottom: "t" top: "loss" }', {"x": x, "t": target})
    p = sigmoid(x)
    close(net.blobs["loss"].data, -np.sum(target * np.log(p) + (1 - target) * np.log(1 - p)) / 3)
    check_backward(net, inputs=["x"])


def test_euclidean_loss(tmp_path):
    a, b = normal(3, 4), normal(3, 4)
    net = run(tmp_path, 'layer { name: "loss" type: "EuclideanLoss" bottom: "a" bottom: "b" '
                        'top: "loss" }', {"a": a, "b": b})
    close(net.blobs["loss"].data, np.sum((a - b) ** 2) / 6)
    check_backward(net, inputs=["a", "b"])


@pytest.mark.parametrize("norm, power", [("L1", 1), ("L2", 2)])
def test_hinge_loss(tmp_path, norm, power):
    x = away_from(uniform(4, 3, low=-2, high=2), (-1.0, 1.0))
    label = np.array([0, 2, 1, 2], "float32")
    net = run(tmp_path, 'layer { name: "loss" type: "HingeLoss" bottom: "x" bottom: "label" '
                        f'top: "loss" hinge_loss_param {{ norm: {norm} }} }}',
              {"x": x, "label": label})
    sign = -np.ones_like(x)
    sign[np.arange(4), label.astype(int)] = 1
    close(net.blobs["loss"].data, np.sum(np.maximum(0, 1 - sign * x) ** power) / 4)
    check_backward(net, inputs=["x"])


def _infogain_expected(x, label, h):
    logp = np.log(softmax_ref(x, 1))
    return -sum(h[int(label[n])] @ logp[n] for n in range(len(label))) / len(label)


def test_infogain_loss_from_bottom_and_file(tmp_path):
    x, label = normal(4, 3), np.array([0, 2, 1, 2], "float32")
    h = uniform(3, 3, low=0, high=1)
    net = run(tmp_path, 'layer { name: "loss" type: "InfogainLoss" bottom: "x" bottom: "label" '
                        'bottom: "h" top: "loss" }', {"x": x, "label": label, "h": h})
    close(net.blobs["loss"].data, _infogain_expected(x, label, h))
    check_backward(net, inputs=["x"])
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend([1, 1, 3, 3])
    blob.data.extend(h.ravel().tolist())
    source = tmp_path / "H.binaryproto"
    source.write_bytes(blob.SerializeToString())
    net = run(tmp_path, 'layer { name: "loss" type: "InfogainLoss" bottom: "x" bottom: "label" '
                        f'top: "loss" infogain_loss_param {{ source: "{source}" }} }}',
              {"x": x, "label": label})
    close(net.blobs["loss"].data, _infogain_expected(x, label, h))


def test_multinomial_logistic_loss(tmp_path):
    p = softmax_ref(normal(4, 3), 1).astype("float32")
    label = np.array([0, 2, 1, 2], "float32")
    net = run(tmp_path, 'layer { name: "loss" type: "MultinomialLogisticLoss" bottom: "p" '
                        'bottom: "label" top: "loss" }', {"p": p, "label": label})
    close(net.blobs["loss"].data, -np.mean(np.log(p[np.arange(4), label.astype(int)])))
    check_backward(net, inputs=["p"], eps=1e-3)


@pytest.mark.parametrize("legacy", [False, True])
def test_contrastive_loss(tmp_path, legacy):
    a, b = normal(4, 3, scale=0.3), normal(4, 3, scale=0.3)
    similar = np.array([1, 0, 0, 1], "float32")
    net = run(tmp_path, 'layer { name: "loss" type: "ContrastiveLoss" bottom: "a" bottom: "b" '
                        'bottom: "s" top: "loss" contrastive_loss_param { margin: 1.5 '
                        f"legacy_version: {str(legacy).lower()} }} }}", {"a": a, "b": b, "s": similar})
    d2 = np.sum((a - b) ** 2, axis=1)
    dissimilar = (np.maximum(1.5 - d2, 0) if legacy else np.maximum(1.5 - np.sqrt(d2), 0) ** 2)
    close(net.blobs["loss"].data, np.sum(np.where(similar > 0, d2, dissimilar)) / 8)
    check_backward(net, inputs=["a", "b"])


def test_accuracy(tmp_path):
    x = distinct((6, 4))
    label = np.array([0, 1, 2, 3, 1, -1], "float32")
    net = run(tmp_path, 'layer { name: "acc" type: "Accuracy" bottom: "x" bottom: "label" '
                        'top: "acc" top: "per_class" accuracy_param { top_k: 2 ignore_label: -1 } }',
              {"x": x, "label": label})
    top2 = np.argsort(-x, axis=1)[:, :2]
    hits = np.array([label[i] in top2[i] for i in range(5)])
    close(net.blobs["acc"].data, hits.mean())
    per_class = [hits[label[:5] == k].mean() if np.any(label[:5] == k) else 0 for k in range(4)]
    close(net.blobs["per_class"].data, per_class)
    assert net.blob_loss_weights["acc"] == 0


# -- MPI ---------------------------------------------------------------------------------------

def test_mpi_layers_are_identity_in_one_process(tmp_path):
    x = normal(2, 3)
    net = run(tmp_path, 'layer { name: "b" type: "MPIBroadcast" bottom: "x" top: "bx" }\n'
                        'layer { name: "g" type: "MPIGather" bottom: "bx" top: "gx" }', {"x": x})
    close(net.blobs["gx"].data, x)
    check_backward(net, inputs=["x"])


# -- data --------------------------------------------------------------------------------------

def test_input_and_dummy_data(tmp_path):
    net = build(tmp_path, 'layer { name: "d" type: "DummyData" top: "zeros" top: "noise" top: "old" '
                          "dummy_data_param { shape { dim: 2 dim: 3 } shape { dim: 50 dim: 40 } "
                          "shape { dim: 1 dim: 1 } data_filler { type: 'constant' value: 0 } "
                          "data_filler { type: 'gaussian' std: 2 } "
                          "data_filler { type: 'constant' value: 3 } } }",
                {"x": (2, 2)})
    net.forward()
    np.testing.assert_array_equal(net.blobs["zeros"].data, np.zeros((2, 3)))
    noise = net.blobs["noise"].data
    assert noise.shape == (50, 40) and 1.8 < noise.std() < 2.2
    np.testing.assert_array_equal(net.blobs["old"].data, [[3]])
    net = build(tmp_path, 'layer { name: "d" type: "DummyData" top: "a" dummy_data_param { '
                          "num: 2 channels: 3 height: 4 width: 5 } }", {"x": (1,)})
    assert net.blobs["a"].data.shape == (2, 3, 4, 5)
    assert "x" in net.inputs


def test_memory_data(tmp_path):
    net = build(tmp_path, 'layer { name: "mem" type: "MemoryData" top: "data" top: "label" '
                          "memory_data_param { batch_size: 2 channels: 1 height: 2 width: 3 } }",
                {})
    assert net.blobs["data"].data.shape == (2, 1, 2, 3)
    assert net.blobs["label"].data.shape == (2,)
    data = np.arange(24, dtype="float32").reshape(4, 1, 2, 3)
    labels = np.array([5, 6, 7, 8], "float32")
    net.set_input_arrays(data, labels)
    net.forward()
    np.testing.assert_array_equal(net.blobs["data"].data, data[:2])
    np.testing.assert_array_equal(net.blobs["label"].data, labels[:2])
    net.forward()
    np.testing.assert_array_equal(net.blobs["data"].data, data[2:])


def test_hdf5_data_batches_cycle_through_files(tmp_path):
    h5py = pytest.importorskip("h5py", reason="HDF5Data reads with h5py")
    files = []
    for k in range(2):
        path = tmp_path / f"part{k}.h5"
        with h5py.File(path, "w") as f:
            f["data"] = np.arange(12, dtype="float32").reshape(3, 2, 2) + 100 * k
            f["label"] = np.arange(3, dtype="float32") + 10 * k
        files.append(str(path))
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(files) + "\n")
    net = build(tmp_path, 'layer { name: "h5" type: "HDF5Data" top: "data" top: "label" '
                          f'hdf5_data_param {{ source: "{listing}" batch_size: 2 }} }}', {})
    assert net.blobs["data"].data.shape == (2, 2, 2)
    seen = []
    for _ in range(3):
        net.forward()
        seen += list(net.blobs["label"].data)
    assert seen == [0, 1, 2, 10, 11, 12]
    np.testing.assert_array_equal(net.blobs["data"].data[1], np.arange(8, 12).reshape(2, 2) + 100)


def test_image_data_reads_bgr_and_transforms(tmp_path):
    image_module = pytest.importorskip("PIL.Image", reason="ImageData reads with Pillow")
    rgb = RNG.integers(0, 256, size=(3, 4, 5, 3), dtype=np.uint8)
    lines = []
    for k in range(3):
        path = tmp_path / f"img{k}.png"
        image_module.fromarray(rgb[k]).save(path)
        lines.append(f"img{k}.png {k}")
    listing = tmp_path / "images.txt"
    listing.write_text("\n".join(lines) + "\n")
    net = build(tmp_path, 'layer { name: "img" type: "ImageData" top: "data" top: "label" '
                          "transform_param { scale: 0.5 mean_value: 10 mean_value: 20 mean_value: 30 "
                          "crop_size: 3 } "
                          f'image_data_param {{ source: "{listing}" root_folder: "{tmp_path}/" '
                          "batch_size: 2 } }", {})
    assert net.blobs["data"].data.shape == (2, 3, 3, 3)
    net.forward()
    bgr = rgb[..., ::-1].transpose(0, 3, 1, 2).astype("float64")
    center = bgr[:, :, 0:3, 1:4]                                  # TEST: centre crop
    expected = (center[:2] - np.array([10, 20, 30]).reshape(1, 3, 1, 1)) * 0.5
    close(net.blobs["data"].data, expected)
    np.testing.assert_array_equal(net.blobs["label"].data, [0, 1])
    net.forward()
    np.testing.assert_array_equal(net.blobs["label"].data, [2, 0])


@pytest.mark.parametrize("type_, message", [("Data", "data-layer issue"), ("WindowData", "WindowData")])
def test_readers_of_later_issues_name_the_layer(tmp_path, type_, message):
    with pytest.raises(NotImplementedError, match=f"'reader'.*{message}"):
        build(tmp_path, f'layer {{ name: "reader" type: "{type_}" top: "data" top: "label" }}', {})


def test_every_spec_layer_type_is_registered():
    spec_types = """Data ImageData HDF5Data HDF5Output MemoryData DummyData Input WindowData
        Convolution Deconvolution Pooling SPP Crop Im2col LRN ReLU PReLU ELU Sigmoid TanH AbsVal
        BNLL Power Exp Log Threshold Dropout Swish Clip InnerProduct Embed Bias Scale BatchNorm
        MVN Flatten Reshape Concat Slice Split Eltwise Reduction Softmax ArgMax Tile Silence
        Filter BatchReindex Parameter RNN LSTM LSTMUnit SoftmaxWithLoss SigmoidCrossEntropyLoss
        EuclideanLoss HingeLoss InfogainLoss MultinomialLogisticLoss ContrastiveLoss Accuracy
        MPIBroadcast MPIGather""".split()
    missing = sorted(set(spec_types) - set(caffe.layer_type_list()))
    assert not missing, f"layer types without a lowering: {missing}"


def test_fillers_match_caffe_statistics():
    from dragon.vm.caffe.layers import fillers
    shape = (64, 32, 3, 3)
    fan_in, fan_out = 32 * 9, 64 * 9
    xavier = fillers.fill_array(caffe_pb2.FillerParameter(type="xavier"), shape)
    assert abs(xavier.std() - math.sqrt(1.0 / fan_in)) < 0.1 * math.sqrt(1.0 / fan_in)
    msra = fillers.fill_array(caffe_pb2.FillerParameter(type="msra", variance_norm=1), shape)
    assert abs(msra.std() - math.sqrt(2.0 / fan_out)) < 0.1 * math.sqrt(2.0 / fan_out)
    sparse = fillers.fill_array(caffe_pb2.FillerParameter(type="gaussian", sparse=16), shape)
    assert 0.2 < np.mean(sparse != 0) < 0.3                       # 16 of 64 outputs kept
    assert fillers.filler_op(None, (2,)) == ("Fill", {"shape": [2], "dtype": "float32", "value": 0.0})
    with pytest.raises(NotImplementedError, match="unknown filler type 'fancy'"):
        fillers.filler_op(caffe_pb2.FillerParameter(type="fancy"), (2,))
