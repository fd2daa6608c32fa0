"""fastbp.sklearn against scikit-learn's MLP, side by side, same parameters
and random_state (so the same training): the three cases of issue 14.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python asv_bench/sklearn_dropin.py

Prints the median of ``--repeat`` fits of each (fastbp warm: its kernels
compiled by a first fit) and the ratio.
"""
import argparse
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
    ]


def timed(cls, X, y, params, repeat):
    times = []
    for _ in range(repeat):
        est = cls(**params)
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(X, y)
        times.append(time.perf_counter() - t)
    return float(np.median(times)), est


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--big-rows", type=int, default=60000)
    args = ap.parse_args()
    from sklearn.neural_network import MLPClassifier as Sk

    from fastbp.sklearn import MLPClassifier as Fb
    print(f"| case | scikit-learn (s) | fastbp.sklearn (s) | speed-up | same weights (max rel. diff) |")
    print("|---|---|---|---|---|")
    for name, X, y, params in cases(args.big_rows):
        repeat = args.repeat if X.shape[0] < 10000 else max(1, args.repeat // 2)
        timed(Fb, X[:300], y[:300], dict(params, max_iter=1), 1)   # compile
        ts, sk = timed(Sk, X, y, params, repeat)
        tf, fb = timed(Fb, X, y, params, repeat)
        diff = max(float(np.abs(a - b).max() / np.abs(b).max())
                   for a, b in zip(fb.coefs_ + fb.intercepts_, sk.coefs_ + sk.intercepts_))
        print(f"| {name} | {ts:.3f} | {tf:.3f} | {ts / tf:.1f}x | {diff:.1e} |", flush=True)


if __name__ == "__main__":
    main()
