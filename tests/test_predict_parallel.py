"""Inference split across threads (MLP._split) and forward's direct call of
the compiled kernel: the same numbers as the one-thread path, bit for bit,
and as the NumPy reference."""
import copy
import pickle
import threading
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import fastbp
from fastbp import _blas, model, network, threads
from npref import forward as np_forward
from npref import output as np_output

SIZES = [7, 13, 5]


@pytest.fixture
def small_split(monkeypatch):
    """Split above 300 rows, in chunks of 128: a few chunks on small data."""
    monkeypatch.setattr(model, "SPLIT_ABOVE", 300)
    monkeypatch.setattr(model, "SPLIT_CHUNK", 128)


def make(output, dtype, sizes=SIZES, seed=0):
    net = fastbp.MLP(sizes, activation="tanh", output=output, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    net.params[:] = rng.normal(scale=0.7, size=net.n_params)  # biases too
    return net


def reference(net, X):
    X = X.toarray() if sp.issparse(X) else X
    zs, _ = np_forward(np.asarray(net.params, np.float64), list(net.sizes), list(net.activations),
                       np.asarray(X, np.float64))
    return np_output(zs[-1], net.output)


def rows(n, dtype, sparse, seed=2):
    X = np.random.default_rng(seed).normal(size=(n, SIZES[0])).astype(dtype)
    if sparse:
        X[np.abs(X) < 0.8] = 0
        return sp.csr_matrix(X)
    return X


def with_threads(monkeypatch, n):
    monkeypatch.setattr(threads, "inference_threads", lambda chunks: min(n, chunks))


def one_call(net, X):
    """The whole of X in one kernel call, a workspace of CHUNK rows: the
    path before the split (the kernel chunks by the workspace)."""
    from fastbp._validate import check_X, kernel_x
    X = check_X(X, net.sizes[0], net.dtype)
    out = np.empty((X.shape[0], net.sizes[-1]), net.dtype)
    ws = np.zeros(net._layout.workspace_size(model.CHUNK), net.dtype)
    network._predict(out, net.params, ws, net.plan, kernel_x(X), *net._kernel_codes)
    return out


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity"])
@pytest.mark.parametrize("sparse", [False, True])
def test_split_rows_give_the_one_thread_answers_bit_for_bit(small_split, monkeypatch, dtype,
                                                            output, sparse):
    net = make(output, dtype)
    X = rows(1001, dtype, sparse)  # 7 chunks of 126 and one of 119
    with_threads(monkeypatch, 1)
    one = net.forward(X)
    labels_one = net.predict(X)
    with_threads(monkeypatch, 3)
    many = net.forward(X)
    labels_many = net.predict(X)
    assert np.array_equal(one, many)
    assert np.array_equal(labels_one, labels_many) and labels_one.dtype == labels_many.dtype
    assert np.array_equal(many, one_call(net, X))  # the unsplit kernel call, too
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(many, reference(net, X), rtol=tol, atol=tol)
    if output == "softmax":
        assert np.array_equal(labels_many, many.argmax(axis=1))
        assert np.array_equal(net.predict_proba(X), many)
    elif output == "sigmoid":
        assert np.array_equal(labels_many, (many > 0.5).astype(np.int64))
    else:
        assert np.array_equal(labels_many, many)


def test_split_labels_use_the_classes_and_the_target_scaling(small_split, monkeypatch):
    with_threads(monkeypatch, 2)
    X = rows(777, "float64", False)
    net = make("softmax", "float64")
    net.classes_ = np.array(["a", "b", "c", "d", "e"])
    P = reference(net, X)
    assert np.array_equal(net.predict(X), net.classes_[P.argmax(axis=1)])
    reg = make("identity", "float64", sizes=[7, 6, 1])
    reg.set_target_scaling(np.array([3.0]), np.array([2.0]))
    np.testing.assert_allclose(reg.predict(X), reference(reg, X)[:, 0] * 2 + 3, rtol=1e-10)
    reg.set_input_scaling(np.full(7, 0.5), np.full(7, 2.0))
    np.testing.assert_allclose(reg.predict(X), reference(reg, (X - 0.5) / 2)[:, 0] * 2 + 3,
                               rtol=1e-10)


def test_split_runs_its_chunks_on_several_threads_with_the_blas_on_one(small_split, monkeypatch):
    net = make("softmax", "float32")
    X = rows(1000, "float32", False)
    expected = reference(net, X)
    kernel = network._predict
    seen = []

    def recording(out, *args):
        seen.append((threading.get_ident(), _blas.pool_threads()))
        threading.Event().wait(0.01)  # leave the other threads time to take chunks
        kernel(out, *args)

    monkeypatch.setattr(network, "_predict", recording)
    with_threads(monkeypatch, 3)
    before = _blas.pool_threads()
    P = net.predict_proba(X)
    np.testing.assert_allclose(P, expected, rtol=1e-4, atol=1e-6)
    assert len(seen) == 8  # every chunk once (8 of 125 rows)
    assert len({ident for ident, _ in seen}) > 1
    assert {pool for _, pool in seen} == {1}
    assert _blas.pool_threads() == before


def test_predict_keeps_to_chunks_of_rows(monkeypatch):
    monkeypatch.setattr(model, "SPLIT_ABOVE", 1000)
    monkeypatch.setattr(model, "SPLIT_CHUNK", 256)
    with_threads(monkeypatch, 2)
    net = make("softmax", "float32", sizes=[7, 13, 100])
    X = rows(40_000, "float32", False)
    net.predict(X)  # compile; the threads' workspaces (O(chunk) each) stay
    tracemalloc.start()
    labels = net.predict(X)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # the labels (8 bytes a row) and chunk-sized buffers; all outputs would be 400 a row
    assert peak < 40_000 * 8 + 2 * 256 * 100 * 4 * 4
    assert np.array_equal(labels, reference(net, X).argmax(axis=1))


def test_a_failing_chunk_raises_in_the_caller_and_the_pool_is_restored(small_split, monkeypatch):
    net = make("softmax", "float64")
    kernel = network._predict
    calls = []

    def failing(out, *args):
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("chunk three")
        kernel(out, *args)

    monkeypatch.setattr(network, "_predict", failing)
    with_threads(monkeypatch, 2)
    before = _blas.pool_threads()
    with pytest.raises(ValueError, match="chunk three"):
        net.predict_proba(rows(1000, "float64", False))
    assert len(calls) < 8 + 2  # the others stopped taking chunks
    assert _blas.pool_threads() == before
    assert threads._one_thread_users == 0


def test_inference_threads_follow_the_setting_the_chunks_and_the_free_cores(monkeypatch):
    monkeypatch.setattr(threads, "default_num_threads", lambda: 4)
    monkeypatch.setattr(threads, "_requested", 3)
    monkeypatch.setattr(threads, "others_running", lambda: 0)
    assert threads.inference_threads(10) == 3
    assert threads.inference_threads(2) == 2
    assert threads.inference_threads(1) == 1
    monkeypatch.setattr(threads, "others_running", lambda: 2)  # two cores taken
    assert threads.inference_threads(10) == 2
    monkeypatch.setattr(threads, "others_running", lambda: 9)  # none free: this one
    assert threads.inference_threads(10) == 1
    monkeypatch.setattr(threads, "_requested", 1)
    monkeypatch.setattr(threads, "others_running", lambda: 0)
    assert threads.inference_threads(10) == 1


def test_the_one_thread_block_nests_and_restores_the_pool():
    before = _blas.pool_threads()
    with threads.blas_on_one_thread():
        assert _blas.pool_threads() == 1
        with threads.blas_on_one_thread():
            assert _blas.pool_threads() == 1
        assert _blas.pool_threads() == 1
        assert threads.get_num_threads() == max(before, 1)  # the size it returns to
    assert _blas.pool_threads() == before


@pytest.mark.skipif(threads.default_num_threads() < 2 or _blas.LIBRARY == "scipy",
                    reason="needs a pool of two threads")
def test_a_thread_count_set_inside_the_one_thread_block_applies_after_it():
    previous = threads.get_num_threads()
    try:
        with threads.blas_on_one_thread():
            fastbp.set_num_threads(2)
            assert _blas.pool_threads() == 1
        assert _blas.pool_threads() == 2
    finally:
        fastbp.set_num_threads(previous)


# ----------------------------------------------- forward's direct call

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity"])
def test_the_direct_call_gives_the_dispatchers_answers(dtype, output):
    net = make(output, dtype)
    X = rows(9, dtype, False)
    first = net.forward(X)  # through the dispatcher; finds the compiled entry
    assert net._direct
    for x in (X, X[:1], X[3:5]):
        out = net.forward(x)
        assert np.array_equal(out, one_call(net, x))
    assert np.array_equal(net.forward(X), first)
    np.testing.assert_allclose(first, reference(net, X), rtol=1e-4 if dtype == "float32" else 1e-10)
    if output != "identity":
        assert np.array_equal(net.predict_proba(X[:1]), first[:1])
        labels = first.argmax(axis=1) if output == "softmax" else (first > 0.5).astype(np.int64)
        assert np.array_equal(net.predict(X[:1]), labels[:1])


def test_the_direct_call_leaves_other_arrays_to_the_checked_path():
    net = make("softmax", "float32")
    X = rows(6, "float32", False)
    net.forward(X)
    expected = reference(net, X)
    readonly = X.copy()
    readonly.setflags(write=False)
    raw = np.zeros(6 * 7 * 4 + 1, np.uint8)
    unaligned = raw[1:].view(np.float32).reshape(6, 7)
    unaligned[...] = X
    assert not unaligned.flags.aligned
    for x in (np.asfortranarray(X), X.astype(np.float64), readonly, unaligned, X.tolist(),
              np.repeat(X, 2, axis=1)[:, ::2]):
        np.testing.assert_allclose(net.forward(x), expected, rtol=1e-4, atol=1e-6)
    bad = X.copy()
    bad[2, 3] = np.nan
    params = net.params.copy()
    with pytest.raises(ValueError, match="finite; found nan"):
        net.forward(bad)
    assert np.array_equal(net.params, params)
    with pytest.raises(ValueError, match="features"):
        net.forward(X[:, :6].copy())


def test_the_direct_call_follows_scaling_set_after_it():
    net = make("softmax", "float64")
    X = rows(5, "float64", False)
    net.forward(X)
    assert net._direct
    net.set_input_scaling(np.full(7, 0.25), np.full(7, 3.0))
    np.testing.assert_allclose(net.forward(X), reference(net, (X - 0.25) / 3), rtol=1e-10)
    net.set_input_scaling(None, None)
    np.testing.assert_allclose(net.forward(X), reference(net, X), rtol=1e-10)


def test_a_model_that_used_the_direct_call_pickles_and_copies():
    net = make("softmax", "float32")
    X = rows(4, "float32", False)
    out = net.forward(X)
    assert net._direct
    for twin in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert np.array_equal(twin.forward(X), out)
        twin.params[:] = 0  # its own buffer: the direct call reads the twin's
        np.testing.assert_allclose(twin.forward(X), 0.2, rtol=1e-6)
        assert np.array_equal(net.forward(X), out)


@pytest.mark.parametrize("threads_", [1, 3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_split_rows_are_checked_finite_chunk_by_chunk(small_split, monkeypatch, dtype, threads_):
    """A right-typed X of many rows is scanned for NaN and infinities chunk
    by chunk on the threads that run them, not as a whole first: the same
    error, naming the first bad element, wherever it lies (the first chunk,
    the last, one in between, the last chunk's last row), for forward,
    predict_proba and predict; finite rows give the answers of the checked
    path, whose scan of the whole array never runs."""
    from fastbp import _validate
    with_threads(monkeypatch, threads_)
    net = make("softmax", dtype)
    X = rows(1001, dtype, False)  # 7 chunks of 126 and one of 119
    expected = reference(net, X)
    scans, chunks = [], []
    whole, per_chunk = _validate.all_finite, network.all_finite
    monkeypatch.setattr(model, "all_finite", lambda a: scans.append(a.shape) or whole(a))
    monkeypatch.setattr(_validate, "all_finite", lambda a: scans.append(a.shape) or whole(a))
    monkeypatch.setattr(network, "all_finite", lambda v: chunks.append(v.size) or per_chunk(v))
    tol = 1e-4 if dtype == "float32" else 1e-10
    for call in (net.forward, net.predict_proba):
        np.testing.assert_allclose(call(X), expected, rtol=tol, atol=tol)
    assert np.array_equal(net.predict(X), expected.argmax(axis=1))
    assert scans == []  # the whole-array scan never ran
    assert sorted(chunks) == sorted([126 * 7] * 21 + [119 * 7] * 3)  # 8 chunks, three calls
    for (r, c), value in [((0, 0), np.nan), ((1000, 6), np.inf), ((500, 3), -np.inf),
                          ((126, 1), np.nan), ((881, 0), np.inf)]:
        bad = X.copy()
        bad[r, c] = value
        if r != 881:
            bad[r + 1:, :][bad[r + 1:, :] > 2.5] = np.nan  # later ones too: the first is named
        message = rf"X must be finite; found {value} at index \({r}, {c}\) \(row {r}\)"
        for call in (net.forward, net.predict_proba, net.predict):
            with pytest.raises(ValueError, match=message):
                call(bad)


def test_the_finite_kernel_finds_every_kind_anywhere():
    """``network.all_finite`` (a vector loop now): NaN, inf and -inf at the
    first element, inside the vector body, and in the remainder; finite
    values as large as the dtype holds count as finite."""
    for dtype in (np.float32, np.float64):
        for n in (1, 7, 16, 33, 1000, 4099):
            v = np.random.default_rng(n).normal(size=n).astype(dtype)
            assert network.all_finite(v)
            assert network.all_finite(np.full(n, np.finfo(dtype).max, dtype))
            assert network.all_finite(np.full(n, -np.finfo(dtype).max, dtype))
            for i in sorted({0, n // 2, n - 1, max(0, n - 3)}):
                for value in (np.nan, np.inf, -np.inf):
                    bad = v.copy()
                    bad[i] = value
                    assert not network.all_finite(bad), (dtype, n, i, value)
    assert network.all_finite(np.zeros(0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_compiled_argmax_picks_as_numpy_does(dtype):
    rng = np.random.default_rng(3)
    out = rng.integers(0, 3, size=(400, 7)).astype(dtype)  # many ties
    out[10, 3] = np.nan
    out[11, 0] = np.nan
    out[12, :] = np.nan
    out[13, 6] = np.nan
    out[14, 2:5] = np.nan
    out[15, :] = -np.inf
    out[16, 5] = np.inf
    out[17, :] = 0.0
    out[17, 4] = -0.0
    idx = np.full(400, -1, np.int64)
    network.argmax_rows(out, idx)
    np.testing.assert_array_equal(idx, out.argmax(axis=1))
    one = np.full(5, -1, np.int64)
    network.argmax_rows(rng.normal(size=(5, 1)).astype(dtype), one)
    np.testing.assert_array_equal(one, 0)


def test_split_labels_of_a_softmax_come_from_the_compiled_argmax(small_split, monkeypatch):
    net = make("softmax", "float32")
    X = rows(1000, np.float32, False)
    calls = []
    real = network.argmax_rows
    monkeypatch.setattr(network, "argmax_rows", lambda out, idx: (calls.append(len(idx)),
                                                                  real(out, idx)))
    labels = net.predict(X)
    assert sum(calls) == 1000 and len(calls) > 1  # every chunk's rows, chunk by chunk
    np.testing.assert_array_equal(labels, reference(net, X).argmax(axis=1))
    assert labels.dtype == np.int64
