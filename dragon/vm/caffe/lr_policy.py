"""Caffe's learning-rate policies (``SGDSolver::GetLearningRate``), exactly.

    from dragon.vm.caffe.lr_policy import LearningRate
    schedule = LearningRate(solver_param)          # a caffe_pb2.SolverParameter
    schedule(iteration)                             # the rate for that iteration

Policies (``base_lr`` is the base rate, ``iter`` the iteration, integer division
where Caffe divides integers):

- fixed:     base_lr
- step:      base_lr * gamma ^ (iter // stepsize)
- exp:       base_lr * gamma ^ iter
- inv:       base_lr * (1 + gamma * iter) ^ (-power)
- multistep: base_lr * gamma ^ current_step, current_step advancing by one on the
             first iteration that reaches each ``stepvalue``
- poly:      base_lr * (1 - iter / max_iter) ^ power
- sigmoid:   base_lr / (1 + exp(-gamma * (iter - stepsize)))
"""
from __future__ import annotations

import math

from dragon import config

POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")


class LearningRate:
    """The learning-rate schedule of one ``SolverParameter``.

    ``current_step`` is the solver state Caffe snapshots (``SolverState.current_step``):
    the multistep policy advances it, the step policy recomputes it.

    >>> p = caffe_pb2.SolverParameter(base_lr=0.01, lr_policy="inv", gamma=1e-4, power=0.75)
    >>> round(LearningRate(p)(100), 6)
    0.009926
    """

    def __init__(self, param, where="solver"):
        self.param = param
        self.policy = param.lr_policy
        self.where = where
        self.current_step = 0
        if self.policy not in POLICIES:
            raise ValueError(f"{where}: unknown lr_policy '{self.policy}'; Caffe knows "
                             f"{', '.join(POLICIES)}")
        if self.policy in ("step",) and param.stepsize <= 0:
            raise ValueError(f"{where}: lr_policy 'step' needs stepsize > 0, got {param.stepsize}")
        if self.policy == "poly" and param.max_iter <= 0:
            raise ValueError(f"{where}: lr_policy 'poly' needs max_iter > 0, got {param.max_iter}")
        values = list(param.stepvalue)
        if self.policy == "multistep" and values != sorted(values):
            raise ValueError(f"{where}: multistep stepvalue must increase, got {values}")

    def __call__(self, iteration: int) -> float:
        p, it = self.param, int(iteration)
        policy = self.policy
        if policy == "fixed":
            return p.base_lr
        if policy == "step":
            self.current_step = it // p.stepsize
            return p.base_lr * math.pow(p.gamma, self.current_step)
        if policy == "exp":
            return p.base_lr * math.pow(p.gamma, it)
        if policy == "inv":
            return p.base_lr * math.pow(1.0 + p.gamma * it, -p.power)
        if policy == "multistep":
            # One advance per call, as Caffe: the solver asks once per iteration.
            if self.current_step < len(p.stepvalue) and it >= p.stepvalue[self.current_step]:
                self.current_step += 1
                config.logger.info("MultiStep Status: Iteration %d, step = %d",
                                   it, self.current_step)
            return p.base_lr * math.pow(p.gamma, self.current_step)
        if policy == "poly":
            return p.base_lr * math.pow(1.0 - float(it) / p.max_iter, p.power)
        # sigmoid
        return p.base_lr * (1.0 / (1.0 + math.exp(-p.gamma * (it - p.stepsize))))
