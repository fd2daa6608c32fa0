"""Small real data sets shipped inside the package (no network at run time).

``digits.csv.gz`` is the test set of the UCI "Optical Recognition of
Handwritten Digits" data (E. Alpaydin and C. Kaynak, 1998; UCI Machine
Learning Repository, CC BY 4.0), as scikit-learn ships it: 1797 images of
8x8 pixels with values 0..16, and the digit 0..9 in the last column.
"""
import gzip
from importlib import resources

import numpy as np


def load_digits():
    """The 8x8 handwritten digits: ``X`` (1797, 64) float64 in 0..16, ``y`` (1797,) int64."""
    with resources.files("fastbp").joinpath("data/digits.csv.gz").open("rb") as raw:
        with gzip.open(raw, "rt") as text:
            data = np.loadtxt(text, delimiter=",")
    return data[:, :-1], data[:, -1].astype(np.int64)


def train_test_split(X, y, test_fraction=0.25, seed=0):
    """Shuffled split into ``X_train, X_test, y_train, y_test``."""
    order = np.random.default_rng(seed).permutation(len(X))
    n_test = int(round(len(X) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return X[train], X[test], y[train], y[test]
