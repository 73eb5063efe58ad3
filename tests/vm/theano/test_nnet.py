"""theano.tensor.nnet: activations, softmax, cross-entropies and batch normalization.

Forward results against numpy references, T.grad against central finite differences
for every function (float64, small shapes), Theano's stabilizations (log(softmax),
cross-entropy of a softmax or of a sigmoid stay finite), dtypes and errors. Where
PyTensor is installed, softmax/sigmoid values and gradients are compared with it.
"""
import warnings

import numpy as np
import pytest

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano.gradient import numeric_grad
from dragon.vm.theano.tensor.nnet import bn

RNG = np.random.RandomState(3)


def away(x, points=(0.0,), margin=0.05):
    """``x`` moved at least ``margin`` away from the kinks at ``points``."""
    x = np.array(x, dtype="float64", copy=True)
    for p in points:
        close = np.abs(x - p) < margin
        x[close] = p + np.where(x[close] >= p, margin, -margin)
    return x


def variables_for(values):
    return [T.TensorType(np.asarray(v).dtype, (False,) * np.ndim(v))(f"in{k}")
            for k, v in enumerate(values)]


def assert_grad_matches_fd(build, values, wrt=None, rtol=1e-5, atol=1e-7, eps=1e-6):
    """T.grad of sum(build(*inputs) * weights) against central finite differences.

    ``wrt``: indices of the inputs to differentiate (default: every float input).
    """
    values = [np.asarray(v) for v in values]
    inputs = variables_for(values)
    out = build(*inputs)
    shape = theano.function(inputs, out, on_unused_input="ignore")(*values).shape
    weights = T.constant(np.random.RandomState(0).standard_normal(shape))
    cost = (out * weights).sum()
    wrt = [k for k, v in enumerate(values) if v.dtype.kind == "f"] if wrt is None else wrt
    f_cost = theano.function(inputs, cost, on_unused_input="ignore")
    analytic = theano.function(inputs, T.grad(cost, [inputs[k] for k in wrt]),
                               on_unused_input="ignore")(*values)

    def cost_at(*points):
        full = list(values)
        for k, p in zip(wrt, points):
            full[k] = p
        return f_cost(*full)

    numeric = numeric_grad(cost_at, [values[k] for k in wrt], eps=eps)
    for k, a, n in zip(wrt, analytic, numeric):
        np.testing.assert_allclose(a, n, rtol=rtol, atol=atol, err_msg=f"d cost / d input {k}")


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_ultra_fast_sigmoid(x):
    t = np.abs(x / 2)
    z = np.where(t < 1.7, 1.5 * t / (1 + t),
                 np.where(t < 3, 0.935409070603099 + 0.0458812946797165 * (t - 1.7),
                          0.99505475368673))
    return 0.5 * (np.sign(x) * z + 1)


A = away(RNG.uniform(-3, 3, (3, 5)))
B = RNG.uniform(-1, 1, 5)
P = RNG.dirichlet(np.ones(5), size=3)
LABELS = np.array([4, 0, 2], "int32")
TARGETS = RNG.uniform(0.05, 0.95, (3, 5))
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805

# name -> (build, inputs, numpy reference of the forward result)
CASES = {
    "sigmoid": (T.nnet.sigmoid, [A], np_sigmoid),
    "softplus": (T.nnet.softplus, [A], lambda x: np.log1p(np.exp(x))),
    "hard_sigmoid": (T.nnet.hard_sigmoid, [away(A, (-2.5, 2.5))],
                     lambda x: np.clip(0.2 * x + 0.5, 0, 1)),
    "ultra_fast_sigmoid": (T.nnet.ultra_fast_sigmoid, [away(A, (0.0, -3.4, 3.4, -6, 6))],
                           np_ultra_fast_sigmoid),
    "relu": (T.nnet.relu, [A], lambda x: np.maximum(x, 0)),
    "relu_leaky": (lambda x: T.nnet.relu(x, 0.1), [A], lambda x: np.where(x > 0, x, 0.1 * x)),
    "relu_symbolic_alpha": (lambda x, a: T.nnet.relu(x, a), [A, np.float64(0.3)],
                            lambda x, a: np.where(x > 0, x, a * x)),
    "elu": (T.nnet.elu, [A], lambda x: np.where(x > 0, x, np.expm1(x))),
    "elu_alpha": (lambda x: T.nnet.elu(x, 0.5), [A],
                  lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    "elu_symbolic_alpha": (lambda x, a: T.nnet.elu(x, a), [A, np.float64(0.7)],
                           lambda x, a: np.where(x > 0, x, a * np.expm1(x))),
    "selu": (T.nnet.selu, [A],
             lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))),
    "softsign": (T.nnet.softsign, [A], lambda x: x / (1 + np.abs(x))),
    "softmax": (T.nnet.softmax, [A], np_softmax),
    "softmax_vector": (T.nnet.softmax, [B], lambda v: np_softmax(v[None])),
    "logsoftmax": (T.nnet.logsoftmax, [A], lambda x: np.log(np_softmax(x))),
    "log_of_softmax": (lambda x: T.log(T.nnet.softmax(x)), [A], lambda x: np.log(np_softmax(x))),
    "softmax_with_bias": (T.nnet.softmax_with_bias, [A, B], lambda x, b: np_softmax(x + b)),
    "softmax_graph": (T.nnet.softmax_graph, [A], np_softmax),
    "categorical_crossentropy_labels": (
        lambda p, y: T.nnet.categorical_crossentropy(p, y), [P, LABELS],
        lambda p, y: -np.log(p[np.arange(3), y])),
    "categorical_crossentropy_dense": (
        lambda p, t: T.nnet.categorical_crossentropy(p, t), [P, TARGETS],
        lambda p, t: -(t * np.log(p)).sum(axis=1)),
    "categorical_crossentropy_of_softmax": (
        lambda x, y: T.nnet.categorical_crossentropy(T.nnet.softmax(x), y), [A, LABELS],
        lambda x, y: -np.log(np_softmax(x)[np.arange(3), y])),
    "crossentropy_softmax_1hot": (
        lambda x, y: T.nnet.crossentropy_softmax_1hot(x, y)[0], [A, LABELS],
        lambda x, y: -np.log(np_softmax(x)[np.arange(3), y])),
    "binary_crossentropy": (
        T.nnet.binary_crossentropy, [np_sigmoid(A), TARGETS],
        lambda o, t: -(t * np.log(o) + (1 - t) * np.log(1 - o))),
    "binary_crossentropy_of_sigmoid": (
        lambda z, t: T.nnet.binary_crossentropy(T.nnet.sigmoid(z), t), [A, TARGETS],
        lambda z, t: -(t * np.log(np_sigmoid(z)) + (1 - t) * np.log(1 - np_sigmoid(z)))),
    "sigmoid_binary_crossentropy": (
        T.nnet.sigmoid_binary_crossentropy, [A, TARGETS],
        lambda z, t: -(t * np.log(np_sigmoid(z)) + (1 - t) * np.log(1 - np_sigmoid(z)))),
    "batch_normalization": (
        lambda x, g, b: T.nnet.batch_normalization(x, g, b, x.mean(0, keepdims=True),
                                                   T.sqrt(x.var(0, keepdims=True) + 1e-4)),
        [A, B + 2, B],
        lambda x, g, b: (x - x.mean(0)) * g / np.sqrt(x.var(0) + 1e-4) + b),
    "batch_normalization_train": (
        lambda x, g, b: bn.batch_normalization_train(x, g, b)[0], [A, B + 2, B],
        lambda x, g, b: (x - x.mean(0)) * g / np.sqrt(x.var(0) + 1e-4) + b),
    "batch_normalization_test": (
        lambda x, g, b, m, v: bn.batch_normalization_test(x, g, b, m, v),
        [A, B + 2, B, B * 0.1, B ** 2 + 0.5],
        lambda x, g, b, m, v: (x - m) * g / np.sqrt(v + 1e-4) + b),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_forward_matches_numpy(name):
    build, values, reference = CASES[name]
    inputs = variables_for(values)
    got = theano.function(inputs, build(*inputs), on_unused_input="ignore")(*values)
    want = reference(*values)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_matches_finite_differences(name):
    build, values, _ = CASES[name]
    assert_grad_matches_fd(build, values)


def test_ultra_fast_sigmoid_is_close_to_sigmoid():
    x = T.dvector("x")
    grid = np.linspace(-10, 10, 401)
    got = theano.function([x], T.nnet.ultra_fast_sigmoid(x))(grid)
    assert np.abs(got - np_sigmoid(grid)).max() < 0.03
    assert got.min() > 0 and got.max() < 1


def test_batch_normalization_train_statistics_and_running_averages():
    x = T.dtensor4("x")
    gamma, beta = T.dvector("gamma"), T.dvector("beta")
    rm, rv = T.dvector("rm"), T.dvector("rv")
    out, mean, invstd, new_rm, new_rv = bn.batch_normalization_train(
        x, gamma, beta, axes="spatial", epsilon=1e-3, running_average_factor=0.25,
        running_mean=rm, running_var=rv)
    assert mean.type == T.dvector().type and new_rv.ndim == 1
    f = theano.function([x, gamma, beta, rm, rv], [out, mean, invstd, new_rm, new_rv])
    xv = RNG.standard_normal((4, 3, 2, 5))
    g, b, m0, v0 = RNG.uniform(1, 2, 3), RNG.uniform(-1, 1, 3), np.zeros(3), np.ones(3)
    got = f(xv, g, b, m0, v0)
    mu = xv.mean(axis=(0, 2, 3))
    var = xv.var(axis=(0, 2, 3))
    inv = 1 / np.sqrt(var + 1e-3)
    shape = (1, 3, 1, 1)
    np.testing.assert_allclose(got[0], (xv - mu.reshape(shape)) * (g * inv).reshape(shape)
                               + b.reshape(shape), rtol=1e-10)
    np.testing.assert_allclose(got[1], mu, rtol=1e-10)
    np.testing.assert_allclose(got[2], inv, rtol=1e-10)
    m = xv.size / 3
    np.testing.assert_allclose(got[3], 0.75 * m0 + 0.25 * mu, rtol=1e-10)
    np.testing.assert_allclose(got[4], 0.75 * v0 + 0.25 * var * m / (m - 1), rtol=1e-10)


def test_batch_normalization_train_running_averages_as_updates():
    """The tutorial way: running averages are shared variables updated by the function."""
    x = T.dmatrix("x")
    rm = theano.shared(np.zeros(5), "running_mean")
    rv = theano.shared(np.ones(5), "running_var")
    out, _, _, new_rm, new_rv = bn.batch_normalization_train(
        x, T.ones_like(rm), T.zeros_like(rm), running_mean=rm, running_var=rv)
    f = theano.function([x], out, updates=[(rm, new_rm), (rv, new_rv)])
    f(A)
    np.testing.assert_allclose(rm.get_value(), 0.1 * A.mean(0), rtol=1e-10)
    np.testing.assert_allclose(rv.get_value(), 0.9 + 0.1 * A.var(0, ddof=1), rtol=1e-10)


def test_log_softmax_and_crossentropy_of_saturated_softmax_stay_finite():
    x = T.dmatrix("x")
    y = T.ivector("y")
    big = np.array([[1000.0, 0.0, -1000.0]])
    log_p = theano.function([x], T.log(T.nnet.softmax(x)))(big)
    np.testing.assert_allclose(log_p, [[0.0, -1000.0, -2000.0]])
    cost = T.nnet.categorical_crossentropy(T.nnet.softmax(x), y).mean()
    f = theano.function([x, y], [cost, T.grad(cost, x)])
    value, grad = f(big, np.array([2], "int32"))
    assert value == pytest.approx(2000.0)
    np.testing.assert_allclose(grad, [[1.0, 0.0, -1.0]], atol=1e-12)
    nll = -T.mean(T.log(T.nnet.softmax(x))[T.arange(y.shape[0]), y])
    assert theano.function([x, y], nll)(big, np.array([1], "int32")) == pytest.approx(1000.0)


def test_binary_crossentropy_of_saturated_sigmoid_stays_finite():
    z = T.dvector("z")
    t = T.dvector("t")
    cost = T.nnet.binary_crossentropy(T.nnet.sigmoid(z), t).sum()
    f = theano.function([z, t], [cost, T.grad(cost, z)])
    value, grad = f(np.array([-800.0, 800.0]), np.array([1.0, 0.0]))
    assert value == pytest.approx(1600.0)
    np.testing.assert_allclose(grad, [-1.0, 1.0])


def test_dtypes_follow_theano():
    f32 = T.fmatrix("f")
    i32 = T.imatrix("i")
    assert T.nnet.sigmoid(f32).dtype == "float32"
    assert T.nnet.sigmoid(i32).dtype == "float64"
    assert T.nnet.softmax(f32).dtype == "float32"
    assert T.nnet.relu(f32).dtype == "float32"
    assert T.nnet.relu(f32, 0.1).dtype == "float32"
    assert T.nnet.categorical_crossentropy(T.nnet.softmax(f32), T.ivector()).type == \
        T.fvector().type
    assert T.nnet.softmax(T.fvector()).broadcastable == (True, False)
    value = theano.function([f32], T.nnet.softmax(f32))(np.ones((2, 3), "float32"))
    assert value.dtype == np.float32


def test_errors_name_the_variables():
    with pytest.raises(ValueError, match="floats"):
        T.nnet.softmax(T.imatrix("ints"))
    with pytest.raises(TypeError, match="rank mismatch"):
        T.nnet.categorical_crossentropy(T.dmatrix("p"), T.dtensor3("t"))
    with pytest.raises(TypeError, match="labels"):
        T.nnet.crossentropy_categorical_1hot(T.dmatrix("p"), T.dvector("soft"))
    with pytest.raises(ValueError, match="epsilon"):
        bn.batch_normalization_train(T.dmatrix(), T.dvector(), T.dvector(), epsilon=1e-7)
    x, y = T.dmatrix("probs"), T.ivector("labels")
    f = theano.function([x, y], T.nnet.categorical_crossentropy(x, y))
    with pytest.raises(Exception, match="crossentropy_categorical_1hot"):
        f(P, np.array([9, 0, 1], "int32"))


def test_nnet_graphs_pickle():
    import pickle
    x = T.dmatrix("x")
    y = T.ivector("y")
    cost = T.nnet.categorical_crossentropy(T.nnet.softmax(T.nnet.relu(x)), y).mean()
    cost2, x2, y2 = pickle.loads(pickle.dumps((cost, x, y)))
    f = theano.function([x2, y2], cost2)
    want = -np.log(np_softmax(np.maximum(A, 0))[np.arange(3), LABELS]).mean()
    assert f(A, LABELS) == pytest.approx(want)


def test_softmax_and_sigmoid_match_pytensor():
    pytensor = pytest.importorskip("pytensor", reason="pytensor (Theano's successor) is not "
                                                      "installed")
    import pytensor.tensor as PT
    from pytensor.link.vm import VMLinker
    from pytensor.tensor.special import log_softmax, softmax
    mode = pytensor.compile.mode.Mode(linker=VMLinker(use_cloop=False, c_thunks=False),
                                      optimizer="fast_run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        px = PT.dmatrix("x")
        p_cost = (softmax(px, axis=-1) * TARGETS).sum() + log_softmax(px, axis=-1).sum() \
            + PT.sigmoid(px).sum() + PT.softplus(px).sum()
        p_f = pytensor.function([px], [p_cost, pytensor.grad(p_cost, px)], mode=mode)
        want = p_f(A)
    x = T.dmatrix("x")
    cost = (T.nnet.softmax(x) * TARGETS).sum() + T.nnet.logsoftmax(x).sum() \
        + T.nnet.sigmoid(x).sum() + T.nnet.softplus(x).sum()
    got = theano.function([x], [cost, T.grad(cost, x)])(A)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


SECOND_ORDER = {
    "sigmoid": lambda z: T.nnet.sigmoid(z).sum(axis=1) ** 2,
    "tanh": lambda z: T.tanh(z).sum(axis=1) ** 2,
    "softplus": lambda z: T.nnet.softplus(z).sum(axis=1) ** 2,
    "binary_crossentropy_of_sigmoid": lambda z: T.nnet.binary_crossentropy(
        T.nnet.sigmoid(z), TARGETS[:, :4]).sum(axis=1),
    "softmax": lambda z: (T.nnet.softmax(z) * TARGETS[:, :4]).sum(axis=1) ** 2,
    "crossentropy_of_softmax": lambda z: T.nnet.categorical_crossentropy(
        T.nnet.softmax(z), np.array([3, 0, 2], "int32")),
}


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_hessian_and_rop_through_activations(name):
    """Second derivatives through the activations: T.hessian against finite differences
    of T.grad, and T.Rop against the Jacobian times the vector."""
    w = T.dvector("w")
    inputs = np.array([[0.3, -1.2, 0.8, 0.1, 0.5], [1.1, 0.4, -0.6, 0.9, -0.2],
                       [-0.7, 0.2, 0.5, -1.0, 0.3]])
    w0 = np.array([0.4, -0.3, 0.9, 0.2, -0.5, 0.7, 0.1, -0.8, 0.6, -0.1, 0.3, 0.2,
                   -0.4, 0.5, 0.05, -0.6, 0.35, 0.15, -0.25, 0.45])
    z = T.dot(T.constant(inputs), w.reshape((5, 4)))
    per_row = SECOND_ORDER[name](z)
    cost = per_row.sum()
    f_grad = theano.function([w], T.grad(cost, w))
    hessian = theano.function([w], T.hessian(cost, w))(w0)
    eps = 1e-6
    numeric = np.stack([(f_grad(w0 + eps * e) - f_grad(w0 - eps * e)) / (2 * eps)
                        for e in np.eye(len(w0))], axis=1)
    np.testing.assert_allclose(hessian, numeric, rtol=1e-5, atol=1e-7)
    v = T.dvector("v")
    v0 = np.linspace(-1, 1, len(w0))
    rop = theano.function([w, v], T.Rop(per_row, w, v))(w0, v0)
    jacobian = theano.function([w], T.jacobian(per_row, w))(w0)
    np.testing.assert_allclose(rop, jacobian @ v0, rtol=1e-8, atol=1e-10)
