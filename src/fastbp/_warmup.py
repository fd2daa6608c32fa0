"""Compile what a new user's first commands need, for the install-time cache.

Building the wheel runs ``python -m fastbp._warmup`` with ``NUMBA_CACHE_DIR``
pointing to an empty folder, then ships what Numba wrote there (see
:mod:`fastbp._jit`). Running the real commands, rather than listing kernel
signatures, compiles exactly the specialisations they use: the README's
``fastbp train`` (Adam, ReLU, a validation split) and its Quickstart (plain
SGD, tanh, then ``predict``), in the default float32 only: float64 would
add as much compile time again to every installation (20 s of CPU here) and
save nothing for those commands, and the build must not cost more time than
it saves. Other models compile on first use and say so.
"""
import contextlib
import io
import json
import sys

DTYPES = ("float32",)


def run():
    """Run the commands; return what the cache was built with (``build.json``)."""
    from . import MLP, cli, datasets
    from ._jit import runtime_versions
    X, y = datasets.load_digits()
    X, y = X[:200] / 16, y[:200]
    for dtype in DTYPES:
        with contextlib.redirect_stdout(io.StringIO()):
            status = cli.main(["train", "--epochs", "1", "--verbose", "0", "--dtype", dtype])
        if status:
            raise RuntimeError(f"fastbp train --dtype {dtype} exited with status {status}")
        net = MLP([64, 32, 10], activation="tanh", output="softmax", dtype=dtype, seed=0)
        net.fit(X, y, epochs=1, batch_size=32, lr=0.1, verbose=0)
        net.predict(X)
        net.loss(X, y)
    import llvmlite.binding as llvm
    return {**runtime_versions(), "cpu": llvm.get_host_cpu_name()}


if __name__ == "__main__":
    json.dump(run(), sys.stdout)
