"""Where fastbp.sklearn's time goes: one fit split into the wrapper's Python
work and the kernel's parts (gather, forward, loss, backward, L2 term,
optimizer step), each part timed by itself in a compiled loop over the
epoch's batches (so no Python call per part is counted).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python asv_bench/profile_sklearn.py

Prints per case: the fit's wall and CPU time, the share spent inside the
epoch kernel's calls (``epoch_sklearn_t`` for a dense X, weights in the
transposed layout, or its split-batch and split-columns variants on two
threads, their thread 0's calls; the rest is Python: validation, initialisation,
shuffles, stopping rules, scores), and the per-epoch microseconds of each
kernel part, measured on one BLAS thread and on the pool as it is.
"""
import argparse
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from fastbp import _sklearn_kernels as K
from fastbp._jit import jit
from fastbp.network import _add_penalty_gradient, _batch, capacity
from fastbp.network import _penalty


@jit
def _gather(ws, plan, X, Y, idx, batch, reps):
    cap = capacity(ws, plan)
    for _ in range(reps):
        for start in range(0, X.shape[0], batch):
            _batch(ws, plan, cap, X, Y, idx, start, min(batch, X.shape[0] - start), True)


@jit
def _forward(params, ws, plan, X, Y, idx, batch, loss, reps):
    # The forward pass of a dense fit: weights in the transposed layout.
    cap = capacity(ws, plan)
    for _ in range(reps):
        for start in range(0, X.shape[0], batch):
            xb, yb = _batch(ws, plan, cap, X, Y, idx, start, min(batch, X.shape[0] - start), True)
            K._forward_t(params, ws, plan, xb, loss)


@jit
def _loss(params, ws, plan, X, Y, idx, batch, loss, reps):
    # + the loss and the output deltas.
    cap = capacity(ws, plan)
    wb = np.empty(0)
    total = 0.0
    for _ in range(reps):
        for start in range(0, X.shape[0], batch):
            nb = min(batch, X.shape[0] - start)
            xb, yb = _batch(ws, plan, cap, X, Y, idx, start, nb, True)
            K._forward_t(params, ws, plan, xb, loss)
            total += K._loss_and_delta(ws, plan, xb, yb, wb, float(nb), loss, 1.0)
    return total


@jit
def _backward(grads, params, ws, plan, X, Y, idx, batch, loss, reps):
    # + backpropagation (transposed layout).
    cap = capacity(ws, plan)
    wb = np.empty(0)
    pw = np.empty_like(params)
    for _ in range(reps):
        for start in range(0, X.shape[0], batch):
            nb = min(batch, X.shape[0] - start)
            xb, yb = _batch(ws, plan, cap, X, Y, idx, start, nb, True)
            K._forward_t(params, ws, plan, xb, loss)
            K._loss_and_delta(ws, plan, xb, yb, wb, float(nb), loss, 1.0)
            K._chain_t(grads, params, ws, plan, xb, pw)


@jit
def _l2_value(params, plan, n, batch, reps):
    total = 0.0
    for _ in range(reps):
        for start in range(0, n, batch):
            total += K._sum_squares(params, plan, 0, params.size)
    return total


@jit
def _l2_separate(grads, params, plan, n, batch, reps):
    # The L2 term as two passes of their own (fastbp's network kernels; the
    # sklearn epoch used them before folding the gradient into the step).
    total = 0.0
    for _ in range(reps):
        for start in range(0, n, batch):
            total += _penalty(params, plan)
            _add_penalty_gradient(grads, params, plan, 1e-9)
    return total


@jit
def _step(params, grads, state, hyper, code, plan, coef, n, batch, reps):
    t = 0
    for _ in range(reps):
        for start in range(0, n, batch):
            t += 1
            K._step(params, grads, state, hyper, code, t, plan, 1.0, coef)


def _per_epoch(fn, reps, *args):
    # CPU time of this process (all its threads): on a shared machine wall
    # time counts other processes' turns.
    fn(*args, 1)
    t = time.process_time()
    fn(*args, reps)
    return (time.process_time() - t) / reps * 1e6


def cases():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = X / 16
    rng = np.random.default_rng(0)
    Xb = rng.random((60000, 784), dtype=np.float32)
    yb = (Xb[:, :10].argmax(1) + (Xb[:, 10] > 0.5)) % 10
    return [("digits adam b200", X, y, dict(max_iter=30, tol=0.0, random_state=0), 30),
            ("digits sgd b32", X, y, dict(solver="sgd", batch_size=32, max_iter=30, tol=0.0,
                                          random_state=0), 30),
            ("60k x 784 f32 adam b200", Xb, yb, dict(max_iter=3, tol=0.0, random_state=0), 1)]


def profile(name, X, y, params, reps):
    from fastbp.sklearn import MLPClassifier
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MLPClassifier(**dict(params, max_iter=1)).fit(X[:500], y[:500])   # compile
        est = MLPClassifier(**params)
        inside = [0.0]
        epochs = {name: getattr(K, name) for name in ("epoch_sklearn", "epoch_sklearn_t",
                                                      "epoch_sklearn_t_split",
                                                      "epoch_sklearn_t_columns")}

        def timed(epoch):
            threaded = epoch in (K.epoch_sklearn_t_split, K.epoch_sklearn_t_columns)

            def timed_epoch(*a):
                if threaded and a[0] != 0:  # a helper thread's call runs until stopped
                    return epoch(*a)
                t = time.perf_counter()
                out = epoch(*a)
                inside[0] += time.perf_counter() - t
                return out
            return timed_epoch
        for kernel, epoch in epochs.items():
            setattr(K, kernel, timed(epoch))
        try:
            t, c = time.perf_counter(), time.process_time()
            est.fit(X, y)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
        finally:
            for kernel, epoch in epochs.items():
                setattr(K, kernel, epoch)
    net = est.net_
    epochs = est.n_iter_
    print(f"{name}: fit {wall * 1e3:.1f} ms wall, {cpu * 1e3:.1f} ms CPU, {epochs} epochs;"
          f" in the epoch kernel {inside[0] / wall:.0%}, Python {(wall - inside[0]) * 1e3:.1f} ms"
          f" ({(wall - inside[0]) / epochs * 1e6:.0f} us/epoch)")
    Xc = np.ascontiguousarray(X, dtype=net.dtype)
    Y = est._label_binarizer.transform(y).astype(net.dtype)
    batch = min(200, X.shape[0]) if params.get("batch_size", "auto") == "auto" else params["batch_size"]
    idx = np.random.default_rng(0).permutation(X.shape[0]).astype(np.int64)
    ws, grads, plan = net._workspace(batch), np.zeros_like(net.params), net.plan
    p = np.empty_like(net.params)
    K.relayout(p, net.params, plan, True)   # a dense fit's layout (weights transposed)
    opt = est._optimizer
    state = np.zeros_like(opt.state)
    loss = net._loss_code
    for threads in (1, None):
        with threadpool_limits(threads, user_api="blas"):
            parts = {
                "gather": _per_epoch(_gather, reps, ws, plan, Xc, Y, idx, batch),
                "forward": _per_epoch(_forward, reps, p, ws, plan, Xc, Y, idx, batch, loss),
                "+loss": _per_epoch(_loss, reps, p, ws, plan, Xc, Y, idx, batch, loss),
                "+backward": _per_epoch(_backward, reps, grads, p, ws, plan, Xc, Y, idx, batch, loss),
                "L2 value": _per_epoch(_l2_value, reps, p, plan, X.shape[0], batch),
                "step (+L2 gradient)": _per_epoch(_step, reps, p, grads, state, opt.hyper.copy(),
                                                  opt.code, plan, 1e-9, X.shape[0], batch),
                "(old: L2 in 2 passes)": _per_epoch(_l2_separate, reps, grads, p, plan,
                                                    X.shape[0], batch),
            }
        label = "1 thread" if threads else "pool"
        print(f"  {label:8s} CPU us/epoch: " + ", ".join(f"{k} {v:.0f}" for k, v in parts.items()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", type=int, nargs="*", default=[0, 1, 2])
    args = ap.parse_args()
    all_cases = cases()
    for i in args.case:
        profile(*all_cases[i])


if __name__ == "__main__":
    main()
