"""pycaffe's ``caffe.Net``: a prototxt lowered to one core graph, run by compiled plans.

    import dragon.vm.caffe as caffe
    net = caffe.Net("deploy.prototxt", caffe.TEST, weights="model.caffemodel")
    net.blobs["data"].data[...] = images          # input blobs are live workspace arrays
    out = net.forward()                           # {"prob": array}
    net.blobs["conv1"].data                       # any blob, after forward()

How it works: the NetParameter is filtered by the NetState (phase, level,
stages) and gets Caffe's Split layers; each layer's lowering
(``dragon.vm.caffe.layers``) turns it into core ops, once per set of input
shapes. An in-place layer (top == bottom) makes a new version of its blob, so
BatchNorm's gradient still sees its input. Backward is built layer by layer
from the ops' gradient rules with Caffe's rules of which layers and bottoms
need it (propagate_down, lr_mult 0, loss_weight, force_backward). Blobs,
their diffs and the learnable params are workspace arrays the plans write in
place; ``forward``/``backward`` ranges compile a plan per range, and solvers
run forward and backward as one plan (``_forward_backward``).

Memory: at optimization levels 0-2 every blob's data and diff is kept, as
pycaffe shows them. At level 3 (``dragon.config.set_optimization_level(3)``
before building the net) only net outputs, losses, params and input blobs are
kept, intermediate results share buffers and are recomputed for the backward
pass; reading another blob raises a RuntimeError, ``forward``/``backward``
ranges are not available, and ``backward()`` reruns the forward pass.
"""
from __future__ import annotations

import collections
import itertools
import logging
import os
import re
import weakref

import numpy as np

from dragon import config
from dragon.core import executor, scope
from dragon.core import workspace as workspace_module
from dragon.core.autodiff import GradContext
from dragon.core.errors import NoGradientError
from dragon.core.graph import node_to_op_def
from dragon.core.tensor import Tensor, apply
from dragon.ops import python_callback
from dragon.ops import registry as op_registry
from dragon.proto import dragon_pb2
from dragon.vm.caffe import model_io, proto_io
from dragon.vm.caffe.blob import Blob, BlobStorage
from dragon.vm.caffe.layers import fillers
from dragon.vm.caffe.layers import registry as layer_registry
from dragon.vm.caffe.proto import caffe_pb2
from dragon.vm.caffe.python_layer import BlobVec, Layer

__all__ = ["Net", "filter_net", "insert_splits", "layer_included", "state_meets_rule"]

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST
_NET_IDS = itertools.count()
# Bottoms that force_backward leaves alone (Caffe's AllowForceBackward): labels, sequence
# continuation flags, the infogain matrix. Other loss layers: bottom 1 (the label).
_NO_FORCED_BACKWARD = {"EuclideanLoss": set(), "ContrastiveLoss": {2}, "InfogainLoss": {1, 2},
                       "RNN": {1}, "LSTM": {1}, "LSTMUnit": {2}}
_log = config.logger


# -- NetState filtering and split insertion (Caffe's FilterNet and InsertSplits) -------------------

def state_meets_rule(state, rule) -> bool:
    """Caffe's ``StateMeetsRule``: phase, min/max level, stages all and not_stages none."""
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    if any(s not in stages for s in rule.stage):
        return False
    return not any(s in stages for s in rule.not_stage)


def layer_included(state, layer, where="<net>") -> bool:
    """Caffe's FilterNet rule for one layer: included unless an exclude rule (or, with
    include rules, every include rule) says otherwise."""
    if len(layer.include) and len(layer.exclude):
        raise ValueError(f"{where}: layer '{layer.name}' gives both include and exclude "
                         f"rules; specify either, not both")
    if len(layer.include):
        return any(state_meets_rule(state, r) for r in layer.include)
    return not any(state_meets_rule(state, r) for r in layer.exclude)


def filter_net(param, where="<net>"):
    """A copy of ``param`` with only the layers its ``state`` includes."""
    out = caffe_pb2.NetParameter()
    out.CopyFrom(param)
    out.ClearField("layer")
    for layer in param.layer:
        if layer_included(param.state, layer, where):
            out.layer.add().CopyFrom(layer)
    return out


def split_layer_name(blob, layer, index):
    return f"{blob}_{layer}_{index}_split"


def split_blob_name(blob, layer, index, k):
    return f"{blob}_{layer}_{index}_split_{k}"


def insert_splits(param, locate=None):
    """Caffe's ``InsertSplits``: a Split layer after every top that feeds several bottoms.

    A top with a non-zero loss_weight counts as one more use; its split's first
    top carries the loss weight. ``locate(layer_name)`` prefixes errors with a
    file location.
    """
    locate = locate or (lambda name: "<net>")
    last_top = {}                       # blob name -> (layer index, top index)
    source_of = {}                      # (layer, bottom index) -> (layer, top index)
    uses = collections.Counter()        # (layer, top index) -> number of uses
    loss_of = {}                        # (layer, top index) -> loss weight
    produced = []
    for i, layer in enumerate(param.layer):
        for j, name in enumerate(layer.bottom):
            if name not in last_top:
                close = _close(name, produced)
                raise ValueError(f"{locate(layer.name)}: layer '{layer.name}' reads bottom blob "
                                 f"'{name}' (bottom {j}), which no earlier layer produces{close}")
            source_of[(i, j)] = last_top[name]
            uses[last_top[name]] += 1
        for j, name in enumerate(layer.top):
            last_top[name] = (i, j)
            if name not in produced:
                produced.append(name)
        for j in range(min(len(layer.loss_weight), len(layer.top))):
            top = last_top[layer.top[j]]
            loss_of[top] = layer.loss_weight[j]
            if loss_of[top]:
                uses[top] += 1
    out = caffe_pb2.NetParameter()
    out.CopyFrom(param)
    out.ClearField("layer")
    next_split = collections.Counter()
    for i, layer in enumerate(param.layer):
        copy = out.layer.add()
        copy.CopyFrom(layer)
        for j, name in enumerate(layer.bottom):
            top = source_of[(i, j)]
            if uses[top] > 1:
                owner = param.layer[top[0]].name
                copy.bottom[j] = split_blob_name(name, owner, top[1], next_split[top])
                next_split[top] += 1
        for j, name in enumerate(layer.top):
            count = uses[(i, j)]
            if count <= 1:
                continue
            split = out.layer.add(name=split_layer_name(name, layer.name, j), type="Split")
            split.bottom.append(name)
            weight = loss_of.get((i, j), 0.0)
            for k in range(count):
                split.top.append(split_blob_name(name, layer.name, j, k))
                if weight:
                    split.loss_weight.append(weight if k == 0 else 0.0)
            if weight:
                copy.ClearField("loss_weight")
                next_split[(i, j)] += 1
    return out


def _close(name, candidates):
    import difflib
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


# -- gradients of one layer ------------------------------------------------------------------------

def layer_gradients(nodes, ys, dys, xs):
    """Gradients of ``sum(y * dy)`` w.r.t. ``xs`` through ``nodes`` only (one layer's ops).

    Unlike ``dragon.gradients`` it never walks into other layers: each bottom
    gets the gradient of this layer's use of it, as Caffe's per-layer Backward.
    """
    reach = {id(x) for x in xs}
    for node in nodes:
        if any(id(t) in reach for t in node.inputs):
            reach.update(id(t) for t in node.outputs)
    partials: dict[int, list] = {}
    for y, dy in zip(ys, dys):
        partials.setdefault(id(y), []).append(dy)
    for node in reversed(nodes):
        if not any(id(t) in partials for t in node.outputs):
            continue
        needed = [id(t) in reach for t in node.inputs]
        if not any(needed):
            continue
        schema = op_registry.get(node.type)
        if schema.grad_fn is None:
            raise NoGradientError(f"op '{node.name}' ({node.type}) has no gradient")
        grads = [_summed(partials.get(id(t))) for t in node.outputs]
        dxs = schema.grad_fn(GradContext(node, grads, needed))
        for t, dx, need in zip(node.inputs, dxs, needed):
            if need and dx is not None:
                partials.setdefault(id(t), []).append(dx)
    return [_summed(partials.get(id(x))) for x in xs]


def _summed(parts):
    if not parts:
        return None
    if len(parts) > 1:
        parts[:] = [apply("Sum", parts, is_gradient=True)]
    return parts[0]


def _release(ws, owned, callback_keys):
    """Drop a net's workspace arrays and Python callbacks (when its storage is collected)."""
    for name in owned:
        ws.arrays.pop(name, None)
    for key in callback_keys:
        python_callback.unregister_callback(key)


# -- per-layer and per-blob records of one build ---------------------------------------------------

class _ParamSlot:
    """Where one learnable blob of a layer lives (shared blobs point at their owner's arrays)."""

    __slots__ = ("data_name", "diff_name", "owner", "blob")

    def __init__(self, data_name, diff_name, owner, blob):
        self.data_name, self.diff_name, self.owner, self.blob = data_name, diff_name, owner, blob


class _BlobRecord:
    __slots__ = ("name", "versions", "consumers", "loss_weight", "data_key", "diff_key",
                 "grads")

    def __init__(self, name):
        self.name = name
        self.versions = []          # tensors: first producer's top, then in-place layers' tops
        self.consumers = {}         # version -> (layer index, bottom index)
        self.loss_weight = 0.0
        self.data_key = None
        self.diff_key = None
        self.grads = {}             # version -> (gradient tensor, layer index that made it)


class _LayerRecord:
    def __init__(self, index, param, lowering):
        self.index = index
        self.param = param
        self.name = param.name
        self.type = param.type
        self.lowering = lowering
        self.bottoms = []           # (blob name, version)
        self.tops = []              # (blob name, version)
        self.loss_weights = []
        self.fwd_nodes = []
        self.bwd_nodes = []
        self.params = []            # leaf tensors, by blob index
        self.param_specs = []
        self.inputs = []            # workspace names of the inputs ctx.input made
        self.feeders = []
        self.updates = []
        self.keeps = []
        self.need_backward = False
        self.bottom_need_backward = []
        self.param_need_backward = []
        self.dtops = []             # (gradient tensor, blob name, version, consumer layer)
        self.lowered_bottoms = []   # the bottom tensors the lowering saw
        self.contributes = False    # some top is a loss or feeds one (Caffe's rule)


class _LayerContext(layer_registry.LayerContext):
    """What a lowering sees of its layer (``layers.registry.LayerContext``), plus extensions.

    Extensions beyond the registry's contract: ``state`` (a dict kept across
    rebuilds of the net), ``update(variable, value)`` (write a param in the
    forward pass), ``add_feeder(fn)`` (fn() returns one array per ``input``
    this layer made; the net copies them in before each forward pass),
    ``keep(tensor)`` (computed on every forward pass though nothing reads it)
    and ``register_callback(obj)`` (a PythonCallback key released with the net).
    """

    def __init__(self, graph, record, bottoms):
        self._graph = graph
        self._record = record
        self.param = record.param
        self.name = record.name
        self.type = record.type
        self.bottoms = bottoms
        self.phase = "TRAIN" if graph.net._phase == TRAIN else "TEST"
        self.num_tops = len(record.param.top)
        self.state = graph.net._layer_states[record.index]

    def blob(self, index, shape, filler=None, dtype="float32", value=None):
        return self._graph.param_tensor(self._record, int(index), shape, filler, value)

    def input(self, top_index, shape, dtype="float32"):
        return self._graph.input_tensor(self._record, int(top_index), shape, dtype)

    def op(self, op_type, inputs, **args):
        return apply(op_type, inputs, debug_info=self._graph.net._where(self.name), **args)

    def update(self, variable, value):
        self._record.updates.append(
            apply("Copy", [value], assigns=True, debug_info=self._graph.net._where(self.name)))
        self._graph.fixed[id(self._record.updates[-1])] = variable.name

    def add_feeder(self, fn):
        self._record.feeders.append(fn)

    def keep(self, tensor):
        name = f"{self._graph.prefix}/{self.name}~keep{len(self._record.keeps)}"
        self._graph.fixed[id(tensor)] = name
        self._record.keeps.append(tensor)

    def register_callback(self, callback):
        key = python_callback.register_callback(
            callback, f"caffe/{self._graph.prefix}/{self.name}")
        self._graph.net._callback_keys.add(key)
        return key


# -- the graph of one set of input shapes ----------------------------------------------------------

class _Graph:
    """One lowering of the net for fixed input shapes, and the plans compiled from it."""

    def __init__(self, net):
        self.net = net
        self.prefix = net._prefix
        self.storage = net._storage
        self.level = config.get_optimization_level()
        self.device = config.get_device()
        self.layers: list[_LayerRecord] = []
        self.blobs: "collections.OrderedDict[str, _BlobRecord]" = collections.OrderedDict()
        self.owner: dict = {}           # id(node) -> ('f' or 'b', layer index)
        self.fixed: dict = {}           # id(tensor) -> workspace name in every plan
        self.saved: dict = {}           # id(tensor) -> workspace name in separate fwd/bwd plans
        self.leaves: dict = {}
        self.input_shapes: dict = {}    # input array name -> shape it was built with
        self.outputs: list = []
        self.plans: dict = {}
        self.param_diffs: dict = {}     # param diff arrays backward accumulates into

    # -- leaves ---------------------------------------------------------------------------
    def leaf(self, name, shape, dtype="float32"):
        t = self.leaves.get(name)
        if t is None:
            t = Tensor.__new__(Tensor)
            t.name, t.shape, t.dtype = name, tuple(int(d) for d in shape), np.dtype(dtype)
            t.node, t.index, t.kind, t._value = None, 0, "variable", None
            self.leaves[name] = t
        return t

    def input_tensor(self, record, top_index, shape, dtype):
        name = f"{self.prefix}/{record.name}/input{top_index}"
        array = self.storage.array(name)
        if array is None:
            array, _ = self.storage.ensure(name, shape, dtype)
        record.inputs.append(name)
        self.input_shapes[name] = tuple(array.shape)
        return self.leaf(name, array.shape, array.dtype)

    def param_tensor(self, record, index, shape, filler, value):
        net = self.net
        shape = tuple(int(d) for d in shape)
        slots = net._param_slots[record.index]
        slot = slots.get(index)
        where = f"{net._where(record.name)}: layer '{record.name}' (type {record.type})"
        if slot is None:
            slot = self._new_slot(record, index, shape, filler, value, where)
            slots[index] = slot
        array = self.storage.array(slot.data_name)
        if array is None:
            raise RuntimeError(f"{where}: param {index} array '{slot.data_name}' is gone")
        if tuple(array.shape) != shape:
            if slot.owner is None or array.size != int(np.prod(shape)):
                raise ValueError(f"{where}: param {index} has shape {tuple(array.shape)}, but the "
                                 f"layer now needs {shape} (did the bottom shapes change?)")
        t = self.leaf(slot.data_name, array.shape)
        while len(record.params) <= index:
            record.params.append(None)
        record.params[index] = t
        if tuple(array.shape) != shape:     # a PERMISSIVE share of an owner shaped otherwise
            return apply("Reshape", [t], shape=list(shape))
        return t

    def _new_slot(self, record, index, shape, filler, value, where):
        net = self.net
        lp = record.param
        spec = lp.param[index] if index < len(lp.param) else None
        owner = net._param_names.get(spec.name) if spec is not None and spec.name else None
        if owner is not None:
            oslot = net._param_slots[owner[0]][owner[1]]
            oshape = oslot.blob.shape
            owner_name = net._layer_names[owner[0]]
            permissive = spec.share_mode == caffe_pb2.ParamSpec.PERMISSIVE
            if (permissive and int(np.prod(oshape)) != int(np.prod(shape))) or \
                    (not permissive and tuple(oshape) != shape):
                raise ValueError(f"{where}: cannot share param '{spec.name}' owned by layer "
                                 f"'{owner_name}' (param {owner[1]}): the owner's shape is "
                                 f"{tuple(oshape)}, this layer needs {shape}")
            blob = Blob(self.storage, f"{lp.name}[{index}]", oslot.data_name, oslot.diff_name)
            return _ParamSlot(oslot.data_name, oslot.diff_name, owner, blob)
        data_name = f"{self.prefix}/{lp.name}/param{index}"
        if value is not None:
            init = np.array(value, dtype=np.float32).reshape(shape)
        elif index < len(lp.blobs):
            proto = lp.blobs[index]
            if not model_io.shape_fits(shape, proto):
                raise ValueError(f"{where}: blob {index} given in the net definition has shape "
                                 f"{model_io.proto_shape(proto)}, the layer needs {shape}")
            init = model_io.proto_values(proto).reshape(shape)
        else:
            init = fillers.fill_array(filler, shape)
        self.storage.put(data_name, np.array(init, dtype=np.float32, order="C"))
        if spec is not None and spec.name:
            net._param_names[spec.name] = (record.index, index)
        blob = Blob(self.storage, f"{lp.name}[{index}]", data_name, data_name + "@diff")
        return _ParamSlot(data_name, data_name + "@diff", None, blob)

    # -- building ---------------------------------------------------------------------------
    def build(self):
        net = self.net
        for index, lp in enumerate(net._param.layer):
            self._build_layer(index, lp)
        self.outputs = sorted(name for name, b in self.blobs.items()
                              if (len(b.versions) - 1) not in b.consumers)
        self._backward_flags()
        self._build_backward()
        self._assign_names()
        self._allocate()

    def _own(self, roots, tag):
        """The not yet owned nodes that ``roots`` need, in run order, tagged ``tag``."""
        order, seen = [], set()
        stack = [(t.node, False) for t in reversed(roots) if t.node is not None]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                self.owner[id(node)] = tag
                continue
            if id(node) in self.owner or id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for t in reversed(node.inputs):
                if t.node is not None and id(t.node) not in self.owner and id(t.node) not in seen:
                    stack.append((t.node, False))
        return order

    def _build_layer(self, index, lp):
        net = self.net
        try:
            lowering = layer_registry.get(lp.type, lp.name)
        except ValueError as exc:
            raise ValueError(f"{net._where(lp.name)}: {exc}") from None
        record = _LayerRecord(index, lp, lowering)
        self.layers.append(record)
        bottoms = []
        for j, name in enumerate(lp.bottom):
            blob = self.blobs.get(name)
            if blob is None:
                raise ValueError(f"{net._where(lp.name)}: layer '{lp.name}' reads bottom blob "
                                 f"'{name}', which no earlier layer produces"
                                 f"{_close(name, self.blobs)}")
            version = len(blob.versions) - 1
            if version in blob.consumers:
                other = net._layer_names[blob.consumers[version][0]]
                raise ValueError(f"{net._where(lp.name)}: blob '{name}' is read by layer "
                                 f"'{other}' and by layer '{lp.name}' without a split")
            blob.consumers[version] = (index, j)
            record.bottoms.append((name, version))
            bottoms.append(blob.versions[-1])
        with scope.name_scope(f"_{self.prefix}/{lp.name}"):
            bottoms = self._distinct(bottoms)
            record.lowered_bottoms = bottoms
            ctx = _LayerContext(self, record, bottoms)
            try:
                tops = list(lowering.build(ctx))
            except Exception as exc:
                raise _located(exc, net._where(lp.name), lp) from exc.__cause__
        if len(tops) != len(lp.top):
            raise ValueError(f"{net._where(lp.name)}: layer '{lp.name}' (type {lp.type}) lists "
                             f"{len(lp.top)} tops, its lowering made {len(tops)}")
        roots = tops + record.updates + record.keeps
        record.fwd_nodes = self._own(roots, ("f", index))
        self._add_tops(record, tops)
        layer_object = ctx.state.get("layer_object")
        net._layer_objects[index] = layer_object
        if _log.isEnabledFor(logging.DEBUG):
            self._log_layer(record)

    def _distinct(self, bottoms):
        # A layer reading one tensor through several bottoms (a split's shared tops) gets a
        # Copy per bottom, so each bottom's gradient is its own use's.
        counts = collections.Counter(id(t) for t in bottoms)
        return [apply("Copy", [t]) if counts[id(t)] > 1 else t for t in bottoms]

    def _add_tops(self, record, tops):
        net, lp = self.net, record.param
        if len(lp.loss_weight) and len(lp.loss_weight) != len(lp.top):
            raise ValueError(f"{net._where(lp.name)}: layer '{lp.name}' gives "
                             f"{len(lp.loss_weight)} loss_weight values for {len(lp.top)} tops; "
                             f"give none or one per top")
        for j, (name, t) in enumerate(zip(lp.top, tops)):
            if not isinstance(t, Tensor) or t.shape is None or None in t.shape:
                raise ValueError(f"{net._where(lp.name)}: layer '{lp.name}' (type {lp.type}) "
                                 f"made top '{name}' without a known shape: {t!r}")
            if len(lp.loss_weight):
                weight = float(lp.loss_weight[j])
            else:
                weight = 1.0 if record.lowering.is_loss and j == 0 else 0.0
            in_place = j < len(lp.bottom) and lp.bottom[j] == name
            blob = self.blobs.get(name)
            if in_place:
                blob.versions.append(t)
            elif blob is not None:
                raise ValueError(f"{net._where(lp.name)}: top blob '{name}' of layer "
                                 f"'{lp.name}' is produced by an earlier layer too (only an "
                                 f"in-place layer, top == bottom, may write it again)")
            else:
                blob = self.blobs[name] = _BlobRecord(name)
                blob.versions.append(t)
            blob.loss_weight = weight
            record.tops.append((name, len(blob.versions) - 1))
            record.loss_weights.append(weight)

    def _log_layer(self, record):
        _log.debug("Creating Layer %s", record.name)
        for name, _ in record.bottoms:
            _log.debug("%s <- %s", record.name, name)
        for (name, version), weight in zip(record.tops, record.loss_weights):
            suffix = " (in-place)" if version else ""
            _log.debug("%s -> %s%s", record.name, name, suffix)
            shape = self.blobs[name].versions[version].shape
            _log.debug("Top shape: %s (%d)", " ".join(str(d) for d in shape),
                       int(np.prod(shape)))
            if weight:
                _log.debug("    with loss weight %g", weight)

    # -- backward ---------------------------------------------------------------------------
    def _backward_flags(self):
        """Caffe's rules for which layers, bottoms and params need backward."""
        net = self.net
        need_blob = collections.defaultdict(bool)
        for record in self.layers:
            lp = record.param
            need = False
            if len(lp.propagate_down) and len(lp.propagate_down) != len(lp.bottom):
                raise ValueError(f"{net._where(lp.name)}: layer '{lp.name}' gives "
                                 f"{len(lp.propagate_down)} propagate_down values for "
                                 f"{len(lp.bottom)} bottoms; give none or one per bottom")
            for j, (name, _) in enumerate(record.bottoms):
                flag = need_blob[name]
                need |= flag
                record.bottom_need_backward.append(
                    bool(lp.propagate_down[j]) if len(lp.propagate_down) else flag)
            for i in range(len(record.params)):
                lr = lp.param[i].lr_mult if i < len(lp.param) else 1.0
                record.param_need_backward.append(lr != 0)
                need |= lr != 0
            record.need_backward = need
            if need:
                for name, _ in record.tops:
                    need_blob[name] = True
        under_loss, skip = set(), set()
        for record in reversed(self.layers):
            contributes = any(w != 0 or name in under_loss
                              for (name, _), w in zip(record.tops, record.loss_weights))
            all_skip = all(name in skip for name, _ in record.tops)
            record.contributes = contributes
            if record.need_backward and all_skip:
                record.need_backward = False
                record.bottom_need_backward = [False] * len(record.bottoms)
            if not contributes:
                record.need_backward = False
            for j, (name, _) in enumerate(record.bottoms):
                if contributes:
                    under_loss.add(name)
                else:
                    record.bottom_need_backward[j] = False
                if not record.bottom_need_backward[j]:
                    skip.add(name)
        if net._param.force_backward:
            for record in self.layers:
                record.need_backward = True
                barred = _NO_FORCED_BACKWARD.get(
                    record.type, {1} if record.lowering.is_loss else set())
                for j in range(len(record.bottoms)):
                    record.bottom_need_backward[j] = record.bottom_need_backward[j] or \
                        j not in barred
                record.param_need_backward = [True] * len(record.params)

    def _build_backward(self):
        force = bool(self.net._param.force_backward)
        for record in reversed(self.layers):
            if not record.need_backward:
                continue
            ys, dys = [], []
            for (name, version), weight in zip(record.tops, record.loss_weights):
                blob = self.blobs[name]
                t = blob.versions[version]
                consumer = blob.consumers.get(version)
                if consumer is not None:
                    found = blob.grads.get(version)
                    d = found[0] if found is not None else None
                elif (weight or force) and t.dtype is not None and t.dtype.kind == "f":
                    d = self.leaf(self._diff_key(name), t.shape, t.dtype)
                else:
                    d = None
                if d is not None:
                    ys.append(t)
                    dys.append(d)
                    record.dtops.append((d, name, version,
                                         consumer[0] if consumer is not None else None))
            if not ys:
                continue
            bottoms = [(j, self.blobs[n].versions[v]) for j, (n, v) in enumerate(record.bottoms)
                       if record.bottom_need_backward[j]]
            bottoms = [(j, t) for j, t in bottoms if t.dtype is not None and t.dtype.kind == "f"]
            params = [(i, t) for i, t in enumerate(record.params)
                      if t is not None and i < len(record.param_need_backward)
                      and record.param_need_backward[i]]
            xs = [t for _, t in bottoms] + [t for _, t in params]
            if not xs:
                continue
            bottom_tensors = [record.lowered_bottoms[j] for j, _ in bottoms]
            try:
                grads = layer_gradients(record.fwd_nodes, ys, dys, bottom_tensors +
                                        [t for _, t in params])
            except NoGradientError as exc:
                if force and not record.contributes:
                    continue        # force_backward through a layer without gradients
                raise NoGradientError(f"{self.net._where(record.name)}: layer '{record.name}' "
                                      f"(type {record.type}) needs backward but {exc}") from None
            roots = []
            for (j, _), g in zip(bottoms, grads[:len(bottoms)]):
                if g is not None:
                    name, version = record.bottoms[j]
                    self.blobs[name].grads[version] = (g, record.index)
                    roots.append(g)
            for (i, leaf), g in zip(params, grads[len(bottoms):]):
                if g is None:
                    continue
                slot = self.net._param_slots[record.index][i]
                acc = apply("Add", [self.leaf(slot.diff_name, leaf.shape), g], assigns=True,
                            is_gradient=True)
                self.param_diffs[slot.diff_name] = tuple(leaf.shape)
                self.fixed[id(acc)] = slot.diff_name
                roots.append(acc)
            record.bwd_nodes = self._own(roots, ("b", record.index))

    # -- names and arrays ---------------------------------------------------------------------
    def _data_key(self, name):
        return f"{self.prefix}/{name}"

    def _diff_key(self, name):
        return f"{self.prefix}/{name}@diff"

    def _assign_names(self):
        keep_all = self.level < config.LEVEL_RECOMPUTE
        for name, blob in self.blobs.items():
            t = blob.versions[-1]
            kept = keep_all or name in self.outputs or blob.loss_weight != 0
            if t.node is None:
                blob.data_key = t.name
            elif id(t) in self.fixed:
                blob.data_key = self.fixed[id(t)]
            elif kept:
                blob.data_key = self.fixed[id(t)] = self._data_key(name)
            else:
                blob.data_key = None
            seeded = name in self.outputs
            grads = sorted(blob.grads.items())
            is_input = t.node is None and t.name in self.input_shapes
            if grads and (keep_all or is_input):
                version, (g, maker) = grads[0]
                blob.diff_key = self._claim_diff(name, g, maker)
            elif keep_all or seeded or is_input:
                blob.diff_key = self._diff_key(name)
            else:
                blob.diff_key = None
        if self.level < config.LEVEL_RECOMPUTE:
            for record in self.layers:
                for node in record.bwd_nodes:
                    for t in node.inputs:
                        if t.node is not None and self.owner.get(id(t.node), ("b",))[0] == "f" \
                                and id(t) not in self.fixed:
                            self.saved[id(t)] = f"{t.name}@saved"

    def _claim_diff(self, name, g, maker):
        key = self._diff_key(name)
        current = g.name if g.node is None else self.fixed.get(id(g))
        if current == key:
            return key
        if current is None:
            self.fixed[id(g)] = key
            return key
        copy = apply("Copy", [g], is_gradient=True)
        self.fixed[id(copy)] = key
        record = self.layers[maker]
        record.bwd_nodes.append(copy.node)
        self.owner[id(copy.node)] = ("b", maker)
        return key

    def _allocate(self):
        storage = self.storage
        shapes = {}
        for name, blob in self.blobs.items():
            t = blob.versions[-1]
            shapes[name] = tuple(t.shape)
            if blob.data_key is not None and t.node is not None and \
                    self.fixed.get(id(t)) == blob.data_key:
                storage.ensure(blob.data_key, t.shape, t.dtype)
            if blob.diff_key is not None:
                weight = blob.loss_weight if name in self.outputs else 0.0
                if blob.grads or name in self.outputs:
                    storage.ensure(blob.diff_key, t.shape, "float32", fill=weight)
        for record in self.layers:
            for t in record.keeps:
                storage.ensure(self.fixed[id(t)], t.shape, t.dtype)
            for node in record.fwd_nodes:
                for t in node.outputs:
                    if id(t) in self.saved:
                        storage.ensure(self.saved[id(t)], t.shape, t.dtype)
        for name, shape in self.param_diffs.items():
            if storage.array(name) is None:
                storage.ensure(name, shape)
        storage.blob_shapes = shapes
        storage.level = self.level

    # -- graph defs and plans -------------------------------------------------------------------
    def _name(self, t, separate, rename):
        key = id(t)
        if rename and key in rename:
            return rename[key]
        name = self.fixed.get(key)
        if name is not None:
            return name
        if separate:
            name = self.saved.get(key)
            if name is not None:
                return name
        return t.name

    def _graph_def(self, name, nodes, separate, rename=None, copies=()):
        graph = dragon_pb2.GraphDef(name=name)
        for node in nodes:
            op = node_to_op_def(node)
            del op.input[:]
            op.input.extend(self._name(t, separate, rename) for t in node.inputs)
            del op.output[:]
            op.output.extend(self._name(t, separate, rename) for t in node.outputs)
            graph.op.append(op)
            for t in node.inputs:
                if t.kind == "constant" and t.name not in self.storage.ws.arrays:
                    self.storage.put(t.name, t._value)
        for src, dst in copies:
            graph.op.add(type="Copy", name=f"{dst}@copy", input=[src], output=[dst])
        return graph

    def plan(self, kind, start, end):
        key = (kind, start, end)
        plan = self.plans.get(key)
        if plan is None:
            if kind == "forward":
                graph = self._forward_graph(start, end)
            elif kind == "backward":
                graph = self._backward_graph(start, end)
            else:
                graph = self._fused_graph()
            plan = executor.compile_graph(graph, {}, [], self.storage.ws, level=self.level,
                                          name=graph.name)
            plan.feed_records = [] if kind == "backward" else [
                r for r in self.layers[min(start, end):max(start, end) + 1]
                if r.feeders or r.type == "MemoryData"]
            self.plans[key] = plan
        return plan

    def _forward_graph(self, start, end):
        layers = self.layers[start:end + 1]
        nodes = [n for r in layers for n in r.fwd_nodes]
        separate = True
        rename, copies = {}, []
        if start > 0 or end < len(self.layers) - 1:
            for record in layers:
                for name, version in record.bottoms:
                    blob = self.blobs[name]
                    t = blob.versions[version]
                    producer = self._producer(t)
                    if (producer is None or producer < start) and id(t) not in self.fixed:
                        rename[id(t)] = blob.data_key
            last = {}
            for record in layers:
                for name, version in record.tops:
                    last[name] = version
            for name, version in last.items():
                blob = self.blobs[name]
                t = blob.versions[version]
                if self._name(t, separate, rename) != blob.data_key:
                    copies.append((self._name(t, separate, rename), blob.data_key))
        return self._graph_def(f"{self.prefix}/forward", nodes, separate, rename, copies)

    def _producer(self, t):
        owner = self.owner.get(id(t.node)) if t.node is not None else None
        return owner[1] if owner is not None else None

    def _backward_graph(self, start, end):
        layers = [self.layers[i] for i in range(start, end - 1, -1)]
        nodes = [n for r in layers for n in r.bwd_nodes]
        rename, copies = {}, []
        for record in layers:
            for d, name, version, consumer in record.dtops:
                if consumer is not None and consumer > start:
                    rename[id(d)] = self.blobs[name].diff_key
        first = {}
        for record in layers:
            for name, version in record.bottoms:
                found = self.blobs[name].grads.get(version)
                if found is not None and found[1] == record.index:
                    if name not in first or version < first[name][0]:
                        first[name] = (version, found[0])
        for name, (version, g) in first.items():
            src = self._name(g, True, rename)
            if src != self.blobs[name].diff_key:
                copies.append((src, self.blobs[name].diff_key))
        return self._graph_def(f"{self.prefix}/backward", nodes, True, rename, copies)

    def _fused_graph(self):
        nodes = [n for r in self.layers for n in r.fwd_nodes] + \
            [n for r in reversed(self.layers) for n in r.bwd_nodes]
        return self._graph_def(f"{self.prefix}/forward_backward", nodes, False)


def _located(exc, where, lp):
    """``exc`` with the file location and, unless it names it already, the layer prefixed."""
    text = str(exc)
    if f"'{lp.name}'" not in text:
        text = f"layer '{lp.name}' (type {lp.type}): {text}"
    if not text.startswith(where):
        text = f"{where}: {text}"
    try:
        exc.args = (text,) + tuple(exc.args[1:])
    except Exception:  # noqa: BLE001 - an exception type with read-only args keeps its text
        pass
    return exc


# -- the pycaffe-facing objects --------------------------------------------------------------------

class _NetLayer(Layer):
    """One layer of a Net (pycaffe's ``net.layers[i]``): its type, name and learnable blobs."""

    def __init__(self, param, blobs):
        super().__init__(param)
        self.name = param.name
        self._type = param.type
        self.blobs = blobs

    @property
    def type(self) -> str:
        return self._type

    def forward(self, bottom, top):
        raise NotImplementedError("a Net's built-in layers run inside the net's plan; call "
                                  "net.forward(start=..., end=...)")

    def __repr__(self):
        return f"<caffe.Layer '{self.name}' type={self._type}>"


class _MemorySource:
    """MemoryData's arrays from ``set_input_arrays``, served batch by batch in a cycle."""

    def __init__(self, data, labels, batch_size):
        self.data, self.labels, self.batch_size = data, labels, batch_size
        self.position = 0

    def next_batch(self):
        i, n = self.position, self.batch_size
        self.position = (i + n) % len(self.data)
        return [self.data[i:i + n], self.labels[i:i + n]]


class Net:
    """A Caffe network (pycaffe's ``caffe.Net``); see the module docstring.

    ``Net(network_file, phase, level=0, stages=None, weights=None)``, or the
    legacy ``Net(network_file, weights_file, phase)``. ``network_file`` is a
    prototxt path (or a ``caffe_pb2.NetParameter``); ``phase`` is
    ``caffe.TRAIN`` or ``caffe.TEST``; ``level`` and ``stages`` select layers by
    their include/exclude rules.

    >>> net = caffe.Net("lenet.prototxt", caffe.TEST)
    >>> net.blobs["data"].data[...] = batch
    >>> net.forward()["prob"].argmax(axis=1)
    """

    def __init__(self, network_file, *args, phase=None, level=None, stages=None, weights=None):
        weights_file, phase, level, stages, weights = _parse_args(
            args, phase, level, stages, weights)
        self._prefix = f"net{next(_NET_IDS)}"
        self._source, self._text, param = _read_definition(network_file)
        if phase is not None:
            param.state.phase = int(phase)
        if level is not None:
            param.state.level = int(level)
        for stage in stages or ():
            param.state.stage.append(stage)
        self._phase = param.state.phase
        self.name = param.name
        self._lines = self._find_lines(param)
        filtered = filter_net(param, self._source)
        self._param = insert_splits(filtered, self._where)
        for layer in self._param.layer:
            if not layer.HasField("phase"):
                layer.phase = self._phase
        n = len(self._param.layer)
        self._layer_names = [layer.name for layer in self._param.layer]
        self._layer_states = [dict() for _ in range(n)]
        self._layer_objects = [None] * n
        self._param_slots = [dict() for _ in range(n)]
        self._param_names: dict = {}
        self._memory_sources: dict = {}
        self._callback_keys: set = set()
        self._shared_sources: list = []
        self._storage = BlobStorage(workspace_module.get_workspace())
        # Released when the net and every Blob handed out are gone (Blobs hold the storage).
        self._finalizer = weakref.finalize(self._storage, _release, self._storage.ws,
                                           self._storage.owned, self._callback_keys)
        self._graph = None
        self._build()
        for path in (weights_file, weights):
            if path:
                self.copy_from(path)

    # -- building ----------------------------------------------------------------------------
    def _where(self, layer_name=None):
        """``file:line`` of a layer's definition (or just the file)."""
        line = self._lines.get(layer_name)
        return f"{self._source}:{line}" if line else self._source

    def _find_lines(self, param):
        """Line of each layer the NetState keeps (the right one of same-named layers)."""
        lines = {}
        if self._text is None:
            return lines
        seen = collections.Counter()
        for layer in param.layer:
            pattern = r"""\bname\s*:\s*["']%s["']""" % re.escape(layer.name)
            matches = list(re.finditer(pattern, self._text))
            k = seen[layer.name]
            seen[layer.name] += 1
            if k < len(matches) and layer.name not in lines and \
                    layer_included(param.state, layer, self._source):
                lines[layer.name] = self._text.count("\n", 0, matches[k].start()) + 1
        return lines

    def _build(self):
        graph = _Graph(self)
        graph.build()
        self._graph = graph
        self._storage.dirty = False
        self._refresh_views()

    def _refresh_views(self):
        graph = self._graph
        if not hasattr(self, "blobs"):
            self.blobs = collections.OrderedDict(
                (name, Blob(self._storage, name, b.data_key, b.diff_key))
                for name, b in graph.blobs.items())
        for name, b in graph.blobs.items():
            blob = self.blobs[name]
            blob._data_key, blob._diff_key = b.data_key, b.diff_key
        self._blob_names = list(graph.blobs)
        self.inputs = [name for record in graph.layers if record.type == "Input"
                       for name, _ in record.tops]
        self.outputs = list(graph.outputs)
        self.blob_loss_weights = collections.OrderedDict(
            (name, b.loss_weight) for name, b in graph.blobs.items())
        self.top_names = collections.OrderedDict(
            (r.name, [name for name, _ in r.tops]) for r in graph.layers)
        self.bottom_names = collections.OrderedDict(
            (r.name, [name for name, _ in r.bottoms]) for r in graph.layers)
        if not hasattr(self, "layers"):
            self.layers = []
            for record in graph.layers:
                blobs = [self._param_slots[record.index][i].blob
                         for i in range(len(record.params))]
                obj = self._layer_objects[record.index]
                if obj is None:
                    obj = _NetLayer(record.param, blobs)
                else:
                    obj.blobs = BlobVec(blobs)
                    if getattr(obj, "layer_param", None) is None:
                        obj.layer_param = record.param
                self.layers.append(obj)
            self.layer_dict = collections.OrderedDict(zip(self._layer_names, self.layers))

    def _ensure_built(self):
        graph = self._graph
        stale = self._storage.dirty or graph.level != config.get_optimization_level() or \
            graph.device != config.get_device()
        if not stale:
            arrays = self._storage.ws.arrays
            for name, shape in graph.input_shapes.items():
                array = arrays.get(name)
                if array is None or array.shape != shape:
                    stale = True
                    break
        if stale:
            self._build()
        return self._graph

    def reshape(self):
        """Re-infer every blob's shape from the (reshaped) input blobs."""
        self._ensure_built()

    # -- pycaffe's attributes ------------------------------------------------------------------
    @property
    def params(self):
        """``OrderedDict`` layer name -> list of its learnable Blobs (layers with any)."""
        return collections.OrderedDict((name, layer.blobs)
                                       for name, layer in zip(self._layer_names, self.layers)
                                       if len(layer.blobs))

    def _all_slots(self):
        return [slot for slots in self._param_slots for slot in slots.values()]

    def _layer_params(self):
        return list(self._param.layer)

    def _param_owner_flags(self):
        return {name: [self._param_slots[i][j].owner is None
                       for j in range(len(self.layers[i].blobs))]
                for i, name in enumerate(self._layer_names)}

    def _index(self, layer_name, what):
        try:
            return self._layer_names.index(layer_name)
        except ValueError:
            raise ValueError(f"{what}: the net has no layer '{layer_name}'"
                             f"{_close(layer_name, self._layer_names)}") from None

    # -- running -----------------------------------------------------------------------------------
    def _run(self, plan):
        arrays = self._storage.ws.arrays
        for record in plan.feed_records:
            feeders = list(record.feeders)
            memory = self._memory_sources.get(record.index)
            if memory is not None:
                feeders.append(memory.next_batch)
            for fn in feeders:
                self._feed(arrays, record, fn())
        plan.run((), copy_outputs=False)

    def _feed(self, arrays, record, values):
        if len(values) < len(record.inputs):
            raise ValueError(f"{self._where(record.name)}: layer '{record.name}' feeder gave "
                             f"{len(values)} arrays for {len(record.inputs)} inputs")
        for name, value in zip(record.inputs, values):
            target = arrays[name]
            if np.shape(value) != target.shape:
                raise ValueError(f"layer '{record.name}': a batch of shape "
                                 f"{np.shape(value)} does not fit its blob of shape "
                                 f"{target.shape}")
            np.copyto(target, value, casting="unsafe")

    def _check_level_for_range(self, graph, start, end, what):
        if graph.level >= config.LEVEL_RECOMPUTE and (start, end) != (0, len(graph.layers) - 1):
            raise RuntimeError(f"{what} with start/end needs every blob kept; the net was built "
                               f"at optimization level {graph.level}: use level 2 or lower")

    def forward(self, blobs=None, start=None, end=None, **kwargs):
        """Run layers ``start``..``end`` (names; all by default); returns ``{blob: data}``.

        Keyword arguments fill input blobs first (same batch size). The result has
        the net's outputs (or ``end``'s tops) and the ``blobs`` named; its arrays
        are the blobs' live data, as in pycaffe.
        """
        blobs = list(blobs or [])
        if kwargs:
            if set(kwargs) != set(self.inputs):
                raise ValueError(f"input blob arguments {sorted(kwargs)} do not match the net's "
                                 f"inputs {self.inputs}")
            for name, value in kwargs.items():
                target = self.blobs[name]
                if np.ndim(value) and target.shape and np.shape(value)[0] != target.shape[0]:
                    raise ValueError(f"input '{name}' has batch size {np.shape(value)[0]}, the "
                                     f"blob has {target.shape[0]}")
                target.data[...] = value
        graph = self._ensure_built()
        start_ind = self._index(start, "forward(start=...)") if start is not None else 0
        end_ind = self._index(end, "forward(end=...)") if end is not None \
            else len(self.layers) - 1
        outputs = (self.top_names[end] if end is not None else self.outputs) + blobs
        if start_ind <= end_ind:
            self._check_level_for_range(graph, start_ind, end_ind, "forward()")
            self._run(graph.plan("forward", start_ind, end_ind))
        return {name: self.blobs[name].data for name in dict.fromkeys(outputs)}

    def backward(self, diffs=None, start=None, end=None, **kwargs):
        """Backpropagate from layer ``start`` down to ``end``; returns ``{blob: diff}``.

        Loss tops start with their loss_weight as diff; keyword arguments set the
        diffs of output blobs first. The result has the input blobs' (or ``end``'s
        bottoms') diffs and the ``diffs`` named.
        """
        diffs = list(diffs or [])
        if kwargs:
            if set(kwargs) != set(self.outputs):
                raise ValueError(f"top diff arguments {sorted(kwargs)} do not match the net's "
                                 f"outputs {self.outputs}")
            for name, value in kwargs.items():
                target = self.blobs[name]
                if np.ndim(value) and target.shape and np.shape(value)[0] != target.shape[0]:
                    raise ValueError(f"diff for '{name}' has batch size {np.shape(value)[0]}, "
                                     f"the blob has {target.shape[0]}")
                target.diff[...] = value
        graph = self._ensure_built()
        start_ind = self._index(start, "backward(start=...)") if start is not None \
            else len(self.layers) - 1
        end_ind = self._index(end, "backward(end=...)") if end is not None else 0
        outputs = (self.bottom_names[end] if end is not None else self.inputs) + diffs
        if start_ind >= end_ind:
            if graph.level >= config.LEVEL_RECOMPUTE:
                self._check_level_for_range(graph, end_ind, start_ind, "backward()")
                self._run(graph.plan("fused", 0, len(self.layers) - 1))
            else:
                self._run(graph.plan("backward", start_ind, end_ind))
        return {name: self.blobs[name].diff for name in dict.fromkeys(outputs)}

    def _forward_backward(self):
        """Forward and backward as one plan (what solvers run); returns the weighted loss."""
        graph = self._ensure_built()
        self._run(graph.plan("fused", 0, len(self.layers) - 1))
        return self._loss()

    def _loss(self):
        total = 0.0
        for name, weight in self.blob_loss_weights.items():
            if weight and name in self.outputs:
                total += weight * float(np.sum(self.blobs[name].data, dtype=np.float64))
        return total

    def clear_param_diffs(self):
        """Zero the diff of every learnable blob (solvers do before each iteration)."""
        for slots in self._param_slots:
            for slot in slots.values():
                if slot.owner is None:
                    slot.blob.diff.fill(0)

    # -- batching (pycaffe's forward_all / forward_backward_all) -----------------------------------
    def _batches(self, arrays):
        if not arrays:
            return
        num = len(next(iter(arrays.values())))
        batch = next(iter(self.blobs.values())).shape[0]
        for i in range(0, num - num % batch, batch):
            yield {name: value[i:i + batch] for name, value in arrays.items()}
        rest = num % batch
        if rest:
            padded = {}
            for name, value in arrays.items():
                value = np.asarray(value)
                pad = np.zeros((batch - rest,) + value.shape[1:], dtype=value.dtype)
                padded[name] = np.concatenate([value[-rest:], pad])
            yield padded

    def forward_all(self, blobs=None, **kwargs):
        """Forward every batch of the keyword inputs; the last batch is padded, then cut.

        >>> probs = net.forward_all(data=images)["prob"]      # any number of images
        """
        names = list(dict.fromkeys(self.outputs + list(blobs or [])))
        collected = {name: [] for name in names}
        for batch in self._batches(kwargs):
            outs = self.forward(blobs=blobs, **batch)
            for name in names:
                collected[name].append(np.array(outs[name], copy=True))
        return self._cut(collected, kwargs)

    def forward_backward_all(self, blobs=None, diffs=None, **kwargs):
        """forward_all and backward over batches; returns ``(outputs, diffs)``."""
        out_names = list(dict.fromkeys(self.outputs + list(blobs or [])))
        diff_names = list(dict.fromkeys(self.inputs + list(diffs or [])))
        fwd = list(self._batches({k: kwargs[k] for k in self.inputs if k in kwargs}))
        bwd = list(self._batches({k: kwargs[k] for k in self.outputs if k in kwargs}))
        outs = {name: [] for name in out_names}
        grads = {name: [] for name in diff_names}
        for i in range(max(len(fwd), len(bwd))):
            batch_out = self.forward(blobs=blobs, **(fwd[i] if i < len(fwd) else {}))
            batch_diff = self.backward(diffs=diffs, **(bwd[i] if i < len(bwd) else {}))
            for name in out_names:
                outs[name].append(np.array(batch_out[name], copy=True))
            for name in diff_names:
                grads[name].append(np.array(batch_diff[name], copy=True))
        return self._cut(outs, kwargs), self._cut(grads, kwargs)

    @staticmethod
    def _cut(collected, given):
        result = {name: np.concatenate(parts) if parts else np.zeros((0,), np.float32)
                  for name, parts in collected.items()}
        if given and result:
            total = len(next(iter(given.values())))
            result = {name: value[:total] for name, value in result.items()}
        return result

    def set_input_arrays(self, data, labels):
        """Serve ``data`` and ``labels`` to the first MemoryData layer, a batch per forward."""
        index = next((i for i, lp in enumerate(self._param.layer) if lp.type == "MemoryData"),
                     None)
        if index is None:
            raise RuntimeError("set_input_arrays needs a MemoryData layer (Caffe requires it "
                               "to be the first layer)")
        record = self._graph.layers[index]
        data = np.ascontiguousarray(data, dtype=np.float32)
        labels = np.ascontiguousarray(labels, dtype=np.float32).reshape(len(labels), -1)
        target = self._storage.ws.arrays[record.inputs[0]]
        batch = target.shape[0]
        if data.ndim != 4 or data.shape[1:] != target.shape[1:]:
            raise ValueError(f"layer '{record.name}': data of shape {data.shape} does not fit its "
                             f"blob of shape (N,) + {target.shape[1:]}")
        if labels.shape != (len(data), 1):
            raise ValueError(f"layer '{record.name}': {len(labels)} labels of shape "
                             f"{labels.shape[1:]} for {len(data)} items (one label each)")
        if len(data) % batch:
            raise ValueError(f"layer '{record.name}': {len(data)} items are not a multiple of "
                             f"the batch size {batch}")
        self._memory_sources[index] = _MemorySource(data, labels.reshape(-1), batch)

    # -- weights ---------------------------------------------------------------------------------
    def copy_from(self, filename):
        """Load weights from a caffemodel (or Caffe HDF5 file), matching layers by name."""
        model_io.load_weights(self, filename)

    def save(self, filename):
        """Write the weights as a binary caffemodel (atomically: a failure keeps the old file)."""
        model_io.save(self, filename)

    def save_hdf5(self, filename):
        """Write the weights in Caffe's HDF5 layout (``data/<layer>/<i>``)."""
        model_io.save_hdf5(self, filename)

    def load_hdf5(self, filename):
        """Load weights saved by ``save_hdf5`` (or Caffe's)."""
        model_io.load_hdf5(self, filename)

    def share_with(self, other):
        """Use ``other``'s param data, layers matched by name (Caffe's ShareTrainedLayersWith)."""
        if not isinstance(other, Net):
            raise TypeError(f"share_with needs a caffe.Net, got {type(other).__name__}")
        own = dict(zip(self._layer_names, range(len(self._layer_names))))
        changed = False
        for i, name in enumerate(other._layer_names):
            j = own.get(name)
            if j is None:
                continue
            source, target = other.layers[i].blobs, self.layers[j].blobs
            if len(source) != len(target):
                raise ValueError(f"share_with: layer '{name}' has {len(source)} blobs in the "
                                 f"source net and {len(target)} here")
            for k, (src, dst) in enumerate(zip(source, target)):
                if src.shape != dst.shape:
                    raise ValueError(f"share_with: cannot share param {k} of layer '{name}': "
                                     f"the source's shape is {src.shape}, this net's is "
                                     f"{dst.shape}")
                slot = self._param_slots[j][k]
                if slot.data_name != src._data_key:
                    self._storage.drop(slot.data_name)
                    for other_slot in self._all_slots():
                        if other_slot is slot or other_slot.owner == (j, k):
                            other_slot.data_name = other_slot.blob._data_key = src._data_key
                    changed = True
        if changed:
            self._shared_sources.append(other)
            self._storage.dirty = True
            self._ensure_built()

    def __repr__(self):
        return (f"<caffe.Net '{self.name}' {len(self.layers)} layers, "
                f"{'TRAIN' if self._phase == TRAIN else 'TEST'}>")


def _parse_args(args, phase, level, stages, weights):
    """(weights_file, phase, level, stages, weights) from pycaffe's two signatures."""
    args = list(args)
    weights_file = None
    if args and isinstance(args[0], (str, os.PathLike)):
        weights_file = os.fspath(args.pop(0))      # Net(file, weights_file, phase)
    if args:
        phase = args.pop(0)
    if args:
        level = args.pop(0)
    if args:
        stages = args.pop(0)
    if args:
        weights = args.pop(0)
    if args:
        raise TypeError("Net(network_file, phase, level=0, stages=None, weights=None) takes at "
                        "most 5 arguments")
    if phase is not None and int(phase) not in (TRAIN, TEST):
        raise ValueError(f"phase must be caffe.TRAIN ({TRAIN}) or caffe.TEST ({TEST}), "
                         f"got {phase!r}")
    if isinstance(stages, str):
        stages = [stages]
    return weights_file, phase, level, stages, weights


def _read_definition(network_file):
    """(name for messages, prototxt text or None, upgraded NetParameter copy)."""
    if isinstance(network_file, caffe_pb2.NetParameter):
        param = caffe_pb2.NetParameter()
        param.CopyFrom(network_file)
        return f"<NetParameter '{param.name}'>", None, proto_io.upgrade_net(param)
    path = os.fspath(network_file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such network file: '{path}'")
    with open(path, "r", encoding="utf-8", errors="replace") as f:
        text = f.read()
    return path, text, proto_io.read_net(path)
