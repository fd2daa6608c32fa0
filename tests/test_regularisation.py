"""The L2 penalty alpha (scikit-learn's semantics) and inverted dropout,
against NumPy references written here from the definitions."""
import numpy as np
import pytest

import fastbp
from fastbp import kernels
from npref import ACT, loss_and_dz, loss_and_grad, one_hot, unpack

SIZES, ACTS = [4, 7, 5, 3], ["tanh", "relu"]


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, SIZES[0])), rng.integers(0, SIZES[-1], n)


def weight_mask(sizes):
    """1 where the flat buffer holds a weight, 0 for a bias."""
    parts = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        parts += [np.ones(n_out * n_in), np.zeros(n_out)]
    return np.concatenate(parts)


def penalised(params, alpha, n, X, Y, sizes=SIZES, acts=ACTS, loss="cross_entropy"):
    """scikit-learn's objective: mean loss + alpha / (2 n) * sum W^2, and its gradient."""
    value, grad = loss_and_grad(params, sizes, acts, loss, X, Y)
    w = weight_mask(sizes) * params
    return value + 0.5 * alpha * (w @ w) / n, grad + alpha * w / n


# ------------------------------------------------------------------- alpha
@pytest.mark.parametrize("alpha", [0.0, 0.3, 5.0])
def test_loss_and_gradient_include_the_l2_term_on_weights_only(alpha):
    X, y = data()
    net = fastbp.MLP(SIZES, activation=ACTS, dtype="float64", seed=1, alpha=alpha)
    value, grad = penalised(net.params, alpha, len(X), X, one_hot(y, 3))
    assert net.loss(X, y) == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(net.gradient(X, y), grad, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(net.numerical_gradient(X, y), grad, rtol=1e-6, atol=1e-9)


def test_biases_are_not_penalised():
    X, y = data()
    plain = fastbp.MLP(SIZES, activation=ACTS, dtype="float64", seed=1)
    strong = fastbp.MLP(SIZES, activation=ACTS, dtype="float64", seed=1, alpha=10.0)
    bias = weight_mask(SIZES) == 0
    np.testing.assert_array_equal(strong.gradient(X, y)[bias], plain.gradient(X, y)[bias])
    assert not np.allclose(strong.gradient(X, y)[~bias], plain.gradient(X, y)[~bias])


def reference_epoch(params, alpha, X, Y, batch, step):
    """Consecutive batches; each batch's gradient carries alpha / n_batch * W."""
    params = params.copy()
    losses = []
    for s in range(0, len(X), batch):
        xb, yb = X[s:s + batch], Y[s:s + batch]
        value, g = penalised(params, alpha, len(xb), xb, yb)
        losses.append(value * len(xb))
        params = step(params, g)
    return params, sum(losses) / len(X)


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("batch", [5, 24])
def test_fused_sgd_with_alpha_matches_the_reference(dtype, tol, batch):
    """Plain SGD folds the penalty into the weight GEMM (beta = 1 - lr alpha / n)."""
    X, y = data()
    alpha, lr = 0.7, 0.2
    net = fastbp.MLP(SIZES, activation=ACTS, dtype=dtype, seed=2, alpha=alpha)
    expected, loss = reference_epoch(net.params.astype(np.float64), alpha, X, one_hot(y, 3), batch,
                                     lambda p, g: p - lr * g)
    history = net.fit(X, y, epochs=1, batch_size=batch, lr=lr, shuffle=False, verbose=0)
    np.testing.assert_allclose(net.params, expected, rtol=tol, atol=tol)
    assert history["loss"][0] == pytest.approx(loss, rel=tol)


@pytest.mark.parametrize("sizes, batch", [((20, 16, 5), 32), ((20, 1024, 5), 8)])
def test_a_small_alpha_acts_in_float32_as_in_float64(sizes, batch):
    """Fused, float32 rounded 1 - lr alpha / nb to a multiple of 2^-24:
    alpha = 5e-5 trained bit for bit as 0, and 1e-4 (scikit-learn's default)
    as 1.9e-4; on the split path (the second case) alpha acted as 0.95 alpha."""
    from fastbp import _columns
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(320, 20)), rng.integers(0, 5, size=320)
    assert _columns.splits(sizes, batch, 320 // batch, 20) == (batch == 8)

    def fit(dtype, alpha):
        net = fastbp.MLP(list(sizes), dtype=dtype, seed=0, alpha=alpha)
        net.fit(X, y, epochs=20, batch_size=batch, lr=0.01, shuffle=False, verbose=0)
        return net.params.astype(np.float64)
    for alpha in (5e-5, 1e-4):
        effect32 = np.abs(fit("float32", alpha) - fit("float32", 0.0)).sum()
        effect64 = np.abs(fit("float64", alpha) - fit("float64", 0.0)).sum()
        assert effect32 == pytest.approx(effect64, rel=0.03)


def test_optimizers_see_the_penalised_gradient():
    """Non-fused path: momentum SGD over grads that include alpha W / n."""
    X, y = data()
    alpha, lr, mu = 0.5, 0.1, 0.9
    net = fastbp.MLP(SIZES, activation=ACTS, dtype="float64", seed=3, alpha=alpha)
    velocity = [None]

    def momentum(p, g):
        velocity[0] = g if velocity[0] is None else mu * velocity[0] + g
        return p - lr * velocity[0]

    expected, _ = reference_epoch(net.params.copy(), alpha, X, one_hot(y, 3), 6, momentum)
    net.fit(X, y, epochs=1, batch_size=6, shuffle=False, verbose=0,
            optimizer=fastbp.SGD(lr=lr, momentum=mu))
    np.testing.assert_allclose(net.params, expected, rtol=1e-12, atol=1e-13)


def test_history_loss_includes_the_penalty():
    X, y = data()
    net = fastbp.MLP(SIZES, activation=ACTS, dtype="float64", seed=4, alpha=2.0)
    before = net.loss(X, y)
    history = net.fit(X, y, epochs=1, batch_size=len(X), lr=0.1, verbose=0)
    assert history["loss"][0] == pytest.approx(before, rel=1e-13)


def test_lbfgs_minimises_the_penalised_objective():
    X, y = data(60)
    free = fastbp.MLP(SIZES, activation=ACTS, dtype="float64", seed=5)
    tied = fastbp.MLP(SIZES, activation=ACTS, dtype="float64", seed=5, alpha=3.0)
    free.fit(X, y, epochs=200, optimizer="lbfgs", verbose=0)
    tied.fit(X, y, epochs=200, optimizer="lbfgs", verbose=0)
    w = weight_mask(SIZES) == 1
    assert np.linalg.norm(tied.params[w]) < 0.5 * np.linalg.norm(free.params[w])
    # At the optimum the penalised gradient vanishes, the data gradient does not.
    assert np.abs(tied.gradient(X, y)).max() < 1e-4
    assert np.abs(tied.gradient(X, y) - 3.0 * tied.params * w / len(X)).max() > 1e-2


def test_alpha_is_settable_and_validated():
    net = fastbp.MLP([2, 2], alpha=0.1)
    net.alpha = 0.25
    assert net.alpha == 0.25 and "alpha=0.25" in repr(net)
    for bad in (-1.0, float("nan"), float("inf"), "0.1", True):
        with pytest.raises((ValueError, TypeError), match="alpha"):
            net.alpha = bad
        with pytest.raises((ValueError, TypeError), match="alpha"):
            fastbp.MLP([2, 2], alpha=bad)
    assert net.alpha == 0.25


# ------------------------------------------------------------------ dropout
def masked_step(params, sizes, acts, X, Y, masks, lr):
    """One SGD step of the reference network with the given dropout factors
    applied to the hidden outputs: a_l = f(z_l) * mask_l."""
    layers = unpack(params, sizes)
    a, zs, As = X, [], [X]
    for l, (W, b) in enumerate(layers):
        z = a @ W.T + b
        zs.append(z)
        a = ACT[acts[l]][0](z) * masks[l] if l < len(layers) - 1 else z
        As.append(a)
    value, delta = loss_and_dz(zs[-1], Y, "cross_entropy")
    grads = []
    for l in range(len(layers) - 1, -1, -1):
        W, _ = layers[l]
        grads.append((delta.T @ As[l], delta.sum(axis=0)))
        if l > 0:
            delta = (delta @ W) * masks[l - 1] * ACT[acts[l - 1]][1](zs[l - 1])
    g = np.concatenate([np.concatenate([dW.ravel(), db]) for dW, db in reversed(grads)])
    return params - lr * g, value


def one_epoch_kernel(net, X, y, optimizer, batch):
    """One unshuffled epoch through fastbp.kernels.train_epoch with a fresh
    workspace, returning it so the masks of the last batch can be read."""
    Xc, Yc = net._data(X, y)
    ws = net.workspace(batch)
    grads, state = np.zeros_like(net.params), np.zeros((2, net.n_params), net.dtype)
    rng = np.array([11, 12], dtype=np.uint64)
    value = kernels.train_epoch(net.params, grads, state, ws, net.plan, Xc, Yc,
                                np.empty(len(X), np.int64), rng, batch, False, net._loss_code,
                                optimizer.code, optimizer.hyper, 0, net._reg, -1, False)
    return ws, value[0]


@pytest.mark.parametrize("dtype,tol", [("float64", 1e-12), ("float32", 2e-5)])
@pytest.mark.parametrize("rates", [(0.5, 0.5), (0.2, 0.0), (0.0, 0.7)])
@pytest.mark.parametrize("fused", [True, False])
def test_dropout_step_matches_the_reference_with_the_same_masks(dtype, tol, rates, fused):
    """One batch: forward with the masks, backprop through them, update. The
    first momentum step equals a plain SGD step, so both the fused and the
    gradient-buffer path are checked against the same reference."""
    X, y = data(16)
    lr = 0.3
    net = fastbp.MLP(SIZES, activation=ACTS, dtype=dtype, seed=6, dropout=rates)
    start = net.params.astype(np.float64)
    opt = fastbp.SGD(lr=lr) if fused else fastbp.SGD(lr=lr, momentum=0.9)
    ws, value = one_epoch_kernel(net, X, y, opt, 16)
    masks = []
    for l, rate in enumerate(rates):
        if rate:
            m = kernels.mask(ws, net.plan, l, 16).astype(np.float64)
            kept = m != 0
            np.testing.assert_allclose(m[kept], 1 / (1 - rate), rtol=1e-7)
            assert 0 < kept.mean() < 1
        else:
            m = np.ones((16, SIZES[l + 1]))
        masks.append(m)
    expected, loss = masked_step(start, SIZES, ACTS, X, one_hot(y, 3), masks, lr)
    np.testing.assert_allclose(net.params, expected, rtol=tol, atol=tol)
    assert value == pytest.approx(loss, rel=tol)


@pytest.mark.parametrize("momentum", [0.0, 0.9], ids=["fused sgd", "momentum"])
def test_dropout_and_alpha_together(momentum):
    """Plain SGD fuses its step into the backward pass; with momentum the
    gradient is written out (whose first step is the plain one): each adds
    the L2 term on every layer, the first included (review HGA: dropping it
    from the first layer's unfused gradient went uncaught)."""
    X, y = data(16)
    net = fastbp.MLP(SIZES, activation=ACTS, dtype="float64", seed=7, dropout=0.4, alpha=0.8)
    start = net.params.copy()
    ws, _ = one_epoch_kernel(net, X, y, fastbp.SGD(lr=0.2, momentum=momentum), 16)
    masks = [kernels.mask(ws, net.plan, l, 16) for l in range(2)]
    expected, _ = masked_step(start, SIZES, ACTS, X, one_hot(y, 3), masks, 0.2)
    expected -= 0.2 * 0.8 * weight_mask(SIZES) * start / 16
    np.testing.assert_allclose(net.params, expected, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_masks_drop_at_the_given_rate(rate):
    """n = 20000 x 50 Bernoulli draws: the dropped fraction is within 5 sigma."""
    a = np.ones((20000, 50))
    mask = np.empty_like(a)
    kernels.dropout_forward(a, mask, rate, np.array([3], dtype=np.uint64), 0)
    dropped = (mask == 0).mean()
    assert abs(dropped - rate) < 5 * np.sqrt(rate * (1 - rate) / a.size)
    np.testing.assert_array_equal(a, mask)  # a was ones: a *= mask
    assert a.mean() == pytest.approx(1.0, abs=0.01)  # inverted: expectation kept
    # Columns and rows are not correlated: every column drops at the rate.
    per_column = (mask == 0).mean(axis=0)
    assert np.all(np.abs(per_column - rate) < 6 * np.sqrt(rate * (1 - rate) / 20000))


def test_dropout_backward_is_the_derivative_of_dropout_forward():
    rng = np.random.default_rng(8)
    z = rng.normal(size=(6, 9))
    mask = np.where(rng.random((6, 9)) < 0.6, 1 / 0.6, 0.0)
    for name, code in [("tanh", kernels.TANH), ("sigmoid", kernels.SIGMOID),
                       ("elu", kernels.ELU), ("softplus", kernels.SOFTPLUS),
                       ("leaky_relu", kernels.LEAKY_RELU), ("relu", kernels.RELU)]:
        f, fprime = ACT[name]
        a = f(z) * mask
        dz = rng.normal(size=z.shape)
        expected = dz * mask * fprime(z)
        kernels.dropout_backward(dz, a, mask, 0.4, code)
        np.testing.assert_allclose(dz, expected, rtol=1e-12, atol=1e-15, err_msg=name)


def test_inference_uses_the_whole_network():
    X, y = data()
    dropped = fastbp.MLP(SIZES, activation=ACTS, dtype="float64", seed=9, dropout=0.5)
    whole = fastbp.MLP(SIZES, activation=ACTS, dtype="float64", seed=9)
    np.testing.assert_array_equal(dropped.params, whole.params)
    np.testing.assert_array_equal(dropped.forward(X), whole.forward(X))
    assert dropped.loss(X, y) == whole.loss(X, y)
    np.testing.assert_array_equal(dropped.gradient(X, y), whole.gradient(X, y))


def test_dropout_training_is_seeded_and_learns():
    X, y = fastbp.datasets.load_digits()
    Xtr, Xte, ytr, yte = fastbp.datasets.train_test_split(X / 16, y, test_fraction=0.25, seed=0)
    nets = [fastbp.MLP([64, 64, 10], activation="relu", seed=s, dropout=0.3) for s in (1, 1, 2)]
    for net in nets:
        net.fit(Xtr, ytr, epochs=15, batch_size=32, lr=0.1, verbose=0)
    assert np.array_equal(nets[0].params, nets[1].params)
    assert not np.array_equal(nets[0].params, nets[2].params)
    assert np.mean(nets[0].predict(Xte) == yte) > 0.9
    # Dropout changed the training (the stream's advance is checked below).
    plain = fastbp.MLP([64, 64, 10], activation="relu", seed=1)
    plain.fit(Xtr, ytr, epochs=15, batch_size=32, lr=0.1, verbose=0)
    assert not np.array_equal(plain.params, nets[0].params)


def test_the_dropout_stream_advances_every_step():
    """Different masks at every step: two unshuffled epochs of one batch each
    draw different masks from the continuing stream, which fit advances
    (while the shuffling stream, unused without shuffling, stays put)."""
    X, y = data(16)
    net = fastbp.MLP(SIZES, activation=ACTS, dtype="float64", seed=6, dropout=0.5)
    Xc, Yc = net._data(X, y)
    ws, rng, opt = net.workspace(16), np.array([11, 12], dtype=np.uint64), fastbp.SGD(lr=0.1)
    masks = []
    for _ in range(2):
        kernels.train_epoch(net.params, np.zeros(0), np.zeros((2, 0)), ws, net.plan, Xc, Yc,
                            np.empty(16, np.int64), rng, 16, False, net._loss_code, opt.code,
                            opt.hyper, 0, net._reg, -1, False)
        masks.append(kernels.mask(ws, net.plan, 0, 16).copy())
    assert not np.array_equal(masks[0] == 0, masks[1] == 0)
    before = net._rng.copy()
    net.fit(X, y, epochs=1, batch_size=16, shuffle=False, verbose=0)
    assert net._rng[0] == before[0] and net._rng[1] != before[1]


def test_warm_start_with_dropout_continues_the_streams():
    X, y = data(40)
    once = fastbp.MLP(SIZES, activation=ACTS, seed=10, dropout=0.3, alpha=0.01)
    twice = fastbp.MLP(SIZES, activation=ACTS, seed=10, dropout=0.3, alpha=0.01)
    once.fit(X, y, epochs=4, batch_size=8, verbose=0, optimizer="adam")
    twice.fit(X, y, epochs=2, batch_size=8, verbose=0, optimizer="adam")
    twice.fit(X, y, epochs=2, batch_size=8, verbose=0)
    np.testing.assert_array_equal(once.params, twice.params)


def test_dropout_arguments_are_validated():
    with pytest.raises(ValueError, match="one rate per hidden layer"):
        fastbp.MLP([2, 3, 3, 2], dropout=[0.1])
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match=r"dropout rates must be numbers in \[0, 1\)"):
            fastbp.MLP([2, 3, 2], dropout=bad)
    with pytest.raises(TypeError, match="dropout"):
        fastbp.MLP([2, 3, 2], dropout="0.5")
    net = fastbp.MLP([2, 3, 2], dropout=0.5, seed=0)
    assert net.dropout == (0.5,) and "dropout=0.5" in repr(net)
    before = net.params.copy()
    with pytest.raises(ValueError, match="dropout"):
        net.fit(np.zeros((4, 2)), [0, 1, 0, 1], optimizer="lbfgs", verbose=0)
    np.testing.assert_array_equal(net.params, before)
    assert net.optimizer is None


def test_alpha_cannot_become_non_zero_during_a_float32_plain_sgd_fit():
    """Review EF: a float32 plain-SGD fit that began with alpha 0 runs the
    fused update; a callback's alpha = 5e-5 then trained as the rounded
    factor 1 - lr alpha / nb = 1 (weights bit for bit those of alpha 0)
    while the history counted the L2 term. Refused now; a float64 fit, or
    one that began with alpha, takes the change."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 4)).astype(np.float32), rng.integers(0, 3, 64)
    seen = []

    class SetAlpha:
        def __init__(self, net, value):
            self.net, self.value = net, value

        def on_epoch_end(self, epoch, logs):
            try:
                self.net.alpha = self.value
                seen.append("set")
            except RuntimeError as exc:
                seen.append(str(exc))
    net = fastbp.MLP([4, 8, 3], seed=0)
    net.fit(X, y, epochs=2, verbose=0, shuffle=False, callbacks=[SetAlpha(net, 5e-5)])
    assert seen[0].startswith("net.alpha cannot become non-zero while this float32 fit with"
                              " plain SGD runs") and net.alpha == 0
    net.alpha = 5e-5           # between fits: taken into the gradient
    assert net.alpha == 5e-5
    for dtype, start in (("float64", 0.0), ("float32", 1e-4)):
        seen.clear()
        other = fastbp.MLP([4, 8, 3], dtype=dtype, seed=0, alpha=start)
        other.fit(X, y, epochs=2, verbose=0, shuffle=False, callbacks=[SetAlpha(other, 5e-5)])
        assert seen == ["set", "set"] and other.alpha == 5e-5
    # the same weights as two fits with alpha set between them
    a = fastbp.MLP([4, 8, 3], dtype="float64", seed=0)
    a.fit(X, y, epochs=2, verbose=0, shuffle=False, callbacks=[SetAlpha(a, 5e-5)])
    b = fastbp.MLP([4, 8, 3], dtype="float64", seed=0)
    b.fit(X, y, epochs=1, verbose=0, shuffle=False)
    b.alpha = 5e-5
    b.fit(X, y, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_array_equal(a.params, b.params)


def test_lbfgs_cannot_be_set_on_a_model_with_dropout():
    """Review EF: net.optimizer = LBFGS() was taken on a model with dropout,
    which the next fit refused (and a save kept)."""
    net = fastbp.MLP([4, 6, 3], dropout=0.3, seed=0)
    with pytest.raises(ValueError, match=r"L-BFGS .* cannot train with dropout=\[0.3\]"):
        net.optimizer = fastbp.LBFGS()
    assert net.optimizer is None
    fastbp.MLP([4, 6, 3], seed=0).optimizer = fastbp.LBFGS()   # without dropout: taken


def test_loss_is_a_python_float_with_and_without_the_penalty():
    """Review HBJ: ``loss`` promises a float; with alpha > 0 it was an
    np.float64 (its repr ``np.float64(...)`` in printed results)."""
    X = np.random.default_rng(0).normal(size=(8, 3))
    y = np.arange(8) % 2
    for alpha in (0.0, 0.5):
        net = fastbp.MLP([3, 4, 2], alpha=alpha, dtype="float64", seed=0)
        for weights in (None, np.linspace(0.5, 2, 8)):
            value = net.loss(X, y, sample_weight=weights)
            assert type(value) is float
            assert value == pytest.approx(float(np.mean(
                -np.log(net.predict_proba(X)[np.arange(8), y]) * (1 if weights is None else
                                                                 weights / weights.mean())))
                + alpha / (2 * (8 if weights is None else weights.sum()))
                * sum((W ** 2).sum() for W in net.weights), rel=1e-12)


@pytest.mark.parametrize("output", ["softmax", "identity"])
def test_evaluate_and_val_loss_are_python_floats_with_the_penalty(output):
    """Review HBY: with alpha > 0, evaluate's loss (weighted or not) and the
    history's val_loss were np.float64 (floats after a save and load), where
    loss returns a float; every one a float now, of the same value."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 3))
    y = np.arange(20) % 2 if output == "softmax" else rng.normal(size=20)
    w = np.linspace(0.5, 2, 20)
    for alpha in (0.0, 0.5):
        net = fastbp.MLP([3, 4, 2 if output == "softmax" else 1], output=output, alpha=alpha,
                         dtype="float64", seed=0)
        net.fit(X, y, epochs=2, verbose=0, validation_data=(X, y))
        got = [net.evaluate(X, y)["loss"], net.evaluate(X, y, sample_weight=w)["loss"],
               net.history["val_loss"][-1]]
        assert [type(v) for v in got] == [float, float, float], alpha
        assert got[0] == net.loss(X, y) and got[1] == net.loss(X, y, sample_weight=w)
