"""fastbp predict against ONNX Runtime on the same weights, side by side
(the cases of benchmarks/bench_serving.py, timed here without asv):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python asv_bench/serving.py [--repeat 15]

Both with their default threads. The repeats are interleaved (each round
times every case once, fastbp and onnxruntime in turn, which goes first
alternating, after a pause for the previous call's spinning threads), so a
change in the machine's load falls on both; prints the median of the repeats of each
call (microseconds for one row, rows per second for 90k rows), the ratio of
the medians, and the load average before and after. ``--quiet SECONDS``
keeps only the rounds with no other process's thread running before and
after them (on a shared machine; still not proof of a quiet one).
"""
import argparse
import os
import sys
import time
import timeit

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmarks"))
from bench_serving import ROWS, SIZES, model  # noqa: E402


def calls_per_timing(fn, target):
    return max(1, int(target / max(timeit.timeit(fn, number=1), 1e-7)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="interleaved rounds (median)")
    parser.add_argument("--quiet", type=float, default=0, metavar="SECONDS",
                        help="keep only rounds with no other process's thread running before and"
                             " after them (Linux), trying for at most SECONDS")
    parser.add_argument("--target", type=float, default=0.1,
                        help="seconds per timing of one case (sets the calls per timing)")
    args = parser.parse_args()
    import onnxruntime

    import fastbp
    net, sess, Xs = model()
    print(f"{'-'.join(map(str, SIZES))} float32, fastbp {fastbp.__version__}, onnxruntime"
          f" {onnxruntime.__version__}, {os.cpu_count()} CPUs,"
          f" load average before {os.getloadavg()[0]:.2f}")
    sides = {"probabilities": (lambda X: net.predict_proba(X),
                               lambda X: sess["probabilities"].run(["probabilities"], {"X": X})),
             "labels": (lambda X: net.predict(X),
                        lambda X: sess["label"].run(["label"], {"X": X}))}
    cases = []
    for rows, X in Xs.items():
        for what, (ours, theirs) in sides.items():
            for side, call in (("fastbp", ours), ("onnxruntime", theirs)):
                fn = (lambda call, X: lambda: call(X))(call, X)
                fn()  # warm
                cases.append(((rows, what, side), fn, calls_per_timing(fn, args.target)))
    times = {key: [] for key, _, _ in cases}
    deadline, kept, dropped = time.monotonic() + args.quiet, 0, 0
    while kept < args.repeat:
        if args.quiet and fastbp.threads.others_running():
            if time.monotonic() > deadline:
                break
            dropped += 1
            time.sleep(0.2)
            continue
        round_, timed = kept, {}
        # Each pair in turn, the order within it alternating; a pause before
        # each timing lets the previous call's spinning threads (onnxruntime's
        # and OpenBLAS's spin-wait after parallel work) go to sleep first.
        for i in range(0, len(cases), 2):
            pair = cases[i:i + 2] if round_ % 2 == 0 else cases[i:i + 2][::-1]
            for key, fn, number in pair:
                time.sleep(0.05)
                timed[key] = timeit.timeit(fn, number=number) / number
        if args.quiet and fastbp.threads.others_running():
            dropped += 1
            if time.monotonic() > deadline:
                break
            continue
        kept += 1
        for key, t in timed.items():
            times[key].append(t)
    if not kept:
        raise SystemExit(f"no quiet round in {args.quiet} s")
    for rows in Xs:
        for what in sides:
            a = float(np.median(times[rows, what, "fastbp"]))
            b = float(np.median(times[rows, what, "onnxruntime"]))
            if ROWS[rows] == 1:
                shown = f"fastbp {a * 1e6:7.2f} us   onnxruntime {b * 1e6:7.2f} us"
            else:
                shown = (f"fastbp {ROWS[rows] / a / 1e6:6.2f} M rows/s   onnxruntime"
                         f" {ROWS[rows] / b / 1e6:6.2f} M rows/s")
            print(f"{rows:>9} {what:>13}: {shown}   (fastbp/onnxruntime time {a / b:.2f})")
    print(f"{kept} interleaved rounds" + (f" ({dropped} dropped: not quiet)" if args.quiet else "")
          + f"; load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
