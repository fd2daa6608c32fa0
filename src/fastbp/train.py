"""The fit loop: Python runs once per epoch; each epoch is one compiled call."""
import contextlib
import math
import os
import threading
import time

import numpy as np

from . import _blas, _columns, _weighted, network, threads
from ._static import static
from ._validate import kernel_x
from .layout import N_IN, N_OUT, W_OFF


class History(dict):
    """What training did, per epoch, as Keras reports it; a dict of metrics.

    Maps a metric name to a list with one value per epoch: ``loss`` (the
    training loss of the epoch's batches, each before its update, weighted
    by its size: the mean over the epoch's samples, scikit-learn's
    ``loss_``; for L-BFGS,
    whose epoch is one iteration, the objective at the parameters the
    iteration leaves), ``seconds`` (wall time of the epoch) and, where
    computed, ``lr`` (for L-BFGS, which has none, its placeholder 1.0),
    ``val_loss``, ``val_accuracy`` or ``val_r2``. It is a ``dict``, so ``h["loss"]``,
    ``h.keys()``, ``"val_loss" in h``, ``dict(h)`` and ``pandas.DataFrame(h)``
    (one row per epoch, one column per metric) all work; ``h.history`` is the
    same dict under Keras' name.

    ``len(h)`` is the number of epochs, not the number of metrics (as before
    this class was a dict; ``len(h.keys())`` counts the metrics). Besides the
    metrics it carries ``epoch`` (the epoch numbers), ``interrupted`` (Ctrl-C,
    or a ``KeyboardInterrupt`` in a callback, ended the fit) and ``diverged``
    (the fit ended on divergence, with ``on_divergence`` "stop" or "warn").
    """

    # Held while an epoch is recorded (its columns appended one by one) and
    # while save copies them: a save during a fit in another thread sees
    # every column at one length.
    _lock = threading.Lock()

    def __init__(self):
        super().__init__(loss=[], seconds=[])
        self.epoch = []
        self.interrupted = False
        self.diverged = False

    @property
    def history(self):
        """The metrics themselves (this object), Keras' ``History.history``."""
        return self

    def __len__(self):
        return len(self.epoch)

    def clear(self):
        """Forget every epoch: the History of a model not yet trained (a
        dict's clear emptied the metrics and kept the epoch numbers, the next
        fit recording NaN for the old epochs)."""
        with History._lock:
            super().clear()
            self.update(loss=[], seconds=[])
            self.epoch = []
            self.interrupted = self.diverged = False

    def __repr__(self):
        last = f", loss={self['loss'][-1]:.6g}" if self.epoch else ""
        return f"History(epochs={len(self.epoch)}{last})"


def _renew_history_lock():
    # One lock for every History, held by each epoch's record and by save:
    # taken by another thread as the process forked, it stayed taken in the
    # child, whose first epoch's end (or save) then waited for good.
    History._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_history_lock)


def run_lbfgs(net, X, Y, epochs, optimizer, verbose, validation=None, callbacks=(), weights=None,
              on_divergence="raise"):
    """Full-batch L-BFGS for up to ``epochs`` iterations (one history row each);
    ``weights``: float64 sample weights (n,) or None (see :mod:`fastbp._weighted`).
    SciPy stops where the objective or its gradient is not finite (at an
    accepted iterate: its line search backs off from a trial point that
    overflows); that is reported as ``on_divergence`` says, the model
    keeping the last iterate (see :func:`_lbfgs_diverged`)."""
    from scipy.optimize import minimize

    history = History()
    n = X.shape[0]
    # The L2 term is over the weights' sum (n without weights), as in scikit-learn.
    total = n if weights is None else float(weights.sum())
    rows = net._rows(X, 2048)   # (a sparse X's fewer: see fastbp.model.SPARSE_WORKSPACE_BYTES)
    ws = net._workspace(rows)
    grads = np.empty_like(net.params)
    scratch = np.empty_like(net.params) if n > rows else grads
    x_typed = np.empty_like(net.params)
    rows = kernel_x(X)
    # CSR data: each gradient on a copy of the point with the first layer
    # stored transposed (see first_layer_transposed; the same bits), the
    # gradient's block moved back after.
    moved = np.empty_like(net.params) if isinstance(rows, tuple) and \
        transpose_first_layer(net.plan, X.csr.nnz, 2) else None
    if moved is not None:
        rows = rows + (TRANSPOSED,)

    def objective(x):
        threads.look_again()
        p = x if x.dtype == net.dtype else x_typed
        if p is x_typed:
            x_typed[:] = x
        at = p
        if moved is not None:
            moved[:] = p
            move_first_layer(net.plan, moved, True)
            at = moved
        if weights is None:
            value = network._gradient(grads, scratch, at, ws, net.plan, rows, Y, net._loss_code)
        else:
            value = _weighted.gradient_weighted(grads, scratch, at, ws, net.plan, rows, Y,
                                                weights, net._loss_code)
        if moved is not None:
            move_first_layer(net.plan, grads, False)
        if net.alpha:
            value += 0.5 * net.alpha * network.penalty(p, net.plan) / total
            network.add_penalty_gradient(grads, p, net.plan, net.alpha / total)
        return value, grads.astype(np.float64)

    t_start = [0.0]   # (set as the first iteration starts)

    last = [None]   # SciPy's last iterate, as the model took it in on_iteration
    raised = [None]   # a StopIteration a callback raised

    def on_iteration(intermediate_result):
        net.params[:] = intermediate_result.x
        last[0] = intermediate_result.x.copy()
        optimizer.t += 1
        logs = {"loss": float(intermediate_result.fun), "lr": optimizer.lr}
        if validation is not None:
            logs.update(net._metrics(*validation, prefix="val_"))
        logs["seconds"] = time.perf_counter() - t_start[0]
        _record(logs, history, net.history)
        _show(bar, verbose, len(history) - 1, epochs, logs, None, "iteration")
        try:
            stop = _epoch_end(callbacks, len(history) - 1, logs)
        except StopIteration as exc:
            # A callback's own StopIteration (a next() on a spent iterator):
            # SciPy takes any from its callback for "stop", and the fit
            # ended as if on purpose. Raised after minimize, as run_epochs does.
            raised[0] = exc
            raise StopIteration from None
        t_start[0] = time.perf_counter()   # (the callbacks' time is no iteration's, as in run_epochs)
        if interrupts.pending:  # Ctrl-C: stop after this iteration (said even if a callback stops too)
            history.interrupted = True
            raise StopIteration
        if stop:
            raise StopIteration

    threads.ensure()
    net._samples_per_epoch = n
    interrupts = _Interrupts()
    result = None
    begin(callbacks, net)
    optimizer.result = None   # (an earlier fit's result is not this one's; kept by a refused fit)
    bar = None
    try:   # (from here on_train_end runs however the fit ends)
        bar = _progress_bar(epochs, verbose)
        with interrupts, threads.other_blas_on_one_thread():
            if epochs > 0:
                try:
                    t_start[0] = time.perf_counter()
                    result = minimize(objective, net.params.astype(np.float64), jac=True,
                                      method="L-BFGS-B", callback=on_iteration,
                                      options=dict(maxiter=epochs, gtol=optimizer.tol,
                                                   ftol=optimizer.tol, maxls=optimizer.max_ls))
                    if raised[0] is not None:   # (params hold its iteration's, as after an epoch)
                        result = None
                        raise raised[0]
                    optimizer.result = result
                    if last[0] is None or not np.array_equal(result.x, last[0]):
                        # (the iterate the last iteration's callbacks saw is kept
                        # with what they wrote to net.params, as after an epoch)
                        net.params[:] = result.x
                except KeyboardInterrupt:  # from a callback: params hold the last iteration
                    history.interrupted = True
            if history.interrupted:
                _say_interrupted(bar, verbose, history, "iteration")
    finally:
        if bar is not None:
            bar.close()
        diverged = result is not None and not (np.isfinite(result.fun)
                                               and np.isfinite(result.jac).all())
        if diverged and not history.interrupted:
            # SciPy's fun and jac may be a rejected trial point's (its line
            # search met a NaN, e.g. a squared gradient norm past float64)
            # beside the accepted x: judged at the parameters kept (review GG)
            value, gradient = objective(result.x)
            diverged = not (np.isfinite(value) and np.isfinite(gradient).all())
        notes = _end(callbacks, net, diverged and (lambda: _lbfgs_diverged(
            on_divergence, network.all_finite(net.params), history)))
    if diverged:
        _lbfgs_diverged(on_divergence, network.all_finite(net.params), history, notes)
    elif result is not None and result.status == 2 and not history.interrupted:
        # SciPy's line search gave up (scikit-learn warns too): a fit that
        # ran no iteration looked as if it had succeeded
        from ._validate import warn
        warn(f"L-BFGS stopped after {result.nit} of {epochs} iterations: SciPy's L-BFGS-B says"
             f" {str(result.message).strip()!r} (its line search found no lower loss: the"
             " objective may be as low as the model's dtype resolves, or the inputs too large"
             " for it)", RuntimeWarning)
    return history


def _lbfgs_diverged(on_divergence, finite, history, notes=""):
    """Report an L-BFGS fit that stopped on a non-finite objective or
    gradient at its last iterate, which the model keeps (``finite``: its
    parameters are)."""
    history.diverged = True
    n = len(history)
    where = f"L-BFGS stopped in iteration {n + 1}"
    if not finite:
        message = (f"{where}: the parameters it started from are NaN or infinite; the model"
                   " keeps them. Give it finite weights (a new model, or one loaded from a good"
                   " file) before training on.")
    else:
        start = "it started from" if n == 0 else f"of iteration {n}"
        message = (f"{where}: the loss or its gradient is NaN or infinite at the parameters"
                   f" {start} (inputs or targets too large for the model's dtype, or weights"
                   " that overflow on them); the model keeps those parameters.")
    _report(on_divergence, message + notes, 1, history)


class TrainingDivergedError(RuntimeError):
    """Training produced a non-finite loss or non-finite parameters.

    The model was rolled back to the last state whose parameters and loss
    were finite (``epoch`` and ``batch`` say where the divergence was
    detected, both 1-based), and then every callback's ``on_train_end`` ran
    (so :class:`EarlyStopping` with ``restore_best_weights`` restored the
    best epoch's weights, as the message says); ``history`` holds the epochs
    completed before it.
    """

    def __init__(self, message, epoch, batch, history):
        super().__init__(message)
        self.epoch, self.batch, self.history = epoch, batch, history


ON_DIVERGENCE = ("raise", "stop", "warn")


class _Interrupts(threads.SigintHeld):
    """Ctrl-C during fit: SIGINT only sets a flag, read between epochs (an
    epoch is one compiled call, which a signal cannot stop), so the model is
    never caught between a kernel's return and its bookkeeping (see
    :class:`fastbp.threads.SigintHeld` for where it applies); ``pending``
    is read between epochs."""


def run_epochs(net, X, Y, epochs, batch_size, optimizer, shuffle, verbose, validation=None,
               callbacks=(), on_divergence="raise", weights=None):
    """Train ``net`` in place with ``optimizer``; inputs are already validated.

    ``validation`` is ``(Xv, Yv)`` or ``(Xv, Yv, Wv)`` (converted; Wv the
    validation rows' weights) or None; ``weights`` the float64 sample
    weights (n,) of the training rows, or None (the unweighted kernels:
    nothing of the weighted path is compiled); ``callbacks`` get
    ``on_train_begin(net)``, ``on_epoch_end(epoch, logs)`` (a true return
    stops training) and ``on_train_end(net)``, each if they define it.
    Each epoch starts from a copy of the params, optimizer state and RNG
    state; if it diverges, the copy is restored and the epoch replayed up to
    the last update whose result had finite parameters and a finite loss
    (the kernels are deterministic, so the replay is exact). Ctrl-C or a
    KeyboardInterrupt from a callback ends training after the last completed
    epoch, with ``history.interrupted`` set. However training ends (all
    epochs, a callback stopping it, Ctrl-C, divergence, an exception),
    every callback's ``on_train_end`` runs before this returns or raises.
    """
    history = History()
    n = X.shape[0]
    batch_size = min(batch_size, n)
    steps = -(-n // batch_size)
    splits = (not isinstance(kernel_x(X), tuple)   # (dense X)
              and _columns.splits(net.sizes, batch_size, steps, epochs, any(net.dropout)))
    if splits and weights is not None and (weights == 1).all():
        # All-ones weights train bit for bit as none: here, where no weights
        # would split the hidden units (below; it has no weighted twin), as none.
        weights = None
    ws = net._workspace(batch_size)
    perm = np.empty(n, dtype=np.int64)
    # Plain SGD folds its step into backprop, the L2 term as W <- (1 - lr
    # alpha / nb) W - lr dW. In float32 that factor rounds to a multiple of
    # 2^-24 (6e-8): alpha = 5e-5 trained as 0, and 1e-4 as 1.9e-4 (lr 0.01,
    # batch 32). With alpha there, float32 takes the L2 term into the
    # gradient, W <- W - lr (dW + alpha / nb W), as torch and scikit-learn do.
    fused = optimizer.fused and not (net.alpha and net.dtype == np.float32)
    # (the alpha setter refuses a non-zero alpha while such a fit runs: it
    # would train as the rounded factor, 5e-5 as 0)
    net._alpha_stays_zero = fused and net.dtype == np.float32
    if fused:  # plain SGD reads no gradient buffer and no state
        grads, state = net.params[:0], np.zeros((2, 0), dtype=net.dtype)
    elif optimizer.fused:  # plain SGD unfused: a state it never reads, not the optimizer's
        grads, state = net._gradient_buffer(), np.zeros((2, net.n_params), dtype=net.dtype)
    else:
        grads, state = net._gradient_buffer(), optimizer.ensure_state(net.params)
    # The starts of this epoch and the one before (params, state, rng, the
    # optimizer's hyper-parameters and step count), in two sets taken in
    # turn: a divergence rolls back into the epoch before when its last
    # update left the weights whose next loss is not finite (_roll_back).
    starts = [[np.empty_like(net.params), np.empty_like(state), np.empty_like(net._rng),
               np.empty_like(optimizer.hyper), 0, net._reg] for _ in range(2)]
    trained = len(net.history) > 0   # (for a divergence's message)
    threads.ensure()
    net._samples_per_epoch = n

    kernel = choose_epoch(fused, any(net.dropout))
    x = kernel_x(X)  # the array itself, or a sparse X's CSR arrays
    # CSR data with enough non-zeros, or dense rows whose forward product
    # would copy W^T every step: each epoch runs with the first layer's
    # weights (and their gradient and optimizer state) stored transposed.
    moved = [a for a in (grads, *state) if a.size]  # what else holds a first layer's block
    if isinstance(x, tuple):
        transposed = transpose_first_layer(net.plan, X.csr.nnz, len(moved) + 1)
        if transposed:
            x = x + (TRANSPOSED,)
    else:  # the flag read at run time (fastbp.network._dense_t)
        transposed = dense_transposes(net.plan, batch_size, steps, len(moved) + 1)
        x = (x, TRANSPOSED if transposed else AS_STORED)

    def epoch_kernel(max_steps, check_every_step=False):
        # The loss, the optimizer, the hidden activation and whether there is
        # an L2 term as compile-time constants: only their branches of the
        # leaf kernels compile (fastbp._static).
        loss, hidden = net._kernel_codes
        with epoch_params(net, state, grads, transposed) as (params, rows):
            return kernel(params, grads, rows, ws, net.plan, x, Y, perm, net._rng, batch_size,
                          shuffle, loss, static(optimizer.code), optimizer.hyper, optimizer.t,
                          net._reg, max_steps, check_every_step, hidden, _l2(net))

    if weights is not None:  # the weighted twin, compiled only by a weighted fit
        wbuf = np.empty(batch_size, dtype=np.float64)

        weighted = {network.epoch_sgd: _weighted.epoch_weighted_sgd,
                    network.epoch_optimizer: _weighted.epoch_weighted_optimizer,
                    network.epoch_dropout_sgd: _weighted.epoch_weighted_dropout_sgd,
                    network.epoch_dropout_optimizer: _weighted.epoch_weighted_dropout_optimizer,
                    }[kernel]

        def epoch_kernel(max_steps, check_every_step=False):  # noqa: F811
            loss, hidden = net._kernel_codes
            with epoch_params(net, state, grads, transposed) as (params, rows):
                return weighted(
                    params, grads, rows, ws, net.plan, x, Y, weights, wbuf, perm, net._rng,
                    batch_size, shuffle, loss, static(optimizer.code), optimizer.hyper,
                    optimizer.t, net._reg, max_steps, check_every_step, hidden, _l2(net))

    def split_epochs(split):
        # One hidden layer, small batches: its units split between two
        # threads (fastbp._columns), the same bits on one thread as on two;
        # what the epochs hold (a thread, the BLAS on one thread) in ``split``.
        columns = _columns.ColumnEpochs(net, fused, batch_size,
                                        split.enter_context(threads.training(_columns.PIECES)))
        split.callback(columns.close)
        split.enter_context(threads.blas_on_one_thread())  # each piece's products on its thread
        dense = kernel_x(X)

        def epoch_kernel(max_steps, check_every_step=False):
            loss, hidden = net._kernel_codes
            return columns(net.params, state, dense, Y, perm, net._rng, batch_size, shuffle,
                           loss, static(optimizer.code), optimizer.hyper, optimizer.t, net._reg,
                           max_steps, check_every_step, hidden, _l2(net))
        return epoch_kernel

    def restore(which=0):
        """The model as at the start of this epoch (``which`` 0) or of the one
        before (1: its hyper-parameters and step count too)."""
        start = starts[which]
        net.params[:], state[:], net._rng[:] = start[0], start[1], start[2]
        if which:   # (alpha too: a callback may have set it since that epoch trained)
            optimizer.hyper[:], optimizer.t, net._reg = start[3], start[4], start[5]

    def at_start():
        """Whether the model is as at the start of this epoch, bit for bit."""
        return all(np.array_equal(now.view(np.uint8), then.view(np.uint8))
                   for now, then in zip((net.params, state, net._rng), starts[0][:3]))

    # _diverged's (batch, kept, no_update, kept_finite, into_previous) once an epoch diverged
    divergence = None
    split = contextlib.ExitStack()  # closed when training ends, however it ends
    begin(callbacks, net)
    try:
        if splits and weights is None:
            epoch_kernel = split_epochs(split)
        # (after on_train_begin: a callback refusing the fit leaves no bar)
        bar = _progress_bar(epochs, verbose)
        with _Interrupts() as interrupts:
            try:
                for epoch in range(epochs):
                    threads.look_again()
                    t0 = time.perf_counter()
                    starts.reverse()   # (this epoch's start into the older set)
                    start = starts[0]
                    start[0][:], start[1][:], start[2][:] = net.params, state, net._rng
                    start[3][:], start[4], start[5] = optimizer.hyper, optimizer.t, net._reg
                    loss, _ = epoch_kernel(-1)
                    if not np.isfinite(loss):
                        divergence = _roll_back(net, restore, optimizer, epoch_kernel, steps,
                                                epoch > 0, at_start)
                        if divergence is None:   # every batch finite, their sum not: no divergence
                            loss = np.inf
                        else:
                            *divergence, into_previous = divergence
                            divergence = (*divergence, network.all_finite(net.params),
                                          into_previous)
                            break
                    optimizer.t += steps
                    logs = {"loss": float(loss), "lr": optimizer.lr}
                    if validation is not None:
                        logs.update(net._metrics(*validation, prefix="val_"))
                    logs["seconds"] = time.perf_counter() - t0
                    _record(logs, history, net.history)
                    _show(bar, verbose, epoch, epochs, logs, n)
                    stop = _epoch_end(callbacks, epoch, logs)
                    if interrupts.pending:   # (before a callback's stop, which would hide it)
                        raise KeyboardInterrupt
                    if stop:
                        break
            except KeyboardInterrupt:
                history.interrupted = True
                _say_interrupted(bar, verbose, history)
            finally:
                if bar is not None:
                    bar.close()
    finally:
        try:
            split.close()  # (raises a helper thread's error)
        finally:
            notes = _end(callbacks, net, divergence and (lambda: _diverged(
                on_divergence, divergence, steps, optimizer, history, trained=trained)))
    if divergence is not None:
        _diverged(on_divergence, divergence, steps, optimizer, history, notes=notes,
                  trained=trained)
    return history


# The seventh element of a CSR batch whose first layer is stored transposed
# (fastbp.network._stored_transposed reads the tuple's length, not the
# value), and the flag beside dense rows: (X, TRANSPOSED) or (X, AS_STORED),
# read at run time (fastbp.network._dense_t).
TRANSPOSED = np.int64(1)
AS_STORED = np.int64(0)


def transpose_first_layer(plan, nnz, arrays):
    """Whether an epoch over CSR data with ``nnz`` non-zeros runs with the
    first layer stored transposed (:func:`first_layer_transposed`), moving
    its block of ``arrays`` flat arrays there and back. Each non-zero then
    costs about m fewer scattered reads and writes, the move 2 m k element
    copies per array, so it pays from about ``nnz = arrays k / 2`` whatever
    m. Measured (2026-12-04, AMD EPYC znver4, float32, k = 20,000 columns at
    0.5 %, m = 64, batch 32, ms an epoch, stored as W / transposed): plain
    SGD, 100 rows (nnz = k / 2) 3.0 / 2.7, 400 rows 10.6 / 3.5, 8,000 rows
    330 / 37; Adam (4 arrays), 400 rows (nnz = 2 k) 27.8 / 28.0, 1,000
    rows 64.8 / 35.0."""
    k = int(plan[0, N_IN])
    return 2 * nnz >= arrays * k


def dense_transposes(plan, batch_size, steps, arrays):
    """Whether an epoch over dense rows runs with the first layer stored
    transposed (:func:`first_layer_transposed`): where each step's forward
    product ``x @ W.T`` would copy ``W.T`` first (fastbp._blas.copies_transposed:
    OpenBLAS's small kernels, where its TN form is slow), which ``x @ (W.T
    stored)`` does not, and the epoch has enough steps to pay for moving the
    block of ``arrays`` flat arrays there and back (about two copies each).
    The weight step ``W.T -= lr x^T d`` forms each value from the same
    products in the same order as ``W -= lr d^T x``, and the forward product
    is the NN product that runs on the copy, so the weights are the same
    bits where the BLAS gives a product and its transposed twin the same
    bits (OpenBLAS's kernel for the CPU; not its Haswell kernel on a Zen 5,
    review HIL: see docs/guide/data.md); a last batch too small to copy
    (OpenBLAS's own TN kernel then runs on ``W``) rounds its product
    differently. Measured (2026-12-04,
    Intel Xeon, OpenBLAS SkylakeX, 32 x 64 -> 32 products, us): forward
    1.20 -> 0.88 float32 and 2.14 -> 1.53 float64, weight step 0.88 -> 0.87
    and 1.81 -> 1.64."""
    m, k = int(plan[0, N_OUT]), int(plan[0, N_IN])
    return steps >= 2 * arrays and _blas.copies_transposed(batch_size, m, k)


@contextlib.contextmanager
def first_layer_transposed(plan, arrays, on=True):
    """For the block, the first layer's weight block of each flat array in
    ``arrays`` (the parameters, their gradient, the optimizer's state rows;
    empty ones skipped) holds ``W.T`` (n_in, n_out) in place of ``W``
    (n_out, n_in); after it (also on an exception), ``W`` again. The sparse
    first-layer kernels then read and update a weight row per non-zero
    (:func:`fastbp.ops.sparse_product_t`); the optimizers' steps are
    element-wise, so they take the same steps in either order, and the
    weights come out bit for bit as stored as W throughout. Only a loss with
    an L2 term may differ in its last bit: its sum of squares adds the block
    in the order it is stored."""
    if not on:
        yield
        return
    for a in arrays:
        move_first_layer(plan, a, True)
    try:
        yield
    finally:
        for a in arrays:
            move_first_layer(plan, a, False)


@contextlib.contextmanager
def epoch_params(net, state, grads, transposed):
    """The parameter buffer and optimizer state rows an epoch's kernel
    updates, ``(params, state)``: ``net.params`` and ``state`` themselves, or,
    with the first layer stored transposed (:func:`first_layer_transposed`,
    also for ``grads``, the fit's own), private copies, which come back into
    ``net.params`` and ``state`` as ``W`` when the block ends (also on an
    exception). Threads that read the model meanwhile (``predict``, ``save``,
    ``copy.deepcopy``: the kernels release the GIL) then see the parameters
    and the optimizer's state as they stood before the epoch, never ``W.T``
    (a predict did, in review: outputs off by 0.5; a save mid-epoch held the
    first layer's Adam moments transposed, review ED)."""
    if not transposed:
        yield net.params, state
        return
    with private_transposed(net.plan, net.params, state, grads) as private:
        yield private


@contextlib.contextmanager
def private_transposed(plan, params, state, grads, into=None):
    """``(params, state)`` copied into private arrays (``into``, or new ones)
    whose first layer's block holds ``W.T``, and ``grads`` (the fit's own)
    moved so in place; at the end (also on an exception) the private arrays
    come back into ``params`` and ``state`` as ``W``: see :func:`epoch_params`."""
    own_p, own_s = into if into is not None else (np.empty_like(params), np.empty_like(state))
    _copy_moving_first_layer(plan, own_p, params, True)
    rows = [i for i in range(len(state)) if state[i].size]
    for i in rows:
        _copy_moving_first_layer(plan, own_s[i], state[i], True)
    try:
        with first_layer_transposed(plan, [grads] if grads.size else []):
            yield own_p, own_s
    finally:
        _copy_moving_first_layer(plan, params, own_p, False)
        for i in rows:
            _copy_moving_first_layer(plan, state[i], own_s[i], False)


def _copy_moving_first_layer(plan, dst, src, transposed):
    # dst = src, its first layer's block stored as W.T (transposed) or back
    # as W: one pass over each array (move_first_layer in place takes two).
    start, m, k = int(plan[0, W_OFF]), int(plan[0, N_OUT]), int(plan[0, N_IN])
    end = start + m * k
    dst[:start], dst[end:] = src[:start], src[end:]
    shape = (m, k) if transposed else (k, m)
    np.copyto(dst[start:end].reshape(shape[::-1]), src[start:end].reshape(shape).T)


def move_first_layer(plan, a, transposed):
    """In the flat array ``a`` (of the parameters' layout, or empty), store
    the first layer's weight block as ``W.T`` (``transposed``) or back as
    ``W``, in place."""
    start, m, k = int(plan[0, W_OFF]), int(plan[0, N_OUT]), int(plan[0, N_IN])
    if a.size >= start + m * k:
        block = a[start:start + m * k]
        block[:] = block.reshape((m, k) if transposed else (k, m)).T.ravel()


def _l2(net):
    """Whether the fit has an L2 term, as the epoch kernels' static ``l2``
    (read at every call: alpha may change between fits)."""
    return static(network.WITH_L2 if net._reg[0] != 0 else network.NO_L2)


def choose_epoch(fused, dropout):
    """The epoch kernel for this fit, of :func:`fastbp.network.train_epoch`'s
    arguments: each compiles only its own update, so a fit compiles only
    the path it takes (see :mod:`fastbp.network`)."""
    if dropout:
        return network.epoch_dropout_sgd if fused else network.epoch_dropout_optimizer
    return network.epoch_sgd if fused else network.epoch_optimizer


def _roll_back(net, restore, optimizer, epoch_kernel, steps=None, before=False, at_start=None):
    """After a diverged epoch: find its first bad state, then leave the model
    in the state just before it. Returns ``(batch, kept, no_update,
    into_previous)``: the 1-based batch where the divergence showed, the
    number of updates kept, whether the epoch's starting state was the bad
    one (its first batch's loss not finite: no update of this epoch to
    blame), and whether the model went back into the epoch before. Returns None
    when no state was bad (every batch's loss and every update finite, the
    epoch's sum of losses past the float's range): the model is then at the
    epoch's end, as its first pass left it.

    With ``before`` (the epoch before ran in this fit, ``restore(1)`` brings
    back its start) a bad starting state is its last update's doing: the
    model is rolled back into that epoch, to its state before that update
    (the epoch's ``steps - 1`` updates replayed), where the next loss was
    finite; kept the bad state, every later fit failed at its first batch
    whatever the learning rate. That epoch is replayed whole first, and
    only where it retraces itself to this epoch's start bit for bit
    (``at_start()``) is the model taken back into it; where its data changed
    since (rows a callback or another process wrote, a NaN among them, as
    data.md allows), the model stays at this epoch's start, the last state
    known finite (reviews HDU, HDW: "internal error"; a replay on other data
    reported as a state the fit never passed through).

    The fast pass checks the parameters once per epoch, so it only bounds
    the first bad state; a second pass from the epoch's starting copy checks
    them after every update and stops exactly there (a bad state: non-finite
    parameters, or a non-finite loss on the next batch). A third replays the
    updates before it. The kernels are deterministic, so the passes retrace
    each other; if they ever did not, that is an error, not a silent state.
    """
    restore()
    loss, bad = epoch_kernel(-1, True)
    if np.isfinite(loss):
        raise RuntimeError("fastbp internal error: replaying a diverged epoch did not diverge"
                           " again (the epoch kernel is not deterministic); please report this")
    finite = network.all_finite(net.params)
    if steps is not None and bad == steps and finite:
        return None   # (each batch checked, none bad: the epoch's sum overflowed)
    # Finite parameters there: the loss of the next batch was the bad one.
    batch = bad + 1 if finite else max(bad, 1)
    if bad == 0 and finite and before:
        # (the next epoch's lr and alpha, which a schedule or callback set,
        # are the model's after the replay, which takes the epoch's own)
        hyper, reg, t = optimizer.hyper.copy(), net._reg, optimizer.t
        restore(1)
        again, replayed = epoch_kernel(steps)
        if replayed == steps and np.isfinite(again) and at_start():
            restore(1)
            kept = steps - 1
            _replay(epoch_kernel, kept)
            optimizer.t += kept
            optimizer.hyper[:], net._reg = hyper, reg
            return batch, kept, True, True
        optimizer.hyper[:], net._reg = hyper, reg
        restore()
        optimizer.t = t
        return batch, 0, True, False
    restore()
    kept = max(bad - 1, 0)
    _replay(epoch_kernel, kept)
    optimizer.t += kept
    return batch, kept, bad == 0, False


def _replay(epoch_kernel, kept):
    """The first ``kept`` updates of an epoch again, from its start."""
    if kept:
        loss, again = epoch_kernel(kept)
        if again != kept or not np.isfinite(loss):
            raise RuntimeError("fastbp internal error: replaying the updates before a divergence"
                               " diverged (the epoch kernel is not deterministic); please report"
                               " this")


def _r2_score(res, tot, n):
    """R^2 averaged over the outputs from per-output residual and total sums
    of squares of ``n`` rows, as scikit-learn's r2_score: 1 for a perfect
    fit of constant targets, 0 for an imperfect one (where their total sum
    of squares is 0: the callers give exactly 0 for a constant column, whose
    mean may round, as of 50 float64 0.1s, which leaves about 1e-30 and
    scikit-learn's R^2 far below 0), NaN for fewer than two rows (one row
    gave 0)."""
    if n < 2:
        return float("nan")
    r2 = np.where(tot > 0, 1 - res / np.where(tot > 0, tot, 1), np.where(res > 0, 0.0, 1.0))
    return float(r2.mean())


def _end(callbacks, net, diverged=None):
    """Every callback's ``on_train_end``, even if one of them raises (the
    first error is raised once all have run). Returns notes for a divergence
    message: what the callbacks did to the parameters.

    ``diverged``: the fit's divergence report (a function of no argument),
    when the fit diverged; if a callback raises, it is made before the
    error is raised, which a TrainingDivergedError then caused (else the
    divergence was lost: no error, no warning, the history not marked)."""
    error = None
    net._epochs_over = True   # (on_train_end may set the optimizer and schedule: no epoch follows)
    for cb in callbacks:
        if hasattr(cb, "on_train_end"):
            try:
                cb.on_train_end(net)
            except BaseException as e:  # noqa: B036 (re-raised below, after the others ran)
                error = error or e
    if error is not None:
        if diverged:
            try:
                diverged()
            except BaseException as report:
                raise error from report
        raise error
    return "".join(f" Then EarlyStopping(restore_best_weights=True) restored the weights of epoch"
                   f" {cb.restored_epoch + 1}, the best {cb.monitor} of this fit."
                   for cb in callbacks
                   if isinstance(cb, EarlyStopping) and cb.restored_epoch is not None)


def _diverged(on_divergence, divergence, steps, optimizer, history, notes="", trained=False):
    """Report divergence ``(batch, kept, no_update, kept_finite[,
    into_previous])``: detected at 1-based ``batch`` of the epoch after the
    completed ones; the model was rolled back to its state after ``kept``
    batches of it (whose parameters are finite or not: ``kept_finite``), or,
    ``into_previous``, of the epoch before; ``no_update`` when the epoch's
    starting state was the bad one (its first loss not finite); ``notes``
    says what callbacks did next; ``trained``: the model had trained before
    this fit."""
    batch, kept, no_update, kept_finite = divergence[:4]
    into_previous = len(divergence) > 4 and divergence[4]
    history.diverged = True
    where = f"training diverged in epoch {len(history) + 1}, batch {batch} of {steps}"
    last = len(history)
    if into_previous:   # (that epoch's rate, as its record has it: a schedule set the next one's)
        state = (f"to its state at the start of epoch {last}" if kept == 0
                 else f"to its state after batch {kept} of epoch {last}")
        message = (f"{where}: the loss of its first batch was NaN or infinite with the weights"
                   f" that epoch {last}'s last update left (lr={history['lr'][-1]:g}). The model"
                   f" was rolled back {state}, before that update: the last state with finite"
                   f" parameters and a finite loss (epoch {last} stays in the history). Try a"
                   " smaller learning rate.")
    elif not kept_finite:  # (only at the epoch's start: every update is checked)
        message = (f"{where}: the parameters were already NaN or infinite when the epoch began,"
                   " before any update; the model keeps them. Give it finite weights (a new"
                   " model, or one loaded from a good file) before training on.")
    elif no_update and not len(history) and trained:
        message = (f"{where}: the loss of its first batch was NaN or infinite with the weights"
                   " the model began this fit with, before any update (they overflow on these"
                   " data: an earlier fit's last update may have left them so, or the inputs or"
                   " targets are too large for the model's dtype); the model keeps them. A"
                   " smaller learning rate cannot help from these weights: load a saved model or"
                   " checkpoint, or start a new one.")
    elif no_update and not len(history):
        message = (f"{where}: the loss of its first batch was NaN or infinite before any update"
                   " (inputs or targets too large for the model's dtype, or weights that"
                   " overflow on them); the model is as it was before the epoch.")
    elif no_update:  # (distributed; or the epoch before replayed otherwise: its data written since)
        lr = history.get("lr", [optimizer.lr])[-1]
        message = (f"{where}: the loss of its first batch was NaN or infinite with the weights"
                   f" that epoch {len(history)}'s updates left (lr={lr:g}); the model"
                   f" keeps them, as they were after epoch {len(history)}. Try a smaller"
                   " learning rate; or, where the data are used in place and were written"
                   " since that epoch (a NaN, a class label out of range), mend them.")
    else:
        state = ("to its state at the start of that epoch" if kept == 0
                 else f"to its state after batch {kept} of that epoch")
        message = (f"{where}: the loss or the parameters became NaN or infinite"
                   f" (lr={optimizer.lr:g}). The model was rolled back {state}, the last with"
                   " finite parameters and a finite loss. Try a smaller learning rate.")
    _report(on_divergence, message + notes, batch, history)


def _report(on_divergence, message, batch, history):
    """Raise, warn or say nothing of a divergence in the epoch (or L-BFGS
    iteration) after ``history``'s, at 1-based ``batch``."""
    if on_divergence == "raise":
        raise TrainingDivergedError(message, len(history) + 1, batch, history)
    if on_divergence == "warn":
        from ._validate import warn
        warn(message, RuntimeWarning)


def _show(bar, verbose, epoch, epochs, logs, n, unit="epoch"):
    """An epoch's logs on the bar, or as a line (verbose); ``n`` the rows it
    trained on (None: no rate, as for an L-BFGS iteration, whose line search
    may evaluate the objective several times)."""
    rate = {} if n is None else {"samples/s": f"{n / max(logs['seconds'], 1e-12):,.0f}"}
    if bar is not None:
        bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k not in ("seconds", "lr")}
                        | rate, refresh=False)
        bar.update(1)
    elif verbose:
        shown = "  ".join(f"{k} {v:.6g}" for k, v in logs.items() if k not in ("seconds", "lr"))
        timing = "".join(f", {v} {k}" for k, v in rate.items())
        print(f"{unit} {epoch + 1}/{epochs}  {shown}  ({logs['seconds']:.3f} s{timing})",
              flush=True)


def _say_interrupted(bar, verbose, history, unit="epoch"):
    """The line that says a fit ended on Ctrl-C, after the bar is closed (on
    the bar's open line it was glued to it, and the bar drawn again after)."""
    if bar is not None:
        bar.close()
    if verbose:
        print(f"interrupted: stopped after {len(history)} complete {unit}(s); the model holds"
              " their result", flush=True)


def _progress_bar(epochs, verbose):
    """A tqdm bar over epochs in an interactive terminal with verbose=1; None
    elsewhere (a log line per epoch instead, or silence with verbose=0)."""
    import sys
    # (sys.stderr is None with fd 2 closed, `fastbp train 2>&-`, and under
    # pythonw: its isatty failed the fit before its first epoch)
    try:
        terminal = sys.stderr.isatty()
    except (AttributeError, ValueError, OSError):   # (none, or a closed stream)
        terminal = False
    if verbose != 1 or not terminal:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=epochs, unit="epoch", leave=True)


def _record(logs, *histories):
    """Append an epoch's logs to this fit's History and the model's running
    one, keeping one entry per epoch under every key: NaN for a metric not
    computed in an epoch (e.g. val_loss in a fit without validation)."""
    with History._lock:
        for record in histories:
            epochs = len(record.epoch)
            for key, column in record.history.items():
                if key not in logs:
                    column.append(float("nan"))
            for key, value in logs.items():
                column = record.history.setdefault(key, [])
                column.extend([float("nan")] * (epochs - len(column)))  # first reported now
                column.append(value)
            record.epoch.append(epochs)


def begin(callbacks, net):
    """Every callback's ``on_train_begin(net)``; after it the fit has
    started (:func:`run_started`): an error before, no epoch having run,
    leaves the model as it was before the fit (``MLP.fit`` undoes its
    optimizer, schedule, learning rate and seed)."""
    net._fit_started = False
    _call(callbacks, "on_train_begin", net)
    net._fit_started = True


def run_started(net):
    """Whether the fit in progress (or the last) got past its callbacks'
    ``on_train_begin``."""
    return getattr(net, "_fit_started", False)


def _call(callbacks, method, *args):
    return [getattr(cb, method)(*args) for cb in callbacks if hasattr(cb, method)]


def _epoch_end(callbacks, epoch, logs):
    """Every callback's ``on_epoch_end``: whether one asks to stop. A
    KeyboardInterrupt from one is raised after the others have seen the
    epoch, as Ctrl-C's flag is read after them: a checkpoint or
    EarlyStopping later in the list saw no epoch the model kept."""
    stop, interrupt = False, None
    for cb in callbacks:
        if hasattr(cb, "on_epoch_end"):
            try:
                stop = bool(cb.on_epoch_end(epoch, logs)) or stop
            except KeyboardInterrupt as exc:
                interrupt = interrupt or exc
    if interrupt is not None:
        raise interrupt
    return stop


class EarlyStopping:
    """Stop when a monitored metric stops improving.

    Parameters
    ----------
    monitor : str, default "val_loss"
        A key of the epoch logs: ``loss``, ``val_loss``, ``val_accuracy``, ``val_r2``.
    patience : int, default 5
        Epochs without improvement that are tolerated: training stops at the
        ``patience + 1``-th in a row (the count of PyTorch's
        ReduceLROnPlateau and scikit-learn's ``n_iter_no_change``; Keras's
        EarlyStopping stops at the ``patience``-th).
    min_delta : float, default 0
        How much an epoch must improve on the best: by more than this (a
        change of exactly ``min_delta`` is none, as in Keras and PyTorch).
    restore_best_weights : bool, default False
        At the end, copy back the parameters of the best epoch (one buffer copy).
    mode : {"auto", "min", "max"}
        Whether lower or higher is better; "auto" takes max for accuracy and r2.

    Attributes
    ----------
    best : float or None
        The best value of the monitored metric so far, as the logs gave it
        (None before one that improves on the worst possible, +inf for
        "min" and -inf for "max": NaNs and infinities of the wrong sign
        never count).
    best_epoch, stopped_epoch, restored_epoch : int or None
        The epoch (0-based, in this fit) of ``best``, the one that stopped
        training, and the one whose weights ``on_train_end`` restored.
    """

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0, restore_best_weights=False,
                 mode="auto"):
        from ._validate import check_bool, check_choice, check_int, check_nonnegative
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a metric name such as 'val_loss'; got {monitor!r}")
        self.monitor = monitor
        self.patience = check_int(patience, "patience", 0)
        self.min_delta = check_nonnegative(min_delta, "min_delta")
        self.restore_best_weights = check_bool(restore_best_weights, "restore_best_weights")
        mode = check_choice(mode, "mode", ("auto", "min", "max"))
        self.sign = -1.0 if mode == "max" or (mode == "auto" and monitor.endswith(("accuracy", "r2"))) \
            else 1.0
        self.best, self.best_epoch, self.stopped_epoch = None, None, None
        self.restored_epoch = None  # the epoch whose weights on_train_end restored
        self._best = math.inf   # best, signed so that lower is better

    def on_train_begin(self, net):
        self._net, self._wait, self.best, self.best_epoch, self.stopped_epoch = net, 0, None, None, None
        self.restored_epoch, self._best = None, math.inf
        self._best_params = np.empty_like(net.params) if self.restore_best_weights else None

    def on_epoch_end(self, epoch, logs):
        if self.monitor not in logs:
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which training does not"
                             f" report; it reports {', '.join(sorted(logs))}")
        value = self.sign * logs[self.monitor]
        # (a NaN is no improvement, as in Keras, whose best starts at inf:
        # taken as the best, no later epoch could improve on it)
        if value < self._best - self.min_delta:
            self._best, self.best, self.best_epoch, self._wait = value, logs[self.monitor], epoch, 0
            if self._best_params is not None:
                self._best_params[:] = self._net.params
            return False
        self._wait += 1
        if self._wait > self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, net):
        if self._best_params is not None and self.best is not None:
            net.params[:] = self._best_params
            self.restored_epoch = self.best_epoch

    def __repr__(self):
        return (f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience},"
                f" best_epoch={self.best_epoch})")


class ModelCheckpoint:
    """Save the model during training with :meth:`MLP.save` (atomic writes).

    Parameters
    ----------
    path : str or path_like
        The file; ``{epoch}`` in its name (not its folder, which must exist)
        is replaced by the 1-based epoch number.
    every : int, default 1
        Save every ``every`` epochs.
    monitor : str, optional
        With a metric name (e.g. ``"val_loss"``), save only when it improves
        (lower is better, or higher for accuracy and r2; a NaN never
        improves, as in Keras); ``every`` is then ignored.
    """

    def __init__(self, path, every=1, monitor=None):
        import os

        from ._validate import check_int
        try:
            self.path = os.fsdecode(os.fspath(path))  # (bytes as save takes them)
        except TypeError:
            raise TypeError(f"path must be a file name (str or os.PathLike), with {{epoch}} for"
                            f" one file per epoch; got {path!r}") from None
        if not self.path:  # ("": the working folder, refused by save after an epoch)
            raise ValueError("path must name a file, with {epoch} for one file per epoch; got ''")
        try:  # a bad placeholder now, not after the first epochs have trained
            self.path.format(epoch=1)
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
            # ({epoch.num} and {epoch[0]}: an int has neither)
            raise ValueError(f"path {self.path!r} must take its epoch as {{epoch}} (and no other"
                             f" placeholder; braces doubled as {{{{ }}}}): {exc!r}") from None
        if os.path.dirname(self.path.format(epoch=1)) != os.path.dirname(self.path.format(epoch=2)):
            # (fit checks the folder before it trains; one per epoch it could not)
            raise ValueError(f"path {self.path!r} may hold {{epoch}} in the file's name only, not"
                             " in its folder: the checkpoints go to one existing folder")
        self.every = check_int(every, "every", 1)
        if monitor is not None and not isinstance(monitor, str):
            raise TypeError(f"monitor must be None or a metric name; got {monitor!r}")
        self.monitor = monitor
        self.sign = -1.0 if monitor and monitor.endswith(("accuracy", "r2")) else 1.0
        self.best = None   # the best value of monitor saved so far, as the logs gave it
        self._best = math.inf   # signed: lower is better
        self.saved = []

    def check_folder(self):
        """Raise FileNotFoundError unless the folder of the checkpoints
        exists, IsADirectoryError where the one file named is a folder, and
        PermissionError (or OSError) where it cannot be written: fit asks
        before it trains, not at the first save."""
        import errno
        import os
        first = self.path.format(epoch=1)
        folder = os.path.dirname(os.path.abspath(first))
        if not os.path.isdir(folder):
            raise FileNotFoundError(errno.ENOENT, f"cannot save checkpoints to {self.path!r}: no"
                                    f" such folder: {folder!r}")
        if first == self.path.format(epoch=2) and os.path.isdir(first):
            raise IsADirectoryError(errno.EISDIR, f"cannot save checkpoints to {self.path!r}: it"
                                    " is a folder; name a file in it, e.g."
                                    f" {os.path.join(self.path, 'model.npz')!r}")
        from ._modelfile import check_folder_takes_files, check_writable
        if first == self.path.format(epoch=2):   # one file: one that may not be written
            check_writable(first, "save checkpoints")
        check_folder_takes_files(first, "save checkpoints", self.path)   # (read-only)

    def on_train_begin(self, net):
        self._net, self._offset = net, len(net.history)

    def on_epoch_end(self, epoch, logs):
        number = self._offset + epoch + 1
        if self.monitor is not None:
            if self.monitor not in logs:
                raise ValueError(f"ModelCheckpoint monitors {self.monitor!r}, which training does"
                                 f" not report; it reports {', '.join(sorted(logs))}")
            value = self.sign * logs[self.monitor]
            # (a NaN is no improvement, as in Keras: taken as the best, it made
            # every later epoch one, and worse models overwrote the best file)
            if not value < self._best:
                return False
            self._best, self.best = value, logs[self.monitor]
        elif number % self.every:
            return False
        path = self.path.format(epoch=number)
        self._net.save(path)
        self.saved.append(path)
        return False
