"""Parameter updates with Caffe2's formulas and input/output order.

They differ from Caffe's (``update.py``): the learning rate is an array of one
element that already carries the descent sign where Caffe2 adds the step,
MomentumSGDUpdate also returns the step it took, Adam counts from the
iteration blob, and RmsProp puts epsilon under the square root and returns
the step instead of applying it::

    grad, moment, param = apply("MomentumSGDUpdate", [grad, moment, lr, param],
                                out_names=["w_grad", "w_momentum", "w"], momentum=0.9)

Kernels are alias-safe: every output may be the array of the input it
replaces (each input is read before the output that aliases it is written).
"""
from __future__ import annotations

from dragon.core.errors import ShapeError
from dragon.ops.registry import register


def _check_like(param, **others):
    if param.dtype.kind != "f":
        raise ShapeError(f"the parameter must be floating-point, got {param.dtype}")
    for name, spec in others.items():
        if tuple(spec.shape) != tuple(param.shape):
            raise ShapeError(f"{name} has shape {tuple(spec.shape)}, the parameter has "
                             f"{tuple(param.shape)}")


def _check_one(name, spec):
    if spec.size != 1:
        raise ShapeError(f"{name} must hold one element, got shape {tuple(spec.shape)}")


def _scratch_like_first(first, *_, **__):
    return [first]


def _scalar(a):
    return a.reshape(())


# -- MomentumSGDUpdate ------------------------------------------------------------------------

@register("MomentumSGDUpdate", inputs=4, outputs=3, inplace={0: 0, 1: 1, 2: 3}, stateful=True,
          args={"momentum": 0.0, "nesterov": 0})
def momentum_sgd_update(xp, grad, moment, lr, param, *, out, momentum, nesterov, scratch):
    """Caffe2's MomentumSGDUpdate: (grad, moment, lr, param) -> (step, moment, param).

    Plain: step = lr * g + momentum * m; m = step. Nesterov: m' = momentum * m + lr * g;
    step = (1 + momentum) m' - momentum m. Then param = param - step.
    """
    new_grad, new_moment, new_param = out
    step, = scratch
    xp.multiply(grad, _scalar(lr), out=step)
    xp.multiply(moment, momentum, out=new_moment)
    xp.add(new_moment, step, out=new_moment)
    if nesterov:
        # (1 + m) M' - m M equals lr * g + m M', which needs M' only.
        xp.multiply(new_moment, momentum, out=new_grad)
        xp.add(new_grad, step, out=new_grad)
    elif new_grad is not new_moment:
        xp.copyto(new_grad, new_moment)
    xp.subtract(param, new_grad, out=new_param)


@momentum_sgd_update.shape
def _(grad, moment, lr, param, *, momentum, nesterov):
    _check_like(param, grad=grad, moment=moment)
    _check_one("lr", lr)
    return [grad, moment, param]


momentum_sgd_update.scratch(_scratch_like_first)


# -- Adam -------------------------------------------------------------------------------------

def _adam_outputs(args):
    return 4 if args["output_grad"] else 3


@register("Caffe2AdamUpdate", inputs=6, outputs=_adam_outputs,
          inplace={0: 0, 1: 1, 2: 2, 3: 3}, stateful=True,
          args={"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "output_grad": False})
def caffe2_adam_update(xp, param, m1, m2, grad, lr, iteration, *, out, beta1, beta2, epsilon,
                       output_grad, scratch):
    """Caffe2's Adam: (param, m1, m2, grad, lr, iter) -> (param, m1, m2[, step]).

    m1 = b1 m1 + (1 - b1) g; m2 = b2 m2 + (1 - b2) g^2; t = iter + 1;
    step = lr sqrt(1 - b2^t) / (1 - b1^t) m1 / (sqrt(m2) + epsilon); param = param + step.
    """
    new_param, new_m1, new_m2 = out[:3]
    step, = scratch
    t = float(iteration.reshape(-1)[0]) + 1.0
    correction = (1.0 - beta2 ** t) ** 0.5 / (1.0 - beta1 ** t)
    xp.multiply(grad, 1.0 - beta1, out=step)
    xp.multiply(m1, beta1, out=new_m1)
    xp.add(new_m1, step, out=new_m1)
    xp.multiply(grad, grad, out=step)
    xp.multiply(step, 1.0 - beta2, out=step)
    xp.multiply(m2, beta2, out=new_m2)
    xp.add(new_m2, step, out=new_m2)
    xp.sqrt(new_m2, out=step)
    xp.add(step, epsilon, out=step)
    xp.divide(new_m1, step, out=step)
    xp.multiply(step, _scalar(lr) * correction, out=step)
    if output_grad:
        xp.copyto(out[3], step)
    xp.add(param, step, out=new_param)


@caffe2_adam_update.shape
def _(param, m1, m2, grad, lr, iteration, *, beta1, beta2, epsilon, output_grad):
    _check_like(param, m1=m1, m2=m2, grad=grad)
    _check_one("lr", lr)
    _check_one("iter", iteration)
    if beta1 == 1.0:
        raise ShapeError("beta1 must be < 1 (the bias correction divides by 1 - beta1^t)")
    return [param, m1, m2] + ([grad] if output_grad else [])


caffe2_adam_update.scratch(_scratch_like_first)


# -- Adagrad ----------------------------------------------------------------------------------

@register("Caffe2AdagradUpdate", inputs=4, outputs=2, inplace={0: 0, 1: 1}, stateful=True,
          args={"epsilon": 1e-5, "decay": 1.0})
def caffe2_adagrad_update(xp, param, moment, grad, lr, *, out, epsilon, decay, scratch):
    """Caffe2's Adagrad: (param, moment, grad, lr) -> (param, moment).

    moment = decay * moment + g^2; param = param + lr * g / (sqrt(moment) + epsilon).
    """
    new_param, new_moment = out
    step, = scratch
    xp.multiply(grad, grad, out=step)
    xp.multiply(moment, decay, out=new_moment)
    xp.add(new_moment, step, out=new_moment)
    xp.sqrt(new_moment, out=step)
    xp.add(step, epsilon, out=step)
    xp.divide(grad, step, out=step)
    xp.multiply(step, _scalar(lr), out=step)
    xp.add(param, step, out=new_param)


@caffe2_adagrad_update.shape
def _(param, moment, grad, lr, *, epsilon, decay):
    _check_like(param, moment=moment, grad=grad)
    _check_one("lr", lr)
    return [param, moment]


caffe2_adagrad_update.scratch(_scratch_like_first)


# -- RmsProp ----------------------------------------------------------------------------------

@register("Caffe2RmsPropUpdate", inputs=4, outputs=3, inplace={0: 0, 1: 1, 2: 2}, stateful=True,
          args={"decay": 0.9, "momentum": 0.0, "epsilon": 1e-5})
def caffe2_rmsprop_update(xp, grad, mean_squares, mom, lr, *, out, decay, momentum, epsilon,
                          scratch):
    """Caffe2's RmsProp: (grad, mean_squares, mom, lr) -> (step, mean_squares, mom).

    ms = ms + (1 - decay) (g^2 - ms); mom = momentum mom + lr g / sqrt(epsilon + ms);
    step = mom (the caller adds it to the parameter).
    """
    new_grad, new_ms, new_mom = out
    work, = scratch
    xp.multiply(grad, grad, out=work)
    xp.subtract(work, mean_squares, out=work)
    xp.multiply(work, 1.0 - decay, out=work)
    xp.add(mean_squares, work, out=new_ms)
    xp.add(new_ms, epsilon, out=work)
    xp.sqrt(work, out=work)
    xp.divide(grad, work, out=work)
    xp.multiply(work, _scalar(lr), out=work)
    xp.multiply(mom, momentum, out=new_mom)
    xp.add(new_mom, work, out=new_mom)
    if new_grad is not new_mom:
        xp.copyto(new_grad, new_mom)


@caffe2_rmsprop_update.shape
def _(grad, mean_squares, mom, lr, *, decay, momentum, epsilon):
    _check_like(grad, mean_squares=mean_squares, mom=mom)
    _check_one("lr", lr)
    return [grad, mean_squares, mom]


caffe2_rmsprop_update.scratch(_scratch_like_first)
