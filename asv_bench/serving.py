"""fastbp predict against ONNX Runtime on the same weights, side by side
(the cases of benchmarks/bench_serving.py, timed here without asv):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python asv_bench/serving.py

Prints the median of several repeats of each call: microseconds for one
row, rows per second for 90k rows.
"""
import os
import sys
import timeit

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "benchmarks"))
from bench_serving import ROWS, SIZES, model  # noqa: E402


def median_seconds(fn, target=0.2, repeat=15):
    number = max(1, int(target / max(timeit.timeit(fn, number=1), 1e-7)))
    return float(np.median(timeit.repeat(fn, number=number, repeat=repeat))) / number


def main():
    import onnxruntime

    import fastbp
    net, sess, Xs = model()
    print(f"{'-'.join(map(str, SIZES))} float32, fastbp {fastbp.__version__}, onnxruntime"
          f" {onnxruntime.__version__}, {os.cpu_count()} CPUs")
    cases = {"probabilities": (lambda X: net.predict_proba(X),
                               lambda X: sess.run(["probabilities"], {"X": X})),
             "labels": (lambda X: net.predict(X), lambda X: sess.run(["label"], {"X": X}))}
    for rows, X in Xs.items():
        for what, (ours, theirs) in cases.items():
            a, b = median_seconds(lambda: ours(X)), median_seconds(lambda: theirs(X))
            if ROWS[rows] == 1:
                shown = f"fastbp {a * 1e6:7.2f} us   onnxruntime {b * 1e6:7.2f} us"
            else:
                shown = (f"fastbp {ROWS[rows] / a / 1e6:6.2f} M rows/s   onnxruntime"
                         f" {ROWS[rows] / b / 1e6:6.2f} M rows/s")
            print(f"{rows:>9} {what:>13}: {shown}   (fastbp/onnxruntime time {a / b:.2f})")


if __name__ == "__main__":
    main()
