"""Ops the engine itself builds: copies, fills shaped like another tensor, sums.

Autodiff seeds the cost's gradient with ``OnesLike``, fills missing output
gradients with ``ZerosLike``, sums partial gradients with ``Sum`` and reduces
broadcast gradients with ``SumReduceLike``.
"""
from dragon.ops.registry import register


@register("Copy", inplace={0: 0}, recompute=True, alias=0)
def copy(xp, x, *, out):
    """Y = X."""
    xp.copyto(out, x)


@copy.shape
def _(x):
    return x


@copy.grad
def _(g):
    return [g.dY(0)]


@register("StopGradient", inplace={0: 0}, recompute=True, alias=0)
def stop_gradient(xp, x, *, out):
    """Y = X in the forward pass; no gradient flows back through it."""
    if out is not x:
        xp.copyto(out, x)


@stop_gradient.shape
def _(x):
    return x


@stop_gradient.grad
def _(g):
    return [None]


@register("OnesLike")
def ones_like(xp, x, *, out):
    """Y = 1 with the shape and dtype of X."""
    out.fill(1)


@ones_like.shape
def _(x):
    return x


@register("ZerosLike")
def zeros_like(xp, x, *, out):
    """Y = 0 with the shape and dtype of X."""
    out.fill(0)


@zeros_like.shape
def _(x):
    return x


for _op in (ones_like, zeros_like):
    _op.grad(lambda g: [None])


@register("Sum", inputs=(1, 1 << 16), inplace={0: 0}, recompute=True)
def sum_(xp, *xs, out):
    """Y = X0 + X1 + ... (same shapes)."""
    if out is not xs[0]:
        xp.copyto(out, xs[0])
    for x in xs[1:]:
        xp.add(out, x, out=out)


@sum_.shape
def _(*xs):
    from dragon.core.errors import ShapeError
    first = xs[0]
    for x in xs[1:]:
        if tuple(x.shape) != tuple(first.shape):
            raise ShapeError(f"Sum needs equal shapes, got {[tuple(s.shape) for s in xs]}")
    return first


@sum_.grad
def _(g):
    return [g.dY(0)] * g.num_inputs


@register("SumReduceLike", inputs=2, alias=0)
def sum_reduce_like(xp, dy, x, *, out):
    """Y = dY summed over the axes along which X was broadcast to dY's shape."""
    lead = dy.ndim - x.ndim
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(x.shape) if d == 1 and dy.shape[lead + i] != 1)
    if not axes:
        xp.copyto(out, dy.reshape(out.shape))
        return
    xp.sum(dy, axis=axes, keepdims=True, out=out.reshape((1,) * lead + tuple(x.shape)))


@sum_reduce_like.shape
def _(dy, x):
    return x.with_dtype(dy.dtype)


@sum_reduce_like.grad
def _(g):
    return [g.op("BroadcastLike", [g.dY(0), g.X(0)]), None]


@register("BroadcastLike", inputs=2, recompute=True, alias=0)
def broadcast_like(xp, x, like, *, out):
    """Y = X broadcast to the shape of ``like``."""
    out[...] = x


@broadcast_like.shape
def _(x, like):
    from dragon.ops.registry import broadcast_shapes
    return like.with_dtype(x.dtype).with_shape(broadcast_shapes(x.shape, like.shape))


@broadcast_like.grad
def _(g):
    return [g.op("SumReduceLike", [g.dY(0), g.X(0)]), None]
