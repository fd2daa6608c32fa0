"""The fit loop: Python runs once per epoch; each epoch is one compiled call."""
import time

import numpy as np

from . import network, threads


class History:
    """What training did, per epoch, as Keras reports it.

    ``history`` maps a metric name to one value per epoch: ``loss`` (the mean
    training loss over the epoch's batches, before each update) and
    ``seconds`` (wall time of the epoch). ``history["loss"]`` also works as
    ``history_object["loss"]``.
    """

    def __init__(self):
        self.epoch = []
        self.history = {"loss": [], "seconds": []}

    def extend(self, other):
        """Append another History's epochs (the model keeps every fit's)."""
        start = len(self.epoch)
        self.epoch.extend(start + e for e in other.epoch)
        for key, values in other.history.items():
            self.history.setdefault(key, []).extend(values)

    def __getitem__(self, key):
        return self.history[key]

    def __len__(self):
        return len(self.epoch)

    def __repr__(self):
        last = f", loss={self.history['loss'][-1]:.6g}" if self.epoch else ""
        return f"History(epochs={len(self.epoch)}{last})"


def run_epochs(net, X, Y, epochs, batch_size, optimizer, shuffle, verbose):
    """Train ``net`` in place with ``optimizer``; inputs are already validated."""
    history = History()
    n = X.shape[0]
    batch_size = min(batch_size, n)
    steps = -(-n // batch_size)
    ws = net._workspace(batch_size)
    perm = np.empty(n, dtype=np.int64)
    if optimizer.fused:  # plain SGD reads no gradient buffer and no state
        grads, state = net.params[:0], np.zeros((2, 0), dtype=net.dtype)
    else:
        grads, state = net._gradient_buffer(), optimizer.ensure_state(net.params)
    threads.ensure()
    for epoch in range(epochs):
        t0 = time.perf_counter()
        loss = network.train_epoch(net.params, grads, state, ws, net.plan, X, Y, perm, net._rng,
                                   batch_size, shuffle, net._loss_code, optimizer.code,
                                   optimizer.hyper, optimizer.t)
        optimizer.t += steps
        seconds = time.perf_counter() - t0
        history.epoch.append(epoch)
        history.history["loss"].append(float(loss))
        history.history["seconds"].append(seconds)
        if verbose:
            print(f"epoch {epoch + 1}/{epochs}  loss {loss:.6g}  ({seconds:.3f} s,"
                  f" {n / max(seconds, 1e-12):,.0f} samples/s)", flush=True)
    return history
