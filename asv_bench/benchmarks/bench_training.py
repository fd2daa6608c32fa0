"""End-to-end training: one epoch of plain SGD over the compare.py grid."""
import time

import numpy as np

import fastbp

from ._common import GRID, data, steps_for, warm_fit


class TrainEpoch:
    params = (list(GRID), ["float32", "float64"], [False, True])
    param_names = ["network", "dtype", "shuffle"]
    timeout = 300

    def setup(self, network, dtype, shuffle):
        sizes, self.batch, act = GRID[network]
        self.n = self.batch * steps_for(sizes, self.batch)
        self.X, self.y = data(sizes, self.n, dtype)
        self.net = fastbp.MLP(sizes, activation=act, dtype=dtype, seed=0)
        warm_fit(self.net, self.X, self.y, self.batch)

    def _epoch(self, shuffle):
        return self.net.fit(self.X, self.y, epochs=1, batch_size=self.batch, lr=1e-4,
                            shuffle=shuffle, verbose=0)

    def time_epoch(self, network, dtype, shuffle):
        self._epoch(shuffle)

    def track_samples_per_second(self, network, dtype, shuffle):
        seconds = [self._epoch(shuffle)["seconds"][0] for _ in range(5)]
        return self.n / float(np.median(seconds))
    track_samples_per_second.unit = "samples/s"



class ShuffledFromMemory:
    """A shuffled epoch over 262,144 rows (21-134 MB of X: beyond the caches)
    against the same epoch in order, on small networks (batch 32, tanh),
    where the gather of each batch's scattered rows is a large part of a
    step. The epochs prefetch the next batch's rows while this one computes
    (fastbp.network._prefetch_next); without it, shuffling cost 64-32-10
    float32 7.8 against 6.4 us a step. Compare shuffle=True with False."""
    params = (["20-16-2", "64-32-10"], ["float32", "float64"], [False, True])
    param_names = ["network", "dtype", "shuffle"]
    timeout = 300
    ROWS = 262144

    def setup(self, network, dtype, shuffle):
        sizes = [int(s) for s in network.split("-")]
        self.X, self.y = data(sizes, self.ROWS, dtype)
        self.net = fastbp.MLP(sizes, activation="tanh", dtype=dtype, seed=0)
        warm_fit(self.net, self.X, self.y, 32)
        # One timed epoch itself: 8,192 steps of 64-32-10 split the hidden
        # units between two threads (fastbp._columns), a kernel short fits
        # never compile (review HEH: 3.16 s against 54 ms in a cold --quick run).
        self.time_epoch(network, dtype, shuffle)

    def time_epoch(self, network, dtype, shuffle):
        self.net.fit(self.X, self.y, epochs=1, batch_size=32, lr=1e-4, shuffle=shuffle, verbose=0)

class Activations:
    """One epoch of plain SGD on 64-32-32-10 (batch 32, float32, 4,096 rows)
    per hidden activation, with softmax outputs (class labels) and with
    sigmoid outputs (multi-label 0/1 targets, binary cross-entropy). Compare
    the rows of one run as ratios: tanh is the default."""
    params = (["tanh", "relu", "elu", "softplus"], ["softmax", "sigmoid"])
    param_names = ["activation", "output"]

    def setup(self, activation, output):
        sizes, self.batch, n = [64, 32, 32, 10], 32, 4096
        rng = np.random.default_rng(0)
        self.X = rng.normal(size=(n, 64)).astype("float32")
        self.y = (rng.integers(0, 10, n) if output == "softmax"
                  else (rng.random((n, 10)) > 0.5).astype("float32"))
        self.net = fastbp.MLP(sizes, activation=activation, output=output, seed=0)
        warm_fit(self.net, self.X, self.y, self.batch)

    def time_epoch(self, activation, output):
        self.net.fit(self.X, self.y, epochs=1, batch_size=self.batch, lr=1e-4, verbose=0)


class Regularisation:
    """The cost of alpha and dropout: one epoch of plain SGD and of Adam on
    784-256-256-10 (batch 128, float32) with none, alpha=1e-4, dropout=0.2
    and both. Compare the rows of one run as ratios."""
    params = (["none", "alpha", "dropout", "both"], ["sgd", "adam"])
    param_names = ["regularisation", "optimizer"]
    timeout = 300
    KW = {"none": {}, "alpha": {"alpha": 1e-4}, "dropout": {"dropout": 0.2},
          "both": {"alpha": 1e-4, "dropout": 0.2}}

    def setup(self, regularisation, optimizer):
        sizes, self.batch, act = GRID["784-256-256-10"]
        self.n = self.batch * steps_for(sizes, self.batch)
        self.X, self.y = data(sizes, self.n, "float32")
        self.net = fastbp.MLP(sizes, activation=act, seed=0, **self.KW[regularisation])
        self.net.fit(self.X[:self.batch], self.y[:self.batch], batch_size=self.batch, verbose=0,
                     optimizer=optimizer, lr=1e-4)

    def time_epoch(self, regularisation, optimizer):
        self.net.fit(self.X, self.y, epochs=1, batch_size=self.batch, verbose=0)


class Threads:
    """784-1024-1024-10, batch 256, fits of 8 and 64 steps: two threads against
    one, and NumPy's own BLAS called just before fit. NumPy's OpenBLAS pool
    spins for about 0.1 s after its last call; a fit that starts inside that
    window shares the cores with it until it ends."""
    params = (["float32", "float64"], [8, 64])
    param_names = ["dtype", "steps"]
    timeout = 600

    def setup(self, dtype, steps):
        sizes, self.batch, act = GRID["784-1024-1024-10"]
        self.n = self.batch * steps
        self.X, self.y = data(sizes, self.n, dtype)
        self.net = fastbp.MLP(sizes, activation=act, dtype=dtype, seed=0)
        warm_fit(self.net, self.X, self.y, self.batch)
        self.A = np.random.default_rng(0).random((512, 512)).astype(dtype)

    def _rate(self, before=None):
        rates = []
        for _ in range(3):
            if before is not None:
                before()
            t0 = time.perf_counter()
            self.net.fit(self.X, self.y, epochs=1, batch_size=self.batch, lr=1e-4, shuffle=False,
                         verbose=0)
            rates.append(self.n / (time.perf_counter() - t0))
        return float(np.median(rates))

    def track_two_threads_over_one(self, dtype, steps):
        with fastbp.set_num_threads(1):
            one = self._rate()
        with fastbp.set_num_threads(min(2, fastbp.threads.default_num_threads())):
            two = self._rate()
        return two / one
    track_two_threads_over_one.unit = "ratio"

    def track_numpy_blas_before_fit_slowdown(self, dtype, steps):
        alone = self._rate()
        mixed = self._rate(before=lambda: self.A @ self.A)
        return alone / mixed
    track_numpy_blas_before_fit_slowdown.unit = "ratio"

    def track_numpy_blas_after_fit_slowdown(self, dtype, steps):
        """NumPy matmul time right after a fit over its time on a rested machine."""
        def matmul_time():
            t0 = time.perf_counter()
            self.A @ self.A
            return time.perf_counter() - t0
        rested, after = [], []
        for _ in range(3):
            time.sleep(0.5)
            rested.append(matmul_time())
            self.net.fit(self.X, self.y, epochs=1, batch_size=self.batch, lr=1e-4, shuffle=False,
                         verbose=0)
            after.append(matmul_time())
        return float(np.median(after) / np.median(rested))
    track_numpy_blas_after_fit_slowdown.unit = "ratio"


class FirstFit:
    """import fastbp + the first fit of a small net in a fresh process, with
    the on-disk cache warm (cold: see compile-time notes in the README)."""
    timeout = 600

    def timeraw_import_and_first_fit_warm(self):
        return """
import numpy as np
import fastbp
net = fastbp.MLP([4, 8, 3], seed=0)
net.fit(np.ones((16, 4)), np.arange(16) % 3, epochs=1, verbose=0)
"""


class ColumnSplit:
    """A fit of one hidden layer with its units split between two threads
    (fastbp._columns) against the plain kernels: 2,048 rows, 4,096 batches
    of 32 in all, plain SGD, tanh. Compare split=True with False within one
    run (asv_bench/column_split.py prints the ratios side by side)."""
    params = (["64-32-10", "64-100-10"], ["float32", "float64"], [False, True])
    param_names = ["network", "dtype", "split"]
    timeout = 300
    ROWS, EPOCHS = 2048, 64

    def setup(self, network, dtype, split):
        from fastbp import _columns
        self.sizes = [int(s) for s in network.split("-")]
        self.X, self.y = data(self.sizes, self.ROWS, dtype)
        self.splits = _columns.splits if split else (lambda *args: False)
        self.dtype = dtype
        self.time_fit(network, dtype, split)  # compile / load the kernel

    def time_fit(self, network, dtype, split):
        from unittest import mock

        from fastbp import _columns
        net = fastbp.MLP(self.sizes, activation="tanh", dtype=self.dtype, seed=0)
        with mock.patch.object(_columns, "splits", self.splits):
            net.fit(self.X, self.y, epochs=self.EPOCHS, batch_size=32, lr=1e-4, shuffle=False,
                    verbose=0)
