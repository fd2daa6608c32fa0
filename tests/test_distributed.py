"""Data-parallel training on MPI, on loopback: mpiexec -n 2 and -n 3 in a
subprocess with a timeout (tests/mpi_worker.py does the training)."""
import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py")
HERE = Path(__file__).resolve().parent
MPIEXEC = shutil.which("mpiexec", path=os.pathsep.join([str(Path(sys.executable).parent),
                                                         os.environ.get("PATH", "")]))
pytestmark = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install 'fastbp[mpi]')")
TOL = {"f64": 1e-12, "f32": 1e-5}


def mpirun(n, *args, timeout=600):
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, "-m", "mpi4py", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module", params=[(2, 100, 10), (3, 103, 10)],
                ids=["2 ranks, even shards", "3 ranks, uneven shards"])
def trained(request, tmp_path_factory):
    ranks, n, batch = request.param
    out = tmp_path_factory.mktemp(f"mpi{ranks}")
    done = mpirun(ranks, HERE / "mpi_worker.py", out, n, batch)
    assert done.returncode == 0, done.stdout + done.stderr
    return ranks, out, json.loads((out / "report.json").read_text()), done.stdout


@pytest.mark.parametrize("config", ["f64-adam-softmax", "f32-momentum-softmax",
                                    "f64-sgd-regression-alpha", "f64-adam-dropout"])
def test_ranks_agree_bitwise_and_match_single_process_training(trained, config):
    ranks, out, report, stdout = trained
    params = [np.load(f) for f in sorted(glob.glob(str(out / f"{config}-rank*.npy")))]
    assert len(params) == ranks
    for p in params[1:]:
        np.testing.assert_array_equal(p, params[0])  # bit-identical on every rank
    reference = np.load(out / f"{config}-reference.npy")
    tol = TOL[config[:3]]
    assert report[config]["steps"] >= 50
    np.testing.assert_allclose(params[0], reference, rtol=tol, atol=tol)
    # Reduced metrics: the training loss and the validation metrics over all ranks.
    np.testing.assert_allclose(report[config]["loss"], report[config]["ref_loss"], rtol=tol)
    np.testing.assert_allclose(report[config]["val"], report[config]["ref_val"], rtol=tol, atol=tol)


def test_only_rank_0_prints_and_writes_checkpoints(trained):
    ranks, out, report, stdout = trained
    assert stdout.count("epoch 5/5") == len(report) == 4  # one progress line per fit, not per rank
    written = sorted(p.name for p in out.glob("*-checkpoint-*"))
    assert written == sorted(f"{c}-checkpoint-rank0-5.npz" for c in report)


FAILING = """
import sys, numpy as np, fastbp
comm = fastbp.distributed.world()

class Fail:
    def on_epoch_end(self, epoch, logs):
        if comm.rank == 1 and epoch == 1:
            raise RuntimeError("rank 1 fails on purpose")

rng = np.random.default_rng(0)
X, y = rng.normal(size=(64, 4)), rng.integers(0, 2, 64)
net = fastbp.MLP([4, 8, 2], seed=0)
net.fit(X, y, epochs=1000, batch_size=8, verbose=0, distributed=True, callbacks=[Fail()])
print("finished", flush=True)
"""


def test_a_failing_rank_ends_the_job_instead_of_hanging(tmp_path):
    script = tmp_path / "failing.py"
    script.write_text(FAILING)
    done = mpirun(2, script, timeout=300)
    assert done.returncode != 0
    assert "rank 1 fails on purpose" in done.stderr
    assert "finished" not in done.stdout


def test_single_process_distributed_fit_equals_plain_fit():
    """Without mpiexec, distributed=True is one rank: the same training."""
    import fastbp
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(90, 5)), rng.integers(0, 3, 90)
    a = fastbp.MLP([5, 7, 3], dtype="float64", seed=2)
    b = fastbp.MLP([5, 7, 3], dtype="float64", seed=2)
    ha = a.fit(X, y, epochs=4, batch_size=16, optimizer="adam", verbose=0, distributed=True)
    hb = b.fit(X, y, epochs=4, batch_size=16, optimizer="adam", verbose=0)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-12)
    assert "comm_seconds" in ha.history
    # Dropout: each row's mask depends on its place in the global batch, so
    # the distributed path draws the masks the epoch kernel draws.
    c = fastbp.MLP([5, 7, 6, 3], dtype="float64", seed=4, dropout=[0.3, 0.5], alpha=0.01)
    d = fastbp.MLP([5, 7, 6, 3], dtype="float64", seed=4, dropout=[0.3, 0.5], alpha=0.01)
    c.fit(X, y, epochs=3, batch_size=16, optimizer="adam", verbose=0, distributed=True)
    d.fit(X, y, epochs=3, batch_size=16, optimizer="adam", verbose=0)
    np.testing.assert_allclose(c.params, d.params, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(c._rng, d._rng)
    with pytest.raises(ValueError, match="L-BFGS is full batch"):
        a.fit(X, y, verbose=0, optimizer="lbfgs", distributed=True)
    with pytest.raises(TypeError, match="distributed must be True, False or an MPI communicator"):
        a.fit(X, y, verbose=0, distributed="yes")


def test_divergence_stops_every_rank_before_the_bad_update():
    """One process here; the decision is taken on the reduced loss and
    gradient, so under mpiexec every rank takes it at the same batch."""
    import fastbp
    rng = np.random.default_rng(0)
    X = rng.normal(scale=30.0, size=(20, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    net = fastbp.MLP([3, 1], output="identity", seed=0)
    with pytest.raises(fastbp.TrainingDivergedError, match="the non-finite gradient was not applied"):
        net.fit(X, y, epochs=50, batch_size=4, lr=1.0, shuffle=False, verbose=0, distributed=True)
    assert np.all(np.isfinite(net.params))
    history = net.fit(X, y, epochs=5, batch_size=4, lr=1.0, shuffle=False, verbose=0,
                      distributed=True, on_divergence="stop")
    assert history.diverged and np.all(np.isfinite(net.params))
