"""``brew.dropout``."""
from __future__ import annotations


def dropout(model, blob_in, blob_out, use_cudnn=False, **kwargs):
    """Add Dropout (ratio, is_test); the mask goes to ``_<blob_out>_mask``."""
    if use_cudnn:
        kwargs["engine"] = "CUDNN"
    return model.net.Dropout(blob_in, [blob_out, "_" + blob_out + "_mask"], **kwargs)[0]
