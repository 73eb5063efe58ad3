"""Lowering: a Theano expression graph to the core's tensors, for one call's input shapes.

``theano.function`` lowers its graph the first time it sees a set of input shapes.
Inputs become core placeholders of exactly those shapes and shared variables their
workspace variables, so the core infers every shape as the graph is built, and
symbolic sizes (``x.shape[0]``) are numbers that ops read with ``ctx.value``.

An op's ``lower(ctx, node, *core_inputs)`` may use:

    ctx.lower(var)          # the core tensor of any Theano variable
    ctx.value(var)          # its value as a numpy array (sizes, bounds); when it depends on
                            # an input's value the function compiles once per such value
    ctx.value_samples(vs)   # values of scalar int variables for the current and a few other
                            # input values (to see whether a size depends on them)
    ctx.cache               # a dict ops may use to share work within one lowering
    ctx.nodes               # every Apply node of the function's graph
    ctx.child({var: core})  # a lowering of an inner graph (a scan step) where the given
                            # variables are those core tensors; everything else resolves
                            # as in ctx (inputs, shared variables, outer expressions)
"""
from __future__ import annotations

import numpy as np

import dragon
from dragon.core import graph as core_graph
from dragon.core import scope
from dragon.core.errors import DragonError
from dragon.core.tensor import apply as core_apply
from dragon.core.tensor import constant as core_constant
from dragon.vm.theano.compile.graph import _resolve, apply_nodes
from dragon.vm.theano.tensor.var import TensorConstant, TensorSharedVariable


class Lowering:
    """One lowering of a graph (see the module docstring)."""

    def __init__(self, inputs, values, givens=None, roots=(), static_slices=(), phantoms=()):
        self.givens = dict(givens or {})
        self._phantoms = {id(v) for v in phantoms}
        self.static_slices = set(static_slices)   # ids of nodes whose slices compile per value
        self.cache = {}
        self.specialized = set()           # input indices whose values the lowering used
        self.specialized_shared = []       # shared variables whose values it used
        self.node_of_core_op = {}          # core op name -> Theano Apply node
        self._memo = {}
        self._values = {}
        self._input_index = {}
        self._value_cache = {}
        self.placeholders = []
        for index, (var, value) in enumerate(zip(inputs, values)):
            label = _label(var.name or f"input_{index}")
            ph = dragon.placeholder(value.shape, value.dtype, name=scope.unique_name(f"theano/{label}"))
            self._memo[id(var)] = ph
            self._values[ph.name] = value
            self._input_index[ph.name] = index
            self.placeholders.append(ph)
        self.nodes = apply_nodes(list(roots), self.givens, stop=list(inputs))

    def child(self, replace):
        """A lowering that sees ``replace`` ({variable: core tensor}) over this one's results.

        New results stay in the child, so lowering the same inner graph in several
        children (one per scan step) builds separate core tensors.
        """
        import collections
        import copy
        sub = copy.copy(self)
        sub._memo = collections.ChainMap({id(k): v for k, v in replace.items()}, self._memo)
        sub.cache = {}
        sub._value_cache = {}
        return sub

    # -- variables to core tensors ---------------------------------------------------------
    def lower(self, var):
        """The core tensor of Theano variable ``var`` (lowered once, then remembered)."""
        var = _resolve(var, self.givens)
        done = self._memo.get(id(var))
        if done is not None:
            return done
        stack = [(var, False)]
        while stack:
            v, expanded = stack.pop()
            if id(v) in self._memo:
                continue
            node = v.owner
            if node is None:
                self._memo[id(v)] = self._leaf(v)
                continue
            if not expanded:
                stack.append((v, True))
                for inp in reversed(node.inputs):
                    inp = _resolve(inp, self.givens)
                    if id(inp) not in self._memo:
                        stack.append((inp, False))
                continue
            self._lower_node(node)
        return self._memo[id(var)]

    def _leaf(self, var):
        if isinstance(var, TensorSharedVariable):
            return var.core_tensor
        if isinstance(var, TensorConstant):
            return core_constant(var.data, dtype=var.data.dtype)
        if id(var) in self._phantoms:
            # Builds a gradient's forward graph only; unknown sizes, never fed.
            label = _label(var.name or "missing")
            return dragon.placeholder((None,) * var.ndim, var.dtype,
                                      name=scope.unique_name(f"theano_unfed/{label}"))
        from dragon.vm.theano.compile.function import MissingInputError
        raise MissingInputError(
            f"input '{var}' ({var.type}) of the graph was not provided and not given a value; "
            f"pass it in the function's inputs or replace it through givens")

    def _lower_node(self, node):
        ins = [self._memo[id(_resolve(i, self.givens))] for i in node.inputs]
        try:
            outs = node.op.lower(self, node, *ins)
        except (DragonError, ValueError, IndexError) as exc:
            if getattr(exc, "_theano_explained", False):
                raise
            raise _explained(exc, node, ins) from exc
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        if len(outs) != len(node.outputs):
            raise AssertionError(f"{node.op} lowered to {len(outs)} tensors for "
                                 f"{len(node.outputs)} outputs")
        for var, core in zip(node.outputs, outs):
            core = self._conform(var, core, node)
            self._memo[id(var)] = core
        self._record_core_ops(node, outs, ins)

    def _conform(self, var, core, node):
        """``core`` in ``var``'s dtype, checked against its rank and broadcastable axes."""
        if core.shape is not None and len(core.shape) != var.ndim:
            raise AssertionError(f"{node.op} lowered '{var}' ({var.type}) to a tensor of shape "
                                 f"{core.shape}")
        if core.dtype is not None and str(core.dtype) != var.dtype:
            from dragon.vm.theano.tensor.basic import cast_core
            core = cast_core(core, var.dtype)
        if core.shape is not None:
            for axis, (b, d) in enumerate(zip(var.broadcastable, core.shape)):
                if b and d is not None and d != 1:
                    err = ValueError(
                        f"'{_describe(var)}' ({var.type}) is broadcastable on axis {axis} but "
                        f"has shape {tuple(core.shape)}")
                    err._theano_explained = True
                    raise err
        return core

    def _record_core_ops(self, node, outs, ins):
        """Map the core ops this node made to it, for run-time errors in Theano's terms."""
        stop = {id(t) for t in ins}
        stack = [t for t in outs]
        seen = set()
        while stack:
            t = stack.pop()
            if id(t) in stop or t.node is None or id(t.node) in seen:
                continue
            seen.add(id(t.node))
            self.node_of_core_op.setdefault(t.node.name, node)
            stack.extend(t.node.inputs)

    # -- values ---------------------------------------------------------------------------
    def value(self, var):
        """The value of ``var`` (a numpy array) for this call; see the module docstring."""
        core = self.lower(var)
        if core.kind == "constant":
            return np.asarray(core._value)
        cached = self._value_cache.get(id(core))
        if cached is not None:
            return cached
        placeholders, shared = self._leaves_of([core])
        for ph in placeholders:
            self.specialized.add(self._input_index[ph.name])
        for t in shared:
            owner = self._shared_owner(t)
            if owner is not None and all(owner is not s for s in self.specialized_shared):
                self.specialized_shared.append(owner)
        fn = dragon.function(placeholders, [core], name="theano_value")
        result = np.asarray(fn(*[self._values[p.name] for p in placeholders])[0])
        self._value_cache[id(core)] = result
        return result

    def value_samples(self, variables):
        """Values of scalar integer ``variables`` now and for a few other input values.

        Returns a list of tuples (one per sample), or None when they depend on inputs
        that are not integer scalars. Samples that fail to compute are skipped.
        """
        cores = [self.lower(v) for v in variables]
        placeholders, _ = self._leaves_of(cores)
        if any(p.shape != () or p.dtype.kind not in "iu" for p in placeholders):
            return None
        fn = dragon.function(placeholders, cores, name="theano_probe")
        current = [int(self._values[p.name]) for p in placeholders]
        trials = [current] + [[c + d for c in current] for d in (1, 2, 7)] + [[0] * len(current)]
        if len(placeholders) > 1:
            trials += [[c + (3 if k == j else 0) for k, c in enumerate(current)]
                       for j in range(len(current))]
        samples = []
        for trial in trials:
            try:
                values = [np.asarray(v, dtype=p.dtype) for v, p in zip(trial, placeholders)]
                samples.append(tuple(int(np.asarray(o)) for o in fn(*values)))
            except Exception:  # noqa: BLE001 - a probe value may be out of range
                continue
        return samples or None

    def _leaves_of(self, cores):
        nodes, _ = core_graph.collect_nodes(cores)
        leaves = core_graph.leaves(nodes) + [t for t in cores if t.node is None]
        placeholders, shared, seen = [], [], set()
        for t in leaves:
            if t.name in seen:
                continue
            seen.add(t.name)
            if t.kind == "placeholder":
                placeholders.append(t)
            elif t.kind == "variable":
                shared.append(t)
        return placeholders, shared

    def _shared_owner(self, core):
        for node in self.nodes:
            for v in node.inputs:
                if isinstance(v, TensorSharedVariable) and v._core is core:
                    return v
        for v in self.givens.values():
            if isinstance(v, TensorSharedVariable) and v._core is core:
                return v
        return None


def _label(name):
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in str(name))


def _describe(var):
    from dragon.vm.theano.printing import pp
    try:
        text = pp(var)
    except Exception:  # noqa: BLE001 - a description must never fail
        text = str(var)
    return text if len(text) <= 200 else text[:197] + "..."


def _explained(exc, node, ins):
    """``exc`` restated in Theano's terms: the expression and its inputs' names and shapes."""
    parts = []
    for var, core in zip(node.inputs, ins):
        shape = "?" if core.shape is None else tuple(core.shape)
        parts.append(f"{_describe(var)}: {var.type} shape {shape}")
    message = (f"{exc}\nApply node that caused the error: {_describe(node.outputs[0])}\n"
               f"Inputs: " + "; ".join(parts))
    cls = type(exc)
    try:
        err = cls(message)
    except Exception:  # noqa: BLE001 - exception types with other signatures
        err = ValueError(message)
    err._theano_explained = True
    return err


def copy_if_leaf(core):
    """A core tensor a function can fetch: leaves (inputs, variables) get a Copy op."""
    if core.node is None:
        return core_apply("Copy", [core])
    return core
