"""A denoising autoencoder on MNIST (Vincent et al. 2008), tutorial style.

The classic Theano tutorial program, run on Dragon: only the imports differ.

    python examples/theano/dA.py --epochs 15

The input x is corrupted by zeroing each pixel with probability ``corruption_level``
(MRG binomial noise), encoded as y = sigmoid(W x~ + b) and decoded with the tied
weights W' = W.T as z = sigmoid(W' y + b'). Training minimizes the cross-entropy
between x and z by minibatch SGD.
"""
from __future__ import annotations

import argparse
import sys
import timeit

import numpy

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano.mnist import load_data
from dragon.vm.theano.sandbox.rng_mrg import MRG_RandomStreams as RandomStreams


class dA(object):  # noqa: N801 - the tutorial's name
    """A denoising autoencoder with tied weights."""

    def __init__(self, numpy_rng, theano_rng=None, input=None, n_visible=784, n_hidden=500,
                 W=None, bhid=None, bvis=None):
        self.n_visible = n_visible
        self.n_hidden = n_hidden
        if not theano_rng:
            theano_rng = RandomStreams(numpy_rng.randint(2 ** 30))
        if not W:
            # sigmoid units: 4 times Glorot & Bengio's uniform range
            bound = 4 * numpy.sqrt(6.0 / (n_hidden + n_visible))
            initial_W = numpy.asarray(numpy_rng.uniform(low=-bound, high=bound,
                                                        size=(n_visible, n_hidden)),
                                      dtype=theano.config.floatX)
            W = theano.shared(value=initial_W, name="W", borrow=True)
        if not bvis:
            bvis = theano.shared(value=numpy.zeros(n_visible, dtype=theano.config.floatX),
                                 borrow=True)
        if not bhid:
            bhid = theano.shared(value=numpy.zeros(n_hidden, dtype=theano.config.floatX),
                                 name="b", borrow=True)
        self.W = W
        self.b = bhid            # bias of the hidden units
        self.b_prime = bvis      # bias of the visible units
        self.W_prime = self.W.T  # tied weights
        self.theano_rng = theano_rng
        self.x = T.dmatrix(name="input") if input is None else input
        self.params = [self.W, self.b, self.b_prime]

    def get_corrupted_input(self, input, corruption_level):
        """``input`` with a random fraction ``corruption_level`` of its entries set to 0.

        binomial(n=1, p) draws 1 with probability p: multiplying keeps each pixel with
        probability 1 - corruption_level.
        """
        return self.theano_rng.binomial(size=input.shape, n=1, p=1 - corruption_level,
                                        dtype=theano.config.floatX) * input

    def get_hidden_values(self, input):
        return T.nnet.sigmoid(T.dot(input, self.W) + self.b)

    def get_reconstructed_input(self, hidden):
        return T.nnet.sigmoid(T.dot(hidden, self.W_prime) + self.b_prime)

    def get_cost_updates(self, corruption_level, learning_rate):
        """The mean reconstruction cross-entropy and the SGD updates of one step."""
        tilde_x = self.get_corrupted_input(self.x, corruption_level)
        y = self.get_hidden_values(tilde_x)
        z = self.get_reconstructed_input(y)
        # one cross-entropy per example (the sum over its pixels)
        L = -T.sum(self.x * T.log(z) + (1 - self.x) * T.log(1 - z), axis=1)
        cost = T.mean(L)
        gparams = T.grad(cost, self.params)
        updates = [(param, param - learning_rate * gparam)
                   for param, gparam in zip(self.params, gparams)]
        return cost, updates


def test_dA(learning_rate=0.1, training_epochs=15, dataset=None, batch_size=20,
            corruption_levels=(0.0, 0.3), n_hidden=500, n_train=None, verbose=True):
    """Train one dA per corruption level; returns {level: [mean cost of each epoch]}."""
    datasets = load_data(dataset)
    train_set_x, _ = datasets[0]
    n_examples = train_set_x.get_value(borrow=True).shape[0]
    if n_train is not None:
        n_examples = min(n_examples, n_train)
    n_train_batches = n_examples // batch_size

    index = T.lscalar()
    x = T.matrix("x")
    history = {}
    for level in corruption_levels:
        rng = numpy.random.RandomState(123)
        theano_rng = RandomStreams(rng.randint(2 ** 30))
        da = dA(numpy_rng=rng, theano_rng=theano_rng, input=x, n_visible=28 * 28,
                n_hidden=n_hidden)
        cost, updates = da.get_cost_updates(corruption_level=level, learning_rate=learning_rate)
        train_da = theano.function(
            [index], cost, updates=updates,
            givens={x: train_set_x[index * batch_size: (index + 1) * batch_size]})

        start_time = timeit.default_timer()
        costs = []
        for epoch in range(training_epochs):
            c = [train_da(batch_index) for batch_index in range(n_train_batches)]
            costs.append(float(numpy.mean(c)))
            if verbose:
                print(f"Training epoch {epoch}, cost {costs[-1]:f}")
        end_time = timeit.default_timer()
        if verbose:
            print(f"The {int(level * 100)}% corruption code ran for "
                  f"{(end_time - start_time) / 60.:.2f}m")
        history[level] = costs
    return history


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--dataset", default=None, help="MNIST folder or mnist.pkl.gz")
    args = parser.parse_args(argv)
    theano.config.floatX = "float32"
    test_dA(training_epochs=args.epochs, dataset=args.dataset)


if __name__ == "__main__":
    sys.exit(main())
