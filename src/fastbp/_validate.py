"""Checks at the public boundary. Each error names the argument, what was
expected and what was given; nothing below the boundary checks again."""
import numbers

import numpy as np


def _as_array(value, name):
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array; got a {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers (bool, int or float); got dtype {arr.dtype}")
    return arr


def _finite_contiguous(arr, dtype, name):
    # Converted once: C order, the model's dtype, writable (Numba compiles
    # read-only arrays separately).
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, by name
        out = np.ascontiguousarray(arr, dtype=dtype)
    if not out.flags.writeable:
        out = out.copy()
    # min and max propagate NaN and show +-inf: two passes, no temporary.
    if out.size and not (np.isfinite(out.min()) and np.isfinite(out.max())):
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])
        raise ValueError(f"{name} must be finite; found {out[where]} at index {where}"
                         f" (after conversion to {out.dtype})")
    return out


def check_X(X, n_features, dtype, name="X"):
    """X as a C-contiguous (n, n_features) array of ``dtype``."""
    arr = _as_array(X, name)
    if arr.ndim != 2:
        hint = ""
        if arr.ndim == 1 and n_features == 1:  # n samples of one feature
            hint = "; the network takes 1 feature, so for one sample per value use X.reshape(-1, 1)"
        elif arr.ndim == 1 and arr.shape[0] == n_features:  # one sample
            hint = f"; for one sample of the network's {n_features} features use X.reshape(1, -1)"
        elif arr.ndim == 1:
            hint = f"; the network expects sizes[0] = {n_features} features per sample"
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got a {arr.ndim}-D array"
                         f" of shape {arr.shape}{hint}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); need at least one sample")
    if arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features per sample, but the network expects"
                         f" sizes[0] = {n_features}")
    return _finite_contiguous(arr, dtype, name)


def check_targets(y, n_samples, output, n_out, dtype, name="y", x_name="X"):
    """Targets as a C-contiguous (n, n_out) array of ``dtype`` (one-hot for softmax)."""
    arr = _as_array(y, name)
    if arr.ndim == 0 or arr.shape[0] != n_samples:
        got = "a scalar" if arr.ndim == 0 else f"{arr.shape[0]} rows"
        raise ValueError(f"{x_name} and {name} must have the same number of samples: {x_name} has"
                         f" {n_samples}, {name} has {got}")
    if output == "softmax":
        if arr.ndim != 1:
            raise ValueError(f"{name} must be 1-D integer class labels for a softmax output; got"
                             f" shape {arr.shape}")
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all():
                raise ValueError(f"{name} must be finite class labels; found NaN or infinity")
            if (arr != np.round(arr)).any():
                bad = arr[arr != np.round(arr)][0]
                raise ValueError(f"{name} must hold integer class labels 0..{n_out - 1}; found {bad}")
        bad = arr[(arr < 0) | (arr >= n_out)]  # before the cast, which would wrap 1e300
        if bad.size:
            raise ValueError(f"{name} holds class labels outside 0..{n_out - 1} (sizes[-1] ="
                             f" {n_out} classes); found {bad[0]}")
        labels = arr.astype(np.int64)
        Y = np.zeros((n_samples, n_out), dtype=dtype)
        Y[np.arange(n_samples), labels] = 1
        return Y
    if arr.ndim == 1:
        if n_out != 1:
            raise ValueError(f"{name} must have shape (n_samples, {n_out}) for {n_out} outputs;"
                             f" got shape {arr.shape}")
        arr = arr.reshape(-1, 1)
    elif arr.ndim != 2 or arr.shape[1] != n_out:
        raise ValueError(f"{name} must have shape (n_samples, {n_out})"
                         f"{' or (n_samples,)' if n_out == 1 else ''}; got shape {arr.shape}")
    Y = _finite_contiguous(arr, dtype, name)
    if output == "sigmoid" and ((Y < 0) | (Y > 1)).any():
        bad = Y[(Y < 0) | (Y > 1)][0]
        raise ValueError(f"{name} must hold 0/1 targets (or probabilities in [0, 1]) for a"
                         f" sigmoid output; found {bad}")
    return Y


def check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value}")
    return int(value)


def check_positive(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number; got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number; got {value}")
    return float(value)


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_seed(value, name="seed"):
    if value is None:
        return None
    return check_int(value, name, 0)


def check_choice(value, name, choices):
    """The canonical spelling in ``choices`` of the name ``value``, in any case
    ("ReLU" is "relu"); names differ by more than case, so none is ambiguous."""
    if isinstance(value, str):
        for choice in choices:
            if value.casefold() == choice.casefold():
                return choice
    raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
