"""Weights in and out of a Net: caffemodel (binary NetParameter) and Caffe's HDF5 layout.

    net.copy_from("bvlc_alexnet.caffemodel")   # layers matched by name, V1 files too
    net.save("snapshot.caffemodel")            # atomic; Caffe and OpenCV read it
    net.save_hdf5("snapshot.caffemodel.h5")    # data/<layer>/<i> datasets
    net.load_hdf5("snapshot.caffemodel.h5")

Loading follows Caffe's ``CopyTrainedLayersFrom``: source layers the net lacks
are skipped, a matched layer must have as many blobs as the net's layer, and
every blob's shape must fit (legacy num/channels/height/width shapes compare
as Caffe's ``Blob::ShapeEquals``: a 4096x9216 InnerProduct weight fits
1x1x4096x9216). Errors name the file, the layer and both shapes.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from dragon.vm.caffe import proto_io
from dragon.vm.caffe.proto import caffe_pb2

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_DATA_TAG = bytes([(5 << 3) | 2])     # BlobProto.data = 5, packed (length-delimited)
_DIFF_TAG = bytes([(6 << 3) | 2])     # BlobProto.diff = 6


class WeightsError(ValueError):
    """Weights that do not fit the net: names the file, the layer and the shapes."""


# -- BlobProto <-> numpy ---------------------------------------------------------------------------

def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | 0x80 if n else low)
        if not n:
            return bytes(out)


def fill_blob_proto(proto, data, diff=None):
    """Fill BlobProto ``proto`` with ``data`` (shape and float values), and ``diff`` if given.

    The float values are merged as one packed field: filling a repeated field
    value by value would take seconds for a large fully connected layer.

    >>> fill_blob_proto(caffe_pb2.BlobProto(), np.ones((2, 3), "float32")).shape.dim
    [2, 3]
    """
    data = np.asarray(data)
    proto.shape.dim.extend(int(d) for d in data.shape)
    payload = [(_DATA_TAG, data)] + ([(_DIFF_TAG, np.asarray(diff))] if diff is not None else [])
    for tag, values in payload:
        raw = np.ascontiguousarray(values, dtype="<f4").tobytes()
        if raw:
            proto.MergeFromString(tag + _varint(len(raw)) + raw)
    return proto


def proto_shape(proto) -> tuple:
    """The shape a BlobProto describes (``shape`` or the legacy 4-d fields)."""
    if proto.HasField("shape"):
        return tuple(int(d) for d in proto.shape.dim)
    if any(proto.HasField(f) for f in ("num", "channels", "height", "width")):
        return (proto.num, proto.channels, proto.height, proto.width)
    return ()


def shape_fits(target_shape, proto) -> bool:
    """Caffe's ``Blob::ShapeEquals``: legacy 4-d shapes match left-padded with ones."""
    target_shape = tuple(int(d) for d in target_shape)
    if any(proto.HasField(f) for f in ("num", "channels", "height", "width")):
        if len(target_shape) > 4:
            return False
        padded = (1,) * (4 - len(target_shape)) + target_shape
        return padded == (proto.num, proto.channels, proto.height, proto.width)
    return target_shape == tuple(int(d) for d in proto.shape.dim)


def proto_values(proto, diff=False) -> np.ndarray:
    """The float values of a BlobProto (``double_data`` when that is what it holds)."""
    single, double = (proto.diff, proto.double_diff) if diff else (proto.data, proto.double_data)
    source = double if len(double) and not len(single) else single
    return np.array(source, dtype=np.float32)


# -- loading --------------------------------------------------------------------------------------

def is_hdf5(path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(8) == _HDF5_SIGNATURE
    except OSError:
        return False


def load_weights(net, path):
    """Copy weights from a caffemodel or an HDF5 weights file into ``net`` (Caffe's rules)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such weights file: '{path}'")
    if is_hdf5(path):
        return load_hdf5(net, path)
    weights = proto_io.read_binary(path, caffe_pb2.NetParameter)
    return copy_layers(net, weights, path)


def _layer_blobs(net):
    return {name: layer.blobs for name, layer in zip(net._layer_names, net.layers)}


def _shape_text(shape):
    return f"{tuple(int(d) for d in shape)}"


def copy_layers(net, weights, source="<NetParameter>"):
    """Copy the blobs of ``weights`` (a NetParameter) into the layers of ``net`` with its names."""
    targets = _layer_blobs(net)
    copied = []
    for layer in weights.layer:
        blobs = targets.get(layer.name)
        if blobs is None:
            continue                # Caffe: "Ignoring source layer"
        if len(blobs) != len(layer.blobs):
            raise WeightsError(
                f"{source}: layer '{layer.name}' holds {len(layer.blobs)} blobs, the net's layer "
                f"'{layer.name}' has {len(blobs)} (incompatible number of blobs)")
        for j, (blob, proto) in enumerate(zip(blobs, layer.blobs)):
            target = blob.shape
            if not shape_fits(target, proto):
                raise WeightsError(
                    f"{source}: cannot copy param {j} of layer '{layer.name}': shape mismatch; "
                    f"the file's blob has shape {_shape_text(proto_shape(proto))}, the net's "
                    f"has {_shape_text(target)}. To learn this layer's params from scratch, "
                    f"rename the layer")
            values = proto_values(proto)
            if values.size != blob.count:
                raise WeightsError(
                    f"{source}: param {j} of layer '{layer.name}' declares shape "
                    f"{_shape_text(proto_shape(proto))} but holds {values.size} values")
            blob.data[...] = values.reshape(target)
        copied.append(layer.name)
    return copied


def load_hdf5(net, path):
    """Caffe's ``CopyTrainedLayersFromHDF5``: datasets ``data/<layer>/<i>``."""
    import h5py
    path = os.fspath(path)
    targets = _layer_blobs(net)
    owners = net._param_owner_flags()
    copied = []
    with h5py.File(path, "r") as f:
        if "data" not in f:
            raise WeightsError(f"{path}: no 'data' group; not a Caffe HDF5 weights file")
        for name, group in f["data"].items():
            blobs = targets.get(name)
            if blobs is None:
                continue
            if len(group) > len(blobs):
                raise WeightsError(f"{path}: layer '{name}' holds {len(group)} blobs, the net's "
                                   f"layer has {len(blobs)} (incompatible number of blobs)")
            for j, blob in enumerate(blobs):
                if str(j) not in group:
                    if owners[name][j]:
                        raise WeightsError(f"{path}: layer '{name}' has no blob {j}; the net's "
                                           f"layer has {len(blobs)} (incompatible number of "
                                           f"blobs)")
                    continue        # a shared param: its owner's dataset holds it
                dataset = group[str(j)]
                if tuple(dataset.shape) != tuple(blob.shape):
                    raise WeightsError(f"{path}: cannot load param {j} of layer '{name}': the "
                                       f"file's blob has shape {_shape_text(dataset.shape)}, "
                                       f"the net's has {_shape_text(blob.shape)}")
                blob.data[...] = np.asarray(dataset, dtype=np.float32)
            copied.append(name)
    return copied


# -- saving ---------------------------------------------------------------------------------------

def to_proto(net, write_diff=False):
    """The net as a NetParameter with every layer's blobs (Caffe's ``Net::ToProto``)."""
    param = caffe_pb2.NetParameter(name=net.name)
    for layer_param, layer in zip(net._layer_params(), net.layers):
        out = param.layer.add()
        out.CopyFrom(layer_param)
        out.ClearField("blobs")
        for blob in layer.blobs:
            fill_blob_proto(out.blobs.add(), blob.data, blob.diff if write_diff else None)
    return param


def save(net, path, write_diff=False):
    """Write the net's weights as a binary caffemodel, atomically."""
    proto_io.write_binary(path, to_proto(net, write_diff))


def save_hdf5(net, path, write_diff=False):
    """Caffe's ``Net::ToHDF5``: a group per layer; only params a layer owns have data."""
    import h5py
    path = os.fspath(path)
    owners = net._param_owner_flags()
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            data = f.create_group("data")
            diff = f.create_group("diff") if write_diff else None
            for name, layer in zip(net._layer_names, net.layers):
                layer_data = data.create_group(name)
                layer_diff = diff.create_group(name) if diff is not None else None
                for j, blob in enumerate(layer.blobs):
                    if owners[name][j]:
                        layer_data.create_dataset(str(j), data=np.asarray(blob.data, np.float32))
                    if layer_diff is not None:
                        layer_diff.create_dataset(str(j), data=np.asarray(blob.diff, np.float32))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
