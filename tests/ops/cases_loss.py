"""Cases for dragon/ops/loss.py: naive per-row loops in float64 as references."""
import math

import numpy as np

from tests.ops.opcase import Case, away_from, rand

FLOOR = 1e-20


def labels(*values):
    return np.array(values, dtype=np.int64)


def probabilities(n, c, seed=0):
    p = rand(n, c, low=0.1, high=1.0, seed=seed)
    return p / p.sum(axis=1, keepdims=True)


def _normalize(total, normalization, valid, full, batch):
    count = {"VALID": valid, "FULL": full, "BATCH_SIZE": batch, "NONE": 1}[normalization]
    return total / max(1, count)


# -- references ---------------------------------------------------------------------------------

def softmax_ce_ref(logits, label, axis=1, ignore_label=-1, has_ignore_label=False,
                   normalization="VALID"):
    rows = np.moveaxis(logits, axis, -1)
    flat = rows.reshape(-1, rows.shape[-1])
    prob = np.empty_like(flat)
    total, valid = 0.0, 0
    for i, (row, lab) in enumerate(zip(flat, label.reshape(-1))):
        exps = [math.exp(v) for v in row]
        prob[i] = [e / sum(exps) for e in exps]
        if has_ignore_label and lab == ignore_label:
            continue
        total -= math.log(exps[int(lab)] / sum(exps))
        valid += 1
    outer = math.prod(logits.shape[:axis % logits.ndim])
    loss = _normalize(total, normalization, valid, flat.shape[0], outer)
    return loss, np.moveaxis(prob.reshape(rows.shape), -1, axis)


def sigmoid_ce_ref(logits, targets, ignore_label=-1, has_ignore_label=False,
                   normalization="BATCH_SIZE"):
    total, valid = 0.0, 0
    for x, t in zip(logits.reshape(-1), targets.reshape(-1)):
        if has_ignore_label and t == ignore_label:
            continue
        # log sigmoid(x) and log(1 - sigmoid(x)) = log sigmoid(x) - x, without overflow
        log_p = -math.log1p(math.exp(-x)) if x >= 0 else x - math.log1p(math.exp(x))
        total -= t * log_p + (1 - t) * (log_p - x)
        valid += 1
    return _normalize(total, normalization, valid, logits.size, logits.shape[0])


def euclidean_ref(a, b):
    return sum((x - y) ** 2 for x, y in zip(a.reshape(-1), b.reshape(-1))) / (2 * a.shape[0])


def smooth_l1_ref(x, target, inside_w=None, outside_w=None, sigma=1.0,
                  normalization="BATCH_SIZE"):
    inside_w = np.ones_like(x) if inside_w is None else inside_w
    outside_w = np.ones_like(x) if outside_w is None else outside_w
    total = 0.0
    for xv, tv, wi, wo in zip(*(a.reshape(-1) for a in (x, target, inside_w, outside_w))):
        d = wi * (xv - tv)
        if abs(d) < 1 / sigma ** 2:
            total += wo * 0.5 * (sigma * d) ** 2
        else:
            total += wo * (abs(d) - 0.5 / sigma ** 2)
    return _normalize(total, normalization, x.size, x.size, x.shape[0])


def hinge_ref(scores, label, norm="L1"):
    n = scores.shape[0]
    flat = scores.reshape(n, -1)
    total = 0.0
    for row, lab in zip(flat, label.reshape(-1)):
        for k, s in enumerate(row):
            margin = max(0.0, 1 - s if k == lab else 1 + s)
            total += margin if norm == "L1" else margin ** 2
    return total / n


def multinomial_ref(probs, label):
    n = probs.shape[0]
    rows = probs.reshape(n, -1)
    return -sum(math.log(max(rows[i, int(label[i])], FLOOR)) for i in range(n)) / n


def infogain_ref(probs, label, infogain):
    n, c = probs.shape
    total = 0.0
    for i in range(n):
        for k in range(c):
            total -= infogain[int(label[i]), k] * math.log(max(probs[i, k], FLOOR))
    return total / n


def contrastive_ref(a, b, similar, margin=1.0, legacy_version=False):
    n = a.shape[0]
    total = 0.0
    for i in range(n):
        dist_sq = sum((x - y) ** 2 for x, y in zip(a[i].reshape(-1), b[i].reshape(-1)))
        if similar[i]:
            total += dist_sq
        elif legacy_version:
            total += max(margin - dist_sq, 0.0)
        else:
            total += max(margin - math.sqrt(dist_sq), 0.0) ** 2
    return total / (2 * n)


def label_ce_ref(probs, label):
    return np.array([-math.log(max(probs[i, int(label[i])], FLOOR)) for i in range(len(probs))])


def soft_ce_ref(probs, targets):
    return np.array([-sum(t * math.log(max(p, FLOOR)) for p, t in zip(prow, trow))
                     for prow, trow in zip(probs, targets)])


def categorical_ce_ref(probs, targets):
    if targets.ndim == 1:
        return label_ce_ref(probs, targets)
    return soft_ce_ref(probs, targets)


def binary_ce_ref(p, t):
    p, t = np.broadcast_arrays(p, t)
    out = np.empty(p.shape)
    for i in np.ndindex(p.shape):
        out[i] = -(t[i] * math.log(p[i]) + (1 - t[i]) * math.log(1 - p[i]))
    return out


def squared_l2_ref(x, y):
    return np.array([0.5 * sum((u - v) ** 2 for u, v in zip(x[i].reshape(-1), y[i].reshape(-1)))
                     for i in range(x.shape[0])])


def accuracy_ref(scores, label, axis=1, top_k=1, ignore_label=-1, has_ignore_label=False):
    rows = np.moveaxis(scores, axis, -1)
    rows = rows.reshape(-1, rows.shape[-1])
    hits = count = 0
    for row, lab in zip(rows, label.reshape(-1)):
        if has_ignore_label and lab == ignore_label:
            continue
        lab = int(lab)
        better = sum(1 for k in range(len(row)) if k != lab and row[k] >= row[lab])
        hits += better < top_k
        count += 1
    return hits / count if count else 0.0


# -- inputs -------------------------------------------------------------------------------------

SPATIAL_LABELS = np.array([[[0, 255], [2, 1]], [[255, 1], [0, 2]]], dtype=np.int64)
CONTRASTIVE_A = rand(4, 3, seed=40)
# Row distances 0.5, 0.8, 0.6, 1.6: of the dissimilar rows 1 and 3, one is inside margin 1.2.
_DIRECTIONS = rand(4, 3, seed=41)
CONTRASTIVE_B = CONTRASTIVE_A - _DIRECTIONS * (
    np.array([0.5, 0.8, 0.6, 1.6]) / np.linalg.norm(_DIRECTIONS, axis=1))[:, None]
SIMILAR = labels(1, 0, 1, 0)
TIED_SCORES = np.array([[0.1, 0.5, 0.5, 0.2],
                        [0.9, 0.3, 0.1, 0.3],
                        [0.2, 0.2, 0.2, 0.2],
                        [0.4, 0.1, 0.6, 0.3],
                        [0.5, 0.7, 0.6, 0.1]])

CASES = [
    Case("SoftmaxCrossEntropy", [rand(4, 5, low=-2, high=2), labels(0, 3, 4, 1)],
         reference=softmax_ce_ref, grad=(0,)),
    Case("SoftmaxCrossEntropy", [rand(2, 3, 2, 2, low=-2, high=2), SPATIAL_LABELS],
         args={"ignore_label": 255, "has_ignore_label": True}, reference=softmax_ce_ref,
         grad=(0,), name="spatial_ignore"),
    Case("SoftmaxCrossEntropy", [rand(2, 3, 2, 2, low=-2, high=2), SPATIAL_LABELS],
         args={"ignore_label": 255, "has_ignore_label": True, "normalization": "FULL"},
         reference=softmax_ce_ref, grad=(0,), grad_outputs=(0,), name="full"),
    Case("SoftmaxCrossEntropy", [rand(3, 4, low=-2, high=2), np.array([1.0, 0.0, 3.0])],
         args={"normalization": "BATCH_SIZE"}, reference=softmax_ce_ref, grad=(0,),
         grad_outputs=(0,), name="float_labels_batch_size"),
    Case("SoftmaxCrossEntropy", [rand(2, 3, 4, low=-2, high=2), labels(0, 3, 2, 1, 1, 0)],
         args={"axis": -1, "normalization": "NONE"}, reference=softmax_ce_ref, grad=(0,),
         grad_outputs=(0,), name="last_axis_none"),

    Case("SigmoidCrossEntropy", [rand(3, 4, low=-3, high=3), rand(3, 4, low=0, high=1, seed=1)],
         reference=sigmoid_ce_ref, grad=(0,)),
    Case("SigmoidCrossEntropy",
         [rand(2, 3, low=-3, high=3), np.array([[1.0, -1.0, 0.0], [-1.0, 0.0, 1.0]])],
         args={"ignore_label": -1, "has_ignore_label": True, "normalization": "VALID"},
         reference=sigmoid_ce_ref, grad=(0,), name="ignore_valid"),
    Case("SigmoidCrossEntropy", [np.array([[-40.0, 40.0], [3.0, -35.0]]),
                                 np.array([[0.0, 1.0], [1.0, 1.0]])],
         args={"normalization": "FULL"}, reference=sigmoid_ce_ref, grad=(0,), name="saturated"),

    Case("EuclideanLoss", [rand(3, 4), rand(3, 4, seed=1)], reference=euclidean_ref),
    Case("EuclideanLoss", [rand(2, 3, 2), rand(2, 3, 2, seed=1)], reference=euclidean_ref,
         name="3d"),

    Case("SmoothL1Loss", [away_from(rand(3, 4, low=-2, high=2), (-1.0, 1.0)), np.zeros((3, 4))],
         reference=smooth_l1_ref, grad=(0, 1)),
    Case("SmoothL1Loss", [rand(2, 5, low=-2, high=2), rand(2, 5, seed=1),
                          rand(2, 5, low=0.5, high=1.5, seed=2),
                          rand(2, 5, low=0.0, high=2.0, seed=3)],
         args={"sigma": 3.0, "normalization": "FULL"}, reference=smooth_l1_ref, grad=(0, 1),
         name="weighted_sigma3"),
    Case("SmoothL1Loss", [rand(2, 3, low=-2, high=2), rand(2, 3, seed=1),
                          rand(2, 3, low=0.5, high=1.5, seed=2)],
         args={"normalization": "NONE"}, reference=smooth_l1_ref, grad=(0, 1),
         name="inside_only"),

    Case("HingeLoss", [away_from(rand(4, 5, low=-2, high=2), (-1.0, 1.0)), labels(0, 4, 2, 2)],
         reference=hinge_ref, grad=(0,)),
    Case("HingeLoss", [away_from(rand(3, 4, low=-2, high=2), (-1.0, 1.0)), labels(3, 0, 1)],
         args={"norm": "L2"}, reference=hinge_ref, grad=(0,), name="l2"),

    Case("MultinomialLogisticLoss", [probabilities(4, 3), labels(2, 0, 1, 2)],
         reference=multinomial_ref, grad=(0,)),
    Case("MultinomialLogisticLoss", [np.array([[0.0, 1.0], [0.5, 0.5]]), labels(0, 1)],
         reference=multinomial_ref, grad=(), name="zero_probability"),

    Case("InfogainLoss", [probabilities(3, 4), labels(1, 3, 0),
                          rand(4, 4, low=0.0, high=1.0, seed=5)],
         reference=infogain_ref, grad=(0,)),

    Case("ContrastiveLoss", [CONTRASTIVE_A, CONTRASTIVE_B, SIMILAR], args={"margin": 1.2},
         reference=contrastive_ref, grad=(0, 1)),
    Case("ContrastiveLoss", [CONTRASTIVE_A, CONTRASTIVE_B, SIMILAR],
         args={"margin": 1.2, "legacy_version": True}, reference=contrastive_ref, grad=(0, 1),
         name="legacy"),

    Case("CategoricalCrossEntropy", [probabilities(3, 4), labels(3, 0, 1)],
         reference=categorical_ce_ref, grad=(0,)),
    Case("CategoricalCrossEntropy", [probabilities(3, 4), probabilities(3, 4, seed=1)],
         reference=categorical_ce_ref, grad=(0,), name="soft"),

    Case("BinaryCrossEntropy", [rand(3, 4, low=0.05, high=0.95), rand(3, 4, low=0, high=1, seed=1)],
         reference=binary_ce_ref),
    Case("BinaryCrossEntropy", [rand(3, 4, low=0.05, high=0.95), rand(4, low=0, high=1, seed=1)],
         reference=binary_ce_ref, name="broadcast"),
    Case("BinaryCrossEntropy", [rand(2, 3, low=0.05, high=0.95),
                                np.array([[0, 1, 1], [1, 0, 0]], dtype=np.int64)],
         reference=binary_ce_ref, name="int_targets"),

    Case("LabelCrossEntropy", [probabilities(4, 3), labels(1, 1, 0, 2)],
         reference=label_ce_ref, grad=(0,)),
    Case("CrossEntropy", [probabilities(3, 4), probabilities(3, 4, seed=1)],
         reference=soft_ce_ref),
    Case("SquaredL2Distance", [rand(3, 2, 2), rand(3, 2, 2, seed=1)], reference=squared_l2_ref),

    Case("Accuracy", [TIED_SCORES, labels(1, 3, 2, 2, 1)], reference=accuracy_ref, grad=()),
    Case("Accuracy", [TIED_SCORES, labels(2, 1, 0, 0, 2)], args={"top_k": 2},
         reference=accuracy_ref, grad=(), name="top2"),
    Case("Accuracy", [rand(2, 3, 2, 2), SPATIAL_LABELS],
         args={"ignore_label": 255, "has_ignore_label": True}, reference=accuracy_ref, grad=(),
         name="spatial_ignore"),
]
