"""``brew.relu``, ``brew.prelu``, ``brew.tanh`` and ``brew.sigmoid``."""
from __future__ import annotations

from dragon.vm.caffe2.python.model_helper import (ExternalInitializer, Initializer,
                                                  ParameterTags)


def relu(model, blob_in, blob_out, use_cudnn=False, order="NCHW", **kwargs):
    """Add Relu (in place when blob_out is blob_in): ``brew.relu(model, fc3, fc3)``."""
    if use_cudnn:
        kwargs["engine"] = "CUDNN"
    return model.net.Relu(blob_in, blob_out, order=order, **kwargs)


def prelu(model, blob_in, blob_out, num_channels=1, slope_init=None, **kwargs):
    """Add PRelu with a learned slope ``<blob_out>_slope`` of ``num_channels`` (0.25 each)."""
    name, args = slope_init or ("ConstantFill", {"value": 0.25})
    initializer = Initializer(name, **args) if model.init_params else ExternalInitializer()
    slope = model.create_param(param_name=blob_out + "_slope", shape=[num_channels],
                               initializer=initializer, tags=ParameterTags.WEIGHT)
    return model.net.PRelu([blob_in, slope], [blob_out])


def tanh(model, blob_in, blob_out, use_cudnn=False, order="NCHW", **kwargs):
    if use_cudnn:
        kwargs["engine"] = "CUDNN"
    return model.net.Tanh(blob_in, blob_out, **kwargs)


def sigmoid(model, blob_in, blob_out, use_cudnn=False, order="NCHW", **kwargs):
    if use_cudnn:
        kwargs["engine"] = "CUDNN"
    return model.net.Sigmoid(blob_in, blob_out, **kwargs)
