"""Loss landscapes: the loss along random directions and between two solutions.

After Li, Xu, Taylor, Studer and Goldstein, *Visualizing the Loss Landscape
of Neural Nets* (NeurIPS 2018, arXiv:1712.09913)::

    line:          f(a)    = E(theta + a d1)                    a in [-span, span]
    surface:       f(a, b) = E(theta + a d1 + b d2)             a, b in [-span, span]
    interpolate:   f(t)    = E((1 - t) theta_a + t theta_b)     (Goodfellow et al. 2015)

``E`` is :meth:`fastbp.MLP.loss` (the mean loss over the data, plus the L2
term when the model has ``alpha > 0``), ``theta`` the model's flat
``params``. The directions ``d1``, ``d2`` are Gaussian, drawn over the whole
flat buffer and *filter-normalised* (Li et al., section 4): each unit's
incoming weight row ``d[W_l][i]`` is rescaled to the Euclidean norm of the
same row of ``theta``, so that a step of ``a`` moves every unit by the same
fraction of its own weights, whatever the layer's scale; bias entries are
zero unless ``include_biases`` (then rescaled to the norm of the layer's
biases: still zero for biases all zero, as a new model's).

Every grid point is evaluated by one compiled kernel, :func:`grid_losses`,
which writes ``c0 theta + c1 d1 + c2 d2`` into a scratch buffer and runs the
network's loss kernel on it; the model's ``params`` are never written.

The result records live in ``fastbp._landscape_results`` and the plots in
``fastbp._plot_landscape`` (beside :mod:`fastbp.plot`, whose figure helpers
they use); both are public here, under the names they have always had.
"""
import time

import numpy as np

from ._jit import jit
from ._static import array_guard, same_scratch
from ._landscape_results import Interpolation, Line, Surface
from ._plot_landscape import (SURFACE_KINDS, plot_interpolation, plot_line,  # noqa: F401
                              plot_overview, plot_surface)
from ._validate import _as_array, array_room, check_choice, check_int, check_seed
from .model import CHUNK, MLP
from .network import _ndim_guard, _overlap, _overlap2, loss_value, penalty

__all__ = ["line", "surface", "interpolate", "random_directions", "filter_normalise",
           "grid_losses", "Line", "Surface", "Interpolation", "plot_line", "plot_surface",
           "plot_interpolation", "plot_overview", "NORMALISATIONS", "SURFACE_KINDS"]

NORMALISATIONS = ("filter", None)
"""The ``normalise`` values the directions take: ``"filter"`` (Li et al.'s
filter-wise normalisation) or None (the directions as drawn)."""


# ------------------------------------------------------------------ kernel
_coefs_matrix = _ndim_guard((2,), "grid_losses: coefs must be a 2-D array, (k, 3)")
_float64_out = array_guard("grid_losses: out must be a 1-D float64 array, (k,)", (1,), ("float64",))
_a_direction = array_guard("grid_losses: d1 and d2 must be 1-D arrays, (n_params,)", (1,))


@jit
def grid_losses(out, scratch, params, d1, d2, coefs, ws, plan, X, Y, loss, l2):
    """Loss at ``c0 params + c1 d1 + c2 d2`` for every row ``(c0, c1, c2)`` of ``coefs``.

    out (k,) float64; scratch, params (n_params,) of the model's dtype;
    d1, d2 (n_params,) float64; coefs (k, 3) float64; ws a workspace whose
    capacity divides X into chunks as :meth:`fastbp.MLP.loss` does; X (n, n_in),
    Y (n, m) as converted by the model; ``loss`` its loss code, ``l2`` its
    alpha. ``out[k]`` is the mean loss plus ``0.5 l2 penalty / n``, exactly
    what ``MLP.loss`` returns for those params. ``params`` is only read.
    """
    # What loss_value does not check of these (an index past an array's end
    # would read or write memory that is not its own).
    same_scratch(params, scratch)   # (loss_value would name scratch "params")
    _coefs_matrix(coefs)
    _float64_out(out)   # (an integer out truncated every loss, a float32 one rounded it)
    _a_direction(d1)    # (a 2-D one failed deep in Numba's typing)
    _a_direction(d2)
    m = params.size
    if scratch.size != m or d1.size != m or d2.size != m:
        raise ValueError("grid_losses: scratch, d1 and d2 must have params.size entries")
    if coefs.shape[1] != 3 or out.shape[0] != coefs.shape[0]:
        raise ValueError("grid_losses: coefs must be (k, 3) and out (k,)")
    if not (l2 >= 0 and l2 < np.inf):   # (a model's alpha: -5 gave a negative "loss")
        raise ValueError("grid_losses: l2 must be finite and >= 0")
    if (_overlap(scratch, params) or _overlap(scratch, d1) or _overlap(scratch, d2)
            or _overlap(scratch, coefs) or _overlap(scratch, X) or _overlap(scratch, Y)
            or _overlap(scratch, out) or _overlap(scratch, ws)):
        raise ValueError("grid_losses: scratch must not overlap params, d1, d2, coefs, X, Y,"
                         " out or ws")
    if (_overlap(out, params) or _overlap(out, d1) or _overlap(out, d2) or _overlap(out, coefs)
            or _overlap(out, X) or _overlap(out, Y) or _overlap(out, ws)):
        raise ValueError("grid_losses: out must not overlap params, d1, d2, coefs, X, Y or ws")
    if _overlap(ws, params) or _overlap(ws, d1) or _overlap(ws, d2) or _overlap(ws, coefs):
        raise ValueError("grid_losses: ws must not overlap params, d1, d2 or coefs")
    if _overlap2(scratch, out, plan, plan):   # (ws's is loss_value's)
        raise ValueError("grid_losses: scratch and out must not overlap plan")
    n = X.shape[0]
    for k in range(coefs.shape[0]):
        c0, c1, c2 = coefs[k, 0], coefs[k, 1], coefs[k, 2]
        # In float64, rounded once to the buffer's dtype; with c0 = 1 the
        # order of operations is NumPy's for params + c1 * d1 + c2 * d2.
        for i in range(params.size):
            scratch[i] = c0 * params[i] + c1 * d1[i] + c2 * d2[i]
        value = loss_value(scratch, ws, plan, X, Y, loss)
        if l2 != 0:
            value += 0.5 * l2 * penalty(scratch, plan) / n
        out[k] = value


def _evaluate(net, X, y, d1, d2, coefs):
    """Run :func:`grid_losses` for ``net`` on (X, y); returns (losses, seconds)."""
    X, Y = net._data(X, y)
    if not isinstance(X, np.ndarray):
        raise TypeError("the loss landscapes take dense X: pass X.toarray() (of a sample of the"
                        " rows, for a large matrix)")
    ws = net._workspace(min(X.shape[0], CHUNK))
    scratch = np.empty_like(net.params)
    out = np.empty(coefs.shape[0])
    args = (scratch, net.params, d1, d2)
    rest = (ws, net.plan, X, Y, net._loss_code, net.alpha)
    # An empty grid first, so that compiling (or loading the cache) stays
    # out of the time reported.
    grid_losses(out[:0], *args, coefs[:0], *rest)
    t0 = time.perf_counter()
    grid_losses(out, *args, coefs, *rest)
    return out, time.perf_counter() - t0


# --------------------------------------------------------------- results
def _describe(net):
    hidden = "/".join(sorted(set(net.activations), key=net.activations.index)) or "no hidden layer"
    return f"MLP {list(net.sizes)}, {hidden}, {net.loss_name}, {net.dtype.name}"


# ------------------------------------------------------------ validation
def _check_net(net, name="net"):
    if not isinstance(net, MLP):
        raise TypeError(f"{name} must be a fastbp.MLP; got {type(net).__name__}")
    return net


# Points of a line or of each axis of a surface, at most: one loss pass over
# the data each (np.linspace of 2**63 - 1 points raised a bare IndexError).
MAX_STEPS = 2 ** 24


def _check_steps(steps):
    return check_int(steps, "steps", 2, MAX_STEPS, " (one loss evaluation over the data each)")


def _check_span(span):
    if isinstance(span, (bool, np.bool_)) or not isinstance(span, (int, float, np.integer, np.floating)):
        raise TypeError(f"span must be a positive finite number; got {span!r}")
    if not (np.isfinite(span) and span > 0):
        raise ValueError(f"span must be a positive finite number; got {span}")
    return float(span)


def _check_interval(span):
    if isinstance(span, (str, bytes)) or not hasattr(span, "__len__") or len(span) != 2:
        raise TypeError(f"span must be a pair (t_min, t_max) of finite numbers; got {span!r}")
    lo, hi = span
    for v in (lo, hi):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"span must be a pair (t_min, t_max) of finite numbers; got {span!r}")
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"span must be a pair (t_min, t_max) of finite numbers with"
                         f" t_min < t_max; got {span!r}")
    return float(lo), float(hi)


def _check_normalise(normalise):
    if normalise is None:
        return None
    try:
        return check_choice(normalise, "normalise", ("filter",))  # "Filter" too
    except ValueError:
        raise ValueError(f"normalise must be 'filter' or None; got {normalise!r}") from None


def _check_direction(direction, net, name):
    try:
        arr = _as_array(direction, name)
    except TypeError as exc:   # (complex: the same words as for bool, below)
        if np.iscomplexobj(direction):
            raise TypeError(f"{name} must hold real numbers (int or float); got dtype"
                            f" {np.asarray(direction).dtype}") from None
        # (_as_array's words allow bool, which a direction is not)
        raise TypeError(str(exc).replace("numbers (bool, int or float)",
                                         "real numbers (int or float)")) from None
    if arr.dtype.kind == "b":
        raise TypeError(f"{name} must hold real numbers (int or float); got dtype bool")
    if arr.ndim != 1 or arr.size != net.n_params:
        raise ValueError(f"{name} must be a flat array of n_params = {net.n_params} values in the"
                         f" layout of net.params; got shape {arr.shape}")
    out = np.array(arr, dtype=np.float64)  # a copy: the result owns its directions
    if not np.isfinite(out).all():
        raise ValueError(f"{name} must be finite; found {out[~np.isfinite(out)][0]} at index"
                         f" {int(np.flatnonzero(~np.isfinite(out))[0])}")
    return out


def _grid(span, steps):
    # linspace(-span, span, steps), made exactly symmetric so that the middle
    # point of an odd grid is exactly 0 (the model's params).
    g = np.linspace(-1.0, 1.0, steps)
    return span * (0.5 * (g - g[::-1]))


# ------------------------------------------------------------ directions
def filter_normalise(net, direction, include_biases=False):
    """Li et al.'s filter normalisation of a direction, as a new array.

    Each row i of each layer's weights, ``d[W_l][i]`` (the incoming weights
    of one output unit: a "filter" of a fully connected layer), is rescaled
    to ``d_row / ||d_row|| * ||theta_row||`` with ``theta = net.params``.
    Bias entries become zero (as Li et al.'s code does by default, its
    ``ignore="biasbn"``), or with ``include_biases`` each layer's bias vector
    is rescaled to the norm of the model's bias vector of that layer (fastbp's
    choice: their code, keeping biases, sets the direction to the biases
    themselves). A row whose norm is zero stays zero.

    Parameters
    ----------
    net : fastbp.MLP
    direction : array_like, (n_params,)
        In the layout of ``net.params``.
    include_biases : bool, default False

    Returns
    -------
    ndarray of float64, (n_params,)
    """
    _check_net(net)
    include_biases = _check_flag(include_biases, "include_biases")
    d = _check_direction(direction, net, "direction")
    theta = np.asarray(net.params, dtype=np.float64)
    layout = net._layout
    for l in range(layout.n_layers):
        w = layout.weight_slice(l)
        shape = (net.sizes[l + 1], net.sizes[l])
        _rescale_rows(d[w].reshape(shape), theta[w].reshape(shape))
        b = layout.bias_slice(l)
        if include_biases:
            _rescale_rows(d[b].reshape(1, -1), theta[b].reshape(1, -1))
        else:
            d[b] = 0.0
    if not np.isfinite(d).all():
        used = np.zeros(theta.size, dtype=bool)   # (the biases only where they take part)
        for l in range(layout.n_layers):
            used[layout.weight_slice(l)] = True
            if include_biases:
                used[layout.bias_slice(l)] = True
        bad = np.flatnonzero(~np.isfinite(theta) & used)
        if bad.size:   # (review HBW: named the direction, which the caller may not have given)
            raise ValueError(f"filter_normalise: net.params[{bad[0]}] is {theta[bad[0]]}: filter"
                             " normalisation scales the direction's rows to the weights' row"
                             " norms, which a non-finite parameter does not have")
        # (a ratio of row norms past float64: 1e-320 against 1e10)
        raise ValueError("filter_normalise: the normalised direction is not finite: the ratio"
                         " of the model's row norms to the direction's is beyond float64;"
                         " rescale the direction")
    return d


def _rescale_rows(d, theta):
    # d (rows, cols), a view, rescaled in place: row norms of d := those of theta.
    d_norm = _row_norms(d)
    t_norm = _row_norms(theta)
    with np.errstate(over="ignore", invalid="ignore"):   # (not finite: filter_normalise names it)
        scale = np.divide(t_norm, d_norm, out=np.zeros_like(d_norm), where=d_norm > 0)
        d *= scale[:, None]


def _row_norms(a):
    """Each row's 2-norm, in float64. Where the sum of squares leaves
    float64's exact range (a norm past ~1e150 or below ~1e-150: its squares
    overflowed to inf or lost digits to underflow, and a direction's rows
    came out zero, or infinite for weights of 1e160) the row is scaled by
    its largest magnitude first; elsewhere NumPy's norm as it is."""
    with np.errstate(over="ignore", under="ignore"):   # (the odd rows are taken again)
        norm = np.linalg.norm(a, axis=1)
    odd = ~((norm > 1e-150) & (norm < 1e150))
    if odd.any():
        rows = np.asarray(a[odd], dtype=np.float64)
        big = np.abs(rows).max(axis=1)
        safe = np.where(big > 0, big, 1.0)
        with np.errstate(over="ignore", invalid="ignore"):   # (inf or NaN: named after)
            norm[odd] = np.linalg.norm(rows / safe[:, None], axis=1) * big
    return norm


def random_directions(net, count=1, seed=None, normalise="filter", include_biases=False):
    """``count`` Gaussian directions in the layout of ``net.params``.

    Each is ``count`` consecutive draws of ``standard_normal(n_params)`` from
    ``numpy.random.default_rng(seed)`` (so the first direction of a seed is
    the same for ``count`` 1 and 2, with or without biases), then
    filter-normalised (see :func:`filter_normalise`), or with
    ``normalise=None`` kept raw, with the bias entries zeroed unless
    ``include_biases``.

    Parameters
    ----------
    net : fastbp.MLP
    count : int, default 1
    seed : int >= 0, optional
        Same seed, same directions. None draws fresh ones.
    normalise : {"filter", None}, default "filter"
    include_biases : bool, default False

    Returns
    -------
    ndarray of float64, (count, n_params)
    """
    _check_net(net)
    count = check_int(count, "count", 1)
    array_room((count, net.n_params), 8, "count", count)
    seed = check_seed(seed)
    normalise = _check_normalise(normalise)
    include_biases = _check_flag(include_biases, "include_biases")
    rng = np.random.default_rng(seed)
    out = rng.standard_normal((count, net.n_params))
    for d in out:
        if normalise == "filter":
            d[:] = filter_normalise(net, d, include_biases)
        elif not include_biases:
            for l in range(net._layout.n_layers):
                d[net._layout.bias_slice(l)] = 0.0
    return out


def _check_flag(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


# ------------------------------------------------------------- landscapes
def line(net, X, y, steps=51, span=1.0, seed=None, direction=None, normalise="filter",
         include_biases=False):
    """The loss along one direction through the model's params.

    ``losses[i] = E(params + alphas[i] d)`` with ``alphas =
    linspace(-span, span, steps)`` and ``E`` as :meth:`fastbp.MLP.loss`
    (L2 term included when ``alpha > 0``), every point evaluated by the
    compiled kernel :func:`grid_losses`. ``net.params`` is left bitwise
    unchanged.

    Parameters
    ----------
    net : fastbp.MLP
    X : array_like, (n, n_in)
    y : array_like
        Targets, as for :meth:`fastbp.MLP.loss`.
    steps : int >= 2, default 51
    span : float > 0, default 1.0
        Half the width of the grid, in units of the direction (with filter
        normalisation, 1 is a step as large as the weights themselves).
    seed : int >= 0, optional
        Seeds the random direction (:func:`random_directions`); unused with
        ``direction`` (the result's ``seed`` is then None).
    direction : array_like, (n_params,), optional
        Use this direction instead of a random one, as given (no
        normalisation; see :func:`filter_normalise`).
    normalise : {"filter", None}, default "filter"
        Filter normalisation of the random direction, or None for a raw
        Gaussian one.
    include_biases : bool, default False
        Give the random direction bias entries (else zero). Filter-normalised,
        a layer's bias entries take the norm of its biases: zero where they
        are all zero, as in a new model (``normalise=None`` keeps them
        Gaussian).

    Returns
    -------
    Line
        ``alphas``, ``losses``, ``direction``, ``centre`` and the timing.
    """
    _check_net(net)
    steps, span = _check_steps(steps), _check_span(span)
    if direction is None:
        normalise = _check_normalise(normalise)  # its canonical name, for the result
        d = random_directions(net, 1, seed, normalise, include_biases)[0]
    else:
        check_seed(seed)   # (checked, as without a direction)
        _check_normalise(normalise)
        _check_flag(include_biases, "include_biases")
        d, normalise = _check_direction(direction, net, "direction"), "given"
        seed = None   # (unused: the result names no seed that played no part in it)
    alphas = _grid(span, steps)
    coefs = np.zeros((steps + 1, 3))
    coefs[:, 0] = 1.0
    coefs[:steps, 1] = alphas  # the last row is the centre
    losses, seconds = _evaluate(net, X, y, d, d, coefs)
    return Line(alphas, losses[:steps], d, float(losses[steps]), normalise, seed,
                _describe(net), seconds)


def surface(net, X, y, steps=51, span=1.0, seed=None, directions=None, normalise="filter",
            include_biases=False):
    """The loss over the plane of two directions through the model's params.

    ``losses[j, i] = E(params + alphas[i] d1 + betas[j] d2)`` on the grid
    ``alphas = betas = linspace(-span, span, steps)``, all ``steps**2``
    points evaluated by one call of the compiled kernel :func:`grid_losses`.
    ``net.params`` is left bitwise unchanged.

    Parameters
    ----------
    net, X, y
        As for :func:`line`.
    steps : int >= 2, default 51
    span : float > 0, default 1.0
        As for :func:`line`.
    seed : int >= 0, optional
        Seeds both random directions, drawn one after the other from one
        generator (so ``d1`` equals :func:`line`'s direction for that seed).
    directions : pair of array_like, (2, n_params), optional
        Use these directions instead of random ones, as given.
    normalise : {"filter", None}, default "filter"
    include_biases : bool, default False
        As for :func:`line`.

    Returns
    -------
    Surface
        ``alphas``, ``betas``, ``losses`` (steps, steps) indexed
        ``[i_beta, i_alpha]``, ``directions`` (2, n_params), ``centre``.
    """
    _check_net(net)
    steps, span = _check_steps(steps), _check_span(span)
    if directions is None:
        normalise = _check_normalise(normalise)  # its canonical name, for the result
        d = random_directions(net, 2, seed, normalise, include_biases)
    else:
        check_seed(seed)   # (checked, as without directions)
        _check_normalise(normalise)
        _check_flag(include_biases, "include_biases")
        seed = None   # (unused: the result names no seed that played no part in it)
        if isinstance(directions, (str, bytes)) or not hasattr(directions, "__len__") \
                or len(directions) != 2:
            got = f" of length {len(directions)}" if hasattr(directions, "__len__") else ""
            raise ValueError(f"directions must be a pair of flat arrays of n_params ="
                             f" {net.n_params} values; got a {type(directions).__name__}{got}")
        d = np.stack([_check_direction(directions[k], net, f"directions[{k}]") for k in range(2)])
        normalise = "given"
    alphas = _grid(span, steps)
    coefs = np.zeros((steps * steps + 1, 3))
    coefs[:, 0] = 1.0
    b, a = np.meshgrid(alphas, alphas, indexing="ij")  # row j: betas[j], column i: alphas[i]
    coefs[:-1, 1] = a.ravel()
    coefs[:-1, 2] = b.ravel()
    losses, seconds = _evaluate(net, X, y, d[0], d[1], coefs)
    return Surface(alphas, alphas.copy(), losses[:-1].reshape(steps, steps), d, float(losses[-1]),
                   normalise, seed, _describe(net), seconds)


def _check_compatible(net_a, net_b):
    for attr in ("sizes", "activations", "output", "loss_name", "dtype", "alpha"):
        a, b = getattr(net_a, attr), getattr(net_b, attr)
        if a != b:
            show = (lambda v: list(v)) if attr in ("sizes", "activations") else str
            raise ValueError(f"net_a and net_b must have the same {attr} to be interpolated;"
                             f" got {show(a)} and {show(b)}")
    # The data is converted once, by net_a: both must read it alike.
    for attr in ("input_mean", "input_scale", "target_mean", "target_scale", "classes_"):
        a, b = getattr(net_a, attr), getattr(net_b, attr)
        if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
            raise ValueError(f"net_a and net_b must have the same {attr} to be interpolated (the"
                             f" data is converted once, for both); got {a} and {b}")
    if net_a.categories != net_b.categories:
        raise ValueError("net_a and net_b must have the same categories to be interpolated")


def interpolate(net_a, net_b, X, y, steps=51, span=(-0.5, 1.5)):
    """The loss along the straight line between two models' params.

    ``losses[k] = E((1 - ts[k]) theta_a + ts[k] theta_b)`` with ``ts =
    linspace(span[0], span[1], steps)``: t = 0 is ``net_a``, t = 1 is
    ``net_b``, and beyond them the line is extrapolated (Goodfellow, Vinyals
    and Saxe 2015, "Qualitatively characterizing neural network
    optimization problems"). Neither net is changed.

    Parameters
    ----------
    net_a, net_b : fastbp.MLP
        Same sizes, activations, output, loss, dtype and alpha, and the same
        preprocessing (input and target scaling, classes, categories).
    X, y
        As for :meth:`fastbp.MLP.loss`.
    steps : int >= 2, default 51
    span : (float, float), default (-0.5, 1.5)
        ``(t_min, t_max)`` with ``t_min < t_max``.

    Returns
    -------
    Interpolation
        ``ts``, ``losses``, and ``loss_a``, ``loss_b`` (the losses at t = 0
        and t = 1, evaluated whether or not they lie on the grid).
    """
    _check_net(net_a, "net_a")
    _check_net(net_b, "net_b")
    _check_compatible(net_a, net_b)
    steps, (lo, hi) = _check_steps(steps), _check_interval(span)
    ts = np.linspace(lo, hi, steps)
    t = np.concatenate([ts, [0.0, 1.0]])
    coefs = np.stack([1.0 - t, t, np.zeros_like(t)], axis=1)
    theta_b = np.asarray(net_b.params, dtype=np.float64)
    losses, seconds = _evaluate(net_a, X, y, theta_b, theta_b, coefs)
    return Interpolation(ts, losses[:steps], float(losses[steps]), float(losses[steps + 1]),
                         _describe(net_a), seconds)


