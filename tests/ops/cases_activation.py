"""Cases for dragon/ops/activation.py."""
import numpy as np

from tests.ops.opcase import Case, away_from, rand

CASES = [
    Case("Relu", [away_from(rand(3, 4))], reference=lambda x, **k: np.maximum(x, 0)),
    Case("Relu", [away_from(rand(3, 4))], args={"slope": 0.1},
         reference=lambda x, slope: np.where(x > 0, x, slope * x), name="leaky"),
]
