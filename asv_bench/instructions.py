"""Instructions and branch mispredicts per call of a leaf kernel, counted by
Valgrind's cachegrind: figures that do not move with the load of a shared
machine, where wall-clock A/B comparisons of sub-microsecond kernels often
cannot tell two versions apart.

    python asv_bench/instructions.py [--dtype float32] [--classes 10] [--calls 100000]

Runs the label cross-entropy (``kernels.loss_forward`` over 61 changing
batches of 32 rows, so that the branch predictor cannot learn them) under
``valgrind --tool=cachegrind --branch-sim=yes`` twice, once with a single
call and once with ``--calls`` more, with one BLAS and one Numba thread
(spinning pool threads would add instructions of their own) and a fixed
``PYTHONHASHSEED`` (compiling follows dict and set order), and prints the
difference per call and per row. Cachegrind's predictor is simpler than a
CPU's: read its mispredicts as a comparison between versions, not as what
the CPU does. Needs ``valgrind``; about a minute per run (Python and Numba
run some 50 times slower under it). To compare two versions, run it with
``PYTHONPATH`` pointing to each tree.
"""
import argparse
import os
import re
import subprocess
import sys

CHILD = r"""
import sys
import numpy as np
from fastbp import kernels
from numba import njit

@njit
def repeat(k, Z, O, Y):
    s = 0.0
    for r in range(k):
        b = r % Z.shape[0]
        s += kernels.loss_forward(Z[b], O[b], Y[b], kernels.CROSS_ENTROPY)
    return s

dtype, m, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
Z = (rng.normal(size=(61, 32, m)) * 3).astype(dtype)
e = np.exp(Z - Z.max(axis=2, keepdims=True))
O = (e / e.sum(axis=2, keepdims=True)).astype(dtype)
Y = rng.integers(0, m, size=(61, 32))
repeat(1, Z, O, Y)
repeat(k, Z, O, Y)
"""


def counts(dtype, classes, calls):
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1", PYTHONHASHSEED="0")
    out = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--branch-sim=yes",
                          "--cachegrind-out-file=/dev/null", sys.executable, "-c", CHILD,
                          dtype, str(classes), str(calls)],
                         env=env, capture_output=True, text=True, check=True).stderr

    def number(label):
        return int(re.search(label + r":\s+([\d,]+)", out).group(1).replace(",", ""))
    mispredicts = re.search(r"Mispredicts:\s+[\d,]+\s+\(\s*([\d,]+) cond", out).group(1)
    return number("I\\s+refs"), int(mispredicts.replace(",", ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--calls", type=int, default=100000)
    args = parser.parse_args(argv)
    # Compile (or load) the kernels once outside Valgrind, so that both runs
    # below load them from the cache alike.
    subprocess.run([sys.executable, "-c", CHILD, args.dtype, str(args.classes), "1"], check=True)
    i0, b0 = counts(args.dtype, args.classes, 0)
    i1, b1 = counts(args.dtype, args.classes, args.calls)
    per_call = (i1 - i0) / args.calls, (b1 - b0) / args.calls
    print(f"loss_forward, labels, (32, {args.classes}) {args.dtype}: {per_call[0]:.0f} instructions"
          f" and {per_call[1]:.1f} conditional mispredicts a call, {per_call[0] / 32:.0f} and"
          f" {per_call[1] / 32:.2f} a row")


if __name__ == "__main__":
    main()
