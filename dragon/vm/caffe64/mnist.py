"""MNIST IDX files to Caffe64 text files (what the original's ``mnist/dl.py`` prepares).

    from dragon.vm.caffe64 import mnist
    images, labels = mnist.read_idx_pair("../shared/data/mnist", "t10k")
    mnist.write_split(images, labels, "out/", train=8000, test=2000)
    # out/trainX.txt out/trainY.txt out/testX.txt out/testY.txt

Pixels are written as integers minus 128 (-128..127), labels as class indices.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """The array in an IDX file (gzip-compressed when the name ends in ``.gz``).

    >>> read_idx("t10k-labels-idx1-ubyte.gz").shape
    (10000,)
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    ndim = data[3]
    dims = np.frombuffer(data, ">u4", count=ndim, offset=4).astype(np.int64)
    dtype = np.dtype(_IDX_TYPES[data[2]])
    count = int(np.prod(dims))
    body = 4 + 4 * ndim
    if len(data) - body < count * dtype.itemsize:
        raise ValueError(f"{path}: holds {len(data) - body} bytes of data, "
                         f"shape {tuple(dims)} needs {count * dtype.itemsize}")
    return np.frombuffer(data, dtype, count=count, offset=body).reshape(tuple(dims))


def read_idx_pair(folder, prefix="t10k"):
    """``(images (N, 784) uint8, labels (N,) uint8)`` from ``prefix-images/labels`` files."""
    folder = Path(folder)
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
    return images.reshape(len(images), -1), labels


def write_split(images, labels, out_dir, train=8000, test=2000):
    """Write the first ``train`` samples and the last ``test`` as Caffe64 text files.

    Returns the paths ``{"trainX", "trainY", "testX", "testY"}``.
    """
    from dragon.vm.caffe64.data import write_matrix
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if train + test > len(images):
        raise ValueError(f"asked for {train} + {test} samples, there are {len(images)}")
    pixels = images.astype(np.int16) - 128
    parts = {"trainX": pixels[:train], "trainY": labels[:train],
             "testX": pixels[len(images) - test:], "testY": labels[len(labels) - test:]}
    paths = {}
    for name, values in parts.items():
        paths[name] = out_dir / f"{name}.txt"
        write_matrix(paths[name], values, fmt="%d")
    return paths
