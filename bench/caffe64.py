"""Caffe64 MNIST, end to end: CLI train + test with text parsing, vs the original binary.

    python bench/caffe64.py [--repeat 3] [--json out.json] [--keep-blas-env]

Writes MNIST (first 8,000 t10k images to train, last 2,000 to test, pixels minus
128) as Caffe64 text files, untimed; then times
``python -m dragon.vm.caffe64 train ...`` and ``... test ...`` (mnist/network5.txt,
mnist/optimsetting.txt): in this process through ``cli.main`` (parsing, training,
testing, writing; the import of Dragon excluded), and as two fresh processes
(interpreter start and imports included); each with the BLAS's default thread
count and with one thread (the GEMMs at minibatch 100 are small, and on a busy
machine a second BLAS thread that waits for a core slows every step). The
original binary takes about 13 s for the same run (specs/performance.md; it
cannot run here): the target is a ratio <= 0.1, and under 3 s.
"""
import os
import argparse
import contextlib
import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._common import blas_description, report, use_native_blas_kernel  # noqa: E402

use_native_blas_kernel()

import numpy as np  # noqa: E402

from dragon.vm.caffe64 import cli, mnist  # noqa: E402

SHARED = ROOT / ".." / "shared" / "data"
ORIGINAL_SECONDS = 13.0


def commands(files, folder):
    examples = SHARED / "caffe64" / "mnist"
    weights, posteriors = folder / "weights.bin", folder / "p.txt"
    train = ["train", str(examples / "network5.txt"), str(weights),
             str(examples / "optimsetting.txt"), "8000", str(files["trainX"]),
             str(files["trainY"])]
    test = ["test", str(examples / "network5.txt"), str(weights), "2000",
            str(files["testX"]), str(posteriors)]
    return train, test, posteriors


def accuracy(posteriors, labels_path):
    p = np.loadtxt(posteriors)
    return float((p.argmax(1) == np.loadtxt(labels_path)).mean())


def time_in_process(train, test, threads=None):
    limit = contextlib.nullcontext()
    if threads:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return None
        limit = threadpool_limits(threads, user_api="blas")
    with limit:
        start = time.perf_counter()
        for argv in (train, test):
            if cli.main(argv, out=io.StringIO()) != 0:
                raise SystemExit(f"caffe64 {argv[0]} failed")
        return time.perf_counter() - start


def time_processes(train, test, threads=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if threads:
        env.update(OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
                   MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    for argv in (train, test):
        subprocess.run([sys.executable, "-m", "dragon.vm.caffe64", *argv], check=True,
                       cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json")
    parser.add_argument("--keep-blas-env", action="store_true")
    args = parser.parse_args()
    if not (SHARED / "mnist" / "t10k-images-idx3-ubyte.gz").exists():
        raise SystemExit(f"{SHARED / 'mnist'} is absent: nothing to run")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        images, labels = mnist.read_idx_pair(SHARED / "mnist", "t10k")
        files = mnist.write_split(images, labels, folder, 8000, 2000)
        train, test, posteriors = commands(files, folder)
        time_in_process(train, test)          # warm-up; also gives the accuracy below
        acc = accuracy(posteriors, files["testY"])
        runs = {}
        for threads in (None, 1):
            blas = "default BLAS threads" if threads is None else "1 BLAS thread"
            times = [time_in_process(train, test, threads) for _ in range(args.repeat)]
            if None not in times:
                runs[f"in process, {blas}"] = times
            runs[f"2 processes, {blas}"] = [time_processes(train, test, threads)
                                            for _ in range(args.repeat)]
    print(f"BLAS: {blas_description()}; machine load {os.getloadavg()[0]:.2f}")
    print(f"test accuracy {acc:.3f} (the original: about 0.94)")
    rows = []
    for name, times in runs.items():
        median = statistics.median(times)
        print(f"Caffe64 MNIST train + test, {name}: median {median:.2f} s, best {min(times):.2f} s"
              f" of {len(times)}; median / original's {ORIGINAL_SECONDS:.0f} s = "
              f"{median / ORIGINAL_SECONDS:.3f} (target <= 0.1, and < 3 s)")
        rows.append({"workload": f"Caffe64 MNIST e2e, {name}", "dragon_s": median,
                     "best_s": min(times), "peer": "caffe64 binary (spec)",
                     "peer_s": ORIGINAL_SECONDS, "accuracy": acc})
    report(rows, args.json)


if __name__ == "__main__":
    main()
