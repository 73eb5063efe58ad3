"""Where the shared example files live, and small helpers for the Caffe64 tests."""
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
EXAMPLES = SHARED / "caffe64"
MNIST = SHARED / "mnist"


def need(path: Path) -> Path:
    """``path``, or skip the test when the shared data is absent."""
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared example data is not checked out here)")
    return path


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def quiet(_line=""):
    """A ``log`` that drops progress lines."""


def toy_classifier_data(n=400, features=4, classes=3, seed=0):
    """Separable blobs: class c centred at 3 * e_c."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    X = rng.standard_normal((n, features)).astype(np.float32)
    X[np.arange(n), y] += 3.0
    return X, y
