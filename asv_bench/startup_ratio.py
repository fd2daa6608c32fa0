"""Cold over warm, as a new user meets it: fresh processes, wall seconds.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python asv_bench/startup_ratio.py \
        [--turns 3] [--src OLD/src --src src]

Each turn runs, per source tree (``--src``, put first on ``PYTHONPATH``; the
installed fastbp without it), the stop hook's 4-8-2 ``fit`` + ``predict``
snippet and ``fastbp train --epochs 5 --verbose 0``, each twice on a new
empty ``NUMBA_CACHE_DIR`` (``FASTBP_INSTALL_CACHE=0``): cold, then warm.
Trees alternate within a turn, so a noisy minute hits them alike. To
compare with a commit: ``git archive COMMIT src | tar -x -C /tmp/old``.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

SNIPPET = """import numpy as np, fastbp
X = np.random.default_rng(0).normal(size=(64, 4)); y = (X[:, 0] > 0).astype(int)
net = fastbp.MLP([4, 8, 2], seed=0); net.fit(X, y, epochs=2, verbose=0); net.predict(X)"""
WORKLOADS = {"fit + predict": ["-c", SNIPPET],
             "train": ["-m", "fastbp", "train", "--epochs", "5", "--verbose", "0"]}


def wall(args, env):
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def cold_warm(args, src):
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTBP_INSTALL_CACHE="0")
        if src:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.abspath(src),
                                                              env.get("PYTHONPATH")]))
        return wall(args, env), wall(args, env)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--src", action="append", default=[],
                        help="a source tree to put first on PYTHONPATH (repeat to compare)")
    args = parser.parse_args(argv)
    trees = args.src or [None]
    results = {(t, w): [] for t in trees for w in WORKLOADS}
    for turn in range(args.turns):
        for name, cmd in WORKLOADS.items():
            for tree in trees:
                cold, warm = cold_warm(cmd, tree)
                results[tree, name].append((cold, warm))
                print(f"turn {turn + 1} {tree or 'installed'} {name}: cold {cold:.2f} s,"
                      f" warm {warm:.2f} s, {cold / warm:.2f}x", flush=True)
    print("\n| tree | workload | cold s | warm s | cold / warm (median) |\n|---|---|---|---|---|")
    for (tree, name), runs in results.items():
        colds, warms = [c for c, _ in runs], [w for _, w in runs]
        ratios = [c / w for c, w in runs]
        print(f"| {tree or 'installed'} | {name} | {min(colds):.2f}-{max(colds):.2f} |"
              f" {min(warms):.2f}-{max(warms):.2f} | {min(ratios):.2f}-{max(ratios):.2f}"
              f" ({statistics.median(ratios):.2f}) |")


if __name__ == "__main__":
    main()
