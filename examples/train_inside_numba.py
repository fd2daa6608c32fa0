"""Train inside your own Numba code: a simulation loop that calls fastbp's
compiled training step without ever returning to Python.

    python examples/train_inside_numba.py [--steps 100000]

The loop below samples noisy observations of a damped oscillator online and
fits a 1-32-1 network to them, one SGD step per new batch. Everything runs in
one nopython call: fastbp's kernels take the flat parameter buffer, a
workspace and the layout plan, all plain arrays.
"""
import argparse

import numba
import numpy as np

import fastbp
from fastbp import kernels


@numba.njit(cache=True)
def simulate_and_train(params, grads, ws, plan, steps, batch, lr, seed):
    np.random.seed(seed)
    x = np.empty((batch, 1))
    y = np.empty((batch, 1))
    recent = 0.0
    for step in range(steps):
        for i in range(batch):  # the "simulation": new observations every step
            t = np.random.uniform(0.0, 4.0)
            x[i, 0] = t
            y[i, 0] = np.exp(-0.5 * t) * np.cos(3.0 * t) + 0.01 * np.random.normal()
        loss = kernels.train_step(params, grads, ws, plan, x, y, kernels.MSE, lr)
        recent = loss if step == 0 else 0.99 * recent + 0.01 * loss
    return recent


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100000)
    args = parser.parse_args(argv)

    net = fastbp.MLP([1, 32, 1], activation="tanh", output="identity", dtype="float64", seed=0)
    grads = np.zeros_like(net.params)
    ws = net.workspace(16)
    loss = simulate_and_train(net.params, grads, ws, net.plan, args.steps, 16, 0.1, 0)
    t = np.linspace(0, 4, 200)[:, None]
    truth = np.exp(-0.5 * t[:, 0]) * np.cos(3 * t[:, 0])
    mse = float(np.mean((net.predict(t) - truth) ** 2))
    print(f"{args.steps} steps inside one njit call; running training loss {loss:.5f};"
          f" MSE against the noiseless curve {mse:.5f}")
    return mse


if __name__ == "__main__":
    main()
