"""Which kernel specialisations the test suite compiles, and how long each took.

A pytest plugin and its report. Run the suite with it, from an empty
compile cache (the suite's cache folder is kept between runs):

    rm -rf /tmp/fastbp-test-numba-cache-$(id -u)
    PYTHONPATH=asv_bench FASTBP_SUITE_COMPILES=/tmp/compiles python -m pytest -p suite_compiles
    python asv_bench/suite_compiles.py /tmp/compiles [--top 20]

Each process of the run (each pytest-xdist worker) listens to Numba's
``numba:compile`` events and writes, per test, every specialisation it
compiled (function, argument types, nesting depth) and the wall time spent
in its outermost compiles, to ``<folder>/<worker>.json``. The report
counts the outermost specialisations once each (the shared cache loads
what one worker compiled for the other), and sums their compile time by
function and by test file; the time of a test that compiled several is
shared among them equally, and what the first of several specialisations
compiles for the others (their common inner functions) is counted where it
was compiled. Nothing here is timed in the tests themselves.
"""
import argparse
import collections
import glob
import json
import os
import time

_OUT = "FASTBP_SUITE_COMPILES"
_state = {"test": "<collection>", "depth": 0, "t0": 0.0, "tests": {}}


def _listen():
    from numba.core import event

    class Listener(event.Listener):
        def on_start(self, ev):
            if _state["depth"] == 0:
                _state["t0"] = time.perf_counter()
            _state["depth"] += 1
            f = ev.data["dispatcher"].py_func
            row = _state["tests"].setdefault(_state["test"], {"seconds": 0.0, "compiled": []})
            row["compiled"].append([f"{f.__module__}.{f.__qualname__}", str(ev.data["args"]),
                                    _state["depth"]])

        def on_end(self, ev):
            _state["depth"] -= 1
            if _state["depth"] == 0:
                row = _state["tests"].setdefault(_state["test"], {"seconds": 0.0, "compiled": []})
                row["seconds"] += time.perf_counter() - _state["t0"]

    event.register("numba:compile", Listener())


def pytest_configure(config):
    if os.environ.get(_OUT):
        _listen()


def pytest_runtest_logstart(nodeid, location):
    _state["test"] = nodeid


def pytest_unconfigure(config):
    folder = os.environ.get(_OUT)
    if not folder or not _state["tests"]:
        return
    os.makedirs(folder, exist_ok=True)
    name = os.environ.get("PYTEST_XDIST_WORKER", "main")
    path = os.path.join(folder, name + ".json")
    with open(path + ".part", "w") as f:
        json.dump(_state["tests"], f)
    os.replace(path + ".part", path)


def report(folder, top=20):
    """``(specialisations, by_function, by_file)``: the outermost
    specialisations compiled in the run whose files are in ``folder``, as
    ``{(function, types): seconds}``, and their seconds summed by function
    and by test file (Counters)."""
    first = {}
    by_function, by_file = collections.Counter(), collections.Counter()
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        with open(path) as f:
            tests = json.load(f)
        for test, row in tests.items():
            outer = [(name, types) for name, types, depth in row["compiled"] if depth == 1]
            for key in outer:
                share = row["seconds"] / len(outer)
                entry = first.setdefault(key, [0.0, test])
                entry[0] += share
                # (each compile's time to its own test's file: all of a
                # specialisation's went to the first file listed that compiled it)
                by_file[test.split("::")[0]] += share
    for (name, _), (seconds, test) in first.items():
        by_function[name] += seconds
    return {key: seconds for key, (seconds, _) in first.items()}, by_function, by_file


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the folder FASTBP_SUITE_COMPILES named in the run")
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    specialisations, by_function, by_file = report(args.folder)
    if not specialisations:
        raise SystemExit(f"no compile records in {args.folder}")
    count = collections.Counter(name for name, _ in specialisations)
    print(f"{len(specialisations)} specialisations, {sum(specialisations.values()):.1f} s compiling")
    print(f"\n{'function':<56} {'n':>4} {'s':>7}")
    for name, seconds in by_function.most_common(args.top):
        print(f"{name[-56:]:<56} {count[name]:>4} {seconds:7.1f}")
    print(f"\n{'test file':<56} {'s':>7}")
    for name, seconds in by_file.most_common(args.top):
        print(f"{name[-56:]:<56} {seconds:7.1f}")


if __name__ == "__main__":
    main()
