"""MNIST for the Theano tutorials: ``load_data()`` returns shared datasets, tutorial style.

    from dragon.vm.theano.mnist import load_data
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = load_data()
    train_x.get_value(borrow=True).shape          # (7000, 784), floatX in [0, 1]
    train_y                                       # int32 labels: T.cast of a floatX shared

The data is the MNIST test file set (``t10k-*-idx?-ubyte[.gz]``) in
``/work/shared/data/mnist``: its first 8,000 digits train (the last ``n_valid`` of them
form the validation set), its last 2,000 test. ``dataset`` may also name the tutorials'
``mnist.pkl.gz`` (a pickled (train, valid, test) triple), used as it is.
"""
from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np

DEFAULT_FOLDER = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mnist"
N_TRAIN = 8000
N_TEST = 2000

_IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path):
    """The array in an IDX file (gzipped or not): a big-endian header, then the values."""
    path = os.fspath(path)
    with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an IDX file (header {data[:4].hex()})")
    ndim = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = _IDX_TYPES[data[2]]
    count = int(np.prod(shape, dtype=np.int64))
    offset = 4 + 4 * ndim
    if len(data) - offset != count * dtype.itemsize:
        raise ValueError(f"{path}: shape {shape} needs {count * dtype.itemsize} bytes, the file "
                         f"has {len(data) - offset}")
    return np.frombuffer(data, dtype, count=count, offset=offset).reshape(shape)


def _idx_file(folder, split, kind):
    base = Path(folder) / f"{split}-{kind}-ubyte"
    for path in (base.with_name(base.name + ".gz"), base):
        if path.exists():
            return path
    raise FileNotFoundError(f"no MNIST file {base}[.gz]")


def load_arrays(folder=None, split="t10k"):
    """(images (n, 784) float32 in [0, 1], labels (n,) int64) of an MNIST split."""
    folder = DEFAULT_FOLDER if folder is None else folder
    images = read_idx(_idx_file(folder, split, "images-idx3"))
    labels = read_idx(_idx_file(folder, split, "labels-idx1"))
    if len(images) != len(labels):
        raise ValueError(f"{folder}: {len(images)} images but {len(labels)} labels")
    return (images.reshape(len(images), -1).astype(np.float32) / 255.0,
            labels.astype(np.int64))


def split_arrays(folder=None, n_valid=1000):
    """[(x, y)] * 3 for train, valid, test: the first 8,000 digits minus the last ``n_valid``
    of them, those ``n_valid``, and the last 2,000 digits."""
    images, labels = load_arrays(folder)
    if len(images) < N_TRAIN + N_TEST:
        raise ValueError(f"MNIST in {folder or DEFAULT_FOLDER} has {len(images)} digits; "
                         f"{N_TRAIN + N_TEST} are needed")
    n_fit = N_TRAIN - n_valid
    return [(images[:n_fit], labels[:n_fit]),
            (images[n_fit:N_TRAIN], labels[n_fit:N_TRAIN]),
            (images[-N_TEST:], labels[-N_TEST:])]


def shared_dataset(data_xy, borrow=True):
    """(shared x in floatX, int32 labels): the labels are stored as floatX (the tutorials
    keep them next to the images) and cast when used."""
    import dragon.vm.theano as theano
    import dragon.vm.theano.tensor as T
    data_x, data_y = data_xy
    shared_x = theano.shared(np.asarray(data_x, dtype=theano.config.floatX), borrow=borrow)
    shared_y = theano.shared(np.asarray(data_y, dtype=theano.config.floatX), borrow=borrow)
    return shared_x, T.cast(shared_y, "int32")


def load_data(dataset=None, n_valid=1000):
    """The tutorials' ``load_data``: [(train_x, train_y), (valid_x, valid_y), (test_x, test_y)]
    as shared variables (see the module docstring).

    dataset: a folder of MNIST IDX files (default ``DEFAULT_FOLDER``) or an ``mnist.pkl.gz``.
    """
    if dataset is not None and str(dataset).endswith((".pkl.gz", ".pkl")):
        opener = gzip.open if str(dataset).endswith(".gz") else open
        with opener(dataset, "rb") as f:
            try:
                parts = pickle.load(f, encoding="latin1")
            except TypeError:
                parts = pickle.load(f)
    else:
        parts = split_arrays(dataset, n_valid)
    return [shared_dataset(part) for part in parts]
