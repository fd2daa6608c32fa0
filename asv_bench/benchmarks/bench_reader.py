"""The command line's reader: ``fastbp train big.csv --epochs 1`` on a 1M-row,
28-feature CSV (about 250 MB, generated in setup), against ``np.loadtxt``
reading the same file, each in a fresh process.

Issue 13's targets: the whole command within 2x the time ``np.loadtxt``
takes, and a peak RSS under 1 GiB. ``python asv_bench/benchmarks/bench_reader.py
[rows [repeats [src ...]]]`` prints the same figures without asv: interleaved
repeats, each with its wall and CPU ratio, then the medians; with source
trees given, each takes its turn (before/after in one run).
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


WRAP = ("import resource, subprocess, sys\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
        "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(r.ru_maxrss / 1024, r.ru_utime + r.ru_stime)")


def run(code, *args):
    """Wall seconds of a fresh Python process running code."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def child(code, *args, src=None):
    """Wall seconds, CPU seconds (user + system, every thread) and peak RSS
    (MiB) of a fresh Python process running code (with ``src`` first on its
    PYTHONPATH when given), read by a parent of its own whose only child it
    is."""
    env = None if src is None else dict(os.environ, PYTHONPATH=src)
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", WRAP, sys.executable, "-c", code, *args],
                         check=True, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    rss, cpu = (float(v) for v in out.stdout.split()[-2:])
    return wall, cpu, rss


def measure(path, srcs=(None,)):
    """loadtxt and then train (once per source tree in ``srcs``; None: this
    Python's fastbp), side by side: (wall, CPU, peak RSS) of each."""
    loadtxt = child(LOADTXT, path)
    return (loadtxt,) + tuple(child(TRAIN, "train", path, "--epochs", "1", "--verbose", "0",
                                    src=src) for src in srcs)


class CommandLineRead:
    """Read + train one epoch of the 1M-row CSV, fresh processes, warm kernels."""
    timeout = 900
    number = 1
    repeat = 3
    warmup_time = 0

    def setup(self):
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            # (without it the command line reads with Python's csv module, about
            # 16 times slower: a figure for another reader than the one tracked)
            raise NotImplementedError("pyarrow is not installed: the bench extra brings"
                                      " it") from None
        self.dir = tempfile.TemporaryDirectory()
        self.path = write_csv(os.path.join(self.dir.name, "big.csv"))
        # Warm the kernels on the big file itself: past fastbp.cli.IN_PLACE_FROM
        # the command splits the rows in place, a kernel a small file never
        # reaches (review HEH: the first measured run compiled it, 4.05 s
        # against 2.8-2.9 s).
        run(TRAIN, "train", self.path, "--epochs", "1", "--verbose", "0")

    def teardown(self):
        self.dir.cleanup()

    def time_loadtxt(self):
        run(LOADTXT, self.path)

    def time_train_one_epoch(self):
        run(TRAIN, "train", self.path, "--epochs", "1", "--verbose", "0")

    def track_train_over_loadtxt(self):
        loadtxt, train = measure(self.path)
        return train[0] / loadtxt[0]
    track_train_over_loadtxt.unit = "ratio"

    def track_train_cpu_over_loadtxt(self):
        """The same ratio in CPU seconds: steadier on a shared machine."""
        loadtxt, train = measure(self.path)
        return train[1] / loadtxt[1]
    track_train_cpu_over_loadtxt.unit = "ratio"

    def track_train_peak_rss(self):
        return measure(self.path)[1][2]
    track_train_peak_rss.unit = "MiB"


class WideRead:
    """``fastbp.cli.load_data`` of a file of 20,000 columns and 20 rows (gene
    expression data has 20,000-60,000), in this process: each column was
    looked up in lists of every column's name, time quadratic in the column
    count (review HHF). Medians of 3 on 2026-12-08, reviews running beside
    them: 12.1 s for the CSV, 4.4 s for Parquet, 2.8 s for NPY before the
    lookups took dicts and sets; 0.53, 0.76 and 0.11 s after."""
    params = ["csv", "parquet", "npy"]
    param_names = ["format"]
    COLUMNS = 20_000

    def setup(self, kind):
        import numpy as np
        self.dir = tempfile.TemporaryDirectory()
        a = np.random.default_rng(0).normal(size=(20, self.COLUMNS)).round(3)
        self.path = os.path.join(self.dir.name, "wide." + kind)
        if kind == "csv":
            with open(self.path, "w") as fh:
                fh.write(",".join(f"c{i}" for i in range(self.COLUMNS)) + "\n")
                np.savetxt(fh, a, delimiter=",", fmt="%.3f")
        elif kind == "parquet":
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                raise NotImplementedError("pyarrow is not installed") from None
            pq.write_table(pa.table({f"c{i}": a[:, i] for i in range(self.COLUMNS)}), self.path)
        else:
            np.save(self.path, a)

    def teardown(self, kind):
        self.dir.cleanup()

    def time_load_data(self, kind):
        from fastbp import cli
        cli.load_data(self.path)


def main(rows=ROWS, repeats=5, srcs=(None,)):
    """Interleaved repeats (loadtxt, train, loadtxt, train, ...); medians.
    ``srcs``: source trees (``src`` folders) to take turns with, e.g. this
    one and an older commit's (``git archive OLD src | tar -x -C /tmp/old``)."""
    import statistics
    med = statistics.median
    with tempfile.TemporaryDirectory() as folder:
        path = write_csv(os.path.join(folder, "big.csv"), rows)
        print(f"{rows} rows x {FEATURES} features + label: {os.path.getsize(path) / 1e6:.0f} MB")
        for src in srcs:  # warm the kernels (on this file: see CommandLineRead.setup)
            child(TRAIN, "train", path, "--epochs", "1", "--verbose", "0", src=src)
        turns, loads = [], []
        for _ in range(repeats):
            loads.append(os.getloadavg()[0])
            turns.append(measure(path, srcs))
            lw, lc, _ = turns[-1][0]
            print(f"load average {loads[-1]:.1f}: np.loadtxt {lw:.2f} s ({lc:.2f} s CPU)", flush=True)
            for src, (tw, tc, rss) in zip(srcs, turns[-1][1:]):
                print(f"  fastbp train --epochs 1 ({src or 'installed'}) {tw:.2f} s ({tc:.2f} s CPU):"
                      f" {tw / lw:.2f}x wall, {tc / lc:.2f}x CPU; peak RSS {rss:.0f} MiB", flush=True)
        print(f"medians over {repeats} turns, load average {min(loads):.1f}-{max(loads):.1f}:"
              f" np.loadtxt {med(t[0][0] for t in turns):.2f} s ({med(t[0][1] for t in turns):.2f}"
              " s CPU)")
        for k, src in enumerate(srcs, 1):
            print(f"  train ({src or 'installed'}): {med(t[k][0] for t in turns):.2f} s"
                  f" ({med(t[k][1] for t in turns):.2f} s CPU), ratio"
                  f" {med(t[k][0] / t[0][0] for t in turns):.2f} wall"
                  f" ({min(t[k][0] / t[0][0] for t in turns):.2f}-"
                  f"{max(t[k][0] / t[0][0] for t in turns):.2f}),"
                  f" {med(t[k][1] / t[0][1] for t in turns):.2f} CPU; peak RSS"
                  f" {min(t[k][2] for t in turns):.0f}-{max(t[k][2] for t in turns):.0f} MiB")


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=ROWS,
                        help=f"rows of the generated CSV (default {ROWS:,})")
    parser.add_argument("repeats", nargs="?", type=int, default=5,
                        help="interleaved repeats (default 5)")
    parser.add_argument("src", nargs="*", help="source trees (src folders) to take turns with;"
                        " none: the installed fastbp")
    args = parser.parse_args()
    main(args.rows, args.repeats, tuple(args.src) or (None,))
