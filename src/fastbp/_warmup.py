"""Compile what a new user's first commands need, for the install-time cache.

Building the wheel runs ``python -m fastbp._warmup`` with ``NUMBA_CACHE_DIR``
pointing to an empty folder, then ships what Numba wrote there (see
:mod:`fastbp._jit`). Running the real commands, rather than listing kernel
signatures, compiles exactly the specialisations they use: the README's
``fastbp train`` (Adam, ReLU, a validation split), its Quickstart (plain
SGD, tanh, then ``predict``) and the Quickstart's command lines (``fastbp
train`` of a CSV, then ``fastbp predict``), in the default float32 only: float64 would
add as much compile time again to every installation (20 s of CPU here) and
save nothing for those commands, and the build must not cost more time than
it saves. Other models compile on first use and say so.

The two commands are independent, so on a machine with two or more CPUs the
build runs them as two processes at once (``python -m fastbp._warmup train``
and ``... quickstart``) into the same folder: the build waits for the longer,
not for both. Numba's cache is not written for that: each kernel's index is
read, extended and written back, so two processes adding different
specialisations of one kernel at the same moment could both claim the same
data file, and an index could then point at the other's machine code. With
``FASTBP_CACHE_LOCK`` set to a file, every cache write of each process
holds an exclusive lock on it (``fcntl.flock``, POSIX), which makes each
read-extend-write one step, and every read a shared one
(:func:`fastbp._jit.lock_cache`).
"""
import contextlib
import io
import json
import sys

DTYPES = ("float32",)


def _cli(args):
    from . import cli
    with contextlib.redirect_stdout(io.StringIO()):
        status = cli.main(args)
    if status:
        raise RuntimeError(f"fastbp {' '.join(args)} exited with status {status}")


def _train():
    import os
    import tempfile

    import numpy as np

    from . import cli
    from .datasets import load_digits, permute_rows
    X, y = load_digits()
    header = ",".join(f"x{j}" for j in range(X.shape[1]))
    for dtype in DTYPES:
        _cli(["train", "--epochs", "1", "--verbose", "0", "--dtype", dtype])
        # The README's own data: a CSV trained as its Quickstart trains it,
        # then predicted (its ReLU model's predict kernel, review HDR).
        with tempfile.TemporaryDirectory() as tmp:
            data, new, model = (os.path.join(tmp, name) for name in ("data.csv", "new.csv",
                                                                      "model.npz"))
            np.savetxt(data, np.column_stack([X[:100], y[:100]]), fmt="%d", delimiter=",",
                       header=header + ",label", comments="")
            np.savetxt(new, X[100:110], fmt="%d", delimiter=",", header=header, comments="")
            _cli(["train", data, "--target", "label", "--hidden", "64,32", "--activation", "relu",
                  "--epochs", "1", "--verbose", "0", "--dtype", dtype, "--out", model])
            _cli(["predict", model, new, "--out", os.path.join(tmp, "predictions.csv")])
    # digits is copied by its split; a file of cli.IN_PLACE_FROM bytes or more
    # is split in place by this kernel, on the rows as read
    permute_rows(np.zeros((2, 1), dtype=cli.READ_DTYPE), np.array([1, 0], dtype=np.int64),
                 np.zeros(2, dtype=np.bool_))


def _quickstart():
    from . import MLP, datasets
    X, y = datasets.load_digits()
    X, y = X[:200] / 16, y[:200]
    for dtype in DTYPES:
        net = MLP([64, 32, 10], activation="tanh", output="softmax", dtype=dtype, seed=0)
        net.fit(X, y, epochs=1, batch_size=32, lr=0.1, verbose=0)
        net.predict(X)
        net.loss(X, y)


PARTS = {"train": _train, "quickstart": _quickstart}


def inference(model_spec):
    """The work of :mod:`fastbp._ahead`'s helper: ``predict`` and ``evaluate``
    of a model built from ``model_spec`` (:func:`fastbp._ahead.spec`) on two
    rows of zeros, which compiles (or loads) the inference kernels a model
    of that architecture runs on dense rows."""
    import numpy as np

    from . import MLP
    net = MLP(model_spec["sizes"], activation=model_spec["activations"],
              output=model_spec["output"], loss=model_spec["loss"], dtype=model_spec["dtype"])
    X = np.zeros((2, net.sizes[0]), dtype=net.dtype)
    m = net.sizes[-1]
    if net.output == "softmax":
        y = np.zeros(2, dtype=np.int64)
    else:
        y = np.zeros((2, m)) if m > 1 else np.zeros(2)
    net.predict(X)
    net.evaluate(X, y)


def run(parts=tuple(PARTS)):
    """Run the named commands; return what the cache was built with (``build.json``)."""
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise ValueError(f"unknown warm-up part(s) {unknown}; known: {sorted(PARTS)}")
    for part in parts:
        PARTS[part]()
    import llvmlite.binding as llvm

    from ._jit import runtime_versions
    return {**runtime_versions(), "cpu": llvm.get_host_cpu_name()}


if __name__ == "__main__":
    if sys.argv[1:2] == ["inference"]:  # python -m fastbp._warmup inference SPEC
        inference(json.loads(sys.argv[2]))
    else:
        json.dump(run(tuple(sys.argv[1:]) or tuple(PARTS)), sys.stdout)
