"""``brew.fc``: a fully connected layer, Y = X W^T + b with W (dim_out, dim_in)."""
from __future__ import annotations

from dragon.vm.caffe2.python.model_helper import (ExternalInitializer, ParameterTags,
                                                  update_initializer)

_DROPPED = ("order", "use_cudnn", "cudnn_exhaustive_search", "ws_nbytes_limit")


def fc(model, blob_in, blob_out, dim_in, dim_out, weight_init=None, bias_init=None,
       WeightInitializer=None, BiasInitializer=None, **kwargs):  # noqa: N803 - Caffe2's names
    """Add FC with parameters ``<blob_out>_w`` (XavierFill) and ``<blob_out>_b`` (ConstantFill).

    >>> fc3 = brew.fc(model, pool2, "fc3", dim_in=800, dim_out=500)
    """
    weights = update_initializer(WeightInitializer, weight_init, ("XavierFill", {}))
    biases = update_initializer(BiasInitializer, bias_init, ("ConstantFill", {}))
    if not model.init_params:
        weights, biases = ExternalInitializer(), ExternalInitializer()
    blob_out = blob_out or model.net.NextName()
    w = model.create_param(param_name=blob_out + "_w", shape=[dim_out, dim_in],
                           initializer=weights, tags=ParameterTags.WEIGHT)
    b = model.create_param(param_name=blob_out + "_b", shape=[dim_out], initializer=biases,
                           tags=ParameterTags.BIAS)
    for key in _DROPPED:
        kwargs.pop(key, None)
    return model.net.FC([blob_in, w, b], blob_out, **kwargs)
