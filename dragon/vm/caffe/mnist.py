"""Reading MNIST's IDX files (gzipped or not), as Caffe's ``convert_mnist_data`` does.

    from dragon.vm.caffe import mnist
    images, labels = mnist.load("/work/shared/data/mnist", "t10k")
    images.shape, images.dtype           # (10000, 1, 28, 28) uint8
    labels[:3]                           # array([7, 2, 1])

IDX: a big-endian header (two zero bytes, a type code, the number of
dimensions, one 32-bit size per dimension), then the values in C order.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

__all__ = ["read_idx", "load", "IDXError"]

# IDX type code -> numpy dtype (big-endian where it matters).
_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


class IDXError(ValueError):
    """A file that is not a well-formed IDX file; names the file and the problem."""


def read_idx(path):
    """The array stored in an IDX file (``.gz`` files are decompressed).

    >>> read_idx("t10k-labels-idx1-ubyte.gz").shape
    (10000,)
    """
    path = os.fspath(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise IDXError(f"{path}: not an IDX file (magic bytes {data[:4].hex() or 'missing'})")
    code, ndim = data[2], data[3]
    if code not in _IDX_TYPES:
        raise IDXError(f"{path}: unknown IDX value type 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{path}: truncated header ({len(data)} bytes for {ndim} dimensions)")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = _IDX_TYPES[code]
    count = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != count * dtype.itemsize:
        raise IDXError(f"{path}: shape {shape} needs {count * dtype.itemsize} bytes of values, "
                       f"the file has {len(data) - header}")
    values = np.frombuffer(data, dtype, count=count, offset=header)
    return values.astype(dtype.newbyteorder("=")).reshape(shape)


def load(folder, split="t10k"):
    """``(images, labels)`` of an MNIST split in ``folder``: images Nx1x28x28 uint8.

    split: file prefix, ``'train'`` or ``'t10k'``. Files may be gzipped.

    >>> images, labels = load("/work/shared/data/mnist")
    """
    arrays = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        base = os.path.join(os.fspath(folder), f"{split}-{kind}")
        path = base + ".gz" if os.path.exists(base + ".gz") else base
        if not os.path.exists(path):
            raise FileNotFoundError(f"no MNIST file {base}[.gz]")
        arrays.append(read_idx(path))
    images, labels = arrays
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise IDXError(f"{folder}: {split} images {images.shape} and labels {labels.shape} "
                       f"do not pair up")
    return images[:, np.newaxis], labels.astype(np.int64)
