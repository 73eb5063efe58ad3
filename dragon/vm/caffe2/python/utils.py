"""Caffe2's ``utils``: Arguments from Python values, TensorProtos to and from numpy.

    arg = utils.MakeArgument("shape", [2, 3])           # ints: 2 ints: 3
    proto = utils.NumpyArrayToCaffe2Tensor(np.eye(2, dtype="float32"), "I")
    utils.Caffe2TensorToNumpyArray(proto)                 # the 2x2 identity again
"""
from __future__ import annotations

import numpy as np
from google.protobuf.message import Message

from dragon.vm.caffe2.proto import caffe2_pb2

OPTIMIZER_ITERATION_NAME = "optimizer_iteration"
ITERATION_MUTEX_NAME = "iteration_mutex"

_T = caffe2_pb2.TensorProto

# numpy dtype -> (DataType, field holding the values)
_TO_PROTO = {
    np.dtype(np.float32): (_T.FLOAT, "float_data"),
    np.dtype(np.float64): (_T.DOUBLE, "double_data"),
    np.dtype(np.int32): (_T.INT32, "int32_data"),
    np.dtype(np.int64): (_T.INT64, "int64_data"),
    np.dtype(np.int16): (_T.INT16, "int32_data"),
    np.dtype(np.int8): (_T.INT8, "int32_data"),
    np.dtype(np.uint16): (_T.UINT16, "int32_data"),
    np.dtype(np.uint8): (_T.UINT8, "int32_data"),
    np.dtype(np.bool_): (_T.BOOL, "int32_data"),
    np.dtype(np.float16): (_T.FLOAT16, "int32_data"),
}
_FROM_PROTO = {
    _T.FLOAT: (np.float32, "float_data"), _T.DOUBLE: (np.float64, "double_data"),
    _T.INT32: (np.int32, "int32_data"), _T.INT64: (np.int64, "int64_data"),
    _T.INT16: (np.int16, "int32_data"), _T.INT8: (np.int8, "int32_data"),
    _T.UINT16: (np.uint16, "int32_data"), _T.UINT8: (np.uint8, "int32_data"),
    _T.BOOL: (np.bool_, "int32_data"), _T.FLOAT16: (np.float16, "int32_data"),
}


def _is_int(v):
    return isinstance(v, (bool, int, np.integer, np.bool_))


def _is_float(v):
    return isinstance(v, (float, np.floating))


def MakeArgument(key, value):  # noqa: N802 - Caffe2's names
    """A caffe2_pb2.Argument named ``key`` holding ``value``.

    float -> f, int/bool -> i, str/bytes -> s, NetDef -> n, other messages serialized
    into s; lists of one kind -> floats/ints/strings/nets. None and mixed lists raise
    ValueError.
    """
    arg = caffe2_pb2.Argument(name=key)
    if isinstance(value, np.ndarray):
        if value.dtype == np.float32:
            arg.floats.extend(value.ravel().tolist())
            return arg
        value = value.ravel().tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        arg.f = value
    elif _is_int(value):
        arg.i = int(value)
    elif isinstance(value, bytes):
        arg.s = value
    elif isinstance(value, str):
        arg.s = value.encode("utf-8")
    elif isinstance(value, caffe2_pb2.NetDef):
        arg.n.CopyFrom(value)
    elif isinstance(value, Message):
        arg.s = value.SerializeToString()
    elif isinstance(value, (list, tuple, range)):
        items = list(value)
        if all(_is_float(v) for v in items):
            arg.floats.extend(float(v) for v in items)
        elif all(_is_int(v) for v in items):
            arg.ints.extend(int(v) for v in items)
        elif all(isinstance(v, (str, bytes)) for v in items):
            arg.strings.extend(v.encode("utf-8") if isinstance(v, str) else v for v in items)
        elif all(isinstance(v, caffe2_pb2.NetDef) for v in items):
            arg.nets.extend(items)
        elif all(isinstance(v, Message) for v in items):
            arg.strings.extend(v.SerializeToString() for v in items)
        else:
            raise ValueError(f"Unknown iterable argument type: key={key} value={value}, value "
                             f"type={type(value)}[{set(type(v) for v in items)}]")
    else:
        raise ValueError(f"Unknown argument type: key={key} value={value}, value type="
                         f"{type(value)}")
    return arg


def NumpyArrayToCaffe2Tensor(arr, name=None):  # noqa: N802
    """A caffe2_pb2.TensorProto holding ``arr``.

    >>> utils.NumpyArrayToCaffe2Tensor(np.zeros((2, 2), "float32"), "w").dims   # [2, 2]
    """
    arr = np.asarray(arr)
    try:
        data_type, field = _TO_PROTO[arr.dtype]
    except KeyError:
        raise TypeError(f"a tensor of dtype {arr.dtype} has no Caffe2 TensorProto type") from None
    proto = caffe2_pb2.TensorProto(dims=arr.shape, data_type=data_type)
    if name:
        proto.name = name
    values = arr.ravel()
    if arr.dtype == np.float16:
        values = values.view(np.uint16)
    getattr(proto, field).extend(values.tolist())
    return proto


def Caffe2TensorToNumpyArray(tensor):  # noqa: N802
    """The numpy array a caffe2_pb2.TensorProto holds (raw_data, byte_data or typed fields)."""
    shape = tuple(tensor.dims)
    if tensor.data_type == _T.BYTE:
        return np.frombuffer(tensor.byte_data, np.uint8).reshape(shape)
    if tensor.data_type == _T.STRING:
        return np.array(list(tensor.string_data), dtype=object).reshape(shape)
    try:
        dtype, field = _FROM_PROTO[tensor.data_type]
    except KeyError:
        raise TypeError(f"TensorProto data type {tensor.data_type} is not supported") from None
    if tensor.raw_data:
        return np.frombuffer(tensor.raw_data, dtype).reshape(shape).copy()
    values = getattr(tensor, field)
    if dtype is np.float16:
        return np.array(values, np.uint16).view(np.float16).reshape(shape)
    return np.array(values, dtype).reshape(shape)


def BuildUniqueMutexIter(init_net, net, iter=None, iter_mutex=None, iter_val=0):  # noqa: N802,A002
    """The iteration counter blob shared by optimizers: int64 [1] made once, advanced per run."""
    from dragon.vm.caffe2.python import core
    iter_name = str(iter) if iter is not None else OPTIMIZER_ITERATION_NAME
    mutex_name = str(iter_mutex) if iter_mutex is not None else ITERATION_MUTEX_NAME
    if init_net.BlobIsDefined(iter_name):
        return init_net.GetBlobRef(iter_name)
    with core.DeviceScope(core.DeviceOption(caffe2_pb2.CPU)):
        iteration = init_net.ConstantFill([], iter_name, shape=[1], value=iter_val,
                                          dtype=core.DataType.INT64)
        mutex = init_net.CreateMutex([], [mutex_name])
        net.AtomicIter([mutex, iteration], [iteration])
    return iteration
