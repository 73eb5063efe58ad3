"""Cases for dragon/ops/loop.py: recurrences run by Loop, checked against numpy loops.

The gradient checks by finite differences exercise LoopGradient (backpropagation
through time), including a state with two taps and truncated backpropagation.
"""
import numpy as np

import dragon
from dragon.core.tensor import apply
from dragon.ops.loop import step_graph
from tests.ops.opcase import Case, rand


def _step(name, inputs, build):
    """(step text, input names, output names) of ``build(*placeholders) -> outputs``."""
    phs = [dragon.placeholder(shape, "float64", name=f"{name}/{label}")
           for label, shape in inputs]
    text, ins, outs, extra = step_graph(phs, build(*phs), name=name)
    assert not extra, "these steps read only their inputs"
    return text, ins, outs


# h_t = tanh(x_t * a + h_{t-1} @ W); y_t = h_t * x_t (a second, non-recurrent output)
RNN, RNN_IN, RNN_OUT = _step(
    "cases_loop_rnn", [("x_t", (3,)), ("h_tm1", (3,)), ("a", (3,)), ("W", (3, 3))],
    lambda x, h, a, w: (lambda h_t: [h_t, apply("Mul", [h_t, x])])(
        apply("Tanh", [apply("Add", [apply("Mul", [x, a]), apply("MatMul", [h, w])])])))


def _rnn(x, h0, a, w, truncate=-1, **_):
    h, hs, ys = h0[0], [], []
    for x_t in x:
        h = np.tanh(x_t * a + h @ w)
        hs.append(h)
        ys.append(h * x_t)
    return np.array(hs), np.array(ys)


# s_t = s_{t-2} cos(s_{t-2}) + sin(s_{t-1}) * u_t (two taps of one state)
TAPS, TAPS_IN, TAPS_OUT = _step(
    "cases_loop_taps", [("u_t", (2,)), ("s_tm2", (2,)), ("s_tm1", (2,))],
    lambda u, s2, s1: [apply("Add", [apply("Mul", [s2, apply("Cos", [s2])]),
                                     apply("Mul", [apply("Sin", [s1]), u])])])


def _taps(u, s0, **_):
    hist = [s0[0], s0[1]]
    for u_t in u:
        hist.append(hist[-2] * np.cos(hist[-2]) + np.sin(hist[-1]) * u_t)
    return np.array(hist[2:])


def _rnn_args(steps, truncate=-1):
    return {"step": RNN, "steps": steps, "sequences": 1, "state_taps": [-1],
            "state_tap_counts": [1], "step_inputs": RNN_IN, "step_outputs": RNN_OUT,
            "truncate": truncate}


def _truncated_grad_check(outputs, inputs, args):
    """truncate=2: the sequence gets no gradient before the last 2 steps."""
    x, h0, a, w = [dragon.placeholder(np.shape(v), "float64") for v in inputs]
    hs, ys = apply("Loop", [x, h0, a, w], **args)
    gx = dragon.grad(dragon.ops.reduce_sum(hs * hs), x)
    got = dragon.function([x, h0, a, w], gx)(*inputs)
    assert np.all(got[:-2] == 0) and np.all(got[-2:] != 0)
    np.testing.assert_allclose(outputs[0], _rnn(*inputs)[0], rtol=1e-12)


CASES = [
    Case("Loop", [rand(5, 3), rand(1, 3, seed=1), rand(3, seed=2), rand(3, 3, seed=3) * 0.5],
         args=_rnn_args(5), reference=_rnn, float32=False, name="rnn"),
    Case("Loop", [rand(4, 3), rand(1, 3, seed=4), rand(3, seed=5), rand(3, 3, seed=6) * 0.5],
         args=_rnn_args(4, truncate=2), check=_truncated_grad_check, float32=False, grad=(),
         name="rnn_truncated"),
    Case("Loop", [rand(6, 2), rand(2, 2, seed=7)],
         args={"step": TAPS, "steps": 6, "sequences": 1, "state_taps": [-2, -1],
               "state_tap_counts": [2], "step_inputs": TAPS_IN, "step_outputs": TAPS_OUT},
         reference=_taps, float32=False, name="two_taps"),
]
