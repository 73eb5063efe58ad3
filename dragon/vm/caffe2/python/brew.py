"""Caffe2's ``brew``: layer helpers that add operators and parameters to a ModelHelper.

    model = model_helper.ModelHelper(name="mnist")
    conv1 = brew.conv(model, "data", "conv1", dim_in=1, dim_out=20, kernel=5)
    pool1 = brew.max_pool(model, conv1, "pool1", kernel=2, stride=2)
    with brew.arg_scope([brew.fc], weight_init=("GaussianFill", {"std": 0.01})):
        pred = brew.fc(model, pool1, "pred", dim_in=20 * 12 * 12, dim_out=10)

Each call merges, in order of precedence: its own keyword arguments, the
enclosing ``arg_scope``s, and the model's ``arg_scope`` (for helpers taking
``**kwargs`` or naming those arguments). ``brew.Register(fn)`` adds a helper.
"""
from __future__ import annotations

import copy
import inspect

from dragon.vm.caffe2.python.helpers import (algebra, array_helpers, conv, dropout, fc,
                                             nonlinearity, normalization, pooling, train)
from dragon.vm.caffe2.python.helpers.arg_scope import arg_scope, get_current_scope  # noqa: F401
from dragon.vm.caffe2.python.helpers.db_input import db_input

_registry: dict = {}
# Model arg_scope entries that only helpers naming them use (others would pass them to ops).
_DEVICE_KEYS = ("order", "use_cudnn", "cudnn_exhaustive_search", "ws_nbytes_limit")


def _wrap(name, helper):
    params = inspect.signature(helper).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())

    def scope_wrapper(*args, **kwargs):
        if args:
            model = args[0]
        elif "model" in kwargs:
            model = kwargs["model"]
        else:
            raise RuntimeError("The first input of helper function should be model. Or you can "
                               "provide it in kwargs as model=<your_model>.")
        merged = {k: v for k, v in copy.deepcopy(getattr(model, "arg_scope", {})).items()
                  if k in params or (takes_any and k not in _DEVICE_KEYS)}
        merged.update(get_current_scope().get(name, {}))
        merged.update(kwargs)
        return helper(*args, **merged)

    scope_wrapper.__name__ = name
    scope_wrapper.__doc__ = helper.__doc__
    scope_wrapper.__wrapped__ = helper
    return scope_wrapper


def Register(helper):  # noqa: N802 - Caffe2's name
    """Make ``helper(model, ...)`` available as ``brew.<helper name>``."""
    name = helper.__name__
    if name in _registry:
        raise AttributeError(f"Helper {name} already exists. Please change your helper name.")
    _registry[name] = helper
    globals()[name] = _wrap(name, helper)
    return helper


def has_helper(helper_or_helper_name):
    name = helper_or_helper_name if isinstance(helper_or_helper_name, str) else \
        helper_or_helper_name.__name__
    return name in _registry


def __getattr__(name):
    raise AttributeError(f"Helper function {name} not registered.")


for _helper in (fc.fc, conv.conv, conv.group_conv, conv.conv_transpose, pooling.max_pool,
                pooling.average_pool, nonlinearity.relu, nonlinearity.prelu, nonlinearity.tanh,
                nonlinearity.sigmoid, normalization.softmax, normalization.lrn,
                normalization.spatial_bn, dropout.dropout, array_helpers.concat,
                array_helpers.depth_concat, algebra.sum, algebra.transpose, train.iter,
                train.accuracy, train.add_weight_decay, db_input):
    Register(_helper)

__all__ = sorted(_registry) + ["arg_scope", "Register", "has_helper"]
