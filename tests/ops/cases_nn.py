"""Cases for dragon/ops/nn.py."""
import numpy as np

from tests.ops.opcase import Case, rand


def _fc(x, w, b=None, axis=1, transpose_w=True):
    x2 = x.reshape(int(np.prod(x.shape[:axis])), -1)
    y = x2 @ (w.T if transpose_w else w)
    if b is not None:
        y = y + b
    return y.reshape(x.shape[:axis] + (y.shape[-1],))


CASES = [
    Case("FullyConnected", [rand(3, 4), rand(5, 4, seed=1), rand(5, seed=2)], reference=_fc),
    Case("FullyConnected", [rand(2, 2, 3), rand(6, 4, seed=1)], args={"transpose_w": False},
         reference=_fc, name="no_bias_no_transpose"),
    Case("FullyConnected", [rand(2, 3, 2, 2), rand(3, 4, seed=1), rand(3, seed=2)],
         args={"axis": 2}, reference=_fc, name="axis2"),
]
