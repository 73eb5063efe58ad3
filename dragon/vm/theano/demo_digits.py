"""The demo's digits classifier written as a Theano program (``dragon.demo`` runs it).

    from dragon.demo import load_digits
    from dragon.vm.theano.demo_digits import train_digits
    train_digits(load_digits())          # test accuracy, 0.99

The same 64-64-10 network as the demo's core version: a ReLU hidden layer, softmax
cross-entropy, SGD with momentum 0.9 at learning rate 0.1, minibatches of 32 for 30
epochs, weights drawn from N(0, 0.1^2) with the same seed.
"""
from __future__ import annotations

import numpy as np


def train_digits(data, epochs=30, batch=32, hidden=64, lr=0.1, momentum=0.9, seed=0):
    """Train on (x_train float32 (n, 64), y_train int64, x_test, y_test); returns test accuracy."""
    import dragon.vm.theano as theano
    import dragon.vm.theano.tensor as T

    x_train, y_train, x_test, y_test = data
    rng = np.random.default_rng(seed)
    # the core demo's draws, in its order: W1 (hidden, 64), W2 (10, hidden); used transposed
    w1 = theano.shared((rng.standard_normal((hidden, 64)) * 0.1).astype("float32").T, "W1")
    b1 = theano.shared(np.zeros(hidden, "float32"), "b1")
    w2 = theano.shared((rng.standard_normal((10, hidden)) * 0.1).astype("float32").T, "W2")
    b2 = theano.shared(np.zeros(10, "float32"), "b2")
    params = [w1, b1, w2, b2]

    x = T.fmatrix("x")
    y = T.lvector("y")
    hid = T.nnet.relu(T.dot(x, w1) + b1)
    p_y = T.nnet.softmax(T.dot(hid, w2) + b2)
    cost = T.nnet.categorical_crossentropy(p_y, y).mean()
    lr, momentum = np.float32(lr), np.float32(momentum)    # keep the updates in float32
    updates = []
    for param, grad in zip(params, T.grad(cost, params)):
        velocity = theano.shared(np.zeros_like(param.get_value()), f"v_{param.name}")
        new_velocity = momentum * velocity - lr * grad
        updates += [(velocity, new_velocity), (param, param + new_velocity)]
    train = theano.function([x, y], cost, updates=updates, allow_input_downcast=True)
    predict = theano.function([x], T.argmax(p_y, axis=1), allow_input_downcast=True)

    for _ in range(epochs):
        order = rng.permutation(len(x_train))
        for i in range(0, len(order) - batch + 1, batch):
            idx = order[i:i + batch]
            train(x_train[idx], y_train[idx])
    return float((predict(x_test) == y_test).mean())
