"""The op registry: one registration per op, carrying everything the engine needs.

An op is registered once with its kernel; shape inference, the gradient rule and
the scratch space it wants are attached to the same object, side by side::

    @register("Relu", args={"slope": 0.0}, inplace={0: 0}, recompute=True)
    def relu(xp, x, *, out, slope):
        xp.maximum(x, 0, out=out)

    @relu.shape
    def _(x, *, slope):
        return x                      # a Spec(shape, dtype) in, specs out

    @relu.grad
    def _(g):                         # ops that compute the input gradients
        return [g.op("ReluGradient", [g.Y(0), g.dY(0)], slope=g.args["slope"])]

Kernel contract: ``kernel(xp, *inputs, out, **args)`` where ``xp`` is the array
module (numpy or cupy), ``inputs`` are arrays, and ``out`` is the output array the
memory planner allocated (a tuple of arrays for ops with several outputs). A kernel
writes its results into ``out`` and returns nothing. Ops that declared scratch
space also receive ``scratch=`` (a tuple of arrays, alive only during the call).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from dragon.core.errors import ShapeError, UnknownOpError

REQUIRED = object()  # marks an argument without a default


class Spec(NamedTuple):
    """Shape and dtype of a tensor, as shape inference sees it."""

    shape: tuple
    dtype: np.dtype

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        n = 1
        for d in self.shape:
            n *= int(d)
        return n

    @property
    def nbytes(self):
        return self.size * np.dtype(self.dtype).itemsize

    def with_shape(self, shape):
        return Spec(tuple(int(d) for d in shape), self.dtype)

    def with_dtype(self, dtype):
        return Spec(self.shape, np.dtype(dtype))


def spec(shape, dtype="float32") -> Spec:
    """Build a Spec from any shape sequence and dtype name."""
    return Spec(tuple(int(d) for d in shape), np.dtype(dtype))


class OpSchema:
    """Everything the engine knows about one op type."""

    def __init__(self, type_name, kernel, *, args, inputs, outputs, inplace,
                 recompute, stateful, doc, alias=None):
        self.type = type_name
        self.kernel = kernel
        self.args = dict(args or {})
        self.num_inputs = (inputs, inputs) if isinstance(inputs, int) else tuple(inputs)
        self._num_outputs = outputs
        self.inplace = dict(inplace or {})
        self.recompute = recompute
        self.stateful = stateful
        self.alias = alias
        self.doc = doc or (kernel.__doc__ or "").strip()
        self.shape_fn: Callable | None = None
        self.grad_fn: Callable | None = None
        self.scratch_fn: Callable | None = None
        self.flops_fn: Callable | None = None

    # -- decorators attaching the other parts of the registration ---------------
    def shape(self, fn):
        """Attach shape/dtype inference: ``fn(*input_specs, **args) -> Spec | [Spec]``."""
        self.shape_fn = fn
        return fn

    def grad(self, fn):
        """Attach the gradient rule: ``fn(g) -> [Tensor | None]``, one per input."""
        self.grad_fn = fn
        return fn

    def scratch(self, fn):
        """Attach a scratch request: ``fn(*input_specs, **args) -> [Spec]``."""
        self.scratch_fn = fn
        return fn

    def flops(self, fn):
        """Attach a cost estimate for BLAS-bound ops: ``fn(*input_specs, **args) -> int``.

        The executor runs small products on one BLAS thread (see backend).
        """
        self.flops_fn = fn
        return fn

    # -- queries the engine makes ------------------------------------------------
    @property
    def has_gradient(self):
        return self.grad_fn is not None

    def num_outputs(self, args: dict) -> int:
        n = self._num_outputs
        return int(n(args)) if callable(n) else int(n)

    def full_args(self, given: dict, where: str = "") -> dict:
        """The op's arguments with defaults filled; unknown or missing ones raise."""
        unknown = set(given) - set(self.args)
        if unknown:
            raise TypeError(
                f"{where}op type '{self.type}' has no argument(s) {sorted(unknown)}; "
                f"it takes {sorted(self.args) or 'none'}")
        merged = {}
        for name, default in self.args.items():
            if name in given:
                merged[name] = given[name]
            elif default is REQUIRED:
                raise TypeError(f"{where}op type '{self.type}' needs argument '{name}'")
            else:
                merged[name] = default
        return merged

    def infer(self, input_specs, args, where=""):
        """Run shape inference; errors name the op and every input shape."""
        lo, hi = self.num_inputs
        if not lo <= len(input_specs) <= hi:
            expect = lo if lo == hi else f"{lo} to {hi}"
            raise ShapeError(f"{where}'{self.type}' takes {expect} inputs, got {len(input_specs)}")
        try:
            result = self.shape_fn(*input_specs, **args)
        except ShapeError as exc:
            raise ShapeError(f"{where}{self.type}: {exc} (input shapes "
                             f"{[tuple(s.shape) for s in input_specs]})") from None
        except (ValueError, IndexError, TypeError, ZeroDivisionError) as exc:
            raise ShapeError(f"{where}{self.type} cannot take input shapes "
                             f"{[tuple(s.shape) for s in input_specs]} with "
                             f"{_fmt_args(args)}: {exc}") from None
        specs = [result] if isinstance(result, Spec) else list(result)
        n = self.num_outputs(args)
        if len(specs) != n:
            raise AssertionError(f"shape rule of {self.type} returned {len(specs)} specs for {n} outputs")
        return specs

    def __repr__(self):
        return f"<op {self.type}>"


_REGISTRY: dict[str, OpSchema] = {}


def register(type_name: str, *, args: dict | None = None, inputs=1, outputs=1,
             inplace: dict | None = None, recompute: bool = False,
             stateful: bool = False, alias: int | None = None, doc: str | None = None):
    """Register the decorated kernel as op ``type_name``.

    args: argument name -> default (``REQUIRED`` for none).
    inputs: a count, or ``(min, max)`` for a variable count.
    outputs: a count, or ``fn(args) -> count``.
    inplace: output index -> input index the output may overwrite.
    recompute: cheap and deterministic, so the planner may recompute it.
    stateful: random, or writes state other than its outputs (never recomputed).
    alias: input index whose data the (single) output equals, reshaped, whenever
    the two have the same byte size: the planner then makes the output a view of
    that input and runs no kernel (Reshape, Flatten, StopGradient, ...).
    """
    def wrap(kernel):
        if type_name in _REGISTRY:
            raise ValueError(f"op type '{type_name}' is registered twice")
        schema = OpSchema(type_name, kernel, args=args, inputs=inputs, outputs=outputs,
                          inplace=inplace, recompute=recompute, stateful=stateful, doc=doc,
                          alias=alias)
        _REGISTRY[type_name] = schema
        return schema
    return wrap


def get(type_name: str) -> OpSchema:
    """The schema of ``type_name``; an unknown type raises naming close matches."""
    try:
        return _REGISTRY[type_name]
    except KeyError:
        import difflib
        close = difflib.get_close_matches(type_name, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnknownOpError(f"unknown op type '{type_name}'{hint}") from None


def names() -> list[str]:
    """Every registered op type, sorted."""
    return sorted(_REGISTRY)


def _fmt_args(args: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items()) or "no arguments"


# -- small helpers shared by shape rules ------------------------------------------

def broadcast_shapes(*shapes) -> tuple:
    """numpy broadcasting of shapes, raising ShapeError when they do not fit."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(f"shapes {list(map(tuple, shapes))} do not broadcast") from None


def normalize_axis(axis: int, ndim: int) -> int:
    if not -ndim <= axis < max(ndim, 1):
        raise ShapeError(f"axis {axis} is out of range for {ndim}-d input")
    return axis % max(ndim, 1)


def result_dtype(*specs: Spec) -> np.dtype:
    return np.result_type(*[s.dtype for s in specs])

