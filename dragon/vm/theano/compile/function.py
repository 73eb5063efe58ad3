"""``theano.function``: compile a Theano graph into a callable running on the core.

    x = T.dmatrix("x")
    s = 1 / (1 + T.exp(-x))
    logistic = theano.function([x], s)
    logistic([[0, 1], [-1, -2]])          # [[0.5, 0.731...], [0.269..., 0.119...]]

    state = theano.shared(0)
    inc = T.iscalar("inc")
    accumulator = theano.function([inc], state, updates=[(state, state + inc)])

The graph is checked when the function is made (missing and unused inputs, update
and givens types). It is lowered to core tensors and compiled into one core plan the
first time a set of input shapes is seen; later calls with those shapes only check
their arguments and run the plan. Outputs are computed from the values before the
updates, which are then applied together.
"""
from __future__ import annotations

import re
import warnings
from collections import OrderedDict

import dragon
from dragon.core import workspace
from dragon.core.errors import DragonError, MissingTensorError
from dragon.vm.theano.compile import mode as mode_module
from dragon.vm.theano.compile import rewrite
from dragon.vm.theano.compile.graph import ancestors
from dragon.vm.theano.compile.io import In, Out
from dragon.vm.theano.compile.lowering import Lowering, copy_if_leaf
from dragon.vm.theano.configparser import config
from dragon.vm.theano.tensor.var import (TensorConstant, TensorSharedVariable, Variable,
                                         as_tensor_variable)


class UnusedInputError(Exception):
    """An input that no output or update depends on (pass on_unused_input='ignore')."""


class MissingInputError(Exception):
    """A variable the outputs need that is neither an input, shared, constant nor given."""


def function(inputs, outputs=None, mode=None, updates=None, givens=None,
             no_default_updates=False, accept_inplace=False, name=None, rebuild_strict=True,
             allow_input_downcast=None, profile=None, on_unused_input=None):
    """Compile ``outputs`` of ``inputs`` (see the module docstring).

    outputs: a variable, a list (the call returns a list), a dict (returns a dict) or None.
    updates: pairs ``(shared, new_value)`` as a list/tuple or an (ordered) dict.
    givens: ``{variable: replacement}`` or pairs, e.g. ``{x: data[i * bs:(i + 1) * bs]}``.
    no_default_updates: True, or a list of shared variables whose ``default_update``
    should not apply. on_unused_input: 'raise' (default), 'warn' or 'ignore'.
    """
    if not isinstance(inputs, (list, tuple)):
        raise TypeError("theano.function's inputs must be a list or tuple of variables, got "
                        f"{type(inputs).__name__}")
    mode_module.get_mode(mode)
    if name is None:
        name = _caller_location()
    return Function(inputs, outputs, updates, givens, no_default_updates, name,
                    allow_input_downcast, on_unused_input or config.on_unused_input)


def _caller_location():
    import inspect
    frame = inspect.currentframe()
    try:
        caller = frame.f_back.f_back
        return f"{caller.f_code.co_filename.rsplit('/', 1)[-1]}:{caller.f_lineno}"
    except AttributeError:
        return "theano_function"
    finally:
        del frame


class Function:
    """A compiled Theano function; call it with positional or keyword arguments."""

    def __init__(self, inputs, outputs, updates, givens, no_default_updates, name,
                 allow_input_downcast, on_unused_input, _swap=None):
        self.name = name
        self.allow_input_downcast = allow_input_downcast
        self.on_unused_input = on_unused_input
        self.no_default_updates = no_default_updates
        self.trust_input = False
        self.ins = [i if isinstance(i, In) else In(_as_input(i, k)) for k, i in enumerate(inputs)]
        for k, spec in enumerate(self.ins):
            _as_input(spec.variable, k)
        self.input_variables = [spec.variable for spec in self.ins]
        self._output_spec = outputs
        self._keys, self.outputs = _flatten_outputs(outputs)
        self.givens = _givens(givens)
        self._swap = dict(_swap or {})
        explicit = _update_pairs(updates)
        self.updates = explicit + self._default_updates(explicit, no_default_updates)
        self._check_updates()
        self._check_graph()
        self._apply_rewrites()
        self.shared = self._shared_variables()
        self._plans = {}
        self._static_slices = set()
        self._kw_index = {}
        for k, spec in enumerate(self.ins):
            if spec.name is not None:
                self._kw_index.setdefault(spec.name, k)

    # -- building --------------------------------------------------------------------------
    def _roots(self):
        return self.outputs + [new for _, new in self.updates]

    def _default_updates(self, explicit, no_default_updates):
        if no_default_updates is True:
            return []
        skip = {id(v) for v in (no_default_updates or [])}
        targets = {id(var) for var, _ in explicit}
        extra, queue = [], list(self.outputs) + [new for _, new in explicit]
        seen = set()
        while queue:
            found = [v for v in ancestors(queue, self.givens) if id(v) not in seen]
            queue = []
            for v in found:
                seen.add(id(v))
                if isinstance(v, TensorSharedVariable) and v.default_update is not None \
                        and id(v) not in targets and id(v) not in skip:
                    targets.add(id(v))
                    update = as_tensor_variable(v.default_update)
                    extra.append((v, update))
                    queue.append(update)
        return extra

    def _check_updates(self):
        seen = set()
        for var, new in self.updates:
            if not isinstance(var, TensorSharedVariable):
                raise TypeError(f"an update target must be a shared variable, got '{var}' "
                                f"({type(var).__name__})")
            if id(var) in seen:
                raise ValueError(f"shared variable '{var}' is updated twice")
            seen.add(id(var))
            if var.type.convert_variable(new) is None:
                raise TypeError(
                    f"An update must have the same type as the original shared variable "
                    f"(shared_var={var}, shared_var.type={var.type}, update_val={new}, "
                    f"update_val.type={new.type}). If the difference is the broadcast "
                    f"pattern, call T.unbroadcast(value, axis, ...) or T.addbroadcast; if it is "
                    f"the dtype, cast the value (T.cast(value, '{var.dtype}'))")

    def _check_graph(self):
        for k, spec in enumerate(self.ins):
            if spec.variable in self.givens:
                raise ValueError(f"input {k} ('{spec.variable}') is also replaced in givens")
        roots = self._roots()
        stop_ids = {id(v) for v in self.input_variables}
        hard, soft = _required_leaves(roots, self.givens, stop_ids)
        needed_ids = hard | soft
        self.phantoms = []
        for v in _leaves_in(roots, self.givens, stop_ids):
            if v.owner is not None or id(v) in stop_ids or isinstance(
                    v, (TensorConstant, TensorSharedVariable)):
                continue
            if id(v) in hard:
                raise MissingInputError(
                    f"Input '{v}' ({v.type}) of the graph, used to compute "
                    f"{', '.join(str(r) for r in roots[:3])}, was not provided and not given a "
                    f"value; add it to the function's inputs or replace it through givens")
            self.phantoms.append(v)   # only feeds a gradient's forward graph
        for k, v in enumerate(self.input_variables):
            if id(v) in needed_ids:
                continue
            message = (f"theano.function was asked to create a function computing outputs given "
                       f"certain inputs, but the provided input variable at index {k} ('{v}') is "
                       f"not part of the computational graph needed to compute the outputs. To "
                       f"make this error into a warning, pass on_unused_input='warn' to "
                       f"theano.function; to disable it, on_unused_input='ignore'.")
            if self.on_unused_input == "raise":
                raise UnusedInputError(message)
            if self.on_unused_input == "warn":
                warnings.warn(message, stacklevel=4)

    def _apply_rewrites(self):
        stop = list(self.input_variables) + list(self.givens)
        memo = rewrite.rewrite(self._roots(), stop=stop)
        if memo:
            self.outputs = [memo.get(id(o), o) for o in self.outputs]
            self.updates = [(var, memo.get(id(new), new)) for var, new in self.updates]

    def _shared_variables(self):
        found = [v for v in ancestors(self._roots(), self.givens, stop=self.input_variables)
                 if isinstance(v, TensorSharedVariable)]
        for var, _ in self.updates:
            if all(var is not s for s in found):
                found.append(var)
        return found

    # -- calling ---------------------------------------------------------------------------
    def _arguments(self, args, kwargs):
        if len(args) > len(self.ins):
            raise TypeError(f"Too many arguments for theano function '{self.name}': it takes "
                            f"{len(self.ins)} ({self._signature()}), got {len(args)}")
        values = list(args) + [_MISSING] * (len(self.ins) - len(args))
        for key, value in kwargs.items():
            k = self._kw_index.get(key)
            if k is None:
                raise TypeError(f"theano function '{self.name}' has no input named '{key}' "
                                f"(inputs: {self._signature()})")
            if values[k] is not _MISSING:
                raise TypeError(f"theano function '{self.name}' got input '{key}' twice")
            values[k] = value
        for k, spec in enumerate(self.ins):
            if values[k] is _MISSING:
                if not spec.has_default:
                    raise TypeError(f"Missing required input: '{spec.variable}' (index {k}) of "
                                    f"theano function '{self.name}' ({self._signature()})")
                values[k] = spec.value
        arrays = []
        for k, (spec, value) in enumerate(zip(self.ins, values)):
            var = spec.variable
            downcast = spec.allow_downcast if spec.allow_downcast is not None \
                else self.allow_input_downcast
            try:
                arrays.append(var.type.filter(value, strict=spec.strict, allow_downcast=downcast))
            except TypeError as exc:
                raise TypeError(f"Bad input argument with name \"{var}\" to theano function "
                                f"\"{self.name}\" at index {k} (0-based): {exc}") from None
        return arrays

    def _signature(self):
        return ", ".join(f"{spec.variable}: {spec.variable.type}" for spec in self.ins)

    def __call__(self, *args, **kwargs):
        arrays = self._arguments(args, kwargs)
        ws = workspace.get_workspace()
        key = (tuple((a.shape, a.dtype.str) for a in arrays),
               tuple(_shared_shape(ws, s) for s in self.shared), ws.name)
        compiled = self._plans.get(key)
        if compiled is None:
            compiled = self._compile(key, arrays)
        if compiled.special:
            compiled = compiled.for_values(self, key, arrays)
        try:
            results = compiled.fn(*arrays)
        except DragonError as exc:
            node = _failed_node(exc, compiled)
            if node is not None and "compiled for" in str(exc) and \
                    id(node) not in self._static_slices:
                # A symbolic slice was clamped: compile that slice per value from now on.
                self._static_slices.add(id(node))
                self._plans.clear()
                return self(*args, **kwargs)
            raise _runtime_error(exc, node) from exc
        return self._pack(results)

    def _compile(self, key, arrays):
        ctx = Lowering(self.input_variables, arrays, self.givens, roots=self._roots(),
                       static_slices=self._static_slices, phantoms=self.phantoms)
        outputs = [copy_if_leaf(ctx.lower(o)) for o in self.outputs]
        updates = []
        for var, new in self.updates:
            core_new = ctx.lower(new)
            from dragon.vm.theano.tensor.basic import cast_core
            updates.append((var.core_tensor, cast_core(core_new, var.dtype)))
        fn = dragon.function(ctx.placeholders, outputs, updates=updates, name=self.name)
        compiled = _Compiled(fn, ctx)
        if self.phantoms:
            try:
                fn._plan_for(arrays)
            except MissingTensorError as exc:
                names = {ctx.lower(v).name: v for v in self.phantoms}
                for core_name, var in names.items():
                    if f"'{core_name}'" in str(exc):
                        raise MissingInputError(
                            f"Input '{var}' ({var.type}) of the graph was not provided and not "
                            f"given a value; the gradients computed need it") from None
                raise
        if ctx.specialized or ctx.specialized_shared:
            compiled.special = (sorted(ctx.specialized), list(ctx.specialized_shared))
            compiled.by_value = {_value_key(compiled.special, arrays): compiled}
        self._plans[key] = compiled
        return compiled

    def _pack(self, results):
        if self._keys == "single":
            return results[0]
        if isinstance(self._keys, list):
            return dict(zip(self._keys, results))
        return list(results)

    # -- Theano's extras -------------------------------------------------------------------
    def copy(self, share_memory=False, swap=None, delete_updates=False, name=None, profile=None):
        """A new function like this one; ``swap`` replaces shared variables, ``delete_updates``
        drops the updates.

        >>> new_acc = accumulator.copy(swap={state: new_state})
        """
        swap = dict(swap or {})
        for old, new in swap.items():
            if not isinstance(old, TensorSharedVariable) or not isinstance(new, TensorSharedVariable):
                raise TypeError("copy(swap=...) maps shared variables to shared variables")
            if old.type != new.type:
                raise TypeError(f"copy(swap=...): '{new}' ({new.type}) cannot replace '{old}' "
                                f"({old.type})")
        givens = dict(self.givens)
        givens.update(swap)
        updates = [] if delete_updates else [(swap.get(var, var), new) for var, new in self.updates]
        return Function(self.ins, self._output_spec, updates, givens, True, name or self.name,
                        self.allow_input_downcast, "ignore", _swap=swap)

    def free(self):
        """Drop the compiled plans (they are rebuilt on the next call)."""
        self._plans.clear()

    @property
    def maker(self):
        return _Maker(self)

    def __repr__(self):
        return f"<theano function '{self.name}' ({self._signature()})>"


_MISSING = object()


class _Compiled:
    """A core function for one input signature (and, if needed, input values)."""

    def __init__(self, fn, ctx):
        self.fn = fn
        self.node_of_core_op = ctx.node_of_core_op
        self.special = None
        self.by_value = None

    def for_values(self, function, key, arrays):
        value_key = _value_key(self.special, arrays)
        compiled = self.by_value.get(value_key)
        if compiled is None:
            ctx_key = key + (value_key,)
            compiled = function._compile(ctx_key, arrays)
            compiled.special = None
            self.by_value[value_key] = compiled
        return compiled


def _value_key(special, arrays):
    indices, shared = special
    return (tuple(arrays[i].tobytes() for i in indices),
            tuple(s.get_value(borrow=True).tobytes() for s in shared))


class _Maker:
    """Enough of Theano's ``f.maker`` for scripts that inspect it."""

    def __init__(self, fn):
        self.inputs = fn.ins
        self.outputs = [Out(o) for o in fn.outputs]
        self.fgraph = _FunctionGraph(fn)
        self.mode = mode_module.get_default_mode()


class _FunctionGraph:
    def __init__(self, fn):
        self.inputs = list(fn.input_variables)
        self.outputs = list(fn.outputs)
        self._fn = fn

    def toposort(self):
        from dragon.vm.theano.compile.graph import apply_nodes
        return apply_nodes(self._fn._roots(), self._fn.givens, stop=self.inputs)

    @property
    def apply_nodes(self):
        return set(self.toposort())

    @property
    def variables(self):
        return set(ancestors(self._fn._roots(), self._fn.givens))


def _required_leaves(roots, givens, stop_ids):
    """(hard, soft): ids of variables the roots need; soft ones only through inputs that
    build a backward graph (``op.soft_inputs``), whose values may turn out unused."""
    from dragon.vm.theano.compile.graph import _resolve
    hard, soft = set(), set()
    stack = [(_resolve(r, givens), True) for r in roots]
    while stack:
        var, is_hard = stack.pop()
        seen = hard if is_hard else soft
        if id(var) in seen or (not is_hard and id(var) in hard):
            continue
        seen.add(id(var))
        if is_hard:
            soft.discard(id(var))
        node = var.owner
        if node is None or id(var) in stop_ids:
            continue
        soft_inputs = set(node.op.soft_inputs(node)) if hasattr(node.op, "soft_inputs") else set()
        for k, inp in enumerate(node.inputs):
            stack.append((_resolve(inp, givens), is_hard and k not in soft_inputs))
    return hard, soft


def _leaves_in(roots, givens, stop_ids):
    return [v for v in ancestors(roots, givens) if v.owner is None or id(v) in stop_ids]


def _shared_shape(ws, var):
    array = ws.arrays.get(var._core.name)
    return None if array is None else array.shape


def _as_input(var, k):
    if isinstance(var, In):
        return var.variable
    if isinstance(var, TensorSharedVariable):
        raise TypeError(f"Cannot use a shared variable ('{var}') as explicit input {k}. Consider "
                        f"substituting a non-shared variable via the `givens` parameter")
    if isinstance(var, TensorConstant):
        raise TypeError(f"input {k} is the constant '{var}'; function inputs must be symbolic")
    if not isinstance(var, Variable):
        raise TypeError(f"function input {k} must be a symbolic variable or theano.In, got "
                        f"{type(var).__name__} {var!r}")
    return var


def _flatten_outputs(outputs):
    """(structure, variables): 'single', None (a list) or the dict's keys."""
    if outputs is None:
        return None, []
    if isinstance(outputs, Out):
        return "single", [as_tensor_variable(outputs.variable)]
    if isinstance(outputs, dict):
        keys = list(outputs)
        return keys, [as_tensor_variable(_unwrap(outputs[k])) for k in keys]
    if isinstance(outputs, (list, tuple)):
        return None, [as_tensor_variable(_unwrap(o)) for o in outputs]
    return "single", [as_tensor_variable(outputs)]


def _unwrap(o):
    return o.variable if isinstance(o, Out) else o


def _update_pairs(updates):
    if updates is None:
        return []
    if isinstance(updates, dict):
        if len(updates) > 1 and not isinstance(updates, OrderedDict):
            pass  # Theano warns about the order of a plain dict; Python's dicts keep it
        items = list(updates.items())
    else:
        items = list(updates)
    pairs = []
    for item in items:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise TypeError(f"updates must be pairs (shared_variable, new_value), got {item!r}")
        var, new = item
        pairs.append((var, as_tensor_variable(new)))
    return pairs


def _givens(givens):
    if givens is None:
        return {}
    items = list(givens.items()) if hasattr(givens, "items") else list(givens)
    result = {}
    for item in items:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise TypeError(f"givens must be pairs (variable, replacement), got {item!r}")
        old, new = item
        if not isinstance(old, Variable):
            raise TypeError(f"givens keys must be variables, got {old!r}")
        new = as_tensor_variable(new)
        if old.type.dtype != new.type.dtype or old.type.ndim != new.type.ndim:
            raise TypeError(f"givens: '{new}' ({new.type}) cannot replace '{old}' ({old.type}); "
                            f"the dtype and number of dimensions must match")
        result[old] = new
    return result


def _failed_node(exc, compiled):
    """The Theano node whose core op raised ``exc`` at run time, if known."""
    match = re.search(r"op '([^']+)'", str(exc))
    return compiled.node_of_core_op.get(match.group(1)) if match else None


def _runtime_error(exc, node):
    """A core run-time error restated with the Theano expression that failed."""
    from dragon.vm.theano.compile.lowering import _describe
    if node is None:
        return exc
    inputs = ", ".join(_describe(v) for v in node.inputs)
    message = (f"{exc}\nApply node that caused the error: {_describe(node.outputs[0])}\n"
               f"Inputs: {inputs}")
    try:
        err = type(exc)(message)
    except Exception:  # noqa: BLE001
        err = ValueError(message)
    return err
