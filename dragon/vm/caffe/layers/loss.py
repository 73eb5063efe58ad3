"""Loss layers (and Accuracy): each top 0 is a scalar; loss layers default to loss_weight 1.

    layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss"
            loss_param { ignore_label: 255 normalization: VALID } }

becomes ``SoftmaxCrossEntropy(ip2, label, ignore_label=255, normalization="VALID")``.
``loss_param.normalization`` (FULL, VALID, BATCH_SIZE, NONE) and the legacy
``normalize`` flag are honoured wherever Caffe honours them.
"""
from __future__ import annotations

import numpy as np

from dragon.vm.caffe.layers.common import canonical_axis, count, layer_error
from dragon.vm.caffe.layers.fillers import proto_float
from dragon.vm.caffe.layers.registry import lowering

_NORMALIZATIONS = {0: "FULL", 1: "VALID", 2: "BATCH_SIZE", 3: "NONE"}


def normalization(ctx, default="VALID"):
    """The normalization mode: ``normalization``, else the legacy ``normalize``, else ``default``."""
    lp = ctx.param.loss_param
    if lp.HasField("normalization"):
        return _NORMALIZATIONS[int(lp.normalization)]
    if lp.HasField("normalize"):
        return "VALID" if lp.normalize else "BATCH_SIZE"
    return default


def _no_gradient(ctx, t):
    """Labels and targets: Caffe never propagates into them, even with force_backward."""
    return ctx.op("StopGradient", [t])


def _ignore_args(ctx):
    lp = ctx.param.loss_param
    has = lp.HasField("ignore_label")
    return {"has_ignore_label": has, "ignore_label": int(lp.ignore_label) if has else -1}


def _check_labels(ctx, x, label, axis):
    expected = count(x.shape, 0, axis) * count(x.shape, axis + 1)
    if count(label.shape) != expected:
        raise layer_error(ctx, f"label '{ctx.param.bottom[1]}' {tuple(label.shape)} holds "
                               f"{count(label.shape)} labels but prediction "
                               f"'{ctx.param.bottom[0]}' {tuple(x.shape)} needs {expected} "
                               f"(one per position off axis {axis})")


def _labels_like(ctx, x, label, axis):
    """The labels shaped as ``x`` without its class axis (what the core ops expect)."""
    shape = list(x.shape[:axis]) + list(x.shape[axis + 1:])
    return label if list(label.shape) == shape else ctx.op("Reshape", [label], shape=shape)


@lowering("SoftmaxWithLoss", loss=True)
def softmax_with_loss(ctx):
    """SoftmaxWithLoss -> SoftmaxCrossEntropy; an optional second top is the softmax."""
    x, label = ctx.bottoms[0], _no_gradient(ctx, ctx.bottoms[1])
    axis = canonical_axis(ctx, ctx.param.softmax_param.axis, x.ndim)
    _check_labels(ctx, x, label, axis)
    loss, prob = ctx.op("SoftmaxCrossEntropy", [x, _labels_like(ctx, x, label, axis)], axis=axis,
                        normalization=normalization(ctx), **_ignore_args(ctx))
    return [loss, prob][:max(1, ctx.num_tops)]


@lowering("SigmoidCrossEntropyLoss", loss=True)
def sigmoid_cross_entropy_loss(ctx):
    """SigmoidCrossEntropyLoss -> SigmoidCrossEntropy (normalization default BATCH_SIZE)."""
    x, target = ctx.bottoms[0], _no_gradient(ctx, ctx.bottoms[1])
    if count(x.shape) != count(target.shape):
        raise layer_error(ctx, f"bottoms '{ctx.param.bottom[0]}' {tuple(x.shape)} and "
                               f"'{ctx.param.bottom[1]}' {tuple(target.shape)} must have the "
                               "same count")
    if tuple(target.shape) != tuple(x.shape):
        target = ctx.op("Reshape", [target], shape=list(x.shape))
    return [ctx.op("SigmoidCrossEntropy", [x, target],
                   normalization=normalization(ctx, "BATCH_SIZE"), **_ignore_args(ctx))]


@lowering("EuclideanLoss", loss=True)
def euclidean_loss(ctx):
    """EuclideanLoss -> EuclideanLoss: sum((a - b)^2) / 2N."""
    a, b = ctx.bottoms[:2]
    if count(a.shape) != count(b.shape):
        raise layer_error(ctx, f"bottoms {tuple(a.shape)} and {tuple(b.shape)} must have the "
                               "same count")
    if tuple(b.shape) != tuple(a.shape):
        b = ctx.op("Reshape", [b], shape=list(a.shape))
    return [ctx.op("EuclideanLoss", [a, b])]


@lowering("HingeLoss", loss=True)
def hinge_loss(ctx):
    """HingeLoss -> HingeLoss (norm L1 or L2) of (N, C) scores and N labels."""
    x, label = ctx.bottoms[0], _no_gradient(ctx, ctx.bottoms[1])
    norm = {1: "L1", 2: "L2"}[int(ctx.param.hinge_loss_param.norm)]
    n = x.shape[0]
    scores = x if x.ndim == 2 else ctx.op("Reshape", [x], shape=[n, count(x.shape, 1)])
    if count(label.shape) != n:
        raise layer_error(ctx, f"label {tuple(label.shape)} needs one label per item of "
                               f"{tuple(x.shape)}")
    label = label if tuple(label.shape) == (n,) else ctx.op("Reshape", [label], shape=[n])
    return [ctx.op("HingeLoss", [scores, label], norm=norm)]


@lowering("MultinomialLogisticLoss", loss=True)
def multinomial_logistic_loss(ctx):
    """MultinomialLogisticLoss -> MultinomialLogisticLoss of (N, C) probabilities."""
    p, label = ctx.bottoms[0], _no_gradient(ctx, ctx.bottoms[1])
    n = p.shape[0]
    probs = p if p.ndim == 2 else ctx.op("Reshape", [p], shape=[n, count(p.shape, 1)])
    if count(label.shape) != n:
        raise layer_error(ctx, f"label {tuple(label.shape)} needs one label per item of "
                               f"{tuple(p.shape)}")
    label = label if tuple(label.shape) == (n,) else ctx.op("Reshape", [label], shape=[n])
    return [ctx.op("MultinomialLogisticLoss", [probs, label])]


@lowering("ContrastiveLoss", loss=True)
def contrastive_loss(ctx):
    """ContrastiveLoss -> ContrastiveLoss(margin, legacy_version) of pairs and similarity."""
    a, b, similar = ctx.bottoms[0], ctx.bottoms[1], _no_gradient(ctx, ctx.bottoms[2])
    p = ctx.param.contrastive_loss_param
    n = a.shape[0]
    a, b = (t if t.ndim == 2 else ctx.op("Reshape", [t], shape=[n, count(t.shape, 1)])
            for t in (a, b))
    similar = similar if similar.ndim == 1 else ctx.op("Reshape", [similar], shape=[n])
    return [ctx.op("ContrastiveLoss", [a, b, similar], margin=proto_float(p.margin),
                   legacy_version=bool(p.legacy_version))]


@lowering("InfogainLoss", loss=True)
def infogain_loss(ctx):
    """InfogainLoss: -sum_k H[label, k] log softmax(x)_k, H from bottom 2 or the ``source`` file.

    As Caffe 1.0, the softmax runs inside the layer along ``axis``; labels equal
    to ``ignore_label`` count for nothing; the sum is normalized (default VALID).
    An optional second top is the softmax.
    """
    x, label = ctx.bottoms[0], _no_gradient(ctx, ctx.bottoms[1])
    p = ctx.param.infogain_loss_param
    axis = canonical_axis(ctx, p.axis, x.ndim)
    _check_labels(ctx, x, label, axis)
    classes = x.shape[axis]
    h = (_no_gradient(ctx, ctx.bottoms[2]) if len(ctx.bottoms) > 2
         else _infogain_matrix(ctx, p.source, classes))
    if count(h.shape) != classes * classes:
        raise layer_error(ctx, f"the infogain matrix {tuple(h.shape)} must be {classes} x "
                               f"{classes}")
    if tuple(h.shape) != (classes, classes):
        h = ctx.op("Reshape", [h], shape=[classes, classes])
    log_prob = _classes_last(ctx, ctx.op("LogSoftmax", [x], axis=axis), axis, classes)
    labels = ctx.op("Reshape", [label], shape=[-1])
    loss, normalizer = _weighted_nll(ctx, log_prob, labels, h, x, axis)
    tops = [ctx.op("Div", [loss, normalizer])]
    if ctx.num_tops > 1:
        tops.append(ctx.op("Softmax", [x], axis=axis))
    return tops


def _classes_last(ctx, x, axis, classes):
    """``x`` as (positions, classes), the class axis moved last."""
    if axis != x.ndim - 1:
        perm = [i for i in range(x.ndim) if i != axis] + [axis]
        x = ctx.op("Transpose", [x], perm=perm)
    return ctx.op("Reshape", [x], shape=[-1, classes])


def _valid_mask(ctx, labels):
    """(mask of counted labels as float32, labels with ignored ones replaced by 0, as int64)."""
    args = _ignore_args(ctx)
    if not args["has_ignore_label"]:
        return None, ctx.op("Cast", [labels], dtype="int64")
    ignore = ctx.op("Fill", [], shape=list(labels.shape), value=float(args["ignore_label"]))
    valid = ctx.op("Cast", [ctx.op("NotEqual", [labels, ignore])], dtype="float32")
    return valid, ctx.op("Cast", [ctx.op("Mul", [labels, valid])], dtype="int64")


def _normalizer(ctx, mode, valid, positions, outer):
    if mode == "VALID" and valid is not None:
        one = ctx.op("Fill", [], shape=[], value=1.0)
        return ctx.op("Maximum", [ctx.op("ReduceSum", [valid]), one])
    value = {"FULL": positions, "VALID": positions, "BATCH_SIZE": outer, "NONE": 1}[mode]
    return ctx.op("Fill", [], shape=[], value=float(max(1, value)))


def _weighted_nll(ctx, log_prob, labels, h, x, axis):
    valid, index = _valid_mask(ctx, labels)
    rows = ctx.op("Gather", [h, index], axis=0)                       # H[label_i, :]
    per_position = ctx.op("ReduceSum", [ctx.op("Mul", [rows, log_prob])], axes=[1])
    if valid is not None:
        per_position = ctx.op("Mul", [per_position, valid])
    loss = ctx.op("Neg", [ctx.op("ReduceSum", [per_position])])
    normalizer = _normalizer(ctx, normalization(ctx), valid, count(x.shape) // x.shape[axis],
                             count(x.shape, 0, axis))
    return loss, normalizer


def _infogain_matrix(ctx, source, classes):
    if not source:
        raise layer_error(ctx, "needs the infogain matrix H as bottom 2 or "
                               "infogain_loss_param.source (a binaryproto file)")
    from dragon.vm.caffe import proto_io
    from dragon.vm.caffe.proto import caffe_pb2
    blob = proto_io.read_binary(source, caffe_pb2.BlobProto)
    values = np.asarray(blob.double_data if len(blob.double_data) else blob.data, "float32")
    if values.size != classes * classes:
        raise layer_error(ctx, f"the infogain matrix in '{source}' holds {values.size} values; "
                               f"{classes} classes need {classes * classes}")
    return ctx.op("GivenTensorFill", [], values=values.tolist(), shape=[classes, classes])


@lowering("Accuracy")
def accuracy(ctx):
    """Accuracy -> Accuracy (top_k, axis, ignore_label); a second top holds per-class accuracy."""
    x, label = ctx.bottoms[0], _no_gradient(ctx, ctx.bottoms[1])
    p = ctx.param.accuracy_param
    axis = canonical_axis(ctx, p.axis, x.ndim)
    _check_labels(ctx, x, label, axis)
    has_ignore = p.HasField("ignore_label")
    ignore = {"has_ignore_label": has_ignore,
              "ignore_label": int(p.ignore_label) if has_ignore else -1}
    labels = _labels_like(ctx, x, label, axis)
    tops = [ctx.op("Accuracy", [x, labels], axis=axis, top_k=int(p.top_k), **ignore)]
    if ctx.num_tops > 1:
        tops.append(_per_class_accuracy(ctx, x, label, axis, int(p.top_k), ignore))
    return tops


def _per_class_accuracy(ctx, x, label, axis, top_k, ignore):
    # Caffe counts a hit when fewer than top_k other classes score >= the label's score.
    classes = x.shape[axis]
    scores = _classes_last(ctx, x, axis, classes)                     # (M, C)
    labels = ctx.op("Reshape", [label], shape=[-1])
    if ignore["has_ignore_label"]:
        fill = ctx.op("Fill", [], shape=list(labels.shape), value=float(ignore["ignore_label"]))
        valid = ctx.op("Cast", [ctx.op("NotEqual", [labels, fill])], dtype="float32")
        index = ctx.op("Cast", [ctx.op("Mul", [labels, valid])], dtype="int64")
    else:
        valid, index = None, ctx.op("Cast", [labels], dtype="int64")
    one_hot = ctx.op("OneHot", [index], depth=classes)                # (M, C)
    if valid is not None:
        one_hot = ctx.op("Mul", [one_hot, ctx.op("ExpandDims", [valid], axis=1)])
    label_score = ctx.op("ReduceSum", [ctx.op("Mul", [scores, one_hot])], axes=[1],
                         keepdims=True)
    at_least = ctx.op("ReduceSum", [ctx.op("Cast", [ctx.op("GreaterEqual", [scores, label_score])],
                                           dtype="float32")], axes=[1], keepdims=True)
    limit = ctx.op("Fill", [], shape=[1, 1], value=float(top_k) + 1.0)
    hit = ctx.op("Cast", [ctx.op("Less", [at_least, limit])], dtype="float32")
    hits = ctx.op("ReduceSum", [ctx.op("Mul", [one_hot, hit])], axes=[0])
    totals = ctx.op("ReduceSum", [one_hot], axes=[0])
    one = ctx.op("Fill", [], shape=[classes], value=1.0)
    return ctx.op("Div", [hits, ctx.op("Maximum", [totals, one])])

