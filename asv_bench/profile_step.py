"""Where one training step's time goes: forward, backward + SGD, loss.

    python asv_bench/profile_step.py 784-128-10 64 [--dtype float32] [--activation relu]

Each part is run 30 times inside one jitted loop, median of 7 such runs, on
one batch that stays in cache; GFLOP/s counts the part's matrix products.
"""
import argparse
import time

import numpy as np
from numba import njit

import fastbp
from fastbp import network, ops


@njit
def _forward(k, params, ws, plan, x, loss):
    for _ in range(k):
        network.forward_batch(params, ws, plan, x, loss)


@njit
def _backward_sgd(k, params, ws, plan, x, y, loss):
    for _ in range(k):
        network.backward_sgd_batch(params, ws, plan, x, y, loss, 1e-9)


@njit
def _loss(k, params, ws, plan, x, y, loss):
    s = 0.0
    for _ in range(k):
        out = network._outputs(ws, plan, network.capacity(ws, plan), x.shape[0])
        s += ops.loss_forward(network._logits(ws, plan, x.shape[0]), out, y, loss)
    return s


def median_us(fn, *args, k=30, repeats=7):
    fn(1, *args)
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(k, *args)
        runs.append((time.perf_counter() - t0) / k * 1e6)
    return float(np.median(runs))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("network", help="layer widths, e.g. 784-128-10")
    parser.add_argument("batch", type=int)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--activation", default="relu")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.network.split("-")]
    net = fastbp.MLP(sizes, activation=args.activation, dtype=args.dtype, seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((args.batch, sizes[0])).astype(args.dtype)
    y = np.eye(sizes[-1], dtype=args.dtype)[rng.integers(0, sizes[-1], args.batch)]
    ws, p, plan = net.workspace(args.batch), net.params, net.plan
    f = median_us(_forward, p, ws, plan, x, 0)
    b = median_us(_backward_sgd, p, ws, plan, x, y, 0)
    l = median_us(_loss, p, ws, plan, x, y, 0)
    mults = [a * c for a, c in zip(sizes[:-1], sizes[1:])]
    fwd_flops = 2 * args.batch * sum(mults)
    bwd_flops = 2 * args.batch * (sum(mults) + sum(mults[1:]))
    print(f"{args.network} b{args.batch} {args.dtype}: forward {f:.1f} us ({fwd_flops / f / 1e3:.0f} GFLOP/s),"
          f" backward+SGD {b:.1f} us ({bwd_flops / b / 1e3:.0f} GFLOP/s), loss {l:.1f} us"
          f" -> {args.batch / (f + b + l) * 1e6:,.0f} samples/s")


if __name__ == "__main__":
    main()
