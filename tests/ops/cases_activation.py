"""Cases for dragon/ops/activation.py."""
import math

import numpy as np

from tests.ops.opcase import Case, away_from, rand

SELU_ALPHA = 1.6732632423543772848170429916717  # from the SELU paper
SELU_SCALE = 1.0507009873554804934193349852946


def _elementwise(fn):
    """A reference applying the scalar function ``fn`` to every entry, one at a time."""
    def reference(x, **args):
        return np.array([fn(float(v), **args) for v in x.reshape(-1)]).reshape(x.shape)
    return reference


def _ultra_fast_sigmoid(v):
    t = abs(v) / 2
    if t < 1.7:
        z = 1.5 * t / (1 + t)
    elif t < 3:
        z = 0.935409070603099 + 0.0458812946797165 * (t - 1.7)
    else:
        z = 0.99505475368673
    return (1 + math.copysign(z, v)) / 2


def _prelu(x, slope):
    y = np.empty_like(x)
    for c in range(x.shape[1]):
        s = slope[c] if slope.size > 1 else slope[0]
        y[:, c] = np.where(x[:, c] > 0, x[:, c], s * x[:, c])
    return y


def _softmax(x, axis=1):
    e = np.exp(x)  # no max subtraction: a different formulation from the kernel's
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x, axis=1):
    return np.log(_softmax(x, axis))


def _check_dropout(outputs, inputs, args):
    y, mask = outputs
    x, = inputs
    prob, training, scale = args.get("prob", 0.5), args.get("training", True), args.get("scale", True)
    kept = 1.0 / (1.0 - prob) if scale else 1.0
    if training:
        assert set(np.unique(mask)) <= {0.0, kept}, np.unique(mask)
        assert 0 < np.count_nonzero(mask) < mask.size
    else:
        np.testing.assert_array_equal(mask, np.full_like(x, 1.0 if scale else 1.0 - prob))
    np.testing.assert_allclose(y, x * mask, rtol=1e-12)


CASES = [
    Case("Relu", [away_from(rand(3, 4))], reference=lambda x, **k: np.maximum(x, 0)),
    Case("Relu", [away_from(rand(3, 4))], args={"slope": 0.1},
         reference=lambda x, slope: np.where(x > 0, x, slope * x), name="leaky"),
    Case("Sigmoid", [rand(3, 4, low=-6, high=6)],
         reference=_elementwise(lambda v: 1 / (1 + math.exp(-v)))),
    Case("HardSigmoid", [away_from(rand(3, 5, low=-4, high=4), (-2.5, 2.5))],
         reference=lambda x, **k: np.minimum(np.maximum(0.2 * x + 0.5, 0), 1)),
    Case("HardSigmoid", [away_from(rand(4, 3, low=-4, high=4), (-1.0, 1.0))],
         args={"alpha": 0.5, "beta": 0.5},
         reference=lambda x, alpha, beta: np.minimum(np.maximum(alpha * x + beta, 0), 1),
         name="alpha"),
    Case("UltraFastSigmoid", [away_from(rand(4, 6, low=-8, high=8), (-3.4, 3.4))],
         reference=_elementwise(_ultra_fast_sigmoid), grad=()),
    Case("Swish", [rand(3, 4, low=-4, high=4)],
         reference=_elementwise(lambda v: v / (1 + math.exp(-v)))),
    Case("Swish", [rand(3, 4, low=-4, high=4)], args={"beta": 1.5},
         reference=_elementwise(lambda v, beta: v / (1 + math.exp(-beta * v))), name="beta"),
    Case("Tanh", [rand(3, 4, low=-3, high=3)],
         reference=_elementwise(lambda v: (math.exp(2 * v) - 1) / (math.exp(2 * v) + 1))),
    Case("Elu", [away_from(rand(3, 4, low=-3, high=3))],
         reference=_elementwise(lambda v: v if v > 0 else math.exp(v) - 1)),
    Case("Elu", [away_from(rand(3, 4, low=-3, high=3))], args={"alpha": 0.5},
         reference=_elementwise(lambda v, alpha: v if v > 0 else alpha * (math.exp(v) - 1)),
         name="alpha"),
    Case("Selu", [away_from(rand(3, 4, low=-3, high=3))],
         reference=_elementwise(
             lambda v: SELU_SCALE * (v if v > 0 else SELU_ALPHA * (math.exp(v) - 1)))),
    Case("Softplus", [rand(3, 4, low=-5, high=5)],
         reference=_elementwise(lambda v: math.log(1 + math.exp(v)))),
    Case("Softsign", [rand(3, 4, low=-5, high=5)],
         reference=_elementwise(lambda v: v / (1 + abs(v)))),
    Case("Threshold", [rand(3, 4)], reference=lambda x, **k: (x > 0).astype(x.dtype), grad=()),
    Case("Threshold", [rand(3, 4)], args={"threshold": 0.3},
         reference=lambda x, threshold: (x > threshold).astype(x.dtype), grad=(), name="t"),
    Case("PRelu", [away_from(rand(2, 3, 4)), rand(3, low=0.05, high=0.5, seed=1)],
         reference=_prelu),
    Case("PRelu", [away_from(rand(2, 3, 2, 2)), np.array([0.25])], reference=_prelu,
         name="shared"),
    Case("PRelu", [away_from(rand(4, 3)), rand(3, low=0.05, high=0.5, seed=2)],
         reference=_prelu, name="2d"),
    Case("PRelu", [away_from(rand(3, 2, 2)), rand(2, low=0.05, high=0.5, seed=3)],
         reference=_prelu, grad=(0,), name="input_grad_only"),
    Case("Softmax", [rand(2, 3, 4, low=-2, high=2)], reference=_softmax),
    Case("Softmax", [rand(3, 5, low=-2, high=2)], args={"axis": -1}, reference=_softmax,
         name="last"),
    Case("LogSoftmax", [rand(2, 3, 4, low=-2, high=2)], reference=_log_softmax),
    Case("LogSoftmax", [rand(3, 5, low=-2, high=2)], args={"axis": -1},
         reference=_log_softmax, name="last"),
    Case("Dropout", [rand(4, 5)], args={"prob": 0.3}, check=_check_dropout,
         grad_outputs=(0,), seed=7),
    Case("Dropout", [rand(4, 5)], args={"prob": 0.4, "scale": False}, check=_check_dropout,
         grad_outputs=(0,), seed=8, name="unscaled"),
    Case("Dropout", [rand(4, 5)], args={"prob": 0.4, "training": False, "scale": False},
         check=_check_dropout, grad_outputs=(0,), name="inference"),

]


# Second-order checks: the gradient ops' own gradient rules (Hessians, Rop), by finite
# differences in both inputs (Y is taken as a free input).
def _softmax_grad(y, dy, axis=1):
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


def _log_softmax_grad(y, dy, axis=1):
    return dy - np.exp(y) * dy.sum(axis=axis, keepdims=True)


CASES += [
    Case("SigmoidGradient", [rand(3, 4, low=0.1, high=0.9), rand(3, 4, seed=2)],
         reference=lambda y, dy: dy * y * (1 - y)),
    Case("TanhGradient", [rand(3, 4, low=-0.9, high=0.9), rand(3, 4, seed=3)],
         reference=lambda y, dy: dy * (1 - y ** 2)),
    Case("SoftplusGradient", [rand(3, 4, low=0.05, high=3.0), rand(3, 4, seed=4)],
         reference=lambda y, dy: dy * (1 - np.exp(-y))),
    Case("SoftmaxGradient", [rand(2, 3, 4, low=0.05, high=0.6), rand(2, 3, 4, seed=5)],
         reference=_softmax_grad),
    Case("SoftmaxGradient", [rand(3, 5, low=0.05, high=0.4), rand(3, 5, seed=6)],
         args={"axis": -1}, reference=lambda y, dy, axis: _softmax_grad(y, dy, axis),
         name="last"),
    Case("LogSoftmaxGradient", [rand(2, 3, 4, low=-3, high=-0.2), rand(2, 3, 4, seed=7)],
         reference=_log_softmax_grad),
    Case("LogSoftmaxGradient", [rand(3, 5, low=-3, high=-0.2), rand(3, 5, seed=8)],
         args={"axis": -1}, reference=lambda y, dy, axis: _log_softmax_grad(y, dy, axis),
         name="last"),
]
