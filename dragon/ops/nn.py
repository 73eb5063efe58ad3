"""Fully connected layers (Caffe's InnerProduct, Caffe2's FC)."""
from __future__ import annotations

from dragon.core.errors import ShapeError
from dragon.ops.registry import Spec, normalize_axis, register, result_dtype


def _split(shape, axis):
    outer = 1
    for d in shape[:axis]:
        outer *= d
    inner = 1
    for d in shape[axis:]:
        inner *= d
    return outer, inner


@register("FullyConnected", inputs=(2, 3), args={"axis": 1, "transpose_w": True})
def fully_connected(xp, x, w, b=None, *, out, axis, transpose_w):
    """Y = X2 @ W.T + b where X2 is X flattened to 2-d at ``axis`` (W.T -> W without transpose_w)."""
    outer, inner = _split(x.shape, axis % max(x.ndim, 1))
    x2 = x.reshape(outer, inner)
    y2 = out.reshape(outer, -1)
    xp.matmul(x2, w.T if transpose_w else w, out=y2)
    if b is not None:
        xp.add(y2, b, out=y2)


@fully_connected.shape
def _(x, w, b=None, *, axis, transpose_w):
    axis = normalize_axis(axis, x.ndim)
    _, inner = _split(x.shape, axis)
    if w.ndim != 2:
        raise ShapeError(f"weights must be 2-d, got {tuple(w.shape)}")
    n_out, k = (w.shape if transpose_w else w.shape[::-1])
    if k != inner:
        raise ShapeError(f"input {tuple(x.shape)} flattened at axis {axis} has {inner} features "
                         f"but weights {tuple(w.shape)} expect {k}")
    if b is not None and b.size != n_out:
        raise ShapeError(f"bias {tuple(b.shape)} does not have {n_out} entries")
    return Spec(tuple(x.shape[:axis]) + (n_out,), result_dtype(x, w))


@fully_connected.flops
def _(x, w, b=None, *, axis, transpose_w):
    return 2 * x.size * (w.shape[0] if transpose_w else w.shape[1])


@fully_connected.grad
def _(g):
    needs = [g.needs(i) for i in range(g.num_inputs)]
    inputs = [g.dY(0)] + [g.X(i) for i in range(g.num_inputs)]
    outs = g.op("FullyConnectedGradient", inputs, axis=g.args["axis"],
                transpose_w=g.args["transpose_w"], need=[int(n) for n in needs])
    outs = outs if isinstance(outs, list) else [outs]
    it = iter(outs)
    return [next(it) if n else None for n in needs]


def _grad_count(args):
    return max(1, sum(args["need"]))


@register("FullyConnectedGradient", inputs=(3, 4), outputs=_grad_count,
          args={"axis": 1, "transpose_w": True, "need": [1, 1, 1]})
def fully_connected_gradient(xp, dy, x, w, b=None, *, out, axis, transpose_w, need):
    """dX, dW, db of FullyConnected, for the inputs ``need`` flags (in that order)."""
    outs = iter(out if isinstance(out, tuple) else (out,))
    outer, inner = _split(x.shape, axis % max(x.ndim, 1))
    dy2 = dy.reshape(outer, -1)
    if need[0]:
        dx = next(outs).reshape(outer, inner)
        xp.matmul(dy2, w if transpose_w else w.T, out=dx)
    if need[1]:
        dw = next(outs)
        x2 = x.reshape(outer, inner)
        if transpose_w:
            xp.matmul(dy2.T, x2, out=dw)
        else:
            xp.matmul(x2.T, dy2, out=dw)
    if len(need) > 2 and need[2] and b is not None:
        xp.sum(dy2, axis=0, out=next(outs).reshape(-1))


@fully_connected_gradient.flops
def _(dy, x, w, b=None, *, axis, transpose_w, need):
    n_out = w.shape[0] if transpose_w else w.shape[1]
    return 2 * x.size * n_out * sum(need[:2])


@fully_connected_gradient.shape
def _(dy, x, w, b=None, *, axis, transpose_w, need):
    specs = []
    for flag, src in zip(need, (x, w, b)):
        if flag and src is not None:
            specs.append(src.with_dtype(dy.dtype))
    return specs
