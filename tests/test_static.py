"""Codes as compile-time constants (fastbp._static): a kernel twin compiled
from the kernel's own source with a code fixed must compute what the kernel
computes with that code at run time, bit for bit, for every code."""
import numba
import numpy as np
import pytest
from numba import typeof, types

from fastbp import ops, optim
from fastbp._static import Static, static

ACTS = [ops.IDENTITY, ops.SIGMOID, ops.TANH, ops.RELU, ops.LEAKY_RELU, ops.ELU, ops.SOFTPLUS]
LOSSES = [ops.CROSS_ENTROPY, ops.BINARY_CROSS_ENTROPY, ops.MSE, ops.MAE, ops.HUBER]


def test_static_is_a_literal_int():
    s = static(3)
    assert s is static(3) and int(s) == 3 and s == 3 and isinstance(s, Static)
    assert typeof(s) == types.IntegerLiteral(3)

    @numba.njit
    def echo(k):
        return k + 1
    assert echo(s) == 4
    assert types.IntegerLiteral(3) in echo.signatures[0]


def _twin(call, code):
    """A jitted function that calls ``call`` with ``code`` as a constant."""
    @numba.njit
    def constant(*args):
        return call(code, *args)
    return constant


@numba.njit
def _bias_act(code, z, b):
    ops.bias_act(z, b, code, code)


@numba.njit
def _bias_act_runtime(code, z, b):
    ops.bias_act(z, b, -1, code)  # no constant: the run-time code


@numba.njit
def _act_grad(code, dz, a):
    ops.act_grad(dz, a, code, code)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("code", ACTS)
def test_activation_twins_match_the_kernels(code, dtype):
    rng = np.random.default_rng(code)
    z, b = rng.normal(size=(5, 7)).astype(dtype), rng.normal(size=7).astype(dtype)
    want = z.copy()
    ops.bias_act_forward(want, b, code)
    for f in (_twin(_bias_act, code), _bias_act_runtime):
        got = z.copy()
        f(got, b) if f is not _bias_act_runtime else f(code, got, b)
        np.testing.assert_array_equal(got, want)
    a = want
    d = rng.normal(size=a.shape).astype(dtype)
    want_d = d.copy()
    ops.act_backward(want_d, a, code)
    got_d = d.copy()
    _twin(_act_grad, code)(got_d, a)
    np.testing.assert_array_equal(got_d, want_d)


@numba.njit
def _losses(code, z, out, y, dz):
    ops.outputs_for_loss(out, z, code)
    value = ops._loss_forward(z, out, y, code)
    ops._loss_backward(dz, out, y, code)
    return value


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("code", LOSSES)
def test_loss_twins_match_the_kernels(code, dtype):
    rng = np.random.default_rng(10 + code)
    z = rng.normal(size=(6, 3)).astype(dtype)
    y = rng.random((6, 3)).astype(dtype)
    if code == ops.CROSS_ENTROPY:
        y /= y.sum(axis=1, keepdims=True)
    out, dz = np.empty_like(z), np.empty_like(z)
    want_out, want_dz = np.empty_like(z), np.empty_like(z)
    ops.output_forward(want_out, z, ops.output_of(code))
    want = ops.loss_forward(z, want_out, y, code)
    ops.loss_backward(want_dz, want_out, y, code)
    got = _twin(_losses, code)(z, out, y, dz)
    assert got == want
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(dz, want_dz)


@numba.njit
def _step(code, params, grads, state, hyper, t):
    optim._optimizer_step(params, grads, state, hyper, code, t)


@pytest.mark.parametrize("optimizer", [optim.SGD(lr=0.1, momentum=0.9, nesterov=True),
                                       optim.Adam(lr=0.01), optim.AdamW(lr=0.01),
                                       optim.RMSprop(lr=0.01, momentum=0.5)],
                         ids=["sgd", "adam", "adamw", "rmsprop"])
def test_optimizer_twins_match_the_kernel(optimizer):
    rng = np.random.default_rng(3)
    params, grads = rng.normal(size=50), rng.normal(size=50)
    a, b = params.copy(), params.copy()
    sa, sb = np.zeros((2, 50)), np.zeros((2, 50))
    step = _twin(_step, optimizer.code)
    for t in range(1, 4):
        optim.optimizer_step(a, grads, sa, optimizer.hyper, optimizer.code, t)
        step(b, grads, sb, optimizer.hyper, t)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(sa, sb)
