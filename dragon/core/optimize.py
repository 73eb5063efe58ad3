"""Graph passes over a resolved op list: prune, recompute (mirror) and memory planning.

The executor resolves a GraphDef into ``Step``s whose inputs and outputs are
``Value``s: one Value per write of a name (SSA), so in-place nets such as Caffe's
``ReLU(conv1) -> conv1`` plan like any other. The passes here work on those.
"""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from dragon import config
from dragon.ops.registry import Spec


@dataclass(eq=False)
class Value:
    """One version of one named tensor."""

    name: str
    spec: Spec
    kind: str                 # 'feed' | 'persistent' | 'temp' | 'scratch'
    producer: int = -1        # step index that writes it (-1: before the run)
    last_use: int = -1        # last step index that reads it
    keep: bool = False        # must stay valid after the run (fetched, kept)
    buffer: int = -1          # index into the plan's buffer list (temp, feed, scratch)

    @property
    def nbytes(self):
        return self.spec.nbytes


@dataclass(eq=False)
class Step:
    """One op to run: its schema, decoded arguments and values."""

    op_def: object
    schema: object
    args: dict
    inputs: list
    outputs: list
    scratch: list = field(default_factory=list)
    is_gradient: bool = False
    copy_back: list = field(default_factory=list)   # (temp value, persistent value) pairs

    @property
    def label(self):
        return f"op '{self.op_def.name or '?'}' ({self.op_def.type})"


# -- pruning ------------------------------------------------------------------------------

def prune(op_defs, needed_names, writes_persistent):
    """Keep the ops whose outputs reach ``needed_names`` or that write persistent state."""
    needed = set(needed_names)
    keep = []
    for op in reversed(op_defs):
        if writes_persistent(op) or any(o in needed for o in op.output):
            needed.difference_update(op.output)
            needed.update(op.input)
            keep.append(op)
    keep.reverse()
    return keep


# -- early updates ------------------------------------------------------------------------

def _reads(step):
    return {id(_root(v)) for v in step.inputs}


def _writes(step):
    return {id(v) for v in step.outputs if v.kind == "persistent"} | {
        id(t) for _, t in step.copy_back}


def schedule_writes_early(steps):
    """Move each step that writes a variable to just after its last dependency.

    An update op then runs as soon as its gradient exists and nothing else reads
    the old value, so the gradient buffer dies at once instead of at the end of
    the backward pass. Steps keep their order relative to every step that reads
    or writes what they write, and to the producers of what they read.
    """
    result = []
    for step in steps:
        writes = _writes(step)
        if not writes:
            result.append(step)
            continue
        reads = _reads(step)  # a view counts as a read of the buffer it looks into
        position = 0
        for p in range(len(result) - 1, -1, -1):
            other = result[p]
            touched = _reads(other) | {id(v) for v in other.outputs} | _writes(other)
            if touched & writes or _writes(other) & reads or any(
                    id(v) in reads for v in other.outputs):
                position = p + 1
                break
        result.insert(position, step)
    return result


# -- recomputation (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost") --

def producer_of(value, producer):
    return producer[id(value)]


def mirror(steps, make_copy):
    """Drop forward results the backward pass reads and recompute them there.

    Results of deterministic forward ops are split into checkpoints (every
    ~sqrt(n)-th one) and the rest; the rest are recomputed from the nearest
    checkpoints right before their first backward reader, so only about one
    segment's activations are alive at a time (random and state-changing ops
    are never rerun: their results are always kept).
    ``make_copy(step, inputs)`` clones a forward step onto new input values and
    returns it with fresh output values. Returns the new step list.
    """
    first_backward = next((i for i, s in enumerate(steps) if s.is_gradient), None)
    if first_backward is None:
        return steps
    forward = steps[:first_backward]
    producer = {}
    for step in forward:
        for v in step.outputs:
            producer[id(v)] = step
    candidates = [v for s in forward for v in s.outputs
                  if v.kind == "temp" and not v.keep and not s.schema.stateful]
    if not candidates:
        return steps
    # Checkpoint every ~sqrt(n)-th result, preferring results of costly ops so the
    # recomputation mostly reruns cheap ones.
    costly = [v for v in candidates if not producer_of(v, producer).schema.recompute] or candidates
    stride = max(2, int(math.sqrt(len(costly))))
    checkpoints = {id(v) for i, v in enumerate(costly) if i % stride == stride - 1}
    recomputable = {id(v) for v in candidates if id(v) not in checkpoints}

    new_steps = list(forward)
    cache = {}  # id(original value) -> recomputed value, for the current segment

    def available(v):
        if id(v) not in recomputable:
            return v
        if id(v) in cache:
            return cache[id(v)]
        step = producer[id(v)]
        clone = make_copy(step, [available(i) for i in step.inputs])
        new_steps.append(clone)
        for orig, new in zip(step.outputs, clone.outputs):
            cache[id(orig)] = new
        return cache[id(v)]

    for step in steps[first_backward:]:
        if any(id(v) in recomputable for v in step.inputs):
            step.inputs = [available(v) for v in step.inputs]
        new_steps.append(step)
    return new_steps


# -- memory planning -----------------------------------------------------------------------

def _root(v):
    """The value whose buffer ``v`` uses (itself unless it is a view)."""
    return v.root if v.kind == "alias" else v


def plan_memory(steps, values, level):
    """Assign every feed/temp/scratch value a buffer; return the buffer sizes in bytes.

    level 0: one buffer per value. level 1: an op may overwrite an input that dies
    at it. level >= 2: also reuse the buffers of dead values (best fit by size).
    """
    for v in values:
        v.last_use = v.producer
    for i, step in enumerate(steps):
        for v in step.inputs:
            v.last_use = max(v.last_use, i)
    for v in values:  # a view keeps the buffer it looks into alive
        if v.kind == "alias":
            v.root.last_use = max(v.root.last_use, v.last_use)
            v.root.keep = v.root.keep or v.keep
    sizes: list[int] = []
    free: list[tuple] = []   # (size, buffer) free for reuse at level >= 2, kept sorted
    owners: dict[int, int] = {}  # buffer -> number of live values in it

    def new_buffer(nbytes):
        sizes.append(nbytes)
        return len(sizes) - 1

    def acquire(v):
        nbytes = v.nbytes
        if level >= config.LEVEL_SHARE and free:
            k = bisect.bisect_left(free, (nbytes, -1))
            if k == len(free):  # none fits: grow the largest free buffer, add none
                k -= 1
            _, b = free.pop(k)
            sizes[b] = max(sizes[b], nbytes)
            return b
        return new_buffer(nbytes)

    def retain(b):
        owners[b] = owners.get(b, 0) + 1

    def release(b):
        owners[b] -= 1
        if owners[b] == 0 and level >= config.LEVEL_SHARE:
            bisect.insort(free, (sizes[b], b))

    pinned = level == config.LEVEL_KEEP_ALL
    for v in values:  # feeds hold their buffers from the start
        if v.kind == "feed":
            v.buffer = new_buffer(v.nbytes)
            retain(v.buffer)
    for i, step in enumerate(steps):
        for k, v in enumerate(step.outputs):
            if v.kind != "temp" or v.buffer >= 0:
                continue
            j = step.schema.inplace.get(k)
            if j is not None and not pinned and j < len(step.inputs):
                src = _root(step.inputs[j])
                if (src.kind in ("temp", "feed") and src.last_use == i and not src.keep
                        and src.buffer >= 0 and src.spec.nbytes == v.nbytes
                        and sum(1 for x in step.inputs if _root(x) is src) == 1):
                    v.buffer = src.buffer
                    retain(v.buffer)
                    continue
            v.buffer = acquire(v)
            retain(v.buffer)
        for s in step.scratch:
            s.buffer = acquire(s)
            retain(s.buffer)
        if pinned:
            continue
        for s in step.scratch:
            release(s.buffer)
        dying = {id(v): v for v in map(_root, step.inputs + step.outputs)
                 if v.kind in ("temp", "feed") and v.last_use <= i and not v.keep}
        for v in dying.values():
            release(v.buffer)
    return sizes
