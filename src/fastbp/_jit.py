"""The one decorator every fastbp kernel is compiled with, its caches, and the 2-D view.

``cache=True`` writes the machine code next to the source (or under
``NUMBA_CACHE_DIR`` when set, or in Numba's per-user folder when the package
folder is read-only), so a new process loads instead of compiling.
``nogil=True`` lets two models train in two threads at once.
``error_model="numpy"`` makes division by zero give inf/nan instead of
raising, which keeps the division out of a branch and lets LLVM vectorise the
loops. No fastmath: fastbp checks for non-finite values, which
``nnan``/``ninf`` would optimise away.

The install-time cache: building fastbp's wheel (``pip install .``) runs a
first small fit (:mod:`fastbp._warmup`) and ships the cache files it wrote in
``fastbp/_kernel_cache/``, with ``build.json`` naming the Python, Numba and
NumPy they were built with. At run time each kernel is looked up there
first, read-only, then in Numba's own cache, then compiled. Numba keys every
entry by the function's bytecode, the CPU (name and features) and its own
version, and fastbp adds the hash of all its source files
(:func:`sources_hash`: a kernel holds code from other files), so an entry
that does not fit this machine or these sources is simply not found
and the kernel loads or compiles as it would without it. ``FASTBP_INSTALL_CACHE=0``
turns it off, at build time and at run time.

Several processes compiling into one cache folder at once (the build's
parallel warm-up, the test suite's workers) set ``FASTBP_CACHE_LOCK`` to a
file: see :func:`lock_cache`.
"""
import itertools
import json
import os
import secrets
import sys
import threading

import numba
import numpy as np
from numba.core import event, types
from numba.core.caching import IndexDataCacheFile
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from . import _env

if numba.config.DISABLE_JIT:
    # Views, the BLAS calls and the vectorised exp are Numba intrinsics and
    # overloads, which exist only compiled: there is no pure-Python fastbp.
    raise ImportError("fastbp's kernels run compiled only (some are written as Numba intrinsics,"
                      " which do not run as Python): unset NUMBA_DISABLE_JIT to import fastbp")

SHIPPED = "_kernel_cache"  # the folder, beside the sources, of the install-time cache
MANIFEST = "build.json"
KERNELS = []  # every dispatcher made by `jit`, for `cache_report`
# Set when Numba found no folder to write a cache to (fastbp's own, the
# NUMBA_CACHE_DIR one and the per-user one all unwritable: a read-only
# container without a writable home): the kernels are then made uncached,
# compiled in memory in each process, where `import fastbp` failed with
# Numba's "cannot cache function ...: no locator available".
NO_CACHE_FOLDER = []
NOTICE = ("compiling fastbp's kernels, once per installation (later runs load them from the"
          " cache)...")
NOTICE_UNCACHED = ("compiling fastbp's kernels (no writable cache folder: each run compiles"
                   " them)...")
UNSAVED = []  # cache index files a kernel could not be written beside (a full disk): warned once
EPOCH_KERNELS = ("epoch_", "train_epoch")  # how the training kernels' names begin
_OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}
CACHE_LOCK = "FASTBP_CACHE_LOCK"  # a file: Numba's cache is read and written under its lock
_LINK_ONLY_KIND = "fastbp-link-only"  # how a link-only library is cached (_link_only_compiler)


def _link_only_compiler():
    """Numba's nopython pipeline whose code library is never made into machine
    code of its own: :class:`_LinkOnlyLibrary`. None where this Numba's
    internals differ (then such functions compile as any other)."""
    try:
        import llvmlite.binding as ll
        from numba.core.codegen import JITCodeLibrary
        from numba.core.compiler import CompilerBase, DefaultPassBuilder
        from numba.core.compiler_lock import require_global_compiler_lock
        from numba.core.compiler_machinery import LoweringPass, register_pass
        from numba.core.typed_passes import AnnotateTypes

        class _EnvironmentUnset:
            """The codegen, except that a function's environment is not set:
            that would make its module machine code. Functions of fastbp's
            that only kernels call never read it (no objects, no dynamic
            raises): a kernel loaded from the cache runs them with it unset."""

            def __init__(self, codegen):
                self._codegen = codegen

            def __getattr__(self, name):
                return getattr(self._codegen, name)

            def set_env(self, env_name, env):
                pass

        class _LinkOnlyLibrary(JITCodeLibrary):
            """The code of a function that only kernels call: linked into each
            calling kernel's module, which LLVM optimises (O3, vectorising,
            inlining) and turns into machine code as a whole. Numba would also
            optimise this module alone and emit its machine code, which
            nothing runs; finalizing here only links what it calls in."""

            @property
            def codegen(self):
                return _EnvironmentUnset(self._codegen)

            def finalize(self):
                require_global_compiler_lock()
                self._raise_if_finalized()
                seen = set()
                for library in self._linking_libraries:
                    if library not in seen:
                        seen.add(library)
                        self._reload_init.update(library._reload_init)
                        self._final_module.link_in(library._get_module_for_linking(),
                                                   preserve=True)
                self._final_module.verify()
                self._finalize_dynamic_globals()
                self._verify_declare_only_symbols()
                self._finalized = True

            def get_pointer_to_function(self, name):
                self._ensure_finalized()
                return 0  # no wrapper to point to: KERNEL_ONLY

            def serialize_using_object_code(self):
                # Cached as the bitcode a calling kernel links in, under a kind
                # of its own that loads back as this class (_unserialize).
                return (self.name, _LINK_ONLY_KIND, self._get_module_for_linking().as_bitcode())

            @classmethod
            def from_bitcode(cls, codegen, name, bitcode):
                """The library as a later process loads it from the cache: the
                module, ready to link, and still no machine code of its own."""
                library = cls(codegen, name)
                library._final_module = library._shared_module = ll.parse_bitcode(bitcode)
                library._finalized = True
                return library

        # Numba loads cached bitcode as a library of machine code: made from the
        # unoptimised module, under the same symbols as the copies linked into
        # later kernels, which then called it instead of their own optimised
        # copy wherever LLVM had not inlined it (ops.column_sums ran 6-15x
        # slower in a kernel compiled after it was loaded). Our kind loads as
        # _LinkOnlyLibrary, as if just compiled; any other kind as before.
        numba_unserialize = JITCodeLibrary._unserialize.__func__

        def _unserialize(cls, codegen, state):
            name, kind, data = state
            if kind == _LINK_ONLY_KIND:
                return _LinkOnlyLibrary.from_bitcode(codegen, name, data)
            return numba_unserialize(cls, codegen, state)

        JITCodeLibrary._unserialize = classmethod(_unserialize)

        @register_pass(mutates_CFG=False, analysis_only=False)
        class _LinkOnlyLowering(LoweringPass):
            _name = "fastbp_link_only_library"

            def __init__(self):
                LoweringPass.__init__(self)

            def run_pass(self, state):
                if state.library is None:
                    state.library = _LinkOnlyLibrary(state.targetctx.codegen(),
                                                     state.func_id.func_qualname)
                    state.library.enable_object_caching()
                return True

        class LinkOnlyCompiler(CompilerBase):
            def define_pipelines(self):
                pm = DefaultPassBuilder.define_nopython_pipeline(self.state)
                pm.add_pass_after(_LinkOnlyLowering, AnnotateTypes)
                pm.finalize()
                return [pm]

        return LinkOnlyCompiler
    except Exception:  # pragma: no cover - another Numba's internals
        return None


# ---------------------------------------------- symbols unique across processes
class _ProcessUniqueIds:
    """Numba's function ids, drawn at random instead of counted from 1.

    Numba names a compiled function after its module, its qualified name, an
    id and its argument types. The id is a per-process counter, so two
    processes give two different functions of one name (fastbp's specialised
    twins, closures, Numba's own implementations) the same symbol when they
    compile them in different orders. Once such code meets in one process
    (one kernel loaded from the cache, another compiled or loaded from
    another process's entry: the install-time cache is built by several),
    LLVM keeps one body for both symbols, and a kernel silently runs the other
    function's code (numba/numba#10486; ``tests/test_kernel_cache.py`` shows
    it). A random 64-bit id makes that as good as impossible, in forked
    children too (it comes from ``os.urandom``). Numba uses the id only to
    make names unique."""

    def __init__(self):
        self._issued = set()

    def __iter__(self):
        return self

    def __next__(self):
        while True:
            uid = secrets.randbits(64)
            if uid not in self._issued:
                self._issued.add(uid)
                return uid


def _ids_unique_across_processes():
    try:
        from numba.core.bytecode import FunctionIdentity
        if not isinstance(FunctionIdentity._unique_ids, _ProcessUniqueIds):
            FunctionIdentity._unique_ids = _ProcessUniqueIds()
    except (ImportError, AttributeError):  # pragma: no cover - another Numba's internals
        pass


_ids_unique_across_processes()

# Part of every cache entry's key: entries compiled before the ids were
# random (or by another format) are not loaded, since two of them may share
# a symbol (_ProcessUniqueIds); they are compiled once more instead.
CACHE_FORMAT = "fastbp-random-ids-1"


def sources_hash(folder=None):
    """SHA-256 of every ``.py`` file of fastbp (names and contents, in name
    order): part of every cache entry's key. Numba keys an entry by its own
    function's bytecode and invalidates it when its own file changes, but a
    kernel holds the code of what it calls and inlines from other files (the
    BLAS call's IR in ``_blas``, the layout, the leaves). Without this, a
    change to one of those files alone left stale kernels in the cache: they
    ran the old code, or called a symbol that no longer exists."""
    import hashlib
    folder = folder or os.path.dirname(os.path.abspath(__file__))
    digest = hashlib.sha256()
    try:
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                digest.update(name.encode())
                with open(os.path.join(folder, name), "rb") as fh:
                    digest.update(hashlib.sha256(fh.read()).digest())
    except OSError:  # no readable sources (a frozen application): Numba caches nothing there
        return "sources-unreadable"
    return digest.hexdigest()


SOURCES = sources_hash()


def _key_by_format(cache):
    index_key = cache._index_key
    cache._index_key = lambda sig, codegen: (*index_key(sig, codegen), CACHE_FORMAT, SOURCES)


def _tolerate_damage(cache):
    """A damaged file in Numba's cache of one fastbp kernel (an index or a
    data file cut short: a full disk, a killed process, a copy) is passed
    over with a warning that names it, and the kernel compiles; its next
    save writes the file anew. Numba's own raised pickle's UnpicklingError
    or EOFError from every fit, naming no file, until the file was deleted."""
    load, save, files = cache.load_overload, cache.save_overload, cache._cache_file
    found = []   # a damaged index met by a load: the save after it starts the index anew

    def damaged_index():
        try:
            files._load_index()
        except OSError:
            return False
        except Exception:
            return True
        return False

    def load_overload(sig, target_context):
        try:
            return load(sig, target_context)
        except Exception as exc:
            path = files._index_path
            if damaged_index():
                found.append(path)
            else:   # then the entry's data file
                name = files._load_index().get(cache._index_key(sig, target_context.codegen()))
                path = files._data_path(name) if name else cache.cache_path
            from ._validate import warn
            warn(f"fastbp's kernel cache file {path} is damaged ({type(exc).__name__}: {exc});"
                 " compiling the kernel instead, and writing the file anew", RuntimeWarning,
                 within=(os.path.dirname(numba.__file__),))
            return None

    def save_overload(sig, data):
        if found:   # (its entries lost: each compiles again, once)
            found.clear()
            try:
                os.remove(files._index_path)
            except OSError:
                pass
        try:
            save(sig, data)
        except OSError as exc:
            # A full disk, a quota, a folder made read-only since: the kernel
            # is compiled and runs from memory; the cache only saves later
            # runs' time (review GN: the fit failed with Numba's OSError).
            if not UNSAVED:
                from ._validate import warn
                warn(f"fastbp could not write its kernel cache in {os.path.dirname(files._index_path)}"
                     f" ({exc.strerror or exc}); the kernels run compiled in memory, and later"
                     " runs compile them again", RuntimeWarning,
                     within=(os.path.dirname(numba.__file__),))
            UNSAVED.append(files._index_path)

    cache.load_overload, cache.save_overload = load_overload, save_overload
    files._fastbp_data_first = True   # (see _save_data_first)


def _save_data_first(self, key, data):
    """``IndexDataCacheFile.save``, for fastbp's kernels: the data file is
    written before the index names it. Numba writes the index first, and
    where the kernel's own file changed (an upgrade, an edit) it names the
    data file of the lowest number, which still holds the old sources'
    code until the data is written: a process killed between the two (a
    kill -9, the out-of-memory killer, a compile-ahead helper stopped)
    left an index that named the old kernel, loaded silently by every later
    run (review HCJ: a leaky slope of 0.01 run under sources of 0.3). Data
    first, such a kill leaves an index that does not name the entry, and the
    kernel compiles. Other caches (a user's own ``cache=True``) as Numba's."""
    if not getattr(self, "_fastbp_data_first", False):
        return _numba_save(self, key, data)
    overloads = self._load_index()
    name = overloads.get(key)
    if name is None:
        existing = set(overloads.values())
        name = next(n for n in map(self._data_name, itertools.count(1)) if n not in existing)
        self._save_data(name, data)
        overloads[key] = name
        self._save_index(overloads)
    else:
        self._save_data(name, data)


_numba_save = IndexDataCacheFile.save
IndexDataCacheFile.save = _save_data_first   # (under lock_cache's lock, where it is applied)


# ------------------------------------ one compiled overload for every caller
def _overloads_shared_by_kernel_only_callers():
    """fastbp's overloads (the specialised leaves, the dense/sparse
    dispatch) compiled once for normal kernels and :data:`KERNEL_ONLY` code
    alike.

    Numba caches an overload's implementation under the calling function's
    compiler flags, so a caller without wrappers (``no_cpython_wrapper``,
    ``no_cfunc_wrapper``) compiled every leaf a second time: a weighted fit
    after a plain one compiled four again. Those two flags change only the
    caller's own wrappers; what a callee inherits from its caller is ``nrt``,
    ``fastmath``, ``error_model`` and ``forceinline``, which stay as they
    are. Numba's own and other libraries' overloads are left as they were."""
    try:
        from numba.core import targetconfig
        from numba.core.typing.templates import _OverloadFunctionTemplate
        numba_get_impl = _OverloadFunctionTemplate._get_impl
    except (ImportError, AttributeError):  # pragma: no cover - another Numba's internals
        return
    if getattr(numba_get_impl, "fastbp", False):
        return

    def _get_impl(self, args, kws):
        flags = targetconfig.ConfigStack.top_or_none()
        # Numba's own generated overloads may have __module__ None (the
        # shape-mismatch error of a 2-D slice assignment in a user's code).
        module = getattr(self._overload_func, "__module__", None)
        if (flags is not None and (flags.no_cpython_wrapper or flags.no_cfunc_wrapper)
                and isinstance(module, str) and module.startswith("fastbp.")):
            wrapped = flags.copy()
            wrapped.no_cpython_wrapper = wrapped.no_cfunc_wrapper = False
            with targetconfig.ConfigStack().enter(wrapped):
                return numba_get_impl(self, args, kws)
        return numba_get_impl(self, args, kws)

    _get_impl.fastbp = True
    _OverloadFunctionTemplate._get_impl = _get_impl


_overloads_shared_by_kernel_only_callers()


# The options of code that only other kernels call (the overloads' bodies,
# the specialised leaves, a few helpers). No CPython wrapper and no C
# wrapper: Numba builds both for every function it compiles, though a
# callee's code is linked into its caller and never entered through them
# (without, a cold first fit + predict compiled 3.27-3.65 s against
# 3.62-3.91 s, `fastbp train` 3.96-4.39 against 4.20-4.59 s;
# asv_bench/compile_profile.py both, three turns each, alternating). And,
# where this Numba allows, a code library that is only linked into the
# calling kernels (_link_only_compiler): each was otherwise also optimised
# and made machine code alone (a cold fit + predict: 3.97-4.97 against
# 4.70-4.97 CPU seconds, four turns; docs/guide/threads.md).
_LINK_ONLY = _link_only_compiler()
KERNEL_ONLY = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True,
               **({"pipeline_class": _LINK_ONLY} if _LINK_ONLY is not None else {})}


def jit(function=None, **options):
    """``numba.njit`` with fastbp's options; ``@jit`` or ``@jit(inline="always")``."""
    options = {**_OPTIONS, **options}

    def decorate(py_func):
        try:
            dispatcher = numba.njit(**options)(py_func)
        except RuntimeError as exc:
            if not options["cache"] or "no locator available" not in str(exc):
                raise
            NO_CACHE_FOLDER.append(py_func.__qualname__)
            dispatcher = numba.njit(**{**options, "cache": False})(py_func)
            installed = _install_cache_only(py_func)
            if installed is not None:   # compiled in memory only where it does not load
                dispatcher._cache = installed
            KERNELS.append(dispatcher)   # (for cache_report, which counts them)
            return dispatcher
        if options["cache"]:
            KERNELS.append(dispatcher)
            _key_by_format(dispatcher._cache)
            _tolerate_damage(dispatcher._cache)
            shipped = _shipped(os.path.dirname(os.path.abspath(py_func.__code__.co_filename)))
            if shipped is not None:
                try:
                    dispatcher._cache = _WithInstallCache(dispatcher._cache, shipped)
                except Exception:  # another Numba's internals: Numba's own cache only
                    pass
        return dispatcher

    return decorate if function is None else decorate(function)


def linked(kernel):
    """A link-only copy of the fastbp kernel ``kernel`` (:data:`KERNEL_ONLY`),
    for other kernels to call: its code is linked into each calling kernel
    and optimised there, once, where calling ``kernel`` itself first has it
    optimised and made machine code alone, which no kernel runs. Not cached
    apart (its cache file would be ``kernel``'s); the calling kernel's cache
    entry holds it. One copy per kernel. Not for small hot loops: optimised
    once in the caller's context they measured slower (docs/guide/threads.md)."""
    if kernel not in _linked:
        _linked[kernel] = jit(cache=False, **KERNEL_ONLY)(kernel.py_func)
    return _linked[kernel]


_linked = {}


# ------------------------------------------------------- the install-time cache
def runtime_versions():
    """What a cache file must have been built with to load here (CPU aside)."""
    return {"python": "%d.%d" % sys.version_info[:2], "numba": numba.__version__,
            "numpy": np.__version__}


_shipped_folders = {}
_shipped_why = {}   # source folder: why its install-time cache is unused ("" if used)


def _shipped(source_dir):
    """The install-time cache folder beside ``source_dir`` if it was built with
    this Python, Numba and NumPy; else None (then nothing changes)."""
    if source_dir not in _shipped_folders:
        folder, found, why = os.path.join(source_dir, SHIPPED), None, "switched off"
        if _env.switch("FASTBP_INSTALL_CACHE"):
            try:
                with open(os.path.join(folder, MANIFEST), encoding="utf-8") as fh:
                    built = json.load(fh)
                differ = [f"{k} {built.get(k)} (this is {v})"
                          for k, v in runtime_versions().items() if built.get(k) != v]
                found, why = (None, "built with " + ", ".join(differ)) if differ else (folder, "")
            except (OSError, ValueError, AttributeError) as exc:
                why = (f"its manifest {MANIFEST} is missing or unreadable"
                       f" ({type(exc).__name__})")
        _shipped_folders[source_dir], _shipped_why[source_dir] = found, why
    return _shipped_folders[source_dir]


class _WithInstallCache:
    """The install-time cache of one kernel, read-only, then Numba's own.

    The install-time entry comes first because it was built from exactly the
    installed sources, while Numba's may be left over from an earlier version
    whose kernels in *another* file differed (Numba checks only the kernel's
    own file). Any failure to read it (missing, stale, for another CPU,
    unreadable) falls through to Numba's cache, then to compiling. Saves go
    to Numba's cache only.
    """

    def __init__(self, cache, folder):
        from numba.core.caching import IndexDataCacheFile
        self.primary = cache
        self.folder = folder
        self.file = IndexDataCacheFile(folder, cache._impl.filename_base,
                                       cache._impl.locator.get_source_stamp())

    @property
    def cache_path(self):
        return self.primary.cache_path

    def load_overload(self, sig, target_context):
        try:
            target_context.refresh()
            data = self.file.load(self.primary._index_key(sig, target_context.codegen()))
            if data is not None:
                return self.primary._impl.rebuild(target_context, data)
        except Exception:  # a damaged or foreign file: as if it were not there
            pass
        return self.primary.load_overload(sig, target_context)

    def save_overload(self, sig, data):
        self.primary.save_overload(sig, data)

    def enable(self):
        self.primary.enable()

    def disable(self):
        self.primary.disable()

    def flush(self):
        self.primary.flush()


def _install_cache_only(py_func):
    """The install-time cache of one kernel, read-only and alone, where Numba
    found no writable folder for a cache of its own (a container whose
    package, NUMBA_CACHE_DIR and home are all read-only): the kernel loads
    from it, or compiles in memory; nothing is saved. None without a usable
    install-time cache, or where this Numba's internals differ. (Numba's
    locators each need a writable folder, so Numba made no cache at all
    here and the shipped kernels went unused: every run compiled them.)"""
    folder = _shipped(os.path.dirname(os.path.abspath(py_func.__code__.co_filename)))
    if folder is None:
        return None
    try:
        from numba.core.caching import (CompileResultCacheImpl, FunctionCache, _CacheLocator,
                                        _SourceFileBackedLocatorMixin)

        class Locator(_SourceFileBackedLocatorMixin, _CacheLocator):
            def __init__(self, py_func, py_file):
                self._py_file = py_file
                self._lineno = py_func.__code__.co_firstlineno

            def get_cache_path(self):
                return folder

            def ensure_cache_path(self):
                raise OSError(f"{folder} is read-only here")

            @classmethod
            def from_function(cls, py_func, py_file):
                return cls(py_func, py_file)

        class Impl(CompileResultCacheImpl):
            _locator_classes = [Locator]

        class InstallCacheOnly(FunctionCache):
            _impl_class = Impl

            def load_overload(self, sig, target_context):
                try:
                    return super().load_overload(sig, target_context)
                except Exception:  # a damaged or foreign file: as if it were not there
                    return None

            def save_overload(self, sig, data):
                pass

            def flush(self):   # (Dispatcher.recompile's: it wrote an empty index there)
                pass

        cache = InstallCacheOnly(py_func)
        cache.install_only = True
    except Exception:  # another Numba's internals, or NUMBA_CACHE_LOCATOR_CLASSES set
        return None
    _key_by_format(cache)
    return cache


# ---------------------------------------------------------- saying it compiles
class _Compilations(event.Listener):
    """Counts the compilations of fastbp's kernels (not loads from a cache:
    Numba fires ``numba:compile`` only after a cache miss), and prints
    :data:`NOTICE` at the first one while a verbose fit is running."""

    def __init__(self):
        self.count = 0
        self.armed = []  # one flag per verbose fit in progress
        self._local = threading.local()  # .ahead: this thread's fits in progress

    @property
    def ahead(self):
        """This thread's fits in progress, innermost last: each one's model
        spec for :mod:`fastbp._ahead`, or None (none asked, or started)."""
        if not hasattr(self._local, "ahead"):
            self._local.ahead = []
        return self._local.ahead

    def on_start(self, event):
        dispatcher = event.data.get("dispatcher")
        func = getattr(dispatcher, "py_func", None)
        module = getattr(func, "__module__", None)  # None for functions made by exec
        if not (isinstance(module, str) and module.startswith("fastbp.")):
            return
        self.count += 1
        if any(self.armed):  # once, even for a fit inside a fit's callback
            self.armed[:] = [False] * len(self.armed)
            _say(NOTICE_UNCACHED if NO_CACHE_FOLDER else NOTICE)
        if self.ahead and self.ahead[-1] is not None and func.__name__.startswith(EPOCH_KERNELS):
            # The fit's epoch kernel missed the cache: seconds of compiling
            # on this core, time for a helper to compile inference on another.
            from . import _ahead
            spec, self.ahead[-1] = self.ahead[-1], None
            _ahead.start(spec, dispatcher)

    def on_end(self, event):
        pass


def _say(message):
    """Print above a tqdm bar if one is showing, else as a plain line."""
    tqdm = sys.modules.get("tqdm")
    try:
        if tqdm is not None and getattr(tqdm.tqdm, "_instances", None):
            tqdm.tqdm.write(message, file=sys.stdout)
        else:
            print(message, flush=True)
    except (OSError, ValueError):  # a closed or broken stdout must not stop the compilation
        pass


_listener = _Compilations()
event.register("numba:compile", _listener)


def compilations():
    """How many fastbp kernels this process has compiled (cache loads not counted)."""
    return _listener.count


class compile_notice:
    """``with compile_notice(verbose):`` prints :data:`NOTICE` once, at the
    first fastbp kernel compiled inside the block, when ``verbose`` is true.
    With ``ahead`` (:func:`fastbp._ahead.spec` of the model being fitted), an
    epoch kernel compiled inside the block starts :mod:`fastbp._ahead`'s
    helper, once."""

    def __init__(self, verbose, ahead=None):
        self.verbose = bool(verbose)
        self.spec = ahead

    def __enter__(self):
        if self.verbose:
            _listener.armed.append(True)
        _listener.ahead.append(self.spec)
        return self

    def __exit__(self, *exc):
        if self.verbose:
            _listener.armed.pop()
        _listener.ahead.pop()
        return False


# ------------------------------------------------------------ fastbp info
def _ahead_enabled():
    from . import _ahead
    return _ahead.enabled()


def cache_report():
    """Where fastbp's kernels are cached and how much of it this process would load.

    A dict: ``path`` (Numba's cache folder for fastbp's kernels) and ``where``
    (why that one); ``install_path`` (the install-time cache, None without
    one) and ``install_fits`` (whether it was built with this Python, Numba
    and NumPy; None when ``FASTBP_INSTALL_CACHE=0`` turns it off) and
    ``install_why`` (why it is unused: the versions that differ, or its
    manifest missing); ``path``
    is None, and ``where`` says why, when Numba found no writable folder
    (the kernels then load from the install-time cache, read-only, or
    compile in memory in each process); ``kernels`` (fastbp's kernels), ``cached`` (those with compiled
    code for this CPU and source in either cache), ``in_path`` and
    ``in_install`` (the same, per cache); ``compile_ahead`` (whether a cold
    fit here starts :mod:`fastbp._ahead`'s helper).
    """
    from numba.core import config
    # fastbp.sklearn's kernels count too, whether this process imported it or
    # not (`fastbp info` said 11 of 156 where the cache held 24 of 187).
    from . import _sklearn_kernels  # noqa: F401
    kernels = [k for k in KERNELS if hasattr(k, "_cache")]
    report = {"kernels": len(kernels), "path": None, "where": None, "install_path": None,
              "install_fits": False, "install_why": None, "cached": 0, "in_path": 0, "in_install": 0,
              "compile_ahead": _ahead_enabled()}
    if NO_CACHE_FOLDER:
        report["compile_ahead"] = False
        report["where"] = _no_folder(0)
    if not kernels:
        return report
    package = os.path.dirname(os.path.abspath(kernels[0].py_func.__code__.co_filename))
    primary = [getattr(k._cache, "primary", k._cache) for k in kernels]
    chosen = os.path.abspath(config.CACHE_DIR) if config.CACHE_DIR else None
    if NO_CACHE_FOLDER:   # the kernels hold the install-time cache alone (_install_cache_only)
        pass
    elif chosen and (os.path.abspath(primary[0].cache_path) + os.sep).startswith(chosen + os.sep):
        report["path"] = primary[0].cache_path
        report["where"] = "NUMBA_CACHE_DIR"
    else:
        report["path"] = path = primary[0].cache_path
        if os.path.abspath(path) == os.path.join(package, "__pycache__"):
            report["where"] = "beside fastbp's sources"
        else:
            report["where"] = "Numba's per-user folder: fastbp's own folder is not writable"
        if chosen:  # Numba could not write there and went on down its list
            report["where"] += f"; NUMBA_CACHE_DIR={config.CACHE_DIR} is not writable"
    if os.path.isdir(os.path.join(package, SHIPPED)):
        report["install_path"] = os.path.join(package, SHIPPED)
        report["install_fits"] = _shipped(package) is not None
        report["install_why"] = _shipped_why[package]
        if not _env.switch("FASTBP_INSTALL_CACHE"):
            report["install_fits"] = None   # switched off, not built for another runtime
    codegen = kernels[0].targetctx.codegen()
    for kernel, cache in zip(kernels, primary):
        if getattr(cache, "install_only", False):
            here, shipped = False, _fits(cache, cache._cache_file, codegen)
        elif not hasattr(cache, "_cache_file"):   # no cache at all (no writable folder)
            here = shipped = False
        else:
            here = _fits(cache, cache._cache_file, codegen)
            outer = getattr(kernel._cache, "inner", kernel._cache)  # under _ahead's wrapper
            shipped = isinstance(outer, _WithInstallCache) and _fits(cache, outer.file, codegen)
        report["in_path"] += here
        report["in_install"] += shipped
        report["cached"] += here or shipped
    if NO_CACHE_FOLDER:
        report["where"] = _no_folder(report["in_install"])
    return report


def _no_folder(from_install):
    """cache_report's ``where`` when Numba found no writable folder."""
    return ("none: Numba found no writable folder (fastbp's own, NUMBA_CACHE_DIR, the per-user"
            " one), so the kernels" + (" not in the install-time cache" if from_install else "")
            + " compile in memory in each process; set NUMBA_CACHE_DIR to a writable folder")


def _fits(cache, index_file, codegen):
    """Whether one kernel's index holds an entry this process would load,
    its data file there and whole: a pickle ends with its STOP opcode, which
    a file cut short (by a full disk, a killed process) lacks (an index
    alone counted as warm, review HGF: Numba then loaded nothing and
    compiled)."""
    try:
        keys = index_file._load_index()  # {} when stale (another source, Numba) or absent
        for key, name in keys.items():
            if key == cache._index_key(key[0], codegen):
                with open(index_file._data_path(name), "rb") as f:
                    f.seek(-1, os.SEEK_END)   # (an empty file: OSError)
                    return f.read(1) == b"."   # (pickle.STOP)
        return False
    except Exception:  # an unreadable index or data file loads nothing either
        return False


# ------------------------------------------------------------ the 2-D view
@intrinsic
def matrix(typingctx, flat, start, rows, cols):
    """``flat[start:start + rows * cols]`` as a C-contiguous ``(rows, cols)``
    view of the 1-D C-contiguous array ``flat``, sharing its memory.

    What ``flat[a:b].reshape(rows, cols)`` gives, without reshape's checks:
    the caller (the layout) guarantees the range fits. Reshape's error path
    formats the shapes into its message, and compiling that formatting cost
    more than a second of every cold start; this is a few instructions.
    """
    if not (isinstance(flat, types.Array) and flat.ndim == 1 and flat.layout == "C"
            and all(isinstance(t, types.Integer) for t in (start, rows, cols))):
        return None
    result = types.Array(flat.dtype, 2, "C", readonly=not flat.mutable)

    def codegen(context, builder, signature, args):
        flat_type = signature.args[0]
        src = make_array(flat_type)(context, builder, args[0])
        first, n_rows, n_cols = (context.cast(builder, v, t, types.intp)
                                 for v, t in zip(args[1:], signature.args[1:]))
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(
            context.get_data_type(flat_type.dtype)))
        out = make_array(signature.return_type)(context, builder)
        populate_array(out, data=builder.gep(src.data, [first]), shape=[n_rows, n_cols],
                       strides=[builder.mul(n_cols, itemsize), itemsize], itemsize=itemsize,
                       meminfo=src.meminfo, parent=src.parent)
        return impl_ret_borrowed(context, builder, signature.return_type, out._getvalue())

    return result(flat, start, rows, cols), codegen


# ------------------------------------------------- several processes, one cache
_cache_lock = []  # the lock file, once lock_cache has run


def lock_cache(path):
    """From now on, Numba's cache in this process takes a ``flock`` on the
    file ``path`` (created if missing): exclusive to write, shared to read.

    Numba's cache is not made for several writers: each kernel's index is
    read, extended and written back, so two processes adding different
    specialisations of one kernel at once can lose one, or point an index
    at the other's machine code. Under the lock a write (index read again,
    extended, written, then the data file) is one step, and a read never
    sees an index entry whose data file is not written yet (it would read
    that file's old contents, left by other sources). Applied at import when
    ``FASTBP_CACHE_LOCK`` names the file; POSIX only (elsewhere: nothing).
    Calling it again changes nothing.
    """
    try:
        import fcntl

        from numba.core.caching import IndexDataCacheFile
    except ImportError:
        return
    if _cache_lock:
        return
    # Absolute once: relative, it followed the working folder, and a process
    # that changed folder locked another file than its peers.
    path = os.path.abspath(path)
    unlocked = []

    def holding(method, mode):
        def locked(self, *args):
            # Every cache of the process goes through here, a user's own
            # cache=True functions included: a lock file whose folder was
            # removed is made again, and one that cannot be made leaves the
            # cache unlocked, as Numba's own, rather than failing the call
            # (said once: the writers it was set for are not kept apart).
            try:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                fh = open(path, "a")
            except OSError as exc:
                if not unlocked:
                    unlocked.append(exc)
                    import warnings
                    warnings.warn(f"the cache lock {path} ({CACHE_LOCK}) cannot be opened"
                                  f" ({exc.strerror or exc}): Numba's cache is read and written"
                                  " without it", RuntimeWarning, stacklevel=2)
                return method(self, *args)
            with fh:
                fcntl.flock(fh, mode)
                try:
                    return method(self, *args)
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
        return locked

    IndexDataCacheFile.save = holding(IndexDataCacheFile.save, fcntl.LOCK_EX)
    IndexDataCacheFile.load = holding(IndexDataCacheFile.load, fcntl.LOCK_SH)
    _cache_lock.append(path)


if os.environ.get(CACHE_LOCK):
    lock_cache(os.environ[CACHE_LOCK])
