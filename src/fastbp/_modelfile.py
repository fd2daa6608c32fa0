"""The model file format, below both :mod:`fastbp.io` and :mod:`fastbp.model`:
a model's attributes as plain arrays, written atomically to one ``.npz``,
and the checked read of those arrays back (format marker, version,
checksum). Building a model from them is :func:`fastbp.io.load`'s part, so
this module imports neither (``MLP.save`` writes through it, and
``fastbp.io`` imports the model: no import cycle). The format itself is
described in :mod:`fastbp.io`.
"""
import errno
import hashlib
import os
import secrets
import stat

import numpy as np

from .optim import ALPHA, BETA1, BETA2, DAMPENING, EPS, MOMENTUM, NESTEROV, SGD, Adam, RMSprop
from .optim import FILE_NAMES as OPTIMIZERS
from .optim import SklearnAdam, SklearnSGD, file_name
from .schedules import check_saveable

FORMAT = "fastbp-model"
VERSION = 4
READABLE = (1, 2, 3, 4)
# A model file is a zip archive (.npz); these are the first bytes of one.
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# Keys the version 2 command line wrote into metadata, now model attributes.
V2_CLI_KEYS = ("x_mean", "x_scale", "classes", "y_mean", "y_scale")


class ModelFileError(ValueError):
    """A model file that is not a readable fastbp model of a known version."""


ModelFileError.__module__ = "fastbp.io"  # its public home, as before the split


def _digest(params):
    return hashlib.sha256(np.ascontiguousarray(params).tobytes()).hexdigest()


def _path(path):
    """``path`` as str (bytes decoded as the file system does, so that save
    takes what load takes); an empty name is refused, not read as the
    working folder."""
    try:
        path = os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(f"path must be a str or os.PathLike; got {path!r}") from None
    if not path:
        raise ValueError("path must name a file; got ''")
    if "\0" in path:   # (Python's own "embedded null byte" named no path)
        raise ValueError(f"path must not hold a NUL character; got {path!r}")
    return path


def check_saveable_model(net, schedule):
    """Raise what :func:`save` would raise about the model with ``schedule``
    (its own, or the one a fit will run and save: a schedule of the user's
    own, metadata that is not JSON): ``fit`` asks this before it trains with
    a ``ModelCheckpoint``, not at the first checkpoint."""
    check_saveable(schedule)
    _metadata_json(net.metadata)
    _history_columns(net.history)
    opt = net.optimizer
    if getattr(opt, "keeps_state", False) and opt.t > 0 and opt.state is None:
        raise ValueError(f"net.optimizer ({type(opt).__name__}) has taken {opt.t} steps but holds"
                         " no state (set to None by hand?), which load refuses: set its t to 0"
                         " to start it anew, or give it a new optimizer")


def _history_columns(history):
    """The history's columns as float64 arrays, each of one entry per epoch
    of ``loss``, as load reads them: a longer column (set by hand: History
    is a dict) was saved and the file refused by load, a shorter one came
    back padded with NaN, text failed in NumPy naming no key."""
    lock = getattr(type(history), "_lock", None)
    if lock is None:
        return _checked_history(history)
    with lock:
        return _checked_history(history)


def _checked_history(history):
    import numbers
    if not isinstance(history.get("loss"), (list, tuple, np.ndarray)):
        raise TypeError("net.history must hold 'loss', a list of one number per epoch (load"
                        " counts the epochs by it)")
    epochs = len(history["loss"])
    columns = {}
    for key, values in history.items():
        if not isinstance(key, str):
            raise TypeError(f"net.history has the key {key!r}: its keys are metric names (str)")
        if not isinstance(values, (list, tuple, np.ndarray)) or any(
                isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real)
                for v in values):
            bad = values if not isinstance(values, (list, tuple, np.ndarray)) else next(
                v for v in values if isinstance(v, (bool, np.bool_))
                or not isinstance(v, numbers.Real))
            raise TypeError(f"net.history[{key!r}] must be a list of numbers, one per epoch;"
                            f" it holds {bad!r}")
        if len(values) != epochs:
            raise ValueError(f"net.history[{key!r}] has {len(values)} entries, where the history"
                             f" has {epochs} epochs of 'loss': one entry per epoch")
        columns[key] = np.array([float(v) for v in values], dtype=np.float64)
    return columns


def _metadata_json(metadata):
    import json
    # A dict whose keys are text, at every depth: JSON turned the key 1 into
    # "1" (with a key "1" beside it, one value was lost), and the command
    # line read a list as its column names' dict.
    if not isinstance(metadata, dict) and metadata is not None:   # (None: JSON's null, as before)
        raise TypeError(f"net.metadata must be a dict (saved as a JSON object); got"
                        f" {type(metadata).__name__} (a file of an older fastbp, whose save"
                        " took any JSON value, may hold one: set net.metadata to a dict)")
    stack, seen = [("net.metadata", metadata)], set()
    while stack:
        where, value = stack.pop()
        if isinstance(value, (dict, list, tuple)):
            if id(value) in seen:   # (a cycle: json.dumps names it, below)
                continue
            seen.add(id(value))
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise TypeError(f"{where} has the key {key!r}: the keys of net.metadata's"
                                    f" dicts must be str (JSON's are text)")
                stack.append((f"{where}[{key!r}]", item))
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))
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


# How much larger than the file its members may be, uncompressed (plus
# 64 MiB): one of fastbp's is its own size; a user may have compressed one
# (np.savez_compressed), which its floats do not shrink this far.
EXPANSION = 16


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
                             " archive (fastbp model files are .npz files written by net.save)")


def _check_expansion(path, archive):
    """Refuse an archive whose members would take far more memory than the
    file: fastbp writes them uncompressed (np.savez), and a crafted one of
    400 kB held a member of 400 MB of zeros, all read before any check."""
    expanded = sum(info.file_size for info in archive.infolist())
    size = os.path.getsize(path)
    if expanded > EXPANSION * size + (64 << 20):
        raise ModelFileError(f"{path!r} is not a fastbp model file: its {size} bytes would expand"
                             f" to {expanded} (fastbp writes its arrays uncompressed)")


def save(net, path):
    """Write ``net`` to ``path`` (a ``.npz`` file), atomically."""
    path = _path(path)
    check_saveable_model(net, net.schedule)
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
        init=np.array(net.init), seed=_seed(net.seed),
        rng=np.array(net._rng), alpha=np.array(net.alpha),
        dropout=np.array(net.dropout, dtype=np.float64),
        schedule=np.array("" if net.schedule is None else _own_schedule(net).to_json()),
        metadata=np.array(_metadata_json(net.metadata)),
        **_preprocessing(net),
        optimizer=np.array("" if opt is None else file_name(opt)),
        optimizer_hyper=(np.zeros(0) if opt is None else np.array([opt.tol, opt.max_ls])
                         if file_name(opt) == "lbfgs" else opt.hyper),
        optimizer_t=np.array(0 if opt is None else opt.t),
        optimizer_state=(np.zeros((2, 0), net.dtype) if opt is None or opt.state is None
                         else np.array(opt.state)),
    )
    if opt is not None:
        # What load asks of an optimizer, asked here: a state set by hand (NaN,
        # of another dtype, a moment made infinite), a hyper-parameter or a
        # step count no constructor or fit gives, was saved, and every load of
        # the file refused it.
        try:
            read_optimizer(arrays, net.dtype, net.n_params, None)
        except ModelFileError as exc:
            raise ValueError(f"cannot save the model: load would refuse its optimizer ({exc});"
                             " give it a new optimizer, or repair this one") from None
    for key, values in _history_columns(net.history).items():
        arrays["history_" + key] = values
    # The names of every array: read checks them all present, so damage to
    # the zip's directory cannot drop one (a history column) unnoticed. It
    # goes first: a damaged directory record hides the records after it
    # (zipfile reads them as its comment), and a list written last was lost
    # with the history columns it should have missed.
    arrays = {"members": np.array(sorted(arrays) + ["members"], dtype=str), **arrays}
    for key, array in arrays.items():  # np.savez would pickle these; load could not read them
        if array.dtype.hasobject:
            raise TypeError(f"cannot save the model: its {key!r} is not plain data ({array!r})")
    write_atomically(path, lambda fh: np.savez(fh, **arrays), "save the model", ".npz.tmp")


def _own_schedule(net):
    """The schedule the model's next fit runs, as load makes it the loaded
    model's own: one that another model last ran is, to this model's fit, a
    fresh copy (fastbp._args.schedule_first); saved as it was, the loaded
    model continued the other's count and lr0."""
    schedule = net.schedule
    owner = getattr(schedule, "_net", None)
    return schedule.fresh() if owner is not None and owner is not net else schedule


def _seed(seed):
    # -1 for none; int64 where it fits, else the decimal text (any int >= 0
    # seeds NumPy's SeedSequence; an object array would need pickle)
    if seed is None:
        return np.array(-1)
    return np.array(seed if seed < 2 ** 63 else str(seed))


def _temporary(folder, suffix):
    """``(fd, path)`` of a new ``.fastbp-*`` file in ``folder``, made as
    ``open(path, "wb")`` makes a file: mode 0666 less the umask, which the
    system applies (mkstemp's are private, 0600, and reading the umask means
    setting it, for the whole process, a moment: another thread's new file
    came out world-writable)."""
    for _ in range(100):
        name = os.path.join(folder, f".fastbp-{secrets.token_hex(8)}{suffix}")
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                           | getattr(os, "O_BINARY", 0), 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", folder)


def _mode(path, what):
    """``os.stat(path).st_mode``, None where nothing is there (or no folder,
    which the writer names); an OSError saying ``what`` for the rest (a
    name too long, a loop of links), before any file is made."""
    try:
        return os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot {what} to {path!r}: {exc.strerror}", path) from None


def check_writable(path, what, mode=False):
    """Refuse, as ``open(path, "wb")`` would, a file there that its user may
    not write (a model made read-only to keep it was replaced): asked by
    the writer, and by a fit's checkpoints and the command line before they
    do any work (the refusal came after the training). ``mode``: the
    path's, if known."""
    path = _path(path)
    mode = _mode(path, what) if mode is False else mode
    if mode is not None and stat.S_ISREG(mode) and not os.access(path, os.W_OK):
        raise PermissionError(errno.EACCES, f"cannot {what} to {path!r}: the file is not"
                              " writable (read-only)", path)


def check_folder_takes_files(path, what, shown=None):
    """Raise, as :func:`write_atomically` would at the write, where ``path``'s
    folder takes no new file (a read-only file system, no permission; as
    root only the first shows in the folder's mode): asked by a fit's
    checkpoints and the command line before they do any work. A device or
    pipe at ``path`` is written into, not beside: not asked. ``shown``:
    the path as the message names it (a checkpoint's template), else ``path``."""
    path = _path(path)
    mode = _mode(path, what)
    if mode is not None and not stat.S_ISREG(mode):
        return
    folder = os.path.dirname(os.path.realpath(path))
    try:
        fd, tmp = _temporary(folder, ".check")
    except OSError as exc:
        shown = path if shown is None else shown
        raise type(exc)(exc.errno, f"cannot {what} to {shown!r}: its folder {folder!r} takes no"
                        f" new file ({exc.strerror or exc})", folder) from None
    os.close(fd)
    os.unlink(tmp)


def write_atomically(path, write, what, suffix):
    """Call ``write(fh)`` on a temporary file in ``path``'s folder, flush and
    fsync it, then rename it over ``path``: an error leaves the old file
    whole and no temporary file behind; a crash (the process killed) leaves
    the old file whole and may leave the temporary ``.fastbp-*`` file. Errors name ``path`` (or its
    folder), not the temporary file; ``what`` says what was being done.
    As ``open(path, "wb")``, it refuses a file its user may not write, and
    writes straight into a device or a pipe (``/dev/null``, ``/dev/stdout``),
    which a rename would have replaced."""
    path = _path(path)
    if path.endswith(("/", os.sep)):  # ("sub/" of a missing sub was written as a file sub)
        raise IsADirectoryError(errno.EISDIR, f"cannot {what} to {path!r}: it names a folder;"
                                " name a file in it", path)
    # (the path itself, as open() follows it: /dev/stdout's link into /proc
    # is no path realpath can give)
    mode = _mode(path, what)
    if mode is not None and not stat.S_ISREG(mode) and not stat.S_ISDIR(mode):
        # A device, a pipe: written into, as open() writes (a rename replaced
        # them with a file: as root, /dev/null; and /dev/stdout failed).
        try:
            with open(path, "wb") as fh:
                write(fh)
        except OSError as exc:
            raise type(exc)(exc.errno, f"cannot {what} to {path!r}: {exc.strerror or exc}",
                            path) from None
        return
    check_writable(path, what, mode)
    # Through a symbolic link, the file it points to (as open() would write),
    # the link kept.
    target = os.path.realpath(path)
    folder = os.path.dirname(target)
    try:
        fd, tmp = _temporary(folder, suffix)
    except OSError as exc:  # name the folder, not the temporary file that was never made
        reason = (exc.strerror if os.path.isdir(folder) else
                  "not a folder" if os.path.exists(folder) else "no such folder")
        raise type(exc)(exc.errno, f"cannot {what} to {path!r}: {reason}", folder) from None
    fh = os.fdopen(fd, "wb")   # (holds fd from here: closed on every path)
    try:
        # The permissions open() would leave: the old file's, if there is
        # one (a new file has the umask's already).
        if mode is not None:
            os.chmod(tmp, mode & 0o7777)
        try:
            with fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:  # a full disk, a file too large: name path, not the temporary file
            raise type(exc)(exc.errno, f"cannot {what} to {path!r}: {exc.strerror or exc}",
                            path) from None
        try:
            os.replace(tmp, target)
        except OSError as exc:  # e.g. path is a folder
            raise type(exc)(exc.errno, f"cannot {what} to {path!r}: {exc.strerror}", path) from None
    except BaseException:
        fh.close()
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read(path):
    """The arrays of a model file, checked: ``(data, version)``, ``data`` a
    dict of arrays whose ``params`` match their checksum. Raises
    ModelFileError for anything that is not a readable fastbp model file."""
    path = _path(path)
    _check_archive(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            _check_expansion(path, f.zip)
            data = {k: f[k] for k in f.files}
        # A member that is no .npy array (a note added with a zip tool, a
        # folder entry such as __MACOSX/, an array whose header was lost):
        # NumPy hands its bytes over, which failed later as a bare
        # AttributeError naming nothing (review HCM).
        odd = sorted(k for k, v in data.items() if not isinstance(v, np.ndarray))
        if odd:
            raise ModelFileError(f"{path!r} is not a valid fastbp model file: its member(s)"
                                 f" {', '.join(map(repr, odd))} are not NumPy arrays")
        # Elements of no bytes (dtype <U0, V0) take no room in the file, so
        # a header may declare 10**15 of them: NumPy returned them at once,
        # and reading them one by one took years (review HDM). fastbp
        # writes none (an empty string is a <U1).
        hollow = sorted(k for k, v in data.items() if v.dtype.itemsize == 0 and v.size)
        if hollow:
            named = ", ".join(f"{k!r} ({data[k].size} of dtype {data[k].dtype})" for k in hollow)
            raise ModelFileError(f"{path!r} is not a valid fastbp model file: its member(s)"
                                 f" {named} declare elements of no bytes")
    except (FileNotFoundError, IsADirectoryError, PermissionError, ModelFileError):
        raise   # (ModelFileError: _check_expansion's, which names the file already)
    except Exception as exc:  # any damage to the zip container or an array header
        # (BadZipFile, EOFError, ValueError, NotImplementedError for a mangled
        # compression field, ...) means the same thing to the caller.
        raise ModelFileError(f"{path!r} is not a readable fastbp model file: {exc}") from None
    if data.get("format") is None or str(data["format"]) != FORMAT:
        raise ModelFileError(f"{path!r} is not a fastbp model file (no {FORMAT!r} marker)")
    try:
        if data["version"].dtype.kind not in "iu":   # (4.5 was read as 4)
            raise TypeError
        version = int(data["version"])
    except Exception:
        raise ModelFileError(f"{path!r} has no readable format version") from None
    if version not in READABLE:
        raise ModelFileError(f"{path!r} has format version {version}; this fastbp reads"
                             f" versions {', '.join(map(str, READABLE))}")
    try:
        intact = _digest(data["params"]) == str(data["checksum"])
    except Exception as exc:
        raise ModelFileError(f"{path!r} is not a valid fastbp model file: {exc}") from None
    if not intact:
        raise ModelFileError(f"{path!r} is corrupted: the parameters do not match their checksum")
    # A file written on a big-endian machine (np.savez records the byte
    # order): the same values in this machine's order, after the checksum,
    # which covers the bytes as stored (its params were refused as not
    # fitting the sizes, the checks comparing native dtypes).
    data = {k: v if v.dtype.isnative else v.astype(v.dtype.newbyteorder("="))
            for k, v in data.items()}
    if "members" in data:  # (files written before it have none)
        lost = sorted(set(str(m) for m in np.ravel(data["members"])) - set(data))
        if lost:
            raise ModelFileError(f"{path!r} is corrupted: it lists arrays it does not hold:"
                                 f" {', '.join(lost)}")
    return data, version


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


def state_problem(opt, state, t):
    """Why the optimizer ``opt`` cannot take up training from ``state``
    ((2, n) or (2, 0)) after ``t`` steps, in the model file's terms; or ""."""
    # (loaded, and the next fit diverged at its first step; an infinite
    # second moment a float32 fit can reach, and save, is not refused)
    if np.isnan(state).any():
        return "optimizer_state holds NaN values"
    if state.size:
        # A running mean of squares is >= 0, a moment or momentum buffer of
        # finite gradients finite with finite parameters (-1 or inf loaded,
        # and the next fit diverged, blaming the learning rate).
        squares, moments = next((rows for cls, rows in _STATE_ROWS.items()
                                 if isinstance(opt, cls)), ((), ()))
        for row in squares:
            if (state[row] < 0).any():
                return (f"optimizer_state holds a negative mean of squared gradients (row"
                        f" {row}) for {type(opt).__name__}")
        for row in moments:
            if not np.isfinite(state[row]).all():
                return (f"optimizer_state holds an infinite moment or momentum (row {row})"
                        f" for {type(opt).__name__}")
    if t > 0 and state.shape[1] == 0 and opt.keeps_state:
        # (loaded, the next step ran on zero moments as if from the first,
        # with step t's bias correction)
        return (f"optimizer_t is {t} but optimizer_state is empty; {type(opt).__name__}"
                f" after {t} steps holds its state")
    return ""


def read_optimizer(data, dtype, n_params, path):
    """The file's optimizer with its hyper-parameters, step count and state, or
    None; ModelFileError for one that no constructor or fit gives (load reads
    a file's so, and save asks it of the arrays it is about to write, with
    ``path`` None: its messages then name no file)."""
    where = "" if path is None else f"{path!r}: "
    name = str(data["optimizer"])
    if not name:
        return None
    if name not in OPTIMIZERS:
        raise ModelFileError(f"{where}unknown optimizer {name!r}; this fastbp knows"
                             f" {sorted(OPTIMIZERS)}")
    t = int(data["optimizer_t"])
    if not 0 <= t < 2 ** 63:   # (2**63 loaded, and the next fit's kernel call overflowed)
        raise ModelFileError(f"{where}optimizer_t (the optimizer's step count) must be"
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
        raise ModelFileError(f"{where}optimizer_hyper must be {opt.hyper.size} finite numbers"
                             f" >= 0; got {hyper.tolist()}")
    # and those its constructor keeps below 1 or above 0 are so (beta1 = 1
    # loaded, and the next fit diverged)
    rules = [r for cls, rs in _HYPER_RULES.items() if isinstance(opt, cls) for r in rs]
    for index, name, rule in rules:
        if not (hyper[index] < 1 if rule == "< 1" else hyper[index] > 0):
            raise ModelFileError(f"{where}optimizer_hyper holds {name} ="
                                 f" {float(hyper[index])!r} for {type(opt).__name__}, which"
                                 f" takes {name} {rule}")
    if isinstance(opt, (SGD, SklearnSGD)) and hyper[NESTEROV] not in (0, 1):
        raise ModelFileError(f"{where}optimizer_hyper holds nesterov ="
                             f" {float(hyper[NESTEROV])!r}; it is 0 or 1")
    if isinstance(opt, SGD) and hyper[NESTEROV] and (hyper[MOMENTUM] == 0 or hyper[DAMPENING]):
        # (loaded, and the next fit ran an update neither SGD(...) nor torch allows)
        raise ModelFileError(f"{where}optimizer_hyper holds nesterov with momentum ="
                             f" {float(hyper[MOMENTUM])!r} and dampening ="
                             f" {float(hyper[DAMPENING])!r}; SGD's nesterov needs momentum > 0"
                             " and dampening = 0")
    opt.hyper[:] = hyper
    opt.t = t
    state = data["optimizer_state"]
    if state.ndim != 2 or state.shape[0] != 2 or state.shape[1] not in (0, n_params):
        raise ModelFileError(f"{where}optimizer_state must be (2, {n_params}) (or (2, 0));"
                             f" got {state.shape}")
    if state.dtype != dtype:  # (as params: a float64 state was rounded into a float32 model)
        raise ModelFileError(f"{where}optimizer_state of {state.dtype} in a {np.dtype(dtype)}"
                             " model")
    problem = state_problem(opt, state, t)
    if problem:
        raise ModelFileError(where + problem)
    opt.state = None if state.shape[1] == 0 else state.astype(dtype, copy=True)
    return opt
