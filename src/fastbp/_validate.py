"""Checks at the public boundary. Each error names the argument, what was
expected and what was given; nothing below the boundary checks again."""
import math
import numbers
import os
import sys
import warnings

import numpy as np


def _as_array(value, name):
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array; got a {type(value).__name__}")
    if _is_sparse(value):
        raise TypeError(f"{name} must be a dense array; got a scipy.sparse {value.format} matrix"
                        " (sparse inputs are taken as X only)")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, RuntimeError) as exc:   # (torch's, for a tensor requiring grad)
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        flat = arr.ravel()
        if arr.dtype.kind == "O":
            kinds = set(map(type, flat))
            texts = {t for t in kinds if issubclass(t, (str, bytes))}
            if arr.ndim == 1 and texts and texts != kinds:  # labels and a pandas NaN
                text = [type(v) in texts for v in flat]
                other = text.index(False)
                raise TypeError(f"{name} mixes text labels with other values: {flat[other]!r}"
                                f" at index {other} among labels such as"
                                f" {flat[text.index(True)]!r}; text labels must all be str")
            # Numbers of several kinds in one object array (what np.asarray
            # makes of a DataFrame with a bool column beside float ones, as
            # pd.get_dummies gives, or of nullable Int64/Float64 columns) are
            # converted, as scikit-learn's check_array does: to bool when
            # every cell is a bool, int64 when every cell is a bool or an
            # integer, else float64. The cells' types are looked at once
            # each (10M cells: isinstance per cell took 4 s); the first cell
            # that is not a number is named where the user's array has it
            # (a flat index of a 2-D X named a cell elsewhere).
            odd = {t for t in kinds if not _number_type(t)}
            if odd:
                bad = next(i for i, v in enumerate(flat) if type(v) in odd)
                where = (tuple(int(i) for i in np.unravel_index(bad, arr.shape))
                         if arr.ndim > 1 else bad)
                row = f" (row {where[0]})" if arr.ndim > 1 else ""
                raise TypeError(f"{name} must hold numbers (bool, int or float); got"
                                f" {flat[bad]!r} at index {where}{row}, in an array of dtype"
                                " object")
            if all(issubclass(t, (bool, np.bool_)) for t in kinds):
                return arr.astype(bool)
            if all(issubclass(t, (numbers.Integral, np.bool_)) for t in kinds):
                try:
                    return arr.astype(np.int64)
                except OverflowError:   # (an integer past int64: as float64, below)
                    pass
            try:
                return arr.astype(np.float64)
            except OverflowError:   # (an integer past float64's range)
                top = int(np.finfo(np.float64).max)
                big = next(v for v in flat if isinstance(v, numbers.Integral) and abs(v) > top)
                raise ValueError(f"{name} holds an integer beyond float64's range (of"
                                 f" {len(str(abs(int(big))))} digits)") from None
        raise TypeError(f"{name} must hold numbers (bool, int or float); got dtype {arr.dtype}")
    return arr


def _number_type(t):
    """Whether cells of type ``t`` in an object array are numbers that
    :func:`_as_array` converts: bool, int or float (Python's or NumPy's; not
    complex, and not NumPy's timedelta64, which subclasses its integers)."""
    return (issubclass(t, (numbers.Real, np.bool_))
            and not issubclass(t, (np.timedelta64, np.datetime64)))


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


def all_finite(arr):
    """Whether every element of the float array ``arr`` is finite, without a
    warning. A small array by ``np.isfinite`` (a mask of at most SCAN bytes);
    a larger one by its sum (finite only if every term is; one pass, no
    allocation), and when that is not finite, by the min and max of chunks of
    rows (they propagate NaN and show +-inf), so that a sum that overflowed
    on large finite values does not count as a non-finite element."""
    if arr.size <= SCAN:
        return bool(np.isfinite(arr).all())
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(np.add.reduce(arr, axis=None)):
            return True
    return _first_bad_chunk(arr) is None


def _first_bad_chunk(arr):
    # (start, chunk) of the first chunk of rows holding a non-finite value, or None.
    flat = arr.reshape(arr.shape[0], -1)
    rows = max(1, SCAN // max(1, flat.shape[1]))
    for start in range(0, flat.shape[0], rows):
        chunk = flat[start:start + rows]
        if not (np.isfinite(chunk.min()) and np.isfinite(chunk.max())):
            return start, chunk
    return None


def _scan_finite(arr, name, converted="", original=None):
    """Raise ValueError naming the first non-finite element of ``arr`` (row,
    column); see :func:`all_finite`. ``converted`` is said only where the
    element of ``original`` (arr before a conversion) was finite."""
    if arr.size == 0 or all_finite(arr):
        return
    start, chunk = _first_bad_chunk(arr)
    where = tuple(int(i) for i in np.argwhere(~np.isfinite(chunk))[0])
    where = (where[0] + start,) + where[1:]
    if arr.ndim == 1:
        where = where[:1]
    if converted and original is not None and not np.isfinite(original[where]):
        converted = ""  # it was so before the conversion
    raise ValueError(f"{name} must be finite; found {arr[where]} at index {where} (row"
                     f" {where[0]}){converted}")


def _finite_contiguous(arr, dtype, name):
    """``arr`` as C-contiguous ``dtype``, checked finite: the array itself
    (in place, read-only or memory-mapped included) when it is that already,
    else converted once."""
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, by name
        out = np.ascontiguousarray(arr, dtype=dtype)
    converted = "" if out is arr or arr.dtype == out.dtype else f" (after conversion to {out.dtype})"
    _scan_finite(out, name, converted, arr)
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


def kernel_rows(x, start, nb):
    """Rows start..start + nb - 1 of ``x`` as :func:`kernel_x` gives it: a
    view of the array, or the CSR tuple with its row selection moved on."""
    return x[:4] + (x[4] + start, nb) + x[6:] if isinstance(x, tuple) else x[start:start + nb]


_INDEX_TYPES = (np.dtype(np.int32), np.dtype(np.int64))  # native byte order


def _sound_structure(csr, name, fmt="CSR"):
    """``csr`` with index arrays the kernels read (native int32 or int64: a
    copy in int64 of any other, such as big-endian ones), checked to describe
    a matrix: the kernels index the data with them unchecked, so a row
    pointer past the end or a column index out of range read (or, in a
    fit, wrote) outside the arrays. (SciPy's ``check_format(full_check=True)``
    checks the same in about the same time, 3.05 against 2.80 ms on 60000 x
    784 at 20 %, but replaces the caller's matrix's index arrays with
    converted ones: the user's matrix is not ours to change.) ``fmt="CSC"``:
    ``csr`` is a CSC matrix's transpose (the same arrays), checked before
    SciPy converts it, unchecked, to CSR; messages then speak of columns."""
    import scipy.sparse as sp
    major, minor = {"CSR": ("row", "column"), "CSC": ("column", "row"),
                    "BSR": ("block row", "block column")}[fmt]
    indices, indptr = csr.indices, csr.indptr
    if indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
        raise TypeError(f"{name} is a sparse matrix with index arrays of dtype {indices.dtype}"
                        f" (indices) and {indptr.dtype} (indptr); they must be integers")
    n_rows, n_cols = csr.shape
    if indptr.size != n_rows + 1:
        raise ValueError(f"{name} is not a valid {fmt} matrix: indptr has {indptr.size} entries"
                         f" for {n_rows} {major}s (must be n_{major}s + 1)")
    nnz = int(indptr[-1])
    if indptr[0] != 0 or (n_rows and np.any(indptr[1:] < indptr[:-1])):
        raise ValueError(f"{name} is not a valid {fmt} matrix: indptr must start at 0 and never"
                         f" decrease")
    if nnz > indices.size or nnz > csr.data.size:
        raise ValueError(f"{name} is not a valid {fmt} matrix: indptr ends at {nnz}, past its"
                         f" {min(indices.size, csr.data.size)} stored values")
    if nnz:
        used = indices[:nnz]
        low, high = int(used.min()), int(used.max())
        if low < 0 or high >= n_cols:
            p = int(np.flatnonzero((used < 0) | (used >= n_cols))[0])
            row = int(np.searchsorted(indptr, p, side="right") - 1)
            raise ValueError(f"{name} is not a valid {fmt} matrix: {minor} index {int(used[p])} in"
                             f" {major} {row} is outside [0, {n_cols})")
    if indices.dtype not in _INDEX_TYPES or indptr.dtype not in _INDEX_TYPES:
        csr = sp.csr_matrix((csr.data, indices.astype(np.int64), indptr.astype(np.int64)),
                            shape=csr.shape, copy=False)
    return csr


def _coo_indices(coo, name):
    """Raise unless a COO matrix's row and column indices lie in its shape
    (SciPy's conversion to CSR reads them unchecked: an index out of range
    was dropped, or crashed the process)."""
    coords = getattr(coo, "coords", None) or (coo.row, coo.col)   # (coords: SciPy 1.13)
    for axis, (index, size) in enumerate(zip(coords, coo.shape)):
        what = ("row", "column")[axis]
        if index.dtype.kind not in "iu":
            raise TypeError(f"{name} is a COO matrix with {what} indices of dtype {index.dtype};"
                            " they must be integers")
        if index.size != coo.data.size:
            raise ValueError(f"{name} is not a valid COO matrix: {index.size} {what} indices for"
                             f" {coo.data.size} values")
        if index.size and (int(index.min()) < 0 or int(index.max()) >= size):
            p = int(np.flatnonzero((index < 0) | (index >= size))[0])
            raise ValueError(f"{name} is not a valid COO matrix: {what} index {int(index[p])} of"
                             f" value {p} is outside [0, {size})")


def _as_csr(X, name, numbers=True):
    """X as a CSR matrix whose index arrays are checked (CSC, COO and BSR are
    checked before SciPy converts them; other formats, LIL, DOK and DIA, SciPy
    converts from structures it keeps itself). With ``numbers``, a bool or
    integer COO's duplicates are summed as numbers, as a CSR's are read."""
    if X.format == "csc":
        _sound_structure(X.T, name, fmt="CSC")
    elif X.format == "coo":
        _coo_indices(X, name)
        if numbers and X.dtype.kind in "biu":
            # SciPy's tocsr sums a COO's duplicates in its own dtype (two
            # True made True, int8 100 + 100 wrapped to -56), where CSR and
            # CSC entries are summed as numbers (review HDN): as numbers here
            # too (not for labels, numbers=False: a y's stays scikit-learn's).
            # (The data alone: COO's astype sorted every entry first, 10x
            # the time and 6x the memory of tocsr on 10M entries, review HDS.)
            X = type(X)((X.data.astype(np.float64), (X.row, X.col)), shape=X.shape, copy=False)
    elif X.format == "bsr":   # (a decreasing indptr: SciPy's bsr_tocsr wrote past its output)
        import types
        r, c = X.blocksize
        if X.shape[0] % r or X.shape[1] % c:   # (SciPy left part of the CSR indptr unset)
            raise ValueError(f"{name} is not a valid BSR matrix: its shape {X.shape} is not a"
                             f" multiple of its blocksize {(r, c)}")
        blocks = types.SimpleNamespace(indices=X.indices, indptr=X.indptr,
                                       shape=(X.shape[0] // r, X.shape[1] // c),
                                       data=np.broadcast_to(0, X.data.shape[:1]))
        _sound_structure(blocks, name, fmt="BSR")
    return _sound_structure(X if X.format == "csr" else X.tocsr(), name)


def _check_sparse(X, n_features, dtype, name):
    import scipy.sparse as sp
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got a sparse array of"
                         f" shape {X.shape}")
    if X.shape[1] != n_features:
        raise ValueError(f"{name} has {X.shape[1]} features per sample, but the network expects"
                         f" sizes[0] = {n_features}; got a sparse matrix of shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape}); need at least one sample")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers (bool, int or float); got dtype {X.dtype}")
    csr = given = _as_csr(X, name)  # CSC, ...: converted once
    if csr.dtype != dtype:
        with np.errstate(over="ignore", invalid="ignore"):
            csr = sp.csr_matrix((csr.data.astype(dtype), csr.indices, csr.indptr), shape=csr.shape)
    if not (csr.data.flags.c_contiguous and csr.indices.flags.c_contiguous
            and csr.indptr.flags.c_contiguous):
        csr = sp.csr_matrix((np.ascontiguousarray(csr.data), np.ascontiguousarray(csr.indices),
                             np.ascontiguousarray(csr.indptr)), shape=csr.shape)
    stored = csr.data[:int(csr.indptr[-1])]   # (storage past the end is never read)
    lo, hi = (float(stored.min()), float(stored.max())) if stored.size else (0.0, 0.0)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        p = int(np.flatnonzero(~np.isfinite(stored))[0])
        row = int(np.searchsorted(csr.indptr, p, side="right") - 1)
        was = (f" (after conversion to {np.dtype(dtype).name})"
               if np.isfinite(given.data[p]) else "")   # a float64 1e300 in a float32 model
        raise ValueError(f"{name} must be finite; found {stored[p]} at index"
                         f" {(row, int(csr.indices[p]))} (row {row}){was}")
    if stored.size and given.dtype.kind == "f":
        _check_duplicate_sums(given, max(abs(lo), abs(hi)), dtype, name)
    return SparseRows(csr)


def _check_duplicate_sums(given, amax, dtype, name):
    """Refuse a float CSR X whose duplicate entries, each finite, sum past
    the range of X's dtype or the model's: the cell's value to SciPy and in
    ``X.toarray()`` (summed in X's dtype, then converted), refused there as
    the dense X and a COO or CSC X (summed by tocsr) are. (Bool and integer
    entries, which cannot reach the range, the kernels sum as numbers, as
    scikit-learn does.)

    No entry is larger than ``amax`` (in the model's dtype) and no cell
    holds more entries than its row, so where ``row nnz * amax`` stays
    below both ranges no sum can overflow: an O(rows) test, which real data
    passes; only matrices of values near the range are looked at closely
    (on a copy: ``given`` may be the caller's own matrix)."""
    import scipy.sparse as sp
    limit = min(float(np.finfo(given.dtype).max), float(np.finfo(dtype).max))
    longest = int(np.diff(given.indptr).max())
    if longest < 2 or 2.0 * amax * longest < limit:   # (2: the stored values' rounding)
        return
    if given.has_canonical_format:
        return
    nnz = int(given.indptr[-1])
    summed = sp.csr_matrix((given.data[:nnz], given.indices[:nnz], given.indptr),
                           shape=given.shape, copy=True)
    with np.errstate(over="ignore", invalid="ignore"):
        summed.sum_duplicates()
        values = summed.data.astype(dtype)
    if not np.isfinite(values).all():
        p = int(np.flatnonzero(~np.isfinite(values))[0])
        row = int(np.searchsorted(summed.indptr, p, side="right") - 1)
        raise ValueError(f"{name} must be finite; found {values[p]} at index"
                         f" {(row, int(summed.indices[p]))} (row {row}), the sum of its"
                         f" duplicate entries (as X.toarray() sums them)")


def check_X(X, n_features, dtype, name="X"):
    """X as a C-contiguous (n, n_features) array of ``dtype`` (the caller's
    own array when it is one already), or a scipy.sparse X as :class:`SparseRows`."""
    # An array that is already right is used as it is, checked finite (one
    # that is not takes the full path below, which words the error). A
    # one-row predict is mostly this boundary.
    if (type(X) is np.ndarray and X.dtype == dtype and X.ndim == 2 and X.shape[0]
            and X.shape[1] == n_features and X.flags.c_contiguous and X.flags.writeable
            and all_finite(X)):
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


def check_int(value, name, minimum, maximum=None, why=""):
    """``value`` as an int in [minimum, maximum] (no maximum: None), else a
    TypeError or ValueError naming ``name`` (and ``why``, the maximum's
    reason)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be an integer from {minimum} to {maximum:,}{why};"
                         f" got {value}")
    return int(value)


def array_room(shape, itemsize, name, value):
    """Refuse an array of ``shape`` that no memory holds (past what NumPy
    can index: it raised "Maximum allowed dimension exceeded" or an
    IndexError naming nothing) by the argument ``name`` that asked for it
    (review HDU)."""
    total = 1
    for extent in shape:
        total *= int(extent)
    if total * itemsize >= 2 ** 63:
        raise ValueError(f"{name}={value} asks for an array of {total:,} values"
                         f" ({total * itemsize:.3g} bytes), beyond any memory")


def real_as_float(value):
    """A real number (an int of any size, a Fraction, a NumPy scalar) as a
    float, +-inf beyond float's range (np.isfinite refused ints past int64
    and Fractions with a TypeError naming no argument, math.isfinite raised
    OverflowError for 10**400)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def in_unit_interval(value, open_low=False):
    """The float a real number in [0, 1) ((0, 1) with ``open_low``) is stored
    as, or None where it is not one (a bool, a non-number): judged as given
    and as stored (Fraction(10**20 - 1, 10**20) rounds to 1.0,
    Fraction(1, 10**400) to 0.0, Fraction(-1, 10**400) to -0.0)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    number = real_as_float(value)
    low = (value > 0 and number > 0) if open_low else (value >= 0 and number >= 0)
    return number if low and number < 1 else None


def check_positive(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number; got {value!r}")
    number = real_as_float(value)
    if not (math.isfinite(number) and number > 0):
        # (a longdouble 1e-4000 named as its float, 0.0)
        shown = value if number == value else repr(value)
        raise ValueError(f"{name} must be a positive finite number; got {shown}")
    return number


def check_nonnegative(value, name):
    """A finite real number >= 0 (not a bool), as float; else TypeError for
    what is not a real number (as :func:`check_positive`), ValueError for one
    out of range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a finite number >= 0; got {value!r}")
    number = real_as_float(value)
    # (the sign of the value given: Fraction(-1, 10**400) rounds to -0.0)
    if not math.isfinite(number) or number < 0 or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    return number


def broadcasts_to(shape, to):
    """Whether an intercept or bias of ``shape`` broadcasts to the ``to`` =
    (n,) units of its layer as it is added to (rows, n) outputs, by
    scikit-learn (``activations += intercepts_[l]``) and torch alike: (),
    (1,), (n,), (1, 1) or (1, n)."""
    try:
        return len(shape) <= 2 and np.broadcast_shapes(shape, (1, *to)) == (1, *to)
    except ValueError:
        return False


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


# ------------------------------------------------------ sample and class weights
def check_sample_weight(sample_weight, n_samples, name="sample_weight", x_name="X"):
    """Sample weights as the weighted kernels take them: a C-contiguous
    float64 array (n,) of finite numbers >= 0; None stays None."""
    if sample_weight is None:
        return None
    arr = _as_array(sample_weight, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, one weight per sample; got shape {arr.shape}")
    if arr.shape[0] != n_samples:
        raise ValueError(f"{x_name} and {name} must have the same number of samples: {x_name} has"
                         f" {n_samples}, {name} has {arr.shape[0]}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    _scan_finite(arr, name)
    if arr.size and arr.min() < 0:
        i = int(np.flatnonzero(arr < 0)[0])
        raise ValueError(f"{name} must be >= 0; found {arr[i]} at index {i}")
    return arr


def _class_indices(Y, output, n_out, name):
    """The class of each row of network targets: the label of a softmax
    output, 0 or 1 for a single sigmoid output."""
    if output == "softmax":
        return Y
    if output != "sigmoid" or n_out != 1:
        what = ("multilabel targets (a sigmoid output with several units); weight their rows"
                " with sample_weight" if output == "sigmoid" else
                f"a regression model (output {output!r}); use sample_weight")
        raise ValueError(f"class_weight applies to classifiers (a softmax output, or one sigmoid"
                         f" output); this is {what}")
    labels = Y[:, 0]
    whole = (labels == 0) | (labels == 1)
    if not whole.all():
        raise ValueError(f"class_weight needs 0/1 class labels in {name}; found"
                         f" {labels[~whole][0]} (a probability target has no class)")
    return labels.astype(np.int64)


def class_weights(class_weight, Y, output, n_out, classes, sample_weight=None):
    """Per-class weights (n_classes,) float64 for ``class_weight``, or None.

    ``class_weight`` is None, ``"balanced"`` (scikit-learn's
    ``compute_class_weight(class_weight, classes=np.unique(y), y=y,
    sample_weight=sample_weight)``: ``sum(w) / (n_present * count_w(c))``, the
    counts weighted by ``sample_weight`` when given, n_present the number
    of classes in y; 0 for a class without weight in y) or a dict
    ``{label: weight}`` over the model's labels (``classes``, else 0..n_out-1,
    or 0/1 for a sigmoid output); a class it leaves out weighs 1. ``Y`` are
    the network's targets of the training rows.
    """
    if class_weight is None:
        return None
    idx = _class_indices(Y, output, n_out, "y")
    n_classes = n_out if output == "softmax" else 2
    if isinstance(class_weight, str):
        if class_weight.casefold() != "balanced":   # (any case, as every named choice)
            raise ValueError(f"class_weight must be None, 'balanced' or a dict {{label: weight}};"
                             f" got {class_weight!r}")
        counts = np.bincount(idx, weights=sample_weight, minlength=n_classes).astype(np.float64)
        present = np.count_nonzero(np.bincount(idx, minlength=n_classes))
        out = np.zeros(n_classes)
        np.divide(counts.sum(), present * counts, out=out, where=counts > 0)
        return out
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be None, 'balanced' or a dict {{label: weight}}; got"
                        f" {class_weight!r}")
    labels = list(range(n_classes)) if classes is None else np.asarray(classes).tolist()
    out = np.ones(n_classes)
    unknown, named = [], {}
    for key, value in class_weight.items():
        # Labels 0..n-1 (no classes_): a bool y holds them as False and True,
        # so those keys name 0 and 1 (as scikit-learn takes {True: w} for it).
        label_key = int(key) if classes is None and isinstance(key, (bool, np.bool_)) else key
        if isinstance(key, bytes):   # y's bytes labels are classes_ as str (decoded as UTF-8)
            try:
                label_key = key.decode("utf-8")
            except UnicodeDecodeError:
                pass
        hits = [k for k, label in enumerate(labels) if _same_label(label, label_key)]
        if not hits:
            unknown.append(key)
            continue
        if hits[0] in named:   # ("a" and b"a": one weight would be dropped)
            raise ValueError(f"class_weight names the class {labels[hits[0]]!r} twice, as"
                             f" {named[hits[0]]!r} and {key!r}; give it one weight")
        named[hits[0]] = key
        out[hits[0]] = check_nonnegative(value, f"class_weight[{key!r}]")
    if unknown:
        raise ValueError(f"class_weight has labels that are not classes of this model: {unknown};"
                         f" its classes are {labels}")
    return out


def _same_label(label, key):
    if isinstance(key, (bool, np.bool_)) != isinstance(label, (bool, np.bool_)):
        return False
    if isinstance(key, (str, bytes, np.str_)) != isinstance(label, (str, bytes, np.str_)):
        return False
    try:
        return bool(label == key)
    except (TypeError, ValueError):
        return False


def row_weights(sample_weight, per_class, Y, output, n_out, name="y"):
    """Each row's weight: ``sample_weight`` times its class's weight
    (scikit-learn combines them so), float64 C-contiguous (n,), or None
    when both are None (``name``: the targets' in an error)."""
    if per_class is None:
        w = sample_weight
    else:
        w = per_class[_class_indices(Y, output, n_out, name)]
        if sample_weight is not None:
            w = sample_weight * w
    # A read-only array (a memory map) in place, typed as a writable one: no
    # second compiled specialisation (see in_place); the kernels only read it.
    return None if w is None else in_place(np.ascontiguousarray(w, dtype=np.float64))


def weight_sources(sample_weight, class_weight, sample_name="sample_weight"):
    """The arguments given that weights come from, as messages name them."""
    return [name for name, given in ((sample_name, sample_weight), ("class_weight", class_weight))
            if given is not None]


def check_weight_sum(weights, what, sources=("sample_weight",)):
    """Raise ValueError unless the weights of ``what`` (from ``sources``, the
    arguments the messages name: see :func:`weight_sources`) sum to more
    than zero, and to a finite number (every batch's sum is at most that:
    the kernels' sums cannot overflow), and no positive weight is so small
    (subnormal) that a batch's normalisation would overflow."""
    source, rescale = " times ".join(sources), " or ".join(sources)
    with np.errstate(over="ignore"):
        total = weights.sum()
    if not total > 0:
        raise ValueError(f"the weights of the {what} ({source}) sum to zero: no sample would"
                         " count")
    if not np.isfinite(total):
        raise ValueError(f"the weights of the {what} ({source}) sum to more than a float64"
                         f" holds: rescale {rescale} (their ratios weight the rows; with"
                         " alpha > 0 their sum also divides the L2 term)")
    # A batch's weights are normalised by nb / (their sum): a sum below
    # nb / float64's largest overflowed that to inf (a NaN gradient blamed on
    # the learning rate). A batch's sum is at least its smallest positive
    # weight, and nb at most the number of rows; tiny weights have been
    # scaled up (_scaled_up), so this refuses only ratios beyond 1e-305.
    smallest = np.min(weights, where=weights > 0, initial=np.inf)
    if float(smallest) < weights.size / sys.float_info.max:  # (no overflow warning)
        raise ValueError(f"the weights of the {what} ({source}) include {smallest:.3g}, too"
                         f" small to normalise a batch by: rescale {rescale} (their ratios"
                         " weight the rows; with alpha > 0 their sum also divides the L2 term)")


def fit_weights(sample_weight, class_weight, Y, output, n_out, classes, alpha, scaled=None):
    """``MLP.fit``'s weights: ``(weights, per_class)``, the training rows'
    weights (float64 (n,), or None for an unweighted fit) and the per-class
    weights (or None), from the network targets Y, for a model of L2
    coefficient ``alpha``; checked, nothing changed. ``scaled``: a list that
    gets True when the weights were scaled (see :func:`_scaled_up`)."""
    sw = check_sample_weight(sample_weight, Y.shape[0])
    per_class = class_weights(class_weight, Y, output, n_out, classes, sw)
    weights = _scaled_up(row_weights(sw, per_class, Y, output, n_out), alpha, scaled)
    if weights is not None:
        check_weight_sum(weights, "samples", weight_sources(sample_weight, class_weight))
    return weights, per_class


def validation_weights(sample_weight, per_class, Y, output, n_out, alpha, scaled=None):
    """The validation rows' weights (float64 (n,)) from their own
    ``sample_weight`` (validation_data's third element) and the fit's
    per-class weights, or None when neither is given (``scaled``: as
    :func:`fit_weights`)."""
    sw = check_sample_weight(sample_weight, Y.shape[0], "validation_data[2]", "validation_data[0]")
    weights = _scaled_up(row_weights(sw, per_class, Y, output, n_out, "validation_data[1]"), alpha,
                         scaled)
    if weights is not None:
        check_weight_sum(weights, "validation rows",
                         weight_sources(sample_weight, per_class, "validation_data[2]"))
    return weights


# Weights whose largest is below TINY_WEIGHTS are scaled up by a power of
# two, above HUGE_WEIGHTS down (see _scaled_up); ordinary weights stay the
# very array, to the bit.
TINY_WEIGHTS = 2.0 ** -500
HUGE_WEIGHTS = 2.0 ** 500


def _scaled_up(weights, alpha, scaled=None):
    """``weights``, or for weights all below TINY_WEIGHTS (or any above
    HUGE_WEIGHTS: a weighted loss of 1.7e307 a row overflowed, the loss and
    the L-BFGS objective inf) a copy scaled by the
    power of two that brings the largest to [1, 2), when the L2 coefficient
    ``alpha`` is 0: then only their ratios matter, and a power of two
    scales every weight, sum and ratio exactly, where the kernels'
    normalisation of a batch, nb / (its sum), overflowed on weights near
    the smallest float64 (1e-305 on 2000 rows). With alpha > 0 the L2 term
    is divided by the weights' sum (scikit-learn's objective): scaled, the
    objective jumped (1.1e149 at weights of 2**-501 became 1.28), so they
    stay as given; and a fit whose weights were scaled (``scaled``, a list,
    gets True) refuses a non-zero ``net.alpha`` until it ends."""
    if weights is None or weights.size == 0 or alpha != 0:
        return weights
    largest = float(weights.max())
    if not (0 < largest < TINY_WEIGHTS or largest > HUGE_WEIGHTS):
        return weights
    shift = 1 - int(np.frexp(largest)[1])   # (2**1029 is past float64)
    if shift < 0:
        # Down, no positive weight may fall below the normal floats, where a
        # power of two no longer scales exactly (1e-30 beside 1e300 became 0,
        # its batch skipped): such weights stay as given.
        smallest = float(np.min(weights, where=weights > 0, initial=np.inf))
        if np.ldexp(smallest, shift) < np.finfo(np.float64).tiny:
            return weights
    if scaled is not None:
        scaled.append(True)
    return np.ldexp(weights, shift)


def require(module, what, extra="onnx"):
    """Import an optional package, or raise an ImportError that says how to
    install it (fastbp's ``extra`` that brings it)."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"{what} needs the optional package {module!r}, which is not"
                          f' installed: pip install "fastbp[{extra}]"') from None


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message, category=UserWarning, within=()):
    """``warnings.warn`` attributed to the first caller outside fastbp (and
    the folders ``within``, e.g. Numba's): the user's line, however deep in
    fastbp the warning is raised (so that ``filterwarnings(module=...)`` and
    the line shown are the user's)."""
    level, frame = 2, sys._getframe(1)
    inside = (_PACKAGE, *within)
    while frame is not None and frame.f_code.co_filename.startswith(inside):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, category, stacklevel=level)
