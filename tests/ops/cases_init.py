"""Cases for dragon/ops/init.py: fillers and random streams, checked by their statistics."""
import math

import numpy as np

from tests.ops.opcase import Case

# The truncated normal keeps N(0, 1) within 2 std: its std is sqrt(1 - 4 phi(2) / (2 Phi(2) - 1)).
_PHI_2 = math.exp(-2.0) / math.sqrt(2 * math.pi)
TRUNCATED_STD = math.sqrt(1 - 4 * _PHI_2 / math.erf(2 / math.sqrt(2)))


def _expect(shape, dtype="float32", low=None, high=None, mean=None, std=None, tol=0.03):
    """A check: one output of ``shape``/``dtype`` within [low, high] with the given moments."""
    def check(outputs, inputs, args):
        y, = outputs
        assert y.shape == tuple(shape), (y.shape, shape)
        assert y.dtype == np.dtype(dtype), y.dtype
        if low is not None:
            assert y.min() >= low, (y.min(), low)
        if high is not None:
            assert y.max() <= high, (y.max(), high)
        if mean is not None:
            assert abs(y.mean() - mean) <= tol * max(1.0, abs(mean), std or 0.0), (y.mean(), mean)
        if std is not None:
            assert abs(y.std() - std) <= tol * std, (y.std(), std)
    return check


def _fills_interval(low, high):
    """Extra check: the draws reach close to both ends of [low, high]."""
    def check(outputs, inputs, args):
        y, = outputs
        margin = 0.01 * (high - low)
        assert y.min() < low + margin and y.max() > high - margin, (y.min(), y.max())
    return check


def _both(*checks):
    def check(outputs, inputs, args):
        for c in checks:
            c(outputs, inputs, args)
    return check


def _xavier_check(shape, n):
    limit = math.sqrt(3.0 / n)
    return _both(_expect(shape, low=-limit, high=limit, mean=0.0, std=limit / math.sqrt(3)),
                 _fills_interval(-limit, limit))


def _unit_rows_check(outputs, inputs, args):
    y, = outputs
    rows = y.reshape(args["shape"][0], -1)
    assert y.shape == tuple(args["shape"]) and y.min() >= 0 and y.max() <= 1
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, rtol=1e-5)
    assert len(np.unique(y)) == y.size  # random, not a constant 1/dim


def _binomial_check(n, p, shape, dtype):
    def check(outputs, inputs, args):
        y, = outputs
        assert y.shape == shape and y.dtype == np.dtype(dtype)
        assert set(np.unique(y).tolist()) <= set(range(n + 1))
        assert abs(y.mean() - n * p) < 0.03 * n
        assert abs(y.var() - n * p * (1 - p)) < 0.05 * n * p * (1 - p)
    return check


def _bilinear_reference(shape, dtype="float32"):
    """The FCN upsampling kernel written with an explicit factor and center, by loops."""
    k = shape[-1]
    factor = (k + 1) // 2
    center = factor - 1 if k % 2 == 1 else factor - 0.5
    kernel = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            kernel[i, j] = (1 - abs(i - center) / factor) * (1 - abs(j - center) / factor)
    return np.broadcast_to(kernel, tuple(shape)).copy()


BIG = (100, 200)

CASES = [
    Case("UniformFill", [], args={"shape": list(BIG), "low": -2.0, "high": 3.0}, seed=1,
         check=_both(_expect(BIG, low=-2.0, high=3.0, mean=0.5, std=5 / math.sqrt(12)),
                     _fills_interval(-2.0, 3.0))),
    Case("UniformFill", [], args={"shape": [3, 4], "dtype": "float64"}, seed=1,
         check=_expect((3, 4), "float64", low=0.0, high=1.0), name="float64"),
    Case("GaussianFill", [], args={"shape": list(BIG), "mean": 1.5, "std": 0.5}, seed=2,
         check=_expect(BIG, mean=1.5, std=0.5)),
    Case("TruncatedNormalFill", [], args={"shape": list(BIG), "mean": -1.0, "std": 2.0}, seed=3,
         check=_expect(BIG, low=-5.0, high=3.0, mean=-1.0, std=2.0 * TRUNCATED_STD)),
    Case("XavierFill", [], args={"shape": [64, 32, 3, 3]}, seed=4,
         check=_xavier_check((64, 32, 3, 3), 32 * 9)),
    Case("XavierFill", [], args={"shape": [64, 32, 3, 3], "variance_norm": "FAN_OUT"}, seed=4,
         check=_xavier_check((64, 32, 3, 3), 64 * 9), name="fan_out"),
    Case("XavierFill", [], args={"shape": [64, 32, 3, 3], "variance_norm": "AVERAGE"}, seed=4,
         check=_xavier_check((64, 32, 3, 3), (32 * 9 + 64 * 9) / 2), name="average"),
    Case("XavierFill", [], args={"shape": [500, 40]}, seed=4,
         check=_xavier_check((500, 40), 40), name="fc"),
    Case("MSRAFill", [], args={"shape": [64, 32, 3, 3]}, seed=5,
         check=_expect((64, 32, 3, 3), mean=0.0, std=math.sqrt(2.0 / (32 * 9)))),
    Case("MSRAFill", [], args={"shape": [64, 32, 3, 3], "variance_norm": "AVERAGE"}, seed=5,
         check=_expect((64, 32, 3, 3), mean=0.0, std=math.sqrt(2.0 / 432)), name="average"),
    Case("PositiveUnitballFill", [], args={"shape": [4, 3, 2]}, seed=6, check=_unit_rows_check),
    Case("BilinearFill", [], args={"shape": [2, 3, 4, 4]}, reference=_bilinear_reference),
    Case("BilinearFill", [], args={"shape": [1, 2, 5, 5]}, reference=_bilinear_reference,
         name="odd"),
    Case("BilinearFill", [], args={"shape": [1, 1, 3, 3]}, reference=_bilinear_reference,
         name="size3"),
    Case("GivenTensorFill", [], args={"values": [1.5, -2.0, 3.0, 0.25, 5.0, 6.0], "shape": [2, 3]},
         reference=lambda values, shape, **_: np.reshape(np.array(values), shape)),
    Case("GivenTensorFill", [], args={"values": [7, 8, 9], "shape": [3], "dtype": "int32"},
         check=lambda outs, ins, args: np.testing.assert_array_equal(
             outs[0], np.array([7, 8, 9], np.int32), strict=True), name="int32"),
    Case("RandomUniform", [np.zeros(BIG)], args={"low": -1.0, "high": 1.0}, seed=7, grad=(),
         check=_both(_expect(BIG, low=-1.0, high=1.0, mean=0.0, std=2 / math.sqrt(12)),
                     _fills_interval(-1.0, 1.0))),
    Case("RandomUniform", [], args={"shape": [5, 2], "dtype": "float64"}, seed=7,
         check=_expect((5, 2), "float64", low=0.0, high=1.0), name="shape_arg"),
    Case("RandomNormal", [np.zeros(BIG)], args={"mean": 2.0, "std": 3.0, "dtype": "float64"},
         seed=8, grad=(), check=_expect(BIG, "float64", mean=2.0, std=3.0)),
    Case("RandomBinomial", [np.zeros(BIG)], args={"p": 0.3}, seed=9, grad=(),
         check=_binomial_check(1, 0.3, BIG, "float32")),
    Case("RandomBinomial", [], args={"shape": list(BIG), "n": 5, "p": 0.6, "dtype": "int64"},
         seed=9, check=_binomial_check(5, 0.6, BIG, "int64"), name="counts"),
]
