"""Cases for dragon/ops/caffe2_updates.py: one step of each Caffe2 update, per element in float64.

The references follow Caffe2's update formulas one scalar at a time.
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
            values = step(*[a[index] if np.shape(a) == shape else float(np.ravel(a)[0])
                            for a in arrays], **args)
            if results is None:
                results = [np.zeros(shape) for _ in values]
            for out, value in zip(results, values):
                out[index] = value
        return tuple(results)
    return reference


@_elementwise
def momentum_sgd(g, m, lr, w, momentum=0.0, nesterov=0):
    if nesterov:
        m_new = momentum * m + lr * g
        step = (1 + momentum) * m_new - momentum * m
    else:
        m_new = step = lr * g + momentum * m
    return step, m_new, w - step


def adam(w, m1, m2, g, lr, it, beta1=0.9, beta2=0.999, epsilon=1e-8, output_grad=False):
    t = float(it[0]) + 1

    @_elementwise
    def step(w, m1, m2, g, lr):
        m1 = beta1 * m1 + (1 - beta1) * g
        m2 = beta2 * m2 + (1 - beta2) * g * g
        delta = lr * math.sqrt(1 - beta2 ** t) / (1 - beta1 ** t) * m1 / (math.sqrt(m2) + epsilon)
        return w + delta, m1, m2, delta
    out = step(w, m1, m2, g, lr)
    return out if output_grad else out[:3]


@_elementwise
def adagrad(w, h, g, lr, epsilon=1e-5, decay=1.0):
    h = decay * h + g * g
    return w + lr * g / (math.sqrt(h) + epsilon), h


@_elementwise
def rmsprop(g, ms, mom, lr, decay=0.9, momentum=0.0, epsilon=1e-5):
    ms = ms + (1 - decay) * (g * g - ms)
    mom = mom * momentum + lr * g / math.sqrt(epsilon + ms)
    return mom, ms, mom


W, G, M = rand(3, 4), rand(3, 4, seed=1), rand(3, 4, seed=2)
H = rand(3, 4, low=0.0, high=1.0, seed=3)
H2 = rand(3, 4, low=0.0, high=1.0, seed=4)
LR = np.array([0.1])

CASES = [
    Case("MomentumSGDUpdate", [G, M, LR, W], args={"momentum": 0.9}, reference=momentum_sgd,
         grad=()),
    Case("MomentumSGDUpdate", [G, M, LR, W], args={"momentum": 0.9, "nesterov": 1},
         reference=momentum_sgd, grad=(), name="nesterov"),
    Case("Caffe2AdamUpdate", [W, M, H, G, np.array([-0.01]), np.array([4], np.int64)],
         reference=adam, grad=()),
    Case("Caffe2AdamUpdate", [W, M, H, G, np.array([-0.01]), np.array([0], np.int64)],
         args={"beta1": 0.8, "beta2": 0.99, "output_grad": True}, reference=adam, grad=(),
         name="first_step_with_grad"),
    Case("Caffe2AdagradUpdate", [W, H, G, np.array([-0.1])], reference=adagrad, grad=()),
    Case("Caffe2AdagradUpdate", [W, H, G, np.array([-0.1])],
         args={"epsilon": 1e-4, "decay": 0.9}, reference=adagrad, grad=(), name="decay"),
    Case("Caffe2RmsPropUpdate", [G, H, H2, np.array([-0.01])], reference=rmsprop, grad=()),
    Case("Caffe2RmsPropUpdate", [G, H, H2, np.array([-0.01])],
         args={"momentum": 0.9, "decay": 0.95}, reference=rmsprop, grad=(), name="momentum"),
]
