"""Caffe64 networks lowered to Dragon ops, and the original's training and testing loops.

    net = Network.from_file("mnist/network5.txt")
    optim = Optim.from_file("mnist/optimsetting.txt")
    params = train(net, optim, X, y, seed=0)       # X (N, 784) float32, y (N,) class indices
    posteriors = test(net, params, X_test)          # (N_test, 10) softmax outputs

Layer by layer: ``lin`` -> FullyConnected (W of shape (F, K), transpose_w=False),
``rel`` -> Relu, ``tnh`` -> Tanh, ``smx`` -> Softmax, ``sce`` -> SoftmaxCrossEntropy
(testing runs Softmax), ``l2l`` -> EuclideanLoss (testing outputs the raw values).

The original sums gradients over the minibatch and then divides the learning
rate by the minibatch size B, after adding weight decay to the summed
gradient. The same update follows from the mean loss (Dragon's losses
normalised by B) with weight decay ``decay / B``: v = m v + lr (g/B + decay/B w).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

import dragon
from dragon.vm.caffe64.errors import Caffe64Error
from dragon.vm.caffe64.weights import init_params

#: the original prints progress every 20 minibatches, with the loss averaged over them
PRINT_EVERY = 20
_instances = itertools.count()


@dataclass
class Lowered:
    """A network as Dragon tensors: input, labels (if training), output, loss, parameters."""
    x: dragon.Tensor
    output: dragon.Tensor
    params: list                 # [(W, b) variables or None], one per layer
    prefix: str                  # every tensor of this network is named prefix/...
    labels: dragon.Tensor | None = None
    loss: dragon.Tensor | None = None

    def variables(self):
        return [v for p in self.params if p is not None for v in p]

    def values(self):
        """The parameters' current values: ``[(W, b) or None]`` as numpy arrays."""
        return [None if p is None else (p[0].get_value(), p[1].get_value())
                for p in self.params]

    def release(self):
        """Drop this network's arrays (parameters, solver history) from the workspace."""
        for name in dragon.workspace.tensors():
            if name.startswith(self.prefix + "/"):
                dragon.workspace.remove_tensor(name)


def lower(network, params, training=False) -> Lowered:
    """Build ``network`` on Dragon tensors with ``params`` as variables.

    ``training`` ends a classifier in SoftmaxCrossEntropy and a regressor in
    EuclideanLoss (with a labels placeholder); otherwise the output is what
    ``test`` writes: softmax posteriors for ``sce``, raw values for ``l2l``.

    >>> low = lower(net, init_params(net), training=True)
    >>> low.loss.shape
    ()
    """
    prefix = f"caffe64_{next(_instances)}"
    batch = network.batch
    x = dragon.placeholder((batch, network.features), "float32", name=f"{prefix}/X")
    h, variables, labels, loss = x, [], None, None
    for index, (layer, p) in enumerate(zip(network.layers, params, strict=True)):
        name = f"{prefix}/{index}_{layer.kind}"
        if layer.kind == "lin":
            W = dragon.variable(np.asarray(p[0], np.float32), name=f"{name}/W")
            b = dragon.variable(np.asarray(p[1], np.float32), name=f"{name}/b")
            variables.append((W, b))
            h = dragon.ops.fully_connected(h, W, b, transpose_w=False, name=name)
            continue
        variables.append(None)
        if layer.kind == "rel":
            h = dragon.ops.relu(h, name=name)
        elif layer.kind == "tnh":
            h = dragon.ops.tanh(h, name=name)
        elif layer.kind == "smx" or (layer.kind == "sce" and not training):
            h = dragon.ops.softmax(h, axis=1, name=name)
        elif layer.kind == "sce":
            labels = dragon.placeholder((batch,), "int64", name=f"{prefix}/Y")
            loss, h = dragon.ops.softmax_cross_entropy(h, labels, axis=1,
                                                       normalization="BATCH_SIZE", name=name)
        elif layer.kind == "l2l" and training:
            labels = dragon.placeholder((batch, layer.outputs), "float32", name=f"{prefix}/Y")
            loss = dragon.ops.euclidean_loss(h, labels, name=name)
    return Lowered(x, h, variables, prefix, labels, loss)


def train(network, optim, X, Y, params=None, seed=None, log=print) -> list:
    """Train ``network`` on samples ``X`` (N, F) and targets ``Y`` as the original does.

    ``Y`` holds class indices (N,) for ``sce`` or values (N, K) for ``l2l``. Each
    epoch visits a fresh random permutation in minibatches of the network's B
    (the N mod B samples left over sit out that epoch); after every ``optim.step``
    epochs the LR is multiplied by ``optim.factor``. ``params`` continues from
    given weights (default: the original's random start). ``log`` gets each
    progress line. Returns ``[(W, b) or None per layer]`` as numpy arrays.

    >>> params = train(net, optim, X, y, seed=0, log=lambda line: None)
    """
    if network.loss is None:
        raise Caffe64Error(f"{network.path}: cannot train a network that does not end in a "
                           f"loss ('sce' or 'l2l'); its last layer is "
                           f"'{network.layers[-1].kind}'")
    X, Y = _check_data(network, X, Y)
    if len(X) < network.batch:
        raise Caffe64Error(f"{len(X)} samples do not fill one minibatch of {network.batch} "
                           f"({network.path} line {network.layers[0].line})")
    if params is None:
        params = init_params(network, seed)
    low = lower(network, params, training=True)
    try:
        _run_epochs(network, optim, low, X, Y, seed, log)
        return low.values()
    finally:
        low.release()


def _run_epochs(network, optim, low, X, Y, seed, log):
    batch = network.batch
    batches = len(X) // batch
    solver = dragon.updaters.SGD(lr=optim.lr, momentum=optim.momentum,
                                 weight_decay=optim.weight_decay / batch)
    step = dragon.function([low.x, low.labels], low.loss,
                           updates=solver.minimize(low.loss, low.variables()),
                           name=f"{network.path}:train")
    rng = np.random.default_rng(seed)
    # The original's reported l2l loss is sum((y - t)^2) / B: twice EuclideanLoss.
    shown_scale = 2.0 if network.loss == "l2l" else 1.0
    lr = np.float32(optim.lr)
    running = 0.0  # like the original, carried over epoch ends until the next print
    for epoch in range(optim.epochs):
        order = rng.permutation(len(X))
        for i in range(batches):
            rows = order[i * batch:(i + 1) * batch]
            running += float(step(X[rows], Y[rows]))
            if (i + 1) % PRINT_EVERY == 0:
                shown = shown_scale * running / PRINT_EVERY
                log(f"[Training] Epoch {_of(epoch + 1, optim.epochs)} MBIter "
                    f"{_of(i + 1, batches)} LR {lr:f} Loss {shown:f}")
                running = 0.0
        log("")
        if (epoch + 1) % optim.step == 0:
            lr = np.float32(lr * np.float32(optim.factor))   # float32, as the original keeps it
            solver.lr = lr
            log(f"LR Drop. Multiplying by {np.float32(optim.factor):f}")


def test(network, params, X, log=print) -> np.ndarray:
    """The network's outputs for ``X`` (N, F): softmax posteriors for ``sce``, raw values
    for ``l2l``, the last layer's values otherwise. Runs in minibatches of B in order.

    >>> test(net, params, X_test).shape
    (2000, 10)
    """
    X = _as_matrix(X, network.features, "X")
    low = lower(network, params, training=False)
    try:
        return _run_minibatches(network, low, X, log)
    finally:
        low.release()


def _run_minibatches(network, low, X, log):
    batch = network.batch
    forward = dragon.function([low.x], low.output, name=f"{network.path}:test")
    outputs = np.empty((len(X), network.outputs), np.float32)
    full = len(X) // batch   # the original counts (and prints) only full minibatches
    padded = np.zeros((batch, network.features), np.float32)
    for i, start in enumerate(range(0, len(X), batch)):
        rows = X[start:start + batch]
        if len(rows) < batch:  # run a whole minibatch; only the real rows are kept
            padded[:len(rows)] = rows
            rows = padded
        outputs[start:start + batch] = forward(rows)[:len(X) - start]
        if (i + 1) % PRINT_EVERY == 0:
            log(f"[Testing] Epoch 1 / 1 MBIter {_of(i + 1, full)}")
    return outputs


def _of(done, total):
    """``07 / 15``: the count zero-padded to the width of the total, as the original prints."""
    width = len(str(total))
    return f"{done:0{width}d} / {total}"


def _as_matrix(X, cols, what):
    X = np.asarray(X, np.float32)
    if X.ndim != 2 or X.shape[1] != cols:
        raise Caffe64Error(f"{what} has shape {X.shape}; the network takes {cols} numbers "
                           f"a sample, so expected (N, {cols})")
    return np.ascontiguousarray(X)


def _check_data(network, X, Y):
    X = _as_matrix(X, network.features, "X")
    if network.loss == "sce":
        Y = np.asarray(Y).reshape(-1)
        if Y.dtype.kind not in "iu":
            ints = Y.astype(np.int64)
            if not np.array_equal(ints, Y):
                raise Caffe64Error("Y must hold integer class indices for 'sce'")
            Y = ints
        Y = Y.astype(np.int64)
        bad = (Y < 0) | (Y >= network.outputs)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise Caffe64Error(f"Y[{i}] = {Y[i]} is not a class index in "
                               f"0..{network.outputs - 1}")
    else:
        Y = np.asarray(Y, np.float32)
        if Y.ndim == 1 and network.outputs == 1:
            Y = Y[:, None]
        Y = _as_matrix(Y, network.outputs, "Y")
    if len(Y) != len(X):
        raise Caffe64Error(f"X has {len(X)} samples but Y has {len(Y)}")
    return X, Y
