"""fastbp.sklearn's batches split between threads: the barrier they meet at,
the same fit on one thread and on two, the split kernel against the unsplit
one, and which fits split (fastbp.threads.training)."""
import threading
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_digits  # noqa: E402

from fastbp import _atomics, threads  # noqa: E402
from fastbp import _sklearn_kernels as kernels  # noqa: E402
from fastbp._jit import jit  # noqa: E402
from fastbp.sklearn import MLPClassifier, MLPRegressor, _column_layout, _SplitEpoch  # noqa: E402


def _run_threads(targets, timeout=60):
    """Run each callable in a thread of its own; their results, in order.
    Fails (rather than hangs) if one has not finished within ``timeout``."""
    results, errors = [None] * len(targets), []

    def run(i):
        try:
            results[i] = targets[i]()
        except BaseException as exc:  # reported below, in this thread
            errors.append(exc)
    workers = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(targets))]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout)
    assert not any(w.is_alive() for w in workers), "a thread is still waiting at the barrier"
    if errors:
        raise errors[0]
    return results


@jit
def _phases(sync, counter, seen, me, parts, rounds):
    # Each round: add 1 to this thread's slot, wait, then record the sum of
    # all slots (every thread's write of this round must be visible).
    for r in range(rounds):
        counter[me] += 1
        if not _atomics.barrier(sync, parts, me):
            return False
        total = 0
        for p in range(parts):
            total += counter[p]
        seen[me, r] = total
        if not _atomics.barrier(sync, parts, me):  # nobody starts the next round before all have read
            return False
    return True


@pytest.mark.parametrize("parts", [2, 3])
def test_barrier_makes_every_threads_writes_visible(parts):
    rounds = 2000
    sync = np.zeros(_atomics.SYNC_SIZE, dtype=np.int64)
    counter = np.zeros(parts, dtype=np.int64)
    seen = np.zeros((parts, rounds), dtype=np.int64)
    done = _run_threads([lambda me=me: _phases(sync, counter, seen, me, parts, rounds)
                         for me in range(parts)])
    assert done == [True] * parts
    expected = parts * np.arange(1, rounds + 1)
    for me in range(parts):
        np.testing.assert_array_equal(seen[me], expected)
    # each thread's count of barriers reached, on a cache line of its own
    counts = sync[_atomics.COUNT:_atomics.COUNT * (parts + 1):_atomics.COUNT]
    np.testing.assert_array_equal(counts, 2 * rounds)
    assert not sync[_atomics.COUNT * (parts + 1):].any()


@jit
def _wait_once(sync, parts, me=0):
    return _atomics.barrier(sync, parts, me)


def test_stop_releases_a_thread_waiting_at_the_barrier():
    sync = np.zeros(_atomics.SYNC_SIZE, dtype=np.int64)

    def stopper():
        while sync[_atomics.COUNT] == 0:  # until the waiter (thread 0) has arrived
            time.sleep(0.001)
        _atomics.stop(sync)
        return "stopped"
    assert _run_threads([lambda: _wait_once(sync, 2), stopper]) == [False, "stopped"]
    assert _wait_once(sync, 2) is False  # and a later arrival does not wait either
    # (review HIA) every thread arrived, but one set the flag: False all the same
    sync = np.zeros(_atomics.SYNC_SIZE, dtype=np.int64)
    sync[_atomics.COUNT * 2] = 1   # thread 1 has reached its first barrier
    _atomics.stop(sync)
    assert _wait_once(sync, 2) is False
    assert _wait_once(np.zeros(_atomics.SYNC_SIZE, dtype=np.int64), 1) is True


@jit
def _laps(sync, me, parts, laps, log):
    # Thread me passes laps barriers, noting after each the counts it saw.
    for lap in range(laps):
        if not _atomics.barrier(sync, parts, me):
            return False
        for other in range(parts):
            log[me, lap, other] = _atomics.atomic_load(sync, _atomics.COUNT * (other + 1))
    return True


def test_no_thread_passes_a_barrier_before_all_have_reached_it():
    # After its k-th barrier a thread must see every count at k or more
    # (never a thread still at k - 1), and at most k + 1 (a fast thread can
    # be at its next barrier already, not beyond it: it waits there).
    parts, laps = 3, 3000
    sync = np.zeros(_atomics.SYNC_SIZE, dtype=np.int64)
    log = np.zeros((parts, laps, parts), dtype=np.int64)
    assert _run_threads([lambda me=me: _laps(sync, me, parts, laps, log)
                         for me in range(parts)]) == [True] * parts
    k = np.arange(1, laps + 1)[None, :, None]
    assert (log >= k).all() and (log <= k + 1).all()


def _digits():
    X, y = load_digits(return_X_y=True)
    return X / 16, y


def _fit(monkeypatch, n_threads, cls, X, y, sample_weight=None, **params):
    monkeypatch.setattr(threads, "training_threads", lambda rows: n_threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning at max_iter
        return cls(random_state=0, tol=0, max_iter=6, **params).fit(
            X, y, sample_weight=sample_weight)


CASES = [
    (MLPClassifier, {}),                                           # adam, batch 200
    (MLPClassifier, dict(solver="sgd", batch_size=129)),           # odd pieces, nesterov
    (MLPClassifier, dict(batch_size=133, alpha=0.0)),              # no L2 term
    (MLPRegressor, dict(hidden_layer_sizes=(17, 5))),              # two hidden layers, MSE
    (MLPRegressor, dict(loss="poisson")),
    # batches under COLUMN_ROWS rows, one hidden layer: its units split
    (MLPClassifier, dict(solver="sgd", batch_size=32)),            # nesterov, the last batch short
    (MLPClassifier, dict(batch_size=17, hidden_layer_sizes=(41,), alpha=0.0)),  # odd units
    (MLPRegressor, dict(batch_size=50, hidden_layer_sizes=(35,), activation="tanh")),
    (MLPRegressor, dict(batch_size=24, loss="poisson")),
    (MLPClassifier, dict(batch_size=kernels.COLUMN_ROWS - 1, hidden_layer_sizes=(36,))),
]


@pytest.mark.parametrize("cls, params", CASES)
@pytest.mark.parametrize("weighted", [False, True])
def test_a_split_fit_is_the_same_on_one_thread_as_on_two(monkeypatch, cls, params, weighted):
    X, y = _digits()
    if cls is MLPRegressor:
        y = X[:, :3] * (y[:, None] + 1) / 10
    sw = np.random.default_rng(1).random(len(X)) + 0.5 if weighted else None
    one = _fit(monkeypatch, 1, cls, X, y, sw, **params)
    two = _fit(monkeypatch, 2, cls, X, y, sw, **params)
    for a, b in zip(one.coefs_ + one.intercepts_, two.coefs_ + two.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert one.loss_curve_ == two.loss_curve_


def _small_split(threads_=2):
    X, y = _digits()
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X[:100], y[:100])
    return _SplitEpoch(threads_, est.net_, 64, False)


def test_a_failing_thread_stops_the_others(monkeypatch):
    # The calling thread raises at its epoch; the helper waiting for it at
    # the gate returns, and the error is the raised one, not a hang.
    split = _small_split()
    returned = []

    def kernel(i, n_threads, sync, *rest):
        if i == 0:
            raise RuntimeError("thread 0 failed")
        returned.append(_wait_once(sync, n_threads))
        return np.nan, False
    monkeypatch.setattr(kernels, "epoch_sklearn_t_split", kernel)

    def call():
        with pytest.raises(RuntimeError, match="thread 0 failed"):
            split(*([None] * 10), 64, *([None] * 8))
        return True
    assert _run_threads([call]) == [True]
    assert returned == [False] and split.team._helpers == []


def test_a_failing_helper_stops_the_epoch_and_its_error_is_raised(monkeypatch):
    # The helper raises; thread 0, waiting for it, returns (nan, False) (the
    # fit then stops) and close() raises the helper's error.
    split = _small_split()

    def kernel(i, n_threads, sync, *rest):
        if i == 1:
            raise RuntimeError("the helper failed")
        return (np.nan, False) if not _wait_once(sync, n_threads) else (0.0, True)
    monkeypatch.setattr(kernels, "epoch_sklearn_t_split", kernel)

    def call():
        result = split(*([None] * 10), 64, *([None] * 8))
        with pytest.raises(RuntimeError, match="the helper failed"):
            split.close()
        return result
    result, = _run_threads([call])
    assert np.isnan(result[0]) and result[1] is False
    split.close()  # closed: nothing left to raise


def test_a_larger_batch_than_the_workspaces_hold_is_refused():
    split = _small_split(1)
    with pytest.raises(ValueError, match="room for 64"):
        split(*([None] * 10), 65, *([None] * 8))


def test_which_fits_split_their_batches(monkeypatch):
    monkeypatch.setattr(threads, "others_running", lambda: 0)
    monkeypatch.setattr(threads, "default_num_threads", lambda: 4)
    monkeypatch.setattr(threads, "get_num_threads", lambda: 4)
    monkeypatch.setattr(threads._blas, "pool_threads", lambda: 4)
    monkeypatch.setattr(threads, "_requested", None)
    assert threads.training_threads(2) == 2          # no more threads than pieces
    assert threads.training_threads(8) == 4          # nor than the pool's
    monkeypatch.setattr(threads, "others_running", lambda: 3)  # one core left free
    assert threads.training_threads(2) == 1
    monkeypatch.setattr(threads, "others_running", lambda: 0)
    monkeypatch.setattr(threads, "_requested", 1)    # fastbp.set_num_threads(1)
    assert threads.training_threads(2) == 1
    monkeypatch.setattr(threads, "_requested", None)
    # One fit at a time splits: a second, meanwhile, runs on its own thread.
    with threads.training(2) as first:
        with threads.training(2) as second:
            assert (first(), second()) == (2, 1)
    with threads.training(2) as again:
        assert again() == 2


def test_a_fit_that_met_a_busy_machine_looks_again(monkeypatch):
    # A fit that started while other processes held the cores takes a
    # second thread for a later epoch once they are free, looking at most
    # every LOOK_SOON seconds, then half as often after each look in vain; one
    # that set_num_threads(1) holds at one thread never looks again.
    now, looks, busy = [0.0], [], [True]
    monkeypatch.setattr(threads, "_clock", lambda: now[0])
    monkeypatch.setattr(threads, "default_num_threads", lambda: 2)
    monkeypatch.setattr(threads._blas, "pool_threads", lambda: 2)
    monkeypatch.setattr(threads, "_requested", None)

    def others():
        looks.append(now[0])
        return 1 if busy[0] else 0
    monkeypatch.setattr(threads, "others_running", others)
    look = threads.LOOK_SOON
    with threads.training(2) as share:
        seen = []
        for t in (0, 0.5, 1, 1.5, 2, 3, 4, 5, 6, 7, 9):
            now[0] = t * look
            seen.append(share())
        assert seen == [1] * 11
        # looks at 0, then 1, 3 and 7 LOOKs (waits of 1, 2 and 4)
        assert looks == [0, look, 3 * look, 7 * look]
        with threads.training(2) as other:   # meanwhile the cores are free,
            busy[0] = False
            assert other() == 2                # and a second fit takes them
            now[0] = 20 * look
            assert share() == 1                # (the split is one fit's at a time)
        now[0] = 40 * look
        assert share() == 2 and share() == 2
        assert len(looks) == 7
    with threads.training(2) as after:   # released on leaving
        assert after() == 2
    monkeypatch.setattr(threads, "_requested", 1)
    looks.clear()
    with threads.training(2) as share:
        for t in range(5):
            now[0] = 100 * t * look
            assert share() == 1
    assert len(looks) <= 1


def test_a_fit_that_takes_its_second_thread_late_trains_as_on_one(monkeypatch):
    # The machine busy at the fit's start (its first look), then free: the
    # fit's later epochs run on two threads, the same training as on one.
    X, y = _digits()
    calls = _spy(monkeypatch, "epoch_sklearn_t_columns", 1)
    monkeypatch.setattr(threads, "LOOK_SOON", 0.0)   # (a look each epoch)
    answers = iter([1, 1])
    monkeypatch.setattr(threads, "training_threads", lambda pieces: next(answers, 2))
    monkeypatch.setattr(threads, "_configured_threads", lambda pieces: 2)
    params = dict(solver="sgd", batch_size=32, random_state=0, tol=0, max_iter=6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        late = MLPClassifier(**params).fit(X, y)
        monkeypatch.setattr(threads, "training_threads", lambda pieces: 1)
        one = MLPClassifier(**params).fit(X, y)
    # (thread 0's call each epoch, and the helper's one call, which runs
    # every epoch from its start)
    assert calls == [1, 1] + [2] * 5 + [1] * 6
    for a, b in zip(late.coefs_ + late.intercepts_, one.coefs_ + one.intercepts_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(late.loss_curve_, one.loss_curve_)


def _spy(monkeypatch, name, arg):
    """Replace kernels.<name> by a wrapper noting argument ``arg`` of each
    call (0: the calling thread's number, 1: the threads) in the list it
    returns, then calling the kernel."""
    calls, real = [], getattr(kernels, name)

    def spy(*args):
        calls.append(args[arg])
        return real(*args)
    monkeypatch.setattr(kernels, name, spy)
    return calls


def test_small_batches_and_sparse_rows_are_not_split(monkeypatch):
    # Batches under SPLIT_ROWS rows, and sparse X, run no row split; nor
    # do batches under COLUMN_ROWS on one hidden layer (its units split).
    import scipy.sparse
    X, y = _digits()
    calls = _spy(monkeypatch, "epoch_sklearn_t_split", 1)   # the threads of each call
    _fit(monkeypatch, 2, MLPClassifier, X, y, batch_size=kernels.SPLIT_ROWS - 1)
    _fit(monkeypatch, 2, MLPClassifier, scipy.sparse.csr_matrix(X), y)
    assert calls == []
    _fit(monkeypatch, 2, MLPClassifier, X, y, batch_size=kernels.COLUMN_ROWS - 1)
    assert calls == []
    _fit(monkeypatch, 2, MLPClassifier, X, y, batch_size=kernels.SPLIT_ROWS,
         hidden_layer_sizes=(50, 20))
    assert calls and set(calls) == {2}
    calls.clear()
    _fit(monkeypatch, 2, MLPClassifier, X, y, batch_size=kernels.COLUMN_ROWS)
    assert calls and set(calls) == {2}


def test_the_helper_runs_every_epoch_of_a_fit_and_stops_with_it(monkeypatch):
    # Thread 0's kernel is called once per epoch; the helper's once per fit
    # (it waits between epochs), and the fit ends with it stopped.
    X, y = _digits()
    calls = _spy(monkeypatch, "epoch_sklearn_t_split", 0)
    for _ in range(2):  # a second fit starts its own helper
        est, = _run_threads([lambda: _fit(monkeypatch, 2, MLPClassifier, X, y)])
        assert est.n_iter_ == 6
    assert sorted(calls) == [0] * 12 + [1] * 2


def test_which_fits_split_their_hidden_units(monkeypatch):
    # Batches under COLUMN_ROWS rows of a dense X on a network of one hidden
    # layer of at least COLUMN_UNITS units run epoch_sklearn_t_columns (on
    # both threads), and match scikit-learn's fit; two hidden layers, fewer
    # units, larger batches and sparse X do not.
    import scipy.sparse
    from sklearn.neural_network import MLPClassifier as Theirs
    X, y = _digits()
    calls = _spy(monkeypatch, "epoch_sklearn_t_columns", 0)
    units = kernels.COLUMN_UNITS
    for params in (dict(hidden_layer_sizes=(units - 1,), batch_size=32),
                   dict(hidden_layer_sizes=(units, units), batch_size=32),
                   dict(hidden_layer_sizes=(units,), batch_size=kernels.COLUMN_ROWS)):
        _fit(monkeypatch, 2, MLPClassifier, X, y, **params)
    _fit(monkeypatch, 2, MLPClassifier, scipy.sparse.csr_matrix(X), y, batch_size=32)
    assert calls == []
    params = dict(solver="sgd", hidden_layer_sizes=(units,), batch_size=kernels.SPLIT_ROWS - 1)
    ours = _fit(monkeypatch, 2, MLPClassifier, X, y, **params)
    assert sorted(calls) == [0] * 6 + [1]   # thread 0 each epoch, the helper once
    # each piece's parameters on cache lines of their own (the fit's layout,
    # not kept with the model)
    assert ours._columns is None
    offs, size, _ = _column_layout(ours.net_, params["batch_size"])
    assert (offs[offs >= 0] % 8 == 0).all() and size % 8 == 0 and size > ours.net_.params.size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = Theirs(random_state=0, tol=0, max_iter=6, **params).fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(b).max())
    assert ours.loss_curve_ == pytest.approx(theirs.loss_curve_, rel=1e-12)


def test_the_split_hidden_units_of_a_weighted_fit_train_as_scikit_learns(monkeypatch):
    # (review HHA) the weights' total scales the loss, its L2 term and the
    # weight decay of epoch_sklearn_t_columns: the one-thread-against-two
    # test runs the same kernel on both sides, so it is held to scikit-learn.
    from sklearn.neural_network import MLPClassifier as Theirs
    X, y = _digits()
    w = np.random.default_rng(0).uniform(0.2, 3.0, size=len(y))
    calls = _spy(monkeypatch, "epoch_sklearn_t_columns", 0)
    params = dict(solver="sgd", hidden_layer_sizes=(kernels.COLUMN_UNITS,), batch_size=32,
                  alpha=1e-2)
    ours = _fit(monkeypatch, 2, MLPClassifier, X, y, sample_weight=w, **params)
    assert sorted(calls) == [0] * 6 + [1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = Theirs(random_state=0, tol=0, max_iter=6, **params).fit(X, y, sample_weight=w)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-10 * np.abs(b).max())
    assert ours.loss_curve_ == pytest.approx(theirs.loss_curve_, rel=1e-12)
