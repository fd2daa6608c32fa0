"""Pictures of training (needs matplotlib: ``pip install "fastbp[plot]"``)."""


def history(history, path, title=None):
    """Training and validation curves of a History, one panel per metric
    family (loss; accuracy or R^2), saved to ``path`` (PNG) with labelled axes.

    Returns the path.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = getattr(history, "history", history)
    if not h.get("loss"):
        raise ValueError("history has no epochs to plot")
    epochs = range(1, len(h["loss"]) + 1)
    scores = [k for k in ("val_accuracy", "val_r2") if k in h]
    fig, axes = plt.subplots(1, 1 + len(scores), figsize=(5.5 * (1 + len(scores)), 4), squeeze=False)
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
    return save_figure(plt, fig, path, title)


def save_figure(plt, fig, path, title=None):
    """Title, lay out, write to ``path`` (PNG, 110 dpi) and close ``fig``; the path."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
