"""SGD as the lecture states it, learning on real data, reproducibility."""
import copy
import math

import numpy as np
import pytest

import fastbp
from npref import one_hot, sgd_epoch
from fastbp._jit import NOTICE


def test_hand_worked_sgd_step():
    """Network [2, 2, 1], tanh, identity output, MSE: the chain rule by hand,
    one scalar at a time, for one sample and one step of lr = 0.1."""
    net = fastbp.MLP([2, 2, 1], activation="tanh", output="identity", dtype="float64")
    # Counted by hand: 2*2 weights + 2 biases, then 2*1 weights + 1 bias.
    assert net.n_params == 2 * 2 + 2 + 2 * 1 + 1 == 9
    w11, w12, w21, w22, b1, b2 = 0.1, 0.2, -0.3, 0.4, 0.0, 0.1
    v1, v2, c = 0.5, -0.6, 0.2
    net.params[:] = [w11, w12, w21, w22, b1, b2, v1, v2, c]
    x1, x2, t, lr = 1.0, 2.0, 0.5, 0.1

    h1 = math.tanh(w11 * x1 + w12 * x2 + b1)          # tanh(0.5)
    h2 = math.tanh(w21 * x1 + w22 * x2 + b2)          # tanh(0.6)
    out = v1 * h1 + v2 * h2 + c
    E = (out - t) ** 2
    dE_dout = 2 * (out - t)
    d1 = dE_dout * v1 * (1 - h1 ** 2)                 # delta of hidden unit 1
    d2 = dE_dout * v2 * (1 - h2 ** 2)
    grad = [d1 * x1, d1 * x2, d2 * x1, d2 * x2, d1, d2, dE_dout * h1, dE_dout * h2, dE_dout]
    assert out == pytest.approx(0.10882884, abs=1e-8)  # 0.5 tanh(0.5) - 0.6 tanh(0.6) + 0.2
    X, y = np.array([[x1, x2]]), np.array([t])
    assert net.loss(X, y) == pytest.approx(E, rel=1e-14)
    np.testing.assert_allclose(net.gradient(X, y), grad, rtol=1e-13)

    start = net.params.copy()
    history = net.fit(X, y, epochs=1, batch_size=1, lr=lr, shuffle=False, verbose=0)
    np.testing.assert_allclose(net.params, start - lr * np.array(grad), rtol=1e-14, atol=1e-16)
    assert history["loss"] == [pytest.approx(E, rel=1e-14)]


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-11), ("float32", 2e-4)])
@pytest.mark.parametrize("n,batch", [(50, 8), (7, 7), (9, 1), (5, 32)])
def test_epoch_without_shuffle_is_consecutive_sgd_steps(dtype, tol, n, batch):
    """One epoch = ceil(n / batch) SGD steps over consecutive rows, the last
    batch smaller; checked against the NumPy reference."""
    sizes, acts = [3, 6, 4, 3], ["sigmoid", "relu"]
    rng = np.random.default_rng(n)
    X, y = rng.normal(size=(n, 3)), rng.integers(0, 3, size=n)
    net = fastbp.MLP(sizes, activation=acts, dtype=dtype, seed=n)
    expected = sgd_epoch(net.params, sizes, acts, "cross_entropy", X, one_hot(y, 3), batch, 0.3)
    history = net.fit(X, y, epochs=1, batch_size=batch, lr=0.3, shuffle=False, verbose=0)
    np.testing.assert_allclose(net.params, expected, rtol=tol, atol=tol)
    # fastbp's own count of the updates it made: ceil(n / batch), by hand.
    assert net.optimizer.t == {(50, 8): 7, (7, 7): 1, (9, 1): 9, (5, 32): 1}[n, batch]
    # The reported loss is the sample-weighted mean of the batch losses
    # before each update, so the smaller last batch counts by its size.
    losses, sizes_seen = [], []
    replay = fastbp.MLP(sizes, activation=acts, dtype="float64", seed=n)
    for s in range(0, n, batch):
        losses.append(replay.loss(X[s:s + batch], y[s:s + batch]))
        sizes_seen.append(len(X[s:s + batch]))
        replay.fit(X[s:s + batch], y[s:s + batch], epochs=1, batch_size=batch, lr=0.3, shuffle=False,
                   verbose=0)
    assert history["loss"][0] == pytest.approx(np.average(losses, weights=sizes_seen), rel=tol)


def test_shuffled_epoch_visits_every_sample_once():
    """One shuffled epoch with a single batch of all n rows is the full-batch
    gradient step, whatever the order."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 2)), rng.normal(size=12)
    a = fastbp.MLP([2, 3, 1], output="identity", dtype="float64", seed=1)
    b = fastbp.MLP([2, 3, 1], output="identity", dtype="float64", seed=1)
    g = a.gradient(X, y)
    a.fit(X, y, epochs=1, batch_size=12, lr=0.5, shuffle=True, seed=3, verbose=0)
    np.testing.assert_allclose(a.params, b.params - 0.5 * g, rtol=1e-12, atol=1e-14)


def test_xor_reaches_full_accuracy():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    y = np.array([0, 1, 1, 0])
    net = fastbp.MLP([2, 8, 2], activation="tanh", seed=0)
    net.fit(X, y, epochs=500, batch_size=4, lr=0.5, verbose=0)
    assert (net.predict(X) == y).all()
    assert net.predict_proba(X).shape == (4, 2)
    sig = fastbp.MLP([2, 8, 1], activation="tanh", output="sigmoid", seed=0)
    sig.fit(X, y, epochs=1000, batch_size=4, lr=1.0, verbose=0)
    assert (sig.predict(X) == y).all()


@pytest.fixture(scope="module")
def digits():
    X, y = fastbp.datasets.load_digits()
    return fastbp.datasets.train_test_split(X / 16.0, y, test_fraction=0.25, seed=0)


def test_digits_data_is_the_real_set(digits):
    X, y = fastbp.datasets.load_digits()
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0 and X.max() == 16 and set(np.unique(y)) == set(range(10))
    assert np.bincount(y).min() >= 170


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_digits_reach_95_percent_with_plain_sgd(digits, dtype):
    X_train, X_test, y_train, y_test = digits
    net = fastbp.MLP([64, 32, 10], activation="tanh", dtype=dtype, seed=0)
    history = net.fit(X_train, y_train, epochs=20, batch_size=32, lr=0.1, verbose=0)
    assert len(history["loss"]) == 20 and history["loss"][-1] < history["loss"][0] / 5
    accuracy = (net.predict(X_test) == y_test).mean()
    assert accuracy >= 0.95


def test_same_seed_gives_bitwise_identical_params(digits):
    X_train, _, y_train, _ = digits
    runs = []
    for _ in range(2):
        net = fastbp.MLP([64, 16, 10], activation="relu", seed=42)
        net.fit(X_train, y_train, epochs=3, batch_size=50, lr=0.05, seed=5, verbose=0)
        runs.append(net.params.copy())
    assert np.array_equal(runs[0], runs[1])
    other = fastbp.MLP([64, 16, 10], activation="relu", seed=42)
    other.fit(X_train, y_train, epochs=3, batch_size=50, lr=0.05, seed=6, verbose=0)
    assert not np.array_equal(runs[0], other.params)


@pytest.mark.parametrize("seed", [0, 1])
def test_fit_with_a_seed_restarts_the_streams_whatever_they_were(seed):
    """fit(seed=s) restarts the model's random streams from s (0 included:
    review HGJ found `if seed:` would go uncaught): two copies whose shuffle
    streams differ train alike; without a seed they do not."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 3)), rng.integers(0, 2, 64)
    a = fastbp.MLP([3, 4, 2], dtype="float64", seed=5)
    b = copy.deepcopy(a)
    b.fit(X, y, epochs=1, lr=1e-300, verbose=0)  # moves b's streams on, its params by nothing
    b.params[:] = a.params
    assert not np.array_equal(a._rng, b._rng)
    runs = []
    for given in (dict(seed=seed), {}):
        a2, b2 = copy.deepcopy(a), copy.deepcopy(b)
        for net in (a2, b2):
            net.fit(X, y, epochs=1, batch_size=8, lr=0.1, verbose=0, **given)
        runs.append(np.array_equal(a2.params, b2.params))
    assert runs == [True, False]


def test_regression_learns_a_smooth_function():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, size=(400, 1))
    y = np.sin(X[:, 0])
    net = fastbp.MLP([1, 16, 1], activation="tanh", output="identity", dtype="float64", seed=0)
    net.fit(X, y, epochs=300, batch_size=20, lr=0.05, verbose=0)
    pred = net.predict(X)
    assert pred.shape == (400,)
    assert np.mean((pred - y) ** 2) < 5e-3


def test_verbose_prints_one_line_per_epoch(capsys):
    net = fastbp.MLP([2, 2], output="identity", seed=0)
    net.fit(np.ones((4, 2)), np.ones((4, 2)), epochs=3, verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    if lines and lines[0] == NOTICE:  # the first fit of this net's kernels in a cold process
        lines = lines[1:]
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3")
    net.fit(np.ones((4, 2)), np.ones((4, 2)), epochs=3, verbose=0)
    assert capsys.readouterr().out == ""
    net.fit(np.ones((4, 2)), np.ones((4, 2)), epochs=2, verbose=True)  # True reads as 1
    assert capsys.readouterr().out.count("epoch ") == 2
    net.fit(np.ones((4, 2)), np.ones((4, 2)), epochs=2, verbose=False)
    assert capsys.readouterr().out == ""


def test_lbfgs_shows_its_iterations_as_the_minibatch_fit_shows_epochs(monkeypatch, capsys):
    """L-BFGS printed 'iteration i/N  loss x' only: no bar in a terminal, no
    validation metrics (computed and recorded all the same), and no
    'interrupted' line when Ctrl-C or a callback ended it."""
    import sys
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    net = fastbp.MLP([3, 4, 2], dtype="float64", seed=0)
    h = net.fit(X, y, epochs=3, verbose=2, optimizer="lbfgs", validation_data=(X, y))
    lines = [l for l in capsys.readouterr().out.splitlines() if l != NOTICE]
    assert len(lines) == len(h) == 3
    for i, line in enumerate(lines):
        assert line.startswith(f"iteration {i + 1}/3  loss {h['loss'][i]:.6g}  val_loss"
                               f" {h['val_loss'][i]:.6g}  val_accuracy {h['val_accuracy'][i]:.6g}")

    class Interrupt:
        def on_epoch_end(self, epoch, logs):
            if epoch == 1:
                raise KeyboardInterrupt
    h = net.fit(X, y, epochs=5, verbose=2, optimizer="lbfgs", callbacks=[Interrupt()])
    assert h.interrupted and len(h) == 2
    assert capsys.readouterr().out.splitlines()[-1] == (
        "interrupted: stopped after 2 complete iteration(s); the model holds their result")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: the bar
    net.fit(X, y, epochs=2, verbose=1, optimizer="lbfgs", validation_data=(X, y))
    captured = capsys.readouterr()
    assert "2/2" in captured.err and "val_loss" in captured.err and captured.out == ""


def test_the_interrupted_line_follows_the_closed_bar(monkeypatch, capsys):
    """It was printed on the bar's open line, glued to it, and the bar drawn
    again after it when it closed."""
    from fastbp import train
    events = []

    class Bar:
        def set_postfix(self, *args, **kwargs):
            pass

        def update(self, n):
            pass

        def close(self):
            events.append(("close", capsys.readouterr().out))

    monkeypatch.setattr(train, "_progress_bar", lambda epochs, verbose: Bar())

    class Interrupt:
        def on_epoch_end(self, epoch, logs):
            if epoch == 1:
                raise KeyboardInterrupt
    net = fastbp.MLP([2, 2], output="identity", seed=0)
    h = net.fit(np.ones((4, 2)), np.ones((4, 2)), epochs=3, verbose=1, callbacks=[Interrupt()])
    assert h.interrupted
    # closed, then the line (the finally's second close is tqdm's no-op)
    printed = "".join(out for _, out in events[1:]) + capsys.readouterr().out
    assert "interrupted" not in events[0][1]
    assert printed.startswith("interrupted: stopped after 2 complete epoch(s)")


def test_progress_bar_in_a_terminal(monkeypatch, capsys):
    import sys
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    net = fastbp.MLP([2, 2], output="identity", seed=0)
    net.fit(np.ones((4, 2)), np.ones((4, 2)), epochs=3, verbose=1)
    captured = capsys.readouterr()
    assert "3/3" in captured.err and "loss" in captured.err and "samples/s" in captured.err
    assert captured.out == ""
    net.fit(np.ones((4, 2)), np.ones((4, 2)), epochs=2, verbose=2)  # forced log lines
    assert capsys.readouterr().out.count("epoch ") == 2


def test_verbose_fits_without_a_stderr(monkeypatch, capsys):
    """Review HBA: with sys.stderr None (fd 2 closed, `fastbp train 2>&-`, or
    pythonw) fit's default verbose=1 failed with AttributeError before the
    first epoch, after its callbacks' on_train_begin and the optimizer's
    swap; L-BFGS's bar, made before its try, skipped on_train_end too. With
    no terminal it prints a line per epoch, as documented."""
    import sys
    monkeypatch.setattr(sys, "stderr", None)
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = (X[:, 0] > 0).astype(int)
    for optimizer, unit in (("sgd", "epoch"), (fastbp.LBFGS, "iteration")):
        optimizer = optimizer() if callable(optimizer) else optimizer
        net = fastbp.MLP([2, 3, 2], seed=0)
        twin = fastbp.MLP([2, 3, 2], seed=0)
        ended = []

        class end:
            def on_train_end(self, net):
                ended.append(True)
        net.fit(X, y, epochs=2, batch_size=5, optimizer=optimizer, verbose=1, callbacks=[end()])
        optimizer = optimizer if isinstance(optimizer, str) else fastbp.LBFGS()
        lines = [line for line in capsys.readouterr().out.splitlines()
                 if line.startswith(unit)]
        assert len(lines) == 2 and lines[0].startswith(f"{unit} 1/2")
        assert ended == [True]
        twin.fit(X, y, epochs=2, batch_size=5, optimizer=optimizer, verbose=0)
        np.testing.assert_array_equal(net.params, twin.params)
