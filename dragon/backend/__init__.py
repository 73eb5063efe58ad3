"""Array module choice (numpy on CPU, cupy on CUDA) and the random generator.

Kernels never import numpy or cupy directly for array math: they receive ``xp``.
"""
from __future__ import annotations

import os

import numpy as np

from dragon import config

_rng = {"gen": None, "seed": None}
_blas = {"libs": None, "threads": None, "max": None}

#: Below this many floating-point operations a BLAS call runs on one thread: on
#: small products a second thread costs more in hand-off than it saves (on a busy
#: 2-core machine up to 50x more, measured with a 100x784x100 product).
SMALL_BLAS_FLOPS = 200_000_000


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


def _blas_libs():
    if _blas["libs"] is None:
        try:
            from threadpoolctl import ThreadpoolController
            libs = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:  # threadpoolctl missing or no BLAS it knows: leave threads alone
            libs = []
        _blas["libs"] = libs
        _blas["max"] = max([lib.num_threads for lib in libs], default=1)
    return _blas["libs"]


def blas_threads_for(flops: int) -> int:
    """How many BLAS threads an operation of ``flops`` floating-point operations gets.

    Decided when a plan is compiled. Large products get every core unless the
    machine is already busy: OpenBLAS threads that must share a core with another
    process wait on each other (measured 3-4x slower than one thread on 2 cores
    with one other busy process).
    """
    _blas_libs()
    if flops < SMALL_BLAS_FLOPS or _blas["max"] <= 1:
        return 1
    try:
        busy = os.getloadavg()[0] > _blas["max"] - 0.5
    except OSError:
        busy = False
    return 1 if busy else _blas["max"]


def set_blas_threads(n: int) -> None:
    """Set the BLAS thread count (a no-op when it is already ``n``)."""
    if _blas["threads"] == n:
        return
    for lib in _blas_libs():
        lib.set_num_threads(n)
    _blas["threads"] = n
