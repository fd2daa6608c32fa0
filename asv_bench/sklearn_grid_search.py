"""GridSearchCV over fastbp.sklearn in two worker processes against one.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python asv_bench/sklearn_grid_search.py

A grid on the digits whose fits take about a second each. First a probe
that starts joblib's two workers (timed: imports and kernels loaded from
Numba's cache): in each, how many fastbp kernels it compiled (0: all loaded
from the cache written by the first fit here), how many BLAS threads its
pools have (joblib limits them to cpus // n_jobs, so two workers never
oversubscribe two cores) and what fastbp's products use. Then GridSearchCV
with n_jobs=1 and n_jobs=2 (the same, already started workers), interleaved
(``--repeat`` times each): median wall times and their ratio, with the load
average before and after. Last, four fits here and in the workers, each
fit's wall and CPU time (equal CPU: nothing wasted in the workers; wall
over CPU: the share of a core each process got).
"""
import argparse
import os
import time
import warnings

import numpy as np

GRID = {"hidden_layer_sizes": [(192,), (256,)], "alpha": [1e-4, 1e-3]}
PARAMS = dict(max_iter=150, tol=0.0, random_state=0)


def data():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return X / 16, y


def grid_search(X, y, n_jobs):
    from sklearn.model_selection import GridSearchCV

    from fastbp.sklearn import MLPClassifier
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = GridSearchCV(MLPClassifier(**PARAMS), GRID, cv=3, n_jobs=n_jobs).fit(X, y)
    return time.perf_counter() - t, search


def probe(X, y, params):
    """Runs in a worker: one fit and its score, then what the worker compiled and its threads."""
    import threadpoolctl

    import fastbp
    from fastbp import _jit
    from fastbp.sklearn import MLPClassifier
    before = _jit.compilations()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MLPClassifier(**dict(PARAMS, max_iter=2, **params)).fit(X, y).score(X, y)
    blas = [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
            if lib["user_api"] == "blas"]
    return dict(pid=os.getpid(), compiled=_jit.compilations() - before, blas_threads=blas,
                fastbp_threads=fastbp.get_num_threads())


def timed_fit(X, y, hidden):
    """One fit's (wall, CPU) seconds, in whichever process runs it."""
    from fastbp.sklearn import MLPClassifier
    t, c = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        MLPClassifier(**dict(PARAMS, hidden_layer_sizes=(hidden,))).fit(X, y)
    return time.perf_counter() - t, time.process_time() - c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--hidden", default="192,256",
                    help="the grid's hidden layer sizes, comma-separated (one hidden layer each)")
    ap.add_argument("--epochs", type=int, default=PARAMS["max_iter"], help="max_iter of every fit")
    args = ap.parse_args()
    sizes = [int(h) for h in args.hidden.split(",")]
    GRID["hidden_layer_sizes"] = [(h,) for h in sizes]
    PARAMS["max_iter"] = args.epochs
    from joblib import Parallel, delayed
    from sklearn.model_selection import ParameterGrid

    from fastbp.sklearn import MLPClassifier
    X, y = data()
    with warnings.catch_warnings():   # compile once here: the workers load the cache
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        first = MLPClassifier(**dict(PARAMS, hidden_layer_sizes=(sizes[0],)))
        first.fit(X[:1198], y[:1198])
        first.score(X[1198:], y[1198:])   # (the searches score each fold: its kernels too)
        print(f"one fit ({sizes[0]} hidden units, 1198 rows, {PARAMS['max_iter']} epochs):"
              f" {time.perf_counter() - t:.2f} s")
    # The probe first: it starts joblib's two workers (reused by the searches
    # below), so their start (imports, kernels loaded from the cache) is
    # timed apart from the searches.
    t = time.perf_counter()
    seen = Parallel(n_jobs=2)(delayed(probe)(X, y, p) for p in ParameterGrid(GRID))
    print(f"starting 2 workers and a first 2-epoch fit in each: {time.perf_counter() - t:.2f} s")
    for s in seen:
        print("  worker", s)
    print(f"load average before: {os.getloadavg()}")
    times = {1: [], 2: []}
    for _ in range(args.repeat):
        for n_jobs in (1, 2):
            seconds, search = grid_search(X, y, n_jobs)
            times[n_jobs].append(seconds)
            print(f"  n_jobs={n_jobs}: {seconds:.2f} s (best {search.best_params_},"
                  f" score {search.best_score_:.4f})", flush=True)
    one, two = np.median(times[1]), np.median(times[2])
    fits = len(ParameterGrid(GRID)) * 3 + 1
    print(f"GridSearchCV, {fits} fits: n_jobs=1 {one:.2f} s, n_jobs=2 {two:.2f} s (medians of"
          f" {args.repeat}): {one / two:.2f}x")
    print(f"load average after: {os.getloadavg()}")
    # Why a ratio is what it is: the same 4 fits here one after another and
    # in the two workers, each fit's wall and CPU time. Equal CPU per fit
    # means no oversubscription or compiling in the workers; wall over CPU
    # in the workers is the share of a core each got.
    for label, run in [("here, one after another", lambda: [timed_fit(X, y, sizes[-1]) for _ in range(4)]),
                       ("in the 2 workers", lambda: Parallel(n_jobs=2)(
                           delayed(timed_fit)(X, y, sizes[-1]) for _ in range(4)))]:
        t = time.perf_counter()
        fits = np.array(run())
        print(f"4 fits {label}: {time.perf_counter() - t:.2f} s; per fit median wall"
              f" {np.median(fits[:, 0]):.3f} s, CPU {np.median(fits[:, 1]):.3f} s")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
