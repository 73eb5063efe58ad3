"""Updaters: they turn (parameter, gradient) pairs into fused in-place update ops.

    opt = dragon.updaters.SGD(lr=0.01, momentum=0.9, weight_decay=5e-4)
    step = dragon.function([x, y], loss, updates=opt.minimize(loss, [w, b]))
    step(xb, yb)
    opt.lr = 0.001            # takes effect on the next call, no recompile

The order per step is Caffe's: clip every gradient by the global norm, scale
(e.g. 1/iter_size), add weight decay, then the solver's update rule. A learning
rate and each rule's hyper-parameters that change during training live in
0-d workspace variables, so changing them never recompiles. Gradients pass
through ``reduce_gradients`` before use: the distributed updater overrides it
with one fused allreduce.
"""
from __future__ import annotations

import numpy as np

from dragon.core.autodiff import grad as _grad
from dragon.core.scope import unique_name
from dragon.core.tensor import Tensor, apply, constant, variable


class Updater:
    """Base class: hyper-parameters, slots and the shared gradient pipeline."""

    #: op type and the names of the history slots it keeps per parameter
    op_type = ""
    slots: tuple = ()

    def __init__(self, lr=0.01, weight_decay=0.0, decay_kind="L2", clip_norm=-1.0,
                 grad_scale=1.0, name=None, **hyper):
        if decay_kind not in ("L1", "L2"):
            raise ValueError(f"decay_kind must be 'L1' or 'L2', got {decay_kind!r}")
        self.name = name or unique_name(type(self).__name__, scoped=False)
        self._lr = variable(np.float32(lr), name=f"{self.name}/lr")
        self.weight_decay = float(weight_decay)
        self.decay_kind = decay_kind
        self.clip_norm = float(clip_norm)
        self.grad_scale = float(grad_scale)
        self.hyper = hyper
        self.slot_vars: dict[str, list] = {}

    # -- the learning rate, changeable without recompiling ----------------------------
    @property
    def lr(self) -> float:
        return float(self._lr.get_value())

    @lr.setter
    def lr(self, value):
        self._lr.set_value(np.float32(value))

    # -- building the update ops ------------------------------------------------------
    def minimize(self, loss, params, lr_mults=None, decay_mults=None):
        """Update pairs that lower ``loss`` w.r.t. ``params``."""
        return self.updates(params, _grad(loss, list(params)), lr_mults, decay_mults)

    def updates(self, params, grads, lr_mults=None, decay_mults=None):
        """``[(param, updated), ...]`` for ``dragon.function(updates=...)``.

        lr_mults/decay_mults: per-parameter multipliers (Caffe's ParamSpec).
        A parameter with lr_mult 0 is left alone.
        """
        params = list(params)
        grads = self.reduce_gradients(list(grads))
        lr_mults = list(lr_mults) if lr_mults is not None else [1.0] * len(params)
        decay_mults = list(decay_mults) if decay_mults is not None else [1.0] * len(params)
        live = [i for i, m in enumerate(lr_mults) if m != 0 and grads[i] is not None]
        grads = [grads[i] for i in live]
        if self.clip_norm > 0 and grads:
            clipped = apply("ClipByGlobalNorm", grads, max_norm=self.clip_norm, num_grads=len(grads))
            grads = clipped if isinstance(clipped, list) else [clipped]
        pairs = list(self._prologue())
        for g, i in zip(grads, live):
            param = params[i]
            if self.grad_scale != 1.0:
                g = g * constant(self.grad_scale, param.dtype)
            decay = self.weight_decay * decay_mults[i]
            if decay:
                g = apply("WeightDecay", [g, param], decay=decay, kind=self.decay_kind)
            lr = self._lr if lr_mults[i] == 1 else self._lr * constant(lr_mults[i], "float32")
            pairs.append((param, self._update(param, g, lr)))
        return pairs

    def reduce_gradients(self, grads):
        """Combine gradients across workers; one process keeps them as they are."""
        return grads

    def _prologue(self):
        return ()

    def _slot(self, param, slot):
        value = np.zeros(param.get_value().shape, param.dtype)
        var = variable(value, name=f"{param.name}/{self.name}/{slot}")
        self.slot_vars.setdefault(slot, []).append(var)
        return var

    def _update(self, param: Tensor, g: Tensor, lr: Tensor) -> Tensor:
        slots = [self._slot(param, s) for s in self.slots]
        outs = apply(self.op_type, [param, g, *slots, lr, *self._extra_inputs()],
                     out_names=[param.name] + [s.name for s in slots], assigns=True,
                     **self.hyper)
        return outs[0] if isinstance(outs, list) else outs

    def _extra_inputs(self):
        return ()


class SGD(Updater):
    """Momentum SGD (Caffe's SGD): v = m v + lr g; w -= v.

    >>> opt = dragon.updaters.SGD(lr=0.01, momentum=0.9)
    """
    op_type, slots = "SGDUpdate", ("momentum",)

    def __init__(self, lr=0.01, momentum=0.9, **kwargs):
        super().__init__(lr, momentum=float(momentum), **kwargs)


class Nesterov(Updater):
    """Nesterov momentum, as Caffe's NesterovSolver.

    >>> opt = dragon.updaters.Nesterov(lr=0.01, momentum=0.9)
    """
    op_type, slots = "NesterovUpdate", ("momentum",)

    def __init__(self, lr=0.01, momentum=0.9, **kwargs):
        super().__init__(lr, momentum=float(momentum), **kwargs)


class AdaGrad(Updater):
    """AdaGrad: h += g^2; w -= lr g / (sqrt(h) + eps).

    >>> opt = dragon.updaters.AdaGrad(lr=0.01)
    """
    op_type, slots = "AdaGradUpdate", ("history",)

    def __init__(self, lr=0.01, eps=1e-8, **kwargs):
        super().__init__(lr, eps=float(eps), **kwargs)


class RMSProp(Updater):
    """RMSProp (Caffe's rms_decay): h = d h + (1-d) g^2; w -= lr g / (sqrt(h) + eps).

    >>> opt = dragon.updaters.RMSProp(lr=0.01, decay=0.98)
    """
    op_type, slots = "RMSPropUpdate", ("history",)

    def __init__(self, lr=0.01, decay=0.99, eps=1e-8, **kwargs):
        super().__init__(lr, decay=float(decay), eps=float(eps), **kwargs)


class AdaDelta(Updater):
    """AdaDelta, as Caffe's AdaDeltaSolver (which also multiplies by lr).

    >>> opt = dragon.updaters.AdaDelta(lr=1.0, momentum=0.95)
    """
    op_type, slots = "AdaDeltaUpdate", ("history_grad", "history_update")

    def __init__(self, lr=1.0, momentum=0.95, eps=1e-6, **kwargs):
        super().__init__(lr, momentum=float(momentum), eps=float(eps), **kwargs)


class Adam(Updater):
    """Adam with bias correction (Caffe's AdamSolver, t = iteration + 1).

    >>> opt = dragon.updaters.Adam(lr=0.001, beta1=0.9, beta2=0.999)
    """
    op_type, slots = "AdamUpdate", ("m", "v")

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, **kwargs):
        super().__init__(lr, beta1=float(beta1), beta2=float(beta2), eps=float(eps), **kwargs)
        self._t = variable(np.float32(0), name=f"{self.name}/t")

    def _prologue(self):
        # The step counter advances first, so every AdamUpdate of this call reads t + 1.
        return [(self._t, self._t + constant(1.0, "float32"))]

    def _extra_inputs(self):
        return (self._t,)


UPDATERS = {"SGD": SGD, "Nesterov": Nesterov, "AdaGrad": AdaGrad, "RMSProp": RMSProp,
            "AdaDelta": AdaDelta, "Adam": Adam}
