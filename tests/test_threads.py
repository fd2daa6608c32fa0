"""fastbp sets the thread count of the BLAS its kernels call, on purpose."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastbp
from fastbp import threads


def _our_blas_threads():
    return {lib.num_threads for lib in threads._blas_controller()}


def test_set_num_threads_applies_to_the_kernels_blas():
    previous = fastbp.get_num_threads()
    try:
        fastbp.set_num_threads(1)
        assert fastbp.get_num_threads() == 1 and _our_blas_threads() == {1}
        net = fastbp.MLP([3, 2], seed=0)
        net.fit(np.ones((4, 3)), [0, 1, 0, 1], verbose=0)  # training keeps the setting
        assert _our_blas_threads() == {1}
    finally:
        fastbp.set_num_threads(previous)
    assert _our_blas_threads() == {previous}


def test_context_manager_restores_the_previous_setting():
    before = fastbp.get_num_threads()
    with fastbp.set_num_threads(1) as setting:
        assert fastbp.get_num_threads() == 1 and _our_blas_threads() == {1}
        assert "set_num_threads(1)" in repr(setting)
    assert fastbp.get_num_threads() == before and _our_blas_threads() == {before}


def test_default_is_every_cpu_available():
    assert threads.default_num_threads() >= 1
    assert fastbp.get_num_threads() == threads.default_num_threads()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")
def test_default_counts_the_cpus_this_process_may_use_not_the_machines():
    """Pinned to one CPU (as a container or taskset does), the default is 1."""
    script = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))});"
              " from fastbp import threads; print(threads.default_num_threads())")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1"]


@pytest.mark.parametrize("n,exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                   ("2", TypeError), (10_000, ValueError)])
def test_bad_thread_counts_are_rejected(n, exc):
    before = fastbp.get_num_threads()
    with pytest.raises(exc, match="n must be"):
        fastbp.set_num_threads(n)
    assert fastbp.get_num_threads() == before


def test_results_do_not_depend_on_the_thread_count():
    if threads.default_num_threads() < 2:  # else it would compare a run with itself
        pytest.skip("one CPU: a single thread count to try")
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 40)), rng.integers(0, 5, 300)
    runs = []
    for n in sorted({1, threads.default_num_threads()}):
        with fastbp.set_num_threads(n):
            net = fastbp.MLP([40, 300, 5], activation="relu", dtype="float64", seed=0)
            net.fit(X, y, epochs=2, batch_size=100, lr=0.05, verbose=0)
            runs.append(net.params.copy())
    np.testing.assert_allclose(runs[0], runs[-1], rtol=1e-10, atol=1e-12)
