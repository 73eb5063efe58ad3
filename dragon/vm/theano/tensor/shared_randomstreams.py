"""``theano.tensor.shared_randomstreams``: filled by the second Theano engineer (RandomStreams)."""
