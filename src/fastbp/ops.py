"""Leaf kernels: one dense layer, activations, output functions, losses, RNG.

Conventions (see DESIGN.md): outputs first, then inputs, then codes; every
array is a C-contiguous view (usually into a flat buffer); no kernel
allocates. One source serves float32 and float64: scalar constants are cast
to the arrays' dtype (``x.dtype.type(c)``) so that a float32 loop stays in
float32 and vectorises.

Shapes: ``n`` rows (samples in the batch), ``m`` output units, ``k`` input
units. ``W`` is ``(m, k)`` like PyTorch's ``nn.Linear``.
"""
import numpy as np

from . import _blas
from ._blas import gemm_call, serial_below
from numba import types
from numba.extending import overload

from ._fastmath import exp, expm1_64, log1p_exp_neg, smax, smin, softplus64, tanh
from ._jit import KERNEL_ONLY, jit
from ._arrays import packed_rows, packed_values, stack_block, stack_buffer
from ._static import JIT_OPTIONS, array_guard, bound, specialising

# Activation codes (hidden layers; SOFTMAX only as an output function).
IDENTITY = 0
SIGMOID = 1
TANH = 2
RELU = 3
LEAKY_RELU = 4
ELU = 5
SOFTPLUS = 6
SOFTMAX = 7

# Loss codes. Each loss implies its output function (the canonical pairs,
# for which dE/dz_L is (output - target) up to a constant).
CROSS_ENTROPY = 0         # softmax output
BINARY_CROSS_ENTROPY = 1  # sigmoid output
MSE = 2                   # identity output
MAE = 3                   # identity output
HUBER = 4                 # identity output, delta = 1

LEAKY_SLOPE = 0.01
HUBER_DELTA = 1.0


@jit(**KERNEL_ONLY)
def _sigmoid(x, one):
    return one / (one + exp(-x))


@jit
def bias_act_forward(z, b, act):
    """In place: ``z = f_act(z + b)``. z is (n, m), b is (m,)."""
    n, m = z.shape
    one = z.dtype.type(1.0)
    zero = z.dtype.type(0.0)
    slope = z.dtype.type(LEAKY_SLOPE)
    # One loop nest per code, chosen once: a branch per row cost more than
    # the row's work on narrow layers (tanh on (200, 8) float32, 2.6 against
    # 1.7 us); each inner loop is branch-free. The cheap activations run in
    # the bias's pass; the others after it, over the rows of packed_rows,
    # one long vectorised row when z is C-contiguous.
    if act == IDENTITY:
        _add_bias(z, b)
    elif act == RELU:
        for i in range(n):
            r = z[i]
            for j in range(m):
                r[j] = smax(r[j] + b[j], zero)
    elif act == LEAKY_RELU:
        for i in range(n):
            r = z[i]
            for j in range(m):
                x = r[j] + b[j]
                r[j] = x if x > zero else slope * x
    else:
        _add_bias(z, b)
        f = packed_rows(z, z)
        if act == SIGMOID:
            for i in range(f.shape[0]):
                r = f[i]
                for j in range(r.size):
                    r[j] = _sigmoid(r[j], one)
        elif act == TANH:
            for i in range(f.shape[0]):
                r = f[i]
                for j in range(r.size):
                    r[j] = tanh(r[j])
        elif act == ELU:
            for i in range(f.shape[0]):
                r = f[i]
                for j in range(r.size):
                    # fastbp._fastmath's expm1 (float64, within a few ulp of
                    # np.expm1), which vectorises: libm's, one call an
                    # element, made an ELU network's step 2.5x its tanh one's
                    # (64-32-32-10 float32: 25.4-27.3 against 10.4-10.8 us).
                    x = r[j]
                    r[j] = x if x > zero else r.dtype.type(expm1_64(np.float64(x)))
        elif act == SOFTPLUS:
            for i in range(f.shape[0]):
                r = f[i]
                for j in range(r.size):
                    # fastbp._fastmath's softplus (float64, within a few ulp
                    # of NumPy's logaddexp(0, x)), which vectorises, as ELU's.
                    r[j] = r.dtype.type(softplus64(np.float64(r[j])))


# Layers narrower than this add their bias column by column (see _add_bias).
NARROW_BIAS = 4


@jit(inline="always")
def _add_bias(z, b):
    # z += b row by row; for fewer than NARROW_BIAS columns, column by
    # column instead: a row of 2 or 3 values was a loop of its own (200 x 2
    # float32 0.31 against 0.09 us, 32 x 2 0.056 against 0.015 us; at 4
    # columns the two were even, at 8 rows won). The same sums either way.
    n, m = z.shape
    if m < NARROW_BIAS:
        for j in range(m):
            bj = b[j]
            for i in range(n):
                z[i, j] += bj
    else:
        for i in range(n):
            r = z[i]
            for j in range(m):
                r[j] += b[j]


@jit
def act_backward(dz, a, act):
    """In place: ``dz *= f'_act(z)``, with f' written through a = f(z).

    dz is (n, m), a is (n, m). Every activation's derivative is a function of
    its output, so z need not be stored: sigmoid a(1-a), tanh 1-a^2, ReLU
    [a>0], ELU a+1 below 0, softplus 1-exp(-a) (= sigmoid(z)).
    """
    one = dz.dtype.type(1.0)
    d, y = packed_rows(dz, a), packed_rows(a, dz)  # one long row each when both are packed
    for i in range(d.shape[0]):
        _act_backward_row(d[i], y[i], act, one)


@jit(inline="always")
def _act_backward_row(d, a, act, scale):
    # One row of act_backward with f(z) = scale * a (scale is 1 there; the
    # keep probability under dropout, where a holds the scaled activation).
    m = d.size
    one = d.dtype.type(1.0)
    zero = d.dtype.type(0.0)
    slope = d.dtype.type(LEAKY_SLOPE)
    # The code branch is per row, so each inner loop is branch-free.
    if act == SIGMOID:
        for j in range(m):
            y = scale * a[j]
            d[j] *= y * (one - y)
    elif act == TANH:
        for j in range(m):
            y = scale * a[j]
            d[j] *= one - y * y
    elif act == RELU:
        for j in range(m):
            d[j] = d[j] if a[j] > zero else zero
    elif act == LEAKY_RELU:
        for j in range(m):
            d[j] = d[j] if a[j] > zero else slope * d[j]
    elif act == ELU:
        for j in range(m):
            d[j] = d[j] if a[j] > zero else d[j] * (scale * a[j] + one)
    elif act == SOFTPLUS:
        for j in range(m):   # (fastbp._fastmath's expm1: vectorised, as ELU's forward)
            d[j] *= d.dtype.type(-expm1_64(-np.float64(scale * a[j])))


# The kernels' twins of the activation kernels: a literal activation code
# compiles that activation only (see fastbp._static; the branches of the
# inlined _act_backward_row are pruned too, Numba prunes again after
# inlining); -1 and the run-time code (the last argument) for a network whose
# hidden layers differ.
bias_act = specialising(bias_act_forward, "act", "bias_act_forward for the kernels: ``bias_act(z, b,"
                        " act, runtime_act)`` (see fastbp._static).", fallback="runtime_act")
act_grad = specialising(act_backward, "act", "act_backward for the kernels: ``act_grad(dz, a, act,"
                        " runtime_act)`` (see fastbp._static).", fallback="runtime_act",
                        optimised_alone=True)


# Inverted dropout. The mask holds, per unit, the factor applied to its
# activation: 0 (dropped) or 1 / (1 - rate) (kept), so the expected
# activation is unchanged and inference needs no rescaling.
_TWO53 = 9007199254740992.0
_GOLDEN = 0x9E3779B97F4A7C15


@jit
def dropout_forward(a, mask, rate, state, first_row):
    """In place: drop each unit of ``a`` (n, m) with probability ``rate`` and
    scale the kept ones by ``1 / (1 - rate)``; the factors go to ``mask``.

    The bits come from a counter-based hash (splitmix64's finaliser of
    ``base + index``), ``base`` being one draw from the splitmix64 ``state``
    (uint64[1], advanced once per call), so the loop has no carried state.
    Row i of ``a`` is row ``first_row + i`` of its batch: a process holding
    rows 40..59 of a batch (``first_row`` 40) draws the very masks that one
    process holding the whole batch draws for them.
    """
    n, m = a.shape
    keep = 1.0 - rate
    threshold = np.uint64(keep * _TWO53)
    scale = a.dtype.type(1.0 / keep)
    zero = a.dtype.type(0.0)
    base = rng_next(state)
    golden = np.uint64(_GOLDEN)
    for i in range(n):
        row = a[i]
        f = mask[i]
        first = np.uint64((first_row + i) * m)
        for j in range(m):
            s = base + (first + np.uint64(j)) * golden
            s = (s ^ (s >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            s = (s ^ (s >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            s = s ^ (s >> np.uint64(31))
            factor = scale if (s >> np.uint64(11)) < threshold else zero
            f[j] = factor
            row[j] *= factor


@jit
def dropout_backward(dz, a, mask, rate, act):
    """In place: the delta through dropout and the activation,
    ``dz *= mask * f'_act(z)``, where ``a`` is the dropped activation
    ``mask * f(z)`` left by :func:`dropout_forward` with this ``rate``, so a
    kept unit's ``f(z) = (1 - rate) a``; dropped units get 0."""
    keep = dz.dtype.type(1.0 - rate)
    for i in range(dz.shape[0]):
        d = dz[i]
        f = mask[i]
        for j in range(d.size):
            d[j] *= f[j]
        _act_backward_row(d, a[i], act, keep)


# OpenBLAS 0.3 runs a product of at most 65536 * 4 multiply-adds on the
# calling thread by itself (interface/gemm.c, SMP_THRESHOLD_MIN *
# GEMM_MULTITHREAD_THRESHOLD); only larger ones need fastbp's decision.
BLAS_SERIAL = _blas.BLAS_SERIAL


@jit(inline="always")
def serial_product(m, n, k):
    """Whether fastbp runs an (m, k) x (k, n) product on one thread itself.

    Not when OpenBLAS already does (m n k <= BLAS_SERIAL), nor for products
    large enough to pay for threads (:func:`fastbp.threads.serial_below`).
    :func:`gemm` makes the same decision.
    """
    return BLAS_SERIAL < m * n * k < serial_below()


@jit(inline="always")
def gemm(C, A, B, trans_a, trans_b, alpha, beta):
    """``C = alpha op(A) @ op(B) + beta C`` for C-contiguous row-major arrays.

    C is (m, n), op(A) (m, k), op(B) (k, n), all of one dtype. Unlike np.dot
    it can add into C, which lets an SGD step go straight into the weights;
    it runs on the BLAS chosen in :mod:`fastbp._blas` (NumPy's own). A product
    of fewer than :func:`fastbp.threads.serial_below` multiply-adds runs on
    the calling thread: the pool is set to one thread for it and back after.
    Only a caller that found the pool above one thread sets it back, so two
    threads doing this at once leave it as they found it.
    Raises ValueError when the shapes do not fit or an array is not
    C-contiguous (O(1): BLAS would read the wrong memory).
    """
    gemm_call(C, A, B, trans_a, trans_b, alpha, beta)


@jit(inline="always")
def dense_forward(out, inp, W, b, act):
    """``out = f_act(inp @ W.T + b)``.

    out is (n, m), inp is (n, k), W is (m, k), b is (m,).
    """
    _dense_forward(out, inp, W, b, act, act)


# The dense layer's bodies, for the kernels: ``act`` (``act_in``) may be a
# compile-time constant, or -1 with the code in ``runtime_act`` (fastbp._static).
@jit(inline="always")
def _dense_forward(out, inp, W, b, act, runtime_act):
    gemm_call(out, inp, W, False, True, 1.0, 0.0)
    bias_act(out, b, act, runtime_act)


@jit(inline="always")
def dense_backward(dinp, dW, db, dout, inp, W, act_in):
    """Gradients of one dense layer from ``dout = dE/d(pre-activation)``.

    dinp is (n, k) or (0, k) to skip it (first layer), dW is (m, k), db is
    (m,), dout is (n, m), inp is (n, k), W is (m, k). ``dinp`` becomes the
    previous layer's delta, ``(dout @ W) * f'_{act_in}``, where ``inp`` is
    that layer's output activation.
    """
    _dense_backward(dinp, dW, db, dout, inp, W, act_in, act_in)


@jit(inline="always")
def _dense_backward(dinp, dW, db, dout, inp, W, act_in, runtime_act):
    gemm_call(dW, dout, inp, True, False, 1.0, 0.0)
    bias_grad(db, dout)
    if dinp.shape[0] > 0:
        gemm_call(dinp, dout, W, False, False, 1.0, 0.0)
        act_grad(dinp, inp, act_in, runtime_act)


@jit(inline="always")
def dense_backward_sgd(dinp, W, b, dout, inp, act_in, lr, decay):
    """:func:`dense_backward` fused with the SGD step of this layer.

    ``dinp = (dout @ W) * f'`` with the old W, then ``W = decay W - lr dout^T
    inp`` as one GEMM accumulating into W and ``b -= lr sum(dout)``: the
    gradient is never written out. ``decay`` is 1 for plain SGD and
    ``1 - lr alpha / n`` for an L2 penalty ``alpha/(2n) |W|^2`` (biases are
    not penalised). Shapes as in dense_backward.
    """
    _dense_backward_sgd(dinp, W, b, dout, inp, act_in, act_in, lr, decay)


@jit(inline="always")
def _dense_backward_sgd(dinp, W, b, dout, inp, act_in, runtime_act, lr, decay):
    if dinp.shape[0] > 0:
        gemm_call(dinp, dout, W, False, False, 1.0, 0.0)
        act_grad(dinp, inp, act_in, runtime_act)
    gemm_call(W, dout, inp, True, False, -lr, decay)
    bias_sgd(b, dout, lr)


@jit(inline="always")
def bias_add(z, b):
    """In place ``z += b``: :func:`bias_act_forward` for the identity, as a
    loop of its own (an output layer's, before its output function); by
    rows, or by columns for fewer than NARROW_BIAS of them."""
    _add_bias(z, b)


@jit(inline="always")
def bias_grad(db, dout):
    """``db = sum(dout, axis=0)``: a layer's bias gradient (:func:`column_sums`)."""
    column_sums(db, dout, 1.0, 0.0)


@jit(inline="always")
def bias_sgd(b, dout, lr):
    """``b -= lr * sum(dout, axis=0)``: the bias half of an SGD step
    (:func:`column_sums`)."""
    column_sums(b, dout, -lr, 1.0)


# Rows summed into a partial sum before it joins the column's total (in
# column_sums): a float32 running total over n rows errs by up to n units of
# rounding, which repeated values reach (131,072 rows of one value: 1.3e-3,
# review HGE); in blocks, by about BLOCK + n / BLOCK units.
SUM_BLOCK_ROWS = 128


@jit(**KERNEL_ONLY)
def column_sums(out, d, scale, keep):
    """``out = keep * out + scale * sum(d, axis=0)`` for d (n, m), out (m,),
    ``keep`` 0 or 1 (0: out is only written, whatever it held).

    Summed row by row into ``out``, a narrow layer's sums are a chain of
    loads and stores through memory (the compiler cannot keep them in
    registers, not knowing that out and d do not overlap): 0.7 us for
    (200, 8), up to 3.4 us for (200, 32) float32. Where d's rows lie packed
    and m divides the length of a stack buffer of eight vectors
    (:func:`fastbp._arrays.stack_buffer`, m at most half of it), ``r = len //
    m`` rows at a time are added to that buffer as one flat run of values,
    its r partial sums of each column folded, and ``out`` updated once:
    0.15 and 0.23 us. Otherwise the rows are summed in a row of sums on the
    stack (:func:`fastbp._arrays.stack_block`, 2,048 float32 or 1,024
    float64 columns at a time), and ``out`` updated once per column: adding
    each row's share to the bias itself rounded it to the bias's unit, and
    a float32 bias of order 1 lost every share under half of it (the step
    of a batch of 131,072 rows was off by 100 %, review HGD). Either way
    the rows are summed ``SUM_BLOCK_ROWS`` (or that many runs) at a time,
    each block's sums then added to the totals. The order of the sums is
    fixed by the shapes, so every kernel gets the same bits, and bias_grad
    then sgd_update gives bias_sgd's."""
    n, m = d.shape
    f = packed_values(d)
    acc = stack_buffer(d)
    size = acc.size
    step = out.dtype.type(scale)
    if m > 0 and f.size == n * m and size % m == 0 and 2 * m <= size:
        total = stack_buffer(d)
        for t in range(size):
            total[t] = 0
        rows = size // m
        chunks = n // rows
        # (loops counted from 0: a range from c0 kept acc out of registers, 10x slower)
        for g in range((chunks + SUM_BLOCK_ROWS - 1) // SUM_BLOCK_ROWS):
            for t in range(size):
                acc[t] = 0
            first = g * SUM_BLOCK_ROWS
            for c in range(smin(SUM_BLOCK_ROWS, chunks - first)):
                base = (first + c) * size
                for t in range(size):
                    acc[t] += f[base + t]
            for t in range(size):
                total[t] += acc[t]
        base = chunks * size
        for t in range(n * m - base):
            total[t] += f[base + t]
        for j in range(m):
            s = total[j]
            for q in range(1, rows):
                s += total[q * m + j]
            out[j] = step * s if keep == 0 else out[j] + step * s
        return
    part, total = stack_block(out), stack_block(out)   # (out's precision, as the row loop had)
    for j0 in range(0, m, part.size):  # a block of columns at a time, each summed over every row
        w = smin(part.size, m - j0)
        for t in range(w):
            total[t] = 0
        for b in range((n + SUM_BLOCK_ROWS - 1) // SUM_BLOCK_ROWS):
            for t in range(w):
                part[t] = 0
            first = b * SUM_BLOCK_ROWS
            for r in range(smin(SUM_BLOCK_ROWS, n - first)):
                row = d[first + r, j0:j0 + w]
                for t in range(w):
                    part[t] += row[t]
            for t in range(w):
                total[t] += part[t]
        for t in range(w):
            out[j0 + t] = step * total[t] if keep == 0 else out[j0 + t] + step * total[t]


# A CSR batch: the tuple ``(data, indices, indptr, rows, first, n)`` of a
# scipy.sparse.csr_matrix's arrays and a row selection: its row i (0 <= i < n)
# is CSR row ``rows[first + i]``, or ``first + i`` when ``rows`` is empty. A
# shuffled batch is then ``(..., perm, start, nb)``: no gathering, no
# densifying. Only the first layer reads inputs, so only it has sparse kernels.
@jit(inline="always")
def _csr_span(x, i):
    # (lo, hi): row i of the CSR batch x is data[lo:hi] at columns indices[lo:hi].
    rows = x[3]
    r = rows[x[4] + i] if rows.size > 0 else x[4] + i
    return x[2][r], x[2][r + 1]


@jit
def sparse_forward(out, x, W, b, act):
    """:func:`dense_forward` for a CSR batch x: ``out = f_act(x @ W.T + b)``.

    out is (n, m), x a CSR batch of n rows and k columns, W is (m, k), b (m,);
    O(nnz(x) m), reading only the columns of W that x uses.
    """
    sparse_product(out, x, W)
    bias_act_forward(out, b, act)


@jit
def sparse_product(out, x, W):
    """``out = x @ W.T`` for a CSR batch x (shapes as in :func:`sparse_forward`)."""
    n, m = out.shape
    data, indices = x[0], x[1]
    zero = out.dtype.type(0.0)
    # Unit by unit: W's row j (k values) stays in cache while every row of
    # the batch gathers from it; row by row, each non-zero would touch m
    # cache lines m * k apart.
    for j in range(m):
        w = W[j]
        for i in range(n):
            lo, hi = _csr_span(x, i)
            s = zero
            for p in range(lo, hi):
                s += data[p] * w[indices[p]]
            out[i, j] = s


@jit
def sparse_backward(dW, db, dout, x):
    """:func:`dense_backward` of a first layer (no delta passed back) for a
    CSR batch x: ``dW = dout^T x``, ``db = sum(dout)``; dW is (m, k), db (m,),
    dout (n, m). dW is zeroed, then only x's non-zeros add to it."""
    sparse_weight_grad(dW, dout, x)
    bias_grad(db, dout)


@jit
def sparse_weight_grad(dW, dout, x):
    """``dW = dout^T x`` for a CSR batch x: the weight half of :func:`sparse_backward`."""
    n, m = dout.shape
    data, indices = x[0], x[1]
    for j in range(m):
        w = dW[j]
        for c in range(w.size):
            w[c] = 0
    for j in range(m):  # unit by unit, as in sparse_product
        w = dW[j]
        for i in range(n):
            lo, hi = _csr_span(x, i)
            d = dout[i, j]
            for p in range(lo, hi):
                w[indices[p]] += d * data[p]


@jit
def sparse_backward_sgd(W, b, dout, x, lr, decay):
    """:func:`dense_backward_sgd` of a first layer for a CSR batch x:
    ``W = decay W - lr dout^T x`` (only x's columns change when decay is 1)
    and ``b -= lr sum(dout)``."""
    sparse_weight_sgd(W, dout, x, lr, decay)
    bias_sgd(b, dout, lr)


@jit
def sparse_weight_sgd(W, dout, x, lr, decay):
    """``W = decay W - lr dout^T x`` for a CSR batch x: the weight half of
    :func:`sparse_backward_sgd`."""
    n, m = dout.shape
    data, indices = x[0], x[1]
    step = W.dtype.type(lr)
    if decay != 1.0:
        f = W.dtype.type(decay)
        for j in range(m):
            w = W[j]
            for c in range(w.size):
                w[c] *= f
    for j in range(m):  # unit by unit, as in sparse_product
        w = W[j]
        for i in range(n):
            lo, hi = _csr_span(x, i)
            d = step * dout[i, j]
            for p in range(lo, hi):
                w[indices[p]] -= d * data[p]


# The first layer with its weights stored transposed, Wt = W^T (k, m): what
# a fit on CSR data runs (fastbp.train keeps the first layer's block of the
# parameters, and of the optimizer's state, in that order for the epoch).
# Each non-zero x_ic then reads or updates Wt's row c, m values side by
# side, where in W it touched m values k apart (a fit on 200,000 x 5000 at
# 1 %, 5000-32-10, batch 32, float32: 185 against 25 us a step in order).
# Every sum runs in the order of the kernels above (row by row, non-zero by
# non-zero, each unit's terms in turn), so the results are theirs bit for bit.
# Where a layer has at least TILE units, the product keeps TILE outputs of
# a row in registers while it runs through the row's non-zeros (a stack
# buffer of a width known when compiling, which LLVM vectorises and keeps in
# vector registers; four or eight of them), instead of adding each non-zero's
# terms to the row in memory: each row's last tile overlaps the one before
# when TILE does not divide m, its sums the same, written again. The
# gradient and the SGD step keep the row of dout's TILE values in registers
# where TILE divides m. Per element the same sums in the same order: the
# same bits. 50,000 x 5,000 at 1 % (2026-12-04, the 2-vCPU AMD EPYC,
# OpenBLAS variables unset, ms a call, three alternating processes each,
# before / after): the product with 64 units 49-60 / 34-37 float64 and
# 33-35 / 14-19 float32, with 128 units 91-103 / 55-59 float64; the
# gradient with 64 units 37-59 / 35-50 float64 and 26-36 / 15-26 float32.
# A fit on it (float32, batch 32) took 54-56 / 41-49 us a step with 64
# hidden units, 91-108 / 75-84 with 128.
TILE = 64  # (the stack buffer holds 64 float64)


@jit
def sparse_product_t(out, x, Wt):
    """:func:`sparse_product` with ``Wt = W.T`` (k, m): ``out = x @ Wt``."""
    n, m = out.shape
    data, indices = x[0], x[1]
    zero = out.dtype.type(0.0)
    if m >= TILE:
        acc = stack_buffer(out)
        for i in range(n):
            o = out[i]
            lo, hi = _csr_span(x, i)
            for j0 in range(0, m, TILE):
                j = smin(j0, m - TILE)
                # (views from column j: indexed from 0, no wraparound to
                # compute, so the tile's loads stay contiguous vectors)
                oj = o[j:]
                for t in range(TILE):
                    acc[t] = zero
                for p in range(lo, hi):
                    v = data[p]
                    w = Wt[indices[p]][j:]
                    for t in range(TILE):
                        acc[t] += v * w[t]
                for t in range(TILE):
                    oj[t] = acc[t]
        return
    for i in range(n):
        o = out[i]
        for j in range(m):
            o[j] = zero
        lo, hi = _csr_span(x, i)
        for p in range(lo, hi):
            v = data[p]
            w = Wt[indices[p]]
            for j in range(m):
                o[j] += v * w[j]


@jit
def sparse_weight_grad_t(dWt, dout, x):
    """:func:`sparse_weight_grad` with ``dWt = dW.T`` (k, m): ``dWt = x^T dout``."""
    m = dout.shape[1]
    for c in range(dWt.shape[0]):
        w = dWt[c]
        for j in range(m):
            w[j] = 0
    _sparse_add_t(dWt, dout, x, dout.dtype.type(1.0), False)


@jit
def sparse_weight_sgd_t(Wt, dout, x, lr, decay):
    """:func:`sparse_weight_sgd` with ``Wt = W.T`` (k, m): ``Wt = decay Wt - lr x^T dout``."""
    m = dout.shape[1]
    if decay != 1.0:
        f = Wt.dtype.type(decay)
        for c in range(Wt.shape[0]):
            w = Wt[c]
            for j in range(m):
                w[j] *= f
    _sparse_add_t(Wt, dout, x, Wt.dtype.type(lr), True)


@jit(inline="always")
def _sparse_add_t(Wt, dout, x, step, sgd):
    # Wt[c] += dout[i] * x_ic for every non-zero, row by row (sgd: Wt[c] -=
    # (step * dout[i]) * x_ic); dout's row tile by tile where TILE divides m.
    n, m = dout.shape
    data, indices = x[0], x[1]
    if m % TILE == 0:
        acc = stack_buffer(dout)
        for i in range(n):
            d = dout[i]
            lo, hi = _csr_span(x, i)
            for j in range(0, m, TILE):
                for t in range(TILE):
                    acc[t] = step * d[j + t] if sgd else d[j + t]
                for p in range(lo, hi):
                    v = data[p]
                    w = Wt[indices[p]]
                    for t in range(TILE):
                        if sgd:
                            w[j + t] -= acc[t] * v
                        else:
                            w[j + t] += acc[t] * v
        return
    for i in range(n):
        d = dout[i]
        lo, hi = _csr_span(x, i)
        for p in range(lo, hi):
            v = data[p]
            w = Wt[indices[p]]
            for j in range(m):
                if sgd:
                    w[j] -= (step * d[j]) * v
                else:
                    w[j] += d[j] * v


@jit
def dense_forward_ref(out, inp, W, b, act):
    """Reference for :func:`dense_forward`: explicit loops, no BLAS."""
    n, k = inp.shape
    m = W.shape[0]
    for i in range(n):
        for j in range(m):
            s = out.dtype.type(0.0)
            for p in range(k):
                s += inp[i, p] * W[j, p]
            out[i, j] = s
    bias_act_forward(out, b, act)


@jit
def dense_backward_ref(dinp, dW, db, dout, inp, W, act_in):
    """Reference for :func:`dense_backward`: explicit loops, no BLAS."""
    n, m = dout.shape
    k = inp.shape[1]
    for j in range(m):
        db[j] = 0
        for p in range(k):
            dW[j, p] = 0
        for i in range(n):
            db[j] += dout[i, j]
            for p in range(k):
                dW[j, p] += dout[i, j] * inp[i, p]
    if dinp.shape[0] > 0:
        for i in range(n):
            for p in range(k):
                s = dinp.dtype.type(0.0)
                for j in range(m):
                    s += dout[i, j] * W[j, p]
                dinp[i, p] = s
        act_grad(dinp, inp, act_in, act_in)


@jit
def output_forward(out, z, act):
    """Output function: ``out = softmax(z)`` row-wise, ``sigmoid(z)`` or ``z``.

    out and z are (n, m); act is SOFTMAX, SIGMOID or IDENTITY.
    """
    n, m = z.shape
    one = z.dtype.type(1.0)
    # The exps and sigmoids run over the rows of packed_rows: one long
    # vectorised row when out and z are C-contiguous (a softmax row of 2 or
    # 10 was LLVM's scalar remainder).
    if act == SOFTMAX:
        for i in range(n):
            zmax = z[i, 0]
            for j in range(1, m):
                zmax = smax(zmax, z[i, j])
            for j in range(m):
                out[i, j] = z[i, j] - zmax
        f = packed_rows(out, z)
        for i in range(f.shape[0]):
            r = f[i]
            for j in range(r.size):
                r[j] = exp(r[j])
        for i in range(n):
            s = 0.0   # in float64 whatever the dtype (a float32 sum of 10,000 classes was 5e-5 off)
            for j in range(m):
                s += np.float64(out[i, j])
            inv = z.dtype.type(1.0 / s)
            for j in range(m):
                out[i, j] *= inv
    else:
        fo, fz = packed_rows(out, z), packed_rows(z, out)
        for i in range(fo.shape[0]):
            ro, rz = fo[i], fz[i]
            if act == SIGMOID:
                for j in range(ro.size):
                    ro[j] = _sigmoid(rz[j], one)
            else:
                for j in range(ro.size):
                    ro[j] = rz[j]


@jit
def output_of(loss):
    """The output function that a loss code is paired with."""
    if loss == CROSS_ENTROPY:
        return SOFTMAX
    if loss == BINARY_CROSS_ENTROPY:
        return SIGMOID
    return IDENTITY


def outputs_for_loss(out, z, loss):
    """``output_forward(out, z, output_of(loss))``, for the kernels: with a
    literal ``loss`` (see :mod:`fastbp._static`) only its output function
    compiles."""


def _outputs_generic(out, z, loss):
    output_forward(out, z, output_of(loss))


@overload(outputs_for_loss, prefer_literal=True, strict=False, jit_options=JIT_OPTIONS)
def _outputs_for_loss_typed(out, z, loss):
    if isinstance(loss, types.IntegerLiteral):
        return bound(output_forward, "act", output_of.py_func(loss.literal_value), rename="loss",
                     dtype=out.dtype)
    return _outputs_generic


@jit(inline="always")
def softmax_pivot(z, out, i):
    """Row i's largest logit k (the first, as ``argmax``) and ``t = sum_{j != k}
    out_j / out_k``, so that ``logsumexp(z_i) = z_k + log1p(t)``: the
    cross-entropy kernels' common first step (weighted or not, the same bits).

    Without branches on the data: the index follows the running maximum by
    arithmetic, and out_k enters the sum times 0 (outputs are finite and not
    negative, so adding that +0 changes no bit), where ``if z_j > z_k: k = j``
    and ``if j != k`` mispredicted on the rows of a real batch (a (32, 10)
    float32 loss over changing batches: 1.0-1.3 against 0.5-0.7 us; skipping
    k by two loops, one each side, their ends mispredict in turn). The sum
    and the quotient are taken in float64 whatever the dtype: in float32
    each term went through a float32 product and addition and back (the
    (32, 10) float32 loss in cache: 0.50 against 0.62 us, float64 unchanged)."""
    m = z.shape[1]
    k = 0
    best = z[i, 0]
    for j in range(1, m):
        v = z[i, j]
        k += np.int64(v > best) * (j - k)
        best = smax(best, v)
    rest = 0.0
    for j in range(m):
        rest += np.float64(out[i, j]) * np.float64(j != k)
    return k, rest / np.float64(out[i, k])


@jit(inline="always")
def cross_entropy_label_row(total, q, z, out, label, i, c):
    """Row i's cross-entropy against a class label, times the row's weight
    ``c``, added to ``total``: ``(z_k - z_label) + log1p(t)`` (k and t from
    :func:`softmax_pivot`), in that order, so that a tiny loss keeps its
    relative accuracy whatever the logits' size. Returns ``(total, q)``.

    A row of weight 1 leaves its ``log1p(t)`` in ``q`` instead
    (:func:`gather_log1p`). The unweighted and weighted kernels both call
    this and :func:`cross_entropy_target_row` (c = 1.0 multiplies exactly),
    so weights of ones give the unweighted bits, and a label the bits of its
    one-hot row. A label outside 0..m-1 (written since the labels were
    checked, see network._label_in) makes the row's loss NaN, never read
    past the row."""
    k, t = softmax_pivot(z, out, i)
    if label < 0 or label >= z.shape[1]:
        return total + np.nan, q
    total += c * (np.float64(z[i, k]) - z[i, label])
    if c == 1.0:
        return gather_log1p(total, q, t)
    return total + c * np.log1p(t), q


@jit(inline="always")
def cross_entropy_target_row(total, q, z, out, y, i, c):
    """:func:`cross_entropy_label_row` for a row of targets ``y`` (m,):
    ``sum_j y_j ((z_k - z_j) + log1p(t))``; a row of weight 1 whose targets
    sum to 1 (one-hot, or soft) gathers its ``log1p(t)`` as a label's does,
    other rows take theirs in each term."""
    m = z.shape[1]
    k, t = softmax_pivot(z, out, i)
    r = 0.0
    for j in range(m):
        r += y[j]
    # (a target of 0 adds nothing, also where its logit is infinite or the
    # difference overflows: 0 inf was NaN where the label gave a finite loss)
    if c == 1.0 and r == 1.0:
        for j in range(m):
            if y[j] != 0:
                total += c * (y[j] * (np.float64(z[i, k]) - z[i, j]))
        return gather_log1p(total, q, t)
    tail = np.log1p(t)
    for j in range(m):
        if y[j] != 0:
            total += c * (y[j] * ((np.float64(z[i, k]) - z[i, j]) + tail))
    return total, q


@jit(inline="always")
def gather_log1p(total, q, t):
    """The cross-entropy kernels' rows' ``log1p(t)`` terms as one: ``1 + q``
    is the product of the rows' ``1 + t``, updated as ``q + t + q t`` (which
    keeps a small q's relative accuracy), and the kernel adds ``log1p(q)``
    once per batch, where a row of 2 or 10 outputs cost less than its own
    call to libm. q is folded into the total before it could overflow (t <=
    m - 1), and an inf or NaN t reaches the total. Returns ``(total, q)``."""
    q += t + q * t
    if q > 1e200:
        total += np.log1p(q)
        q = 0.0
    return total, q


@jit
def loss_forward(z, out, y, loss):
    """Mean loss, as float64, of logits z (n, m) with outputs out = g(z) (n, m)
    against targets y: (n, m), or for cross-entropy (n,) class labels.

    PyTorch's conventions: cross-entropy is the mean over rows of
    ``-sum_j y_j log softmax(z)_j`` (``-log softmax(z)_y`` for a label y);
    binary cross-entropy (from logits), MSE, MAE and Huber are means over all
    n*m elements. Stable for any z, and accurate even when the loss is tiny,
    down to a floor: the outputs' exp stops at e^-87 in float32 and e^-708
    in float64 (:mod:`fastbp._fastmath`), so a cross-entropy whose true value
    lies below that (a margin of more than 87 or 708 between the label's
    logit and the others) reads as about e^-87 = 1.6e-38 or e^-708; and a
    sigmoid output there is that floor, not 0. Cross-entropy takes its exps
    from the outputs: at the row's largest logit
    k, ``logsumexp(z) = z_k + log1p(sum_{j != k} out_j / out_k)``, where
    ``out_k >= 1/m``; BCE is ``max(z, 0) - z y + log1p(exp(-|z|))``.

    Labels (1-D y, int64 or the dtype of z holding whole numbers) are read
    directly, O(n) memory; Numba compiles them as their own specialisation
    (``y.ndim`` is a compile-time constant, so each specialisation holds only
    its own branch). The caller checks that they lie in 0..m-1.
    """
    n, m = z.shape
    total = 0.0
    if loss != CROSS_ENTROPY:
        if y.ndim == 2:
            # Element-wise losses: over one long row when z and y are packed
            # (a row of a few outputs left the loop to its scalar remainder),
            # the same terms in the same order as row by row.
            zf, yf = packed_rows(z, y), packed_rows(y, z)
            for i in range(zf.shape[0]):
                total = _elementwise_sum(total, zf[i], yf[i], loss, 1.0)
        return total / (n * m)
    q = 0.0  # the rows' log1p terms, gathered (gather_log1p)
    for i in range(n):
        if y.ndim == 1:
            total, q = cross_entropy_label_row(total, q, z, out, np.int64(y[i]), i, 1.0)
        else:
            total, q = cross_entropy_target_row(total, q, z, out, y[i], i, 1.0)
    total += np.log1p(q)
    return total / n


@jit(inline="always")
def _elementwise_loss(zv, yv, loss):
    # One element's binary cross-entropy, MSE, MAE or Huber term, in float64.
    x = np.float64(zv)
    t = np.float64(yv)
    if loss == BINARY_CROSS_ENTROPY:
        # (max(x, 0) - x t) + log1p(e^-|x|), in that order: a confident,
        # correct logit's term stays accurate relative to itself (no libm
        # calls: fastbp._fastmath's exp and log1p)
        return (smax(x, 0.0) - x * t) + log1p_exp_neg(abs(x))
    if loss == MSE:
        return (x - t) * (x - t)
    if loss == MAE:
        return abs(x - t)
    d = abs(x - t)  # HUBER
    return 0.5 * d * d if d <= HUBER_DELTA else d - 0.5 * HUBER_DELTA


@jit(inline="always")
def _elementwise_sum(total, z, y, loss, c):
    # total plus c times _elementwise_loss over two rows z and y, in order
    # (c is 1 in the unweighted kernel, a row's weight in fastbp._weighted,
    # so weights of ones give these bits; fastbp.sklearn's L-BFGS follows
    # scikit-learn's iterations: four partial sums, 0.34 against 0.38 us on
    # (200, 2) float32, changed them).
    if loss == BINARY_CROSS_ENTROPY:
        # The terms a block at a time into stack scratch, in a loop that
        # vectorises (softplus's exp and log1p are fastbp's own), then added
        # in order: the same terms and sums as one element at a time, where
        # libm's exp and log1p an element made the loss of a (32, 10) block
        # 3.4 us of an 11.3 us 64-32-10 step (0.92 us this way).
        terms = stack_buffer(0.0)
        for s in range(0, z.size, terms.size):
            e = smin(z.size, s + terms.size)
            zs, ys = z[s:e], y[s:e]
            for j in range(e - s):
                terms[j] = _elementwise_loss(zs[j], ys[j], loss)
            for j in range(e - s):
                total += c * terms[j]
        return total
    for j in range(z.size):
        total += c * _elementwise_loss(z[j], y[j], loss)
    return total


@jit
def loss_backward(dz, out, y, loss):
    """``dz = dE/dz`` for the mean loss, from the outputs ``out = g(z)``.

    dz and out are (n, m); y is (n, m), or for cross-entropy (n,) class
    labels (as in :func:`loss_forward`). For the canonical pairs this is the
    residual ``out - y`` scaled by the mean: softmax/CE ``(sum(y) out - y) / n``
    (= ``(out - y) / n`` for one-hot y or a label), sigmoid/BCE ``(out - y) / (n m)``,
    MSE ``2 (out - y) / (n m)``, MAE ``sign(out - y) / (n m)``, Huber
    ``clip(out - y, -1, 1) / (n m)``.
    """
    n, m = dz.shape
    zero = dz.dtype.type(0.0)
    one = dz.dtype.type(1.0)
    scale = one / dz.dtype.type(n if loss == CROSS_ENTROPY else n * m)
    if loss != CROSS_ENTROPY and y.ndim == 2:
        # Element-wise: one long row when dz, out and y are all packed (rows
        # of a few outputs ran in the loop's scalar remainder: MSE on
        # (200, 2) 0.43 us), else row by row; the same values either way.
        d, o, t = packed_rows(dz, y), packed_rows(out, y), packed_rows(y, dz)
        if not (d.shape[0] == o.shape[0] == t.shape[0]):
            d, o, t = dz, out, y
        for i in range(d.shape[0]):
            _elementwise_delta(d[i], o[i], t[i], loss, scale)
        return
    for i in range(n):
        if loss == CROSS_ENTROPY and y.ndim == 1:
            # Bit for bit the one-hot row's: sum(y) = 1, and y_j is 1 or 0.
            label = np.int64(y[i])
            for j in range(m):
                dz[i, j] = (out[i, j] - (one if j == label else zero)) * scale
        elif y.ndim == 1:
            pass  # labels pair with cross-entropy only (checked by the callers)
        elif loss == CROSS_ENTROPY:
            # In dz's dtype, as the label's row: integer or float64 one-hot
            # rows of a float32 network gave other bits (float64 arithmetic).
            s = zero
            for j in range(m):
                s += dz.dtype.type(y[i, j])
            for j in range(m):
                dz[i, j] = (s * out[i, j] - dz.dtype.type(y[i, j])) * scale


@jit(inline="always")
def _elementwise_delta(d, out, y, loss, scale):
    # loss_backward over one row of the element-wise losses.
    one = d.dtype.type(1.0)
    two = d.dtype.type(2.0)
    if loss == BINARY_CROSS_ENTROPY:
        for j in range(d.size):
            d[j] = (out[j] - y[j]) * scale
    elif loss == MSE:
        # 2 scale first, as torch's norm = 2 / N: 2 (out - y) overflowed in
        # float32 for targets past 1.7e38 where the scaled delta is finite
        # (the same bits otherwise: the factor 2 is exact). A residual out - y
        # itself past float32's range (outputs and targets of opposite signs
        # near it) still overflows, as in torch's float32 backward.
        two_scale = two * scale
        for j in range(d.size):
            d[j] = (out[j] - y[j]) * two_scale
    elif loss == MAE:
        for j in range(d.size):
            d[j] = np.sign(out[j] - y[j]) * scale
    else:  # HUBER, delta = 1
        for j in range(d.size):
            d[j] = smin(smax(out[j] - y[j], -one), one) * scale


# The kernels' twins of the two loss kernels: a literal loss compiles its branch only.
_loss_forward = specialising(loss_forward, "loss", "loss_forward for the kernels (see fastbp._static).")
_loss_backward = specialising(loss_backward, "loss", "loss_backward for the kernels (see fastbp._static).")


@jit
def sgd_update(params, grads, lr):
    """The lecture's rule, in place over a whole flat buffer: ``p -= lr * g``."""
    step = params.dtype.type(lr)
    for i in range(params.size):
        params[i] -= step * grads[i]


_an_rng = array_guard("an rng is a uint64 array, a splitmix64 state (np.array([seed],"
                      " dtype=np.uint64))", (1,), ("uint64",))


# splitmix64 (Steele, Lea & Flood 2014): 64 bits of state in a uint64[1]
# array, so the stream can be saved, restored and continued exactly.
@jit(inline="always")
def rng_next(state):
    """Next 64 random bits from the splitmix64 state ``state[0]`` (advanced)."""
    _an_rng(state)   # (an int64 state ran: its signed shifts dropped no unit at rate 0.5)
    s = state[0] + np.uint64(0x9E3779B97F4A7C15)
    state[0] = s
    s = (s ^ (s >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    s = (s ^ (s >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return s ^ (s >> np.uint64(31))


@jit(inline="always")
def shuffle(perm, state):
    """Fisher-Yates shuffle of the int64 array ``perm`` in place."""
    for i in range(perm.size - 1, 0, -1):
        j = np.int64(rng_next(state) % np.uint64(i + 1))
        t = perm[i]
        perm[i] = perm[j]
        perm[j] = t
