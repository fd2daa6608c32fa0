"""Where a cold start's compile time goes, per Numba function.

    python asv_bench/compile_profile.py [train|fit|dropout|both] [--top 30]

Runs the workload in a fresh process with an empty ``NUMBA_CACHE_DIR`` and
listens to Numba's ``numba:compile`` events (``numba.core.event``): one per
specialisation compiled, nested when a kernel compiles the kernels it calls.
Prints, per function, how many specialisations were compiled, the CPU time
(of the compiling thread, so that a busy machine does not inflate it)
*inclusive* of the compiles it triggered and *exclusive* of them, sorted by
exclusive time, and the process's wall time. Workloads:

- ``train``: ``fastbp train --epochs 5 --verbose 0`` (the README's first command,
  digits, Adam);
- ``fit``: ``import fastbp``, ``fit`` of a 4-8-2 net (plain SGD) and ``predict``;
- ``dropout``: the same with dropout 0.2 in the hidden layer, by Adam.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
from numba.core import event

rows, stack = {}, []

def name_of(ev):
    d = ev.data["dispatcher"]
    f = d.py_func
    return f"{f.__module__}.{f.__qualname__}"

class Listener(event.Listener):
    def on_start(self, ev):
        stack.append([name_of(ev), time.thread_time(), 0.0])
    def on_end(self, ev):
        name, t0, children = stack.pop()
        dt = time.thread_time() - t0
        row = rows.setdefault(name, [0, 0.0, 0.0, []])
        row[0] += 1
        who = (stack[-1][0] if stack else "Python") + " " + str(ev.data["args"])
        if who not in row[3]:
            row[3].append(who)
        if all(s[0] != name for s in stack):  # recursion: count the outermost only
            row[1] += dt
        row[2] += dt - children
        if stack:
            stack[-1][2] += dt

event.register("numba:compile", Listener())
workload = sys.argv[1]
t0 = time.perf_counter()
if workload == "train":
    from fastbp.cli import main
    import contextlib, io
    with contextlib.redirect_stdout(io.StringIO()):
        main(["train", "--epochs", "5", "--verbose", "0"])
else:
    import numpy as np, fastbp
    dropout = dict(dropout=0.2, optimizer="adam") if workload == "dropout" else {}
    net = fastbp.MLP([4, 8, 2], seed=0, dropout=dropout.pop("dropout", 0.0))
    X = np.random.default_rng(0).normal(size=(64, 4))
    net.fit(X, (X[:, 0] > 0).astype(int), epochs=5, verbose=0, **dropout)
    net.predict(X)
wall = time.perf_counter() - t0
json.dump({"wall": wall, "rows": rows}, sys.stdout)
"""


def _children_cpu():
    import resource
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def profile(workload):
    """Run ``workload`` in a fresh process with an empty cache, then again in
    another fresh process with the cache the first one left: ``{"wall": s,
    "rows": {name: [count, inclusive_s, exclusive_s, callers]}, "process": s,
    "cpu": s, "warm": {...the same for the warm run}}``."""
    with tempfile.TemporaryDirectory() as cache:
        cold = _run(workload, cache)
        cold["warm"] = _run(workload, cache)
        return cold


def _run(workload, cache):
    # (no compile-ahead helper: what a helper process compiled for the
    # inference kernels was missing from the profile whenever a CPU was idle)
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTBP_INSTALL_CACHE="0", FASTBP_COMPILE_AHEAD="0")
    t0 = time.perf_counter()
    cpu0 = _children_cpu()
    out = subprocess.run([sys.executable, "-c", CHILD, workload], env=env, capture_output=True,
                         text=True, check=True).stdout
    result = json.loads(out)
    result["process"] = time.perf_counter() - t0
    result["cpu"] = _children_cpu() - cpu0
    return result


def show(workload, result, top, callers_of=()):
    rows = sorted(result["rows"].items(), key=lambda kv: -kv[1][2])
    total = sum(r[2] for _, r in rows)
    count = sum(r[0] for _, r in rows)
    warm = result["warm"]
    print(f"\n{workload}: cold process {result['process']:.2f} s (CPU {result['cpu']:.2f} s),"
          f" warm process {warm['process']:.2f} s (CPU {warm['cpu']:.2f} s): cold/warm"
          f" {result['process'] / warm['process']:.1f}x wall, {result['cpu'] / warm['cpu']:.1f}x CPU")
    print(f"cold: workload {result['wall']:.2f} s,"
          f" {count} compilations, {total:.2f} s compiling")
    print(f"{'function':<58} {'n':>3} {'incl s':>7} {'excl s':>7}")
    for name, (n, incl, excl, callers) in rows[:top]:
        print(f"{name[-58:]:<58} {n:>3} {incl:7.2f} {excl:7.2f}")
    if len(rows) > top:
        rest = rows[top:]
        print(f"{'(' + str(len(rest)) + ' more)':<58} {sum(r[0] for _, r in rest):>3}"
              f" {'':>7} {sum(r[2] for _, r in rest):7.2f}")
    for name, (n, incl, excl, callers) in rows:
        if any(w in name for w in callers_of):
            print(f"{name} ({incl:.2f} s) compiled for:\n    " + "\n    ".join(callers))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", nargs="?", default="both", choices=["train", "fit", "dropout", "both"])
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--callers", nargs="*", default=(), metavar="NAME",
                        help="list which functions triggered the compiles of these")
    parser.add_argument("--json", help="also write the raw results to this file")
    args = parser.parse_args(argv)
    results = {}
    for workload in (["train", "fit"] if args.workload == "both" else [args.workload]):
        results[workload] = profile(workload)
        show(workload, results[workload], args.top, args.callers)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
