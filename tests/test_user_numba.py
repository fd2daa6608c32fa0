"""Users' own Numba code beside fastbp.

fastbp adjusts a few of Numba's internals when it is imported
(``fastbp._jit``: overloads shared between its wrapper-less kernels and the
others, random function ids, its link-only code libraries in the cache).
Those changes must leave every other function as Numba compiles it: people
call fastbp's kernels from their own ``@njit`` code, which uses Numba's
whole language. Each case here is checked against NumPy.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit, prange
from numba.extending import overload

import fastbp  # noqa: F401  (imported first: its changes to Numba are in place)


@njit
def _assign_slice(z, z0):
    z[:] = z0  # the shape check's error path is one of Numba's generated overloads
    return z.sum()


def test_a_2d_slice_assignment_compiles_and_runs():
    # It did not: the overload of Numba's shape-mismatch error has no module
    # name (None), and fastbp's check of that name raised AttributeError
    # while Numba compiled the user's function.
    z = np.zeros((3, 4))
    z0 = np.arange(12.0).reshape(3, 4)
    assert _assign_slice(z, z0) == z0.sum()
    np.testing.assert_array_equal(z, z0)


def test_a_mismatched_slice_assignment_raises_numbas_error():
    with pytest.raises(ValueError, match=r"cannot assign slice of shape \(3, 4\) from input of shape \(2, 4\)"):
        _assign_slice(np.zeros((3, 4)), np.ones((2, 4)))


def _twice(x):
    return 2 * x


@overload(_twice)
def _twice_impl(x):
    return lambda x: x + x


@njit
def _users_overload_and_arrays(a, b):
    out = np.empty((a.shape[0], b.shape[1]))
    out[:, :] = a @ b  # Numba's own BLAS product and a 2-D slice assignment
    return _twice(out)


@njit(parallel=True)
def _parallel_row_sums(a):
    s = np.zeros(a.shape[0])
    for i in prange(a.shape[0]):
        s[i] = a[i].sum()
    return s


def test_users_overloads_products_and_parallel_loops_compile_as_numba_compiles_them():
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 6)), rng.random((6, 5))
    np.testing.assert_allclose(_users_overload_and_arrays(a, b), 2 * (a @ b), rtol=1e-14)
    np.testing.assert_allclose(_parallel_row_sums(a), a.sum(axis=1), rtol=1e-14)


def test_a_function_without_a_module_name_compiles():
    # exec without __name__ gives __module__ None, as Numba's structref
    # constructors and code generators make them: fastbp's listener on
    # every compilation read that name as a string and raised AttributeError.
    namespace = {}
    exec("def add_one(x):\n    return x + 1\n", namespace)
    assert namespace["add_one"].__module__ is None
    assert njit(namespace["add_one"])(41) == 42


def test_a_users_structref_is_constructed():
    from numba.core import types
    from numba.experimental import structref

    @structref.register
    class PointType(types.StructRef):
        pass

    class Point(structref.StructRefProxy):
        pass

    structref.define_proxy(Point, PointType, ["x", "y"])

    @njit
    def norm2(p):
        return p.x * p.x + p.y * p.y

    assert norm2(Point(3.0, 4.0)) == 25.0


def test_a_users_cached_function_loads_in_a_second_process(tmp_path):
    # The cache's loader is one of the internals fastbp adjusts (for its own
    # kind of entry only): a user's cache=True function, compiled in one
    # process with fastbp imported and loaded in the next, runs as compiled.
    module = tmp_path / "users_code.py"
    module.write_text(textwrap.dedent("""
        import numpy as np
        from numba import njit
        import fastbp

        @njit(cache=True)
        def scaled_copy(z, z0):
            z[:] = 3 * z0
            return z

        z0 = np.arange(6.0).reshape(2, 3)
        print(scaled_copy(np.zeros((2, 3)), z0).sum(), len(scaled_copy.stats.cache_hits))
    """))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(tmp_path))
    runs = [subprocess.run([sys.executable, str(module)], capture_output=True, text=True,
                           env=env, timeout=300) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert runs[0].stdout.split() == ["45.0", "0"]  # compiled
    assert runs[1].stdout.split() == ["45.0", "1"]  # loaded from the cache


def test_a_users_cached_function_survives_the_removal_of_fastbps_lock_folder(tmp_path):
    # After fastbp locks Numba's cache (a helper compiling ahead, or
    # FASTBP_CACHE_LOCK), every cache of the process takes its lock file,
    # the user's own included: with that file's folder removed, the user's
    # cached function raised FileNotFoundError.
    script = tmp_path / "lock_gone.py"
    script.write_text(textwrap.dedent("""
        import os, shutil, sys
        import numpy as np
        from numba import njit
        from fastbp import _jit

        folder = os.path.join(sys.argv[1], "fastbp-cache")
        os.makedirs(folder)
        _jit.lock_cache(os.path.join(folder, "fastbp-cache.lock"))
        shutil.rmtree(folder)

        @njit(cache=True)
        def plus_one(x):
            return x + 1

        print(plus_one(41), os.path.exists(os.path.join(folder, "fastbp-cache.lock")))
    """))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("FASTBP_CACHE_LOCK", None)
    run = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                         text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["42", "True"]  # ran, under the lock made again
