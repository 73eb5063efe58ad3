"""Theano's symbolic variables: the expression graph a program builds.

A Theano program builds a graph of ``Variable`` s joined by ``Apply`` nodes (an
``Op`` applied to inputs). The graph is plain data (it pickles); nothing runs and
no core tensor exists until ``theano.function`` lowers it, once per set of input
shapes, into the core's ``Tensor`` graph (see ``dragon.vm.theano.compile.lowering``).
Knowing every shape when lowering lets symbolic shapes (``x.shape[0]``) fold into
numbers, as Theano's optimizer would.

    import dragon.vm.theano.tensor as T
    x = T.fmatrix("x")
    y = (x * 2).sum(axis=1)           # a TensorVariable: y.owner.op, y.owner.inputs
    y.type                            # TensorType(float32, vector)

Front-end code adds ops in two ways:

    # one core op, output type given:
    out = core("Softmax", [x], x.type, axis=1)
    # any lowering: subclass Op, make_node returns an Apply, lower returns core tensors
    class MyOp(Op):
        def make_node(self, x):
            x = as_tensor_variable(x)
            return Apply(self, [x], [x.type()])
        def lower(self, ctx, node, x):
            return dragon.core.tensor.apply("Relu", [x])
"""
from __future__ import annotations

import itertools

import numpy as np

from dragon.vm.theano.tensor import type as ttype
from dragon.vm.theano.tensor.type import TensorType

_ids = itertools.count()


def _basic():
    from dragon.vm.theano.tensor import basic
    return basic


# -- the graph -----------------------------------------------------------------------

class Apply:
    """One application of ``op`` to ``inputs``, making ``outputs`` (Theano's node)."""

    def __init__(self, op, inputs, outputs):
        self.op = op
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        for i, out in enumerate(self.outputs):
            out.owner, out.index = self, i

    @property
    def default_output(self):
        return self.outputs[0] if len(self.outputs) == 1 else self.outputs

    @property
    def nin(self):
        return len(self.inputs)

    @property
    def nout(self):
        return len(self.outputs)

    def __repr__(self):
        return f"{self.op}({', '.join(str(i) for i in self.inputs)})"


class Op:
    """A Theano op: ``make_node`` types its outputs, ``lower`` builds core tensors.

    ``connected``: whether gradients flow from the outputs to the inputs (False for
    shapes and ``disconnected_grad``), per input or for all.
    """

    connected = True
    view_map: dict = {}

    def __call__(self, *inputs, **kwargs):
        node = self.make_node(*inputs, **kwargs)
        return node.default_output

    def make_node(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__}.make_node")

    def lower(self, ctx, node, *inputs):
        """Core tensors for ``node.outputs`` from the core tensors of its inputs."""
        raise NotImplementedError(f"{type(self).__name__}.lower")

    def is_connected(self, index):
        c = self.connected
        return bool(c[index]) if isinstance(c, (list, tuple)) else bool(c)

    def __str__(self):
        return getattr(self, "name", None) or type(self).__name__

    def __repr__(self):
        return str(self)


class CoreOp(Op):
    """One registered core op with fixed arguments: ``CoreOp('Softmax', axis=1)``."""

    def __init__(self, op_type, name=None, connected=True, **args):
        self.op_type = op_type
        self.args = args
        self.name = name or _snake(op_type)
        self.connected = connected

    def make_node(self, inputs, out_types):
        inputs = [as_tensor_variable(i) for i in inputs]
        return Apply(self, inputs, [t() for t in out_types])

    def __call__(self, inputs, out_types):
        return self.make_node(inputs, out_types).default_output

    def lower(self, ctx, node, *inputs):
        from dragon.core.tensor import apply
        out = apply(self.op_type, list(inputs), **self.args)
        return out

    def __eq__(self, other):
        return type(other) is CoreOp and (other.op_type, other.args) == (self.op_type, self.args)

    def __hash__(self):
        return hash((self.op_type, tuple(sorted(self.args))))


class FunctionOp(Op):
    """An op whose lowering is a module-level function ``fn(ctx, node, *core_inputs, **params)``.

    The function is kept by reference, so graphs using it pickle.
    """

    def __init__(self, fn, name=None, connected=True, **params):
        self.fn = fn
        self.params = params
        self.name = name or fn.__name__.strip("_")
        self.connected = connected

    def make_node(self, inputs, out_types):
        inputs = [as_tensor_variable(i) for i in inputs]
        return Apply(self, inputs, [t() for t in out_types])

    def __call__(self, inputs, out_types):
        return self.make_node(inputs, out_types).default_output

    def lower(self, ctx, node, *inputs):
        return self.fn(ctx, node, *inputs, **self.params)


_COMPARISONS = {"eq", "neq", "lt", "gt", "le", "ge"}  # ops whose result has no truth value


def _snake(name):
    import re
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def core(op_type, inputs, out_type, **args):
    """Apply core op ``op_type`` to Theano variables; ``out_type`` a TensorType or a list.

    >>> probs = core("Softmax", [x], x.type, axis=1)
    """
    types = out_type if isinstance(out_type, (list, tuple)) else [out_type]
    node = CoreOp(op_type, **args).make_node(inputs, types)
    return node.outputs if isinstance(out_type, (list, tuple)) else node.outputs[0]


def lowered(fn, inputs, out_type, name=None, connected=True, **params):
    """Apply a lowering function ``fn(ctx, node, *core_inputs, **params)`` to variables.

    ``fn`` must be a module-level function (graphs pickle it by name).

    >>> y = lowered(_lower_my_thing, [x], x.type, axis=1)
    """
    types = out_type if isinstance(out_type, (list, tuple)) else [out_type]
    node = FunctionOp(fn, name=name, connected=connected, **params).make_node(inputs, types)
    return node.outputs if isinstance(out_type, (list, tuple)) else node.outputs[0]


# -- variables -----------------------------------------------------------------------

class Variable:
    """A symbolic value of a ``type``, made by ``owner`` (an Apply) or a leaf."""

    def __init__(self, type, owner=None, index=None, name=None):  # noqa: A002 - Theano's name
        self.type = type
        self.owner = owner
        self.index = index
        self.name = name
        self.tag = _Tag()
        self.auto_name = f"auto_{next(_ids)}"

    def clone(self):
        copy = type(self).__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.owner, copy.index, copy.tag = None, None, _Tag()
        return copy

    def get_parents(self):
        return [self.owner] if self.owner is not None else []

    def __str__(self):
        if self.name is not None:
            return self.name
        if self.owner is not None:
            op = self.owner.op
            suffix = f".{self.index}" if len(self.owner.outputs) > 1 else ""
            return f"{op}.out{suffix}" if suffix else f"{op}.0"
        return f"<{self.type}>"

    def __repr__(self):
        return str(self)

    def eval(self, inputs_to_values=None):
        """Compile and run this variable (a test helper, as Theano's).

        >>> (x + 1).eval({x: np.float32(2)})
        array(3., dtype=float32)
        """
        from dragon.vm.theano.compile.function import function
        inputs_to_values = dict(inputs_to_values or {})
        inputs = list(inputs_to_values)
        cache = self.__dict__.setdefault("_eval_cache", {})
        key = tuple(id(i) for i in inputs)
        if key not in cache:
            cache[key] = function(inputs, self, on_unused_input="ignore")
        return cache[key](*[inputs_to_values[i] for i in inputs])

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_eval_cache", None)
        return state


class _Tag:
    """Free-form annotations (``x.tag.test_value``)."""

    def __repr__(self):
        return f"Tag({self.__dict__})"


class _TensorOperators:
    """Python operators and methods of tensor variables (numpy-like, Theano's dtypes)."""

    # -- facts ---------------------------------------------------------------------
    @property
    def ndim(self):
        return self.type.ndim

    @property
    def dtype(self):
        return self.type.dtype

    @property
    def broadcastable(self):
        return self.type.broadcastable

    @property
    def shape(self):
        return _basic().shape(self)

    @property
    def size(self):
        return _basic().prod(self.shape)

    def __len__(self):
        raise TypeError("len() of a symbolic tensor is unknown; use x.shape[0]")

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        length = self._static_length()
        if length is None:
            raise TypeError(f"cannot iterate over tensor '{self}' of unknown length")
        for i in range(length):
            yield self[i]

    def _static_length(self):
        if self.broadcastable[0]:
            return 1
        if isinstance(self, TensorConstant):
            return self.data.shape[0]
        node = self.owner
        rule = getattr(getattr(node, "op", None), "fn", None)
        rule = getattr(rule, "static_length", None)
        return rule(node) if rule is not None else None

    def __bool__(self):
        # As Theano: only a comparison's truth is ambiguous; any other variable is an
        # object and is true (tutorials write `if not W:` and `if persistent:`).
        if self.owner is not None and getattr(self.owner.op, "name", None) in _COMPARISONS:
            raise TypeError("Variables do not support boolean operations; use T.eq, T.and_, "
                            "T.switch, or theano.ifelse.ifelse")
        return True

    # -- arithmetic ------------------------------------------------------------------
    def __add__(self, other):
        return _basic().add(self, other)

    def __radd__(self, other):
        return _basic().add(other, self)

    def __sub__(self, other):
        return _basic().sub(self, other)

    def __rsub__(self, other):
        return _basic().sub(other, self)

    def __mul__(self, other):
        return _basic().mul(self, other)

    def __rmul__(self, other):
        return _basic().mul(other, self)

    def __truediv__(self, other):
        return _basic().true_div(self, other)

    def __rtruediv__(self, other):
        return _basic().true_div(other, self)

    def __floordiv__(self, other):
        return _basic().int_div(self, other)

    def __rfloordiv__(self, other):
        return _basic().int_div(other, self)

    def __mod__(self, other):
        return _basic().mod(self, other)

    def __rmod__(self, other):
        return _basic().mod(other, self)

    def __pow__(self, other):
        return _basic().pow(self, other)

    def __rpow__(self, other):
        return _basic().pow(other, self)

    def __neg__(self):
        return _basic().neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return _basic().abs_(self)

    def __invert__(self):
        return _basic().invert(self)

    def __and__(self, other):
        return _basic().and_(self, other)

    def __rand__(self, other):
        return _basic().and_(other, self)

    def __or__(self, other):
        return _basic().or_(self, other)

    def __ror__(self, other):
        return _basic().or_(other, self)

    def __xor__(self, other):
        return _basic().xor(self, other)

    def __rxor__(self, other):
        return _basic().xor(other, self)

    def __lt__(self, other):
        return _basic().lt(self, other)

    def __le__(self, other):
        return _basic().le(self, other)

    def __gt__(self, other):
        return _basic().gt(self, other)

    def __ge__(self, other):
        return _basic().ge(self, other)

    # Theano keeps == as identity so variables can be dict keys; use T.eq elementwise.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __dot__(self, other):
        return _basic().dot(self, other)

    def __rdot__(self, other):
        return _basic().dot(other, self)

    dot = __dot__

    def __matmul__(self, other):
        return _basic().dot(self, other)

    def __rmatmul__(self, other):
        return _basic().dot(other, self)

    # -- indexing ------------------------------------------------------------------
    def __getitem__(self, key):
        from dragon.vm.theano.tensor import subtensor
        return subtensor.getitem(self, key)

    # -- shape methods -------------------------------------------------------------
    def reshape(self, shape, ndim=None):
        return _basic().reshape(self, shape, ndim=ndim)

    def dimshuffle(self, *pattern):
        if len(pattern) == 1 and isinstance(pattern[0], (list, tuple)):
            pattern = tuple(pattern[0])
        return _basic().dimshuffle(self, pattern)

    def flatten(self, ndim=1, outdim=None):
        return _basic().flatten(self, outdim if outdim is not None else ndim)

    def ravel(self):
        return _basic().flatten(self, 1)

    def transpose(self, *axes):
        if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
            axes = tuple(axes[0])
        return _basic().transpose(self, axes or None)

    @property
    def T(self):  # noqa: N802 - Theano's name
        return _basic().transpose(self)

    def swapaxes(self, axis1, axis2):
        return _basic().swapaxes(self, axis1, axis2)

    def squeeze(self):
        return _basic().squeeze(self)

    def astype(self, dtype):
        return _basic().cast(self, dtype)

    def copy(self, name=None):
        out = _basic().tensor_copy(self)
        out.name = name
        return out

    # -- reductions ----------------------------------------------------------------
    def sum(self, axis=None, dtype=None, keepdims=False, acc_dtype=None):
        return _basic().sum(self, axis=axis, dtype=dtype, keepdims=keepdims)

    def prod(self, axis=None, dtype=None, keepdims=False, acc_dtype=None):
        return _basic().prod(self, axis=axis, dtype=dtype, keepdims=keepdims)

    def mean(self, axis=None, dtype=None, keepdims=False, acc_dtype=None):
        return _basic().mean(self, axis=axis, dtype=dtype, keepdims=keepdims)

    def var(self, axis=None, ddof=0, keepdims=False, corrected=False):
        return _basic().var(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def std(self, axis=None, ddof=0, keepdims=False, corrected=False):
        return _basic().std(self, axis=axis, ddof=ddof, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return _basic().max(self, axis=axis, keepdims=keepdims)

    def min(self, axis=None, keepdims=False):
        return _basic().min(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis=None, keepdims=False):
        return _basic().argmax(self, axis=axis, keepdims=keepdims)

    def argmin(self, axis=None, keepdims=False):
        return _basic().argmin(self, axis=axis, keepdims=keepdims)

    def all(self, axis=None, keepdims=False):
        return _basic().all(self, axis=axis, keepdims=keepdims)

    def any(self, axis=None, keepdims=False):
        return _basic().any(self, axis=axis, keepdims=keepdims)

    def norm(self, L, axis=None, keepdims=False):  # noqa: N803 - Theano's name
        return _basic().norm(self, L, axis=axis, keepdims=keepdims)

    def cumsum(self, axis=None):
        from dragon.vm.theano.tensor import extra_ops
        return extra_ops.cumsum(self, axis=axis)

    # -- elementwise methods -------------------------------------------------------
    def clip(self, a_min, a_max):
        return _basic().clip(self, a_min, a_max)

    def round(self, mode=None):
        return _basic().round(self, mode)

    def conj(self):
        return self

    def zeros_like(self, dtype=None):
        return _basic().zeros_like(self, dtype)

    def ones_like(self, dtype=None):
        return _basic().ones_like(self, dtype)

    def fill(self, value):
        return _basic().fill(self, value)

    def exp(self):
        return _basic().exp(self)

    def log(self):
        return _basic().log(self)

    def sqrt(self):
        return _basic().sqrt(self)

    def __array__(self, dtype=None):
        raise TypeError(f"symbolic variable '{self}' has no value until a theano.function "
                        f"computes it")

    __array_priority__ = 1000
    __array_ufunc__ = None     # numpy defers to our operators: ndarray + variable -> variable


class TensorVariable(_TensorOperators, Variable):
    """A symbolic tensor: a function input, or the output of an op.

    >>> x = T.dmatrix("x"); (x.T * 2).sum().type
    TensorType(float64, scalar)
    """

    def __init__(self, type, owner=None, index=None, name=None):  # noqa: A002
        if not isinstance(type, TensorType):
            raise TypeError(f"a TensorVariable needs a TensorType, got {type!r}")
        Variable.__init__(self, type, owner, index, name)


class TensorConstant(_TensorOperators, Variable):
    """A tensor whose value is fixed when the graph is built.

    >>> T.constant(np.ones(3)).data
    array([1., 1., 1.])
    """

    def __init__(self, type, data, name=None):  # noqa: A002
        Variable.__init__(self, type, None, None, name)
        data = np.array(data, dtype=type.dtype, copy=True)
        data.setflags(write=False)
        self.data = data

    @property
    def value(self):
        return self.data

    def signature(self):
        return (self.type, self.data.tobytes(), self.data.shape)

    def __str__(self):
        if self.name is not None:
            return self.name
        text = str(self.data) if self.data.size <= 8 else f"{self.data.shape} array"
        return f"TensorConstant{{{text}}}"

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.data.setflags(write=False)


def constant(value, name=None, ndim=None, dtype=None):
    """A TensorConstant; Python numbers get Theano's autocast dtypes.

    >>> T.constant(2).dtype, T.constant(np.float32(2)).dtype
    ('int8', 'float32')
    """
    if isinstance(value, TensorConstant) and dtype is None and ndim is None:
        return value
    array = ttype.as_value_array(value, dtype)
    if ndim is not None:
        if array.ndim > ndim:
            squeezable = array.shape[:array.ndim - ndim]
            if any(d != 1 for d in squeezable):
                raise ValueError(f"cannot make a {ndim}-d constant of shape {array.shape}")
            array = array.reshape(array.shape[array.ndim - ndim:])
        else:
            array = array.reshape((1,) * (ndim - array.ndim) + array.shape)
    return TensorConstant(TensorType(str(array.dtype), ttype.broadcastable_of(array.shape)),
                          array, name=name)


def as_tensor_variable(x, name=None, ndim=None):
    """``x`` as a tensor variable: variables pass through, numbers and arrays become constants.

    >>> T.as_tensor_variable([1, 2]).type
    TensorType(int64, vector)
    """
    if isinstance(x, _TensorOperators):
        if ndim is not None and x.ndim != ndim:
            if x.ndim > ndim and all(x.broadcastable[:x.ndim - ndim]):
                return _basic().dimshuffle(x, tuple(range(x.ndim - ndim, x.ndim)))
            raise TypeError(f"variable '{x}' has {x.ndim} dimensions, {ndim} wanted")
        return x
    if isinstance(x, Variable):
        raise TypeError(f"{x!r} is not a tensor variable")
    if isinstance(x, Apply):
        return as_tensor_variable(x.default_output, name, ndim)
    if isinstance(x, (list, tuple)) and any(isinstance(e, Variable) for e in _flat(x)):
        return _basic().stack([as_tensor_variable(e) for e in x])
    try:
        return constant(x, name=name, ndim=ndim)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"cannot convert {x!r} to a tensor variable: {exc}") from None


def _flat(items):
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _flat(item)
        else:
            yield item


# -- shared variables ------------------------------------------------------------------

class TensorSharedVariable(_TensorOperators, Variable):
    """A tensor whose value lives in the engine's workspace and persists across calls.

    Made by ``theano.shared``. Functions read its current value on every call and
    write it through ``updates``; ``default_update`` (an expression) is applied by
    every function using it unless ``no_default_updates`` says otherwise.

    >>> w = theano.shared(np.zeros(3), name="w")
    >>> w.set_value(np.ones(3)); w.get_value()
    array([1., 1., 1.])
    """

    def __init__(self, name, type, value, strict=False, allow_downcast=None,  # noqa: A002
                 borrow=False):
        Variable.__init__(self, type, None, None, name)
        self.strict = strict
        self.allow_downcast = allow_downcast
        self.default_update = None
        self._core = None
        self._store(type.filter(value, strict=strict, allow_downcast=allow_downcast), borrow)

    # -- the engine's copy ---------------------------------------------------------
    @property
    def core_tensor(self):
        """The core variable Tensor holding the value (in the current workspace)."""
        from dragon.core import workspace
        if not workspace.has_tensor(self._core.name):
            raise RuntimeError(
                f"shared variable '{self}' has no value in workspace "
                f"'{workspace.current_workspace()}' (it was made in another workspace, or the "
                f"workspace was reset); set_value() gives it one")
        array = workspace.fetch_tensor(self._core.name, borrow=True)
        self._core.shape = tuple(array.shape)
        return self._core

    def _store(self, array, borrow):
        from dragon.core import scope, workspace
        from dragon.core.tensor import Tensor
        if self._core is None:
            label = "".join(c if c.isalnum() or c in "_-" else "_" for c in (self.name or "shared"))
            self._core = Tensor(scope.unique_name(f"theano_shared/{label}", scoped=False),
                                array.shape, array.dtype, kind="variable")
        ws = workspace.get_workspace()
        old = ws.arrays.get(self._core.name)
        import dragon.backend as backend
        on_cpu = backend.array_module() is np
        if borrow and on_cpu and (old is None or old.shape != array.shape) \
                and array.flags.writeable and array.flags.c_contiguous:
            if old is not None:
                ws.generation += 1
            ws.arrays[self._core.name] = array      # alias the caller's array (borrow)
        else:
            ws.feed(self._core.name, array)
        self._core.shape = tuple(array.shape)

    # -- Theano's API --------------------------------------------------------------
    def get_value(self, borrow=False, return_internal_type=False):
        """The value: a copy, or with ``borrow=True`` the live array functions update."""
        from dragon import backend
        from dragon.core import workspace
        self.core_tensor  # noqa: B018 - makes sure the current workspace holds the value
        array = workspace.fetch_tensor(self._core.name, borrow=True)
        if borrow and (return_internal_type or isinstance(array, np.ndarray)):
            return array
        return np.array(backend.to_numpy(array), copy=True)

    def set_value(self, value, borrow=False):
        """Replace the value (converted by the type's rules; the rank must not change)."""
        array = self.type.filter(value, strict=self.strict, allow_downcast=self.allow_downcast)
        if not borrow:
            array = np.array(array, copy=True)
        self._store(array, borrow)

    @property
    def container(self):
        return _Container(self)

    @property
    def value(self):
        return self.get_value()

    def zero(self, borrow=False):
        self.set_value(np.zeros_like(self.get_value(borrow=True)), borrow=borrow)

    def clone(self):
        copy = TensorSharedVariable(self.name, self.type, self.get_value(), self.strict,
                                    self.allow_downcast)
        copy.default_update = self.default_update
        return copy

    def __str__(self):
        return self.name if self.name is not None else f"<{self.type}>"

    # -- pickling: the value travels, the workspace name does not --------------------
    def __getstate__(self):
        state = Variable.__getstate__(self)
        state.pop("_core", None)
        state["_value"] = self.get_value()
        return state

    def __setstate__(self, state):
        value = state.pop("_value")
        self.__dict__.update(state)
        self._core = None
        self._store(value, borrow=False)


class _Container:
    """Theano's ``shared.container``: ``.value`` reads and writes the shared value."""

    def __init__(self, var):
        self._var = var

    @property
    def value(self):
        return self._var.get_value(borrow=True)

    @value.setter
    def value(self, v):
        self._var.set_value(v)

    @property
    def storage(self):
        return [self.value]
