"""Learning-rate schedules against their closed forms."""
import math
import threading
import warnings

import numpy as np
import pytest

import fastbp
from fastbp import schedules

X = np.random.default_rng(0).normal(size=(20, 3))
Y = np.random.default_rng(1).integers(0, 2, 20)


def lrs(schedule, epochs, lr=0.1, optimizer="sgd", fits=1):
    net = fastbp.MLP([3, 2], seed=0)
    out = []
    for _ in range(fits):
        out += net.fit(X, Y, epochs=epochs, batch_size=10, lr=lr if not out else None,
                       optimizer=optimizer if not out else None, verbose=0,
                       callbacks=[schedule])["lr"]
    return out


def test_step_and_exponential_decay():
    assert lrs(schedules.StepDecay(3, gamma=0.5), 7) == pytest.approx(
        [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025])
    assert lrs(schedules.ExponentialDecay(0.9), 4) == pytest.approx([0.1 * 0.9 ** e for e in range(4)])
    assert lrs(schedules.Constant(), 3) == [0.1] * 3


def test_cosine_annealing_continues_across_fits():
    expected = [0.01 + (0.1 - 0.01) * (1 + math.cos(math.pi * min(e, 5) / 5)) / 2 for e in range(8)]
    assert lrs(schedules.CosineAnnealing(5, eta_min=0.01), 8) == pytest.approx(expected)
    assert lrs(schedules.CosineAnnealing(5, eta_min=0.01), 4, fits=2) == pytest.approx(expected)


def test_inverse_scaling_counts_samples_like_scikit_learn():
    got = lrs(schedules.InverseScaling(power_t=0.5), 4)
    assert got == pytest.approx([0.1] + [0.1 / (20 * e + 1) ** 0.5 for e in range(1, 4)])


def test_reduce_on_plateau():
    net = fastbp.MLP([3, 2], seed=0)
    net.fit(X, Y, epochs=1, lr=1.0, verbose=0)
    plateau = schedules.ReduceOnPlateau(monitor="val_loss", factor=0.5, patience=1)
    plateau.on_train_begin(net)
    seen = []
    for epoch, value in enumerate([1.0, 0.9, 0.95, 0.95, 0.95, 0.5, 0.6, 0.6]):
        plateau.on_epoch_end(epoch, {"val_loss": value})
        seen.append(net.optimizer.lr)
    # Two epochs without improvement halve the lr; an improvement resets the count.
    assert seen == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]


def test_reduce_on_plateau_stops_reducing_by_eps_as_pytorch():
    # torch.optim.lr_scheduler.ReduceLROnPlateau keeps the lr when the cut
    # would be eps (1e-8) or less: from 0.1 by tenths, it ends at 1e-8.
    net = fastbp.MLP([3, 2], seed=0)
    net.fit(X, Y, epochs=1, lr=0.1, verbose=0)
    plateau = schedules.ReduceOnPlateau(factor=0.1, patience=0, min_delta=0)
    plateau.on_train_begin(net)
    seen = []
    for epoch in range(12):
        plateau.on_epoch_end(epoch, {"val_loss": 1.0})
        seen.append(net.optimizer.lr)
    expected, lr = [0.1], 0.1     # (the first value is an improvement on none)
    for _ in range(11):   # the rule by hand
        lr = lr * 0.1 if lr - lr * 0.1 > 1e-8 else lr
        expected.append(lr)
    assert seen == expected and seen[-1] == pytest.approx(1e-8) and seen[-1] == seen[-4]
    with pytest.raises(ValueError, match="eps must be"):
        schedules.ReduceOnPlateau(eps=-1.0)


def test_numpy_scalars_are_taken_as_hyper_parameters():
    for opt in (fastbp.SGD(lr=np.float32(0.1), momentum=np.float32(0.9)),
                fastbp.Adam(betas=(np.float32(0.9), np.float64(0.999))),
                fastbp.RMSprop(alpha=np.float32(0.9), weight_decay=np.float32(0.01))):
        assert np.isfinite(opt.hyper).all()
    assert fastbp.SGD(momentum=np.float32(0.5)).hyper[fastbp.optim.MOMENTUM] == 0.5
    schedules.ReduceOnPlateau(factor=np.float32(0.5), min_lr=np.float64(1e-4))
    with pytest.raises(ValueError, match="momentum"):
        fastbp.SGD(momentum=np.bool_(True))


def test_schedules_work_with_adam():
    got = lrs(schedules.StepDecay(2, gamma=0.1), 4, lr=0.01, optimizer="adam")
    assert got == pytest.approx([0.01, 0.01, 0.001, 0.001])


@pytest.mark.parametrize("make,message", [
    (lambda: schedules.StepDecay(0), "step_size must be an integer >= 1"),
    (lambda: schedules.ExponentialDecay(-1), "gamma must be a positive"),
    (lambda: schedules.CosineAnnealing(5, eta_min=-1), "eta_min must be a finite number >= 0"),
    (lambda: schedules.CosineAnnealing(5, eta_min=math.inf), "eta_min must be a finite number >= 0"),
    (lambda: schedules.ReduceOnPlateau(factor=1.5), r"factor must be a number in \(0, 1\)"),
    (lambda: schedules.InverseScaling(power_t=0), "power_t must be a positive"),
])
def test_bad_schedule_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_cosine_annealing_trains_its_first_epoch_at_the_given_lr_itself():
    """Found in review HDH (session 53): epoch 0's rate was computed as
    eta_min + (lr0 - eta_min) * 2 / 2, which rounds off lr0 for about one
    pair in six: fit(lr=0.01) with eta_min 0.001 trained its first epoch at
    0.010000000000000002, where PyTorch's CosineAnnealingLR trains it at the
    optimizer's lr itself."""
    rng = np.random.default_rng(0)
    pairs = list(zip(10.0 ** rng.uniform(-5, 0, 2000), rng.uniform(0, 1, 2000)))
    off = [(lr0, eta) for lr0, eta in pairs
           if fastbp.schedules.CosineAnnealing(10, eta_min=eta * lr0).lr(0, lr0) != lr0]
    assert off == []
    X = rng.normal(size=(64, 4))
    y = rng.integers(0, 2, 64)
    net = fastbp.MLP([4, 3, 2], dtype="float64", seed=0)
    history = net.fit(X, y, epochs=2, lr=0.01, verbose=0,
                      callbacks=[fastbp.schedules.CosineAnnealing(10, eta_min=0.001)])
    assert history["lr"][0] == 0.01
    # the second epoch: the cosine's value (PyTorch's closed form)
    assert history["lr"][1] == pytest.approx(0.001 + 0.009 * (1 + np.cos(np.pi / 10)) / 2,
                                             rel=1e-15)


def test_cosine_to_zero_and_explicit_lr_end_a_continued_schedule():
    """Review findings: annealing to lr 0 is allowed; fit(lr=...) or a new
    optimizer ends the schedule continued from an earlier fit."""
    import numpy as np

    import fastbp
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    net = fastbp.MLP([3, 4, 2], seed=0)
    net.fit(X, y, epochs=5, lr=0.1, verbose=0, callbacks=[fastbp.schedules.CosineAnnealing(T_max=5)])
    assert net.optimizer.lr == 0.0
    net.fit(X, y, epochs=1, lr=0.2, verbose=0)
    assert net.schedule is None and net.history["lr"][-1] == 0.2
    with pytest.raises(ValueError, match="lr must be a positive"):
        fastbp.SGD(lr=0.0)


@pytest.mark.parametrize("make,expected", [
    (lambda: schedules.StepDecay(step_size=2, gamma=0.5), [0.1, 0.1, 0.05, 0.05]),
    (lambda: schedules.ExponentialDecay(0.5), [0.1, 0.05, 0.025, 0.0125]),
    (lambda: schedules.CosineAnnealing(4), [0.1 * (1 + math.cos(math.pi * e / 4)) / 2
                                            for e in range(4)]),
])
def test_a_new_schedule_on_a_trained_model_counts_from_its_own_start(make, expected):
    """The issue's case: after 5 epochs, a new StepDecay(2, 0.5) gave
    [0.025, 0.0125, 0.0125, 0.00625] (it counted the 5 old epochs)."""
    net = fastbp.MLP([3, 2], seed=0)
    net.fit(X, Y, epochs=5, lr=0.1, verbose=0)
    got = net.fit(X, Y, epochs=4, lr=0.1, verbose=0, callbacks=[make()])["lr"]
    assert got == pytest.approx(expected, rel=1e-12)
    # Continued by a later fit, it keeps counting (closed form at epochs 4, 5).
    schedule = make()
    again = fastbp.MLP([3, 2], seed=0)
    again.fit(X, Y, epochs=5, lr=0.1, verbose=0)
    again.fit(X, Y, epochs=4, lr=0.1, verbose=0, callbacks=[schedule])
    assert again.fit(X, Y, epochs=2, verbose=0)["lr"] == pytest.approx(
        [schedule.lr(e, 0.1) for e in (4, 5)], rel=1e-12)


@pytest.mark.parametrize("make", [
    lambda: schedules.StepDecay(step_size=2, gamma=0.5),
    lambda: schedules.InverseScaling(),
    lambda: schedules.ReduceOnPlateau(monitor="loss", factor=0.5, patience=0, min_delta=0.99),
], ids=["step", "invscaling", "plateau"])
def test_one_schedule_reused_for_a_new_model_starts_anew(make):
    """A sweep that hands one schedule object to model after model: each
    fresh model gets the rates a new schedule gives it, from its own lr. It
    continued the first model's count and lr0 (StepDecay gave the second
    model, asked for lr=0.01, [0.025, 0.025, 0.0125, 0.0125])."""
    shared = make()
    fastbp.MLP([3, 2], seed=0).fit(X, Y, epochs=4, lr=0.1, verbose=0, callbacks=[shared])
    got = fastbp.MLP([3, 2], seed=1).fit(X, Y, epochs=4, lr=0.01, verbose=0, callbacks=[shared])
    want = fastbp.MLP([3, 2], seed=1).fit(X, Y, epochs=4, lr=0.01, verbose=0, callbacks=[make()])
    assert got["lr"] == want["lr"]
    assert got["lr"][0] == 0.01
    if isinstance(shared, schedules.StepDecay):
        assert got["lr"] == pytest.approx([0.01, 0.01, 0.005, 0.005], rel=1e-12)
    if isinstance(shared, schedules.ReduceOnPlateau):
        assert got["lr"] == pytest.approx([0.01, 0.01, 0.005, 0.0025], rel=1e-12)


def test_a_schedule_reused_by_a_second_model_leaves_the_first_ones_count():
    """The sweep's second model took the shared object and reset it: the
    first model's next fit, continuing net.schedule, restarted its count from
    the current lr (StepDecay(2, 0.5): [.1, .1, .05, .05, .05, .025] where one
    fit of six epochs gives [.1, .1, .05, .05, .025, .025])."""
    shared = schedules.StepDecay(2, 0.5)
    a = fastbp.MLP([3, 2], seed=0)
    a.fit(X, Y, epochs=3, lr=0.1, verbose=0, callbacks=[shared])
    b = fastbp.MLP([3, 2], seed=1)
    b.fit(X, Y, epochs=3, lr=0.1, verbose=0, callbacks=[shared])
    assert a.schedule is shared and b.schedule is not shared  # b has its own copy
    a.fit(X, Y, epochs=3, verbose=0)
    ref = fastbp.MLP([3, 2], seed=0)
    ref.fit(X, Y, epochs=6, lr=0.1, verbose=0, callbacks=[schedules.StepDecay(2, 0.5)])
    assert a.history["lr"] == ref.history["lr"] == pytest.approx([.1, .1, .05, .05, .025, .025])
    np.testing.assert_array_equal(a.params, ref.params)
    b.fit(X, Y, epochs=1, verbose=0)  # and b continues its own: epoch 3 of StepDecay(2, .5)
    assert b.history["lr"] == pytest.approx([.1, .1, .05, .05])


def _both_fits_checked_before_either_claims(monkeypatch, first, second):
    """Run first() in a thread and second() here, each fit's argument checks
    (fit_arguments) done before either fit claims its optimizer and
    schedule: the interleaving two fits started at once in threads may take.
    Returns {"first": ..., "second": ...}, each a result or the exception."""
    from fastbp import _args
    real = _args._fit_arguments
    checked = threading.Barrier(2, timeout=60)

    def checks(*args, **kwargs):
        run = real(*args, **kwargs)
        checked.wait()
        return run

    out = {}

    def run(name, call):
        try:
            out[name] = call()
        except BaseException as exc:
            out[name] = exc

    with monkeypatch.context() as patch:   # (these two fits only)
        patch.setattr(_args, "_fit_arguments", checks)
        t = threading.Thread(target=run, args=("first", first))
        t.start()
        run("second", second)
        t.join(timeout=120)
    assert not t.is_alive()
    return out


def test_one_schedule_given_to_two_fits_at_once_is_each_models_own(monkeypatch):
    """A sweep in threads that hands one schedule object to two models at
    once: each trains at the rates of a schedule of its own, as one after
    the other: one model holds the object, the other a copy (review HFH:
    both had passed the check for another model's schedule before either
    bound it, and shared it; one model's lr stayed at 0.1 while the other's
    decayed twice an epoch)."""
    shared = schedules.ExponentialDecay(0.5)
    a, b = fastbp.MLP([3, 4, 2], seed=0), fastbp.MLP([3, 4, 2], seed=1)

    def fit(net):
        return lambda: net.fit(X, Y, epochs=4, lr=0.1, verbose=0, callbacks=[shared])["lr"]

    out = _both_fits_checked_before_either_claims(monkeypatch, fit(a), fit(b))
    want = [0.1 * 0.5 ** e for e in range(4)]
    assert out["first"] == pytest.approx(want, rel=1e-12)
    assert out["second"] == pytest.approx(want, rel=1e-12)
    assert (a.schedule is shared) != (b.schedule is shared)
    assert a.schedule is not b.schedule
    for net, seed in ((a, 0), (b, 1)):
        ref = fastbp.MLP([3, 4, 2], seed=seed)
        ref.fit(X, Y, epochs=4, lr=0.1, verbose=0, callbacks=[schedules.ExponentialDecay(0.5)])
        np.testing.assert_array_equal(net.params, ref.params)


def test_one_optimizer_given_to_two_fits_at_once_is_refused_to_one(monkeypatch):
    """An optimizer a fit running in another thread holds is refused, as it
    is once that fit has ended: one of two fits started at once trains with
    it, the other is refused, its model unchanged (review HFH: both fits took
    it, and trained one Adam's state by turns)."""
    adam = fastbp.Adam(lr=0.01)
    nets = {"first": fastbp.MLP([3, 4, 2], seed=0), "second": fastbp.MLP([3, 4, 2], seed=1)}
    before = {k: net.params.copy() for k, net in nets.items()}

    def fit(net):
        return lambda: net.fit(X, Y, epochs=3, batch_size=5, optimizer=adam, verbose=0)

    out = _both_fits_checked_before_either_claims(monkeypatch, fit(nets["first"]),
                                                 fit(nets["second"]))
    refused = [k for k, v in out.items() if isinstance(v, ValueError)]
    assert len(refused) == 1, out
    assert "another model's training" in str(out[refused[0]])
    (trained,) = set(nets) - set(refused)
    np.testing.assert_array_equal(nets[refused[0]].params, before[refused[0]])
    assert nets[trained].optimizer is adam and nets[refused[0]].optimizer is None
    ref = fastbp.MLP([3, 4, 2], seed={"first": 0, "second": 1}[trained])
    ref.fit(X, Y, epochs=3, batch_size=5, optimizer=fastbp.Adam(lr=0.01), verbose=0)
    np.testing.assert_array_equal(nets[trained].params, ref.params)
    assert adam.t == ref.optimizer.t == 12


def test_a_fits_argument_checks_leave_the_claims_lock_free(monkeypatch):
    """fit's checks, which in a distributed fit end in the ranks' agreement
    (a collective that waits for every rank), run without the lock that
    claims optimizers and schedules: another thread can take it meanwhile
    (review HFK: held over them, two threads' distributed fits on two
    communicators, started in opposite orders on two ranks, waited for each
    other for ever)."""
    from fastbp import _args
    real = _args._fit_arguments
    taken = []

    def checks(*args, **kwargs):
        other = threading.Thread(target=lambda: taken.append(_args.CLAIMING.acquire(timeout=5)
                                                             and _args.CLAIMING.release() is None))
        other.start()
        other.join()
        return real(*args, **kwargs)

    monkeypatch.setattr(_args, "_fit_arguments", checks)
    fastbp.MLP([3, 2], seed=0).fit(X, Y, epochs=1, verbose=0)
    assert taken == [True]


def test_reduce_on_plateau_of_a_higher_is_better_metric_is_pytorch_mode_max():
    """mode "auto" takes max for accuracy and r2, as EarlyStopping does: the
    lr is cut when accuracy stops rising, not each time it rises (it halved
    at every rise, where torch's ReduceLROnPlateau(mode="max") kept it)."""
    def run(values, **kw):
        net = fastbp.MLP([3, 2], seed=0)
        net.fit(X, Y, epochs=1, lr=1.0, verbose=0)
        plateau = schedules.ReduceOnPlateau(factor=0.5, patience=0, **kw)
        plateau.on_train_begin(net)
        seen = []
        for epoch, value in enumerate(values):
            plateau.on_epoch_end(epoch, {plateau.monitor: value})
            seen.append(net.optimizer.lr)
        return seen
    rising = [0.5, 0.6, 0.7, 0.8, 0.8, 0.8, 0.9]
    # by hand: better means above best * (1 + min_delta); two flat epochs, two cuts
    assert run(rising, monitor="val_accuracy") == [1.0, 1.0, 1.0, 1.0, 0.5, 0.25, 0.25]
    assert run(rising, monitor="val_r2") == run(rising, monitor="loss", mode="max")
    assert run(rising, monitor="val_accuracy", mode="min") == [1.0, 0.5, 0.25, 0.125, 0.0625,
                                                               0.03125, 0.015625]
    with pytest.raises(ValueError, match="mode must be one of 'auto', 'min', 'max'"):
        schedules.ReduceOnPlateau(mode="up")


def test_a_schedule_set_from_another_model_starts_anew_as_a_copy():
    """net.schedule = other.schedule shared one object: each model's fits
    moved the other's count (the first model's next rates were 0.003125 and
    0.0015625 where alone it gets 0.0125 and 0.00625)."""
    a = fastbp.MLP([3, 2], seed=0)
    a.fit(X, Y, epochs=3, lr=0.1, verbose=0, callbacks=[schedules.StepDecay(1, 0.5)])
    b = fastbp.MLP([3, 2], seed=0)
    b.schedule = a.schedule
    got = b.fit(X, Y, epochs=2, verbose=0)["lr"]
    assert b.schedule is not a.schedule
    assert a.fit(X, Y, epochs=2, verbose=0)["lr"] == pytest.approx([0.0125, 0.00625])
    assert got == pytest.approx([0.01, 0.005])  # anew from b's own lr (SGD's default 0.01)


def test_a_loaded_models_schedule_is_its_own(tmp_path):
    """load rebuilt the schedule without its owner: the model's own schedule
    given again with an lr kept counting (the lr ignored), and another model
    given it took it over (continuing its count) where it takes a copy."""
    a = fastbp.MLP([3, 2], seed=0)
    a.fit(X, Y, epochs=4, lr=0.5, verbose=0, callbacks=[schedules.StepDecay(1, 0.5)])
    a.save(tmp_path / "a.npz")
    # (a) the same calls on the model in memory and on the loaded one
    for net in (a, fastbp.load(tmp_path / "a.npz")):
        got = net.fit(X, Y, epochs=3, lr=0.2, verbose=0, callbacks=[net.schedule])["lr"]
        assert got == pytest.approx([0.2, 0.1, 0.05])
    # (b) set on another model: a fresh copy there, and the loaded model keeps counting
    loaded = fastbp.load(tmp_path / "a.npz")   # lr0 0.5, four epochs scheduled
    b = fastbp.MLP([3, 2], seed=1)
    b.schedule = loaded.schedule
    assert b.fit(X, Y, epochs=2, verbose=0)["lr"] == pytest.approx([0.01, 0.005])
    assert loaded.fit(X, Y, epochs=2, verbose=0)["lr"] == pytest.approx([0.5 / 16, 0.5 / 32])


def test_a_schedule_set_by_hand_and_not_run_stays_after_load_as_before(tmp_path):
    """A schedule set by hand and not yet run is no model's own: another
    optimizer set then keeps it, on the model and on its saved and loaded
    twin alike (the loaded one counted it as run and dropped it: rates
    [0.1, 0.1, 0.1] against [0.1, 0.05, 0.025])."""
    X, y = np.random.default_rng(0).normal(size=(12, 3)), np.arange(12) % 2
    net = fastbp.MLP([3, 5, 2], seed=0)
    net.schedule = schedules.StepDecay(1, 0.5)
    net.save(tmp_path / "m.npz")
    loaded = fastbp.load(tmp_path / "m.npz")
    rates = []
    for m in (net, loaded):
        m.optimizer = fastbp.SGD(lr=0.1)
        assert m.schedule is not None
        rates.append(m.fit(X, y, epochs=3, verbose=0)["lr"])
    assert rates[0] == rates[1] == [0.1, 0.05, 0.025]
    np.testing.assert_array_equal(net.params, loaded.params)


def test_a_schedule_started_at_an_lr_of_zero_is_saved_and_loaded(tmp_path):
    """CosineAnnealing to eta_min 0 leaves the lr at 0; a schedule started
    there saved lr0 = 0, which save wrote and load refused."""
    net = fastbp.MLP([3, 2], seed=0)
    net.fit(X, Y, epochs=5, lr=0.1, verbose=0, callbacks=[schedules.CosineAnnealing(T_max=5)])
    assert net.optimizer.lr == 0.0
    for make in (lambda: schedules.StepDecay(1), lambda: schedules.ReduceOnPlateau(monitor="loss", patience=0)):
        net.fit(X, Y, epochs=2, verbose=0, callbacks=[make()])
        net.save(tmp_path / "z.npz")
        back = fastbp.load(tmp_path / "z.npz")
        assert back.schedule.lr0 == 0.0 and back.optimizer.lr == 0.0
        assert back.fit(X, Y, epochs=1, verbose=0)["lr"] == [0.0]
    with pytest.raises(ValueError, match="lr0 must be a finite number >= 0"):
        schedules.from_json('{"name": "StepDecay", "fields": {"step_size": 1, "lr0": -0.1}}')


def test_an_explicit_lr_restarts_a_schedule_given_again():
    """fit(lr=5.0, callbacks=[s]) with the model's own s continued s and set
    its rates from the first fit's lr0, the 5.0 ignored; now lr and optimizer
    end the count as they do for a schedule left out, and s starts anew."""
    net = fastbp.MLP([3, 2], seed=0)
    s = schedules.ExponentialDecay(0.5)
    net.fit(X, Y, epochs=2, lr=0.1, verbose=0, callbacks=[s])
    assert net.fit(X, Y, epochs=2, lr=5.0, verbose=0, callbacks=[s])["lr"] == [5.0, 2.5]
    assert net.schedule is s
    assert net.fit(X, Y, epochs=2, verbose=0, callbacks=[s])["lr"] == [1.25, 0.625]  # continued
    adam = net.fit(X, Y, epochs=2, optimizer=fastbp.Adam(lr=0.004), verbose=0, callbacks=[s])
    assert adam["lr"] == [0.004, 0.002]
    # The model's own optimizer given again continues, as none given does (a
    # loop of fit(optimizer=opt, callbacks=[s]) restarted s every call).
    other, opt, step = fastbp.MLP([3, 2], seed=0), fastbp.Adam(lr=0.01), schedules.StepDecay(2, 0.1)
    assert other.fit(X, Y, epochs=1, optimizer=opt, verbose=0, callbacks=[step])["lr"] == [0.01]
    again = other.fit(X, Y, epochs=2, optimizer=opt, verbose=0, callbacks=[step])["lr"]
    assert again == pytest.approx([0.01, 0.001])  # epochs 2 and 3 of the schedule, not 1 and 2


def test_a_fit_refused_by_a_callback_leaves_the_schedule_as_it_was():
    """The schedule starts (lr0, count, model) in its on_train_begin; another
    callback's on_train_begin then raised, and the schedule kept the refused
    call's lr0: the next fit(lr=1.0) trained at [0.1, 0.05, 0.025]."""
    class Refuses:
        def on_train_begin(self, net):
            raise RuntimeError("refused")
    s = schedules.StepDecay(1, 0.5)
    net = fastbp.MLP([3, 2], seed=0)
    before = dict(vars(s))
    with pytest.raises(RuntimeError, match="refused"):
        net.fit(X, Y, epochs=2, lr=0.1, verbose=0, callbacks=[s, Refuses()])
    assert vars(s) == before and net.schedule is None and len(net.history) == 0
    assert net.fit(X, Y, epochs=3, lr=1.0, verbose=0, callbacks=[s])["lr"] == [1.0, 0.5, 0.25]
    # a continued schedule, restarted by an explicit lr in the refused call: its count stands
    with pytest.raises(RuntimeError, match="refused"):
        net.fit(X, Y, epochs=2, lr=0.1, verbose=0, callbacks=[s, Refuses()])
    assert net.fit(X, Y, epochs=1, verbose=0)["lr"] == [0.125]


@pytest.mark.parametrize("fields,message", [
    ('"step_size": 0, "gamma": 0.5, "lr0": null', "step_size must be an integer >= 1; got 0"),
    ('"gamma": 0.5', "it lacks step_size"),
    ('"step_size": 2, "gamma": 0.5, "lr0": -1', "lr0 must be a finite number >= 0; got -1"),
    ('"step_size": 2, "gamma": 0.5, "lr0": 0.1, "_epochs": -5', "_epochs must be an integer >= 0"),
    ('"step_size": 2, "gamma": 0.5, "lr0": 0.1, "_epochz": 5', "unknown field '_epochz'"),
    ('"step_size": 2, "gamma": 0.5, "lr0": 0.1, "_best": 1.0', "unknown field '_best'"),
])
def test_a_saved_schedule_is_checked_as_its_constructor_checks(fields, message, tmp_path):
    """from_json set the saved fields as they were: step_size 0 loaded, and
    the next fit raised ZeroDivisionError; a count of -5 trained at 32 lr0.
    A model file holding such a schedule is refused as damaged."""
    text = '{"name": "StepDecay", "fields": {%s}}' % fields
    with pytest.raises(ValueError, match="a saved StepDecay schedule is not valid: " + message):
        schedules.from_json(text)
    net = fastbp.MLP([3, 2], seed=0)
    net.fit(X, Y, epochs=2, lr=0.1, verbose=0, callbacks=[schedules.StepDecay(2, 0.5)])
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = dict(f)
    arrays["schedule"] = np.array(text)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(fastbp.ModelFileError, match="not a valid fastbp model file: a saved"):
        fastbp.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("make", [
    schedules.Constant, lambda: schedules.StepDecay(2, 0.5), lambda: schedules.ExponentialDecay(0.9),
    lambda: schedules.CosineAnnealing(5, 0.01), lambda: schedules.InverseScaling(0.3),
    lambda: schedules.ReduceOnPlateau("loss", patience=0, factor=0.5, mode="max"),
])
def test_a_started_schedule_round_trips_through_json(make):
    net = fastbp.MLP([3, 2], seed=0)
    sched = make()
    net.fit(X, Y, epochs=3, lr=0.1, verbose=0, callbacks=[sched])
    back = schedules.from_json(sched.to_json())
    assert type(back) is type(sched)
    assert vars(back) == {k: v for k, v in vars(sched).items() if k != "_net"}


def _two_fits_with_a_hand_set_lr(schedule, lr=0.1, then=0.01, epochs=(2, 2), optimizer="sgd"):
    net = fastbp.MLP([3, 2], seed=0)
    net.fit(X, Y, epochs=epochs[0], batch_size=10, lr=lr, optimizer=optimizer, verbose=0,
            callbacks=[schedule])
    net.optimizer.lr = then
    net.fit(X, Y, epochs=epochs[1], batch_size=10, verbose=0)
    return net


_HAND_SET = [
    # torch 2.13 for the same calls (param_groups[0]["lr"] = 0.01 after two
    # epochs): StepLR(10, 0.5) [0.1, 0.1, 0.01, 0.01]; ExponentialLR(0.9)
    # [0.1, 0.09, 0.01, 0.009]; ReduceLROnPlateau [0.1, 0.1, 0.01, 0.01].
    (lambda: schedules.StepDecay(10, 0.5), [0.1, 0.1, 0.01, 0.01]),
    (lambda: schedules.StepDecay(3, 0.5), [0.1, 0.1, 0.01, 0.005]),
    (lambda: schedules.ExponentialDecay(0.9), [0.1, 0.09, 0.01, 0.009]),
    (lambda: schedules.ReduceOnPlateau(monitor="loss", patience=5), [0.1, 0.1, 0.01, 0.01]),
    (lambda: schedules.Constant(), [0.1, 0.1, 0.01, 0.01]),
    # torch's chainable cosine: lr_{t+1} = eta_min + (lr_t - eta_min) c(t+1) / c(t),
    # c(t) = 1 + cos(pi t / T)
    (lambda: schedules.CosineAnnealing(6, eta_min=0.001),
     [0.001 + 0.099 * (1 + math.cos(math.pi * e / 6)) / 2 for e in range(2)]
     + [0.01, 0.001 + 0.009 * (1 + math.cos(math.pi * 3 / 6)) / (1 + math.cos(math.pi * 2 / 6))]),
]


@pytest.mark.parametrize("make,expected", _HAND_SET)
def test_a_continued_schedule_goes_on_from_an_lr_set_by_hand(make, expected):
    """net.optimizer.lr = 0.01 between fits was overwritten by the model's
    schedule (the 0.01 never trained); PyTorch's schedulers go on from it."""
    net = _two_fits_with_a_hand_set_lr(make())
    assert net.history["lr"] == pytest.approx(expected, rel=1e-12)


class _SetLR:
    """Sets the optimizer's lr at the end of one epoch, as a user's callback may."""

    def __init__(self, epoch, lr):
        self.epoch, self.value = epoch, lr

    def on_train_begin(self, net):
        self.net = net

    def on_epoch_end(self, epoch, logs):
        if epoch == self.epoch:
            self.net.optimizer.lr = self.value


@pytest.mark.parametrize("make,expected", _HAND_SET)
def test_a_schedule_goes_on_from_an_lr_a_callback_sets_during_the_fit(make, expected, tmp_path):
    """Review GA: a callback's net.optimizer.lr = 0.01 lasted one epoch, then
    the schedule set its own formula's rate again (StepDecay(3, 0.5): 0.01,
    then 0.1), where the same lr set between two fits is followed; and a
    checkpoint taken after the callback resumed on other rates."""
    net = fastbp.MLP([3, 2], seed=0)
    net.fit(X, Y, epochs=4, batch_size=10, lr=0.1, optimizer="sgd", verbose=0,
            callbacks=[make(), _SetLR(1, 0.01),
                       fastbp.ModelCheckpoint(tmp_path / "ck-{epoch}.npz")])
    assert net.history["lr"] == pytest.approx(expected, rel=1e-12)
    back = fastbp.load(tmp_path / "ck-3.npz")
    back.fit(X, Y, epochs=1, batch_size=10, verbose=0)
    np.testing.assert_array_equal(back.params, net.params)


def test_a_schedule_that_followed_a_hand_set_lr_saves_and_continues(tmp_path):
    net = _two_fits_with_a_hand_set_lr(schedules.ExponentialDecay(0.5), lr=0.4, then=0.02)
    net.save(tmp_path / "m.npz")
    back = fastbp.load(tmp_path / "m.npz")
    for model in (net, back):
        assert model.fit(X, Y, epochs=2, batch_size=10, verbose=0)["lr"] == pytest.approx(
            [0.02 * 0.5 ** 2, 0.02 * 0.5 ** 3], rel=1e-12)


@pytest.mark.parametrize("then", [0.001, 0.0])
def test_a_cosine_set_below_its_eta_min_rises_from_there_as_torchs(then, tmp_path):
    """Review EB: an lr set below eta_min (0 included) gave a negative lr0 the
    schedule refused: it warned and trained at its own rates. PyTorch's
    chainable cosine, lr_{t+1} = eta_min + (lr_t - eta_min) c(t+1) / c(t),
    goes on from the set rate up toward eta_min."""
    T, eta = 6, 0.01
    c = lambda t: 1 + math.cos(math.pi * t / T)   # noqa: E731
    expected = [eta + (0.1 - eta) * c(e) / 2 for e in range(2)] + [then]
    for e in (3, 4):
        expected.append(eta + (expected[-1] - eta) * c(e) / c(e - 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = _two_fits_with_a_hand_set_lr(schedules.CosineAnnealing(T, eta_min=eta),
                                           then=then, epochs=(2, 1))
        net.save(tmp_path / "m.npz")
        back = fastbp.load(tmp_path / "m.npz")
        for model in (net, back):
            model.fit(X, Y, epochs=2, batch_size=10, verbose=0)
            assert model.history["lr"] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert all(lr >= 0 for lr in expected) and expected[-1] > then


def test_a_cosine_set_to_0_where_rounding_would_go_below_0():
    """Review EG: CosineAnnealing(10, eta_min=1e-3) set to 0 after 8 epochs
    worked back to an lr0 whose rate at that epoch rounded to -2.2e-19, which
    the optimizer refused (ValueError at the next fit). The rate is the set
    0, and the later ones torch's chainable cosine's."""
    T, eta = 10, 1e-3
    c = lambda t: 1 + math.cos(math.pi * t / T)   # noqa: E731
    net = fastbp.MLP([3, 2], seed=0)
    net.fit(X, Y, epochs=8, batch_size=10, lr=0.1, verbose=0,
            callbacks=[schedules.CosineAnnealing(T, eta_min=eta)])
    net.optimizer.lr = 0.0
    net.fit(X, Y, epochs=2, batch_size=10, verbose=0)
    expected = [0.0, eta + (0.0 - eta) * c(9) / c(8)]
    assert net.history["lr"][8:] == pytest.approx(expected, rel=1e-12, abs=1e-18)
    assert net.history["lr"][8] == 0.0


def test_a_saved_cosine_whose_lr0_gives_a_negative_rate_is_refused():
    sched = schedules.CosineAnnealing(6, eta_min=0.01)
    sched.lr0, sched._epochs = -1.0, 2
    with pytest.raises(ValueError, match="lr0 -1.0 gives a negative lr at its epoch"):
        schedules.from_json(sched.to_json())
    sched.lr0 = -0.001     # 0.01 (1 - c) - 0.001 c >= 0 at epoch 2: a cosine that followed 0.001
    assert schedules.from_json(sched.to_json()).lr0 == -0.001
    with pytest.raises(ValueError, match="lr0"):
        sched2 = schedules.StepDecay(3)
        sched2.lr0, sched2._epochs = -0.001, 2
        schedules.from_json(sched2.to_json())


def test_an_lr_set_by_hand_past_the_cosines_end_trains_one_epoch_and_is_named():
    # Past T_max the rate is eta_min whatever lr0 is: no rate to go on from.
    # The set rate trains the next epoch, as one a callback sets during a fit
    # (review GE: replaced at once between fits, kept an epoch within one, a
    # checkpoint taken after the callback resumed on other rates).
    with pytest.warns(UserWarning, match=r"lr was set to 0.05, which the model's schedule"
                                         r" CosineAnnealing.* cannot go on from at its epoch 3;"
                                         r" after this epoch it sets 0.001") as caught:
        net = _two_fits_with_a_hand_set_lr(schedules.CosineAnnealing(2, eta_min=0.001),
                                           then=0.05, epochs=(3, 2))
    assert len(caught) == 1
    assert net.history["lr"][3:] == [0.05, 0.001]


@pytest.mark.parametrize("make,at,value", [
    (lambda: schedules.CosineAnnealing(4, eta_min=0.001), 3, 0.05),   # at T_max: not followed
    (lambda: schedules.CosineAnnealing(6, eta_min=0.001), 2, 0.003),  # rederived, rounded
    (lambda: schedules.InverseScaling(), 3, 0.003),
])
def test_a_checkpoint_after_a_callback_set_the_lr_resumes_on_the_same_rates(make, at, value,
                                                                             tmp_path):
    """Review GE: resumed, the schedule rederived the set rate from its lr0
    (0.0030000000000000005 for 0.003) or, past the cosine's end, replaced it
    at once, where the one long fit trained an epoch at the rate as set."""
    net = fastbp.MLP([3, 2], seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.fit(X, Y, epochs=7, batch_size=10, lr=0.1, optimizer="sgd", verbose=0,
                callbacks=[make(), _SetLR(at, value),
                           fastbp.ModelCheckpoint(tmp_path / "ck-{epoch}.npz")])
        back = fastbp.load(tmp_path / f"ck-{at + 1}.npz")
        back.fit(X, Y, epochs=7 - at - 1, batch_size=10, verbose=0)
    assert back.history["lr"] == net.history["lr"] and net.history["lr"][at + 1] == value
    np.testing.assert_array_equal(back.params, net.params)


def test_setting_another_optimizer_ends_the_models_schedule(tmp_path):
    """net.optimizer = Adam(lr=1e-3) kept the schedule, whose next fit set
    Adam's lr to the old SGD's 0.5; fit(optimizer=...) ends it."""
    net = fastbp.MLP([3, 2], seed=0)
    net.fit(X, Y, epochs=2, optimizer=fastbp.SGD(lr=0.5), verbose=0,
            callbacks=[schedules.StepDecay(10, 0.5)])
    net.optimizer = net.optimizer   # the same one: the schedule stays
    assert net.schedule is not None
    net.optimizer = fastbp.Adam(lr=1e-3)
    assert net.schedule is None
    assert net.fit(X, Y, epochs=2, verbose=0)["lr"] == [1e-3, 1e-3]
    # None too: the next fit's new SGD at its own 0.01
    net.fit(X, Y, epochs=1, verbose=0, callbacks=[schedules.StepDecay(10, 0.5)])
    net.optimizer = None
    assert net.schedule is None and net.fit(X, Y, epochs=1, verbose=0)["lr"] == [0.01]
    # A schedule set on a model before its first optimizer is kept, and a
    # loaded model keeps its own.
    fresh = fastbp.MLP([3, 2], seed=0)
    fresh.schedule = schedules.StepDecay(1, 0.5)
    fresh.optimizer = fastbp.SGD(lr=0.2)
    assert fresh.fit(X, Y, epochs=2, verbose=0)["lr"] == pytest.approx([0.2, 0.1])
    fresh.save(tmp_path / "f.npz")
    back = fastbp.load(tmp_path / "f.npz")
    assert back.schedule is not None
    assert back.fit(X, Y, epochs=1, verbose=0)["lr"] == pytest.approx([0.05])


def test_an_lbfgs_model_holds_no_schedule(tmp_path):
    """Review GF: net.schedule = StepDecay(...) on an L-BFGS model was taken
    (fit(callbacks=[...]) refuses it); its fits skipped it, kept it and saved
    it; net.optimizer = LBFGS() kept a schedule set by hand."""
    net = fastbp.MLP([3, 2], seed=0)
    net.fit(X, Y, epochs=1, optimizer="lbfgs", verbose=0)
    with pytest.raises(ValueError, match="L-BFGS takes no learning rate, so no schedule"):
        net.schedule = schedules.StepDecay(1, 0.5)
    assert net.schedule is None
    other = fastbp.MLP([3, 2], seed=0)
    other.schedule = schedules.StepDecay(1, 0.5)   # set by hand, not run
    other.optimizer = fastbp.LBFGS()
    assert other.schedule is None
    # one held all the same (as an older fastbp saved it): refused by fit,
    # dropped with a warning at load (it never ran)
    net._schedule = schedules.StepDecay(1, 0.5)
    params = net.params.copy()
    with pytest.raises(ValueError, match=r"the model holds StepDecay.*set net.schedule = None"):
        net.fit(X, Y, epochs=1, verbose=0)
    np.testing.assert_array_equal(net.params, params)
    net.save(tmp_path / "m.npz")
    with pytest.warns(UserWarning, match="on an L-BFGS model, which takes no learning rate: it"
                                         " never ran, and is dropped"):
        back = fastbp.load(tmp_path / "m.npz")
    assert back.schedule is None and isinstance(back.optimizer, fastbp.LBFGS)
    back.fit(X, Y, epochs=1, verbose=0)


@pytest.mark.parametrize("again", ["fit", "set", "set and fit", "set, save and load"])
@pytest.mark.parametrize("end", ["setter", "fit", "none"])
def test_a_schedule_ended_and_given_again_starts_anew(end, again, tmp_path):
    """A schedule this model ran, ended by net.optimizer = ..., by a fit given
    another optimizer, or by net.schedule = None, kept its count when given
    to a later fit: a finished cosine took Adam's 1e-3 for an lr set by hand
    and trained at 0 after it (with a warning whose advice did not apply)."""
    net = fastbp.MLP([3, 2], dtype="float64", seed=0)
    cos = schedules.CosineAnnealing(T_max=10)
    net.fit(X, Y, epochs=10, batch_size=10, optimizer="sgd", lr=0.1, verbose=0, callbacks=[cos])
    if end == "setter":
        net.optimizer = fastbp.Adam(lr=1e-3)
    elif end == "fit":
        net.fit(X, Y, epochs=1, batch_size=10, optimizer=fastbp.Adam(lr=1e-3), verbose=0)
    else:
        net.schedule = None
        net.optimizer.lr = 1e-3
    assert net.schedule is None
    if again != "fit":   # (set by hand, a finished cosine trained the new rate at 0 still)
        net.schedule = cos
    if again == "set, save and load":
        net.save(tmp_path / "m.npz")
        net = fastbp.load(tmp_path / "m.npz")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = net.fit(X, Y, epochs=5, batch_size=10, verbose=0,
                      callbacks=[net.schedule] if again == "set, save and load" else
                      [] if again == "set" else [cos])["lr"]
    expected = [1e-3 * (1 + math.cos(math.pi * e / 10)) / 2 for e in range(5)]
    assert got == pytest.approx(expected, rel=1e-12)
    assert net.schedule._epochs == 5 and (again == "set, save and load" or net.schedule is cos)


def test_an_inverse_scaling_whose_power_overflows_goes_on():
    """(seen + 1) ** power_t overflowed: a bare OverflowError at every fit,
    where the rate, the power's inverse, is a float (0 here, as it rounds)."""
    s = schedules.InverseScaling(power_t=100.0)
    s._samples = 2000
    assert s.lr(1, 0.1) == 0.0
    assert s.lr(1, 1e308) == pytest.approx(1e308 * math.exp(-100 * math.log(2001)), rel=1e-12)
    net = fastbp.MLP([3, 2], dtype="float64", seed=0)
    lrs = net.fit(X, Y, epochs=2, batch_size=10, lr=1e300, optimizer="sgd", verbose=0,
                  on_divergence="stop", callbacks=[schedules.InverseScaling(power_t=100.0)])["lr"]
    assert lrs == [1e300, pytest.approx(1e300 / 21.0 ** 100, rel=1e-12)]


def test_a_cosine_of_an_lr_near_the_largest_float_is_not_refused():
    """(lr0 - eta_min) * (1 + cos) overflowed before the halving: an lr of
    1e308 was refused as "inf at its epoch 0" (PyTorch's CosineAnnealingLR
    gives 1e308, 9.76e307, ...)."""
    s = schedules.CosineAnnealing(T_max=10)
    got = [s.lr(e, 1e308) for e in range(11)]
    assert got == pytest.approx([1e308 / 2 * (1 + math.cos(math.pi * e / 10)) for e in range(11)],
                                rel=1e-15)
    assert s.lr(3, 0.1) == 0.1 * (1 + math.cos(math.pi * 3 / 10)) / 2   # (the usual rounding)


@pytest.mark.parametrize("drop", ["_best", "_bad", "_current"])
def test_a_saved_plateau_state_missing_a_field_is_refused(drop, tmp_path):
    """A model file whose ReduceOnPlateau state lacked _current or _bad
    loaded, and its next fit failed with AttributeError."""
    net = fastbp.MLP([3, 2], seed=0)
    net.fit(X, Y, epochs=3, lr=0.1, verbose=0,
            callbacks=[schedules.ReduceOnPlateau(monitor="loss", patience=0)])
    data = __import__("json").loads(net.schedule.to_json())
    del data["fields"][drop]
    text = __import__("json").dumps(data)
    with pytest.raises(ValueError, match=f"a saved ReduceOnPlateau schedule is not valid: it"
                                         f" holds .* without {drop}$"):
        schedules.from_json(text)
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = dict(f)
    arrays["schedule"] = np.array(text)
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(fastbp.ModelFileError, match=f"without {drop}"):
        fastbp.load(tmp_path / "bad.npz")


def test_a_growing_rate_whose_power_alone_overflows_goes_on():
    """lr0 * gamma ** epoch with gamma > 1: Python's power raised
    OverflowError past 2.0 ** 1023 though the rate (of a tiny lr0) was small."""
    s = schedules.ExponentialDecay(2.0)
    assert s.lr(1039, 5e-322) == pytest.approx(101 * 2.0 ** -35, rel=1e-12)
    assert schedules.StepDecay(2, 2.0).lr(2 * 1039 + 1, 5e-322) == pytest.approx(
        101 * 2.0 ** -35, rel=1e-12)
    assert s.lr(1039, 0.0) == 0.0 and s.lr(1039, 1.0) == math.inf


def test_a_rate_past_the_largest_float_stops_the_fit_by_name():
    """The fit ended in a bare OverflowError, and every later fit again."""
    net = fastbp.MLP([3, 2, 1], output="identity", dtype="float64", seed=0)
    Xz, yz = np.zeros((8, 3)), np.zeros(8)   # (no gradient: only the rate grows)
    sched = schedules.ExponentialDecay(2.0 ** 100)
    with pytest.raises(ValueError, match=r"gives an lr of inf at its epoch 21 \(past the largest"
                                         r" float\); set net.schedule = None"):
        net.fit(Xz, yz, epochs=30, batch_size=8, optimizer="sgd", lr=1e-300, verbose=0,
                callbacks=[sched])
    assert len(net.history["lr"]) == 21
    assert net.optimizer.lr == pytest.approx(1e-300 * 2.0 ** 1000 * 2.0 ** 1000, rel=1e-12)
    before = net.params.copy()
    with pytest.raises(ValueError, match="gives an lr of inf at its epoch 21"):
        net.fit(Xz, yz, epochs=1, batch_size=8, verbose=0)
    assert len(net.history["lr"]) == 21 and np.array_equal(net.params, before)
    net.schedule = None
    net.fit(Xz, yz, epochs=1, batch_size=8, verbose=0)
    assert len(net.history["lr"]) == 22


@pytest.mark.parametrize("schedule, name, value", [
    (schedules.StepDecay(2, gamma=0.5), "gamma", 0), (schedules.StepDecay(2), "step_size", 1.5),
    (schedules.ExponentialDecay(0.9), "gamma", True),
    (schedules.CosineAnnealing(5), "eta_min", -0.01), (schedules.CosineAnnealing(5), "T_max", 2.5),
    (schedules.InverseScaling(), "power_t", -1.0),
    (schedules.ReduceOnPlateau(), "factor", 2.0), (schedules.ReduceOnPlateau(), "patience", -1),
    (schedules.ReduceOnPlateau(), "mode", "MAX"), (schedules.ReduceOnPlateau(), "monitor", "loss")])
def test_a_schedules_parameters_are_fixed_when_it_is_made(schedule, name, value, tmp_path):
    """Review HBL: ``s.gamma = 0`` (and the like) was taken unchecked, trained
    (lrs 0.1, 0.1, 0.0), and saved in a file that load refused whole ("a
    saved StepDecay schedule is not valid"); "MAX" ran as min mode. Assigning
    a parameter is refused, as the optimizers' hyper-parameters are; the
    schedule still saves and loads to the same rates."""
    before = getattr(schedule, name)
    with pytest.raises(AttributeError, match=rf"{type(schedule).__name__}\.{name} is fixed when"
                                             " the schedule is made"):
        setattr(schedule, name, value)
    assert getattr(schedule, name) == before
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    net = fastbp.MLP([3, 4, 2], seed=0)
    net.fit(X, y, epochs=3, lr=0.1, verbose=0, callbacks=[schedule],
            validation_split=0.25 if isinstance(schedule, schedules.ReduceOnPlateau) else 0.0)
    net.save(tmp_path / "m.npz")
    again = fastbp.load(tmp_path / "m.npz")
    assert getattr(again.schedule, name) == before
    assert again.schedule.to_json() == net.schedule.to_json()


def test_a_cosine_of_a_t_max_past_float64_holds_the_rate():
    """Review HBL: CosineAnnealing(T_max=2**1024) (or 10**400) was accepted,
    then every fit failed with OverflowError (pi e / T_max took T_max as a
    float). Its rates are lr0's, as a cosine that has not begun to fall."""
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    for T_max in (2**1024, 10**400):
        net = fastbp.MLP([3, 4, 2], seed=0)
        history = net.fit(X, y, epochs=3, lr=0.1, verbose=0,
                          callbacks=[schedules.CosineAnnealing(T_max)])
        assert history["lr"] == [0.1, 0.1, 0.1]


def test_a_schedule_set_by_hand_runs_in_a_fit_given_lr_or_an_optimizer(tmp_path):
    """fit(lr=...) or fit(optimizer=...) ends a schedule continued from an
    earlier fit; one set as net.schedule and not yet run here (new, set
    again after it ended, or another model's) was dropped by them too,
    silently: the rates stayed flat (review HCY). It runs from that fit's
    learning rate now; a continued one still ends."""
    from fastbp.schedules import StepDecay
    X, y = fastbp.datasets.load_digits()
    X, y = X[:120] / 16, y[:120]

    def rates(net, **kw):
        return net.fit(X, y, epochs=3, verbose=0, **kw)["lr"]

    halving = lambda lr: pytest.approx([lr, lr / 2, lr / 4], rel=1e-15)
    for kw, lr in ((dict(lr=0.2), 0.2), (dict(optimizer=fastbp.SGD(lr=0.2)), 0.2),
                   (dict(optimizer="adam"), 1e-3)):
        net = fastbp.MLP([64, 8, 10], seed=0)
        net.schedule = StepDecay(1, 0.5)
        assert rates(net, **kw) == halving(lr), kw
        assert net.schedule is not None
    # ended, then set again: starts anew from the fit's lr
    net = fastbp.MLP([64, 8, 10], seed=0)
    s = StepDecay(1, 0.5)
    net.fit(X, y, epochs=2, lr=0.1, verbose=0, callbacks=[s])
    net.schedule = None
    net.schedule = s
    assert rates(net, lr=0.05) == halving(0.05)
    # another model's, set by hand: a copy starts anew here
    other = fastbp.MLP([64, 8, 10], seed=1)
    other.schedule = net.schedule
    assert rates(other, lr=0.2) == halving(0.2)
    # continued from an earlier fit, or from a file: an explicit lr ends it
    assert rates(net, lr=0.3) == [0.3] * 3 and net.schedule is None
    net.fit(X, y, epochs=1, verbose=0, callbacks=[StepDecay(1, 0.5)])
    net.save(tmp_path / "m.npz")
    loaded = fastbp.load(tmp_path / "m.npz")
    assert loaded.schedule is not None
    assert rates(loaded, lr=0.3) == [0.3] * 3 and loaded.schedule is None
    # an older file's started schedule (lr0 and no count), as from_json
    # rebuilds it, ends too; so does a rebuilt one with its count (review HCZ)
    for fields in ('"lr0": 0.1', '"lr0": 0.1, "_epochs": 2'):
        old = fastbp.MLP([64, 8, 10], seed=0)
        old.schedule = schedules.from_json(
            '{"name": "StepDecay", "fields": {"step_size": 1, "gamma": 0.5, %s}}' % fields)
        assert rates(old, lr=0.3) == [0.3] * 3 and old.schedule is None
    # fit(optimizer="lbfgs") ends any schedule, as net.optimizer = LBFGS() does
    net = fastbp.MLP([64, 8, 10], seed=0)
    net.schedule = StepDecay(1, 0.5)
    net.fit(X, y, epochs=2, optimizer="lbfgs", verbose=0)
    assert net.schedule is None


def test_a_started_schedule_without_a_count_counts_the_models_history():
    """A schedule as an older fastbp's file holds it (lr0 set, no epoch
    count: it counted the model's whole history) goes on from the model's
    epochs: StepDecay(2, 0.5) from lr0 0.1 after 3 epochs gives epochs 3-5
    0.1 * 0.5 ** (epoch // 2) = [0.05, 0.025, 0.025] (review HFO: a
    mutation counting from 0, [0.05, 0.05, 0.025], went uncaught; the one
    test of this path gave an lr, which ends the schedule)."""
    net = fastbp.MLP([3, 2], seed=0)
    net.fit(X, Y, epochs=3, batch_size=10, verbose=0, optimizer=fastbp.SGD(lr=0.1))
    net.optimizer.lr = 0.1 * 0.5 ** (3 // 2)   # where that schedule left it at epoch 3
    net.schedule = schedules.from_json('{"name": "StepDecay", "fields": {"step_size": 2,'
                                       ' "gamma": 0.5, "lr0": 0.1}}')
    got = net.fit(X, Y, epochs=3, batch_size=10, verbose=0)["lr"]
    assert got == pytest.approx([0.1 * 0.5 ** (e // 2) for e in (3, 4, 5)], rel=1e-12)
    assert got == pytest.approx([0.05, 0.025, 0.025], rel=1e-12)
