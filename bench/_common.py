"""Shared bench plumbing: BLAS environment, timing, printing ratios, JSON output."""
from __future__ import annotations

import json
import os
import statistics
import sys
import time

_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def use_native_blas_kernel():
    """Re-exec without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (they pin a slower kernel).

    Call before importing numpy. ``--keep-blas-env`` on the command line keeps them.
    """
    if "--keep-blas-env" in sys.argv or not any(v in os.environ for v in _BLAS_VARS):
        return
    env = {k: v for k, v in os.environ.items() if k not in _BLAS_VARS}
    os.execve(sys.executable, [sys.executable] + sys.argv, env)


def blas_description() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    parts = [f"{i['internal_api']} {i.get('architecture', '?')} x{i['num_threads']}"
             for i in threadpool_info() if i["user_api"] == "blas"]
    return ", ".join(parts) or "no BLAS found"


def best_time(fn, repeat=20, warmup=3, min_time=0.0):
    """Median and best seconds of ``fn()`` over ``repeat`` runs after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def report(rows, json_path=None):
    """Print ``rows`` (dicts with workload, dragon_s, peer, peer_s) and their ratios."""
    print(f"{'workload':<40} {'dragon':>10} {'peer':>22} {'ratio':>7}")
    for r in rows:
        ratio = r["dragon_s"] / r["peer_s"] if r.get("peer_s") else float("nan")
        r["ratio"] = ratio
        peer = f"{r.get('peer', '-')} {r['peer_s'] * 1e3:.2f} ms" if r.get("peer_s") else "-"
        print(f"{r['workload']:<40} {r['dragon_s'] * 1e3:8.2f} ms {peer:>22} {ratio:7.2f}")
    if json_path:
        with open(json_path, "w") as f:
            json.dump(rows, f, indent=2)
