"""Theano's compilation modes, accepted by name or as ``Mode`` objects.

Every mode compiles the same way here (one core plan per input shape set);
``FAST_COMPILE`` and ``DebugMode`` only exist so programs that name them run.

    f = theano.function([x], y, mode="FAST_RUN")
    f = theano.function([x], y, mode=theano.Mode(linker="py", optimizer="fast_compile"))
"""
from __future__ import annotations

MODE_NAMES = ("FAST_RUN", "FAST_COMPILE", "DebugMode", "DEBUG_MODE", "NanGuardMode",
              "ProfileMode", "PROFILE_MODE", "Mode", "JAX", "NUMBA", "C", "PY")


class Mode:
    """A compilation mode: ``linker`` and ``optimizer`` names are recorded, not used."""

    def __init__(self, linker=None, optimizer="default", name=None):
        self.linker = linker
        self.optimizer = optimizer
        self.name = name or "Mode"

    def including(self, *tags):
        return self

    def excluding(self, *tags):
        return self

    def requiring(self, *tags):
        return self

    def clone(self, **kwargs):
        return Mode(kwargs.get("linker", self.linker), kwargs.get("optimizer", self.optimizer),
                    self.name)

    def __repr__(self):
        return f"Mode(linker={self.linker!r}, optimizer={self.optimizer!r})"


class DebugMode(Mode):
    pass


class NanGuardMode(Mode):
    def __init__(self, nan_is_error=None, inf_is_error=None, big_is_error=None, optimizer=None,
                 linker=None):
        super().__init__(linker, optimizer, "NanGuardMode")


FAST_RUN = Mode(name="FAST_RUN")
FAST_COMPILE = Mode(name="FAST_COMPILE")


def get_mode(mode):
    """A Mode for ``mode`` (None, a name or a Mode)."""
    if mode is None:
        return get_default_mode()
    if isinstance(mode, Mode):
        return mode
    if isinstance(mode, str):
        if mode not in MODE_NAMES:
            raise ValueError(f"unknown mode {mode!r}; use one of {MODE_NAMES}")
        return Mode(name=mode)
    raise TypeError(f"mode must be a name or a Mode, got {mode!r}")


def get_default_mode():
    from dragon.vm.theano.configparser import config
    return get_mode(config.mode if config.mode in MODE_NAMES else "Mode")
