"""The public whole-network kernels' contract (see fastbp.kernels): arrays
they cannot handle are refused at entry with ValueError and nothing is
written; valid arrays give the NumPy reference's numbers."""
import numba
import numpy as np
import pytest

import fastbp
from fastbp import kernels as K

import npref

SIZES, ACTS = [4, 5, 3], ["tanh"]
N = 8  # rows of X
LR = 0.1


def _arrays():
    net = fastbp.MLP(SIZES, activation=ACTS[0], output="identity", dtype="float64", seed=0)
    rng = np.random.default_rng(1)
    sgd = fastbp.SGD(lr=LR)
    return dict(net=net, params=net.params.copy(), plan=net.plan, ws=net.workspace(N),
                X=rng.normal(size=(N, SIZES[0])), Y=rng.normal(size=(N, SIZES[-1])),
                grads=np.zeros(net.n_params), scratch=np.zeros(net.n_params),
                out=np.zeros((N, SIZES[-1])), state=np.zeros((2, net.n_params)),
                perm=np.arange(N, dtype=np.int64)[::-1].copy(), rng=np.zeros(2, np.uint64),
                reg=net._reg, code=sgd.code, hyper=sgd.hyper, batch=N, start=0, stop=N)


# Each public whole-network kernel, called with the arrays of a dict a.
CALLS = {
    "train_step": lambda a: K.train_step(a["params"], a["grads"], a["ws"], a["plan"], a["X"],
                                         a["Y"], K.MSE, LR),
    "train_epoch": lambda a: K.train_epoch(a["params"], a["grads"], a["state"], a["ws"], a["plan"],
                                           a["X"], a["Y"], a["perm"], a["rng"], a["batch"], False,
                                           K.MSE, a["code"], a["hyper"], 0, a["reg"], -1, False),
    "forward_batch": lambda a: K.forward_batch(a["params"], a["ws"], a["plan"], a["X"], K.MSE),
    "backward_batch": lambda a: K.backward_batch(a["grads"], a["params"], a["ws"], a["plan"],
                                                 a["X"], a["Y"], K.MSE),
    "backward_sgd_batch": lambda a: K.backward_sgd_batch(a["params"], a["ws"], a["plan"], a["X"],
                                                         a["Y"], K.MSE, LR),
    "predict": lambda a: K.predict(a["out"], a["params"], a["ws"], a["plan"], a["X"], K.MSE),
    "loss_value": lambda a: K.loss_value(a["params"], a["ws"], a["plan"], a["X"], a["Y"], K.MSE),
    "gradient": lambda a: K.gradient(a["grads"], a["scratch"], a["params"], a["ws"], a["plan"],
                                     a["X"], a["Y"], K.MSE),
    "numerical_gradient": lambda a: K.numerical_gradient(a["grads"], a["params"], a["ws"],
                                                         a["plan"], a["X"], a["Y"], K.MSE, 1e-6,
                                                         0.0),
    "shard_gradient": lambda a: K.shard_gradient(a["grads"], a["params"], a["ws"], a["plan"],
                                                 a["X"], a["Y"], a["perm"], a["start"], a["stop"],
                                                 0, K.MSE, a["reg"], a["rng"]),
}
TAKES_Y = set(CALLS) - {"forward_batch", "predict"}
# Kernels that chunk X by the workspace's capacity (any capacity >= 1 will do).
CHUNKING = {"predict", "loss_value", "gradient", "numerical_gradient"}


def _in(buf, shape):
    """A C-contiguous (shape) view at the start of the flat array buf."""
    return buf.reshape(-1)[:int(np.prod(shape))].reshape(shape)


def _aliased(name, a):
    """Change a so that one array the kernel writes overlaps another argument."""
    if name == "gradient":  # grads as scratch, with X longer than the capacity
        a["ws"], a["scratch"] = a["net"].workspace(3), a["grads"]
    elif name in ("train_step", "numerical_gradient"):
        a["grads"] = a["params"]
    elif name in ("backward_batch", "shard_gradient"):
        a["grads"] = a["ws"][:a["net"].n_params]
    elif name == "predict":  # out over X
        a["out"] = _in(a["X"], a["out"].shape)
    elif name == "backward_sgd_batch":  # y inside the params the step updates
        a["Y"] = _in(a["params"], a["Y"].shape)
    else:  # X inside the workspace
        a["X"] = _in(a["ws"], a["X"].shape)
        a["X"][:] = 1.0


def _plan_in_ws(name, a):
    """The plan as int64 words inside the workspace the kernel writes: only
    train_epoch and shard_gradient compared them, the others overwrote
    their own plan mid-call and died (segmentation fault, or a SIGFPE in
    gradient; add_penalty_gradient, below, rewrote it) (review HCW)."""
    plan = a["ws"][:a["plan"].size].view(np.int64).reshape(a["plan"].shape)
    plan[:] = a["plan"]
    a["plan"] = plan


def _small_ws(name, a):
    a["ws"] = a["net"].workspace(1)[:-1] if name in CHUNKING else a["net"].workspace(N - 1)


BAD = {
    "fortran_x": (lambda name, a: a.update(X=np.asfortranarray(a["X"])), "C-contiguous"),
    "column_sliced_x": (lambda name, a: a.update(X=np.hstack([a["X"], a["X"]])[:, :SIZES[0]]),
                        "C-contiguous"),
    "row_strided_x": (lambda name, a: a.update(X=np.repeat(a["X"], 2, axis=0)[::2]), "C-contiguous"),
    "forty_columns": (lambda name, a: a.update(X=np.ones((N, 40))), "columns"),
    "wrong_y": (lambda name, a: a.update(Y=np.zeros((N, SIZES[-1] + 1)), out=np.zeros((N, 2))),
                "y must be|out must be"),
    "y_rows": (lambda name, a: a.update(Y=np.zeros((N - 1, SIZES[-1])),
                                        out=np.zeros((N - 1, SIZES[-1]))),
               "y must be|Y and perm|out must be"),
    "aliased": (_aliased, "overlap"),
    "plan_in_ws": (_plan_in_ws, "overlap .*plan"),
    "small_workspace": (_small_ws, "capacity"),
    "short_params": (lambda name, a: a.update(params=a["params"][:-1]), "params has the wrong length"),
    # A hand-edited plan with an activation on the logits: the forward pass
    # applied it and backprop ignored it, a gradient off by 0.5 (review).
    "output_activation": (lambda name, a: a.update(plan=_with_output_act(a["plan"])),
                          "last row's activation must be IDENTITY"),
}


def _with_output_act(plan):
    plan = plan.copy()
    plan[-1, fastbp.layout.ACT] = K.TANH
    return plan


@pytest.mark.parametrize("bad", list(BAD))
@pytest.mark.parametrize("name", list(CALLS))
def test_public_kernels_refuse_what_they_cannot_handle(name, bad):
    if bad in ("wrong_y", "y_rows") and name == "forward_batch":
        pytest.skip("forward_batch takes no targets and no output array")
    a = _arrays()
    change, message = BAD[bad]
    change(name, a)
    before = {k: np.array(v, copy=True) for k, v in a.items() if isinstance(v, np.ndarray)}
    with pytest.raises(ValueError, match=message):
        CALLS[name](a)
    for k, v in before.items():  # nothing written
        np.testing.assert_array_equal(a[k], v, err_msg=k)


@pytest.mark.parametrize("name", list(CALLS))
def test_public_kernels_refuse_a_fortran_or_strided_workspace_and_params(name):
    for field, bad in (("ws", lambda a: a["net"].workspace(2 * N)[::2]),
                       ("params", lambda a: np.repeat(a["params"], 2)[::2])):
        a = _arrays()
        a[field] = bad(a)
        with pytest.raises(ValueError, match="C-contiguous"):
            CALLS[name](a)


def _reference(a, rows=slice(None)):
    return npref.loss_and_grad(a["params"], SIZES, ACTS, "mse", a["X"][rows], a["Y"][rows])


@pytest.mark.parametrize("name", list(CALLS))
def test_public_kernels_match_the_numpy_reference(name):
    a = _arrays()
    value, grad = _reference(a)
    logits = npref.forward(a["params"], SIZES, ACTS, a["X"])[0][-1]
    p0 = a["params"].copy()
    if name in ("backward_batch", "backward_sgd_batch"):
        K.forward_batch(a["params"], a["ws"], a["plan"], a["X"], K.MSE)
    if name == "gradient":
        a["ws"] = a["net"].workspace(3)  # chunks of 3, 3 and 2 rows
    result = CALLS[name](a)
    close = dict(rtol=1e-10, atol=1e-12)
    if name == "train_step":
        assert result == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(a["params"], p0 - LR * grad, **close)
    elif name == "train_epoch":
        mean, steps = result
        assert steps == 1 and mean == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(a["params"], npref.sgd_epoch(p0, SIZES, ACTS, "mse", a["X"],
                                                                a["Y"], N, LR), **close)
    elif name in ("forward_batch", "predict"):
        np.testing.assert_allclose(result if name == "forward_batch" else a["out"], logits, **close)
    elif name == "backward_batch":
        np.testing.assert_allclose(a["grads"], grad, **close)
    elif name == "backward_sgd_batch":
        np.testing.assert_allclose(a["params"], p0 - LR * grad, **close)
    elif name == "loss_value":
        assert result == pytest.approx(value, rel=1e-12)
    elif name == "gradient":
        assert result == pytest.approx(value, rel=1e-12)
        np.testing.assert_allclose(a["grads"], grad, **close)
    elif name == "numerical_gradient":
        np.testing.assert_allclose(a["grads"], grad, rtol=1e-6, atol=1e-8)
        np.testing.assert_array_equal(a["params"], p0)
    else:  # shard_gradient: the gradient *sum* over rows perm[start:stop]
        a["start"], a["stop"] = 2, 7
        rows = a["perm"][2:7]
        value, grad = _reference(a, rows)
        total = CALLS[name](a)
        assert total == pytest.approx(5 * value, rel=1e-12)
        np.testing.assert_allclose(a["grads"], 5 * grad, **close)


def test_shard_gradient_refuses_rows_outside_x():
    a = _arrays()
    a["perm"][3] = N  # one past the last row
    with pytest.raises(ValueError, match="row numbers of X"):
        CALLS["shard_gradient"](a)


def test_gradient_may_share_scratch_with_grads_when_x_fits_the_workspace():
    a = _arrays()
    a["scratch"] = a["grads"]  # unused: one chunk
    value = CALLS["gradient"](a)
    ref_value, ref_grad = _reference(a)
    assert value == pytest.approx(ref_value, rel=1e-12)
    np.testing.assert_allclose(a["grads"], ref_grad, rtol=1e-10, atol=1e-12)


def test_gemm_refuses_shapes_that_do_not_fit_and_strided_arrays():
    A, B, C = np.ones((3, 4)), np.ones((4, 5)), np.zeros((3, 5))
    K.gemm(C, A, B, False, False, 1.0, 0.0)
    np.testing.assert_array_equal(C, A @ B)
    # Each error names the array that is wrong (one message said "A, B and
    # C must be C-contiguous", another "do not fit C", whichever it was).
    with pytest.raises(ValueError, match="op.B. must have as many rows as op.A. has columns"):
        K.gemm(C, A, np.ones((40, 5)), False, False, 1.0, 0.0)
    with pytest.raises(ValueError, match="op.B. must have C's number of columns"):
        K.gemm(np.zeros((3, 6)), A, B, False, False, 1.0, 0.0)
    with pytest.raises(ValueError, match="op.A. must have C's number of rows"):
        K.gemm(np.zeros((2, 5)), A, B, False, False, 1.0, 0.0)
    with pytest.raises(ValueError, match="gemm: A must be C-contiguous"):
        K.gemm(C, np.asfortranarray(A), B, False, False, 1.0, 0.0)
    with pytest.raises(ValueError, match="gemm: B must be C-contiguous"):
        K.gemm(C, A, np.ones((4, 10))[:, :5], False, False, 1.0, 0.0)
    with pytest.raises(ValueError, match="gemm: C must be C-contiguous"):
        K.gemm(np.zeros((3, 10))[:, ::2], A, B, False, False, 1.0, 0.0)
    np.testing.assert_array_equal(C, A @ B)  # untouched by the refused calls


# ------------------------------------------ found in review (2026-12-05)
def _unchanged(a, names):
    return {k: a[k].copy() for k in names}


def test_train_epoch_shuffles_only_the_first_n_entries_of_a_longer_perm():
    # A perm longer than X is accepted (length >= n): its other entries were
    # shuffled into the epoch's order, training on the wrong rows, or past
    # the end of X (a crash) when they were not row numbers.
    a = _arrays()
    reference = dict(a, params=a["params"].copy(), perm=np.zeros(N, np.int64),
                     rng=np.array([3, 0], np.uint64))
    longer = dict(a, params=a["params"].copy(), perm=np.full(N + 4, 10 ** 12, np.int64),
                  rng=np.array([3, 0], np.uint64), batch=3)
    reference["batch"] = 3
    for args in (reference, longer):
        K.train_epoch(args["params"], args["grads"], args["state"], args["ws"], args["plan"],
                      args["X"], args["Y"], args["perm"], args["rng"], args["batch"], True, K.MSE,
                      args["code"], args["hyper"], 0, args["reg"], -1, False)
    assert sorted(longer["perm"][:N]) == list(range(N))
    np.testing.assert_array_equal(longer["perm"][:N], reference["perm"])
    np.testing.assert_array_equal(longer["perm"][N:], 10 ** 12)
    np.testing.assert_array_equal(longer["params"], reference["params"])


@pytest.mark.parametrize("name", ["hyper", "reg", "rng"])
def test_train_epoch_refuses_strided_hyper_reg_and_rng(name):
    a = _arrays()
    a[name] = np.repeat(a[name], 2)[::2]
    before = _unchanged(a, ["params", "rng", "perm"])
    with pytest.raises(ValueError, match="C-contiguous"):
        CALLS["train_epoch"](a)
    for k, v in before.items():
        np.testing.assert_array_equal(a[k], v)


@pytest.mark.parametrize("name", ["reg", "rng"])
def test_shard_gradient_refuses_a_strided_rng_or_reg(name):
    # A strided rng was read through a copy, so the dropout stream it holds
    # never advanced: the same masks on every call.
    a = _arrays()
    a[name] = np.repeat(a[name], 2)[::2]
    with pytest.raises(ValueError, match="C-contiguous"):
        CALLS["shard_gradient"](a)


@pytest.mark.parametrize("code", [-1, 6, 99])
def test_unknown_optimizer_codes_are_refused(code):
    # They ran as RMSprop.
    a = _arrays()
    a["code"] = code
    before = _unchanged(a, ["params", "state"])
    with pytest.raises(ValueError, match="optimizer's code"):
        CALLS["train_epoch"](a)
    for k, v in before.items():
        np.testing.assert_array_equal(a[k], v)
    with pytest.raises(ValueError, match="unknown optimizer code"):
        K.optimizer_step(a["params"], a["grads"] + 1.0, a["state"], a["hyper"], code, 1)
    for k, v in before.items():
        np.testing.assert_array_equal(a[k], v)


def test_numerical_gradient_refuses_a_too_small_eps_before_writing():
    # It wrote the gradient of the parameters before the first that eps
    # could not move, then raised.
    net = fastbp.MLP(SIZES, activation="tanh", output="identity", dtype="float32", seed=0)
    params = net.params.copy()
    params[10] = 8.0  # 8 +- 2e-7 rounds to 8 in float32; the first ten do move
    grads = np.full(net.n_params, -99.0, np.float32)
    ws = net.workspace(N)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(N, SIZES[0])).astype(np.float32)
    Y = rng.normal(size=(N, SIZES[-1])).astype(np.float32)
    kept = params.copy()
    with pytest.raises(ValueError, match="eps is too small"):
        K.numerical_gradient(grads, params, ws, net.plan, X, Y, K.MSE, 2e-7, 0.0)
    np.testing.assert_array_equal(grads, -99.0)
    np.testing.assert_array_equal(params, kept)


# -------------------------------- found in review (2026-12-05, session 33)
@pytest.mark.parametrize("make", [lambda shape: np.zeros(shape),   # NumPy 2: strides (0, 0)
                                  lambda shape: np.ones((3, shape[1]))[2:2]])
@pytest.mark.parametrize("name", list(CALLS))
def test_a_batch_of_no_rows(name, make):
    """forward_batch, backward_batch and backward_sgd_batch took X[2:2] but
    raised "gemm: ... must be C-contiguous" for np.zeros((0, k)), after
    backward_batch had written part of grads. Now every whole-network kernel
    but predict and shard_gradient refuses no rows before writing."""
    a = _arrays()
    a.update(X=make((0, SIZES[0])), Y=make((0, SIZES[-1])), out=make((0, SIZES[-1])), stop=0,
             perm=np.zeros(0, np.int64))
    a["grads"][:] = 7.0
    before = {k: np.array(v, copy=True) for k, v in a.items() if isinstance(v, np.ndarray)}
    if name == "predict":   # nothing to predict: nothing written
        CALLS[name](a)
    elif name == "shard_gradient":   # an empty shard adds nothing: a zero gradient
        CALLS[name](a)
        np.testing.assert_array_equal(a["grads"], 0.0)
        return
    else:
        with pytest.raises(ValueError, match="at least one row|number of samples must be >= 1"):
            CALLS[name](a)
    for k, v in before.items():
        np.testing.assert_array_equal(a[k], v, err_msg=k)


def test_gemm_of_empty_matrices_is_numpys():
    rng = np.random.default_rng(0)
    C = np.zeros((0, 4))
    K.gemm(C, np.zeros((0, 3)), rng.normal(size=(4, 3)), False, True, 1.0, 0.0)   # m = 0
    C = rng.normal(size=(4, 3))
    K.gemm(C, np.zeros((0, 4)), np.zeros((0, 3)), True, False, 1.0, 0.5)          # k = 0: C = beta C
    expected = C.copy()
    K.gemm(C, np.zeros((0, 4)), np.zeros((0, 3)), True, False, 1.0, 1.0)
    np.testing.assert_array_equal(C, expected)
    K.gemm(C, np.zeros((0, 4)), np.zeros((0, 3)), True, False, 1.0, 0.0)
    np.testing.assert_array_equal(C, np.zeros((0, 4)).T @ np.zeros((0, 3)))


@pytest.mark.parametrize("change,message", [
    (dict(grads=lambda a: a["grads"][:3]), "grads must have the length of params"),
    (dict(state=lambda a: a["state"][:, :3]), r"state must be \(2, params.size\)"),
    (dict(state=lambda a: np.zeros((0, 0))), r"state must be \(2, params.size\)"),
    # Review HAE: 3 rows (the docs say 2) ran, rows 0 and 1 used
    (dict(state=lambda a: np.zeros((3, a["params"].size))), r"state must be \(2, params.size\)"),
    (dict(hyper=lambda a: a["hyper"][:3]), "hyper must hold N_HYPER values"),
    (dict(t=lambda a: 0), "t, the number of this step, must be >= 1"),
])
@pytest.mark.parametrize("opt", ["adam", "momentum"])
def test_optimizer_step_checks_its_arrays(change, message, opt):
    """optimizer_step read past a short grads or hyper and wrote past a short
    state (memory outside the array), and t = 0 made every parameter NaN."""
    a = _arrays()
    optimizer = fastbp.Adam(lr=0.1) if opt == "adam" else fastbp.SGD(lr=0.1, momentum=0.9)
    args = dict(params=a["params"], grads=a["grads"] + 1.0, state=np.zeros((2, a["net"].n_params)),
                hyper=optimizer.hyper, t=1)
    for k, make in change.items():
        args[k] = make(args)
    before = {k: np.array(v, copy=True) for k, v in args.items() if isinstance(v, np.ndarray)}
    with pytest.raises(ValueError, match=message):
        K.optimizer_step(args["params"], args["grads"], args["state"], args["hyper"],
                         optimizer.code, args["t"])
    for k, v in before.items():
        np.testing.assert_array_equal(args[k], v, err_msg=k)
    if "grads" in change or "state" in change:
        with pytest.raises(ValueError, match=message):
            K.distributed_step(args["params"], args["grads"], args["state"], args["hyper"],
                               optimizer.code, 1, N, 0.0, a["plan"])
        for k, v in before.items():
            np.testing.assert_array_equal(args[k], v, err_msg=k)


def test_plain_sgd_takes_no_state():
    a = _arrays()
    expected = a["params"] - LR * (a["grads"] + 1.0)
    K.optimizer_step(a["params"], a["grads"] + 1.0, np.zeros((0, 0)), a["hyper"], a["code"], 1)
    np.testing.assert_allclose(a["params"], expected, rtol=1e-15)


@pytest.mark.parametrize("name", ["train_step", "predict", "loss_value"])
def test_a_list_for_x_fails_to_compile_with_a_message_naming_it(name):
    """A list or tuple crashed fastbp's own typing: AttributeError: 'List'
    object has no attribute 'layout'."""
    a = _arrays()
    a["X"] = a["X"].tolist()
    with pytest.raises(Exception, match="the kernels take NumPy arrays for x, y and X") as info:
        CALLS[name](a)
    assert not isinstance(info.value, AttributeError)


@pytest.mark.parametrize("name", ["train_step", "predict", "loss_value"])
def test_a_1d_x_fails_to_compile_with_a_message_naming_it(name):
    """One sample given as x[0] failed deep in fastbp's typing: "tuple index
    out of range", or a page of Numba's candidates for a 3-D x."""
    a = _arrays()
    x = a["X"]
    for wrong, ndim in ((x[0], 1), (x[:, :, None], 3)):
        a["X"] = wrong
        with pytest.raises(Exception, match=rf"x and X as 2-D arrays.*got a {ndim}-D array"):
            CALLS[name](a)


def test_a_3d_y_fails_to_compile_with_a_message_naming_it():
    a = _arrays()
    a["Y"] = a["Y"][:, :, None]
    with pytest.raises(Exception, match=r"y as a 1-D array of class labels or a 2-D array.*3-D"):
        CALLS["loss_value"](a)


def test_train_epoch_and_shard_gradient_take_2d_targets_of_any_dtype():
    """Targets of another dtype than the network's failed to compile in
    train_epoch and shard_gradient ("Can't unify return type"): the shuffled
    batch gathered them in the network's dtype, the consecutive one viewed
    them as they were. Both now take them in the network's dtype. (int64
    targets of a float64 network only: each pair of dtypes compiles
    train_epoch anew, 10-30 s on a cold cache, and every other pair takes
    the same path, the copy into the network's dtype.)"""
    net = fastbp.MLP(SIZES, activation="tanh", output="identity", dtype="float64", seed=0)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(N, SIZES[0]))
    Y = rng.integers(0, 2, size=(N, SIZES[-1]))
    as_net = Y.astype(np.float64)
    for shuffled in (False, True):
        results = []
        for targets in (Y, as_net):
            p, sgd = net.params.copy(), fastbp.SGD(lr=LR)
            loss = K.train_epoch(p, np.zeros(0), np.zeros((0, 0)), net.workspace(3), net.plan, X,
                                 targets, np.arange(N), np.array([7], np.uint64), 3, shuffled,
                                 K.MSE, sgd.code, sgd.hyper, 0, np.zeros(len(SIZES)), -1, False)
            results.append((loss, p))
        assert results[0][0] == results[1][0]
        np.testing.assert_array_equal(results[0][1], results[1][1])
    grads = [np.zeros(net.n_params) for _ in range(2)]
    for g, targets in zip(grads, (Y, as_net)):
        K.shard_gradient(g, net.params, net.workspace(N), net.plan, X, targets, np.arange(N), 0, N,
                         0, K.MSE, np.zeros(len(SIZES)), np.zeros(1, np.uint64))
    np.testing.assert_array_equal(grads[0], grads[1])
    # the batch kernels read the targets as they are: the same gradient, as
    # every dtype holds whole numbers exactly
    g = np.zeros(net.n_params)
    K.gradient(g, np.zeros_like(g), net.params, net.workspace(N), net.plan, X, Y, K.MSE)
    np.testing.assert_allclose(N * g, grads[0], rtol=1e-12)


def test_train_epoch_refuses_a_negative_t0_before_writing_anything():
    """t0 = -1 with Adam was refused at the first step, after the shuffle had
    moved rng and perm and the first batch's gradient was in grads and ws,
    by a message about "t", not an argument of train_epoch."""
    a = _arrays()
    adam = fastbp.Adam(lr=0.01)
    a.update(code=adam.code, hyper=adam.hyper, batch=3, rng=np.array([11, 2], np.uint64))
    before = {k: v.copy() for k, v in a.items() if isinstance(v, np.ndarray)}
    with pytest.raises(ValueError, match="t0, the number of optimizer steps .* must be >= 0"):
        K.train_epoch(a["params"], a["grads"], a["state"], a["ws"], a["plan"], a["X"], a["Y"],
                      a["perm"], a["rng"], a["batch"], True, K.MSE, a["code"], a["hyper"], -1,
                      a["reg"], -1, False)
    for k, v in before.items():
        np.testing.assert_array_equal(a[k], v, err_msg=k)


# One argument a kernel (each failed compile types the whole kernel: seconds
# each); every kernel calls the same guards (fastbp._static.same_*).
MIXED = {"train_step": "X", "train_epoch": "X", "predict": "ws", "backward_batch": "grads",
         "gradient": "scratch"}


@pytest.mark.parametrize("name,arg", MIXED.items())
def test_a_float_array_of_another_dtype_fails_to_compile_naming_it(name, arg):
    """A float32 x, ws or grads given with float64 params failed with pages of
    Numba's candidates for gemm_call, never saying which array."""
    a = _arrays()
    a[arg] = a[arg].astype(np.float32)
    shown = "x|X" if arg == "X" else arg
    before = a["params"].copy()
    with pytest.raises(Exception, match=rf"share one dtype.*params is float64 and ({shown}) float32"):
        CALLS[name](a)
    np.testing.assert_array_equal(a["params"], before)


@pytest.mark.parametrize("step", ["optimizer_step", "distributed_step"])
def test_optimizer_steps_refuse_mixed_dtypes_and_name_an_unknown_code_first(step):
    a = _arrays()
    adam = fastbp.Adam(lr=0.1)

    def call(grads, state, code):
        if step == "optimizer_step":
            return K.optimizer_step(a["params"], grads, state, adam.hyper, code, 1)
        return K.distributed_step(a["params"], grads, state, adam.hyper, code, 1, N, 0.0, a["plan"])
    n = a["net"].n_params
    before = a["params"].copy()
    with pytest.raises(Exception, match="params is float64 and grads float32"):
        call(np.ones(n, np.float32), np.zeros((2, n)), adam.code)   # (it ran in mixed precision)
    with pytest.raises(Exception, match="params is float64 and state float32"):
        call(np.ones(n), np.zeros((2, n), np.float32), adam.code)
    with pytest.raises(ValueError, match="unknown optimizer code"):   # (it blamed the state)
        call(np.ones(n), np.zeros((0, 0)), 99)
    np.testing.assert_array_equal(a["params"], before)


# Found in review (session 38). Each failing call types a kernel (seconds of
# compiling), so one call a guard.
def test_an_rng_not_uint64_is_refused_where_dropout_would_draw_from_it():
    # An int64 state ran: splitmix64's shifts were signed, and at rate 0.5
    # no unit was dropped while every one was scaled by 2 (rate 0.7 kept 61 %).
    a_ = np.ones((50, 40))
    mask = np.empty_like(a_)
    with pytest.raises(Exception, match=r"an rng is a uint64 array, a splitmix64 state .*got"
                                        r" array\(int64"):
        K.dropout_forward(a_, mask, 0.5, np.array([3]), 0)
    K.dropout_forward(a_, mask, 0.5, np.array([3], np.uint64), 0)
    assert 0.4 < (mask > 0).mean() < 0.6 and set(np.unique(mask)) == {0.0, 2.0}
    a = _arrays()
    a["rng"] = a["rng"].astype(np.int64)
    before = _unchanged(a, ["params", "perm"])
    with pytest.raises(Exception, match="an rng is a uint64 array"):
        CALLS["train_epoch"](a)
    for k, v in before.items():
        np.testing.assert_array_equal(a[k], v)


def test_a_one_dimensional_state_is_named():
    # np.zeros(0) for plain SGD's state failed with "tuple index out of range"
    a = _arrays()
    a["state"] = np.zeros(0)
    with pytest.raises(Exception, match=r"state must be an optimizer's state, a 2-D array"
                                        r" \(2, n_params\), or \(2, 0\) for plain SGD; got"
                                        r" array\(float64, 1d"):
        CALLS["train_epoch"](a)
    p = np.ones(4)
    with pytest.raises(Exception, match="optimizer step: state must be an optimizer's state"):
        K.optimizer_step(p, np.ones(4), np.zeros(8), fastbp.Adam().hyper, fastbp.Adam.code, 1)
    assert np.array_equal(p, np.ones(4))


def test_optimizer_step_takes_a_float64_hyper_as_it_says():
    """Review HCG: a float32 hyper was taken, its learning rate and betas
    rounded to float32, where the message and the docs say float64."""
    p = np.ones(4)
    hyper = fastbp.Adam(lr=0.1).hyper
    with pytest.raises(numba.core.errors.TypingError,
                       match=r"hyper must be an optimizer's hyper-parameters \(optimizer.hyper\),"
                             r" a 1-D float64 NumPy array; got array\(float32"):
        K.optimizer_step(p, np.ones(4), np.zeros((2, 4)), hyper.astype(np.float32),
                         fastbp.Adam.code, 1)
    assert np.array_equal(p, np.ones(4))
    net = fastbp.MLP([3, 2], dtype="float64", seed=0)   # (train_epoch's own check: review HCL)
    before = net.params.copy()
    X, Y = np.zeros((4, 3)), np.zeros((4, 2))
    with pytest.raises(numba.core.errors.TypingError,
                       match=r"hyper must be an optimizer's hyper-parameters \(optimizer.hyper\),"
                             r" a 1-D float64 NumPy array; got array\(float32") as refused:
        K.train_epoch(net.params, net.params[:0], np.zeros((2, 0)), net.workspace(4), net.plan,
                      X, Y, np.empty(4, np.int64), net._rng, 4, False, net._loss_code,
                      fastbp.SGD.code, fastbp.SGD().hyper.astype(np.float32), 0, net._reg, -1,
                      False)
    assert "optimizer_step" not in str(refused.value)   # (its own check, not one buried below)
    assert np.array_equal(net.params, before)
    K.optimizer_step(p, np.ones(4), np.zeros((2, 4)), hyper, fastbp.Adam.code, 1)
    np.testing.assert_allclose(p, 1 - 0.1 / (1 + 1e-8), rtol=1e-15)   # (Adam's first step)


@pytest.mark.parametrize("dtype", [np.int64, np.int8, np.uint8, np.bool_])
def test_predict_refuses_an_out_that_is_not_float(dtype):
    """Review HAE: an integer or bool out took the softmax's probabilities
    truncated (0.65 and 0.35 written as 0 and 0), with no error."""
    net = fastbp.MLP([3, 4, 2], seed=0)
    X = np.random.default_rng(0).normal(size=(5, 3)).astype(net.dtype)
    out = np.zeros((5, 2), dtype=dtype)
    with pytest.raises(numba.core.errors.TypingError,
                       match=r"out must be a 2-D float32 or float64 NumPy array"):
        K.predict(out, net.params, net.workspace(5), net.plan, X, K.CROSS_ENTROPY)
    assert not out.any()
    for floats in (np.float32, np.float64):   # (a float32 out rounds a float64 net's: allowed)
        right = np.zeros((5, 2), dtype=floats)
        K.predict(right, net.params, net.workspace(5), net.plan, X, K.CROSS_ENTROPY)
        np.testing.assert_allclose(right, net.predict_proba(X), rtol=1e-6)


@pytest.mark.parametrize("change,says", [
    (lambda a: a.update(plan=a["plan"].astype(np.int32)),
     r"plan must be a network's layout plan \(net.plan\), a 2-D int64 array; got array\(int32"),
    (lambda a: a.update(params=a["params"].tolist()),
     r"params must be a 1-D float32 or float64 NumPy array \(net.params\); got reflected list"),
])
def test_a_list_or_an_int32_plan_is_named(change, says):
    # (the docs promise a message for lists: x, y and X had one; these
    # failed deep in Numba's typing, "No match" in capacity_of)
    a = _arrays()
    change(a)
    with pytest.raises(Exception, match=says):
        CALLS["loss_value"](a)


@pytest.mark.parametrize("call, says", [
    (lambda a: K.train_step(a["params"], list(a["grads"]), a["ws"], a["plan"], a["X"], a["Y"],
                            K.MSE, LR), "grads must be a NumPy array"),
    (lambda a: K.gradient(a["grads"], tuple(a["scratch"]), a["params"], a["ws"], a["plan"],
                          a["X"], a["Y"], K.MSE), "scratch must be a NumPy array"),
    (lambda a: K.predict(a["out"].tolist(), a["params"], a["ws"], a["plan"], a["X"], K.MSE),
     r"out must be a 2-D float32 or float64 NumPy array"),
    (lambda a: K.optimizer_step(a["params"].tolist(), a["grads"], a["state"], a["hyper"],
                                a["code"], 1), r"params must be a 1-D float32 or float64 NumPy"),
    (lambda a: K.optimizer_step(a["params"], tuple(a["grads"]), a["state"], a["hyper"],
                                a["code"], 1), "grads must be a NumPy array"),
])
def test_lists_fail_to_compile_with_a_message_naming_them(call, says):
    """Review FI: the module's promise ("fail to compile, with a message
    saying so") held for some arguments; grads, scratch, out and an
    optimizer step's params and grads failed deep in Numba ("Unknown
    attribute 'flags' of type reflected list")."""
    a = _arrays()
    before = _unchanged(a, ["params"])
    with pytest.raises(Exception, match=says):
        call(a)
    np.testing.assert_array_equal(a["params"], before["params"])


def test_train_epoch_names_an_empty_x_as_the_other_kernels_do():
    a = _arrays()
    a["X"], a["Y"] = a["X"][:0], a["Y"][:0]
    with pytest.raises(ValueError, match="^X must have at least one row$"):
        CALLS["train_epoch"](a)
    a = _arrays()
    a["batch"] = 0
    with pytest.raises(ValueError, match="^batch_size must be >= 1$"):
        CALLS["train_epoch"](a)


# -------------------------------- found in review (2026-12-07, session 47)
def _int64(v):
    v %= 2**64
    return v - 2**64 if v >= 2**63 else v


def test_a_plan_whose_offsets_add_up_only_modulo_2_64_is_refused():
    """Review HAO: a hand-made plan of widths 1, 2**32, 2**63 - 2**32, 1 has
    int64 offsets that wrap to one parameter and a 6-float workspace row: it
    passed every entry check, and predict, train_step and loss_value died of a
    division by zero (SIGFPE). Widths are bounded first now."""
    sizes = [1, 2**32, 2**63 - 2**32, 1]
    rows, w, units = [], 0, 0
    for l in range(3):
        n_in, n_out = sizes[l], sizes[l + 1]
        rows.append([n_in, n_out, _int64(w), _int64(w + n_in * n_out),
                     K.TANH if l < 2 else K.IDENTITY, _int64(units), -1])
        w += n_in * n_out + n_out
        units += n_in
    plan = np.array(rows, dtype=np.int64)
    params, grads, ws = np.zeros(1), np.zeros(1), np.zeros(6)
    x, y, out = np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1))
    for call in (lambda: K.predict(out, params, ws, plan, x, K.MSE),
                 lambda: K.train_step(params, grads, ws, plan, x, y, K.MSE, 0.1),
                 lambda: K.loss_value(params, ws, plan, x, y, K.MSE)):
        with pytest.raises(ValueError, match="its offsets do not add up"):
            call()
    assert params[0] == 0 and out[0, 0] == 0


def _guarded(n, fill=7.0, guard=64):
    big = np.full(n + 2 * guard, fill)
    return big, big[guard:guard + n]


def test_the_plan_accessors_and_the_l2_kernels_refuse_a_plan_past_their_buffers():
    """Review HAO: add_penalty_gradient and distributed_step (alpha > 0) with
    a plan whose layer 1 sits 20 parameters further wrote 17 values past
    grads; weight with n_in = 2**40 and mask with a mask offset of 2**40 gave
    views past the buffer (reading them segfaulted). Each checks the plan
    now; with the model's own plan each does what it did."""
    from fastbp.layout import M_OFF, N_IN, N_OUT, W_OFF
    net = fastbp.MLP([5, 7, 3], output="identity", dtype="float64", seed=0)
    P = net.n_params
    moved = np.array(net.plan)
    moved[1, W_OFF] += 20
    big_g, grads = _guarded(P)
    big_p, params = _guarded(P)
    params[:] = net.params
    grads[:] = 1.0
    with pytest.raises(ValueError, match="its offsets do not add up"):
        K.add_penalty_gradient(grads, params, moved, 0.5)
    opt = fastbp.Adam()
    with pytest.raises(ValueError, match="its offsets do not add up"):
        K.distributed_step(params, grads, np.zeros((2, P)), np.array(opt.hyper), opt.code, 1, 4,
                           0.5, moved)
    assert (big_g[:64] == 7.0).all() and (big_g[64 + P:] == 7.0).all() and (grads == 1.0).all()
    assert (big_p[64 + P:] == 7.0).all()
    # the model's own plan: grads_W += c W, biases untouched (NumPy's reference)
    K.add_penalty_gradient(grads, params, net.plan, 0.5)
    ref = np.ones(P)
    for l in range(2):
        o, n = net.plan[l, W_OFF], net.plan[l, N_IN] * net.plan[l, N_OUT]
        ref[o:o + n] += 0.5 * params[o:o + n]
    np.testing.assert_array_equal(grads, ref)
    wide = np.array(net.plan)
    wide[0, N_IN] = 2**40
    with pytest.raises(ValueError, match="its offsets do not add up"):
        K.weight(net.params, wide, 0)
    with pytest.raises(ValueError, match="its offsets do not add up"):
        K.bias(net.params, wide, 0)
    np.testing.assert_array_equal(K.weight(net.params, net.plan, 1), net.weights[1])
    np.testing.assert_array_equal(K.bias(net.params, net.plan, 1), net.biases[1])
    dropped = fastbp.MLP([5, 7, 3], dtype="float64", seed=0, dropout=0.5)
    far = np.array(dropped.plan)
    far[0, M_OFF] = 2**40
    ws = dropped.workspace(2)
    with pytest.raises(ValueError, match="its offsets do not add up"):
        K.mask(ws, far, 0, 2)
    assert K.mask(ws, dropped.plan, 0, 2).shape == (2, 7)
    # (review HAT) a workspace too small for one sample of this plan: a mask of
    # no rows, and one row refused for the capacity, not the plan
    wide = fastbp.MLP([3, 40, 2], dtype="float64", seed=0, dropout=0.2)
    small = fastbp.MLP([3, 4, 2], dtype="float64", seed=0).workspace(1)
    assert K.capacity(small, wide.plan) == 0 and small.size < 40
    assert K.mask(small, wide.plan, 0, 0).shape == (0, 40)
    with pytest.raises(ValueError, match="nb exceeds the workspace's capacity"):
        K.mask(small, wide.plan, 0, 1)
    # (review HGA) a workspace of n rows has capacity n, its masks, the mask
    # region counted, lie inside it, and one row more is refused
    for rates in ([0.5, 0.0], [0.5, 0.3], [0.0, 0.3]):
        masked = fastbp.MLP([5, 7, 4, 3], dtype="float64", seed=0, dropout=rates)
        for n in (1, 8, 33):
            ws = masked.workspace(n)
            assert K.capacity(ws, masked.plan) == n
            for l in (l for l in range(2) if rates[l] > 0):
                m = K.mask(ws, masked.plan, l, n)
                assert m.shape == (n, masked.sizes[l + 1])
                start = m.ctypes.data - ws.ctypes.data  # (both C-contiguous)
                assert 0 <= start and start + m.nbytes <= ws.nbytes
                with pytest.raises(ValueError, match="nb exceeds the workspace's capacity"):
                    K.mask(ws, masked.plan, l, n + 1)
    # and penalty (review HAT): it summed whatever a plan past params pointed at
    expected = sum(float(np.sum(W.astype(np.float64) ** 2)) for W in net.weights)
    assert K.penalty(net.params, net.plan) == pytest.approx(expected, rel=1e-15)
    far_w = np.array(net.plan)
    far_w[1, W_OFF] = 10**12
    with pytest.raises(ValueError, match="its offsets do not add up"):
        K.penalty(net.params, far_w)


def test_numerical_gradient_refuses_a_2d_grads_at_compile_time():
    """Review HAO: a (1, n_params) grads passed the size check and each
    grads[i] = ... wrote a whole row, 72 of 90 guard values past it
    overwritten ('double free or corruption' for a plain (1, P) array)."""
    net = fastbp.MLP([2, 2, 1], output="identity", dtype="float64", seed=0)
    P = net.n_params
    big = np.full(P + P * P + 2 * P, 7.0)
    grads = big[:P].reshape(1, P)
    X, Y = np.zeros((3, 2)), np.zeros((3, 1))
    with pytest.raises(numba.core.errors.TypingError, match="grads must be a 1-D"):
        K.numerical_gradient(grads, net.params.copy(), net.workspace(3), net.plan, X, Y, K.MSE,
                             1e-6, 0.0)
    assert (big == 7.0).all()


# -------------------------------- found in review (2026-12-07, session 49: HBK)
@numba.njit
def _predict_into_a_transposed_row(params, ws, plan, X, loss):
    row = np.full((1, X.shape[0]), -99.0)   # predictions kept as one row
    K.predict(row.T, params, ws, plan, X, loss)   # (n, 1): C-contiguous, typed 'F'
    return row


@numba.njit
def _predict_one_row_into_a_transposed_column(params, ws, plan, x):
    column = np.full((3, 1), -99.0, np.float32)
    K.predict(column.T, params, ws, plan, x, K.MSE)   # (1, 3), typed 'F'
    return column


def test_predict_from_numba_writes_into_an_out_typed_fortran():
    """An out Numba types 'F' but C-contiguous at run time (a row's .T, or a
    column's .T for one sample) passed predict's check, then the outputs went
    into a copy (Numba's np.ascontiguousarray copies an 'F' array) and out
    kept its values, silently."""
    rng = np.random.default_rng(0)
    net = fastbp.MLP([2, 3, 1], output="identity", dtype="float64", seed=0)
    X = rng.normal(size=(5, 2))
    got = _predict_into_a_transposed_row(net.params, net.workspace(4), net.plan, X, K.MSE)
    logits = npref.forward(net.params, net.sizes, net.activations, X)[0][-1]
    np.testing.assert_allclose(got[0], logits[:, 0], rtol=1e-12)
    net3 = fastbp.MLP([2, 3, 3], output="identity", dtype="float32", seed=0)
    x = X[:1].astype(np.float32)
    got = _predict_one_row_into_a_transposed_column(net3.params, net3.workspace(1), net3.plan, x)
    np.testing.assert_allclose(got[:, 0], net3.predict(x)[0], rtol=1e-6)


@numba.njit
def _steps_on_a_transposed_row(k, params, grads, ws, plan, t_row, y):
    for _ in range(k):
        K.train_step(params, grads, ws, plan, t_row.T, y, K.MSE, 0.01)


def test_a_training_step_on_an_x_typed_fortran_allocates_nothing():
    """x = row.T, (nb, 1), typed 'F': every step copied it (1006 allocations
    for 1000 steps), where a step allocates nothing. The same updates as on
    a C array."""
    from numba.core.runtime import _nrt_python, rtsys
    net = fastbp.MLP([1, 8, 1], output="identity", dtype="float64", seed=0)
    t_row = np.linspace(-1, 1, 16).reshape(1, 16)
    y = np.sin(3 * t_row).reshape(16, 1)
    args = (np.zeros(net.n_params), net.workspace(16), net.plan, t_row, y)
    params = net.params.copy()
    _steps_on_a_transposed_row(3, params, *args)
    reference = net.params.copy()
    for _ in range(3):
        K.train_step(reference, np.zeros(net.n_params), net.workspace(16), net.plan,
                     np.ascontiguousarray(t_row.T), y, K.MSE, 0.01)
    np.testing.assert_array_equal(params, reference)
    _nrt_python.memsys_enable_stats()
    try:
        counts = []
        for k in (10, 1000):
            before = rtsys.get_allocation_stats().alloc
            _steps_on_a_transposed_row(k, params, *args)
            counts.append(rtsys.get_allocation_stats().alloc - before)
    finally:
        _nrt_python.memsys_disable_stats()
    assert counts[0] == counts[1]


@numba.njit
def _first_weight_sum_of_a_view(params, plan):
    return K.weight(params[::1], plan, 0).sum() + K.bias(params[::1], plan, 0).sum()


def test_the_plan_accessors_take_a_contiguous_view_and_name_a_strided_buffer():
    """weight and bias failed to compile ("No implementation of function
    <intrinsic layer_weight>") for params[::1] inside @njit, which every
    other kernel takes; a strided params or ws got the same, where the others
    say "must be C-contiguous"."""
    net = fastbp.MLP([3, 4, 2], output="identity", dtype="float64", seed=0, dropout=0.2)
    assert _first_weight_sum_of_a_view(net.params, net.plan) == pytest.approx(
        net.weights[0].sum() + net.biases[0].sum(), rel=1e-12)
    strided = np.zeros(2 * net.n_params)[::2]
    for call in (lambda: K.weight(strided, net.plan, 0), lambda: K.bias(strided, net.plan, 0)):
        with pytest.raises(ValueError, match="params must be C-contiguous"):
            call()
    with pytest.raises(ValueError, match="ws must be C-contiguous"):
        K.mask(np.zeros(2 * net.workspace(2).size)[::2], net.plan, 0, 1)


def test_numerical_gradient_names_the_data_not_eps_when_the_loss_is_not_finite_at_params():
    """A NaN in X (finite params, eps 1e-6) was blamed on eps ("try a smaller
    eps"); grads stays as it was."""
    net = fastbp.MLP([3, 4, 2], output="identity", dtype="float64", seed=0)
    X, Y = np.ones((5, 3)), np.zeros((5, 2))
    X[2, 1] = np.nan
    grads = np.full(net.n_params, -99.0)
    with pytest.raises(ValueError, match="the loss at params is not finite: X or Y holds a NaN"):
        K.numerical_gradient(grads, net.params, net.workspace(5), net.plan, X, Y, K.MSE, 1e-6,
                             0.0)
    np.testing.assert_array_equal(grads, -99.0)


def test_train_epoch_refuses_a_perm_sharing_the_plans_memory_before_writing():
    """perm over plan's first row: the shuffle rewrote the plan after its
    check, and the epoch failed in gemm (or read past a buffer)."""
    net = fastbp.MLP([3, 4, 2], output="identity", dtype="float64", seed=0)
    n = 6
    buf = np.zeros(net.plan.size + n, np.int64)
    plan = buf[:net.plan.size].reshape(net.plan.shape)
    plan[:] = net.plan
    params = net.params.copy()
    sgd = fastbp.SGD(lr=0.1)
    with pytest.raises(ValueError, match="must not overlap .* or plan"):
        K.train_epoch(params, np.zeros(0), np.zeros((2, 0)), net.workspace(n), plan,
                      np.ones((n, 3)), np.zeros((n, 2)), buf[:n], np.zeros(1, np.uint64), n,
                      True, K.MSE, sgd.code, sgd.hyper, 0, np.zeros(3), -1, False)
    np.testing.assert_array_equal(plan, net.plan)
    np.testing.assert_array_equal(params, net.params)


def test_distributed_step_refuses_a_plan_inside_what_it_writes():
    """With alpha > 0 distributed_step reads the plan for the L2 term: the
    plan inside grads was rewritten by the division before it (a
    segmentation fault on [8, 8, 8, 8, 2]; review HCZ)."""
    net = fastbp.MLP([8, 8, 8, 8, 2], output="identity", dtype="float64", seed=0)
    sgd = fastbp.SGD(lr=0.1)
    for where in ("grads", "params", "state"):
        arrays = dict(params=net.params.copy(), grads=np.ones(net.n_params),
                      state=np.zeros((2, net.n_params)))
        buf = arrays[where].reshape(-1)
        plan = buf[:net.plan.size].view(np.int64).reshape(net.plan.shape)
        plan[:] = net.plan
        before = {k: v.copy() for k, v in arrays.items()}
        with pytest.raises(ValueError, match="must not overlap plan"):
            K.distributed_step(arrays["params"], arrays["grads"], arrays["state"], sgd.hyper,
                               sgd.code, 1, 1, 0.5, plan)
        for k, v in before.items():
            np.testing.assert_array_equal(arrays[k], v, err_msg=where)


def test_add_penalty_gradient_refuses_a_plan_inside_grads():
    """grads over the plan's words: the L2 term was added into the plan
    itself, silently (review HCW)."""
    net = fastbp.MLP([3, 4, 2], output="identity", dtype="float64", seed=0)
    grads = np.zeros(net.n_params)
    plan = grads[:net.plan.size].view(np.int64).reshape(net.plan.shape)
    plan[:] = net.plan
    with pytest.raises(ValueError, match="grads must not overlap plan"):
        K.add_penalty_gradient(grads, net.params, plan, 0.5)
    np.testing.assert_array_equal(plan, net.plan)
