"""Regression: fit a noisy 1-D function with Adam, early stopping and a plateau schedule.

    python examples/train_regression.py [--epochs 400] [--hidden 64,64] [--loss mse] [--plot fit.png]

The data are y = sin(2x) + 0.3x + noise (Gaussian, sd --noise) at x drawn
uniformly from [-3, 3]. A quarter is held out as the test set, and a quarter
of the rest as the validation set that drives EarlyStopping (which restores
the weights of the best validation epoch) and ReduceOnPlateau (which halves
the learning rate when the validation loss stalls). The network has an
identity output and the loss --loss (mse, or the robust mae / huber).

Prints the history every few epochs, the test MSE and R^2, the noise floor
(the best MSE any model can reach on noisy targets is noise^2), the error of
the fitted curve against the noise-free function on a grid, and the training
throughput.
"""
import argparse
import time

import numpy as np

import fastbp


def truth(x):
    return np.sin(2.0 * x) + 0.3 * x


def make_data(samples, noise, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3.0, 3.0, size=(samples, 1))
    y = truth(x[:, 0]) + noise * rng.normal(size=samples)
    return x, y


def r2(y, pred):
    return 1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)


def plot(path, net, history, data, best_epoch, test_r2, noise):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X_train, y_train, X_test, y_test = data
    grid = np.linspace(-3.0, 3.0, 400)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.3))
    ax.plot(X_train[:, 0], y_train, ".", color="0.65", markersize=3, label="training data")
    ax.plot(X_test[:, 0], y_test, ".", color="C1", markersize=3, alpha=0.6, label="test data")
    ax.plot(grid, truth(grid), color="k", lw=2.5, alpha=0.5, label="sin(2x) + 0.3x")
    ax.plot(grid, net.predict(grid[:, None]), color="C0", lw=1.5, label=f"network (test R² {test_r2:.3f})")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(repr(net), fontsize=8)
    ax.legend(fontsize=8)
    epochs = np.arange(1, len(history["loss"]) + 1)
    bx.semilogy(epochs, history["loss"], label="training loss")
    bx.semilogy(epochs, history["val_loss"], label="validation loss")
    bx.axvline(best_epoch, color="0.5", ls=":", label=f"best epoch {best_epoch} (restored)")
    if net.loss_name == "mse" and noise > 0:
        bx.axhline(noise ** 2, color="k", lw=0.8, ls="--", label="noise floor (noise sd²)")
    bx.set_xlabel("epoch")
    bx.set_ylabel("loss")
    lr = bx.twinx()
    lr.semilogy(epochs, history["lr"], color="C2", lw=1, alpha=0.7, label="learning rate (right axis)")
    lr.set_ylabel("learning rate")
    handles = bx.get_legend_handles_labels()[0] + lr.get_legend_handles_labels()[0]
    bx.legend(handles=handles, fontsize=8, loc="upper right")
    bx.set_title("training curves (ReduceOnPlateau halves the lr)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--noise", type=float, default=0.1, help="sd of the Gaussian noise")
    parser.add_argument("--epochs", type=int, default=400, help="at most; early stopping may end sooner")
    parser.add_argument("--hidden", default="64,64", help="comma-separated hidden widths")
    parser.add_argument("--activation", default="tanh")
    parser.add_argument("--loss", default="mse", choices=["mse", "mae", "huber"])
    parser.add_argument("--lr", type=float, default=0.003, help="Adam's initial learning rate")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--patience", type=int, default=40, help="early stopping patience, epochs")
    parser.add_argument("--no-plateau", action="store_true", help="keep the learning rate constant")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", help="write the fit and the training curves to this PNG (needs matplotlib)")
    args = parser.parse_args(argv)

    hidden = [int(h) for h in args.hidden.split(",") if h.strip()]
    X, y = make_data(args.samples, args.noise, args.seed)
    X_rest, X_test, y_rest, y_test = fastbp.datasets.train_test_split(X, y, seed=args.seed)
    X_train, X_val, y_train, y_val = fastbp.datasets.train_test_split(X_rest, y_rest, seed=args.seed + 1)
    net = fastbp.MLP([1, *hidden, 1], activation=args.activation, output="identity", loss=args.loss,
                     dtype=args.dtype, seed=args.seed)
    callbacks = [fastbp.EarlyStopping(monitor="val_loss", patience=args.patience, restore_best_weights=True)]
    if not args.no_plateau:
        callbacks.append(fastbp.schedules.ReduceOnPlateau(monitor="val_loss", factor=0.5, patience=15))
    print(net)
    print(f"train {len(X_train)} / validation {len(X_val)} / test {len(X_test)} samples, noise sd"
          f" {args.noise}; Adam lr {args.lr}, batch {args.batch_size}, at most {args.epochs} epochs")

    t0 = time.perf_counter()
    history = net.fit(X_train, y_train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      optimizer="adam", seed=args.seed, verbose=0, validation_data=(X_val, y_val),
                      callbacks=callbacks)
    wall = time.perf_counter() - t0
    n_epochs = len(history["loss"])
    best_epoch = int(np.argmin(history["val_loss"])) + 1
    print(f"{'epoch':>6} {'loss':>10} {'val_loss':>10} {'val_r2':>8} {'lr':>9}")
    for e in sorted({*range(0, n_epochs, max(1, n_epochs // 10)), best_epoch - 1, n_epochs - 1}):
        mark = "  <- best, restored" if e == best_epoch - 1 else ""
        print(f"{e + 1:6d} {history['loss'][e]:10.5f} {history['val_loss'][e]:10.5f}"
              f" {history['val_r2'][e]:8.4f} {history['lr'][e]:9.2e}{mark}")

    pred = net.predict(X_test)
    test_mse = float(np.mean((pred - y_test) ** 2))
    test_r2 = float(r2(y_test, pred))
    grid = np.linspace(-3.0, 3.0, 1001)
    curve_mse = float(np.mean((net.predict(grid[:, None]) - truth(grid)) ** 2))
    truth_var = float(np.var(truth(grid)))
    # the median of the epochs after the first, which compiles or loads the kernels
    steady = float(np.median(history["seconds"][1:] or history["seconds"]))
    print(f"stopped after {n_epochs} epochs; best validation epoch {best_epoch}")
    print(f"test MSE {test_mse:.5f} (noise floor {args.noise ** 2:.5f}), test R^2 {test_r2:.4f}")
    print(f"fitted curve vs the noise-free function: MSE {curve_mse:.5f}"
          f" (the function's variance is {truth_var:.3f})")
    print(f"{wall:.2f} s in all; median epoch after the first {steady * 1e3:.2f} ms ="
          f" {len(X_train) / steady:,.0f} samples/s")
    if args.plot:
        written = plot(args.plot, net, history, (X_train, y_train, X_test, y_test), best_epoch, test_r2,
                       args.noise)
        print(f"figure written to {written}")
    return dict(test_mse=test_mse, test_r2=test_r2, curve_mse=curve_mse, truth_var=truth_var,
                epochs=n_epochs, best_epoch=best_epoch, noise_var=args.noise ** 2)


if __name__ == "__main__":
    main()
