"""pycaffe's solvers: train a ``caffe.Net`` from a solver prototxt.

    from dragon.vm import caffe
    solver = caffe.get_solver("examples/mnist/lenet_solver.prototxt")   # by `type`
    solver.step(100)                  # 100 iterations: forward, backward, update
    solver.net.blobs["loss"].data     # the last training loss
    solver.test_nets[0].forward()     # shares the trained weights
    solver.snapshot()                 # <prefix>_iter_100.caffemodel + .solverstate

Each iteration is Caffe's ``Solver::Step``: clear the parameter diffs, test every
``test_interval``, run ``iter_size`` forward/backward passes, log every
``display``, then apply the update: learning rate from ``lr_policy``, gradient
clipping, 1/iter_size scaling, L2/L1 weight decay times each param's
``decay_mult``, and the solver type's rule times each param's ``lr_mult``. The
update is one compiled plan of core update ops (``dragon.updaters``) that reads
the parameters' diff arrays and writes their data arrays in place; the
learning rate is a workspace value, so changing it never recompiles.
"""
from __future__ import annotations

import os
import time

import numpy as np

import dragon
from dragon import config
from dragon.core import workspace
from dragon.core.tensor import Tensor
from dragon.vm.caffe import proto_io
from dragon.vm.caffe.lr_policy import LearningRate
from dragon.vm.caffe.proto import caffe_pb2

__all__ = ["Solver", "SGDSolver", "NesterovSolver", "AdaGradSolver", "RMSPropSolver",
           "AdaDeltaSolver", "AdamSolver", "get_solver", "SOLVERS"]

_TRAIN, _TEST = caffe_pb2.TRAIN, caffe_pb2.TEST


def _fmt(value):
    """A number as Caffe's glog lines print it (C++ ostream: 6 significant digits)."""
    return "%g" % value


def _read_param(solver_file):
    """(SolverParameter, path or None) from a path or a SolverParameter."""
    if isinstance(solver_file, caffe_pb2.SolverParameter):
        param = caffe_pb2.SolverParameter()
        param.CopyFrom(solver_file)
        return proto_io.upgrade_solver(param), None
    path = os.fspath(solver_file)
    param = proto_io.read_solver(path)
    _upgrade_snapshot_prefix(param, path)
    return param, path


def _upgrade_snapshot_prefix(param, path):
    # Caffe: no prefix means the solver file's name without its extension; a
    # directory means that name inside the directory.
    stem = os.path.splitext(os.path.basename(path))[0]
    if not param.HasField("snapshot_prefix"):
        param.snapshot_prefix = os.path.splitext(path)[0]
        config.logger.info("snapshot_prefix was not specified and is set to %s",
                           param.snapshot_prefix)
    elif os.path.isdir(param.snapshot_prefix):
        param.snapshot_prefix = os.path.join(param.snapshot_prefix, stem)
        config.logger.info("snapshot_prefix was a directory and is replaced to %s",
                           param.snapshot_prefix)


class _Param:
    """One learnable parameter: its blob, workspace names and multipliers."""

    __slots__ = ("layer", "index", "blob", "data_name", "diff_name", "lr_mult", "decay_mult")

    def __init__(self, layer, index, blob, data_name, diff_name, lr_mult, decay_mult):
        self.layer, self.index, self.blob = layer, index, blob
        self.data_name, self.diff_name = data_name, diff_name
        self.lr_mult, self.decay_mult = lr_mult, decay_mult


class Solver:
    """Base solver; the subclasses pick the update rule (Caffe's ``type``).

    solver_file: a solver prototxt path or a ``caffe_pb2.SolverParameter``.
    Members as pycaffe: ``net``, ``test_nets``, ``iter``, ``param``, ``step``,
    ``solve``, ``restore``, ``snapshot``, ``apply_update``, ``add_callback``,
    ``share_weights``.

    >>> solver = caffe.SGDSolver("lenet_solver.prototxt")
    >>> solver.step(10); solver.iter
    10
    """

    type = "SGD"

    def __init__(self, solver_file, _read=None):
        self.param, self.path = _read or _read_param(solver_file)
        self._where = self.path or "solver"
        if self.param.HasField("type") and self.param.type != self.type:
            config.logger.info("%s: solver type is %s; running it as %s (%s)", self._where,
                               self.param.type, self.type, type(self).__name__)
        self._check_hyper()
        if self.param.random_seed >= 0:
            config.set_random_seed(self.param.random_seed)
        self.iter = 0
        self._callbacks = []
        self._losses = []
        self._smoothed_loss = 0.0
        self._iterations_last = 0
        config.logger.info("Initializing solver from parameters:\n%s", self.param)
        self.net = self._init_train_net()
        self.test_nets = self._init_test_nets()
        self._learning_rate = LearningRate(self.param, self._where)
        self._params = None
        self._updater = None
        self._update_fn = None

    # -- construction -----------------------------------------------------------------
    def _check_hyper(self):
        p = self.param
        if self.type in ("AdaGrad", "RMSProp") and p.momentum != 0:
            raise ValueError(f"{self._where}: momentum cannot be used with {self.type} "
                             f"(momentum: {_fmt(p.momentum)})")
        if self.type == "RMSProp" and not 0 <= p.rms_decay <= 1:
            raise ValueError(f"{self._where}: rms_decay should lie in [0, 1], "
                             f"got {_fmt(p.rms_decay)}")
        if p.iter_size < 1:
            raise ValueError(f"{self._where}: iter_size must be >= 1, got {p.iter_size}")
        if p.regularization_type not in ("L1", "L2"):
            raise ValueError(f"{self._where}: unknown regularization_type "
                             f"'{p.regularization_type}' (Caffe knows L1 and L2)")
        if p.average_loss < 1:
            raise ValueError(f"{self._where}: average_loss must be >= 1, got {p.average_loss}")

    def _init_train_net(self):
        p = self.param
        sources = [f for f in ("train_net_param", "train_net", "net_param", "net")
                   if p.HasField(f)]
        if len(sources) != 1:
            raise ValueError(f"{self._where}: give exactly one of train_net_param, train_net, "
                             f"net_param, net; found {sources or 'none'}")
        source = sources[0]
        if source.endswith("_param"):
            net_param = caffe_pb2.NetParameter()
            net_param.CopyFrom(getattr(p, source))
            config.logger.info("Creating training net specified in %s.", source)
        else:
            config.logger.info("Creating training net from %s file: %s", source,
                               getattr(p, source))
            net_param = proto_io.read_net(getattr(p, source))
        state = caffe_pb2.NetState(phase=_TRAIN)
        state.MergeFrom(net_param.state)
        state.MergeFrom(p.train_state)
        net = _make_net(net_param, state)
        for weights in p.weights:
            for path in weights.split(","):
                config.logger.info("Finetuning from %s", path)
                net.copy_from(path.strip())
        return net

    def _init_test_nets(self):
        p = self.param
        generic = p.HasField("net") or p.HasField("net_param")
        sources = [("test_net_param", net) for net in p.test_net_param]
        sources += [(f"test_net file: {path}", proto_io.read_net(path)) for path in p.test_net]
        num_generic = 0
        if generic:
            num_generic = len(p.test_iter) - len(sources)
            if num_generic < 0:
                raise ValueError(f"{self._where}: test_iter must be given once per test net: "
                                 f"{len(sources)} test nets, {len(p.test_iter)} test_iter "
                                 f"values")
        elif len(p.test_iter) != len(sources):
            raise ValueError(f"{self._where}: test_iter must be given once per test net: "
                             f"{len(sources)} test nets, {len(p.test_iter)} test_iter values")
        if num_generic:
            if p.HasField("net_param"):
                generic = ("net_param", p.net_param)
            else:
                generic = (f"net file: {p.net}", proto_io.read_net(p.net))
            sources += [generic] * num_generic
        if len(p.test_state) and len(p.test_state) != len(sources):
            raise ValueError(f"{self._where}: test_state must be unspecified or given once "
                             f"per test net ({len(sources)} test nets, {len(p.test_state)} "
                             f"test_state values)")
        if p.test_interval and len(sources) == 0 and len(p.test_iter):
            raise ValueError(f"{self._where}: test_iter is given but there is no test net")
        nets = []
        for i, (kind, net_param) in enumerate(sources):
            state = caffe_pb2.NetState(phase=_TEST)
            state.MergeFrom(net_param.state)
            if len(p.test_state):
                state.MergeFrom(p.test_state[i])
            config.logger.info("Creating test net (#%d) specified by %s", i, kind)
            net = _make_net(net_param, state)
            net.share_with(self.net)
            nets.append(net)
        return nets

    # -- the pycaffe API --------------------------------------------------------------
    def add_callback(self, on_start, on_gradients):
        """Call ``on_start()`` before each iteration's passes and ``on_gradients()``
        after them, before the update (pycaffe's ``add_callback``)."""
        self._callbacks.append((on_start, on_gradients))

    def share_weights(self, net):
        """Make ``net`` use this solver's trained weights (its layers of the same names)."""
        net.share_with(self.net)

    def step(self, iters):
        """Run ``iters`` training iterations (Caffe's ``Solver::Step``).

        >>> solver.step(1)
        """
        p = self.param
        start_iter = self.iter
        stop_iter = self.iter + int(iters)
        self._losses = []
        self._smoothed_loss = 0.0
        self._iterations_last = self.iter
        timer = time.perf_counter()
        while self.iter < stop_iter:
            if p.test_interval and self.iter % p.test_interval == 0 \
                    and (self.iter > 0 or p.test_initialization):
                self.test_all()
            for on_start, _ in self._callbacks:
                on_start()
            display = p.display and self.iter % p.display == 0
            loss = self._forward_backward()
            self._update_smoothed_loss(loss, start_iter)
            if display:
                lapse = time.perf_counter() - timer
                per_s = (self.iter - self._iterations_last) / (lapse or 1.0)
                config.logger.info("Iteration %d (%s iter/s, %ss/%d iters), loss = %s",
                                   self.iter, _fmt(per_s), _fmt(lapse), p.display,
                                   _fmt(self._smoothed_loss))
                timer = time.perf_counter()
                self._iterations_last = self.iter
                self._log_outputs(self.net, "Train")
            for _, on_gradients in self._callbacks:
                on_gradients()
            self.apply_update()
            self.iter += 1
            if p.snapshot and self.iter % p.snapshot == 0:
                self.snapshot()

    def solve(self, resume_file=None):
        """Train to ``max_iter`` (resuming from a ``.solverstate``), then test and snapshot."""
        p = self.param
        config.logger.info("Solving %s", self.net.name if hasattr(self.net, "name") else "")
        config.logger.info("Learning Rate Policy: %s", p.lr_policy)
        if resume_file:
            config.logger.info("Restoring previous solver status from %s", resume_file)
            self.restore(resume_file)
        start_iter = self.iter
        self.step(p.max_iter - self.iter)
        if p.snapshot_after_train and (not p.snapshot or self.iter % p.snapshot != 0):
            self.snapshot()
        if p.display and self.iter % p.display == 0:
            self.net.forward()
            self._update_smoothed_loss(self._net_loss(self.net), start_iter)
            config.logger.info("Iteration %d, loss = %s", self.iter, _fmt(self._smoothed_loss))
        if p.test_interval and self.iter % p.test_interval == 0:
            self.test_all()
        config.logger.info("Optimization Done.")

    def apply_update(self):
        """Update every learnable parameter from its diff (does not advance ``iter``)."""
        rate = self._learning_rate(self.iter)
        if self.param.display and self.iter % self.param.display == 0:
            config.logger.info("Iteration %d, lr = %s", self.iter, _fmt(rate))
        if self._update_fn is None:
            self._build_update()
        self._updater.lr = rate
        self._update_fn()

    def test_all(self):
        """Run every test net for its ``test_iter`` iterations and log the averages."""
        for i in range(len(self.test_nets)):
            self.test(i)

    def test(self, test_net_id=0):
        """Average the outputs of test net ``test_net_id`` over its ``test_iter`` passes."""
        p = self.param
        config.logger.info("Iteration %d, Testing net (#%d)", self.iter, test_net_id)
        net = self.test_nets[test_net_id]
        iters = p.test_iter[test_net_id]
        scores = None
        loss = 0.0
        for _ in range(iters):
            outputs = net.forward()
            if p.test_compute_loss:
                loss += self._net_loss(net)
            values = [np.asarray(outputs[name], dtype=np.float64).ravel() for name in net.outputs]
            scores = values if scores is None else [s + v for s, v in zip(scores, values)]
        if p.test_compute_loss:
            config.logger.info("Test loss: %s", _fmt(loss / max(iters, 1)))
        means = {}
        index = 0
        weights = net.blob_loss_weights
        for name, total in zip(net.outputs, scores or []):
            weight = float(weights.get(name, 0.0))
            mean = total / iters
            means[name] = mean
            for value in mean:
                extra = f" (* {_fmt(weight)} = {_fmt(weight * value)} loss)" if weight else ""
                config.logger.info("    Test net output #%d: %s = %s%s", index, name,
                                   _fmt(value), extra)
                index += 1
        return {name: (float(v[0]) if v.size == 1 else v) for name, v in means.items()}

    # -- snapshots --------------------------------------------------------------------
    def _snapshot_filename(self, extension):
        return f"{self.param.snapshot_prefix}_iter_{self.iter}{extension}"

    def snapshot(self):
        """Write ``<prefix>_iter_<N>.caffemodel`` and ``.solverstate`` (``.h5`` with HDF5)."""
        hdf5 = self.param.snapshot_format == caffe_pb2.SolverParameter.HDF5 and _has_h5py()
        if hdf5:
            model = self._snapshot_filename(".caffemodel.h5")
            config.logger.info("Snapshotting to HDF5 file %s", model)
            _save_hdf5(self.net, model, self.param.snapshot_diff)
        else:
            model = self._snapshot_filename(".caffemodel")
            config.logger.info("Snapshotting to binary proto file %s", model)
            self.net.save(model)
            if self.param.snapshot_diff:
                _add_diffs(self.net, model)
        state_file = self._snapshot_filename(".solverstate.h5" if hdf5 else ".solverstate")
        history = self._history_arrays()
        if hdf5:
            config.logger.info("Snapshotting solver state to HDF5 file %s", state_file)
            _write_state_hdf5(state_file, self.iter, model, self._learning_rate.current_step,
                              history)
        else:
            config.logger.info("Snapshotting solver state to binary proto file %s", state_file)
            state = caffe_pb2.SolverState(iter=self.iter, learned_net=model,
                                          current_step=self._learning_rate.current_step)
            for array in history:
                state.history.add().CopyFrom(_blob_proto(array))
            proto_io.write_binary(state_file, state)
        return model, state_file

    def restore(self, state_file):
        """Load a ``.solverstate`` (or ``.solverstate.h5``): iteration, weights, history."""
        state_file = os.fspath(state_file)
        if state_file.endswith(".h5"):
            it, learned_net, current_step, history = _read_state_hdf5(state_file)
        else:
            state = proto_io.read_binary(state_file, caffe_pb2.SolverState)
            it, learned_net, current_step = state.iter, state.learned_net, state.current_step
            history = [(tuple(b.shape.dim) if b.HasField("shape") else
                        (b.num, b.channels, b.height, b.width), np.asarray(b.data, np.float32))
                       for b in state.history]
        if learned_net:
            if learned_net.endswith(".h5"):
                self.net.load_hdf5(learned_net)
            else:
                self.net.copy_from(learned_net)
        self.iter = int(it)
        self._learning_rate.current_step = int(current_step)
        if self._update_fn is None:
            self._build_update()
        slots = self._history_slots()
        if len(history) != len(slots):
            raise ValueError(f"{state_file}: the solver state holds {len(history)} history "
                             f"blobs; this {self.type} solver over {len(self._params)} "
                             f"learnable params keeps {len(slots)}")
        for k, ((shape, values), (param, var)) in enumerate(zip(history, slots)):
            want = tuple(param.blob.data.shape)
            if values.size != int(np.prod(want)):
                raise ValueError(f"{state_file}: history blob {k} (layer '{param.layer}' param "
                                 f"{param.index}) has shape {tuple(shape)}, the param has "
                                 f"shape {want}")
            if var is not None:
                var.set_value(values.reshape(want))
        if self.type == "Adam":
            self._updater._t.set_value(np.float32(self.iter))
        config.logger.info("%sSolver: restoring history", self.type)

    # -- internals --------------------------------------------------------------------
    def _forward_backward(self):
        net = self.net
        fused = getattr(net, "_forward_backward", None)
        net.clear_param_diffs()
        loss = 0.0
        for _ in range(self.param.iter_size):
            if fused is not None:
                loss += float(fused())
            else:
                net.forward()
                net.backward()
                loss += self._net_loss(net)
        return loss / self.param.iter_size

    @staticmethod
    def _net_loss(net):
        total = 0.0
        for name, weight in net.blob_loss_weights.items():
            if weight:
                total += float(weight) * float(np.sum(net.blobs[name].data, dtype=np.float64))
        return total

    def _update_smoothed_loss(self, loss, start_iter):
        average = self.param.average_loss
        if len(self._losses) < average:
            self._losses.append(loss)
            n = len(self._losses)
            self._smoothed_loss = (self._smoothed_loss * (n - 1) + loss) / n
        else:
            idx = (self.iter - start_iter) % average
            self._smoothed_loss += (loss - self._losses[idx]) / average
            self._losses[idx] = loss

    def _log_outputs(self, net, kind):
        index = 0
        weights = net.blob_loss_weights
        for name in net.outputs:
            weight = float(weights.get(name, 0.0))
            for value in np.asarray(net.blobs[name].data).ravel():
                extra = f" (* {_fmt(weight)} = {_fmt(weight * value)} loss)" if weight else ""
                config.logger.info("    %s net output #%d: %s = %s%s", kind, index, name,
                                   _fmt(value), extra)
                index += 1

    def _make_updater(self):
        raise NotImplementedError

    def _common_hyper(self):
        p = self.param
        return dict(weight_decay=p.weight_decay, decay_kind=p.regularization_type,
                    clip_norm=p.clip_gradients, grad_scale=1.0 / p.iter_size)

    def _build_update(self):
        self._params = _learnable_params(self.net)
        self._updater = self._make_updater()
        params = [Tensor(q.data_name, q.blob.data.shape, "float32", kind="variable")
                  for q in self._params]
        grads = [Tensor(q.diff_name, q.blob.diff.shape, "float32", kind="variable")
                 for q in self._params]
        pairs = self._updater.updates(params, grads, [q.lr_mult for q in self._params],
                                      [q.decay_mult for q in self._params])
        self._update_fn = dragon.function([], [], updates=pairs, name=f"{self.type}Solver/update")
        if self.type == "Adam":
            self._updater._t.set_value(np.float32(self.iter))

    def _history_slots(self):
        """``[(param, slot variable or None)]`` in Caffe's history order.

        Caffe keeps one history blob per learnable param, per slot, slot-major
        (Adam: all m, then all v). Params with lr_mult 0 have no slot here; their
        history is zeros.
        """
        live = [q for q in self._params if q.lr_mult != 0]
        slots = []
        for slot in self._updater.slots:
            by_param = dict(zip((id(q) for q in live), self._updater.slot_vars.get(slot, [])))
            slots += [(q, by_param.get(id(q))) for q in self._params]
        return slots

    def _history_arrays(self):
        if self._update_fn is None:
            self._build_update()
        return [var.get_value() if var is not None else np.zeros(q.blob.data.shape, np.float32)
                for q, var in self._history_slots()]


class SGDSolver(Solver):
    """Momentum SGD: v = momentum v + lr g; w -= v.

    >>> solver = caffe.SGDSolver("lenet_solver.prototxt")
    """
    type = "SGD"

    def _make_updater(self):
        return dragon.updaters.SGD(lr=self.param.base_lr, momentum=self.param.momentum,
                                   **self._common_hyper())


class NesterovSolver(Solver):
    """Nesterov's accelerated gradient, as Caffe's NesterovSolver.

    >>> solver = caffe.NesterovSolver("mnist_autoencoder_solver_nesterov.prototxt")
    """
    type = "Nesterov"

    def _make_updater(self):
        return dragon.updaters.Nesterov(lr=self.param.base_lr, momentum=self.param.momentum,
                                        **self._common_hyper())


class AdaGradSolver(Solver):
    """AdaGrad with Caffe's ``delta``.

    >>> solver = caffe.AdaGradSolver("mnist_autoencoder_solver_adagrad.prototxt")
    """
    type = "AdaGrad"

    def _make_updater(self):
        return dragon.updaters.AdaGrad(lr=self.param.base_lr, eps=self.param.delta,
                                       **self._common_hyper())


class RMSPropSolver(Solver):
    """RMSProp with Caffe's ``rms_decay`` and ``delta``.

    >>> solver = caffe.RMSPropSolver("lenet_solver_rmsprop.prototxt")
    """
    type = "RMSProp"

    def _make_updater(self):
        return dragon.updaters.RMSProp(lr=self.param.base_lr, decay=self.param.rms_decay,
                                       eps=self.param.delta, **self._common_hyper())


class AdaDeltaSolver(Solver):
    """AdaDelta with Caffe's ``momentum`` and ``delta`` (scaled by the learning rate).

    >>> solver = caffe.AdaDeltaSolver("lenet_adadelta_solver.prototxt")
    """
    type = "AdaDelta"

    def _make_updater(self):
        return dragon.updaters.AdaDelta(lr=self.param.base_lr, momentum=self.param.momentum,
                                        eps=self.param.delta, **self._common_hyper())


class AdamSolver(Solver):
    """Adam: ``momentum`` is beta1, ``momentum2`` beta2, ``delta`` epsilon.

    >>> solver = caffe.AdamSolver("lenet_solver_adam.prototxt")
    """
    type = "Adam"

    def _make_updater(self):
        return dragon.updaters.Adam(lr=self.param.base_lr, beta1=self.param.momentum,
                                    beta2=self.param.momentum2, eps=self.param.delta,
                                    **self._common_hyper())


SOLVERS = {cls.type: cls for cls in (SGDSolver, NesterovSolver, AdaGradSolver, RMSPropSolver,
                                     AdaDeltaSolver, AdamSolver)}


def get_solver(solver_file):
    """The solver of the file's ``type`` (or legacy ``solver_type``), SGD by default.

    >>> solver = caffe.get_solver("examples/mnist/lenet_solver_adam.prototxt")
    >>> type(solver).__name__
    'AdamSolver'
    """
    param, path = _read_param(solver_file)
    try:
        cls = SOLVERS[param.type]
    except KeyError:
        raise ValueError(f"{path or 'solver'}: unknown solver type '{param.type}'; Caffe "
                         f"knows {', '.join(SOLVERS)}") from None
    return cls(solver_file, _read=(param, path))


# ---------------------------------------------------------------------------
# The Net as the solver sees it


def _make_net(net_param, state):
    from dragon.vm.caffe.net import Net
    param = caffe_pb2.NetParameter()
    param.CopyFrom(net_param)
    param.state.CopyFrom(state)
    return Net(param, state.phase)


def _learnable_params(net):
    """Every distinct learnable blob of ``net`` in Caffe's order, with its multipliers.

    A blob shared by several layers (ParamSpec names) is learned once; its
    lr_mult/decay_mult are the ones a sharing layer sets explicitly, else the
    owner's, as Caffe's ``Net::AppendParam``.
    """
    layer_params = _layer_params(net)
    names = None
    by_array = {}
    out = []
    for lp, layer in zip(layer_params, net.layers):
        for i, blob in enumerate(layer.blobs):
            spec = lp.param[i] if i < len(lp.param) else None
            data_name = getattr(blob, "_data_key", None)
            diff_name = getattr(blob, "_diff_key", None)
            if data_name is None or diff_name is None:
                names = names or _workspace_names()
                data_name = names.get(_address(blob.data))
                diff_name = names.get(_address(blob.diff))
            if data_name is None or diff_name is None:
                raise RuntimeError(f"layer '{lp.name}' param {i}: its data/diff arrays are not "
                                   f"workspace arrays; the solver cannot update them in place")
            owner = by_array.get(data_name)
            if owner is not None:
                if spec is not None and spec.HasField("lr_mult"):
                    owner.lr_mult = spec.lr_mult
                if spec is not None and spec.HasField("decay_mult"):
                    owner.decay_mult = spec.decay_mult
                continue
            lr_mult = spec.lr_mult if spec is not None else 1.0
            decay_mult = spec.decay_mult if spec is not None else 1.0
            if lp.type == "BatchNorm":
                # Caffe masks BatchNorm's statistics from optimization (lr_mult 0).
                lr_mult = decay_mult = 0.0
            param = _Param(lp.name, i, blob, data_name, diff_name, lr_mult, decay_mult)
            by_array[data_name] = param
            out.append(param)
    return out


def _layer_params(net):
    """The LayerParameter of each of ``net.layers``, in order."""
    getter = getattr(net, "_layer_params", None)
    if getter is not None:
        return list(getter())
    return [getattr(layer, "layer_param", None) or layer.param for layer in net.layers]


def _address(array):
    iface = array.__array_interface__
    return iface["data"][0], array.size


def _workspace_names():
    """``{(data pointer, size): name}`` of the current workspace's arrays."""
    names = {}
    for name, array in workspace.get_workspace().arrays.items():
        if isinstance(array, np.ndarray):
            names.setdefault(_address(array), name)
    return names


# ---------------------------------------------------------------------------
# Snapshot files


def _blob_proto(array):
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend(array.shape)
    blob.data.extend(np.asarray(array, np.float32).ravel().tolist())
    return blob


def _add_diffs(net, model_file):
    weights = proto_io.read_binary(model_file, caffe_pb2.NetParameter, upgrade=False)
    for layer in weights.layer:
        blobs = net.params.get(layer.name, [])
        for proto, blob in zip(layer.blobs, blobs):
            del proto.diff[:]
            proto.diff.extend(np.asarray(blob.diff, np.float32).ravel().tolist())
    proto_io.write_binary(model_file, weights)


def _has_h5py():
    try:
        import h5py  # noqa: F401
    except ImportError:
        config.logger.warning("snapshot_format HDF5 needs h5py, which is not installed; "
                              "writing binary proto snapshots")
        return False
    return True


def _save_hdf5(net, filename, write_diff):
    if hasattr(net, "save_hdf5") and not write_diff:
        net.save_hdf5(filename)
        return
    import h5py
    tmp = filename + ".tmp"
    with h5py.File(tmp, "w") as f:
        kinds = [("data", "data")] + ([("diff", "diff")] if write_diff else [])
        for group_name, attr in kinds:
            group = f.create_group(group_name)
            for layer, blobs in net.params.items():
                layer_group = group.create_group(layer)
                for i, blob in enumerate(blobs):
                    layer_group.create_dataset(str(i), data=np.asarray(getattr(blob, attr)))
    os.replace(tmp, filename)


def _write_state_hdf5(filename, it, learned_net, current_step, history):
    import h5py
    tmp = filename + ".tmp"
    with h5py.File(tmp, "w") as f:
        f.create_dataset("iter", data=np.int32(it))
        f.create_dataset("learned_net", data=learned_net)
        f.create_dataset("current_step", data=np.int32(current_step))
        group = f.create_group("history")
        for i, array in enumerate(history):
            group.create_dataset(str(i), data=np.asarray(array, np.float32))
    os.replace(tmp, filename)


def _read_state_hdf5(filename):
    import h5py
    with h5py.File(filename, "r") as f:
        it = int(f["iter"][()])
        learned = f["learned_net"][()] if "learned_net" in f else b""
        learned = learned.decode() if isinstance(learned, bytes) else str(learned)
        current_step = int(f["current_step"][()])
        group = f["history"]
        history = [(group[str(i)].shape, np.asarray(group[str(i)], np.float32).ravel())
                   for i in range(len(group))]
    return it, learned, current_step, history
