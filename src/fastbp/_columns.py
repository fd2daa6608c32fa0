"""A network of one hidden layer trained on two threads: its hidden units split.

A small network's batch (a few dozen rows through a few dozen units) is
too little work to split by rows: each piece's products are then too small
for their own BLAS calls, and the pieces' gradients have to be summed. Its
hidden units split instead. Piece p owns units lo .. hi - 1 (h p / P ..
h (p + 1) / P), that is a block of the columns of W_0^T, of the bias b_0
and of the rows of W_1^T (and piece 0 b_1). Each piece's parameters lie
together, each part starting a cache line of its own, in a buffer of the
column layout (:func:`column_offsets`, :func:`column_positions`): where two
threads' parts shared a line, the line went from core to core at every step
(two steps at once on one buffer cost 2.1-2.2 us, on two buffers 1.5-1.6 us).

Each piece runs the whole batch forward through its units, and its part of
the logits (``a_p @ W_1^T[p]``, plus b_1 for piece 0) into its slot of
``zs``; after one barrier every thread sums the parts in order and takes the
loss and the output deltas itself (a batch's few outputs: cheaper than a
second barrier), then each piece's backward pass and optimizer step touch
only its own parameters. So a batch costs one barrier, and no gradient is
summed across threads. ``zs`` and ``values`` are held twice, for a batch and
the next: a thread may write the next batch's part while the other still
reads this one's, never the one after (it would have to pass the next
barrier first). The result is the same, bit for bit, on one thread (both
pieces in turn) and on two, and the plain epoch's up to the rounding of the
two parts' sum.

Two users: :mod:`fastbp._sklearn_kernels` (scikit-learn's conventions,
``epoch_sklearn_t_columns``) and :func:`fastbp.train.run_epochs`
(``fastbp.MLP.fit``: :func:`epoch_columns`, PyTorch's optimizers). The
threads that run them: :class:`Team`.
"""
import contextlib
import functools
import os
import threading

import numba
import numpy as np
from numba.extending import overload

from . import _atomics
from ._arrays import borrowed
from ._atomics import atomic_load, atomic_store, barrier
from ._jit import KERNEL_ONLY, jit, matrix
from ._fastmath import smin
from ._static import JIT_OPTIONS, specialising, static
from ._views import flat_view
from .layout import ACT, B_OFF, N_IN, N_OUT, W_OFF
from .network import (_act, _all_finite, _batch, _bias, _capacity,
                      _delta, _epoch_loss, _logits, _no_l2, _order, _output_layer_act, _outputs, _rows,
                      _sum_squares, _weight)
from .ops import _loss_backward, _loss_forward, act_grad, bias_act, bias_grad, bias_sgd, \
    gemm, outputs_for_loss
from .optim import LR, _optimizer_step
from .threads import TrainingThreads

PIECES = 2         # the hidden units' pieces (and the most threads that run them)
LINE = 64          # bytes of a cache line
COLUMN_UNITS = 32  # the least hidden units split (see fastbp.sklearn and fastbp.train)
COLUMN_ROWS = 128  # the batches split: fewer rows than this

# sync's slot (on the line of the barrier's stop flag, fastbp._atomics) for
# the step count before the epoch that thread 0 opens: the helpers read it
# after the gate.
EPOCH_T = 3


@jit(inline="always")
def units(h, piece, pieces):
    """The hidden units of a piece: lo, hi."""
    return h * piece // pieces, h * (piece + 1) // pieces


@jit(inline="always")
def sum_parts(z, zs, par, count):
    """``z[:count]``: the pieces' parts of the logits in ``zs[par]``, summed
    in order (the same bits on any number of threads)."""
    part = zs[par, 0]
    for e in range(count):
        z[e] = part[e]
    for piece in range(1, zs.shape[1]):
        part = zs[par, piece]
        for e in range(count):
            z[e] += part[e]


@jit(inline="always")
def forward_pieces(pc, ws, plan, cap, xb, nb, parts, offs, thread, threads, hidden):
    """This thread's pieces forward: each piece's hidden activations (its
    units' block of ``ws``'s, ``(nb, hi - lo)`` from ``nb lo``) and its part
    of the logits into ``parts[piece]`` (b_1 added to piece 0's); returns the
    hidden block, flat. ``hidden`` as in :func:`fastbp.network._forward`."""
    pieces = offs.shape[0]
    k, h, m = plan[0, N_IN], plan[0, N_OUT], plan[1, N_OUT]
    hid = flat_view(_act(ws, plan, cap, 0, nb))
    for piece in range(thread, pieces, threads):
        lo, hi = units(h, piece, pieces)
        u, ow0, ob0, ow1 = hi - lo, offs[piece, 0], offs[piece, 1], offs[piece, 2]
        a = matrix(hid, nb * lo, nb, u)
        gemm(a, xb, matrix(pc, ow0, k, u), False, False, 1.0, 0.0)
        bias_act(a, pc[ob0:ob0 + u], hidden, plan[0, ACT])
        z = matrix(parts[piece], 0, nb, m)
        gemm(z, a, matrix(pc, ow1, u, m), False, False, 1.0, 0.0)
        if piece == 0:
            _output_layer_act(z, pc[offs[0, 3]:offs[0, 3] + m], hidden, plan[1, ACT])
    return hid


@jit(inline="always")
def piece_squares(pc, plan, offs, piece):
    """The sum of the squares of a piece's weights (its blocks of W_0^T and
    W_1^T), in float64 (:func:`squares`)."""
    k, h, m = plan[0, N_IN], plan[0, N_OUT], plan[1, N_OUT]
    lo, hi = units(h, piece, offs.shape[0])
    ow0, ow1 = offs[piece, 0], offs[piece, 2]
    return squares(pc[ow0:ow0 + k * (hi - lo)]) + squares(pc[ow1:ow1 + (hi - lo) * m])


@jit(fastmath={"reassoc"})
def squares(v):
    """sum v^2 in float64, the additions free to reorder: a vectorised
    reduction (network._sum_squares), the same bits for the same values on
    any thread. With four partial sums (one value a cycle) in the column
    split's loss, every batch over 3,750 weights a piece, the digits' sgd
    fits of fastbp.sklearn took 3 % longer (one thread 50.0-50.4 against
    48.4-48.8 ms, two 33.3-34.5 against 32.6-32.8 ms)."""
    return _sum_squares(v)


@jit(inline="always")
def piece_deltas(pc, pw, hid, deltas, d, plan, offs, piece, nb, hidden):
    """A piece's hidden activations ``a`` and deltas ``dp = (d @ W_1[:, lo:hi])
    f'(a)``, the product an NN one on a copy of its block of W_1 in ``pw``
    (into its units' block of the flat ``deltas``); returns a, dp."""
    h, m = plan[0, N_OUT], plan[1, N_OUT]
    lo, hi = units(h, piece, offs.shape[0])
    u = hi - lo
    R = matrix(pc, offs[piece, 2], u, m)
    W = matrix(pw, 0, m, u)  # W_1's columns lo .. hi - 1
    for r in range(m):
        for c in range(u):
            W[r, c] = R[c, r]
    a, dp = matrix(hid, nb * lo, nb, u), matrix(deltas, nb * lo, nb, u)
    gemm(dp, d, W, False, False, 1.0, 0.0)
    act_grad(dp, a, hidden, plan[0, ACT])
    return a, dp


def column_offsets(plan, pieces, itemsize):
    """The column layout of a network of one hidden layer (plan of two
    rows) in ``pieces`` pieces: an int64 array ``(pieces, 4)``, piece p's
    offsets of its block of W_0^T ``(n_in, hi - lo)``, of b_0[lo:hi], of its
    rows of W_1^T ``(hi - lo, n_out)`` and of b_1 (-1 but for piece 0), each
    a multiple of a cache line; and the buffer's size (a multiple too).
    Piece p's parts lie in that order from ``offs[p, 0]`` to the next
    piece's (or the end): one span, whose gaps stay zero."""
    k, h, m = int(plan[0, N_IN]), int(plan[0, N_OUT]), int(plan[1, N_OUT])
    align = max(LINE // itemsize, 1)
    offs = np.full((pieces, 4), -1, dtype=np.int64)
    at = 0
    for p in range(pieces):
        lo, hi = h * p // pieces, h * (p + 1) // pieces
        for part, size in enumerate((k * (hi - lo), hi - lo, (hi - lo) * m, m if p == 0 else 0)):
            if size:
                offs[p, part] = at
                at += -(-size // align) * align
    return offs, at


def column_positions(plan, offs):
    """Where each parameter lies in the column layout of ``offs``
    (:func:`column_offsets`): an int64 array ``where`` of fastbp's flat
    layout's length, so that the layout's buffer holds ``cols[where] =
    flat`` (:func:`to_columns`) and ``flat = cols[where]``
    (:func:`from_columns`). NumPy's indexing, no kernel to compile: 2-3 us
    each way for 2,410 parameters."""
    k, h, m = int(plan[0, N_IN]), int(plan[0, N_OUT]), int(plan[1, N_OUT])
    w0, b0, w1, b1 = (int(plan[l, c]) for l, c in ((0, W_OFF), (0, B_OFF), (1, W_OFF), (1, B_OFF)))
    where = np.empty(b1 + m, dtype=np.int64)
    pieces, c = offs.shape[0], np.arange(m)
    for p in range(pieces):
        lo, hi = h * p // pieces, h * (p + 1) // pieces
        j, i = np.arange(hi - lo)[:, None], np.arange(k)[None, :]
        where[w0 + (lo + j) * k + i] = offs[p, 0] + i * (hi - lo) + j   # W_0[lo + j, i]
        where[b0 + lo + j[:, 0]] = offs[p, 1] + j[:, 0]
        where[w1 + c[None, :] * h + lo + j] = offs[p, 2] + j * m + c[None, :]   # W_1[c, lo + j]
    where[b1 + c] = offs[0, 3] + c
    return where


def to_columns(cols, flat, where):
    """``flat`` (fastbp's layout) into ``cols`` (the column layout of
    ``where``: :func:`column_positions`), the gaps zero."""
    cols[...] = 0
    cols[where] = flat


def from_columns(flat, cols, where):
    """:func:`to_columns` back: ``flat = cols[where]``."""
    np.take(cols, where, out=flat)


def piece_spans(offs, size):
    """Each piece's span of the column layout, ``[(start, end), ...]``: its
    parts, in order, from ``offs[p, 0]`` to the next piece's start."""
    starts = [int(s) for s in offs[:, 0]] + [size]
    return list(zip(starts[:-1], starts[1:]))


def state_positions(where, offs, size):
    """:func:`column_positions` for the optimizer state's two rows in
    :func:`epoch_columns`'s ``sc``: each piece's span's two rows one after
    the other, from twice its start. ``(2, n_params)``."""
    out = np.empty((2, where.size), dtype=np.int64)
    for lo, hi in piece_spans(offs, size):
        mine = (where >= lo) & (where < hi)
        for r in range(2):
            out[r, mine] = 2 * lo + r * (hi - lo) + where[mine] - lo
    return out


def aligned(shape, dtype):
    """Zeros of this shape and dtype starting on a cache line."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.zeros(nbytes + LINE, dtype=np.uint8)
    start = -raw.ctypes.data % LINE
    return raw[start:start + nbytes].view(dtype).reshape(shape)


class Team:
    """The threads of a split epoch kernel: the calling one, one epoch a
    call, and helper threads that, once started, run every epoch with
    several threads until :meth:`close`, each waiting at the kernel's gate
    (a barrier on :attr:`sync`) for the next.

    ``threads`` is how many threads the epochs run on: a number, or a
    :class:`fastbp.threads.TrainingThreads`, asked before each epoch (a fit
    may start on one thread and take a second later); :attr:`most` threads
    at most.
    """

    def __init__(self, threads):
        if isinstance(threads, TrainingThreads):
            self._threads, self.most = threads, threads.pieces
        else:
            self._threads, self.most = (lambda: threads), threads
        self.sync = np.zeros(_atomics.SYNC_SIZE, dtype=np.int64)
        self._helpers, self._errors, self._key, self._here = [], [], None, None
        self._pid = None   # the process the helpers run in

    def __call__(self, key, run, t, prepare=None, alone=False):
        """Thread 0's call ``run(0, n, t, sync)`` on ``n`` threads (one with
        ``alone``); the helpers' (started by the first call on several)
        are ``run(i, n, 0, sync)``. ``key`` holds what the helpers' calls
        were made with (arrays compared by identity, the rest by value): a
        call with another key stops the helpers first. ``prepare()`` runs
        before helpers start (to compile the kernel on this thread:
        compiled on a helper thread while this one waited, a cold first fit
        took 0.5 s longer)."""
        if self._helpers and self._pid != os.getpid():
            # A child forked by os.fork() in a callback goes on with the
            # fit, but the helpers live in the parent only: the next epoch
            # waited for them at its gate for ever. New ones here.
            self._helpers, self.sync = [], np.zeros_like(self.sync)
        n = 1 if alone else self._threads()
        if n == 1:   # (helpers, if any, wait at their gate meanwhile)
            return run(0, 1, t, np.zeros(_atomics.SYNC_SIZE, dtype=np.int64))
        if self._helpers and not _same((n, *key), self._key):
            self.close()  # (not how a fit calls it: the same arrays every epoch)

        def guarded(i, t, sync):
            try:
                return run(i, n, t, sync)
            except BaseException:
                _atomics.stop(sync)  # the others return instead of waiting for this one
                raise

        def helper(i, sync, cpu):
            try:
                if cpu is not None:
                    os.sched_setaffinity(0, {cpu})   # (this thread's own)
                guarded(i, 0, sync)
            except BaseException as exc:  # raised by close(), in the fitting thread
                self._errors.append(exc)
        if not self._helpers:
            if prepare is not None:
                prepare()
            self._key, self._pid = (n, *key), os.getpid()
            self._here, cpus = _placement(n - 1)
            # Daemon threads, so that a helper that never returned could not
            # hold the interpreter open at exit.
            self._helpers = [threading.Thread(target=helper, args=(i, self.sync, cpus[i - 1]),
                                              daemon=True, name=f"fastbp-train-{i}")
                             for i in range(1, n)]
            for thread in self._helpers:
                thread.start()
        try:
            with _on_cpu(self._here):
                return guarded(0, t, self.sync)
        except BaseException:
            self.close()
            raise

    def close(self):
        """Stop the helpers (they wait for the next epoch) and wait for them;
        raise a helper's error, if one failed."""
        helpers, self._helpers = self._helpers, []
        if not helpers:
            return
        sync, self.sync = self.sync, np.zeros_like(self.sync)  # the next helpers' own
        _atomics.stop(sync)  # set for good in theirs, even if this wait is interrupted
        for thread in helpers:
            thread.join()
        errors, self._errors = self._errors, []
        if errors:
            raise errors[0]


def _placement(count):
    """``(here, cpus)``: the CPU this thread runs on and ``count`` others
    for helper threads, from those the process may use (Linux); ``(None,
    [None, ...])`` elsewhere, or where there are too few. Each helper keeps
    its CPU for the fit; this thread keeps ``here`` while it runs an epoch
    with them (:func:`_on_cpu`). Two threads that wait for each other at
    every batch, each spinning while the other runs, otherwise shared one
    CPU for up to 250 ms of a fit (9 us a batch instead of 4, 64-32-10
    float32) before the scheduler moved one, most often after the machine
    had been idle; with the helper alone placed, too."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
        with open("/proc/thread-self/stat", "rb") as f:
            here = int(f.read().rsplit(b")", 1)[1].split()[36])   # field 39, processor
    except (AttributeError, OSError, ValueError, IndexError):
        return None, [None] * count
    others = [cpu for cpu in allowed if cpu != here]
    if here not in allowed or len(others) < count:
        return None, [None] * count
    return here, others[:count]


@contextlib.contextmanager
def _on_cpu(cpu):
    """This thread on ``cpu`` for the block (nothing with None), then on
    the CPUs it had (also on an exception): only while it runs a kernel,
    so threads and processes it starts elsewhere inherit its own mask."""
    if cpu is None:
        yield
        return
    mask = os.sched_getaffinity(0)
    if cpu not in mask:   # (changed meanwhile: left as it is)
        yield
        return
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, mask)


def _same(a, b):
    return len(a) == len(b) and all(
        x is y if isinstance(x, np.ndarray) or isinstance(y, np.ndarray) else x == y
        for x, y in zip(a, b))


# The least an epoch, and a whole fit, of MLP.fit that split. Each epoch
# moves the parameters and the optimizer's state into the column layout and
# back and calls a kernel of more arguments (6-8 us more an epoch with
# plain SGD, 25 us with Adam: 64-32-10 float64, epochs of two batches); each
# fit starts, places and stops a helper thread (0.7 ms more a fit of
# 64-32-10 float32, whose one epoch of 16 batches took 0.35 ms). The split
# gains 1.5 us a batch there (float32, the least: 5.4 against 3.9 us), 2-5
# us with float64, Adam or more units, and in proportion to the products
# on larger layers. 64-32-10 float32, 1,024 rows of 32 a batch (2026-12-05,
# alternating with the code before, two turns): 64 epochs 11.7-12.0 -> 10.9-11.1
# ms, 128 epochs 23.0-23.1 -> 20.1-21.1 ms; at 16 batches an epoch the split
# lost (64 epochs: 6.7 against 7.1 ms). So: MIN_STEPS batches an epoch, and
# a fit's forward products of MIN_FIT_MACS multiply-adds, those of 2,048
# batches of 32 rows of 64-32-10.
MIN_STEPS = 32
MIN_FIT_MACS = 2048 * 32 * 32 * (64 + 10)


def splits(sizes, batch_size, steps, epochs, dropout=False):
    """Whether ``fastbp.MLP.fit`` trains a network of these ``sizes`` in
    ``epochs`` epochs of ``steps`` batches of ``batch_size`` rows (dense,
    unweighted) with its hidden units split: one hidden layer of at least
    COLUMN_UNITS units, no dropout, batches under COLUMN_ROWS rows, at
    least MIN_STEPS of them an epoch and MIN_FIT_MACS multiply-adds of
    forward products in all, where threads can run kernels."""
    if not (_atomics.AVAILABLE and len(sizes) == 3 and sizes[1] >= COLUMN_UNITS
            and batch_size < COLUMN_ROWS and steps >= MIN_STEPS and not dropout):
        return False
    return epochs * steps * batch_size * sizes[1] * (sizes[0] + sizes[2]) >= MIN_FIT_MACS


@jit
def epoch_columns(thread, threads, sync, values, pc, gc, sc, ws, plan, X, Y, perm, rng,
                  batch_size, shuffled, loss, code, hyper, t0, reg, max_steps, check_every_step,
                  hidden, l2, fused, pw, zs, offs):
    """:func:`fastbp.network.epoch_sgd` (``fused`` the constant 1) or
    :func:`fastbp.network.epoch_optimizer` (0) of a network of one hidden
    layer on dense rows (``hidden`` and ``l2`` as in those kernels), its
    hidden units in ``offs.shape[0]`` pieces (the
    module's notes), run by ``threads`` threads at once: each calls this with
    its ``thread`` (0 .. threads - 1), the same sync (int64 zeros,
    :mod:`fastbp._atomics`), values (float64, ``2 pieces + 1``), pc, gc and sc
    (the parameters, their gradient and the optimizer's state in the column
    layout of ``offs``: pc and gc by :func:`to_columns`, sc piece by
    piece, each piece's span's two state rows one after the other, from
    twice its start (:func:`state_positions`); gc and sc empty with ``fused``), plan, data, perm, rng,
    zs (``(2, pieces, r)``, the model's dtype, r at least ``batch_size
    n_out``) and offs, and its own ws (room for ``batch_size`` rows) and pw
    (``(hi - lo) n_out`` values at least).

    Thread 0's call is one epoch (from step ``t0``; it orders perm, as the
    plain kernels do); the others' run every epoch that thread 0 opens
    (each waits at a gate, a barrier, for the next; ``t0`` comes through
    ``sync``) until a thread sets the stop flag (``fastbp._atomics.stop``).
    The arrays must stay the same between epochs (their contents may
    change between thread 0's calls). ``check_every_step`` needs
    ``threads == 1``.

    Returns what the plain kernels return (thread 0's; the others return
    (nan, 0) when stopped), but for an epoch that diverges on several
    threads: it runs to its end and returns NaN (only the last thread
    computes the loss's value, so no thread stops at a batch the others
    take), and the caller replays it on one thread, which stops before the
    first bad update as the plain kernels do (:func:`fastbp.train.run_epochs`'s
    rollback; the same bits on one thread as on several)."""
    if thread == 0:
        _order(perm, rng, _rows(X), shuffled)
        if threads > 1:
            atomic_store(sync, EPOCH_T, t0)
    while True:
        if threads > 1 and not barrier(sync, threads, thread):  # the gate of the epoch
            return np.nan, 0
        result = _column_epoch(pc, gc, sc, thread, threads, sync, values, ws, plan, X, Y, perm,
                               batch_size, shuffled, loss, code, hyper,
                               t0 if thread == 0 else atomic_load(sync, EPOCH_T), reg, max_steps,
                               check_every_step, hidden, l2, fused, pw, zs, offs)
        if thread == 0:
            return result


@jit(**KERNEL_ONLY)  # called by kernels only (through _column_epoch): no machine code of its own
def column_epoch(pc, gc, sc, thread, threads, sync, values, ws, plan, X, Y, perm, batch_size,
                 shuffled, loss, code, hyper, t0, reg, max_steps, check_every_step, hidden, l2,
                 fused, pw, zs, offs):
    # One epoch of epoch_columns for this thread (with ``fused`` a constant:
    # _column_epoch compiles only its branch).
    pc, gc, sc, sync, values, ws, plan, X, Y, perm, pw, zs, offs = \
        borrowed((pc, gc, sc, sync, values, ws, plan, X, Y, perm, pw, zs, offs))
    n = _rows(X)
    cap = _capacity(ws, plan)
    pieces = offs.shape[0]
    k, h, m = plan[0, N_IN], plan[0, N_OUT], plan[1, N_OUT]
    ob1 = offs[0, 3]
    lr, alpha = hyper[LR], reg[0]
    total, seen, steps = 0.0, 0, 0
    for start in range(0, n, batch_size):
        if steps == max_steps:
            break
        nb = smin(batch_size, n - start)
        par = steps & 1
        xb, yb = _batch(ws, plan, cap, X, Y, perm, start, nb, shuffled)
        hid = forward_pieces(pc, ws, plan, cap, xb, nb, zs[par], offs, thread, threads, hidden)
        if alpha != 0:  # the L2 term's sum over each piece's weights (before its step)
            for piece in range(thread, pieces, threads):
                _piece_squares_if(values, par * pieces + piece, pc, plan, offs, piece, l2)
        if threads > 1 and not barrier(sync, threads, thread):
            return np.nan, steps
        # Every thread: the logits, the outputs, the loss and its deltas.
        zl = _logits(ws, plan, nb)
        sum_parts(flat_view(zl), zs, par, nb * m)
        out = _outputs(ws, plan, cap, nb)
        outputs_for_loss(out, zl, loss)
        if thread == threads - 1:  # the loss's value: the last thread's (thread 0 has b_1)
            value = _loss_forward(zl, out, yb, loss) * nb
            if alpha != 0:
                squares = 0.0
                for piece in range(pieces):
                    squares += values[par * pieces + piece]
                value += 0.5 * alpha * squares
            # On one thread, as the plain kernels: stop before the update.
            # On several, the epoch runs on and returns NaN; the rollback
            # that follows replays it on one thread (the same bits).
            if threads == 1 and not np.isfinite(value):
                return np.nan, steps
            total += value
        seen += nb
        steps += 1
        d = _delta(ws, plan, cap, 1, nb)
        _loss_backward(d, out, yb, loss)
        deltas = flat_view(_delta(ws, plan, cap, 0, nb))
        coef = alpha / nb
        for piece in range(thread, pieces, threads):
            lo, hi = units(h, piece, pieces)
            u, ow0, ob0, ow1 = hi - lo, offs[piece, 0], offs[piece, 1], offs[piece, 2]
            a, dp = piece_deltas(pc, pw, hid, deltas, d, plan, offs, piece, nb, hidden)
            R, B = matrix(pc, ow1, u, m), matrix(pc, ow0, k, u)
            if fused:  # W <- (1 - lr alpha / nb) W - lr dW, b <- b - lr db
                decay = 1.0 - lr * coef
                gemm(R, a, d, True, False, -lr, decay)
                gemm(B, xb, dp, True, False, -lr, decay)
                bias_sgd(pc[ob0:ob0 + u], dp, lr)
                if piece == 0:
                    bias_sgd(pc[ob1:ob1 + m], d, lr)
            else:
                gemm(matrix(gc, ow1, u, m), a, d, True, False, 1.0, 0.0)
                gemm(matrix(gc, ow0, k, u), xb, dp, True, False, 1.0, 0.0)
                bias_grad(gc[ob0:ob0 + u], dp)
                if piece == 0:
                    bias_grad(gc[ob1:ob1 + m], d)
                if alpha != 0:
                    _weight_decay_if(gc, pc, plan, offs, piece, coef, l2)
                lo_s = offs[piece, 0]
                hi_s = offs[piece + 1, 0] if piece + 1 < pieces else pc.size
                _optimizer_step(pc[lo_s:hi_s], gc[lo_s:hi_s],
                                matrix(sc, 2 * lo_s, 2, hi_s - lo_s), hyper, code, t0 + steps)
        if check_every_step and not _all_finite(pc):  # (one thread: threads == 1)
            return np.nan, steps
    if thread == threads - 1:
        values[2 * pieces] = total
    if threads > 1 and not barrier(sync, threads, thread):  # every piece's last step taken
        return np.nan, steps
    return _epoch_loss(pc, values[2 * pieces], seen), steps


_column_epoch = specialising(column_epoch, "fused", "column_epoch for epoch_columns: with a"
                             " constant ``fused``, only its branch (see fastbp._static).")


def _piece_squares_if(values, at, pc, plan, offs, piece, l2):
    """``values[at] =`` :func:`piece_squares`, or nothing, without compiling
    it, when ``l2`` is static(NO_L2) (:mod:`fastbp.network`)."""


@overload(_piece_squares_if, inline="always", prefer_literal=True, jit_options=JIT_OPTIONS)
def _piece_squares_if_typed(values, at, pc, plan, offs, piece, l2):
    def without(values, at, pc, plan, offs, piece, l2):
        pass

    def with_l2(values, at, pc, plan, offs, piece, l2):
        values[at] = piece_squares(pc, plan, offs, piece)
    return without if _no_l2(l2) else with_l2


def _weight_decay_if(g, p, plan, offs, piece, coef, l2):
    """The L2 term's gradient, ``coef`` times a piece's weights, into ``g``;
    nothing, without compiling it, when ``l2`` is static(NO_L2)."""


@overload(_weight_decay_if, inline="always", prefer_literal=True, jit_options=JIT_OPTIONS)
def _weight_decay_if_typed(g, p, plan, offs, piece, coef, l2):
    def without(g, p, plan, offs, piece, coef, l2):
        pass

    def with_l2(g, p, plan, offs, piece, coef, l2):
        k, h, m = plan[0, N_IN], plan[0, N_OUT], plan[1, N_OUT]
        lo, hi = units(h, piece, offs.shape[0])
        c = p.dtype.type(coef)
        for start, size in ((offs[piece, 0], k * (hi - lo)), (offs[piece, 2], (hi - lo) * m)):
            gs, ps = g[start:start + size], p[start:start + size]
            for i in range(size):   # (from 0: no wraparound checks, network.add_penalty_gradient)
                gs[i] += c * ps[i]
    return without if _no_l2(l2) else with_l2


_compiled = set()   # the kinds of fit whose epoch_columns is compiled (ColumnEpochs)


@functools.lru_cache(maxsize=16)
def _layout(itemsize, plan_bytes):
    # The column layout of the network of this plan (its bytes): offs, size,
    # where and the state's places (read-only; column_positions took 65 us a fit).
    plan = np.frombuffer(plan_bytes, dtype=np.int64).reshape(2, -1)
    offs, size = column_offsets(plan, PIECES, itemsize)
    where = column_positions(plan, offs)
    state_where = state_positions(where, offs, size)
    for a in (offs, where, state_where):
        a.setflags(write=False)
    return offs, size, where, state_where


class ColumnEpochs:
    """The epoch kernel of a fit whose network splits (:func:`splits`),
    called as the plain kernels are (:func:`fastbp.train.run_epochs`):
    each call moves the parameters and the optimizer's state into the
    column layout, runs :func:`epoch_columns` on ``threads`` threads (a
    number, or asked each epoch as :class:`Team` does; one with
    ``check_every_step``) and moves them back, also on an exception,
    so that between epochs the model holds them as ever (for callbacks,
    validation, a rollback). The column layout's buffers, the workspaces
    and the helper threads (:class:`Team`) last from the first call to
    :meth:`close`."""

    def __init__(self, net, fused, batch_size, threads):
        dtype, m = net.dtype, net.sizes[-1]
        self.plan = net.plan
        self.offs, size, self.where, state_where = _layout(
            dtype.itemsize, np.ascontiguousarray(net.plan, dtype=np.int64).tobytes())
        self.fused = static(1 if fused else 0)
        self.pc = aligned(size, dtype)
        none = np.zeros(0, dtype=dtype)
        self.gc = none if fused else aligned(size, dtype)
        self.sc = none if fused else aligned(2 * size, dtype)
        self.state_where = None if fused else state_where
        line = LINE // dtype.itemsize
        self.zs = aligned((2, PIECES, -(-batch_size * m // line) * line), dtype)
        self.values = np.zeros(2 * PIECES + 1)
        self.team = Team(threads)
        most = self.team.most
        self.ws = [net._workspace(batch_size)] + [net.workspace(batch_size)
                                                  for _ in range(1, most)]
        width = -(-net.sizes[1] // PIECES) * m
        self.pw = [aligned(-(-width // line) * line, dtype) for _ in range(most)]

    def __call__(self, params, state, X, Y, perm, rng, batch_size, shuffled, loss, code, hyper,
                 t0, reg, max_steps, check_every_step, hidden, l2):
        plan, offs = self.plan, self.offs
        to_columns(self.pc, params, self.where)
        if self.sc.size:   # (the gaps are never written: zero from the start)
            for r in range(2):
                self.sc[self.state_where[r]] = state[r]

        def args(i, threads, t, sync):
            return (i, threads, sync, self.values, self.pc, self.gc, self.sc, self.ws[i], plan, X,
                    Y, perm, rng, batch_size, shuffled, loss, code, hyper, t, reg, max_steps,
                    check_every_step, hidden, l2, self.fused, self.pw[i], self.zs, offs)

        def run(i, threads, t, sync):
            return epoch_columns(*args(i, threads, t, sync))

        def compile_here():  # (once a process for each kind of fit: typing the arguments takes
            key = (self.pc.dtype, X.dtype, Y.dtype, Y.ndim, shuffled, loss, code, hidden, l2,
                   self.fused)   # 0.25 ms, what the rest of the types are fixed by)
            if key not in _compiled:
                epoch_columns.compile(tuple(numba.typeof(a) for a in args(0, 2, t0, self.team.sync)))
                _compiled.add(key)
        try:
            return self.team((X, Y, perm, rng, hyper, reg, batch_size, shuffled, loss, code,
                              max_steps, hidden, l2), run, t0, compile_here,
                             alone=check_every_step)
        finally:
            from_columns(params, self.pc, self.where)
            for r in range(2 if self.sc.size else 0):
                from_columns(state[r], self.sc, self.state_where[r])

    def close(self):
        """Stop the helper threads (:meth:`Team.close`)."""
        self.team.close()
