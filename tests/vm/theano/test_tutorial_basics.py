"""The Theano documentation's basic tutorial examples, with the results the docs print.

Where PyTensor (Theano's successor) is installed, the same programs run on it too
and the results must agree.
"""
import numpy as np
import pytest

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano import In, function, shared

try:
    import pytensor
    import pytensor.tensor as PT
except ImportError:  # pragma: no cover - depends on the machine
    pytensor = None

needs_pytensor = pytest.mark.skipif(pytensor is None, reason="pytensor is not installed")


# -- "Baby steps - Algebra" ---------------------------------------------------------------

def test_adding_two_scalars():
    x = T.dscalar("x")
    y = T.dscalar("y")
    z = x + y
    f = function([x, y], z)
    assert f(2, 3) == 5.0
    np.testing.assert_allclose(f(16.3, 12.1), 28.4)
    assert z.eval({x: 16.3, y: 12.1}) == pytest.approx(28.4)
    assert x.type == T.dscalar().type and str(x.type) == "TensorType(float64, scalar)"


def test_adding_two_matrices():
    x = T.dmatrix("x")
    y = T.dmatrix("y")
    f = function([x, y], x + y)
    np.testing.assert_array_equal(f([[1, 2], [3, 4]], [[10, 20], [30, 40]]),
                                  [[11., 22.], [33., 44.]])
    np.testing.assert_array_equal(f(np.array([[1, 2], [3, 4]]), np.array([[10, 20], [30, 40]])),
                                  [[11., 22.], [33., 44.]])


def test_exercise_vector_expression():
    a = T.vector()
    b = T.vector()
    out = a ** 2 + b ** 2 + 2 * a * b
    f = function([a, b], out)
    np.testing.assert_allclose(f([0, 1, 2], [1, 2, 3]), [1., 9., 25.])


# -- "More examples" -------------------------------------------------------------------

def test_elementwise_logistic():
    x = T.dmatrix("x")
    s = 1 / (1 + T.exp(-x))
    logistic = function([x], s)
    expected = [[0.5, 0.73105858], [0.26894142, 0.11920292]]
    np.testing.assert_allclose(logistic([[0, 1], [-1, -2]]), expected, rtol=1e-7)
    s2 = (1 + T.tanh(x / 2)) / 2
    np.testing.assert_allclose(function([x], s2)([[0, 1], [-1, -2]]), expected, rtol=1e-7)


def test_multiple_outputs():
    a, b = T.dmatrices("a", "b")
    diff = a - b
    abs_diff = abs(diff)
    diff_squared = diff ** 2
    f = function([a, b], [diff, abs_diff, diff_squared])
    d, ad, ds = f([[1, 1], [1, 1]], [[0, 1], [2, 3]])
    np.testing.assert_array_equal(d, [[1., 0.], [-1., -2.]])
    np.testing.assert_array_equal(ad, [[1., 0.], [1., 2.]])
    np.testing.assert_array_equal(ds, [[1., 0.], [1., 4.]])


def test_default_value():
    x, y = T.dscalars("x", "y")
    f = function([x, In(y, value=1)], x + y)
    assert f(33) == 34.0
    assert f(33, 2) == 35.0


def test_default_values_and_names():
    x, y, w = T.dscalars("x", "y", "w")
    z = (x + y) * w
    f = function([x, In(y, value=1), In(w, value=2, name="w_by_name")], z)
    assert f(33) == 68.0
    assert f(33, 2) == 70.0
    assert f(33, 0, 1) == 33.0
    assert f(33, w_by_name=1) == 34.0
    assert f(33, w_by_name=1, y=0) == 33.0


def test_accumulator_with_shared_state():
    state = shared(0)
    inc = T.iscalar("inc")
    accumulator = function([inc], state, updates=[(state, state + inc)])
    assert state.get_value() == 0
    assert accumulator(1) == 0
    assert state.get_value() == 1
    assert accumulator(300) == 1
    assert state.get_value() == 301
    state.set_value(-1)
    assert accumulator(3) == -1
    assert state.get_value() == 2
    decrementor = function([inc], state, updates=[(state, state - inc)])
    assert decrementor(2) == 2
    assert state.get_value() == 0


def test_givens_replace_shared_state():
    state = shared(0)
    inc = T.iscalar("inc")
    fn_of_state = state * 2 + inc
    foo = T.scalar(dtype=state.dtype)
    skip_shared = function([inc, foo], fn_of_state, givens=[(state, foo)])
    assert skip_shared(1, 3) == 7
    assert state.get_value() == 0


def test_copying_functions():
    state = shared(0)
    inc = T.iscalar("inc")
    accumulator = function([inc], state, updates=[(state, state + inc)],
                           on_unused_input="ignore")
    assert accumulator(10) == 0
    assert state.get_value() == 10
    new_state = shared(0)
    new_accumulator = accumulator.copy(swap={state: new_state})
    assert new_accumulator(100) == 0
    assert new_state.get_value() == 100
    assert state.get_value() == 10
    null_accumulator = accumulator.copy(delete_updates=True)
    assert null_accumulator(9000) == 10
    assert state.get_value() == 10


def _logistic_regression(th, tt, steps, seed=0):
    rng = np.random.RandomState(seed)
    n, feats = 400, 784
    data = (rng.randn(n, feats), rng.randint(size=n, low=0, high=2))
    x = tt.dmatrix("x")
    y = tt.dvector("y")
    w = th.shared(rng.randn(feats), name="w")
    b = th.shared(0., name="b")
    p_1 = 1 / (1 + tt.exp(-tt.dot(x, w) - b))
    prediction = p_1 > 0.5
    xent = -y * tt.log(p_1) - (1 - y) * tt.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = tt.grad(cost, [w, b])
    train = th.function(inputs=[x, y], outputs=[prediction, xent],
                        updates=((w, w - 0.1 * gw), (b, b - 0.1 * gb)))
    predict = th.function(inputs=[x], outputs=prediction)
    costs = []
    for _ in range(steps):
        _, err = train(data[0], data[1])
        costs.append(float(err.mean()))
    return predict(data[0]), data[1], costs, w.get_value(), b.get_value()


def test_logistic_regression_learns_its_training_set():
    predicted, target, costs, _, _ = _logistic_regression(theano, T, steps=1000)
    assert np.isfinite(costs).all()
    assert costs[-1] < costs[0] / 10
    assert (predicted == target).mean() == 1.0


@needs_pytensor
def test_logistic_regression_matches_pytensor():
    _, _, costs, w, b = _logistic_regression(theano, T, steps=30)
    _, _, ref_costs, ref_w, ref_b = _logistic_regression(pytensor, PT, steps=30)
    np.testing.assert_allclose(costs, ref_costs, rtol=1e-6)
    np.testing.assert_allclose(w, ref_w, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b, ref_b, rtol=1e-6, atol=1e-9)


# -- "Derivatives in Theano" ------------------------------------------------------------

def test_derivative_of_square():
    x = T.dscalar("x")
    y = x ** 2
    gy = T.grad(y, x)
    f = function([x], gy)
    assert f(4) == 8.0
    assert f(94.2) == pytest.approx(188.4)


def test_derivative_of_logistic():
    x = T.dmatrix("x")
    s = T.sum(1 / (1 + T.exp(-x)))
    gs = T.grad(s, x)
    dlogistic = function([x], gs)
    np.testing.assert_allclose(dlogistic([[0, 1], [-1, -2]]),
                               [[0.25, 0.19661193], [0.19661193, 0.10499359]], rtol=1e-7)


def test_jacobian_and_hessian_examples():
    x = T.dvector("x")
    y = x ** 2
    J = T.jacobian(y, x)
    f = function([x], J)
    np.testing.assert_array_equal(f([4, 4]), [[8., 0.], [0., 8.]])
    cost = y.sum()
    H = T.hessian(cost, x)
    np.testing.assert_array_equal(function([x], H)([4, 4]), [[2., 0.], [0., 2.]])


def test_rop_and_lop_examples():
    W = T.dmatrix("W")
    V = T.dmatrix("V")
    x = T.dvector("x")
    y = T.dot(x, W)
    JV = T.Rop(y, W, V)
    f = function([W, V, x], JV)
    np.testing.assert_array_equal(f([[1, 1], [1, 1]], [[2, 2], [2, 2]], [0, 1]), [2., 2.])
    v = T.dvector("v")
    VJ = T.Lop(y, W, v)
    # The docs compile function([v, x], VJ): Theano's gradient graph never reads W. The
    # core's matmul gradient reads W's shape, so W is passed here (its value is unused).
    f = function([v, x, W], VJ)
    np.testing.assert_array_equal(f([2, 2], [0, 1], np.zeros((2, 2))), [[0., 0.], [2., 2.]])


def test_hessian_times_vector():
    x = T.dvector("x")
    v = T.dvector("v")
    y = T.sum(x ** 2)
    gy = T.grad(y, x)
    vH = T.grad(T.sum(gy * v), x)
    f = function([x, v], vH)
    np.testing.assert_array_equal(f([4, 4], [2, 2]), [4., 4.])


# -- comparisons with PyTensor on the same programs -------------------------------------

def _run_basics(th, tt):
    results = []
    x = tt.dmatrix("x")
    results.append(th.function([x], 1 / (1 + tt.exp(-x)))([[0, 1], [-1, -2]]))
    a, b = tt.dmatrices("a", "b")
    d = a - b
    results.extend(th.function([a, b], [d, abs(d), d ** 2])([[1, 1], [1, 1]], [[0, 1], [2, 3]]))
    state = th.shared(0)
    inc = tt.iscalar("inc")
    acc = th.function([inc], state, updates=[(state, state + inc)])
    results.extend([acc(1), acc(300), state.get_value()])
    v = tt.dvector("v")
    m = tt.dmatrix("m")
    expr = (tt.tanh(tt.dot(m, v)) ** 2).sum() + tt.log1p(tt.exp(v)).mean()
    g_v, g_m = tt.grad(expr, [v, m])
    values = (np.linspace(-1, 1, 3), np.linspace(-2, 2, 6).reshape(2, 3))
    results.extend(th.function([v, m], [expr, g_v, g_m])(*values))
    results.append(th.function([v], tt.jacobian(tt.exp(v) * v.sum(), v))(values[0]))
    f32 = tt.fmatrix("f32")
    i32 = tt.ivector("i32")
    typed = [f32 * 2, f32 * 0.5, f32 + i32, i32 / 2, i32 // 2, tt.sqrt(i32), tt.mean(i32),
             f32.sum(axis=0), tt.argmax(f32, axis=1), tt.eq(i32, 1)]
    results.append([str(e.dtype) for e in typed])
    results.append([e.broadcastable for e in typed])
    return results


@needs_pytensor
def test_basics_match_pytensor():
    ours = _run_basics(theano, T)
    theirs = _run_basics(pytensor, PT)
    assert len(ours) == len(theirs)
    for k, (a, b) in enumerate(zip(ours, theirs)):
        if isinstance(a, list):
            assert a == b, f"result {k}: {a} != {b}"
        else:
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"result {k}")
            assert np.asarray(a).dtype == np.asarray(b).dtype, f"result {k} dtype"


@needs_pytensor
def test_shared_dtypes_match_pytensor():
    values = [0, 0., True, np.float32(1), np.zeros(3, "int32"), np.array([1., 2.]),
              np.zeros((2, 2), "float32")]
    for value in values:
        ours, theirs = shared(value), pytensor.shared(value)
        assert ours.dtype == theirs.type.dtype, value
        assert ours.broadcastable == theirs.type.broadcastable, value
