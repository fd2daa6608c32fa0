"""The ``fastbp`` command line: train, predict, evaluate, info, export.

    fastbp train                                  # the built-in digits, 64-64-32-10
    fastbp train data.csv --target label --hidden 64,32 --activation relu \\
        --epochs 30 --batch-size 32 --lr 0.001 --optimizer adam --out model.npz
    fastbp predict model.npz new.csv [--out predictions.csv]
    fastbp evaluate model.npz test.csv
    fastbp info model.npz
    fastbp info                                   # CPU, BLAS kernel, where the kernels are cached
    fastbp predict model.npz new.csv --proba      # class probabilities, a column per class
    fastbp export model.npz model.onnx            # ONNX, for ONNX Runtime (fastbp[onnx])
    fastbp --version                              # with NumPy's, Numba's and the BLAS's

DATA is a CSV file with a header row or a Parquet file (``--target`` names
the target column, default the last one; ``--features a,b,...`` or ``--drop
id,...`` choose the feature columns), an NPY file (a 2-D array, memory-mapped,
columns x0, x1, ...), an NPZ file with arrays ``X`` (columns x0, x1, ..., which
``--features`` and ``--drop`` choose from too) and ``y`` (``--target`` names
another array for y), or a built-in data set name (``digits``). CSV and
Parquet are read by pyarrow when it is installed (``pip install
"fastbp[arrow]"``), else CSV by Python's csv module. A feature column holds
numbers, or text in every row: text columns are one-hot categories learnt by
``train`` (``net.categories``). Features are standardised with the training split's mean and standard
deviation; class labels may be any values (numbers or strings); both are
part of the model (``net.categories``, ``net.input_mean``,
``net.input_scale``, ``net.classes_``), so ``predict`` here and ``fastbp.load(...).predict`` in
Python take the same raw rows and give the same labels. A missing value
(a blank cell, ``nan``, ``NA``, ...) is an error naming the file, the line
and the column.
"""
import argparse
import collections
import csv
import functools
import io
import json
import math
import os
import re
import sys
import time

import numpy as np

from . import _preprocess
from ._reader import (DROP_HINT, DROP_HINT_CSV, MISSING, PARQUET, ArrayTable,  # noqa: F401
                      CLIError, check_numpy_file, check_regular, folder_message, have_arrow,
                      missing_error, read_table, sparse_npz)

BUILTIN = ("digits",)
# A numeric target with at most this many distinct integer values is taken
# as class labels, unless --task says otherwise.
MAX_CLASSES = 50
# A text column with a different value in each of at least this many rows
# is an identifier, not categories.
MIN_ID_ROWS = 20
# The dtype numbers are read in (see cmd_train).
READ_DTYPE = np.dtype(np.float64)
# The size of the rows (bytes) from which `train` splits them in place.
IN_PLACE_FROM = 64 << 20


# ------------------------------------------------------------------ reading
class Data:
    """What a data source gives a command: X (network inputs of ``dtype``,
    text columns already one-hot, or a scipy.sparse matrix), y (a numeric or
    str array, or None), the raw feature column names, the target name and
    the categories ({raw column index: labels} or None)."""

    def __init__(self, X, y, features, target, categories=None, unseen=()):
        self.X, self.y, self.features, self.target = X, y, features, target
        self.categories, self.unseen = categories, list(unseen)

    def __iter__(self):  # X, y, features, target, as load_data returned before
        return iter((self.X, self.y, self.features, self.target))


def _names(text, option):
    names = [n.strip() for n in text.split(",")] if text else []
    if text is not None and (not names or not all(names)):
        raise CLIError(f"{option} must be comma-separated column names such as a,b; got {text!r}")
    twice = sorted(n for n, k in collections.Counter(names).items() if k > 1)
    if twice:   # (--features x0,x0 fed one column twice; a header's name twice is refused too)
        raise CLIError(f"{option} names {twice} more than once; name each column once")
    return names


def _choose(table, target, need_target, features=None, drop=None):
    """The target column's name (or None) and the feature columns' names."""
    header = table.names
    name = header[-1] if target is None else target
    if name not in header:
        if need_target or target is None:
            raise CLIError(f"--target {name!r} is not a column of {table.path}; its columns are"
                           f" {header}")
        name = None
    return name, _select(table, name, features, drop)


def _select(table, target, features=None, drop=None):
    """The feature columns' names: ``features`` (default: every column of
    ``table`` but the ``target`` column, if any) less ``drop``, each name
    checked to be a column. The one place --features and --drop are applied,
    to a CSV, Parquet, NPY or NPZ file's columns."""
    header, columns = table.names, set(table.names)   # (sets: a file of 20,000 columns)
    for option, chosen in (("--features", features), ("--drop", drop)):
        unknown = [c for c in chosen or () if c not in columns]
        if unknown:
            raise CLIError(f"{option} names {unknown} that are not columns of {table.path}; its"
                           f" columns are {header}")
    if target is not None and target in (drop or ()):
        # (it did nothing: the target is never a feature)
        raise CLIError(f"--drop names the target column {target!r}, which is never a feature;"
                       " to train on another column, name it with --target")
    if features:
        if target is not None and target in features:
            raise CLIError(f"--features lists the target column {target!r}; the target cannot"
                           " also be a feature")
        before = list(features)
    else:
        before = [h for h in header if h != target]
    dropped = set(drop or ())
    chosen = [c for c in before if c not in dropped]
    if not chosen:
        if before:  # --drop took them all (--features a --drop a: not the target's doing)
            raise CLIError(f"{table.path} has no feature columns left after --drop"
                           f" {','.join(drop)}")
        if target is None:
            raise CLIError(f"{table.path} has no feature columns")
        raise CLIError(f"{table.path} has no feature columns besides the target {target!r}")
    return chosen


def _assemble(table, features, categories, dtype, learn):
    """The network inputs (n, width) of ``dtype``, one column at a time into
    one preallocated C-contiguous array: numbers converted once, text
    columns one-hot. ``learn``: text columns become categories (learnt here,
    sorted); otherwise ``categories`` ({raw index: labels}) says which are
    text. Returns ``X, categories, unseen``."""
    if learn:
        kinds = [table.kind(f) for f in features]
        categories = {}
        for j, f in enumerate(features):
            if kinds[j] == "text":
                values = table.text(f)
                try:
                    categories[j] = _preprocess.learn_categories(values, f"column {f!r}")
                except ValueError as exc:
                    raise CLIError(f"{table.path}: {exc}; leave it out with --drop {f}") from None
                if len(categories[j]) == len(values) >= MIN_ID_ROWS:
                    raise CLIError(f"{table.path}: column {f!r} holds a different text value in"
                                   f" every row (an identifier?), no use as categories; leave it"
                                   f" out with --drop {f}, or choose the features with --features")
    categories = categories or {}
    if not categories and hasattr(table, "whole") and list(features) == table.names:
        return table.whole(), None, []  # an .npy file's rows, used where they are
    block = getattr(table, "block", None)
    if not categories and block is not None and list(table.block_names) == list(features):
        for f in features:  # checked where they are: the rows are already in place
            table.numbers(f)
        return block, None, []
    widths = [len(categories[j]) if j in categories else 1 for j in range(len(features))]
    starts = np.concatenate([[0], np.cumsum(widths)[:-1]]).astype(int)
    alloc = np.zeros if categories else np.empty
    X = alloc((table.n_rows, int(sum(widths))), dtype=dtype)
    unseen = []
    for j, f in enumerate(features):
        if j in categories:
            new = _preprocess.one_hot(X, starts[j], table.text(f), np.asarray(categories[j]))
            if new.size:
                unseen.append((f, new))
        else:
            X[:, starts[j]] = table.numbers(f)
    return X, ({j: list(map(str, v)) for j, v in categories.items()} or None), unseen


def _stream(table, features, others, categories, dtype, text_others=()):
    """Read a streamed CSV now that its columns are chosen: the numeric
    features straight into the model's dtype (``text_others``, among
    ``others``: read as text, the cells as written). A file the streaming
    reader cannot convert is read again whole, as text, for the checks to
    word. A Parquet file: its chosen columns, in one read."""
    from ._reader import ParquetTable, Reread, StreamedCSV, read_csv
    if isinstance(table, ParquetTable):   # its chosen columns, in one read
        table.load(list(features) + list(others))
        return table
    if not isinstance(table, StreamedCSV):
        return table
    text = set(categories or ())
    block = [f for j, f in enumerate(features) if j not in text and table.numeric(f)]
    numbers = set(block)
    try:
        table.load(block, [f for f in features if f not in numbers] + others, dtype,
                   [f for j, f in enumerate(features) if j in text] + list(text_others))
    except Reread:
        return read_csv(table.path, streamed=False)
    return table


_INTEGER = re.compile(r"[+-]?[0-9]+")


class _Inexact(np.ndarray):
    """A CSV's target read as float64 that holds integers of 2**53 or more it
    could not read exact (:func:`_exact_integers`): numbers for a regression,
    refused as class labels (two of them may have merged into one)."""


def _exact_integers(table, name, numbers):
    """A CSV's target of integers, some of 2**53 or more, which float64 (as
    which CSV numbers are read) cannot all tell apart (...993 read as ...992:
    two classes merged): the column as int64, from its cells as written,
    where every cell is an integer within int64 (:func:`_text_as_classes`:
    ``7.0`` and ``1e17`` are integers); else ``numbers``, marked
    :class:`_Inexact` where it holds such integers."""
    if not table.csv_file or numbers.dtype.kind != "f" or not numbers.size:
        return numbers
    big = (np.abs(numbers) >= 2.0 ** 53) & (numbers == np.round(numbers))
    if not big.any():
        return numbers
    from ._reader import PythonCSV, read_csv
    text = table if isinstance(table, PythonCSV) else read_csv(table.path, streamed=False)
    cells = text._raw(text.index(name))
    if cells.dtype.kind != "U" or len(cells) != len(numbers):
        return numbers.view(_Inexact)
    exact, bad = _text_as_classes(cells, np.int64)
    if bad is None:
        return exact
    written = [int(c) if _INTEGER.fullmatch(c) else None for c in cells.tolist()]
    # Some cells are not integers (0.5: read as written): only an integer
    # cell that float64 changed makes the column inexact.
    if any(v is not None and v != int(x) for v, x in zip(written, numbers.tolist())):
        return numbers.view(_Inexact)
    return numbers


def _text_as_classes(values, dtype):
    """Number text labels (``is_number`` cells) in integer classes' ``dtype``,
    each read exact (as a Decimal: '9007199254740993' and
    '9007199254740993.0' are 2**53 + 1, which float64 reads as 2**53), and
    None; or None and the index of the first cell that is no integer of
    ``dtype`` (so no class). (Decimal keeps an exponent as written: '1e99999999'
    is refused at once, where a Fraction computed 10**99999999.)"""
    from decimal import Decimal, InvalidOperation
    info = np.iinfo(dtype)
    low, high = Decimal(int(info.min)), Decimal(int(info.max))
    uniques, at = np.unique(values, return_inverse=True)   # (labels: few distinct cells)
    out = np.zeros(len(uniques), dtype=dtype)
    for k, cell in enumerate(uniques.tolist()):
        try:
            v = Decimal(cell.strip())
            whole = v.is_finite() and low <= v <= high and v == v.to_integral_value()
        except (InvalidOperation, ValueError):
            whole = False
        if not whole:
            return None, int(np.argmax(at.reshape(-1) == k))
        out[k] = int(v)
    return out[at.reshape(values.shape)], None


def _exact_labels(y, path, name):
    """Refuse class labels :func:`_exact_integers` could not read exact."""
    if isinstance(y, _Inexact):
        raise CLIError(f"{path}: the label column {name!r} holds integers of 2**53 or more that"
                       " float64, as which a CSV's numbers are read, cannot all tell apart, and"
                       " not every cell is an integer within int64 (-2**63 to 2**63 - 1), which"
                       " fastbp reads exact: write each label so, or as text, or give the file"
                       " as Parquet or NPZ, which keep the labels' own type")


def _target(table, name, need_target, as_text=False):
    """The target column: numbers, or text labels; ``as_text``: its cells as
    written (a model with text classes compares labels as text: the cell
    ``1`` is the label '1', not the number 1.0)."""
    if name is None or not need_target:  # '' (an empty header cell) is a name
        return None
    try:
        if as_text:
            return table.text(name)
        raw = table._raw(table.index(name))
    except CLIError as exc:   # (its hint, --drop, is refused for the target)
        message = str(exc).replace(DROP_HINT_CSV, "").replace(DROP_HINT + name, "")
        raise CLIError(f"{message}; it is the target column") from None
    if raw.dtype.kind in "biuf":
        return _exact_integers(table, name, np.asarray(table.numbers(name)))
    text = table.text(name)
    if table.holds_text(name):  # a Parquet string column: text labels, as written ('007' is not '7')
        return text
    try:  # numbers written as text (Python's reader): numbers, as pyarrow reads them
        numbers = _preprocess.text_to_numbers(text)
    except ValueError:  # text labels (1_0 and ١ among them: text, not numbers)
        return text
    finite = np.isfinite(numbers)
    if not finite.all():   # a number past float64 (1e400): as Table.numbers words it
        i = int(np.argmin(finite))
        raise missing_error(table.path, name, str(text[i]), i, table._lines)
    return _exact_integers(table, name, numbers)


def _by_position(table, width, target, need_target):
    """The feature columns and the target of a file read for a model that
    keeps no feature names (one saved from Python), by position: a file of
    ``width`` columns (the model's raw columns) is all features; one of
    ``width + 1`` holds the target too, the column named as the model's
    target if there is one, else the last. Other widths are refused, as is
    a file without a target column when one is needed."""
    names, n = table.names, len(table.names)
    if target not in names:
        target = names[-1]
    if n == width + 1:
        return [c for c in names if c != target], target
    if n == width and not need_target:
        return list(names), None
    wanted = (f"{width + 1} (its {width} input columns in order, then the target)" if need_target
              else f"{width} (its input columns in order) or {width + 1} (with the target"
                   f" last)")
    raise CLIError(f"{table.path} has {n} columns; the model, saved without the names of its"
                   f" feature columns, reads {wanted}")


def load_data(source, target=None, need_target=True, feature_names=None, categories=None,
              dtype=np.float64, features=None, drop=None, learn=True, width=None,
              text_target=False):
    """The :class:`Data` of a CSV, Parquet, NPZ, NPY file or a built-in name.

    ``feature_names`` (with the model's ``categories``): read those columns
    by name, as a model was trained on them. ``width`` (for a model without
    feature names: its raw column count): read the columns by position
    (:func:`_by_position`). Otherwise the features are ``features``
    (default: every column but the target) less ``drop``, and their text
    columns become categories when ``learn``. y is None when
    ``need_target`` is False and the target is absent; ``text_target``:
    y is the target column's cells as written (a model's text classes).
    """
    if source in BUILTIN:
        from .datasets import load_digits
        X, y = load_digits()
        return Data(np.ascontiguousarray(X, dtype=dtype), y,
                    [f"pixel{i}" for i in range(X.shape[1])], "digit")
    if not os.path.exists(source):
        raise CLIError(f"no such file: {source} (and not a built-in data set: {', '.join(BUILTIN)})")
    check_regular(source)
    if os.path.isdir(source) and not source.rstrip("/" + os.sep).lower().endswith(PARQUET):
        # (a Parquet data set written as a folder of parts reads as one table)
        raise CLIError(folder_message(source))
    if source.lower().endswith(".npz"):
        return _load_npz(source, target, need_target, dtype, features, drop, feature_names)
    table = read_table(source)
    if width is not None:
        feature_names, target = _by_position(table, width, target, need_target)
    if feature_names is not None:  # a model's columns, by name
        columns, model = set(table.names), set(feature_names)
        missing = [f for f in feature_names if f not in columns]
        if missing:
            raise CLIError(f"{source} lacks the model's feature column(s) {missing[:5]}")
        if target is None and need_target:
            # (a model saved from Python with feature names but no target's: its
            # y was None, and read as the text 'None', "holds 'N' (data row 1)")
            others = [c for c in table.names if c not in model]
            if len(others) != 1:
                raise CLIError(f"{source}: the model names its feature columns but not its"
                               f" target (its metadata has no 'target'), and the file has"
                               f" {len(others)} other columns {others[:5]}; give it one,"
                               f" or set net.metadata['target'] to its name and save again")
            target = others[0]
        name = target if target in table.names else None
        if target is not None and name is None and need_target:
            raise CLIError(f"{source} has no target column {target!r}; its columns are"
                           f" {table.names}")
        wanted = [name] if need_target and name is not None else []
        table = _stream(table, list(feature_names), wanted, categories, dtype,
                        wanted if text_target else ())
        X, cats, unseen = _assemble(table, list(feature_names), categories, dtype, learn=False)
        return Data(X, _target(table, name, need_target, text_target), list(feature_names),
                    target, cats, unseen)
    name, chosen = _choose(table, target, need_target, features, drop)
    table = _stream(table, chosen, [name] if need_target and name is not None else [],
                    categories, dtype)
    X, cats, unseen = _assemble(table, chosen, categories, dtype, learn=learn)
    return Data(X, _target(table, name, need_target), chosen, name, cats, unseen)


def _npz_columns(path, X, features, drop, feature_names):
    """The names and indices of the columns of an NPZ file's X that the
    command reads. They are named x0, x1, ... as an .npy file's columns
    (:class:`ArrayTable`'s names), and chosen as those are: by ``features``
    and ``drop`` (:func:`_select`; the target is an array of its own), or by
    a model's ``feature_names`` when X has every one of them (else X's
    columns in their order, for a model trained on other names)."""
    table = ArrayTable(path, X)  # the names only: nothing of X is read here
    if feature_names is None:
        chosen = _select(table, None, features, drop)
    elif set(feature_names) <= set(table.names):
        chosen = list(feature_names)
    else:
        chosen = table.names
    return chosen, [table.index(c) for c in chosen]


def _check_target_range(Y, dtype, path, what, target, model=" a float64 model"):
    """Refuse a target (float64) beyond what a model of ``dtype`` answers in,
    naming the file's row (the model's check names y's 0-based index)."""
    Y = Y.reshape(len(Y), -1)
    at = _preprocess._beyond(Y, dtype)
    if at is not None:
        raise CLIError(f"{path}: the target {what} {target!r} holds {Y[at].item()!r} at data"
                       f" row {at[0] + 1}, beyond what {dtype} holds, the precision in"
                       f" which the model answers; use{model}, or rescale the target")


def _read_as(X, dtype, path, columns):
    """Finite X (an NPZ's) as ``dtype``, C-contiguous; a value that ``dtype``
    cannot hold (a long double's 1e400) is an error naming its row and column:
    the infinity it became was found after the split, in a shuffled row."""
    at = _preprocess._beyond(X, dtype) if X.dtype.kind == "f" else None
    if at is not None:
        i, k = at
        j = columns[k]
        raise CLIError(f"{path}: X holds {str(X[i, k])} at row {i + 1}, column {j + 1}"
                       f" (x{j}), beyond what {np.dtype(dtype).name} holds, in which fastbp"
                       " reads numbers")
    return np.ascontiguousarray(X, dtype=dtype)


def _load_npz(path, target, need_target, dtype, features=None, drop=None, feature_names=None):
    check_numpy_file(path, "NPZ")
    sparse = sparse_npz(path)
    if sparse is not None:  # X alone: scipy.sparse.save_npz holds one matrix
        if need_target:
            raise CLIError(f"{path} holds X only (a scipy.sparse matrix), no targets; train and"
                           " evaluate need them")
        if sparse.dtype.kind not in "biuf":
            raise CLIError(f"{path}: X must hold numbers; got a sparse matrix of {sparse.dtype}")
        from ._validate import _as_csr
        try:   # (its indices checked before SciPy's own conversion reads them unchecked)
            sparse = _as_csr(sparse, "X")
        except (ValueError, TypeError) as exc:
            raise CLIError(f"{path}: {exc}") from None
        names, columns = _npz_columns(path, sparse, features, drop, feature_names)
        if columns != list(range(sparse.shape[1])):
            sparse = sparse.tocsc()[:, columns].tocsr()
        return Data(sparse, None, names, target)
    name = "y" if target is None else target
    if name == "X" and need_target:   # (X read as its own target: a model of y = y)
        raise CLIError(f"{path}: --target X names the features' array; the target is another"
                       " array of the archive (y by default), never among the features")
    # Only X and the target are read: another array of the archive (Python
    # objects, which fastbp never unpickles, or something else) is not.
    try:
        with np.load(path, allow_pickle=False) as f:
            files = sorted(f.files)
            arrays = {k: _npz_member(f, k, path) for k in ("X", name)
                      if k in files and (k == "X" or need_target)}
    except CLIError:
        raise
    except Exception as exc:
        raise CLIError(f"cannot read {path} as NPZ: {exc}") from None
    if "X" not in arrays:
        raise CLIError(f"{path} needs an array named 'X'; it has {files}")
    X = arrays["X"]
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise CLIError(f"{path}: X must be a 2-D numeric array; got {X.dtype}{X.shape}")
    if X.shape[0] == 0:
        raise CLIError(f"{path} has no data rows (X has shape {X.shape})")
    names, columns = _npz_columns(path, X, features, drop, feature_names)
    if columns != list(range(X.shape[1])):
        X = X[:, columns]
    finite = np.isfinite(X)
    if not finite.all():
        i, k = (int(k) for k in np.argwhere(~finite)[0])
        j = columns[k]  # the column's place in the file
        raise CLIError(f"{path}: X holds {X[i, k]} at row {i + 1}, column {j + 1} (x{j}); fastbp"
                       " does not fill in missing values: complete or drop that row")
    X = _read_as(X, dtype, path, columns)
    y = arrays.get(name) if need_target else None
    if y is None and need_target:
        raise CLIError(f"{path} has no target array {name!r}; it has {files}")
    if y is not None and y.dtype.kind not in "biufUS":
        raise CLIError(f"{path}: the target {name!r} must hold numbers or text labels; got"
                       f" dtype {y.dtype}")
    if y is not None and y.dtype.kind == "S":   # bytes labels: text, as UTF-8 (the API's reading)
        try:
            y = _preprocess._decoded(y, name)
        except ValueError as exc:
            raise CLIError(f"{path}: {exc}") from None
    if y is not None:
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise CLIError(f"{path}: the target {name!r} must be 1-D, one value per row of X;"
                           f" got shape {y.shape}")
        if len(y) != len(X):
            raise CLIError(f"{path}: the target {name!r} has {len(y)} values; X has {len(X)} rows")
    if y is not None and y.dtype.kind in "US":
        from ._reader import check_text
        # text labels as every reader gives cells: ASCII whitespace around them
        # left out (' a' was a class of its own here, 'a' in a Parquet file)
        y = np.char.strip(y.astype(str), _preprocess.SPACE)
        check_text(y.ravel(), name, path, None)
    if y is not None and y.dtype.kind == "f" and not np.isfinite(y).all():
        where = tuple(int(k) for k in np.argwhere(~np.isfinite(y))[0])
        raise CLIError(f"{path}: {name} holds {y[where]} at row {where[0] + 1}; fastbp does not fill"
                       " in missing values: complete or drop that row")
    where = _preprocess._beyond(y, np.float64) if y is not None and y.dtype.kind == "f" else None
    if where is not None:   # (a long double: inf, then a shuffled row)
        raise CLIError(f"{path}: {name} holds {str(y[where])} at row {where[0] + 1}, beyond"
                       " what float64 holds, in which fastbp reads numbers")
    return Data(X, y, names, name)


def _npz_member(archive, key, path):
    """One array of an open NPZ archive, checked to be one (NumPy hands a
    member that is no .npy file back as its bytes)."""
    try:
        value = archive[key]
    except Exception as exc:
        raise CLIError(f"cannot read {path} as NPZ: its array {key!r}: {exc}") from None
    if not isinstance(value, np.ndarray):
        raise CLIError(f"cannot read {path} as NPZ: its member {key!r} is not a .npy array")
    return value


def _dense(X, source, net=None):
    """X itself; for a scipy.sparse X (the model takes one), the clear error
    of a model that standardises its inputs, which would make it dense (the
    one place that decides it)."""
    sparse = sys.modules.get("scipy.sparse")  # not imported: X cannot be sparse
    if sparse is None or not sparse.issparse(X):
        return X
    if net is not None and net.input_mean is not None:
        raise CLIError(f"{source} holds a scipy.sparse matrix, but this model standardises its"
                       " inputs (as every model `fastbp train` writes does), which would make it"
                       " dense; predict it from Python with a model trained without input"
                       " scaling, or save a dense X with np.savez(path, X=X)")
    return X


# ---------------------------------------------------------------- the model
def _is_classification(y, task):
    """A text target is classes; numbers are when integers of at most
    MAX_CLASSES values. (A CSV's numbers written as text reach here as
    numbers, :func:`_target`; the text of a typed file, an NPZ's str array or
    a Parquet string column, stays text, as ``MLP.fit`` takes it.)"""
    if task != "auto":
        return task == "classification"
    values = np.asarray(y)
    if values.dtype.kind in "USO":
        return True
    return bool(np.all(values == np.round(values)) and len(np.unique(values)) <= MAX_CLASSES)


def _encode_labels(y):
    """Class indices and the sorted class list (numbers as numbers, text as
    strings, as written)."""
    values = np.asarray(y)
    if values.dtype.kind in "USO":
        classes, codes = np.unique(values.astype(str), return_inverse=True)
        return codes.astype(np.int64), [str(c) for c in classes]
    classes, codes = np.unique(values, return_inverse=True)
    classes = [int(c) if float(c).is_integer() else float(c) for c in classes]
    return codes.astype(np.int64), classes


def _first_text(values):
    """The index and text of the first cell of ``values`` (str) that is not a number, or None."""
    for i, v in enumerate(values.tolist()):
        if not _preprocess.is_number(v):
            return i, v
    return None


def _values(y, name, path, training=True):
    """A numeric target as float64 (a text one is an error naming the row;
    ``training``: with train's hint, --task)."""
    values = np.asarray(y)
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    values = values.astype(str)
    bad = _first_text(values)
    if bad is not None:
        i, v = bad
        raise CLIError(f"{path}: the target column {name!r} is not numeric (data row {i + 1}:"
                       f" {v!r}); a regression target holds numbers in every row"
                       + (" (for classes: --task classification)" if training else
                          " (this model predicts values: a regression)"))
    numbers = values.astype(np.float64)
    finite = np.isfinite(numbers)
    if not finite.all():   # number text past float64 (1e400) in a typed file's text column
        i = int(np.argmin(finite))
        raise missing_error(path, name, str(values[i]), i, None)
    return numbers


def _targets_for(net, y, path, name=None):
    """The target column (``name``: the one read) as the model takes it: text
    labels for text classes, numbers otherwise (the model maps labels and
    scales values itself)."""
    classes = net.classes_
    name = name if name is not None else _metadata(net).get("target", "y")
    if net.output != "identity":
        _exact_labels(y, path, name)
    if classes is not None and classes.dtype.kind == "U":
        return np.asarray(y).astype(str)
    values = np.asarray(y)

    def no_class(i, v):
        known = (_abbreviated(classes) if classes is not None else
                 "0 and 1" if net.output == "sigmoid" else f"0..{net.sizes[-1] - 1}")
        return CLIError(f"{path}: the target column {name!r} holds {v!r} (data row {i + 1}),"
                        f" which is not one of the model's classes {known}")

    if net.output != "identity" and values.dtype.kind not in "biuf":
        bad = _first_text(values.astype(str))
        if bad is not None:  # text among a classifier's number classes: no such class
            raise no_class(*bad)
    if classes is not None and classes.dtype.kind in "biu" and values.dtype.kind in "iu":
        return values  # (as read: exact past 2**53 too, uint64 past 2**63)
    if classes is not None and classes.dtype.kind in "iu" and values.dtype.kind == "U":
        # a typed file's number text, read exact (through float64, 2**53 + 1 was 2**53)
        exact, bad = _text_as_classes(values, classes.dtype)
        if bad is not None:
            raise no_class(bad, str(values.reshape(-1)[bad]))
        return exact
    values = _values(values, name, path, training=False)
    if classes is not None and classes.dtype.kind == "f" and classes.dtype != values.dtype:
        # float32 classes (a model made in Python): the label 0.1 as written,
        # read at the classes' precision, is the class predict prints as 0.1
        return values.astype(classes.dtype)
    if classes is not None and classes.dtype.kind in "biu" and np.all(np.abs(values) < 2**53) \
            and np.all(values == np.round(values)):
        return values.astype(np.int64)  # integer classes: a label 7 is named 7, not 7.0
    return values


def _widths(text):
    """--hidden's widths; an empty value (--hidden '') asks for no hidden layer."""
    if text is None or not text.strip():
        return []
    entries = [w.strip() for w in text.split(",")]
    if not all(entries):
        raise CLIError(f"--hidden must be comma-separated widths such as 64,32, without empty"
                       f" entries; got {text!r} (for no hidden layer: --hidden '')")
    try:
        widths = [int(w) for w in entries]
    except ValueError:
        raise CLIError(f"--hidden must be comma-separated widths such as 64,32; got {text!r}") from None
    if any(w < 1 for w in widths):
        raise CLIError(f"--hidden widths must be >= 1; got {text!r}")
    return widths


def _warn_unseen(data, source):
    """One line on stderr for the text values a model has not seen."""
    if data.unseen:
        print(f"fastbp: warning: {_preprocess.unseen_message(data.unseen, source)}", file=sys.stderr)


def _wrapped(net, X):
    """Rows the command line has encoded itself, marked so for the model."""
    return _preprocess.Encoded(X) if net.categories is not None else X


def _warm_numba():
    """Set Numba up in a thread of its own, started before the file is read:
    the first kernel of a process, compiled or loaded, first builds Numba's
    typing and target contexts (0.2-0.4 s, mostly imports), which then runs
    beside the reader (pyarrow's parser holds no lock Python needs) instead
    of after it."""
    import threading

    def work():
        try:
            from numba.core.compiler_lock import global_compiler_lock
            from numba.core.registry import cpu_target
            with global_compiler_lock:  # as a kernel's compile or load holds it
                cpu_target.typing_context.refresh()
                cpu_target.target_context.refresh()
        except Exception:  # noqa: BLE001 - the first kernel does it again, and says what failed
            pass
    thread = threading.Thread(target=work, name="fastbp-warm-numba", daemon=True)
    thread.start()
    return thread


class Interrupted(Exception):
    """Ctrl-C ended a command that kept its work (``train``'s completed
    epochs): printed as ``fastbp: ...``, exit status 130 (128 + SIGINT)."""


def _to_devnull(stream):
    """Point ``stream``'s file descriptor at the null device (a closed pipe's
    stdout: what Python still holds for it is flushed there at exit, not
    reported as another BrokenPipeError)."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (a test's capture)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


class _PipeGuard:
    """``sys.stdout`` while ``train`` runs: once the reader of a pipe has gone
    (``fastbp train ... --out m.npz | head``), the rest of the output is
    dropped and the command goes on to write its model. Standard output's
    descriptor then points at the null device, as Python's documentation
    advises for SIGPIPE (:func:`_to_devnull`)."""

    def __init__(self, stream):
        # (None: standard output closed when Python started, `>&-`: nothing
        # to write to, where print() writes nothing; it was an AttributeError)
        self.original = stream
        self.stream, self.gone = stream or open(os.devnull, "w"), stream is None

    def release(self):
        """The standard output it guarded (None too), its own null device closed."""
        if self.original is None:
            self.stream.close()
        return self.original

    def write(self, text):
        if not self.gone:
            try:
                return self.stream.write(text)
            except _Unencodable:
                # (a label its encoding cannot hold: the report goes on, that
                # text escaped, where the whole report went to the null device)
                encoding = self.stream.encoding
                return self.write(text.encode(encoding, "backslashreplace").decode(encoding))
            except OSError:   # a pipe's reader gone; a full disk (the run was lost)
                self._drop()
        return len(text)

    def flush(self):
        if not self.gone:
            try:
                self.stream.flush()
            except OSError:
                self._drop()

    def _drop(self):
        self.gone = True
        _to_devnull(self.stream)

    def __getattr__(self, name):  # isatty, encoding, fileno, closed, ...
        return getattr(self.stream, name)


class _OutputFailed(OSError):
    """A write to standard output failed, other than for a pipe's reader gone
    (a full disk): main says so, status 2 (it was a traceback, status 1)."""


class _Unencodable(_OutputFailed):
    """Text standard output's encoding cannot hold: an error where the output
    is the result (predict, evaluate, info), escaped in train's and export's
    reports (:class:`_PipeGuard`)."""


class _Output:
    """``sys.stdout`` while a command runs (:func:`main`): a failed write or
    flush raises :class:`_OutputFailed`, an OSError, so that train's and
    export's :class:`_PipeGuard` and predict's own handler still take it."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _OutputFailed(exc.errno, exc.strerror) from None
        except UnicodeEncodeError as exc:
            # A file name that is not UTF-8 (its bytes kept as surrogates,
            # as Python keeps them) goes out as those bytes, as the shell
            # showed it.
            try:
                raw = text.encode(self.stream.encoding, "surrogateescape")
                self.stream.flush()
                self.stream.buffer.write(raw)
                return len(text)
            except (UnicodeEncodeError, AttributeError):
                pass
            except BrokenPipeError:   # (| head: as any write's)
                raise
            except OSError as err:
                raise _OutputFailed(err.errno, err.strerror) from None
            # (a label its encoding cannot hold, PYTHONIOENCODING=ascii or a
            # non-UTF-8 locale: a ValueError, which ended main in a traceback)
            raise _Unencodable(None, f"its encoding ({exc.encoding}) cannot hold"
                                      f" {exc.object[exc.start:exc.end]!r}; set"
                                      f" PYTHONIOENCODING=utf-8") from None

    def flush(self):
        try:
            self.stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise _OutputFailed(exc.errno, exc.strerror) from None

    def __getattr__(self, name):  # isatty, encoding, fileno, closed, ...
        return getattr(self.stream, name)


def _guarded(command):
    """``command(args)`` with standard output under a :class:`_PipeGuard`:
    for train and export, whose result is a file, written whether or not
    their report can be."""
    def run(args):
        guard = _PipeGuard(sys.stdout)
        sys.stdout = guard
        try:
            return command(args)
        finally:
            sys.stdout = guard.release()   # (it set the null device it wrote to, left open)
    run.__name__ = run.__qualname__ = command.__name__.lstrip("_")
    return run


def cmd_train(args):
    return _guarded(_train)(args)


def _no_memory(sizes, exc, training=False):
    """The one-line error of a network, or its training, too large for memory."""
    why = str(exc).strip().splitlines()[0] if str(exc).strip() else "out of memory"
    return CLIError(f"cannot allocate memory for a network of sizes {sizes} ({why}); try smaller"
                    " --hidden widths" + (" or --batch-size" if training else ""))


def _train(args):
    import fastbp
    source = "digits" if args.data is None else args.data
    if args.seed < 0:
        raise CLIError(f"--seed must be an integer >= 0; got {args.seed}")
    _check_out(args.out, (("data", args.data),))
    features, drop = _names(args.features, "--features"), _names(args.drop, "--drop")
    if (features or drop or args.target is not None) and source in BUILTIN:
        raise CLIError(f"--target, --features and --drop choose columns of a CSV, Parquet, NPY or"
                       f" NPZ file; {source} is a built-in data set")
    if not 0 <= args.test_fraction < 1:
        raise CLIError(f"--test-fraction must be in [0, 1); got {args.test_fraction}")
    # The options by their names (the model's checks named batch_size, or
    # "rates ... for hidden layer 0" for the one --dropout), before any work
    if args.epochs < 0:
        raise CLIError(f"--epochs must be an integer >= 0; got {args.epochs}")
    if args.batch_size is not None and args.batch_size < 1:
        raise CLIError(f"--batch-size must be an integer >= 1; got {args.batch_size}")
    if args.lr is not None and not (math.isfinite(args.lr) and args.lr > 0):
        raise CLIError(f"--lr must be a number > 0; got {args.lr}")
    if not (math.isfinite(args.alpha) and args.alpha >= 0):
        raise CLIError(f"--alpha must be a number >= 0; got {args.alpha}")
    if not 0 <= args.dropout < 1:
        raise CLIError(f"--dropout must be a number in [0, 1); got {args.dropout}")
    from ._args import ACTIVATIONS
    from ._validate import check_choice
    from .optim import NAMES
    for option, value, names in (("--optimizer", args.optimizer, NAMES),
                                 ("--activation", args.activation, ACTIVATIONS)):
        try:
            check_choice(value, option, list(names))
        except ValueError as exc:
            raise CLIError(str(exc)) from None
    if args.batch_size is not None and str(args.optimizer).lower() == "lbfgs":
        # (ignored: L-BFGS's every step is the whole training set; --lr is refused too)
        raise CLIError("--batch-size: L-BFGS trains on all the training rows at each step;"
                       " leave it out")
    if args.lr is not None and str(args.optimizer).lower() == "lbfgs":
        raise CLIError("--lr: L-BFGS takes no learning rate (it searches along each step);"
                       " leave it out")
    if args.dropout and str(args.optimizer).lower() == "lbfgs":
        raise CLIError(f"--dropout {args.dropout}: L-BFGS's line search needs the same loss at"
                       " every evaluation, which dropout's random masks change; use a minibatch"
                       " optimizer (--optimizer adam) or leave --dropout out")
    hidden = _widths(args.hidden)
    if not hidden and args.dropout:
        raise CLIError(f"--dropout {args.dropout}: a network without hidden layers (--hidden '')"
                       " has no hidden units to drop; leave it out")
    # Numbers are read as float64, the precision in which the model scales
    # them: a float32 model's own copy is made once, by that scaling, and
    # the file gives the same answers as net.predict on its rows in Python.
    warm = _warm_numba()
    data = load_data(source, args.target, dtype=READ_DTYPE, features=features or None,
                     drop=drop)
    warm.join()
    X, y, target = _dense(data.X, source), data.y, data.target
    features, data_categories = data.features, data.categories
    what = "array" if source.lower().endswith(".npz") else "column"   # the target's
    classify = _is_classification(y, args.task)
    if args.class_weight != "none" and not classify:
        raise CLIError(f"--class-weight {args.class_weight} weighs the classes of a classification"
                       " target; this target is a regression one")
    if classify:
        _exact_labels(y, source, target)
        codes, classes = _encode_labels(y)
        if len(classes) < 2:
            raise CLIError(f"the target {target!r} has a single class {classes}; need two or more")
        Y = codes
    else:
        Y = _values(y, target, source)
        # (found after the split, it named a shuffled row)
        _check_target_range(Y, args.dtype, source, what, target, " --dtype float64")
    # Rows that fill IN_PLACE_FROM bytes or more are split in place when they
    # are the reader's own array (no second copy of a large file); smaller
    # ones, and any other array, are copied once by NumPy, which also spares
    # a first run on a small file compiling the in-place kernel.
    own = isinstance(X, np.ndarray) and not isinstance(X, np.memmap) \
        and X.flags.c_contiguous and X.flags.writeable and X.nbytes >= IN_PLACE_FROM
    try:
        X_train, X_test, y_train, y_test = fastbp.datasets.train_test_split(
            X, np.ascontiguousarray(Y), test_fraction=args.test_fraction, seed=args.seed,
            copy=not own)
    except ValueError as exc:  # a split that leaves no training row
        raise CLIError(f"{exc} (--test-fraction {args.test_fraction})") from None
    n_rows, n_inputs = X.shape
    del X, data
    if len(X_train) == 0:
        raise CLIError("no training rows left after the test split")
    sizes = [n_inputs] + hidden + [len(classes) if classify else 1]
    try:
        net = fastbp.MLP(sizes, activation=args.activation,
                         output="softmax" if classify else "identity", dtype=args.dtype,
                         seed=args.seed, alpha=args.alpha, dropout=args.dropout)
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from None
    except OverflowError as exc:  # a width past any C integer
        raise CLIError(f"cannot build a network of sizes {sizes}: {exc}; try smaller --hidden"
                       " widths") from None
    except MemoryError as exc:
        raise _no_memory(sizes, exc) from None
    # The categories, the scaling and the class labels are part of the
    # model: the net takes raw rows and labels from here on, here and
    # wherever the file is loaded.
    net.categories = data_categories
    X_train, X_test = _wrapped(net, X_train), _wrapped(net, X_test)
    if classify:
        try:
            net.classes_ = classes
        except ValueError as exc:
            if not all(isinstance(c, int) for c in classes):
                raise CLIError(f"{source}: the label {what} {target!r}: {exc}") from None
            # whole numbers past int64 or uint64 (1e20), or across both
            raise CLIError(f"{source}: the label {what} {target!r} holds the classes"
                           f" {_abbreviated(np.array(classes, dtype=object))}, which no one"
                           " integer type holds (int64: -2**63 to 2**63 - 1; uint64: 0 to"
                           " 2**64 - 1), as fastbp keeps whole-number labels; for a numeric"
                           " target, --task regression") from None
        y_train, y_test = net.classes_[y_train], net.classes_[y_test]

    def split_rows(part):   # the file's rows of the split's part (only to word an error)
        rows = np.arange(n_rows)
        train, test, _, _ = fastbp.datasets.train_test_split(
            rows, rows, test_fraction=args.test_fraction, seed=args.seed)
        return train if part == "train" else test

    def by_file_row(message):
        return _rows_named(message, source, target, what, features, split_rows)

    try:   # (a column whose mean overflows: a traceback, exit status 1)
        net.standardize(X_train) if classify else net.standardize(X_train, y_train)
    except ValueError as exc:
        raise CLIError(by_file_row(str(exc))
                       or f"{source}: {_named_columns(str(exc), net, features, target)}") from None
    net.metadata = {"task": "classification" if classify else "regression",
                    "source": os.path.basename(source), "target": target, "features": features}
    n_train, n_test = n_rows - len(y_test), len(y_test)
    validation = (X_test, y_test) if n_test else None
    print(f"{net}\n{net.metadata['task']} on {source}: {n_train} training rows, {n_test}"
          f" test rows, {len(features)} features" + (f", {len(classes)} classes" if classify else ""))
    compiled, t0 = fastbp._jit.compilations(), time.perf_counter()
    try:
        history = net.fit(X_train, y_train, epochs=args.epochs,
                          batch_size=32 if args.batch_size is None else args.batch_size,
                          lr=args.lr, optimizer=args.optimizer, seed=args.seed, verbose=args.verbose,
                          validation_data=validation,
                          class_weight=None if args.class_weight == "none" else args.class_weight)
    except fastbp.TrainingDivergedError as exc:
        raise CLIError(f"{exc}") from None
    except (ValueError, TypeError) as exc:   # (the test rows' checks: the file's row)
        raise CLIError(by_file_row(str(exc)) or str(exc)) from None
    except MemoryError as exc:  # the workspace of a batch of a very wide network
        raise _no_memory(sizes, exc, training=True) from None
    wall = time.perf_counter() - t0
    unit = "iteration" if isinstance(net.optimizer, fastbp.LBFGS) else "epoch"   # (history's rows)
    if history.epoch:
        # The rate of the epochs after the first, which compiled or loaded
        # the kernels (with 2 epochs the median of all was their mean).
        seconds = history["seconds"]
        median = float(np.median(seconds[1:] if len(seconds) > 1 else seconds))
        first = ("compiled fastbp's kernels" if fastbp._jit.compilations() > compiled
                 else "loaded the compiled kernels")
        later = " of the later" if len(seconds) > 1 else ""
        plural = "" if len(history) == 1 else "s"
        print(f"trained {len(history)} {unit}{plural} in {wall:.2f} s (the first {first});"
              f" median {unit}{later} {median * 1e3:.2f} ms ="
              f" {n_train / max(median, 1e-12):,.0f} samples/s")
        print(f"final training loss {history['loss'][-1]:.6g}")
    if validation is not None:
        _report(net, X_test, y_test, "test")
    if args.out:
        try:
            net.save(args.out)
        except OSError as exc:  # the message names the path or its folder
            raise CLIError(exc.strerror or str(exc)) from None
        print(f"model written to {args.out}")
    else:
        print("model not saved: add --out PATH (e.g. --out model.npz) to write it to a file")
    if history.interrupted:  # the completed epochs are kept (and saved), as fit keeps them
        raise Interrupted(f"interrupted: the model holds {len(history)} complete {unit}(s) of the"
                          f" {args.epochs} asked for"
                          + (f"; written to {args.out}" if args.out else "; not saved"))
    return net


def _report(net, X, y, label):
    """Print and return the metrics of raw rows X against targets y."""
    metrics = net.evaluate(X, y)
    if net.output == "identity":
        pred = net.predict(X).astype(np.float64)
        mse = float(np.mean((pred - np.asarray(y, dtype=np.float64).reshape(pred.shape)) ** 2))
        print(f"{label}: R^2 {metrics['r2']:.4f}, MSE {mse:.6g} (in the target's units),"
              f" loss {metrics['loss']:.6g}")
    else:
        print(f"{label}: accuracy {metrics['accuracy']:.4f}, loss {metrics['loss']:.6g}")
    return metrics


def _load_model(path):
    import fastbp
    if not os.path.exists(path):
        raise CLIError(f"no such model file: {path}")
    check_regular(path, "model")   # (a pipe: the load waited for ever)
    try:
        net = fastbp.load(path)
    except fastbp.ModelFileError as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:  # a folder, no permission
        raise CLIError(f"cannot read the model file {path}: {exc.strerror or exc}") from None
    return net


def _check_out(path, inputs=(), name="--out"):
    """Refuse an output path (the argument ``name``) whose folder does not
    exist, that is a folder, or that is one of the command's ``inputs``
    (``(what, path)`` pairs), before any work is done for it."""
    if path is None:
        return
    for what, given in inputs:   # (written over, the input was lost: a model by its export)
        try:
            same = given is not None and os.path.samefile(path, given)
        except OSError:   # (either missing: not one file)
            same = False
        if same:
            raise CLIError(f"cannot write {path}: it is the {what} this command reads ({given});"
                           " name another file")
    if not path:   # (an unset variable in a script: it was taken as no --out)
        raise CLIError(f"{name} needs a file name; got ''")
    if path.endswith(("/", os.sep)):   # (abspath drops the separator: caught only after the work)
        raise CLIError(f"cannot write {path}: it names a folder; name a file in it")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"cannot write {path}: no such folder {folder}")
    if os.path.isdir(path):
        raise CLIError(f"cannot write {path}: it is a folder")
    from ._modelfile import check_folder_takes_files, check_writable
    try:
        check_writable(path, "write")
        check_folder_takes_files(path, "write")   # (a read-only file system)
    except OSError as exc:
        raise CLIError(exc.strerror) from None


def _npz_target(path, name, need_target):
    """The targets' array in an NPZ given to a model: the one named as the
    column the model was trained on, else ``y`` (a model trained on a CSV's
    column 'digit' is scored on an NPZ of X and y); an error naming both
    when targets are needed and the file has neither."""
    check_regular(path)   # (a pipe: np.load waited for ever)
    try:
        with np.load(path, allow_pickle=False) as f:
            files = f.files
    except Exception:  # not an NPZ: _load_npz names the problem
        return name
    if name is None or name in files:
        return name
    if need_target and "y" not in files and "X" in files:
        also = "" if name == "y" else " or 'y'"
        raise CLIError(f"{path} has no target array {name!r} (the model's training column)"
                       f"{also}; it has {sorted(files)}")
    return "y"


def _metadata(net):
    """The model's metadata, where the command line keeps its column names:
    a dict, or {} for what a file of an older fastbp, whose save took any
    JSON value, may hold (a list: predict and info failed on it)."""
    meta = net.metadata
    return meta if isinstance(meta, dict) else {}


def _feature_names(net):
    """The model's feature column names where its metadata holds a list of
    names; None otherwise (metadata is the user's JSON: an int failed with a
    traceback, a str was read a character a column), the columns then read
    by position, as the NPZ branch, info and the Python API read them."""
    names = _metadata(net).get("features")
    return names if isinstance(names, list) and all(isinstance(n, str) for n in names) else None


def _model_input(net, source, need_target):
    """The model's inputs (encoded by its categories) and the targets of DATA."""
    meta = _metadata(net)
    names = _feature_names(net)
    # Text classes compare as the file writes them: the cell 1 is the label '1'.
    text_target = need_target and net.classes_ is not None and net.classes_.dtype.kind == "U"
    if source in BUILTIN:
        data = load_data(source, dtype=READ_DTYPE)
    elif source.lower().endswith((".npz", ".npy")) and net.categories is not None:
        # (an .npz's 6 numbers were taken as the one-hot codes, unchecked; an
        # .npy's numbers as text labels, all unseen)
        raise CLIError(f"{source}: an {source.lower()[-4:]} X holds numbers only, and this model"
                       f" reads text in its category columns {sorted(net.categories)} (of"
                       f" {net.n_columns} raw columns); give the rows as a CSV or Parquet file")
    elif source.lower().endswith(".npz"):  # X's columns x0, x1, ... by the model's names, if so named
        data = load_data(source, _npz_target(source, meta.get("target"), need_target),
                         need_target=need_target, dtype=READ_DTYPE, feature_names=names,
                         learn=False)
    elif names is None:  # saved from Python: the columns by position
        data = load_data(source, meta.get("target"), need_target=need_target, dtype=READ_DTYPE,
                         categories=net.categories, width=net.n_columns, learn=False,
                         text_target=text_target)
    else:
        data = load_data(source, meta.get("target"), need_target=need_target,
                         feature_names=names, categories=net.categories,
                         dtype=READ_DTYPE, text_target=text_target)
    X = _dense(data.X, source, net)
    if X.shape[1] != net.sizes[0]:
        raise CLIError(f"{source} has {X.shape[1]} feature columns; the model expects {net.sizes[0]}")
    _warn_unseen(data, source)
    # (the file's names of the raw inputs, in order: errors name its columns)
    features = [str(f) for f in data.features] if data.features is not None else None
    return _wrapped(net, X), data.y, data.target, features


def _raw_columns(net):
    """``raw(j)``: the data file's column of the model's input j (a one-hot
    code: its category column), or None where they are the same."""
    if net.categories is None:
        return None
    starts = _preprocess.column_starts(net._categories, net.sizes[0])
    return lambda j: int(np.searchsorted(starts, j, side="right")) - 1


def _answers(predict, X, source, features, raw=None):
    """``predict(X)``; the model's ValueError (a value past float32 after its
    scaling) as the command line's error, naming the file (it was a
    traceback, exit status 1) and its row and column as the file has them,
    as evaluate names them (not the model's 0-based row and input index)."""
    try:
        return predict(X)
    except ValueError as exc:
        named = _rows_named(str(exc), source, None, "column", features, raw=raw)
        raise CLIError(named or f"{source}: {exc}") from None


def _rows_named(message, source, target, what, features, rows=None, raw=None):
    """A model's error about "X row i" or "y row i" (``validation_data[0]``
    and ``[1]``: train's test rows) as the file's data row (1-based) and
    column name, or None for another error. ``rows(part)``: the file's rows
    (0-based) of the split's "train" or "test" rows; None: the file's order.
    ``raw(j)``: the file's column of the model's input j (:func:`_raw_columns`);
    None: the same index."""
    finite = re.match(r"X must be finite; found (\S+) at index \((\d+), (\d+)\) \(row \d+\)",
                      message)
    if finite is not None and rows is None:
        # (check_X's words for a value that is not finite, after a conversion
        # to float32 too: the model's 0-based row and input index)
        value, i, j = finite.group(1), int(finite.group(2)), int(finite.group(3))
        # (a model of one-hot categories: its input j is past their codes,
        # named "column 5 of the model's inputs" for the file's column 2)
        r = j if raw is None else raw(j)
        column = (repr(features[r]) if features and r < len(features)
                  else f"{j} of the model's inputs")
        return (f"{source}: data row {i + 1}: column {column} holds a value that is {value}"
                + message[finite.end():])
    m = re.match(r"(validation_data\[([01])\]|X|y) row (\d+): ", message)
    if m is None:
        return None
    name, k = m.group(1), int(m.group(3))
    part = "test" if name.startswith("validation_data") else "train"
    row = k if rows is None else int(rows(part)[k])
    rest = message[m.end():]
    if name in ("y", "validation_data[1]"):   # one target column
        return f"{source}: the target {what} {target!r} at data row {row + 1}: " + \
            rest.replace(" (column 0)", "", 1)
    j = re.search(r"\(column (\d+)\)", rest)   # (the raw column, one-hot ones mapped back)
    if j and features and int(j.group(1)) < len(features):
        rest = rest[:j.start()] + f"(column {features[int(j.group(1))]!r})" + rest[j.end():]
    return f"{source}: data row {row + 1}: {rest}"


def _named_columns(message, net, features, target):
    """A model's error about "X column j" or "y column j" with the file's
    column name beside the index (X's columns are the features in order,
    where the model has no one-hot categories)."""
    def name(match):
        what, j = match.group(1), int(match.group(2))
        names = [target] if what == "y" else (features if net.categories is None else None)
        return match.group(0) + (f" ({names[j]!r})" if names and j < len(names) else "")
    return re.sub(r"\b(X|y) column (\d+)", name, message, count=1)


def _formatted(values, dtype):
    """Predictions as text at the model's precision: a float32 value as the
    shortest repr that reads back to it (240.91656, not 240.91656494140625);
    with dtype None (class labels, values from the data) as they are, a
    float32 label too at its own precision (0.2, not 0.20000000298023224)."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        dtype = values.dtype if dtype is None else dtype
        return [[str(v) for v in row] for row in values.astype(dtype).reshape(len(values), -1)]
    return values.reshape(len(values), -1).tolist()


def _stdout_open(what, hint=""):
    """Refuse, before any work, a command whose result goes to a standard
    output closed when Python started (``>&-``): the result would be lost,
    as to a full disk, with status 0."""
    if sys.stdout is None:
        raise CLIError(f"cannot write {what} to standard output: it is closed{hint}")


def cmd_predict(args):
    _check_out(args.out, (("model", args.model), ("data", args.data)))
    if not args.out:
        _stdout_open("the predictions", "; --out FILE writes them to a file")
    net = _load_model(args.model)
    if args.proba and net.output == "identity":
        raise CLIError(f"--proba needs a classifier; {args.model} predicts values (identity output)")
    X, _, _, features = _model_input(net, args.data, need_target=False)
    if args.proba:
        proba = _answers(net.predict_proba, X, args.data, features, _raw_columns(net))
        classes = (list(net.classes_) if net.classes_ is not None   # (str: float32's shortest)
                   else list(range(2 if proba.shape[1] == 1 else proba.shape[1])))
        if proba.shape[1] == 1:  # one sigmoid unit: P(class 0), P(class 1)
            proba = np.hstack([1 - proba, proba])
        header, rows = [str(c) for c in classes], _formatted(proba, net.dtype)
    else:
        # the model maps raw rows to labels (printed as they are: a float
        # class 1.00000001 is not 1.0) or values (at the model's precision)
        predicted = np.asarray(_answers(net.predict, X, args.data, features,
                                        _raw_columns(net)))
        name = _metadata(net).get("target", "prediction")
        width = 1 if predicted.ndim == 1 else predicted.shape[1]
        header = [name] if width == 1 else [f"{name}_{j}" for j in range(width)]
        rows = _formatted(predicted, net.dtype if net.output == "identity" else None)
    if args.out:
        from ._modelfile import write_atomically

        def write(fh):
            text = io.TextIOWrapper(fh, encoding="utf-8", newline="")
            writer = csv.writer(text)
            writer.writerow(header)
            writer.writerows(rows)
            text.flush()
            text.detach()   # (the binary file stays open for write_atomically)
        try:
            write_atomically(args.out, write, "write the predictions", ".csv.tmp")
        except OSError as exc:  # the message names the path or its folder
            raise CLIError(exc.strerror or str(exc)) from None
        # (the file written: a report lost to a full disk is no error, as export's)
        _guarded(lambda _: print(f"{len(rows)} predictions written to {args.out}"))(args)
    elif sys.stdout is not None:  # the same CSV, quoted alike; a header only for --proba
        writer = csv.writer(sys.stdout, lineterminator="\n")   # (None: closed, `>&-`)
        try:
            if args.proba:
                writer.writerow(header)
            writer.writerows(rows)
            sys.stdout.flush()
        except BrokenPipeError:
            raise   # (main: the reader has gone, status 0)
        except OSError as exc:   # a full disk: a traceback, status 1
            raise CLIError(f"cannot write the predictions to standard output:"
                           f" {exc.strerror or exc}") from None
    return rows


def cmd_export(args):
    return _guarded(_export)(args)   # (the .onnx written: a report lost to a full disk is no error)


def _export(args):
    _check_out(args.out, (("model", args.model),), name="the ONNX file (out)")
    net = _load_model(args.model)
    if args.input_dtype is not None and net.categories is not None:
        raise CLIError(f"--input-dtype: {args.model} has text columns, so its graph takes the"
                       " raw rows as text (leave --input-dtype out)")
    try:
        net.to_onnx(args.out, opset=args.opset, input_dtype=args.input_dtype)
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    except OSError as exc:  # the message names the path or its folder
        raise CLIError(exc.strerror or str(exc)) from None
    except (ValueError, TypeError) as exc:
        raise CLIError(f"cannot export {args.model} to {args.out}: {exc}") from None
    x = (f"{net.sizes[0]} {args.input_dtype or net.dtype.name} columns"
         if net.categories is None else
         f"{net.n_columns} text columns, the raw rows as strings")
    print(f"ONNX model written to {args.out} (input X: {x};"
          f" outputs: {'values' if net.output == 'identity' else 'label, probabilities'})")


def version_text():
    """fastbp's version with those of Python, NumPy, Numba and the BLAS serving the kernels."""
    import platform

    import numba

    import fastbp
    from fastbp import _blas
    blas = f"BLAS: {_blas.LIBRARY}"
    try:
        # (threads' choice of library: with SciPy's BLAS, the first BLAS
        # threadpoolctl listed was NumPy's, SciPy's not loaded yet)
        from fastbp.threads import _blas_controller
        for lib in _blas_controller()[:1]:
            pool = lib.info()
            blas = (f"BLAS: {pool.get('internal_api')} {pool.get('version')}"
                    f" ({pool.get('threading_layer', 'unknown')} threading,"
                    f" {pool.get('num_threads')} threads, {pool.get('architecture')}),"
                    f" {pool.get('filepath')}")
    except ImportError:
        pass
    return (f"fastbp {fastbp.__version__}\nPython {platform.python_version()}, NumPy"
            f" {np.__version__}, Numba {numba.__version__}\n{blas}")


class _Version(argparse.Action):
    """--version, computed only when asked (it imports Numba and binds the BLAS)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="print fastbp's version and those of Python, NumPy, Numba and the BLAS"):
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        if sys.stdout is None:   # (closed: `>&-`)
            parser.exit(2, "fastbp: error: cannot write the version to standard output: it is"
                           " closed\n")
        print(version_text())
        parser.exit()


def cmd_evaluate(args):
    _stdout_open("the evaluation")
    net = _load_model(args.model)
    if net.output != "softmax" and net.sizes[-1] > 1:
        # (its k targets are k columns, which the files' one target column
        # cannot give: every layout was refused, each message asking for another)
        what = "labels" if net.output == "sigmoid" else "values"
        raise CLIError(f"{args.model} predicts {net.sizes[-1]} {what} a row; evaluate scores"
                       " models of one target column (a class or a value): score it in Python,"
                       " net.evaluate(X, Y) with Y of one column per output")
    X, y, target, features = _model_input(net, args.data, need_target=True)
    what = "array" if args.data.lower().endswith(".npz") else "column"
    try:
        targets = _targets_for(net, y, args.data, target)
        if net.output == "identity":   # (a CLIError: passes the handler below)
            _check_target_range(np.asarray(targets, dtype=np.float64), net.dtype.name,
                                args.data, what, target)
        return _report(net, X, targets, os.path.basename(args.data))
    except (ValueError, TypeError) as exc:
        message = str(exc)
        named = _rows_named(message, args.data, target, what, features,
                            raw=_raw_columns(net))
        if named is not None:
            raise CLIError(named) from None
        if target is not None and message.startswith("y: "):   # the API's name for the targets
            message = f"the target {what} {target!r}: {message[3:]}"
        raise CLIError(f"{args.data}: {message}") from None


def _abbreviated(values, shown=10, rounded=True):
    # (rounded: scaling statistics to 6 digits; class labels as the model
    # holds them, each float at its own dtype's precision as predict writes
    # it: the class 1.0000001 is not 1.0, a float32 0.1 not 0.10000000149)
    if not rounded and values.dtype.kind == "f":
        items = [str(v) for v in values]
    else:
        items = values.tolist()
        if rounded and items and isinstance(items[0], float):
            items = [float(f"{v:.6g}") for v in items]
        items = [repr(v) for v in items]
    if len(items) <= shown:
        return f"[{', '.join(items)}]"
    return f"[{', '.join(items[:shown])}, ... ({len(items)} in all)]"


def cmd_info(args):
    _stdout_open("the information")
    if args.model is None:
        return _cache_info()
    net = _load_model(args.model)
    # (not a dict: from a file of an older fastbp, shown as it is)
    meta = dict(_metadata(net)) or net.metadata
    features = None
    if isinstance(meta, dict) and isinstance(meta.get("features"), list) \
            and len(meta["features"]) > 10:
        # every name, in order, on a line of its own (an NPZ's X read by
        # position holds them in this order: review HBX, the metadata line
        # gave "<12 names>" only)
        features = meta["features"]
        meta["features"] = f"<{len(features)} names: see features above>"
    from .optim import LBFGS
    lines = [repr(net), f"parameters: {net.n_params} {net.dtype.name}",
             f"optimizer: {net.optimizer!r}", f"epochs trained: {len(net.history)}"
             + (" (an L-BFGS fit's are its iterations)" if isinstance(net.optimizer, LBFGS)
                else "")]
    if net.classes_ is not None:
        lines.append(f"classes: {_abbreviated(net.classes_, rounded=False)}")
    if net.categories is not None:
        names = _metadata(net).get("features")
        names = names if isinstance(names, list) else None
        lines.append("categories: " + "; ".join(
            f"{names[j] if names and j < len(names) else f'column {j}'}:"
            f" {_abbreviated(np.array(labels))}" for j, labels in net.categories.items()))
    if net.input_mean is not None:
        lines.append(f"input scaling: (x - mean) / scale; mean {_abbreviated(net.input_mean)},"
                     f" scale {_abbreviated(net.input_scale)}")
    if net.target_mean is not None:
        lines.append(f"target scaling: y = output * scale + mean; mean"
                     f" {_abbreviated(net.target_mean)}, scale {_abbreviated(net.target_scale)}")
    if net.schedule is not None:
        lines.append(f"schedule: {net.schedule!r}")
    if len(net.history):
        # Metrics the last fit did not compute are NaN in its row: not shown.
        last = {k: v[-1] for k, v in net.history.history.items() if v and not np.isnan(v[-1])}
        lines.append("last epoch: " + ", ".join(f"{k} {v:.6g}" for k, v in last.items()))
    if features is not None:
        lines.append(f"features ({len(features)}, in order): {json.dumps(features)}")
    if meta:
        lines.append("metadata: " + json.dumps(meta))
    print("\n".join(lines))
    return net


def _cache_info():
    """The machine as fastbp sees it (CPU, BLAS and its kernel, threads), where
    fastbp's compiled kernels are cached and whether that cache is warm."""
    import fastbp
    config = fastbp.show_config()
    cpu, blas, report = config["cpu"], config["blas"], config["numba"]["cache"]
    lines = [f"fastbp {config['fastbp']}, Numba {config['numba']['version']}",
             f"CPU: {cpu['name']} ({cpu['llvm_name']}); vector extensions:"
             f" {', '.join(cpu['extensions']) or 'none found'}",
             f"BLAS: {blas['library']}"]
    if blas["api"]:
        lines.append(f"BLAS kernel: {blas['architecture']} ({blas['api']} {blas['version']}),"
                     f" {blas['threads']} threads")
    if blas["environment"]:
        lines.append("BLAS environment: " + ", ".join(f"{k}={v}" for k, v in blas["environment"].items()))
    lines.append(f"kernel cache: {report['path'] or 'none'} ({report['where']})")
    if report["install_path"] is not None:
        fits = (f"unused: FASTBP_INSTALL_CACHE={os.environ.get('FASTBP_INSTALL_CACHE', '0')}"
                if report["install_fits"] is None else
                "built with this Python, Numba and NumPy" if report["install_fits"] else
                f"unused: {report['install_why']}")
        lines.append(f"install-time cache: {report['install_path']} ({fits})")
    if report["path"] is None and report["in_install"]:
        lines.append(f"warm: {report['in_install']} of fastbp's {report['kernels']} kernels load"
                     " from installation; with no cache folder, each process compiles the"
                     " others it needs")
    elif report["path"] is None:
        lines.append("cold: with no cache folder, each process compiles the kernels it needs")
    elif report["cached"]:
        lines.append(f"warm: {report['cached']} of fastbp's {report['kernels']} kernels have"
                     f" compiled code for this CPU ({report['in_path']} in the kernel cache,"
                     f" {report['in_install']} from installation)")
    else:
        lines.append("cold: no compiled code for this CPU yet; the first fit compiles the kernels"
                     " it needs (once: then they are cached)")
    lines.append("a cold fit compiles the model's predict and evaluate kernels in a helper process"
                 " when a CPU is idle" if report["compile_ahead"] else
                 "a cold fit compiles predict's kernels after it (no helper process: one usable"
                 " CPU, FASTBP_COMPILE_AHEAD=0, no cache folder, or sys.executable is not a"
                 " Python)")
    lines.extend(f"warning: {w}" for w in config["warnings"])
    print("\n".join(lines))
    return report


# ------------------------------------------------------------------- parser
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """argparse's default-showing help, less ``(default: None)``: an argument
    without a value by default says in its own words what happens then."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastbp", description="Train and use multilayer perceptrons (backpropagation on the CPU).",
        formatter_class=_HelpFormatter)
    parser.add_argument("--version", action=_Version)
    # Every subcommand's --help shows each argument's default.
    sub = parser.add_subparsers(dest="command", required=True,
                                parser_class=functools.partial(argparse.ArgumentParser,
                                                               formatter_class=_HelpFormatter))
    train = sub.add_parser("train", help="train a model and report its test metrics",
                           description="Train an MLP on DATA (default: the built-in digits).")
    train.add_argument("data", nargs="?", help="CSV, Parquet, NPY or NPZ (X, y) file, or 'digits'"
                       " (default)")
    train.add_argument("--target", help="target column (CSV, Parquet, NPY: default the last) or"
                       " array (NPZ; default y)")
    train.add_argument("--features", help="feature columns, comma-separated (default: all but the"
                       " target; an NPY or NPZ file's columns are x0, x1, ...); text columns"
                       " become one-hot categories")
    train.add_argument("--drop", help="columns to leave out, comma-separated (an ID column, ...)"
                       " (default: none)")
    train.add_argument("--task", type=str.lower, choices=["auto", "classification", "regression"], default="auto",
                       help="auto: a text target, or an integer one with at most 50 distinct"
                            " values, is classification")
    train.add_argument("--hidden", default="64,32", help="hidden widths, comma-separated ('' for"
                       " no hidden layer)")
    train.add_argument("--activation", default="relu", help="hidden activation")
    train.add_argument("--epochs", type=int, default=30, help="passes over the training rows")
    train.add_argument("--batch-size", type=int, default=None,
                       help="rows per minibatch (default 32; not with lbfgs, which takes all)")
    train.add_argument("--lr", type=float, default=None,
                       help="learning rate (default: the optimizer's, 0.01 for sgd, 0.001 for adam)")
    train.add_argument("--optimizer", default="adam", help="sgd, adam, adamw, rmsprop or lbfgs")
    train.add_argument("--alpha", type=float, default=0.0, help="L2 penalty (scikit-learn's alpha)")
    train.add_argument("--dropout", type=float, default=0.0, help="dropout rate on hidden layers")
    train.add_argument("--class-weight", type=str.lower, choices=["none", "balanced"], default="none",
                       help="classification: 'balanced' weighs each class by n_samples / (n_classes"
                            " * its count in the training rows), as scikit-learn's"
                            " class_weight='balanced'")
    train.add_argument("--dtype", type=str.lower, default="float32", choices=["float32", "float64"],
                       help="floating-point type of the model")
    train.add_argument("--test-fraction", type=float, default=0.2,
                       help="share of the rows held out for the test metrics")
    train.add_argument("--seed", type=int, default=0,
                       help="seeds the split, the initial weights and the shuffling")
    train.add_argument("--verbose", type=int, choices=[0, 1, 2], default=1,
                       help="0 no progress (the summary lines still print), 1 a progress"
                            " bar, 2 a line per epoch")
    train.add_argument("--out", help="write the trained model to this .npz file (default: not saved)")
    train.set_defaults(func=cmd_train)
    predict = sub.add_parser("predict", help="predict labels or values for DATA")
    predict.add_argument("model", help="a model file written by fastbp train --out")
    predict.add_argument("data", help="CSV, Parquet, NPY or NPZ file of rows to predict")
    predict.add_argument("--out", help="write a CSV here (default: print to standard output)")
    predict.add_argument("--proba", action="store_true",
                         help="class probabilities, one column per class (named by the classes)")
    predict.set_defaults(func=cmd_predict)
    export = sub.add_parser("export", help="write a model as ONNX, for ONNX Runtime",
                            description="Write MODEL as an ONNX file that takes the same raw rows"
                                        ' as predict (needs pip install "fastbp[onnx]").')
    export.add_argument("model", help="a model file written by fastbp train --out")
    export.add_argument("out", help="the .onnx file to write")
    export.add_argument("--opset", type=int, default=None, help="ONNX opset (default 18)")
    export.add_argument("--input-dtype", choices=("float32", "float64"), default=None,
                        help="the graph's input X (default: the model's dtype); float64 takes"
                             " the rows as fastbp predict reads them from a file, standardised"
                             " as they are (a float32 X is rounded first)")
    export.set_defaults(func=cmd_export)
    evaluate = sub.add_parser("evaluate", help="loss and accuracy or R^2 of a model on DATA")
    evaluate.add_argument("model", help="a model file written by fastbp train --out")
    evaluate.add_argument("data", help="CSV, Parquet, NPY or NPZ file with the target column")
    evaluate.set_defaults(func=cmd_evaluate)
    info = sub.add_parser("info", help="describe a model file; without one, the machine (CPU, BLAS kernel) and fastbp's kernel cache")
    info.add_argument("model", nargs="?",
                      help="a model file (default: describe the machine and fastbp's kernel cache instead)")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv=None):
    """Entry point of the ``fastbp`` console script; returns the exit status."""
    parser = build_parser()
    stdout = sys.stdout   # (None: closed when Python started, `>&-`)
    try:
        if stdout is not None:
            sys.stdout = _Output(stdout)
        try:
            args = parser.parse_args(argv)  # (--version and --help print here)
            args.func(args)
            if sys.stdout is not None:
                sys.stdout.flush()   # (a full disk found here, not at the exit's flush)
        finally:
            if isinstance(sys.stdout, _Output):
                sys.stdout = stdout
    except _OutputFailed as exc:   # evaluate, info, --version: the output was the result
        print(f"fastbp: error: cannot write to standard output: {exc.strerror}", file=sys.stderr)
        _to_devnull(stdout)   # (what is still buffered goes there at exit)
        return 2
    except CLIError as exc:
        print(f"fastbp: error: {exc}", file=sys.stderr)
        return 2
    except Interrupted as exc:
        print(f"fastbp: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # Ctrl-C outside fit (reading a file, say): nothing kept
        print("fastbp: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # fastbp predict ... | head: nothing is lost
        _to_devnull(sys.stdout)
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
