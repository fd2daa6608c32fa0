"""Data at scale: inputs used in place, class labels instead of one-hot
targets, scipy.sparse inputs through a sparse first layer (issue 13).

The no-copy bounds are structural: the kernels are wrapped to record what
they receive, and the tests assert that they got the caller's own memory
(``np.shares_memory``), class labels (n,) and never an (n, n_out) matrix.
"""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import fastbp
from fastbp import network, ops, train
from fastbp.layout import N_IN, N_OUT, W_OFF

from blasbits import transposes_keep_bits


def _record(monkeypatch, module, name, calls):
    original = getattr(module, name)

    def recording(*args):
        calls.append((name, args))
        return original(*args)
    monkeypatch.setattr(module, name, recording)


@pytest.fixture
def kernel_calls(monkeypatch):
    """Every call the model makes to the data-reading kernels, with its arguments."""
    calls = []
    for name in ("_predict", "_loss_sum", "_gradient"):
        _record(monkeypatch, network, name, calls)
    choose = train.choose_epoch

    def choose_recording(fused, dropout):
        kernel = choose(fused, dropout)

        def epoch(*args):
            calls.append(("epoch", args))
            return kernel(*args)
        return epoch
    monkeypatch.setattr(train, "choose_epoch", choose_recording)
    return calls


def _X_args(calls):
    """(kernel, X, Y or None) of every recorded call: X is the 5th argument of
    _predict and _loss_sum, the 6th of _gradient and the epochs."""
    found = []
    for name, args in calls:
        if name == "_predict":
            found.append((name, args[4], None))
        elif name == "_loss_sum":
            found.append((name, args[3], args[4]))
        else:  # _gradient, epoch; an epoch's dense X comes as (X, flag)
            x = args[5]
            if name == "epoch" and len(x) == 2:  # (a CSR X is a longer tuple)
                assert x[1] is train.TRANSPOSED or x[1] is train.AS_STORED
                x = x[0]
            found.append((name, x, args[6]))
    return found


def _data(n=300, k=5, classes=3, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k)).astype(dtype)
    y = (np.argmax(X[:, :classes], axis=1)).astype(np.int64)
    return X, y


# ------------------------------------------------------------------ in place
def _frozen(a):
    a = a.copy()
    a.setflags(write=False)
    return a


def _memmap(tmp_path, a):
    path = tmp_path / "a.npy"
    np.save(path, a)
    return np.load(path, mmap_mode="r")


@pytest.mark.parametrize("kind", ["writable", "read-only", "memmap"])
def test_right_typed_inputs_reach_the_kernels_in_place(kind, kernel_calls, tmp_path):
    X, y = _data()
    Xv, yv = X[:60].copy(), y[:60].copy()
    if kind == "read-only":
        X, y, Xv, yv = map(_frozen, (X, y, Xv, yv))
    elif kind == "memmap":
        X, y = _memmap(tmp_path, X), np.load(_save(tmp_path / "y.npy", y), mmap_mode="r")
    net = fastbp.MLP([5, 8, 3], seed=0)
    net.fit(X, y, epochs=1, batch_size=16, verbose=0, validation_data=(Xv, yv))
    net.partial_fit(X, y)
    net.predict(X)
    net.predict_proba(X)
    net.loss(X, y)
    net.gradient(X, y)
    net.evaluate(Xv, yv)
    seen = _X_args(kernel_calls)
    assert {name for name, _, _ in seen} == {"epoch", "_predict", "_loss_sum", "_gradient"}
    for name, x, Y in seen:
        source_x = X if x.shape[0] == X.shape[0] else Xv
        assert np.shares_memory(x, source_x), name
        if Y is not None:
            source_y = y if Y.shape[0] == y.shape[0] else yv
            assert np.shares_memory(Y, source_y), name
    # The memory is the caller's, unchanged by training on it.
    np.testing.assert_array_equal(X, _data()[0])


def _save(path, a):
    np.save(path, a)
    return path


def test_other_inputs_are_converted_once(kernel_calls):
    X, y = _data(dtype=np.float64)
    net = fastbp.MLP([5, 8, 3], seed=0)  # float32: X needs converting
    net.fit(X, y, epochs=1, verbose=0)
    ((_, x, _),) = _X_args(kernel_calls)
    assert x.dtype == np.float32 and not np.shares_memory(x, X)
    np.testing.assert_array_equal(x, X.astype(np.float32))


# ------------------------------------------------------------------- labels
def test_softmax_targets_reach_the_kernels_as_labels(kernel_calls):
    X, y = _data(n=200, classes=3)
    net = fastbp.MLP([5, 8, 3], seed=0)
    net.fit(X, y.astype(np.int32), epochs=1, verbose=0, validation_split=0.25)
    net.loss(X, y)
    net.gradient(X, y)
    for name, _, Y in _X_args(kernel_calls):
        if Y is not None:
            assert Y.dtype == np.int64 and Y.ndim == 1, (name, Y.dtype, Y.shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_label_losses_equal_the_one_hot_ones_bitwise(dtype):
    rng = np.random.default_rng(3)
    z = (rng.normal(size=(9, 4)) * 5).astype(dtype)
    out = np.empty_like(z)
    ops.output_forward(out, z, ops.SOFTMAX)
    labels = rng.integers(0, 4, size=9)
    onehot = np.eye(4, dtype=dtype)[labels]
    for y in (labels, labels.astype(dtype)):  # int64, and the workspace's float copy
        assert ops.loss_forward(z, out, y, ops.CROSS_ENTROPY) == \
            ops.loss_forward(z, out, onehot, ops.CROSS_ENTROPY)
        got, want = np.empty_like(z), np.empty_like(z)
        ops.loss_backward(got, out, y, ops.CROSS_ENTROPY)
        ops.loss_backward(want, out, onehot, ops.CROSS_ENTROPY)
        np.testing.assert_array_equal(got, want)
    # and against the definition: -log softmax(z)_label, in float64
    z64 = z.astype(np.float64)
    lse = np.log(np.exp(z64 - z64.max(1, keepdims=True)).sum(1)) + z64.max(1)
    assert ops.loss_forward(z, out, labels, ops.CROSS_ENTROPY) == \
        pytest.approx(np.mean(lse - z64[np.arange(9), labels]), rel=1e-5)


@pytest.mark.parametrize("shuffled", [True, False])
def test_a_fit_on_labels_equals_train_epoch_on_one_hot_rows(shuffled):
    """The public kernel with one-hot rows (still accepted) and a fit with
    labels train the very same network, bit for bit."""
    X, y = _data(n=70, dtype=np.float64)
    a, b = (fastbp.MLP([5, 7, 3], dtype="float64", seed=2) for _ in range(2))
    a.fit(X, y, epochs=2, batch_size=8, lr=0.1, shuffle=shuffled, verbose=0)
    Y = np.eye(3)[y]
    opt = fastbp.SGD(lr=0.1)
    for _ in range(2):
        network.train_epoch(b.params, b.params[:0], np.zeros((2, 0)), b.workspace(8), b.plan, X, Y,
                            np.empty(70, np.int64), b._rng, 8, shuffled, b._loss_code, opt.code,
                            opt.hyper, 0, b._reg, -1, False)
    # (the fit stores the first layer transposed: bits where the BLAS keeps
    # them across that, see blasbits)
    if transposes_keep_bits(np.float64, 5, 7, [8, 70 % 8]):
        np.testing.assert_array_equal(a.params, b.params)
    else:
        np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-15)


def test_public_kernels_take_labels_and_check_them():
    X, y = _data(n=8, dtype=np.float64)
    net = fastbp.MLP([5, 4, 3], dtype="float64", seed=0)
    ws = net.workspace(8)
    want = fastbp.kernels.loss_value(net.params, ws, net.plan, X, np.eye(3)[y], net._loss_code)
    assert fastbp.kernels.loss_value(net.params, ws, net.plan, X, y, net._loss_code) == want
    for bad in (np.array([0, 1, 2, 3, 0, 1, 2, 0]), np.array([0, 1, 2, -1, 0, 1, 2, 0])):
        with pytest.raises(ValueError, match="class labels must be whole numbers in 0..n_out-1"):
            fastbp.kernels.loss_value(net.params, ws, net.plan, X, bad, net._loss_code)
    with pytest.raises(ValueError, match="cross-entropy only"):
        fastbp.kernels.loss_value(net.params, ws, net.plan, X, y, ops.MSE)


def test_many_classes_train_without_a_one_hot_matrix():
    """1000 classes: every target array the kernels see is O(n)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 8)).astype(np.float32)
    y = rng.integers(0, 1000, size=3000)
    net = fastbp.MLP([8, 16, 1000], seed=0)
    net.fit(X, y, epochs=1, batch_size=64, verbose=0, validation_split=0.1)
    assert np.isfinite(net.loss(X, y)) and net.predict(X).shape == (3000,)


# ------------------------------------------------------------------ bad input
def _snapshot(net):
    return net.params.copy(), net._rng.copy(), len(net.history)


def _unchanged(net, snap):
    np.testing.assert_array_equal(net.params, snap[0])
    np.testing.assert_array_equal(net._rng, snap[1])
    assert len(net.history) == snap[2]


def test_nan_in_a_memmap_is_found_by_the_chunked_scan_naming_the_row(tmp_path):
    X, y = _data(n=100_000, k=4)
    X[77_777, 2] = np.nan  # far beyond the first chunk
    X = _memmap(tmp_path, X)
    net = fastbp.MLP([4, 5, 3], seed=0)
    snap = _snapshot(net)
    with pytest.raises(ValueError, match=r"X must be finite; found nan at index \(77777, 2\) \(row 77777\)"):
        net.fit(X, y, verbose=0)
    _unchanged(net, snap)
    with pytest.raises(ValueError, match="row 77777"):
        net.predict(X)


def test_labels_out_of_range_leave_the_model_unchanged():
    X, y = _data(n=50)
    net = fastbp.MLP([5, 4, 3], seed=0)
    snap = _snapshot(net)
    for bad, found in ((np.r_[y[:-1], 3], "found 3"), (np.r_[y[:-1], -1], "found -1")):
        with pytest.raises(ValueError, match=f"outside 0..2.*{found}"):
            net.fit(X, bad, verbose=0)
        with pytest.raises(ValueError, match="outside 0..2"):
            net.fit(X, y, verbose=0, validation_data=(X, bad))
        with pytest.raises(ValueError, match="outside 0..2"):
            net.loss(X, bad)
    _unchanged(net, snap)


# ------------------------------------------------------------------- sparse
def _sparse_data(n=120, k=40, density=0.1, seed=0):
    rng = np.random.default_rng(seed)
    Xs = sp.random(n, k, density=density, format="csr", random_state=seed,
                   data_rvs=lambda size: rng.normal(size=size))
    W = rng.normal(size=(k, 3))
    y = np.argmax(Xs @ W, axis=1)
    return Xs, y


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("shuffled", [True, False])
@pytest.mark.parametrize("alpha, dropout", [(0.0, 0.0), (0.3, 0.0), (0.0, 0.4)])
def test_sparse_training_equals_dense_training(optimizer, shuffled, alpha, dropout):
    Xs, y = _sparse_data()
    # (tanh, the default: the kernels the first-layer tests below compile too)
    dense, sparse = (fastbp.MLP([40, 9, 3], dtype="float64", seed=5,
                                alpha=alpha, dropout=dropout) for _ in range(2))
    for net, X in ((dense, Xs.toarray()), (sparse, Xs)):
        net.fit(X, y, epochs=3, batch_size=16, lr=0.05, optimizer=optimizer, shuffle=shuffled,
                verbose=0)
    assert np.abs(dense.params - sparse.params).max() < 1e-10
    assert not np.array_equal(dense.params, fastbp.MLP([40, 9, 3], dtype="float64",
                                                       seed=5).params)  # it trained
    np.testing.assert_allclose(sparse.predict_proba(Xs), dense.predict_proba(Xs.toarray()),
                               rtol=0, atol=1e-10)
    np.testing.assert_array_equal(sparse.predict(Xs), dense.predict(Xs.toarray()))
    assert sparse.loss(Xs, y) == pytest.approx(dense.loss(Xs.toarray(), y), rel=1e-12)
    np.testing.assert_allclose(sparse.gradient(Xs, y), dense.gradient(Xs.toarray(), y),
                               rtol=0, atol=1e-12)


def test_sparse_formats_lbfgs_validation_and_chunks_equal_dense():
    Xs, y = _sparse_data(n=2500, k=30, density=0.05)  # more rows than a chunk (2048)
    for fmt in ("csc", "coo"):
        net = fastbp.MLP([30, 6, 3], dtype="float64", seed=1)
        assert net.loss(Xs.asformat(fmt), y) == pytest.approx(net.loss(Xs.toarray(), y), rel=1e-13)
    dense, sparse = (fastbp.MLP([30, 6, 3], dtype="float64", seed=1) for _ in range(2))
    h_dense = dense.fit(Xs.toarray(), y, epochs=3, optimizer="lbfgs", verbose=0,
                        validation_split=0.2)
    h_sparse = sparse.fit(Xs, y, epochs=3, optimizer="lbfgs", verbose=0, validation_split=0.2)
    assert np.abs(dense.params - sparse.params).max() < 1e-9
    np.testing.assert_allclose(h_sparse["val_loss"], h_dense["val_loss"], rtol=1e-10)
    np.testing.assert_allclose(sparse.numerical_gradient(Xs[:50], y[:50]),
                               dense.numerical_gradient(Xs[:50].toarray(), y[:50]), atol=1e-9)


def test_sparse_float32_csr_is_used_in_place(kernel_calls):
    Xs, y = _sparse_data()
    Xs = Xs.astype(np.float32)
    net = fastbp.MLP([40, 6, 3], seed=0)
    net.fit(Xs, y, epochs=1, verbose=0)
    net.predict(Xs)
    for name, x, _ in _X_args(kernel_calls):
        assert isinstance(x, tuple), name
        assert np.shares_memory(x[0], Xs.data) and np.shares_memory(x[1], Xs.indices), name


def test_sparse_bad_input_is_refused_and_changes_nothing():
    Xs, y = _sparse_data()
    net = fastbp.MLP([40, 6, 3], seed=0)
    snap = _snapshot(net)
    with pytest.raises(ValueError, match=r"X has 41 features per sample, but the network expects"
                                         r" sizes\[0\] = 40"):
        net.fit(sp.random(120, 41, density=0.1, format="csr"), y, verbose=0)
    bad = Xs.copy()
    bad.data[7] = np.inf
    row = int(np.searchsorted(bad.indptr, 7, side="right") - 1)
    with pytest.raises(ValueError, match=rf"X must be finite; found inf at index \({row}, "):
        net.fit(bad, y, verbose=0)
    with pytest.raises(TypeError, match="y must be a dense array"):
        net.fit(Xs, sp.csr_matrix(y.reshape(-1, 1)), verbose=0)
    _unchanged(net, snap)
    net.set_input_scaling(np.zeros(40), np.ones(40))
    with pytest.raises(ValueError, match="X is sparse, but this model standardises its inputs"):
        net.fit(Xs, y, verbose=0)
    with pytest.raises(ValueError, match="would make a sparse X dense"):
        fastbp.MLP([40, 6, 3]).standardize(Xs)
    _unchanged(net, snap)


def _broken(Xs, how):
    bad = Xs.copy()
    if how == "column index past the end":
        bad.indices[5] = Xs.shape[1] + 100
    elif how == "negative column index":
        bad.indices[5] = -1
    elif how == "indptr past the values":
        bad.indptr[-1] += 1000
    elif how == "indptr decreasing":
        bad.indptr[3] = bad.indptr[4] + 1
    elif how == "indptr not from 0":
        bad.indptr[0] = 1
    return bad


@pytest.mark.parametrize("how, message", [
    ("column index past the end", r"column index 140 in row \d+ is outside \[0, 40\)"),
    ("negative column index", r"column index -1 in row \d+ is outside \[0, 40\)"),
    ("indptr past the values", r"indptr ends at \d+, past its \d+ stored values"),
    ("indptr decreasing", "indptr must start at 0 and never decrease"),
    ("indptr not from 0", "indptr must start at 0 and never decrease")])
def test_a_malformed_csr_matrix_is_refused_before_a_kernel_reads_it(how, message):
    """The kernels index X's values with its index arrays unchecked: a CSR
    matrix whose arrays were changed after it was built (scipy checks them
    only then) read outside them, giving wrong numbers or a crash. Every
    entry point refuses it by name, the model and the matrix unchanged."""
    Xs, y = _sparse_data()
    net = fastbp.MLP([40, 6, 3], seed=0)
    snap = _snapshot(net)
    bad = _broken(Xs, how)
    kept = [a.copy() for a in (bad.data, bad.indices, bad.indptr)]
    for call in (lambda: net.fit(bad, y, verbose=0), lambda: net.predict_proba(bad),
                 lambda: net.evaluate(bad, y), lambda: net.gradient(bad, y)):
        with pytest.raises(ValueError, match="X is not a valid CSR matrix: " + message):
            call()
    _unchanged(net, snap)
    for a, b in zip((bad.data, bad.indices, bad.indptr), kept):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("fmt, how, message", [
    ("csc", lambda m: m.indices.__setitem__(0, 10 ** 9), r"CSC matrix: row index 1000000000 in"
                                                         r" column 0 is outside \[0, 30\)"),
    ("csc", lambda m: m.indices.__setitem__(0, -5), r"CSC matrix: row index -5 in column 0"),
    ("coo", lambda m: m.row.__setitem__(0, 30), r"COO matrix: row index 30 of value 0 is outside"
                                                r" \[0, 30\)"),
    ("coo", lambda m: m.col.__setitem__(1, -1), r"COO matrix: column index -1 of value 1"),
])
def test_csc_and_coo_indices_are_checked_before_scipy_converts_them(fmt, how, message):
    """Only CSR arrays were checked; SciPy converted the others unchecked: a
    row index out of range in a CSC matrix was dropped silently, a huge one
    crashed the process."""
    Xs, y = _sparse_data()
    Xs, y = Xs[:30], y[:30]
    net = fastbp.MLP([40, 6, 3], seed=0)
    snap = _snapshot(net)
    bad = Xs.asformat(fmt).copy()
    how(bad)
    for call in (lambda: net.fit(bad, y, verbose=0), lambda: net.predict_proba(bad)):
        with pytest.raises(ValueError, match="X is not a valid " + message):
            call()
    _unchanged(net, snap)


def test_sparse_edge_cases_of_shape_storage_and_conversion():
    """A 1-D sparse array raised IndexError from the message's own f-string;
    unused storage past indptr[-1] holding a NaN was refused as row 40 of a
    40-row matrix; a float64 1e300 in a float32 model was "inf" without
    saying the conversion made it."""
    import scipy.sparse as sp
    Xs, y = _sparse_data()
    net = fastbp.MLP([40, 6, 3], seed=0)
    with pytest.raises(ValueError, match=r"X must be 2-D \(n_samples, n_features\); got a sparse"
                                         r" array of shape \(40,\)"):
        net.predict(sp.coo_array(np.ones(40)))
    slack = Xs.copy()
    slack.data = np.r_[slack.data, np.nan].astype(slack.data.dtype)
    slack.indices = np.r_[slack.indices, 0].astype(slack.indices.dtype)
    np.testing.assert_array_equal(net.predict_proba(slack), net.predict_proba(Xs))
    big = Xs.astype(np.float64)
    big.data[3] = 1e300
    with pytest.raises(ValueError, match=r"found inf at index .* \(after conversion to float32\)"):
        net.predict(big)
    big.data[3] = np.inf
    with pytest.raises(ValueError, match=r"found inf at index \(\d+, \d+\) \(row \d+\)$"):
        net.predict(big)


def test_sparse_index_arrays_in_another_byte_order_or_type_are_read_as_native():
    """Index arrays the kernels do not take (big-endian, 16-bit, unsigned) are
    converted, never passed on: the same answers as native int32; those
    that are not integers are refused by name."""
    Xs, y = _sparse_data()
    net = fastbp.MLP([40, 6, 3], seed=0)
    want = net.predict_proba(Xs)
    for indices, indptr in ((">i4", ">i4"), (">i8", "<i8"), ("<u4", "<u4"), ("<i2", "<i4")):
        other = Xs.copy()
        other.indices, other.indptr = Xs.indices.astype(indices), Xs.indptr.astype(indptr)
        np.testing.assert_array_equal(net.predict_proba(other), want)
    other = Xs.copy()
    other.indices = Xs.indices.astype(np.float64)
    with pytest.raises(TypeError, match="index arrays of dtype float64 .indices. and int32"
                                        " .indptr.; they must be integers"):
        net.predict_proba(other)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transposed_sparse_kernels_give_the_bits_of_those_on_w(dtype):
    """The first layer stored transposed (Wt = W^T, what a fit on CSR data
    runs): its product, weight gradient and SGD step equal the kernels on W
    bit for bit (the same sums in the same order), and NumPy's result to
    rounding, on a row selection of a CSR matrix with an empty row, for
    layers narrower than the kernels' tile of units, as wide, and wider."""
    rng = np.random.default_rng(3)
    X = sp.random(30, 17, density=0.3, format="csr", dtype=dtype, random_state=3).tolil()
    X[6, :] = 0
    X = X.tocsr()
    X.eliminate_zeros()
    rows = rng.permutation(30).astype(np.int64)
    rows[4] = 6  # the empty row is in the batch
    x = (X.data, X.indices, X.indptr, rows, 2, 7)  # the batch: rows[2:9]
    dense = X.toarray()[rows[2:9]]
    # m: below the kernels' tile (TILE = 64 units), a tile's multiples, and 100:
    # the product's last tile overlapping the one before, the gradient row by row
    for m in (5, ops.TILE, 100, 2 * ops.TILE):
        W = rng.normal(size=(m, 17)).astype(dtype)
        Wt = np.ascontiguousarray(W.T)
        dout = rng.normal(size=(7, m)).astype(dtype)
        tol = 1e-5 if dtype == np.float32 else 1e-12

        out, out_t = np.full((7, m), np.nan, dtype), np.full((7, m), np.nan, dtype)
        ops.sparse_product(out, x, W)
        ops.sparse_product_t(out_t, x, Wt)
        np.testing.assert_array_equal(out_t, out)
        np.testing.assert_allclose(out_t, dense @ W.T, rtol=tol, atol=tol)

        dW, dWt = np.full_like(W, np.nan), np.full_like(Wt, np.nan)
        ops.sparse_weight_grad(dW, dout, x)
        ops.sparse_weight_grad_t(dWt, dout, x)
        np.testing.assert_array_equal(dWt, dW.T)
        np.testing.assert_allclose(dWt, dense.T @ dout, rtol=tol, atol=tol)

        for decay in (1.0, 0.9):
            W1, Wt1 = W.copy(), Wt.copy()
            ops.sparse_weight_sgd(W1, dout, x, 0.1, decay)
            ops.sparse_weight_sgd_t(Wt1, dout, x, 0.1, decay)
            np.testing.assert_array_equal(Wt1, W1.T)
            np.testing.assert_allclose(Wt1, decay * Wt - 0.1 * dense.T @ dout, rtol=tol, atol=tol)


FIRST_LAYER_FITS = {
    "sgd": dict(fit=dict(lr=0.05)),
    "adam": dict(fit=dict(optimizer="adam", lr=0.01)),
    "l2 and dropout": dict(net=dict(alpha=0.3, dropout=0.3), fit=dict(lr=0.05)),
    "momentum, weights": dict(fit=dict(optimizer=lambda: fastbp.optim.SGD(lr=0.05, momentum=0.9),
                                       sample_weight=np.linspace(0.5, 2.0, 300))),
    "diverging": dict(net=dict(activation="relu"), fit=dict(lr=1e8, on_divergence="stop")),
    "lbfgs": dict(fit=dict(optimizer="lbfgs")),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(FIRST_LAYER_FITS))
def test_sparse_fits_with_the_first_layer_transposed_equal_those_on_w(case, dtype, monkeypatch):
    """A fit on CSR data runs its epochs with the first layer's block of the
    parameters, gradient and optimizer state stored transposed
    (fastbp.train.first_layer_transposed, when the data's non-zeros pay for
    the move, as here): its weights, losses and optimizer state equal a fit
    stored as W throughout, bit for bit (with an L2 term the loss to
    rounding: its sum of squares adds the block in the order it is stored),
    and come back as W after each epoch (also through a divergence's replays)."""
    Xs, y = _sparse_data(n=300)
    kw = FIRST_LAYER_FITS[case]
    # (in the optimizer's state too: a second fit continues from it)
    results = []
    for transposed in (False, True):
        monkeypatch.setattr(train, "transpose_first_layer", lambda *a, on=transposed: on)
        net = fastbp.MLP([40, 9, 3], dtype=dtype, seed=5, **{"activation": "tanh", **kw.get("net", {})})
        fit = {k: v() if callable(v) else v for k, v in kw["fit"].items()}  # a fresh optimizer
        h = net.fit(Xs, y, epochs=3, batch_size=16, verbose=0, **fit)
        assert h.diverged == (case == "diverging")
        results.append((net.params.copy(), list(h["loss"])))
    monkeypatch.undo()
    (p0, l0), (p1, l1) = results
    np.testing.assert_array_equal(p1, p0)
    if "l2" in case:  # the L2 term's sum of squares adds the block in its stored order
        np.testing.assert_allclose(l1, l0, rtol=1e-12)
    else:
        assert l1 == l0
    assert not np.array_equal(p0, fastbp.MLP([40, 9, 3], activation="tanh", dtype=dtype,
                                             seed=5).params)  # it trained
    net = fastbp.MLP([40, 9, 3], dtype=dtype, seed=5)
    assert train.transpose_first_layer(net.plan, Xs.nnz, 1)  # the default path here


@pytest.mark.parametrize("sizes, batch, n", [([64, 32, 10], 32, 320), ([7, 5, 3], 13, 300),
                                            ([64, 32, 10], 32, 300)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(FIRST_LAYER_FITS))
def test_dense_fits_with_the_first_layer_transposed_equal_those_on_w(case, dtype, sizes, batch, n,
                                                                      monkeypatch):
    """The same for dense X: where a step's forward product would copy W^T
    (fastbp.train.dense_transposes, the default for 64-32-10 at batch 32 and
    for fewer than 32 inputs), the epochs run with the first layer stored
    transposed, and the weights, losses and optimizer state equal a fit
    stored as W, bit for bit (shuffled batches, odd sizes), wherever every
    batch's product copies. A last batch of 12 rows of 64 inputs does not
    (OpenBLAS's own small kernel runs x @ W^T on W), and rounds its product
    differently from x @ (W^T stored): equal to rounding there."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, sizes[0])).astype(dtype)
    y = np.argmax(X[:, :sizes[-1]], axis=1)
    kw = FIRST_LAYER_FITS[case]
    results = []
    for transposed in (False, True):
        monkeypatch.setattr(train, "dense_transposes", lambda *a, on=transposed: on)
        net = fastbp.MLP(sizes, dtype=dtype, seed=5, **{"activation": "tanh", **kw.get("net", {})})
        fit = {k: v() if callable(v) else v for k, v in kw["fit"].items()}
        if "sample_weight" in fit:
            fit["sample_weight"] = np.linspace(0.5, 2.0, n)
        h = net.fit(X, y, epochs=3, batch_size=batch, verbose=0, **fit)
        assert h.diverged == (case == "diverging")
        results.append((net.params.copy(), list(h["loss"])))
    monkeypatch.undo()
    (p0, l0), (p1, l1) = results
    every_batch_copies = all(fastbp._blas.copies_transposed(rows, sizes[1], sizes[0])
                             for rows in {batch, n % batch or batch})
    assert every_batch_copies == (n != 300 or sizes[0] != 64)
    if every_batch_copies and transposes_keep_bits(dtype, sizes[0], sizes[1],
                                                   {batch, n % batch or batch}):   # (blasbits)
        np.testing.assert_array_equal(p1, p0)
        if "l2" in case:
            np.testing.assert_allclose(l1, l0, rtol=1e-12)
        else:
            assert l1 == l0
    elif case != "diverging":  # (a diverging fit's last good state is a matter of rounding)
        tol = 1e-4 if dtype == "float32" else 1e-10
        np.testing.assert_allclose(p1, p0, rtol=tol, atol=tol)
        np.testing.assert_allclose(l1, l0, rtol=tol)
    assert not np.array_equal(p0, fastbp.MLP(sizes, activation="tanh", dtype=dtype,
                                             seed=5).params)  # it trained
    plan = fastbp.MLP(sizes, dtype=dtype).plan
    assert train.dense_transposes(plan, batch, n // batch, 1)


def test_sklearn_sparse_fits_with_the_first_layer_transposed_equal_those_on_w(monkeypatch):
    """The same for fastbp.sklearn on CSR data (scikit-learn's SGD and Adam)."""
    import fastbp.sklearn as fsk
    Xs, y = _sparse_data(n=300)
    for params in (dict(solver="sgd", batch_size=16), dict(solver="adam", alpha=0.1)):
        fitted = []
        for transposed in (False, True):
            monkeypatch.setattr(fsk, "transpose_first_layer", lambda *a, on=transposed: on)
            fitted.append(fsk.MLPClassifier(hidden_layer_sizes=(9,), max_iter=4, random_state=0,
                                            **params).fit(Xs, y))
        for a, b in zip(fitted[0].coefs_ + fitted[0].intercepts_,
                        fitted[1].coefs_ + fitted[1].intercepts_):
            np.testing.assert_array_equal(b, a)
        assert fitted[1].loss_curve_ == fitted[0].loss_curve_


def test_first_layer_transposed_moves_the_block_and_back_even_on_an_error():
    net = fastbp.MLP([5, 3, 2], seed=0)
    start, stop = net.plan[0, W_OFF], net.plan[0, W_OFF] + 15
    arrays = [net.params.copy(), np.arange(net.params.size, dtype=net.params.dtype)]
    before = [a.copy() for a in arrays]
    with train.first_layer_transposed(net.plan, arrays):
        for a, b in zip(arrays, before):
            np.testing.assert_array_equal(a[start:stop], b[start:stop].reshape(3, 5).T.ravel())
            np.testing.assert_array_equal(a[stop:], b[stop:])  # the rest stays
    with pytest.raises(RuntimeError):
        with train.first_layer_transposed(net.plan, arrays):
            raise RuntimeError
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("rows", [120, 5000])  # one call; rows split over threads
def test_sparse_forward_passes_with_the_first_layer_transposed_equal_those_on_w(rows, monkeypatch):
    """predict, predict_proba, loss, evaluate and gradient (the last three
    weighted too), and numerical_gradient, on CSR data read a copy of the
    parameters with the first layer stored transposed
    (fastbp.model.MLP._reading, when the non-zeros pay for the copy, as
    here): the same outputs and gradients (moved back to W's layout), bit
    for bit, as the kernels on W; the model's own parameters untouched."""
    import fastbp.model
    Xs, y = _sparse_data(n=rows)
    net = fastbp.MLP([40, 9, 3], activation="tanh", dtype="float64", seed=5)
    net.fit(Xs, y, epochs=2, batch_size=16, lr=0.05, verbose=0)
    before = net.params.copy()
    got = []
    for transposed in (False, True):
        monkeypatch.setattr(fastbp.model, "transpose_first_layer", lambda *a, on=transposed: on)
        w = np.linspace(0.5, 2, rows)
        got.append((net.predict_proba(Xs), net.predict(Xs), net.loss(Xs, y), net.evaluate(Xs, y),
                    net.gradient(Xs, y), net.gradient(Xs, y, sample_weight=w),
                    net.loss(Xs, y, sample_weight=w), net.evaluate(Xs, y, sample_weight=w),
                    net.numerical_gradient(Xs[:60], y[:60])))
    monkeypatch.undo()
    for a, b in zip(*got):
        if isinstance(a, dict):
            assert a == b
        else:
            np.testing.assert_array_equal(b, a)
    np.testing.assert_array_equal(net.params, before)
    np.testing.assert_allclose(got[1][0], net.predict_proba(Xs.toarray()), rtol=0, atol=1e-12)
    np.testing.assert_allclose(got[1][4], net.gradient(Xs.toarray(), y), rtol=0, atol=1e-12)
    assert train.transpose_first_layer(net.plan, Xs.nnz, 2)  # the default path here


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_lbfgs_on_csr_runs_with_the_first_layer_transposed(monkeypatch):
    """fastbp.sklearn's L-BFGS on CSR data evaluates its objective with the
    first layer's block stored transposed, moved there once per fit (where
    scikit-learn's packing finds coefs_[0] in order) and back after, also
    when an evaluation raises: the same fit as on W, bit for bit without an
    L2 term, to rounding with one (its sum of squares adds the block in the
    order it is stored)."""
    import fastbp.sklearn as fsk
    Xs, y = _sparse_data(n=300)
    objective = fsk.kernels.objective_sklearn
    seen = []

    def spy(*args):
        seen.append(len(args[4]))  # X: the CSR tuple, 7 elements when transposed
        return objective(*args)

    monkeypatch.setattr(fsk.kernels, "objective_sklearn", spy)
    for alpha in (0.0, 0.01):
        fitted = []
        for transposed in (False, True):
            monkeypatch.setattr(fsk, "transpose_first_layer", lambda *a, on=transposed: on)
            seen.clear()
            fitted.append(fsk.MLPClassifier(hidden_layer_sizes=(9,), solver="lbfgs", max_iter=25,
                                            alpha=alpha, random_state=0).fit(Xs, y))
            assert set(seen) == {7 if transposed else 6}
        (a, b) = fitted
        assert a.n_iter_ == b.n_iter_
        for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            if alpha == 0:
                np.testing.assert_array_equal(v, u)
            else:
                np.testing.assert_allclose(v, u, rtol=0, atol=1e-10 * np.abs(u).max())
    monkeypatch.setattr(fsk, "transpose_first_layer", train.transpose_first_layer)
    assert train.transpose_first_layer(fitted[0].net_.plan, Xs.nnz, 1)  # the default path here

    # an evaluation that raises: the parameters come back in W's layout
    blocks = []

    def failing(grads, params, ws, plan, *rest):
        start, m, k = plan[0, W_OFF], plan[0, N_OUT], plan[0, N_IN]
        blocks.append(params[start:start + m * k].copy())  # as the kernel reads it: W.T
        if len(blocks) == 3:
            raise KeyboardInterrupt
        return objective(grads, params, ws, plan, *rest)

    monkeypatch.setattr(fsk.kernels, "objective_sklearn", failing)
    est = fsk.MLPClassifier(hidden_layer_sizes=(9,), solver="lbfgs", max_iter=25, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        est.fit(Xs, y)
    net = est.net_
    start = net.plan[0, W_OFF]
    np.testing.assert_array_equal(net.params[start:start + 9 * 40],
                                  blocks[-1].reshape(40, 9).T.ravel())


def test_predict_from_another_thread_during_a_sparse_fit_sees_w():
    # The epochs on CSR data run with the first layer stored transposed: in a
    # private copy, so that a thread predicting meanwhile reads W (a review
    # found predictions off by 0.5 while the model's own buffer held W.T).
    import threading
    Xs = sp.random(20000, 50, density=0.2, format="csr", random_state=0, dtype=np.float32)
    y = np.arange(20000) % 3
    net = fastbp.MLP([50, 16, 3], seed=0)
    Xq = np.random.default_rng(1).normal(size=(5, 50)).astype(np.float32)
    sgd = fastbp.SGD(lr=1e-30)            # the weights do not move: any change is a misread
    net.fit(Xs, y, optimizer=sgd, verbose=0)
    before, params = net.predict_proba(Xq), net.params.copy()
    stop, worst, reads = threading.Event(), [0.0], [0]

    def watch():
        while not stop.is_set():
            worst[0] = max(worst[0], float(np.abs(net.predict_proba(Xq) - before).max()))
            reads[0] += 1
    thread = threading.Thread(target=watch)
    thread.start()
    try:
        net.fit(Xs, y, epochs=10, optimizer=sgd, verbose=0)
    finally:
        stop.set()
        thread.join()
    assert reads[0] > 10 and worst[0] == 0.0
    np.testing.assert_allclose(net.params, params, rtol=0, atol=1e-20)   # (zero biases move by 1e-29)


@pytest.mark.parametrize("transposed", [True, False])
def test_a_save_or_copy_during_an_epoch_sees_the_optimizer_state_in_ws_layout(
        transposed, tmp_path, monkeypatch):
    """Review ED: with the first layer stored transposed for the epoch, the
    optimizer's own state rows held W.T while the kernel ran: a save or a
    deep copy from another thread (the kernels release the GIL) wrote the
    first layer's Adam moments transposed, and training on from them applied
    them to the wrong weights. The epoch works on private copies now: a read
    during the kernel sees the parameters and state as at the epoch's start.
    (The read runs inside the kernel's call, standing in for the thread.)"""
    import copy
    X = np.random.default_rng(0).normal(size=(64, 7))
    y = np.arange(64) % 3
    net = fastbp.MLP([7, 5, 3], dtype="float64", seed=0)
    net.fit(X, y, epochs=1, batch_size=16, optimizer="adam", lr=0.01, verbose=0)
    monkeypatch.setattr(train, "dense_transposes", lambda *a: transposed)
    real, seen = train.choose_epoch, []

    def choose(*a):
        kernel = real(*a)

        def reading(params, grads, state, *rest):
            # W's layout of what the kernel is given, before it runs
            p, s = params.copy(), state.copy()
            for a in (p, *s) if transposed else ():
                train.move_first_layer(net.plan, a, False)
            net.save(tmp_path / "during.npz")
            seen.append((p, s, copy.deepcopy(net), fastbp.load(tmp_path / "during.npz")))
            return kernel(params, grads, state, *rest)
        return reading
    monkeypatch.setattr(train, "choose_epoch", choose)
    net.fit(X, y, epochs=2, batch_size=16, verbose=0)
    assert len(seen) == 2
    for p, s, copied, loaded in seen:
        for other in (copied, loaded):
            np.testing.assert_array_equal(other.params, p)
            np.testing.assert_array_equal(other.optimizer.state, s)


def test_a_sklearn_sparse_epoch_with_the_first_layer_transposed_leaves_the_model_as_w(
        monkeypatch):
    """Review EG: fastbp.sklearn's epochs on CSR data moved the model's own
    parameters and optimizer state to W.T in place: a thread predicting or
    pickling meanwhile read W.T (probabilities off by 0.45). The epochs run
    on private copies now; read during the kernel (standing in for the
    thread), the model holds W and its state as at the epoch's start."""
    import pickle

    import fastbp.sklearn as fsk
    Xs, y = _sparse_data(n=300)
    monkeypatch.setattr(fsk, "transpose_first_layer", lambda *a: True)
    real, seen = fsk.kernels.epoch_sklearn, []
    est = fsk.MLPClassifier(hidden_layer_sizes=(9,), max_iter=3, random_state=0, solver="adam")

    def reading(params, grads, state, ws, plan, *rest):
        p, s = params.copy(), state.copy()       # what the kernel gets, back in W's layout
        for a in (p, *s):
            train.move_first_layer(plan, a, False)
        copied = pickle.loads(pickle.dumps(est))
        seen.append((p, s, copied.net_.params.copy(), copied._optimizer.state.copy(),
                     est.predict_proba(Xs[:5])))
        return real(params, grads, state, ws, plan, *rest)
    monkeypatch.setattr(fsk.kernels, "epoch_sklearn", reading)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")     # (max_iter=3: not converged)
        est.fit(Xs, y)
    assert len(seen) == 3
    monkeypatch.setattr(fsk.kernels, "epoch_sklearn", real)
    for p, s, params, state, proba in seen:
        np.testing.assert_array_equal(params, p)
        np.testing.assert_array_equal(state, s)
        twin = copy_with(est, p)
        np.testing.assert_array_equal(proba, twin.predict_proba(Xs[:5]))


def copy_with(est, params):
    import copy
    twin = copy.deepcopy(est)
    twin.net_.params[:] = params
    return twin


@pytest.mark.parametrize("dtype, big", [("float64", 1e308), ("float32", 2e38)])
def test_sparse_duplicates_summing_past_the_range_are_refused_as_dense(dtype, big):
    """Review HAW: a CSR X storing (0, 0) twice, each entry finite, their sum
    (the cell's value to SciPy and in X.toarray()) inf in the model's dtype,
    was accepted and answered finite numbers, where the dense X and its COO
    and CSC forms are refused. The caller's matrix is left as it was."""
    net = fastbp.MLP([2, 3, 2], dtype=dtype, seed=0)
    before = net.params.copy()
    X = sp.csr_matrix((np.array([big, big]), np.array([0, 0]), np.array([0, 2, 2, 2])),
                      shape=(3, 2))
    assert not np.isfinite(X.toarray().astype(dtype)[0, 0])
    y = np.array([0, 1, 0])
    for call in (net.predict_proba, lambda X: net.loss(X, y),
                 lambda X: net.fit(X, y, epochs=1, verbose=0)):
        with pytest.raises(ValueError, match=r"X must be finite; found inf at index \(0, 0\)"
                                             r" \(row 0\), the sum of its duplicate entries"):
            call(X)
    np.testing.assert_array_equal(net.params, before)
    np.testing.assert_array_equal(X.data, [big, big])
    np.testing.assert_array_equal(X.indices, [0, 0])
    # Duplicates that sum within range are read as their sum, as dense.
    ok = sp.csr_matrix((np.array([big, -big / 2, 1.0]), np.array([0, 0, 1]),
                        np.array([0, 3, 3, 3])), shape=(3, 2))
    np.testing.assert_allclose(net.predict_proba(ok), net.predict_proba(ok.toarray()),
                               rtol=1e-6 if dtype == "float32" else 1e-14)


def test_sparse_duplicate_sums_are_those_of_toarray_and_cost_no_copy():
    """Review HBB: the duplicate sums were taken in the model's dtype, not
    X's: a float64 X whose entries sum within float32's range (2e38 + 2e38 -
    2e38, X.toarray() 2e38) was refused by a float32 model that takes the
    dense and COO forms, and a float32 X summing to inf (X.toarray() inf)
    was taken by a float64 model; and every non-canonical CSR (a sparse
    product's unsorted indices) was copied and sorted on every call."""
    y = np.array([0, 1, 0])
    rows = np.array([0, 3, 3, 3])
    a = sp.csr_matrix((np.array([2e38, 2e38, -2e38]), np.array([0, 0, 0]), rows), shape=(3, 2))
    assert np.isfinite(a.toarray().astype(np.float32)).all()
    net32 = fastbp.MLP([2, 3, 2], dtype="float32", seed=0)
    np.testing.assert_array_equal(net32.predict_proba(a), net32.predict_proba(a.toarray()))
    assert net32.loss(a.tocoo(), y) == net32.loss(a, y)
    b = sp.csr_matrix((np.array([3e38, 3e38], dtype=np.float32), np.array([0, 0]),
                       np.array([0, 2, 2, 2])), shape=(3, 2))
    assert not np.isfinite(b.toarray()).all()
    net64 = fastbp.MLP([2, 3, 2], dtype="float64", seed=0)
    for X in (b, b.tocoo(), b.toarray()):
        with pytest.raises(ValueError, match=r"X must be finite; found inf at index \(0, 0\)"):
            net64.predict_proba(X)
    # Values far from the range: not summed (no copy, no sort), whatever the order.
    unsorted = sp.csr_matrix((np.array([0.5, 1.0, 2.0, -1.0, 0.25]), np.array([1, 0, 1, 1, 0]),
                              np.array([0, 3, 3, 5])), shape=(3, 2))
    assert not unsorted.has_canonical_format
    before = [unsorted.data.copy(), unsorted.indices.copy()]

    def refused(*args, **kwargs):
        raise AssertionError("summed a matrix far from the range")
    import scipy.sparse._compressed as compressed
    original = compressed._cs_matrix.sum_duplicates
    compressed._cs_matrix.sum_duplicates = refused
    try:
        got = net64.predict_proba(unsorted)
    finally:
        compressed._cs_matrix.sum_duplicates = original
    np.testing.assert_allclose(got, net64.predict_proba(unsorted.toarray()), rtol=1e-14)
    np.testing.assert_array_equal(unsorted.data, before[0])
    np.testing.assert_array_equal(unsorted.indices, before[1])


@pytest.mark.parametrize("dtype", [bool, np.int8, np.uint8, np.int16])
def test_duplicate_bool_and_integer_entries_sum_as_numbers_in_every_format(dtype):
    """Review HDN: a COO's duplicates were summed by SciPy's tocsr in X's own
    dtype (two stored True read as one, int8 100 + 100 as -56) where the
    CSR's and CSC's of the same entries are summed as numbers (data.md):
    every format now reads the sum of the entries as numbers, as the dense
    X holding it does, for MLP and the scikit-learn estimators."""
    from fastbp.sklearn import MLPClassifier
    v = np.array([True, True] if dtype is bool else [100, 100], dtype=dtype)
    total = 2.0 if dtype is bool else 200.0
    # Row 0: columns 1 (twice) and 0; row 1: column 0 only.
    rows, cols = np.array([0, 0, 0, 1]), np.array([1, 1, 0, 0])
    data = np.concatenate([v, np.ones(2, dtype=dtype)])
    dense = np.array([[1.0, total], [1.0, 0.0]])
    coo = sp.coo_matrix((data, (rows, cols)), shape=(2, 2))
    forms = {"coo": coo, "coo_array": sp.coo_array(coo), "csr": sp.csr_matrix(
        (data[[2, 0, 1, 3]], cols[[2, 0, 1, 3]], np.array([0, 3, 4])), shape=(2, 2))}
    forms["csc"] = sp.csc_matrix((data[[2, 3, 0, 1]], rows[[2, 3, 0, 1]], np.array([0, 2, 4])),
                                 shape=(2, 2))
    net = fastbp.MLP([2, 3, 2], dtype="float64", seed=0)
    want = net.predict_proba(dense)
    y = np.array([0, 1])
    # ...and without sorting the COO's entries (review HDS: COO's astype
    # sorted them all first, 10x the time of tocsr on 10M entries).
    import scipy.sparse._coo as coo_module

    def refused(*args, **kwargs):
        raise AssertionError("sorted the COO's entries")
    original = coo_module._coo_base.sum_duplicates
    coo_module._coo_base.sum_duplicates = refused
    try:
        for name, X in forms.items():
            np.testing.assert_allclose(net.predict_proba(X), want, rtol=1e-14, err_msg=name)
            assert net.loss(X, y) == pytest.approx(net.loss(dense, y), rel=1e-14), name
    finally:
        coo_module._coo_base.sum_duplicates = original
    est = MLPClassifier(hidden_layer_sizes=(3,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = est.fit(dense, y).predict_proba(dense)
        for name, X in forms.items():
            np.testing.assert_allclose(est.fit(X, y).predict_proba(X), ref, rtol=1e-12,
                                       err_msg=name)


def test_a_wide_sparse_x_runs_in_workspaces_of_bounded_size(monkeypatch):
    """Review HCN: the workspace of a kernel call reserves 2 n_in values a
    row that the sparse kernels never touch; predict of a float64 model on
    2,000,000 columns asked for 29.8 GiB (1,024 rows), gradient 61.0 GiB.
    Inference, losses, gradients and L-BFGS on a sparse X now take at most
    SPARSE_WORKSPACE_BYTES of workspace (the kernels chunk by it): the
    answers those of the whole-chunk workspaces to rounding, the memory
    bounded."""
    import tracemalloc
    from fastbp import model
    rng = np.random.default_rng(0)
    n, n_in, nnz = 300, 20_000, 3000
    X = sp.csr_matrix((rng.standard_normal(nnz), (rng.integers(0, n, nnz),
                                                  rng.integers(0, n_in, nnz))), shape=(n, n_in))
    y = np.arange(n) % 3
    net = fastbp.MLP([n_in, 5, 3], dtype="float64", seed=0)
    whole = (net.predict_proba(X), net.loss(X, y), net.gradient(X, y), net.evaluate(X, y)["loss"])
    row_bytes = net._layout.workspace_size(1) * 8
    monkeypatch.setattr(model, "SPARSE_WORKSPACE_BYTES", 7 * row_bytes + 1)   # 7 rows a chunk
    assert net._rows(net._data(X, y)[0]) == 7 and net._rows(X.toarray()) == n   # (dense: as before)
    net._workspaces._local.ws = None   # (the 300-row one, kept for reuse, would serve)
    tracemalloc.start()
    try:
        chunked = (net.predict_proba(X), net.loss(X, y), net.gradient(X, y),
                   net.evaluate(X, y)["loss"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15)
    # (the params, their gradient and scratch: 3 x 0.8 MB; the 300-row
    # workspace alone would be 96 MB, 7 rows' 2.2 MB)
    assert peak < 4 * net.params.nbytes + 16 * row_bytes, peak
    lbfgs = [fastbp.MLP([n_in, 5, 3], dtype="float64", seed=0) for _ in range(2)]
    lbfgs[0].fit(X, y, epochs=3, optimizer="lbfgs", verbose=0)
    monkeypatch.undo()
    lbfgs[1].fit(X, y, epochs=3, optimizer="lbfgs", verbose=0)
    np.testing.assert_allclose(lbfgs[0].params, lbfgs[1].params, rtol=1e-9, atol=1e-12)
