"""theano.tensor: constructors, Theano's dtype rules, operators, indexing and the functions."""

import numpy as np
import pytest

import dragon.vm.theano as theano
import dragon.vm.theano.tensor as T
from dragon.vm.theano import function
from dragon.vm.theano.ifelse import ifelse
from dragon.vm.theano.tensor import extra_ops

RNG = np.random.RandomState(0)
M = RNG.uniform(-2, 2, (3, 4))
V = RNG.uniform(-2, 2, 4)


# -- constructors and types ---------------------------------------------------------------

@pytest.mark.parametrize("prefix,dtype", [("b", "int8"), ("w", "int16"), ("i", "int32"),
                                          ("l", "int64"), ("f", "float32"), ("d", "float64")])
def test_prefixed_constructors(prefix, dtype):
    patterns = {"scalar": (), "vector": (False,), "row": (True, False), "col": (False, True),
                "matrix": (False, False), "tensor3": (False,) * 3, "tensor4": (False,) * 4}
    for kind, pattern in patterns.items():
        v = getattr(T, prefix + kind)("v")
        assert v.dtype == dtype and v.broadcastable == pattern and v.name == "v"


def test_plurals_floatx_and_tensortype():
    a, b = T.dmatrices("a", "b")
    assert (a.name, b.name, a.dtype) == ("a", "b", "float64")
    assert len(T.fvectors(3)) == 3
    assert T.matrix().dtype == "float64"
    with theano.change_flags(floatX="float32"):
        assert T.matrix().dtype == "float32" and T.scalars("p", "q")[1].dtype == "float32"
    t = T.TensorType("float32", (False, True, False, False))("img")
    assert t.ndim == 4 and t.broadcastable[1] and str(t.type) == "TensorType(float32, 4D)"
    assert T.tensor("int32", (False,) * 3).ndim == 3


def test_config_is_writable_and_nested():
    with theano.change_flags(floatX="float32"):
        assert theano.config.floatX == "float32"
    theano.config.warn.sum_div_dimshuffle_bug = False
    assert theano.config.warn.sum_div_dimshuffle_bug is False
    theano.config.gcc.cxxflags = "-O3"
    assert theano.config.gcc.cxxflags == "-O3"
    theano.config.exception_verbosity = "high"
    theano.config.optimizer = "fast_compile"
    assert theano.config.mode == "Mode" and theano.config.device == "cpu"
    theano.config.optimizer = "fast_run"
    with pytest.raises(ValueError):
        theano.config.floatX = "int32"


@pytest.mark.parametrize("build,dtype", [
    (lambda f, i, b: f * 2, "float32"),
    (lambda f, i, b: f * 0.5, "float32"),
    (lambda f, i, b: f * 0.1, "float64"),        # 0.1 is not exact in float32
    (lambda f, i, b: i * 2, "int32"),
    (lambda f, i, b: i + f, "float64"),
    (lambda f, i, b: b + f, "float32"),
    (lambda f, i, b: i / i, "float64"),           # floatX
    (lambda f, i, b: i // 2, "int32"),
    (lambda f, i, b: T.sqrt(i), "float64"),
    (lambda f, i, b: T.sqrt(b), "float32"),
    (lambda f, i, b: T.mean(i), "float64"),
    (lambda f, i, b: T.sum(b), "int64"),
    (lambda f, i, b: T.max(b), "int8"),
    (lambda f, i, b: T.eq(i, 1), "bool"),
    (lambda f, i, b: T.argmax(f), "int64"),
    (lambda f, i, b: abs(i), "int32"),
    (lambda f, i, b: T.arange(5), "int64"),
    (lambda f, i, b: f.shape, "int64"),
    (lambda f, i, b: f.shape[0], "int64"),
])
def test_dtype_rules(build, dtype):
    out = build(T.fvector(), T.ivector(), T.bvector())
    assert out.dtype == dtype
    values = [np.array([1.5, 2.0], "float32"), np.array([3, 4], "int32"), np.array([1, 2], "int8")]
    inputs = [T.fvector(), T.ivector(), T.bvector()]
    result = function(inputs, build(*inputs), on_unused_input="ignore")(*values)
    assert str(np.asarray(result).dtype) == dtype


def test_dtype_rules_with_floatx_float32():
    with theano.change_flags(floatX="float32"):
        i = T.ivector()
        assert (i / 2).dtype == "float32"
        assert (T.fvector() * 0.1).dtype == "float32"
        assert (i * 0.1).dtype == "float64"


# -- operators and methods -------------------------------------------------------------------

def test_python_operators_match_numpy():
    x, y = T.dmatrices("x", "y")
    a, b = M, M[::-1] + 3
    exprs = [x + y, x - y, x * y, x / y, x // y, x % y, abs(x) ** y, -x, abs(x), 2 - x, 1 / y,
             x < y, x <= y, x > y, x >= y, 2 ** x]
    refs = [a + b, a - b, a * b, a / b, a // b, a % b, np.abs(a) ** b, -a, np.abs(a), 2 - a,
            1 / b, a < b, a <= b, a > b, a >= b, 2 ** a]
    for got, want in zip(function([x, y], exprs)(a, b), refs):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_equality_is_identity_and_eq_is_elementwise():
    x = T.dvector()
    assert (x == x) is True and (x == T.dvector()) is False
    assert {x: 1}[x] == 1
    np.testing.assert_array_equal(function([x], [T.eq(x, 1), T.neq(x, 1)])([1., 2.]),
                                  [[True, False], [False, True]])
    assert bool(x)  # Theano: only comparison results refuse a truth value
    with pytest.raises(TypeError):
        bool(x < 1)


def test_methods():
    x = T.dmatrix("x")
    outs = function([x], [x.T, x.reshape((2, 6)), x.reshape((x.shape[0], -1, 2)),
                          x.dimshuffle(1, "x", 0), x.flatten(), x.flatten(2), x.sum(axis=1),
                          x.mean(), x.max(axis=0), x.min(), x.argmax(axis=1), x.argmin(),
                          x.prod(axis=0), x.var(axis=1), x.std(), x.astype("int32"),
                          x.clip(-1, 1), x.norm(2), x.norm(1, axis=0), x.ravel(),
                          x.sum(axis=0, keepdims=True), x.transpose(1, 0), x.cumsum(axis=1),
                          x.round(), x.any(), x.all(axis=1), x.size, x.ndim * 1])(M)
    refs = [M.T, M.reshape(2, 6), M.reshape(3, -1, 2), M.T[:, None, :], M.ravel(),
            M.reshape(3, 4), M.sum(1), M.mean(), M.max(0), M.min(), M.argmax(1), M.argmin(),
            M.prod(0), M.var(1), M.std(), M.astype("int32"), M.clip(-1, 1),
            np.sqrt((M ** 2).sum()), np.abs(M).sum(0), M.ravel(), M.sum(0, keepdims=True), M.T,
            M.cumsum(1), np.sign(M) * np.floor(np.abs(M) + 0.5), M.any(), M.all(1), M.size, 2]
    for k, (got, want) in enumerate(zip(outs, refs)):
        np.testing.assert_allclose(got, want, rtol=1e-10, err_msg=f"method {k}")
        assert np.shape(got) == np.shape(want), k


def test_dimshuffle_broadcast_rules():
    b = T.dvector("b")
    assert b.dimshuffle("x", 0, "x", "x").broadcastable == (True, False, True, True)
    r = T.drow("r")
    assert r.dimshuffle(1).broadcastable == (False,)
    with pytest.raises(ValueError, match="not broadcastable"):
        T.dmatrix().dimshuffle(1)
    x4 = T.dtensor4("x4")
    f = function([x4, b], x4 + b.dimshuffle("x", 0, "x", "x"))
    data = np.zeros((2, 3, 2, 2))
    np.testing.assert_array_equal(f(data, [1., 2., 3.])[1, :, 0, 0], [1., 2., 3.])


# -- indexing -------------------------------------------------------------------------------

@pytest.mark.parametrize("key", [
    (slice(1, 3), slice(None, None, 2)), (slice(None), None), (Ellipsis, 0), (-1,),
    (slice(None, None, -1),), (1, slice(1, None)), (np.array([2, 0]),),
    (np.array([2, 0]), slice(1, None)), (slice(None), np.array([3, 1])),
    (np.array([2, 0]), np.array([1, 3])), (0, np.array([1, 2])),
    (slice(1, None), None, np.array([0, 3])), (np.array([[0, 1], [2, 2]]),),
])
def test_indexing_matches_numpy(key):
    x = T.dmatrix("x")
    np.testing.assert_array_equal(function([x], x[key])(M), M[key])


def test_symbolic_indices():
    x = T.dmatrix("x")
    k = T.iscalar("k")
    idx = T.ivector("idx")
    y = T.ivector("y")
    f = function([x, k, idx, y], [x[k], x[:, k], x[k:k + 2], x[idx], x[idx, y],
                                  x[T.arange(y.shape[0]), y], x[-k]])
    i = np.array([2, 0], "int32")
    labels = np.array([1, 3, 0], "int32")
    outs = f(M, 1, i, labels[:2])
    refs = [M[1], M[:, 1], M[1:3], M[i], M[i, labels[:2]], M[np.arange(2), labels[:2]], M[-1]]
    for got, want in zip(outs, refs):
        np.testing.assert_array_equal(got, want)


def test_set_and_inc_subtensor():
    x = T.dmatrix("x")
    idx = T.ivector("idx")
    k = T.iscalar("k")
    f = function([x, idx, k], [T.set_subtensor(x[1:3, 1], 7), T.inc_subtensor(x[idx], 1.),
                               T.set_subtensor(x[idx, idx], -1), T.inc_subtensor(x[:, k], [1, 2, 3]),
                               T.set_subtensor(x[k], 0)])
    i = np.array([0, 0], "int32")
    outs = f(M, i, 2)
    r0 = M.copy(); r0[1:3, 1] = 7
    r1 = M.copy(); np.add.at(r1, i, 1.)
    r2 = M.copy(); r2[i, i] = -1
    r3 = M.copy(); r3[:, 2] += [1, 2, 3]
    r4 = M.copy(); r4[2] = 0
    for got, want in zip(outs, [r0, r1, r2, r3, r4]):
        np.testing.assert_allclose(got, want)
    with pytest.raises(TypeError, match="subtensor"):
        T.set_subtensor(x, 0)


def test_boolean_mask_indexing_is_reported():
    x = T.dvector()
    with pytest.raises(NotImplementedError, match="boolean"):
        x[x > 0]


# -- the function list ---------------------------------------------------------------------

def test_elementwise_functions_match_numpy():
    x = T.dvector("x")
    pos = np.abs(V) + 0.5
    cases = [(T.exp, np.exp, V), (T.log, np.log, pos), (T.log1p, np.log1p, pos),
             (T.sqrt, np.sqrt, pos), (T.sqr, np.square, V), (T.tanh, np.tanh, V),
             (T.abs_, np.abs, V), (T.sgn, np.sign, V), (T.neg, np.negative, V),
             (T.inv, np.reciprocal, pos), (T.floor, np.floor, V), (T.ceil, np.ceil, V),
             (T.sin, np.sin, V), (T.cos, np.cos, V), (T.expm1, np.expm1, V),
             (T.log2, np.log2, pos), (T.log10, np.log10, pos),
             (lambda v: T.round(v, "half_to_even"), np.round, V)]
    for build, ref, data in cases:
        np.testing.assert_allclose(function([x], build(x))(data), ref(data), rtol=1e-12)


def test_binary_and_misc_functions():
    x, y = T.dvectors("x", "y")
    b = V[::-1]
    outs = function([x, y], [T.maximum(x, y), T.minimum(x, y), T.clip(x, -0.5, 0.5),
                             T.switch(T.gt(x, y), x, y), T.and_(T.ge(x, 0), T.le(y, 0)),
                             T.or_(T.lt(x, 0), T.gt(y, 0)), T.mod(x, 0.7), T.pow(T.abs_(x), 2),
                             T.largest(x, y, 0), T.smallest(x, y, 0), T.cast(x, "int32"),
                             T.outer(x, y), T.dot(x, y), T.zeros_like(x), T.ones_like(y),
                             T.fill(x, 3.0), T.where(T.lt(x, 0), 0, x)])(V, b)
    refs = [np.maximum(V, b), np.minimum(V, b), np.clip(V, -0.5, 0.5), np.where(V > b, V, b),
            (V >= 0) & (b <= 0), (V < 0) | (b > 0), np.mod(V, 0.7), np.abs(V) ** 2,
            np.maximum(np.maximum(V, b), 0), np.minimum(np.minimum(V, b), 0),
            V.astype("int32"), np.outer(V, b), V @ b, np.zeros(4), np.ones(4), np.full(4, 3.),
            np.where(V < 0, 0, V)]
    for k, (got, want) in enumerate(zip(outs, refs)):
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"case {k}")


def test_joining_and_making_tensors():
    x, y = T.dmatrices("x", "y")
    n = T.lscalar("n")
    outs = function([x, y, n], [T.concatenate([x, y], axis=1), T.join(0, x, y), T.stack([x, y]),
                                 T.stack(x, y, axis=2), T.zeros((n, 2)), T.ones((2, n), "int32"),
                                 T.alloc(1.5, n, 3), T.alloc(x[0], 2, 4), T.arange(1, n, 2),
                                 T.shape_padleft(x), T.shape_padright(x, 2), T.addbroadcast(x[:1], 0),
                                 T.tensordot(x, y, axes=[[1], [1]]), T.batched_dot(x, y),
                                 T.constant(np.eye(2)), T.as_tensor_variable([1, 2]).sum()])(M, M + 1, 5)
    refs = [np.concatenate([M, M + 1], 1), np.concatenate([M, M + 1], 0), np.stack([M, M + 1]),
            np.stack([M, M + 1], 2), np.zeros((5, 2)), np.ones((2, 5), "int32"), np.full((5, 3), 1.5),
            np.broadcast_to(M[0], (2, 4)), np.arange(1, 5, 2), M[None], M[:, :, None, None], M[:1],
            np.tensordot(M, M + 1, axes=[[1], [1]]), (M * (M + 1)).sum(1), np.eye(2), 3]
    for k, (got, want) in enumerate(zip(outs, refs)):
        np.testing.assert_allclose(got, want, err_msg=f"case {k}")
        assert np.shape(got) == np.shape(want), k


def test_eye_and_diag():
    x = T.dvector("x")
    m = T.dmatrix("m")
    n = T.lscalar("n")
    outs = function([x, m, n], [T.diag(x), T.diag(m), T.eye(n, 2, k=-1), T.identity_like(m)])(
        V, M, 3)
    for got, want in zip(outs, [np.diag(V), np.diag(M), np.eye(3, 2, -1), np.eye(3, 4)]):
        np.testing.assert_array_equal(got, want)


def test_dot_of_higher_ranks_follows_numpy_dot():
    a, b = T.dtensor3("a"), T.dtensor3("b")
    m = T.dmatrix("m")
    x = RNG.rand(2, 3, 4)
    y = RNG.rand(5, 4, 2)
    outs = function([a, b, m], [T.dot(a, b), T.dot(a, m), T.dot(m.T, a.dimshuffle(0, 2, 1)[0])])(
        x, y, RNG.rand(4, 6))
    assert outs[0].shape == np.dot(x, y).shape
    np.testing.assert_allclose(outs[0], np.dot(x, y))


def test_extra_ops():
    y = T.ivector("y")
    x = T.dmatrix("x")
    outs = function([y, x], [extra_ops.to_one_hot(y, 4), extra_ops.cumsum(x), T.cumsum(x, axis=0),
                             extra_ops.cumprod(x, axis=1), extra_ops.repeat(x, 2, axis=0),
                             extra_ops.diff(x, axis=1), extra_ops.fill_diagonal(x, 0.)])(
        np.array([0, 3, 1], "int32"), M)
    refs = [np.eye(4)[[0, 3, 1]], M.cumsum(), M.cumsum(0), M.cumprod(1), M.repeat(2, 0),
            np.diff(M, axis=1), M - np.diag(np.diag(M)) @ np.eye(3, 4)]
    for k, (got, want) in enumerate(zip(outs, refs)):
        np.testing.assert_allclose(got, want, err_msg=f"case {k}")


def test_ifelse_chooses_on_a_scalar_condition():
    a, b = T.dscalars("a", "b")
    x, y = T.dmatrices("x", "y")
    f = function([a, b, x, y], ifelse(T.lt(a, b), T.mean(x), T.mean(y)))
    assert f(1, 2, np.ones((2, 2)), np.zeros((2, 2))) == 1.0
    assert f(3, 2, np.ones((2, 2)), np.zeros((2, 2))) == 0.0
    with pytest.raises(TypeError, match="scalar"):
        ifelse(T.lt(x, y), x, y)


def test_pp_and_debugprint():
    x, y = T.dscalars("x", "y")
    assert theano.pp((x + 1) * y) == "((x + TensorConstant{1}) * y)"
    text = theano.printing.debugprint(T.exp(x) * y, file="str")
    assert text.splitlines()[0].startswith("mul [id A]")
    assert " |exp [id B]" in text and " | |x" in text
    gy = T.grad(x ** 2, x)
    assert "grad" in theano.pp(gy)


def test_clone_replaces_variables():
    x = T.dscalar("x")
    y = x * 2 + 1
    z = theano.clone(y, replace={x: x + 10})
    assert function([x], z)(1.0) == 23.0
    assert function([x], y)(1.0) == 3.0


def test_truth_of_variables_is_theanos():
    import dragon.vm.theano.tensor as T
    w = T.matrix("w_truth")
    assert w and not (not w)  # `if not W:` in the dA tutorial means "not None"
    with pytest.raises(TypeError, match="boolean"):
        bool(w < 1)


def test_zero_times_a_scalar_rewrites_to_a_constant():
    import dragon.vm.theano as theano
    import dragon.vm.theano.tensor as T
    from dragon.vm.theano.compile.rewrite import rewrite
    from dragon.vm.theano.tensor.var import TensorConstant
    w = theano.shared(np.ones((3, 3)), name="w_l1")
    cost = 0.0 * abs(w).sum()
    replaced = rewrite([cost])[id(cost)]
    assert isinstance(replaced, TensorConstant) and replaced.data == 0
    assert replaced.dtype == cost.dtype
    assert theano.function([], cost)() == 0
    assert T.grad(cost + (w ** 2).sum(), w).eval().tolist() == (2 * np.ones((3, 3))).tolist()
