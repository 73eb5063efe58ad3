"""Symbolic gradients: ``T.grad``, jacobian, hessian, Rop, Lop, disconnected_grad.

    cost = ((T.dot(x, w) - y) ** 2).mean()
    gw, gb = T.grad(cost, [w, b])                 # variables, usable in updates
    H = T.hessian(cost, w)

``T.grad`` checks at once that the cost is a scalar and reaches every ``wrt``
(else ``DisconnectedInputError``); the gradient graph itself is built by the core's
per-op rules when the function lowers, one backward pass for all the gradients of
one cost. ``jacobian`` and ``hessian`` take one backward pass per entry of the
expression (its size is known when the function lowers). ``Rop`` uses the
double-Lop identity, so it needs second-order rules from the core ops involved.
"""
from __future__ import annotations

import numpy as np

from dragon.core import autodiff
from dragon.core.errors import DisconnectedInputError as _CoreDisconnected
from dragon.core.tensor import apply as core_apply
from dragon.vm.theano.tensor.type import TensorType
from dragon.vm.theano.tensor.var import Apply, Op, Variable, as_tensor_variable, lowered


class DisconnectedInputError(_CoreDisconnected):
    """T.grad was asked for the gradient with respect to a variable the cost does not use."""


class NullTypeGradError(TypeError):
    """A gradient that is undefined."""


class DisconnectedType:
    """Marks a disconnected gradient (``return_disconnected='Disconnected'``)."""

    def __call__(self):
        return None


# -- connectivity ----------------------------------------------------------------------

def _connected_ancestors(roots, blockers):
    """ids of the variables the roots depend on through connected op inputs."""
    blocked = {id(v) for v in blockers}
    found, stack = set(), list(roots)
    while stack:
        var = stack.pop()
        if id(var) in found:
            continue
        found.add(id(var))
        if var.owner is None or id(var) in blocked:
            continue
        node = var.owner
        for k, inp in enumerate(node.inputs):
            if node.op.is_connected(k):
                stack.append(inp)
    return found


# -- the gradient op ---------------------------------------------------------------------

class GradOp(Op):
    """Gradients of one cost (and known gradients) w.r.t. variables.

    Inputs: [cost?] + wrt + consider_constant + known_grads keys + their values.
    All GradOp nodes of one function with the same cost, constants and known
    gradients lower to one backward pass.
    """

    def __init__(self, has_cost, n_wrt, n_constant, n_known):
        self.has_cost = has_cost
        self.n_wrt = n_wrt
        self.n_constant = n_constant
        self.n_known = n_known
        self.name = "grad"

    def make_node(self, cost, wrt, consider_constant, known_keys, known_values):
        inputs = ([cost] if self.has_cost else []) + list(wrt) + list(consider_constant) + \
            list(known_keys) + list(known_values)
        return Apply(self, inputs, [TensorType(_grad_dtype(w), w.broadcastable)() for w in wrt])

    def parts(self, node):
        i = 1 if self.has_cost else 0
        cost = node.inputs[0] if self.has_cost else None
        wrt = node.inputs[i:i + self.n_wrt]
        i += self.n_wrt
        constant = node.inputs[i:i + self.n_constant]
        i += self.n_constant
        keys = node.inputs[i:i + self.n_known]
        values = node.inputs[i + self.n_known:i + 2 * self.n_known]
        return cost, wrt, constant, keys, values

    def soft_inputs(self, node):
        """Inputs needed only to build the backward graph (the cost, wrt and known
        gradients' variables): their values are not required unless the gradients use them."""
        n = len(node.inputs)
        return list(range(n - self.n_known))

    def group_key(self, node):
        cost, _, constant, keys, values = self.parts(node)
        return ("grad", id(cost), tuple(id(v) for v in constant), tuple(id(v) for v in keys),
                tuple(id(v) for v in values))

    def lower(self, ctx, node, *inputs):
        key = self.group_key(node)
        grads = ctx.cache.get(key)
        if grads is None:
            grads = self._backward(ctx, node, key)
            ctx.cache[key] = grads
        _, wrt, _, _, _ = self.parts(node)
        out = []
        for w in wrt:
            if id(w) not in grads:  # a wrt lowered after the group's pass (rare): own pass
                grads.update(self._backward(ctx, node, key, only=[w]))
            out.append(grads[id(w)])
        return out

    def _backward(self, ctx, node, key, only=None):
        cost, _, constant, keys, values = self.parts(node)
        wrt_all = only
        if wrt_all is None:
            wrt_all, seen = [], set()
            for other in ctx.nodes:
                if isinstance(other.op, GradOp) and other.op.group_key(other) == key:
                    for w in other.op.parts(other)[1]:
                        if id(w) not in seen:
                            seen.add(id(w))
                            wrt_all.append(w)
            if not wrt_all:
                wrt_all = list(self.parts(node)[1])
        result = {}
        for w in [w for w in wrt_all if not w.dtype.startswith("float")]:
            core = ctx.lower(w)
            result[id(w)] = core_apply("Fill", [], shape=list(core.shape), value=0.0,
                                       dtype=_grad_dtype(w))
        wrt_all = [w for w in wrt_all if w.dtype.startswith("float")]
        if not wrt_all:
            return result
        cost_core = ctx.lower(cost) if cost is not None else None
        wrt_core = [ctx.lower(w) for w in wrt_all]
        known = {ctx.lower(k): ctx.lower(v) for k, v in zip(keys, values)}
        from dragon.vm.theano.tensor.basic import cast_core
        known = {k: cast_core(v, k.dtype) for k, v in known.items()}
        grads = autodiff.grad(cost_core, wrt_core, consider_constant=[ctx.lower(c) for c in constant],
                              known_grads=known, disconnected="ignore")
        for w, core, g in zip(wrt_all, wrt_core, grads):
            if g is None:
                g = core_apply("ZerosLike", [core])
            result[id(w)] = cast_core(g, _grad_dtype(w))
        return result


def _grad_dtype(w):
    """Gradients have the wrt's dtype; integer variables get floatX zeros, as Theano."""
    from dragon.vm.theano.configparser import config
    return w.dtype if w.dtype.startswith("float") else config.floatX


# -- the public functions ------------------------------------------------------------------

def grad(cost, wrt, consider_constant=None, disconnected_inputs="raise", add_names=True,
         known_grads=None, return_disconnected="zero", null_gradients="raise"):
    """Symbolic gradient of scalar ``cost`` w.r.t. ``wrt`` (a variable or a list).

    consider_constant: variables treated as constants (no gradient through them).
    disconnected_inputs: 'raise' (DisconnectedInputError), 'warn' or 'ignore' for a
    wrt the cost does not depend on; return_disconnected: 'zero' or 'None' for it.
    known_grads: ``{variable: its gradient}`` to start from (cost may then be None).

    >>> gw, gb = T.grad(cost, [w, b])
    """
    if cost is None and not known_grads:
        raise AssertionError("T.grad needs a cost or known_grads")
    if cost is not None:
        cost = as_tensor_variable(cost)
        if cost.ndim != 0:
            raise TypeError(f"cost must be a scalar; '{cost}' has type {cost.type}")
    single = not isinstance(wrt, (list, tuple))
    wrt_list = [wrt] if single else list(wrt)
    for w in wrt_list:
        if not isinstance(w, Variable):
            raise TypeError(f"Expected Variable, got {w!r} of type {type(w).__name__}")
    if consider_constant is None:
        consider_constant = []
    else:
        try:
            consider_constant = list(consider_constant)
        except TypeError:
            raise TypeError(f"consider_constant must be an iterable collection, got "
                            f"{type(consider_constant).__name__}") from None
        for c in consider_constant:
            if not isinstance(c, Variable):
                raise TypeError(f"Elements of consider_constant must be variables, got {c!r}")
    known = dict(known_grads or {})
    known_keys = [as_tensor_variable(k) for k in known]
    known_values = [as_tensor_variable(v) for v in known.values()]
    roots = ([cost] if cost is not None else []) + known_keys
    reach = _connected_ancestors(roots, consider_constant)

    results = [None] * len(wrt_list)
    connected = []
    for k, w in enumerate(wrt_list):
        blocked = any(w is c for c in consider_constant) and not any(w is r for r in roots)
        if id(w) in reach and not blocked:
            connected.append(k)
            continue
        _disconnected(w, cost, disconnected_inputs)
        if return_disconnected == "zero":
            from dragon.vm.theano.tensor.basic import zeros_like
            results[k] = zeros_like(w)
        elif return_disconnected not in ("None", "Disconnected", None):
            raise ValueError(f"return_disconnected must be 'zero', 'None' or 'Disconnected', "
                             f"got {return_disconnected!r}")
    if connected:
        op = GradOp(cost is not None, len(connected), len(consider_constant), len(known_keys))
        node = op.make_node(cost, [wrt_list[k] for k in connected], consider_constant,
                            known_keys, known_values)
        for k, out in zip(connected, node.outputs):
            w = wrt_list[k]
            if add_names and cost is not None and cost.name and w.name:
                out.name = f"(d{cost.name}/d{w.name})"
            results[k] = out
    return results[0] if single else results


def _disconnected(w, cost, how):
    message = (f"grad method was asked to compute the gradient with respect to a variable that "
               f"is not part of the computational graph of the cost, or is used only by a "
               f"non-differentiable operator: {w} ({w.type})")
    if how == "raise":
        raise DisconnectedInputError(message)
    if how == "warn":
        import warnings
        warnings.warn(message, stacklevel=3)
    elif how != "ignore":
        raise ValueError(f"disconnected_inputs must be 'raise', 'warn' or 'ignore', got {how!r}")


def _lower_stop_gradient(ctx, node, x):
    return core_apply("StopGradient", [x])


def disconnected_grad(x):
    """``x`` in the forward pass; gradients do not flow through it (it counts as disconnected)."""
    x = as_tensor_variable(x)
    return lowered(_lower_stop_gradient, [x], x.type, name="disconnected_grad", connected=False)


def zero_grad(x):
    """``x`` in the forward pass; its gradient is zero (but it stays connected)."""
    x = as_tensor_variable(x)
    return lowered(_lower_stop_gradient, [x], x.type, name="zero_grad", connected=True)


consider_constant = zero_grad


def Lop(f, wrt, eval_points, consider_constant=None, disconnected_inputs="raise"):  # noqa: N802
    """Vector-Jacobian product: ``eval_points`` (shaped like f) times df/dwrt.

    >>> vJ = T.Lop(y, W, v)
    """
    fs = f if isinstance(f, (list, tuple)) else [f]
    vs = eval_points if isinstance(eval_points, (list, tuple)) else [eval_points]
    if len(fs) != len(vs):
        raise ValueError(f"Lop: {len(fs)} expressions but {len(vs)} eval_points")
    known = {}
    for fi, vi in zip(fs, vs):
        fi, vi = as_tensor_variable(fi), as_tensor_variable(vi)
        if fi.ndim != vi.ndim:
            raise ValueError(f"Lop: eval point '{vi}' ({vi.type}) does not fit '{fi}' ({fi.type})")
        known[fi] = vi
    return grad(None, wrt, consider_constant=consider_constant, known_grads=known,
                disconnected_inputs=disconnected_inputs)


class RopOp(Op):
    """J v by the double-Lop identity: d/du (u^T J) v, u a dummy shaped like f."""

    def __init__(self, n_f, n_wrt):
        self.n_f, self.n_wrt = n_f, n_wrt
        self.name = "Rop"

    def make_node(self, fs, wrt, vs):
        return Apply(self, list(fs) + list(wrt) + list(vs),
                     [TensorType(f.dtype, f.broadcastable)() for f in fs])

    def soft_inputs(self, node):
        return list(range(self.n_f))

    def lower(self, ctx, node, *inputs):
        fs = inputs[:self.n_f]
        wrt = inputs[self.n_f:self.n_f + self.n_wrt]
        vs = inputs[self.n_f + self.n_wrt:]
        from dragon.vm.theano.tensor.basic import cast_core
        dummies = [core_apply("ZerosLike", [f]) for f in fs]
        lops = autodiff.gradients(list(fs), list(wrt), grad_ys=dummies)
        pairs = [(g, cast_core(v, g.dtype)) for g, v in zip(lops, vs) if g is not None]
        if not pairs:
            return [core_apply("ZerosLike", [f]) for f in fs]
        out = autodiff.gradients([g for g, _ in pairs], dummies, grad_ys=[v for _, v in pairs])
        return [o if o is not None else core_apply("ZerosLike", [f]) for o, f in zip(out, fs)]


def Rop(f, wrt, eval_points, disconnected_outputs="raise", return_disconnected="zero"):  # noqa: N802
    """Jacobian-vector product: df/dwrt times ``eval_points`` (shaped like wrt).

    >>> Jv = T.Rop(y, W, V)
    """
    single = not isinstance(f, (list, tuple))
    fs = [as_tensor_variable(x) for x in ([f] if single else f)]
    wrt = wrt if isinstance(wrt, (list, tuple)) else [wrt]
    vs = eval_points if isinstance(eval_points, (list, tuple)) else [eval_points]
    vs = [as_tensor_variable(v) for v in vs]
    if len(wrt) != len(vs):
        raise ValueError(f"Rop: {len(wrt)} wrt variables but {len(vs)} eval_points")
    for w, v in zip(wrt, vs):
        if w.ndim != v.ndim:
            raise ValueError(f"Rop: eval point '{v}' ({v.type}) does not fit '{w}' ({w.type})")
    reach = _connected_ancestors(fs, [])
    if not any(id(w) in reach for w in wrt) and disconnected_outputs == "raise":
        raise DisconnectedInputError(f"Rop: the expressions do not depend on {list(map(str, wrt))}")
    outs = RopOp(len(fs), len(wrt)).make_node(fs, wrt, vs).outputs
    return outs[0] if single else outs


def _lower_jacobian(ctx, node, expression, wrt, consider):
    from dragon.vm.theano.tensor.basic import cast_core
    n = int(np.prod(expression.shape, dtype=np.int64))
    flat = core_apply("Reshape", [expression], shape=[n]) if expression.ndim != 1 else expression
    rows = []
    for i in range(n):
        entry = core_apply("StridedSlice", [flat], begin=[i], end=[i + 1], step=[1], squeeze=[0])
        g = autodiff.grad(entry, [wrt], consider_constant=[ctx.lower(c) for c in consider],
                          disconnected="ignore")[0]
        rows.append(core_apply("ZerosLike", [wrt]) if g is None else g)
    if not rows:
        return core_apply("Reshape", [core_apply("ZerosLike", [wrt])],
                          shape=list(expression.shape) + list(wrt.shape))
    stacked = core_apply("Stack", rows, axis=0) if len(rows) > 1 else core_apply(
        "ExpandDims", rows, axis=0)
    out = core_apply("Reshape", [stacked], shape=list(expression.shape) + list(wrt.shape))
    return cast_core(out, node.outputs[0].dtype)


def jacobian(expression, wrt, consider_constant=None, disconnected_inputs="raise"):
    """d expression / d wrt, shaped expression.shape + wrt.shape (a list for a list of wrt).

    One backward pass per entry of ``expression`` (its size is read when the function
    lowers), instead of Theano's scan.

    >>> J = T.jacobian(y, x)
    """
    expression = as_tensor_variable(expression)
    single = not isinstance(wrt, (list, tuple))
    wrt_list = [wrt] if single else list(wrt)
    if expression.ndim == 0:
        out = grad(expression, wrt_list, consider_constant=consider_constant,
                   disconnected_inputs=disconnected_inputs)
        return out[0] if single else out
    consider = list(consider_constant or [])
    reach = _connected_ancestors([expression], consider)
    results = []
    for w in wrt_list:
        if id(w) not in reach:
            _disconnected(w, expression, disconnected_inputs)
        pattern = expression.broadcastable + w.broadcastable
        dtype = w.dtype if w.dtype.startswith("float") else expression.dtype
        results.append(lowered(_lower_jacobian_node, [expression, w] + consider,
                               TensorType(dtype, pattern), name="jacobian"))
    return results[0] if single else results


def _lower_jacobian_node(ctx, node, expression, wrt, *consider):
    return _lower_jacobian(ctx, node, expression, wrt, node.inputs[2:])


def hessian(cost, wrt, consider_constant=None, disconnected_inputs="raise"):
    """Second derivatives of scalar ``cost``: jacobian(grad(cost, w), w) for each w.

    >>> H = T.hessian(cost, x)
    """
    cost = as_tensor_variable(cost)
    if cost.ndim != 0:
        raise TypeError(f"cost must be a scalar; '{cost}' has type {cost.type}")
    single = not isinstance(wrt, (list, tuple))
    wrt_list = [wrt] if single else list(wrt)
    results = []
    for w in wrt_list:
        if w.ndim != 1:
            raise TypeError(f"hessian: wrt '{w}' must be a vector, got {w.type}")
        g = grad(cost, w, consider_constant=consider_constant,
                 disconnected_inputs=disconnected_inputs)
        results.append(jacobian(g, w, consider_constant=consider_constant,
                                disconnected_inputs="ignore"))
    return results[0] if single else results


def grad_clip(x, lower_bound, upper_bound):
    """``x`` forward; not supported: the core has no op that clips a gradient on its way back."""
    raise NotImplementedError("theano.gradient.grad_clip needs a core op whose gradient clips "
                              "dY; clip the gradients themselves (T.clip(g, lo, hi)) instead")


def numeric_grad(f, points, eps=1e-7):
    """Central finite differences of the numpy function ``f`` at ``points`` (a test helper)."""
    points = [np.array(p, dtype="float64", copy=True) for p in points]
    grads = []
    for p in points:
        g = np.zeros_like(p)
        flat, gflat = p.reshape(-1), g.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            up = float(f(*points))
            flat[i] = old - eps
            down = float(f(*points))
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
        grads.append(g)
    return grads
