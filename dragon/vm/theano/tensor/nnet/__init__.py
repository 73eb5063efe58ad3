"""``theano.tensor.nnet``: filled by the second Theano engineer (activations, softmax,
crossentropies, batch_normalization, conv2d)."""
