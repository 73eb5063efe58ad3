"""Iteration counters and learning-rate schedules computed from them (Caffe2's Iter, LearningRate).

The counter is an integer array of one element that ``Iter`` increments in
place; ``LearningRate`` reads it and writes ``base_lr * policy(iter)`` as a
float32 array of shape (1,), so a schedule costs no recompilation::

    it = dragon.ops.iter(counter)                       # counter + 1
    lr = dragon.ops.learning_rate(it, base_lr=-0.1, policy="step", stepsize=20, gamma=0.9)
"""
from __future__ import annotations

import math

import numpy as np

from dragon.core.errors import ShapeError
from dragon.ops.registry import REQUIRED, Spec, register

POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly")


def _check_counter(spec, what):
    if spec.dtype.kind not in "iu":
        raise ShapeError(f"{what} must be an integer counter, got dtype {spec.dtype}")
    if spec.size != 1:
        raise ShapeError(f"{what} must hold exactly one element, got shape {tuple(spec.shape)}")


@register("Iter", inplace={0: 0}, stateful=True)
def iteration(xp, counter, *, out):
    """Y = X + 1 for an integer counter of one element (Caffe2's Iter, run in place)."""
    xp.add(counter, 1, out=out)


@iteration.shape
def _(counter):
    _check_counter(counter, "the iteration counter")
    return counter


def policy_factor(iteration_value, policy, gamma, stepsize, power, max_iter, stepsizes):
    """The multiplier of ``base_lr`` at ``iteration_value`` (Caffe2's LearningRate policies)."""
    it = float(iteration_value)
    if policy == "fixed":
        return 1.0
    if policy == "step":
        return gamma ** math.floor(it / stepsize)
    if policy == "exp":
        return gamma ** it
    if policy == "inv":
        return (1.0 + gamma * it) ** (-power)
    if policy == "multistep":
        return gamma ** sum(1 for s in stepsizes if it >= s)
    return max(0.0, 1.0 - it / max_iter) ** power  # poly


_LR_ARGS = {"base_lr": REQUIRED, "policy": "fixed", "gamma": 0.0, "stepsize": 0, "power": 0.0,
            "max_iter": 0, "stepsizes": []}


@register("LearningRate", stateful=True, args=_LR_ARGS)
def learning_rate(xp, counter, *, out, base_lr, policy, **schedule):
    """Y (float32, shape (1,)) = base_lr * policy(iter): fixed 1, step gamma^floor(iter/stepsize),
    exp gamma^iter, inv (1 + gamma iter)^-power, multistep gamma^(#stepsizes <= iter),
    poly (1 - iter/max_iter)^power (Caffe2's LearningRate)."""
    value = int(counter.reshape(-1)[0])
    out[...] = base_lr * policy_factor(value, policy, **schedule)


@learning_rate.shape
def _(counter, *, base_lr, policy, gamma, stepsize, power, max_iter, stepsizes):
    _check_counter(counter, "the iteration counter of LearningRate")
    if policy not in POLICIES:
        raise ShapeError(f"unknown learning rate policy {policy!r}; use one of {list(POLICIES)}")
    if policy == "step" and stepsize <= 0:
        raise ShapeError(f"policy 'step' needs stepsize > 0, got {stepsize}")
    if policy == "poly" and max_iter <= 0:
        raise ShapeError(f"policy 'poly' needs max_iter > 0, got {max_iter}")
    if policy == "multistep" and not stepsizes:
        raise ShapeError("policy 'multistep' needs stepsizes")
    return Spec((1,), np.dtype(np.float32))
