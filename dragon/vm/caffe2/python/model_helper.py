"""Caffe2's ``model_helper.ModelHelper``: a net, its init net and its parameters.

    model = model_helper.ModelHelper(name="mnist_train")
    fc = brew.fc(model, "data", "fc", dim_in=784, dim_out=10)   # fc_w, fc_b in model.params
    model.param_init_net                                        # net "mnist_train_init"
    model.AddGradientOperators([loss])
    model.param_to_grad[model.params[0]]                        # BlobReference("fc_w_grad")

``model.<OpType>(...)`` adds an operator to ``model.net``.
"""
from __future__ import annotations

import dataclasses

from dragon.vm.caffe2.python import core


class ParameterTags:
    BIAS = "BIAS"
    WEIGHT = "WEIGHT"
    COMPUTED_PARAM = "COMPUTED_PARAM"


@dataclasses.dataclass
class ParameterInfo:
    """A parameter blob, its gradient and shape, and the optimizer that updates it."""

    param_id: int | None
    param: object
    shape: list | None = None
    grad: object = None
    optimizer: object = None

    @property
    def blob(self):
        return self.param

    @property
    def name(self):
        return str(self.param)

    def __str__(self):
        return self.name


class Initializer:
    """Makes a parameter with one fill operator of the init net: ``Initializer("XavierFill")``."""

    def __init__(self, operator_name=None, **kwargs):
        self.operator_name = operator_name
        self.operator_kwargs = kwargs

    def update(self, operator_name, kwargs):
        if self.operator_name is not None:
            raise RuntimeError("Operator name overwrites are not allowed")
        self.operator_name = operator_name
        self.operator_kwargs = kwargs

    def create_param(self, param_name, init_net, shape):
        param = getattr(init_net, self.operator_name)([], param_name, shape=shape,
                                                      **self.operator_kwargs)
        return ParameterInfo(param_id=None, param=param, shape=shape)


class ExternalInitializer:
    """For models whose parameters another net makes (``init_params=False``): no operator."""

    def create_param(self, param_name, init_net, shape):
        return ParameterInfo(param_id=None, param=core.BlobReference(str(param_name), init_net),
                             shape=shape)


def update_initializer(initializer_class, operator_name_and_kwargs,
                       default_operator_name_and_kwargs):
    """The Initializer a helper uses: ``weight_init=("GaussianFill", {"std": 0.01})`` or the default."""
    name, kwargs = operator_name_and_kwargs or default_operator_name_and_kwargs
    if initializer_class is not None:
        return initializer_class(name, **kwargs)
    return Initializer(name, **kwargs)


class ModelHelper:
    """A net, its parameter init net (``<name>_init``) and the parameters helpers made."""

    def __init__(self, name=None, init_params=True, allow_not_known_ops=True,
                 skip_sparse_optim=False, param_model=None, arg_scope=None):
        self.name = name or "model"
        self.net = core.Net(self.name)
        if param_model is not None:
            self.param_init_net = param_model.param_init_net
            self.param_to_grad = param_model.param_to_grad
            self.params = param_model.params
            self._parameters_info = param_model._parameters_info
            self._computed_params = param_model._computed_params
        else:
            self.param_init_net = core.Net(self.name + "_init")
            self.param_to_grad = {}
            self.params = []
            self._parameters_info = {}
            self._computed_params = []
        self.init_params = init_params
        self.allow_not_known_ops = allow_not_known_ops
        self.skip_sparse_optim = skip_sparse_optim
        self.gradient_ops_added = False
        self.grad_map = {}
        self.weights = []
        self.biases = []
        self._arg_scope = {"order": "NCHW", "use_cudnn": True, "cudnn_exhaustive_search": False}
        if arg_scope is not None:
            self._arg_scope.update(arg_scope)

    @property
    def arg_scope(self):
        return self._arg_scope

    def get_name(self):
        return self.name

    # -- parameters -------------------------------------------------------------------------------
    def create_param(self, param_name, shape, initializer, tags=None):
        """The parameter blob ``param_name`` (under the current NameScope), made by ``initializer``.

        >>> w = model.create_param("fc_w", [10, 784], model_helper.Initializer("XavierFill"))
        """
        if isinstance(param_name, core.BlobReference):
            param_name = str(param_name)
        elif isinstance(param_name, str):
            param_name = core.ScopedName(param_name)
        else:
            raise TypeError("Unsupported type for param_name")
        if param_name in self._parameters_info:
            info = self._parameters_info[param_name]
            if list(info.shape or []) != list(shape):
                raise ValueError(f"parameter {param_name} exists with shape {info.shape}, "
                                 f"asked for {list(shape)}")
            return info.blob
        info = initializer.create_param(param_name=core.BlobReference(param_name),
                                        init_net=self.param_init_net, shape=list(shape))
        self._parameters_info[param_name] = info
        self.AddParameter(info.blob, tags)
        return info.blob

    def AddParameter(self, param, tags=None):  # noqa: N802 - Caffe2's names
        if not isinstance(param, core.BlobReference):
            raise TypeError("AddParameter takes a BlobReference")
        tags = set([tags] if isinstance(tags, str) else (tags or []))
        if ParameterTags.COMPUTED_PARAM in tags:
            self._computed_params.append(param)
        else:
            self.params.append(param)
        if ParameterTags.WEIGHT in tags:
            self.weights.append(param)
        if ParameterTags.BIAS in tags:
            self.biases.append(param)

    def _scoped(self, blobs, namescope):
        if namescope is None:
            namescope = core.CurrentNameScope()
        elif namescope and not namescope.endswith(core._NAMESCOPE_SEPARATOR):
            namescope += core._NAMESCOPE_SEPARATOR
        return [b for b in blobs if b.GetNameScope().startswith(namescope)]

    def GetParams(self, namescope=None, top_scope=False):  # noqa: N802
        """Trainable parameters (under ``namescope``, the current NameScope by default)."""
        return self._scoped(self.params, namescope)

    def GetComputedParams(self, namescope=None):  # noqa: N802
        return self._scoped(self._computed_params, namescope)

    def GetAllParams(self, namescope=None):  # noqa: N802
        return self.GetParams(namescope) + self.GetComputedParams(namescope)

    def GetWeights(self, namescope=None):  # noqa: N802
        return self._scoped(self.weights, namescope)

    def GetBiases(self, namescope=None):  # noqa: N802
        return self._scoped(self.biases, namescope)

    def Validate(self):  # noqa: N802
        names = [str(p) for p in self.params]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise RuntimeError(f"Duplicate params: {duplicates}")

    # -- gradients ----------------------------------------------------------------------------------
    def AddGradientOperators(self, *args, **kwargs):  # noqa: N802
        """Add the net's gradient operators once; fills ``param_to_grad``; returns the grad map."""
        if self.gradient_ops_added:
            raise RuntimeError("You cannot run AddGradientOperators twice.")
        self.Validate()
        self.gradient_ops_added = True
        self.grad_map = self.net.AddGradientOperators(*args, **kwargs)
        self.param_to_grad = self.get_param_to_grad(self.params)
        for param, grad in self.param_to_grad.items():
            info = self._parameters_info.get(str(param))
            if info is not None:
                info.grad = grad
        return self.grad_map

    def get_param_to_grad(self, params):
        if not self.gradient_ops_added:
            raise RuntimeError("You need to run AddGradientOperators first.")
        return {p: self.grad_map[str(p)] for p in params if str(p) in self.grad_map}

    def GetOptimizationParamInfo(self, params=None):  # noqa: N802
        """ParameterInfo (blob, grad, optimizer) of every parameter with a gradient."""
        params = self.params if params is None else params
        infos = []
        for i, p in enumerate(params):
            if p not in self.param_to_grad:
                continue
            info = self._parameters_info.get(str(p))
            if info is None:
                info = self._parameters_info[str(p)] = ParameterInfo(i, p)
            info.grad = self.param_to_grad[p]
            infos.append(info)
        return infos

    # -- inputs and devices -------------------------------------------------------------------------
    def CreateDB(self, blob_out, db, db_type, **kwargs):  # noqa: N802
        return self.param_init_net.CreateDB([], blob_out, db=db, db_type=db_type, **kwargs)

    def TensorProtosDBInput(self, unused_blob_in, blob_out, batch_size, db, db_type,  # noqa: N802
                            **kwargs):
        """Batches of ``blob_out`` read from the LMDB ``db`` (CreateDB + TensorProtosDBInput)."""
        if unused_blob_in:
            raise ValueError("You cannot pass reader to model_helper.TensorProtosDBInput. "
                             "Use model.net.TensorProtosDBInput instead to create the op.")
        from dragon.vm.caffe2.python.helpers.db_input import db_input
        return db_input(self, blob_out, batch_size, db, db_type)

    def Proto(self):  # noqa: N802
        return self.net.Proto()

    def InitProto(self):  # noqa: N802
        return self.param_init_net.Proto()

    def RunAllOnGPU(self, *args, **kwargs):  # noqa: N802
        self.param_init_net.RunAllOnGPU(*args, **kwargs)
        self.net.RunAllOnGPU(*args, **kwargs)

    def __getattr__(self, op_type):
        """``model.<OpType>(...)`` adds the operator to ``model.net``."""
        if op_type.startswith("__"):
            raise AttributeError(op_type)
        if not core.IsOperator(op_type):
            raise core._not_an_operator(op_type)
        return getattr(self.net, op_type)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(dir(self.net)))
