"""Sample and class weights in MLP.fit: scikit-learn's weighted batch loss,
computed in the kernels (fastbp._weighted), held against a NumPy reference,
finite differences, repeated rows and scikit-learn's own class weights."""
import copy
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import fastbp
from fastbp import _weighted
from fastbp.cli import main

OUTPUTS = {"softmax": 3, "sigmoid": 2, "identity": 2}


def _data(output, n=40, n_in=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, n_in))
    if output == "softmax":
        y = rng.integers(0, OUTPUTS[output], n)
    elif output == "sigmoid":
        y = (rng.random((n, OUTPUTS[output])) < 0.5).astype(float)
    else:
        y = rng.normal(size=(n, OUTPUTS[output]))
    return X, y, rng.random(n) * 2


def _net(output="softmax", loss=None, dtype="float64", **kw):
    return fastbp.MLP([4, 5, OUTPUTS[output]], output=output, loss=loss, dtype=dtype, seed=3, **kw)


# ------------------------------------------------------------ the reference
def _reference(net, X, y, w):
    """The weighted objective sum w L / sum w + alpha / (2 sum w) |W|^2 of a
    one-hidden-layer tanh network, and its gradient, in NumPy (float64)."""
    (W0, W1), (b0, b1) = [np.asarray(v, np.float64) for v in net.weights], \
        [np.asarray(v, np.float64) for v in net.biases]
    total = w.sum()
    a1 = np.tanh(X @ W0.T + b0)
    z = a1 @ W1.T + b1
    m = z.shape[1]
    if net.output == "softmax":
        lse = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
        L = lse - z[np.arange(len(y)), y]
        dL = np.exp(z - lse[:, None])
        dL[np.arange(len(y)), y] -= 1
    elif net.output == "sigmoid":
        L = (np.maximum(z, 0) - z * y + np.log1p(np.exp(-abs(z)))).mean(1)
        dL = (1 / (1 + np.exp(-z)) - y) / m
    else:
        L = ((z - y) ** 2).mean(1)
        dL = 2 * (z - y) / m
    E = (w * L).sum() / total + net.alpha / (2 * total) * ((W0 ** 2).sum() + (W1 ** 2).sum())
    dz = dL * (w / total)[:, None]
    dW1, db1 = dz.T @ a1 + net.alpha / total * W1, dz.sum(0)
    dz1 = (dz @ W1) * (1 - a1 ** 2)
    dW0, db0 = dz1.T @ X + net.alpha / total * W0, dz1.sum(0)
    return E, np.concatenate([dW0.ravel(), db0, dW1.ravel(), db1])


@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity"])
@pytest.mark.parametrize("alpha", [0.0, 0.7])
@pytest.mark.parametrize("path", ["fused sgd", "momentum", "dropout, momentum"])
def test_a_full_batch_step_is_the_weighted_gradient_step(output, alpha, path):
    """Plain SGD fuses the step; momentum (whose first step is the plain one)
    writes the gradient out; a dropout of 1e-12 (which drops nothing) takes
    the dropout kernels: each the reference step (review HGG: the dropout
    path's L2 term over the batch's rows, not its weights, went uncaught)."""
    X, y, w = _data(output)
    w[:5] = 0  # zero weights are allowed
    net = _net(output, alpha=alpha, dropout=1e-12 if "dropout" in path else 0.0)
    E, g = _reference(net, X, y, w)
    before = net.params.copy()
    step = (dict(lr=0.3) if path == "fused sgd" else
            dict(optimizer=fastbp.SGD(lr=0.3, momentum=0.9)))
    h = net.fit(X, y, epochs=1, batch_size=len(X), shuffle=False, verbose=0, sample_weight=w,
                **step)
    assert h["loss"][0] == pytest.approx(E, rel=1e-12)
    np.testing.assert_allclose(net.params, before - 0.3 * g, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity"])
def test_loss_and_gradient_take_weights(output):
    """net.loss / net.gradient with weights: the reference objective, and the
    gradient is the central differences of the loss; chunked (n > 2048) too."""
    for n in (30, 2100):
        X, y, w = _data(output, n=n, seed=n)
        net = _net(output, alpha=0.4)
        E, g = _reference(net, X, y, w)
        assert net.loss(X, y, sample_weight=w) == pytest.approx(E, rel=1e-12)
        got = net.gradient(X, y, sample_weight=w)
        np.testing.assert_allclose(got, g, rtol=1e-10, atol=1e-13)
        if n == 30:
            eps, fd = 1e-6, np.empty_like(g)
            for i in range(net.n_params):
                p = net.params[i]
                net.params[i] = p + eps
                up = net.loss(X, y, sample_weight=w)
                net.params[i] = p - eps
                down = net.loss(X, y, sample_weight=w)
                net.params[i] = p
                fd[i] = (up - down) / (2 * eps)
            np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-9)


# ------------------------------------------------ all ones: bit for bit
CASES = [
    dict(optimizer="sgd"),
    dict(optimizer="sgd", alpha=0.3),
    dict(optimizer=fastbp.SGD(lr=0.05, momentum=0.9)),
    dict(optimizer="adam", alpha=0.1),
    dict(optimizer="adam", dropout=0.3),
    dict(optimizer="sgd", dropout=0.2, alpha=0.2),
    dict(optimizer="lbfgs", alpha=0.1),
    dict(optimizer="sgd", sparse=True),
    dict(optimizer="sgd", dtype="float32", validation_split=0.25),
    dict(optimizer="adam", output="sigmoid"),
    dict(optimizer="sgd", output="identity", loss="mse", alpha=0.2),
    dict(optimizer="adam", output="identity", loss="huber"),
    dict(optimizer="sgd", output="identity", loss="mae"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_all_ones_weights_train_bit_for_bit_as_no_weights(case):
    case = dict(case)
    output, loss = case.pop("output", "softmax"), case.pop("loss", None)
    sparse, split = case.pop("sparse", False), case.pop("validation_split", 0.0)
    optimizer = case.pop("optimizer")
    X, y, _ = _data(output, n=45)
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) > 0.8, X, 0))
    Xv, yv, _ = _data(output, n=11, seed=9)
    nets, hists = [], []
    for weights in (None, np.ones(45)):
        net = _net(output, loss, **case)
        opt = copy.deepcopy(optimizer)
        kw = dict(validation_split=split) if split else dict(validation_data=(Xv, yv))
        hists.append(net.fit(X, y, epochs=3, batch_size=8, optimizer=opt, verbose=0,
                             sample_weight=weights, **kw))
        nets.append(net)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    for key in ("loss", "val_loss", "val_accuracy" if output != "identity" else "val_r2"):
        assert hists[0][key] == hists[1][key], key
    np.testing.assert_array_equal(nets[0]._rng, nets[1]._rng)


def test_all_ones_loss_gradient_and_metrics_bit_for_bit():
    X, y, _ = _data("softmax", n=2100)
    net = _net(alpha=0.2)
    ones = np.ones(len(X))
    assert net.loss(X, y) == net.loss(X, y, sample_weight=ones)
    np.testing.assert_array_equal(net.gradient(X, y), net.gradient(X, y, sample_weight=ones))
    assert net.evaluate(X, y) == net.evaluate(X, y, sample_weight=ones)


# --------------------------------------------- integer weights: repeated rows
@pytest.mark.parametrize("optimizer", ["sgd", "lbfgs"])
@pytest.mark.parametrize("output", ["softmax", "identity"])
def test_integer_weights_equal_repeated_rows_in_full_batch_training(optimizer, output):
    X, y, _ = _data(output, n=30)
    k = np.random.default_rng(5).integers(0, 4, len(X))
    k[0] = 1
    a, b = _net(output, alpha=0.5), _net(output, alpha=0.5)
    lr = {} if optimizer == "lbfgs" else dict(lr=0.2)  # (L-BFGS takes none)
    ha = a.fit(X, y, epochs=6, batch_size=len(X), shuffle=False, optimizer=optimizer,
               verbose=0, sample_weight=k, **lr)
    hb = b.fit(np.repeat(X, k, axis=0), np.repeat(y, k, axis=0), epochs=6, batch_size=int(k.sum()),
               shuffle=False, optimizer=optimizer, verbose=0, **lr)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-10)


def test_a_batch_of_zero_weight_changes_nothing():
    """Plain SGD, unshuffled: a last batch of zero-weight rows leaves the
    parameters exactly as training on the other rows alone."""
    X, y, _ = _data("softmax", n=24)
    w = np.r_[np.ones(16), np.zeros(8)]
    a, b = _net(), _net()
    a.fit(X, y, epochs=2, batch_size=8, shuffle=False, lr=0.1, verbose=0, sample_weight=w)
    b.fit(X[:16], y[:16], epochs=2, batch_size=8, shuffle=False, lr=0.1, verbose=0)
    np.testing.assert_array_equal(a.params, b.params)


def test_weights_scale_freely_and_follow_the_shuffle():
    """The loss is a weighted mean, so weights times 2 train as the weights
    (to rounding); the weights travel with their rows through the shuffle:
    the same rows in another order, weights permuted alike, give the same
    full-batch training."""
    X, y, w = _data("softmax", n=32)
    a, b, c = _net(), _net(), _net()
    a.fit(X, y, epochs=3, batch_size=8, lr=0.1, verbose=0, sample_weight=w, seed=1)
    b.fit(X, y, epochs=3, batch_size=8, lr=0.1, verbose=0, sample_weight=2 * w, seed=1)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-14)
    order = np.random.default_rng(2).permutation(len(X))
    d = _net()
    a, c = _net(), _net()
    a.fit(X, y, epochs=3, batch_size=32, lr=0.1, verbose=0, sample_weight=w)
    d.fit(X[order], y[order], epochs=3, batch_size=32, lr=0.1, verbose=0, sample_weight=w[order])
    np.testing.assert_allclose(a.params, d.params, rtol=1e-12, atol=1e-14)
    # and the shuffled minibatches really use them: weights matter
    c.fit(X, y, epochs=3, batch_size=8, lr=0.1, verbose=0, seed=1)
    b = _net()
    b.fit(X, y, epochs=3, batch_size=8, lr=0.1, verbose=0, sample_weight=w, seed=1)
    assert not np.allclose(b.params, c.params)


def test_shuffled_minibatches_match_a_numpy_replay():
    """Minibatch SGD with shuffling: each batch's step is the reference
    weighted step on the rows the epoch's permutation gives that batch."""
    X, y, w = _data("softmax", n=20)
    net, ref = _net(alpha=0.3), _net(alpha=0.3)
    rng = net._rng.copy()
    net.fit(X, y, epochs=1, batch_size=6, lr=0.2, verbose=0, sample_weight=w)
    perm = np.arange(20)
    fastbp.ops.shuffle(perm, rng[:1])
    for start in range(0, 20, 6):
        rows = perm[start:start + 6]
        _, g = _reference(ref, X[rows], y[rows], w[rows])
        ref.params[:] -= 0.2 * g
    np.testing.assert_allclose(net.params, ref.params, rtol=1e-11, atol=1e-14)


# ------------------------------------------------------------ class weights
def test_balanced_is_scikit_learns_class_weight():
    from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
    rng = np.random.default_rng(3)
    y = rng.choice(4, size=60, p=[0.6, 0.3, 0.1, 0.0])  # class 3 absent
    sw = rng.random(60)
    for weights in (None, sw):
        classes = np.unique(y)
        want = compute_class_weight("balanced", classes=classes, y=y, sample_weight=weights)
        got = fastbp._validate.class_weights("balanced", y, "softmax", 4, None, weights)
        np.testing.assert_allclose(got[classes], want, rtol=1e-15)
        assert got[3] == 0
    np.testing.assert_allclose(
        fastbp._validate.fit_weights(None, "balanced", y, "softmax", 4, None, 0.0)[0],
        compute_sample_weight("balanced", y), rtol=1e-15)


def test_class_weight_is_the_matching_sample_weight():
    """class_weight multiplies sample_weight row by row: a fit with both is
    bit for bit the fit with their product as sample_weight; text labels."""
    X, y, w = _data("softmax", n=40)
    names = np.array(["ant", "bee", "cat"])[y]
    cw = {"bee": 3.0, "cat": 0.5}
    a, b = _net(), _net()
    ha = a.fit(X, names, epochs=2, batch_size=8, lr=0.1, verbose=0, sample_weight=w,
               class_weight=cw, validation_split=0.2)
    per_row = w * np.array([1.0, 3.0, 0.5])[y]
    hb = b.fit(X, names, epochs=2, batch_size=8, lr=0.1, verbose=0, sample_weight=per_row,
               validation_split=0.2)
    np.testing.assert_array_equal(a.params, b.params)
    assert ha["val_loss"] == hb["val_loss"]
    c = _net()
    c.fit(X, y, epochs=1, batch_size=8, lr=0.1, verbose=0, class_weight="balanced")
    d = _net()
    counts = np.bincount(y)
    d.fit(X, y, epochs=1, batch_size=8, lr=0.1, verbose=0,
          sample_weight=(len(y) / (3 * counts))[y])
    np.testing.assert_allclose(c.params, d.params, rtol=1e-13, atol=1e-15)


def test_class_weight_for_one_sigmoid_output():
    X, _, _ = _data("softmax", n=30)
    y = (X[:, 0] > 0.5).astype(int)
    a, b = (fastbp.MLP([4, 3, 1], output="sigmoid", dtype="float64", seed=0) for _ in range(2))
    a.fit(X, y, epochs=2, batch_size=8, lr=0.1, verbose=0, class_weight={1: 4.0})
    b.fit(X, y, epochs=2, batch_size=8, lr=0.1, verbose=0, sample_weight=np.where(y == 1, 4.0, 1.0))
    np.testing.assert_array_equal(a.params, b.params)


# ----------------------------------------------------------- validation
def test_validation_metrics_are_weighted():
    X, y, w = _data("softmax", n=50)
    Xv, yv, wv = _data("softmax", n=20, seed=4)
    net = _net(alpha=0.2)
    h = net.fit(X, y, epochs=2, batch_size=10, lr=0.1, verbose=0, sample_weight=w,
                class_weight={0: 2.0}, validation_data=(Xv, yv, wv))
    wv_all = wv * np.where(yv == 0, 2.0, 1.0)
    E, _ = _reference(net, Xv, yv, wv_all)
    assert h["val_loss"][-1] == pytest.approx(E, rel=1e-12)
    hits = net.predict(Xv) == yv
    assert h["val_accuracy"][-1] == pytest.approx((wv_all * hits).sum() / wv_all.sum(), rel=1e-12)


def test_weighted_r2_is_scikit_learns():
    from sklearn.metrics import r2_score
    X, y, w = _data("identity", n=50)
    net = _net("identity")
    net.fit(X, y, epochs=2, batch_size=10, lr=0.05, verbose=0)
    got = net.evaluate(X, y, sample_weight=w)["r2"]
    assert got == pytest.approx(r2_score(y, net.predict(X), sample_weight=w), rel=1e-12)


def test_partial_fit_takes_weights():
    X, y, w = _data("softmax", n=30)
    a, b = _net(), _net()
    a.partial_fit(X, y, batch_size=8, lr=0.1, sample_weight=w, class_weight="balanced")
    b.fit(X, y, epochs=1, batch_size=8, lr=0.1, verbose=0, sample_weight=w,
          class_weight="balanced")
    np.testing.assert_array_equal(a.params, b.params)


# ----------------------------------------------------------- bad input
def _state(net):
    return (net.params.copy(), net._rng.copy(), len(net.history), net.optimizer, net.classes_)


BAD = [
    (dict(sample_weight=np.ones(7)), ValueError, "X has 40, sample_weight has 7"),
    (dict(sample_weight=-np.ones(40)), ValueError, r"sample_weight must be >= 0; found -1.0 at index 0"),
    (dict(sample_weight=np.r_[np.ones(39), np.nan]), ValueError, r"sample_weight must be finite; found nan at index \(39,\)"),
    (dict(sample_weight=np.r_[np.ones(39), np.inf]), ValueError, "sample_weight must be finite"),
    (dict(sample_weight=np.ones((40, 1))), ValueError, "sample_weight must be 1-D"),
    (dict(sample_weight=["a"] * 40), TypeError, "sample_weight must hold numbers"),
    (dict(sample_weight=np.zeros(40)), ValueError, "sum to zero"),
    (dict(class_weight={0: 1.0, 7: 2.0}), ValueError, r"not classes of this model: \[7\]"),
    (dict(class_weight={1: -2.0}), ValueError, r"class_weight\[1\] must be a finite number >= 0"),
    (dict(class_weight={1: float("nan")}), ValueError, r"class_weight\[1\] must be a finite"),
    (dict(class_weight="balancd"), ValueError, "class_weight must be None, 'balanced' or a dict"),
    (dict(class_weight=[1, 2]), TypeError, "class_weight must be None, 'balanced' or a dict"),
    (dict(class_weight={0: 0, 1: 0, 2: 0}), ValueError, "sum to zero"),
    (dict(validation_data=(np.ones((3, 4)), [0, 1, 2], [1, -1, 1])), ValueError,
     "validation_data\\[2\\] must be >= 0"),
    (dict(validation_data=(np.ones((3, 4)), [0, 1, 2], [1, 1])), ValueError,
     "validation_data\\[0\\] has 3, validation_data\\[2\\] has 2"),
    (dict(sample_weight=np.r_[np.ones(30), np.zeros(10)], validation_split=0.25, shuffle=False),
     ValueError, "validation rows"),
    (dict(sample_weight=np.ones(40), distributed=True), ValueError, "distributed"),
]


@pytest.mark.parametrize("kwargs, error, message", BAD, ids=[m for _, _, m in BAD])
def test_bad_weights_are_clear_errors_and_change_nothing(kwargs, error, message):
    X, y, _ = _data("softmax", n=40)
    if "validation_split" in kwargs:
        y = np.arange(40) % 3  # the split holds out the last rows of each class
        kwargs = dict(kwargs, sample_weight=np.where(np.arange(40) >= 28, 0.0, 1.0))
    net = _net()
    net.fit(X, y, epochs=1, lr=0.1, verbose=0)
    before = _state(net)
    with pytest.raises(error, match=message):
        net.fit(X, y, epochs=1, lr=0.5, verbose=0, **kwargs)
    after = _state(net)
    np.testing.assert_array_equal(before[0], after[0])
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2:] == after[2:]


@pytest.mark.parametrize("output, y, message", [
    ("identity", None, "class_weight applies to classifiers.*regression model"),
    ("sigmoid", None, "multilabel"),
    ("sigmoid1", np.full(40, 0.5), "0/1 class labels"),
])
def test_class_weight_needs_a_classifier(output, y, message):
    X, yy, _ = _data("softmax" if output == "sigmoid1" else output, n=40)
    net = fastbp.MLP([4, 3, 1], output="sigmoid", seed=0) if output == "sigmoid1" else _net(output)
    y = yy if y is None else y
    before = net.params.copy()
    with pytest.raises(ValueError, match=message):
        net.fit(X, y, epochs=1, verbose=0, class_weight="balanced")
    np.testing.assert_array_equal(net.params, before)
    assert len(net.history) == 0 and net.optimizer is None


def test_class_weight_names_validation_targets_that_hold_no_classes():
    """Review HAK: probabilities in validation_data's targets were blamed on
    y, whose 0/1 labels were fine."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(12, 4)), (rng.uniform(size=12) > 0.5).astype(int)
    net = fastbp.MLP([4, 5, 1], output="sigmoid", seed=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"class_weight needs 0/1 class labels in"
                                         r" validation_data\[1\]; found 0.3"):
        net.fit(X, y, verbose=0, class_weight="balanced", validation_data=(X, np.full(12, 0.3)))
    np.testing.assert_array_equal(net.params, before)
    assert len(net.history) == 0 and net.optimizer is None
    with pytest.raises(ValueError, match=r"class_weight needs 0/1 class labels in y; found 0.3"):
        net.fit(np.vstack([X, X]), np.concatenate([y, np.full(12, 0.3)]), verbose=0,
                class_weight="balanced", validation_split=0.5)


# -------------------------------------------------------------- the kernels
def test_the_weighted_kernels_format_no_strings():
    from test_compile import _string_work
    kernels = [obj.py_func for obj in vars(_weighted).values()
               if hasattr(obj, "py_func") and obj.py_func.__module__ == _weighted.__name__]
    assert len(kernels) >= 5
    assert {k.__name__: w for k in kernels if (w := _string_work(k))} == {}


def test_an_unweighted_fit_runs_no_weighted_kernel(monkeypatch):
    """The unweighted path never calls the weighted twins (the compiled set
    of a plain fit is pinned in test_compile.py)."""
    def refuse(*args):
        raise AssertionError("a weighted kernel ran in an unweighted fit")
    for name in ("epoch_weighted", "epoch_weighted_sgd", "epoch_weighted_optimizer",
                 "loss_value_weighted",
                 "gradient_weighted"):
        monkeypatch.setattr(_weighted, name, refuse)
    X, y, _ = _data("softmax")
    for optimizer in ("sgd", "adam", "lbfgs"):
        if optimizer != "lbfgs":
            _net(dropout=0.1).fit(X, y, epochs=1, optimizer=optimizer, verbose=0,
                                  validation_split=0.2)
        net = _net(alpha=0.1)
        net.fit(X, y, epochs=1, optimizer=optimizer, verbose=0, validation_split=0.2)
        net.loss(X, y), net.gradient(X, y), net.evaluate(X, y)


@pytest.mark.parametrize("optimizer", [fastbp.SGD(lr=5.0), fastbp.SGD(lr=5.0, momentum=0.5)],
                         ids=["sgd", "momentum"])
def test_divergence_rolls_back_as_without_weights(optimizer):
    """The weighted kernels stop and replay like the unweighted ones: with
    all-ones weights the same rollback, bit for bit."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(20, 3)) * 50, rng.normal(size=20) * 1e3
    nets, hists = [], []
    for weights in (None, np.ones(20)):
        net = fastbp.MLP([3, 6, 1], activation="relu", output="identity", dtype="float64", seed=2)
        hists.append(net.fit(X, y, epochs=40, batch_size=4, shuffle=False, verbose=0,
                             optimizer=copy.deepcopy(optimizer), on_divergence="stop",
                             sample_weight=weights))
        nets.append(net)
    assert hists[0].diverged and hists[1].diverged
    assert hists[0]["loss"] == hists[1]["loss"]
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    assert nets[0].optimizer.t == nets[1].optimizer.t


_COLD = """
import numpy as np
import fastbp
X = np.random.default_rng(0).normal(size=(40, 4))
y = (X[:, 0] > 0).astype(int)
net = fastbp.MLP([4, 8, 2], seed=0)
step[0] = "plain"
net.fit(X, y, epochs=1, batch_size=8, lr=0.1, verbose=0)
step[0] = "weighted"
net.fit(X, y, epochs=1, batch_size=8, lr=0.1, verbose=0, sample_weight=np.ones(40))
step[0] = "adam"
net.fit(X, y, epochs=1, batch_size=8, optimizer="adam", verbose=0, sample_weight=np.ones(40))
"""


def test_a_weighted_fit_compiles_only_its_own_small_kernels(tmp_path):
    """After a plain fit, a weighted plain-SGD fit compiles its epoch kernel,
    the fused weighted backward and the weighted loss: no optimizer, no
    dropout, no string formatting; a weighted Adam fit then adds the
    optimizer path, no dropout (fresh cache, compile events)."""
    from compile_events import compiled_by
    compiled = compiled_by(_COLD, tmp_path)
    assert not any("_weighted" in n for n in compiled["plain"])
    assert sorted(compiled["weighted"]) == ["fastbp._weighted._backward_sgd_weighted",
                                            "fastbp._weighted.epoch_weighted_sgd",
                                            "fastbp._weighted.weighted_loss_forward"]
    # an optimizer adds its own path (as an unweighted Adam fit would), no dropout
    added = set(compiled["adam"])
    assert {"fastbp._weighted.epoch_weighted_optimizer", "fastbp._weighted._backward_batch_weighted",
            "fastbp.optim.optimizer_step__code_1"} <= added, sorted(added)
    assert not any("dropout" in n or n == "fastbp._weighted.epoch_weighted" for n in added), added


# ------------------------------------------------------------ command line
def test_cli_class_weight_balanced(tmp_path, capsys):
    from test_cli import write_csv
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    label = np.where(X[:, 0] > 0.9, "rare", "common")
    path = write_csv(tmp_path / "d.csv", ["a", "b", "c", "kind"],
                     [list(map(str, r)) + [k] for r, k in zip(X, label)])
    models = {}
    for flag in ([], ["--class-weight", "balanced"]):
        out = str(tmp_path / f"m{len(flag)}.npz")
        assert main(["train", path, "--epochs", "3", "--verbose", "0", "--dtype", "float64",
                     "--test-fraction", "0", "--out", out] + flag) == 0
        models[len(flag)] = fastbp.load(out)
    # The balanced model is the Python fit with scikit-learn's balanced weights.
    net = models[0]
    X, _, label, _ = fastbp.datasets.train_test_split(X, label, test_fraction=0, seed=0)
    ref = fastbp.MLP(net.sizes, activation=net.activations[0], dtype="float64", seed=0)
    ref.classes_ = net.classes_
    ref.standardize(X)
    counts = {k: (label == k).sum() for k in ("common", "rare")}
    ref.fit(X, label, epochs=3, batch_size=32, optimizer="adam", seed=0, verbose=0,
            sample_weight=np.array([len(label) / (2 * counts[k]) for k in label]))
    np.testing.assert_allclose(models[2].params, ref.params, rtol=1e-12, atol=1e-14)
    assert not np.allclose(models[0].params, models[2].params)
    capsys.readouterr()
    status = main(["train", path, "--target", "a", "--task", "regression", "--class-weight",
                   "balanced", "--epochs", "1", "--verbose", "0"])
    assert status == 2 and "regression" in capsys.readouterr().err


def test_cli_help_shows_the_class_weight_default(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "--class-weight {none,balanced}" in out and "(default: none)" in " ".join(out.split())


def test_read_only_weights_are_used_in_place():
    """A read-only (memory-mapped, frozen) weights array trains as a writable
    one, and is not copied nor changed."""
    X, y, w = _data("softmax", n=30)
    frozen = w.copy()
    frozen.setflags(write=False)
    a, b = _net(), _net()
    a.fit(X, y, epochs=1, batch_size=8, lr=0.1, verbose=0, sample_weight=w)
    compiled = len(_weighted.epoch_weighted_sgd.signatures)  # the kernel this fit runs
    assert compiled > 0
    b.fit(X, y, epochs=1, batch_size=8, lr=0.1, verbose=0, sample_weight=frozen)
    assert len(_weighted.epoch_weighted_sgd.signatures) == compiled  # no read-only specialisation
    np.testing.assert_array_equal(a.params, b.params)
    np.testing.assert_array_equal(frozen, w)
    got = fastbp._validate.fit_weights(frozen, None, y, "softmax", 3, None, 0.0)[0]
    assert got.flags.writeable and np.shares_memory(got, frozen)


def test_a_distributed_fit_is_not_refused_for_a_validation_triple_without_weights():
    """validation_data=(X, y, None) carries no weights: the distributed
    check must not refuse it (it did, on the length alone); the fit then
    fails only for want of MPI, or trains when mpi4py is there."""
    from fastbp import _args
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = (X[:, 0] > 0).astype(int)
    net = fastbp.MLP([3, 4, 2], seed=0)
    run = _args.fit_arguments(net, X, y, 1, 8, None, True, None, 0, None, (X, y, None), 0.0, None,
                              "raise", True)
    assert run.comm is True and run.weights is None and len(run.validation) == 2
    with pytest.raises(ValueError, match="no sample_weight"):
        _args.fit_arguments(net, X, y, 1, 8, None, True, None, 0, None, (X, y, np.ones(20)), 0.0,
                            None, "raise", True)


def test_tiny_weights_train_by_their_ratios_and_extreme_ratios_are_refused():
    """A batch's weights are normalised by nb / (their sum): subnormal weights
    overflowed that to inf, a NaN gradient blamed on the learning rate. Only
    ratios matter: weights all tiny are scaled up by a power of two (exact),
    and only a weight 1e-305 times the largest, alone in a batch, is refused
    (a first fix refused 1e-305 on 2000 rows, which had trained)."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(2000, 3)), rng.integers(0, 3, 2000)
    net = fastbp.MLP([3, 4, 3], dtype="float64", seed=0)
    before = net.params.copy()
    plain = net.gradient(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for c in (1e-305, 1e-310, 5e-324):
            np.testing.assert_allclose(net.gradient(X, y, sample_weight=np.full(2000, c)), plain,
                                       rtol=1e-12, atol=1e-15)
        a, b = copy.deepcopy(net), copy.deepcopy(net)
        a.fit(X, y, sample_weight=np.full(2000, 1e-305), epochs=2, verbose=0)
        b.fit(X, y, sample_weight=np.full(2000, 1e-305 * 2.0 ** 1000), epochs=2, verbose=0)
        np.testing.assert_array_equal(a.params, b.params)  # a power of two apart: the same bits
    one_tiny = np.ones(2000)
    one_tiny[3] = 1e-310  # in a batch of one row, alone
    calls = [lambda: net.gradient(X, y, sample_weight=one_tiny),
             lambda: net.fit(X, y, sample_weight=one_tiny, batch_size=1, verbose=0)]
    for call in calls:
        with pytest.raises(ValueError, match="include 1e-310, too small to normalise a batch by"):
            call()
    np.testing.assert_array_equal(net.params, before)
    assert len(net.history) == 0
    with warnings.catch_warnings():  # weights above 1 warn of no overflow in the check
        warnings.simplefilter("error")
        net.fit(X[:20], y[:20], sample_weight=np.full(20, 2.0),
                class_weight={0: 3.0, 1: 1.0, 2: 1.0}, epochs=1, verbose=0)


def test_with_alpha_the_l2_term_is_divided_by_the_weights_sum_at_every_scale():
    """Found in review (session 37): tiny weights were scaled up by a power of
    two also with alpha > 0, where the L2 term divides by their sum: the
    objective at weights of 2**-501 was the one at weights of 1 (1.28, where
    the documented one is 1.1e149). The documented objective, by hand."""
    rng = np.random.default_rng(8)
    X, y = rng.normal(size=(20, 4)), rng.integers(0, 3, 20)
    net = fastbp.MLP([4, 5, 3], seed=0, dtype="float64", alpha=0.1)
    data = fastbp.MLP([4, 5, 3], seed=0, dtype="float64", alpha=0.0).loss(X, y)
    squares = sum(float((W ** 2).sum()) for W in net.weights)
    for c in (1.0, 1e-3, 2.0 ** -499, 2.0 ** -501, 1e-300):
        want = data + 0.1 / (2 * 20 * c) * squares
        assert net.loss(X, y, sample_weight=np.full(20, c)) == pytest.approx(want, rel=1e-12)
        assert net.evaluate(X, y, sample_weight=np.full(20, c))["loss"] == pytest.approx(want,
                                                                                        rel=1e-12)
    plain = net.gradient(X, y)   # unweighted: the L2 gradient alpha / n W
    tiny = net.gradient(X, y, sample_weight=np.full(20, 2.0 ** -501))
    W0 = slice(0, 4 * 5)
    np.testing.assert_allclose(tiny[W0] - plain[W0],
                               (2.0 ** 501 - 1) * 0.1 / 20 * net.weights[0].ravel(), rtol=1e-12)


def test_weights_whose_sum_overflows_are_refused_and_change_nothing():
    # Finite weights can sum to inf: the loss was NaN, the gradient 0, and fit
    # blamed the learning rate. Their sum is checked as their sign is.
    # (With alpha = 0, since session 38, such weights are scaled down by a
    # power of two, as only their ratios matter: below. With alpha > 0 their
    # sum divides the L2 term, so they are used as given, and refused.)
    X = np.random.default_rng(0).normal(size=(40, 4))
    y = np.arange(40) % 3
    net = fastbp.MLP([4, 6, 3], dtype="float64", seed=0, alpha=0.1)
    before = net.params.copy()
    w = np.full(40, 1e307)
    calls = [lambda: net.loss(X, y, sample_weight=w), lambda: net.gradient(X, y, sample_weight=w),
             lambda: net.evaluate(X, y, sample_weight=w),
             lambda: net.fit(X, y, sample_weight=w, batch_size=40, verbose=0),
             lambda: net.fit(X, y, sample_weight=np.full(40, 1e200), verbose=0,
                             class_weight={0: 1e200, 1: 1.0, 2: 1.0})]
    for call in calls:
        with pytest.raises(ValueError, match="rescale sample_weight"), \
                np.errstate(over="ignore"):
            call()
    np.testing.assert_array_equal(net.params, before)
    assert len(net.history) == 0
    # scaled down they weigh the rows as before: equal weights, the plain loss
    assert net.loss(X, y, sample_weight=w / 1e307) == pytest.approx(net.loss(X, y), rel=1e-12)
    plain = fastbp.MLP([4, 6, 3], dtype="float64", seed=0)   # alpha 0: only ratios matter
    assert plain.loss(X, y, sample_weight=w) == pytest.approx(plain.loss(X, y), rel=1e-12)
    assert plain.loss(X, y, sample_weight=np.full(40, 1e308)) == pytest.approx(plain.loss(X, y),
                                                                               rel=1e-12)


def test_class_weight_balanced_in_any_case_as_every_named_choice():
    # (found in review, session 38: "Balanced" was refused in Python, taken
    # by the CLI's --class-weight; the guide says any case)
    X = np.random.default_rng(0).normal(size=(30, 3))
    y = (X[:, 0] > 0.5).astype(int)
    got = []
    for name in ("balanced", "Balanced", "BALANCED"):
        net = fastbp.MLP([3, 4, 2], seed=0)
        net.fit(X, y, epochs=2, batch_size=10, verbose=0, class_weight=name)
        got.append(net.params.copy())
    plain = fastbp.MLP([3, 4, 2], seed=0)
    plain.fit(X, y, epochs=2, batch_size=10, verbose=0)
    assert np.array_equal(got[0], got[1]) and np.array_equal(got[0], got[2])
    assert not np.array_equal(got[0], plain.params)   # (the weights did act: the classes are 2:1)


def test_huge_weights_whose_sum_fits_give_the_unweighted_loss():
    # (found in review, session 38: each chunk's mean times its weight sum
    # overflowed for weights of 1.7e307: loss, evaluate and L-BFGS saw inf)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(10, 3)), rng.normal(size=10) + 10   # a loss of about 100
    net = fastbp.MLP([3, 4, 1], output="identity", seed=0)
    huge = np.full(10, 1.7e307)
    assert net.loss(X, y, sample_weight=huge) == pytest.approx(net.loss(X, y), rel=1e-15)
    assert net.evaluate(X, y, sample_weight=huge)["loss"] == pytest.approx(
        net.evaluate(X, y)["loss"], rel=1e-15)
    np.testing.assert_allclose(net.gradient(X, y, sample_weight=huge), net.gradient(X, y),
                               rtol=1e-13)
    h = fastbp.MLP([3, 4, 1], output="identity", seed=0).fit(
        X, y, epochs=2, optimizer="lbfgs", sample_weight=huge, verbose=0)
    assert np.isfinite(h["loss"]).all()


def test_validation_weights_refused_name_validation_data():
    # (the message named sample_weight for validation_data[2])
    X = np.random.default_rng(0).normal(size=(10, 3))
    y = np.arange(10) % 2
    net = fastbp.MLP([3, 2], seed=0)
    with pytest.raises(ValueError, match=r"the weights of the validation rows"
                                         r" \(validation_data\[2\]\) sum to zero"):
        net.fit(X, y, epochs=1, verbose=0, validation_data=(X, y, np.zeros(10)))
    # Review GD: a pair whose rows class_weight weighs zero named a
    # validation_data[2] never given; evaluate, a class_weight it does not take
    with pytest.raises(ValueError, match=r"the weights of the validation rows \(class_weight\)"
                                         r" sum to zero"):
        net.fit(X, y, epochs=1, verbose=0, class_weight={1: 0.0},
                validation_data=(X[1::2], y[1::2]))
    with pytest.raises(ValueError, match=r"the weights of the validation rows \(validation_data"
                                         r"\[2\] times class_weight\) sum to zero"):
        net.fit(X, y, epochs=1, verbose=0, class_weight={1: 0.0},
                validation_data=(X, y, (y == 1).astype(float)))
    with pytest.raises(ValueError, match=r"the weights of the samples \(sample_weight\) sum to"
                                         r" zero"):
        net.evaluate(X, y, sample_weight=np.zeros(10))
    net.alpha = 0.1   # (with alpha 0 such weights are scaled: only their ratios matter)
    with pytest.raises(ValueError, match=r"rescale validation_data\[2\]"):
        net.fit(X, y, epochs=1, verbose=0, validation_data=(X, y, np.full(10, 1e308)))
    assert len(net.history) == 0


def test_huge_weights_beside_small_ones_are_used_as_given():
    # (found in review of the day's diff: scaled down by 2**-996, 1e-30 became
    # 0 and its batch was skipped; 1e-9 became 1.49e-309 and was refused)
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 3)), rng.integers(0, 2, 64)
    w = np.r_[np.full(32, 1e300), np.full(32, 1e-30)]
    a = fastbp.MLP([3, 2], seed=0)
    a.fit(X, y, epochs=1, batch_size=32, shuffle=False, sample_weight=w, verbose=0)
    b = fastbp.MLP([3, 2], seed=0)   # the first batch alone: the second made no update
    b.fit(X[:32], y[:32], epochs=1, batch_size=32, shuffle=False, sample_weight=w[:32], verbose=0)
    assert not np.array_equal(a.params, b.params)
    net = fastbp.MLP([3, 2], seed=0)
    assert np.isfinite(net.loss(X[:2], y[:2], sample_weight=[1e300, 1e-9]))


def test_class_weight_takes_bytes_labels_as_y_holds_them():
    """y's bytes labels become classes_ as str; the class_weight keys named
    as y holds them (bytes) were refused as no classes of the model."""
    X, y, w = _data("softmax", n=40)
    a, b = _net(), _net()
    a.fit(X, np.array([b"ant", b"bee", b"cat"])[y], epochs=1, batch_size=8, lr=0.1, verbose=0,
          class_weight={b"bee": 3.0, "cat": 0.5})
    b.fit(X, y, epochs=1, batch_size=8, lr=0.1, verbose=0,
          sample_weight=np.array([1.0, 3.0, 0.5])[y])
    np.testing.assert_array_equal(a.params, b.params)
    with pytest.raises(ValueError, match=r"not classes of this model: \[b'\\xff'\]"):
        _net().fit(X, np.array([b"ant", b"bee", b"cat"])[y], class_weight={b"\xff": 1.0})


def test_class_weight_naming_one_class_twice_is_refused():
    # "a" and b"a" name one class: the last weight was kept, the other dropped.
    X, _, _ = _data("softmax", n=12)
    y = np.array(["a", "b", "c"] * 4)
    net = _net()
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"names the class 'a' twice, as 'a' and b'a'"):
        net.fit(X, y, class_weight={"a": 5.0, b"a": 0.1})
    np.testing.assert_array_equal(net.params, before)


def test_a_row_of_weight_zero_counts_for_nothing_even_where_its_loss_overflows():
    """Review GG: a row of weight 0 whose squared error overflows (target
    1e200) made the weighted loss 0 x inf = NaN: fit called it a divergence
    before any update, and loss() returned NaN. It trains as without the
    row, as scikit-learn's weighted fit does."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 3))
    y = X @ [1.0, 2.0, 3.0]
    y[9] = 1e200
    w = np.ones(10)
    w[9] = 0.0
    net = fastbp.MLP([3, 1], output="identity", seed=0, dtype="float64")
    twin = fastbp.MLP([3, 1], output="identity", seed=0, dtype="float64")
    assert net.loss(X, y, sample_weight=w) == twin.loss(X[:9], y[:9])
    net.fit(X, y, sample_weight=w, epochs=5, batch_size=10, shuffle=False, verbose=0, lr=0.05)
    twin.fit(X[:9], y[:9], epochs=5, batch_size=10, shuffle=False, verbose=0, lr=0.05)
    np.testing.assert_allclose(net.params, twin.params, rtol=1e-12)


@pytest.mark.parametrize("output, each", [("identity", 2.5e299), ("identity", 4.4e307),
                                          ("sigmoid", 4.4e307)])
def test_huge_equal_weights_with_alpha_give_the_unweighted_mean(output, each):
    """With alpha > 0 the weights stay as given (the L2 term is over their
    sum), and the kernel's sum w_i L_i, or w m, overflowed: weights of 2.5e299
    gave a loss of inf (fit: a TrainingDivergedError), 4.4e307 a loss of
    1.8e-312 for 0.33, and evaluate's R^2 NaN."""
    rng = np.random.default_rng(0)
    X, y, _ = _data(output, n=4)
    if output == "identity":
        y = y * 1e5   # (residuals of 1e5: a loss of 1e10, a sum past float64 at 2.5e299)
    net = _net(output, alpha=1e-4)
    w = np.full(4, each)
    data_term = net.loss(X, y) - net.alpha / 8 * sum((W ** 2).sum() for W in net.weights)
    penalty = net.alpha / 2 / w.sum() * sum((W ** 2).sum() for W in net.weights)
    assert net.loss(X, y, sample_weight=w) == pytest.approx(data_term + penalty, rel=1e-13)
    got, want = net.evaluate(X, y, sample_weight=w), net.evaluate(X, y)
    metric = "r2" if output == "identity" else "accuracy"
    assert got[metric] == pytest.approx(want[metric], rel=1e-13)
    history = net.fit(X, y, epochs=1, batch_size=4, lr=1e-12, verbose=0, sample_weight=w)
    assert history["loss"][0] == pytest.approx(data_term + penalty, rel=1e-9)


@pytest.mark.parametrize("where", ["training", "validation"])
def test_a_fit_that_scaled_its_weights_refuses_a_callbacks_alpha(where):
    """Weights below 2**-500 are scaled once, at a fit that begins with alpha
    0; a callback's net.alpha = 1e-3 then trained on alpha / (2 sum w) of the
    scaled weights (an epoch loss of 1.24 where the objective is 1.3e156)."""
    X, y, _ = _data("softmax", n=30)
    net = _net()
    tiny = np.full(30, 1e-160)

    class SetAlpha:
        def on_epoch_end(self, epoch, logs):
            net.alpha = 1e-3

    kw = dict(sample_weight=tiny) if where == "training" else \
        dict(validation_data=(X, y, tiny))
    with pytest.raises(RuntimeError, match="net.alpha cannot become non-zero while this fit runs:"
                                           " it began with alpha 0 and weights all below"):
        net.fit(X, y, epochs=2, batch_size=30, verbose=0, callbacks=[SetAlpha()], **kw)
    assert len(net.history) == 1 and net.alpha == 0
    net.alpha = 1e-3   # (between fits, as given: the next fit takes them unscaled)
    assert net.loss(X, y, sample_weight=tiny) > 1e150
    ordinary = _net()   # (weights that are not scaled: the callback's alpha trains)
    ordinary.fit(X, y, epochs=2, batch_size=30, verbose=0, sample_weight=np.full(30, 0.5),
                 callbacks=[type("A", (), {"on_epoch_end": lambda s, e, l: setattr(
                     ordinary, "alpha", 1e-3)})()])
    assert ordinary.alpha == 1e-3 and len(ordinary.history) == 2


@pytest.mark.parametrize("scale", [1e-300, 1e-304])
def test_tiny_weights_with_alpha_give_scikit_learns_weighted_r2(scale):
    """With alpha > 0 the weights stay as given, and w * residual**2 of tiny
    weights fell into the subnormals: R^2 0.831138 where scikit-learn gives
    0.831330 (review HV); evaluate and val_r2 scale them as the loss may not."""
    from sklearn.metrics import r2_score
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    net = fastbp.MLP([3, 1], output="identity", dtype="float64", seed=0, alpha=1e-3)
    net.params[:] = [1e-9, -2e-9, 5e-10, 0.0]
    pred = net.predict(X).reshape(-1, 1)
    Y = pred + rng.normal(size=(200, 1)) * 1e-9
    w = rng.uniform(1, 2, 200)
    want = r2_score(Y, pred, sample_weight=w)
    assert net.evaluate(X, Y, sample_weight=w * scale)["r2"] == pytest.approx(want, rel=1e-12)
    history = net.fit(X, Y, epochs=1, lr=1e-300, verbose=0, validation_data=(X, Y, w * scale))
    assert history["val_r2"][0] == pytest.approx(
        r2_score(Y, net.predict(X).reshape(-1, 1), sample_weight=w), rel=1e-12)
