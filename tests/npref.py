"""An independent NumPy reference MLP for the tests: plain, obvious, float64.

Written from the math in DESIGN.md, not from fastbp's kernels.
"""
import numpy as np

ACT = {
    "identity": (lambda z: z, lambda z: np.ones_like(z)),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "relu": (lambda z: np.maximum(z, 0), lambda z: (z > 0).astype(z.dtype)),
    "leaky_relu": (lambda z: np.where(z > 0, z, 0.01 * z), lambda z: np.where(z > 0, 1.0, 0.01)),
    "elu": (lambda z: np.where(z > 0, z, np.exp(np.minimum(z, 0)) - 1),
            lambda z: np.where(z > 0, 1.0, np.exp(np.minimum(z, 0)))),
    "softplus": (lambda z: np.log1p(np.exp(z)), lambda z: 1 / (1 + np.exp(-z))),
}


def unpack(params, sizes):
    """Split a flat buffer into [(W (n_out, n_in), b)] in the documented layout."""
    layers, o = [], 0
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        W = params[o:o + n_out * n_in].reshape(n_out, n_in)
        o += n_out * n_in
        b = params[o:o + n_out]
        o += n_out
        layers.append((W, b))
    assert o == params.size
    return layers


def one_hot(y, k):
    Y = np.zeros((len(y), k))
    Y[np.arange(len(y)), y] = 1
    return Y


def loss_and_dz(z, Y, loss):
    """Mean loss (PyTorch conventions) and dE/dz for logits z."""
    n, m = z.shape
    if loss == "cross_entropy":
        zs = z - z.max(axis=1, keepdims=True)
        logp = zs - np.log(np.exp(zs).sum(axis=1, keepdims=True))
        return -(Y * logp).sum() / n, (np.exp(logp) - Y) / n
    d = z - Y
    if loss == "binary_cross_entropy":
        p = 1 / (1 + np.exp(-z))
        value = -(Y * np.log(p) + (1 - Y) * np.log(1 - p)).mean()
        return value, (p - Y) / (n * m)
    if loss == "mse":
        return (d ** 2).mean(), 2 * d / (n * m)
    if loss == "mae":
        return np.abs(d).mean(), np.sign(d) / (n * m)
    if loss == "huber":
        a = np.abs(d)
        return np.where(a <= 1, 0.5 * d ** 2, a - 0.5).mean(), np.clip(d, -1, 1) / (n * m)
    raise ValueError(loss)


def output(z, out):
    if out == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if out == "sigmoid":
        return 1 / (1 + np.exp(-z))
    return z


def forward(params, sizes, acts, X):
    """Pre-activations zs and activations as (as[0] = X; the last z are logits)."""
    a, zs, As = X, [], [X]
    layers = unpack(params, sizes)
    for l, (W, b) in enumerate(layers):
        z = a @ W.T + b
        zs.append(z)
        a = ACT[acts[l]][0](z) if l < len(layers) - 1 else z
        As.append(a)
    return zs, As


def loss_and_grad(params, sizes, acts, loss, X, Y):
    """Mean loss and its gradient (flat, fastbp's layout) by the chain rule."""
    params = np.asarray(params, dtype=np.float64)
    zs, As = forward(params, sizes, acts, X)
    value, delta = loss_and_dz(zs[-1], Y, loss)
    grads = []
    layers = unpack(params, sizes)
    for l in range(len(layers) - 1, -1, -1):
        W, _ = layers[l]
        grads.append((delta.T @ As[l], delta.sum(axis=0)))
        if l > 0:
            delta = (delta @ W) * ACT[acts[l - 1]][1](zs[l - 1])
    flat = np.concatenate([np.concatenate([dW.ravel(), db]) for dW, db in reversed(grads)])
    return value, flat


def sgd_epoch(params, sizes, acts, loss, X, Y, batch_size, lr):
    """One epoch of plain SGD over consecutive batches, in float64."""
    params = np.array(params, dtype=np.float64)
    for s in range(0, len(X), batch_size):
        _, g = loss_and_grad(params, sizes, acts, loss, X[s:s + batch_size], Y[s:s + batch_size])
        params -= lr * g
    return params

