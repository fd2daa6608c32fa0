"""Vectorisable exp, tanh and softplus for the kernels' inner loops.

Numba compiles ``np.exp``/``np.tanh`` to calls into libm, which LLVM cannot
vectorise; on small layers those calls, not the matrix products, set the
speed. These versions are plain arithmetic that LLVM turns into SIMD code:

- ``exp``: Cody-Waite range reduction ``x = k ln2 + r``, ``|r| <= ln2/2``, a
  polynomial for ``e^r`` (in float64 of degree 12, fitted at Chebyshev nodes;
  in float32 Taylor's of degree 7; each within half an ulp of e^r), and
  ``2^k`` built from its IEEE bits.
  Arguments are clamped to the normal range (about +-708 in float64, +-87 in
  float32): beyond it the caller's result is 0, 1 or inf to working precision
  anyway, in absolute terms (not a gradient's, which multiplies a sigmoid's
  or softmax's floor by the layer's input: O(1) for inputs near the
  dtype's largest numbers, see docs/reliability.md); relatively, exp of a very negative argument
  stays at its floor (e^-708 = 3e-308, e^-87 = 1.6e-38) where NumPy's
  falls through the subnormals to 0: a sigmoid of -inf is 1.2e-308 (float32:
  6e-39), not 0, and a cross-entropy below the floor reads as the floor.
- ``tanh``: float32 a rational function (Eigen's ``generic_fast_tanh_float``,
  within a few ulp); float64 ``e / (e + 2)`` with ``e = expm1(2|x|)``, where
  ``expm1`` shares exp's reduction and polynomial and keeps full relative
  accuracy near 0 (within 2.2 eps of NumPy's; exp within 1 eps). float64's
  polynomial runs in Estrin's scheme, for a short dependency chain (see
  :func:`_exp64_reduced`).
- ``softplus`` (float64, for both dtypes): ``max(x, 0) + log1p(e^-|x|)``
  with exp64 and fdlibm's ``log1p`` on [0, 1] written without branches
  (:func:`log1p_01`, within 1 ulp); within 2 eps of NumPy's
  ``logaddexp(0, x)``.

The polynomials run as fused multiply-adds (:func:`muladd`) where the CPU
has them: on an AMD EPYC (znver4), float64 tanh over 200 x 100 values took
26.8 against 33.8 us, sigmoid 24 against 31 us, float32 sigmoid 7.3 against
9.4 us. float32 tanh returns exactly +-1 from |x| >= 9, where tanh rounds to
within one ulp of it (the fused rational stops 4 ulp short of 1 at its clamp).

Measured errors against NumPy are in tests/test_fastmath.py.

``smin``/``smax`` are the kernels' two-scalar ``min``/``max``: the same
comparison and select as Python's builtins (``max(a, b)`` is
``b if b > a else a``, so a NaN in ``a`` is kept and a NaN in ``b`` is not),
emitted in place in a kernel and plain Python outside one. Numba compiles its
own ``min``/``max`` as a function per argument type, each with its own
wrappers and optimisation (0.02 s apiece on a cold start, five of them in a
first fit).
"""
import operator

import llvmlite.binding as ll
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.typing import signature
from numba.core.imputils import lower_builtin
from numba.extending import intrinsic, overload, type_callable

from ._jit import jit
from ._static import JIT_OPTIONS


@intrinsic
def _float64_from_bits(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())
    return types.float64(types.int64), codegen


@intrinsic
def _float32_from_bits(typingctx, bits):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())
    return types.float32(types.int32), codegen


def smax(a, b):
    """``max(a, b)`` of two scalars, Python's builtin: ``b if b > a else a``
    (see the module's docstring); in a kernel, a compare and a select."""
    return b if b > a else a


def smin(a, b):
    """``min(a, b)`` of two scalars, Python's builtin: ``b if b < a else a``."""
    return b if b < a else a


def _as_select(func, op):
    # Typed and lowered in place, as Numba's own builtins are: no function of
    # its own to compile (an @overload would be one per argument type).
    @type_callable(func)
    def typer(context):
        def typed(a, b):
            if isinstance(a, _SCALARS) and isinstance(b, _SCALARS):
                return context.unify_types(a, b)
        return typed

    @lower_builtin(func, types.Number, types.Number)
    @lower_builtin(func, types.Boolean, types.Boolean)
    def lowered(context, builder, sig, args):
        ty = sig.return_type
        x = context.cast(builder, args[0], sig.args[0], ty)
        y = context.cast(builder, args[1], sig.args[1], ty)
        pick = context.get_function(op, signature(types.boolean, ty, ty))
        return builder.select(pick(builder, (y, x)), y, x)


_SCALARS = (types.Number, types.Boolean)
_as_select(smax, operator.gt)
_as_select(smin, operator.lt)


def muladd(a, b, c):
    """``a * b + c`` of three floats of one type; in a kernel one fused
    multiply-add (a single rounding, ``llvm.fma``) where the CPU the kernels
    are compiled for has the instruction, else a multiply and an add. The
    polynomials below use it: without fastmath LLVM does not fuse ``p * r + c``
    itself, and a Horner step is then two dependent instructions instead of
    one. The choice is made per machine, never per call site (LLVM's
    ``fmuladd`` would let each kernel choose, and two kernels that must agree
    bit for bit could round differently)."""
    return a * b + c


def _fma_is_native(context):
    # x86 without the FMA extension (old or low-power CPUs) would call libm's
    # slow software fma; every other target fastbp runs on has the instruction.
    codegen = context.codegen()
    features = getattr(codegen, "_tm_features", None)
    if features is None:
        features = ll.get_host_cpu_features().flatten()
    x86 = ll.get_process_triple().startswith(("x86_64", "i386", "i686"))
    return not x86 or "+fma" in features.split(",")


@type_callable(muladd)
def _muladd_typer(context):
    def typed(a, b, c):
        if isinstance(a, types.Float) and a == b == c:
            return a
    return typed


@lower_builtin(muladd, types.Float, types.Float, types.Float)
def _muladd_lowered(context, builder, sig, args):
    a, b, c = args
    if not _fma_is_native(context):
        return builder.fadd(builder.fmul(a, b), c)
    ty = a.type
    name = "llvm.fma." + ("f32" if isinstance(ty, ir.FloatType) else "f64")
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty] * 3), name)
    return builder.call(fn, args)


@intrinsic
def _bits_of_float64(typingctx, x):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))
    return types.int64(types.float64), codegen


# 1.5 * 2^52: adding it to a float64 of magnitude below 2^51 rounds it to an
# integer (to nearest, ties to even: np.rint's rounding) held in the sum's
# low mantissa bits.
_ROUND64 = 6755399441055744.0
_SIGN64 = np.int64(-0x8000000000000000)
# e^r - 1 = r + r^2 q(r): q of degree 10 interpolating (e^r - 1 - r) / r^2 at
# the Chebyshev nodes of [-ln2/2, ln2/2] (widened by 0.05 %), in 60-digit
# arithmetic (mpmath), then rounded: within 3e-18 of q there. The Taylor
# coefficients 1/2!, ..., 1/12! in their place left up to 1.6e-16 at the
# ends (2.5 eps of e^r - 1, 4.4 eps in tanh after expm1's 2 (e^r - 1) + 1).
_E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10, _E11, _E12 = (
    0.5, 0.1666666666666667, 0.04166666666666667, 0.008333333333326112, 0.001388888888888373,
    0.0001984126987490126, 2.4801587325605324e-05, 2.7557255297969643e-06,
    2.755727357010214e-07, 2.5105259538448494e-08, 2.0914717341716378e-09)


@jit(inline="always")
def _exp64_reduced(x):
    """``(2^k, e^r - 1)`` with ``x = k ln2 + r``, ``|r| <= ln2 / 2``, x clamped
    to [-708, 709]. The polynomial is e^r - 1 itself, free of cancellation.

    Written for a short dependency chain, since a vectorised loop of it is
    bound by latency, not by its instruction count: k is rounded by adding
    and subtracting ``_ROUND64`` (two adds, where ``np.rint`` and the
    conversion to an integer took 8 + 4 cycles) and 2^k built from the
    sum's bits; the polynomial runs in Estrin's scheme (five multiply-adds
    deep instead of Horner's eleven). float64 tanh over 32 x 32 values in a
    jitted loop (Intel Xeon, Rocket Lake): 1.66 against 1.2 us.
    """
    return _exp64_within(smin(smax(x, -708.0), 709.0))


@jit(inline="always")
def _exp64_within(x):
    """:func:`_exp64_reduced` of an x already within [-708, 709]."""
    kr = muladd(x, 1.4426950408889634, _ROUND64)
    k = kr - _ROUND64
    r = muladd(-k, 6.93147180369123816490e-01, x)   # k ln2_hi is exact: one rounding
    r = muladd(-k, 1.90821492927058770002e-10, r)
    r2 = r * r
    r4 = r2 * r2
    p01 = muladd(muladd(_E5, r, _E4), r2, muladd(_E3, r, _E2))
    p23 = muladd(muladd(_E9, r, _E8), r2, muladd(_E7, r, _E6))
    p4 = muladd(_E12, r2, muladd(_E11, r, _E10))
    p = muladd(p4, r4 * r4, muladd(p23, r4, p01))
    p = muladd(p, r2, r)
    # The low 12 bits of kr's bits are k's (|k| <= 1023) plus a multiple of
    # 4096: shifted up 52 places, k + 1023 is 2^k's exponent field.
    return _float64_from_bits((_bits_of_float64(kr) + 1023) << 52), p


@jit(inline="always")
def exp64(x):
    scale, p = _exp64_reduced(x)
    return muladd(scale, p, scale)


@jit(inline="always")
def expm1_64(x):
    """e^x - 1, accurate near 0: 2^k e^r - 1 = 2^k (e^r - 1) + (2^k - 1)."""
    return _expm1_within(smin(smax(x, -708.0), 709.0))


@jit(inline="always")
def _expm1_within(x):
    """:func:`expm1_64` of an x already within [-708, 709]."""
    scale, p = _exp64_within(x)
    return muladd(scale, p, scale - 1.0)


# log1p's polynomial (fdlibm's s_log1p.c, Lp1..Lp7): log(1 + f) = f - hfsq +
# s (hfsq + R(s^2)), s = f / (2 + f), hfsq = f^2 / 2, within 1 ulp for f in
# [sqrt(2)/2 - 1, sqrt(2) - 1].
_LP1, _LP2, _LP3, _LP4, _LP5, _LP6, _LP7 = (
    6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
    2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
    1.479819860511658591e-01)
_SQRT2_M1 = 0.41421356237309503


@jit(inline="always")
def log1p_01(v):
    """log(1 + v) for v in [0, 1] (or NaN), fdlibm's log1p without its
    branches (within 1 ulp of NumPy's there): below sqrt(2) - 1, the
    polynomial on f = v itself; above, on f = (1 + v) / 2 - 1 (exact), plus
    ln 2 and the rounding error of 1 + v divided by it. Both are computed and
    one selected, so a loop of it vectorises."""
    w = 1.0 + v
    big = v > _SQRT2_M1
    f = muladd(w, 0.5, -1.0) if big else v
    k = 1.0 if big else 0.0
    c = (v - (w - 1.0)) / w if big else 0.0
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    z2 = z * z
    r = z * muladd(muladd(_LP7, z2, muladd(_LP6, z, _LP5)), z2 * z2,
                   muladd(muladd(_LP4, z, _LP3), z2, muladd(_LP2, z, _LP1)))
    return k * 6.93147180369123816490e-01 - (
        (hfsq - (s * (hfsq + r) + (k * 1.90821492927058770002e-10 + c))) - f)


@jit(inline="always")
def softplus64(x):
    """log(1 + e^x) as max(x, 0) + log1p(e^-|x|), within a few ulp of
    NumPy's ``logaddexp(0, x)`` and free of libm calls, so that a loop of it
    vectorises (two libm calls an element made a softplus network's step four
    times its tanh one's). Below -708 it returns 0 (NumPy's: down to 5e-324,
    through the subnormals); NaN stays NaN."""
    return smax(x, 0.0) + log1p_exp_neg(abs(x))


@jit(inline="always")
def log1p_exp_neg(a):
    """log(1 + e^-a) for a >= 0 (or NaN): softplus's tail, 0 beyond 708."""
    e = exp64(-a)
    return log1p_01(0.0 if a > 708.0 else e)


_F32 = np.float32


@jit(inline="always")
def exp32(x):
    x = smin(smax(x, _F32(-87.0)), _F32(88.0))
    k = np.rint(x * _F32(1.44269504))
    r = (x - k * _F32(0.693359375)) - k * _F32(-2.12194440e-4)
    p = _F32(1.0 / 5040.0)
    p = muladd(p, r, _F32(1.0 / 720.0))
    p = muladd(p, r, _F32(1.0 / 120.0))
    p = muladd(p, r, _F32(1.0 / 24.0))
    p = muladd(p, r, _F32(1.0 / 6.0))
    p = muladd(p, r, _F32(0.5))
    p = muladd(p, r, _F32(1.0))
    p = muladd(p, r, _F32(1.0))
    return p * _float32_from_bits((np.int32(k) + np.int32(127)) << np.int32(23))


_TANH32_CLAMP = _F32(7.90531110763549805)
_TANH32_P = (_F32(4.89352455891786e-03), _F32(6.37261928875436e-04), _F32(1.48572235717979e-05),
             _F32(5.12229709037114e-08), _F32(-8.60467152213735e-11), _F32(2.00018790482477e-13),
             _F32(-2.76076847742355e-16))
_TANH32_Q = (_F32(4.89352518554385e-03), _F32(2.26843463243900e-03), _F32(1.18534705686654e-04),
             _F32(1.19825839466702e-06))


@jit(inline="always")
def tanh32(x):
    big = abs(x) >= _F32(9.0)  # tanh rounds to +-1 there; the rational, fused, to 1 - 4 ulp
    sign = _F32(1.0) if x > 0 else _F32(-1.0)
    x = smin(smax(x, -_TANH32_CLAMP), _TANH32_CLAMP)
    x2 = x * x
    p = _TANH32_P[6]
    p = muladd(p, x2, _TANH32_P[5])
    p = muladd(p, x2, _TANH32_P[4])
    p = muladd(p, x2, _TANH32_P[3])
    p = muladd(p, x2, _TANH32_P[2])
    p = muladd(p, x2, _TANH32_P[1])
    p = muladd(p, x2, _TANH32_P[0])
    q = _TANH32_Q[3]
    q = muladd(q, x2, _TANH32_Q[2])
    q = muladd(q, x2, _TANH32_Q[1])
    q = muladd(q, x2, _TANH32_Q[0])
    # |x| < 4e-4: x is tanh x to within one ulp (x^3/3 is below an ulp; it
    # rounds to x below ~3.5e-4), where the rational, whose x * p goes
    # subnormal below ~2e-36, was off by up to 100 ulp; Eigen's own function
    # selects x as here.
    return sign if big else (x if abs(x) < _F32(0.0004) else x * p / q)


@jit(inline="always")
def tanh64(x):
    # tanh|x| = e / (e + 2) with e = expm1(2|x|); |x| > 20 rounds to 1.
    a = smin(abs(x), 20.0)
    e = _expm1_within(2.0 * a)
    t = e / (e + 2.0)
    # x's sign bit on t: two bit operations (one vpternlog) where a compare
    # and a select took three; and tanh(-0.0) = -0.0, as NumPy's.
    return _float64_from_bits(_bits_of_float64(t) | (_bits_of_float64(x) & _SIGN64))


# One name per function for the kernels, resolved by the argument's type when
# a kernel is compiled: a float32 kernel compiles only the float32 code, a
# float64 kernel only the float64 code (a run-time ``exp32(x) if single else
# exp64(x)`` would compile both, for every call site, in both dtypes).
def exp(x):
    """e^x in the precision of x (exp32 for float32, exp64 otherwise); the
    choice is made when the calling kernel is compiled."""
    return np.exp(x)


def tanh(x):
    """tanh x in the precision of x (tanh32 for float32, tanh64 otherwise)."""
    return np.tanh(x)


def in_precision(dtype):
    """``(generic, specific)`` pairs: exp and tanh for a kernel whose floats
    are ``dtype`` (a Numba type). :func:`fastbp._static.bound` binds them in
    the specialised bodies, where they are inlined; the overloads below are
    each a function of their own to compile (0.1 s apiece on a cold start)."""
    if dtype == types.float32:
        return ((exp, exp32), (tanh, tanh32))
    return ((exp, exp64), (tanh, tanh64))


@overload(exp, jit_options=JIT_OPTIONS)
def _exp(x):
    if x == types.float32:
        return lambda x: exp32(x)
    return lambda x: exp64(x)


@overload(tanh, jit_options=JIT_OPTIONS)
def _tanh(x):
    if x == types.float32:
        return lambda x: tanh32(x)
    return lambda x: tanh64(x)
