"""Solvers: lr policies, Caffe's update formulas, iter_size, snapshots and restore, logs."""
import logging
import math
import os
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import text_format

import dragon
import dragon.vm.caffe as caffe
from dragon.vm.caffe import proto_io
from dragon.vm.caffe.lr_policy import LearningRate
from dragon.vm.caffe.proto import caffe_pb2

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
MNIST_EXAMPLES = DATA / "caffe" / "examples" / "mnist"


def _solver_param(text):
    return text_format.Parse(text, caffe_pb2.SolverParameter())


# ---------------------------------------------------------------------------
# Learning-rate policies, against Caffe's GetLearningRate written out


def _schedule(text, iters):
    schedule = LearningRate(_solver_param(text))
    return [schedule(i) for i in iters]


F32 = lambda v: float(np.float32(v))  # noqa: E731 - proto floats are float32


def test_fixed_step_exp_inv():
    its = [0, 1, 99, 100, 101, 250, 1000]
    assert _schedule('base_lr: 0.01 lr_policy: "fixed"', its) == [F32(0.01)] * len(its)
    got = _schedule('base_lr: 0.01 lr_policy: "step" gamma: 0.1 stepsize: 100', its)
    assert got == pytest.approx([F32(0.01) * F32(0.1) ** (i // 100) for i in its], rel=1e-12)
    got = _schedule('base_lr: 0.5 lr_policy: "exp" gamma: 0.99', its)
    assert got == pytest.approx([0.5 * F32(0.99) ** i for i in its], rel=1e-12)
    got = _schedule('base_lr: 0.01 lr_policy: "inv" gamma: 0.0001 power: 0.75', its)
    assert got == pytest.approx([F32(0.01) * (1 + F32(1e-4) * i) ** -0.75 for i in its], rel=1e-12)


def test_poly_and_sigmoid():
    its = [0, 10, 500, 999]
    got = _schedule('base_lr: 0.1 lr_policy: "poly" power: 2 max_iter: 1000', its)
    assert got == pytest.approx([F32(0.1) * (1 - i / 1000) ** 2 for i in its], rel=1e-12)
    got = _schedule('base_lr: 0.1 lr_policy: "sigmoid" gamma: -0.01 stepsize: 500', its)
    want = [F32(0.1) / (1 + math.exp(-F32(-0.01) * (i - 500))) for i in its]
    assert got == pytest.approx(want, rel=1e-12)


def test_multistep_advances_once_per_step_value():
    text = ('base_lr: 0.01 lr_policy: "multistep" gamma: 0.9 '
            'stepvalue: 5 stepvalue: 7 stepvalue: 8')
    schedule = LearningRate(_solver_param(text))
    rates = [schedule(i) for i in range(12)]
    steps = [0] * 5 + [1, 1, 2] + [3] * 4
    assert rates == pytest.approx([F32(0.01) * F32(0.9) ** s for s in steps], rel=1e-12)
    assert schedule.current_step == 3


def test_lenet_solver_file_rates():
    path = MNIST_EXAMPLES / "lenet_multistep_solver.prototxt"
    if not path.is_file():
        pytest.skip(f"the Caffe example {path} is absent")
    schedule = LearningRate(proto_io.read_solver(str(path)))
    assert schedule(0) == pytest.approx(0.01)
    for i in range(1, 10001):
        rate = schedule(i)
    assert schedule.current_step == 5
    assert rate == pytest.approx(0.01 * 0.9 ** 5, rel=1e-6)


def test_bad_policies_name_the_problem():
    with pytest.raises(ValueError, match="unknown lr_policy 'cosine'"):
        LearningRate(_solver_param('lr_policy: "cosine"'))
    with pytest.raises(ValueError, match="'step' needs stepsize > 0"):
        LearningRate(_solver_param('lr_policy: "step"'))


# ---------------------------------------------------------------------------
# A small net whose gradients numpy can check: y = x W^T + b, Euclidean loss

NET = """
name: "linear"
layer { name: "input" type: "Input" top: "data" top: "target"
        input_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 } } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip"
        param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
        inner_product_param { num_output: 2
          weight_filler { type: "gaussian" std: 0.5 }
          bias_filler { type: "constant" value: 0.1 } } }
layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "target" top: "loss" }
"""

RNG = np.random.default_rng(7)
X = RNG.standard_normal((4, 3)).astype(np.float32)
T = RNG.standard_normal((4, 2)).astype(np.float32)


def small_solver_param(extra="", **fields):
    p = _solver_param('base_lr: 0.1 lr_policy: "step" gamma: 0.5 stepsize: 2 '
                      'display: 0 max_iter: 100 snapshot_after_train: false ' + extra)
    p.net_param.CopyFrom(text_format.Parse(NET, caffe_pb2.NetParameter()))
    for k, v in fields.items():
        setattr(p, k, v)
    return p


def feed(solver, x=X, t=T):
    def on_start():
        solver.net.blobs["data"].data[...] = x
        solver.net.blobs["target"].data[...] = t
    solver.add_callback(on_start, lambda: None)
    return solver


def gradients(w, b):
    y = X @ w.T + b
    d = (y - T) / len(X)
    return d.T @ X, d.sum(0)


class CaffeReference:
    """Caffe's ApplyUpdate in numpy float64: clip, normalize, regularize, update."""

    def __init__(self, param, w, b):
        self.p = param
        self.params = [w.astype(np.float64), b.astype(np.float64)]
        self.lr_mults, self.decay_mults = [1.0, 2.0], [1.0, 0.0]
        self.h = [np.zeros_like(v) for v in self.params]
        self.h2 = [np.zeros_like(v) for v in self.params]
        self.schedule = LearningRate(param)

    def step(self, it):
        p = self.p
        diffs = [g.astype(np.float64) * p.iter_size for g in gradients(*self.params)]
        rate = self.schedule(it)
        if p.clip_gradients >= 0:
            norm = math.sqrt(sum(float((d ** 2).sum()) for d in diffs))
            if norm > p.clip_gradients:
                diffs = [d * (p.clip_gradients / norm) for d in diffs]
        for i, (w, g) in enumerate(zip(self.params, diffs)):
            g = g / p.iter_size
            decay = p.weight_decay * self.decay_mults[i]
            if decay:
                g = g + decay * (w if p.regularization_type == "L2" else np.sign(w))
            lr = rate * self.lr_mults[i]
            self.params[i] = w - self.update(i, g, lr, it)

    def update(self, i, g, lr, it):
        p, h, h2 = self.p, self.h, self.h2
        kind = p.type or "SGD"
        if kind == "SGD":
            h[i] = p.momentum * h[i] + lr * g
            return h[i]
        if kind == "Nesterov":
            prev = h[i]
            h[i] = p.momentum * h[i] + lr * g
            return (1 + p.momentum) * h[i] - p.momentum * prev
        if kind == "AdaGrad":
            h[i] = h[i] + g * g
            return lr * g / (np.sqrt(h[i]) + p.delta)
        if kind == "RMSProp":
            h[i] = p.rms_decay * h[i] + (1 - p.rms_decay) * g * g
            return lr * g / (np.sqrt(h[i]) + p.delta)
        if kind == "AdaDelta":
            h[i] = p.momentum * h[i] + (1 - p.momentum) * g * g
            value = g * np.sqrt((h2[i] + p.delta) / (h[i] + p.delta))
            h2[i] = p.momentum * h2[i] + (1 - p.momentum) * value * value
            return lr * value
        if kind == "Adam":
            t = it + 1
            h[i] = p.momentum * h[i] + (1 - p.momentum) * g
            h2[i] = p.momentum2 * h2[i] + (1 - p.momentum2) * g * g
            correction = math.sqrt(1 - p.momentum2 ** t) / (1 - p.momentum ** t)
            return lr * correction * h[i] / (np.sqrt(h2[i]) + p.delta)
        raise AssertionError(kind)


CASES = {
    "sgd": 'type: "SGD" momentum: 0.9 weight_decay: 0.01',
    "sgd_l1_clip": 'type: "SGD" momentum: 0.5 weight_decay: 0.05 regularization_type: "L1" '
                   'clip_gradients: 0.3',
    "sgd_iter_size": 'type: "SGD" momentum: 0.9 weight_decay: 0.01 iter_size: 3',
    "nesterov": 'type: "Nesterov" momentum: 0.9 weight_decay: 0.01',
    "adagrad": 'type: "AdaGrad" weight_decay: 0.01 delta: 1e-6',
    "rmsprop": 'type: "RMSProp" rms_decay: 0.9 weight_decay: 0.01 delta: 1e-6',
    "adadelta": 'type: "AdaDelta" momentum: 0.95 delta: 1e-6 weight_decay: 0.01',
    "adam": 'type: "Adam" momentum: 0.9 momentum2: 0.999 delta: 1e-8 weight_decay: 0.01',
    "legacy_solver_type": 'solver_type: NESTEROV momentum: 0.8',
}


@pytest.mark.parametrize("case", list(CASES))
def test_updates_follow_caffe_formulas(case):
    param = small_solver_param(CASES[case])
    solver = feed(caffe.get_solver(param))
    assert type(solver).__name__ == f"{solver.param.type}Solver"
    w0, b0 = (np.array(blob.data) for blob in solver.net.params["ip"])
    ref = CaffeReference(solver.param, w0, b0)
    for it in range(5):
        solver.step(1)
        ref.step(it)
    w, b = solver.net.params["ip"]
    np.testing.assert_allclose(w.data, ref.params[0], rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(b.data, ref.params[1], rtol=2e-5, atol=1e-6)
    assert solver.iter == 5


@pytest.fixture
def optimization_level():
    before = dragon.config.get_optimization_level()
    yield dragon.config.set_optimization_level
    dragon.config.set_optimization_level(before)


@pytest.mark.parametrize("level", [0, 3])
def test_solvers_work_at_every_optimization_level(level, optimization_level):
    optimization_level(level)
    solver = feed(caffe.get_solver(small_solver_param(CASES["adam"])))
    w0, b0 = (np.array(blob.data) for blob in solver.net.params["ip"])
    ref = CaffeReference(solver.param, w0, b0)
    for it in range(3):
        solver.step(1)
        ref.step(it)
    np.testing.assert_allclose(solver.net.params["ip"][0].data, ref.params[0], rtol=2e-5,
                               atol=1e-6)


def test_lr_mult_zero_freezes_a_param():
    param = small_solver_param('type: "SGD" momentum: 0.9')
    param.net_param.layer[1].param[1].lr_mult = 0
    solver = feed(caffe.SGDSolver(param))
    b0 = np.array(solver.net.params["ip"][1].data)
    w0 = np.array(solver.net.params["ip"][0].data)
    solver.step(3)
    np.testing.assert_array_equal(solver.net.params["ip"][1].data, b0)
    assert not np.allclose(solver.net.params["ip"][0].data, w0)


def test_blob_views_stay_valid_and_test_net_shares_weights():
    param = small_solver_param('type: "SGD" momentum: 0.9 test_iter: 1 test_interval: 2')
    solver = feed(caffe.SGDSolver(param))
    weight = solver.net.params["ip"][0].data
    solver.step(3)
    assert solver.net.params["ip"][0].data is weight or \
        np.shares_memory(solver.net.params["ip"][0].data, weight)
    assert len(solver.test_nets) == 1
    np.testing.assert_array_equal(solver.test_nets[0].params["ip"][0].data, weight)
    other = caffe.Net(text_format.Parse(NET, caffe_pb2.NetParameter()), caffe.TEST)
    solver.share_weights(other)
    np.testing.assert_array_equal(other.params["ip"][0].data, weight)


def test_apply_update_alone_uses_the_diffs():
    solver = caffe.SGDSolver(small_solver_param('type: "SGD" momentum: 0'))
    w = solver.net.params["ip"][0]
    before = np.array(w.data)
    solver.net.clear_param_diffs()
    w.diff[...] = 1.0
    solver.net.params["ip"][1].diff[...] = 0.0
    solver.apply_update()
    np.testing.assert_allclose(w.data, before - np.float32(0.1), rtol=1e-6)
    assert solver.iter == 0


# ---------------------------------------------------------------------------
# Snapshots


@pytest.mark.parametrize("fmt", ["BINARYPROTO", "HDF5"])
def test_snapshot_and_restore_continue_exactly(tmp_path, fmt):
    if fmt == "HDF5":
        pytest.importorskip("h5py", reason="HDF5 snapshots need h5py")
    extra = (f'type: "Adam" momentum: 0.9 momentum2: 0.999 weight_decay: 0.01 '
             f'snapshot_prefix: "{tmp_path}/lin" snapshot_format: {fmt}')
    solver = feed(caffe.get_solver(small_solver_param(extra)))
    solver.step(4)
    model, state = solver.snapshot()
    suffix = ".h5" if fmt == "HDF5" else ""
    assert model == f"{tmp_path}/lin_iter_4.caffemodel{suffix}"
    assert state == f"{tmp_path}/lin_iter_4.solverstate{suffix}"
    assert os.path.isfile(model) and os.path.isfile(state)
    if fmt == "BINARYPROTO":
        saved = proto_io.read_binary(state, caffe_pb2.SolverState)
        assert saved.iter == 4 and saved.learned_net == model
        assert len(saved.history) == 4          # Adam: m of W and b, then v of W and b
        assert list(saved.history[0].shape.dim) == [2, 3]
        assert list(saved.history[3].shape.dim) == [2]
    solver.step(3)
    expected = [np.array(b.data) for b in solver.net.params["ip"]]

    again = feed(caffe.get_solver(small_solver_param(extra)))
    again.restore(state)
    assert again.iter == 4
    again.step(3)
    for blob, want in zip(again.net.params["ip"], expected):
        np.testing.assert_array_equal(blob.data, want)     # bit for bit


def test_snapshot_every_n_and_after_train(tmp_path):
    extra = f'type: "SGD" momentum: 0.9 snapshot: 3 snapshot_prefix: "{tmp_path}/s"'
    param = small_solver_param(extra, max_iter=7, snapshot_after_train=True)
    solver = feed(caffe.SGDSolver(param))
    solver.solve()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["s_iter_3.caffemodel", "s_iter_3.solverstate", "s_iter_6.caffemodel",
                     "s_iter_6.solverstate", "s_iter_7.caffemodel", "s_iter_7.solverstate"]
    weights = proto_io.read_binary(str(tmp_path / "s_iter_7.caffemodel"), caffe_pb2.NetParameter)
    ip = [l for l in weights.layer if l.name == "ip"][0]
    np.testing.assert_allclose(np.array(ip.blobs[0].data).reshape(2, 3),
                               solver.net.params["ip"][0].data)
    resumed = feed(caffe.SGDSolver(small_solver_param(extra, max_iter=9)))
    resumed.solve(str(tmp_path / "s_iter_6.solverstate"))
    assert resumed.iter == 9


def test_snapshot_prefix_from_the_solver_file(tmp_path, monkeypatch):
    net_file = tmp_path / "linear.prototxt"
    net_file.write_text(NET)
    solver_file = tmp_path / "my_solver.prototxt"
    solver_file.write_text('net: "linear.prototxt" base_lr: 0.1 lr_policy: "fixed"')
    monkeypatch.chdir(tmp_path)       # net paths are relative to the working directory
    solver = caffe.get_solver(str(solver_file))
    assert isinstance(solver, caffe.SGDSolver)
    assert solver.param.snapshot_prefix == str(tmp_path / "my_solver")
    model, _ = feed(solver).snapshot()
    assert model == str(tmp_path / "my_solver_iter_0.caffemodel")


# ---------------------------------------------------------------------------
# Logs, test nets, callbacks, errors


def test_glog_lines_and_average_loss(caplog):
    param = small_solver_param('type: "SGD" momentum: 0.9 test_iter: 2 test_interval: 4',
                               display=2, average_loss=3)
    solver = feed(caffe.SGDSolver(param))
    losses = []
    solver.add_callback(lambda: None,
                        lambda: losses.append(float(solver.net.blobs["loss"].data)))
    with caplog.at_level(logging.INFO, logger="dragon"):
        solver.step(5)
    lines = [r.getMessage() for r in caplog.records]
    assert "Iteration 0, Testing net (#0)" in lines
    assert "Iteration 4, Testing net (#0)" in lines
    assert any(l.startswith("    Test net output #0: loss = ") and "(* 1 = " in l for l in lines)
    display = [l for l in lines if l.startswith("Iteration 4 (")]
    assert display and "iter/s" in display[0] and "s/2 iters), loss = " in display[0]
    smoothed = float(display[0].rsplit("= ", 1)[1])
    assert smoothed == pytest.approx(np.mean(losses[2:5]), rel=1e-4)
    assert "Iteration 2, lr = 0.05" in lines and "Iteration 4, lr = 0.025" in lines
    train = [l for l in lines if l.startswith("    Train net output #0: loss = ")]
    assert len(train) == 3 and train[-1].endswith(" loss)")


def test_test_nets_from_test_net_param_and_states():
    param = small_solver_param('type: "SGD"')
    test_param = text_format.Parse(NET, caffe_pb2.NetParameter())
    param.test_net_param.add().CopyFrom(test_param)
    param.test_iter.extend([1, 2])                    # one test_net_param, one generic net
    param.test_state.add(stage=["a"])
    param.test_state.add(stage=["b"])
    solver = caffe.SGDSolver(param)
    assert len(solver.test_nets) == 2
    for net in solver.test_nets:
        np.testing.assert_array_equal(net.params["ip"][0].data, solver.net.params["ip"][0].data)
    scores = solver.test(1)
    assert set(scores) == {"loss"}


def test_bad_solver_files_name_the_problem():
    with pytest.raises(ValueError, match="exactly one of train_net_param, train_net, net_param"):
        caffe.SGDSolver(_solver_param("base_lr: 0.1"))
    with pytest.raises(ValueError, match="momentum cannot be used with AdaGrad"):
        caffe.AdaGradSolver(small_solver_param("momentum: 0.9"))
    with pytest.raises(ValueError, match="unknown solver type 'Adamax'"):
        caffe.get_solver(small_solver_param('type: "Adamax"'))
    with pytest.raises(ValueError, match="test_iter must be given once per test net"):
        p = small_solver_param("")
        p.test_net_param.add().CopyFrom(p.net_param)
        caffe.SGDSolver(p)


def test_example_solver_files_pick_their_solver():
    if not MNIST_EXAMPLES.is_dir():
        pytest.skip(f"the Caffe examples {MNIST_EXAMPLES} are absent")
    expected = {"lenet_solver.prototxt": "SGD", "lenet_solver_adam.prototxt": "Adam",
                "lenet_solver_rmsprop.prototxt": "RMSProp",
                "lenet_adadelta_solver.prototxt": "AdaDelta",
                "mnist_autoencoder_solver_nesterov.prototxt": "Nesterov",
                "mnist_autoencoder_solver_adagrad.prototxt": "AdaGrad"}
    for name, kind in expected.items():
        param = proto_io.read_solver(str(MNIST_EXAMPLES / name))
        param.ClearField("net")
        param.ClearField("test_iter")
        param.ClearField("test_state")
        param.net_param.CopyFrom(text_format.Parse(NET, caffe_pb2.NetParameter()))
        solver = caffe.get_solver(param)
        assert type(solver) is caffe.solver.SOLVERS[kind], name


def test_batch_norm_statistics_are_not_learned():
    net_text = """
    layer { name: "input" type: "Input" top: "data" top: "target"
            input_param { shape { dim: 4 dim: 3 } shape { dim: 4 dim: 2 } } }
    layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" }
    layer { name: "ip" type: "InnerProduct" bottom: "bn" top: "ip"
            inner_product_param { num_output: 2 weight_filler { type: "xavier" } } }
    layer { name: "loss" type: "EuclideanLoss" bottom: "ip" bottom: "target" top: "loss" }
    """
    param = _solver_param('base_lr: 0.1 lr_policy: "fixed" momentum: 0.9 weight_decay: 0.5 '
                          'display: 0')
    param.net_param.CopyFrom(text_format.Parse(net_text, caffe_pb2.NetParameter()))
    solver = feed(caffe.SGDSolver(param))
    plain = caffe.Net(param.net_param, caffe.TRAIN)
    for _ in range(3):
        solver.step(1)
        plain.blobs["data"].data[...] = X
        plain.blobs["target"].data[...] = T
        plain.forward()
    for got, want in zip(solver.net.params["bn"], plain.params["bn"]):
        np.testing.assert_allclose(got.data, want.data, rtol=1e-6)
    assert float(solver.net.params["bn"][2].data[0]) > 0
