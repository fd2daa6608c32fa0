"""Training on a busy machine: quiet against one spinning process per core.

Prints, per network, the median epoch of fresh processes on a quiet machine
and with a ``while True: pass`` process on every core, each loaded run's
epoch time (ms), the worst and the median ratio to the quiet median, and the
share of a core the fits had (CPU time over wall time, all threads). The
networks: the digits as ``fastbp train`` trains them by default (64-64-32-10
relu, Adam, batch 32, a fifth held out for validation; 20 epochs here,
where ``fastbp train`` runs 30) and 784-1024-1024-10 (random
data, batch 256, 8 steps an epoch, 5 epochs). ``--serial-below 0`` runs
the BLAS's own thread choice (fastbp's before this fix), for comparison;
``--threshold-only`` ignores other processes (the size threshold alone);
``--products`` prints one product's time on one and on two threads, quiet
and loaded, the measurement behind fastbp.threads.SERIAL_BELOW.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python asv_bench/under_load.py --repeat 6
"""
import argparse
import contextlib
import time

import numpy as np

from benchmarks._load import NETWORKS, cores, run, spinning


def table(repeat, serial_below, threshold_only):
    print(f"{'network':<20} {'quiet ms':>9} {'loaded ms (each run)':<40} {'worst/quiet':>11}"
          f" {'CPU share quiet/loaded':>22}")
    for name in NETWORKS:
        run(name, serial_below, threshold_only)  # compile / load the kernels once
        quiet = [run(name, serial_below, threshold_only) for _ in range(repeat)]
        with spinning(cores()):
            loaded = [run(name, serial_below, threshold_only) for _ in range(repeat)]
        q = float(np.median([t for t, _ in quiet]))
        times = [t for t, _ in loaded]
        each = " ".join(f"{t * 1e3:.1f}" for t in times)
        share = (f"{np.median([c for _, c in quiet]):.2f} / {np.median([c for _, c in loaded]):.2f}")
        print(f"{name:<20} {q * 1e3:9.2f} {each:<40} {max(times) / q:11.1f} {share:>22}"
              f"  (median ratio {np.median(times) / q:.1f})")


def products():
    import threadpoolctl
    controller = threadpoolctl.ThreadpoolController()
    shapes = [(359, 64, 64), (256, 10, 1024), (256, 128, 128), (256, 256, 256), (256, 256, 512),
              (256, 512, 512), (256, 1024, 784), (256, 1024, 1024)]

    def seconds(A, B, C, threads):
        with controller.limit(limits=threads, user_api="blas"):
            reps = max(3, int(1e8 / A.size / B.shape[1]))
            times = []
            for _ in range(7):
                t0 = time.perf_counter()
                for _ in range(reps):
                    np.matmul(A, B, out=C)
                times.append((time.perf_counter() - t0) / reps)
        return np.median(times), max(times)

    for label, context in (("quiet", contextlib.nullcontext()), ("loaded", spinning(cores()))):
        with context:
            print(f"{label}: {'(m, n, k)':<18} {'m n k':>10} {'1 thread us':>12} {'2 threads us':>13}"
                  f" {'1/2':>5}  worst 1 / 2")
            for m, n, k in shapes:
                A = np.ones((m, k), np.float32)
                B, C = np.ones((k, n), np.float32), np.empty((m, n), np.float32)
                (one, one_w), (two, two_w) = seconds(A, B, C, 1), seconds(A, B, C, 2)
                print(f"{'':7}{str((m, n, k)):<18} {m * n * k:>10} {one * 1e6:12.1f} {two * 1e6:13.1f}"
                      f" {one / two:5.2f}  {one_w * 1e6:.0f} / {two_w * 1e6:.0f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--serial-below", type=int, default=None,
                        help="override fastbp.threads.SERIAL_BELOW (0: the BLAS's own choice)")
    parser.add_argument("--threshold-only", action="store_true",
                        help="ignore other processes: the size threshold alone decides")
    parser.add_argument("--products", action="store_true")
    args = parser.parse_args()
    if args.products:
        products()
    else:
        table(args.repeat, args.serial_below, args.threshold_only)


if __name__ == "__main__":
    main()
