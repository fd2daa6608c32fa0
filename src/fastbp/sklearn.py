"""scikit-learn estimators backed by fastbp (``pip install "fastbp[sklearn]"``).

    from fastbp.sklearn import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=50, random_state=0)
    clf.fit(X, y).score(X_test, y_test)

The parameters follow ``sklearn.neural_network.MLPClassifier`` /
``MLPRegressor`` where fastbp has the feature: ``hidden_layer_sizes``,
``activation``, ``solver`` (``sgd``, ``adam``, ``lbfgs``), ``alpha`` (the
same L2 penalty), ``batch_size`` ("auto" = min(200, n)), ``learning_rate``
(``constant``, ``invscaling``, ``adaptive``, for sgd), ``learning_rate_init``,
``power_t``, ``max_iter``, ``shuffle``, ``random_state``, ``tol``,
``verbose``, ``warm_start``, ``momentum``, ``nesterovs_momentum``,
``early_stopping``, ``validation_fraction``, ``beta_1``, ``beta_2``,
``epsilon``, ``n_iter_no_change``, ``max_fun`` (unused); plus fastbp's own
``dropout`` and ``dtype``. Differences: the regressor's loss is the mean
squared error over all elements (scikit-learn reports half of it, and for
one output its gradient is half of fastbp's; for m outputs scikit-learn's
gradient is m/2 times fastbp's, since it divides by the samples only),
stopping on ``tol`` watches
the epoch's mean loss as scikit-learn does but with fastbp's
:class:`fastbp.EarlyStopping`, and ``adaptive`` is ReduceOnPlateau on the
training loss (divide by 5 after ``n_iter_no_change`` epochs without a
``tol`` improvement).

Fitted attributes: ``coefs_[l]`` and ``intercepts_[l]`` are *views* into the
model's flat buffer (``coefs_[l]`` is the transposed view of fastbp's
``(n_out, n_in)`` weights, scikit-learn's ``(n_in, n_out)``), ``loss_curve_``,
``n_iter_``, ``t_``, ``best_loss_``, ``validation_scores_``,
``best_validation_score_``, ``n_layers_``, ``n_outputs_``,
``out_activation_``, ``classes_`` (classifier), ``n_features_in_`` and
``net_``, the :class:`fastbp.MLP` itself.

Weights in and out: ``MLPClassifier.from_sklearn(fitted)`` and
``est.to_sklearn()`` convert from and to scikit-learn's own estimators.
When ``skl2onnx`` is installed, importing this module registers both
estimators with it (on skl2onnx's own import, so that importing this module
stays as fast), and ``skl2onnx.to_onnx(pipeline, X[:1])`` converts pipelines
holding them (:func:`register_skl2onnx` does it by hand).
"""
import sys
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from .model import MLP
from .optim import LBFGS, SGD, Adam
from .schedules import InverseScaling, ReduceOnPlateau
from .train import EarlyStopping

ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


class _BaseMLP(BaseEstimator):
    _output = None

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, dropout=0.0, dtype="float64"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dropout = dropout
        self.dtype = dtype

    # --------------------------------------------------------------- checks
    def _check_params(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, (int, np.integer)) else list(sizes)
        if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers; got {self.hidden_layer_sizes!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {self.activation!r}")
        if self.solver not in ("sgd", "adam", "lbfgs"):
            raise ValueError(f"solver must be 'sgd', 'adam' or 'lbfgs'; got {self.solver!r}")
        if self.learning_rate not in ("constant", "invscaling", "adaptive"):
            raise ValueError("learning_rate must be 'constant', 'invscaling' or 'adaptive';"
                             f" got {self.learning_rate!r}")
        if not (isinstance(self.max_iter, (int, np.integer)) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be an integer >= 1; got {self.max_iter!r}")
        if not (self.batch_size == "auto" or (isinstance(self.batch_size, (int, np.integer))
                                              and self.batch_size >= 1)):
            raise ValueError(f"batch_size must be 'auto' or an integer >= 1; got {self.batch_size!r}")
        if not 0 < self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in (0, 1); got {self.validation_fraction!r}")
        if not (isinstance(self.n_iter_no_change, (int, np.integer)) and self.n_iter_no_change >= 1):
            raise ValueError(f"n_iter_no_change must be an integer >= 1; got {self.n_iter_no_change!r}")
        if not (isinstance(self.tol, (int, float)) and self.tol >= 0):
            raise ValueError(f"tol must be a number >= 0; got {self.tol!r}")
        return [int(s) for s in sizes]

    def _optimizer(self):
        if self.solver == "lbfgs":
            return LBFGS(tol=max(self.tol, 1e-12))
        if self.solver == "adam":
            return Adam(lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2), eps=self.epsilon)
        return SGD(lr=self.learning_rate_init, momentum=self.momentum,
                   nesterov=bool(self.nesterovs_momentum and self.momentum > 0))

    def _seed(self):
        return int(check_random_state(self.random_state).randint(0, 2 ** 31 - 1))

    # ------------------------------------------------------------- training
    def _new_net(self, n_in, n_out, output):
        hidden = self._check_params()
        seed = self._seed()
        self.net_ = MLP([n_in] + hidden + [n_out], activation=ACTIVATIONS[self.activation],
                        output=output, dtype=self.dtype, seed=seed, alpha=float(self.alpha),
                        dropout=self.dropout)
        self._fit_seed = seed
        self.loss_curve_ = []
        self.t_ = 0
        self.best_loss_ = np.inf
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = None if not self.early_stopping else -np.inf
        self._optimizer_state = self._optimizer()

    def _train(self, X, Y, epochs, incremental):
        net = self.net_
        net.alpha = float(self.alpha)
        opt = self._optimizer_state
        n = X.shape[0]
        batch = min(200, n) if self.batch_size == "auto" else min(int(self.batch_size), n)
        callbacks = []
        validation_split = 0.0
        if not incremental and self.solver != "lbfgs":
            if self.early_stopping:
                validation_split = self.validation_fraction
                monitor = "val_accuracy" if self._output != "identity" else "val_r2"
                callbacks.append(EarlyStopping(monitor=monitor, patience=self.n_iter_no_change,
                                               min_delta=self.tol, restore_best_weights=True))
            else:
                callbacks.append(EarlyStopping(monitor="loss", patience=self.n_iter_no_change,
                                               min_delta=self.tol))
            if self.solver == "sgd" and self.learning_rate == "invscaling":
                callbacks.append(InverseScaling(power_t=self.power_t))
            elif self.solver == "sgd" and self.learning_rate == "adaptive":
                callbacks.append(ReduceOnPlateau(monitor="loss", factor=0.2,
                                                 patience=self.n_iter_no_change,
                                                 min_delta=0.0, min_lr=1e-6))
        net.schedule = None  # schedules here belong to one fit call
        history = net.fit(X, Y, epochs=epochs, batch_size=batch, shuffle=self.shuffle,
                          optimizer=opt, verbose=2 if self.verbose else 0, callbacks=callbacks,
                          validation_split=validation_split,
                          seed=self._fit_seed if not incremental and len(net.history) == 0 else None)
        self.loss_curve_.extend(history["loss"])
        self.n_iter_ = len(self.loss_curve_)
        self.t_ += n * len(history)
        if self.loss_curve_ and self.best_loss_ is not None and not self.early_stopping:
            self.best_loss_ = float(min(self.best_loss_, min(history["loss"])))
        if self.early_stopping and not incremental and self.solver != "lbfgs":
            key = "val_accuracy" if self._output != "identity" else "val_r2"
            self.validation_scores_.extend(history[key])
            self.best_validation_score_ = float(max(self.validation_scores_))
            self.best_loss_ = None
        stopped = callbacks and getattr(callbacks[0], "stopped_epoch", None) is not None
        if not incremental and not stopped and len(history) == epochs and self.solver != "lbfgs":
            warnings.warn(f"Stochastic optimizer: maximum iterations ({epochs}) reached and the"
                          " optimization hasn't converged yet.", ConvergenceWarning)
        self._expose()
        return self

    def _expose(self):
        net = self.net_
        self.coefs_ = [W.T for W in net.weights]        # views, (n_in, n_out)
        self.intercepts_ = list(net.biases)             # views
        self.n_layers_ = len(net.sizes)
        self.n_outputs_ = net.sizes[-1]

    def _fit(self, X, y, incremental):
        first = not hasattr(self, "net_") or not (self.warm_start or incremental)
        X, Y, n_out = self._prepare(X, y, first, incremental)
        if first:
            self._new_net(X.shape[1], n_out, self._output)
        elif X.shape[1] != self.net_.sizes[0]:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting"
                             f" {self.net_.sizes[0]} features as input.")
        return self._train(X, Y, 1 if incremental else self.max_iter, incremental)

    def __setstate__(self, state):
        # Pickling copies the views; point coefs_ and intercepts_ back into
        # the (rebuilt) flat buffer.
        self.__dict__.update(state)
        if hasattr(self, "net_"):
            self._expose()

    @classmethod
    def from_sklearn(cls, fitted):
        """A fitted estimator with the parameters, weights and fitted
        attributes (classes_, loss_curve_, n_iter_, ...) of a fitted
        scikit-learn MLPClassifier / MLPRegressor; ``fit`` with
        ``warm_start=True`` or ``partial_fit`` continues from its weights."""
        from .interop import estimator_from_sklearn
        return estimator_from_sklearn(cls, fitted, issubclass(cls, ClassifierMixin))

    def to_sklearn(self):
        """A fitted ``sklearn.neural_network`` MLPClassifier / MLPRegressor
        with copies of this estimator's parameters (those scikit-learn has),
        weights and fitted attributes; it predicts the same."""
        from .interop import estimator_to_sklearn
        return estimator_to_sklearn(self)

    def _forward(self, X):
        check_is_fitted(self, "net_")
        X = validate_data(self, X, reset=False, dtype=np.float64)
        return self.net_.forward(X)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fastbp (softmax output,
    cross-entropy; a single logistic output for two classes)."""

    def _prepare(self, X, y, first, incremental, classes=None):
        X, y = validate_data(self, X, y, reset=first, dtype=np.float64, multi_output=False)
        check_classification_targets(y)
        if type_of_target(y) == "multilabel-indicator":
            raise ValueError("fastbp's MLPClassifier does not support multilabel targets")
        if first:
            self._binarizer = LabelBinarizer()
            self._binarizer.fit(y if classes is None else classes)
            self.classes_ = self._binarizer.classes_
            if len(self.classes_) < 2:
                raise ValueError("need samples of at least 2 classes; got 1 class:"
                                 f" {self.classes_.tolist()}")
        elif not np.isin(np.unique(y), self.classes_).all():
            raise ValueError(f"y holds labels not in classes_ {list(self.classes_)}")
        binary = len(self.classes_) == 2
        self._output = "sigmoid" if binary else "softmax"
        self.out_activation_ = "logistic" if binary else "softmax"
        codes = np.searchsorted(self.classes_, y)
        return X, codes.astype(np.float64) if binary else codes, 1 if binary else len(self.classes_)

    def fit(self, X, y):
        """Fit the model to data X and labels y (any label type)."""
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y); ``classes`` is required on the first call."""
        if not hasattr(self, "net_"):
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit")
            X, Y, n_out = self._prepare(X, y, True, True, classes=classes)
            self._new_net(X.shape[1], n_out, self._output)
            return self._train(X, Y, 1, True)
        if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise ValueError(f"classes={list(classes)} differs from classes_ {list(self.classes_)}")
        return self._fit(X, y, incremental=True)

    def predict_proba(self, X):
        """Class probabilities, ``(n, n_classes)`` in the order of ``classes_``."""
        out = self._forward(X)
        if out.shape[1] == 1:
            out = np.hstack([1 - out, out])
        return out.astype(np.float64, copy=False)

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by fastbp (identity output,
    mean squared error)."""
    _output = "identity"

    def _prepare(self, X, y, first, incremental):
        X, y = validate_data(self, X, y, reset=first, dtype=np.float64, multi_output=True,
                             y_numeric=True)
        self.out_activation_ = "identity"
        self._y_1d = y.ndim == 1
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        return X, Y, Y.shape[1]

    def fit(self, X, y):
        """Fit the model to data X and targets y, ``(n,)`` or ``(n, n_outputs)``."""
        return self._fit(X, y, incremental=False)

    def partial_fit(self, X, y):
        """One epoch over (X, y), continuing the weights and the optimizer."""
        return self._fit(X, y, incremental=True)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def predict(self, X):
        out = self._forward(X).astype(np.float64, copy=False)
        return out[:, 0] if out.shape[1] == 1 and self._y_1d else out


# ---------------------------------------------------------------- skl2onnx
def register_skl2onnx():
    """Register :class:`MLPClassifier` and :class:`MLPRegressor` with skl2onnx
    (a shape calculator and a converter each; see :mod:`fastbp.export`)."""
    from .export import register_skl2onnx
    register_skl2onnx()


class _RegisterWithSkl2onnx:
    """An import hook: registers the estimators once skl2onnx has been
    imported, so that this module need not import it (0.6 s) itself. It
    stays on ``sys.meta_path`` until skl2onnx is imported for real."""

    def __init__(self):
        self._finding = False

    def find_spec(self, name, path=None, target=None):
        if name != "skl2onnx" or self._finding:
            return None
        import importlib.util
        self._finding = True  # the other finders locate skl2onnx
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._finding = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            if self in sys.meta_path:
                sys.meta_path.remove(self)
            try:
                register_skl2onnx()
            except Exception as exc:  # an skl2onnx fastbp cannot use: skl2onnx still works
                warnings.warn(f"fastbp could not register its estimators with skl2onnx: {exc}",
                              RuntimeWarning, stacklevel=2)

        spec.loader.exec_module = exec_module
        return spec


def _register_when_available():
    import importlib.util
    if "skl2onnx" in sys.modules:
        register_skl2onnx()
    elif importlib.util.find_spec("skl2onnx") is not None and not any(
            isinstance(f, _RegisterWithSkl2onnx) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterWithSkl2onnx())


_register_when_available()
