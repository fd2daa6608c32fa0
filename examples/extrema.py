"""Gradient descent finds *a* minimum, not *the* minimum: the lecture's extrema figure.

    python examples/extrema.py [--starts=-2.1,-0.3,0.9,1.1,3.1] [--lr 0.05] [--plot extrema.png]

Part 1, one dimension. The function

    f(x) = x^4/4 - 2x^3/3 - x^2/2 + 2x,    f'(x) = (x + 1)(x - 1)(x - 2)

has three critical points, read off the factored derivative (and checked
below with numpy.roots on f'): a global minimum at x = -1 (f = -19/12), a
local maximum at x = 1 (f = 13/12) and a local minimum at x = 2 (f = 2/3);
f''(x) = 3x^2 - 4x - 1 is 6, -2 and 3 there. Plain gradient descent,
x <- x - lr f'(x) (the lecture's Δw = -λ ∂E/∂w with one weight), runs from
several starts until a step is below 1e-13. With small steps every start
left of the maximum ends in the global minimum, every start right of it in
the local one: the descent only sees the slope where it stands. Large steps
jump: from --starts=-5 the first step is 0.05 * 168 = 8.4, to x = 3.4, and
that run ends in the local minimum. (Near a minimum x* the steps converge
only for lr < 2 / f''(x*): 1/3 at the global minimum, 2/3 at the local
one; above 1/3 a run cannot settle at -1, and ends at 2, in a cycle, or
diverges. A run still moving after 100,000 steps is shown as "unsettled".)

Part 2, the same with fastbp (--seeds N, 0 to skip): a 1-3-1 tanh network
fitted to sin(2x) on [-3, 3] by L-BFGS from N initial weights (seeds). Each
run goes on until the loss no longer falls by a relative 1e-12 (L-BFGS's
default tolerance, 1e-7, can stop a run on a slow stretch, with the
gradient still at 0.02, at a loss it would go on to leave), where the
gradient has all but vanished (its largest component is printed), and the
final losses fall into distinct levels: some seeds find a near-perfect
fit, others settle in a minimum where the three units cannot bend the
curve enough.
"""
import argparse

import numpy as np

import fastbp

GLOBAL_MIN, MAXIMUM, LOCAL_MIN = -1.0, 1.0, 2.0
TOL = 1e-13   # a run has settled once a step is smaller than this
DERIVATIVE = [1.0, -2.0, -1.0, 2.0]  # f'(x) = x^3 - 2x^2 - x + 2 = (x + 1)(x - 1)(x - 2)


def f(x):
    return x ** 4 / 4 - 2 * x ** 3 / 3 - x ** 2 / 2 + 2 * x


def df(x):
    return (x + 1) * (x - 1) * (x - 2)


def descend(x, lr, tol=None, max_steps=100_000):
    """Gradient descent from ``x``; returns the path (every iterate, start included)."""
    tol = TOL if tol is None else tol
    x = float(x)  # a Python float overflows to inf quietly; the check below reports it
    path = [x]
    for _ in range(max_steps):
        step = lr * df(x)
        x = x - step
        path.append(x)
        if not np.isfinite(x):
            raise FloatingPointError(f"gradient descent diverged from {path[0]} with lr={lr}")
        if abs(step) < tol:
            break
    return np.array(path)


def fit_seeds(seeds, hidden=3):
    """Fit sin(2x) with a 1-hidden-1 tanh network from each seed; the loss
    curves, the fits and each final gradient's largest component."""
    x = np.linspace(-3.0, 3.0, 200)[:, None]
    y = np.sin(2.0 * x[:, 0])
    curves, fits, gradients = [], [], []
    for seed in range(seeds):
        net = fastbp.MLP([1, hidden, 1], activation="tanh", output="identity", dtype="float64", seed=seed)
        history = net.fit(x, y, epochs=5000, optimizer=fastbp.optim.LBFGS(tol=1e-12), verbose=0)
        curves.append(np.array(history["loss"]))
        fits.append(net.predict(x))
        gradients.append(float(np.abs(net.gradient(x, y)).max()))
    return x[:, 0], y, curves, fits, np.array(gradients)


def plot(path, starts, paths, ends, net_part):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 1 if net_part is None else 3
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.2), squeeze=False)
    ax = axes[0, 0]
    grid = np.linspace(-2.4, 3.3, 400)
    ax.plot(grid, f(grid), color="0.3", label="f(x)")
    for k, p in enumerate(paths):
        colour = "C0" if p[-1] < MAXIMUM else "C1" if p[-1] > MAXIMUM else "C3"
        ax.plot(p, f(p), ".", color=colour, alpha=0.6, markersize=5,
                label="gradient descent iterates" if k == 0 else None)
    ax.plot(starts, f(starts), "o", mfc="white", color="k", label="starts")
    ax.plot([GLOBAL_MIN], [f(GLOBAL_MIN)], "*", color="C0", markersize=16, label="global minimum x = -1")
    ax.plot([LOCAL_MIN], [f(LOCAL_MIN)], "*", color="C1", markersize=16, label="local minimum x = 2")
    ax.plot([MAXIMUM], [f(MAXIMUM)], "v", color="C3", markersize=9, label="local maximum x = 1")
    ax.set_ylim(-2.2, 6.5)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_title("x ← x − λ f'(x) from several starts")
    ax.legend(fontsize=8, loc="upper center")
    if net_part is not None:
        x, y, curves, fits = net_part[:4]
        finals = np.array([c[-1] for c in curves])
        ax = axes[0, 1]
        for seed, c in enumerate(curves):
            ax.semilogy(np.arange(1, len(c) + 1), c, label=f"seed {seed}: {c[-1]:.2g}")
        ax.set_xlabel("L-BFGS iteration")
        ax.set_ylabel("training loss (MSE)")
        ax.set_title("1-3-1 tanh net on sin(2x): one net, several minima")
        ax.legend(fontsize=7, ncol=2)
        ax = axes[0, 2]
        ax.plot(x, y, color="0.3", lw=3, alpha=0.4, label="sin(2x)")
        best, worst = int(np.argmin(finals)), int(np.argmax(finals))
        ax.plot(x, fits[best], color="C2", label=f"seed {best}, loss {finals[best]:.2g}")
        ax.plot(x, fits[worst], "--", color="C3", label=f"seed {worst}, loss {finals[worst]:.2g}")
        ax.set_xlabel("x")
        ax.set_ylabel("network output")
        ax.set_title("best and worst minimum found")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", default="-2.1,-1.6,-0.3,0.6,0.95,1.05,1.5,2.6,3.1",
                        help="comma-separated start points (write --starts=-1,2 when the first is negative)")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seeds", type=int, default=8,
                        help="fit a small network from this many seeds (0: skip)")
    parser.add_argument("--plot", help="write the figure to this PNG (needs matplotlib)")
    args = parser.parse_args(argv)

    critical = np.sort(np.roots(DERIVATIVE).real)
    assert np.allclose(critical, [GLOBAL_MIN, MAXIMUM, LOCAL_MIN])
    print(f"f(x) = x^4/4 - 2x^3/3 - x^2/2 + 2x: global minimum f({GLOBAL_MIN:g}) = {f(GLOBAL_MIN):.4f},"
          f" local maximum f({MAXIMUM:g}) = {f(MAXIMUM):.4f}, local minimum f({LOCAL_MIN:g}) = {f(LOCAL_MIN):.4f}")

    starts = np.array([float(s) for s in args.starts.split(",")])
    paths = [descend(x0, args.lr) for x0 in starts]
    ends = np.array([p[-1] for p in paths])
    # A start exactly on the maximum stays there: f' = 0 at every critical point.
    # A run that never settled (its last step still above the tolerance: lr
    # above 1/3 bounces around -1 until max_steps) ends in none of them.
    names = {GLOBAL_MIN: "global", MAXIMUM: "maximum", LOCAL_MIN: "local"}
    # (descend's own test, on the step it computed: the difference of the
    # iterates, rounded into x, may be a hair above it)
    which = [names[min(names, key=lambda c: abs(p[-1] - c))]
             if abs(args.lr * df(p[-2])) < TOL else "unsettled" for p in paths]
    print(f"gradient descent, lr {args.lr}:")
    print(f"{'start':>8} {'steps':>6} {'end':>12} {'f(end)':>10}  ends in")
    for x0, p, e, w in zip(starts, paths, ends, which):
        print(f"{x0:8.3f} {len(p) - 1:6d} {e:12.8f} {f(e):10.6f}  {w}")

    result = dict(starts=starts, ends=ends, f_ends=f(ends), which=which,
                  steps=[len(p) - 1 for p in paths],
                  global_min=GLOBAL_MIN, local_min=LOCAL_MIN, maximum=MAXIMUM)
    net_part = None
    if args.seeds > 0:
        net_part = fit_seeds(args.seeds)
        finals = np.array([c[-1] for c in net_part[2]])
        print("1-3-1 tanh network fitted to sin(2x) by L-BFGS, final training loss per seed:")
        for seed, (c, loss, g) in enumerate(zip(net_part[2], finals, net_part[4])):
            print(f"  seed {seed}: {loss:.5f} after {len(c)} iterations, largest gradient component {g:.1e}")
        print(f"best {finals.min():.5f}, worst {finals.max():.5f}: {finals.max() / finals.min():,.0f}x apart")
        result["net_losses"] = finals
        result["net_gradients"] = net_part[4]
    if args.plot:
        print(f"figure written to {plot(args.plot, starts, paths, ends, net_part)}")
    return result


if __name__ == "__main__":
    main()
