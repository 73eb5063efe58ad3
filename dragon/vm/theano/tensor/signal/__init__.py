"""``theano.tensor.signal``: filled by the second Theano engineer (pooling)."""
from dragon.vm.theano.tensor.signal import pool  # noqa: F401
