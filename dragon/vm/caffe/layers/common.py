"""Common layers: the ones working on whole blobs (BLAS, shapes, normalization, recurrence).

InnerProduct, Embed, Bias, Scale, BatchNorm, MVN, Flatten, Reshape, Concat, Slice,
Split, Eltwise, Reduction, Softmax, ArgMax, Tile, Silence, Parameter,
BatchReindex, Filter, RNN, LSTM and LSTMUnit. For example::

    layer { name: "ip1" type: "InnerProduct" bottom: "pool2" top: "ip1"
            inner_product_param { num_output: 500 } }

becomes ``FullyConnected(pool2, ip1_w (500, K), ip1_b (500,), axis=1)``.

The top of this module holds the small helpers the other layer modules share.
"""
from __future__ import annotations

import math

from dragon.vm.caffe.layers.fillers import proto_float
from dragon.vm.caffe.layers.registry import lowering

# -- helpers shared by the layer modules -------------------------------------------------------


def layer_error(ctx, message, kind=ValueError):
    """An exception naming the layer and its type."""
    return kind(f"layer '{ctx.name}' (type {ctx.type}): {message}")


def not_implemented(ctx, what, hint=""):
    """NotImplementedError naming the layer, its type, what is missing (and a hint)."""
    return layer_error(ctx, f"{what} is not implemented" + (f"; {hint}" if hint else ""),
                       NotImplementedError)


def canonical_axis(ctx, axis, ndim, field="axis"):
    """Caffe's CanonicalAxisIndex: ``axis`` in [-ndim, ndim) as a non-negative index."""
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise layer_error(ctx, f"{field} {axis} is out of range for a {ndim}-axis bottom "
                               f"{tuple(ctx.bottoms[0].shape)}")
    return axis % ndim


def as_list(outputs):
    """An op's outputs as a list (a single output comes back as a Tensor)."""
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def scaled(ctx, x, factor):
    """``factor * x``; no op when the factor is 1."""
    factor = float(factor)
    return x if factor == 1.0 else ctx.op("Power", [x], scale=factor)


def count(shape, start=0, end=None):
    """Caffe's Blob::count(start, end): the product of ``shape[start:end]``."""
    return int(math.prod(shape[start:end]))


def constant_filler(value):
    from dragon.vm.caffe.proto import caffe_pb2
    return caffe_pb2.FillerParameter(type="constant", value=value)


# -- BLAS layers --------------------------------------------------------------------------------

@lowering("InnerProduct")
def inner_product(ctx):
    """InnerProduct -> FullyConnected; weights (num_output, K), (K, num_output) if transposed."""
    p = ctx.param.inner_product_param
    x = ctx.bottoms[0]
    if not p.HasField("num_output") or p.num_output < 1:
        raise layer_error(ctx, "inner_product_param.num_output must be set and positive")
    axis = canonical_axis(ctx, p.axis, x.ndim)
    k = count(x.shape, axis)
    shape = (k, p.num_output) if p.transpose else (p.num_output, k)
    inputs = [x, ctx.blob(0, shape, p.weight_filler)]
    if p.bias_term:
        inputs.append(ctx.blob(1, (p.num_output,), p.bias_filler))
    return [ctx.op("FullyConnected", inputs, axis=axis, transpose_w=not p.transpose)]


@lowering("Embed")
def embed(ctx):
    """Embed -> Gather of rows of the (input_dim, num_output) table, plus the bias."""
    p = ctx.param.embed_param
    if p.num_output < 1 or p.input_dim < 1:
        raise layer_error(ctx, "embed_param needs positive num_output and input_dim")
    indices = ctx.op("Cast", [ctx.bottoms[0]], dtype="int64")
    table = ctx.blob(0, (p.input_dim, p.num_output), p.weight_filler)
    y = ctx.op("Gather", [table, indices], axis=0)
    if p.bias_term:
        y = ctx.op("Add", [y, ctx.blob(1, (p.num_output,), p.bias_filler)])
    return [y]


def _param_shape(ctx, x, axis, num_axes, field):
    """The shape of a Bias/Scale blob: ``num_axes`` axes of ``x`` from ``axis`` (-1: all)."""
    if num_axes < -1:
        raise layer_error(ctx, f"{field}.num_axes must be >= -1, got {num_axes}")
    end = x.ndim if num_axes == -1 else axis + num_axes
    if end > x.ndim:
        raise layer_error(ctx, f"{field} axis {axis} with num_axes {num_axes} exceeds bottom "
                               f"{tuple(x.shape)}")
    return tuple(x.shape[axis:end])


def _broadcast_axis(ctx, x, other, axis, field):
    """Caffe's axis for a second bottom: a scalar (0 axes) goes anywhere."""
    if other.ndim == 0:
        return 0
    axis = canonical_axis(ctx, axis, x.ndim)
    if tuple(x.shape[axis:axis + other.ndim]) != tuple(other.shape):
        raise layer_error(ctx, f"{field}: bottom '{ctx.param.bottom[1]}' {tuple(other.shape)} "
                               f"does not match bottom '{ctx.param.bottom[0]}' "
                               f"{tuple(x.shape)} from axis {axis}")
    return axis


@lowering("Bias")
def bias(ctx):
    """Bias -> BiasAdd: adds a learned blob, or bottom 1, spanning axes from ``axis``."""
    p = ctx.param.bias_param
    x = ctx.bottoms[0]
    if len(ctx.bottoms) > 1:
        b = ctx.bottoms[1]
        axis = _broadcast_axis(ctx, x, b, p.axis, "bias_param")
    else:
        axis = canonical_axis(ctx, p.axis, x.ndim)
        b = ctx.blob(0, _param_shape(ctx, x, axis, p.num_axes, "bias_param"), p.filler)
    return [ctx.op("BiasAdd", [x, b], axis=axis)]


@lowering("Scale")
def scale(ctx):
    """Scale -> Scale: times a learned blob (filler default 1) or bottom 1; optional bias."""
    p = ctx.param.scale_param
    x = ctx.bottoms[0]
    if len(ctx.bottoms) > 1:
        gamma = ctx.bottoms[1]
        axis = _broadcast_axis(ctx, x, gamma, p.axis, "scale_param")
        bias_index = 0
    else:
        axis = canonical_axis(ctx, p.axis, x.ndim)
        filler = p.filler if p.HasField("filler") else constant_filler(1.0)
        gamma = ctx.blob(0, _param_shape(ctx, x, axis, p.num_axes, "scale_param"), filler)
        bias_index = 1
    inputs = [x, gamma]
    if p.bias_term:
        inputs.append(ctx.blob(bias_index, tuple(gamma.shape), p.bias_filler))
    if gamma.ndim == 0:  # a scalar factor: plain broadcasting
        y = ctx.op("Mul", [x, gamma])
        return [ctx.op("Add", [y, inputs[2]]) if p.bias_term else y]
    return [ctx.op("Scale", inputs, axis=axis)]


# -- normalization ------------------------------------------------------------------------------

@lowering("BatchNorm")
def batch_norm(ctx):
    """BatchNorm with Caffe's three blobs: mean sum, variance sum and their scale factor.

    Inference (``use_global_stats``, the TEST default) normalizes with mean / factor
    and var / factor (factor 0 counts as 0). Training normalizes with the batch's
    statistics and accumulates mean = maf * mean + batch_mean, var = maf * var +
    m / (m - 1) * batch_var and factor = maf * factor + 1, as Caffe does.
    """
    p = ctx.param.batch_norm_param
    x = ctx.bottoms[0]
    if x.ndim < 2:
        raise layer_error(ctx, f"bottom '{ctx.param.bottom[0]}' {tuple(x.shape)} needs a "
                               "channel axis")
    channels = x.shape[1]
    zero = constant_filler(0.0)
    mean = ctx.blob(0, (channels,), zero)
    var = ctx.blob(1, (channels,), zero)
    factor = ctx.blob(2, (1,), zero)
    use_global = p.use_global_stats if p.HasField("use_global_stats") else ctx.phase == "TEST"
    eps = proto_float(p.eps)
    if use_global:
        # 1 / factor, or 0 where the factor is 0 (a blob never trained). No gradient
        # reaches the statistics: BatchNorm gives none for its running inputs.
        is_zero = ctx.op("Cast", [ctx.op("Equal", [factor, ctx.op("ZerosLike", [factor])])],
                         dtype="float32")
        inverse = ctx.op("Sub", [ctx.op("Reciprocal", [ctx.op("Add", [factor, is_zero])]),
                                 is_zero])
        stats = [ctx.op("Mul", [blob, inverse]) for blob in (mean, var)]
        y = ctx.op("BatchNorm", [x] + stats, axis=1, eps=eps, training=False)
        return [as_list(y)[0]]
    maf = proto_float(p.moving_average_fraction)
    y = ctx.op("BatchNorm", [x, mean, var], axis=1, eps=eps, training=True, momentum=maf,
               running_update="accumulate", unbiased_running_var=True)
    ctx.update(factor, ctx.op("Power", [factor], scale=maf, shift=1.0))
    return [as_list(y)[0]]


@lowering("MVN")
def mean_variance_normalization(ctx):
    """MVN -> MVN: zero mean (and unit variance) per (n, c), or per n across channels."""
    p = ctx.param.mvn_param
    return [ctx.op("MVN", [ctx.bottoms[0]], normalize_variance=bool(p.normalize_variance),
                   across_channels=bool(p.across_channels), eps=proto_float(p.eps))]


@lowering("Softmax")
def softmax(ctx):
    """Softmax -> Softmax along ``axis``."""
    x = ctx.bottoms[0]
    return [ctx.op("Softmax", [x], axis=canonical_axis(ctx, ctx.param.softmax_param.axis, x.ndim))]


# -- shapes -------------------------------------------------------------------------------------

@lowering("Flatten")
def flatten(ctx):
    """Flatten -> Flatten: axes ``axis`` .. ``end_axis`` merged into one."""
    p = ctx.param.flatten_param
    x = ctx.bottoms[0]
    axis = canonical_axis(ctx, p.axis, x.ndim, "flatten_param.axis")
    end = canonical_axis(ctx, p.end_axis, x.ndim, "flatten_param.end_axis")
    if end < axis:
        raise layer_error(ctx, f"flatten_param.end_axis {p.end_axis} comes before axis {p.axis}")
    return [ctx.op("Flatten", [x], axis=axis, end_axis=end)]


@lowering("Reshape")
def reshape(ctx):
    """Reshape: axes [axis, axis + num_axes) replaced by ``shape`` (0 copies, -1 infers)."""
    p = ctx.param.reshape_param
    x = ctx.bottoms[0]
    dims = [int(d) for d in p.shape.dim]
    start = p.axis + x.ndim + 1 if p.axis < 0 else p.axis
    if not 0 <= start <= x.ndim:
        raise layer_error(ctx, f"reshape_param.axis {p.axis} is out of range for bottom "
                               f"{tuple(x.shape)}")
    end = x.ndim if p.num_axes == -1 else start + p.num_axes
    if p.num_axes < -1 or end > x.ndim:
        raise layer_error(ctx, f"reshape_param.num_axes {p.num_axes} from axis {start} does not "
                               f"fit bottom {tuple(x.shape)}")
    if dims.count(-1) > 1 or any(d < -1 for d in dims):
        raise layer_error(ctx, f"reshape_param.shape {dims} may hold one -1 and no other "
                               "negative dimension")
    replaced = []
    for i, d in enumerate(dims):
        if d == 0:
            if start + i >= x.ndim:
                raise layer_error(ctx, f"shape dim {i} is 0 but bottom {tuple(x.shape)} has no "
                                       f"axis {start + i} to copy")
            d = x.shape[start + i]
        replaced.append(d)
    shape = list(x.shape[:start]) + replaced + list(x.shape[end:])
    if -1 in shape:
        known = count([d for d in shape if d != -1])
        if known == 0 or count(x.shape) % known:
            raise layer_error(ctx, f"cannot infer the -1 of shape {dims} from bottom "
                                   f"{tuple(x.shape)}")
        shape[shape.index(-1)] = count(x.shape) // known
    if count(shape) != count(x.shape):
        raise layer_error(ctx, f"shape {shape} holds {count(shape)} values but bottom "
                               f"'{ctx.param.bottom[0]}' {tuple(x.shape)} holds {count(x.shape)}")
    return [ctx.op("Reshape", [x], shape=shape)]


@lowering("Concat")
def concat(ctx):
    """Concat -> Concat along ``axis`` (or the legacy ``concat_dim``)."""
    p = ctx.param.concat_param
    x = ctx.bottoms[0]
    axis = p.concat_dim if p.HasField("concat_dim") else p.axis
    axis = canonical_axis(ctx, axis, x.ndim)
    for name, b in zip(ctx.param.bottom, ctx.bottoms):
        if b.ndim != x.ndim or any(b.shape[i] != x.shape[i] for i in range(x.ndim) if i != axis):
            raise layer_error(ctx, f"bottom '{name}' {tuple(b.shape)} does not match "
                                   f"'{ctx.param.bottom[0]}' {tuple(x.shape)} off axis {axis}")
    return [ctx.op("Concat", list(ctx.bottoms), axis=axis)]


@lowering("Slice")
def slice_(ctx):
    """Slice -> Split at ``slice_point``s, or into equal parts, along ``axis``/``slice_dim``."""
    p = ctx.param.slice_param
    x = ctx.bottoms[0]
    axis = p.slice_dim if p.HasField("slice_dim") else p.axis
    axis = canonical_axis(ctx, axis, x.ndim)
    dim, tops = x.shape[axis], ctx.num_tops
    points = [int(v) for v in p.slice_point]
    if points:
        if len(points) != tops - 1:
            raise layer_error(ctx, f"{len(points)} slice_points need {len(points) + 1} tops, "
                                   f"got {tops}")
        bounds = [0] + points + [dim]
        sizes = [b - a for a, b in zip(bounds, bounds[1:])]
        if min(sizes) < 1:
            raise layer_error(ctx, f"slice_points {points} must increase within axis {axis} "
                                   f"of size {dim}")
    else:
        if dim % tops:
            raise layer_error(ctx, f"axis {axis} of size {dim} does not split into {tops} "
                                   "equal tops")
        sizes = [dim // tops] * tops
    if tops == 1:
        return [ctx.op("Copy", [x])]
    return as_list(ctx.op("Split", [x], axis=axis, sizes=sizes))


@lowering("Split")
def split(ctx):
    """Split: every top is bottom 0 (gradients of the tops are summed)."""
    return [ctx.op("Copy", [ctx.bottoms[0]]) for _ in range(ctx.num_tops)]


@lowering("Tile")
def tile(ctx):
    """Tile -> Tile: ``tiles`` copies along ``axis``."""
    p = ctx.param.tile_param
    x = ctx.bottoms[0]
    axis = canonical_axis(ctx, p.axis, x.ndim)
    if p.tiles < 1:
        raise layer_error(ctx, "tile_param.tiles must be positive")
    multiples = [1] * x.ndim
    multiples[axis] = int(p.tiles)
    return [ctx.op("Tile", [x], multiples=multiples)]


@lowering("Silence")
def silence(ctx):
    """Silence: consumes its bottoms, produces nothing."""
    return []


@lowering("Parameter")
def parameter(ctx):
    """Parameter: its one learnable blob is its top."""
    shape = tuple(int(d) for d in ctx.param.parameter_param.shape.dim)
    return [ctx.op("Copy", [ctx.blob(0, shape, None)])]


@lowering("BatchReindex")
def batch_reindex(ctx):
    """BatchReindex -> Gather of bottom 0's items at the indices in bottom 1."""
    x, index = ctx.bottoms[:2]
    return [ctx.op("Gather", [x, ctx.op("Cast", [index], dtype="int64")], axis=0)]


@lowering("Filter")
def filter_(ctx):
    raise not_implemented(ctx, "Filter", "its top's shape depends on the data, which a graph "
                                         "compiled for fixed shapes cannot express")


# -- elementwise and reductions -----------------------------------------------------------------

_ELTWISE = {0: "PROD", 1: "SUM", 2: "MAX"}


@lowering("Eltwise")
def eltwise(ctx):
    """Eltwise: PROD, SUM (with ``coeff``) or MAX of equally shaped bottoms."""
    p = ctx.param.eltwise_param
    bottoms = list(ctx.bottoms)
    op = _ELTWISE[int(p.operation)]
    for name, b in zip(ctx.param.bottom, bottoms):
        if tuple(b.shape) != tuple(bottoms[0].shape):
            raise layer_error(ctx, f"bottom '{name}' {tuple(b.shape)} differs from "
                                   f"'{ctx.param.bottom[0]}' {tuple(bottoms[0].shape)}")
    coeffs = [float(c) for c in p.coeff]
    if coeffs and (op != "SUM" or len(coeffs) != len(bottoms)):
        raise layer_error(ctx, f"eltwise_param.coeff takes one value per bottom "
                               f"({len(bottoms)}) and only with SUM")
    if op == "SUM":
        if len(bottoms) == 2 and coeffs == [1.0, -1.0]:
            return [ctx.op("Sub", bottoms)]
        terms = [scaled(ctx, b, c) for b, c in zip(bottoms, coeffs or [1.0] * len(bottoms))]
        if len(terms) == 1:
            return [ctx.op("Copy", terms)]
        return [ctx.op("Add", terms) if len(terms) == 2 else ctx.op("Sum", terms)]
    binary = "Mul" if op == "PROD" else "Maximum"
    y = bottoms[0]
    for b in bottoms[1:]:
        y = ctx.op(binary, [y, b])
    return [y if len(bottoms) > 1 else ctx.op("Copy", [y])]


_REDUCTIONS = {1: "SUM", 2: "ASUM", 3: "SUMSQ", 4: "MEAN"}


@lowering("Reduction")
def reduction(ctx):
    """Reduction: SUM, ASUM, SUMSQ or MEAN over axes ``axis``.., times ``coeff``."""
    p = ctx.param.reduction_param
    x = ctx.bottoms[0]
    axis = canonical_axis(ctx, p.axis, x.ndim)
    axes = list(range(axis, x.ndim))
    op = _REDUCTIONS[int(p.operation)]
    if op == "ASUM":
        x = ctx.op("Abs", [x])
    elif op == "SUMSQ":
        x = ctx.op("Square", [x])
    y = ctx.op("ReduceMean" if op == "MEAN" else "ReduceSum", [x], axes=axes)
    return [scaled(ctx, y, proto_float(p.coeff))]


@lowering("ArgMax")
def argmax(ctx):
    """ArgMax: the ``top_k`` indices (or values with ``out_max_val``) per item or along ``axis``."""
    p = ctx.param.argmax_param
    x = ctx.bottoms[0]
    k = int(p.top_k)
    if p.HasField("axis"):
        axis = canonical_axis(ctx, p.axis, x.ndim)
        if not 1 <= k <= x.shape[axis]:
            raise layer_error(ctx, f"top_k {k} must lie in [1, {x.shape[axis]}] (axis {axis})")
        if p.out_max_val:
            return [top_k_values(ctx, x, axis, k)]
        index = ctx.op("ArgMax", [x], axis=axis, top_k=k, keepdims=True)
        return [ctx.op("Cast", [index], dtype="float32")]
    n, dim = x.shape[0], count(x.shape, 1)
    if not 1 <= k <= dim:
        raise layer_error(ctx, f"top_k {k} must lie in [1, {dim}]")
    flat = ctx.op("Reshape", [x], shape=[n, dim])
    index = ctx.op("Cast", [ctx.op("ArgMax", [flat], axis=1, top_k=k, keepdims=True)],
                   dtype="float32")
    parts = [index]
    if p.out_max_val:
        parts.append(top_k_values(ctx, flat, 1, k))
    y = ctx.op("Concat", parts, axis=1) if len(parts) == 2 else index
    shape = [n, len(parts), k] + [1] * (x.ndim - 3)
    return [ctx.op("Reshape", [y], shape=shape)]


def top_k_values(ctx, x, axis, k):
    """The ``k`` largest values of ``x`` along ``axis``, largest first, in its place."""
    if k == 1:
        return ctx.op("ReduceMax", [x], axes=[axis], keepdims=True)
    last = x.ndim - 1
    perm = list(range(x.ndim))
    perm[axis], perm[last] = last, axis
    moved = ctx.op("Transpose", [x], perm=perm) if axis != last else x
    index = ctx.op("ArgMax", [moved], axis=-1, top_k=k, keepdims=True)
    picks = ctx.op("OneHot", [index], depth=int(x.shape[axis]))            # (..., k, D)
    values = ctx.op("ReduceSum", [ctx.op("Mul", [picks, ctx.op("ExpandDims", [moved],
                                                                 axis=-2)])], axes=[-1])
    return ctx.op("Transpose", [values], perm=perm) if axis != last else values


# -- recurrence ---------------------------------------------------------------------------------

def _recurrent_bottoms(ctx, num_states):
    """(x, cont, x_static or None, initial states or None) of an RNN/LSTM layer."""
    p = ctx.param.recurrent_param
    expose = bool(p.expose_hidden)
    fixed = 2 + (num_states if expose else 0)
    if len(ctx.bottoms) not in (fixed, fixed + 1):
        raise layer_error(ctx, f"takes bottoms x, cont[, x_static]"
                               f"{', ' + ', '.join(['h_0', 'c_0'][:num_states]) if expose else ''}"
                               f", got {len(ctx.bottoms)}")
    x, cont = ctx.bottoms[:2]
    static = ctx.bottoms[2] if len(ctx.bottoms) == fixed + 1 else None
    states = list(ctx.bottoms[len(ctx.bottoms) - num_states:]) if expose else None
    if x.ndim < 3:
        raise layer_error(ctx, f"bottom x {tuple(x.shape)} must be (T, N, ...)")
    if tuple(cont.shape) != tuple(x.shape[:2]):
        raise layer_error(ctx, f"bottom cont {tuple(cont.shape)} must be (T, N) = "
                               f"{tuple(x.shape[:2])}")
    if static is not None and static.shape[0] != x.shape[1]:
        raise layer_error(ctx, f"bottom x_static {tuple(static.shape)} must have N = "
                               f"{x.shape[1]} rows")
    if p.num_output < 1:
        raise layer_error(ctx, "recurrent_param.num_output must be positive")
    return x, cont, static, states


def _timesteps(ctx, t_major, steps):
    return as_list(ctx.op("Split", [t_major], axis=0, num=steps)) if steps > 1 else [t_major]


def _cont_steps(ctx, cont, steps):
    """cont_t as (1, N, 1) multipliers, one per time step."""
    cont = ctx.op("ExpandDims", [cont], axis=2)
    return _timesteps(ctx, cont, steps)


def _zero_state(ctx, n, hidden):
    return ctx.op("Fill", [], shape=[1, n, hidden], value=0.0, dtype="float32")


def _static_input(ctx, static, width, index, filler):
    """W_static * x_static as one (1, N, width) time step to add to every step."""
    w = ctx.blob(index, (width, count(static.shape, 1)), filler)
    projected = ctx.op("FullyConnected", [static, w], axis=1)
    return ctx.op("ExpandDims", [projected], axis=0)


@lowering("RNN")
def rnn(ctx):
    """RNN unrolled over T: h_t = tanh(W_hh (cont_t h_{t-1}) + W_xh x_t + b_h) and
    o_t = tanh(W_ho h_t + b_o).

    Blobs, as Caffe orders them: W_xh, b_h, [W_xh_static], W_hh, W_ho, b_o.
    """
    p = ctx.param.recurrent_param
    x, cont, static, states = _recurrent_bottoms(ctx, 1)
    steps, n, hidden = x.shape[0], x.shape[1], int(p.num_output)
    w_xh = ctx.blob(0, (hidden, count(x.shape, 2)), p.weight_filler)
    b_h = ctx.blob(1, (hidden,), p.bias_filler)
    index = 2
    extra = None
    if static is not None:
        extra = _static_input(ctx, static, hidden, index, p.weight_filler)
        index += 1
    w_hh = ctx.blob(index, (hidden, hidden), p.weight_filler)
    w_ho = ctx.blob(index + 1, (hidden, hidden), p.weight_filler)
    b_o = ctx.blob(index + 2, (hidden,), p.bias_filler)
    x_in = _timesteps(ctx, ctx.op("FullyConnected", [x, w_xh, b_h], axis=2), steps)
    conts = _cont_steps(ctx, cont, steps)
    h = states[0] if states else _zero_state(ctx, n, hidden)
    outputs = []
    for t in range(steps):
        recurrent = ctx.op("FullyConnected", [ctx.op("Mul", [h, conts[t]]), w_hh], axis=2)
        total = ctx.op("Add", [recurrent, x_in[t]])
        if extra is not None:
            total = ctx.op("Add", [total, extra])
        h = ctx.op("Tanh", [total])
        outputs.append(ctx.op("Tanh", [ctx.op("FullyConnected", [h, w_ho, b_o], axis=2)]))
    tops = [ctx.op("Concat", outputs, axis=0) if steps > 1 else ctx.op("Copy", outputs)]
    if p.expose_hidden:
        tops.append(ctx.op("Copy", [h]))
    return tops


def lstm_step(ctx, c_prev, gates, cont):
    """One LSTMUnit step: gates (i, f, o, g) -> (c_t, h_t); cont multiplies the carried cell."""
    hidden = c_prev.shape[-1]
    axis = gates.ndim - 1
    sig, g = as_list(ctx.op("Split", [gates], axis=axis, sizes=[3 * hidden, hidden]))
    i, f, o = as_list(ctx.op("Split", [ctx.op("Sigmoid", [sig])], axis=axis, num=3))
    g = ctx.op("Tanh", [g])
    carried = ctx.op("Mul", [ctx.op("Mul", [f, c_prev]), cont])
    c = ctx.op("Add", [carried, ctx.op("Mul", [i, g])])
    h = ctx.op("Mul", [o, ctx.op("Tanh", [c])])
    return c, h


@lowering("LSTM")
def lstm(ctx):
    """LSTM unrolled over T with Caffe's LSTMUnit; gate order i, f, o, g.

    Blobs, as Caffe orders them: W_xc (4H, D), b_c (4H,), [W_xc_static], W_hc (4H, H).
    """
    p = ctx.param.recurrent_param
    x, cont, static, states = _recurrent_bottoms(ctx, 2)
    steps, n, hidden = x.shape[0], x.shape[1], int(p.num_output)
    w_xc = ctx.blob(0, (4 * hidden, count(x.shape, 2)), p.weight_filler)
    b_c = ctx.blob(1, (4 * hidden,), p.bias_filler)
    index = 2
    extra = None
    if static is not None:
        extra = _static_input(ctx, static, 4 * hidden, index, p.weight_filler)
        index += 1
    w_hc = ctx.blob(index, (4 * hidden, hidden), p.weight_filler)
    x_in = _timesteps(ctx, ctx.op("FullyConnected", [x, w_xc, b_c], axis=2), steps)
    conts = _cont_steps(ctx, cont, steps)
    if states:
        h, c = states
    else:
        h, c = _zero_state(ctx, n, hidden), _zero_state(ctx, n, hidden)
    outputs = []
    for t in range(steps):
        recurrent = ctx.op("FullyConnected", [ctx.op("Mul", [h, conts[t]]), w_hc], axis=2)
        gates = ctx.op("Add", [recurrent, x_in[t]])
        if extra is not None:
            gates = ctx.op("Add", [gates, extra])
        c, h = lstm_step(ctx, c, gates, conts[t])
        outputs.append(h)
    tops = [ctx.op("Concat", outputs, axis=0) if steps > 1 else ctx.op("Copy", outputs)]
    if p.expose_hidden:
        tops += [ctx.op("Copy", [h]), ctx.op("Copy", [c])]
    return tops


@lowering("LSTMUnit")
def lstm_unit(ctx):
    """LSTMUnit: bottoms c_{t-1} (1, N, H), gates (1, N, 4H), cont (1, N); tops c_t, h_t."""
    c_prev, gates, cont = ctx.bottoms[:3]
    hidden = c_prev.shape[-1]
    if gates.shape[-1] != 4 * hidden or tuple(gates.shape[:-1]) != tuple(c_prev.shape[:-1]):
        raise layer_error(ctx, f"gate input {tuple(gates.shape)} must be {tuple(c_prev.shape[:-1])}"
                               f" x 4*{hidden} for cell {tuple(c_prev.shape)}")
    if tuple(cont.shape) != tuple(c_prev.shape[:-1]):
        raise layer_error(ctx, f"cont {tuple(cont.shape)} must be {tuple(c_prev.shape[:-1])}")
    cont = ctx.op("StopGradient", [ctx.op("ExpandDims", [cont], axis=cont.ndim)])
    c, h = lstm_step(ctx, c_prev, gates, cont)
    return [c, h]
