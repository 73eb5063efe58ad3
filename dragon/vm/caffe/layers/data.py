"""Data layers: the net's inputs, and the readers that refill them before each forward pass.

    layer { name: "data" type: "Input" top: "data"
            input_param { shape { dim: 1 dim: 3 dim: 224 dim: 224 } } }

Input and MemoryData tops are blobs the program fills (``net.blobs['data'].data[...]
= x``, ``net.set_input_arrays``). DummyData draws its fillers inside the graph.
HDF5Data and ImageData read files: their lowering registers a *feeder* with
``ctx.add_feeder(feed)``; the Net calls ``feed()`` before every forward pass and
copies the arrays it returns (one per ``ctx.input`` the layer made, in order)
into those input blobs. ImageData's ``transform_param`` crop and mirror choose
pixels in the feeder; the mean subtraction and scaling are core ops.
"""
from __future__ import annotations

import logging
import os

import numpy as np

from dragon.vm.caffe.layers.common import layer_error, not_implemented
from dragon.vm.caffe.layers.fillers import filler_tensor, proto_float
from dragon.vm.caffe.layers.registry import lowering

_log = logging.getLogger("dragon.vm.caffe")


def _shape(blob_shape):
    return tuple(int(d) for d in blob_shape.dim)


def _feeder_hook(ctx):
    hook = getattr(ctx, "add_feeder", None)
    if hook is None:
        raise not_implemented(ctx, f"{ctx.type} without a feeder hook in the Net "
                                   "(LayerContext.add_feeder)")
    return hook


def _resolve(ctx, path, relative_to=None):
    """``path`` as given, else relative to ``relative_to``'s folder, else an error naming both."""
    if os.path.exists(path) or relative_to is None:
        if not os.path.exists(path):
            raise layer_error(ctx, f"file '{path}' does not exist", FileNotFoundError)
        return path
    candidate = os.path.join(os.path.dirname(relative_to), path)
    if os.path.exists(candidate):
        return candidate
    raise layer_error(ctx, f"file '{path}' listed in '{relative_to}' does not exist",
                      FileNotFoundError)


# -- inputs -------------------------------------------------------------------------------------

@lowering("Input", data=True)
def input_(ctx):
    """Input: one blob per top, shaped by ``input_param.shape`` (one shape, or one per top)."""
    shapes = [_shape(s) for s in ctx.param.input_param.shape]
    tops = ctx.num_tops
    if len(shapes) not in (1, tops):
        raise layer_error(ctx, f"input_param has {len(shapes)} shapes for {tops} tops; give "
                               "one shape, or one per top")
    if len(shapes) == 1:
        shapes *= tops
    return [ctx.input(i, shape) for i, shape in enumerate(shapes)]


@lowering("DummyData")
def dummy_data(ctx):
    """DummyData: each top drawn from its filler on every forward pass (constant 0 by default)."""
    p = ctx.param.dummy_data_param
    tops = ctx.num_tops
    if len(p.shape):
        shapes = [_shape(s) for s in p.shape]
    else:
        legacy = [list(p.num), list(p.channels), list(p.height), list(p.width)]
        if any(len(field) not in (1, tops) for field in legacy):
            raise layer_error(ctx, "dummy_data_param needs shape, or num/channels/height/width "
                                   "given once or once per top")
        shapes = [tuple(int(field[i if len(field) > 1 else 0]) for field in legacy)
                  for i in range(tops)]
    if len(shapes) not in (1, tops):
        raise layer_error(ctx, f"dummy_data_param has {len(shapes)} shapes for {tops} tops")
    shapes = shapes * tops if len(shapes) == 1 else shapes
    fillers = list(p.data_filler)
    if len(fillers) not in (0, 1, tops):
        raise layer_error(ctx, f"dummy_data_param has {len(fillers)} data_fillers for {tops} "
                               "tops; give none, one, or one per top")
    fillers = [None] * tops if not fillers else (fillers * tops if len(fillers) == 1 else fillers)
    return [filler_tensor(f, s, apply=ctx.op) for f, s in zip(fillers, shapes)]


@lowering("MemoryData", data=True)
def memory_data(ctx):
    """MemoryData: data (batch, channels, height, width) and label (batch,) from set_input_arrays.

    As in Caffe, arrays given to ``set_input_arrays`` are not transformed
    (Caffe logs the same warning when ``transform_param`` is set).
    """
    p = ctx.param.memory_data_param
    shape = (int(p.batch_size), int(p.channels), int(p.height), int(p.width))
    if min(shape) < 1:
        raise layer_error(ctx, f"memory_data_param batch_size, channels, height and width must "
                               f"be positive, got {shape}")
    if ctx.param.HasField("transform_param"):
        _log.warning("layer '%s': MemoryData does not transform arrays from set_input_arrays "
                     "(as in Caffe); transform_param is ignored", ctx.name)
    tops = [ctx.input(0, shape)]
    if ctx.num_tops > 1:
        tops.append(ctx.input(1, shape[:1]))
    return tops


# -- readers ------------------------------------------------------------------------------------

@lowering("HDF5Data", data=True)
def hdf5_data(ctx):
    """HDF5Data: batches of rows of the datasets named after the tops, file after file."""
    p = ctx.param.hdf5_data_param
    if p.batch_size < 1:
        raise layer_error(ctx, "hdf5_data_param.batch_size must be positive")
    reader = HDF5Reader(ctx, p.source, list(ctx.param.top), int(p.batch_size), bool(p.shuffle))
    tops = [ctx.input(i, shape) for i, shape in enumerate(reader.shapes)]
    _feeder_hook(ctx)(reader.next_batch)
    return tops


class HDF5Reader:
    """Caffe's HDF5Data order: rows of one file in turn, then the next file, round and round."""

    def __init__(self, ctx, source, names, batch_size, shuffle):
        try:
            import h5py
        except ImportError:
            raise not_implemented(ctx, "HDF5Data without h5py installed") from None
        self._h5py, self.ctx, self.names = h5py, ctx, names
        self.batch_size, self.shuffle = batch_size, shuffle
        if not source:
            raise layer_error(ctx, "hdf5_data_param.source (a list of .h5 files) is not set")
        source = _resolve(ctx, source)
        with open(source) as f:
            self.files = [_resolve(ctx, line.strip(), source) for line in f if line.strip()]
        if not self.files:
            raise layer_error(ctx, f"the HDF5 list '{source}' names no files")
        from dragon import backend
        self._rng = backend.rng()
        self._order = np.arange(len(self.files))
        if shuffle:
            self._rng.shuffle(self._order)
        self._file_pos = 0
        self._load(self._order[0])
        self.shapes = [(batch_size,) + tuple(self._data[name].shape[1:]) for name in names]

    def _load(self, index):
        path = self.files[index]
        with self._h5py.File(path, "r") as f:
            missing = [n for n in self.names if n not in f]
            if missing:
                raise layer_error(self.ctx, f"'{path}' has no dataset {missing[0]!r} for top "
                                            f"{missing[0]!r} (it holds {sorted(f.keys())})")
            self._data = {n: np.asarray(f[n], dtype="float32") for n in self.names}
        rows = {len(v) for v in self._data.values()}
        if len(rows) != 1:
            raise layer_error(self.ctx, f"the datasets of '{path}' have different row counts "
                                        f"{sorted(rows)}")
        self._rows = np.arange(rows.pop())
        if self.shuffle:
            self._rng.shuffle(self._rows)
        self._row_pos = 0

    def next_batch(self):
        picks, filled = [], 0
        while filled < self.batch_size:
            if self._row_pos == len(self._rows):
                self._file_pos = (self._file_pos + 1) % len(self.files)
                if self._file_pos == 0 and self.shuffle:
                    self._rng.shuffle(self._order)
                if len(self.files) > 1 or self.shuffle:
                    self._load(self._order[self._file_pos])
                else:
                    self._row_pos = 0
            take = min(self.batch_size - filled, len(self._rows) - self._row_pos)
            if take == 0:
                raise layer_error(self.ctx, f"'{self.files[self._file_pos]}' holds no rows")
            picks.append({n: v[self._rows[self._row_pos:self._row_pos + take]]
                          for n, v in self._data.items()})
            self._row_pos += take
            filled += take
        return [np.concatenate([p[n] for p in picks]) for n in self.names]


@lowering("ImageData", data=True)
def image_data(ctx):
    """ImageData: images of a ``path label`` list (Pillow, BGR as Caffe's OpenCV reads them)."""
    p = ctx.param.image_data_param
    tp = ctx.param.transform_param
    reader = ImageListReader(ctx, p, tp, ctx.phase == "TRAIN")
    raw = ctx.input(0, reader.shape)
    tops = [transform(ctx, raw, tp, reader.shape[1], reader.mean_image)]
    if ctx.num_tops > 1:
        tops.append(ctx.input(1, reader.shape[:1]))
    _feeder_hook(ctx)(reader.next_batch if ctx.num_tops > 1 else
                      (lambda: reader.next_batch()[:1]))
    return tops


def transform(ctx, x, tp, channels, mean_image=None):
    """Caffe's pixel transform as core ops: (x - mean) * scale."""
    if mean_image is not None:
        mean = ctx.op("GivenTensorFill", [], values=mean_image.ravel().tolist(),
                      shape=list(mean_image.shape))
        x = ctx.op("Sub", [x, mean])
    elif len(tp.mean_value):
        values = [proto_float(v) for v in tp.mean_value]
        if len(values) not in (1, channels):
            raise layer_error(ctx, f"transform_param has {len(values)} mean_values for "
                                   f"{channels} channels; give one, or one per channel")
        values = values * channels if len(values) == 1 else values
        mean = ctx.op("GivenTensorFill", [], values=values, shape=[1, channels, 1, 1])
        x = ctx.op("Sub", [x, mean])
    scale = proto_float(tp.scale)
    return x if scale == 1.0 else ctx.op("Power", [x], scale=scale)


class ImageListReader:
    """Reads, resizes, crops and mirrors the images of an ImageData list, batch by batch."""

    def __init__(self, ctx, p, tp, training):
        try:
            from PIL import Image
        except ImportError:
            raise not_implemented(ctx, "ImageData without Pillow installed") from None
        self._image, self.ctx, self.p, self.tp, self.training = Image, ctx, p, tp, training
        if not p.source:
            raise layer_error(ctx, "image_data_param.source (a 'path label' list) is not set")
        source = _resolve(ctx, p.source)
        self.items = []
        with open(source) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                path, _, label = line.strip().rpartition(" ")
                if not path:
                    raise layer_error(ctx, f"{source}:{number}: expected 'path label', got "
                                           f"{line.strip()!r}")
                self.items.append((os.path.join(p.root_folder, path), float(label)))
        if not self.items:
            raise layer_error(ctx, f"the image list '{source}' is empty")
        from dragon import backend
        self._rng = backend.rng()
        if p.shuffle:
            self._rng.shuffle(self.items)
        self._pos = int(self._rng.integers(p.rand_skip)) if p.rand_skip else 0
        self._pos %= len(self.items)
        first = self._read(self.items[self._pos][0])
        c, h, w = first.shape
        crop = int(tp.crop_size)
        if crop and (crop > h or crop > w):
            raise layer_error(ctx, f"crop_size {crop} exceeds the image size {h} x {w}")
        self.shape = (int(p.batch_size), c) + ((crop, crop) if crop else (h, w))
        self.mean_image = self._mean_image(c, h, w)

    def _mean_image(self, c, h, w):
        if not self.tp.mean_file:
            return None
        if self.tp.crop_size:
            raise not_implemented(self.ctx, "transform_param.mean_file together with crop_size",
                                  "use mean_value")
        from dragon.vm.caffe import proto_io
        from dragon.vm.caffe.proto import caffe_pb2
        blob = proto_io.read_binary(self.tp.mean_file, caffe_pb2.BlobProto)
        mean = np.asarray(blob.data, "float32")
        if mean.size != c * h * w:
            raise layer_error(self.ctx, f"mean_file '{self.tp.mean_file}' holds {mean.size} "
                                        f"values; images are {c} x {h} x {w}")
        return mean.reshape(1, c, h, w)

    def _read(self, path):
        if not os.path.exists(path):
            raise layer_error(self.ctx, f"image '{path}' does not exist", FileNotFoundError)
        with self._image.open(path) as img:
            img = img.convert("RGB" if self.p.is_color else "L")
            if self.p.new_height and self.p.new_width:
                img = img.resize((int(self.p.new_width), int(self.p.new_height)),
                                 self._image.BILINEAR)
            array = np.asarray(img, dtype="float32")
        if array.ndim == 2:
            return array[None]
        return np.ascontiguousarray(array[:, :, ::-1].transpose(2, 0, 1))   # RGB -> BGR, CHW

    def next_batch(self):
        n, c, out_h, out_w = self.shape
        data = np.empty(self.shape, "float32")
        labels = np.empty((n,), "float32")
        for i in range(n):
            path, labels[i] = self.items[self._pos]
            image = self._read(path)
            if image.shape[0] != c:
                raise layer_error(self.ctx, f"image '{path}' has {image.shape[0]} channels, "
                                            f"expected {c}")
            h, w = image.shape[1:]
            if self.tp.crop_size:
                if self.training:
                    top = int(self._rng.integers(h - out_h + 1))
                    left = int(self._rng.integers(w - out_w + 1))
                else:
                    top, left = (h - out_h) // 2, (w - out_w) // 2
                image = image[:, top:top + out_h, left:left + out_w]
            elif (h, w) != (out_h, out_w):
                raise layer_error(self.ctx, f"image '{path}' is {h} x {w}; the batch is "
                                            f"{out_h} x {out_w} (set new_height/new_width or "
                                            "crop_size)")
            if self.tp.mirror and self._rng.integers(2):  # Caffe mirrors in both phases
                image = image[:, :, ::-1]
            data[i] = image
            self._pos += 1
            if self._pos == len(self.items):
                self._pos = 0
                if self.p.shuffle:
                    self._rng.shuffle(self.items)
        return [data, labels]


# -- readers that come with other issues ---------------------------------------------------------

@lowering("Data", data=True)
def data(ctx):
    raise layer_error(ctx, "the Data layer (LMDB/LevelDB) comes with the data-layer issue; "
                           "use Input, MemoryData, HDF5Data or ImageData meanwhile",
                      NotImplementedError)


@lowering("WindowData", data=True)
def window_data(ctx):
    raise not_implemented(ctx, "WindowData (R-CNN window files)")


@lowering("HDF5Output")
def hdf5_output(ctx):
    raise not_implemented(ctx, "HDF5Output (writing blobs to HDF5 files during forward)")
