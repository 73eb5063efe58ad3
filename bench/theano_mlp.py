"""The Theano tutorial MLP (784-500-10, tanh, L1 + L2, SGD through givens): Dragon vs PyTensor.

    python bench/theano_mlp.py [--batches 20 64] [--dtypes float32 float64] [--json out.json]
                               [--cold-pytensor] [--keep-blas-env]

One program, written against ``theano``/``T`` as the tutorial writes it, runs on
Dragon's Theano front end and on PyTensor in this process. For each batch size and
dtype it prints:

- compile: ``theano.function(...)`` of the training function, then its first call
  (Dragon lowers and plans there; PyTensor's default Numba backend JIT-compiles
  there), and their sum, which is what the target (<= 0.5 of PyTensor) compares;
- step: the median time of one training call (target <= 1.0 of PyTensor).

PyTensor caches compiled code between runs; ``--cold-pytensor`` points it at an
empty cache so its first call pays the full JIT cost, as on a new machine.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import best_time, blas_description, report, use_native_blas_kernel  # noqa: E402

use_native_blas_kernel()

if "--cold-pytensor" in sys.argv and "PYTENSOR_FLAGS" not in os.environ:
    os.environ["PYTENSOR_FLAGS"] = f"base_compiledir={tempfile.mkdtemp(prefix='pytensor_cold_')}"

import numpy as np  # noqa: E402

N_IN, N_HIDDEN, N_OUT = 784, 500, 10
N_EXAMPLES = 8000


def build_mlp(th, tt, softmax, batch, rng):
    """The tutorial's train_model: returns (the uncompiled pieces, a compile callable)."""
    floatx = th.config.floatX
    data_x = rng.uniform(0, 1, (N_EXAMPLES, N_IN)).astype(floatx)
    data_y = rng.randint(0, N_OUT, N_EXAMPLES).astype("int32")
    train_set_x = th.shared(data_x, borrow=True)
    train_set_y = th.shared(data_y, borrow=True)
    index = tt.lscalar()
    x = tt.matrix("x")
    y = tt.ivector("y")
    bound = np.sqrt(6.0 / (N_IN + N_HIDDEN))
    W1 = th.shared(rng.uniform(-bound, bound, (N_IN, N_HIDDEN)).astype(floatx), name="W",
                   borrow=True)
    b1 = th.shared(np.zeros(N_HIDDEN, floatx), name="b", borrow=True)
    W2 = th.shared(np.zeros((N_HIDDEN, N_OUT), floatx), name="W", borrow=True)
    b2 = th.shared(np.zeros(N_OUT, floatx), name="b", borrow=True)
    hidden = tt.tanh(tt.dot(x, W1) + b1)
    p_y_given_x = softmax(tt.dot(hidden, W2) + b2)
    nll = -tt.mean(tt.log(p_y_given_x)[tt.arange(y.shape[0]), y])
    L1 = abs(W1).sum() + abs(W2).sum()
    L2_sqr = (W1 ** 2).sum() + (W2 ** 2).sum()
    cost = nll + 0.0 * L1 + 0.0001 * L2_sqr
    params = [W1, b1, W2, b2]
    gparams = [tt.grad(cost, p) for p in params]
    updates = [(p, p - 0.01 * g) for p, g in zip(params, gparams)]
    givens = {x: train_set_x[index * batch:(index + 1) * batch],
              y: train_set_y[index * batch:(index + 1) * batch]}

    def compile_train():
        return th.function(inputs=[index], outputs=cost, updates=updates, givens=givens)
    return compile_train


def measure(name, th, tt, softmax, batch, repeat):
    rng = np.random.RandomState(1234)
    compile_train = build_mlp(th, tt, softmax, batch, rng)
    t0 = time.perf_counter()
    train_model = compile_train()
    t1 = time.perf_counter()
    first_cost = float(train_model(0))
    t2 = time.perf_counter()
    n_batches = N_EXAMPLES // batch
    counter = iter(range(10 ** 9))
    step_median, _ = best_time(lambda: train_model(next(counter) % n_batches), repeat=repeat)
    return {"function_s": t1 - t0, "first_call_s": t2 - t1, "compile_s": t2 - t0,
            "step_s": step_median, "first_cost": first_cost}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, nargs="+", default=[20, 64])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--json")
    parser.add_argument("--cold-pytensor", action="store_true")
    parser.add_argument("--keep-blas-env", action="store_true")
    args = parser.parse_args()

    import dragon.vm.theano as theano
    import dragon.vm.theano.tensor as T
    try:
        import warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        import pytensor
        import pytensor.tensor as PT
        from pytensor.tensor.special import softmax as pt_softmax
    except ImportError:
        pytensor = None
        print("PyTensor is not installed (pip install -e '.[bench]'): Dragon timings only")
    print(f"BLAS: {blas_description()}")
    if pytensor is not None:
        linker = type(pytensor.compile.mode.get_default_mode().linker).__name__
        cache = "cold (empty compiledir)" if args.cold_pytensor else "as found"
        print(f"PyTensor {pytensor.__version__}, linker {linker}, cache {cache}")

    rows = []
    for dtype in args.dtypes:
        for batch in args.batches:
            theano.config.floatX = dtype
            ours = measure("dragon", theano, T, T.nnet.softmax, batch, args.repeat)
            theirs = None
            if pytensor is not None:
                with pytensor.config.change_flags(floatX=dtype):
                    theirs = measure("pytensor", pytensor, PT,
                                     lambda z: pt_softmax(z, axis=-1), batch, args.repeat)
                if not np.isclose(ours["first_cost"], theirs["first_cost"], rtol=1e-4):
                    print(f"warning: first costs differ: dragon {ours['first_cost']} "
                          f"pytensor {theirs['first_cost']}")
            label = f"theano MLP {N_IN}-{N_HIDDEN}-{N_OUT} {dtype} batch {batch}"
            print(f"{label}: dragon function() {ours['function_s'] * 1e3:.0f} ms + first call "
                  f"{ours['first_call_s'] * 1e3:.0f} ms" + (
                      f"; pytensor function() {theirs['function_s'] * 1e3:.0f} ms + first call "
                      f"{theirs['first_call_s'] * 1e3:.0f} ms" if theirs else ""))
            for what in ("compile", "step"):
                row = {"workload": f"{label} {what}", "dragon_s": ours[f"{what}_s"]}
                if theirs:
                    row.update(peer=f"pytensor {pytensor.__version__}", peer_s=theirs[f"{what}_s"])
                rows.append(row)
    report(rows, args.json)
    print("targets: compile ratio <= 0.5, step ratio <= 1.0")


if __name__ == "__main__":
    main()
