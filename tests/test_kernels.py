"""The leaf kernels of ``fastbp.kernels`` against an independent NumPy reference.

Every expected value here comes from the plain, float64 NumPy functions
``ref_*`` below, written from the contracts in the kernels' docstrings (PyTorch
conventions), never from fastbp itself. Each kernel is run on float32 and
float64 arrays of odd shapes (rows 1, 3, 17; widths 1, 3, 7). Float64 results
must agree to ~1e-12 relative, float32 results to ~1e-5 relative, with an
absolute tolerance scaled by the magnitude of the terms involved (for values
that cancel to near 0).

All arrays handed to a kernel are views carved out of one flat buffer with
guard cells between them (the way fastbp lays out its parameters and
workspaces). After each call the guards must be intact, the inputs bitwise
unchanged, and outputs that started as NaN fully written.
"""
import itertools
import math
import warnings

import numba
import numpy as np
import pytest

import fastbp
from fastbp import kernels as K
from fastbp._arrays import stack_buffer
from fastbp.ops import SUM_BLOCK_ROWS, _elementwise_loss, bias_grad, bias_sgd, softmax_pivot

DTYPES = [np.float32, np.float64]
ROWS = (1, 3, 17)
WIDTHS = (1, 3, 7)
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
TINY = {dt: float(np.finfo(dt).tiny) for dt in (np.float32, np.float64)}  # smallest normal

HIDDEN = {
    "identity": K.IDENTITY,
    "sigmoid": K.SIGMOID,
    "tanh": K.TANH,
    "relu": K.RELU,
    "leaky_relu": K.LEAKY_RELU,
    "elu": K.ELU,
    "softplus": K.SOFTPLUS,
}
OUTPUTS = {"identity": K.IDENTITY, "sigmoid": K.SIGMOID, "softmax": K.SOFTMAX}
LOSSES = {
    "cross_entropy": K.CROSS_ENTROPY,
    "binary_cross_entropy": K.BINARY_CROSS_ENTROPY,
    "mse": K.MSE,
    "mae": K.MAE,
    "huber": K.HUBER,
}
OUTPUT_OF_LOSS = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid",
                  "mse": "identity", "mae": "identity", "huber": "identity"}

dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
rows = pytest.mark.parametrize("n", ROWS, ids=[f"n{n}" for n in ROWS])
widths_m = pytest.mark.parametrize("m", WIDTHS, ids=[f"m{m}" for m in WIDTHS])
widths_k = pytest.mark.parametrize("k", WIDTHS, ids=[f"k{k}" for k in WIDTHS])
hidden_acts = pytest.mark.parametrize("act", list(HIDDEN))
losses = pytest.mark.parametrize("loss", list(LOSSES))


# --------------------------------------------------------------------------
# Independent NumPy reference (float64)
# --------------------------------------------------------------------------

def ref_sigmoid(x):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))  # never overflows
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def ref_act(z, act):
    """f(z) for a hidden activation name."""
    z = np.asarray(z, dtype=np.float64)
    if act == "identity":
        return z.copy()
    if act == "sigmoid":
        return ref_sigmoid(z)
    if act == "tanh":
        return np.tanh(z)
    if act == "relu":
        return np.maximum(z, 0.0)
    if act == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z)
    if act == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0)))
    if act == "softplus":
        return np.logaddexp(0.0, z)
    raise ValueError(act)


def ref_act_grad(z, act):
    """f'(z), written in terms of z; PyTorch's convention at the kinks (z = 0)."""
    z = np.asarray(z, dtype=np.float64)
    if act == "identity":
        return np.ones_like(z)
    if act == "sigmoid":
        e = np.exp(-np.abs(z))
        return e / (1.0 + e) ** 2
    if act == "tanh":  # sech^2 z = 4 e^{-2|z|} / (1 + e^{-2|z|})^2
        e = np.exp(-2.0 * np.abs(z))
        return 4.0 * e / (1.0 + e) ** 2
    if act == "relu":
        return (z > 0).astype(np.float64)
    if act == "leaky_relu":
        return np.where(z > 0, 1.0, 0.01)
    if act == "elu":
        return np.where(z > 0, 1.0, np.exp(np.minimum(z, 0.0)))
    if act == "softplus":
        return ref_sigmoid(z)
    raise ValueError(act)


def ref_softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ref_output(z, out):
    if out == "softmax":
        return ref_softmax(z)
    if out == "sigmoid":
        return ref_sigmoid(z)
    return np.array(z, dtype=np.float64)


def ref_loss(z, y, loss):
    """Mean loss of logits z against targets y, PyTorch conventions."""
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = z.shape[0]
    if loss == "cross_entropy":
        zmax = z.max(axis=1, keepdims=True)
        log_softmax = z - zmax - np.log(np.exp(z - zmax).sum(axis=1, keepdims=True))
        return float(-(y * log_softmax).sum() / n)
    if loss == "binary_cross_entropy":  # softplus(z) - y z == -y log s - (1-y) log(1-s)
        return float((np.logaddexp(0.0, z) - y * z).mean())
    d = z - y
    if loss == "mse":
        return float((d * d).mean())
    if loss == "mae":
        return float(np.abs(d).mean())
    if loss == "huber":
        a = np.abs(d)
        return float(np.where(a <= 1.0, 0.5 * d * d, a - 0.5).mean())
    raise ValueError(loss)


def ref_loss_grad(z, y, loss):
    """dE/dz in closed form, from the logits z."""
    z = np.asarray(z, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, m = z.shape
    if loss == "cross_entropy":
        return (y.sum(axis=1, keepdims=True) * ref_softmax(z) - y) / n
    if loss == "binary_cross_entropy":
        return (ref_sigmoid(z) - y) / (n * m)
    d = z - y
    if loss == "mse":
        return 2.0 * d / (n * m)
    if loss == "mae":
        return np.sign(d) / (n * m)
    if loss == "huber":
        return np.clip(d, -1.0, 1.0) / (n * m)
    raise ValueError(loss)


def splitmix64(state):
    """Pure-Python splitmix64: returns (new_state, output)."""
    mask = (1 << 64) - 1
    state = (state + 0x9E3779B97F4A7C15) & mask
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return state, z ^ (z >> 31)


def fisher_yates(values, state):
    """Pure-Python Fisher-Yates from the last index down, j = next() mod (i + 1)."""
    values = list(values)
    for i in range(len(values) - 1, 0, -1):
        state, r = splitmix64(state)
        j = r % (i + 1)
        values[i], values[j] = values[j], values[i]
    return values, state


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------

GUARD = 3
SENTINEL = -7.25  # exactly representable in float32 and float64


class Arena:
    """Arrays as C-contiguous views into one flat buffer, guard cells around each."""

    def __init__(self, dtype, **arrays):
        sizes = [np.asarray(a).size for a in arrays.values()]
        total = GUARD + sum(s + GUARD for s in sizes)
        self.buf = np.full(total, SENTINEL, dtype=dtype)
        self.guard = np.ones(total, dtype=bool)
        self.views = {}
        self.originals = {}
        o = GUARD
        for (name, a), size in zip(arrays.items(), sizes):
            a = np.asarray(a)
            v = self.buf[o:o + size].reshape(a.shape)
            v[...] = a
            assert v.flags.c_contiguous and v.base is not None
            self.guard[o:o + size] = False
            self.views[name] = v
            self.originals[name] = v.copy()
            o += size + GUARD

    def __getitem__(self, name):
        return self.views[name]

    def check(self, outputs=()):
        """Guards intact, non-outputs bitwise unchanged, outputs fully written."""
        assert np.all(self.buf[self.guard] == SENTINEL), "kernel wrote into a guard cell"
        for name, v in self.views.items():
            if name in outputs:
                assert not np.isnan(v).any(), f"output {name!r} not fully written"
            else:
                np.testing.assert_array_equal(v, self.originals[name],
                                              err_msg=f"input {name!r} was modified")


def nans(shape):
    return np.full(shape, np.nan)


def assert_close(actual, expected, dtype, scale=1.0, rtol=None):
    """rtol ~1e-12 (f64) / ~1e-5 (f32); atol = rtol * scale (magnitude of the terms)."""
    assert actual.dtype == dtype
    rtol = RTOL[dtype] if rtol is None else rtol
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected,
                               rtol=rtol, atol=rtol * max(float(scale), 1e-300))


def cast(x, dtype):
    """Round to dtype, then back to float64 for the reference (same values the kernel sees)."""
    return np.asarray(x, dtype=dtype).astype(np.float64)


def away_from_zero(rng, shape, lo=0.1, hi=3.0):
    """Values in +-[lo, hi]: no kinks of relu / leaky relu / elu nearby."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(lo, hi, size=shape)


def targets(rng, loss, n, m, soft=False):
    if loss == "cross_entropy":
        if soft:  # non-negative weights not summing to 1 exercise the sum(y) factor
            return rng.uniform(0.0, 1.0, size=(n, m))
        y = np.zeros((n, m))
        y[np.arange(n), rng.integers(0, m, size=n)] = 1.0
        return y
    if loss == "binary_cross_entropy":
        if soft:
            return rng.uniform(0.0, 1.0, size=(n, m))
        return rng.integers(0, 2, size=(n, m)).astype(np.float64)
    return rng.normal(size=(n, m)) * 1.5


@pytest.fixture
def no_fp_warnings():
    """Overflow, invalid and divide-by-zero (NumPy errors or RuntimeWarnings) fail the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            yield


# --------------------------------------------------------------------------
# Sanity of the reference itself
# --------------------------------------------------------------------------

@hidden_acts
def test_reference_activation_derivative_matches_finite_difference(act):
    z = away_from_zero(np.random.default_rng(0), (200,), lo=0.01, hi=6.0)
    h = 1e-6
    fd = (ref_act(z + h, act) - ref_act(z - h, act)) / (2 * h)
    np.testing.assert_allclose(ref_act_grad(z, act), fd, rtol=1e-6, atol=1e-9)


def test_constants_match_documented_codes():
    assert sorted(HIDDEN.values()) == list(range(7)) and K.SOFTMAX == 7
    assert sorted(LOSSES.values()) == list(range(5))


@pytest.mark.parametrize("loss", list(LOSSES))
def test_output_of_pairs_each_loss_with_its_output_function(loss):
    assert K.output_of(LOSSES[loss]) == OUTPUTS[OUTPUT_OF_LOSS[loss]]


# --------------------------------------------------------------------------
# bias_act_forward / act_backward
# --------------------------------------------------------------------------

@dtypes
@rows
@widths_m
@hidden_acts
def test_bias_act_forward_matches_reference(dtype, n, m, act):
    rng = np.random.default_rng([n, m, HIDDEN[act]])
    z0 = cast(rng.normal(size=(n, m)) * 2.0, dtype)
    b = cast(rng.normal(size=m), dtype)
    arena = Arena(dtype, z=z0, b=b)
    K.bias_act_forward(arena["z"], arena["b"], HIDDEN[act])
    arena.check(outputs=("z",))
    expected = ref_act(z0 + b, act)
    assert_close(arena["z"], expected, dtype, scale=np.abs(z0).max() + np.abs(b).max())


@dtypes
@rows
@widths_m
@hidden_acts
def test_act_backward_multiplies_by_derivative_from_output(dtype, n, m, act):
    rng = np.random.default_rng([n, m, HIDDEN[act], 1])
    z = away_from_zero(rng, (n, m))
    a = cast(ref_act(z, act), dtype)
    dz0 = cast(rng.normal(size=(n, m)), dtype)
    arena = Arena(dtype, dz=dz0, a=a)
    K.act_backward(arena["dz"], arena["a"], HIDDEN[act])
    arena.check(outputs=("dz",))
    assert_close(arena["dz"], dz0 * ref_act_grad(z, act), dtype, scale=np.abs(dz0).max())


@dtypes
@pytest.mark.parametrize("n,m", [(200, 2), (33, 10), (3, 1)])
def test_packed_and_strided_arrays_give_the_same_bits(dtype, n, m):
    """The element-wise kernels run one long row over C-contiguous arrays
    (fastbp._arrays.packed_rows) and a loop per row over others: the same
    arithmetic per element, so the same bits, for every code."""
    rng = np.random.default_rng([n, m, 5])
    z0 = cast(rng.normal(size=(n, m)) * 3.0, dtype)
    b = cast(rng.normal(size=m), dtype)
    d0 = cast(rng.normal(size=(n, m)), dtype)

    def strided(a):  # every other column of a wider buffer: not C-contiguous
        wide = np.full((n, 2 * m), np.nan, dtype=a.dtype)
        wide[:, ::2] = a
        return wide[:, ::2]

    for act in HIDDEN.values():
        packed, other = z0.copy(), strided(z0)
        K.bias_act_forward(packed, b, act)
        K.bias_act_forward(other, b, act)
        np.testing.assert_array_equal(packed, other)
        dp, do = d0.copy(), strided(d0)
        K.act_backward(dp, packed, act)
        K.act_backward(do, strided(packed), act)
        np.testing.assert_array_equal(dp, do)
        dm = d0.copy()
        K.act_backward(dm, strided(packed), act)  # one packed, one not: the loop per row
        np.testing.assert_array_equal(dm, dp)
    for output in OUTPUTS.values():
        packed, other = np.zeros_like(z0), strided(np.zeros_like(z0))
        K.output_forward(packed, z0, output)
        K.output_forward(other, z0, output)
        np.testing.assert_array_equal(packed, other)


@dtypes
@pytest.mark.parametrize("act,slope", [("identity", 1.0), ("sigmoid", 0.25), ("tanh", 1.0),
                                       ("relu", 0.0), ("leaky_relu", 0.01), ("elu", 1.0),
                                       ("softplus", 0.5)])
def test_act_backward_at_zero_follows_pytorch_convention(dtype, act, slope):
    # z = 0: ReLU' = 0 and leaky ReLU' = 0.01 (PyTorch); the smooth ones by value.
    a = cast(ref_act(np.zeros((2, 3)), act), dtype)
    dz0 = np.array([[1.0, -2.0, 0.5], [3.0, -0.25, 4.0]])
    dz = dz0.astype(dtype)
    K.act_backward(dz, a.astype(dtype), HIDDEN[act])
    assert_close(dz, slope * dz0, dtype)
    np.testing.assert_allclose(ref_act_grad(np.zeros(1), act), slope, rtol=1e-15)


@dtypes
@hidden_acts
def test_bias_act_forward_extreme_inputs_finite_and_correct(dtype, act, no_fp_warnings):
    big = 1e4
    z0 = np.array([[-big, -100.0, -30.0, -1e-3, 0.0, 1e-3, 30.0, 100.0, big]])
    b = np.zeros(z0.shape[1])
    z = z0.astype(dtype)
    K.bias_act_forward(z, b.astype(dtype), HIDDEN[act])
    assert np.isfinite(z).all()
    # Results below the smallest normal number count as 0 (atol = finfo.tiny).
    np.testing.assert_allclose(z.astype(np.float64), ref_act(z0, act), rtol=RTOL[dtype],
                               atol=TINY[dtype])


@dtypes
@hidden_acts
def test_act_backward_extreme_outputs_finite_and_correct(dtype, act, no_fp_warnings):
    zs = np.array([[-1e4, -100.0, -30.0, 30.0, 100.0, 1e4]])
    a = ref_act(zs, act).astype(dtype)
    dz = np.ones(zs.shape, dtype=dtype)
    K.act_backward(dz, a, HIDDEN[act])
    assert np.isfinite(dz).all()
    # Where a = f(z) has saturated (sigmoid, tanh -> 1) the derivative through a is 0
    # while the true one is tiny (<= e^-30 here): the absolute tolerance covers that.
    expected = ref_act_grad(zs, act)
    np.testing.assert_allclose(dz.astype(np.float64), expected, rtol=RTOL[dtype],
                               atol=1e-6 if dtype == np.float32 else 1e-12)


@dtypes
def test_sigmoid_of_large_negative_inputs_does_not_overflow(dtype, no_fp_warnings):
    z0 = np.array([[-1e4, -1e3, -750.0, -100.0, -88.0, -20.0]])
    b = np.array([-1e4, 0.0, 0.0, 0.0, 0.0, 0.0])
    z = z0.astype(dtype)
    K.bias_act_forward(z, b.astype(dtype), K.SIGMOID)
    assert np.isfinite(z).all() and (z >= 0).all()
    np.testing.assert_allclose(z.astype(np.float64), ref_sigmoid(z0 + b),
                               rtol=RTOL[dtype], atol=TINY[dtype])
    out = np.full(z0.shape, np.nan, dtype=dtype)
    K.output_forward(out, z0.astype(dtype), K.SIGMOID)
    assert np.isfinite(out).all() and (out >= 0).all()
    np.testing.assert_allclose(out.astype(np.float64), ref_sigmoid(z0),
                               rtol=RTOL[dtype], atol=TINY[dtype])


# --------------------------------------------------------------------------
# dense_forward / dense_forward_ref
# --------------------------------------------------------------------------

def dense_forward_case(dtype, n, m, k, act):
    rng = np.random.default_rng([n, m, k, HIDDEN[act], 2])
    inp = cast(rng.normal(size=(n, k)), dtype)
    W = cast(rng.normal(size=(m, k)), dtype)
    b = cast(rng.normal(size=m), dtype)
    expected = ref_act(inp @ W.T + b, act)
    scale = (np.abs(inp) @ np.abs(W).T + np.abs(b)).max()
    return inp, W, b, expected, scale


@dtypes
@rows
@widths_m
@widths_k
@hidden_acts
def test_dense_forward_and_ref_match_reference_and_each_other(dtype, n, m, k, act):
    inp, W, b, expected, scale = dense_forward_case(dtype, n, m, k, act)
    results = []
    for kernel in (K.dense_forward, K.dense_forward_ref):
        arena = Arena(dtype, out=nans((n, m)), inp=inp, W=W, b=b)
        kernel(arena["out"], arena["inp"], arena["W"], arena["b"], HIDDEN[act])
        arena.check(outputs=("out",))
        assert_close(arena["out"], expected, dtype, scale=scale)
        results.append(arena["out"].copy())
    # BLAS and loops may sum in different orders: agree within rounding.
    assert_close(results[0], results[1].astype(np.float64), dtype, scale=scale)


@dtypes
def test_dense_forward_overwrites_out(dtype):
    # Whatever is in out (here: huge values) must not leak into the result.
    inp, W, b, expected, scale = dense_forward_case(dtype, 3, 7, 3, "tanh")
    for kernel in (K.dense_forward, K.dense_forward_ref):
        out = np.full((3, 7), 1e30, dtype=dtype)
        kernel(out, inp.astype(dtype), W.astype(dtype), b.astype(dtype), K.TANH)
        assert_close(out, expected, dtype, scale=scale)


# --------------------------------------------------------------------------
# dense_backward / dense_backward_ref
# --------------------------------------------------------------------------

def dense_backward_case(dtype, n, m, k, act_in):
    rng = np.random.default_rng([n, m, k, HIDDEN[act_in], 3])
    z_prev = away_from_zero(rng, (n, k))
    inp = cast(ref_act(z_prev, act_in), dtype)
    W = cast(rng.normal(size=(m, k)), dtype)
    dout = cast(rng.normal(size=(n, m)), dtype)
    expected = {
        "dW": dout.T @ inp,
        "db": dout.sum(axis=0),
        "dinp": (dout @ W) * ref_act_grad(z_prev, act_in),
    }
    scale = {
        "dW": (np.abs(dout).T @ np.abs(inp)).max(),
        "db": np.abs(dout).sum(axis=0).max(),
        "dinp": (np.abs(dout) @ np.abs(W)).max(),
    }
    return inp, W, dout, expected, scale


@dtypes
@rows
@widths_m
@widths_k
@hidden_acts
def test_dense_backward_and_ref_match_reference_and_each_other(dtype, n, m, k, act):
    inp, W, dout, expected, scale = dense_backward_case(dtype, n, m, k, act)
    results = []
    for kernel in (K.dense_backward, K.dense_backward_ref):
        arena = Arena(dtype, dinp=nans((n, k)), dW=nans((m, k)), db=nans(m),
                      dout=dout, inp=inp, W=W)
        kernel(arena["dinp"], arena["dW"], arena["db"], arena["dout"], arena["inp"],
               arena["W"], HIDDEN[act])
        arena.check(outputs=("dinp", "dW", "db"))
        for name in ("dinp", "dW", "db"):
            assert_close(arena[name], expected[name], dtype, scale=scale[name])
        results.append({name: arena[name].copy() for name in ("dinp", "dW", "db")})
    for name in ("dinp", "dW", "db"):
        assert_close(results[0][name], results[1][name].astype(np.float64), dtype,
                     scale=scale[name])


@dtypes
@rows
@widths_m
@widths_k
def test_dense_backward_with_empty_dinp_skips_it(dtype, n, m, k):
    inp, W, dout, expected, scale = dense_backward_case(dtype, n, m, k, "sigmoid")
    for kernel in (K.dense_backward, K.dense_backward_ref):
        arena = Arena(dtype, dinp=np.zeros((0, k)), dW=nans((m, k)), db=nans(m),
                      dout=dout, inp=inp, W=W)
        assert arena["dinp"].shape == (0, k)
        kernel(arena["dinp"], arena["dW"], arena["db"], arena["dout"], arena["inp"],
               arena["W"], K.SIGMOID)
        arena.check(outputs=("dW", "db"))
        assert_close(arena["dW"], expected["dW"], dtype, scale=scale["dW"])
        assert_close(arena["db"], expected["db"], dtype, scale=scale["db"])


@dtypes
def test_dense_backward_overwrites_rather_than_accumulates(dtype):
    inp, W, dout, expected, scale = dense_backward_case(dtype, 3, 7, 3, "relu")
    for kernel in (K.dense_backward, K.dense_backward_ref):
        dinp = np.full((3, 3), 1e30, dtype=dtype)
        dW = np.full((7, 3), 1e30, dtype=dtype)
        db = np.full(7, 1e30, dtype=dtype)
        kernel(dinp, dW, db, dout.astype(dtype), inp.astype(dtype), W.astype(dtype), K.RELU)
        assert_close(dinp, expected["dinp"], dtype, scale=scale["dinp"])
        assert_close(dW, expected["dW"], dtype, scale=scale["dW"])
        assert_close(db, expected["db"], dtype, scale=scale["db"])


# --------------------------------------------------------------------------
# column sums (a layer's bias gradient)
# --------------------------------------------------------------------------

@numba.njit
def _bias_grad(db, d):
    bias_grad(db, d)


@numba.njit
def _bias_sgd(b, d, lr):
    bias_sgd(b, d, lr)


@numba.njit
def _stack_length(d):
    return stack_buffer(d).size


@dtypes
@pytest.mark.parametrize("n", (0, 1, 5, 17, 200, 257, 4200))
@pytest.mark.parametrize("m", (1, 2, 3, 8, 10, 16, 32, 64, 100, 128))
@pytest.mark.parametrize("packed", (True, False), ids=("packed", "strided"))
def test_column_sums_match_numpy_in_chunks_and_by_rows(dtype, n, m, packed):
    """column_sums (the bias gradient, the bias step) takes packed narrow
    layers in chunks of rows in registers and the rest row by row: both
    against NumPy, and the fused step's bits against gradient then update."""
    rng = np.random.default_rng([n, m, 11])
    full = rng.normal(size=(n, 2 * m)).astype(dtype)
    d = np.ascontiguousarray(full[:, :m]) if packed else full[:, ::2]
    expected = d.astype(np.float64).sum(axis=0)
    scale = np.abs(d).astype(np.float64).sum(axis=0).max(initial=0.0)
    length = _stack_length(d)
    assert length * np.dtype(dtype).itemsize == 512
    chunked = (d.flags.c_contiguous or d.size == 0) and length % m == 0 and 2 * m <= length
    db = np.full(m, np.nan, dtype)  # only written
    _bias_grad(db, d)
    assert_close(db, expected, dtype, scale=scale)
    # each path, bit for bit, as NumPy adds in its order
    np.testing.assert_array_equal(db, _chunk_sums(d, length) if chunked else _row_sums(d))
    b = rng.normal(size=m).astype(dtype)
    b2 = b.copy()
    _bias_sgd(b2, d, 0.1)
    assert_close(b2, b - 0.1 * expected, dtype, scale=max(scale, 1.0))
    np.testing.assert_array_equal(b2, b - dtype(0.1) * db)  # the sums, then one step


@dtypes
@pytest.mark.parametrize("m", (8, 10, 100, 300, 2100, 4200))
@pytest.mark.parametrize("values", ["varied", "repeated"])
def test_the_bias_step_of_a_large_batch_is_its_sum_taken_once(dtype, m, values):
    """Review HGD: bias_sgd of a width that skips the chunked path added each
    row's share ``lr * d[i]`` to the bias itself, rounding it to the bias's
    unit: a float32 bias of order 1 lost every share under half its unit,
    the step of 131,072 rows of shares ~7.6e-8 off by ~100 %. Review HGE:
    one running float32 total per column then still erred by up to n units
    where the values repeat (1.3e-3); summed in blocks of rows now. Against
    the float64 sums: the gradient within a few float32 units, the step
    within that and one rounding of b."""
    n, lr = (131072 if m < 1000 else 4096), 0.01  # (m > 1000: wider than one block of sums)
    rng = np.random.default_rng([m, 5])
    if values == "varied":
        d = (rng.uniform(0.5, 1.5, size=(n, m)) / n).astype(dtype)  # each column sums to ~1
    else:
        d = np.full((n, m), 1.3 / n, dtype)
    want = np.ascontiguousarray(d.T, np.float64).sum(axis=1)  # (pairwise along the rows)
    db = np.empty(m, dtype)
    _bias_grad(db, d)
    tol = 2e-5 if dtype == np.float32 else 1e-13
    assert np.abs(db - want).max() / np.abs(want).max() < tol, np.abs(db - want).max()
    b = rng.uniform(0.5, 1.5, size=m).astype(dtype)
    b2 = b.copy()
    _bias_sgd(b2, d, lr)
    got = b2.astype(np.float64) - b
    err = np.abs(got + lr * want).max() / np.abs(lr * want).max()
    assert err < (1e-4 if dtype == np.float32 else 1e-12), err


def test_column_sums_of_float32_rows_into_float64_add_in_float64():
    """A user's kernel may give float32 deltas and a float64 bias: the rows
    path adds in out's precision (review HGH: the blocked sums took d's)."""
    d = np.random.default_rng(0).normal(size=(5000, 10)).astype(np.float32)
    db = np.empty(10)
    _bias_grad(db, d)
    want = np.array([math.fsum(column) for column in d.T.astype(np.float64)])
    np.testing.assert_allclose(db, want, rtol=0, atol=1e-12)


def _row_sums(d):
    """The sums in the order of a loop over rows, in blocks of
    SUM_BLOCK_ROWS rows: each block's sums added to the totals."""
    s = np.zeros(d.shape[1], d.dtype)
    for b in range(0, d.shape[0], SUM_BLOCK_ROWS):
        part = np.zeros(d.shape[1], d.dtype)
        for row in d[b:b + SUM_BLOCK_ROWS]:
            part += row
        s += part
    return s


def _chunk_sums(d, length):
    """The sums in column_sums' order for packed rows: runs of ``length``
    values (r = length // m rows) added into r * m partial sums,
    SUM_BLOCK_ROWS runs at a time, each block's added to the totals, the last
    short run to the totals, then each column's r partial sums folded in
    order."""
    n, m = d.shape
    f, total = d.ravel(), np.zeros(length, d.dtype)
    rows = length // m
    whole = (n // rows) * length
    for first in range(0, whole, SUM_BLOCK_ROWS * length):
        acc = np.zeros(length, d.dtype)
        for base in range(first, min(whole, first + SUM_BLOCK_ROWS * length), length):
            acc += f[base:base + length]
        total += acc
    total[:n * m - whole] += f[whole:]
    s = total[:m].copy()
    for q in range(1, rows):
        s += total[q * m:(q + 1) * m]
    return s


def test_dense_backward_is_the_gradient_of_dense_forward():
    # End-to-end in float64: E = sum(G * f(inp_prev_act @ W.T + b)) through both kernels,
    # checked against central differences of the NumPy forward.
    rng = np.random.default_rng(7)
    n, m, k = 3, 7, 3
    z_prev = away_from_zero(rng, (n, k))
    inp = ref_act(z_prev, "tanh")
    W = rng.normal(size=(m, k))
    b = rng.normal(size=m)
    G = rng.normal(size=(n, m))
    z = inp @ W.T + b
    dout = G * ref_act_grad(z, "elu")  # dE/dz of this layer
    dinp, dW, db = np.empty((n, k)), np.empty((m, k)), np.empty(m)
    K.dense_backward(dinp, dW, db, dout, inp, W, K.TANH)

    def energy(W_, b_, zp):
        return float((G * ref_act(ref_act(zp, "tanh") @ W_.T + b_, "elu")).sum())

    h = 1e-6
    fd_W = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        e = np.zeros_like(W)
        e[idx] = h
        fd_W[idx] = (energy(W + e, b, z_prev) - energy(W - e, b, z_prev)) / (2 * h)
    fd_b = np.array([(energy(W, b + h * np.eye(m)[j], z_prev)
                      - energy(W, b - h * np.eye(m)[j], z_prev)) / (2 * h) for j in range(m)])
    fd_zp = np.zeros_like(z_prev)
    for idx in np.ndindex(z_prev.shape):
        e = np.zeros_like(z_prev)
        e[idx] = h
        fd_zp[idx] = (energy(W, b, z_prev + e) - energy(W, b, z_prev - e)) / (2 * h)
    np.testing.assert_allclose(dW, fd_W, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, fd_b, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dinp, fd_zp, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------
# output_forward
# --------------------------------------------------------------------------

@dtypes
@rows
@widths_m
@pytest.mark.parametrize("output", list(OUTPUTS))
def test_output_forward_matches_reference(dtype, n, m, output):
    rng = np.random.default_rng([n, m, OUTPUTS[output], 4])
    z = cast(rng.normal(size=(n, m)) * 3.0, dtype)
    arena = Arena(dtype, out=nans((n, m)), z=z)
    K.output_forward(arena["out"], arena["z"], OUTPUTS[output])
    arena.check(outputs=("out",))
    assert_close(arena["out"], ref_output(z, output), dtype)
    if output == "identity":
        np.testing.assert_array_equal(arena["out"], arena["z"])  # an exact copy
    if output == "softmax":
        assert_close(arena["out"].astype(np.float64).sum(axis=1).astype(dtype),
                     np.ones(n), dtype, rtol=10 * RTOL[dtype])


@dtypes
def test_output_forward_softmax_stable_for_huge_logits(dtype, no_fp_warnings):
    z0 = np.array([[1e4, -1e4, 0.0],
                   [1e4, 1e4, -1e4],
                   [-1e4, -1e4, -1e4],
                   [-1e4, -1e4 + 1.0, -1e4 + 2.0]])
    out = np.full(z0.shape, np.nan, dtype=dtype)
    K.output_forward(out, z0.astype(dtype), K.SOFTMAX)
    assert np.isfinite(out).all()
    e = np.exp([0.0, 1.0, 2.0])
    expected = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3],
                         list(e / e.sum())])
    assert_close(out, expected, dtype)


def test_output_forward_softmax_of_many_classes_in_float32_sums_in_float64():
    """A near-uniform float32 softmax over 10,000 classes: each probability
    within a few float32 ulps of the float64 NumPy softmax of the same
    logits (the row's normaliser summed in float32 left them 5e-5 off;
    torch's float32 softmax is 3e-7 off here)."""
    rng = np.random.default_rng(0)
    z = (0.01 * rng.normal(size=(20, 10_000))).astype(np.float32)
    out = np.empty_like(z)
    K.output_forward(out, z, K.SOFTMAX)
    e = np.exp(z.astype(np.float64) - z.max(axis=1, keepdims=True))
    want = e / e.sum(axis=1, keepdims=True)
    assert np.abs(out / want - 1).max() < 4e-7
    assert np.abs(out.sum(axis=1, dtype=np.float64) - 1).max() < 1e-6


# --------------------------------------------------------------------------
# loss_forward / loss_backward
# --------------------------------------------------------------------------

def loss_forward(z, y, loss, dtype):
    """K.loss_forward on dtype arrays, with out = g(z) from the NumPy reference."""
    z = np.asarray(z, dtype=dtype)
    out = ref_output(z, OUTPUT_OF_LOSS[loss]).astype(dtype)
    return K.loss_forward(z, out, np.asarray(y, dtype=dtype), LOSSES[loss])


@dtypes
@rows
@widths_m
@losses
def test_loss_forward_matches_reference(dtype, n, m, loss):
    rng = np.random.default_rng([n, m, LOSSES[loss], 5])
    z = cast(rng.normal(size=(n, m)) * 2.0, dtype)
    y = cast(targets(rng, loss, n, m), dtype)
    out = cast(ref_output(z, OUTPUT_OF_LOSS[loss]), dtype)
    arena = Arena(dtype, z=z, out=out, y=y)
    value = K.loss_forward(arena["z"], arena["out"], arena["y"], LOSSES[loss])
    arena.check()
    assert isinstance(value, float)
    expected = ref_loss(z, y, loss)
    scale = 1.0 if loss == "cross_entropy" else np.abs(z - y).max() ** 2 + 1.0
    np.testing.assert_allclose(value, expected, rtol=RTOL[dtype], atol=RTOL[dtype] * scale)


@dtypes
def test_loss_forward_soft_cross_entropy_targets(dtype):
    rng = np.random.default_rng(11)
    z = cast(rng.normal(size=(5, 4)), dtype)
    y = cast(targets(rng, "cross_entropy", 5, 4, soft=True), dtype)
    value = loss_forward(z, y, "cross_entropy", dtype)
    np.testing.assert_allclose(value, ref_loss(z, y, "cross_entropy"), rtol=RTOL[dtype])


@dtypes
def test_loss_forward_stable_for_huge_logits(dtype, no_fp_warnings):
    big = 1e4
    # Cross-entropy, by hand: row 1 picks the -1e4 logit next to a 1e4 one,
    # -log softmax = 1e4 - (-1e4) = 2e4; row 2 picks the max, 0 (up to e^-1e4);
    # row 3 picks one of two equal maxima, log 2.  Mean over rows.
    z = np.array([[big, -big, 0.0], [big, -big, 0.0], [big, big, -big]])
    y = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    value = loss_forward(z, y, "cross_entropy", dtype)
    assert math.isfinite(value)
    np.testing.assert_allclose(value, (2 * big + 0.0 + math.log(2)) / 3, rtol=1e-12)
    # BCE from logits, by hand: softplus(x) - x t; elementwise 0, 1e4, 1e4, 0, log 2, log 2.
    z = np.array([[big, -big, big], [-big, 0.0, 0.0]])
    y = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    value = loss_forward(z, y, "binary_cross_entropy", dtype)
    assert math.isfinite(value)
    np.testing.assert_allclose(value, (2 * big + 2 * math.log(2)) / 6, rtol=1e-12)
    # The regression losses with huge residuals (exact in both dtypes).
    z = np.array([[big, -big]])
    y = np.array([[0.0, 0.0]])
    for loss, expected in [("mse", big * big), ("mae", big), ("huber", big - 0.5)]:
        value = loss_forward(z, y, loss, dtype)
        np.testing.assert_allclose(value, expected, rtol=1e-12)


@dtypes
@pytest.mark.parametrize("margin", [5.0, 10.0, 15.0])
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy"])
def test_loss_forward_accurate_when_loss_is_small(dtype, margin, loss):
    # Confident, correct predictions (a well-trained model): the loss is small,
    # ~e^-margin, and must still be accurate relative to itself, not only to 1.
    if loss == "cross_entropy":  # -log softmax = log(1 + 2 e^-margin)
        z = np.array([[margin, 0.0, 0.0], [0.0, 0.0, margin]])
        y = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        expected = math.log1p(2.0 * math.exp(-margin))
    else:  # softplus(-|z|) = log(1 + e^-margin)
        z = np.array([[margin, -margin]])
        y = np.array([[1.0, 0.0]])
        expected = math.log1p(math.exp(-margin))
    assert ref_loss(z, y, loss) == pytest.approx(expected, rel=1e-14)
    value = loss_forward(z, y, loss, dtype)
    np.testing.assert_allclose(value, expected, rtol=RTOL[dtype])


def test_cross_entropy_of_labels_sums_the_rows_log1p_in_one_call():
    """Labels take their rows' log1p terms as one, log1p(q) of the product of
    the rows' 1 + t: it must keep a small loss's relative accuracy over many
    rows, fold q into the total before it overflows, and pass a NaN on."""
    rng = np.random.default_rng(3)
    # 300 confident, correct rows of 3 classes, margins 20-36: each row's
    # loss is log1p(sum of e^-margin), 1e-16..1e-9, summed by math.log1p.
    n, m = 300, 3
    margins = rng.uniform(20.0, 36.0, size=(n, 2))
    z = np.zeros((n, m))
    y = rng.integers(0, m, n)
    z[np.arange(n), y] = 50.0
    others = np.array([[j for j in range(m) if j != y[i]] for i in range(n)])
    z[np.arange(n)[:, None], others] = 50.0 - margins
    out = np.exp(z - z.max(axis=1, keepdims=True))
    out /= out.sum(axis=1, keepdims=True)
    expected = math.fsum(math.log1p(math.exp(-a) + math.exp(-b)) for a, b in margins) / n
    value = K.loss_forward(z, out, y.astype(np.int64), K.CROSS_ENTROPY)
    assert value == pytest.approx(expected, rel=1e-13)
    # 500 rows of 3000 equal logits: 1 + t = 3000 per row, a product of
    # 3000^500 that overflows a float64 unless folded: the loss is log 3000.
    z = np.zeros((500, 3000))
    out = np.full_like(z, 1 / 3000)
    labels = np.zeros(500, dtype=np.int64)
    assert K.loss_forward(z, out, labels, K.CROSS_ENTROPY) == pytest.approx(math.log(3000), rel=1e-13)
    out[7] = np.nan
    assert math.isnan(K.loss_forward(z, out, labels, K.CROSS_ENTROPY))


@numba.njit
def _pivots(z, out):
    ks = np.empty(z.shape[0], dtype=np.int64)
    ts = np.empty(z.shape[0])
    for i in range(z.shape[0]):
        ks[i], ts[i] = softmax_pivot(z, out, i)
    return ks, ts


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_pivot_is_the_first_largest_logit_and_the_rest_over_it(dtype):
    """The cross-entropy kernels' first step, without branches on the data:
    k must be NumPy's argmax (the first of tied maxima), a NaN logit never
    taken after the first column, and t the other outputs' sum over out_k."""
    rng = np.random.default_rng(11)
    for m in (1, 2, 3, 10, 17):
        z = rng.normal(size=(64, m)).astype(dtype)
        if m > 1:
            z[:8, m - 1] = z[:8, 0]          # ties with the first column
            z[8:16, 0] = z[8:16].max(axis=1)
            z[8:16, m // 2] = z[8:16, 0]     # ties in the middle
            z[16, 1] = np.nan                # NaN after the first: skipped
        out = np.exp(z - np.nanmax(z, axis=1, keepdims=True))
        out /= np.nansum(out, axis=1, keepdims=True)
        out = out.astype(dtype)
        ks, ts = _pivots(z, out)
        finite = np.isfinite(z).all(axis=1)
        np.testing.assert_array_equal(ks[finite], np.argmax(z[finite], axis=1))
        if m > 1:
            assert ks[16] == np.nanargmax(z[16])
        rest = np.array([math.fsum(np.delete(out[i].astype(np.float64), k)) for i, k in enumerate(ks)])
        want = rest / out[np.arange(len(ks)), ks]
        np.testing.assert_allclose(ts[finite], want[finite], rtol=1e-14, atol=0)


def test_huber_loss_switches_at_delta_one():
    z = np.array([[0.5, -0.5, 1.0, -1.0, 2.0, -3.0]])
    y = np.zeros_like(z)
    expected = np.mean([0.125, 0.125, 0.5, 0.5, 1.5, 2.5])
    assert loss_forward(z, y, "huber", np.float64) == pytest.approx(expected, rel=1e-15)


@dtypes
@rows
@widths_m
@losses
def test_loss_backward_matches_closed_form(dtype, n, m, loss):
    rng = np.random.default_rng([n, m, LOSSES[loss], 6])
    z = rng.normal(size=(n, m)) * 2.0
    y = cast(targets(rng, loss, n, m), dtype)
    out = cast(ref_output(z, OUTPUT_OF_LOSS[loss]), dtype)
    arena = Arena(dtype, dz=nans((n, m)), out=out, y=y)
    K.loss_backward(arena["dz"], arena["out"], arena["y"], LOSSES[loss])
    arena.check(outputs=("dz",))
    # The closed form from the (rounded) outputs the kernel saw ...
    if loss == "cross_entropy":
        expected = (y.sum(axis=1, keepdims=True) * out - y) / n
    elif loss in ("binary_cross_entropy",):
        expected = (out - y) / (n * m)
    else:
        expected = ref_loss_grad(out, y, loss)  # identity output: out == z
    scale = (np.abs(out).max() + np.abs(y).max()) / (n if loss == "cross_entropy" else n * m)
    assert_close(arena["dz"], expected, dtype, scale=2 * scale)
    # ... and, in float64, the closed form from the logits.
    if dtype == np.float64:
        assert_close(arena["dz"], ref_loss_grad(z, y, loss), dtype, scale=2 * scale)


@dtypes
def test_one_hot_rows_of_any_dtype_give_the_labels_bits(dtype):
    """Review HAE: integer or float64 one-hot rows of a float32 network
    took the deltas in float64 (218 of 4,000 entries 1e-10 off the labels'),
    where the kernels promise the labels' bits for one-hot rows."""
    n, m = 1000, 4
    rng = np.random.default_rng(8)
    out = np.empty((n, m), dtype=dtype)
    K.output_forward(out, rng.normal(size=(n, m)).astype(dtype), K.SOFTMAX)
    labels = rng.integers(0, m, n)
    expected = np.empty_like(out)
    K.loss_backward(expected, out, labels, K.CROSS_ENTROPY)
    for target in (np.float32, np.float64, np.int64, np.bool_):
        d = np.empty_like(out)
        K.loss_backward(d, out, np.eye(m, dtype=target)[labels], K.CROSS_ENTROPY)
        np.testing.assert_array_equal(d, expected)
    net = fastbp.MLP([3, 5, m], dtype=dtype, seed=0)
    X = rng.normal(size=(n, 3)).astype(dtype)
    g_labels = np.zeros_like(net.params)
    K.gradient(g_labels, g_labels, net.params, net.workspace(n), net.plan, X, labels, 0)
    for target in (np.float64, np.int64):
        g = np.zeros_like(net.params)
        K.gradient(g, g, net.params, net.workspace(n), net.plan, X, np.eye(m, dtype=target)[labels],
                   0)
        np.testing.assert_array_equal(g, g_labels)


@dtypes
def test_cross_entropy_deltas_from_labels_are_the_one_hot_rows_bit_for_bit(dtype):
    # Labels take a flat pass (out * scale, then each row's label entry):
    # the same bits as the one-hot targets' rows, for packed, strided and
    # in-place (dz is out) arrays; a label out of range gives its row no
    # entry, as a one-hot row of zeros would.
    n, m = 37, 10
    rng = np.random.default_rng([n, m, 9])
    out = ref_output(rng.normal(size=(n, m)), "softmax").astype(dtype)   # (the kernel's dtype)
    labels = rng.integers(0, m, n)
    onehot = np.eye(m, dtype=dtype)[labels]
    expected = np.empty_like(out)
    K.loss_backward(expected, out, onehot, LOSSES["cross_entropy"])
    np.testing.assert_array_equal(expected, (out - onehot) * (dtype(1) / dtype(n)))
    for d, oo in ((np.full_like(out, np.nan), out), (_strided(np.full_like(out, np.nan)), out),
                  (np.full_like(out, np.nan), _strided(out))):
        K.loss_backward(d, oo, labels, LOSSES["cross_entropy"])
        np.testing.assert_array_equal(d, expected)
    inplace = out.copy()
    K.loss_backward(inplace, inplace, labels, LOSSES["cross_entropy"])
    np.testing.assert_array_equal(inplace, expected)
    far = labels.copy()
    far[3] = m
    d = np.full_like(out, np.nan)
    K.loss_backward(d, out, far, LOSSES["cross_entropy"])
    np.testing.assert_array_equal(d[3], out[3] * (dtype(1) / dtype(n)))
    np.testing.assert_array_equal(np.delete(d, 3, 0), np.delete(expected, 3, 0))


def _strided(a):
    """``a``'s values in a view whose rows are not packed (every other column)."""
    wide = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
    wide[:, ::2] = a
    return wide[:, ::2]


@dtypes
@losses
def test_loss_kernels_give_the_same_bits_whatever_the_layout(dtype, loss):
    """The element-wise losses run over one long row when z, out and y (dz,
    out and y) are all packed, and row by row otherwise: the same value and
    the same deltas, bit for bit, for any mix of layouts."""
    n, m = 17, 3
    rng = np.random.default_rng([n, m, LOSSES[loss], 8])
    z = cast(rng.normal(size=(n, m)) * 2.0, dtype)
    y = cast(targets(rng, loss, n, m), dtype)
    out = cast(ref_output(z, OUTPUT_OF_LOSS[loss]), dtype)
    value = K.loss_forward(z, out, y, LOSSES[loss])
    dz = np.empty_like(z)
    K.loss_backward(dz, out, y, LOSSES[loss])
    for zz, oo, yy in ((_strided(z), out, y), (z, _strided(out), y), (z, out, _strided(y)),
                       (_strided(z), _strided(out), _strided(y))):
        assert K.loss_forward(zz, oo, yy, LOSSES[loss]) == value
        for d in (np.full_like(z, np.nan), _strided(np.full_like(z, np.nan))):
            K.loss_backward(d, oo, yy, LOSSES[loss])
            np.testing.assert_array_equal(d, dz)


@numba.njit
def _bce_one_term_at_a_time(z, y):
    # The element-wise loss's terms added one at a time, row by row, in order.
    total = 0.0
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            total += _elementwise_loss(z[i, j], y[i, j], K.BINARY_CROSS_ENTROPY)
    return total / z.size


@dtypes
@pytest.mark.parametrize("n, m", [(1, 1), (7, 9), (8, 8), (13, 5), (26, 5), (32, 10), (200, 2)])
def test_bce_loss_sums_its_terms_in_order_a_block_at_a_time(dtype, n, m):
    """Binary cross-entropy's terms are computed a block of stack scratch at
    a time (a loop that vectorises) and added in order: for sizes below, at
    and above one block (64 float64 terms) and several blocks, the value is
    the terms added one at a time, bit for bit, packed or strided, and
    NumPy's logaddexp(0, z) - z y to rounding."""
    rng = np.random.default_rng([n, m, 11])
    z = cast(rng.normal(size=(n, m)) * 4.0, dtype)
    y = cast(rng.random((n, m)) > 0.5, dtype)
    out = cast(ref_sigmoid(z), dtype)
    value = K.loss_forward(z, out, y, K.BINARY_CROSS_ENTROPY)
    assert value == _bce_one_term_at_a_time(z, y)
    assert K.loss_forward(_strided(z), _strided(out), _strided(y), K.BINARY_CROSS_ENTROPY) == value
    z64, y64 = z.astype(np.float64), y.astype(np.float64)
    np.testing.assert_allclose(value, np.mean(np.logaddexp(0.0, z64) - z64 * y64), rtol=1e-14)


@rows
@widths_m
@losses
@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
def test_loss_backward_matches_finite_difference_of_reference_loss(n, m, loss, soft):
    rng = np.random.default_rng([n, m, LOSSES[loss], 7, soft])
    z = rng.normal(size=(n, m)) * 2.0
    y = targets(rng, loss, n, m, soft=soft)
    if loss in ("mae", "huber"):
        # Keep every residual away from the kinks at 0 and +-1.
        d = away_from_zero(rng, (n, m), lo=0.05, hi=2.5)
        d = np.where(np.abs(np.abs(d) - 1.0) < 0.05, d * 1.2, d)
        z = y + d
    dz = np.full((n, m), np.nan)
    K.loss_backward(dz, ref_output(z, OUTPUT_OF_LOSS[loss]), y, LOSSES[loss])
    h = 1e-6
    fd = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[idx] = h
        fd[idx] = (ref_loss(z + e, y, loss) - ref_loss(z - e, y, loss)) / (2 * h)
    atol = 1e-8 * max(1.0, abs(ref_loss(z, y, loss)))  # FD roundoff ~ eps |E| / h
    np.testing.assert_allclose(dz, fd, rtol=1e-6, atol=atol)


@dtypes
def test_loss_backward_mae_at_zero_residual_is_zero(dtype):
    out = np.array([[0.5, -1.0, 2.0]], dtype=dtype)
    y = np.array([[0.5, 0.0, 2.0]], dtype=dtype)
    dz = np.full(out.shape, np.nan, dtype=dtype)
    K.loss_backward(dz, out, y, K.MAE)
    np.testing.assert_array_equal(dz, np.array([[0.0, -1 / 3, 0.0]], dtype=dtype))


# --------------------------------------------------------------------------
# sgd_update
# --------------------------------------------------------------------------

@dtypes
@pytest.mark.parametrize("size", [1, 3, 7, 17, 17 * 7 + 7])
@pytest.mark.parametrize("lr", [0.1, 1e-3, 0.0])
def test_sgd_update_in_place(dtype, size, lr):
    rng = np.random.default_rng([size, int(lr * 1e6)])
    p0 = cast(rng.normal(size=size), dtype)
    g = cast(rng.normal(size=size), dtype)
    arena = Arena(dtype, params=p0, grads=g)
    K.sgd_update(arena["params"], arena["grads"], lr)
    arena.check(outputs=("params",))
    lr_d = float(np.asarray(lr, dtype=dtype))  # the kernel steps with lr in the buffer's dtype
    assert_close(arena["params"], p0 - lr_d * g, dtype, scale=np.abs(p0).max())
    if lr == 0.0:
        np.testing.assert_array_equal(arena["params"], p0.astype(dtype))


# --------------------------------------------------------------------------
# rng_next / shuffle
# --------------------------------------------------------------------------

SEEDS = [0, 1, 1234567, 0x123456789ABCDEF0, 2 ** 64 - 1, 2 ** 64 - 0x9E3779B97F4A7C15]


def test_reference_splitmix64_known_vector():
    # Published splitmix64 outputs for seed 1234567 (e.g. Vigna's reference code).
    s, out = 1234567, []
    for _ in range(5):
        s, r = splitmix64(s)
        out.append(r)
    assert out == [6457827717110365317, 3203168211198807973, 9817491932198370423,
                   4593380528125082431, 16408922859458223821]


@pytest.mark.parametrize("s0", SEEDS, ids=hex)
def test_rng_next_matches_splitmix64(s0):
    state = np.array([s0], dtype=np.uint64)
    s = s0
    for _ in range(20):
        s, expected = splitmix64(s)
        r = K.rng_next(state)
        assert int(r) == expected
        assert int(state[0]) == s  # state advanced exactly like splitmix64's (wrapping)
    assert state.dtype == np.uint64 and state.shape == (1,)


@pytest.mark.parametrize("size", [0, 1, 2, 3, 17, 100])
@pytest.mark.parametrize("s0", SEEDS[:4], ids=hex)
def test_shuffle_is_seeded_fisher_yates_permutation(size, s0):
    values = np.arange(size, dtype=np.int64) * 10 - 7  # not just arange
    perm = values.copy()
    state = np.array([s0], dtype=np.uint64)
    K.shuffle(perm, state)
    # A permutation of the same values ...
    np.testing.assert_array_equal(np.sort(perm), values)
    # ... the same one for the same state ...
    again = values.copy()
    K.shuffle(again, np.array([s0], dtype=np.uint64))
    np.testing.assert_array_equal(again, perm)
    # ... exactly Fisher-Yates driven by splitmix64, one draw per swap.
    expected, s_after = fisher_yates(values.tolist(), s0)
    assert perm.tolist() == expected
    assert int(state[0]) == s_after


def test_shuffle_advances_state_so_successive_shuffles_differ():
    state = np.array([42], dtype=np.uint64)
    perms = []
    for _ in range(5):
        p = np.arange(17, dtype=np.int64)
        before = int(state[0])
        K.shuffle(p, state)
        assert int(state[0]) != before
        perms.append(tuple(p))
    assert len(set(perms)) == 5


def test_shuffle_is_roughly_uniform():
    # 6000 shuffles of 3 items: each of the 6 orders ~1000 times (chi-square, 5 dof).
    state = np.array([2024], dtype=np.uint64)
    counts = dict.fromkeys(itertools.permutations(range(3)), 0)
    for _ in range(6000):
        p = np.arange(3, dtype=np.int64)
        K.shuffle(p, state)
        counts[tuple(p)] += 1
    chi2 = sum((c - 1000) ** 2 / 1000 for c in counts.values())
    assert chi2 < 25.0, counts  # p ~ 1e-4 for a uniform shuffle


@pytest.mark.parametrize("dtype, logits", [
    (np.float64, [1e308, -1e308]),   # (finite logits whose difference overflows)
    (np.float64, [0.0, -np.inf]),
    (np.float32, [0.0, -np.inf]),
])
def test_a_one_hot_row_with_an_infinite_difference_gives_the_labels_bits(dtype, logits):
    """The one-hot row's 0 times an infinite logit difference was NaN where
    the label gave a finite loss (the kernels promise the same bits)."""
    import fastbp
    net = fastbp.MLP([1, 2], dtype=dtype.__name__, seed=0)
    net.params[:] = 0
    net.weights[0][:, 0] = logits
    X = np.ones((1, 1), dtype=dtype)
    ws = net.workspace(1)
    label, onehot = np.array([0], np.int64), np.array([[1, 0]], dtype)
    want = K.loss_value(net.params, ws, net.plan, X, label, K.CROSS_ENTROPY)
    assert np.isfinite(want)
    assert K.loss_value(net.params, ws, net.plan, X, onehot, K.CROSS_ENTROPY) == want
    g1, g2 = np.zeros_like(net.params), np.zeros_like(net.params)
    assert K.train_step(net.params.copy(), g2, ws, net.plan, X, onehot, K.CROSS_ENTROPY, 0.0) \
        == K.train_step(net.params.copy(), g1, ws, net.plan, X, label, K.CROSS_ENTROPY, 0.0) == want
