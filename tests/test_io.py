"""save / load: exact round trips, exact resume, atomic writes, bad files."""
import csv
import hashlib
import io
import re
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import fastbp


def data(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", [None, "adam", "rmsprop"])
def test_round_trip(tmp_path, dtype, optimizer):
    X, y = data()
    net = fastbp.MLP([4, 6, 5, 3], activation=["relu", "elu"], dtype=dtype, seed=3)
    if optimizer:
        net.fit(X, y, epochs=2, verbose=0, optimizer=optimizer)
    net.save(tmp_path / "m.npz")
    back = fastbp.load(tmp_path / "m.npz")
    assert repr(back) == repr(net) and back.activations == net.activations
    assert np.array_equal(back.params, net.params) and back.params.dtype == net.params.dtype
    assert np.array_equal(back._rng, net._rng)
    np.testing.assert_array_equal(back.predict_proba(X), net.predict_proba(X))
    assert back.history.history == net.history.history
    assert back.history.epoch == net.history.epoch == list(range(2 if optimizer else 0))
    if optimizer:
        assert type(back.optimizer) is type(net.optimizer) and back.optimizer.t == net.optimizer.t
        assert np.array_equal(back.optimizer.state, net.optimizer.state)
        assert np.array_equal(back.optimizer.hyper, net.optimizer.hyper)
    with zipfile.ZipFile(tmp_path / "m.npz") as z:  # plain arrays only
        assert all(name.endswith(".npy") for name in z.namelist())


RESUME = """
import sys, numpy as np, fastbp
rng = np.random.default_rng(0)
X, y = rng.normal(size=(90, 4)), rng.integers(0, 3, 90)
net = fastbp.load(sys.argv[1])
net.fit(X, y, epochs=3, batch_size=16, verbose=0)
net.save(sys.argv[1])
"""


def test_resume_in_a_fresh_process_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(90, 4)), rng.integers(0, 3, 90)
    whole = fastbp.MLP([4, 7, 3], seed=1)
    whole.fit(X, y, epochs=6, batch_size=16, lr=0.01, seed=2, verbose=0, optimizer="adam")
    half = fastbp.MLP([4, 7, 3], seed=1)
    half.fit(X, y, epochs=3, batch_size=16, lr=0.01, seed=2, verbose=0, optimizer="adam")
    half.save(tmp_path / "half.npz")
    subprocess.run([sys.executable, "-c", RESUME, str(tmp_path / "half.npz")], check=True, timeout=300)
    resumed = fastbp.load(tmp_path / "half.npz")
    assert np.array_equal(resumed.params, whole.params)
    assert resumed.optimizer.t == whole.optimizer.t
    assert np.array_equal(resumed.optimizer.state, whole.optimizer.state)
    assert len(resumed.history["loss"]) == 6
    assert resumed.history.epoch == whole.history.epoch == list(range(6))  # (review HGA)


RESUME_SCHEDULED = """
import sys, numpy as np, fastbp
rng = np.random.default_rng(0)
X, y = rng.normal(size=(90, 4)), rng.integers(0, 3, 90)
net = fastbp.load(sys.argv[1])
assert type(net.schedule).__name__ == sys.argv[2], net.schedule
net.fit(X, y, epochs=3, batch_size=16, verbose=0, validation_data=(X[:20], y[:20]))
net.save(sys.argv[1])
"""


@pytest.mark.parametrize("schedule", [
    lambda: fastbp.schedules.StepDecay(step_size=2, gamma=0.5),
    lambda: fastbp.schedules.CosineAnnealing(T_max=5, eta_min=0.001),
    lambda: fastbp.schedules.InverseScaling(power_t=0.5),
    lambda: fastbp.schedules.ReduceOnPlateau(monitor="val_loss", factor=0.5, patience=0,
                                             min_delta=0.5),
])
def test_resume_with_schedule_dropout_and_alpha_is_exact(tmp_path, schedule):
    """The schedule's state, the dropout stream and alpha travel in the file:
    3 epochs, save, load in a fresh process, 3 more = 6 epochs at once."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(90, 4)), rng.integers(0, 3, 90)
    kw = dict(seed=1, dropout=[0.3, 0.2], alpha=0.05, activation="relu")
    fit = dict(batch_size=16, lr=0.05, seed=2, verbose=0, optimizer=fastbp.SGD(lr=0.05, momentum=0.9),
               validation_data=(X[:20], y[:20]))
    whole = fastbp.MLP([4, 7, 5, 3], **kw)
    whole.fit(X, y, epochs=6, callbacks=[schedule()], **fit)
    half = fastbp.MLP([4, 7, 5, 3], **kw)
    fit["optimizer"] = fastbp.SGD(lr=0.05, momentum=0.9)
    half.fit(X, y, epochs=3, callbacks=[schedule()], **fit)
    half.save(tmp_path / "half.npz")
    name = type(half.schedule).__name__
    subprocess.run([sys.executable, "-c", RESUME_SCHEDULED, str(tmp_path / "half.npz"), name],
                   check=True, timeout=300)
    resumed = fastbp.load(tmp_path / "half.npz")
    assert np.array_equal(resumed.params, whole.params)
    assert resumed.history["lr"] == whole.history["lr"]
    assert len(set(whole.history["lr"])) > 1  # the schedule did change the lr
    assert (resumed.alpha, resumed.dropout) == (0.05, (0.3, 0.2))
    assert np.array_equal(resumed._rng, whole._rng)


def test_schedule_continues_across_fits_and_can_be_dropped():
    X, y = data()
    once, twice = (fastbp.MLP([4, 5, 3], seed=0) for _ in range(2))
    once.fit(X, y, epochs=6, lr=0.1, verbose=0, callbacks=[fastbp.schedules.ExponentialDecay(0.5)])
    twice.fit(X, y, epochs=3, lr=0.1, verbose=0, callbacks=[fastbp.schedules.ExponentialDecay(0.5)])
    twice.fit(X, y, epochs=3, verbose=0)
    assert twice.history["lr"] == once.history["lr"] == [0.1 * 0.5 ** e for e in range(6)]
    assert np.array_equal(once.params, twice.params)
    twice.schedule = None
    twice.fit(X, y, epochs=2, verbose=0)
    assert twice.history["lr"][-2:] == [0.1 * 0.5 ** 6] * 2  # left where it was
    with pytest.raises(TypeError, match="schedule"):
        twice.schedule = "cosine"
    with pytest.raises(ValueError, match="one learning-rate schedule"):
        twice.fit(X, y, verbose=0, callbacks=[fastbp.schedules.Constant(),
                                              fastbp.schedules.ExponentialDecay(0.5)])


def test_version_1_files_still_load(tmp_path):
    """A file from before alpha, dropout and schedules: one RNG state."""
    X, y = data()
    net = fastbp.MLP([4, 5, 3], seed=4)
    net.fit(X, y, epochs=2, verbose=0, optimizer="adam")
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        arrays = {k: f[k] for k in f.files   # (not in version 1)
                  if k not in ("alpha", "dropout", "schedule", "members", "input_mean",
                               "input_scale", "target_mean", "target_scale", "classes")
                  and not k.startswith("category_")}
    arrays["version"], arrays["rng"] = np.array(1), arrays["rng"][:1]
    np.savez(tmp_path / "v1.npz", **arrays)
    old = fastbp.load(tmp_path / "v1.npz")
    assert np.array_equal(old.params, net.params) and old.alpha == 0 and old.schedule is None
    assert old._rng[0] == net._rng[0]
    np.testing.assert_array_equal(old.optimizer.state, net.optimizer.state)


def test_save_replaces_atomically_and_leaves_no_temporary(tmp_path):
    net = fastbp.MLP([4, 3], seed=0)
    target = tmp_path / "m.npz"
    net.save(target)
    first = target.read_bytes()
    net.params[:] += 1
    net.save(target)
    assert target.read_bytes() != first
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]
    with pytest.raises(FileNotFoundError):
        net.save(tmp_path / "missing-folder" / "m.npz")


@pytest.mark.parametrize("relative", [True, False])
def test_saving_into_a_missing_folder_names_the_folder_and_writes_nothing(tmp_path, monkeypatch,
                                                                          relative):
    """The error names the folder the user gave, not a temporary file that
    was never made, and nothing is created anywhere."""
    monkeypatch.chdir(tmp_path)
    net = fastbp.MLP([4, 3], seed=0)
    path = os.path.join("nodir", "deeper", "m.npz")
    if not relative:
        path = str(tmp_path / path)
    with pytest.raises(FileNotFoundError) as info:
        net.save(path)
    message = str(info.value)
    assert f"cannot save the model to {path!r}: no such folder" in message
    assert info.value.filename == str(tmp_path / "nodir" / "deeper")
    assert ".fastbp-" not in message and ".tmp" not in message
    assert os.listdir(tmp_path) == []


def test_saving_under_a_file_says_it_is_not_a_folder(tmp_path):
    (tmp_path / "plain").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match=r"cannot save the model to .*: not a folder: .*plain'$"):
        fastbp.MLP([4, 3], seed=0).save(tmp_path / "plain" / "m.npz")
    assert os.listdir(tmp_path) == ["plain"] and (tmp_path / "plain").read_bytes() == b"x"


def test_save_takes_a_bytes_path_as_load_does_and_refuses_an_empty_one(tmp_path, monkeypatch):
    # bytes: "Can't mix bytes and non-bytes in path components" from the
    # temporary file, while load read the same path; "": "Is a directory"
    # (the working folder), after making a temporary file in its parent.
    monkeypatch.chdir(tmp_path)
    net = fastbp.MLP([4, 3], seed=0)
    net.save(os.fsencode(tmp_path / "m.npz"))
    np.testing.assert_array_equal(fastbp.load(os.fsencode(tmp_path / "m.npz")).params, net.params)
    with pytest.raises(ValueError, match="path must name a file; got ''"):
        net.save("")
    assert os.listdir(tmp_path) == ["m.npz"] and os.listdir(tmp_path.parent).count("m.npz") == 0


def test_a_path_ending_in_a_separator_names_a_folder(tmp_path):
    # "sub/" of a missing folder sub was written as a file named sub.
    net = fastbp.MLP([4, 3], seed=0)
    with pytest.raises(IsADirectoryError, match="it names a folder"):
        net.save(str(tmp_path / "sub") + os.sep)
    assert os.listdir(tmp_path) == []


def _bad_file(tmp_path, kind):
    net = fastbp.MLP([4, 3], seed=0)
    path = tmp_path / "m.npz"
    net.save(path)
    raw = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif kind == "garbage":
        path.write_bytes(b"not a model at all" * 10)
    elif kind == "foreign":
        np.savez(path, weights=np.ones(3))
    elif kind == "version":
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        arrays["version"] = np.array(99)
        np.savez(path, **arrays)
    elif kind == "corrupted":
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        arrays["params"] = arrays["params"] + 1
        np.savez(path, **arrays)
    elif kind == "pickled":
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        arrays["sizes"] = np.array([4, 3], dtype=object)
        np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("kind,message", [
    ("truncated", "not a readable fastbp model file"),
    ("garbage", "not a readable fastbp model file"),
    ("foreign", "not a fastbp model file"),
    ("version", "format version 99; this fastbp reads versions 1, 2, 3, 4"),
    ("corrupted", "corrupted: the parameters do not match their checksum"),
    ("pickled", "not a readable fastbp model file"),
])
def test_bad_files_raise_model_file_error(tmp_path, kind, message):
    path = _bad_file(tmp_path, kind)
    with pytest.raises(fastbp.ModelFileError, match=message):
        fastbp.load(path)


def test_sizes_that_do_not_fit_the_params_are_refused_before_a_model_is_built(tmp_path,
                                                                               monkeypatch):
    """load built and initialised a model of the file's sizes first: an
    edited 6000-6000-2 took 3.3 s and 412 MB before it said so."""
    path = tmp_path / "m.npz"
    fastbp.MLP([2, 3, 2], seed=0).save(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["sizes"] = np.array([3000, 3000, 2])  # 9 million parameters
    np.savez(path, **arrays)
    built = []
    monkeypatch.setattr(fastbp.MLP, "_initialise", lambda self, rng: built.append(self))
    with pytest.raises(fastbp.ModelFileError,
                       match=r"params of float32\(17,\) do not fit sizes \[3000, 3000, 2\]"):
        fastbp.load(path)
    assert built == []


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        fastbp.load("/nonexistent/model.npz")


def test_metadata_round_trips_and_bad_metadata_writes_nothing(tmp_path):
    net = fastbp.MLP([4, 3], seed=0)
    net.metadata = {"classes": ["cat", "dog", "eel"], "scale": [1.5, float("inf")], "n": 3}
    net.save(tmp_path / "m.npz")
    back = fastbp.load(tmp_path / "m.npz")
    assert back.metadata == net.metadata
    before = (tmp_path / "m.npz").read_bytes()
    net.metadata = {"bad": object()}
    with pytest.raises(TypeError, match="net.metadata must be JSON-serialisable"):
        net.save(tmp_path / "m.npz")
    # Found in review (session 37): keys JSON turns into text (1 and "1": one
    # value lost) and metadata that is not a dict (the command line failed on
    # it) were saved
    for bad, message in (({1: "one", "1": "uno"}, r"net.metadata has the key 1: the keys"),
                         ({"a": [{"b": {2: 0}}]}, r"net.metadata\['a'\]\[0\]\['b'\] has the key 2"),
                         (["a note"], "net.metadata must be a dict .*; got list")):
        net.metadata = bad
        with pytest.raises(TypeError, match=message):
            net.save(tmp_path / "m.npz")
    cycle = {"a": []}
    cycle["a"].append(cycle)
    net.metadata = cycle
    with pytest.raises(TypeError, match="Circular reference"):
        net.save(tmp_path / "m.npz")
    assert (tmp_path / "m.npz").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]


def test_a_schedule_another_model_ran_resumes_after_load_as_before_the_save(tmp_path):
    """Found in review (session 37): a model holding another model's schedule
    trains with a fresh copy of it (lr 0.01, 0.005); saved and loaded it
    continued the other's count and lr0 (0.025, 0.0125)."""
    from fastbp import schedules
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 2, 20)
    a = fastbp.MLP([3, 2], seed=0)
    a.fit(X, y, epochs=2, verbose=0, optimizer="sgd", lr=0.1, callbacks=[schedules.StepDecay(1, 0.5)])
    b = fastbp.MLP([3, 2], seed=1)
    b.schedule = a.schedule
    b.save(tmp_path / "b.npz")
    loaded = fastbp.load(tmp_path / "b.npz")
    assert b.fit(X, y, epochs=2, verbose=0)["lr"] == [0.01, 0.005]
    assert loaded.fit(X, y, epochs=2, verbose=0)["lr"] == [0.01, 0.005]
    np.testing.assert_array_equal(loaded.params, b.params)
    assert a.schedule.to_json() != b.schedule.to_json()   # a's own count goes on with a


def test_another_optimizer_ends_a_schedule_read_from_a_file(tmp_path):
    # (review HIE) training.md: another optimizer "ends a schedule continued
    # from an earlier fit or a model file": the loaded schedule is the loaded
    # model's own, as it was the saved model's
    from fastbp import schedules
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(64, 4)), rng.integers(0, 2, 64)
    net = fastbp.MLP([4, 5, 2], dtype="float64", seed=0)
    net.fit(X, y, epochs=2, batch_size=16, lr=0.1, optimizer="sgd", verbose=0,
            callbacks=[schedules.ExponentialDecay(0.5)])
    net.save(tmp_path / "m.npz")
    back = fastbp.load(tmp_path / "m.npz")
    assert back.schedule is not None
    for model in (net, back):
        model.optimizer = fastbp.Adam()
        assert model.schedule is None


def test_an_older_files_shorter_history_column_is_padded_before_its_epochs(tmp_path):
    # (review HIE) a metric that only a later fit reported: its values are
    # the last epochs', NaN before them
    net = fastbp.MLP([2, 3, 2], seed=0)
    path = tmp_path / "m.npz"
    net.save(path)
    data = dict(np.load(path))
    data["history_loss"], data["history_val_loss"] = np.array([1.0, 0.9, 0.8]), np.array([0.7])
    if "members" in data:
        data["members"] = np.array(sorted(set(data["members"].tolist())
                                          | {"history_loss", "history_val_loss"}))
    np.savez(path, **data)
    history = fastbp.load(path).history.history
    assert history["loss"] == [1.0, 0.9, 0.8]
    assert np.isnan(history["val_loss"][:2]).all() and history["val_loss"][2] == 0.7


def test_failed_saves_close_their_files_and_name_the_path(tmp_path):
    """Found in review (session 37): a save failing on the target (a name too
    long, a loop of links) left its temporary file's descriptor open and
    raised the bare OSError."""
    net = fastbp.MLP([3, 2], seed=0)
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    opened = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    for path in (tmp_path / ("y" * 300 + ".npz"), tmp_path / "loop"):
        for _ in range(3):
            with pytest.raises(OSError, match="cannot save the model to"):
                net.save(path)
    if opened is not None:
        assert len(os.listdir("/proc/self/fd")) == opened
    assert sorted(os.listdir(tmp_path)) == ["loop"]


def test_saving_to_a_pipe_writes_into_it_and_keeps_it(tmp_path):
    """Found in review (session 37): a device or pipe at the path was replaced
    by a regular file (as root, /dev/null too): open() writes into it."""
    import stat
    import threading
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    net = fastbp.MLP([3, 2], seed=0)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    net.save(fifo)
    reader.join(timeout=30)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    (tmp_path / "copy.npz").write_bytes(got[0])
    np.testing.assert_array_equal(fastbp.load(tmp_path / "copy.npz").params, net.params)
    before = os.stat("/dev/null")
    net.save("/dev/null")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino,
                                                                            before.st_rdev)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_read_only_model_file_is_not_replaced(tmp_path, monkeypatch):
    """Found in review (session 37): save replaced a 0444 file, which open()
    refuses (to all but root: as root, what os.access says for another user)."""
    net = fastbp.MLP([3, 2], seed=0)
    path = tmp_path / "m.npz"
    net.save(path)
    before = path.read_bytes()
    os.chmod(path, 0o444)
    if os.geteuid() == 0:
        access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: access(p, mode) and mode != os.W_OK)
    with pytest.raises(PermissionError, match="cannot save the model to .*: the file is not"
                                              " writable"):
        fastbp.MLP([3, 2], seed=1).save(path)
    assert path.read_bytes() == before


def test_an_archive_that_would_expand_far_beyond_its_size_is_refused(tmp_path):
    """Found in review (session 37): load read every member before any check;
    a 400 kB file holding 400 MB of deflated zeros took 381 MB."""
    net, path = _trained(tmp_path)
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bomb, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        header = np.lib.format.header_data_from_array_1_0(np.zeros(50_000_000))
        junk = zipfile.ZipInfo("history_junk.npy")
        junk.compress_type = zipfile.ZIP_DEFLATED
        with dst.open(junk, "w", force_zip64=True) as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            chunk = bytes(1 << 20)
            for _ in range(400):
                fh.write(chunk)
    with pytest.raises(fastbp.ModelFileError, match="would expand to") as refused:
        fastbp.load(bomb)
    assert os.path.getsize(bomb) < 3 << 20
    # Review FC: named once ("... not a readable fastbp model file: '...' is
    # not a fastbp model file: its ... would expand": wrapped twice)
    assert str(refused.value).count("bomb.npz") == 1 and "not a readable" not in str(refused.value)


def test_shallow_copy_mid_training_leaves_the_optimizer_state_live():
    import copy
    X, y = data()
    net, twin = fastbp.MLP([4, 5, 3], seed=0), fastbp.MLP([4, 5, 3], seed=0)

    class Snap:
        def on_epoch_end(self, epoch, logs):
            copy.copy(net)

    net.fit(X, y, epochs=3, optimizer="adam", verbose=0, callbacks=[Snap()])
    twin.fit(X, y, epochs=3, optimizer="adam", verbose=0)
    np.testing.assert_array_equal(net.optimizer.state, twin.optimizer.state)


@pytest.mark.parametrize("name,content", [
    ("data.csv", b"a,b,label\n1,2,x\n3,4,y\n"),
    ("weights.npy", None),
    ("empty.npz", b""),
])
def test_a_file_that_is_not_an_npz_archive_is_named_as_such(tmp_path, name, content):
    """Issue 11, item 15: not NumPy's advice about pickled data and allow_pickle."""
    path = tmp_path / name
    if content is None:
        np.save(path, np.ones(3))
    else:
        path.write_bytes(content)
    with pytest.raises(fastbp.ModelFileError) as info:
        fastbp.load(path)
    message = str(info.value)
    assert f"{str(path)!r} is not a readable fastbp model file: it is not an .npz archive" in message
    assert "pickle" not in message.lower()


DATA = os.path.join(os.path.dirname(__file__), "data")


def _csv(name):
    with open(os.path.join(DATA, name), newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def test_version_2_files_of_the_old_command_line_predict_as_it_did():
    """Files written by the command line of commit 40824a4 (tests/data/README.md):
    the scaling and class names it kept in metadata become the model's own, so
    Python's predict on raw rows gives what that command line printed."""
    header, rows = _csv("flowers.csv")
    X = np.array([[float(v) for v in r[:4]] for r in rows])
    printed = [r[0] for r in _csv("v2_flowers_predicted.csv")[1]]
    with np.load(os.path.join(DATA, "v2_flowers.npz")) as f:
        assert int(f["version"]) == 2 and "x_mean" in str(f["metadata"])
    net = fastbp.load(os.path.join(DATA, "v2_flowers.npz"))
    assert net.classes_.tolist() == ["setosa", "versicolor", "virginica"]
    assert net.predict(X).tolist() == printed and len(set(printed)) == 3
    assert net.input_mean.shape == (4,) and net.input_scale.shape == (4,)
    assert "x_mean" not in net.metadata and "classes" not in net.metadata  # moved, not copied
    assert net.metadata["features"] == header[:4]

    header, rows = _csv("houses.csv")
    X = np.array([[float(v) for v in r[:2]] for r in rows])
    printed = np.array([float(r[0]) for r in _csv("v2_houses_predicted.csv")[1]])
    net = fastbp.load(os.path.join(DATA, "v2_houses.npz"))
    assert net.target_mean is not None and "y_mean" not in net.metadata
    np.testing.assert_allclose(net.predict(X), printed, rtol=1e-12)


def test_a_version_2_model_saved_again_is_the_current_version_and_the_same(tmp_path):
    net = fastbp.load(os.path.join(DATA, "v2_flowers.npz"))
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as f:
        assert int(f["version"]) == 4 and f["category_columns"].size == 0 and f["classes"].tolist() == ["setosa", "versicolor", "virginica"]
    back = fastbp.load(tmp_path / "m.npz")
    X = np.random.default_rng(0).normal(5, 2, size=(20, 4))
    assert back.predict(X).tolist() == net.predict(X).tolist()
    np.testing.assert_array_equal(back.input_scale, net.input_scale)


def test_saving_while_another_thread_trains_writes_a_file_that_loads(tmp_path, monkeypatch):
    """The kernels release the GIL, so a fit in another thread updates the
    params while save runs. The file must hold the params its checksum was
    computed from (one snapshot), or load refuses it as corrupted. The wait
    after the checksum widens the window in which the fit moves on."""
    import threading
    import time
    X, y = fastbp.datasets.load_digits()
    X, y = X[:400] / 16, y[:400]
    net = fastbp.MLP([64, 32, 10], seed=0)
    net.fit(X, y, epochs=1, verbose=0)  # compiled before the race
    digest = fastbp._modelfile._digest

    def slow_digest(params):
        value = digest(params)
        time.sleep(0.05)
        return value

    monkeypatch.setattr(fastbp._modelfile, "_digest", slow_digest)
    stop = threading.Event()

    class Until:
        def on_epoch_end(self, epoch, logs):
            return stop.is_set()

    trainer = threading.Thread(target=net.fit, args=(X, y),
                               kwargs=dict(epochs=10**6, batch_size=8, verbose=0, callbacks=[Until()]))
    trainer.start()
    try:
        for i in range(5):
            path = tmp_path / f"snapshot{i}.npz"
            net.save(path)
            loaded = fastbp.load(path)  # raised ModelFileError (checksum) before
            assert np.all(np.isfinite(loaded.params))
    finally:
        stop.set()
        trainer.join()


def test_any_seed_numpy_takes_round_trips_without_pickle(tmp_path):
    # NumPy's own entropy (SeedSequence().entropy) is a 128-bit int.
    for seed in (0, 2 ** 63 - 1, 2 ** 63, 2 ** 64, 2 ** 128 + 7):
        net = fastbp.MLP([3, 4, 2], seed=seed)
        net.save(tmp_path / "m.npz")
        with np.load(tmp_path / "m.npz", allow_pickle=False) as f:   # nothing pickled
            assert all(not f[k].dtype.hasobject for k in f.files)
        back = fastbp.load(tmp_path / "m.npz")
        assert back.seed == seed
        np.testing.assert_array_equal(back.params, fastbp.MLP([3, 4, 2], seed=seed).params)


def test_subclasses_of_the_optimizers_save_as_the_optimizer_they_run_as(tmp_path):
    from fastbp.optim import SklearnAdam, SklearnSGD

    class MyAdam(fastbp.Adam):
        pass
    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    for opt, cls in [(MyAdam(lr=0.01), fastbp.Adam), (SklearnAdam(lr=0.01), SklearnAdam),
                     (SklearnSGD(lr=0.05, momentum=0.5), SklearnSGD)]:
        net = fastbp.MLP([3, 4, 2], seed=0)
        net.fit(X, y, epochs=2, optimizer=opt, verbose=0)
        net.save(tmp_path / "m.npz")
        back = fastbp.load(tmp_path / "m.npz")
        assert type(back.optimizer) is cls and back.optimizer.code == opt.code
        np.testing.assert_array_equal(back.optimizer.hyper, opt.hyper)
        np.testing.assert_array_equal(back.optimizer.state, opt.state)
        net.fit(X, y, epochs=2, verbose=0)        # both go on alike
        back.fit(X, y, epochs=2, verbose=0)
        np.testing.assert_array_equal(back.params, net.params)

    class Mine(fastbp.optim.Optimizer):
        pass
    net = fastbp.MLP([3, 4, 2], seed=0)
    net.optimizer = Mine(0.1, 0.0)
    with pytest.raises(TypeError, match="Mine"):
        net.save(tmp_path / "other.npz")
    assert not (tmp_path / "other.npz").exists()


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links")
def test_saving_through_a_symbolic_link_writes_the_file_it_points_to(tmp_path):
    real, link = tmp_path / "real.npz", tmp_path / "link.npz"
    net = fastbp.MLP([3, 4, 2], seed=0)
    net.save(real)
    os.symlink(real, link)
    net.params[:] = 0
    net.save(link)
    assert os.path.islink(link)
    np.testing.assert_array_equal(fastbp.load(real).params, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.npz", "real.npz"]


# ------------------------------------------------ found in review (2026-12-05)
def _rewritten(path, out, change):
    """The model file at path written again to out, its arrays changed by change(dict)."""
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    change(arrays)
    np.savez(out, **arrays)
    return out


def _trained(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    net = fastbp.MLP([3, 4, 2], seed=0)
    net.fit(X, y, epochs=2, verbose=0, optimizer="adam")
    path = tmp_path / "m.npz"
    net.save(path)
    return net, path


@pytest.mark.parametrize("member", ["README.txt", "__MACOSX/", "metadata.npy"])
def test_a_member_that_is_no_array_is_a_model_file_error(tmp_path, member):
    """Review HCM: a note added with a zip tool, a folder entry of a macOS
    re-zip, or a member whose .npy header was lost reached the checks as
    bytes: a bare AttributeError naming neither the file nor the member."""
    net, path = _trained(tmp_path)
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info.filename, b"{}" if info.filename == member else data)
        if member not in zin.namelist():
            zout.writestr(member, b"trained on 2024-01-01" if "." in member else b"")
    name = member[:-len(".npy")] if member.endswith(".npy") else member
    with pytest.raises(fastbp.ModelFileError, match=re.escape(
            f"{str(bad)!r} is not a valid fastbp model file: its member(s) {name!r} are not"
            " NumPy arrays")):
        fastbp.load(bad)


@pytest.mark.parametrize("member", ["members", "activations", "sizes"])
@pytest.mark.parametrize("descr", ["<U0", "|V0"])
def test_a_member_of_elements_of_no_bytes_is_refused_at_once(tmp_path, member, descr):
    """Review HDM: a .npy header declaring 10**15 elements of a zero-size
    dtype takes no room in the file (NumPy returns the array at once), and
    load then read the elements one by one: years for a 7 kB file. Refused
    as a damaged file before anything reads them."""
    from numpy.lib import format as npformat
    net, path = _trained(tmp_path)
    head = io.BytesIO()
    npformat.write_array_header_1_0(head, {"descr": descr, "fortran_order": False,
                                           "shape": (10 ** 15,)})
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            zout.writestr(info.filename, head.getvalue() if info.filename == member + ".npy"
                          else data)
    assert bad.stat().st_size < 20_000
    with pytest.raises(fastbp.ModelFileError, match=re.escape(
            f"{str(bad)!r} is not a valid fastbp model file: its member(s) {member!r} (10"
            f"00000000000000 of dtype {np.dtype(descr)}) declare elements of no bytes")):
        fastbp.load(bad)
    fastbp.load(path)   # (the file it was made from loads)


def test_a_file_missing_an_array_it_lists_is_corrupted(tmp_path):
    # A one-byte flip in the zip's directory could hide a member: the model
    # loaded with its history silently gone.
    net, path = _trained(tmp_path)
    assert len(fastbp.load(path).history) == 2
    hidden = _rewritten(path, tmp_path / "hidden.npz", lambda a: a.pop("history_loss"))
    with pytest.raises(fastbp.ModelFileError, match="does not hold: history_loss"):
        fastbp.load(hidden)
    # A file from before the list, without its loss column: its other
    # columns out of step with no epochs (review HBF: it loaded, and no save
    # of the model could then write it): refused. Without any history: read.
    older = _rewritten(path, tmp_path / "older.npz",
                       lambda a: (a.pop("members"), a.pop("history_loss")))
    with pytest.raises(fastbp.ModelFileError, match="the history has 0 epochs of loss but more"):
        fastbp.load(older)
    bare = _rewritten(path, tmp_path / "bare.npz", lambda a: [
        a.pop(k) for k in list(a) if k == "members" or k.startswith("history_")])
    loaded = fastbp.load(bare)
    assert len(loaded.history) == 0 and loaded.history.history.get("loss", []) == []
    loaded.save(tmp_path / "again.npz")


@pytest.mark.parametrize("member", ["optimizer_state", "history_loss", "params"])
def test_a_damaged_directory_record_is_refused_not_a_lost_history(tmp_path, member):
    """One flipped bit in a record of the zip's directory (its comment length
    + 256) makes zipfile read the records after it as that comment: they
    vanish. The list of members was written last, vanished with them, and
    the file loaded as one from before the list, its history gone."""
    _, path = _trained(tmp_path)
    raw = bytearray(path.read_bytes())
    record = raw.find(member.encode() + b".npy", raw.find(b"PK\x01\x02")) - 46
    assert raw[record:record + 4] == b"PK\x01\x02"
    raw[record + 33] ^= 0x01   # the high byte of the record's comment length
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(raw))
    with pytest.raises(fastbp.ModelFileError, match="corrupted|not a"):
        fastbp.load(bad)


def _with_hyper(a, i, value):
    hyper = a["optimizer_hyper"].copy()
    hyper[i] = value
    a["optimizer_hyper"] = hyper


@pytest.mark.parametrize("edit, message", [
    (lambda a: _with_hyper(a, 0, np.nan), r"optimizer_hyper must be 9 finite numbers >= 0; got \[nan,"),
    (lambda a: _with_hyper(a, 5, -0.5), r"optimizer_hyper must be 9 finite numbers >= 0"),
    (lambda a: a.update(optimizer_hyper=a["optimizer_hyper"][:3]), "optimizer_hyper must be 9"),
    (lambda a: a.update(optimizer_t=np.array(-5)), r"optimizer_t \(the optimizer's step count\)"
                                                   r" must be in \[0, 2\*\*63\); got -5"),
    # Found in review (session 37): these three loaded, and the next fit failed
    # (OverflowError: int too big to convert; a divergence)
    (lambda a: a.update(optimizer_t=np.array(2 ** 63, dtype=np.uint64)),
     r"must be in \[0, 2\*\*63\); got 9223372036854775808"),
    (lambda a: _with_hyper(a, 4, 1.0), "optimizer_hyper holds beta1 = 1.0 for Adam, which takes"
                                       " beta1 < 1"),
    (lambda a: _with_hyper(a, 6, 0.0), "holds eps = 0.0 for Adam, which takes eps > 0"),
    (lambda a: a.update(optimizer_state=np.where(np.arange(a["optimizer_state"].size) == 3, np.nan,
                                                 a["optimizer_state"].ravel()).reshape(2, -1)),
     "optimizer_state holds NaN values"),
    (lambda a: a.update(optimizer=np.array("adamx")), "unknown optimizer 'adamx'; this fastbp"
                                                      " knows"),
    (lambda a: a.update(history_loss=a["history_loss"][:1]),
     r"the history has 1 epochs of loss but more entries of \{"),
], ids=["nan lr", "negative beta", "short hyper", "negative t", "t past int64", "beta1 of 1",
        "eps of 0", "nan state", "unknown optimizer", "short loss history"])
def test_an_optimizer_or_history_no_fit_could_leave_is_refused_at_load(tmp_path, edit, message):
    """A file whose checksums hold but whose optimizer or history no fit
    could have written (a hand-edited file): refused by name at load, not
    loaded to fail at the next fit (a NaN learning rate diverged there)."""
    net, path = _trained(tmp_path)
    bad = _rewritten(path, tmp_path / "bad.npz", edit)
    with pytest.raises(fastbp.ModelFileError, match=message):
        fastbp.load(bad)


def test_an_optimizer_state_of_the_wrong_shape_is_refused_at_load(tmp_path):
    net, path = _trained(tmp_path)
    bad = _rewritten(path, tmp_path / "bad.npz",
                     lambda a: a.update(optimizer_state=a["optimizer_state"][:1]))
    with pytest.raises(fastbp.ModelFileError, match=r"optimizer_state must be \(2, "):
        fastbp.load(bad)


def test_a_write_that_fails_midway_names_the_file_and_keeps_the_old_one(tmp_path):
    # A full disk while writing raised the bare "No space left on device".
    import errno

    from fastbp import _modelfile
    net, path = _trained(tmp_path)
    before = path.read_bytes()

    def full_disk(fh):
        fh.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="cannot save the model to .*m.npz.*No space left") as err:
        _modelfile.write_atomically(path, full_disk, "save the model", ".npz.tmp")
    assert err.value.errno == errno.ENOSPC
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["m.npz"]


class _Halve(fastbp.schedules.Schedule):
    """A schedule of the user's own: lr0 / 2^epoch."""

    def __init__(self):
        self.lr0 = None

    def lr(self, epoch, lr0):
        return lr0 / 2 ** epoch


def test_a_schedule_of_the_users_own_trains_but_is_not_saved_as_unloadable(tmp_path):
    """save wrote such a model, and load refused the whole file ("not a saved
    fastbp schedule"): weights, optimizer and history unreadable; so were the
    checkpoints of a fit with one."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    net = fastbp.MLP([3, 4, 2], seed=0)
    assert net.fit(X, y, epochs=3, lr=0.4, verbose=0, callbacks=[_Halve()])["lr"] == [0.4, 0.2, 0.1]
    path = tmp_path / "m.npz"
    path.write_bytes(b"an old file")
    with pytest.raises(TypeError, match=r"its schedule .* is a class of its own \(_Halve\);"
                                        r" .* set net.schedule = None before saving"):
        net.save(path)
    assert path.read_bytes() == b"an old file" and len(list(tmp_path.iterdir())) == 1
    before = net.params.copy()
    with pytest.raises(TypeError, match="is a class of its own"):
        net.fit(X, y, epochs=2, verbose=0, callbacks=[_Halve(),
                                                      fastbp.ModelCheckpoint(tmp_path / "c.npz")])
    assert np.array_equal(net.params, before) and len(net.history) == 3
    net.schedule = None
    net.save(path)
    assert fastbp.load(path).schedule is None and len(fastbp.load(path).history) == 3


def test_saving_never_sets_the_process_umask(tmp_path, monkeypatch):
    """Reading the umask to give a new file open()'s permissions set it to 0
    for a moment, for the whole process: a file another thread created then
    came out world-writable (3 of 318,539 under umask 022)."""
    def no(*args):
        raise AssertionError("os.umask called: it changes the umask of every thread")
    monkeypatch.setattr(os, "umask", no)
    net = fastbp.MLP([2, 3, 2], seed=0)
    net.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(fastbp.load(tmp_path / "m.npz").params, net.params)
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_the_command_line_reads_a_file_whose_metadata_is_not_a_dict(tmp_path, capsys):
    """Found in review (session 37): an older save took any JSON metadata (a
    list); predict and info then failed with a traceback."""
    from fastbp.cli import main
    net = fastbp.MLP([3, 2], seed=0)
    net.save(tmp_path / "m.npz")
    bad = _rewritten(tmp_path / "m.npz", tmp_path / "list.npz",
                     lambda a: a.update(metadata=np.array('["a note"]')))
    rows = np.arange(12.0).reshape(4, 3)
    np.savetxt(tmp_path / "d.csv", rows, delimiter=",", header="a,b,c", comments="")
    assert main(["predict", str(bad), str(tmp_path / "d.csv")]) in (0, None)
    out = capsys.readouterr().out.split()   # (a model saved from Python: no header)
    assert [int(v) for v in out] == list(net.predict(rows))
    assert main(["info", str(bad)]) in (0, None)
    assert 'metadata: ["a note"]' in capsys.readouterr().out


def test_a_float32_adam_state_that_overflowed_saves_and_loads(tmp_path):
    """Found in review of the day's diff (session 37): an Adam second moment
    that overflows to inf in a float32 fit that did not diverge (its step
    for that weight is 0) was refused at load, as a NaN state is."""
    rng = np.random.default_rng(0)
    X = (100 * rng.normal(size=(8, 2))).astype(np.float32)
    net = fastbp.MLP([2, 1], output="identity", seed=0, dtype="float32")
    history = net.fit(X, np.full(8, 1e19), epochs=2, batch_size=8, optimizer="adam", lr=1e-3,
                      verbose=0, on_divergence="raise")
    assert not history.diverged and np.isinf(net.optimizer.state).any()
    net.save(tmp_path / "inf.npz")
    back = fastbp.load(tmp_path / "inf.npz")
    np.testing.assert_array_equal(back.optimizer.state, net.optimizer.state)


def test_saving_to_dev_stdout_into_a_pipe_writes_the_model(tmp_path):
    """Found in review of the day's diff (session 37): /dev/stdout into a pipe
    failed ("No such file or directory: '/proc/<pid>/fd'": the link's
    realpath is no path); the path itself is opened, as open() does."""
    if not os.path.exists("/dev/stdout"):
        pytest.skip("no /dev/stdout")
    code = "import fastbp; fastbp.MLP([3, 2], seed=0).save('/dev/stdout')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    (tmp_path / "piped.npz").write_bytes(done.stdout)
    np.testing.assert_array_equal(fastbp.load(tmp_path / "piped.npz").params,
                                  fastbp.MLP([3, 2], seed=0).params)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
def test_a_read_only_target_is_refused_before_any_training(tmp_path, monkeypatch, capsys):
    """Found in review of the day's diff (session 37): a ModelCheckpoint or
    `fastbp train --out` on a read-only file trained first (an epoch; the
    whole run) and failed at the save, the model changed or lost."""
    from fastbp.cli import main
    path = tmp_path / "kept.npz"
    fastbp.MLP([4, 3], seed=0).save(path)
    before = path.read_bytes()
    os.chmod(path, 0o444)
    if os.geteuid() == 0:   # (root writes anything: what os.access says for another user)
        access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: access(p, mode) and mode != os.W_OK)
    X, y = data()
    net = fastbp.MLP([4, 5, 3], seed=0)
    params = net.params.copy()
    with pytest.raises(PermissionError, match="cannot save checkpoints to .*kept.npz'?: the file"
                                              " is not writable"):
        net.fit(X, y, epochs=2, verbose=0, callbacks=[fastbp.ModelCheckpoint(str(path))])
    np.testing.assert_array_equal(net.params, params)
    assert len(net.history) == 0
    assert main(["train", "digits", "--epochs", "1", "--out", str(path)]) == 2
    out, err = capsys.readouterr()
    assert "the file is not writable" in err and "epoch" not in out.lower()
    assert path.read_bytes() == before


@pytest.mark.parametrize("empty", ["input_mean", "input_scale", "target_mean", "target_scale"])
def test_a_file_with_half_a_scaling_is_refused(tmp_path, empty):
    # (found in review, session 38: an empty input_mean beside its scale
    # loaded as mean 0, no error; save writes both or neither)
    X = np.random.default_rng(0).normal(size=(10, 2))
    net = fastbp.MLP([2, 3, 1], output="identity", seed=0).standardize(X, X[:, 0])
    net.save(tmp_path / "p.npz")
    data = dict(np.load(tmp_path / "p.npz"))
    data[empty] = np.zeros(0)
    np.savez(tmp_path / "q.npz", **data)
    kind = empty.split("_")[0]
    with pytest.raises(fastbp.ModelFileError, match=f"{kind}_mean and {kind}_scale must both be"
                                                    " empty or both hold the scaling"):
        fastbp.load(tmp_path / "q.npz")


def _saved_after_a_fit(path, optimizer):
    """A model saved to path after an epoch with optimizer; the file loads."""
    rng = np.random.default_rng(0)
    net = fastbp.MLP([3, 4, 2], seed=0)
    net.fit(rng.normal(size=(20, 3)), rng.integers(0, 2, 20), epochs=1, verbose=0,
            optimizer=optimizer)
    net.save(path)
    fastbp.load(path)   # as saved: loads


@pytest.mark.parametrize("optimizer, edit, message", [
    (fastbp.SGD(lr=0.1, momentum=0.9, nesterov=True), lambda a: _with_hyper(a, 2, 0.5),
     "holds nesterov with momentum = 0.9 and dampening = 0.5; SGD's nesterov needs"),
    (fastbp.SGD(lr=0.1, momentum=0.9, nesterov=True), lambda a: _with_hyper(a, 1, 0.0),
     "holds nesterov with momentum = 0.0"),
    (fastbp.SGD(lr=0.1, momentum=0.9), lambda a: _with_hyper(a, 3, 7.0),
     "holds nesterov = 7.0; it is 0 or 1"),
])
def test_sgd_settings_its_constructor_refuses_are_refused_at_load(tmp_path, optimizer, edit,
                                                                   message):
    """Review EB: a hand-edited file with Nesterov and dampening (or a
    nesterov of 7) loaded, and the next fit ran an update neither
    fastbp.SGD(...) nor torch.optim.SGD allows."""
    with pytest.raises(ValueError, match="nesterov needs momentum > 0 and dampening = 0"):
        fastbp.SGD(momentum=0.9, nesterov=True, dampening=0.5)
    _saved_after_a_fit(tmp_path / "m.npz", optimizer)
    bad = _rewritten(tmp_path / "m.npz", tmp_path / "bad.npz", edit)
    with pytest.raises(fastbp.ModelFileError, match=message):
        fastbp.load(bad)


def _with_state(row, value=None, dtype=None):
    def change(a):
        state = a["optimizer_state"].astype(dtype or a["optimizer_state"].dtype)
        if value is not None:
            state[row, 0] = value
        a["optimizer_state"] = state
    return change


@pytest.mark.parametrize("optimizer, edit, message", [
    (fastbp.Adam(), _with_state(1, -1.0), r"negative mean of squared gradients \(row 1\) for Adam"),
    (fastbp.Adam(), _with_state(0, np.inf), r"infinite moment or momentum \(row 0\) for Adam"),
    (fastbp.SGD(lr=0.01, momentum=0.9), _with_state(0, np.inf), r"infinite moment .*for SGD"),
    (fastbp.RMSprop(), _with_state(0, -1.0), r"negative mean of squared gradients \(row 0\)"),
    (fastbp.RMSprop(momentum=0.5), _with_state(1, -np.inf), r"infinite moment .*\(row 1\)"),
    (fastbp.Adam(), _with_state(0, dtype=np.float64), "optimizer_state of float64 in a float32"),
    (fastbp.Adam(), _with_state(0, dtype=np.complex128), "optimizer_state of complex128"),
])
def test_an_optimizer_state_no_fit_could_make_is_refused(tmp_path, optimizer, edit, message):
    """Review FC: a negative mean of squares or an infinite moment loaded,
    and the next fit diverged blaming the learning rate; a float64 state
    was rounded into a float32 model (float64 params are refused)."""
    _saved_after_a_fit(tmp_path / "m.npz", optimizer)
    with pytest.raises(fastbp.ModelFileError, match=message):
        fastbp.load(_rewritten(tmp_path / "m.npz", tmp_path / "bad.npz", edit))
    if "negative" in message:   # a float32 fit's +inf mean of squares loads, as save wrote it
        loaded = fastbp.load(_rewritten(tmp_path / "m.npz", tmp_path / "inf.npz",
                                        _with_state(1 if "row 1" in message else 0, np.inf)))
        assert np.isinf(loaded.optimizer.state).sum() == 1


@pytest.mark.parametrize("change", [
    dict(category_columns=np.array([1, 1]), category_sizes=np.array([1, 2])),  # read as 2 labels
    dict(category_columns=np.array([1, 1]), category_sizes=np.array([2, 1])),  # read as 1
    dict(category_columns=np.zeros(0, np.int64)),    # read as no categories, 6 columns
    dict(category_sizes=np.array([7])),              # the last size never checked
    dict(category_sizes=np.array([3.0])),
    dict(category_columns=np.array([1, 2]), category_sizes=np.array([3, 0])),
])
def test_categories_whose_arrays_disagree_are_refused(tmp_path, change):
    """Review FC: edited category arrays loaded as another model (columns
    merged, labels dropped, sizes unchecked)."""
    net = fastbp.MLP([6, 5, 3], seed=1)
    net.categories = {1: ["blue", "green", "red"]}
    net.save(tmp_path / "m.npz")
    assert fastbp.load(tmp_path / "m.npz").categories == {1: ["blue", "green", "red"]}
    with pytest.raises(fastbp.ModelFileError, match="its categories do not agree"):
        fastbp.load(_rewritten(tmp_path / "m.npz", tmp_path / "bad.npz",
                               lambda a: a.update(change)))


@pytest.mark.parametrize("edit, message", [
    (lambda a: [a.pop(k) for k in ("members", "alpha", "dropout")],
     "has format version 4 but lacks the arrays alpha, dropout"),
    (lambda a: [a.pop(k) for k in ("members", "schedule", "metadata")],
     "lacks the arrays schedule, metadata"),
    (lambda a: a.update(sizes=np.array([3.9, 4.5, 2.2])), r"sizes must hold integers; got float64"),
    (lambda a: a.update(seed=np.array(7.8)), "seed must hold integers"),
    (lambda a: a.update(optimizer_t=np.array(2.5)), "optimizer_t must hold integers"),
    (lambda a: a.update(version=np.array(4.0)), "has no readable format version"),
    (lambda a: a.update(rng=a["rng"][:1]), r"rng must hold 2 uint64 state\(s\) in a version 4"),
])
def test_a_file_missing_what_its_version_holds_or_with_fractional_counts_is_refused(
        tmp_path, edit, message):
    """Review FC: a version 4 file without alpha, dropout, schedule and
    metadata loaded with alpha 0, no dropout, no schedule; float sizes
    [3.9, 4.5, 2.2] and seed 7.8 loaded as (3, 4, 2) and 7."""
    net, path = _trained(tmp_path)
    with pytest.raises(fastbp.ModelFileError, match=message):
        fastbp.load(_rewritten(path, tmp_path / "bad.npz", edit))


def test_a_version_2_file_with_half_the_input_scaling_is_refused(tmp_path):
    """Review FC: x_mean without x_scale in a version 2 file's metadata read as
    scale 1 (version 3 and later refuse half a scaling)."""
    import json
    net, path = _trained(tmp_path)
    v3 = ("input_mean", "input_scale", "target_mean", "target_scale", "classes",
          "category_columns", "category_sizes", "category_labels", "members")

    def to_v2(meta):
        def change(a):
            for key in v3:
                a.pop(key)
            a["version"] = np.array(2)
            a["metadata"] = np.array(json.dumps({"task": "classification", **meta}))
        return change
    good = fastbp.load(_rewritten(path, tmp_path / "v2.npz",
                                  to_v2({"x_mean": [1.0, 2.0, 3.0], "x_scale": [2.0, 2.0, 4.0]})))
    np.testing.assert_array_equal(good.input_scale, [2.0, 2.0, 4.0])
    with pytest.raises(fastbp.ModelFileError, match="x_mean without x_scale"):
        fastbp.load(_rewritten(path, tmp_path / "bad.npz", to_v2({"x_mean": [1.0, 2.0, 3.0]})))


@pytest.mark.parametrize("protocol", [0, 1, 2])
def test_a_model_pickles_with_every_protocol(protocol):
    """Review FC: protocols 0 and 1 raised TypeError (the kernel codes'
    __slots__ class had no __reduce__)."""
    import pickle
    X, y = data()
    net = fastbp.MLP([4, 5, 3], seed=0)
    net.fit(X, y, epochs=1, verbose=0)
    twin = pickle.loads(pickle.dumps(net, protocol=protocol))
    np.testing.assert_array_equal(twin.predict_proba(X), net.predict_proba(X))
    twin.fit(X, y, epochs=1, verbose=0)
    net.fit(X, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(twin.params, net.params)


def test_a_loaded_model_whose_metadata_is_not_a_dict_says_how_to_save_it(tmp_path):
    """Review FC: an older fastbp's save took any JSON value as metadata; such
    a file loads, and save's refusal says what to do."""
    net, path = _trained(tmp_path)
    old = fastbp.load(_rewritten(path, tmp_path / "old.npz",
                                 lambda a: a.update(metadata=np.array("[1, 2, 3]"))))
    assert old.metadata == [1, 2, 3]
    with pytest.raises(TypeError, match="got list .*set net.metadata to a dict"):
        old.save(tmp_path / "again.npz")
    old.metadata = {"columns": [1, 2, 3]}
    old.save(tmp_path / "again.npz")


def test_a_path_holding_a_nul_is_refused_by_name(tmp_path):
    """Review FG: Python's bare "embedded null byte" named no path."""
    net = fastbp.MLP([3, 2], seed=0)
    bad = str(tmp_path / "a\0b.npz")
    for call in (lambda: net.save(bad), lambda: fastbp.load(bad)):
        with pytest.raises(ValueError, match=r"path must not hold a NUL character; got '.*a\\x00b"):
            call()
    assert os.listdir(tmp_path) == []


def test_a_version_2_file_from_before_the_command_line_loads_and_trains_on():
    """Review FH: the first version 2 files (commit 40871f8) hold no metadata;
    the check that a file holds what its version writes refused them."""
    path = os.path.join(os.path.dirname(__file__), "data", "v2_early_adam.npz")
    with np.load(path) as f:
        assert int(f["version"]) == 2 and "metadata" not in f.files
        params, state, t = f["params"], f["optimizer_state"], int(f["optimizer_t"])
    net = fastbp.load(path)
    np.testing.assert_array_equal(net.params, params)
    np.testing.assert_array_equal(net.optimizer.state, state)
    assert net.optimizer.t == t and net.metadata == {}
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    want = np.loadtxt(os.path.join(os.path.dirname(__file__), "data", "v2_early_adam_proba.csv"),
                      delimiter=",", dtype=np.float32)
    np.testing.assert_allclose(net.predict_proba(X[:8].astype(np.float32)), want, rtol=2e-6)
    net.fit(X, (X[:, 0] > 0).astype(np.int64), epochs=1, batch_size=64, verbose=0)
    assert net.optimizer.t == t + 1


# ---------------------------------------- found in review, session 44 (HC)
def _fitted_for_history():
    X = np.random.default_rng(0).normal(size=(60, 5))
    net = fastbp.MLP([5, 4, 3], seed=1)
    net.fit(X, np.arange(60) % 3, epochs=2, verbose=0)
    return net


@pytest.mark.parametrize("column,error,message", [
    ([1.0, 2.0, 3.0], ValueError, r"net.history\['extra'\] has 3 entries, where the history has 2"
                                  r" epochs of 'loss'"),
    ([7.0], ValueError, r"net.history\['extra'\] has 1 entries"),
    (["a", "b"], TypeError, r"net.history\['extra'\] must be a list of numbers, one per epoch;"
                            r" it holds 'a'"),
])
def test_save_refuses_a_history_load_would_refuse_or_change(tmp_path, column, error, message):
    """History is a dict a user may write to: a longer column was saved and
    the file refused by load, a shorter one came back padded with NaN, text
    failed in NumPy naming no key. Refused before anything is written."""
    net = _fitted_for_history()
    path = tmp_path / "m.npz"
    net.history["extra"] = column
    with pytest.raises(error, match=message):
        net.save(path)
    assert not path.exists() and list(tmp_path.iterdir()) == []
    net.history["extra"] = [np.float32(1.5), 2]   # numbers of any kind, one per epoch
    net.save(path)
    assert fastbp.load(path).history["extra"] == [1.5, 2.0]


def test_save_takes_a_whole_history_while_a_fit_records_epochs(tmp_path):
    """The strict check must not refuse a save during a fit in another
    thread, whose epoch is recorded a column at a time."""
    import threading
    X = np.random.default_rng(0).normal(size=(200, 5))
    y = np.arange(200) % 3
    net = fastbp.MLP([5, 8, 3], seed=1)
    net.fit(X, y, epochs=1, verbose=0)
    done, errors = threading.Event(), []

    def train():
        try:
            net.fit(X, y, epochs=300, batch_size=200, verbose=0, validation_split=0.1)
        finally:
            done.set()
    thread = threading.Thread(target=train)
    thread.start()
    saves = 0
    while not done.is_set():
        try:
            net.save(tmp_path / "m.npz")
            saves += 1
        except Exception as exc:  # pragma: no cover - the failure reported below
            errors.append(exc)
            break
    thread.join()
    assert not errors and saves > 0
    loaded = fastbp.load(tmp_path / "m.npz")
    assert len({len(v) for v in loaded.history.values()}) == 1


@pytest.mark.parametrize("make", [lambda: fastbp.optim.Adam(), lambda: fastbp.optim.RMSprop(),
                                  lambda: fastbp.optim.SGD(lr=0.1, momentum=0.9)])
def test_a_stateful_optimizer_past_its_first_step_without_state_is_refused(tmp_path, make):
    """An edited file (Adam at t = 4 with an empty state) loaded and trained
    on zero moments with step 5's bias correction."""
    X = np.random.default_rng(0).normal(size=(40, 5))
    net = fastbp.MLP([5, 4, 3], seed=1)
    net.fit(X, np.arange(40) % 3, epochs=2, batch_size=20, optimizer=make(), verbose=0)
    path = tmp_path / "m.npz"
    net.save(path)
    with np.load(path) as f:
        arrays = dict(f)
    assert int(arrays["optimizer_t"]) == 4 and arrays["optimizer_state"].shape[1] > 0
    arrays["optimizer_state"] = np.zeros((2, 0), arrays["optimizer_state"].dtype)
    edited = tmp_path / "edited.npz"
    np.savez(edited, **arrays)
    name = type(net.optimizer).__name__
    with pytest.raises(fastbp.ModelFileError, match=f"optimizer_t is 4 but optimizer_state is"
                                                    f" empty; {name} after 4 steps holds its"
                                                    " state"):
        fastbp.load(edited)
    # and save refuses to write such a model (state dropped by hand)
    net.optimizer.state = None
    with pytest.raises(ValueError, match="has taken 4 steps but holds no state"):
        net.save(tmp_path / "other.npz")
    assert not (tmp_path / "other.npz").exists()


def test_plain_sgd_past_its_first_step_keeps_no_state_and_loads(tmp_path):
    X = np.random.default_rng(0).normal(size=(40, 5))
    net = fastbp.MLP([5, 4, 3], seed=1)
    net.fit(X, np.arange(40) % 3, epochs=2, batch_size=20, optimizer="sgd", verbose=0)
    assert net.optimizer.t == 4 and not net.optimizer.keeps_state
    net.optimizer.state = None
    net.save(tmp_path / "m.npz")
    assert fastbp.load(tmp_path / "m.npz").optimizer.t == 4


# ------------------------------------------------ found in review (2026-12-07, session 47)
@pytest.mark.parametrize("spoil, words", [
    (lambda o: o.state.__setitem__((0, 0), np.nan), "optimizer_state holds NaN values"),
    (lambda o: o.state.__setitem__((1, 0), -1.0), "negative mean of squared gradients"),
    (lambda o: o.state.__setitem__((0, 0), np.inf), "infinite moment or momentum"),
    (lambda o: setattr(o, "state", o.state.astype(np.float32)), "optimizer_state of float32"),
    (lambda o: o.hyper.__setitem__(fastbp.optim.BETA1, 1.0), "takes beta1 < 1"),
    (lambda o: setattr(o, "t", -1), "optimizer_t (the optimizer's step count) must be in"),
])
def test_save_refuses_an_optimizer_that_load_would_refuse(tmp_path, spoil, words):
    """Review HAO: an optimizer spoiled by hand (a NaN or negative state, one
    of another dtype, beta1 = 1, t = -1) was saved, and every load of the
    file refused it (saving.md says save refuses such a model). save asks
    what load asks; nothing is written, an older file is kept."""
    X, y = np.random.default_rng(0).normal(size=(16, 3)), np.arange(16) % 2
    net = fastbp.MLP([3, 4, 2], dtype="float64", seed=0)
    net.fit(X, y, epochs=1, optimizer="adam", verbose=0)
    path = tmp_path / "m.npz"
    net.save(path)
    before = path.read_bytes()
    spoil(net.optimizer)
    with pytest.raises(ValueError, match="cannot save the model: load would refuse its"
                                         " optimizer .*" + re.escape(words)):
        net.save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.npz"]
    fastbp.load(path)


def test_an_optimizer_state_or_hyper_of_another_shape_is_named_not_an_index_error():
    """Review HAO: a 1-D state set by hand made fit raise IndexError (the
    message's state.shape[1]), an empty hyper IndexError too."""
    X, y = np.random.default_rng(0).normal(size=(16, 3)), np.arange(16) % 2
    net = fastbp.MLP([3, 4, 2], seed=0)
    net.fit(X, y, epochs=1, optimizer="adam", verbose=0)
    params = net.params.copy()
    net.optimizer.state = np.zeros(2 * net.n_params, np.float32)
    with pytest.raises(ValueError, match=r"state must be a \(2, n_params\) array; got \(52,\)"):
        net.fit(X, y, epochs=1, verbose=0)
    net.optimizer.state = None
    net.optimizer.hyper = np.zeros(0)
    with pytest.raises(ValueError, match="hyper must be its 9 float64 hyper-parameters"):
        net.fit(X, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(net.params, params)


def test_a_big_endian_file_loads_as_written(tmp_path):
    """Review HBF: a file np.savez writes on a big-endian machine (every array
    big-endian, the checksum over those bytes) was refused as "params of
    >f4(23,) do not fit sizes [4, 3, 2]"; NumPy reads it as the same values."""
    net, path = _trained(tmp_path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    swapped = {k: (v.astype(v.dtype.newbyteorder(">")) if v.dtype.byteorder in "=<" else v)
               for k, v in arrays.items()}
    swapped["checksum"] = np.array(hashlib.sha256(swapped["params"].tobytes()).hexdigest())
    assert swapped["params"].dtype.byteorder == ">"
    np.savez(tmp_path / "be.npz", **swapped)
    back = fastbp.load(tmp_path / "be.npz")
    np.testing.assert_array_equal(back.params, net.params)
    assert back.params.dtype == net.params.dtype and back.optimizer.t == net.optimizer.t
    np.testing.assert_array_equal(back.optimizer.state, net.optimizer.state)
    assert back.history["loss"] == net.history["loss"]
    back.save(tmp_path / "again.npz")
    np.testing.assert_array_equal(fastbp.load(tmp_path / "again.npz").params, net.params)


@pytest.mark.parametrize("version, keys", [(2, "input_mean"), (3, "category_columns")])
def test_a_version_edited_down_is_refused_not_read_without_its_arrays(tmp_path, version, keys):
    """Review HBF: a version 4 file whose version was edited to 2 loaded and
    dropped its scaling and classes (class indices from unscaled inputs);
    to 3, its categories."""
    net = fastbp.MLP([3, 4, 2], seed=0)
    net.classes_ = np.array(["a", "b"])
    net.set_input_scaling(np.zeros(3), np.full(3, 2.0))
    path = tmp_path / "m.npz"
    net.save(path)
    edited = _rewritten(path, tmp_path / "edited.npz",
                        lambda a: a.__setitem__("version", np.array(version)))
    with pytest.raises(fastbp.ModelFileError, match=f"has format version {version} but holds"
                                                    f" {keys}"):
        fastbp.load(edited)
