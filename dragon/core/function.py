"""``dragon.function``: compile tensors into a callable, once per input shape set.

    x = dragon.placeholder((None, 3), name="x")
    w = dragon.variable(np.ones((3, 1), "float32"), name="w")
    loss = dragon.ops.reduce_mean(x @ w)
    gw = dragon.grad(loss, w)
    step = dragon.function([x], [loss], updates=[(w, w - 0.1 * gw)])
    step(np.ones((4, 3), "float32"))      # [array(3., dtype=float32)]
"""
from __future__ import annotations

import numpy as np

from dragon import backend, config
from dragon.core import executor, graph, workspace
from dragon.core.errors import FeedError
from dragon.core.tensor import Tensor, apply


class Function:
    """A compiled computation; call it with one value per input."""

    def __init__(self, inputs, outputs, updates=(), givens=None, name=None,
                 allow_downcast=False):
        self.inputs = list(inputs)
        self.single = isinstance(outputs, Tensor)
        self.outputs = [outputs] if self.single else list(outputs or [])
        self.name = name or "function"
        self.allow_downcast = allow_downcast
        for t in self.inputs:
            if not isinstance(t, Tensor):
                raise TypeError(f"function inputs must be tensors, got {t!r}")
        pairs = _pairs(updates)
        targets = {var.name for var, _ in pairs}
        # Every update reads values from before the call: snapshot a variable that is
        # both written and, unchanged, the new value of another variable.
        pairs = [(var, apply("Copy", [new]) if isinstance(new, Tensor) and new.node is None
                  and new.name in targets else new) for var, new in pairs]
        update_nodes = [_update_node(var, new) for var, new in pairs]
        self.graph_def = graph.to_graph_def(self.outputs, update_nodes, givens, name=self.name)
        self._constants = {}
        nodes, _ = graph.collect_nodes(self.outputs, update_nodes, givens)
        for leaf in graph.leaves(nodes):
            if leaf.kind == "constant":
                self._constants[leaf.name] = leaf._value
        self._fetch_names = list(self.graph_def.output)
        self._plans = {}
        self.last_plan = None

    def _plan_for(self, values):
        ws = workspace.get_workspace()
        key = (tuple((v.shape, v.dtype.str) for v in values), ws.name, ws.generation,
               config.get_optimization_level(), config.get_device())
        plan = self._plans.get(key)
        if plan is None:
            for name, value in self._constants.items():
                if name not in ws.arrays:
                    ws.arrays[name] = backend.array_module().asarray(value)
            from dragon.ops.registry import Spec
            feeds = {t.name: Spec(tuple(v.shape), v.dtype) for t, v in zip(self.inputs, values)}
            plan = executor.compile_graph(self.graph_def, feeds, self._fetch_names, ws,
                                          name=self.name)
            key = key[:2] + (ws.generation,) + key[3:]
            self._plans[key] = plan
        ws.last_stats = plan.stats
        self.last_plan = plan
        return plan

    def __call__(self, *values):
        if len(values) != len(self.inputs):
            raise TypeError(f"function '{self.name}' takes {len(self.inputs)} inputs "
                            f"({', '.join(t.name for t in self.inputs)}), got {len(values)}")
        checked = [executor.check_feed(t.name, v, t.shape, t.dtype, self.allow_downcast)
                   for t, v in zip(self.inputs, values)]
        plan = self._plan_for(checked)
        results = plan.run(checked)
        if plan.xp is not np:
            results = [backend.to_numpy(r) for r in results]
        return results[0] if self.single else results

    def memory_stats(self):
        return dict(self.last_plan.stats) if self.last_plan else {}


def _pairs(updates):
    if updates is None:
        return []
    if hasattr(updates, "items"):
        return list(updates.items())
    return list(updates)


def _update_node(var, new):
    if not isinstance(var, Tensor) or var.kind != "variable":
        raise TypeError(f"an update target must be a variable, got {var!r}")
    if isinstance(new, Tensor) and new.node is not None and new.node.assigns \
            and new.name == var.name:
        return new.node  # an updater's op already writes the variable in place
    if isinstance(new, Tensor) and new.shape is not None and var.shape is not None \
            and None not in new.shape and tuple(new.shape) != tuple(var.shape):
        raise FeedError(f"update of '{var.name}' has shape {tuple(new.shape)}, "
                        f"the variable has {tuple(var.shape)}")
    out = apply("Copy", [new], out_names=[var.name], assigns=True)
    return out.node


def function(inputs=(), outputs=None, updates=None, givens=None, name=None,
             allow_downcast=False) -> Function:
    """Compile ``outputs`` (a tensor or list) of ``inputs``, applying ``updates``.

    updates: ``[(variable, new_value), ...]`` or a dict; every update reads the
    values from before the call. givens: ``{tensor: replacement}``.
    """
    return Function(inputs, outputs, updates or (), givens, name, allow_downcast)
