"""Property-based tests (hypothesis): random networks and random garbage.

CI runs a fixed (derandomised) set of examples so that it cannot flake; to
search further, e.g. ``FASTBP_HYPOTHESIS=20 python -m pytest
tests/test_properties.py`` runs 20 times the examples from a random seed.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastbp
from npref import loss_and_dz, loss_and_grad, unpack
from npref import output as ref_output

SCALE = int(os.environ.get("FASTBP_HYPOTHESIS", "0"))


def cases(n):
    return settings(max_examples=n * max(SCALE, 1), deadline=None, derandomize=SCALE == 0,
                    database=None, suppress_health_check=list(HealthCheck))


SETTINGS = cases(40)
SMOOTH = ["identity", "sigmoid", "tanh", "elu", "softplus"]  # finite differences need C1
PAIRS = [("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy"), ("identity", "mse")]


@st.composite
def problems(draw):
    widths = draw(st.lists(st.integers(1, 6), min_size=0, max_size=3))
    n_in, n_out = draw(st.integers(1, 5)), draw(st.integers(1, 4))
    output, loss = draw(st.sampled_from(PAIRS))
    if output == "softmax":
        n_out = max(n_out, 2)
    sizes = [n_in] + widths + [n_out]
    acts = [draw(st.sampled_from(SMOOTH)) for _ in widths]
    n = draw(st.integers(1, 12))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    alpha = draw(st.sampled_from([0.0, 0.1, 2.0]))
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    if output == "softmax":
        y = rng.integers(0, n_out, n)
        Y = np.eye(n_out)[y]
    elif output == "sigmoid":
        y = Y = rng.integers(0, 2, (n, n_out)).astype(float)
    else:
        y = Y = rng.normal(size=(n, n_out))
    net = fastbp.MLP(sizes, activation=acts, output=output, loss=loss, dtype="float64",
                     seed=seed % 1000, alpha=alpha)
    return net, X, y, Y, acts, loss


@SETTINGS
@given(problems())
def test_backprop_matches_finite_differences_and_the_reference(problem):
    net, X, y, Y, acts, loss = problem
    g = net.gradient(X, y)
    fd = net.numerical_gradient(X, y)
    scale = max(np.abs(fd).max(), 1e-3)
    assert np.abs(g - fd).max() <= 1e-5 * scale
    value, ref = loss_and_grad(net.params, list(net.sizes), acts, loss, X, Y)
    w = np.concatenate([np.r_[np.ones(a * b), np.zeros(b)] for a, b in zip(net.sizes[:-1], net.sizes[1:])])
    ref = ref + net.alpha * w * net.params / len(X)
    np.testing.assert_allclose(g, ref, rtol=1e-9, atol=1e-12)
    # float32: the same network in single precision, against the float64 gradient.
    single = fastbp.MLP(list(net.sizes), activation=acts, output=net.output, loss=loss,
                        dtype="float32", alpha=net.alpha)
    single.params[:] = net.params
    g32 = single.gradient(X, y).astype(np.float64)
    exact = loss_and_grad(single.params, list(net.sizes), acts, loss, X, Y)[1] \
        + net.alpha * w * single.params.astype(np.float64) / len(X)
    assert np.abs(g32 - exact).max() <= 1e-4 * max(np.abs(exact).max(), 1e-2)


@SETTINGS
@given(n_in=st.integers(1, 6), hidden=st.integers(1, 8), n_out=st.integers(2, 7),
       act=st.sampled_from(["relu", "tanh", "sigmoid", "leaky_relu", "elu", "softplus"]),
       dtype=st.sampled_from(["float32", "float64"]), seed=st.integers(0, 10 ** 6),
       scale=st.sampled_from([1e-3, 1.0, 1e3, 1e6]))
def test_predict_proba_rows_are_distributions(n_in, hidden, n_out, act, dtype, seed, scale):
    rng = np.random.default_rng(seed)
    net = fastbp.MLP([n_in, hidden, n_out], activation=act, dtype=dtype, seed=seed)
    net.params[:] *= rng.uniform(0.5, 50)
    proba = net.predict_proba(rng.normal(size=(17, n_in)) * scale)
    assert np.all(np.isfinite(proba)) and np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5 if dtype == "float32" else 1e-12)
    labels = net.predict(rng.normal(size=(5, n_in)))
    assert labels.dtype.kind == "i" and np.all((labels >= 0) & (labels < n_out))


GARBAGE = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.float16, np.int8, np.int64, np.uint8, np.bool_,
                           np.complex64, np.dtype("U3"), np.dtype("O"), np.dtype("M8[s]")]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
    fill=st.nothing())
ENTRIES = ["fit", "partial_fit", "predict", "predict_proba", "loss", "gradient", "forward"]


def _accepted_X(X):
    """What an accepted X must have been: a real (n, 3) array, n >= 1, finite
    in float32; as float64."""
    arr = np.asarray(X)
    assert arr.dtype.kind in "biuf" and arr.ndim == 2 and arr.shape[0] >= 1 and arr.shape[1] == 3
    with np.errstate(over="ignore"):
        x = arr.astype(np.float32)
    assert np.all(np.isfinite(x))
    return x.astype(np.float64)


def _accepted_Y(y, n, output):
    """What accepted targets must have been, as the (n, 2) float64 targets."""
    arr = np.asarray(y)
    assert arr.dtype.kind in "biuf" and arr.shape[:1] == (n,)
    if output == "softmax":
        assert arr.ndim == 1 and np.all((arr == 0) | (arr == 1))  # labels 0..1 (two classes)
        return np.eye(2)[arr.astype(np.int64)]
    assert arr.shape == (n, 2)
    Y = arr.astype(np.float32).astype(np.float64)
    assert np.all(np.isfinite(Y)) and (output != "sigmoid" or np.all((Y >= 0) & (Y <= 1)))
    return Y


def _reference_logits(params, x):
    """The NumPy reference's logits for the [3, 4, 2] tanh net, and a bound on
    how far float32 arithmetic may stray from them: 32 eps of the sums of
    |terms| at each layer, carried through tanh (1-Lipschitz, at most 2)."""
    (W1, b1), (W2, b2) = unpack(np.asarray(params, dtype=np.float64), [3, 4, 2])
    eps = 32 * float(np.finfo(np.float32).eps)
    h = np.tanh(x @ W1.T + b1)
    dh = np.minimum(eps * (np.abs(x) @ np.abs(W1).T + np.abs(b1) + 1), 2)
    z = h @ W2.T + b2
    dz = dh @ np.abs(W2).T + eps * (np.abs(h) @ np.abs(W2).T + np.abs(b2) + 1)
    return z, dz


def _check_accepted(net, params, entry, X, y, result):
    """A call that succeeded took valid input and answered as the reference."""
    x = _accepted_X(X)
    n = x.shape[0]
    z, dz = _reference_logits(params, x)
    if entry in ("forward", "predict_proba", "predict"):
        # Softmax and sigmoid are 1-Lipschitz (each output, max-norm).
        expected = ref_output(z, net.output)
        if entry == "predict_proba":
            assert net.output != "identity"
        if entry != "predict" or net.output == "identity":
            assert result.shape == (n, 2) and result.dtype == np.float32
            np.testing.assert_array_less(np.abs(result - expected), dz + 1e-6 * np.abs(expected))
        elif net.output == "softmax":  # labels, where the top two logits are clearly apart
            assert result.shape == (n,)
            top = np.sort(z, axis=1)
            clear = top[:, 1] - top[:, 0] > 2 * dz.max(axis=1)
            np.testing.assert_array_equal(result[clear], z[clear].argmax(axis=1))
        else:  # sigmoid: 0/1 by the sign of the logit, where it is clear
            assert result.shape == (n, 2)
            clear = np.abs(z) > dz
            np.testing.assert_array_equal(result[clear], (z[clear] > 0).astype(np.int64))
        return
    Y = _accepted_Y(y, n, net.output)
    if entry == "loss":
        expected, _ = loss_and_dz(z, Y, net.loss_name)
        # Cross-entropy and BCE move by at most 2 max|dz| (their derivative in
        # each logit is bounded by 1, summed over 2 outputs); MSE by its slope.
        slope = 2 * np.abs(z - Y) + dz if net.loss_name == "mse" else 2 * np.ones_like(z)
        assert abs(result - expected) <= (slope * dz).max() + 1e-6 * abs(expected)
    elif entry == "gradient":
        assert result.shape == (net.n_params,) and np.all(np.isfinite(result))
        # X as the documented conversion (C order, float32) gives the same bits.
        np.testing.assert_array_equal(result, fastbp.MLP([3, 4, 2], output=net.output, seed=0)
                                      .gradient(x.astype(np.float32), Y if net.output != "softmax"
                                                else Y.argmax(axis=1)))
    else:  # fit, partial_fit: one epoch of ceil(n / 32) SGD steps
        assert len(result) == 1 and np.isfinite(result["loss"][0])
        assert net.optimizer.t == -(-n // 32) and np.all(np.isfinite(net.params))


NUMERIC = st.sampled_from([np.float64, np.float32, np.float16, np.int8, np.int64, np.uint8, np.bool_])


@st.composite
def garbage_or_nearly_valid(draw, shaped):
    """(X, y): garbage, or (``shaped``) arrays of the right shapes for n rows
    (any values, tame values, Fortran order, nested lists), so that calls
    also succeed."""
    n = draw(st.integers(1, 5))
    tame = st.floats(-1e3, 1e3)
    garbage_X = st.one_of(GARBAGE, st.none(), st.text(max_size=5), st.integers(), st.floats(),
                          st.lists(st.floats(allow_nan=True), max_size=6))
    shaped_X = st.one_of(
        hnp.arrays(NUMERIC, (n, 3)),
        hnp.arrays(np.float64, (n, 3), elements=tame),
        hnp.arrays(np.float32, (3, n), elements=tame).map(lambda a: a.T),  # Fortran order
        st.lists(st.lists(tame, min_size=3, max_size=3), min_size=n, max_size=n))
    garbage_y = st.one_of(GARBAGE, st.none(), st.lists(st.integers(-3, 5), max_size=6))
    shaped_y = st.one_of(
        st.lists(st.integers(0, 1), min_size=n, max_size=n),
        hnp.arrays(NUMERIC, (n,)), hnp.arrays(NUMERIC, (n, 2)),
        hnp.arrays(np.float64, (n, 2), elements=st.floats(0, 1)))
    X = draw(shaped_X if shaped else garbage_X)
    y = draw(shaped_y if shaped else garbage_y)
    return X, y


@pytest.mark.parametrize("shaped", [False, True], ids=["garbage", "shaped"])
@cases(150)
@given(data=st.data(), entry=st.sampled_from(ENTRIES),
       output=st.sampled_from(["softmax", "sigmoid", "identity"]))
def test_garbage_raises_only_documented_errors(shaped, data, entry, output):
    """Anything at all: either it works, on valid input and with the
    reference's answer, or ValueError / TypeError, and the model is
    unchanged by a rejected call. Never a crash in a kernel."""
    X, y = data.draw(garbage_or_nearly_valid(shaped))
    net = fastbp.MLP([3, 4, 2], output=output, seed=0)
    before = net.params.copy()
    try:
        if entry in ("predict", "predict_proba", "forward"):
            result = getattr(net, entry)(X)
        elif entry == "fit":
            result = net.fit(X, y, epochs=1, verbose=0)
        else:
            result = getattr(net, entry)(X, y)
    except (ValueError, TypeError) as exc:
        assert str(exc)
        np.testing.assert_array_equal(net.params, before)
        return
    except fastbp.TrainingDivergedError:  # garbage that is finite but absurd
        assert np.all(np.isfinite(net.params))
        return
    _check_accepted(net, before, entry, X, y, result)
    if entry not in ("fit", "partial_fit"):
        np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("kind", ["truncate", "flip"])
@cases(40)
@given(where=st.floats(0.0, 1.0))
def test_damaged_model_files_raise_model_file_error(tmp_path_factory, kind, where):
    path = tmp_path_factory.mktemp("files") / "m.npz"
    net = fastbp.MLP([4, 5, 3], seed=0)
    net.fit(np.ones((6, 4)), [0, 1, 2, 0, 1, 2], verbose=0, optimizer="adam")
    net.save(path)
    raw = bytearray(path.read_bytes())
    i = min(int(where * len(raw)), len(raw) - 1)
    if kind == "truncate":
        raw = raw[:i]
    else:
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))
    try:
        back = fastbp.load(path)
    except fastbp.ModelFileError as exc:
        assert str(path) in str(exc)
        return
    # A flip that survives (e.g. in zip padding or a redundant header field)
    # must still give the very same model.
    np.testing.assert_array_equal(back.params, net.params)
    np.testing.assert_array_equal(back.optimizer.state, net.optimizer.state)
