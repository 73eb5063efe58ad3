"""Cases for dragon/ops/weighted_sum.py."""
import numpy as np

from tests.ops.opcase import Case, rand


def _weighted_sum(*inputs):
    total = np.zeros_like(inputs[0])
    for x, w in zip(inputs[0::2], inputs[1::2]):
        for index in np.ndindex(*x.shape):
            total[index] += x[index] * w[0]
    return total


CASES = [
    Case("WeightedSum", [rand(3, 4), np.array([1.0]), rand(3, 4, seed=1), np.array([-0.1])],
         reference=_weighted_sum),
    Case("WeightedSum", [rand(2, 5), np.array([0.5]), rand(2, 5, seed=2), np.array([2.0]),
                         rand(2, 5, seed=3), np.array([-1.5])],
         reference=_weighted_sum, name="three_terms"),
]
