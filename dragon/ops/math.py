"""Arithmetic with numpy broadcasting, matrix products and sum/mean reductions."""
from __future__ import annotations

import numpy as np

from dragon.core.errors import ShapeError
from dragon.ops.registry import Spec, broadcast_shapes, normalize_axis, register, result_dtype


def _unbroadcast(g, dx, x):
    """``dx`` summed back to the shape of ``x`` when broadcasting widened it."""
    if x.shape is not None and dx.shape is not None and tuple(x.shape) == tuple(dx.shape):
        return dx
    return g.op("SumReduceLike", [dx, x])


def _binary_shape(a, b):
    return Spec(broadcast_shapes(a.shape, b.shape), result_dtype(a, b))


def _register_binary(type_name, ufunc_name, doc, grad_rule):
    def kernel(xp, a, b, *, out):
        getattr(xp, ufunc_name)(a, b, out=out)
    kernel.__doc__ = doc
    schema = register(type_name, inputs=2, inplace={0: 0}, recompute=True)(kernel)
    schema.shape(_binary_shape)
    schema.grad(grad_rule)
    return schema


def _add_grad(g):
    dy = g.dY(0)
    return [_unbroadcast(g, dy, g.X(0)) if g.needs(0) else None,
            _unbroadcast(g, dy, g.X(1)) if g.needs(1) else None]


def _sub_grad(g):
    dy = g.dY(0)
    return [_unbroadcast(g, dy, g.X(0)) if g.needs(0) else None,
            _unbroadcast(g, g.op("Neg", [dy]), g.X(1)) if g.needs(1) else None]


def _mul_grad(g):
    dy, a, b = g.dY(0), g.X(0), g.X(1)
    return [_unbroadcast(g, g.op("Mul", [dy, b]), a) if g.needs(0) else None,
            _unbroadcast(g, g.op("Mul", [dy, a]), b) if g.needs(1) else None]


def _div_grad(g):
    dy, a, b, y = g.dY(0), g.X(0), g.X(1), g.Y(0)
    da = _unbroadcast(g, g.op("Div", [dy, b]), a) if g.needs(0) else None
    db = None
    if g.needs(1):  # d(a/b)/db = -y / b
        db = _unbroadcast(g, g.op("Neg", [g.op("Div", [g.op("Mul", [dy, y]), b])]), b)
    return [da, db]


_register_binary("Add", "add", "Y = A + B (broadcasting).", _add_grad)
_register_binary("Sub", "subtract", "Y = A - B (broadcasting).", _sub_grad)
_register_binary("Mul", "multiply", "Y = A * B (broadcasting).", _mul_grad)
_register_binary("Div", "true_divide", "Y = A / B (broadcasting).", _div_grad)


@register("Neg", inplace={0: 0}, recompute=True)
def neg(xp, x, *, out):
    """Y = -X."""
    xp.negative(x, out=out)


@neg.shape
def _(x):
    return x


@neg.grad
def _(g):
    return [g.op("Neg", [g.dY(0)])]


# -- matrix product -------------------------------------------------------------------------

@register("MatMul", inputs=2, args={"trans_a": False, "trans_b": False})
def matmul(xp, a, b, *, out, trans_a, trans_b):
    """Y = op(A) @ op(B), numpy's matmul with batch broadcasting; op transposes the last two axes."""
    if trans_a:
        a = xp.swapaxes(a, -1, -2)
    if trans_b:
        b = xp.swapaxes(b, -1, -2)
    if out.ndim == 0:
        out[...] = xp.dot(a, b)
    else:
        xp.matmul(a, b, out=out)


@matmul.shape
def _(a, b, *, trans_a, trans_b):
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError("MatMul needs inputs of at least 1 dimension")
    sa, sb = list(a.shape), list(b.shape)
    if trans_a and len(sa) >= 2:
        sa[-1], sa[-2] = sa[-2], sa[-1]
    if trans_b and len(sb) >= 2:
        sb[-1], sb[-2] = sb[-2], sb[-1]
    k_a = sa[-1]
    k_b = sb[-2] if len(sb) >= 2 else sb[0]
    if k_a != k_b:
        raise ShapeError(f"inner dimensions differ: {tuple(sa)} @ {tuple(sb)}")
    if len(sa) == 1 and len(sb) == 1:
        shape = ()
    elif len(sa) == 1:
        shape = tuple(sb[:-2]) + (sb[-1],)
    elif len(sb) == 1:
        shape = tuple(sa[:-1])
    else:
        shape = broadcast_shapes(sa[:-2], sb[:-2]) + (sa[-2], sb[-1])
    return Spec(shape, result_dtype(a, b))


@matmul.flops
def _(a, b, *, trans_a, trans_b):
    if b.ndim < 2:
        return 2 * a.size
    n = b.shape[-2] if trans_b else b.shape[-1]
    batch = b.size // (b.shape[-1] * b.shape[-2]) if a.ndim < 2 else 1
    return 2 * a.size * n * batch


@matmul.grad
def _(g):
    a, b, dy = g.X(0), g.X(1), g.dY(0)
    ta, tb = g.args["trans_a"], g.args["trans_b"]
    if a.ndim is None or b.ndim is None or a.ndim < 2 or b.ndim < 2:
        return _matmul_vector_grad(g, a, b, dy)
    da = db = None
    if g.needs(0):
        da = (g.op("MatMul", [b, dy], trans_a=tb, trans_b=True) if ta
              else g.op("MatMul", [dy, b], trans_b=not tb))
        da = _unbroadcast(g, da, a)
    if g.needs(1):
        db = (g.op("MatMul", [dy, a], trans_a=True, trans_b=ta) if tb
              else g.op("MatMul", [a, dy], trans_a=not ta))
        db = _unbroadcast(g, db, b)
    return [da, db]


def _matmul_vector_grad(g, a, b, dy):
    if g.args["trans_a"] or g.args["trans_b"]:
        raise NotImplementedError("MatMul gradient with trans_a/trans_b on 1-d inputs")
    # Lift vectors to matrices the way numpy's matmul does, then reuse the matrix rule.
    a2 = a if a.ndim >= 2 else g.op("ExpandDims", [a], axis=0)
    b2 = b if b.ndim >= 2 else g.op("ExpandDims", [b], axis=-1)
    dy2 = dy
    if a.ndim == 1:
        dy2 = g.op("ExpandDims", [dy2], axis=-2 if b.ndim >= 2 else 0)
    if b.ndim == 1:
        dy2 = g.op("ExpandDims", [dy2], axis=-1)
    da = db = None
    if g.needs(0):
        da = _unbroadcast(g, g.op("MatMul", [dy2, b2], trans_b=True), a2)
        da = g.op("Reshape", [da], shape=list(a.shape)) if a.ndim == 1 else da
    if g.needs(1):
        db = _unbroadcast(g, g.op("MatMul", [a2, dy2], trans_a=True), b2)
        db = g.op("Reshape", [db], shape=list(b.shape)) if b.ndim == 1 else db
    return [da, db]


# -- reductions ------------------------------------------------------------------------------

def _reduce_shape(x, axes, keepdims):
    axes = sorted({normalize_axis(a, x.ndim) for a in axes}) if axes else list(range(x.ndim))
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(x.shape)), axes
    return tuple(d for i, d in enumerate(x.shape) if i not in axes), axes


@register("ReduceSum", args={"axes": [], "keepdims": False})
def reduce_sum(xp, x, *, out, axes, keepdims):
    """Y = sum of X over ``axes`` (every axis when empty)."""
    xp.sum(x, axis=tuple(axes) if axes else None, keepdims=keepdims, out=out)


@register("ReduceMean", args={"axes": [], "keepdims": False})
def reduce_mean(xp, x, *, out, axes, keepdims):
    """Y = mean of X over ``axes`` (every axis when empty)."""
    xp.mean(x, axis=tuple(axes) if axes else None, keepdims=keepdims, out=out)


def _reduce_spec(x, *, axes, keepdims):
    shape, _ = _reduce_shape(x, axes, keepdims)
    return Spec(shape, x.dtype)


reduce_sum.shape(_reduce_spec)
reduce_mean.shape(_reduce_spec)


@reduce_sum.grad
def _(g):
    return [g.op("ReduceGradient", [g.dY(0), g.X(0)], axes=g.args["axes"],
                 keepdims=g.args["keepdims"], mean=False)]


@reduce_mean.grad
def _(g):
    return [g.op("ReduceGradient", [g.dY(0), g.X(0)], axes=g.args["axes"],
                 keepdims=g.args["keepdims"], mean=True)]


@register("ReduceGradient", inputs=2, args={"axes": [], "keepdims": False, "mean": False})
def reduce_gradient(xp, dy, x, *, out, axes, keepdims, mean):
    """dX of ReduceSum/ReduceMean: dY broadcast back over the reduced axes (/ count for mean)."""
    shape, norm_axes = _reduce_shape(x, axes, True)
    out[...] = dy.reshape(shape)
    if mean:
        count = int(np.prod([x.shape[a] for a in norm_axes], dtype=np.int64)) or 1
        xp.multiply(out, 1.0 / count, out=out, casting="unsafe")


@reduce_gradient.shape
def _(dy, x, *, axes, keepdims, mean):
    expected, _ = _reduce_shape(x, axes, keepdims)
    if tuple(dy.shape) != expected:
        raise ShapeError(f"dY has shape {tuple(dy.shape)}, expected {expected}")
    return x.with_dtype(dy.dtype)


@reduce_gradient.grad
def _(g):
    op = "ReduceMean" if g.args["mean"] else "ReduceSum"
    return [g.op(op, [g.dY(0)], axes=g.args["axes"], keepdims=g.args["keepdims"]), None]
