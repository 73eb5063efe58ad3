"""WeightedSum: Y = X0 * w0 + X1 * w1 + ..., each weight an array of one element.

Caffe2 writes its plain SGD step with it, in place on the parameter::

    w = dragon.ops.weighted_sum(w, one, grad, lr)      # w + lr * grad (lr < 0)
"""
from __future__ import annotations

from dragon.core.errors import ShapeError
from dragon.ops.registry import register, result_dtype

_MANY = 1 << 16


def _pairs(inputs):
    return list(zip(inputs[0::2], inputs[1::2]))


@register("WeightedSum", inputs=(2, _MANY), inplace={0: 0}, recompute=True)
def weighted_sum(xp, *inputs, out, scratch):
    """Y = X0 * w0 + X1 * w1 + ... (Caffe2's WeightedSum); inputs X0, w0, X1, w1, ...,
    every X of one shape and every w of one element. Y may overwrite X0."""
    pairs = _pairs(inputs)
    term, = scratch
    if any(x is out or xp.may_share_memory(x, out) for x, _ in pairs[1:]):
        total = xp.zeros_like(out)  # rare: another term aliases the output
    else:
        total = out
    xp.multiply(pairs[0][0], pairs[0][1].reshape(()), out=total)
    for x, w in pairs[1:]:
        xp.multiply(x, w.reshape(()), out=term)
        total += term
    if total is not out:
        xp.copyto(out, total)


@weighted_sum.shape
def _(*inputs):
    if len(inputs) % 2:
        raise ShapeError(f"takes pairs (X, weight), got {len(inputs)} inputs")
    pairs = _pairs(inputs)
    first = pairs[0][0]
    for i, (x, w) in enumerate(pairs):
        if tuple(x.shape) != tuple(first.shape):
            raise ShapeError(f"X{i} has shape {tuple(x.shape)}, X0 has {tuple(first.shape)}")
        if w.size != 1:
            raise ShapeError(f"weight {i} must hold one element, got shape {tuple(w.shape)}")
    return first.with_dtype(result_dtype(*inputs))


@weighted_sum.scratch
def _(*inputs):
    return [inputs[0].with_dtype(result_dtype(*inputs))]


@weighted_sum.grad
def _(g):
    dy = g.dY(0)
    grads = []
    for i in range(0, g.num_inputs, 2):
        x, w = g.X(i), g.X(i + 1)
        dx = g.op("Mul", [dy, g.op("Reshape", [w], shape=[])]) if g.needs(i) else None
        dw = None
        if g.needs(i + 1):
            dw = g.op("ReshapeLike", [g.op("ReduceSum", [g.op("Mul", [dy, x])]), w])
        grads += [dx, dw]
    return grads
