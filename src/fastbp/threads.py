"""fastbp's threads, set on purpose.

fastbp's matrix products are ``np.dot`` calls inside Numba kernels, which run
on SciPy's OpenBLAS; NumPy bundles a second OpenBLAS with a pool of its own.
Two busy pools on the same cores can slow each other down many times over,
so fastbp sets the size of the pool its kernels use (through threadpoolctl,
once SciPy's library is loaded, i.e. after the first compile) and never asks
for more threads than there are CPUs.

    fastbp.set_num_threads(1)             # from now on
    with fastbp.set_num_threads(2):       # for a block, then back
        net.fit(X, y)
"""
import os

import threadpoolctl

from ._validate import check_int

_requested = None  # None: the library's default (see default_num_threads)


def default_num_threads():
    """All CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _blas_controller():
    """threadpoolctl's handle on the BLAS that Numba's np.dot calls."""
    import scipy
    import scipy.linalg.cython_blas  # noqa: F401  (loads SciPy's BLAS)
    root = os.path.dirname(scipy.__file__)
    ours = [root, root + ".libs"]
    controller = threadpoolctl.ThreadpoolController()
    libs = [lib for lib in controller.lib_controllers
            if lib.user_api == "blas" and any(lib.filepath.startswith(p) for p in ours)]
    if not libs:  # e.g. a shared system BLAS: then it is everyone's
        libs = [lib for lib in controller.lib_controllers if lib.user_api == "blas"]
    return libs


def get_num_threads():
    """Threads fastbp's kernels use for matrix products."""
    return _requested or default_num_threads()


def _apply(n):
    for lib in _blas_controller():
        lib.set_num_threads(n)


def ensure():
    """Apply the thread count before training (cheap after the first call)."""
    global _applied
    n = get_num_threads()
    if _applied != n:
        _apply(n)
        _applied = n


_applied = None


class set_num_threads:
    """Use ``n`` threads for fastbp's kernels (1 <= n <= the CPUs available).

    Takes effect at once; as a context manager it restores the previous
    setting on exit.
    """

    def __init__(self, n):
        global _requested
        n = check_int(n, "n", 1)
        if n > default_num_threads():
            raise ValueError(f"n must be at most the {default_num_threads()} CPUs available; got {n}")
        self._previous = _requested
        _requested = n
        ensure()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _requested
        _requested = self._previous
        ensure()
        return False

    def __repr__(self):
        return f"set_num_threads({get_num_threads()})"
