"""The one decorator every fastbp kernel is compiled with.

``cache=True`` writes the machine code next to the source (or under
``NUMBA_CACHE_DIR`` when set, e.g. for a read-only install), so a new process
loads instead of compiling. ``nogil=True`` lets two models train in two
threads at once. ``error_model="numpy"`` makes division by zero give inf/nan
instead of raising, which keeps the division out of a branch and lets LLVM
vectorise the loops. No fastmath: fastbp checks for non-finite values, which
``nnan``/``ninf`` would optimise away.
"""
import functools

import numba

jit = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy")
