"""Backpropagation against finite differences and an independent NumPy reference."""
import numpy as np
import pytest

import fastbp
import fastbp.model
from npref import loss_and_grad, one_hot

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "softplus"]
PAIRS = [("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy"),
         ("identity", "mse"), ("identity", "mae"), ("identity", "huber")]
WIDTHS = (1, 3, 7)


def make_data(output, n_in, n_out, n=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    if output == "softmax":
        y = rng.integers(0, n_out, size=n)
        return X, y, one_hot(y, n_out)
    if output == "sigmoid":
        Y = rng.integers(0, 2, size=(n, n_out)).astype(float)
        return X, Y, Y
    Y = rng.normal(size=(n, n_out))
    return X, Y, Y


def rel_error(a, b):
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return 0.0 if scale == 0 else np.linalg.norm(a - b) / scale


def sizes_for(depth, output, shift):
    hidden = [WIDTHS[(shift + i) % 3] for i in range(depth)]
    n_out = 3 if output == "softmax" else WIDTHS[shift % 3]
    return [WIDTHS[(shift + 1) % 3] + 1] + hidden + [n_out]


@pytest.mark.parametrize("depth", [0, 1, 2, 3])
@pytest.mark.parametrize("output,loss", PAIRS)
@pytest.mark.parametrize("activation", HIDDEN)
def test_backprop_matches_naive_gradient(activation, output, loss, depth):
    shift = HIDDEN.index(activation) + depth
    sizes = sizes_for(depth, output, shift)
    net = fastbp.MLP(sizes, activation=activation, output=output, loss=loss, dtype="float64",
                     seed=shift)
    X, y, Y = make_data(output, sizes[0], sizes[-1], seed=depth)
    # Check at a generic point: with the initial zero biases, a unit fed by a
    # dead ReLU sits exactly on the kink, where finite differences straddle it.
    for b in net.biases:
        b[:] = np.random.default_rng(depth).normal(0, 0.3, size=b.size)
    before = net.params.copy()
    g = net.gradient(X, y)
    g_naive = net.numerical_gradient(X, y)
    assert np.array_equal(net.params, before)  # the naive gradient restores every weight bitwise
    assert rel_error(g, g_naive) < 1e-6
    # And both against the NumPy reference, computed independently.
    acts = [activation] * depth
    value, g_ref = loss_and_grad(net.params, sizes, acts, loss, X, Y)
    np.testing.assert_allclose(g, g_ref, rtol=1e-10, atol=1e-13)
    assert net.loss(X, y) == pytest.approx(value, rel=1e-12)


def test_per_layer_activations():
    acts = ["relu", "tanh", "softplus"]
    sizes = [5, 7, 3, 4, 2]
    net = fastbp.MLP(sizes, activation=acts, output="sigmoid", dtype="float64", seed=1)
    X, y, Y = make_data("sigmoid", 5, 2, n=9)
    _, g_ref = loss_and_grad(net.params, sizes, acts, "binary_cross_entropy", X, Y)
    np.testing.assert_allclose(net.gradient(X, y), g_ref, rtol=1e-10, atol=1e-13)
    assert rel_error(net.gradient(X, y), net.numerical_gradient(X, y)) < 1e-6


@pytest.mark.parametrize("output", ["softmax", "identity"])
def test_float32_gradient_matches_float64(output):
    sizes = [6, 7, 3]
    n64 = fastbp.MLP(sizes, activation="tanh", output=output, dtype="float64", seed=2)
    n32 = fastbp.MLP(sizes, activation="tanh", output=output, dtype="float32", seed=2)
    n64.params[:] = n32.params
    X, y, _ = make_data(output, 6, 3, n=11)
    g32 = n32.gradient(X, y)
    assert g32.dtype == np.float32
    np.testing.assert_allclose(g32, n64.gradient(X, y), rtol=1e-4, atol=1e-6)
    # The naive gradient works in float32 too, with its larger default step.
    assert rel_error(n32.numerical_gradient(X, y), n64.gradient(X, y)) < 1e-2


def test_chunked_data_gives_the_same_results(monkeypatch):
    """Inference, loss and gradient split data larger than a chunk; the
    result must not depend on it."""
    sizes = [4, 5, 3]
    net = fastbp.MLP(sizes, activation="elu", dtype="float64", seed=3)
    X, y, Y = make_data("softmax", 4, 3, n=23)
    whole = net.forward(X), net.loss(X, y), net.gradient(X, y)
    monkeypatch.setattr(fastbp.model, "CHUNK", 5)
    parts = net.forward(X), net.loss(X, y), net.gradient(X, y)
    np.testing.assert_allclose(parts[0], whole[0], rtol=1e-14)
    assert parts[1] == pytest.approx(whole[1], rel=1e-13)
    np.testing.assert_allclose(parts[2], whole[2], rtol=1e-12, atol=1e-15)
    value, g_ref = loss_and_grad(net.params, sizes, ["elu"], "cross_entropy", X, Y)
    np.testing.assert_allclose(parts[2], g_ref, rtol=1e-10, atol=1e-14)


def test_the_loss_kernel_weights_a_last_partial_chunk_by_its_rows():
    # (review HIJ: a mutant weighting it by the workspace's capacity went
    # uncaught: model.CHUNK, patched above, is bound as a default argument)
    sizes = [4, 5, 3]
    net = fastbp.MLP(sizes, activation="elu", dtype="float64", seed=3)
    X, y, Y = make_data("softmax", 4, 3, n=23)
    value, _ = loss_and_grad(net.params, sizes, ["elu"], "cross_entropy", X, Y)
    K = fastbp.kernels
    for rows in (5, 23):   # chunks of 5, the last of 3; one chunk
        ws = net.workspace(rows)
        assert K.capacity(ws, net.plan) == rows
        got = K.loss_value(net.params, ws, net.plan, X, y.astype(np.int64), K.CROSS_ENTROPY)
        assert got == pytest.approx(value, rel=1e-12)


def test_gradient_descent_lowers_the_loss():
    net = fastbp.MLP([3, 4, 2], dtype="float64", seed=4)
    X, y, _ = make_data("softmax", 3, 2, n=20)
    before = net.loss(X, y)
    net.params[:] -= 0.1 * net.gradient(X, y)
    assert net.loss(X, y) < before


def test_an_eps_too_small_for_the_dtype_is_refused_not_nan():
    # p + eps and p - eps round to the same float32: 0 / 0 was NaN, silently.
    X = np.random.default_rng(0).normal(size=(8, 4))
    y = np.arange(8) % 3
    net = fastbp.MLP([4, 5, 3], dtype="float32", seed=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match="eps is too small"):
        net.numerical_gradient(X, y, eps=1e-9)
    np.testing.assert_array_equal(net.params, before)
    # and one that overflows float32 (inf steps: NaN and zeros, silently)
    with pytest.raises(ValueError, match="eps is too large for the parameters' dtype"):
        net.numerical_gradient(X, y, eps=1e39)
    np.testing.assert_array_equal(net.params, before)
    g = net.numerical_gradient(X, y, eps=1e-2)   # one that fits: the backprop gradient
    np.testing.assert_allclose(g, net.gradient(X, y), rtol=2e-2, atol=2e-3)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_parameter_not_finite_is_named_not_blamed_on_eps(bad):
    # Review EC: a NaN or infinite parameter was refused as "eps is too large", the default eps.
    X = np.random.default_rng(0).normal(size=(5, 3))
    y = np.array([0, 1, 2, 1, 0])
    net = fastbp.MLP([3, 4, 3], dtype="float64", seed=0)
    net.params[2] = bad
    before = net.params.copy()
    with pytest.raises(ValueError, match="params holds a NaN or an infinity"):
        net.numerical_gradient(X, y)
    np.testing.assert_array_equal(net.params, before)


# ------------------------------------------------ found in review (2026-12-07, session 47)
def test_an_eps_at_which_the_loss_overflows_is_refused_not_nan():
    """eps = 1e160 fits float64, but an output weight moved by it makes the
    squared error infinite on both sides: inf - inf came back as NaN
    gradients, silently. Refused, params and (through the public kernel) grads
    as they were; a large eps at which the loss stays finite still works."""
    X = np.random.default_rng(0).normal(size=(4, 3))
    Y = np.zeros((4, 1))
    net = fastbp.MLP([3, 2, 1], output="identity", dtype="float64", seed=0)
    before = net.params.copy()
    for eps in (1e160, 1e200):
        with pytest.raises(ValueError, match="the loss at p \\+ eps or p - eps is not finite"):
            net.numerical_gradient(X, Y, eps=eps)
        np.testing.assert_array_equal(net.params, before)
    assert np.isfinite(net.numerical_gradient(X, Y, eps=1e100)).all()
    # the public kernel writes nothing to grads when it refuses
    from fastbp import kernels as K
    grads = np.full(net.n_params, -99.0)
    params = net.params.copy()
    with pytest.raises(ValueError, match="is not finite"):
        K.numerical_gradient(grads, params, net.workspace(4), net.plan, X, Y, K.MSE, 1e160, 0.0)
    np.testing.assert_array_equal(grads, -99.0)
    np.testing.assert_array_equal(params, before)
    # with alpha > 0 every weight's eps**2 overflows the penalty
    with pytest.raises(ValueError, match="is not finite"):
        K.numerical_gradient(grads, params, net.workspace(4), net.plan, X, Y, K.MSE, 1e160, 0.5)
    np.testing.assert_array_equal(grads, -99.0)
