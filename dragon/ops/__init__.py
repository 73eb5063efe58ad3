"""The ops library: every op registered once, and a function per op.

Each registered type ``"SoftmaxCrossEntropy"`` is also a function
``dragon.ops.softmax_cross_entropy(*inputs, **args)`` that builds it on tensors::

    y = dragon.ops.relu(x)
    loss = dragon.ops.reduce_mean(y)
    dragon.ops.names()[:3]        # ['Abs', 'Accuracy', 'Add']
"""
import re as _re

from dragon.ops import registry
from dragon.ops.registry import Spec, get, names, register  # noqa: F401

# Every family module registers its ops on import (see _families).
from dragon.ops import _families  # noqa: F401,E402


_SPELLED = {"Im2Col": "im2col", "Col2Im": "col2im"}  # names a rule would mangle


def _snake(name):
    if name in _SPELLED:
        return _SPELLED[name]
    return _re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def _make(type_name):
    def build(*inputs, name=None, **args):
        from dragon.core.tensor import apply
        return apply(type_name, list(inputs), name=name, **args)
    schema = registry.get(type_name)
    build.__name__ = _snake(type_name)
    build.__doc__ = f"Apply op {type_name}: {schema.doc}"
    return build


for _type in registry.names():
    globals().setdefault(_snake(_type), _make(_type))
