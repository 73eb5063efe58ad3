"""The one op that runs Python code inside a plan: forward and backward of a callback.

Front ends use it for user code the graph cannot express (pycaffe's Python
layers). A callback is an object registered under a string key, since graphs
are data and an op's arguments must serialize::

    class Square:
        def infer(self, specs):                      # input Specs -> output Specs
            return [specs[0]]
        def forward(self, inputs, outputs):          # write outputs[k][...]
            np.multiply(inputs[0], inputs[0], out=outputs[0])
        def backward(self, inputs, outputs, grad_outputs, grad_inputs):
            if grad_inputs[0] is not None:           # None where not wanted
                grad_inputs[0][...] = 2 * inputs[0] * grad_outputs[0]

    key = python_callback.register_callback(Square(), "example/square")
    y = dragon.ops.python_callback(x, callback=key, output_count=1)

``backward`` receives ``grad_inputs`` zero-filled, so a callback may accumulate
into them. Callbacks run on host (numpy) arrays; they are never recomputed.
"""
from __future__ import annotations

import itertools
import threading

import numpy as np

from dragon.core.errors import DragonError, ShapeError
from dragon.ops.registry import REQUIRED, Spec, register

_CALLBACKS: dict = {}
_LOCK = threading.Lock()
_COUNTER = itertools.count()


def register_callback(callback, key: str | None = None) -> str:
    """Register ``callback`` under ``key`` (a fresh key by default); returns the key."""
    for method in ("infer", "forward"):
        if not callable(getattr(callback, method, None)):
            raise TypeError(f"a python callback needs a '{method}' method, "
                            f"{type(callback).__name__} has none")
    with _LOCK:
        key = key or f"callback:{next(_COUNTER)}"
        _CALLBACKS[key] = callback
    return key


def unregister_callback(key: str) -> None:
    """Forget the callback under ``key`` (plans that still use it fail when run)."""
    with _LOCK:
        _CALLBACKS.pop(key, None)


def get_callback(key: str):
    try:
        return _CALLBACKS[key]
    except KeyError:
        raise DragonError(f"no python callback is registered under '{key}' (it was "
                          f"unregistered, or the graph comes from another process)") from None


def _on_host(xp, fn, inputs, outputs):
    """Call ``fn(inputs, outputs)`` with numpy arrays, copying device arrays in and out."""
    if xp is np:
        fn(inputs, outputs)
        return
    from dragon.backend import to_numpy
    host_out = [None if o is None else np.zeros(o.shape, o.dtype) for o in outputs]
    fn([to_numpy(a) for a in inputs], host_out)
    for device, host in zip(outputs, host_out):
        if device is not None:
            device[...] = xp.asarray(host)


def _output_count(args):
    return int(args["output_count"])


@register("PythonCallback", inputs=(0, 1 << 16), outputs=_output_count, stateful=True,
          args={"callback": REQUIRED, "output_count": 1})
def python_callback(xp, *inputs, out, callback, output_count):
    """Y... = callback.forward(X...): the registered Python object computes the outputs."""
    outputs = list(out) if isinstance(out, tuple) else [out]
    _on_host(xp, get_callback(callback).forward, list(inputs), outputs)


@python_callback.shape
def _(*inputs, callback, output_count):
    specs = list(get_callback(callback).infer(list(inputs)))
    if len(specs) != output_count:
        raise ShapeError(f"callback '{callback}' inferred {len(specs)} outputs, the op has "
                         f"{output_count}")
    return [Spec(tuple(int(d) for d in s.shape), s.dtype) for s in specs]


@python_callback.grad
def _(g):
    if not callable(getattr(get_callback(g.args["callback"]), "backward", None)):
        return [None] * g.num_inputs
    n_in, n_out = g.num_inputs, len(g.node.outputs)
    need = [int(g.needs(i)) for i in range(n_in)]
    if not any(need):
        return [None] * n_in
    inputs = [g.X(i) for i in range(n_in)] + [g.Y(k) for k in range(n_out)] + \
        [g.dY(k) for k in range(n_out)]
    grads = g.op("PythonCallbackGradient", inputs, callback=g.args["callback"],
                 num_inputs=n_in, need=need)
    grads = iter(grads if isinstance(grads, list) else [grads])
    return [next(grads) if flag else None for flag in need]


def _num_needed(args):
    return sum(map(bool, args["need"]))


@register("PythonCallbackGradient", inputs=(1, 1 << 16), outputs=_num_needed, stateful=True,
          args={"callback": REQUIRED, "num_inputs": REQUIRED, "need": REQUIRED})
def python_callback_gradient(xp, *arrays, out, callback, num_inputs, need):
    """dX... of a PythonCallback (where ``need``) from X..., Y..., dY... by callback.backward."""
    n_out = (len(arrays) - num_inputs) // 2
    xs = list(arrays[:num_inputs])
    ys = list(arrays[num_inputs:num_inputs + n_out])
    dys = list(arrays[num_inputs + n_out:])
    given = iter(out if isinstance(out, tuple) else (out,))
    dxs = [next(given) if flag else None for flag in need]
    for dx in dxs:
        if dx is not None:
            dx.fill(0)
    backward = get_callback(callback).backward
    _on_host(xp, lambda ins, outs: backward(ins[:num_inputs], ins[num_inputs:num_inputs + n_out],
                                            ins[num_inputs + n_out:], outs),
             xs + ys + dys, dxs)


@python_callback_gradient.shape
def _(*specs, callback, num_inputs, need):
    if len(need) != num_inputs or (len(specs) - num_inputs) % 2:
        raise ShapeError(f"needs the {num_inputs} inputs, then outputs and their gradients "
                         f"in equal numbers, and one need flag per input; got {len(specs)} "
                         f"arrays and {len(need)} flags")
    return [specs[i] for i, flag in enumerate(need) if flag]
