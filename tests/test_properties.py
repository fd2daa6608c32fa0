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
from npref import loss_and_grad

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


@cases(150)
@given(X=st.one_of(GARBAGE, st.none(), st.text(max_size=5), st.integers(), st.floats(),
                   st.lists(st.floats(allow_nan=True), max_size=6)),
       y=st.one_of(GARBAGE, st.none(), st.lists(st.integers(-3, 5), max_size=6)),
       entry=st.sampled_from(ENTRIES), output=st.sampled_from(["softmax", "sigmoid", "identity"]))
def test_garbage_raises_only_documented_errors(X, y, entry, output):
    """Anything at all: either it works, or ValueError / TypeError, and the
    model is unchanged by a rejected call. Never a crash in a kernel."""
    net = fastbp.MLP([3, 4, 2], output=output, seed=0)
    before = net.params.copy()
    try:
        if entry in ("predict", "predict_proba", "forward"):
            out = getattr(net, entry)(X)
            assert np.all(np.isfinite(out))
        elif entry == "fit":
            net.fit(X, y, epochs=1, verbose=0)
        else:
            getattr(net, entry)(X, y)
    except (ValueError, TypeError) as exc:
        assert str(exc)
        np.testing.assert_array_equal(net.params, before)
    except fastbp.TrainingDivergedError:  # garbage that is finite but absurd
        assert np.all(np.isfinite(net.params))


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
