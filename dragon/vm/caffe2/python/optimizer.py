"""Caffe2's ``optimizer``: update operators for every parameter of a model.

    model.AddGradientOperators([loss])
    optimizer.build_sgd(model, base_learning_rate=0.1, policy="step", stepsize=1, gamma=0.999,
                        momentum=0.9)

Each optimizer adds one LearningRate operator (reading the shared int64 counter
``optimizer_iteration``, advanced once per run) and, per parameter, its history
blobs to the init net and its update operator to the net. As in Caffe2, the
learning-rate blob is negative where the update adds the step (WeightedSum,
Adam, Adagrad, RmsProp) and positive for MomentumSGDUpdate, which subtracts it.
"""
from __future__ import annotations

import collections

from dragon.vm.caffe2.proto import caffe2_pb2
from dragon.vm.caffe2.python import core, utils
from dragon.vm.caffe2.python.model_helper import ParameterInfo

AuxOptimizerParams = collections.namedtuple("AuxOptimizerParams", ["local", "shared"])


class Optimizer:
    """Base class: ``optimizer(net, param_init_net, param_info)`` adds one parameter's update."""

    _instance_counts: dict = collections.defaultdict(int)

    def __init__(self):
        name = type(self).__name__
        self._instance_num = Optimizer._instance_counts[name]
        Optimizer._instance_counts[name] += 1
        self._aux_params = AuxOptimizerParams(local=[], shared=[])

    def __call__(self, net, param_init_net, param, grad=None):
        if grad is None:
            if not isinstance(param, ParameterInfo):
                raise TypeError("pass a ParameterInfo, or a parameter and its gradient")
            info = param
        else:
            info = ParameterInfo(param_id=None, param=param, grad=grad)
        self._run(net, param_init_net, info)

    def _run(self, net, param_init_net, param_info):
        raise NotImplementedError

    def get_cpu_blob_name(self, base_str, node_name=""):
        return f"{type(self).__name__}_{self._instance_num}_{base_str}{node_name}_cpu"

    def get_gpu_blob_name(self, base_str, gpu_id, node_name):
        return f"{type(self).__name__}_{self._instance_num}_{base_str}_gpu{gpu_id}{node_name}"

    def make_unique_blob_name(self, base_str):
        """A blob name unique to this optimizer instance and the current device."""
        device = core.CurrentDeviceScope()
        if device is None or device.device_type == caffe2_pb2.CPU:
            return self.get_cpu_blob_name(base_str, device.node_name if device else "")
        return self.get_gpu_blob_name(base_str, device.device_id, device.node_name)

    def build_lr(self, net, param_init_net, base_learning_rate, learning_rate_blob=None,
                 policy="fixed", iter_val=0, **kwargs):
        """(lr blob, iteration blob): LearningRate(base_lr=-base_learning_rate) once per net."""
        learning_rate_blob = learning_rate_blob or self.make_unique_blob_name("lr")
        iteration = utils.BuildUniqueMutexIter(param_init_net, net, iter_val=iter_val)
        if net.BlobIsDefined(learning_rate_blob):
            return net.GetBlobRef(learning_rate_blob), iteration
        lr = net.LearningRate([iteration], learning_rate_blob, base_lr=-base_learning_rate,
                              policy=policy, **kwargs)
        return lr, iteration

    def get_auxiliary_parameters(self):
        return self._aux_params

    @staticmethod
    def _one(param_init_net):
        device = core.CurrentDeviceScope() or core.DeviceOption(caffe2_pb2.CPU)
        name = f"ONE_{device.device_type}_{device.device_id}{device.node_name}"
        if param_init_net.BlobIsDefined(name):
            return param_init_net.GetBlobRef(name)
        return param_init_net.ConstantFill([], name, shape=[1], value=1.0)


class SgdOptimizer(Optimizer):
    """param -= lr * grad (WeightedSum), or MomentumSGDUpdate with ``momentum`` > 0."""

    def __init__(self, base_learning_rate=0.01, policy="fixed", momentum=0.0, nesterov=False,
                 **kwargs):
        super().__init__()
        self.base_learning_rate = base_learning_rate
        self.policy = policy
        self.momentum = momentum
        self.nesterov = nesterov
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param_info):
        param, grad = param_info.blob, param_info.grad
        if self.base_learning_rate == 0:
            return
        if self.base_learning_rate < 0:
            raise ValueError(f"Expect positive base learning rate, got {self.base_learning_rate}")
        lr_sign = -1 if self.momentum else 1  # MomentumSGDUpdate subtracts the step itself
        lr, _ = self.build_lr(net, param_init_net, self.base_learning_rate * lr_sign,
                              policy=self.policy, **self.init_kwargs)
        if self.momentum > 0:
            moment = param_init_net.ConstantFill([param], str(param) + "_momentum", value=0.0)
            self._aux_params.local.append(moment)
            net.MomentumSGDUpdate([grad, moment, lr, param], [grad, moment, param],
                                  momentum=self.momentum, nesterov=int(bool(self.nesterov)))
        else:
            one = self._one(param_init_net)
            self._aux_params.shared.append(one)
            net.WeightedSum([param, one, grad, lr], param)


class AdamOptimizer(Optimizer):
    """Caffe2's Adam, with first/second moments ``<param>_first_moment``/``_second_moment``."""

    def __init__(self, alpha=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, policy="fixed",
                 **kwargs):
        super().__init__()
        self.alpha, self.beta1, self.beta2, self.epsilon = alpha, beta1, beta2, epsilon
        self.policy = policy
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param_info):
        param, grad = param_info.blob, param_info.grad
        if self.alpha <= 0:
            return
        lr, iteration = self.build_lr(net, param_init_net, self.alpha, policy=self.policy,
                                      **self.init_kwargs)
        m1 = param_init_net.ConstantFill([param], str(param) + "_first_moment", value=0.0)
        m2 = param_init_net.ConstantFill([param], str(param) + "_second_moment", value=0.0)
        self._aux_params.shared.append(iteration)
        self._aux_params.local.extend([m1, m2])
        net.Adam([param, m1, m2, grad, lr, iteration], [param, m1, m2], beta1=self.beta1,
                 beta2=self.beta2, epsilon=self.epsilon)


class AdagradOptimizer(Optimizer):
    """Caffe2's Adagrad, with the squared-gradient sum ``<param>_squared_sum``."""

    def __init__(self, alpha=0.01, epsilon=1e-4, decay=1, policy="fixed", **kwargs):
        super().__init__()
        self.alpha, self.epsilon, self.decay, self.policy = alpha, epsilon, decay, policy
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param_info):
        param, grad = param_info.blob, param_info.grad
        if self.alpha <= 0:
            return
        lr, _ = self.build_lr(net, param_init_net, self.alpha, policy=self.policy,
                              **self.init_kwargs)
        history = param_init_net.ConstantFill([param], str(param) + "_squared_sum", value=0.0)
        self._aux_params.local.append(history)
        net.Adagrad([param, history, grad, lr], [param, history], epsilon=self.epsilon,
                    decay=float(self.decay))


class RmsPropOptimizer(Optimizer):
    """Caffe2's RmsProp step (mean squares ``_mean_squares``, ``_momentum``), added with Sum."""

    def __init__(self, alpha=0.01, decay=0.9, momentum=0.0, epsilon=1e-5, policy="fixed",
                 **kwargs):
        super().__init__()
        self.alpha, self.decay, self.momentum, self.epsilon = alpha, decay, momentum, epsilon
        self.policy = policy
        self.init_kwargs = kwargs

    def _run(self, net, param_init_net, param_info):
        param, grad = param_info.blob, param_info.grad
        if self.alpha <= 0:
            return
        lr, _ = self.build_lr(net, param_init_net, self.alpha, policy=self.policy,
                              **self.init_kwargs)
        mean_squares = param_init_net.ConstantFill([param], str(param) + "_mean_squares",
                                                   value=0.0)
        moment = param_init_net.ConstantFill([param], str(param) + "_momentum", value=0.0)
        self._aux_params.local.extend([mean_squares, moment])
        net.RmsProp([grad, mean_squares, moment, lr], [grad, mean_squares, moment],
                    decay=self.decay, momentum=self.momentum, epsilon=self.epsilon)
        net.Sum([param, grad], param)


class WeightDecayBuilder(Optimizer):
    """grad += weight_decay * param (before the update operators)."""

    def __init__(self, weight_decay):
        super().__init__()
        self.weight_decay = weight_decay

    def _run(self, net, param_init_net, param_info):
        device = core.CurrentDeviceScope() or core.DeviceOption(caffe2_pb2.CPU)
        one = self._one(param_init_net)
        name = f"wd_{device.device_type}_{device.device_id}"
        wd = param_init_net.GetBlobRef(name) if param_init_net.BlobIsDefined(name) else \
            param_init_net.ConstantFill([], name, shape=[1], value=self.weight_decay)
        net.WeightedSum([param_info.grad, one, param_info.blob, wd], param_info.grad)


def _build(model, optimizer, weights_only=False, max_gradient_norm=None,
           allow_lr_injection=False):
    if max_gradient_norm is not None:
        raise NotImplementedError("max_gradient_norm is not supported by Dragon's Caffe2 "
                                  "optimizers")
    if not model.gradient_ops_added:
        raise RuntimeError("Call model.AddGradientOperators([loss]) before building an "
                           "optimizer")
    model.Validate()
    weights = {str(w) for w in model.weights}
    for info in model.GetOptimizationParamInfo():
        if weights_only and str(info.blob) not in weights:
            continue
        optimizer(model.net, model.param_init_net, info)
    return optimizer


def build_sgd(model, base_learning_rate, max_gradient_norm=None, allow_lr_injection=False,
              **kwargs):
    """SGD for every parameter: ``build_sgd(model, 0.1, policy="step", stepsize=1, gamma=0.999,
    momentum=0.9, nesterov=False)``. Returns the SgdOptimizer."""
    return _build(model, SgdOptimizer(base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection)


def build_adam(model, base_learning_rate, max_gradient_norm=None, allow_lr_injection=False,
               **kwargs):
    """Adam for every parameter (``beta1``, ``beta2``, ``epsilon``, lr ``policy``)."""
    return _build(model, AdamOptimizer(alpha=base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection)


def build_adagrad(model, base_learning_rate, parameters=None, max_gradient_norm=None,
                  allow_lr_injection=False, **kwargs):
    """Adagrad for every parameter (``epsilon``, ``decay``, lr ``policy``)."""
    return _build(model, AdagradOptimizer(alpha=base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection)


def build_rms_prop(model, base_learning_rate, max_gradient_norm=None, allow_lr_injection=False,
                   **kwargs):
    """RmsProp for every parameter (``decay``, ``momentum``, ``epsilon``, lr ``policy``)."""
    return _build(model, RmsPropOptimizer(alpha=base_learning_rate, **kwargs),
                  max_gradient_norm=max_gradient_norm, allow_lr_injection=allow_lr_injection)


def add_weight_decay(model, weight_decay):
    """grad += weight_decay * param for every weight (L2); call before building the optimizer."""
    _build(model, WeightDecayBuilder(weight_decay=weight_decay), weights_only=True)
