"""The loss landscape grid: one compiled kernel over 51 x 51 points."""
import fastbp
from fastbp import landscape


class Surface:
    """51 x 51 filter-normalised surface of a trained 64-64-10 digits network
    (1797 samples), float32 and float64."""
    params = (["float32", "float64"],)
    param_names = ["dtype"]
    timeout = 300

    def setup(self, dtype):
        X, y = fastbp.datasets.load_digits()
        self.X, self.y = X / 16, y
        self.net = fastbp.MLP([64, 64, 10], dtype=dtype, seed=0)
        self.net.fit(self.X, self.y, epochs=5, lr=0.1, verbose=0)
        landscape.surface(self.net, self.X, self.y, steps=3, seed=0)  # compile, warm

    def time_surface_51x51(self, dtype):
        landscape.surface(self.net, self.X, self.y, steps=51, seed=0)
