"""scikit-learn estimators backed by fastbp (``pip install "fastbp[sklearn]"``).

    from fastbp.sklearn import MLPClassifier      # instead of sklearn.neural_network
    clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=50, random_state=0)
    clf.fit(X, y).score(X_test, y_test)

A drop-in for ``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor``:
the same parameters, and the same training for the same ``random_state``
(to rounding, in float64): scikit-learn's initialisation (uniform Glorot
bound ``sqrt(6 / (fan_in + fan_out))``, ``2`` for logistic, biases too,
drawn from its ``RandomState`` in its order), its per-epoch shuffle, its
losses (log loss, binary log loss summed over sigmoid outputs, half squared
error, Poisson deviance) with ``alpha / (2 n_batch) ||W||^2`` (``n_batch``
the batch's sum of ``sample_weight`` in a weighted fit), its SGD (momentum, Nesterov)
and Adam (:data:`fastbp.optim.SKL_SGD_CODE`, :data:`~fastbp.optim.SKL_ADAM_CODE`),
``learning_rate`` ``constant``/``invscaling``/``adaptive``, ``tol`` and
``n_iter_no_change`` stopping, ``early_stopping`` on its validation split,
and L-BFGS through SciPy with ``max_iter``, ``max_fun`` and ``tol``. Each
epoch is one compiled call (:func:`fastbp._sklearn_kernels.epoch_sklearn_t`
for a dense X, with the weights held transposed while the fit runs;
``epoch_sklearn`` for a sparse one); Python does scikit-learn's per-epoch
bookkeeping. A scipy.sparse X trains
and predicts through the sparse first layer (CSR; never densified), to the
same weights as scikit-learn's on that matrix.

Fitted attributes are scikit-learn's: ``coefs_[l]`` and ``intercepts_[l]``
are *views* into the model's flat buffer (``coefs_[l]`` is the transposed
view of fastbp's ``(n_out, n_in)`` weights), ``loss_``, ``loss_curve_``,
``n_iter_``, ``t_``, ``best_loss_``, ``validation_scores_``,
``best_validation_score_``, ``n_layers_``, ``n_outputs_``,
``out_activation_``, ``classes_`` (classifier), ``n_features_in_``; plus
``net_``, the :class:`fastbp.MLP` itself. ``dtype`` (fastbp's own) is None
to follow X as scikit-learn does (float32 stays float32), or "float32" or
"float64" to force one; a warm start or ``partial_fit`` continues the
network in its own dtype.

Weights in and out: ``MLPClassifier.from_sklearn(fitted)`` and
``est.to_sklearn()`` convert from and to scikit-learn's own estimators.
When ``skl2onnx`` is installed, importing this module registers both
estimators with it (on skl2onnx's own import, so that importing this module
stays as fast), and ``skl2onnx.to_onnx(pipeline, X[:1])`` converts pipelines
holding them (:func:`register_skl2onnx` does it by hand).
"""
import contextlib
import operator
import re
import sys
import warnings
import weakref
from numbers import Real

from ._validate import broadcasts_to, require

# Before scikit-learn's own imports: without it, or before 1.6 (which brought
# validate_data), they failed with an error that named no fix.
_SKLEARN = require("sklearn", "fastbp.sklearn", "sklearn").__version__
if tuple(map(int, re.match(r"(\d+)\.(\d+)", _SKLEARN).groups())) < (1, 6):
    raise ImportError(f"fastbp.sklearn needs scikit-learn 1.6 or later; this is {_SKLEARN}:"
                      ' pip install "fastbp[sklearn]"')

import numpy as np  # noqa: E402
import scipy.sparse  # noqa: E402
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as _SkClassifier
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import assert_all_finite, check_random_state, column_or_1d
from sklearn.utils._param_validation import StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from . import _atomics
from ._columns import Team, aligned, from_columns, to_columns
from ._columns import _layout as column_layout
from . import _sklearn_kernels as kernels
from . import threads
from ._validate import SparseRows, _as_csr, _check_sparse, _finite_contiguous
from ._workspaces import Claim
from .model import MLP
from .ops import BINARY_CROSS_ENTROPY, MSE
from .optim import LR, SklearnAdam, SklearnSGD
from .train import TRANSPOSED, first_layer_transposed, private_transposed, transpose_first_layer
from .train import _record as record_epoch

ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
OUTPUTS = {"softmax": "softmax", "logistic": "sigmoid", "identity": "identity",
           "exp": "identity"}  # Poisson: exp is applied outside the network
_NON_FINITE = ("Solver produced non-finite parameter weights. The input data may contain large"
               " values and need to be preprocessed.")


class _EstimatorClaim(Claim):
    noun, copy = "estimator", "sklearn.base.clone(est)"


# Each estimator's claim (fastbp._workspaces.Claim), taken by fit and
# partial_fit from their first check to their return: the network's claim
# covers an estimator that has one, and two first fits at once changed
# classes_, the label binarizer and net_ under each other, one's refusal
# putting back the attributes the other was training (reviews HDT, HDV).
_CLAIMS = weakref.WeakKeyDictionary()


def _one_fit(est):
    return _CLAIMS.setdefault(est, _EstimatorClaim()).training()


def _check_solver(est):
    if est.solver not in ("sgd", "adam"):
        raise AttributeError("partial_fit is only available for stochastic optimizers."
                             f" {est.solver} is not stochastic.")
    return True


def _check_regressor_solver(est):
    # Only L-BFGS hides the regressor's partial_fit (docs/guide/sklearn.md):
    # a solver that is no solver at all reaches the parameter validation, which
    # names it (InvalidParameterError), as scikit-learn's regressor does.
    return est.solver != "lbfgs" or _check_solver(est)


def _column_layout(net, batch):
    """The column layout (:func:`fastbp._sklearn_kernels.column_offsets`:
    offsets and size, and :func:`fastbp._columns.column_positions`: where
    each parameter lies) in which a dense fit's batches of ``batch`` rows
    split the hidden units of ``net``
    (:func:`fastbp._sklearn_kernels.epoch_sklearn_t_columns`), or None: for
    batches under COLUMN_ROWS rows on a network of one hidden layer of at
    least COLUMN_UNITS units, where the kernels can run on two threads."""
    if (_atomics.AVAILABLE and batch < kernels.COLUMN_ROWS and len(net.sizes) == 3
            and net.sizes[1] >= kernels.COLUMN_UNITS):
        # (fastbp.MLP.fit's layout, of as many pieces, cached: computing
        # where took 0.1 ms, twice a fit)
        offs, size, where, _ = column_layout(
            net.dtype.itemsize, np.ascontiguousarray(net.plan, dtype=np.int64).tobytes())
        return offs, size, where
    return None


def _converted_sound(X, name="X"):
    """A sparse X (or y) that scikit-learn's validate_data would convert to
    CSR itself (COO, BSR, ...), converted here, its indices checked first as
    MLP checks them: SciPy's conversion reads them unchecked (a COO row
    index of -1 corrupted the heap: the process aborted). A sparse y's CSR
    and CSC too, which scikit-learn converts (CSC) and reads (its labels)
    unchecked: a CSC y's row index of -5 or 10**8 crashed the process
    (review HFI). (A CSR or CSC X it keeps as it is: fastbp checks it.)"""
    if scipy.sparse.issparse(X) and X.ndim == 2 and (X.format not in ("csr", "csc")
                                                     or name == "y"):
        return _as_csr(X, name, numbers=name != "y")
    return X


class _SplitEpoch:
    """epoch_sklearn_t's call for batches of at least SPLIT_ROWS rows (but
    those of :func:`_column_layout`): each
    batch in SPLIT_PIECES pieces (:func:`fastbp._sklearn_kernels.epoch_sklearn_t_split`),
    on ``threads`` threads (a number, or asked each epoch as
    :class:`fastbp._columns.Team` does): the calling one, one epoch a call,
    and helper threads that run every epoch on several threads from the
    first such call to :meth:`close`. Each
    thread has its own workspace and scratch, for batches of up to ``batch``
    rows. The result does not depend on ``threads``.

    With ``columns``, the offsets and size of :func:`_column_layout`
    (batches of fewer rows, a network of one hidden layer): the hidden units
    in SPLIT_PIECES pieces instead
    (:func:`fastbp._sklearn_kernels.epoch_sklearn_t_columns`), the
    parameters and state in that layout."""

    def __init__(self, threads, net, batch, weighted, columns=None):
        self.batch, self.columns = batch, columns
        self.team = Team(threads)
        most = self.team.most
        pieces = kernels.SPLIT_PIECES
        rows = batch if columns else -(-batch // pieces)
        self.values = np.zeros(2 * pieces)
        if columns:
            # Each piece's part of the logits on cache lines of its own.
            line = kernels.LINE // net.dtype.itemsize
            self.gsum = aligned((1, columns[1]), net.dtype)
            self.zs = aligned((2, pieces, -(-batch * net.sizes[-1] // line) * line), net.dtype)
        else:
            self.gsum = np.zeros((pieces, net.params.size), dtype=net.dtype)
        self.ws = [net.workspace(rows) for _ in range(most)]
        self.wbuf = [np.empty(batch if weighted else 0) for _ in range(most)]
        self.pw = [np.empty_like(net.params) for _ in range(most)]

    def __call__(self, params, grads, state, ws, plan, X, Y, sw, idx, wbuf, batch, loss, code,
                 hyper, t, alpha, loss_scale, grad_scale, pw):
        if batch > self.batch:  # (the workspaces' rows: the kernel does not check them)
            raise ValueError(f"batches of {batch} rows; this split epoch has room for"
                             f" {self.batch}")

        def run(i, threads, t, sync):
            if self.columns:
                return kernels.epoch_sklearn_t_columns(
                    i, threads, sync, self.values, params, self.gsum[0], state,
                    self.ws[i], plan, X, Y, sw, idx, self.wbuf[i], batch, loss, code, hyper, t,
                    alpha, loss_scale, grad_scale, self.pw[i], self.zs, self.columns[0])
            return kernels.epoch_sklearn_t_split(
                i, threads, sync, self.values, params, self.gsum, state, self.ws[i],
                plan, X, Y, sw, idx, self.wbuf[i], batch, loss, code, hyper, t, alpha,
                loss_scale, grad_scale, self.pw[i])
        return self.team((params, state, plan, X, Y, sw, idx, hyper, batch, loss, code, alpha,
                          loss_scale, grad_scale), run, t)

    def close(self):
        """Stop the helpers (they wait for the next epoch) and wait for them;
        raise a helper's error, if one failed."""
        self.team.close()


class _BaseMLP(BaseEstimator):
    _parameter_constraints = {**_SkClassifier._parameter_constraints,
                              "dropout": [Real],
                              "dtype": [None, StrOptions({"float32", "float64"})]}

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam", alpha=0.0001,
                 batch_size="auto", learning_rate="constant", learning_rate_init=0.001, power_t=0.5,
                 max_iter=200, shuffle=True, random_state=None, tol=1e-4, verbose=False,
                 warm_start=False, momentum=0.9, nesterovs_momentum=True, early_stopping=False,
                 validation_fraction=0.1, beta_1=0.9, beta_2=0.999, epsilon=1e-8,
                 n_iter_no_change=10, max_fun=15000, dropout=0.0, dtype=None, loss):
        # (``loss`` as in scikit-learn's base class: the regressor's is its
        # parameter; the classifier sets "log_loss" itself, not a parameter.)
        self._keep(locals())

    def _keep(self, arguments):
        # The constructor's arguments as attributes, as scikit-learn keeps them
        # (each class has its own __init__, so that errors name it).
        for name, value in arguments.items():
            if name != "self":
                setattr(self, name, value)

    # --------------------------------------------------------------- checks
    def _check_params(self):
        # scikit-learn's own constraints and messages (InvalidParameterError)
        # are checked by _fit_context as fit and partial_fit start; then what
        # its _fit checks itself, with its wording.
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        # (Entries that are not integers raise scikit-learn's own TypeErrors,
        # word for word, as its MLP does: code that catches them keeps working.)
        if np.any(np.array(sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        if self.dropout != 0:
            raise ValueError(f"dropout must be 0 in fastbp.sklearn, which trains exactly as"
                             f" scikit-learn's MLP (no dropout); got {self.dropout!r}. Use"
                             " fastbp.MLP(dropout=...) for dropout.")
        return sizes

    def _dtype_for(self, X):
        if self.dtype is not None:
            return np.dtype(self.dtype)
        return X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)

    # ------------------------------------------------------------- the loss
    def _scales(self):
        """(loss_scale, grad_scale): scikit-learn's loss over fastbp's (see _sklearn_kernels)."""
        m = self.net_.sizes[-1]
        if self.out_activation_ == "exp":
            return 1.0, 1.0
        if self.net_._loss_code == MSE:
            return 0.5, 0.5 * m
        if self.net_._loss_code == BINARY_CROSS_ENTROPY:
            return float(m), float(m)
        return 1.0, 1.0

    # ------------------------------------------------------------- training
    def _initialize(self, n_in, n_out, hidden, dtype):
        # (a float size raises scikit-learn's TypeError, where it draws the weights)
        sizes = [n_in] + [_layer_size(s) for s in hidden] + [n_out]
        self.net_ = MLP(sizes, activation=ACTIVATIONS[self.activation],
                        output=OUTPUTS[self.out_activation_], dtype=dtype.name, seed=0,
                        alpha=float(self.alpha))
        factor = 2.0 if self.activation == "logistic" else 6.0
        rs = self._random_state
        for W, b in zip(self.net_.weights, self.net_.biases):   # scikit-learn's order and draws
            fan_out, fan_in = W.shape
            bound = np.sqrt(factor / (fan_in + fan_out))
            W[...] = rs.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype, copy=False).T
            b[...] = rs.uniform(-bound, bound, fan_out).astype(dtype, copy=False)
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(sizes)
        self.n_outputs_ = n_out
        self._best_params = self.net_.params.copy()
        self._best_is_current = False
        self.__dict__.pop("_best_follows", None)
        if hasattr(self, "_optimizer"):
            del self._optimizer
        if self.solver in ("sgd", "adam"):
            self.loss_curve_ = []
            self._no_improvement_count = 0
            if self.early_stopping:
                self.validation_scores_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.best_validation_score_ = None
        self._expose()

    def _adopt_coefs(self):
        # Continue from coefs_/intercepts_, which a user may have assigned
        # (scikit-learn's own tests do, before partial_fit): a network of
        # their shapes and dtype takes their values.
        shapes = [np.shape(c) for c in self.coefs_]
        if not hasattr(self, "net_") or shapes != [W.T.shape for W in self.net_.weights]:
            self.net_ = self._network_of([np.asarray(c) for c in self.coefs_],
                                         [np.asarray(i) for i in self.intercepts_],
                                         OUTPUTS[self.out_activation_])
            # The optimizer's moments were for the old network's parameters:
            # partial_fit starts a new one for these. (scikit-learn's raises
            # a broadcasting error there, from its velocities of the old shapes.)
            self.__dict__.pop("_optimizer", None)
            sizes = self.net_.sizes
            self.n_layers_ = len(sizes)
            self.n_outputs_ = sizes[-1]
            self._best_is_current = True  # (early stopping's best: these weights)
            self._lists = (self.coefs_, self.intercepts_)   # (theirs now: no old best kept)
            # What scikit-learn's _initialize sets: the stochastic solvers' own
            # attributes only for them.
            defaults = [("n_iter_", 0), ("t_", 0)]
            if self.solver in ("sgd", "adam"):
                defaults += [("_no_improvement_count", 0), ("loss_curve_", []),
                             ("best_loss_", np.inf), ("validation_scores_", None),
                             ("best_validation_score_", None)]
            for name, value in defaults:
                if not hasattr(self, name):
                    setattr(self, name, value)
        self._sync_in()

    def _sync_in(self):
        # coefs_/intercepts_ are the views _expose made; a user may have
        # assigned other arrays (of the fitted shapes here), which are copied
        # into the buffer, views of the buffer itself included (a reversed or
        # transposed layer, another layer's block): only the very view
        # exposed for a slot is the model's own.
        net = self.net_
        views = self._views()
        if getattr(self, "_best_is_current", False) \
                and getattr(self, "best_validation_score_", None) is not None:
            # After early stopping scikit-learn's coefs_ and intercepts_ *are*
            # its best (_best_coefs, _best_intercepts: the same lists). A
            # list assigned in place of one leaves its best the old arrays:
            # frozen where the new list holds another array, trained on
            # where it holds the model's own (a slot assigned in the same
            # list moves the best with it). A later early-stopping fit that
            # finds no better restores them; their values are the buffer's
            # until the first assigned one is taken in, here.
            lists = self.__dict__.get("_lists", (None, None))
            follows = tuple(tuple(getattr(self, name) is lists[k] or a is view
                                  for a, view in zip(getattr(self, name), views[k]))
                            for k, name in enumerate(("coefs_", "intercepts_")))
            if not all(map(all, follows)):
                self._best_params = net.params.copy()
                self._best_is_current = False
                self._best_follows = follows
        writes = []
        for l, (W, b) in enumerate(zip(net.weights, net.biases)):
            for kind, name, target, values, shape in (
                    (0, "coefs_", W.T, self.coefs_[l], W.T.shape),
                    (1, "intercepts_", b, self.intercepts_[l], b.shape)):
                if values is views[kind][l]:
                    continue
                a = np.asarray(values)
                if kind == 0 and a.shape != shape:
                    raise ValueError(f"coefs_[{l}] must have shape {shape}; got {a.shape}")
                if kind == 1 and not broadcasts_to(a.shape, shape):
                    raise ValueError(_intercept_error(l, a.shape, shape[0]))
                # (every assigned value read before any is written: one may
                # be a view of a block that another one replaces)
                writes.append((kind, name, l, target, a.copy() if np.may_share_memory(a, net.params)
                               else a, values))
        for _, _, _, target, a, _ in writes:
            target[...] = a
        for kind, name, l, target, a, values in writes:
            if any(np.may_share_memory(values, t) for _, _, _, t, _, _ in writes):
                # A view of a block just written no longer shows what was
                # assigned: the slot takes the model's own view, which does.
                seq = getattr(self, name)
                seq = seq if isinstance(seq, list) else list(seq)
                seq[l] = views[kind][l]
                setattr(self, name, seq)
        # scikit-learn reads `activation` at every pass: after set_params, the
        # same weights in a network of the new hidden activation.
        want = ACTIVATIONS[self.activation]
        if any(a != want for a in net.activations):
            # Over the very buffer: the views exposed (which a user may hold,
            # as scikit-learn's coefs_) stay the model's, each slot as it is.
            self.net_ = _twin(net, activation=want, alpha=float(self.alpha), share=True)
            self._exposed = (self.net_, *views)

    def _fit(self, X, y, sample_weight=None, incremental=False, before=None):
        # One fit of a network at a time, as fastbp.MLP.fit: the network this
        # call continues is claimed first (a concurrent fit or partial_fit of
        # the estimator, or net_.fit, is refused before anything changes),
        # and a network the checks make is claimed before it trains.
        # A call refused before training starts changes nothing: the
        # attributes the checks set (classes_, n_features_in_, a new net_ or
        # optimizer) are put back. ``before``: the estimator as a caller
        # found it that has already set some (partial_fit's classes).
        # (Called holding the estimator's own claim, _one_fit, which spans
        # the fit's return: its attributes exposed, its weights checked.)
        with contextlib.ExitStack() as claims:
            old = self.__dict__.get("net_")
            if old is not None:
                claims.enter_context(old._workspaces.training())
            before = dict(vars(self)) if before is None else before
            try:
                self._check_and_train(X, y, sample_weight, incremental, claims, old)
            except BaseException:
                if not vars(self).pop("_began", False):
                    vars(self).clear()
                    vars(self).update(before)
                raise
            vars(self).pop("_began", None)
        self._expose()
        if not np.isfinite(self.net_.params).all():
            raise ValueError(_NON_FINITE)
        return self

    def _check_and_train(self, X, y, sample_weight, incremental, claims, old):
        hidden = self._check_params()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        assigned = vars(self).get("out_activation_")
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        if first_pass:   # (the output its kernels train from now on)
            self._out_fitted = self.out_activation_
        elif assigned is not None:
            self._check_out_activation(assigned)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X)   # (checked once)
            given = sample_weight.dtype
            sample_weight = sample_weight.astype(np.float64, copy=False)
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            dtype = self._dtype_for(X)
            self._initialize(X.shape[1], Y.shape[1], hidden, dtype)
        else:
            self._adopt_coefs()
            if self.net_.input_mean is not None:
                # (review HBM: predict applied an input scaling set on net_,
                # while training read the rows as given: a loss_ of 19.1
                # where predict_proba's log loss on the same rows was 0.77)
                raise ValueError(f"net_ has an input scaling (input_mean, input_scale), which"
                                 f" predict applies and a warm start or partial_fit of"
                                 f" fastbp.sklearn.{type(self).__name__} does not: remove it"
                                 " (est.net_.set_input_scaling(None, None)) and scale X before"
                                 " the estimator (a StandardScaler in a Pipeline), or fit anew")
            n = self._layers_run()
            if n is not None and n != len(self.net_.sizes):
                # (scikit-learn's backprop then fails; this trained every layer
                # while predict ran the first n - 1)
                raise ValueError(f"n_layers_ is {n}, which cuts the network of"
                                 f" {len(self.net_.sizes)} layers that training continues; set"
                                 f" n_layers_ = {len(self.net_.sizes)} to train it whole, or fit"
                                 " anew (warm_start=False)")
            # As scikit-learn, a warm start continues the network it has: new
            # hidden_layer_sizes of the same depth are not read; another depth
            # (which scikit-learn's updates would misalign) is refused.
            sizes, have = [X.shape[1]] + hidden + [Y.shape[1]], list(self.net_.sizes)
            if len(have) != len(sizes) or have[0] != sizes[0] or have[-1] != sizes[-1]:
                raise ValueError(f"the network has layer sizes {have}; these parameters and"
                                 f" data need {sizes}")
        # The dtype of scikit-learn's loss terms: float64 for its log loss;
        # the regressor's those of y - prediction (float32 for float32 y and
        # X and coefs): its loss_ and loss_curve_ are of this type (review
        # HBU). With sample weights, the dtype it sums a batch's weights in,
        # refusing a zero: np.average's in its loss, the result type of the
        # loss terms and the weights (their own float dtype; others float64)
        # (reviews GL, GM); and its losses' type. One dtype for both.
        # (A regressor's y of numeric text is read as float64 numbers, review
        # HDO: its str dtype made the losses text.)
        numeric = Y.dtype if Y.dtype.kind in "biuf" else np.dtype(np.float64)
        terms = (np.result_type(numeric, np.result_type(X.dtype, self.net_.dtype))
                 if isinstance(self, RegressorMixin) else np.dtype(np.float64))
        sw_dtype = terms if sample_weight is None else np.result_type(terms, given)
        if old is None or self.net_._workspaces is not old._workspaces:
            # (a twin over old's buffer shares its claim too: held already)
            claims.enter_context(self.net_._workspaces.training())
        X = _as_rows(X, self.net_.dtype)
        Y = _as_rows(Y, self.net_.dtype, "y")
        sw = np.empty(0) if sample_weight is None else np.ascontiguousarray(sample_weight)
        # As fastbp.MLP.fit: a requested thread count, and every product on
        # one thread when other processes hold the cores (fastbp.threads).
        threads.ensure()
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y, sw, sw_dtype)
        else:
            self._fit_stochastic(X, Y, sw, incremental, sw_dtype)

    def _check_out_activation(self, assigned):
        # scikit-learn trains on with an out_activation_ a user assigned
        # after fitting; fastbp's kernels train the output the model was
        # fitted with (the classifier's reset it silently, the regressor's
        # trained one output and predicted through another)
        trains = self._trained_outputs()
        if assigned not in trains:
            raise ValueError(f"out_activation_ is {assigned!r}; a warm start or partial_fit of"
                             f" fastbp.sklearn.{type(self).__name__} trains the output it was"
                             f" fitted with ({' or '.join(map(repr, trains))}): set it back, or"
                             " fit anew (predictions use an assigned out_activation_)")

    def _new_optimizer(self):
        # (scikit-learn's constraints, Reals, take True: momentum 1, and
        # learning_rate_init and epsilon 1, which fastbp's optimizers refuse as no number)
        def real(v):
            return float(v) if isinstance(v, (bool, np.bool_)) else v
        if self.solver == "sgd":
            return SklearnSGD(lr=real(self.learning_rate_init),
                              nesterov=bool(self.nesterovs_momentum), momentum=real(self.momentum))
        return SklearnAdam(lr=real(self.learning_rate_init), betas=(self.beta_1, self.beta_2),
                           eps=real(self.epsilon))

    def _fit_stochastic(self, X, Y, sw, incremental, sw_dtype=np.dtype(np.float64)):
        net = self.net_
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._new_optimizer()
            # What scikit-learn's optimizer keeps from its parameters when it
            # is made: partial_fit goes on with them after a set_params.
            self._schedule_args = (self.learning_rate, float(self.learning_rate_init),
                                   self.power_t)
        opt = self._optimizer
        opt.ensure_state(net.params)
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        early_stopping = self.early_stopping
        # What scikit-learn's _initialize makes for the solver and stopping
        # rule of the *first* fit only: a warm start or partial_fit after an
        # L-BFGS fit, or with early_stopping switched, found them missing
        # (its AttributeError on loss_curve_, TypeError on best_loss_: after
        # an epoch had trained). Here they start as a first fit's would.
        if getattr(self, "loss_curve_", None) is None:
            self.loss_curve_ = []
        if not hasattr(self, "_no_improvement_count"):
            self._no_improvement_count = 0
        if early_stopping:
            if getattr(self, "validation_scores_", None) is None:
                self.validation_scores_ = []
            if getattr(self, "best_validation_score_", None) is None:
                self.best_validation_score_ = -np.inf
        elif getattr(self, "best_loss_", None) is None:
            self.best_loss_ = np.inf
        if early_stopping:
            stratify = Y.astype(bool) if is_classifier(self) and self.n_outputs_ == 1 else None
            train, val = train_test_split(np.arange(X.shape[0]), random_state=self._random_state,
                                          test_size=self.validation_fraction, stratify=stratify)
            if val.shape[0] < 2:
                raise ValueError("The validation set is too small. Increase 'validation_fraction'"
                                 " or the size of your dataset.")
            X_train, Y_train, X_val = X[train], Y[train], X[val]
            y_val = self._val_targets(Y[val])
            sw_train, sw_val = (sw[train], sw[val]) if sw.size else (sw, None)
        else:
            X_train, Y_train, X_val, y_val, sw_train, sw_val = X, Y, None, None, sw, None
        n = X_train.shape[0]
        if self.batch_size == "auto":
            batch = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going"
                              " to be clipped")
            batch = int(np.clip(self.batch_size, 1, n))
        idx = np.arange(n, dtype=np.int64)
        wbuf = np.empty(batch if sw.size else 0)
        ws = net._workspace(batch)
        grads = net._gradient_buffer()
        loss_scale, grad_scale = self._scales()
        alpha = float(self.alpha)
        x_train = _kernel_rows(X_train)
        transposed = isinstance(x_train, np.ndarray)
        split = contextlib.ExitStack()  # what a split epoch holds (threads, BLAS on one thread)
        if transposed:
            # A dense X: the epochs in the transposed layout, whose products
            # OpenBLAS runs faster (see _sklearn_kernels; one thread, the
            # digits at 32 rows a batch: 1274 against 1464 us an epoch).
            self._columns = _column_layout(net, batch)
            if self._columns is None:
                params, state = np.empty_like(net.params), np.empty_like(opt.state)
            else:   # each piece's parameters on cache lines of their own
                params = aligned(self._columns[1], net.dtype)
                state = aligned((2, self._columns[1]), net.dtype)
            self._relayout(params, state, True)
            epoch = kernels.epoch_sklearn_t
            scratch = (np.empty_like(params),)
        else:
            self._columns = None
            params, state = net.params, opt.state
            epoch = kernels.epoch_sklearn
            scratch = ()
            # CSR X: each epoch with the first layer stored transposed, when
            # its non-zeros pay for moving it (fastbp.train.first_layer_transposed)
            moved = [a for a in (params, grads, *state) if a.size]
            if transpose_first_layer(net.plan, X_train.nnz, len(moved)):
                x_train = x_train + (TRANSPOSED,)
                epoch = _first_layer_transposed_epoch(net.plan, params, state)
        kernel_loss = self._kernel_loss()
        try:
            if transposed and _atomics.AVAILABLE and (batch >= kernels.SPLIT_ROWS
                                                      or self._columns is not None):
                epoch = _SplitEpoch(split.enter_context(threads.training(kernels.SPLIT_PIECES)), net,
                                    batch, sw.size != 0, self._columns)
                # Each piece's products on its thread, also when both pieces
                # run on this one: the same sums either way.
                split.enter_context(threads.blas_on_one_thread())
                split.callback(epoch.close)  # (first: the helpers)
            self._began = True  # (from here on a failed fit keeps what it did, as scikit-learn's)
            self.n_iter_ = 0
            self._epochs(epoch, params, grads, state, ws, x_train, Y_train, sw_train, idx, wbuf,
                         batch, kernel_loss, alpha, loss_scale, grad_scale, scratch, transposed,
                         early_stopping, X_val, y_val, sw_val, incremental, sw_dtype)
        finally:
            try:
                split.close()  # (raises a helper thread's error)
            finally:
                if transposed:
                    self._relayout(params, state, False)
                self._columns = None   # (the fit's alone: not kept with the model)
        follows = self.__dict__.get("_best_follows")
        if early_stopping and not getattr(self, "_best_is_current", False):
            for kind, slots in enumerate(follows or ()):
                for current, best, now in zip(slots, net._layout.views(self._best_params)[kind],
                                              net._layout.views(net.params)[kind]):
                    if current:   # (still scikit-learn's best array: it moved on)
                        best[...] = now
            net.params[...] = self._best_params
        # Then, as scikit-learn's coefs_ *are* its best coefficients after
        # early stopping, a warm-start fit moves them on; a new best is copied.
        # (A fit without early stopping keeps the best that assigned lists left.)
        if early_stopping or follows is None:
            self._best_is_current = True
            self.__dict__.pop("_best_follows", None)

    def _epochs(self, epoch, params, grads, state, ws, x_train, Y_train, sw_train, idx, wbuf,
                batch, kernel_loss, alpha, loss_scale, grad_scale, scratch, transposed,
                early_stopping, X_val, y_val, sw_val, incremental,
                sw_dtype=np.dtype(np.float64)):
        # scikit-learn's epoch loop around the compiled epochs: its stopping
        # rules, schedules, warnings and messages, and its Ctrl-C.
        opt, rs, n = self._optimizer, self._random_state, Y_train.shape[0]
        # scikit-learn's loss_ sums batch_loss * rows per batch; a batch_size
        # of the user's own is np.clip's, an np.int64 for a Python int (which
        # makes float32 terms float64), of its own type for a NumPy integer
        # (review HCX; HCZ)
        loss_type = (sw_dtype if isinstance(self.batch_size, str) else
                     np.result_type(sw_dtype, np.clip(self.batch_size, 1, n).dtype))
        try:
            for _ in range(self.max_iter):
                threads.look_again()
                if self.shuffle:
                    # sklearn.utils.shuffle's draw: it shuffles arange(n) and
                    # indexes with it; the swaps depend on n only, so shuffling
                    # idx itself gives idx[order] without the two arrays.
                    rs.shuffle(idx)
                if sw_train.size:
                    _check_batch_weights(sw_train, idx if self.shuffle else None, batch,
                                         sw_dtype)
                loss, _ = epoch(params, grads, state, ws, self.net_.plan, x_train, Y_train,
                                sw_train, idx, wbuf, batch, kernel_loss, opt.code, opt.hyper,
                                opt.t, alpha, loss_scale, grad_scale, *scratch)
                if transposed and early_stopping:
                    self._relayout(params, state, False)   # the scores read net.params
                opt.t += -(-n // batch)
                self.n_iter_ += 1
                self.loss_ = loss_type.type(loss)   # (scikit-learn's type)
                self.t_ += n
                self.loss_curve_.append(self.loss_)
                self._record(self.loss_)
                if self.verbose:
                    print("Iteration %d, loss = %.8f" % (self.n_iter_, self.loss_))
                # (non-finite parameters: scikit-learn trains on to the end, then
                # _fit raises its error)
                self._update_no_improvement_count(early_stopping, X_val, y_val, sw_val)
                schedule, lr_init, power_t = self._schedule()
                if isinstance(opt, SklearnSGD) and schedule == "invscaling":
                    opt.hyper[LR] = lr_init / (self.t_ + 1) ** power_t
                if self._no_improvement_count > self.n_iter_no_change:
                    what = "Validation score" if early_stopping else "Training loss"
                    msg = ("%s did not improve more than tol=%f for %d consecutive epochs."
                           % (what, self.tol, self.n_iter_no_change))   # (%d: True prints 1)
                    if self._trigger_stopping(msg):
                        break
                    self._no_improvement_count = 0
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn("Stochastic Optimizer: Maximum iterations (%d) reached and"
                                  " the optimization hasn't converged yet." % self.max_iter,
                                  ConvergenceWarning)
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")

    def _relayout(self, params, state, to_transposed):
        # The model's parameters and optimizer state into (or back from) the
        # transposed layout of _sklearn_kernels.epoch_sklearn_t, or the
        # column layout of epoch_sklearn_t_columns (self._columns).
        net, opt = self.net_, self._optimizer
        pairs = [(params, net.params), (state[0], opt.state[0]), (state[1], opt.state[1])]
        columns = self._columns
        where = None if columns is None else columns[2]
        for t, f in pairs:
            if columns is not None:   # (the column layout: epoch_sklearn_t_columns)
                if to_transposed:
                    to_columns(t, f, where)
                else:
                    from_columns(f, t, where)
            elif to_transposed:
                kernels.relayout(t, f, net.plan, True)
            else:
                kernels.relayout(f, t, net.plan, False)

    def _schedule(self):
        # (learning_rate, learning_rate_init, power_t) as the optimizer was made with
        return getattr(self, "_schedule_args", None) or (
            self.learning_rate, float(self.learning_rate_init), self.power_t)

    def _trigger_stopping(self, msg):
        opt = self._optimizer
        if not isinstance(opt, SklearnSGD) or self._schedule()[0] != "adaptive":
            if self.verbose:
                print(msg + " Stopping.")
            return True
        if opt.hyper[LR] <= 1e-6:
            if self.verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        opt.hyper[LR] /= 5.0
        if self.verbose:
            print(msg + " Setting learning rate to %f" % opt.hyper[LR])
        return False

    def _update_no_improvement_count(self, early_stopping, X_val, y_val, sw_val):
        if early_stopping:
            score = self._score_val(X_val, y_val, sw_val)
            self.validation_scores_.append(score)
            if self.verbose:
                print("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self.net_.params.copy()
                self._best_is_current = False
                self.__dict__.pop("_best_follows", None)
        else:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if self.loss_curve_[-1] < self.best_loss_:
                self.best_loss_ = self.loss_curve_[-1]

    def _score_val(self, X, y, sw):
        # scikit-learn's score without input validation: NaN for non-finite
        # float predictions (a classifier's labels are always scored)
        pred = self._decode(self._outputs(X))
        if np.issubdtype(pred.dtype, np.floating) and not np.isfinite(pred).all():
            return np.nan
        score = accuracy_score if is_classifier(self) else r2_score
        return float(score(y, pred, sample_weight=sw))

    def _record(self, loss):
        # train's own: every column of net_.history gets an entry (NaN where
        # not computed); appending to loss alone left the others short, and a
        # saved model's file then shifted them to other epochs.
        record_epoch({"loss": loss, "seconds": np.nan}, self.net_.history)

    def _fit_lbfgs(self, X, Y, sw, sw_dtype=np.dtype(np.float64)):
        from scipy.optimize import minimize
        try:
            from sklearn.utils.fixes import _get_additional_lbfgs_options_dict as _iprint
        except ImportError:   # pragma: no cover - other scikit-learn versions
            def _iprint(key, value):
                return {}
        from sklearn.utils.optimize import _check_optimize_result
        if sw.size:  # the whole set is L-BFGS's batch: scikit-learn's error, before any change
            _check_batch_weights(sw, None, sw.shape[0], sw_dtype)
        net = self.net_
        params = net.params
        grads = net._gradient_buffer()
        ws = net._workspace(X.shape[0])
        rows = _kernel_rows(X)
        # On CSR data the whole optimisation runs with the first layer's
        # block of params stored transposed (one move there and one back per
        # fit; each evaluation then reads and writes a contiguous weight row
        # per non-zero: fastbp.train.first_layer_transposed), where scikit-learn's
        # coefs_[0] raveled lies in order. The gradient buffer is written
        # whole by every evaluation, in the same layout. (50,000 x 5,000 at
        # 1 %, 64 units, 20 iterations: 17.2-18.4 s on W, 3.5-4.4 s so;
        # scikit-learn 4.1-5.0 s.)
        transposed = isinstance(rows, tuple) and transpose_first_layer(net.plan, X.nnz, 1)
        if transposed:
            rows = rows + (TRANSPOSED,)
        # scikit-learn's packing: every coefs_ (fan_in, fan_out) raveled, then every intercept.
        pack = self._pack_index(first_transposed=transposed)
        loss_scale, grad_scale = self._scales()
        alpha = float(self.alpha)

        def objective(x):
            threads.look_again()
            params[pack] = x
            value = kernels.objective_sklearn(grads, params, ws, net.plan, rows, Y, sw, self._kernel_loss(),
                                              alpha, loss_scale, grad_scale)
            return value, grads[pack]

        iprint = 1 if self.verbose is True or self.verbose >= 1 else -1
        self._began = True
        with first_layer_transposed(net.plan, [params], on=transposed), \
                threads.other_blas_on_one_thread():
            res = minimize(objective, params[pack], method="L-BFGS-B", jac=True,
                           options={"maxfun": self.max_fun, "maxiter": self.max_iter,
                                    "gtol": self.tol, **_iprint("iprint", iprint)})
            params[pack] = res.x
        self.n_iter_ = _check_optimize_result("lbfgs", res, self.max_iter)
        self.loss_ = sw_dtype.type(res.fun)
        if net.dtype == np.float32 and self.dtype is None:
            # SciPy evaluates a float32 start in float32 (as here), but its
            # answer is float64, which scikit-learn unpacks into coefs_: its
            # coefs_ and predictions are float64 after L-BFGS. So here.
            self.net_ = _twin(net, dtype="float64")
            self.net_.params[self._pack_index()] = res.x
            opt = getattr(self, "_optimizer", None)
            if opt is not None and opt.state is not None:
                opt.state = opt.state.astype(np.float64)

    def _pack_index(self, first_transposed=False):
        # Where each of scikit-learn's packed parameters lives in the flat
        # buffer; with ``first_transposed``, in a buffer whose first weight
        # block holds W.T (fastbp.train.first_layer_transposed), which is
        # coefs_[0] in order: that block's index runs through it.
        Ws, bs = self.net_._layout.views(np.arange(self.net_.params.size, dtype=np.int64))
        coefs = [W.ravel() if first_transposed and i == 0 else W.T.ravel() for i, W in enumerate(Ws)]
        return np.concatenate(coefs + [b.ravel() for b in bs])

    def _expose(self):
        net = self.net_
        self.coefs_ = [W.T for W in net.weights]        # views, (n_in, n_out)
        self.intercepts_ = list(net.biases)             # views
        # The view objects themselves: a slot of coefs_ / intercepts_ is the
        # model's own while it holds this very object (see _sync_in).
        self._exposed = (net, tuple(self.coefs_), tuple(self.intercepts_))
        self._lists = (self.coefs_, self.intercepts_)   # (the lists: see _sync_in)

    def _views(self):
        """(coefs views, intercepts views) that _expose made for net_ (new
        ones, held by no slot, if net_ has been replaced since)."""
        exposed = self.__dict__.get("_exposed")
        net = self.net_
        if exposed is None or exposed[0] is not net:
            exposed = (net, tuple(W.T for W in net.weights), tuple(net.biases))
            self._exposed = exposed
        return exposed[1], exposed[2]

    def __getstate__(self):
        state = dict(super().__getstate__())   # (a copy: object's is __dict__ itself)
        state.pop("_exposed", None)            # (rebuilt on unpickling)
        lists = state.pop("_lists", (None, None))
        state["_lists_replaced"] = tuple(state.get(name) is not lists[k]
                                         for k, name in enumerate(("coefs_", "intercepts_")))
        if hasattr(self, "net_") and "coefs_" in state and "intercepts_" in state:
            # Which slots hold arrays a user assigned (and no prediction has
            # taken in yet): they stay assigned in the copy, which takes them
            # in (or refuses them) as this estimator would. None assigned:
            # the state is as it always was.
            views = self._views()
            own = tuple(tuple(l for l, a in enumerate(state[name])
                              if l < len(views[k]) and a is views[k][l])
                        for k, name in enumerate(("coefs_", "intercepts_")))
            if own != tuple(tuple(range(len(v))) for v in views) or \
                    len(state["coefs_"]) != len(views[0]) or \
                    len(state["intercepts_"]) != len(views[1]):
                state["_own_slots"] = own
        return state

    def __setstate__(self, state):
        # Pickling copies the views; point coefs_ and intercepts_ back into
        # the (rebuilt) flat buffer, but for the arrays a user had assigned.
        state = dict(state)
        own = state.pop("_own_slots", None)
        replaced = state.pop("_lists_replaced", (False, False))
        if isinstance(self, ClassifierMixin):  # pickled before it had scikit-learn's attribute
            state.setdefault("loss", "log_loss")
        self.__dict__.update(state)
        if hasattr(self, "net_"):
            assigned = (self.__dict__.get("coefs_"), self.__dict__.get("intercepts_"))
            self._expose()
            if own is not None:
                for k, name in enumerate(("coefs_", "intercepts_")):
                    views = getattr(self, name)
                    setattr(self, name, [views[l] if l in own[k] else a
                                         for l, a in enumerate(assigned[k])])
            self._lists = tuple(None if replaced[k] else getattr(self, name)
                                for k, name in enumerate(("coefs_", "intercepts_")))

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
        # scikit-learn's check (dtype "numeric": strings refused with its
        # message), then its precision: X @ coefs_ in NumPy's result type
        # (uint8, int16, bool or float16 X by float32 coefs_ in float32;
        # int64 or float64 X in float64; longdouble in float64 here).
        X = validate_data(self, _converted_sound(X), accept_sparse=["csr", "csc"], reset=False)
        net = self._predicting_net()
        dtype = np.result_type(X.dtype, net.dtype)
        X = X.astype(np.float32 if dtype == np.float32 else np.float64, copy=False)
        if X.dtype == np.float64 and net.dtype == np.float32:
            # scikit-learn multiplies float64 X by float32 coefs_ in float64:
            # so do we, with the weights in a float64 copy of the network.
            net = _twin(net, dtype="float64")
        return self._outputs(X, net)

    def _predicting_net(self):
        """The network scikit-learn's forward pass runs now, which reads
        coefs_, intercepts_, activation and out_activation_ at every call:
        arrays a user assigned of the fitted shapes are taken into net_; of
        other shapes or another number of layers (a network cut after a
        hidden layer, pruned units) they run in a network of their own; an
        out_activation_ set after fitting (``"identity"`` for the logits)
        is the one applied."""
        coefs = [np.asarray(c) for c in self.coefs_]
        intercepts = [np.asarray(i) for i in self.intercepts_]
        # scikit-learn's forward pass runs range(n_layers_ - 1): an n_layers_
        # set smaller cuts the network there (it was ignored), a larger one
        # asks for layers coefs_ does not hold (scikit-learn: IndexError).
        n = self._layers_run()
        if n is not None:
            if n < 2 or n - 1 > min(len(coefs), len(intercepts)):
                raise IndexError(f"n_layers_ is {n}: the forward pass runs n_layers_ - 1 layers,"
                                 f" and coefs_ and intercepts_ hold {len(coefs)} and"
                                 f" {len(intercepts)}")
            coefs, intercepts = coefs[:n - 1], intercepts[:n - 1]
        output = OUTPUTS.get(self.out_activation_, "identity")  # others: _outputs applies them
        if output == "softmax" and coefs and np.ndim(coefs[-1]) == 2 and coefs[-1].shape[1] == 1:
            output = "identity"   # (a softmax of one unit, which no MLP has: _outputs, as others)
        net = self.net_
        if not (len(coefs) == len(intercepts) == len(net.weights)
                and all(c.shape == W.T.shape for c, W in zip(coefs, net.weights))
                and all(i.shape == b.shape or broadcasts_to(i.shape, b.shape)
                        for i, b in zip(intercepts, net.biases))):
            return self._network_of(coefs, intercepts, output)
        self._sync_in()
        net = self.net_
        return net if net.output == output else _twin(net, output=output)

    def _layers_run(self):
        """``n_layers_`` as an int (a 0-d integer array too, as scikit-learn's
        range() takes it), None where unset; another type, a bool or a
        float, is a TypeError (it was ignored, and the whole network ran)."""
        n = getattr(self, "n_layers_", None)
        if n is None:
            return None
        count = _layer_count(n)
        if count is None:
            raise TypeError(f"n_layers_ must be an integer (the forward pass runs n_layers_ - 1"
                            f" layers); got {n!r}")
        return count

    def _network_of(self, coefs, intercepts, output):
        # A network holding the given coefs_ and intercepts_ (which must
        # chain), of coefs_[0]'s dtype (float64 for another), with ``output``.
        sizes = _chained_sizes(coefs, intercepts)
        dtype = coefs[0].dtype if coefs[0].dtype in (np.float32, np.float64) else np.float64
        net = MLP(sizes, activation=ACTIVATIONS[self.activation], output=output,
                  dtype=np.dtype(dtype).name, seed=0, alpha=float(self.alpha))
        for W, b, c, i in zip(net.weights, net.biases, coefs, intercepts):
            W[...] = c.T
            b[...] = i
        old = vars(self).get("net_")   # (none yet: adopting a scikit-learn model's coefs_)
        if old is not None and old.input_mean is not None and sizes[0] == old.sizes[0]:
            # (net_'s input scaling, which a user may have set: it was dropped)
            net.set_input_scaling(old.input_mean, old.input_scale)
        return net

    def _outputs(self, X, net=None):
        out = (self.net_ if net is None else net).forward(X)
        if self.out_activation_ == "exp":
            return np.exp(out, out=out)
        if self.out_activation_ not in OUTPUTS or (self.out_activation_ == "softmax"
                                                   and out.shape[1] == 1):
            # set by a user: scikit-learn's own function (its softmax of one unit: 1.0)
            from sklearn.neural_network._base import ACTIVATIONS as SKLEARN_ACTIVATIONS
            SKLEARN_ACTIVATIONS[self.out_activation_](out)
        return out

    def _kernel_loss(self):
        return kernels.POISSON if self.out_activation_ == "exp" else self.net_._loss_code

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data X and target(s) y, as scikit-learn's MLP does."""
        with _one_fit(self):
            return self._fit(X, y, sample_weight=sample_weight, incremental=False)


def _layer_count(n):
    """An ``n_layers_`` as an int (a NumPy integer or a 0-d integer array
    too, as scikit-learn's range() takes it), or None for another value (a
    bool, a float, an array)."""
    if isinstance(n, (bool, np.bool_)) or np.ndim(n) != 0 or np.asarray(n).dtype.kind not in "iu":
        return None
    return int(n)


def _twin(net, dtype=None, output=None, activation=None, alpha=None, share=False):
    """A copy of the fastbp.MLP net's weights and its input and target
    scaling (a user may have set them on ``net_``) in a network of ``dtype``,
    ``output``, hidden ``activation`` and ``alpha``, each by default the net's own.
    ``share`` (the dtype kept): the twin's weights are the net's very buffer,
    and its claim the net's, so ``coefs_`` and ``intercepts_`` arrays a user
    holds stay the model's (as scikit-learn's, which an activation set by
    set_params never replaces)."""
    twin = MLP(list(net.sizes), activation=activation or list(net.activations) or "tanh",
               output=output or net.output, dtype=dtype or net.dtype.name, seed=0,
               alpha=float(net.alpha) if alpha is None else alpha)
    if share and twin.dtype == net.dtype:
        # (the layout's offsets do not depend on the activations) With the
        # buffer, the claim on it: a fit of either network refuses one of the
        # other (a net_ a user kept) while it runs, as of one network.
        twin._params = net.params
        twin._weights, twin._biases = twin._layout.views(twin._params)
        twin._workspaces = net._workspaces
    else:
        twin.params[...] = net.params
    if net.input_mean is not None:
        twin.set_input_scaling(net.input_mean, net.input_scale)
    if net.target_mean is not None and twin.output == "identity":
        # (forward ignores it; for another output, set_target_scaling refuses it)
        twin.set_target_scaling(net.target_mean, net.target_scale)
    return twin


def _layer_size(s):
    """A hidden layer's size as an int; a float or a bool raises TypeError, as
    where scikit-learn draws the weights (NumPy's "an integer is required")."""
    if isinstance(s, (bool, np.bool_)):
        raise TypeError("an integer is required")
    return operator.index(s)


def _chained_sizes(coefs, intercepts):
    """The layer sizes of scikit-learn's ``coefs_`` and ``intercepts_``,
    which must chain as its forward pass multiplies them (a ValueError
    naming the first that does not: a copy into the network would broadcast
    one weight over a whole layer)."""
    sizes = [coefs[0].shape[0] if coefs and coefs[0].ndim == 2 else -1]
    for l, (c, i) in enumerate(zip(coefs, intercepts)):
        if c.ndim != 2 or c.shape[0] != sizes[-1]:
            raise ValueError(f"coefs_[{l}] of shape {c.shape} does not follow a layer of"
                             f" {sizes[-1]} units")
        if not broadcasts_to(i.shape, (c.shape[1],)):
            raise ValueError(_intercept_error(l, i.shape, c.shape[1]))
        sizes.append(c.shape[1])
    if len(coefs) != len(intercepts) or not coefs:
        raise ValueError(f"coefs_ and intercepts_ must hold one array per layer; got"
                         f" {len(coefs)} and {len(intercepts)}")
    return sizes


def _intercept_error(l, shape, units):
    return (f"intercepts_[{l}] of shape {shape} does not broadcast to the {units} units of"
            f" coefs_[{l}]: it must be of shape ({units},)")


def _as_rows(X, dtype, name="X"):
    """X (or the targets) as training takes it: a C-contiguous array of
    ``dtype``, or a scipy.sparse X as a CSR matrix of ``dtype`` (never
    densified). Finite already (scikit-learn's checks); narrowed to float32,
    a value beyond its range is refused by name, as :class:`fastbp.MLP`
    refuses it (scikit-learn's float32 network trains on float64 targets
    in float64 sums)."""
    if scipy.sparse.issparse(X):
        return _check_sparse(X, X.shape[1], dtype, name).csr
    if X.dtype.itemsize > np.dtype(dtype).itemsize and X.dtype.kind == "f":
        return _finite_contiguous(X, dtype, name)
    return np.ascontiguousarray(X, dtype=dtype)


def _check_batch_weights(sw, idx, batch, dtype=np.float64):
    """scikit-learn's error for a batch whose sample weights sum to zero
    (its weighted loss divides by that sum), raised before the epoch; idx is
    the epoch's row order, or None for rows in order; ``dtype`` the one
    scikit-learn's loss sums them in (see ``_check_and_train``)."""
    w = sw if idx is None else sw[idx]
    starts = np.arange(0, w.shape[0], batch)
    sums = np.add.reduceat(w, starts)
    if w.size and w.min() < 0:
        # Signed weights may cancel: a batch's sum is 0 or not as NumPy's
        # pairwise sum in np.average (scikit-learn's) rounds it, in the
        # weights' dtype, which the sequential float64 sum of reduceat does
        # not follow (reviews GI, GL). Batches near zero (within the
        # rounding of a sum of that many in that dtype) are summed again as
        # np.average sums them.
        # (float64 sums of the float64 copy hold the float32 weights exactly)
        w = w.astype(dtype, copy=False)
        slack = max(1e-8, 4.0 * batch * float(np.finfo(dtype).eps))
        near = np.flatnonzero(np.abs(sums) <= slack * np.add.reduceat(np.abs(w), starts,
                                                                        dtype=np.float64))
        zero = any(w[s:s + batch].sum() == 0 for s in starts[near])
    else:   # (sums of weights >= 0 are 0 only where every weight is)
        zero = (sums == 0).any()
    if zero:
        raise ZeroDivisionError("Weights sum to zero, can't be normalized")


def _first_layer_transposed_epoch(plan, params, state):
    """epoch_sklearn for CSR data, each call on private copies of the
    parameters and optimizer state (and the gradient) with the first layer's
    block stored transposed, which come back as W when it ends
    (:func:`fastbp.train.private_transposed`): a thread reading the model
    meanwhile (predict, a pickle) sees W (it saw W.T: probabilities off by
    0.45, review EG)."""
    into = (np.empty_like(params), np.empty_like(state))

    def epoch(params, grads, state, *rest):
        with private_transposed(plan, params, state, grads, into) as (own_p, own_s):
            return kernels.epoch_sklearn(own_p, grads, own_s, *rest)
    return epoch


def _kernel_rows(X):
    """What the kernels take for X from :func:`_as_rows`: the array, or the
    CSR tuple of :func:`fastbp.ops.sparse_forward` (the first layer's
    sparse products, see :mod:`fastbp.network`)."""
    return SparseRows(X).kernel if scipy.sparse.issparse(X) else X


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier trained by fastbp, as scikit-learn's
    (softmax output for several classes; one logistic output for two
    classes and for each label of a multilabel indicator target)."""

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dropout=0.0, dtype=None):
        self._keep(locals())  # its own, as scikit-learn's: a wrong keyword's TypeError names it
        self.loss = "log_loss"   # (scikit-learn's: set here, not a parameter of the classifier)

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, _converted_sound(X), _converted_sound(y, "y"),
                             accept_sparse=["csr", "csc"],
                             multi_output=True,
                             dtype=(np.float64, np.float32), reset=reset)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            classes = unique_labels(y)
            if self.warm_start:
                if set(classes) != set(self.classes_):
                    raise ValueError("warm_start can only be used where `y` has the same classes as"
                                     f" in the previous call to fit. Previously got {self.classes_},"
                                     f" `y` has {classes}")
            elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                raise ValueError("`y` has classes not in `self.classes_`. `self.classes_` has"
                                 f" {self.classes_}. 'y' has {classes}.")
        if self._label_binarizer.y_type_ == "multiclass":
            self.out_activation_ = "softmax"
        else:
            self.out_activation_ = "logistic"
        lb = self._label_binarizer
        if lb.y_type_ == "multiclass" and y.ndim == 1 and not lb.sparse_output \
                and lb.neg_label == 0 and lb.pos_label == 1:
            # LabelBinarizer.transform's one-hot rows (its classes_ are
            # sorted; every label of y is among them, checked above), in a
            # thirtieth of its time (0.02 against 0.5 ms on the digits).
            Y = y[:, None] == lb.classes_
        else:
            Y = lb.transform(y).astype(bool)
        return X, Y

    def _trained_outputs(self):
        return (self.out_activation_,)   # (as _validate_input has set it from the labels)

    def _val_targets(self, Y):
        return self._label_binarizer.inverse_transform(Y)

    def _decode(self, out):
        if self.n_outputs_ == 1:
            out = out.ravel()
        return self._label_binarizer.inverse_transform(out)

    @available_if(_check_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y); ``classes`` is required on the first call."""
        with _one_fit(self):   # (from the checks on: they set classes_)
            before = dict(vars(self))
            try:
                if _check_partial_fit_first_call(self, classes):
                    self._label_binarizer = LabelBinarizer()
                    if type_of_target(y).startswith("multilabel"):
                        self._label_binarizer.fit(y)
                    else:
                        self._label_binarizer.fit(classes)
            except BaseException:
                vars(self).clear()
                vars(self).update(before)
                raise
            return self._fit(X, y, sample_weight=sample_weight, incremental=True, before=before)

    def predict(self, X):
        """Class labels (or a label indicator matrix for multilabel targets)."""
        return self._decode(self._forward(X))

    def predict_proba(self, X):
        """Class probabilities, ``(n, n_classes)`` in the order of ``classes_``."""
        out = self._forward(X)
        if self.n_outputs_ == 1:
            p = out.ravel()
            return np.vstack([1 - p, p]).T
        return out

    def predict_log_proba(self, X):
        """The log of :meth:`predict_proba`, as scikit-learn's."""
        proba = self.predict_proba(X)
        return np.log(proba, out=proba)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.sparse = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor trained by fastbp, as scikit-learn's
    (identity output and half squared error, or an exp output and half
    Poisson deviance for ``loss="poisson"``)."""
    _parameter_constraints = {**_BaseMLP._parameter_constraints,
                              "loss": [StrOptions({"squared_error", "poisson"})]}

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dropout=0.0, dtype=None):
        self._keep(locals())

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(self, _converted_sound(X), _converted_sound(y, "y"),
                             accept_sparse=["csr", "csc"],
                             multi_output=True,
                             y_numeric=True, dtype=(np.float64, np.float32), reset=reset)
        if scipy.sparse.issparse(y):
            if y.ndim == 2 and y.shape[1] == 1:   # (a 1-D sparse array fits, as scikit-learn's)
                column_or_1d(y)   # scikit-learn's TypeError ("Sparse data was passed for y")
            y = y.toarray()       # (scikit-learn's trains on a sparse array's several columns)
            # (its check saw the stored entries: duplicates summing to inf trained, and
            # failed as a solver's non-finite weights; refused as the dense y is)
            assert_all_finite(y, input_name="y")
        if reset or not hasattr(self, "out_activation_"):  # (scikit-learn: when it initialises)
            self.out_activation_ = "exp" if self.loss == "poisson" else "identity"
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, (y.reshape(-1, 1) if y.ndim == 1 else y)

    def _trained_outputs(self):
        # The output it was first fitted with ("exp": Poisson's), which a warm
        # start after set_params(loss=...) keeps; either, for an estimator
        # that does not say (converted from scikit-learn's, say)
        fitted = vars(self).get("_out_fitted")
        return (fitted,) if fitted else ("identity", "exp")

    def _val_targets(self, Y):
        return Y[:, 0] if Y.shape[1] == 1 else Y

    def _decode(self, out):
        return out.ravel() if out.shape[1] == 1 else out

    @available_if(_check_regressor_solver)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing the weights and the optimizer."""
        with _one_fit(self):
            return self._fit(X, y, sample_weight=sample_weight, incremental=True)

    def predict(self, X):
        """The predicted values, (n_samples,) for one target, else (n_samples, n_targets)."""
        return self._decode(self._forward(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()   # (scikit-learn's own: multi_output not set)
        tags.input_tags.sparse = True
        return tags


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
    if sys.modules.get("skl2onnx") is not None:   # (None: its import blocked)
        register_skl2onnx()
    elif importlib.util.find_spec("skl2onnx") is not None and not any(
            isinstance(f, _RegisterWithSkl2onnx) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterWithSkl2onnx())


_register_when_available()
