"""fastbp.landscape against independent references: every grid value is the
model's own loss at params set by NumPy, directions are filter-normalised,
the model is never touched, and a trained minimum looks like one."""
import runpy
import warnings
from pathlib import Path

import numba
import numpy as np
import pytest

import fastbp
from fastbp import landscape

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def digits():
    X, y = fastbp.datasets.load_digits()
    return X[:240] / 16, y[:240]


def twin(net):
    """An independent copy of net (same arguments, params copied)."""
    other = fastbp.MLP(net.sizes, activation=list(net.activations), output=net.output,
                       loss=net.loss_name, dtype=net.dtype.name, alpha=net.alpha)
    other.params[:] = net.params
    return other


def trained(digits, dtype="float64", alpha=0.0, sizes=(64, 12, 10), epochs=3, seed=0):
    X, y = digits
    net = fastbp.MLP(list(sizes), activation="tanh", dtype=dtype, alpha=alpha, seed=seed)
    net.fit(X, y, epochs=epochs, lr=0.1, verbose=0)
    return net


def regression_data(rng, n, n_in, n_out, output):
    X = rng.normal(size=(n, n_in))
    if output == "sigmoid":
        return X, (rng.random((n, n_out)) > 0.5).astype(float)
    return X, rng.normal(size=(n, n_out))


# ------------------------------------------------- (a) grid values, exactly
@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 1e-6)])
def test_surface_equals_the_models_loss_at_each_point(digits, dtype, tol):
    X, y = digits
    net = trained(digits, dtype=dtype, alpha=1e-2)
    ref = twin(net)
    s = landscape.surface(net, X, y, steps=5, span=0.7, seed=3)
    theta = net.params.copy()
    d1, d2 = s.directions
    assert s.losses.shape == (5, 5) and s.directions.shape == (2, net.n_params)
    for j, b in enumerate(s.betas):
        for i, a in enumerate(s.alphas):
            ref.params[:] = theta + a * d1 + b * d2
            assert s.losses[j, i] == pytest.approx(ref.loss(X, y), rel=tol, abs=tol)


@pytest.mark.parametrize("output,loss", [("sigmoid", None), ("identity", "mse"),
                                         ("identity", "huber"), ("identity", "mae")])
def test_line_equals_the_models_loss_for_every_output(output, loss):
    rng = np.random.default_rng(1)
    X, Y = regression_data(rng, 50, 5, 3, output)
    net = fastbp.MLP([5, 7, 4, 3], activation=["relu", "sigmoid"], output=output, loss=loss,
                     dtype="float64", seed=2)
    ref = twin(net)
    r = landscape.line(net, X, Y, steps=7, span=2.0, seed=0, normalise=None, include_biases=True)
    for a, value in zip(r.alphas, r.losses):
        ref.params[:] = net.params + a * r.direction
        assert value == pytest.approx(ref.loss(X, Y), rel=1e-12, abs=1e-14)


def test_more_samples_than_one_chunk():
    # Above 2048 rows the loss is summed over chunks, as MLP.loss does.
    rng = np.random.default_rng(0)
    X, Y = regression_data(rng, 2500, 3, 2, "identity")
    net = fastbp.MLP([3, 4, 2], output="identity", dtype="float64", alpha=0.1, seed=0)
    r = landscape.line(net, X, Y, steps=3, span=0.5, seed=0)
    assert r.losses[1] == r.centre == net.loss(X, Y)
    ref = twin(net)
    ref.params[:] = net.params + r.alphas[0] * r.direction
    assert r.losses[0] == pytest.approx(ref.loss(X, Y), rel=1e-12)


# ------------------------------------------------ (b) filter normalisation
def test_filter_normalisation_matches_row_norms(digits):
    net = trained(digits)
    d = landscape.random_directions(net, count=2, seed=5)
    assert d.shape == (2, net.n_params) and d.dtype == np.float64
    for k in range(2):
        dw, db = net._layout.views(d[k])
        for W, DW, DB in zip(net.weights, dw, db):
            np.testing.assert_allclose(np.linalg.norm(DW, axis=1), np.linalg.norm(W, axis=1),
                                       rtol=1e-12)
            assert not DB.any()  # biases zero by default
    # Rescaled rows keep their Gaussian direction.
    raw = np.random.default_rng(5).standard_normal((2, net.n_params))
    W0 = net._layout.weight_slice(0)
    row = slice(W0.start, W0.start + net.sizes[0])
    cos = raw[0, row] @ d[0, row] / np.linalg.norm(raw[0, row]) / np.linalg.norm(d[0, row])
    assert cos == pytest.approx(1.0, abs=1e-12)


def test_filter_normalisation_at_any_magnitude():
    """Review HBT: the row norms were NumPy's sums of squares, which overflow
    past ~1e154 and underflow below ~1e-162: a direction of 1e160 or 1e-170
    came out zero, one of 1e-160 off by 3e-4, and weights of 1e160 gave an
    infinite direction (a line's centre NaN where net.loss is finite).
    Filter normalisation does not depend on the direction's scale and scales
    with the weights: checked as such, and a ratio beyond float64 is named."""
    net = fastbp.MLP([3, 4, 2], dtype="float64", seed=0)
    d = np.random.default_rng(1).standard_normal(net.n_params)
    ref = landscape.filter_normalise(net, d, include_biases=True)
    for s in (1e-170, 1e-160, 1e160, 1e300):
        np.testing.assert_allclose(landscape.filter_normalise(net, d * s, include_biases=True),
                                   ref, rtol=1e-14)
    big = fastbp.MLP([3, 4, 2], dtype="float64", seed=0)
    big.params[:] = net.params * 1e160
    got = landscape.filter_normalise(big, d, include_biases=True)
    np.testing.assert_allclose(got, ref * 1e160, rtol=1e-14)
    X, y = np.random.default_rng(2).standard_normal((10, 3)), np.arange(10) % 2
    r = landscape.line(big, X, y, steps=3, seed=1)
    assert r.centre == big.loss(X, y) and np.isfinite(r.losses).all()
    with pytest.raises(ValueError, match="normalised direction is not finite"):
        landscape.filter_normalise(big, d * 1e-320)
    # A non-finite parameter is named as such (review HBW: the message asked
    # to rescale a direction the caller had not given)
    for value in (np.nan, np.inf):
        odd = fastbp.MLP([3, 4, 2], dtype="float64", seed=0)
        odd.params[3] = value
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match=rf"net.params\[3\] is {value}"):
                landscape.line(odd, X, y, steps=3, seed=1)
    # A non-finite bias left out (include_biases=False) is not the one named
    # (review HCA); taking part, it is
    odd = fastbp.MLP([3, 4, 2], dtype="float64", seed=0)
    b0, w1 = odd._layout.bias_slice(0).start, odd._layout.weight_slice(1).start + 1
    odd.params[b0], odd.params[w1] = np.nan, np.inf
    with pytest.raises(ValueError, match=rf"net.params\[{w1}\] is inf"):
        landscape.filter_normalise(odd, d)
    with pytest.raises(ValueError, match=rf"net.params\[{b0}\] is nan"):
        landscape.filter_normalise(odd, d, include_biases=True)


def test_biases_included_and_raw_directions(digits):
    net = trained(digits)
    assert any(b.any() for b in net.biases)
    d = landscape.random_directions(net, seed=1, include_biases=True)[0]
    _, db = net._layout.views(d)
    for b, DB in zip(net.biases, db):
        assert np.linalg.norm(DB) == pytest.approx(np.linalg.norm(b), rel=1e-12)
    raw = landscape.random_directions(net, seed=1, normalise=None)[0]
    expected = np.random.default_rng(1).standard_normal(net.n_params)
    for l in range(len(net.biases)):
        expected[net._layout.bias_slice(l)] = 0
    np.testing.assert_array_equal(raw, expected)
    raw_b = landscape.random_directions(net, seed=1, normalise=None, include_biases=True)[0]
    np.testing.assert_array_equal(raw_b, np.random.default_rng(1).standard_normal(net.n_params))


def test_zero_rows_stay_zero():
    net = fastbp.MLP([3, 4, 2], dtype="float64", seed=0)
    net.weights[0][1] = 0.0
    d = landscape.filter_normalise(net, np.ones(net.n_params))
    assert not net._layout.views(d)[0][0][1].any()
    assert np.isfinite(d).all()


# --------------------------------------- (c) params unchanged, (e) centre
def test_params_bitwise_unchanged_and_centre_is_the_loss(digits):
    X, y = digits
    net = trained(digits, dtype="float32", alpha=1e-3)
    other = trained(digits, dtype="float32", alpha=1e-3, seed=1)
    before, buffer = net.params.tobytes(), net.params
    r = landscape.line(net, X, y, steps=9, seed=0)
    s = landscape.surface(net, X, y, steps=5, seed=0)
    i = landscape.interpolate(net, other, X, y, steps=5)
    landscape.interpolate(other, net, X, y, steps=5)
    assert net.params.tobytes() == before and net.params is buffer
    assert net.weights[0].base is not None and np.shares_memory(net.weights[0], net.params)
    loss = net.loss(X, y)
    assert r.centre == s.centre == i.loss_a == loss
    assert r.losses[4] == loss and s.losses[2, 2] == loss  # the middle of an odd grid
    assert r.alphas[4] == 0.0 and r.alphas[0] == -1.0 and r.alphas[-1] == 1.0


@pytest.mark.parametrize("steps", [4, 7, 99, 100])
def test_the_grid_is_linspace_made_exactly_symmetric(steps):
    """The documented grid: linspace(-span, span, steps) to rounding, exactly
    symmetric about 0, exactly 0 (the model's own params) in the middle of
    an odd grid: linspace alone is not (steps=99: -1.1e-16 in the middle;
    review HGA found a plain linspace went uncaught)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, 20)
    net = fastbp.MLP([4, 5, 3], dtype="float64", seed=0)
    for span in (1.0, 0.3):
        r = landscape.line(net, X, y, steps=steps, span=span, seed=1)
        s = landscape.surface(net, X, y, steps=steps, span=span, seed=1)
        for grid in (r.alphas, s.alphas, s.betas):
            np.testing.assert_allclose(grid, np.linspace(-span, span, steps), rtol=0,
                                       atol=4e-16 * span)
            np.testing.assert_array_equal(grid, -grid[::-1])
            if steps % 2:
                assert grid[steps // 2] == 0.0
                assert r.losses[steps // 2] == net.loss(X, y)


# -------------------------------------------------- (d) reproducibility
def test_seeded_directions_are_reproducible(digits):
    X, y = digits
    net = trained(digits)
    a = landscape.surface(net, X, y, steps=3, seed=7)
    b = landscape.surface(net, X, y, steps=3, seed=7)
    np.testing.assert_array_equal(a.directions, b.directions)
    np.testing.assert_array_equal(a.losses, b.losses)
    line = landscape.line(net, X, y, steps=3, seed=7)
    np.testing.assert_array_equal(line.direction, a.directions[0])  # one generator, d1 first
    np.testing.assert_array_equal(line.losses, a.losses[1])  # beta = 0
    c = landscape.surface(net, X, y, steps=3, seed=8)
    assert not np.array_equal(c.directions, a.directions)
    assert not np.array_equal(a.directions[0], a.directions[1])
    fresh = landscape.line(net, X, y, steps=3)
    assert not np.array_equal(fresh.direction, line.direction)


def test_given_directions_are_used_as_given(digits):
    X, y = digits
    net = trained(digits)
    d = np.zeros(net.n_params)
    d[0] = 1
    r = landscape.line(net, X, y, steps=3, direction=d.astype(np.float32), seed=5)
    np.testing.assert_array_equal(r.direction, d)
    assert r.normalise == "given"
    assert r.seed is None   # the seed played no part: the result names none
    s = landscape.surface(net, X, y, steps=3, directions=[d, -d], seed=5)
    np.testing.assert_array_equal(s.losses, s.losses.T[::-1, ::-1])  # d2 = -d1
    assert s.seed is None
    assert landscape.line(net, X, y, steps=3, seed=5).seed == 5


# ------------------------------------------------ (f) a trained minimum
def test_trained_minimum_is_the_bottom_of_a_convex_valley(digits):
    X, y = digits
    X, y = X[:150], y[:150]
    net = fastbp.MLP([64, 8, 10], activation="tanh", dtype="float64", alpha=0.5, seed=0)
    net.fit(X, y, epochs=300, optimizer="lbfgs", verbose=0)
    assert np.linalg.norm(net.gradient(X, y)) < 1e-2  # L-BFGS-B converged
    for seed in range(3):
        r = landscape.line(net, X, y, steps=41, span=0.5, seed=seed)
        centre = r.alphas.size // 2
        assert abs(int(np.argmin(r.losses)) - centre) <= 1
        assert r.losses.min() >= r.centre - 1e-6
        assert r.losses[0] > r.centre + 1e-3 and r.losses[-1] > r.centre + 1e-3
        second = np.diff(r.losses, 2)[centre - 10:centre + 9]  # |alpha| <= 0.25
        assert (second > 0).all()
    # Away from the minimum the slope at the centre is the directional
    # derivative that backpropagation gives.
    start = fastbp.MLP([64, 8, 10], activation="tanh", dtype="float64", alpha=0.5, seed=0)
    r = landscape.line(start, X, y, steps=3, span=1e-5, seed=0)
    slope = (r.losses[2] - r.losses[0]) / (r.alphas[2] - r.alphas[0])
    assert slope == pytest.approx(start.gradient(X, y) @ r.direction, rel=1e-6)


# ------------------------------------------------------- (g) interpolate
def test_interpolation_endpoints_and_values(digits):
    X, y = digits
    a = fastbp.MLP([64, 12, 10], dtype="float64", alpha=1e-2, seed=0)
    b = trained(digits, alpha=1e-2)
    r = landscape.interpolate(a, b, X, y, steps=6, span=(0.0, 1.0))
    assert r.loss_a == r.losses[0] == a.loss(X, y)
    assert r.loss_b == r.losses[-1] == b.loss(X, y)
    ref = twin(a)
    for t, value in zip(r.ts, r.losses):
        ref.params[:] = (1 - t) * a.params + t * b.params
        assert value == pytest.approx(ref.loss(X, y), rel=1e-12)
    d = landscape.interpolate(a, b, X, y)  # the default grid holds neither 0 nor 1
    assert d.ts.size == 51 and d.ts[0] == -0.5 and d.ts[-1] == 1.5
    assert d.loss_a == a.loss(X, y) and d.loss_b == b.loss(X, y)
    assert d.losses[-1] < d.loss_a  # training went downhill along the line


@pytest.mark.parametrize("kwargs,message", [
    (dict(sizes=[64, 13, 10]), "same sizes"),
    (dict(activation="relu"), "same activations"),
    (dict(dtype="float32"), "same dtype"),
    (dict(alpha=0.5), "same alpha"),
])
def test_mismatched_nets_raise(digits, kwargs, message):
    X, y = digits
    base = dict(sizes=[64, 12, 10], activation="tanh", dtype="float64", alpha=1e-2, seed=0)
    a = fastbp.MLP(**base)
    b = fastbp.MLP(**{**base, **kwargs})
    with pytest.raises(ValueError, match=message):
        landscape.interpolate(a, b, X, y)


def test_mismatched_outputs_raise():
    a = fastbp.MLP([3, 2], output="identity")
    b = fastbp.MLP([3, 2], output="sigmoid")
    c = fastbp.MLP([3, 2], output="identity", loss="mae")
    X = np.zeros((2, 3))
    with pytest.raises(ValueError, match="same output"):
        landscape.interpolate(a, b, X, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="same loss_name"):
        landscape.interpolate(a, c, X, np.zeros((2, 2)))
    with pytest.raises(TypeError, match="net_b must be a fastbp.MLP"):
        landscape.interpolate(a, "b", X, np.zeros((2, 2)))


# --------------------------------------------------- (h) bad arguments
BAD = [
    ("line", dict(steps=1), ValueError, "steps must be an integer >= 2; got 1"),
    ("line", dict(steps=5.0), TypeError, "steps must be an integer"),
    ("surface", dict(steps=True), TypeError, "steps must be an integer"),
    ("line", dict(span=0.0), ValueError, "span must be a positive finite number; got 0.0"),
    ("surface", dict(span=-1), ValueError, "span must be a positive finite"),
    ("line", dict(span=float("inf")), ValueError, "span must be a positive finite"),
    ("line", dict(span="1"), TypeError, "span must be a positive finite number"),
    ("line", dict(seed=-1), ValueError, "seed must be an integer >= 0; got -1"),
    ("surface", dict(seed=1.5), TypeError, "seed must be an integer"),
    ("line", dict(normalise="layer"), ValueError, "normalise must be 'filter' or None; got 'layer'"),
    ("surface", dict(normalise="filters"), ValueError, "normalise must be 'filter' or None; got 'filters'"),
    ("line", dict(include_biases=1), TypeError, "include_biases must be True or False"),
    ("line", dict(direction=np.zeros(5)), ValueError, r"direction must be a flat array of n_params = 23"),
    ("line", dict(direction=np.zeros((5, 5))), ValueError, r"direction must be a flat array.*\(5, 5\)"),
    ("line", dict(direction=np.full(23, np.nan)), ValueError, "direction must be finite"),
    ("line", dict(direction=np.zeros(23, dtype=bool)), TypeError, "direction must hold real numbers"),
    ("line", dict(direction=np.zeros(23, dtype=complex)), TypeError,
     "direction must hold real numbers .*; got dtype complex128"),
    ("line", dict(direction="abc"), TypeError, "direction must be a numeric array"),
    # review GJ: the words allowed bool, which the case above refuses
    ("line", dict(direction=np.array([None] * 23)), TypeError,
     r"direction must hold real numbers \(int or float\); got None at index 0"),
    ("surface", dict(directions=np.zeros(23)), ValueError, "directions must be a pair"),
    ("surface", dict(directions=[np.zeros(23)] * 3), ValueError, "directions must be a pair"),
    ("surface", dict(directions=[np.zeros(23), np.zeros(24)]), ValueError,
     r"directions\[1\] must be a flat array"),
    ("interpolate", dict(steps=0), ValueError, "steps must be an integer >= 2"),
    ("interpolate", dict(span=1.0), TypeError, r"span must be a pair \(t_min, t_max\)"),
    ("interpolate", dict(span=(1.0, 0.0)), ValueError, "t_min < t_max"),
    ("interpolate", dict(span=(0.0, np.nan)), ValueError, "t_min < t_max"),
    ("interpolate", dict(span=(0, "1")), TypeError, "span must be a pair"),
]


@pytest.mark.parametrize("fn,kwargs,exc,message", BAD)
def test_bad_arguments_raise_and_name_the_argument(fn, kwargs, exc, message):
    net = fastbp.MLP([4, 3, 2], output="identity", dtype="float64", seed=0)  # 23 params
    before = net.params.tobytes()
    X, Y = np.ones((3, 4)), np.zeros((3, 2))
    with pytest.raises(exc, match=message):
        if fn == "interpolate":
            landscape.interpolate(net, net, X, Y, **kwargs)
        else:
            getattr(landscape, fn)(net, X, Y, **kwargs)
    assert net.params.tobytes() == before


@pytest.mark.parametrize("flag", ["no", None, 0, 1.0])
def test_filter_normalise_checks_include_biases_as_the_others_do(flag):
    # "no" included the biases and None left them out, unchecked; random_directions,
    # line and surface refuse a flag that is not a bool.
    net = fastbp.MLP([4, 3, 2], output="identity", dtype="float64", seed=0)
    net.params[:] = np.linspace(0.1, 1.0, net.n_params)
    d = np.ones(net.n_params)
    with pytest.raises(TypeError, match="include_biases must be True or False"):
        landscape.filter_normalise(net, d, include_biases=flag)
    with pytest.raises(TypeError, match="include_biases must be True or False"):
        landscape.random_directions(net, include_biases=flag)
    assert np.any(landscape.filter_normalise(net, d, include_biases=np.True_)[[12, 13, 14]] != 0)


def test_bad_data_and_nets_raise():
    net = fastbp.MLP([4, 3, 2], output="identity", dtype="float64", seed=0)
    with pytest.raises(ValueError, match="X has 3 features"):
        landscape.line(net, np.ones((3, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="X and y must have the same number of samples"):
        landscape.surface(net, np.ones((3, 4)), np.zeros((2, 2)))
    with pytest.raises(TypeError, match="net must be a fastbp.MLP; got dict"):
        landscape.line({}, np.ones((3, 4)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="count must be an integer >= 1"):
        landscape.random_directions(net, count=0)
    import scipy.sparse
    with pytest.raises(TypeError, match="dense X"):
        landscape.line(net, scipy.sparse.csr_matrix(np.ones((3, 4))), np.zeros((3, 2)))


def test_interpolation_refuses_nets_that_read_the_data_differently(digits):
    # The data is converted once, by net_a: loss_b would not be net_b's loss.
    X, y = digits
    a = trained(digits)
    for change in (lambda n: n.standardize(X * 3 + 7), lambda n: setattr(n, "classes_", list(range(9, -1, -1)))):
        b = twin(a)
        change(b)
        with pytest.raises(ValueError, match="to be interpolated"):
            landscape.interpolate(a, b, X, y, steps=3)
    b = twin(a)
    b.params[:] *= 0.5
    r = landscape.interpolate(a, b, X, y, steps=3)
    assert r.loss_b == pytest.approx(b.loss(X, y), rel=1e-12)


def test_grid_losses_refuses_arrays_that_do_not_fit(digits):
    # The public kernel checks what it indexes: no read or write past an end.
    X, y = digits
    net = trained(digits)
    Xc, Yc = net._data(X, y)
    n = net.params.size
    d = np.zeros(n)
    coefs = np.array([[1.0, 0.0, 0.0], [1.0, 0.5, 0.0]])
    ws, kw = net.workspace(X.shape[0]), (net.plan, Xc, Yc, net._loss_code, 0.0)
    out = np.empty(2)
    landscape.grid_losses(out, np.empty(n), net.params, d, d, coefs, ws, *kw)
    assert out[0] == pytest.approx(net.loss(X, y), rel=1e-12)
    bad = [
        (np.empty(1), np.empty(n), d, d, coefs, "out"),                        # out too short
        (out, np.empty(n), d[:-1], d, coefs, "params.size"),                   # d1 too short
        (out, np.empty(n), d, d, coefs[:, :2].copy(), "coefs must be"),        # 2 columns
        (out, net.params, d, d, coefs, "must not overlap"),                    # scratch is params
        (net.params[:2], np.empty(n), d, d, coefs, "out must not overlap"),    # out in params
        (d[:2], np.empty(n), d, d, coefs, "out must not overlap"),             # out in d1
        (out, np.empty(n), ws.reshape(-1)[:n], d, coefs, "ws must not overlap"),  # d1 in ws
    ]
    # scratch holding coefs: row 0's params overwrote later rows' coefficients
    # (wrong losses, no error).
    held = np.zeros(n)
    in_scratch = held[:coefs.size].reshape(coefs.shape)
    in_scratch[:] = coefs
    bad.append((out, held, d, d, in_scratch, "scratch must not overlap .*coefs"))
    # scratch in ws (review HBT: named by loss_value as "params")
    bad.append((out, ws.reshape(-1)[:n], d, d, coefs, "scratch must not overlap .*ws"))
    assert ws.dtype == d.dtype and ws.size >= n
    before, d_before = net.params.copy(), d.copy()
    for o, scratch, d1, d2, c, message in bad:
        with pytest.raises(ValueError, match=message):
            landscape.grid_losses(o, scratch, net.params, d1, d2, c, ws, *kw)
    # the plan inside scratch (review HCZ): the first row's params rewrote
    # the plan, and the error came after, naming an activation code
    held = np.zeros(n, dtype=net.params.dtype)
    plan = held[:net.plan.size * 8 // held.itemsize].view(np.int64).reshape(net.plan.shape)
    plan[:] = net.plan
    with pytest.raises(ValueError, match="scratch and out must not overlap plan"):
        landscape.grid_losses(out, held, net.params, d, d, coefs, ws, plan, *kw[1:])
    np.testing.assert_array_equal(plan, net.plan)
    np.testing.assert_array_equal(net.params, before)
    np.testing.assert_array_equal(d, d_before)
    # Review HAC: an int64 out truncated every loss (1.26 read as 1), a
    # float32 one rounded it, where the docstring says out is float64.
    for dtype in (np.int64, np.float32):
        o = np.zeros(2, dtype=dtype)
        with pytest.raises(numba.core.errors.TypingError,
                           match="grid_losses: out must be a 1-D float64 array"):
            landscape.grid_losses(o, np.empty(n), net.params, d, d, coefs, ws, *kw)
        assert not o.any()
    # Review HAI: a list failed deep in Numba ("Unknown attribute 'shape' of
    # type reflected list") before the guard was reached
    with pytest.raises(numba.core.errors.TypingError,
                       match="grid_losses: out must be a 1-D float64 array"):
        landscape.grid_losses([0.0, 0.0], np.empty(n), net.params, d, d, coefs, ws, *kw)
    # Review HBT: a 2-D direction failed deep in Numba's typing ("setitem")
    for d1, d2 in ((d.reshape(1, -1), d), (d, d.reshape(-1, 1))):
        with pytest.raises(numba.core.errors.TypingError,
                           match="grid_losses: d1 and d2 must be 1-D arrays"):
            landscape.grid_losses(out, np.empty(n), net.params, d1, d2, coefs, ws, *kw)
    # Review GJ: an l2 of -5 gave a negative "loss", NaN a NaN (a model's alpha is finite, >= 0)
    for l2 in (-5.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="grid_losses: l2 must be finite and >= 0"):
            landscape.grid_losses(out, np.empty(n), net.params, d, d, coefs, ws, *kw[:-1], l2)
    # A 1-D coefs is named at compile time (it failed deep in Numba's typing).
    with pytest.raises(Exception, match=r"coefs must be a 2-D array, \(k, 3\); got a 1-D"):
        landscape.grid_losses(out[:1], np.empty(n), net.params, d, d, coefs[0], ws, *kw)
    # A float32 scratch beside float64 params: named as scratch (the message
    # said "params is float32", of loss_value's params, which scratch is).
    with pytest.raises(Exception, match="params is float64 and scratch float32"):
        landscape.grid_losses(out, np.empty(n, np.float32), net.params, d, d, coefs, ws, *kw)


# ---------------------------------------------------------- (i) plots
def test_the_3d_surface_draws_every_grid_point(digits):
    """Review GJ: matplotlib's plot_surface samples 50 rows and columns by
    default: the default 51-point grid was drawn at stride 2 (625 faces),
    without the model's own point (index 25). Every point a vertex: 50 x 50
    faces."""
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    X, y = digits
    result = landscape.surface(trained(digits), X[:100], y[:100], steps=51, span=0.5, seed=0)
    fig = landscape.plot_surface(result, kind="surface")
    try:
        fig.canvas.draw()
        assert len(fig.axes[0].collections[0].get_paths()) == 50 * 50
    finally:
        plt.close(fig)


def test_a_grid_too_wide_to_draw_is_refused_by_name(digits):
    """Review GJ: a span of 1e300 failed inside matplotlib ("upper_level
    must be larger than lower_level"), 1e308 with a NaN axis."""
    pytest.importorskip("matplotlib")
    X, y = digits
    result = landscape.surface(trained(digits), X[:50], y[:50], steps=5, span=1e300, seed=0)
    with pytest.raises(ValueError, match=r"result's alphas reach 1e\+300, past the 1e\+150 fastbp"
                                         " draws"):
        landscape.plot_surface(result)
    # Review GL: losses past 1e150 on a grid of span 1 draw (the first fix refused them)
    rng = np.random.default_rng(0)
    X, Y = 1e78 * rng.normal(size=(30, 2)), np.zeros((30, 1))
    net = fastbp.MLP([2, 4, 1], activation="relu", output="identity", dtype="float64", seed=0)
    big = landscape.surface(net, X, Y, steps=7, span=1.0, seed=0)
    assert np.nanmax(big.losses) > 1e155
    for kind in ("contour", "surface"):
        import matplotlib.pyplot as plt
        plt.close(landscape.plot_surface(big, kind=kind))


def test_plots_write_png_files(digits, tmp_path):
    pytest.importorskip("matplotlib")
    X, y = digits
    net = trained(digits, dtype="float32")
    r = landscape.line(net, X, y, steps=9, seed=0)
    s = landscape.surface(net, X, y, steps=7, seed=0)
    i = landscape.interpolate(fastbp.MLP([64, 12, 10], seed=0), net, X, y, steps=9)
    paths = [landscape.plot_line(r, tmp_path / "line.png"),
             landscape.plot_surface(s, tmp_path / "contour.png"),
             landscape.plot_surface(s, tmp_path / "surface.png", kind="surface", title="t"),
             landscape.plot_interpolation(i, tmp_path / "interp.png"),
             landscape.plot_overview(tmp_path / "all.png", line=r, surface=s, interpolation=i)]
    for path in paths:
        data = Path(path).read_bytes()
        assert data[:8] == PNG and len(data) > 10_000
    with pytest.raises(ValueError, match="kind must be one of 'contour', 'surface'; got 'mesh'"):
        landscape.plot_surface(s, tmp_path / "x.png", kind="mesh")
    with pytest.raises(TypeError, match="result must be a fastbp.landscape.Surface"):
        landscape.plot_surface(r, tmp_path / "x.png")
    with pytest.raises(ValueError, match="at least one"):
        landscape.plot_overview(tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
    assert "Line(steps=9" in repr(r) and "Surface(steps=7x7" in repr(s)
    assert "Interpolation(steps=9" in repr(i)
    # (review HIE) what the figures say: the direction's kind, a log axis
    # for positive losses, rows of two panels; the results' public module
    import matplotlib.pyplot as plt
    fig = landscape.plot_line(r)
    assert fig.axes[0].get_xlabel() == "α (filter-normalised direction)"
    raw = landscape.plot_line(landscape.line(net, X, y, steps=5, seed=0, normalise=None))
    assert raw.axes[0].get_xlabel() == "α (raw Gaussian direction)"
    assert (i.losses > 0).all()
    interp = landscape.plot_interpolation(i)
    assert interp.axes[0].get_yscale() == "log"
    alone = landscape.plot_overview(surface=s)
    three = landscape.plot_overview(line=r, surface=s, interpolation=i)
    assert alone.get_size_inches().tolist() == [12.4, 5.2]
    assert three.axes[0].get_subplotspec().get_gridspec().get_geometry() == (2, 2)
    for f in (fig, raw, interp, alone, three):
        plt.close(f)
    assert f"span={r.alphas[-1]:g}," in repr(r) and r.alphas[-1] > 0
    assert {type(x).__module__ for x in (r, s, i)} == {"fastbp.landscape"}
    # Losses that overflow far from the model are left blank, not an error
    # of matplotlib's levels (as in review: span=1e30 on a float32 net).
    s.losses[0, :] = np.inf
    data = Path(landscape.plot_surface(s, tmp_path / "inf.png")).read_bytes()
    assert data[:8] == PNG and len(data) > 10_000
    s.losses[:] = np.inf
    with pytest.raises(ValueError, match="no finite loss"):
        landscape.plot_surface(s, tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()


def test_a_refused_plot_leaves_no_pyplot_figure(digits):
    # Without a path the figure is pyplot's: one whose drawing failed stayed
    # registered, empty, for the next plt.show().
    plt = pytest.importorskip("matplotlib.pyplot")
    X, y = digits
    net = trained(digits)
    r = landscape.line(net, X, y, steps=5, seed=0)
    s = landscape.surface(net, X, y, steps=3, seed=0)
    s.losses[:] = np.nan
    plt.close("all")
    with pytest.raises(ValueError, match="no finite loss"):
        landscape.plot_surface(s)
    with pytest.raises(ValueError):   # a title mathtext cannot parse
        landscape.plot_line(r, title=r"$\foo$")
    with pytest.raises(ValueError, match="no finite loss"):
        landscape.plot_overview(line=r, surface=s)
    assert plt.get_fignums() == []
    fig = landscape.plot_line(r)   # a figure that draws is the caller's
    assert plt.get_fignums() == [fig.number]
    plt.close(fig)


def test_plot_overview_given_a_result_first_says_path_comes_first(digits, tmp_path):
    X, y = digits
    r = landscape.line(trained(digits), X, y, steps=3, seed=0)
    with pytest.raises(TypeError, match="first argument is the path; got a Line.*line="):
        landscape.plot_overview(r)
    with pytest.raises(TypeError, match="first argument is the path"):
        landscape.plot_overview(r, surface=None, line=r)


# -------------------------------------------------------- (j) the example
def test_example_runs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    main = runpy.run_path(str(EXAMPLES / "loss_landscape.py"))["main"]
    result = main(["--epochs", "3", "--steps", "7", "--out-dir", str(tmp_path), "--prefix", "x"])
    assert set(result["files"]) == {"overview", "line", "contour", "surface", "interpolation"}
    for path in result["files"].values():
        assert Path(path).parent == tmp_path and Path(path).read_bytes()[:8] == PNG
    assert result["surface"].losses.shape == (7, 7)
    assert result["interpolation"].loss_b < result["interpolation"].loss_a  # training helped
    out = capsys.readouterr().out
    assert "points" in out and "x_contour.png" in out and "ms a point" in out


def test_sizes_past_any_memory_are_refused_by_name():
    """Review HDU: steps of 2**63 - 1 gave a bare IndexError from np.linspace
    (2**64 "Maximum allowed size exceeded"), and net.workspace(2**63 - 1) and
    random_directions(count=2**63 - 1) NumPy's errors naming no argument."""
    net = fastbp.MLP([4, 5, 2], output="identity", dtype="float64", seed=0)
    X, y = np.zeros((10, 4)), np.zeros((10, 2))
    for steps in (2 ** 24 + 1, 2 ** 63 - 1, 2 ** 64):
        for f in (landscape.line, landscape.surface):
            with pytest.raises(ValueError, match=f"steps must be an integer from 2 to 16,777,216"
                                                 f" .*; got {steps}$"):
                f(net, X, y, steps=steps)
        with pytest.raises(ValueError, match="steps must be an integer from 2"):
            landscape.interpolate(net, net, X, y, steps=steps)
    with pytest.raises(ValueError, match=r"rows=9223372036854775807 asks for an array of .*"
                                         r" beyond any memory"):
        net.workspace(2 ** 63 - 1)
    with pytest.raises(ValueError, match=r"count=9223372036854775807 asks for an array"):
        landscape.random_directions(net, count=2 ** 63 - 1)
    assert landscape.line(net, X, y, steps=3).losses.shape == (3,)
