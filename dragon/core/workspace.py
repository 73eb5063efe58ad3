"""Workspaces: named arrays and compiled graphs, with feed, fetch and switch.

    from dragon import workspace
    workspace.feed_tensor("x", np.ones((2, 3), "float32"))
    workspace.fetch_tensor("x").sum()          # 6.0
    workspace.switch_workspace("other")        # created on first use
    workspace.has_tensor("x")                  # False
"""
from __future__ import annotations

import numpy as np

from dragon import backend
from dragon.core import executor
from dragon.core.errors import MissingTensorError
from dragon.ops.registry import Spec
from dragon.proto import dragon_pb2


class Workspace:
    """Named arrays (variables, kept results) and the graphs compiled against them."""

    def __init__(self, name):
        self.name = name
        self.arrays: dict = {}
        self.graphs: dict = {}
        self.generation = 0       # bumped when an array is replaced, not just refilled
        self.last_stats: dict = {}

    def feed(self, name, value):
        xp = backend.array_module()
        value = xp.asarray(value)
        old = self.arrays.get(name)
        if old is not None and old.shape == value.shape and old.dtype == value.dtype \
                and old.flags.writeable:
            old[...] = value  # keep the array compiled plans are bound to
            return
        if old is not None:
            self.generation += 1
        self.arrays[name] = xp.array(value, copy=True)

    def fetch(self, name, borrow=False):
        try:
            array = self.arrays[name]
        except KeyError:
            raise MissingTensorError(f"tensor '{name}' is not in workspace '{self.name}'") from None
        return array if borrow else backend.to_numpy(array).copy()


_workspaces = {"default": Workspace("default")}
_current = ["default"]


def get_workspace() -> Workspace:
    """The current Workspace object."""
    return _workspaces[_current[0]]


def switch_workspace(name: str, create_if_missing: bool = True) -> None:
    """Make ``name`` the current workspace, creating it unless told not to."""
    if name not in _workspaces:
        if not create_if_missing:
            raise RuntimeError(f"workspace '{name}' does not exist")
        _workspaces[name] = Workspace(name)
    _current[0] = name


def current_workspace() -> str:
    return _current[0]


def workspaces() -> list[str]:
    return list(_workspaces)


def reset_workspace(name: str | None = None) -> None:
    """Drop every array and graph of workspace ``name`` (the current one by default)."""
    name = name or _current[0]
    _workspaces[name] = Workspace(name)


def feed_tensor(name, value) -> None:
    """Store ``value`` under ``name`` (refilling an existing array of the same shape)."""
    if hasattr(name, "name"):
        name = name.name
    get_workspace().feed(name, value)


def fetch_tensor(name, borrow=False):
    """A copy of the array stored under ``name`` (the live array with ``borrow``)."""
    if hasattr(name, "name"):
        name = name.name
    return get_workspace().fetch(name, borrow)


def has_tensor(name) -> bool:
    if hasattr(name, "name"):
        name = name.name
    return name in get_workspace().arrays


def tensors() -> list[str]:
    return list(get_workspace().arrays)


def remove_tensor(name) -> None:
    ws = get_workspace()
    if ws.arrays.pop(name, None) is not None:
        ws.generation += 1


def _as_proto(message, cls):
    if isinstance(message, (bytes, bytearray)):
        parsed = cls()
        parsed.ParseFromString(bytes(message))
        return parsed
    return message


def run_operator(op_def, level=0) -> None:
    """Run one OperatorDef against the workspace; its outputs are stored there.

    >>> op = dragon_pb2.OperatorDef(type="Relu", input=["x"], output=["y"])
    >>> workspace.run_operator(op)
    """
    op_def = _as_proto(op_def, dragon_pb2.OperatorDef)
    graph = dragon_pb2.GraphDef(name=op_def.name or op_def.type)
    graph.op.add().CopyFrom(op_def)
    run_graph_once(graph, level=level)


def run_graph_once(graph_def, level=0, outputs=None) -> None:
    """Compile and run ``graph_def``; the final value of every name lands in the workspace."""
    graph_def = _as_proto(graph_def, dragon_pb2.GraphDef)
    ws = get_workspace()
    names = outputs if outputs is not None else _written_names(graph_def)
    plan = executor.compile_graph(graph_def, {}, [], ws, level=level, keep=names)
    plan.run(())
    _store_kept(ws, plan)


def _written_names(graph_def):
    return list(dict.fromkeys(o for op in graph_def.op for o in op.output))


def _store_kept(ws, plan):
    for name, value in plan.kept.items():
        if value.kind != "persistent":
            ws.arrays[name] = value.view.copy()
    ws.last_stats = plan.stats


def create_graph(graph_def, feeds=None, fetches=None, level=None, name=None) -> str:
    """Compile ``graph_def`` once and keep it under its name; returns the name.

    feeds: ``{name: (shape, dtype)}`` of tensors passed to ``run_graph``.
    Every name the graph writes is kept in the workspace after each run unless
    ``fetches`` names the ones to keep.
    """
    graph_def = _as_proto(graph_def, dragon_pb2.GraphDef)
    ws = get_workspace()
    feed_specs = {k: Spec(tuple(s), np.dtype(d)) for k, (s, d) in (feeds or {}).items()}
    keep = list(fetches) if fetches is not None else _written_names(graph_def)
    plan = executor.compile_graph(graph_def, feed_specs, [], ws, level=level, keep=keep,
                                  name=name)
    ws.graphs[plan.name] = plan
    return plan.name


def run_graph(name, feeds=()) -> None:
    """Run a graph made by ``create_graph``; kept results land in the workspace."""
    ws = get_workspace()
    try:
        plan = ws.graphs[name]
    except KeyError:
        raise MissingTensorError(f"no graph named '{name}' in workspace '{ws.name}'") from None
    plan.run(feeds, copy_outputs=False)
    for key, value in plan.kept.items():
        if value.kind != "persistent":
            ws.arrays[key] = value.view  # a live view; refreshed by every run
    ws.last_stats = plan.stats


def memory_stats() -> dict:
    """Bytes of the most recently compiled or run plan in the current workspace.

    ``planned_bytes``: buffers the plan allocated; ``unplanned_bytes``: what one
    buffer per tensor would take; ``persistent_bytes``: variables it reads or
    writes; ``peak_bytes``: planned + persistent.
    """
    stats = dict(get_workspace().last_stats)
    if stats:
        stats["peak_bytes"] = stats["planned_bytes"] + stats["persistent_bytes"]
    return stats
