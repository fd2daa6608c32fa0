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

Two more symbols let a kernel run one product on the calling thread:
``fastbp_blas_get_threads`` / ``fastbp_blas_set_threads`` are the library's
own ``openblas_get/set_num_threads`` (for another BLAS: a stand-in that
reports one thread and sets nothing), and ``fastbp_gemm_serial_below`` is one
int64 in fastbp's memory, read by the kernels at every product: products of
fewer multiply-adds (m n k) than it run on one thread (see
:mod:`fastbp.threads`, which owns the value, and :func:`fastbp.ops.gemm`).
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
get_threads = types.ExternalFunction("fastbp_blas_get_threads", types.int32())
set_threads = types.ExternalFunction("fastbp_blas_set_threads", types.void(types.int32))

# The serial threshold the kernels read (an int64 that outlives every kernel).
SERIAL_BELOW = ctypes.c_int64(0)


@intrinsic
def serial_below(typingctx):
    """The current value of ``SERIAL_BELOW``, read through its symbol."""
    def codegen(context, builder, signature, args):
        name = "fastbp_gemm_serial_below"
        cell = builder.module.globals.get(name)
        if cell is None:
            cell = ir.GlobalVariable(builder.module, ir.IntType(64), name)
            cell.linkage = "external"
        # Another thread may change it: load it once per product, atomically.
        return builder.load_atomic(cell, "monotonic", 8)
    return types.int64(), codegen


def _numpy_cblas():
    """Addresses of NumPy's ILP64 cblas_sgemm/dgemm and its thread get/set, or None."""
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
                get = getattr(handle, f"{prefix}openblas_get_num_threads64_")
                put = getattr(handle, f"{prefix}openblas_set_num_threads64_")
            except AttributeError:
                continue
            return [ctypes.cast(f, ctypes.c_void_p).value for f in (s, d, get, put)] + [lib.filepath]
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


def _one_thread():
    # SciPy's BLAS is not fastbp's to resize per product: it reports one
    # thread, so the kernels never switch it (threadpoolctl still sets it).
    @numba.cfunc(types.int32(), nogil=True)
    def get():
        return 1

    @numba.cfunc(types.void(types.int32), nogil=True)
    def put(n):
        pass

    return get, put


def _bind():
    found = None if os.environ.get("FASTBP_BLAS") == "scipy" else _numpy_cblas()
    if found is not None:
        s_addr, d_addr, get_addr, set_addr, where = found
    else:
        adapters = (_scipy_adapter(types.float32, 115), _scipy_adapter(types.float64, 100),
                    *_one_thread())
        _keep.extend(adapters)
        s_addr, d_addr, get_addr, set_addr = (a.address for a in adapters)
        where = "scipy"
    llvm.add_symbol("fastbp_cblas_sgemm64", s_addr)
    llvm.add_symbol("fastbp_cblas_dgemm64", d_addr)
    llvm.add_symbol("fastbp_blas_get_threads", get_addr)
    llvm.add_symbol("fastbp_blas_set_threads", set_addr)
    llvm.add_symbol("fastbp_gemm_serial_below", ctypes.addressof(SERIAL_BELOW))
    return where, ctypes.CFUNCTYPE(ctypes.c_int)(get_addr)


_keep = []  # the adapters must outlive their addresses
# LIBRARY: the BLAS serving fastbp's kernels, a file path or "scipy";
# pool_threads(): the threads its products may use now (cheaper than threadpoolctl).
LIBRARY, pool_threads = _bind()
