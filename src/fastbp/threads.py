"""fastbp's threads, set on purpose.

fastbp's matrix products run on NumPy's own BLAS where NumPy bundles an
OpenBLAS (see :mod:`fastbp._blas`), so fastbp and NumPy share one thread
pool; elsewhere on SciPy's, the BLAS behind Numba's ``np.dot``. Two busy pools
on the same cores slow each other down, so there is one where possible, and
fastbp sets its size only when asked (through threadpoolctl), never to more
threads than there are CPUs. Since the pool is NumPy's, the setting applies
to NumPy's matrix products too.

    fastbp.set_num_threads(1)             # from now on
    with fastbp.set_num_threads(2):       # for a block, then back
        net.fit(X, y)

Threads only where a product pays for them. A product handed to a pool of
two threads finishes when the slower thread does, and OpenBLAS's threads
wait for each other by spinning: when another process holds a core, the
caller spins until the scheduler gives the other thread its turn
(milliseconds), which turned a 0.8 ms epoch of the digits into 30-290 ms on
a two-core machine with a busy process per core. So every product of fewer
than :func:`serial_below` multiply-adds (m n k) runs on the calling thread:
the kernel sets the pool to one thread for it and back after (two calls that
store one integer in OpenBLAS; see :func:`fastbp.ops.gemm`), and larger
products use the pool as it is, so ``set_num_threads`` (or threadpoolctl's
limits) stay an upper bound. While a fastbp kernel runs such a product, a
NumPy product in another thread of the process may also run on one thread
(and a size read or set from another thread meanwhile waits for the product:
:func:`fastbp._blas.pool_threads`, :func:`fastbp._blas.settle`);
outside fastbp's kernels the pool is as the user left it.

No product pays for a thread that finds no free core: on the busy machine
above, two threads lost to one on every product measured, the largest
(256 x 1024 x 1024) included. So each fit looks, as it starts (Linux only),
at how many threads of other processes are running; when they leave fewer
free cores than the pool has threads, every product of that fit runs on the
calling thread (and so do later kernel calls, until the next fit looks
again), and it looks again between epochs (:func:`look_again`), so that
a passing thread at its start does not hold a long fit on one thread, nor
a lasting load arriving later leave it on two. /proc/loadavg counts the
whole machine: in a container that sees a busy host, fits run on one
thread. Both rules need NumPy's OpenBLAS, whose thread count the kernels
set from within: on SciPy's BLAS every product runs on SciPy's pool as it
is.

Inference on many rows (``MLP.forward``, ``predict``, ``predict_proba``)
splits its rows instead of its products: chunks of rows go to up to
:func:`inference_threads` threads (the calling one and a small pool), each
with its own workspace, and while they run the BLAS pool is set to one
thread (:func:`blas_on_one_thread`), so no product is split again on top.

Training through :mod:`fastbp.sklearn` on a dense X with batches of at least
64 rows splits each batch's rows in two pieces, and runs the pieces on two
threads (the calling one and a helper thread) where a core is free
(:func:`training`): each piece's forward and backward pass, then a barrier,
then each thread sums the two gradients over half of the parameters and
takes the optimizer step there. Batches of fewer than 128 rows on a
network of one hidden layer (of at least 32 units) split its units instead:
each thread runs the whole batch through half of them, and after one
barrier a batch each finishes the loss and steps its own half of the
parameters (:func:`fastbp._sklearn_kernels.epoch_sklearn_t_columns`).
Either way the sums are the same on one thread as on two, so the fit's
result does not depend on the threads it ran on, and a fit that found no
free core as it started takes the second thread for a later epoch once one
is (:class:`TrainingThreads`).
"""
import contextlib
import os
import signal
import sys
import threading
import weakref
from time import perf_counter as _clock

import threadpoolctl

from . import _blas
from ._validate import check_int

_requested = None  # None: the library's default (see default_num_threads)

# Products (m n k multiply-adds) below this run on the calling thread.
# Measured on a quiet machine (this 2-core AVX-512 host, both OpenBLAS
# variables unset, float32 np.matmul with threadpoolctl limits of 1 and 2):
# below about 2^20 two threads gain nothing (OpenBLAS's SkylakeX kernel
# keeps up to 1e6 on one thread itself), while from 256 x 64 x 64 up they
# run 1.4-1.95x faster (2048 x 64 x 100: 133 against 68 us). On a busy
# machine no product pays for a second thread: that case is the busy check
# below, not this threshold. (2^25, measured on a loaded machine, made
# 90k-row inference a third slower on a quiet one.)
SERIAL_BELOW = 1 << 20


def default_num_threads():
    """All CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _blas_controller():
    """threadpoolctl's handles on the BLAS that fastbp's kernels call."""
    controller = threadpoolctl.ThreadpoolController()
    blas = [lib for lib in controller.lib_controllers if lib.user_api == "blas"]
    if _blas.LIBRARY != "scipy":
        return [lib for lib in blas if lib.filepath == _blas.LIBRARY]
    import scipy
    import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's BLAS)
    root = os.path.realpath(os.path.dirname(scipy.__file__))   # (resolved: see _blas._numpy_cblas)
    blas = [lib for lib in threadpoolctl.ThreadpoolController().lib_controllers
            if lib.user_api == "blas"]
    ours = [lib for lib in blas if os.path.realpath(lib.filepath).startswith(
        (root + os.sep, root + ".libs" + os.sep))]
    return ours or blas  # a shared system BLAS: then it is everyone's


def get_num_threads():
    """Threads fastbp's kernels use for matrix products."""
    if _requested is not None:
        return _requested
    if _one_thread_users:  # the pool is at one thread for an inference: its size after
        return _one_thread_restore
    if _blas.LIBRARY != "scipy":   # (not the one thread a product holds it at for a moment)
        return _blas.pool_threads()
    return max([lib.num_threads for lib in _blas_controller()] or [default_num_threads()])


ALWAYS = 2 ** 63 - 1  # a threshold above every product: all on one thread
_serial_below = SERIAL_BELOW  # as set; the kernels read _blas.SERIAL_BELOW
_blas.SERIAL_BELOW.value = SERIAL_BELOW


def serial_below():
    """Products of fewer multiply-adds (m n k) than this run on one thread.

    The value the kernels read now: :data:`SERIAL_BELOW` or the value given
    to :func:`set_serial_below`, or :data:`ALWAYS` from a fit that started
    with no free core for a second thread until the next fit looks again
    (predictions between them run every product on one thread too).
    """
    return _blas.SERIAL_BELOW.value


def set_serial_below(mnk):
    """Run products of fewer than ``mnk`` multiply-adds on the calling thread.

    Process-wide, read by the kernels at every product; returns the previous
    setting. 0 leaves every product to the BLAS's own choice, busy machine
    or not (fastbp's behaviour before it chose).
    """
    global _serial_below
    mnk = min(check_int(mnk, "mnk", 0), ALWAYS)
    previous, _serial_below = _serial_below, mnk
    _blas.SERIAL_BELOW.value = mnk
    return previous


def others_running():
    """Threads of other processes running or ready to run now (Linux), or 0.

    /proc/loadavg's fourth field counts every runnable thread on the
    machine; this process's own (this one, BLAS threads still spinning after
    a product) are subtracted.
    """
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return 0
    ours = 0
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        tids = []
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                ours += f.read().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):  # a thread that ended since the listing
            pass
    return max(running - max(ours, 1), 0)


def _busy():
    """Whether other processes' running threads leave fewer free cores than
    the pool has threads (never where products keep the BLAS's own choice).
    The pool's threads as set, also while an inference or a split fit holds
    it at one thread (:func:`blas_on_one_thread`)."""
    threads = _pool_as_set()
    return bool(_serial_below and threads > 1
                and others_running() + threads > default_num_threads())


def _pool_as_set():
    """The BLAS pool's size as set: the one to come back while an inference
    or a split fit holds it at one thread (:func:`blas_on_one_thread`)."""
    return _one_thread_restore if _one_thread_users else _blas.pool_threads()


def _choose_serial_below(busy=None):
    """All products on one thread when other processes hold the cores
    (``busy``, or as :func:`_busy` finds now); returns whether they do."""
    busy = _busy() if busy is None else busy
    _blas.SERIAL_BELOW.value = ALWAYS if busy else _serial_below
    _look["busy"] = busy
    return busy


# look_again's schedule: when it next looks (_clock's seconds), the wait
# before that look, whether the products run on one thread for a busy
# machine, and whether the look before found it otherwise (a change seen
# once, to be seen again).
_look = {"next": 0.0, "wait": 0.0, "busy": False, "seen": False}
LOOK_SOON = 0.002    # the wait after a change seen once, and the first while busy
LOOK_FREE = 0.1      # the wait while the cores are free
LOOK_LONGEST = 0.5   # the longest wait while they are taken (doubling from LOOK_SOON)


def _schedule(busy, now, seen=False):
    if seen:
        wait = LOOK_SOON
    elif busy:
        wait = min(2 * _look["wait"], LOOK_LONGEST) if _look["wait"] else LOOK_SOON
    else:
        wait = LOOK_FREE
    _look.update(next=now + wait, wait=0.0 if seen else wait, seen=seen)


def look_again():
    """Between a fit's epochs: look at the machine again, when due.

    A fit chooses at its start (:func:`ensure`, its first look) whether its
    products may use the pool's threads. A thread of another process that
    ran for a few milliseconds at that moment (a kernel worker: on this
    machine at the start of 2 of 20 fits after one-second pauses) held a
    whole fit of 784-1024-1024-10 on one thread, 1.8x slower; a load that
    came later left a fit's products on two threads that each waited for a
    core. So a fit looks again before later epochs (and L-BFGS iterations):
    every 0.1 s while the cores are free, 2 ms after a look that found them
    taken and half as often after each such look (up to every 0.5 s). A
    change takes two looks in a row, the second at the first epoch that
    starts 2 ms or more after the first, so that a passing thread does not
    move a fit either way: a fit that met one as it started runs its first
    two epochs on one thread. A call before a look is due costs a clock
    read.
    """
    now = _clock()
    if now < _look["next"]:
        return
    busy = _busy()
    if busy == _look["busy"]:
        _schedule(busy, now)
    elif _look["seen"]:
        _choose_serial_below(busy)
        _schedule(busy, now)
    else:
        _schedule(_look["busy"], now, seen=True)


def _apply(n, libs=None):
    global _applied, _one_thread_restore
    libs = _blas_controller() if libs is None else libs   # (threadpoolctl's look-up: no lock)
    with _scope_lock, _one_thread_lock:   # (locks in order: _before_fork; review HCL, ensure's)
        if _one_thread_users:  # an inference holds the pool at one thread: n after it
            _one_thread_restore = n
        else:
            _resize(libs, n)
    _applied = n


def _resize(libs, n):
    """Set the BLAS pool's size, from whichever thread calls.

    fastbp sizes the pool for the whole process, under its own lock. Since
    version 3.8 threadpoolctl lets only one Python thread (the first to set a
    pthreads OpenBLAS, while it lives) resize the pool and silently ignores
    the others, so a set_num_threads, or an inference's hold at one thread,
    from any other thread did nothing. The library's own setter, which
    threadpoolctl calls for that one thread, is called here for any.
    """
    for lib in libs:
        setter = getattr(lib, "_real_set_num_threads", lib.set_num_threads)
        setter(n)
        if lib.filepath == _blas.LIBRARY:   # the kernels' pool: see fastbp._blas.settle
            _blas.settle(n, setter)


_libs = None


def _pool_libs():
    """:func:`_blas_controller`, looked up once (threadpoolctl's look-up
    takes milliseconds; the library serving the kernels never changes)."""
    global _libs
    if _libs is None:
        _libs = _blas_controller()
    return _libs


class SigintHeld:
    """Ctrl-C held back for a block: SIGINT only sets ``pending``. Only in
    the main thread, where Python allows signal handlers, and only where
    SIGINT has Python's own handler (raising KeyboardInterrupt): a handler
    of the program's own, or SIGINT ignored (a background job), stays as
    it is. Training reads ``pending`` between epochs (``fastbp.train``)."""

    def __enter__(self):
        self.previous, self.pending = None, False
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            try:
                self.previous = signal.signal(signal.SIGINT, self._handler)
            except ValueError:  # (not the main interpreter)
                pass
        return self

    def _handler(self, signum, frame):
        self.pending = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


class _SigintDeferred(SigintHeld):
    """Ctrl-C held back for a block of bookkeeping, then raised at its end.

    A KeyboardInterrupt lands between any two bytecodes of the main thread:
    one inside a hold's bookkeeping (its count, threadpoolctl's setter) left
    the BLAS pool at one thread for the rest of the process, every later
    hold then taking 1 as the size to restore."""

    def __exit__(self, *exc):
        super().__exit__(*exc)
        if self.previous is not None and self.pending and exc[0] is None:
            raise KeyboardInterrupt
        return False


# (re-entrant, as _scope_lock: a signal handler's set_num_threads during
# another's resize, in the same thread, hung)
_one_thread_lock = threading.RLock()
_one_thread_users = 0    # calls inside blas_on_one_thread now
_one_thread_by = {}      # thread ident -> its calls among them (for a fork: _after_fork)
_one_thread_restore = 1  # the pool's size before the first of them


@contextlib.contextmanager
def blas_on_one_thread():
    """Hold the BLAS pool at one thread for a block (then set it back).

    For inference that splits rows across threads: each thread's products
    then run on that thread, none is split again over a pool whose cores
    the other row threads hold. Process-wide, like the pool: NumPy's
    products in other threads run on one thread meanwhile. Nested and
    concurrent uses are counted; the last to leave restores the size the
    first found (or the one :func:`set_num_threads` asked for meanwhile).
    """
    global _one_thread_users, _one_thread_restore
    entered = False
    try:  # (a Ctrl-C raised as the entry ends still runs the exit)
        with _SigintDeferred(), _scope_lock, _one_thread_lock:   # (locks in order: _before_fork)
            if not _one_thread_users:
                libs = _pool_libs()
                _one_thread_restore = (_blas.pool_threads() if _blas.LIBRARY != "scipy" else
                                       max([lib.num_threads for lib in libs] or [1]))
                if _one_thread_restore > 1:
                    _resize(libs, 1)
                _blas.HELD.value = 1   # (the kernels' products then leave the pool alone)
            _one_thread_users += 1
            _count(_one_thread_by, 1)
            entered = True
        yield
    finally:
        if entered:
            with _SigintDeferred(), _scope_lock, _one_thread_lock:
                _one_thread_users -= 1
                _count(_one_thread_by, -1)
                if not _one_thread_users:
                    _blas.HELD.value = 0
                    if _one_thread_restore > 1:
                        _resize(_pool_libs(), _one_thread_restore)


def _count(by_thread, step):
    me = threading.get_ident()
    n = by_thread.get(me, 0) + step
    if n:
        by_thread[me] = n
    else:
        by_thread.pop(me, None)


_other_lock = threading.Lock()
_other_users = 0     # blocks inside other_blas_on_one_thread now
_other_by = {}       # thread ident -> its blocks among them
_other_restore = []  # (pool, its size before the first of them)


@contextlib.contextmanager
def other_blas_on_one_thread():
    """Hold every BLAS pool in the process but the kernels' own at one
    thread for a block (then set each back).

    For ``scipy.optimize.minimize(method="L-BFGS-B")``, whose updates run
    on SciPy's own OpenBLAS (a second pool beside NumPy's, which serves the
    kernels): its vector operations of one parameter vector never pay for a
    thread, and its pool's threads and NumPy's contended for the cores. A
    fit of the digits with scikit-learn's L-BFGS (64-100-10, 53
    iterations) took 680 ms with both pools at two threads and 117 ms with
    SciPy's at one (scikit-learn's own 724 and 181 ms). Where the kernels
    run on SciPy's BLAS (``fastbp._blas.LIBRARY == "scipy"``) its pool is
    theirs, and is left alone. Nested and concurrent uses (two fits in two
    Python threads) are counted: the last to leave restores the sizes the
    first found.
    """
    global _other_users, _other_restore
    entered = False
    try:  # Ctrl-C in the bookkeeping: see _SigintDeferred
        with _SigintDeferred(), _scope_lock, _other_lock:
            if not _other_users:
                ours = {lib.filepath for lib in _pool_libs()}
                _other_restore = [(lib, lib.num_threads)
                                  for lib in threadpoolctl.ThreadpoolController().lib_controllers
                                  if lib.user_api == "blas" and lib.filepath not in ours
                                  and lib.num_threads > 1]
                for lib, _ in _other_restore:
                    _resize([lib], 1)
            _other_users += 1
            _count(_other_by, 1)
            entered = True
        yield
    finally:
        if entered:
            with _SigintDeferred(), _scope_lock, _other_lock:
                _other_users -= 1
                _count(_other_by, -1)
                if not _other_users:
                    for lib, n in _other_restore:
                        _resize([lib], n)
                    _other_restore = []


_training_lock = threading.Lock()  # held by the one fit whose batches run split between threads
_training_by = None   # the ident of the thread whose fit holds it (for a fork: _after_fork)
_size_at_fork = None   # the pool's size as set, read as the process forks (_before_fork)


def _before_fork():
    """The pool's size as set, for the child (:func:`_after_fork`): a
    one-thread product another thread has in flight holds the pool at one
    thread and would put back the size it found, but that thread does not
    live in the child (its pool was left at one thread for good)."""
    global _size_at_fork
    try:
        _size_at_fork = _blas.pool_threads()   # (waits for products in flight to end)
    except Exception:   # (never stop a fork)
        _size_at_fork = None
    _register_with_multiprocessing()
    # No pool is resized while the process forks: a fork during another
    # thread's resize (an L-BFGS fit's start or end, a large predict's) left
    # OpenBLAS's own lock taken in the child, whose first resize then hung
    # for good. (Both are held only for bookkeeping, never across a fork of
    # their holder's; released in the parent after, made anew in the child.)
    # Every holder takes _scope_lock first, then one of the others (review
    # HCC: a child forked while another thread ended a block kept its 1; HCE:
    # a signal handler's set_num_threads inside a hold's bookkeeping, taking
    # them in the opposite order to another thread's set_num_threads, hung).
    _scope_lock.acquire()
    _one_thread_lock.acquire()
    _other_lock.acquire()


def _after_fork_in_parent():
    _other_lock.release()
    _one_thread_lock.release()
    _scope_lock.release()


def _after_fork():
    """In a forked child only the forking thread lives: the holds of the
    others (an inference, an L-BFGS fit, running in another thread at the
    fork) will never end there, so they are let go now, each pool set back
    to its size as set, and the locks made anew (one may have been held; a
    forked child has no split fit running)."""
    global _one_thread_lock, _one_thread_users, _one_thread_by, _other_lock, _other_users, \
        _other_by, _other_restore, _training_lock, _training_by, _scope_lock
    _training_lock = threading.Lock()
    if _training_by == threading.get_ident():
        # (this thread's split fit goes on in the child, os.fork() from its
        # callback: its release at the fit's end found the new lock free
        # and raised; its helpers are made anew, fastbp._columns.Team)
        _training_lock.acquire()
    else:
        _training_by = None
    _scope_lock = threading.RLock()
    # (a product another thread had in flight will never end here, nor put
    # back the size it found: the size as set before the fork goes back)
    in_flight = _blas.ENDED.value != _blas.BEGUN.value
    _blas.ENDED.value = _blas.BEGUN.value
    me = threading.get_ident()
    _one_thread_lock, _other_lock = threading.RLock(), threading.Lock()
    mine = _one_thread_by.get(me, 0)
    if _one_thread_users and not mine and _one_thread_restore > 1:
        _resize(_pool_libs(), _one_thread_restore)
    elif in_flight and not mine and _size_at_fork and _size_at_fork > 1 \
            and _blas.pool_threads() != _size_at_fork:
        _resize(_pool_libs(), _size_at_fork)
    _one_thread_users, _one_thread_by = mine, ({me: mine} if mine else {})
    _blas.HELD.value = 1 if mine else 0
    mine = _other_by.get(me, 0)
    if _other_users and not mine:
        for lib, n in _other_restore:
            _resize([lib], n)
        _other_restore = []
    _other_users, _other_by = mine, ({me: mine} if mine else {})
    _end_other_scopes(me)


class _ForkHook:
    """The object multiprocessing's after-fork registry keeps (by weak reference)."""


_FORK_HOOK = _ForkHook()
_registered = False


def _register_with_multiprocessing():
    """Have multiprocessing call :func:`_in_worker` in the workers it forks
    (registered at a fork's start, once: a process that forks a worker has
    imported multiprocessing by then)."""
    global _registered
    util = sys.modules.get("multiprocessing.util")
    if util is not None and not _registered:
        try:
            util.register_after_fork(_FORK_HOOK, _in_worker)
            _registered = True
        except Exception:   # (never stop a fork)
            pass


def _in_worker(_hook):
    """In a worker multiprocessing forked (its "fork" start method), the
    forking thread never returns into the code it forked from: the worker
    runs its target and exits. A hold that thread had (a split fit's, an
    L-BFGS fit's, whose callback started a worker) would never end there,
    keeping NumPy's or SciPy's pool at one thread for good, beyond
    set_num_threads (review HDE): let go of it, each pool to its size as
    set. (A plain ``os.fork()`` child goes on with the fit, holds kept:
    :func:`_after_fork`.)"""
    global _one_thread_users, _one_thread_by, _other_users, _other_by, _other_restore, \
        _training_by
    if _training_by is not None:   # (the worker's own fits may split)
        _training_by = None
        _training_lock.release()
    with _SigintDeferred(), _scope_lock, _one_thread_lock:
        if _one_thread_users:
            _one_thread_users, _one_thread_by = 0, {}
            _blas.HELD.value = 0
            if _one_thread_restore > 1:
                _resize(_pool_libs(), _one_thread_restore)
    with _SigintDeferred(), _scope_lock, _other_lock:
        if _other_users:
            _other_users, _other_by = 0, {}
            for lib, n in _other_restore:
                _resize([lib], n)
            _other_restore = []


def _end_other_scopes(me):
    """The set_num_threads blocks other threads had open at a fork never end
    in the child: each ends now, as if it had left first (a plain call's
    object another thread keeps alive too: nothing tells it from a block
    between its construction and its ``with``)."""
    while True:
        k = next((k for k, ref in enumerate(_scopes)
                  if ref() is not None and ref()._by != me), None)
        if k is None:
            return
        block = _scopes[k]()
        block._exited = True
        _end_scope(k, block)


def _end_scope(k, block, libs=None):
    """End the open setting ``block``, ``_scopes[k]`` (under _scope_lock).
    Settings that overlap (two Python threads' ``with`` blocks, the first left
    first) end as nested ones do: one that ends while a later one stands
    hands its previous setting to that one, which restores it when it ends
    (review HBX: both ended, the process kept the first one's 1 thread). The
    last one restores the setting before it: a plain call's made since (its
    object gone) included, as a block's restore always did."""
    later = next((ref() for ref in _scopes[k + 1:] if ref() is not None), None)
    del _scopes[k]
    _prune_scopes()
    if later is not None:
        later._previous = block._previous
    else:
        _restore(block._previous, libs)


def _restore(previous, libs=None):
    global _requested
    _requested, n = previous
    _apply(n, libs)


def _prune_scopes():
    # A plain call's entry (its object gone) ends nothing: dropped (review
    # HCC: 6001 entries after 6000 plain calls in a block).
    _scopes[:] = [ref for ref in _scopes if ref() is not None]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork)


def inference_threads(chunks):
    """Threads for an inference split into ``chunks`` chunks of rows.

    At most :func:`get_num_threads` (the pool's size or the number given to
    :func:`set_num_threads`) and ``chunks``, and (Linux) at most the cores
    that other processes' running threads leave free, at least one: as a
    fit does, no thread is started for a core that is not free.
    """
    n = _configured_threads(chunks)
    if n > 1:
        n = min(n, max(default_num_threads() - others_running(), 1))
    return max(n, 1)


def _configured_threads(chunks):
    """:func:`inference_threads` before it looks at the machine's load."""
    n = _requested if _requested is not None else (
        _pool_as_set() if _blas.LIBRARY != "scipy" or _one_thread_users else get_num_threads())
    return max(min(n, chunks), 1)



def training_threads(pieces):
    """Threads for a training kernel whose batches come in ``pieces``
    pieces (:func:`fastbp._sklearn_kernels.epoch_sklearn_t_split`): as
    :func:`inference_threads` for ``pieces`` chunks."""
    return inference_threads(pieces)


@contextlib.contextmanager
def training(pieces):
    """The threads of a fit whose batches a kernel splits into ``pieces``
    pieces, for the block: a :class:`TrainingThreads`, to call before each
    epoch. One fit at a time in a process runs its pieces on several
    threads; another that starts meanwhile runs them on its own thread (two
    would spin on each other's cores)."""
    share = TrainingThreads(pieces)
    try:
        yield share
    finally:
        share.release()


class TrainingThreads:
    """How many threads a split fit's next epoch runs on: ``share()``.

    The first call looks at the machine (:func:`training_threads`) and takes
    the process's split (one fit at a time). A fit that got one thread,
    where :func:`set_num_threads` and the pool allow more, looks again
    before a later epoch, at most every :data:`LOOK_SOON` seconds at first
    and half as often after each look that finds the cores taken (up to
    :data:`LOOK_LONGEST`), as :func:`look_again`: its start may have met a passing thread of another
    process (a kernel worker that ran a few milliseconds, on this machine
    at the start of 30-40 % of the fits that followed a one-second
    pause: those fits ran on one thread, 1.7x slower). A split, once
    taken, lasts to :meth:`release`. The kernels' sums do not depend on the
    threads, so neither does the fit's result.
    """

    def __init__(self, pieces):
        self.pieces, self.threads, self._held = pieces, None, False
        self._next, self._wait = 0.0, LOOK_SOON

    def __call__(self):
        if self.threads is None:
            self.threads = 1
            self._look(_clock())
        elif (self.threads == 1 and self._wait is not None
              and _clock() >= self._next):
            self._look(_clock())
        return self.threads

    def _look(self, now):
        global _training_by
        n = training_threads(self.pieces)
        if n > 1 and _training_lock.acquire(blocking=False):
            _training_by = threading.get_ident()
            self.threads, self._held, self._wait = n, True, None
        elif _configured_threads(self.pieces) < 2:
            self._wait = None   # (set_num_threads(1), a pool of one: never more)
        else:
            self._next, self._wait = now + self._wait, min(2 * self._wait, LOOK_LONGEST)

    def release(self):
        """Let another fit split (where this one did)."""
        global _training_by
        if self._held:
            self._held = False
            _training_by = None
            _training_lock.release()


def ensure():
    """Before training: apply a requested thread count (cheap when applied),
    and choose which products run on one thread (see the module's notes)."""
    if _requested is not None and (_applied != _requested or _pool_differs(_requested)):
        _apply(_requested)
    _look["wait"] = 0.0
    _schedule(_choose_serial_below(), _clock())


def _pool_differs(n):
    # The pool resized behind fastbp's back (threadpoolctl, another library,
    # a kernel's restore racing a set_num_threads in another thread), while
    # no inference holds it at one thread: one ctypes call.
    return (_blas.LIBRARY != "scipy" and not _one_thread_users
            and _blas.pool_threads() != n)


_applied = None
_scopes = []   # weak references to the set_num_threads standing, in the order they began
# (re-entrant: a finalizer or a signal handler that sets threads while this
# thread holds it would hang, review HCC; such a call is one step of its own)
_scope_lock = threading.RLock()


class set_num_threads:
    """Use ``n`` threads for fastbp's kernels (1 <= n <= the CPUs available).

    Takes effect at once, on the BLAS pool fastbp's kernels use (NumPy's
    own, where fastbp shares it), and stands until changed. As a context
    manager it restores the setting it found on exit, undoing a plain call
    made inside; blocks of several Python threads that overlap end as
    nested ones do (the setting before the first, once all have ended). A
    call whose object is kept (``s = set_num_threads(1)``, or ``_`` at the
    interactive prompt) stands as an open block would, until
    ``s.__exit__()`` is called.
    """

    _exited = True   # (until this one stands)

    def __init__(self, n):
        global _requested
        n = check_int(n, "n", 1)
        if n > default_num_threads():
            raise ValueError(f"n must be at most the {default_num_threads()} CPUs available; got {n}")
        libs = _blas_controller()   # (threadpoolctl's look-up allocates: not under the lock)
        try:
            # The setting before, the new one applied, and this one's place
            # among those standing, in one step: a block of another thread
            # that ends meanwhile sees this one (review HCA: read apart, 91
            # of 300 races of two threads' blocks left the process on 1
            # thread). Ctrl-C is held to its end (review HCC).
            with _SigintDeferred(), _scope_lock:
                self._previous = (_requested, get_num_threads())
                self._by = threading.get_ident()
                _prune_scopes()
                _scopes.append(weakref.ref(self))
                self._exited = False
                _requested = n
                _apply(n, libs)   # at once, whatever fastbp applied before (the pool may have moved)
            ensure()
        except BaseException:   # (a Ctrl-C: the caller never got the block, which ends)
            self.__exit__(None, None, None)
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._exited:   # (a second exit ends nothing)
            return False
        with _SigintDeferred():   # (a Ctrl-C in threadpoolctl's look-up left the block open)
            libs = _blas_controller()
            with _scope_lock:
                if not self._exited:
                    self._exited = True
                    at = next((k for k, ref in enumerate(_scopes) if ref() is self), None)
                    if at is None:   # (not among them: restored, as a block always was)
                        _restore(self._previous, libs)
                    else:
                        _end_scope(at, self, libs)
        return False

    def __repr__(self):
        return f"set_num_threads({get_num_threads()})"
