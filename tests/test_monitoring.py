"""Validation metrics, validation_split, callbacks and early stopping."""
import copy

import numpy as np
import pytest

import fastbp


@pytest.fixture(scope="module")
def digits():
    X, y = fastbp.datasets.load_digits()
    return fastbp.datasets.train_test_split(X / 16, y, seed=0)


def test_validation_metrics_match_a_direct_computation(digits):
    X_train, X_val, y_train, y_val = digits
    net = fastbp.MLP([64, 16, 10], seed=0)
    h = net.fit(X_train, y_train, epochs=3, lr=0.1, verbose=0, validation_data=(X_val, y_val))
    assert set(h.history) == {"loss", "lr", "seconds", "val_loss", "val_accuracy"}
    assert h["val_loss"][-1] == pytest.approx(net.loss(X_val, y_val), rel=1e-12)
    assert h["val_accuracy"][-1] == np.mean(net.predict(X_val) == y_val)
    assert h["lr"] == [0.1] * 3


def test_r2_for_regression():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    Y = np.stack([X[:, 0] - X[:, 1], np.sin(X[:, 2])], axis=1)
    net = fastbp.MLP([3, 16, 2], output="identity", dtype="float64", seed=0)
    h = net.fit(X[:150], Y[:150], epochs=5, lr=0.05, verbose=0, validation_data=(X[150:], Y[150:]))
    pred = net.predict(X[150:])
    r2 = [1 - ((Y[150:, j] - pred[:, j]) ** 2).sum() / ((Y[150:, j] - Y[150:, j].mean()) ** 2).sum()
          for j in range(2)]
    assert h["val_r2"][-1] == pytest.approx(np.mean(r2), rel=1e-10)


def test_validation_split_is_stratified_and_holds_out_rows():
    X = np.arange(40.0).reshape(20, 2)
    y = np.array([0] * 10 + [1] * 6 + [2] * 4)
    seen = {}

    class Spy:
        def on_train_begin(self, net):
            seen["begin"] = True

    net = fastbp.MLP([2, 3], seed=0)
    h = net.fit(X, y, epochs=1, verbose=0, validation_split=0.5, callbacks=[Spy()])
    assert seen == {"begin": True} and "val_accuracy" in h.history
    # Held out: the last half of each class, 5 + 3 + 2 rows; the val loss is theirs.
    held = np.r_[5:10, 13:16, 18:20]
    rest = np.setdiff1d(np.arange(20), held)
    twin = fastbp.MLP([2, 3], seed=0)
    twin.fit(X[rest], y[rest], epochs=1, verbose=0)
    assert np.array_equal(twin.params, net.params)
    assert h["val_loss"][0] == pytest.approx(net.loss(X[held], y[held]), rel=1e-6)


def test_early_stopping_stops_and_restores_the_best_weights(digits):
    X_train, X_val, y_train, y_val = digits
    net = fastbp.MLP([64, 64, 10], seed=0)
    stop = fastbp.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    saved = {}

    class Snapshot:  # records the params after each epoch
        def on_epoch_end(self, epoch, logs):
            saved[epoch] = net.params.copy()

    # A learning rate far too high makes the validation loss rise soon.
    h = net.fit(X_train, y_train, epochs=50, lr=2.0, verbose=0,
                validation_data=(X_val, y_val), callbacks=[Snapshot(), stop])
    epochs_run = len(h)
    assert epochs_run < 50 and stop.stopped_epoch == epochs_run - 1
    assert epochs_run - 1 - stop.best_epoch == 3  # patience 2: the third bad epoch stops
    best = int(np.argmin(h["val_loss"]))
    assert best == stop.best_epoch
    assert np.array_equal(net.params, saved[best])


def test_a_callback_can_stop_training():
    class StopAtTwo:
        def on_epoch_end(self, epoch, logs):
            return epoch == 1

    net = fastbp.MLP([2, 2], output="identity", seed=0)
    h = net.fit(np.ones((4, 2)), np.ones((4, 2)), epochs=10, verbose=0, callbacks=[StopAtTwo()])
    assert len(h) == 2 and len(net.history) == 2


@pytest.mark.parametrize("kwargs,exc,message", [
    (dict(validation_split=1.0), ValueError, r"validation_split must be a number in \[0, 1\)"),
    # (review GD: said "leaves no training or no validation samples" where
    # 0.01 of 6 rows is none anyway, and likewise of 40 rows in 10 classes)
    (dict(validation_split=0.01), ValueError, r"holds out no validation samples: a softmax"
     r" output's split is taken class by class \(round\(0.01 x its rows\) of each\), and no"
     r" class has enough rows \(the most: 3\)"),
    (dict(validation_split=0.2, validation_data=(np.ones((2, 2)), [0, 1])), ValueError, "not both"),
    (dict(validation_data=np.ones((2, 2))), TypeError, r"validation_data must be a pair"),
    (dict(validation_data=(np.ones((2, 3)), [0, 1])), ValueError,
     r"validation_data\[0\] has 3 features per sample"),
    (dict(validation_data=(np.ones((2, 2)), [0, 5])), ValueError,
     r"validation_data\[1\] holds class labels outside"),
    (dict(callbacks=[object()]), TypeError, "callbacks must define"),
])
def test_bad_monitoring_arguments_change_nothing(kwargs, exc, message):
    net = fastbp.MLP([2, 2], seed=0)
    params = net.params.copy()
    with pytest.raises(exc, match=message):
        net.fit(np.ones((6, 2)), [0, 1, 0, 1, 0, 1], verbose=0, **kwargs)
    assert np.array_equal(net.params, params) and net.optimizer is None and len(net.history) == 0


def test_a_split_too_small_for_every_class_says_it_is_taken_class_by_class():
    """Review GD: 0.1 of 40 rows is 4, but 10 classes of 4 rows round to 0
    each: the message said the split "leaves no training or no validation
    samples", not why."""
    X = np.random.default_rng(0).normal(size=(40, 2))
    y = np.repeat(np.arange(10), 4)
    net = fastbp.MLP([2, 10], seed=0)
    with pytest.raises(ValueError, match=r"validation_split=0.1 of 40 samples holds out no"
                                         r" validation samples: .* class by class .*the most: 4"):
        net.fit(X, y, epochs=1, verbose=0, validation_split=0.1)
    assert len(net.fit(X, y, epochs=1, verbose=0, validation_split=0.15)) == 1  # round(0.6): 1 each
    reg = fastbp.MLP([2, 1], output="identity", seed=0)   # the last rows: the split as a whole
    with pytest.raises(ValueError, match="0.01 of 40 samples leaves no training or no validation"):
        reg.fit(X, y * 1.0, epochs=1, verbose=0, validation_split=0.01)


def test_early_stopping_arguments():
    with pytest.raises(ValueError, match="patience must be an integer >= 0"):
        fastbp.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode must be one of"):
        fastbp.EarlyStopping(mode="up")
    stop = fastbp.EarlyStopping(monitor="val_r2")
    net = fastbp.MLP([2, 2], seed=0)
    with pytest.raises(ValueError, match="monitors 'val_r2', which training does not report.*"
                                         "validation metrics need fit's validation_data"):
        net.fit(np.ones((4, 2)), [0, 1, 0, 1], verbose=0, callbacks=[stop])
    # with validation data the hint named the wrong cause: a classifier reports val_accuracy
    with pytest.raises(ValueError, match="val_accuracy, val_loss in this fit$"):
        net.fit(np.ones((4, 2)), [0, 1, 0, 1], verbose=0, callbacks=[stop],
                validation_data=(np.ones((4, 2)), [0, 1, 0, 1]))


def test_history_keeps_one_entry_per_epoch_under_every_key(tmp_path):
    """Three epochs without validation, two with, one without again: every
    key has six entries, NaN where the metric was not computed, in the
    model's history and after save/load."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), rng.integers(0, 2, 30)
    net = fastbp.MLP([3, 4, 2], seed=0)
    net.fit(X, y, epochs=3, lr=0.1, verbose=0)
    h = net.fit(X, y, epochs=2, lr=0.1, verbose=0, validation_data=(X[:10], y[:10]))
    net.fit(X, y, epochs=1, lr=0.1, verbose=0)
    path = tmp_path / "m.npz"
    net.save(path)
    for history in (net.history, fastbp.load(path).history):
        assert len(history) == 6
        assert {k: len(v) for k, v in history.history.items()} == {
            k: 6 for k in ("loss", "lr", "seconds", "val_loss", "val_accuracy")}
        for key in ("val_loss", "val_accuracy"):
            values = np.array(history[key])
            assert np.isnan(values[[0, 1, 2, 5]]).all()
            np.testing.assert_array_equal(values[3:5], h[key])
        assert np.isfinite(history["loss"]).all()


def test_history_from_a_file_with_unaligned_columns_is_padded(tmp_path):
    """Files written before the history was aligned: the shorter columns
    belong to the last epochs (validation given in later fits)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), rng.integers(0, 2, 30)
    net = fastbp.MLP([3, 4, 2], seed=0)
    net.fit(X, y, epochs=2, lr=0.1, verbose=0, validation_data=(X[:10], y[:10]))
    path = tmp_path / "m.npz"
    net.save(path)
    with np.load(path) as data:
        arrays = dict(data)
    arrays["history_loss"] = np.r_[1.0, 2.0, arrays["history_loss"]]
    np.savez(path, **arrays)
    history = fastbp.load(path).history
    assert len(history) == 4 and len(history["val_loss"]) == 4
    assert np.isnan(history["val_loss"][:2]).all()
    assert history["val_loss"][2:] == net.history["val_loss"]


@pytest.mark.parametrize("distributed", [False, True])
def test_r2_for_targets_near_1e8_matches_scikit_learn(distributed):
    """Targets near 1e8 with spread ~1 (a one-pass sum of squares cancels
    there), two outputs, single process and one MPI rank; the reference is
    scikit-learn's r2_score and a two-pass float64 NumPy computation."""
    if distributed:
        pytest.importorskip("mpi4py")
    from sklearn.metrics import r2_score
    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 2))
    Y = 1e8 + np.stack([X[:, 0], -X[:, 1]], axis=1) + 0.7 * rng.normal(size=(90, 2))
    net = fastbp.MLP([2, 2], output="identity", dtype="float64")
    net.params[:] = [0.6, 0.1, 0.0, -0.4, 1e8 + 0.2, 1e8 - 0.1]
    h = net.fit(X[:50], Y[:50], epochs=1, batch_size=50, lr=1e-30, verbose=0,
                validation_data=(X[50:], Y[50:]), distributed=distributed)
    pred = net.predict(X[50:])
    expected = r2_score(Y[50:], pred)
    assert 0.1 < expected < 0.9
    assert h["val_r2"][-1] == pytest.approx(expected, rel=1e-9)
    Yv = Y[50:]
    by_hand = np.mean(1 - ((Yv - pred) ** 2).sum(axis=0) / ((Yv - Yv.mean(axis=0)) ** 2).sum(axis=0))
    assert h["val_r2"][-1] == pytest.approx(by_hand, rel=1e-9)


@pytest.mark.parametrize("how", ["plain", "weighted", "distributed"])
def test_r2_of_a_float32_model_with_targets_near_3e19_matches_scikit_learn(how):
    """float32 targets and outputs whose differences square beyond float32's
    range (above 1.8e19): R^2 is summed in float64 from the start, as
    scikit-learn's r2_score of the same float32 values (it was 1.0, the
    total overflowing to inf, or NaN). evaluate, val_r2, weighted, and one
    MPI rank."""
    if how == "distributed":
        pytest.importorskip("mpi4py")
    from sklearn.metrics import r2_score
    X = np.linspace(-1, 1, 8)[:, None]
    Y = (3e19 * X).astype(np.float32)
    net = fastbp.MLP([1, 1], output="identity", dtype="float32", seed=0)
    net.params[:] = [2e19, 0.0]
    pred = net.predict(X)
    expected = r2_score(Y.astype(np.float64), pred.astype(np.float64))
    assert 0.8 < expected < 0.95
    weights = np.ones(8) if how == "weighted" else None
    got = net.evaluate(X, Y, sample_weight=weights)["r2"]
    assert got == pytest.approx(expected, rel=1e-12)
    h = net.fit(X, Y, epochs=1, lr=1e-45, verbose=0, validation_data=(X, Y),
                distributed=how == "distributed")
    assert h["val_r2"][-1] == pytest.approx(expected, rel=1e-12)


def _model_state(net):
    return (net.params.copy(), net._rng.copy(), len(net.history),
            {k: list(v) for k, v in net.history.history.items()},
            None if net.optimizer is None else net.optimizer.t,
            None if net.optimizer is None or net.optimizer.state is None
            else net.optimizer.state.copy(),
            None if net.schedule is None else net.schedule.to_json())


def _assert_same_state(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y or (x != x and y != y)


def test_a_continued_schedule_monitoring_validation_is_refused_before_training():
    """The issue's case: a continued ReduceOnPlateau(monitor="val_loss"),
    then a fit without validation data, trained an epoch and then raised."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 3)), rng.integers(0, 2, 30)
    net = fastbp.MLP([3, 4, 2], seed=0)
    net.fit(X, y, epochs=2, optimizer="adam", verbose=0, validation_data=(X[:10], y[:10]),
            callbacks=[fastbp.schedules.ReduceOnPlateau(monitor="val_loss", patience=0)])
    before = _model_state(net)
    with pytest.raises(ValueError, match="net.schedule ReduceOnPlateau.*continued from an earlier"
                                         " fit, monitors 'val_loss', which training does not report"
                                         ".*validation_data or validation_split"):
        net.fit(X, y, epochs=3, verbose=0)
    _assert_same_state(_model_state(net), before)
    # Review HAB: partial_fit, which takes no validation data, was told to
    # give it validation_data or validation_split.
    with pytest.raises(ValueError, match=r"need fit's validation_data or validation_split"
                                         r" \(partial_fit takes none\); set net.schedule = None"):
        net.partial_fit(X, y)
    _assert_same_state(_model_state(net), before)
    # With validation it continues; with an explicit lr the schedule ends and nothing is monitored.
    assert len(net.fit(X, y, epochs=1, verbose=0, validation_data=(X[:10], y[:10]))) == 1
    net.fit(X, y, epochs=1, lr=0.01, verbose=0)
    assert net.schedule is None


@pytest.mark.parametrize("distributed", [False, True])
@pytest.mark.parametrize("make,output", [
    (lambda tmp: fastbp.EarlyStopping(monitor="val_accuracy"), "identity"),
    (lambda tmp: fastbp.EarlyStopping(monitor="val_loss"), "softmax"),
    (lambda tmp: fastbp.ModelCheckpoint(tmp / "c-{epoch}.npz", monitor="val_loss"), "softmax"),
    (lambda tmp: fastbp.schedules.ReduceOnPlateau(monitor="val_r2"), "softmax"),
    (lambda tmp: fastbp.EarlyStopping(monitor="comm_seconds"), "softmax"),
])
def test_monitors_the_fit_will_not_report_are_refused_before_anything_changes(
        tmp_path, make, output, distributed):
    if distributed:
        pytest.importorskip("mpi4py")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = rng.integers(0, 2, 30) if output == "softmax" else rng.normal(size=30)
    net = fastbp.MLP([3, 4, 2 if output == "softmax" else 1], output=output, seed=0)
    net.fit(X, y, epochs=1, lr=0.1, verbose=0)
    before = _model_state(net)
    cb = make(tmp_path)
    validation = None if cb.monitor in ("val_loss", "val_r2") else (X[:10], y[:10])
    # (comm_seconds is reported there, but on each rank's own clock: the
    # ranks' EarlyStopping parted, and a schedule's rates)
    clock = cb.monitor == "comm_seconds" and distributed
    with pytest.raises(ValueError, match=f"monitors '{cb.monitor}', which " + (
            "each rank of a distributed fit measures on its own clock" if clock else
            "training does not report; it reports")):
        net.fit(X, y, epochs=2, verbose=0, callbacks=[cb], validation_data=validation,
                distributed=distributed)
    _assert_same_state(_model_state(net), before)
    assert list(tmp_path.iterdir()) == []


def test_a_sigmoid_fit_reports_and_monitors_val_accuracy():
    # (review HIJ) its validation metric is accuracy (subset accuracy, as
    # evaluate's), as softmax's; only identity outputs report val_r2
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, :2] > 0).astype(float)
    net = fastbp.MLP([3, 4, 2], output="sigmoid", seed=0)
    h = net.fit(X, y, epochs=3, lr=0.1, verbose=0, validation_split=0.25,
                callbacks=[fastbp.EarlyStopping(monitor="val_accuracy", patience=5)])
    assert "val_r2" not in h.history and len(h["val_accuracy"]) == 3
    assert h["val_accuracy"][-1] == net.evaluate(X[30:], y[30:])["accuracy"]


class _NotCallable:
    on_epoch_end = 5


class _TooFewArguments:
    def on_epoch_end(self):
        return False


class _Fine:
    def on_train_begin(self, net, *rest):
        pass

    def on_epoch_end(self, epoch, logs=None, **more):
        return False


@pytest.mark.parametrize("callback, message", [(_NotCallable(), "must be a method"),
                                               (_TooFewArguments(), "must take")])
def test_a_callback_that_cannot_be_called_is_refused_before_training(digits, callback, message):
    # Refused only when called, after the first epoch had trained: the
    # model changed by a call that then failed.
    X_train, _, y_train, _ = digits
    net = fastbp.MLP([64, 8, 10], seed=0)
    net.fit(X_train, y_train, epochs=1, verbose=0, optimizer="adam")
    params, t, epochs = net.params.copy(), net.optimizer.t, len(net.history)
    with pytest.raises(TypeError, match=message):
        net.fit(X_train, y_train, epochs=2, verbose=0, callbacks=[callback])
    assert np.array_equal(net.params, params) and net.optimizer.t == t
    assert len(net.history) == epochs
    net.fit(X_train, y_train, epochs=1, verbose=0, callbacks=[_Fine()])  # defaults, *args: fine
    assert len(net.history) == epochs + 1


def test_validation_split_takes_any_real_number(digits):
    X_train, _, y_train, _ = digits
    a, b = fastbp.MLP([64, 8, 10], seed=0), fastbp.MLP([64, 8, 10], seed=0)
    ha = a.fit(X_train, y_train, epochs=1, verbose=0, validation_split=np.float32(0.25))
    hb = b.fit(X_train, y_train, epochs=1, verbose=0, validation_split=0.25)
    assert ha["val_loss"] == hb["val_loss"] and np.array_equal(a.params, b.params)


class _RefusesToStart:
    def on_train_begin(self, net):
        raise RuntimeError("callback refuses to start")


@pytest.mark.parametrize("optimizer", [None, "sgd", fastbp.RMSprop(lr=0.02)])
def test_a_fit_whose_callback_refuses_to_start_leaves_the_model_as_it_was(digits, optimizer):
    # fit committed its optimizer, learning rate, schedule and seed before
    # the callbacks' on_train_begin: one that raised left them changed
    # though no epoch ran (the model's Adam replaced by a fresh SGD).
    X_train, _, y_train, _ = digits
    net = fastbp.MLP([64, 8, 10], seed=0)
    net.fit(X_train, y_train, epochs=2, verbose=0, optimizer="adam",
            callbacks=[fastbp.schedules.StepDecay(step_size=1, gamma=0.5)])
    opt, lr, schedule, rng = net.optimizer, net.optimizer.lr, net.schedule, net._rng.copy()
    state, params = opt.state.copy(), net.params.copy()
    with pytest.raises(RuntimeError, match="refuses to start"):
        net.fit(X_train, y_train, epochs=3, verbose=0, lr=0.5, seed=7, optimizer=optimizer,
                callbacks=[_RefusesToStart()])
    assert net.optimizer is opt and opt.lr == lr and net.schedule is schedule
    assert np.array_equal(net._rng, rng) and np.array_equal(opt.state, state)
    assert np.array_equal(net.params, params) and len(net.history) == 2
    if isinstance(optimizer, fastbp.RMSprop):  # not kept by the model that refused it
        assert optimizer.lr == 0.02 and optimizer.state is None
        fastbp.MLP([64, 8, 10], seed=1).fit(X_train, y_train, epochs=1, verbose=0,
                                             optimizer=optimizer)


def test_a_fresh_optimizer_stays_fresh_when_a_callback_refuses_to_start(digits):
    # Its state was sized for the refusing model: a model of another size
    # then refused it ("this optimizer's state is for 31 parameters").
    X_train, _, y_train, _ = digits
    opt = fastbp.Adam(lr=0.01)
    with pytest.raises(RuntimeError, match="refuses to start"):
        fastbp.MLP([64, 8, 10], seed=0).fit(X_train, y_train, verbose=0, optimizer=opt,
                                            callbacks=[_RefusesToStart()])
    assert opt.state is None and opt.t == 0
    other = fastbp.MLP([64, 5, 10], seed=0)
    twin = fastbp.MLP([64, 5, 10], seed=0)
    other.fit(X_train, y_train, epochs=1, verbose=0, optimizer=opt)
    twin.fit(X_train, y_train, epochs=1, verbose=0, optimizer=fastbp.Adam(lr=0.01))
    np.testing.assert_array_equal(other.params, twin.params)


def test_early_stopping_takes_no_nan_as_its_best():
    # Keras's best starts at inf, and a NaN is never an improvement: taken as
    # the best (it was), no later epoch could improve, and the fit stopped
    # after patience + 1 epochs restoring the NaN epoch's weights.
    net = fastbp.MLP([2, 2], seed=0)
    stop = fastbp.EarlyStopping(patience=1, restore_best_weights=True)
    stop.on_train_begin(net)
    stopped = None
    for epoch, value in enumerate([float("nan"), 0.6, 0.55, 0.58, 0.59]):
        net.params[:] = epoch
        if stop.on_epoch_end(epoch, {"val_loss": value}):
            stopped = epoch
            break
    stop.on_train_end(net)
    assert (stopped, stop.best_epoch, stop.best) == (4, 2, 0.55)
    assert np.all(net.params == 2)
    # All NaN: nothing to restore, the last weights stay.
    stop.on_train_begin(net)
    assert [stop.on_epoch_end(e, {"val_loss": float("nan")}) for e in range(2)] == [False, True]
    net.params[:] = 7
    stop.on_train_end(net)
    assert stop.best_epoch is None and stop.restored_epoch is None and np.all(net.params == 7)


def test_best_is_the_metric_itself_in_max_mode(tmp_path):
    """EarlyStopping.best and ModelCheckpoint.best held the negated value for
    a metric where higher is better (-0.5 for a best accuracy of 0.5); in
    Keras they hold the metric. The rule itself is unchanged."""
    net = fastbp.MLP([2, 2], seed=0)
    stop = fastbp.EarlyStopping("val_accuracy", patience=1)
    check = fastbp.ModelCheckpoint(tmp_path / "best.npz", monitor="val_r2")
    stop.on_train_begin(net)
    check.on_train_begin(net)
    stopped = None
    for epoch, value in enumerate([0.25, 0.5, 0.75, 0.5, 0.625]):
        check.on_epoch_end(epoch, {"val_r2": value})
        if stop.on_epoch_end(epoch, {"val_accuracy": value}):
            stopped = epoch
            break
    assert (stopped, stop.best_epoch, stop.best, check.best) == (4, 2, 0.75, 0.75)
    low = fastbp.EarlyStopping("val_loss", patience=0, mode="max")
    low.on_train_begin(net)
    assert [low.on_epoch_end(e, {"val_loss": v}) for e, v in enumerate([-2.0, -1.0, -1.5])] \
        == [False, False, True]
    assert (low.best, low.best_epoch) == (-1.0, 1)


def test_min_delta_must_be_exceeded():
    # The docstring said "the least change that counts": a change of exactly
    # min_delta is none (Keras's and PyTorch's strict rule).
    net = fastbp.MLP([2, 2], seed=0)
    stop = fastbp.EarlyStopping("loss", patience=0, min_delta=0.5)
    stop.on_train_begin(net)
    assert [stop.on_epoch_end(0, {"loss": 1.0}), stop.on_epoch_end(1, {"loss": 0.5})] \
        == [False, True]
    assert "more than this" in fastbp.EarlyStopping.__doc__


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_seconds_leave_out_the_callbacks_time(optimizer, monkeypatch):
    """L-BFGS counted a callback's time (and on_train_begin's) into the next
    iteration's seconds; minibatch fits leave it out. A clock that only the
    callbacks move: every epoch's seconds must be 0."""
    from fastbp import train
    clock = [0.0]
    monkeypatch.setattr(train.time, "perf_counter", lambda: clock[0])

    class Slow:
        def on_train_begin(self, net):
            clock[0] += 100.0

        def on_epoch_end(self, epoch, logs):
            clock[0] += 10.0

    X = np.random.default_rng(0).normal(size=(32, 3))
    y = np.arange(32) % 2
    net = fastbp.MLP([3, 4, 2], seed=0)
    h = net.fit(X, y, epochs=3, optimizer=optimizer, verbose=0, callbacks=[Slow()])
    assert len(h["seconds"]) == 3 and h["seconds"] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("what", ["optimizer", "schedule"])
def test_the_optimizer_or_schedule_set_during_a_fit_is_refused(what):
    """Set from a callback, the optimizer was taken (the model reported it,
    and would save it) while the fit went on training with the old one."""
    X = np.random.default_rng(0).normal(size=(32, 3))
    y = np.arange(32) % 2
    net = fastbp.MLP([3, 4, 2], seed=0)
    new = {"optimizer": fastbp.SGD(lr=0.3), "schedule": fastbp.schedules.StepDecay(1)}[what]

    class Swap:
        def on_train_begin(self, net):
            self.net = net

        def on_epoch_end(self, epoch, logs):
            setattr(self.net, what, new)

    with pytest.raises(RuntimeError, match=f"net.{what} cannot be set while a fit of this model"):
        net.fit(X, y, epochs=3, optimizer="adam", lr=0.1, verbose=0, callbacks=[Swap()])
    assert type(net.optimizer).__name__ == "Adam" and net.optimizer.t == 1   # (one epoch ran)
    assert net.schedule is None
    setattr(net, what, new)   # between fits it is taken
    assert getattr(net, what) is new


def test_a_callback_refusing_the_fit_leaves_no_progress_bar(monkeypatch):
    # The bar was made before on_train_begin and never closed when that
    # raised: a 0/5 bar stayed in the terminal, later output glued to it.
    from fastbp import train
    bars = []

    class Bar:
        closed = False

        def close(self):
            self.closed = True

        def __getattr__(self, name):   # (update, set_postfix, ...)
            return lambda *args, **kwargs: None

    def progress_bar(epochs, verbose):
        bars.append(Bar())
        return bars[-1]

    class Refuse:
        def on_train_begin(self, net):
            raise RuntimeError("refused")

    monkeypatch.setattr(train, "_progress_bar", progress_bar)
    X = np.random.default_rng(0).normal(size=(32, 3))
    y = np.arange(32) % 2
    for optimizer in ["adam", "lbfgs"]:
        net = fastbp.MLP([3, 4, 2], seed=0)
        with pytest.raises(RuntimeError, match="refused"):
            net.fit(X, y, epochs=5, verbose=1, optimizer=optimizer, callbacks=[Refuse()])
    net.fit(X, y, epochs=1, verbose=1)   # (a fit that runs has its bar, closed)
    assert len(bars) == 1 and bars[0].closed


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_on_train_end_may_set_the_optimizer_and_schedule_for_the_next_fit(optimizer):
    """Refused while epochs remain, they are the next fit's once the epochs
    are over: a callback dropping a custom schedule before a save in
    on_train_end (as a save's error advises) failed the finished fit."""
    X = np.random.default_rng(0).normal(size=(32, 3))
    y = np.arange(32) % 2
    sgd = fastbp.SGD(lr=0.05)

    class AtEnd:
        def on_train_end(self, net):
            net.schedule = None
            if optimizer != "lbfgs":
                net.optimizer = sgd

    net = fastbp.MLP([3, 4, 2], seed=0)
    callbacks = [AtEnd()] + ([fastbp.schedules.StepDecay(1)] if optimizer != "lbfgs" else [])
    h = net.fit(X, y, epochs=2, optimizer=optimizer, verbose=0, callbacks=callbacks)
    assert len(h) == 2 and net.schedule is None
    assert net.optimizer is (sgd if optimizer != "lbfgs" else net.optimizer)


def test_validation_split_of_the_last_rows_reads_the_callers_memory(tmp_path, monkeypatch):
    """validation_split copied all of X (a memory map's 38 MiB for its 38 MiB)
    where the held-out rows are the last ones (every output but softmax's,
    which holds out the last of each class): views now, the same training."""
    from fastbp import model
    X = np.random.default_rng(0).normal(size=(200, 4))
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    y = X[:, :1] * 2
    seen = []
    run = model.run_epochs
    monkeypatch.setattr(model, "run_epochs", lambda net, X, Y, *a, **k: (
        seen.append((X, a[5])), run(net, X, Y, *a, **k))[1])
    a = fastbp.MLP([4, 3, 1], output="identity", dtype="float64", seed=0)
    a.fit(Xm, y, epochs=2, verbose=0, validation_split=0.25)
    trained, (Xv, _) = seen[0]
    assert np.shares_memory(trained, Xm) and np.shares_memory(Xv, Xm)
    b = fastbp.MLP([4, 3, 1], output="identity", dtype="float64", seed=0)
    hb = b.fit(X[:150], y[:150], epochs=2, verbose=0, validation_data=(X[150:], y[150:]))
    np.testing.assert_array_equal(a.params, b.params)
    assert a.history["val_loss"] == hb["val_loss"]


def test_the_optimizer_set_while_a_fit_checks_its_arguments_is_refused(monkeypatch):
    """From the fit's claim on, not only once its arguments are checked: set
    in that window (another thread) it was taken, then lost to the fit's."""
    from fastbp import _args
    X = np.random.default_rng(0).normal(size=(32, 3))
    y = np.arange(32) % 2
    net = fastbp.MLP([3, 4, 2], seed=0)
    refused = []
    real = _args.fit_arguments

    def checking(*args, **kwargs):
        try:
            net.optimizer = fastbp.SGD(lr=0.3)
        except RuntimeError as exc:
            refused.append(str(exc))
        return real(*args, **kwargs)

    monkeypatch.setattr(_args, "fit_arguments", checking)
    net.fit(X, y, epochs=1, optimizer="adam", verbose=0)
    assert len(refused) == 1 and "cannot be set while a fit of this model runs" in refused[0]
    assert type(net.optimizer).__name__ == "Adam"


def test_history_is_replaced_only_by_a_history_and_clears_whole(tmp_path):
    """Review HBA: net.history = {} was taken, and the next fit trained an
    epoch (weights and optimizer.t moved) then failed recording it; a dict's
    clear() emptied the metrics and kept the epoch numbers, so the next fit
    recorded NaN loss, lr and seconds for the old epochs (and save wrote
    them)."""
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = (X[:, 0] > 0).astype(int)
    net = fastbp.MLP([2, 3, 2], seed=0)
    net.fit(X, y, epochs=2, batch_size=5, verbose=0)
    params, t, history = net.params.copy(), net.optimizer.t, net.history
    for bad in ({}, {"loss": []}, None):
        with pytest.raises(TypeError, match="net.history must be a fastbp.History"):
            net.history = bad
    assert net.history is history and len(history) == 2
    np.testing.assert_array_equal(net.params, params)
    assert net.optimizer.t == t
    net.history.clear()
    assert len(net.history) == 0 and dict(net.history) == {"loss": [], "seconds": []}
    net.fit(X, y, epochs=1, batch_size=5, verbose=0)
    assert len(net.history) == 1 and net.history.epoch == [0]
    assert all(len(v) == 1 and np.isfinite(v[0]) for v in net.history.values())
    fresh = fastbp.History()
    net.history = fresh
    net.fit(X, y, epochs=1, batch_size=5, verbose=0)
    assert net.history is fresh and len(fresh) == 1
    net.save(tmp_path / "m.npz")
    back = fastbp.load(tmp_path / "m.npz")
    assert len(back.history) == 1 and back.history["loss"] == fresh["loss"]
    clone = copy.deepcopy(net)
    assert clone.history is not net.history and clone.history["loss"] == net.history["loss"]


@pytest.mark.parametrize("weighted", [False, True])
def test_r2_takes_its_total_squares_in_chunks(weighted):
    """Review HBQ: evaluate (and every epoch's validation) of an identity
    model held Y in float64 and its squared deviations whole: 147 MiB for
    24 MiB of float32 targets, where the guide promises memory O(n +
    weights) beyond the data. Now chunked: less than Y's own size, and R^2
    is scikit-learn's r2_score (uniform average, sample weights), a constant
    column counted as 0 as before."""
    import tracemalloc

    from sklearn.metrics import r2_score
    rng = np.random.default_rng(0)
    n, m = 100_000, 64
    X = rng.normal(size=(n, 6)).astype(np.float32)
    Y = (X[:, :1] + rng.normal(size=(n, m))).astype(np.float32)
    Y[:, 5] = 0.1   # constant
    net = fastbp.MLP([6, 8, m], output="identity", seed=0)
    w = rng.uniform(0.5, 2, n) if weighted else None
    net.evaluate(X[:100], Y[:100], sample_weight=None if w is None else w[:100])   # warm
    tracemalloc.start()
    try:
        r2 = net.evaluate(X, Y, sample_weight=w)["r2"]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < Y.nbytes / 4, (peak, Y.nbytes)
    pred = net.predict(X).astype(np.float64)
    keep = [j for j in range(m) if j != 5]
    expected = (r2_score(Y[:, keep], pred[:, keep], sample_weight=w, multioutput="raw_values")
                .sum() + 0.0) / m   # the constant column's R^2: 0
    assert r2 == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("output", ["identity", "sigmoid"])
def test_validation_split_holds_out_the_rounded_row_count_of_any_output(output):
    # (review HHG) round(0.29 * 10) = 3 rows, where truncation holds out 2;
    # the reference: a twin trained on the first 7 rows, its loss on the last 3
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 3))
    y = rng.normal(size=10) if output == "identity" else (X[:, 0] > 0).astype(float)
    net, ref = (fastbp.MLP([3, 4, 1], output=output, dtype="float64", seed=0) for _ in range(2))
    history = net.fit(X, y, epochs=1, batch_size=10, shuffle=False, verbose=0,
                      validation_split=0.29)
    ref.fit(X[:7], y[:7], epochs=1, batch_size=10, shuffle=False, verbose=0)
    np.testing.assert_array_equal(net.params, ref.params)
    assert history["val_loss"][-1] == pytest.approx(ref.loss(X[7:], y[7:]), rel=1e-12)
