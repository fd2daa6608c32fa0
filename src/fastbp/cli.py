"""The ``fastbp`` command line: train, predict, evaluate, info.

    fastbp train                                  # the built-in digits, 64-64-32-10
    fastbp train data.csv --target label --hidden 64,32 --activation relu \\
        --epochs 30 --batch-size 32 --lr 0.001 --optimizer adam --out model.npz
    fastbp predict model.npz new.csv [--out predictions.csv]
    fastbp evaluate model.npz test.csv
    fastbp info model.npz
    fastbp info                                   # where the compiled kernels are cached

DATA is a CSV file with a header row (``--target`` names the target column;
default: the last one), an NPZ file with arrays ``X`` and ``y`` (``--target``
names another array for y), or a built-in data set name (``digits``).
Features are standardised with the training split's mean and standard
deviation; class labels may be any values (numbers or strings); both are
part of the model (``net.input_mean``, ``net.input_scale``,
``net.classes_``), so ``predict`` here and ``fastbp.load(...).predict`` in
Python take the same raw rows and give the same labels. A missing value
(a blank cell, ``nan``, ``NA``, ...) is an error naming the file, the line
and the column.
"""
import argparse
import csv
import functools
import json
import os
import sys
import time

import numpy as np

BUILTIN = ("digits",)
# A numeric target with at most this many distinct integer values is taken
# as class labels, unless --task says otherwise.
MAX_CLASSES = 50
# Cells that mean "no value" (compared in lower case), as pandas reads them.
MISSING = frozenset({"", "nan", "-nan", "+nan", "na", "n/a", "#n/a", "null", "<na>"})


class CLIError(Exception):
    """A user-facing error: printed as ``fastbp: error: ...``, exit status 2."""


# ------------------------------------------------------------------ reading
def _read_csv(path):
    """Header, columns (lists of strings) and the file's line number of each
    data row (blank lines are skipped) of a CSV file."""
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
    header = [h.strip() for h in rows[0]]
    for row, line in zip(rows[1:], lines[1:]):
        if len(row) != len(header):
            raise CLIError(f"{path}, line {line}: {len(row)} fields, but the header has {len(header)}")
    columns = [[row[j].strip() for row in rows[1:]] for j in range(len(header))]
    return header, columns, lines[1:]


def _where(i, lines):
    """Data row i (0-based) as a user finds it: the line in the file, and the row."""
    return f"line {lines[i]} (data row {i + 1})" if lines is not None else f"row {i + 1}"


def _missing(path, name, value, i, lines):
    what = "an infinite value" if value.lower().lstrip("+-") in ("inf", "infinity") \
        else "a missing value"
    return CLIError(f"{path}: {what} {value!r} in column {name!r} at {_where(i, lines)}; fastbp"
                    " does not fill in missing values: complete or drop that row")


def _check_cells(values, name, path, lines=None):
    """Refuse a missing value (blank, nan, NA, ...) or an infinity in a text column."""
    for i, v in enumerate(values):
        low = v.lower()
        if low in MISSING or (low.lstrip("+-") in ("inf", "infinity")):
            raise _missing(path, name, v, i, lines)


def _numeric(values, name, path, lines=None):
    try:
        column = np.array([float(v) for v in values])
    except ValueError:
        bad = next(i for i, v in enumerate(values) if not _is_float(v))
        if values[bad].lower() in MISSING:
            raise _missing(path, name, values[bad], bad, lines) from None
        raise CLIError(f"{path}: column {name!r} is not numeric (data row {bad + 1}:"
                       f" {values[bad]!r}); only the target column may hold text") from None
    finite = np.isfinite(column)
    if not finite.all():  # nan, NaN, inf, ... parse as floats
        bad = int(np.argmin(finite))
        raise _missing(path, name, str(values[bad]), bad, lines)
    return column


def _is_float(v):
    try:
        float(v)
        return True
    except ValueError:
        return False


def load_data(source, target=None, need_target=True, feature_names=None):
    """``X, y, feature_names, target_name`` from a CSV, an NPZ or a built-in name.

    y is None when ``need_target`` is False and the target is absent.
    """
    if source in BUILTIN:
        from .datasets import load_digits
        X, y = load_digits()
        return X, y, [f"pixel{i}" for i in range(X.shape[1])], "digit"
    if not os.path.exists(source):
        raise CLIError(f"no such file: {source} (and not a built-in data set: {', '.join(BUILTIN)})")
    if source.endswith(".npz"):
        return _load_npz(source, target, need_target)
    header, columns, lines = _read_csv(source)
    if feature_names is not None:  # a model's columns, by name
        missing = [f for f in feature_names if f not in header]
        if missing:
            raise CLIError(f"{source} lacks the model's feature column(s) {missing[:5]}")
        X = np.column_stack([_numeric(columns[header.index(f)], f, source, lines)
                             for f in feature_names])
        name = target if target is not None else None
        y = None
        if name is not None and name in header and need_target:
            y = columns[header.index(name)]
            _check_cells(y, name, source, lines)
        elif name is not None and need_target:
            raise CLIError(f"{source} has no target column {name!r}; its columns are {header}")
        return X, y, list(feature_names), name
    name = header[-1] if target is None else target
    if name not in header:
        raise CLIError(f"--target {name!r} is not a column of {source}; its columns are {header}")
    j = header.index(name)
    features = [h for k, h in enumerate(header) if k != j]
    if not features:
        raise CLIError(f"{source} has no feature columns besides the target {name!r}")
    X = np.column_stack([_numeric(columns[k], h, source, lines)
                         for k, h in enumerate(header) if k != j])
    if need_target:
        _check_cells(columns[j], name, source, lines)
    return X, columns[j], features, name


def _load_npz(path, target, need_target):
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as exc:
        raise CLIError(f"cannot read {path} as NPZ: {exc}") from None
    if "X" not in arrays:
        raise CLIError(f"{path} needs an array named 'X'; it has {sorted(arrays)}")
    X = arrays["X"]
    if X.ndim != 2 or X.dtype.kind not in "biuf":
        raise CLIError(f"{path}: X must be a 2-D numeric array; got {X.dtype}{X.shape}")
    X = X.astype(np.float64)
    if not np.isfinite(X).all():
        i, j = (int(k) for k in np.argwhere(~np.isfinite(X))[0])
        raise CLIError(f"{path}: X holds {X[i, j]} at row {i + 1}, column {j + 1} (x{j}); fastbp"
                       " does not fill in missing values: complete or drop that row")
    name = "y" if target is None else target
    y = arrays.get(name)
    if y is None and need_target:
        raise CLIError(f"{path} has no target array {name!r}; it has {sorted(arrays)}")
    if y is not None and y.dtype.kind in "US" and need_target:
        _check_cells([str(v) for v in y.ravel()], name, path)
    if y is not None and y.dtype.kind == "f" and not np.isfinite(y).all():
        where = tuple(int(k) for k in np.argwhere(~np.isfinite(y))[0])
        raise CLIError(f"{path}: {name} holds {y[where]} at row {where[0] + 1}; fastbp does not fill"
                       " in missing values: complete or drop that row")
    return X, y, [f"x{i}" for i in range(X.shape[1])], name


# ---------------------------------------------------------------- the model
def _is_classification(y, task):
    if task != "auto":
        return task == "classification"
    values = np.asarray(y)
    if values.dtype.kind in "US" or values.dtype == object:
        try:
            values = np.array([float(v) for v in values])
        except ValueError:
            return True
    return bool(np.all(values == np.round(values)) and len(np.unique(values)) <= MAX_CLASSES)


def _encode_labels(y):
    """Class indices and the sorted class list (numbers as numbers, else strings)."""
    values = np.asarray(y)
    try:
        numbers = np.array([float(v) for v in values]) if values.dtype.kind in "USO" else values
        classes, codes = np.unique(numbers, return_inverse=True)
        classes = [int(c) if float(c).is_integer() else float(c) for c in classes]
    except ValueError:
        classes, codes = np.unique(values.astype(str), return_inverse=True)
        classes = [str(c) for c in classes]
    return codes.astype(np.int64), classes


def _targets_for(net, y, path):
    """The target column as the model takes it: text labels for text classes,
    numbers otherwise (the model maps labels and scales values itself)."""
    classes = net.classes_
    if classes is not None and classes.dtype.kind == "U":
        return np.asarray(y).astype(str)
    return _numeric([str(v) for v in np.asarray(y).ravel()], net.metadata.get("target", "y"), path)


def _widths(text):
    try:
        widths = [int(w) for w in text.split(",") if w.strip()] if text else []
    except ValueError:
        raise CLIError(f"--hidden must be comma-separated widths such as 64,32; got {text!r}") from None
    if any(w < 1 for w in widths):
        raise CLIError(f"--hidden widths must be >= 1; got {text!r}")
    return widths


def cmd_train(args):
    import fastbp
    source = args.data or "digits"
    X, y, features, target = load_data(source, args.target)
    classify = _is_classification(y, args.task)
    if classify:
        codes, classes = _encode_labels(y)
        if len(classes) < 2:
            raise CLIError(f"the target {target!r} has a single class {classes}; need two or more")
        Y = codes
    else:
        Y = _numeric([str(v) for v in np.asarray(y)], target, source)
    if not 0 <= args.test_fraction < 1:
        raise CLIError(f"--test-fraction must be in [0, 1); got {args.test_fraction}")
    X_train, X_test, y_train, y_test = fastbp.datasets.train_test_split(
        X, Y, test_fraction=args.test_fraction, seed=args.seed)
    if len(X_train) == 0:
        raise CLIError("no training rows left after the test split")
    sizes = [X.shape[1]] + _widths(args.hidden) + [len(classes) if classify else 1]
    try:
        net = fastbp.MLP(sizes, activation=args.activation,
                         output="softmax" if classify else "identity", dtype=args.dtype,
                         seed=args.seed, alpha=args.alpha, dropout=args.dropout)
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from None
    # The scaling and the class labels are part of the model: the net takes
    # raw rows and labels from here on, here and wherever the file is loaded.
    if classify:
        net.classes_ = classes
        y_train, y_test = net.classes_[y_train], net.classes_[y_test]
        net.standardize(X_train)
    else:
        net.standardize(X_train, y_train)
    net.metadata = {"task": "classification" if classify else "regression",
                    "source": os.path.basename(source), "target": target, "features": features}
    validation = (X_test, y_test) if len(X_test) else None
    print(f"{net}\n{net.metadata['task']} on {source}: {len(X_train)} training rows, {len(X_test)}"
          f" test rows, {X.shape[1]} features" + (f", {len(classes)} classes" if classify else ""))
    compiled, t0 = fastbp._jit.compilations(), time.perf_counter()
    try:
        history = net.fit(X_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                          lr=args.lr, optimizer=args.optimizer, seed=args.seed, verbose=args.verbose,
                          validation_data=validation)
    except fastbp.TrainingDivergedError as exc:
        raise CLIError(f"{exc}") from None
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from None
    wall = time.perf_counter() - t0
    if history.epoch:
        median = float(np.median(history["seconds"]))
        first = ("compiled fastbp's kernels" if fastbp._jit.compilations() > compiled
                 else "loaded the compiled kernels")
        print(f"trained {len(history)} epochs in {wall:.2f} s (the first {first}); median epoch"
              f" {median * 1e3:.2f} ms ="
              f" {len(X_train) / max(median, 1e-12):,.0f} samples/s")
        print(f"final training loss {history['loss'][-1]:.6g}")
    if validation is not None:
        _report(net, X_test, y_test, "test")
    if args.out:
        net.save(args.out)
        print(f"model written to {args.out}")
    else:
        print("model not saved: add --out PATH (e.g. --out model.npz) to write it to a file")
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
    try:
        net = fastbp.load(path)
    except fastbp.ModelFileError as exc:
        raise CLIError(str(exc)) from None
    return net


def _model_input(net, data, need_target):
    meta = net.metadata
    if data in BUILTIN:
        X, y, _, _ = load_data(data)
    elif data.endswith(".npz") or "features" not in meta:
        X, y, _, _ = load_data(data, meta.get("target"), need_target=need_target)
    else:
        X, y, _, _ = load_data(data, meta.get("target"), need_target=need_target,
                               feature_names=meta["features"])
    if X.shape[1] != net.sizes[0]:
        raise CLIError(f"{data} has {X.shape[1]} feature columns; the model expects {net.sizes[0]}")
    return X, y


def cmd_predict(args):
    net = _load_model(args.model)
    X, _ = _model_input(net, args.data, need_target=False)
    labels = net.predict(X).tolist()  # the model maps raw rows to labels or values
    name = net.metadata.get("target", "prediction")
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow([name])
            writer.writerows([[v] for v in labels])
        os.replace(tmp, args.out)
        print(f"{len(labels)} predictions written to {args.out}")
    else:
        for v in labels:
            print(v)
    return labels


def cmd_evaluate(args):
    net = _load_model(args.model)
    X, y = _model_input(net, args.data, need_target=True)
    try:
        return _report(net, X, _targets_for(net, y, args.data), os.path.basename(args.data))
    except (ValueError, TypeError) as exc:
        raise CLIError(f"{args.data}: {exc}") from None


def _abbreviated(values, shown=10):
    values = values.tolist()
    if values and isinstance(values[0], float):
        values = [float(f"{v:.6g}") for v in values]
    return str(values) if len(values) <= shown else f"{str(values[:shown])[:-1]}, ... ({len(values)} in all)]"


def cmd_info(args):
    if args.model is None:
        return _cache_info()
    net = _load_model(args.model)
    meta = dict(net.metadata)
    if isinstance(meta.get("features"), list) and len(meta["features"]) > 10:
        meta["features"] = f"<{len(meta['features'])} names>"
    lines = [repr(net), f"parameters: {net.n_params} {net.dtype.name}",
             f"optimizer: {net.optimizer!r}", f"epochs trained: {len(net.history)}"]
    if net.classes_ is not None:
        lines.append(f"classes: {_abbreviated(net.classes_)}")
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
    if meta:
        lines.append("metadata: " + json.dumps(meta))
    print("\n".join(lines))
    return net


def _cache_info():
    """Where fastbp's compiled kernels are cached, and whether that cache is warm."""
    import numba

    import fastbp
    report = fastbp._jit.cache_report()
    lines = [f"fastbp {fastbp.__version__}, Numba {numba.__version__}",
             f"kernel cache: {report['path']} ({report['where']})"]
    if report["install_path"] is not None:
        fits = ("built with this Python, Numba and NumPy" if report["install_fits"] else
                "built with another Python, Numba or NumPy: unused")
        lines.append(f"install-time cache: {report['install_path']} ({fits})")
    if report["cached"]:
        lines.append(f"warm: {report['cached']} of fastbp's {report['kernels']} kernels have"
                     f" compiled code for this CPU ({report['in_path']} in the kernel cache,"
                     f" {report['in_install']} from installation)")
    else:
        lines.append("cold: no compiled code for this CPU yet; the first fit compiles the kernels"
                     " it needs (once: then they are cached)")
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
    # Every subcommand's --help shows each argument's default.
    sub = parser.add_subparsers(dest="command", required=True,
                                parser_class=functools.partial(argparse.ArgumentParser,
                                                               formatter_class=_HelpFormatter))
    train = sub.add_parser("train", help="train a model and report its test metrics",
                           description="Train an MLP on DATA (default: the built-in digits).")
    train.add_argument("data", nargs="?", help="CSV file, NPZ file (X, y) or 'digits' (default)")
    train.add_argument("--target", help="target column (CSV; default the last) or array (NPZ; default y)")
    train.add_argument("--task", type=str.lower, choices=["auto", "classification", "regression"], default="auto",
                       help="auto: a text or integer target with at most 50 distinct values is"
                            " classification")
    train.add_argument("--hidden", default="64,32", help="hidden widths, comma-separated")
    train.add_argument("--activation", default="relu", help="hidden activation")
    train.add_argument("--epochs", type=int, default=30, help="passes over the training rows")
    train.add_argument("--batch-size", type=int, default=32, help="rows per minibatch")
    train.add_argument("--lr", type=float, default=None,
                       help="learning rate (default: the optimizer's, 0.01 for sgd, 0.001 for adam)")
    train.add_argument("--optimizer", default="adam", help="sgd, adam, adamw, rmsprop or lbfgs")
    train.add_argument("--alpha", type=float, default=0.0, help="L2 penalty (scikit-learn's alpha)")
    train.add_argument("--dropout", type=float, default=0.0, help="dropout rate on hidden layers")
    train.add_argument("--dtype", type=str.lower, default="float32", choices=["float32", "float64"],
                       help="floating-point type of the model")
    train.add_argument("--test-fraction", type=float, default=0.2,
                       help="share of the rows held out for the test metrics")
    train.add_argument("--seed", type=int, default=0,
                       help="seeds the split, the initial weights and the shuffling")
    train.add_argument("--verbose", type=int, default=1, help="0 silent, 1 progress bar, 2 a line per epoch")
    train.add_argument("--out", help="write the trained model to this .npz file (default: not saved)")
    train.set_defaults(func=cmd_train)
    predict = sub.add_parser("predict", help="predict labels or values for DATA")
    predict.add_argument("model", help="a model file written by fastbp train --out")
    predict.add_argument("data", help="CSV or NPZ file of rows to predict")
    predict.add_argument("--out", help="write a CSV here (default: print to standard output)")
    predict.set_defaults(func=cmd_predict)
    evaluate = sub.add_parser("evaluate", help="loss and accuracy or R^2 of a model on DATA")
    evaluate.add_argument("model", help="a model file written by fastbp train --out")
    evaluate.add_argument("data", help="CSV or NPZ file with the target column")
    evaluate.set_defaults(func=cmd_evaluate)
    info = sub.add_parser("info", help="describe a model file; without one, fastbp's kernel cache")
    info.add_argument("model", nargs="?",
                      help="a model file (default: describe fastbp's kernel cache instead)")
    info.set_defaults(func=cmd_info)
    return parser


def main(argv=None):
    """Entry point of the ``fastbp`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except CLIError as exc:
        print(f"fastbp: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # fastbp predict ... | head
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
