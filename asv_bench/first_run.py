"""Time the README's first command: a new venv, ``pip install .``, ``fastbp train``.

    python asv_bench/first_run.py [--no-install-cache] [--runs 3]

Wall and CPU seconds (user + system, all child processes) of ``pip install``
into a fresh virtual environment, then of ``fastbp train`` run ``--runs``
times: the first right after installation, the others warm; then the
README's Quickstart (its code, without the progress bar) twice, first and
warm. What the install-time cache costs is the difference of ``pip install``
with and without it; what it saves, the first runs' differences. With
``--no-install-cache`` the build ships no kernel cache
(``FASTBP_INSTALL_CACHE=0``), as before fastbp had one. pip needs the package
index; its download cache makes repeats comparable.
"""
import argparse
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


QUICKSTART = """
import fastbp
X, y = fastbp.datasets.load_digits()
X_train, X_test, y_train, y_test = fastbp.datasets.train_test_split(X / 16, y)
net = fastbp.MLP([64, 32, 10], activation="tanh", output="softmax", dtype="float32", seed=0)
history = net.fit(X_train, y_train, epochs=20, batch_size=32, lr=0.1, verbose=0)
print((net.predict(X_test) == y_test).mean())
"""


def timed(cmd, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    run = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode:
        sys.exit(f"{' '.join(map(str, cmd))} failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, run.stdout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-install-cache", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "PYTHONPATH")}
    if args.no_install_cache:
        env["FASTBP_INSTALL_CACHE"] = "0"
    with tempfile.TemporaryDirectory() as tmp:
        venv = pathlib.Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        wall, cpu, _ = timed([venv / "bin" / "pip", "install", "-q", str(ROOT)], env)
        print(f"pip install .     {wall:7.1f} s wall {cpu:7.1f} s cpu", flush=True)
        for i in range(args.runs):
            wall, cpu, out = timed([venv / "bin" / "fastbp", "train"], env)
            label = "first fastbp train" if i == 0 else "warm fastbp train"
            said = " (said it compiles)" if "compiling fastbp's kernels" in out else ""
            print(f"{label:18}{wall:7.1f} s wall {cpu:7.1f} s cpu{said}", flush=True)
        for label in ("first Quickstart", "warm Quickstart"):
            wall, cpu, out = timed([venv / "bin" / "python", "-c", QUICKSTART], env)
            print(f"{label:18}{wall:7.1f} s wall {cpu:7.1f} s cpu (accuracy {float(out):.3f})",
                  flush=True)


if __name__ == "__main__":
    main()
