"""The lecture's cost argument: one full gradient by backpropagation against
the naive formulation (one central difference per weight), as W grows."""
import numpy as np

import fastbp

# Networks [n, h, 1] with W = 24 ... about 10^5 weights (naive only up to ~10^4).
SIZES = {24: [3, 3, 3], 241: [10, 20, 1], 2_383: [30, 70, 3], 10_201: [100, 100, 1],
         100_401: [500, 200, 1]}


class FullGradient:
    params = (list(SIZES), ["backprop", "naive", "forward"])
    param_names = ["weights", "method"]
    timeout = 600

    def setup(self, weights, method):
        if method == "naive" and weights > 20_000:
            raise NotImplementedError("O(W^2): too slow to time here")
        sizes = SIZES[weights]
        out = "identity"
        self.net = fastbp.MLP(sizes, activation="tanh", output=out, dtype="float64", seed=0)
        assert self.net.n_params == weights
        rng = np.random.default_rng(0)
        self.X = rng.normal(size=(32, sizes[0]))
        self.y = rng.normal(size=(32, sizes[-1]))
        self.net.gradient(self.X, self.y)
        self.net.numerical_gradient(self.X[:2], self.y[:2])
        self.net.forward(self.X)

    def time_gradient(self, weights, method):
        if method == "backprop":
            self.net.gradient(self.X, self.y)
        elif method == "naive":
            self.net.numerical_gradient(self.X, self.y)
        else:
            self.net.forward(self.X)
