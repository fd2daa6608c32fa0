"""The loss landscape of a digits network around its trained weights.

    python examples/loss_landscape.py [--epochs 20] [--steps 51] [--span 1.0] [--out-dir .]

Trains a 64-32-10 tanh network on the 8x8 digits (inputs / 16, plain SGD,
lr 0.1), then draws, after Li et al. 2018 ("Visualizing the Loss Landscape
of Neural Nets"), the training loss along one filter-normalised random
direction through the trained weights (a line), over the plane of two such
directions (contours and a 3-D surface), and along the straight line from
the initial weights (t = 0) to the trained ones (t = 1) and beyond
(Goodfellow et al. 2015). Every grid is evaluated by one compiled kernel;
the script prints the files it wrote and the time of each grid.
"""
import argparse
import os

import fastbp
from fastbp import landscape


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--steps", type=int, default=51, help="grid points per axis")
    parser.add_argument("--span", type=float, default=1.0,
                        help="the grid covers [-span, span] along each direction")
    parser.add_argument("--seed", type=int, default=0, help="seeds the network and the directions")
    parser.add_argument("--out-dir", default=".", help="folder for the PNG files")
    parser.add_argument("--prefix", default="loss_landscape", help="start of each file's name")
    args = parser.parse_args(argv)

    X, y = fastbp.datasets.load_digits()
    X_train, X_test, y_train, y_test = fastbp.datasets.train_test_split(X / 16, y)
    sizes = [64, args.hidden, 10]
    net = fastbp.MLP(sizes, activation="tanh", seed=args.seed)
    start = fastbp.MLP(sizes, activation="tanh", seed=args.seed)  # the same initial weights
    net.fit(X_train, y_train, epochs=args.epochs, batch_size=32, lr=0.1, verbose=0)
    accuracy = float((net.predict(X_test) == y_test).mean())
    print(f"{net}: training loss {net.loss(X_train, y_train):.4f}, test accuracy {accuracy:.3f}")

    line = landscape.line(net, X_train, y_train, steps=args.steps, span=args.span, seed=args.seed)
    surface = landscape.surface(net, X_train, y_train, steps=args.steps, span=args.span,
                                seed=args.seed)
    interpolation = landscape.interpolate(start, net, X_train, y_train, steps=args.steps)
    n = len(X_train)
    for name, result, points in (("line", line, args.steps),
                                 ("surface", surface, args.steps ** 2),
                                 ("interpolation", interpolation, args.steps)):
        print(f"{name:>13}: {points:5d} points x {n} samples in {result.seconds:.3f} s"
              f" ({result.seconds / points * 1e3:.3f} ms a point)")

    os.makedirs(args.out_dir, exist_ok=True)

    def path(suffix):
        return os.path.join(args.out_dir, args.prefix + suffix + ".png")

    files = {
        "overview": landscape.plot_overview(path(""), line=line, surface=surface,
                                            interpolation=interpolation),
        "line": landscape.plot_line(line, path("_line")),
        "contour": landscape.plot_surface(surface, path("_contour"), kind="contour"),
        "surface": landscape.plot_surface(surface, path("_surface"), kind="surface"),
        "interpolation": landscape.plot_interpolation(interpolation, path("_interpolation")),
    }
    for kind, file in files.items():
        print(f"wrote {file} ({kind})")
    return dict(net=net, accuracy=accuracy, line=line, surface=surface,
                interpolation=interpolation, files=files,
                seconds={"line": line.seconds, "surface": surface.seconds,
                         "interpolation": interpolation.seconds})


if __name__ == "__main__":
    main()
