"""The kernel caches: the install-time one shipped in the wheel, and saying
when the kernels compile (``fit(verbose=1)``, ``fastbp train``, ``fastbp info``)."""
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import numba
import numpy as np
import pytest

import fastbp
from fastbp import _jit

ROOT = pathlib.Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

# A package that compiles its one kernel with fastbp's `jit`, as fastbp's own
# modules do: the install-time cache is looked up beside the kernel's source.
KERNEL = '''
from fastbp._jit import jit


@jit
def axpy(y, a, x):
    for i in range(y.shape[0]):
        y[i] += a * x[i]
'''
PROBE = '''
import json, sys
import numpy as np
import mini
out = []
for dtype in (np.float32, np.float64):
    y = np.arange(5, dtype=dtype)
    mini.axpy(y, dtype(0.5), np.ones(5, dtype))
    out.append(y.tolist())
stats = mini.axpy.stats
print(json.dumps({"hits": sum(stats.cache_hits.values()), "misses": sum(stats.cache_misses.values()),
                  "out": out}))
'''
EXPECTED = [[0.5, 1.5, 2.5, 3.5, 4.5]] * 2


# What Numba meets where no folder is writable (a read-only package,
# NUMBA_CACHE_DIR and home): no locator finds a folder for a cache.
NO_FOLDER_FIRST = ("import numba.core.caching as caching\n"
                   "caching.CacheImpl._locator_classes = []\n")


def _probe(tmp_path, cache, first="", **env):
    base = {k: v for k, v in os.environ.items() if k != "FASTBP_INSTALL_CACHE"}
    env = dict(base, NUMBA_CACHE_DIR=str(cache),
               PYTHONPATH=os.pathsep.join([str(SRC), str(tmp_path)]), **env)
    run = subprocess.run([sys.executable, "-c", first + PROBE], env=env, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.splitlines()[-1])


@pytest.mark.parametrize("cut", ["index truncated", "index empty", "data truncated"])
def test_a_damaged_cache_file_is_named_and_written_anew(tmp_path, cut):
    """A cache file cut short (a full disk, a killed process) made every run
    fail with pickle's UnpicklingError or EOFError, naming no file, until the
    file was deleted. Now a warning names it, the kernel compiles, and the
    next run loads it again."""
    (tmp_path / "mini.py").write_text(KERNEL)
    cache = tmp_path / "cache"
    assert _probe(tmp_path, cache) == {"hits": 0, "misses": 2, "out": EXPECTED}
    index, = cache.rglob("mini.axpy-*.nbi")
    data = sorted(cache.rglob("mini.axpy-*.nbc"))[0]
    target = {"index truncated": (index, 40), "index empty": (index, 0),
              "data truncated": (data, 100)}[cut]
    with open(target[0], "r+b") as fh:
        fh.truncate(target[1])
    base = {k: v for k, v in os.environ.items() if k != "FASTBP_INSTALL_CACHE"}
    run = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=300, env=dict(base, NUMBA_CACHE_DIR=str(cache), PYTHONPATH=
                                               os.pathsep.join([str(SRC), str(tmp_path)])))
    assert run.returncode == 0, run.stderr
    assert f"RuntimeWarning: fastbp's kernel cache file {target[0]} is damaged" in run.stderr
    assert "compiling the kernel instead, and writing the file anew" in run.stderr
    assert json.loads(run.stdout.splitlines()[-1])["out"] == EXPECTED
    assert _probe(tmp_path, cache) == {"hits": 2, "misses": 0, "out": EXPECTED}


@pytest.fixture()
def shipped(tmp_path):
    """``mini`` compiled once, its cache files moved into ``mini/_kernel_cache``
    with the manifest the build writes; Numba's own cache folder left empty."""
    package = tmp_path / "mini"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(KERNEL))
    built = tmp_path / "built"
    first = _probe(tmp_path, built)
    assert first == {"hits": 0, "misses": 2, "out": EXPECTED}
    folder = package / _jit.SHIPPED
    folder.mkdir()
    for f in built.rglob("*.nb[ic]"):
        shutil.copy(f, folder)
    (folder / _jit.MANIFEST).write_text(json.dumps(_jit.runtime_versions()))
    return folder


def test_install_time_cache_loads_where_numbas_cache_is_empty(tmp_path, shipped):
    """An empty NUMBA_CACHE_DIR (or a read-only install, where Numba's cache is
    the per-user folder): both specialisations load from the shipped cache."""
    assert _probe(tmp_path, tmp_path / "empty") == {"hits": 2, "misses": 0, "out": EXPECTED}


def test_install_time_cache_loads_where_no_folder_is_writable(tmp_path, shipped):
    """A container whose package, NUMBA_CACHE_DIR and home are all read-only:
    Numba made no cache at all, so every run compiled the kernels the
    installation ships compiled (hits 0, misses 2). They load from it now,
    and nothing is written anywhere."""
    before = sorted(p.name for p in shipped.iterdir())
    for _ in range(2):
        assert _probe(tmp_path, tmp_path / "unused", NO_FOLDER_FIRST) == \
            {"hits": 2, "misses": 0, "out": EXPECTED}
    assert sorted(p.name for p in shipped.iterdir()) == before
    assert not (tmp_path / "unused").exists()
    assert not (shipped.parent / "__pycache__").exists() or \
        not list((shipped.parent / "__pycache__").glob("*.nb[ic]"))
    # One that does not fit compiles in memory, silently, as before.
    (shipped / _jit.MANIFEST).write_text(json.dumps(dict(_jit.runtime_versions(), numba="0.1")))
    assert _probe(tmp_path, tmp_path / "unused", NO_FOLDER_FIRST) == \
        {"hits": 0, "misses": 2, "out": EXPECTED}


RECOMPILE_PROBE = """
import numpy as np
import mini
mini.axpy(np.zeros(3), 1.0, np.ones(3))
mini.axpy.recompile()   # Numba's public call: it flushes the cache's index
print("recompiled")
"""


def test_recompile_writes_nothing_where_no_folder_is_writable(tmp_path, shipped):
    """Found in review (session 44): Dispatcher.recompile() flushed the
    install-time cache's index, writing an empty one into the installation
    (PermissionError where it is read-only; as root, the kernel's entries
    wiped: every later process compiled it)."""
    before = {p.name: p.read_bytes() for p in shipped.iterdir()}
    env = dict({k: v for k, v in os.environ.items() if k != "FASTBP_INSTALL_CACHE"},
               NUMBA_CACHE_DIR=str(tmp_path / "unused"),
               PYTHONPATH=os.pathsep.join([str(SRC), str(tmp_path)]))
    run = subprocess.run([sys.executable, "-c", NO_FOLDER_FIRST + RECOMPILE_PROBE], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "recompiled" in run.stdout, run.stderr
    assert {p.name: p.read_bytes() for p in shipped.iterdir()} == before
    assert _probe(tmp_path, tmp_path / "unused", NO_FOLDER_FIRST) == \
        {"hits": 2, "misses": 0, "out": EXPECTED}


INFO_PROBE = """
import json
from fastbp import _jit
import mini
every = _jit.cache_report()["kernels"]   # fastbp's own and mini's
_jit.KERNELS[:] = [k for k in _jit.KERNELS if k.py_func.__module__ == "mini"]
report = _jit.cache_report()   # (of the package of its first kernel: mini's)
print(json.dumps({k: report[k] for k in ("path", "where", "install_path", "install_fits",
                                         "install_why", "kernels", "in_install")}
                 | {"every": every}))
"""


@pytest.mark.parametrize("case", ["other numba", "turned off"])
def test_info_names_an_unused_install_time_cache_where_no_folder_is_writable(tmp_path, shipped,
                                                                            case):
    """Found in review (session 44): with no writable folder the report
    returned before the install-time cache's fields (no kernel was
    registered): no line saying why it went unused, and 0 kernels."""
    env = dict({k: v for k, v in os.environ.items() if k != "FASTBP_INSTALL_CACHE"},
               NUMBA_CACHE_DIR=str(tmp_path / "unused"),
               PYTHONPATH=os.pathsep.join([str(SRC), str(tmp_path)]))
    if case == "other numba":
        (shipped / _jit.MANIFEST).write_text(json.dumps(dict(_jit.runtime_versions(),
                                                             numba="0.1.0")))
    else:
        env["FASTBP_INSTALL_CACHE"] = "0"
    run = subprocess.run([sys.executable, "-c", NO_FOLDER_FIRST + INFO_PROBE], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.splitlines()[-1])
    assert got["every"] > 100   # (it counted 0: kernels made without a cache were not kept)
    assert got["path"] is None and got["in_install"] == 0 and got["kernels"] == 1
    assert got["install_path"] == str(shipped)
    if case == "other numba":
        assert got["install_fits"] is False and "numba 0.1.0" in got["install_why"]
    else:
        assert got["install_fits"] is None
    assert "so the kernels compile in memory in each process" in got["where"]


REPORT_PROBE = """
import json
import numpy as np
import mini
from fastbp import _jit
mini.axpy(np.zeros(3), 1.0, np.ones(3))
report = _jit.cache_report()
kernels = [k for k in _jit.KERNELS if k.py_func.__module__ == "mini"]
print(json.dumps({k: report[k] for k in ("path", "in_path", "in_install")}
                 | {"mini": len(kernels), "hits": sum(mini.axpy.stats.cache_hits.values())}))
"""


def test_info_counts_the_install_time_cache_where_no_folder_is_writable(tmp_path, shipped):
    env = dict({k: v for k, v in os.environ.items() if k != "FASTBP_INSTALL_CACHE"},
               NUMBA_CACHE_DIR=str(tmp_path / "unused"),
               PYTHONPATH=os.pathsep.join([str(SRC), str(tmp_path)]))
    run = subprocess.run([sys.executable, "-c", NO_FOLDER_FIRST + REPORT_PROBE], env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.splitlines()[-1])
    # mini's one kernel has its float64 entry in the install-time cache, and
    # no cache folder of Numba's; fastbp's own (an editable tree) have none.
    assert got == {"path": None, "in_path": 0, "in_install": 1, "mini": 1, "hits": 1}


@pytest.mark.parametrize("case", ["other cpu", "other numba", "damaged index", "turned off"])
def test_install_time_cache_that_does_not_fit_compiles_silently(tmp_path, shipped, case):
    env = {}
    if case == "other cpu":  # Numba keys each entry by the CPU name and features
        env["NUMBA_CPU_NAME"] = "generic"
    elif case == "other numba":
        built = json.loads((shipped / _jit.MANIFEST).read_text())
        (shipped / _jit.MANIFEST).write_text(json.dumps(dict(built, numba="0.1.0")))
    elif case == "damaged index":
        for index in shipped.glob("*.nbi"):
            index.write_bytes(b"\x80\x04not a pickle")
    else:
        env["FASTBP_INSTALL_CACHE"] = "0"
    assert _probe(tmp_path, tmp_path / "empty", **env) == {"hits": 0, "misses": 2, "out": EXPECTED}


# A function that only kernels call (KERNEL_ONLY), too big for LLVM to
# inline, and a kernel that calls it.
LINK_ONLY = '''
from fastbp._jit import KERNEL_ONLY, jit


@jit(**KERNEL_ONLY)
def leaf(y, x):
    for i in range(y.shape[0]):
        y[i] = 0.5 * y[i] + x[i] * x[i]
    for i in range(y.shape[0]):
        y[i] = y[i] / (1.0 + x[i] * x[i])
    return y.sum()


@jit
def first(y, x):
    return leaf(y, x)
'''
LINK_ONLY_PROBE = '''
import json
import numba
import numpy as np
import mini

y, x = np.arange(6.0), np.linspace(0.0, 1.0, 6)
expected = 0.5 * y + x * x
expected = expected / (1.0 + x * x)
if mini.first(y.copy(), x) != expected.sum():  # compiles first; loads leaf when cached
    raise SystemExit("wrong result")


@numba.njit
def second(y, x):  # a kernel compiled in this process, whatever the cache holds
    return mini.leaf(y, x)


out = y.copy()
total = second(out, x)
(cres,) = mini.leaf.overloads.values()
print(json.dumps({"leaf hits": sum(mini.leaf.stats.cache_hits.values()),
                  "library": type(cres.library).__name__,
                  "right": bool(np.allclose(out, expected) and total == out.sum())}))
'''


@pytest.mark.parametrize("fastbps", [True, False])
def test_a_save_cut_short_never_leaves_an_index_naming_the_old_sources_code(tmp_path, fastbps):
    """Review HCJ: Numba writes a kernel's index before its data file, and
    for a kernel whose file changed it names the data file of the lowest
    number, which holds the old sources' code until the data is written. A
    process killed between the two left the new index naming the old code,
    loaded by every later run. fastbp's kernels write the data first: a
    save cut short after its first write leaves the entry unnamed (it
    compiles), never naming the old code. (A cache of the user's own keeps
    Numba's order.)"""
    from numba.core.caching import IndexDataCacheFile

    def files(stamp):
        f = IndexDataCacheFile(str(tmp_path), "kernel", stamp)
        f._fastbp_data_first = fastbps
        return f

    files(("old sources", 1)).save("key", "old sources' code")
    new = files(("new sources", 2))

    class Killed(BaseException):
        pass

    writes = []

    def cut_after_the_first_write(method):
        def write(*args):
            if writes:
                raise Killed
            writes.append(method.__name__)
            return method(*args)
        return write

    new._save_index = cut_after_the_first_write(new._save_index)
    new._save_data = cut_after_the_first_write(new._save_data)
    with pytest.raises(Killed):
        new.save("key", "new sources' code")
    loaded = files(("new sources", 2)).load("key")
    if fastbps:
        assert writes == ["_save_data"] and loaded is None   # (it compiles)
        files(("new sources", 2)).save("key", "new sources' code")
        assert files(("new sources", 2)).load("key") == "new sources' code"
    else:   # Numba's own order, kept for other caches
        assert writes == ["_save_index"] and loaded == "old sources' code"
    cache = _jit.KERNELS[0]._cache   # (Numba's own, below the install-time one where shipped)
    assert getattr(cache, "primary", cache)._cache_file._fastbp_data_first


def test_a_cached_link_only_function_loads_as_code_to_link_not_as_machine_code(tmp_path):
    """A function only kernels call is cached as the bitcode they link in and
    loads back as that: were it made machine code on loading (Numba's way
    with bitcode), a kernel compiled after would call that unoptimised copy
    wherever LLVM did not inline it (ops.column_sums ran 6-15x slower so)."""
    package = tmp_path / "mini"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(LINK_ONLY))
    env = dict({k: v for k, v in os.environ.items() if k != "FASTBP_INSTALL_CACHE"},
               NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(SRC), str(tmp_path)]))
    runs = []
    for _ in range(2):
        run = subprocess.run([sys.executable, "-c", LINK_ONLY_PROBE], env=env, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        runs.append(json.loads(run.stdout.splitlines()[-1]))
    cold, warm = runs
    # _LinkOnlyLibrary: never machine code of its own (numba's JITCodeLibrary would be)
    assert cold == {"leaf hits": 0, "library": "_LinkOnlyLibrary", "right": True}
    assert warm == dict(cold, **{"leaf hits": 1})


def _backend():
    spec = importlib.util.spec_from_file_location("fastbp_build_backend",
                                                  ROOT / "build_hooks" / "backend.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_without_a_working_compile_ships_no_cache_and_says_so(tmp_path, capfd):
    """A build whose warm-up fails (here: the built package cannot be
    imported) still succeeds, removes a stale cache from an earlier build and
    says why in the log."""
    package = tmp_path / "build" / "fastbp"
    (package / _jit.SHIPPED).mkdir(parents=True)
    # A regular package first on the warm-up's path, so an installed fastbp
    # (or PYTHONPATH) cannot stand in for it.
    (package / "__init__.py").write_text("raise ImportError('broken on purpose')\n")
    (package / _jit.SHIPPED / _jit.MANIFEST).write_text("{}")
    assert _backend().precompile(str(package)) is False
    assert not (package / _jit.SHIPPED).exists()
    assert "kernels not precompiled" in capfd.readouterr().err


@pytest.mark.filterwarnings("ignore:Support for `\\[tool.setuptools\\]`")
def test_wheel_build_requires_what_compiling_needs(monkeypatch):
    backend = _backend()
    monkeypatch.chdir(ROOT)  # setuptools reads the project from the working directory
    monkeypatch.delenv("FASTBP_INSTALL_CACHE", raising=False)
    names = {r.split(">")[0].split("=")[0] for r in backend.get_requires_for_build_wheel()}
    assert {"numpy", "numba", "threadpoolctl"} <= names
    monkeypatch.setenv("FASTBP_INSTALL_CACHE", "0")
    assert "numba" not in {r.split(">")[0] for r in backend.get_requires_for_build_wheel()}


def test_compile_notice_only_when_a_fastbp_kernel_compiles(capsys, monkeypatch):
    def probe(x):
        return x + 1
    probe.__module__ = "fastbp._probe"  # counted as fastbp's, like every kernel module
    kernel = numba.njit(probe)
    theirs = numba.njit(lambda x: x * 2)  # a user's own kernel: not fastbp's business
    before = _jit.compilations()
    with _jit.compile_notice(0):
        kernel(1)
    assert capsys.readouterr().out == ""
    with _jit.compile_notice(1):
        theirs(1)
        kernel(1.0)
        kernel(np.float32(1))
    assert capsys.readouterr().out == _jit.NOTICE + "\n"
    with _jit.compile_notice(1):
        kernel(2.0)  # already compiled: nothing to say
    assert capsys.readouterr().out == ""
    with _jit.compile_notice(0):   # (review HIA) the block before left nothing armed
        kernel(np.uint8(1))
    assert capsys.readouterr().out == ""
    with _jit.compile_notice(1), _jit.compile_notice(1):  # a fit inside a fit's callback
        kernel(np.int8(1))
    assert capsys.readouterr().out == _jit.NOTICE + "\n"
    assert _jit.compilations() - before == 5
    # Review GN: with no cache folder, "once per installation (later runs
    # load them from the cache)" promised a cache there is not
    monkeypatch.setattr(_jit, "NO_CACHE_FOLDER", ["probe"])
    with _jit.compile_notice(1):
        kernel(np.int16(1))
    assert capsys.readouterr().out == _jit.NOTICE_UNCACHED + "\n"
    assert "each run compiles them" in _jit.NOTICE_UNCACHED


FULL_DISK = """
import errno, warnings
import numba.core.caching as caching
def full(self, name, data):
    raise OSError(errno.ENOSPC, "No space left on device")
caching.IndexDataCacheFile._save_data = full   # every cache write fails, as on a full disk
import numpy as np
import fastbp
X = np.random.default_rng(0).normal(size=(20, 3))
net = fastbp.MLP([3, 4, 2], seed=0)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    net.fit(X, (X[:, 0] > 0).astype(int), epochs=2, verbose=0)
    print("predicted", net.predict(X[:3]).tolist())
print("warnings", [str(w.message) for w in caught if "kernel cache" in str(w.message)])
"""


def test_a_cache_that_cannot_be_written_leaves_the_kernels_running_from_memory(tmp_path):
    """Review GN: on a full disk under the cache folder, Numba's OSError from
    writing a kernel's cache file ended the fit (and `fastbp train`) with a
    traceback, though the kernel was compiled and in memory."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(SRC),
               FASTBP_INSTALL_CACHE="0", FASTBP_COMPILE_AHEAD="0")
    run = subprocess.run([sys.executable, "-c", FULL_DISK], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    want = fastbp.MLP([3, 4, 2], seed=0)
    X = np.random.default_rng(0).normal(size=(20, 3))
    want.fit(X, (X[:, 0] > 0).astype(int), epochs=2, verbose=0)
    assert f"predicted {want.predict(X[:3]).tolist()}" in run.stdout
    warned = [line for line in run.stdout.splitlines() if line.startswith("warnings")]
    assert warned and warned[0].count("could not write its kernel cache") == 1   # once
    assert "No space left on device" in warned[0]


def test_info_does_not_name_a_numba_cache_dir_that_numba_could_not_use(tmp_path):
    # A file where a folder should be: Numba goes on to the next place (beside
    # the sources, or its per-user folder); info named NUMBA_CACHE_DIR anyway.
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(blocked), PYTHONPATH=str(SRC))
    run = subprocess.run([sys.executable, "-m", "fastbp.cli", "info"], env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    line = next(l for l in run.stdout.splitlines() if l.startswith("kernel cache: "))
    assert str(blocked) not in line.split(" (")[0]
    assert line.endswith(f"; NUMBA_CACHE_DIR={blocked} is not writable)")
    assert "(NUMBA_CACHE_DIR)" not in line


NO_FOLDER = """
import numba.core.caching as caching
caching.CacheImpl._locator_classes = []   # Numba finds no folder it can write: a read-only
import sys, numpy as np                   # package, NUMBA_CACHE_DIR and home unwritable
import fastbp
from fastbp import _jit, cli
X = np.random.default_rng(0).normal(size=(20, 3))
net = fastbp.MLP([3, 4, 2], seed=0)
net.fit(X, (X[:, 0] > 0).astype(int), epochs=2, verbose=0)
print("predicted", net.predict(X[:3]).tolist(), bool(_jit.NO_CACHE_FOLDER))
cli.main(["info"])
"""


def test_no_writable_cache_folder_compiles_in_memory_and_info_says_so(tmp_path):
    """import fastbp failed with Numba's "cannot cache function 'permute_rows':
    no locator available" (a read-only container without a writable home):
    no fit, not even fastbp info to say where the cache was looked for."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "unused"), PYTHONPATH=str(SRC))
    run = subprocess.run([sys.executable, "-c", NO_FOLDER], env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    want = fastbp.MLP([3, 4, 2], seed=0)
    X = np.random.default_rng(0).normal(size=(20, 3))
    want.fit(X, (X[:, 0] > 0).astype(int), epochs=2, verbose=0)
    assert f"predicted {want.predict(X[:3]).tolist()} True" in out
    assert "kernel cache: none (none: Numba found no writable folder" in out
    assert "set NUMBA_CACHE_DIR to a writable folder" in out
    assert "each process compiles the kernels it needs" in out and "no helper process" in out


def test_info_says_when_the_install_time_cache_is_switched_off(tmp_path, monkeypatch):
    """It said "built with another Python, Numba or NumPy: unused" under
    FASTBP_INSTALL_CACHE=0, the same Python, Numba and NumPy."""
    monkeypatch.setattr(_jit, "SHIPPED", "data")   # a folder the package has, as the cache
    monkeypatch.setenv("FASTBP_INSTALL_CACHE", "0")
    report = _jit.cache_report()
    assert report["install_path"] is not None and report["install_fits"] is None


@pytest.mark.parametrize("value, on", [("false", False), (" Off ", False), ("no", False),
                                       ("0", False), ("yes", True), ("", True), ("1", True)])
def test_the_on_off_variables_take_the_usual_words(monkeypatch, recwarn, value, on):
    """Every value but exactly "0" was on: FASTBP_INSTALL_CACHE=false used
    the install-time cache, FASTBP_COMPILE_AHEAD=no started the helper."""
    from fastbp import _env
    monkeypatch.setenv("FASTBP_COMPILE_AHEAD", value)
    assert _env.switch("FASTBP_COMPILE_AHEAD") is on
    assert not recwarn.list


def test_the_build_warm_up_names_a_part_it_does_not_know():
    # (review HIJ: a mutant raised KeyError 'bogus')
    from fastbp import _warmup
    with pytest.raises(ValueError, match=r"unknown warm-up part\(s\) \['bogus'\]; known: \["):
        _warmup.run(("bogus",))


def test_a_variable_not_understood_is_named_once_and_taken_as_unset(monkeypatch):
    from fastbp import _env
    monkeypatch.setattr(_env, "_warned", set())
    monkeypatch.setenv("FASTBP_INSTALL_CACHE", "maybe")
    monkeypatch.setenv("FASTBP_BLAS", "mkl")
    with pytest.warns(RuntimeWarning, match="FASTBP_INSTALL_CACHE='maybe' is not understood"):
        assert _env.switch("FASTBP_INSTALL_CACHE") is True
    with pytest.warns(RuntimeWarning, match=r"FASTBP_BLAS='mkl' is not understood \(it may be"
                                            r" numpy or scipy\); it is taken as unset"):
        assert _env.choice("FASTBP_BLAS", ("numpy", "scipy")) is None
    monkeypatch.setenv("FASTBP_BLAS", " SciPy ")
    assert _env.choice("FASTBP_BLAS", ("numpy", "scipy")) == "scipy"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _env.switch("FASTBP_INSTALL_CACHE") is True   # (said once)
        monkeypatch.setenv("FASTBP_BLAS", "  ")   # blank: unset, without a word (review HIE)
        assert _env.choice("FASTBP_BLAS", ("numpy", "scipy")) is None


def test_info_says_why_the_install_time_cache_goes_unused(tmp_path, monkeypatch):
    """It said "built with another Python, Numba or NumPy" for a missing or
    damaged build.json too, and never which version differed."""
    package = os.path.dirname(_jit.KERNELS[0].py_func.__code__.co_filename)
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setattr(_jit, "SHIPPED", os.path.relpath(folder, package))
    monkeypatch.setattr(_jit, "_shipped_folders", {})
    monkeypatch.setattr(_jit, "_shipped_why", {})
    monkeypatch.delenv("FASTBP_INSTALL_CACHE", raising=False)
    report = _jit.cache_report()
    assert report["install_fits"] is False
    assert report["install_why"] == (f"its manifest {_jit.MANIFEST} is missing or unreadable"
                                     " (FileNotFoundError)")
    built = dict(_jit.runtime_versions(), numpy="1.0.0")
    (folder / _jit.MANIFEST).write_text(json.dumps(built))
    _jit._shipped_folders.clear()
    report = _jit.cache_report()
    assert report["install_why"] == f"built with numpy 1.0.0 (this is {np.__version__})"
    monkeypatch.setenv("FASTBP_INSTALL_CACHE", "false")
    _jit._shipped_folders.clear()
    assert _jit.cache_report()["install_fits"] is None


LOCK_PROBE = """
import os, warnings
warnings.simplefilter("always")
import numpy as np
import fastbp
from fastbp import _jit
os.chdir({elsewhere!r})
print(_jit._cache_lock[0])
fastbp.MLP([3, 2], seed=0).predict(np.zeros((1, 3)))   # (the cache read after the chdir)
"""


def test_the_cache_lock_is_one_file_wherever_the_process_goes(tmp_path):
    """A relative FASTBP_CACHE_LOCK was taken afresh at each cache access: a
    process that changed folder locked another file than its peers. One
    that cannot be opened (a folder) left the cache unlocked silently."""
    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    start.mkdir()
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(SRC), NUMBA_CACHE_DIR=str(tmp_path / "nc"),
               FASTBP_CACHE_LOCK="rel.lock")
    code = LOCK_PROBE.format(elsewhere=str(elsewhere))
    run = subprocess.run([sys.executable, "-c", code], env=env, cwd=start, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0] == str(start / "rel.lock")
    assert (start / "rel.lock").exists() and not (elsewhere / "rel.lock").exists()
    run = subprocess.run([sys.executable, "-c", code], env=dict(env, FASTBP_CACHE_LOCK=str(start)),
                         cwd=start, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count(f"the cache lock {start} (FASTBP_CACHE_LOCK) cannot be opened") == 1


def test_cold_cache_says_it_compiles_and_info_tells_cold_then_warm(tmp_path):
    """The README's first command on an empty cache: ``fastbp info`` says cold,
    ``fastbp train`` says once that it compiles, then info says warm and a
    second train compiles nothing and says nothing."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), PYTHONPATH=str(SRC))

    def fastbp(*args):
        run = subprocess.run([sys.executable, "-m", "fastbp.cli", *args], env=env,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr
        return run.stdout

    info = fastbp("info")
    assert f"kernel cache: {tmp_path}" in info and "(NUMBA_CACHE_DIR)" in info
    assert "cold:" in info
    out = fastbp("train", "--epochs", "2", "--verbose", "2")
    assert out.count(_jit.NOTICE) == 1
    assert out.index(_jit.NOTICE) < out.index("epoch 1/2")
    assert "(the first compiled fastbp's kernels)" in out
    info = fastbp("info")
    assert "warm:" in info
    cached = int(info.split("warm: ")[1].split()[0])
    assert cached >= 3  # at least the epoch, the loss and predict
    out = fastbp("train", "--epochs", "2", "--verbose", "2")
    assert "compiling" not in out and "(the first loaded the compiled kernels)" in out
    # (review HGF) data files emptied, cut short or gone, their indexes whole:
    # Numba loads nothing from them, and info says cold (it said warm)
    data = sorted(tmp_path.rglob("*.nbc"))
    assert len(data) >= cached
    for i, path in enumerate(data):
        if i % 3 == 0:
            path.write_bytes(b"")
        elif i % 3 == 1:
            path.write_bytes(path.read_bytes()[:-1])
        else:
            path.unlink()
    assert "cold:" in fastbp("info")


# Two processes add different specialisations of one kernel to one cache
# folder at the same moment (as the build's parallel warm-up may): each waits
# at a barrier of files, then compiles its dtype and saves.
RACER = '''
import os, sys, time
import numpy as np
import fastbp  # takes the lock of FASTBP_CACHE_LOCK
from numba.core.caching import IndexDataCacheFile
save = IndexDataCacheFile.save
def slow_save(self, key, data):  # widen the window between reading and writing the index
    load = self._load_index
    def slow_load():
        index = load()
        time.sleep(0.5)
        return index
    self._load_index = slow_load
    try:
        return save(self, key, data)
    finally:
        del self._load_index
IndexDataCacheFile.save = slow_save
import mini
me, other = sys.argv[1], sys.argv[2]
open(me, "w").close()
while not os.path.exists(other):
    time.sleep(0.01)
dtype = np.dtype(sys.argv[3])
y = np.arange(5, dtype=dtype)
mini.axpy(y, dtype.type(0.5), np.ones(5, dtype))
'''


def test_warmup_lock_keeps_concurrent_cache_writes_whole(tmp_path):
    """With the warm-up's lock, two processes saving float32 and float64
    specialisations of one kernel at once leave both in the index, each with
    its own machine code: a third process loads both and computes right."""
    package = tmp_path / "mini"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(KERNEL))
    cache = tmp_path / "cache"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), FASTBP_CACHE_LOCK=str(tmp_path / "lock"),
               PYTHONPATH=os.pathsep.join([str(SRC), str(tmp_path)]))
    env.pop("FASTBP_INSTALL_CACHE", None)
    a, b = tmp_path / "a", tmp_path / "b"
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(me), str(other), dtype], env=env)
              for me, other, dtype in ((a, b, "float32"), (b, a, "float64"))]
    assert [p.wait(timeout=300) for p in racers] == [0, 0]
    assert _probe(tmp_path, cache) == {"hits": 2, "misses": 0, "out": EXPECTED}


@pytest.mark.skipif(os.name != "posix", reason="the parallel warm-up needs POSIX file locks")
def test_build_warmup_in_parallel_covers_the_readmes_commands(tmp_path, capfd):
    """The build's warm-up, its two parts run at once into one folder, ships a
    cache from which the README's ``fastbp train`` and Quickstart (fit,
    predict, loss) compile nothing, with Numba's own cache empty."""
    package = tmp_path / "build" / "fastbp"
    shutil.copytree(SRC / "fastbp", package, ignore=shutil.ignore_patterns(
        "__pycache__", _jit.SHIPPED))
    backend = _backend()
    backend._cpus = lambda: 2  # the parallel path even on a one-CPU runner
    assert backend.precompile(str(package)) is True
    assert "shipping" in capfd.readouterr().err
    assert json.loads((package / _jit.SHIPPED / _jit.MANIFEST).read_text())["numba"] \
        == numba.__version__
    # The README's commands as a user runs them (not the warm-up's own code):
    # its first command, the Quickstart in Python, and the Quickstart's
    # command lines on a CSV of one's own (review HDR: that model's first
    # predict compiled its kernel).
    probe = textwrap.dedent('''
        import contextlib, io
        import numpy as np
        import fastbp
        from fastbp import _jit, cli
        def command(*args):
            with contextlib.redirect_stdout(io.StringIO()):
                assert cli.main(list(args)) == 0, args
        command("train", "--epochs", "2")
        X, y = fastbp.datasets.load_digits()
        X_train, X_test, y_train, y_test = fastbp.datasets.train_test_split(X / 16, y)
        net = fastbp.MLP([64, 32, 10], activation="tanh", output="softmax", dtype="float32",
                         seed=0)
        net.fit(X_train, y_train, epochs=2, batch_size=32, lr=0.1, verbose=0)
        (net.predict(X_test) == y_test).mean()
        net.loss(X_test, y_test)
        names = ",".join(f"pixel{j}" for j in range(64))
        np.savetxt("data.csv", np.column_stack([X[:300], y[:300]]), fmt="%d", delimiter=",",
                   header=names + ",label", comments="")
        np.savetxt("new.csv", X[300:320], fmt="%d", delimiter=",", header=names, comments="")
        command("train", "data.csv", "--target", "label", "--hidden", "64,32", "--activation",
                "relu", "--epochs", "3", "--out", "model.npz")
        command("predict", "model.npz", "new.csv")
        print(_jit.compilations())
    ''')
    env = {k: v for k, v in os.environ.items() if k != "FASTBP_INSTALL_CACHE"}
    env.update(NUMBA_CACHE_DIR=str(tmp_path / "empty"), PYTHONPATH=str(package.parent))
    run = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[-1] == "0"


@pytest.mark.skipif(os.name != "posix", reason="the cache lock needs POSIX file locks")
def test_the_cache_lock_taken_again_does_not_wait_on_itself(tmp_path):
    """FASTBP_CACHE_LOCK locks the cache at import; lock_cache called again
    changes nothing (a nested exclusive flock on a second descriptor would
    wait forever), and the kernels save and load under it as without."""
    package = tmp_path / "mini"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(KERNEL)
                                         + "\nfrom fastbp import _jit\n"
                                           "import os\n"
                                           "_jit.lock_cache(os.environ['FASTBP_CACHE_LOCK'])\n")
    lock, cache = tmp_path / "lock", tmp_path / "cache"
    assert _probe(tmp_path, cache, FASTBP_CACHE_LOCK=str(lock)) == \
        {"hits": 0, "misses": 2, "out": EXPECTED}
    assert lock.exists()
    assert _probe(tmp_path, cache, FASTBP_CACHE_LOCK=str(lock)) == \
        {"hits": 2, "misses": 0, "out": EXPECTED}


# Two functions of one module with one qualified name and one signature but
# different bodies (as fastbp's specialised twins, closures and Numba's own
# implementations are), each called by a cached kernel.
TWINS = '''
import fastbp  # the process's function ids
import numba
from fastbp._jit import jit


def twin(factor):
    namespace = {"__name__": __name__}
    exec("def twin(x):\\n"
         "    s = 0.0\\n"
         "    for i in range(x.shape[0]):\\n"
         "        s += x[i] * %d + i * i * 0.5\\n"
         "        if s > 1e300:\\n"
         "            s = s / 3.0\\n"
         "    return s\\n" % factor, namespace)
    return numba.njit(namespace["twin"])


one, hundred = twin(1), twin(100)


@jit
def first(x):
    return one(x) + one(x[1:])


@jit
def second(x):
    return hundred(x) + hundred(x[1:])
'''
TWIN_PROBE = '''
import json, sys
import numpy as np
import twins
x = np.ones(4)
print(json.dumps([getattr(twins, name)(x) for name in sys.argv[1:]]))
'''


def test_functions_of_one_name_compiled_in_other_processes_keep_their_own_code(tmp_path):
    """Numba names a function by module, qualified name, signature and an id
    that counts compilations in each process: a process that compiled
    `second` first gave its twin the symbol `first`'s twin had in the process
    that cached `first`, and running `first` after `second` then returned
    `second`'s sum (numba/numba#10486). fastbp draws the ids at random."""
    (tmp_path / "twins.py").write_text(TWINS)
    expected = {"first": 1 * 4 + 0.5 * (0 + 1 + 4 + 9) + 1 * 3 + 0.5 * (0 + 1 + 4),
                "second": 100 * 4 + 0.5 * (0 + 1 + 4 + 9) + 300 + 0.5 * (0 + 1 + 4)}
    env = {k: v for k, v in os.environ.items() if k != "FASTBP_INSTALL_CACHE"}
    env.update(NUMBA_CACHE_DIR=str(tmp_path / "cache"),
               PYTHONPATH=os.pathsep.join([str(SRC), str(tmp_path)]))
    for order in (["first"], ["second", "first"], ["first", "second"]):
        run = subprocess.run([sys.executable, "-c", TWIN_PROBE, *order], env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout) == [expected[name] for name in order], order


def test_cache_entries_of_another_format_are_compiled_again(tmp_path):
    """Entries written before the ids were random may share symbols: their
    key differs (_jit.CACHE_FORMAT), so they are not loaded."""
    package = tmp_path / "mini"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(KERNEL))
    cache = tmp_path / "cache"
    older = "import fastbp._jit\nfastbp._jit.CACHE_FORMAT = 'older'\n"
    (tmp_path / "sitecustomize.py").write_text(older)
    assert _probe(tmp_path, cache)["misses"] == 2
    assert _probe(tmp_path, cache)["hits"] == 2
    (tmp_path / "sitecustomize.py").unlink()
    assert _probe(tmp_path, cache) == {"hits": 0, "misses": 2, "out": EXPECTED}
    assert _probe(tmp_path, cache) == {"hits": 2, "misses": 0, "out": EXPECTED}


def test_a_change_to_any_fastbp_file_changes_every_kernels_cache_key(tmp_path):
    """A kernel holds code from other files (the BLAS call's IR, the leaves):
    Numba's key (the kernel's own bytecode, its own file's stamp) missed a
    change there, and loaded stale kernels. Every key carries the hash of
    all of fastbp's sources, so any change compiles afresh."""
    package = pathlib.Path(_jit.__file__).parent
    copy = tmp_path / "fastbp"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "_kernel_cache"))
    assert _jit.sources_hash(str(copy)) == _jit.sources_hash(str(package)) == _jit.SOURCES
    blas = copy / "_blas.py"
    blas.write_text(blas.read_text() + "\n# changed\n")
    assert _jit.sources_hash(str(copy)) != _jit.SOURCES
    (copy / "_blas.py").unlink()  # a file removed (or renamed) counts too
    assert _jit.sources_hash(str(copy)) not in (_jit.SOURCES, _jit.sources_hash(str(package)))
    # no sources to read (a frozen application): a key still, not an error at import
    assert _jit.sources_hash(str(tmp_path / "missing")) == "sources-unreadable"
    # ... and the hash is in the key every cached kernel is stored and found by.
    from fastbp import network
    cache = network.epoch_sgd._cache
    cache = getattr(cache, "primary", cache)  # (under the install-time cache's wrapper)
    key = cache._index_key(((),), network.epoch_sgd.targetctx.codegen())
    assert key[-2:] == (_jit.CACHE_FORMAT, _jit.SOURCES)


def test_the_sdist_carries_the_tests_helpers_data_and_license(tmp_path):
    """setuptools put tests/test_*.py in the sdist, but not conftest.py, the
    helpers (npref.py, ...) or tests/data: its tests could not be collected.
    The MIT license's text was nowhere."""
    import tarfile
    tree = tmp_path / "tree"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", ".asv", "_kernel_cache"))
    code = ("import sys; sys.path.insert(0, 'build_hooks'); import backend;"
            f" print(backend.build_sdist({str(tmp_path / 'dist')!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    with tarfile.open(tmp_path / "dist" / out.stdout.split()[-1]) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {"LICENSE", "tests/conftest.py", "tests/npref.py", "tests/mpi_worker.py",
            "tests/data/flowers.csv", "tests/test_kernel_cache.py"} <= names
    assert not [n for n in names if n.endswith((".nbi", ".nbc", ".pyc")) or "__pycache__" in n]
