"""The arguments of :class:`fastbp.MLP` and its ``fit``, checked once at the
public boundary, and the names they accept. Errors name the argument, what
was expected and what was given; a call they reject has changed nothing.

:func:`architecture` checks the constructor's arguments; :func:`fit_arguments`
checks a fit's and resolves what it will run with (the data converted, the
optimizer, the schedule, the callbacks, the validation data), without
changing the model: ``MLP.fit`` applies the result only once all of it is
known to be valid.
"""
import collections
import collections.abc
import inspect
import numbers
import threading
import weakref
from typing import NamedTuple

import numpy as np

from . import _modelfile, _preprocess, ops
from ._validate import (SparseRows, check_bool, check_choice, check_int, check_nonnegative,
                        check_positive, check_seed, check_weight_sum, fit_weights, in_unit_interval,
                        validation_weights, weight_sources)
from .optim import NAMES as OPTIMIZERS
from .optim import LBFGS, SGD, Optimizer
from .schedules import Schedule
from .train import ON_DIVERGENCE, EarlyStopping, ModelCheckpoint

ACTIVATIONS = {"identity": ops.IDENTITY, "sigmoid": ops.SIGMOID, "tanh": ops.TANH,
               "relu": ops.RELU, "leaky_relu": ops.LEAKY_RELU, "elu": ops.ELU,
               "softplus": ops.SOFTPLUS}
LOSSES = {"cross_entropy": ops.CROSS_ENTROPY, "binary_cross_entropy": ops.BINARY_CROSS_ENTROPY,
          "mse": ops.MSE, "mae": ops.MAE, "huber": ops.HUBER}
# Output function -> the losses it pairs with (the first is the default).
OUTPUTS = {"softmax": ("cross_entropy",), "sigmoid": ("binary_cross_entropy",),
           "identity": ("mse", "mae", "huber")}
DTYPES = {"float32": np.float32, "float64": np.float64}
INITS = ("auto", "glorot", "he")


# ------------------------------------------------------------ constructor
class Architecture(NamedTuple):
    """The constructor's arguments, checked and in canonical form."""
    sizes: list
    activations: list
    output: str
    loss: str
    dtype: str
    seed: object
    init: str
    alpha: float
    dropout: list


def architecture(sizes, activation, output, loss, dtype, seed, init, alpha, dropout):
    """Check ``MLP(...)``'s arguments; their canonical values."""
    sizes = check_sizes(sizes)
    activations = check_activations(activation, len(sizes) - 2)
    alpha = check_alpha(alpha)
    dropout = check_dropout(dropout, len(sizes) - 2)
    output = check_choice(output, "output", tuple(OUTPUTS))
    if loss is None:
        loss = OUTPUTS[output][0]
    loss = check_choice(loss, "loss", tuple(LOSSES))
    if loss not in OUTPUTS[output]:
        raise ValueError(f"loss {loss!r} does not pair with output {output!r}; use one of"
                         f" {', '.join(map(repr, OUTPUTS[output]))}")
    if output == "softmax" and sizes[-1] < 2:
        raise ValueError(f"a softmax output needs sizes[-1] >= 2 classes; got {sizes[-1]}"
                         " (for one binary output use output='sigmoid')")
    dtype = check_dtype(dtype)
    if output == "softmax" and dtype == "float32" and sizes[-1] > 2 ** 24:
        # (the kernels hold a batch's labels in the network's dtype: label
        # 2**24 + 1 read as 2**24, its loss and gradient of the wrong class)
        raise ValueError(f"a float32 softmax output holds at most 2**24 = {2 ** 24} classes, whose"
                         f" labels float32 holds exactly; got sizes[-1] = {sizes[-1]}: use"
                         " dtype='float64'")
    return Architecture(sizes, activations, output, loss, dtype, check_seed(seed),
                        check_choice(init, "init", INITS), alpha, dropout)


def check_sizes(sizes):
    try:
        seq = list(sizes)
    except TypeError:
        raise TypeError(f"sizes must be a sequence of layer widths [n_in, ..., n_out]; got {sizes!r}") from None
    if len(seq) < 2:
        raise ValueError(f"sizes must list at least the input and output widths [n_in, n_out]; got {seq}")
    for i, s in enumerate(seq):
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"sizes[{i}] must be an integer width >= 1; got {s!r}")
        if s < 1:
            raise ValueError(f"sizes[{i}] must be an integer width >= 1; got {s}")
    seq = [int(s) for s in seq]
    # The flat buffer's length (and each workspace row) as an int64: past it
    # the layout overflowed ("Python int too large to convert to C long").
    count = sum((a + 1) * b for a, b in zip(seq, seq[1:]))
    if count > np.iinfo(np.int64).max // 8 or max(seq) > np.iinfo(np.int64).max // 8:
        raise ValueError(f"sizes {seq} make {count} parameters, more than an array can hold")
    return seq


def check_activations(activation, n_hidden):
    if isinstance(activation, str):  # checked also without hidden layers ([name] * 0 hid a typo)
        check_choice(activation, "activation", tuple(ACTIVATIONS))
    names = [activation] * n_hidden if isinstance(activation, str) else activation
    try:
        names = list(names)
    except TypeError:
        raise TypeError(f"activation must be a name or a list of names; got {activation!r}") from None
    if len(names) != n_hidden:
        raise ValueError(f"activation must name one activation per hidden layer ({n_hidden});"
                         f" got {len(names)}: {names}")
    return [check_choice(a, "activation", tuple(ACTIVATIONS)) for a in names]


def check_alpha(alpha):
    return check_nonnegative(alpha, "alpha (the L2 penalty)")


def check_dropout(dropout, n_hidden):
    scalar = isinstance(dropout, numbers.Real) and not isinstance(dropout, (bool, np.bool_))
    if scalar and n_hidden == 0 and dropout != 0:  # [dropout] * 0 would drop it unseen
        raise ValueError(f"dropout applies to hidden layers, and this network has none (sizes"
                         f" [n_in, n_out]); got dropout={dropout!r}, expected 0")
    rates = [dropout] * n_hidden if scalar else dropout
    try:
        if isinstance(rates, (str, bytes)):
            raise TypeError
        rates = list(rates)
    except TypeError:
        raise TypeError(f"dropout must be a rate or a list of rates, one per hidden layer; got"
                        f" {dropout!r}") from None
    if len(rates) != n_hidden:
        raise ValueError(f"dropout must give one rate per hidden layer ({n_hidden}); got"
                         f" {len(rates)}: {rates}")
    stored = []
    for i, r in enumerate(rates):
        if isinstance(r, (bool, np.bool_)) or not isinstance(r, numbers.Real):
            raise TypeError(f"dropout rates must be numbers in [0, 1); got {r!r} for hidden layer {i}")
        rate = in_unit_interval(r)   # (a Fraction too; one that rounds to 1.0 is refused)
        if rate is None:
            raise ValueError(f"dropout rates must be numbers in [0, 1); got {r!r} for hidden layer {i}")
        stored.append(rate)
    return stored


def check_dtype(dtype):
    if isinstance(dtype, str) and dtype.casefold() in DTYPES:  # "Float32" as "float32"
        return dtype.casefold()
    for name, t in DTYPES.items() if dtype is not None else ():  # (np.dtype(None): float64)
        try:
            if np.dtype(dtype) == t:
                return name
        except TypeError:
            pass
    raise ValueError(f"dtype must be 'float32' or 'float64'; got {dtype!r}")


def check_monitors(callbacks, reported, continued=None, distributed=False):
    """Every metric a fastbp callback monitors must be one the fit reports:
    found here, before the fit changes anything, not after an epoch. In a
    distributed fit, no EarlyStopping or schedule may follow a rank's own
    clock (``seconds``, ``comm_seconds``): the ranks would part."""
    for cb in callbacks:
        monitor = getattr(cb, "monitor", None)
        if distributed and monitor in ("seconds", "comm_seconds") \
                and isinstance(cb, (EarlyStopping, Schedule)):
            raise ValueError(f"{type(cb).__name__} monitors {monitor!r}, which each rank of a"
                             " distributed fit measures on its own clock: the ranks would stop"
                             " or set their rates apart; monitor the loss or a validation"
                             " metric")
        if not isinstance(cb, (EarlyStopping, ModelCheckpoint, Schedule)) or monitor is None \
                or monitor in reported:
            continue
        which = (f"net.schedule {cb!r}, continued from an earlier fit," if cb is continued
                 else type(cb).__name__)
        hint = ("; validation metrics need fit's validation_data or validation_split"
                " (partial_fit takes none)"
                if monitor.startswith("val_") and not any(m.startswith("val_") for m in reported)
                else "")
        drop = "; set net.schedule = None to drop it" if cb is continued else ""
        raise ValueError(f"{which} monitors {monitor!r}, which training does not report; it"
                         f" reports {', '.join(sorted(reported))} in this fit{hint}{drop}")


# -------------------------------------------------------------------- fit
class FitArguments(NamedTuple):
    """What a fit runs with, every argument checked: the model is unchanged."""
    X: object                   # the network's inputs (validation rows split off)
    Y: object                   # its targets
    classes: object             # the model's classes_ after the fit
    epochs: int
    batch_size: int
    shuffle: bool
    seed: object                # restarts the shuffling and dropout streams, or None
    verbose: int
    on_divergence: str
    optimizer: object
    lr: object                  # replaces the optimizer's, or None
    validation: object          # (X_val, Y_val) or (X_val, Y_val, W_val), or None
    callbacks: list             # the schedule, if any, first
    schedule: object            # the model's schedule after the fit
    restart: bool               # the schedule starts anew (at fit's commit)
    comm: object                # False, or True / an MPI communicator
    weights: object             # float64 (n,) row weights of X, or None
    weights_scaled: bool        # its or the validation rows' weights scaled (alpha 0)


def fit_arguments(net, X, y, epochs, batch_size, lr, shuffle, seed, verbose, optimizer,
                  validation_data, validation_split, callbacks, on_divergence, distributed,
                  sample_weight=None, class_weight=None):
    """Check the arguments of ``net.fit`` (see there) and resolve what it runs with.

    In a distributed fit the ranks agree first (one allgather): a rank whose
    own arguments are refused (NaN in its X, a label of its own, a
    checkpoint folder rank 0 lacks) raised alone, and the others waited in
    their first collective for ever."""
    comm = _agreeing(distributed)
    try:
        run = _fit_arguments(net, X, y, epochs, batch_size, lr, shuffle, seed, verbose, optimizer,
                             validation_data, validation_split, callbacks, on_divergence,
                             distributed, sample_weight, class_weight)
    except BaseException as exc:   # (Ctrl-C on one rank too)
        if comm is not None:
            _agree(comm, exc)
        raise
    if comm is not None:
        _agree(comm, None)
    return run


def _agreeing(distributed):
    """The communicator of a distributed fit, for the ranks' agreement; None
    where there is none to agree over (not distributed, or not a valid
    communicator: then every rank refuses it alike)."""
    if isinstance(distributed, np.bool_):
        distributed = bool(distributed)
    try:
        if distributed is True:
            from .distributed import world
            return world()
        if distributed is not False and hasattr(distributed, "allgather"):
            from .distributed import _mpi
            return None if distributed == _mpi().COMM_NULL else distributed
    except ImportError:
        pass
    return None


def _agree(comm, exc, error=None):
    """Raise on every rank if any rank's fit was refused (``exc`` its own
    error, or None): a failing rank raises its own, the others an error
    naming it (marked ``refused_elsewhere``; ``error(named)`` makes it from
    the text naming the ranks and their errors, a ValueError by default).
    Every rank calls it at the same step, once."""
    errors = comm.allgather(None if exc is None else f"{type(exc).__name__}: {exc}")
    failed = [(r, e) for r, e in enumerate(errors) if e is not None]
    if failed and exc is None:
        named = "; ".join(f"{r} ({e})" for r, e in failed)
        error = (error or (lambda named: ValueError(
            f"the distributed fit was refused on rank(s) {named}: every rank stops, its model"
            " unchanged")))(named)
        error.refused_elsewhere = True
        raise error


def _fit_arguments(net, X, y, epochs, batch_size, lr, shuffle, seed, verbose, optimizer,
                   validation_data, validation_split, callbacks, on_divergence, distributed,
                   sample_weight=None, class_weight=None):
    classes = net.classes_
    if classes is None and learns_classes(net, y):
        # (trained: an epoch recorded, or an optimizer that took a step; an
        # optimizer only set, or a fit of epochs=0, was refused as "trained")
        if len(net.history) or (net.optimizer is not None and net.optimizer.t > 0):
            raise TypeError("y must hold numbers: this model was trained on integer class"
                            " labels (classes_ is None), which text labels cannot continue;"
                            " set net.classes_ to the label of each output first")
        classes = _preprocess.learn_classes(y, net.output, net.sizes[-1])
    X, Y = net._data(X, y, classes=classes)
    scaled = []
    weights, per_class = fit_weights(sample_weight, class_weight, Y, net.output, net.sizes[-1],
                                     classes, net.alpha, scaled)
    epochs = check_int(epochs, "epochs", 0)
    batch_size = check_int(batch_size, "batch_size", 1)
    shuffle = check_bool(shuffle, "shuffle")
    seed = check_seed(seed)
    verbose = check_verbose(verbose)
    on_divergence = check_choice(on_divergence, "on_divergence", ON_DIVERGENCE)
    opt = optimizer_for(net, optimizer, lr)
    comm = check_distributed(distributed, opt, X)
    if comm is not False and (weights is not None or (isinstance(validation_data, (tuple, list))
                                                      and len(validation_data) == 3
                                                      and validation_data[2] is not None)):
        raise ValueError("distributed training takes no weights: no sample_weight or"
                         " class_weight, nor validation_data's third element")
    lbfgs_without_dropout(net, opt)
    validation = validation_set(net, X, Y, validation_data, validation_split, classes, weights,
                                per_class, weight_sources(sample_weight, class_weight), scaled)
    if validation_split:
        X, Y, weights, validation = validation
    # Checkpoints are written by rank 0 alone in a distributed fit: only it
    # checks their folder (another node may have no such folder).
    saves = comm is False or rank_of(comm) == 0
    # The model's own optimizer given again continues, as none given does: a
    # loop of fit(optimizer=opt, callbacks=[s]) restarted s at every call.
    explicit = lr is not None or (optimizer is not None and optimizer is not net.optimizer)
    callbacks, schedule, restart = schedule_first(net, check_callbacks(callbacks, saves), opt,
                                                  explicit=explicit)
    if saves and any(isinstance(cb, ModelCheckpoint) for cb in callbacks):
        # before training, not at the first checkpoint; the schedule this
        # fit runs (and saves), not the one it may replace
        _modelfile.check_saveable_model(net, schedule)
    check_monitors(callbacks, log_keys(net, validation is not None, comm is not False),
                   continued=schedule if schedule is net.schedule else None,
                   distributed=comm is not False)
    return FitArguments(X, Y, classes, epochs, batch_size, shuffle, seed, verbose, on_divergence,
                        opt, lr, validation, callbacks, schedule, restart, comm, weights,
                        bool(scaled))


def check_verbose(verbose):
    """0, 1 or 2 (False and True read as 0 and 1), as int; else an error naming
    the three levels (a 5 is not "more verbose" than 2)."""
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    if isinstance(verbose, numbers.Integral) and verbose in (0, 1, 2):
        return int(verbose)
    error = ValueError if isinstance(verbose, numbers.Integral) else TypeError
    raise error("verbose must be 0 (silent), 1 (a progress bar, or a line per epoch"
                f" outside a terminal) or 2 (a line per epoch); got {verbose!r}")


def learns_classes(net, y):
    """Whether fit learns classes_ from y: text labels for a model without them."""
    try:
        return _preprocess.n_classes(net.output, net.sizes[-1]) is not None \
            and _preprocess.is_text(y)
    except (TypeError, ValueError):
        return False  # not an array at all: check_targets words the error


# optimizer -> a weak reference to the model whose fit last ran it (MLP.fit
# records it): kept outside the optimizer, so that a copy or an unpickled
# one belongs to no model.
OWNERS = weakref.WeakKeyDictionary()

# Held while a fit checks once more who holds its optimizer and schedule
# and claims them (OWNERS, the schedule's model: :func:`claimed`), and by
# net.optimizer = ...: two models' fits started at once in threads had both
# passed fit_arguments' checks before either claimed, and both took one
# optimizer, or one schedule, which then counted both fits' epochs (review
# HFH). Not held over fit_arguments itself, whose distributed agreement
# waits for the other ranks: their threads waited on this lock (HFK).
CLAIMING = threading.RLock()


def check_owner(net, opt):
    """Refuse an optimizer that another model's training holds."""
    owner = OWNERS.get(opt)
    other = owner() if owner is not None else None
    if other is not None and other is not net and other.optimizer is opt:
        raise ValueError(f"this optimizer ({opt!r}) holds the state of another model's"
                         f" training: give this model its own (fastbp.{type(opt).__name__}"
                         "(...)), or copy.deepcopy it to start from that state")


def claimed(net, run):
    """``run`` as ``net``'s fit claims it, under :data:`CLAIMING`: its
    optimizer and schedule checked again (another thread's fit may have
    claimed them since fit_arguments checked), as fit_arguments checks them:
    another model's optimizer refused, another model's schedule replaced by
    a copy that starts anew."""
    check_owner(net, run.optimizer)
    schedule = run.schedule
    if schedule is not None and getattr(schedule, "_net", net) is not net:
        schedule = schedule.fresh()
        run = run._replace(schedule=schedule, callbacks=[schedule] + run.callbacks[1:],
                           restart=False)
    return run


def lbfgs_without_dropout(net, opt):
    """Refuse L-BFGS for a model with dropout (fit's argument, or
    ``net.optimizer = LBFGS()``, which the next fit refused)."""
    if isinstance(opt, LBFGS) and any(net.dropout):
        raise ValueError("L-BFGS (full batch, deterministic line search) cannot train with"
                         f" dropout={list(net.dropout)}; use a minibatch optimizer such as"
                         " 'sgd' or 'adam', or a model without dropout")


def optimizer_for(net, optimizer, lr):
    """The optimizer a fit uses: the model's own (continued), a new one by
    name, or the one given; its state checked against the model."""
    if lr is not None:
        check_positive(lr, "lr")
    if optimizer is None:
        opt = net.optimizer if net.optimizer is not None else SGD(lr=lr or 0.01)
    elif isinstance(optimizer, str):
        cls = OPTIMIZERS[check_choice(optimizer, "optimizer", tuple(OPTIMIZERS))]
        opt = cls() if lr is None or cls is LBFGS else cls(lr=lr)
    elif isinstance(optimizer, (Optimizer, LBFGS)):
        opt = optimizer
        check_owner(net, opt)
    else:
        raise TypeError("optimizer must be None, a name (" + ", ".join(map(repr, OPTIMIZERS))
                        + f") or a fastbp optimizer such as fastbp.Adam(); got {optimizer!r}")
    if lr is not None and isinstance(opt, LBFGS):
        raise ValueError(f"L-BFGS takes no learning rate (its line search chooses each step);"
                         f" got lr={lr!r}")
    opt.check_state(net.params)
    if opt is optimizer and isinstance(opt, Optimizer):
        # What load refuses of a file's optimizer, refused of one given
        # (review HCB: a NaN state diverged at the first step, blaming lr,
        # and the model then held an optimizer save refused)
        from ._modelfile import state_problem
        state = opt.state if opt.state is not None else np.zeros((2, 0), net.params.dtype)
        problem = state_problem(opt, state, opt.t)
        if problem:
            raise ValueError(f"this optimizer cannot take up training: its {problem}; give a"
                             f" new one (fastbp.{type(opt).__name__}(...)) or one a fit left")
    return opt


def rank_of(comm):
    """This process's rank in ``comm`` (True: MPI's world)."""
    if comm is True:
        from .distributed import world
        comm = world()
    return comm.rank


def check_distributed(distributed, opt, X):
    """False for a fit on this process, else True or the MPI communicator."""
    if isinstance(distributed, np.bool_):
        distributed = bool(distributed)
    if distributed is False or distributed is None:
        return False
    if isinstance(opt, LBFGS):
        raise ValueError("distributed training takes a minibatch optimizer; L-BFGS is full"
                         " batch")
    if distributed is not True and not hasattr(distributed, "Allreduce"):
        raise TypeError("distributed must be True, False or an MPI communicator; got"
                        f" {distributed!r}")
    if distributed is not True:
        from .distributed import _mpi
        if distributed == _mpi().COMM_NULL:  # (a rank left out by comm.Split(MPI.UNDEFINED))
            raise ValueError("distributed is MPI.COMM_NULL: this process is in no group of"
                             " ranks (comm.Split with MPI.UNDEFINED); train it alone"
                             " (distributed=False) or in a communicator that holds it")
    if isinstance(X, SparseRows):
        raise ValueError("distributed training takes a dense X; got a sparse matrix")
    return distributed


def validation_set(net, X, Y, validation_data, validation_split, classes=None, weights=None,
                   per_class=None, sources=("sample_weight",), scaled=None):
    """The converted validation_data, ``(X_val, Y_val)`` or with validation
    weights ``(X_val, Y_val, W_val)``; or None without a split; or with a
    validation_split ``(X_train, Y_train, weights_train, validation)``, the
    held-out rows keeping their weights."""
    if isinstance(validation_split, (bool, np.bool_)) \
            or not isinstance(validation_split, numbers.Real) or not 0 <= validation_split < 1:
        raise ValueError(f"validation_split must be a number in [0, 1); got {validation_split!r}")
    if validation_split and validation_data is not None:
        raise ValueError("give validation_data or validation_split, not both")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise TypeError("validation_data must be a pair (X_val, y_val) or a triple (X_val,"
                            " y_val, sample_weight_val)")
        Xv = net._inputs(validation_data[0], name="validation_data[0]")
        Yv = net._targets(validation_data[1], Xv.shape[0], name="validation_data[1]",
                          classes=classes, x_name="validation_data[0]")
        Wv = validation_weights(validation_data[2] if len(validation_data) == 3 else None,
                                per_class, Yv, net.output, net.sizes[-1], net.alpha, scaled)
        return (Xv, Yv) if Wv is None else (Xv, Yv, Wv)
    if not validation_split:
        return None
    if net.output == "softmax":  # stratified: the last rows of each class
        held = np.concatenate([idx[len(idx) - int(round(validation_split * len(idx))):]
                               for idx in (np.flatnonzero(Y == c) for c in range(net.sizes[-1]))])
    else:
        held = np.arange(X.shape[0] - int(round(validation_split * X.shape[0])), X.shape[0])
    mask = np.zeros(X.shape[0], dtype=bool)
    mask[held] = True
    if net.output == "softmax" and not mask.any():
        counts = np.bincount(Y, minlength=net.sizes[-1])
        raise ValueError(f"validation_split={validation_split} of {X.shape[0]} samples holds out"
                         " no validation samples: a softmax output's split is taken class by"
                         f" class (round({validation_split} x its rows) of each), and no class"
                         f" has enough rows (the most: {counts.max()}); give a larger"
                         " validation_split, or validation_data")
    if mask.all() or not mask.any():
        raise ValueError(f"validation_split={validation_split} of {X.shape[0]} samples leaves no"
                         " training or no validation samples")
    if weights is not None:
        check_weight_sum(weights[mask], "validation rows", sources)
        check_weight_sum(weights[~mask], "training rows", sources)
    kept = None if weights is None else np.ascontiguousarray(weights[~mask])
    held = () if weights is None else (np.ascontiguousarray(weights[mask]),)
    if isinstance(X, SparseRows):
        return X.take(~mask), Y[~mask], kept, (X.take(mask), Y[mask]) + held
    if net.output != "softmax":   # the last rows: views of the caller's memory (a memory map's)
        cut = X.shape[0] - int(mask.sum())
        return X[:cut], Y[:cut], kept, (X[cut:], Y[cut:]) + held
    return X[~mask], Y[~mask], kept, (X[mask], Y[mask]) + held


def check_callbacks(callbacks, saves=True):
    """The callbacks as a list, each checked: its methods take what fit
    passes; a ModelCheckpoint's folder exists (where this process ``saves``)."""
    # (text and mappings iterate as characters and keys: named as given)
    try:
        if isinstance(callbacks, (str, bytes, bytearray, memoryview, collections.UserString,
                                  collections.abc.Mapping)):
            raise TypeError
        callbacks = [] if callbacks is None else list(callbacks)
    except TypeError:  # one callback, not in a list, or a number
        raise TypeError(f"callbacks must be a list of callbacks, e.g. [cb]; got {callbacks!r}") from None
    for cb in callbacks:
        methods = [m for m in CALLBACK_METHODS if hasattr(cb, m)]
        if not methods:
            raise TypeError(f"callbacks must define on_train_begin, on_epoch_end or"
                            f" on_train_end; got {cb!r}")
        for m in methods:  # now, not after an epoch has trained
            method, takes = getattr(cb, m), CALLBACK_METHODS[m]
            if not callable(method):
                raise TypeError(f"callback {cb!r}: {m} must be a method {m}({', '.join(takes)});"
                                f" got {method!r}")
            try:
                signature = inspect.signature(method)
            except (TypeError, ValueError):  # a builtin: not inspectable
                continue
            try:
                signature.bind(*takes)
            except TypeError as exc:
                raise TypeError(f"callback {cb!r}: {m} must take ({', '.join(takes)}):"
                                f" {exc}") from None
        if saves and isinstance(cb, ModelCheckpoint):
            cb.check_folder()
    return callbacks


# What fit calls on a callback, and with what.
CALLBACK_METHODS = {"on_train_begin": ("net",), "on_epoch_end": ("epoch", "logs"),
                    "on_train_end": ("net",)}


def schedule_first(net, callbacks, opt, explicit):
    """``(callbacks, schedule, restart)``: the fit's learning-rate schedule
    (one given, or the model's continued unless ``explicit`` lr or optimizer
    ends it) first among the callbacks, so that checkpoints and early
    stopping see its state after each epoch; ``restart``: it is this model's
    own, given again with an explicit lr or optimizer, which end its count
    as they end a schedule left out, or one this model ran that has ended
    since: it starts anew from the optimizer's lr (when the fit commits;
    nothing changes here)."""
    schedules = [cb for cb in callbacks if isinstance(cb, Schedule)]
    if len(schedules) > 1:
        raise ValueError(f"callbacks may hold one learning-rate schedule; got {schedules}")
    if schedules and isinstance(opt, LBFGS):
        raise ValueError(f"L-BFGS takes no learning rate, so no schedule; got {schedules[0]!r}")
    others = [cb for cb in callbacks if not isinstance(cb, Schedule)]
    if schedules:
        schedule = schedules[0]
    elif explicit and (_continued(net, net.schedule) or isinstance(opt, LBFGS)):
        # An explicit lr or optimizer ends a schedule continued from an
        # earlier fit (one this model ran, or a file's), and L-BFGS any, as
        # net.optimizer = LBFGS() does; a new one set by hand since
        # (net.schedule = ..., never run) starts from that lr.
        schedule = None
    else:
        schedule = net.schedule  # (perhaps set to another model's: below)
    if schedule is not None and getattr(schedule, "_net", net) is not net:
        # Last given to another model: a copy starts anew on this one, and
        # that model keeps counting with the schedule it holds.
        schedule = schedule.fresh()
    if schedule is not None and isinstance(opt, LBFGS):
        # (set by hand, or in a file: the fit skipped it and kept it, saved)
        raise ValueError(f"L-BFGS takes no learning rate, so no schedule; the model holds"
                         f" {schedule!r}: set net.schedule = None first")
    # (one this model ran that has ended since, by net.schedule = None, another
    # optimizer or an lr, starts anew too: it is a new schedule for this model)
    restart = schedule is not None and getattr(schedule, "_net", None) is net \
        and (explicit or schedule is not net.schedule)
    if schedule is not None:
        callbacks = [schedule] + others
    return callbacks, schedule, restart


def _continued(net, schedule):
    """Whether ``schedule`` has started on ``net`` (run by its fits, or
    saved with it: a count, or an older file's lr0 alone; or rebuilt from
    such a state by ``from_json``), not a new one set by hand (or one
    ended and set again, which the setter restarts) or another model's."""
    return (schedule is not None
            and (hasattr(schedule, "_epochs") or getattr(schedule, "lr0", None) is not None)
            and getattr(schedule, "_net", net) is net)


def log_keys(net, validation, distributed):
    """The keys of the epoch logs a fit reports."""
    keys = {"loss", "lr", "seconds"} | ({"comm_seconds"} if distributed else set())
    if validation:
        keys |= {"val_loss", "val_r2" if net.output == "identity" else "val_accuracy"}
    return keys
