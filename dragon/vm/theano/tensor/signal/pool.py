"""``theano.tensor.signal.pool``: filled by the second Theano engineer (pool_2d)."""
