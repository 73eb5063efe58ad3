"""Graphs and shared variables pickle: values travel, unpickled graphs compile."""
import pickle

import numpy as np

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano import function, shared


def test_shared_variable_round_trip():
    w = shared(np.arange(6, dtype="float32").reshape(2, 3), name="W")
    w.default_update = w * 2
    clone = pickle.loads(pickle.dumps(w))
    assert clone is not w and clone.name == "W" and clone.type == w.type
    np.testing.assert_array_equal(clone.get_value(), w.get_value())
    clone.set_value(np.zeros((2, 3), "float32"))
    assert w.get_value().sum() == 15.0       # separate storage
    assert clone.default_update.owner is not None


def test_trained_model_pickles_and_compiles_a_predictor():
    # The tutorials pickle a trained classifier and later compile a predictor from it.
    rng = np.random.RandomState(0)
    x = T.dmatrix("x")
    w = shared(rng.randn(4, 3), name="W")
    b = shared(np.zeros(3), name="b")
    scores = T.dot(x, w) + b
    p_y = T.exp(scores) / T.exp(scores).sum(axis=1, keepdims=True)
    y_pred = T.argmax(p_y, axis=1)
    data = rng.randn(5, 4)
    expected = function([x], [p_y, y_pred])(data)
    classifier = {"input": x, "p_y": p_y, "y_pred": y_pred, "params": [w, b]}
    restored = pickle.loads(pickle.dumps(classifier))
    predict = function([restored["input"]], [restored["p_y"], restored["y_pred"]])
    for got, want in zip(predict(data), expected):
        np.testing.assert_allclose(got, want)
    rw, rb = restored["params"]
    assert rw.name == "W" and rb.name == "b"
    # the restored graph uses the restored shared variables
    rw.set_value(np.zeros((4, 3)))
    np.testing.assert_allclose(predict(data)[0], np.full((5, 3), 1 / 3))


def test_graph_with_gradients_indexing_and_constants_pickles():
    x = T.dvector("x")
    k = T.lscalar("k")
    cost = (T.tanh(x[1:]) ** 2).sum() + x[k] * 3 + T.constant(np.ones(1)).sum()
    g = T.grad(cost, x)
    x2, k2, cost2, g2 = pickle.loads(pickle.dumps((x, k, cost, g)))
    values = (np.array([0.5, -1.0, 2.0]), 0)
    want = function([x, k], [cost, g])(*values)
    got = function([x2, k2], [cost2, g2])(*values)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b)


def test_pickled_state_is_the_expression_graph():
    x = T.dmatrix("x")
    w = shared(np.ones((2, 2)), name="W")
    y = T.dot(x, w)
    payload = pickle.dumps(y)
    assert b"theano_shared" not in payload     # no workspace names
    assert b"_lower_dot" in payload             # the op, by name


def test_function_outputs_survive_reloading_in_a_fresh_graph():
    with theano.change_flags(floatX="float32"):
        x = T.matrix("x")
        w = shared(np.full((3, 2), 0.5, "float32"))
        y = T.exp(T.dot(x, w))
        x2, y2 = pickle.loads(pickle.dumps((x, y)))
        out = function([x2], y2)(np.ones((1, 3), "float32"))
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, np.exp(np.full((1, 2), 1.5)), rtol=1e-6)
