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
kept in the model file's metadata, so ``predict`` takes raw rows and prints
the original labels.
"""
import argparse
import csv
import json
import os
import sys
import time

import numpy as np

BUILTIN = ("digits",)
# A numeric target with at most this many distinct integer values is taken
# as class labels, unless --task says otherwise.
MAX_CLASSES = 50


class CLIError(Exception):
    """A user-facing error: printed as ``fastbp: error: ...``, exit status 2."""


# ------------------------------------------------------------------ reading
def _read_csv(path):
    """Header and columns (lists of strings) of a CSV file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise CLIError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise CLIError(f"cannot read {path} as CSV: {exc}") from None
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if len(rows) < 2:
        raise CLIError(f"{path} needs a header row and at least one data row")
    header = [h.strip() for h in rows[0]]
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise CLIError(f"{path}, line {i}: {len(row)} fields, but the header has {len(header)}")
    columns = [[row[j].strip() for row in rows[1:]] for j in range(len(header))]
    return header, columns


def _numeric(values, name, path):
    try:
        return np.array([float(v) for v in values])
    except ValueError:
        bad = next(i for i, v in enumerate(values) if not _is_float(v))
        raise CLIError(f"{path}: column {name!r} is not numeric (data row {bad + 1}:"
                       f" {values[bad]!r}); only the target column may hold text") from None


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
    header, columns = _read_csv(source)
    if feature_names is not None:  # a model's columns, by name
        missing = [f for f in feature_names if f not in header]
        if missing:
            raise CLIError(f"{source} lacks the model's feature column(s) {missing[:5]}")
        X = np.column_stack([_numeric(columns[header.index(f)], f, source) for f in feature_names])
        name = target if target is not None else None
        y = None
        if name is not None and name in header:
            y = columns[header.index(name)]
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
    X = np.column_stack([_numeric(columns[k], h, source) for k, h in enumerate(header) if k != j])
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
    name = "y" if target is None else target
    y = arrays.get(name)
    if y is None and need_target:
        raise CLIError(f"{path} has no target array {name!r}; it has {sorted(arrays)}")
    return X.astype(np.float64), y, [f"x{i}" for i in range(X.shape[1])], name


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
    """y in the model's terms: class indices, or standardised values."""
    meta = net.metadata
    if meta.get("task") == "classification":
        lookup = {str(c): i for i, c in enumerate(meta["classes"])}
        codes = []
        for v in np.asarray(y).ravel():
            key = str(int(float(v))) if _is_float(str(v)) and float(v).is_integer() else str(v)
            if key not in lookup:
                raise CLIError(f"{path}: label {str(v)!r} was not seen in training; the model knows"
                               f" {meta['classes'][:20]}")
            codes.append(lookup[key])
        return np.array(codes, dtype=np.int64)
    values = _numeric([str(v) for v in np.asarray(y).ravel()], meta.get("target", "y"), path)
    return (values - meta.get("y_mean", 0.0)) / meta.get("y_scale", 1.0)


def _scaled(net, X):
    meta = net.metadata
    return (X - np.array(meta.get("x_mean", 0.0))) / np.array(meta.get("x_scale", 1.0))


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
    x_mean, x_scale = X_train.mean(axis=0), X_train.std(axis=0)
    x_scale = np.where(x_scale > 0, x_scale, 1.0)
    meta = {"task": "classification" if classify else "regression", "source": os.path.basename(source),
            "target": target, "features": features, "x_mean": x_mean.tolist(),
            "x_scale": x_scale.tolist()}
    sizes = [X.shape[1]] + _widths(args.hidden)
    if classify:
        meta["classes"] = classes
        sizes.append(len(classes))
        output = "softmax"
    else:
        meta["y_mean"], meta["y_scale"] = float(y_train.mean()), float(y_train.std() or 1.0)
        sizes.append(1)
        output = "identity"
    try:
        net = fastbp.MLP(sizes, activation=args.activation, output=output, dtype=args.dtype,
                         seed=args.seed, alpha=args.alpha, dropout=args.dropout)
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from None
    net.metadata = meta

    def scale_y(v):
        return v if classify else (v - meta["y_mean"]) / meta["y_scale"]

    validation = None
    if len(X_test):
        validation = (_scaled(net, X_test), scale_y(y_test))
    print(f"{net}\n{meta['task']} on {source}: {len(X_train)} training rows, {len(X_test)} test"
          f" rows, {X.shape[1]} features" + (f", {len(classes)} classes" if classify else ""))
    compiled, t0 = fastbp._jit.compilations(), time.perf_counter()
    try:
        history = net.fit(_scaled(net, X_train), scale_y(y_train), epochs=args.epochs,
                          batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
                          seed=args.seed, verbose=args.verbose, validation_data=validation)
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
        _report(net, X_test, y_test if classify else scale_y(y_test), "test")
    if args.out:
        net.save(args.out)
        print(f"model written to {args.out}")
    return net


def _report(net, X, Y, label):
    metrics = net._metrics(*net._data(_scaled(net, X), Y))
    if net.metadata.get("task") == "regression":
        scale = net.metadata.get("y_scale", 1.0)
        pred = net.predict(_scaled(net, X)) * scale
        mse = float(np.mean((pred - np.asarray(Y) * scale) ** 2))
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
    Xs = _scaled(net, X)
    meta = net.metadata
    if net.output == "softmax":
        idx = net.predict(Xs)
        classes = meta.get("classes")
        labels = [classes[i] for i in idx] if classes else idx.tolist()
    else:
        out = net.predict(Xs)
        labels = (out * meta.get("y_scale", 1.0) + meta.get("y_mean", 0.0)).tolist()
    name = meta.get("target", "prediction")
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
    if net.metadata.get("task"):
        Y = _targets_for(net, y, args.data)
    else:
        Y = np.asarray(y)
    try:
        return _report(net, X, Y, os.path.basename(args.data))
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from None


def cmd_info(args):
    if args.model is None:
        return _cache_info()
    net = _load_model(args.model)
    meta = dict(net.metadata)
    for key in ("x_mean", "x_scale", "features"):
        if key in meta:
            meta[key] = f"<{len(meta[key])} values>"
    lines = [repr(net), f"parameters: {net.n_params} {net.dtype.name}",
             f"optimizer: {net.optimizer!r}", f"epochs trained: {len(net.history)}"]
    if net.schedule is not None:
        lines.append(f"schedule: {net.schedule!r}")
    if len(net.history):
        last = {k: v[-1] for k, v in net.history.history.items() if v}
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
def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastbp", description="Train and use multilayer perceptrons (backpropagation on the CPU).")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model and report its test metrics",
                           description="Train an MLP on DATA (default: the built-in digits).")
    train.add_argument("data", nargs="?", help="CSV file, NPZ file (X, y) or 'digits' (default)")
    train.add_argument("--target", help="target column (CSV; default the last) or array (NPZ; default y)")
    train.add_argument("--task", choices=["auto", "classification", "regression"], default="auto")
    train.add_argument("--hidden", default="64,32", help="hidden widths, comma-separated (default 64,32)")
    train.add_argument("--activation", default="relu")
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--lr", type=float, default=None,
                       help="learning rate (default: the optimizer's, 0.01 for sgd, 0.001 for adam)")
    train.add_argument("--optimizer", default="adam", help="sgd, adam, adamw, rmsprop or lbfgs")
    train.add_argument("--alpha", type=float, default=0.0, help="L2 penalty (scikit-learn's alpha)")
    train.add_argument("--dropout", type=float, default=0.0, help="dropout rate on hidden layers")
    train.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    train.add_argument("--test-fraction", type=float, default=0.2)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--verbose", type=int, default=1, help="0 silent, 1 progress bar, 2 a line per epoch")
    train.add_argument("--out", help="write the trained model to this .npz file")
    train.set_defaults(func=cmd_train)
    predict = sub.add_parser("predict", help="predict labels or values for DATA")
    predict.add_argument("model")
    predict.add_argument("data")
    predict.add_argument("--out", help="write a CSV here instead of printing")
    predict.set_defaults(func=cmd_predict)
    evaluate = sub.add_parser("evaluate", help="loss and accuracy or R^2 of a model on DATA")
    evaluate.add_argument("model")
    evaluate.add_argument("data")
    evaluate.set_defaults(func=cmd_evaluate)
    info = sub.add_parser("info", help="describe a model file; without one, fastbp's kernel cache")
    info.add_argument("model", nargs="?")
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
