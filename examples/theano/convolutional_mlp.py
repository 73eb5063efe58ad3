"""LeNet on MNIST: two convolution + max-pooling layers, a tanh layer and a softmax.

The classic Theano tutorial program, run on Dragon: only the imports differ.

    python examples/theano/convolutional_mlp.py --epochs 10

Each LeNetConvPoolLayer convolves its input with a bank of 5x5 filters, max-pools
2x2 blocks and applies tanh after adding a bias per feature map. The second
layer's maps are flattened into a fully connected tanh layer, whose output a
logistic regression classifies. Training is minibatch SGD with early stopping.
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
from dragon.vm.theano.tensor.nnet import conv2d
from dragon.vm.theano.tensor.signal import pool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from logistic_sgd import LogisticRegression  # noqa: E402
from mlp import HiddenLayer  # noqa: E402


class LeNetConvPoolLayer(object):
    """A convolution layer followed by max pooling."""

    def __init__(self, rng, input, filter_shape, image_shape, poolsize=(2, 2)):
        """filter_shape: (number of filters, input maps, filter height, filter width);
        image_shape: (batch size, input maps, image height, image width)."""
        assert image_shape[1] == filter_shape[1]
        self.input = input
        # each hidden unit sees "input maps * filter height * filter width" inputs, and
        # each unit of the layer below gets gradients from "filters * filter area / pool area"
        fan_in = numpy.prod(filter_shape[1:])
        fan_out = filter_shape[0] * numpy.prod(filter_shape[2:]) // numpy.prod(poolsize)
        W_bound = numpy.sqrt(6.0 / (fan_in + fan_out))
        self.W = theano.shared(
            numpy.asarray(rng.uniform(low=-W_bound, high=W_bound, size=filter_shape),
                          dtype=theano.config.floatX),
            borrow=True)
        self.b = theano.shared(value=numpy.zeros((filter_shape[0],), dtype=theano.config.floatX),
                               borrow=True)

        conv_out = conv2d(input=input, filters=self.W, filter_shape=filter_shape,
                          input_shape=image_shape)
        # the old pooling argument names, as the tutorial has them
        pooled_out = pool.pool_2d(input=conv_out, ds=poolsize, ignore_border=True)
        # the bias is a vector: make it (1, n_filters, 1, 1) to add it to every map
        self.output = T.tanh(pooled_out + self.b.dimshuffle("x", 0, "x", "x"))
        self.params = [self.W, self.b]


def evaluate_lenet5(learning_rate=0.1, n_epochs=200, dataset=None, nkerns=(20, 50),
                    batch_size=500, n_hidden=500, patience=10000, seed=23455, n_valid=1000,
                    verbose=True):
    """Train LeNet; returns (best validation error, its test error, epochs run)."""
    rng = numpy.random.RandomState(seed)
    datasets = load_data(dataset, n_valid=n_valid)
    train_set_x, train_set_y = datasets[0]
    valid_set_x, valid_set_y = datasets[1]
    test_set_x, test_set_y = datasets[2]

    n_train_batches = train_set_x.get_value(borrow=True).shape[0] // batch_size
    n_valid_batches = valid_set_x.get_value(borrow=True).shape[0] // batch_size
    n_test_batches = test_set_x.get_value(borrow=True).shape[0] // batch_size

    index = T.lscalar()
    x = T.matrix("x")
    y = T.ivector("y")

    if verbose:
        print("... building the model")
    # (batch_size, 28 * 28) rasterized images -> a 4-d tensor of one-map images
    layer0_input = x.reshape((batch_size, 1, 28, 28))
    # 28x28 -> conv 24x24 -> pool 12x12
    layer0 = LeNetConvPoolLayer(rng, input=layer0_input, image_shape=(batch_size, 1, 28, 28),
                                filter_shape=(nkerns[0], 1, 5, 5), poolsize=(2, 2))
    # 12x12 -> conv 8x8 -> pool 4x4
    layer1 = LeNetConvPoolLayer(rng, input=layer0.output,
                                image_shape=(batch_size, nkerns[0], 12, 12),
                                filter_shape=(nkerns[1], nkerns[0], 5, 5), poolsize=(2, 2))
    # (batch_size, nkerns[1], 4, 4) -> (batch_size, nkerns[1] * 4 * 4)
    layer2_input = layer1.output.flatten(2)
    layer2 = HiddenLayer(rng, input=layer2_input, n_in=nkerns[1] * 4 * 4, n_out=n_hidden,
                         activation=T.tanh)
    layer3 = LogisticRegression(input=layer2.output, n_in=n_hidden, n_out=10)
    cost = layer3.negative_log_likelihood(y)

    test_model = theano.function(
        [index], layer3.errors(y),
        givens={x: test_set_x[index * batch_size: (index + 1) * batch_size],
                y: test_set_y[index * batch_size: (index + 1) * batch_size]})
    validate_model = theano.function(
        [index], layer3.errors(y),
        givens={x: valid_set_x[index * batch_size: (index + 1) * batch_size],
                y: valid_set_y[index * batch_size: (index + 1) * batch_size]})

    params = layer3.params + layer2.params + layer1.params + layer0.params
    grads = T.grad(cost, params)
    updates = [(param_i, param_i - learning_rate * grad_i)
               for param_i, grad_i in zip(params, grads)]
    train_model = theano.function(
        [index], cost, updates=updates,
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
            iteration = (epoch - 1) * n_train_batches + minibatch_index
            if verbose and iteration % 100 == 0:
                print("training @ iter = ", iteration)
            train_model(minibatch_index)
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
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--learning-rate", type=float, default=0.1)
    parser.add_argument("--dataset", default=None, help="MNIST folder or mnist.pkl.gz")
    args = parser.parse_args(argv)
    theano.config.floatX = "float32"
    evaluate_lenet5(learning_rate=args.learning_rate, n_epochs=args.epochs,
                    batch_size=args.batch_size, dataset=args.dataset)


if __name__ == "__main__":
    sys.exit(main())
