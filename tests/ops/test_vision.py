"""Vision ops beyond the registry cases: PyTorch agreement, shape rules, errors, planner levels."""
import numpy as np
import pytest

import dragon
from dragon import ShapeError
from dragon.core.tensor import apply
from tests.ops.cases_vision import conv_reference, pool_reference

RNG = np.random.default_rng(0)


def _float32(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


def _run(op, inputs, args, wrt=(), n_outputs=1, dy_value=None):
    """Outputs of ``op`` and the gradients of sum(out0 * dy) w.r.t. inputs ``wrt``, and dy."""
    phs = [dragon.placeholder(x.shape, x.dtype, name=f"in{i}") for i, x in enumerate(inputs)]
    outs = apply(op, phs, **args)
    outs = outs if isinstance(outs, list) else [outs]
    if dy_value is None:
        dy_value = _float32(*outs[0].shape).astype(inputs[0].dtype)
    fetches = outs[:n_outputs]
    if wrt:
        dy = dragon.placeholder(dy_value.shape, dy_value.dtype, name="dy")
        fetches = fetches + dragon.grad(outs[0], [phs[i] for i in wrt], grad_cost=dy)
        return dragon.function(phs + [dy], fetches)(*inputs, dy_value), dy_value
    return dragon.function(phs, fetches)(*inputs), dy_value


# -- agreement with PyTorch on larger float32 problems --------------------------------------------

TORCH_CONVS = {
    "3x3_pad1_bias": ((4, 16, 20, 20), (32, 16, 3, 3), dict(pads=[1, 1])),
    "stride2_group2_dilation2": ((2, 8, 17, 15), (12, 4, 3, 3),
                                 dict(strides=[2, 2], pads=[2, 1], dilations=[2, 2], group=2)),
    "depthwise_pad1": ((3, 32, 12, 12), (32, 1, 3, 3), dict(pads=[1, 1], group=32)),
    "depthwise_multiplier_stride2": ((2, 16, 13, 13), (32, 1, 3, 3),
                                     dict(strides=[2, 2], pads=[1, 1], group=16)),
    "pointwise": ((4, 24, 9, 9), (40, 24, 1, 1), {}),
    "alexnet_like_11x11_stride4": ((1, 3, 67, 67), (16, 3, 11, 11), dict(strides=[4, 4])),
}


def _close(got, want, scale=1.0):
    want = want.detach().numpy() if hasattr(want, "detach") else want
    tol = 1e-4 * max(1.0, float(np.abs(want).max())) * scale
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=tol)


@pytest.mark.parametrize("name", list(TORCH_CONVS))
def test_conv2d_matches_torch_forward_and_backward(name):
    torch = pytest.importorskip("torch", reason="PyTorch (the bench extra) is not installed: no torch comparison")
    x_shape, w_shape, args = TORCH_CONVS[name]
    x, w, b = _float32(*x_shape), _float32(*w_shape, scale=0.1), _float32(w_shape[0])
    (y, dx, dw, db), dy = _run("Conv2d", [x, w, b], args, wrt=(0, 1, 2))
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=args.get("strides", 1),
                                    padding=tuple(args.get("pads", [0, 0])),
                                    dilation=args.get("dilations", 1), groups=args.get("group", 1))
    ty.backward(torch.from_numpy(dy))
    assert y.dtype == dx.dtype == dw.dtype == np.float32
    _close(y, ty)
    _close(dx, tx.grad)
    _close(dw, tw.grad, scale=10)  # sums over the whole batch
    _close(db, tb.grad, scale=10)


TORCH_DECONVS = {
    "stride2_pad1": ((2, 16, 10, 10), (16, 8, 4, 4), dict(strides=[2, 2], pads=[1, 1])),
    "output_padding_group2": ((2, 8, 7, 6), (8, 3, 3, 3),
                              dict(strides=[2, 2], pads=[1, 1], output_padding=[1, 1], group=2)),
    "depthwise_stride1": ((2, 12, 9, 9), (12, 1, 3, 3), dict(pads=[1, 1], group=12)),
}


@pytest.mark.parametrize("name", list(TORCH_DECONVS))
def test_conv2d_transpose_matches_torch(name):
    torch = pytest.importorskip("torch", reason="PyTorch (the bench extra) is not installed: no torch comparison")
    x_shape, w_shape, args = TORCH_DECONVS[name]
    group = args.get("group", 1)
    x, w, b = _float32(*x_shape), _float32(*w_shape, scale=0.1), _float32(w_shape[1] * group)
    (y, dx, dw, db), dy = _run("Conv2dTranspose", [x, w, b], args, wrt=(0, 1, 2))
    tx, tw, tb = (torch.tensor(v, requires_grad=True) for v in (x, w, b))
    ty = torch.nn.functional.conv_transpose2d(
        tx, tw, tb, stride=tuple(args["strides"]) if "strides" in args else 1,
        padding=tuple(args["pads"]), output_padding=tuple(args.get("output_padding", [0, 0])),
        groups=group)
    ty.backward(torch.from_numpy(dy))
    _close(y, ty)
    _close(dx, tx.grad)
    _close(dw, tw.grad, scale=10)
    _close(db, tb.grad, scale=10)


TORCH_POOLS = {
    "max_3x3_s2_ceil": (dict(kernel_shape=[3, 3], strides=[2, 2]), (4, 8, 15, 14)),
    "max_3x3_s2_pad1": (dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1]), (2, 8, 16, 16)),
    "avg_3x3_s2_pad1": (dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1], mode="AVG"),
                        (2, 8, 15, 15)),
    "avg_exclude_pad": (dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1], mode="AVG",
                             count_include_pad=False), (2, 8, 16, 16)),
    "avg_2x2_s2_overhang": (dict(kernel_shape=[2, 2], strides=[2, 2], mode="AVG"), (2, 4, 9, 9)),
}


@pytest.mark.parametrize("name", list(TORCH_POOLS))
def test_pool2d_matches_torch(name):
    torch = pytest.importorskip("torch", reason="PyTorch (the bench extra) is not installed: no torch comparison")
    args, shape = TORCH_POOLS[name]
    x = _float32(*shape)
    (y, dx), dy = _run("Pool2d", [x], args, wrt=(0,))
    tx = torch.tensor(x, requires_grad=True)
    kernel, stride, pads = args["kernel_shape"], args["strides"], tuple(args.get("pads", [0, 0]))
    if args.get("mode", "MAX") == "MAX":
        ty = torch.nn.functional.max_pool2d(tx, kernel, stride, pads, ceil_mode=True)
    else:
        ty = torch.nn.functional.avg_pool2d(tx, kernel, stride, pads, ceil_mode=True,
                                            count_include_pad=args.get("count_include_pad", True))
    ty.backward(torch.from_numpy(dy))
    _close(y, ty)
    _close(dx, tx.grad)


def test_max_pool_index_matches_torch_indices():
    torch = pytest.importorskip("torch", reason="PyTorch (the bench extra) is not installed: no torch comparison")
    x = _float32(2, 3, 11, 11)
    args = dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1])
    (y, index), _ = _run("Pool2d", [x], args, n_outputs=2)
    _, t_index = torch.nn.functional.max_pool2d(torch.from_numpy(x), 3, 2, 1, ceil_mode=True,
                                                return_indices=True)
    assert index.dtype == np.int32
    np.testing.assert_array_equal(index, t_index.numpy())


# -- shape rules --------------------------------------------------------------------------------

def _shape(op, shapes, **args):
    phs = [dragon.placeholder(s, "float32") for s in shapes]
    outs = apply(op, phs, **args)
    return [tuple(o.shape) for o in outs] if isinstance(outs, list) else tuple(outs.shape)


@pytest.mark.parametrize("size, kernel, stride, pad, expected", [
    (6, 3, 2, 0, 3),     # ceil((6 - 3) / 2) + 1
    (112, 3, 2, 0, 56),  # ResNet's pool1 without padding
    (13, 3, 2, 0, 6),    # AlexNet/SqueezeNet
    (4, 2, 3, 1, 2),     # the last window would start in the bottom padding: dropped
    (5, 1, 3, 0, 2),     # Theano's ignore_border=False: no window starts past the input
])
def test_pool_output_size_rounds_up_like_caffe(size, kernel, stride, pad, expected):
    shapes = _shape("Pool2d", [(1, 1, size, size)], kernel_shape=[kernel, kernel],
                    strides=[stride, stride], pads=[pad, pad])
    assert shapes[0] == (1, 1, expected, expected)


def test_pool_floor_mode_and_global_and_avg_dummy_index():
    assert _shape("Pool2d", [(2, 3, 7, 7)], kernel_shape=[2, 2], strides=[2, 2],
                  ceil_mode=False)[0] == (2, 3, 3, 3)
    assert _shape("Pool2d", [(2, 3, 7, 5)], global_pooling=True) == [(2, 3, 1, 1), (2, 3, 1, 1)]
    assert _shape("Pool2d", [(2, 3, 7, 5)], kernel_shape=[3, 3], mode="AVG")[1] == (0,)


def test_conv_and_deconv_output_sizes():
    assert _shape("Conv2d", [(1, 3, 227, 227), (96, 3, 11, 11)], strides=[4, 4]) == (1, 96, 55, 55)
    assert _shape("Conv2d", [(1, 2, 10, 9), (4, 2, 3, 3)], pads=[1, 0, 2, 1],
                  dilations=[2, 1]) == (1, 4, 9, 8)
    # stride * (H - 1) + dil * (k - 1) + 1 - pads + output_padding
    assert _shape("Conv2dTranspose", [(1, 4, 7, 7), (4, 2, 4, 4)], strides=[2, 2],
                  pads=[1, 1]) == (1, 2, 14, 14)
    assert _shape("Conv2dTranspose", [(1, 4, 7, 7), (4, 2, 3, 3)], strides=[2, 2], pads=[1, 1],
                  output_padding=[1, 0]) == (1, 2, 14, 13)


def test_scalar_and_single_value_args():
    assert _shape("Conv2d", [(1, 2, 9, 9), (3, 2, 3, 3)], strides=2, pads=[1]) == (1, 3, 5, 5)
    assert _shape("Pool2d", [(1, 2, 9, 9)], kernel_shape=3, strides=[2])[0] == (1, 2, 4, 4)


# -- errors name the shapes ----------------------------------------------------------------------

@pytest.mark.parametrize("op, shapes, args, words", [
    ("Conv2d", [(2, 3, 5, 5), (4, 2, 3, 3)], {}, ["(2, 3, 5, 5)", "(4, 2, 3, 3)", "channels"]),
    ("Conv2d", [(2, 4, 5, 5), (3, 2, 3, 3)], {"group": 2}, ["(3, 2, 3, 3)", "group 2"]),
    ("Conv2d", [(1, 1, 2, 2), (1, 1, 3, 3)], {}, ["does not fit", "(1, 1, 2, 2)"]),
    ("Conv2d", [(1, 1, 5, 5), (2, 1, 3, 3), (3,)], {}, ["bias (3,)", "(2,)"]),
    ("Conv2d", [(1, 1, 5), (2, 1, 3, 3)], {}, ["4-d", "(1, 1, 5)"]),
    ("Conv2d", [(1, 1, 5, 5), (2, 1, 3, 3)], {"kernel_shape": [5, 5]}, ["kernel_shape"]),
    ("Conv2d", [(1, 1, 5, 5), (2, 1, 3, 3)], {"strides": [0, 1]}, ["strides"]),
    ("Conv2d", [(1, 1, 5, 5), (2, 1, 3, 3)], {"pads": [1, 1, 1]}, ["pads"]),
    ("Conv2dTranspose", [(1, 3, 5, 5), (4, 2, 3, 3)], {}, ["(1, 3, 5, 5)", "(4, 2, 3, 3)"]),
    ("Conv2dTranspose", [(1, 4, 5, 5), (4, 2, 3, 3)], {"output_padding": [1, 1]},
     ["output_padding"]),
    ("Pool2d", [(1, 1, 5, 5)], {"kernel_shape": [3, 3], "pads": [3, 3]}, ["pads", "kernel"]),
    ("Pool2d", [(1, 1, 5, 5)], {}, ["kernel_shape"]),
    ("Pool2d", [(1, 1, 5, 5)], {"kernel_shape": [2, 2], "mode": "AVE"}, ["'AVE'"]),
    ("Pool2d", [(1, 1, 5, 5)], {"global_pooling": True, "pads": [1, 1]}, ["global"]),
    ("Pool2d", [(1, 1, 2, 2)], {"kernel_shape": [3, 3]}, ["does not fit"]),
    ("Im2Col", [(1, 1, 2, 2)], {"kernel_shape": [3, 3]}, ["does not fit"]),
    ("Col2Im", [(1, 8, 3, 3), (1, 1, 5, 5)], {"kernel_shape": [3, 3]}, ["(1, 8, 3, 3)",
                                                                         "(1, 9, 3, 3)"]),
])
def test_shape_errors_name_the_shapes(op, shapes, args, words):
    with pytest.raises(ShapeError) as info:
        _shape(op, shapes, **args)
    for word in words:
        assert word in str(info.value)


def test_gradient_op_checks_dy_shape():
    with pytest.raises(ShapeError, match=r"dY has shape \(1, 2, 4, 4\)"):
        _shape("Conv2dGradient", [(1, 2, 4, 4), (1, 1, 5, 5), (2, 1, 3, 3)])


# -- behaviour -----------------------------------------------------------------------------------

def _small_net_outputs(level):
    """A conv -> pool -> depthwise conv -> deconv net, its output and every input gradient."""
    previous = dragon.config.get_optimization_level()
    dragon.config.set_optimization_level(level)
    try:
        rng = np.random.default_rng(1)
        values = [rng.standard_normal(s).astype(np.float32) for s in
                  [(2, 3, 12, 12), (8, 3, 3, 3), (8,), (8, 1, 3, 3), (8, 4, 2, 2)]]
        x, w1, b1, w2, w3 = [dragon.placeholder(v.shape, "float32", name=f"net{i}")
                             for i, v in enumerate(values)]
        h = dragon.ops.relu(dragon.ops.conv2d(x, w1, b1, pads=[1, 1]))
        h, _ = dragon.ops.pool2d(h, kernel_shape=[3, 3], strides=[2, 2])
        h = dragon.ops.conv2d(h, w2, pads=[1, 1], group=8)
        y = dragon.ops.conv2d_transpose(h, w3, strides=[2, 2])
        cost = dragon.ops.reduce_sum(y * y)
        grads = dragon.grad(cost, [x, w1, b1, w2, w3])
        return dragon.function([x, w1, b1, w2, w3], [y] + grads)(*values)
    finally:
        dragon.config.set_optimization_level(previous)


def test_every_planner_level_gives_the_same_results():
    expected = _small_net_outputs(0)
    for level in range(1, dragon.config.MAX_LEVEL + 1):
        for got, want in zip(_small_net_outputs(level), expected):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("wrt", [(0,), (1,), (2,), (0, 2)])
def test_conv_gradient_computes_only_what_is_needed(wrt):
    x, w, b = _float32(2, 4, 7, 7), _float32(6, 2, 3, 3), _float32(6)
    args = dict(pads=[1, 1], strides=[2, 2], group=2)
    full_outputs, dy = _run("Conv2d", [x, w, b], args, wrt=(0, 1, 2))
    (_, *partial), _ = _run("Conv2d", [x, w, b], args, wrt=wrt, dy_value=dy)
    for got, index in zip(partial, wrt):
        np.testing.assert_allclose(got, full_outputs[1 + index], rtol=1e-5, atol=1e-5)
    phs = [dragon.placeholder(v.shape, "float32") for v in (x, w, b)]
    grads = dragon.grad(dragon.ops.reduce_sum(dragon.ops.conv2d(*phs, **args)),
                        [phs[i] for i in wrt])
    gradient_node = grads[0].node
    assert gradient_node.type == "Conv2dGradient"
    assert gradient_node.args["need"] == [int(i in wrt) for i in range(3)]


def test_im2col_times_filters_is_the_convolution():
    x, w = _float32(2, 3, 9, 8), _float32(5, 3, 3, 3)
    args = dict(kernel_shape=[3, 3], strides=[2, 1], pads=[1, 2], dilations=[1, 2])
    (cols,), _ = _run("Im2Col", [x], args)
    (y,), _ = _run("Conv2d", [x, w], {k: v for k, v in args.items() if k != "kernel_shape"})
    from_cols = np.einsum("ok,nkhw->nohw", w.reshape(5, -1), cols)
    np.testing.assert_allclose(y, from_cols, rtol=1e-5, atol=1e-5)


def test_float64_stays_float64_and_matches_reference():
    x, w = np.random.default_rng(2).standard_normal((2, 4, 6, 6)), np.ones((4, 1, 3, 3))
    (y,), _ = _run("Conv2d", [x, w], dict(pads=[1, 1], group=4))
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, conv_reference(x, w, pads=[1, 1], group=4), rtol=1e-12)


def test_max_pool_ties_pick_the_first_pixel_like_caffe():
    x = np.zeros((1, 1, 4, 4), np.float32)
    (y, index), _ = _run("Pool2d", [x], dict(kernel_shape=[2, 2], strides=[2, 2]), n_outputs=2)
    np.testing.assert_array_equal(index[0, 0], [[0, 2], [8, 10]])
    expected, expected_index = pool_reference(x.astype(np.float64), kernel_shape=[2, 2],
                                               strides=[2, 2])
    np.testing.assert_array_equal(index, expected_index)


def test_unknown_batch_size_compiles_per_shape():
    x = dragon.placeholder((None, 3, 8, 8), "float32", name="x")
    w = dragon.constant(_float32(4, 3, 3, 3))
    f = dragon.function([x], dragon.ops.conv2d(x, w, pads=[1, 1]))
    assert f(_float32(1, 3, 8, 8)).shape == (1, 4, 8, 8)
    assert f(_float32(5, 3, 8, 8)).shape == (5, 4, 8, 8)


def test_convolutions_declare_their_gemm_flops():
    from dragon.ops import registry
    from dragon.ops.registry import spec
    args = dict(kernel_shape=[], strides=[1, 1], pads=[1, 1], dilations=[1, 1], group=2)
    x, w = spec((8, 64, 56, 56)), spec((32, 32, 3, 3))
    forward = 2 * 8 * 32 * 56 * 56 * 32 * 9
    assert registry.get("Conv2d").flops_fn(x, w, **args) == forward
    dy = spec((8, 32, 56, 56))
    assert registry.get("Conv2dGradient").flops_fn(dy, x, w, need=[1, 1, 0], **args) == 2 * forward
    # each of the 8x32x56x56 inputs meets 32 (C_out / group) filters of 3x3
    deconv = registry.get("Conv2dTranspose").flops_fn(dy, spec((32, 32, 3, 3)),
                                                      output_padding=[0, 0], **args)
    assert deconv == forward
