"""Name and device scopes, and unique naming of tensors and ops.

    with dragon.name_scope("conv1"):
        w = dragon.variable(np.zeros((8, 3, 3, 3), "float32"), name="weight")
    w.name  # 'conv1/weight'
"""
from __future__ import annotations

import contextlib
import itertools
import threading

_local = threading.local()
_counters: dict[str, itertools.count] = {}
_taken: set[str] = set()


def _stack(kind):
    stacks = getattr(_local, "stacks", None)
    if stacks is None:
        stacks = _local.stacks = {"name": [], "device": []}
    return stacks[kind]


@contextlib.contextmanager
def name_scope(prefix: str):
    """Prefix names made inside with ``prefix/``."""
    stack = _stack("name")
    stack.append(prefix.strip("/"))
    try:
        yield prefix
    finally:
        stack.pop()


@contextlib.contextmanager
def device_scope(device: str = "cpu", index: int = 0):
    """Tag ops made inside with a device (recorded in each OperatorDef)."""
    stack = _stack("device")
    stack.append((device, index))
    try:
        yield
    finally:
        stack.pop()


def current_prefix() -> str:
    parts = [p for p in _stack("name") if p]
    return "/".join(parts) + "/" if parts else ""


def current_device():
    stack = _stack("device")
    return stack[-1] if stack else None


def unique_name(base: str, scoped: bool = True) -> str:
    """``base`` under the current scope, suffixed ``:k`` when it was taken before."""
    name = (current_prefix() if scoped else "") + base
    if name not in _taken:
        _taken.add(name)
        return name
    counter = _counters.setdefault(name, itertools.count(1))
    while True:
        candidate = f"{name}:{next(counter)}"
        if candidate not in _taken:
            _taken.add(candidate)
            return candidate


def claim_name(name: str) -> str:
    """Mark ``name`` as taken (an explicit user name) and return it."""
    _taken.add(name)
    return name
