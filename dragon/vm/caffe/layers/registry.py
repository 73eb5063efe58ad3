"""Layer lowerings: each Caffe layer type becomes core ops, nothing else.

A lowering is a function of a ``LayerContext`` returning the layer's top tensors::

    @lowering("ReLU")
    def relu(ctx):
        slope = ctx.param.relu_param.negative_slope
        return [ctx.op("Relu", [ctx.bottoms[0]], slope=slope)]

    @lowering("InnerProduct")
    def inner_product(ctx):
        p = ctx.param.inner_product_param
        x = ctx.bottoms[0]
        k = ...                                   # features from x.shape and p.axis
        w = ctx.blob(0, (p.num_output, k), p.weight_filler)
        ...

The Net (``dragon/vm/caffe/net.py``) implements ``LayerContext``: it owns the
learnable blobs (sharing by ParamSpec name, lr_mult/decay_mult), the net's input
blobs and the naming of tops; lowerings only build ops.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class LayerLowering:
    type: str
    build: Callable       # build(ctx) -> list of top Tensors
    is_loss: bool         # tops default to loss_weight 1 (Caffe's *Loss layers)
    is_data: bool         # produces net inputs (Input, Data, MemoryData, ...)


_LOWERINGS: dict[str, LayerLowering] = {}


def lowering(*type_names, loss=False, data=False):
    """Register the decorated function as the lowering of Caffe layer ``type_names``."""
    def wrap(fn):
        for name in type_names:
            if name in _LOWERINGS:
                raise ValueError(f"Caffe layer type '{name}' is lowered twice")
            _LOWERINGS[name] = LayerLowering(name, fn, loss, data)
        return fn
    return wrap


def get(type_name: str, layer_name: str = "?") -> LayerLowering:
    """The lowering of ``type_name``; an unknown type names the layer and close types."""
    try:
        return _LOWERINGS[type_name]
    except KeyError:
        close = difflib.get_close_matches(type_name, list(_LOWERINGS), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"layer '{layer_name}' has unknown type '{type_name}'{hint}") from None


def layer_type_list() -> list[str]:
    """Every Caffe layer type this front end lowers (pycaffe's ``caffe.layer_type_list``)."""
    return sorted(_LOWERINGS)


class LayerContext:
    """What a lowering sees of its layer; the Net implements the methods.

    Attributes: ``param`` (the caffe_pb2.LayerParameter), ``name``, ``type``,
    ``bottoms`` (input Tensors, shapes known), ``phase`` ('TRAIN' or 'TEST'),
    ``num_tops``.
    """

    param = None
    name = ""
    type = ""
    bottoms: list = []
    phase = "TEST"
    num_tops = 0

    def blob(self, index, shape, filler=None, dtype="float32"):
        """Learnable blob ``index`` of this layer (created with ``filler`` or shared)."""
        raise NotImplementedError

    def input(self, top_index, shape, dtype="float32"):
        """A net input blob for top ``top_index`` that the program fills (Input, data layers)."""
        raise NotImplementedError

    def op(self, op_type, inputs, **args):
        """Apply a core op, tagged with this layer for error messages."""
        raise NotImplementedError
