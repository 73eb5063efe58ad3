"""``brew.iter``, ``brew.accuracy`` and ``brew.add_weight_decay``."""
from __future__ import annotations

from dragon.vm.caffe2.proto import caffe2_pb2
from dragon.vm.caffe2.python import core


def iter(model, blob_out, **kwargs):  # noqa: A001 - Caffe2's name
    """An int64 [1] counter made 0 by the init net and advanced once per run of the net."""
    kwargs.pop("device_option", None)
    model.param_init_net.ConstantFill([], blob_out, shape=[1], value=0,
                                      dtype=core.DataType.INT64,
                                      device_option=core.DeviceOption(caffe2_pb2.CPU, 0),
                                      **kwargs)
    return model.net.Iter(blob_out, blob_out, **kwargs)


def accuracy(model, blob_in, blob_out, **kwargs):
    """Add Accuracy of predictions ``blob_in[0]`` against labels ``blob_in[1]`` (top_k)."""
    kwargs.pop("device_option", None)
    return model.net.Accuracy(blob_in, blob_out, **kwargs)


def add_weight_decay(model, weight_decay):
    """grad += weight_decay * param for every weight (not biases): L2 regularization.

    Call after AddGradientOperators and before the parameter updates.
    """
    if weight_decay <= 0.0:
        return
    wd = model.param_init_net.ConstantFill([], "wd", shape=[1], value=weight_decay)
    one = model.param_init_net.ConstantFill([], "ONE", shape=[1], value=1.0)
    for param in model.GetWeights():
        grad = model.param_to_grad[param]
        model.net.WeightedSum([grad, one, param, wd], grad)
