"""Train an MLP on the 8x8 handwritten digits with plain minibatch SGD.

    python examples/train_digits.py [--epochs 30] [--hidden 64] [--lr 0.1]

The digits ship inside fastbp (no download). Prints the loss per epoch, the
test accuracy, and the training throughput.
"""
import argparse
import time

import numpy as np

import fastbp


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", help="write the training curves to this PNG (needs matplotlib)")
    args = parser.parse_args(argv)

    X, y = fastbp.datasets.load_digits()
    X_train, X_test, y_train, y_test = fastbp.datasets.train_test_split(X / 16.0, y, seed=args.seed)
    net = fastbp.MLP([64, args.hidden, 10], activation="tanh", output="softmax",
                     dtype=args.dtype, seed=args.seed)
    print(net)
    print(f"train {len(X_train)} / test {len(X_test)} digits, {args.epochs} epochs of SGD"
          f" (batch {args.batch_size}, lr {args.lr})")
    t0 = time.perf_counter()
    history = net.fit(X_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, seed=args.seed, validation_data=(X_test, y_test))
    wall = time.perf_counter() - t0
    accuracy = float(np.mean(net.predict(X_test) == y_test))
    # The first epoch compiles or loads the kernels: the median of the others
    # (with --epochs 2 the upper middle of all was that first epoch).
    later = history["seconds"][1:] or history["seconds"]
    steady = float(np.median(later))
    print(f"test accuracy {accuracy:.4f}; final training loss {history['loss'][-1]:.4f}")
    print(f"{wall:.2f} s in all (the first epoch includes compiling or loading the kernels);"
          f" median epoch{' after the first' if len(history['seconds']) > 1 else ''}"
          f" {steady * 1e3:.2f} ms = {len(X_train) / steady:,.0f} samples/s")
    if args.plot:
        print(f"curves written to {fastbp.plot.history(history, args.plot, title=repr(net))}")
    return accuracy


if __name__ == "__main__":
    main()
