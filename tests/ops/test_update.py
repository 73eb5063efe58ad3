"""Update ops applied to workspace variables: in place, several steps, lr changes, errors."""
import numpy as np
import pytest

import dragon
from dragon.core import workspace
from dragon.core.tensor import apply
from tests.ops import cases_update, opcase
from tests.ops.cases_update import CASES

TARGET = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]])
START = np.array([[1.0, 2.0, -1.0], [0.0, 0.5, 1.0]])

# op type, history slots, extra 0-d inputs after lr, args, float64 reference
SOLVERS = [
    ("SGDUpdate", ["velocity"], [], {"momentum": 0.9}, cases_update.sgd),
    ("NesterovUpdate", ["velocity"], [], {"momentum": 0.9}, cases_update.nesterov),
    ("AdaGradUpdate", ["history"], [], {"eps": 1e-8}, cases_update.adagrad),
    ("RMSPropUpdate", ["history"], [], {"decay": 0.9, "eps": 1e-8}, cases_update.rmsprop),
    ("AdaDeltaUpdate", ["history_grad", "history_update"], [], {"momentum": 0.95, "eps": 1e-6},
     cases_update.adadelta),
    ("AdamUpdate", ["m", "v"], ["t"], {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
     cases_update.adam),
]


@pytest.fixture(autouse=True)
def fresh_workspace():
    previous = dragon.config.get_optimization_level()
    workspace.reset_workspace()
    yield
    dragon.config.set_optimization_level(previous)
    workspace.reset_workspace()


def _quadratic_step(op_type, slots, extras, args, lr_value, dtype="float64"):
    """A function stepping ``w`` on 0.5 * |w - TARGET|^2 with ``op_type``, and its variables."""
    w = dragon.variable(START.astype(dtype), name="w")
    hist = [dragon.variable(np.zeros(START.shape, dtype), name=f"w/{s}") for s in slots]
    lr = dragon.variable(np.array(lr_value, "float32"), name="lr")
    extra = [dragon.variable(np.array(1.0, "float32"), name=e) for e in extras]
    diff = w - dragon.constant(TARGET.astype(dtype))
    loss = dragon.ops.reduce_sum(diff * diff) * dragon.constant(np.array(0.5, dtype))
    gw = dragon.grad(loss, w)
    outs = apply(op_type, [w, gw, *hist, lr, *extra], out_names=[w.name] + [h.name for h in hist],
                 assigns=True, **args)
    f = dragon.function([], [loss], updates=[(w, outs[0])])
    return f, w, hist, lr, extra


@pytest.mark.parametrize("level", [0, 1, 2, 3])
@pytest.mark.parametrize("op_type,slots,extras,args,reference", SOLVERS,
                         ids=[s[0] for s in SOLVERS])
def test_solver_updates_variables_in_place_over_steps(op_type, slots, extras, args, reference,
                                                      level):
    dragon.config.set_optimization_level(level)
    f, w, hist, lr, extra = _quadratic_step(op_type, slots, extras, args, 0.1)
    arrays = workspace.get_workspace().arrays
    bound = [arrays[w.name]] + [arrays[h.name] for h in hist]
    want = [START] + [np.zeros(START.shape) for _ in slots]
    for step in range(1, 5):
        if extra:
            extra[0].set_value(np.array(step, "float32"))
        f()
        grad = want[0] - TARGET
        want = list(reference(want[0], grad, *want[1:], np.float64(np.float32(0.1)),
                              *[np.array(step)] * len(extras), **args))
        got = [w.get_value()] + [h.get_value() for h in hist]
        for name, g, e in zip(["w"] + slots, got, want):
            np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12,
                                       err_msg=f"{op_type} step {step}: {name}")
    # the arrays the plan was compiled against were updated, not replaced
    assert all(arrays[name] is a for name, a in zip([w.name] + [h.name for h in hist], bound))
    assert len(f._plans) == 1


def test_sgd_lr_change_takes_effect_without_recompiling():
    f, w, (velocity,), lr, _ = _quadratic_step("SGDUpdate", ["velocity"], [], {"momentum": 0.5},
                                               0.1)
    f()
    w1, v1 = w.get_value(), velocity.get_value()
    np.testing.assert_allclose(v1, 0.1 * (START - TARGET))
    lr.set_value(np.array(0.01, "float32"))
    f()
    v2 = 0.5 * v1 + np.float32(0.01) * (w1 - TARGET)
    np.testing.assert_allclose(velocity.get_value(), v2, rtol=1e-12)
    np.testing.assert_allclose(w.get_value(), w1 - v2, rtol=1e-12)
    assert len(f._plans) == 1


def test_float32_parameters_stay_float32():
    f, w, (history,), _, _ = _quadratic_step("RMSPropUpdate", ["history"], [], {}, 0.1, "float32")
    for _ in range(3):
        f()
    assert w.get_value().dtype == np.float32 and history.get_value().dtype == np.float32
    assert np.abs(w.get_value() - TARGET).sum() < np.abs(START - TARGET).sum()


@pytest.mark.parametrize("level", [1, 2, 3])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_results_do_not_depend_on_buffer_sharing(case, level):
    """At level >= 1 outputs may overwrite the fed inputs; the results must not change."""
    expected = opcase.run_forward(case, level=0)
    got = opcase.run_forward(case, level=level)
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(g, e)


def test_weight_decay_then_clip_then_sgd_as_one_step():
    w = dragon.variable(np.array([3.0, -4.0]), name="w")
    b = dragon.variable(np.array([12.0]), name="b")
    v_w = dragon.variable(np.zeros(2), name="w/v")
    v_b = dragon.variable(np.zeros(1), name="b/v")
    lr = dragon.variable(np.array(1.0, "float32"), name="lr")
    loss = dragon.ops.reduce_sum(w * w) * 0.5 + dragon.ops.reduce_sum(b * b) * 0.5
    gw, gb = dragon.grad(loss, [w, b])  # = w, b: global norm 13
    gw, gb = apply("ClipByGlobalNorm", [gw, gb], max_norm=1.3, num_grads=2)
    gw = apply("WeightDecay", [gw, w], decay=0.1, kind="L1")
    nw = apply("SGDUpdate", [w, gw, v_w, lr], out_names=[w.name, v_w.name], assigns=True,
               momentum=0.0)
    nb = apply("SGDUpdate", [b, gb, v_b, lr], out_names=[b.name, v_b.name], assigns=True,
               momentum=0.0)
    dragon.function([], [loss], updates=[(w, nw[0]), (b, nb[0])])()
    np.testing.assert_allclose(w.get_value(), [3.0 - 0.3 - 0.1, -4.0 + 0.4 + 0.1])
    np.testing.assert_allclose(b.get_value(), [12.0 - 1.2])


def test_adam_through_the_updater_counts_steps_from_one():
    w = dragon.variable(np.array([1.0, -2.0]), name="w")
    loss = dragon.ops.reduce_sum(w * w)
    opt = dragon.updaters.Adam(lr=0.1)
    f = dragon.function([], loss, updates=opt.minimize(loss, [w]))
    f()
    # at t = 1 the corrected step is lr * sign(g) for any gradient
    np.testing.assert_allclose(w.get_value(), [0.9, -1.9], rtol=1e-6)


# -- errors --------------------------------------------------------------------------------

def _apply(op_type, shapes, **args):
    inputs = [dragon.placeholder(s, "float32") for s in shapes]
    return apply(op_type, inputs, **args)


def test_history_of_another_shape_is_named():
    with pytest.raises(dragon.ShapeError, match=r"velocity has shape \(3,\), param has \(3, 4\)"):
        _apply("SGDUpdate", [(3, 4), (3, 4), (3,), ()])


def test_grad_of_another_shape_is_named():
    with pytest.raises(dragon.ShapeError, match=r"SGDUpdate.*grad has shape \(4, 3\)"):
        _apply("SGDUpdate", [(3, 4), (4, 3), (3, 4), ()])


def test_lr_must_be_0d():
    with pytest.raises(dragon.ShapeError, match=r"lr must be a 0-d tensor, got shape \(1,\)"):
        _apply("AdaGradUpdate", [(2,), (2,), (2,), (1,)])


def test_adam_step_count_must_be_0d():
    with pytest.raises(dragon.ShapeError, match=r"t must be a 0-d tensor"):
        _apply("AdamUpdate", [(2,), (2,), (2,), (2,), (), (2,)])


def test_integer_parameters_are_refused():
    inputs = [dragon.placeholder((2,), "int32"), dragon.placeholder((2,), "float32"),
              dragon.placeholder((2,), "float32"), dragon.placeholder((), "float32")]
    with pytest.raises(dragon.ShapeError, match="param must be floating-point, got int32"):
        apply("SGDUpdate", inputs)


@pytest.mark.parametrize("op_type,shapes,args,message", [
    ("RMSPropUpdate", [(2,)] * 3 + [()], {"decay": 1.5}, r"decay must be within \[0, 1\], got 1.5"),
    ("AdamUpdate", [(2,)] * 4 + [(), ()], {"beta1": 1.0}, "beta1 must be < 1"),
    ("AdamUpdate", [(2,)] * 4 + [(), ()], {"beta2": -0.1}, r"beta2 must be within \[0, 1\]"),
    ("AdaDeltaUpdate", [(2,)] * 4 + [()], {"eps": 0.0}, "eps must be > 0"),
])
def test_bad_hyper_parameters(op_type, shapes, args, message):
    with pytest.raises(dragon.ShapeError, match=message):
        _apply(op_type, shapes, **args)


def test_weight_decay_kind_and_shapes():
    with pytest.raises(dragon.ShapeError, match="kind must be 'L1' or 'L2', got 'L3'"):
        _apply("WeightDecay", [(2,), (2,)], decay=0.1, kind="L3")
    with pytest.raises(dragon.ShapeError, match=r"grad has shape \(2,\), param has \(3,\)"):
        _apply("WeightDecay", [(2,), (3,)], decay=0.1)
    with pytest.raises(TypeError, match="needs argument 'decay'"):
        _apply("WeightDecay", [(2,), (2,)])


def test_clip_needs_the_gradient_count_and_a_positive_norm():
    with pytest.raises(dragon.ShapeError, match="num_grads=1 but 2 gradients are given"):
        _apply("ClipByGlobalNorm", [(2,), (3,)], max_norm=1.0, num_grads=1)
    with pytest.raises(dragon.ShapeError, match="max_norm must be > 0"):
        _apply("ClipByGlobalNorm", [(2,)], max_norm=0.0, num_grads=1)


def test_clip_leaves_zero_gradients_alone():
    g = [np.zeros(3), np.zeros((2, 2))]
    case = opcase.Case("ClipByGlobalNorm", g, args={"max_norm": 1.0, "num_grads": 2})
    for got, want in zip(opcase.run_forward(case), g):
        np.testing.assert_array_equal(got, want)
