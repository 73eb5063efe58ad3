"""MPI layers (Dragon's own, for model parallelism): MPIBroadcast and MPIGather.

In one process both are the identity: MPIBroadcast's top is its bottom as the
root would send it, MPIGather's tops are the one rank's bottoms. Splitting a
net across ranks comes with the MPI issue (``dragon/distributed``)::

    layer { name: "bcast" type: "MPIBroadcast" bottom: "fc7" top: "fc7_bcast" }
"""
from __future__ import annotations

from dragon.vm.caffe.layers.common import layer_error
from dragon.vm.caffe.layers.registry import lowering


@lowering("MPIBroadcast")
def mpi_broadcast(ctx):
    """MPIBroadcast: each top is bottom 0 (one process)."""
    return [ctx.op("Copy", [ctx.bottoms[0]]) for _ in range(max(1, ctx.num_tops))]


@lowering("MPIGather")
def mpi_gather(ctx):
    """MPIGather: top i is bottom i (one process gathers only itself)."""
    if ctx.num_tops > len(ctx.bottoms):
        raise layer_error(ctx, f"has {ctx.num_tops} tops but only {len(ctx.bottoms)} bottoms "
                               "to gather in one process")
    return [ctx.op("Copy", [b]) for b in ctx.bottoms[:max(1, ctx.num_tops)]]
