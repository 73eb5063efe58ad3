"""pycaffe's NetSpec: write a net in Python, get a ``NetParameter``.

    from dragon.vm import caffe
    from dragon.vm.caffe import layers as L, params as P

    n = caffe.NetSpec()
    n.data, n.label = L.Input(shape=[dict(dim=[64, 1, 28, 28]), dict(dim=[64])], ntop=2)
    n.conv1 = L.Convolution(n.data, kernel_size=5, num_output=20,
                            weight_filler=dict(type="xavier"))
    n.pool1 = L.Pooling(n.conv1, kernel_size=2, stride=2, pool=P.Pooling.MAX)
    n.relu1 = L.ReLU(n.pool1, in_place=True)
    n.loss = L.SoftmaxWithLoss(n.relu1, n.label)
    print(n.to_proto())                       # a caffe_pb2.NetParameter

Keyword arguments go to the layer's own parameter message, named after the
type (``InnerProduct`` -> ``inner_product_param``, ``Convolution`` ->
``convolution_param``); names that field does not have, and names ending in
``param`` (``param=[dict(lr_mult=1)]``, ``transform_param=...``), go to the
``LayerParameter`` itself (``include=dict(phase=caffe.TRAIN)``, ``loss_weight``).
Lists fill repeated fields, dicts fill sub-messages. ``ntop`` sets the number of
tops (0 gives the layer itself), ``in_place=True`` makes the tops the bottoms.
Tops without a NetSpec name are named after their layer type and a counter
(``Convolution1``), as pycaffe does.
"""
from __future__ import annotations

from collections import Counter, OrderedDict

from google.protobuf.message import Message

from dragon.vm.caffe.proto import caffe_pb2

__all__ = ["layers", "params", "NetSpec", "to_proto", "param_name_dict", "Top", "Function"]


def param_name_dict():
    """Layer type -> the prefix of its parameter field, for every ``*_param`` of LayerParameter.

    The type is the parameter message's name without ``Parameter``:
    ``{'Convolution': 'convolution', 'InnerProduct': 'inner_product', ...}``.
    """
    names = {}
    for field in caffe_pb2.LayerParameter.DESCRIPTOR.fields:
        if not field.name.endswith("_param") or field.message_type is None:
            continue
        type_name = field.message_type.name
        if type_name.endswith("Parameter"):
            names[type_name[:-len("Parameter")]] = field.name[:-len("_param")]
    return names


_PARAM_NAMES = param_name_dict()
# Types whose parameters live in another type's message.
_PARAM_NAMES.update({"Deconvolution": "convolution", "Im2col": "convolution"})


def assign_proto(proto, name, value):
    """Set field ``name`` of ``proto`` from a Python value: lists fill repeated
    fields (dicts in them add sub-messages), dicts fill a sub-message, anything
    else is assigned."""
    try:
        field = getattr(proto, name)
    except AttributeError:
        raise AttributeError(f"{type(proto).__name__} has no field '{name}'") from None
    repeated = hasattr(field, "extend")
    if repeated and not isinstance(value, (list, tuple)):
        value = [value]
    if isinstance(value, (list, tuple)):
        if not repeated:
            raise TypeError(f"{type(proto).__name__}.{name} is not repeated, got a list {value!r}")
        for item in value:
            if isinstance(item, dict):
                sub = field.add()
                for key, val in item.items():
                    assign_proto(sub, key, val)
            elif isinstance(item, Message):
                field.add().CopyFrom(item)
            else:
                field.append(item)
    elif isinstance(value, dict):
        for key, val in value.items():
            assign_proto(field, key, val)
    elif isinstance(value, Message):
        field.CopyFrom(value)
    else:
        setattr(proto, name, value)


class Top:
    """One output of a layer function; pass it as a bottom of the next layer."""

    def __init__(self, fn, n):
        self.fn = fn
        self.n = n

    def to_proto(self):
        """The NetParameter of every layer this top depends on."""
        return to_proto(self)

    def _to_proto(self, layers, names, autonames):
        return self.fn._to_proto(layers, names, autonames)


class Function:
    """A layer application: type, bottoms (Tops) and keyword parameters."""

    def __init__(self, type_name, inputs, params):
        self.type_name = type_name
        for index, bottom in enumerate(inputs):
            if not isinstance(bottom, Top):
                raise TypeError(f"{type_name} input {index} is not a Top "
                                f"(type is {type(bottom).__name__})")
        self.inputs = tuple(inputs)
        self.params = dict(params)
        self.ntop = self.params.pop("ntop", 1)
        self.in_place = self.params.pop("in_place", False)
        self.tops = tuple(Top(self, n) for n in range(self.ntop))

    def _get_name(self, names, autonames):
        if self not in names:
            if self.ntop > 0:
                names[self] = self._get_top_name(self.tops[0], names, autonames)
            else:
                autonames[self.type_name] += 1
                names[self] = self.type_name + str(autonames[self.type_name])
        return names[self]

    def _get_top_name(self, top, names, autonames):
        if top not in names:
            autonames[top.fn.type_name] += 1
            names[top] = top.fn.type_name + str(autonames[top.fn.type_name])
        return names[top]

    def _to_proto(self, layers, names, autonames):
        if self in layers:
            return
        bottoms = []
        for bottom in self.inputs:
            bottom._to_proto(layers, names, autonames)
            bottoms.append(layers[bottom.fn].top[bottom.n])
        layer = caffe_pb2.LayerParameter(type=self.type_name, bottom=bottoms)
        if self.in_place:
            layer.top.extend(layer.bottom)
        else:
            layer.top.extend(self._get_top_name(t, names, autonames) for t in self.tops)
        layer.name = self._get_name(names, autonames)
        prefix = _PARAM_NAMES.get(self.type_name)
        for key, value in self.params.items():
            target = layer
            if not key.endswith("param") and prefix is not None:
                type_param = getattr(layer, prefix + "_param")
                if key in type_param.DESCRIPTOR.fields_by_name:
                    target = type_param
            try:
                assign_proto(target, key, value)
            except (AttributeError, TypeError, ValueError) as exc:
                where = f"{prefix}_param nor LayerParameter" if prefix else "LayerParameter"
                raise type(exc)(f"layer '{layer.name}' ({self.type_name}), argument "
                                f"{key}={value!r}: {exc}"
                                + (f" (neither {where} has it)"
                                   if isinstance(exc, AttributeError) else "")) from None
        layers[self] = layer


class NetSpec:
    """Named tops, in assignment order; ``to_proto`` writes their layers.

    >>> n = NetSpec()
    >>> n.data = L.Input(shape=dict(dim=[1, 3, 8, 8]))
    >>> n.relu = L.ReLU(n.data)
    >>> [l.name for l in n.to_proto().layer]
    ['data', 'relu']
    """

    def __init__(self):
        super().__setattr__("tops", OrderedDict())

    def __setattr__(self, name, value):
        self.tops[name] = value

    def __getattr__(self, name):
        try:
            return self.tops[name]
        except KeyError:
            raise AttributeError(f"NetSpec has no top named '{name}'") from None

    def __setitem__(self, key, value):
        self.tops[key] = value

    def __getitem__(self, item):
        return self.tops[item]

    def __delitem__(self, name):
        del self.tops[name]

    def keys(self):
        return list(self.tops.keys())

    def vals(self):
        return list(self.tops.values())

    def to_proto(self):
        """A ``caffe_pb2.NetParameter`` with every layer the named tops need."""
        names = {top: name for name, top in self.tops.items()}
        autonames = Counter()
        layers = OrderedDict()
        for top in self.tops.values():
            top._to_proto(layers, names, autonames)
        net = caffe_pb2.NetParameter()
        net.layer.extend(layers.values())
        return net


def to_proto(*tops):
    """A ``NetParameter`` of the layers ``tops`` depend on, with generated names.

    >>> net = to_proto(L.ReLU(L.Input(shape=dict(dim=[1, 4]))))
    """
    layers = OrderedDict()
    autonames = Counter()
    for top in tops:
        top.fn._to_proto(layers, {}, autonames)
    net = caffe_pb2.NetParameter()
    net.layer.extend(layers.values())
    return net


class Layers:
    """``L.Type(*bottoms, **params)`` builds a layer of Caffe type ``Type``."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def layer_fn(*args, **kwargs):
            fn = Function(name, args, kwargs)
            if fn.ntop == 0:
                return fn
            if fn.ntop == 1:
                return fn.tops[0]
            return fn.tops
        layer_fn.__name__ = name
        return layer_fn


class Parameters:
    """``P.Pooling.MAX``: enum values of Caffe's ``<Type>Parameter`` messages."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:
            message = getattr(caffe_pb2, name + "Parameter")
        except AttributeError:
            raise AttributeError(f"caffe_pb2 has no message {name}Parameter") from None

        class Enums:
            def __getattr__(self, value_name):
                try:
                    return getattr(message, value_name)
                except AttributeError:
                    raise AttributeError(f"{name}Parameter has no value '{value_name}'") from None
        return Enums()


layers = Layers()
params = Parameters()
