"""The command line's data files: CSV, Parquet, NPZ (dense or scipy.sparse),
NPY (memory-mapped), read as columns.

CSV and Parquet are read by pyarrow when it is installed (``pip install
"fastbp[arrow]"``): its readers parse in C++ over every core, so a numeric
column goes from the file to the model's input array with one conversion.
Without pyarrow, CSV is read by Python's ``csv`` module (the same answers
and messages, many times slower) and Parquet is refused with the hint.

A :class:`Table` hands out one column at a time, already checked: a numeric
column as a float or integer array, a text column as a ``str`` array of
cells stripped of ASCII whitespace (``SPACE``: a no-break space, U+00A0,
stays part of its cell, which is then text, not a number). A text cell is a
number only in plain ASCII decimal notation (``_preprocess.is_number``: not
``1_0``, not ``١``), as pyarrow parses numbers and the ONNX export reads
them. A missing value (a blank cell, ``nan``, ``NA``, ..., a
Parquet null) or an infinity is one error naming the file, the column and the
row (and, for CSV, the line). Nothing here allocates a row at a time in
Python on the pyarrow path.
"""
import collections
import contextlib
import csv
import io
import os
import re
import sys
import zlib

import numpy as np

from ._preprocess import SPACE, _beyond, empty_rows, is_number

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
    """Data row i (0-based) as a user finds it: the line in the file, and the
    row. ``lines``: every data row's line, None (not known), or a function
    giving either, called only here: finding the lines reads the file again."""
    if callable(lines):
        lines = lines()
    return f"line {lines[i]} (data row {i + 1})" if lines is not None else f"row {i + 1}"


def _infinite(value):
    # A cell that reads as an infinity: "inf", "-Infinity", or a number too
    # large for a float, such as 1e400 (pyarrow hands over its text).
    try:
        return value.lower() in INFINITE or np.isinf(float(value))
    except ValueError:
        return False


def missing_error(path, name, value, i, lines):
    if value is None:  # a Parquet null
        what, shown = "a missing value", "(null)"
    else:
        what = "an infinite value" if _infinite(value) else "a missing value"
        shown = repr(value)
    return CLIError(f"{path}: {what} {shown} in column {name!r} at {where(i, lines)}; fastbp"
                    " does not fill in missing values: complete or drop that row")


def beyond_float64(path, name, value, i):
    # A long double past float64, in which numbers are read: its infinity
    # was found after train's shuffled split, naming a shuffled row.
    return CLIError(f"{path}: {str(value)} in column {name!r} at row {i + 1} is beyond what"
                    " float64 holds, in which fastbp reads numbers")


def not_numeric(path, name, value, i):
    return CLIError(f"{path}: column {name!r} is not numeric (data row {i + 1}: {value!r}"
                    f"{_not_plain(value)}); a feature column holds numbers in every row, or text"
                    " in every row (categories); fastbp train leaves a column out with --drop")


def _not_plain(value):
    # Why text that Python's float() reads (1_0, ١) is not a number here.
    try:
        float(value)
    except (TypeError, ValueError):
        return ""
    return ", text: numbers are plain ASCII decimals such as 1.5 or -2e-3"


def check_text(values, name, path, lines):
    """Refuse a missing value (blank, nan, NA, ...) or an infinity in a text column."""
    low = np.char.lower(np.unique(values))
    bad = np.isin(low, list(MISSING | INFINITE))
    if bad.any():
        cells = np.isin(np.char.lower(values), low[bad])
        i = int(np.argmax(cells))
        raise missing_error(path, name, str(values[i]), i, lines)


def header_in_data(path, name, values, lines):
    """The error of a CSV column that holds its own name: the first row was
    data (a file without a header), or the header is repeated among the rows."""
    i = int(np.argmax(values == name))
    return CLIError(f"{path}: the first row looks like data, not a header: column {name!r} holds"
                    f" {name!r} at {where(i, lines)}; fastbp reads the first row of a CSV file as"
                    " the column names")


def text_kind(values, name, path, lines, csv_file=False):
    """"number" if every cell of a text column reads as a number (after the
    missing-value check), "text" if none does; a mix is an error. A number is
    plain ASCII decimal text (``is_number``: ``1_0`` or ``١`` is text), as
    pyarrow's reader and the ONNX export read numbers. ``csv_file``: a
    column holding its own name (not a number) is :func:`header_in_data`."""
    check_text(values, name, path, lines)
    uniques = np.unique(values)
    numeric = np.array([is_number(v) for v in uniques.tolist()], dtype=bool)
    if numeric.all():
        return "number"
    if not numeric.any():
        return "text"
    if csv_file and not is_number(name) and name in uniques[~numeric]:
        raise header_in_data(path, name, values, lines)
    text = np.isin(values, uniques[~numeric])
    if 2 * int(text.sum()) <= text.size:  # mostly numbers: name the first text cell
        i = int(np.argmax(text))
        raise not_numeric(path, name, str(values[i]), i)
    i = int(np.argmin(text))  # mostly text: name the first stray number
    raise CLIError(f"{path}: column {name!r} holds text but {where(i, lines)} holds a number"
                   f" ({str(values[i])!r}); a feature column holds numbers in every row, or"
                   " text in every row (categories); fastbp train leaves a column out with --drop")


# ---------------------------------------------------------------- tables
class Table:
    """Named columns of one file. Subclasses give ``_raw(j)``: a numeric
    array, or an array of stripped ``str`` cells."""

    path = ""
    names = ()
    n_rows = 0
    csv_file = False  # a CSV's names are its first row, which may be data (see text())

    def _raw(self, j):
        raise NotImplementedError

    def _lines(self):
        return None

    def _cell(self, i, j):
        return None

    def index(self, name):
        """The column ``name``'s index (its first, if named twice), or None."""
        at = self.__dict__.get("_at")
        if at is None or at[0] is not self.names:   # (a dict: a wide file's columns
            first = {}                               # each looked up, review HHF)
            for j, n in enumerate(self.names):
                first.setdefault(n, j)
            at = self._at = (self.names, first)
        return at[1].get(name)

    def holds_text(self, name):
        """Whether the file types the column as text (a Parquet string
        column): its cells are text as written, numbers among them too.
        A CSV's cells have no type (False)."""
        return False

    def kind(self, name):
        """"number" or "text" (checked: no missing value, no number/text mix)."""
        raw = self._raw(self.index(name))
        if raw.dtype.kind in "biuf":
            return "number"
        return text_kind(raw, name, self.path, self._lines, self.csv_file)

    def numbers(self, name):
        """The column as a finite numeric array (float64, or ints, bools)."""
        j = self.index(name)
        raw = cells = self._raw(j)
        if raw.dtype.kind not in "biuf":
            if text_kind(raw, name, self.path, self._lines, self.csv_file) == "text":
                i = 0
                raise not_numeric(self.path, name, str(raw[i]), i)
            raw = raw.astype(np.float64)
        if raw.dtype.kind == "f":
            finite = np.isfinite(raw)
            if not finite.all():
                i = int(np.argmin(finite))
                # the cell as written (1e400), as pyarrow's reader shows it
                cell = str(cells[i]) if cells.dtype.kind == "U" else self._cell(i, j)
                raise missing_error(self.path, name, str(raw[i]) if cell is None else cell, i,
                                    self._lines)
            at = _beyond(raw, np.float64)   # a long double (an .npy file's)
            if at is not None:
                raise beyond_float64(self.path, name, raw[at], at[0])
        return raw

    def text(self, name):
        """The column as stripped ``str`` cells, checked for missing values
        (numbers in it are read as their text, for a category column). In a
        CSV, a name that is not a number and is also one of its column's
        cells is an error: the first row was data (a file without a header),
        or the header is repeated among the rows."""
        raw = self._raw(self.index(name))
        if raw.dtype.kind in "biuf":
            return self.numbers(name).astype(str)
        check_text(raw, name, self.path, self._lines)
        if self.csv_file and not is_number(name) and (raw == name).any():
            raise header_in_data(self.path, name, raw, self._lines)  # (a year may head years)
        return raw


def _open_bytes(path):
    """A CSV file's bytes, gzip- or bzip2-decompressed by its name (``.gz``,
    ``.bz2``), as pyarrow's reader takes them."""
    name = os.fspath(path).lower()
    if name.endswith(".gz"):
        import gzip
        return gzip.open(path, "rb")
    if name.endswith(".bz2"):
        import bz2
        return bz2.open(path, "rb")
    return open(path, "rb")


def _open_text(path):
    """A CSV file for reading as text (:func:`_open_bytes`). Bytes that are
    not UTF-8 come through as lone surrogates (``surrogateescape``): refused
    by the column that holds them (:func:`_check_utf8`), as pyarrow reads
    only the columns it is asked for."""
    return io.TextIOWrapper(_open_bytes(path), newline="", encoding="utf-8-sig",
                            errors="surrogateescape")


def _not_utf8(cell):
    # The undecodable bytes of a cell read with surrogateescape, or b"".
    if cell.isascii():
        return b""
    raw = cell.encode("utf-8", "surrogateescape")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return raw[exc.start:exc.end]
    return b""


def _check_utf8(path, cells, what, lines=None):
    """Refuse the first cell of ``cells`` holding bytes that are not UTF-8,
    naming ``what`` (a column, or the header) and its line."""
    for i, cell in enumerate(cells):
        bad = _not_utf8(cell)
        if bad:
            at = f" at {where(i, lines)}" if lines is not None else ""
            raise CLIError(f"{path}: {what}{at} holds bytes that are not UTF-8 text ({bad!r});"
                           " fastbp reads CSV files as UTF-8: convert the file (iconv -f"
                           " latin1 -t utf-8, say)" + (DROP_HINT_CSV if lines is not None else ""))


# How a column's unreadable cells end their message: the hint to leave the
# column out, which the target column cannot be (cli._target takes it out).
DROP_HINT_CSV = ", or train without the column (--drop)"
DROP_HINT = "; fastbp train leaves it out with --drop "


def check_no_trailing_nul(path, cells, name, lines):
    """Refuse a cell ending in NUL bytes: NumPy's text arrays drop them, so
    "2\\x00" was read as the number 2 and "red\\x00" as the category "red"
    (Python's float and pyarrow keep the NUL: not a number, another text).
    ``cells``: a list of str, or a pyarrow string array."""
    if isinstance(cells, list):
        i = next((k for k, c in enumerate(cells) if c.endswith("\x00")), None)
    else:
        import pyarrow.compute as pc
        ends = pc.ends_with(cells, "\x00").to_numpy(zero_copy_only=False)
        i = int(np.argmax(ends)) if ends.any() else None
    if i is not None:
        cell = cells[i] if isinstance(cells, list) else cells[i].as_py()
        raise CLIError(f"{path}: column {name!r} at {where(i, lines)} holds {cell!r}, which ends"
                       " in a NUL byte (\\x00): remove it from the file")


def _file_tail(path, size=64):
    # The last bytes of a CSV file (of its text, for a .gz or .bz2 one).
    if os.fspath(path).lower().endswith((".gz", ".bz2")):
        tail = b""
        with _open_bytes(path) as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                tail = (tail + chunk)[-size:]
        return tail
    with open(path, "rb") as fh:
        fh.seek(max(0, os.fstat(fh.fileno()).st_size - size))
        return fh.read()


def check_closed(path, cell, name, row):
    """The last row's last cell (as parsed, ``row`` its number): one that
    holds a line break was quoted, and its closing quote is then the file's
    last character but line breaks. One that runs to the end of the file
    opened a quote never closed, which pyarrow's reader and Python's csv
    both take as a cell holding the rest of the file (a 1,000-row file read
    as 3 rows)."""
    if not isinstance(cell, str) or not ("\n" in cell or "\r" in cell):
        return
    if _file_tail(path).rstrip(SPACE.encode("ascii")).endswith(b'"'):   # (a space may follow it)
        return
    raise CLIError(f"{path}: the quoted cell in column {name!r} at data row {row} is never"
                   f" closed: it runs to the end of the file, taking in the"
                   f" {len(cell.splitlines()) - 1} lines after its own; close its quote")


def _lone_cr(table):
    """Whether a text column of the pyarrow ``table`` holds a carriage return
    that no line feed follows. Only a quoted cell holds either; pyarrow
    (26.0.1) drops the line feed of a quoted CR LF whose CR ends one of its
    read blocks (review HHF: ``"q\r\n2"`` read as ``q\r2``, a category of
    its own), so such a file is read by Python's csv module instead (one
    that truly holds a lone CR in a cell too: slower, as written)."""
    import pyarrow.compute as pc
    return any(pc.any(pc.match_substring_regex(column, "\r(?:[^\n]|$)")).as_py()
               for column in _text_columns(table))


def _text_columns(table):
    import pyarrow as pa
    return (column for column in table.columns
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type))


def _multiline(table):
    """Whether a text column of the pyarrow ``table`` holds a cell with a line
    break: a quoted cell, and what a quoted cell whose closing quote was
    lost becomes. Both readers are lenient: the cell takes in the line
    breaks and rows after it up to the next quote, which closes it
    (``"yes`` then ``5.1,2,"no"`` read as one cell ``yes\n5.1,2,no"``, or
    an inch mark ``12" box`` further down as ``...12 box``), a row or more
    lost silently (review HHF, HIF); :func:`check_quoting` tells a broken
    file from one whose cells hold line breaks as written."""
    return any(_breaks(column) for column in _text_columns(table))


def _breaks(column):
    # (text or bytes: without a regex, which could refuse bytes that are not UTF-8)
    import pyarrow.compute as pc
    return pc.any(pc.or_(pc.match_substring(column, "\n"),
                         pc.match_substring(column, "\r"))).as_py()


# Whitespace between a quote and the end of its cell (fastbp ignores SPACE
# around cells; Python's strict csv refuses it after a closing quote).
_PADDED_QUOTE = re.compile(r'"[ \t\v\f]+(?=,|\r|\n|$)')
_PADDINGS = tuple('"' + c for c in " \t\v\f")


def check_quoting(path):
    """Parse the file with Python's csv module in its strict mode, which
    refuses a closing quote that more than the cell's end follows
    (whitespace aside, which fastbp ignores around every cell), and a quote
    that the file's end closes: the marks of a closing quote lost further up
    (a lost quote whose later quotes are all empty cells, ``""``, runs to
    the end of the file, review HII). Called only for a file with a cell
    that holds a line break (:func:`_multiline`), after the checks that
    word a malformed file otherwise (field counts, :func:`check_closed`):
    one read as written passes."""
    def lines(fh):
        for line in fh:
            yield _PADDED_QUOTE.sub('"', line) if any(p in line for p in _PADDINGS) else line
    start = 1
    with _open_text(path) as fh, _no_field_limit():
        reader = csv.reader(lines(fh), strict=True)
        try:
            for _ in reader:
                start = reader.line_num + 1
        except csv.Error as exc:
            if str(exc).startswith("unexpected end of data"):
                n = reader.line_num - start
                taken = f", taking in the {n} line{'s' * (n != 1)} after its own" if n else ""
                raise CLIError(f"{path}, line {start}: a quoted cell there is never closed: it"
                               f" runs to the end of the file{taken}; close its quote") from None
            where = (f"line {start}" if reader.line_num <= start
                     else f"lines {start}-{reader.line_num}")
            raise CLIError(f"{path}, {where}: a quoted cell does not end at its closing quote"
                           f" ({exc}): a quote never closed takes the line breaks and rows"
                           " after it into one cell, up to the next quote; close each quoted"
                           ' cell\'s quote, and write a quote inside a quoted cell twice ("")'
                           ) from None


def _has_quotes(path):
    """Whether the file (its text, for a .gz or .bz2 one) holds a double
    quote anywhere: one that is never closed needs one. (Their count says
    no more: a quote standing in an unquoted cell, an inch mark, evens it.)
    Read 1 MiB at a time, up to the first."""
    with _open_bytes(path) as fh:
        return any(b'"' in chunk for chunk in iter(lambda: fh.read(1 << 20), b""))


def _quoted_lines(path):
    """Whether pyarrow must look for line breaks inside quoted cells in
    ``path`` (``ParseOptions.newlines_in_values``): without it pyarrow cuts
    its blocks at any line break, and one inside a quoted cell at a block's
    end made a row of a 6.9 MB file read another row's number, silently
    (review HCK: 2123010 for 123010, the row count unchanged). It parses
    slower (0.38 against 0.30 s for 226 MB of numbers, threads on), so a
    plain file is scanned for a quote first (0.03 s there); a compressed
    one, which the scan would decompress, is parsed so whatever it holds."""
    return os.fspath(path).lower().endswith((".gz", ".bz2")) or _has_quotes(path)


def _parse_options(quoted_lines):
    import pyarrow.csv as pcsv
    return pcsv.ParseOptions(newlines_in_values=bool(quoted_lines))


def _unread_cells(path, names, last, quoted_lines=True):
    """The columns ``names``, which the command leaves out (``--drop``), read
    as bytes a block at a time (not held whole: a wide text column the user
    left out set the peak memory; their bytes are not checked for UTF-8: a
    column left out is never refused for them). Returns whether a cell of
    theirs holds a line break (:func:`_multiline`), and
    the column ``last``'s last cell as text (None when ``last`` is None)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    convert = pcsv.ConvertOptions(include_columns=list(names),
                                  column_types={n: pa.binary() for n in names},
                                  null_values=[], strings_can_be_null=False,
                                  quoted_strings_can_be_null=False)
    cell, breaks = None, False
    for batch in pcsv.open_csv(path, convert_options=convert,
                               read_options=pcsv.ReadOptions(block_size=BLOCK),
                               parse_options=_parse_options(quoted_lines)):
        if batch.num_rows:
            breaks = breaks or any(_breaks(column) for column in batch.columns)
            if last is not None:
                cell = batch.column(batch.schema.get_field_index(last))[-1].as_py()
    return breaks, None if cell is None else cell.decode("utf-8", "replace")


@contextlib.contextmanager
def _no_field_limit():
    # Python's csv refuses a cell over 131,072 characters, which pyarrow
    # reads: the limit lifted while fastbp reads (restored after).
    previous = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


class PythonCSV(Table):
    """Python's csv module: the reader when pyarrow is absent, and the one
    that words a malformed file's error (line numbers, field counts)."""

    csv_file = True

    def __init__(self, path):
        self.path = path
        try:
            with _open_text(path) as fh, _no_field_limit():
                reader = csv.reader(fh)
                rows, lines, end = [], [], 0
                multiline = False
                for r in reader:
                    # A record's first line (line_num is its last: a quoted
                    # cell may hold line breaks).
                    start, end = end + 1, reader.line_num
                    if r:  # an empty line is skipped (as pyarrow does); ",," is a row
                        rows.append(r)
                        lines.append(start)
                        multiline = multiline or end > start   # (see _multiline)
        except FileNotFoundError:
            raise CLIError(f"no such file: {path}") from None
        except (OSError, EOFError, csv.Error, zlib.error) as exc:
            # (EOFError: a truncated .gz or .bz2; zlib.error, not an OSError:
            # a .gz whose compressed data is damaged, review HCD)
            raise CLIError(f"cannot read {path} as CSV: {exc}") from None
        if len(rows) < 2:
            raise CLIError(f"{path} needs a header row and at least one data row")
        _check_utf8(path, rows[0], "the header")
        self.names = [h.strip() for h in rows[0]]
        for row, line in zip(rows[1:], lines[1:]):
            if len(row) != len(self.names):
                raise CLIError(f"{path}, line {line}: {len(row)} fields, but the header has"
                               f" {len(self.names)}")
        self._rows, self.lines, self.n_rows = rows[1:], lines[1:], len(rows) - 1
        check_closed(path, rows[-1][-1], self.names[-1], self.n_rows)
        # (a cell open at the file's end holds its last line break on the
        # record's own line: review HIK)
        if multiline or any("\n" in c or "\r" in c for c in rows[-1]):
            check_quoting(path)
        self._columns = {}

    def _raw(self, j):
        if j not in self._columns:
            cells = [row[j].strip(SPACE) for row in self._rows]
            _check_utf8(self.path, cells, f"column {self.names[j]!r}", self.lines)
            check_no_trailing_nul(self.path, cells, self.names[j], self.lines)
            cells = np.array(cells, dtype=str)
            if cells.size == 0:
                cells = cells.astype("<U1")
            self._columns[j] = cells
        return self._columns[j]

    def _lines(self):
        return self.lines


def python_words(path, exc):
    """The error for a file pyarrow could not read (a damaged .gz or .bz2),
    as Python's reader words it: the message fastbp gives without pyarrow."""
    try:
        PythonCSV(path)
    except CLIError as words:
        return words
    return CLIError(f"cannot read {path} as CSV: {exc}")


class ArrowTable(Table):
    """A table read by pyarrow (CSV or Parquet): numeric columns come out as
    NumPy arrays without a Python loop."""

    def __init__(self, path, table, csv_file):
        self.path, self._table, self._csv = path, table, csv_file
        self.csv_file = csv_file
        self.names = [str(n).strip() for n in table.column_names]
        self.n_rows = table.num_rows
        self._line_cache = None

    def _raw(self, j):
        return self._convert(self._table.column(j), j)

    def _arrow(self, j):
        return self._table.column(j)

    def holds_text(self, name):
        import pyarrow as pa
        if self.csv_file:
            return False
        t = self._arrow(self.index(name)).type
        if pa.types.is_dictionary(t):
            t = t.value_type
        return any(getattr(pa.types, f"is_{kind}", lambda _: False)(t) for kind in
                   ("string", "large_string", "string_view", "binary", "large_binary",
                    "fixed_size_binary", "binary_view"))

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
        import pyarrow.compute as pc
        try:
            if pa.types.is_duration(t):
                # (cast to text, a bare count of its unit: the same data in
                # seconds and in milliseconds read 1000x apart, review HHF;
                # NPY files and the Python API refuse timedelta64 too)
                raise pa.ArrowNotImplementedError
            if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
                col = col.cast(pa.string())
            cells = pc.utf8_trim(col, characters=SPACE)
        except pa.ArrowException:  # a list, a struct, bytes that are not UTF-8 text ...
            name = self.names[j]
            what = ("bytes that are not UTF-8 text" if pa.types.is_binary(t)
                    or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)
                    else "values that are neither numbers nor text")
            raise CLIError(f"{self.path}: column {name!r} holds {what} (type {t}), which fastbp"
                           f" cannot read{DROP_HINT}{name}") from None
        check_no_trailing_nul(self.path, cells, self.names[j], self._lines)
        return np.asarray(cells.to_numpy(zero_copy_only=False), dtype=str)

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
    """A CSV file read by pyarrow in two steps. Opening it parses the first
    block (``FIRST``, 1 MiB of text) to learn the names and each column's
    type; then, once the command has chosen its columns, ``load(block,
    others, dtype, text)`` reads only those (over every core when a second
    one is free, see :func:`free_cores`), with their types fixed
    (a numeric feature column as float64, the others as the first block
    typed them: no type inference past the first block; but ``text``, a
    model's category columns, as text, their cells as written, and a column
    it typed as integers as float64, as pyarrow's reader and Python's read
    it alike: pyarrow reads ``0x10`` as the integer 16, where fastbp reads
    numbers in plain decimal notation only), and copies the
    numeric features into one preallocated C-contiguous array of the
    model's dtype, a block of rows at a time, checking them for missing
    values (NaN) and infinities as it goes. Memory: that array, the chosen
    columns in Arrow form while they are copied; never the unchosen ones.

    A file that does not convert with those types (a blank cell in a
    numeric column, a number column that turns to text after the first
    block, a short row ...) raises :class:`Reread`: the command then reads
    it again whole, as text, and the checks word the problem.
    """

    def __init__(self, path, reader, quoted_lines):
        import pyarrow as pa
        self.path, self._csv, self.csv_file = path, True, True
        self._quoted_lines = quoted_lines   # (see _quoted_lines)
        self._file_names = list(reader.schema.names)
        self.names = [str(n).strip() for n in self._file_names]
        # A column is numbers or text, as Python's reader sees it: what
        # pyarrow would infer as a bool, a date, a timestamp or bytes is read
        # as text (bytes that are not UTF-8 then fail to convert, and the
        # file is read again to word the error).
        self._types = [t if pa.types.is_integer(t) or pa.types.is_floating(t) else pa.string()
                       for t in reader.schema.types]
        self.block, self.block_names, self.checked = None, {}, False   # (name: column of block)
        self._arrays = {}
        self._line_cache = None

    def numeric(self, name):
        """Whether the first block read the column as numbers."""
        import pyarrow as pa
        t = self._types[self.index(name)]
        return pa.types.is_integer(t) or pa.types.is_floating(t)

    def load(self, block_names, other_names, dtype, text_names=()):
        import pyarrow as pa
        import pyarrow.csv as pcsv
        cols = [self.index(n) for n in block_names]
        rest = sorted({self.index(n) for n in other_names} - set(cols))
        wanted = [self._file_names[j] for j in cols + rest]
        count = collections.Counter(self._file_names)
        unique = len(set(wanted)) == len(wanted) and all(count[n] == 1 for n in wanted)
        text = {self.index(n) for n in text_names}

        def fixed(j):  # pyarrow reads 0x10 as the integer 16: an integer column as float64
            if j in text:
                return pa.string()
            return pa.float64() if pa.types.is_integer(self._types[j]) else self._types[j]

        types = {self._file_names[j]: fixed(j) for j in rest}
        types.update({self._file_names[j]: pa.float64() for j in cols})
        convert = pcsv.ConvertOptions(null_values=[], strings_can_be_null=False,
                                      quoted_strings_can_be_null=False, column_types=types,
                                      include_columns=wanted if unique else None)
        try:
            # The system allocator (malloc): 1.36 s of CPU for this parse of
            # the 1M x 28 CSV against 1.5-1.8 s with pyarrow's default
            # (mimalloc), threads on, on this repository's busy machine.
            table = pcsv.read_csv(self.path, convert_options=convert,
                                  read_options=pcsv.ReadOptions(block_size=BLOCK,
                                                                use_threads=free_cores()),
                                  parse_options=_parse_options(self._quoted_lines),
                                  memory_pool=pa.system_memory_pool())
        except pa.ArrowInvalid:
            raise Reread from None
        except OSError as exc:   # a truncated or corrupt .gz/.bz2 met past the first block
            raise python_words(self.path, exc) from None
        if self._quoted_lines and _lone_cr(table):
            raise Reread   # (read_csv then hands the file to Python's reader)
        multiline = self._quoted_lines and _multiline(table)
        n = table.num_rows
        if n == 0:
            raise CLIError(f"{self.path} needs a header row and at least one data row")
        at = {name: k for k, name in reversed(list(enumerate(table.column_names)))}
        block = [at[self._file_names[j]] for j in cols]
        for j in rest:
            self._arrays[j] = table.column(at[self._file_names[j]])
        last = len(self._file_names) - 1
        if last in rest and pa.types.is_string(self._arrays[last].type):
            check_closed(self.path, self._arrays[last][-1].as_py(), self.names[last], n)
        read = set(cols).union(rest)
        unread = [j for j in range(last + 1)
                  if j not in read and count[self._file_names[j]] == 1]
        if unread and self._quoted_lines:
            # Columns left out (--drop): a quote never closed in one takes in
            # the line breaks after it too, the rest of the file from the
            # last column. In a file that holds quotes they are read again,
            # a block at a time, for the checks.
            breaks, cell = _unread_cells(self.path, [self._file_names[j] for j in unread],
                                        self._file_names[last] if last in unread else None,
                                        self._quoted_lines)
            if last in unread:
                check_closed(self.path, cell, self.names[last], n)
            multiline = multiline or breaks
        if multiline:
            check_quoting(self.path)
        batches = table.to_batches()
        del table
        X = empty_rows((n, len(cols)), dtype)
        finite, i = True, 0
        batches.reverse()
        while batches:  # each batch let go once copied
            batch = batches.pop()
            m = batch.num_rows
            rows = X[i:i + m]
            for k, c in enumerate(block):
                rows[:, k] = batch.column(c).to_numpy()
            if finite and rows.dtype.kind == "f":
                finite = bool(np.isfinite(rows).all())
            i += m
        _trim()
        self.n_rows = n
        self.block, self.block_names = X, {name: k for k, name in enumerate(block_names)}
        # Every cell finite: numbers() hands the columns out unscanned. Else
        # it scans each column it is asked for, to name the first bad cell.
        self.checked = finite

    def numbers(self, name):
        if self.checked and name in self.block_names:
            return self.block[:, self.block_names[name]]
        return super().numbers(name)

    def _raw(self, j):
        name = self.names[j]
        if name in self.block_names:
            raw = self.block[:, self.block_names[name]]
            return raw if self.checked else self._as_written(j, raw)
        return self._as_written(j, self._convert(self._arrays[j], j))

    def _as_written(self, j, raw):
        """A column pyarrow read as numbers, or, where one of its non-finite
        cells is no number to fastbp (``nan(ind)``, a C library's NaN, which
        pyarrow reads as NaN), its cells as text, as Python's reader gives
        them (review HCK: a target of 1, 2 and nan(ind) was refused as
        missing a value with pyarrow and trained as three classes without;
        read a second time only where a cell is not finite, an error or
        text either way)."""
        if raw.dtype.kind != "f":
            return raw
        bad = np.flatnonzero(~np.isfinite(raw))
        if not bad.size:
            return raw
        cells = PythonCSV(self.path)._raw(j)
        return raw if all(is_number(str(cells[i])) for i in bad) else cells


def _trim():
    """Hand the C heap's free pages back to the system (glibc's malloc_trim;
    elsewhere nothing). The copied columns' blocks lie between the kept
    ones' (the target's) on the heap, so free() alone returns none of them:
    the 1M x 28 CSV left 606 MB resident after reading, 379 MB with this,
    and the whole command's peak RSS fell from 763-784 MiB to 660 MiB."""
    try:
        import ctypes
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


class Reread(Exception):
    """The reader met a cell it cannot convert to its column's type."""


# Text per block when reading a file (4 MiB: 2.0 s for a 1M x 28 CSV
# against 2.5 s with 1 MiB, 2 cores), and in the first block, whose types
# are the columns' (1 MiB: 0.02-0.07 s of CPU against 0.08-0.13 s).
BLOCK = 4 << 20
FIRST = 1 << 20


def free_cores():
    """Whether a second core is free for pyarrow's parser: on a machine
    whose cores are all taken by other processes its threads cost 10-30 %
    more CPU than one thread and win no time (measured, 1M x 28 CSV, two
    cores, load average 7-9: 3.47 s of CPU for the command against 3.65 s)."""
    from .threads import default_num_threads, others_running
    return others_running() + 2 <= default_num_threads()


SLOW = 10 << 20  # a CSV file above this size read without pyarrow gets the hint


# What pyarrow's CSV reader would decompress by the file's name, and
# Python's (the reader without pyarrow, and the one that words a bad cell)
# does not: refused by both, so that both give the same answers.
OTHER_COMPRESSIONS = (".zst", ".zstd", ".lz4", ".br", ".brotli")


def read_csv(path, streamed=True):
    if os.fspath(path).lower().endswith(OTHER_COMPRESSIONS):
        raise CLIError(f"cannot read {path}: fastbp reads CSV files plain, .gz or .bz2"
                       " compressed; decompress it first")
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
        quoted_lines = _quoted_lines(path)
        parse = _parse_options(quoted_lines)
        if streamed:
            return StreamedCSV(path, pcsv.open_csv(path, convert_options=convert,
                                                   read_options=pcsv.ReadOptions(block_size=FIRST),
                                                   parse_options=parse), quoted_lines)
        # Every column as text: the file the streaming reader could not
        # convert, read whole so that the checks find and name the cell.
        names = pcsv.open_csv(path, parse_options=parse).schema.names
        convert.column_types = {n: pa.string() for n in names}
        table = pcsv.read_csv(path, convert_options=convert, parse_options=parse)
        if quoted_lines and _lone_cr(table):
            return PythonCSV(path)
        multiline = quoted_lines and _multiline(table)
    except FileNotFoundError:
        raise CLIError(f"no such file: {path}") from None
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return PythonCSV(path)  # a malformed file: Python's reader names the line
    except UnicodeEncodeError:
        # (a file name that is not UTF-8, its bytes kept by Python as
        # surrogates, which pyarrow cannot encode: a traceback, status 1)
        return PythonCSV(path)
    except OSError as exc:   # a damaged .gz/.bz2
        raise python_words(path, exc) from None
    if table.num_rows == 0:
        raise CLIError(f"{path} needs a header row and at least one data row")
    check_closed(path, table.column(table.num_columns - 1)[-1].as_py(),
                 str(table.column_names[-1]).strip(), table.num_rows)
    if multiline:
        check_quoting(path)
    return ArrowTable(path, table, csv_file=True)


def read_parquet(path):
    """The :class:`ParquetTable` of a Parquet file, or of a folder of parts:
    its names and row count now, its columns when the command asks for them."""
    if not have_arrow():
        raise CLIError(f"reading Parquet ({path}) needs pyarrow: pip install \"fastbp[arrow]\"")
    import pyarrow.parquet as pq

    def read(source):
        if isinstance(source, str):
            dataset = pq.ParquetDataset(source)
            if os.path.isdir(source):
                _same_schema(source, dataset.files)
            names = dataset.schema.names
        else:
            names = pq.read_schema(source).names
            source.seek(0)
        return names, pq.read_table(source, columns=[]).num_rows

    names, n_rows = _parquet_call(path, read)
    _refuse_repeated(names, path)   # (pyarrow's "Multiple matches for FieldRef" else)
    if n_rows == 0:
        raise CLIError(f"{path} has no data rows")
    return ParquetTable(path, names, n_rows)


def _same_schema(path, files):
    """Refuse a folder whose Parquet parts differ in their columns or their
    types (a dictionary column as its values' type): pyarrow reads every part
    in the first one's schema, silently (review HCK: a later part's integer
    label 2 read as True, its float64 0.1 as float32's 0.10000000149011612,
    and a column the first part lacks was no column at all)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def kind(t):   # (as fastbp reads it: a dictionary as its values, large text as text)
        t = t.value_type if pa.types.is_dictionary(t) else t
        return (pa.string() if pa.types.is_large_string(t) else
                pa.binary() if pa.types.is_large_binary(t) else t)

    def columns(file):
        return {f.name: kind(f.type) for f in pq.read_schema(file)}

    first = columns(files[0]) if files else {}
    part = lambda file: os.path.relpath(file, path)   # noqa: E731
    for file in files[1:]:
        other = columns(file)
        for name in list(first) + [n for n in other if n not in first]:
            if name not in other or name not in first:
                has, lacks = (files[0], file) if name not in other else (file, files[0])
                raise CLIError(f"{path}: column {name!r} is in the part {part(has)} but not in"
                               f" {part(lacks)}; fastbp reads a folder whose parts have the"
                               " same columns")
            if first[name] != other[name]:
                raise CLIError(f"{path}: the parts hold column {name!r} as {first[name]}"
                               f" ({part(files[0])}) and as {other[name]} ({part(file)}),"
                               " which pyarrow would read as the first part's type; write the"
                               " parts with one schema")


def _parquet_call(path, read):
    """``read(source)`` of the Parquet file or folder ``path``, its failures
    one message naming the file."""
    import pyarrow as pa
    try:
        with _parquet_source(path) as source:
            return read(source)
    except FileNotFoundError:
        raise CLIError(f"no such file: {path}") from None
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise CLIError(f"cannot read {path} as Parquet: {exc}") from None


class ParquetTable(ArrowTable):
    """A Parquet file (or a folder of parts) whose columns are read once the
    command has chosen them (:meth:`load`, all in one read: one snapshot of
    the file, its footer parsed once): the columns it does not choose are
    never read (8 of 68 float64 columns of 500,000 rows: 829 MiB peak for
    the command when the file was read whole). A column read is kept as
    Arrow holds it (a float column without nulls reaches NumPy without a
    copy)."""

    def __init__(self, path, names, n_rows):
        self.path, self._csv, self.csv_file = path, False, False
        self._file_names = list(names)
        self.names = [str(n).strip() for n in names]
        self.n_rows = n_rows
        self._columns = {}
        self._line_cache = None

    def load(self, names):
        """Read the columns ``names`` (those not read yet), in one read."""
        import pyarrow.parquet as pq
        wanted = sorted({self.index(n) for n in names} - set(self._columns))
        if not wanted:
            return
        columns = [self._file_names[j] for j in wanted]
        table = _parquet_call(self.path, lambda source: pq.read_table(source, columns=columns))
        if table.num_rows != self.n_rows or table.column_names != columns:
            # (replaced between the schema's read and this one: review HBW,
            # a 1-row column was stretched over the 200 rows of the other)
            raise CLIError(f"{self.path} changed while it was read ({self.n_rows} rows, then"
                           f" {table.num_rows}); read it again once it is written")
        for k, j in enumerate(wanted):
            self._columns[j] = table.column(k)

    def _arrow(self, j):
        if j not in self._columns:
            self.load([self.names[j]])
        return self._columns[j]

    def _raw(self, j):
        return self._convert(self._arrow(j), j)


def _parquet_source(path):
    """What pyarrow reads ``path`` from: the name, or for a file whose name
    is not UTF-8 (its bytes kept by Python as surrogates, which pyarrow
    cannot encode: "cannot read ... as Parquet") the file opened by Python."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        if os.path.isfile(path):
            return open(path, "rb")
        if os.path.isdir(path):   # (pyarrow finds a data set's parts by its name)
            raise CLIError(f"cannot read the folder {path}: pyarrow reads a folder of Parquet"
                           " parts by its name, which must be UTF-8, and this one is not;"
                           " rename it") from None
    return contextlib.nullcontext(path)


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
            # a long double past float64, in which numbers are read (its
            # infinity was found after the split, in a shuffled row)
            at = _beyond(block, np.float64) if block.dtype.kind == "f" else None
            if at is not None:
                raise beyond_float64(self.path, self.names[at[1]], block[at], i + at[0])
        return self.array

    def _raw(self, j):
        return self.array[:, j]


def check_numpy_file(path, kind):
    """Raise CLIError unless ``path`` begins as a ``kind`` ("NPZ": a zip
    archive; "NPY": NumPy's magic) file does: np.load takes any other file
    for pickled data, and its message then advised loading it unsafely (a
    CSV named .npz). A file that cannot be opened is left to np.load's
    error, which names the reason."""
    from ._modelfile import ZIP_MAGIC
    try:
        with open(path, "rb") as fh:
            head = fh.read(6)
    except OSError:
        return
    if kind == "NPY" and head[:4] in ZIP_MAGIC:
        raise CLIError(f"{path} is not an .npy array but an .npz archive; name it .npz")
    if kind == "NPZ" and head[:4] not in ZIP_MAGIC:
        raise CLIError(f"cannot read {path} as NPZ: it is not an .npz archive (numpy.savez"
                       " writes them: a zip of .npy arrays)")
    if kind == "NPY" and head != b"\x93NUMPY":
        raise CLIError(f"cannot read {path} as NPY: it is not an .npy file (numpy.save writes"
                       " them)")


def read_npy(path):
    check_numpy_file(path, "NPY")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as exc:
        raise CLIError(f"cannot read {path} as NPY: {exc}") from None
    if not isinstance(array, np.ndarray):  # np.load read an .npz archive
        raise CLIError(f"{path} is not an .npy array but an .npz archive; name it .npz")
    if array.ndim != 2 or array.dtype.kind not in "biuf":
        raise CLIError(f"{path}: an .npy file must hold a 2-D numeric array; got"
                       f" {array.dtype}{array.shape}")
    if array.shape[0] == 0:
        raise CLIError(f"{path} has no data rows")
    if array.shape[1] == 0:   # (train and predict failed with an IndexError)
        raise CLIError(f"{path} has no columns: an .npy file holds the features and the target"
                       " as columns")
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


def folder_message(path):
    """Why the folder ``path`` is not read: only a Parquet data set's folder
    of parts is, by its name (a Spark or pyarrow output folder has none)."""
    return (f"cannot read {path}: it is a folder (a folder of Parquet parts is read when its name"
            f" ends in {' or '.join(PARQUET)}: rename it so)")


def check_regular(path, what="data"):
    """Refuse a path that exists but is neither a file nor a folder: a pipe
    (``<(cat data.csv)``, ``/dev/stdin``, a named pipe) or a device, which the
    readers cannot read twice or seek in (``what``: data, or a model)."""
    if os.path.exists(path) and not os.path.isfile(path) and not os.path.isdir(path):
        raise CLIError(f"cannot read {path}: it is not a regular file (a pipe or a device);"
                       f" fastbp reads {what if what == 'data' else 'a ' + what} from a file:"
                       f" write the {what} to one first")


def read_table(path):
    """The Table of a CSV, Parquet or NPY file (by its name's ending)."""
    low = path.rstrip("/" + os.sep).lower()  # (a Parquet folder as tab completion gives it: ds.parquet/)
    if low.endswith(PARQUET):
        return _checked_names(read_parquet(path))
    if os.path.isdir(path):
        raise CLIError(folder_message(path))
    if low.endswith(".npy"):
        return read_npy(path)
    if not os.path.isfile(path):   # (a pipe or device: refused by its caller, load_data)
        raise CLIError(f"no such file: {path}")
    return _checked_names(read_csv(path), csv_file=True)


def _refuse_repeated(names, path):
    seen, repeated = set(), []
    for name in names:
        if name in seen and name not in repeated:
            repeated.append(name)
        seen.add(name)
    if repeated:
        raise CLIError(f"{path}: the column name(s) {repeated} appear more than once; name"
                       " each column once")


def _checked_names(table, csv_file=False):
    """``table``, refused when a column name repeats (a column chosen by name
    would be the first of them) or, in a CSV, when the header row holds
    numbers only: a file without a header, whose first row would be lost.
    (A header cell that is one of its own text column's cells is refused
    too, when that column is read: :meth:`Table.text`.)"""
    _refuse_repeated(table.names, table.path)
    if csv_file and all(is_number(name) for name in table.names):
        raise CLIError(f"{table.path}: the first row {table.names[:5]} looks like data, not a"
                       " header; fastbp reads CSV files whose first row names the columns")
    return table
