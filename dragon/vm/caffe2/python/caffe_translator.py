"""Caffe's translator to Caffe2: a Caffe net and its weights as a Caffe2 NetDef and TensorProtos.

From the command line (writes the init net of GivenTensorFill ops and the predict net)::

    python -m dragon.vm.caffe2.python.caffe_translator deploy.prototxt weights.caffemodel \\
        --init_net init.pb --predict_net predict.pb [--remove_legacy_pad] [--input_dims 1 3 224 224]

From Python::

    from dragon.vm.caffe import proto_io
    from dragon.vm.caffe.proto import caffe_pb2
    from dragon.vm.caffe2.python import caffe_translator, workspace

    net, params = caffe_translator.TranslateModel(
        proto_io.read_net("deploy.prototxt"),
        proto_io.read_binary("weights.caffemodel", caffe_pb2.NetParameter), is_test=True)
    workspace.RunNetOnce(caffe_translator.ConvertTensorProtosToInitNet(params, "data"))
    workspace.FeedBlob("data", image)
    workspace.RunNetOnce(net)
    prob = workspace.FetchBlob("prob")

Caffe files are read only through ``dragon.vm.caffe``'s proto modules (V1 nets
and legacy inputs are upgraded as Caffe does). Each layer type's translation is
in ``caffe_translator_layers``; blobs keep their Caffe names and parameters are
named ``<layer>_w``, ``<layer>_b`` (SpatialBN: ``_s``, ``_b``, ``_rm``, ``_riv``).
When the input shapes are known (an Input layer, or ``input_dims``) the
translation follows every blob's shape, which the layers that depend on it use
(Crop, Softmax over an inner axis, ``remove_legacy_pad``).
"""
from __future__ import annotations

import argparse
import logging
import math
import sys

import numpy as np

from dragon.ops.registry import Spec
from dragon.vm.caffe import proto_io
from dragon.vm.caffe.proto import caffe_pb2
from dragon.vm.caffe2.proto import caffe2_pb2
from dragon.vm.caffe2.python import lowering, operators_extra, utils  # noqa: F401 (registers ops)
from dragon.vm.caffe2.python.caffe_translator_layers import TranslatorRegistry

__all__ = ["TranslateModel", "ConvertTensorProtosToInitNet", "TranslatorRegistry",
           "blob_to_array", "tensor_proto", "main"]

log = logging.getLogger(__name__)


# -- reading Caffe blobs and NetState rules -------------------------------------------------------

def _varint(data, pos):
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _encode_varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _packed(message, field_number, dtype):
    """Repeated numeric field ``field_number`` of ``message`` as an array, read off the wire.

    Converting a repeated field value by value costs seconds for a large layer;
    the serialized form holds the same numbers as one packed run of bytes.
    """
    data = message.SerializeToString()
    runs, pos = [], 0
    size = np.dtype(dtype).itemsize
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            length, pos = _varint(data, pos)
            if number == field_number:
                runs.append(np.frombuffer(data, dtype, length // size, pos))
            pos += length
        elif wire == 0:
            _, pos = _varint(data, pos)
        elif wire in (1, 5):
            if number == field_number:  # an unpacked value
                runs.append(np.frombuffer(data, dtype, 1, pos))
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unexpected wire type {wire} in a {type(message).__name__}")
    return np.concatenate(runs) if runs else np.zeros(0, dtype)


def blob_to_array(blob) -> np.ndarray:
    """A caffe_pb2.BlobProto as a float32 array of its shape (or legacy num/channels/h/w)."""
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    elif any(blob.HasField(f) for f in ("num", "channels", "height", "width")):
        shape = (blob.num, blob.channels, blob.height, blob.width)
    else:
        shape = None
    if len(blob.data):
        array = _packed(blob, 5, "<f4")
    else:
        array = _packed(blob, 8, "<f8").astype(np.float32)
    if shape is None:
        return array.copy()
    if array.size != math.prod(shape):
        raise ValueError(f"a blob of shape {shape} holds {array.size} values")
    return array.reshape(shape).astype(np.float32)  # a copy, native byte order


def tensor_proto(array, name) -> caffe2_pb2.TensorProto:
    """A float32 caffe2_pb2.TensorProto of ``array`` (as ``utils.NumpyArrayToCaffe2Tensor``)."""
    array = np.ascontiguousarray(array, dtype="<f4")
    proto = caffe2_pb2.TensorProto(dims=array.shape, data_type=caffe2_pb2.TensorProto.FLOAT,
                                   name=name)
    payload = array.tobytes()
    # float_data is field 3, packed: one length-delimited run (key 3 << 3 | 2).
    proto.MergeFromString(b"\x1a" + _encode_varint(len(payload)) + payload)
    return proto


def _meets(state, rule) -> bool:
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    stages = set(state.stage)
    return all(s in stages for s in rule.stage) and not any(s in stages for s in rule.not_stage)


def _included(state, layer) -> bool:
    """Caffe's rule: included unless excluded, or, with include rules, unless none matches."""
    if len(layer.include):
        return any(_meets(state, rule) for rule in layer.include)
    return not any(_meets(state, rule) for rule in layer.exclude)


# -- following shapes -----------------------------------------------------------------------------

class _Shapes:
    """Blob shapes, found by lowering each Caffe2 operator the way the workspace will.

    A blob whose shape is unknown (an input without one) makes the outputs of the
    operators reading it unknown too; the rest of the net is still followed.
    """

    def __init__(self):
        self.leaves: dict[str, Spec] = {}
        self.lowering = lowering.Lowering(self.leaves.get)

    def leaf(self, name, shape):
        self.lowering.tensors.pop(name, None)
        self.leaves.pop(name, None)
        if shape is not None:
            self.leaves[name] = Spec(tuple(int(d) for d in shape), np.dtype(np.float32))

    def lower(self, op):
        if all(self.shape(name) is not None for name in op.input):
            self.lowering.lower(op)
            return
        for name in op.output:
            self.lowering.tensors.pop(name, None)
            self.leaves.pop(name, None)

    def shape(self, name):
        t = self.lowering.tensors.get(name)
        if t is not None:
            return tuple(t.shape)
        spec = self.leaves.get(name)
        return tuple(spec.shape) if spec is not None else None


# -- the translation ------------------------------------------------------------------------------

class LayerContext:
    """What a layer's translation sees (see ``caffe_translator_layers``)."""

    def __init__(self, translation, layer):
        self._t = translation
        self.layer = layer
        self.is_test = translation.is_test
        self.remove_legacy_pad = translation.remove_legacy_pad

    def blobs(self, count):
        """The layer's first ``count`` pretrained blobs as float32 arrays."""
        layer = self.layer
        found = self._t.pretrained.get(layer.name)
        if found is None:
            raise ValueError(f"layer '{layer.name}' (type {layer.type}): the pretrained net has "
                             f"no layer of that name to take its parameters from")
        if len(found) < count:
            raise ValueError(f"layer '{layer.name}' (type {layer.type}): needs {count} "
                             f"pretrained blobs, the pretrained net has {len(found)}")
        try:
            return [blob_to_array(b) for b in found[:count]]
        except ValueError as exc:
            raise ValueError(f"layer '{layer.name}' (type {layer.type}): {exc}") from None

    def param(self, suffix, array):
        """Add parameter ``<layer>_<suffix>`` holding ``array``; returns its name."""
        name = f"{self.layer.name}_{suffix}"
        if name in self._t.param_names:
            raise ValueError(f"layer '{self.layer.name}': parameter name '{name}' is taken by "
                             f"another layer")
        array = np.asarray(array, dtype=np.float32)
        self._t.params.protos.append(tensor_proto(array, name))
        self._t.param_names[name] = None
        self._t.shapes.leaf(name, array.shape)
        return name

    def op(self, op_type, inputs, outputs, **args):
        """Add Caffe2 operator ``op_type`` (named after the layer); returns its outputs."""
        op = caffe2_pb2.OperatorDef(type=op_type, name=self.layer.name,
                                    input=[str(i) for i in inputs],
                                    output=[str(o) for o in outputs])
        op.arg.extend(utils.MakeArgument(k, v) for k, v in args.items())
        self._t.net.op.append(op)
        self._t.reads_writes(op)
        try:
            self._t.shapes.lower(op)
        except RuntimeError as exc:
            raise ValueError(f"layer '{self.layer.name}' (type {self.layer.type}): its Caffe2 "
                             f"{op_type} operator does not fit: {exc}") from None
        return list(op.output)

    def add_input(self, name, shape):
        """Make blob ``name`` an external input (``shape`` may be None: unknown)."""
        if not self._t.inputs and self._t.input_dims is not None:
            shape = tuple(self._t.input_dims)
        self._t.inputs[name] = None
        self._t.written.add(name)
        self._t.shapes.leaf(name, shape)

    def shape(self, blob):
        """The shape of ``blob`` at this point of the net, or None when unknown."""
        return self._t.shapes.shape(blob)

    def require_shape(self, blob, why):
        shape = self.shape(blob)
        if shape is None:
            raise ValueError(f"layer '{self.layer.name}' (type {self.layer.type}): {why} needs "
                             f"the shape of '{blob}'; give the net an Input layer with a shape "
                             f"or pass input_dims")
        return shape

    def warn(self, message):
        log.warning(message)


class _Translation:
    def __init__(self, name, pretrained, is_test, input_dims, remove_legacy_pad):
        self.net = caffe2_pb2.NetDef(name=name)
        self.params = caffe2_pb2.TensorProtos()
        self.param_names: dict[str, None] = {}
        self.pretrained = pretrained
        self.is_test = bool(is_test)
        self.input_dims = None if input_dims is None else [int(d) for d in input_dims]
        self.remove_legacy_pad = bool(remove_legacy_pad)
        self.shapes = _Shapes()
        self.inputs: dict[str, None] = {}
        self.written: set[str] = set()
        self.unconsumed: dict[str, None] = {}  # Caffe's net outputs: tops no later layer reads

    def translate(self, layer):
        TranslatorRegistry.Get(layer)(layer, LayerContext(self, layer))
        for name in layer.bottom:
            self.unconsumed.pop(name, None)
        for name in layer.top:
            self.unconsumed.pop(name, None)
            self.unconsumed[name] = None

    def reads_writes(self, op):
        for name in op.input:
            if name not in self.written and name not in self.param_names:
                self.inputs[name] = None  # read before anything writes it
                self.written.add(name)
        self.written.update(op.output)

    def finish(self):
        self.net.external_input.extend(list(self.inputs) + list(self.param_names))
        self.net.external_output.extend(self.unconsumed)
        return self.net, self.params


def _upgraded(net):
    """``net`` in the current format: V1 layers and input fields upgraded in a copy."""
    if not (len(net.layers) or len(net.input)):
        return net
    copy = caffe_pb2.NetParameter()
    copy.CopyFrom(net)
    return proto_io.upgrade_net(copy)


def TranslateModel(caffe_net, pretrained_net, is_test=False, input_dims=None,  # noqa: N802
                   net_state=None, remove_legacy_pad=False):
    """Translate a Caffe net and its weights: returns ``(caffe2_pb2.NetDef, TensorProtos)``.

    caffe_net, pretrained_net: ``caffe_pb2.NetParameter`` of the deploy prototxt and
    the caffemodel (V1 files are upgraded). is_test: Dropout and BatchNorm (without
    ``use_global_stats``) run in inference mode. input_dims: the shape of the first
    input (overrides its Input layer). net_state: the ``caffe_pb2.NetState`` selecting
    layers by their include/exclude rules (default: the net's own, phase TEST).
    remove_legacy_pad: give max poolings explicit padding instead of Caffe's ceil
    rounding (``legacy_pad``); needs the input shape. An unsupported layer raises
    NotImplementedError naming it.

    >>> net, params = TranslateModel(deploy, weights, is_test=True)
    >>> [op.type for op in net.op][:3]
    ['Conv', 'Relu', 'MaxPool']
    """
    caffe_net = _upgraded(caffe_net)
    pretrained = {}
    if pretrained_net is not None:
        for layer in _upgraded(pretrained_net).layer:
            if len(layer.blobs):
                pretrained[layer.name] = list(layer.blobs)
    state = net_state if net_state is not None else caffe_net.state
    t = _Translation(caffe_net.name, pretrained, is_test, input_dims, remove_legacy_pad)
    for layer in caffe_net.layer:
        if _included(state, layer):
            t.translate(layer)
    return t.finish()


def ConvertTensorProtosToInitNet(net_params, input_name):  # noqa: N802
    """An init NetDef of one GivenTensorFill per tensor, and a [1] ConstantFill of the input.

    >>> init_net = ConvertTensorProtosToInitNet(params, "data")
    >>> init_net.op[0].type
    'GivenTensorFill'
    """
    init_net = caffe2_pb2.NetDef(name="init")
    fills = {caffe2_pb2.TensorProto.FLOAT: ("GivenTensorFill", "float_data", "floats"),
             caffe2_pb2.TensorProto.DOUBLE: ("GivenTensorDoubleFill", "double_data", "floats"),
             caffe2_pb2.TensorProto.INT32: ("GivenTensorIntFill", "int32_data", "ints"),
             caffe2_pb2.TensorProto.INT64: ("GivenTensorInt64Fill", "int64_data", "ints")}
    for tensor in net_params.protos:
        try:
            op_type, field, arg_field = fills[tensor.data_type]
        except KeyError:
            raise ValueError(f"tensor '{tensor.name}': data type {tensor.data_type} has no "
                             f"GivenTensor*Fill") from None
        op = init_net.op.add(type=op_type, output=[tensor.name])
        op.arg.add(name="shape", ints=list(tensor.dims))
        values = op.arg.add(name="values")
        if tensor.raw_data:
            array = utils.Caffe2TensorToNumpyArray(tensor)
            getattr(values, arg_field).extend(array.ravel().tolist())
        else:
            getattr(values, arg_field).extend(getattr(tensor, field))
    names = [input_name] if isinstance(input_name, (str, bytes)) else list(input_name or [])
    for name in names:
        name = name.decode() if isinstance(name, bytes) else str(name)
        init_net.op.add(type="ConstantFill", output=[name]).arg.add(name="shape", ints=[1])
    return init_net


# -- command line ---------------------------------------------------------------------------------

def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m dragon.vm.caffe2.python.caffe_translator",
        description="Translate a Caffe deploy prototxt and caffemodel into Caffe2 init and "
                    "predict nets.")
    parser.add_argument("prototext", help="the Caffe deploy prototxt")
    parser.add_argument("caffemodel", help="the Caffe weights (.caffemodel)")
    parser.add_argument("--init_net", default="init_net.pb",
                        help="where to write the init net (default: %(default)s)")
    parser.add_argument("--predict_net", default="predict_net.pb",
                        help="where to write the predict net (default: %(default)s)")
    parser.add_argument("--remove_legacy_pad", action="store_true",
                        help="replace Caffe's pooling rounding by explicit padding")
    parser.add_argument("--input_dims", type=int, nargs="+", metavar="DIM",
                        help="the input shape, e.g. 1 3 224 224")
    return parser


def main(argv=None):
    """The command line: ``main(["deploy.prototxt", "w.caffemodel", "--init_net", "i.pb"])``."""
    args = _parser().parse_args(argv)
    try:
        caffe_net = proto_io.read_net(args.prototext)
        weights = proto_io.read_binary(args.caffemodel, caffe_pb2.NetParameter)
        net, params = TranslateModel(caffe_net, weights, is_test=True,
                                     input_dims=args.input_dims,
                                     remove_legacy_pad=args.remove_legacy_pad)
    except (OSError, ValueError, NotImplementedError) as exc:
        print(f"caffe_translator: {exc}", file=sys.stderr)
        return 1
    param_names = {p.name for p in params.protos}
    inputs = [name for name in net.external_input if name not in param_names]
    init_net = ConvertTensorProtosToInitNet(params, inputs)
    for path, message in ((args.init_net, init_net), (args.predict_net, net)):
        with open(path, "wb") as f:
            f.write(message.SerializeToString())
    print(f"caffe_translator: {len(net.op)} operators and {len(params.protos)} parameters; "
          f"wrote {args.init_net} and {args.predict_net}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
