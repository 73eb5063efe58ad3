"""``theano.tensor.nnet``: activations, softmax, cross-entropies, batch norm, conv2d.

    import dragon.vm.theano.tensor as T
    h = T.nnet.sigmoid(T.dot(x, W) + b)
    p_y = T.nnet.softmax(T.dot(h, V) + c)
    cost = T.nnet.categorical_crossentropy(p_y, y).mean()
    conv_out = T.nnet.conv2d(images, filters, border_mode="half")

Every function builds Theano graph nodes that lower to the core's ops
(Sigmoid, Softmax, LogSoftmax, Conv2d, ...); gradients come from the core's rules.
"""
import importlib

from dragon.vm.theano.tensor.nnet import abstract_conv, bn, conv, sigm  # noqa: F401
from dragon.vm.theano.tensor.nnet.abstract_conv import (  # noqa: F401
    conv2d, conv2d_grad_wrt_inputs, conv2d_transpose)
from dragon.vm.theano.tensor.nnet.bn import batch_normalization  # noqa: F401
from dragon.vm.theano.tensor.nnet.sigm import (hard_sigmoid, sigmoid, softplus,  # noqa: F401
                                               ultra_fast_sigmoid)

# The softmax module registers graph rewrites, and compile.rewrite imports this package
# while it initializes: that module loads on first use instead of at import.
_FROM_NNET = ("softmax", "logsoftmax", "softmax_with_bias", "softmax_graph", "relu", "elu",
              "selu", "softsign", "categorical_crossentropy", "crossentropy_categorical_1hot",
              "crossentropy_softmax_1hot", "crossentropy_softmax_1hot_with_bias",
              "binary_crossentropy", "sigmoid_binary_crossentropy")


__all__ = ["abstract_conv", "bn", "conv", "nnet", "sigm", "conv2d", "conv2d_grad_wrt_inputs",
           "conv2d_transpose", "batch_normalization", "hard_sigmoid", "sigmoid", "softplus",
           "ultra_fast_sigmoid", *_FROM_NNET]


def __getattr__(name):
    if name == "nnet" or name in _FROM_NNET:
        module = importlib.import_module("dragon.vm.theano.tensor.nnet.nnet")
        return module if name == "nnet" else getattr(module, name)
    raise AttributeError(f"module 'theano.tensor.nnet' has no attribute '{name}'")


def __dir__():
    return sorted(list(globals()) + ["nnet"] + list(_FROM_NNET))
