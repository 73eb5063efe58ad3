"""``brew.conv``, ``brew.group_conv`` and ``brew.conv_transpose`` (NCHW)."""
from __future__ import annotations

from dragon.vm.caffe2.python.model_helper import (ExternalInitializer, ParameterTags,
                                                  update_initializer)


def _engine(kwargs, use_cudnn, cudnn_exhaustive_search, ws_nbytes_limit):
    if use_cudnn:
        kwargs["engine"] = "CUDNN"
        kwargs["exhaustive_search"] = cudnn_exhaustive_search
        if ws_nbytes_limit:
            kwargs["ws_nbytes_limit"] = ws_nbytes_limit


def _initializers(model, weight_init, bias_init, WeightInitializer, BiasInitializer):  # noqa: N803
    weights = update_initializer(WeightInitializer, weight_init, ("XavierFill", {}))
    biases = update_initializer(BiasInitializer, bias_init, ("ConstantFill", {}))
    if not model.init_params:
        return ExternalInitializer(), ExternalInitializer()
    return weights, biases


def conv(model, blob_in, blob_out, dim_in, dim_out, kernel, weight_init=None, bias_init=None,
         WeightInitializer=None, BiasInitializer=None, group=1, transform_inputs=None,  # noqa: N803
         use_cudnn=False, order="NCHW", cudnn_exhaustive_search=False, ws_nbytes_limit=None,
         **kwargs):
    """Add Conv with ``<blob_out>_w`` (dim_out, dim_in / group, k, k) and ``<blob_out>_b``.

    >>> conv1 = brew.conv(model, data, "conv1", dim_in=1, dim_out=20, kernel=5)
    """
    if order != "NCHW":
        raise ValueError(f"brew.conv: order '{order}' is not supported; use NCHW")
    kernels = list(kernel) if isinstance(kernel, (list, tuple)) else [kernel] * 2
    weights, biases = _initializers(model, weight_init, bias_init, WeightInitializer,
                                    BiasInitializer)
    use_bias = not kwargs.pop("no_bias", False)
    blob_out = blob_out or model.net.NextName()
    w = model.create_param(param_name=blob_out + "_w", shape=[dim_out, dim_in // group] + kernels,
                           initializer=weights, tags=ParameterTags.WEIGHT)
    inputs = [blob_in, w]
    if use_bias:
        inputs.append(model.create_param(param_name=blob_out + "_b", shape=[dim_out],
                                         initializer=biases, tags=ParameterTags.BIAS))
    if transform_inputs is not None:
        transform_inputs(model, blob_out, inputs)
    _engine(kwargs, use_cudnn, cudnn_exhaustive_search, ws_nbytes_limit)
    if group != 1:
        kwargs["group"] = group
    if isinstance(kernel, (list, tuple)):
        return model.net.Conv(inputs, blob_out, kernel_h=kernels[0], kernel_w=kernels[1],
                              order=order, **kwargs)
    return model.net.Conv(inputs, blob_out, kernel=kernel, order=order, **kwargs)


def group_conv(model, blob_in, blob_out, dim_in, dim_out, kernel, weight_init=None,
               bias_init=None, group=1, **kwargs):
    """A grouped convolution: ``conv`` with ``group`` groups."""
    return conv(model, blob_in, blob_out, dim_in, dim_out, kernel, weight_init=weight_init,
                bias_init=bias_init, group=group, **kwargs)


def conv_transpose(model, blob_in, blob_out, dim_in, dim_out, kernel, weight_init=None,
                   bias_init=None, use_cudnn=False, order="NCHW", cudnn_exhaustive_search=False,
                   ws_nbytes_limit=None, **kwargs):
    """Add ConvTranspose with ``<blob_out>_w`` (dim_in, dim_out, k, k) and ``<blob_out>_b``."""
    if order != "NCHW":
        raise ValueError(f"brew.conv_transpose: order '{order}' is not supported; use NCHW")
    weights, biases = _initializers(model, weight_init, bias_init, None, None)
    blob_out = blob_out or model.net.NextName()
    w = model.create_param(param_name=blob_out + "_w", shape=[dim_in, dim_out, kernel, kernel],
                           initializer=weights, tags=ParameterTags.WEIGHT)
    b = model.create_param(param_name=blob_out + "_b", shape=[dim_out], initializer=biases,
                           tags=ParameterTags.BIAS)
    _engine(kwargs, use_cudnn, cudnn_exhaustive_search, ws_nbytes_limit)
    return model.net.ConvTranspose([blob_in, w, b], blob_out, kernel=kernel, order=order,
                                   **kwargs)
