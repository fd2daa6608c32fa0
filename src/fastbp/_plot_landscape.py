"""The plots of :mod:`fastbp.landscape` (its ``plot_*`` functions, public
there): the loss of a :class:`~fastbp.landscape.Line`,
:class:`~fastbp.landscape.Surface` or :class:`~fastbp.landscape.Interpolation`
drawn with matplotlib, through :mod:`fastbp.plot`'s figure helpers, so every
plot in fastbp returns a figure or writes a PNG the same way. Drawing needs
the results only, never a model or the computation."""
import numpy as np

from ._landscape_results import Interpolation, Line, Surface
from ._validate import check_choice
from .plot import check_path, drawn_figure

SURFACE_KINDS = ("contour", "surface")
"""The ``kind`` values of :func:`plot_surface`: filled contours or a 3-D surface."""


# The largest grid coordinate the plots draw: matplotlib's axes and contour
# levels overflow before float64's limit (a span of 1e300 failed inside it:
# "upper_level must be larger than lower_level"; 1e308: a NaN axis).
DRAWABLE = 1e150


def _check_result(result, cls, name="result"):
    if not isinstance(result, cls):
        raise TypeError(f"{name} must be a fastbp.landscape.{cls.__name__} (from"
                        f" {cls.__name__.lower() if cls is not Interpolation else 'interpolate'}());"
                        f" got {type(result).__name__}")
    for field in ("alphas", "betas", "ts"):   # (losses past 1e150 draw: review GL)
        values = np.asarray(getattr(result, field, ()), dtype=np.float64)
        big = np.abs(values[np.isfinite(values)]).max(initial=0.0)
        if big > DRAWABLE:
            raise ValueError(f"{name}'s {field} reach {big:.3g}, past the {DRAWABLE:.0e} fastbp"
                             " draws (matplotlib's axes and contour levels overflow before"
                             " float64's limit): take a smaller span")
    return result


def _axis_label(result, name):
    what = {"filter": "filter-normalised direction", None: "raw Gaussian direction",
            "given": "given direction"}[result.normalise]
    return f"{name} ({what})"


def _draw_line(ax, result):
    ax.plot(result.alphas, result.losses, color="C0", label="loss")
    ax.plot([0.0], [result.centre], "o", color="C3", label=f"model (loss {result.centre:.4g})")
    ax.set_xlabel(_axis_label(result, "α"))
    ax.set_ylabel("loss")
    ax.set_title("1-D: E(θ + α d)")
    ax.legend()


def _levels(losses):
    finite = losses[np.isfinite(losses)]   # (a loss may overflow far from the model)
    if finite.size == 0:
        raise ValueError("no finite loss on this grid to draw: take a smaller span")
    lo, hi = float(finite.min()), float(finite.max())
    if not hi > lo:
        return None
    # Log-spaced levels resolve the basin, where the loss changes least. The
    # first lies 2 % above the minimum, or 2 % of the way up a grid whose
    # loss varies less (a small span about a trained model): levels above
    # the largest loss left such a plot one flat colour without a contour.
    if lo > 0:
        first = min(lo * 1.02, lo + 0.02 * (hi - lo))
        # Each rounded to 7 significant figures, more where the range is a
        # smaller part of the loss (its figures: 7 of the range). Figures
        # each of its own, not decimals: 10 ** digits overflowed at the
        # losses' float64 floor (3.3e-308), every level NaN.
        figures = min(17, 7 + max(0, int(np.ceil(np.log10(lo / (hi - lo))))))
        return np.unique([float(f"{x:.{figures - 1}e}") for x in np.geomspace(first, hi, 14)])
    return np.linspace(lo, hi, 14)


def _draw_contour(ax, result):
    levels = _levels(result.losses)
    losses = np.ma.masked_invalid(result.losses)   # non-finite points left blank
    filled = ax.contourf(result.alphas, result.betas, losses, levels=levels, cmap="viridis",
                         alpha=0.35, extend="both")
    lines = ax.contour(result.alphas, result.betas, losses, levels=filled.levels, cmap="viridis")
    ax.clabel(lines, fontsize=7, fmt="%.3g")
    ax.plot([0.0], [0.0], "*", color="C3", markersize=11, label=f"model (loss {result.centre:.4g})")
    ax.set_xlabel(_axis_label(result, "α"))
    ax.set_ylabel(_axis_label(result, "β"))
    ax.set_aspect("equal")
    ax.set_title("2-D: contours of E(θ + α d₁ + β d₂)")
    ax.legend(loc="upper right", fontsize=8)


def _draw_surface(ax, result):
    a, b = np.meshgrid(result.alphas, result.betas)
    # Every grid point a vertex (matplotlib's default samples 50 rows and
    # columns: a 51-point grid at stride 2, the model's own point left out)
    rows, cols = result.losses.shape
    ax.plot_surface(a, b, result.losses, rcount=rows, ccount=cols, cmap="viridis", linewidth=0,
                    antialiased=True)
    ax.set_xlabel("α")
    ax.set_ylabel("β")
    ax.set_zlabel("loss")
    ax.set_title("2-D: E(θ + α d₁ + β d₂)")


def _draw_interpolation(ax, result):
    ax.plot(result.ts, result.losses, color="C0", label="loss")
    ax.plot([0.0, 1.0], [result.loss_a, result.loss_b], "o", color="C3")
    for t, value, name in ((0.0, result.loss_a, r"$\theta_a$"), (1.0, result.loss_b, r"$\theta_b$")):
        ax.annotate(f"{name} ({value:.3g})", (t, value), textcoords="offset points", xytext=(6, 6))
    ax.set_xlabel(r"t, for $\theta = (1 - t)\,\theta_a + t\,\theta_b$")
    ax.set_ylabel("loss")
    ax.set_yscale("log" if result.losses.min() > 0 else "linear")
    ax.set_title(r"Linear interpolation from $\theta_a$ to $\theta_b$")


def plot_line(result, path=None, title=None):
    """Plot a :class:`Line`: the loss against alpha, the model marked.

    Parameters
    ----------
    result : Line
    path : str or path_like, optional
        Write the figure here (a PNG, or the format its suffix
        names: ``.pdf``, ``.svg``, ...). Without it, the figure is returned instead.
    title : str, optional
        Defaults to the model's description.

    Returns
    -------
    path_like or matplotlib.figure.Figure
        The path as given, or the figure when no path is given.
    """
    _check_result(result, Line)
    return drawn_figure(path, lambda fig: _draw_line(fig.subplots(), result),
                        result.model if title is None else title, figsize=(6, 4.2))


def plot_surface(result, path=None, kind="contour", title=None):
    """Plot a :class:`Surface`: labelled contour levels, or a 3-D surface.

    Parameters
    ----------
    result : Surface
    path : str or path_like, optional
        Write the figure here (a PNG, or the format its suffix
        names: ``.pdf``, ``.svg``, ...). Without it, the figure is returned instead.
    kind : {"contour", "surface"}, default "contour"
        ``contour``: filled contours with labelled, log-spaced levels and the
        model marked at (0, 0); ``surface``: a 3-D surface of the loss.
    title : str, optional
        Defaults to the model's description.

    Returns
    -------
    path_like or matplotlib.figure.Figure
        The path as given, or the figure when no path is given.
    """
    _check_result(result, Surface)
    kind = check_choice(kind, "kind", SURFACE_KINDS)
    title = result.model if title is None else title
    if kind == "contour":
        return drawn_figure(path, lambda fig: _draw_contour(fig.subplots(), result), title,
                            figsize=(6, 5.4))
    return drawn_figure(path, lambda fig: _draw_surface(fig.add_subplot(projection="3d"), result),
                        title, figsize=(6.5, 5.4))


def plot_interpolation(result, path=None, title=None):
    """Plot an :class:`Interpolation`: the loss against t, both nets marked.

    Parameters
    ----------
    result : Interpolation
    path : str or path_like, optional
        Write the figure here (a PNG, or the format its suffix
        names: ``.pdf``, ``.svg``, ...). Without it, the figure is returned instead.
    title : str, optional
        Defaults to the model's description.

    Returns
    -------
    path_like or matplotlib.figure.Figure
        The path as given, or the figure when no path is given.
    """
    _check_result(result, Interpolation)
    return drawn_figure(path, lambda fig: _draw_interpolation(fig.subplots(), result),
                        result.model if title is None else title, figsize=(6, 4.2))


def plot_overview(path=None, line=None, surface=None, interpolation=None, title=None):
    """All the given results in one figure: line, contours, 3-D surface, interpolation.

    Parameters
    ----------
    path : str or path_like, optional
        Write the figure here (a PNG, or the format its suffix
        names: ``.pdf``, ``.svg``, ...). Without it, the figure is returned instead.
    line : Line, optional
    surface : Surface, optional
        Drawn twice: as contours and as a 3-D surface.
    interpolation : Interpolation, optional
    title : str, optional
        Defaults to the first result's model description.

    Returns
    -------
    path_like or matplotlib.figure.Figure
        The path as given, or the figure when no path is given.
    """
    if isinstance(path, (Line, Surface, Interpolation)):  # (path comes first, unlike plot_*)
        raise TypeError(f"plot_overview's first argument is the path; got a"
                        f" {type(path).__name__}: pass the results by name, as line=,"
                        f" surface= or interpolation=")
    check_path(path)
    panels = []
    if line is not None:
        panels.append((_draw_line, _check_result(line, Line, "line"), None))
    if surface is not None:
        _check_result(surface, Surface, "surface")
        panels += [(_draw_contour, surface, None), (_draw_surface, surface, "3d")]
    if interpolation is not None:
        panels.append((_draw_interpolation, _check_result(interpolation, Interpolation,
                                                          "interpolation"), None))
    if not panels:
        raise ValueError("plot_overview needs at least one of line, surface, interpolation")
    cols = min(len(panels), 2)
    rows = (len(panels) + 1) // 2

    def draw_all(fig):
        for k, (draw, result, projection) in enumerate(panels):
            draw(fig.add_subplot(rows, cols, k + 1, projection=projection), result)
    return drawn_figure(path, draw_all, panels[0][1].model if title is None else title,
                        figsize=(6.2 * cols, 5.2 * rows))
