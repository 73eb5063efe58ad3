"""``brew.concat`` and ``brew.depth_concat``."""
from __future__ import annotations


def concat(model, blobs_in, blob_out, **kwargs):
    """Add Concat (axis 1 for NCHW); the sizes go to ``_<blob_out>_concat_dims``."""
    return model.net.Concat(blobs_in, [blob_out, "_" + blob_out + "_concat_dims"], **kwargs)[0]


def depth_concat(model, blobs_in, blob_out, **kwargs):
    """``concat`` along the channel axis (Caffe2's older name)."""
    return concat(model, blobs_in, blob_out, **kwargs)
