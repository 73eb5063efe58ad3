"""Reading, writing and upgrading Caffe's prototxt and binary proto files.

    from dragon.vm.caffe import proto_io
    from dragon.vm.caffe.proto import caffe_pb2

    net = proto_io.read_net("deploy.prototxt")          # upgraded like Caffe
    weights = proto_io.read_binary("model.caffemodel", caffe_pb2.NetParameter)
    solver = proto_io.read_solver("solver.prototxt")
    proto_io.write_binary("copy.caffemodel", weights)   # atomic
    proto_io.write_text("copy.prototxt", net)           # atomic

Old files are upgraded the way Caffe's ``upgrade_proto.cpp`` does it: V1
``layers`` with enum types become ``layer`` entries with string types, the
``input:``/``input_dim:`` header becomes an ``Input`` layer, deprecated data
layer fields move to ``transform_param``, three-``param`` BatchNorm layers get
frozen statistics, and the solver's ``solver_type`` enum becomes ``type``.
"""
import os
import tempfile

from google.protobuf import message as _message
from google.protobuf import text_format

from dragon.vm.caffe.proto import caffe_pb2

__all__ = [
    "PrototxtError",
    "BinaryProtoError",
    "read_net",
    "read_solver",
    "read_text",
    "read_binary",
    "write_binary",
    "write_text",
    "upgrade_net",
    "upgrade_solver",
    "V1_LAYER_TYPES",
]


class PrototxtError(ValueError):
    """A text proto that does not parse; names the file, line and column."""

    def __init__(self, path, line, column, reason, source_line=None):
        self.path, self.line, self.column = path, line, column
        self.reason, self.source_line = reason, source_line
        where = str(path)
        if line is not None:
            where += ":%d" % line
            if column is not None:
                where += ":%d" % column
        text = "%s: %s" % (where, reason)
        if source_line is not None:
            text += "\n    %s" % source_line.rstrip()
            if column:
                text += "\n    %s^" % (" " * (column - 1))
        super().__init__(text)


class BinaryProtoError(ValueError):
    """A binary proto file that does not decode as the expected message."""


V1_LAYER_TYPES = {
    "NONE": "",
    "ABSVAL": "AbsVal",
    "ACCURACY": "Accuracy",
    "ARGMAX": "ArgMax",
    "BNLL": "BNLL",
    "CONCAT": "Concat",
    "CONTRASTIVE_LOSS": "ContrastiveLoss",
    "CONVOLUTION": "Convolution",
    "DECONVOLUTION": "Deconvolution",
    "DATA": "Data",
    "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData",
    "EUCLIDEAN_LOSS": "EuclideanLoss",
    "ELTWISE": "Eltwise",
    "EXP": "Exp",
    "FLATTEN": "Flatten",
    "HDF5_DATA": "HDF5Data",
    "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss",
    "IM2COL": "Im2col",
    "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss",
    "INNER_PRODUCT": "InnerProduct",
    "LRN": "LRN",
    "MEMORY_DATA": "MemoryData",
    "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN",
    "POOLING": "Pooling",
    "POWER": "Power",
    "RELU": "ReLU",
    "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss",
    "SILENCE": "Silence",
    "SOFTMAX": "Softmax",
    "SOFTMAX_LOSS": "SoftmaxWithLoss",
    "SPLIT": "Split",
    "SLICE": "Slice",
    "TANH": "TanH",
    "WINDOW_DATA": "WindowData",
    "THRESHOLD": "Threshold",
}

_SOLVER_TYPES = {
    "SGD": "SGD",
    "NESTEROV": "Nesterov",
    "ADAGRAD": "AdaGrad",
    "RMSPROP": "RMSProp",
    "ADADELTA": "AdaDelta",
    "ADAM": "Adam",
}


# ---------------------------------------------------------------------------
# Reading


def read_text(path_or_text, message_cls):
    """Parse a text proto (a file path or the text itself) into a new message.

        read_text("layer { name: 'x' }", caffe_pb2.NetParameter)
    """
    path, text = _load_text(path_or_text)
    msg = message_cls()
    try:
        text_format.Parse(text, msg)
    except text_format.ParseError as exc:
        line, column = exc.GetLine(), exc.GetColumn()
        reason = str(exc)
        # ParseError's text starts with its own "line:column : " prefix.
        if line is not None:
            prefix = "%d:%d : " % (line, column) if column is not None else "%d : " % line
            if reason.startswith(prefix):
                reason = reason[len(prefix):]
        lines = text.splitlines()
        source = lines[line - 1] if line is not None and 0 < line <= len(lines) else None
        raise PrototxtError(path, line, column, reason, source) from None
    return msg


def read_net(path_or_text, upgrade=True):
    """Parse a net prototxt into a ``NetParameter``, upgraded unless told not.

        net = read_net("models/resnet/ResNet-50-deploy.prototxt")
        net.layer[0].type                                # 'Input'
    """
    net = read_text(path_or_text, caffe_pb2.NetParameter)
    return upgrade_net(net) if upgrade else net


def read_solver(path_or_text, upgrade=True):
    """Parse a solver prototxt into a ``SolverParameter``.

        solver = read_solver("examples/mnist/lenet_solver.prototxt")
        solver.base_lr, solver.type                      # (0.01, 'SGD')
    """
    solver = read_text(path_or_text, caffe_pb2.SolverParameter)
    return upgrade_solver(solver) if upgrade else solver


def read_binary(path, message_cls, upgrade=True):
    """Decode a binary proto file (.caffemodel, .binaryproto, .solverstate).

    A ``NetParameter`` is upgraded like ``read_net`` unless ``upgrade`` is false.

        weights = read_binary("bvlc_alexnet.caffemodel", caffe_pb2.NetParameter)
        mean = read_binary("mean.binaryproto", caffe_pb2.BlobProto)
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    msg = message_cls()
    try:
        msg.ParseFromString(data)
    except _message.DecodeError as exc:
        raise BinaryProtoError(
            "%s: not a valid binary %s (%d bytes): %s"
            % (path, message_cls.DESCRIPTOR.full_name, len(data), exc)) from None
    if upgrade and isinstance(msg, caffe_pb2.NetParameter):
        upgrade_net(msg)
    return msg


def _load_text(path_or_text):
    """Return (name for messages, text)."""
    if isinstance(path_or_text, bytes):
        return "<bytes>", path_or_text.decode("utf-8")
    if isinstance(path_or_text, os.PathLike):
        path = os.fspath(path_or_text)
    elif os.path.isfile(path_or_text):
        path = path_or_text
    elif "\n" in path_or_text or "{" in path_or_text or ":" in path_or_text:
        return "<string>", path_or_text
    else:
        raise FileNotFoundError("no such prototxt file: %r" % (path_or_text,))
    with open(path, "r", encoding="utf-8") as f:
        return path, f.read()


# ---------------------------------------------------------------------------
# Writing


def write_binary(path, message):
    """Serialize ``message`` to ``path`` atomically.

        write_binary("snap_iter_100.caffemodel", net_param)
    """
    # Serializing before opening anything means a message that cannot be
    # encoded (e.g. a missing required field) never touches the disk.
    _write_atomic(path, message.SerializeToString())


def write_text(path, message):
    """Write ``message`` as a text proto to ``path`` atomically.

        write_text("deploy.prototxt", net_param)
    """
    _write_atomic(path, text_format.MessageToString(message).encode("utf-8"))


def _write_atomic(path, data):
    # Temp file in the destination directory so os.replace stays a rename on
    # one file system: readers see the old file or the new one, never half.
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _target_mode(path))
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _target_mode(path):
    # mkstemp creates 0600 files; keep the mode a plain open() would give.
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        return 0o666 & ~_UMASK


def _read_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


# ---------------------------------------------------------------------------
# Upgrading


def upgrade_net(net):
    """Upgrade a ``NetParameter`` in place to the current format; returns it.

        net = caffe_pb2.NetParameter()
        text_format.Merge('layers { name: "fc" type: INNER_PRODUCT }', net)
        upgrade_net(net).layer[0].type                   # 'InnerProduct'
    """
    if any(v1.HasField("layer") for v1 in net.layers):
        raise ValueError(
            "net %r uses the V0 layer format (layers { layer { ... } }), which "
            "predates Caffe 1.0 and is not supported; upgrade it with Caffe's "
            "upgrade_net_proto_text tool" % net.name)
    if len(net.layers):
        if len(net.layer):
            raise ValueError(
                "net %r defines both 'layer' and the legacy 'layers'; write every "
                "layer in the 'layer { type: \"Type\" }' form" % net.name)
        _upgrade_v1_data_transform(net)
        _upgrade_v1_layers(net)
    if len(net.input):
        _upgrade_input(net)
    _upgrade_batch_norm(net)
    return net


def upgrade_solver(solver):
    """Replace the deprecated ``solver_type`` enum by the ``type`` string.

        s = caffe_pb2.SolverParameter(solver_type=caffe_pb2.SolverParameter.ADAM)
        upgrade_solver(s).type                           # 'Adam'
    """
    if solver.HasField("solver_type"):
        name = caffe_pb2.SolverParameter.SolverType.Name(solver.solver_type)
        if solver.HasField("type") and solver.type != _SOLVER_TYPES[name]:
            raise ValueError("solver sets both type %r and solver_type %s"
                             % (solver.type, name))
        solver.type = _SOLVER_TYPES[name]
        solver.ClearField("solver_type")
    for field in ("net_param", "train_net_param"):
        if solver.HasField(field):
            upgrade_net(getattr(solver, field))
    for net in solver.test_net_param:
        upgrade_net(net)
    return solver


_V1 = caffe_pb2.V1LayerParameter
_DATA_TRANSFORM_FIELDS = ("scale", "mean_file", "crop_size", "mirror")


def _upgrade_v1_data_transform(net):
    # Caffe moved these data-layer fields into transform_param.
    owners = {_V1.DATA: "data_param", _V1.IMAGE_DATA: "image_data_param",
              _V1.WINDOW_DATA: "window_data_param"}
    for v1 in net.layers:
        field = owners.get(v1.type)
        if field is None or not v1.HasField(field):
            continue
        param = getattr(v1, field)
        for name in _DATA_TRANSFORM_FIELDS:
            if param.HasField(name):
                setattr(v1.transform_param, name, getattr(param, name))
                param.ClearField(name)


_V1_PARAM_FIELDS = [
    f.name for f in _V1.DESCRIPTOR.fields
    if f.name.endswith("_param")
    and f.name in caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
]


def _upgrade_v1_layers(net):
    layers = []
    for v1 in net.layers:
        layer = caffe_pb2.LayerParameter()
        layer.bottom.extend(v1.bottom)
        layer.top.extend(v1.top)
        if v1.HasField("name"):
            layer.name = v1.name
        layer.include.extend(v1.include)
        layer.exclude.extend(v1.exclude)
        if v1.HasField("type"):
            layer.type = V1_LAYER_TYPES[_V1.LayerType.Name(v1.type)]
        layer.blobs.extend(v1.blobs)
        for i, name in enumerate(v1.param):
            _param_spec(layer, i).name = name
        for i, mode in enumerate(v1.blob_share_mode):
            _param_spec(layer, i).share_mode = mode
        for i, lr in enumerate(v1.blobs_lr):
            _param_spec(layer, i).lr_mult = lr
        for i, decay in enumerate(v1.weight_decay):
            _param_spec(layer, i).decay_mult = decay
        layer.loss_weight.extend(v1.loss_weight)
        for field in _V1_PARAM_FIELDS:
            if v1.HasField(field):
                getattr(layer, field).CopyFrom(getattr(v1, field))
        layers.append(layer)
    net.ClearField("layers")
    net.layer.extend(layers)


def _param_spec(layer, index):
    while len(layer.param) <= index:
        layer.param.add()
    return layer.param[index]


def _upgrade_input(net):
    # An input list without any shape comes from an old caffemodel: there is
    # nothing to turn into a layer, the names are simply dropped.
    if len(net.input_shape) or len(net.input_dim):
        if len(net.input_shape) not in (0, len(net.input)):
            raise ValueError("net %r declares %d inputs but %d input_shape entries"
                             % (net.name, len(net.input), len(net.input_shape)))
        if not len(net.input_shape) and len(net.input_dim) != 4 * len(net.input):
            raise ValueError("net %r declares %d inputs but %d input_dim values "
                             "(4 per input expected)"
                             % (net.name, len(net.input), len(net.input_dim)))
        layer = caffe_pb2.LayerParameter(name="input", type="Input")
        for i, name in enumerate(net.input):
            layer.top.append(name)
            shape = layer.input_param.shape.add()
            if len(net.input_shape):
                shape.CopyFrom(net.input_shape[i])
            else:
                shape.dim.extend(net.input_dim[4 * i:4 * i + 4])
        rest = list(net.layer)
        net.ClearField("layer")
        net.layer.append(layer)
        net.layer.extend(rest)
    net.ClearField("input")
    net.ClearField("input_shape")
    net.ClearField("input_dim")


def _upgrade_batch_norm(net):
    # Old BatchNorm definitions listed three params for the statistics blobs;
    # they must never be learned, so Caffe zeroes their multipliers.
    for layer in net.layer:
        if layer.type == "BatchNorm" and len(layer.param) == 3:
            for spec in layer.param:
                spec.lr_mult = 0.0
                spec.decay_mult = 0.0
