"""What the BLAS keeps in bits, asked before a test holds two paths to them.

Some tests hold two of fastbp's paths to the same bits where both run the
same products in other shapes: a layer's rows in one product or cut into
several (a split predict, one row against many), or the first layer's
weights stored as W or as W^T (the forward product on W or on a copy of
W^T, the weight gradient as delta^T x or as (x^T delta)^T). OpenBLAS's
kernels kept those bits where these tests were written (AMD EPYC znver4,
its SkylakeX and Haswell kernels); its Haswell kernel on an AMD EPYC of
family 26 (Zen 5, OPENBLAS_CORETYPE=Haswell, 2026-12-07) does not, by an
ulp or two in float64. Each such test first asks the product itself
(here, through fastbp's own call of the BLAS, :func:`fastbp.ops.gemm`,
which the kernels' products share; or the kernel on the rows alone), and
holds the two paths to rounding where the product alone already differs.
"""
import numpy as np

from fastbp import ops


def _gemm(A, B, trans_a, trans_b, m, n):
    C = np.zeros((m, n), A.dtype)
    ops.gemm(C, np.ascontiguousarray(A), np.ascontiguousarray(B), trans_a, trans_b, 1.0, 0.0)
    return C


def transposes_keep_bits(dtype, k, n, batches):
    """Whether a first layer of k inputs and n outputs gets the same bits
    from W and from W^T stored, for batches of each of ``batches`` rows: the
    forward product, and the weight gradient delta^T x against (x^T delta)^T."""
    rng = np.random.default_rng(0)
    for m in batches:
        x = rng.normal(size=(m, k)).astype(dtype)
        d = rng.normal(size=(m, n)).astype(dtype)
        W = rng.normal(size=(n, k)).astype(dtype)
        if not (np.array_equal(_gemm(d, x, True, False, n, k), _gemm(x, d, True, False, k, n).T)
                and np.array_equal(_gemm(x, W, False, True, m, n),
                                   _gemm(x, np.ascontiguousarray(W.T), False, False, m, n))):
            return False
    return True
