"""dragon.config: device, seed, optimization level, logging and Dragon 0.2's names."""
import logging

import numpy as np
import pytest

import dragon
from dragon import backend


def test_cpu_device_uses_numpy():
    dragon.config.set_device("cpu")
    assert dragon.config.get_device() == ("cpu", 0)
    assert backend.array_module() is np


def test_cuda_without_cupy_or_gpu_is_a_clear_error():
    try:
        import cupy
        cupy.cuda.runtime.getDeviceCount()
        pytest.skip("a CUDA device is present; the GPU tests cover it")
    except Exception:
        pass
    with pytest.raises(RuntimeError, match="cupy|CUDA"):
        dragon.config.set_device("cuda")
    assert dragon.config.get_device()[0] == "cpu"


def test_unknown_device_and_level_are_rejected():
    with pytest.raises(ValueError, match="tpu"):
        dragon.config.set_device("tpu")
    with pytest.raises(ValueError, match="0..3"):
        dragon.config.set_optimization_level(7)


def test_same_seed_same_stream_and_reseeding_restarts_it():
    dragon.config.set_random_seed(42)
    a = backend.rng().standard_normal(5)
    dragon.config.set_random_seed(42)
    b = backend.rng().standard_normal(5)
    dragon.config.set_random_seed(43)
    c = backend.rng().standard_normal(5)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_dragon_02_aliases():
    dragon.config.SetRandomSeed(7)
    assert dragon.config.get_random_seed() == 7
    dragon.config.EnableCPU()
    assert dragon.config.get_device()[0] == "cpu"
    dragon.config.SetLoggingLevel("WARNING")
    assert logging.getLogger("dragon").level == logging.WARNING
    dragon.config.set_logging_level(logging.INFO)


def test_optimization_level_round_trip():
    previous = dragon.config.get_optimization_level()
    dragon.config.set_optimization_level(0)
    assert dragon.config.get_optimization_level() == 0
    dragon.config.set_optimization_level(previous)


def _train_with_dropout_and_filler(seed):
    dragon.config.set_random_seed(seed)
    with dragon.name_scope(f"seeded{seed}"):
        x = dragon.placeholder((8, 16), name="x")
        w = dragon.core.tensor.apply("GaussianFill", [], shape=[16, 4], std=0.1)
        init = dragon.function([], w)
        w_var = dragon.variable(init(), name="w")
        h, _ = dragon.ops.dropout(x @ w_var, prob=0.5)
        loss = dragon.ops.reduce_mean(h * h)
        step = dragon.function([x], loss, updates=dragon.updaters.SGD(0.1).minimize(loss, [w_var]))
        batch = np.ones((8, 16), "float32")
        return [float(step(batch)) for _ in range(5)] + list(w_var.get_value().ravel())


def test_same_seed_gives_bit_identical_training():
    a = _train_with_dropout_and_filler(1234)
    b = _train_with_dropout_and_filler(1234)
    c = _train_with_dropout_and_filler(4321)
    assert a == b
    assert a != c
