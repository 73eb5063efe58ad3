"""Cases for dragon/ops/lr.py: the iteration counter and every learning-rate policy."""
import math

import numpy as np

from tests.ops.opcase import Case


def _lr(counter, base_lr, policy="fixed", gamma=0.0, stepsize=0, power=0.0, max_iter=0,
        stepsizes=()):
    it = int(counter.reshape(-1)[0])
    factor = {
        "fixed": lambda: 1.0,
        "step": lambda: gamma ** (it // stepsize),
        "exp": lambda: math.exp(it * math.log(gamma)),
        "inv": lambda: 1.0 / (1.0 + gamma * it) ** power,
        "multistep": lambda: gamma ** len([s for s in stepsizes if s <= it]),
        "poly": lambda: (1.0 - it / max_iter) ** power,
    }[policy]()
    return np.array([base_lr * factor])


IT = np.array([45], np.int64)

CASES = [
    Case("Iter", [np.array([7], np.int64)], reference=lambda x: x + 1, grad=()),
    Case("Iter", [np.array([0], np.int32)], reference=lambda x: x + 1, grad=(), name="int32"),
    Case("LearningRate", [IT], args={"base_lr": 0.5}, reference=_lr, grad=(), rtol=1e-6),
    Case("LearningRate", [IT], args={"base_lr": -0.1, "policy": "step", "stepsize": 20,
                                     "gamma": 0.9}, reference=_lr, grad=(), rtol=1e-6,
         name="step"),
    Case("LearningRate", [IT], args={"base_lr": 0.1, "policy": "exp", "gamma": 0.99},
         reference=_lr, grad=(), rtol=1e-6, name="exp"),
    Case("LearningRate", [IT], args={"base_lr": 0.1, "policy": "inv", "gamma": 1e-3,
                                     "power": 0.75}, reference=_lr, grad=(), rtol=1e-6,
         name="inv"),
    Case("LearningRate", [IT], args={"base_lr": 0.1, "policy": "multistep", "gamma": 0.5,
                                     "stepsizes": [10, 45, 100]}, reference=_lr, grad=(),
         rtol=1e-6, name="multistep"),
    Case("LearningRate", [IT], args={"base_lr": 0.1, "policy": "poly", "power": 2.0,
                                     "max_iter": 100}, reference=_lr, grad=(), rtol=1e-6,
         name="poly"),
]
