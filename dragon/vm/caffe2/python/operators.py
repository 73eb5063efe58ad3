"""Caffe2 operators as the core's registered ops: the table the front end lowers nets with.

Every Caffe2 operator type has an entry: a lowering function that emits core
ops for one OperatorDef once the shapes of its inputs are known (see
``lowering.OpContext`` for what it sees), and which of its inputs and outputs
carry gradients::

    @caffe2_op("Relu", grad_inputs=(0,))
    def _relu(ctx):
        return ctx.emit("Relu", [ctx.input(0)], [ctx.out(0)])

Gradient operators made by ``AddGradientOperators`` are ``<Type>Gradient``
operators carrying the forward operator's inputs, outputs and arguments plus
the flags ``input_grads``/``output_grads`` (``make_gradient_op``). Operators
that do no arithmetic (readers, Print) are *host* operators: the workspace runs
them in Python between compiled graphs.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

from dragon.vm.caffe2.proto import caffe2_pb2

GRADIENT_SUFFIX = "Gradient"
ALL = "all"

#: caffe2_pb2.TensorProto.DataType -> numpy dtype
DTYPES = {1: np.float32, 2: np.int32, 3: np.uint8, 5: np.bool_, 6: np.uint8, 7: np.int8,
          8: np.uint16, 9: np.int16, 10: np.int64, 12: np.float16, 13: np.float64}
_DTYPE_NAMES = {"float": np.float32, "float32": np.float32, "double": np.float64,
                "float64": np.float64, "float16": np.float16, "half": np.float16,
                "int": np.int32, "int32": np.int32, "int64": np.int64, "long": np.int64,
                "int16": np.int16, "int8": np.int8, "uint8": np.uint8, "byte": np.uint8,
                "uint16": np.uint16, "bool": np.bool_}


def numpy_dtype(value) -> np.dtype:
    """A Caffe2 DataType (enum value or name such as 'FLOAT') as a numpy dtype."""
    if isinstance(value, str):
        try:
            return np.dtype(_DTYPE_NAMES[value.lower()])
        except KeyError:
            raise ValueError(f"unknown data type '{value}'") from None
    try:
        return np.dtype(DTYPES[int(value)])
    except KeyError:
        raise ValueError(f"unsupported data type {value} (caffe2_pb2.TensorProto.DataType)") \
            from None


def decode_args(op_def) -> dict:
    """The arguments of a Caffe2 OperatorDef as Python values (bytes decoded to str)."""
    return {a.name: _arg_value(a) for a in op_def.arg}


def _arg_value(arg):
    for field in ("f", "i"):
        if arg.HasField(field):
            return getattr(arg, field)
    if arg.HasField("s"):
        return _text(arg.s)
    if arg.HasField("n"):
        return arg.n
    for field in ("floats", "ints", "nets"):
        if len(getattr(arg, field)):
            return list(getattr(arg, field))
    if len(arg.strings):
        return [_text(s) for s in arg.strings]
    return []


def _text(data):
    try:
        return data.decode()
    except UnicodeDecodeError:
        return data


# -- the table -----------------------------------------------------------------------------------

@dataclasses.dataclass
class OpEntry:
    """What the front end knows about one Caffe2 operator type."""

    type: str
    lower: Callable | None = None        # fn(ctx) -> a core Tensor (or None) per Caffe2 output
    grad_inputs: Callable | None = None  # fn(num_inputs) -> input positions with gradients
    grad_outputs: Callable | None = None  # fn(num_outputs) -> outputs whose gradients flow back
    host: Callable | None = None         # fn(env, op_def, args): runs in Python, not compiled

    @property
    def differentiable(self):
        return self.grad_inputs is not None


_TABLE: dict[str, OpEntry] = {}


def _positions(spec):
    if spec is None or callable(spec):
        return spec
    if spec == ALL:
        return lambda n: range(n)
    fixed = tuple(spec)
    return lambda n: [i for i in fixed if i < n]


def caffe2_op(*types, grad_inputs=None, grad_outputs=(0,)):
    """Register the decorated lowering for the Caffe2 operator ``types``.

    grad_inputs: input positions that receive gradients (``ALL``, a tuple, a
    function of the input count, or None for an op with no gradient).
    grad_outputs: outputs whose gradients flow back (``ALL`` or a tuple).
    """
    def wrap(fn):
        for t in types:
            _TABLE[t] = OpEntry(t, lower=fn, grad_inputs=_positions(grad_inputs),
                                grad_outputs=_positions(grad_outputs))
        return fn
    return wrap


def host_op(*types):
    """Register the decorated ``fn(env, op_def, args)`` as a host op of ``types``."""
    def wrap(fn):
        for t in types:
            _TABLE[t] = OpEntry(t, host=fn)
        return fn
    return wrap


def get(op_type) -> OpEntry:
    """The entry of ``op_type``; an unknown type raises RuntimeError naming close matches."""
    entry = _TABLE.get(op_type)
    if entry is None:
        raise RuntimeError(f"Cannot create operator of type '{op_type}': it is not a registered "
                           f"Caffe2 operator{_close(op_type)}")
    return entry


def _close(op_type):
    import difflib
    close = difflib.get_close_matches(op_type, list(_TABLE), n=3)
    return f"; did you mean {', '.join(close)}?" if close else ""


def find(op_type) -> OpEntry | None:
    """The entry of ``op_type``, or None for a type the table does not know."""
    return _TABLE.get(op_type)


def is_operator(op_type) -> bool:
    return op_type in _TABLE


def registered() -> list[str]:
    """Every Caffe2 operator type the front end runs."""
    return sorted(_TABLE)


def is_host(op_def) -> bool:
    entry = _TABLE.get(op_def.type)
    return entry is not None and entry.host is not None


def nearby(op_type) -> list[str]:
    import difflib
    return difflib.get_close_matches(op_type, list(_TABLE), n=5, cutoff=0.5)


# -- gradient operators ---------------------------------------------------------------------------

def make_gradient_op(forward, input_flags, output_flags, dy_names, dx_names):
    """The ``<Type>Gradient`` OperatorDef of ``forward`` (see the module docstring)."""
    op = caffe2_pb2.OperatorDef(type=forward.type + GRADIENT_SUFFIX, is_gradient_op=True)
    op.input.extend(list(forward.input) + list(forward.output) + list(dy_names))
    op.output.extend(dx_names)
    op.arg.extend(forward.arg)
    op.arg.add(name="input_grads", ints=[int(f) for f in input_flags])
    op.arg.add(name="output_grads", ints=[int(f) for f in output_flags])
    if forward.HasField("device_option"):
        op.device_option.CopyFrom(forward.device_option)
    if forward.engine:
        op.engine = forward.engine
    return op


def is_gradient_op(op_def) -> bool:
    return op_def.type.endswith(GRADIENT_SUFFIX) and any(
        a.name == "input_grads" for a in op_def.arg)


# -- naming operators in errors --------------------------------------------------------------------

def describe(op_def) -> str:
    """``Type(in1, in2 -> out)``: how errors name a Caffe2 operator."""
    label = f"'{op_def.name}' " if op_def.name else ""
    return (f"operator {label}{op_def.type}({', '.join(op_def.input)} -> "
            f"{', '.join(op_def.output)})")


# -- argument conventions --------------------------------------------------------------------------

def _hw(args, name, plural, default):
    """Caffe2's ``<plural>`` list, ``<name>_h``/``<name>_w`` pair, or single ``<name>``."""
    if plural in args:
        return [int(v) for v in args[plural]]
    if f"{name}_h" in args or f"{name}_w" in args:
        return [int(args.get(f"{name}_h", default)), int(args.get(f"{name}_w", default))]
    if name in args:
        return [int(args[name])] * 2
    return None


def _window(ctx):
    """(kernel, strides, pads (t, l, b, r), dilations) of a Conv or Pool operator."""
    args = ctx.args
    kernel = _hw(args, "kernel", "kernels", 0)
    strides = _hw(args, "stride", "strides", 1) or [1, 1]
    dilations = _hw(args, "dilation", "dilations", 1) or [1, 1]
    if "pads" in args:
        pads = [int(p) for p in args["pads"]]
    elif any(k in args for k in ("pad_t", "pad_l", "pad_b", "pad_r")):
        pads = [int(args.get(k, 0)) for k in ("pad_t", "pad_l", "pad_b", "pad_r")]
    else:
        pads = [int(args.get("pad", 0))] * 4
    return kernel, strides, pads, dilations


def _check_nchw(ctx, x=None):
    order = ctx.arg("order", "NCHW")
    if order != "NCHW":
        raise RuntimeError(f"{describe(ctx.op)}: order '{order}' is not supported; use NCHW")
    if x is not None and x.ndim != 4:
        raise RuntimeError(f"{describe(ctx.op)}: needs a 4-d NCHW input, got '{x.name}' of shape "
                           f"{tuple(x.shape)}")


# -- fills ---------------------------------------------------------------------------------------

def _fill_shape(ctx):
    if ctx.num_inputs:
        if ctx.arg("input_as_shape", 0):
            shape = [int(d) for d in np.ravel(ctx.value(0))]
        else:
            shape = list(ctx.input(0).shape)
        return shape + [int(d) for d in ctx.arg("extra_shape", [])]
    return [int(d) for d in ctx.arg("shape", [])]


def _fill_dtype(ctx, default=np.float32):
    return numpy_dtype(ctx.arg("dtype")) if "dtype" in ctx.args else np.dtype(default)


@caffe2_op("ConstantFill")
def _constant_fill(ctx):
    value = ctx.arg("value", 0.0)
    if "dtype" in ctx.args:
        dtype = _fill_dtype(ctx)
    elif isinstance(value, int):
        dtype = np.dtype(np.int64)  # Caffe2 infers the type of an integer value
    elif ctx.num_inputs and not ctx.arg("input_as_shape", 0) and ctx.input(0).dtype.kind == "f":
        dtype = ctx.input(0).dtype  # a gradient seed of a double loss stays double
    else:
        dtype = np.dtype(np.float32)
    if isinstance(value, str):
        raise RuntimeError(f"{describe(ctx.op)}: string fills are not supported")
    return ctx.emit("Fill", [], [ctx.out(0)], shape=_fill_shape(ctx), value=value,
                    dtype=dtype.name)


@caffe2_op("GaussianFill")
def _gaussian_fill(ctx):
    return ctx.emit("GaussianFill", [], [ctx.out(0)], shape=_fill_shape(ctx),
                    dtype=_fill_dtype(ctx).name, mean=float(ctx.arg("mean", 0.0)),
                    std=float(ctx.arg("std", 1.0)))


@caffe2_op("UniformFill")
def _uniform_fill(ctx):
    return ctx.emit("UniformFill", [], [ctx.out(0)], shape=_fill_shape(ctx),
                    dtype=_fill_dtype(ctx).name, low=float(ctx.arg("min", 0.0)),
                    high=float(ctx.arg("max", 1.0)))


@caffe2_op("XavierFill")
def _xavier_fill(ctx):
    # Caffe2: U(-a, a), a = sqrt(3 / fan_in), fan_in = size / shape[0]
    return ctx.emit("XavierFill", [], [ctx.out(0)], shape=_fill_shape(ctx),
                    dtype=_fill_dtype(ctx).name, variance_norm="FAN_IN")


@caffe2_op("MSRAFill")
def _msra_fill(ctx):
    # Caffe2: N(0, 2 / fan_out), fan_out = size / shape[1]
    return ctx.emit("MSRAFill", [], [ctx.out(0)], shape=_fill_shape(ctx),
                    dtype=_fill_dtype(ctx).name, variance_norm="FAN_OUT")


def _given_fill(default):
    def lower(ctx):
        dtype = _fill_dtype(ctx, default)
        values = [bool(v) for v in ctx.arg("values", [])] if dtype.kind == "b" else \
            list(ctx.arg("values", []))
        return ctx.emit("GivenTensorFill", [], [ctx.out(0)], values=values,
                        shape=_fill_shape(ctx), dtype=dtype.name)
    return lower


for _type, _dtype in (("GivenTensorFill", np.float32), ("GivenTensorDoubleFill", np.float64),
                      ("GivenTensorIntFill", np.int32), ("GivenTensorInt64Fill", np.int64),
                      ("GivenTensorBoolFill", np.bool_)):
    caffe2_op(_type)(_given_fill(_dtype))


# -- neural network layers -----------------------------------------------------------------------

@caffe2_op("FC", "FCTransposed", grad_inputs=ALL)
def _fc(ctx):
    x, w = ctx.input(0), ctx.input(1)
    axis_w = int(ctx.arg("axis_w", 1))
    if axis_w != 1:
        w = ctx.emit("Reshape", [w], [ctx.aux("w2d")],
                     shape=[math.prod(w.shape[:axis_w]), -1])[0]
    bias = [ctx.input(2)] if ctx.num_inputs > 2 else []
    return ctx.emit("FullyConnected", [x, w] + bias, [ctx.out(0)],
                    axis=int(ctx.arg("axis", 1)), transpose_w=ctx.op.type == "FC")


@caffe2_op("Conv", "Conv2D", grad_inputs=ALL)
def _conv(ctx):
    x, w = ctx.input(0), ctx.input(1)
    _check_nchw(ctx, x)
    kernel, strides, pads, dilations = _window(ctx)
    bias = [ctx.input(2)] if ctx.num_inputs > 2 else []
    return ctx.emit("Conv2d", [x, w] + bias, [ctx.out(0)], kernel_shape=kernel or [],
                    strides=strides, pads=pads, dilations=dilations,
                    group=int(ctx.arg("group", 1)))


@caffe2_op("ConvTranspose", grad_inputs=ALL)
def _conv_transpose(ctx):
    x, w = ctx.input(0), ctx.input(1)
    _check_nchw(ctx, x)
    kernel, strides, pads, _ = _window(ctx)
    adj = _hw(ctx.args, "adj", "adjs", 0) or [0, 0]
    bias = [ctx.input(2)] if ctx.num_inputs > 2 else []
    return ctx.emit("Conv2dTranspose", [x, w] + bias, [ctx.out(0)], kernel_shape=kernel or [],
                    strides=strides, pads=pads, group=int(ctx.arg("group", 1)),
                    output_padding=adj)


def _pool(mode):
    def lower(ctx):
        x = ctx.input(0)
        _check_nchw(ctx, x)
        kernel, strides, pads, _ = _window(ctx)
        caffe_rounding = int(ctx.arg("legacy_pad", 0)) == 3  # Caffe's ceil rounding
        y, _ = ctx.emit("Pool2d", [x], [ctx.out(0), ctx.aux("argmax")], kernel_shape=kernel or [],
                        strides=strides, pads=pads, mode=mode,
                        global_pooling=bool(ctx.arg("global_pooling", 0)),
                        ceil_mode=caffe_rounding,
                        count_include_pad=bool(ctx.arg("count_include_pad", caffe_rounding)))
        return [y]
    return lower


caffe2_op("MaxPool", "MaxPool2D", grad_inputs=(0,))(_pool("MAX"))
caffe2_op("AveragePool", "AveragePool2D", grad_inputs=(0,))(_pool("AVG"))


@caffe2_op("SpatialBN", grad_inputs=(0, 1, 2))
def _spatial_bn(ctx):
    x, scale, bias, mean, var = ctx.inputs()[:5]
    _check_nchw(ctx)
    is_test = bool(ctx.arg("is_test", 0))
    y, saved_mean, saved_inv_std = ctx.emit(
        "BatchNorm", [x, mean, var, scale, bias],
        [ctx.out(0), ctx.out(3, "saved_mean"), ctx.out(4, "saved_inv_var")], axis=1,
        eps=float(ctx.arg("epsilon", 1e-5)), momentum=float(ctx.arg("momentum", 0.9)),
        training=not is_test, running_update="ema", unbiased_running_var=False)
    # The running statistics are updated in place; outputs 1, 2 usually name them again.
    outs = [y, None, None, saved_mean, saved_inv_std]
    for k, running in ((1, mean), (2, var)):
        if k < ctx.num_outputs and ctx.op.output[k] != running.name:
            outs[k] = running
    return outs


@caffe2_op("LRN", grad_inputs=(0,))
def _lrn(ctx):
    x = ctx.input(0)
    _check_nchw(ctx, x)
    size, alpha = int(ctx.arg("size")), float(ctx.arg("alpha", 0.0))
    beta, bias = float(ctx.arg("beta", 0.0)), float(ctx.arg("bias", 1.0))
    y = ctx.emit("LRN", [x], [ctx.out(0)], size=size, alpha=alpha, beta=beta, k=bias,
                 mode="across_channels")[0]
    if ctx.num_outputs < 2:
        return [y]
    # scale = bias + alpha / size * (sum of X^2 over `size` channels): an average pooling of
    # X^2 over the channel axis, viewed as the height of an (N, 1, C, H*W) image.
    n, c, h, w = x.shape
    square = ctx.emit("Square", [x], [ctx.aux("square")])[0]
    image = ctx.emit("Reshape", [square], [ctx.aux("channels")], shape=[n, 1, c, h * w])[0]
    before = (size - 1) // 2
    window, _ = ctx.emit("Pool2d", [image], [ctx.aux("window"), ctx.aux("index")],
                         kernel_shape=[size, 1], strides=[1, 1],
                         pads=[before, 0, size - 1 - before, 0], mode="AVG", ceil_mode=False,
                         count_include_pad=True)
    scaled = ctx.emit("Power", [window], [ctx.aux("scale")], scale=alpha, shift=bias)[0]
    return [y, ctx.emit("ReshapeLike", [scaled, x], [ctx.out(1)])[0]]


@caffe2_op("Dropout", grad_inputs=(0,))
def _dropout(ctx):
    return ctx.emit("Dropout", [ctx.input(0)], [ctx.out(0), ctx.out(1, "mask")],
                    prob=float(ctx.arg("ratio", 0.5)), training=not ctx.arg("is_test", 0),
                    scale=True)


# -- activations and elementwise math --------------------------------------------------------------

def _unary(core_type, **fixed):
    def lower(ctx):
        return ctx.emit(core_type, [ctx.input(0)], [ctx.out(0)], **fixed)
    return lower


for _type, _core in (("Relu", "Relu"), ("Sigmoid", "Sigmoid"), ("Tanh", "Tanh"),
                     ("Softplus", "Softplus"), ("Softsign", "Softsign"), ("Exp", "Exp"),
                     ("Log", "Log"), ("Sqrt", "Sqrt"), ("Abs", "Abs"), ("Sqr", "Square"),
                     ("Negative", "Neg"), ("Copy", "Copy"), ("EnsureCPUOutput", "Copy"),
                     ("CopyCPUToGPU", "Copy"), ("CopyGPUToCPU", "Copy"), ("Alias", "Copy")):
    caffe2_op(_type, grad_inputs=(0,))(_unary(_core))


@caffe2_op("LeakyRelu", grad_inputs=(0,))
def _leaky_relu(ctx):
    return ctx.emit("Relu", [ctx.input(0)], [ctx.out(0)], slope=float(ctx.arg("alpha", 0.01)))


@caffe2_op("Elu", grad_inputs=(0,))
def _elu(ctx):
    return ctx.emit("Elu", [ctx.input(0)], [ctx.out(0)], alpha=float(ctx.arg("alpha", 1.0)))


@caffe2_op("PRelu", grad_inputs=(0, 1))
def _prelu(ctx):
    return ctx.emit("PRelu", [ctx.input(0), ctx.input(1)], [ctx.out(0)])


@caffe2_op("Softmax", grad_inputs=(0,))
def _softmax(ctx):
    # Caffe2 coerces X to 2-d at `axis`: the softmax runs over all trailing axes together.
    x = ctx.input(0)
    axis = int(ctx.arg("axis", 1)) % x.ndim
    if axis == x.ndim - 1:
        return ctx.emit("Softmax", [x], [ctx.out(0)], axis=axis)
    flat = ctx.emit("Flatten", [x], [ctx.aux("flat")], axis=axis, end_axis=-1)[0]
    prob = ctx.emit("Softmax", [flat], [ctx.aux("prob")], axis=axis)[0]
    return ctx.emit("ReshapeLike", [prob, x], [ctx.out(0)])


@caffe2_op("Scale", grad_inputs=(0,))
def _scale(ctx):
    return ctx.emit("Power", [ctx.input(0)], [ctx.out(0)], scale=float(ctx.arg("scale", 1.0)))


@caffe2_op("Pow", grad_inputs=(0,))
def _pow(ctx):
    return ctx.emit("Power", [ctx.input(0)], [ctx.out(0)],
                    power=float(ctx.arg("exponent", 1.0)))


@caffe2_op("Clip", grad_inputs=(0,))
def _clip(ctx):
    return ctx.emit("Clip", [ctx.input(0)], [ctx.out(0)],
                    low=float(ctx.arg("min", -math.inf)), high=float(ctx.arg("max", math.inf)))


def _legacy_broadcast(ctx, a, b):
    """B reshaped so that numpy broadcasting matches Caffe2's ``broadcast=1, axis=k``.

    B's dimensions line up with A's from ``axis`` on (suffix-matched when axis is -1).
    """
    if not ctx.arg("broadcast", 0) or a.ndim == b.ndim:
        return b
    axis = int(ctx.arg("axis", -1))
    if axis == -1:
        axis = a.ndim - b.ndim
    dims = list(b.shape)
    if axis < 0 or axis + len(dims) > a.ndim or any(
            d not in (1, a.shape[axis + i]) for i, d in enumerate(dims)):
        raise RuntimeError(f"{describe(ctx.op)}: B of shape {tuple(b.shape)} does not broadcast "
                           f"to A of shape {tuple(a.shape)} at axis {axis}")
    shape = [1] * axis + dims + [1] * (a.ndim - axis - len(dims))
    return ctx.emit("Reshape", [b], [ctx.aux("broadcast")], shape=shape)[0]


def _binary(core_type):
    def lower(ctx):
        a, b = ctx.input(0), ctx.input(1)
        return ctx.emit(core_type, [a, _legacy_broadcast(ctx, a, b)], [ctx.out(0)])
    return lower


for _type in ("Add", "Sub", "Mul", "Div"):
    caffe2_op(_type, grad_inputs=(0, 1))(_binary(_type))


@caffe2_op("Sum", grad_inputs=ALL)
def _sum(ctx):
    xs = ctx.inputs()
    return ctx.emit("Sum" if len(xs) > 1 else "Copy", xs, [ctx.out(0)])


@caffe2_op("WeightedSum", grad_inputs=lambda n: range(0, n, 2))
def _weighted_sum(ctx):
    return ctx.emit("WeightedSum", ctx.inputs(), [ctx.out(0)])


@caffe2_op("MatMul", grad_inputs=(0, 1))
def _matmul(ctx):
    return ctx.emit("MatMul", [ctx.input(0), ctx.input(1)], [ctx.out(0)],
                    trans_a=bool(ctx.arg("trans_a", 0)), trans_b=bool(ctx.arg("trans_b", 0)))


def _reduce(core_type):
    def lower(ctx):
        x = ctx.input(0)
        axes = [int(a) for a in ctx.arg("axes", range(x.ndim))]
        return ctx.emit(core_type, [x], [ctx.out(0)], axes=axes,
                        keepdims=bool(ctx.arg("keepdims", 1)))
    return lower


caffe2_op("ReduceSum", grad_inputs=(0,))(_reduce("ReduceSum"))
caffe2_op("ReduceMean", grad_inputs=(0,))(_reduce("ReduceMean"))


# -- losses and metrics ----------------------------------------------------------------------------

@caffe2_op("SoftmaxWithLoss", grad_inputs=(0,), grad_outputs=(1,))
def _softmax_with_loss(ctx):
    x, label = ctx.input(0), ctx.input(1)
    if ctx.num_inputs > 2:
        raise RuntimeError(f"{describe(ctx.op)}: weighted SoftmaxWithLoss is not supported")
    axis = int(ctx.arg("axis", 1)) % x.ndim
    scale = float(ctx.arg("scale", 1.0))
    logits = x
    if x.ndim != 2 or axis != 1:  # Caffe2 coerces X to 2-d at axis
        logits = ctx.emit("Reshape", [x], [ctx.aux("logits")],
                          shape=[math.prod(x.shape[:axis]), -1])[0]
    loss_name = ctx.out(1, "loss") if scale == 1.0 else ctx.aux("unscaled")
    if ctx.arg("label_prob", 0):
        prob = ctx.emit("Softmax", [logits], [ctx.aux("prob")], axis=1)[0]
        rows = ctx.emit("CrossEntropy", [prob, label], [ctx.aux("rows")])[0]
        loss = ctx.emit("ReduceMean", [rows], [loss_name])[0]
    else:
        if label.ndim > 1:
            label = ctx.emit("Reshape", [label], [ctx.aux("label")], shape=[-1])[0]
        loss, prob = ctx.emit("SoftmaxCrossEntropy", [logits, label],
                              [loss_name, ctx.aux("prob")], axis=1, normalization="VALID")
    if scale != 1.0:
        loss = ctx.emit("Power", [loss], [ctx.out(1, "loss")], scale=scale)[0]
    prob = ctx.emit("ReshapeLike", [prob, x], [ctx.out(0)])[0]
    return [prob, loss]


@caffe2_op("LabelCrossEntropy", grad_inputs=(0,))
def _label_cross_entropy(ctx):
    return ctx.emit("LabelCrossEntropy", [ctx.input(0), ctx.input(1)], [ctx.out(0)])


@caffe2_op("CrossEntropy", grad_inputs=(0,))
def _cross_entropy(ctx):
    return ctx.emit("CrossEntropy", [ctx.input(0), ctx.input(1)], [ctx.out(0)])


@caffe2_op("AveragedLoss", grad_inputs=(0,))
def _averaged_loss(ctx):
    return ctx.emit("ReduceMean", [ctx.input(0)], [ctx.out(0)], axes=[], keepdims=False)


@caffe2_op("SquaredL2Distance", grad_inputs=(0, 1))
def _squared_l2_distance(ctx):
    return ctx.emit("SquaredL2Distance", [ctx.input(0), ctx.input(1)], [ctx.out(0)])


@caffe2_op("Accuracy")
def _accuracy(ctx):
    return ctx.emit("Accuracy", [ctx.input(0), ctx.input(1)], [ctx.out(0)],
                    top_k=int(ctx.arg("top_k", 1)))


# -- shapes and layout ---------------------------------------------------------------------------

@caffe2_op("Reshape", grad_inputs=(0,))
def _reshape(ctx):
    x = ctx.input(0)
    if "shape" in ctx.args:
        shape = ctx.args["shape"]
    elif ctx.num_inputs > 1:
        shape = ctx.value(1)  # the new shape as a blob
    else:
        raise RuntimeError(f"{describe(ctx.op)}: needs the argument shape or a shape blob")
    y = ctx.emit("Reshape", [x], [ctx.out(0)], shape=[int(d) for d in np.ravel(shape)])[0]
    outs = [y]
    if ctx.num_outputs > 1:
        outs += ctx.emit("GivenTensorFill", [], [ctx.out(1)], values=list(x.shape),
                         shape=[x.ndim], dtype="int64")
    return outs


@caffe2_op("Flatten", grad_inputs=(0,))
def _flatten(ctx):
    x = ctx.input(0)
    axis = int(ctx.arg("axis", 1))
    return ctx.emit("Reshape", [x], [ctx.out(0)],
                    shape=[math.prod(x.shape[:axis]), math.prod(x.shape[axis:])])


@caffe2_op("FlattenToVec", grad_inputs=(0,))
def _flatten_to_vec(ctx):
    return ctx.emit("Reshape", [ctx.input(0)], [ctx.out(0)], shape=[-1])


@caffe2_op("ExpandDims", grad_inputs=(0,))
def _expand_dims(ctx):
    x = ctx.input(0)
    dims = sorted(int(d) for d in ctx.arg("dims", []))
    shape = list(x.shape)
    for d in dims:
        shape.insert(d, 1)
    return ctx.emit("Reshape", [x], [ctx.out(0)], shape=shape)


@caffe2_op("Squeeze", grad_inputs=(0,))
def _squeeze(ctx):
    return ctx.emit("Squeeze", [ctx.input(0)], [ctx.out(0)],
                    axes=[int(d) for d in ctx.arg("dims", [])])


@caffe2_op("Transpose", grad_inputs=(0,))
def _transpose(ctx):
    return ctx.emit("Transpose", [ctx.input(0)], [ctx.out(0)],
                    perm=[int(a) for a in ctx.arg("axes", [])])


def _channel_axis(ctx):
    if "axis" in ctx.args:
        return int(ctx.args["axis"])
    return 1 if ctx.arg("order", "NCHW") == "NCHW" else -1


@caffe2_op("Concat", "DepthConcat", grad_inputs=ALL)
def _concat(ctx):
    xs = ctx.inputs()
    axis = _channel_axis(ctx)
    if ctx.arg("add_axis", 0):
        y = ctx.emit("Stack", xs, [ctx.out(0)], axis=axis)[0]
        sizes = [1] * len(xs)
    else:
        y = ctx.emit("Concat", xs, [ctx.out(0)], axis=axis)[0]
        sizes = [x.shape[axis % x.ndim] for x in xs]
    outs = [y]
    if ctx.num_outputs > 1:
        outs += ctx.emit("GivenTensorFill", [], [ctx.out(1)], values=sizes, shape=[len(xs)],
                         dtype="int32")
    return outs


@caffe2_op("Split", "DepthSplit", grad_inputs=(0,), grad_outputs=ALL)
def _split(ctx):
    x = ctx.input(0)
    sizes = ctx.value(1) if ctx.num_inputs > 1 else ctx.arg("split", [])
    sizes = [int(s) for s in np.ravel(sizes)]
    names = [ctx.out(k) for k in range(ctx.num_outputs)]
    return ctx.emit("Split", [x], names, axis=_channel_axis(ctx), sizes=sizes,
                    num=0 if sizes else len(names))


@caffe2_op("Cast", grad_inputs=(0,))
def _cast(ctx):
    return ctx.emit("Cast", [ctx.input(0)], [ctx.out(0)], dtype=numpy_dtype(ctx.arg("to")).name)


@caffe2_op("StopGradient")
def _stop_gradient(ctx):
    return ctx.emit("StopGradient", [ctx.input(0)], [ctx.out(0)])


@caffe2_op("Summarize")
def _summarize(ctx):
    # (min, max, mean, standard deviation) of X as a (4,) blob, the deviation unbiased.
    x = ctx.input(0)
    if x.dtype.kind != "f":
        x = ctx.emit("Cast", [x], [ctx.aux("float")], dtype="float32")[0]
    flat = ctx.emit("Reshape", [x], [ctx.aux("flat")], shape=[-1])[0]
    n = flat.shape[0]
    stats = [ctx.emit(kind, [flat], [ctx.aux(kind)], axes=[0], keepdims=True)[0]
             for kind in ("ReduceMin", "ReduceMax", "ReduceMean")]
    centered = ctx.emit("Sub", [flat, stats[2]], [ctx.aux("centered")])[0]
    squares = ctx.emit("Square", [centered], [ctx.aux("squares")])[0]
    total = ctx.emit("ReduceSum", [squares], [ctx.aux("total")], axes=[0], keepdims=True)[0]
    stats.append(ctx.emit("Power", [total], [ctx.aux("std")], power=0.5,
                          scale=1.0 / max(n - 1, 1))[0])
    if not ctx.num_outputs:
        return []
    return ctx.emit("Concat", stats, [ctx.out(0)], axis=0)


# -- training ------------------------------------------------------------------------------------

@caffe2_op("Iter")
def _iter(ctx):
    counter = ctx.input(0) if ctx.num_inputs else ctx.lowering.blob(ctx.op.output[0], ctx.op)
    return ctx.emit("Iter", [counter], [ctx.out(0)])


@caffe2_op("AtomicIter")
def _atomic_iter(ctx):
    return ctx.emit("Iter", [ctx.input(1)], [ctx.out(0)])


_LR_ARGS = ("gamma", "stepsize", "power", "max_iter", "stepsizes")


@caffe2_op("LearningRate")
def _learning_rate(ctx):
    if "base_lr" not in ctx.args:
        raise RuntimeError(f"{describe(ctx.op)}: needs the argument base_lr")
    schedule = {k: ctx.args[k] for k in _LR_ARGS if k in ctx.args}
    return ctx.emit("LearningRate", [ctx.input(0)], [ctx.out(0)],
                    base_lr=float(ctx.args["base_lr"]), policy=ctx.arg("policy", "fixed"),
                    **schedule)


@caffe2_op("MomentumSGDUpdate")
def _momentum_sgd_update(ctx):
    return ctx.emit("MomentumSGDUpdate", ctx.inputs()[:4], [ctx.out(k) for k in range(3)],
                    momentum=float(ctx.arg("momentum", 0.0)),
                    nesterov=int(ctx.arg("nesterov", 0)))


@caffe2_op("Adam")
def _adam(ctx):
    n = min(max(ctx.num_outputs, 3), 4)
    return ctx.emit("Caffe2AdamUpdate", ctx.inputs()[:6], [ctx.out(k) for k in range(n)],
                    beta1=float(ctx.arg("beta1", 0.9)), beta2=float(ctx.arg("beta2", 0.999)),
                    epsilon=float(ctx.arg("epsilon", 1e-8)), output_grad=n == 4)


@caffe2_op("Adagrad")
def _adagrad(ctx):
    return ctx.emit("Caffe2AdagradUpdate", ctx.inputs()[:4], [ctx.out(0), ctx.out(1)],
                    epsilon=float(ctx.arg("epsilon", 1e-5)), decay=float(ctx.arg("decay", 1.0)))


@caffe2_op("RmsProp")
def _rmsprop(ctx):
    return ctx.emit("Caffe2RmsPropUpdate", ctx.inputs()[:4], [ctx.out(k) for k in range(3)],
                    decay=float(ctx.arg("decay", 0.9)), momentum=float(ctx.arg("momentum", 0.0)),
                    epsilon=float(ctx.arg("epsilon", 1e-5)))


# -- gradient operators a program may write itself --------------------------------------------------

def _from_output_gradient(core_type, **axis):
    def lower(ctx):
        y, dy = ctx.input(0), ctx.input(1)
        args = {k: int(ctx.arg(k, v)) for k, v in axis.items()}
        return ctx.emit(core_type, [y, dy], [ctx.out(0)], **args)
    return lower


for _type in ("ReluGradient", "SigmoidGradient", "TanhGradient"):
    caffe2_op(_type)(_from_output_gradient(_type))
caffe2_op("SoftmaxGradient")(_from_output_gradient("SoftmaxGradient", axis=1))


# -- host operators: no arithmetic, run by the workspace between compiled graphs -----------------------
# ``env`` offers feed(name, array), fetch(name), host_blob(name), set_host_blob(name, object).

@host_op("CreateDB")
def _create_db(env, op_def, args):
    from dragon.vm.caffe2.python.helpers.db_input import DBReader
    env.set_host_blob(op_def.output[0], DBReader(args["db"], args.get("db_type", "lmdb"),
                                                 num_shards=args.get("num_shards", 1),
                                                 shard_id=args.get("shard_id", 0)))


@host_op("TensorProtosDBInput")
def _tensor_protos_db_input(env, op_def, args):
    reader = env.host_blob(op_def.input[0])
    if not hasattr(reader, "read"):
        raise RuntimeError(f"{describe(op_def)}: '{op_def.input[0]}' is not a DB reader; make it "
                           f"with CreateDB")
    arrays = reader.read(int(args.get("batch_size", 0)) or 1)
    if len(arrays) < len(op_def.output):
        raise RuntimeError(f"{describe(op_def)}: the DB records hold {len(arrays)} tensors, the "
                           f"operator outputs {len(op_def.output)}")
    for name, array in zip(op_def.output, arrays):
        env.feed(name, array)


@host_op("CreateMutex")
def _create_mutex(env, op_def, args):
    import threading
    env.set_host_blob(op_def.output[0], threading.Lock())


@host_op("Print")
def _print(env, op_def, args):
    for name in op_def.input:
        value = env.fetch(name)
        print(f"{name} ({value.dtype}, shape {tuple(value.shape)}):\n{value}")
