"""theano.function: inputs, outputs, updates, givens, defaults, modes, copies, plans."""
import warnings
from collections import OrderedDict

import numpy as np
import pytest

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano import In, Out, function, shared


def test_output_structures():
    x = T.dvector("x")
    assert isinstance(function([x], x * 2)([1.]), np.ndarray)
    assert isinstance(function([x], [x * 2])([1.]), list)
    out = function([x], {"double": x * 2, "sum": x.sum()})([1., 2.])
    assert set(out) == {"double", "sum"} and out["sum"] == 3.0
    assert function([x], [], on_unused_input="ignore")([1.]) == []
    assert function([x], None, on_unused_input="ignore")([1.]) == []
    np.testing.assert_array_equal(function([x], Out(x, borrow=True))([1., 2.]), [1., 2.])


def test_output_may_be_an_input_a_shared_variable_or_a_constant():
    x = T.dvector("x")
    w = shared(np.arange(3.))
    a, b, c = function([x], [x, w, T.constant(5)])([7.])
    np.testing.assert_array_equal(a, [7.])
    np.testing.assert_array_equal(b, [0., 1., 2.])
    assert c == 5


def test_outputs_are_fresh_arrays():
    w = shared(np.zeros(2))
    f = function([], w + 0)
    first = f()
    first[0] = 100.
    assert f()[0] == 0.0


@pytest.mark.parametrize("form", ["list", "tuple", "ordered", "dict"])
def test_update_forms(form):
    a = shared(1.0)
    b = shared(10.0)
    pairs = [(a, a + 1), (b, b * 2)]
    updates = {"list": pairs, "tuple": tuple(pairs), "ordered": OrderedDict(pairs),
               "dict": dict(pairs)}[form]
    f = function([], [], updates=updates)
    f()
    f()
    assert a.get_value() == 3.0 and b.get_value() == 40.0


def test_updates_read_the_old_values():
    a = shared(1.0)
    b = shared(2.0)
    swap = function([], [a, b], updates=[(a, b), (b, a)])
    assert [float(v) for v in swap()] == [1.0, 2.0]
    assert (a.get_value(), b.get_value()) == (2.0, 1.0)


def test_update_type_must_match():
    w = shared(np.zeros(3, "float32"))
    with pytest.raises(TypeError, match="same type"):
        function([], [], updates=[(w, w + np.float64(1.5) * T.ones_like(w, "float64"))])
    with pytest.raises(TypeError, match="shared variable"):
        function([], [], updates=[(T.dvector(), T.dvector())])


def test_givens_with_minibatch_slices_of_shared_data():
    data = shared(np.arange(40, dtype="float64").reshape(20, 2))
    labels = shared(np.arange(20, dtype="int32"))
    i = T.lscalar("i")
    x = T.dmatrix("x")
    y = T.ivector("y")
    bs = 5
    f = function([i], [x.sum(axis=1), y], givens={x: data[i * bs:(i + 1) * bs],
                                                  y: labels[i * bs:(i + 1) * bs]})
    for k in range(4):
        rows, ys = f(k)
        np.testing.assert_array_equal(ys, np.arange(k * bs, (k + 1) * bs))
        np.testing.assert_array_equal(rows, data.get_value()[k * bs:(k + 1) * bs].sum(axis=1))
    assert len(f._plans) == 1   # one plan for every index


def test_givens_slice_clamped_at_the_end_follows_python():
    data = shared(np.arange(7.))
    i = T.lscalar("i")
    x = T.dvector("x")
    f = function([i], x, givens=[(x, data[i * 3:(i + 1) * 3])])
    np.testing.assert_array_equal(f(1), [3., 4., 5.])
    np.testing.assert_array_equal(f(2), [6.])
    np.testing.assert_array_equal(f(0), [0., 1., 2.])


def test_givens_type_checked():
    x = T.dvector("x")
    with pytest.raises(TypeError, match="cannot replace"):
        function([], x * 2, givens={x: T.fvector()})


def test_allow_input_downcast():
    x = T.fvector("x")
    f = function([x], x * 2, allow_input_downcast=True)
    out = f(np.array([1.5, 2.0]))
    assert out.dtype == np.float32
    with pytest.raises(TypeError, match="Bad input argument"):
        function([x], x * 2)(np.array([1.5, 2.0]))
    # Python floats may always go into floatX.
    with theano.change_flags(floatX="float32"):
        s = T.scalar("s")
        assert function([s], s * 2)(1.1).dtype == np.float32
    assert function([x], x * 2)([1, 2]).dtype == np.float32   # exact ints convert


def test_on_unused_input():
    x, y = T.dscalars("x", "y")
    with pytest.raises(theano.UnusedInputError):
        function([x, y], x * 2)
    assert function([x, y], x * 2, on_unused_input="ignore")(1., 5.) == 2.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        function([x, y], x * 2, on_unused_input="warn")
    assert any("not part of the computational graph" in str(w.message) for w in caught)


def test_input_may_be_an_intermediate_variable():
    x = T.dscalar("x")
    h = x * 3
    out = h + 1
    assert function([h], out)(10.) == 11.0


def test_default_updates_and_no_default_updates():
    counter = shared(0)
    counter.default_update = counter + 1
    x = T.lscalar("x")
    f = function([x], x + counter)
    assert f(10) == 10 and f(10) == 11
    assert counter.get_value() == 2
    g = function([x], x + counter, no_default_updates=True)
    assert g(0) == 2 and counter.get_value() == 2
    h = function([x], x + counter, no_default_updates=[counter])
    h(0)
    assert counter.get_value() == 2
    explicit = function([x], x + counter, updates=[(counter, counter + 5)])
    explicit(0)
    assert counter.get_value() == 7


def test_in_options_and_keywords():
    x = T.dscalar("x")
    y = T.dscalar()
    f = function([x, In(y, value=3.0, name="why")], x * y)
    assert f(2) == 6.0 and f(x=2) == 6.0 and f(2, why=4) == 8.0
    with pytest.raises(TypeError, match="no input named"):
        f(2, zed=1)
    with pytest.raises(TypeError, match="twice"):
        f(2, x=1)


def test_modes_are_accepted():
    x = T.dscalar()
    for mode in ("FAST_RUN", "FAST_COMPILE", "DebugMode", theano.Mode(linker="py"),
                 theano.compile.mode.FAST_RUN, None):
        assert function([x], x + 1, mode=mode)(1.0) == 2.0
    with pytest.raises(ValueError, match="unknown mode"):
        function([x], x + 1, mode="FASTEST")


def test_one_plan_per_input_shape_set():
    x = T.dmatrix("x")
    f = function([x], x.sum(axis=0) * x.shape[0])
    np.testing.assert_array_equal(f(np.ones((2, 3))), [4., 4., 4.])
    np.testing.assert_array_equal(f(np.ones((3, 2))), [9., 9.])
    f(np.ones((2, 3)))
    assert len(f._plans) == 2


def test_value_dependent_sizes_compile_per_value():
    n = T.lscalar("n")
    v = T.dvector("v")
    f = function([n, v], [T.arange(n), v[:n]])
    a, b = f(3, np.arange(5.))
    np.testing.assert_array_equal(a, [0, 1, 2])
    np.testing.assert_array_equal(b, [0., 1., 2.])
    a, b = f(2, np.arange(5.))
    np.testing.assert_array_equal(a, [0, 1])
    np.testing.assert_array_equal(b, [0., 1.])


def test_shared_variables_are_read_live_and_updates_write_in_place():
    w = shared(np.ones(3))
    x = T.dvector("x")
    f = function([x], T.dot(x, w), updates=[(w, w * 2)])
    live = w.get_value(borrow=True)
    assert f(np.ones(3)) == 3.0
    np.testing.assert_array_equal(live, [2., 2., 2.])
    w.set_value(np.zeros(3))
    assert f(np.ones(3)) == 0.0


def test_shared_variable_shape_change_recompiles():
    w = shared(np.ones(3))
    f = function([], w.sum() * w.shape[0])
    assert f() == 9.0
    w.set_value(np.ones(4))
    assert f() == 16.0


def test_eval_and_debugprint_of_a_function(capsys):
    x = T.dvector("x")
    assert (x * 2).sum().eval({x: np.array([1., 2.])}) == 6.0
    f = function([x], (x * 2).sum())
    text = theano.printing.debugprint(f, file="str")
    assert "sum" in text and "mul" in text and "x" in text
    assert f.maker.fgraph.inputs == [x]
    assert len(f.maker.fgraph.toposort()) >= 2


def test_shared_input_is_rejected():
    w = shared(1.0)
    with pytest.raises(TypeError, match="shared variable"):
        function([w], w * 2)
