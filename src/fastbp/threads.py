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
"""
import os

import threadpoolctl

from . import _blas
from ._validate import check_int

_requested = None  # None: the library's default (see default_num_threads)


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
    root = os.path.dirname(scipy.__file__)
    blas = [lib for lib in threadpoolctl.ThreadpoolController().lib_controllers
            if lib.user_api == "blas"]
    ours = [lib for lib in blas if lib.filepath.startswith((root, root + ".libs"))]
    return ours or blas  # a shared system BLAS: then it is everyone's


def get_num_threads():
    """Threads fastbp's kernels use for matrix products."""
    if _requested is not None:
        return _requested
    return max([lib.num_threads for lib in _blas_controller()] or [default_num_threads()])


def _apply(n):
    global _applied
    for lib in _blas_controller():
        lib.set_num_threads(n)
    _applied = n


def ensure():
    """Apply a requested thread count before training (cheap when applied)."""
    if _requested is not None and _applied != _requested:
        _apply(_requested)


_applied = None


class set_num_threads:
    """Use ``n`` threads for fastbp's kernels (1 <= n <= the CPUs available).

    Takes effect at once, on the BLAS pool fastbp's kernels use (NumPy's
    own, where fastbp shares it); as a context manager it restores the
    previous setting on exit.
    """

    def __init__(self, n):
        global _requested
        n = check_int(n, "n", 1)
        if n > default_num_threads():
            raise ValueError(f"n must be at most the {default_num_threads()} CPUs available; got {n}")
        self._previous = (_requested, get_num_threads())
        _requested = n
        ensure()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _requested
        _requested, threads = self._previous
        _apply(threads)
        return False

    def __repr__(self):
        return f"set_num_threads({get_num_threads()})"
