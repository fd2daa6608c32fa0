"""Shared set-up for the benchmarks: networks, data, a jitted repeat loop."""
import numba
import numpy as np

import fastbp
from fastbp import kernels
from fastbp.ops import bias_grad

# The grid of asv_bench/compare.py but its largest case, 2048-2048-2048-10
# (batch 512: seconds an epoch, too long for asv's repeats; compare.py times
# it): (sizes, batch, activation).
GRID = {
    "2-16-2": ([2, 16, 2], 32, "tanh"),
    "64-32-10": ([64, 32, 10], 32, "tanh"),
    "784-128-10": ([784, 128, 10], 64, "relu"),
    "784-256-256-10": ([784, 256, 256, 10], 128, "relu"),
    "784-1024-1024-10": ([784, 1024, 1024, 10], 256, "relu"),
}


def data(sizes, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, sizes[0])).astype(dtype), rng.integers(0, sizes[-1], size=n)


def steps_for(sizes, batch, flops=5e8):
    per_step = 6 * batch * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return int(np.clip(flops / per_step, 4, 500))


@numba.njit
def repeat_dense_forward(k, out, inp, W, b, act):
    for _ in range(k):
        kernels.dense_forward(out, inp, W, b, act)


@numba.njit
def repeat_dense_backward(k, dinp, dW, db, dout, inp, W, act):
    for _ in range(k):
        kernels.dense_backward(dinp, dW, db, dout, inp, W, act)


@numba.njit
def repeat_bias_grad(k, db, dout):
    for _ in range(k):
        bias_grad(db, dout)


@numba.njit
def repeat_loss(k, dz, z, out, y, loss):
    s = 0.0
    for _ in range(k):
        kernels.output_forward(out, z, kernels.output_of(loss))
        s += kernels.loss_forward(z, out, y, loss)
        kernels.loss_backward(dz, out, y, loss)
    return s


@numba.njit
def repeat_label_loss(k, Z, O, Y, start=0):
    # The cross-entropy of class labels over a rotation of batches (Z, O, Y
    # stacked (batches, n, m) and (batches, n)), from batch ``start``: rows
    # that change from call to call, as a fit's do, so a branch on the data
    # is not learnt (each call going on where the last one stopped: from 0
    # every time, k = 100 read only the first 100 of 509 batches, in L2).
    s = 0.0
    for r in range(start, start + k):
        b = r % Z.shape[0]
        s += kernels.loss_forward(Z[b], O[b], Y[b], kernels.CROSS_ENTROPY)
    return s


@numba.njit
def repeat_sgd(k, params, grads, lr):
    for _ in range(k):
        kernels.sgd_update(params, grads, lr)


def warm_fit(net, X, y, batch):
    net.fit(X[:2 * batch], y[:2 * batch], epochs=1, batch_size=batch, lr=1e-4, shuffle=False, verbose=0)
    return fastbp
