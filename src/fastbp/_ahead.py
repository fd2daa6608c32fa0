"""Compile a model's inference kernels in a second process while its first fit compiles.

A first fit on a cold cache spends seconds compiling its epoch kernel on
one core, and the ``predict``, ``evaluate`` or validation that follows
compiles the inference kernels (``network._predict``, ``network._loss_sum``)
after it, on the same core. With two or more CPUs, the moment the epoch
kernel misses the cache (:class:`fastbp._jit.compile_notice`), a helper
process (``python -m fastbp._warmup inference SPEC``) builds a model of the same
architecture, runs ``predict`` and ``evaluate`` on two rows of zeros, and
so writes those kernels' cache entries while this process is still
compiling; this process's first inference then loads them. A cold first
``fit`` + ``predict`` of a 4-8-2 net took 3.57-3.64 against 4.05-4.22 s of
wall time, fresh processes, three turns (2026-12-04, 2 vCPUs; the table in
docs/guide/threads.md).

Correct in every case, only faster in the usual one:

- this process never depends on the helper: an inference kernel that misses
  the cache waits for a helper still running (at most :data:`PATIENCE`
  seconds), reads the cache again, and compiles itself if the entry is not
  there (the helper failed, was slower, or compiled another specialisation);
  a kernel found in the cache waits for nothing;
- both processes read and write Numba's cache under one ``flock``
  (:func:`fastbp._jit.lock_cache`), as the parallel install-time warm-up does;
- nothing starts with one usable CPU, with ``FASTBP_COMPILE_AHEAD=0``, in a
  frozen application, for a fit on sparse X (its inference kernels
  differ), without a cache to write to, without POSIX file locks, or from
  the helper itself; at most one helper runs at a time.
"""
import json
import os
import subprocess
import sys

ENV = "FASTBP_COMPILE_AHEAD"  # "0": never start a helper
PATIENCE = 60.0  # seconds an inference kernel waits for a running helper
LOCK = "fastbp-cache.lock"  # in the cache folder, when no FASTBP_CACHE_LOCK is set

_helper = []  # the running helper process (subprocess.Popen), at most one


def spec(net):
    """What the helper needs to build a model whose inference kernels are
    ``net``'s: its architecture (JSON-serialisable)."""
    return {"sizes": [int(s) for s in net.sizes], "activations": list(net.activations),
            "output": net.output, "loss": net.loss_name, "dtype": net.dtype.name}


def usable_cpus():
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def enabled():
    """Whether a cold fit may start a helper here (not in a frozen
    application, whose executable is the application, not Python)."""
    return (os.environ.get(ENV, "1") != "0" and usable_cpus() >= 2
            and not getattr(sys, "frozen", False))


def start(model_spec, dispatcher):
    """Start the helper for ``model_spec`` (see :func:`spec`) unless one is
    running or it would not help; ``dispatcher`` is the kernel whose cache
    miss called for it (its cache folder is where the helper writes).
    Returns the process, or None. Never raises: a helper is only a speed-up."""
    if _helper and _helper[0].poll() is None:
        return None
    _helper.clear()
    try:
        if not enabled():
            return None
        folder = getattr(getattr(dispatcher, "_cache", None), "cache_path", None)
        if not folder or not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            return None  # no cache to meet in (NullCache, a read-only folder)
        from numba.core import config

        from . import _jit
        if not _jit._cache_lock:
            _jit.lock_cache(os.path.join(folder, LOCK))
        if not _jit._cache_lock:
            return None  # no flock here (not POSIX): two writers could spoil the cache
        env = dict(os.environ)
        env[ENV] = "0"  # the helper starts no helper
        env[_jit.CACHE_LOCK] = _jit._cache_lock[0]
        # This fastbp, found first: the cache is keyed by the source files' paths.
        package_parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(
            [package_parent] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        if config.CACHE_DIR:  # as this process reads it, even if os.environ changed since
            env["NUMBA_CACHE_DIR"] = config.CACHE_DIR
        else:
            env.pop("NUMBA_CACHE_DIR", None)
        process = subprocess.Popen(
            [sys.executable, "-m", "fastbp._warmup", "inference", json.dumps(model_spec)], env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=True)
    except Exception:  # no interpreter to start, no fcntl, ...: compile here as before
        return None
    _helper.append(process)
    return process


def wait():
    """Wait for a running helper (at most :data:`PATIENCE` seconds; one that
    takes longer is stopped). True when there was one, so that a cache miss
    is worth reading again."""
    if not _helper:
        return False
    process = _helper.pop()
    try:
        process.wait(timeout=PATIENCE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    except BaseException:  # Ctrl-C while waiting: leave no helper behind
        process.kill()
        raise
    return True


class WaitsForHelper:
    """A kernel's cache, read again after waiting for a running helper when
    the first read misses (see the module docstring); otherwise the cache
    it wraps, unchanged."""

    def __init__(self, cache):
        self.inner = cache

    def load_overload(self, sig, target_context):
        cres = self.inner.load_overload(sig, target_context)
        if cres is None and _helper and wait():
            cres = self.inner.load_overload(sig, target_context)
        return cres

    def __getattr__(self, name):
        return getattr(self.inner, name)


def waits_for_helper(dispatcher):
    """Make ``dispatcher`` (an inference kernel) read its cache through
    :class:`WaitsForHelper`; nothing for a dispatcher without a cache."""
    cache = getattr(dispatcher, "_cache", None)
    if cache is not None and hasattr(cache, "load_overload"):
        dispatcher._cache = WaitsForHelper(cache)
    return dispatcher
