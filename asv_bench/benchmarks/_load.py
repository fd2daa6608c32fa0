"""Training under load, shared by benchmarks/bench_under_load.py and
asv_bench/under_load.py: the networks, processes that spin on every core,
and a fresh process per measured fit (run as a script, it is that process).
"""
import contextlib
import json
import os
import subprocess
import sys
import time

import numpy as np


def _digits(serial_below):
    import fastbp
    X, y = fastbp.datasets.load_digits()
    X_train, X_test, y_train, y_test = fastbp.datasets.train_test_split(X, y, 0.2, seed=0)
    mean, scale = X_train.mean(axis=0), X_train.std(axis=0)
    scale[scale == 0] = 1.0
    net = fastbp.MLP([64, 64, 32, 10], activation="relu", seed=0)
    history = net.fit((X_train - mean) / scale, y_train, epochs=20, batch_size=32, lr=0.001,
                      optimizer="adam", seed=0, verbose=0,
                      validation_data=((X_test - mean) / scale, y_test))
    return float(np.median(history["seconds"]))


def _wide(serial_below):
    import fastbp
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256 * 8, 784)).astype(np.float32)
    y = rng.integers(0, 10, size=len(X))
    net = fastbp.MLP([784, 1024, 1024, 10], activation="relu", dtype="float32", seed=0)
    history = net.fit(X, y, epochs=5, batch_size=256, lr=1e-3, seed=0, verbose=0)
    return float(np.median(history["seconds"][1:]))


NETWORKS = {"digits 64-64-32-10": _digits, "784-1024-1024-10": _wide}


def worker(name, serial_below, threshold_only):
    from fastbp import threads
    if serial_below is not None:
        threads.set_serial_below(serial_below)
    if threshold_only:  # as if no other process ran: the size threshold alone decides
        threads.others_running = lambda: 0
    wall, cpu = time.perf_counter(), time.process_time()
    epoch = NETWORKS[name](serial_below)
    # the share of a core the process had (all its threads), compilation included
    print(json.dumps([epoch, (time.process_time() - cpu) / (time.perf_counter() - wall)]))


SPIN = "import time\nend = time.time() + {}\nwhile time.time() < end: pass"


@contextlib.contextmanager
def spinning(n, seconds=900):
    """n processes that spin (each ends by itself after ``seconds``), ended on exit."""
    spin = [subprocess.Popen([sys.executable, "-c", SPIN.format(seconds)]) for _ in range(n)]
    time.sleep(0.5)
    try:
        yield
    finally:
        for p in spin:
            p.terminate()
        for p in spin:
            p.wait()


def run(name, serial_below, threshold_only=False):
    """Median epoch (s) of a fit in a fresh process, and the CPU share it had."""
    command = [sys.executable, __file__, name]
    command += [str(serial_below), str(threshold_only)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


if __name__ == "__main__":
    serial = None if sys.argv[2] == "None" else int(sys.argv[2])
    worker(sys.argv[1], serial, sys.argv[3] == "True")
