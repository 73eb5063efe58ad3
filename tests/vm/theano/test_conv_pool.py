"""conv2d (new and old interfaces, transposed) and pool_2d.

Forward results against independent numpy references written from Theano's
definitions (every border mode, subsample, filter_flip, dilation, groups; every pool
mode with ignore_border True and False, strides and padding), against PyTorch for
larger cases where it is installed, and T.grad against central finite differences.
"""
import numpy as np
import pytest

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano.tensor.nnet import abstract_conv, conv, conv2d, conv2d_transpose
from dragon.vm.theano.tensor.signal import pool
from tests.vm.theano.test_nnet import assert_grad_matches_fd

RNG = np.random.RandomState(11)

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - depends on the machine
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


# -- numpy references --------------------------------------------------------------------------

def np_conv2d(x, w, pads=((0, 0), (0, 0)), stride=(1, 1), flip=True, dilation=(1, 1),
              groups=1):
    """Theano's conv2d by definition: a sum over each (dilated) window of the padded image."""
    if flip:
        w = w[:, :, ::-1, ::-1]
    x = np.pad(x, ((0, 0), (0, 0)) + tuple(pads))
    n, c, h, wd = x.shape
    k, cg, kh, kw = w.shape
    span = ((kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1)
    oh = (h - span[0]) // stride[0] + 1
    ow = (wd - span[1]) // stride[1] + 1
    out = np.zeros((n, k, oh, ow))
    per_group = k // groups
    for o in range(k):
        g = o // per_group
        xs = x[:, g * cg:(g + 1) * cg]
        for i in range(oh):
            for j in range(ow):
                r, s = i * stride[0], j * stride[1]
                window = xs[:, :, r:r + span[0]:dilation[0], s:s + span[1]:dilation[1]]
                out[:, o, i, j] = (window * w[o]).sum(axis=(1, 2, 3))
    return out


def np_pool(x, ws, stride, pad, ignore_border, mode):
    """Theano's Pool.perform: windows over the padded image, clipped at its border;
    only 'average_inc_pad' counts padded cells."""
    h, w = x.shape[-2:]
    ph, pw = h + 2 * pad[0], w + 2 * pad[1]

    def count(size, k, s):
        if ignore_border:
            return max(0, (size - k) // s + 1)
        if s >= k:
            return (size - 1) // s + 1
        return max(0, (size - 1 - k) // s + 1) + 1

    oh, ow = count(ph, ws[0], stride[0]), count(pw, ws[1], stride[1])
    y = np.zeros(x.shape[:-2] + (ph, pw))
    y[..., pad[0]:pad[0] + h, pad[1]:pad[1] + w] = x
    out = np.zeros(x.shape[:-2] + (oh, ow))
    for i in range(oh):
        r0, r1 = i * stride[0], min(i * stride[0] + ws[0], ph)
        if mode != "average_inc_pad":
            r0, r1 = max(r0, pad[0]), min(r1, h + pad[0])
        for j in range(ow):
            c0, c1 = j * stride[1], min(j * stride[1] + ws[1], pw)
            if mode != "average_inc_pad":
                c0, c1 = max(c0, pad[1]), min(c1, w + pad[1])
            window = y[..., r0:r1, c0:c1]
            if mode == "max":
                out[..., i, j] = window.max(axis=(-2, -1))
            elif mode == "sum":
                out[..., i, j] = window.sum(axis=(-2, -1))
            else:
                out[..., i, j] = window.mean(axis=(-2, -1))
    return out


def _pads(border_mode, kernel, dilation=(1, 1)):
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    if border_mode == "valid":
        return ((0, 0), (0, 0))
    if border_mode == "full":
        return tuple((s - 1, s - 1) for s in spans)
    if border_mode == "half":
        return tuple((s // 2, s // 2) for s in spans)
    if isinstance(border_mode, int):
        return ((border_mode,) * 2,) * 2
    return tuple(p if isinstance(p, tuple) else (p, p) for p in border_mode)


# -- conv2d ------------------------------------------------------------------------------------

X = RNG.standard_normal((2, 4, 7, 6))
W = RNG.standard_normal((6, 4, 3, 2))
W_GROUPED = RNG.standard_normal((6, 2, 3, 3))

# name -> (conv2d keyword arguments, filters)
CONV_CASES = {
    "valid": (dict(border_mode="valid"), W),
    "full": (dict(border_mode="full"), W),
    "half": (dict(border_mode="half"), W),
    "int": (dict(border_mode=1), W),
    "pair": (dict(border_mode=(2, 1)), W),
    "asymmetric": (dict(border_mode=((1, 0), (0, 2))), W),
    "subsample": (dict(border_mode="valid", subsample=(2, 2)), W),
    "subsample_full": (dict(border_mode="full", subsample=(3, 2)), W),
    "no_flip": (dict(border_mode="half", filter_flip=False), W),
    "dilation": (dict(border_mode="valid", filter_dilation=(2, 1)), W),
    "dilation_half": (dict(border_mode="half", filter_dilation=(2, 2)), W),
    "groups": (dict(border_mode="valid", num_groups=2), W_GROUPED),
    "everything": (dict(border_mode="full", subsample=(2, 1), filter_flip=False,
                        filter_dilation=(1, 2), num_groups=2), W_GROUPED),
}


def _reference(x, w, kw):
    dilation = kw.get("filter_dilation", (1, 1))
    return np_conv2d(x, w, _pads(kw["border_mode"], w.shape[2:], dilation),
                     kw.get("subsample", (1, 1)), kw.get("filter_flip", True), dilation,
                     kw.get("num_groups", 1))


@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_conv2d_matches_numpy(name):
    kw, w = CONV_CASES[name]
    x_var, w_var = T.dtensor4("x"), T.dtensor4("w")
    out = conv2d(x_var, w_var, **kw)
    got = theano.function([x_var, w_var], out)(X, w)
    want = _reference(X, w, kw)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    expected = abstract_conv.get_conv_output_shape(X.shape, w.shape, kw["border_mode"],
                                                   kw.get("subsample", (1, 1)),
                                                   kw.get("filter_dilation", (1, 1)))
    assert got.shape == expected


@pytest.mark.parametrize("name", ["valid", "full", "half", "asymmetric", "subsample_full",
                                  "no_flip", "dilation", "groups", "everything"])
def test_conv2d_grad_matches_finite_differences(name):
    kw, w = CONV_CASES[name]
    x = RNG.standard_normal((1, 4, 5, 5))
    assert_grad_matches_fd(lambda a, b: conv2d(a, b, **kw), [x, w[:3] if name not in (
        "groups", "everything") else w[:4]])


def test_conv2d_types_and_shape_arguments():
    x, w = T.ftensor4("x"), T.ftensor4("w")
    out = conv2d(x, w, input_shape=(2, 4, 7, 6), filter_shape=(6, 4, 3, 2))
    assert out.type == T.ftensor4().type
    f = theano.function([x, w], out)
    assert f(X.astype("float32"), W.astype("float32")).dtype == np.float32
    with pytest.raises(ValueError, match="input_shape"):
        f(X[:, :, :5].astype("float32"), W.astype("float32"))
    row = T.TensorType("float64", (True, False, False, False))("row")
    assert conv2d(row, T.dtensor4()).broadcastable == (True, False, False, False)
    with pytest.raises(TypeError, match="4-d"):
        conv2d(T.dmatrix("m"), T.dtensor4())
    with pytest.raises(ValueError, match="border_mode"):
        conv2d(T.dtensor4(), T.dtensor4(), border_mode="same")
    with pytest.warns(UserWarning, match="input_shape"):
        renamed = conv2d(x, w, image_shape=(2, 4, 7, 6))
    assert renamed.type == out.type


def test_conv2d_channel_mismatch_names_the_expression():
    x, w = T.dtensor4("images"), T.dtensor4("kernels")
    f = theano.function([x, w], conv2d(x, w))
    with pytest.raises(Exception, match="images") as info:
        f(X, RNG.standard_normal((6, 3, 3, 3)))
    assert "kernels" in str(info.value)


def test_old_conv2d_interface():
    x, w = T.dtensor4("x"), T.dtensor4("w")
    for mode in ("valid", "full"):
        out = conv.conv2d(x, w, image_shape=X.shape, filter_shape=W.shape, border_mode=mode,
                          unroll_batch=2)
        got = theano.function([x, w], out)(X, W)
        np.testing.assert_allclose(got, _reference(X, W, {"border_mode": mode}), rtol=1e-10)
    with pytest.raises(ValueError, match="valid"):
        conv.conv2d(x, w, border_mode="half")
    assert T.nnet.conv.conv2d is conv.conv2d and T.nnet.conv2d is conv2d


@pytest.mark.parametrize("kw", [dict(border_mode="valid", subsample=(2, 2)),
                                dict(border_mode="half", filter_flip=False),
                                dict(border_mode=(1, 2), subsample=(2, 3), num_groups=2)])
def test_conv2d_grad_wrt_inputs_is_the_gradient_of_conv2d(kw):
    x, w, dy = T.dtensor4("x"), T.dtensor4("w"), T.dtensor4("dy")
    filters = W if kw.get("num_groups", 1) == 1 else W_GROUPED
    out = conv2d(x, w, **kw)
    lop = T.Lop(out, x, dy)
    transposed = abstract_conv.conv2d_grad_wrt_inputs(dy, w, input_shape=(None, None, 7, 6),
                                                      **kw)
    dy_value = RNG.standard_normal(theano.function([x, w], out)(X, filters).shape)
    want, got = theano.function([x, w, dy], [lop, transposed],
                                on_unused_input="ignore")(X, filters, dy_value)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert_grad_matches_fd(
        lambda a, b: abstract_conv.conv2d_grad_wrt_inputs(a, b, input_shape=(1, None, 7, 6),
                                                          **kw),
        [dy_value[:1], filters])


@needs_torch
def test_conv2d_matches_torch_on_a_larger_case():
    x = RNG.standard_normal((8, 6, 33, 29)).astype("float32")
    w = RNG.standard_normal((12, 3, 5, 3)).astype("float32")
    xv, wv = T.ftensor4("x"), T.ftensor4("w")
    out = conv2d(xv, wv, border_mode=(2, 1), subsample=(2, 1), filter_dilation=(1, 2),
                 num_groups=2)
    cost = (out ** 2).sum()
    got, gx, gw = theano.function([xv, wv], [out, *T.grad(cost, [xv, wv])])(x, w)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    yt = F.conv2d(xt, torch.flip(wt, dims=(2, 3)), stride=(2, 1), padding=(2, 1),
                  dilation=(1, 2), groups=2)
    (yt ** 2).sum().backward()
    np.testing.assert_allclose(got, yt.detach().numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-3, atol=1e-1)


@needs_torch
def test_conv2d_transpose_matches_torch():
    h = RNG.standard_normal((2, 6, 5, 4)).astype("float32")
    w = RNG.standard_normal((6, 3, 3, 3)).astype("float32")
    hv, wv = T.ftensor4("h"), T.ftensor4("w")
    out = conv2d_transpose(hv, wv, output_shape=(2, 3, 10, 8), border_mode=1,
                           input_dilation=(2, 2), filter_flip=False)
    got = theano.function([hv, wv], out)(h, w)
    want = F.conv_transpose2d(torch.tensor(h), torch.tensor(w), stride=2, padding=1,
                              output_padding=(1, 1)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


# -- pool_2d ------------------------------------------------------------------------------------

POOL_INPUT = RNG.standard_normal((2, 3, 7, 6))
# (ws, stride, pad): overlapping, non-overlapping, leftover cells, padding
GEOMETRIES = [((2, 2), None, (0, 0)), ((3, 2), (2, 1), (0, 0)), ((2, 3), (3, 3), (0, 0)),
              ((3, 3), (2, 2), (1, 1)), ((4, 3), (1, 2), (2, 1))]


def _pool_cases():
    for mode in pool.MODES:
        for ignore_border in (True, False):
            for ws, stride, pad in GEOMETRIES:
                if pad != (0, 0) and not ignore_border:
                    continue
                yield mode, ignore_border, ws, stride, pad


POOL_CASES = list(_pool_cases())
POOL_IDS = [f"{m}-{'ib' if i else 'noib'}-ws{w[0]}{w[1]}-st{s[0]}{s[1]}-pad{p[0]}{p[1]}"
            if s else f"{m}-{'ib' if i else 'noib'}-ws{w[0]}{w[1]}-pad{p[0]}{p[1]}"
            for m, i, w, s, p in POOL_CASES]


@pytest.mark.parametrize("mode,ignore_border,ws,stride,pad", POOL_CASES, ids=POOL_IDS)
def test_pool_2d_matches_numpy(mode, ignore_border, ws, stride, pad):
    x = T.dtensor4("x")
    out = pool.pool_2d(x, ws=ws, ignore_border=ignore_border, stride=stride, pad=pad, mode=mode)
    got = theano.function([x], out)(POOL_INPUT)
    want = np_pool(POOL_INPUT, ws, stride or ws, pad, ignore_border, mode)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode,ignore_border,ws,stride,pad",
                         [c for c in POOL_CASES if c[2:] in [((3, 2), (2, 1), (0, 0)),
                                                             ((3, 3), (2, 2), (1, 1))]])
def test_pool_2d_grad_matches_finite_differences(mode, ignore_border, ws, stride, pad):
    x = RNG.permutation(2 * 7 * 6).reshape(1, 2, 7, 6) / 10.0   # distinct values: no ties
    assert_grad_matches_fd(lambda a: pool.pool_2d(a, ws=ws, ignore_border=ignore_border,
                                                  stride=stride, pad=pad, mode=mode), [x])


def test_pool_2d_old_names_other_ranks_and_warnings():
    x3 = T.dtensor3("x3")
    with pytest.warns(UserWarning, match="ignore_border"), pytest.warns(Warning, match="'ds'"):
        out = pool.pool_2d(x3, ds=(2, 2))
    with pytest.warns(Warning, match="'st'"):
        strided = pool.pool_2d(x3, ws=(2, 2), st=(1, 1), ignore_border=True)
    with pytest.warns(Warning, match="'padding'"):
        padded = pool.pool_2d(x3, ws=(2, 2), padding=(1, 1), ignore_border=True, mode="sum")
    value = POOL_INPUT[0]
    got = theano.function([x3], [out, strided, padded])(value)
    np.testing.assert_allclose(got[0], np_pool(value, (2, 2), (2, 2), (0, 0), False, "max"))
    np.testing.assert_allclose(got[1], np_pool(value, (2, 2), (1, 1), (0, 0), True, "max"))
    np.testing.assert_allclose(got[2], np_pool(value, (2, 2), (2, 2), (1, 1), True, "sum"))
    m = T.dmatrix("m")
    got = theano.function([m], pool.pool_2d(m, ws=(3, 2), ignore_border=True,
                                            mode="average_exc_pad"))(value[0])
    np.testing.assert_allclose(got, np_pool(value[0], (3, 2), (3, 2), (0, 0), True,
                                            "average_exc_pad"))
    assert out.type == T.dtensor3().type


def test_pool_2d_errors():
    x = T.dtensor4("x")
    with pytest.raises(NotImplementedError, match="ignore_border=True"):
        pool.pool_2d(x, ws=(2, 2), pad=(1, 1), ignore_border=False)
    with pytest.raises(NotImplementedError, match="padding"):
        pool.pool_2d(x, ws=(2, 2), pad=(2, 0), ignore_border=True)
    with pytest.raises(ValueError, match="mode"):
        pool.pool_2d(x, ws=(2, 2), ignore_border=True, mode="median")
    with pytest.raises(ValueError, match="both"):
        pool.pool_2d(x, ws=(2, 2), ds=(2, 2), ignore_border=True)
    with pytest.raises(NotImplementedError, match="dimension"):
        pool.pool_2d(T.dvector(), ws=(2, 2), ignore_border=True)


def test_max_pool_2d_same_size():
    x = T.dtensor4("x")
    value = RNG.permutation(30).reshape(1, 1, 5, 6).astype("float64")
    got = theano.function([x], pool.max_pool_2d_same_size(x, (2, 2)))(value)
    want = np.zeros_like(value)
    for i in range(0, 4, 2):
        for j in range(0, 6, 2):
            block = value[0, 0, i:i + 2, j:j + 2]
            r, c = np.unravel_index(block.argmax(), block.shape)
            want[0, 0, i + r, j + c] = block.max()
    np.testing.assert_allclose(got, want)


@needs_torch
def test_pool_2d_matches_torch_on_a_larger_case():
    x = RNG.standard_normal((16, 8, 31, 27)).astype("float32")
    xv = T.ftensor4("x")
    outs = [pool.pool_2d(xv, ws=(3, 3), stride=(2, 2), pad=(1, 1), ignore_border=True, mode=m)
            for m in ("max", "average_inc_pad", "average_exc_pad")]
    got = theano.function([xv], outs)(x)
    xt = torch.tensor(x)
    want = [F.max_pool2d(xt, 3, 2, 1),
            F.avg_pool2d(xt, 3, 2, 1, count_include_pad=True),
            F.avg_pool2d(xt, 3, 2, 1, count_include_pad=False)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=1e-5)
