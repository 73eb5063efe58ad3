"""Losses and metrics: Caffe's loss layers and Accuracy, Theano's and Caffe2's cross entropies.

Caffe's losses return a scalar divided by a normalizer that the ``normalization``
argument names: "VALID" the number of labels that are not ``ignore_label``, "FULL"
the number of labels, "BATCH_SIZE" the outer dimension N, "NONE" 1 (never less
than 1, so a batch without a valid label costs 0). Theano's and Caffe2's losses
return one value per row. Labels are class indices of any integer or float dtype
and get no gradient. Logarithms of probabilities floor them at ``LOG_FLOOR``
(Caffe's and Caffe2's kLOG_THRESHOLD), so a zero probability costs 46, not inf.
Front ends apply loss weights.

    loss, prob = dragon.ops.softmax_cross_entropy(
        logits, labels, ignore_label=255, has_ignore_label=True)
"""
from __future__ import annotations

import numpy as np

from dragon.core.errors import NoGradientError, ShapeError
from dragon.ops.math import _unbroadcast
from dragon.ops.registry import Spec, broadcast_shapes, normalize_axis, register

LOG_FLOOR = 1e-20
NORMALIZATIONS = ("VALID", "FULL", "BATCH_SIZE", "NONE")
_IGNORE_ARGS = {"ignore_label": -1, "has_ignore_label": False}


# -- shared pieces ---------------------------------------------------------------------------

def _split_at(shape, axis):
    """(outer, channels, inner) sizes of ``shape`` around ``axis``."""
    return (int(np.prod(shape[:axis], dtype=np.int64)), int(shape[axis]),
            int(np.prod(shape[axis + 1:], dtype=np.int64)))


def _rows(shape):
    """(N, entries per row) of a shape whose first axis is the batch."""
    return int(shape[0]), int(np.prod(shape[1:], dtype=np.int64))


def _float_input(spec, what):
    if spec.dtype.kind != "f":
        raise ShapeError(f"{what} must be a float tensor, got {spec.dtype}")


def _batched(spec, what, min_ndim=1):
    _float_input(spec, what)
    if spec.ndim < min_ndim:
        layout = "(N, C, ...)" if min_ndim > 1 else "(N, ...)"
        raise ShapeError(f"{what} {tuple(spec.shape)} must have shape {layout}")


def _same_shape(a, b, what_a, what_b):
    if tuple(a.shape) != tuple(b.shape):
        raise ShapeError(f"{what_b} {tuple(b.shape)} must have the shape of {what_a} "
                         f"{tuple(a.shape)}")


def _label_count(labels, count, positions):
    """Labels hold one class index per position; any shape with that many entries will do."""
    if labels.size != count:
        raise ShapeError(f"labels {tuple(labels.shape)} have {labels.size} entries; expected "
                         f"{count}, one per {positions}")


def _check_normalization(normalization, allowed=NORMALIZATIONS):
    if normalization not in allowed:
        raise ShapeError(f"normalization must be one of {list(allowed)}, got {normalization!r}")


def _normalizer(normalization, *, valid, full, batch):
    count = {"VALID": valid, "FULL": full, "BATCH_SIZE": batch, "NONE": 1}[normalization]
    return max(1.0, float(count))


def _ignored(has_ignore_label, ignore_label):
    return ignore_label if has_ignore_label else None


def _class_labels(xp, labels, shape, num_classes, ignore_label=None):
    """int64 labels of ``shape`` and the mask of the counted ones (None: all count).

    Ignored labels are replaced by class 0 so that they index safely; callers mask them.
    """
    labels = labels.reshape(shape).astype(xp.int64, copy=False)
    keep = None if ignore_label is None else labels != ignore_label
    bad = (labels < 0) | (labels >= num_classes)
    if keep is not None:
        bad &= keep
    if bool(bad.any()):
        raise ValueError(f"label {int(labels[bad][0])} is not a class index in "
                         f"[0, {num_classes})")
    if keep is not None:
        labels = xp.where(keep, labels, 0)
    return labels, keep


def _at_labels(xp, labels):
    """Index picking from an (outer, C, inner) array the classes of (outer, inner) ``labels``."""
    outer, inner = labels.shape
    return xp.arange(outer)[:, None], labels, xp.arange(inner)[None, :]


def _like_input(x, *rest, **args):
    """Shape rule of a gradient op whose output is shaped like its first input."""
    return x


# -- softmax cross entropy ---------------------------------------------------------------------

_SOFTMAX_CE_ARGS = {"axis": 1, **_IGNORE_ARGS, "normalization": "VALID"}


@register("SoftmaxCrossEntropy", inputs=2, outputs=2, args=_SOFTMAX_CE_ARGS)
def softmax_cross_entropy(xp, logits, labels, *, out, axis, ignore_label, has_ignore_label,
                          normalization):
    """Loss = -sum(log softmax(X)[label]) / normalizer; also outputs P = softmax(X).

    The softmax runs along ``axis``; every other position holds one label, which
    does not count when it equals ``ignore_label`` (Caffe's SoftmaxWithLoss).
    """
    loss, prob = out
    outer, classes, inner = _split_at(logits.shape, axis % logits.ndim)
    x = logits.reshape(outer, classes, inner)
    p = prob.reshape(outer, classes, inner)
    shift = x.max(axis=1)
    xp.subtract(x, shift[:, None, :], out=p)
    xp.exp(p, out=p)
    total = p.sum(axis=1)
    xp.divide(p, total[:, None, :], out=p)
    labels, keep = _class_labels(xp, labels, (outer, inner), classes,
                                 _ignored(has_ignore_label, ignore_label))
    # -log softmax from the logits rather than log(prob): exact where prob underflows to 0.
    nll = xp.log(total)
    nll += shift
    nll -= x[_at_labels(xp, labels)]
    valid = nll.size
    if keep is not None:
        nll *= keep
        valid = keep.sum()
    loss[...] = nll.sum() / _normalizer(normalization, valid=valid, full=nll.size, batch=outer)


@softmax_cross_entropy.shape
def _(logits, labels, *, axis, ignore_label, has_ignore_label, normalization):
    _batched(logits, "logits")
    axis = normalize_axis(axis, logits.ndim)
    _check_normalization(normalization)
    outer, _, inner = _split_at(logits.shape, axis)
    _label_count(labels, outer * inner,
                 f"position of logits {tuple(logits.shape)} without axis {axis}")
    return [Spec((), logits.dtype), logits]


@softmax_cross_entropy.grad
def _(g):
    inputs = [g.Y(1), g.X(1), g.dY(0)]
    if g.has_dY(1):  # the probabilities feed the cost too: add softmax's own gradient
        inputs.append(g.dY(1))
    return [g.op("SoftmaxCrossEntropyGradient", inputs, **g.args), None]


@register("SoftmaxCrossEntropyGradient", inputs=(3, 4), args=_SOFTMAX_CE_ARGS)
def softmax_cross_entropy_gradient(xp, prob, labels, dloss, dprob=None, *, out, axis,
                                   ignore_label, has_ignore_label, normalization, scratch=()):
    """dX = (P - onehot(label)) * dLoss / normalizer, 0 at ignored positions.

    When the probabilities feed the cost too, their gradient dP adds
    P * (dP - sum(dP * P)) along ``axis``.
    """
    outer, classes, inner = _split_at(prob.shape, axis % prob.ndim)
    p = prob.reshape(outer, classes, inner)
    dx = out.reshape(outer, classes, inner)
    labels, keep = _class_labels(xp, labels, (outer, inner), classes,
                                 _ignored(has_ignore_label, ignore_label))
    xp.copyto(dx, p)
    dx[_at_labels(xp, labels)] -= 1
    valid = outer * inner
    if keep is not None:
        xp.multiply(dx, keep[:, None, :], out=dx)
        valid = keep.sum()
    norm = _normalizer(normalization, valid=valid, full=outer * inner, batch=outer)
    xp.multiply(dx, dloss / norm, out=dx)
    if dprob is not None:
        work = scratch[0].reshape(outer, classes, inner)
        _add_softmax_gradient(xp, dx, p, dprob.reshape(outer, classes, inner), work)


def _add_softmax_gradient(xp, dx, p, dp, work):
    """dX += P * (dP - sum(dP * P)) along axis 1: the backward of softmax."""
    dot = xp.einsum("ocj,ocj->oj", dp, p)
    xp.subtract(dp, dot[:, None, :], out=work)
    work *= p
    dx += work


softmax_cross_entropy_gradient.shape(_like_input)


@softmax_cross_entropy_gradient.scratch
def _(prob, labels, dloss, dprob=None, **args):
    return [] if dprob is None else [prob]


# -- sigmoid cross entropy ---------------------------------------------------------------------

_SIGMOID_CE_ARGS = {**_IGNORE_ARGS, "normalization": "BATCH_SIZE"}


@register("SigmoidCrossEntropy", inputs=2, args=_SIGMOID_CE_ARGS)
def sigmoid_cross_entropy(xp, logits, targets, *, out, scratch, ignore_label, has_ignore_label,
                          normalization):
    """Loss = sum(max(X, 0) - X * T + log(1 + exp(-|X|))) / normalizer.

    That is the cross entropy of sigmoid(X) with targets T, free of overflow;
    targets equal to ``ignore_label`` do not count (Caffe's SigmoidCrossEntropyLoss).
    """
    terms, work = scratch
    targets = targets.reshape(logits.shape)
    xp.abs(logits, out=terms)
    xp.negative(terms, out=terms)
    xp.exp(terms, out=terms)
    xp.log1p(terms, out=terms)
    xp.maximum(logits, 0, out=work)
    terms += work
    xp.multiply(logits, targets, out=work)
    terms -= work
    keep = _kept_targets(targets, _ignored(has_ignore_label, ignore_label))
    valid = terms.size
    if keep is not None:
        terms *= keep
        valid = keep.sum()
    norm = _normalizer(normalization, valid=valid, full=terms.size, batch=logits.shape[0])
    xp.sum(terms, out=out)
    xp.divide(out, norm, out=out)


def _kept_targets(targets, ignore_label):
    return None if ignore_label is None else targets != ignore_label


@sigmoid_cross_entropy.shape
def _(logits, targets, *, ignore_label, has_ignore_label, normalization):
    _batched(logits, "logits")
    _check_normalization(normalization)
    if targets.size != logits.size:
        raise ShapeError(f"targets {tuple(targets.shape)} must have as many entries as "
                         f"logits {tuple(logits.shape)}")
    return Spec((), logits.dtype)


@sigmoid_cross_entropy.scratch
def _(logits, targets, **args):
    return [logits, logits]


@sigmoid_cross_entropy.grad
def _(g):
    _no_gradient_for(g, [1], "targets")
    return [g.op("SigmoidCrossEntropyGradient", [g.X(0), g.X(1), g.dY(0)], **g.args), None]


def _no_gradient_for(g, indices, what):
    if any(g.needs(i) for i in indices):
        raise NoGradientError(
            f"op '{g.node.name}' ({g.node.type}) has no gradient for its {what}, but the cost "
            f"depends on a wrt tensor through them; use stop_gradient on them")


@register("SigmoidCrossEntropyGradient", inputs=3, args=_SIGMOID_CE_ARGS)
def sigmoid_cross_entropy_gradient(xp, logits, targets, dloss, *, out, ignore_label,
                                   has_ignore_label, normalization):
    """dX = (sigmoid(X) - T) * dLoss / normalizer, 0 where T is ignore_label."""
    targets = targets.reshape(logits.shape)
    _sigmoid(xp, logits, out)
    xp.subtract(out, targets, out=out)
    keep = _kept_targets(targets, _ignored(has_ignore_label, ignore_label))
    valid = out.size
    if keep is not None:
        xp.multiply(out, keep, out=out)
        valid = keep.sum()
    norm = _normalizer(normalization, valid=valid, full=out.size, batch=logits.shape[0])
    xp.multiply(out, dloss / norm, out=out)


def _sigmoid(xp, x, out):
    """out = 1 / (1 + exp(-x)), computed as (1 + tanh(x / 2)) / 2, which cannot overflow."""
    xp.multiply(x, 0.5, out=out)
    xp.tanh(out, out=out)
    out += 1
    out *= 0.5


sigmoid_cross_entropy_gradient.shape(_like_input)


# -- Euclidean and smooth L1 -------------------------------------------------------------------

@register("EuclideanLoss", inputs=2)
def euclidean_loss(xp, a, b, *, out, scratch):
    """Loss = sum((A - B)^2) / (2N), N = A.shape[0] (Caffe's EuclideanLoss)."""
    diff = scratch[0].reshape(-1)
    xp.subtract(a.reshape(-1), b.reshape(-1), out=diff)
    out[...] = xp.dot(diff, diff) / (2 * a.shape[0])


@euclidean_loss.shape
def _(a, b):
    _batched(a, "A")
    _same_shape(a, b, "A", "B")
    return Spec((), a.dtype)


@euclidean_loss.scratch
def _(a, b):
    return [a]


@euclidean_loss.grad
def _(g):
    da = g.op("EuclideanLossGradient", [g.X(0), g.X(1), g.dY(0)])
    return [da if g.needs(0) else None, g.op("Neg", [da]) if g.needs(1) else None]


@register("EuclideanLossGradient", inputs=3)
def euclidean_loss_gradient(xp, a, b, dloss, *, out):
    """dA = (A - B) * dLoss / N (dB is its negation)."""
    xp.subtract(a, b, out=out)
    xp.multiply(out, dloss / a.shape[0], out=out)


euclidean_loss_gradient.shape(_like_input)

_SMOOTH_L1_ARGS = {"sigma": 1.0, "normalization": "BATCH_SIZE"}
_SMOOTH_L1_NORMALIZATIONS = ("FULL", "BATCH_SIZE", "NONE")


@register("SmoothL1Loss", inputs=(2, 4), args=_SMOOTH_L1_ARGS)
def smooth_l1_loss(xp, x, target, inside_w=None, outside_w=None, *, out, scratch, sigma,
                   normalization):
    """Loss = sum(W_out * f(W_in * (X - T))) / normalizer, f the smooth L1 function.

    f(d) = 0.5 (sigma d)^2 where |d| < 1 / sigma^2, else |d| - 0.5 / sigma^2; the
    weights are optional (Fast R-CNN's SmoothL1Loss).
    """
    scaled, half_slope = scratch
    _scaled_error(xp, x, target, inside_w, sigma, out=scaled)
    # With c = f'(d) = clip(sigma^2 d, -1, 1), both pieces of f are c (sigma^2 d - c / 2) / sigma^2.
    xp.clip(scaled, -1, 1, out=half_slope)
    half_slope *= 0.5
    scaled -= half_slope
    scaled *= half_slope
    if outside_w is not None:
        scaled *= outside_w
    norm = _normalizer(normalization, valid=x.size, full=x.size, batch=x.shape[0])
    out[...] = scaled.sum() * (2.0 / (sigma * sigma * norm))


def _scaled_error(xp, x, target, inside_w, sigma, *, out):
    """out = sigma^2 * W_in * (X - T)."""
    xp.subtract(x, target, out=out)
    if inside_w is not None:
        out *= inside_w
    out *= sigma * sigma


@smooth_l1_loss.shape
def _(x, target, inside_w=None, outside_w=None, *, sigma, normalization):
    _batched(x, "X")
    for what, spec in (("target", target), ("inside weights", inside_w),
                       ("outside weights", outside_w)):
        if spec is not None:
            _same_shape(x, spec, "X", what)
    if not sigma > 0:
        raise ShapeError(f"sigma must be positive, got {sigma}")
    _check_normalization(normalization, _SMOOTH_L1_NORMALIZATIONS)
    return Spec((), x.dtype)


@smooth_l1_loss.scratch
def _(x, *rest, **args):
    return [x, x]


@smooth_l1_loss.grad
def _(g):
    _no_gradient_for(g, range(2, g.num_inputs), "weights")
    inputs = [g.X(0), g.X(1), g.dY(0)] + [g.X(i) for i in range(2, g.num_inputs)]
    dx = g.op("SmoothL1LossGradient", inputs, **g.args)
    weights = [None] * (g.num_inputs - 2)
    return [dx if g.needs(0) else None, g.op("Neg", [dx]) if g.needs(1) else None] + weights


@register("SmoothL1LossGradient", inputs=(3, 5), args=_SMOOTH_L1_ARGS)
def smooth_l1_loss_gradient(xp, x, target, dloss, inside_w=None, outside_w=None, *, out, sigma,
                            normalization):
    """dX = W_out * W_in * clip(sigma^2 W_in (X - T), -1, 1) * dLoss / normalizer; dT = -dX."""
    _scaled_error(xp, x, target, inside_w, sigma, out=out)
    xp.clip(out, -1, 1, out=out)
    for weights in (inside_w, outside_w):
        if weights is not None:
            out *= weights
    norm = _normalizer(normalization, valid=x.size, full=x.size, batch=x.shape[0])
    xp.multiply(out, dloss / norm, out=out)


smooth_l1_loss_gradient.shape(_like_input)


# -- classification losses on scores or probabilities, one label per row -------------------------

def _class_rows_shape(scores, labels, what):
    _batched(scores, what, min_ndim=2)
    n, _ = _rows(scores.shape)
    _label_count(labels, n, f"row of {what} {tuple(scores.shape)}")
    return Spec((), scores.dtype)


def _row_labels(xp, scores, labels):
    """(N, C, 1) view of per-row class scores and their (N, 1) labels."""
    n, classes = _rows(scores.shape)
    labels, _ = _class_labels(xp, labels, (n, 1), classes)
    return scores.reshape(n, classes, 1), labels


_HINGE_NORMS = ("L1", "L2")


@register("HingeLoss", inputs=2, args={"norm": "L1"})
def hinge_loss(xp, scores, labels, *, out, scratch, norm):
    """Loss = sum(max(0, 1 - Y * S)^p) / N, Y = +1 at each row's label and -1 elsewhere.

    p is 1 for ``norm`` "L1" and 2 for "L2" (Caffe's HingeLoss).
    """
    s, labels = _row_labels(xp, scores, labels)
    margins = _hinge_margins(xp, s, labels, scratch[0].reshape(s.shape)).reshape(-1)
    total = margins.sum() if norm == "L1" else xp.dot(margins, margins)
    out[...] = total / scores.shape[0]


def _hinge_margins(xp, s, labels, out):
    """out = max(0, 1 - Y * S) with Y = +1 at the label and -1 elsewhere."""
    xp.copyto(out, s)
    out[_at_labels(xp, labels)] *= -1
    out += 1
    xp.maximum(out, 0, out=out)
    return out


@hinge_loss.shape
def _(scores, labels, *, norm):
    if norm not in _HINGE_NORMS:
        raise ShapeError(f"norm must be one of {list(_HINGE_NORMS)}, got {norm!r}")
    return _class_rows_shape(scores, labels, "scores")


@hinge_loss.scratch
def _(scores, labels, **args):
    return [scores]


@hinge_loss.grad
def _(g):
    return [g.op("HingeLossGradient", [g.X(0), g.X(1), g.dY(0)], **g.args), None]


@register("HingeLossGradient", inputs=3, args={"norm": "L1"})
def hinge_loss_gradient(xp, scores, labels, dloss, *, out, norm):
    """dS = -Y * p * max(0, 1 - Y * S)^(p - 1) * dLoss / N with Y and p as in HingeLoss."""
    s, labels = _row_labels(xp, scores, labels)
    ds = _hinge_margins(xp, s, labels, out.reshape(s.shape))
    if norm == "L1":
        xp.sign(ds, out=ds)
    else:
        ds *= 2
    ds[_at_labels(xp, labels)] *= -1
    xp.multiply(ds, dloss / scores.shape[0], out=ds)


hinge_loss_gradient.shape(_like_input)


def _label_probs(xp, probs, labels):
    """Each row's probability of its label, floored at LOG_FLOOR, (N, 1); and the labels."""
    p, labels = _row_labels(xp, probs, labels)
    return xp.maximum(p[_at_labels(xp, labels)], LOG_FLOOR), labels


def _label_log_gradient(xp, probs, labels, scale, out):
    """out = -scale / max(P[label], LOG_FLOOR) at each row's label, 0 elsewhere."""
    picked, labels = _label_probs(xp, probs, labels)
    d = out.reshape(picked.shape[0], -1, 1)
    d.fill(0)
    d[_at_labels(xp, labels)] = -scale / picked


@register("MultinomialLogisticLoss", inputs=2)
def multinomial_logistic_loss(xp, probs, labels, *, out):
    """Loss = -sum(log(max(P[label], 1e-20))) / N (Caffe's MultinomialLogisticLoss)."""
    picked, _ = _label_probs(xp, probs, labels)
    out[...] = -xp.log(picked).sum() / probs.shape[0]


@multinomial_logistic_loss.shape
def _(probs, labels):
    return _class_rows_shape(probs, labels, "probabilities")


@multinomial_logistic_loss.grad
def _(g):
    return [g.op("MultinomialLogisticLossGradient", [g.X(0), g.X(1), g.dY(0)]), None]


@register("MultinomialLogisticLossGradient", inputs=3)
def multinomial_logistic_loss_gradient(xp, probs, labels, dloss, *, out):
    """dP = -dLoss / (N max(P[label], 1e-20)) at each row's label, 0 elsewhere."""
    _label_log_gradient(xp, probs, labels, dloss / probs.shape[0], out)


multinomial_logistic_loss_gradient.shape(_like_input)


@register("InfogainLoss", inputs=3)
def infogain_loss(xp, probs, labels, infogain, *, out, scratch):
    """Loss = -sum_i sum_k H[label_i, k] log(max(P[i, k], 1e-20)) / N.

    P holds probabilities, as Caffe's InfogainLoss before 1.0 took them.
    """
    n, classes = _rows(probs.shape)
    labels, _ = _class_labels(xp, labels, (n,), classes)
    log_p = scratch[0].reshape(-1)
    xp.maximum(probs.reshape(-1), LOG_FLOOR, out=log_p)
    xp.log(log_p, out=log_p)
    gains = infogain.reshape(classes, classes)[labels].reshape(-1)
    out[...] = -xp.dot(log_p, gains) / n


@infogain_loss.shape
def _(probs, labels, infogain):
    spec = _class_rows_shape(probs, labels, "probabilities")
    _, classes = _rows(probs.shape)
    if infogain.size != classes * classes:
        raise ShapeError(f"infogain matrix H {tuple(infogain.shape)} must be {classes}x{classes} "
                         f"for the {classes} classes of probabilities {tuple(probs.shape)}")
    return spec


@infogain_loss.scratch
def _(probs, labels, infogain):
    return [probs]


@infogain_loss.grad
def _(g):
    _no_gradient_for(g, [2], "infogain matrix")
    return [g.op("InfogainLossGradient", [g.X(0), g.X(1), g.X(2), g.dY(0)]), None, None]


@register("InfogainLossGradient", inputs=4)
def infogain_loss_gradient(xp, probs, labels, infogain, dloss, *, out, scratch):
    """dP[i, k] = -H[label_i, k] / max(P[i, k], 1e-20) * dLoss / N."""
    n, classes = _rows(probs.shape)
    labels, _ = _class_labels(xp, labels, (n,), classes)
    floored = scratch[0]
    xp.maximum(probs, LOG_FLOOR, out=floored)
    out.reshape(n, classes)[...] = infogain.reshape(classes, classes)[labels]
    xp.divide(out, floored, out=out)
    xp.multiply(out, -dloss / n, out=out)


infogain_loss_gradient.shape(_like_input)


@infogain_loss_gradient.scratch
def _(probs, *rest):
    return [probs]


# -- distances between pairs of rows ---------------------------------------------------------

def _row_distances(xp, a, b, diff):
    """Squared distance between the rows of A and B, (N,); writes A - B into ``diff`` (N, D)."""
    n = a.shape[0]
    xp.subtract(a.reshape(n, -1), b.reshape(n, -1), out=diff)
    return xp.einsum("ij,ij->i", diff, diff)


def _pair_shape(a, b, what_a, what_b):
    _batched(a, what_a)
    _same_shape(a, b, what_a, what_b)


_CONTRASTIVE_ARGS = {"margin": 1.0, "legacy_version": False}


@register("ContrastiveLoss", inputs=3, args=_CONTRASTIVE_ARGS)
def contrastive_loss(xp, a, b, similar, *, out, scratch, margin, legacy_version):
    """Loss = sum(S d^2 + (1 - S) max(margin - d, 0)^2) / 2N, d = ||A_i - B_i|| per row.

    S is 1 where ``similar`` is nonzero; ``legacy_version`` uses max(margin - d^2, 0)
    for dissimilar pairs (Caffe's ContrastiveLoss).
    """
    n = a.shape[0]
    dist_sq = _row_distances(xp, a, b, scratch[0].reshape(n, -1))
    if legacy_version:
        apart = xp.maximum(margin - dist_sq, 0)
    else:
        apart = xp.maximum(margin - xp.sqrt(dist_sq), 0)
        apart *= apart
    out[...] = xp.where(_is_similar(xp, similar, n), dist_sq, apart).sum() / (2 * n)


def _is_similar(xp, similar, n):
    # As Caffe, the pair label is truncated to an integer before the test.
    return similar.reshape(n).astype(xp.int64) != 0


@contrastive_loss.shape
def _(a, b, similar, *, margin, legacy_version):
    _pair_shape(a, b, "A", "B")
    if similar.size != a.shape[0]:
        raise ShapeError(f"similar {tuple(similar.shape)} must hold one entry per row of "
                         f"A {tuple(a.shape)}")
    return Spec((), a.dtype)


@contrastive_loss.scratch
def _(a, b, similar, **args):
    return [a]


@contrastive_loss.grad
def _(g):
    da = g.op("ContrastiveLossGradient", [g.X(0), g.X(1), g.X(2), g.dY(0)], **g.args)
    return [da if g.needs(0) else None, g.op("Neg", [da]) if g.needs(1) else None, None]


@register("ContrastiveLossGradient", inputs=4, args=_CONTRASTIVE_ARGS)
def contrastive_loss_gradient(xp, a, b, similar, dloss, *, out, margin, legacy_version):
    """dA_i = c_i (A_i - B_i) dLoss / N; dB = -dA.

    c is 1 for similar pairs, else -max(margin - d, 0) / d (legacy: -1 where d^2 < margin).
    """
    n = a.shape[0]
    diff = out.reshape(n, -1)
    dist_sq = _row_distances(xp, a, b, diff)
    if legacy_version:
        apart = -(dist_sq < margin).astype(out.dtype)
    else:
        dist = xp.sqrt(dist_sq)
        apart = -xp.maximum(margin - dist, 0) / xp.maximum(dist, np.finfo(out.dtype).tiny)
    coef = xp.where(_is_similar(xp, similar, n), 1, apart).astype(out.dtype, copy=False)
    diff *= (coef * (dloss / n))[:, None]


contrastive_loss_gradient.shape(_like_input)


@register("SquaredL2Distance", inputs=2)
def squared_l2_distance(xp, x, y, *, out, scratch):
    """D[i] = 0.5 * sum((X[i] - Y[i])^2) over each row i (Caffe2's SquaredL2Distance)."""
    out[...] = _row_distances(xp, x, y, scratch[0].reshape(x.shape[0], -1))
    xp.multiply(out, 0.5, out=out)


@squared_l2_distance.shape
def _(x, y):
    _pair_shape(x, y, "X", "Y")
    return Spec(tuple(x.shape[:1]), x.dtype)


@squared_l2_distance.scratch
def _(x, y):
    return [x]


@squared_l2_distance.grad
def _(g):
    dx = g.op("SquaredL2DistanceGradient", [g.X(0), g.X(1), g.dY(0)])
    return [dx if g.needs(0) else None, g.op("Neg", [dx]) if g.needs(1) else None]


@register("SquaredL2DistanceGradient", inputs=3)
def squared_l2_distance_gradient(xp, x, y, ddist, *, out):
    """dX[i] = (X[i] - Y[i]) * dD[i] (dY is its negation)."""
    n = x.shape[0]
    diff = out.reshape(n, -1)
    xp.subtract(x.reshape(n, -1), y.reshape(n, -1), out=diff)
    diff *= ddist[:, None]


squared_l2_distance_gradient.shape(_like_input)


# -- per-row cross entropies (Theano, Caffe2) -------------------------------------------------

def _per_row_probs(probs):
    _float_input(probs, "probabilities")
    if probs.ndim != 2:
        raise ShapeError(f"probabilities {tuple(probs.shape)} must be a matrix (N, C)")


def _label_rows_shape(probs, labels):
    _per_row_probs(probs)
    _label_count(labels, probs.shape[0], f"row of probabilities {tuple(probs.shape)}")
    return Spec(tuple(probs.shape[:1]), probs.dtype)


def _soft_rows_shape(probs, targets):
    _per_row_probs(probs)
    _float_input(targets, "targets")
    _same_shape(probs, targets, "probabilities", "targets")
    return Spec(tuple(probs.shape[:1]), probs.dtype)


def _label_cross_entropy(xp, probs, labels, out):
    picked, _ = _label_probs(xp, probs, labels)
    xp.log(picked.reshape(-1), out=out)
    xp.negative(out, out=out)


def _soft_cross_entropy(xp, probs, targets, out, work):
    xp.maximum(probs, LOG_FLOOR, out=work)
    xp.log(work, out=work)
    work *= targets
    xp.sum(work, axis=-1, out=out)
    xp.negative(out, out=out)


def _soft_cross_entropy_grads(g):
    want_targets = g.needs(1)
    grads = g.op("CrossEntropyGradient", [g.X(0), g.X(1), g.dY(0)], target_grad=want_targets)
    dp, dt = grads if want_targets else (grads, None)
    return [dp if g.needs(0) else None, dt]


@register("LabelCrossEntropy", inputs=2)
def label_cross_entropy(xp, probs, labels, *, out):
    """Y[i] = -log(max(P[i, label_i], 1e-20)) (Caffe2's LabelCrossEntropy)."""
    _label_cross_entropy(xp, probs, labels, out)


label_cross_entropy.shape(_label_rows_shape)


@label_cross_entropy.grad
def _(g):
    return [g.op("LabelCrossEntropyGradient", [g.X(0), g.X(1), g.dY(0)]), None]


@register("LabelCrossEntropyGradient", inputs=3)
def label_cross_entropy_gradient(xp, probs, labels, dy, *, out):
    """dP[i, label_i] = -dY[i] / max(P[i, label_i], 1e-20), 0 elsewhere."""
    _label_log_gradient(xp, probs, labels, dy[:, None], out)


label_cross_entropy_gradient.shape(_like_input)


@register("CrossEntropy", inputs=2)
def cross_entropy(xp, probs, targets, *, out, scratch):
    """Y[i] = -sum_j T[i, j] log(max(P[i, j], 1e-20)), T soft targets (Caffe2's CrossEntropy)."""
    _soft_cross_entropy(xp, probs, targets, out, scratch[0])


cross_entropy.shape(_soft_rows_shape)


@cross_entropy.scratch
def _(probs, targets):
    return [probs]


cross_entropy.grad(_soft_cross_entropy_grads)


@register("CrossEntropyGradient", inputs=3, args={"target_grad": False},
          outputs=lambda args: 2 if args["target_grad"] else 1)
def cross_entropy_gradient(xp, probs, targets, dy, *, out, target_grad):
    """dP = -T dY / max(P, 1e-20), dY per row.

    With ``target_grad`` also dT = -log(max(P, 1e-20)) dY.
    """
    dp = out[0] if target_grad else out
    xp.maximum(probs, LOG_FLOOR, out=dp)
    if target_grad:
        dt = out[1]
        xp.log(dp, out=dt)
        xp.multiply(dt, -dy[:, None], out=dt)
    xp.divide(targets, dp, out=dp)
    xp.multiply(dp, -dy[:, None], out=dp)


@cross_entropy_gradient.shape
def _(probs, targets, dy, *, target_grad):
    dp = probs.with_dtype(dy.dtype)
    return [dp, targets.with_dtype(dy.dtype)] if target_grad else dp


@register("CategoricalCrossEntropy", inputs=2)
def categorical_cross_entropy(xp, probs, targets, *, out, scratch=()):
    """Y[i] = -sum_j T[i, j] log(max(P[i, j], 1e-20)), T one-hot or soft rows, or class indices.

    With class indices T (N,) it is -log(max(P[i, T[i]], 1e-20))
    (Theano's categorical_crossentropy).
    """
    if targets.ndim == probs.ndim:
        _soft_cross_entropy(xp, probs, targets, out, scratch[0])
    else:
        _label_cross_entropy(xp, probs, targets, out)


@categorical_cross_entropy.shape
def _(probs, targets):
    if targets.ndim == probs.ndim:
        return _soft_rows_shape(probs, targets)
    if targets.ndim != 1:
        raise ShapeError(f"targets {tuple(targets.shape)} must be class indices (N,) or rows "
                         f"(N, C) like probabilities {tuple(probs.shape)}")
    return _label_rows_shape(probs, targets)


@categorical_cross_entropy.scratch
def _(probs, targets):
    return [probs] if targets.ndim == probs.ndim else []


@categorical_cross_entropy.grad
def _(g):
    probs, targets = g.X(0), g.X(1)
    if probs.ndim is None or targets.ndim is None:
        raise ShapeError(f"op '{g.node.name}' (CategoricalCrossEntropy) needs the number of "
                         f"dimensions of its inputs to pick its gradient; give them shapes")
    if targets.ndim == probs.ndim:
        return _soft_cross_entropy_grads(g)
    return [g.op("LabelCrossEntropyGradient", [probs, targets, g.dY(0)]), None]


@register("BinaryCrossEntropy", inputs=2)
def binary_cross_entropy(xp, p, t, *, out, scratch):
    """Y = -(T log(max(P, 1e-20)) + (1 - T) log(max(1 - P, 1e-20))), with broadcasting.

    Theano's binary_crossentropy, elementwise.
    """
    log_p = scratch[0]
    _floored_log(xp, p, out=log_p)
    xp.subtract(1, p, out=out)
    _floored_log(xp, out, out=out)
    # T log p + (1 - T) log(1 - p) = log(1 - p) + T (log p - log(1 - p))
    log_p -= out
    log_p *= t
    out += log_p
    xp.negative(out, out=out)


def _floored_log(xp, x, *, out):
    xp.maximum(x, LOG_FLOOR, out=out)
    xp.log(out, out=out)


@binary_cross_entropy.shape
def _(p, t):
    _float_input(p, "P")
    return Spec(broadcast_shapes(p.shape, t.shape), p.dtype)


@binary_cross_entropy.scratch
def _(p, t):
    return [Spec(broadcast_shapes(p.shape, t.shape), p.dtype)]


@binary_cross_entropy.grad
def _(g):
    p, t = g.X(0), g.X(1)
    want_t = g.needs(1)
    grads = g.op("BinaryCrossEntropyGradient", [p, t, g.dY(0)], target_grad=want_t)
    dp, dt = grads if want_t else (grads, None)
    return [_unbroadcast(g, dp, p) if g.needs(0) else None,
            _unbroadcast(g, dt, t) if want_t else None]


@register("BinaryCrossEntropyGradient", inputs=3, args={"target_grad": False},
          outputs=lambda args: 2 if args["target_grad"] else 1)
def binary_cross_entropy_gradient(xp, p, t, dy, *, out, scratch, target_grad):
    """dP = dY (P - T) / (max(P, 1e-20) max(1 - P, 1e-20)), broadcast to dY's shape.

    With ``target_grad`` also dT = dY (log(max(1 - P, 1e-20)) - log(max(P, 1e-20))).
    """
    dp = out[0] if target_grad else out
    one_minus_p = scratch[0]
    xp.subtract(1, p, out=one_minus_p)
    if target_grad:
        dt = out[1]
        _floored_log(xp, one_minus_p, out=dt)
        _floored_log(xp, p, out=dp)
        dt -= dp
        dt *= dy
    xp.maximum(one_minus_p, LOG_FLOOR, out=one_minus_p)
    xp.subtract(p, t, out=dp)
    dp *= dy
    dp /= one_minus_p
    xp.maximum(p, LOG_FLOOR, out=one_minus_p)
    dp /= one_minus_p


@binary_cross_entropy_gradient.shape
def _(p, t, dy, *, target_grad):
    dp = dy.with_dtype(p.dtype)
    return [dp, dy] if target_grad else dp


@binary_cross_entropy_gradient.scratch
def _(p, t, dy, **args):
    return [dy.with_dtype(p.dtype)]


# -- metrics -----------------------------------------------------------------------------------

_ACCURACY_ARGS = {"axis": 1, "top_k": 1, **_IGNORE_ARGS}


@register("Accuracy", inputs=2, args=_ACCURACY_ARGS)
def accuracy(xp, scores, labels, *, out, scratch, axis, top_k, ignore_label, has_ignore_label):
    """Y = fraction of labelled positions where under ``top_k`` other classes score >= the label.

    Ties count against the label, and labels equal to ``ignore_label`` do not count
    (Caffe's Accuracy).
    """
    outer, classes, inner = _split_at(scores.shape, axis % scores.ndim)
    s = scores.reshape(outer, classes, inner)
    labels, keep = _class_labels(xp, labels, (outer, inner), classes,
                                 _ignored(has_ignore_label, ignore_label))
    at_least = scratch[0].reshape(outer, classes, inner)
    xp.greater_equal(s, s[_at_labels(xp, labels)][:, None, :], out=at_least)
    hits = at_least.sum(axis=1) <= top_k  # the label's own score is one of them
    count = hits.size
    if keep is not None:
        hits &= keep
        count = keep.sum()
    out[...] = hits.sum() / max(float(count), 1.0)


@accuracy.shape
def _(scores, labels, *, axis, top_k, ignore_label, has_ignore_label):
    _batched(scores, "scores")
    axis = normalize_axis(axis, scores.ndim)
    outer, classes, inner = _split_at(scores.shape, axis)
    if not 1 <= top_k <= classes:
        raise ShapeError(f"top_k must be in [1, {classes}] for {classes} classes, got {top_k}")
    _label_count(labels, outer * inner,
                 f"position of scores {tuple(scores.shape)} without axis {axis}")
    return Spec((), scores.dtype)


@accuracy.scratch
def _(scores, labels, **args):
    return [scores.with_dtype(bool)]


@accuracy.grad
def _(g):
    return [None, None]
