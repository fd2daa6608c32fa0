"""Time ``import fastbp`` + the first ``fit`` of a small net in a fresh process.

    python asv_bench/compile_time.py [--repeats 3]

Cold: an empty on-disk cache (a new ``NUMBA_CACHE_DIR``), so every kernel the
first fit needs is compiled. Warm: the same cache again, so they are loaded.
Also shows that a new depth and width compile nothing, and that the first
``predict`` after a cold ``fit`` compiles only the inference kernel.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

SNIPPET = """
import time, numpy as np
t0 = time.perf_counter()
import fastbp
t1 = time.perf_counter()
net = fastbp.MLP([4, 8, 3], seed=0)
net.fit(np.ones((16, 4)), np.arange(16) % 3, epochs=1, verbose=0)
t2 = time.perf_counter()
other = fastbp.MLP([7, 5, 9, 2], seed=0)  # another depth and width, the same activation
other.fit(np.ones((16, 7)), np.arange(16) % 2, epochs=1, verbose=0)
t3 = time.perf_counter()
net.predict(np.ones((3, 4)))
t4 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f} {t4 - t3:.3f}")
"""


def run(cache_dir):
    # FASTBP_INSTALL_CACHE=0: an installed wheel's install-time cache would make "cold" warm
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir, FASTBP_INSTALL_CACHE="0")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    return [time.perf_counter() - t0] + [float(x) for x in out]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{'':>6} {'process':>8} {'import':>8} {'1st fit':>8} {'new net':>8} {'predict':>8}  (seconds)")
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as cache:
            for label in ("cold", "warm"):
                print(f"{label:>6} " + " ".join(f"{t:8.2f}" for t in run(cache)), flush=True)


if __name__ == "__main__":
    main()
