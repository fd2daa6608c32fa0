"""Optimizers: 10 steps against references written here from PyTorch's
documented update rules, a hand-worked first step each, and bad arguments."""
import math

import numpy as np
import pytest

import fastbp


def ref_sgd(p, grads, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    p, buf = p.copy(), None
    for g in grads:
        d = g + weight_decay * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


def ref_adam(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    p, m, v = p.copy(), np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


def ref_rmsprop(p, grads, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0):
    p, sq, buf = p.copy(), np.zeros_like(p), np.zeros_like(p)
    for g in grads:
        g = g + weight_decay * p
        sq = alpha * sq + (1 - alpha) * g * g
        avg = np.sqrt(sq) + eps
        if momentum:
            buf = momentum * buf + g / avg
            p = p - lr * buf
        else:
            p = p - lr * g / avg
    return p


CASES = [
    (fastbp.SGD, dict(lr=0.1), ref_sgd),
    (fastbp.SGD, dict(lr=0.1, momentum=0.9), ref_sgd),
    (fastbp.SGD, dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.01), ref_sgd),
    (fastbp.SGD, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1), ref_sgd),
    (fastbp.Adam, dict(lr=0.01), ref_adam),
    (fastbp.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), ref_adam),
    (fastbp.AdamW, dict(lr=0.01, weight_decay=0.1), lambda p, g, **k: ref_adam(p, g, decoupled=True, **k)),
    (fastbp.RMSprop, dict(lr=0.01), ref_rmsprop),
    (fastbp.RMSprop, dict(lr=0.01, alpha=0.9, weight_decay=0.05, momentum=0.5), ref_rmsprop),
]


@pytest.mark.parametrize("cls,kwargs,ref", CASES)
def test_ten_steps_match_the_reference(cls, kwargs, ref):
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=37)
    grads = [rng.normal(size=37) for _ in range(10)]
    opt, p = cls(**kwargs), p0.copy()
    for g in grads:
        before = g.copy()
        opt.step(p, g)
        assert np.array_equal(g, before)  # gradients are read, never written
    np.testing.assert_allclose(p, ref(p0, grads, **kwargs), rtol=1e-13, atol=1e-15)
    assert opt.t == 10 and opt.state.shape == (2, 37)


@pytest.mark.parametrize("cls,kwargs,ref", CASES)
def test_float32_follows_float64(cls, kwargs, ref):
    rng = np.random.default_rng(1)
    p0, grads = rng.normal(size=50), [rng.normal(size=50) for _ in range(10)]
    p32 = p0.astype(np.float32)
    opt = cls(**kwargs)
    for g in grads:
        opt.step(p32, g.astype(np.float32))
    assert opt.state.dtype == np.float32
    np.testing.assert_allclose(p32, ref(p0, grads, **kwargs), rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("cls,kwargs,ref", [
    (fastbp.Adam, dict(lr=0.5, betas=(0.9, 0.9999)), ref_adam),
    (fastbp.Adam, dict(lr=0.5, betas=(0.99999, 0.99999)), ref_adam),
    (fastbp.AdamW, dict(lr=0.5, betas=(0.9, 0.9999), weight_decay=0.3),
     lambda p, g, **k: ref_adam(p, g, decoupled=True, **k)),
    (fastbp.RMSprop, dict(lr=0.1, alpha=0.9999), ref_rmsprop),
])
def test_float32_rates_near_one_round_once_as_torch(cls, kwargs, ref):
    """1 - beta was taken in float32 from beta rounded to float32: 1 -
    float32(0.9999) is 1.7e-4 off, and Adam's steps drifted 1e-3 from the
    exact ones in 20 steps where torch's float32 stays within 3e-6."""
    rng = np.random.default_rng(3)
    p0, grads = rng.normal(size=40), [rng.normal(size=40) for _ in range(20)]
    p32, opt = p0.astype(np.float32), cls(**kwargs)
    for g in grads:
        opt.step(p32, g.astype(np.float32))
    np.testing.assert_allclose(p32, ref(p0, grads, **kwargs), rtol=2e-6, atol=2e-6)


def test_float32_sklearn_adam_near_one_follows_scikit_learns_on_float32():
    """scikit-learn's (1 - beta_2) * grad is a double rounded once to float32."""
    optimizers = pytest.importorskip("sklearn.neural_network._stochastic_optimizers")
    rng = np.random.default_rng(4)
    p0, grads = rng.normal(size=40), [rng.normal(size=40) for _ in range(20)]
    ours, theirs = p0.astype(np.float32), p0.astype(np.float32)
    opt = fastbp.optim.SklearnAdam(lr=0.5, betas=(0.9, 0.9999))
    ref = optimizers.AdamOptimizer([theirs], 0.5, 0.9, 0.9999, 1e-8)
    for g in grads:
        opt.step(ours, g.astype(np.float32))
        ref.update_params([theirs], [g.astype(np.float32)])
    assert theirs.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


def test_hand_worked_first_steps():
    # p = 1, g = 0.5, lr = 0.1
    p = np.array([1.0])
    fastbp.SGD(lr=0.1, momentum=0.9, weight_decay=0.2).step(p, np.array([0.5]))
    assert p[0] == pytest.approx(1 - 0.1 * (0.5 + 0.2 * 1))                # 0.93
    p = np.array([1.0])
    fastbp.Adam(lr=0.1).step(p, np.array([0.5]))
    # m_hat = g, v_hat = g^2: the first step is lr * g / (|g| + eps)
    assert p[0] == pytest.approx(1 - 0.1 * 0.5 / (0.5 + 1e-8), rel=1e-15)
    p = np.array([1.0])
    fastbp.AdamW(lr=0.1, weight_decay=0.5).step(p, np.array([0.5]))
    assert p[0] == pytest.approx(1 * (1 - 0.1 * 0.5) - 0.1 * 0.5 / (0.5 + 1e-8), rel=1e-15)
    p = np.array([1.0])
    fastbp.RMSprop(lr=0.1, alpha=0.99).step(p, np.array([0.5]))
    assert p[0] == pytest.approx(1 - 0.1 * 0.5 / (math.sqrt(0.01 * 0.25) + 1e-8), rel=1e-14)


def test_adam_trains_a_network():
    X, y = fastbp.datasets.load_digits()
    X = X[:400] / 16
    y = y[:400]
    net = fastbp.MLP([64, 32, 10], dtype="float64", seed=0)
    opt = fastbp.Adam(lr=0.01)
    start = net.loss(X, y)
    for _ in range(50):
        opt.step(net.params, net.gradient(X, y))
    assert net.loss(X, y) < start / 5


@pytest.mark.parametrize("make,message", [
    (lambda: fastbp.SGD(lr=0), "lr must be a positive finite number"),
    (lambda: fastbp.SGD(lr=0.1, momentum=1.0), r"momentum must be a number in \[0, 1\)"),
    (lambda: fastbp.SGD(lr=0.1, nesterov=True), "nesterov needs momentum > 0"),
    (lambda: fastbp.Adam(betas=(0.9,)), "betas must be two numbers"),
    (lambda: fastbp.Adam(betas=(0.9, 1.0)), "betas must be two numbers"),
    (lambda: fastbp.Adam(eps=-1), "eps must be a positive"),
    (lambda: fastbp.AdamW(weight_decay=-0.1), "weight_decay must be a finite number >= 0"),
    (lambda: fastbp.RMSprop(alpha=1.5), r"alpha must be a number in \[0, 1\)"),
])
def test_bad_hyper_parameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_step_rejects_mismatched_buffers_and_changes_nothing():
    opt = fastbp.Adam()
    p = np.ones(4)
    with pytest.raises(ValueError, match="1-D C-contiguous"):
        opt.step(p, np.ones(3))
    with pytest.raises(ValueError, match="1-D C-contiguous"):
        opt.step(p, np.ones(4, np.float32))
    with pytest.raises(TypeError, match="NumPy arrays"):
        opt.step([1.0], [1.0])
    assert opt.t == 0 and opt.state is None and np.array_equal(p, np.ones(4))
    opt.step(p, np.ones(4))
    with pytest.raises(ValueError, match="state is for 4 float64 parameters; got 5"):
        opt.step(np.ones(5), np.ones(5))
    assert opt.t == 1


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    p0, grads = rng.normal(size=20), [rng.normal(size=20) for _ in range(10)]
    pairs = [(fastbp.SGD(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
              lambda w: torch.optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
             (fastbp.Adam(lr=0.01, weight_decay=0.1), lambda w: torch.optim.Adam([w], lr=0.01, weight_decay=0.1)),
             (fastbp.AdamW(lr=0.01), lambda w: torch.optim.AdamW([w], lr=0.01)),
             (fastbp.RMSprop(lr=0.01, momentum=0.5), lambda w: torch.optim.RMSprop([w], lr=0.01, momentum=0.5))]
    for ours, make in pairs:
        p = p0.copy()
        w = torch.tensor(p0, requires_grad=True)
        theirs = make(w)
        for g in grads:
            ours.step(p, g)
            w.grad = torch.tensor(g)
            theirs.step()
        np.testing.assert_allclose(p, w.detach().numpy(), rtol=1e-12, atol=1e-14)


def test_step_refuses_read_only_params_and_changes_nothing():
    # (it failed to type the kernel's write, after the step count and the
    # state had moved: the next good step took t = 2's bias correction)
    opt = fastbp.Adam(lr=0.1)
    p, g = np.ones(4), np.array([1.0, -2.0, 3.0, 0.5])
    p.setflags(write=False)
    with pytest.raises(ValueError, match="params must be writable"):
        opt.step(p, g)
    assert opt.t == 0 and opt.state is None
    p, ref = np.ones(4), np.ones(4)
    opt.step(p, g)
    fastbp.Adam(lr=0.1).step(ref, g)
    assert np.array_equal(p, ref)
    np.testing.assert_allclose(p, 1 - 0.1 * np.sign(g), rtol=1e-7)  # Adam's first step: lr sign(g)


@pytest.mark.parametrize("make,values", [
    (lambda: fastbp.SGD(momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.1),
     dict(momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.1)),
    (lambda: fastbp.Adam(betas=(0.8, 0.99), eps=1e-6, weight_decay=0.2),
     dict(betas=(0.8, 0.99), eps=1e-6, weight_decay=0.2)),
    (lambda: fastbp.AdamW(), dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)),
    (lambda: fastbp.RMSprop(alpha=0.9, eps=1e-7, weight_decay=0.3, momentum=0.5),
     dict(alpha=0.9, eps=1e-7, weight_decay=0.3, momentum=0.5)),
])
def test_hyper_parameters_read_as_given_and_refuse_assignment(make, values):
    # Assigning one did nothing (opt.momentum = 0.9 trained without momentum);
    # torch's param groups take a change, fastbp's kernels read .hyper: refused.
    opt = make()
    for name, value in values.items():
        assert getattr(opt, name) == value and type(getattr(opt, name)) is type(value)
    hyper = opt.hyper.copy()
    for name in values:
        with pytest.raises(AttributeError, match=f"{type(opt).__name__}.{name} is fixed when the"
                                                 " optimizer is made"):
            setattr(opt, name, getattr(opt, name))
    assert np.array_equal(opt.hyper, hyper)
    opt.lr = 0.5   # lr alone changes between steps
    assert opt.lr == 0.5


@pytest.mark.parametrize("zero", [np.False_, 0j, np.array([0.0]), False, np.array([0.0, 0.0]),
                                  np.array([0.5, 0.5])])
def test_lr_setter_takes_only_a_real_zero(zero):
    """Review HAV: the setter's zero path (a schedule may anneal to 0) took
    anything equal to 0, np.False_, 0j or np.array([0.0]), as a learning
    rate of 0, where it refuses np.True_, 1j and np.array([0.5])."""
    opt = fastbp.SGD(lr=0.1)
    with pytest.raises(TypeError, match="lr must be a positive number; got"):
        opt.lr = zero
    assert opt.lr == 0.1
    for real in (0, 0.0, np.float32(0.0), np.int64(0)):
        opt.lr = real
        assert opt.lr == 0.0 and type(opt.lr) is float
        opt.lr = 0.1
