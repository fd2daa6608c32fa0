"""The flat buffer: documented layout, views that alias it, the plan."""
import numpy as np
import pytest

import fastbp
from fastbp import layout


@pytest.mark.parametrize("sizes", [[3, 1], [2, 5, 1], [7, 3, 1, 4], [1, 1, 1, 1, 1]])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layout_is_w_then_b_per_layer(sizes, dtype):
    net = fastbp.MLP(sizes, output="identity", dtype=dtype, seed=0)
    p = net.params
    assert p.ndim == 1 and p.flags.c_contiguous and p.flags.writeable
    assert p.dtype == np.dtype(dtype)
    expected = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    assert net.n_params == p.size == expected
    o = 0
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        W, b = net.weights[l], net.biases[l]
        assert W.shape == (n_out, n_in) and b.shape == (n_out,)
        # W row-major at offset o, then b right after it.
        assert np.shares_memory(W, p) and np.shares_memory(b, p)
        np.testing.assert_array_equal(W.ravel(), p[o:o + n_out * n_in])
        assert W.__array_interface__["data"][0] == p[o:].__array_interface__["data"][0]
        o += n_out * n_in
        assert b.__array_interface__["data"][0] == p[o:].__array_interface__["data"][0]
        o += n_out
    assert o == p.size


def test_writing_a_view_changes_the_model():
    net = fastbp.MLP([2, 3, 1], output="identity", dtype="float64", seed=0)
    X = np.array([[0.5, -1.0]])
    before = net.predict(X)
    net.biases[-1][0] += 1.0
    assert net.params[-1] == net.biases[-1][0]
    assert net.predict(X)[0] == pytest.approx(before[0] + 1.0)
    net.weights[0][:] = 0
    assert not net.params[:6].any()
    net.params[:] = 0
    assert not net.weights[1].any() and net.predict(X)[0] == 0


def test_views_cannot_be_rebound():
    net = fastbp.MLP([2, 2], output="identity", seed=0)
    with pytest.raises(TypeError):
        net.weights[0] = np.zeros((2, 2))
    with pytest.raises(AttributeError):
        net.params = np.zeros(6)


def test_plan_rows():
    lay = layout.Layout([4, 3, 2], [fastbp.kernels.RELU])
    plan = lay.plan
    assert plan.dtype == np.int64 and plan.shape == (2, layout.PLAN_COLUMNS)
    # n_in, n_out, W offset, b offset, activation, unit offset of the layer's input,
    # offset of its dropout mask (-1: none)
    np.testing.assert_array_equal(plan[0], [4, 3, 0, 12, fastbp.kernels.RELU, 0, -1])
    np.testing.assert_array_equal(plan[1], [3, 2, 15, 21, fastbp.kernels.IDENTITY, 4, -1])
    assert lay.n_params == 23
    assert lay.workspace_size(5) == 5 * (2 * (4 + 3 + 2) + 2 * 2)


def test_plan_places_dropout_masks_after_the_other_regions():
    lay = layout.Layout([4, 3, 5, 2], [fastbp.kernels.RELU, fastbp.kernels.TANH], [True, True])
    assert list(lay.plan[:, layout.M_OFF]) == [0, 3, -1]
    assert lay.workspace_size(5) == 5 * (2 * (4 + 3 + 5 + 2) + 2 * 2 + 3 + 5)
    only_second = layout.Layout([4, 3, 5, 2], [fastbp.kernels.RELU, fastbp.kernels.TANH],
                                [False, True])
    assert list(only_second.plan[:, layout.M_OFF]) == [-1, 0, -1]
    with pytest.raises(ValueError, match="output layer"):
        layout.Layout([4, 2], [], [True])


def test_initialisation_is_glorot_or_he_and_seeded():
    big = fastbp.MLP([400, 300, 200, 10], activation=["relu", "tanh"], seed=7, dtype="float64")
    w_relu, w_tanh, w_out = big.weights
    # uniform(-L, L) has std L / sqrt(3)
    assert w_relu.std() == pytest.approx(np.sqrt(6 / 400) / np.sqrt(3), rel=0.02)
    assert w_tanh.std() == pytest.approx(np.sqrt(6 / 500) / np.sqrt(3), rel=0.02)
    assert w_out.std() == pytest.approx(np.sqrt(6 / 210) / np.sqrt(3), rel=0.05)
    # The std cannot tell the output layer's Glorot limit sqrt(6/210) from
    # He's sqrt(6/200) (2.5 % apart); the largest of 2000 draws can: it lies
    # within 0.5 % below the limit, never above.
    for W, limit in ((w_relu, np.sqrt(6 / 400)), (w_tanh, np.sqrt(6 / 500)), (w_out, np.sqrt(6 / 210))):
        assert 0.995 * limit < np.abs(W).max() <= limit
    assert all(not b.any() for b in big.biases)
    again = fastbp.MLP([400, 300, 200, 10], activation=["relu", "tanh"], seed=7, dtype="float64")
    assert np.array_equal(big.params, again.params)
    other = fastbp.MLP([400, 300, 200, 10], activation=["relu", "tanh"], seed=8, dtype="float64")
    assert not np.array_equal(big.params, other.params)


def test_repr_names_the_architecture():
    r = repr(fastbp.MLP([64, 32, 10], seed=0))
    assert "sizes=[64, 32, 10]" in r and "tanh" in r and "softmax" in r and "2410" in r


def test_layout_refuses_lists_of_the_wrong_length():
    # (found in review, session 38) acts one too many put TANH on the logits'
    # row; a third dropped flag gave the output layer a mask, or blamed it
    R, T = fastbp.kernels.RELU, fastbp.kernels.TANH
    with pytest.raises(ValueError, match=r"acts must hold one activation code per hidden layer: 1"
                                         r" for sizes \[3, 4, 2\]; got 2"):
        layout.Layout([3, 4, 2], [T, T])
    with pytest.raises(ValueError, match="got 0"):
        layout.Layout([3, 4, 2], [])
    with pytest.raises(ValueError, match=r"dropped must hold at most one flag per hidden layer"
                                         r" \(1\); got 3"):
        layout.Layout([3, 4, 2], [R], [False, True, False])
    assert list(layout.Layout([3, 4, 2], [R], [True]).plan[:, layout.M_OFF]) == [0, -1]


@pytest.mark.parametrize("sizes,message", [
    ([5], r"sizes must hold at least \[n_in, n_out\]; got \[5\]"),
    ([], r"sizes must hold at least \[n_in, n_out\]; got \[\]"),
    ([5, -2, 3], r"sizes must be widths of at least 1; got \[5, -2, 3\]"),
    ([5, 0, 3], r"sizes must be widths of at least 1; got \[5, 0, 3\]"),
])
def test_a_layout_refuses_sizes_no_network_has(sizes, message):
    """Found in review (session 44): [5, -2, 3] made a plan of negative
    offsets and n_params -15, [5, 0, 3] one of 3 parameters, and [5] asked
    for -1 activation codes."""
    acts = [fastbp.kernels.RELU] * max(len(sizes) - 2, 0)
    with pytest.raises(ValueError, match=message):
        layout.Layout(sizes, acts)
