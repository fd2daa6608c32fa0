"""The command line's reader (issue 13): CSV and Parquet through pyarrow (and
Python's csv module without it), NPY memory-mapped, sparse NPZ recognised,
--features/--drop, text columns as one-hot categories that are part of the
model."""
import copy
import os
import re
import warnings

import numpy as np
import pytest

import fastbp
from fastbp import _preprocess, _reader, cli
from fastbp.cli import main

pa = pytest.importorskip("pyarrow", reason="pyarrow is in the test extra")
import pyarrow.parquet as pq  # noqa: E402


def run(argv, capsys):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(params=["arrow", "python"])
def reader(request, monkeypatch):
    """Every CSV test twice: pyarrow's streaming reader, and the fallback."""
    if request.param == "python":
        monkeypatch.setattr(_reader, "have_arrow", lambda: False)
    return request.param


def write_text(path, header, rows):
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    return str(path)


# ------------------------------------------------------------ numbers
def test_a_c_librarys_nan_spelling_is_text_with_either_reader(tmp_path, reader):
    """Review HCK: pyarrow reads ``nan(ind)`` (a C library's NaN) as NaN,
    fastbp's rule (Python's float()) as text: a target of 1, 2 and nan(ind)
    was refused as missing a value with pyarrow and trained as three classes
    without, and a feature's errors differed. Text with either now."""
    target = write_text(tmp_path / "t.csv", ["a", "b"],
                        [[1, 1], [2, 2], [3, 1], [4, "nan(ind)"], [5, 2], [6, 1]])
    data = cli.load_data(target)
    assert sorted(set(data.y.tolist())) == ["1", "2", "nan(ind)"]
    np.testing.assert_array_equal(data.X[:, 0], [1, 2, 3, 4, 5, 6])
    feature = write_text(tmp_path / "f.csv", ["a", "b"], [[1, 1], [2, 2], ["nan(1)", 1], [4, 2]])
    with pytest.raises(cli.CLIError, match=re.escape(
            "column 'a' is not numeric (data row 3: 'nan(1)')")):
        cli.load_data(feature)
    nan = write_text(tmp_path / "n.csv", ["a", "b"], [[1, 1], [2, 2], ["nan", 1], [4, 2]])
    with pytest.raises(cli.CLIError, match="missing value 'nan'"):   # (a NaN to either)
        cli.load_data(nan)


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
@pytest.mark.parametrize("threads", [True, False])
def test_quoted_cells_with_line_breaks_across_pyarrows_blocks(tmp_path, monkeypatch, suffix,
                                                              threads):
    """Review HCK: pyarrow cut its blocks at a line break inside a quoted
    cell, and a row read another row's number, silently (with threads, on
    a file over a block), where Python's csv module reads the cell whole."""
    import csv
    import gzip
    import io
    monkeypatch.setattr(_reader, "BLOCK", 1 << 16)
    monkeypatch.setattr(_reader, "free_cores", lambda: threads)
    lines = ["x,note,t", "0,%s,0" % ("p" * 21)]
    for i in range(6000):   # a note that holds lines that look like rows
        lines.append('%d,"a\n%d,b,%d\n%d,d",%d' % (i, 10**6 + i, (i + 1) % 2, 2 * 10**6 + i,
                                                     i % 2))
    text = "\n".join(lines) + "\n"
    path = str(tmp_path / ("notes" + suffix))
    with (gzip.open if suffix.endswith(".gz") else open)(path, "wt", newline="") as fh:
        fh.write(text)
    assert len(text) > 3 * _reader.BLOCK
    rows = list(csv.reader(io.StringIO(text, newline="")))[1:]
    data = cli.load_data(path, drop=["note"])
    np.testing.assert_array_equal(data.X[:, 0], [float(r[0]) for r in rows])
    np.testing.assert_array_equal(data.y, [float(r[2]) for r in rows])


def test_csv_reads_what_loadtxt_reads(tmp_path, reader, monkeypatch):
    """Over several 1 MiB blocks, with long lines first and the integer
    rows after them (a column the first block types as float64)."""
    monkeypatch.setattr(_reader, "BLOCK", 1 << 20)
    rng = np.random.default_rng(0)
    long = rng.normal(size=(10000, 5)) * 1e-7
    short = rng.integers(0, 9, size=(300000, 5)).astype(float)
    X = np.vstack([long, short])
    y = np.arange(len(X)) % 3
    path = tmp_path / "d.csv"
    with open(path, "w") as fh:
        fh.write("a,b,c,d,e,label\n")
        np.savetxt(fh, np.column_stack([X, y]), delimiter=",", fmt="%.17g")
    assert os.path.getsize(path) > 3 * _reader.BLOCK
    data = cli.load_data(str(path))
    reference = np.loadtxt(path, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(data.X, reference[:, :-1])
    assert data.X.dtype == np.float64 and data.X.flags.c_contiguous
    np.testing.assert_array_equal(data.y, reference[:, -1])
    assert data.features == ["a", "b", "c", "d", "e"] and data.target == "label"


def test_the_header_is_the_first_row_with_its_names_stripped(tmp_path, reader):
    path = tmp_path / "h.csv"
    path.write_text(" a , b ,kind\n1, 2.5 ,x\n3,4,y\n", encoding="utf-8-sig")  # a byte order mark
    data = cli.load_data(str(path))
    assert data.features == ["a", "b"] and data.target == "kind"
    np.testing.assert_array_equal(data.X, [[1, 2.5], [3, 4]])
    assert data.y.tolist() == ["x", "y"]


def test_parquet_reads_what_the_arrays_hold(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(500, 3))
    kind = np.array(["low", "high"])[(X[:, 0] > 0).astype(int)]
    table = pa.table({"u": X[:, 0], "v": X[:, 1].astype(np.float32), "w": (X[:, 2] * 10).astype(np.int64),
                      "kind": kind})
    pq.write_table(table, tmp_path / "d.parquet")
    data = cli.load_data(str(tmp_path / "d.parquet"))
    expected = np.column_stack([X[:, 0], X[:, 1].astype(np.float32).astype(np.float64),
                                (X[:, 2] * 10).astype(np.int64)])
    np.testing.assert_array_equal(data.X, expected)
    assert data.y.tolist() == kind.tolist()


def test_parquet_reads_only_the_columns_chosen(tmp_path, monkeypatch):
    """Review HBQ: a Parquet file was read whole, its unchosen columns too
    (727 MiB against 366 MiB for 8 of 68 columns): it is read a column at a
    time, the chosen ones only (by --features, --drop, or a model's feature
    names), from a file or a folder of parts, and gives the same arrays."""
    rng = np.random.default_rng(3)
    cols = {f"c{j}": rng.normal(size=40) for j in range(8)}
    cols["kind"] = np.array(["a", "b"] * 20)
    cols["y"] = rng.normal(size=40)
    table = pa.table(cols)
    pq.write_table(table, tmp_path / "w.parquet")
    (tmp_path / "parts.parquet").mkdir()
    pq.write_table(table.slice(0, 25), tmp_path / "parts.parquet" / "p0.parquet")
    pq.write_table(table.slice(25), tmp_path / "parts.parquet" / "p1.parquet")
    read, real = [], pq.read_table

    def recording(source, *args, columns=None, **kwargs):
        read.append(columns)
        return real(source, *args, columns=columns, **kwargs)

    monkeypatch.setattr(pq, "read_table", recording)
    for path in (tmp_path / "w.parquet", tmp_path / "parts.parquet"):
        for chosen, kwargs in ((["c1", "kind"], dict(features=["c1", "kind"])),
                               (["c0", "c2", "c3", "c4", "c5", "c6", "c7", "kind"],
                                dict(drop=["c1"])),
                               (["c6", "c2"], dict(feature_names=["c6", "c2"], target="y"))):
            read.clear()
            data = cli.load_data(str(path), **kwargs)
            assert all(c is not None for c in read), read
            assert {c for cs in read for c in cs} == set(chosen) | {"y"}, (chosen, read)
            # in one read (review HBW: one per column parsed the footer each
            # time, 112 s for 3000 columns, and mixed a file's versions)
            assert len([c for c in read if c]) == 1, read
            want = [np.asarray(cols[c], dtype=np.float64)[:, None] if c != "kind" else
                    (cols[c][:, None] == np.array(["a", "b"])).astype(np.float64)
                    for c in chosen]
            np.testing.assert_array_equal(data.X, np.hstack(want))
            np.testing.assert_array_equal(data.y, cols["y"])


def test_a_parquet_file_replaced_while_it_is_read_is_named(tmp_path, monkeypatch):
    """Review HBW: with a read per column, a file replaced by a writer between
    them gave columns of two versions, a 1-row column stretched over every
    row, or a bare broadcasting error. The chosen columns come in one read;
    a file whose rows changed since its row count was read is an error
    naming it."""
    def write(n):
        pq.write_table(pa.table({"a": np.arange(n, dtype=float), "y": np.arange(n) % 2}),
                       tmp_path / "t.parquet")
    write(200)
    real = pq.read_table

    def replacing(source, *args, columns=None, **kwargs):
        out = real(source, *args, columns=columns, **kwargs)
        if columns == []:   # the row count's read: the writer replaces the file now
            write(1)
        return out

    monkeypatch.setattr(pq, "read_table", replacing)
    with pytest.raises(cli.CLIError, match=r"t.parquet changed while it was read \(200 rows,"
                       r" then 1\)"):
        cli.load_data(str(tmp_path / "t.parquet"))


def test_a_parquet_file_trains_and_predicts_with_string_labels(tmp_path, capsys):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(300, 2))
    kind = np.array(["no", "yes"])[(X[:, 0] + X[:, 1] > 0).astype(int)]
    pq.write_table(pa.table({"x1": X[:, 0], "x2": X[:, 1], "kind": kind}), tmp_path / "d.parquet")
    model = str(tmp_path / "m.npz")
    status, out, _ = run(["train", str(tmp_path / "d.parquet"), "--epochs", "20", "--hidden", "8",
                          "--verbose", "0", "--out", model], capsys)
    assert status == 0 and "2 classes" in out
    status, out, _ = run(["predict", model, str(tmp_path / "d.parquet")], capsys)
    printed = out.split()
    assert status == 0 and printed == fastbp.load(model).predict(X).tolist()
    assert np.mean(np.array(printed) == kind) > 0.9


# ------------------------------------------------------------ bad files
@pytest.mark.parametrize("cell", ["", "NA", "nan"])
def test_a_missing_value_after_the_first_block_is_named_by_line(tmp_path, capsys, reader, cell):
    rows = [[i, i % 7, i % 2] for i in range(200000)]
    rows[150000][1] = cell
    path = write_text(tmp_path / "late.csv", ["a", "b", "y"], rows)
    model = tmp_path / "m.npz"
    status, out, err = run(["train", path, "--out", str(model), "--verbose", "0"], capsys)
    assert status == 2 and out == "" and not model.exists()
    assert err == (f"fastbp: error: {path}: a missing value {cell!r} in column 'b' at line 150002"
                   " (data row 150001); fastbp does not fill in missing values: complete or drop"
                   " that row\n")


@pytest.mark.parametrize("value,shown", [(None, "(null)"), (float("nan"), "'nan'"),
                                         (float("inf"), "'inf'")])
def test_a_missing_value_in_parquet_is_named_by_row_and_column(tmp_path, capsys, value, shown):
    b = [0.5 * i for i in range(10)]
    b[3] = value
    pq.write_table(pa.table({"a": list(range(10)), "b": pa.array(b, pa.float64()),
                             "y": ["p", "q"] * 5}), tmp_path / "h.parquet")
    model = tmp_path / "m.npz"
    status, out, err = run(["train", str(tmp_path / "h.parquet"), "--out", str(model)], capsys)
    what = "an infinite value" if shown == "'inf'" else "a missing value"
    assert status == 2 and not model.exists()
    assert f"h.parquet: {what} {shown} in column 'b' at row 4; fastbp does not fill in" in err


def test_a_null_text_cell_in_parquet_is_refused(tmp_path, capsys):
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "y": ["p", None, "q"]}), tmp_path / "t.parquet")
    status, _, err = run(["train", str(tmp_path / "t.parquet")], capsys)
    assert status == 2 and "a missing value (null) in column 'y' at row 2" in err


def test_an_unreadable_parquet_file_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    bad = tmp_path / "broken.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "y": [0, 1]}), bad)
    bad.write_bytes(bad.read_bytes()[:-20])  # the footer cut off
    model = tmp_path / "m.npz"
    status, out, err = run(["train", str(bad), "--out", str(model)], capsys)
    assert status == 2 and out == "" and not model.exists()
    assert err.startswith(f"fastbp: error: cannot read {bad} as Parquet: ")


def test_a_rejected_predict_writes_nothing_and_leaves_the_model_file(tmp_path, capsys):
    good = write_text(tmp_path / "g.csv", ["a", "b", "y"], [[i, i % 3, i % 2] for i in range(40)])
    model = tmp_path / "m.npz"
    assert main(["train", good, "--epochs", "1", "--verbose", "0", "--out", str(model)]) == 0
    before = model.read_bytes()
    holes = write_text(tmp_path / "h.csv", ["a", "b", "y"], [[1, 2, 0], [3, "", 1]])
    out = tmp_path / "p.csv"
    status, _, err = run(["predict", str(model), holes, "--out", str(out)], capsys)
    assert status == 2 and "a missing value '' in column 'b' at line 3 (data row 2)" in err
    assert not out.exists() and model.read_bytes() == before


# ------------------------------------------------------------ columns
def id_table(tmp_path, n=60):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(n, 2))
    rows = [[f"u{i:04d}", a, b, int(a > 0)] for i, (a, b) in enumerate(X)]
    return write_text(tmp_path / "ids.csv", ["id", "a", "b", "y"], rows), X


def test_an_identifier_column_is_refused_with_the_hint_then_dropped(tmp_path, capsys, reader):
    path, X = id_table(tmp_path)
    status, _, err = run(["train", path, "--verbose", "0"], capsys)
    assert status == 2 and "column 'id' holds a different text value in every row" in err
    assert "--drop id" in err
    model = str(tmp_path / "m.npz")
    status, out, _ = run(["train", path, "--drop", "id", "--epochs", "1", "--verbose", "0",
                          "--out", model], capsys)
    assert status == 0 and "2 features" in out
    net = fastbp.load(model)
    assert net.metadata["features"] == ["a", "b"] and net.sizes[0] == 2 and net.categories is None
    status, out, _ = run(["predict", model, path], capsys)  # the id column is simply not read
    assert status == 0 and out.split() == [str(v) for v in net.predict(X).tolist()]


def test_features_choose_the_columns_in_their_order(tmp_path, capsys, reader):
    path, X = id_table(tmp_path)
    model = str(tmp_path / "m.npz")
    status, out, _ = run(["train", path, "--features", "b,a", "--epochs", "1", "--verbose", "0",
                          "--out", model], capsys)
    assert status == 0 and "2 features" in out
    net = fastbp.load(model)
    assert net.metadata["features"] == ["b", "a"]
    rows = np.column_stack([X[:, 1], X[:, 0]])
    train = fastbp.datasets.train_test_split(rows, np.zeros(len(rows)), test_fraction=0.2, seed=0)[0]
    np.testing.assert_array_equal(net.input_mean, train.mean(axis=0))  # b's mean first
    status, out, _ = run(["predict", model, path], capsys)
    assert out.split() == [str(v) for v in net.predict(rows).tolist()]


@pytest.mark.parametrize("argv,message", [
    (["--features", "a,zzz"], "--features names ['zzz'] that are not columns of"),
    (["--drop", "nope"], "--drop names ['nope'] that are not columns of"),
    (["--features", "a,y"], "--features lists the target column 'y'"),
    # review EA: accepted, and the target trained on as ever
    (["--drop", "id,y"], "--drop names the target column 'y', which is never a feature"),
    (["--target", "a", "--drop", "a"], "--drop names the target column 'a'"),
    (["--drop", "id,a,b"], "has no feature columns left after --drop id,a,b"),
    (["--features", "a,,b"], "--features must be comma-separated column names"),
])
def test_bad_column_choices_are_clear_errors(tmp_path, capsys, argv, message):
    path, _ = id_table(tmp_path)
    status, _, err = run(["train", path, "--verbose", "0"] + argv, capsys)
    assert status == 2 and message in err


# ------------------------------------------------------------ categories
def colour_table(tmp_path, n=400, seed=4, colours=("red", "green", "blue"), name="c.csv"):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    colour = np.array(colours)[rng.integers(0, len(colours), size=n)]
    y = np.where(colour == "red", a > 0.5, np.where(colour == "green", a > -0.5, a > 0)).astype(int)
    rows = [[round(v, 6), c, round(v * v, 6), t] for v, c, t in zip(a, colour, y)]
    path = write_text(tmp_path / name, ["a", "colour", "a2", "y"], rows)
    raw = np.array([[r[0], r[1], r[2]] for r in rows], dtype=object)
    return path, raw, y


def manual_inputs(net, raw):
    """Independent reference: one-hot by hand, then (x - mean) / scale."""
    labels = net.categories[1]
    codes = np.array([[1.0 if c == label else 0.0 for label in labels] for c in raw[:, 1]])
    X = np.column_stack([raw[:, 0].astype(float), codes, raw[:, 2].astype(float)])
    return (X - net.input_mean) / net.input_scale


def bare(net):
    plain = copy.deepcopy(net)
    plain.categories = None
    plain.set_input_scaling(None, None)
    plain.classes_ = None
    return plain


def test_text_columns_become_categories_of_the_model(tmp_path, capsys, reader):
    path, raw, y = colour_table(tmp_path)
    model = str(tmp_path / "m.npz")
    status, out, _ = run(["train", path, "--epochs", "30", "--hidden", "16", "--dtype", "float64",
                          "--verbose", "0", "--out", model], capsys)
    assert status == 0 and "3 features" in out
    net = fastbp.load(model)
    assert net.categories == {1: ["blue", "green", "red"]} and net.sizes[0] == 5
    assert net.n_columns == 3
    # The codes enter unscaled; the numbers are standardised.
    np.testing.assert_array_equal(net.input_mean[1:4], 0.0)
    np.testing.assert_array_equal(net.input_scale[1:4], 1.0)
    # The Python API on raw rows, the command line and a hand-built encoding agree.
    status, out, _ = run(["predict", model, path], capsys)
    assert status == 0 and out.split() == [str(v) for v in net.predict(raw).tolist()]
    np.testing.assert_allclose(net.predict_proba(raw), bare(net).forward(manual_inputs(net, raw)),
                               rtol=1e-12, atol=1e-15)
    assert np.mean(net.predict(raw) == y) > 0.8  # it learnt from the colour
    status, out, _ = run(["info", model], capsys)
    assert "categories: colour: ['blue', 'green', 'red']" in out
    assert "categories={1: 3}" in out.splitlines()[0]


def test_bool_and_date_columns_are_text_to_both_readers(tmp_path, capsys, reader):
    """pyarrow would infer true/false as booleans and a timestamp as a time:
    both readers read them as the text they are (categories), so a model
    trained with pyarrow predicts the same file without it, and back."""
    stamps = ["2024-01-01 10:00:00", "2024-01-02", "2024-01-01 10:00:00", "2024-01-03T07:30"]
    rows = [[i, ["true", "false", "True", "false"][i % 4], stamps[i % 4], i % 2] for i in range(40)]
    path = write_text(tmp_path / "b.csv", ["a", "flag", "when", "y"], rows)
    data = cli.load_data(path)
    assert data.features == ["a", "flag", "when"]
    assert data.categories == {1: ["True", "false", "true"],
                               2: ["2024-01-01 10:00:00", "2024-01-02", "2024-01-03T07:30"]}
    model = str(tmp_path / "m.npz")
    status, _, _ = run(["train", path, "--epochs", "1", "--verbose", "0", "--out", model], capsys)
    assert status == 0
    status, out, _ = run(["predict", model, path], capsys)
    assert status == 0 and len(out.split()) == 40


def test_a_file_that_is_not_utf8_is_a_clear_error(tmp_path, capsys, reader):
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"a,c,y\n1,caf\xe9,0\n2,th\xe9,1\n3,caf\xe9,0\n")
    model = tmp_path / "m.npz"
    status, out, err = run(["train", str(path), "--out", str(model)], capsys)
    assert status == 2 and out == "" and not model.exists()
    assert err == (f"fastbp: error: {path}: column 'c' at line 2 (data row 1) holds bytes that"
                   " are not UTF-8 text (b'\\xe9'); fastbp reads CSV files as UTF-8: convert the"
                   " file (iconv -f latin1 -t utf-8, say), or train without the column (--drop)\n")
    # the bad byte named by its line far into the file (it was a position in
    # Python's decoding buffer), and a column left out is not read, by
    # either reader (pyarrow's converts only the columns it is asked for)
    rows = [[i, "ok", i % 2] for i in range(20000)]
    rows[19990][1] = "caf\xe9"
    far = tmp_path / "far.csv"
    far.write_bytes(("a,c,y\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
                    .encode("latin1"))
    status, _, err = run(["train", str(far), "--epochs", "1"], capsys)
    assert status == 2 and f"{far}: column 'c' at line 19992 (data row 19991) holds bytes" in err
    status, out, _ = run(["train", str(far), "--drop", "c", "--epochs", "1", "--out",
                          str(model)], capsys)
    assert status == 0 and model.exists()


def test_a_row_of_blank_cells_is_a_row_of_missing_values(tmp_path, capsys, reader):
    """An empty line is skipped by both readers; a line of blank cells is a
    row, named by its own line."""
    path = tmp_path / "blank.csv"
    path.write_text("a,b,y\n1,2,0\n\n,,\n3,4,1\n5,6,0\n")
    status, _, err = run(["train", str(path)], capsys)
    assert status == 2
    assert err == (f"fastbp: error: {path}: a missing value '' in column 'a' at line 4"
                   " (data row 2); fastbp does not fill in missing values: complete or drop that row\n")


def test_a_stray_number_in_a_text_column_is_named(tmp_path, capsys, reader):
    rows = [[i, ["red", "blue"][i % 2], i % 2] for i in range(10)]
    rows[6][1] = "3.5"
    path = write_text(tmp_path / "mix.csv", ["a", "colour", "y"], rows)
    status, _, err = run(["train", path], capsys)
    assert status == 2
    assert err == (f"fastbp: error: {path}: column 'colour' holds text but line 8 (data row 7)"
                   " holds a number ('3.5'); a feature column holds numbers in every row, or text"
                   " in every row (categories); fastbp train leaves a column out with --drop\n")


def test_an_unseen_category_is_an_all_zero_code_reported_once(tmp_path, capsys):
    path, raw, _ = colour_table(tmp_path)
    model = str(tmp_path / "m.npz")
    assert main(["train", path, "--epochs", "3", "--dtype", "float64", "--verbose", "0",
                 "--out", model]) == 0
    capsys.readouterr()
    new, new_raw, _ = colour_table(tmp_path, n=50, seed=5, colours=("red", "purple", "teal"),
                                   name="new.csv")
    status, out, err = run(["predict", model, new], capsys)
    assert status == 0 and err.count("warning") == 1
    assert "not seen in training" in err and "['purple', 'teal']" in err
    net = fastbp.load(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        in_python = net.predict(new_raw)
    assert len(caught) == 1 and "['purple', 'teal']" in str(caught[0].message)
    assert out.split() == [str(v) for v in in_python.tolist()]
    reference = manual_inputs(net, new_raw)  # purple, teal: no 1 among the codes
    assert (np.abs(reference[new_raw[:, 1] != "red", 1:4]) == 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(net.predict_proba(new_raw), bare(net).forward(reference),
                                   rtol=1e-12, atol=1e-15)


def test_categories_round_trip_through_a_model_file_and_pickle(tmp_path):
    net = fastbp.MLP([4, 3, 2], seed=0, dtype="float64")
    net.categories = {0: ["x", "y", "z"]}
    net.save(tmp_path / "m.npz")
    back = fastbp.load(tmp_path / "m.npz")
    rows = np.array([["y", 0.5], ["z", -1.0], ["w", 2.0]], dtype=object)
    assert back.categories == {0: ["x", "y", "z"]} and back.n_columns == 2
    with pytest.warns(UserWarning, match=r"column 0: \['w'\]"):
        np.testing.assert_array_equal(back.forward(rows), net.forward(rows))
    import pickle
    assert pickle.loads(pickle.dumps(net)).categories == net.categories
    with np.load(tmp_path / "m.npz") as f:
        assert int(f["version"]) == 4 and f["category_labels"].tolist() == ["x", "y", "z"]


def test_a_version_3_file_without_categories_still_loads(tmp_path):
    net = fastbp.MLP([3, 2], seed=1)
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = {k: f[k] for k in f.files  # (version 3 had neither)
                  if not k.startswith("category_") and k != "members"}
    arrays["version"] = np.array(3)
    np.savez(tmp_path / "v3.npz", **arrays)
    back = fastbp.load(tmp_path / "v3.npz")
    assert back.categories is None
    np.testing.assert_array_equal(back.params, net.params)


@pytest.mark.parametrize("value,error,message", [
    ({5: ["a", "b"]}, ValueError, "do not fit the network's 4 inputs"),
    ({0: ["a", "a"]}, ValueError, "distinct labels"),
    ({0: []}, TypeError, "non-empty list of text labels"),
    ({0: [1, 2]}, TypeError, "non-empty list of text labels"),
    ({-1: ["a"]}, TypeError, "column indices"),
    ([["a", "b"]], TypeError, "must be a dict"),
])
def test_bad_categories_are_refused_and_the_model_keeps_its_own(value, error, message):
    net = fastbp.MLP([4, 2], seed=0)
    net.categories = {1: ["p", "q"]}
    with pytest.raises(error, match=message):
        net.categories = value
    assert net.categories == {1: ["p", "q"]}


def test_a_category_column_must_hold_text_and_a_numeric_one_numbers():
    net = fastbp.MLP([4, 2], seed=0)
    net.categories = {1: ["p", "q"]}
    params = net.params.copy()
    with pytest.raises(TypeError, match="X column 1 is a category column and must hold text"):
        net.predict(np.array([[1.0, 2.0, 3.0]]))
    with pytest.raises(TypeError, match="X column 2 must hold numbers"):
        net.predict(np.array([[1.0, "p", "z"]], dtype=object))
    with pytest.raises(ValueError, match=r"raw rows of 3 columns"):
        net.predict(np.zeros((2, 4)))
    np.testing.assert_array_equal(net.params, params)


def test_standardize_leaves_the_codes_unscaled():
    net = fastbp.MLP([4, 2], seed=0, dtype="float64")
    net.categories = {1: ["p", "q", "r"]}
    rows = np.array([[1.0, "p"], [3.0, "q"], [8.0, "p"]], dtype=object)
    net.standardize(rows)
    a = np.array([1.0, 3.0, 8.0])
    np.testing.assert_array_equal(net.input_mean, [a.mean(), 0, 0, 0])
    np.testing.assert_array_equal(net.input_scale, [a.std(), 1, 1, 1])


def csv_text_rows(path, names):
    """The named columns of a CSV file as text, as a server would pass them on."""
    import csv
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    idx = [rows[0].index(name) for name in names]
    return np.array([[r[i] for i in idx] for r in rows[1:]], dtype=object)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_cli_export_of_a_model_with_categories_takes_the_csv_rows(tmp_path, capsys, task):
    """train -> export -> ONNX Runtime on the CSV's rows as strings (an unseen
    colour among them) answers what `fastbp predict` answers."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the test extra")
    pytest.importorskip("onnx", reason="onnx is in the test extra")
    path, _, _ = colour_table(tmp_path)
    model, onnx_path = str(tmp_path / "m.npz"), str(tmp_path / "m.onnx")
    argv = ["--epochs", "5", "--verbose", "0", "--out", model]
    if task == "regression":  # float64, a numeric target in the targets' units
        argv += ["--target", "a2", "--task", "regression", "--dtype", "float64"]
    assert main(["train", path] + argv) == 0
    capsys.readouterr()
    status, out, _ = run(["export", model, onnx_path], capsys)
    assert status == 0 and "input X: 3 text columns" in out
    net = fastbp.load(model)
    assert net.categories == {1: ["blue", "green", "red"]}
    new, _, _ = colour_table(tmp_path, n=50, seed=5, colours=("red", "purple", "teal"),
                             name="new.csv")
    X = csv_text_rows(new, net.metadata["features"])
    assert "purple" in X[:, 1]
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"X": X})))
    status, out, err = run(["predict", model, new], capsys)
    assert status == 0 and "not seen in training" in err
    if task == "regression":
        want = np.array(out.split(), dtype=np.float64)
        assert got["values"].shape == (50, 1)
        np.testing.assert_allclose(got["values"][:, 0], want, rtol=1e-12, atol=1e-12)
        return
    assert [str(v) for v in got["label"].tolist()] == out.split()
    status, out, _ = run(["predict", model, new, "--proba"], capsys)
    lines = out.splitlines()
    proba = np.array([line.split(",") for line in lines[1:]], dtype=np.float64)
    assert lines[0] == "0,1" and proba.shape == (50, 2)
    p = got["probabilities"]
    p = np.hstack([1 - p, p]) if p.shape[1] == 1 else p
    np.testing.assert_allclose(p, proba, rtol=0, atol=1e-5)


# ------------------------------------------------------------ npy, npz
def test_npy_files_are_memory_mapped(tmp_path, capsys):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(300, 3))
    data = np.column_stack([X, (X[:, 0] > 0).astype(float)])
    np.save(tmp_path / "d.npy", data)
    model = str(tmp_path / "m.npz")
    status, out, _ = run(["train", str(tmp_path / "d.npy"), "--epochs", "5", "--verbose", "0",
                          "--out", model], capsys)
    assert status == 0 and "3 features" in out and "2 classes" in out
    net = fastbp.load(model)
    assert net.metadata["features"] == ["x0", "x1", "x2"] and net.metadata["target"] == "x3"
    np.save(tmp_path / "rows.npy", X)
    rows = cli.load_data(str(tmp_path / "rows.npy"), "x3", need_target=False,
                         feature_names=["x0", "x1", "x2"])
    assert isinstance(rows.X, np.memmap)  # the file's pages, not a copy
    np.testing.assert_array_equal(rows.X, X)
    status, out, _ = run(["predict", model, str(tmp_path / "rows.npy")], capsys)
    assert status == 0 and out.split() == [str(v) for v in net.predict(X).tolist()]


def test_a_nan_in_a_memory_map_is_named_by_row_and_column(tmp_path, capsys):
    fastbp.MLP([8192, 2, 2], seed=0).save(tmp_path / "m.npz")
    X = np.arange(60.0).reshape(20, 3)
    X[13, 1] = np.nan
    np.save(tmp_path / "d.npy", X)
    status, _, err = run(["train", str(tmp_path / "d.npy")], capsys)
    assert status == 2 and "d.npy: a missing value 'nan' in column 'x1' at row 14" in err
    # past the first block of rows checked (4 Mi values: 512 rows of 8,192
    # columns), still by its row in the file (review HGJ: a row counted from
    # its block went uncaught)
    X = np.zeros((700, 8192), np.float32)
    X[600, 8190] = np.inf
    np.save(tmp_path / "wide.npy", X)
    status, _, err = run(["predict", str(tmp_path / "m.npz"), str(tmp_path / "wide.npy")], capsys)
    assert status == 2 and "wide.npy: an infinite value" in err and "'x8190' at row 601" in err


def test_a_sparse_npz_is_recognised(tmp_path, capsys):
    import scipy.sparse
    M = scipy.sparse.random(30, 4, density=0.3, format="csr", random_state=0)
    scipy.sparse.save_npz(tmp_path / "s.npz", M)
    found = _reader.sparse_npz(str(tmp_path / "s.npz"))
    assert scipy.sparse.issparse(found) and (found != M).nnz == 0
    np.savez(tmp_path / "dense.npz", X=M.toarray(), y=np.arange(30) % 2)
    assert _reader.sparse_npz(str(tmp_path / "dense.npz")) is None
    model = str(tmp_path / "m.npz")
    assert main(["train", str(tmp_path / "dense.npz"), "--epochs", "1", "--verbose", "0",
                 "--out", model]) == 0
    capsys.readouterr()
    # A model `fastbp train` wrote standardises its inputs, which would make
    # a sparse X dense: a clear error, no traceback.
    status, out, err = run(["predict", model, str(tmp_path / "s.npz")], capsys)
    assert status == 2 and "holds a scipy.sparse matrix, but this model standardises" in err
    # A model without input scaling takes the sparse rows as they are.
    net = fastbp.MLP([4, 3, 2], seed=0)
    net.fit(M.toarray(), np.arange(30) % 2, epochs=2, verbose=0)
    plain = str(tmp_path / "plain.npz")
    net.save(plain)
    status, out, err = run(["predict", plain, str(tmp_path / "s.npz")], capsys)
    assert status == 0, err
    assert out.split() == [str(v) for v in net.predict(M.toarray()).tolist()]


# ------------------------------------------------------------ the fast CSV path
def mixed_csv(path, rows=60000, seed=11):
    """Numbers the first block types as integers and later ones as floats,
    17 significant digits, exponents, an identifier, a text feature and a
    text target: every kind of column the fast path treats."""
    rng = np.random.default_rng(seed)
    header = ["id", "count", "x", "tiny", "colour", "kind"]
    count = rng.integers(-50, 50, size=rows).astype(object)
    count[rows // 2:] = [f"{v}.5" for v in count[rows // 2:]]  # ints, then floats
    x = rng.normal(size=rows) * 1e3
    tiny = rng.normal(size=rows) * 1e-200
    colour = np.array(["red", "green", "blue"])[rng.integers(0, 3, size=rows)]
    kind = np.where(x > 0, "up", "down")
    with open(path, "w") as fh:
        fh.write(",".join(header) + "\n")
        for i in range(rows):
            fh.write(f"id{i},{count[i]},{float(x[i])!r},{tiny[i]:.17g},{colour[i]},{kind[i]}\n")
    return str(path)


def slow_table(path, monkeypatch):
    """The reference readers: Python's csv module, and pyarrow reading every
    cell as text (the path a file the fast path cannot convert takes)."""
    with monkeypatch.context() as m:
        m.setattr(_reader, "have_arrow", lambda: False)
        python = cli.load_data(path, drop=["id"])
    with monkeypatch.context() as m:
        m.setattr(_reader, "read_csv", lambda p, streamed=True, _r=_reader.read_csv: _r(p, False))
        text = cli.load_data(path, drop=["id"])
    return python, text


@pytest.mark.parametrize("threads", [True, False])
def test_the_fast_csv_path_reads_the_slow_paths_bits(tmp_path, monkeypatch, threads):
    monkeypatch.setattr(_reader, "BLOCK", 1 << 20)
    monkeypatch.setattr(_reader, "FIRST", 1 << 16)
    monkeypatch.setattr(_reader, "free_cores", lambda: threads)
    path = mixed_csv(tmp_path / "m.csv")
    assert os.path.getsize(path) > 3 * _reader.BLOCK
    table = _reader.read_table(path)
    assert isinstance(table, _reader.StreamedCSV)
    assert table._types[1] == pa.int64()  # the first block saw integers in 'count'
    calls, read_csv = [], _reader.read_csv
    with monkeypatch.context() as m:  # read once, by the fast path: no second reading
        m.setattr(_reader, "read_csv", lambda p, streamed=True: calls.append(streamed)
                  or read_csv(p, streamed))
        fast = cli.load_data(path, drop=["id"])
    assert calls == [True]
    for slow in slow_table(path, monkeypatch):
        assert fast.X.dtype == slow.X.dtype == np.float64 and fast.X.flags.c_contiguous
        assert fast.X.tobytes() == slow.X.tobytes()
        assert fast.y.tolist() == slow.y.tolist() and fast.categories == slow.categories
        assert fast.features == slow.features == ["count", "x", "tiny", "colour"]


def test_the_fast_csv_path_trains_the_slow_paths_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(_reader, "BLOCK", 1 << 20)
    path = mixed_csv(tmp_path / "m.csv", rows=20000)
    models = []
    for fast in (True, False):
        with monkeypatch.context() as m:
            if not fast:
                m.setattr(_reader, "have_arrow", lambda: False)
            out = str(tmp_path / f"{fast}.npz")
            status, _, err = run(["train", path, "--drop", "id", "--epochs", "2", "--hidden", "8",
                                  "--verbose", "0", "--out", out], capsys)
            assert status == 0, err
            models.append(fastbp.load(out))
    a, b = models
    assert a.params.tobytes() == b.params.tobytes()
    assert a.input_mean.tobytes() == b.input_mean.tobytes()
    assert a.input_scale.tobytes() == b.input_scale.tobytes()
    assert a.categories == b.categories and a.classes_.tolist() == b.classes_.tolist()
    assert a.history["loss"] == b.history["loss"]


def test_a_numeric_column_that_turns_to_text_later_is_refused_as_before(tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.setattr(_reader, "FIRST", 1 << 16)
    rows = [[i, i % 7, i % 2] for i in range(30000)]
    rows[25000][1] = "seven"
    path = write_text(tmp_path / "late.csv", ["a", "b", "y"], rows)
    status, out, err = run(["train", path, "--verbose", "0"], capsys)
    assert status == 2 and out == ""
    assert err == (f"fastbp: error: {path}: column 'b' is not numeric (data row 25001: 'seven'); a"
                   " feature column holds numbers in every row, or text in every row"
                   " (categories); fastbp train leaves a column out with --drop\n")


@pytest.mark.parametrize("cell,what", [("inf", "an infinite value"), ("-nan", "a missing value")])
def test_a_non_finite_number_after_the_first_block_is_named(tmp_path, capsys, monkeypatch, cell,
                                                            what):
    monkeypatch.setattr(_reader, "FIRST", 1 << 16)
    rows = [[i * 0.5, i % 7, i % 2] for i in range(30000)]
    rows[27000][0] = cell
    path = write_text(tmp_path / "late.csv", ["a", "b", "y"], rows)
    status, out, err = run(["train", path, "--verbose", "0"], capsys)
    assert status == 2 and out == ""
    assert err == (f"fastbp: error: {path}: {what} {cell!r} in column 'a' at line 27002 (data row"
                   " 27001); fastbp does not fill in missing values: complete or drop that row\n")


def test_large_rows_come_in_ordinary_pages_and_standardise_alike(monkeypatch):
    rng = np.random.default_rng(3)
    A = rng.normal(2, 3, size=(5000, 7))
    mean, scale = _preprocess.mean_std(A)
    small = _preprocess.standardise(A, mean, scale, np.float32)
    monkeypatch.setattr(_preprocess, "PAGED", 1)
    big = _preprocess.standardise(A, mean, scale, np.float32)
    assert isinstance(big.base, memoryview) or big.base is not None
    assert big.flags.c_contiguous and big.flags.writeable and big.dtype == np.float32
    np.testing.assert_array_equal(big, small)
    np.testing.assert_array_equal(big, ((A - mean) / scale).astype(np.float32))
    E = _preprocess.empty_rows((3, 4), np.float64)
    assert E.shape == (3, 4) and E.flags.c_contiguous and E.flags.writeable
    assert _preprocess.empty_rows((0, 4), np.float64).shape == (0, 4)


# ------------------------------------------------------------ mechanisms
def test_blocked_statistics_are_numpys_to_the_bit():
    rng = np.random.default_rng(7)
    for A in (rng.normal(3, 2, size=(20001, 3)), (rng.normal(size=(30000, 5)) * 7).astype(np.float32)):
        mean, scale = _preprocess.mean_std(A)
        B = A.astype(np.float64)
        np.testing.assert_array_equal(mean, B.mean(axis=0))
        np.testing.assert_array_equal(scale, B.std(axis=0))
        out = _preprocess.standardise(A, mean, scale, np.float32)
        np.testing.assert_array_equal(out, ((B - mean) / scale).astype(np.float32))


def test_an_in_place_split_is_the_copying_split():
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(1001, 4)), rng.integers(0, 5, size=1001)
    expected = fastbp.datasets.train_test_split(X, y, test_fraction=0.3, seed=3)
    Xc, yc = X.copy(), y.copy()
    got = fastbp.datasets.train_test_split(Xc, yc, test_fraction=0.3, seed=3, copy=False)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)
    assert np.shares_memory(got[0], Xc) and np.shares_memory(got[1], Xc)
    with pytest.raises(ValueError, match="permutes X in place"):
        fastbp.datasets.train_test_split(X[:, :2], y, copy=False)


def test_the_digits_are_scikit_learns_and_split_in_place():
    """Review GB: load_digits' X was a column slice of the file's table, so
    train_test_split(*load_digits(), copy=False) refused it (not C-contiguous)."""
    sk = pytest.importorskip("sklearn.datasets")
    X, y = fastbp.datasets.load_digits()
    X_sk, y_sk = sk.load_digits(return_X_y=True)
    assert X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(X, X_sk)
    np.testing.assert_array_equal(y, y_sk)
    expected = fastbp.datasets.train_test_split(X, y, seed=5)
    got = fastbp.datasets.train_test_split(X, y, seed=5, copy=False)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float16, ">f8", object, np.longdouble, np.clongdouble,
                                   "V8"])
def test_an_in_place_split_of_any_writable_array(dtype):
    """float16, big-endian and object arrays failed in Numba's typing
    (NotImplementedError, "non-precise type pyobject"), as did longdouble and
    void ones (review GB, a TypingError): they are permuted as bytes, or by
    NumPy for references."""
    X = np.arange(42).reshape(21, 2)
    X = X.view(dtype) if dtype == "V8" else X.astype(dtype)
    y = np.arange(21.0)
    expected = fastbp.datasets.train_test_split(X, y, test_fraction=0.3, seed=3)
    Xc, yc = X.copy(), y.copy()
    got = fastbp.datasets.train_test_split(Xc, yc, test_fraction=0.3, seed=3, copy=False)
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert np.shares_memory(got[0], Xc)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_large_rows_are_private_to_the_process_as_np_empty_memory_is():
    """empty_rows' memory map is private: a forked child's writes stay its
    own (a shared map leaked them into the parent)."""
    from fastbp._preprocess import PAGED, empty_rows
    a = empty_rows((PAGED // 8 + 1024, 1), np.float64)
    a[:] = 0
    pid = os.fork()
    if pid == 0:
        a[0, 0] = 42
        os._exit(0)
    os.waitpid(pid, 0)
    assert a[0, 0] == 0


# ------------------------------------------------ found in review (2026-12-05)
def test_a_text_column_does_not_read_the_file_a_second_time(tmp_path, monkeypatch):
    # The line numbers (for an error's message only) were found for every
    # text column by reading the whole file again with Python's csv module:
    # a file with a yes/no label loaded 7x slower than the same with 0/1.
    rows = [[i, i % 7, ["no", "yes"][i % 2]] for i in range(500)]
    path = write_text(tmp_path / "labels.csv", ["a", "b", "y"], rows)
    reads = []
    real = _reader.PythonCSV.__init__
    monkeypatch.setattr(_reader.PythonCSV, "__init__",
                        lambda self, p: (reads.append(p), real(self, p))[1])
    data = cli.load_data(path, target="y")
    assert reads == [] and data.X.shape == (500, 2)
    rows[300][2] = "NA"  # an error still names its line, read for it
    write_text(tmp_path / "labels.csv", ["a", "b", "y"], rows)
    with pytest.raises(_reader.CLIError, match=r"line 302 \(data row 301\)"):
        cli.load_data(path, target="y")
    assert len(reads) == 1


def test_a_gzipped_csv_reads_the_same_with_either_reader(tmp_path, reader):
    import gzip
    rows = [[i, i % 7, ["no", "yes"][i % 2]] for i in range(50)]
    plain = write_text(tmp_path / "d.csv", ["a", "b", "y"], rows)
    packed = tmp_path / "d.csv.gz"
    with open(plain, "rb") as src, gzip.open(packed, "wb") as dst:
        dst.write(src.read())
    a, b = cli.load_data(plain, target="y"), cli.load_data(str(packed), target="y")
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)


def test_a_number_too_large_for_a_float_is_an_infinite_value_to_both_readers(tmp_path, capsys,
                                                                            reader):
    rows = [[i, i % 7, i % 2] for i in range(20)]
    rows[1][1] = "1e400"
    path = write_text(tmp_path / "big.csv", ["a", "b", "y"], rows)
    status, _, err = run(["train", path], capsys)
    assert status == 2 and "an infinite value '1e400' in column 'b' at line 3" in err


def test_a_target_too_large_for_a_float_is_named_by_line_not_a_traceback(tmp_path, capsys,
                                                                          reader):
    """1e400 in the target column, read as text (a hex cell elsewhere sends
    pyarrow to its whole-file read; Python's reader reads text): it was
    taken as the label inf, and train ended in a traceback."""
    rows = [["0x10", i, [3, 4][i % 2]] for i in range(6)]
    rows[0][2] = "1e400"
    path = write_text(tmp_path / "hex.csv", ["h", "a", "y"], rows)
    status, _, err = run(["train", path, "--epochs", "1"], capsys)
    assert status == 2 and err == (f"fastbp: error: {path}: an infinite value '1e400' in column"
                                   " 'y' at line 2 (data row 1); fastbp does not fill in missing"
                                   " values: complete or drop that row\n")
    if reader == "python":
        return   # (Parquet needs pyarrow)
    # A Parquet string column holds text labels as written (review HEB):
    # '1e400' is a class; read as numbers for a regression, it is refused.
    pq.write_table(pa.table({"a": [1.0, 2, 3, 4, 5], "y": ["3", "1e400", "4", "3", "4"]}),
                   tmp_path / "y.parquet")
    status, _, err = run(["train", str(tmp_path / "y.parquet"), "--epochs", "1", "--task",
                          "regression"], capsys)
    assert status == 2 and "an infinite value '1e400' in column 'y' at row 2;" in err
    np.savez(tmp_path / "y.npz", X=np.arange(5.0)[:, None], y=np.array(["3", "1e400", "4", "3",
                                                                          "4"]))
    status, _, err = run(["train", str(tmp_path / "y.npz"), "--epochs", "1", "--task",
                          "regression"], capsys)
    assert status == 2 and "an infinite value '1e400' in column 'y' at row 2;" in err
    status, out, err = run(["train", str(tmp_path / "y.parquet"), "--epochs", "1", "--verbose",
                            "0"], capsys)
    assert status == 0 and "3 classes" in out, err


def test_a_quote_never_closed_in_the_last_column_is_refused(tmp_path, capsys, reader):
    """Both parsers read a quote left open in the last column as a cell
    holding the rest of the file (a 1,000-row file trained on 3 rows, status
    0); Python's csv with strict=True refuses it. A multi-line cell that is
    closed is read as before."""
    lines = ["a,c"] + [f"{i},{['blue', 'red'][i % 2]}" for i in range(1000)]
    lines[3] = '2,"blue'
    path = tmp_path / "open.csv"
    path.write_text("\n".join(lines) + "\n")
    status, out, err = run(["train", str(path), "--target", "a", "--epochs", "1"], capsys)
    assert status == 2 and out == ""
    assert err == (f"fastbp: error: {path}: the quoted cell in column 'c' at data row 3 is never"
                   " closed: it runs to the end of the file, taking in the 997 lines after its"
                   " own; close its quote\n")
    closed = tmp_path / "closed.csv"
    closed.write_text('a,b,y\n1,2,3\n4,5,"6\n7"\n8,9,"x\ny"\n')
    data = cli.load_data(str(closed), target="y")
    assert data.X.tolist() == [[1, 2], [4, 5], [8, 9]] and list(data.y) == ["3", "6\n7", "x\ny"]


@pytest.mark.parametrize("target", ["c", "b"])
def test_a_closing_quote_lost_inside_the_file_is_refused(tmp_path, capsys, reader, target):
    """Review HHF: a quoted cell that lost its closing quote took in the line
    break and the next row up to that row's first quote (``"yes`` then
    ``0.37,2,"no"`` read as one cell ``yes\n0.37,2,no"``): 199 rows of 200
    trained on, the merged cell a class (or a category) of its own, status 0,
    with either reader. Python's csv in its strict mode refuses it, and is
    asked whenever a text cell holds a line break (review HIF: a quote that
    held none, the next quote an inch mark, went through); a quote doubled
    inside a quoted cell with a line break, and spaces after a closing
    quote, read as before."""
    import csv
    rng = np.random.default_rng(0)
    lines = ["a,b,c"] + [f'{rng.random():.3f},{i % 3},"{["yes", "no"][i % 2]}"'
                         for i in range(200)]
    lines[50] = lines[50][:-1]   # (data row 50, line 51: its closing quote lost)
    path = tmp_path / "lost.csv"
    path.write_text("\n".join(lines) + "\n")
    with open(path, newline="") as fh:   # (the lenient reading, pyarrow's as Python's)
        rows = list(csv.reader(fh))
    assert len(rows) == 200 and rows[50][2].startswith("no\n") and rows[50][2].endswith('"')
    status, out, err = run(["train", str(path), "--target", target, "--epochs", "1"], capsys)
    assert status == 2 and out == ""
    assert err == (f"fastbp: error: {path}, lines 51-52: a quoted cell does not end at its"
                   " closing quote (',' expected after '\"'): a quote never closed takes the"
                   " line breaks and rows after it into one cell, up to the next quote; close"
                   " each quoted cell's quote, and write a quote inside a quoted cell twice"
                   ' ("")\n'), err
    with pytest.raises(_reader.CLIError, match="lines 51-52: a quoted cell does not end"):
        _reader.read_csv(str(path), streamed=False)   # (the whole read, after a Reread)
    # The column left out (--drop) is read again for the check: a free-text
    # column, the one a user leaves out, is where quotes are lost; and line
    # ends of CR alone (review HIE: the checks' CR paths went untested).
    wide = [lines[0] + ",d"] + [f"{line},x" for line in lines[1:]]
    for end in ("\n", "\r"):
        path.write_bytes((end.join(wide) + end).encode())
        status, out, err = run(["train", str(path), "--target", "b", "--drop", "c",
                                "--epochs", "1"], capsys)
        assert status == 2 and out == "" and "lines 51-52: a quoted cell does not" in err, err
        with pytest.raises(_reader.CLIError, match="lines 51-52: a quoted cell does not end"):
            cli.load_data(str(path), target=target)
    # The next quote an inch mark: the merged cell holds no quote (2 rows of 4 read).
    path.write_text('a,b,c\n1,0,"yes\n2,1,no\n3,0,12" box\n4,1,no\n')
    with pytest.raises(_reader.CLIError, match="lines 2-4: a quoted cell does not end"):
        cli.load_data(str(path), target=target)
    # Every later quote an empty cell: the lost one runs to the file's end,
    # which ends in a quote (review HII: 1 row of 4 read, even with --drop).
    path.write_text('x1,b,c\n1.5,0,"check\n2.5,1,""\n3.5,0,""\n4.5,1,""\n')
    for drop in ([], ["c"] if target == "b" else []):
        with pytest.raises(_reader.CLIError, match=", line 2: a quoted cell there is never closed:"
                                                   " it runs to the end of the file, taking in"
                                                   " the 3 lines after its own"):
            cli.load_data(str(path), target=target, drop=drop)
    # The last row's cell open at the file's end, which ends in a quote
    # (review HIK: Python's reader read it, the record on one line).
    path.write_text('x,b,c\n1.5,0,""\n2.5,1,"say ""hi""\n')
    for drop in ([], ["c"] if target == "b" else []):
        with pytest.raises(_reader.CLIError, match=", line 3: a quoted cell there is never"
                                                   " closed: it runs to the end of the file;"):
            cli.load_data(str(path), target=target, drop=drop)
    # A bad closing quote on one line is named by its line.
    path.write_text('a,b,c\n1,0,"say ""hi""\nto x"\n2,1,"y"z\n')
    with pytest.raises(_reader.CLIError, match=", line 4: a quoted cell does not end"):
        cli.load_data(str(path), target=target)
    good = tmp_path / "good.csv"
    good.write_text('a,b,c\n1,0,"say ""hi""\nto x" \n2,1,"y"\t\n3,0,"say ""hi""\nto x"\v\f\n'
                    '4,1,y\n')
    data = cli.load_data(str(good), target="b")
    assert data.categories == {1: ['say "hi"\nto x', "y"]}
    assert data.X[:, 0].tolist() == [1, 2, 3, 4] and list(data.y) == [0, 1, 0, 1]


def test_a_closing_quote_lost_in_a_dropped_column_is_found_in_any_block(tmp_path, monkeypatch):
    # (review HIE) the column left out is read a block at a time: a lost
    # quote in the first of many blocks, not only the last
    monkeypatch.setattr(_reader, "BLOCK", 1 << 12)
    lines = ["a,b,c"] + [f'{i},{i % 3},"{["yes", "no"][i % 2]}"' for i in range(2000)]
    lines[51] = lines[51][:-1]
    path = tmp_path / "lost.csv"
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 5 * _reader.BLOCK
    with pytest.raises(_reader.CLIError, match="lines 52-53: a quoted cell does not end"):
        cli.load_data(str(path), target="b", drop=["c"])


def test_a_quote_never_closed_in_a_dropped_last_column_is_refused(tmp_path, capsys, reader,
                                                                  monkeypatch):
    """The streamed read left a column named by --drop unread, so a quote
    left open in the last column went unseen when that column was dropped
    (1,000 rows trained on as 3). Its bytes are read for the check alone: one
    that is not UTF-8 there stays unread as text (the file reads as before).
    The column is read again only in a file that holds quotes, a block at a
    time (read whole with the others, it held the peak memory of a wide text
    column the user left out)."""
    probes = []
    unread = _reader._unread_cells
    monkeypatch.setattr(_reader, "_unread_cells", lambda *a: probes.append(a) or unread(*a))
    lines = ["a,b,c"] + [f"{i},{i % 2},{['blue', 'red'][i % 2]}" for i in range(1000)]
    lines[3] = '2,0,"blue'
    path = tmp_path / "open.csv"
    path.write_text("\n".join(lines) + "\n")
    status, out, err = run(["train", str(path), "--target", "b", "--drop", "c", "--epochs", "1"],
                           capsys)
    assert status == 2 and out == ""
    assert err == (f"fastbp: error: {path}: the quoted cell in column 'c' at data row 3 is never"
                   " closed: it runs to the end of the file, taking in the 997 lines after its"
                   " own; close its quote\n")
    good = tmp_path / "good.csv"
    for text in (b"a,b,c\n1,0,x\n2,1,\xff\n3,0,\"p\nq\"\n",
                 b"a,b,c\n1,0,5\"\n2,1,\xff\n3,0,\"p\nq\"\n",   # (a stray quote, an inch mark)
                 b"a,b,c\n1,0,x\n2,1,\xff\n3,0,y\n"):               # (no quote: not read again)
        good.write_bytes(text)
        data = cli.load_data(str(good), target="b", drop=["c"])
        assert data.X.tolist() == [[1], [2], [3]] and list(data.y) == [0, 1, 0]
    assert len(probes) == (3 if reader == "arrow" else 0)
    # An inch mark evens the count of quotes: the open one is found all the same.
    lines[1] = '0,0,12"'   # (before the open one: after it, it would close it)
    path.write_text("\n".join(lines) + "\n")
    status, _, err = run(["train", str(path), "--target", "b", "--drop", "c", "--epochs", "1"],
                         capsys)
    assert status == 2 and "the quoted cell in column 'c' at data row 3 is never closed" in err


def test_a_truncated_compressed_csv_is_a_clear_error(tmp_path, capsys, reader):
    import bz2
    import gzip
    text = b"a,y\n" + b"".join(b"%d.25,%d\n" % (i, i % 2) for i in range(300000))
    for suffix, pack in ((".gz", gzip.compress), (".bz2", bz2.compress)):
        packed = pack(text)
        path = tmp_path / f"cut.csv{suffix}"
        path.write_bytes(packed[:len(packed) * 9 // 10])
        status, out, err = run(["train", str(path), "--epochs", "1"], capsys)
        assert status == 2 and out == "" and err.startswith(
            f"fastbp: error: cannot read {path} as CSV: "), err


def test_a_damaged_compressed_csv_is_worded_alike_by_either_reader(tmp_path, monkeypatch):
    """Review HAD: pyarrow worded a damaged .gz or .bz2 in its own terms
    ("Truncated compressed stream", "zlib inflate failed: incorrect header
    check"), Python's reader in its own, where data.md promises the same
    messages without pyarrow."""
    import bz2
    import gzip
    text = b"a,b,y\n" + b"".join(b"%d,%d,%d\n" % (i, 2 * i, i % 2) for i in range(5000))
    # (review HCD: a .gz whose deflate data is damaged, at its start or past
    # the first block, raised zlib.error, no OSError: a traceback, status 1)
    packed = bytearray(gzip.compress(text))
    packed[len(packed) * 3 // 4:len(packed) * 3 // 4 + 64] = b"\xff" * 64
    cases = {"cut.csv.gz": gzip.compress(text)[:2000], "plain.csv.gz": text,
             "cut.csv.bz2": bz2.compress(text)[:2000], "plain.csv.bz2": text,
             "junk.csv.gz": gzip.compress(b"")[:10] + b"\x00junk" * 50,
             "mid.csv.gz": bytes(packed)}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        words = []
        for arrow in (True, False):
            with monkeypatch.context() as m:
                if not arrow:
                    m.setattr(_reader, "have_arrow", lambda: False)
                with pytest.raises(cli.CLIError) as info:
                    cli.load_data(str(path))
                words.append(str(info.value))
        assert words[0] == words[1], name
        assert words[0].startswith(f"cannot read {path} as CSV: "), words


def test_a_record_over_several_lines_is_named_by_its_first_line(tmp_path, capsys, reader):
    """Review HAD: the errors named a record by its last line (line_num after
    it is read): a blank cell of a row whose quoted note spans lines 3-4 was
    "at line 4", where line 4 holds no such column (csv.reader's records
    start at line 3, as a text editor shows it)."""
    path = tmp_path / "notes.csv"
    path.write_text('a,b,note,y\n1,2,ok,0\n\n3,,"two\nlines",1\n5,6,ok,0\n')
    status, out, err = run(["train", str(path), "--epochs", "1"], capsys)
    assert status == 2 and out == ""
    assert "a missing value '' in column 'b' at line 4 (data row 2)" in err, err
    path.write_text('a,b,note,y\n1,2,"one\ntwo\nthree",0\n3,4,ok\n')
    status, out, err = run(["train", str(path), "--epochs", "1"], capsys)
    assert status == 2 and f"{path}, line 5: 3 fields, but the header has 4" in err, err


def test_a_cell_over_pythons_csv_field_limit_reads_with_either_reader(tmp_path, capsys, reader):
    """Python's csv refuses a cell over 131,072 characters, which pyarrow
    reads; with pyarrow it hid the real error (the line of a missing value),
    whose wording re-reads the file with Python's csv."""
    path = tmp_path / "long.csv"
    path.write_text("a,note,y\n1," + "x" * 200000 + ",0\n2,short,1\n3,short,0\n")
    data = cli.load_data(str(path), drop=["note"])
    assert data.X.tolist() == [[1], [2], [3]]
    path.write_text("a,note,y\n1," + "x" * 200000 + ",0\n2,short,1\nNA,short,0\n")
    status, _, err = run(["train", str(path), "--drop", "note", "--epochs", "1"], capsys)
    assert status == 2 and "a missing value 'NA' in column 'a' at line 4 (data row 3)" in err
    import csv
    assert csv.field_size_limit() == 131072   # put back


# ------------------------------------------------------- numbers as text
# Cells that Python's float() reads as numbers (1_0 as 10, the Arabic-Indic
# and full-width 1 as 1, a no-break space stripped) but ONNX Runtime's strtod
# does not read the same way: text to both readers.
NOT_PLAIN = ["1_0", "\u0661", "\uff11", "1\u00a0", "\u00a01"]


def write_utf8(path, header, rows):
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(map(str, r)) for r in rows)
                    + "\n", encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("cell", NOT_PLAIN)
def test_a_number_as_text_is_plain_ascii_decimal_to_both_readers(tmp_path, capsys, reader, cell):
    """Among numbers the cell is the column's first text cell, named; a
    column of such cells alone is text: a category column."""
    rows = [[i, i % 7, i % 2] for i in range(20)]
    rows[3][1] = cell
    path = write_utf8(tmp_path / "odd.csv", ["a", "b", "y"], rows)
    status, out, err = run(["train", path, "--epochs", "1", "--verbose", "0"], capsys)
    assert status == 2 and "trained" not in out
    assert f"column 'b' is not numeric (data row 4: {cell!r}, text: numbers are plain" in err
    with pytest.raises(_reader.CLIError, match="column 'b' is not numeric"):
        cli.load_data(path, target="y")

    other = "7" + cell
    rows = [[i, [cell, other][i % 2], i % 2] for i in range(20)]
    path = write_utf8(tmp_path / "cat.csv", ["a", "b", "y"], rows)
    data = cli.load_data(path, target="y")
    labels = sorted([cell, other])
    assert data.categories == {1: labels}
    codes = [[float(r[1] == label) for label in labels] for r in rows]
    np.testing.assert_array_equal(data.X[:, 1:3], codes)


@pytest.mark.parametrize("cell", NOT_PLAIN)
def test_a_parquet_text_number_is_text_too(tmp_path, cell):
    path = str(tmp_path / "odd.parquet")
    pq.write_table(pa.table({"a": [0.5, 1.5, 2.5], "b": ["1", cell, "2"], "y": [0, 1, 0]}), path)
    with pytest.raises(_reader.CLIError, match="column 'b' is not numeric \\(data row 2: "):
        cli.load_data(path, target="y")


@pytest.mark.parametrize("labels", [["0x10", "0x20"], ["1_0", "2_0"], ["\u0661", "\u0662"]])
def test_labels_in_other_notations_stay_text_with_either_reader(tmp_path, capsys, reader, labels):
    """pyarrow read 0x10 as the integer 16, and both readers 1_0 as 10:
    the classes are the labels as written."""
    rows = [[i, i % 7, labels[i % 2]] for i in range(20)]
    path = write_utf8(tmp_path / "labels.csv", ["a", "b", "y"], rows)
    data = cli.load_data(path, target="y")
    assert data.y.dtype.kind == "U" and data.y.tolist() == [labels[i % 2] for i in range(20)]
    model = str(tmp_path / "m.npz")
    status, _, err = run(["train", path, "--epochs", "1", "--verbose", "0", "--out", model],
                         capsys)
    assert status == 0, err
    assert fastbp.load(model).classes_.tolist() == labels


def test_a_category_column_of_hexadecimal_codes_predicts_with_either_reader(tmp_path, capsys,
                                                                            reader):
    """Its codes stay text at predict too: pyarrow's reader typed the column
    as integers (0x10 as 16), all unseen."""
    rng = np.random.default_rng(0)
    rows = [[round(float(v), 4), ["0x10", "0x20", "0x30"][i % 3], i % 2]
            for i, v in enumerate(rng.normal(size=60))]
    path = write_utf8(tmp_path / "codes.csv", ["a", "code", "y"], rows)
    model = str(tmp_path / "m.npz")
    assert run(["train", path, "--epochs", "2", "--verbose", "0", "--out", model], capsys)[0] == 0
    net = fastbp.load(model)
    assert net.categories == {1: ["0x10", "0x20", "0x30"]}
    status, out, err = run(["predict", model, path], capsys)
    assert status == 0 and "not seen in training" not in err, err
    raw = np.array([[str(r[0]), r[1]] for r in rows], dtype=object)
    assert out.split() == [str(v) for v in net.predict(raw)]


# ------------------------------------------------ found in review (2026-12-05, session 34)
def test_evaluate_compares_text_classes_as_the_file_writes_them(tmp_path, capsys, reader):
    """Classes '1', '2', 'x' learnt as text; a test file whose target cells
    happen to be all numbers was read as float64 and turned back into text
    as '1.0': 'label '1.0' was not seen in training'."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2)).round(4)
    labels = np.array(["1", "2", "x"])[np.arange(60) % 3]
    write_text(tmp_path / "train.csv", ["a", "b", "grade"],
               [[a, b, t] for (a, b), t in zip(X.tolist(), labels)])
    keep = labels != "x"
    test = write_text(tmp_path / "test.csv", ["a", "b", "grade"],
                      [[a, b, t] for (a, b), t in zip(X[keep].tolist(), labels[keep])])
    model = str(tmp_path / "m.npz")
    assert run(["train", str(tmp_path / "train.csv"), "--epochs", "2", "--hidden", "3",
                "--verbose", "0", "--out", model], capsys)[0] == 0
    net = fastbp.load(model)
    assert net.classes_.tolist() == ["1", "2", "x"]
    status, out, err = run(["evaluate", model, test], capsys)
    assert status == 0, err
    metrics = net.evaluate(X[keep], labels[keep])  # the labels as text, in Python
    assert out == f"test.csv: accuracy {metrics['accuracy']:.4f}, loss {metrics['loss']:.6g}\n"


def test_a_parquet_target_of_integers_scores_against_text_classes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2)).round(4)
    labels = np.array(["1", "2", "x"])[np.arange(60) % 3]
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "y": labels}), tmp_path / "tr.parquet")
    keep = labels != "x"
    pq.write_table(pa.table({"a": X[keep, 0], "b": X[keep, 1],
                             "y": labels[keep].astype(np.int64)}), tmp_path / "te.parquet")
    model = str(tmp_path / "m.npz")
    assert run(["train", str(tmp_path / "tr.parquet"), "--epochs", "2", "--hidden", "3",
                "--verbose", "0", "--out", model], capsys)[0] == 0
    status, out, err = run(["evaluate", model, str(tmp_path / "te.parquet")], capsys)
    metrics = fastbp.load(model).evaluate(X[keep], labels[keep])
    assert status == 0, err
    assert out == f"te.parquet: accuracy {metrics['accuracy']:.4f}, loss {metrics['loss']:.6g}\n"


@pytest.mark.parametrize("column,shown", [
    ([[1, 2]] * 6, "values that are neither numbers nor text (type list<element: int64>)"),
    ([{"u": 1}] * 6, "values that are neither numbers nor text (type struct<u: int64>)"),
    ([b"\xff\xfe", b"ok"] * 3, "bytes that are not UTF-8 text (type binary)"),
    # (review HHF: a bare count of its unit, the same data in s and ms 1000x apart)
    (pa.array([1, 2] * 3, pa.duration("s")), "values that are neither numbers nor text"
                                             " (type duration[s])"),
    (pa.array([1, 2] * 3, pa.duration("ms")), "values that are neither numbers nor text"
                                              " (type duration[ms])"),
])
def test_a_parquet_column_of_another_type_is_named_with_the_drop_hint(tmp_path, capsys, column,
                                                                      shown):
    """A pyarrow traceback (ArrowNotImplementedError: Unsupported cast, or
    ArrowInvalid: Invalid UTF8 payload), exit status 1."""
    path = tmp_path / "odd.parquet"
    pq.write_table(pa.table({"a": np.linspace(0, 1, 6), "y": [0, 1] * 3, "z": column}), path)
    status, out, err = run(["train", str(path), "--target", "y", "--epochs", "1", "--verbose",
                            "0"], capsys)
    assert status == 2 and out == ""
    assert err == (f"fastbp: error: {path}: column 'z' holds {shown}, which fastbp cannot read;"
                   " fastbp train leaves it out with --drop z\n")
    status, out, err = run(["train", str(path), "--target", "y", "--drop", "z", "--epochs", "1",
                            "--verbose", "0"], capsys)
    assert status == 0 and "1 features" in out, err


@pytest.mark.parametrize("text,name,line", [
    ("red,1.5,0\nblue,2.5,1\nred,3.5,0\nblue,0.5,1\n", "red", "line 3 (data row 2)"),
    # a header repeated among the rows (files joined with their headers): the
    # first column read that holds its name (u, among numbers), named
    ("c,u,y\nred,1.5,0\nblue,2.5,1\nc,u,y\nred,3.5,0\nblue,0.5,1\n", "u", "line 4 (data row 3)"),
])
def test_a_first_row_of_data_is_refused_when_a_name_is_a_cell_of_its_column(
        tmp_path, capsys, reader, text, name, line):
    """A headerless file whose first row holds text: that row became the
    names (features 'red', '1.5', target '0') and was lost, without a word."""
    path = tmp_path / "h.csv"
    path.write_text(text)
    status, out, err = run(["train", str(path), "--epochs", "1", "--verbose", "0"], capsys)
    assert status == 2 and out == ""
    assert err == (f"fastbp: error: {path}: the first row looks like data, not a header: column"
                   f" {name!r} holds {name!r} at {line}; fastbp reads the first row of a CSV"
                   " file as the column names\n")


def test_numbers_as_names_above_numbers_and_text_columns_are_headers(tmp_path, capsys, reader):
    """Years naming columns of numbers, a text column not holding its name:
    a real header, read as before."""
    rows = [[i * 0.5, i % 7, ["north", "south"][i % 2], ["no", "yes"][i % 3 == 0]]
            for i in range(30)]
    path = write_text(tmp_path / "years.csv", ["2023", "2024", "region", "label"], rows)
    data = cli.load_data(path)
    assert data.features == ["2023", "2024", "region"] and data.target == "label"
    assert data.categories == {2: ["north", "south"]} and data.X.shape == (30, 4)
    assert data.y.tolist() == [r[3] for r in rows]


def test_a_classifiers_unknown_text_label_names_its_classes_not_task(tmp_path, capsys, reader):
    """Classes 0 and 1, a test file labelled yes/no: the message spoke of a
    regression target and suggested --task, which evaluate does not take."""
    rows = [[i * 0.1, i % 2] for i in range(40)]
    model = str(tmp_path / "m.npz")
    assert run(["train", write_text(tmp_path / "ab.csv", ["a", "y"], rows), "--epochs", "1",
                "--verbose", "0", "--out", model], capsys)[0] == 0
    test = write_text(tmp_path / "t.csv", ["a", "y"], [[0.1, 1], [0.2, "yes"]])
    status, _, err = run(["evaluate", model, test], capsys)
    assert status == 2 and err == (f"fastbp: error: {test}: the target column 'y' holds 'yes'"
                                   " (data row 2), which is not one of the model's classes"
                                   " [0, 1]\n")
    test = write_text(tmp_path / "t7.csv", ["a", "y"], [[0.1, 1], [0.2, 7]])
    status, _, err = run(["evaluate", model, test], capsys)
    assert status == 2
    assert "label 7 is not one of the model's classes_ [0, 1]" in err


def test_a_parquet_data_set_written_as_a_folder_still_trains(tmp_path):
    # The check that refuses a folder as DATA ("it is a folder") must leave
    # a Parquet data set's folder of parts (pyarrow, Spark) to pyarrow.
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq
    folder = tmp_path / "rows.parquet"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for part in range(2):
        X = rng.normal(size=(30, 2))
        pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "y": (X[:, 0] > 0).astype(int)}),
                       folder / f"part-{part}.parquet")
    data = cli.load_data(str(folder), target="y")
    assert data.X.shape == (60, 2) and sorted(set(data.y.tolist())) == [0, 1]
    # as tab completion writes it ("it is a folder" for ds.parquet/)
    assert cli.load_data(str(folder) + os.sep, target="y").X.shape == (60, 2)


@pytest.mark.parametrize("parts,says", [
    ([{"a": [1.0, 2.0], "y": [True, False]}, {"a": [3.0, 4.0], "y": [2, 0]}],
     "the parts hold column 'y' as bool (part-0.parquet) and as int64 (part-1.parquet)"),
    ([{"a": pa.array([1.5, 2.5], pa.float32()), "y": [0, 1]}, {"a": [0.1, 1e300], "y": [1, 0]}],
     "the parts hold column 'a' as float (part-0.parquet) and as double (part-1.parquet)"),
    ([{"a": [1.0, 2.0], "y": [0, 1]}, {"a": [3.0], "b": [9.0], "y": [1]}],
     "column 'b' is in the part part-1.parquet but not in part-0.parquet"),
    ([{"a": [1.0, 2.0], "b": [9.0, 8.0], "y": [0, 1]}, {"a": [3.0], "y": [1]}],
     "column 'b' is in the part part-0.parquet but not in part-1.parquet"),
    # (review HHA: a third part checked too, the first two agreeing)
    ([{"a": [1.0], "y": [True]}, {"a": [2.0], "y": [False]}, {"a": [3.0], "y": [2]}],
     "the parts hold column 'y' as bool (part-0.parquet) and as int64 (part-2.parquet)"),
])
def test_a_parquet_folder_whose_parts_differ_in_schema_is_refused(tmp_path, parts, says):
    """Review HCK: pyarrow read every part in the first one's schema,
    silently: a later part's label 2 as True (three classes trained as
    two), its float64 0.1 as float32's, 1e300 refused as infinite, and a
    column the first part lacks was no column at all."""
    folder = tmp_path / "d.parquet"
    folder.mkdir()
    for k, columns in enumerate(parts):
        pq.write_table(pa.table(columns), folder / f"part-{k}.parquet")
    with pytest.raises(cli.CLIError, match=re.escape(f"{folder}: {says}")):
        cli.load_data(str(folder), target="y")


def test_a_parquet_folder_whose_parts_differ_only_in_dictionary_encoding_reads(tmp_path):
    folder = tmp_path / "d.parquet"
    folder.mkdir()
    pq.write_table(pa.table({"c": pa.array(["r", "g"]).dictionary_encode(), "y": [0, 1]}),
                   folder / "part-0.parquet")
    pq.write_table(pa.table({"c": pa.array(["g", "b"]), "y": [1, 0]}), folder / "part-1.parquet")
    # (and large text as text: review HCL, refused as another type)
    pq.write_table(pa.table({"c": pa.array(["r", "b"], pa.large_string()), "y": [0, 0]}),
                   folder / "part-2.parquet")
    data = cli.load_data(str(folder), target="y")
    assert data.y.tolist() == [0, 1, 1, 0, 0, 0] and data.categories == {0: ["b", "g", "r"]}


def test_a_parquet_file_repeating_a_column_name_gets_the_csvs_message(tmp_path, capsys):
    # Found in review (session 37): pyarrow's "Multiple matches for FieldRef" text
    path = tmp_path / "dup.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array([1.0, 2, 3, 4])] * 2 + [pa.array(list("xyxy"))],
                                        names=["a", "a", "label"]), path)
    assert main(["train", str(path)]) == 2
    assert f"{path}: the column name(s) ['a'] appear more than once; name each column once" \
        in capsys.readouterr().err


# ---------------------------------------- found in review, session 44 (HE)
def test_a_closing_quote_followed_by_a_space_ends_the_file(tmp_path, reader):
    """The file's last cell, quoted with a line break, then a space: it was
    "never closed" where Python's csv and pyarrow read two whole rows."""
    import csv
    path = tmp_path / "q.csv"
    path.write_text('a,b,note\n1,2,"ok"\n3,4,"two\nlines" \n')
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[-1] == ["3", "4", "two\nlines "]
    data = cli.load_data(str(path), "a")
    assert data.categories == {1: ["ok", "two\nlines"]}
    np.testing.assert_array_equal(data.y, [1, 3])


@pytest.mark.parametrize("cell,column", [("2\x00", "b"), ("red\x00", "c")])
def test_a_cell_ending_in_a_nul_byte_is_refused(tmp_path, capsys, reader, cell, column):
    """NumPy's text arrays drop trailing NULs: "2\\x00" was read as the number
    2 (float() refuses it) and "red\\x00" as the category "red" (pyarrow keeps
    them apart)."""
    path = tmp_path / "n.csv"
    header = "a,b,label" if column == "b" else "a,c,label"
    other = "3" if column == "b" else "red"
    path.write_bytes(f"{header}\n1,{cell},0\n2,{other},1\n3,{other},0\n".encode())
    with pytest.raises(ValueError):
        float("2\x00")
    status, _, err = run(["train", str(path), "--epochs", "1", "--verbose", "0"], capsys)
    assert status == 2 and err == (f"fastbp: error: {path}: column {column!r} at line 2 (data"
                                   f" row 1) holds {cell!r}, which ends in a NUL byte (\\x00):"
                                   " remove it from the file\n"), err


def test_an_unreadable_target_column_is_not_offered_drop(tmp_path, capsys, reader):
    """The hint said --drop, which train refuses for the target."""
    path = tmp_path / "t.csv"
    path.write_bytes(b"a,b,label\n1,2,caf\xe9\n2,3,x\n")
    status, _, err = run(["train", str(path), "--epochs", "1", "--verbose", "0"], capsys)
    assert status == 2 and "holds bytes that are not UTF-8 text" in err
    assert "--drop" not in err and err.rstrip().endswith("; it is the target column"), err
    # a feature column keeps the hint
    path.write_bytes(b"a,b,label\n1,caf\xe9,0\n2,x,1\n")
    status, _, err = run(["train", str(path), "--epochs", "1", "--verbose", "0"], capsys)
    assert status == 2 and err.rstrip().endswith("or train without the column (--drop)"), err


def test_an_unreadable_parquet_target_is_not_offered_drop(tmp_path, capsys):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0, 3.0], "label": pa.array([[1], [2], [3]])}), path)
    status, _, err = run(["train", str(path), "--epochs", "1", "--verbose", "0"], capsys)
    assert status == 2 and "which fastbp cannot read; it is the target column" in err, err
    assert "--drop" not in err
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"f": pa.array([[1], [2], [3]]), "label": [0, 1, 0]}), path)
    status, _, err = run(["train", str(path), "--epochs", "1", "--verbose", "0"], capsys)
    assert status == 2 and err.rstrip().endswith("fastbp train leaves it out with --drop f"), err


def test_a_quoted_crlf_across_pyarrows_blocks_keeps_its_line_feed(tmp_path, monkeypatch):
    """Review HHF: pyarrow drops the line feed of a quoted CR LF whose CR
    ends one of its read blocks: ``"q\\r\\n2"`` read as ``q\\r2``, a
    category (or class) no row holds, silently. The streamed read (its
    blocks of BLOCK bytes, here pyarrow's default 1 MiB, as the whole read
    after it takes) and the whole read each hand such a file to Python's
    csv module, the reference."""
    import csv
    monkeypatch.setattr(_reader, "BLOCK", 1 << 20)
    end = (1 << 20) - 1   # the block's last byte
    text, i = ["a,c,y\r\n"], 0
    size = len(text[0])
    while size < end - 100:
        text.append(f'{i % 97}.25,"q\r\n{i % 3}",{i % 2}\r\n')
        size, i = size + len(text[-1]), i + 1
    head = '1.25,"q'
    text.append("0" * (end - size - len(head)) + head + '\r\n2",1\r\n')   # its \r at byte `end`
    text += [f'{j}.5,"q\r\n{j % 3}",{j % 2}\r\n' for j in range(5)]
    path = tmp_path / "crlf.csv"
    path.write_bytes("".join(text).encode())
    assert path.read_bytes()[end:end + 2] == b"\r\n"
    with open(path, newline="") as fh:
        expected = sorted({row[1] for row in list(csv.reader(fh))[1:]})
    assert expected == ["q\r\n0", "q\r\n1", "q\r\n2"]
    assert cli.load_data(str(path)).categories[1] == expected
    assert sorted(set(cli.load_data(str(path), target="c").y.tolist())) == expected


def test_a_numeric_csvs_rows_are_used_where_the_streamed_read_put_them(tmp_path, monkeypatch):
    # (no copy of the matrix: its peak memory; untested until review HHF's
    # change of the reader's column lookups, which could have lost it)
    blocks, load = [], _reader.StreamedCSV.load

    def spy(self, *args, **kwargs):
        load(self, *args, **kwargs)
        blocks.append(self.block)
    monkeypatch.setattr(_reader.StreamedCSV, "load", spy)
    X = np.random.default_rng(0).normal(size=(30, 3)).round(4)
    path = tmp_path / "n.csv"
    path.write_text("a,b,c,y\n" + "".join(f"{r[0]},{r[1]},{r[2]},{int(r[0] > 0)}\n" for r in X))
    data = cli.load_data(str(path), dtype=np.float64)
    assert len(blocks) == 1 and data.X is blocks[0]
    np.testing.assert_array_equal(data.X, X)
