"""Which BLAS serves the kernels, and the SciPy fallback giving the same results."""
import os
import subprocess
import sys

import numpy as np

import fastbp
from fastbp import _blas

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
