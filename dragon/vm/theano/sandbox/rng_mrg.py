"""``theano.sandbox.rng_mrg``: filled by the second Theano engineer (MRG_RandomStreams)."""
