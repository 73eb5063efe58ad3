"""Global settings: device, random seed, optimization level and logging.

Every front end reads these, so ``caffe.set_mode_gpu()``, ``theano.config`` and
Caffe2's device options all land here::

    import dragon
    dragon.config.set_device("cpu")
    dragon.config.set_random_seed(1337)
    dragon.config.set_optimization_level(2)

Dragon 0.2's names are kept as aliases: ``EnableCPU``, ``EnableCUDA(gpu_id)``,
``SetRandomSeed``, ``SetLoggingLevel``.
"""
from __future__ import annotations

import logging

#: Optimization levels the planner understands (see ``docs/architecture.md``).
LEVEL_KEEP_ALL = 0      # every tensor keeps its own buffer for the whole run (Caffe)
LEVEL_INPLACE = 1       # prune + in-place ops
LEVEL_SHARE = 2         # + liveness-based buffer reuse and gradient buffer sharing
LEVEL_RECOMPUTE = 3     # + drop and recompute cheap forward results (Chen et al. 2016)
MAX_LEVEL = LEVEL_RECOMPUTE

_state = {
    "device": "cpu",
    "device_index": 0,
    "seed": 3,
    "level": LEVEL_SHARE,
}
_listeners = []  # called with the setting's name after every change

logger = logging.getLogger("dragon")
if not logger.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(_handler)
    logger.setLevel(logging.INFO)


def _changed(name):
    for fn in list(_listeners):
        fn(name)


def on_change(fn):
    """Call ``fn(setting_name)`` whenever a setting changes (backend uses it)."""
    _listeners.append(fn)
    return fn


def set_device(device: str = "cpu", index: int = 0) -> None:
    """Run on ``'cpu'`` (numpy) or ``'cuda'`` (cupy) device ``index``.

    >>> dragon.config.set_device("cpu")
    """
    device = device.lower()
    if device in ("gpu", "cuda"):
        device = "cuda"
    elif device != "cpu":
        raise ValueError(f"unknown device '{device}': use 'cpu' or 'cuda'")
    if device == "cuda":
        from dragon.backend import require_cupy
        require_cupy(index)
    _state["device"], _state["device_index"] = device, int(index)
    _changed("device")


def get_device() -> tuple[str, int]:
    """The current ``(device, index)``."""
    return _state["device"], _state["device_index"]


def set_random_seed(seed: int) -> None:
    """Seed every random op; the same seed gives bit-identical results on CPU.

    >>> dragon.config.set_random_seed(1337)
    """
    _state["seed"] = int(seed)
    _changed("seed")


def get_random_seed() -> int:
    return _state["seed"]


def set_optimization_level(level: int) -> None:
    """0 keeps every tensor (Caffe's behaviour); 3 applies every memory pass.

    1: prune and run ops in place; 2: also reuse buffers after their last use;
    3: also drop cheap forward results and recompute them for the backward pass.

    >>> dragon.config.set_optimization_level(0)
    """
    level = int(level)
    if not 0 <= level <= MAX_LEVEL:
        raise ValueError(f"optimization level must be 0..{MAX_LEVEL}, got {level}")
    _state["level"] = level
    _changed("level")


def get_optimization_level() -> int:
    return _state["level"]


def set_logging_level(level) -> None:
    """Set the engine's log level: a ``logging`` level or a name like ``'INFO'``."""
    if isinstance(level, str):
        level = getattr(logging, level.upper())
    logger.setLevel(level)


# Dragon 0.2 names.
def EnableCPU():  # noqa: N802 - historical name
    set_device("cpu")


def EnableCUDA(gpu_id=0, use_cudnn=True):  # noqa: N802
    set_device("cuda", gpu_id)


SetRandomSeed = set_random_seed
SetLoggingLevel = set_logging_level
SetDebugMode = set_logging_level  # accepted for old scripts; debug mode is logging
