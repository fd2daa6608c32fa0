"""fit with an optimizer: the in-kernel path against optimizer.step on
backprop gradients, warm starts, the lr argument, and bad arguments."""
import copy

import numpy as np
import pytest
from numba.core.runtime import _nrt_python, rtsys

import fastbp


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)), rng.integers(0, 3, n)


@pytest.mark.parametrize("make", [lambda: fastbp.Adam(lr=0.01),
                                  lambda: fastbp.AdamW(lr=0.01, weight_decay=0.1),
                                  lambda: fastbp.SGD(lr=0.1, momentum=0.9, nesterov=True),
                                  lambda: fastbp.SGD(lr=0.1, weight_decay=0.01),
                                  lambda: fastbp.RMSprop(lr=0.01, momentum=0.5)])
def test_fit_equals_steps_on_backprop_gradients(make):
    X, y = data()
    fitted = fastbp.MLP([5, 8, 3], activation="tanh", dtype="float64", seed=1)
    manual = fastbp.MLP([5, 8, 3], activation="tanh", dtype="float64", seed=1)
    history = fitted.fit(X, y, epochs=2, batch_size=16, shuffle=False, verbose=0, optimizer=make())
    opt, losses = make(), []
    for _ in range(2):
        total = 0.0
        for s in range(0, 40, 16):
            total += manual.loss(X[s:s + 16], y[s:s + 16]) * len(X[s:s + 16])
            opt.step(manual.params, manual.gradient(X[s:s + 16], y[s:s + 16]))
        losses.append(total / 40)
    np.testing.assert_allclose(fitted.params, manual.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-12)
    assert fitted.optimizer.t == opt.t == 6


@pytest.mark.parametrize("name", ["sgd", "adam", "rmsprop"])
def test_two_fits_equal_one_longer_fit(name):
    X, y = data(50)
    a = fastbp.MLP([5, 8, 3], dtype="float32", seed=2)
    a.fit(X, y, epochs=3, batch_size=8, lr=0.01, seed=7, verbose=0, optimizer=name)
    a.fit(X, y, epochs=3, batch_size=8, verbose=0)  # continues weights, optimizer, RNG
    b = fastbp.MLP([5, 8, 3], dtype="float32", seed=2)
    b.fit(X, y, epochs=6, batch_size=8, lr=0.01, seed=7, verbose=0, optimizer=name)
    assert np.array_equal(a.params, b.params)
    assert a.optimizer.t == b.optimizer.t == 42


def test_lr_argument_and_defaults():
    X, y = data()
    net = fastbp.MLP([5, 3], seed=0)
    net.fit(X, y, verbose=0)
    assert isinstance(net.optimizer, fastbp.SGD) and net.optimizer.lr == 0.01
    net.fit(X, y, verbose=0, optimizer="adam")
    assert isinstance(net.optimizer, fastbp.Adam) and net.optimizer.lr == 0.001
    net.fit(X, y, verbose=0, lr=0.5)
    assert isinstance(net.optimizer, fastbp.Adam) and net.optimizer.lr == 0.5
    opt = fastbp.RMSprop(lr=0.02)
    net.fit(X, y, verbose=0, optimizer=opt)
    assert net.optimizer is opt and opt.lr == 0.02


@pytest.mark.parametrize("optimizer,exc,message", [
    ("adagrad", ValueError, "optimizer must be one of 'sgd', 'adam', 'adamw', 'rmsprop', 'lbfgs'; got 'adagrad'"),
    (3, TypeError, "optimizer must be None, a name"),
    (fastbp.Adam, TypeError, "optimizer must be None, a name"),
])
def test_bad_optimizer_changes_nothing(optimizer, exc, message):
    X, y = data()
    net = fastbp.MLP([5, 3], seed=0)
    params, rng = net.params.copy(), net._rng.copy()
    with pytest.raises(exc, match=message):
        net.fit(X, y, verbose=0, optimizer=optimizer)
    assert np.array_equal(net.params, params) and np.array_equal(net._rng, rng)
    assert net.optimizer is None


def test_optimizer_of_another_model_is_rejected():
    X, y = data()
    opt = fastbp.Adam()
    fastbp.MLP([5, 4, 3], seed=0).fit(X, y, verbose=0, optimizer=opt)
    net = fastbp.MLP([5, 3], seed=0)
    params = net.params.copy()
    with pytest.raises(ValueError, match="state is for 39 float32 parameters; got 18"):
        net.fit(X, y, verbose=0, optimizer=opt)
    assert np.array_equal(net.params, params) and net.optimizer is None and opt.t == 2


def test_an_optimizer_another_model_holds_is_refused_and_a_copy_is_not():
    # Same shapes: the second model silently trained on the first's Adam
    # moments and step count, and then the first continued the second's.
    import copy
    X, y = data()
    opt = fastbp.Adam(lr=0.01)
    a = fastbp.MLP([5, 4, 3], seed=0)
    a.fit(X, y, epochs=2, verbose=0, optimizer=opt)
    b = fastbp.MLP([5, 4, 3], seed=1)
    params, t = b.params.copy(), opt.t
    with pytest.raises(ValueError, match=r"this optimizer \(Adam\(lr=0.01, t=4\)\) holds the state"
                                         " of another model's training"):
        b.fit(X, y, epochs=2, verbose=0, optimizer=opt)
    assert np.array_equal(b.params, params) and b.optimizer is None and opt.t == t
    # a continues as if b had never tried: two fits of 2 epochs are one of 4.
    a.fit(X, y, epochs=2, verbose=0)
    ref = fastbp.MLP([5, 4, 3], seed=0)
    ref.fit(X, y, epochs=4, verbose=0, optimizer=fastbp.Adam(lr=0.01))
    np.testing.assert_array_equal(a.params, ref.params)
    # A copy of the state is b's to start from, on purpose.
    b.fit(X, y, epochs=1, verbose=0, optimizer=copy.deepcopy(opt))
    assert b.optimizer.t == opt.t + 2 and a.optimizer is opt
    # Once a model lets its optimizer go, another may take it.
    a.fit(X, y, epochs=1, verbose=0, optimizer="sgd")
    b.fit(X, y, epochs=1, verbose=0, optimizer=opt)
    assert b.optimizer is opt


def test_adam_steps_allocate_nothing():
    X, y = data(1000)
    net = fastbp.MLP([5, 8, 3], dtype="float32", seed=0)
    for batch in (100, 10):
        net.fit(X, y, batch_size=batch, verbose=0, optimizer="adam")
    _nrt_python.memsys_enable_stats()
    try:
        counts = []
        for batch in (100, 10):
            before = rtsys.get_allocation_stats().alloc
            net.fit(X, y, batch_size=batch, verbose=0)
            counts.append(rtsys.get_allocation_stats().alloc - before)
    finally:
        _nrt_python.memsys_disable_stats()
    assert counts[0] == counts[1]


def test_adam_learns_the_digits():
    X, y = fastbp.datasets.load_digits()
    X_train, X_test, y_train, y_test = fastbp.datasets.train_test_split(X / 16, y, seed=0)
    net = fastbp.MLP([64, 32, 10], activation="relu", seed=0)
    net.fit(X_train, y_train, epochs=15, batch_size=32, lr=0.003, verbose=0, optimizer="adam")
    assert (net.predict(X_test) == y_test).mean() >= 0.95


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lbfgs_minimises_the_full_batch_loss(dtype, tmp_path):
    from scipy.optimize import minimize
    X, y = data(60)
    net = fastbp.MLP([5, 6, 3], activation="tanh", dtype=dtype, seed=5)
    start = net.params.astype(np.float64)
    h = net.fit(X, y, epochs=30, verbose=0, optimizer="lbfgs")
    assert 1 <= len(h) <= 30 and h["loss"][-1] < h["loss"][0]
    assert net.loss(X, y) == pytest.approx(h["loss"][-1], rel=1e-5)
    # The same SciPy run on the NumPy reference objective reaches the same loss.
    from npref import loss_and_grad, one_hot
    ref = minimize(lambda p: loss_and_grad(p, [5, 6, 3], ["tanh"], "cross_entropy", X, one_hot(y, 3)),
                   start, jac=True, method="L-BFGS-B", options=dict(maxiter=30, gtol=1e-7, ftol=1e-7))
    assert net.loss(X, y) == pytest.approx(ref.fun, rel=1e-3 if dtype == "float32" else 1e-6)
    net.save(tmp_path / "m.npz")
    assert isinstance(fastbp.load(tmp_path / "m.npz").optimizer, fastbp.LBFGS)


def test_lbfgs_callbacks_can_stop():
    X, y = data(60)

    class StopAtThree:
        def on_epoch_end(self, epoch, logs):
            return epoch == 2

    net = fastbp.MLP([5, 3], seed=0)
    h = net.fit(X, y, epochs=50, verbose=0, optimizer=fastbp.LBFGS(), callbacks=[StopAtThree()])
    assert len(h) == 3 and net.optimizer.t == 3


@pytest.mark.parametrize("optimizer", ["sgd", "lbfgs"])
def test_a_callbacks_own_stop_iteration_is_raised_by_every_optimizer(optimizer):
    """Review HBS: a callback whose on_epoch_end raised StopIteration (a
    next() on a spent iterator) failed a minibatch fit but ended an L-BFGS
    fit as if asked to stop: SciPy takes any StopIteration from its callback
    for "stop". Raised by both now, after the epoch it came in (its
    parameters kept, on_train_end run)."""
    X, y = data(60)
    ended = []

    class Buggy:
        def __init__(self):
            self.rates = iter([0.1])   # one rate too few

        def on_epoch_end(self, epoch, logs):
            next(self.rates)

        def on_train_end(self, net):
            ended.append(net.params.copy())

    net = fastbp.MLP([5, 4, 3], dtype="float64", seed=0)
    with pytest.raises(StopIteration):
        net.fit(X, y, epochs=5, verbose=0, optimizer=optimizer, callbacks=[Buggy()])
    assert len(net.history) == 2 and not net.history.interrupted
    assert len(ended) == 1 and np.array_equal(ended[0], net.params)
    again = fastbp.MLP([5, 4, 3], dtype="float64", seed=0)
    again.fit(X, y, epochs=2, verbose=0, optimizer=optimizer)
    assert np.array_equal(again.params, net.params)


def test_a_refused_lbfgs_fit_keeps_the_last_result():
    """Review HBW: a fit refused by a callback's on_train_begin (the model
    left as it was, as train.begin promises) set LBFGS.result to None."""
    X, y = data(60)
    net = fastbp.MLP([5, 4, 3], dtype="float64", seed=1)
    net.fit(X, y, epochs=3, verbose=0, optimizer="lbfgs")
    first = net.optimizer.result

    class Refuses:
        def on_train_begin(self, net):
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        net.fit(X, y, epochs=3, verbose=0, callbacks=[Refuses()])
    assert net.optimizer.result is first and first.nit == 3


def test_lbfgs_result_is_the_last_fits_own():
    """``LBFGS.result`` is SciPy's result of the fit just run: a later fit of
    0 epochs, or one interrupted by Ctrl-C, leaves None, not the earlier
    fit's (which read as if that fit had run its iterations)."""
    X, y = data(60)
    net = fastbp.MLP([5, 4, 3], dtype="float64", seed=1)
    net.fit(X, y, epochs=5, verbose=0, optimizer="lbfgs")
    first = net.optimizer.result
    assert first is not None and first.nit == net.optimizer.t == 5
    net.fit(X, y, epochs=0, verbose=0)
    assert net.optimizer.result is None

    class CtrlC:
        def on_epoch_end(self, epoch, logs):
            if epoch == 1:
                raise KeyboardInterrupt

    net.fit(X, y, epochs=3, verbose=0)
    assert net.optimizer.result.nit == 3
    history = net.fit(X, y, epochs=5, verbose=0, callbacks=[CtrlC()])
    assert history.interrupted and len(history) == 2 and net.optimizer.result is None


def test_an_optimizer_state_load_refuses_is_refused_when_given():
    """Review HCB: a hand-set NaN state, a negative mean of squares, or t > 0
    with no state was taken by fit(optimizer=...) and the setter (a first
    step's divergence blaming lr; Adam's step-t bias correction on zero
    moments), where load refuses such a file: refused as load words it, the
    model unchanged; the state a fit leaves is taken back."""
    X, y = data(60)
    net = fastbp.MLP([5, 4, 3], dtype="float64", seed=0)
    cases = []
    for what in ("NaN values", "negative mean of squared gradients", "state is empty"):
        opt = fastbp.Adam()
        if what == "state is empty":
            opt.t = 5
        else:
            opt.t = 1
            opt.state = np.zeros((2, net.n_params))
            opt.state[1 if what != "NaN values" else 0, 3] = -1.0 if what != "NaN values" else np.nan
        cases.append((what, opt))
    before = net.params.copy()
    for what, opt in cases:
        with pytest.raises(ValueError, match=f"this optimizer cannot take up training: .*{what}"):
            net.optimizer = opt
        with pytest.raises(ValueError, match=what):
            net.fit(X, y, epochs=1, verbose=0, optimizer=opt)
        assert net.optimizer is None and np.array_equal(net.params, before) and not len(net.history)
    net.fit(X, y, epochs=2, verbose=0, optimizer="adam")
    left = copy.deepcopy(net.optimizer)
    other = fastbp.MLP([5, 4, 3], dtype="float64", seed=0)
    other.params[:] = net.params
    other.optimizer = left   # (the state a fit left: taken)
    other.fit(X, y, epochs=1, verbose=0, shuffle=False)
    net.fit(X, y, epochs=1, verbose=0, shuffle=False)
    assert np.array_equal(other.params, net.params)
