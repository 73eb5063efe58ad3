"""The registry-wide op checks: cases, the forward check and the gradient check.

Each ``tests/ops/cases_<family>.py`` defines ``CASES``, a list of ``Case``. The
tests in ``test_registry.py`` run every case forward against its float64 numpy
reference (and in float32), check the gradient rule by central finite
differences, and fail if any registered op is neither a case's op nor a
gradient op exercised by some case's gradient check.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

import dragon
from dragon.core.graph import collect_nodes
from dragon.core.tensor import apply


@dataclasses.dataclass
class Case:
    op: str
    inputs: list                         # numpy arrays (floats as float64)
    args: dict = dataclasses.field(default_factory=dict)
    reference: Callable | None = None    # numpy float64 reference: (*inputs, **args) -> array | tuple
    check: Callable | None = None        # instead of reference: (outputs, inputs, args) -> None, asserts
    grad: tuple | None = None            # input indices to check by finite differences; None: every float input
    grad_outputs: tuple | None = None    # outputs the test cost reads; None: every float output
    rtol: float = 1e-6
    atol: float = 1e-8
    grad_rtol: float = 1e-4
    grad_atol: float = 1e-6
    eps: float = 1e-6
    seed: int | None = None              # reseed before every run (random ops)
    float32: bool = True                 # also run forward on float32 copies of float inputs
    name: str = ""                       # distinguishes several cases of one op

    @property
    def id(self):
        return f"{self.op}-{self.name}" if self.name else self.op

    def grad_indices(self):
        if self.grad is not None:
            return tuple(self.grad)
        return tuple(i for i, x in enumerate(self.inputs) if np.asarray(x).dtype.kind == "f")


def _placeholders(inputs):
    return [dragon.placeholder(np.shape(x), np.asarray(x).dtype, name=f"in{i}")
            for i, x in enumerate(inputs)]


def build(case, inputs=None):
    inputs = case.inputs if inputs is None else inputs
    phs = _placeholders(inputs)
    outs = apply(case.op, phs, **case.args)
    outs = outs if isinstance(outs, list) else [outs]
    return phs, outs


def run_forward(case, inputs=None, level=0):
    inputs = case.inputs if inputs is None else inputs
    phs, outs = build(case, inputs)
    previous = dragon.config.get_optimization_level()
    dragon.config.set_optimization_level(level)
    try:
        f = dragon.function(phs, outs)
        if case.seed is not None:
            dragon.config.set_random_seed(case.seed)
        return f(*inputs)
    finally:
        dragon.config.set_optimization_level(previous)


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def check_forward(case):
    outputs = run_forward(case)
    if case.reference is not None:
        expected = _as_tuple(case.reference(*case.inputs, **case.args))
        assert len(expected) <= len(outputs), f"{case.id}: reference gave {len(expected)} outputs"
        for k, (got, want) in enumerate(zip(outputs, expected)):
            want = np.asarray(want)
            assert got.shape == want.shape, f"{case.id} output {k}: shape {got.shape} != {want.shape}"
            np.testing.assert_allclose(got, want, rtol=case.rtol, atol=case.atol,
                                       err_msg=f"{case.id} output {k}")
    if case.check is not None:
        case.check(outputs, case.inputs, case.args)
    if case.reference is None and case.check is None:
        raise AssertionError(f"{case.id}: a case needs a reference or a check")


def check_forward_float32(case):
    if not case.float32 or case.reference is None:
        return
    inputs32 = [np.asarray(x, np.float32) if np.asarray(x).dtype == np.float64 else x
                for x in case.inputs]
    outputs = run_forward(case, inputs32)
    expected = _as_tuple(case.reference(*case.inputs, **case.args))
    for k, (got, want) in enumerate(zip(outputs, expected)):
        want = np.asarray(want)
        if want.dtype == np.float64:
            assert got.dtype == np.float32, f"{case.id} output {k}: float32 in gave {got.dtype} out"
            scale = max(1.0, float(np.abs(want).max(initial=0)))
            np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5 * scale,
                                       err_msg=f"{case.id} output {k} (float32)")


def _cost_graph(case):
    phs, outs = build(case)
    rng = np.random.default_rng(0)
    which = case.grad_outputs if case.grad_outputs is not None else tuple(
        k for k, o in enumerate(outs) if o.dtype is not None and o.dtype.kind == "f")
    terms = []
    for k in which:
        weights = dragon.constant(rng.standard_normal(outs[k].shape), outs[k].dtype)
        terms.append(dragon.ops.reduce_sum(outs[k] * weights))
    cost = terms[0] if len(terms) == 1 else apply("Sum", terms)
    return phs, cost


def gradient_op_types(case):
    """Op types in the backward graph of ``case``'s gradient check."""
    phs, cost = _cost_graph(case)
    wrt = [phs[i] for i in case.grad_indices()]
    grads = dragon.grad(cost, wrt, disconnected="ignore")
    nodes, _ = collect_nodes([g for g in grads if g is not None])
    return {n.type for n in nodes if n.is_gradient}


def check_gradient(case):
    indices = case.grad_indices()
    if not indices:
        return
    phs, cost = _cost_graph(case)
    wrt = [phs[i] for i in indices]
    grads = dragon.grad(cost, wrt)
    previous = dragon.config.get_optimization_level()
    dragon.config.set_optimization_level(0)
    try:
        f_cost = dragon.function(phs, cost)
        f_grad = dragon.function(phs, grads)

        def cost_at(values):
            if case.seed is not None:
                dragon.config.set_random_seed(case.seed)
            return float(f_cost(*values))

        values = [np.array(x, copy=True) for x in case.inputs]
        if case.seed is not None:
            dragon.config.set_random_seed(case.seed)
        analytic = f_grad(*values)
        for i, got in zip(indices, analytic):
            x = values[i]
            numeric = np.zeros_like(x, dtype=np.float64)
            flat = x.reshape(-1)
            for j in range(flat.size):
                old = flat[j]
                flat[j] = old + case.eps
                up = cost_at(values)
                flat[j] = old - case.eps
                down = cost_at(values)
                flat[j] = old
                numeric.reshape(-1)[j] = (up - down) / (2 * case.eps)
            np.testing.assert_allclose(got, numeric, rtol=case.grad_rtol, atol=case.grad_atol,
                                       err_msg=f"{case.id}: gradient of input {i}")
    finally:
        dragon.config.set_optimization_level(previous)


def rand(*shape, low=-1.0, high=1.0, seed=None):
    """float64 test input, deterministic per shape unless ``seed`` says otherwise."""
    rng = np.random.default_rng(hash(shape) % (2**32) if seed is None else seed)
    return rng.uniform(low, high, size=shape)


def away_from(x, points=(0.0,), margin=0.05):
    """``x`` with entries moved away from kinks (|x - p| >= margin)."""
    x = np.array(x, copy=True)
    for p in points:
        close = np.abs(x - p) < margin
        x[close] = p + np.where(x[close] >= p, margin, -margin)
    return x
