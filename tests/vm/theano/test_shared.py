"""theano.shared: Theano's dtype rules, get_value/set_value, borrow, strictness."""
import numpy as np
import pytest

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano import shared


def test_python_numbers_ignore_floatx():
    with theano.change_flags(floatX="float32"):
        assert shared(0).dtype == "int64"
        assert shared(0.).dtype == "float64"
        assert shared(True).dtype == "bool"
        assert shared(np.float32(1)).dtype == "float32"


def test_arrays_keep_their_dtype_and_are_not_broadcastable():
    for dtype in ("float32", "float64", "int32", "int8", "uint8"):
        s = shared(np.zeros((1, 3), dtype))
        assert s.dtype == dtype and s.broadcastable == (False, False)
    s = shared(np.zeros((1, 3)), broadcastable=(True, False))
    assert s.broadcastable == (True, False)
    assert s.type == T.TensorType("float64", (True, False))


def test_get_value_copies_unless_borrowed():
    s = shared(np.arange(3.), name="s")
    v = s.get_value()
    v[0] = 100.
    assert s.get_value()[0] == 0.0
    live = s.get_value(borrow=True)
    live[0] = 5.
    assert s.get_value()[0] == 5.0
    assert s.name == "s" and str(s) == "s"


def test_set_value_and_borrow():
    s = shared(np.zeros(3))
    new = np.ones(3)
    s.set_value(new)
    new[0] = 7.
    assert s.get_value()[0] == 1.0
    s.set_value(np.arange(5.))           # shape may change, rank may not
    assert s.get_value().shape == (5,)
    with pytest.raises(TypeError, match="Wrong number of dimensions"):
        s.set_value(np.zeros((2, 2)))
    mine = np.zeros(4)
    b = shared(mine, borrow=True)
    mine[1] = 3.
    assert b.get_value()[1] == 3.0       # borrow=True uses the caller's array


def test_set_value_dtype_rules():
    f32 = shared(np.zeros(2, "float32"))
    with pytest.raises(TypeError, match="cannot store a value of dtype float64"):
        f32.set_value(np.ones(2))
    f32.set_value(np.ones(2, "int8"))    # upcasts losslessly
    assert f32.get_value().dtype == np.float32
    loose = shared(np.zeros(2, "float32"), allow_downcast=True)
    loose.set_value(np.full(2, 0.1))
    assert loose.get_value().dtype == np.float32
    strict = shared(np.zeros(2, "float32"), strict=True)
    with pytest.raises(TypeError):
        strict.set_value(np.zeros(2, "int8"))
    counter = shared(0)
    counter.set_value(-1)
    assert counter.get_value() == -1 and counter.get_value().dtype == np.int64
    with pytest.raises(TypeError, match="cannot store accurately"):
        counter.set_value(1.5)


def test_container_value_and_clone():
    s = shared(np.ones(2))
    s.container.value = np.zeros(2)
    np.testing.assert_array_equal(s.get_value(), [0., 0.])
    c = s.clone()
    c.set_value(np.ones(2))
    np.testing.assert_array_equal(s.get_value(), [0., 0.])


def test_shared_in_two_functions_sees_each_others_updates():
    s = shared(0.)
    inc = theano.function([], [], updates=[(s, s + 1)])
    read = theano.function([], s * 1)
    inc()
    inc()
    assert read() == 2.0


def test_shared_operators_build_graphs():
    w = shared(np.ones((2, 3), "float32"))
    expr = (w.T * 2).sum(axis=0)
    assert expr.type == T.TensorType("float32", (False,))
    np.testing.assert_array_equal(theano.function([], expr)(), [6., 6.])
