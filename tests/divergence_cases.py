"""Training problems that diverge in known ways, shared by the in-process
tests and the mpiexec worker (tests/mpi_divergence_worker.py)."""
import numpy as np

import fastbp


def exploding(dtype):
    """Linear regression on inputs of size ~30 with lr 1: every step
    multiplies the error by about -1000 until the loss overflows."""
    rng = np.random.default_rng(0)
    X = rng.normal(scale=30.0, size=(20, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    return fastbp.MLP([3, 1], output="identity", dtype=dtype, seed=0), X, y


def overflowing_weight(dtype):
    """A weight overflows while the loss stays finite: tanh saturates, so
    an infinite first-layer weight still gives a finite output. Rows 0-1
    (x = 0, y = 0.5) make small finite updates; on row 2 (x = s: 1e33 in
    float32, 1e303 in float64) W1's gradient, about 1e8 s, overflows and
    W1 becomes infinite. The last finite state is the one after two
    updates."""
    s = 1e33 if dtype == "float32" else 1e303
    net = fastbp.MLP([1, 1, 1], "tanh", output="identity", dtype=dtype)
    net.params[:] = [1 / s, 0, 1, 0]
    X = np.array([[0.0], [0.0], [s], [s]])
    return net, X, np.array([0.5, 0.5, 1e8, 1e8])


# name -> (problem, fit keyword arguments)
CASES = {
    "exploding-f32-sgd": (lambda: exploding("float32"), dict(epochs=50, batch_size=4, lr=1.0)),
    "exploding-f64-sgd": (lambda: exploding("float64"), dict(epochs=50, batch_size=4, lr=1.0)),
    "exploding-f32-adam": (lambda: exploding("float32"),
                           dict(epochs=50, batch_size=4, optimizer="adam", lr=1e18)),
    "overflowing-weight-f32": (lambda: overflowing_weight("float32"),
                               dict(epochs=3, batch_size=1, lr=1e-3)),
    "overflowing-weight-f64-momentum": (lambda: overflowing_weight("float64"),
                                        dict(epochs=3, batch_size=1,
                                             optimizer=lambda: fastbp.SGD(lr=1e-3, momentum=0.5))),
}


def run(name, **extra):
    """Fit case ``name`` with on_divergence="stop"; returns the model and history."""
    make, kwargs = CASES[name]
    net, X, y = make()
    kwargs = dict(kwargs)
    if callable(kwargs.get("optimizer")):
        kwargs["optimizer"] = kwargs["optimizer"]()
    history = net.fit(X, y, shuffle=False, verbose=0, on_divergence="stop", **kwargs, **extra)
    return net, history


def near_1e8(n=120, seed=0):
    """Regression targets near 1e8 with spread ~1, and a linear model set to
    predict them moderately well (R^2 well inside (0, 1))."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 2))
    y = 1e8 + X[:, 0] + 0.8 * rng.normal(size=n)
    net = fastbp.MLP([2, 1], output="identity", dtype="float64")
    net.params[:] = [0.5, 0.0, 1e8 + 0.3]
    return net, X, y
