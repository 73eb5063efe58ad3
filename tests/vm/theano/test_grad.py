"""T.grad against central finite differences for every differentiable function of
theano.tensor, and the options of grad, jacobian, hessian, Rop, Lop."""
import numpy as np
import pytest

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano import function
from dragon.vm.theano.gradient import DisconnectedInputError, disconnected_grad, zero_grad
from dragon.vm.theano.ifelse import ifelse
from dragon.vm.theano.tensor import extra_ops

RNG = np.random.RandomState(42)


def _away(x, points=(0.0,), margin=0.1):
    x = np.array(x, copy=True)
    for p in points:
        close = np.abs(x - p) < margin
        x[close] = p + np.where(x[close] >= p, margin, -margin)
    return x


A = _away(RNG.uniform(-1, 1, (3, 4)))
B = _away(RNG.uniform(-1, 1, (3, 4)), points=(0.0,)) + 0.05
P = RNG.uniform(0.5, 2.0, (3, 4))
U = _away(RNG.uniform(-1, 1, 4))
S = _away(RNG.uniform(-1, 1, (4, 3)))
IDX = np.array([2, 0, 2], "int32")

# name -> (build(*variables) -> expression, input values). Each expression is reduced with
# fixed random weights so every output entry matters.
CASES = {
    "add": (lambda a, b: a + b, [A, B]),
    "sub": (lambda a, b: a - b, [A, B]),
    "mul": (lambda a, b: a * b, [A, B]),
    "true_div": (lambda a, b: a / b, [A, P]),
    "pow": (lambda a, b: a ** b, [P, B]),
    "pow_const": (lambda a: a ** 3, [A]),
    "mod": (lambda a: T.mod(a, 0.7), [_away(A, (0.0, 0.7, -0.7))]),
    "neg": (lambda a: -a, [A]),
    "abs_": (lambda a: T.abs_(a), [A]),
    "exp": (lambda a: T.exp(a), [A]),
    "expm1": (lambda a: T.expm1(a), [A]),
    "log": (lambda a: T.log(a), [P]),
    "log1p": (lambda a: T.log1p(a), [P]),
    "log2": (lambda a: T.log2(a), [P]),
    "sqrt": (lambda a: T.sqrt(a), [P]),
    "sqr": (lambda a: T.sqr(a), [A]),
    "inv": (lambda a: T.inv(a), [P]),
    "tanh": (lambda a: T.tanh(a), [A]),
    "sin": (lambda a: T.sin(a), [A]),
    "cos": (lambda a: T.cos(a), [A]),
    "erf": (lambda a: T.erf(a), [A]),
    "sigmoid_pattern": (lambda a: 1 / (1 + T.exp(-a)), [A]),
    "log_sigmoid_pattern": (lambda a: T.log(1 - 1 / (1 + T.exp(-a))), [A]),
    "maximum": (lambda a, b: T.maximum(a, b), [A, B]),
    "minimum": (lambda a, b: T.minimum(a, b), [A, B]),
    "clip": (lambda a: T.clip(a, -0.5, 0.5), [_away(A, (0.5, -0.5))]),
    "switch": (lambda a, b: T.switch(T.gt(a, b), a * 2, b), [A, B]),
    "ifelse": (lambda a, b: ifelse(T.gt(a.sum(), 0), a * 2, b), [A, B]),
    "sum": (lambda a: T.sum(a, axis=1), [A]),
    "sum_keepdims": (lambda a: a.sum(axis=0, keepdims=True), [A]),
    "mean": (lambda a: T.mean(a, axis=0), [A]),
    "prod": (lambda a: T.prod(a, axis=1), [A]),
    "max": (lambda a: T.max(a, axis=1), [A]),
    "min": (lambda a: T.min(a), [A]),
    "var": (lambda a: T.var(a, axis=1), [A]),
    "std": (lambda a: T.std(a), [A]),
    "norm": (lambda a: a.norm(2, axis=0), [A]),
    "dot_mm": (lambda a, s: T.dot(a, s), [A, S]),
    "dot_mv": (lambda a, u: T.dot(a, u), [A, U]),
    "dot_vv": (lambda u: T.dot(u, u), [U]),
    "dot_3d": (lambda a, s: T.dot(a.reshape((3, 2, 2)), s[:2]), [A, S]),
    "outer": (lambda u: T.outer(u, u * 2), [U]),
    "tensordot": (lambda a, s: T.tensordot(a, s, axes=[[1], [0]]), [A, S]),
    "batched_dot": (lambda a, b: T.batched_dot(a, b), [A, B]),
    "transpose": (lambda a: a.T, [A]),
    "dimshuffle": (lambda a: a.dimshuffle(1, "x", 0), [A]),
    "reshape": (lambda a: a.reshape((2, 6)), [A]),
    "reshape_symbolic": (lambda a: a.reshape((a.shape[1], -1)), [A]),
    "flatten": (lambda a: a.flatten(), [A]),
    "concatenate": (lambda a, b: T.concatenate([a, b], axis=1), [A, B]),
    "stack": (lambda a, b: T.stack([a, b], axis=1), [A, B]),
    "alloc": (lambda u: T.alloc(u, 3, 4), [U]),
    "fill": (lambda a, u: T.fill(a, u), [A, U]),
    "cast": (lambda a: T.cast(a, "float32"), [A]),
    "slice": (lambda a: a[1:, ::2], [A]),
    "int_index": (lambda a: a[1, -1], [A]),
    "adv_index": (lambda a: a[IDX], [A]),
    "adv_pair": (lambda a: a[T.arange(3), IDX], [A]),
    "set_subtensor": (lambda a, u: T.set_subtensor(a[1], u), [A, U]),
    "set_subtensor_adv": (lambda a, u: T.set_subtensor(a[[0, 2]], u), [A, U]),
    "inc_subtensor": (lambda a, u: T.inc_subtensor(a[:, 1:3], u[:2]), [A, U]),
    "inc_subtensor_adv": (lambda a, u: T.inc_subtensor(a[IDX], u), [A, U]),
    "cumsum": (lambda a: extra_ops.cumsum(a, axis=1), [A]),
    "cumprod": (lambda a: extra_ops.cumprod(a, axis=0), [A]),
    "repeat": (lambda a: extra_ops.repeat(a, 2, axis=1), [A]),
    "diff": (lambda a: extra_ops.diff(a), [A]),
    "largest": (lambda a, b: T.largest(a, b, 0.2), [A, _away(B, (0.2,))]),
}


def _check(build, values, rtol=1e-5, atol=1e-7, eps=1e-6):
    variables = [T.TensorType("float64", (False,) * np.ndim(v))() for v in values]
    out = build(*variables)
    weights = RNG.standard_normal(np.shape(function(variables, out)(*values)))
    cost = (out * weights).sum() if out.ndim else out * 1.7
    grads = T.grad(cost, variables)
    f_cost = function(variables, cost)
    analytic = function(variables, grads)(*values)
    points = [np.array(v, dtype="float64", copy=True) for v in values]
    for k, (point, got) in enumerate(zip(points, analytic)):
        numeric = np.zeros_like(point)
        flat = point.reshape(-1)
        for j in range(flat.size):
            old = flat[j]
            flat[j] = old + eps
            up = float(f_cost(*points))
            flat[j] = old - eps
            down = float(f_cost(*points))
            flat[j] = old
            numeric.reshape(-1)[j] = (up - down) / (2 * eps)
        np.testing.assert_allclose(got, numeric, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of input {k}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_matches_finite_differences(name):
    build, values = CASES[name]
    if name == "cast":   # float32 in the middle: finite differences need a larger step
        _check(build, values, rtol=1e-3, atol=1e-3, eps=1e-3)
    else:
        _check(build, values)


def test_grad_of_a_small_network_in_float32():
    with theano.change_flags(floatX="float32"):
        x = T.matrix("x")
        w = theano.shared(RNG.uniform(-1, 1, (4, 3)).astype("float32"))
        cost = T.tanh(T.dot(x, w)).mean()
        gw = T.grad(cost, w)
        assert gw.dtype == "float32" and gw.type == w.type
        value = function([x], gw)(A.astype("float32"))
        assert value.dtype == np.float32


def test_consider_constant_and_disconnected_grad():
    x = T.dvector("x")
    y = x * 2
    cost = (y ** 2).sum() + x.sum()
    g = T.grad(cost, x, consider_constant=[y])
    np.testing.assert_array_equal(function([x], g)([1., 2.]), [1., 1.])
    with pytest.raises(DisconnectedInputError):
        T.grad((y ** 2).sum(), x, consider_constant=[y])
    with pytest.raises(DisconnectedInputError):
        T.grad(disconnected_grad(x).sum(), x)
    g = T.grad(disconnected_grad(x).sum() * x.sum(), x)
    np.testing.assert_array_equal(function([x], g)([1., 2.]), [3., 3.])
    g = T.grad((zero_grad(x) * x).sum(), x)
    np.testing.assert_array_equal(function([x], g)([1., 2.]), [1., 2.])


def test_disconnected_inputs_options():
    x, z = T.dvectors("x", "z")
    cost = (x ** 2).sum()
    with pytest.raises(DisconnectedInputError):
        T.grad(cost, z)
    gz = T.grad(cost, z, disconnected_inputs="ignore")
    np.testing.assert_array_equal(function([z], gz)([1., 2.]), [0., 0.])
    assert T.grad(cost, [z], disconnected_inputs="ignore", return_disconnected="None") == [None]
    with pytest.warns(UserWarning):
        T.grad(cost, z, disconnected_inputs="warn")
    with pytest.raises(TypeError, match="scalar"):
        T.grad(x * 2, x)
    with pytest.raises(DisconnectedInputError):
        T.grad(x.shape[0] * 1.0, x)


def test_known_grads_and_integer_wrt():
    x = T.dvector("x")
    h = x * 3
    g = T.grad(None, x, known_grads={h: T.ones_like(h) * 2})
    np.testing.assert_array_equal(function([x], g)([1., 1.]), [6., 6.])
    i = T.ivector("i")
    gi = T.grad((i * x).sum(), i)
    assert gi.dtype.startswith("float")
    np.testing.assert_array_equal(function([i, x], gi)([1, 2], [1., 1.]), [0., 0.])


def test_gradients_of_one_cost_share_one_backward_pass():
    x = T.dmatrix("x")
    w1 = theano.shared(RNG.rand(4, 5))
    w2 = theano.shared(RNG.rand(5, 2))
    cost = T.tanh(T.dot(T.tanh(T.dot(x, w1)), w2)).sum()
    g1 = T.grad(cost, w1)
    g2 = T.grad(cost, w2)
    f = function([x], [g1, g2])
    f(A)
    plan = next(iter(f._plans.values())).fn.last_plan
    tanh_grads = [s for s in plan.steps if s.op_def.type == "TanhGradient"]
    assert len(tanh_grads) == 2   # one per tanh: the two grads share the backward pass


def test_jacobian_hessian_rop_lop_against_numpy():
    x = T.dvector("x")
    W = T.dmatrix("W")
    y = T.dot(W, x) ** 2
    J = T.jacobian(y, x)
    xv, Wv = U, A
    expected_J = 2 * (Wv @ xv)[:, None] * Wv
    np.testing.assert_allclose(function([x, W], J)(xv, Wv), expected_J)
    Jw = T.jacobian(y, [x, W])
    assert function([x, W], Jw[1])(xv, Wv).shape == (3, 3, 4)
    H = T.hessian((x ** 3).sum() + T.dot(x, x) * x.sum(), x)
    s = xv.sum()
    expected_H = np.diag(6 * xv) + 2 * (np.ones((4, 4)) * 0 + xv[:, None] + xv[None, :]) + \
        2 * s * np.eye(4)
    np.testing.assert_allclose(function([x], H)(xv), expected_H)
    v = T.dvector("v")
    np.testing.assert_allclose(function([x, W, v], T.Rop(y, x, v))(xv, Wv, U[::-1]),
                               expected_J @ U[::-1])
    u = T.dvector("u")
    np.testing.assert_allclose(function([x, W, u], T.Lop(y, x, u))(xv, Wv, B[0, :3]),
                               B[0, :3] @ expected_J)


def test_grad_output_names():
    x = T.dscalar("x")
    cost = x ** 2
    cost.name = "cost"
    assert T.grad(cost, x).name == "(dcost/dx)"
