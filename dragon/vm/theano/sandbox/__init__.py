"""``theano.sandbox``: filled by the second Theano engineer (rng_mrg)."""
from dragon.vm.theano.sandbox import rng_mrg  # noqa: F401
