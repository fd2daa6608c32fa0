"""Data-parallel training on MPI (``pip install "fastbp[mpi]"``: mpi4py and
the mpich wheel; a cluster's own MPI works as well).

The same script runs alone or on many processes::

    mpiexec -n 4 python -m mpi4py train.py      # -m mpi4py: a failing rank aborts the job

    net = fastbp.MLP([784, 1024, 1024, 10], seed=0)
    net.fit(X, y, epochs=10, batch_size=256, optimizer="adam", distributed=True)

Every rank loads the same data. At the start of ``fit`` rank 0 broadcasts
the params, the optimizer's hyper-parameters, state and step count, and the
RNG state, so every rank shuffles the same way. Each global minibatch of
``batch_size`` rows is cut into one contiguous shard per rank (uneven shards
are fine, even empty ones); each rank computes the gradient *sum* over its
shard (:func:`fastbp.kernels.shard_gradient`), one in-place ``Allreduce``
adds the flat gradient buffers (with the loss sum in one extra element), and
every rank divides by the global batch size and applies the same update
(:func:`fastbp.kernels.distributed_step`), so all ranks hold bit-identical
params. Divergence (a reduced loss, or parameters, not finite) rolls every
rank back exactly as single-process training does within the epoch (not
into the epoch before, where single-process training also goes when the
epoch's last update made the bad state: distributed, that state is kept),
and training stops as
``on_divergence`` says (on every rank at once). Validation metrics are reduced across ranks; only rank 0 prints
progress and runs :class:`fastbp.ModelCheckpoint`. Ctrl-C, divergence and
early stopping are decided on reduced values, so all ranks stop together.

Dropout works too: the masks are drawn by a counter-based hash of each row's
place in its global batch, so every rank draws, for its rows, the masks that
one process would draw, and distributed training with dropout equals
single-process training. L-BFGS (full batch) is not supported.
"""
import time

import numpy as np

from . import network, ops, optim, threads
from ._args import _agree
from ._validate import SparseRows
from .train import (History, ModelCheckpoint, TrainingDivergedError, _diverged, _end,
                    _epoch_end, begin,
                    _Interrupts, _progress_bar, _record, _say_interrupted, _show, _r2_score)


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        raise ImportError("distributed training needs mpi4py and an MPI library:"
                          ' pip install "fastbp[mpi]"') from None
    return MPI


def world():
    """MPI.COMM_WORLD (imports mpi4py)."""
    return _mpi().COMM_WORLD


def _same_everywhere(comm, fields):
    """Raise ValueError on every rank unless every rank holds the same
    ``fields`` ({name: value}); the message names each field that differs
    and which ranks hold which value."""
    values = comm.allgather(fields)
    differ = [name for name in fields if any(v[name] != values[0][name] for v in values)]
    if differ:
        parts = []
        for name in differ:
            held = {}  # value -> ranks, in rank order
            for rank, v in enumerate(values):
                held.setdefault(repr(v[name]), []).append(rank)
            parts.append(f"{name} differs: " + "; ".join(
                f"{value} on rank{'s' if len(ranks) > 1 else ''} {_ranks(ranks)}"
                for value, ranks in held.items()))
        raise ValueError("distributed training needs the same " + ", ".join(fields)
                         + " on every rank; " + ". ".join(parts))


def _ranks(ranks):
    return ", ".join(map(str, ranks[:8])) + (f" and {len(ranks) - 8} more" if len(ranks) > 8 else "")


def _callback_text(cb):
    """What must match between ranks of a callback (ModelCheckpoint runs on
    rank 0 only): its class, and a built-in schedule's or EarlyStopping's
    settings (a callback of the user's own may hold per-process state, a
    start time: its class only)."""
    from .schedules import NAMES, Schedule
    from .train import EarlyStopping
    if isinstance(cb, Schedule) and NAMES.get(type(cb).__name__) is type(cb):
        return cb.to_json()
    if isinstance(cb, EarlyStopping):   # a subclass too (its settings are EarlyStopping's)
        # (its mode is kept as sign: getattr(cb, "mode") was None on every rank)
        return repr((type(cb).__qualname__, cb.monitor, cb.patience, cb.min_delta,
                     cb.restore_best_weights, cb.sign))
    return type(cb).__qualname__


def _settings(net, optimizer):
    """What a callback may set between epochs that every rank must train
    with alike: the optimizer's hyper-parameters (the learning rate first)
    and ``alpha``; for one allreduce of MAX, each with its negation after."""
    values = np.concatenate([optimizer.hyper, [float(net.alpha)]])
    return np.concatenate([values, -values])


def _settings_apart(votes, when):
    """The error of settings that differ between ranks (:func:`_settings`
    reduced by MAX), or None where they agree."""
    m = votes.size // 2
    high, low = votes[:m], -votes[m:]
    apart = np.flatnonzero(high != low)
    if not apart.size:
        return None
    k = apart[0]
    what = ("learning rate" if k == optim.LR else "alpha" if k == m - 1
            else f"optimizer hyper-parameter {k} (optimizer.hyper[{k}])")
    plural = ("rates" if k == optim.LR else "alphas" if k == m - 1 else "values")
    return ValueError(f"distributed training needs the same {what} on every rank: {when}"
                      f" the ranks' {plural} range from {float(low[k])!r} to {float(high[k])!r}"
                      " (a callback set them apart: give every rank the same callbacks, with"
                      " the same settings)")


def _preprocessing_text(net):
    """The model's input and target scaling, class labels and categories, as
    a comparable text."""
    arrays = [None if a is None else np.asarray(a).tolist()
              for a in (net.input_mean, net.input_scale, net.target_mean, net.target_scale,
                        net.classes_)]
    categories = None if net.categories is None else sorted(
        (int(j), np.asarray(labels).tolist()) for j, labels in net.categories.items())
    return repr((arrays, categories))


def broadcast_model(net, optimizer, comm):
    """Rank 0's params, RNG state and optimizer (hyper-parameters, state,
    step count) to every rank, in place."""
    comm.Bcast(net.params, root=0)
    comm.Bcast(net._rng, root=0)
    comm.Bcast(optimizer.hyper, root=0)
    optimizer.t = comm.bcast(optimizer.t, root=0)
    comm.Bcast(optimizer.ensure_state(net.params), root=0)


def _metrics(net, X, Y, comm, prefix="val_"):
    """Loss and accuracy or R^2 over the rows of all ranks' shards of (X, Y).

    Every rank's partial results are gathered and combined in rank order,
    identically everywhere. R^2's total sum of squares comes from each
    shard's count, mean and sum of squared deviations, combined by Chan,
    Golub and LeVeque's pairwise update: a one-pass ``sum y^2 - (sum y)^2 / n``
    cancels catastrophically when the targets' mean is large against their
    spread.
    """
    n, size = X.shape[0], comm.size
    lo, hi = n * comm.rank // size, n * (comm.rank + 1) // size
    m = net.sizes[-1]
    # loss sum, correct, rows, then per output: residual², mean, squared
    # deviations, least and greatest target (a constant column: see
    # MLP._total_squares)
    part = np.zeros(3 + 5 * m)
    part[3 + 3 * m:3 + 4 * m], part[3 + 4 * m:] = np.inf, -np.inf
    part[2] = hi - lo
    if hi > lo:
        Xs, Ys = X[lo:hi], Y[lo:hi]
        ws = net._workspace(min(hi - lo, 2048))
        out = np.empty((hi - lo, m), dtype=net.dtype)  # the outputs too, in the same pass
        part[0] = network._loss_sum(net.params, ws, net.plan, Xs, Ys, *net._kernel_codes, out)
        if net.output == "softmax":
            part[1] = np.sum(out.argmax(axis=1) == Ys)  # Ys: class labels
        elif net.output == "sigmoid":
            # a row counts when all its labels are right (scikit-learn's
            # subset accuracy, as MLP.evaluate): not the mean over its labels
            part[1] = np.count_nonzero(((out > 0.5) == (Ys > 0.5)).all(axis=1))
        else:
            part[3:3 + m] = np.square(np.subtract(Ys, out, dtype=np.float64)).sum(axis=0)
            # Deviations from the first row's targets, the same on every rank
            # (each holds all of Y): a shard's mean of targets near 1e8 rounds
            # to ulp(1e8) = 1.5e-8, and the pairwise update's difference of
            # two such means carried that error into a spread of ~1 (val_r2
            # 8e-7 off; review HBN). Shifted, the means are of the spread.
            dev = np.subtract(Ys, Y[0], dtype=np.float64)
            mean = dev.mean(axis=0)
            part[3 + m:3 + 2 * m] = mean
            part[3 + 2 * m:3 + 3 * m] = ((dev - mean) ** 2).sum(axis=0)
            part[3 + 3 * m:3 + 4 * m], part[3 + 4 * m:] = Ys.min(axis=0), Ys.max(axis=0)
    parts = np.empty((size, part.size))
    comm.Allgather(part, parts)
    logs = {prefix + "loss": float(parts[:, 0].sum() / n + net._penalty(n))}
    if net.output == "identity":
        count, mean, m2 = 0.0, np.zeros(m), np.zeros(m)
        for p in parts:
            k = p[2]
            if k == 0:
                continue
            delta = p[3 + m:3 + 2 * m] - mean
            total = count + k
            mean = mean + delta * (k / total)
            m2 = m2 + p[3 + 2 * m:3 + 3 * m] + delta ** 2 * (count * k / total)
            count = total
        constant = parts[:, 3 + 3 * m:3 + 4 * m].min(axis=0) == parts[:, 3 + 4 * m:].max(axis=0)
        m2 = np.where(constant, 0.0, m2)
        logs[prefix + "r2"] = _r2_score(parts[:, 3:3 + m].sum(axis=0), m2, count)
    else:
        logs[prefix + "accuracy"] = float(parts[:, 1].sum() / n)
    return logs


def _failed(comm, failure, epoch):
    """After an epoch whose callbacks (or progress bar) failed on some
    ranks: each of those raises its own error, the others a RuntimeError
    naming them (every rank calls this, at the same epoch)."""
    _agree(comm, failure, lambda named: RuntimeError(
        f"the distributed fit stopped after epoch {epoch + 1}: its callbacks failed on rank(s)"
        f" {named}; every rank stops, with the same params"))
    raise failure


def run_distributed(net, X, Y, epochs, batch_size, optimizer, shuffle, verbose, validation,
                    callbacks, on_divergence, comm=None):
    """The fit loop of ``net.fit(..., distributed=True)``; inputs are validated.

    Divergence is handled as in single-process training: the parameters are
    checked after every update (one pass, small beside the allreduce), the
    loss before it; at the first bad state the epoch's starting copy (params,
    optimizer state and step count, RNG) is restored and the updates before
    that state are replayed, so the model ends where a single process ends
    (in float32, where a batch's gradient sum overflows sooner than its mean
    does in one process, it stops sooner: docs/guide/distributed.md).
    """
    MPI = _mpi()
    comm = world() if comm is None else comm
    rank = comm.rank
    n = X.shape[0]
    # Everything every rank must agree on, checked before the first collective
    # call: validation data on one rank only left the others waiting in the
    # epoch's allreduce (a hang), validation sets of other sizes gave each
    # rank its own wrong metrics, and another alpha (or activation, output,
    # loss, dropout) trained each rank's replica apart or averaged the
    # gradients of different models.
    # And the callbacks (but ModelCheckpoint, rank 0's alone): a schedule or
    # EarlyStopping on some ranks only set each rank's lr, or restored each
    # rank's weights, apart.
    shapes = None if validation is None else tuple(np.shape(v) for v in validation)
    sparse_validation = validation is not None and isinstance(validation[0], SparseRows)
    _same_everywhere(comm, {
        "X shape": X.shape, "y shape": Y.shape, "validation shapes": shapes,
        "sizes": net.sizes, "activations": net.activations, "output": net.output,
        "loss": net.loss_name, "alpha": float(net.alpha), "dropout": net.dropout,
        "dtype": net.dtype.name, "epochs": epochs, "batch_size": batch_size,
        "optimizer": type(optimizer).__name__, "shuffle": bool(shuffle),
        "on_divergence": on_divergence, "sparse validation X": sparse_validation,
        # the preprocessing: ranks of other scalings averaged the gradients of
        # two problems into bit-identical params that predicted apart
        "preprocessing": _preprocessing_text(net),
        "callbacks": [_callback_text(cb) for cb in callbacks
                      if not isinstance(cb, ModelCheckpoint)]})
    if sparse_validation:   # (every rank: _metrics slices it; it failed after an epoch)
        raise ValueError("distributed training takes a dense validation X; got a sparse matrix")
    batch_size = min(batch_size, n)
    steps = -(-n // batch_size)
    # What the broadcast replaces, for a fit that a callback's on_train_begin
    # refuses: the model as it was on this rank (MLP.fit undoes the rest).
    before = (net.params.copy(), None if optimizer.state is None else optimizer.state.copy(),
              optimizer.t, optimizer.hyper.copy())
    optimizer.ensure_state(net.params)
    broadcast_model(net, optimizer, comm)
    if rank != 0:
        verbose = 0
        callbacks = [cb for cb in callbacks if not isinstance(cb, ModelCheckpoint)]
    n_params = net.n_params
    # The loss sum travels in float64 whatever the model's dtype, as the
    # epoch kernel keeps it: in the gradient buffer's extra element for
    # float64, in its own (overlapped) reduction for float32.
    wide = net.dtype == np.float64
    buf = np.zeros(n_params + 1 if wide else n_params, dtype=net.dtype)
    grads = buf[:n_params]
    loss_sum = buf[n_params:] if wide else np.zeros(1)
    shard_rows = -(-batch_size // comm.size)
    ws = net._workspace(max(shard_rows, 1))
    perm = np.empty(n, dtype=np.int64)
    shuffle_rng, dropout_rng = net._rng[:1], net._rng[1:]
    state = optimizer.state
    saved_params, saved_state, saved_rng = (np.empty_like(net.params), np.empty_like(state),
                                            np.empty_like(net._rng))
    history = History()
    trained = len(net.history) > 0   # (for a divergence's message)
    threads.ensure()
    net._samples_per_epoch = n
    bar = None   # (made after on_train_begin: a callback refusing the fit leaves none)
    comm_seconds = [0.0]

    def run_epoch(max_steps):
        """Up to ``max_steps`` updates (all with -1); returns ``(loss sum,
        updates, diverged)``: with ``diverged`` the state after ``updates``
        updates is the first bad one."""
        alpha = net.alpha   # (as this epoch starts: a callback may have set it)
        perm[:] = np.arange(n)
        if shuffle:
            ops.shuffle(perm, shuffle_rng)
        total, done = 0.0, 0
        for start in range(0, n, batch_size):
            if 0 <= max_steps <= done:
                break
            stop = min(start + batch_size, n)
            nb = stop - start
            lo = start + nb * rank // comm.size
            hi = start + nb * (rank + 1) // comm.size
            loss_sum[0] = network._shard_gradient(grads, net.params, ws, net.plan, X, Y, perm, lo,
                                                 hi, lo - start, net._loss_code, net._reg,
                                                 dropout_rng)
            tc = time.perf_counter()
            pending = None if wide else comm.Iallreduce(MPI.IN_PLACE, loss_sum, op=MPI.SUM)
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            if pending is not None:
                pending.Wait()
            comm_seconds[0] += time.perf_counter() - tc
            value = float(loss_sum[0])
            if alpha:
                value += 0.5 * alpha * network.penalty(net.params, net.plan)
            if not np.isfinite(value):  # identical on every rank: all stop here
                return total, done, True
            optimizer.t += 1
            network.distributed_step(net.params, grads, state, optimizer.hyper, optimizer.code,
                                     optimizer.t, nb, alpha, net.plan)
            total += value
            done += 1
            if not network.all_finite(net.params):
                return total, done, True
        return total, done, False

    divergence = None  # (batch, kept, no_update, kept_finite) once an epoch diverged
    try:
        begin(callbacks, net)
        # (a callback refusing the fit on one rank: every rank stops, as for
        # refused arguments; the others waited in the first allreduce)
        _agree(comm, None)
        # The rate the callbacks' on_train_begin left (a schedule's first,
        # or one of the user's own): epoch 1 trained the ranks apart at rates
        # set apart there, before the first epoch's comparison.
        settings = _settings(net, optimizer)
        comm.Allreduce(MPI.IN_PLACE, settings, op=MPI.MAX)
        error = _settings_apart(settings, "before epoch 1, after the callbacks' on_train_begin")
        if error is not None:
            error.refused_elsewhere = True   # (every rank raises it: no more to agree on)
            raise error
    except BaseException as exc:
        if not getattr(exc, "refused_elsewhere", False):
            _agree(comm, exc)
        net.params[:] = before[0]
        if before[1] is not None:
            state[:] = before[1]
        optimizer.t, optimizer.hyper[:] = before[2], before[3]
        # Refused on another rank after this one's callbacks took the fit:
        # not started here either (MLP.fit then undoes the optimizer,
        # schedule, classes and seed it set, as on the refusing rank).
        net._fit_started = False
        raise
    del before
    try:
        bar = _progress_bar(epochs, verbose)
        with _Interrupts() as interrupts:
            try:
                for epoch in range(epochs):
                    threads.look_again()
                    t0 = time.perf_counter()
                    comm_seconds[0] = 0.0
                    saved_params[:], saved_state[:], saved_rng[:] = net.params, state, net._rng
                    saved_t = optimizer.t
                    total, done, bad = run_epoch(-1)
                    if bad:
                        # Finite parameters there: the loss of the next batch was the bad one.
                        batch = done + 1 if network.all_finite(net.params) else max(done, 1)
                        net.params[:], state[:], net._rng[:] = saved_params, saved_state, saved_rng
                        optimizer.t = saved_t
                        kept = max(done - 1, 0)
                        if kept and run_epoch(kept)[1:] != (kept, False):
                            raise RuntimeError("fastbp internal error: replaying the updates"
                                               " before a divergence diverged; please report this")
                        divergence = batch, kept, done == 0, network.all_finite(net.params)
                        break
                    logs = {"loss": total / n, "lr": optimizer.lr}
                    if validation is not None:
                        logs.update(_metrics(net, *validation, comm))
                    logs["seconds"] = time.perf_counter() - t0
                    logs["comm_seconds"] = comm_seconds[0]
                    _record(logs, history, net.history)
                    # Every rank must agree to stop: a signal may reach them at
                    # different epochs, a callback may stop (or raise
                    # KeyboardInterrupt, or fail) on one rank. Three votes, so
                    # that an interrupt anywhere is one everywhere, an error
                    # on one rank (rank 0's ModelCheckpoint or progress bar,
                    # a callback's) stops every rank (review HCH: the others
                    # waited for ever in this vote where a script caught it),
                    # and a callback's stop is not: the ranks end with the
                    # same history. With them, the settings the callbacks
                    # leave (their largest and, negated, their smallest): a
                    # learning rate or alpha set apart on some ranks (a
                    # subclass of a built-in schedule, compared by class
                    # only) trained the ranks' bit-identical params apart
                    # from the next epoch.
                    votes = np.zeros(3)
                    failure = None
                    try:
                        _show(bar, verbose, epoch, epochs, logs, n)
                        votes[0] = _epoch_end(callbacks, epoch, logs)
                    except KeyboardInterrupt:
                        votes[1] = 1
                    except BaseException as exc:   # (raised below, once every rank knows)
                        failure, votes[2] = exc, 1
                    votes[1] = max(votes[1], bool(interrupts.pending))
                    votes = np.concatenate([votes, _settings(net, optimizer)])
                    comm.Allreduce(MPI.IN_PLACE, votes, op=MPI.MAX)
                    if votes[2]:
                        _failed(comm, failure, epoch)
                    if votes[1]:
                        raise KeyboardInterrupt
                    error = _settings_apart(votes[3:], f"after epoch {epoch + 1}'s callbacks")
                    if error is not None:
                        raise error
                    if votes[0]:
                        break
            except KeyboardInterrupt:
                history.interrupted = True
                _say_interrupted(bar, verbose, history)
            finally:
                if bar is not None:
                    bar.close()
    finally:
        notes = _end(callbacks, net, divergence and (lambda: _diverged(
            on_divergence, divergence, steps, optimizer, history, trained=trained)))
    if divergence is not None:
        _diverged(on_divergence, divergence, steps, optimizer, history, notes=notes,
                  trained=trained)
    return history


__all__ = ["world", "broadcast_model", "run_distributed", "TrainingDivergedError"]
