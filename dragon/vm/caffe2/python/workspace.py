"""Caffe2's ``workspace``: blobs, nets and operators run against the engine's workspaces.

    from dragon.vm.caffe2.python import core, workspace
    workspace.FeedBlob("X", np.random.randn(2, 3).astype(np.float32))
    workspace.RunOperatorOnce(core.CreateOperator("Relu", ["X"], ["Y"]))
    workspace.FetchBlob("Y").min()              # 0.0

Every blob lives in the current workspace (Dragon's, shared with the other front
ends). A net is lowered to core graphs when it first runs, once per set of input
shapes: operators that compute become one compiled graph, host operators
(readers, Print) run in Python between graphs, and each run leaves every blob
the net writes in the workspace.
"""
from __future__ import annotations

import itertools
import weakref

import numpy as np

from dragon.core import workspace as _core
from dragon.core.errors import DragonError
from dragon.ops.registry import Spec
from dragon.vm.caffe2.proto import caffe2_pb2
from dragon.vm.caffe2.python import lowering, operators, utils


class _FrontState:
    """What the Caffe2 front end keeps per workspace: created nets and host-side blobs."""

    def __init__(self):
        self.nets: dict[str, CompiledNet] = {}
        self.host: dict[str, object] = {}


_states: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_once = itertools.count()


def _state() -> _FrontState:
    ws = _core.get_workspace()
    state = _states.get(ws)
    if state is None:
        state = _states[ws] = _FrontState()
    return state


def _name(blob) -> str:
    return blob.decode() if isinstance(blob, bytes) else str(blob)


def _parse(message, cls):
    if isinstance(message, (bytes, bytearray)):
        parsed = cls()
        parsed.ParseFromString(bytes(message))
        return parsed
    if hasattr(message, "Proto"):
        return message.Proto()
    if not isinstance(message, cls):
        raise TypeError(f"expected a {cls.__name__}, its serialized bytes or a core.Net, got "
                        f"{type(message).__name__}")
    return message


# -- blobs -----------------------------------------------------------------------------------------

def Blobs():  # noqa: N802 - Caffe2's names
    """Names of the blobs in the current workspace, sorted."""
    return sorted(set(_core.get_workspace().arrays) | set(_state().host))


def HasBlob(name):  # noqa: N802
    name = _name(name)
    return name in _core.get_workspace().arrays or name in _state().host


def FeedBlob(name, arr, device_option=None):  # noqa: N802
    """Store ``arr`` (an array, scalar or TensorProto) as blob ``name``; returns True.

    The dtype is kept: float16/32/64, bool and every integer width, 0-d included.
    """
    name = _name(name)
    if isinstance(arr, caffe2_pb2.TensorProto):
        arr = utils.Caffe2TensorToNumpyArray(arr)
    arr = np.asarray(arr)
    if arr.dtype.kind in "OSU":
        raise TypeError(f"blob '{name}': arrays of {arr.dtype} cannot be fed; feed numbers")
    _state().host.pop(name, None)
    _core.feed_tensor(name, arr)
    return True


def FetchBlob(name):  # noqa: N802
    """A copy of blob ``name`` as a numpy array; RuntimeError when it does not exist."""
    name = _name(name)
    host = _state().host
    if name in host:
        return host[name]
    try:
        return _core.fetch_tensor(name)
    except DragonError:
        raise RuntimeError(f"Can't find blob: {name} (workspace "
                           f"'{_core.current_workspace()}')") from None


def FetchBlobs(names):  # noqa: N802
    return [FetchBlob(n) for n in names]


class _Blobs:
    """``workspace.blobs``: the current workspace as a dict of arrays."""

    def __getitem__(self, name):
        return FetchBlob(name)

    def __setitem__(self, name, value):
        FeedBlob(name, value)

    def __contains__(self, name):
        return HasBlob(name)

    def __iter__(self):
        return iter(Blobs())

    def __len__(self):
        return len(Blobs())

    def keys(self):
        return Blobs()

    def items(self):
        return [(n, FetchBlob(n)) for n in Blobs()]

    def __repr__(self):
        return f"<blobs of workspace '{_core.current_workspace()}': {Blobs()}>"


blobs = _Blobs()


# -- workspaces ------------------------------------------------------------------------------------

def ResetWorkspace(root_folder=None):  # noqa: N802
    """Drop every blob and net of the current workspace; returns True."""
    _core.reset_workspace()
    return True


def SwitchWorkspace(name, create_if_missing=False):  # noqa: N802
    """Make workspace ``name`` current; RuntimeError if it is missing and not to be created."""
    _core.switch_workspace(_name(name), create_if_missing=bool(create_if_missing))


def CurrentWorkspace():  # noqa: N802
    return _core.current_workspace()


def Workspaces():  # noqa: N802
    return _core.workspaces()


def GlobalInit(args=None):  # noqa: N802
    """Accepted for Caffe2 programs; Dragon needs no process-wide flags."""
    return True


def RegisteredOperators():  # noqa: N802
    return operators.registered()


def IsImmediate():  # noqa: N802
    return False


def NumGpuDevices():  # noqa: N802
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no cupy, or no usable device
        return 0


NumCudaDevices = NumGpuDevices


def has_gpu_support():
    return NumGpuDevices() > 0


has_cuda_support = has_gpu_support


def StringifyProto(obj):  # noqa: N802
    if isinstance(obj, (bytes, str)):
        return obj
    if hasattr(obj, "Proto"):
        obj = obj.Proto()
    return obj.SerializeToString()


# -- running ---------------------------------------------------------------------------------------

class _HostEnv:
    """What host operators see: the workspace, and the arrays they produced this run."""

    def __init__(self, state):
        self.state = state
        self.fresh: dict[str, np.ndarray] = {}

    def feed(self, name, array):
        array = np.ascontiguousarray(array)
        self.state.host.pop(name, None)
        _core.feed_tensor(name, array)
        self.fresh[name] = array

    def fetch(self, name):
        return FetchBlob(name)

    def host_blob(self, name):
        try:
            return self.state.host[name]
        except KeyError:
            raise RuntimeError(f"Can't find blob: {name}") from None

    def set_host_blob(self, name, value):
        self.state.host[name] = value


class _HostStep:
    """Consecutive host operators, run in Python with the arguments decoded once."""

    def __init__(self, ops):
        self.ops = ops
        self.args = [operators.decode_args(op) for op in ops]

    def run(self, env):
        for op, args in zip(self.ops, self.args):
            operators.get(op.type).host(env, op, args)


class _GraphStep:
    """Consecutive computing operators, compiled into one core graph per input signature."""

    def __init__(self, plan_name, ops):
        self.plan_name = plan_name
        self.ops = ops
        self.reads = _read_first(ops)
        self.signature = None
        self.feed_order: list[str] = []
        self.bound: list = []  # keeps compiled-against arrays alive, so their ids stay unique

    def _signature(self, arrays, fresh, host):
        items = []
        for name in self.reads:
            if name in fresh:
                a = fresh[name]
                items.append((name, a.shape, a.dtype, None))
                continue
            a = arrays.get(name)
            if a is None:
                if name in host:
                    continue
                op = next(op for op in self.ops if name in op.input)
                raise RuntimeError(f"{operators.describe(op)}: input blob '{name}' does not "
                                   f"exist; feed it or run the net that makes it first")
            items.append((name, a.shape, a.dtype, id(a)))
        return tuple(items)

    def run(self, env):
        ws = _core.get_workspace()
        signature = self._signature(ws.arrays, env.fresh, env.state.host)
        if signature != self.signature:
            self._compile(ws, env.fresh)
            # compiling may move arrays to the device: sign what the plan is bound to
            self.signature = self._signature(ws.arrays, env.fresh, env.state.host)
        try:
            _core.run_graph(self.plan_name, [env.fresh[n] for n in self.feed_order])
        except DragonError as exc:
            raise RuntimeError(str(exc)) from None

    def _compile(self, ws, fresh):
        specs, values = {}, {}
        for name in self.reads:
            a = fresh[name] if name in fresh else ws.arrays.get(name)
            if a is not None:
                specs[name] = Spec(tuple(a.shape), a.dtype)
                values[name] = a
        lowered = lowering.Lowering(specs.get, lambda n: _host_value(values.get(n)))
        for op in self.ops:
            lowered.lower(op)
        self.feed_order = [n for n in lowered.read_first if n in fresh]
        feeds = {n: (specs[n].shape, specs[n].dtype) for n in self.feed_order}
        read = set(lowered.read_first)
        # A blob the graph writes before reading is made anew (Caffe2 blobs resize): hide
        # the old array so the engine does not treat it as a variable to update in place.
        hidden = {n: ws.arrays.pop(n) for n in lowered.written()
                  if n in ws.arrays and n not in read}
        try:
            _core.create_graph(lowered.graph_def(self.plan_name), feeds=feeds,
                               fetches=list(lowered.produced), name=self.plan_name)
        except DragonError as exc:
            raise RuntimeError(f"net step '{self.plan_name}': {exc}") from None
        finally:
            ws.arrays.update(hidden)
        self.bound = [values[n] for n in lowered.read_first if n not in fresh and n in values]


def _host_value(array):
    if array is None:
        return None
    from dragon import backend
    return backend.to_numpy(array)


def _read_first(ops):
    """Blob names the operators read before any of them writes them, in order."""
    written, reads = set(), {}
    for op in ops:
        for name in op.input:
            if name not in written:
                reads.setdefault(name, None)
        written.update(op.output)
    return list(reads)


class CompiledNet:
    """A Caffe2 NetDef made runnable: host steps and compiled graph steps in net order."""

    def __init__(self, net_def, plan_prefix=None):
        self.net_def = net_def
        self.name = net_def.name
        prefix = plan_prefix or f"caffe2:{net_def.name}"
        self.steps = []
        group, host = [], None
        for op in net_def.op:
            if not operators.is_gradient_op(op):
                operators.get(op.type)  # an unknown type fails here, named
            is_host = operators.is_host(op)
            if group and is_host != host:
                self.steps.append(self._step(prefix, group, host))
                group = []
            group.append(op)
            host = is_host
        if group:
            self.steps.append(self._step(prefix, group, host))

    def _step(self, prefix, ops, host):
        if host:
            return _HostStep(ops)
        return _GraphStep(f"{prefix}#{len(self.steps)}", ops)

    def check_inputs(self, state):
        """RuntimeError naming the first blob an operator reads that nothing provides."""
        arrays, written = _core.get_workspace().arrays, set()
        for op in self.net_def.op:
            for name in op.input:
                if name not in written and name not in arrays and name not in state.host:
                    raise RuntimeError(f"{operators.describe(op)}: Encountered a non-existing "
                                       f"input blob: {name}")
            written.update(op.output)

    def run(self):
        env = _HostEnv(_state())
        for step in self.steps:
            step.run(env)

    def release(self):
        graphs = _core.get_workspace().graphs
        for step in self.steps:
            if isinstance(step, _GraphStep):
                graphs.pop(step.plan_name, None)


def CreateNet(net, overwrite=False, input_blobs=None):  # noqa: N802
    """Make ``net`` (a core.Net, NetDef or its bytes) runnable by name; returns True.

    Every blob it reads before writing must exist already (RuntimeError naming it).
    """
    net_def = caffe2_pb2.NetDef()
    net_def.CopyFrom(_parse(net, caffe2_pb2.NetDef))
    state = _state()
    for blob in input_blobs or ():
        if not HasBlob(blob):
            FeedBlob(blob, np.zeros((0,), np.float32))
    if net_def.name in state.nets and not overwrite:
        raise RuntimeError(f"I respectfully refuse to overwrite an existing net of the same name "
                           f"\"{net_def.name}\", unless you explicitly specify overwrite=true.")
    compiled = CompiledNet(net_def)
    compiled.check_inputs(state)
    old = state.nets.pop(net_def.name, None)
    if old is not None:
        old.release()
    state.nets[net_def.name] = compiled
    return True


def _net_name(name_or_net):
    if hasattr(name_or_net, "Proto"):
        return name_or_net.Proto().name
    if isinstance(name_or_net, caffe2_pb2.NetDef):
        return name_or_net.name
    return _name(name_or_net)


def RunNet(name, num_iter=1, allow_fail=False):  # noqa: N802
    """Run the created net ``name`` (a name, core.Net or NetDef) ``num_iter`` times."""
    net_name = _net_name(name)
    compiled = _state().nets.get(net_name)
    if compiled is None:
        raise RuntimeError(f"Network {net_name} does not exist in workspace "
                           f"'{_core.current_workspace()}'; call CreateNet first")
    for _ in range(int(num_iter)):
        compiled.run()
    return True


def Nets():  # noqa: N802
    return list(_state().nets)


def DeleteNet(name):  # noqa: N802
    compiled = _state().nets.pop(_net_name(name), None)
    if compiled is not None:
        compiled.release()


def RunNetOnce(net):  # noqa: N802
    """Lower, run and forget ``net`` (a core.Net, NetDef or its bytes); returns True."""
    net_def = _parse(net, caffe2_pb2.NetDef)
    compiled = CompiledNet(net_def, plan_prefix=f"caffe2-once:{next(_once)}:{net_def.name}")
    try:
        compiled.run()
    finally:
        compiled.release()
    return True


def RunOperatorOnce(operator):  # noqa: N802
    """Run one OperatorDef (or its bytes) against the current workspace; returns True."""
    op = _parse(operator, caffe2_pb2.OperatorDef)
    net_def = caffe2_pb2.NetDef(name=op.name or op.type)
    net_def.op.add().CopyFrom(op)
    return RunNetOnce(net_def)


def RunOperatorsOnce(operators_):  # noqa: N802
    for op in operators_:
        RunOperatorOnce(op)
    return True
