"""Classifying MNIST digits with multinomial logistic regression and minibatch SGD.

The classic Theano tutorial program, run on Dragon: only the imports differ.

    python examples/theano/logistic_sgd.py --epochs 20

The model computes P(Y = i | x) = softmax(W x + b)_i and predicts the most likely
class; it learns by minimizing the mean negative log-likelihood of minibatches,
with early stopping on a validation set. The best model is pickled and reloaded
by ``predict``.
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys
import timeit

import numpy

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano.mnist import load_data


class LogisticRegression(object):
    """Multi-class logistic regression: a weight matrix W and a bias vector b."""

    def __init__(self, input, n_in, n_out):
        # W: one column of weights per class, b: one bias per class; zeros are fine here.
        self.W = theano.shared(value=numpy.zeros((n_in, n_out), dtype=theano.config.floatX),
                               name="W", borrow=True)
        self.b = theano.shared(value=numpy.zeros((n_out,), dtype=theano.config.floatX),
                               name="b", borrow=True)
        # class-membership probabilities, one row per example
        self.p_y_given_x = T.nnet.softmax(T.dot(input, self.W) + self.b)
        # the prediction: the class of highest probability
        self.y_pred = T.argmax(self.p_y_given_x, axis=1)
        self.params = [self.W, self.b]
        self.input = input

    def negative_log_likelihood(self, y):
        """Mean negative log-likelihood of the correct labels ``y`` over the minibatch.

        T.log(self.p_y_given_x) has one row per example and one column per class;
        [T.arange(n), y] picks the log-probability of each example's correct class.
        """
        return -T.mean(T.log(self.p_y_given_x)[T.arange(y.shape[0]), y])

    def errors(self, y):
        """Fraction of the minibatch the model gets wrong (the zero-one loss)."""
        if y.ndim != self.y_pred.ndim:
            raise TypeError("y should have the same shape as self.y_pred",
                            ("y", y.type, "y_pred", self.y_pred.type))
        if y.dtype.startswith("int"):
            return T.mean(T.neq(self.y_pred, y))
        raise NotImplementedError()


def sgd_optimization_mnist(learning_rate=0.13, n_epochs=1000, dataset=None, batch_size=600,
                           patience=5000, save_to="best_model.pkl", n_valid=1000,
                           verbose=True):
    """Train the model by minibatch SGD with early stopping.

    Returns (best validation error, test error of the best model, epochs run).
    """
    datasets = load_data(dataset, n_valid=n_valid)
    train_set_x, train_set_y = datasets[0]
    valid_set_x, valid_set_y = datasets[1]
    test_set_x, test_set_y = datasets[2]

    n_train_batches = train_set_x.get_value(borrow=True).shape[0] // batch_size
    n_valid_batches = valid_set_x.get_value(borrow=True).shape[0] // batch_size
    n_test_batches = test_set_x.get_value(borrow=True).shape[0] // batch_size

    ######################
    # BUILD ACTUAL MODEL #
    ######################
    if verbose:
        print("... building the model")
    index = T.lscalar()  # index of a minibatch
    x = T.matrix("x")    # rasterized images
    y = T.ivector("y")   # labels

    classifier = LogisticRegression(input=x, n_in=28 * 28, n_out=10)
    cost = classifier.negative_log_likelihood(y)

    test_model = theano.function(
        inputs=[index], outputs=classifier.errors(y),
        givens={x: test_set_x[index * batch_size: (index + 1) * batch_size],
                y: test_set_y[index * batch_size: (index + 1) * batch_size]})
    validate_model = theano.function(
        inputs=[index], outputs=classifier.errors(y),
        givens={x: valid_set_x[index * batch_size: (index + 1) * batch_size],
                y: valid_set_y[index * batch_size: (index + 1) * batch_size]})

    g_W = T.grad(cost=cost, wrt=classifier.W)
    g_b = T.grad(cost=cost, wrt=classifier.b)
    updates = [(classifier.W, classifier.W - learning_rate * g_W),
               (classifier.b, classifier.b - learning_rate * g_b)]
    train_model = theano.function(
        inputs=[index], outputs=cost, updates=updates,
        givens={x: train_set_x[index * batch_size: (index + 1) * batch_size],
                y: train_set_y[index * batch_size: (index + 1) * batch_size]})

    ###############
    # TRAIN MODEL #
    ###############
    if verbose:
        print("... training the model")
    patience_increase = 2
    improvement_threshold = 0.995
    validation_frequency = min(n_train_batches, patience // 2)

    best_validation_loss = numpy.inf
    test_score = 0.0
    start_time = timeit.default_timer()
    done_looping = False
    epoch = 0
    while epoch < n_epochs and not done_looping:
        epoch = epoch + 1
        for minibatch_index in range(n_train_batches):
            train_model(minibatch_index)
            iteration = (epoch - 1) * n_train_batches + minibatch_index
            if (iteration + 1) % validation_frequency == 0:
                validation_losses = [validate_model(i) for i in range(n_valid_batches)]
                this_validation_loss = numpy.mean(validation_losses)
                if verbose:
                    print(f"epoch {epoch}, minibatch {minibatch_index + 1}/{n_train_batches}, "
                          f"validation error {this_validation_loss * 100.:f} %")
                if this_validation_loss < best_validation_loss:
                    if this_validation_loss < best_validation_loss * improvement_threshold:
                        patience = max(patience, iteration * patience_increase)
                    best_validation_loss = this_validation_loss
                    test_losses = [test_model(i) for i in range(n_test_batches)]
                    test_score = numpy.mean(test_losses)
                    if verbose:
                        print(f"     epoch {epoch}, minibatch {minibatch_index + 1}/"
                              f"{n_train_batches}, test error of best model "
                              f"{test_score * 100.:f} %")
                    if save_to:
                        with open(save_to, "wb") as f:
                            pickle.dump(classifier, f)
            if patience <= iteration:
                done_looping = True
                break
    end_time = timeit.default_timer()
    if verbose:
        print(f"Optimization complete with best validation score of "
              f"{best_validation_loss * 100.:f} %, with test performance {test_score * 100.:f} %")
        print(f"The code ran for {epoch} epochs, with {epoch / (end_time - start_time):f} "
              f"epochs/sec")
    return best_validation_loss, test_score, epoch


def predict(model_file="best_model.pkl", dataset=None, count=10):
    """Load a pickled model and predict the labels of the first test digits."""
    with open(model_file, "rb") as f:
        classifier = pickle.load(f)
    predict_model = theano.function(inputs=[classifier.input], outputs=classifier.y_pred)
    test_set_x, _ = load_data(dataset)[2]
    test_set_x = test_set_x.get_value()
    predicted_values = predict_model(test_set_x[:count])
    print("Predicted values for the first", count, "examples in test set:")
    print(predicted_values)
    return predicted_values


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--dataset", default=None, help="MNIST folder or mnist.pkl.gz")
    args = parser.parse_args(argv)
    theano.config.floatX = "float32"
    sgd_optimization_mnist(n_epochs=args.epochs, dataset=args.dataset)
    if os.path.exists("best_model.pkl"):
        predict(dataset=args.dataset)


if __name__ == "__main__":
    sys.exit(main())
