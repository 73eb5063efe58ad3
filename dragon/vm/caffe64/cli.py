"""``python -m dragon.vm.caffe64 train|test ...``: the original's command line and output.

    python -m dragon.vm.caffe64 train network.txt weights.bin optim.txt N X.txt Y.txt
    python -m dragon.vm.caffe64 test network.txt weights.bin N X.txt out.txt

or in-process: ``main(["test", "net.txt", "w.bin", "2000", "X.txt", "p.txt"])``
(returns the exit status). ``--seed S`` (after the arguments) makes a run
repeatable; without it each training run shuffles differently, as the original does.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from dragon.vm.caffe64.data import read_labels, read_matrix, write_matrix
from dragon.vm.caffe64.errors import Caffe64Error
from dragon.vm.caffe64.formats import Network, Optim
from dragon.vm.caffe64.net import test, train
from dragon.vm.caffe64.weights import read_weights, write_weights

BANNER = r"""   ______        ____ ____         _____  __ __
  / ____/____ _ / __// __/___     / ___/ / // /
 / /    / __ `// /_ / /_ / _ \   / __ \ / // /_
/ /___ / /_/ // __// __//  __/  / /_/ //__  __/
\____/ \__,_//_/  /_/   \___/   \____/   /_/ """

USAGE = ("caffe64 train network.txt weights.bin optimizer.txt N inputX.txt inputY.txt\n"
         "  or\n"
         "caffe64 test network.txt weights.bin N inputX.txt outputY.txt\n")


def main(argv=None, out=None) -> int:
    """Run one command; progress goes to ``out`` (stdout), errors to stderr. Returns 0 or 1."""
    argv = list(sys.argv[1:] if argv is None else argv)
    out = out or sys.stdout
    seed = None
    if "--seed" in argv:
        at = argv.index("--seed")
        try:
            seed = int(argv[at + 1])
        except (IndexError, ValueError):
            sys.stderr.write("--seed takes an integer\n")
            return 1
        del argv[at:at + 2]
    shapes = {"train": 7, "test": 6}
    if not argv or argv[0] not in shapes or len(argv) != shapes[argv[0]]:
        sys.stderr.write(USAGE)
        return 1

    def say(line=""):
        out.write(line + "\n")
        out.flush()

    started = time.time()
    try:
        if argv[0] == "train":
            run_train(*argv[1:], seed=seed, say=say)
        else:
            run_test(*argv[1:], say=say)
    except Caffe64Error as e:
        sys.stderr.write(f"{e}\n")
        return 1
    say(f"Finished normally in {int(time.time()) - int(started)}s")
    return 0


def run_train(network_path, weights_path, optim_path, count, x_path, y_path, seed=None,
              say=print):
    """The ``train`` command: parse, load, train, write weights.bin."""
    say(BANNER)
    _confirm_exist(network_path, optim_path, x_path, y_path)
    say("Parsing net...")
    network = Network.from_file(network_path)
    optim = Optim.from_file(optim_path)
    n = _count(count)
    say("Loading X...")
    X = read_matrix(x_path, n, network.features)
    say("Loading Y...")
    if network.loss == "sce":
        Y = read_labels(y_path, n, network.outputs)
    else:
        Y = read_matrix(y_path, n, network.outputs)
    params = train(network, optim, X, Y, seed=seed, log=say)
    write_weights(weights_path, network, params)


def run_test(network_path, weights_path, count, x_path, out_path, say=print):
    """The ``test`` command: parse, load weights and X, write one ``%f`` row per sample."""
    say(BANNER)
    _confirm_exist(network_path, weights_path, x_path)
    say("Parsing net...")
    network = Network.from_file(network_path)
    say("Loading net...")
    params = read_weights(weights_path, network)
    n = _count(count)
    say("Loading X...")
    X = read_matrix(x_path, n, network.features)
    outputs = test(network, params, X, log=say)
    write_matrix(out_path, outputs.astype(np.float64), fmt="%f")


def _confirm_exist(*paths):
    for path in paths:
        if not Path(path).is_file():
            raise Caffe64Error(f"Couldn't find file {path}")


def _count(text):
    try:
        n = int(text)
    except ValueError:
        raise Caffe64Error(f"N must be a number of samples, got '{text}'") from None
    if n < 1:
        raise Caffe64Error(f"N must be at least 1, got {n}")
    return n
