"""Imports every op family module so that its ops register."""
import importlib
import pkgutil

import dragon.ops as _package

_SKIP = {"registry", "_families"}
for _info in pkgutil.iter_modules(_package.__path__):
    if _info.name not in _SKIP:
        importlib.import_module(f"dragon.ops.{_info.name}")
