"""What a model applies to raw rows and to its answers: input standardisation,
class labels and target scaling, as first-class, saved parts of MLP.

The reference for every check is the bare network (a copy with the
preprocessing removed) fed data standardised by plain NumPy."""
import copy
import decimal
import pickle
import re

import numpy as np
import pytest

import fastbp
from fastbp.cli import main
from test_cli import unscaled as bare, write_csv


def blobs(n=90, seed=0, shift=50.0, spread=20.0):
    """Three classes in raw units far from standardised (mean ~50, std ~20)."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, 3, n)
    X = shift + spread * (rng.normal(size=(n, 4)) + 1.5 * np.eye(3, 4)[k])
    return X, k


# ------------------------------------------------------------------ command line
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_model_trained_by_the_command_line_predicts_the_same_in_python(tmp_path, capsys, dtype):
    """Issue 11, item 1: fastbp.load(m).predict(raw rows) is what fastbp predict prints."""
    X, k = blobs(120, seed=1)
    names = np.array(["setosa", "versicolor", "virginica"])
    data = write_csv(tmp_path / "flowers.csv", ["a", "b", "c", "d", "species"],
                     [list(map(str, r)) + [names[c]] for r, c in zip(X, k)])
    model = str(tmp_path / "m.npz")
    assert main(["train", data, "--target", "species", "--hidden", "8", "--epochs", "30",
                 "--dtype", dtype, "--verbose", "0", "--out", model]) == 0
    capsys.readouterr()
    rows = write_csv(tmp_path / "rows.csv", ["a", "b", "c", "d"], [list(map(str, r)) for r in X])
    assert main(["predict", model, rows]) == 0
    printed = capsys.readouterr().out.split()

    net = fastbp.load(model)
    in_python = net.predict(X)
    assert in_python.tolist() == printed
    assert set(printed) <= set(names) and len(set(printed)) == 3
    # Independently: NumPy standardisation with the training split's statistics,
    # the bare network, the sorted class names.
    X_train = fastbp.datasets.train_test_split(X, k, test_fraction=0.2, seed=0)[0]
    std = X_train.std(axis=0)
    scaled = (X - X_train.mean(axis=0)) / np.where(std > 0, std, 1.0)
    np.testing.assert_array_equal(net.predict_proba(X), bare(net).forward(scaled))
    assert printed == names[bare(net).forward(scaled).argmax(axis=1)].tolist()
    assert net.classes_.tolist() == names.tolist()


def test_a_regression_trained_by_the_command_line_predicts_the_same_in_python(tmp_path, capsys):
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 100, size=(150, 2))
    price = 5000 + 30 * X[:, 0] - 12 * X[:, 1]
    data = write_csv(tmp_path / "r.csv", ["u", "v", "price"], [[a, b, p] for (a, b), p in zip(X, price)])
    model = str(tmp_path / "r.npz")
    assert main(["train", data, "--hidden", "8", "--epochs", "40", "--dtype", "float64",
                 "--verbose", "0", "--out", model]) == 0
    capsys.readouterr()
    assert main(["predict", model, data]) == 0
    printed = np.array([float(v) for v in capsys.readouterr().out.split()])
    net = fastbp.load(model)
    np.testing.assert_array_equal(net.predict(X), printed)
    y_train = fastbp.datasets.train_test_split(X, price, test_fraction=0.2, seed=0)[2]
    assert net.target_mean[0] == y_train.mean() and net.target_scale[0] == y_train.std()
    manual = bare(net).predict((X - net.input_mean) / net.input_scale) * y_train.std() + y_train.mean()
    np.testing.assert_allclose(printed, manual, rtol=1e-12)
    assert abs(printed.mean() - price.mean()) < 0.1 * price.std()  # in the target's units


# -------------------------------------------------------------- class labels
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_learns_text_labels_and_trains_as_on_their_codes(dtype):
    X, k = blobs()
    words = np.array(["pear", "apple", "fig"])  # sorted: apple, fig, pear
    y = words[k]
    net = fastbp.MLP([4, 6, 3], dtype=dtype, seed=0)
    net.fit(X, y, epochs=3, batch_size=16, verbose=0, validation_data=(X[:20], y[:20]))
    assert net.classes_.tolist() == ["apple", "fig", "pear"]
    codes = np.searchsorted(np.array(["apple", "fig", "pear"]), y)
    twin = fastbp.MLP([4, 6, 3], dtype=dtype, seed=0)
    twin.fit(X, codes, epochs=3, batch_size=16, verbose=0, validation_data=(X[:20], codes[:20]))
    np.testing.assert_array_equal(net.params, twin.params)
    for key in ("loss", "val_loss", "val_accuracy"):
        assert net.history[key] == twin.history[key]
    assert net.predict(X).tolist() == net.classes_[twin.predict(X)].tolist()
    assert net.loss(X, y) == twin.loss(X, codes)
    assert net.loss(X, y.astype(object)) == twin.loss(X, codes)  # as a pandas column holds them
    np.testing.assert_array_equal(net.gradient(X, y), twin.gradient(X, codes))
    assert net.evaluate(X, y) == twin.evaluate(X, codes)
    # A list of Python strings, and a later fit that continues with the same classes.
    net.fit(X, y.tolist(), epochs=1, verbose=0)
    twin.fit(X, codes, epochs=1, verbose=0)
    np.testing.assert_array_equal(net.params, twin.params)


def test_integer_labels_keep_their_meaning_and_no_classes_are_set():
    X, k = blobs()
    net = fastbp.MLP([4, 5, 3], seed=0)
    net.fit(X, k, epochs=2, verbose=0)
    assert net.classes_ is None and net.predict(X).dtype == np.int64
    # The same as naming the classes 0, 1, 2 explicitly (the labelled path).
    named = fastbp.MLP([4, 5, 3], seed=0)
    named.classes_ = [0, 1, 2]
    named.fit(X, k, epochs=2, verbose=0)
    np.testing.assert_array_equal(net.params, named.params)
    np.testing.assert_array_equal(net.predict(X), named.predict(X))


def test_numeric_labels_through_classes_():
    X, k = blobs()
    net = fastbp.MLP([4, 5, 3], seed=0)
    net.classes_ = [10, 20, 30]
    net.fit(X, (k + 1) * 10, epochs=2, verbose=0)
    twin = fastbp.MLP([4, 5, 3], seed=0)
    twin.fit(X, k, epochs=2, verbose=0)
    np.testing.assert_array_equal(net.params, twin.params)
    np.testing.assert_array_equal(net.predict(X), (twin.predict(X) + 1) * 10)
    with pytest.raises(ValueError, match="label 25 is not one of the model's classes_"):
        net.loss(X[:2], [10, 25])


def test_a_single_sigmoid_output_takes_two_text_labels():
    X, k = blobs()
    y = np.where(k == 0, "yes", "no")
    net = fastbp.MLP([4, 5, 1], output="sigmoid", seed=0)
    net.fit(X, y, epochs=2, verbose=0)
    assert net.classes_.tolist() == ["no", "yes"]
    twin = fastbp.MLP([4, 5, 1], output="sigmoid", seed=0)
    twin.fit(X, (k == 0).astype(float), epochs=2, verbose=0)
    np.testing.assert_array_equal(net.params, twin.params)
    assert net.predict(X).tolist() == np.array(["no", "yes"])[twin.predict(X)].tolist()


def snapshot(net):
    return (net.params.copy(), net._rng.copy(), copy.deepcopy(net.history.history),
            None if net.optimizer is None else net.optimizer.t, net.classes_)


def unchanged(net, snap):
    params, rng, history, t, classes = snap
    return (np.array_equal(net.params, params) and np.array_equal(net._rng, rng)
            and len(net.history) == len(history["loss"]) and net.history["loss"] == history["loss"]
            and (None if net.optimizer is None else net.optimizer.t) == t
            and (net.classes_ is classes or np.array_equal(net.classes_, classes)))


def test_an_unseen_label_is_refused_by_name_and_changes_nothing():
    X, k = blobs()
    y = np.array(["a", "b", "c"])[k]
    net = fastbp.MLP([4, 5, 3], seed=0)
    net.fit(X, y, epochs=1, verbose=0, optimizer="adam")
    snap = snapshot(net)
    bad = y.copy()
    bad[7] = "d"
    with pytest.raises(ValueError, match=r"y: label 'd' is not one of the model's classes_ \['a', 'b', 'c'\]"):
        net.fit(X, bad, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="validation_data\\[1\\]: label 'd' is not one of"):
        net.fit(X, y, epochs=1, verbose=0, validation_data=(X, bad))
    with pytest.raises(ValueError, match=f"label {k[0]} is not one of"):
        net.fit(X, k, epochs=1, verbose=0)  # the codes are not the labels
    assert unchanged(net, snap)


def test_a_model_trained_on_integer_labels_does_not_take_text_labels_unnamed():
    X, k = blobs()
    net = fastbp.MLP([4, 5, 3], seed=0)
    net.fit(X, k, epochs=1, verbose=0)
    snap = snapshot(net)
    with pytest.raises(TypeError, match="trained on integer class labels .* set net.classes_"):
        net.fit(X, np.array(["a", "b", "c"])[k], verbose=0)
    assert net.classes_ is None and unchanged(net, snap)
    net.classes_ = ["a", "b", "c"]  # named: the labels now mean outputs 0, 1, 2
    net.fit(X, np.array(["a", "b", "c"])[k], epochs=1, verbose=0)
    twin = fastbp.MLP([4, 5, 3], seed=0)
    twin.fit(X, k, epochs=2, verbose=0)
    np.testing.assert_array_equal(net.params, twin.params)


@pytest.mark.parametrize("before", ["optimizer set", "epochs=0"])
def test_a_model_that_never_trained_takes_text_labels_at_its_first_fit(before):
    """Found in review (session 37): an optimizer set by its setter, or a fit
    of epochs=0, made a new model refuse text labels as "trained on integer
    class labels"; the fit docstring: text labels set classes_ at the first fit."""
    X, k = blobs()
    text = np.array(["a", "b", "c"])[k]
    net = fastbp.MLP([4, 5, 3], seed=0)
    if before == "optimizer set":
        net.optimizer = fastbp.Adam(lr=0.01)
    else:
        net.fit(X, k, epochs=0, verbose=0, optimizer=fastbp.Adam(lr=0.01))
    net.fit(X, text, epochs=2, verbose=0)
    assert list(net.classes_) == ["a", "b", "c"]
    twin = fastbp.MLP([4, 5, 3], seed=0)   # the same training on the codes
    twin.fit(X, k, epochs=2, verbose=0, optimizer=fastbp.Adam(lr=0.01))
    np.testing.assert_array_equal(net.params, twin.params)


def test_a_first_fit_whose_labels_do_not_fill_the_output_is_refused():
    X, k = blobs()
    net = fastbp.MLP([4, 5, 3], seed=0)
    snap = snapshot(net)
    with pytest.raises(ValueError, match=r"y holds 2 distinct labels \['a', 'b'\], but the network has"
                                         r" 3 classes; set net.classes_"):
        net.fit(X, np.where(k == 0, "a", "b"), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="epochs"):  # learnt classes are kept only by a fit that runs
        net.fit(X, np.array(["a", "b", "c"])[k], epochs=-1, verbose=0)
    assert net.classes_ is None and unchanged(net, snap)
    net.classes_ = ["a", "b", "c"]  # all of them named first: a partial fit may see some
    net.partial_fit(X[k < 2], np.array(["a", "b", "c"])[k[k < 2]])
    assert net.classes_.tolist() == ["a", "b", "c"]


@pytest.mark.parametrize("sizes,output,value,error,message", [
    ([4, 3], "softmax", ["a", "b"], ValueError, "must list 3 labels"),
    ([4, 3], "softmax", ["a", "b", "a"], ValueError, "distinct"),
    ([4, 3], "softmax", "abc", TypeError, "sequence of labels"),
    ([4, 3], "softmax", [1.0, 2.0, np.nan], ValueError, "finite"),
    ([4, 3], "softmax", np.array(["a", 1, 2], dtype=object), TypeError, "one kind"),
    ([4, 1], "sigmoid", ["a", "b", "c"], ValueError, "must list 2 labels"),
    ([4, 2], "sigmoid", ["a", "b"], ValueError, "softmax output or a single sigmoid"),
    ([4, 1], "identity", ["a", "b"], ValueError, "softmax output or a single sigmoid"),
    # review GF: stored as float64, 2**70 + 1 was predicted as 2**70, and
    # [2**70, 2**70 + 1, 3] refused as not distinct
    ([4, 3], "softmax", [1, 2**70 + 1, 3], ValueError,
     "the integer label 1180591620717411303425, beyond what int64 and uint64 hold"),
    ([4, 3], "softmax", [2**70, 2**70 + 1, 3], ValueError, "beyond what int64 and uint64 hold"),
    # review GH: NumPy reads these as float64 (no one integer dtype holds both)
    ([4, 3], "softmax", [-1, 2**63 + 1, 3], ValueError, "the integer labels -1 and"
     " 9223372036854775809, which no one integer dtype holds"),
])
def test_bad_classes_are_refused(sizes, output, value, error, message):
    net = fastbp.MLP(sizes, output=output, seed=0)
    with pytest.raises(error, match=message):
        net.classes_ = value
    assert net.classes_ is None


def test_integer_labels_held_as_objects_are_kept_exactly():
    """Review GH: an object array of ints (a pandas object column of IDs)
    went through float64: 2**53 + 1 came back as 2**53, and 2**53 and
    2**53 + 1 were refused as one label. Kept exactly now, as scikit-learn's
    LabelEncoder keeps them."""
    big = 2**53
    net = fastbp.MLP([2, 3], seed=0)
    net.classes_ = np.array([big + 1, big, 7], dtype=object)
    assert net.classes_.dtype == np.int64 and net.classes_.tolist() == [big + 1, big, 7]
    net.params[:] = 0
    net.biases[0][:] = [1, 0, 0]
    assert net.predict(np.zeros((1, 2))).tolist() == [big + 1]
    net.classes_ = np.array([2**64 - 1, 2**63 + 1, 5], dtype=object)   # uint64 holds them all
    assert net.classes_.dtype == np.uint64 and net.classes_[0] == 2**64 - 1


def test_labels_of_another_integer_type_than_the_classes_find_their_class():
    """Review GL: uint64 classes (one of 2**63 or more) against int64 labels
    were searched in float64 by NumPy: 2**62 + 1 found 2**62, and a label
    among classes_ was "not seen in training"."""
    from fastbp._preprocess import label_indices
    classes = np.array([2**62, 2**62 + 1, 2**63], dtype=np.uint64)
    assert label_indices([2**62 + 1, 2**62], classes).tolist() == [1, 0]
    assert label_indices(np.array([2**62 + 1], np.int64), classes).tolist() == [1]
    signed = np.array([-1, 2**62, 2**62 + 1])
    assert label_indices(np.array([2**62 + 1, 2**62], np.uint64), signed).tolist() == [2, 1]
    for labels, classes_of in (([-1], classes), (np.array([2**63 + 5], np.uint64), signed),
                               ([300], np.array([0, 5, 255], np.uint8))):   # (300 wraps to 44)
        with pytest.raises(ValueError, match="is not one of the model's classes_"):
            label_indices(np.asarray(labels), classes_of)


def test_float_labels_find_an_integer_class_only_when_they_are_it_exactly():
    """Review HEK: float labels were compared with integer classes in
    float64, where 2.0**53 equals the class 2**53 + 1 (a label that is no
    class scored as one, without an error)."""
    from fastbp._preprocess import label_indices
    classes = np.array([1, 2**53 + 1, 2**53 + 2])
    assert label_indices(np.array([2.0**53 + 2, 1.0]), classes).tolist() == [2, 0]
    unsigned = np.array([0, 2**64 - 1], dtype=np.uint64)
    assert label_indices(np.array([0.0]), unsigned).tolist() == [0]
    for labels, classes_of in (([1.0, 2.0**53], classes), ([1.5], classes), ([np.nan], classes),
                               ([2.0**64], unsigned), ([-0.5], unsigned),
                               ([2.0**63], np.array([-1, 2**63 - 1])),
                               ([float(2**63)], np.array([0, 2**63], dtype=np.uint64)[:1])):
        with pytest.raises(ValueError, match="is not one of the model's classes_"):
            label_indices(np.asarray(labels, dtype=np.float64), classes_of)
    # Review HEM: float16 labels warned of an overflow (the bounds cast to
    # float16); a long double label is read as it is, not through float64;
    # and an integer label names a float class only when it is it exactly.
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert label_indices(np.array([2.0, 1.0], np.float16), np.arange(3)).tolist() == [2, 1]
        assert label_indices(np.array([1, 2]), np.array([1.0, 2.0], np.float16)).tolist() == [0, 1]
        with pytest.raises(ValueError, match="label 70000 is not one"):
            label_indices(np.array([70000]), np.array([1.0, np.inf], np.float16))
    if np.finfo(np.longdouble).nmant >= 63:   # (x86's 80-bit long double)
        wide = np.array([2**53 + 1], dtype=np.longdouble)
        assert label_indices(wide, classes).tolist() == [1]
    floats = np.array([0.0, 2.0**53])
    assert label_indices(np.array([2**53, 0]), floats).tolist() == [1, 0]
    for labels in ([2**53 + 1], np.array([2**64 - 1], np.uint64), [2**63 - 1]):
        with pytest.raises(ValueError, match="is not one of the model's classes_"):
            label_indices(np.asarray(labels), np.array([0.0, 2.0**53, 2.0**63, 2.0**64]))
    net = fastbp.MLP([2, 2], seed=0)
    net.classes_ = classes[[0, 2]]
    X = np.random.default_rng(0).normal(size=(2, 2))
    assert net.evaluate(X, [1.0, 2.0**53 + 2]) == net.evaluate(X, [1, 2**53 + 2])
    with pytest.raises(ValueError, match="label 9007199254740992.0 is not one"):
        net.evaluate(X, np.array([1.0, 2.0**53]))


# -------------------------------------------------------------- input scaling
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_input_scaling_is_applied_by_every_method(dtype):
    X, k = blobs()
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scaled = (X - mean) / scale
    net = fastbp.MLP([4, 6, 3], dtype=dtype, seed=0).set_input_scaling(mean, scale)
    ref = bare(net)
    np.testing.assert_array_equal(net.forward(X), ref.forward(scaled))
    np.testing.assert_array_equal(net.predict_proba(X), ref.predict_proba(scaled))
    np.testing.assert_array_equal(net.predict(X), ref.predict(scaled))
    assert net.loss(X, k) == ref.loss(scaled, k)
    np.testing.assert_array_equal(net.gradient(X, k), ref.gradient(scaled, k))
    np.testing.assert_array_equal(net.numerical_gradient(X[:10], k[:10]),
                                  ref.numerical_gradient(scaled[:10], k[:10]))
    assert net.evaluate(X, k) == ref.evaluate(scaled, k)
    net.fit(X, k, epochs=3, verbose=0, validation_split=0.2)
    ref.fit(scaled, k, epochs=3, verbose=0, validation_split=0.2)
    np.testing.assert_array_equal(net.params, ref.params)
    assert net.history.history["val_loss"] == ref.history.history["val_loss"]
    # Standardising matters here: the raw rows are far from it.
    assert not np.array_equal(bare(net).forward(X), net.forward(X))


def test_standardize_learns_mean_and_std_and_leaves_constant_columns_alone():
    X, _ = blobs()
    X[:, 2] = 0.1  # constant: its mean is 0.1 only up to rounding, its std not exactly 0
    assert X[:, 2].std() > 0
    y = 1000 + 10 * X[:, :2]
    net = fastbp.MLP([4, 5, 2], output="identity", dtype="float64", seed=0).standardize(X, y)
    np.testing.assert_array_equal(net.input_mean, X.mean(axis=0))
    std = X.std(axis=0)
    np.testing.assert_array_equal(net.input_scale, [std[0], std[1], 1.0, std[3]])
    assert np.abs(net.forward(X) - bare(net).forward((X - X.mean(axis=0)) / [*std[:2], 1, std[3]])).max() == 0
    np.testing.assert_array_equal(net.target_mean, y.mean(axis=0))
    np.testing.assert_array_equal(net.target_scale, y.std(axis=0))
    with pytest.raises(ValueError, match="input_mean|read-only"):
        net.input_mean[0] = 0  # the model's own, not the caller's to change in place
    classifier = fastbp.MLP([4, 3], seed=0)
    with pytest.raises(ValueError, match="identity output"):
        classifier.standardize(X, y[:, 0])
    assert classifier.input_mean is None


@pytest.mark.parametrize("how", ["new", "copy", "pickle", "file"])
def test_the_models_own_arrays_stay_read_only_even_through_setflags(how, tmp_path):
    # Read-only arrays that own their memory could be made writable again
    # (setflags(write=True)) and written: a plan so changed sent the kernels
    # past the buffers. NumPy refuses that for memory it cannot write.
    import copy
    import pickle
    X, _ = blobs()
    y = np.array(["no", "yes"])[(X[:, 0] > np.median(X[:, 0])).astype(int)]
    net = fastbp.MLP([4, 5, 2], seed=0).standardize(X)
    net.fit(X, y, epochs=1, verbose=0)
    if how == "copy":
        net = copy.deepcopy(net)
    elif how == "pickle":
        net = pickle.loads(pickle.dumps(net))
    elif how == "file":
        net.save(tmp_path / "m.npz")
        net = fastbp.load(tmp_path / "m.npz")
    plan = net.plan.copy()
    for name in ("plan", "classes_", "input_mean", "input_scale"):
        arr = getattr(net, name)
        with pytest.raises(ValueError, match="WRITEABLE"):
            arr.setflags(write=True)
        with pytest.raises(ValueError, match="read-only"):
            arr[0] = arr[1]
    np.testing.assert_array_equal(net.plan, plan)
    assert list(net.classes_) == ["no", "yes"]


def test_target_scaling_trains_on_standardised_targets_and_answers_in_their_units():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(80, 3))
    y = 2e4 + 300 * X[:, 0] - 100 * X[:, 1] ** 2
    net = fastbp.MLP([3, 8, 1], output="identity", dtype="float64", seed=0).standardize(X, y)
    m, s = y.mean(), y.std()
    xs = (X - X.mean(axis=0)) / X.std(axis=0)
    ref = bare(net)
    assert net.loss(X, y) == ref.loss(xs, (y - m) / s)
    net.fit(X, y, epochs=5, verbose=0, optimizer="adam", validation_data=(X, y))
    ref.fit(xs, (y - m) / s, epochs=5, verbose=0, optimizer="adam", validation_data=(xs, (y - m) / s))
    np.testing.assert_array_equal(net.params, ref.params)
    np.testing.assert_array_equal(net.predict(X), ref.predict(xs) * s + m)
    np.testing.assert_array_equal(net.forward(X), ref.forward(xs))  # the network's own terms
    assert net.evaluate(X, y)["r2"] == pytest.approx(ref.evaluate(xs, (y - m) / s)["r2"], abs=1e-12)


@pytest.mark.parametrize("mean,scale,error,message", [
    (np.zeros(3), np.ones(4), ValueError, r"input mean must have shape \(4,\)"),
    (np.zeros(4), np.r_[1.0, 0.0, 1.0, 1.0], ValueError, "scale must be > 0 in every column; got 0.0 in column 1"),
    (np.r_[0.0, np.nan, 0, 0], np.ones(4), ValueError, "input mean must be finite"),
    ("x", np.ones(4), TypeError, "input mean must be a numeric array; got a str"),
    # cast before: the imaginary part dropped, text and dates read as numbers
    (np.full(4, 1 + 5j), np.ones(4), TypeError, "input mean must hold numbers .bool, int or float.; got dtype"),
    (np.zeros(4), np.array(["1.5", "2", "1e3", "4"]), TypeError,
     "input scale must hold numbers .bool, int or float.; got dtype <U3"),
    (np.arange(4).astype("datetime64[D]"), np.ones(4), TypeError,
     "input mean must hold numbers .bool, int or float.; got dtype datetime64"),
])
def test_bad_input_scaling_is_refused_and_changes_nothing(mean, scale, error, message):
    net = fastbp.MLP([4, 3], seed=0).set_input_scaling(np.ones(4), np.full(4, 2.0))
    with pytest.raises(error, match=message):
        net.set_input_scaling(mean, scale)
    np.testing.assert_array_equal(net.input_mean, np.ones(4))
    np.testing.assert_array_equal(net.input_scale, np.full(4, 2.0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_target_scaling_answers_and_losses_without_a_float64_copy_of_them_all(dtype):
    """Review HBQ: with target scaling, loss widened float32 targets to
    float64 whole and predict unscaled its answers in whole float64
    temporaries (97 and 115 MiB peaks for 24 MiB of float32 targets). Both
    go a block of rows at a time now: the peak is about the answers' (or the
    scaled targets') own size, and every value is what the float64 formula
    gives, bit for bit."""
    import tracemalloc
    rng = np.random.default_rng(0)
    n, m = 100_000, 8
    X = rng.normal(size=(n, 3)).astype(dtype)
    Y = (1e3 + 7 * X[:, :1] + rng.normal(size=(n, m))).astype(dtype)
    net = fastbp.MLP([3, 5, m], output="identity", dtype=dtype, seed=0)
    mean, scale = rng.normal(1e3, 1, m), rng.uniform(5, 9, m)
    net.set_target_scaling(mean, scale)
    bare_net = bare(net)
    want = (bare_net.forward(X).astype(np.float64) * scale + mean).astype(dtype)
    want_loss = bare_net.loss(X, (Y.astype(np.float64) - mean) / scale)
    net.loss(X[:10], Y[:10]), net.predict(X[:10])   # warm
    for call, expected in ((lambda: net.predict(X), want), (lambda: net.loss(X, Y), want_loss)):
        tracemalloc.start()
        try:
            got = call()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 1.5 * Y.nbytes, (peak, Y.nbytes)
        np.testing.assert_array_equal(got, expected)
    assert net.loss(X, Y) == net.loss(X, Y.astype(np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("output", ["softmax", "sigmoid", "identity"])
def test_input_scaling_of_many_rows_scales_a_chunk_at_a_time(dtype, output):
    """Review HCV: forward, predict_proba and predict of a model with input
    scaling (every model the command line trains) made a scaled copy of all
    of X: 244 MiB for a 2,000,000 x 28 float32 memory map, against 15 MiB
    without scaling. Each chunk is scaled on its thread now: the peak is far
    below X's size, and every answer is the unscaled twin's on X scaled
    whole in float64, bit for bit. A value the scaling takes beyond the
    dtype is still named by its row, the first in row order."""
    import tracemalloc
    rng = np.random.default_rng(1)
    n = 60_000
    X = rng.normal(3.0, 2.0, size=(n, 12)).astype(dtype)
    mean, scale = rng.normal(3.0, 0.1, 12), rng.uniform(1.5, 2.5, 12)
    net = fastbp.MLP([12, 9, 3 if output != "sigmoid" else 1], output=output, dtype=dtype,
                     seed=0).set_input_scaling(mean, scale)
    twin = bare(net)
    scaled = ((X.astype(np.float64) - mean) / scale).astype(dtype)
    calls = [("forward", net.forward, twin.forward), ("predict", net.predict, twin.predict)]
    if output != "identity":
        calls.append(("predict_proba", net.predict_proba, twin.predict_proba))
    for name, ours, theirs in calls:
        want = theirs(scaled)
        ours(X)  # warm on all of X (a split call's kernels): compiling is not the call
        tracemalloc.start()
        try:
            got = ours(X)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        np.testing.assert_array_equal(got, want, err_msg=name)
        assert peak < getattr(got, "nbytes", 0) + X.nbytes / 4, (name, peak, X.nbytes)
    if dtype == np.float32:
        bad = X.copy()
        bad[41_000, 2] = bad[7_000, 5] = 1e38
        net.set_input_scaling(mean, np.full(12, 1e-3))
        for call in (net.forward, net.predict):
            with pytest.raises(ValueError, match=r"X row 7000: \S+ \(column 5\) is .* beyond"
                                                 " what float32 holds"):
                call(bad)


def test_target_scaling_needs_an_identity_output():
    with pytest.raises(ValueError, match="target scaling applies to an identity output"):
        fastbp.MLP([4, 3], seed=0).set_target_scaling(0.0, 1.0)


# -------------------------------------------------------- saved, copied, shown
@pytest.mark.parametrize("labels", [["ant", "bee", "cat"], [3, 5, 7], [0.5, 1.5, 2.5]])
def test_preprocessing_round_trips_through_a_model_file(tmp_path, labels):
    X, k = blobs()
    y = np.array(labels)[k]
    net = fastbp.MLP([4, 5, 3], seed=0).standardize(X)
    if isinstance(labels[0], str):
        net.fit(X, y, epochs=2, verbose=0)
    else:
        net.classes_ = labels
        net.fit(X, y, epochs=2, verbose=0)
    net.save(tmp_path / "m.npz")
    back = fastbp.load(tmp_path / "m.npz")
    assert back.classes_.tolist() == labels and back.classes_.dtype == net.classes_.dtype
    np.testing.assert_array_equal(back.input_mean, net.input_mean)
    np.testing.assert_array_equal(back.input_scale, net.input_scale)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    assert repr(back) == repr(net) and f"classes={labels}" in repr(net) and "input_scaling=True" in repr(net)
    with pytest.raises(ValueError, match="is not one of the model's classes_"):
        back.fit(X[:3], ["zebra", "ant", "bee"] if not isinstance(labels[0], str) else [1, 2, 3],
                 verbose=0)
    for twin in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        np.testing.assert_array_equal(twin.predict(X), net.predict(X))
        assert twin.classes_.tolist() == labels


def test_regression_scaling_round_trips_and_plain_models_save_none(tmp_path):
    X = np.random.default_rng(0).normal(size=(30, 2))
    y = 50 + 9 * X[:, 0]
    net = fastbp.MLP([2, 1], output="identity", seed=0).standardize(X, y)
    net.save(tmp_path / "r.npz")
    back = fastbp.load(tmp_path / "r.npz")
    np.testing.assert_array_equal(back.target_mean, net.target_mean)
    np.testing.assert_array_equal(back.target_scale, net.target_scale)
    np.testing.assert_array_equal(back.predict(X), net.predict(X))
    fastbp.MLP([2, 3], seed=0).save(tmp_path / "p.npz")
    plain = fastbp.load(tmp_path / "p.npz")
    assert (plain.classes_, plain.input_mean, plain.input_scale, plain.target_mean) == (None,) * 4


def test_a_mix_of_text_and_number_labels_is_refused_and_changes_nothing():
    # np.asarray(["a", 1, 2]) is text ('1', '2'): numbers would silently
    # come back as strings from predict. scikit-learn refuses such a mix too.
    X = np.random.default_rng(0).normal(size=(6, 2))
    net = fastbp.MLP([2, 3, 3], seed=0)
    before = net.params.copy()
    with pytest.raises(TypeError, match="labels of one kind"):
        net.fit(X, ["a", 1, 2, "a", 1, 2], verbose=0)
    np.testing.assert_array_equal(net.params, before)
    assert net.classes_ is None
    with pytest.raises(TypeError, match="labels of one kind"):
        net.classes_ = ["a", 1, 2]
    assert net.classes_ is None
    net.classes_ = ("a", "b", "c")           # one kind: as before
    net.fit(X, ["a", "b", "c"] * 2, verbose=0, epochs=1)
    assert net.predict(X).dtype.kind == "U"


# -------------------------------------------- the third review's findings
def test_a_value_the_scaling_takes_beyond_float32_is_refused_by_name():
    # np.float32(1e300) is inf: the network would have been given an infinity
    # (a finite answer, or a fit that diverged and kept its optimizer).
    with np.errstate(over="ignore"):
        assert np.isinf(np.float32(1e300))
    net = fastbp.MLP([1, 4, 2], seed=0).set_input_scaling(0.0, 1.0)
    snap = snapshot(net)
    message = (r"X row 1: 1e\+300 \(column 0\) is 1e\+300 after the model's scaling .* beyond"
               " what float32")
    with pytest.raises(ValueError, match=message):
        net.predict_proba([[0.5], [1e300]])
    with pytest.raises(ValueError, match=message):
        net.fit([[0.0], [1e300]], [0, 1], verbose=0)
    assert unchanged(net, snap) and net.optimizer is None
    # A tiny scale does it in float64 too: 1e200 / 1e-200 overflows.
    net64 = fastbp.MLP([1, 4, 2], dtype=np.float64, seed=0).set_input_scaling(0.0, 1e-200)
    with pytest.raises(ValueError, match="beyond what float64 holds"):
        net64.predict([[1e200]])
    reg = fastbp.MLP([1, 4, 1], output="identity", seed=0).set_target_scaling(0.0, 1.0)
    # (a float32 model answers in float32, which cannot hold the target itself)
    with pytest.raises(ValueError, match=r"y row 0: 1e\+300 is beyond what float32 holds, the"
                                         " precision in which this model answers predict"):
        reg.loss([[1.0], [0.0]], [1e300, 0.0])
    reg64 = fastbp.MLP([1, 4, 1], output="identity", dtype=np.float64, seed=0)
    reg64.set_target_scaling(0.0, 1e-200)
    with pytest.raises(ValueError, match=r"y row 0: 1e\+200 \(column 0\) is .* beyond what"
                                         " float64 holds"):
        reg64.loss([[1.0], [0.0]], [1e200, 0.0])
    # Values in range are scaled as before: (x - mean) / scale in float64, then float32.
    X = np.array([[3.0], [-7.5]])
    ok = fastbp.MLP([1, 4, 2], seed=0).set_input_scaling(1.0, 4.0)
    np.testing.assert_array_equal(ok._inputs(X), ((X - 1.0) / 4.0).astype(np.float32))


def test_standardize_where_squared_deviations_pass_float64():
    """Deviations above 1.3e154 square past float64, but the standard
    deviation is representable: computed scaled, against a two-pass NumPy
    reference of the deviations divided first; a constant column of 1e200
    (its mean one ulp off: deviations of 1e184) gets scale 1, as any
    constant column (it was refused as an overflow)."""
    rng = np.random.default_rng(0)
    X = np.c_[5e200 + 1e190 * rng.normal(size=30), np.full(30, 1e200), rng.normal(size=30)]
    y = 1e300 * rng.normal(size=30)
    # (float64: a float32 model, which answers in float32, refuses such targets)
    net = fastbp.MLP([3, 4, 1], output="identity", dtype=np.float64, seed=0).standardize(X, y)
    dev = (X - X.mean(axis=0)) / 1e190
    np.testing.assert_allclose(net.input_scale[0], dev[:, 0].std() * 1e190, rtol=1e-10)
    assert net.input_scale[1] == 1.0
    np.testing.assert_allclose(net.input_scale[2], X[:, 2].std(), rtol=1e-14)
    np.testing.assert_allclose(net.target_scale, [(y / 1e300).std() * 1e300], rtol=1e-12)


def test_a_rejected_standardize_changes_nothing_and_names_the_overflow():
    net = fastbp.MLP([2, 4, 1], output="identity", dtype=np.float64, seed=0)
    X = np.array([[0.0, 1.0], [2.0, 5.0], [4.0, 0.0]])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from NumPy on the way
        with pytest.raises(ValueError, match="y column 0: its deviations from its mean overflow"
                                             r" float64 \(values up to 1.7e\+308\)"):
            net.standardize(X, [1.7e308, -1.7e308, -1.7e308])
        assert net.input_mean is None and net.target_mean is None
        with pytest.raises(ValueError, match="X column 1: its deviations from its mean overflow"):
            net.standardize(np.array([[0.0, 1.7e308], [1.0, -1.7e308], [2.0, -1.7e308]]))
    assert net.input_mean is None
    net.standardize(X, [1.0, 2.0, 4.0])  # then it takes sound data, as StandardScaler
    np.testing.assert_allclose(net.input_mean, X.mean(axis=0))
    np.testing.assert_allclose(net.target_scale, [np.std([1.0, 2.0, 4.0])])


def test_a_nan_in_raw_rows_is_named_at_its_own_column():
    net = fastbp.MLP([5, 4, 2], seed=0)
    net.categories = {1: ["blue", "green", "red"]}
    with pytest.raises(ValueError) as info:
        net.predict(np.array([[0.3, "red", 1.0], [0.1, "blue", np.nan]], dtype=object))
    assert str(info.value) == "X must be finite; found nan at index (1, 2) (row 1)"
    with pytest.raises(TypeError, match="X column 0 must hold numbers"):  # was an OverflowError
        net.predict(np.array([[10**400, "red", 1.0]], dtype=object))
    # "after conversion" only where the conversion made the value non-finite.
    plain = fastbp.MLP([2, 4, 2], seed=0)
    with pytest.raises(ValueError) as info:
        plain.predict(np.array([[0.0, np.nan]]))
    assert str(info.value) == "X must be finite; found nan at index (0, 1) (row 0)"
    with pytest.raises(ValueError, match=r"found inf at index \(0, 1\) \(row 0\) \(after"
                                         " conversion to float32\\)"):
        plain.predict(np.array([[0.0, 1e300]]))


def test_warnings_point_at_the_users_line():
    net = fastbp.MLP([4, 4, 2], seed=0)
    net.categories = {1: ["a", "b", "c"]}
    rows = np.array([[0.1, "zzz"], [0.2, "a"]], dtype=object)
    for call in (lambda: net.predict(rows), lambda: net.evaluate(rows, [0, 1]),
                 lambda: net.fit(rows, [0, 1], epochs=1, verbose=0)):
        with pytest.warns(UserWarning, match="not seen") as record:
            call()
        assert [w.filename for w in record] == [__file__]
    from divergence_cases import exploding
    wild, X, y = exploding("float64")
    with pytest.warns(RuntimeWarning, match="training diverged") as record:
        wild.fit(X, y, lr=1.0, epochs=50, batch_size=4, verbose=0, on_divergence="warn")
    assert [w.filename for w in record if "diverged" in str(w.message)] == [__file__]


def test_bytes_labels_in_an_object_array_read_as_text():
    X = np.random.default_rng(0).normal(size=(30, 2))
    y = (X[:, 0] > 0).astype(int)
    text = np.array(["no", "yes"])[y]
    a, b, c, d = (fastbp.MLP([2, 4, 2], seed=0) for _ in range(4))
    a.fit(X, text.astype("S"), epochs=2, verbose=0)
    b.fit(X, text.astype("S").astype(object), epochs=2, verbose=0)
    assert b.classes_.tolist() == a.classes_.tolist() == ["no", "yes"]
    np.testing.assert_array_equal(b.params, a.params)
    # Numeric labels in an object array read as numbers, as before.
    c.fit(X, y, epochs=2, verbose=0)
    d.fit(X, np.array(["no", "yes"], dtype=object)[y], epochs=2, verbose=0)
    np.testing.assert_array_equal(d.params, c.params)
    with pytest.raises(TypeError, match="labels of one kind.*got 'a' and 1"):
        fastbp.MLP([2, 4, 2], seed=0).fit(X, ["a"] * 20 + [1] * 10, verbose=0)


def test_multilabel_accuracy_is_scikit_learns_subset_accuracy():
    from sklearn.metrics import accuracy_score
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    Y = (rng.random((40, 3)) > 0.5).astype(np.int64)
    net = fastbp.MLP([3, 6, 3], output="sigmoid", seed=0)
    net.fit(X, Y, epochs=3, verbose=0)
    w = rng.random(40)
    assert net.evaluate(X, Y)["accuracy"] == pytest.approx(accuracy_score(Y, net.predict(X)))
    assert net.evaluate(X, Y, sample_weight=w)["accuracy"] == pytest.approx(
        accuracy_score(Y, net.predict(X), sample_weight=w))


# Text that Python's float() reads as a number, and NumPy's astype(np.float64)
# with it, but ONNX Runtime's strtod does not read the same way (1_0 is 1
# there, the others an error): never a number to fastbp.
NOT_PLAIN = ["1_0", "1_000.5", "\u0661", "\uff11", "1\u00a0", "\u00a01", "\u20031"]


@pytest.mark.parametrize("cell", NOT_PLAIN)
@pytest.mark.parametrize("kind", ["object", "str"])
def test_a_number_as_text_is_plain_ascii_decimal_in_raw_rows(cell, kind):
    """predict on raw rows read "1_0" as 10 and "١" as 1, where the model's
    ONNX graph reads 1 and refuses: now a numeric column refuses the cell."""
    net = fastbp.MLP([4, 3, 2], seed=0, dtype="float64")
    net.categories = {1: ["red", "teal"]}
    rows = np.array([["0.5", "red", "1"], [cell, "teal", "2"]], dtype=object)
    if kind == "str":
        rows = rows.astype(str)
    message = (r"X column 0 must hold numbers \(it is not a category column\); got "
               + re.escape(repr(cell)) + r" at index \(1, 0\) \(row 1\)")
    with pytest.raises(TypeError, match=message):
        net.predict(rows)
    with pytest.raises(TypeError, match=message):
        net.predict_proba(rows)
    if cell.isascii():  # as bytes in an object array: float(b"1_0") is 10 too
        rows = rows.astype(object)
        rows[1, 0] = cell.encode()
        with pytest.raises(TypeError, match=r"X column 0 must hold numbers"):
            net.predict(rows)


@pytest.mark.parametrize("cell", [np.timedelta64(5, "D"), np.datetime64("2020-01-01"),
                                  np.complex128(10 + 5j), decimal.Decimal("0.1")],
                         ids=["timedelta64", "datetime64", "complex", "Decimal"])
def test_a_numeric_column_of_raw_rows_names_a_cell_that_is_no_number(cell):
    """Found in review HDF (session 53): a numeric column of a model with
    categories read a timedelta64 of 5 days as 5.0, a datetime64 as its days
    since 1970, a complex as its real part and a Decimal as a float, where a
    model without categories names the cell (data.md: a cell that is no
    number is named in a TypeError); the model is unchanged."""
    plain = fastbp.MLP([2, 3, 2], seed=0, dtype="float64")
    with pytest.raises(TypeError, match="X must hold numbers"):
        plain.predict(np.array([[0.5, 1.0], [cell, 0.5]], dtype=object))
    net = fastbp.MLP([4, 3, 2], seed=0, dtype="float64")
    net.categories = {1: ["a", "b", "c"]}
    before = net.params.copy()
    rows = np.array([[0.5, "a"], [cell, "b"]], dtype=object)
    message = (r"X column 0 must hold numbers \(it is not a category column\); got "
               + re.escape(repr(cell)) + r" at index \(1, 0\) \(row 1\)")
    for call in (net.predict, net.predict_proba, lambda X: net.fit(X, [0, 1], verbose=0)):
        with pytest.raises(TypeError, match=message):
            call(rows)
    np.testing.assert_array_equal(net.params, before)
    assert net.optimizer is None and len(net.history) == 0


@pytest.mark.parametrize("cell", [None, float("nan"), 3])
def test_a_category_column_names_the_row_of_a_cell_that_is_no_text(cell):
    """Found in review HDF (session 53): a missing or numeric cell in a
    category column was named without its row ("found None"), where the
    same cell in a numeric column names index and row."""
    net = fastbp.MLP([4, 3, 2], seed=0, dtype="float64")
    net.categories = {1: ["a", "b", "c"]}
    rows = np.array([[0.5, "a"]] * 5 + [[1.5, cell]], dtype=object)
    with pytest.raises(TypeError, match=r"X column 1 is a category column and must hold text;"
                       r" found " + re.escape(repr(cell)) + r" at index \(5, 1\) \(row 5\)$"):
        net.predict(rows)


def test_numpy_string_dtype_rows_read_as_text():
    """Found in review HDF (session 53): NumPy 2's StringDType rows were
    refused ("must hold text; got dtype StringDType()") where the same rows
    as a str array predict; its NA object is named as None is."""
    dtypes = pytest.importorskip("numpy.dtypes")
    if not hasattr(dtypes, "StringDType"):
        pytest.skip("NumPy before 2.0 has no StringDType")
    net = fastbp.MLP([4, 3, 2], seed=0, dtype="float64")
    net.categories = {1: ["a", "b", "c"]}
    rows = [["0.5", "a"], ["1.5", "c"], ["-2", "b"]]
    np.testing.assert_array_equal(net.predict_proba(np.array(rows, dtype=dtypes.StringDType())),
                                  net.predict_proba(np.array(rows)))
    missing = np.array([["0.5", "a"], ["1.5", None]],
                       dtype=dtypes.StringDType(na_object=None))
    with pytest.raises(TypeError, match=r"found None at index \(1, 1\) \(row 1\)"):
        net.predict(missing)


def test_numpy_string_dtype_labels_are_text_labels():
    """Review HDN: NumPy 2's StringDType labels were refused (fit: "y must
    hold numbers"; evaluate and loss: "must hold text or numeric labels")
    where the same labels as a str array train; its NA object is named as
    a None label is."""
    dtypes = pytest.importorskip("numpy.dtypes")
    if not hasattr(dtypes, "StringDType"):
        pytest.skip("NumPy before 2.0 has no StringDType")
    X, _ = blobs()
    labels = np.array(["b", "a", "c"])[np.arange(len(X)) % 3]
    text = labels.astype(dtypes.StringDType())
    want, got = (fastbp.MLP([4, 5, 3], seed=0, dtype="float64") for _ in range(2))
    want.fit(X, labels, epochs=2, verbose=0)
    got.fit(X, text, epochs=2, verbose=0)
    np.testing.assert_array_equal(got.params, want.params)
    assert list(got.classes_) == ["a", "b", "c"]
    np.testing.assert_array_equal(got.predict(X), want.predict(X))
    assert got.evaluate(X, text) == want.evaluate(X, labels)
    assert got.loss(X, text) == want.loss(X, labels)
    missing = np.array(["a", None, "b"], dtype=dtypes.StringDType(na_object=None))
    with pytest.raises(TypeError, match="labels of one kind.*'a' and None"):
        got.evaluate(X[:3], missing)


def test_plain_numbers_as_text_still_read_as_their_floats():
    net = fastbp.MLP([4, 3, 2], seed=0, dtype="float64")
    net.categories = {1: ["red", "teal"]}
    cells = [" 1.5", "1.5\t", "\n-2\r\n", "\x0b3\x0c", "+1", ".5", "1.", "1e5", "-2E-03", "007"]
    rows = np.array([[c, "red", "1"] for c in cells], dtype=object)
    numbers = np.array([[float(c), "red", 1.0] for c in cells], dtype=object)
    np.testing.assert_array_equal(net.predict_proba(rows), net.predict_proba(numbers))
    np.testing.assert_array_equal(net.predict_proba(rows.astype(str)), net.predict_proba(numbers))


def test_is_number_is_the_plain_decimal_grammar():
    """is_number (float() on ASCII text without '_') accepts exactly plain
    decimal notation with ASCII whitespace around it, or nan/inf/infinity;
    odd_text, the vectorised check, flags exactly the cells that float()
    reads beyond that."""
    from fastbp import _preprocess
    grammar = re.compile(r"[ \t\n\r\x0b\x0c]*[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
                         r"(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)[ \t\n\r\x0b\x0c]*",
                         re.ASCII | re.IGNORECASE)
    alphabet = list("0123456789+-.eE _\tnaifty") + ["\u00a0", "\u0661", "\x1c", "x", "\u2003"]
    rng = np.random.default_rng(0)
    cells = ["".join(rng.choice(alphabet, size=rng.integers(1, 7))) for _ in range(20000)]
    cells += ["1", "-1.5e3", "Infinity", "-nan", " 1 ", "1_0", "\u0661", "1e", "e1", ".", "0x10"]
    for cell in cells:
        assert _preprocess.is_number(cell) == bool(grammar.fullmatch(cell)), repr(cell)
    flags = [not c.isascii() or "_" in c for c in cells]
    for values in (np.array(cells), np.array(cells, dtype=object)):
        odd = _preprocess.odd_text(values)
        np.testing.assert_array_equal(np.zeros(len(cells), bool) if odd is None else odd, flags)
    assert _preprocess.odd_text(np.array(["1", "2.5"])) is None
    assert _preprocess.odd_text(np.array([b"1", b"2_5"])).tolist() == [False, True]


# ------------------------------------------------ found in review (2026-12-05, session 34)
@pytest.mark.parametrize("mean,spread", [(1.0, 3e-15), (1e6, 1e-7), (0.5, 1.0), (1e6, 1e-3)])
def test_a_constant_column_is_judged_as_scikit_learns_standard_scaler_does(mean, spread):
    """The rule was std <= 10 eps |mean|, whatever the number of rows; on
    10,000 rows that differ by a few ulp, scikit-learn's StandardScaler
    (whose bound grows with n) gives scale 1 and fastbp divided by the tiny
    spread, blowing the ulps up to order 1."""
    StandardScaler = pytest.importorskip("sklearn.preprocessing").StandardScaler
    X = (mean + spread * np.random.default_rng(0).standard_normal(10_000)).reshape(-1, 1)
    net = fastbp.MLP([1, 2], seed=0)
    net.standardize(X)
    np.testing.assert_allclose(net.input_scale, StandardScaler().fit(X).scale_, rtol=1e-12)


def test_rows_in_a_list_keep_each_cells_type_as_in_an_object_array():
    """np.asarray of a list mixing text and numbers made every cell text:
    True was refused ('True'), np.float32(0.1) read as the float64 0.1."""
    net = fastbp.MLP([4, 3, 2], seed=0)
    net.categories = {1: ["blue", "red"]}
    rows = [[True, "red", np.float32(0.1)], [2, "blue", 1.5]]
    np.testing.assert_array_equal(net.predict_proba(rows),
                                  net.predict_proba(np.array(rows, dtype=object)))
    twin = fastbp.MLP([4, 3, 2], seed=0)  # the same weights, taking the one-hot inputs
    encoded = np.array([[1.0, 0, 1, np.float32(0.1)], [2.0, 1, 0, 1.5]])  # blue, red
    np.testing.assert_array_equal(net.predict_proba(rows), twin.predict_proba(encoded))


def test_empty_raw_rows_are_named_in_the_shape_given():
    # "X is empty (shape (0, 6))": the encoded width, where the user gave 3 columns.
    net = fastbp.MLP([6, 3, 2], seed=0)
    net.categories = {1: ["a", "b", "c", "d"]}
    with pytest.raises(ValueError, match=r"X is empty \(shape \(0, 3\)\)"):
        net.predict(np.zeros((0, 3), dtype=object))


def test_sparse_rows_or_labels_where_text_is_read_are_named_as_sparse():
    """Found in review (session 37): a sparse X for a model of category
    columns said "got shape ()"; a sparse y for a model with classes_ said
    "labels of one kind"."""
    import scipy.sparse as sp
    net = fastbp.MLP([6, 3, 2], seed=0)
    net.categories = {1: ["a", "b", "c"], 2: ["x", "y"]}
    with pytest.raises(TypeError, match=r"X is a scipy.sparse csr matrix; this model reads raw"
                                        r" rows with text in its category columns \[1, 2\]"):
        net.predict(sp.csr_matrix(np.ones((2, 3))))
    labelled = fastbp.MLP([3, 4, 2], seed=0)
    labelled.fit(np.ones((4, 3)), np.array(["a", "b", "a", "b"]), epochs=1, verbose=0)
    snap = snapshot(labelled)
    for call in (lambda y: labelled.fit(np.ones((4, 3)), y, epochs=1, verbose=0),
                 lambda y: labelled.loss(np.ones((4, 3)), y)):
        with pytest.raises(TypeError, match="y must be a dense array; got a scipy.sparse csr"
                                            r" matrix \(sparse inputs are taken as X only\)"):
            call(sp.csr_matrix(np.ones((4, 1))))
    assert unchanged(labelled, snap)


def test_a_scaling_of_the_wrong_length_names_the_networks_inputs():
    # (found in review, session 38: "one value per column" sent a model with
    # 3 raw columns, one of them text of 3 categories, to give 3 values)
    net = fastbp.MLP([5, 3, 2])
    net.categories = {1: ["a", "b", "c"]}
    with pytest.raises(ValueError, match=r"input mean must have shape \(5,\), one value per network"
                                         r" input \(sizes\[0\]: a category column counts its"
                                         r" one-hot codes\); got shape \(3,\)"):
        net.set_input_scaling(np.zeros(3), 1)
    assert net.input_mean is None


def test_found_in_review_EE_preprocessing():
    """Review EE (session 41): with category columns, the scaling errors named
    the encoded input (column 4 of rows of 3 columns); the target scaling's
    shape error spoke of inputs and sizes[0]; a column of values near 1e-200
    got scale 1 (its squared deviations underflowed), one near 1e-162 a std a
    third too large; a float32 model with target scaling trained on targets
    beyond float32 and predicted infinities; categories took labels mixing
    text and numbers as text."""
    rows = np.array([[0.5, "red", 1.0], [2.5, "green", 3e37]], dtype=object)
    net = fastbp.MLP([5, 2, 2], seed=0, dtype="float32")
    net.categories = {1: ["blue", "green", "red"]}
    net.set_input_scaling(0, [1, 1, 1, 1, 1e-3])
    with pytest.raises(ValueError, match=r"X row 1: 3e\+37 \(column 2\) is 3e\+40 after"):
        net.predict(rows)
    net.set_input_scaling(0, [1, 1e-39, 1, 1, 1])     # a code column scaled by hand
    with pytest.raises(ValueError, match=r"\(column 1's code of 'blue'\)"):
        net.predict(np.array([[0.5, "blue", 1.0]], dtype=object))
    huge = np.array([[0.5, "red", 1.7e308], [1.5, "blue", 1.7e308], [2.5, "green", 1e308]],
                    dtype=object)
    with pytest.raises(ValueError, match="X column 2: its mean overflows float64"):
        net.standardize(huge)
    with pytest.raises(ValueError, match=r"one value per network output \(sizes\[-1\]\); got"
                                         r" shape \(3,\)"):
        fastbp.MLP([3, 2], output="identity").set_target_scaling([0, 0, 0], [1, 1, 1])
    for column in ([1e-200, 2e-200, 4e-200], [1.23e-162, 4.56e-162], [3e-170, -1e-171, 0.0]):
        A = np.array(column)[:, None]
        got = fastbp.MLP([1, 2], output="identity", dtype="float64").standardize(A).input_scale
        want = np.std(A / 1e-150) * 1e-150     # the same column where squares are exact
        assert got[0] == pytest.approx(want, rel=1e-14)
    for constant in ([1e-200, 1e-200], [0.0, 0.0]):
        net1 = fastbp.MLP([1, 2], output="identity").standardize(np.array(constant)[:, None])
        assert net1.input_scale[0] == 1.0
    X, y = np.array([[0.0], [1.0], [2.0]]), np.array([1e39, 2e39, 3e39])
    small = fastbp.MLP([1, 1], output="identity", dtype="float32", seed=0)
    before = small.params.copy()
    with pytest.raises(ValueError, match=r"y row 0: 1e\+39 is beyond what float32 holds"):
        small.standardize(X, y)
    assert small.input_mean is None and small.target_mean is None
    with pytest.raises(ValueError, match="target mean 2e\\+39 is beyond what float32 holds"):
        small.set_target_scaling(2e39, 1e39)     # (review EH: it predicted infinities)
    small.set_target_scaling(0.0, 1.0)
    with pytest.raises(ValueError, match=r"y row 0: 1e\+39 is beyond what float32 holds"):
        small.fit(X, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(small.params, before)
    assert len(small.history) == 0
    wide = fastbp.MLP([1, 1], output="identity", dtype="float64", seed=0).standardize(X, y)
    wide.fit(X, y, epochs=1, verbose=0)                # float64 answers hold them
    assert np.isfinite(wide.predict(X)).all()
    with pytest.raises(TypeError, match=r"categories\[1\] must be a non-empty list of text"):
        fastbp.MLP([5, 2, 3]).categories = {1: ["a", 1, True]}


@pytest.mark.parametrize("change", ["classes_", "categories", "set_input_scaling",
                                    "set_target_scaling", "standardize"])
def test_preprocessing_cannot_change_while_a_fit_runs(change):
    """Review EE: a callback's net.classes_ = [...] (or new scaling or
    categories) mid-fit was taken: the fit trained and validated on the rows
    encoded before (val_accuracy 0.975 in its history), and the model then
    answered with the new classes (accuracy 0.025). Refused now, as the
    optimizer and schedule are; on_train_end may change them."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    identity = change in ("set_target_scaling",)
    y = X @ [1.0, 2.0] if identity else np.where(X[:, 0] > 0, "pos", "neg")
    net = fastbp.MLP([2, 4, 1 if identity else 2], output="identity" if identity else "softmax",
                     seed=0)
    calls = {"classes_": lambda: setattr(net, "classes_", ["pos", "neg"]),
             "categories": lambda: setattr(net, "categories", None),
             "set_input_scaling": lambda: net.set_input_scaling(None, None),
             "set_target_scaling": lambda: net.set_target_scaling(None, None),
             "standardize": lambda: net.standardize(X)}
    seen = []

    class Change:
        def on_epoch_end(self, epoch, logs):
            with pytest.raises(RuntimeError, match="while a fit of this model runs"):
                calls[change]()
            seen.append(epoch)

        def on_train_end(self, net_):
            calls[change]()      # the epochs are over: for the next fit
            seen.append("end")
    net.fit(X, y, epochs=2, verbose=0, callbacks=[Change()])
    assert seen == [0, 1, "end"]


@pytest.mark.parametrize("scaled", [False, True])
def test_a_raw_number_beyond_float32_is_named_by_its_raw_column(scaled):
    """Review FG: with text columns, a float32 model said "found inf at index
    (1, 2)" of the encoded rows, a finite cell; the value was at (1, 1)."""
    net = fastbp.MLP([4, 4, 3], seed=0)
    net.categories = {0: ["a", "b"]}
    if scaled:   # (there the scaling's result is what must fit float32)
        net.set_input_scaling(np.zeros(4), np.full(4, 1e10))
    X = np.array([["a", 0.5, 1.0], ["b", 1e39, 2.0], ["a", 0.1, 0.2]], dtype=object)
    before = net.params.copy()
    if scaled:   # taken: the same answers as the one-hot rows written out
        plain = fastbp.MLP([4, 4, 3], seed=0)
        plain.set_input_scaling(np.zeros(4), np.full(4, 1e10))
        coded = np.array([[1, 0, 0.5, 1.0], [0, 1, 1e39, 2.0], [1, 0, 0.1, 0.2]])
        np.testing.assert_array_equal(net.predict_proba(X), plain.predict_proba(coded))
        return
    for call in (lambda: net.predict(X), lambda: net.fit(X, [0, 1, 2], verbose=0)):
        with pytest.raises(ValueError, match=r"X row 1: 1e\+39 \(column 1\) is beyond what"
                                             " float32 holds"):
            call()
    np.testing.assert_array_equal(net.params, before)



def test_standardize_takes_raw_numbers_beyond_float32_with_text_columns():
    """Review FH: the check that raw numbers fit a float32 model (above) also
    refused standardize's rows, which its own scaling brings into range (as
    it does without text columns)."""
    X = np.array([["a", 1e39, 1.0], ["b", 3e39, 2.0], ["a", 2e39, 0.5]], dtype=object)
    net = fastbp.MLP([4, 4, 3], seed=0)
    net.categories = {0: ["a", "b"]}
    net.standardize(X)
    plain = fastbp.MLP([4, 4, 3], seed=0)
    coded = np.array([[1, 0, 1e39, 1.0], [0, 1, 3e39, 2.0], [1, 0, 2e39, 0.5]])
    np.testing.assert_array_equal(net.input_mean, [0, 0, 2e39, np.mean([1.0, 2.0, 0.5])])
    np.testing.assert_array_equal(net.input_scale[:2], [1, 1])   # (codes are not scaled)
    assert net.input_scale[2] == pytest.approx(np.std([1e39, 3e39, 2e39]), rel=1e-15)
    plain.set_input_scaling(net.input_mean, net.input_scale)
    np.testing.assert_array_equal(net.predict_proba(X), plain.predict_proba(coded))


# ---------------------------------------- found in review, session 44 (HL)
def test_a_text_cell_or_label_ending_in_nul_is_refused():
    """NumPy's text arrays drop trailing NULs: the cell 'red\\x00' took the
    code of 'red' (the ONNX graph, comparing text exactly, gave it none), a
    label 'a\\x00' became the class 'a', categories ['red\\x00'] were stored
    as ['red']: each is refused, naming the cell."""
    net = fastbp.MLP([3, 4, 2], seed=0)
    net.categories = {0: ["red", "blue"]}
    rows = np.array([["red\x00", 1.0], ["red", 2.0]], dtype=object)
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"X column 0 holds 'red\\x00' at index \(0, 0\) \(row"
                                         r" 0\), which ends in a NUL byte"):
        net.predict_proba(rows)
    assert np.array_equal(net.params, before)
    with pytest.raises(ValueError, match=r"categories\[0\] holds 'red\\x00', which ends in a NUL"):
        net.categories = {0: ["red\x00", "blue"]}
    assert net.categories == {0: ["red", "blue"]}
    X = np.random.default_rng(0).normal(size=(20, 3))
    plain = fastbp.MLP([3, 4, 2], seed=0)
    for y in (["a\x00" if i % 2 else "b" for i in range(20)],
              np.array(["a\x00" if i % 2 else "b" for i in range(20)], dtype=object),
              [b"a\x00" if i % 2 else b"b" for i in range(20)]):
        with pytest.raises(ValueError, match=r"y holds the label b?'a\\x00', which ends in a NUL"):
            plain.fit(X, y, epochs=1, verbose=0)
        assert plain.classes_ is None
    with pytest.raises(ValueError, match=r"classes_ holds the label 'a\\x00'"):
        plain.classes_ = ["a\x00", "b"]
    # NumPy's own scalars: named with their NUL (their repr drops it)
    with pytest.raises(ValueError, match=r"y holds the label 'a\\x00', which ends in a NUL"):
        plain.fit(X, [np.str_("a\x00") if i % 2 else np.str_("b") for i in range(20)],
                  epochs=1, verbose=0)
    # inside a label, or not at its end, a NUL is text like any other
    plain.fit(X, ["a\x00z" if i % 2 else "b" for i in range(20)], epochs=1, verbose=0)
    assert plain.classes_.tolist() == ["a\x00z", "b"]


@pytest.mark.parametrize("labels", [{"red", "blue"}, {"red": 0, "blue": 1}.keys(),
                                    (c for c in ["red", "blue"])])
def test_categories_are_a_list_in_their_inputs_order(labels):
    """A set was taken: each label's input, and the predictions, changed
    with PYTHONHASHSEED from one process to the next."""
    net = fastbp.MLP([3, 4, 2], seed=0)
    with pytest.raises(TypeError, match=r"categories\[0\] must be a list of labels in their"
                                        r" inputs' order; got a "):
        net.categories = {0: labels}
    assert net.categories is None
    net.categories = {0: ("red", "blue")}
    assert net.categories == {0: ["red", "blue"]}


# ------------------------------------------------ found in review (2026-12-07, session 47)
def test_a_label_outside_classes_set_by_hand_is_not_called_unseen_in_training():
    """classes_ set by hand before any fit, then integer codes given as y: the
    error said 'label 0 was not seen in training', of a model never trained;
    it names the label and the classes_ it is not one of, and the model is
    unchanged."""
    net = fastbp.MLP([2, 4, 2], seed=0)
    net.classes_ = ["a", "b"]
    before = snapshot(net)
    with pytest.raises(ValueError) as info:
        net.fit(np.zeros((4, 2)), np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    assert str(info.value) == "y: label 0 is not one of the model's classes_ ['a', 'b']"
    assert "training" not in str(info.value)
    assert unchanged(net, before) and len(net.history) == 0


class _Frame:
    """The part of a pandas DataFrame that fastbp reads: named columns and
    its values as an array (pandas is not a test dependency)."""

    def __init__(self, values, columns):
        self.values, self.columns = np.asarray(values), list(columns)

    def __array__(self, dtype=None, copy=None):
        return self.values if dtype is None else self.values.astype(dtype)

    def __len__(self):
        return len(self.values)


def test_a_table_with_the_features_in_another_order_is_refused_not_taken_by_position(tmp_path):
    """A model trained by the command line keeps its features' names
    (metadata['features']); a DataFrame with those columns in another order
    was taken by position, each input fed another column, predictions silently
    wrong. Refused, naming the model's order; the right order, an array, or
    unnamed columns are taken as before."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = (X[:, 0] - 2 * X[:, 2] > 0).astype(int)
    write_csv(tmp_path / "t.csv", ["a", " b", "c", "y"], np.column_stack([X, y]).tolist())
    model = str(tmp_path / "m.npz")
    assert main(["train", str(tmp_path / "t.csv"), "--epochs", "3", "--verbose", "0",
                 "--out", model]) == 0
    net = fastbp.load(model)
    assert net.metadata["features"] == ["a", "b", "c"]   # (the header's ' b' stripped)
    expected = net.predict_proba(X)
    for ok in (["a", "b", "c"], [0, 1, 2],
               ["a", " b", "c"],                    # the file's own header, as pandas reads it
               ["pixel_0", "pixel_1", "pixel_2"],   # names of another source: by position
               ["a", "B", "c"]):                    # a renamed column at its own place
        np.testing.assert_array_equal(net.predict_proba(_Frame(X, ok)), expected)
    shuffled = _Frame(X[:, [2, 0, 1]], ["c", "a", "b"])
    order = "pass X[net.metadata['features']] (the model's order: ['a', 'b', 'c'])"
    before = snapshot(net)
    for call in (net.predict, net.predict_proba, lambda F: net.evaluate(F, y),
                 lambda F: net.fit(F, y, epochs=1, verbose=0)):
        with pytest.raises(ValueError, match=re.escape(
                "X's columns hold the model's features at other positions (X's column 0, 'c',"
                " is the model's input 2); " + order)):
            call(shuffled)
    for columns, values, where in (
            (["c", 0, "b"], X[:, [2, 0, 1]], "column 0, 'c', is the model's input 2"),  # mixed
            (["a", "b", "c", "a"], X[:, [0, 1, 2, 0]], "column 3, 'a', is the model's input 0")):
        with pytest.raises(ValueError, match=re.escape(where + "); " + order)):
            net.predict(_Frame(values, columns))
    with pytest.raises(ValueError, match=re.escape("validation_data[0]'s columns hold the model's")):
        net.fit(X, y, epochs=1, verbose=0, validation_data=(shuffled, y))
    assert unchanged(net, before)
    # a pyarrow Table (fastbp's arrow extra) names its columns in column_names
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"c": X[:, 2], "a": X[:, 0], "b": X[:, 1]})
    with pytest.raises(ValueError, match="X's columns hold the model's features at other positions"):
        net.predict(table)
    net.metadata = {"features": ("a", "b", "c")}   # a tuple, as before saving
    with pytest.raises(ValueError, match="X's columns hold the model's features at other positions"):
        net.predict(shuffled)
    net.metadata = {}   # a model without names takes the columns by position, as before
    np.testing.assert_array_equal(net.predict_proba(shuffled), net.predict_proba(X[:, [2, 0, 1]]))


def test_classes_set_by_hand_in_any_order_name_their_outputs():
    """classes_ set in an order not sorted: output i is classes_[i], so a
    label is its index in the list (list.index, the reference), and predict
    gives the training labels back (review HFO: a mutation that returned the
    sorted order's positions, every hand-set classes_ of the tests being
    sorted, went uncaught; predict's accuracy fell to 0.0175 while evaluate
    read 0.9825)."""
    from fastbp import _preprocess
    classes = np.array(["dog", "cat", "bird"])
    labels = ["cat", "bird", "dog", "cat"]
    np.testing.assert_array_equal(_preprocess.label_indices(labels, classes),
                                  [list(classes).index(v) for v in labels])
    numbers = np.array([30, 10, 20])
    np.testing.assert_array_equal(_preprocess.label_indices([10.0, 20, 30], numbers), [1, 2, 0])
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 2))
    y = np.where(X[:, 0] > 0, "dog", "cat")
    net = fastbp.MLP([2, 8, 2], seed=0)
    net.classes_ = ["dog", "cat"]
    net.fit(X, y, epochs=30, verbose=0)
    assert net.evaluate(X, y)["accuracy"] > 0.9
    np.testing.assert_array_equal(net.predict(X), np.array(["dog", "cat"])[
        net.predict_proba(X).argmax(axis=1)])
    assert np.mean(net.predict(X) == y) == net.evaluate(X, y)["accuracy"]
    # trained on: output 0 is "dog" (x0 > 0), as the list names it
    assert net.predict_proba(np.array([[3.0, 0.0]]))[0, 0] > 0.5
