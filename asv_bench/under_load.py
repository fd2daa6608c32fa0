"""Training on a busy machine: quiet against one spinning process per core.

Prints, per network, the median epoch of fresh processes on a quiet machine
and with a ``while True: pass`` process on every core, each loaded run's
ratio to the quiet median, and the worst ratio. The networks: the digits as
``fastbp train`` trains them by default (64-64-32-10 relu, Adam, batch 32,
20 epochs, a fifth held out for validation) and 784-1024-1024-10 (random
data, batch 256, 8 steps an epoch, 5 epochs). ``--serial-below 0`` runs
the BLAS's own thread choice (fastbp's before this fix), for comparison;
``--threshold-only`` ignores other processes (the size threshold alone);
``--products`` prints one product's time on one and on two threads, quiet
and loaded, the measurement behind fastbp.threads.SERIAL_BELOW.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python asv_bench/under_load.py --repeat 6
"""
import argparse
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
    print(json.dumps(NETWORKS[name](serial_below)))


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
    command = [sys.executable, __file__, "--worker", name]
    if serial_below is not None:
        command += ["--serial-below", str(serial_below)]
    if threshold_only:
        command += ["--threshold-only"]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def table(repeat, serial_below, threshold_only):
    print(f"{'network':<20} {'quiet ms':>9} {'loaded ms (each run)':<44} {'worst/quiet':>11}")
    for name in NETWORKS:
        run(name, serial_below, threshold_only)  # compile / load the kernels once
        quiet = [run(name, serial_below, threshold_only) for _ in range(repeat)]
        with spinning(cores()):
            loaded = [run(name, serial_below, threshold_only) for _ in range(repeat)]
        q = float(np.median(quiet))
        each = " ".join(f"{t * 1e3:.1f}" for t in loaded)
        print(f"{name:<20} {q * 1e3:9.2f} {each:<44} {max(loaded) / q:11.1f}  "
              f"(median ratio {np.median(loaded) / q:.1f}, quiet worst {max(quiet) * 1e3:.2f})")


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
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.serial_below, args.threshold_only)
    elif args.products:
        products()
    else:
        table(args.repeat, args.serial_below, args.threshold_only)


if __name__ == "__main__":
    main()
