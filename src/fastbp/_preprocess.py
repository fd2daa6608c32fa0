"""What a model needs to turn raw rows into network inputs and network
outputs into answers: input standardisation, class labels, target scaling.

The model keeps each as a plain read-only array (or None), so that saving,
printing and export read the same numbers that :class:`fastbp.MLP` applies:

- ``input_mean``, ``input_scale`` (n_in,): the network sees
  ``(X - input_mean) / input_scale``;
- ``classes_`` (n_classes,): the label of each softmax output (or of the
  0/1 answers of one sigmoid output); ``y`` holds labels, ``predict`` returns
  them;
- ``target_mean``, ``target_scale`` (n_out,): for an identity output the
  network learns ``(y - target_mean) / target_scale`` and ``predict`` answers
  ``out * target_scale + target_mean``.

The functions here check those arrays and apply them; MLP calls them from
exactly one place each way (``MLP._inputs`` / ``MLP._targets`` in,
``MLP._answer`` out).
"""
import numpy as np

from ._validate import _as_array, _is_sparse, _number_type
from .layout import frozen

# Label dtypes a model file can hold without pickle: text, numbers, bools.
LABEL_KINDS = "Uiufb"


def check_scaling(mean, scale, n, what):
    """``(mean, scale)`` as read-only float64 arrays of shape (n,), or
    ``(None, None)`` when both are None. A scalar applies to every column."""
    if mean is None and scale is None:
        return None, None
    out = []
    for value, name, default in ((mean, "mean", 0.0), (scale, "scale", 1.0)):
        # X's own rule: numbers (bool, int, float) only; a complex, text or
        # datetime value was cast (the imaginary part dropped, "1e3" read).
        arr = _as_array(default if value is None else value, f"{what} {name}").astype(np.float64)
        if arr.ndim == 0:
            arr = np.full(n, float(arr))
        if arr.shape != (n,):
            per = ("output (sizes[-1])" if what == "target" else
                   "input (sizes[0]: a category column counts its one-hot codes)")
            raise ValueError(f"{what} {name} must have shape ({n},), one value per network {per};"
                             f" got shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} {name} must be finite; got {arr[~np.isfinite(arr)][0]}")
        out.append(frozen(np.asarray(arr, dtype=np.float64)))
    if (out[1] <= 0).any():
        j = int(np.flatnonzero(out[1] <= 0)[0])
        raise ValueError(f"{what} scale must be > 0 in every column; got {out[1][j]} in column {j}")
    return out[0], out[1]


# Rows per block when scaling: a few MiB of float64 at a time.
BLOCK_ROWS = 8192


def _column(j):
    return f"column {j}"


def mean_std(A, name="X", column=_column):
    """Column means and standard deviations of an array (n, m), in float64;
    a column that is constant up to rounding gets scale 1, not a tiny std
    that would blow its rounding errors up to order 1. Constant as
    scikit-learn's StandardScaler judges it (``_is_constant_feature``): the
    variance at most ``n eps var + (n eps mean)^2``, the rounding error that
    summing n values can leave.

    The numbers of ``A.mean(axis=0)`` and ``A.std(axis=0)`` on A in
    float64, the same bits where NumPy sums the rows in order (A of two or
    more columns; a one-column A's contiguous column NumPy sums pairwise,
    which may differ in the last bit, review HFE), a block of rows at a
    time: no float64 copy of A, no full-size temporary.
    """
    n = A.shape[0]
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is named below
        mean = A.mean(axis=0, dtype=np.float64)
        acc = np.zeros((1,) + A.shape[1:], dtype=np.float64)
        for i in range(0, n, BLOCK_ROWS):
            part = np.empty((min(BLOCK_ROWS, n - i) + 1,) + A.shape[1:], dtype=np.float64)
            part[0] = acc[0]  # carried in front, so that the rows add up in order
            np.subtract(A[i:i + BLOCK_ROWS], mean, out=part[1:])
            np.multiply(part[1:], part[1:], out=part[1:])
            np.sum(part, axis=0, out=acc[0])
        std = np.sqrt(acc[0] / n)
    eps = np.finfo(np.float64).eps
    var = acc[0] / n
    with np.errstate(over="ignore"):  # (n eps mean)^2 past float64: constant within that
        constant = var <= n * eps * var + (n * eps * mean) ** 2
    again = np.isfinite(mean) & ~(np.isfinite(std) & (std >= TINY_STD))
    if (again & (std < TINY_STD)).any():
        # (a constant column, the common case, is left out by one vectorised
        # pass: a column at a time, 250 zero columns of 100k rows took 0.1 s)
        again &= ~(std < TINY_STD) | (A.max(axis=0) != A.min(axis=0))
    for j in np.flatnonzero(again.ravel()):
        # Squares past float64 (deviations above 1.3e154), or below its
        # normal numbers (deviations below 1.5e-154: [1e-200, 2e-200] had a
        # std of 0, scale 1): the column again, scaled by its largest
        # deviation, for the std float64 holds, and the same test of
        # constancy in standard deviations.
        std.ravel()[j], constant.ravel()[j] = _scaled_std(A[:, j], mean.ravel()[j], n, eps)
    bad = ~(np.isfinite(mean) & np.isfinite(std))
    if bad.any():
        j = int(np.flatnonzero(bad.ravel())[0])
        what = "deviations from its mean overflow" if np.isfinite(mean.ravel()[j]) \
            else "mean overflows"
        raise ValueError(f"{name} {column(j)}: its {what} float64 (values up to"
                         f" {np.abs(A[:, j]).max():.4g}); rescale that column first")
    return mean, np.where(constant | (std == 0), 1.0, std)


# Below this a std is computed again from scaled deviations (their squares
# lose digits as subnormals from 1.5e-154 down): see mean_std.
TINY_STD = 1e-150


def _scaled_std(column, mean, n, eps):
    # (std, constant) of one column whose squared deviations overflow float64:
    # the deviations divided by the largest first. constant: the variance
    # within scikit-learn's rounding bound (see mean_std), as
    # std sqrt(1 - n eps) <= n eps |mean|.
    with np.errstate(over="ignore", invalid="ignore"):
        dev = np.subtract(column, mean, dtype=np.float64)
        scale = np.abs(dev).max()
        if scale == 0:   # constant
            return 0.0, True
        std = scale * np.sqrt(np.mean(np.square(dev / scale)))
    return std, bool(std * np.sqrt(max(1.0 - n * eps, 0.0)) <= n * eps * abs(mean))


# Above this size a new array is laid out in ordinary pages (empty_rows).
PAGED = 1 << 24


def empty_rows(shape, dtype):
    """``np.empty(shape, dtype)``; a large one (from 16 MiB) in the ordinary
    4 KiB pages of an anonymous memory map rather than in NumPy's
    transparent huge pages. An array filled once, block of rows by block,
    costs a third of the time so: 0.20 s of CPU against 0.65 s for 1M x 28
    float64 on this repository's machine, where each huge page is compacted
    and zeroed when first touched (0.085 s against 0.16-0.25 s for the
    800k x 28 float32 rows that ``standardise`` writes), measured while
    other jobs loaded the machine; on the quiet machine the huge pages need
    no compaction and ``np.empty`` fills faster (0.038 s against 0.075 s for
    1M x 28 float64): the map bounds the bad case. The array is
    writable, C-contiguous, shares memory with nothing (a private mapping:
    a forked process's writes stay its own), and is freed with its last
    view."""
    shape = tuple(int(k) for k in shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    import mmap
    if nbytes < PAGED or not hasattr(mmap, "MAP_PRIVATE") or not hasattr(mmap, "MADV_NOHUGEPAGE"):
        return np.empty(shape, dtype=dtype)
    # Private, as np.empty's memory is (a forked child's writes stay its
    # own); a private anonymous map may get huge pages too, hence the advice.
    m = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    m.madvise(mmap.MADV_NOHUGEPAGE)
    return np.frombuffer(m, dtype=dtype).reshape(shape)


def _beyond(values, dtype):
    """The index of the first of ``values`` (float64, or a long double)
    whose size ``dtype`` cannot hold, or None (always None for float64
    values in float64)."""
    if (np.dtype(dtype).itemsize >= values.dtype.itemsize and values.dtype.kind == "f") \
            or not values.size:
        return None
    over = np.abs(values) > np.finfo(dtype).max
    return tuple(int(k) for k in np.argwhere(over)[0]) if over.any() else None


def check_fits(A, dtype, name="X", column=_column):
    """Rows ``A`` (float64, finite) that a model of ``dtype`` takes as they
    are: a value ``dtype`` cannot hold is a ValueError naming its row and
    ``column`` (the raw rows' column, where A is their one-hot encoding:
    check_X, after the encoding, named the encoded column)."""
    at = _beyond(A, dtype)
    if at is not None:
        raise ValueError(f"{name} row {at[0]}: {A[at].item()!r} ({column(at[1])}) is beyond"
                         f" what {np.dtype(dtype).name} holds")


_ANSWERS = " the precision in which this model answers predict in y's units"


def check_in_range(Y, dtype, name="y"):
    """Targets ``Y`` (float64) that a model of ``dtype`` answers in their own
    units (target scaling) must fit ``dtype``: beyond it the scaled training
    went well and every prediction was an infinity."""
    at = _beyond(Y, dtype)
    if at is not None:
        raise ValueError(f"{name} row {at[0]}: {Y[at].item()!r} is beyond what"
                         f" {np.dtype(dtype).name} holds,{_ANSWERS}; use a float64 model, or"
                         " rescale y")


def check_answer_range(mean, scale, dtype):
    """Target scaling that a model of ``dtype`` can answer in: every answer
    ``out * scale + mean`` near the mean is beyond a float32 that cannot hold
    the mean (or the scale): set_target_scaling(1e39, 1) predicted infinities."""
    for name, values in (("mean", mean), ("scale", scale)):
        if _beyond(values, dtype) is not None:
            raise ValueError(f"target {name} {float(np.abs(values).max()):g} is beyond what"
                             f" {np.dtype(dtype).name} holds,{_ANSWERS}: every answer would be"
                             " infinite; use a float64 model, or rescale y")


def standardise(A, mean, scale, dtype, name="X", column=_column):
    """``(A - mean) / scale`` computed in float64, stored in ``dtype``
    (C-contiguous, new), a block of rows at a time: no float64 copy of the
    whole array. A (finite) value that the scaling takes beyond ``dtype``'s
    range is a ValueError naming it: the network would get an infinity."""
    out = empty_rows(A.shape, dtype)
    tmp = np.empty((min(BLOCK_ROWS, A.shape[0]),) + A.shape[1:], dtype=np.float64)
    for i in range(0, A.shape[0], BLOCK_ROWS):
        part = tmp[:min(BLOCK_ROWS, A.shape[0] - i)]
        block = out[i:i + BLOCK_ROWS]
        with np.errstate(over="ignore"):  # named below
            np.subtract(A[i:i + BLOCK_ROWS], mean, out=part)
            part /= scale
            block[...] = part
        if not np.isfinite(block).all():
            r, *j = (int(k) for k in np.argwhere(~np.isfinite(block))[0])
            where = (i + r, *j)
            col = j[0] if j else 0
            raise ValueError(
                f"{name} row {i + r}: {A[where].item()!r} ({column(col)}) is {part[(r, *j)]:.4g}"
                f" after the model's scaling ((value - mean) / scale, mean {mean[col]:.6g},"
                f" scale {scale[col]:.6g}), beyond what {np.dtype(dtype).name} holds")
    return out


def unstandardise(out, mean, scale):
    """``out * scale + mean`` computed in float64, stored back into ``out``
    (its own dtype), a block of rows at a time: the answers in the targets'
    units without a float64 copy of the whole array (115 MiB peak for 24 MiB
    of float32 answers, before)."""
    tmp = np.empty((min(BLOCK_ROWS, out.shape[0]),) + out.shape[1:], dtype=np.float64)
    for i in range(0, out.shape[0], BLOCK_ROWS):
        part = tmp[:min(BLOCK_ROWS, out.shape[0] - i)]
        np.multiply(out[i:i + BLOCK_ROWS], scale, out=part)
        part += mean
        out[i:i + BLOCK_ROWS] = part
    return out


def n_classes(output, n_out):
    """How many labels a model of this output and width has, or None."""
    if output == "softmax":
        return n_out
    if output == "sigmoid" and n_out == 1:
        return 2
    return None


def check_classes(classes, output, n_out, name="classes_"):
    """Class labels as a read-only 1-D array, one per class, all distinct."""
    if classes is None:
        return None
    want = n_classes(output, n_out)
    if want is None:
        raise ValueError(f"{name} applies to a softmax output or a single sigmoid output; this"
                         f" network's output is {output!r} with {n_out} units")
    if isinstance(classes, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of labels; got the string {classes!r}")
    arr = _label_array(classes, name)
    if arr.ndim != 1 or arr.shape[0] != want:
        raise ValueError(f"{name} must list {want} labels, one per class"
                         f" ({'sizes[-1]' if output == 'softmax' else 'a sigmoid output: 0 and 1'});"
                         f" got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} must hold finite labels; got {arr.tolist()}")
    if len(np.unique(arr)) != len(arr):
        raise ValueError(f"{name} must hold distinct labels; got {arr.tolist()}")
    return frozen(arr)


def _one_of_each_kind(flat, text):
    """The first text label and the first other one, for a mixed-labels error."""
    i = text.index(True) if True in text else 0
    k = text.index(False) if False in text else 0
    return f"{flat[i]!r} and {flat[k]!r}" if text[i] != text[k] else repr(list(flat[:5]))


def _label_array(values, name):
    if _is_sparse(values):   # (it said "labels of one kind", naming the matrix)
        raise TypeError(f"{name} must be a dense array; got a scipy.sparse {values.format}"
                        " matrix (sparse inputs are taken as X only)")
    flat = None   # (a list's values as Python objects)
    if not isinstance(values, np.ndarray):
        # A list of text and numbers reads as text (["a", 1] is ['a', '1']):
        # refuse the mix as an object array would be refused below.
        try:
            objects = np.asarray(values, dtype=object)
            flat = objects.ravel()
        except (TypeError, ValueError, RuntimeError):
            flat = ()
        text = [isinstance(v, (str, bytes)) for v in flat]
        if any(text) and not all(text):
            raise TypeError(f"{name} must hold labels of one kind (all text or all numbers);"
                            f" got {_one_of_each_kind(flat, text)}")
        if len(flat) and all(text) and len({type(v) for v in flat}) > 1:
            values = objects   # str and bytes: the bytes decoded below, as UTF-8
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError, RuntimeError) as exc:   # (torch's, for a tensor requiring grad)
        raise ValueError(f"{name} could not be read as an array of labels: {exc}") from None
    if arr.dtype.kind == "T":   # NumPy 2's StringDType: its str cells as text (an NA named below)
        arr = arr.astype(object)
    if flat is not None and arr.dtype.kind in "US" and len(flat) == arr.size:
        check_nul_kept(flat, arr, f"{name} holds the label")   # a list's text
    if arr.dtype.kind in "fO" and arr.size:
        # Integers NumPy read as float64 (a list of -1 and 2**63 + 1) or kept
        # as objects (beyond int64, or a pandas object column): as float64 a
        # label of 2**53 or more became another, or two labels one.
        flat = arr.ravel() if arr.dtype.kind == "O" else flat
        if flat is not None and len(flat) == arr.size and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
                for v in flat):
            arr = _integer_labels(flat, name).reshape(arr.shape)
    if arr.dtype.kind == "S":
        arr = _decoded(arr, name)
    elif arr.dtype.kind == "O":
        flat = arr.ravel()
        if all(isinstance(v, str) for v in flat):
            arr = arr.astype(str)
            check_nul_kept(flat, arr, f"{name} holds the label")
        elif all(isinstance(v, bytes) for v in flat):
            raw = arr.astype("S")
            check_nul_kept(flat, raw, f"{name} holds the label")
            arr = _decoded(raw, name)  # as an array of bytes (dtype S) reads
        elif all(isinstance(v, (str, bytes)) for v in flat):   # both: the bytes decoded
            check_nul_kept(flat, np.array([v if isinstance(v, str) else v.decode("latin-1")
                                           for v in flat.tolist()]), f"{name} holds the label")
            arr = np.array([v if isinstance(v, str) else str(_decoded(np.array([v]), name)[0])
                            for v in flat.tolist()]).reshape(arr.shape)
        else:
            text = [isinstance(v, (str, bytes)) for v in flat]
            try:
                if any(text):
                    raise TypeError
                arr = arr.astype(np.float64)
            except (TypeError, ValueError, OverflowError):
                raise TypeError(f"{name} must hold labels of one kind (all text or all numbers);"
                                f" got {_one_of_each_kind(flat, text)}") from None
    if arr.dtype.kind not in LABEL_KINDS:
        raise TypeError(f"{name} must hold text or numeric labels; got dtype {arr.dtype}")
    return arr


def check_nul_kept(values, text, what, where=None):
    """Refuse text ``values`` (Python str or bytes, in order) that their
    NumPy text array ``text`` lost a trailing NUL of: NumPy drops them, so
    'a\\x00' became the label 'a'. ``what`` begins the message, ``where(i)``
    (optional) follows the value. One pass in C over the lengths; the value
    is looked for only when one was lost."""
    if int(np.char.str_len(text).sum()) == sum(map(len, values)):
        return
    i, bad = next((i, v) for i, v in enumerate(values) if v[-1:] in ("\x00", b"\x00"))
    shown = bytes(bad) if isinstance(bad, bytes) else "".join(bad)   # (np.str_'s repr drops it)
    raise ValueError(f"{what} {shown!r}{where(i) if where else ''}, which ends in a NUL byte"
                     " (\\x00), which fastbp's text arrays cannot keep")


def _integer_labels(flat, name):
    """Integer labels (Python or NumPy ints) exactly, as int64, or uint64
    where one is 2**63 or more and none is negative; else ValueError."""
    ints = [int(v) for v in flat]
    low, high = min(ints), max(ints)
    if -2 ** 63 <= low and high < 2 ** 63:
        return np.array(ints, dtype=np.int64)
    if 0 <= low and high < 2 ** 64:
        return np.array(ints, dtype=np.uint64)
    if low < -2 ** 63 or high >= 2 ** 64:
        big = low if low < -2 ** 63 else high
        raise ValueError(f"{name} holds the integer label {big}, beyond what int64 and uint64"
                         " hold: give such labels as text (str)")
    raise ValueError(f"{name} holds the integer labels {low} and {high}, which no one integer"
                     " dtype holds (int64 and uint64 each hold one): give such labels as text"
                     " (str)")


def _decoded(arr, name):
    """Bytes labels (dtype S) as text, decoded as UTF-8: classes_ and predict
    then hold str. (NumPy's astype(str) decodes ASCII only: a UnicodeDecodeError
    that named no argument.)"""
    try:
        return np.char.decode(arr, "utf-8")
    except UnicodeDecodeError:
        bad = next(v for v in arr.ravel().tolist() if not _utf8(v))
        raise ValueError(f"{name} holds bytes labels, read as UTF-8 text, and {bad!r} is not"
                         " UTF-8; decode them to str first") from None


def _utf8(value):
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def is_text(y):
    """Whether y holds text labels: str or bytes, in a text or object array."""
    try:
        arr = np.asarray(y)
    except UnicodeDecodeError:   # (a list of str and of bytes NumPy decodes as ASCII)
        arr = np.asarray(y, dtype=object)
    except (TypeError, ValueError, RuntimeError):   # (unreadable: the label reader says so)
        return False
    if arr.dtype.kind == "O":
        return arr.size > 0 and all(isinstance(v, (str, bytes)) for v in arr.ravel())
    return arr.dtype.kind in "UST"   # (T: NumPy 2's StringDType; an NA cell is named as labels are)


def learn_classes(y, output, n_out, name="y"):
    """The sorted distinct labels of text labels ``y`` (as ``np.unique``), checked
    against the number of classes the network has."""
    labels = _label_array(y, name)
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D class labels; got shape {labels.shape}")
    classes = np.unique(labels)
    want = n_classes(output, n_out)
    if len(classes) != want:
        raise ValueError(f"{name} holds {len(classes)} distinct labels {classes[:10].tolist()}, but"
                         f" the network has {want} classes; set net.classes_ to the full list of"
                         f" {want} labels before fitting, or size the output layer to the labels")
    return check_classes(classes, output, n_out)


def label_indices(y, classes, name="y"):
    """The index in ``classes`` of every label of ``y``, an int64 array (n,);
    a label that is not a class is a ValueError naming it."""
    if isinstance(y, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of labels; got the string {y!r}")
    labels = _label_array(y, name)
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D class labels; got shape {labels.shape}")
    order = np.argsort(classes, kind="stable")
    ranked = classes[order]
    if (labels.dtype.kind == "U") != (ranked.dtype.kind == "U"):
        found = np.zeros(len(labels), dtype=bool)  # text against numbers: nothing matches
        pos = np.zeros(len(labels), dtype=np.int64)
    else:
        fits, exact = True, labels
        if labels.dtype.kind + ranked.dtype.kind in ("iu", "ui"):
            # int64 against uint64: NumPy searches and compares them in float64
            # (2**62 + 1 found 2**62); in the classes' own type, exactly
            info = np.iinfo(ranked.dtype)
            fits = (labels >= int(info.min)) & (labels <= int(info.max))
            exact = np.where(fits, labels, 0).astype(ranked.dtype)
        elif labels.dtype.kind == "f" and ranked.dtype.kind in "iu":
            # a float label names an integer class only when it is that integer
            # exactly: compared in float64, 2.0**53 was the class 2**53 + 1
            info = np.iinfo(ranked.dtype)
            # (float16's range ends below int64's bounds; a long double is kept)
            wide = labels if labels.dtype.itemsize >= 8 else labels.astype(np.float64)
            with np.errstate(invalid="ignore"):
                fits = (np.isfinite(wide) & (wide == np.floor(wide))
                        & (wide >= float(info.min)) & (wide < float(info.max) + 1))
            exact = np.where(fits, wide, 0).astype(ranked.dtype)
        elif labels.dtype.kind in "iu" and ranked.dtype.kind == "f":
            # and an integer label a float class only when the class is that
            # integer exactly: 2**53 + 1 was the class 2.0**53
            info = np.iinfo(labels.dtype)
            with np.errstate(over="ignore", invalid="ignore"):   # (float16 classes)
                exact = labels.astype(ranked.dtype)
                wide = exact.astype(np.longdouble if ranked.dtype.itemsize > 8 else np.float64)
                inside = (wide >= float(info.min)) & (wide < float(info.max) + 1)
                fits = inside & (np.where(inside, wide, 0).astype(labels.dtype) == labels)
        pos = np.minimum(np.searchsorted(ranked, exact), len(ranked) - 1)
        found = (ranked[pos] == exact) & fits
    if not found.all():
        bad = labels[~found][0]
        # (classes_ may have been set by hand before any training: no "seen in training")
        raise ValueError(f"{name}: label {bad.item()!r} is not one of the model's classes_"
                         f" {classes[:20].tolist()}")
    return order[pos].astype(np.int64)


# --------------------------------------------------------------- categories
# A model with categories takes raw rows of ``n_columns`` columns; each text
# column j listed in ``categories`` becomes len(categories[j]) one-hot inputs
# in its place (the code of its k-th label at input start_j + k), every other
# column one input. A label not in the list is an all-zero code.
MAX_CATEGORIES = 1000  # per column, as the command line learns them


class Encoded:
    """Rows already encoded (one-hot codes in place of the text columns) by
    the model's categories: the command line builds them column by column
    from a file and hands them to the model, which skips its own encoding."""

    __slots__ = ("rows",)

    def __init__(self, rows):
        self.rows = rows


def check_categories(categories, n_in):
    """``{column: labels}`` -> a tuple of ``(column, read-only str array)``
    sorted by column, or None; every column index below the model's number
    of raw columns, every label list non-empty, text, and distinct."""
    if categories is None:
        return None
    if not isinstance(categories, dict):
        raise TypeError(f"categories must be a dict {{column index: [label, ...]}} or None; got"
                        f" {categories!r}")
    items = []
    for j, labels in categories.items():
        if isinstance(j, (bool, np.bool_)) or not isinstance(j, (int, np.integer)) or j < 0:
            raise TypeError(f"categories keys must be column indices (int >= 0); got {j!r}")
        if isinstance(labels, (str, bytes)):
            raise TypeError(f"categories[{j}] must be a list of labels; got the string {labels!r}")
        if not isinstance(labels, (list, tuple, np.ndarray)):
            # (a set's order, each label's input, changed with PYTHONHASHSEED)
            raise TypeError(f"categories[{j}] must be a list of labels in their inputs' order;"
                            f" got a {type(labels).__name__} (sorted(...) gives one)")
        given = list(labels)
        arr = np.asarray(given)
        if arr.dtype.kind == "U" and all(isinstance(v, str) for v in given):
            # (NumPy's text arrays drop it: 'red\x00' was stored as 'red')
            check_nul_kept(given, arr, f"categories[{j}] holds")
        # (["a", 1, True] read as the text ['a', '1', 'True'])
        if arr.ndim != 1 or arr.size == 0 or arr.dtype.kind != "U" \
                or not all(isinstance(v, str) for v in given):
            raise TypeError(f"categories[{j}] must be a non-empty list of text labels; got"
                            f" {list(labels)[:10]!r}")
        if len(np.unique(arr)) != len(arr):
            raise ValueError(f"categories[{j}] must hold distinct labels; got {arr.tolist()[:20]}")
        items.append((int(j), frozen(arr)))
    items.sort(key=lambda item: item[0])
    if not items:
        return None
    n_columns = n_in - sum(len(labels) - 1 for _, labels in items)
    if n_columns < 1 or items[-1][0] >= n_columns:
        raise ValueError(f"categories do not fit the network's {n_in} inputs: columns"
                         f" {[j for j, _ in items]} with {[len(l) for _, l in items]} labels"
                         f" leave {n_columns} raw columns")
    return tuple(items)


def n_columns(categories, n_in):
    """How many raw columns a model of ``n_in`` inputs takes."""
    return n_in if categories is None else n_in - sum(len(l) - 1 for _, l in categories)


def column_starts(categories, n_in):
    """The first network input of every raw column, int64 (n_columns,)."""
    widths = np.ones(n_columns(categories, n_in), dtype=np.int64)
    for j, labels in categories or ():
        widths[j] = len(labels)
    return np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(np.int64)


def input_column(categories, n_in):
    """``describe(i)``: network input i named by the raw row's column, as an
    error shows it ("column 2"; a one-hot code "column 1's code of 'red'")."""
    starts = column_starts(categories, n_in)
    labels = dict(categories or ())

    def describe(i):
        j = int(np.searchsorted(starts, i, side="right")) - 1
        if j in labels:
            return f"column {j}'s code of {str(labels[j][i - starts[j]])!r}"
        return f"column {j}"
    return describe


def code_mask(categories, n_in):
    """Which network inputs are one-hot codes, a bool array (n_in,)."""
    mask = np.zeros(n_in, dtype=bool)
    starts = column_starts(categories, n_in)
    for j, labels in categories or ():
        mask[starts[j]:starts[j] + len(labels)] = True
    return mask


def learn_categories(values, name="column"):
    """The sorted distinct labels of one text column (``np.unique``)."""
    labels = np.unique(np.asarray(values, dtype=str))
    if len(labels) > MAX_CATEGORIES:
        raise ValueError(f"{name} holds {len(labels)} distinct text values, more than the"
                         f" {MAX_CATEGORIES} categories a column may have (an identifier?)")
    return labels


def one_hot(out, start, values, labels):
    """Write the one-hot code of each text value into ``out[:, start:start +
    len(labels)]`` (already zero); return the values that are not labels."""
    order = np.argsort(labels, kind="stable")
    ranked = labels[order]
    pos = np.minimum(np.searchsorted(ranked, values), len(ranked) - 1)
    found = ranked[pos] == values
    rows = np.flatnonzero(found)
    out[rows, start + order[pos[rows]]] = 1
    return np.unique(values[~found]) if not found.all() else values[:0]


def unseen_message(unseen, name="X"):
    """One line for every text value not seen in training, by column."""
    parts = [f"column {j}: {vals[:5].tolist()}" + (f" and {len(vals) - 5} more" if len(vals) > 5 else "")
             for j, vals in unseen]
    return (f"{name} holds text values not seen in training, encoded as all-zero codes ("
            + "; ".join(parts) + ")")


# ------------------------------------------------------- numbers as text
# Text is a number to fastbp in plain ASCII decimal notation: an optional
# sign, digits with an optional point (``1``, ``-2.5``, ``.5``, ``1.``), an
# optional exponent (``1e-3``, ``2E+05``), optionally with ASCII whitespace
# (``SPACE``) around it; also ``nan``, ``inf`` and ``infinity`` in any case,
# which the callers then refuse as not finite. That is what Python's
# ``float()`` (and NumPy's ``astype(np.float64)`` alike) reads in text that
# is ASCII without ``_``; beyond that ``float()`` reads digit
# separators (``1_0`` is 10), other scripts' digits (``١``, ``１`` are 1)
# and Unicode spaces (a no-break space), where the C library's strtod, as
# ONNX Runtime's Cast reads text in the graph a model exports, stops at
# ``_`` (``1_0`` is 1) and refuses the rest. So fastbp refuses those
# characters before it converts: the same row never reads as two numbers.
SPACE = " \t\n\r\v\f"  # Python's float() and strtod (C locale) skip exactly these
_UNDERSCORE = ord("_")


def is_number(text):
    """Whether fastbp reads the text (a ``str``) as a number (see above)."""
    if not text.isascii() or "_" in text:
        return False
    try:
        float(text)
    except ValueError:
        return False
    return True


def odd_text(values):
    """Which cells of a 1-D array hold text that ``float()`` may read but
    fastbp does not (a non-ASCII character or ``_``), a bool array; None when
    no cell does. Dtype U and S in NumPy (no Python object per cell: a scan
    of the characters, then of the rows only when one is odd); dtype O cell
    by cell (text cells only: numbers are not text)."""
    if values.dtype.kind in "US":
        n = values.shape[0]
        if n == 0 or values.dtype.itemsize == 0:
            return None
        unit = np.uint32 if values.dtype.kind == "U" else np.uint8
        codes = np.ascontiguousarray(values).view(unit).reshape(n, -1)
        if codes.max() < 128 and not (codes == _UNDERSCORE).any():
            return None
        return ((codes >= 128) | (codes == _UNDERSCORE)).any(axis=1)
    if values.dtype.kind == "O":
        cells = values.tolist()
        kinds = set(map(type, cells))
        if not any(issubclass(k, (str, bytes)) for k in kinds):
            return None  # numbers only
        if kinds == {str}:  # text only: one look at all of it
            joined = "".join(cells)
            if joined.isascii() and "_" not in joined:
                return None
        odd = [(not v.isascii() or "_" in v) if isinstance(v, str) else
               (not v.isascii() or b"_" in v) if isinstance(v, bytes) else False
               for v in cells]
        return np.array(odd, dtype=bool) if any(odd) else None
    return None


def _cell(value):
    """A cell as Python holds it ('1_0', not np.str_('1_0')), to show."""
    return value.item() if isinstance(value, np.generic) else value


def _reads(value):
    """Whether float() takes the cell (to name the first that it does not)."""
    try:
        float(value)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def text_to_numbers(values):
    """A text array (dtype U, S or O) read as float64, fastbp's way: a
    ValueError where a cell is not a number (see above)."""
    odd = odd_text(values)
    if odd is not None:
        i = int(np.argmax(odd))
        raise ValueError(f"could not convert {_cell(values[i])!r} to a number (row {i})")
    return values.astype(np.float64)


def check_column_names(X, features, name="X"):
    """A table X (a pandas or polars DataFrame, a pyarrow Table: anything not
    an ndarray with ``column_names`` or ``columns``) given to a model that
    keeps the names of its features (``features``, the command line's
    ``metadata["features"]``): a ValueError where a column named as one of
    the features stands at another feature's position (the rows are taken by
    position, so reordered columns would feed each input another column's
    values). Names are compared as the command line reads a header (stripped
    of surrounding white space); columns named otherwise (names of another
    source, or none) are taken by position, as before. Any other X, or a model
    without names, passes."""
    if (isinstance(X, np.ndarray) or not isinstance(features, (list, tuple))
            or not features or not all(isinstance(f, str) for f in features)):
        return
    try:
        columns = getattr(X, "column_names", None)   # (a pyarrow Table's columns are arrays)
        columns = list(X.columns if columns is None else columns)
    except Exception:  # (no columns, or not a sequence)
        return
    where = {f: i for i, f in reversed(list(enumerate(features)))}   # (a name's first input)
    for j, column in enumerate(columns):
        i = where.get(column.strip() if isinstance(column, str) else None)
        if i is not None and i != j and not (j < len(features) and features[j] == features[i]):
            raise ValueError(f"{name}'s columns hold the model's features at other positions"
                             f" ({name}'s column {j}, {column!r}, is the model's input {i}); pass"
                             f" {name}[net.metadata['features']] (the model's order:"
                             f" {list(features[:20])})")


def encode_rows(X, categories, n_in, name="X"):
    """Raw rows -> the network's inputs, float64 (n, n_in): numbers as they
    are, text columns one-hot; ``(inputs, unseen)`` with unseen a list of
    (column, values not seen in training)."""
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be a 2-D array of rows; got a {type(X).__name__}")
    if _is_sparse(X):   # (np.asarray made a 0-d object array: "got shape ()")
        raise TypeError(f"{name} is a scipy.sparse {X.format} matrix; this model reads raw rows"
                        f" with text in its category columns {[j for j, _ in categories]}:"
                        " give them as a dense (object) array or a list of rows")
    try:
        # Rows in a list keep each cell's own type, as in an object array:
        # np.asarray of a list mixing text and numbers makes every cell text
        # (True became 'True', refused; np.float32(0.1) became '0.1', float64).
        arr = np.array(X, dtype=object) if isinstance(X, (list, tuple)) else np.asarray(X)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    width = n_columns(categories, n_in)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise ValueError(f"{name} must be 2-D (n_samples, {width}): raw rows of {width} columns,"
                         f" text in the category columns {[j for j, _ in categories]}; got shape"
                         f" {arr.shape}")
    if arr.shape[0] == 0:  # (here: the shape the caller gave, not the encoded one)
        raise ValueError(f"{name} is empty (shape {arr.shape}); need at least one sample")
    out = np.zeros((arr.shape[0], n_in), dtype=np.float64)
    starts = column_starts(categories, n_in)
    text = dict(categories)
    unseen = []
    for j in range(width):
        column = arr[:, j]
        if column.dtype.kind == "T":   # NumPy 2's StringDType: its str cells (its NA object kept)
            column = column.astype(object)
        if j in text:
            if column.dtype.kind == "O" and not all(isinstance(v, str) for v in column):
                i = next(i for i, v in enumerate(column) if not isinstance(v, str))
                raise TypeError(f"{name} column {j} is a category column and must hold text;"
                                f" found {_cell(column[i])!r} at index ({i}, {j}) (row {i})")
            if column.dtype.kind not in "UO":
                raise TypeError(f"{name} column {j} is a category column and must hold text;"
                                f" got dtype {column.dtype}")
            cells = column.astype(str)
            if column.dtype.kind == "O":   # (a str array cannot hold one: NumPy drops it)
                # ('red\x00' took the code of 'red', where the ONNX graph's is all zeros)
                check_nul_kept(column, cells, f"{name} column {j} holds",
                               lambda i: f" at index ({i}, {j}) (row {i})")
            new = one_hot(out, starts[j], cells, text[j])
            if new.size:
                unseen.append((j, new))
            continue
        if column.dtype.kind == "O":
            # Numbers (as _as_array takes them) or text numbers (below); a
            # timedelta64, datetime64, complex or Decimal cell was read as a
            # number here (5 days as 5.0) where a model without categories
            # names it.
            odd = {t for t in set(map(type, column))
                   if not (issubclass(t, (str, bytes)) or _number_type(t))}
            if odd:
                i = next(i for i, v in enumerate(column) if type(v) in odd)
                raise TypeError(f"{name} column {j} must hold numbers (it is not a category"
                                f" column); got {column[i]!r} at index ({i}, {j})"
                                f" (row {i})")
        elif column.dtype.kind not in "biufUS":
            raise TypeError(f"{name} column {j} must hold numbers (it is not a category column);"
                            f" got dtype {column.dtype}")
        odd = odd_text(column)  # 1_0, a digit of another script: not read as float() reads it
        if odd is not None:
            i = int(np.argmax(odd))
            raise TypeError(f"{name} column {j} must hold numbers (it is not a category column);"
                            f" got {_cell(column[i])!r} at index ({i}, {j}) (row {i}): text"
                            " numbers are plain ASCII decimals (1.5, -2e-3), as the ONNX export"
                            " reads them")
        try:
            values = column.astype(np.float64)
        except (TypeError, ValueError, OverflowError):
            i = next((i for i, v in enumerate(column.tolist()) if not _reads(v)), None)
            got = (f"{column[:3].tolist()}" if i is None else
                   f"{_cell(column[i])!r} at index ({i}, {j}) (row {i})")
            raise TypeError(f"{name} column {j} must hold numbers (it is not a category column);"
                            f" got {got}") from None
        finite = np.isfinite(values)
        if not finite.all():  # named by the raw row's column, not the encoded input's
            i = int(np.argmin(finite))
            raise ValueError(f"{name} must be finite; found {column[i]!r} at index ({i}, {j})"
                             f" (row {i})")
        out[:, starts[j]] = values
    return out, unseen
