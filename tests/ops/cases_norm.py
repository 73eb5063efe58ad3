"""Cases for dragon/ops/norm.py, with references written as plain loops in float64."""
import itertools

import numpy as np

from tests.ops.opcase import Case, rand


def _channel_slices(x, axis):
    """(c, x[..., c, ...]) for each channel c of ``axis``."""
    return [(c, np.take(x, c, axis=axis)) for c in range(x.shape[axis])]


def _batch_norm(x, running_mean, running_var, gamma=None, beta=None, *, axis=1, eps=1e-5,
                training=True, **_):
    """Y, the mean and 1/sqrt(var + eps) used, one channel at a time."""
    y = np.empty_like(x)
    means, inv_stds = [], []
    for c, xc in _channel_slices(x, axis):
        values = xc.ravel()
        if training:
            mean = sum(values) / values.size
            var = sum((v - mean) ** 2 for v in values) / values.size
        else:
            mean, var = running_mean[c], running_var[c]
        inv_std = 1.0 / np.sqrt(var + eps)
        normalized = (xc - mean) * inv_std
        if gamma is not None:
            normalized = normalized * gamma[c]
        if beta is not None:
            normalized = normalized + beta[c]
        index = [slice(None)] * x.ndim
        index[axis] = c
        y[tuple(index)] = normalized
        means.append(mean)
        inv_stds.append(inv_std)
    return y, np.array(means), np.array(inv_stds)


def _spanned(x, param, axis):
    """For each index of x, the index of ``param`` it pairs with (Caffe's Scale/Bias layout)."""
    axis %= x.ndim
    for index in itertools.product(*map(range, x.shape)):
        yield index, index[axis:axis + param.ndim]


def _scale(x, gamma, beta=None, axis=1):
    y = np.empty_like(x)
    for index, p in _spanned(x, gamma, axis):
        y[index] = x[index] * gamma[p] + (0.0 if beta is None else beta[p])
    return y


def _bias_add(x, b, axis=1):
    y = np.empty_like(x)
    for index, p in _spanned(x, b, axis):
        y[index] = x[index] + b[p]
    return y


def _lrn(x, size=5, alpha=1e-4, beta=0.75, k=1.0, mode="across_channels"):
    half = (size - 1) // 2
    n, channels, height, width = x.shape
    y = np.empty_like(x)
    for i, c, h, w in itertools.product(range(n), range(channels), range(height), range(width)):
        if mode == "across_channels":
            window = [x[i, j, h, w] for j in range(c - half, c + half + 1) if 0 <= j < channels]
            denominator = k + alpha / size * sum(v * v for v in window)
        else:
            window = [x[i, c, a, b] for a in range(h - half, h + half + 1)
                      for b in range(w - half, w + half + 1) if 0 <= a < height and 0 <= b < width]
            denominator = k + alpha / size ** 2 * sum(v * v for v in window)
        y[i, c, h, w] = x[i, c, h, w] * denominator ** -beta
    return y


def _mvn(x, normalize_variance=True, across_channels=False, eps=1e-9):
    y = np.empty_like(x)
    groups = [(i,) for i in range(x.shape[0])] if across_channels else \
        list(itertools.product(range(x.shape[0]), range(x.shape[1])))
    for group in groups:
        values = x[group]
        mean = values.sum() / values.size
        centered = values - mean
        if normalize_variance:
            centered = centered / (np.sqrt((centered ** 2).sum() / values.size) + eps)
        y[group] = centered
    return y


def _l2_normalize(x, axis=1, eps=1e-10):
    moved = np.moveaxis(x, axis, -1)
    y = np.empty_like(moved)
    for index in itertools.product(*map(range, moved.shape[:-1])):
        vector = moved[index]
        y[index] = vector / np.sqrt(sum(v * v for v in vector) + eps)
    return np.moveaxis(y, -1, axis)


def _layer_norm(x, gamma=None, beta=None, axis=-1, eps=1e-5):
    axis %= x.ndim
    rows = x.reshape(int(np.prod(x.shape[:axis])), -1)
    y = np.empty_like(rows)
    for r, row in enumerate(rows):
        mean = sum(row) / row.size
        var = sum((v - mean) ** 2 for v in row) / row.size
        y[r] = (row - mean) / np.sqrt(var + eps)
        if gamma is not None:
            y[r] *= gamma.ravel()
        if beta is not None:
            y[r] += beta.ravel()
    return y.reshape(x.shape)


def _running_stats(channels, seed):
    return [rand(channels, seed=seed), rand(channels, low=0.5, high=1.5, seed=seed + 1)]


CASES = [
    # BatchNorm: running stats (inputs 1, 2) get no gradient; FD checks X, gamma and beta.
    Case("BatchNorm", [rand(4, 3, 2, 2), *_running_stats(3, 10), rand(3, seed=12),
                       rand(3, seed=13)], reference=_batch_norm, grad=(0, 3, 4)),
    Case("BatchNorm", [rand(6, 4), *_running_stats(4, 20)], reference=_batch_norm, grad=(0,),
         name="2d_no_affine"),
    Case("BatchNorm", [rand(3, 2, 2, 3), *_running_stats(3, 30), rand(3, seed=32)],
         args={"axis": -1, "eps": 1e-3}, reference=_batch_norm, grad=(0, 3), name="nhwc_gamma"),
    Case("BatchNorm", [rand(4, 3, 2, 2), *_running_stats(3, 40), rand(3, seed=42),
                       rand(3, seed=43)], args={"training": False}, reference=_batch_norm,
         grad=(0, 3, 4), name="inference"),
    Case("BatchNorm", [rand(5, 3, 2), *_running_stats(3, 50), rand(3, seed=52),
                       rand(3, seed=53)], args={"running_update": "accumulate"},
         reference=_batch_norm, grad=(0, 3, 4), grad_outputs=(0,), name="y_only_cost"),
    Case("Scale", [rand(2, 3, 2, 2), rand(3, seed=1)], reference=_scale),
    Case("Scale", [rand(2, 3, 2, 2), rand(3, 2, seed=1), rand(3, 2, seed=2)],
         reference=_scale, name="two_axes_bias"),
    Case("Scale", [rand(2, 3, 4), rand(4, seed=1), rand(4, seed=2)], args={"axis": -1},
         reference=_scale, name="last_axis"),
    Case("Scale", [rand(3, 4), rand(seed=1)], args={"axis": 0}, reference=_scale,
         name="scalar"),
    Case("BiasAdd", [rand(2, 3, 2, 2), rand(3, seed=1)], reference=_bias_add),
    Case("BiasAdd", [rand(2, 3, 4), rand(3, 4, seed=1)], reference=_bias_add, name="two_axes"),
    Case("LRN", [rand(2, 5, 3, 3)], args={"size": 3, "alpha": 1.5, "beta": 0.75, "k": 2.0},
         reference=_lrn),
    Case("LRN", [rand(1, 3, 2, 3, low=-3, high=3)], reference=_lrn, name="caffe_defaults"),
    Case("LRN", [rand(2, 2, 4, 5)], args={"size": 3, "alpha": 3.0, "beta": 0.6,
                                          "mode": "within_channel"},
         reference=_lrn, name="within_channel"),
    Case("LRN", [rand(1, 2, 3, 3)], args={"size": 3, "alpha": 2.0, "mode": "within_channel"},
         reference=_lrn, name="within_channel_caffe_beta"),
    Case("MVN", [rand(2, 3, 4, 4)], reference=_mvn),
    Case("MVN", [rand(2, 3, 3, 4)], args={"across_channels": True}, reference=_mvn,
         name="across_channels"),
    Case("MVN", [rand(2, 3, 2, 3)], args={"normalize_variance": False}, reference=_mvn,
         name="mean_only"),
    Case("MVN", [rand(3, 2, 5)], args={"eps": 0.1}, reference=_mvn, name="large_eps"),
    Case("LayerNorm", [rand(3, 5), rand(5, seed=1), rand(5, seed=2)], reference=_layer_norm),
    Case("LayerNorm", [rand(2, 3, 4)], args={"axis": 1, "eps": 0.1}, reference=_layer_norm,
         name="axis1_no_affine"),
    Case("LayerNorm", [rand(2, 3, 4), rand(3, 4, seed=1)], args={"axis": -2},
         reference=_layer_norm, name="gamma_only"),
    Case("L2Normalize", [rand(2, 3, 2, 2)], reference=_l2_normalize),
    Case("L2Normalize", [rand(3, 4)], args={"axis": -1, "eps": 0.01}, reference=_l2_normalize,
         name="last_axis"),
]
