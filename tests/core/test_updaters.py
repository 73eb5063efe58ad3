"""dragon.updaters: Caffe's update rules through dragon.function, against numpy."""
import numpy as np
import pytest

import dragon


def _problem(tag, w0):
    with dragon.name_scope(tag):
        w = dragon.variable(np.array(w0, "float32"), name="w")
        target = dragon.constant(np.array([1.0, -2.0, 3.0], "float32"))
        loss = dragon.ops.reduce_sum((w - target) * (w - target))
    return w, loss


def _grad(w):
    return 2 * (w - np.array([1.0, -2.0, 3.0]))


def test_sgd_with_decay_clip_scale_and_lr_change():
    w0 = [0.5, 0.5, 0.5]
    w, loss = _problem("upd_sgd", w0)
    opt = dragon.updaters.SGD(lr=0.1, momentum=0.9, weight_decay=0.01, clip_norm=2.0,
                              grad_scale=0.5)
    step = dragon.function([], loss, updates=opt.minimize(loss, [w]))
    ref_w, v = np.array(w0, np.float64), np.zeros(3)
    for it in range(4):
        if it == 2:
            opt.lr = 0.05
        step()
        g = _grad(ref_w)
        norm = np.linalg.norm(g)
        g = g * (2.0 / norm) if norm > 2.0 else g           # clip first (Caffe's order)
        g = g * 0.5 + 0.01 * ref_w                            # then scale, then decay
        v = 0.9 * v + (0.1 if it < 2 else 0.05) * g
        ref_w = ref_w - v
        np.testing.assert_allclose(w.get_value(), ref_w, rtol=1e-5)
    assert len(step._plans) == 1
    assert opt.lr == pytest.approx(0.05)


def test_lr_mult_zero_freezes_and_mult_scales():
    w, loss = _problem("upd_mult", [0.0, 0.0, 0.0])
    with dragon.name_scope("upd_mult"):
        frozen = dragon.variable(np.ones(3, "float32"), name="frozen")
        loss2 = loss + dragon.ops.reduce_sum(frozen * frozen)
    opt = dragon.updaters.SGD(lr=0.1, momentum=0.0)
    step = dragon.function([], loss2, updates=opt.minimize(loss2, [w, frozen], lr_mults=[2.0, 0.0]))
    step()
    np.testing.assert_allclose(w.get_value(), -0.2 * _grad(np.zeros(3)), rtol=1e-6)
    np.testing.assert_array_equal(frozen.get_value(), np.ones(3))


@pytest.mark.parametrize("name", sorted(dragon.updaters.UPDATERS))
def test_every_updater_lowers_the_loss(name):
    w, loss = _problem(f"upd_{name}", [5.0, 5.0, 5.0])
    lr = {"AdaDelta": 1.0, "AdaGrad": 0.5, "Adam": 0.1, "RMSProp": 0.05}.get(name, 0.05)
    opt = dragon.updaters.UPDATERS[name](lr=lr)
    step = dragon.function([], loss, updates=opt.minimize(loss, [w]))
    losses = [float(step()) for _ in range(30)]
    if name == "AdaDelta":  # its steps start near sqrt(eps) and grow slowly, as in Caffe
        assert all(b < a for a, b in zip(losses, losses[1:])), losses
    else:
        assert losses[-1] < 0.5 * losses[0], losses


def test_bad_decay_kind():
    with pytest.raises(ValueError, match="L3"):
        dragon.updaters.SGD(decay_kind="L3")
