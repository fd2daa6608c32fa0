"""fastbp.plot writes a real PNG of the curves."""
import sys

import pytest

import fastbp

pytest.importorskip("matplotlib")


def test_history_plot(tmp_path):
    X, y = fastbp.datasets.load_digits()
    net = fastbp.MLP([64, 16, 10], seed=0)
    h = net.fit(X[:300] / 16, y[:300], epochs=4, lr=0.1, verbose=0,
                validation_data=(X[300:400] / 16, y[300:400]))
    path = fastbp.plot.history(h, tmp_path / "curves.png", title="digits")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    with pytest.raises(ValueError, match="no epochs"):
        fastbp.plot.history(fastbp.History(), tmp_path / "empty.png")


CURVES = {"loss": [1.0, 0.5, 0.25], "val_loss": [1.1, 0.6, 0.4], "val_accuracy": [0.5, 0.7, 0.8]}


def test_a_figure_goes_to_exactly_the_path_returned(tmp_path):
    """A name without a suffix was written as name + ".png" by matplotlib while
    the path returned was the name; a folder wrote "<folder>.png" beside it."""
    bare = fastbp.plot.history(CURVES, tmp_path / "curves")
    assert bare == tmp_path / "curves" and bare.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves"]
    svg = fastbp.plot.history(CURVES, str(tmp_path / "curves.SVG"))   # the suffix's format
    assert open(svg, "rb").read().lstrip().startswith((b"<?xml", b"<svg"))
    with pytest.raises(IsADirectoryError, match="is a folder: give the figure's file name"):
        fastbp.plot.history(CURVES, tmp_path)
    with pytest.raises(ValueError, match=r"cannot write a figure as 'v2' .* matplotlib writes .*png"):
        fastbp.plot.history(CURVES, tmp_path / "run.v2")
    with pytest.raises(TypeError, match="path must be a file name"):
        fastbp.plot.history(CURVES, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves", "curves.SVG"]


def test_a_figure_that_fails_to_save_leaves_the_old_file_whole(tmp_path):
    target = tmp_path / "curves.png"
    target.write_bytes(b"the old figure")
    with pytest.raises(ValueError):   # matplotlib's mathtext parser, at savefig
        fastbp.plot.history(CURVES, target, title=r"$\notacommand{$")
    assert target.read_bytes() == b"the old figure"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]   # no temporary file left


@pytest.mark.parametrize("history,exc,message", [
    ([1.0, 0.5], TypeError, "history must be a History .* or a dict of per-epoch lists; got list"),
    ({"loss": [1.0, 0.5, 0.2], "val_loss": [1.0, 0.4]}, ValueError,
     r"history\['val_loss'\] has 2 epochs, history\['loss'\] 3"),
    ({"loss": ["a", "b"]}, TypeError, r"history\['loss'\] must be a list of numbers"),
    ({"loss": [[1.0, 2.0]]}, ValueError, r"history\['loss'\] must be a list .* got shape \(1, 2\)"),
    ({"val_loss": [1.0]}, ValueError, "history has no epochs to plot"),
])
def test_a_history_that_cannot_be_plotted_is_named(history, exc, message, tmp_path):
    with pytest.raises(exc, match=message):
        fastbp.plot.history(history, tmp_path / "h.png")
    assert not (tmp_path / "h.png").exists()


def test_numpy_curves_plot():
    import numpy as np
    fig = fastbp.plot.history({k: np.array(v) for k, v in CURVES.items()})
    assert len(fig.axes) == 2   # loss; accuracy


def test_contour_levels_lie_within_a_nearly_flat_grid():
    """A small span about a trained model varies the loss by less than the 2 %
    the first level lay above the minimum: 13 of 14 levels lay above the
    largest loss, and the plot was one flat colour without a contour."""
    import numpy as np

    from fastbp._plot_landscape import _levels
    for lo, hi in ((0.11364, 0.11493), (0.1, 5.0), (1e-3, 1e7), (2.0, 2.0000001)):
        levels = _levels(np.linspace(lo, hi, 50))
        assert len(levels) == 14 and np.all(np.diff(levels) > 0)
        assert lo < levels[0] and levels[-1] <= hi
    assert _levels(np.array([0.0, 1.0]))[0] == 0.0 and _levels(np.ones(3)) is None


@pytest.mark.parametrize("path", [None, "h.png"])
def test_without_matplotlib_the_error_names_the_extra(monkeypatch, tmp_path, path):
    """A bare "No module named 'matplotlib'", where ONNX, MPI and Parquet
    name the extra to install."""
    for name in [m for m in list(sys.modules) if m.split(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises
    with pytest.raises(ImportError, match=r'Plotting needs the optional package \'matplotlib\','
                                          r' which is not installed: pip install "fastbp\[plot\]"'):
        fastbp.plot.history(CURVES, path and tmp_path / path)


def test_a_history_plot_that_fails_leaves_no_pyplot_figure():
    plt = pytest.importorskip("matplotlib.pyplot")
    plt.close("all")
    with pytest.raises(ValueError):   # a title mathtext cannot parse
        fastbp.plot.history(CURVES, title=r"$\foo$")
    assert plt.get_fignums() == []
    fig = fastbp.plot.history(CURVES)
    assert plt.get_fignums() == [fig.number]
    plt.close(fig)


def test_contours_draw_at_the_losses_float64_floor():
    """A classifier whose every margin passes 708 has cross-entropy's float64
    floor, 3.3e-308, at its centre: the levels were rounded to 314 decimals
    (10 ** 314 overflowed, every level NaN), and matplotlib refused them."""
    import numpy as np
    pytest.importorskip("matplotlib")
    from fastbp import landscape
    from fastbp._plot_landscape import _levels
    X, y = np.array([[-2.0], [-1.0], [1.0], [2.0]]), np.array([0, 0, 1, 1])
    net = fastbp.MLP([1, 2], dtype="float64", seed=0)
    net.weights[0][:] = [[-1000.0], [1000.0]]
    s = landscape.surface(net, X, y, steps=5, seed=0)
    assert 0 < s.centre < 1e-300 and np.isfinite(s.losses).all()
    levels = _levels(s.losses)
    assert len(levels) == 14 and np.all(np.isfinite(levels)) and np.all(np.diff(levels) > 0)
    assert s.centre < levels[0] <= levels[-1] <= s.losses.max()
    fig = landscape.plot_surface(s)
    assert len(fig.axes[0].collections) > 0
    for lo, hi in ((1e-300, 1e10), (5e-324, 1.0)):   # inf was the top level here
        assert np.all(np.isfinite(_levels(np.array([lo, hi]))))


def _curve_pixels(fig):
    """Pixels of each curve's own colour, panel by panel, legends removed."""
    import numpy as np
    from matplotlib.colors import to_rgb
    counts = []
    for ax in fig.axes:
        ax.get_legend().remove()
    fig.canvas.draw()
    img = np.asarray(fig.canvas.buffer_rgba())[..., :3].astype(int)
    for ax in fig.axes:
        for line in ax.get_lines():
            target = np.array(to_rgb(line.get_color())) * 255
            counts.append((line.get_label(), int((np.abs(img - target).sum(-1) < 30).sum())))
    return counts


def test_a_lone_epoch_is_drawn():
    """A one-epoch fit (fit's default) and an epoch validated alone amid NaN
    padding were lines through one point, which matplotlib draws as nothing:
    0 pixels of the curve's colour (review HCT). Each curve shows now; the
    curves of several epochs are unchanged lines without markers."""
    import matplotlib.pyplot as plt
    nan = float("nan")
    lone = {"loss": [0.9], "val_loss": [1.1], "val_accuracy": [0.6]}
    padded = {"loss": [1.0, 0.8, 0.7, 0.6, 0.5], "val_loss": [nan, nan, 0.9, nan, nan],
              "val_accuracy": [nan, nan, 0.7, nan, nan]}
    for h in (lone, padded):
        fig = fastbp.plot.history(h)
        counts = _curve_pixels(fig)
        assert len(counts) == 3 and all(n > 20 for _, n in counts), counts
        plt.close(fig)
    fig = fastbp.plot.history(CURVES)
    assert all(line.get_marker() in (None, "None", "") for ax in fig.axes for line in ax.get_lines())
    plt.close(fig)


def test_the_history_plot_numbers_epochs_from_1_and_takes_a_log_axis_only_for_positive_losses():
    # (review HHG: neither was read by a test) fit's messages count epochs
    # from 1; a zero loss cannot be drawn on a log axis (matplotlib masks it)
    import fastbp.plot
    fig = fastbp.plot.history({"loss": [1.0, 0.5, 0.0], "val_loss": [1.1, 0.6, 0.1]})
    assert list(fig.axes[0].lines[0].get_xdata()) == [1, 2, 3]
    assert fig.axes[0].get_yscale() == "linear"
    assert fastbp.plot.history({"loss": [1.0, 0.5, 0.25]}).axes[0].get_yscale() == "log"
