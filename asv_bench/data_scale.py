"""Memory and speed at scale (issue 13): each case in a fresh process, peak
RSS above the level reached once the data is loaded (and the kernels warm).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python asv_bench/data_scale.py [case ...]

Cases: memmap_fit, memmap_predict (4M x 28 float32 memory map), classes_fit
(200k x 32, 1000 classes, integer labels), sparse_fit_predict (50k x 100k CSR
at 0.1 %, fastbp) and sklearn_sparse_fit_predict (scikit-learn's
MLPClassifier on the same matrix). The dense equivalent of the sparse case
(50k x 100k float32, 20 GB) does not fit this machine's memory, so it is not run.
The data is generated once into a temporary folder (FASTBP_BENCH_DIR).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

FOLDER = os.environ.get("FASTBP_BENCH_DIR", os.path.join(tempfile.gettempdir(), "fastbp_scale"))
CASES = ("memmap_fit", "memmap_predict", "classes_fit", "sparse_fit_predict",
         "sklearn_sparse_fit_predict")


def _path(name):
    return os.path.join(FOLDER, name)


FILES = ("X4m.npy", "y4m.npy", "X1000.npy", "y1000.npy", "Xsparse.npz", "ysparse.npy")


def _written(name, write):
    """Write one file through ``write(fh)`` into a temporary name, then move it
    into place: an interrupted generation leaves no file that looks complete
    (a memory map is created full size, zeros, before any row is written)."""
    part = _path(name) + ".part"
    with open(part, "wb") as fh:
        write(fh)
    os.replace(part, _path(name))


def make_data():
    """Write the data sets once (in chunks: this process stays small too).
    Each set's target is moved into place before its X, so X's presence
    means both are whole."""
    os.makedirs(FOLDER, exist_ok=True)
    # (a generator per set: one shared, a set already on disk did not advance
    # it, and a generation resumed after an interruption made other data)
    rng = np.random.default_rng(0)
    if not (os.path.exists(_path("X4m.npy")) and os.path.exists(_path("y4m.npy"))):
        parts = _path("X4m.npy") + ".part", _path("y4m.npy") + ".part"
        X = np.lib.format.open_memmap(parts[0], "w+", np.float32, (4_000_000, 28))
        y = np.lib.format.open_memmap(parts[1], "w+", np.int64, (4_000_000,))
        for s in range(0, 4_000_000, 500_000):
            X[s:s + 500_000] = rng.normal(size=(500_000, 28))
            y[s:s + 500_000] = X[s:s + 500_000, 0] + X[s:s + 500_000, 1] > 0
        X.flush()
        y.flush()
        del X, y
        os.replace(parts[1], _path("y4m.npy"))
        os.replace(parts[0], _path("X4m.npy"))
    if not (os.path.exists(_path("X1000.npy")) and os.path.exists(_path("y1000.npy"))):
        rng = np.random.default_rng(1)
        X = rng.normal(size=(200_000, 32)).astype(np.float32)
        y = np.argmax(X @ rng.normal(size=(32, 1000)), axis=1)
        _written("y1000.npy", lambda fh: np.save(fh, y))
        _written("X1000.npy", lambda fh: np.save(fh, X))
    if not (os.path.exists(_path("Xsparse.npz")) and os.path.exists(_path("ysparse.npy"))):
        import scipy.sparse as sp
        rng = np.random.default_rng(2)
        # 100 non-zeros per row (0.1 %): built directly, as sp.random's
        # legacy sampler would permute all 5e9 positions.
        cols = np.sort(rng.integers(0, 100_000, size=(50_000, 100)), axis=1).ravel()
        X = sp.csr_matrix((rng.normal(size=cols.size).astype(np.float32), cols,
                           np.arange(0, cols.size + 1, 100)), shape=(50_000, 100_000))
        X.sum_duplicates()
        y = np.asarray(X @ rng.normal(size=(100_000, 10)).astype(np.float32)).argmax(1)
        _written("ysparse.npy", lambda fh: np.save(fh, y))
        _written("Xsparse.npz", lambda fh: sp.save_npz(fh, X))


def ensure_data():
    """The data sets, generated where missing in a process of their own (asv's
    peakmem_* is the benchmark process's peak RSS: generating in it counted
    the generation's 1.6 GB temporaries, not the fit's memory)."""
    if all(os.path.exists(_path(name)) for name in FILES):
        return
    here = os.path.dirname(os.path.abspath(__file__))
    subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]);"
                    " import data_scale; data_scale.make_data()", here], check=True)


def _rss_mib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak():
    # Linux >= 4.0: writing 5 to clear_refs resets VmHWM to the current RSS.
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def run_case(case):
    """Run one case in this process; returns a dict of measurements."""
    import fastbp
    if case.startswith("memmap"):
        X, y = np.load(_path("X4m.npy"), mmap_mode="r"), np.load(_path("y4m.npy"), mmap_mode="r")
        net = fastbp.MLP([28, 32, 2], seed=0)
        net.fit(np.array(X[:1000]), np.array(y[:1000]), epochs=1, verbose=0)  # warm kernels
        # (more than 1024 rows: the chunked, threaded predict the measured one takes)
        net.predict(X[:2048])
        float(X.sum()), int(y.sum())  # the data "loaded": every page resident
        def work():
            if case == "memmap_fit":
                net.fit(X, y, epochs=1, batch_size=256, lr=0.05, verbose=0)
            else:
                net.predict(X)
        n = X.shape[0]
    elif case == "classes_fit":
        X, y = np.load(_path("X1000.npy")), np.load(_path("y1000.npy"))
        net = fastbp.MLP([32, 64, 1000], seed=0)
        net.fit(X[:1000], y[:1000], epochs=1, verbose=0)
        net.predict(X[:2048])   # (the chunked predict the measured one takes)

        def work():
            net.fit(X, y, epochs=1, batch_size=256, lr=0.05, verbose=0)
            net.predict(X)
        n = X.shape[0]
    else:
        import scipy.sparse as sp
        X, y = sp.load_npz(_path("Xsparse.npz")).tocsr(), np.load(_path("ysparse.npy"))
        n = X.shape[0]
        if case == "sparse_fit_predict":
            net = fastbp.MLP([100_000, 32, 10], activation="relu", seed=0)
            # 1,000 rows: enough non-zeros for the transposed first layer
            # that the measured fit and predict take (compiled here, not there)
            net.fit(X[:1000], y[:1000], epochs=1, verbose=0)
            net.predict(X[:2048])   # (over 1024 rows: the chunked predict measured)

            def work():
                net.fit(X, y, epochs=1, batch_size=200, lr=0.05, verbose=0)
                net.predict(X)
        else:
            import warnings

            from sklearn.neural_network import MLPClassifier
            clf = MLPClassifier(hidden_layer_sizes=(32,), solver="sgd", learning_rate_init=0.05,
                                batch_size=200, max_iter=1, shuffle=True, random_state=0)

            def work():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    clf.fit(X, y)
                clf.predict(X)
    base = _rss_mib("VmRSS")
    exact = _reset_peak()
    t0 = time.perf_counter()
    work()
    seconds = time.perf_counter() - t0
    peak = _rss_mib("VmHWM")
    return {"case": case, "loaded_MiB": round(base, 1), "above_MiB": round(peak - base, 1),
            "peak_exact": exact, "seconds": round(seconds, 3),
            "samples_per_s": round(n / seconds)}


def main(cases):
    unknown = [c for c in cases if c not in CASES]
    if unknown:  # (--help too: the usage, before any data is made)
        print(__doc__)
        if unknown not in (["-h"], ["--help"]):
            sys.exit(f"unknown case(s) {unknown}; the cases: {', '.join(CASES)}")
        sys.exit(0)
    make_data()
    for case in cases:
        out = subprocess.run([sys.executable, __file__, "--one", case], capture_output=True,
                             text=True)
        if out.returncode:
            print(case, "failed:", out.stderr[-2000:])
            continue
        print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(run_case(sys.argv[2])))
    else:
        main(sys.argv[1:] or CASES)
