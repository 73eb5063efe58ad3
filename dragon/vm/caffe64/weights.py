"""weights.bin: the original's little-endian parameter file, read and written byte for byte.

Layout: int64 L (every layer, ``inp`` included); then per layer an int64 P and
P float32 values. A ``lin`` layer of F inputs and K outputs holds P = F*K + K:
the F x K weights row-major (``Y = X @ W + b``), then the K biases.

    params = init_params(net, seed=0)       # [None, (W, b), None, (W, b), None]
    write_weights("w.bin", net, params)
    params = read_weights("w.bin", net)
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import dragon
from dragon.vm.caffe64.errors import Caffe64Error

_COUNT = np.dtype("<i8")
_VALUE = np.dtype("<f4")


def init_params(network, seed=None) -> list:
    """Fresh parameters as the original draws them: every weight *and bias* of a ``lin``
    layer ~ N(0, (10^E)^2), drawn by the engine's GaussianFill.

    ``seed`` reseeds the engine's random stream first (``dragon.config.set_random_seed``).

    >>> W, b = init_params(Network.from_file("mnist/network5.txt"), seed=0)[1]
    >>> W.shape, b.shape
    ((784, 100), (100,))
    """
    if seed is not None:
        dragon.config.set_random_seed(seed)
    fills = [dragon.ops.gaussian_fill(shape=[layer.param_count], mean=0.0,
                                      std=float(10.0 ** layer.exponent))
             for layer in network.layers if layer.param_count]
    flat = iter(dragon.function([], fills)() if fills else [])
    return [_split(layer, next(flat)) if layer.param_count else None
            for layer in network.layers]


def read_weights(path, network) -> list:
    """Parameters for ``network`` from weights.bin at ``path``: ``(W, b)`` per ``lin`` layer,
    None for the others. A file that does not fit the network is an error naming the
    expected and actual counts.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise Caffe64Error(f"{path}: cannot read: {e.strerror or e}") from None
    counts = network.param_counts()
    expected_size = _COUNT.itemsize * (1 + len(counts)) + _VALUE.itemsize * sum(counts)
    if len(data) < _COUNT.itemsize:
        raise Caffe64Error(f"{path}: {len(data)} bytes is too short for a weights file "
                           f"({network.path} needs {expected_size} bytes)")
    layers = int(np.frombuffer(data, _COUNT, 1)[0])
    if layers != len(counts):
        raise Caffe64Error(f"{path}: holds {layers} layers, {network.path} has {len(counts)}")
    params, offset = [], _COUNT.itemsize
    for index, (layer, expected) in enumerate(zip(network.layers, counts), 1):
        if offset + _COUNT.itemsize > len(data):
            raise Caffe64Error(f"{path}: ends before layer {index}; expected {sum(counts)} "
                               f"parameters in all ({expected_size} bytes), the file has "
                               f"{len(data)} bytes")
        actual = int(np.frombuffer(data, _COUNT, 1, offset)[0])
        offset += _COUNT.itemsize
        if actual != expected:
            raise Caffe64Error(f"{path}: layer {index} ({network.path} line {layer.line}, "
                               f"'{layer.kind}') has {actual} parameters in the file, the "
                               f"network expects {expected}")
        end = offset + _VALUE.itemsize * actual
        if end > len(data):
            raise Caffe64Error(f"{path}: ends inside layer {index}; expected {expected} "
                               f"parameters there ({expected_size} bytes in all), the file has "
                               f"{len(data)} bytes")
        values = np.frombuffer(data, _VALUE, actual, offset).astype(np.float32)
        params.append(_split(layer, values) if actual else None)
        offset = end
    if offset != len(data):
        raise Caffe64Error(f"{path}: {len(data) - offset} bytes after the last layer; "
                           f"{network.path} expects {sum(counts)} parameters "
                           f"({expected_size} bytes), the file has {len(data)} bytes")
    return params


def write_weights(path, network, params) -> None:
    """Write ``params`` for ``network`` to ``path`` atomically (a temporary file, then rename)."""
    path = Path(path)
    parts = [np.array([len(network.layers)], _COUNT).tobytes()]
    for layer, p in zip(network.layers, params, strict=True):
        flat = _flatten(layer, p)
        parts.append(np.array([flat.size], _COUNT).tobytes())
        parts.append(flat.astype(_VALUE).tobytes())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(b"".join(parts))
        os.replace(tmp, path)
    except OSError as e:
        raise Caffe64Error(f"{path}: cannot write: {e.strerror or e}") from None
    finally:
        tmp.unlink(missing_ok=True)


def _split(layer, flat):
    """``(W (F, K), b (K,))`` views of one ``lin`` layer's flat parameters."""
    flat = np.asarray(flat, np.float32).reshape(-1)
    weights = layer.inputs * layer.outputs
    return flat[:weights].reshape(layer.inputs, layer.outputs), flat[weights:]


def _flatten(layer, p):
    if not layer.param_count:
        if p is not None:
            raise ValueError(f"{layer.describe()} has no parameters, got {type(p).__name__}")
        return np.zeros(0, np.float32)
    W, b = p
    W, b = np.asarray(W), np.asarray(b)
    if W.shape != (layer.inputs, layer.outputs) or b.shape != (layer.outputs,):
        raise ValueError(f"{layer.describe()}: expected W {(layer.inputs, layer.outputs)} and "
                         f"b {(layer.outputs,)}, got {W.shape} and {b.shape}")
    return np.concatenate([W.reshape(-1), b]).astype(np.float32)
