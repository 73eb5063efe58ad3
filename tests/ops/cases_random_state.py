"""Cases for dragon/ops/random_state.py: the draws must equal numpy's RandomState's."""
import numpy as np

from dragon.ops.random_state import STATE_WORDS, pack_state, unpack_state
from tests.ops.opcase import Case


def _state(seed):
    return pack_state(np.random.RandomState(seed))


def _like_numpy(method, dtype):
    """A check: the sample and the next state equal RandomState's from the same state."""
    def check(outs, ins, args):
        rng = unpack_state(ins[0])
        want = getattr(rng, method)(*ins[1:], size=tuple(args["shape"]))
        np.testing.assert_array_equal(outs[0], np.asarray(want).astype(dtype))
        assert outs[0].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(outs[1], pack_state(rng))
        assert outs[1].shape == (STATE_WORDS,) and outs[1].dtype == np.uint32
    return check


def _integers(outs, ins, args):
    rng = unpack_state(ins[0])
    want = rng.randint(ins[1], ins[2] + 1, size=tuple(args["shape"]))
    np.testing.assert_array_equal(outs[0], want)
    assert outs[0].min() >= ins[1] and outs[0].max() <= ins[2]


def _f(v):
    return np.asarray(v, dtype=np.float64)


CASES = [
    Case("RandomStateUniform", [_state(234), _f(-1.0), _f(2.0)],
         args={"shape": [3, 4], "dtype": "float64"},
         check=_like_numpy("uniform", "float64"), grad=()),
    Case("RandomStateUniform", [_state(5), _f(np.zeros((2, 1))), _f(np.arange(1.0, 4.0))],
         args={"shape": [2, 3], "dtype": "float32"},
         check=_like_numpy("uniform", "float32"), grad=(), name="broadcast_bounds"),
    Case("RandomStateNormal", [_state(7), _f(1.5), _f(0.5)],
         args={"shape": [5], "dtype": "float64"},
         check=_like_numpy("normal", "float64"), grad=()),
    Case("RandomStateBinomial", [_state(9), np.asarray(1, np.int64), _f(np.linspace(0, 1, 6))],
         args={"shape": [6], "dtype": "float32"},
         check=_like_numpy("binomial", "float32"), grad=()),
    Case("RandomStateBinomial", [_state(9), np.asarray(4, np.int64), _f(0.3)],
         args={"shape": [2, 2], "dtype": "int64"},
         check=_like_numpy("binomial", "int64"), grad=(), name="counts"),
    Case("RandomStateIntegers", [_state(11), np.asarray(-2, np.int64), np.asarray(3, np.int64)],
         args={"shape": [40], "dtype": "int64"}, check=_integers, grad=()),
]
