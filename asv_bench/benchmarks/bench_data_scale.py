"""Peak memory and speed at scale (issue 13). asv's peakmem_* is the peak RSS
of the whole benchmark process, loaded data included; the figures above the
loaded data, per case in a fresh process, come from asv_bench/data_scale.py:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python asv_bench/data_scale.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import data_scale  # noqa: E402  (the data sets, generated once into a temp folder)


class MemmapFitPredict:
    """4M x 28 float32 memory map: trained and predicted in place."""
    timeout = 600

    def setup(self):
        data_scale.ensure_data()
        import fastbp
        self.X = np.load(data_scale._path("X4m.npy"), mmap_mode="r")
        self.y = np.load(data_scale._path("y4m.npy"), mmap_mode="r")
        self.net = fastbp.MLP([28, 32, 2], seed=0)
        self.net.fit(np.array(self.X[:1000]), np.array(self.y[:1000]), epochs=1, verbose=0)
        self.net.predict(self.X[:2048])   # (the chunked predict measured: compiled here)

    def peakmem_fit(self):
        self.net.fit(self.X, self.y, epochs=1, batch_size=256, lr=0.05, verbose=0)

    def peakmem_predict(self):
        self.net.predict(self.X)

    def time_fit(self):
        self.net.fit(self.X, self.y, epochs=1, batch_size=256, lr=0.05, verbose=0)


class ManyClasses:
    """200k x 32, 1000 classes, integer labels (no one-hot matrix)."""
    timeout = 600

    def setup(self):
        data_scale.ensure_data()
        import fastbp
        self.X = np.load(data_scale._path("X1000.npy"))
        self.y = np.load(data_scale._path("y1000.npy"))
        self.net = fastbp.MLP([32, 64, 1000], seed=0)
        self.net.fit(self.X[:1000], self.y[:1000], epochs=1, verbose=0)

    def peakmem_fit(self):
        self.net.fit(self.X, self.y, epochs=1, batch_size=256, lr=0.05, verbose=0)

    def time_fit(self):
        self.net.fit(self.X, self.y, epochs=1, batch_size=256, lr=0.05, verbose=0)


class SparseFitPredict:
    """50k x 100k CSR at 0.1 %: fastbp against scikit-learn's MLPClassifier
    (the dense equivalent, 20 GB in float32, does not fit in memory here).
    Not the same training: fastbp's plain SGD against scikit-learn's sgd
    with its defaults, Nesterov momentum 0.9 and alpha 1e-4; the memory and
    the pace of each, not their results, are compared."""
    timeout = 900
    params = ["fastbp", "sklearn"]
    param_names = ["library"]

    def setup(self, library):
        data_scale.ensure_data()
        import scipy.sparse as sp
        self.X = sp.load_npz(data_scale._path("Xsparse.npz")).tocsr()
        self.y = np.load(data_scale._path("ysparse.npy"))
        if library == "fastbp":
            import fastbp
            self.model = fastbp.MLP([100_000, 32, 10], activation="relu", seed=0)
            # 1,000 rows: enough non-zeros for the transposed first layer
            # (fastbp.train.transpose_first_layer) that the whole fit and
            # predict take, so that both are compiled here, not measured.
            self.model.fit(self.X[:1000], self.y[:1000], epochs=1, verbose=0)
            self.model.predict(self.X[:2048])   # (over 1024 rows: the chunked path)
            self.kwargs = dict(epochs=1, batch_size=200, lr=0.05, verbose=0)
        else:
            from sklearn.neural_network import MLPClassifier
            self.model = MLPClassifier(hidden_layer_sizes=(32,), solver="sgd",
                                       learning_rate_init=0.05, batch_size=200, max_iter=1,
                                       random_state=0)
            self.kwargs = {}

    def _run(self):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn: max_iter=1 has not converged
            self.model.fit(self.X, self.y, **self.kwargs)
        self.model.predict(self.X)

    def peakmem_fit_predict(self, library):
        self._run()

    def time_fit_predict(self, library):
        self._run()


class SparseEpoch:
    """One epoch of plain SGD on 200,000 x 5,000 CSR at 1 % (5000-32-10,
    batch 32, float32), shuffled and in order: the first layer stored
    transposed for the epoch (fastbp.train.first_layer_transposed) and the
    next batch's rows asked for while this one computes. Before both, 185 us
    a step in order and 206 shuffled; after, 25-32 and 30-37 (2026-12-04)."""
    timeout = 600
    params = [False, True]
    param_names = ["shuffle"]

    def setup(self, shuffle):
        import scipy.sparse as sp
        import fastbp
        # A Generator: with random_state=0 SciPy's legacy sampler shuffles all
        # 1e9 positions (2.5 min and 8 GB); the same density in 2 s.
        self.X = sp.random(200_000, 5_000, density=0.01, format="csr", dtype=np.float32,
                           random_state=np.random.default_rng(0))
        self.y = np.random.default_rng(0).integers(0, 10, 200_000)
        self.net = fastbp.MLP([5_000, 32, 10], activation="relu", seed=0)
        self.net.fit(self.X[:64], self.y[:64], epochs=1, batch_size=32, verbose=0, shuffle=shuffle)

    def time_epoch(self, shuffle):
        self.net.fit(self.X, self.y, epochs=1, batch_size=32, lr=1e-3, verbose=0, shuffle=shuffle)


class SklearnSparseLbfgs:
    """fastbp.sklearn against scikit-learn, L-BFGS on CSR data: 50,000 x 5,000
    at 1 %, hidden_layer_sizes=(64,), 10 iterations, float64. fastbp runs
    the optimisation with the first layer stored transposed (17.2 s for 20
    iterations before, 3.5-4.4 s after, scikit-learn 4.1-5.0 s; for these 10
    iterations 2.3-2.7 s against 2.7-3.2 s, 2026-12-04)."""
    timeout = 600
    params = ["fastbp", "sklearn"]
    param_names = ["library"]

    def setup(self, library):
        import warnings
        import scipy.sparse as sp
        if library == "fastbp":
            from fastbp.sklearn import MLPClassifier
        else:
            from sklearn.neural_network import MLPClassifier
        self.X = sp.random(50_000, 5_000, density=0.01, format="csr",
                           random_state=np.random.default_rng(0))  # (see SparseEpoch)
        s = np.asarray(self.X[:, :50].sum(axis=1)).ravel()
        self.y = (s > np.median(s)).astype(int)
        self.make = lambda: MLPClassifier(hidden_layer_sizes=(64,), solver="lbfgs", max_iter=10,
                                          random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.make().set_params(max_iter=1).fit(self.X[:500], self.y[:500])  # compile

    def time_fit(self, library):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.make().fit(self.X, self.y)
