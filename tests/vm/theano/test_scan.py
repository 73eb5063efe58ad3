"""theano.scan: argument forms, taps, directions, shared-variable updates, errors, and
gradients through the loop (BPTT) against central finite differences."""
import pickle

import numpy as np
import pytest

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano.compile.function import MissingInputError
from dragon.vm.theano.gradient import disconnected_grad, numeric_grad
from dragon.vm.theano.scan_module import scan_op, until

RNG = np.random.RandomState(7)


@pytest.fixture(autouse=True, params=["unrolled", "loop"])
def lowering(request, monkeypatch):
    """Every test runs with scans unrolled and with scans as one core Loop op."""
    limit = 10 ** 9 if request.param == "unrolled" else 0
    monkeypatch.setattr(scan_op, "UNROLL_MAX_STEPS", limit)
    return request.param


def _check_grads(inputs, cost, values, rtol=1e-6, atol=1e-8, eps=1e-6):
    """T.grad of ``cost`` w.r.t. every input agrees with central finite differences."""
    grads = T.grad(cost, inputs)
    f_cost = theano.function(inputs, cost)
    f_grads = theano.function(inputs, grads)
    analytic = f_grads(*values)
    numeric = numeric_grad(lambda *v: f_cost(*v), values, eps=eps)
    for var, a, n in zip(inputs, analytic, numeric):
        np.testing.assert_allclose(a, n, rtol=rtol, atol=atol, err_msg=f"d cost / d {var}")
    return analytic


# -- gradients through the loop ----------------------------------------------------------

def test_rnn_bptt_matches_finite_differences():
    """h_t = tanh(x_t Wx + h_{t-1} Wh + b); cost = sum_t (h_t . v)^2: every gradient,
    including the sequence's and the initial state's."""
    x = T.dmatrix("x")
    h0 = T.dvector("h0")
    Wx, Wh = T.dmatrices("Wx", "Wh")
    b, v = T.dvectors("b", "v")
    h, updates = theano.scan(
        lambda x_t, h_tm1, Wx, Wh, b: T.tanh(T.dot(x_t, Wx) + T.dot(h_tm1, Wh) + b),
        sequences=x, outputs_info=h0, non_sequences=[Wx, Wh, b])
    cost = (T.dot(h, v) ** 2).sum()
    values = [RNG.randn(6, 3), RNG.randn(4) * 0.5, RNG.randn(3, 4) * 0.5,
              RNG.randn(4, 4) * 0.5, RNG.randn(4) * 0.1, RNG.randn(4)]
    _check_grads([x, h0, Wx, Wh, b, v], cost, values)


def test_rnn_with_shared_weights_found_by_scan_trains():
    """Weights used inside the step without being passed: gradients and updates reach them."""
    W = theano.shared(RNG.randn(3, 3) * 0.3, name="W")
    x = T.dmatrix("x")
    target = T.dvector("target")
    h, _ = theano.scan(lambda x_t, h_tm1: T.tanh(x_t + T.dot(h_tm1, W)), sequences=x,
                       outputs_info=T.zeros_like(x[0]))
    cost = ((h[-1] - target) ** 2).sum()
    gW = T.grad(cost, W)
    train = theano.function([x, target], cost, updates=[(W, W - 0.1 * gW)])
    xs, ts = RNG.randn(5, 3), np.array([0.5, -0.3, 0.1])
    costs = [float(train(xs, ts)) for _ in range(60)]
    assert costs[-1] < costs[0] * 0.1
    # the gradient at the current weights agrees with finite differences
    f = theano.function([x, target], cost)
    w0 = W.get_value()

    def cost_at(w):
        W.set_value(w)
        return f(xs, ts)
    numeric = numeric_grad(cost_at, [w0])[0]
    W.set_value(w0)
    np.testing.assert_allclose(theano.function([x, target], gW)(xs, ts), numeric, rtol=1e-6,
                               atol=1e-9)


def test_gradient_through_output_and_sequence_taps():
    x = T.dvector("x")
    init = T.dvector("init")
    a = T.dscalar("a")
    out, _ = theano.scan(lambda x_tm2, x_t, x_tp1, y_tm3, y_tm1, a:
                         a * y_tm1 * x_tm2 + T.tanh(y_tm3) * x_tp1 + x_t,
                         sequences=dict(input=x, taps=[-2, 0, 1]),
                         outputs_info=dict(initial=init, taps=[-3, -1]), non_sequences=a)
    cost = (out * T.arange(out.shape[0])).sum()
    values = [RNG.randn(9), RNG.randn(3), np.float64(0.7)]
    grads = _check_grads([x, init, a], cost, values)
    assert theano.function([x, init, a], out)(*values).shape == (6,)
    assert grads[0].shape == (9,)


def test_go_backwards_values_and_gradients():
    x = T.dvector("x")
    s0 = T.dscalar("s0")
    out, _ = theano.scan(lambda x_t, s: s * 0.5 + x_t ** 2, sequences=x, outputs_info=s0,
                         go_backwards=True)
    xs = np.array([1., 2., 3., 4.])
    expected, s = [], 0.25
    for value in xs[::-1]:
        s = s * 0.5 + value ** 2
        expected.append(s)
    np.testing.assert_allclose(theano.function([x, s0], out)(xs, 0.25), expected)
    _check_grads([x, s0], (out ** 2).sum(), [xs, np.float64(0.25)])


def test_go_backwards_with_taps_follows_theano():
    x = T.dvector("x")
    out, _ = theano.scan(lambda a, b: a * 10 + b, sequences=dict(input=x, taps=[-1, 1]),
                         go_backwards=True)
    xs = np.arange(6.)
    # Theano cuts each tap's slice (x[0:4] for -1, x[2:6] for +1), then reverses it.
    np.testing.assert_array_equal(theano.function([x], out)(xs),
                                  [a * 10 + b for a, b in zip(xs[0:4][::-1], xs[2:6][::-1])])


def test_truncate_gradient_is_truncated_bptt():
    """truncate_gradient=k: the gradient of an unrolled graph whose states and outputs
    before the last k steps are cut with disconnected_grad."""
    n, k = 7, 3
    x = T.dmatrix("x")
    W = T.dmatrix("W")
    h0 = T.dvector("h0")
    step = lambda x_t, h_tm1, W: T.tanh(x_t + T.dot(h_tm1, W))  # noqa: E731
    h, _ = theano.scan(step, sequences=x, outputs_info=h0, non_sequences=W, truncate_gradient=k)
    cost = (h ** 2).sum()
    hs, state = [], h0
    for t in range(n):
        if t == n - k:
            state = disconnected_grad(state)
        state = step(x[t], state, W)
        hs.append(state if t >= n - k else disconnected_grad(state))
    manual_cost = (T.stack(hs) ** 2).sum()
    values = [RNG.randn(n, 2), RNG.randn(2, 2) * 0.5, RNG.randn(2)]
    ours = theano.function([x, W, h0], T.grad(cost, [x, W]))(*values)
    manual = theano.function([x, W, h0], T.grad(manual_cost, [x, W]))(*values)
    for a, b in zip(ours, manual):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    assert np.all(ours[0][:n - k] == 0) and np.any(ours[0][n - k:] != 0)
    full = theano.function([x, W, h0], T.grad((theano.scan(
        step, sequences=x, outputs_info=h0, non_sequences=W)[0] ** 2).sum(), W))(*values)
    assert not np.allclose(full, ours[1])


def test_nested_scan_and_its_gradient():
    X = T.dmatrix("X")
    w = T.dscalar("w")

    def row_step(row, w):
        inner, _ = theano.scan(lambda v, acc, w: acc * w + v, sequences=row,
                               outputs_info=T.constant(np.float64(0)), non_sequences=w)
        return inner[-1]

    out, _ = theano.scan(row_step, sequences=X, non_sequences=w)
    xs = RNG.randn(3, 4)
    expected = [sum(r[i] * 0.5 ** (3 - i) for i in range(4)) for r in xs]
    np.testing.assert_allclose(theano.function([X, w], out)(xs, 0.5), expected)
    _check_grads([X, w], (out ** 2).sum(), [xs, np.float64(0.5)])


def test_grad_inside_the_step_of_a_step_variable():
    x = T.dmatrix("x")
    g, _ = theano.scan(lambda row: T.grad((row ** 3).sum(), row), sequences=x)
    xs = RNG.randn(3, 4)
    np.testing.assert_allclose(theano.function([x], g)(xs), 3 * xs ** 2)


# -- forms of the arguments ----------------------------------------------------------------

def test_map_reduce_foldl_foldr_and_checkpoints():
    x = T.dvector("x")
    squares, _ = theano.map(lambda v: v ** 2, sequences=x)
    total, _ = theano.reduce(lambda v, acc: acc + v, sequences=x,
                             outputs_info=T.constant(np.float64(0)))
    left, _ = theano.foldl(lambda v, acc: acc * 2 + v, sequences=x,
                           outputs_info=T.constant(np.float64(0)))
    right, _ = theano.foldr(lambda v, acc: acc * 2 + v, sequences=x,
                            outputs_info=T.constant(np.float64(0)))
    running, _ = theano.scan_module.scan_checkpoints(
        lambda v, acc: acc + v, sequences=[x], outputs_info=[T.constant(np.float64(0))],
        save_every_N=2)
    f = theano.function([x], [squares, total, left, right, running])
    s, t, l_, r, c = f([1., 2., 3.])
    np.testing.assert_array_equal(s, [1., 4., 9.])
    assert (t, l_, r) == (6., 11., 17.)
    assert c.tolist() == [1., 3., 6.]


def test_n_steps_shorter_than_the_sequence_and_scalar_inputs():
    x = T.dvector("x")
    out, _ = theano.scan(lambda v, prev: prev + v, sequences=x,
                         outputs_info=np.float64(10.), n_steps=3)
    np.testing.assert_array_equal(theano.function([x], out)(np.arange(6.)), [10., 11., 13.])
    one, _ = theano.scan(lambda v: v * 2, sequences=[np.arange(4.)], n_steps=1)
    assert theano.function([], one)().tolist() == [0.]


def test_outputs_mixing_none_and_states_and_return_list():
    x = T.dvector("x")
    (doubled, running), _ = theano.scan(lambda v, acc: [v * 2, acc + v], sequences=x,
                                        outputs_info=[None, T.constant(np.float64(0))])
    [only], _ = theano.scan(lambda v: v + 1, sequences=x, return_list=True)
    a, b, c = theano.function([x], [doubled, running, only])([1., 2., 3.])
    assert a.tolist() == [2., 4., 6.] and b.tolist() == [1., 3., 6.] and c.tolist() == [2., 3., 4.]


def test_step_returning_outputs_and_updates_and_tuples():
    counter = theano.shared(np.float64(0), name="counter")
    x = T.dvector("x")
    (a, b), updates = theano.scan(lambda v: ((v, v * counter), {counter: counter + 1}),
                                  sequences=x)
    f = theano.function([x], [a, b], updates=updates)
    out_a, out_b = f([5., 6., 7.])
    assert out_a.tolist() == [5., 6., 7.] and out_b.tolist() == [0., 6., 14.]
    assert counter.get_value() == 3.
    out_a, out_b = f([5., 6., 7.])
    assert out_b.tolist() == [15., 24., 35.] and counter.get_value() == 6.


def test_default_updates_are_carried_through_the_loop():
    """A shared variable with a default_update read by the step advances every step, and
    scan returns its value after the loop (as Theano's random streams rely on)."""
    s = theano.shared(np.float64(0), name="s")
    s.default_update = s + 1
    x = T.dvector("x")
    out, updates = theano.scan(lambda v: v + s, sequences=x)
    assert list(updates) == [s]
    f = theano.function([x], out, updates=updates)
    assert f([10., 10., 10.]).tolist() == [10., 11., 12.]
    assert s.get_value() == 3.
    # an expression of s built outside the step but read inside advances per step too
    d = s * 100
    out2, updates2 = theano.scan(lambda v: v + d, sequences=x)
    assert theano.function([x], out2, updates=updates2)([0., 0.]).tolist() == [300., 400.]
    # passed as a non-sequence, it is computed once before the loop
    out3, updates3 = theano.scan(lambda v, d: v + d, sequences=x, non_sequences=d)
    assert len(updates3) == 0
    assert theano.function([x], out3, no_default_updates=True)([0., 0.]).tolist() == [500., 500.]


def test_until_with_shared_updates():
    count = theano.shared(0, name="count")
    limit = T.lscalar("limit")
    out, updates = theano.scan(
        lambda prev: (prev + 1, {count: count + 1}, until(prev + 1 >= limit)),
        outputs_info=T.constant(np.int64(0)), n_steps=50)
    f = theano.function([limit], out, updates=updates)
    assert f(4).tolist() == [1, 2, 3, 4] and count.get_value() == 4
    assert f(100).tolist() == list(range(1, 51)) and count.get_value() == 54


def test_givens_feed_a_scan_from_shared_data():
    data = theano.shared(np.arange(12.).reshape(6, 2), name="data")
    index = T.lscalar("index")
    x = T.dmatrix("x")
    sums, _ = theano.scan(lambda row, acc: acc + row.sum(), sequences=x,
                          outputs_info=T.constant(np.float64(0)))
    f = theano.function([index], sums[-1], givens={x: data[index * 3:(index + 1) * 3]})
    assert f(0) == 15. and f(1) == 51.


def test_graph_with_scan_pickles():
    W = theano.shared(RNG.randn(2, 2), name="W")
    x = T.dmatrix("x")
    h, _ = theano.scan(lambda x_t, h_tm1: T.tanh(x_t + T.dot(h_tm1, W)), sequences=x,
                       outputs_info=T.zeros((2,), dtype="float64"))
    cost = (h ** 2).sum()
    xs = RNG.randn(4, 2)
    expected = theano.function([x], [h, T.grad(cost, W)])(xs)
    restored = pickle.loads(pickle.dumps({"x": x, "h": h, "cost": cost, "W": W}))
    got = theano.function([restored["x"]],
                          [restored["h"], T.grad(restored["cost"], restored["W"])])(xs)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b)


def test_printing_a_scan_graph():
    x = T.dvector("x")
    out, _ = theano.scan(lambda v: v * 2, sequences=x, name="doubler")
    text = theano.printing.debugprint(out, file="str")
    assert "for{cpu,doubler}" in text
    assert "for{cpu,doubler}" in theano.pp(out)


# -- errors in Theano's terms -------------------------------------------------------------

def test_errors_at_construction():
    x = T.dvector("x")
    with pytest.raises(ValueError, match="number of steps"):
        theano.scan(lambda: T.constant(1.))
    with pytest.raises(ValueError, match="n_steps must be an int"):
        theano.scan(lambda: T.constant(1.), n_steps=T.dscalar())
    with pytest.raises(ValueError, match="provide None as outputs_info"):
        theano.scan(lambda v, a: [v, a], sequences=x, outputs_info=[T.constant(0.)])
    with pytest.raises(ValueError, match="future taps"):
        theano.scan(lambda a: a, outputs_info=dict(initial=x, taps=[1]), n_steps=2)
    with pytest.raises(TypeError, match="float32.*float64|dtype"):
        theano.scan(lambda v, acc: acc + v, sequences=x, outputs_info=T.constant(np.float32(0)))
    with pytest.raises(TypeError, match="same type"):
        theano.scan(lambda acc: acc + T.dmatrix("m"), outputs_info=T.drow("r"), n_steps=2)
    with pytest.raises(ValueError, match="until"):
        theano.scan(lambda v: (until(v > 0), v), sequences=x)
    with pytest.raises(ValueError, match="updates, outputs"):
        theano.scan(lambda v: ({}, v), sequences=x)
    W = theano.shared(np.ones(3), name="W")
    with pytest.raises(MissingInputError, match="'W'.*non_sequences"):
        theano.scan(lambda v: v * W, sequences=x, strict=True)
    ok, _ = theano.scan(lambda v, W: v * W, sequences=x, non_sequences=W, strict=True)
    assert theano.function([x], ok)([1., 2.]).tolist() == [[1.] * 3, [2.] * 3]


def test_errors_when_compiling_name_the_scan_and_step():
    x = T.dmatrix("x")
    W = T.dmatrix("W")
    out, _ = theano.scan(lambda row, W: T.dot(row, W), sequences=x, non_sequences=W, name="proj")
    f = theano.function([x, W], out)
    with pytest.raises(ValueError, match=r"step 0 of theano.scan 'proj'"):
        f(np.ones((2, 3)), np.ones((4, 5)))
    k = T.lscalar("k")
    short, _ = theano.scan(lambda v: v, sequences=T.dvector("s"), n_steps=k)
    g = theano.function([short.owner.inputs[1], k], short)
    with pytest.raises(ValueError, match="shorter than the required number of steps"):
        g([1., 2.], 3)
    grow, _ = theano.scan(lambda acc: T.concatenate([acc, acc]), outputs_info=T.dvector("a0"),
                          n_steps=2)
    with pytest.raises(ValueError, match="state"):
        theano.function([grow.owner.inputs[1]], grow)([1.])
