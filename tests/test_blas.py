"""Which BLAS serves the kernels, and the SciPy fallback giving the same results."""
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

import fastbp
from fastbp import _blas, ops

SCRIPT = """
import numpy as np, fastbp
rng = np.random.default_rng(0)
X, y = rng.normal(size=(64, 5)), rng.integers(0, 3, 64)
net = fastbp.MLP([5, 7, 3], activation="tanh", dtype="float64", seed=0)
net.fit(X, y, epochs=2, batch_size=16, lr=0.1, verbose=0)
print(fastbp._blas.LIBRARY)
print(repr(net.params.tolist()))
"""


def _train(env):
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    library, params = out.stdout.strip().splitlines()
    return library, np.array(eval(params))


def test_numpy_bundled_openblas_is_shared_when_present():
    root = os.path.dirname(np.__file__)
    if _blas._numpy_cblas() is not None:
        assert _blas.LIBRARY.startswith((root, root + ".libs"))
    else:
        assert _blas.LIBRARY == "scipy"


def test_a_python_reached_through_a_symlink_shares_numpys_blas(tmp_path):
    """threadpoolctl gives the loader's resolved path, NumPy's __file__ the
    symlinked one: fastbp took SciPy's BLAS beside NumPy's (two thread
    pools), and show_config named SciPy with NumPy's version."""
    if _blas.LIBRARY == "scipy":
        pytest.skip("NumPy bundles no OpenBLAS here")
    link = tmp_path / "env"
    link.symlink_to(sys.prefix, target_is_directory=True)
    python = link / os.path.relpath(sys.executable, sys.prefix)
    if not python.exists() or os.path.realpath(sys.executable) == str(python):
        pytest.skip("the interpreter is not inside sys.prefix")
    out = subprocess.run([str(python), "-c", "import fastbp._blas as b, numpy as np;"
                          " print(b.LIBRARY); print(np.__file__)"],
                         capture_output=True, text=True, timeout=300,
                         env={k: v for k, v in os.environ.items() if k != "FASTBP_BLAS"})
    assert out.returncode == 0, out.stderr
    library, numpy_file = out.stdout.splitlines()
    assert numpy_file.startswith(str(link))   # (the symlinked path, as a user's)
    assert library == _blas.LIBRARY


def test_scipy_fallback_trains_the_same_network():
    env = {k: v for k, v in os.environ.items() if k != "FASTBP_BLAS"}
    library, default = _train(env)
    fallback_library, fallback = _train(dict(env, FASTBP_BLAS="scipy"))
    assert fallback_library == "scipy" and library == _blas.LIBRARY
    np.testing.assert_allclose(fallback, default, rtol=1e-12, atol=1e-14)
    net = fastbp.MLP([5, 7, 3], activation="tanh", dtype="float64", seed=0)
    assert fallback.shape == net.params.shape
    # Both trained (else the comparison says nothing): far from the initial weights.
    assert np.abs(default - net.params).max() > 1e-3


@numba.njit
def _gemm(C, A, B, trans_a, trans_b, alpha, beta):
    ops.gemm(C, A, B, trans_a, trans_b, alpha, beta)


# (rows m, inputs k, outputs n) of A @ B^T: OpenBLAS's small kernels refuse
# the first five (K < 32 or M N > 1200), so B^T goes through the stack copy;
# the sixth is too wide to copy; OpenBLAS would take the next three as they
# are, but with 32 rows or more the copy pays (_blas.NT_COPY_LEAST_ROWS);
# the last ones it takes as they are (too few rows, B too large). Odd sizes
# leave rows and columns over from the copy's 4 x 4 blocks.
NT_SHAPES = [(200, 24, 8), (64, 4, 8), (1, 3, 2), (32, 2, 16), (128, 13, 32),
             (40, 30, 80), (32, 64, 32), (32, 32, 10), (37, 33, 7), (8, 64, 16),
             (33, 40, 60)]


def test_the_shapes_cover_every_decision_of_the_copy():
    decisions = {(_blas.copies_transposed(m, n, k),
                  m * n > _blas.SMALL_TN_MOST_MN or k < _blas.SMALL_TN_LEAST_K)
                 for m, k, n in NT_SHAPES}
    assert decisions == {(True, True), (True, False), (False, True), (False, False)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", NT_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_a_times_b_transposed_matches_numpy_and_the_copied_nn_product(shape, dtype):
    """C = alpha A @ B^T + beta C, the forward product of every dense layer:
    NumPy's product to rounding on every path (beta 0 and 1, alpha not 1),
    and, where gemm copies B^T to run the NN product (_blas.NT_COPY_MOST),
    exactly what the NN product of an explicit copy of B^T gives."""
    m, k, n = shape
    rng = np.random.default_rng(list(shape))
    A, B = rng.normal(size=(m, k)).astype(dtype), rng.normal(size=(n, k)).astype(dtype)
    C0 = rng.normal(size=(m, n)).astype(dtype)
    B_before = B.copy()
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for alpha, beta in ((1.0, 0.0), (-0.5, 1.0)):
        C = C0.copy()
        _gemm(C, A, B, False, True, alpha, beta)
        want = alpha * (A.astype(np.float64) @ B.T.astype(np.float64)) + beta * C0
        np.testing.assert_allclose(C, want, rtol=tol, atol=tol * np.abs(want).max())
        if _blas.copies_transposed(m, n, k):
            nn = C0.copy()
            _gemm(nn, A, np.ascontiguousarray(B.T), False, False, alpha, beta)
            np.testing.assert_array_equal(C, nn)
    np.testing.assert_array_equal(B, B_before)  # read only: the copy is gemm's own


def test_version_names_scipys_blas_when_it_serves_the_kernels():
    """With SciPy's BLAS (FASTBP_BLAS=scipy, or a NumPy without OpenBLAS)
    --version named NumPy's library, the first threadpoolctl listed before
    SciPy's was loaded; fastbp info named SciPy's."""
    import scipy
    import subprocess
    import sys
    env = dict(os.environ, FASTBP_BLAS="scipy")
    out = subprocess.run([sys.executable, "-m", "fastbp", "--version"], env=env,
                         capture_output=True, text=True, check=True).stdout
    blas_line = out.splitlines()[-1]
    root = os.path.dirname(scipy.__file__)
    assert blas_line.startswith("BLAS: ") and (root in blas_line or root + ".libs" in blas_line)
