"""Small real data sets shipped inside the package (no network at run time).

``digits.csv.gz`` is the test set of the UCI "Optical Recognition of
Handwritten Digits" data (E. Alpaydin and C. Kaynak, 1998; UCI Machine
Learning Repository, CC BY 4.0), as scikit-learn ships it: 1797 images of
8x8 pixels with values 0..16, and the digit 0..9 in the last column.
"""
import gzip
from importlib import resources

import numpy as np

from ._jit import jit


def load_digits():
    """The 8x8 handwritten digits: ``X`` (1797, 64) float64 in 0..16, ``y`` (1797,) int64."""
    with resources.files("fastbp").joinpath("data/digits.csv.gz").open("rb") as raw:
        with gzip.open(raw, "rt") as text:
            data = np.loadtxt(text, delimiter=",")
    return data[:, :-1], data[:, -1].astype(np.int64)


def train_test_split(X, y, test_fraction=0.25, seed=0, copy=True):
    """Shuffled split into ``X_train, X_test, y_train, y_test``.

    ``copy=False`` permutes the rows of X and y in place (each must be a
    writable C-contiguous array) and returns views of them: the same
    splits, in the same order, without a second copy of the data.
    """
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = int(round(len(X) * test_fraction))
    if copy:
        test, train = order[:n_test], order[n_test:]
        return X[train], X[test], y[train], y[test]
    for name, arr in (("X", X), ("y", y)):
        if not (isinstance(arr, np.ndarray) and arr.flags.c_contiguous and arr.flags.writeable):
            raise ValueError(f"train_test_split(copy=False) permutes {name} in place: it must be a"
                             f" writable C-contiguous array")
    rows = X.reshape(len(X), -1)
    permute_rows(rows, order, np.zeros(len(X), dtype=np.bool_))
    y[...] = y[order]
    return X[n_test:], X[:n_test], y[n_test:], y[:n_test]


@jit
def permute_rows(X, order, done):
    """``X[i] = X[order[i]]`` for every row i, in place, one cycle of the
    permutation at a time through one spare row. X (n, m); order (n,) a
    permutation of 0..n-1; done (n,) bool, all False."""
    n, m = X.shape
    spare = np.empty(m, dtype=X.dtype)
    for start in range(n):
        if done[start]:
            continue
        for k in range(m):
            spare[k] = X[start, k]
        i = start
        while True:
            done[i] = True
            j = order[i]
            if j == start:
                for k in range(m):
                    X[i, k] = spare[k]
                break
            for k in range(m):
                X[i, k] = X[j, k]
            i = j
