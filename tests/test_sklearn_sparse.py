"""fastbp.sklearn on scipy.sparse X: trained through the sparse first layer
(never densified), to scikit-learn's own weights on the same sparse matrix
and to fastbp.sklearn's own on ``X.toarray()``."""
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
import scipy.sparse as sp  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkRegressor  # noqa: E402

from fastbp import _sklearn_kernels  # noqa: E402
from fastbp.sklearn import MLPClassifier, MLPRegressor  # noqa: E402
from test_sklearn_parity import _digits, assert_same_training  # noqa: E402


def _text_like(n=300, k=400, density=0.03):
    """Bag-of-words-like rows: 3% non-zeros, counts scaled to [0, 1], a
    label from a few columns (so there is something to learn)."""
    X = sp.random(n, k, density=density, format="csr", random_state=0,
                  data_rvs=lambda s: np.random.RandomState(1).randint(1, 4, s) / 3.0)
    score = X[:, :40].sum(axis=1).A1 - X[:, 40:80].sum(axis=1).A1
    return X, np.digitize(score, np.quantile(score, [0.33, 0.66]))


def _no_densifying(monkeypatch, n_features):
    """Make densifying any scipy.sparse matrix of n_features columns (X or
    rows of it) fail; scikit-learn's label binarizer densifies its own."""
    for cls in (sp.csr_matrix, sp.csc_matrix, sp.coo_matrix, sp.csr_array, sp.csc_array):
        for name in ("toarray", "todense"):
            def refuse(self, *args, _dense=getattr(cls, name), **kwargs):
                if self.shape[1] == n_features:
                    raise AssertionError("a sparse X was densified")
                return _dense(self, *args, **kwargs)
            monkeypatch.setattr(cls, name, refuse)


def _fit(cls, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(**kw).fit(X, y)


def _assert_same_weights(a, b, rtol):
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert u.dtype == v.dtype and u.shape == v.shape
        np.testing.assert_allclose(u, v, rtol=0, atol=rtol * np.abs(v).max())


CASES = [
    dict(max_iter=15),                                                             # adam
    dict(solver="sgd", batch_size=32, learning_rate_init=0.1, max_iter=15),        # Nesterov
    dict(solver="sgd", nesterovs_momentum=False, learning_rate="invscaling",
         learning_rate_init=0.5, max_iter=10, shuffle=False),
    dict(solver="lbfgs", max_iter=30, alpha=1e-3),
    dict(early_stopping=True, learning_rate_init=0.01, max_iter=20),
]


@pytest.mark.parametrize("data", [_text_like, lambda: _digits(300)], ids=["text", "digits"])
@pytest.mark.parametrize("params", CASES, ids=[str(i) for i in range(len(CASES))])
def test_sparse_classifier_trains_as_scikit_learn_and_as_dense(data, params, monkeypatch):
    X, y = data()
    Xs = sp.csr_matrix(X)
    dense = Xs.toarray()
    params = dict(hidden_layer_sizes=(12,), random_state=0) | params
    sk = _fit(SkClassifier, Xs, y, **params)
    ours_dense = _fit(MLPClassifier, dense, y, **params)
    _no_densifying(monkeypatch, X.shape[1])   # from here on, densifying X fails
    ours = _fit(MLPClassifier, Xs, y, **params)
    assert_same_training(ours, sk, Xs)            # predictions on sparse X too
    _assert_same_weights(ours, ours_dense, 1e-12)
    if params.get("solver") != "lbfgs":
        assert ours.loss_curve_ == pytest.approx(ours_dense.loss_curve_, rel=1e-12)


def test_sparse_epochs_run_the_sparse_kernels(monkeypatch):
    """The epoch kernel is called with the CSR tuple (the first layer's
    sparse products), not with an array."""
    X, y = _text_like()
    seen = []

    def spying(epoch, x_at):
        def spy(*args):
            seen.append(type(args[x_at]))
            return epoch(*args)
        return spy

    # (dense batches may take any of these; X is the argument at that place)
    for name, x_at in (("epoch_sklearn", 5), ("epoch_sklearn_t", 5), ("epoch_sklearn_t_split", 9),
                       ("epoch_sklearn_t_columns", 9)):
        monkeypatch.setattr(_sklearn_kernels, name, spying(getattr(_sklearn_kernels, name), x_at))
    _fit(MLPClassifier, X, y, hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    assert seen == [tuple, tuple]
    _fit(MLPClassifier, X.toarray(), y, hidden_layer_sizes=(4,), max_iter=1, random_state=0)
    assert seen[-1] is np.ndarray


def test_sparse_formats_dtypes_and_weights(monkeypatch):
    """CSC and COO X, float32 sparse X (float32 weights, as scikit-learn's),
    sample weights and the regressor, partial_fit, all on sparse rows."""
    X, y = _text_like()
    w = np.random.default_rng(0).uniform(0, 2, X.shape[0])
    kw = dict(hidden_layer_sizes=(8,), max_iter=8, random_state=0)
    sk = _fit(SkClassifier, X, y, **kw)
    sk_w = SkClassifier(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk_w.fit(X, y, sample_weight=w)
    sk32 = _fit(SkClassifier, X.astype(np.float32), y, **kw)
    yr = np.asarray(X[:, :30].sum(axis=1)).ravel()
    skr = SkRegressor(solver="sgd", learning_rate_init=0.01, hidden_layer_sizes=(8,), random_state=0)
    for _ in range(3):
        skr.partial_fit(X, yr)
    _no_densifying(monkeypatch, X.shape[1])
    assert_same_training(_fit(MLPClassifier, X.tocsc(), y, **kw), sk, X)
    assert_same_training(_fit(MLPClassifier, X.tocoo(), y, **kw), sk, X)
    ours_w = MLPClassifier(**kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours_w.fit(X, y, sample_weight=w)
    assert_same_training(ours_w, sk_w, X)
    ours32 = _fit(MLPClassifier, X.astype(np.float32), y, **kw)
    for a, b in zip(ours32.coefs_ + ours32.intercepts_, sk32.coefs_ + sk32.intercepts_):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_allclose(a, b, atol=1e-4)
    ours_r = MLPRegressor(solver="sgd", learning_rate_init=0.01, hidden_layer_sizes=(8,), random_state=0)
    for _ in range(3):
        ours_r.partial_fit(X, yr)
    assert_same_training(ours_r, skr, X)


COO_SCRIPT = """
import numpy as np, scipy.sparse as sp
from fastbp.sklearn import MLPClassifier, MLPRegressor
X = sp.random(50, 6, density=0.4, format="coo", random_state=2)
y = np.arange(50) % 3
fitted = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X.tocsr(), y)
for index, value in (("row", -1), ("row", 50 + 10**6), ("col", -1)):
    bad = X.copy()
    setattr(bad, index, getattr(bad, index).copy())
    getattr(bad, index)[0] = value
    for name, call in (("fit", lambda: MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(bad, y)),
                       ("partial_fit", lambda: MLPClassifier(hidden_layer_sizes=(4,)).partial_fit(
                           bad, y, classes=[0, 1, 2])),
                       ("regressor", lambda: MLPRegressor(hidden_layer_sizes=(4,), max_iter=2).fit(
                           bad, y.astype(float))),
                       ("predict", lambda: fitted.predict(bad))):
        try:
            call()
            print(name, index, value, "accepted")
        except ValueError as exc:
            print(name, index, value, exc)
# (review FK) a BSR X whose indptr decreases; a COO multi-output y out of range
bsr = sp.bsr_matrix(np.ones((4, 6)), blocksize=(2, 2))
bsr.indptr = bsr.indptr.copy()
bsr.indptr[:] = [0, 3, 1]
uneven = sp.bsr_matrix(np.ones((12, 6)), blocksize=(2, 3))
uneven.data, uneven.indices = np.ones((2, 5, 3)), np.array([0, 1], dtype=np.int32)
uneven.indptr = np.array([0, 1, 2], dtype=np.int32)   # (blocks of 5 rows cannot make 12)
Y = sp.coo_matrix(np.arange(12.0).reshape(6, 2) + 1)
Y.row = Y.row.copy()
Y.row[5] = -1
for name, call in (("bsr", lambda: MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(
                       bsr, [0, 1, 0, 1])),
                   ("y", lambda: MLPRegressor(hidden_layer_sizes=(4,), max_iter=2).fit(
                       np.ones((6, 3)), Y)),
                   ("uneven", lambda: MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(
                       uneven, np.arange(12) % 2))):
    try:
        call()
        print(name, "accepted")
    except ValueError as exc:
        print(name, exc)
"""


def test_a_coo_x_with_indices_out_of_range_is_refused_by_the_estimators():
    """Review FF: scikit-learn's validate_data converted a COO X with SciPy's
    unchecked conversion before fastbp's checks: a row index of -1 corrupted
    the heap (the process aborted), one past the end was taken or crashed
    predict; MLP refused the same matrix. Review FK: a BSR X with a
    decreasing indptr (MLP too) and a COO y, the same."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", COO_SCRIPT], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 15, done.stdout
    for line in lines[:12]:
        assert "X is not a valid COO matrix:" in line and " is outside [0, " in line, line
    assert lines[12] == "bsr X is not a valid BSR matrix: indptr must start at 0 and never decrease"
    assert lines[13].startswith("y y is not a valid COO matrix: row index -1 of value")
    assert lines[14] == ("uneven X is not a valid BSR matrix: its shape (12, 6) is not a"
                         " multiple of its blocksize (5, 3)")


@pytest.mark.parametrize("kind", ["coo_array", "csr_array"])
def test_regressor_fits_a_one_dimensional_sparse_y_as_scikit_learn(kind):
    """Review HAW: a 1-D sparse y (SciPy's sparse arrays may be 1-D) failed
    with IndexError in MLPRegressor's input check; scikit-learn fits it, as
    the dense y."""
    if not hasattr(sp, kind):
        pytest.skip(f"scipy has no {kind}")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    y[::3] = 0.0
    ys = getattr(sp, kind)(y)
    if ys.ndim != 1:
        pytest.skip("this scipy makes 2-D sparse arrays only")
    params = dict(hidden_layer_sizes=(5,), max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = MLPRegressor(**params).fit(X, ys)
        dense = MLPRegressor(**params).fit(X, y)
        theirs = SkRegressor(**params).fit(X, getattr(sp, kind)(y))
        ours.partial_fit(X, ys)
        twin = MLPRegressor(**params).fit(X, y).partial_fit(X, y)
    for a, b in zip(theirs.coefs_, dense.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
    for a, b in zip(ours.coefs_, twin.coefs_):
        np.testing.assert_array_equal(a, b)


def test_regressor_refuses_a_csr_y_whose_duplicates_sum_to_inf():
    """Review HBB: scikit-learn's check of a sparse y saw its stored entries;
    duplicates summing to inf (y.toarray()'s value) trained, and failed as
    the solver's non-finite weights. Refused as the dense and COO y are."""
    X = np.random.default_rng(0).normal(size=(4, 3))
    y = sp.csr_matrix((np.array([1e308, 1e308, 1.0]), np.array([0, 0, 1]),
                       np.array([0, 3, 3, 3, 3])), shape=(4, 2))
    assert np.isinf(y.toarray()[0, 0])
    for form in (y, y.tocoo(), y.toarray()):
        est = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2)
        with pytest.raises(ValueError, match=r"Input y contains infinity"):
            est.fit(X, form)
        with pytest.raises(ValueError, match=r"Input y contains infinity"):
            SkRegressor(hidden_layer_sizes=(3,), max_iter=2).fit(X, form.toarray()
                                                                 if sp.issparse(form) else form)


SPARSE_Y_SCRIPT = """
import warnings
import numpy as np, scipy.sparse as sp
from fastbp.sklearn import MLPClassifier, MLPRegressor
warnings.filterwarnings("ignore")
X = np.random.default_rng(0).normal(size=(100, 5))
y = np.arange(100) % 3
dense = np.column_stack([y == 0, y == 1]).astype(int)
for fmt in ("csc", "csr"):
    for bad in (700, 10**8, -5):
        Y = getattr(sp, fmt + "_matrix")(dense)
        Y.indices = Y.indices.copy()
        Y.indices[0] = bad
        for name, est, target in (("classifier", MLPClassifier, Y),
                                  ("regressor", MLPRegressor, Y.astype(float))):
            try:
                est(hidden_layer_sizes=(4,), max_iter=2, random_state=0).fit(X, target)
                print(fmt, bad, name, "accepted")
            except ValueError as exc:
                print(fmt, bad, name, exc)
"""


def test_a_sparse_y_with_indices_out_of_range_is_refused_by_the_estimators():
    """Review HFI: a CSC or CSR y went to scikit-learn's validate_data
    unchecked; SciPy's conversion of a CSC y (and the labels' reading of a
    CSR one) read its indices as they were: a row index of 700 in 100 rows
    was taken, one of 10**8 or -5 crashed the process (signal 11). Checked
    as X's are now, with the same message."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", SPARSE_Y_SCRIPT], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 12, done.stdout
    for line in lines:
        fmt, bad, _, message = line.split(" ", 3)
        minor, major, n = ("row", "column", 100) if fmt == "csc" else ("column", "row", 2)
        assert message == (f"y is not a valid {fmt.upper()} matrix: {minor} index {bad} in"
                           f" {major} 0 is outside [0, {n})"), line


@pytest.mark.parametrize("fmt", ["csc", "csr"])
def test_a_sound_sparse_y_trains_as_the_dense_one(fmt):
    """The index check takes a sound CSC or CSR y as it was: the same fit
    as the dense y, for both estimators (and scikit-learn's for the
    classifier's multilabel y)."""
    X = np.random.default_rng(0).normal(size=(60, 5))
    dense = np.column_stack([np.arange(60) % 3 == 0, np.arange(60) % 2 == 0]).astype(int)
    Y = getattr(sp, fmt + "_matrix")(dense)
    kw = dict(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours, ref = MLPClassifier(**kw).fit(X, Y), MLPClassifier(**kw).fit(X, dense)
        theirs = SkClassifier(**kw).fit(X, Y)
        reg, reg_ref = (MLPRegressor(**kw).fit(X, Y.astype(float)),
                        MLPRegressor(**kw).fit(X, dense.astype(float)))
    for a, b in zip(ours.coefs_, ref.coefs_):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-12)
    for a, b in zip(reg.coefs_, reg_ref.coefs_):
        np.testing.assert_array_equal(a, b)
