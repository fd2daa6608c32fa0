"""fit with a hidden layer's units split between two threads, against the plain kernels.

For networks of one hidden layer (fastbp._columns), in one process and in
turns: ``fastbp.MLP.fit`` of 2,048 random rows (no shuffling, 4,096 batches
in all, so that fit splits) with the split as fit chooses it, and with the plain
kernels (the split switched off), from the same initial weights, each after
a 0.3 s rest (OpenBLAS's threads spin on after a product, and a split fit
that started while the plain fit's were spinning ran 0.9x). Prints the
median microseconds a batch of each and their ratio, and checks that the two
trained the same weights up to rounding.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python asv_bench/column_split.py --repeat 7
"""
import argparse
import time
from unittest import mock

import numpy as np

import fastbp
from fastbp import _columns

CASES = [  # network, dtype, optimizer, batch
    ("64-32-10", "float32", "sgd", 32),
    ("64-32-10", "float64", "sgd", 32),
    ("64-32-10", "float64", "adam", 32),
    ("64-100-10", "float32", "sgd", 32),
    ("784-128-10", "float32", "sgd", 64),
    ("784-128-10", "float64", "sgd", 64),
    ("784-256-10", "float32", "adam", 32),
    ("64-32-10", "float32", "adam", 64),
]
ROWS, STEPS = 2048, 4096


def fit(sizes, dtype, optimizer, batch, X, y, split, epochs):
    net = fastbp.MLP(sizes, activation="tanh", output="softmax", dtype=dtype, seed=0)
    args = dict(optimizer="adam") if optimizer == "adam" else dict(lr=0.01)
    with mock.patch.object(_columns, "splits", _columns.splits if split else lambda *a: False):
        time.sleep(0.3)   # (no BLAS thread still spinning from the last fit: compare.py's rest)
        start = time.perf_counter()
        net.fit(X, y, epochs=epochs, batch_size=batch, shuffle=False, verbose=0, **args)
        return time.perf_counter() - start, net.params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    print(f"{'network, dtype, optimizer, batch':<36} {'plain us':>9} {'split us':>9} {'speed-up':>9}"
          f" {'max rel. diff':>14}")
    for name, dtype, optimizer, batch in CASES:
        sizes = [int(s) for s in name.split("-")]
        rng = np.random.default_rng(0)
        X = rng.standard_normal((ROWS, sizes[0])).astype(dtype)
        y = rng.integers(0, sizes[-1], ROWS)
        epochs = -(-STEPS // -(-ROWS // batch))
        steps = epochs * -(-ROWS // batch)
        times = {True: [], False: []}
        for split in (True, False):  # compile / load both kernels
            fit(sizes, dtype, optimizer, batch, X, y, split, epochs)
        for _ in range(args.repeat):
            for split in (False, True):
                seconds, params = fit(sizes, dtype, optimizer, batch, X, y, split, epochs)
                times[split].append(seconds / steps * 1e6)
                if split:
                    diff = np.abs(params - plain).max() / np.abs(plain).max()
                else:
                    plain = params
        off, on = np.median(times[False]), np.median(times[True])
        print(f"{f'{name}, {dtype}, {optimizer}, {batch}':<36} {off:>9.2f} {on:>9.2f}"
              f" {off / on:>8.2f}x {diff:>14.1e}")


if __name__ == "__main__":
    main()
