"""The memory planner, measured with tracemalloc (numpy reports its buffers to it)."""
import tracemalloc

import numpy as np
import pytest

import dragon

WIDTH, BATCH, DEPTH = 256, 512, 50


def _mlp_step(level, depth=DEPTH, tag=""):
    """A compiled SGD training step of a ``depth``-layer ReLU MLP, at ``level``."""
    rng = np.random.default_rng(0)
    scope = f"mlp{depth}_{level}{tag}"
    with dragon.name_scope(scope):
        x = dragon.placeholder((None, WIDTH), name="x")
        h, params = x, []
        for i in range(depth):
            w = dragon.variable((rng.standard_normal((WIDTH, WIDTH)) / np.sqrt(WIDTH))
                                .astype("float32"), name=f"w{i}")
            b = dragon.variable(np.zeros(WIDTH, "float32"), name=f"b{i}")
            h = dragon.ops.relu(dragon.ops.fully_connected(h, w, b))
            params += [w, b]
        loss = dragon.ops.reduce_mean(h * h)
        opt = dragon.updaters.SGD(lr=0.01, momentum=0.9)
        updates = opt.minimize(loss, params)
    dragon.config.set_optimization_level(level)
    try:
        step = dragon.function([x], loss, updates=updates)
    finally:
        dragon.config.set_optimization_level(2)
    return step, rng.standard_normal((BATCH, WIDTH)).astype("float32")


def _traced_peak(step, batch, level):
    dragon.config.set_optimization_level(level)
    try:
        tracemalloc.start()
        loss = step(batch)  # compiles (allocates the plan's buffers) and runs
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        dragon.config.set_optimization_level(2)
    return peak, loss


def test_highest_level_peak_is_at_most_040_of_level_0():
    step0, batch = _mlp_step(0)
    step3, _ = _mlp_step(dragon.config.MAX_LEVEL)
    peak0, loss0 = _traced_peak(step0, batch, 0)
    peak3, loss3 = _traced_peak(step3, batch, dragon.config.MAX_LEVEL)
    assert loss3 == pytest.approx(loss0, rel=1e-5)
    assert peak3 <= 0.40 * peak0, (peak3, peak0)


@pytest.mark.parametrize("level", [0, 2, 3])
def test_memory_stats_agree_with_tracemalloc(level):
    step, batch = _mlp_step(level, tag="stats")
    peak, _ = _traced_peak(step, batch, level)
    planned = dragon.workspace.memory_stats()["planned_bytes"]
    assert abs(planned - peak) <= 0.20 * peak, (planned, peak)


def test_recomputation_lowers_the_peak_of_a_deep_net():
    step2, batch = _mlp_step(2, depth=64, tag="rc")
    step3, _ = _mlp_step(3, depth=64, tag="rc")
    peak2, loss2 = _traced_peak(step2, batch, 2)
    peak3, loss3 = _traced_peak(step3, batch, 3)
    assert loss3 == pytest.approx(loss2, rel=1e-5)
    assert peak3 < 0.5 * peak2, (peak3, peak2)


def test_memory_stats_report_planned_and_unplanned_bytes():
    step, batch = _mlp_step(2, depth=4, tag="report")
    step(batch)
    stats = dragon.workspace.memory_stats()
    assert stats["planned_bytes"] < stats["unplanned_bytes"]
    assert stats["persistent_bytes"] >= 4 * WIDTH * WIDTH * 4 * 2  # weights + momentum
    assert stats["peak_bytes"] == stats["planned_bytes"] + stats["persistent_bytes"]
