"""Compile a model's inference kernels in a second process while its first fit compiles.

A first fit on a cold cache spends seconds compiling its epoch kernel on
one core, and the ``predict``, ``evaluate`` or validation that follows
compiles the inference kernels (``network._predict``, ``network._loss_sum``)
after it, on the same core. With two or more CPUs, the moment the epoch
kernel misses the cache (:class:`fastbp._jit.compile_notice`), a helper
process (``fastbp._warmup inference SPEC``, :data:`HELPER`) builds a model of the same
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
- nothing starts with one usable CPU, when the other CPUs are busy (two
  processes compiling at once: a helper would slow both), with
  ``FASTBP_COMPILE_AHEAD=0``, in a frozen application or an embedding host
  (sys.executable not a Python), for a fit on sparse X (its inference
  kernels differ), without a cache to write to, without POSIX file locks,
  or from the helper itself; at most one helper runs at a time, and it
  builds a model of two units per layer (the kernels' types do not depend
  on the widths).
"""
import json
import os
import atexit
import subprocess
import sys
import threading
import time

from . import _env

ENV = "FASTBP_COMPILE_AHEAD"  # "0": never start a helper
# Seconds an inference kernel waits for a running helper. A helper takes
# 1.5-3 s and starts when the fit's epoch kernel starts compiling (2-3 s), so
# it is usually done; one that is not done by then is stuck or starved, and
# compiling here (0.4-1.5 s) is the better bet.
PATIENCE = 10.0
LOCK = "fastbp-cache.lock"  # in the cache folder, when no FASTBP_CACHE_LOCK is set

_helper = []  # the running helper process (subprocess.Popen), at most one
if hasattr(os, "register_at_fork"):
    # A forked child has not the parent's helper for a child: it waited on
    # Popen's lock, which the parent's reaper held, forever (inside Numba's
    # compile), after killing the parent's helper.
    os.register_at_fork(after_in_child=lambda: _helper.clear())


# The helper's program: ``python -m fastbp._warmup`` without the working
# folder first on its path (where -m and -c put it), which ran a json.py or
# numpy.py found there in a process the user never started (review HCJ).
HELPER = ("import sys\n"   # (built in: nothing read from the folder before the entry goes)
          "if sys.path[:1] == ['']:\n"
          "    del sys.path[0]\n"
          "import runpy\n"
          "runpy.run_module('fastbp._warmup', run_name='__main__', alter_sys=True)")


def spec(net):
    """What the helper needs to build a model whose inference kernels are
    ``net``'s (JSON-serialisable): its depth, activations, output, loss,
    dtype and outputs. The kernels' types do not depend on the layers'
    widths, so the helper's model has two units per input and hidden layer:
    no memory or time for a large model's weights."""
    sizes = [2] * (len(net.sizes) - 1) + [int(net.sizes[-1])]
    return {"sizes": sizes, "activations": list(net.activations), "output": net.output,
            "loss": net.loss_name, "dtype": net.dtype.name}


def usable_cpus():
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _runnable():
    """How many threads the system runs or has ready to run now, this one
    included (Linux's /proc/loadavg), else the last minute's load average
    plus this one; None when neither is known."""
    try:
        with open("/proc/loadavg") as fh:
            return int(fh.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.getloadavg()[0] + 1
    except (AttributeError, OSError):
        return None


def idle_cpus():
    """The usable CPUs that nothing else is running on, this thread's aside
    (the fewest of three looks a millisecond apart: a thread that only
    passes by does not count). Two processes compiling at once (parallel
    jobs, test workers) leave none on two CPUs, and a helper would then
    slow them both."""
    looks = []
    for i in range(3):
        if i:
            time.sleep(0.001)
        looks.append(_runnable())
    if None in looks:
        return usable_cpus() - 1
    return int(usable_cpus() - min(looks))


def _runs_python(executable):
    """Whether ``executable`` is a Python interpreter (an embedding host,
    uWSGI for one, sets sys.executable to its own program)."""
    return os.path.basename(executable or "").lower().startswith("python")


def enabled():
    """Whether a cold fit may start a helper here: two or more usable CPUs,
    ``FASTBP_COMPILE_AHEAD`` not 0, and sys.executable a Python (not a frozen
    application or an embedding host)."""
    from ._jit import NO_CACHE_FOLDER   # (no cache to compile into for this process)
    return (_env.switch(ENV) and usable_cpus() >= 2 and not NO_CACHE_FOLDER
            and not getattr(sys, "frozen", False) and _runs_python(sys.executable))


def start(model_spec, dispatcher):
    """Start the helper for ``model_spec`` (see :func:`spec`) unless one is
    running or it would not help; ``dispatcher`` is the kernel whose cache
    miss called for it (its cache folder is where the helper writes).
    Returns the process, or None. Never raises: a helper is only a speed-up."""
    if _helper and _helper[0].poll() is None:
        return None
    _helper.clear()
    try:
        if not enabled() or idle_cpus() < 1:
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
            [sys.executable, "-c", HELPER, "inference", json.dumps(model_spec)], env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=True)
    except Exception:  # no interpreter to start, no fcntl, ...: compile here as before
        return None
    _helper.append(process)
    # Reaped when it ends, whether or not this process ever waits for it: no
    # zombie left while this process lives.
    threading.Thread(target=_reap, args=(process,), name="fastbp-helper-reaper",
                     daemon=True).start()
    return process


def _reap(process):
    try:
        process.wait()
    except Exception:  # reaped by another wait already
        pass


@atexit.register
def _leave_running():
    """At exit, a helper still compiling is left to finish (the next process
    loads what it writes) without Popen's "still running" ResourceWarning."""
    for process in _helper:
        if process.poll() is None and hasattr(process, "_child_created"):
            process._child_created = False


def wait():
    """Wait for a running helper (at most :data:`PATIENCE` seconds; one that
    takes longer is stopped). This runs inside Numba's compile, under its
    global compiler lock, hence the short patience. True when there was
    one, so that a cache miss is worth reading again."""
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
