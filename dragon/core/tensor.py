"""Symbolic tensors and the op applications (nodes) that make them.

A ``Tensor`` is a name with a (possibly unknown) shape and dtype, and the node
that produces it. Python operators build ops::

    x = dragon.placeholder((None, 784), "float32", name="x")
    w = dragon.variable(np.zeros((784, 10), "float32"), name="w")
    y = dragon.ops.relu(x @ w + 1.0)
    y.shape  # (None, 10)

Leaves are placeholders (fed when a function runs), variables (values kept in
the workspace under their name) and constants (values carried by the tensor).
"""
from __future__ import annotations

import numpy as np

from dragon.core import scope
from dragon.ops import registry


class Node:
    """One application of a registered op to tensors."""

    __slots__ = ("type", "inputs", "outputs", "args", "name", "is_gradient",
                 "assigns", "debug_info", "device", "__weakref__")

    def __init__(self, type_name, inputs, args, name, is_gradient=False,
                 assigns=False, debug_info=""):
        self.type = type_name
        self.inputs = list(inputs)
        self.outputs: list[Tensor] = []
        self.args = args
        self.name = name
        self.is_gradient = is_gradient
        self.assigns = assigns          # writes a variable's value (an update)
        self.debug_info = debug_info
        self.device = scope.current_device()   # (type, index) from device_scope, or None

    def __repr__(self):
        ins = ", ".join(t.name for t in self.inputs)
        outs = ", ".join(t.name for t in self.outputs)
        return f"{self.name}: {self.type}({ins}) -> {outs}"


class Tensor:
    """A symbolic n-d array. See the module docstring for an example."""

    __slots__ = ("name", "shape", "dtype", "node", "index", "kind", "_value", "__weakref__")
    __array_priority__ = 100  # numpy defers to our operators: ndarray + Tensor -> Tensor

    def __init__(self, name=None, shape=None, dtype="float32", *, kind="placeholder",
                 node=None, index=0, value=None):
        self.name = scope.claim_name(name) if name else scope.unique_name(kind)
        self.shape = None if shape is None else tuple(None if d is None or d < 0 else int(d)
                                                      for d in shape)
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.node = node
        self.index = index
        self.kind = kind
        self._value = value

    # -- facts -------------------------------------------------------------------
    @property
    def ndim(self):
        return None if self.shape is None else len(self.shape)

    @property
    def fully_known(self):
        return self.shape is not None and None not in self.shape and self.dtype is not None

    def spec(self) -> registry.Spec:
        return registry.Spec(self.shape, self.dtype)

    def __repr__(self):
        shape = "?" if self.shape is None else "x".join("?" if d is None else str(d) for d in self.shape)
        return f"Tensor('{self.name}', shape={shape}, dtype={self.dtype}, {self.kind})"

    def __hash__(self):
        return id(self)

    # -- values of leaves --------------------------------------------------------
    def get_value(self):
        """The value of a variable (from the workspace) or a constant."""
        if self.kind == "constant":
            return self._value
        from dragon.core import workspace
        return workspace.fetch_tensor(self.name)

    def set_value(self, value):
        """Store ``value`` for this variable in the current workspace."""
        from dragon.core import workspace
        value = np.asarray(value, dtype=self.dtype if self.dtype is not None else None)
        workspace.feed_tensor(self.name, value)
        self.shape, self.dtype = value.shape, value.dtype
        if self.kind == "placeholder":
            self.kind = "variable"
        return self

    # -- Python operators --------------------------------------------------------
    def __add__(self, other):
        return _binary("Add", self, other)

    def __radd__(self, other):
        return _binary("Add", other, self)

    def __sub__(self, other):
        return _binary("Sub", self, other)

    def __rsub__(self, other):
        return _binary("Sub", other, self)

    def __mul__(self, other):
        return _binary("Mul", self, other)

    def __rmul__(self, other):
        return _binary("Mul", other, self)

    def __truediv__(self, other):
        return _binary("Div", self, other)

    def __rtruediv__(self, other):
        return _binary("Div", other, self)

    def __pow__(self, other):
        return _binary("Pow", self, other)

    def __rpow__(self, other):
        return _binary("Pow", other, self)

    def __matmul__(self, other):
        return _binary("MatMul", self, other)

    def __rmatmul__(self, other):
        return _binary("MatMul", other, self)

    def __neg__(self):
        return apply("Neg", [self])

    def __abs__(self):
        return apply("Abs", [self])

    def __lt__(self, other):
        return _binary("Less", self, other)

    def __le__(self, other):
        return _binary("LessEqual", self, other)

    def __gt__(self, other):
        return _binary("Greater", self, other)

    def __ge__(self, other):
        return _binary("GreaterEqual", self, other)

    def __getitem__(self, key):
        from dragon.core.indexing import getitem
        return getitem(self, key)

    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (list, tuple)) else shape
        return apply("Reshape", [self], shape=[int(d) for d in shape])

    def sum(self, axis=None, keepdims=False):
        return apply("ReduceSum", [self], axes=_axes(axis), keepdims=bool(keepdims))

    def mean(self, axis=None, keepdims=False):
        return apply("ReduceMean", [self], axes=_axes(axis), keepdims=bool(keepdims))

    @property
    def T(self):  # noqa: N802 - numpy's name
        return apply("Transpose", [self], perm=[])

    # Equality stays identity so tensors can live in dicts and sets.
    __eq__ = object.__eq__


def _axes(axis):
    if axis is None:
        return []
    return [int(axis)] if np.isscalar(axis) else [int(a) for a in axis]


def as_tensor(value, dtype=None) -> Tensor:
    """``value`` if it is a Tensor, else a constant tensor holding it."""
    if isinstance(value, Tensor):
        return value
    return constant(value, dtype=dtype)


def _binary(op_type, a, b):
    # A Python number takes the dtype of the tensor it meets, as numpy's scalars do.
    like = a if isinstance(a, Tensor) else b
    dtype = like.dtype if like.dtype is not None else None
    if not isinstance(a, Tensor):
        a = constant(a, dtype=dtype if np.ndim(a) == 0 and not isinstance(a, np.ndarray) else None)
    if not isinstance(b, Tensor):
        b = constant(b, dtype=dtype if np.ndim(b) == 0 and not isinstance(b, np.ndarray) else None)
    return apply(op_type, [a, b])


def constant(value, dtype=None, name=None) -> Tensor:
    """A tensor whose value is fixed at graph-building time.

    >>> two = dragon.constant(2.0, "float32")
    """
    array = np.array(value, dtype=dtype)
    if array.dtype == np.float64 and dtype is None and not isinstance(value, np.ndarray):
        array = array.astype(np.float32)  # Python floats default to the engine's float32
    array.setflags(write=False)
    return Tensor(name or scope.unique_name("const", scoped=False), array.shape, array.dtype,
                  kind="constant", value=array)


def placeholder(shape=None, dtype="float32", name=None) -> Tensor:
    """A tensor fed when a function runs; ``None`` marks a dimension of any size.

    >>> x = dragon.placeholder((None, 784), "float32", name="x")
    """
    return Tensor(name, shape, dtype, kind="placeholder")


def variable(value, name=None, dtype=None) -> Tensor:
    """A tensor whose value lives in the workspace and persists across runs.

    >>> w = dragon.variable(np.zeros((784, 10), "float32"), name="w")
    """
    array = np.array(value, dtype=dtype)
    t = Tensor(name or scope.unique_name("variable"), array.shape, array.dtype, kind="variable")
    from dragon.core import workspace
    workspace.feed_tensor(t.name, array)
    return t


def apply(op_type: str, inputs, *, num_outputs=None, name=None, out_names=None,
          is_gradient=False, assigns=False, debug_info="", **args):
    """Apply registered op ``op_type`` to ``inputs``; returns a Tensor or a list.

    >>> y = dragon.core.tensor.apply("Relu", [x])
    """
    schema = registry.get(op_type)
    inputs = [as_tensor(t) for t in inputs]
    node_name = name or scope.unique_name(op_type)
    full = schema.full_args(args, where=f"op '{node_name}': ")
    n_out = schema.num_outputs(full) if num_outputs is None else int(num_outputs)
    node = Node(op_type, inputs, args, node_name, is_gradient, assigns, debug_info)
    specs = _infer_if_known(schema, inputs, full, node_name)
    for i in range(n_out):
        out_name = out_names[i] if out_names else (
            node_name if n_out == 1 else f"{node_name}:{i}")
        if out_names is None:
            out_name = scope.claim_name(out_name) if n_out > 1 else out_name
        shape, dtype = (specs[i].shape, specs[i].dtype) if specs else (None, _guess_dtype(inputs))
        shape = None if shape is None else tuple(shape)
        t = Tensor.__new__(Tensor)
        t.name, t.shape, t.dtype = out_name, shape, dtype
        t.node, t.index, t.kind, t._value = node, i, "op", None
        node.outputs.append(t)
    return node.outputs[0] if n_out == 1 else list(node.outputs)


_PROBES = (1009, 1013)  # stand-ins for unknown dimensions, unlikely to occur in real shapes


def _infer_if_known(schema, inputs, full_args, node_name):
    """Output specs from what is known; unknown dimensions come out as None.

    With every shape known this is exact shape inference (errors raise). With some
    dimensions unknown, inference runs twice with different stand-ins: dimensions
    that differ between the runs depend on unknowns and become None.
    """
    where = f"op '{node_name}' "
    if schema.shape_fn is None or any(t.shape is None or t.dtype is None for t in inputs):
        return None
    if all(t.fully_known for t in inputs):
        return schema.infer([t.spec() for t in inputs], full_args, where=where)
    runs = []
    for probe in _PROBES:
        specs = [registry.Spec(tuple(probe if d is None else d for d in t.shape), t.dtype)
                 for t in inputs]
        try:
            runs.append(schema.infer(specs, full_args, where=where))
        except Exception:  # the stand-in may not fit (e.g. broadcasting against 5)
            return None
    merged = []
    for a, b in zip(*runs):
        if len(a.shape) != len(b.shape):
            merged.append(registry.Spec(None, a.dtype))
            continue
        merged.append(registry.Spec(tuple(x if x == y else None for x, y in zip(a.shape, b.shape)),
                                    a.dtype))
    return merged


def _guess_dtype(inputs):
    for t in inputs:
        if t.dtype is not None:
            return t.dtype
    return None
