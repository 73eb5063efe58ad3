"""pycaffe on the Dragon engine: ``import dragon.vm.caffe as caffe`` runs pycaffe programs.

    import dragon.vm.caffe as caffe
    caffe.set_mode_cpu()
    net = caffe.Net("deploy.prototxt", caffe.TEST, weights="model.caffemodel")
    net.blobs["data"].data[...] = image_batch
    prob = net.forward()["prob"]

    solver = caffe.get_solver("lenet_solver.prototxt")
    solver.step(100)

    from caffe import layers as L, params as P      # NetSpec, as in pycaffe
    n = caffe.NetSpec()

The names match pycaffe's ``caffe`` module: Net, Layer (base of Python
layers), TRAIN/TEST, the solvers, NetSpec, ``caffe.proto.caffe_pb2``,
``caffe.io``, ``caffe.draw`` and the global settings, which land in
``dragon.config``.
"""
from dragon import config as _config
from dragon.vm.caffe import layers as _lowerings  # noqa: F401  (registers every layer type)
from dragon.vm.caffe import proto  # noqa: F401
from dragon.vm.caffe.proto import caffe_pb2  # noqa: F401
from dragon.vm.caffe import python_layer as _python_layer  # noqa: F401  (the Python type)
from dragon.vm.caffe.layers.registry import layer_type_list  # noqa: F401
from dragon.vm.caffe.net import Net  # noqa: F401
from dragon.vm.caffe.python_layer import Layer  # noqa: F401
from dragon.vm.caffe import draw, io, net_spec  # noqa: F401
from dragon.vm.caffe.net_spec import NetSpec, layers, params, to_proto  # noqa: F401
from dragon.vm.caffe.solver import (AdaDeltaSolver, AdaGradSolver, AdamSolver,  # noqa: F401
                                    NesterovSolver, RMSPropSolver, SGDSolver, get_solver)

TRAIN = caffe_pb2.TRAIN
TEST = caffe_pb2.TEST

_gpu_index = [0]


def set_mode_cpu():
    """Run on the CPU (numpy).

    >>> caffe.set_mode_cpu()
    """
    _config.set_device("cpu")


def set_mode_gpu():
    """Run on the GPU chosen by ``set_device`` (cupy; fails clearly without one).

    >>> caffe.set_mode_gpu()
    """
    _config.set_device("cuda", _gpu_index[0])


def set_device(device_id):
    """Choose GPU ``device_id`` (used now in GPU mode, or by the next ``set_mode_gpu``).

    >>> caffe.set_device(0)
    """
    _gpu_index[0] = int(device_id)
    if _config.get_device()[0] == "cuda":
        _config.set_device("cuda", _gpu_index[0])


def set_random_seed(seed):
    """Seed every random layer and filler (``dragon.config.set_random_seed``).

    >>> caffe.set_random_seed(1337)
    """
    _config.set_random_seed(int(seed))


__all__ = ["Net", "Layer", "TRAIN", "TEST", "set_mode_cpu", "set_mode_gpu", "set_device",
           "set_random_seed", "layer_type_list", "proto", "io", "draw", "net_spec", "layers",
           "params", "NetSpec", "to_proto", "SGDSolver", "NesterovSolver", "AdaGradSolver",
           "RMSPropSolver", "AdaDeltaSolver", "AdamSolver", "get_solver"]
