"""Bad input at the public boundary: a clear error, and the model unchanged."""

import warnings

import numpy as np
import pytest

import fastbp

BAD_CONSTRUCTOR = [
    (dict(sizes=[4]), ValueError, "sizes must list at least"),
    (dict(sizes=[]), ValueError, "sizes must list at least"),
    (dict(sizes=5), TypeError, "sizes must be a sequence"),
    (dict(sizes=[4, 0, 3]), ValueError, r"sizes\[1\] must be an integer width >= 1; got 0"),
    (dict(sizes=[4, -2, 3]), ValueError, r"sizes\[1\] .* got -2"),
    (dict(sizes=[4, 2.5, 3]), TypeError, r"sizes\[1\] must be an integer"),
    (dict(sizes=[4, True, 3]), TypeError, r"sizes\[1\]"),
    (dict(sizes=[4, "8", 3]), TypeError, r"sizes\[1\]"),
    # OverflowError from the layout ("Python int too large to convert to C long")
    (dict(sizes=[3, 10 ** 20, 2]), ValueError, "more than an array can hold"),
    (dict(sizes=[3, 2 ** 62, 2]), ValueError, "more than an array can hold"),
    (dict(sizes=[4, 3], output="softmax2"), ValueError, "output must be one of .*'softmax2'"),
    (dict(sizes=[4, 5, 3], activation="gelu"), ValueError, "activation must be one of .*'gelu'"),
    (dict(sizes=[4, 5, 3], activation=["relu", "tanh"]), ValueError,
     r"one activation per hidden layer \(1\); got 2"),
    (dict(sizes=[4, 5, 3], activation=3), TypeError, "activation must be a name"),
    (dict(sizes=[4, 3], loss="hinge"), ValueError, "loss must be one of .*'hinge'"),
    (dict(sizes=[4, 3], loss="mse"), ValueError, "loss 'mse' does not pair with output 'softmax'"),
    (dict(sizes=[4, 3], output="sigmoid", loss="cross_entropy"), ValueError, "does not pair"),
    (dict(sizes=[4, 1]), ValueError, "softmax output needs sizes.-1. >= 2"),
    # (the kernels hold labels in the network's dtype: 2**24 + 1 read as 2**24)
    (dict(sizes=[4, 2 ** 24 + 1]), ValueError,
     r"a float32 softmax output holds at most 2\*\*24 = 16777216 classes.*got sizes\[-1\] ="
     r" 16777217: use dtype='float64'"),
    (dict(sizes=[4, 3], dtype="float16"), ValueError, "dtype must be 'float32' or 'float64'; got 'float16'"),
    (dict(sizes=[4, 3], dtype="int"), ValueError, "dtype must be"),
    (dict(sizes=[4, 3], seed=-1), ValueError, "seed must be an integer >= 0; got -1"),
    (dict(sizes=[4, 3], seed=1.5), TypeError, "seed must be an integer"),
    (dict(sizes=[4, 3], init="zeros"), ValueError, "init must be one of"),
    (dict(sizes=[4, 3], dropout=0.5), ValueError,
     r"dropout applies to hidden layers, and this network has none .*; got dropout=0.5, expected 0"),
    (dict(sizes=[4, 3], dropout=np.float32(0.25)), ValueError, "dropout applies to hidden layers"),
    (dict(sizes=[4, 3], dropout=[0.5]), ValueError, r"one rate per hidden layer \(0\); got 1"),
    (dict(sizes=[4, 3], dtype="Float16"), ValueError, "dtype must be 'float32' or 'float64'; got 'Float16'"),
    # review GF: np.dtype(None) is float64: MLP(dtype=None) made a float64 model
    (dict(sizes=[4, 3], dtype=None), ValueError, "dtype must be 'float32' or 'float64'; got None"),
]


@pytest.mark.parametrize("kwargs,exc,message", BAD_CONSTRUCTOR)
def test_constructor_rejects_bad_arguments(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        fastbp.MLP(**kwargs)


def test_accepted_spellings():
    assert fastbp.MLP([3, 2], dtype=np.float64).dtype == np.float64
    assert fastbp.MLP(np.array([3, 4, 2]), seed=np.int64(3)).sizes == (3, 4, 2)
    assert fastbp.MLP([3, 2], activation=[]).activations == ()  # no hidden layer
    assert fastbp.MLP([3, 2], output="sigmoid").loss_name == "binary_cross_entropy"
    # (review HIJ) dtype names in any case; a float32 softmax of exactly 2**24
    # classes, its bound (checked before any array is made)
    assert fastbp.MLP([3, 2], dtype="Float32").dtype == np.float32
    assert fastbp.MLP([3, 2], dtype="FLOAT64").dtype == np.float64
    from fastbp import _args
    _args.architecture([1, 2 ** 24], "tanh", "softmax", None, "float32", None, "auto", 0.0, 0.0)
    assert fastbp.MLP([3, 2], output="identity", loss="huber").loss_name == "huber"
    for no_dropout in (0, 0.0, [], ()):  # no hidden layer, no dropout: fine
        assert fastbp.MLP([3, 2], dropout=no_dropout).dropout == ()
    assert fastbp.MLP([3, 4, 2], dropout=0.5).dropout == (0.5,)


X_OK = np.arange(12.0).reshape(4, 3) / 10
Y_OK = np.array([0, 1, 2, 1])
NAN_X = X_OK.copy()
NAN_X[2, 1] = np.nan

BAD_DATA = [
    (dict(X=X_OK[0]), ValueError, r"X must be 2-D \(n_samples, n_features\); got a 1-D array of shape \(3,\);"
     r" for one sample of the network's 3 features use X\.reshape\(1, -1\)$"),
    (dict(X=X_OK[None]), ValueError, "X must be 2-D .* 3-D"),
    (dict(X=np.ones((4, 5))), ValueError, r"X has 5 features per sample, but the network expects sizes\[0\] = 3"),
    (dict(X=np.ones((0, 3)), y=np.array([], dtype=int)), ValueError, "X is empty"),
    (dict(X=NAN_X), ValueError, r"X must be finite; found nan at index \(2, 1\)"),
    (dict(X=np.full((4, 3), np.inf)), ValueError, "X must be finite; found inf"),
    (dict(X=np.full((4, 3), 1e300)), ValueError, "after conversion to float32"),
    (dict(X=X_OK.astype(complex)), TypeError, "X must hold numbers .* complex128"),
    (dict(X=np.array([["a", "b", "c"]] * 4)), TypeError, "X must hold numbers"),
    (dict(X=np.array([["a", "b", "c"]] * 4, dtype=object)), TypeError,  # pandas' text
     r"X must hold numbers \(bool, int or float\); got 'a' at index \(0, 0\) \(row 0\)"),
    # A number first, then text: the message spoke of "text labels", named
    # the valid 0.5 as the culprit, at a flat index; a None said only
    # "dtype object". (review, 2026-12-05)
    (dict(X=np.array([[0.5, 2.0, 3.0], [1.0, "7", 2.0], [0, 0, 0], [1, 1, 1]], dtype=object)),
     TypeError, r"X must hold numbers \(bool, int or float\); got '7' at index \(1, 1\) \(row 1\)"),
    (dict(X=np.array([[0.5, 2.0, 3.0], [1.0, None, 2.0], [0, 0, 0], [1, 1, 1]], dtype=object)),
     TypeError, r"got None at index \(1, 1\) \(row 1\)"),
    (dict(X="data.csv"), TypeError, "X must be a numeric array; got a str"),
    (dict(X=[[1, 2, 3], [4, 5]]), ValueError, "X could not be read as an array"),
    (dict(y=Y_OK[:3]), ValueError, "X and y must have the same number of samples: X has 4, y has 3 rows"),
    (dict(y=np.array([0, 1, 3, 1])), ValueError, r"y holds class labels outside 0..2 .* found 3"),
    (dict(y=np.array([0, -1, 2, 1])), ValueError, "outside 0..2 .* found -1"),
    (dict(y=np.array([0, 1e300, 2, 1])), ValueError, r"outside 0..2 .* found 1e\+300$"),  # not wrapped
    (dict(y=np.array([0, 1.5, 2, 1])), ValueError, "y must hold integer class labels 0..2; found 1.5"),
    (dict(y=np.array([0, np.nan, 2, 1])), ValueError, "y must be finite class labels"),
    (dict(y=np.eye(3)[Y_OK]), ValueError, "y must be 1-D integer class labels for a softmax output; got shape"),
    # (it said "y must hold numbers", not why: no classes_ yet; review, 2026-12-05)
    (dict(y=np.array(["a", "b", "c", "a"])), TypeError,
     "y holds text labels, but this model has no classes_ yet: fit it on such labels first"),
    (dict(y=3), ValueError, "y has a scalar"),
    (dict(y=None), TypeError, "y is None; this call needs the targets y, one per row of X$"),
    (dict(y=np.array([np.nan, "a", "b", "a"], dtype=object)), TypeError,  # pandas' missing label
     "y mixes text labels with other values: nan at index 0 among labels such as 'a'"),
]


def _snapshot(net):
    return net.params.copy(), net._rng.copy()


def _unchanged(net, snap):
    return np.array_equal(net.params, snap[0]) and np.array_equal(net._rng, snap[1])


ENTRIES = ["fit", "loss", "gradient", "numerical_gradient", "predict"]


@pytest.mark.parametrize("entry,bad,exc,message", [
    (entry, *case) for entry in ENTRIES for case in BAD_DATA
    if not (entry == "predict" and "X" not in case[0])  # predict takes no y
    # fit learns classes_ from text labels (test_preprocessing.py); the others
    # take text only once the model has classes_.
    and not (entry == "fit" and np.asarray(case[0].get("y", 0)).dtype.kind == "U")] + [
    ("fit", dict(y=np.array(["a", "b", "a", "b"])), ValueError,
     r"y holds 2 distinct labels \['a', 'b'\], but the network has 3 classes")])
def test_bad_data_is_rejected_at_every_entry(entry, bad, exc, message):
    net = fastbp.MLP([3, 4, 3], seed=0)
    snap = _snapshot(net)
    X, y = bad.get("X", X_OK), bad.get("y", Y_OK)
    call = {"fit": lambda: net.fit(X, y, verbose=0),
            "loss": lambda: net.loss(X, y),
            "gradient": lambda: net.gradient(X, y),
            "numerical_gradient": lambda: net.numerical_gradient(X, y),
            "predict": lambda: net.predict(X)}[entry]
    with pytest.raises(exc, match=message):
        call()
    assert _unchanged(net, snap)


@pytest.mark.parametrize("output,y,message", [
    ("sigmoid", np.array([0, 1, 2, 1]), r"0/1 targets .* sigmoid output; found 2"),
    ("sigmoid", np.array([0, 1, -0.5, 1]), "found -0.5"),
    ("sigmoid", np.ones((4, 2)), r"y must have shape \(n_samples, 1\) or \(n_samples,\); got shape \(4, 2\)"),
    ("identity", np.array([0, 1, np.inf, 1]), "y must be finite; found inf at index"),
    ("identity", np.ones(4), None),
])
def test_bad_targets_for_sigmoid_and_identity(output, y, message):
    net = fastbp.MLP([3, 1], output=output, seed=0)
    if message is None:  # 1-D targets for one output are fine: the same as one column
        start = net.params.copy()
        net.fit(X_OK, y, verbose=0)
        column = fastbp.MLP([3, 1], output=output, seed=0)
        column.fit(X_OK, y.reshape(-1, 1), verbose=0)
        assert not np.array_equal(net.params, start)
        np.testing.assert_array_equal(net.params, column.params)
        return
    snap = _snapshot(net)
    with pytest.raises(ValueError, match=message):
        net.fit(X_OK, y, verbose=0)
    assert _unchanged(net, snap)


def test_two_outputs_need_two_target_columns():
    net = fastbp.MLP([3, 2], output="identity", seed=0)
    with pytest.raises(ValueError, match=r"y must have shape \(n_samples, 2\) for 2 outputs; got shape \(4,\)"):
        net.fit(X_OK, np.ones(4), verbose=0)


BAD_FIT_ARGS = [
    (dict(epochs=-1), ValueError, "epochs must be an integer >= 0; got -1"),
    (dict(epochs=2.0), TypeError, "epochs must be an integer"),
    (dict(batch_size=0), ValueError, "batch_size must be an integer >= 1; got 0"),
    (dict(batch_size=-3), ValueError, "batch_size must be an integer >= 1"),
    (dict(batch_size=None), TypeError, "batch_size must be an integer"),
    (dict(lr=0), ValueError, "lr must be a positive finite number; got 0"),
    (dict(lr=-0.1), ValueError, "lr must be a positive finite number; got -0.1"),
    (dict(lr=float("nan")), ValueError, "lr must be a positive finite number; got nan"),
    (dict(lr=float("inf")), ValueError, "lr must be a positive finite number; got inf"),
    (dict(lr="0.1"), TypeError, "lr must be a positive number; got '0.1'"),
    (dict(shuffle="yes"), TypeError, "shuffle must be True or False"),
    (dict(seed=-5), ValueError, "seed must be an integer >= 0"),
    (dict(verbose=-1), ValueError, "verbose must be 0 .*; got -1"),
    (dict(verbose=3), ValueError, "verbose must be 0 .*; got 3"),
    (dict(optimizer="lbfgs", lr=0.1), ValueError,
     r"L-BFGS takes no learning rate \(its line search chooses each step\); got lr=0.1"),
    (dict(optimizer=fastbp.LBFGS(), lr=0.5), ValueError, "L-BFGS takes no learning rate"),
]


@pytest.mark.parametrize("kwargs,exc,message", BAD_FIT_ARGS)
def test_fit_rejects_bad_arguments_and_changes_nothing(kwargs, exc, message):
    net = fastbp.MLP([3, 4, 3], seed=0)
    snap = _snapshot(net)
    args = dict(epochs=1, verbose=0) | kwargs
    with pytest.raises(exc, match=message):
        net.fit(X_OK, Y_OK, **args)
    assert _unchanged(net, snap)


def test_bad_eps_and_predict_proba_on_regression():
    net = fastbp.MLP([3, 2], output="identity", seed=0)
    with pytest.raises(ValueError, match="eps must be a positive finite number; got 0"):
        net.numerical_gradient(X_OK, np.ones((4, 2)), eps=0.0)
    with pytest.raises(ValueError, match="predict_proba needs a softmax or sigmoid output"):
        net.predict_proba(X_OK)
    with pytest.raises(ValueError, match="rows must be an integer >= 1"):
        net.workspace(0)


def test_int_fortran_and_strided_inputs_are_accepted():
    rng = np.random.default_rng(0)
    Xc = rng.normal(size=(30, 3))
    y = rng.integers(0, 3, size=30)
    net = fastbp.MLP([3, 5, 3], dtype="float64", seed=0)
    expected = net.forward(Xc)
    np.testing.assert_array_equal(net.forward(np.asfortranarray(Xc)), expected)
    wide = np.zeros((30, 6))
    wide[:, ::2] = Xc
    np.testing.assert_array_equal(net.forward(wide[:, ::2]), expected)
    np.testing.assert_array_equal(net.forward(Xc[::-1])[::-1], expected)
    Xi = rng.integers(-3, 3, size=(30, 3))
    np.testing.assert_array_equal(net.forward(Xi), net.forward(Xi.astype(float)))
    readonly = Xc.copy()
    readonly.setflags(write=False)
    np.testing.assert_array_equal(net.forward(readonly), expected)
    assert net.loss(Xc.tolist(), y.astype(np.int8)) == net.loss(Xc, y)
    assert net.loss(Xc, y.astype(float)) == net.loss(Xc, y)
    g = net.gradient(np.asfortranarray(Xc), y)
    np.testing.assert_array_equal(g, net.gradient(Xc, y))
    net.fit(wide[:, ::2], y, epochs=2, verbose=0)
    contiguous = fastbp.MLP([3, 5, 3], dtype="float64", seed=0)
    contiguous.fit(Xc, y, epochs=2, verbose=0)
    np.testing.assert_array_equal(net.params, contiguous.params)


def test_a_right_typed_array_is_used_as_it_is_and_still_checked():
    """The inference fast path: a C-contiguous, writable array of the model's
    dtype goes to the kernels itself (no conversion, no copy); anything that
    is not finite is still refused with the worded error."""
    from fastbp._validate import check_X
    X = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    assert check_X(X, 4, np.float32) is X
    # Not the fast path: other dtype, strided, read-only: converted or copied.
    assert check_X(X, 4, np.float64) is not X
    assert check_X(np.asfortranarray(X[:, :]).T.T, 4, np.float32) is not X
    frozen = X.copy()
    frozen.setflags(write=False)
    assert check_X(frozen, 4, np.float32) is not frozen
    for bad in (np.nan, np.inf, -np.inf):
        Y = X.copy()
        Y[2, 1] = bad
        with pytest.raises(ValueError, match=r"X must be finite; found .* at index \(2, 1\)"):
            check_X(Y, 4, np.float32)
    net = fastbp.MLP([4, 5, 3], dtype="float32", seed=0)
    Y = X.copy()
    Y[0, 0] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        net.predict(Y)
    np.testing.assert_array_equal(net.predict_proba(X), net.predict_proba(X.astype(np.float64)))


# ------------------------------------------------ the finiteness check
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_large_finite_inputs_pass_every_boundary_without_a_warning(dtype):
    # A sum of large finite values overflows (and NumPy warns): the check must
    # not take that for a non-finite value, nor warn, on the fast paths
    # (an array of the model's dtype, one row or many) or the converted one.
    net = fastbp.MLP([4, 3, 2], dtype=dtype, seed=0)
    big = np.finfo(dtype).max / 2
    X = np.full((5, 4), big, dtype)
    X[:, 1] = -big
    y = np.array([0, 1, 0, 1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for x in (X, X[:1], X.tolist()):
            net.predict_proba(x)   # the products may overflow in the kernel: no warning there either
            net.predict(x)
        net.gradient(X, y)
        net.loss(X, y)


@pytest.mark.parametrize("rows", [1, 7, 40000])   # one chunk, and several (SCAN elements each)
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_the_finiteness_check_finds_every_kind_anywhere(rows, value):
    from fastbp._validate import SCAN, all_finite
    X = np.ones((rows, 4), np.float32)
    assert all_finite(X)
    for r, c in [(0, 0), (rows - 1, 3), (rows // 2, 1)]:
        bad = X.copy()
        bad[r, c] = value
        assert not all_finite(bad)
        net = fastbp.MLP([4, 3, 2], dtype="float32", seed=0)
        with pytest.raises(ValueError, match=rf"X must be finite; found {value} at index \({r}, {c}\)"):
            net.predict(bad)
    assert (rows * 4 > SCAN) == (rows == 40000)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_large_array_whose_sum_overflows_counts_as_finite(dtype):
    from fastbp._validate import SCAN, all_finite
    X = np.full((2 * SCAN // 4 + 3, 4), np.finfo(dtype).max / 4, dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="ignore"):
            assert not np.isfinite(X.sum())   # the one-pass check alone would say no
        assert all_finite(X)
        X[-1, 2] = np.nan
        assert not all_finite(X)
        net = fastbp.MLP([4, 3, 2], dtype=dtype, seed=0)
        with pytest.raises(ValueError, match=rf"X must be finite; found nan at index \({X.shape[0] - 1}, 2\)"):
            net.predict(X)


# ------------------------------------------------ found in review (2026-12-05, session 34)
def _trained(seed=0):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    net = fastbp.MLP([3, 4, 2], seed=seed, dtype="float64")
    net.fit(X, y, epochs=2, verbose=0, optimizer="adam")
    return net, X, y


def test_a_shallow_copy_is_a_model_of_its_own():
    """copy.copy shared the optimizer, history, metadata and schedule: training
    the copy moved the original's Adam state and history, and its next fit
    then differed from an untouched twin's."""
    import copy
    a, X, y = _trained()
    b, _, _ = _trained()
    c = copy.copy(a)
    assert c.optimizer is not a.optimizer and c.history is not a.history
    assert c.metadata is not a.metadata
    c.fit(X, y, epochs=3, verbose=0)
    assert a.optimizer.t == b.optimizer.t and len(a.history) == len(b.history) == 2
    a.fit(X, y, epochs=1, verbose=0, shuffle=False)
    b.fit(X, y, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("name,value", [("sizes", (3, 5, 2)), ("activations", ("relu",)),
                                        ("output", "sigmoid"), ("loss_name", "mae"),
                                        ("dtype", np.dtype("float32")), ("seed", 3),
                                        ("init", "he")])
def test_the_architecture_cannot_be_reassigned(name, value):
    """Plain attributes: assigned, the kernels computed the old network while
    repr and save described the new one (a file that loaded as another
    network, or was refused as corrupt)."""
    net, X, _ = _trained()
    before, text = net.forward(X), repr(net)
    with pytest.raises(AttributeError):
        setattr(net, name, value)
    assert repr(net) == text
    np.testing.assert_array_equal(net.forward(X), before)


@pytest.mark.parametrize("how", ["deepcopy", "copy", "pickle"])
def test_a_copied_models_optimizer_is_its_own(how):
    """A copy's optimizer (deepcopy, copy, pickle) belongs to the copy: another
    model's fit or setter refuses it, as the original's (it was taken, and
    the two models then shared one Adam state and step count)."""
    import copy
    import pickle
    a, X, y = _trained()
    a.fit(X, y, epochs=2, optimizer="adam", verbose=0)
    b = {"deepcopy": copy.deepcopy, "copy": copy.copy,
         "pickle": lambda m: pickle.loads(pickle.dumps(m))}[how](a)
    c, _, _ = _trained(seed=1)
    t = b.optimizer.t
    with pytest.raises(ValueError, match="holds the state of another model's training"):
        c.fit(X, y, optimizer=b.optimizer, verbose=0)
    with pytest.raises(ValueError, match="holds the state of another model's training"):
        c.optimizer = b.optimizer
    assert b.optimizer.t == t and c.optimizer is not b.optimizer
    b.fit(X, y, epochs=1, verbose=0)   # the copy trains on with its own
    assert b.optimizer.t > t


def test_the_optimizer_is_set_as_fit_takes_it():
    # net.optimizer = "adam" failed later inside fit (AttributeError on a
    # str); b.optimizer = a.optimizer shared one optimizer's state, which
    # fit's optimizer= refuses.
    a, X, y = _trained()
    b, _, _ = _trained(seed=1)
    with pytest.raises(TypeError, match="optimizer must be None or a fastbp optimizer"):
        b.optimizer = "adam"
    with pytest.raises(ValueError, match="holds the state of another model's training"):
        b.optimizer = a.optimizer
    with pytest.raises(ValueError, match="state is for 26 float64 parameters; got 38"):
        fastbp.MLP([3, 6, 2], dtype="float64").optimizer = _sized_adam(26)
    twin = fastbp.MLP([3, 4, 2], seed=1, dtype="float64")
    twin.fit(X, y, epochs=2, verbose=0, optimizer="adam")
    mine = fastbp.RMSprop(lr=0.01)
    b.optimizer = mine
    assert b.optimizer is mine
    b.fit(X, y, epochs=1, verbose=0, shuffle=False)
    twin.fit(X, y, epochs=1, verbose=0, shuffle=False, optimizer=fastbp.RMSprop(lr=0.01))
    np.testing.assert_array_equal(b.params, twin.params)
    b.optimizer = None
    assert b.optimizer is None


def _sized_adam(n):
    opt = fastbp.Adam()
    opt.ensure_state(np.zeros(n))
    return opt


def test_an_activation_is_checked_without_hidden_layers():
    # [activation] * 0 left the name unread: a typo in a linear model passed.
    with pytest.raises(ValueError, match="activation must be one of .*'bogus'"):
        fastbp.MLP([3, 2], activation="bogus")
    fastbp.MLP([3, 2], activation="relu")  # a valid name: no hidden layer to use it, as before


def test_bytes_labels_read_as_utf8_text():
    # Non-ASCII bytes raised NumPy's UnicodeDecodeError, naming no argument.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = np.array(["é".encode(), b"a", b"b"])[np.arange(30) % 3]
    net = fastbp.MLP([3, 4, 3], seed=0)
    net.fit(X, y, epochs=1, verbose=0)
    assert net.classes_.tolist() == ["a", "b", "é"]
    bad = np.array([b"\xff", b"a", b"b"])[np.arange(30) % 3]
    with pytest.raises(ValueError, match=r"y holds bytes labels, read as UTF-8 text, and b'\\xff'"):
        fastbp.MLP([3, 4, 3], seed=0).fit(X, bad, epochs=1, verbose=0)


def test_class_weight_takes_true_and_false_for_a_bool_y():
    """{True: 3.0} was refused ('not classes of this model ... [0, 1]') though
    the labels are as y holds them; scikit-learn takes it for a bool y. The
    reference: the same weights given per row."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), np.arange(20) % 3 == 0
    a, b = (fastbp.MLP([3, 4, 1], output="sigmoid", seed=0, dtype="float64") for _ in range(2))
    a.fit(X, y, epochs=2, verbose=0, class_weight={True: 3.0})
    b.fit(X, y, epochs=2, verbose=0, sample_weight=np.where(y, 3.0, 1.0))
    np.testing.assert_array_equal(a.params, b.params)


def test_text_labels_for_several_sigmoid_outputs_say_what_they_take():
    """The message told the user to fit on text labels first (this was that
    fit) or to set classes_ (refused for several sigmoid outputs)."""
    X = np.random.default_rng(0).normal(size=(6, 2))
    net = fastbp.MLP([2, 3, 3], output="sigmoid", seed=0)
    before = net.params.copy()
    text = np.array(["a", "b", "c"] * 2)
    for call in (lambda: net.fit(X, text, verbose=0), lambda: net.loss(X, text),
                 lambda: net.evaluate(X, text)):
        with pytest.raises(TypeError, match=r"this model's 3 sigmoid outputs take 0/1 targets,"
                                            r" one column per output \(y of shape \(n, 3\)\);"
                                            " text labels need a softmax output or a single"):
            call()
    np.testing.assert_array_equal(net.params, before)
    with pytest.raises(ValueError, match="classes_ applies to a softmax output or a single sigmoid"):
        net.classes_ = ["a", "b", "c"]  # what the message no longer suggests


def test_labels_mixing_str_and_bytes_read_as_text():
    """An object array of str and bytes labels was refused as mixing "text and
    numbers"; a list of them read as text (NumPy decodes the bytes). Both
    read as text now, the bytes decoded as UTF-8, as all-bytes labels are."""
    X = np.random.default_rng(0).normal(size=(6, 2))
    names = ["a", b"b", "\u00e9", "a", "\u00e9".encode(), b"b"]
    want = fastbp.MLP([2, 3, 3], seed=0)
    want.fit(X, np.array(["a", "b", "\u00e9"] * 2)[[0, 1, 2, 0, 2, 1]], epochs=2, verbose=0)
    for y in (np.array(names, dtype=object), names):
        net = fastbp.MLP([2, 3, 3], seed=0)
        net.fit(X, y, epochs=2, verbose=0)
        assert net.classes_.tolist() == ["a", "b", "\u00e9"]
        np.testing.assert_array_equal(net.params, want.params)
    with pytest.raises(ValueError, match=r"holds bytes labels, read as UTF-8 text, and b'\\xff'"):
        fastbp.MLP([2, 3, 3], seed=0).fit(X, np.array(names[:5] + [b"\xff"], dtype=object))


def test_a_tensor_that_requires_grad_is_named_as_x():
    torch = pytest.importorskip("torch")
    net = fastbp.MLP([2, 3, 2], seed=0)
    with pytest.raises(ValueError, match="X could not be read as an array: Can't call numpy"):
        net.predict(torch.ones(3, 2, requires_grad=True))
    labels = torch.tensor([0.0, 1.0] * 4, requires_grad=True)   # (as labels too)
    with pytest.raises(ValueError, match="y could not be read as an array.*Can't call numpy"):
        net.fit(np.zeros((8, 2)), labels, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="y could not be read as an array.*Can't call numpy"):
        net.loss(np.zeros((8, 2)), labels)


def test_found_in_review_EH_state_changed_during_a_fit(tmp_path, monkeypatch):
    """Review EH (session 41) of the refusals added that day, and of the
    wider class of model state changed while a fit runs."""
    import functools
    import warnings
    from fastbp import _preprocess, model
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.arange(40) % 2

    # 1. A float32 plain-SGD fit's flag outlived it: a later L-BFGS fit
    # refused a callback's alpha, with a message about plain SGD.
    net = fastbp.MLP([3, 4, 2], seed=0)
    net.fit(X, y, epochs=1, verbose=0)

    class SetAlpha:
        def on_epoch_end(self, epoch, logs):
            net.alpha = 1e-2
    net.fit(X, y, epochs=2, optimizer="lbfgs", verbose=0, callbacks=[SetAlpha()])
    assert net.alpha == 1e-2

    # 2. A dropout model holding L-BFGS (an older fastbp saved such files)
    # loads; fit refuses to continue it, by name.
    drop = fastbp.MLP([3, 4, 2], dropout=0.2, seed=0)
    drop._set_optimizer(fastbp.LBFGS(), loading=True)
    drop.save(tmp_path / "d.npz")
    back = fastbp.load(tmp_path / "d.npz")
    assert isinstance(back.optimizer, fastbp.LBFGS)
    with pytest.raises(ValueError, match="cannot train with dropout"):
        back.fit(X, y, verbose=0)

    # 3. standardize checked for a fit only as it began: a fit claiming the
    # model while it computed (0.25 s on a large X) trained unscaled rows,
    # then the model answered scaled. (The claim, as a fit takes it, is made
    # inside the computation here.)
    fresh = fastbp.MLP([3, 4, 2], seed=0)
    claim = fresh._workspaces.training(on_claim=functools.partial(model._claimed_by_a_fit, fresh))
    real = _preprocess.mean_std

    def claimed_meanwhile(*args, **kwargs):
        claim.__enter__()
        return real(*args, **kwargs)
    monkeypatch.setattr(_preprocess, "mean_std", claimed_meanwhile)
    try:
        with pytest.raises(RuntimeError, match=r"net.standardize\(\) cannot change the scaling"):
            fresh.standardize(X)
    finally:
        claim.__exit__(None, None, None)
        monkeypatch.setattr(_preprocess, "mean_std", real)
    assert fresh.input_mean is None

    # 4. A divergence rolled back into the epoch before replayed it with the
    # alpha a callback set after it: a state the model never passed through.
    def run(change):
        one = fastbp.MLP([1, 1], output="identity", dtype="float64", seed=1)
        one.params[:] = [0.5, 0.0]

        class CB:
            def on_epoch_end(self, epoch, logs):
                if epoch == 0:
                    one.optimizer.lr = 1e80       # epoch 1's second update explodes
                if epoch == 1 and change:
                    one.alpha = 10.0              # set after epoch 1 trained with alpha 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            one.fit(np.ones((4, 1)), np.zeros(4), epochs=4, batch_size=2, lr=0.01, shuffle=False,
                    verbose=0, callbacks=[CB()], on_divergence="stop")
        return one
    # by hand: w after epoch 0 (two steps of lr 0.01 on (w + b - 0)^2 / 2 ...),
    # then epoch 1's first update, w - 1e80 * 2 * (w + b): the state kept
    plain, changed = run(False), run(True)
    np.testing.assert_array_equal(changed.params, plain.params)
    assert plain.params[0] == pytest.approx(-9.216e79, rel=1e-3)
    # (and keeps, as it does the lr, the alpha set since, for the next fit: review EI)
    assert changed.alpha == 10.0 and changed.optimizer.lr == plain.optimizer.lr == 1e80

    # 5. L-BFGS's lr set by a callback was ignored and recorded in the history.
    lb = fastbp.LBFGS()
    with pytest.raises(ValueError, match="L-BFGS takes no learning rate"):
        lb.lr = 1e-6
    lb.lr = 1.0
    assert lb.lr == 1.0

    # 6. A float32 model's target scaling beyond float32: every prediction inf.
    reg = fastbp.MLP([2, 3, 1], output="identity", seed=0)
    with pytest.raises(ValueError, match="target mean 1e\\+39 is beyond what float32 holds"):
        reg.set_target_scaling(1e39, 1.0)
    assert reg.target_mean is None
    fastbp.MLP([2, 3, 1], output="identity", dtype="float64").set_target_scaling(1e39, 1.0)


def test_numbers_past_int64_and_fractions_are_read_as_floats_or_refused_by_name():
    """Review FG: ints past int64 and Fractions (numbers.Real both) failed
    inside np.isfinite with a TypeError naming no argument, and 10**400
    inside math.isfinite with a bare OverflowError."""
    from fractions import Fraction
    from fastbp import schedules
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((12, 3)), np.arange(12) % 3
    taken = [
        (lambda: fastbp.SGD(lr=10**30).lr, 1e30),
        (lambda: fastbp.Adam(eps=Fraction(1, 10**8)).hyper[fastbp.optim.EPS], 1e-8),
        (lambda: fastbp.MLP([3, 3], alpha=10**30).alpha, 1e30),
        (lambda: schedules.ExponentialDecay(Fraction(1, 2)).gamma, 0.5),
        (lambda: fastbp.EarlyStopping(min_delta=Fraction(1, 4)).min_delta, 0.25),
    ]
    for make, want in taken:
        assert make() == want
    net = fastbp.MLP([3, 4, 3], seed=0, dtype="float64")
    twin = fastbp.MLP([3, 4, 3], seed=0, dtype="float64")
    net.fit(X, y, verbose=0, epochs=2, lr=Fraction(1, 100))
    twin.fit(X, y, verbose=0, epochs=2, lr=0.01)
    np.testing.assert_array_equal(net.params, twin.params)
    before = net.params.copy()
    refused = [
        (lambda: net.fit(X, y, verbose=0, lr=-10**30), "lr must be a positive finite number"),
        (lambda: setattr(net, "alpha", -10**30), r"alpha \(the L2 penalty\) must be a finite"),
        (lambda: net.fit(X, y, verbose=0, class_weight={0: 10**400}),
         r"class_weight\[0\] must be a finite number >= 0"),
        (lambda: fastbp.EarlyStopping(min_delta=10**400), "min_delta must be a finite number"),
        (lambda: fastbp.Adam(weight_decay=10**400), "weight_decay must be a finite number"),
        (lambda: fastbp.SGD(lr=10**400), "lr must be a positive finite number"),
    ]
    for call, message in refused:
        with pytest.raises(ValueError, match=message):
            call()
    np.testing.assert_array_equal(net.params, before)
    assert net.alpha == 0.0


def test_what_is_not_a_number_is_a_type_error_as_for_every_other_argument():
    """Review GF: alpha=None or "0.1", dropout=[None] and the other finite
    numbers >= 0 raised ValueError where seed="1", sizes=[3.0, 2],
    dropout="0.5", lr=None (check_positive) raise TypeError; a Decimal,
    which is no numbers.Real, likewise."""
    from decimal import Decimal
    net = fastbp.MLP([3, 4, 2], seed=0)
    snap = net.params.copy()
    for call, message in [
        (lambda: fastbp.MLP([3, 2], alpha=None), r"alpha .*must be a finite number >= 0; got None"),
        (lambda: fastbp.MLP([3, 2], alpha="0.1"), "alpha .*got '0.1'"),
        (lambda: fastbp.MLP([3, 2], alpha=Decimal("0.1")), r"alpha .*got Decimal\('0.1'\)"),
        (lambda: setattr(net, "alpha", None), "alpha .*got None"),
        (lambda: fastbp.MLP([3, 4, 2], dropout=[None]), "dropout rates must be numbers in"
                                                         r" \[0, 1\); got None for hidden layer 0"),
        (lambda: fastbp.MLP([3, 4, 2], dropout=["0.5"]), "dropout rates .*got '0.5'"),
        (lambda: fastbp.Adam(weight_decay="0"), "weight_decay must be a finite number >= 0"),
        (lambda: fastbp.EarlyStopping(min_delta=None), "min_delta must be a finite number"),
        (lambda: fastbp.schedules.CosineAnnealing(5, eta_min="0"), "eta_min must be a finite"),
        (lambda: net.fit(np.ones((4, 3)), [0, 1, 0, 1], class_weight={0: "2"}, verbose=0),
         r"class_weight\[0\] must be a finite number >= 0; got '2'"),
    ]:
        with pytest.raises(TypeError, match=message):
            call()
    np.testing.assert_array_equal(net.params, snap)
    assert net.alpha == 0.0 and len(net.history) == 0
    with pytest.raises(ValueError, match="alpha .*got -1"):   # a number out of range: ValueError
        fastbp.MLP([3, 2], alpha=-1)


def test_numbers_that_round_are_judged_as_given_and_as_stored():
    """Review FH: Fraction(-1, 10**400) (below 0, rounding to -0.0) was taken
    as an alpha or weight decay; a momentum or beta just below 1 that rounds
    to 1.0 was taken, and the saved file refused at load; a longdouble lr of
    1e-4000 was refused as "got 0.0"."""
    from fractions import Fraction
    tiny_negative, near_one = Fraction(-1, 10**400), Fraction(10**20 - 1, 10**20)
    for call, message in [
        (lambda: fastbp.MLP([3, 2], alpha=tiny_negative), "alpha .*must be a finite number >= 0"),
        (lambda: fastbp.Adam(weight_decay=tiny_negative), "weight_decay must be a finite number"),
        (lambda: fastbp.EarlyStopping(min_delta=tiny_negative), "min_delta must be a finite"),
        (lambda: fastbp.SGD(momentum=near_one), r"momentum must be a number in \[0, 1\)"),
        (lambda: fastbp.RMSprop(momentum=near_one), r"momentum must be a number in \[0, 1\)"),
        (lambda: fastbp.Adam(betas=(0.9, near_one)), r"betas must be two numbers in \[0, 1\)"),
        (lambda: fastbp.SGD(lr=np.longdouble("1e-4000")),
         r"lr must be a positive finite number; got np.longdouble\('1e-4000'\)"),
    ]:
        with pytest.raises(ValueError, match=message):
            call()
    assert fastbp.SGD(momentum=Fraction(9, 10)).hyper[fastbp.optim.MOMENTUM] == 0.9
    # review GH: a Fraction dropout rate was "not a number" (a TypeError)
    assert fastbp.MLP([3, 4, 2], dropout=Fraction(1, 2)).dropout == (0.5,)
    assert fastbp.MLP([3, 4, 2], dropout=[Fraction(1, 4)]).dropout == (0.25,)
    with pytest.raises(ValueError, match=r"dropout rates must be numbers in \[0, 1\); got"
                                         r" Fraction\(99999999999999999999, 100000000000000000000\)"):
        fastbp.MLP([3, 4, 2], dropout=[near_one])
    assert fastbp.MLP([3, 2], alpha=Fraction(0)).alpha == 0.0


def test_settings_are_judged_as_stored_and_numpy_counts_are_counts():
    """Review FK: a momentum rounding to 0.0 passed SGD's nesterov check (the
    saved file was refused at load); a ReduceOnPlateau factor rounding to 1.0
    or 0.0 was taken; SklearnSGD took a NaN or infinite momentum (the fit
    then diverged, blaming the lr); LBFGS refused max_ls=np.int64(5)."""
    from fractions import Fraction
    from fastbp import schedules
    from fastbp.optim import SklearnSGD
    for call, message in [
        (lambda: fastbp.SGD(momentum=Fraction(1, 10**400), nesterov=True),
         "nesterov needs momentum > 0"),
        (lambda: schedules.ReduceOnPlateau(factor=Fraction(10**20 - 1, 10**20)),
         r"factor must be a number in \(0, 1\)"),
        (lambda: schedules.ReduceOnPlateau(factor=Fraction(1, 10**400)),
         r"factor must be a number in \(0, 1\)"),
        (lambda: SklearnSGD(momentum=float("nan")), "momentum must be a finite number >= 0"),
        (lambda: SklearnSGD(momentum=float("inf")), "momentum must be a finite number >= 0"),
        (lambda: SklearnSGD(momentum=10**400), "momentum must be a finite number >= 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            call()
    assert fastbp.LBFGS(max_ls=np.int64(5)).max_ls == 5
    assert type(fastbp.LBFGS(max_ls=np.int64(5)).max_ls) is int
    assert schedules.ReduceOnPlateau(factor=Fraction(1, 2)).factor == 0.5


# ------------------------------------------------ found in review (2026-12-07, session 47)
def test_lbfgs_refuses_a_max_ls_scipy_cannot_take_before_the_fit_begins():
    """LBFGS(max_ls=2**31) was accepted, and the fit failed inside SciPy
    (OverflowError: its maxls is a C int) after it had begun: the model's
    Adam replaced and its schedule ended, every later fit failing so."""
    assert fastbp.LBFGS(max_ls=2**31 - 1).max_ls == 2**31 - 1
    for bad in (2**31, 10**20):
        with pytest.raises(ValueError, match=r"max_ls must be an integer from 1 to 2\*\*31 - 1"):
            fastbp.LBFGS(max_ls=bad)


@pytest.mark.parametrize("stop", [True, False])
def test_a_callbacks_write_in_the_last_lbfgs_iteration_stays(stop):
    """validation.md: L-BFGS overwrites a callback's write to net.params at
    its next iteration. In the last one (the callback stopping the fit, or
    epochs reached) the write was overwritten after the fit by SciPy's final
    iterate all the same, where a minibatch fit keeps it."""
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(30, 3)), rng.integers(0, 3, 30)
    last = 1 if stop else 2

    class Halve:
        def on_epoch_end(self, epoch, logs=None):
            if epoch == last:
                net.params[:] *= 0.5     # write the weights (a sign one can check)
                seen.append(net.params.copy())
                return stop

    for optimizer in ("adam", "lbfgs"):
        seen = []
        net = fastbp.MLP([3, 4, 3], dtype="float64", seed=1)
        history = net.fit(X, y, epochs=3 if stop else last + 1, optimizer=optimizer, verbose=0,
                          callbacks=[Halve()])
        assert len(history) == last + 1 and len(seen) == 1
        np.testing.assert_array_equal(net.params, seen[0])
    # an earlier iteration's write is SciPy's to overwrite, as documented
    class HalveFirst:
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                net.params[:] *= 0.5
                seen.append(net.params.copy())
    seen = []
    net = fastbp.MLP([3, 4, 3], dtype="float64", seed=1)
    assert len(net.fit(X, y, epochs=3, optimizer="lbfgs", verbose=0,
                       callbacks=[HalveFirst()])) == 3
    assert not np.array_equal(net.params, seen[0])


@pytest.mark.parametrize("name, value, names", [("loss", "mae", "loss_name"),
                                                 ("activation", "relu", "activations")])
def test_the_constructor_arguments_without_a_property_cannot_be_assigned(name, value, names):
    """Review HBE: net.loss = "mae" shadowed the loss method (net.loss(X, y)
    then "'str' object is not callable") and net.activation = "relu" was kept
    and ignored, fit training with the loss and activations of construction."""
    net, X, y = _trained()
    before, loss = net.forward(X), net.loss(X, y)
    with pytest.raises(AttributeError, match=f"fixed at construction.*net.{names}"):
        setattr(net, name, value)
    assert name not in vars(net)
    assert net.loss(X, y) == loss   # the method, not a string
    np.testing.assert_array_equal(net.forward(X), before)


def test_object_arrays_of_numbers_are_taken_as_numbers():
    """np.asarray of a DataFrame with a bool column beside float ones (what
    pd.get_dummies gives), or of nullable Int64/Float64 columns, is an object
    array of numbers: taken as scikit-learn's check_array takes it (float64,
    int64 when every cell is a bool or an integer), where it was refused
    (review HCS). Answers and training equal those of the numeric array."""
    rng = np.random.default_rng(0)
    num = np.column_stack([rng.integers(0, 2, 30), rng.normal(size=(30, 2))])
    mixed = np.empty(num.shape, dtype=object)
    mixed[:, 0] = [bool(v) for v in num[:, 0]]                  # a bool column
    mixed[:, 1] = [np.float32(v) for v in num[:, 1]]            # Float32 cells
    mixed[:, 2] = list(num[:, 2])                               # float cells
    num[:, 1] = num[:, 1].astype(np.float32)
    labels = np.arange(30) % 3
    for dtype in ("float32", "float64"):
        a = fastbp.MLP([3, 5, 3], dtype=dtype, seed=1)
        b = fastbp.MLP([3, 5, 3], dtype=dtype, seed=1)
        np.testing.assert_array_equal(a.forward(mixed), b.forward(num))
        a.fit(mixed, labels.astype(object), epochs=2, batch_size=8, verbose=0)
        b.fit(num, labels, epochs=2, batch_size=8, verbose=0)
        np.testing.assert_array_equal(a.params, b.params)
        assert a.loss(mixed, labels) == b.loss(num, labels)
        np.testing.assert_array_equal(a.predict(mixed), b.predict(num))
    # integers (Int64 cells) stay integers: labels past 2**53 are not rounded
    from fastbp._validate import _as_array
    ints = _as_array(np.array([2**53 + 1, True, np.int8(3)], dtype=object), "y")
    assert ints.dtype == np.int64 and ints.tolist() == [2**53 + 1, 1, 3]
    assert _as_array(np.array([2**70, 1], dtype=object), "X").dtype == np.float64
    # bools alone stay bools (a landscape direction refuses them, as a bool
    # array), a timedelta is no number (NumPy's subclasses its integers: NaT
    # was read as -9.2e18), an integer past float64 is named (review HCX)
    assert _as_array(np.array([True, np.bool_(False)], dtype=object), "X").dtype == bool
    with pytest.raises(TypeError, match=r"X must hold numbers .* got np.timedelta64\('NaT'\)"
                                        r" at index \(1, 0\) \(row 1\)"):
        _as_array(np.array([[1, 2.0], [np.timedelta64("NaT"), 3]], dtype=object), "X")
    with pytest.raises(ValueError, match=r"y holds an integer beyond float64's range \(of 401"
                                         r" digits\)"):
        _as_array(np.array([1.5, -10**400], dtype=object), "y")
    from fastbp import landscape
    small = fastbp.MLP([2, 2], seed=0)
    with pytest.raises(TypeError, match=r"directions\[0\] must hold real numbers .* got dtype bool"):
        landscape.surface(small, num[:, :2], labels % 2, steps=3, seed=0,
                          directions=(np.array([True] * small.n_params, dtype=object),
                                      np.ones(small.n_params)))
    # a cell that is not a number is still named
    bad = mixed.copy()
    bad[4, 2] = None   # (pandas' NA would be named the same way)
    with pytest.raises(TypeError, match=r"X must hold numbers .* got None at index \(4, 2\) \(row 4\)"):
        fastbp.MLP([3, 5, 3], seed=1).forward(bad)


def test_a_sparse_column_index_one_past_the_last_is_refused():
    """The bound itself: a stored column index equal to the number of
    columns (one past the last) is refused, as SciPy's check_format(
    full_check=True) refuses it, by MLP and the scikit-learn estimators
    (review HFO: a mutation to ``> n_cols`` went uncaught, the tests' bad
    indices all far out; predict then read past the weights)."""
    import scipy.sparse as sp
    X = sp.csr_matrix((np.array([1.0, 2.0]), np.array([0, 3]), np.array([0, 1, 2])), shape=(2, 3))
    with pytest.raises(ValueError, match="full_check|column index|indices"):
        X.copy().check_format(full_check=True)   # (the reference)
    net = fastbp.MLP([3, 4, 1], output="identity", seed=0)
    message = r"X is not a valid CSR matrix: column index 3 in row 1 is outside \[0, 3\)"
    with pytest.raises(ValueError, match=message):
        net.predict(X)
    before = net.params.copy()
    with pytest.raises(ValueError, match=message):
        net.fit(X, [1.0, 2.0], epochs=1, verbose=0)
    np.testing.assert_array_equal(net.params, before)
    csc = sp.csc_matrix((np.array([1.0]), np.array([2]), np.array([0, 1, 1, 1])), shape=(2, 3))
    with pytest.raises(ValueError, match=r"row index 2 in column 0 is outside \[0, 2\)"):
        net.predict(csc)
    pytest.importorskip("sklearn")
    from fastbp.sklearn import MLPRegressor
    with pytest.raises(ValueError, match=message):
        MLPRegressor(hidden_layer_sizes=(4,), max_iter=1).fit(X, [1.0, 2.0])
