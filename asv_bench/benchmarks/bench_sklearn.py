"""fastbp.sklearn against scikit-learn's own MLPClassifier, the same
parameters and random_state (the same training): issue 14's three cases
and scikit-learn's L-BFGS solver on the digits.
Compare the two rows of one case in one run as a ratio (asv_bench/
sklearn_dropin.py prints them side by side, interleaved)."""
import warnings

import numpy as np

CASES = {
    "digits-adam-b200": dict(max_iter=30, tol=0.0, random_state=0),
    "digits-sgd-b32": dict(solver="sgd", batch_size=32, max_iter=30, tol=0.0, random_state=0),
    "60k-784-f32-adam": dict(max_iter=3, tol=0.0, random_state=0),
    "digits-lbfgs": dict(solver="lbfgs", max_iter=200, random_state=0),
}


def _data(case):
    if case.startswith("digits"):
        from sklearn.datasets import load_digits
        X, y = load_digits(return_X_y=True)
        return X / 16, y
    rng = np.random.default_rng(0)
    X = rng.random((60000, 784), dtype=np.float32)
    return X, (X[:, :10].argmax(1) + (X[:, 10] > 0.5)) % 10


class SklearnDropIn:
    params = (list(CASES), ["fastbp", "sklearn"])
    param_names = ["case", "library"]
    timeout = 600
    number = 1
    repeat = 3

    def setup(self, case, library):
        self.X, self.y = _data(case)
        if library == "fastbp":
            from fastbp.sklearn import MLPClassifier
            with warnings.catch_warnings():   # compile (or load) the kernels first
                warnings.simplefilter("ignore")
                MLPClassifier(**dict(CASES[case], max_iter=1)).fit(self.X[:300], self.y[:300])
        else:
            from sklearn.neural_network import MLPClassifier
        self.cls = MLPClassifier

    def time_fit(self, case, library):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.cls(**CASES[case]).fit(self.X, self.y)
