"""A register-blocked small GEMM in LLVM IR against OpenBLAS, for issue 16.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python asv_bench/small_gemm_probe.py [float32|float64]

The question: do fastbp's small layers pay a BLAS call per product that a
compiled loop would not? This script emits one LLVM function per dtype,
``C = alpha op(A) op(B) + beta C`` with C in blocks of 8 rows x one 256-bit
panel (4 rows x two panels when C is wider than a panel), the accumulators
in registers, masked loads and stores for the last panel, op(B) copied to a
stack buffer when its rows are strided (the NT form of a forward product),
and times it against fastbp's BLAS call (``fastbp._blas.gemm_call``) for the
shapes of the small networks in asv_bench/compare.py, each form (NT forward,
TN weight gradient, NN delta), from a compiled loop. It first checks every
form against NumPy, odd sizes and beta != 0 included.

Measured on 2026-12-02 (AMD EPYC znver4 under KVM, 2 vCPUs, OpenBLAS 0.3.31
SkylakeX kernel, float32, microseconds per product, medians of 5):

    shape (m x n x k)   NT blas / loop   TN blas / loop   NN blas / loop
    200 x 8 x 24        2.6 / 2.0        1.7 / 2.1        1.6 / 2.0
    200 x 2 x 8         1.0 / 1.1        0.3 / 1.2        0.6 / 1.1
    32 x 16 x 2         0.3 / 0.2        0.07 / 0.16      0.07 / 0.16
    32 x 32 x 64        1.8 / 2.6        1.6 / 1.8        1.2 / 1.8
    32 x 10 x 32        0.5 / 0.7        0.4 / 0.6        0.4 / 0.6

The inner loop compiles to what it should (per k step one or two masked
vector loads and eight FMAs with broadcast operands, no spills), yet the
loop wins only the NT form of the 24-8-2 forward product: OpenBLAS's own
small-matrix paths are already within a small factor of the work, and each
block of 8 rows costs about 30 ns outside its inner loop. So fastbp keeps
BLAS for every layer in training; a small-layer path would have to fuse the
bias, the activation and the neighbouring products to pay (issue 16). At
inference the output layer's product of many rows and few outputs, where
OpenBLAS leaves its small kernel, runs in a loop of this kind
(fastbp._narrow, measured by narrow_probe.py).
"""
import time

import numpy as np
import numba
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from fastbp._blas import gemm_call

VBYTES = 32     # vector width in bytes (256 bits)
TBUF = 4096     # most elements of B^T (the stack buffer when B's rows are strided)


def _splat(builder, value, vec):
    v = builder.insert_element(ir.Constant(vec, ir.Undefined), value, ir.IntType(32)(0))
    return builder.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), vec.count), [0] * vec.count))


def small_gemm_function(module, real, name):
    """``C[i, j] = alpha sum_p A(i, p) B(p, j) + beta C[i, j]`` (beta 0: C not
    read), with A(i, p) at ``A + i sa_i + p sa_p`` and B(p, j) at
    ``B + p sb_p + j sb_j`` (copied to a row-major stack buffer first unless
    sb_j == 1); C row-major with row stride ldc. Needs k n <= TBUF when
    sb_j != 1."""
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    i64, i32, i1 = ir.IntType(64), ir.IntType(32), ir.IntType(1)
    ptr = real.as_pointer()
    fnty = ir.FunctionType(ir.VoidType(), [i64, i64, i64, ptr, i64, i64, ptr, i64, i64, ptr, i64,
                                           real, real])
    fn = ir.Function(module, fnty, name)
    fn.linkage = "linkonce_odr"
    fn.attributes.add("noinline")
    fn.attributes.add("nounwind")
    m, n, k, A, sa_i, sa_p, B, sb_p, sb_j, C, ldc, alpha, beta = fn.args
    size = 4 if isinstance(real, ir.FloatType) else 8
    tag = "f32" if size == 4 else "f64"
    V = VBYTES // size
    vec = ir.VectorType(real, V)
    mvec = ir.VectorType(i1, V)
    vptr = vec.as_pointer()
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    zero = ir.Constant(real, 0.0)
    zero_v = ir.Constant(vec, [0.0] * V)
    one = i64(1)
    fma = cgutils.get_or_insert_function(module, ir.FunctionType(vec, [vec] * 3), f"llvm.fma.v{V}{tag}")
    mload = cgutils.get_or_insert_function(
        module, ir.FunctionType(vec, [vptr, i32, mvec, vec]), f"llvm.masked.load.v{V}{tag}.p0")
    mstore = cgutils.get_or_insert_function(
        module, ir.FunctionType(ir.VoidType(), [vec, vptr, i32, mvec]), f"llvm.masked.store.v{V}{tag}.p0")

    bt = builder.alloca(real, size=i64(TBUF), name="bt")
    acc = [builder.alloca(vec, name=f"acc{r}") for r in range(8)]
    bp_slot = cgutils.alloca_once_value(builder, B)
    sbp_slot = cgutils.alloca_once_value(builder, sb_p)

    # B^T into the buffer when its rows are not contiguous.
    with builder.if_then(builder.icmp_signed("!=", sb_j, one)):
        with cgutils.for_range(builder, n) as lj:
            j = lj.index
            src = builder.gep(B, [builder.mul(j, sb_j)])
            with cgutils.for_range(builder, k) as lp:
                p = lp.index
                v = builder.load(builder.gep(src, [builder.mul(p, sb_p)]))
                builder.store(v, builder.gep(bt, [builder.add(builder.mul(p, n), j)]))
        builder.store(bt, bp_slot)
        builder.store(n, sbp_slot)
    Bp = builder.load(bp_slot)
    sbp = builder.load(sbp_slot)
    beta_zero = builder.fcmp_ordered("==", beta, zero)
    alpha_v = _splat(builder, alpha, vec)
    beta_v = _splat(builder, beta, vec)
    lanes = ir.Constant(ir.VectorType(i64, V), list(range(V)))

    last = builder.sub(m, one)

    def blocks(R, P):
        # C in blocks of R rows x P panels of V columns: R P vector accumulators.
        nblocks = builder.udiv(builder.add(m, i64(R - 1)), i64(R))
        npanels = builder.udiv(builder.add(n, i64(P * V - 1)), i64(P * V))
        with cgutils.for_range(builder, nblocks) as lb:
            i0 = builder.mul(lb.index, i64(R))
            rows = builder.sub(m, i0)
            arow = []
            for r in range(R):
                i = builder.add(i0, i64(r))
                ic = builder.select(builder.icmp_signed(">", i, last), last, i)
                arow.append(builder.gep(A, [builder.mul(ic, sa_i)]))
            with cgutils.for_range(builder, npanels) as lq:
                j0 = builder.mul(lq.index, i64(P * V))
                masks = []
                for q in range(P):
                    left = _splat(builder, builder.sub(n, builder.add(j0, i64(q * V))), ir.VectorType(i64, V))
                    masks.append(builder.icmp_signed("<", lanes, left))
                for s_ in acc[:R * P]:
                    builder.store(zero_v, s_)
                with cgutils.for_range(builder, k) as lp:
                    p = lp.index
                    brow = builder.gep(Bp, [builder.add(builder.mul(p, sbp), j0)])
                    bv = [builder.call(mload, [builder.bitcast(builder.gep(brow, [i64(q * V)]), vptr),
                                               i32(size), masks[q], zero_v]) for q in range(P)]
                    aoff = builder.mul(p, sa_p)
                    for r in range(R):
                        a = _splat(builder, builder.load(builder.gep(arow[r], [aoff])), vec)
                        for q in range(P):
                            slot = acc[r * P + q]
                            builder.store(builder.call(fma, [a, bv[q], builder.load(slot)]), slot)
                for r in range(R):
                    with builder.if_then(builder.icmp_signed("<", i64(r), rows)):
                        crow = builder.gep(C, [builder.add(builder.mul(builder.add(i0, i64(r)), ldc), j0)])
                        for q in range(P):
                            dst = builder.bitcast(builder.gep(crow, [i64(q * V)]), vptr)
                            out = builder.fmul(builder.load(acc[r * P + q]), alpha_v)
                            with builder.if_else(beta_zero) as (plain, scaled):
                                with plain:
                                    builder.call(mstore, [out, dst, i32(size), masks[q]])
                                with scaled:
                                    old = builder.call(mload, [dst, i32(size), masks[q], zero_v])
                                    builder.call(mstore, [builder.call(fma, [old, beta_v, out]), dst,
                                                          i32(size), masks[q]])

    with builder.if_else(builder.icmp_signed("<=", n, i64(V))) as (narrow, wide):
        with narrow:
            blocks(8, 1)
        with wide:
            blocks(4, 2)
    builder.ret_void()
    return fn


@intrinsic
def small_call(typingctx, C, A, B, ta, tb, alpha, beta):
    """``C = alpha op(A) @ op(B) + beta C`` through the loop above, with
    gemm_call's arguments; no checks (the probe passes fitting, C-contiguous
    arrays, and B^T within TBUF)."""
    dtype = C.dtype

    def codegen(context, builder, sig, args):
        i64 = ir.IntType(64)
        real = context.get_value_type(dtype)
        views = [make_array(t)(context, builder, v) for t, v in zip(sig.args[:3], args[:3])]
        (m, n), (a0, a1), (b0, b1) = [cgutils.unpack_tuple(builder, v.shape, 2) for v in views]
        ta_, tb_ = (context.cast(builder, v, t, types.boolean) for v, t in zip(args[3:5], sig.args[3:5]))
        k = builder.select(ta_, a0, a1)
        one = i64(1)
        fn = small_gemm_function(builder.module, real, "probe_small_gemm_" + str(dtype))
        builder.call(fn, [m, n, k, views[1].data, builder.select(ta_, one, a1), builder.select(ta_, a1, one),
                          views[2].data, builder.select(tb_, one, b1), builder.select(tb_, b1, one),
                          views[0].data, n, context.cast(builder, args[5], sig.args[5], dtype),
                          context.cast(builder, args[6], sig.args[6], dtype)])
        return context.get_dummy_value()
    return types.void(C, A, B, ta, tb, alpha, beta), codegen


@numba.njit
def _small_loop(k, C, A, B, ta, tb, alpha, beta):
    for _ in range(k):
        small_call(C, A, B, ta, tb, alpha, beta)


@numba.njit
def _blas_loop(k, C, A, B, ta, tb, alpha, beta):
    for _ in range(k):
        gemm_call(C, A, B, ta, tb, alpha, beta)


def _time(f, *args, reps=2000):
    f(1, *args)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        f(reps, *args)
        times.append((time.perf_counter() - t0) / reps * 1e6)
    return float(np.median(times))


def _op(M, t):
    return M.T if t else M


def check(dt, rng):
    """Every form against NumPy, beta 0 (C not read) and beta != 0."""
    tol = 1e-4 if dt == np.float32 else 1e-12
    for (m, n, k) in [(1, 1, 1), (7, 9, 5), (200, 8, 24), (13, 2, 8), (33, 17, 3), (8, 8, 8),
                      (5, 60, 64), (3, 5, 512), (9, 40, 7)]:
        for ta in (False, True):
            for tb in (False, True):
                A = rng.normal(size=(k, m) if ta else (m, k)).astype(dt)
                B = rng.normal(size=(n, k) if tb else (k, n)).astype(dt)
                C0 = rng.normal(size=(m, n)).astype(dt)
                C = C0.copy()
                _small_loop(1, C, A, B, ta, tb, 0.7, 0.3)
                np.testing.assert_allclose(C, 0.7 * (_op(A, ta) @ _op(B, tb)) + 0.3 * C0, rtol=tol, atol=tol)
                C[:] = np.nan
                _small_loop(1, C, A, B, ta, tb, 1.0, 0.0)
                np.testing.assert_allclose(C, _op(A, ta) @ _op(B, tb), rtol=tol, atol=tol)


def main():
    import argparse
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dtype", nargs="?", default="float32", choices=["float32", "float64"])
    dt = np.dtype(parser.parse_args().dtype).type
    rng = np.random.default_rng(0)
    check(dt, rng)
    print(f"{np.dtype(dt).name}: every form agrees with NumPy; microseconds per product, BLAS / loop")
    for (m, n, k) in [(200, 8, 24), (200, 2, 8), (32, 16, 2), (32, 32, 64), (32, 10, 32), (64, 64, 64)]:
        cells = []
        for name, ta, tb, shapes in [("NT", False, True, ((m, k), (n, k))), ("TN", True, False, ((k, m), (k, n))),
                                     ("NN", False, False, ((m, k), (k, n)))]:
            A = rng.normal(size=shapes[0]).astype(dt)
            B = rng.normal(size=shapes[1]).astype(dt)
            C = np.empty((m, n), dt)
            reps = max(20, int(2e7 / (m * n * k)))
            cells.append(f"{name} {_time(_blas_loop, C, A, B, ta, tb, 1.0, 0.0, reps=reps):6.2f} /"
                         f" {_time(_small_loop, C, A, B, ta, tb, 1.0, 0.0, reps=reps):6.2f}")
        print(f"{m:4d} x {n:4d} x {k:4d}   " + "   ".join(cells), flush=True)


if __name__ == "__main__":
    main()
