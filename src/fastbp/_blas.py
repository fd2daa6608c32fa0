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

``A @ B^T`` runs as the NN product of a copy of ``B^T`` (a loop of
fastbp's own, :func:`copy_transposed_function`) where OpenBLAS's small-matrix
path would not take the TN form, or runs it slowly (see ``NT_COPY_MOST``).

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
import time

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from . import _env

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

# A product that runs on one thread by resizing the pool (the pool as it
# finds it, then one thread, then the size it found) counts itself in BEGUN
# before it reads the size and in ENDED after it puts it back, so that
# fastbp's Python side, in another thread, neither reads the one thread it
# set for a moment as the pool's size nor has a size it sets meanwhile put
# back over by the product (:func:`pool_threads`, :func:`settle`). HELD is 1
# while fastbp holds the pool at one thread (fastbp.threads.blas_on_one_thread:
# the split fits, the row-split inference): the products then run as the
# pool is, counting nothing (two threads' counts would share a cache line).
BEGUN, ENDED, HELD = ctypes.c_int64(0), ctypes.c_int64(0), ctypes.c_int64(0)


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


def _cell(builder, name):
    """fastbp's int64 cell ``name`` (a symbol bound by :func:`_bind`)."""
    cell = builder.module.globals.get(name)
    if cell is None:
        cell = ir.GlobalVariable(builder.module, ir.IntType(64), name)
        cell.linkage = "external"
    return cell


def _serial_below_value(builder):
    return builder.load_atomic(_cell(builder, "fastbp_gemm_serial_below"), "monotonic", 8)


# OpenBLAS 0.3 runs a product of at most 65536 * 4 multiply-adds on the
# calling thread by itself (interface/gemm.c, SMP_THRESHOLD_MIN *
# GEMM_MULTITHREAD_THRESHOLD); only larger ones need fastbp's decision.
BLAS_SERIAL = 262144

# OpenBLAS 0.3's small-matrix kernels for SkylakeX and later
# (kernel/x86_64/?gemm_small_kernel_permit_skylakex.c) take every product of
# at most SMALL_MOST_MNK multiply-adds except, in column-major terms, the TN
# form with M N > SMALL_TN_MOST_MN or K < SMALL_TN_LEAST_K: that product
# packs its operands first, in the general path. Row-major C = A @ B^T, the
# forward product of every dense layer (outputs n, rows m, inputs k), is
# that form; and where the small TN kernel does take it, it runs each output
# as a dot product along k, slower than its NN kernel. So gemm_call copies
# B^T (k x n) to the stack and runs the NN product when B (n x k) has at
# most NT_COPY_MOST elements and either OpenBLAS would refuse the TN form or
# the product has at least NT_COPY_LEAST_ROWS rows (enough to pay for the
# copy). Measured in a jitted loop (2026-12-03, AMD EPYC znver4, OpenBLAS
# 0.3.31, variables unset), rows x inputs x outputs 200 x 24 x 8 float64
# 3.4 against 1.5 us, float32 1.8 against 1.5 us; 64 x 4 x 8 0.37 against
# 0.14 us; 128 x 13 x 32 float64 3.2 against 2.2 us; 200 x 8 x 2 float64
# 0.94 against 0.54 us (float32 at par, 0.53 against 0.57 us). The copy is
# a loop of fastbp's own (copy_transposed_function), one small function per
# kernel: OpenBLAS's cblas_?omatcopy took 0.1 us to copy 32 values and
# 0.8 us for 2,048. The NN kernel adds each sum in the same order, so nearly
# every result keeps its bits.
SMALL_MOST_MNK = 1000000
SMALL_TN_MOST_MN = 1200
SMALL_TN_LEAST_K = 32
NT_COPY_MOST = 2048
NT_COPY_LEAST_ROWS = 32


def copies_transposed(m, n, k):
    """Whether gemm_call runs row-major ``(m, k) @ (n, k)^T`` as the NN
    product of a copy of B^T (the rule its IR applies; for the tests)."""
    refused = m * n > SMALL_TN_MOST_MN or k < SMALL_TN_LEAST_K
    return (m * n * k <= SMALL_MOST_MNK and n * k <= NT_COPY_MOST
            and (refused or m >= NT_COPY_LEAST_ROWS))


def copy_transposed_function(module, real):
    """``fastbp_transpose_f32/f64(src, rows, cols, dst)``: ``dst[c, r] =
    src[r, c]`` for a row-major (rows, cols) src and (cols, rows) dst,
    defined once per module (linkonce_odr: one copy when modules link).
    Blocks of 4 x 4 values go through registers: four vector loads along
    src's rows, the 4 x 4 transposition in eight shuffles, four vector
    stores along dst's rows; the columns and rows left over value by value.
    Written out as vector code, so that LLVM has nothing to vectorise
    (``optsize``): it compiles cheaply in every kernel whose products copy."""
    name = "fastbp_transpose_" + ("f32" if isinstance(real, ir.FloatType) else "f64")
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    i64 = ir.IntType(64)
    ptr = real.as_pointer()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ptr, i64, i64, ptr]), name)
    fn.linkage = "linkonce_odr"
    for attr in ("noinline", "nounwind", "optsize"):
        fn.attributes.add(attr)
    src, rows, cols, dst = fn.args
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    vec = ir.VectorType(real, 4)
    vptr = vec.as_pointer()
    size = 4 if isinstance(real, ir.FloatType) else 8

    def at(base, row, width, col):
        return builder.gep(base, [builder.add(builder.mul(row, width), col)])

    def copy_one(r, c):
        builder.store(builder.load(at(src, r, cols, c)), at(dst, c, rows, r))

    def mix(x, y, lanes):
        return builder.shuffle_vector(x, y, ir.Constant(ir.VectorType(ir.IntType(32), 4), lanes))

    row_blocks = builder.sdiv(rows, i64(4))
    col_end = builder.mul(builder.sdiv(cols, i64(4)), i64(4))
    with cgutils.for_range(builder, row_blocks) as block:
        r0 = builder.mul(block.index, i64(4))
        with cgutils.for_range_slice(builder, i64(0), col_end, i64(4)) as (c0, _):
            a, b, c, d = (builder.load(builder.bitcast(at(src, builder.add(r0, i64(i)), cols, c0),
                                                       vptr), align=size) for i in range(4))
            t0, t1 = mix(a, b, [0, 4, 1, 5]), mix(a, b, [2, 6, 3, 7])
            t2, t3 = mix(c, d, [0, 4, 1, 5]), mix(c, d, [2, 6, 3, 7])
            for j, v in enumerate((mix(t0, t2, [0, 1, 4, 5]), mix(t0, t2, [2, 3, 6, 7]),
                                   mix(t1, t3, [0, 1, 4, 5]), mix(t1, t3, [2, 3, 6, 7]))):
                builder.store(v, builder.bitcast(at(dst, builder.add(c0, i64(j)), rows, r0), vptr),
                              align=size)
        with cgutils.for_range_slice(builder, col_end, cols, i64(1)) as (c, _):
            for i in range(4):
                copy_one(builder.add(r0, i64(i)), c)
    with cgutils.for_range_slice(builder, builder.mul(row_blocks, i64(4)), rows, i64(1)) as (r, _):
        with cgutils.for_range(builder, cols) as column:
            copy_one(r, column.index)
    builder.ret_void()
    return fn


def _entry_buffer(builder, real, count, name):
    # One stack buffer of count reals per function, shared by its call sites
    # (each uses it only between its copy and its product).
    for instr in builder.function.entry_basic_block.instructions:
        if isinstance(instr, ir.AllocaInstr) and instr.name == name:
            return instr
    with builder.goto_entry_block():
        return builder.alloca(ir.ArrayType(real, count), name=name)


@intrinsic
def gemm_call(typingctx, C, A, B, trans_a, trans_b, alpha, beta):
    """``C = alpha op(A) @ op(B) + beta C``: :func:`fastbp.ops.gemm`'s whole body.

    Written as LLVM IR rather than Python: every kernel that multiplies
    matrices carries a copy of it, and as Numba IR (the checks, their raises,
    the thread switch and a call per dtype) each copy cost a fifth of a
    second of every cold compile; as IR it costs nothing measurable. Only
    the call for the arrays' dtype is emitted. Checks, O(1): the shapes fit,
    and each array is laid out as BLAS reads it (rows packed, by strides);
    else ValueError. A product with ``BLAS_SERIAL < m n k < serial_below``
    runs with the pool set to one thread, and back after (only when the
    caller found it above one). ``A @ B^T`` that OpenBLAS's small kernels
    would refuse, or runs slowly, runs as the NN product of a copy of ``B^T``
    on the stack (``NT_COPY_MOST``, :func:`copies_transposed`).
    """
    arrays = (C, A, B)
    if not all(isinstance(t, types.Array) and t.ndim == 2 for t in arrays):
        return None
    dtype = C.dtype
    if dtype not in (types.float32, types.float64) or A.dtype != dtype or B.dtype != dtype:
        return None
    if not C.mutable or not all(isinstance(t, (types.Boolean, types.Integer))
                                for t in (trans_a, trans_b)):
        return None
    if not all(isinstance(t, (types.Float, types.Integer)) for t in (alpha, beta)):
        return None
    symbol = "fastbp_cblas_sgemm64" if dtype == types.float32 else "fastbp_cblas_dgemm64"

    def codegen(context, builder, signature, args):
        i32, i64 = ir.IntType(32), ir.IntType(64)
        vp = ir.IntType(8).as_pointer()
        real = context.get_value_type(dtype)
        argt = signature.args
        views = [make_array(t)(context, builder, v) for t, v in zip(argt[:3], args[:3])]
        shapes = [cgutils.unpack_tuple(builder, v.shape, 2) for v in views]
        strides = [cgutils.unpack_tuple(builder, v.strides, 2) for v in views]
        ta, tb = (context.cast(builder, v, t, types.boolean) for v, t in zip(args[3:5], argt[3:5]))
        (m, n), (a0, a1), (b0, b1) = shapes
        k = builder.select(ta, a0, a1)
        a_rows = builder.select(ta, a1, a0)
        b_rows = builder.select(tb, b1, b0)
        b_cols = builder.select(tb, b0, b1)
        # Each check its own message (constant text: the values are not at
        # hand here), so an error says which array is wrong.
        for misfit, message in (
                (builder.icmp_signed("!=", a_rows, m),
                 "gemm: op(A) must have C's number of rows (C is m x n, op(A) m x k)"),
                (builder.icmp_signed("!=", b_cols, n),
                 "gemm: op(B) must have C's number of columns (C is m x n, op(B) k x n)"),
                (builder.icmp_signed("!=", b_rows, k),
                 "gemm: op(B) must have as many rows as op(A) has columns (op(A) is m x k,"
                 " op(B) k x n)")):
            with cgutils.if_unlikely(builder, misfit):
                context.call_conv.return_user_exc(builder, ValueError, (message,))
        size = i64(context.get_abi_sizeof(real))
        one = i64(1)
        zero = i64(0)
        for name, (rows, cols), (s0, s1) in zip("CAB", shapes, strides):
            bad_rows = builder.and_(builder.icmp_signed(">", rows, one),
                                    builder.icmp_signed("!=", s0, builder.mul(cols, size)))
            bad_cols = builder.and_(builder.icmp_signed(">", cols, one),
                                    builder.icmp_signed("!=", s1, size))
            # An empty matrix is packed, whatever its strides (NumPy 2 gives
            # np.zeros((0, k)) strides (0, 0) and calls it C-contiguous).
            empty = builder.or_(builder.icmp_signed("==", rows, zero),
                                builder.icmp_signed("==", cols, zero))
            unpacked = builder.and_(builder.not_(empty), builder.or_(bad_rows, bad_cols))
            with cgutils.if_unlikely(builder, unpacked):
                context.call_conv.return_user_exc(
                    builder, ValueError, (f"gemm: {name} must be C-contiguous (A, B and C are"
                                          " packed row-major matrices)",))

        fnty = ir.FunctionType(ir.VoidType(), [i32, i32, i32, i64, i64, i64, real, vp, i64, vp,
                                               i64, real, vp, i64])
        blas = cgutils.get_or_insert_function(builder.module, fnty, symbol)
        ptrs = [builder.bitcast(v.data, vp) for v in views]

        # A @ B^T whose B^T OpenBLAS would not take on its small-matrix path
        # (see NT_COPY_MOST): B^T copied to the stack, then the NN product.
        # The trans flags are constants at every call site, so LLVM keeps this
        # only where a product has the form.
        mn = builder.mul(m, n)
        refused = builder.or_(builder.icmp_signed(">", mn, i64(SMALL_TN_MOST_MN)),
                              builder.icmp_signed("<", k, i64(SMALL_TN_LEAST_K)))
        fits = builder.and_(builder.icmp_signed("<=", builder.mul(mn, k), i64(SMALL_MOST_MNK)),
                            builder.icmp_signed("<=", builder.mul(n, k), i64(NT_COPY_MOST)))
        pays = builder.or_(refused, builder.icmp_signed(">=", m, i64(NT_COPY_LEAST_ROWS)))
        copy = builder.and_(builder.and_(builder.not_(ta), tb), builder.and_(pays, fits))
        buf = _entry_buffer(builder, real, NT_COPY_MOST, "fastbp.bt." + str(dtype))
        bt = builder.bitcast(buf, vp)
        with builder.if_then(copy, likely=False):  # B (n, k) -> B^T (k, n), rows packed
            builder.call(copy_transposed_function(builder.module, real),
                         [builder.bitcast(ptrs[2], real.as_pointer()), n, k,
                          builder.bitcast(buf, real.as_pointer())])
        call_args = [i32(ROW_MAJOR), builder.select(ta, i32(TRANS), i32(NO_TRANS)),
                     builder.select(builder.and_(tb, builder.not_(copy)), i32(TRANS), i32(NO_TRANS)),
                     m, n, k, context.cast(builder, args[5], argt[5], dtype), ptrs[1], a1,
                     builder.select(copy, bt, ptrs[2]),
                     builder.select(copy, n, b1),
                     context.cast(builder, args[6], argt[6], dtype), ptrs[0], n]

        mnk = builder.mul(builder.mul(m, n), k)
        serial = builder.and_(builder.icmp_signed(">", mnk, i64(BLAS_SERIAL)),
                              builder.icmp_signed("<", mnk, _serial_below_value(builder)))
        held = builder.load_atomic(_cell(builder, "fastbp_blas_held"), "monotonic", 8)
        serial = builder.and_(serial, builder.icmp_signed("==", held, i64(0)))
        get = cgutils.get_or_insert_function(builder.module, ir.FunctionType(i32, []),
                                             "fastbp_blas_get_threads")
        put = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i32]),
                                             "fastbp_blas_set_threads")
        with builder.if_else(serial) as (one_thread, as_is):
            with one_thread:   # (counted: see BEGUN)
                builder.atomic_rmw("add", _cell(builder, "fastbp_blas_begun"), i64(1), "seq_cst")
                threads = builder.call(get, [])
                pooled = builder.icmp_signed(">", threads, i32(1))
                with builder.if_then(pooled):
                    builder.call(put, [i32(1)])
                builder.call(blas, call_args)
                with builder.if_then(pooled):
                    builder.call(put, [threads])
                builder.atomic_rmw("add", _cell(builder, "fastbp_blas_ended"), i64(1), "seq_cst")
            with as_is:
                builder.call(blas, call_args)
        return context.get_dummy_value()

    return types.void(C, A, B, trans_a, trans_b, alpha, beta), codegen


def _numpy_cblas():
    """Addresses of NumPy's ILP64 cblas_sgemm/dgemm and its thread get/set,
    and its path; or None."""
    import threadpoolctl
    # Both resolved: threadpoolctl gives the loader's path, NumPy's __file__
    # the one it was imported by (a venv reached through a symlink: they
    # differed, and fastbp took SciPy's BLAS beside NumPy's).
    root = os.path.realpath(os.path.dirname(np.__file__))
    for lib in threadpoolctl.ThreadpoolController().lib_controllers:
        if lib.user_api != "blas" or not os.path.realpath(lib.filepath).startswith(
                (root + os.sep, root + ".libs" + os.sep)):
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
            return [ctypes.cast(f, ctypes.c_void_p).value
                    for f in (s, d, get, put)] + [lib.filepath]
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
    found = None if _env.choice("FASTBP_BLAS", ("numpy", "scipy")) == "scipy" else _numpy_cblas()
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
    for name, cell in (("begun", BEGUN), ("ended", ENDED), ("held", HELD)):
        llvm.add_symbol(f"fastbp_blas_{name}", ctypes.addressof(cell))
    return where, ctypes.CFUNCTYPE(ctypes.c_int)(get_addr)


_keep = []  # the adapters must outlive their addresses
# LIBRARY: the BLAS serving fastbp's kernels, a file path or "scipy";
# _pool_now(): the threads its products may use now (cheaper than threadpoolctl).
LIBRARY, _pool_now = _bind()

WAIT_MOST = 1.0   # seconds: a product in flight longer is taken as ended (a thread lost to a fork)


def _yield():
    if hasattr(os, "sched_yield"):
        os.sched_yield()
    else:
        time.sleep(0)


def pool_threads():
    """The threads the kernels' products may use: the pool's size as set, not
    the one thread a product in another thread holds it at for a moment
    (waited for: see BEGUN)."""
    start = time.perf_counter()
    while True:
        begun = BEGUN.value
        if ENDED.value == begun:
            n = _pool_now()
            if BEGUN.value == begun:   # (no product began meanwhile)
                return n
        if time.perf_counter() - start > WAIT_MOST:
            return _pool_now()
        _yield()


def settle(n, resize):
    """After ``resize(n)`` set the pool to ``n``: wait for the products then
    in flight, each of which puts back the size it found, and set ``n`` again
    where one did (a set_num_threads(1) in one thread while a fit's product
    ran in another was undone, the fit and NumPy left on two threads)."""
    for _ in range(100):
        begun, start = BEGUN.value, time.perf_counter()
        while ENDED.value < begun and time.perf_counter() - start < WAIT_MOST:
            _yield()
        if pool_threads() == n:
            return
        resize(n)
