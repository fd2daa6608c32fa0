"""Startup: what a new user waits for before the first epoch.

Each measurement is a fresh Python process. *Cold*: an empty
``NUMBA_CACHE_DIR``, so every kernel the command needs is compiled. *Warm*:
the cache a cold run left, so they are loaded. The issue's target is cold
<= 5x warm for both commands; ``track_*_ratio`` follows it. The per-function
breakdown is ``python asv_bench/compile_profile.py``.
"""
import os
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    # the README's first command, on the built-in digits (Adam)
    "train": "from fastbp.cli import main; main(['train', '--epochs', '5', '--verbose', '0'])",
    # the API: import, a first fit of a small net (plain SGD) and predict
    "fit_predict": ("import numpy as np, fastbp\n"
                    "X = np.random.default_rng(0).normal(size=(64, 4))\n"
                    "net = fastbp.MLP([4, 8, 2], seed=0)\n"
                    "net.fit(X, (X[:, 0] > 0).astype(int), epochs=5, verbose=0)\n"
                    "net.predict(X)"),
}

# The first fit after import with a warm cache: loading, not compiling.
FIRST_FIT = ("import time, numpy as np, fastbp\n"
             "X = np.random.default_rng(0).normal(size=(64, 4))\n"
             "net = fastbp.MLP([4, 8, 2], seed=0)\n"
             "t = time.perf_counter()\n"
             "net.fit(X, (X[:, 0] > 0).astype(int), epochs=1, verbose=0)\n"
             "net.predict(X)\n"
             "print(time.perf_counter() - t)")


def _run(code, cache):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTBP_INSTALL_CACHE="0")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return time.perf_counter() - t0, out.stdout


class ColdStart:
    params = list(COMMANDS)
    param_names = ["command"]
    timeout = 900
    number = 1
    repeat = 1
    warmup_time = 0

    def setup(self, command):
        self.cold_dir = tempfile.TemporaryDirectory()
        self.warm_dir = tempfile.TemporaryDirectory()
        _run(COMMANDS[command], self.warm_dir.name)  # fill the warm cache

    def teardown(self, command):
        self.cold_dir.cleanup()
        self.warm_dir.cleanup()

    def time_cold(self, command):
        with tempfile.TemporaryDirectory() as empty:
            _run(COMMANDS[command], empty)

    def time_warm(self, command):
        _run(COMMANDS[command], self.warm_dir.name)

    def track_cold_over_warm_ratio(self, command):
        with tempfile.TemporaryDirectory() as empty:
            cold, _ = _run(COMMANDS[command], empty)
        warm, _ = _run(COMMANDS[command], self.warm_dir.name)
        return cold / warm

    track_cold_over_warm_ratio.unit = "x"


class FirstRunAfterImport:
    """Seconds from a fresh import to a fitted, predicting model: loading the
    cached kernels (and Numba's dispatch on first call), not compiling."""
    timeout = 600
    number = 1
    repeat = 1

    def setup(self):
        self.cache = tempfile.TemporaryDirectory()
        _run(FIRST_FIT, self.cache.name)

    def teardown(self):
        self.cache.cleanup()

    def track_first_fit_and_predict(self):
        return float(_run(FIRST_FIT, self.cache.name)[1].split()[-1])

    track_first_fit_and_predict.unit = "seconds"
