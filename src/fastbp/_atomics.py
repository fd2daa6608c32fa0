"""Atomic integers and a barrier for kernels that run on several threads at once.

A kernel compiled with ``nogil`` can run in several Python threads at the
same time, each on its own part of the work; where the parts must meet (all
gradients summed before a step, the step done before the next batch's
forward pass) they wait at :func:`barrier`. Its counters are plain int64
arrays, read and written with LLVM's atomic instructions (sequentially
consistent), so a waiting thread sees the others' writes, and everything they
wrote before, as soon as it sees the counter move.

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

# sync's slots: threads arrived at the barrier, the barrier's generation
# (incremented each time all have arrived), a stop flag (set by any thread).
ARRIVED, GENERATION, STOP = 0, 1, 2
SYNC_SIZE = 16  # slots a sync array holds (its own cache line and more)
SPINS = 4000    # checks before a waiting thread starts yielding its core
YIELDS = 2000   # yields (each a system call, 0.5-1 us) before it starts sleeping
NAP = 100       # microseconds a thread that has waited long sleeps between checks


def _pointer(context, builder, sig, args):
    aryty, idxty = sig.args[0], sig.args[1]
    ary = context.make_array(aryty)(context, builder, args[0])
    index = context.cast(builder, args[1], idxty, types.intp)
    return cgutils.get_item_pointer(context, builder, aryty, ary, [index])


@intrinsic
def atomic_add(typingctx, ary, i, v):
    """``ary[i] += v`` atomically (int64 array); returns the old value."""
    if not (isinstance(ary, types.Array) and ary.dtype == types.int64):
        return None
    sig = types.int64(ary, i, v)

    def codegen(context, builder, sig, args):
        value = context.cast(builder, args[2], sig.args[2], types.int64)
        return builder.atomic_rmw("add", _pointer(context, builder, sig, args), value, "seq_cst")
    return sig, codegen


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
def barrier(sync, parts):
    """Wait until all ``parts`` threads have called barrier on ``sync``;
    False when one has set the stop flag (``sync[STOP]``) instead."""
    generation = atomic_load(sync, GENERATION)
    if atomic_add(sync, ARRIVED, 1) == parts - 1:  # the last: open it
        atomic_store(sync, ARRIVED, 0)  # before the generation moves: none passes early
        atomic_add(sync, GENERATION, 1)
        return atomic_load(sync, STOP) == 0
    checks = 0
    while atomic_load(sync, GENERATION) == generation:
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
