"""fastbp's build backend: setuptools, plus the install-time kernel cache.

Building a wheel (``pip install .`` builds one on the user's own machine)
also runs :mod:`fastbp._warmup` from the freshly built package, in
subprocesses whose ``NUMBA_CACHE_DIR`` is an empty folder (two at once, one
per command it compiles for, where there are two CPUs), and ships the cache
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
COMPILE_REQUIRES = ["numpy>=1.24", "numba>=0.63", "threadpoolctl>=3"]
TIMEOUT = 1800  # seconds; a build never waits longer for the cache


def _enabled():
    # As fastbp._env.switch reads it (fastbp is not importable here).
    word = os.environ.get("FASTBP_INSTALL_CACHE", "1").strip().lower()
    if word not in ("0", "false", "no", "off", "1", "true", "yes", "on", ""):
        _log(f"FASTBP_INSTALL_CACHE={word!r} is not understood (0, false, no or off turn it"
             " off): it is taken as unset")
    return word not in ("0", "false", "no", "off")


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
        _log(f"FASTBP_INSTALL_CACHE={os.environ['FASTBP_INSTALL_CACHE']}: no install-time"
             " kernel cache")
        return False
    with tempfile.TemporaryDirectory(prefix="fastbp-cache-") as cache:
        path = os.pathsep.join(p for p in (os.path.dirname(os.path.abspath(package_dir)),
                                           os.environ.get("PYTHONPATH")) if p)
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=path,
                   PYTHONDONTWRITEBYTECODE="1")
        t0 = time.perf_counter()
        try:
            manifest = _warm_up(cache, env)
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


def _cpus():
    # fastbp.threads.default_num_threads, which this build step cannot import:
    # fastbp is not installed yet, and importing it loads Numba.
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _warm_up(cache, env):
    """Run ``fastbp._warmup`` into ``cache``; its manifest (``build.json``).

    With two or more CPUs (and POSIX file locks) its two parts run as two
    processes at once, their cache writes serialised by a lock file beside
    the cache's folders (see ``fastbp._warmup``); else as one process.
    """
    # Its own processes only: a helper of fastbp._ahead's could still be
    # writing to the cache while the build packs it.
    env = dict(env, FASTBP_COMPILE_AHEAD="0")
    if _cpus() >= 2 and os.name == "posix":
        env = dict(env, FASTBP_CACHE_LOCK=os.path.join(cache, "warmup.lock"))
        commands = [["train"], ["quickstart"]]
    else:
        commands = [[]]
    procs, logs = [], []
    try:
        for i, parts in enumerate(commands):  # output to files: a full pipe cannot stall one
            logs.append([open(os.path.join(cache, f"warmup-{i}.{s}"), "w+", encoding="utf-8")
                         for s in ("out", "err")])
            procs.append(subprocess.Popen([sys.executable, "-m", "fastbp._warmup", *parts],
                                          cwd=cache, env=env, stdout=logs[-1][0],
                                          stderr=logs[-1][1]))
        deadline = time.monotonic() + TIMEOUT
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
        manifests = []
        for p, (out, err) in zip(procs, logs):
            out.seek(0)
            err.seek(0)
            out, err = out.read(), err.read()
            if p.returncode != 0:
                raise RuntimeError(err.strip().splitlines()[-1] if err.strip()
                                   else f"exit status {p.returncode}")
            manifests.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:  # a timeout or an interrupt leaves no compiler running
            if p.poll() is None:
                p.kill()
                p.wait()
        for files in logs:
            for f in files:
                f.close()
    if any(m != manifests[0] for m in manifests):
        raise RuntimeError(f"the warm-up processes disagree on the build: {manifests}")
    return manifests[0]


class BuildPy(build_py):
    """``build_py``, then the install-time kernel cache (not for editable installs)."""

    def run(self):
        super().run()
        if not getattr(self, "editable_mode", False):
            precompile(os.path.abspath(os.path.join(self.build_lib, "fastbp")))
