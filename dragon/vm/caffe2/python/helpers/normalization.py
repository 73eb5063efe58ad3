"""``brew.softmax``, ``brew.lrn`` and ``brew.spatial_bn``."""
from __future__ import annotations

from dragon.vm.caffe2.python.model_helper import (ExternalInitializer, ParameterTags,
                                                  update_initializer)


def softmax(model, blob_in, blob_out=None, use_cudnn=False, **kwargs):
    """Add Softmax over axis 1 (and every later axis, as Caffe2 does)."""
    if use_cudnn:
        kwargs["engine"] = "CUDNN"
    return model.net.Softmax(blob_in, blob_out or model.net.NextName(), **kwargs)


def lrn(model, blob_in, blob_out, order="NCHW", use_cudnn=False, **kwargs):
    """Add LRN across channels; also outputs the scale as ``_<blob_out>_scale``."""
    if use_cudnn:
        kwargs["engine"] = "CUDNN"
    return model.net.LRN(blob_in, [blob_out, "_" + blob_out + "_scale"], order=order,
                         **kwargs)[0]


def spatial_bn(model, blob_in, blob_out, dim_in, init_scale=1.0, init_bias=0.0,
               ScaleInitializer=None, BiasInitializer=None, RunningMeanInitializer=None,  # noqa: N803
               RunningVarianceInitializer=None, order="NCHW", **kwargs):
    """Add SpatialBN with ``_s`` (scale), ``_b`` (bias) and running ``_rm``, ``_riv``.

    Training (is_test=0) also writes the saved statistics ``<blob_out>_sm`` and ``_siv``.
    """
    blob_out = blob_out or model.net.NextName()
    if model.init_params:
        scale = update_initializer(ScaleInitializer, ("ConstantFill", {"value": init_scale}),
                                   ("ConstantFill", {}))
        bias = update_initializer(BiasInitializer, ("ConstantFill", {"value": init_bias}),
                                  ("ConstantFill", {}))
        mean = update_initializer(RunningMeanInitializer, ("ConstantFill", {"value": 0.0}),
                                  ("ConstantFill", {}))
        var = update_initializer(RunningVarianceInitializer, ("ConstantFill", {"value": 1.0}),
                                 ("ConstantFill", {}))
    else:
        scale = bias = mean = var = ExternalInitializer()
    s = model.create_param(param_name=blob_out + "_s", shape=[dim_in], initializer=scale,
                           tags=ParameterTags.WEIGHT)
    b = model.create_param(param_name=blob_out + "_b", shape=[dim_in], initializer=bias,
                           tags=ParameterTags.BIAS)
    rm = model.create_param(param_name=blob_out + "_rm", shape=[dim_in], initializer=mean,
                            tags=ParameterTags.COMPUTED_PARAM)
    riv = model.create_param(param_name=blob_out + "_riv", shape=[dim_in], initializer=var,
                             tags=ParameterTags.COMPUTED_PARAM)
    inputs = [blob_in, s, b, rm, riv]
    if kwargs.get("is_test"):
        return model.net.SpatialBN(inputs, [blob_out], order=order, **kwargs)
    outputs = [blob_out, rm, riv, blob_out + "_sm", blob_out + "_siv"]
    return model.net.SpatialBN(inputs, outputs, order=order, **kwargs)[0]
