"""Caffe's FillerParameter as core fill ops.

    from dragon.vm.caffe.layers import fillers
    p = caffe_pb2.FillerParameter(type="xavier")
    fillers.filler_op(p, (20, 1, 5, 5))     # ('XavierFill', {'shape': [20, 1, 5, 5], ...})
    w = fillers.fill_array(p, (20, 1, 5, 5)) # a float32 array drawn once
    t = fillers.filler_tensor(p, (2, 3))     # a symbolic tensor, redrawn on every run

An unset filler is Caffe's default: constant 0. The gaussian filler's ``sparse``
(expected non-zeros per output) multiplies the draw by a Bernoulli mask of
probability ``sparse / shape[0]``, as Caffe does; ``filler_op`` alone cannot
say that, so ``fill_array`` and ``filler_tensor`` are the complete forms.
"""
from __future__ import annotations

import numpy as np

_FILL_OPS = {
    "constant": "Fill",
    "uniform": "UniformFill",
    "gaussian": "GaussianFill",
    "positive_unitball": "PositiveUnitballFill",
    "xavier": "XavierFill",
    "msra": "MSRAFill",
    "bilinear": "BilinearFill",
}
_VARIANCE_NORMS = {0: "FAN_IN", 1: "FAN_OUT", 2: "AVERAGE"}


def proto_float(value) -> float:
    """A proto ``float`` field as the decimal the user wrote (0.01, not 0.009999999776)."""
    return float(str(np.float32(value)))


def filler_types() -> list[str]:
    """The FillerParameter ``type`` names Caffe (and this front end) knows."""
    return sorted(_FILL_OPS)


def filler_op(filler, shape, dtype="float32"):
    """``(op_type, args)`` of the core fill op that draws ``filler`` for a blob of ``shape``.

    >>> filler_op(caffe_pb2.FillerParameter(type="constant", value=0.2), (10,))
    ('Fill', {'shape': [10], 'dtype': 'float32', 'value': 0.2})
    """
    kind = _kind(filler)
    shape = [int(d) for d in shape]
    args = {"shape": shape, "dtype": dtype}
    if kind == "constant":
        args["value"] = proto_float(filler.value) if filler is not None else 0.0
    elif kind == "uniform":
        args.update(low=proto_float(filler.min), high=proto_float(filler.max))
    elif kind == "gaussian":
        args.update(mean=proto_float(filler.mean), std=proto_float(filler.std))
    elif kind in ("xavier", "msra"):
        args["variance_norm"] = _VARIANCE_NORMS[int(filler.variance_norm)]
    return _FILL_OPS[kind], args


def sparse_probability(filler, shape):
    """Probability that a gaussian ``sparse`` filler keeps an entry, or None when dense."""
    if _kind(filler) != "gaussian" or filler.sparse < 0:
        return None
    if not shape:
        raise ValueError("the sparse gaussian filler needs a blob of at least one axis")
    return min(1.0, float(filler.sparse) / float(shape[0]))


def filler_tensor(filler, shape, apply=None, dtype="float32"):
    """A symbolic tensor that draws ``filler`` every time the graph runs (DummyData).

    ``apply(op_type, inputs, **args)`` builds the ops (a LayerContext's ``op``);
    the default is ``dragon.core.tensor.apply``.
    """
    if apply is None:
        from dragon.core.tensor import apply
    op_type, args = filler_op(filler, shape, dtype)
    value = apply(op_type, [], **args)
    keep = sparse_probability(filler, shape)
    if keep is not None:
        mask = apply("RandomBinomial", [], shape=[int(d) for d in shape], dtype=dtype, p=keep)
        value = apply("Mul", [value, mask])
    return value


def fill_array(filler, shape, dtype="float32") -> np.ndarray:
    """A fresh array of ``shape`` drawn once from ``filler`` by the core fill ops.

    >>> fill_array(caffe_pb2.FillerParameter(type="constant", value=1), (2,))
    array([1., 1.], dtype=float32)
    """
    from dragon.core import graph, workspace
    from dragon.proto import dragon_pb2

    op_type, args = filler_op(filler, shape, dtype)
    graph_def = dragon_pb2.GraphDef(name="caffe_filler")
    draw = graph_def.op.add(type=op_type, name="caffe_filler_draw", output=["_caffe_filler_draw"])
    draw.arg.extend(graph.encode_arg(k, v) for k, v in args.items())
    result = "_caffe_filler_draw"
    keep = sparse_probability(filler, shape)
    if keep is not None:
        mask = graph_def.op.add(type="RandomBinomial", name="caffe_filler_mask",
                                output=["_caffe_filler_mask"])
        mask.arg.extend(graph.encode_arg(k, v) for k, v in
                        {"shape": [int(d) for d in shape], "dtype": dtype, "p": keep}.items())
        graph_def.op.add(type="Mul", name="caffe_filler_sparse",
                         input=["_caffe_filler_draw", "_caffe_filler_mask"],
                         output=["_caffe_filler_sparse"])
        result = "_caffe_filler_sparse"
    names = [op.output[0] for op in graph_def.op]
    try:
        workspace.run_graph_once(graph_def, outputs=[result])
        return np.array(workspace.fetch_tensor(result), dtype=dtype)
    finally:
        for name in names:
            workspace.remove_tensor(name)


def _kind(filler):
    kind = "constant" if filler is None else (filler.type or "constant")
    if kind not in _FILL_OPS:
        raise NotImplementedError(
            f"unknown filler type '{kind}'; Caffe's fillers are {', '.join(filler_types())}")
    return kind
