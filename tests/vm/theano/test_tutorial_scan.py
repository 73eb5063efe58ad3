"""The Theano documentation's scan examples (tutorial "Loop" and library "scan"), with
the results the documentation prints.
"""
import numpy as np
import pytest

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano.scan_module import scan_op


@pytest.fixture(autouse=True, params=["unrolled", "loop"])
def lowering(request, monkeypatch):
    """Every example runs with its scans unrolled and as core Loop ops."""
    monkeypatch.setattr(scan_op, "UNROLL_MAX_STEPS", 10 ** 9 if request.param == "unrolled" else 0)
    return request.param


@pytest.fixture
def floatx64():
    old = theano.config.floatX
    theano.config.floatX = "float64"
    yield
    theano.config.floatX = old


# -- tutorial/loop ----------------------------------------------------------------------

def test_tanh_of_rows_elementwise(floatx64):
    X = T.matrix("X")
    W = T.matrix("W")
    b_sym = T.vector("b_sym")
    results, updates = theano.scan(lambda v: T.tanh(T.dot(v, W) + b_sym), sequences=X)
    compute_elementwise = theano.function(inputs=[X, W, b_sym], outputs=results)
    x = np.eye(2)
    w = np.ones((2, 2))
    b = np.ones(2)
    b[1] = 2
    np.testing.assert_allclose(compute_elementwise(x, w, b),
                               [[0.96402758, 0.99505475], [0.96402758, 0.99505475]], rtol=1e-7)
    np.testing.assert_allclose(compute_elementwise(x, w, b), np.tanh(x.dot(w) + b))


def test_recurrence_with_reversed_sequence(floatx64):
    X = T.vector("X")
    W = T.matrix("W")
    U = T.matrix("U")
    Y = T.matrix("Y")
    V = T.matrix("V")
    P = T.matrix("P")
    results, updates = theano.scan(
        lambda y, p, x_tm1: T.tanh(T.dot(x_tm1, W) + T.dot(y, U) + T.dot(p, V)),
        sequences=[Y, P[::-1]], outputs_info=[X])
    compute_seq = theano.function(inputs=[X, W, Y, U, P, V], outputs=results)
    x = np.zeros(2)
    x[1] = 1
    w = np.ones((2, 2))
    y = np.ones((5, 2))
    y[0, :] = -3
    u = np.ones((2, 2))
    p = np.ones((5, 2))
    p[0, :] = 3
    v = np.ones((2, 2))
    expected = [[-0.99505475, -0.99505475], [0.96471973, 0.96471973],
                [0.99998585, 0.99998585], [0.99998771, 0.99998771], [1., 1.]]
    np.testing.assert_allclose(compute_seq(x, w, y, u, p, v), expected, rtol=1e-7)


def test_norms_of_lines_and_columns(floatx64):
    X = T.matrix("X")
    lines, _ = theano.scan(lambda x_i: T.sqrt((x_i ** 2).sum()), sequences=[X])
    cols, _ = theano.scan(lambda x_i: T.sqrt((x_i ** 2).sum()), sequences=[X.T])
    x = np.diag(np.arange(1, 6, dtype="float64"), 1)
    np.testing.assert_allclose(theano.function([X], lines)(x), [1., 2., 3., 4., 5., 0.])
    np.testing.assert_allclose(theano.function([X], cols)(x), [0., 1., 2., 3., 4., 5.])


def test_trace_with_two_aranges(floatx64):
    floatX = "float32"
    X = T.matrix("X")
    results, updates = theano.scan(lambda i, j, t_f: T.cast(X[i, j] + t_f, floatX),
                                   sequences=[T.arange(X.shape[0]), T.arange(X.shape[1])],
                                   outputs_info=np.asarray(0., dtype=floatX))
    compute_trace = theano.function(inputs=[X], outputs=results[-1])
    x = np.eye(5)
    x[0] = np.arange(5)
    assert compute_trace(x) == pytest.approx(4.0)
    assert compute_trace(x).dtype == np.float32


def test_taps_recurrence(floatx64):
    """x(t) = x(t - 2).dot(U) + x(t - 1).dot(V) + tanh(x(t - 1).dot(W) + b)."""
    X = T.matrix("X")
    W = T.matrix("W")
    b_sym = T.vector("b_sym")
    U = T.matrix("U")
    V = T.matrix("V")
    n_sym = T.iscalar("n_sym")
    results, updates = theano.scan(
        lambda x_tm2, x_tm1: T.dot(x_tm2, U) + T.dot(x_tm1, V) + T.tanh(T.dot(x_tm1, W) + b_sym),
        n_steps=n_sym, outputs_info=[dict(initial=X, taps=[-2, -1])])
    compute_seq2 = theano.function(inputs=[X, U, V, W, b_sym, n_sym], outputs=results)
    x = np.zeros((2, 2))
    x[1, 1] = 1
    w = 0.5 * np.ones((2, 2))
    u = 0.5 * (np.ones((2, 2)) - np.eye(2))
    v = 0.5 * np.ones((2, 2))
    b = np.ones(2)
    expected = [[1.40514825, 1.40514825], [2.88898899, 2.38898899], [4.34018291, 4.34018291],
                [6.53463142, 6.78463142], [9.82972243, 9.82972243], [14.22203814, 14.09703814],
                [20.07439936, 20.07439936], [28.12291843, 28.18541843],
                [39.1913681, 39.1913681], [54.28407732, 54.25282732]]
    np.testing.assert_allclose(compute_seq2(x, u, v, w, b, 10), expected, rtol=1e-8)
    assert compute_seq2(x, u, v, w, b, 3).shape == (3, 2)


def test_fibonacci_taps():
    init = T.lvector("init")
    fib, _ = theano.scan(lambda a, b: a + b, outputs_info=dict(initial=init, taps=[-2, -1]),
                         n_steps=8)
    np.testing.assert_array_equal(theano.function([init], fib)([1, 1]),
                                  [2, 3, 5, 8, 13, 21, 34, 55])


def test_jacobian_via_scan(floatx64):
    v = T.vector()
    A = T.matrix()
    y = T.tanh(T.dot(v, A))
    results, updates = theano.scan(lambda i: T.grad(y[i], v), sequences=[T.arange(y.shape[0])])
    compute_jac_t = theano.function([A, v], results, allow_input_downcast=True)
    x = np.eye(5)[0]
    w = np.eye(5, 3)
    w[2] = np.ones(3)
    expected = [[0.41997434, 0., 0.41997434, 0., 0.], [0., 1., 1., 0., 0.],
                [0., 0., 1., 0., 0.]]
    np.testing.assert_allclose(compute_jac_t(w, x), expected, rtol=1e-7, atol=1e-12)
    np.testing.assert_allclose(compute_jac_t(w, x), ((1 - np.tanh(x.dot(w)) ** 2) * w).T)
    # The same Jacobian from T.jacobian.
    np.testing.assert_allclose(theano.function([A, v], T.jacobian(y, v))(w, x), expected,
                               rtol=1e-7, atol=1e-12)


def test_accumulate_number_of_loops():
    k = theano.shared(0)
    n_sym = T.iscalar("n_sym")
    results, updates = theano.scan(lambda: {k: (k + 1)}, n_steps=n_sym)
    assert results is None
    accumulator = theano.function([n_sym], [], updates=updates, allow_input_downcast=True)
    assert k.get_value() == 0
    assert accumulator(5) == []
    assert k.get_value() == 5
    accumulator(3)
    assert k.get_value() == 8


def test_binomial_noise_redrawn_every_step(floatx64):
    """d is drawn outside the step but read inside it: its random state is carried
    through the loop, so every row gets new noise (the docs print these numbers)."""
    X = T.matrix("X")
    W = T.matrix("W")
    b_sym = T.vector("b_sym")
    trng = T.shared_randomstreams.RandomStreams(1234)
    d = trng.binomial(size=W[1].shape)
    results, updates = theano.scan(lambda v: T.tanh(T.dot(v, W) + b_sym) * d, sequences=X)
    compute_with_bnoise = theano.function(inputs=[X, W, b_sym], outputs=results,
                                          updates=updates, allow_input_downcast=True)
    x = np.eye(10, 2)
    w = np.ones((2, 2))
    b = np.ones(2)
    a, c = 0.96402758, 0.76159416
    expected = [[a, 0], [0, a], [0, 0], [c, c], [c, 0], [0, c], [0, c], [0, c], [0, 0], [c, c]]
    np.testing.assert_allclose(compute_with_bnoise(x, w, b), expected, rtol=1e-7)
    assert not np.allclose(compute_with_bnoise(x, w, b), expected)   # the stream moved on


def test_power_with_named_inner_function(floatx64):
    k = T.iscalar("k")
    A = T.vector("A")

    def inner_fct(prior_result, B):
        return prior_result * B

    result, updates = theano.scan(fn=inner_fct, outputs_info=T.ones_like(A),
                                  non_sequences=A, n_steps=k)
    power = theano.function(inputs=[A, k], outputs=result[-1], updates=updates)
    np.testing.assert_allclose(power(range(10), 2), [0., 1., 4., 9., 16., 25., 36., 49., 64., 81.])
    np.testing.assert_allclose(power(range(10), 4), np.arange(10.) ** 4)


def test_polynomial(floatx64):
    coefficients = T.vector("coefficients")
    x = T.scalar("x")
    max_coefficients_supported = 10000
    full_range = T.arange(max_coefficients_supported)
    components, updates = theano.scan(fn=lambda coeff, power, free_var: coeff * (free_var ** power),
                                      outputs_info=None, sequences=[coefficients, full_range],
                                      non_sequences=x)
    polynomial = components.sum()
    calculate_polynomial = theano.function(inputs=[coefficients, x], outputs=polynomial)
    test_coeff = np.asarray([1, 0, 2], dtype=np.float32)
    assert calculate_polynomial(test_coeff, 3) == pytest.approx(19.0)


def test_polynomial_reduced_by_scan(floatx64):
    """The tutorial's exercise: accumulate the polynomial inside scan."""
    coefficients = T.vector("coefficients")
    x = T.scalar("x")
    outputs_info = T.as_tensor_variable(np.asarray(0, "float64"))
    components, _ = theano.scan(
        fn=lambda coeff, power, prior, free_var: prior + coeff * (free_var ** power),
        sequences=[coefficients, T.arange(1000)], outputs_info=outputs_info, non_sequences=x)
    f = theano.function([coefficients, x], components[-1])
    assert f(np.asarray([1, 0, 2], "float64"), 3) == pytest.approx(19.0)


# -- library/scan -----------------------------------------------------------------------

def test_triangular_sequence():
    up_to = T.iscalar("up_to")

    def accumulate_by_adding(arange_val, sum_to_date):
        return sum_to_date + arange_val

    seq = T.arange(up_to)
    outputs_info = T.as_tensor_variable(np.asarray(0, seq.dtype))
    scan_result, scan_updates = theano.scan(fn=accumulate_by_adding, outputs_info=outputs_info,
                                            sequences=seq)
    triangular_sequence = theano.function(inputs=[up_to], outputs=scan_result)
    np.testing.assert_array_equal(triangular_sequence(15), [n * (n + 1) // 2 for n in range(15)])


def test_implicit_downcast_is_refused():
    seq = T.arange(T.iscalar("up_to"))
    with pytest.raises(TypeError, match="dtype"):
        theano.scan(lambda v, acc: acc + v, sequences=seq, outputs_info=T.as_tensor_variable(0))


def test_set_value_at_position(floatx64):
    location = T.imatrix("location")
    values = T.vector("values")
    output_model = T.matrix("output_model")

    def set_value_at_position(a_location, a_value, output_model):
        zeros = T.zeros_like(output_model)
        zeros_subtensor = zeros[a_location[0], a_location[1]]
        return T.set_subtensor(zeros_subtensor, a_value)

    result, updates = theano.scan(fn=set_value_at_position, outputs_info=None,
                                  sequences=[location, values], non_sequences=output_model)
    assign = theano.function(inputs=[location, values, output_model], outputs=result)
    out = assign(np.asarray([[1, 1], [2, 3]], dtype=np.int32),
                 np.asarray([42, 50], dtype=np.float32), np.zeros((5, 5), dtype=np.float32))
    expected = np.zeros((2, 5, 5))
    expected[0, 1, 1] = 42
    expected[1, 2, 3] = 50
    np.testing.assert_array_equal(out, expected)


def test_rnn_with_several_taps(floatx64):
    """x(n) = tanh(W x(n-1) + W1 u(n) + W2 u(n-4) + Wf y(n-1)); y(n) = Wout x(n-3)."""
    rng = np.random.RandomState(0)
    n_in, n_hid, n_out = 2, 3, 2
    values = {name: rng.uniform(-0.5, 0.5, shape) for name, shape in [
        ("W", (n_hid, n_hid)), ("W_in_1", (n_in, n_hid)), ("W_in_2", (n_in, n_hid)),
        ("W_feedback", (n_out, n_hid)), ("W_out", (n_hid, n_out))]}
    W, W_in_1, W_in_2, W_feedback, W_out = (theano.shared(values[k], name=k) for k in
                                            ("W", "W_in_1", "W_in_2", "W_feedback", "W_out"))

    def one_step(u_tm4, u_t, x_tm3, x_tm1, y_tm1, W, W_in_1, W_in_2, W_feedback, W_out):
        x_t = T.tanh(theano.dot(x_tm1, W) + theano.dot(u_t, W_in_1) + theano.dot(u_tm4, W_in_2)
                     + theano.dot(y_tm1, W_feedback))
        y_t = theano.dot(x_tm3, W_out)
        return [x_t, y_t]

    u = T.matrix()
    x0 = T.matrix()
    y0 = T.vector()
    ([x_vals, y_vals], updates) = theano.scan(
        fn=one_step, sequences=dict(input=u, taps=[-4, -0]),
        outputs_info=[dict(initial=x0, taps=[-3, -1]), y0],
        non_sequences=[W, W_in_1, W_in_2, W_feedback, W_out])
    f = theano.function([u, x0, y0], [x_vals, y_vals])
    uv = rng.uniform(-1, 1, (9, n_in))
    x0v = rng.uniform(-1, 1, (3, n_hid))
    y0v = rng.uniform(-1, 1, n_out)
    xs, ys = f(uv, x0v, y0v)
    # numpy reference: scan starts at u[4] (u[0] plays u[-4]).
    x_hist, y_prev, ref_x, ref_y = list(x0v), y0v, [], []
    for t in range(4, 9):
        x_t = np.tanh(x_hist[-1] @ values["W"] + uv[t] @ values["W_in_1"]
                      + uv[t - 4] @ values["W_in_2"] + y_prev @ values["W_feedback"])
        y_t = x_hist[-3] @ values["W_out"]
        x_hist.append(x_t)
        y_prev = y_t
        ref_x.append(x_t)
        ref_y.append(y_t)
    assert xs.shape == (5, n_hid) and ys.shape == (5, n_out)
    np.testing.assert_allclose(xs, ref_x, rtol=1e-10)
    np.testing.assert_allclose(ys, ref_y, rtol=1e-10)


def test_shared_variable_updates_dictionary():
    a = theano.shared(1)
    values, updates = theano.scan(lambda: {a: a + 1}, n_steps=10)
    b = a + 1
    c = updates[a] + 1
    f = theano.function([], [b, c], updates=updates)
    assert [int(v) for v in f()] == [2, 12]
    assert a.get_value() == 11
    assert [int(v) for v in f()] == [12, 22]
    assert a.get_value() == 21
    g = theano.function([], [b, c])        # without the updates: nothing changes
    assert [int(v) for v in g()] == [22, 32]
    assert a.get_value() == 21


def test_conditional_ending_with_until(floatx64):
    def power_of_2(previous_power, max_value):
        return previous_power * 2, theano.scan_module.until(previous_power * 2 > max_value)

    max_value = T.scalar()
    values, _ = theano.scan(power_of_2, outputs_info=T.constant(1.), non_sequences=max_value,
                            n_steps=1024)
    f = theano.function([max_value], values)
    np.testing.assert_array_equal(f(45), [2., 4., 8., 16., 32., 64.])
    np.testing.assert_array_equal(f(3), [2., 4.])
    np.testing.assert_array_equal(f(45), [2., 4., 8., 16., 32., 64.])


def test_gibbs_chain_with_random_streams(floatx64):
    """The library guide's Gibbs sampling: draws inside the step, shared weights found on
    their own, and the random stream's updates returned by scan."""
    rng = np.random.RandomState(1)
    W = theano.shared(rng.uniform(-1, 1, (6, 4)))
    bvis = theano.shared(np.zeros(6))
    bhid = theano.shared(np.zeros(4))
    trng = T.shared_randomstreams.RandomStreams(1234)

    def one_step(vsample):
        hmean = T.nnet.sigmoid(theano.dot(vsample, W) + bhid)
        hsample = trng.binomial(size=hmean.shape, n=1, p=hmean)
        vmean = T.nnet.sigmoid(theano.dot(hsample, W.T) + bvis)
        return trng.binomial(size=vsample.shape, n=1, p=vmean, dtype=theano.config.floatX)

    sample = T.vector()
    values, updates = theano.scan(one_step, outputs_info=sample, n_steps=10)
    gibbs10 = theano.function([sample], values[-1], updates=updates)
    chains = [gibbs10(np.ones(6)) for _ in range(8)]
    for chain in chains:
        assert chain.shape == (6,) and set(np.unique(chain)) <= {0.0, 1.0}
    assert len({c.tobytes() for c in chains}) > 1      # the stream advances between calls
