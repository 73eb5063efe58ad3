"""Caffe layer lowerings, in the six sections of the original front end.

Importing this package registers every lowering; ``registry.layer_type_list()``
names them::

    from dragon.vm.caffe import layers
    "Convolution" in layers.layer_type_list()     # True
"""
from dragon.vm.caffe.layers import common, data, loss, mpi, neuron, vision  # noqa: F401
from dragon.vm.caffe.layers.fillers import fill_array, filler_op, filler_tensor  # noqa: F401
from dragon.vm.caffe.layers.registry import (LayerContext, LayerLowering, get,  # noqa: F401
                                             layer_type_list, lowering)
