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

import numpy as np

from .optim import file_name
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
    return path


def check_saveable_model(net, schedule):
    """Raise what :func:`save` would raise about the model with ``schedule``
    (its own, or the one a fit will run and save: a schedule of the user's
    own, metadata that is not JSON): ``fit`` asks this before it trains with
    a ``ModelCheckpoint``, not at the first checkpoint."""
    check_saveable(schedule)
    _metadata_json(net.metadata)


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
        schedule=np.array("" if net.schedule is None else net.schedule.to_json()),
        metadata=np.array(_metadata_json(net.metadata)),
        **_preprocessing(net),
        optimizer=np.array("" if opt is None else file_name(opt)),
        optimizer_hyper=(np.zeros(0) if opt is None else np.array([opt.tol, opt.max_ls])
                         if file_name(opt) == "lbfgs" else opt.hyper),
        optimizer_t=np.array(0 if opt is None else opt.t),
        optimizer_state=(np.zeros((2, 0), net.dtype) if opt is None or opt.state is None
                         else np.array(opt.state)),
    )
    for key, values in net.history.history.items():
        arrays["history_" + key] = np.array(values, dtype=np.float64)
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


def write_atomically(path, write, what, suffix):
    """Call ``write(fh)`` on a temporary file in ``path``'s folder, flush and
    fsync it, then rename it over ``path``: an error leaves the old file
    whole and no temporary file behind; a crash (the process killed) leaves
    the old file whole and may leave the temporary ``.fastbp-*`` file. Errors name ``path`` (or its
    folder), not the temporary file; ``what`` says what was being done."""
    path = _path(path)
    if path.endswith(("/", os.sep)):  # ("sub/" of a missing sub was written as a file sub)
        raise IsADirectoryError(errno.EISDIR, f"cannot {what} to {path!r}: it names a folder;"
                                " name a file in it", path)
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
    try:
        # The permissions open() would leave: the old file's, if there is
        # one (a new file has the umask's already).
        try:
            os.chmod(tmp, os.stat(target).st_mode & 0o7777)
        except FileNotFoundError:
            pass
        try:
            with os.fdopen(fd, "wb") as fh:
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
        intact = _digest(data["params"]) == str(data["checksum"])
    except Exception as exc:
        raise ModelFileError(f"{path!r} is not a valid fastbp model file: {exc}") from None
    if not intact:
        raise ModelFileError(f"{path!r} is corrupted: the parameters do not match their checksum")
    if "members" in data:  # (files written before it have none)
        lost = sorted(set(str(m) for m in np.ravel(data["members"])) - set(data))
        if lost:
            raise ModelFileError(f"{path!r} is corrupted: it lists arrays it does not hold:"
                                 f" {', '.join(lost)}")
    return data, version
