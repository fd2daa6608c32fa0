"""A cold fit compiles the inference kernels in a helper process (fastbp._ahead)."""
import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import fastbp
from fastbp import _ahead, _jit, _warmup, model, network
from fastbp.layout import ACT

# A fresh process on an empty cache: fit, then predict and evaluate; prints
# which fastbp kernels this process compiled (not loaded) and the answers.
SCRIPT = r"""
import json, sys
from numba.core import event
compiled = []
class Listener(event.Listener):
    def on_start(self, ev):
        f = ev.data["dispatcher"].py_func
        if f.__module__.startswith("fastbp."):
            compiled.append(f.__qualname__)
    def on_end(self, ev):
        pass
event.register("numba:compile", Listener())
import numpy as np, fastbp
# The test suite's other workers keep the CPUs busy, where a helper would
# not start: here it is the mechanism under test, so count a CPU as idle.
fastbp._ahead.idle_cpus = lambda: 1
X = np.random.default_rng(0).normal(size=(64, 4)); y = (X[:, 0] > 0).astype(int)
net = fastbp.MLP([4, 8, 2], seed=0)
net.fit(X, y, epochs=2, verbose=0)
proba = net.predict_proba(X)
metrics = net.evaluate(X, y)
print(json.dumps({"compiled": compiled, "proba": proba.tolist(), "metrics": metrics}))
"""


def _cold_run(tmp_path, ahead):
    cache = tmp_path / f"cache-{ahead}"
    cache.mkdir()
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), FASTBP_INSTALL_CACHE="0",
               FASTBP_COMPILE_AHEAD=ahead)
    env.pop("FASTBP_CACHE_LOCK", None)  # the helper's own lock file, in the cache folder
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1]), cache


@pytest.mark.skipif(_ahead.usable_cpus() < 2, reason="the helper runs only with two or more CPUs")
@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "win32",
                    reason="the cache lock is POSIX flock")
def test_a_cold_fit_leaves_the_inference_kernels_to_the_helper(tmp_path):
    with_helper, cache = _cold_run(tmp_path, "1")
    alone, _ = _cold_run(tmp_path, "0")
    # Without the helper this process compiles predict's and evaluate's kernels
    # itself; with it, it loads them from the cache the helper wrote.
    assert {"_predict", "_loss_sum"} <= set(alone["compiled"])
    assert not {"_predict", "_loss_sum"} & set(with_helper["compiled"]), with_helper["compiled"]
    assert "epoch_sgd" in with_helper["compiled"]
    assert list(cache.rglob(_ahead.LOCK))  # both processes took the lock in the cache folder
    # The same code, so the same answers, to the bit.
    assert with_helper["proba"] == alone["proba"]
    assert with_helper["metrics"] == alone["metrics"]


def test_the_helper_builds_the_same_inference_specialisations():
    # What the helper compiles is a model of the same architecture: the same
    # kernel codes, layout and dtype, so the same kernel signatures.
    for kwargs in [dict(sizes=[5, 7, 3], activation="relu"),
                   dict(sizes=[4, 6, 5, 1], activation=["tanh", "elu"], output="identity",
                        loss="huber", dtype="float64"),
                   dict(sizes=[3, 2, 2], output="sigmoid")]:
        net = fastbp.MLP(**kwargs)
        spec = json.loads(json.dumps(_ahead.spec(net)))
        twin = fastbp.MLP(spec["sizes"], activation=spec["activations"], output=spec["output"],
                          loss=spec["loss"], dtype=spec["dtype"])
        assert twin._kernel_codes == net._kernel_codes
        assert twin.dtype == net.dtype
        # The same depth, activations and outputs; two units per other layer
        # (the kernels' types do not depend on widths: the end-to-end test
        # above fits a 4-8-2 net and its helper compiles for a 2-2-2 one).
        assert len(twin.sizes) == len(net.sizes) and twin.sizes[-1] == net.sizes[-1]
        assert set(twin.sizes[:-1]) == {2}
        np.testing.assert_array_equal(twin.plan[:, ACT], net.plan[:, ACT])


@pytest.mark.parametrize("output,m", [("softmax", 3), ("sigmoid", 2), ("sigmoid", 1),
                                      ("identity", 2)])
def test_the_helper_runs_predict_and_evaluate(output, m, monkeypatch):
    calls = []
    for name in ("predict", "evaluate"):
        real = getattr(fastbp.MLP, name)

        def spy(self, *args, _real=real, _name=name, **kwargs):
            calls.append(_name)
            return _real(self, *args, **kwargs)
        monkeypatch.setattr(fastbp.MLP, name, spy)
    _warmup.inference(_ahead.spec(fastbp.MLP([4, 5, m], output=output)))
    assert calls == ["predict", "evaluate"]


class _FakeCache:
    def __init__(self, answers):
        self.answers = list(answers)
        self.reads = 0
        self.cache_path = "somewhere"

    def load_overload(self, sig, target_context):
        self.reads += 1
        return self.answers.pop(0)


class _FakeHelper:
    def __init__(self):
        self.waited = 0

    def poll(self):
        return None

    def wait(self, timeout=None):
        self.waited += 1
        return 0


def test_a_cache_hit_waits_for_no_helper(monkeypatch):
    helper = _FakeHelper()
    monkeypatch.setattr(_ahead, "_helper", [helper])
    cache = _ahead.WaitsForHelper(_FakeCache(["compiled"]))
    assert cache.load_overload("sig", None) == "compiled"
    assert helper.waited == 0 and cache.inner.reads == 1
    assert cache.cache_path == "somewhere"  # everything else is the wrapped cache's


def test_a_miss_waits_for_the_helper_and_reads_again(monkeypatch):
    helper = _FakeHelper()
    monkeypatch.setattr(_ahead, "_helper", [helper])
    cache = _ahead.WaitsForHelper(_FakeCache([None, "from the helper"]))
    assert cache.load_overload("sig", None) == "from the helper"
    assert helper.waited == 1 and cache.inner.reads == 2
    assert _ahead._helper == []
    # With no helper left, a miss is a miss (read once): this process compiles.
    again = _ahead.WaitsForHelper(_FakeCache([None]))
    assert again.load_overload("sig", None) is None and again.inner.reads == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_forgets_its_parents_helper(monkeypatch):
    """The child inherited the helper and Popen's lock, held by the parent's
    reaper thread: its first cache miss waited 10 s, killed the parent's
    helper, then waited on that lock forever, inside Numba's compile."""
    helper = _FakeHelper()
    monkeypatch.setattr(_ahead, "_helper", [helper])
    pid = os.fork()
    if pid == 0:  # the child: no helper of its own to wait for
        ok = _ahead._helper == [] and _ahead.wait() is False and helper.waited == 0
        os._exit(0 if ok else 1)
    assert os.waitpid(pid, 0)[1] == 0
    assert _ahead._helper == [helper]  # the parent keeps its own


def test_a_helper_past_its_patience_is_stopped(monkeypatch):
    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    monkeypatch.setattr(_ahead, "_helper", [slow])
    monkeypatch.setattr(_ahead, "PATIENCE", 0.2)
    assert _ahead.wait() is True
    assert slow.returncode is not None and slow.returncode != 0
    assert _ahead.wait() is False


def test_the_inference_kernels_wait_for_the_helper():
    assert isinstance(network._predict._cache, _ahead.WaitsForHelper)
    assert isinstance(network._loss_sum._cache, _ahead.WaitsForHelper)


def test_no_helper_when_turned_off_or_on_one_cpu(monkeypatch):
    started = []
    monkeypatch.setattr(_ahead.subprocess, "Popen", lambda *a, **k: started.append(a))
    monkeypatch.setattr(_ahead, "_helper", [])
    kernel = network.epoch_sgd
    monkeypatch.setenv(_ahead.ENV, "0")
    assert _ahead.start({"sizes": [2, 2]}, kernel) is None
    monkeypatch.setenv(_ahead.ENV, "1")
    monkeypatch.setattr(_ahead, "usable_cpus", lambda: 1)
    assert _ahead.start({"sizes": [2, 2]}, kernel) is None
    assert _ahead.enabled() is False   # (what fastbp info says; review HIA)
    monkeypatch.setattr(_ahead, "usable_cpus", lambda: 2)
    # A frozen application: sys.executable is the application itself
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert _ahead.start({"sizes": [2, 2]}, kernel) is None
    monkeypatch.delattr(sys, "frozen")
    # An embedding host (uWSGI, say): sys.executable is not a Python
    monkeypatch.setattr(sys, "executable", "/usr/bin/uwsgi")
    assert _ahead.start({"sizes": [2, 2]}, kernel) is None
    monkeypatch.undo()
    monkeypatch.setattr(_ahead.subprocess, "Popen", lambda *a, **k: started.append(a))
    monkeypatch.setattr(_ahead, "_helper", [])
    monkeypatch.setenv(_ahead.ENV, "1")
    # The other CPU busy (two processes compiling at once): a helper would slow both
    monkeypatch.setattr(_ahead, "usable_cpus", lambda: 2)
    monkeypatch.setattr(_ahead, "_runnable", lambda: 2)
    assert _ahead.idle_cpus() == 0
    assert _ahead.start({"sizes": [2, 2]}, kernel) is None
    monkeypatch.setattr(_ahead, "_runnable", lambda: 1)
    assert _ahead.idle_cpus() == 1
    # No cache folder to meet in (a dispatcher without a cache)
    assert _ahead.start({"sizes": [2, 2]}, types.SimpleNamespace(_cache=None)) is None
    assert started == []


class _Recorder:
    """A Popen that records what it was asked to start, and starts nothing."""
    started = None   # [(args, kwargs)], set by _recorded

    def __init__(self, args, **kwargs):
        self.started.append((args, kwargs))

    def poll(self):
        return None

    def wait(self, timeout=None):
        return 0


def _recorded(monkeypatch, tmp_path):
    """_ahead.start made to start a helper (two CPUs, one idle) through
    :class:`_Recorder`, the cache lock recorded, not taken: (the recorded
    list, a kernel whose cache lies in tmp_path)."""
    monkeypatch.setattr(_Recorder, "started", [])
    monkeypatch.setattr(_ahead.subprocess, "Popen", _Recorder)
    monkeypatch.setattr(_ahead, "_helper", [])
    monkeypatch.setattr(_ahead, "usable_cpus", lambda: 2)
    monkeypatch.setattr(_ahead, "idle_cpus", lambda: 1)
    monkeypatch.setenv(_ahead.ENV, "1")
    # The lock this process would take from now on (not taken for real here)
    monkeypatch.setattr(_jit, "_cache_lock", [])
    monkeypatch.setattr(_jit, "lock_cache", lambda path: _jit._cache_lock.append(path))
    kernel = types.SimpleNamespace(_cache=types.SimpleNamespace(cache_path=str(tmp_path)))
    return _Recorder.started, kernel


def test_the_helper_is_started_with_this_fastbp_and_cache(monkeypatch, tmp_path):
    started, kernel = _recorded(monkeypatch, tmp_path)
    spec = _ahead.spec(fastbp.MLP([3, 4, 2]))
    assert isinstance(_ahead.start(spec, kernel), _Recorder)
    (args, kwargs), = started
    assert args[1:4] == ["-c", _ahead.HELPER, "inference"] and json.loads(args[4]) == spec
    env = kwargs["env"]
    assert env[_ahead.ENV] == "0"  # no helper of the helper
    assert env[_jit.CACHE_LOCK] == _jit._cache_lock[0] == str(tmp_path / _ahead.LOCK)
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(fastbp.__file__)))
    assert env["PYTHONPATH"].split(os.pathsep)[0] == package_parent
    # One at a time: a second cold fit while it runs starts none.
    assert _ahead.start(spec, kernel) is None and len(started) == 1


def test_no_helper_without_a_cache_folder_it_can_write(monkeypatch, tmp_path):
    # (review HIA) a folder that is not there, or not writable: nowhere to meet
    started, kernel = _recorded(monkeypatch, tmp_path)
    spec = _ahead.spec(fastbp.MLP([3, 4, 2]))
    gone = types.SimpleNamespace(_cache=types.SimpleNamespace(cache_path=str(tmp_path / "no")))
    assert _ahead.start(spec, gone) is None
    access = os.access
    monkeypatch.setattr(_ahead.os, "access", lambda path, mode: mode != os.W_OK
                        and access(path, mode))
    assert _ahead.start(spec, kernel) is None
    monkeypatch.setattr(_ahead.os, "access", access)
    assert started == [] and isinstance(_ahead.start(spec, kernel), _Recorder)


def test_only_an_epoch_kernel_missing_the_cache_starts_it(monkeypatch):
    started = []
    monkeypatch.setattr(_ahead, "start", lambda spec, dispatcher: started.append(spec))

    def event_for(name):
        func = types.SimpleNamespace(__module__="fastbp.network", __name__=name)
        return types.SimpleNamespace(data={"dispatcher": types.SimpleNamespace(py_func=func)})
    listener = _jit._listener
    with _jit.compile_notice(False, {"sizes": [1]}):
        listener.on_start(event_for("column_sums"))  # a leaf: not yet
        assert started == []
        listener.on_start(event_for("epoch_sgd"))
        listener.on_start(event_for("epoch_optimizer"))  # once per fit
    with _jit.compile_notice(False, None):  # a fit that asks for none (sparse X)
        listener.on_start(event_for("epoch_sgd"))
    assert started == [{"sizes": [1]}]


def test_fit_asks_for_a_helper_for_dense_x_only(monkeypatch):
    asked = []
    real = model.compile_notice

    def spy(verbose, ahead=None):
        asked.append(ahead)
        return real(verbose, ahead)
    monkeypatch.setattr(model, "compile_notice", spy)
    X = np.random.default_rng(0).normal(size=(20, 3))
    y = np.arange(20) % 2
    net = fastbp.MLP([3, 4, 2], seed=0)
    net.fit(X, y, epochs=1, verbose=0)
    scipy_sparse = pytest.importorskip("scipy.sparse")
    net.fit(scipy_sparse.csr_matrix(X), y, epochs=1, verbose=0)
    assert asked == [_ahead.spec(net), None]


def test_info_says_whether_a_cold_fit_starts_the_helper(monkeypatch, capsys):
    from fastbp import cli
    monkeypatch.setattr(_ahead, "usable_cpus", lambda: 2)
    monkeypatch.setenv(_ahead.ENV, "1")
    assert fastbp.show_config()["numba"]["cache"]["compile_ahead"] is True
    cli.main(["info"])
    assert "compiles the model's predict and evaluate kernels in a helper process" in \
        capsys.readouterr().out
    monkeypatch.setenv(_ahead.ENV, "0")
    assert fastbp.show_config()["numba"]["cache"]["compile_ahead"] is False
    cli.main(["info"])
    assert "FASTBP_COMPILE_AHEAD=0" in capsys.readouterr().out


def test_each_thread_sees_only_its_own_fits(monkeypatch):
    import threading
    started = []
    monkeypatch.setattr(_ahead, "start", lambda spec, dispatcher: started.append(spec))
    inside, leave = threading.Event(), threading.Event()

    def other_fit():
        with _jit.compile_notice(False, {"sizes": ["other"]}):
            inside.set()
            leave.wait(10)
    thread = threading.Thread(target=other_fit)
    thread.start()
    inside.wait(10)
    func = types.SimpleNamespace(__module__="fastbp.network", __name__="epoch_sgd")
    event = types.SimpleNamespace(data={"dispatcher": types.SimpleNamespace(py_func=func)})
    try:
        assert _jit._listener.ahead == []  # this thread fits nothing
        _jit._listener.on_start(event)  # an epoch kernel compiled here, outside any fit
        with _jit.compile_notice(False, {"sizes": ["mine"]}):
            _jit._listener.on_start(event)
    finally:
        leave.set()
        thread.join()
    assert started == [{"sizes": ["mine"]}]


def test_python_executables_and_others():
    for path in ["/usr/bin/python3", "/opt/venv/bin/python", "/usr/bin/python3.11"]:
        assert _ahead._runs_python(path), path
    for path in ["/usr/bin/uwsgi", "/opt/app/myapp", "", None]:
        assert not _ahead._runs_python(path), path


def test_idle_cpus_takes_the_fewest_busy_of_three_looks(monkeypatch):
    looks = iter([3, 1, 2])  # a thread passing by in the first look
    monkeypatch.setattr(_ahead, "_runnable", lambda: next(looks))
    monkeypatch.setattr(_ahead, "usable_cpus", lambda: 4)
    assert _ahead.idle_cpus() == 3
    # On Linux the count is read from /proc/loadavg, this thread included
    if os.path.exists("/proc/loadavg"):
        monkeypatch.undo()
        assert _ahead._runnable() >= 1


def test_a_finished_helper_is_reaped_without_anyone_waiting(monkeypatch, tmp_path):
    made = []
    real_popen = subprocess.Popen

    def short_lived(args, **kwargs):
        made.append(real_popen([sys.executable, "-c", "pass"]))
        return made[-1]
    monkeypatch.setattr(_ahead.subprocess, "Popen", short_lived)
    monkeypatch.setattr(_ahead, "_helper", [])
    monkeypatch.setattr(_ahead, "usable_cpus", lambda: 2)
    monkeypatch.setattr(_ahead, "idle_cpus", lambda: 1)
    monkeypatch.setattr(_jit, "_cache_lock", ["lock"])
    monkeypatch.setenv(_ahead.ENV, "1")
    kernel = types.SimpleNamespace(_cache=types.SimpleNamespace(cache_path=str(tmp_path)))
    process = _ahead.start({"sizes": [2, 2]}, kernel)
    assert process is made[0]
    import time
    deadline = time.monotonic() + 30
    while process.returncode is None and time.monotonic() < deadline:  # not poll(): no reaping here
        time.sleep(0.05)
    assert process.returncode == 0  # the reaper thread waited for it: no zombie


def test_a_helper_running_at_exit_is_left_to_finish_quietly(monkeypatch):
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        monkeypatch.setattr(_ahead, "_helper", [running])
        _ahead._leave_running()
        assert running.poll() is None  # not killed
        assert running._child_created is False  # no "still running" ResourceWarning
    finally:
        running._child_created = True
        running.kill()
        running.wait()


def test_the_helper_imports_nothing_from_the_working_folder(monkeypatch, tmp_path):
    """Review HCJ: the helper ran as ``python -m fastbp._warmup``, which puts
    the working folder first on its path: a json.py there (or numpy.py)
    ran in a process the user never started, and the helper died. The
    command start() builds, run from a folder holding such a file."""
    started, kernel = _recorded(monkeypatch, tmp_path)
    assert isinstance(_ahead.start(_ahead.spec(fastbp.MLP([3, 4, 2])), kernel), _Recorder)
    (args, kwargs), = started
    monkeypatch.undo()   # (Popen is subprocess's own)
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "json.py").write_text("open('planted-json-ran', 'w').close()\n"
                                    "raise ImportError('planted')\n")
    done = subprocess.run(args, cwd=folder, env=kwargs["env"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert not (folder / "planted-json-ran").exists()
