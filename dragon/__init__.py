"""Dragon: one graph engine under the Caffe, Theano, Caffe2 and Caffe64 front ends.

    import numpy as np, dragon
    x = dragon.placeholder((None, 4), name="x")
    w = dragon.variable(np.full((4, 2), 0.5, "float32"), name="w")
    y = dragon.ops.relu(x @ w)
    f = dragon.function([x], y)
    f(np.ones((3, 4), "float32"))            # 3x2 array of 2.0
"""
from dragon import config  # noqa: F401
from dragon import ops  # noqa: F401
from dragon.core import workspace  # noqa: F401
from dragon.core.autodiff import grad, gradients, stop_gradient  # noqa: F401
from dragon.core.errors import (DisconnectedInputError, DragonError, FeedError,  # noqa: F401
                                MissingTensorError, NoGradientError, ShapeError,
                                UnknownOpError)
from dragon.core.function import Function, function  # noqa: F401
from dragon.core.scope import device_scope, name_scope  # noqa: F401
from dragon.core.tensor import Tensor, constant, placeholder, variable  # noqa: F401
from dragon import updaters  # noqa: F401

__version__ = "0.3.0"
