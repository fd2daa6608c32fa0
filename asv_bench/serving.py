"""fastbp predict against ONNX Runtime on the same weights, side by side
(the cases of benchmarks/bench_serving.py, timed here without asv):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python asv_bench/serving.py [--repeat 15]

Both with their default threads. The repeats are interleaved (each round
times every case once, fastbp and onnxruntime in turn), so a change in the
machine's load falls on both; prints the median of the repeats of each
call (microseconds for one row, rows per second for 90k rows), the ratio of
the medians, and the load average before and after.
"""
import argparse
import os
import sys
import timeit

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmarks"))
from bench_serving import ROWS, SIZES, model  # noqa: E402


def calls_per_timing(fn, target):
    return max(1, int(target / max(timeit.timeit(fn, number=1), 1e-7)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="interleaved rounds (median)")
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
                               lambda X: sess.run(["probabilities"], {"X": X})),
             "labels": (lambda X: net.predict(X), lambda X: sess.run(["label"], {"X": X}))}
    cases = []
    for rows, X in Xs.items():
        for what, (ours, theirs) in sides.items():
            for side, call in (("fastbp", ours), ("onnxruntime", theirs)):
                fn = (lambda call, X: lambda: call(X))(call, X)
                fn()  # warm
                cases.append(((rows, what, side), fn, calls_per_timing(fn, args.target)))
    times = {key: [] for key, _, _ in cases}
    for _ in range(args.repeat):
        for key, fn, number in cases:
            times[key].append(timeit.timeit(fn, number=number) / number)
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
    print(f"{args.repeat} interleaved rounds; load average after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
