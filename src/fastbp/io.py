"""Model files: one ``.npz`` of plain arrays, no pickle anywhere.

A file holds the flat parameters, the architecture and regularisation
(alpha, dropout rates), the optimizer (name, hyper-parameters, step count,
state), the learning-rate schedule (as JSON text), the shuffling and dropout
RNG states, the preprocessing the model applies (``input_mean``,
``input_scale``, ``target_mean``, ``target_scale``, ``classes``: empty arrays
where the model has none), ``net.metadata`` (JSON text), the training
history, a format version and a SHA-256 checksum of the parameter bytes.
Version 4 adds the one-hot categories of text columns (``category_columns``,
``category_sizes``, ``category_labels``: the labels of every category column,
one after another). Older versions are read as well (without categories):
version 3 is version 4 less the categories; version 2 has no preprocessing arrays (the
command line kept its feature scaling and class names in the metadata, and
those are read into the model's attributes), version 1 neither alpha,
dropout, schedule nor metadata, and one RNG state.

``save`` writes to a temporary file in the same folder, flushes and fsyncs it,
then renames it over the target, so a crash mid-save leaves the old file
whole. ``load`` reads with ``allow_pickle=False`` and checks the version and
the checksum, so a truncated, corrupted or foreign file raises
:class:`ModelFileError` instead of giving a wrong model.
"""
import hashlib
import os
import tempfile

import numpy as np

FORMAT = "fastbp-model"
VERSION = 4
READABLE = (1, 2, 3, 4)
# A model file is a zip archive (.npz); these are the first bytes of one.
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# Keys the version 2 command line wrote into metadata, now model attributes.
V2_CLI_KEYS = ("x_mean", "x_scale", "classes", "y_mean", "y_scale")


class ModelFileError(ValueError):
    """A model file that is not a readable fastbp model of a known version."""


def _digest(params):
    return hashlib.sha256(np.ascontiguousarray(params).tobytes()).hexdigest()


def _path(path):
    try:
        return os.fspath(path)
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike; got {path!r}") from None


def _metadata_json(metadata):
    import json
    try:
        return json.dumps(metadata, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"net.metadata must be JSON-serialisable (str, numbers, lists, dicts);"
                        f" {exc}") from None


def _preprocessing(net):
    none = np.zeros(0)
    arrays = {key: none if getattr(net, key) is None else getattr(net, key)
              for key in ("input_mean", "input_scale", "target_mean", "target_scale")}
    arrays["classes"] = none if net.classes_ is None else net.classes_
    cats = net._categories or ()
    arrays["category_columns"] = np.array([j for j, _ in cats], dtype=np.int64)
    arrays["category_sizes"] = np.array([len(labels) for _, labels in cats], dtype=np.int64)
    arrays["category_labels"] = (np.concatenate([labels for _, labels in cats]) if cats
                                 else np.zeros(0, dtype="<U1"))
    return arrays


def _read_preprocessing(net, data, version):
    """Set the model's scaling and classes from a file's arrays (version 3)
    or, for a version 2 file, from what the old command line kept in metadata."""
    if version >= 3:
        found = {key: data[key] for key in ("input_mean", "input_scale", "target_mean",
                                             "target_scale", "classes")}
        found = {k: (None if v.size == 0 else v) for k, v in found.items()}
    else:
        meta = net.metadata
        task = meta.get("task") if isinstance(meta, dict) else None
        if task not in ("classification", "regression") or "x_mean" not in meta:
            return
        found = {"input_mean": meta.pop("x_mean"), "input_scale": meta.pop("x_scale", None),
                 "target_mean": meta.pop("y_mean", None), "target_scale": meta.pop("y_scale", None),
                 "classes": meta.pop("classes", None)}
    if version >= 4 and data["category_columns"].size:
        bounds = np.cumsum(data["category_sizes"])[:-1]
        net.categories = {int(j): labels.tolist() for j, labels in
                          zip(data["category_columns"], np.split(data["category_labels"], bounds))}
    net.set_input_scaling(found["input_mean"], found["input_scale"])
    net.set_target_scaling(found["target_mean"], found["target_scale"])
    net.classes_ = found["classes"]


def _check_archive(path):
    """A clear error for a file that is not an .npz at all (a CSV, a .npy, ...):
    without this, np.load takes it for pickled data and says so."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except OSError as exc:
        raise ModelFileError(f"{path!r} is not a readable fastbp model file: {exc}") from None
    if head not in ZIP_MAGIC:
        raise ModelFileError(f"{path!r} is not a readable fastbp model file: it is not an .npz"
                             f" archive (fastbp model files are .npz files written by net.save or"
                             f" fastbp.save)")


def save(net, path):
    """Write ``net`` to ``path`` (a ``.npz`` file), atomically."""
    path = _path(path)
    opt = net.optimizer
    # One snapshot of what a fit in another thread may be updating (the
    # kernels release the GIL): the file holds the params its checksum is of.
    params = np.array(net.params)
    arrays = dict(
        format=np.array(FORMAT), version=np.array(VERSION),
        params=params, checksum=np.array(_digest(params)),
        sizes=np.array(net.sizes, dtype=np.int64),
        activations=np.array(net.activations, dtype=str).reshape(len(net.activations)),
        output=np.array(net.output), loss=np.array(net.loss_name), dtype=np.array(net.dtype.name),
        init=np.array(net.init), seed=np.array(-1 if net.seed is None else net.seed),
        rng=np.array(net._rng), alpha=np.array(net.alpha),
        dropout=np.array(net.dropout, dtype=np.float64),
        schedule=np.array("" if net.schedule is None else net.schedule.to_json()),
        metadata=np.array(_metadata_json(net.metadata)),
        **_preprocessing(net),
        optimizer=np.array("" if opt is None else type(opt).__name__.lower()),
        optimizer_hyper=(np.zeros(0) if opt is None else np.array([opt.tol, opt.max_ls])
                         if type(opt).__name__ == "LBFGS" else opt.hyper),
        optimizer_t=np.array(0 if opt is None else opt.t),
        optimizer_state=(np.zeros((2, 0), net.dtype) if opt is None or opt.state is None
                         else np.array(opt.state)),
    )
    for key, values in net.history.history.items():
        arrays["history_" + key] = np.array(values, dtype=np.float64)
    write_atomically(path, lambda fh: np.savez(fh, **arrays), "save the model", ".npz.tmp")


def _mode_for(path):
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomically(path, write, what, suffix):
    """Call ``write(fh)`` on a temporary file in ``path``'s folder, flush and
    fsync it, then rename it over ``path``: a crash or an error leaves the
    old file whole and no temporary file behind. Errors name ``path`` (or its
    folder), not the temporary file; ``what`` says what was being done."""
    path = _path(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".fastbp-", suffix=suffix, dir=folder)
    except OSError as exc:  # name the folder, not the temporary file that was never made
        reason = (exc.strerror if os.path.isdir(folder) else
                  "not a folder" if os.path.exists(folder) else "no such folder")
        raise type(exc)(exc.errno, f"cannot {what} to {path!r}: {reason}", folder) from None
    try:
        # mkstemp makes the file private (0600); give it the permissions
        # open() would: the old file's, or the umask's for a new one.
        os.chmod(tmp, _mode_for(path))
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.replace(tmp, path)
        except OSError as exc:  # e.g. path is a folder
            raise type(exc)(exc.errno, f"cannot {what} to {path!r}: {exc.strerror}", path) from None
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path):
    """Read a model written by :func:`save`; raises ModelFileError if it is not one."""
    from .model import MLP
    from .optim import NAMES

    path = _path(path)
    _check_archive(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:  # any damage to the zip container or an array header
        # (BadZipFile, EOFError, ValueError, NotImplementedError for a mangled
        # compression field, ...) means the same thing to the caller.
        raise ModelFileError(f"{path!r} is not a readable fastbp model file: {exc}") from None
    if data.get("format") is None or str(data["format"]) != FORMAT:
        raise ModelFileError(f"{path!r} is not a fastbp model file (no {FORMAT!r} marker)")
    try:
        version = int(data["version"])
    except Exception:
        raise ModelFileError(f"{path!r} has no readable format version") from None
    if version not in READABLE:
        raise ModelFileError(f"{path!r} has format version {version}; this fastbp reads"
                             f" versions {', '.join(map(str, READABLE))}")
    try:
        params = data["params"]
        if _digest(params) != str(data["checksum"]):
            raise ModelFileError(f"{path!r} is corrupted: the parameters do not match their checksum")
        seed = int(data["seed"])
        net = MLP([int(s) for s in data["sizes"]], activation=[str(a) for a in data["activations"]],
                  output=str(data["output"]), loss=str(data["loss"]), dtype=str(data["dtype"]),
                  seed=None if seed < 0 else seed, init=str(data["init"]),
                  alpha=float(data.get("alpha", 0.0)),
                  dropout=[float(r) for r in data.get("dropout", np.zeros(len(data["sizes"]) - 2))])
        if params.shape != net.params.shape or params.dtype != net.params.dtype:
            raise ModelFileError(f"{path!r}: params of {params.dtype}{params.shape} do not fit"
                                 f" sizes {list(net.sizes)}")
        net.params[:] = params
        rng = data["rng"]
        if rng.dtype != np.uint64 or rng.shape not in ((1,), (2,)):
            raise ModelFileError(f"{path!r}: rng must hold 1 or 2 uint64 states; got {rng.dtype}{rng.shape}")
        net._rng[:rng.size] = rng  # version 1: the dropout stream stays as seeded
        if "metadata" in data:
            import json
            net.metadata = json.loads(str(data["metadata"]))
        _read_preprocessing(net, data, version)
        if str(data.get("schedule", "")):
            from .schedules import from_json
            net.schedule = from_json(str(data["schedule"]))
        name = str(data["optimizer"])
        if name == "lbfgs":
            tol, max_ls = data["optimizer_hyper"]
            net.optimizer = NAMES[name](tol=float(tol), max_ls=int(max_ls))
            net.optimizer.t = int(data["optimizer_t"])
        elif name:
            opt = NAMES[name]()
            opt.hyper[:] = data["optimizer_hyper"]
            opt.t = int(data["optimizer_t"])
            state = data["optimizer_state"]
            opt.state = None if state.shape[1] == 0 else state.astype(net.dtype, copy=True)
            net.optimizer = opt
        for key in data:
            if key.startswith("history_"):
                net.history.history[key[len("history_"):]] = [float(v) for v in data[key]]
        epochs = len(net.history.history["loss"])
        for column in net.history.history.values():
            # Files from before history kept one entry per epoch under every
            # key: a metric reported by later fits only (validation) lacks
            # the earlier epochs' entries.
            column[:0] = [float("nan")] * (epochs - len(column))
        net.history.epoch = list(range(epochs))
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"{path!r} is not a valid fastbp model file: {exc}") from None
    return net
