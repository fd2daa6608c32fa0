"""fastbp.sklearn against scikit-learn's MLP, side by side, same parameters
and random_state (so the same training): the three cases of issue 14, and
scikit-learn's L-BFGS solver on the digits.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python asv_bench/sklearn_dropin.py

Fits alternate (interleaved repeats, so a change of load on a shared
machine hits all): scikit-learn with its BLAS pool as it is, scikit-learn
on one BLAS thread (threadpoolctl; its best on a busy machine, where two
spinning OpenBLAS threads slow it many times over), fastbp.sklearn (its
batches of 64 rows or more split between two threads where a core is free),
and fastbp.sklearn on one thread (``fastbp.set_num_threads(1)``). Prints
the median wall and CPU time of each, the ratios, the largest relative
weight difference, and the load average before and after. fastbp is warm
(its kernels compiled by a first small fit).
"""
import argparse
import os
import time
import warnings

import numpy as np


def cases(big_rows):
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = X / 16
    rng = np.random.default_rng(0)
    Xb = rng.random((big_rows, 784), dtype=np.float32)
    yb = (Xb[:, :10].argmax(1) + (Xb[:, 10] > 0.5)) % 10
    return [
        ("digits, defaults (adam, batch 200, (100,)), 30 epochs", X, y,
         dict(max_iter=30, tol=0.0, random_state=0)),
        ("digits, sgd, batch 32, (100,), 30 epochs", X, y,
         dict(solver="sgd", batch_size=32, max_iter=30, tol=0.0, random_state=0)),
        (f"{big_rows} x 784 float32, adam, (100,), 3 epochs", Xb, yb,
         dict(max_iter=3, tol=0.0, random_state=0)),
        ("digits, lbfgs, (100,), to convergence (tol 1e-4)", X, y,
         dict(solver="lbfgs", max_iter=200, random_state=0)),
    ]


PAUSE = 0.3  # seconds of rest before each timed fit (--pause)


def fit_once(cls, X, y, params):
    """(wall, CPU) seconds of one fit, and the fitted estimator. It rests
    PAUSE seconds first: OpenBLAS's idle threads spin on for about 0.1 s after
    a fit that used them, CPU time of this process that process_time() gave
    to the next fit (scikit-learn's "1 BLAS thread" fit ran 0.23 s of CPU in
    0.17 s of wall without the rest, 0.16 / 0.16 with it; as compare.py's
    --pause)."""
    est = cls(**params)
    time.sleep(PAUSE)
    t, c = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    return (time.perf_counter() - t, time.process_time() - c), est


def side_by_side(X, y, params, repeat):
    """Median (wall, CPU) of scikit-learn's fits (its BLAS pool as it is, and
    limited to one thread: its best on a busy machine) and fastbp's, interleaved."""
    from sklearn.neural_network import MLPClassifier as Sk
    from threadpoolctl import threadpool_limits

    import fastbp
    from fastbp.sklearn import MLPClassifier as Fb
    fit_once(Fb, X[:300], y[:300], dict(params, max_iter=1))   # compile (or load the cache)
    sk_t, sk1_t, fb_t, fb1_t = [], [], [], []
    for _ in range(repeat):
        t, sk = fit_once(Sk, X, y, params)
        sk_t.append(t)
        with threadpool_limits(1, user_api="blas"):
            sk1_t.append(fit_once(Sk, X, y, params)[0])
        t, fb = fit_once(Fb, X, y, params)
        fb_t.append(t)
        with fastbp.set_num_threads(1):
            fb1_t.append(fit_once(Fb, X, y, params)[0])
    return (np.median(sk_t, axis=0), np.median(sk1_t, axis=0), np.median(fb_t, axis=0),
            np.median(fb1_t, axis=0), sk, fb)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--big-rows", type=int, default=60000)
    ap.add_argument("--case", type=int, nargs="*", default=[0, 1, 2, 3])
    ap.add_argument("--pause", type=float, default=PAUSE,
                    help="seconds of rest before each timed fit (default %(default)s)")
    args = ap.parse_args()
    globals()["PAUSE"] = args.pause
    print(f"load average before: {os.getloadavg()}")
    print("| case | scikit-learn wall / CPU (s) | scikit-learn, 1 BLAS thread | fastbp.sklearn"
          " wall / CPU (s) | fastbp.sklearn, 1 thread | speed-up wall (CPU) | vs 1 thread"
          " | 1 thread vs 1 thread | same weights (max rel. diff) |")
    print("|---|---|---|---|---|---|---|---|---|")
    all_cases = cases(args.big_rows)
    for i in args.case:
        name, X, y, params = all_cases[i]
        repeat = args.repeat if X.shape[0] < 10000 else max(1, args.repeat // 2)
        (ts, cs), (t1, c1), (tf, cf), (tf1, cf1), sk, fb = side_by_side(X, y, params, repeat)
        diff = max(float(np.abs(a - b).max() / np.abs(b).max())
                   for a, b in zip(fb.coefs_ + fb.intercepts_, sk.coefs_ + sk.intercepts_))
        print(f"| {name} | {ts:.3f} / {cs:.3f} | {t1:.3f} / {c1:.3f} | {tf:.3f} / {cf:.3f} |"
              f" {tf1:.3f} / {cf1:.3f} | {ts / tf:.1f}x ({cs / cf:.1f}x) |"
              f" {t1 / tf:.1f}x ({c1 / cf:.1f}x) | {t1 / tf1:.1f}x | {diff:.1e} |", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
