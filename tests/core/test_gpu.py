"""The cupy path: the same graph on CUDA gives numpy's results (skips without a GPU)."""
import numpy as np
import pytest

import dragon


def _cuda_available():
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _cuda_available(),
                                reason="no cupy or no CUDA device on this machine")


def test_mlp_step_on_cuda_matches_cpu():
    rng = np.random.default_rng(0)
    xb = rng.standard_normal((4, 6)).astype("float32")
    w0 = rng.standard_normal((3, 6)).astype("float32")
    results = {}
    for device in ("cpu", "cuda"):
        dragon.config.set_device(device)
        try:
            with dragon.name_scope(f"gpu_{device}"):
                x = dragon.placeholder((4, 6), name="x")
                w = dragon.variable(w0, name="w")
                loss = dragon.ops.reduce_mean(dragon.ops.relu(dragon.ops.fully_connected(x, w)))
                step = dragon.function([x], loss,
                                       updates=dragon.updaters.SGD(0.1).minimize(loss, [w]))
                results[device] = [float(step(xb)) for _ in range(3)]
        finally:
            dragon.config.set_device("cpu")
    np.testing.assert_allclose(results["cuda"], results["cpu"], rtol=1e-5)
