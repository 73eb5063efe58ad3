"""Cases for dragon/ops/update.py: one step of each solver, in float64, per element.

References follow Caffe's solver code step by step (history first, then the
parameter), element by element, so they share no vectorized formula with the kernels.
"""
import math

import numpy as np

from tests.ops.opcase import Case, rand


def _elementwise(step):
    """Apply ``step(*scalars) -> tuple of scalars`` to every element of the array inputs."""
    def reference(*arrays, **args):
        shape = np.shape(arrays[0])
        results = None
        for index in np.ndindex(*shape):
            values = step(*[a[index] if np.ndim(a) else float(a) for a in arrays], **args)
            if results is None:
                results = [np.zeros(shape) for _ in values]
            for out, value in zip(results, values):
                out[index] = value
        return tuple(results)
    return reference


@_elementwise
def sgd(w, g, v, lr, momentum=0.9):
    v = momentum * v + lr * g
    return w - v, v


@_elementwise
def nesterov(w, g, v, lr, momentum=0.9):
    v_prev = v
    v = momentum * v + lr * g
    return w - ((1 + momentum) * v - momentum * v_prev), v


@_elementwise
def adagrad(w, g, h, lr, eps=1e-8):
    h = h + g * g
    return w - lr * g / (math.sqrt(h) + eps), h


@_elementwise
def rmsprop(w, g, h, lr, decay=0.99, eps=1e-8):
    h = decay * h + (1 - decay) * g * g
    return w - lr * g / (math.sqrt(h) + eps), h


@_elementwise
def adadelta(w, g, hg, hd, lr, momentum=0.95, eps=1e-6):
    hg = momentum * hg + (1 - momentum) * g * g
    update = g * math.sqrt((hd + eps) / (hg + eps))
    hd = momentum * hd + (1 - momentum) * update * update
    return w - lr * update, hg, hd


@_elementwise
def adam(w, g, m, v, lr, t, beta1=0.9, beta2=0.999, eps=1e-8):
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    correction = math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    return w - lr * correction * m / (math.sqrt(v) + eps), m, v


def weight_decay(grad, param, decay, kind="L2"):
    term = param if kind == "L2" else np.sign(param)
    return grad + decay * term


def clip_by_global_norm(*grads, max_norm, num_grads):
    norm = math.sqrt(sum(float(x) ** 2 for g in grads for x in np.ravel(g)))
    scale = max_norm / norm if norm > max_norm else 1.0
    return tuple(g * scale for g in grads)


LR = np.array(0.1)
W, G, V = rand(3, 4), rand(3, 4, seed=1), rand(3, 4, seed=2)
H = rand(3, 4, low=0.0, high=1.0, seed=3)      # squared-gradient histories are non-negative
H2 = rand(3, 4, low=0.0, high=1.0, seed=4)

CASES = [
    Case("SGDUpdate", [W, G, V, LR], reference=sgd, grad=()),
    Case("SGDUpdate", [W, G, V, np.array(0.5)], args={"momentum": 0.0}, reference=sgd, grad=(),
         name="plain"),
    Case("NesterovUpdate", [W, G, V, LR], args={"momentum": 0.8}, reference=nesterov, grad=()),
    Case("AdaGradUpdate", [W, G, H, LR], reference=adagrad, grad=()),
    Case("RMSPropUpdate", [W, G, H, LR], args={"decay": 0.9}, reference=rmsprop, grad=()),
    Case("AdaDeltaUpdate", [W, G, H, H2, np.array(1.0)], reference=adadelta, grad=()),
    Case("AdaDeltaUpdate", [W, G, np.zeros((3, 4)), np.zeros((3, 4)), LR],
         args={"momentum": 0.9, "eps": 1e-4}, reference=adadelta, grad=(), name="first_step"),
    Case("AdamUpdate", [W, G, V, H, LR, np.array(3.0)], reference=adam, grad=()),
    Case("AdamUpdate", [W, G, np.zeros((3, 4)), np.zeros((3, 4)), np.array(0.01), np.array(1.0)],
         args={"beta1": 0.8, "beta2": 0.99}, reference=adam, grad=(), name="first_step"),
    Case("WeightDecay", [G, W], args={"decay": 5e-2}, reference=weight_decay, grad=()),
    Case("WeightDecay", [G, W], args={"decay": 5e-2, "kind": "L1"}, reference=weight_decay,
         grad=(), name="L1"),
    Case("ClipByGlobalNorm", [rand(3, 4), rand(5, seed=1)],
         args={"max_norm": 0.5, "num_grads": 2}, reference=clip_by_global_norm, grad=()),
    Case("ClipByGlobalNorm", [rand(3, 4), rand(5, seed=1)],
         args={"max_norm": 100.0, "num_grads": 2}, reference=clip_by_global_norm, grad=(),
         name="below_norm"),
    Case("ClipByGlobalNorm", [rand(6)], args={"max_norm": 0.1, "num_grads": 1},
         reference=clip_by_global_norm, grad=(), name="single"),
]
