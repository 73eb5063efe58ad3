"""pycaffe's ``caffe.io``: blobs and datums to arrays, image loading and preprocessing.

    from dragon.vm import caffe
    net = caffe.Net("deploy.prototxt", caffe.TEST)
    t = caffe.io.Transformer({"data": net.blobs["data"].data.shape})
    t.set_transpose("data", (2, 0, 1))          # HxWxC -> CxHxW
    t.set_channel_swap("data", (2, 1, 0))       # RGB -> BGR
    t.set_raw_scale("data", 255)                # [0, 1] -> [0, 255]
    t.set_mean("data", np.array([104, 117, 123]))
    image = caffe.io.load_image("cat.jpg")      # HxWx3 float32 in [0, 1], RGB
    net.blobs["data"].data[...] = t.preprocess("data", image)

This is input preprocessing outside the net, in numpy as in pycaffe. Images are
read with Pillow (pycaffe uses scikit-image); values, layouts and channel orders
are pycaffe's.
"""
from __future__ import annotations

import io as _io

import numpy as np

from dragon.vm.caffe.proto import caffe_pb2

__all__ = [
    "blobproto_to_array", "array_to_blobproto", "arraylist_to_blobprotovector_str",
    "blobprotovector_str_to_arraylist", "array_to_datum", "datum_to_array",
    "load_image", "resize_image", "oversample", "Transformer",
]


# ---------------------------------------------------------------------------
# Blobs and datums


def blobproto_to_array(blob, return_diff=False):
    """The data (or diff) of a ``BlobProto`` as an array of the blob's shape.

    The legacy num/channels/height/width shape wins when any of them is set, as
    in pycaffe. Values come out as float64, as pycaffe returns them.

    >>> mean = blobproto_to_array(proto_io.read_binary("mean.binaryproto", caffe_pb2.BlobProto))
    """
    if return_diff:
        values = blob.double_diff if len(blob.double_diff) else blob.diff
    else:
        values = blob.double_data if len(blob.double_data) else blob.data
    data = np.array(values, dtype=np.float64)
    if any(blob.HasField(f) for f in ("num", "channels", "height", "width")):
        shape = (blob.num, blob.channels, blob.height, blob.width)
    else:
        shape = tuple(blob.shape.dim)
    if data.size != int(np.prod(shape, dtype=np.int64)):
        kind = "diff" if return_diff else "data"
        raise ValueError(f"BlobProto has {data.size} {kind} values but its shape "
                         f"{shape} holds {int(np.prod(shape, dtype=np.int64))}")
    return data.reshape(shape)


def array_to_blobproto(arr, diff=None):
    """A ``BlobProto`` with ``arr``'s shape and values (and ``diff`` when given).

    >>> array_to_blobproto(np.zeros((2, 3))).shape.dim
    [2, 3]
    """
    arr = np.asarray(arr)
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend(arr.shape)
    blob.data.extend(arr.astype(np.float32).ravel().tolist())
    if diff is not None:
        diff = np.asarray(diff)
        if diff.shape != arr.shape:
            raise ValueError(f"diff shape {diff.shape} differs from data shape {arr.shape}")
        blob.diff.extend(diff.astype(np.float32).ravel().tolist())
    return blob


def arraylist_to_blobprotovector_str(arraylist):
    """Serialized ``BlobProtoVector`` of the arrays.

    >>> s = arraylist_to_blobprotovector_str([np.ones(3)])
    """
    vec = caffe_pb2.BlobProtoVector()
    vec.blobs.extend(array_to_blobproto(arr) for arr in arraylist)
    return vec.SerializeToString()


def blobprotovector_str_to_arraylist(text):
    """The arrays of a serialized ``BlobProtoVector``.

    >>> blobprotovector_str_to_arraylist(arraylist_to_blobprotovector_str([np.ones(3)]))
    [array([1., 1., 1.])]
    """
    vec = caffe_pb2.BlobProtoVector()
    vec.ParseFromString(text)
    return [blobproto_to_array(blob) for blob in vec.blobs]


def array_to_datum(arr, label=None):
    """A ``Datum`` of a CxHxW array: uint8 arrays fill ``data``, others ``float_data``.

    >>> datum = array_to_datum(np.zeros((3, 4, 5), np.uint8), label=7)
    """
    arr = np.asarray(arr)
    if arr.ndim != 3:
        raise ValueError(f"array_to_datum needs a CxHxW array, got shape {arr.shape}")
    datum = caffe_pb2.Datum()
    datum.channels, datum.height, datum.width = arr.shape
    if arr.dtype == np.uint8:
        datum.data = np.ascontiguousarray(arr).tobytes()
    else:
        datum.float_data.extend(arr.astype(np.float32).ravel().tolist())
    if label is not None:
        datum.label = int(label)
    return datum


def datum_to_array(datum):
    """The CxHxW array of a ``Datum``: uint8 from ``data``, float64 from ``float_data``.

    An encoded datum (``encoded: true``, JPEG/PNG bytes as written by
    ``convert_imageset --encoded``) is decoded as Caffe's data layer does:
    color images in BGR order, grayscale with one channel.

    >>> datum_to_array(array_to_datum(np.zeros((1, 2, 2), np.uint8))).shape
    (1, 2, 2)
    """
    if datum.encoded:
        return _decode_image(datum.data)
    shape = (datum.channels, datum.height, datum.width)
    if len(datum.data):
        data = np.frombuffer(datum.data, dtype=np.uint8)
        if data.size != int(np.prod(shape)):
            raise ValueError(f"Datum has {data.size} bytes of data but its shape {shape} "
                             f"holds {int(np.prod(shape))}")
        return data.reshape(shape).copy()
    return np.array(datum.float_data, dtype=np.float64).reshape(shape)


def _decode_image(data):
    from PIL import Image
    with Image.open(_io.BytesIO(data)) as im:
        if im.mode in ("L", "I;16", "I", "1"):
            return np.asarray(im.convert("L"), dtype=np.uint8)[np.newaxis].copy()
        rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1].transpose(2, 0, 1))


# ---------------------------------------------------------------------------
# Images

# scikit-image's rgb2gray weights (pycaffe loads grayscale images through it).
_GRAY_WEIGHTS = np.array([0.2125, 0.7154, 0.0721])


def load_image(filename, color=True):
    """An image file as an HxWxC float32 array in [0, 1] (RGB, or 1 channel).

    color=True gives 3 channels (grayscale files are repeated, alpha dropped);
    color=False gives one luminance channel.

    >>> im = load_image("cat.jpg")
    >>> im.shape[2], im.dtype
    (3, dtype('float32'))
    """
    from PIL import Image
    with Image.open(filename) as im:
        im.load()
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            scale = 65535.0
            img = np.asarray(im, dtype=np.float64) / scale
        elif im.mode in ("L", "1", "P", "LA") and not color:
            img = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
        elif im.mode in ("L", "1"):
            img = np.asarray(im.convert("L"), dtype=np.float64) / 255.0
        else:
            img = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
    if img.ndim == 3 and not color:
        img = img @ _GRAY_WEIGHTS
    img = img.astype(np.float32)
    if img.ndim == 2:
        img = img[:, :, np.newaxis]
        if color:
            img = np.tile(img, (1, 1, 3))
    return img


def resize_image(im, new_dims, interp_order=1):
    """Resize an HxWxK image to ``new_dims`` (height, width); float32 out.

    interp_order 0 is nearest neighbour, 1 bilinear (pixel-centre aligned, edges
    clamped); higher orders use scipy's spline zoom. A constant image stays
    constant, as in pycaffe.

    >>> resize_image(np.zeros((4, 4, 3), np.float32), (8, 8)).shape
    (8, 8, 3)
    """
    im = np.asarray(im)
    new_h, new_w = int(new_dims[0]), int(new_dims[1])
    squeeze = im.ndim == 2
    if squeeze:
        im = im[:, :, np.newaxis]
    lo, hi = float(im.min()), float(im.max())
    if hi == lo:
        out = np.full((new_h, new_w, im.shape[-1]), lo, dtype=np.float32)
    elif interp_order == 0:
        rows = _nearest(im.shape[0], new_h)
        cols = _nearest(im.shape[1], new_w)
        out = im[rows][:, cols].astype(np.float32)
    elif interp_order == 1:
        out = _bilinear(im.astype(np.float64), new_h, new_w).astype(np.float32)
    else:
        from scipy.ndimage import zoom
        scale = (new_h / im.shape[0], new_w / im.shape[1], 1.0)
        out = zoom(im.astype(np.float64), scale, order=int(interp_order)).astype(np.float32)
    return out[:, :, 0] if squeeze else out


def _nearest(n_in, n_out):
    centers = (np.arange(n_out) + 0.5) * (n_in / n_out)
    return np.minimum(np.floor(centers).astype(np.int64), n_in - 1)


def _linear_weights(n_in, n_out):
    pos = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
    pos = np.clip(pos, 0, n_in - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, pos - lo


def _bilinear(im, new_h, new_w):
    r0, r1, fr = _linear_weights(im.shape[0], new_h)
    c0, c1, fc = _linear_weights(im.shape[1], new_w)
    fr = fr[:, None, None]
    fc = fc[None, :, None]
    top = im[r0][:, c0] * (1 - fc) + im[r0][:, c1] * fc
    bottom = im[r1][:, c0] * (1 - fc) + im[r1][:, c1] * fc
    return top * (1 - fr) + bottom * fr


def oversample(images, crop_dims):
    """Caffe's 10-crop: four corners and the centre, then their mirrors.

    images: iterable of HxWxK arrays of one shape; crop_dims: (height, width).
    Returns an (10 * N)xHxWxK float32 array, crops of each image together.

    >>> oversample([np.zeros((256, 256, 3))], (227, 227)).shape
    (10, 227, 227, 3)
    """
    images = list(images)
    im_shape = np.array(images[0].shape)
    crop_h, crop_w = int(crop_dims[0]), int(crop_dims[1])
    starts = [(0, 0), (0, im_shape[1] - crop_w), (im_shape[0] - crop_h, 0),
              (im_shape[0] - crop_h, im_shape[1] - crop_w)]
    # pycaffe truncates the float centre box to integers.
    center = im_shape[:2] / 2.0
    center_box = (int(center[0] - crop_h / 2.0), int(center[1] - crop_w / 2.0),
                  int(center[0] + crop_h / 2.0), int(center[1] + crop_w / 2.0))
    boxes = [(i, j, i + crop_h, j + crop_w) for i, j in starts] + [center_box]
    crops = np.empty((10 * len(images), crop_h, crop_w, im_shape[-1]), dtype=np.float32)
    index = 0
    for im in images:
        for top, left, bottom, right in boxes:
            crops[index] = im[top:bottom, left:right, :]
            index += 1
        crops[index:index + 5] = crops[index - 5:index, :, ::-1, :]
        index += 5
    return crops


# ---------------------------------------------------------------------------
# Transformer


class Transformer:
    """Turns images into net inputs and back, per input blob.

    inputs: ``{blob name: blob shape (N, C, H, W)}``. ``preprocess`` resizes to
    HxW, transposes, swaps channels, multiplies by raw_scale, subtracts the mean
    and multiplies by input_scale, in that order; ``deprocess`` undoes it.

    >>> t = Transformer({"data": (1, 3, 227, 227)})
    >>> t.set_transpose("data", (2, 0, 1))
    >>> t.preprocess("data", np.zeros((300, 400, 3))).shape
    (3, 227, 227)
    """

    def __init__(self, inputs):
        self.inputs = {name: tuple(int(d) for d in shape) for name, shape in inputs.items()}
        self.transpose = {}
        self.channel_swap = {}
        self.raw_scale = {}
        self.mean = {}
        self.input_scale = {}

    def _check_input(self, in_):
        if in_ not in self.inputs:
            raise KeyError(f"'{in_}' is not one of the net inputs: {list(self.inputs)}")

    def preprocess(self, in_, data):
        """An image (HxWxK, any numeric type) as the net's input layout, float32."""
        self._check_input(in_)
        caffe_in = np.asarray(data).astype(np.float32, copy=False)
        transpose = self.transpose.get(in_)
        channel_swap = self.channel_swap.get(in_)
        raw_scale = self.raw_scale.get(in_)
        mean = self.mean.get(in_)
        input_scale = self.input_scale.get(in_)
        in_dims = self.inputs[in_][2:]
        if tuple(caffe_in.shape[:2]) != in_dims:
            caffe_in = resize_image(caffe_in, in_dims)
        if transpose is not None:
            caffe_in = caffe_in.transpose(transpose)
        if channel_swap is not None:
            caffe_in = caffe_in[list(channel_swap), :, :]
        caffe_in = np.array(caffe_in, dtype=np.float32)  # own copy: scaled in place below
        if raw_scale is not None:
            caffe_in *= raw_scale
        if mean is not None:
            caffe_in -= mean
        if input_scale is not None:
            caffe_in *= input_scale
        return caffe_in

    def deprocess(self, in_, data):
        """Invert ``preprocess`` (except the resize) of one net input (batch dims squeezed)."""
        self._check_input(in_)
        decaf_in = np.array(data, copy=True).squeeze()
        transpose = self.transpose.get(in_)
        channel_swap = self.channel_swap.get(in_)
        raw_scale = self.raw_scale.get(in_)
        mean = self.mean.get(in_)
        input_scale = self.input_scale.get(in_)
        if input_scale is not None:
            decaf_in /= input_scale
        if mean is not None:
            decaf_in += mean
        if raw_scale is not None:
            decaf_in /= raw_scale
        if channel_swap is not None:
            decaf_in = decaf_in[np.argsort(channel_swap), :, :]
        if transpose is not None:
            decaf_in = decaf_in.transpose(np.argsort(transpose))
        return decaf_in

    def set_transpose(self, in_, order):
        """Axis order from the image's (HxWxK) to the net's (e.g. (2, 0, 1))."""
        self._check_input(in_)
        if len(order) != len(self.inputs[in_]) - 1:
            raise ValueError(f"transpose order {tuple(order)} for '{in_}' needs "
                             f"{len(self.inputs[in_]) - 1} axes (input shape {self.inputs[in_]})")
        self.transpose[in_] = tuple(order)

    def set_channel_swap(self, in_, order):
        """Channel order after transposing, e.g. (2, 1, 0) for RGB -> BGR."""
        self._check_input(in_)
        if len(order) != self.inputs[in_][1]:
            raise ValueError(f"channel swap {tuple(order)} for '{in_}' needs "
                             f"{self.inputs[in_][1]} channels (input shape {self.inputs[in_]})")
        self.channel_swap[in_] = tuple(order)

    def set_raw_scale(self, in_, scale):
        """Multiply the raw image by ``scale`` (e.g. 255 for images in [0, 1])."""
        self._check_input(in_)
        self.raw_scale[in_] = scale

    def set_mean(self, in_, mean):
        """Subtract ``mean``: per channel (K values) or elementwise (KxHxW; HxW for K = 1)."""
        self._check_input(in_)
        mean = np.asarray(mean)
        shape = self.inputs[in_]
        if mean.ndim == 1:
            if mean.shape[0] != shape[1]:
                raise ValueError(f"mean has {mean.shape[0]} channels, input '{in_}' has "
                                 f"{shape[1]} (shape {shape})")
            mean = mean[:, np.newaxis, np.newaxis]
        else:
            ms = mean.shape if mean.ndim != 2 else (1,) + mean.shape
            if len(ms) != 3:
                raise ValueError(f"mean shape {mean.shape} is not K, KxHxW or HxW")
            if ms != shape[1:]:
                raise ValueError(f"mean shape {mean.shape} does not fit input '{in_}' "
                                 f"of shape {shape}")
        self.mean[in_] = mean

    def set_input_scale(self, in_, scale):
        """Multiply the mean-subtracted input by ``scale``."""
        self._check_input(in_)
        self.input_scale[in_] = scale
