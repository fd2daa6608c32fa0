"""Messages that guide rather than mislead, and names accepted in any case."""
import re

import numpy as np
import pytest

import fastbp
from fastbp import landscape
from fastbp.cli import main

RNG = np.random.default_rng(0)
X4 = RNG.normal(size=(12, 4))
Y3 = np.arange(12) % 3


# ------------------------------------------------- a 1-D X: the right hint
def test_one_sample_as_1d_suggests_reshape_1_minus_1():
    """``predict(X[0])`` on a 4-feature model is one sample: the hint must
    be ``reshape(1, -1)``, and following it gives that sample's prediction."""
    net = fastbp.MLP([4, 5, 3], seed=0)
    with pytest.raises(ValueError, match=r"shape \(4,\); for one sample of the network's 4 features"
                                         r" use X\.reshape\(1, -1\)") as info:
        net.predict(X4[0])
    assert "reshape(-1, 1)" not in str(info.value)
    np.testing.assert_array_equal(net.predict_proba(X4[0].reshape(1, -1)), net.predict_proba(X4[:1]))


def test_values_of_a_one_feature_model_as_1d_suggest_reshape_minus_1_1():
    net = fastbp.MLP([1, 5, 1], output="identity", seed=0)
    x = np.linspace(-1, 1, 7)
    with pytest.raises(ValueError, match=r"shape \(7,\); the network takes 1 feature, so for one"
                                         r" sample per value use X\.reshape\(-1, 1\)") as info:
        net.predict(x)
    assert "reshape(1, -1)" not in str(info.value)
    np.testing.assert_array_equal(net.predict(x.reshape(-1, 1)), net.predict(x[:, None]))


def test_a_1d_x_that_fits_no_reading_suggests_no_reshape():
    net = fastbp.MLP([4, 3], seed=0)
    for entry in (net.predict, lambda X: net.fit(X, [0], verbose=0)):
        with pytest.raises(ValueError, match=r"shape \(6,\); the network expects sizes\[0\] = 4"
                                             r" features per sample$") as info:
            entry(np.ones(6))
        assert "reshape" not in str(info.value)


def test_validation_data_gets_the_hint_under_its_own_name():
    net = fastbp.MLP([4, 5, 3], seed=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"validation_data\[0\] must be 2-D .* use X\.reshape\(1, -1\)"):
        net.fit(X4, Y3, validation_data=(X4[0], Y3[:1]), verbose=0)
    np.testing.assert_array_equal(net.params, before)


# ------------------------------------------------- names in any case
def _same_model(a, b):
    assert (a.activations, a.output, a.loss_name, a.dtype, a.init) == \
        (b.activations, b.output, b.loss_name, b.dtype, b.init)
    np.testing.assert_array_equal(a.params, b.params)


@pytest.mark.parametrize("given,canonical", [
    (dict(activation="ReLU"), dict(activation="relu")),
    (dict(activation=["Leaky_ReLU", "TANH"]), dict(activation=["leaky_relu", "tanh"])),
    (dict(output="Sigmoid", loss="Binary_Cross_Entropy"),
     dict(output="sigmoid", loss="binary_cross_entropy")),
    (dict(output="IDENTITY", loss="Huber"), dict(output="identity", loss="huber")),
    (dict(dtype="Float64"), dict(dtype="float64")),
    (dict(init="He"), dict(init="he")),
])
def test_constructor_names_in_any_case(given, canonical):
    sizes = [4, 6, 5, 1] if given.get("output", "").lower() in ("sigmoid", "identity") else [4, 6, 5, 3]
    a = fastbp.MLP(sizes, seed=3, **given)
    b = fastbp.MLP(sizes, seed=3, **canonical)
    _same_model(a, b)
    assert repr(a) == repr(b)  # canonical names shown


@pytest.mark.parametrize("name", ["Adam", "SGD", "AdamW", "RMSprop", "LBFGS"])
def test_optimizer_names_in_any_case(name):
    a, b = fastbp.MLP([4, 5, 3], seed=1), fastbp.MLP([4, 5, 3], seed=1)
    a.fit(X4, Y3, epochs=2, batch_size=4, optimizer=name, shuffle=False, verbose=0)
    b.fit(X4, Y3, epochs=2, batch_size=4, optimizer=name.lower(), shuffle=False, verbose=0)
    assert type(a.optimizer) is type(b.optimizer) is fastbp.optim.NAMES[name.lower()]
    np.testing.assert_array_equal(a.params, b.params)


def test_on_divergence_and_early_stopping_mode_in_any_case():
    net = fastbp.MLP([3, 1], output="identity", dtype="float64", seed=0)
    X = RNG.normal(scale=30.0, size=(20, 3))
    history = net.fit(X, X @ [1.0, -2.0, 0.5], epochs=50, batch_size=4, lr=1.0, shuffle=False,
                      verbose=0, on_divergence="Stop")
    assert history.diverged and np.all(np.isfinite(net.params))
    # Higher is better: a falling loss stops at the second epoch ("min" would not).
    stop = fastbp.EarlyStopping(monitor="loss", patience=0, mode="MAX")
    history = fastbp.MLP([4, 5, 3], seed=0).fit(X4, Y3, epochs=10, lr=0.1, verbose=0, callbacks=[stop])
    assert history["loss"][1] < history["loss"][0]
    assert stop.stopped_epoch == 1


def test_landscape_names_in_any_case(tmp_path):
    pytest.importorskip("matplotlib")
    net = fastbp.MLP([4, 5, 3], seed=0)
    a = landscape.line(net, X4, Y3, steps=5, seed=0, normalise="Filter")
    b = landscape.line(net, X4, Y3, steps=5, seed=0, normalise="filter")
    assert a.normalise == "filter"
    np.testing.assert_array_equal(a.losses, b.losses)
    s = landscape.surface(net, X4, Y3, steps=3, seed=0)
    path = landscape.plot_surface(s, tmp_path / "s.png", kind="Contour")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_saved_files_keep_canonical_names(tmp_path):
    net = fastbp.MLP([4, 5, 3], activation="TanH", output="SoftMax", dtype="FLOAT64", init="Glorot",
                     seed=0)
    net.fit(X4, Y3, epochs=1, optimizer="RMSProp", verbose=0)
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as data:
        stored = {k: str(data[k]) for k in ("output", "loss", "dtype", "init", "optimizer")}
        assert list(data["activations"]) == ["tanh"]
    assert stored == dict(output="softmax", loss="cross_entropy", dtype="float64", init="glorot",
                          optimizer="rmsprop")
    back = fastbp.load(tmp_path / "m.npz")
    _same_model(back, net)


def test_unknown_names_are_still_refused():
    with pytest.raises(ValueError, match="activation must be one of .*; got 'ReLu6'"):
        fastbp.MLP([4, 5, 3], activation="ReLu6")
    net = fastbp.MLP([4, 5, 3], seed=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match="optimizer must be one of .*; got 'Adamax'"):
        net.fit(X4, Y3, optimizer="Adamax", verbose=0)
    np.testing.assert_array_equal(net.params, before)


def test_cli_choices_in_any_case(tmp_path, capsys):
    common = ["train", "--epochs", "2", "--verbose", "0", "--hidden", "8", "--seed", "1"]
    paths = []
    for spelling in (["--activation", "ReLU", "--optimizer", "Adam", "--dtype", "Float64",
                      "--task", "Classification"],
                     ["--activation", "relu", "--optimizer", "adam", "--dtype", "float64",
                      "--task", "classification"]):
        paths.append(str(tmp_path / f"m{len(paths)}.npz"))
        assert main(common + spelling + ["--out", paths[-1]]) == 0
    capsys.readouterr()
    a, b = (fastbp.load(p) for p in paths)
    _same_model(a, b)
    assert a.activations == ("relu",) and a.dtype == np.float64 and type(a.optimizer) is fastbp.Adam



@pytest.mark.parametrize("how", ["python", "cli"])
def test_export_without_onnx_names_the_extra(monkeypatch, tmp_path, capsys, how):
    """Review HDR: on a machine without the onnx extra, the README's
    `fastbp export model.npz model.onnx` printed "No module named 'google'"
    (onnx's protobuf, imported before the check that names the extra), and
    net.to_onnx() raised the same. Runs whether or not onnx is installed:
    onnx and protobuf are hidden as a machine without them has neither."""
    import sys
    for name in [m for m in list(sys.modules) if m.split(".")[0] in ("onnx", "google")]:
        monkeypatch.delitem(sys.modules, name)
    for name in ("onnx", "google", "google.protobuf", "google.protobuf.message"):
        monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError
    net = fastbp.MLP([2, 3, 2], seed=0)
    hint = r'ONNX export needs the optional package \'onnx\', which is not installed: pip install "fastbp\[onnx\]"'
    if how == "python":
        with pytest.raises(ImportError, match=hint):
            net.to_onnx()
        with pytest.raises(ImportError, match=hint):
            net.to_onnx(tmp_path / "m.onnx")
    else:
        net.save(tmp_path / "m.npz")
        assert main(["export", str(tmp_path / "m.npz"), str(tmp_path / "m.onnx")]) == 2
        assert re.search(hint, capsys.readouterr().err)
    assert not (tmp_path / "m.onnx").exists()


def test_fastbp_sklearn_imports_where_skl2onnx_is_blocked():
    """Review HDV: with skl2onnx's import blocked (sys.modules["skl2onnx"] =
    None, as tools that hide a package do), `import fastbp.sklearn` raised
    the skl2onnx install hint: it took the None entry for an imported
    skl2onnx and registered its converters. A missing skl2onnx is no
    reason to refuse the estimators."""
    import subprocess
    import sys
    pytest.importorskip("sklearn")
    probe = ("import sys; sys.modules['skl2onnx'] = None\n"
             "import fastbp.sklearn\n"
             "print(fastbp.sklearn.MLPClassifier().get_params()['solver'])")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["adam"]
