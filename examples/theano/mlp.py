"""A multilayer perceptron on MNIST: one tanh hidden layer under a logistic regression.

The classic Theano tutorial program, run on Dragon: only the imports differ.

    python examples/theano/mlp.py --epochs 20

The cost adds L1 and squared-L2 penalties of the weights to the negative
log-likelihood; training is minibatch SGD with early stopping.
"""
from __future__ import annotations

import argparse
import os
import sys
import timeit

import numpy

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano.mnist import load_data

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from logistic_sgd import LogisticRegression  # noqa: E402


class HiddenLayer(object):
    """A fully connected layer: output = activation(dot(input, W) + b)."""

    def __init__(self, rng, input, n_in, n_out, W=None, b=None, activation=T.tanh):
        self.input = input
        if W is None:
            # Glorot & Bengio's uniform range for tanh; sigmoid units want it 4 times wider.
            bound = numpy.sqrt(6.0 / (n_in + n_out))
            W_values = numpy.asarray(rng.uniform(low=-bound, high=bound, size=(n_in, n_out)),
                                     dtype=theano.config.floatX)
            if activation == T.nnet.sigmoid:
                W_values *= 4
            W = theano.shared(value=W_values, name="W", borrow=True)
        if b is None:
            b = theano.shared(value=numpy.zeros((n_out,), dtype=theano.config.floatX),
                              name="b", borrow=True)
        self.W = W
        self.b = b
        lin_output = T.dot(input, self.W) + self.b
        self.output = lin_output if activation is None else activation(lin_output)
        self.params = [self.W, self.b]


class MLP(object):
    """A hidden layer followed by a logistic regression layer."""

    def __init__(self, rng, input, n_in, n_hidden, n_out):
        self.hiddenLayer = HiddenLayer(rng=rng, input=input, n_in=n_in, n_out=n_hidden,
                                       activation=T.tanh)
        self.logRegressionLayer = LogisticRegression(input=self.hiddenLayer.output,
                                                     n_in=n_hidden, n_out=n_out)
        # regularizers: L1 norm and squared L2 norm of the weights
        self.L1 = abs(self.hiddenLayer.W).sum() + abs(self.logRegressionLayer.W).sum()
        self.L2_sqr = (self.hiddenLayer.W ** 2).sum() + (self.logRegressionLayer.W ** 2).sum()
        self.negative_log_likelihood = self.logRegressionLayer.negative_log_likelihood
        self.errors = self.logRegressionLayer.errors
        self.params = self.hiddenLayer.params + self.logRegressionLayer.params
        self.input = input


def test_mlp(learning_rate=0.01, L1_reg=0.00, L2_reg=0.0001, n_epochs=1000, dataset=None,
             batch_size=20, n_hidden=500, patience=10000, seed=1234, n_valid=1000,
             verbose=True):
    """Train the MLP; returns (best validation error, its test error, epochs run)."""
    datasets = load_data(dataset, n_valid=n_valid)
    train_set_x, train_set_y = datasets[0]
    valid_set_x, valid_set_y = datasets[1]
    test_set_x, test_set_y = datasets[2]

    n_train_batches = train_set_x.get_value(borrow=True).shape[0] // batch_size
    n_valid_batches = valid_set_x.get_value(borrow=True).shape[0] // batch_size
    n_test_batches = test_set_x.get_value(borrow=True).shape[0] // batch_size

    if verbose:
        print("... building the model")
    index = T.lscalar()
    x = T.matrix("x")
    y = T.ivector("y")
    rng = numpy.random.RandomState(seed)

    classifier = MLP(rng=rng, input=x, n_in=28 * 28, n_hidden=n_hidden, n_out=10)
    cost = (classifier.negative_log_likelihood(y) + L1_reg * classifier.L1
            + L2_reg * classifier.L2_sqr)

    test_model = theano.function(
        inputs=[index], outputs=classifier.errors(y),
        givens={x: test_set_x[index * batch_size:(index + 1) * batch_size],
                y: test_set_y[index * batch_size:(index + 1) * batch_size]})
    validate_model = theano.function(
        inputs=[index], outputs=classifier.errors(y),
        givens={x: valid_set_x[index * batch_size:(index + 1) * batch_size],
                y: valid_set_y[index * batch_size:(index + 1) * batch_size]})

    gparams = [T.grad(cost, param) for param in classifier.params]
    updates = [(param, param - learning_rate * gparam)
               for param, gparam in zip(classifier.params, gparams)]
    train_model = theano.function(
        inputs=[index], outputs=cost, updates=updates,
        givens={x: train_set_x[index * batch_size: (index + 1) * batch_size],
                y: train_set_y[index * batch_size: (index + 1) * batch_size]})

    if verbose:
        print("... training")
    patience_increase = 2
    improvement_threshold = 0.995
    validation_frequency = min(n_train_batches, patience // 2)

    best_validation_loss = numpy.inf
    best_iter = 0
    test_score = 0.0
    start_time = timeit.default_timer()
    epoch = 0
    done_looping = False
    while epoch < n_epochs and not done_looping:
        epoch = epoch + 1
        for minibatch_index in range(n_train_batches):
            train_model(minibatch_index)
            iteration = (epoch - 1) * n_train_batches + minibatch_index
            if (iteration + 1) % validation_frequency == 0:
                this_validation_loss = numpy.mean([validate_model(i)
                                                   for i in range(n_valid_batches)])
                if verbose:
                    print(f"epoch {epoch}, minibatch {minibatch_index + 1}/{n_train_batches}, "
                          f"validation error {this_validation_loss * 100.:f} %")
                if this_validation_loss < best_validation_loss:
                    if this_validation_loss < best_validation_loss * improvement_threshold:
                        patience = max(patience, iteration * patience_increase)
                    best_validation_loss = this_validation_loss
                    best_iter = iteration
                    test_score = numpy.mean([test_model(i) for i in range(n_test_batches)])
                    if verbose:
                        print(f"     epoch {epoch}, minibatch {minibatch_index + 1}/"
                              f"{n_train_batches}, test error of best model "
                              f"{test_score * 100.:f} %")
            if patience <= iteration:
                done_looping = True
                break
    end_time = timeit.default_timer()
    if verbose:
        print(f"Optimization complete. Best validation score of {best_validation_loss * 100.:f} "
              f"% obtained at iteration {best_iter + 1}, with test performance "
              f"{test_score * 100.:f} %")
        print(f"The code ran for {(end_time - start_time) / 60.:.2f}m")
    return best_validation_loss, test_score, epoch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--dataset", default=None, help="MNIST folder or mnist.pkl.gz")
    args = parser.parse_args(argv)
    theano.config.floatX = "float32"
    test_mlp(learning_rate=args.learning_rate, n_epochs=args.epochs, dataset=args.dataset)


if __name__ == "__main__":
    sys.exit(main())
