"""Bad input fails in Theano's terms: TypeErrors naming the input, Theano's error classes,
and run-time shape errors naming the expression."""
import numpy as np
import pytest

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano import function
from dragon.vm.theano.gradient import DisconnectedInputError


@pytest.fixture
def f32_double():
    x = T.fmatrix("images")
    return function([x], x * 2, name="double")


def test_wrong_dtype_names_the_input(f32_double):
    with pytest.raises(TypeError) as info:
        f32_double(np.ones((2, 2)))
    text = str(info.value)
    assert 'Bad input argument with name "images"' in text and '"double"' in text
    assert "float64" in text and "allow_input_downcast" in text


def test_wrong_rank_and_broadcastable_shape(f32_double):
    with pytest.raises(TypeError, match="Wrong number of dimensions.*images|images.*Wrong number"):
        f32_double(np.ones(3, "float32"))
    r = T.frow("r")
    f = function([r], r + 1)
    with pytest.raises(TypeError, match="broadcastable"):
        f(np.ones((2, 3), "float32"))


def test_wrong_number_of_arguments(f32_double):
    with pytest.raises(TypeError, match="Missing required input.*images"):
        f32_double()
    with pytest.raises(TypeError, match="Too many arguments.*images"):
        f32_double(np.ones((1, 1), "float32"), 2)


def test_lossy_python_values():
    i = T.iscalar("i")
    f = function([i], i + 1)
    with pytest.raises(TypeError, match="cannot store accurately"):
        f(1.5)
    assert f(2.0) == 3


def test_disconnected_input_error_is_theanos():
    x, y = T.dvectors("x", "y")
    with pytest.raises(DisconnectedInputError, match="not part of the computational graph"):
        T.grad(x.sum(), y)
    assert issubclass(DisconnectedInputError, ValueError)


def test_run_time_shape_error_names_the_expression():
    a = T.dmatrix("a")
    b = T.dmatrix("b")
    f = function([a, b], T.dot(a, b))
    with pytest.raises(ValueError) as info:
        f(np.ones((2, 3)), np.ones((4, 2)))
    text = str(info.value)
    assert "dot(a, b)" in text and "(2, 3)" in text and "(4, 2)" in text
    g = function([a, b], (a + b).sum())
    g(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"\(a \+ b\)"):
        g(np.ones((2, 3)), np.ones((3, 2)))


def test_index_out_of_range_names_the_expression():
    v = T.dvector("v")
    k = T.lscalar("k")
    f = function([v, k], v[k] * 2)
    assert f(np.arange(3.), 2) == 4.0
    with pytest.raises(ValueError, match="out of bounds") as info:
        f(np.arange(3.), 5)
    assert "v" in str(info.value)


def test_missing_and_unused_inputs():
    x, y = T.dscalars("x", "y")
    with pytest.raises(theano.MissingInputError, match="'y'"):
        function([x], x + y)
    with pytest.raises(theano.UnusedInputError, match="index 1"):
        function([x, y], x * 2)


def test_broadcastable_declared_but_not_size_one():
    m = T.dmatrix("m")
    f = function([m], T.addbroadcast(m, 0) * 2)
    f(np.ones((1, 3)))
    with pytest.raises(ValueError, match="broadcastable"):
        f(np.ones((2, 3)))


def test_bad_graph_building():
    x = T.dmatrix("x")
    with pytest.raises(ValueError, match="dimshuffle"):
        x.dimshuffle(0, 0)
    with pytest.raises(TypeError, match="integer"):
        x[x]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(TypeError, match="cost must be a scalar"):
        T.grad(x, x)
