"""Behaviour of the normalization ops that the registry cases do not cover."""
import numpy as np
import pytest

import dragon
from dragon.core.tensor import apply
from tests.ops import opcase
from tests.ops.cases_norm import CASES, _batch_norm


def _stats(x, axis=1):
    axes = tuple(i for i in range(x.ndim) if i != axis)
    return x.mean(axis=axes), x.var(axis=axes)


def _running_bn(x, mean0, var0, **args):
    """A BatchNorm whose running statistics are workspace variables; returns (f, mean, var)."""
    xt = dragon.placeholder(x.shape, x.dtype)
    running_mean, running_var = dragon.variable(mean0), dragon.variable(var0)
    outputs = apply("BatchNorm", [xt, running_mean, running_var], **args)
    return dragon.function([xt], outputs), running_mean, running_var


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    return (rng.normal(2.0, 3.0, (8, 3, 4, 4)), rng.normal(size=3),
            rng.uniform(0.5, 2.0, size=3))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_forward_is_the_same_when_run_in_place(case):
    expected = opcase.run_forward(case, level=0)
    for got, want in zip(opcase.run_forward(case, level=2), expected):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, err_msg=case.id)


def test_batch_norm_ema_updates_running_stats_in_place(batch):
    x, mean0, var0 = batch
    f, running_mean, running_var = _running_bn(x, mean0, var0, momentum=0.8)
    f(x)
    f(x)
    mean, var = _stats(x)
    m = x.size // 3
    expected_mean, expected_var = mean0, var0
    for _ in range(2):
        expected_mean = 0.8 * expected_mean + 0.2 * mean
        expected_var = 0.8 * expected_var + 0.2 * var * m / (m - 1)
    np.testing.assert_allclose(running_mean.get_value(), expected_mean, rtol=1e-12)
    np.testing.assert_allclose(running_var.get_value(), expected_var, rtol=1e-12)


def test_batch_norm_accumulate_is_caffes_moving_sum(batch):
    x, mean0, var0 = batch
    f, running_mean, running_var = _running_bn(
        x, mean0, var0, momentum=0.999, running_update="accumulate", unbiased_running_var=False)
    f(x)
    mean, var = _stats(x)
    np.testing.assert_allclose(running_mean.get_value(), 0.999 * mean0 + mean, rtol=1e-12)
    np.testing.assert_allclose(running_var.get_value(), 0.999 * var0 + var, rtol=1e-12)


def test_batch_norm_inference_reads_running_stats_and_leaves_them(batch):
    x, mean0, var0 = batch
    f, running_mean, running_var = _running_bn(x, mean0, var0, training=False, eps=1e-3)
    y, saved_mean, saved_inv_std = f(x)
    np.testing.assert_array_equal(running_mean.get_value(), mean0)
    np.testing.assert_array_equal(running_var.get_value(), var0)
    np.testing.assert_allclose(saved_mean, mean0)
    np.testing.assert_allclose(saved_inv_std, 1 / np.sqrt(var0 + 1e-3))
    np.testing.assert_allclose(y, _batch_norm(x, mean0, var0, training=False, eps=1e-3)[0])


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_batch_norm_updates_once_per_training_step(batch, level):
    x, mean0, var0 = batch
    xt = dragon.placeholder(x.shape, x.dtype)
    running_mean, running_var = dragon.variable(mean0), dragon.variable(var0)
    gamma = dragon.variable(np.ones(3))
    y, _, _ = apply("BatchNorm", [xt, running_mean, running_var, gamma])
    cost = dragon.ops.reduce_sum(dragon.ops.relu(y) * y)
    grads = dragon.grad(cost, [xt, gamma])
    previous = dragon.config.get_optimization_level()
    dragon.config.set_optimization_level(level)
    try:
        dragon.function([xt], grads)(x)
    finally:
        dragon.config.set_optimization_level(previous)
    np.testing.assert_allclose(running_mean.get_value(), 0.9 * mean0 + 0.1 * _stats(x)[0])


def test_batch_norm_float32_keeps_precision_for_offset_inputs():
    rng = np.random.default_rng(1)
    x = (1000.0 + rng.normal(size=(16, 4, 8, 8))).astype(np.float32)
    f, _, _ = _running_bn(x, np.zeros(4, np.float32), np.ones(4, np.float32))
    y, _, _ = f(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=(0, 2, 3)), 1, atol=1e-3)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_parameter_gradients_alone_match_the_full_gradient(batch, training):
    x, mean0, var0 = batch
    xt = dragon.placeholder(x.shape, x.dtype)
    gamma, beta = dragon.variable(np.linspace(0.5, 1.5, 3)), dragon.variable(np.ones(3))
    y, _, _ = apply("BatchNorm", [xt, dragon.variable(mean0), dragon.variable(var0), gamma,
                                  beta], training=training)
    cost = dragon.ops.reduce_sum(y * dragon.constant(np.random.default_rng(2).normal(
        size=x.shape)))
    full = dragon.function([xt], dragon.grad(cost, [xt, gamma, beta]))(x)
    only_gamma = dragon.function([xt], dragon.grad(cost, gamma))(x)
    only_beta = dragon.function([xt], dragon.grad(cost, beta))(x)
    np.testing.assert_allclose(only_gamma, full[1], rtol=1e-10)
    np.testing.assert_allclose(only_beta, full[2], rtol=1e-10)


def test_batch_norm_names_the_mismatched_statistic():
    x = dragon.placeholder((2, 3, 4, 4))
    with pytest.raises(dragon.ShapeError, match=r"running_var has shape \(4,\), expected \(3,\)"
                       r".*\(2, 3, 4, 4\)"):
        apply("BatchNorm", [x, dragon.placeholder((3,)), dragon.placeholder((4,))])


def test_batch_norm_rejects_bad_arguments_and_vectors():
    x, stat = dragon.placeholder((2, 3)), dragon.placeholder((3,))
    with pytest.raises(dragon.ShapeError, match="running_update must be one of"):
        apply("BatchNorm", [x, stat, stat], running_update="average")
    with pytest.raises(dragon.ShapeError, match="at least 2 dimensions"):
        apply("BatchNorm", [stat, stat, stat])


def test_scale_names_shapes_on_mismatch():
    x = dragon.placeholder((2, 3, 4))
    with pytest.raises(dragon.ShapeError, match=r"gamma of shape \(4,\).*\(2, 3, 4\).*\(3,\)"):
        apply("Scale", [x, dragon.placeholder((4,))])
    with pytest.raises(dragon.ShapeError, match=r"beta of shape \(4,\)"):
        apply("Scale", [x, dragon.placeholder((3, 4)), dragon.placeholder((4,))])
    with pytest.raises(dragon.ShapeError, match=r"bias of shape \(3, 4\)"):
        apply("BiasAdd", [x, dragon.placeholder((3, 4))], axis=2)


def test_scale_and_bias_gradients_resolve_unknown_batch_size():
    rng = np.random.default_rng(3)
    x_value, gamma_value = rng.normal(size=(5, 3, 2, 2)), rng.normal(size=3)
    x = dragon.placeholder((None, 3, 2, 2), "float64")
    gamma, beta = dragon.variable(gamma_value), dragon.variable(rng.normal(size=3))
    bias = dragon.variable(rng.normal(size=(3, 2)))
    y = dragon.ops.bias_add(dragon.ops.scale(x, gamma, beta), bias)
    dx, dgamma, dbeta, dbias = dragon.function(
        [x], dragon.grad(dragon.ops.reduce_sum(y * y), [x, gamma, beta, bias]))(x_value)
    dy = 2 * (x_value * gamma_value[:, None, None] + beta.get_value()[:, None, None]
              + bias.get_value()[:, :, None])
    np.testing.assert_allclose(dx, dy * gamma_value[:, None, None])
    np.testing.assert_allclose(dgamma, (dy * x_value).sum(axis=(0, 2, 3)))
    np.testing.assert_allclose(dbeta, dy.sum(axis=(0, 2, 3)))
    np.testing.assert_allclose(dbias, dy.sum(axis=(0, 3)))


@pytest.mark.parametrize("args, message", [
    ({"size": 4}, "odd window size, got size=4"),
    ({"mode": "across"}, "mode must be one of"),
    ({"mode": "within_channel"}, r"at least 3 dimensions.*\(2, 3\)"),
])
def test_lrn_rejects_bad_arguments(args, message):
    with pytest.raises(dragon.ShapeError, match=message):
        apply("LRN", [dragon.placeholder((2, 3))], **args)


def test_lrn_window_wider_than_the_channels():
    x = np.random.default_rng(4).normal(size=(1, 2, 1, 1))
    y = dragon.function([xt := dragon.placeholder(x.shape, x.dtype)],
                        dragon.ops.lrn(xt, size=9, alpha=9.0, beta=1.0))(x)
    np.testing.assert_allclose(y, x / (1 + (x ** 2).sum()))


def test_mvn_of_constant_slices_is_zero_with_finite_gradient():
    x = dragon.placeholder((2, 2, 3), "float64")
    y = dragon.ops.mvn(x)
    gx = dragon.grad(dragon.ops.reduce_sum(y * dragon.constant(np.ones((2, 2, 3)))), x)
    value = np.full((2, 2, 3), 7.0)
    y_value, gx_value = dragon.function([x], [y, gx])(value)
    np.testing.assert_array_equal(y_value, 0)
    assert np.isfinite(gx_value).all()


def test_layer_norm_parameter_gradients_alone_match_the_full_gradient():
    rng = np.random.default_rng(5)
    x_value = rng.normal(size=(4, 6))
    x = dragon.placeholder(x_value.shape, "float64")
    gamma, beta = dragon.variable(rng.normal(size=6)), dragon.variable(rng.normal(size=6))
    y = dragon.ops.layer_norm(x, gamma, beta)
    cost = dragon.ops.reduce_sum(y * dragon.constant(rng.normal(size=x_value.shape)))
    full = dragon.function([x], dragon.grad(cost, [x, gamma, beta]))(x_value)
    alone = [dragon.function([x], dragon.grad(cost, p))(x_value) for p in (gamma, beta)]
    np.testing.assert_allclose(alone[0], full[1], rtol=1e-12)
    np.testing.assert_allclose(alone[1], full[2], rtol=1e-12)


def test_layer_norm_names_the_expected_parameter_shape():
    x = dragon.placeholder((2, 3, 4))
    with pytest.raises(dragon.ShapeError, match=r"beta has shape \(4,\), expected \(3, 4\)"):
        dragon.ops.layer_norm(x, dragon.placeholder((3, 4)), dragon.placeholder((4,)), axis=1)


def test_mvn_and_l2_normalize_reject_bad_shapes():
    with pytest.raises(dragon.ShapeError, match=r"at least 2 dimensions.*\(4,\)"):
        dragon.ops.mvn(dragon.placeholder((4,)))
    with pytest.raises(dragon.ShapeError, match="axis 2 is out of range"):
        dragon.ops.l2_normalize(dragon.placeholder((4, 3)), axis=2)
