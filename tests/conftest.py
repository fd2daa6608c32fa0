"""Each pytest-xdist worker compiles into a Numba cache folder of its own.

The suite runs on all cores (``-n auto`` in pyproject.toml's addopts), and
most of its time is Numba compiling the specialisations the tests ask for.
Two processes saving different specialisations of one kernel into one
cache folder at once can lose an entry or point it at the other's file:
Numba reads the index, picks a free file name and writes the index back
without a lock. So each worker gets its own folder, kept between runs (a
second run loads what the first compiled), unless ``NUMBA_CACHE_DIR`` is
already set. The install-time cache is read first as always; tests that
need a cold or a particular cache set ``NUMBA_CACHE_DIR`` for their own
subprocesses.
"""
import os
import sys
import tempfile


def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker and "NUMBA_CACHE_DIR" not in os.environ:
        folder = os.path.join(tempfile.gettempdir(),
                              "fastbp-test-numba-cache-%s" % os.getuid(), worker)
        os.makedirs(folder, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = folder
        if "numba" in sys.modules:  # imported by a plugin: read the variable again
            sys.modules["numba"].config.reload_config()
