"""2-d convolution of ``theano.tensor.nnet`` (Theano's abstract conv interface).

    from dragon.vm.theano.tensor.nnet import conv2d
    out = conv2d(x, W, border_mode="half", subsample=(2, 2))   # x (N, C, H, W), W (K, C, kh, kw)
    out = conv2d(x, W, filter_flip=False)                          # cross-correlation
    out = conv2d(x, W, filter_dilation=(2, 2), num_groups=2)

``filter_flip=True`` (the default) is a true convolution: the kernels are flipped
(a core StridedSlice with step -1, so gradients reach ``W``) before the core's
``Conv2d``, which cross-correlates. border_mode: 'valid' (no padding), 'full'
(pad kernel - 1), 'half' (pad kernel // 2), an int, a pair of ints, or a pair of
(before, after) pairs. ``conv2d_grad_wrt_inputs`` / ``conv2d_transpose`` lower to
the core's ``Conv2dTranspose``.
"""
from __future__ import annotations

import warnings

import numpy as np

from dragon.core.tensor import apply as core_apply
from dragon.ops.array import SLICE_END
from dragon.vm.theano.tensor import basic
from dragon.vm.theano.tensor import type as ttype
from dragon.vm.theano.tensor.type import TensorType
from dragon.vm.theano.tensor.var import TensorConstant, as_tensor_variable, lowered


# -- arguments -----------------------------------------------------------------------------

def _pair(value, name, minimum):
    values = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(values) != 2 or any(not isinstance(v, (int, np.integer)) or v < minimum
                               for v in values):
        raise ValueError(f"{name} must be a pair of ints >= {minimum}, got {value!r}")
    return tuple(int(v) for v in values)


def normalize_border_mode(border_mode):
    """'valid', 'full', 'half', or ((top, bottom), (left, right)) pads."""
    if isinstance(border_mode, str):
        if border_mode not in ("valid", "full", "half"):
            raise ValueError(f'invalid border_mode {border_mode!r}, which must be either "valid", '
                             f'"full", "half", an integer or a tuple of 2 integers')
        return border_mode
    if isinstance(border_mode, (int, np.integer)):
        border_mode = (int(border_mode),) * 2
    if not isinstance(border_mode, (tuple, list)) or len(border_mode) != 2:
        raise ValueError(f'invalid border_mode {border_mode!r}, which must be either "valid", '
                         f'"full", "half", an integer or a tuple of 2 integers')
    pads = []
    for entry in border_mode:
        pair = tuple(entry) if isinstance(entry, (tuple, list)) else (entry, entry)
        if len(pair) != 2 or any(not isinstance(p, (int, np.integer)) or p < 0 for p in pair):
            raise ValueError(f"invalid border_mode {border_mode!r}: pads must be ints >= 0")
        pads.append(tuple(int(p) for p in pair))
    if all(p == (0, 0) for p in pads):
        return "valid"
    return tuple(pads)


def border_pads(border_mode, kernel, dilation):
    """((top, bottom), (left, right)) for a border mode, kernel size and dilation."""
    if border_mode == "valid":
        return ((0, 0), (0, 0))
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
    if border_mode == "full":
        return tuple((s - 1, s - 1) for s in spans)
    if border_mode == "half":
        return tuple((s // 2, s // 2) for s in spans)
    return border_mode


def get_conv_output_shape(image_shape, kernel_shape, border_mode, subsample,
                          filter_dilation=None):
    """The output shape of conv2d for these shapes (None where a size is unknown).

    >>> get_conv_output_shape((8, 3, 32, 32), (16, 3, 5, 5), "half", (2, 2))
    (8, 16, 16, 16)
    """
    dilation = (1, 1) if filter_dilation is None else _pair(filter_dilation, "filter_dilation", 1)
    subsample = _pair(subsample, "subsample", 1)
    border_mode = normalize_border_mode(border_mode)
    kernel = tuple(kernel_shape[2:])
    if any(k is None for k in kernel):
        sizes = (None, None)
    else:
        pads = border_pads(border_mode, kernel, dilation)
        sizes = []
        for size, k, d, (before, after), s in zip(image_shape[2:], kernel, dilation, pads,
                                                  subsample):
            sizes.append(None if size is None else
                         (size + before + after - ((k - 1) * d + 1)) // s + 1)
    return (image_shape[0], kernel_shape[0]) + tuple(sizes)


def _check_shape(var, core, given, what):
    if given is None:
        return
    given = tuple(given)
    actual = tuple(core.shape)
    if len(given) != len(actual) or any(g is not None and int(g) != a
                                        for g, a in zip(given, actual)):
        raise ValueError(f"conv2d: the {what} '{var}' has shape {actual}, but {what}_shape "
                         f"says {given}")


def _flip(w):
    """W with its kernels flipped in both spatial axes (w[:, :, ::-1, ::-1])."""
    return core_apply("StridedSlice", [w], begin=[0, 0, SLICE_END, SLICE_END],
                      end=[SLICE_END, SLICE_END, -SLICE_END - 1, -SLICE_END - 1],
                      step=[1, 1, -1, -1])


def _core_pads(pads):
    (top, bottom), (left, right) = pads
    return [top, left, bottom, right]


def _static(shape):
    if shape is None:
        return None
    entries = []
    for d in shape:
        if d is None:
            entries.append(None)
        elif isinstance(d, TensorConstant):
            entries.append(int(d.data))
        elif isinstance(d, (int, np.integer)):
            entries.append(int(d))
        else:
            entries.append(None)     # symbolic sizes are checked by the core's shape rules
    return tuple(entries)


# -- conv2d ----------------------------------------------------------------------------------

def _lower_conv2d(ctx, node, x, w, *, border_mode, subsample, filter_flip, filter_dilation,
                  num_groups, input_shape, filter_shape):
    _check_shape(node.inputs[0], x, input_shape, "input")
    _check_shape(node.inputs[1], w, filter_shape, "filters")
    dtype = node.outputs[0].dtype
    x, w = basic.cast_core(x, dtype), basic.cast_core(w, dtype)
    if filter_flip:
        w = _flip(w)
    pads = border_pads(border_mode, tuple(w.shape[2:]), filter_dilation)
    return core_apply("Conv2d", [x, w], strides=list(subsample), pads=_core_pads(pads),
                      dilations=list(filter_dilation), group=num_groups)


def conv2d(input, filters, input_shape=None, filter_shape=None, border_mode="valid",  # noqa: A002
           subsample=(1, 1), filter_flip=True, image_shape=None, filter_dilation=(1, 1),
           num_groups=1, unshared=False, **kwargs):
    """2-d convolution of a batch of images with a bank of filters.

    input: (batch, channels, rows, cols); filters: (out channels, channels / num_groups,
    rows, cols). input_shape / filter_shape: optional, checked when the function runs.

    >>> conv_out = conv2d(input=x, filters=W, filter_shape=(20, 1, 5, 5),
    ...                   input_shape=(500, 1, 28, 28))
    """
    if "imshp_logical" in kwargs or "kshp_logical" in kwargs:
        raise ValueError("Keyword arguments 'imshp_logical' and 'kshp_logical' for conv2d are "
                         "not supported")
    if kwargs:
        warnings.warn(f"{sorted(kwargs)} are deprecated in the conv2d interface and will be "
                      f"ignored.", stacklevel=2)
    if image_shape is not None:
        warnings.warn("The `image_shape` keyword argument to `tensor.nnet.conv2d` is deprecated, "
                      "it has been renamed to `input_shape`.", stacklevel=2)
        if input_shape is not None:
            raise ValueError("input_shape and image_shape should not be provided at the same "
                             "time.")
        input_shape = image_shape
    if unshared:
        raise NotImplementedError("conv2d(unshared=True) is not supported")
    x = as_tensor_variable(input)
    w = as_tensor_variable(filters)
    if x.ndim != 4:
        raise TypeError(f"conv2d: the input must be a 4-d tensor (batch, channels, rows, cols), "
                        f"got '{x}' ({x.type})")
    if w.ndim != 4:
        raise TypeError(f"conv2d: the filters must be a 4-d tensor (out channels, in channels, "
                        f"rows, cols), got '{w}' ({w.type})")
    num_groups = int(num_groups)
    if num_groups < 1:
        raise ValueError(f"num_groups must be >= 1, got {num_groups}")
    dtype = ttype.upcast(x.dtype, w.dtype)
    if not dtype.startswith("float"):
        raise TypeError(f"conv2d needs float tensors, got '{x}' ({x.type}) and '{w}' ({w.type})")
    pattern = (x.broadcastable[0], w.broadcastable[0], False, False)
    return lowered(_lower_conv2d, [x, w], TensorType(dtype, pattern), name="conv2d",
                   border_mode=normalize_border_mode(border_mode),
                   subsample=_pair(subsample, "subsample", 1), filter_flip=bool(filter_flip),
                   filter_dilation=_pair(filter_dilation, "filter_dilation", 1),
                   num_groups=num_groups, input_shape=_static(input_shape),
                   filter_shape=_static(filter_shape))


# -- the transposed convolution ----------------------------------------------------------------

def _lower_conv2d_grad_inputs(ctx, node, dy, w, *dims, border_mode, subsample, filter_flip,
                              filter_dilation, num_groups, template, filter_shape):
    _check_shape(node.inputs[1], w, filter_shape, "filters")
    shape = basic._resolve_dims(ctx, node, template, 2)
    dtype = node.outputs[0].dtype
    dy, w = basic.cast_core(dy, dtype), basic.cast_core(w, dtype)
    if filter_flip:
        w = _flip(w)
    kernel = tuple(w.shape[2:])
    pads = border_pads(border_mode, kernel, filter_dilation)
    extra = []
    for a in range(2):
        span = (kernel[a] - 1) * filter_dilation[a] + 1
        natural = subsample[a] * (dy.shape[2 + a] - 1) + span - sum(pads[a])
        extra.append(shape[2 + a] - natural)
        if not 0 <= extra[-1] < subsample[a]:
            raise ValueError(f"conv2d_grad_wrt_inputs: an output of {dy.shape[2 + a]} along axis "
                             f"{2 + a} cannot come from an input of {shape[2 + a]} with kernel "
                             f"{kernel}, subsample {subsample} and border_mode {border_mode}")
    return core_apply("Conv2dTranspose", [dy, w], strides=list(subsample),
                      pads=_core_pads(pads), dilations=list(filter_dilation), group=num_groups,
                      output_padding=extra)


def conv2d_grad_wrt_inputs(output_grad, filters, input_shape, filter_shape=None,
                           border_mode="valid", subsample=(1, 1), filter_flip=True,
                           filter_dilation=(1, 1), num_groups=1):
    """The gradient of conv2d with respect to its input (a transposed convolution).

    input_shape: the shape of conv2d's input (its last two sizes are required; they may
    be symbolic).
    """
    dy = as_tensor_variable(output_grad)
    w = as_tensor_variable(filters)
    if dy.ndim != 4 or w.ndim != 4:
        raise TypeError(f"conv2d_grad_wrt_inputs takes 4-d tensors, got '{dy}' ({dy.type}) and "
                        f"'{w}' ({w.type})")
    if len(input_shape) != 4:
        raise ValueError(f"input_shape must have 4 entries, got {input_shape!r}")
    entries = [dy.shape[0] if input_shape[0] is None else input_shape[0],
               w.shape[1] * num_groups if input_shape[1] is None else input_shape[1]]
    entries += list(input_shape[2:])
    if any(e is None for e in entries):
        raise ValueError(f"conv2d_grad_wrt_inputs needs the input's rows and columns, got "
                         f"input_shape {input_shape!r}")
    entries = basic._as_shape_entries(entries)
    template, variables = basic._shape_template(entries)
    dtype = ttype.upcast(dy.dtype, w.dtype)
    pattern = (dy.broadcastable[0], False, False, False)
    return lowered(_lower_conv2d_grad_inputs, [dy, w] + variables, TensorType(dtype, pattern),
                   name="conv2d_grad_wrt_inputs", connected=[True, True] + [False] * len(variables),
                   border_mode=normalize_border_mode(border_mode),
                   subsample=_pair(subsample, "subsample", 1), filter_flip=bool(filter_flip),
                   filter_dilation=_pair(filter_dilation, "filter_dilation", 1),
                   num_groups=int(num_groups), template=template,
                   filter_shape=_static(filter_shape))


def conv2d_transpose(input, filters, output_shape, filter_shape=None,  # noqa: A002
                     border_mode="valid", input_dilation=(1, 1), filter_flip=True,
                     filter_dilation=(1, 1), num_groups=1):
    """Transposed convolution: the image whose conv2d with ``filters`` (stride
    ``input_dilation``) has the shape of ``input``; filters (input channels, output
    channels / num_groups, rows, cols).

    >>> up = conv2d_transpose(h, W, output_shape=(None, 3, 32, 32), input_dilation=(2, 2))
    """
    return conv2d_grad_wrt_inputs(input, filters, output_shape, filter_shape=filter_shape,
                                  border_mode=border_mode, subsample=input_dilation,
                                  filter_flip=filter_flip, filter_dilation=filter_dilation,
                                  num_groups=num_groups)
