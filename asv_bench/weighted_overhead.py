"""Sample weights: CPU time per epoch of weighted against unweighted fits,
interleaved in one process (medians of 9 repeats of 3 epochs), on digits.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python asv_bench/weighted_overhead.py
"""
import argparse
import time

import numpy as np

argparse.ArgumentParser(description=__doc__,
                        formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
import fastbp  # noqa: E402  (after the arguments: --help loads nothing)

X, y = fastbp.datasets.load_digits()
X = (X / 16).astype(np.float32)
w = np.random.default_rng(0).random(len(X)) * 2
for label, opt, sizes in [("sgd 64-64-10 b32", "sgd", [64, 64, 10]), ("adam 64-64-10 b32", "adam", [64, 64, 10]),
                          ("sgd 64-256-256-10 b64", "sgd", [64, 256, 256, 10])]:
    bs = 64 if len(sizes) > 3 else 32
    nets = {k: fastbp.MLP(sizes, activation="relu", seed=0) for k in ("plain", "weighted")}
    for k, net in nets.items():  # warm up (compile / load)
        net.fit(X, y, epochs=1, batch_size=bs, optimizer=opt, verbose=0, sample_weight=w if k == "weighted" else None)
    times = {k: [] for k in nets}
    for rep in range(9):
        for k, net in nets.items():
            t = time.process_time()
            net.fit(X, y, epochs=3, batch_size=bs, verbose=0, sample_weight=w if k == "weighted" else None)
            times[k].append((time.process_time() - t) / 3)
    p, q = np.median(times["plain"]), np.median(times["weighted"])
    print(f"{label}: median CPU time an epoch, plain {p*1e3:.2f} ms, weighted {q*1e3:.2f} ms, ratio weighted/plain {q/p:.3f}")
