"""The command line's data files: CSV, Parquet, NPZ (dense or scipy.sparse),
NPY (memory-mapped), read as columns.

CSV and Parquet are read by pyarrow when it is installed (``pip install
"fastbp[arrow]"``): its readers parse in C++ over every core, so a numeric
column goes from the file to the model's input array with one conversion.
Without pyarrow, CSV is read by Python's ``csv`` module (the same answers
and messages, many times slower) and Parquet is refused with the hint.

A :class:`Table` hands out one column at a time, already checked: a numeric
column as a float or integer array, a text column as a ``str`` array of
stripped cells. A missing value (a blank cell, ``nan``, ``NA``, ..., a
Parquet null) or an infinity is one error naming the file, the column and the
row (and, for CSV, the line). Nothing here allocates a row at a time in
Python on the pyarrow path.
"""
import csv
import os

import numpy as np

# Cells that mean "no value" (compared in lower case), as pandas reads them.
MISSING = frozenset({"", "nan", "-nan", "+nan", "na", "n/a", "#n/a", "null", "<na>"})
INFINITE = frozenset({"inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"})
PARQUET = (".parquet", ".pq")
HINT = 'install pyarrow (pip install "fastbp[arrow]") to read CSV files many times faster'


class CLIError(Exception):
    """A user-facing error: printed as ``fastbp: error: ...``, exit status 2."""


def have_arrow():
    try:
        import pyarrow.csv  # noqa: F401
    except ImportError:
        return False
    return True


# ------------------------------------------------------------- messages
def where(i, lines):
    """Data row i (0-based) as a user finds it: the line in the file, and the row."""
    return f"line {lines[i]} (data row {i + 1})" if lines is not None else f"row {i + 1}"


def missing_error(path, name, value, i, lines):
    if value is None:  # a Parquet null
        what, shown = "a missing value", "(null)"
    else:
        what = "an infinite value" if value.lower() in INFINITE else "a missing value"
        shown = repr(value)
    return CLIError(f"{path}: {what} {shown} in column {name!r} at {where(i, lines)}; fastbp"
                    " does not fill in missing values: complete or drop that row")


def not_numeric(path, name, value, i):
    return CLIError(f"{path}: column {name!r} is not numeric (data row {i + 1}: {value!r}); a"
                    " feature column holds numbers in every row, or text in every row (categories);"
                    " leave a column out with --drop")


def _is_float(v):
    try:
        float(v)
        return True
    except ValueError:
        return False


def check_text(values, name, path, lines):
    """Refuse a missing value (blank, nan, NA, ...) or an infinity in a text column."""
    low = np.char.lower(np.unique(values))
    bad = np.isin(low, list(MISSING | INFINITE))
    if bad.any():
        cells = np.isin(np.char.lower(values), low[bad])
        i = int(np.argmax(cells))
        raise missing_error(path, name, str(values[i]), i, lines)


def text_kind(values, name, path, lines):
    """"number" if every cell of a text column reads as a number (after the
    missing-value check), "text" if none does; a mix is an error."""
    check_text(values, name, path, lines)
    uniques = np.unique(values)
    numeric = np.array([_is_float(v) for v in uniques.tolist()], dtype=bool)
    if numeric.all():
        return "number"
    if not numeric.any():
        return "text"
    cells = np.isin(values, uniques[~numeric])
    i = int(np.argmax(cells))
    raise not_numeric(path, name, str(values[i]), i)


# ---------------------------------------------------------------- tables
class Table:
    """Named columns of one file. Subclasses give ``_raw(j)``: a numeric
    array, or an array of stripped ``str`` cells."""

    path = ""
    names = ()
    n_rows = 0

    def _raw(self, j):
        raise NotImplementedError

    def _lines(self):
        return None

    def _cell(self, i, j):
        return None

    def index(self, name):
        try:
            return self.names.index(name)
        except ValueError:
            return None

    def kind(self, name):
        """"number" or "text" (checked: no missing value, no number/text mix)."""
        raw = self._raw(self.index(name))
        if raw.dtype.kind in "biuf":
            return "number"
        return text_kind(raw, name, self.path, self._lines())

    def numbers(self, name):
        """The column as a finite numeric array (float64, or ints, bools)."""
        j = self.index(name)
        raw = self._raw(j)
        if raw.dtype.kind not in "biuf":
            if text_kind(raw, name, self.path, self._lines()) == "text":
                i = 0
                raise not_numeric(self.path, name, str(raw[i]), i)
            raw = raw.astype(np.float64)
        if raw.dtype.kind == "f":
            finite = np.isfinite(raw)
            if not finite.all():
                i = int(np.argmin(finite))
                cell = self._cell(i, j)
                raise missing_error(self.path, name, str(raw[i]) if cell is None else cell, i,
                                    self._lines())
        return raw

    def text(self, name):
        """The column as stripped ``str`` cells, checked for missing values
        (numbers in it are read as their text, for a category column)."""
        raw = self._raw(self.index(name))
        if raw.dtype.kind in "biuf":
            return self.numbers(name).astype(str)
        check_text(raw, name, self.path, self._lines())
        return raw


class PythonCSV(Table):
    """Python's csv module: the reader when pyarrow is absent, and the one
    that words a malformed file's error (line numbers, field counts)."""

    def __init__(self, path):
        self.path = path
        try:
            with open(path, newline="", encoding="utf-8-sig") as fh:
                reader = csv.reader(fh)
                rows, lines = [], []
                for r in reader:
                    if r and any(c.strip() for c in r):
                        rows.append(r)
                        lines.append(reader.line_num)
        except FileNotFoundError:
            raise CLIError(f"no such file: {path}") from None
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise CLIError(f"cannot read {path} as CSV: {exc}") from None
        if len(rows) < 2:
            raise CLIError(f"{path} needs a header row and at least one data row")
        self.names = [h.strip() for h in rows[0]]
        for row, line in zip(rows[1:], lines[1:]):
            if len(row) != len(self.names):
                raise CLIError(f"{path}, line {line}: {len(row)} fields, but the header has"
                               f" {len(self.names)}")
        self._rows, self.lines, self.n_rows = rows[1:], lines[1:], len(rows) - 1
        self._columns = {}

    def _raw(self, j):
        if j not in self._columns:
            cells = np.array([row[j].strip() for row in self._rows], dtype=str)
            if cells.size == 0:
                cells = cells.astype("<U1")
            self._columns[j] = cells
        return self._columns[j]

    def _lines(self):
        return self.lines


class ArrowTable(Table):
    """A table read by pyarrow (CSV or Parquet): numeric columns come out as
    NumPy arrays without a Python loop."""

    def __init__(self, path, table, csv_file):
        self.path, self._table, self._csv = path, table, csv_file
        self.names = [str(n).strip() for n in table.column_names]
        self.n_rows = table.num_rows
        self._line_cache = None

    def _raw(self, j):
        return self._convert(self._table.column(j), j)

    def _convert(self, col, j):
        import pyarrow as pa
        t = col.type
        if pa.types.is_dictionary(t):
            col, t = col.cast(t.value_type), t.value_type
        if col.null_count:
            import pyarrow.compute as pc
            i = int(np.argmax(pc.is_null(col).to_numpy(zero_copy_only=False)))
            raise missing_error(self.path, self.names[j], None, i, self._lines())
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            return col.to_numpy()
        if pa.types.is_null(t):  # a column without any value
            raise missing_error(self.path, self.names[j], None, 0, self._lines())
        if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
            col = col.cast(pa.string())
        import pyarrow.compute as pc
        return np.asarray(pc.utf8_trim_whitespace(col).to_numpy(zero_copy_only=False), dtype=str)

    def _lines(self):
        """The line of every data row, found by reading the file again: only
        to word an error, so the fast path never pays for it."""
        if not self._csv:
            return None
        if getattr(self, "_line_cache", None) is None:
            self._line_cache = PythonCSV(self.path).lines
        return self._line_cache

    def _cell(self, i, j):
        if not self._csv:
            return None
        return str(PythonCSV(self.path)._raw(j)[i])



class StreamedCSV(ArrowTable):
    """A CSV file read by pyarrow's streaming reader, block by block (4 MiB
    of text at a time): the numeric feature columns go straight into one
    preallocated C-contiguous array of the model's dtype, the other columns
    it needs (text, the target) are kept as Arrow arrays. Memory: that
    array, those columns and one block; never a table of the whole file.

    ``load(block, others, dtype)`` reads the file; until then only the
    names are known. A block that does not convert as the first one did
    (a blank cell in a numeric column, ...) raises :class:`Reread`.
    """

    def __init__(self, path, reader):
        self.path, self._reader, self._csv = path, reader, True
        self.names = [str(n).strip() for n in reader.schema.names]
        self._types = list(reader.schema.types)
        self.block, self.block_names = None, []
        self._arrays = {}

    def numeric(self, name):
        """Whether the first block read the column as numbers."""
        import pyarrow as pa
        t = self._types[self.index(name)]
        return pa.types.is_integer(t) or pa.types.is_floating(t)

    def load(self, block_names, other_names, dtype):
        import pyarrow as pa
        size = os.path.getsize(self.path)
        cols = [self.index(n) for n in block_names]
        rest = sorted({self.index(n) for n in other_names} - set(cols))
        chunks = {j: [] for j in rest}
        X, n = None, 0
        try:
            for batch in self._reader:
                m = batch.num_rows
                if X is None:  # rows in the file, estimated from the first block
                    rows = int(size / BLOCK * m * 1.05) + m
                    X = np.empty((rows, len(cols)), dtype=dtype)
                if n + m > X.shape[0]:  # the estimate was short: grow (rare)
                    bigger = np.empty((2 * X.shape[0] + m, len(cols)), dtype=dtype)
                    bigger[:n] = X[:n]
                    X = bigger
                for k, j in enumerate(cols):
                    X[n:n + m, k] = batch.column(j).to_numpy()
                for j in rest:
                    chunks[j].append(batch.column(j))
                n += m
        except pa.ArrowInvalid:
            raise Reread from None
        if X is None or n == 0:
            raise CLIError(f"{self.path} needs a header row and at least one data row")
        self.n_rows = n
        self.block, self.block_names = X[:n], list(block_names)
        for j in rest:
            self._arrays[j] = pa.chunked_array(chunks[j], type=self._types[j])

    def _raw(self, j):
        name = self.names[j]
        if name in self.block_names:
            return self.block[:, self.block_names.index(name)]
        return self._convert(self._arrays[j], j)


class Reread(Exception):
    """The streaming reader met a block it cannot convert as the first."""


BLOCK = 4 << 20  # text per block: 2.0 s for a 1M x 28 CSV against 2.5 s with 1 MiB (2 cores)
SLOW = 10 << 20  # a CSV file above this size read without pyarrow gets the hint


def read_csv(path, streamed=True):
    if not have_arrow():
        if os.path.getsize(path) > SLOW:
            import sys
            print(f"fastbp: note: {HINT}", file=sys.stderr)
        return PythonCSV(path)
    import pyarrow as pa
    import pyarrow.csv as pcsv
    # No cell is taken for null: missing values are found and worded here.
    convert = pcsv.ConvertOptions(null_values=[], strings_can_be_null=False,
                                  quoted_strings_can_be_null=False)
    try:
        if streamed:
            return StreamedCSV(path, pcsv.open_csv(path, convert_options=convert,
                                                   read_options=pcsv.ReadOptions(block_size=BLOCK)))
        # Every column as text: the file the streaming reader could not
        # convert, read whole so that the checks find and name the cell.
        names = pcsv.open_csv(path).schema.names
        convert.column_types = {n: pa.string() for n in names}
        table = pcsv.read_csv(path, convert_options=convert)
    except FileNotFoundError:
        raise CLIError(f"no such file: {path}") from None
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return PythonCSV(path)  # a malformed file: Python's reader names the line
    except OSError as exc:
        raise CLIError(f"cannot read {path} as CSV: {exc}") from None
    if table.num_rows == 0:
        raise CLIError(f"{path} needs a header row and at least one data row")
    return ArrowTable(path, table, csv_file=True)


def read_parquet(path, columns=None):
    if not have_arrow():
        raise CLIError(f"reading Parquet ({path}) needs pyarrow: pip install \"fastbp[arrow]\"")
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        table = pq.read_table(path, columns=columns)
    except FileNotFoundError:
        raise CLIError(f"no such file: {path}") from None
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise CLIError(f"cannot read {path} as Parquet: {exc}") from None
    if table.num_rows == 0:
        raise CLIError(f"{path} has no data rows")
    return ArrowTable(path, table, csv_file=False)


class ArrayTable(Table):
    """A 2-D numeric array (an .npy file, memory-mapped) with columns x0, x1, ..."""

    def __init__(self, path, array):
        self.path, self.array = path, array
        self.names = [f"x{j}" for j in range(array.shape[1])]
        self.n_rows = array.shape[0]

    def whole(self):
        """The array itself (the memory map, not a copy), its finiteness
        checked a block of rows at a time."""
        step = max(1, (1 << 22) // max(1, self.array.shape[1]))
        for i in range(0, self.n_rows, step):
            block = self.array[i:i + step]
            if block.dtype.kind == "f" and not np.isfinite(block).all():
                r, j = (int(k) for k in np.argwhere(~np.isfinite(block))[0])
                raise missing_error(self.path, self.names[j], str(block[r, j]), i + r, None)
        return self.array

    def _raw(self, j):
        return self.array[:, j]


def read_npy(path):
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise CLIError(f"cannot read {path} as NPY: {exc}") from None
    if array.ndim != 2 or array.dtype.kind not in "biuf":
        raise CLIError(f"{path}: an .npy file must hold a 2-D numeric array; got"
                       f" {array.dtype}{array.shape}")
    if array.shape[0] == 0:
        raise CLIError(f"{path} has no data rows")
    return ArrayTable(path, array)


def sparse_npz(path):
    """The scipy.sparse matrix in ``path`` if ``scipy.sparse.save_npz`` wrote
    it, else None. The one place that recognises the format."""
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            fmt = f["format"].item() if "format" in keys else None
    except Exception:
        return None
    fmt = fmt.decode("ascii", "replace") if isinstance(fmt, bytes) else fmt
    if not {"data", "shape", "format"} <= keys or fmt not in ("csr", "csc", "coo", "bsr", "dia"):
        return None
    import scipy.sparse
    try:
        return scipy.sparse.load_npz(path)
    except Exception as exc:
        raise CLIError(f"cannot read {path} as a scipy.sparse matrix: {exc}") from None


def read_table(path, columns=None):
    """The Table of a CSV, Parquet or NPY file (by its name's ending)."""
    low = path.lower()
    if low.endswith(PARQUET):
        return read_parquet(path, columns)
    if low.endswith(".npy"):
        return read_npy(path)
    if not os.path.isfile(path):
        raise CLIError(f"no such file: {path}")
    return read_csv(path)
