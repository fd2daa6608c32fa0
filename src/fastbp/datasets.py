"""Small real data sets shipped inside the package (no network at run time).

``digits.csv.gz`` is the test set of the UCI "Optical Recognition of
Handwritten Digits" data (E. Alpaydin and C. Kaynak, 1998; UCI Machine
Learning Repository, CC BY 4.0), as scikit-learn ships it: 1797 images of
8x8 pixels with values 0..16, and the digit 0..9 in the last column.
"""
import gzip
import math
import numbers
from importlib import resources

import numpy as np

from ._jit import jit
from ._validate import check_bool

__all__ = ["load_digits", "train_test_split"]


def load_digits():
    """The 8x8 handwritten digits: ``X`` (1797, 64) float64 in 0..16, ``y`` (1797,) int64."""
    with resources.files("fastbp").joinpath("data/digits.csv.gz").open("rb") as raw:
        with gzip.open(raw, "rt") as text:
            data = np.loadtxt(text, delimiter=",")
    # (X C-contiguous, unlike scikit-learn's strided view: train_test_split(copy=False)
    # takes it)
    return np.ascontiguousarray(data[:, :-1]), data[:, -1].astype(np.int64)


class _Default:
    """A default value that knows it was not given (its repr is the value's)."""

    def __init__(self, value):
        self.value = value

    def __repr__(self):
        return repr(self.value)


def train_test_split(X, y, test_fraction=_Default(0.25), seed=_Default(0), copy=True, *,
                     test_size=_Default(None), random_state=_Default(None)):
    """Shuffled split into ``X_train, X_test, y_train, y_test``.

    Parameters
    ----------
    X, y : array_like
        Rows to split, the same number in each: NumPy arrays, lists, SciPy
        sparse matrices (rows taken as NumPy takes them) or pandas objects
        (by position, with ``iloc``).
    test_fraction : float, default 0.25
        Share of the rows in the test set, rounded up to a whole row as
        scikit-learn rounds it (``ceil(n * test_fraction)``); 0 keeps every
        row for training; an int is a number of rows, as ``test_size``
        takes it. A split that leaves no training row is refused.
    seed : int, numpy Generator or None, default 0
        Seeds the shuffle (None: a fresh, unrepeatable one); anything else
        ``numpy.random.default_rng`` takes works too. The rows differ from
        scikit-learn's split for the same seed (its own RandomState
        stream); their numbers are the same.
    test_size, random_state
        scikit-learn's names for the same two arguments: ``test_size`` is a
        fraction (float) or a number of rows (int), as in
        ``sklearn.model_selection.train_test_split`` (``test_size=None`` is
        the default). Give each argument under one name only.
    copy : bool, default True
        False permutes the rows of X and y in place (each must be a
        writable C-contiguous array) and returns views of them: the same
        splits, in the same order, without a second copy of the data (X
        and y may be one array, as an autoencoder's; overlapping in part,
        they are refused).

    Returns
    -------
    X_train, X_test, y_train, y_test
    """
    # (a bare `if copy:` took copy=None as False and permuted the caller's arrays)
    copy = check_bool(copy, "copy")
    test = _one_of("test_fraction", test_fraction, "test_size", test_size)
    if test is None:  # scikit-learn's default, by name
        test = 0.25
    seed = _one_of("seed", seed, "random_state", random_state)
    n = _n_rows(X, "X")
    if n != _n_rows(y, "y"):
        raise ValueError(f"X and y must have the same number of rows; got {n} and {_n_rows(y, 'y')}")
    if isinstance(test, (bool, np.bool_)) or not isinstance(test, numbers.Real):
        raise TypeError(f"test_fraction / test_size must be a number; got {type(test).__name__}")
    if isinstance(test, numbers.Integral):  # scikit-learn: a number of rows
        if not 0 <= test < n:
            raise ValueError(f"test_size as a number of rows must be in [0, {n - 1}] for {n}"
                             f" rows (at least one row left to train on); got {test}")
        n_test = int(test)
    else:
        if not 0.0 <= test < 1.0:
            raise ValueError(f"test_fraction / test_size as a fraction must be in [0, 1); got {test}")
        n_test = math.ceil(n * test)   # scikit-learn's rounding: a test row for any fraction > 0
        if n_test >= n:
            raise ValueError(f"test_fraction / test_size {test} of {n} rows takes ceil({n} * {test})"
                             f" = {n_test} rows for the test set and leaves none to train on")
    try:
        rng = np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:  # NumPy's message names no argument
        raise type(exc)(f"seed / random_state must be an integer >= 0, a numpy Generator or"
                        f" None; got {seed!r} ({exc})") from None
    order = rng.permutation(n)
    if copy:
        test, train = order[:n_test], order[n_test:]
        return _take(X, train), _take(X, test), _take(y, train), _take(y, test)
    for name, arr in (("X", X), ("y", y)):
        if not (isinstance(arr, np.ndarray) and arr.flags.c_contiguous and arr.flags.writeable):
            raise ValueError(f"train_test_split(copy=False) permutes {name} in place: it must be a"
                             f" writable C-contiguous array")
        if isinstance(arr, np.ma.MaskedArray) and np.ma.getmask(arr) is not np.ma.nomask:
            # (the kernel moved its data and left the mask where it was:
            # masked cells then hid other rows' values; np.ma.getdata is a
            # view of the same data, which would be permuted under the mask)
            raise ValueError(f"train_test_split(copy=False) permutes {name} in place, and its"
                             f" mask would not move with its rows: use copy=True (each row"
                             f" keeps its mask)")
    if np.shares_memory(X, y) and not _same_rows(X, y):
        raise ValueError("train_test_split(copy=False) permutes X and y in place, and they"
                         " overlap in memory without being the same rows: give y as a copy, or"
                         " copy=True")
    _permute_in_place(X, order)
    if not _same_rows(X, y):   # (y the very rows of X, an autoencoder's: permuted once)
        # (as X: y[...] = y[order] made a second copy of y, 76 MiB for a
        # 1M x 20 float32 y; review HBQ)
        _permute_in_place(y, order)
    return X[n_test:], X[:n_test], y[n_test:], y[:n_test]


def _permute_in_place(a, order):
    """``a[...] = a[order]`` through one spare row, for a C-contiguous array."""
    # A plain view of a's memory (a MaskedArray with no mask, a memory map, a
    # matrix): Numba takes no subclass unless a kernel of the dtype is
    # compiled already, and then only its data.
    rows = np.asarray(a).reshape(len(a), -1)
    if a.dtype.hasobject:   # (references: NumPy moves them, a copy of the rows at a time)
        rows[...] = rows[order]
        return
    if a.dtype not in _KERNEL_TYPES:   # (float16, longdouble, big-endian, void...: as bytes)
        rows = rows.view(np.uint8)
    permute_rows(rows, order, np.zeros(len(a), dtype=np.bool_))


# The dtypes permute_rows is compiled for: others move as their rows' bytes
# (Numba has no type for float16, longdouble or void, nor for big-endian data).
_KERNEL_TYPES = frozenset(np.dtype(t) for t in (
    np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float32, np.float64, np.complex64, np.complex128))


def _n_rows(a, name):
    shape = getattr(a, "shape", None)
    if shape is not None and len(shape) > 0:
        return int(shape[0])
    try:
        return len(a)
    except TypeError:
        raise TypeError(f"{name} must be array-like (rows to split); got"
                        f" {type(a).__name__}") from None


def _take(a, rows):
    """Rows ``rows`` of ``a``, of ``a``'s kind: by position for pandas, as a
    NumPy array for a list or tuple."""
    if hasattr(a, "iloc"):
        return a.iloc[rows]
    if isinstance(a, np.ndarray):
        return a[rows]
    if hasattr(a, "tocsr"):   # scipy.sparse: CSR rows (a CSR matrix is itself)
        return a.tocsr()[rows]
    return np.asarray(a)[rows]


def _one_of(name, value, alias, alias_value):
    """The argument given under ``name`` or its scikit-learn ``alias``, else ``name``'s default."""
    if not isinstance(value, _Default) and not isinstance(alias_value, _Default):
        raise TypeError(f"give {name} or scikit-learn's {alias}, not both; got {name}={value!r}"
                        f" and {alias}={alias_value!r}")
    if not isinstance(value, _Default):
        return value
    return value.value if isinstance(alias_value, _Default) else alias_value


def _same_rows(X, y):
    """Whether X and y are one buffer (y is X, or a view of all of it), so
    permuting X's rows permutes y's."""
    return (X.__array_interface__["data"][0] == y.__array_interface__["data"][0]
            and X.nbytes == y.nbytes)


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
