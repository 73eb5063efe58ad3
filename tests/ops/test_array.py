"""Array ops beyond the registry cases: indexing, unknown shapes, argument errors, dtypes."""
import numpy as np
import pytest

import dragon
from dragon import ShapeError
from dragon.core.tensor import apply

X = np.arange(24.0).reshape(4, 3, 2)
INDEX = np.array([3, 0, 3])


@pytest.fixture(params=range(dragon.config.MAX_LEVEL + 1), ids=lambda v: f"level{v}")
def level(request):
    previous = dragon.config.get_optimization_level()
    dragon.config.set_optimization_level(request.param)
    yield request.param
    dragon.config.set_optimization_level(previous)


def _value_and_grad(shape, key, x):
    """x[key] and d sum(x[key] * w)/dx from dragon, with the weights w used."""
    ph = dragon.placeholder(shape, "float64", name="x")
    y = ph[key]
    weights = np.random.default_rng(0).standard_normal(np.shape(x[key]))
    cost = dragon.ops.reduce_sum(y * dragon.constant(weights))
    gx = dragon.grad(cost, ph)
    value, grad = dragon.function([ph], [y, gx])(x)
    return value, grad, weights


KEYS = {
    "slices": np.s_[1:3, ::2],
    "ellipsis_int": np.s_[..., 0],
    "newaxis": np.s_[:, None],
    "index_array": INDEX,
    "negative_steps": np.s_[::-2, -1],
    "int_then_array": np.s_[1, np.array([2, 0])],
    "array_newaxis": np.s_[:, [2, 2, 0], None],
    "everything": np.s_[None, ..., 1::-1],
}


@pytest.mark.parametrize("shape", [X.shape, (None, 3, None)], ids=["known", "unknown_dims"])
@pytest.mark.parametrize("name", list(KEYS))
def test_getitem_matches_numpy_with_gradient(name, shape, level):
    key = KEYS[name]
    value, grad, weights = _value_and_grad(shape, key, X)
    np.testing.assert_array_equal(value, X[key])
    expected = np.zeros_like(X)
    np.add.at(expected, key, weights)  # numpy's own scatter of the weights
    np.testing.assert_allclose(grad, expected)


def test_getitem_with_integer_tensor():
    x = dragon.placeholder((None, 2), "float32", name="x")
    idx = dragon.placeholder((None,), "int64", name="idx")
    f = dragon.function([x, idx], x[idx])
    values = np.arange(10, dtype=np.float32).reshape(5, 2)
    np.testing.assert_array_equal(f(values, np.array([4, 1])), values[[4, 1]])


def test_getitem_of_everything_adds_no_op():
    x = dragon.placeholder((2, 3), name="x")
    assert x[...] is x and x[:, :] is x


@pytest.mark.parametrize("key", [np.array([True, False]), (INDEX, INDEX), 1.5,
                                 slice(dragon.constant(1), None), "a"],
                         ids=["bool_mask", "two_arrays", "float", "tensor_bound", "str"])
def test_getitem_unsupported_keys_name_the_key(key):
    x = dragon.placeholder((4, 3), name="x")
    with pytest.raises(NotImplementedError, match="key|indexing"):
        x[key]


def test_getitem_array_separated_from_int_is_refused():
    x = dragon.placeholder((4, 3, 2), name="x")
    with pytest.raises(NotImplementedError, match="front"):
        x[0, :, np.array([1, 0])]


def test_getitem_too_many_indices():
    x = dragon.placeholder((4, 3), name="x")
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="too many indices"):
        x[..., 0, 0, 0]


def test_getitem_out_of_range_int_is_a_shape_error():
    x = dragon.placeholder((4, 3), name="x")
    with pytest.raises(ShapeError, match="index 4 is out of range for axis 0 of size 4"):
        x[4]


def test_getitem_after_ellipsis_needs_rank():
    x = dragon.placeholder(None, name="x")
    with pytest.raises(NotImplementedError, match="unknown rank"):
        x[..., 0]


# -- gradients built while shapes are unknown --------------------------------------------

UNKNOWN_SHAPE_GRAPHS = {
    "reshape": lambda x: dragon.ops.reshape(x, shape=[0, -1, 2]),
    "flatten": lambda x: dragon.ops.flatten(x),
    "expand_squeeze": lambda x: dragon.ops.squeeze(dragon.ops.expand_dims(x, axis=1)),
    "transpose": lambda x: x.T,
    "concat": lambda x: dragon.ops.concat(x, x * 2.0, axis=1),
    "split": lambda x: dragon.ops.split(x, axis=1, sizes=[1, -1])[1],
    "stack": lambda x: dragon.ops.stack(x, x, axis=-1),
    "slice": lambda x: x[1:, ::2],
    "gather": lambda x: x[np.array([0, 0, 2])],
    "tile": lambda x: dragon.ops.tile(x, multiples=[2, 1, 3]),
    "pad_reflect": lambda x: dragon.ops.pad(x, pads=[0, 1, 1, 1, 0, 1], mode="reflect"),
    "crop": lambda x: dragon.ops.crop(x, x[:2, 1:], axis=0, offset=[1, 0, 0]),
}


@pytest.mark.parametrize("name", list(UNKNOWN_SHAPE_GRAPHS))
def test_gradients_build_with_unknown_shapes(name, level):
    build = UNKNOWN_SHAPE_GRAPHS[name]
    unknown = dragon.placeholder((None, None, None), "float64", name="x")
    known = dragon.placeholder(X.shape, "float64", name="x_known")
    results = []
    for ph in (unknown, known):
        y = build(ph)
        gx = dragon.grad(dragon.ops.reduce_sum(y * y), ph)
        results.append(dragon.function([ph], [y, gx])(X))
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want)


# -- argument and shape errors name what is wrong ------------------------------------------

def _infer(op_type, shapes, **args):
    phs = [dragon.placeholder(s, "float32") for s in shapes]
    return apply(op_type, phs, **args)


@pytest.mark.parametrize("op_type, shapes, args, message", [
    ("Reshape", [(2, 3)], {"shape": [4, -1]}, r"cannot infer the -1 of shape \[4, -1\] for 6"),
    ("Reshape", [(2, 3)], {"shape": [-1, -1]}, "more than one -1"),
    ("Reshape", [(2, 3)], {"shape": [5]}, r"cannot reshape 6 elements into shape \[5\]"),
    ("Reshape", [(2, 3)], {"shape": [1, 2, 0]}, "copies input dimension 2"),
    ("Flatten", [(2, 3, 4)], {"axis": 2, "end_axis": 1}, "comes after end_axis"),
    ("Squeeze", [(2, 1, 3)], {"axes": [0]}, "cannot squeeze axis 0 of size 2"),
    ("Transpose", [(2, 3)], {"perm": [0, 0]}, "not a permutation"),
    ("Concat", [(2, 3), (3, 3)], {"axis": 1}, r"differ outside axis 1"),
    ("Split", [(2, 5)], {"num": 2}, "5 into 2 equal parts"),
    ("Split", [(2, 5)], {"sizes": [1, 1]}, "do not add up"),
    ("Stack", [(2, 3), (3, 2)], {}, "equal shapes"),
    ("StridedSlice", [(2, 3)], {"begin": [0], "step": [0]}, "has a 0"),
    ("StridedSlice", [(2, 3)], {"begin": [0, 0, 0]}, "lists 3 axes of a 2-d input"),
    ("Crop", [(2, 3, 4), (2, 3, 3)], {"offset": [2]}, "cropping 3 at offset 2 does not fit axis 2"),
    ("Crop", [(2, 3, 4, 4), (2, 3, 3, 3)], {"offset": [1, 1, 1]}, "needs 1 or 2 values"),
    ("Pad", [(2, 3)], {"pads": [1, 1]}, "need 2 x 2 values"),
    ("Pad", [(2, 3)], {"pads": [1, 1, 1, 1], "mode": "wrap"}, "'wrap' is not one of"),
    ("Pad", [(2, 3)], {"pads": [2, 0, 0, 0], "mode": "reflect"}, "must be below its size 2"),
    ("Tile", [(2, 3)], {"multiples": [-1]}, "negative"),
    ("Gather", [(2, 3), (2,)], {"axis": 2}, "axis 2 is out of range"),
    ("ArgMax", [(2, 3)], {"top_k": 4}, "top_k 4 is outside 1..3"),
    ("Cast", [(2, 3)], {"dtype": "float99"}, "unknown dtype 'float99'"),
    ("Where", [(2, 3), (2, 3), (4,)], {}, "do not broadcast"),
])
def test_bad_arguments_raise_shape_errors(op_type, shapes, args, message):
    with pytest.raises(ShapeError, match=message) as info:
        _infer(op_type, shapes, **args)
    assert op_type in str(info.value)


def test_gather_indices_must_be_integers():
    x = dragon.placeholder((3,), name="x")
    with pytest.raises(ShapeError, match="indices must be integers"):
        apply("Gather", [x, dragon.placeholder((2,), "bool")])


def test_split_needs_sizes_or_num():
    with pytest.raises(ShapeError, match="Split needs `sizes` or a positive `num`"):
        dragon.ops.split(dragon.placeholder((2, 4), name="x"))


def test_fill_rejects_negative_shape():
    with pytest.raises(ShapeError, match="negative dimension"):
        dragon.ops.fill(shape=[2, -3])


def test_gather_index_out_of_range_fails_at_run_time_naming_the_op():
    x = dragon.placeholder((3,), "float32", name="x")
    idx = dragon.placeholder((1,), "int64", name="idx")
    f = dragon.function([x, idx], dragon.ops.gather(x, idx, name="pick"))
    with pytest.raises(ShapeError, match="pick"):
        f(np.zeros(3, np.float32), np.array([7]))


# -- dtypes and args-only ops ------------------------------------------------------------------

def test_cast_gradient_returns_to_the_input_dtype():
    x = dragon.placeholder((2,), "float32", name="x")
    y = dragon.ops.cast(x, dtype="float64") * 3.0
    gx = dragon.grad(dragon.ops.reduce_sum(y), x)
    assert gx.dtype == np.float32
    got = dragon.function([x], gx)(np.ones(2, np.float32))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [3.0, 3.0])


def test_cast_to_integers_passes_no_gradient():
    x = dragon.placeholder((2,), "float32", name="x")
    y = dragon.ops.cast(dragon.ops.cast(x, dtype="int32"), dtype="float32")
    assert dragon.grad(dragon.ops.reduce_sum(y), x, disconnected="ignore") is None


def test_argmax_has_no_gradient_flowing():
    x = dragon.placeholder((2, 3), "float32", name="x")
    y = dragon.ops.cast(dragon.ops.arg_max(x), dtype="float32")
    assert dragon.grad(dragon.ops.reduce_sum(y), x, disconnected="ignore") is None


def test_argmax_keeps_int64_indices():
    x = dragon.placeholder((2, 3), "float32", name="x")
    y = dragon.ops.arg_max(x, axis=0)
    out = dragon.function([x], y)(np.array([[0, 5, 1], [2, 1, 1]], np.float32))
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, [1, 0, 0])


def test_arange_and_fill_take_no_inputs():
    steps = dragon.ops.arange(start=0, stop=5, step=2)
    ones = dragon.ops.fill(shape=[2], value=1.0, dtype="float64")
    assert steps.shape == (3,) and steps.dtype == np.int64
    got_steps, got_ones = dragon.function([], [steps, ones])()
    np.testing.assert_array_equal(got_steps, [0, 2, 4])
    assert got_ones.dtype == np.float64 and got_ones.tolist() == [1.0, 1.0]


def test_arange_matches_numpy_lengths():
    for start, stop, step in [(0, 1, 0.1), (0.3, 2.9, 0.7), (5, 1, -1), (1, 5, -1)]:
        t = dragon.ops.arange(start=start, stop=stop, step=step, dtype="float64")
        got = dragon.function([], t)()
        np.testing.assert_allclose(got, np.arange(start, stop, step))


def test_where_gradient_in_float32(level):
    cond = dragon.placeholder((2, 2), "bool", name="cond")
    a = dragon.placeholder((2, 2), "float32", name="a")
    b = dragon.placeholder((2,), "float32", name="b")
    y = dragon.ops.where(cond, a, b)
    ga, gb = dragon.grad(dragon.ops.reduce_sum(y), [a, b])
    mask = np.array([[True, False], [True, True]])
    got_a, got_b = dragon.function([cond, a, b], [ga, gb])(
        mask, np.zeros((2, 2), np.float32), np.zeros(2, np.float32))
    assert got_a.dtype == np.float32
    np.testing.assert_array_equal(got_a, mask)
    np.testing.assert_array_equal(got_b, [0.0, 1.0])


def test_split_output_count_follows_args():
    x = dragon.placeholder((6, 2), name="x")
    assert len(dragon.ops.split(x, axis=0, sizes=[1, 2, 3])) == 3
    assert len(dragon.ops.split(x, axis=0, num=2)) == 2


def test_reshape_views_share_memory_when_planned(level):
    x = dragon.placeholder((2, 6), "float32", name="x")
    y = dragon.ops.reshape(dragon.ops.flatten(x * 2.0, axis=0), shape=[3, 4])
    out = dragon.function([x], y)(np.ones((2, 6), np.float32))
    np.testing.assert_array_equal(out, np.full((3, 4), 2.0))
