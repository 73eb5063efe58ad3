"""Compile a GraphDef into a flat plan of bound kernel calls, and run it.

    plan = compile_graph(graph_def, feeds={"x": Spec((64, 784), float32)},
                         fetches=["loss"], workspace=ws)
    loss, = plan.run(x_batch)

Compiling resolves every op against the registry, versions names (SSA), infers
shapes, prunes, optionally recomputes, plans memory and binds each kernel to its
buffers. Running is one Python call per op.
"""
from __future__ import annotations

import functools
import time

import numpy as np

from dragon import backend, config
from dragon.core import optimize
from dragon.core.errors import (DragonError, FeedError, MissingTensorError, ShapeError,
                                UnknownOpError)
from dragon.core.graph import decode_args
from dragon.core.optimize import Step, Value
from dragon.ops import registry
from dragon.ops.registry import Spec


class Plan:
    """A compiled graph: buffers, bound steps, feed and fetch slots."""

    def __init__(self, name, steps, calls, feed_values, fetch_values, buffers, stats, xp):
        self.name = name
        self.steps = steps
        self.calls = calls
        self.feed_values = feed_values
        self.fetch_values = fetch_values
        self.buffers = buffers
        self.stats = stats
        self.xp = xp
        self.feed_views = [v.view for v in feed_values]
        self.fetch_views = [v.view for v in fetch_values]

    def fill(self, feeds):
        """Copy ``feeds`` into the plan's feed buffers."""
        xp = self.xp
        for view, value in zip(self.feed_views, feeds):
            if xp is np:
                np.copyto(view, value, casting="unsafe")
            else:
                view[...] = xp.asarray(value)

    def run(self, feeds=(), copy_outputs=True):
        """Copy ``feeds`` in, run every step, return the fetched arrays."""
        self.fill(feeds)
        index = 0
        try:
            for call in self.calls:
                call()
                index += 1
        except DragonError:
            raise
        except Exception as exc:
            step = self.steps[index]
            shapes = [tuple(v.spec.shape) for v in step.inputs]
            raise ShapeError(f"{step.label} of graph '{self.name}' failed at run time with input "
                             f"shapes {shapes}: {type(exc).__name__}: {exc}") from exc
        if copy_outputs:
            return [v.copy() for v in self.fetch_views]
        return list(self.fetch_views)

    def profile(self, feeds=(), repeat=1):
        """Seconds spent in each op type over ``repeat`` runs: ``{type: seconds}``."""
        totals: dict[str, float] = {}
        for _ in range(repeat):
            self.fill(feeds)  # the plan may have reused the feed buffers
            for step, call in zip(self.steps, self.calls):
                t0 = time.perf_counter()
                call()
                dt = time.perf_counter() - t0
                totals[step.op_def.type] = totals.get(step.op_def.type, 0.0) + dt
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def compile_graph(graph_def, feeds: dict, fetches, workspace, *, level=None,
                  keep=(), name=None) -> Plan:
    """Compile ``graph_def`` for feeds of the given specs.

    feeds: name -> Spec of each fed tensor (in the order ``Plan.run`` takes them).
    fetches: names whose final values ``run`` returns.
    keep: names whose final values stay in buffers the workspace may read after
    the run (``workspace.bind_outputs`` stores them).
    """
    level = config.get_optimization_level() if level is None else level
    xp = backend.array_module()
    name = name or graph_def.name or "graph"
    arrays = workspace.arrays
    fetches = list(fetches)
    keep = set(keep) | set(fetches)

    def writes_persistent(op):
        return any(o in arrays and o not in feeds for o in op.output)

    op_defs = list(graph_def.op)
    if level >= config.LEVEL_INPLACE:
        op_defs = optimize.prune(op_defs, keep, writes_persistent)

    values: list[Value] = []
    current: dict[str, Value] = {}
    for fname, fspec in feeds.items():
        v = Value(fname, fspec, "feed")
        values.append(v)
        current[fname] = v

    def lookup(tensor_name, op_def):
        v = current.get(tensor_name)
        if v is not None:
            return v
        if tensor_name in arrays:
            array = _on_device(arrays, tensor_name, xp)
            v = Value(tensor_name, Spec(tuple(array.shape), array.dtype), "persistent")
            v.view = array
            values.append(v)
            current[tensor_name] = v
            return v
        raise MissingTensorError(
            f"op '{op_def.name or '?'}' ({op_def.type}) reads tensor '{tensor_name}', which is "
            f"not fed, not produced by an earlier op and not in workspace '{workspace.name}'")

    steps = []
    for index, op_def in enumerate(op_defs):
        try:
            schema = registry.get(op_def.type)
        except UnknownOpError as exc:
            raise UnknownOpError(f"op '{op_def.name or '?'}' of graph '{name}': {exc}") from None
        where = f"op '{op_def.name or '?'}' "
        args = schema.full_args(decode_args(op_def), where=where)
        inputs = [lookup(t, op_def) for t in op_def.input]
        out_specs = schema.infer([v.spec for v in inputs], args, where=where)
        if len(op_def.output) != len(out_specs):
            raise ShapeError(f"{where}({op_def.type}) has {len(op_def.output)} outputs; "
                             f"the op makes {len(out_specs)}")
        if schema.alias is not None and level >= config.LEVEL_INPLACE:
            alias = _try_alias(schema, inputs, out_specs, op_def, arrays, feeds, index)
            if alias is not None:
                values.append(alias)
                current[alias.name] = alias
                continue
        step = Step(op_def, schema, args, inputs, [], is_gradient=op_def.is_gradient_op)
        for k, (out_name, out_spec) in enumerate(zip(op_def.output, out_specs)):
            if out_name in arrays and out_name not in feeds:
                target = lookup(out_name, op_def)
                if tuple(target.spec.shape) != tuple(out_spec.shape):
                    raise ShapeError(
                        f"{where}({op_def.type}) writes '{out_name}' with shape "
                        f"{tuple(out_spec.shape)}, but the workspace holds it with shape "
                        f"{tuple(target.spec.shape)}")
                j = schema.inplace.get(k)
                reads_target = any(v is target for v in inputs)
                direct = not reads_target or (j is not None and j < len(inputs) and inputs[j] is target)
                if direct:
                    step.outputs.append(target)
                else:
                    tmp = Value(out_name + "@tmp", out_spec, "temp", producer=index)
                    values.append(tmp)
                    step.outputs.append(tmp)
                    step.copy_back.append((tmp, target))
                continue
            v = Value(out_name, out_spec, "temp", producer=index)
            values.append(v)
            step.outputs.append(v)
            current[out_name] = v
        if schema.scratch_fn is not None:
            for s in schema.scratch_fn(*[v.spec for v in inputs], **args):
                sv = Value(f"{op_def.name}@scratch", s, "scratch", producer=index)
                values.append(sv)
                step.scratch.append(sv)
        steps.append(step)

    fetch_values = []
    for f in fetches:
        if f not in current:
            raise MissingTensorError(f"graph '{name}' has no tensor '{f}' to fetch: it is not fed, "
                                     f"produced or in workspace '{workspace.name}'")
        fetch_values.append(current[f])
    for k in keep:
        if k in current:
            current[k].keep = True

    if level >= config.LEVEL_SHARE:
        steps = optimize.schedule_writes_early(steps)
    if level >= config.LEVEL_RECOMPUTE:
        steps = optimize.mirror(steps, lambda s, ins: _clone_step(s, ins, values))
    for i, step in enumerate(steps):  # passes may have moved steps
        for v in step.outputs + step.scratch:
            if v.kind in ("temp", "scratch"):
                v.producer = i
    for v in values:
        if v.kind == "alias":
            v.producer = v.root.producer

    sizes = optimize.plan_memory(steps, values, level)
    buffers = [xp.empty(n, dtype=np.uint8) for n in sizes]
    for v in values:
        if v.kind not in ("persistent", "alias"):
            v.view = _view(buffers[v.buffer], v.spec) if v.buffer >= 0 else xp.empty(
                v.spec.shape, v.spec.dtype)
    for v in values:
        if v.kind == "alias":
            v.view = v.root.view.reshape(v.spec.shape)
    calls = [_bind(step, xp) for step in steps]
    feed_values = [v for v in values if v.kind == "feed"]
    temp_bytes = sum(v.nbytes for v in values if v.kind in ("temp", "scratch", "feed"))
    stats = {
        "planned_bytes": int(sum(sizes)),
        "unplanned_bytes": int(temp_bytes),
        "persistent_bytes": int(sum(v.nbytes for v in values if v.kind == "persistent")),
        "num_ops": len(steps),
        "num_buffers": len(sizes),
        "level": level,
    }
    plan = Plan(name, steps, calls, feed_values, fetch_values, buffers, stats, xp)
    plan.kept = {k: current[k] for k in keep if k in current}
    return plan


def _on_device(arrays, name, xp):
    """The workspace array ``name``, moved to the current device if it lives elsewhere."""
    array = arrays[name]
    if (xp is np) != isinstance(array, np.ndarray):
        array = xp.asarray(backend.to_numpy(array))
        arrays[name] = array
    return array


def _try_alias(schema, inputs, out_specs, op_def, arrays, feeds, index):
    """A view Value for an op whose output is its input reshaped, if that is safe here."""
    if len(out_specs) != 1 or len(op_def.output) != 1:
        return None
    out_name = op_def.output[0]
    if out_name in arrays and out_name not in feeds:
        return None  # writes a variable: a real copy
    src = inputs[schema.alias]
    root = getattr(src, "root", None) or src
    spec = out_specs[0]
    if root.kind not in ("temp", "feed") or spec.nbytes != root.nbytes \
            or spec.dtype != root.spec.dtype:
        return None
    alias = Value(out_name, spec, "alias", producer=index)
    alias.root = root
    return alias


def _clone_step(step, inputs, values):
    outs = []
    for v in step.outputs:
        nv = Value(v.name + "@mirror", v.spec, "temp")
        values.append(nv)
        outs.append(nv)
    scratch = []
    for s in step.scratch:
        ns = Value(s.name, s.spec, "scratch")
        values.append(ns)
        scratch.append(ns)
    return Step(step.op_def, step.schema, step.args, list(inputs), outs, scratch, False)


def _view(buffer, spec):
    n = spec.nbytes
    return buffer[:n].view(spec.dtype).reshape(spec.shape)


def _bind(step, xp):
    ins = [v.view for v in step.inputs]
    outs = [v.view for v in step.outputs]
    out = outs[0] if len(outs) == 1 else tuple(outs)
    kwargs = dict(step.args)
    if step.scratch:
        kwargs["scratch"] = tuple(s.view for s in step.scratch)
    call = functools.partial(step.schema.kernel, xp, *ins, out=out, **kwargs)
    if step.schema.flops_fn is not None and xp is np:
        threads = backend.blas_threads_for(
            step.schema.flops_fn(*[v.spec for v in step.inputs], **step.args))
        call = _with_blas_threads(call, threads)
    if not step.copy_back:
        return call
    pairs = [(tmp.view, target.view) for tmp, target in step.copy_back]

    def call_and_copy():
        call()
        for src, dst in pairs:
            dst[...] = src
    return call_and_copy


def _with_blas_threads(call, threads):
    set_threads = backend.set_blas_threads

    def call_with_threads():
        set_threads(threads)
        call()
    return call_with_threads


def check_feed(name, value, expected_shape, expected_dtype, allow_downcast=False):
    """The fed ``value`` as an array of the placeholder's dtype, or a FeedError."""
    if not hasattr(value, "dtype"):
        value = np.asarray(value, dtype=expected_dtype)
    if expected_dtype is not None and value.dtype != expected_dtype:
        if allow_downcast or np.can_cast(value.dtype, expected_dtype, "safe"):
            value = value.astype(expected_dtype)
        else:
            raise FeedError(f"input '{name}' expects dtype {np.dtype(expected_dtype)}, "
                            f"got {value.dtype} with shape {tuple(value.shape)}")
    if expected_shape is not None:
        shape = tuple(value.shape)
        if len(shape) != len(expected_shape) or any(
                e is not None and e != s for e, s in zip(expected_shape, shape)):
            pretty = "(" + ", ".join("?" if e is None else str(e) for e in expected_shape) + \
                ("," if len(expected_shape) == 1 else "") + ")"
            raise FeedError(f"input '{name}' expects shape {pretty}, got {shape}")
    return value
