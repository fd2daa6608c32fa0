"""The output layer's narrow product at inference against BLAS (fastbp._narrow).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python asv_bench/narrow_probe.py [--quick]

For each dtype, rows m, outputs n and inputs k: microseconds per row-major
``(m, k) @ (n, k)^T`` from a compiled loop on one thread, through fastbp's
BLAS call (``fastbp._blas.gemm_call``, the product every layer runs) and
through the register loop (``fastbp._narrow.narrow_function``, called
directly, whatever ``takes`` decides), medians of 5, and whether
``fastbp._narrow.takes`` chooses the loop. Each product is first checked
against NumPy. Needs a CPU with AVX-512 for the loop to run.
"""
import argparse
import numba
import numpy as np
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array
from threadpoolctl import threadpool_limits

from fastbp._narrow import narrow_function, takes
from small_gemm_probe import _blas_loop, _time  # the script beside this one


def _loop_for(npanels):
    """A compiled ``loop(reps, C, A, W)`` running the register loop with
    ``npanels`` vectors per row, without takes' rule (shapes must fit it)."""
    @intrinsic
    def call(typingctx, C, A, W):
        def codegen(context, builder, signature, args):
            views = [make_array(t)(context, builder, v) for t, v in zip(signature.args, args)]
            (m, n), (_, k) = (cgutils.unpack_tuple(builder, v.shape, 2) for v in views[:2])
            fn = narrow_function(builder.module, context.get_value_type(C.dtype), npanels)
            builder.call(fn, [m, n, k, views[1].data, views[2].data, views[0].data])
            return context.get_dummy_value()
        return types.void(C, A, W), codegen

    @numba.njit
    def loop(reps, C, A, W):
        for _ in range(reps):
            call(C, A, W)
    return loop


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few shapes only")
    quick = parser.parse_args().quick
    threadpool_limits(1)
    rng = np.random.default_rng(0)
    loops = {1: _loop_for(1), 2: _loop_for(2)}
    rows = (1024,) if quick else (64, 256, 1024)
    inputs = (32, 100) if quick else (8, 32, 100, 256, 512)
    print("dtype    m    n    k     BLAS us   loop us   BLAS/loop  takes")
    for dt in (np.float32, np.float64):
        size = np.dtype(dt).itemsize
        outputs = (4, 6, 8, 9, 10, 12, 16, 17, 20, 26, 32) if size == 4 else (3, 4, 5, 6, 8, 9, 10, 12, 16)
        for m in rows:
            for k in inputs:
                for n in outputs:
                    lanes = 64 // size
                    _loop = loops[1 if n <= lanes else 2]
                    A = rng.normal(size=(m, k)).astype(dt)
                    W = rng.normal(size=(n, k)).astype(dt)
                    C = np.full((m, n), np.nan, dt)
                    _loop(1, C, A, W)
                    tol = 1e-4 if dt == np.float32 else 1e-12
                    np.testing.assert_allclose(C, A @ W.T, rtol=tol, atol=tol * np.sqrt(k))
                    reps = max(20, int(3e7 / (m * n * k)))
                    b = _time(_blas_loop, C, A, W, False, True, 1.0, 0.0, reps=reps)
                    s = _time(_loop, C, A, W, reps=reps)
                    print(f"{np.dtype(dt).name:7s} {m:4d} {n:4d} {k:4d} {b:9.2f} {s:9.2f} {b / s:9.2f}"
                          f"  {takes(m, n, k, np.dtype(dt).itemsize)}", flush=True)


if __name__ == "__main__":
    main()
