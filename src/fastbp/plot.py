"""Pictures of training (needs matplotlib: ``pip install "fastbp[plot]"``).

Every plotting function in fastbp (this module's and ``fastbp.landscape``'s
``plot_*``) takes an optional ``path``: given one, it writes the figure
there, whole or not at all (a PNG, or the format its suffix names: ``.pdf``,
``.svg``, ...), and returns the path, without touching pyplot's state or
backend; without one,
it returns the matplotlib ``Figure``, made through pyplot so that a notebook
shows it and ``plt.show()`` opens it.
"""
import errno
import os
from collections.abc import Mapping

import numpy as np

# The public part (the rest serves the plot functions here and in landscape).
__all__ = ["history"]


def history(history, path=None, title=None):
    """Training and validation curves of a History, one panel per metric
    family (loss; accuracy or R^2), with labelled axes.

    Parameters
    ----------
    history : History or dict
        What ``fit`` returned, or ``net.history``, or a dict of per-epoch lists.
    path : str or path_like, optional
        Write the figure here: a PNG, or the format the name's suffix names
        (``.pdf``, ``.svg``, ...). Without it, the figure is returned instead.
    title : str, optional
        A title over the panels.

    Returns
    -------
    path_like or matplotlib.figure.Figure
        The path as given, or the figure when no path is given.
    """
    h = _curves(history)
    epochs = range(1, len(h["loss"]) + 1)
    scores = [k for k in ("val_accuracy", "val_r2") if k in h]
    return drawn_figure(path, lambda fig: _draw_history(fig, h, epochs, scores), title,
                        figsize=(5.5 * (1 + len(scores)), 4))


def _lone(values):
    """Indices of the finite values with no finite neighbour: a line draws
    nothing through them (a one-epoch fit, an epoch validated alone amid
    NaN padding), so they get a marker."""
    ok = np.isfinite(values)
    before = np.concatenate([[False], ok[:-1]])
    after = np.concatenate([ok[1:], [False]])
    return np.flatnonzero(ok & ~before & ~after).tolist()


def _curve(ax, epochs, values, **style):
    lone = _lone(values)
    ax.plot(epochs, values, **style, **(dict(marker="o", markevery=lone) if lone else {}))


def _draw_history(fig, h, epochs, scores):
    axes = fig.subplots(1, 1 + len(scores), squeeze=False)
    ax = axes[0, 0]
    _curve(ax, epochs, h["loss"], label="training loss")
    if "val_loss" in h:
        _curve(ax, epochs, h["val_loss"], label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log" if min(h["loss"]) > 0 else "linear")
    ax.legend()
    for ax, key in zip(axes[0, 1:], scores):
        _curve(ax, epochs, h[key], color="C2", label=key.replace("val_", "validation "))
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if key == "val_accuracy" else "R²")
        ax.legend()


def _curves(history):
    """The per-epoch series of ``history`` to plot, as 1-D float arrays of one
    length; errors name what is wrong with it."""
    h = getattr(history, "history", history)
    if not isinstance(h, Mapping):
        raise TypeError("history must be a History (what fit returns, or net.history) or a dict"
                        f" of per-epoch lists; got {type(history).__name__}")
    curves = {}
    for key in ("loss", "val_loss", "val_accuracy", "val_r2"):
        if key in h:
            try:
                curves[key] = np.asarray(h[key], dtype=float)
            except (TypeError, ValueError):
                raise TypeError(f"history[{key!r}] must be a list of numbers, one per epoch;"
                                f" got {h[key]!r}") from None
            if curves[key].ndim != 1:
                raise ValueError(f"history[{key!r}] must be a list of numbers, one per epoch;"
                                 f" got shape {curves[key].shape}")
    if "loss" not in curves or len(curves["loss"]) == 0:
        raise ValueError("history has no epochs to plot")
    for key, values in curves.items():
        if len(values) != len(curves["loss"]):
            raise ValueError(f"history[{key!r}] has {len(values)} epochs, history['loss']"
                             f" {len(curves['loss'])}")
    return curves


def check_path(path):
    """``(path, format)`` for a figure to be written to ``path``: the format
    its suffix names, or PNG for a name without one (matplotlib would write
    ``path + ".png"``, not ``path``); None for None. Raises before anything is
    drawn: for a path that is not a file name, a folder, or a suffix no
    matplotlib writer takes."""
    from ._validate import require
    require("matplotlib", "Plotting", "plot")
    if path is None:
        return None
    try:
        path = os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(f"path must be a file name (str or os.PathLike); got {path!r}") from None
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, f"path {path!r} is a folder: give the figure's file"
                                " name", path)
    from matplotlib.backend_bases import FigureCanvasBase
    formats = FigureCanvasBase.get_supported_filetypes()
    suffix = os.path.splitext(path)[1][1:].lower()
    if suffix and suffix not in formats:
        raise ValueError(f"cannot write a figure as {suffix!r} ({path!r}): matplotlib writes"
                         f" {', '.join(sorted(formats))}; a name without a suffix is a PNG")
    return path, suffix or "png"


def new_figure(path, **kwargs):
    """An empty figure: standalone (no pyplot, no backend chosen) when it is
    going to ``path``, a pyplot figure when it is going back to the caller."""
    check_path(path)
    if path is None:
        import matplotlib.pyplot as plt
        return plt.figure(**kwargs)
    from matplotlib.figure import Figure
    return Figure(**kwargs)


def drawn_figure(path, draw, title=None, **kwargs):
    """A new figure (:func:`new_figure`), drawn by ``draw(fig)`` and
    finished (:func:`finish_figure`): its path, or the figure. A pyplot
    figure whose drawing fails is closed before the error propagates, so
    that a refused call leaves no empty figure for the next ``plt.show()``."""
    fig = new_figure(path, **kwargs)
    try:
        draw(fig)
        return finish_figure(fig, path, title)
    except BaseException:
        if path is None:
            import matplotlib.pyplot as plt
            plt.close(fig)
        raise


def finish_figure(fig, path, title=None):
    """Title and lay out ``fig``; write it to ``path`` (PNG or the suffix's
    format, 110 dpi; atomically: an error leaves no file, and an old file
    whole) and return the path, or return ``fig`` when ``path`` is None."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is None:
        return fig
    from ._modelfile import write_atomically
    name, fmt = check_path(path)
    write_atomically(name, lambda fh: fig.savefig(fh, format=fmt, dpi=110), "write a figure",
                     "." + fmt)
    return path


def save_figure(plt, fig, path, title=None):
    """Title, lay out, write to ``path`` (PNG, 110 dpi) and close a pyplot
    ``fig``; the path. (Kept for callers of earlier versions.)"""
    finish_figure(fig, path, title)
    plt.close(fig)
    return path
