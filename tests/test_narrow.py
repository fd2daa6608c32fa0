"""The output layer's narrow product at inference (fastbp._narrow): the
register loop against NumPy on both sides of the shapes it takes, its rows
independent of the block they fall in, and the model's inference running
its last layer through it (and training not)."""
import numba
import numpy as np
import pytest

import fastbp
from fastbp import _narrow, model
from fastbp._blas import gemm_call
from npref import forward as np_forward

AVX512 = _narrow.available()


@numba.njit
def narrow(C, A, W):
    return _narrow.narrow_product(C, A, W)


@numba.njit
def blas(C, A, W):
    gemm_call(C, A, W, False, True, 1.0, 0.0)


def shapes(itemsize):
    """(m, n, k) on both sides of each limit of :func:`_narrow.takes`."""
    lanes = 64 // itemsize
    rows = (_narrow.LEAST_ROWS - 1, _narrow.LEAST_ROWS, 263, 1031)
    outputs = (lanes // 2, lanes // 2 + 1, lanes - 1, lanes, lanes + 1, lanes + 2, 2 * lanes,
               2 * lanes + 1)
    for m in rows:
        for n in outputs:
            yield m, n, 37
    for p in (1, 2):  # the inputs in slices of the buffer: one, one more, several
        n = lanes if p == 1 else 2 * lanes
        step = _narrow.slice_inputs(p)
        for k in (1, step - 1, step, step + 1, 3 * step + 5):
            yield 300, n, k


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_loop_matches_numpy_where_it_runs_and_leaves_c_alone_elsewhere(dtype):
    rng = np.random.default_rng(0)
    size = np.dtype(dtype).itemsize
    ran = 0
    for m, n, k in shapes(size):
        A = rng.normal(size=(m, k)).astype(dtype)
        W = rng.normal(size=(n, k)).astype(dtype)
        C = np.full((m, n), np.nan, dtype)
        took = narrow(C, A, W)
        assert took == _narrow.takes(m, n, k, size, AVX512), (m, n, k)
        if took:
            ran += 1
            ref = A.astype(np.float64) @ W.T.astype(np.float64)
            tol = 1e-5 if dtype == np.float32 else 1e-13
            np.testing.assert_allclose(C, ref, rtol=tol, atol=tol * np.sqrt(k) * 4)
        else:
            assert np.isnan(C).all(), (m, n, k)
    assert ran > 10 or not AVX512


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strided_or_misfit_arrays_are_left_to_blas(dtype):
    rng = np.random.default_rng(1)
    n = 64 // np.dtype(dtype).itemsize
    A = rng.normal(size=(300, 40)).astype(dtype)
    W = rng.normal(size=(n, 40)).astype(dtype)
    C = np.full((300, n), np.nan, dtype)
    assert narrow(C, A, W) == AVX512  # the shape it takes, packed
    for C2, A2, W2 in ((np.full((300, 2 * n), np.nan, dtype)[:, :n], A, W),  # C's rows strided
                       (C.copy(), np.asfortranarray(A), W),
                       (C.copy(), A, np.asfortranarray(W)),
                       (np.full((299, n), np.nan, dtype), A, W),  # rows do not fit
                       (C.copy(), A[:, :39], W),  # inputs do not fit
                       # one condition alone (review HHA): W's inputs, then
                       # a column stride (the rows' stride right)
                       (C.copy(), A, rng.normal(size=(n, 41)).astype(dtype)),
                       (C.copy(), A[:, ::-1], W),
                       (C.copy(), A, W[:, ::-1]),
                       (np.full((300, n), np.nan, dtype)[:, ::-1], A, W)):
        before = C2.copy()
        assert not narrow(C2, A2, W2)
        np.testing.assert_array_equal(C2, before)


@pytest.mark.skipif(not AVX512, reason="the loop runs only on a CPU with AVX-512")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_rows_outputs_do_not_depend_on_its_block(dtype):
    rng = np.random.default_rng(2)
    for n in (64 // np.dtype(dtype).itemsize - 3, 64 // np.dtype(dtype).itemsize + 5):
        A = rng.normal(size=(1031, 300)).astype(dtype)  # n k > NT_COPY_MOST; several slices
        W = rng.normal(size=(n, 300)).astype(dtype)
        whole = np.empty((1031, n), dtype)
        assert narrow(whole, A, W)
        for first in (1, 3, 7, 260):
            part = np.empty((1031 - first, n), dtype)
            assert narrow(part, np.ascontiguousarray(A[first:]), W)
            np.testing.assert_array_equal(part, whole[first:])


def _expected(net, X, last):
    """The outputs of ``net`` (identity hidden and output layers): its
    hidden layer by a one-layer model of its first layer (the same kernel,
    the same chunks of rows, so the same bits), the output layer's product
    by ``last``, then its bias."""
    first = fastbp.MLP(net.sizes[:2], output="identity", dtype=net.dtype)
    first.weights[0][...], first.biases[0][...] = net.weights[0], net.biases[0]
    hidden = first.forward(X)
    W2 = np.ascontiguousarray(net.weights[1])
    out = np.empty((X.shape[0], W2.shape[0]), net.dtype)
    if last is narrow:
        assert narrow(out, hidden, W2)
    else:
        last(out, hidden, W2)
    return out + net.biases[1]


@pytest.mark.skipif(not AVX512, reason="the loop runs only on a CPU with AVX-512")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inference_runs_the_output_layer_through_the_loop(dtype, monkeypatch):
    n_out = 10 if dtype == "float32" else 6
    # 500 hidden units: OpenBLAS sums more than 384 inputs in blocks, the
    # loop in one run, so the two round differently (up to 384 they agree
    # bit for bit: both add the inputs in order, one multiply-add each)
    net = fastbp.MLP([33, 500, n_out], activation="identity", output="identity", dtype=dtype,
                     seed=3)
    net.params[:] = np.random.default_rng(4).normal(scale=0.1, size=net.n_params)
    X = np.random.default_rng(5).normal(size=(3000, 33)).astype(dtype)
    for rows in (1000, 3000):  # one kernel call; the split across threads
        looped, blased = _expected(net, X[:rows], narrow), _expected(net, X[:rows], blas)
        assert not np.array_equal(looped, blased)
        np.testing.assert_allclose(looped, blased, rtol=1e-4 if dtype == "float32" else 1e-12,
                                   atol=1e-5 if dtype == "float32" else 1e-13)
        np.testing.assert_array_equal(net.predict(X[:rows]), looped)
        np.testing.assert_array_equal(net.forward(X[:rows]), looped)
    monkeypatch.setattr(model, "SPLIT_CHUNK", 300)  # chunks of 300 rows: still the loop
    np.testing.assert_array_equal(net.forward(X), _expected(net, X, narrow))
    # loss and evaluate read the same outputs: the mean squared error of them
    Y = np.random.default_rng(6).normal(size=(3000, n_out)).astype(dtype)
    ref = float(np.mean((looped.astype(np.float64) - Y) ** 2))  # PyTorch's mse
    assert net.loss(X, Y) == pytest.approx(ref, rel=1e-5 if dtype == "float32" else 1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes", [[20, 31, 9], [20, 31, 12], [20, 31, 16], [20, 17, 26],
                                   [20, 24, 17], [6, 30, 40], [20, 12, 6]])
def test_predict_proba_matches_the_numpy_reference_on_both_sides(dtype, sizes):
    net = fastbp.MLP(sizes, activation="tanh", dtype=dtype, seed=7)
    X = np.random.default_rng(8).normal(size=(2100, sizes[0])).astype(dtype)
    zs, _ = np_forward(np.asarray(net.params, np.float64), list(net.sizes), list(net.activations),
                       X.astype(np.float64))
    z = zs[-1] - zs[-1].max(axis=1, keepdims=True)
    ref = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    tol = 2e-6 if dtype == "float32" else 1e-14
    np.testing.assert_allclose(net.predict_proba(X), ref, rtol=tol, atol=tol)
    np.testing.assert_allclose(net.predict_proba(X[:700]), ref[:700], rtol=tol, atol=tol)


@pytest.mark.skipif(not AVX512, reason="the loop runs only on a CPU with AVX-512")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_network_without_hidden_layers_runs_its_one_layer_through_the_loop(dtype):
    n_out = 10 if dtype == "float32" else 6
    net = fastbp.MLP([500, n_out], output="identity", dtype=dtype, seed=9)
    net.params[:] = np.random.default_rng(10).normal(scale=0.1, size=net.n_params)
    X = np.random.default_rng(11).normal(size=(1000, 500)).astype(dtype)
    W = np.ascontiguousarray(net.weights[0])
    looped, blased = np.empty((1000, n_out), dtype), np.empty((1000, n_out), dtype)
    assert narrow(looped, X, W)
    blas(blased, X, W)
    assert not np.array_equal(looped, blased)  # 500 inputs: BLAS adds blocks of 384
    np.testing.assert_array_equal(net.forward(X), looped + net.biases[0])
    # sparse rows keep the sparse product
    import scipy.sparse as sp
    Xs = X.copy()
    Xs[np.abs(Xs) < 1.5] = 0
    np.testing.assert_allclose(net.forward(sp.csr_matrix(Xs)), Xs.astype(np.float64) @ W.T + net.biases[0],
                               rtol=1e-4 if dtype == "float32" else 1e-12,
                               atol=1e-4 if dtype == "float32" else 1e-12)
