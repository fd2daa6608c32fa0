"""The epoch and objective kernels behind :mod:`fastbp.sklearn`.

scikit-learn's MLP trains with its own conventions, which these kernels
reproduce over fastbp's flat buffer (see ``sklearn/neural_network``):

- the batch order is given (``idx``, drawn by the wrapper from scikit-learn's
  ``RandomState`` exactly as ``sklearn.utils.shuffle`` draws it);
- its losses are fastbp's times a constant: log loss is fastbp's
  cross-entropy; its binary log loss sums the m sigmoid outputs' means
  (fastbp's BCE averages them: ``loss_scale = grad_scale = m``); its squared
  error is reported as half the mean over all elements (``loss_scale =
  0.5``) while its gradient is that of ``sum (a - y)^2 / (2 n)``
  (``grad_scale = m / 2`` times fastbp's MSE gradient);
- the L2 term ``alpha / (2 n_batch) sum |W|^2`` on weights only, as fastbp's;
- its optimizers are :data:`fastbp.optim.SKL_SGD_CODE` and
  :data:`fastbp.optim.SKL_ADAM_CODE`.

The wrapper validates everything once; these take the model's own arrays.
"""
import numpy as np

from ._jit import jit
from .network import (_backward_batch, _batch, _forward_batch, _logits, add_penalty_gradient,
                      all_finite, capacity, penalty)
from .ops import loss_forward
from .optim import optimizer_step


@jit
def scale(v, c):
    """``v *= c`` over a flat array."""
    k = v.dtype.type(c)
    for i in range(v.size):
        v[i] *= k


@jit
def _loss_and_gradient(grads, params, ws, plan, xb, yb, loss, alpha, loss_scale, grad_scale):
    # scikit-learn's batch loss (L2 term included) and its gradient in grads.
    nb = xb.shape[0]
    out = _forward_batch(params, ws, plan, xb, loss)
    value = loss_forward(_logits(ws, plan, nb), out, yb, loss) * loss_scale
    if alpha != 0:
        value += 0.5 * alpha * penalty(params, plan) / nb
    _backward_batch(grads, params, ws, plan, xb, yb, loss)
    if grad_scale != 1.0:
        scale(grads, grad_scale)
    if alpha != 0:
        add_penalty_gradient(grads, params, plan, alpha / nb)
    return value


@jit
def epoch_sklearn(params, grads, state, ws, plan, X, Y, idx, batch_size, loss, code, hyper, t0,
                  alpha, loss_scale, grad_scale):
    """One epoch of scikit-learn's ``_fit_stochastic`` inner loop, in one call.

    X is (n, n_in), Y is (n, m) float targets; idx (n,) int64 is the epoch's
    row order (batches are idx[start:start + batch_size]); state (2, n_params)
    and hyper are the optimizer's (code SKL_SGD_CODE or SKL_ADAM_CODE), t0
    its step count. Returns ``(mean_loss, steps)``: scikit-learn's
    ``loss_`` (batch losses weighted by batch size over n); the loss is NaN
    when the parameters end the epoch non-finite.
    """
    n = X.shape[0]
    cap = capacity(ws, plan)
    total = 0.0
    steps = 0
    for start in range(0, n, batch_size):
        nb = min(batch_size, n - start)
        xb, yb = _batch(ws, plan, cap, X, Y, idx, start, nb, True)
        value = _loss_and_gradient(grads, params, ws, plan, xb, yb, loss, alpha, loss_scale,
                                   grad_scale)
        total += value * nb
        steps += 1
        optimizer_step(params, grads, state, hyper, code, t0 + steps)
    if not all_finite(params):
        return np.nan, steps
    return total / n, steps


@jit
def objective_sklearn(grads, params, ws, plan, X, Y, loss, alpha, loss_scale, grad_scale):
    """scikit-learn's full-batch loss of (X, Y), its gradient into grads (for L-BFGS)."""
    return _loss_and_gradient(grads, params, ws, plan, X, Y, loss, alpha, loss_scale, grad_scale)
