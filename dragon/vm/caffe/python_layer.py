"""pycaffe's ``caffe.Layer`` and the lowering that runs Python layers inside a plan.

A prototxt layer of ``type: "Python"`` names a module and a class::

    layer { name: "loss" type: "Python" bottom: "pred" bottom: "label" top: "loss"
            python_param { module: "pyloss" layer: "EuclideanLossLayer" param_str: "0.5" }
            loss_weight: 1 }

and the class subclasses ``caffe.Layer``::

    class EuclideanLossLayer(caffe.Layer):
        def setup(self, bottom, top): self.scale = float(self.param_str)
        def reshape(self, bottom, top): top[0].reshape(1)
        def forward(self, bottom, top):
            self.diff = bottom[0].data - bottom[1].data
            top[0].data[...] = self.scale * np.sum(self.diff ** 2) / bottom[0].num
        def backward(self, top, propagate_down, bottom):
            if propagate_down[0]:
                bottom[0].diff[...] = 2 * self.scale * self.diff / bottom[0].num * top[0].diff

As in Caffe the module is imported from ``sys.path``, the class is called with
the LayerParameter, ``param_str`` and ``phase`` are set, then ``setup`` and
``reshape`` run once when the net is built (the tops' shapes are what
``reshape`` sets). ``reshape`` and ``forward`` run on every forward pass and
``backward`` on every backward pass, inside the compiled plan, through the core
``PythonCallback`` op. Blobs a layer adds in ``setup`` (``self.blobs.add_blob(*shape)``)
become the layer's learnable params: saved with the net, updated by solvers;
``backward`` writes their gradients into ``self.blobs[i].diff``.
"""
from __future__ import annotations

import difflib
import importlib

import numpy as np

from dragon.core.errors import DragonError
from dragon.ops.registry import Spec
from dragon.vm.caffe.blob import ArrayBlob
from dragon.vm.caffe.layers.registry import lowering
from dragon.vm.caffe.proto import caffe_pb2

TRAIN, TEST = caffe_pb2.TRAIN, caffe_pb2.TEST


class PythonLayerError(DragonError, RuntimeError):
    """A Python layer's code failed; names the layer, its class and the method."""


class BlobVec(list):
    """A layer's list of blobs, as pycaffe's ``layer.blobs`` (with ``add_blob``)."""

    def add_blob(self, *shape):
        """Append a new zero blob of ``shape`` (call it in ``setup``).

        >>> self.blobs.add_blob(10, 5)
        """
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (list, tuple)) else shape
        self.append(ArrayBlob(np.zeros(tuple(int(d) for d in shape), np.float32),
                              resizable=True))


class Layer:
    """Base class of Python layers (pycaffe's ``caffe.Layer``); a Net's layers are Layers too.

    Subclasses override ``setup``, ``reshape``, ``forward`` and ``backward``;
    the net sets ``param_str`` (python_param.param_str) and ``phase``
    (``caffe.TRAIN`` or ``caffe.TEST``) before ``setup``.

    >>> class Double(caffe.Layer):
    ...     def reshape(self, bottom, top): top[0].reshape(*bottom[0].data.shape)
    ...     def forward(self, bottom, top): top[0].data[...] = 2 * bottom[0].data
    ...     def backward(self, top, propagate_down, bottom):
    ...         bottom[0].diff[...] = 2 * top[0].diff
    """

    def __init__(self, param=None):
        self.layer_param = param
        self.param_str = param.python_param.param_str if param is not None else ""
        self.phase = TEST
        self.blobs = BlobVec()

    @property
    def type(self) -> str:
        return "Python"

    def setup(self, bottom, top):
        """Called once when the net is built, before the first ``reshape``."""

    def reshape(self, bottom, top):
        """Set the tops' shapes from the bottoms' (``top[0].reshape(...)``)."""

    def forward(self, bottom, top):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def backward(self, top, propagate_down, bottom):
        """Write the bottoms' gradients (``bottom[i].diff``) where ``propagate_down[i]``."""


# -- running a Python layer inside a plan ----------------------------------------------------------

class PythonLayerCallback:
    """The PythonCallback op's view of one Python layer (inputs: bottoms, then params)."""

    def __init__(self, layer, name, num_bottoms, num_tops):
        self.layer = layer
        self.name = name
        self.num_bottoms = num_bottoms
        self.num_tops = num_tops
        self.top_shapes: dict = {}      # bottom shapes -> top shapes that reshape() set

    def _where(self, method):
        cls = type(self.layer)
        return f"Python layer '{self.name}' ({cls.__module__}.{cls.__name__}).{method}"

    def _call(self, method, *args):
        try:
            return getattr(self.layer, method)(*args)
        except DragonError:
            raise
        except Exception as exc:
            raise PythonLayerError(f"{self._where(method)} failed: {type(exc).__name__}: "
                                   f"{exc}") from exc

    def shapes_for(self, bottom_shapes):
        """Top shapes for ``bottom_shapes``, asking the layer's reshape() once per shape set."""
        key = tuple(tuple(s) for s in bottom_shapes)
        shapes = self.top_shapes.get(key)
        if shapes is None:
            bottom = [ArrayBlob(np.zeros(s, np.float32)) for s in key]
            top = [ArrayBlob(np.zeros((0,), np.float32), resizable=True)
                   for _ in range(self.num_tops)]
            self._call("reshape", bottom, top)
            shapes = [t.shape for t in top]
            self.top_shapes[key] = shapes
        return shapes

    # -- the PythonCallback protocol ---------------------------------------------------------
    def infer(self, specs):
        shapes = self.shapes_for([s.shape for s in specs[:self.num_bottoms]])
        if not self.num_tops:   # the op still has one (empty) output so that it runs
            return [Spec((0,), np.dtype(np.float32))]
        return [Spec(tuple(s), np.dtype(np.float32)) for s in shapes]

    def forward(self, inputs, outputs):
        bottom = [ArrayBlob(x) for x in inputs[:self.num_bottoms]]
        top = [ArrayBlob(y) for y in outputs[:self.num_tops]]
        self._call("reshape", bottom, top)
        self._call("forward", bottom, top)

    def backward(self, inputs, outputs, grad_outputs, grad_inputs):
        nb = self.num_bottoms
        bottom = [ArrayBlob(x, dx if dx is not None else np.zeros_like(x))
                  for x, dx in zip(inputs[:nb], grad_inputs[:nb])]
        top = [ArrayBlob(y, dy) for y, dy in zip(outputs, grad_outputs)][:self.num_tops]
        propagate_down = [dx is not None for dx in grad_inputs[:nb]]
        params = [ArrayBlob(w, dw if dw is not None else np.zeros_like(w))
                  for w, dw in zip(inputs[nb:], grad_inputs[nb:])]
        saved = self.layer.blobs
        if params:
            self.layer.blobs = BlobVec(params)
        try:
            self._call("backward", top, propagate_down, bottom)
        finally:
            self.layer.blobs = saved


def _layer_class(ctx):
    p = ctx.param.python_param
    where = f"layer '{ctx.name}' (type Python)"
    if not p.module or not p.layer:
        raise ValueError(f"{where}: python_param needs 'module' and 'layer'")
    try:
        module = importlib.import_module(p.module)
    except Exception as exc:
        raise ImportError(f"{where}: cannot import python_param.module '{p.module}' "
                          f"(it must be on sys.path): {type(exc).__name__}: {exc}") from exc
    cls = getattr(module, p.layer, None)
    if cls is None:
        names = [n for n in dir(module) if isinstance(getattr(module, n), type)]
        close = difflib.get_close_matches(p.layer, names, n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise AttributeError(f"{where}: module '{p.module}' has no class '{p.layer}'{hint}")
    return cls


def _create(ctx):
    """Instantiate the layer, set param_str and phase, run setup() (once per Net)."""
    cls = _layer_class(ctx)
    layer = cls(ctx.param)
    if not hasattr(layer, "blobs"):     # a subclass __init__ that skipped the base one
        layer.blobs = BlobVec()
    layer.param_str = ctx.param.python_param.param_str
    layer.phase = TRAIN if ctx.phase == "TRAIN" else TEST
    callback = PythonLayerCallback(layer, ctx.name, len(ctx.bottoms), ctx.num_tops)
    bottom = [ArrayBlob(np.zeros(b.shape, np.float32), name=n)
              for b, n in zip(ctx.bottoms, ctx.param.bottom)]
    top = [ArrayBlob(np.zeros((0,), np.float32), name=n, resizable=True) for n in ctx.param.top]
    callback._call("setup", bottom, top)
    return callback


@lowering("Python")
def python(ctx):
    """Python: the layer's class runs inside the plan through the PythonCallback op."""
    callback = ctx.state.get("python_callback")
    if callback is None:
        callback = ctx.state["python_callback"] = _create(ctx)
        ctx.state["layer_object"] = callback.layer
        ctx.state["callback_key"] = ctx.register_callback(callback)
    layer = callback.layer
    params = []
    for i, blob in enumerate(layer.blobs):
        params.append(ctx.blob(i, blob.shape, None, value=blob.data))
    callback.top_shapes.clear()
    callback.shapes_for([b.shape for b in ctx.bottoms])
    n_out = max(1, ctx.num_tops)
    outs = ctx.op("PythonCallback", list(ctx.bottoms) + params,
                  callback=ctx.state["callback_key"], output_count=n_out)
    outs = outs if isinstance(outs, list) else [outs]
    if ctx.num_tops == 0:
        ctx.keep(outs[0])       # a layer without tops still runs on every forward pass
        return []
    return outs
