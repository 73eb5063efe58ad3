"""The Theano docs' examples of function, shared, grad and scan run on Dragon's Theano and
on PyTensor (Theano's maintained successor); results, dtypes and shapes must agree.

Each program is written once against a (theano, tensor, until) triple and run twice.
PyTensor runs its Python VM here (no C or Numba compilation): the results are those of
its default backend and the test stays quick.
"""
import warnings

import numpy as np
import pytest

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano.scan_module import scan_op, until

pytensor = pytest.importorskip("pytensor", reason="pytensor (Theano's successor) is not "
                                                  "installed; pip install pytensor")
import pytensor.tensor as PT  # noqa: E402
from pytensor.scan.utils import until as pt_until  # noqa: E402

DRAGON = (theano, T, until)
PYTENSOR = (pytensor, PT, pt_until)


@pytest.fixture(autouse=True)
def quiet_pytensor():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


def _mode(th):
    if th is pytensor:
        from pytensor.link.vm import VMLinker
        return pytensor.compile.mode.Mode(linker=VMLinker(use_cloop=False, c_thunks=False),
                                          optimizer="fast_run")
    return None


def _compile(th, inputs, outputs, **kwargs):
    return th.function(inputs, outputs, mode=_mode(th), **kwargs)


def _scan(th, fn, **kwargs):
    return th.scan(fn, mode=_mode(th), **kwargs)


def _reduce(th, fn, **kwargs):
    if th is pytensor:
        from pytensor.scan.views import reduce
        return reduce(fn, mode=_mode(th), **kwargs)
    return th.reduce(fn, **kwargs)


def _both_lowerings(program, monkeypatch):
    """Dragon's results of ``program`` with scans unrolled, then as core Loop ops."""
    results = []
    for limit in (10 ** 9, 0):
        monkeypatch.setattr(scan_op, "UNROLL_MAX_STEPS", limit)
        results.append(program(*DRAGON))
    return results


def _same(ours, theirs, rtol=1e-10, atol=1e-12):
    assert len(ours) == len(theirs)
    for k, (a, b) in enumerate(zip(ours, theirs)):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape, f"result {k}: shape {a.shape} != {b.shape}"
        assert a.dtype == b.dtype, f"result {k}: dtype {a.dtype} != {b.dtype}"
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=f"result {k}")


# -- function and shared --------------------------------------------------------------------

def _function_and_shared(th, tt, _):
    out = []
    x, y = tt.dscalars("x", "y")
    f = _compile(th, [x, y], x + y)       # (PyTensor dropped In(value=...) defaults)
    out += [f(33, 1), f(33, 2)]
    a, b = tt.dmatrices("a", "b")
    d = a - b
    out += _compile(th, [a, b], [d, abs(d), d ** 2])([[1, 1], [1, 1]], [[0, 1], [2, 3]])
    state = th.shared(0)
    inc = tt.iscalar("inc")
    accumulator = _compile(th, [inc], state, updates=[(state, state + inc)])
    decrementor = _compile(th, [inc], state, updates=[(state, state - inc)])
    out += [accumulator(1), accumulator(300), state.get_value(), decrementor(2),
            state.get_value()]
    fn_of_state = state * 2 + inc
    foo = tt.scalar(dtype=state.dtype)
    skip_shared = _compile(th, [inc, foo], fn_of_state, givens=[(state, foo)])
    out += [skip_shared(1, 3), state.get_value()]
    data = th.shared(np.arange(10.), name="data")
    i = tt.lscalar("i")
    xs = tt.dvector("xs")
    out.append(_compile(th, [i], (xs ** 2).sum(), givens={xs: data[i * 3:(i + 1) * 3]})(2))
    return out


def test_function_and_shared_match_pytensor():
    _same(_function_and_shared(*DRAGON), _function_and_shared(*PYTENSOR))


# -- grad ------------------------------------------------------------------------------------

def _gradients(th, tt, _):
    out = []
    x = tt.dscalar("x")
    out.append(_compile(th, [x], tt.grad(x ** 2, x))(94.2))
    m = tt.dmatrix("m")
    s = tt.sum(1 / (1 + tt.exp(-m)))
    out.append(_compile(th, [m], tt.grad(s, m))([[0, 1], [-1, -2]]))
    rng = np.random.RandomState(3)
    feats, n = 5, 12
    X, y = rng.randn(n, feats), rng.randint(0, 2, n).astype("float64")
    w = th.shared(rng.randn(feats), name="w")
    b = th.shared(0., name="b")
    xm, yv = tt.dmatrix("x"), tt.dvector("y")
    p_1 = 1 / (1 + tt.exp(-tt.dot(xm, w) - b))
    xent = -yv * tt.log(p_1) - (1 - yv) * tt.log(1 - p_1)
    cost = xent.mean() + 0.01 * (w ** 2).sum()
    gw, gb = tt.grad(cost, [w, b])
    train = _compile(th, [xm, yv], [cost, gw, gb], updates=[(w, w - 0.1 * gw), (b, b - 0.1 * gb)])
    for _ in range(5):
        out += list(train(X, y))
    out += [w.get_value(), b.get_value()]
    v = tt.dvector("v")
    hessian = tt.hessian((v ** 3).sum() + v[0] * v[1] * tt.exp(v[2]), v)
    out.append(_compile(th, [v], hessian)([1., 2., 3.]))
    return out


def test_gradients_match_pytensor():
    _same(_gradients(*DRAGON), _gradients(*PYTENSOR), rtol=1e-9)


# -- scan ------------------------------------------------------------------------------------

def _scan_docs(th, tt, _):
    out = []
    k, A = tt.iscalar("k"), tt.dvector("A")
    result, updates = _scan(th, lambda prior, A: prior * A, outputs_info=tt.ones_like(A),
                              non_sequences=A, n_steps=k)
    power = _compile(th, [A, k], result[-1], updates=updates)
    out += [power(np.arange(10.), 2), power(np.arange(10.), 4)]
    coefficients, x = tt.dvector("coefficients"), tt.dscalar("x")
    components, _ = _scan(th, lambda c, p, free: c * (free ** p), outputs_info=None,
                            sequences=[coefficients, tt.arange(10000)], non_sequences=x)
    out.append(_compile(th, [coefficients, x], components.sum())([1., 0., 2.], 3.))
    X, U, V, W = tt.dmatrices("X", "U", "V", "W")
    b_sym, n_sym = tt.dvector("b"), tt.iscalar("n")
    seq, _ = _scan(th, lambda x_tm2, x_tm1: tt.dot(x_tm2, U) + tt.dot(x_tm1, V) +
                     tt.tanh(tt.dot(x_tm1, W) + b_sym),
                     n_steps=n_sym, outputs_info=[dict(initial=X, taps=[-2, -1])])
    x0 = np.zeros((2, 2))
    x0[1, 1] = 1
    out.append(_compile(th, [X, U, V, W, b_sym, n_sym], seq)(
        x0, 0.5 * (np.ones((2, 2)) - np.eye(2)), 0.5 * np.ones((2, 2)), 0.5 * np.ones((2, 2)),
        np.ones(2), 10))
    v, M = tt.dvector("v"), tt.dmatrix("M")
    y = tt.tanh(tt.dot(v, M))
    jac, _ = _scan(th, lambda i: tt.grad(y[i], v), sequences=[tt.arange(y.shape[0])])
    w = np.eye(5, 3)
    w[2] = 1
    out.append(_compile(th, [M, v], jac)(w, np.eye(5)[0]))
    rows, _ = _scan(th, lambda row: tt.tanh(tt.dot(row, W) + b_sym), sequences=X)
    out.append(_compile(th, [X, W, b_sym], rows)(np.eye(2), np.ones((2, 2)), np.array([1., 2.])))
    counter = th.shared(0)
    steps = tt.iscalar("steps")
    _, counting = _scan(th, lambda: {counter: counter + 1}, n_steps=steps)
    _compile(th, [steps], [], updates=counting)(5)
    out.append(counter.get_value())
    return out


def test_scan_docs_examples_match_pytensor(monkeypatch):
    theirs = _scan_docs(*PYTENSOR)
    for ours in _both_lowerings(_scan_docs, monkeypatch):
        _same(ours, theirs)


def _scan_features(th, tt, until_):
    out = []
    x = tt.dvector("x")
    back, _ = _scan(th, lambda a, b, acc: acc * 0.5 + a * b, sequences=dict(input=x, taps=[-2, 1]),
                      outputs_info=tt.constant(np.float64(1)), go_backwards=True)
    fib, _ = _scan(th, lambda a, b: a + b, outputs_info=dict(initial=tt.cast(x[:2], "int64"),
                                                           taps=[-2, -1]), n_steps=6)
    (twice, running), _ = _scan(th, lambda v, acc: [v * 2, acc + v], sequences=x,
                                  outputs_info=[None, tt.constant(np.float64(0))])
    total, _ = _reduce(th, lambda v, acc: acc + v ** 2, sequences=x,
                         outputs_info=tt.constant(np.float64(0)))
    xs = np.array([1., 2., 3., 4., 5., 6.])
    out += list(_compile(th, [x], [back, fib, twice, running, total])(xs))
    limit = tt.dscalar("limit")
    powers, _ = _scan(th, lambda p, m: (p * 2, until_(p * 2 > m)), outputs_info=tt.constant(1.),
                        non_sequences=limit, n_steps=1024)
    f = _compile(th, [limit], powers)
    out += [f(45.), f(1000.)]
    return out


def test_scan_features_match_pytensor(monkeypatch):
    theirs = _scan_features(*PYTENSOR)
    for ours in _both_lowerings(_scan_features, monkeypatch):
        _same(ours, theirs)


def _bptt(th, tt, _):
    rng = np.random.RandomState(11)
    Wx = th.shared(rng.randn(3, 4) * 0.5, name="Wx")
    Wh = th.shared(rng.randn(4, 4) * 0.5, name="Wh")
    x, h0 = tt.dmatrix("x"), tt.dvector("h0")
    h, _ = _scan(th, lambda x_t, h_tm1: tt.tanh(tt.dot(x_t, Wx) + tt.dot(h_tm1, Wh)),
                   sequences=x, outputs_info=h0)
    cost = (h[-1] ** 2).sum() + (h ** 2).mean()
    truncated, _ = _scan(th, lambda x_t, h_tm1: tt.tanh(tt.dot(x_t, Wx) + tt.dot(h_tm1, Wh)),
                           sequences=x, outputs_info=h0, truncate_gradient=2)
    grads = tt.grad(cost, [Wx, Wh, x, h0])
    f = _compile(th, [x, h0], [h, cost] + grads + [tt.grad((truncated ** 2).sum(), Wh)])
    return f(rng.randn(6, 3), rng.randn(4) * 0.1)


def test_bptt_matches_pytensor(monkeypatch):
    theirs = _bptt(*PYTENSOR)
    for ours in _both_lowerings(_bptt, monkeypatch):
        _same(ours, theirs, rtol=1e-9)
