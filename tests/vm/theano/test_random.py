"""Random streams: shared_randomstreams.RandomStreams and rng_mrg.MRG_RandomStreams.

Determinism (same seed, same draws), draws advancing per call unless
no_default_updates says otherwise, the Theano tutorial's "Using Random Numbers"
programs, RandomStreams' numbers equal to numpy RandomState's under Theano's seeding,
statistics of every distribution, symbolic sizes and parameters, scan and pickling.
"""
import pickle

import numpy as np
import pytest

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano.sandbox.rng_mrg import MRG_RandomStreams
from dragon.vm.theano.tensor.shared_randomstreams import RandomStreams

STREAMS = [RandomStreams, MRG_RandomStreams]


# -- the tutorial ------------------------------------------------------------------------------

def test_tutorial_brief_example():
    srng = RandomStreams(seed=234)
    rv_u = srng.uniform((2, 2))
    rv_n = srng.normal((2, 2))
    f = theano.function([], rv_u)
    g = theano.function([], rv_n, no_default_updates=True)
    nearly_zeros = theano.function([], rv_u + rv_u - 2 * rv_u)
    f_val0, f_val1 = f(), f()
    assert f_val0.shape == (2, 2) and not np.allclose(f_val0, f_val1)
    g_val0, g_val1 = g(), g()
    np.testing.assert_array_equal(g_val0, g_val1)
    np.testing.assert_allclose(nearly_zeros(), np.zeros((2, 2)), atol=1e-15)
    # Theano's numbers: the stream's seed generator gives each variable its RandomState seed
    seedgen = np.random.RandomState(234)
    u_rng = np.random.RandomState(int(seedgen.randint(2 ** 30)))
    n_rng = np.random.RandomState(int(seedgen.randint(2 ** 30)))
    np.testing.assert_array_equal(f_val0, u_rng.uniform(0.0, 1.0, (2, 2)))
    np.testing.assert_array_equal(f_val1, u_rng.uniform(0.0, 1.0, (2, 2)))
    np.testing.assert_array_equal(g_val0, n_rng.normal(0.0, 1.0, (2, 2)))


def test_tutorial_seeding_streams():
    srng = RandomStreams(seed=234)
    rv_u = srng.uniform((2, 2))
    rv_n = srng.normal((2, 2))
    f = theano.function([], rv_u)
    rng_val = rv_u.rng.get_value(borrow=True)
    rng_val.seed(89234)
    rv_u.rng.set_value(rng_val, borrow=True)
    np.testing.assert_array_equal(f(), np.random.RandomState(89234).uniform(size=(2, 2)))
    srng.seed(902340)
    seedgen = np.random.RandomState(902340)
    u_seed, n_seed = (int(seedgen.randint(2 ** 30)) for _ in range(2))
    np.testing.assert_array_equal(f(), np.random.RandomState(u_seed).uniform(size=(2, 2)))
    g = theano.function([], rv_n)
    np.testing.assert_array_equal(g(), np.random.RandomState(n_seed).normal(size=(2, 2)))


def test_tutorial_sharing_streams_between_functions():
    srng = RandomStreams(seed=234)
    rv_u = srng.uniform((2, 2))
    f = theano.function([], rv_u)
    nearly_zeros = theano.function([], rv_u + rv_u - 2 * rv_u)
    state_after_v0 = rv_u.rng.get_value().get_state()
    nearly_zeros()       # advances rv_u's generator too
    v1 = f()
    rng = rv_u.rng.get_value(borrow=True)
    rng.set_state(state_after_v0)
    rv_u.rng.set_value(rng, borrow=True)
    v2 = f()
    v3 = f()
    assert not np.allclose(v1, v2)
    np.testing.assert_array_equal(v1, v3)


@pytest.mark.parametrize("streams", STREAMS)
def test_tutorial_copying_random_state_between_graphs(streams):
    class Graph:
        def __init__(self, seed=123):
            self.rng = streams(seed)
            self.y = self.rng.uniform(size=(1,))

    g1, g2 = Graph(seed=123), Graph(seed=987)
    f1, f2 = theano.function([], g1.y), theano.function([], g2.y)
    assert f1() != f2()
    for su1, su2 in zip(g1.rng.state_updates, g2.rng.state_updates):
        su2[0].set_value(su1[0].get_value())
    np.testing.assert_array_equal(f1(), f2())


# -- determinism and updates -----------------------------------------------------------------

@pytest.mark.parametrize("streams", STREAMS)
def test_same_seed_same_draws_and_draws_advance(streams):
    def draws(seed):
        srng = streams(seed)
        u = srng.uniform((3,))
        b = srng.binomial(size=(4,), p=0.5)
        f = theano.function([], [u, b])
        return [np.concatenate([v.ravel() for v in f()]) for _ in range(3)]
    first, again, other = draws(42), draws(42), draws(43)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], first[1])
    assert not np.allclose(first[0], other[0])


@pytest.mark.parametrize("streams", STREAMS)
def test_no_default_updates_freezes_the_draws(streams):
    srng = streams(7)
    u = srng.uniform((5,))
    frozen = theano.function([], u, no_default_updates=True)
    np.testing.assert_array_equal(frozen(), frozen())
    frozen_by_list = theano.function([], u, no_default_updates=[u.rng])
    np.testing.assert_array_equal(frozen_by_list(), frozen_by_list())
    moving = theano.function([], u)
    assert not np.allclose(moving(), moving())
    explicit = theano.function([], u, no_default_updates=True, updates=srng.updates())
    assert not np.allclose(explicit(), explicit())


@pytest.mark.parametrize("streams", STREAMS)
def test_seed_restarts_every_variable(streams):
    srng = streams(5)
    u = srng.uniform((4,))
    f = theano.function([], u)
    first = f()
    f()
    srng.seed(5)
    np.testing.assert_array_equal(f(), first)


# -- distributions ------------------------------------------------------------------------------

N = 20000


@pytest.mark.parametrize("streams", STREAMS)
def test_uniform_and_normal_statistics(streams):
    srng = streams(11)
    u = srng.uniform((N,), low=-2.0, high=4.0)
    n = srng.normal((N,), avg=1.5, std=0.5)
    u_val, n_val = theano.function([], [u, n])()
    assert -2.0 <= u_val.min() and u_val.max() < 4.0
    assert u_val.mean() == pytest.approx(1.0, abs=0.05)
    assert u_val.std() == pytest.approx(6 / np.sqrt(12), abs=0.03)
    assert n_val.mean() == pytest.approx(1.5, abs=0.02)
    assert n_val.std() == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("streams", STREAMS)
def test_binomial_with_symbolic_probabilities(streams):
    srng = streams(13)
    p = T.dvector("p")
    b = srng.binomial(size=(N // 10, 4), n=1, p=p, dtype="float32")
    assert b.dtype == "float32"
    probs = np.array([0.0, 0.2, 0.7, 1.0])
    value = theano.function([p], b)(probs)
    assert set(np.unique(value)) <= {0.0, 1.0}
    np.testing.assert_allclose(value.mean(axis=0), probs, atol=0.03)
    assert streams(1).binomial(size=(2,)).dtype == "int64"


def test_randomstreams_binomial_counts_and_random_integers():
    srng = RandomStreams(17)
    counts = srng.binomial(size=(N,), n=5, p=0.3)
    ints = srng.random_integers(size=(N,), low=-2, high=3)
    c, i = theano.function([], [counts, ints])()
    assert c.min() >= 0 and c.max() <= 5 and c.mean() == pytest.approx(1.5, abs=0.05)
    assert set(np.unique(i)) == set(range(-2, 4))


def test_mrg_multinomial_gives_one_hot_rows_with_the_probabilities():
    srng = MRG_RandomStreams(19)
    pvals = T.dmatrix("pvals")
    m = srng.multinomial(pvals=pvals)
    assert m.dtype == "int64"
    probs = np.tile([0.1, 0.6, 0.3], (N // 4, 1))
    value = theano.function([pvals], m)(probs)
    np.testing.assert_array_equal(value.sum(axis=1), 1)
    np.testing.assert_allclose(value.mean(axis=0), [0.1, 0.6, 0.3], atol=0.02)
    twice = theano.function([pvals], srng.multinomial(pvals=pvals, n=2))(probs[:10])
    np.testing.assert_array_equal(twice.sum(axis=1), 2)


# -- shapes, dtypes, graphs -----------------------------------------------------------------------

@pytest.mark.parametrize("streams", STREAMS)
def test_symbolic_sizes_and_dtypes(streams):
    x = T.fmatrix("x")
    srng = streams(23)
    mask = srng.binomial(size=x.shape, n=1, p=0.75, dtype=theano.config.floatX)
    noise = srng.normal((x.shape[0], 3))
    f = theano.function([x], [mask * x, noise])
    corrupted, value = f(np.ones((6, 5), "float32"))
    assert corrupted.shape == (6, 5) and value.shape == (6, 3)
    assert f(np.ones((2, 4), "float32"))[0].shape == (2, 4)
    with theano.config.change_flags(floatX="float32"):
        assert streams(1).uniform((2,)).dtype == "float32"
        assert streams(1).normal((2,)).dtype == "float32"
    assert streams(1).uniform((2,)).dtype == theano.config.floatX
    assert streams(1).uniform((1, 3)).broadcastable == (True, False)


def test_randomstreams_size_from_parameters():
    srng = RandomStreams(29)
    low = T.dvector("low")
    u = srng.uniform(low=low, high=low + 1)
    value = theano.function([low], u)(np.array([0.0, 10.0, 20.0]))
    assert value.shape == (3,)
    assert np.all((value >= [0, 10, 20]) & (value < [1, 11, 21]))


@pytest.mark.parametrize("streams", STREAMS)
def test_draws_inside_scan_differ_per_step_and_per_call(streams):
    srng = streams(31)
    outputs, updates = theano.scan(lambda: srng.uniform((3,)), n_steps=4)
    f = theano.function([], outputs, updates=updates)
    first = f()
    assert first.shape == (4, 3)
    assert len({tuple(row) for row in first}) == 4
    assert not np.allclose(first, f())


@pytest.mark.parametrize("streams", STREAMS)
def test_random_graphs_pickle(streams):
    srng = streams(37)
    x = T.dvector("x")
    y = x * srng.uniform((3,))
    f = theano.function([x], y)
    f(np.ones(3))
    x2, y2 = pickle.loads(pickle.dumps((x, y)))
    # the copy continues from the pickled state: its next draw is the original's next draw
    np.testing.assert_array_equal(theano.function([x2], y2)(np.ones(3)), f(np.ones(3)))


def test_random_variables_have_no_gradient():
    srng = RandomStreams(41)
    p = T.dvector("p")
    x = T.dvector("x")
    sample = srng.binomial(size=(3,), p=p, dtype="float64")
    cost = (sample * x).sum()
    gx = theano.function([p, x], T.grad(cost, x))(np.full(3, 0.5), np.ones(3))
    assert set(np.unique(gx)) <= {0.0, 1.0}
    with pytest.raises(theano.gradient.DisconnectedInputError):
        T.grad(cost, p)
