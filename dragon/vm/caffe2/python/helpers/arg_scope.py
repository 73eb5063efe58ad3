"""``brew.arg_scope``: default keyword arguments for helpers used inside a with block.

    with brew.arg_scope([brew.conv, brew.fc], weight_init=("MSRAFill", {})):
        brew.conv(model, data, "conv1", 1, 20, 5)      # MSRA-initialized
"""
from __future__ import annotations

import contextlib
import copy
import threading

_local = threading.local()


def get_current_scope() -> dict:
    """{helper name: {argument: value}} of the enclosing arg_scopes."""
    if not hasattr(_local, "scope"):
        _local.scope = {}
    return _local.scope


@contextlib.contextmanager
def arg_scope(single_helper_or_list, **kwargs):
    """Give every helper in ``single_helper_or_list`` these keyword arguments by default."""
    helpers = single_helper_or_list if isinstance(single_helper_or_list, list) else \
        [single_helper_or_list]
    old = copy.deepcopy(get_current_scope())
    for helper in helpers:
        if not callable(helper):
            raise TypeError("arg_scope is only supporting single or a list of helper functions.")
        _local.scope.setdefault(helper.__name__, {}).update(kwargs)
    try:
        yield
    finally:
        _local.scope = old
