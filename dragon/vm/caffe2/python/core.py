"""Caffe2's ``core``: blob references, nets of operators, scopes and gradient operators.

    from dragon.vm.caffe2.python import core, workspace
    net = core.Net("my_first_net")
    X = net.GaussianFill([], ["X"], mean=0.0, std=1.0, shape=[2, 3], run_once=0)
    W = net.GaussianFill([], ["W"], mean=0.0, std=1.0, shape=[5, 3], run_once=0)
    b = net.ConstantFill([], ["b"], shape=[5], value=1.0, run_once=0)
    Y = X.FC([W, b], ["Y"])
    workspace.RunNetOnce(net)
    workspace.FetchBlob("Y").shape            # (2, 5)

A net only records OperatorDefs; ``workspace`` lowers them onto the engine's
ops when it creates or runs the net.
"""
from __future__ import annotations

import collections
import contextlib
import threading

from dragon.vm.caffe2.proto import caffe2_pb2
from dragon.vm.caffe2.python import operators, utils


class DataType:
    """caffe2_pb2.TensorProto.DataType values, as ``core.DataType.FLOAT``."""

    UNDEFINED = 0
    FLOAT = 1
    INT32 = 2
    BYTE = 3
    STRING = 4
    BOOL = 5
    UINT8 = 6
    INT8 = 7
    UINT16 = 8
    INT16 = 9
    INT64 = 10
    FLOAT16 = 12
    DOUBLE = 13


GradientSlice = collections.namedtuple("GradientSlice", ["indices", "values"])

# -- scopes ------------------------------------------------------------------------------------

_NAMESCOPE_SEPARATOR = "/"
_scope = threading.local()


def CurrentNameScope() -> str:  # noqa: N802 - Caffe2's names
    """The prefix NameScope adds to string blob names ('' outside any scope)."""
    return getattr(_scope, "namescope", "")


def CurrentDeviceScope():  # noqa: N802
    """The DeviceOption of the innermost DeviceScope, or None."""
    return getattr(_scope, "device", None)


@contextlib.contextmanager
def NameScope(prefix, reset=False):  # noqa: N802
    """Prefix string blob names made inside with ``prefix/``.

    >>> with core.NameScope("conv1"):
    ...     core.ScopedName("w")        # 'conv1/w'
    """
    if prefix is not None and not isinstance(prefix, str):
        raise TypeError("NameScope takes in a string as its argument.")
    old = CurrentNameScope()
    prefix = prefix + _NAMESCOPE_SEPARATOR if prefix else ""
    _scope.namescope = prefix if reset else old + prefix
    try:
        yield
    finally:
        _scope.namescope = old


@contextlib.contextmanager
def DeviceScope(scope, node_name=None):  # noqa: N802
    """Give operators made inside the DeviceOption ``scope`` (None clears it)."""
    new = None
    if scope is not None:
        new = caffe2_pb2.DeviceOption()
        new.CopyFrom(scope)
        if node_name:
            new.node_name = node_name
    old = CurrentDeviceScope()
    _scope.device = new
    try:
        yield
    finally:
        _scope.device = old


def ScopedName(name):  # noqa: N802
    """``name`` under the current NameScope."""
    return CurrentNameScope() + name


def ScopedBlobReference(name, *args, **kwargs):  # noqa: N802
    """A BlobReference to ``name`` under the current NameScope."""
    return BlobReference(CurrentNameScope() + name, *args, **kwargs)


def DeviceOption(device_type, device_id=0, random_seed=None, node_name=None):  # noqa: N802
    """A caffe2_pb2.DeviceOption (CPU=0, CUDA=1)."""
    option = caffe2_pb2.DeviceOption(device_type=device_type, device_id=device_id)
    if random_seed is not None:
        option.random_seed = random_seed
    if node_name is not None:
        option.node_name = node_name
    return option


def IsOperator(op_type):  # noqa: N802
    return operators.is_operator(op_type)


def IsOperatorWithEngine(op_type, engine):  # noqa: N802
    return operators.is_operator(op_type)


def _not_an_operator(op_type):
    return AttributeError(f"Method {op_type} is not a registered operator. Did you mean: "
                          f"[{','.join(operators.nearby(op_type))}]")


# -- blob references ---------------------------------------------------------------------------

class BlobReference:
    """A blob name, and the net that makes it: ``X.FC([W, b], "Y")`` is ``net.FC([X, W, b], "Y")``."""

    def __init__(self, name, net=None):
        self._name = name.decode() if isinstance(name, bytes) else str(name)
        self._from_net = net

    def __hash__(self):
        return hash(self._name)

    def __eq__(self, other):
        if isinstance(other, str):
            return self._name == other
        if isinstance(other, BlobReference):
            return self._name == other._name
        return False

    def __ne__(self, other):
        return not self == other

    def __str__(self):
        return self._name

    def __repr__(self):
        return f'BlobReference("{self._name}")'

    def __add__(self, other):
        if not isinstance(other, str):
            raise RuntimeError("Cannot add BlobReference to a non-string.")
        return BlobReference(self._name + other, self._from_net)

    def __radd__(self, other):
        if not isinstance(other, str):
            raise RuntimeError("Cannot add a non-string to BlobReference.")
        return BlobReference(other + self._name, self._from_net)

    def Net(self):  # noqa: N802
        return self._from_net

    def GetNameScope(self):  # noqa: N802
        return self._name[:self._name.rfind(_NAMESCOPE_SEPARATOR) + 1]

    def GetUnscopedName(self):  # noqa: N802
        return self._name[self._name.rfind(_NAMESCOPE_SEPARATOR) + 1:]

    def _CreateAndAddToNet(self, op_type, inputs=None, *args, **kwargs):  # noqa: N802
        inputs = [self] if inputs is None else [self] + _RectifyInputOutput(inputs)
        return getattr(self._from_net, op_type)(inputs, *args, **kwargs)

    def __getattr__(self, op_type):
        if op_type.startswith("__"):
            raise AttributeError(f"Attribute {op_type} not found.")
        if self._from_net is None:
            raise AttributeError("You cannot use a blob reference that does not have a net source "
                                 "to create operators. Create the operator from an explicit net "
                                 "object.")
        if not IsOperator(op_type):
            raise _not_an_operator(op_type)
        return lambda *args, **kwargs: self._CreateAndAddToNet(op_type, *args, **kwargs)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(operators.registered()))


def _RectifyInputOutput(blobs, net=None):  # noqa: N802
    """A list of BlobReferences from a name, a reference or a list of them."""
    if isinstance(blobs, (str, bytes)):
        return [ScopedBlobReference(blobs, net=net)]
    if isinstance(blobs, BlobReference):
        return [blobs]
    if isinstance(blobs, (list, tuple)):
        rectified = []
        for blob in blobs:
            if isinstance(blob, (str, bytes)):
                rectified.append(ScopedBlobReference(blob, net=net))
            elif isinstance(blob, BlobReference):
                rectified.append(blob)
            else:
                raise TypeError(f"I/O blob #{len(rectified)} of unsupported type: {blob} of type "
                                f"{type(blob)}")
        return rectified
    raise TypeError(f"Unknown input/output type: {blobs} of type {type(blobs)}.")


def CreateOperator(operator_type, inputs, outputs, name="", control_input=None,  # noqa: N802
                   device_option=None, arg=None, engine=None, debug_info=None, **kwargs):
    """An OperatorDef; keyword arguments become its Arguments (None raises ValueError).

    >>> op = core.CreateOperator("Relu", ["X"], ["Y"])
    """
    op = caffe2_pb2.OperatorDef()
    op.type = operator_type
    op.name = name
    op.input.extend(str(i) for i in _RectifyInputOutput(inputs))
    op.output.extend(str(o) for o in _RectifyInputOutput(outputs))
    if control_input:
        op.control_input.extend(str(i) for i in _RectifyInputOutput(control_input))
    if device_option is not None:
        op.device_option.CopyFrom(device_option)
    elif CurrentDeviceScope() is not None:
        op.device_option.CopyFrom(CurrentDeviceScope())
    if engine is not None:
        op.engine = engine
    if debug_info is not None:
        op.debug_info = debug_info
    if "random_seed" in kwargs:
        op.device_option.random_seed = kwargs.pop("random_seed")
    if arg is not None:
        op.arg.extend(arg)
    for key, value in kwargs.items():
        op.arg.add().CopyFrom(utils.MakeArgument(key, value))
    return op


# -- gradients -----------------------------------------------------------------------------------

class GradientRegistry:
    """Where Caffe2 keeps gradient makers; here every table op's gradient comes from the engine.

    ``RegisterGradient`` is accepted for old programs; ``GetBackwardPass`` builds the
    ``<Type>Gradient`` operators of a list of forward operators.
    """

    gradient_registry_: dict = {}

    @classmethod
    def RegisterGradient(cls, op_type):  # noqa: N802
        def wrapper(fn):
            cls.gradient_registry_[op_type] = fn
            return fn
        return wrapper

    @classmethod
    def GetBackwardPass(cls, operators_, ys):  # noqa: N802
        """(gradient operators, {blob: gradient blob}) of ``operators_`` seeded at ``ys``."""
        return _BackwardPass(list(operators_)).build(ys)


def _is_in_place_stop(op):
    return op.type == "StopGradient" and list(op.input) == list(op.output)


class _BackwardPass:
    """Caffe2's gradient construction: versions of blobs, gradient names, accumulation.

    The gradient of blob X is ``X_grad``; when one version of X feeds several
    operators, all partial gradients but the first are renamed
    ``_X_grad_autosplit_<k>`` and summed into ``X_grad``.
    """

    def __init__(self, ops):
        self.ops = ops
        self.versions: dict[str, int] = {}
        self.in_versions = []
        self.usages = collections.defaultdict(list)     # (blob, version) -> reader op indices
        self.producers = {}                              # (blob, version) -> op index
        for i, op in enumerate(ops):
            seen = {n: self.versions.get(n, 0) for n in op.input}
            self.in_versions.append(seen)
            for n in dict.fromkeys(op.input):
                self.usages[(n, seen[n])].append(i)
            for o in op.output:
                self.versions[o] = self.versions.get(o, 0) + 1
                self.producers[(o, self.versions[o])] = i
        self.generators = collections.defaultdict(list)  # (blob, version) -> [(op, out index)]

    def build(self, ys):
        if isinstance(ys, (list, tuple)):
            ys = dict.fromkeys(ys)
        elif not isinstance(ys, dict):
            raise TypeError("ys should either be a list or a dict.")
        grad_ops, to_grad = [], {}
        for y, given in ys.items():
            y = str(y)
            version = self.versions.get(y, 0)
            self.usages[(y, version)].append(len(self.ops))
            if given is None:
                seed = CreateOperator("ConstantFill", [y], [y + "_autogen_grad"], value=1.0)
                grad_ops.append(seed)
                self.generators[(y, version)].append((seed, 0))
                to_grad[y] = seed.output[0]
            else:
                to_grad[y] = str(given)
        for i in reversed(range(len(self.ops))):
            grad_ops += self._gradient_of(i, to_grad)
            grad_ops += self._accumulate(i, to_grad)
        grad_map = {BlobReference(k): BlobReference(v) for k, v in to_grad.items() if v is not None}
        return grad_ops, grad_map

    def _gradient_of(self, i, to_grad):
        op = self.ops[i]
        g_out = [to_grad.get(o) for o in op.output]
        if all(g is None for g in g_out):
            return []
        entry = operators.find(op.type)
        if entry is None:
            raise RuntimeError(f"No gradient is known for operator type '{op.type}' "
                               f"({operators.describe(op)})")
        out_flags = [0] * len(op.output)
        in_flags = [0] * len(op.input)
        if entry.differentiable:
            for k in entry.grad_outputs(len(op.output)):
                out_flags[k] = int(g_out[k] is not None)
            if any(out_flags):
                seen = set()
                for j in entry.grad_inputs(len(op.input)):
                    name = op.input[j]
                    if name not in seen and not self._dead(i, name):
                        in_flags[j] = 1
                    seen.add(name)
        made = []
        g_in = {}
        if any(in_flags):
            dx_names = [op.input[j] + "_grad" for j, f in enumerate(in_flags) if f]
            dy_names = [g_out[k] for k, f in enumerate(out_flags) if f]
            grad_op = operators.make_gradient_op(op, in_flags, out_flags, dy_names, dx_names)
            made.append(grad_op)
            k = 0
            for j, flag in enumerate(in_flags):
                if flag:
                    name = op.input[j]
                    self.generators[(name, self.in_versions[i][name])].append((grad_op, k))
                    g_in[name] = dx_names[k]
                    k += 1
        for name in dict.fromkeys(op.input):
            grad = g_in.get(name)
            if grad is not None or name not in to_grad or name in op.output:
                to_grad[name] = grad
        return made

    def _dead(self, i, name):
        """Whether the gradient of input ``name`` of op ``i`` can reach nothing.

        True where StopGradient made that version of the blob in place: Caffe2 would
        compute a gradient no operator reads and no map lists.
        """
        producer = self.producers.get((name, self.in_versions[i][name]))
        return producer is not None and _is_in_place_stop(self.ops[producer])

    def _accumulate(self, i, to_grad):
        op = self.ops[i]
        sums = []
        for name in dict.fromkeys(op.input):
            key = (name, self.in_versions[i][name])
            readers = self.usages[key]
            generators = self.generators[key]
            if len(readers) <= 1 or readers[0] != i or len(generators) < 2:
                continue
            base = generators[0][0].output[generators[0][1]]
            parts = []
            for n, (grad_op, index) in enumerate(generators):
                if n:
                    grad_op.output[index] = f"_{grad_op.output[index]}_autosplit_{n - 1}"
                parts.append(grad_op.output[index])
            sums.append(CreateOperator("Sum", parts, [base]))
            to_grad[name] = base
        return sums


# -- nets --------------------------------------------------------------------------------------

class Net:
    """A Caffe2 net: a NetDef built one operator at a time, ``net.<OpType>(inputs, outputs)``."""

    _net_names_used: set = set()

    @staticmethod
    def _get_next_net_name(basename):
        basename = "/".join(x for x in basename.split("/") if x and not x.startswith("_"))
        name, index = basename, 1
        while name in Net._net_names_used:
            name = f"{basename}_{index}"
            index += 1
        Net._net_names_used.add(name)
        return name

    def __init__(self, name_or_proto):
        self._external_input_map: set = set()
        self._op_outputs: set = set()
        self._registered_blob_names: set = set()
        if isinstance(name_or_proto, caffe2_pb2.NetDef):
            self._net = caffe2_pb2.NetDef()
            self._net.CopyFrom(name_or_proto)
            self._external_input_map.update(self._net.external_input)
            for op in self._net.op:
                self._op_outputs.update(op.output)
            prefix = self._net.name + "_blob_"
            taken = [int(n[len(prefix):]) for op in self._net.op for n in list(op.input) +
                     list(op.output) if n.startswith(prefix) and n[len(prefix):].isdigit()]
            self._next_name_index = max(taken) + 1 if taken else 0
            name = self._net.name
        else:
            name = str(name_or_proto)
            self._net = caffe2_pb2.NetDef()
            self._next_name_index = 0
        self._net.name = Net._get_next_net_name(name)

    # -- facts ------------------------------------------------------------------------------------
    def Proto(self):  # noqa: N802
        """The NetDef this net builds (the live message)."""
        return self._net

    def Name(self):  # noqa: N802
        return self._net.name

    def __str__(self):
        return self.Name()

    def BlobIsDefined(self, blob):  # noqa: N802
        name = str(blob)
        return name in self._op_outputs or name in self._external_input_map

    def UsesBlob(self, blob):  # noqa: N802
        name = str(blob)
        return any(name in op.input or name in op.output for op in self._net.op) or \
            name in self._external_input_map

    def UsedBlobNames(self):  # noqa: N802
        names = set(self._external_input_map)
        for op in self._net.op:
            names.update(op.input)
            names.update(op.output)
        return names

    def GetBlobRef(self, blob_name):  # noqa: N802
        blob_name = str(blob_name)
        if not self.BlobIsDefined(blob_name):
            raise KeyError(f"Net does not define blob {blob_name}")
        return BlobReference(blob_name, self)

    @property
    def external_inputs(self):
        return [BlobReference(x, self) for x in self._net.external_input]

    @property
    def external_outputs(self):
        return [BlobReference(x, self) for x in self._net.external_output]

    # -- names ------------------------------------------------------------------------------------
    def NextName(self, prefix=None, output_id=None):  # noqa: N802
        """A blob name not yet defined: ``<net>/<prefix>[_k][:<output_id>]`` or ``<net>_blob_<k>``."""
        if not prefix:
            name = f"{self._net.name}_blob_{self._next_name_index}"
            self._next_name_index += 1
            return name
        base = f"{self._net.name}/{prefix}"
        name = base + (f":{output_id}" if output_id is not None else "")
        index = 2
        while self.BlobIsDefined(str(ScopedBlobReference(name))):
            name = f"{base}_{index}" + (f":{output_id}" if output_id is not None else "")
            index += 1
        return name

    def NextBlob(self, prefix=None):  # noqa: N802
        base = ScopedName(prefix)
        name, index = base, 0
        while name in self._registered_blob_names or self.BlobIsDefined(name):
            name = f"{base}_auto_{index}"
            index += 1
        self._registered_blob_names.add(name)
        return BlobReference(name, self)

    def NextScopedBlob(self, prefix="unnamed"):  # noqa: N802
        return self.NextBlob(prefix)

    # -- building ---------------------------------------------------------------------------------
    def AddExternalInput(self, *inputs):  # noqa: N802
        if not inputs:
            raise ValueError("AddExternalInput needs at least one input")
        for blob in inputs:
            if str(blob) in self._external_input_map:
                raise AssertionError(f"Net already contains an input named {blob}")
        refs = []
        for blob in inputs:
            self._net.external_input.append(str(blob))
            self._external_input_map.add(str(blob))
            refs.append(BlobReference(str(blob), self))
        return refs[0] if len(refs) == 1 else refs

    def AddExternalInputs(self, *inputs):  # noqa: N802
        return self.AddExternalInput(*inputs)

    def AddExternalOutput(self, *outputs):  # noqa: N802
        for blob in outputs:
            if not self.BlobIsDefined(blob):
                raise AssertionError(f"{blob} is not defined")
        for blob in outputs:
            self._net.external_output.append(str(blob))
        return outputs[0] if len(outputs) == 1 else outputs

    def AddExternalOutputs(self, *outputs):  # noqa: N802
        return self.AddExternalOutput(*outputs)

    def _ExtendOps(self, ops):  # noqa: N802
        self._net.op.extend(ops)
        for op in ops:
            self._op_outputs.update(op.output)

    def _CreateAndAddToSelf(self, op_type, inputs, outputs=None, **kwargs):  # noqa: N802
        inputs = _RectifyInputOutput(inputs)
        for blob in inputs:
            if not self.BlobIsDefined(blob):
                self.AddExternalInput(blob)
        if outputs is None:
            outputs = self.NextName(prefix=op_type)
        elif isinstance(outputs, int):
            outputs = [self.NextName(prefix=op_type, output_id=i) for i in range(outputs)]
        outputs = _RectifyInputOutput(outputs, net=self)
        op = CreateOperator(op_type, inputs, outputs, **kwargs)
        self._ExtendOps([op])
        if not op.output:
            return None
        if len(op.output) == 1:
            return BlobReference(op.output[0], self)
        return tuple(BlobReference(o, self) for o in op.output)

    def __getattr__(self, op_type):
        if op_type.startswith("__"):
            raise AttributeError(op_type)
        if not IsOperator(op_type):
            raise _not_an_operator(op_type)
        return lambda *args, **kwargs: self._CreateAndAddToSelf(op_type, *args, **kwargs)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(operators.registered()))

    def AppendNet(self, net):  # noqa: N802
        proto = net.Proto() if isinstance(net, Net) else net
        self._ExtendOps(list(proto.op))
        for blob in proto.external_input:
            if not self.BlobIsDefined(blob):
                self.AddExternalInput(blob)
        return self

    def AddGradientOperators(self, ys, skip=0):  # noqa: N802
        """Append the gradient operators of ys with respect to every blob they depend on.

        Returns ``{blob: gradient blob}``; the gradient of X is named ``X_grad`` and a
        loss y without a given gradient is seeded by ``ConstantFill([y], [y_autogen_grad],
        value=1.0)``.

        >>> grads = net.AddGradientOperators([loss])
        >>> grads["W"]                 # BlobReference("W_grad")
        """
        grad_ops, grad_map = GradientRegistry.GetBackwardPass(self._net.op[skip:], ys)
        self._ExtendOps(grad_ops)
        return grad_map

    def Clone(self, name, blob_remap=None, op_id_mask=None, remap_funcs=None,  # noqa: N802
              keep_schema=True, update_external_list=False):
        """A copy of this net named ``name``, with blobs renamed by ``blob_remap``."""
        remap = {str(k): str(v) for k, v in (blob_remap or {}).items()}
        proto = caffe2_pb2.NetDef()
        proto.CopyFrom(self._net)
        proto.name = name
        del proto.op[:]
        ids = range(len(self._net.op)) if op_id_mask is None else op_id_mask
        for i in ids:
            op = proto.op.add()
            op.CopyFrom(self._net.op[i])
            _remap(op.input, remap)
            _remap(op.output, remap)
        _remap(proto.external_input, remap)
        _remap(proto.external_output, remap)
        return Net(proto)

    def RunAllOnGPU(self, gpu_id=0, use_cudnn=False):  # noqa: N802
        """Mark the net and its operators for CUDA device ``gpu_id``."""
        self._net.device_option.CopyFrom(DeviceOption(caffe2_pb2.CUDA, gpu_id))
        for op in self._net.op:
            op.device_option.CopyFrom(DeviceOption(caffe2_pb2.CUDA, gpu_id))
            if use_cudnn:
                op.engine = "CUDNN"

    def RunAllOnMKL(self):  # noqa: N802
        return None


def _remap(names, remap):
    new = [remap.get(n, n) for n in names]
    del names[:]
    names.extend(new)


def get_ssa(net, blob_versions=None):
    """(per-op (versioned inputs, versioned outputs), latest versions) of a net."""
    proto = net.Proto() if isinstance(net, Net) else net
    versions = dict(blob_versions or {})
    for name in proto.external_input:
        versions.setdefault(name, 0)
    ssa = []
    for op in proto.op:
        inputs = [(n, versions.get(n, 0)) for n in op.input]
        for o in op.output:
            versions[o] = versions.get(o, 0) + 1
        ssa.append((inputs, [(o, versions[o]) for o in op.output]))
    return ssa, versions
