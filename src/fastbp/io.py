"""Model files: one ``.npz`` of plain arrays, no pickle anywhere.

A file holds the flat parameters, the architecture and regularisation
(alpha, dropout rates), the optimizer (name, hyper-parameters, step count,
state), the learning-rate schedule (as JSON text), the shuffling and dropout
RNG states, the preprocessing the model applies (``input_mean``,
``input_scale``, ``target_mean``, ``target_scale``, ``classes``: empty arrays
where the model has none), ``net.metadata`` (JSON text), the training
history, a format version, a SHA-256 checksum of the parameter bytes and
the names of all its arrays (``members``: a file missing one it lists is
corrupted; files written before the list are read without it).
Version 4 adds the one-hot categories of text columns (``category_columns``,
``category_sizes``, ``category_labels``: the labels of every category column,
one after another). Older versions are read as well (without categories):
version 3 is version 4 less the categories; version 2 has no preprocessing arrays (the
command line kept its feature scaling and class names in the metadata, and
those are read into the model's attributes; the first version 2 files,
from before the command line, have no metadata), version 1 neither alpha,
dropout, schedule nor metadata, and one RNG state.

The optimizer is named as the fastbp optimizer it runs as (a subclass of
``Adam`` as ``adam``; scikit-learn's, of :mod:`fastbp.sklearn`, as
``sklearnsgd``/``sklearnadam``); the seed as an integer, or as its decimal
text beyond int64 (NumPy's own 128-bit entropy, say). ``save`` refuses
anything that would need pickle.

``save`` writes to a temporary file in the same folder, flushes and fsyncs it,
then renames it over the target, so a crash mid-save leaves the old file
whole; through a symbolic link it writes the file the link points to.
``load`` reads with ``allow_pickle=False`` and checks the version and the
checksum, so a truncated, corrupted or foreign file raises
:class:`ModelFileError` instead of giving a wrong model.

Writing, the format's constants and the checked read live in
``fastbp._modelfile``, which imports no model (``MLP.save`` writes through
it); this module builds a model from what it reads, so it imports
:mod:`fastbp.model` and the model never imports it.
"""
import json

import numpy as np

from ._modelfile import (FORMAT, READABLE, V2_CLI_KEYS, VERSION, ZIP_MAGIC,  # noqa: F401
                         ModelFileError, _path, read, read_optimizer, save,
                         write_atomically)
from ._validate import warn
from .model import MLP
from .optim import LBFGS
from .schedules import from_json


def load(path):
    """Read a model written by :func:`save`; raises ModelFileError if it is not one."""
    data, version = read(path)
    path = _path(path)
    try:
        params = data["params"]
        if version >= 2:   # (only version 1 lacks them: an edited file read as alpha 0, no schedule)
            # (metadata came with the command line, within version 2: the first
            # version 2 files have none)
            missing = [key for key in ("alpha", "dropout", "schedule", "metadata")
                       if key not in data and (key != "metadata" or version >= 3)]
            if missing:
                raise ModelFileError(f"{path!r} has format version {version} but lacks the"
                                     f" arrays {', '.join(missing)}")
        # Counts are integers in the file (float sizes 3.9 were read as 3)
        _integers(data, ("sizes", "optimizer_t", "seed"), path)
        # Checked before a model of the file's sizes is built and initialised:
        # an edited file's sizes could ask for more memory than there is.
        sizes = [int(s) for s in data["sizes"]]
        if params.ndim != 1 or params.size != sum(a * b + b for a, b in zip(sizes, sizes[1:])):
            raise ModelFileError(f"{path!r}: params of {params.dtype}{params.shape} do not fit"
                                 f" sizes {sizes}")
        net = _model(data, sizes)
        if params.shape != net.params.shape or params.dtype != net.params.dtype:
            raise ModelFileError(f"{path!r}: params of {params.dtype}{params.shape} do not fit"
                                 f" sizes {list(net.sizes)}")
        net.params[:] = params
        rng = data["rng"]
        if rng.dtype != np.uint64 or rng.shape != ((1,) if version == 1 else (2,)):
            raise ModelFileError(f"{path!r}: rng must hold {1 if version == 1 else 2} uint64"
                                 f" state(s) in a version {version} file; got {rng.dtype}{rng.shape}")
        net._rng[:rng.size] = rng  # version 1: the dropout stream stays as seeded
        if "metadata" in data:
            net.metadata = json.loads(str(data["metadata"]))
        _read_preprocessing(net, data, version, path)
        net._set_optimizer(read_optimizer(data, net.dtype, net.n_params, path), loading=True)
        schedule = from_json(str(data["schedule"])) if str(data.get("schedule", "")) else None
        if schedule is not None and isinstance(net.optimizer, LBFGS):
            # (an older fastbp kept one set by hand on an L-BFGS model, whose
            # fits skipped it: it never ran, and no fit may run it now)
            warn(f"{path!r} holds a learning-rate schedule, {schedule!r}, on an L-BFGS model,"
                 " which takes no learning rate: it never ran, and is dropped")
        elif schedule is not None:  # (after the optimizer, whose setter ends a schedule)
            net.schedule = schedule
            if getattr(net.schedule, "lr0", None) is not None:
                # Started: this model's own, as before the save (given again
                # with an lr it starts anew, another model given it takes a
                # fresh copy, another optimizer ends it). One set by hand and
                # not yet run stays nobody's, as it was.
                net.schedule._net = net
        _read_history(net.history, data, path)
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"{path!r} is not a valid fastbp model file: {exc}") from None
    return net


def _integers(data, keys, path):
    """Refuse a count or seed that is not an integer in the file (``seed`` may
    be its decimal text, beyond int64)."""
    for key in keys:
        if key in data and data[key].dtype.kind not in ("iuU" if key == "seed" else "iu"):
            raise ModelFileError(f"{path!r}: {key} must hold integers; got"
                                 f" {data[key].dtype} {data[key].tolist()!r}")


def _model(data, sizes):
    """A new model of the file's architecture (``sizes`` read from it) and
    regularisation."""
    seed = int(data["seed"])  # (a seed beyond int64 is stored as its decimal text)
    return MLP(sizes, activation=[str(a) for a in data["activations"]],
               output=str(data["output"]), loss=str(data["loss"]), dtype=str(data["dtype"]),
               seed=None if seed < 0 else seed, init=str(data["init"]),
               alpha=float(data.get("alpha", 0.0)),
               dropout=[float(r) for r in data.get("dropout", np.zeros(len(data["sizes"]) - 2))])


def _read_history(history, data, path):
    for key in data:
        if key.startswith("history_"):
            history.history[key[len("history_"):]] = [float(v) for v in data[key]]
    epochs = len(history.history["loss"])
    longer = {k: len(v) for k, v in history.history.items() if len(v) > epochs}
    if longer:   # (no fastbp wrote other columns without loss: one without is damaged)
        raise ModelFileError(f"{path!r}: the history has {epochs} epochs of loss but more"
                             f" entries of {longer}")
    for column in history.history.values():
        # Files from before history kept one entry per epoch under every
        # key: a metric reported by later fits only (validation) lacks
        # the earlier epochs' entries.
        column[:0] = [float("nan")] * (epochs - len(column))
    history.epoch = list(range(epochs))


def _check_categories(data, path):
    """The three category arrays agree: a column each, once, with at least one
    label, the sizes adding up to the labels (an edited file merged columns or
    dropped labels silently)."""
    columns, sizes, labels = (data[k] for k in ("category_columns", "category_sizes",
                                                "category_labels"))
    if (columns.ndim != 1 or sizes.shape != columns.shape or labels.ndim != 1
            or columns.dtype.kind not in "iu" or sizes.dtype.kind not in "iu"
            or (sizes < 1).any() or int(sizes.sum()) != labels.size
            or np.unique(columns).size != columns.size):
        raise ModelFileError(f"{path!r}: its categories do not agree: columns"
                             f" {columns.tolist()!r}, sizes {sizes.tolist()!r} for"
                             f" {labels.size} labels (each column once, sizes >= 1 adding up to"
                             " the labels)")


_PREPROCESSING = ("input_mean", "input_scale", "target_mean", "target_scale", "classes")
_CATEGORIES = ("category_columns", "category_sizes", "category_labels")


def _read_preprocessing(net, data, version, path):
    """Set the model's scaling and classes from a file's arrays (version 3)
    or, for a version 2 file, from what the old command line kept in metadata."""
    if version >= 3:
        found = {key: data[key] for key in _PREPROCESSING}
        found = {k: (None if v.size == 0 else v) for k, v in found.items()}
        for kind in ("input", "target"):   # (save writes both or neither: half was read as 0 or 1)
            if (found[f"{kind}_mean"] is None) != (found[f"{kind}_scale"] is None):
                raise ValueError(f"{kind}_mean and {kind}_scale must both be empty or both"
                                     " hold the scaling; one of them is empty")
    else:
        # (a version 3 or 4 file whose version was edited down: its scaling,
        # classes and categories were ignored, the model predicting class
        # indices from unscaled inputs)
        later = [key for key in (*_PREPROCESSING, *_CATEGORIES) if key in data]
        if later:
            raise ModelFileError(f"{path!r} has format version {version} but holds"
                                 f" {', '.join(later)}, arrays of later versions")
        meta = net.metadata
        task = meta.get("task") if isinstance(meta, dict) else None
        if task not in ("classification", "regression") or "x_mean" not in meta:
            return
        if "x_scale" not in meta:   # (read as scale 1)
            raise ModelFileError(f"{path!r}: its metadata holds x_mean without x_scale")
        found = {"input_mean": meta.pop("x_mean"), "input_scale": meta.pop("x_scale"),
                 "target_mean": meta.pop("y_mean", None), "target_scale": meta.pop("y_scale", None),
                 "classes": meta.pop("classes", None)}
    if version == 3 and any(key in data for key in _CATEGORIES):
        raise ModelFileError(f"{path!r} has format version 3 but holds"
                             f" {', '.join(k for k in _CATEGORIES if k in data)}, arrays of"
                             f" version 4 (its text columns' categories)")
    if version >= 4:
        _check_categories(data, path)
    if version >= 4 and data["category_columns"].size:
        bounds = np.cumsum(data["category_sizes"])[:-1]
        net.categories = {int(j): labels.tolist() for j, labels in
                          zip(data["category_columns"], np.split(data["category_labels"], bounds))}
    net.set_input_scaling(found["input_mean"], found["input_scale"])
    net._set_target_scaling(found["target_mean"], found["target_scale"], loading=True)
    net.classes_ = found["classes"]
