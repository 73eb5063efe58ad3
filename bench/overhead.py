"""Framework overhead: a compiled chain of 100 tiny ops, microseconds per op.

    python bench/overhead.py [--json out.json]

Target (specs/performance.md): <= 5 microseconds per op.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import best_time, report  # noqa: E402

import numpy as np  # noqa: E402

import dragon  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=100)
    parser.add_argument("--json")
    args = parser.parse_args()
    x = dragon.placeholder((4,), name="chain_x")
    y = x
    for i in range(args.ops):
        y = dragon.ops.relu(y) if i % 2 else y * 1.0001
    f = dragon.function([x], y)
    value = np.ones(4, "float32")
    median, best = best_time(lambda: f(value), repeat=2000)
    plan_ops = f.last_plan.stats["num_ops"]
    print(f"{plan_ops} ops in the plan, median {median * 1e6:.1f} us per call")
    print(f"overhead: {median / plan_ops * 1e6:.2f} us per op (best {best / plan_ops * 1e6:.2f})")
    report([{"workload": f"chain of {plan_ops} tiny ops (per op)", "dragon_s": median / plan_ops}],
           args.json)


if __name__ == "__main__":
    main()
