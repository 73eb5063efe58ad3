"""pycaffe's Blob: an n-d float32 array with its gradient (``data``, ``diff``).

A Net's blobs live in the workspace: ``data`` and ``diff`` are the very arrays
the compiled plans read and write, so writing into them feeds the net and
reading them after ``forward()``/``backward()`` sees the results::

    net.blobs["data"].data[...] = images          # feeds the next forward()
    net.forward()
    net.blobs["prob"].data.argmax(axis=1)
    net.blobs["data"].reshape(1, 3, 227, 227)     # the next forward() reshapes the net

``ArrayBlob`` wraps plain arrays: Python layers receive their bottoms and tops
as ArrayBlobs over the arrays of the running plan. ``BlobStorage`` is where a
Net's Blobs find their arrays (workspace names), so a Blob handed out keeps
them alive after the Net is gone, as pycaffe's shared blobs do.
"""
from __future__ import annotations

import numpy as np

from dragon import config


class _BlobShape:
    """Shape accessors shared by both kinds of blob (pycaffe's names)."""

    @property
    def count(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def _legacy(self, index):
        shape = self.shape
        if len(shape) > 4:
            raise ValueError(f"blob {self._label()} has {len(shape)} axes {shape}; num, "
                             f"channels, height and width need at most 4")
        return int(shape[index]) if index < len(shape) else 1

    @property
    def num(self) -> int:
        return self._legacy(0)

    @property
    def channels(self) -> int:
        return self._legacy(1)

    @property
    def height(self) -> int:
        return self._legacy(2)

    @property
    def width(self) -> int:
        return self._legacy(3)

    def _label(self):
        return ""

    def __repr__(self):
        return f"<caffe.Blob {self._label()} shape={self.shape}>"


class Blob(_BlobShape):
    """A blob whose data and diff are arrays of a Net's storage (see the module docstring)."""

    __slots__ = ("_storage", "name", "_data_key", "_diff_key")

    def __init__(self, storage, name, data_key, diff_key):
        self._storage = storage
        self.name = name
        self._data_key = data_key
        self._diff_key = diff_key

    @property
    def data(self) -> np.ndarray:
        """The blob's values: a live, writable float32 array."""
        return self._storage.data(self)

    @data.setter
    def data(self, value):
        self._storage.data(self)[...] = value

    @property
    def diff(self) -> np.ndarray:
        """The gradient of the net's loss with respect to the blob (after ``backward()``)."""
        return self._storage.diff(self)

    @diff.setter
    def diff(self, value):
        self._storage.diff(self)[...] = value

    @property
    def shape(self) -> tuple:
        return self._storage.shape(self)

    def reshape(self, *dims):
        """Give the blob a new shape (new zeroed arrays); a net re-infers its shapes
        from reshaped input blobs on the next ``forward()`` or ``reshape()``."""
        dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (list, tuple)) else dims
        self._storage.reshape(self, tuple(int(d) for d in dims))

    def _label(self):
        return f"'{self.name}'"


class ArrayBlob(_BlobShape):
    """A blob over given arrays, as a Python layer sees its bottoms and tops.

    ``reshape`` replaces the arrays only while ``resizable`` (during
    ``setup``/``reshape`` at build time); inside a running plan a top's shape
    is fixed and reshaping it to another shape is an error.
    """

    __slots__ = ("_data", "_diff", "name", "resizable")

    def __init__(self, data, diff=None, name="", resizable=False):
        self._data = data
        self._diff = diff
        self.name = name
        self.resizable = resizable

    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value):
        self._data[...] = value

    @property
    def diff(self) -> np.ndarray:
        if self._diff is None:
            self._diff = np.zeros_like(self._data)
        return self._diff

    @diff.setter
    def diff(self, value):
        self.diff[...] = value

    @property
    def shape(self) -> tuple:
        return tuple(self._data.shape)

    def reshape(self, *dims):
        dims = dims[0] if len(dims) == 1 and isinstance(dims[0], (list, tuple)) else dims
        shape = tuple(int(d) for d in dims)
        if shape == self.shape:
            return
        if not self.resizable:
            raise ValueError(f"blob {self._label()} cannot change shape from {self.shape} to "
                             f"{shape} while the net runs; set top shapes in reshape()")
        self._data = np.zeros(shape, np.float32)
        self._diff = None

    def _label(self):
        return f"'{self.name}'" if self.name else "(python layer)"


class BlobStorage:
    """The workspace arrays a Net owns, and what its Blobs read.

    A Blob names its data and diff arrays (``None`` for a blob the net does not
    keep at optimization level 3); diffs nothing writes are made when first read.
    """

    def __init__(self, ws):
        self.ws = ws
        self.owned: set = set()
        self.dirty = False              # a blob was reshaped: the net re-infers its shapes
        self.level = config.get_optimization_level()
        self.blob_shapes: dict = {}     # blob name -> shape at the net's last build

    def array(self, name):
        return self.ws.arrays.get(name)

    def ensure(self, name, shape, dtype="float32", fill=0.0):
        """``(array, created)``: array ``name``, remade with ``fill`` unless it has that shape."""
        shape = tuple(int(d) for d in shape)
        array = self.ws.arrays.get(name)
        if array is not None and tuple(array.shape) == shape and array.dtype == np.dtype(dtype):
            return array, False
        array = np.full(shape, fill, dtype=dtype)
        self.ws.arrays[name] = array
        self.owned.add(name)
        return array, True

    def put(self, name, array):
        self.ws.arrays[name] = array
        self.owned.add(name)

    def drop(self, name):
        if name in self.owned:
            self.ws.arrays.pop(name, None)
            self.owned.discard(name)

    # -- what Blob asks --------------------------------------------------------------------
    def _not_kept(self, blob, what):
        return RuntimeError(
            f"blob '{blob.name}' {what} is not kept at optimization level {self.level}: only "
            f"net outputs, losses, params and input blobs are. Call "
            f"dragon.config.set_optimization_level(2) (or lower) before building the net to "
            f"read every blob")

    def data(self, blob):
        if blob._data_key is None:
            raise self._not_kept(blob, "data")
        array = self.ws.arrays.get(blob._data_key)
        if array is None:
            raise RuntimeError(f"blob '{blob.name}': its array '{blob._data_key}' is gone from "
                               f"workspace '{self.ws.name}' (was the workspace reset?)")
        return array

    def diff(self, blob):
        if blob._diff_key is None:
            raise self._not_kept(blob, "diff")
        array = self.ws.arrays.get(blob._diff_key)
        if array is None:
            shape = self.shape(blob)
            array, _ = self.ensure(blob._diff_key, shape)
        return array

    def shape(self, blob):
        if blob._data_key is not None and blob._data_key in self.ws.arrays:
            return tuple(self.ws.arrays[blob._data_key].shape)
        return tuple(self.blob_shapes.get(blob.name, ()))

    def reshape(self, blob, shape):
        if blob._data_key is None:
            raise self._not_kept(blob, "data")
        old = self.ws.arrays.get(blob._data_key)
        if old is not None and tuple(old.shape) == shape:
            return
        self.ensure(blob._data_key, shape)
        if blob._diff_key is not None and blob._diff_key in self.ws.arrays:
            self.ensure(blob._diff_key, shape)
        self.blob_shapes[blob.name] = shape
        self.dirty = True
