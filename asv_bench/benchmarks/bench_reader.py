"""The command line's reader: ``fastbp train big.csv --epochs 1`` on a 1M-row,
28-feature CSV (about 250 MB, generated in setup), against ``np.loadtxt``
reading the same file, each in a fresh process.

Issue 13's targets: the whole command within 2x the time ``np.loadtxt``
takes, and a peak RSS under 1 GiB. ``python asv_bench/benchmarks/bench_reader.py
[rows]`` prints the same figures without asv.
"""
import os
import subprocess
import sys
import tempfile
import time

ROWS = 1_000_000
FEATURES = 28
LOADTXT = ("import sys, numpy as np\n"
           "np.loadtxt(sys.argv[1], delimiter=',', skiprows=1, dtype=np.float32)")
TRAIN = "import sys; from fastbp.cli import main; sys.exit(main(sys.argv[1:]))"


def write_csv(path, rows=ROWS, seed=0):
    """A binary task on FEATURES normal features, six significant digits."""
    import numpy as np
    rng = np.random.default_rng(seed)
    header = ",".join([f"f{i}" for i in range(FEATURES)] + ["label"])
    with open(path, "w") as fh:
        fh.write(header + "\n")
        for start in range(0, rows, 100_000):
            X = rng.normal(size=(min(100_000, rows - start), FEATURES))
            y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).astype(int)
            np.savetxt(fh, np.column_stack([X, y]), delimiter=",",
                       fmt=["%.6g"] * FEATURES + ["%d"])
    return path


def run(code, *args):
    """Wall seconds of a fresh Python process running code."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def measure(path):
    """loadtxt seconds, train seconds, train peak RSS (MiB), each in its own
    process (the RSS read by a parent of its own, whose only child it is)."""
    loadtxt = run(LOADTXT, path)
    code = ("import resource, subprocess, sys\n"
            "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, sys.executable, "-c", TRAIN, "train", path,
                          "--epochs", "1", "--verbose", "0"], check=True, capture_output=True,
                         text=True)
    train = time.perf_counter() - t0
    return loadtxt, train, float(out.stdout.split()[-1])


class CommandLineRead:
    """Read + train one epoch of the 1M-row CSV, fresh processes, warm kernels."""
    timeout = 900
    number = 1
    repeat = 3
    warmup_time = 0

    def setup(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = write_csv(os.path.join(self.dir.name, "big.csv"))
        small = write_csv(os.path.join(self.dir.name, "small.csv"), rows=1000)
        run(TRAIN, "train", small, "--epochs", "1", "--verbose", "0")  # warm the kernels

    def teardown(self):
        self.dir.cleanup()

    def time_loadtxt(self):
        run(LOADTXT, self.path)

    def time_train_one_epoch(self):
        run(TRAIN, "train", self.path, "--epochs", "1", "--verbose", "0")

    def track_train_over_loadtxt(self):
        loadtxt, train, _ = measure(self.path)
        return train / loadtxt
    track_train_over_loadtxt.unit = "ratio"

    def track_train_peak_rss(self):
        return measure(self.path)[2]
    track_train_peak_rss.unit = "MiB"


if __name__ == "__main__":
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else ROWS
    with tempfile.TemporaryDirectory() as folder:
        path = write_csv(os.path.join(folder, "big.csv"), rows)
        print(f"{rows} rows x {FEATURES} features: {os.path.getsize(path) / 1e6:.0f} MB")
        small = write_csv(os.path.join(folder, "small.csv"), rows=1000)
        run(TRAIN, "train", small, "--epochs", "1", "--verbose", "0")  # warm the kernels
        for _ in range(3):
            loadtxt, train, rss = measure(path)
            print(f"np.loadtxt {loadtxt:.2f} s; fastbp train --epochs 1 {train:.2f} s"
                  f" ({train / loadtxt:.2f}x), peak RSS {rss:.0f} MiB")
