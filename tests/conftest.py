"""The pytest-xdist workers share one Numba cache folder, under a lock.

The suite runs on all cores (``-n auto`` in pyproject.toml's addopts), and
most of its time is Numba compiling the specialisations the tests ask for;
what one worker compiled, the other loads. Numba's cache is not made for
several processes writing at once (see :func:`fastbp._jit.lock_cache`), so
the workers, and the processes the tests start, which inherit the
variables, read and write it under ``FASTBP_CACHE_LOCK``. The folder is
kept between runs (a second run loads what the first compiled) unless
``NUMBA_CACHE_DIR`` is already set. The install-time cache is read first as
always; tests that need a cold or a particular cache set ``NUMBA_CACHE_DIR``
for their own subprocesses.
"""
import os
import sys
import tempfile

# A cold fit starts a helper process that compiles the inference kernels
# (fastbp._ahead): here the workers share one cache and compile the same
# kernels anyway, so the helpers would only add processes. tests/test_ahead.py
# turns it on where it tests it.
os.environ.setdefault("FASTBP_COMPILE_AHEAD", "0")


def pytest_configure(config):
    if not os.environ.get("PYTEST_XDIST_WORKER") or "NUMBA_CACHE_DIR" in os.environ:
        return
    user = getattr(os, "getuid", lambda: "")()
    folder = os.path.join(tempfile.gettempdir(), "fastbp-test-numba-cache-%s" % user)
    os.makedirs(folder, exist_ok=True)
    os.environ["NUMBA_CACHE_DIR"] = folder
    os.environ.setdefault("FASTBP_CACHE_LOCK", os.path.join(folder, "lock"))
    if "numba" in sys.modules:  # imported by a plugin: read the variable again
        sys.modules["numba"].config.reload_config()
    if "fastbp" in sys.modules:  # imported already: take the lock now
        sys.modules["fastbp"]._jit.lock_cache(os.environ["FASTBP_CACHE_LOCK"])
