"""Checks at the public boundary. Each error names the argument, what was
expected and what was given; nothing below the boundary checks again."""
import math
import numbers

import numpy as np


def _as_array(value, name):
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array; got a {type(value).__name__}")
    if _is_sparse(value):
        raise TypeError(f"{name} must be a dense array; got a scipy.sparse {value.format} matrix"
                        " (sparse inputs are taken as X only)")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers (bool, int or float); got dtype {arr.dtype}")
    return arr


class _Alias:
    """Holds a read-only array's memory as a writable-flagged one (see :func:`in_place`)."""
    __slots__ = ("__array_interface__", "owner")


def in_place(arr):
    """``arr`` itself, or for a read-only array (a memory map, a frozen array)
    a view of its memory flagged writable: no copy.

    Numba types read-only arrays separately, so they would compile a second
    copy of every kernel that reads data; the kernels never write their
    inputs (X, Y), so one specialisation serves both. Only ever give the
    result to kernels as an input.
    """
    if arr.flags.writeable or arr.size == 0:
        return arr
    alias = _Alias()
    interface = dict(arr.__array_interface__)
    interface["data"] = (interface["data"][0], False)
    alias.__array_interface__ = interface
    alias.owner = arr  # keeps the memory (and a memory map's file) alive
    return np.asarray(alias)


# Rows per chunk of the finiteness scan: about 64k elements, so each chunk's
# two reductions run from cache and nothing the size of the data is allocated.
SCAN = 1 << 16


def _scan_finite(arr, name, converted=""):
    """Raise ValueError naming the first non-finite element of ``arr`` (row,
    column), scanning in chunks of rows: min and max propagate NaN and show
    +-inf, and allocate nothing."""
    if arr.size == 0:
        return
    flat = arr.reshape(arr.shape[0], -1)
    rows = max(1, SCAN // max(1, flat.shape[1]))
    for start in range(0, flat.shape[0], rows):
        chunk = flat[start:start + rows]
        if np.isfinite(chunk.min()) and np.isfinite(chunk.max()):
            continue
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(chunk))[0])
        where = (where[0] + start,) + where[1:]
        if arr.ndim == 1:
            where = where[:1]
        raise ValueError(f"{name} must be finite; found {arr[where]} at index {where} (row"
                         f" {where[0]}){converted}")


def _finite_contiguous(arr, dtype, name):
    """``arr`` as C-contiguous ``dtype``, checked finite: the array itself
    (in place, read-only or memory-mapped included) when it is that already,
    else converted once."""
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, by name
        out = np.ascontiguousarray(arr, dtype=dtype)
    converted = "" if out is arr or arr.dtype == out.dtype else f" (after conversion to {out.dtype})"
    _scan_finite(out, name, converted)
    return in_place(out)


def _is_sparse(value):
    return type(value).__module__.startswith("scipy.sparse") and hasattr(value, "tocsr")


class SparseRows:
    """A checked scipy.sparse X as the kernels take it: CSR arrays (no copy
    when X is CSR of the model's dtype already) and ``kernel``, the tuple
    ``(data, indices, indptr, rows, first, n)`` of :func:`fastbp.ops.sparse_forward`."""

    def __init__(self, csr):
        self.csr = csr
        self.shape = csr.shape
        self.kernel = (in_place(csr.data), in_place(csr.indices), in_place(csr.indptr),
                       np.empty(0, np.int64), 0, csr.shape[0])

    def take(self, rows):
        """The rows ``rows`` (indices or a boolean mask), as a new SparseRows."""
        return SparseRows(self.csr[rows])

    def __repr__(self):
        return f"SparseRows(shape={self.shape}, nnz={self.csr.nnz})"


def kernel_x(X):
    """What the kernels take for a checked X: the array, or the CSR tuple."""
    return X.kernel if isinstance(X, SparseRows) else X


def _check_sparse(X, n_features, dtype, name):
    import scipy.sparse as sp
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features per sample, but the network expects"
                         f" sizes[0] = {n_features}; got a sparse matrix of shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); need at least one sample")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers (bool, int or float); got dtype {X.dtype}")
    csr = X if X.format == "csr" else X.tocsr()  # CSC, COO, ...: converted once
    if csr.dtype != dtype:
        with np.errstate(over="ignore", invalid="ignore"):
            csr = sp.csr_matrix((csr.data.astype(dtype), csr.indices, csr.indptr), shape=csr.shape)
    if not (csr.data.flags.c_contiguous and csr.indices.flags.c_contiguous
            and csr.indptr.flags.c_contiguous):
        csr = sp.csr_matrix((np.ascontiguousarray(csr.data), np.ascontiguousarray(csr.indices),
                             np.ascontiguousarray(csr.indptr)), shape=csr.shape)
    if csr.data.size and not (np.isfinite(csr.data.min()) and np.isfinite(csr.data.max())):
        p = int(np.flatnonzero(~np.isfinite(csr.data))[0])
        row = int(np.searchsorted(csr.indptr, p, side="right") - 1)
        raise ValueError(f"{name} must be finite; found {csr.data[p]} at index"
                         f" {(row, int(csr.indices[p]))} (row {row})")
    return SparseRows(csr)


def check_X(X, n_features, dtype, name="X"):
    """X as a C-contiguous (n, n_features) array of ``dtype`` (the caller's
    own array when it is one already), or a scipy.sparse X as :class:`SparseRows`."""
    # An array that is already right is used as it is, checked finite by one
    # sum (finite only if every term is; one that overflows, or holds a NaN
    # or an inf, takes the full path below, which words the error). A
    # one-row predict is mostly this boundary.
    if (type(X) is np.ndarray and X.dtype == dtype and X.ndim == 2 and X.shape[0]
            and X.shape[1] == n_features and X.flags.c_contiguous and X.flags.writeable
            and math.isfinite(np.add.reduce(X, axis=None))):
        return X
    if _is_sparse(X):
        return _check_sparse(X, n_features, dtype, name)
    arr = _as_array(X, name)
    if arr.ndim != 2:
        hint = ""
        if arr.ndim == 1 and n_features == 1:  # n samples of one feature
            hint = "; the network takes 1 feature, so for one sample per value use X.reshape(-1, 1)"
        elif arr.ndim == 1 and arr.shape[0] == n_features:  # one sample
            hint = f"; for one sample of the network's {n_features} features use X.reshape(1, -1)"
        elif arr.ndim == 1:
            hint = f"; the network expects sizes[0] = {n_features} features per sample"
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got a {arr.ndim}-D array"
                         f" of shape {arr.shape}{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); need at least one sample")
    if arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features per sample, but the network expects"
                         f" sizes[0] = {n_features}")
    return _finite_contiguous(arr, dtype, name)


def check_labels(y, n_samples, n_out, name="y"):
    """Class labels 0..n_out-1 as an int64 array (n,): the caller's own when
    it is one already (C-contiguous int64), else converted once. O(n) memory,
    never a one-hot (n, n_out) matrix."""
    arr = _as_array(y, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D integer class labels for a softmax output; got"
                         f" shape {arr.shape}")
    if arr.dtype.kind == "f":
        _scan_finite(arr, name)
        whole = np.equal(np.mod(arr, 1), 0)
        if not whole.all():
            raise ValueError(f"{name} must hold integer class labels 0..{n_out - 1}; found"
                             f" {arr[~whole][0]}")
    if arr.size and (arr.min() < 0 or arr.max() >= n_out):  # before the cast, which would wrap 1e300
        bad = arr[(arr < 0) | (arr >= n_out)][0]
        raise ValueError(f"{name} holds class labels outside 0..{n_out - 1} (sizes[-1] ="
                         f" {n_out} classes); found {bad}")
    return in_place(np.ascontiguousarray(arr, dtype=np.int64))


def check_targets(y, n_samples, output, n_out, dtype, name="y", x_name="X"):
    """Targets as the kernels take them: int64 class labels (n,) for a
    softmax output, else a C-contiguous (n, n_out) array of ``dtype``."""
    arr = _as_array(y, name)
    if arr.ndim == 0 or arr.shape[0] != n_samples:
        got = "a scalar" if arr.ndim == 0 else f"{arr.shape[0]} rows"
        raise ValueError(f"{x_name} and {name} must have the same number of samples: {x_name} has"
                         f" {n_samples}, {name} has {got}")
    if output == "softmax":
        if arr.dtype.kind == "f" and arr.ndim == 1 and not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite class labels; found NaN or infinity")
        return check_labels(arr, n_samples, n_out, name)
    if arr.ndim == 1:
        if n_out != 1:
            raise ValueError(f"{name} must have shape (n_samples, {n_out}) for {n_out} outputs;"
                             f" got shape {arr.shape}")
        arr = arr.reshape(-1, 1)
    elif arr.ndim != 2 or arr.shape[1] != n_out:
        raise ValueError(f"{name} must have shape (n_samples, {n_out})"
                         f"{' or (n_samples,)' if n_out == 1 else ''}; got shape {arr.shape}")
    Y = _finite_contiguous(arr, dtype, name)
    if output == "sigmoid" and (Y.min() < 0 or Y.max() > 1):
        bad = Y[(Y < 0) | (Y > 1)][0]
        raise ValueError(f"{name} must hold 0/1 targets (or probabilities in [0, 1]) for a"
                         f" sigmoid output; found {bad}")
    return Y


def check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}")
    return int(value)


def check_positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number; got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value}")
    return float(value)


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_seed(value, name="seed"):
    if value is None:
        return None
    return check_int(value, name, 0)


def check_choice(value, name, choices):
    """The canonical spelling in ``choices`` of the name ``value``, in any case
    ("ReLU" is "relu"); names differ by more than case, so none is ambiguous."""
    if isinstance(value, str):
        for choice in choices:
            if value.casefold() == choice.casefold():
                return choice
    raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
