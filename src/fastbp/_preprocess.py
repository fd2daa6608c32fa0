"""What a model needs to turn raw rows into network inputs and network
outputs into answers: input standardisation, class labels, target scaling.

The model keeps each as a plain read-only array (or None), so that saving,
printing and export read the same numbers that :class:`fastbp.MLP` applies:

- ``input_mean``, ``input_scale`` (n_in,): the network sees
  ``(X - input_mean) / input_scale``;
- ``classes_`` (n_classes,): the label of each softmax output (or of the
  0/1 answers of one sigmoid output); ``y`` holds labels, ``predict`` returns
  them;
- ``target_mean``, ``target_scale`` (n_out,): for an identity output the
  network learns ``(y - target_mean) / target_scale`` and ``predict`` answers
  ``out * target_scale + target_mean``.

The functions here check those arrays and apply them; MLP calls them from
exactly one place each way (``MLP._inputs`` / ``MLP._targets`` in,
``MLP._answer`` out).
"""
import numpy as np

# Label dtypes a model file can hold without pickle: text, numbers, bools.
LABEL_KINDS = "Uiufb"


def _frozen(arr):
    arr.setflags(write=False)
    return arr


def check_scaling(mean, scale, n, what):
    """``(mean, scale)`` as read-only float64 arrays of shape (n,), or
    ``(None, None)`` when both are None. A scalar applies to every column."""
    if mean is None and scale is None:
        return None, None
    out = []
    for value, name, default in ((mean, "mean", 0.0), (scale, "scale", 1.0)):
        try:
            arr = np.asarray(default if value is None else value, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{what} {name} must be numbers; got {value!r}") from None
        if arr.ndim == 0:
            arr = np.full(n, float(arr))
        if arr.shape != (n,):
            raise ValueError(f"{what} {name} must have shape ({n},), one value per column; got"
                             f" shape {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{what} {name} must be finite; got {arr[~np.isfinite(arr)][0]}")
        out.append(_frozen(np.array(arr, dtype=np.float64)))
    if (out[1] <= 0).any():
        j = int(np.flatnonzero(out[1] <= 0)[0])
        raise ValueError(f"{what} scale must be > 0 in every column; got {out[1][j]} in column {j}")
    return out[0], out[1]


def mean_std(A):
    """Column means and standard deviations of a float64 array (n, m); a
    column that is constant up to rounding (the std below 10 ulp of the mean,
    as scikit-learn's StandardScaler judges it) gets scale 1, not a tiny std
    that would blow its rounding errors up to order 1."""
    mean, std = A.mean(axis=0), A.std(axis=0)
    constant = std <= 10 * np.finfo(np.float64).eps * np.abs(mean)
    return mean, np.where(constant | (std == 0), 1.0, std)


def standardise(A, mean, scale, dtype):
    """``(A - mean) / scale`` in float64, then in ``dtype`` (C-contiguous, new)."""
    out = np.subtract(A, mean, dtype=np.float64)
    out /= scale
    return np.ascontiguousarray(out, dtype=dtype)


def n_classes(output, n_out):
    """How many labels a model of this output and width has, or None."""
    if output == "softmax":
        return n_out
    if output == "sigmoid" and n_out == 1:
        return 2
    return None


def check_classes(classes, output, n_out, name="classes_"):
    """Class labels as a read-only 1-D array, one per class, all distinct."""
    if classes is None:
        return None
    want = n_classes(output, n_out)
    if want is None:
        raise ValueError(f"{name} applies to a softmax output or a single sigmoid output; this"
                         f" network's output is {output!r} with {n_out} units")
    if isinstance(classes, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of labels; got the string {classes!r}")
    arr = _label_array(classes, name)
    if arr.ndim != 1 or arr.shape[0] != want:
        raise ValueError(f"{name} must list {want} labels, one per class"
                         f" ({'sizes[-1]' if output == 'softmax' else 'a sigmoid output: 0 and 1'});"
                         f" got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} must hold finite labels; got {arr.tolist()}")
    if len(np.unique(arr)) != len(arr):
        raise ValueError(f"{name} must hold distinct labels; got {arr.tolist()}")
    return _frozen(arr.copy())


def _label_array(values, name):
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} could not be read as an array of labels: {exc}") from None
    if arr.dtype.kind == "S":
        arr = arr.astype(str)
    elif arr.dtype.kind == "O":
        if all(isinstance(v, str) for v in arr.ravel()):
            arr = arr.astype(str)
        else:
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise TypeError(f"{name} must hold labels of one kind (all text or all numbers);"
                                f" got {arr.ravel()[:5].tolist()}") from None
    if arr.dtype.kind not in LABEL_KINDS:
        raise TypeError(f"{name} must hold text or numeric labels; got dtype {arr.dtype}")
    return arr


def is_text(y):
    """Whether y holds text labels: str or bytes, in a text or object array."""
    arr = np.asarray(y)
    if arr.dtype.kind == "O":
        return arr.size > 0 and all(isinstance(v, (str, bytes)) for v in arr.ravel())
    return arr.dtype.kind in "US"


def learn_classes(y, output, n_out, name="y"):
    """The sorted distinct labels of text labels ``y`` (as ``np.unique``), checked
    against the number of classes the network has."""
    labels = _label_array(y, name)
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D class labels; got shape {labels.shape}")
    classes = np.unique(labels)
    want = n_classes(output, n_out)
    if len(classes) != want:
        raise ValueError(f"{name} holds {len(classes)} distinct labels {classes[:10].tolist()}, but"
                         f" the network has {want} classes; set net.classes_ to the full list of"
                         f" {want} labels before fitting, or size the output layer to the labels")
    return check_classes(classes, output, n_out)


def label_indices(y, classes, name="y"):
    """The index in ``classes`` of every label of ``y``, an int64 array (n,);
    a label that is not a class is a ValueError naming it."""
    if isinstance(y, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of labels; got the string {y!r}")
    labels = _label_array(y, name)
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D class labels; got shape {labels.shape}")
    order = np.argsort(classes, kind="stable")
    ranked = classes[order]
    if (labels.dtype.kind == "U") != (ranked.dtype.kind == "U"):
        found = np.zeros(len(labels), dtype=bool)  # text against numbers: nothing matches
        pos = np.zeros(len(labels), dtype=np.int64)
    else:
        pos = np.minimum(np.searchsorted(ranked, labels), len(ranked) - 1)
        found = ranked[pos] == labels
    if not found.all():
        bad = labels[~found][0]
        raise ValueError(f"{name}: label {bad.item()!r} was not seen in training (the model's"
                         f" classes_ are {classes[:20].tolist()})")
    return order[pos].astype(np.int64)
