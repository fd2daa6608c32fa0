"""One BLAS for fastbp and NumPy.

fastbp's kernels call matrix products through one C symbol per dtype,
``fastbp_cblas_sgemm64`` / ``fastbp_cblas_dgemm64``, with the CBLAS ILP64
signature (row-major, 64-bit sizes, alpha and beta by value). At import it
is bound to NumPy's own OpenBLAS when NumPy's wheel bundles one (NumPy 2 on
PyPI does), so fastbp and NumPy share one thread pool: no second pool spins
on the same cores after either one's matrix product. Elsewhere (a NumPy
built on another BLAS), or with ``FASTBP_BLAS=scipy`` in the environment, it
is bound to a small compiled adapter over SciPy's BLAS, the one Numba's
``np.dot`` uses. Kernels refer to the symbol by name, so their on-disk cache
stays valid whichever library serves it.
"""
import ctypes
import os

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

# cblas_?gemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112


def _signature(dtype):
    return types.void(types.int32, types.int32, types.int32, types.int64, types.int64,
                      types.int64, dtype, types.voidptr, types.int64, types.voidptr,
                      types.int64, dtype, types.voidptr, types.int64)


sgemm = types.ExternalFunction("fastbp_cblas_sgemm64", _signature(types.float32))
dgemm = types.ExternalFunction("fastbp_cblas_dgemm64", _signature(types.float64))


def _numpy_cblas():
    """Addresses of NumPy's ILP64 cblas_sgemm/dgemm, or None."""
    import threadpoolctl
    root = os.path.dirname(np.__file__)
    for lib in threadpoolctl.ThreadpoolController().lib_controllers:
        if lib.user_api != "blas" or not lib.filepath.startswith((root, root + ".libs")):
            continue
        handle = ctypes.CDLL(lib.filepath)
        for prefix in ("scipy_", ""):
            try:
                s = getattr(handle, f"{prefix}cblas_sgemm64_")
                d = getattr(handle, f"{prefix}cblas_dgemm64_")
            except AttributeError:
                continue
            return (ctypes.cast(s, ctypes.c_void_p).value, ctypes.cast(d, ctypes.c_void_p).value,
                    lib.filepath)
    return None


@intrinsic
def _on_stack(typingctx, value):
    """A pointer to a copy of ``value`` in the caller's stack frame."""
    def codegen(context, builder, signature, args):
        slot = cgutils.alloca_once_value(builder, args[0])
        return builder.bitcast(slot, ir.IntType(8).as_pointer())
    return types.voidptr(value), codegen


def _scipy_adapter(dtype, kind):
    # Numba's own entry into SciPy's BLAS (column-major, scalars by pointer).
    from numba.np.linalg import ensure_blas
    ensure_blas()
    xxgemm = types.ExternalFunction("numba_xxgemm", types.intc(
        types.char, types.char, types.char, types.intp, types.intp, types.intp,
        types.voidptr, types.voidptr, types.intp, types.voidptr, types.intp,
        types.voidptr, types.voidptr, types.intp))

    @numba.cfunc(_signature(dtype), nogil=True)
    def adapter(order, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
        xxgemm(kind, 116 if tb == TRANS else 110, 116 if ta == TRANS else 110, n, m, k,
               _on_stack(alpha), b, ldb, a, lda, _on_stack(beta), c, ldc)

    return adapter


def _bind():
    found = None if os.environ.get("FASTBP_BLAS") == "scipy" else _numpy_cblas()
    if found is not None:
        s_addr, d_addr, where = found
    else:
        adapters = (_scipy_adapter(types.float32, 115), _scipy_adapter(types.float64, 100))
        _keep.extend(adapters)
        s_addr, d_addr, where = adapters[0].address, adapters[1].address, "scipy"
    llvm.add_symbol("fastbp_cblas_sgemm64", s_addr)
    llvm.add_symbol("fastbp_cblas_dgemm64", d_addr)
    return where


_keep = []  # the adapters must outlive their addresses
LIBRARY = _bind()  # the BLAS serving fastbp's kernels: a file path, or "scipy"
