"""A restricted Boltzmann machine on MNIST trained by (persistent) contrastive divergence.

The classic Theano tutorial program, run on Dragon: only the imports differ.

    python examples/theano/rbm.py --epochs 15

The Gibbs chain is a ``theano.scan`` whose steps draw binomial samples from a
``RandomStreams``; the gradient of the free-energy difference treats the chain's
end as a constant (``consider_constant``). With a persistent chain (PCD) the
chain's state is a shared variable updated every step, and the monitored cost is a
stochastic pseudo-likelihood; without one (CD-k) it is the reconstruction
cross-entropy. ``sample`` then runs a chain from test digits.
"""
from __future__ import annotations

import argparse
import sys
import timeit

import numpy

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano.mnist import load_data
from dragon.vm.theano.tensor.shared_randomstreams import RandomStreams


class RBM(object):
    """A binary-binary RBM: visible units v, hidden units h, energy -b'v - c'h - h'Wv."""

    def __init__(self, input=None, n_visible=784, n_hidden=500, W=None, hbias=None,
                 vbias=None, numpy_rng=None, theano_rng=None):
        self.n_visible = n_visible
        self.n_hidden = n_hidden
        if numpy_rng is None:
            numpy_rng = numpy.random.RandomState(1234)
        if theano_rng is None:
            theano_rng = RandomStreams(numpy_rng.randint(2 ** 30))
        if W is None:
            bound = 4 * numpy.sqrt(6.0 / (n_hidden + n_visible))
            initial_W = numpy.asarray(numpy_rng.uniform(low=-bound, high=bound,
                                                        size=(n_visible, n_hidden)),
                                      dtype=theano.config.floatX)
            W = theano.shared(value=initial_W, name="W", borrow=True)
        if hbias is None:
            hbias = theano.shared(value=numpy.zeros(n_hidden, dtype=theano.config.floatX),
                                  name="hbias", borrow=True)
        if vbias is None:
            vbias = theano.shared(value=numpy.zeros(n_visible, dtype=theano.config.floatX),
                                  name="vbias", borrow=True)
        self.input = T.matrix("input") if input is None else input
        self.W = W
        self.hbias = hbias
        self.vbias = vbias
        self.theano_rng = theano_rng
        self.params = [self.W, self.hbias, self.vbias]

    def free_energy(self, v_sample):
        """F(v) = -b'v - sum_j log(1 + exp(c_j + W_j v))."""
        wx_b = T.dot(v_sample, self.W) + self.hbias
        vbias_term = T.dot(v_sample, self.vbias)
        hidden_term = T.sum(T.log(1 + T.exp(wx_b)), axis=1)
        return -hidden_term - vbias_term

    def propup(self, vis):
        """(pre-sigmoid activation, mean) of the hidden units given the visible ones."""
        pre_sigmoid_activation = T.dot(vis, self.W) + self.hbias
        return [pre_sigmoid_activation, T.nnet.sigmoid(pre_sigmoid_activation)]

    def sample_h_given_v(self, v0_sample):
        pre_sigmoid_h1, h1_mean = self.propup(v0_sample)
        h1_sample = self.theano_rng.binomial(size=h1_mean.shape, n=1, p=h1_mean,
                                             dtype=theano.config.floatX)
        return [pre_sigmoid_h1, h1_mean, h1_sample]

    def propdown(self, hid):
        """(pre-sigmoid activation, mean) of the visible units given the hidden ones."""
        pre_sigmoid_activation = T.dot(hid, self.W.T) + self.vbias
        return [pre_sigmoid_activation, T.nnet.sigmoid(pre_sigmoid_activation)]

    def sample_v_given_h(self, h0_sample):
        pre_sigmoid_v1, v1_mean = self.propdown(h0_sample)
        v1_sample = self.theano_rng.binomial(size=v1_mean.shape, n=1, p=v1_mean,
                                             dtype=theano.config.floatX)
        return [pre_sigmoid_v1, v1_mean, v1_sample]

    def gibbs_hvh(self, h0_sample):
        """One Gibbs step from the hidden state."""
        pre_sigmoid_v1, v1_mean, v1_sample = self.sample_v_given_h(h0_sample)
        pre_sigmoid_h1, h1_mean, h1_sample = self.sample_h_given_v(v1_sample)
        return [pre_sigmoid_v1, v1_mean, v1_sample, pre_sigmoid_h1, h1_mean, h1_sample]

    def gibbs_vhv(self, v0_sample):
        """One Gibbs step from the visible state."""
        pre_sigmoid_h1, h1_mean, h1_sample = self.sample_h_given_v(v0_sample)
        pre_sigmoid_v1, v1_mean, v1_sample = self.sample_v_given_h(h1_sample)
        return [pre_sigmoid_h1, h1_mean, h1_sample, pre_sigmoid_v1, v1_mean, v1_sample]

    def get_cost_updates(self, lr=0.1, persistent=None, k=1):
        """(monitoring cost, updates) of one CD-k step, or PCD-k with ``persistent``."""
        pre_sigmoid_ph, ph_mean, ph_sample = self.sample_h_given_v(self.input)
        chain_start = ph_sample if persistent is None else persistent
        (
            [pre_sigmoid_nvs, nv_means, nv_samples, pre_sigmoid_nhs, nh_means, nh_samples],
            updates,
        ) = theano.scan(self.gibbs_hvh, outputs_info=[None, None, None, None, None, chain_start],
                        n_steps=k, name="gibbs_hvh")
        chain_end = nv_samples[-1]
        cost = T.mean(self.free_energy(self.input)) - T.mean(self.free_energy(chain_end))
        # the chain's end is a sample: no gradient flows through it
        gparams = T.grad(cost, self.params, consider_constant=[chain_end])
        for gparam, param in zip(gparams, self.params):
            updates[param] = param - gparam * T.cast(lr, dtype=theano.config.floatX)
        if persistent is not None:
            updates[persistent] = nh_samples[-1]
            monitoring_cost = self.get_pseudo_likelihood_cost(updates)
        else:
            monitoring_cost = self.get_reconstruction_cost(updates, pre_sigmoid_nvs[-1])
        return monitoring_cost, updates

    def get_pseudo_likelihood_cost(self, updates):
        """A stochastic pseudo-likelihood: flip one visible bit per call (cycling)."""
        bit_i_idx = theano.shared(value=0, name="bit_i_idx")
        xi = T.round(self.input)
        fe_xi = self.free_energy(xi)
        xi_flip = T.set_subtensor(xi[:, bit_i_idx], 1 - xi[:, bit_i_idx])
        fe_xi_flip = self.free_energy(xi_flip)
        cost = T.mean(self.n_visible * T.log(T.nnet.sigmoid(fe_xi_flip - fe_xi)))
        updates[bit_i_idx] = (bit_i_idx + 1) % self.n_visible
        return cost

    def get_reconstruction_cost(self, updates, pre_sigmoid_nv):
        """Mean cross-entropy between the input and the chain's reconstruction.

        Written with the pre-sigmoid activation so that log(sigmoid(.)) becomes softplus.
        """
        return T.mean(T.sum(self.input * T.log(T.nnet.sigmoid(pre_sigmoid_nv))
                            + (1 - self.input) * T.log(1 - T.nnet.sigmoid(pre_sigmoid_nv)),
                            axis=1))


def test_rbm(learning_rate=0.1, training_epochs=15, dataset=None, batch_size=20,
             n_chains=20, n_samples=3, gibbs_steps=1000, n_hidden=500, persistent=True,
             n_train=None, k=15, verbose=True):
    """Train an RBM by PCD-k (or CD-k); returns (monitoring cost per epoch, samples, the RBM).

    The pseudo-likelihood cost flips one visible bit per call, cycling through the
    pixels: epochs compare only when each covers all of them.
    """
    datasets = load_data(dataset)
    train_set_x, _ = datasets[0]
    test_set_x, _ = datasets[2]
    n_examples = train_set_x.get_value(borrow=True).shape[0]
    if n_train is not None:
        n_examples = min(n_examples, n_train)
    n_train_batches = n_examples // batch_size

    index = T.lscalar()
    x = T.matrix("x")
    rng = numpy.random.RandomState(123)
    theano_rng = RandomStreams(rng.randint(2 ** 30))

    persistent_chain = None
    if persistent:
        persistent_chain = theano.shared(numpy.zeros((batch_size, n_hidden),
                                                     dtype=theano.config.floatX), borrow=True)
    rbm = RBM(input=x, n_visible=28 * 28, n_hidden=n_hidden, numpy_rng=rng,
              theano_rng=theano_rng)
    cost, updates = rbm.get_cost_updates(lr=learning_rate, persistent=persistent_chain, k=k)

    train_rbm = theano.function(
        [index], cost, updates=updates,
        givens={x: train_set_x[index * batch_size: (index + 1) * batch_size]},
        name="train_rbm")

    costs = []
    start_time = timeit.default_timer()
    for epoch in range(training_epochs):
        mean_cost = [train_rbm(batch_index) for batch_index in range(n_train_batches)]
        costs.append(float(numpy.mean(mean_cost)))
        if verbose:
            print(f"Training epoch {epoch}, cost is {costs[-1]}")
    end_time = timeit.default_timer()
    if verbose:
        print(f"Training took {(end_time - start_time) / 60.:f} minutes")

    samples = sample(rbm, test_set_x, n_chains, n_samples, gibbs_steps, rng)
    return costs, samples, rbm


def sample(rbm, test_set_x, n_chains=20, n_samples=10, plot_every=1000, rng=None):
    """Run ``n_chains`` Gibbs chains from random test digits; returns the visible means
    every ``plot_every`` steps, (n_samples, n_chains, 784)."""
    rng = numpy.random.RandomState(123) if rng is None else rng
    number_of_test_samples = test_set_x.get_value(borrow=True).shape[0]
    test_idx = rng.randint(number_of_test_samples - n_chains)
    persistent_vis_chain = theano.shared(numpy.asarray(
        test_set_x.get_value(borrow=True)[test_idx:test_idx + n_chains],
        dtype=theano.config.floatX))
    (
        [presig_hids, hid_mfs, hid_samples, presig_vis, vis_mfs, vis_samples],
        updates,
    ) = theano.scan(rbm.gibbs_vhv, outputs_info=[None, None, None, None, None,
                                                 persistent_vis_chain],
                    n_steps=plot_every, name="gibbs_vhv")
    # the chain goes on from where the last call stopped
    updates.update({persistent_vis_chain: vis_samples[-1]})
    sample_fn = theano.function([], [vis_mfs[-1], vis_samples[-1]], updates=updates,
                                name="sample_fn")
    return numpy.stack([sample_fn()[0] for _ in range(n_samples)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--dataset", default=None, help="MNIST folder or mnist.pkl.gz")
    args = parser.parse_args(argv)
    theano.config.floatX = "float32"
    test_rbm(training_epochs=args.epochs, dataset=args.dataset)


if __name__ == "__main__":
    sys.exit(main())
