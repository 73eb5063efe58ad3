"""Cases for dragon/ops/math.py and dragon/ops/basic.py."""
import numpy as np

from tests.ops.opcase import Case, rand

CASES = [
    Case("Add", [rand(3, 4), rand(3, 4, seed=1)], reference=np.add),
    Case("Add", [rand(2, 3, 4), rand(3, 1, seed=1)], reference=np.add, name="broadcast"),
    Case("Sub", [rand(3, 4), rand(4, seed=2)], reference=np.subtract),
    Case("Mul", [rand(2, 3), rand(2, 1, seed=3)], reference=np.multiply),
    Case("Div", [rand(2, 3), rand(1, 3, low=0.5, high=2.0, seed=4)], reference=np.true_divide),
    Case("Neg", [rand(5)], reference=np.negative),
    Case("MatMul", [rand(3, 4), rand(4, 5, seed=1)], reference=np.matmul),
    Case("MatMul", [rand(4, 3), rand(5, 4, seed=1)], args={"trans_a": True, "trans_b": True},
         reference=lambda a, b, **k: a.T @ b.T, name="trans"),
    Case("MatMul", [rand(2, 3, 4), rand(4, 2, seed=1)], reference=np.matmul, name="batched"),
    Case("MatMul", [rand(4), rand(4, 3, seed=1)], reference=np.matmul, name="vector"),
    Case("ReduceSum", [rand(2, 3, 4)], args={"axes": [1]},
         reference=lambda x, axes, keepdims=False: x.sum(axis=tuple(axes), keepdims=keepdims)),
    Case("ReduceSum", [rand(2, 3)], reference=lambda x: x.sum(), name="all"),
    Case("ReduceMean", [rand(2, 3, 4)], args={"axes": [0, 2], "keepdims": True},
         reference=lambda x, axes, keepdims: x.mean(axis=tuple(axes), keepdims=keepdims)),
    Case("Sum", [rand(3), rand(3, seed=1), rand(3, seed=2)], reference=lambda *xs: sum(xs)),
    Case("Copy", [rand(2, 2)], reference=lambda x: x),
    Case("StopGradient", [rand(2, 2)], reference=lambda x: x, grad=()),
    Case("OnesLike", [rand(2, 3)], reference=np.ones_like, grad=()),
    Case("ZerosLike", [rand(2, 3)], reference=np.zeros_like, grad=()),
    Case("SumReduceLike", [rand(2, 3, 4), rand(3, 1, seed=1)],
         reference=lambda dy, x: dy.sum(axis=(0, 2)).reshape(3, 1), grad=(0,)),
    Case("BroadcastLike", [rand(3, 1), rand(2, 3, 4, seed=1)],
         reference=lambda x, like: np.broadcast_to(x, like.shape), grad=(0,)),
    Case("ReduceGradient", [rand(2, 4), rand(2, 3, 4, seed=1)], args={"axes": [1], "mean": True},
         reference=lambda dy, x, axes, mean: np.broadcast_to(dy[:, None, :] / 3, x.shape), grad=(0,)),
]
