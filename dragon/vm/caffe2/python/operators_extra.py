"""Caffe2 operators the Caffe translator emits that ``operators.py`` does not (yet) define.

Importing this module registers them into the front end's operator table with
``operators.caffe2_op``; a type the table already has keeps its own entry. They
are registered for inference, without gradients: a differentiable operator
belongs in ``operators.py`` with its finite-difference case in the gradient
tests::

    from dragon.vm.caffe2.python import operators_extra  # noqa: F401 (registers Max, Slice)
    workspace.RunOperatorOnce(core.CreateOperator("Max", ["A", "B"], ["C"]))
"""
from __future__ import annotations

import numpy as np

from dragon.vm.caffe2.python import operators


def _register(op_type):
    def wrap(fn):
        if operators.find(op_type) is None:
            operators.caffe2_op(op_type)(fn)
        return fn
    return wrap


@_register("Max")
def _max(ctx):
    """Elementwise maximum of every input (same shapes)."""
    xs = ctx.inputs()
    if len(xs) == 1:
        return ctx.emit("Copy", xs, [ctx.out(0)])
    y = xs[0]
    for k, x in enumerate(xs[1:], start=1):
        out = ctx.out(0) if k == len(xs) - 1 else ctx.aux("partial")
        y = ctx.emit("Maximum", [y, x], [out])[0]
    return [y]


def _bounds(ctx, name, position):
    if ctx.num_inputs > position:
        return [int(v) for v in np.ravel(ctx.value(position))]
    return [int(v) for v in ctx.arg(name, [])]


@_register("Slice")
def _slice(ctx):
    """``starts``/``ends`` per axis (arguments or inputs 1, 2); a negative index i means
    dim + 1 + i, so an end of -1 runs to the end. Axes not listed are taken whole."""
    x = ctx.input(0)
    starts, ends = _bounds(ctx, "starts", 1), _bounds(ctx, "ends", 2)
    if len(starts) != len(ends) or len(starts) > x.ndim:
        raise RuntimeError(f"{operators.describe(ctx.op)}: starts {starts} and ends {ends} "
                           f"must list the same axes, at most the {x.ndim} of '{x.name}'")
    begin, end = [], []
    for s, e, dim in zip(starts, ends, x.shape):
        s, e = (v + dim + 1 if v < 0 else v for v in (s, e))
        if not 0 <= s <= e <= dim:
            raise RuntimeError(f"{operators.describe(ctx.op)}: slice {s}:{e} does not fit an "
                               f"axis of size {dim} of '{x.name}' {tuple(x.shape)}")
        begin.append(s)
        end.append(e)
    return ctx.emit("StridedSlice", [x], [ctx.out(0)], begin=begin, end=end)
