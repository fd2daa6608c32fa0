"""The output layer's product at inference, for narrow outputs, in registers.

Row-major ``C = A @ W^T`` (rows m, outputs n, inputs k) is every dense
layer's forward product. Where the outputs are few (a classifier's 10
classes) and the rows many (a predict chunk), OpenBLAS can run it far below
its rate: outside its small-matrix kernel (more than 10^6 multiply-adds, or
W^T too big for :mod:`fastbp._blas` to copy for it) its general path took
43 us for 1024 rows of 100 -> 10 in float32 (48 GFLOP/s) and 77 us in
float64, where this loop takes 24 and 43 us.

:func:`narrow_product` copies W^T to a 16 KiB stack buffer, each input's n
weights padded with zeros to one vector (two where n needs them; 256 or
128 inputs at a time, the partial sums kept in C between slices), then
computes C in blocks of eight rows (four with two vectors), each row's
outputs in vector registers: per input one load of the weights' vector
and one multiply-add per row, the row's input broadcast from memory
(AVX-512's embedded broadcast). A row's sums run in the order of the
inputs whatever its block or slice, so its outputs do not depend on the
chunk or thread it falls in (a split inference's chunks all have at least
512 rows, so all take this loop); and they are the bits of OpenBLAS's
general path up to 384 inputs (it also adds the inputs in order, one
multiply-add each, then adds blocks of 384), not those of its small-matrix
kernel, which it takes for a few rows (a predict of fewer than
``LEAST_ROWS`` rows, which runs on BLAS, may differ from the same rows in a
larger batch in the last bit).

It runs only where it was measured to pay (:func:`takes`): a CPU with
AVX-512, at least ``LEAST_ROWS`` rows, more than half a vector of outputs
(below that BLAS's time falls with n while the loop's does not: 8 against
25 us for 2 outputs), at most one vector, or two where BLAS would take its
general path. ``network._predict`` and ``network._loss_sum`` (predict,
forward, loss, evaluate) run their last layer through it; training keeps
BLAS. Measured in a compiled loop, 2026-12-05, Intel Xeon Rocket Lake,
OpenBLAS 0.3.31 SkylakeX kernel, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
unset, one thread: ``asv_bench/narrow_probe.py`` and
``docs/performance.md``.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

import llvmlite.binding as ll

from ._blas import NT_COPY_MOST, SMALL_MOST_MNK, copies_transposed

VECTOR_BYTES = 64  # one AVX-512 register
BUFFER_BYTES = 16384  # the stack copy of a slice of W^T (inputs x panels vectors)
LEAST_ROWS = 256
BLOCK_VECTORS = 8  # accumulators per block: 8 rows x 1 vector, or 4 rows x 2


def _target_has_avx512(context):
    codegen = context.codegen()
    features = getattr(codegen, "_tm_features", None)
    if features is None:
        features = ll.get_host_cpu_features().flatten()
    return "+avx512f" in features.split(",")


def available():
    """Whether the CPU the kernels are compiled for has AVX-512: where it
    does not, :func:`narrow_product` leaves every product to BLAS."""
    from numba.core.registry import cpu_target
    return _target_has_avx512(cpu_target.target_context)


def panels(n, itemsize):
    """Vectors per row of C that :func:`narrow_product` uses for n outputs
    of ``itemsize`` bytes: 1 or 2, or 0 where it leaves the product to BLAS:
    at most half a vector (BLAS's time falls with n there while the loop's
    does not), one more than a vector (the second vector would carry one
    value: BLAS was as fast in half the cells measured) and more than two
    vectors (not measured)."""
    lanes = VECTOR_BYTES // itemsize
    return 1 if lanes // 2 < n <= lanes else 2 if lanes + 1 < n <= 2 * lanes else 0


def slice_inputs(npanels):
    """Inputs per slice of W^T in the stack buffer."""
    return BUFFER_BYTES // (npanels * VECTOR_BYTES)


def takes(m, n, k, itemsize, avx512=True):
    """Whether :func:`narrow_product` runs a packed ``(m, k) @ (n, k)^T``
    (on a CPU with AVX-512) rather than leaving it to BLAS. Two vectors a
    row only where BLAS would take its general path (not the copy of W^T
    and the small NN kernel of :func:`fastbp._blas.copies_transposed`, which
    was as fast as the loop: 0.82-1.5x of it, 40 vs 42 us for 1000 rows
    of 100 -> 10 in float64)."""
    p = panels(n, itemsize)
    if p == 2 and copies_transposed(m, n, k):
        return False
    return bool(avx512 and p and m >= LEAST_ROWS and k > 0)


def narrow_function(module, real, npanels):
    """``fastbp_narrow_<f32|f64>_<npanels>(m, n, k, A, W, C)``: ``C[i, j] =
    sum_p A[i, p] W[j, p]`` for row-major packed A (m, k), W (n, k) and
    C (m, n), n at most ``npanels`` vectors; defined once per module
    (linkonce_odr). The inputs go in slices of :func:`slice_inputs`: each
    slice of W^T is copied to the stack, then every row's sums continue
    from the partial sums C holds (stored and loaded exactly), so each
    row's inputs are added in order whatever the slicing."""
    size = 4 if isinstance(real, ir.FloatType) else 8
    tag = "f32" if size == 4 else "f64"
    name = f"fastbp_narrow_{tag}_{npanels}"
    fn = module.globals.get(name)
    if fn is not None:
        return fn
    i64, i32, i1, i8 = ir.IntType(64), ir.IntType(32), ir.IntType(1), ir.IntType(8)
    ptr = real.as_pointer()
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [i64, i64, i64, ptr, ptr, ptr]), name)
    fn.linkage = "linkonce_odr"
    for attr in ("noinline", "nounwind"):
        fn.attributes.add(attr)
    m, n, k, A, W, C = fn.args
    lanes = VECTOR_BYTES // size
    width = npanels * lanes  # the buffer's row: one input's weights, padded
    block = BLOCK_VECTORS // npanels
    step = slice_inputs(npanels)
    vec = ir.VectorType(real, lanes)
    vptr = vec.as_pointer()
    mask_type = ir.VectorType(i1, lanes)
    lane_ints = ir.VectorType(i32, lanes)
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    fma = cgutils.get_or_insert_function(module, ir.FunctionType(vec, [vec] * 3),
                                         f"llvm.fma.v{lanes}{tag}")
    mload = cgutils.get_or_insert_function(
        module, ir.FunctionType(vec, [vptr, i32, mask_type, vec]), f"llvm.masked.load.v{lanes}{tag}.p0")
    mstore = cgutils.get_or_insert_function(
        module, ir.FunctionType(ir.VoidType(), [vec, vptr, i32, mask_type]),
        f"llvm.masked.store.v{lanes}{tag}.p0")
    memset = cgutils.get_or_insert_function(
        module, ir.FunctionType(ir.VoidType(), [i8.as_pointer(), i8, i64, i1]), "llvm.memset.p0.i64")

    buf = builder.alloca(vec, size=i64(BUFFER_BYTES // VECTOR_BYTES), name="wt")
    buf.align = VECTOR_BYTES
    acc = [builder.alloca(vec, name=f"acc{a}") for a in range(BLOCK_VECTORS)]
    zero = ir.Constant(vec, [0.0] * lanes)
    flat = builder.bitcast(buf, ptr)

    def splat(value, ty):
        v = builder.insert_element(ir.Constant(ty, ir.Undefined), value, i32(0))
        return builder.shuffle_vector(v, v, ir.Constant(lane_ints, [0] * lanes))

    ns = splat(n, ir.VectorType(i64, lanes))
    masks = [builder.icmp_signed("<", ir.Constant(ir.VectorType(i64, lanes),
                                                  list(range(q * lanes, (q + 1) * lanes))), ns)
             for q in range(npanels)]

    def rows(first, count, p0, kc):
        # C's rows first .. first + count - 1 over inputs p0 .. p0 + kc - 1:
        # count x npanels accumulators, from 0 or from C's partial sums.
        arow = [builder.gep(A, [builder.add(builder.mul(builder.add(first, i64(r)), k), p0)])
                for r in range(count)]
        crow = [builder.gep(C, [builder.mul(builder.add(first, i64(r)), n)]) for r in range(count)]
        dst = [[builder.bitcast(builder.gep(crow[r], [i64(q * lanes)]), vptr)
                for q in range(npanels)] for r in range(count)]
        start = builder.icmp_signed("==", p0, i64(0))
        for r in range(count):
            for q in range(npanels):
                so_far = builder.call(mload, [dst[r][q], i32(size), masks[q], zero])
                builder.store(builder.select(start, zero, so_far), acc[r * npanels + q])
        with cgutils.for_range(builder, kc) as lp:
            p = lp.index
            wv = [builder.load(builder.gep(buf, [builder.add(builder.mul(p, i64(npanels)), i64(q))]),
                               align=VECTOR_BYTES) for q in range(npanels)]
            for r in range(count):
                x = splat(builder.load(builder.gep(arow[r], [p])), vec)
                for q in range(npanels):
                    a = acc[r * npanels + q]
                    builder.store(builder.call(fma, [x, wv[q], builder.load(a)]), a)
        for r in range(count):
            for q in range(npanels):
                builder.call(mstore, [builder.load(acc[r * npanels + q]), dst[r][q], i32(size),
                                      masks[q]])

    with cgutils.for_range_slice(builder, i64(0), k, i64(step)) as (p0, _):
        left = builder.sub(k, p0)
        kc = builder.select(builder.icmp_signed("<", left, i64(step)), left, i64(step))
        # this slice of W^T into the buffer, `width` values per input, zeros past n
        builder.call(memset, [builder.bitcast(buf, i8.as_pointer()), i8(0),
                              builder.mul(kc, i64(width * size)), i1(0)])
        with cgutils.for_range(builder, n) as lj:
            j = lj.index
            wrow = builder.gep(W, [builder.add(builder.mul(j, k), p0)])
            with cgutils.for_range(builder, kc) as lp:
                p = lp.index
                builder.store(builder.load(builder.gep(wrow, [p])),
                              builder.gep(flat, [builder.add(builder.mul(p, i64(width)), j)]))
        blocks = builder.udiv(m, i64(block))
        with cgutils.for_range(builder, blocks) as lb:
            rows(builder.mul(lb.index, i64(block)), block, p0, kc)
        with cgutils.for_range_slice(builder, builder.mul(blocks, i64(block)), m, i64(1)) as (i, _):
            rows(i, 1, p0, kc)
    builder.ret_void()
    return fn


@intrinsic
def narrow_product(typingctx, C, A, W):
    """``C = A @ W^T`` through the register loop above, returning True, where
    :func:`takes` the shape on this CPU and the three arrays are packed row
    by row with shapes that fit; else False, C untouched (the caller runs
    its BLAS product, which checks the arrays)."""
    arrays = (C, A, W)
    if not all(isinstance(t, types.Array) and t.ndim == 2 for t in arrays):
        return None
    dtype = C.dtype
    if dtype not in (types.float32, types.float64) or A.dtype != dtype or W.dtype != dtype \
            or not C.mutable:
        return None

    def codegen(context, builder, signature, args):
        if not _target_has_avx512(context):
            return cgutils.false_bit
        i64 = ir.IntType(64)
        real = context.get_value_type(dtype)
        size = context.get_abi_sizeof(real)
        views = [make_array(t)(context, builder, v) for t, v in zip(signature.args, args)]
        shapes = [cgutils.unpack_tuple(builder, v.shape, 2) for v in views]
        strides = [cgutils.unpack_tuple(builder, v.strides, 2) for v in views]
        (m, n), (a0, k), (w0, w1) = shapes
        fits = builder.and_(builder.icmp_signed("==", a0, m),
                            builder.and_(builder.icmp_signed("==", w0, n),
                                         builder.icmp_signed("==", w1, k)))
        for (rows, cols), (s0, s1) in zip(shapes, strides):
            packed = builder.and_(builder.icmp_signed("==", s1, i64(size)),
                                  builder.icmp_signed("==", s0, builder.mul(cols, i64(size))))
            fits = builder.and_(fits, packed)
        lanes = VECTOR_BYTES // size
        one, two = (builder.and_(builder.icmp_signed(">", n, i64(low)),
                                 builder.icmp_signed("<=", n, i64(high)))
                    for low, high in ((lanes // 2, lanes), (lanes + 1, 2 * lanes)))
        # two vectors only where BLAS would not copy W^T for its small kernel
        # (m >= LEAST_ROWS > NT_COPY_LEAST_ROWS: copies_transposed's size test)
        general = builder.or_(
            builder.icmp_signed(">", builder.mul(builder.mul(m, n), k), i64(SMALL_MOST_MNK)),
            builder.icmp_signed(">", builder.mul(n, k), i64(NT_COPY_MOST)))
        two = builder.and_(two, general)
        run = builder.and_(
            builder.and_(fits, builder.or_(one, two)),
            builder.and_(builder.icmp_signed(">=", m, i64(LEAST_ROWS)),
                         builder.icmp_signed(">", k, i64(0))))
        with builder.if_then(run):
            with builder.if_else(one) as (narrow, wider):
                for npanels, branch in ((1, narrow), (2, wider)):
                    with branch:
                        builder.call(narrow_function(builder.module, real, npanels),
                                     [m, n, k, views[1].data, views[2].data, views[0].data])
        return run

    return types.boolean(C, A, W), codegen
