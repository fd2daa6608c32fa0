"""fastbp's build backend: setuptools, plus the install-time kernel cache.

Building a wheel (``pip install .`` builds one on the user's own machine)
also runs :mod:`fastbp._warmup` from the freshly built package, in a
subprocess whose ``NUMBA_CACHE_DIR`` is an empty folder, and ships the cache
files Numba wrote there in ``fastbp/_kernel_cache/`` with ``build.json``
(see ``src/fastbp/_jit.py`` for how they are used). Numba and the rest of
fastbp's dependencies are build requirements of the wheel only: sdists and
editable installs need nothing but setuptools and compile nothing.

If that compilation fails (no Numba, a cross build, a timeout), the wheel
ships no cache and the build log says why; the kernels then compile on first
use, as without this step. ``FASTBP_INSTALL_CACHE=0`` skips it.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403 (the PEP 517 hooks)
from setuptools.command.build_py import build_py

# What `import fastbp` and the warm-up need in the build environment: the
# runtime dependencies of pyproject.toml less tqdm (the warm-up shows no bar)
# and SciPy (only for L-BFGS, and for the BLAS where NumPy bundles none: then
# the warm-up fails and the build ships no cache). SciPy is the largest to
# install, and the build environment installs these a second time.
COMPILE_REQUIRES = ["numpy>=1.24", "numba>=0.59", "threadpoolctl>=3"]
TIMEOUT = 1800  # seconds; a build never waits longer for the cache


def _enabled():
    return os.environ.get("FASTBP_INSTALL_CACHE", "1") != "0"


def get_requires_for_build_wheel(config_settings=None):
    extra = COMPILE_REQUIRES if _enabled() else []
    return _setuptools.get_requires_for_build_wheel(config_settings) + extra


def _log(message):
    print(f"fastbp build: {message}", file=sys.stderr, flush=True)


def precompile(package_dir):
    """Fill ``package_dir/_kernel_cache`` by running the warm-up; True if it did."""
    target = os.path.join(package_dir, "_kernel_cache")
    shutil.rmtree(target, ignore_errors=True)  # never ship a stale one from an earlier build
    if not _enabled():
        _log("FASTBP_INSTALL_CACHE=0: no install-time kernel cache")
        return False
    with tempfile.TemporaryDirectory(prefix="fastbp-cache-") as cache:
        path = os.pathsep.join(p for p in (os.path.dirname(os.path.abspath(package_dir)),
                                           os.environ.get("PYTHONPATH")) if p)
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=path,
                   PYTHONDONTWRITEBYTECODE="1")
        t0 = time.perf_counter()
        try:
            run = subprocess.run([sys.executable, "-m", "fastbp._warmup"], cwd=cache, env=env,
                                 capture_output=True, text=True, timeout=TIMEOUT)
            if run.returncode != 0:
                raise RuntimeError(run.stderr.strip().splitlines()[-1] if run.stderr.strip()
                                   else f"exit status {run.returncode}")
            manifest = json.loads(run.stdout.strip().splitlines()[-1])
        except (OSError, RuntimeError, ValueError, IndexError, subprocess.TimeoutExpired) as exc:
            _log(f"kernels not precompiled ({exc}); they compile on first use")
            return False
        seconds = time.perf_counter() - t0
        files = [os.path.join(root, name) for root, _, names in os.walk(cache)
                 if os.path.basename(root).startswith("fastbp_")
                 for name in names if name.endswith((".nbi", ".nbc"))]
        if not files:
            _log("the warm-up cached nothing; the kernels compile on first use")
            return False
        os.makedirs(target)
        for name in files:
            shutil.copy2(name, target)
        manifest["seconds"] = round(seconds, 1)
        with open(os.path.join(target, "build.json"), "w", encoding="utf-8") as fh:
            json.dump(manifest, fh)
    size = sum(os.path.getsize(os.path.join(target, n)) for n in os.listdir(target))
    _log(f"compiled the kernels in {seconds:.0f} s for {manifest.get('cpu')}; shipping"
         f" {len(files)} cache files ({size / 1e6:.1f} MB) in fastbp/_kernel_cache")
    return True


class BuildPy(build_py):
    """``build_py``, then the install-time kernel cache (not for editable installs)."""

    def run(self):
        super().run()
        if not getattr(self, "editable_mode", False):
            precompile(os.path.abspath(os.path.join(self.build_lib, "fastbp")))
