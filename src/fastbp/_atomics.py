"""Atomic integers and a barrier for kernels that run on several threads at once.

A kernel compiled with ``nogil`` can run in several Python threads at the
same time, each on its own part of the work; where the parts must meet (all
gradients summed before a step, the step done before the next batch's
forward pass) they wait at :func:`barrier`. Its counters are plain int64
arrays, read and written with LLVM's atomic instructions (sequentially
consistent), so a waiting thread sees the others' writes, and everything they
wrote before, as soon as it sees the counter move.

Each thread counts the barriers it has reached in a slot of its own, on a
cache line of its own, and waits until every other thread's count has
caught up: one store and one load cross between the cores per thread and
barrier. (A shared arrival counter and generation took four atomic
operations on a line the waiting threads kept reading: 0.41-0.47 us a
round of two threads doing nothing else, against 0.22-0.23 us.)

A waiting thread spins (a few microseconds at most on a free core), then
yields its core at each check (``sched_yield``), so that a thread the
scheduler has not yet run gets it, and after about a millisecond sleeps
between checks (``usleep``), so that a thread waiting through a long pause
(a helper between two epochs of a fit that scores a validation set) does
not hold a core. fastbp runs such kernels only when the machine has a free
core for each thread (:mod:`fastbp.threads`), and only on POSIX systems
(:data:`AVAILABLE`).
"""
import sys

from numba.core import cgutils, types
from numba.extending import intrinsic

from ._jit import KERNEL_ONLY, jit

# sync's slots: a stop flag (set by any thread) on the first cache line (the
# rest of that line is the callers', fastbp._sklearn_kernels), then the
# barriers thread i has reached at slot COUNT * (i + 1), a line each.
STOP = 2
COUNT = 8          # int64 slots a cache line holds
MOST_PARTS = 8     # threads a barrier on a sync array of SYNC_SIZE can hold
SYNC_SIZE = COUNT * (MOST_PARTS + 1)
SPINS = 4000    # checks before a waiting thread starts yielding its core
YIELDS = 2000   # yields (each a system call, 0.5-1 us) before it starts sleeping
NAP = 100       # microseconds a thread that has waited long sleeps between checks


def _pointer(context, builder, sig, args):
    aryty, idxty = sig.args[0], sig.args[1]
    ary = context.make_array(aryty)(context, builder, args[0])
    index = context.cast(builder, args[1], idxty, types.intp)
    return cgutils.get_item_pointer(context, builder, aryty, ary, [index])


@intrinsic
def atomic_load(typingctx, ary, i):
    """``ary[i]``, read atomically (int64 array)."""
    if not (isinstance(ary, types.Array) and ary.dtype == types.int64):
        return None
    sig = types.int64(ary, i)

    def codegen(context, builder, sig, args):
        return builder.load_atomic(_pointer(context, builder, sig, args), "seq_cst", 8)
    return sig, codegen


@intrinsic
def atomic_store(typingctx, ary, i, v):
    """``ary[i] = v`` atomically (int64 array)."""
    if not (isinstance(ary, types.Array) and ary.dtype == types.int64):
        return None
    sig = types.void(ary, i, v)

    def codegen(context, builder, sig, args):
        value = context.cast(builder, args[2], sig.args[2], types.int64)
        builder.store_atomic(value, _pointer(context, builder, sig, args), "seq_cst", 8)
        return context.get_dummy_value()
    return sig, codegen


# Where the barrier can yield and sleep (POSIX's sched_yield and usleep);
# elsewhere (Windows) fastbp runs no kernel on several threads.
AVAILABLE = sys.platform != "win32"

if AVAILABLE:
    _sched_yield = types.ExternalFunction("sched_yield", types.int32())
    _usleep = types.ExternalFunction("usleep", types.int32(types.uint32))

    @jit(inline="always")
    def _wait(checks):
        # After SPINS checks, yield the core at each; after YIELDS more
        # (about a millisecond), sleep NAP microseconds between checks.
        if checks > SPINS + YIELDS:
            _usleep(NAP)
        elif checks > SPINS:
            _sched_yield()
else:
    @jit(inline="always")
    def _wait(checks):
        pass


@jit(**KERNEL_ONLY)  # called by kernels only: no machine code of its own
def barrier(sync, parts, me):
    """Wait until all ``parts`` threads (``me`` is this one's number, 0 ..
    parts - 1, at most MOST_PARTS of them) have called barrier on ``sync``
    as often as this one has; False when one has set the stop flag
    (``sync[STOP]``) instead."""
    mine = sync[COUNT * (me + 1)] + 1  # (only this thread writes its count)
    atomic_store(sync, COUNT * (me + 1), mine)
    for other in range(parts):
        checks = 0
        while atomic_load(sync, COUNT * (other + 1)) < mine:
            if atomic_load(sync, STOP) != 0:
                return False
            checks += 1
            _wait(checks)
    return atomic_load(sync, STOP) == 0


@jit
def stop(sync):
    """Set the stop flag: every thread waiting at (or reaching) a barrier
    on ``sync`` returns False."""
    atomic_store(sync, STOP, 1)
