"""partial_fit and the checkpoint callback."""
import re
from pathlib import Path

import numpy as np
import pytest

import fastbp

rng = np.random.default_rng(0)
X, Y = rng.normal(size=(48, 4)), rng.integers(0, 3, 48)


def test_partial_fit_equals_fit_one_epoch_at_a_time():
    a = fastbp.MLP([4, 5, 3], seed=1)
    b = fastbp.MLP([4, 5, 3], seed=1)
    a.fit(X, Y, epochs=3, batch_size=8, lr=0.05, verbose=0, optimizer="adam")
    b.partial_fit(X, Y, batch_size=8, lr=0.05, optimizer="adam")
    b.partial_fit(X, Y, batch_size=8)
    b.partial_fit(X, Y, batch_size=8)
    assert np.array_equal(a.params, b.params) and len(b.history) == 3


def test_checkpoint_every_k_epochs_holds_that_epochs_weights(tmp_path):
    net = fastbp.MLP([4, 5, 3], seed=2)
    weights = {}

    class Record:
        def on_epoch_end(self, epoch, logs):
            weights[epoch + 1] = net.params.copy()

    ckpt = fastbp.ModelCheckpoint(tmp_path / "m-{epoch}.npz", every=2)
    net.fit(X, Y, epochs=5, lr=0.1, verbose=0, callbacks=[Record(), ckpt])
    assert [p.rsplit("/", 1)[-1] for p in ckpt.saved] == ["m-2.npz", "m-4.npz"]
    for epoch in (2, 4):
        assert np.array_equal(fastbp.load(tmp_path / f"m-{epoch}.npz").params, weights[epoch])


def test_checkpoint_keeps_the_best(tmp_path):
    X_val, y_val = rng.normal(size=(20, 4)), rng.integers(0, 3, 20)
    net = fastbp.MLP([4, 16, 3], seed=3)
    ckpt = fastbp.ModelCheckpoint(tmp_path / "best.npz", monitor="val_loss")
    h = net.fit(X, Y, epochs=12, lr=1.5, verbose=0, validation_data=(X_val, y_val),
                callbacks=[ckpt])
    best = fastbp.load(tmp_path / "best.npz")
    assert best.loss(X_val, y_val) == pytest.approx(min(h["val_loss"]), rel=1e-6)
    improvements = sum(v < min(h["val_loss"][:i], default=np.inf) for i, v in enumerate(h["val_loss"]))
    assert len(ckpt.saved) == improvements


def test_a_nan_metric_is_no_improvement_for_a_checkpoint(tmp_path):
    """A NaN was taken as the new best, and then every later epoch was one:
    worse models overwrote the best file (Keras never saves on NaN)."""
    net = fastbp.MLP([4, 3], seed=0)
    net.fit(X, Y, epochs=1, verbose=0)
    ckpt = fastbp.ModelCheckpoint(tmp_path / "m{epoch}.npz", monitor="val_loss")
    ckpt.on_train_begin(net)
    for epoch, value in enumerate([1.0, np.nan, 2.0, 3.0, 0.5, np.nan, 0.7]):
        ckpt.on_epoch_end(epoch, {"val_loss": value})
    assert [p.name for p in map(Path, ckpt.saved)] == ["m2.npz", "m6.npz"]  # (after 1 epoch)
    first_nan = fastbp.ModelCheckpoint(tmp_path / "n{epoch}.npz", monitor="val_accuracy")
    first_nan.on_train_begin(net)
    for epoch, value in enumerate([np.nan, 0.5, 0.4, 0.6]):
        first_nan.on_epoch_end(epoch, {"val_accuracy": value})
    assert [Path(p).name for p in first_nan.saved] == ["n3.npz", "n5.npz"]


def test_checkpoint_arguments():
    with pytest.raises(ValueError, match="every must be an integer >= 1"):
        fastbp.ModelCheckpoint("m.npz", every=0)
    with pytest.raises(TypeError, match="monitor must be None or a metric name"):
        fastbp.ModelCheckpoint("m.npz", monitor=3)
    # (review HBS: {epoch.num} and {epoch[0]} escaped as a bare AttributeError, TypeError)
    for path in ("run-{epochs}.npz", "run-{}.npz", "run-{epoch:q}.npz", "run-{epoch.num}.npz",
                 "run-{epoch[0]}.npz"):  # before any training
        with pytest.raises(ValueError, match="must take its epoch as {epoch}"):
            fastbp.ModelCheckpoint(path)
    assert fastbp.ModelCheckpoint("run-{epoch:03d}-{{x}}.npz").path.format(epoch=7) == "run-007-{x}.npz"
    # One folder for every epoch: fit checks it before training (a folder per
    # epoch, "e{epoch}/m.npz", failed after epoch 1 had trained and saved).
    for path in ("e{epoch}/m.npz", "runs/{epoch:02d}/m.npz"):
        with pytest.raises(ValueError, match="in the file's name only, not in its folder"):
            fastbp.ModelCheckpoint(path)
    assert fastbp.ModelCheckpoint("{{e}}/m-{epoch}.npz").path.format(epoch=2) == "{e}/m-2.npz"


def test_resuming_from_a_mid_fit_checkpoint_is_exact(tmp_path):
    whole = fastbp.MLP([4, 5, 3], seed=4)
    ckpt = fastbp.ModelCheckpoint(tmp_path / "m-{epoch}.npz")
    whole.fit(X, Y, epochs=5, batch_size=8, lr=0.01, seed=1, verbose=0, optimizer="adam",
              callbacks=[ckpt])
    resumed = fastbp.load(tmp_path / "m-3.npz")
    assert len(resumed.history) == 3
    resumed.fit(X, Y, epochs=2, batch_size=8, verbose=0)
    assert np.array_equal(resumed.params, whole.params)
    assert resumed.history["loss"] == whole.history["loss"]


def test_a_checkpoint_into_a_missing_folder_is_refused_before_training(tmp_path):
    # The folder was found missing at the first save, after that epoch had
    # trained: the model changed by a call that then failed.
    net = fastbp.MLP([4, 5, 3], seed=1)
    net.fit(X, Y, epochs=1, batch_size=8, verbose=0, optimizer="adam")
    params, t, epochs = net.params.copy(), net.optimizer.t, len(net.history)
    missing = tmp_path / "no-such-folder" / "run-{epoch}.npz"
    with pytest.raises(FileNotFoundError, match="no such folder"):
        net.fit(X, Y, epochs=3, batch_size=8, verbose=0,
                callbacks=[fastbp.ModelCheckpoint(missing, every=3)])
    assert np.array_equal(net.params, params) and net.optimizer.t == t
    assert len(net.history) == epochs


def _a_folder_that_takes_no_file(monkeypatch):
    """The folder as a read-only file system shows it (as root, the only
    kind a test can make without mounting one: the folder's mode is not
    enforced): making a file in it fails."""
    import errno
    from fastbp import _modelfile

    def refused(folder, suffix):
        raise OSError(errno.EROFS, "Read-only file system", folder)
    monkeypatch.setattr(_modelfile, "_temporary", refused)


@pytest.mark.parametrize("name", ["run-{epoch}.npz", "run.npz"])
def test_a_checkpoint_into_a_folder_that_takes_no_file_is_refused_before_training(
        name, tmp_path, monkeypatch):
    """Review GA: a folder on a read-only file system passed the checks
    before training; the first save failed after an epoch had changed the
    model (checked by hand on a read-only tmpfs mounted with unshare -m)."""
    net = fastbp.MLP([4, 5, 3], seed=1)
    params = net.params.copy()
    _a_folder_that_takes_no_file(monkeypatch)
    # (named as given: review GE, "{epoch}" was named as epoch 1's file)
    with pytest.raises(OSError, match=r"cannot save checkpoints to '.*" + re.escape(name)
                       + r"': its folder .* takes no new file \(Read-only file system\)"):
        net.fit(X, Y, epochs=2, batch_size=8, verbose=0,
                callbacks=[fastbp.ModelCheckpoint(tmp_path / name)])
    assert np.array_equal(net.params, params) and len(net.history) == 0
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_is_judged_by_the_schedule_the_fit_runs(tmp_path):
    """The check before training read the model's old schedule, a class of
    the user's own that this fit replaces (an explicit lr ends it, a
    built-in one given takes its place): both fits were refused, where they
    trained and saved before."""
    from fastbp.schedules import StepDecay

    class MyDecay(StepDecay):
        pass
    net = fastbp.MLP([4, 5, 3], seed=1)
    net.fit(X, Y, epochs=1, batch_size=8, verbose=0, callbacks=[MyDecay(step_size=1, gamma=0.5)])
    path = tmp_path / "m.npz"
    net.fit(X, Y, epochs=1, batch_size=8, verbose=0, lr=0.01,
            callbacks=[fastbp.ModelCheckpoint(path)])
    assert net.schedule is None and fastbp.load(path).schedule is None
    net.schedule = MyDecay(step_size=1, gamma=0.5)
    net.fit(X, Y, epochs=1, batch_size=8, verbose=0,
            callbacks=[StepDecay(step_size=1, gamma=0.5), fastbp.ModelCheckpoint(path)])
    assert type(fastbp.load(path).schedule) is StepDecay


def test_a_checkpoint_path_is_a_file_name_given_as_save_takes_it(tmp_path, monkeypatch):
    # "" trained an epoch, then save refused it; bytes raised AttributeError.
    with pytest.raises(ValueError, match="path must name a file"):
        fastbp.ModelCheckpoint("")
    monkeypatch.chdir(tmp_path)
    net = fastbp.MLP([4, 5, 3], seed=1)
    net.fit(X, Y, epochs=2, batch_size=8, verbose=0, callbacks=[fastbp.ModelCheckpoint(b"m{epoch}.npz")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m1.npz", "m2.npz"]


@pytest.mark.parametrize("case", ["metadata", "folder"])
def test_a_checkpoint_that_cannot_be_saved_is_refused_before_training(tmp_path, case):
    # Metadata a model file cannot hold, or a checkpoint path that is a
    # folder, raised at the first save: after an epoch had trained.
    net = fastbp.MLP([4, 5, 3], seed=1)
    net.fit(X, Y, epochs=1, batch_size=8, verbose=0, optimizer="adam")
    path = tmp_path / "run.npz"
    if case == "metadata":
        net.metadata = {"columns": np.array([1, 2, 3])}
        error, match = TypeError, "metadata must be JSON"
    else:
        path.mkdir()
        error, match = IsADirectoryError, "is a folder"
    params, t, epochs = net.params.copy(), net.optimizer.t, len(net.history)
    with pytest.raises(error, match=match):
        net.fit(X, Y, epochs=3, batch_size=8, verbose=0, callbacks=[fastbp.ModelCheckpoint(path)])
    assert np.array_equal(net.params, params) and net.optimizer.t == t
    assert len(net.history) == epochs
