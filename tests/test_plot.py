"""fastbp.plot writes a real PNG of the curves."""
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
