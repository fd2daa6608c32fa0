"""Pictures of training (needs matplotlib: ``pip install "fastbp[plot]"``).

Every plotting function in fastbp (this module's and ``fastbp.landscape``'s
``plot_*``) takes an optional ``path``: given one, it writes a PNG there and
returns the path, without touching pyplot's state or backend; without one,
it returns the matplotlib ``Figure``, made through pyplot so that a notebook
shows it and ``plt.show()`` opens it.
"""


def history(history, path=None, title=None):
    """Training and validation curves of a History, one panel per metric
    family (loss; accuracy or R^2), with labelled axes.

    Parameters
    ----------
    history : History or dict
        What ``fit`` returned, or ``net.history``, or a dict of per-epoch lists.
    path : str or path-like, optional
        Write a PNG here. Without it, the figure is returned instead.
    title : str, optional
        A title over the panels.

    Returns
    -------
    The path, or the ``matplotlib.figure.Figure`` when no path is given.
    """
    h = getattr(history, "history", history)
    if not h.get("loss"):
        raise ValueError("history has no epochs to plot")
    epochs = range(1, len(h["loss"]) + 1)
    scores = [k for k in ("val_accuracy", "val_r2") if k in h]
    fig = new_figure(path, figsize=(5.5 * (1 + len(scores)), 4))
    axes = fig.subplots(1, 1 + len(scores), squeeze=False)
    ax = axes[0, 0]
    ax.plot(epochs, h["loss"], label="training loss")
    if "val_loss" in h:
        ax.plot(epochs, h["val_loss"], label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log" if min(h["loss"]) > 0 else "linear")
    ax.legend()
    for ax, key in zip(axes[0, 1:], scores):
        ax.plot(epochs, h[key], color="C2", label=key.replace("val_", "validation "))
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy" if key == "val_accuracy" else "R²")
        ax.legend()
    return finish_figure(fig, path, title)


def new_figure(path, **kwargs):
    """An empty figure: standalone (no pyplot, no backend chosen) when it is
    going to ``path``, a pyplot figure when it is going back to the caller."""
    if path is None:
        import matplotlib.pyplot as plt
        return plt.figure(**kwargs)
    from matplotlib.figure import Figure
    return Figure(**kwargs)


def finish_figure(fig, path, title=None):
    """Title and lay out ``fig``; write it to ``path`` (PNG, 110 dpi) and return
    the path, or return ``fig`` when ``path`` is None."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is None:
        return fig
    fig.savefig(path, dpi=110)
    return path


def save_figure(plt, fig, path, title=None):
    """Title, lay out, write to ``path`` (PNG, 110 dpi) and close a pyplot
    ``fig``; the path. (Kept for callers of earlier versions.)"""
    finish_figure(fig, path, title)
    plt.close(fig)
    return path
