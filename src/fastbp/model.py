"""MLP: the thin Pythonic class over the flat buffer and the kernels.

The class holds the model's state and reads as the list of what a model
does; the work is elsewhere: argument checks (and what a fit resolves from
its arguments) in ``fastbp._args``, the kernels in :mod:`fastbp.network`,
the training loops in ``fastbp.train``, the preprocessing arithmetic in
``fastbp._preprocess``, the model file in ``fastbp._modelfile`` (written
here, read back by :func:`fastbp.load`, which imports this module: this
module never imports ``fastbp.io``).
"""
import contextlib
import copy
import functools
import itertools
import os
import threading
import weakref

import numpy as np

from . import _ahead, _args, _modelfile, _preprocess, network, threads
from ._args import ACTIVATIONS, DTYPES, INITS, LOSSES, OUTPUTS  # noqa: F401
from ._jit import compile_notice
from ._static import static
from ._validate import (SparseRows, check_int, check_positive, check_targets, check_X, kernel_rows,
                        kernel_x)
from ._workspaces import Workspaces
from ._validate import _scaled_up, all_finite, array_room, fit_weights
from .layout import Layout, frozen
from .ops import IDENTITY
from .optim import LBFGS, Optimizer
from .schedules import Schedule
from .train import (TRANSPOSED, History, move_first_layer, run_epochs, run_lbfgs,
                    _r2_score, run_started, transpose_first_layer)

# He initialisation for the ReLU family, Glorot for the rest.
RELU_FAMILY = ("relu", "leaky_relu", "elu", "softplus")
# Rows per chunk for inference, loss and full-batch gradients.
CHUNK = 2048
# A sparse X never touches its rows' input block in a workspace (2 n_in
# values a row: the sparse kernels read the CSR arrays), which is still
# allocated: past about a million columns a chunk's workspace could not be
# (review HCN: predict of a float64 model on 2,000,000 columns asked for
# 29.8 GiB, gradient 61.0 GiB). Inference and gradients on a sparse X take
# workspaces of at most this many bytes (and at least one row): the kernels
# run the rows in chunks of what their workspace holds.
SPARSE_WORKSPACE_BYTES = 64 << 20
# Inference (forward, predict, predict_proba) of more rows than SPLIT_ABOVE
# runs in chunks of at most SPLIT_CHUNK rows, spread over up to
# threads.inference_threads() threads with the BLAS on one thread each. The
# chunks depend on the number of rows alone, not on the threads, so neither
# do the results. Measured (64-100-10 float32, the 2-core development
# machine, OpenBLAS variables unset, 2026-12-02; docs/performance.md): from
# 1025 rows up the split took 0.67-0.85x the time of one kernel call (whose
# large products use the BLAS pool) while another process held part of the
# second core, and 0.05-0.2x with a process busy on each core (the pooled
# products' threads spin-wait); 90k rows on two threads, nearly quiet: 8.5
# against 6.0 M rows/s. Chunks of 1024 rows: 5 % faster than 512 on one
# thread, as fast as 2048 on one thread and faster on two.
SPLIT_ABOVE = 1024
SPLIT_CHUNK = 1024

_row_pool = None
_row_pool_lock = threading.Lock()


class _NotFinite(Exception):
    """A chunk of rows scanned by :func:`_scan_chunk` holds a NaN or an
    infinity (the caller then runs the checked path, which names it)."""


def _scaled_chunk(net, part):
    """A chunk of a model's unscaled inputs, standardised; _NotFinite when a
    value goes beyond the dtype (the caller scales X whole, which names the
    first such value in row order, whichever thread met one first)."""
    try:
        return net._standardised(part)
    except ValueError:
        raise _NotFinite from None


def _scan_chunk(part):
    """Raise _NotFinite unless every element of the rows ``part`` (a
    C-contiguous block of a dense X) is finite: ``network.all_finite`` on
    the thread that runs the chunk, without the GIL."""
    if not network.all_finite(part.reshape(-1)):
        raise _NotFinite


def _rows_pool():
    """The threads (besides the caller) that split inference rows, started
    on first use."""
    global _row_pool
    with _row_pool_lock:
        if _row_pool is None:
            from concurrent.futures import ThreadPoolExecutor
            _row_pool = ThreadPoolExecutor(max(threads.default_num_threads() - 1, 1),
                                           thread_name_prefix="fastbp-rows")
        return _row_pool


def _forget_rows_pool():
    global _row_pool, _row_pool_lock
    _row_pool, _row_pool_lock = None, threading.Lock()  # a forked child has none of its threads


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_rows_pool)


def _claimed_by_a_fit(net):
    net._epochs_over = False
    net._alpha_stays_zero = False   # (until run_epochs chooses the folded float32 step)
    net._weights_scaled = False     # (until the fit's arguments say so)


def _one_fit_at_a_time(fit):
    """Wrap ``MLP.fit``: it claims the model before anything else, so a
    second fit of the same model in another thread is refused (RuntimeError)
    and leaves the model as it was; the claim is released however fit ends."""
    @functools.wraps(fit)
    def claimed(self, *args, **kwargs):
        # (from the claim on, the optimizer, schedule, preprocessing are the
        # fit's: set meanwhile they would be lost, see _unclaimed; the flags
        # set under the claim's lock, and each fit's own)
        with self._workspaces.training(on_claim=functools.partial(_claimed_by_a_fit, self)):
            try:
                return fit(self, *args, **kwargs)
            finally:
                # (however it ended: a refused fit left it False, and the model's
                # setters refused while another network over the same claim,
                # the scikit-learn wrapper's twin of a kept net_, trained)
                self._epochs_over = True
    return claimed


def _kernel_codes(loss_code, activations):
    """The loss and the hidden layers' activation (when they share one) as
    compile-time constants for the kernels, so that only their branches
    compile (fastbp._static); network.RUNTIME for mixed activations."""
    hidden = {ACTIVATIONS[a] for a in activations}
    return static(loss_code), static(
        hidden.pop() if len(hidden) == 1 else network.RUNTIME if hidden else IDENTITY)


class MLP:
    """A multilayer perceptron trained by backpropagation, on one flat buffer.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths ``[n_in, h1, ..., n_out]``; any number of hidden layers,
        none included (logistic or linear regression).
    activation : str or sequence of str, default "tanh"
        Hidden activation, one for all or one per hidden layer: ``identity``,
        ``sigmoid``, ``tanh``, ``relu``, ``leaky_relu`` (slope 0.01), ``elu``
        (alpha 1), ``softplus``.
    output : {"softmax", "sigmoid", "identity"}, default "softmax"
        Output function; it fixes the default loss: ``cross_entropy``,
        ``binary_cross_entropy``, ``mse``.
    loss : str, optional
        ``mae`` or ``huber`` (delta 1) may replace ``mse`` for an identity
        output. Losses follow PyTorch: cross-entropy is the mean over
        samples, the others the mean over all elements.
    dtype : {"float32", "float64"}, default "float32"
    seed : int, optional
        Seeds the initial weights and the shuffling; same seed, same result
        to the bit (to rounding where the machine's load moved a product of
        ``fastbp.threads.serial_below()`` multiply-adds or more between one
        BLAS thread and two; ``fastbp.set_num_threads(1)`` makes it bitwise
        whatever the load: docs/guide/threads.md, "Reproducible runs").
    init : {"auto", "glorot", "he"}, default "auto"
        Uniform Glorot (tanh, sigmoid, identity and the output layer) or He
        (the ReLU family and softplus) initialisation; biases start at 0.
    alpha : float, default 0
        L2 penalty with scikit-learn's semantics: ``alpha / (2 n) * sum |W|^2``
        over all weights (not biases) is added to the mean loss of every
        batch of n samples, and to :meth:`loss`, :meth:`gradient` and
        :meth:`numerical_gradient` over the data given. Settable later.
    dropout : float or sequence of float, default 0
        Inverted dropout on the hidden layers' outputs, one rate for all or
        one per hidden layer, each in [0, 1): during training each unit is
        zeroed with that probability and the kept ones scaled by
        ``1 / (1 - rate)``; inference (predict, loss, gradient, validation)
        uses the whole network. The masks are drawn from a stream seeded by
        ``seed``, separate from the shuffling.

    Attributes
    ----------
    params : ndarray, (n_params,)
        The flat parameter buffer: for each layer ``W`` (n_out, n_in,
        row-major) then ``b``. Write into it (``net.params[:] = ...``) to set
        the model.
    weights, biases : tuple of ndarray
        Per-layer views into ``params``.
    plan : ndarray of int64, (n_layers, 7)
        The layout as the kernels read it (see :mod:`fastbp.layout`).
    input_mean, input_scale : ndarray of float64, (n_in,), or None
        Input standardisation, part of the model: every method that takes
        rows (``forward``, ``predict``, ``loss``, ``fit``, ...) feeds the
        network ``(X - input_mean) / input_scale``, so it takes raw rows.
        Set by :meth:`set_input_scaling` or :meth:`standardize`.
    classes_ : ndarray, (n_classes,), or None
        The class labels, for a softmax output (one per unit) or a single
        sigmoid output (the labels of 0 and 1). With classes, ``y`` holds
        labels and ``predict`` returns them. ``fit`` learns them (sorted, as
        ``np.unique``) from text labels (bytes read as UTF-8 text: str
        classes); settable (``net.classes_ = [...]``)
        for numeric labels or before a first partial fit. None: integer
        labels 0..n_out-1 (0/1 for sigmoid).
    categories : dict or None
        ``{column: [label, ...]}``: the text columns of raw rows and their
        one-hot labels (see :attr:`categories`); ``n_columns`` raw columns.
    target_mean, target_scale : ndarray of float64, (n_out,), or None
        Target scaling of an identity output: the network learns
        ``(y - target_mean) / target_scale`` and ``predict`` answers in the
        targets' units. ``forward``, ``loss`` and ``gradient`` stay in the
        network's (scaled) terms. Set by :meth:`set_target_scaling` or
        :meth:`standardize`.
    """

    def __init__(self, sizes, activation="tanh", output="softmax", loss=None, dtype="float32",
                 seed=None, init="auto", alpha=0.0, dropout=0.0):
        sizes, activations, output, loss, dtype, seed, init, alpha, dropout = _args.architecture(
            sizes, activation, output, loss, dtype, seed, init, alpha, dropout)
        # The architecture is fixed at construction (read-only properties
        # below): the layout, the kernels' codes and the saved file all
        # follow from it.
        self._sizes = tuple(sizes)
        self._activations = tuple(activations)
        self._output = output
        self._loss_name = loss
        self._dtype = np.dtype(DTYPES[dtype])
        self._seed = seed
        self._init = init
        self._loss_code = LOSSES[loss]
        self._layout = Layout(sizes, [ACTIVATIONS[a] for a in activations],
                              [rate > 0 for rate in dropout])
        self._kernel_codes = _kernel_codes(self._loss_code, activations)
        # For the training kernels: alpha, then the dropout rate of each layer's outputs.
        self._reg = np.zeros(len(sizes))
        self._reg[0] = alpha
        self._reg[1:len(dropout) + 1] = dropout
        self._reg = frozen(self._reg)
        self._params = np.zeros(self._layout.n_params, dtype=self._dtype)
        self._weights, self._biases = self._layout.views(self._params)
        self._workspaces = Workspaces(self._layout, self._dtype)
        self._grads = None
        self._optimizer = None  # set by fit; a later fit continues it
        self._schedule = None  # likewise for a learning-rate schedule
        self._history = History()  # every epoch of every fit
        # Free-form, JSON-serialisable notes saved with the model (the command
        # line keeps the feature and target column names here).
        self.metadata = {}
        # What turns raw rows into inputs and outputs into answers (see
        # fastbp._preprocess): None, or read-only arrays.
        self._input_mean = self._input_scale = None
        self._target_mean = self._target_scale = None
        self._classes = None
        self._categories = None
        init_seq, shuffle_seq = np.random.SeedSequence(seed).spawn(2)
        # Two splitmix64 states: the shuffling stream, the dropout stream.
        self._rng = shuffle_seq.generate_state(2, np.uint64)
        self._initialise(np.random.default_rng(init_seq))

    def _initialise(self, rng):
        for l, W in enumerate(self._weights):
            fan_out, fan_in = W.shape
            act = self._activations[l] if l < len(self._activations) else self._output
            he = self._init == "he" or (self._init == "auto" and act in RELU_FAMILY)
            limit = np.sqrt(6.0 / fan_in) if he else np.sqrt(6.0 / (fan_in + fan_out))
            W[...] = rng.uniform(-limit, limit, size=W.shape)
            self._biases[l][...] = 0

    # ------------------------------------------------------------- pickling
    # Model files use net.save (no pickle). Pickle is for what Python tools
    # do with live objects (multiprocessing, joblib, deepcopy): it would copy
    # every view separately, so the views are rebuilt over one fresh buffer.
    def __getstate__(self):
        state = dict(self.__dict__)
        for key in ("_weights", "_biases", "_workspaces", "_grads", "_direct"):
            state.pop(key, None)
        state["_params"] = np.array(self._params)
        state["_rng"] = np.array(self._rng)
        return state

    def __copy__(self):
        # A copy is a model of its own, as deepcopy's and pickle's: a shallow
        # copy shared the optimizer, history, metadata and schedule (training
        # the copy moved the original's Adam state and history).
        return copy.deepcopy(self)

    def __setstate__(self, state):
        for key in ("sizes", "activations", "output", "loss_name", "dtype", "seed", "init",
                    "optimizer", "history"):
            if key in state:  # pickled before these became properties
                state["_" + key] = state.pop(key)
        state["_params"] = np.array(state["_params"], copy=True)  # writable, owned
        state["_rng"] = np.array(state["_rng"], copy=True)
        for key in ("_input_mean", "_input_scale", "_target_mean", "_target_scale", "_classes",
                    "_categories"):
            state.setdefault(key, None)  # pickled before these existed
        self.__dict__.update(state)
        if "_kernel_codes" not in state:  # pickled before it existed
            self._kernel_codes = _kernel_codes(self._loss_code, self._activations)
        # Read-only like a new model's (for good: frozen), so the kernels see
        # the types they were compiled for.
        for key in ("_reg", "_input_mean", "_input_scale", "_target_mean", "_target_scale",
                    "_classes"):
            if self.__dict__[key] is not None:
                self.__dict__[key] = frozen(self.__dict__[key])
        self._layout.plan = frozen(self._layout.plan)
        if self._categories is not None:
            self._categories = type(self._categories)(
                (j, frozen(labels)) for j, labels in self._categories)
        self._weights, self._biases = self._layout.views(self._params)
        self._workspaces, self._grads = Workspaces(self._layout, self._dtype), None
        if self.__dict__.get("_optimizer") is not None:
            # The copy's optimizer is the copy's own (another model's fit
            # refuses it), as the original's is the original's.
            _args.OWNERS[self._optimizer] = weakref.ref(self)

    # ----------------------------------------------------- the architecture
    # Read-only: assigned, the kernels went on computing the old network
    # while repr and save described the new one (a file then loaded as
    # another network, or not at all). A new architecture is a new MLP.
    def __setattr__(self, name, value):
        # The two constructor arguments with no property of their name:
        # `net.loss = "mae"` shadowed the loss method (net.loss(X, y) then a
        # TypeError) and `net.activation = "relu"` was kept and ignored, the
        # model training as before.
        if name == "loss":
            raise AttributeError("net.loss is a method (net.loss(X, y) computes the loss); the"
                                 " loss a model trains is fixed at construction, MLP(...,"
                                 " loss=...), and read as net.loss_name")
        if name == "activation":
            raise AttributeError("the activations are fixed at construction, MLP(...,"
                                 " activation=...), and read as net.activations; a new"
                                 " architecture is a new MLP")
        super().__setattr__(name, value)

    @property
    def sizes(self):
        """Layer widths ``(n_in, hidden..., n_out)``; fixed at construction."""
        return self._sizes

    @property
    def activations(self):
        """The hidden layers' activation names; fixed at construction."""
        return self._activations

    @property
    def output(self):
        """The output function ("softmax", "sigmoid" or "identity"); fixed at construction."""
        return self._output

    @property
    def loss_name(self):
        """The loss trained and evaluated; fixed at construction."""
        return self._loss_name

    @property
    def dtype(self):
        """The parameters' and kernels' dtype (float32 or float64); fixed at construction."""
        return self._dtype

    @property
    def seed(self):
        """The seed the model was made with (None: fresh entropy); fixed at construction."""
        return self._seed

    @property
    def init(self):
        """The weight initialisation named at construction ("auto", "glorot" or "he")."""
        return self._init

    @property
    def history(self):
        """Every epoch of every fit of this model, a :class:`fastbp.History`
        (each fit returns its own epochs' as one too). Settable to a History
        (``fastbp.History()`` for none), or cleared with ``net.history.clear()``;
        another object is a TypeError (a dict was taken, and the next fit
        failed after training its first epoch)."""
        return self._history

    @history.setter
    def history(self, value):
        if not isinstance(value, History):
            raise TypeError(f"net.history must be a fastbp.History (fastbp.History() for no"
                            f" epochs); got {type(value).__name__}")
        with self._unclaimed("history"):
            self._history = value

    @property
    def optimizer(self):
        """The optimizer of the last fit (None before any): a later fit given
        no optimizer continues it, and it is saved with the model. Settable
        to None (the next fit starts a new SGD, or what it is given) or to a
        fastbp optimizer that suits this model's parameters and no other
        model holds, as ``fit``'s ``optimizer`` argument is checked. Setting
        another ends the schedule this model ran (``net.schedule`` becomes
        None), as a fit given another optimizer does."""
        return self._optimizer

    _alpha_stays_zero = False   # (set by each fit: see the alpha setter)
    _weights_scaled = False

    @contextlib.contextmanager
    def _unclaimed(self, what, call=None):
        """Check (:meth:`_not_while_training`) and set under the lock a fit
        claims the model with: the change is made before a fit's claim (which
        then takes it) or refused after it, never taken between the two."""
        with self._workspaces._lock:
            self._not_while_training(what, call)
            yield

    def _not_while_training(self, what, call=None):
        # The fit that runs goes on with the optimizer, schedule, classes,
        # categories and scaling it began with (its rows encoded and scaled
        # once): one set meanwhile (from a callback, another thread) would
        # not train, yet be saved with the weights it never trained. (Once
        # its epochs are over, in on_train_end, it is for the next fit.)
        if self._workspaces._trainer is not None and not getattr(self, "_epochs_over", True):
            head = f"net.{what} cannot be set" if call is None else \
                f"net.{call}() cannot change the {what}"
            raise RuntimeError(f"{head} while a fit of this model runs (it goes"
                               f" on with the {what} it began with); set it between fits, or"
                               " stop this fit (a callback's on_epoch_end returning True) and"
                               f" fit again with the new {what}")

    @optimizer.setter
    def optimizer(self, value):
        self._set_optimizer(value)

    def _set_optimizer(self, value, loading=False):
        # (loading: a file's, which an older fastbp may have paired with
        # dropout: L-BFGS loads, and fit refuses to continue it, by name)
        if value is not None:
            if not isinstance(value, (Optimizer, LBFGS)):
                raise TypeError("optimizer must be None or a fastbp optimizer such as"
                                f" fastbp.Adam(); got {value!r} (a name is for fit:"
                                " fit(optimizer='adam'))")
            if not loading:
                _args.lbfgs_without_dropout(self, value)
        with self._unclaimed("optimizer"):
            if value is not None:
                with _args.CLAIMING:
                    _args.optimizer_for(self, value, None)  # its owner and its state
                    _args.OWNERS[value] = weakref.ref(self)
            if value is not self._optimizer and (getattr(self._schedule, "_net", None) is self
                                                 or isinstance(value, LBFGS)):
                # Another optimizer ends the schedule this model ran, as fit's
                # optimizer argument does: continued, it set its own rate over
                # the new optimizer's. L-BFGS, which takes no rate, ends any.
                self._schedule = None
            self._optimizer = value

    # ----------------------------------------------------------- the buffer
    @property
    def params(self):
        return self._params

    @property
    def weights(self):
        return self._weights

    @property
    def biases(self):
        return self._biases

    @property
    def plan(self):
        return self._layout.plan

    @property
    def n_params(self):
        """How many parameters the network has: the length of :attr:`params`
        (and of the flat arrays the kernels take with it)."""
        return self._layout.n_params

    @property
    def schedule(self):
        """The learning-rate schedule of the last fit that had one (continued
        by later fits and saved with the model), or None; settable (not on
        an L-BFGS model, which takes no learning rate: setting L-BFGS as the
        optimizer ends the schedule)."""
        return self._schedule

    @schedule.setter
    def schedule(self, value):
        if value is not None and not isinstance(value, Schedule):
            raise TypeError(f"schedule must be None or a fastbp.schedules schedule; got {value!r}")
        if value is not None and isinstance(self._optimizer, LBFGS):
            raise ValueError(f"L-BFGS takes no learning rate, so no schedule; got {value!r}"
                             " (set another optimizer first)")
        with self._unclaimed("schedule"):
            if value is not None and value is not self._schedule \
                    and getattr(value, "_net", None) is self:
                # One this model ran that has ended since (by another optimizer,
                # an lr, net.schedule = None or another): it starts anew, as
                # given to a fit (its count and lr0 were of the ended run).
                value.restart()
            self._schedule = value

    @property
    def alpha(self):
        """The L2 penalty (see the class docstring); settable."""
        return float(self._reg[0])

    @alpha.setter
    def alpha(self, value):
        value = _args.check_alpha(value)
        with self._workspaces._lock:
            self._set_alpha(value)

    def _set_alpha(self, value):
        running = self._workspaces._trainer is not None and not getattr(self, "_epochs_over", True)
        if value and running and self._alpha_stays_zero:
            raise RuntimeError(
                "net.alpha cannot become non-zero while this float32 fit with plain SGD runs: it"
                " began with alpha 0 and folds each step into backprop, where the L2 factor"
                " 1 - lr alpha / n rounds away in float32 (5e-5 trained as 0); give alpha before"
                " the fit (it then takes the L2 term into the gradient), or use float64")
        if value and running and self._weights_scaled:
            raise RuntimeError(
                "net.alpha cannot become non-zero while this fit runs: it began with alpha 0 and"
                " weights all below 2**-500 or some above 2**500, which it scaled by a power of"
                " two (with alpha 0 only their ratios matter), while the L2 term alpha / (2 sum w)"
                " takes them as given; give alpha before the fit")
        reg = self._reg.copy()
        reg[0] = value
        self._reg = frozen(reg)

    @property
    def dropout(self):
        """The dropout rate of each hidden layer, a tuple (fixed at construction)."""
        return tuple(float(r) for r in self._reg[1:len(self._sizes) - 1])

    def _penalty(self, n):
        """The L2 term ``alpha / (2 n) sum |W|^2`` for n samples."""
        alpha = self._reg[0]
        # (a float, as the loss it is added to: np.float64 made evaluate's
        # loss and val_loss of another type with alpha > 0, review HBY)
        return float(0.5 * alpha * network.penalty(self._params, self.plan) / n) if alpha else 0.0

    def workspace(self, rows):
        """A new zeroed workspace for batches of up to ``rows`` samples, for
        the kernels in :mod:`fastbp.kernels`."""
        rows = check_int(rows, "rows", 1)
        array_room((self._layout.workspace_size(1), rows), self._dtype.itemsize, "rows", rows)
        return np.zeros(self._layout.workspace_size(rows), dtype=self._dtype)

    def _workspace(self, rows):
        # Room for >= rows samples, reused: a training step allocates nothing.
        # Per thread for inference, a separate one for the thread that is
        # fitting, so concurrent calls never share one (see _workspaces.py).
        return self._workspaces.get(rows)

    def _rows(self, X, rows=CHUNK):
        """Workspace rows for a kernel call over X: ``min(n, rows)``, and for
        a sparse X no more than :data:`SPARSE_WORKSPACE_BYTES` hold."""
        rows = min(X.shape[0], rows)
        if isinstance(X, SparseRows):
            row_bytes = self._layout.workspace_size(1) * self._dtype.itemsize
            rows = min(rows, max(SPARSE_WORKSPACE_BYTES // row_bytes, 1))
        return rows

    def _gradient_buffer(self):
        if self._grads is None:
            self._grads = np.zeros_like(self._params)
        return self._grads

    # -------------------------------------- raw rows in, answers out
    @property
    def input_mean(self):
        return self._input_mean

    @property
    def input_scale(self):
        return self._input_scale

    @property
    def target_mean(self):
        return self._target_mean

    @property
    def target_scale(self):
        return self._target_scale

    @property
    def classes_(self):
        return self._classes

    @classes_.setter
    def classes_(self, value):
        classes = _preprocess.check_classes(value, self._output, self._sizes[-1])
        with self._unclaimed("classes_"):
            self._classes = classes

    @property
    def categories(self):
        """One-hot categories of the raw rows' text columns, part of the model:
        ``{column index: [label, ...]}`` (a new dict), or None.

        A model with categories takes raw rows of :attr:`n_columns` columns
        (a 2-D object or str array, or a list of lists), text in each
        category column: the k-th label of column j becomes a 1 at network
        input ``start_j + k``, where the codes of column j sit in the column's
        place (column j - 1's inputs, then j's codes, then j + 1's). A text
        value not among the labels is an all-zero code, reported by one
        warning per call. The encoding comes before the input scaling, and
        :meth:`standardize` leaves the codes unscaled (mean 0, scale 1).
        Settable (``net.categories = {2: ["blue", "red"]}``, labels as the
        command line learns them: sorted); ``sizes[0]`` counts the codes.
        """
        if self._categories is None:
            return None
        return {j: labels.tolist() for j, labels in self._categories}

    @categories.setter
    def categories(self, value):
        categories = _preprocess.check_categories(value, self._sizes[0])
        with self._unclaimed("categories"):
            self._categories = categories

    @property
    def n_columns(self):
        """How many raw columns a row has: ``sizes[0]`` less the codes beyond
        one per category column."""
        return _preprocess.n_columns(self._categories, self._sizes[0])

    def set_input_scaling(self, mean, scale):
        """Standardise every input row as ``(X - mean) / scale`` from now on.

        ``mean`` and ``scale`` are ``(n_in,)`` arrays or scalars (``scale``
        > 0); ``set_input_scaling(None, None)`` removes the scaling. The
        weights are not changed. Returns the model.
        """
        scaling = _preprocess.check_scaling(mean, scale, self._sizes[0], "input")
        with self._unclaimed("input scaling", "set_input_scaling"):
            self._input_mean, self._input_scale = scaling
        return self

    def set_target_scaling(self, mean, scale):
        """Train an identity output on ``(y - mean) / scale`` and answer
        ``predict`` in y's units; ``(n_out,)`` arrays or scalars, or
        ``None, None`` to remove. Returns the model."""
        return self._set_target_scaling(mean, scale)

    def _set_target_scaling(self, mean, scale, loading=False):
        # (loading: a file's, which an older fastbp may have written beyond
        # float32: it loads, and predicts infinities as it did)
        if self._output != "identity" and not (mean is None and scale is None):
            raise ValueError(f"target scaling applies to an identity output; this network's output"
                             f" is {self._output!r}")
        scaling = _preprocess.check_scaling(mean, scale, self._sizes[-1], "target")
        if scaling[0] is not None and not loading:
            _preprocess.check_answer_range(*scaling, self._dtype)
        with self._unclaimed("target scaling", "set_target_scaling"):
            self._target_mean, self._target_scale = scaling
        return self

    def standardize(self, X, y=None):
        """Set the input scaling to X's column means and standard deviations
        (a constant column gets scale 1, as in scikit-learn's StandardScaler),
        and for an identity output with y given the target scaling likewise;
        do it once, before the first fit, with the training rows. Returns the
        model.

        ``net.standardize(X_train, y_train).fit(X_train, y_train)`` then
        trains on standardised data, and every method takes raw rows.
        """
        self._not_while_training("scaling", "standardize")   # (and again as it sets them)
        X = self._encoded(X, scaled=True)  # checked in its own precision, summed in float64
        X = check_X(X, self._sizes[0], np.float32 if getattr(X, "dtype", None) == np.float32
                    else np.float64)
        if isinstance(X, SparseRows):
            raise ValueError("standardize(X) centres the columns, which would make a sparse X"
                             " dense; scale a sparse X yourself (e.g. divide each column by its"
                             " largest absolute value) and train without input scaling")
        if y is not None:
            if self._output != "identity":
                raise ValueError(f"standardize(X, y) scales the targets of an identity output; this"
                                 f" network's output is {self._output!r}: call standardize(X)")
            Y = check_targets(y, X.shape[0], self._output, self._sizes[-1], np.float64)
            _preprocess.check_in_range(Y, self._dtype)
        mean, scale = _preprocess.mean_std(X, column=self._input_column())
        if self._categories is not None:  # one-hot codes enter the network as 0 and 1
            codes = _preprocess.code_mask(self._categories, self._sizes[0])
            mean[codes], scale[codes] = 0.0, 1.0
        # Both computed and checked before either is set: a rejected call
        # leaves the model as it was.
        inputs = _preprocess.check_scaling(mean, scale, self._sizes[0], "input")
        if y is not None:
            targets = _preprocess.check_scaling(*_preprocess.mean_std(Y, "y"), self._sizes[-1],
                                                "target")
            _preprocess.check_answer_range(*targets, self._dtype)
        with self._unclaimed("scaling", "standardize"):
            if y is not None:
                self._target_mean, self._target_scale = targets
            self._input_mean, self._input_scale = inputs
        return self

    def _input_column(self):
        """Network input i named by the raw rows' column, for errors."""
        if self._categories is None:
            return _preprocess._column
        return _preprocess.input_column(self._categories, self._sizes[0])

    def _encoded(self, X, name="X", scaled=False):
        """Raw rows -> rows of network inputs: text columns one-hot by the
        model's categories (an unseen label warned of, once per call)."""
        if isinstance(X, _preprocess.Encoded):
            return X.rows
        if isinstance(self.metadata, dict):   # (a DataFrame's columns against the names kept)
            _preprocess.check_column_names(X, self.metadata.get("features"), name)
        if self._categories is None:
            return X
        X, unseen = _preprocess.encode_rows(X, self._categories, self._sizes[0], name)
        if self._input_mean is None and not scaled:
            # (scaled, the scaling's result is checked: _inputs; standardize's
            # rows are the scaling's own)
            _preprocess.check_fits(X, self._dtype, name, self._input_column())
        if unseen:
            from ._validate import warn
            warn(_preprocess.unseen_message(unseen, name), UserWarning)
        return X

    def _inputs(self, X, name="X"):
        """Raw rows -> the network's input: encoded, checked, then standardised."""
        X = self._encoded(X, name)
        if self._input_mean is None:
            return check_X(X, self._sizes[0], self._dtype, name)
        return self._standardised(self._unscaled(X, name), name)

    def _unscaled(self, X, name="X"):
        """Encoded rows X of a model with input scaling, checked (finite, the
        model's width) in their own precision: float32 rows are not widened
        just to be checked; :meth:`_standardised` scales them."""
        own = np.float32 if getattr(X, "dtype", None) == np.float32 else np.float64
        X = check_X(X, self._sizes[0], own, name)
        if isinstance(X, SparseRows):
            raise ValueError(f"{name} is sparse, but this model standardises its inputs"
                             " (input_mean, input_scale), which would make it dense; remove the"
                             " scaling (net.set_input_scaling(None, None)) or pass a dense array")
        return X

    def _standardised(self, X, name="X"):
        """Rows from :meth:`_unscaled` standardised in float64, then in the
        model's dtype: a new array."""
        return _preprocess.standardise(X, self._input_mean, self._input_scale, self._dtype, name,
                                       self._input_column())

    def _split_inputs(self, X):
        """``(rows, scale)`` for forward and predict: the network's input and
        False, or, for a dense X of more than SPLIT_ABOVE rows given to a
        model with input scaling (and no text columns), X checked but not
        yet standardised and True: each chunk of :meth:`_split` is
        standardised on its own thread, so the scaled copy is a chunk's, not
        X's (predict of a 2,000,000 x 28 float32 memory map made a 244 MiB
        copy, against 15 MiB without scaling; review HCV). The same values
        (the scaling is element-wise) in the same chunks."""
        if self._input_mean is None or self._categories is not None:
            return self._inputs(X), False
        X = self._unscaled(self._encoded(X))
        if X.shape[0] <= SPLIT_ABOVE:
            return self._standardised(X), False
        return X, True

    def _targets(self, y, n, name="y", classes=None, x_name="X"):
        """The user's targets -> the network's: int64 class indices (n,) for
        softmax, 0/1 rows for sigmoid, values standardised. ``classes`` overrides the model's (fit's new ones)."""
        classes = self._classes if classes is None else classes
        if classes is not None:
            y = _preprocess.label_indices(y, classes, name)
        elif self._output != "identity" and _preprocess.is_text(y):
            if _preprocess.n_classes(self._output, self._sizes[-1]) is None:  # several sigmoids
                raise TypeError(f"{name} holds text labels, but this model's {self._sizes[-1]}"
                                " sigmoid outputs take 0/1 targets, one column per output"
                                f" ({name} of shape (n, {self._sizes[-1]})); text labels need a"
                                " softmax output or a single sigmoid output")
            # (a loss or evaluate before the fit that learns text classes)
            raise TypeError(f"{name} holds text labels, but this model has no classes_ yet: fit"
                            " it on such labels first (the first fit learns them), or set"
                            " net.classes_ to the label of each output")
        if self._target_mean is None:
            return check_targets(y, n, self._output, self._sizes[-1], self._dtype, name, x_name)
        # float32 targets of a float32 model as they are (the scaling is
        # computed in float64 a block at a time): no float64 copy of them all
        wide = (self._dtype if self._dtype == np.float32
                and getattr(y, "dtype", None) in (np.float16, np.float32) else np.float64)
        Y = check_targets(y, n, self._output, self._sizes[-1], wide, name, x_name)
        _preprocess.check_in_range(Y, self._dtype, name)
        return _preprocess.standardise(Y, self._target_mean, self._target_scale, self._dtype, name)

    def _answer(self, out):
        """The network's output (n, n_out) -> the user's answer (see predict)."""
        if self._output == "softmax":
            idx = out.argmax(axis=1)
            return idx if self._classes is None else self._classes[idx]
        if self._output == "sigmoid":
            out = (out > 0.5).astype(np.int64)
            if self._classes is not None:
                return self._classes[out[:, 0]]
        elif self._target_mean is not None:   # (out is the caller's own new array)
            out = _preprocess.unstandardise(out, self._target_mean, self._target_scale)
        return out[:, 0] if self._sizes[-1] == 1 else out

    def _data(self, X, y, classes=None):
        if y is None:  # (checked first: what needs y wants it whatever X is)
            raise TypeError("y is None; this call needs the targets y, one per row of X")
        X = self._inputs(X)
        return X, self._targets(y, X.shape[0], classes=classes)

    # ------------------------------------------------------------ inference
    _direct = None  # forward's direct call of the compiled kernel: None untried, False none

    def forward(self, X):
        """Output activations (softmax, sigmoid or identity), ``(n, n_out)``,
        of raw rows X (standardised first when the model has input scaling)."""
        direct = self._direct
        # A right-typed array (what check_X takes as it is) goes straight to
        # the compiled kernel: what Numba's dispatcher would pick for it.
        if (direct and type(X) is np.ndarray and X.ndim == 2 and X.dtype == self._dtype
                and 0 < X.shape[0] <= SPLIT_ABOVE and X.shape[1] == direct[1]
                and self._params is direct[2] and self._categories is None
                and self._input_mean is None):
            flags = X.flags
            if (flags.c_contiguous and flags.writeable and flags.aligned
                    and all_finite(X)):
                n = X.shape[0]
                out = np.empty((n, direct[3]), dtype=self._dtype)
                direct[0](out, direct[2], self._workspace(n if n < CHUNK else CHUNK), direct[4],
                          X, *self._kernel_codes)
                return out
        unchecked = self._unscanned(X)
        if unchecked is not None:
            out = self._outputs(unchecked, scan=True)
            if out is not None:
                return out
        return self._outputs(*self._split_inputs(X))

    def _unscanned(self, X):
        """X itself when it is an array that :func:`check_X` would take as it
        is (the model's dtype, 2-D, C-contiguous, writable, no text columns
        or input scaling) and has more than SPLIT_ABOVE rows, for forward and
        predict to check finite chunk by chunk on their threads (each chunk
        just before its forward pass, which then reads it from the cache;
        a 64-100-10 float32 predict of 90k rows spent a sixth of its time in
        the one-thread scan before); None for anything else."""
        if (type(X) is np.ndarray and X.ndim == 2 and X.dtype == self._dtype
                and X.shape[0] > SPLIT_ABOVE and X.shape[1] == self._sizes[0]
                and self._categories is None and self._input_mean is None
                and X.flags.c_contiguous and X.flags.writeable):
            return X
        return None

    def _reading(self, X):
        """``(params, x)`` for the kernels that read the parameters over the
        converted X (forward passes, the loss): the model's own and
        :func:`kernel_x`'s, or for CSR data with at least as many non-zeros as
        the first layer has inputs a copy of the parameters whose first
        layer is stored transposed, with X's tuple marked so (see
        :func:`fastbp.train.first_layer_transposed`): each non-zero then reads
        one row of weights, the same sums in the same order (a gradient
        then comes with the first layer's block as ``dW.T``: move it back
        with :func:`fastbp.train.move_first_layer`). ``predict`` of 50,000 x
        100,000 at 0.1 %, 100000-32-10, float32: 0.054-0.061 against 0.26 s
        on W (2026-12-04)."""
        x = kernel_x(X)
        if isinstance(x, tuple) and transpose_first_layer(self.plan, X.csr.nnz, 2):
            params = self._params.copy()
            move_first_layer(self.plan, params, True)
            return params, x + (TRANSPOSED,)
        return self._params, x

    def _outputs(self, X, scale=False, scan=False):
        """forward of converted X (see _data); with ``scale``, of X from
        :meth:`_split_inputs`, each chunk standardised first; with ``scan``,
        of X from :meth:`_unscanned`, each chunk checked finite first: None
        (nothing computed beyond the chunks already run) if one is not."""
        n = X.shape[0]
        out = np.empty((n, self._sizes[-1]), dtype=self._dtype)
        if n > SPLIT_ABOVE:
            def chunk(start, nb, part, ws, buf, params):
                if scan:
                    _scan_chunk(part)
                if scale:
                    part = _scaled_chunk(self, part)
                network._predict(out[start:start + nb], params, ws, self.plan, part,
                                 *self._kernel_codes)
            try:
                self._split(X, chunk)
            except _NotFinite:
                if scale:   # (scaled whole, the first value beyond the dtype is named)
                    return self._outputs(self._standardised(X))
                return None
            return out
        params, x = self._reading(X)
        args = (out, params, self._workspace(self._rows(X)), self.plan, x, *self._kernel_codes)
        network._predict(*args)
        if self._direct is None and type(X) is np.ndarray:
            self._direct = self._find_direct(args)
        return out

    def _find_direct(self, args):
        """``(compiled entry, n_in, params, n_out, plan)`` for forward's
        direct call, or False: the specialisation of ``network._predict``
        that Numba's dispatcher chose for ``args`` (a right-typed C-contiguous
        X), called without the dispatcher's typing of each argument."""
        try:
            import numba
            key = tuple(numba.typeof(a) for a in args)
            want = numba.types.Array(numba.from_dtype(self._dtype), 2, "C")
            if key[4] != want or key[0] != want:
                return False
            entry = network._predict.overloads[key].entry_point
        except Exception:  # not a Numba dispatcher, or no such overload: the dispatcher's path
            return False
        return entry, self._sizes[0], self._params, self._sizes[-1], self.plan

    def _chunks(self, X):
        """``(start, outputs)`` for consecutive chunks of CHUNK rows of the
        converted X: memory O(CHUNK * n_out), not O(n * n_out). The outputs
        buffer is reused: read each before the next."""
        n = X.shape[0]
        rows = min(n, CHUNK)
        ws, buf = self._workspace(self._rows(X)), np.empty((rows, self._sizes[-1]), dtype=self._dtype)
        params, x = self._reading(X)
        for start in range(0, n, rows):
            nb = min(rows, n - start)
            part = kernel_rows(x, start, nb)
            network._predict(buf[:nb], params, ws, self.plan, part, *self._kernel_codes)
            yield start, buf[:nb]

    def _split(self, X, each):
        """Call ``each(start, nb, part, ws, buf, params)`` for every chunk of
        rows of the converted X, chunks of equal size up to SPLIT_CHUNK rows
        (``part``: its rows as the kernels take them; ``ws``, ``buf``: a
        workspace and a chunk-sized ``(rows, n_out)`` buffer of the thread
        running it; ``params``: the parameters as those kernels read them,
        see :meth:`_reading`), on up to
        :func:`fastbp.threads.inference_threads` threads (this one included)
        with the BLAS on one thread."""
        n = X.shape[0]
        params, x = self._reading(X)
        chunks = -(-n // SPLIT_CHUNK)
        # Chunk i holds rows [i n / chunks, (i + 1) n / chunks): sizes that
        # differ by at most one row (at most SPLIT_CHUNK, at least half of
        # it), set by n alone. (Sizes of ceil(n / chunks) left a last chunk
        # of as little as one row, whose output layer then ran on BLAS, not
        # fastbp._narrow's loop: its rows came out in other bits.)
        size = -(-n // chunks)  # the largest
        workers = threads.inference_threads(chunks)
        counter = itertools.count()  # the next chunk; next() is atomic
        failed = []

        def run():
            ws = self._workspace(self._rows(X, size))
            buf = np.empty((size, self._sizes[-1]), dtype=self._dtype)
            while not failed:
                i = next(counter)
                if i >= chunks:
                    return
                start = i * n // chunks
                nb = (i + 1) * n // chunks - start
                part = kernel_rows(x, start, nb)
                try:
                    each(start, nb, part, ws, buf, params)
                except BaseException:
                    failed.append(True)
                    raise

        with threads.blas_on_one_thread():
            pool = _rows_pool() if workers > 1 else None
            helpers = [pool.submit(run) for _ in range(workers - 1)]
            try:
                run()
            finally:
                for helper in helpers:
                    if not helper.cancel():  # started: wait; not started: nothing left to do
                        helper.result()

    def predict_proba(self, X):
        """Class probabilities ``(n, n_out)``: softmax rows, or sigmoid outputs."""
        if self._output == "identity":
            raise ValueError("predict_proba needs a softmax or sigmoid output; this network's"
                             " output is 'identity': use predict")
        return self.forward(X)

    def predict(self, X):
        """Class labels ``(n,)`` for softmax (``classes_`` entries, or indices
        0..n_out-1); 0/1 (or ``classes_`` entries) for sigmoid; values for
        identity, in the targets' units when the model has target scaling.

        Sigmoid and identity outputs come as ``(n,)`` when ``n_out == 1`` and
        as ``(n, n_out)`` otherwise.
        """
        if self._output == "identity" or (type(X) is np.ndarray and X.ndim == 2
                                         and X.shape[0] <= SPLIT_ABOVE):
            return self._answer(self.forward(X))  # (n_out per row at most SPLIT_ABOVE times)
        unchecked, scale = self._unscanned(X), False
        if unchecked is None:
            X, scale = self._split_inputs(X)
        n = X.shape[0]
        if n <= SPLIT_ABOVE:
            return self._answer(self._outputs(X))
        # Labels only, filled chunk by chunk: O(n), not O(n n_out). A softmax's
        # class indices come from a compiled argmax on the chunk's thread,
        # the classes after.
        softmax = self._output == "softmax"
        if softmax:
            answer = np.empty((n,), dtype=np.int64)
        else:
            like = self._answer(np.zeros((1, self._sizes[-1]), dtype=self._dtype))
            answer = np.empty((n,) + like.shape[1:], dtype=like.dtype)

        def chunk(start, nb, part, ws, buf, params):
            if unchecked is not None:
                _scan_chunk(part)
            if scale:
                part = _scaled_chunk(self, part)
            network._predict(buf[:nb], params, ws, self.plan, part, *self._kernel_codes)
            if softmax:
                network.argmax_rows(buf[:nb], answer[start:start + nb])
            else:
                answer[start:start + nb] = self._answer(buf[:nb])
        try:
            self._split(X, chunk)
        except _NotFinite:  # the checked path names the element (and raises)
            X = self._inputs(unchecked) if unchecked is not None else self._standardised(X)
            unchecked, scale = None, False
            self._split(X, chunk)
        return answer if not softmax or self._classes is None else self._classes[answer]

    def evaluate(self, X, y, sample_weight=None):
        """Metrics on raw (X, y): ``{"loss": ..., "accuracy": ...}`` for
        softmax and sigmoid (with several sigmoid outputs a row counts as
        right when all its labels are: scikit-learn's subset accuracy),
        ``{"loss": ..., "r2": ...}`` for identity; the
        loss as :meth:`loss` (in the network's terms), R^2 (invariant to the
        target scaling) averaged over the outputs as scikit-learn's (NaN for one row;
        0, or 1 for a perfect fit, for a column of equal targets, also where
        scikit-learn's mean of them rounds and leaves its R^2 far below 0).
        With ``sample_weight`` (n,) each is weighted (see :meth:`loss`;
        accuracy and R^2 as scikit-learn's with ``sample_weight``)."""
        X, Y = self._data(X, y)
        return self._metrics(X, Y, self._sample_weight(sample_weight, Y))

    def _sample_weight(self, sample_weight, Y):
        weights, _ = fit_weights(sample_weight, None, Y, self._output, self._sizes[-1], None,
                                 self.alpha)
        return weights

    # ------------------------------------------------------- loss, gradients
    def loss(self, X, y, sample_weight=None):
        """Mean loss over (X, y) at the current parameters, as a float, plus
        the L2 term ``alpha / (2 n) sum |W|^2`` when alpha > 0 (the objective
        that training minimises). Dropout is not applied. With target
        scaling the loss is in the network's (standardised) terms. With
        ``sample_weight`` (n,), the weighted objective of :meth:`fit`:
        ``sum w_i L_i / sum w_i + alpha / (2 sum w_i) sum |W|^2``."""
        X, Y = self._data(X, y)
        weights = self._sample_weight(sample_weight, Y)
        if weights is not None:
            return self._weighted_loss(X, Y, weights)
        params, x = self._reading(X)
        total = float(network._loss_sum(params, self._workspace(self._rows(X)),
                                        self.plan, x, Y, *self._kernel_codes,
                                        np.empty((0, self._sizes[-1]), dtype=self._dtype)))
        return total / X.shape[0] + self._penalty(X.shape[0])   # (floats both: a float)

    def gradient(self, X, y, sample_weight=None):
        """Gradient of :meth:`loss` (with the same ``sample_weight``) by
        backpropagation: a new flat array with the layout of ``params``."""
        X, Y = self._data(X, y)
        weights = self._sample_weight(sample_weight, Y)
        grads = np.empty_like(self._params)
        rows = self._rows(X)
        scratch = np.empty_like(self._params) if X.shape[0] > rows else grads
        ws = self._workspace(rows)
        params, x = self._reading(X)
        if weights is None:
            network._gradient(grads, scratch, params, ws, self.plan, x, Y, self._loss_code)
        else:
            from ._weighted import gradient_weighted
            gradient_weighted(grads, scratch, params, ws, self.plan, x, Y, weights,
                              self._loss_code)
        if params is not self._params:  # the first layer's gradient came as dW^T
            move_first_layer(self.plan, grads, False)
        if self.alpha:
            n = X.shape[0] if weights is None else float(weights.sum())
            network.add_penalty_gradient(grads, self._params, self.plan, self.alpha / n)
        return grads

    def numerical_gradient(self, X, y, eps=None):
        """The same gradient by the lecture's naive formulation: one central
        difference per weight, two forward passes over (X, y) each.

        ``eps`` defaults to the dtype's machine epsilon to the power 1/3
        (about 6e-6 in float64, 5e-3 in float32), which balances truncation
        and rounding error. ``params`` is left bitwise unchanged. An ``eps``
        that p +- eps cannot take in the dtype, or at which the loss is not
        finite, is a ValueError.
        """
        X, Y = self._data(X, y)
        eps = float(np.finfo(self._dtype).eps ** (1 / 3)) if eps is None else check_positive(eps, "eps")
        grads = np.empty_like(self._params)
        # The kernel perturbs the buffer it is given: a copy keeps the model's
        # own params untouched throughout, for other threads using the model
        # (on CSR data _reading's copy, its first layer stored transposed:
        # the differences then come in that layout, moved back after).
        params, x = self._reading(X)
        transposed = params is not self._params
        network._numerical_gradient(grads, params if transposed else params.copy(),
                                    self._workspace(self._rows(X)), self.plan,
                                    x, Y, self._loss_code, eps, self.alpha)
        if transposed:
            move_first_layer(self.plan, grads, False)
        return grads

    # ------------------------------------------------------------- training
    @_one_fit_at_a_time
    def fit(self, X, y, epochs=1, batch_size=32, lr=None, shuffle=True, seed=None, verbose=1,
            optimizer=None, validation_data=None, validation_split=0.0, callbacks=None,
            on_divergence="raise", distributed=False, sample_weight=None, class_weight=None):
        """Train by minibatch gradient descent; by default plain SGD,
        ``w -= lr * dE/dw`` after every batch.

        Parameters
        ----------
        X : array_like, (n, sizes[0])
            Or ``(n, n_columns)`` raw rows for a model with
            :attr:`categories`.
        y : array_like
            Class labels 0..n_out-1, ``(n,)``, for softmax; 0/1 targets
            ``(n,)`` or ``(n, n_out)`` for sigmoid; values ``(n,)`` or
            ``(n, n_out)`` for identity. Text labels (softmax, or one sigmoid
            output) set ``classes_`` to their sorted distinct values at the
            first fit of a new model; with ``classes_`` set, y holds those
            labels, and a label that is not one of them is an error.
        epochs : int, default 1
            0 trains nothing: it checks the arguments, learns ``classes_``
            and sets the optimizer (and ``lr``) the next fit continues.
        batch_size : int, default 32
            Capped at n. The last batch of an epoch may be smaller.
        lr : float, optional
            The learning rate lambda of ``Δw = -λ ∂E/∂w``. Default: the
            optimizer's own (0.01 for a new plain SGD); given, it replaces
            the optimizer's.
        shuffle : bool, default True
            Shuffle the rows before every epoch; with False the batches are
            consecutive rows in order.
        seed : int, optional
            Restart the model's two random streams, the shuffling and the
            dropout masks, from this seed; None continues them. (Not the
            streams ``MLP(seed=s)`` starts: ``fit(seed=s)`` does not repeat
            a new ``MLP(seed=s)``'s first shuffle.)
        verbose : int, default 1
            0, 1 or 2. 1: a progress bar over epochs (tqdm) in an interactive terminal,
            a line per epoch otherwise; 2: always a line per epoch; 0: silent.
            False and True read as 0 and 1; any other value is refused.
        optimizer : None, str or Optimizer
            ``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``, ``"lbfgs"`` (a
            new one with its defaults), or a :class:`fastbp.SGD`,
            :class:`fastbp.Adam`, ... object; with L-BFGS (full batch) each
            epoch is one iteration, batch_size and shuffle are unused, and an
            lr is refused. None continues the optimizer of the previous fit,
            with its state, or starts plain SGD.
        validation_data : (X_val, y_val) or (X_val, y_val, sample_weight_val), optional
            Scored after every epoch: ``val_loss``, and ``val_accuracy``
            (softmax, sigmoid) or ``val_r2`` (identity) in the history;
            weighted by ``sample_weight_val`` and ``class_weight`` when
            given (see ``sample_weight``).
        validation_split : float, default 0
            Instead of validation_data, hold out this fraction of (X, y): the
            last ``round(validation_split * n)`` rows (Python's ``round``,
            halves to even), or for softmax as many of the last rows of each
            class, counted per class (stratified); they keep their weights.
        callbacks : list, optional
            Objects with any of ``on_train_begin(net)``,
            ``on_epoch_end(epoch, logs)`` (return True to stop) and
            ``on_train_end(net)``, e.g. :class:`fastbp.EarlyStopping`. At
            most one learning-rate schedule (:mod:`fastbp.schedules`); it
            becomes ``net.schedule`` and later fits continue it.
        on_divergence : {"raise", "stop", "warn"}, default "raise"
            When a batch's loss or the parameters become NaN or infinite, the
            params, optimizer state and RNG are rolled back to the last state
            with finite parameters and a finite loss (into the epoch before,
            which stays in the history, when its last update made the bad
            state; not before the weights the fit began with; distributed,
            within the epoch only) and training stops;
            the callbacks' ``on_train_end`` run; then "raise" raises
            :class:`fastbp.TrainingDivergedError` (naming the epoch and
            batch), "warn" issues a RuntimeWarning and "stop" says nothing;
            both return the history with ``history.diverged`` set. L-BFGS
            stops where the loss or its gradient at an accepted iterate is
            not finite, keeps that iterate, and reports it the same way.

        distributed : bool or MPI communicator, default False
            Data-parallel training over MPI (``mpiexec -n 4 python -m mpi4py
            script.py``): True for ``MPI.COMM_WORLD``. Every rank passes the
            same data; see :mod:`fastbp.distributed`.
        sample_weight : array_like, (n,), optional
            Non-negative finite weight of each row of (X, y). Training then
            minimises scikit-learn's weighted loss: for each batch B,
            ``sum_B w_i L_i / sum_B w_i + alpha / (2 sum_B w_i) sum |W|^2``
            (the weighted mean of the rows' losses, the L2 term over the
            weights' sum), so an integer weight k counts as the row repeated k
            times in full-batch training, and all-ones weights train bit for
            bit as no weights. The history's ``loss`` is the mean of the
            batch losses weighted by batch size (scikit-learn's ``loss_``;
            the weighted objective itself for one batch per epoch), and the
            validation metrics are weighted likewise. A batch whose weights
            sum to zero has a zero gradient (plain SGD leaves the parameters
            as they are; momentum and Adam still move them). The
            weights are computed in the kernels (one extra compiled epoch
            kernel, used only by a weighted fit); they are not part of the
            model. Not with ``distributed``.
        class_weight : dict or "balanced", optional
            For classifiers (softmax, or one sigmoid output): a weight per
            class, ``{label: weight}`` (labels as y holds them; an omitted
            class weighs 1), or ``"balanced"``:
            ``n_samples / (n_classes * count(c))`` as scikit-learn's
            ``compute_class_weight`` (counts of the classes present in y,
            weighted by ``sample_weight`` when given). Each row's weight is
            ``sample_weight`` times its class's weight, in training and
            validation alike.

        Notes
        -----
        Ctrl-C during ``fit`` (or a KeyboardInterrupt raised by a callback's
        ``on_epoch_end``) ends training after the epoch in progress: an epoch
        is one compiled call, which a signal cannot stop midway. The model
        keeps every completed epoch, with consistent optimizer state and
        history, and ``fit`` returns the history with ``history.interrupted``
        set. (A KeyboardInterrupt from ``on_train_begin`` or ``on_train_end``
        propagates, as their other errors do.) A
        program that ignores SIGINT or handles it itself keeps that: fit
        replaces only Python's own handler, and restores it after.

        Threads: other threads may call ``predict``, ``loss`` and the like on
        the model during a fit (each thread has its own workspace; they see
        the parameters as they stand at that moment), but one model trains in
        one fit at a time: a second ``fit`` while one runs raises
        ``RuntimeError`` and changes nothing. A network of one hidden layer
        of at least 32 units, trained on dense rows in batches of under 128
        rows, at least 32 an epoch, without sample weights or dropout, in a
        fit long enough to pay for a helper thread, splits its hidden units
        between two threads where a second core is free
        (:func:`fastbp.threads.training`; see ``docs/guide/threads.md``):
        the same bits on one thread as on two.

        Returns
        -------
        History
            Per epoch: ``loss`` (mean training loss), ``lr``, ``seconds``, and
            the validation metrics. ``net.history`` keeps every fit's epochs.
        """
        run = _args.fit_arguments(self, X, y, epochs, batch_size, lr, shuffle, seed, verbose,
                                  optimizer, validation_data, validation_split, callbacks,
                                  on_divergence, distributed,
                                  sample_weight, class_weight)
        refused = None
        with _args.CLAIMING:  # (the optimizer and schedule checked again, and claimed)
            try:
                run = _args.claimed(self, run)
            except BaseException as exc:   # (Ctrl-C on one rank too, review HFP)
                refused = exc
            else:
                # Everything is checked: from here on the call changes the
                # model. (Undone if a callback's on_train_begin raises: then
                # nothing trained.) The schedule's own state too: its
                # on_train_begin starts it.
                before = (self.optimizer, getattr(self.optimizer, "lr", None), run.optimizer.lr
                          if not isinstance(run.optimizer, LBFGS) else None, self._schedule,
                          self._classes, self._rng.copy(),
                          None if run.schedule is None
                          else (run.schedule, dict(vars(run.schedule))),
                          getattr(run.optimizer, "state", None) is None)
                opt = self._optimizer = run.optimizer  # (checked by fit_arguments)
                _args.OWNERS[opt] = weakref.ref(self)
                self._schedule, self._classes = run.schedule, run.classes
                self._weights_scaled = run.weights_scaled
                if run.restart:
                    run.schedule.restart()
                if run.schedule is not None:
                    run.schedule._net = self  # (its on_train_begin's too: claimed here)
        # A distributed fit's ranks agreed on their arguments in fit_arguments;
        # on a claim refused since (another thread's fit took the optimizer
        # in between) they agree too, outside the lock: every rank raises, as
        # for a refused argument, where the others trained on and waited for
        # this one for ever (review HFN).
        comm = _args._agreeing(run.comm)
        if comm is not None:
            try:
                _args._agree(comm, refused)
            except BaseException:
                if refused is None:
                    self._undo_fit_start(before, opt)
                raise
        if refused is not None:
            raise refused
        if run.lr is not None and not isinstance(opt, LBFGS):
            opt.lr = run.lr
        if run.seed is not None:
            self._rng[:] = np.random.SeedSequence(run.seed).generate_state(2, np.uint64)
        self._fit_started = False
        try:
            return self._train(run, opt)
        except BaseException:
            if not run_started(self):
                self._undo_fit_start(before, opt)
            raise

    def _undo_fit_start(self, before, opt):
        """The model as it was before fit committed its arguments (a callback's
        on_train_begin raised: no epoch ran)."""
        previous, previous_lr, new_lr, schedule, classes, rng, started, stateless = before
        if stateless and getattr(opt, "state", None) is not None:
            opt.state = None  # sized for this model by the fit: free for another again
        if started:
            given, state = started
            vars(given).clear()
            vars(given).update(state)
        if new_lr is not None:
            opt.lr = new_lr
        if previous is not None and previous_lr is not None:
            previous.lr = previous_lr
        if opt is not previous:
            _args.OWNERS.pop(opt, None)  # free for another model, as before this fit
        self._optimizer, self._schedule, self._classes = previous, schedule, classes
        self._rng[:] = rng

    def _train(self, run, opt):
        # A cold cache: say that the first epoch compiles, and compile the
        # inference kernels beside it (fastbp._ahead; dense X, one process).
        ahead = _ahead.spec(self) if isinstance(run.X, np.ndarray) and run.comm is False else None
        # (in a distributed fit only rank 0 speaks, the notice included)
        quiet = run.comm is not False and _args.rank_of(run.comm) != 0
        with compile_notice(0 if quiet else run.verbose, ahead):
            if isinstance(opt, LBFGS):
                return run_lbfgs(self, run.X, run.Y, run.epochs, opt, run.verbose, run.validation,
                                 run.callbacks, run.weights, run.on_divergence)
            if run.comm is not False:
                from .distributed import run_distributed
                return run_distributed(self, run.X, run.Y, run.epochs, run.batch_size, opt,
                                       run.shuffle, run.verbose, run.validation, run.callbacks,
                                       run.on_divergence, comm=None if run.comm is True else run.comm)
            return run_epochs(self, run.X, run.Y, run.epochs, run.batch_size, opt, run.shuffle,
                              run.verbose, run.validation, run.callbacks, run.on_divergence,
                              run.weights)

    def partial_fit(self, X, y, batch_size=32, lr=None, shuffle=True, optimizer=None,
                    sample_weight=None, class_weight=None):
        """One pass over (X, y), continuing the weights, the optimizer and its
        state, and the shuffling stream: ``fit(X, y, epochs=1, verbose=0)``,
        with ``sample_weight`` and ``class_weight`` as in :meth:`fit`
        (``"balanced"`` counts the classes of this call's y)."""
        return self.fit(X, y, epochs=1, batch_size=batch_size, lr=lr, shuffle=shuffle, verbose=0,
                        optimizer=optimizer, sample_weight=sample_weight,
                        class_weight=class_weight)

    def _metrics(self, X, Y, weights=None, prefix=""):
        """Loss (as :meth:`loss`) and accuracy (classification) or R^2
        (regression) on converted data, in chunks: memory O(n), not O(n n_out);
        with ``weights`` (float64 (n,)), weighted as scikit-learn weights them."""
        if weights is not None:
            return self._weighted_metrics(X, Y, weights, prefix)
        # One forward pass per chunk gives its loss (summed) and its outputs.
        n, m = X.shape[0], self._sizes[-1]
        rows = min(n, CHUNK)
        ws, buf = self._workspace(self._rows(X)), np.empty((rows, m), dtype=self._dtype)
        params, x = self._reading(X)
        total, res, hits = 0.0, np.zeros(m), 0.0
        for start in range(0, n, rows):
            nb = min(rows, n - start)
            part = kernel_rows(x, start, nb)
            want, out = Y[start:start + nb], buf[:nb]
            total += float(network._loss_sum(params, ws, self.plan, part, want,
                                             *self._kernel_codes, out))
            if self._output == "identity":   # (in float64: float32's squares overflow at 1.8e19)
                d = np.subtract(want, out, dtype=np.float64)
                res += np.multiply(d, d, out=d).sum(axis=0)
            elif self._output == "softmax":
                hits += np.count_nonzero(out.argmax(axis=1) == want)
            else:  # a row counts when every label is right (scikit-learn's subset accuracy)
                hits += np.count_nonzero(((out > 0.5) == (want > 0.5)).all(axis=1))
        logs = {prefix + "loss": float(total / n + self._penalty(n))}
        if self._output == "identity":  # R^2 averaged over the outputs, as scikit-learn's r2_score
            logs[prefix + "r2"] = _r2_score(res, self._total_squares(Y), n)
        else:
            logs[prefix + "accuracy"] = float(hits / n)
        return logs

    def _weighted_loss(self, X, Y, weights):
        """:meth:`loss` of converted data with weights (float64 (n,), sum > 0)."""
        from ._weighted import loss_value_weighted
        ws = self._workspace(self._rows(X))
        params, x = self._reading(X)
        return float(loss_value_weighted(params, ws, self.plan, x, Y, weights,
                                         self._loss_code)) + self._penalty(float(weights.sum()))

    @staticmethod
    def _total_squares(Y, weights=None):
        """R^2's total sums of squares of the network's targets Y (n, m), in
        float64 (weighted by ``weights``, float64 (n,), as scikit-learn's
        r2_score), a chunk of rows at a time: memory O(CHUNK m), where the
        whole Y in float64 and its deviations took 6 times Y's size (147 MiB
        for 24 MiB of float32 targets; review HBQ).

        A column whose values (of the rows of positive weight) are all equal
        has exactly 0, whose mean may round: the ones scaled by (y + 0.3) /
        0.7 left 2e-30, and R^2 -7.8e31 where scikit-learn's r2_score of
        the ones and the same predictions gives 0. So R^2 does not depend on
        the target scaling; it is 0 (1 for a perfect fit) also where
        scikit-learn's own mean of the raw values rounds (50 times 0.1:
        its R^2 is -9.8e32, fastbp's 0)."""
        n, m = Y.shape
        chunks = range(0, n, CHUNK)
        if weights is None:
            mean = Y.mean(axis=0, dtype=np.float64)
        else:
            mean = sum(weights[i:i + CHUNK] @ Y[i:i + CHUNK].astype(np.float64, copy=False)
                       for i in chunks) / float(weights.sum())
        tot, constant, first = np.zeros(m), np.ones(m, dtype=bool), None
        for i in chunks:
            rows = Y[i:i + CHUNK]
            squares = np.subtract(rows, mean, dtype=np.float64)
            np.multiply(squares, squares, out=squares)
            if weights is None:
                tot += squares.sum(axis=0)
            else:
                w = weights[i:i + CHUNK]
                tot += w @ squares
                rows = rows[w > 0]
            if rows.shape[0]:
                first = rows[:1] if first is None else first
                constant &= (rows == first).all(axis=0)
        return tot if first is None else np.where(constant, 0.0, tot)

    def _weighted_metrics(self, X, Y, weights, prefix=""):
        # _metrics with sample weights: the weighted mean loss plus the L2
        # term over the weights' sum; accuracy and R^2 as scikit-learn's
        # accuracy_score and r2_score with sample_weight.
        logs = {prefix + "loss": self._weighted_loss(X, Y, weights)}
        # R^2 and accuracy take the weights' ratios only: scaled as fit scales
        # them at alpha 0 (weights of 2.5e299 overflowed the sums to an R^2
        # of NaN, of 1e-304 took its residuals into the subnormals, with
        # alpha > 0, which keeps the loss's weights as given)
        weights = _scaled_up(weights, 0.0)
        total = float(weights.sum())
        if self._output == "identity":
            res = np.zeros(self._sizes[-1])
            for start, out in self._chunks(X):
                w = weights[start:start + len(out), None]
                res += (w * np.square(np.subtract(Y[start:start + len(out)], out,
                                                  dtype=np.float64))).sum(axis=0)
            logs[prefix + "r2"] = _r2_score(res, self._total_squares(Y, weights), len(weights))
            return logs
        hits = 0.0
        for start, out in self._chunks(X):
            want = Y[start:start + len(out)]
            w = weights[start:start + len(out)]
            if self._output == "softmax":
                hits += float(w @ (out.argmax(axis=1) == want))
            else:
                hits += float(w @ ((out > 0.5) == (want > 0.5)).all(axis=1))
        logs[prefix + "accuracy"] = hits / total
        return logs

    def save(self, path):
        """Write the model, its optimizer state, RNG state and history to a
        ``.npz`` file (no pickle), atomically; read it with :func:`fastbp.load`."""
        _modelfile.save(self, path)

    # ----------------------------------------------- deployment, interop
    def to_onnx(self, path=None, opset=None, input_dtype=None):
        """The model as ONNX (``pip install "fastbp[onnx]"``): written to
        ``path`` atomically (returns None), or returned as bytes.

        Input ``X`` (N, n_in) of raw rows in the model's dtype, or, for a
        model with :attr:`categories`, a string tensor (N, :attr:`n_columns`)
        of raw rows as text (numbers as decimal text, e.g. ``rows.astype(str)``
        of an object array of floats and labels), encoded in the graph as
        :meth:`predict` encodes them (an unseen label: an all-zero code, no
        warning); outputs
        ``label`` (:meth:`predict`'s values; bool and integer classes as
        int64, uint64 ones as uint64, float ones as double) and ``probabilities`` (as
        :meth:`predict_proba`) for softmax and sigmoid outputs, ``values``
        (N, n_out) (as :meth:`predict`) for identity. Categories, input
        standardisation, class labels and target scaling are part of the graph (see
        :mod:`fastbp.export`). ``opset`` defaults to 18; too old an opset
        for the model's operators is a ValueError naming them.

        ``input_dtype`` ("float32" or "float64"; default the model's) types
        the numeric ``X``: the rows are standardised in float64 as they come,
        so a float32 model with input standardisation, exported with
        ``input_dtype="float64"``, gives on float64 rows (a CSV's, as the
        command line reads them) what :meth:`predict` gives on them, where
        float32 rows are rounded before the standardisation (as predict's
        are): for columns whose mean lies far from zero in units of their
        spread (timestamps, offsets) that rounding moves the answers.
        """
        from .export import to_onnx
        return to_onnx(self, path, opset, input_dtype)

    def to_torch(self):
        """A ``torch.nn.Sequential`` of ``Linear`` and activation modules with
        this model's weights, in its dtype (see :mod:`fastbp.interop`), and a
        ``Dropout`` after each activation whose layer has a dropout rate; in
        ``eval()`` mode, inference as :meth:`predict` (``.train()`` to train
        it in torch). Softplus is written ``Softplus(threshold=40)``: torch's
        default 20 takes x itself above 20, up to 2.1e-9 from fastbp's
        ``log(1 + exp(x))`` in float64.

        Its outputs are fastbp's pre-output values: the logits of a softmax
        or sigmoid output (apply ``torch.softmax(out, dim=1)`` or
        ``torch.sigmoid(out)`` to get :meth:`predict_proba`, or use them
        with ``CrossEntropyLoss`` / ``BCEWithLogitsLoss``), or the values of
        an identity output. Input standardisation is folded into the first
        ``Linear`` and target scaling into the last, so the module takes
        raw rows and answers in the targets' units. The folding is computed
        in float64 and rounded to the model's dtype, and the module then
        computes ``x @ (W / scale).T + (b - W / scale @ mean)``, where fastbp
        computes ``(x - mean) / scale`` in float64 first: for inputs whose
        mean lies far from zero in units of their spread (``|mean| / scale``
        beyond about 1e3 in float32, 1e11 in float64) the two large terms
        cancel and the module loses digits fastbp keeps. A model with text
        columns (``categories``) is refused: a module takes numbers, and
        :meth:`to_onnx` encodes the text in its graph.
        """
        from .interop import to_torch
        return to_torch(self)

    @classmethod
    def from_torch(cls, module, output="softmax", **kwargs):
        """A model with the weights of a ``torch.nn.Sequential`` of ``Linear``
        layers and supported activations (``Tanh``, ``Sigmoid``, ``ReLU``,
        ``LeakyReLU(0.01)``, ``ELU(1)``, ``Softplus()`` (a threshold of 20 or
        more: above it torch takes x itself, up to 2.1e-9 from fastbp's exact
        softplus in float64 at the default 20), ``Identity``,
        ``Dropout``: one per layer, after its activation, or before a ReLU,
        with which it commutes), bitwise. ``output`` is the output function applied to
        the last Linear (a trailing ``Softmax``/``Sigmoid`` module must
        agree with it); other keyword arguments go to :class:`MLP`. Any
        other module, and one that computes other than its ``torch.nn``
        class (a subclass with a ``forward`` of its own, a forward replaced
        on the module, forward hooks, TorchScript), is a TypeError naming it;
        a supported activation of other settings (``LeakyReLU(0.2)``,
        ``ELU(0.5)``, ``Softplus(beta=2)`` or a threshold below 20) a
        ValueError naming them."""
        from .interop import from_torch
        return from_torch(cls, module, output, **kwargs)

    @classmethod
    def from_sklearn(cls, fitted, **kwargs):
        """The network of a fitted scikit-learn ``MLPClassifier`` or
        ``MLPRegressor``: its weights, activation, output function (softmax
        for several classes; sigmoid for two classes, scikit-learn's single
        logistic unit, and for multilabel; identity for regression),
        classes, and ``alpha`` converted to fastbp's losses so that the
        optimum stays scikit-learn's (``alpha / m`` for m labels, ``2 alpha
        / m`` for m regression outputs; see the regularisation guide). Other
        keyword arguments go to :class:`MLP`."""
        from .interop import from_sklearn
        return from_sklearn(cls, fitted, **kwargs)

    def __repr__(self):
        hidden = self._activations[0] if len(set(self._activations)) == 1 else list(self._activations)
        act = f", activation={hidden!r}" if self._activations else ""
        reg = f", alpha={self.alpha!r}" if self.alpha else ""
        if any(self.dropout):
            rates = self.dropout
            reg += f", dropout={rates[0] if len(set(rates)) == 1 else list(rates)!r}"
        if self._classes is not None:
            shown = self._classes[:10].tolist()
            reg += f", classes={shown}" if len(self._classes) <= 10 else \
                f", classes={str(shown)[:-1]}, ... ({len(self._classes)})]"
        if self._categories is not None:
            reg += f", categories={{{', '.join(f'{j}: {len(l)}' for j, l in self._categories)}}}"
        if self._input_mean is not None:
            reg += ", input_scaling=True"
        if self._target_mean is not None:
            reg += ", target_scaling=True"
        return (f"MLP(sizes={list(self._sizes)}{act}, output={self._output!r},"
                f" loss={self._loss_name!r}, dtype={self._dtype.name!r}{reg}, n_params={self.n_params})")
