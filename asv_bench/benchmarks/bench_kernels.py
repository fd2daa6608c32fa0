"""Leaf kernels, each called 100 times inside one jitted loop (so Python's
call overhead is not what is measured). Times are per 100 calls."""
import numpy as np

from fastbp import kernels

from ._common import (repeat_bias_grad, repeat_dense_backward, repeat_dense_forward, repeat_label_loss,
                      repeat_loss, repeat_sgd)

K = 100
SHAPES = ["32x64x32", "64x784x128", "256x1024x1024"]  # batch x n_in x n_out
DTYPES = ["float32", "float64"]


def _arrays(shape, dtype):
    n, k, m = map(int, shape.split("x"))
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n, k)).astype(dtype), rng.normal(size=(m, k)).astype(dtype) * 0.05,
            rng.normal(size=m).astype(dtype), np.empty((n, m), dtype), rng.normal(size=(n, m)).astype(dtype))


class DenseForward:
    params = (SHAPES, DTYPES)
    param_names = ["shape", "dtype"]

    def setup(self, shape, dtype):
        self.inp, self.W, self.b, self.out, _ = _arrays(shape, dtype)
        repeat_dense_forward(1, self.out, self.inp, self.W, self.b, kernels.TANH)

    def time_dense_forward_tanh(self, shape, dtype):
        repeat_dense_forward(K, self.out, self.inp, self.W, self.b, kernels.TANH)

    def track_gflops(self, shape, dtype):
        import time
        n, k, m = map(int, shape.split("x"))
        t0 = time.perf_counter()
        repeat_dense_forward(K, self.out, self.inp, self.W, self.b, kernels.RELU)
        return 2 * n * k * m * K / (time.perf_counter() - t0) / 1e9
    track_gflops.unit = "GFLOP/s"


class DenseBackward:
    params = (SHAPES, DTYPES)
    param_names = ["shape", "dtype"]

    def setup(self, shape, dtype):
        self.inp, self.W, self.b, _, self.dout = _arrays(shape, dtype)
        self.dinp = np.empty_like(self.inp)
        self.dW, self.db = np.empty_like(self.W), np.empty_like(self.b)
        repeat_dense_backward(1, self.dinp, self.dW, self.db, self.dout, self.inp, self.W, kernels.TANH)

    def time_dense_backward_tanh(self, shape, dtype):
        repeat_dense_backward(K, self.dinp, self.dW, self.db, self.dout, self.inp, self.W, kernels.TANH)


class BiasGradient:
    """A layer's bias gradient, the column sums of its deltas: packed narrow
    layers summed in registers (ops.column_sums), the others row by row."""
    params = (["200x2", "200x8", "200x32", "32x10", "200x100"], DTYPES)
    param_names = ["shape", "dtype"]

    def setup(self, shape, dtype):
        n, m = map(int, shape.split("x"))
        self.dout = np.random.default_rng(0).normal(size=(n, m)).astype(dtype)
        self.db = np.empty(m, dtype)
        repeat_bias_grad(1, self.db, self.dout)

    def time_bias_grad(self, shape, dtype):
        repeat_bias_grad(K, self.db, self.dout)


class Loss:
    params = (["cross_entropy", "binary_cross_entropy", "mse"], DTYPES)
    param_names = ["loss", "dtype"]

    def setup(self, loss, dtype):
        rng = np.random.default_rng(0)
        self.code = getattr(kernels, loss.upper())
        self.z = rng.normal(size=(256, 10)).astype(dtype)
        self.y = np.eye(10, dtype=dtype)[rng.integers(0, 10, 256)]
        self.out, self.dz = np.empty_like(self.z), np.empty_like(self.z)
        repeat_loss(1, self.dz, self.z, self.out, self.y, self.code)

    def time_output_loss_forward_backward(self, loss, dtype):
        repeat_loss(K, self.dz, self.z, self.out, self.y, self.code)


class LabelLoss:
    """Cross-entropy of labels on batches of 32 rows that change every call
    (509 of them in turn), as in a fit: 2 and 10 classes."""
    params = (["32x2", "32x10"], DTYPES)
    param_names = ["shape", "dtype"]

    def setup(self, shape, dtype):
        n, m = map(int, shape.split("x"))
        rng = np.random.default_rng(0)
        self.Z = (rng.normal(size=(509, n, m)) * 3).astype(dtype)
        e = np.exp(self.Z - self.Z.max(axis=2, keepdims=True))
        self.O = (e / e.sum(axis=2, keepdims=True)).astype(dtype)
        self.Y = rng.integers(0, m, size=(509, n))
        repeat_label_loss(1, self.Z, self.O, self.Y, 0)
        self.start = 0

    def time_label_loss_forward(self, shape, dtype):
        repeat_label_loss(K, self.Z, self.O, self.Y, self.start)
        self.start = (self.start + K) % len(self.Z)   # (the next call goes on from here)


class SGDUpdate:
    """One update over 10^6 parameters: two reads and one write per element."""
    params = (DTYPES,)
    param_names = ["dtype"]

    def setup(self, dtype):
        self.p = np.ones(10 ** 6, dtype)
        self.g = np.full(10 ** 6, 1e-3, dtype)
        repeat_sgd(1, self.p, self.g, 1e-6)

    def time_sgd_update_1e6(self, dtype):
        repeat_sgd(K, self.p, self.g, 1e-6)

    def track_gbytes_per_second(self, dtype):
        import time
        t0 = time.perf_counter()
        repeat_sgd(K, self.p, self.g, 1e-6)
        return 3 * self.p.nbytes * K / (time.perf_counter() - t0) / 1e9
    track_gbytes_per_second.unit = "GB/s"


class OptimizerStep:
    """One optimizer step over 10^6 parameters. Adam reads params, grads, m
    and v and writes params, m and v: 7 passes over the buffer's bytes."""
    params = (["sgd", "sgd_momentum", "adam", "rmsprop"], DTYPES)
    param_names = ["optimizer", "dtype"]

    def setup(self, optimizer, dtype):
        import fastbp
        self.opt = {"sgd": lambda: fastbp.SGD(lr=1e-6),
                    "sgd_momentum": lambda: fastbp.SGD(lr=1e-6, momentum=0.9),
                    "adam": lambda: fastbp.Adam(lr=1e-6),
                    "rmsprop": lambda: fastbp.RMSprop(lr=1e-6)}[optimizer]()
        self.p = np.ones(10 ** 6, dtype)
        self.g = np.full(10 ** 6, 1e-3, dtype)
        self.opt.step(self.p, self.g)

    def time_step_1e6(self, optimizer, dtype):
        self.opt.step(self.p, self.g)

    def track_gbytes_per_second(self, optimizer, dtype):
        import time
        passes = {"sgd": 3, "sgd_momentum": 5, "adam": 7, "rmsprop": 5}[optimizer]
        t0 = time.perf_counter()
        for _ in range(20):
            self.opt.step(self.p, self.g)
        return passes * self.p.nbytes * 20 / (time.perf_counter() - t0) / 1e9
    track_gbytes_per_second.unit = "GB/s"
