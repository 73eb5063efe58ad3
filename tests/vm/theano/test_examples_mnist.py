"""The Theano tutorial programs of examples/theano train on MNIST (floatX=float32).

MNIST here is the t10k file set: the first 8,000 digits train (a slice of them
validates), the last 2,000 test. Test errors must reach: logistic regression <= 12%,
MLP <= 6%, LeNet <= 3%; the denoising autoencoder's and the RBM's costs must improve.
Epochs and minibatch sizes are smaller than the tutorials' so the file runs in a few
minutes on two cores; the programs are the tutorials' otherwise.
"""
import importlib
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import dragon.vm.theano as theano

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "mnist"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "theano"

pytestmark = pytest.mark.skipif(
    not (DATA / "t10k-images-idx3-ubyte.gz").exists() and
    not (DATA / "t10k-images-idx3-ubyte").exists(),
    reason=f"MNIST's t10k IDX files are not in {DATA}")


@pytest.fixture(autouse=True)
def float32():
    with theano.config.change_flags(floatX="float32"):
        yield


def example(name):
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    return importlib.import_module(name)


def test_logistic_regression(tmp_path):
    logistic_sgd = example("logistic_sgd")
    model = tmp_path / "best_model.pkl"
    valid_error, test_error, epochs = logistic_sgd.sgd_optimization_mnist(
        learning_rate=0.13, n_epochs=10, batch_size=100, save_to=str(model), verbose=False)
    print(f"logistic regression: validation {valid_error:.2%}, test {test_error:.2%} "
          f"after {epochs} epochs")
    assert test_error <= 0.12
    # the pickled model (graph and shared weights) compiles a predictor, as in the tutorial
    predicted = logistic_sgd.predict(str(model), count=5)
    assert predicted.shape == (5,) and predicted.dtype == np.int64


def test_mlp():
    mlp = example("mlp")
    valid_error, test_error, epochs = mlp.test_mlp(learning_rate=0.2, L1_reg=0.0, L2_reg=1e-4,
                                                   n_epochs=20, batch_size=50, n_hidden=500,
                                                   n_valid=500, verbose=False)
    print(f"MLP: validation {valid_error:.2%}, test {test_error:.2%} after {epochs} epochs")
    assert test_error <= 0.06


def test_lenet():
    convolutional_mlp = example("convolutional_mlp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # the tutorial's old 'ds' argument
        valid_error, test_error, epochs = convolutional_mlp.evaluate_lenet5(
            learning_rate=0.1, n_epochs=3, nkerns=(20, 50), batch_size=20, verbose=False)
    print(f"LeNet: validation {valid_error:.2%}, test {test_error:.2%} after {epochs} epochs")
    assert test_error <= 0.03


def test_denoising_autoencoder():
    dA = example("dA")
    history = dA.test_dA(learning_rate=0.1, training_epochs=3, batch_size=20, n_train=2000,
                         n_hidden=200, verbose=False)
    for level, costs in history.items():
        print(f"dA, {level:.0%} corruption: cost per epoch {np.round(costs, 2).tolist()}")
        assert np.all(np.isfinite(costs))
        assert costs[-1] < 0.85 * costs[0]
    # corruption makes the reconstruction harder
    assert history[0.3][-1] > history[0.0][-1]


def _reconstruction_error(model, images):
    """Mean squared error of the RBM's mean-field reconstruction of ``images``."""
    import dragon.vm.theano.tensor as T
    v = T.matrix("v")
    _, h = model.propup(v)
    _, v_mean = model.propdown(h)
    return float(theano.function([v], T.mean(T.sum((v - v_mean) ** 2, axis=1)))(images))


def test_rbm():
    from dragon.vm.theano.mnist import split_arrays
    rbm = example("rbm")
    test_images = split_arrays()[2][0][:500].astype("float32")
    untrained = rbm.RBM(n_hidden=200, numpy_rng=np.random.RandomState(123))
    costs, samples, model = rbm.test_rbm(learning_rate=0.1, training_epochs=3, batch_size=20,
                                         n_train=2000, n_hidden=200, k=1, n_chains=10,
                                         n_samples=2, gibbs_steps=20, verbose=False)
    before = _reconstruction_error(untrained, test_images)
    after = _reconstruction_error(model, test_images)
    print(f"RBM (PCD-1): reconstruction error of test digits {before:.1f} -> {after:.1f}; "
          f"pseudo-likelihood cost per epoch {np.round(costs, 2).tolist()}")
    assert np.all(np.isfinite(costs))
    assert after < 0.2 * before
    assert samples.shape == (2, 10, 784)
    assert samples.min() >= 0 and samples.max() <= 1
    cd_costs, _, _ = rbm.test_rbm(learning_rate=0.1, training_epochs=2, batch_size=20,
                                  n_train=1000, n_hidden=100, k=1, persistent=False,
                                  n_chains=2, n_samples=1, gibbs_steps=2, verbose=False)
    print(f"RBM (CD-1): reconstruction cost per epoch {np.round(cd_costs, 2).tolist()}")
    assert cd_costs[-1] > cd_costs[0]    # the negative cross-entropy rises
