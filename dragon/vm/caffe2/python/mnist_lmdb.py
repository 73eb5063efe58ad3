"""Write MNIST (IDX files, gzipped or not) into an LMDB of Caffe2 TensorProtos.

Each record holds two tensors, as Caffe2's MNIST tutorial databases do: the
image (uint8, TensorProto BYTE, dims (1, 28, 28) channel-first, or (28, 28, 1)
with ``channel_first=False``) and its label (int32, one value)::

    python -m dragon.vm.caffe2.python.mnist_lmdb \\
        --images t10k-images-idx3-ubyte.gz --labels t10k-labels-idx1-ubyte.gz \\
        --output mnist-train-nchw-lmdb --count 8000

    from dragon.vm.caffe2.python import mnist_lmdb
    mnist_lmdb.write_lmdb(images, labels, "mnist-test-nchw-lmdb", start=8000)
"""
from __future__ import annotations

import argparse
import gzip
import struct
from pathlib import Path

import numpy as np

from dragon.vm.caffe2.proto import caffe2_pb2

_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049


def _open(path):
    path = Path(path)
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx_images(path) -> np.ndarray:
    """(n, rows, cols) uint8 images of an IDX3 file."""
    with _open(path) as f:
        magic, count, rows, cols = struct.unpack(">4i", f.read(16))
        if magic != _IMAGES_MAGIC:
            raise ValueError(f"{path}: not an IDX image file (magic {magic})")
        return np.frombuffer(f.read(count * rows * cols), np.uint8).reshape(count, rows, cols)


def read_idx_labels(path) -> np.ndarray:
    """(n,) uint8 labels of an IDX1 file."""
    with _open(path) as f:
        magic, count = struct.unpack(">2i", f.read(8))
        if magic != _LABELS_MAGIC:
            raise ValueError(f"{path}: not an IDX label file (magic {magic})")
        return np.frombuffer(f.read(count), np.uint8)


def record(image, label, channel_first=True) -> bytes:
    """One serialized TensorProtos: the uint8 image and its int32 label."""
    protos = caffe2_pb2.TensorProtos()
    data = protos.protos.add(data_type=caffe2_pb2.TensorProto.BYTE)
    rows, cols = image.shape
    data.dims.extend([1, rows, cols] if channel_first else [rows, cols, 1])
    data.byte_data = np.ascontiguousarray(image, np.uint8).tobytes()
    protos.protos.add(data_type=caffe2_pb2.TensorProto.INT32, int32_data=[int(label)])
    return protos.SerializeToString()


def write_lmdb(images, labels, output, start=0, count=None, channel_first=True) -> int:
    """Write records ``start`` .. ``start + count`` of the IDX files to the LMDB ``output``.

    Returns the number written; keys are the zero-padded record indices.
    """
    import lmdb
    images = read_idx_images(images) if not isinstance(images, np.ndarray) else images
    labels = read_idx_labels(labels) if not isinstance(labels, np.ndarray) else labels
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    stop = len(images) if count is None else min(len(images), start + count)
    size = (stop - start) * (images[0].size + 64) * 2 + (1 << 20)
    env = lmdb.open(str(output), map_size=max(size, 1 << 22))
    with env.begin(write=True) as txn:
        for i in range(start, stop):
            txn.put(f"{i:08d}".encode(), record(images[i], labels[i], channel_first))
    env.close()
    return stop - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", required=True, help="IDX3 image file (.gz or raw)")
    parser.add_argument("--labels", required=True, help="IDX1 label file (.gz or raw)")
    parser.add_argument("--output", required=True, help="LMDB directory to write")
    parser.add_argument("--start", type=int, default=0, help="first record to write")
    parser.add_argument("--count", type=int, default=None, help="records to write (all)")
    parser.add_argument("--channel-last", action="store_true",
                        help="store images (28, 28, 1) instead of (1, 28, 28)")
    args = parser.parse_args(argv)
    n = write_lmdb(args.images, args.labels, args.output, args.start, args.count,
                   channel_first=not args.channel_last)
    print(f"wrote {n} records to {args.output}")


if __name__ == "__main__":
    main()
