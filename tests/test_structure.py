"""Structural guarantees: no allocation per step, no compilation per shape."""
import numba
import numpy as np
import pytest
from numba.core.runtime import _nrt_python, rtsys

import fastbp
from fastbp import network, ops
from npref import loss_and_grad


@pytest.fixture
def nrt_stats():
    _nrt_python.memsys_enable_stats()
    yield lambda: rtsys.get_allocation_stats().alloc
    _nrt_python.memsys_disable_stats()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("reg", [{}, {"alpha": 1e-3, "dropout": 0.3}])
def test_training_steps_allocate_nothing(nrt_stats, dtype, shuffle, reg):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(1000, 5)), rng.integers(0, 3, size=1000)
    net = fastbp.MLP([5, 8, 6, 3], activation="relu", dtype=dtype, seed=0, **reg)
    for batch in (100, 10):  # warm up: compile, and allocate both workspaces
        net.fit(X, y, epochs=1, batch_size=batch, shuffle=shuffle, verbose=0)

    def allocations(batch):
        before = nrt_stats()
        net.fit(X, y, epochs=1, batch_size=batch, shuffle=shuffle, verbose=0)
        return nrt_stats() - before

    ten_steps, hundred_steps = allocations(100), allocations(10)
    assert ten_steps == hundred_steps
    # What remains is Numba boxing the call's array arguments, once per call.
    assert ten_steps <= 11


def test_train_step_kernel_allocates_nothing(nrt_stats):
    net = fastbp.MLP([4, 7, 2], output="identity", dtype="float64", seed=0)
    ws, grads = net.workspace(16), np.zeros_like(net.params)
    x, y = np.ones((16, 4)), np.zeros((16, 2))

    @numba.njit
    def many_steps(k, params, grads, ws, plan, x, y):
        for _ in range(k):
            fastbp.kernels.train_step(params, grads, ws, plan, x, y, fastbp.kernels.MSE, 0.01)

    many_steps(1, net.params, grads, ws, net.plan, x, y)
    counts = []
    for k in (10, 1000):
        before = nrt_stats()
        many_steps(k, net.params, grads, ws, net.plan, x, y)
        counts.append(nrt_stats() - before)
    assert counts[0] == counts[1]


def _signature_counts():
    dispatchers = {}
    for module in (network, ops):
        for name in dir(module):
            obj = getattr(module, name)
            if isinstance(obj, numba.core.registry.CPUDispatcher):
                dispatchers[f"{module.__name__}.{name}"] = len(obj.signatures)
    return dispatchers


def _exercise(net, n_classes):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, net.sizes[0]))
    y = rng.integers(0, n_classes, size=20)
    net.fit(X, y, epochs=2, batch_size=8, verbose=0)
    net.fit(X, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    net.predict(X)
    net.loss(X, y)
    net.gradient(X, y)
    net.numerical_gradient(X[:2], y[:2])


def test_new_depth_and_width_compile_nothing():
    _exercise(fastbp.MLP([3, 4, 2], activation="tanh", dtype="float32", seed=0), 2)
    before = _signature_counts()
    assert before["fastbp.network.epoch_sgd"] >= 1
    _exercise(fastbp.MLP([9, 17, 5, 11, 3], activation="tanh", dtype="float32", seed=1), 3)
    _exercise(fastbp.MLP([6, 30, 4], dtype="float32", seed=2), 4)
    assert _signature_counts() == before


def test_a_new_activation_compiles_once_then_any_shape_reuses_it():
    """The hidden activation, the loss and the optimizer are compile-time
    constants of the kernels a fit runs (fastbp._static): a new one compiles
    its own specialisation of them, once; then other depths and widths with
    it compile nothing; a network of mixed activations runs the general one."""
    _exercise(fastbp.MLP([3, 4, 2], activation="elu", dtype="float32", seed=0), 2)
    before = _signature_counts()
    _exercise(fastbp.MLP([7, 5, 9, 3], activation="elu", dtype="float32", seed=1), 3)
    assert _signature_counts() == before
    _exercise(fastbp.MLP([9, 17, 5, 11, 3], activation=["relu", "elu", "sigmoid"],
                         dtype="float32", seed=1), 3)
    mixed = _signature_counts()
    _exercise(fastbp.MLP([4, 6, 8, 2], activation=["sigmoid", "relu"], dtype="float32", seed=2), 2)
    assert _signature_counts() == mixed


# The kernels the model calls from Python. (Helpers they call inline may hold
# extra signatures for literal arguments when compiled afresh; those are
# compiled into these entry points once, whatever the network's shape.)
# (fit chooses its epoch kernel: plain SGD runs epoch_sgd; see test_compile.py.)
ENTRY_POINTS = ["epoch_sgd", "_predict", "_loss_sum", "_gradient", "_numerical_gradient"]
# Those that take the loss and the hidden activation as compile-time
# constants, and where their loss and hidden arguments are (the epoch kernel's
# last is whether the fit has an L2 term, static(NO_L2) here; _loss_sum's
# its outputs array).
STATIC_CODES = {"epoch_sgd", "_predict", "_loss_sum"}
LOSS_AT = {"epoch_sgd": 11, "_predict": 5, "_loss_sum": 5}
HIDDEN_AT = {"epoch_sgd": -2, "_predict": -1, "_loss_sum": -2}


def test_specialisations_depend_on_dtype_and_codes_only():
    for dtype in ("float32", "float64"):
        _exercise(fastbp.MLP([3, 4, 2], dtype=dtype, seed=0), 2)
        _exercise(fastbp.MLP([5, 2, 6, 3], activation="softplus", dtype=dtype, seed=0), 3)
        _exercise(fastbp.MLP([5, 7, 3], dtype=dtype, seed=0), 3)
    for name in ENTRY_POINTS:
        # Other tests in this process may have compiled the other input kinds
        # (sparse X, float targets of sigmoid/identity outputs) and other
        # codes: count the signatures of this test's kind, dense X and
        # softmax class labels, and its codes (cross-entropy; tanh, softplus;
        # no L2 term).
        x_at, y_at = XY_ARGS[name]
        signatures = [s for s in getattr(network, name).signatures
                      if _dense(s[x_at], transposed=name == "epoch_sgd")
                      and (y_at is None or (s[y_at].ndim == 1 and str(s[y_at].dtype) == "int64"))
                      and (name not in STATIC_CODES
                           or (str(s[HIDDEN_AT[name]]) in ("Literal[int](2)", "Literal[int](6)")
                               and str(s[LOSS_AT[name]]) == "Literal[int](0)"))
                      and (name != "epoch_sgd" or str(s[-1]) == f"Literal[int]({network.NO_L2})")]
        # tanh and softplus networks: one specialisation each per dtype where
        # the activation is a constant, one per dtype elsewhere
        assert len(signatures) == (4 if name in STATIC_CODES else 2), (name, signatures)
        assert {str(s[0].dtype) for s in signatures} == {"float32", "float64"}


def _dense(t, transposed):
    # Dense X as this test's kernels take it: the array, or for a fit's
    # epochs (X, flag), the flag saying at run time whether the first layer
    # is stored transposed (fastbp.train.dense_transposes). Other tests in
    # the process may have called the epoch with a plain dense X too.
    if transposed:
        return (isinstance(t, numba.types.BaseTuple) and len(t) == 2
                and isinstance(t[0], numba.types.Array))
    return isinstance(t, numba.types.Array)


# Positions of X and Y (None: no Y) in each entry point's arguments.
XY_ARGS = {"epoch_sgd": (5, 6), "_predict": (4, None), "_loss_sum": (3, 4), "_gradient": (5, 6),
           "_numerical_gradient": (4, 5)}


def test_public_kernels_check_their_arguments():
    # train_step's own messages; every public whole-network kernel's checks
    # (layout, shapes, aliasing, capacity) are in test_kernel_contract.py.
    net = fastbp.MLP([4, 3, 2], output="identity", dtype="float64", seed=0)
    grads, ws = np.zeros_like(net.params), net.workspace(8)
    x, y = np.ones((8, 4)), np.zeros((8, 2))
    step = fastbp.kernels.train_step
    before = net.params.copy()
    with pytest.raises(ValueError, match="capacity"):
        step(net.params, grads, ws, net.plan, np.ones((9, 4)), np.zeros((9, 2)), fastbp.kernels.MSE, 0.1)
    with pytest.raises(ValueError, match="columns"):
        step(net.params, grads, ws, net.plan, np.ones((8, 5)), y, fastbp.kernels.MSE, 0.1)
    with pytest.raises(ValueError, match="y must be"):
        step(net.params, grads, ws, net.plan, x, np.zeros((8, 3)), fastbp.kernels.MSE, 0.1)
    with pytest.raises(ValueError, match="params has the wrong length"):
        step(net.params[:-1], grads, ws, net.plan, x, y, fastbp.kernels.MSE, 0.1)
    with pytest.raises(ValueError, match="unknown loss code"):
        step(net.params, grads, ws, net.plan, x, y, 9, 0.1)
    bad_plan = net.plan.copy()
    bad_plan[0, 4] = 42
    bad_plan.setflags(write=False)
    with pytest.raises(ValueError, match="unknown activation code"):
        step(net.params, grads, ws, bad_plan, x, y, fastbp.kernels.MSE, 0.1)
    assert np.array_equal(net.params, before)
    step(net.params, grads, ws, net.plan, x, y, fastbp.kernels.MSE, 0.1)
    assert not np.array_equal(net.params, before)


def test_cache_goes_where_numba_cache_dir_says(tmp_path):
    """A fresh process with NUMBA_CACHE_DIR set writes the compiled kernels
    there (e.g. for a read-only install) and trains normally."""
    import os
    import subprocess
    import sys
    code = ("import numpy as np, fastbp; net = fastbp.MLP([2, 3, 2], seed=0);"
            "net.fit(np.ones((4, 2)), [0, 1, 0, 1], epochs=1, verbose=0); print('trained')")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), FASTBP_INSTALL_CACHE="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "trained" in out.stdout
    assert list(tmp_path.rglob("*.nbi")) and list(tmp_path.rglob("*.nbc"))


def test_full_batch_gradient_allocates_nothing(nrt_stats):
    """SimpleChains.jl's case: the gradient of a 24-8-2 net on 200 samples."""
    rng = np.random.default_rng(0)
    net = fastbp.MLP([24, 8, 2], output="identity", dtype="float64", seed=0)
    X, Y = rng.normal(size=(200, 24)), rng.normal(size=(200, 2))
    g, ws = np.empty_like(net.params), net.workspace(200)

    @numba.njit
    def many(k, grads, params, ws, plan, X, Y):
        for _ in range(k):
            fastbp.kernels.gradient(grads, grads, params, ws, plan, X, Y, fastbp.kernels.MSE)

    many(1, g, net.params, ws, net.plan, X, Y)
    counts = []
    for k in (10, 1000):
        before = nrt_stats()
        many(k, g, net.params, ws, net.plan, X, Y)
        counts.append(nrt_stats() - before)
    assert counts[0] == counts[1]
    # And it is the gradient: the NumPy reference's, not the model's own kernel again.
    _, expected = loss_and_grad(net.params, [24, 8, 2], ["tanh"], "mse", X, Y)
    np.testing.assert_allclose(g, expected, rtol=1e-10, atol=1e-14)


def test_train_epoch_kernel_checks_its_arguments():
    net = fastbp.MLP([3, 2], output="identity", dtype="float64", seed=0)
    ws, rng = net.workspace(4), np.zeros(1, np.uint64)
    X, Y, perm = np.ones((6, 3)), np.zeros((6, 2)), np.empty(6, np.int64)
    plain, adam = fastbp.SGD(lr=0.1), fastbp.Adam()
    grads, state = np.zeros_like(net.params), np.zeros((2, net.params.size))

    def epoch(X=X, Y=Y, perm=perm, batch=4, opt=plain, grads=grads, state=state, reg=np.zeros(2)):
        reg = reg.copy()
        reg.flags.writeable = False  # as a model's own (net._reg): the suite's one specialisation
        return fastbp.kernels.train_epoch(net.params, grads, state, ws, net.plan, X, Y, perm, rng,
                                          batch, True, fastbp.kernels.MSE, opt.code, opt.hyper, 0,
                                          reg, -1, False)[0]

    with pytest.raises(ValueError, match="perm"):
        epoch(perm=perm[:5])
    with pytest.raises(ValueError, match="Y and perm"):
        epoch(Y=Y[:5])
    with pytest.raises(ValueError, match="batch_size"):
        epoch(batch=0)
    with pytest.raises(ValueError, match="capacity"):
        epoch(batch=5)
    with pytest.raises(ValueError, match="state"):
        epoch(opt=adam, state=state[:, :3])
    with pytest.raises(ValueError, match="grads"):
        epoch(opt=adam, grads=grads[:0])
    with pytest.raises(ValueError, match="reg must hold"):
        epoch(reg=np.zeros(3))
    with pytest.raises(ValueError, match="alpha"):
        epoch(reg=np.array([-1.0, 0.0]))
    with pytest.raises(ValueError, match="without a mask"):  # the output layer has none
        epoch(reg=np.array([0.0, 0.5]))
    assert np.isfinite(epoch(grads=grads[:0], state=state[:, :0]))  # plain SGD needs neither
    assert np.isfinite(epoch(opt=adam))


def test_every_python_file_compiles_without_a_warning():
    """An invalid escape in a string (a regex without r) warns at compile
    time now and is an error in a later Python (review HGI found one in a
    test): every file of the repository compiles with warnings as errors."""
    import warnings
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    files = [p for folder in ("src", "tests", "examples", "asv_bench", "docs")
             for p in sorted((root / folder).rglob("*.py")) if "__pycache__" not in p.parts]
    assert len(files) > 50
    for path in files:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
