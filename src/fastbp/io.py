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
                         ModelFileError, _path, read, save, write_atomically)
from ._validate import warn
from .model import MLP
from .optim import ALPHA, BETA1, BETA2, DAMPENING, EPS, MOMENTUM, NESTEROV, SGD, Adam, RMSprop
from .optim import FILE_NAMES as OPTIMIZERS
from .optim import LBFGS, SklearnAdam, SklearnSGD
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
        net._set_optimizer(_optimizer(data, net.dtype, net.n_params, path), loading=True)
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


# What each optimizer's constructor asks of its hyper-parameters beyond
# "finite and >= 0" (fastbp.optim): (index, name, rule); AdamW is an Adam.
_ADAM = ((BETA1, "beta1", "< 1"), (BETA2, "beta2", "< 1"), (EPS, "eps", "> 0"))
_HYPER_RULES = {
    SGD: ((MOMENTUM, "momentum", "< 1"), (DAMPENING, "dampening", "< 1")),
    Adam: _ADAM, SklearnAdam: _ADAM,
    RMSprop: ((ALPHA, "alpha", "< 1"), (MOMENTUM, "momentum", "< 1"), (EPS, "eps", "> 0")),
}


# Which rows of each optimizer's state are means of squared gradients (>= 0;
# +inf a float32 fit can reach) and which moments or momentum buffers
# (finite): fastbp.optim's kernels.
_STATE_ROWS = {SGD: ((), (0,)), SklearnSGD: ((), (0,)), Adam: ((1,), (0,)),
               SklearnAdam: ((1,), (0,)), RMSprop: ((0,), (1,))}


def _optimizer(data, dtype, n_params, path):
    """The file's optimizer with its hyper-parameters, step count and state, or None."""
    name = str(data["optimizer"])
    if not name:
        return None
    if name not in OPTIMIZERS:
        raise ModelFileError(f"{path!r}: unknown optimizer {name!r}; this fastbp knows"
                             f" {sorted(OPTIMIZERS)}")
    t = int(data["optimizer_t"])
    if not 0 <= t < 2 ** 63:   # (2**63 loaded, and the next fit's kernel call overflowed)
        raise ModelFileError(f"{path!r}: optimizer_t (the optimizer's step count) must be"
                             f" in [0, 2**63); got {t}")
    hyper = np.asarray(data["optimizer_hyper"], dtype=np.float64)
    if name == "lbfgs":
        tol, max_ls = hyper
        opt = OPTIMIZERS[name](tol=float(tol), max_ls=int(max_ls))
        opt.t = t
        return opt
    opt = OPTIMIZERS[name]()
    # Every hyper-parameter (learning rate, momentum, betas, eps, weight
    # decay, ...) is finite and >= 0, whatever the optimizer.
    if hyper.shape != opt.hyper.shape or not (np.isfinite(hyper).all() and (hyper >= 0).all()):
        raise ModelFileError(f"{path!r}: optimizer_hyper must be {opt.hyper.size} finite numbers"
                             f" >= 0; got {hyper.tolist()}")
    # and those its constructor keeps below 1 or above 0 are so (beta1 = 1
    # loaded, and the next fit diverged)
    rules = [r for cls, rs in _HYPER_RULES.items() if isinstance(opt, cls) for r in rs]
    for index, name, rule in rules:
        if not (hyper[index] < 1 if rule == "< 1" else hyper[index] > 0):
            raise ModelFileError(f"{path!r}: optimizer_hyper holds {name} ="
                                 f" {float(hyper[index])!r} for {type(opt).__name__}, which"
                                 f" takes {name} {rule}")
    if isinstance(opt, (SGD, SklearnSGD)) and hyper[NESTEROV] not in (0, 1):
        raise ModelFileError(f"{path!r}: optimizer_hyper holds nesterov ="
                             f" {float(hyper[NESTEROV])!r}; it is 0 or 1")
    if isinstance(opt, SGD) and hyper[NESTEROV] and (hyper[MOMENTUM] == 0 or hyper[DAMPENING]):
        # (loaded, and the next fit ran an update neither SGD(...) nor torch allows)
        raise ModelFileError(f"{path!r}: optimizer_hyper holds nesterov with momentum ="
                             f" {float(hyper[MOMENTUM])!r} and dampening ="
                             f" {float(hyper[DAMPENING])!r}; SGD's nesterov needs momentum > 0"
                             " and dampening = 0")
    opt.hyper[:] = hyper
    opt.t = t
    state = data["optimizer_state"]
    if state.ndim != 2 or state.shape[0] != 2 or state.shape[1] not in (0, n_params):
        raise ModelFileError(f"{path!r}: optimizer_state must be (2, {n_params}) (or (2, 0));"
                             f" got {state.shape}")
    if state.dtype != dtype:  # (as params: a float64 state was rounded into a float32 model)
        raise ModelFileError(f"{path!r}: optimizer_state of {state.dtype} in a {np.dtype(dtype)}"
                             " model")
    # (loaded, and the next fit diverged at its first step; an infinite
    # second moment a float32 fit can reach, and save, is not refused)
    if np.isnan(state).any():
        raise ModelFileError(f"{path!r}: optimizer_state holds NaN values")
    if state.size:
        # A running mean of squares is >= 0, a moment or momentum buffer of
        # finite gradients finite with finite parameters (-1 or inf loaded,
        # and the next fit diverged, blaming the learning rate).
        squares, moments = next((rows for cls, rows in _STATE_ROWS.items()
                                 if isinstance(opt, cls)), ((), ()))
        for row in squares:
            if (state[row] < 0).any():
                raise ModelFileError(f"{path!r}: optimizer_state holds a negative mean of squared"
                                     f" gradients (row {row}) for {type(opt).__name__}")
        for row in moments:
            if not np.isfinite(state[row]).all():
                raise ModelFileError(f"{path!r}: optimizer_state holds an infinite moment or"
                                     f" momentum (row {row}) for {type(opt).__name__}")
    if t > 0 and state.shape[1] == 0 and opt.keeps_state:
        # (loaded, the next step ran on zero moments as if from the first,
        # with step t's bias correction)
        raise ModelFileError(f"{path!r}: optimizer_t is {t} but optimizer_state is empty;"
                             f" {type(opt).__name__} after {t} steps holds its state")
    opt.state = None if state.shape[1] == 0 else state.astype(dtype, copy=True)
    return opt


def _read_history(history, data, path):
    for key in data:
        if key.startswith("history_"):
            history.history[key[len("history_"):]] = [float(v) for v in data[key]]
    epochs = len(history.history["loss"])
    longer = {k: len(v) for k, v in history.history.items() if len(v) > epochs}
    if longer and "history_loss" in data:
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


def _read_preprocessing(net, data, version, path):
    """Set the model's scaling and classes from a file's arrays (version 3)
    or, for a version 2 file, from what the old command line kept in metadata."""
    if version >= 3:
        found = {key: data[key] for key in ("input_mean", "input_scale", "target_mean",
                                             "target_scale", "classes")}
        found = {k: (None if v.size == 0 else v) for k, v in found.items()}
        for kind in ("input", "target"):   # (save writes both or neither: half was read as 0 or 1)
            if (found[f"{kind}_mean"] is None) != (found[f"{kind}_scale"] is None):
                raise ValueError(f"{kind}_mean and {kind}_scale must both be empty or both"
                                     " hold the scaling; one of them is empty")
    else:
        meta = net.metadata
        task = meta.get("task") if isinstance(meta, dict) else None
        if task not in ("classification", "regression") or "x_mean" not in meta:
            return
        if "x_scale" not in meta:   # (read as scale 1)
            raise ModelFileError(f"{path!r}: its metadata holds x_mean without x_scale")
        found = {"input_mean": meta.pop("x_mean"), "input_scale": meta.pop("x_scale"),
                 "target_mean": meta.pop("y_mean", None), "target_scale": meta.pop("y_scale", None),
                 "classes": meta.pop("classes", None)}
    if version >= 4:
        _check_categories(data, path)
    if version >= 4 and data["category_columns"].size:
        bounds = np.cumsum(data["category_sizes"])[:-1]
        net.categories = {int(j): labels.tolist() for j, labels in
                          zip(data["category_columns"], np.split(data["category_labels"], bounds))}
    net.set_input_scaling(found["input_mean"], found["input_scale"])
    net._set_target_scaling(found["target_mean"], found["target_scale"], loading=True)
    net.classes_ = found["classes"]
