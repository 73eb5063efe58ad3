"""Array module choice (numpy on CPU, cupy on CUDA) and the random generator.

Kernels never import numpy or cupy directly for array math: they receive ``xp``.
"""
from __future__ import annotations

import numpy as np

from dragon import config

_rng = {"gen": None, "seed": None}


def require_cupy(index: int = 0):
    """Import cupy and select GPU ``index``; a clear error where either is missing."""
    try:
        import cupy
    except ImportError:
        raise RuntimeError("set_device('cuda') needs cupy: pip install 'dragon-vbox[gpu]'") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # cupy raises its own CUDA errors
        raise RuntimeError(f"cupy is installed but no CUDA device is usable: {exc}") from None
    if not 0 <= index < count:
        raise RuntimeError(f"CUDA device {index} does not exist ({count} found)")
    cupy.cuda.Device(index).use()
    return cupy


def array_module():
    """numpy or cupy, as the current device says."""
    device, index = config.get_device()
    if device == "cuda":
        return require_cupy(index)
    return np


def to_numpy(array) -> np.ndarray:
    """A host numpy array from a numpy or cupy array."""
    if isinstance(array, np.ndarray):
        return array
    get = getattr(array, "get", None)
    return get() if get is not None else np.asarray(array)


def rng() -> np.random.Generator:
    """The process-wide generator, reseeded whenever the config seed changes."""
    seed = config.get_random_seed()
    if _rng["gen"] is None or _rng["seed"] != seed:
        _rng["gen"] = np.random.Generator(np.random.PCG64(seed))
        _rng["seed"] = seed
    return _rng["gen"]


@config.on_change
def _reseed(name):
    if name == "seed":
        _rng["gen"] = None


def random_array(xp, draw, out):
    """Fill ``out`` with ``draw(generator, shape, dtype)`` drawn on the host.

    Drawing on the host keeps CPU and GPU streams identical for one seed.
    """
    values = draw(rng(), out.shape)
    if xp is np:
        out[...] = values
    else:
        out.set(np.ascontiguousarray(values, dtype=out.dtype))
