"""Sample-weighted training kernels: the weighted twins of :mod:`fastbp.network`'s
epoch, loss and gradient kernels, compiled only by a fit that has weights.

scikit-learn's MLP convention (``sklearn/neural_network/_multilayer_perceptron.py``,
``_backprop``): a batch B's loss is the weighted mean of its rows' losses
plus the L2 term over the batch's weight sum,

    E_B = sum_{i in B} w_i L_i / W_B  +  alpha / (2 W_B) * sum |W|^2,    W_B = sum_{i in B} w_i,

where L_i is row i's loss as fastbp defines it (cross-entropy of the row;
the mean over the row's outputs for the others), so all-ones weights give
fastbp's unweighted loss. Its gradient is backpropagation from output
deltas scaled row by row: row i's delta times ``w_i nb / W_B`` (nb rows),
the L2 coefficient ``alpha / W_B``. The epoch's reported loss is the mean
of the batch losses weighted by batch size (scikit-learn's ``loss_``);
full batch, it is the weighted objective itself. A batch whose weights sum
to zero contributes zero loss and a zero gradient (no L2 term either); the
optimizer still takes its step (momentum and Adam move on).

Every product keeps the unweighted kernels' order of operations, and with
all-ones weights each scale factor is exactly 1.0, so such a fit is bit for
bit the unweighted fit. The weights are float64 (n,), gathered per batch
into ``wbuf`` (float64, >= batch size) by the epoch's permutation, as X and
Y are. Nothing here checks its arguments: the model validates once.
"""
import math

import numpy as np

from ._arrays import borrowed
from ._fastmath import smax, smin
from ._jit import KERNEL_ONLY, jit
from ._static import specialising
from ._validate import HUGE_WEIGHTS
from .network import (DROPOUT_SGD, DROPOUT_STEP, EVERY_PATH, RUNTIME, _act, _batch,
                      _chunk_targets, _delta, _any_dropped, _dropped, _epoch_loss, _first_backward,
                      _first_backward_sgd, _first_layer_backward, _forward,
                      _forward_batch, _forward_dropout,
                      _layer_backward, _logits, _mask, _order, _outputs, _rows, _rows_of, _weight,
                      _add_penalty_gradient_if, _penalty_if, _prefetch_next, _all_finite, _bias,
                      capacity)
from .ops import CROSS_ENTROPY, IDENTITY, _dense_backward, _dense_backward_sgd, \
    _elementwise_sum, _loss_backward, dropout_backward, cross_entropy_label_row, \
    cross_entropy_target_row
from .optim import LR, _optimizer_step, is_plain_sgd
from .layout import ACT


@jit(**KERNEL_ONLY)
def weighted_loss_forward(z, out, y, loss, wb, w):
    """:func:`fastbp.ops.loss_forward` with row weights: ``sum_i wb[i] L_i / w``
    (``w`` the weights' sum; 0 when ``w`` is 0), each row's term in the
    unweighted kernel's order, times its weight; for cross-entropy, the rows
    of weight 1 whose targets are labels or sum to 1 gather their log1p terms
    as that kernel does, so weights of ones give its very bits."""
    n, m = z.shape
    total = 0.0
    if w == 0:
        return total
    # Weights past HUGE_WEIGHTS, 2**500 (kept as given where alpha > 0: the L2 term is over
    # their sum) are taken times the power of two that brings their sum to
    # [0.5, 1), which scales every term and the sum exactly: sum w_i L_i,
    # or w m, overflowed where the weighted mean is a float (weights of
    # 2.5e299 gave inf, 4.4e307 a loss of 1.8e-312 for 0.33).
    scale = 1.0
    if w > HUGE_WEIGHTS:
        scale = math.ldexp(1.0, -math.frexp(w)[1])
        w *= scale
    q = 0.0  # the log1p terms of the rows of weight 1 (fastbp.ops.gather_log1p)
    for i in range(n):
        c = wb[i] * scale
        if c == 0:   # (a row that counts for nothing: its loss may overflow, and 0 inf is NaN)
            continue
        if loss == CROSS_ENTROPY:
            if y.ndim == 1:
                total, q = cross_entropy_label_row(total, q, z, out, np.int64(y[i]), i, c)
            else:
                total, q = cross_entropy_target_row(total, q, z, out, y[i], i, c)
        elif y.ndim == 2:
            total = _elementwise_sum(total, z[i], y[i], loss, c)
    if loss == CROSS_ENTROPY:
        total += np.log1p(q)
    return total / w if loss == CROSS_ENTROPY else total / (w * m)


@jit(inline="always")
def _gather_weights(wbuf, sw, perm, start, nb):
    # The batch's weights wbuf[:nb] = sw[perm[start:start + nb]], and their
    # sum; the next batch's asked for, as its rows are (network._prefetch_next).
    w = 0.0
    for i in range(nb):
        wbuf[i] = sw[perm[start + i]]
        w += wbuf[i]
    _prefetch_next(sw, perm, start + nb, nb)
    return wbuf[:nb], w


@jit(inline="always")
def _weighted_deltas(ws, plan, cap, nb, y, loss, wb, r):
    # The output deltas of the mean loss, row i's scaled by wb[i] * r.
    d = _delta(ws, plan, cap, plan.shape[0] - 1, nb)
    _loss_backward(d, _outputs(ws, plan, cap, nb), y, loss)
    for i in range(nb):
        c = d.dtype.type(wb[i] * r)
        for j in range(d.shape[1]):
            d[i, j] *= c


@jit(**KERNEL_ONLY)
def _backward_sgd_weighted(params, ws, plan, x, y, loss, lr, decay, wb, r, hidden):
    # network._backward_sgd_h (the fused SGD step) from the weighted deltas.
    cap = capacity(ws, plan)
    nb = _rows(x)
    last = plan.shape[0] - 1
    _weighted_deltas(ws, plan, cap, nb, y, loss, wb, r)
    for l in range(last, 0, -1):
        _dense_backward_sgd(_delta(ws, plan, cap, l - 1, nb), _weight(params, plan, l),
                            _bias(params, plan, l), _delta(ws, plan, cap, l, nb),
                            _act(ws, plan, cap, l - 1, nb), hidden, plan[l - 1, ACT], lr, decay)
    _first_backward_sgd(ws, params, plan, cap, nb, x, lr, decay)


@jit
def epoch_weighted_sgd(params, grads, state, ws, plan, X, Y, sw, wbuf, perm, rng, batch_size,
                       shuffled, loss, code, hyper, t0, reg, max_steps, check_every_step, hidden,
                       l2):
    """:func:`epoch_weighted` for plain SGD without dropout (the L2 penalty
    is allowed), as :func:`fastbp.network.epoch_sgd`: the update fused into
    backpropagation, no optimizer and no dropout compiled."""
    params, grads, state, ws, plan, X, Y, sw, wbuf, perm = \
        borrowed((params, grads, state, ws, plan, X, Y, sw, wbuf, perm))
    n = _rows(X)
    cap = capacity(ws, plan)
    _order(perm, rng, n, shuffled)
    lr, alpha = hyper[LR], reg[0]
    total, seen, steps = 0.0, 0, 0
    for start in range(0, n, batch_size):
        if steps == max_steps:
            break
        nb = smin(batch_size, n - start)
        xb, yb = _batch(ws, plan, cap, X, Y, perm, start, nb, shuffled)
        wb, w = _gather_weights(wbuf, sw, perm, start, nb)
        r = nb / w if w > 0 else 0.0
        out = _forward(params, ws, plan, xb, loss, hidden, False)
        value = weighted_loss_forward(_logits(ws, plan, nb), out, yb, loss, wb, w) * nb
        if alpha != 0:
            value += 0.5 * alpha * _penalty_if(params, plan, l2) * r
        if not np.isfinite(value):
            return np.nan, steps
        total += value
        seen += nb
        steps += 1
        _backward_sgd_weighted(params, ws, plan, xb, yb, loss, lr, 1.0 - lr * (alpha * r / nb),
                               wb, r, hidden)
        if check_every_step and not _all_finite(params):
            return np.nan, steps
    return _epoch_loss(params, total, seen), steps


@jit(**KERNEL_ONLY)
def _backward_batch_weighted(grads, params, ws, plan, x, y, loss, wb, r, hidden):
    # network._backward_batch_h (the gradient into grads) from the weighted deltas.
    cap = capacity(ws, plan)
    nb = _rows(x)
    last = plan.shape[0] - 1
    _weighted_deltas(ws, plan, cap, nb, y, loss, wb, r)
    for l in range(last, 0, -1):
        _dense_backward(_delta(ws, plan, cap, l - 1, nb), _weight(grads, plan, l), _bias(grads, plan, l),
                        _delta(ws, plan, cap, l, nb), _act(ws, plan, cap, l - 1, nb),
                        _weight(params, plan, l), hidden, plan[l - 1, ACT])
    _first_backward(grads, params, ws, plan, cap, nb, x)


@jit
def epoch_weighted_optimizer(params, grads, state, ws, plan, X, Y, sw, wbuf, perm, rng,
                             batch_size, shuffled, loss, code, hyper, t0, reg, max_steps,
                             check_every_step, hidden, l2):
    """:func:`epoch_weighted` for an optimizer with state, without dropout,
    as :func:`fastbp.network.epoch_optimizer`: the weighted gradient into
    ``grads``, the L2 term over the batch's weight sum, then the step."""
    params, grads, state, ws, plan, X, Y, sw, wbuf, perm = \
        borrowed((params, grads, state, ws, plan, X, Y, sw, wbuf, perm))
    n = _rows(X)
    cap = capacity(ws, plan)
    _order(perm, rng, n, shuffled)
    alpha = reg[0]
    total, seen, steps = 0.0, 0, 0
    for start in range(0, n, batch_size):
        if steps == max_steps:
            break
        nb = smin(batch_size, n - start)
        xb, yb = _batch(ws, plan, cap, X, Y, perm, start, nb, shuffled)
        wb, w = _gather_weights(wbuf, sw, perm, start, nb)
        r = nb / w if w > 0 else 0.0
        out = _forward(params, ws, plan, xb, loss, hidden, False)
        value = weighted_loss_forward(_logits(ws, plan, nb), out, yb, loss, wb, w) * nb
        if alpha != 0:
            value += 0.5 * alpha * _penalty_if(params, plan, l2) * r
        if not np.isfinite(value):
            return np.nan, steps
        total += value
        seen += nb
        steps += 1
        _backward_batch_weighted(grads, params, ws, plan, xb, yb, loss, wb, r, hidden)
        if alpha != 0:
            _add_penalty_gradient_if(grads, params, plan, alpha * r / nb, l2)
        _optimizer_step(params, grads, state, hyper, code, t0 + steps)
        if check_every_step and not _all_finite(params):
            return np.nan, steps
    return _epoch_loss(params, total, seen), steps


@jit(**KERNEL_ONLY)
def _backward_weighted(grads, params, ws, plan, x, y, loss, reg, alpha, dropped, fused, lr, wb, r):
    # network._backward with row i's output delta scaled by wb[i] * r
    # (r = nb / W_B, 0 for a batch of zero weight): the same calls in the
    # same order, so that factors of 1.0 give its results bit for bit.
    cap = capacity(ws, plan)
    nb = _rows(x)
    last = plan.shape[0] - 1
    _weighted_deltas(ws, plan, cap, nb, y, loss, wb, r)
    for l in range(last, 0, -1):
        through = dropped and _dropped(plan, reg, l - 1)
        dinp = _delta(ws, plan, cap, l - 1, nb)
        inp = _act(ws, plan, cap, l - 1, nb)
        _layer_backward(grads, params, ws, plan, cap, l, nb, dinp, inp,
                        IDENTITY if through else plan[l - 1, ACT], alpha, fused, lr)
        if through:
            dropout_backward(dinp, inp, _mask(ws, plan, cap, l - 1, nb), reg[l], plan[l - 1, ACT])
    _first_layer_backward(grads, params, ws, plan, cap, nb, x, alpha, fused, lr)


@jit
def epoch_weighted(params, grads, state, ws, plan, X, Y, sw, wbuf, perm, rng, batch_size,
                   shuffled, loss, code, hyper, t0, reg, max_steps, check_every_step, hidden,
                   l2, paths):
    """:func:`fastbp.network.train_epoch` with sample weights ``sw`` (float64,
    n) and ``wbuf`` (float64, >= batch_size) scratch for a batch's weights:
    with ``paths`` EVERY_PATH every variant (fused SGD or an optimizer, L2,
    dropout), as :func:`fastbp.network.epoch_dropout`. A weighted fit with
    dropout runs this code for its own path only
    (:func:`epoch_weighted_dropout_sgd`, :func:`epoch_weighted_dropout_optimizer`);
    without dropout the smaller :func:`epoch_weighted_sgd` or
    :func:`epoch_weighted_optimizer`. Returns ``(mean_loss, steps)``
    with the weighted batch losses (see the module docstring)."""
    params, grads, state, ws, plan, X, Y, sw, wbuf, perm = \
        borrowed((params, grads, state, ws, plan, X, Y, sw, wbuf, perm))
    fused = is_plain_sgd(code, hyper)
    dropout = _any_dropped(plan, reg)
    drop_rng = rng[rng.size - 1:]
    alpha = reg[0]
    n = _rows(X)
    cap = capacity(ws, plan)
    _order(perm, rng, n, shuffled)
    total = 0.0
    t = t0
    seen = 0
    for start in range(0, n, batch_size):
        if max_steps >= 0 and t - t0 >= max_steps:
            break
        nb = smin(batch_size, n - start)
        xb, yb = _batch(ws, plan, cap, X, Y, perm, start, nb, shuffled)
        wb, w = _gather_weights(wbuf, sw, perm, start, nb)
        r = nb / w if w > 0 else 0.0
        if paths != EVERY_PATH or dropout:  # (a fit's own paths: it has dropout)
            out = _forward_dropout(params, ws, plan, xb, loss, reg, drop_rng, 0)
        else:
            out = _forward(params, ws, plan, xb, loss, hidden, False)
        value = weighted_loss_forward(_logits(ws, plan, nb), out, yb, loss, wb, w) * nb
        if alpha != 0:
            value += 0.5 * alpha * _penalty_if(params, plan, l2) * r
        if not np.isfinite(value):
            return np.nan, t - t0
        total += value
        seen += nb
        t += 1
        if paths == DROPOUT_SGD or (paths == EVERY_PATH and fused):
            _backward_weighted(grads, params, ws, plan, xb, yb, loss, reg, alpha * r, dropout,
                               True, hyper[LR], wb, r)
        else:
            _backward_weighted(grads, params, ws, plan, xb, yb, loss, reg, alpha * r, dropout,
                               False, 0.0, wb, r)
            _optimizer_step(params, grads, state, hyper, code, t)
        if check_every_step and not _all_finite(params):
            return np.nan, t - t0
    if not _all_finite(params):
        return np.nan, t - t0
    return total / smax(seen, 1), t - t0


_epoch_weighted = specialising(epoch_weighted, "paths", "epoch_weighted for the weighted fits with"
                               " dropout: with a constant ``paths``, only those paths.")


@jit
def epoch_weighted_dropout_sgd(params, grads, state, ws, plan, X, Y, sw, wbuf, perm, rng,
                               batch_size, shuffled, loss, code, hyper, t0, reg, max_steps,
                               check_every_step, hidden, l2):
    """The epoch of a weighted fit with dropout by plain SGD:
    :func:`epoch_weighted`'s code, its path only."""
    return _epoch_weighted(params, grads, state, ws, plan, X, Y, sw, wbuf, perm, rng, batch_size,
                           shuffled, loss, code, hyper, t0, reg, max_steps, check_every_step,
                           hidden, l2, DROPOUT_SGD)


@jit
def epoch_weighted_dropout_optimizer(params, grads, state, ws, plan, X, Y, sw, wbuf, perm, rng,
                                     batch_size, shuffled, loss, code, hyper, t0, reg, max_steps,
                                     check_every_step, hidden, l2):
    """The epoch of a weighted fit with dropout and an optimizer step:
    :func:`epoch_weighted`'s code, its path only."""
    return _epoch_weighted(params, grads, state, ws, plan, X, Y, sw, wbuf, perm, rng, batch_size,
                           shuffled, loss, code, hyper, t0, reg, max_steps, check_every_step,
                           hidden, l2, DROPOUT_STEP)


@jit
def loss_value_weighted(params, ws, plan, X, Y, sw, loss):
    """The weighted mean loss ``sum w_i L_i / sum w_i`` over all of (X, Y),
    in chunks of the workspace's capacity (:func:`fastbp.network.loss_value`
    with weights; the sum of ``sw`` must be > 0)."""
    cap = capacity(ws, plan)
    n = _rows(X)
    w_all = 0.0
    for i in range(n):
        w_all += sw[i]
    total = 0.0
    for start in range(0, n, cap):
        nb = smin(cap, n - start)
        wb = sw[start:start + nb]
        w = 0.0
        for i in range(nb):
            w += wb[i]
        out = _forward_batch(params, ws, plan, _rows_of(X, start, nb), loss)
        # Each chunk's mean by its share of the weight (its mean times its
        # weight, over the whole weight, overflowed for weights of 1e307
        # whose sum fits: an inf loss where only the ratios matter)
        total += weighted_loss_forward(_logits(ws, plan, nb), out,
                                       _chunk_targets(ws, plan, cap, Y, start, nb), loss, wb,
                                       w) * (w / w_all)
    return total


@jit
def gradient_weighted(grads, scratch, params, ws, plan, X, Y, sw, loss):
    """Full-batch gradient of :func:`loss_value_weighted` into ``grads``
    (``scratch`` as in :func:`fastbp.network.gradient`); returns the loss."""
    cap = capacity(ws, plan)
    n = _rows(X)
    w_all = 0.0
    for i in range(n):
        w_all += sw[i]
    total = 0.0
    grads[:] = 0
    for start in range(0, n, cap):
        nb = smin(cap, n - start)
        xb = _rows_of(X, start, nb)
        yb = _chunk_targets(ws, plan, cap, Y, start, nb)
        wb = sw[start:start + nb]
        w = 0.0
        for i in range(nb):
            w += wb[i]
        out = _forward_batch(params, ws, plan, xb, loss)
        total += weighted_loss_forward(_logits(ws, plan, nb), out, yb, loss, wb, w) * (w / w_all)
        target = grads if nb == n else scratch
        _backward_batch_weighted(target, params, ws, plan, xb, yb, loss, wb,
                                 nb / w if w > 0 else 0.0, RUNTIME)
        if nb < n:
            f = grads.dtype.type(w / w_all)
            for i in range(grads.size):
                grads[i] += f * scratch[i]
    return total
