"""Parameter updates (Caffe's solvers) and the gradient preprocessing before them.

An update op takes a parameter, its gradient, its history buffers and the
learning rate (a 0-d tensor, so changing it needs no recompile) and returns the
new parameter and histories. Applied with output names equal to the variables'
names (``dragon.updaters`` does this) it overwrites them in place::

    w, v = apply("SGDUpdate", [w, gw, v, lr], out_names=[w.name, v.name],
                 assigns=True, momentum=0.9)

Kernels are alias-safe: each output may be the very array of the input it
replaces, so every step reads an input before the output that aliases it is
written. The products of the formulas go through a scratch buffer the planner
provides, so no temporaries are allocated per step.
"""
from __future__ import annotations

from dragon.core.errors import ShapeError
from dragon.ops.registry import REQUIRED, Spec, register

#: the most gradients one ClipByGlobalNorm op takes (every output may overwrite its input)
MAX_CLIPPED = 4096


# -- shape rules ---------------------------------------------------------------------------

def _check_float(name, spec):
    if spec.dtype.kind != "f":
        raise ShapeError(f"{name} must be floating-point, got {spec.dtype}")


def _check_like(param, **others):
    _check_float("param", param)
    for name, spec in others.items():
        _check_float(name, spec)
        if tuple(spec.shape) != tuple(param.shape):
            raise ShapeError(f"{name} has shape {tuple(spec.shape)}, "
                             f"param has {tuple(param.shape)}")


def _check_scalar(name, spec):
    if spec.ndim != 0:
        raise ShapeError(f"{name} must be a 0-d tensor, got shape {tuple(spec.shape)}")


def _check_unit_interval(name, value):
    if not 0.0 <= value <= 1.0:
        raise ShapeError(f"{name} must be within [0, 1], got {value}")


def _check_positive(name, value):
    if value <= 0:
        raise ShapeError(f"{name} must be > 0, got {value}")


def _one_scratch_like_param(param, *_, **__):
    return [param]


def _two_scratch_like_param(param, *_, **__):
    return [param, param]


# -- momentum SGD and Nesterov --------------------------------------------------------------

@register("SGDUpdate", inputs=4, outputs=2, inplace={0: 0, 1: 2}, stateful=True,
          args={"momentum": 0.9})
def sgd_update(xp, param, grad, velocity, lr, *, out, momentum, scratch):
    """V = momentum * V + lr * dW; W = W - V (Caffe's SGD solver)."""
    new_param, new_velocity = out
    step, = scratch
    xp.multiply(grad, lr, out=step)
    xp.multiply(velocity, momentum, out=new_velocity)
    xp.add(new_velocity, step, out=new_velocity)
    xp.subtract(param, new_velocity, out=new_param)


@register("NesterovUpdate", inputs=4, outputs=2, inplace={0: 0, 1: 2}, stateful=True,
          args={"momentum": 0.9})
def nesterov_update(xp, param, grad, velocity, lr, *, out, momentum, scratch):
    """V' = momentum * V + lr * dW; W = W - ((1 + momentum) * V' - momentum * V) (Caffe)."""
    new_param, new_velocity = out
    step, = scratch
    xp.multiply(grad, lr, out=step)
    xp.multiply(velocity, momentum, out=new_velocity)
    xp.add(new_velocity, step, out=new_velocity)
    # (1 + m) V' - m V equals lr * dW + m V', which needs V' only (V may be overwritten).
    xp.subtract(param, step, out=new_param)
    xp.multiply(new_velocity, momentum, out=step)
    xp.subtract(new_param, step, out=new_param)


def _momentum_shape(param, grad, velocity, lr, *, momentum):
    _check_like(param, grad=grad, velocity=velocity)
    _check_scalar("lr", lr)
    return [param, velocity]


for _op in (sgd_update, nesterov_update):
    _op.shape(_momentum_shape)
    _op.scratch(_one_scratch_like_param)


# -- AdaGrad and RMSProp --------------------------------------------------------------------

def _scaled_by_rms(xp, param, grad, history, lr, eps, new_param, step):
    """W = W - lr * dW / (sqrt(H) + eps), H already updated; ``step`` is scratch."""
    xp.sqrt(history, out=step)
    xp.add(step, eps, out=step)
    xp.divide(grad, step, out=step)
    xp.multiply(step, lr, out=step)
    xp.subtract(param, step, out=new_param)


@register("AdaGradUpdate", inputs=4, outputs=2, inplace={0: 0, 1: 2}, stateful=True,
          args={"eps": 1e-8})
def adagrad_update(xp, param, grad, history, lr, *, out, eps, scratch):
    """H = H + dW^2; W = W - lr * dW / (sqrt(H) + eps) (Caffe's AdaGrad solver)."""
    new_param, new_history = out
    step, = scratch
    xp.multiply(grad, grad, out=step)
    xp.add(history, step, out=new_history)
    _scaled_by_rms(xp, param, grad, new_history, lr, eps, new_param, step)


@adagrad_update.shape
def _(param, grad, history, lr, *, eps):
    _check_like(param, grad=grad, history=history)
    _check_scalar("lr", lr)
    return [param, history]


@register("RMSPropUpdate", inputs=4, outputs=2, inplace={0: 0, 1: 2}, stateful=True,
          args={"decay": 0.99, "eps": 1e-8})
def rmsprop_update(xp, param, grad, history, lr, *, out, decay, eps, scratch):
    """H = decay * H + (1 - decay) * dW^2; W = W - lr * dW / (sqrt(H) + eps) (Caffe)."""
    new_param, new_history = out
    step, = scratch
    xp.multiply(grad, grad, out=step)
    xp.multiply(step, 1.0 - decay, out=step)
    xp.multiply(history, decay, out=new_history)
    xp.add(new_history, step, out=new_history)
    _scaled_by_rms(xp, param, grad, new_history, lr, eps, new_param, step)


@rmsprop_update.shape
def _(param, grad, history, lr, *, decay, eps):
    _check_like(param, grad=grad, history=history)
    _check_scalar("lr", lr)
    _check_unit_interval("decay", decay)
    return [param, history]


for _op in (adagrad_update, rmsprop_update):
    _op.scratch(_one_scratch_like_param)


# -- AdaDelta and Adam ----------------------------------------------------------------------

@register("AdaDeltaUpdate", inputs=5, outputs=3, inplace={0: 0, 1: 2, 2: 3}, stateful=True,
          args={"momentum": 0.95, "eps": 1e-6})
def adadelta_update(xp, param, grad, history_grad, history_update, lr, *, out, momentum, eps,
                    scratch):
    """Caffe's AdaDelta: Hg = m Hg + (1-m) dW^2; D = dW sqrt((Hd + eps) / (Hg + eps));
    Hd = m Hd + (1-m) D^2; W = W - lr * D."""
    new_param, new_history_grad, new_history_update = out
    delta, work = scratch
    xp.multiply(grad, grad, out=work)
    xp.multiply(work, 1.0 - momentum, out=work)
    xp.multiply(history_grad, momentum, out=new_history_grad)
    xp.add(new_history_grad, work, out=new_history_grad)
    xp.add(history_update, eps, out=delta)
    xp.add(new_history_grad, eps, out=work)
    xp.divide(delta, work, out=delta)
    xp.sqrt(delta, out=delta)
    xp.multiply(delta, grad, out=delta)
    xp.multiply(delta, delta, out=work)
    xp.multiply(work, 1.0 - momentum, out=work)
    xp.multiply(history_update, momentum, out=new_history_update)
    xp.add(new_history_update, work, out=new_history_update)
    xp.multiply(delta, lr, out=delta)
    xp.subtract(param, delta, out=new_param)


@adadelta_update.shape
def _(param, grad, history_grad, history_update, lr, *, momentum, eps):
    _check_like(param, grad=grad, history_grad=history_grad, history_update=history_update)
    _check_scalar("lr", lr)
    _check_unit_interval("momentum", momentum)
    _check_positive("eps", eps)
    return [param, history_grad, history_update]


adadelta_update.scratch(_two_scratch_like_param)


@register("AdamUpdate", inputs=6, outputs=3, inplace={0: 0, 1: 2, 2: 3}, stateful=True,
          args={"beta1": 0.9, "beta2": 0.999, "eps": 1e-8})
def adam_update(xp, param, grad, m, v, lr, t, *, out, beta1, beta2, eps, scratch):
    """M = b1 M + (1-b1) dW; V = b2 V + (1-b2) dW^2;
    W = W - lr * sqrt(1 - b2^t) / (1 - b1^t) * M / (sqrt(V) + eps), t the 1-based step (Caffe)."""
    new_param, new_m, new_v = out
    step, = scratch
    t = float(t)
    correction = (1.0 - beta2 ** t) ** 0.5 / (1.0 - beta1 ** t)
    xp.multiply(grad, 1.0 - beta1, out=step)
    xp.multiply(m, beta1, out=new_m)
    xp.add(new_m, step, out=new_m)
    xp.multiply(grad, grad, out=step)
    xp.multiply(step, 1.0 - beta2, out=step)
    xp.multiply(v, beta2, out=new_v)
    xp.add(new_v, step, out=new_v)
    xp.sqrt(new_v, out=step)
    xp.add(step, eps, out=step)
    xp.divide(new_m, step, out=step)
    xp.multiply(step, lr, out=step)
    xp.multiply(step, correction, out=step)
    xp.subtract(param, step, out=new_param)


@adam_update.shape
def _(param, grad, m, v, lr, t, *, beta1, beta2, eps):
    _check_like(param, grad=grad, m=m, v=v)
    _check_scalar("lr", lr)
    _check_scalar("t", t)
    _check_unit_interval("beta1", beta1)
    _check_unit_interval("beta2", beta2)
    if beta1 == 1.0:
        raise ShapeError("beta1 must be < 1 (the bias correction divides by 1 - beta1^t)")
    return [param, m, v]


adam_update.scratch(_one_scratch_like_param)


# -- gradient preprocessing -----------------------------------------------------------------

@register("WeightDecay", inputs=2, inplace={0: 0}, args={"decay": REQUIRED, "kind": "L2"})
def weight_decay(xp, grad, param, *, out, decay, kind, scratch):
    """dW + decay * W ("L2") or dW + decay * sign(W) ("L1"): Caffe's regularization."""
    term, = scratch
    if kind == "L2":
        xp.multiply(param, decay, out=term)
    else:
        xp.sign(param, out=term)
        xp.multiply(term, decay, out=term)
    xp.add(grad, term, out=out)


@weight_decay.shape
def _(grad, param, *, decay, kind):
    if kind not in ("L1", "L2"):
        raise ShapeError(f"kind must be 'L1' or 'L2', got {kind!r}")
    _check_float("grad", grad)
    _check_float("param", param)
    if tuple(grad.shape) != tuple(param.shape):
        raise ShapeError(f"grad has shape {tuple(grad.shape)}, param has {tuple(param.shape)}")
    return grad


@weight_decay.scratch
def _(grad, param, *, decay, kind):
    return [grad]


@register("ClipByGlobalNorm", inputs=(1, MAX_CLIPPED), outputs=lambda args: args["num_grads"],
          inplace={i: i for i in range(MAX_CLIPPED)},
          args={"max_norm": REQUIRED, "num_grads": REQUIRED})
def clip_by_global_norm(xp, *grads, out, max_norm, num_grads):
    """dW_i * max_norm / N for every i when N = sqrt(sum_i |dW_i|^2) > max_norm (Caffe's
    clip_gradients); the gradients unchanged otherwise. ``num_grads`` = number of inputs."""
    outs = out if isinstance(out, tuple) else (out,)
    norm = sum(float(xp.vdot(g, g)) for g in grads) ** 0.5
    scale = max_norm / norm if norm > max_norm else 1.0
    for g, o in zip(grads, outs):
        if scale != 1.0:
            xp.multiply(g, scale, out=o)
        elif o is not g:
            xp.copyto(o, g)


@clip_by_global_norm.shape
def _(*grads, max_norm, num_grads):
    if num_grads != len(grads):
        raise ShapeError(f"num_grads={num_grads} but {len(grads)} gradients are given; "
                         f"pass num_grads=len(grads)")
    _check_positive("max_norm", max_norm)
    for i, g in enumerate(grads):
        _check_float(f"gradient {i}", g)
    return [Spec(tuple(g.shape), g.dtype) for g in grads]
