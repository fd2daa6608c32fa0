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
params. A batch whose reduced loss or gradient is not finite is not
applied: training stops there as ``on_divergence`` says (on every rank at
once). Validation metrics are reduced across ranks; only rank 0 prints
progress and runs :class:`fastbp.ModelCheckpoint`. Ctrl-C, divergence and
early stopping are decided on reduced values, so all ranks stop together.

Dropout works too: the masks are drawn by a counter-based hash of each row's
place in its global batch, so every rank draws, for its rows, the masks that
one process would draw, and distributed training with dropout equals
single-process training. L-BFGS (full batch) is not supported.
"""
import time

import numpy as np

from . import network, ops, threads
from .train import (History, ModelCheckpoint, TrainingDivergedError, _call, _diverged, _Interrupts,
                    _progress_bar, _record, _show)


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


def _same_everywhere(comm, value, what):
    values = comm.allgather(value)
    if any(v != values[0] for v in values):
        raise ValueError(f"distributed training needs the same {what} on every rank; got {values}")


def broadcast_model(net, optimizer, comm):
    """Rank 0's params, RNG state and optimizer (hyper-parameters, state,
    step count) to every rank, in place."""
    comm.Bcast(net.params, root=0)
    comm.Bcast(net._rng, root=0)
    comm.Bcast(optimizer.hyper, root=0)
    optimizer.t = comm.bcast(optimizer.t, root=0)
    comm.Bcast(optimizer.ensure_state(net.params), root=0)


def _metrics(net, X, Y, comm, prefix="val_"):
    """Loss and accuracy or R^2 over the rows of all ranks' shards of (X, Y)."""
    n, size = X.shape[0], comm.size
    lo, hi = n * comm.rank // size, n * (comm.rank + 1) // size
    m = Y.shape[1]
    sums = np.zeros(2 + 3 * m)  # loss sum, correct, then per output: residual², y, y²
    if hi > lo:
        Xs, Ys = X[lo:hi], Y[lo:hi]
        ws = net._workspace(min(hi - lo, 2048))
        sums[0] = network.loss_value(net.params, ws, net.plan, Xs, Ys, net._loss_code) * (hi - lo)
        out = np.empty_like(Ys)
        network.predict(out, net.params, ws, net.plan, Xs, net._loss_code)
        if net.output == "softmax":
            sums[1] = np.sum(out.argmax(axis=1) == Ys.argmax(axis=1))
        elif net.output == "sigmoid":
            sums[1] = np.mean((out > 0.5) == (Ys > 0.5), axis=1).sum()
        else:
            sums[2:2 + m] = ((Ys - out) ** 2).sum(axis=0, dtype=np.float64)
            sums[2 + m:2 + 2 * m] = Ys.sum(axis=0, dtype=np.float64)
            sums[2 + 2 * m:] = (Ys.astype(np.float64) ** 2).sum(axis=0)
    comm.Allreduce(_mpi().IN_PLACE, sums)
    logs = {prefix + "loss": float(sums[0] / n + net._penalty(n))}
    if net.output == "identity":
        res, s1, s2 = sums[2:2 + m], sums[2 + m:2 + 2 * m], sums[2 + 2 * m:]
        tot = s2 - s1 ** 2 / n
        r2 = np.where(tot > 0, 1 - res / np.where(tot > 0, tot, 1), np.where(res > 0, 0.0, 1.0))
        logs[prefix + "r2"] = float(r2.mean())
    else:
        logs[prefix + "accuracy"] = float(sums[1] / n)
    return logs


def run_distributed(net, X, Y, epochs, batch_size, optimizer, shuffle, verbose, validation,
                    callbacks, on_divergence, comm=None):
    """The fit loop of ``net.fit(..., distributed=True)``; inputs are validated."""
    MPI = _mpi()
    comm = world() if comm is None else comm
    rank = comm.rank
    n = X.shape[0]
    _same_everywhere(comm, (X.shape, Y.shape, net.sizes, net.dtype.name, epochs, batch_size,
                            type(optimizer).__name__, bool(shuffle)),
                     "data shapes, architecture, epochs, batch size, optimizer and shuffle")
    batch_size = min(batch_size, n)
    optimizer.ensure_state(net.params)
    broadcast_model(net, optimizer, comm)
    if rank != 0:
        verbose = 0
        callbacks = [cb for cb in callbacks if not isinstance(cb, ModelCheckpoint)]
    n_params = net.n_params
    buf = np.zeros(n_params + 1, dtype=net.dtype)
    grads = buf[:n_params]
    shard_rows = -(-batch_size // comm.size)
    ws = net._workspace(max(shard_rows, 1))
    perm = np.empty(n, dtype=np.int64)
    shuffle_rng, dropout_rng = net._rng[:1], net._rng[1:]
    state = optimizer.state
    alpha = net.alpha
    history = History()
    threads.ensure()
    net._samples_per_epoch = n
    bar = _progress_bar(epochs, verbose)
    _call(callbacks, "on_train_begin", net)
    with _Interrupts() as interrupts:
        try:
            for epoch in range(epochs):
                t0 = time.perf_counter()
                comm_seconds = 0.0
                perm[:] = np.arange(n)
                if shuffle:
                    ops.shuffle(perm, shuffle_rng)
                total = 0.0
                for b, start in enumerate(range(0, n, batch_size)):
                    stop = min(start + batch_size, n)
                    nb = stop - start
                    lo = start + nb * rank // comm.size
                    hi = start + nb * (rank + 1) // comm.size
                    shard_loss = network.shard_gradient(grads, net.params, ws, net.plan, X, Y, perm,
                                                        lo, hi, lo - start, net._loss_code,
                                                        net._reg, dropout_rng)
                    with np.errstate(over="ignore"):  # beyond float32: inf, caught below
                        buf[n_params] = shard_loss
                    tc = time.perf_counter()
                    comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
                    comm_seconds += time.perf_counter() - tc
                    value = float(buf[n_params])
                    if alpha:
                        value += 0.5 * alpha * network.penalty(net.params, net.plan)
                    if not (np.isfinite(value) and network.all_finite(grads)):
                        # Identical on every rank: all stop here, before the update.
                        _diverged(on_divergence, b + 1, -(-n // batch_size), b, optimizer,
                                  history, rolled_back=False)
                        raise StopIteration
                    optimizer.t += 1
                    network.distributed_step(net.params, grads, state, optimizer.hyper,
                                             optimizer.code, optimizer.t, nb, alpha, net.plan)
                    total += value
                logs = {"loss": total / n, "lr": optimizer.lr}
                if validation is not None:
                    logs.update(_metrics(net, *validation, comm))
                logs["seconds"] = time.perf_counter() - t0
                logs["comm_seconds"] = comm_seconds
                _record(logs, history, net.history)
                _show(bar, verbose, epoch, epochs, logs, n)
                stop = any([bool(r) for r in _call(callbacks, "on_epoch_end", epoch, logs)])
                # Every rank must agree to stop: a signal may reach them at different epochs.
                if comm.allreduce(int(stop or interrupts.requested), op=MPI.MAX):
                    if not stop:
                        raise KeyboardInterrupt
                    break
        except StopIteration:
            pass
        except KeyboardInterrupt:
            history.interrupted = True
            if verbose:
                print(f"interrupted: stopped after {len(history)} complete epoch(s)", flush=True)
        finally:
            if bar is not None:
                bar.close()
    _call(callbacks, "on_train_end", net)
    return history


__all__ = ["world", "broadcast_model", "run_distributed", "TrainingDivergedError"]
