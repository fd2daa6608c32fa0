"""Why backpropagation matters: the time of one full gradient, naive vs backprop.

    python examples/naive_vs_backprop.py [--max-naive 20000] [--plot naive_vs_backprop.png]

The lecture's naive formulation perturbs each of the W weights and runs the
network forward again (here twice, a central difference): W forward passes of
O(W) work each, O(W^2) in all. Backpropagation gets every derivative from one
forward and one backward pass, O(W); theory puts it at about 2-3 forward
passes. The table gives both times as W grows from the lecture's 24 weights
to 10^5, the ratio backprop / forward, and the slopes of log(time) against
log(W) (naive ~2, backprop ~1 once the network is big enough for the work,
not the call, to dominate). The column naive/(2W fwd) checks the mechanism
directly: the naive gradient costs 2W forward passes. Timed through the compiled kernels, median of
several runs, on 32 samples.
"""
import argparse
import time

import numpy as np

import fastbp
from fastbp import kernels

NETWORKS = [[3, 3, 3], [10, 20, 1], [30, 70, 3], [100, 100, 1], [200, 120, 1], [200, 240, 1],
            [500, 200, 1]]


def median_time(fn, min_seconds=0.2, repeats=5):
    fn()
    runs = []
    for _ in range(repeats):
        k, t0 = 0, time.perf_counter()
        while True:
            fn()
            k += 1
            if time.perf_counter() - t0 > min_seconds / repeats:
                break
        runs.append((time.perf_counter() - t0) / k)
    return float(np.median(runs))


def measure(sizes, max_naive, n=32):
    net = fastbp.MLP(sizes, activation="tanh", output="identity", dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, sizes[0]))
    Y = rng.normal(size=(n, sizes[-1]))
    p, plan, ws = net.params, net.plan, net.workspace(n)
    g, scratch, out = np.empty_like(p), np.empty_like(p), np.empty((n, sizes[-1]))
    loss = kernels.MSE
    t_fwd = median_time(lambda: kernels.predict(out, p, ws, plan, X, loss))
    t_bp = median_time(lambda: kernels.gradient(g, scratch, p, ws, plan, X, Y, loss))
    t_naive = None
    if net.n_params <= max_naive:
        t_naive = median_time(lambda: kernels.numerical_gradient(g, p, ws, plan, X, Y, loss, 1e-6, 0.0),
                              min_seconds=0.5, repeats=3)
    return net.n_params, t_fwd, t_bp, t_naive


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-naive", type=int, default=20_000,
                        help="largest W for the naive gradient (its cost grows as W^2)")
    parser.add_argument("--networks", type=int, default=len(NETWORKS))
    parser.add_argument("--plot", help="write a log-log plot to this PNG (needs matplotlib)")
    args = parser.parse_args(argv)
    if not 2 <= args.networks <= len(NETWORKS):
        parser.error(f"--networks must be 2 to {len(NETWORKS)} (a slope needs two sizes)")

    rows = [measure(s, args.max_naive) for s in NETWORKS[:args.networks]]
    print(f"{'weights W':>10} {'forward':>12} {'backprop':>12} {'naive':>12} {'naive/backprop':>15}"
          f" {'naive/(2W fwd)':>15} {'backprop/forward':>17}")
    for w, f, b, nv in rows:
        naive = f"{nv * 1e3:10.3f} ms" if nv else f"{'-':>12}"
        ratio = f"{nv / b:15,.0f}" if nv else f"{'-':>15}"
        per_pass = f"{nv / (2 * w * f):15.2f}" if nv else f"{'-':>15}"
        print(f"{w:>10,} {f * 1e6:9.1f} us {b * 1e6:9.1f} us {naive} {ratio} {per_pass} {b / f:17.2f}")
    ws = np.log([r[0] for r in rows])
    slope_bp = np.polyfit(ws[-3:], np.log([r[2] for r in rows[-3:]]), 1)[0]
    naive_rows = [r for r in rows if r[3]]
    slope_naive = (np.polyfit(np.log([r[0] for r in naive_rows[-3:]]),
                              np.log([r[3] for r in naive_rows[-3:]]), 1)[0]
                   if len(naive_rows) >= 2 else float("nan"))
    print(f"log-log slope: naive {slope_naive:.2f} (theory 2), backprop {slope_bp:.2f} (theory 1)")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.loglog([r[0] for r in rows], [r[2] for r in rows], "o-", label="backpropagation")
        ax.loglog([r[0] for r in naive_rows], [r[3] for r in naive_rows], "s-", label="naive (finite differences)")
        ax.loglog([r[0] for r in rows], [r[1] for r in rows], ":", label="one forward pass")
        ax.set_xlabel("number of weights W")
        ax.set_ylabel("seconds per full gradient (32 samples)")
        ax.set_title("One gradient: naive O(W²) vs backprop O(W)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot written to {args.plot}")
    return dict(rows=rows, slope_naive=slope_naive, slope_backprop=slope_bp)


if __name__ == "__main__":
    main()
