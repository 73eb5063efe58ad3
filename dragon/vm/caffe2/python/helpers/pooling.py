"""``brew.max_pool`` and ``brew.average_pool``."""
from __future__ import annotations


def max_pool(model, blob_in, blob_out, use_cudnn=False, order="NCHW", **kwargs):
    """Add MaxPool: ``brew.max_pool(model, conv1, "pool1", kernel=2, stride=2)``."""
    if use_cudnn:
        kwargs["engine"] = "CUDNN"
    return model.net.MaxPool(blob_in, blob_out, order=order, **kwargs)


def average_pool(model, blob_in, blob_out, use_cudnn=False, order="NCHW", **kwargs):
    """Add AveragePool: ``brew.average_pool(model, conv5, "pool5", global_pooling=1)``."""
    if use_cudnn:
        kwargs["engine"] = "CUDNN"
    return model.net.AveragePool(blob_in, blob_out, order=order, **kwargs)
