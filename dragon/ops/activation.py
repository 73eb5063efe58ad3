"""Activations: elementwise nonlinearities and softmax."""
from dragon.ops.registry import register


@register("Relu", args={"slope": 0.0}, inplace={0: 0}, recompute=True)
def relu(xp, x, *, out, slope):
    """Y = max(X, 0) + slope * min(X, 0) (Caffe's ReLU with negative_slope)."""
    if slope == 0.0:
        xp.maximum(x, 0, out=out)
    else:
        xp.multiply(x, xp.where(x > 0, 1.0, slope).astype(x.dtype, copy=False), out=out)


@relu.shape
def _(x, *, slope):
    return x


@relu.grad
def _(g):
    return [g.op("ReluGradient", [g.Y(0), g.dY(0)], slope=g.args["slope"])]


@register("ReluGradient", inputs=2, args={"slope": 0.0}, inplace={0: 1})
def relu_gradient(xp, y, dy, *, out, slope):
    """dX = dY where Y > 0, slope * dY elsewhere."""
    if slope == 0.0:
        xp.multiply(dy, y > 0, out=out)
    else:
        xp.multiply(dy, xp.where(y > 0, 1.0, slope).astype(dy.dtype, copy=False), out=out)


@relu_gradient.shape
def _(y, dy, *, slope):
    return dy
