"""The vectorisable exp, tanh, expm1, log1p and softplus against NumPy, over their ranges."""
import numba
import numpy as np
import pytest

import itertools

from fractions import Fraction

from fastbp._fastmath import (exp32, exp64, expm1_64, log1p_01, muladd, smax, smin, softplus64,
                              tanh32, tanh64)


@numba.njit
def _apply32(which, x, out):
    for i in range(x.size):
        out[i] = exp32(x[i]) if which == 0 else tanh32(x[i])


@numba.njit
def _apply64(which, x, out):
    for i in range(x.size):
        out[i] = exp64(x[i]) if which == 0 else tanh64(x[i])


CASES = [  # function, dtype, range, bound on the relative error in units of eps
    ("exp", np.float32, (-87, 88), 1.5),
    ("exp", np.float64, (-708, 709), 1.5),
    ("tanh", np.float32, (-20, 20), 6),
    # float64 tanh is worst on |x| in [0.17, 0.35], where expm1(2|x|) is
    # 2 (e^r - 1) + 1 with r near -ln2 / 2: 4.37 eps with Taylor's
    # coefficients, whose error was largest there; 2.17 with fastbp's.
    ("tanh", np.float64, (-40, 40), 2.5),
]


@pytest.mark.parametrize("name,dtype,span,ulps", CASES)
def test_relative_error_within_a_few_eps(name, dtype, span, ulps):
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(*span, 200_001), rng.uniform(-1, 1, 100_000) * 1e-3,
                        np.linspace(0.17, 0.35, 200_001),
                        [0.0, 0.625, -0.625, 0.6249999, 1e-30, -1e-30]]).astype(dtype)
    out = np.empty_like(x)
    (_apply32 if dtype == np.float32 else _apply64)(0 if name == "exp" else 1, x, out)
    ref = getattr(np, name)(x.astype(np.float64))
    err = np.abs(out - ref) / np.maximum(np.abs(ref), np.finfo(dtype).tiny)
    assert err.max() <= ulps * np.finfo(dtype).eps
    assert out.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_limits(dtype):
    x = np.array([-1e4, -800, -100, 100, 800, 1e4, 0.0], dtype=dtype)
    out = np.empty_like(x)
    apply = _apply32 if dtype == np.float32 else _apply64
    apply(1, x, out)
    np.testing.assert_array_equal(out, [-1, -1, -1, 1, 1, 1, 0])
    if dtype == np.float32:   # exactly +-1 only from |x| >= 9, as tanh rounds (review HIE)
        near = np.linspace(8, 8.99, 1000, dtype=dtype)
        got = np.empty_like(near)
        apply(1, near, got)
        assert (got < 1).all()
    # The sign of zero, as NumPy's tanh keeps it; NaN stays NaN.
    signed = np.array([-0.0, 0.0, np.nan, -1e-300 if dtype == np.float64 else -1e-30], dtype=dtype)
    got = np.empty_like(signed)
    apply(1, signed, got)
    np.testing.assert_array_equal(np.signbit(got[:2]), [True, False])
    assert np.isnan(got[2])
    np.testing.assert_allclose(got[3], signed[3], rtol=4 * np.finfo(dtype).eps)   # tanh x = x there
    apply(0, x[:3], out[:3])
    # Clamped to the smallest normal range, negligible next to 1.
    assert np.all(out[:3] >= 0) and np.all(out[:3] < 1e-37)


@numba.njit
def _ours(a, b):
    return smin(a, b), smax(a, b)


@numba.njit
def _builtins(a, b):
    return min(a, b), max(a, b)


@pytest.mark.parametrize("ta,tb", [(np.float32, np.float32), (np.float64, np.float64),
                                   (np.float32, np.float64), (np.int64, np.float64),
                                   (np.int64, np.int64), (np.int32, np.int64)])
def test_smin_smax_are_the_builtins(ta, tb):
    """smin and smax give what Numba's min/max give in a kernel (value, sign
    of zero, NaN placement: max(nan, 1) is nan, max(1, nan) is 1; type), and
    what Python's give outside one."""
    special = [np.nan, -np.inf, np.inf, -0.0, 0.0] if ta(0.5) != 0 and tb(0.5) != 0 else []
    values = special + [-3, -1, 0, 1, 2, 7]
    for a, b in itertools.product(values, values):
        got, want = _ours(ta(a), tb(b)), _builtins(ta(a), tb(b))
        in_python = (smin(ta(a), tb(b)), smax(ta(a), tb(b)))  # outside a kernel too
        python = (min(ta(a), tb(b)), max(ta(a), tb(b)))
        for g, w in zip(in_python, python):
            assert (np.isnan(g) and np.isnan(w)) or (g == w and np.signbit(g) == np.signbit(w))
        for g, w in zip(got, want):
            assert type(g) is type(w)
            assert (np.isnan(g) and np.isnan(w)) or (g == w and np.signbit(g) == np.signbit(w)), \
                (a, b, got, want)


@numba.njit
def _muladd_all(a, b, c, out):
    for i in range(a.size):
        out[i] = muladd(a[i], b[i], c[i])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_muladd_is_a_times_b_plus_c_within_one_rounding(dtype):
    """muladd in a kernel: a * b + c in the arrays' dtype, fused (llvm.fma)
    where the CPU has FMA, else a multiply and an add, so within one ulp of
    the exact value for terms of one sign; NaN and inf as in a * b + c;
    outside a kernel, plain Python."""
    rng = np.random.default_rng(3)
    a, b, c = (rng.uniform(0.5, 2.0, 1000).astype(dtype) for _ in range(3))
    out = np.empty_like(a)
    _muladd_all(a, b, c, out)
    assert out.dtype == dtype
    exact = [Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)) for x, y, z in zip(a, b, c)]
    ulp = np.spacing(out)
    assert all(abs(Fraction(float(o)) - e) <= Fraction(float(u)) for o, e, u in zip(out, exact, ulp))
    special = np.array([np.nan, np.inf, 1.0, 0.0], dtype)
    out = np.empty_like(special)
    _muladd_all(special, np.array([1, 1, np.inf, np.inf], dtype), np.array([0, -1, -np.inf, 1], dtype), out)
    with np.errstate(invalid="ignore"):
        expected = special * np.array([1, 1, np.inf, np.inf], dtype) + np.array([0, -1, -np.inf, 1], dtype)
    np.testing.assert_array_equal(out, expected)
    assert muladd(2.0, 3.0, 1.0) == 7.0


def test_muladd_takes_one_float_type_only():
    with pytest.raises(numba.core.errors.TypingError):
        _muladd_all(np.ones(2, np.float32), np.ones(2), np.ones(2), np.empty(2))


def test_float64_exp_polynomial_is_the_chebyshev_fit_it_claims():
    """_exp64_reduced's coefficients: (e^r - 1 - r) / r^2 interpolated at the
    11 Chebyshev nodes of [-ln2/2, ln2/2] widened by 0.05 %, in 60 digits,
    each rounded to float64 (the derivation, and its check)."""
    mp = pytest.importorskip("mpmath")
    from fastbp import _fastmath as fm
    ours = [fm._E2, fm._E3, fm._E4, fm._E5, fm._E6, fm._E7, fm._E8, fm._E9, fm._E10, fm._E11, fm._E12]
    with mp.workdps(60):
        half = mp.log(2) / 2 * mp.mpf("1.0005")
        deg = len(ours) - 1

        def q(r):
            return mp.mpf(1) / 2 + r / 6 if abs(r) < mp.mpf("1e-20") else (mp.expm1(r) - r) / (r * r)

        nodes = [half * mp.cos(mp.pi * (2 * i + 1) / (2 * (deg + 1))) for i in range(deg + 1)]
        A = mp.matrix([[x ** j for j in range(deg + 1)] for x in nodes])
        coefficients = mp.lu_solve(A, mp.matrix([q(x) for x in nodes]))
        assert [float(c) for c in coefficients] == ours
        worst = max(abs(sum(mp.mpf(c) * x ** j for j, c in enumerate(ours)) - q(x)) / q(x)
                    for x in mp.linspace(-half, half, 401))
    assert worst < 1e-17   # the rounded coefficients, not only the exact fit


@numba.njit
def _apply_more(which, x, out):
    for i in range(x.size):
        if which == 0:
            out[i] = expm1_64(x[i])
        elif which == 1:
            out[i] = log1p_01(x[i])
        else:
            out[i] = softplus64(x[i])


def _rel_err(out, ref):
    return np.abs(out - ref) / np.maximum(np.abs(ref), np.finfo(np.float64).tiny)


def test_expm1_log1p_and_softplus_within_a_few_eps_of_numpy():
    """float64 expm1 (ELU's forward pass, softplus's backward pass), log1p on
    [0, 1] and softplus (softplus's forward pass) against NumPy's libm."""
    rng = np.random.default_rng(0)
    eps = np.finfo(np.float64).eps
    x = np.concatenate([np.linspace(-708, 709, 400_001), rng.uniform(-1, 1, 100_000) * 1e-3,
                        np.geomspace(1e-300, 1, 10_000), -np.geomspace(1e-300, 1, 10_000)])
    out = np.empty_like(x)
    _apply_more(0, x, out)
    assert _rel_err(out, np.expm1(x)).max() <= 2.5 * eps
    # log1p: both of its branches (below and above sqrt(2) - 1), the point
    # between them, tiny and subnormal arguments, 0 and 1.
    v = np.concatenate([np.linspace(0, 1, 400_001), rng.random(100_000),
                        np.geomspace(5e-324, 1, 10_000),
                        np.nextafter(np.sqrt(2) - 1, [0.0, 1.0]), [0.0, 1.0]])
    out = np.empty_like(v)
    _apply_more(1, v, out)
    assert _rel_err(out, np.log1p(v)).max() <= 1.0 * eps
    x = np.concatenate([np.linspace(-708, 708, 400_001), rng.normal(size=100_000) * 3,
                        np.linspace(-40, 40, 100_001)])
    out = np.empty_like(x)
    _apply_more(2, x, out)
    assert _rel_err(out, np.logaddexp(0.0, x)).max() <= 2 * eps


def test_softplus_limits_and_float32_rounding():
    x = np.array([np.inf, -np.inf, np.nan, -800.0, -709.0, 800.0, 0.0, -0.0, 1e308, -1e308])
    out = np.empty_like(x)
    _apply_more(2, x, out)
    # Below -708 it flushes to 0 (NumPy's continues through the subnormals).
    np.testing.assert_array_equal(out, [np.inf, 0.0, np.nan, 0.0, 0.0, 800.0, np.log(2.0),
                                        np.log(2.0), 1e308, 0.0])
    # A float32 network computes it in float64 and rounds: NumPy's, rounded.
    x32 = np.linspace(-100, 100, 400_001).astype(np.float32)
    out = np.empty(x32.size)
    _apply_more(2, x32.astype(np.float64), out)
    np.testing.assert_array_equal(out.astype(np.float32),
                                  np.logaddexp(0.0, x32.astype(np.float64)).astype(np.float32))


# ------------------------------------------------ found in review (2026-12-05, session 34)
def test_float32_tanh_of_tiny_numbers_is_the_number():
    """Below |x| ~ 2.4e-36 the rational's x * p went subnormal: up to 103 ulp
    off, and at the smallest normal float32 larger than x (|tanh x| <= |x|).
    tanh x is x to within one ulp for |x| < 4e-4, where Eigen's function selects x."""
    tiny = np.finfo(np.float32).tiny
    x = np.concatenate([np.geomspace(tiny, 3.99e-4, 20_001), [tiny, 1.7356856e-38, 1e-37]])
    x = np.concatenate([x, -x, np.nextafter(np.float32([4e-4, -4e-4]), 0)]).astype(np.float32)
    out = np.empty_like(x)
    _apply32(1, x, out)
    ref = np.tanh(x.astype(np.float64)).astype(np.float32)
    ulps = np.abs(out.astype(np.float64) - ref) / np.spacing(np.abs(ref))
    assert ulps.max() <= 1
    assert np.all(np.abs(out) <= np.abs(x))
