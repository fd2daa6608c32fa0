"""The epoch and objective kernels behind :mod:`fastbp.sklearn`.

scikit-learn's MLP trains with its own conventions, which these kernels
reproduce over fastbp's flat buffer (see ``sklearn/neural_network``):

- the batch order is given (``idx``, drawn by the wrapper from scikit-learn's
  ``RandomState`` exactly as ``sklearn.utils.shuffle`` draws it);
- its gradients are fastbp's times a constant: log loss is fastbp's
  cross-entropy; its binary log loss sums the m sigmoid outputs' means
  (fastbp's BCE averages them: ``grad_scale = m``). Its log losses' values
  are computed as it computes them, from the probabilities clipped to
  ``[eps, 1 - eps]`` (:func:`_log_loss`; fastbp's exact loss from the
  logits differs where a probability is below eps, which L-BFGS's line
  search would see); its squared
  error is reported as half the mean over all elements (``loss_scale =
  0.5``) while its gradient is that of ``sum (a - y)^2 / (2 n)``
  (``grad_scale = m / 2`` times fastbp's MSE gradient);
- the L2 term ``alpha / (2 n_batch) sum |W|^2`` on weights only, as fastbp's;
- sample weights: the weighted mean of the rows' losses, each row's output
  delta scaled by ``nb w_i / sum(w)``, the L2 term over ``sum(w)``;
- ``loss="poisson"``: an identity network output z, ``p = exp(z)``, half the
  Poisson deviance, delta ``p - y`` (code :data:`POISSON`);
- its optimizers are :data:`fastbp.optim.SKL_SGD_CODE` and
  :data:`fastbp.optim.SKL_ADAM_CODE`.

The wrapper validates everything once; these take the model's own arrays.
"""
import numpy as np

from ._arrays import borrowed
from ._fastmath import exp, smax, smin
from ._jit import KERNEL_ONLY, jit, matrix
from ._views import flat_view
from .optim import sklearn_update
from .layout import ACT, B_OFF, N_IN, N_OUT, W_OFF
from .network import (RUNTIME, _act, _all_finite, _backward_batch, _batch, _batch_targets, _bias,
                      _delta, _first_backward, _forward_batch, _logits, _outputs, _rows,
                      _weight, _add_penalty_gradient, _penalty, capacity, gathered_rows)
from .network import _sum_squares as _squares   # (inlined: this module's reassociation)
from .ops import (BINARY_CROSS_ENTROPY, CROSS_ENTROPY, MSE, SOFTMAX, act_backward,
                  bias_act_forward, bias_grad, dense_backward, gemm, loss_backward, loss_forward,
                  output_forward, output_of)
from ._weighted import _gather_weights
from ._atomics import atomic_load, atomic_store, barrier
from ._columns import (COLUMN_ROWS, COLUMN_UNITS, EPOCH_T, LINE, column_offsets,  # noqa: F401
                       forward_pieces, piece_deltas, piece_squares, sum_parts,
                       units as _units)

# The loss code for scikit-learn's Poisson regressor (not one of fastbp's own
# losses: the network has an identity output, exp is applied here).
POISSON = 100


@jit
def scale(v, c):
    """``v *= c`` over a flat array."""
    k = v.dtype.type(c)
    for i in range(v.size):
        v[i] *= k


@jit
def _log_loss(out, y, binary, wb, w):
    # scikit-learn's log_loss / binary_log_loss of the outputs (probabilities),
    # clipped to [eps, 1 - eps] as it clips them: sum_ij wb_i xlogy terms / w
    # (wb empty: weights 1). A probability below eps costs -log(eps) as in
    # scikit-learn, not the exact -log(p) of fastbp's loss from the logits:
    # L-BFGS's line search sees these values.
    eps = np.finfo(out.dtype).eps
    hi = out.dtype.type(1.0) - eps
    total = 0.0
    for i in range(out.shape[0]):
        row = 0.0
        for j in range(out.shape[1]):
            p = np.float64(smin(smax(out[i, j], eps), hi))
            t = np.float64(y[i, j])
            if t != 0:
                row += t * np.log(p)
            if binary and t != 1:
                row += (1.0 - t) * np.log(1.0 - p)
        total += row * (wb[i] if wb.size else 1.0)
    return -total / w


@jit
def _weighted_loss(z, out, y, loss, w, wb):
    # scikit-learn's np.average over rows with weights wb = w[rows]: the
    # weighted mean of each row's loss (fastbp's mean over the row's outputs).
    total = 0.0
    for i in range(z.shape[0]):
        total += wb[i] * loss_forward(z[i:i + 1], out[i:i + 1], y[i:i + 1], loss)
    return total / w


@jit(**KERNEL_ONLY)
def _backward_weighted(grads, params, ws, plan, x, y, loss, wb, w):
    # backward_batch with each row's output delta scaled by nb wb[i] / w:
    # the gradient of the weighted mean loss.
    cap = capacity(ws, plan)
    nb = _rows(x)
    d = _delta(ws, plan, cap, plan.shape[0] - 1, nb)
    loss_backward(d, _outputs(ws, plan, cap, nb), y, loss)
    for i in range(nb):
        c = d.dtype.type(nb * wb[i] / w)
        for j in range(d.shape[1]):
            d[i, j] *= c
    _chain(grads, params, ws, plan, x)


@jit(**KERNEL_ONLY)
def _poisson(grads, params, ws, plan, x, y, wb, w):
    # scikit-learn's half Poisson deviance with a log link: the network's
    # identity outputs z become p = exp(z) in place; the loss is
    # sum_ij wb_i (y log(y / p) - y + p) / w, the output delta wb_i (p - y) / w.
    cap = capacity(ws, plan)
    nb = _rows(x)
    value = _poisson_deltas(_delta(ws, plan, cap, plan.shape[0] - 1, nb),
                            _outputs(ws, plan, cap, nb), y, wb, w)
    _chain(grads, params, ws, plan, x)
    return value


@jit(inline="always")
def _poisson_deltas(d, out, y, wb, w):
    # The identity outputs z become p = exp(z) in place; returns the loss
    # sum_ij wb_i (y log(y / p) - y + p) / w (a term with y = 0 and p
    # underflowed to 0 is NaN, as scikit-learn's xlogy(y, y / p) - y + p),
    # and writes the output deltas wb_i (p - y) / w into d.
    total = 0.0
    for i in range(out.shape[0]):
        c = wb[i] if wb.size else 1.0
        for j in range(out.shape[1]):
            p = np.exp(out[i, j])
            out[i, j] = p
            t = y[i, j]
            term = -t + p
            if t != 0:   # (y / p in float64: a float32 p of e^-92 overflowed it, where
                # scikit-learn's y / y_pred runs in float64 for float64 or int y)
                term += t * np.log(np.float64(t) / p)
            elif p == 0:   # scikit-learn's xlogy(0, 0 / 0): NaN, as its loss_curve_
                term = np.nan
            total += c * term
            d[i, j] = d.dtype.type(c * (p - t) / w)
    return total / w


@jit(**KERNEL_ONLY)
def _chain(grads, params, ws, plan, x):
    # network._backward_batch's chain rule, from the output deltas already
    # in the workspace: dW_l = delta_l^T a_{l-1}, db_l = sum delta_l,
    # delta_{l-1} = (delta_l W_l) f'(a_{l-1}).
    cap = capacity(ws, plan)
    nb = _rows(x)
    last = plan.shape[0] - 1
    for l in range(last, 0, -1):
        dense_backward(_delta(ws, plan, cap, l - 1, nb), _weight(grads, plan, l), _bias(grads, plan, l),
                       _delta(ws, plan, cap, l, nb), _act(ws, plan, cap, l - 1, nb),
                       _weight(params, plan, l), plan[l - 1, ACT])
    _first_backward(grads, params, ws, plan, cap, nb, x)  # dense or CSR x; no delta passed back


@jit(inline="always")
def _batch_weights(wbuf, sw, idx, start, nb):
    # The batch's sample weights sw[idx[start:start + nb]] gathered into wbuf,
    # and their total; without weights (sw empty) none, and nb.
    if sw.size == 0:
        return wbuf[:0], float(nb)
    return _gather_weights(wbuf, sw, idx, start, nb)


@jit(**KERNEL_ONLY)
def _weight_total(wb, nb):
    # The batch's weight: the sum of its sample weights, or nb without them.
    if wb.size == 0:
        return float(nb)
    w = 0.0
    for i in range(nb):
        w += wb[i]
    return w


@jit(**KERNEL_ONLY)
def _loss_and_gradient(grads, params, ws, plan, xb, yb, wb, loss, alpha, loss_scale, grad_scale):
    # scikit-learn's batch loss (L2 term included) and its gradient in grads;
    # wb holds the batch's sample weights, or nothing (size 0) for none.
    w = _weight_total(wb, _rows(xb))
    value = _data_loss_and_gradient(grads, params, ws, plan, xb, yb, wb, w, loss, loss_scale)
    if alpha != 0:
        value += 0.5 * alpha * _penalty(params, plan) / w
    if grad_scale != 1.0:
        scale(grads, grad_scale)
    if alpha != 0:
        _add_penalty_gradient(grads, params, plan, alpha / w)
    return value


@jit(**KERNEL_ONLY)
def _data_loss_and_gradient(grads, params, ws, plan, xb, yb, wb, w, loss, loss_scale):
    # The batch loss without the L2 term, and its gradient (unscaled) in grads.
    nb = _rows(xb)
    if loss == POISSON:
        _forward_batch(params, ws, plan, xb, MSE)  # identity outputs: the log of the mean
        value = _poisson(grads, params, ws, plan, xb, yb, wb, w)
    else:
        out = _forward_batch(params, ws, plan, xb, loss)
        if loss == CROSS_ENTROPY or loss == BINARY_CROSS_ENTROPY:
            value = _log_loss(out, yb, loss == BINARY_CROSS_ENTROPY, wb, w)
        elif wb.size == 0:
            value = loss_forward(_logits(ws, plan, nb), out, yb, loss) * loss_scale
        else:
            value = _weighted_loss(_logits(ws, plan, nb), out, yb, loss, w, wb) * loss_scale
        if wb.size == 0:
            _backward_batch(grads, params, ws, plan, xb, yb, loss)
        else:
            _backward_weighted(grads, params, ws, plan, xb, yb, loss, wb, w)
    return value


@jit(fastmath={"reassoc"})
def _sum_squares(params, plan, lo, hi):
    # penalty(params, plan) over params[lo:hi] (its weights there), sum |W|^2
    # in float64, with the additions free to reorder (network._sum_squares,
    # inlined here: a vectorised reduction, about 8x faster; the sum differs
    # from the sequential one by rounding only).
    total = 0.0
    for l in range(plan.shape[0]):
        o = plan[l, W_OFF]
        a, b = smax(o, lo), smin(o + plan[l, N_OUT] * plan[l, N_IN], hi)
        if a < b:
            total += _squares(params[a:b])
    return total


@jit(**KERNEL_ONLY)
def _step(params, grads, state, hyper, code, t, plan, grad_scale, coef):
    # The optimizer step from grad_scale * grads plus the L2 term's gradient
    # coef * W on the weights (none on the biases), in one pass over the
    # buffer (see fastbp.optim.sklearn_update).
    _step_range(params, grads, state, hyper, code, t, plan, grad_scale, coef, 0, params.size)


@jit(**KERNEL_ONLY)  # called by kernels only: no machine code of its own
def _step_range(params, grads, state, hyper, code, t, plan, grad_scale, coef, lo, hi):
    # _step on params[lo:hi] only: each layer's weights and biases that fall
    # in the range (the update is element by element).
    if coef == 0:
        sklearn_update(params, grads, state, hyper, code, t, lo, hi, grad_scale, 0.0)
        return
    for l in range(plan.shape[0]):
        o = plan[l, W_OFF]
        a, b = smax(o, lo), smin(o + plan[l, N_OUT] * plan[l, N_IN], hi)
        if a < b:
            sklearn_update(params, grads, state, hyper, code, t, a, b, grad_scale, coef)
        o = plan[l, B_OFF]
        a, b = smax(o, lo), smin(o + plan[l, N_OUT], hi)
        if a < b:
            sklearn_update(params, grads, state, hyper, code, t, a, b, grad_scale, 0.0)


@jit
def epoch_sklearn(params, grads, state, ws, plan, X, Y, sw, idx, wbuf, batch_size, loss, code,
                  hyper, t0, alpha, loss_scale, grad_scale):
    """One epoch of scikit-learn's ``_fit_stochastic`` inner loop, in one call.

    X is (n, n_in), or a CSR tuple (see :mod:`fastbp.network`: the first
    layer's products then run over its non-zeros; batches are row
    selections, never densified), Y is (n, m) float targets, sw (n,) float64 the sample
    weights or empty, wbuf (batch_size,) float64 scratch for a batch's
    weights (or empty); idx (n,) int64 is the epoch's
    row order (batches are idx[start:start + batch_size]); state (2, n_params)
    and hyper are the optimizer's (code SKL_SGD_CODE or SKL_ADAM_CODE), t0
    its step count, advanced by ceil(n / batch_size). Returns ``(mean_loss,
    finite)``: scikit-learn's ``loss_`` (batch losses weighted by batch size
    over n) and whether the parameters end the epoch finite.
    """
    params, grads, state, ws, plan, X, Y, sw, idx, wbuf = \
        borrowed((params, grads, state, ws, plan, X, Y, sw, idx, wbuf))
    n = _rows(X)
    cap = capacity(ws, plan)
    total = 0.0
    steps = 0
    for start in range(0, n, batch_size):
        nb = smin(batch_size, n - start)
        xb, yb = _batch(ws, plan, cap, X, Y, idx, start, nb, True)
        wb, w = _batch_weights(wbuf, sw, idx, start, nb)
        value = _data_loss_and_gradient(grads, params, ws, plan, xb, yb, wb, w, loss, loss_scale)
        if alpha != 0:
            value += 0.5 * alpha * _sum_squares(params, plan, 0, params.size) / w
        total += value * nb
        steps += 1
        _step(params, grads, state, hyper, code, t0 + steps, plan, grad_scale, alpha / w)
    return total / n, _all_finite(params)


@jit
def objective_sklearn(grads, params, ws, plan, X, Y, sw, loss, alpha, loss_scale, grad_scale):
    """scikit-learn's full-batch loss of (X, Y) with sample weights sw (or
    empty), its gradient into grads (for L-BFGS)."""
    return _loss_and_gradient(grads, params, ws, plan, X, Y, sw, loss, alpha, loss_scale,
                              grad_scale)


# ------------------------------------------------- the transposed layout
# A dense X trains faster with each layer's weights held transposed,
# (n_in, n_out) as scikit-learn's coefs_: OpenBLAS multiplies a batch by
# W^T in the row-major NT form slower than by a stored W^T in the NN form
# (on the AVX-512 machine of asv_bench/sklearn_dropin.py, one thread:
# 32 x 64 x 100 float64 8.6 against 5.0 us, 200 x 100 x 10 13.7 against
# 7.0 us, 200 x 784 x 100 float32 247 against 217 us), the backward
# products costing about the same either way (the delta passed back, now
# NT, a little more for narrow layers). The wrapper copies params and the optimizer
# state into that layout once per fit (:func:`relayout`: a flat buffer of
# the same offsets, only each weight block transposed), trains there with
# :func:`epoch_sklearn_t` and copies back when it needs fastbp's layout
# (early-stopping scores, the end of the fit): the update is elementwise, so
# it is the same in either layout.
@jit(inline="always")
def _weight_t(params, plan, l):
    # Layer l's W^T, (n_in, n_out), in a buffer of the transposed layout.
    return matrix(params, plan[l, W_OFF], plan[l, N_IN], plan[l, N_OUT])


@jit
def relayout(dst, src, plan, to_transposed):
    """``dst = src`` with every layer's weight block transposed: from
    fastbp's ``(n_out, n_in)`` to ``(n_in, n_out)`` when ``to_transposed``,
    else back. dst and src are flat buffers of one size (params, a gradient
    or an optimizer state row)."""
    for i in range(src.size):  # not dst[:] = src: Numba's slice copy compiles 2.5-3.4 s
        dst[i] = src[i]
    for l in range(plan.shape[0]):
        m, k, o = plan[l, N_OUT], plan[l, N_IN], plan[l, W_OFF]
        a = matrix(src, o, m, k) if to_transposed else matrix(src, o, k, m)
        b = matrix(dst, o, k, m) if to_transposed else matrix(dst, o, m, k)
        for i in range(b.shape[0]):
            for j in range(b.shape[1]):
                b[i, j] = a[j, i]


# OpenBLAS (0.3, SkylakeX kernels) multiplies matrices of at most 100^3
# multiply-adds with its small-matrix kernels, without packing: a batch's
# product just above that bound runs faster as a few products of fewer rows
# (the digits' first layer, 200 x 64 x 100 float64 on one thread: 45 us as
# one product, 27 us as three of 67 rows; its gradient 49 against 30 us).
# Products are split so that each piece has about SMALL_MNK multiply-adds,
# never into pieces under MIN_ROWS rows (wide layers: 200 x 784 x 100
# float32 loses in pieces of 50 rows, 281 against 221 us).
SMALL_MNK = 1 << 19
MIN_ROWS = 32


@jit(inline="always")
def _rows_per_product(nb, width):
    # Rows per piece of a product of nb rows by width = (other dims) multiply-adds.
    per = SMALL_MNK // smax(width, 1)
    if per < MIN_ROWS or nb * width <= 1000000:
        return nb
    pieces = -(-nb // per)
    return -(-nb // pieces)


@jit
def _gemm_rows(C, A, B, trans_b):
    # C = A @ op(B), in pieces of rows of A and C (the same sums per element).
    nb = A.shape[0]
    step = _rows_per_product(nb, C.shape[1] * A.shape[1])
    for s in range(0, nb, step):
        e = smin(nb, s + step)
        gemm(C[s:e], A[s:e], B, False, trans_b, 1.0, 0.0)


@jit
def _gemm_tn_rows(C, A, B):
    # C = A^T @ B, summed over pieces of the rows of A and B.
    nb = A.shape[0]
    step = _rows_per_product(nb, C.shape[0] * C.shape[1])
    for s in range(0, nb, step):
        e = smin(nb, s + step)
        gemm(C, A[s:e], B[s:e], True, False, 1.0, 0.0 if s == 0 else 1.0)


@jit
def _softmax(out, z):
    # ops.output_forward's softmax, value for value (the same exp of the same
    # z_ij - max_j z_ij, summed and scaled row by row in the same order), with
    # the exps taken in one pass over the block: a row's few outputs leave
    # most of each row's vector exp idle and the rest to scalar code (200 x
    # 10 float64: 4.1 against 6.4 us).
    n, m = z.shape
    for i in range(n):
        zmax = z[i, 0]
        for j in range(1, m):
            zmax = smax(zmax, z[i, j])
        for j in range(m):
            out[i, j] = z[i, j] - zmax
    flat = flat_view(out)  # not reshape: its error path compiles string formatting
    for e in range(flat.size):
        flat[e] = exp(flat[e])
    for i in range(n):
        s = 0.0   # in float64, as ops.output_forward's (the same bits)
        for j in range(m):
            s += np.float64(out[i, j])
        inv = z.dtype.type(1.0 / s)
        for j in range(m):
            out[i, j] *= inv


@jit(**KERNEL_ONLY)
def _forward_t(pt, ws, plan, x, loss):
    # network._forward_batch for a dense batch x with the weights of pt in
    # the transposed layout: a_l = f(a_{l-1} @ W_l^T + b_l) as one NN product.
    cap = capacity(ws, plan)
    nb = x.shape[0]
    a = _act(ws, plan, cap, 0, nb)
    _gemm_rows(a, x, _weight_t(pt, plan, 0), False)
    bias_act_forward(a, _bias(pt, plan, 0), plan[0, ACT])
    for l in range(1, plan.shape[0]):
        a = _act(ws, plan, cap, l, nb)
        _gemm_rows(a, _act(ws, plan, cap, l - 1, nb), _weight_t(pt, plan, l), False)
        bias_act_forward(a, _bias(pt, plan, l), plan[l, ACT])
    return _output_function(ws, plan, cap, nb, loss)


@jit(inline="always")
def _output_function(ws, plan, cap, nb, loss):
    # The outputs, from the logits in ws (the softmax, the sigmoid or a copy).
    out = _outputs(ws, plan, cap, nb)
    z = _act(ws, plan, cap, plan.shape[0] - 1, nb)
    if output_of(loss) == SOFTMAX:
        _softmax(out, z)
    else:
        output_forward(out, z, output_of(loss))
    return out


# The delta passed back through a narrow layer, (nb, m) @ W (m, k) with m
# small, is slow from W^T in OpenBLAS's NT form (200 x 10 x 100 float64:
# 10.4 against 6.0 us NN, and no faster in pieces of rows: NT products are
# kept whole); for layers of at most NARROW outputs it runs NN from a copy
# of W, transposed back from W^T for each batch (1000 values there).
NARROW = 16


@jit(**KERNEL_ONLY)
def _chain_t(gt, pt, ws, plan, x, pw):
    # _chain in the transposed layout, from the output deltas in ws:
    # dW_l^T = a_{l-1}^T delta_l, db_l = sum delta_l (ops.bias_grad, as in
    # ops.dense_backward), delta_{l-1} = (delta_l W_l) f'(a_{l-1}).
    # pw: scratch of params' size for the copies of narrow layers' W.
    cap = capacity(ws, plan)
    nb = x.shape[0]
    for l in range(plan.shape[0] - 1, -1, -1):
        d = _delta(ws, plan, cap, l, nb)
        bias_grad(_bias(gt, plan, l), d)
        if l == 0:
            _gemm_tn_rows(_weight_t(gt, plan, 0), x, d)
        else:
            a = _act(ws, plan, cap, l - 1, nb)
            _gemm_tn_rows(_weight_t(gt, plan, l), a, d)
            dp = _delta(ws, plan, cap, l - 1, nb)
            WT = _weight_t(pt, plan, l)
            if plan[l, N_OUT] <= NARROW:
                W = _weight(pw, plan, l)
                for r in range(W.shape[0]):
                    for c in range(W.shape[1]):
                        W[r, c] = WT[c, r]
                gemm(dp, d, W, False, False, 1.0, 0.0)
            else:
                gemm(dp, d, WT, False, True, 1.0, 0.0)
            act_backward(dp, a, plan[l - 1, ACT])


@jit(**KERNEL_ONLY)
def _loss_and_delta(ws, plan, xb, yb, wb, w, loss, loss_scale, wanted=True):
    # After a forward pass: the batch loss without the L2 term (as
    # _data_loss_and_gradient computes it; 0 unless wanted, but for
    # Poisson's), and the output deltas in ws.
    cap = capacity(ws, plan)
    nb = xb.shape[0]
    d = _delta(ws, plan, cap, plan.shape[0] - 1, nb)
    out = _outputs(ws, plan, cap, nb)
    if loss == POISSON:
        return _poisson_deltas(d, out, yb, wb, w)
    if not wanted:
        value = 0.0
    elif loss == CROSS_ENTROPY or loss == BINARY_CROSS_ENTROPY:
        value = _log_loss(out, yb, loss == BINARY_CROSS_ENTROPY, wb, w)
    elif wb.size == 0:
        value = loss_forward(_logits(ws, plan, nb), out, yb, loss) * loss_scale
        if nb != w:  # a piece of a batch of w rows (epoch_sklearn_t_split): its share
            value *= nb / w
    else:
        value = _weighted_loss(_logits(ws, plan, nb), out, yb, loss, w, wb) * loss_scale
    loss_backward(d, out, yb, loss)
    if wb.size:  # as _backward_weighted
        for i in range(nb):
            c = d.dtype.type(nb * wb[i] / w)
            for j in range(d.shape[1]):
                d[i, j] *= c
    elif nb != w:  # the mean over the whole batch of w rows, not over this piece's nb
        c = d.dtype.type(nb / w)
        for i in range(nb):
            for j in range(d.shape[1]):
                d[i, j] *= c
    return value


@jit
def epoch_sklearn_t(pt, grads, st, ws, plan, X, Y, sw, idx, wbuf, batch_size, loss, code,
                    hyper, t0, alpha, loss_scale, grad_scale, pw):
    """:func:`epoch_sklearn` for a dense X, with the parameters pt, their
    gradient buffer grads and the optimizer state st in the transposed layout
    (see the notes above; :func:`relayout` gives it), and pw scratch of
    pt's size and dtype; the same arguments otherwise, and the same result."""
    pt, grads, st, ws, plan, X, Y, sw, idx, wbuf, pw = \
        borrowed((pt, grads, st, ws, plan, X, Y, sw, idx, wbuf, pw))
    n = X.shape[0]
    cap = capacity(ws, plan)
    forward_loss = MSE if loss == POISSON else loss  # Poisson: identity outputs, exp in the loss
    total = 0.0
    steps = 0
    for start in range(0, n, batch_size):
        nb = smin(batch_size, n - start)
        xb, yb = _batch(ws, plan, cap, X, Y, idx, start, nb, True)
        wb, w = _batch_weights(wbuf, sw, idx, start, nb)
        _forward_t(pt, ws, plan, xb, forward_loss)
        value = _loss_and_delta(ws, plan, xb, yb, wb, w, loss, loss_scale)
        _chain_t(grads, pt, ws, plan, xb, pw)
        if alpha != 0:
            value += 0.5 * alpha * _sum_squares(pt, plan, 0, pt.size) / w
        total += value * nb
        steps += 1
        _step(pt, grads, st, hyper, code, t0 + steps, plan, grad_scale, alpha / w)
    return total / n, _all_finite(pt)


# A batch of at least SPLIT_ROWS rows (a dense X; but those of the column
# split, below) is split into SPLIT_PIECES pieces of consecutive rows, whose gradients are summed in a fixed order
# (epoch_sklearn_t_split), and the pieces run on two threads where a core is
# free (fastbp.threads.training): the same arithmetic on one thread as on
# two, so a fit's result does not depend on how many threads ran it.
# Measured on the 2-vCPU AMD EPYC host (OpenBLAS variables unset, the digits,
# Adam, 30 epochs, us a batch on one thread / two, split in two): batches of
# 16 rows 22 / 37, 32 rows 35 / 44, 50 rows 52 / 54, 64 rows 65 / 49, 100
# rows 89 / 78, 200 rows 170 / 156 (the first version, which handed the helper
# each epoch as a pool task).
SPLIT_PIECES = 2
SPLIT_ROWS = 64


@jit
def epoch_sklearn_t_split(thread, threads, sync, values, pt, gsum, st, ws, plan, X, Y, sw, idx,
                          wbuf, batch_size, loss, code, hyper, t0, alpha, loss_scale, grad_scale,
                          pw):
    """:func:`epoch_sklearn_t` with each batch split into ``gsum.shape[0]``
    pieces of consecutive rows, run by ``threads`` threads at once, each
    calling this with its ``thread`` (0 .. threads - 1), the same sync (int64
    zeros, see :mod:`fastbp._atomics`), values (float64, two per piece), pt,
    gsum ``(pieces, pt.size)``, st, plan and data, and its own ws (room for
    ``ceil(batch_size / pieces)`` rows), wbuf and pw.

    Thread 0's call is one epoch (from step ``t0``); the others' calls run
    every epoch that thread 0 opens (each waits at a gate, a barrier, for
    the next; ``t0`` comes through ``sync``) until a thread sets the stop
    flag (``fastbp._atomics.stop``), so that they are not woken for each.
    The arrays must stay the same between epochs (their contents may change
    between thread 0's calls: the order in idx, the rates in hyper).

    Thread i runs pieces i, i + threads, ...: each gathered, run forward and
    back into its row of gsum, its loss and the L2 term's sum of squares over
    its share of the parameters into values. Then (after a barrier)
    each thread sums the rows, in order, over its share of the parameters
    and takes the optimizer step there; after a second barrier the next
    batch starts. The result is the same, bit for bit, for any number of
    threads, and epoch_sklearn_t's up to the rounding of the sums over the
    pieces. Returns what epoch_sklearn_t returns (thread 0's; the others
    return (nan, False) when stopped); (nan, False) if stopped mid-epoch.
    """
    if thread == 0 and threads > 1:
        atomic_store(sync, EPOCH_T, t0)
    while True:  # (one call of _split_epoch: one copy of it in this kernel)
        if threads > 1 and not barrier(sync, threads, thread):  # the gate of the epoch
            return np.nan, False
        result = _split_epoch(thread, threads, sync, values, pt, gsum, st, ws, plan, X, Y, sw,
                              idx, wbuf, batch_size, loss, code, hyper,
                              t0 if thread == 0 else atomic_load(sync, EPOCH_T), alpha,
                              loss_scale, grad_scale, pw)
        if thread == 0:
            return result


@jit(**KERNEL_ONLY)  # called by kernels only: no machine code of its own
def _split_epoch(thread, threads, sync, values, pt, gsum, st, ws, plan, X, Y, sw, idx, wbuf,
                 batch_size, loss, code, hyper, t0, alpha, loss_scale, grad_scale, pw):
    # One epoch of epoch_sklearn_t_split for this thread.
    sync, values, pt, gsum, st, ws, plan, X, Y, sw, idx, wbuf, pw = \
        borrowed((sync, values, pt, gsum, st, ws, plan, X, Y, sw, idx, wbuf, pw))
    n = X.shape[0]
    cap = capacity(ws, plan)
    forward_loss = MSE if loss == POISSON else loss
    pieces = gsum.shape[0]
    size = pt.size
    lo_p, hi_p = size * thread // threads, size * (thread + 1) // threads
    total = 0.0
    steps = 0
    for start in range(0, n, batch_size):
        nb = smin(batch_size, n - start)
        wb, w = _batch_weights(wbuf, sw, idx, start, nb)
        for piece in range(thread, pieces, threads):
            lo, hi = nb * piece // pieces, nb * (piece + 1) // pieces
            grads = gsum[piece]
            if hi > lo:
                xb = gathered_rows(ws, plan, cap, X, idx, start + lo, hi - lo)
                yb = _batch_targets(ws, plan, cap, Y, idx, start + lo, hi - lo, True)
                _forward_t(pt, ws, plan, xb, forward_loss)
                values[piece] = _loss_and_delta(ws, plan, xb, yb, wb[lo:hi] if wb.size else wb,
                                                w, loss, loss_scale)
                _chain_t(grads, pt, ws, plan, xb, pw)
            else:
                values[piece] = 0.0
                grads[:] = 0
            if alpha != 0:  # the L2 term's sum over the piece's share of pt (read only here)
                values[pieces + piece] = _sum_squares(pt, plan, size * piece // pieces,
                                                      size * (piece + 1) // pieces)
        if threads > 1 and not barrier(sync, threads, thread):
            return np.nan, False
        g = gsum[0]
        mine = g[lo_p:hi_p]
        for piece in range(1, pieces):
            other = gsum[piece][lo_p:hi_p]
            for i in range(hi_p - lo_p):   # (from 0: no wraparound checks, so it vectorises)
                mine[i] += other[i]
        if thread == 0:
            value = 0.0
            if alpha != 0:
                squares = 0.0
                for piece in range(pieces):
                    squares += values[pieces + piece]
                value = 0.5 * alpha * squares / w
            for piece in range(pieces):
                value += values[piece]
            total += value * nb
        steps += 1
        _step_range(pt, g, st, hyper, code, t0 + steps, plan, grad_scale, alpha / w, lo_p, hi_p)
        if threads > 1 and not barrier(sync, threads, thread):
            return np.nan, False
    return total / n, _all_finite(pt)


# ------------------------------------------------- the column split
# A batch under SPLIT_ROWS rows gains nothing from the split above (its
# pieces are too small for their own products, and the gradients' sums and
# two barriers a batch remain). A network of one hidden layer of at least
# COLUMN_UNITS units splits its hidden units instead (fastbp._columns), for
# batches under COLUMN_ROWS rows (measured against the split above, fits of
# one hidden layer of 100 units, OpenBLAS variables unset: the digits (64
# inputs) at 64-100 rows 1.23-1.43x faster with SGD, 1.1x with Adam; 784
# float32 inputs at 64 and 100 rows 1.29x and 1.06x with SGD, 1.17x and
# 1.06x with Adam; at 128-199 rows, 784 inputs and Adam 0.92-0.97x, the
# digits and Adam 0.98-1.06x).


@jit
def epoch_sklearn_t_columns(thread, threads, sync, values, pc, gc, sc, ws, plan, X, Y, sw, idx,
                            wbuf, batch_size, loss, code, hyper, t0, alpha, loss_scale, grad_scale,
                            pw, zs, offs):
    """:func:`epoch_sklearn_t` for a dense X and a network of one hidden
    layer, its units in ``offs.shape[0]`` pieces (see the notes above), run
    by ``threads`` threads at once as :func:`epoch_sklearn_t_split` runs its
    pieces: each calls this with its ``thread``, the same sync, values
    (float64, ``2 pieces``), pc, gc and sc (the parameters, their gradient
    and the optimizer state, in the column layout of ``offs``:
    :func:`fastbp._columns.to_columns`), plan, data, zs (``(2, pieces, r)``, the
    model's dtype, r at least ``batch_size n_out``) and offs, and its own ws
    (room for ``batch_size`` rows), wbuf and pw (``(hi - lo) n_out`` values
    at least). Returns what epoch_sklearn_t returns (thread 0's)."""
    if thread == 0 and threads > 1:
        atomic_store(sync, EPOCH_T, t0)
    while True:
        if threads > 1 and not barrier(sync, threads, thread):  # the gate of the epoch
            return np.nan, False
        result = _column_epoch(thread, threads, sync, values, pc, gc, sc, ws, plan, X, Y, sw,
                               idx, wbuf, batch_size, loss, code, hyper,
                               t0 if thread == 0 else atomic_load(sync, EPOCH_T), alpha,
                               loss_scale, grad_scale, pw, zs, offs)
        if thread == 0:
            return result


@jit(**KERNEL_ONLY)  # called by kernels only: no machine code of its own
def _column_epoch(thread, threads, sync, values, pc, gc, sc, ws, plan, X, Y, sw, idx, wbuf,
                  batch_size, loss, code, hyper, t0, alpha, loss_scale, grad_scale, pw, zs, offs):
    # One epoch of epoch_sklearn_t_columns for this thread.
    sync, values, pc, gc, sc, ws, plan, X, Y, sw, idx, wbuf, pw, zs, offs = \
        borrowed((sync, values, pc, gc, sc, ws, plan, X, Y, sw, idx, wbuf, pw, zs, offs))
    n = X.shape[0]
    cap = capacity(ws, plan)
    forward_loss = MSE if loss == POISSON else loss
    pieces = offs.shape[0]
    k, h, m = plan[0, N_IN], plan[0, N_OUT], plan[1, N_OUT]
    ob1 = offs[0, 3]
    total = 0.0
    steps = 0
    for start in range(0, n, batch_size):
        nb = smin(batch_size, n - start)
        par = steps & 1
        wb, w = _batch_weights(wbuf, sw, idx, start, nb)
        xb = gathered_rows(ws, plan, cap, X, idx, start, nb)
        yb = _batch_targets(ws, plan, cap, Y, idx, start, nb, True)
        hidden = forward_pieces(pc, ws, plan, cap, xb, nb, zs[par], offs, thread, threads,
                                RUNTIME)
        if alpha != 0:  # the L2 term's sum over each piece's weights (before its step)
            for piece in range(thread, pieces, threads):
                values[par * pieces + piece] = piece_squares(pc, plan, offs, piece)
        if threads > 1 and not barrier(sync, threads, thread):
            return np.nan, False
        sum_parts(flat_view(_act(ws, plan, cap, 1, nb)), zs, par, nb * m)
        _output_function(ws, plan, cap, nb, forward_loss)
        # (the loss's value on thread 0 only: the others need the deltas)
        value = _loss_and_delta(ws, plan, xb, yb, wb, w, loss, loss_scale, thread == 0)
        if thread == 0:
            if alpha != 0:
                squares = 0.0
                for piece in range(pieces):
                    squares += values[par * pieces + piece]
                value += 0.5 * alpha * squares / w
            total += value * nb
        steps += 1
        t, coef = t0 + steps, alpha / w
        d = _delta(ws, plan, cap, 1, nb)
        deltas = flat_view(_delta(ws, plan, cap, 0, nb))
        for piece in range(thread, pieces, threads):
            lo, hi = _units(h, piece, pieces)
            u, ow0, ob0, ow1 = hi - lo, offs[piece, 0], offs[piece, 1], offs[piece, 2]
            a, dp = piece_deltas(pc, pw, hidden, deltas, d, plan, offs, piece, nb, RUNTIME)
            gemm(matrix(gc, ow1, u, m), a, d, True, False, 1.0, 0.0)
            bias_grad(gc[ob0:ob0 + u], dp)
            gemm(matrix(gc, ow0, k, u), xb, dp, True, False, 1.0, 0.0)
            sklearn_update(pc, gc, sc, hyper, code, t, ow0, ow0 + k * u, grad_scale, coef)
            sklearn_update(pc, gc, sc, hyper, code, t, ob0, ob0 + u, grad_scale, 0.0)
            sklearn_update(pc, gc, sc, hyper, code, t, ow1, ow1 + u * m, grad_scale, coef)
            if piece == 0:
                bias_grad(gc[ob1:ob1 + m], d)
                sklearn_update(pc, gc, sc, hyper, code, t, ob1, ob1 + m, grad_scale, 0.0)
    if threads > 1 and not barrier(sync, threads, thread):  # every piece's last step taken
        return np.nan, False
    return total / n, _all_finite(pc)
