"""Instructions and branch mispredicts per call of a leaf kernel, counted by
Valgrind's cachegrind: figures that do not move with the load of a shared
machine, where wall-clock A/B comparisons of sub-microsecond kernels often
cannot tell two versions apart.

    python asv_bench/instructions.py [--dtype float32] [--classes 10] [--calls 100000]

Runs the label cross-entropy (``kernels.loss_forward`` over 61 changing
batches of 32 rows, so that the branch predictor cannot learn them; the
loop of ``benchmarks._common.repeat_label_loss``) under
``valgrind --tool=cachegrind --branch-sim=yes`` twice, once with a single
call and once with ``--calls`` more, with one BLAS and one Numba thread
(spinning pool threads would add instructions of their own) and a fixed
``PYTHONHASHSEED`` (compiling follows dict and set order), and prints the
difference per call and per row. Cachegrind's predictor is simpler than a
CPU's, and under Valgrind LLVM compiles for the CPU Valgrind presents (no
AVX-512): read the figures as a comparison between versions, not as what
this CPU runs. Needs ``valgrind``; about a minute per run (Python and Numba
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
sys.path.insert(0, sys.argv[4])
from benchmarks._common import repeat_label_loss as repeat

dtype, m, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
Z = (rng.normal(size=(61, 32, m)) * 3).astype(dtype)
e = np.exp(Z - Z.max(axis=2, keepdims=True))
O = (e / e.sum(axis=2, keepdims=True)).astype(dtype)
Y = rng.integers(0, m, size=(61, 32))
repeat(1, Z, O, Y)
repeat(k, Z, O, Y)
"""
HERE = os.path.dirname(os.path.abspath(__file__))  # asv_bench: benchmarks._common


def _env():
    return dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1", PYTHONHASHSEED="0")


def counts(dtype, classes, calls):
    out = subprocess.run(["valgrind", "--tool=cachegrind", "--cache-sim=no", "--branch-sim=yes",
                          "--cachegrind-out-file=/dev/null", sys.executable, "-c", CHILD,
                          dtype, str(classes), str(calls), HERE],
                         env=_env(), capture_output=True, text=True, check=True).stderr

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
    # Under Valgrind the CPU Numba sees is Valgrind's (no AVX-512), so its
    # cache entries are not the ones a native run wrote: one run, not
    # counted, compiles them, and both runs below load them alike.
    counts(args.dtype, args.classes, 1)
    i0, b0 = counts(args.dtype, args.classes, 0)
    i1, b1 = counts(args.dtype, args.classes, args.calls)
    per_call = (i1 - i0) / args.calls, (b1 - b0) / args.calls
    print(f"loss_forward, labels, (32, {args.classes}) {args.dtype}: {per_call[0]:.0f} instructions"
          f" and {per_call[1]:.1f} conditional mispredicts a call, {per_call[0] / 32:.0f} and"
          f" {per_call[1] / 32:.2f} a row")


if __name__ == "__main__":
    main()
