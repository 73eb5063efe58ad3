"""``brew.sum`` and ``brew.transpose``."""
from __future__ import annotations


def sum(model, blob_in, blob_out, **kwargs):  # noqa: A001 - Caffe2's name
    """Add Sum of the blobs ``blob_in`` (equal shapes)."""
    return model.net.Sum(blob_in, blob_out, **kwargs)


def transpose(model, blob_in, blob_out, use_cudnn=False, **kwargs):
    """Add Transpose (``axes=[...]``; reversed by default)."""
    if use_cudnn:
        kwargs["engine"] = "CUDNN"
    return model.net.Transpose(blob_in, blob_out, **kwargs)
