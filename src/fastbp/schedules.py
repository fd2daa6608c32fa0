"""Learning-rate schedules, as callbacks that set the optimizer's lr between
epochs (the epoch itself stays one compiled call).

    net.fit(X, y, epochs=30, optimizer="sgd", lr=0.1,
            callbacks=[fastbp.schedules.CosineAnnealing(T_max=30)])

A schedule given to ``fit`` becomes the model's ``net.schedule``: a later
``fit`` without one continues it (as it continues the optimizer), it is
saved with the model and continues after :func:`fastbp.load`, so that
``fit(epochs=3)`` twice, or around a save and load, equals ``fit(epochs=6)``
(to rounding where one call splits the hidden units between two threads
and the other does not: see the training guide).
Set ``net.schedule = None`` to stop scheduling. A schedule counts epochs
from its own start: a new one given to a trained model starts at epoch 0
(and lr0), a continued one keeps counting, and one last given to another model
starts anew on this one as a copy, the other keeping its own (a sweep may
reuse one schedule object). A fit given ``lr``, or an ``optimizer`` other
than the model's own, ends the model's schedule where it has started (run
by an earlier fit, or loaded with the model); a schedule it is given as
well starts anew there, from that learning rate, as do a new one set as
``net.schedule`` and one the model ran that has ended since
(``net.schedule = None``, or another optimizer set), given to a fit or set
as ``net.schedule`` again. The formulas are PyTorch's ``lr_scheduler`` ones
(StepLR, ExponentialLR, CosineAnnealingLR, ReduceLROnPlateau) and
scikit-learn's ``invscaling``; ``lr0`` is the optimizer's lr when the
schedule first starts. A continued schedule goes on from an lr set by hand
on its optimizer between fits (``net.optimizer.lr = 0.01``), or by a
callback during one, as PyTorch's schedulers go on from a param group's: its
later rates are those of an ``lr0`` that gives this rate at this epoch.
A schedule's parameters (``gamma``, ``T_max``, ``patience``, ...) are fixed
when it is made: assigning one raises AttributeError; make a new schedule.
"""
import copy
import inspect
import json
import math
import numbers

from ._validate import (check_choice, check_int, check_nonnegative, check_positive,
                        in_unit_interval, warn)


class _Param:
    """A built-in schedule's constructor argument: set once, as the schedule
    is made (where it is checked); assigning it later is refused, as the
    optimizers' hyper-parameters are (review HBL: ``s.gamma = 0`` trained
    unchecked and was saved in a file that ``load`` then refused whole)."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, obj, value):
        if self.name in obj.__dict__:
            cls = type(obj).__name__
            raise AttributeError(f"{cls}.{self.name} is fixed when the schedule is made (checked"
                                 f" there, and saved with the model): make a new one,"
                                 f" {cls}({self.name}=...), which starts anew")
        obj.__dict__[self.name] = value


class Schedule:
    """Base: subclasses define ``lr(epoch, lr0)``, the lr for 0-based ``epoch``.

    Public attributes (the constructor's arguments and ``lr0``) and private
    ones other than ``_net`` are the schedule's saved state, ``_epochs`` (the
    epochs it has scheduled) included; keep them JSON numbers, strings or
    None.
    """

    # The private fields of the saved state besides ``_epochs``, with their checks.
    _STATE = {}
    # Whether a negative lr0 keeps every later rate >= the current one (a rate
    # affine in lr0 whose slope shrinks toward a floor): CosineAnnealing's.
    _rises_to_floor = False

    def fresh(self):
        """A copy that starts anew, as a new schedule of the same parameters:
        what a model's fit takes when another model's holds this one."""
        new = copy.copy(self)
        new.restart()
        return new

    def restart(self):
        """Start anew, as a new schedule of the same parameters: epoch 0, and
        ``lr0`` the optimizer's lr at the next fit."""
        for key in [k for k in vars(self) if k.startswith("_")]:
            delattr(self, key)
        self.lr0 = None

    def on_train_begin(self, net):
        self._net = net
        self._start()
        if not hasattr(self, "_epochs"):
            # New: count from here. Started but without a count: saved by a
            # fastbp that counted the model's whole history; keep doing so.
            self._epochs = 0 if getattr(self, "lr0", None) is None else len(net.history)
        lr = net.optimizer.lr
        if getattr(self, "lr0", None) is None:
            self.lr0 = lr
        elif lr != self._finite(self._epochs):
            # Set by hand since the schedule last set it: this epoch trains at
            # it as set, as when a callback sets it during a fit (a checkpoint
            # taken then resumes on the same rates), and the schedule goes on
            # from it, or, where it cannot, sets its own after this epoch.
            self._set_by_hand(lr)
            return
        net.optimizer.lr = self._finite(self._epochs)

    def _finite(self, epoch):
        """The rate at ``epoch``; ValueError where it passes the largest float
        (a gamma above 1 over many epochs): the fit stops after the epoch
        before it, and a later fit is refused before it trains."""
        rate = self.lr(epoch, self.lr0)
        if not math.isfinite(rate):
            raise ValueError(f"the schedule {self!r} gives an lr of {rate} at its epoch {epoch}"
                             " (past the largest float); set net.schedule = None to drop it")
        return rate

    def _set_by_hand(self, lr):
        """Follow an lr set by hand (see :meth:`_follow`), or warn that the
        schedule cannot and sets its own after this epoch (once: ``_refused``
        keeps the rate until the epoch ends, and is not saved)."""
        if lr == getattr(self, "_refused", None) or self._follow(lr):
            return
        self._refused = lr
        warn(f"the optimizer's lr was set to {lr:g}, which the model's schedule {self!r} cannot"
             f" go on from at its epoch {self._epochs}; after this epoch it sets"
             f" {self.lr(self._epochs + 1, self.lr0):g}. fit(lr=...) ends the schedule;"
             " net.schedule = None drops it")

    def _follow(self, lr):
        """A continued schedule whose optimizer's lr was set by hand since it
        last set it: go on from that rate, as PyTorch's schedulers go on from
        a param group's lr changed by hand. The formulas are affine in lr0,
        ``a + b lr0`` at this epoch: lr0 becomes ``(lr - a) / b``; True if it
        did. Where the schedule has reached a rate no lr0 moves (b = 0:
        CosineAnnealing past T_max, a decay to 0), it keeps its own (False).
        An lr below a floor the schedule anneals toward (CosineAnnealing's
        eta_min) gives a negative lr0: its later rates rise from the set one
        toward the floor, as PyTorch's do."""
        a = self.lr(self._epochs, 0.0)
        b = self.lr(self._epochs, 1.0) - a
        lr0 = (lr - a) / b if 0 < b < math.inf else math.nan
        if math.isfinite(lr0) and (lr0 >= 0 or self._rises_to_floor):
            self.lr0 = lr0
            return True
        return False

    def to_json(self):
        """The schedule's class, parameters and state as a JSON string."""
        fields = {k: v for k, v in vars(self).items() if k not in ("_net", "_refused")}
        return json.dumps({"name": type(self).__name__, "fields": fields})

    def on_epoch_end(self, epoch, logs):
        # An lr a callback set during this fit (the schedule runs first, so
        # this epoch's) is followed as one set between fits is.
        if self._net.optimizer.lr != self.lr(self._epochs, self.lr0):
            self._set_by_hand(self._net.optimizer.lr)
        self.__dict__.pop("_refused", None)
        self.observe(logs)
        self._epochs += 1
        self._net.optimizer.lr = self._finite(self._epochs)
        return False

    def _start(self):
        """Subclasses: set up their own state if they have none yet."""

    def observe(self, logs):
        pass

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Constant(Schedule):
    """The optimizer's lr, unchanged: ``lr0`` every epoch (a schedule that
    only records the rate, and ends another one the model held)."""

    def __init__(self):
        self.lr0 = None

    def lr(self, epoch, lr0):
        return lr0


def _times_power(lr0, gamma, k):
    """``lr0 * gamma ** k``, inf where that overflows: Python's float power
    raises OverflowError where ``gamma ** k`` alone does, though the rate
    itself may be a float (a tiny lr0 times a huge power, or the power's
    inverse); there the rate is taken in logarithms (to about
    ``|k log(gamma)|`` ulps, a path only such rates take)."""
    try:
        return lr0 * gamma ** k
    except OverflowError:
        if lr0 == 0:
            return 0.0
        try:
            return math.copysign(math.exp(math.log(abs(lr0)) + k * math.log(gamma)), lr0)
        except OverflowError:
            return math.inf


class StepDecay(Schedule):
    """``lr0 * gamma ** (epoch // step_size)`` (PyTorch's StepLR)."""

    step_size, gamma = _Param(), _Param()

    def __init__(self, step_size, gamma=0.1):
        self.step_size = check_int(step_size, "step_size", 1)
        self.gamma = check_positive(gamma, "gamma")
        self.lr0 = None

    def lr(self, epoch, lr0):
        return _times_power(lr0, self.gamma, epoch // self.step_size)


class ExponentialDecay(Schedule):
    """``lr0 * gamma ** epoch`` (PyTorch's ExponentialLR)."""

    gamma = _Param()

    def __init__(self, gamma):
        self.gamma = check_positive(gamma, "gamma")
        self.lr0 = None

    def lr(self, epoch, lr0):
        return _times_power(lr0, self.gamma, epoch)


class CosineAnnealing(Schedule):
    """``eta_min + (lr0 - eta_min) (1 + cos(pi epoch / T_max)) / 2``: PyTorch's
    CosineAnnealingLR up to T_max, then constant at eta_min (PyTorch's
    follows the cosine back up to lr0 over the next T_max epochs)."""

    _rises_to_floor = True
    T_max, eta_min = _Param(), _Param()

    def __init__(self, T_max, eta_min=0.0):
        self.T_max = check_int(T_max, "T_max", 1)
        self.eta_min = check_nonnegative(eta_min, "eta_min")   # (inf gave an lr of NaN)
        self.lr0 = None

    def lr(self, epoch, lr0):
        # (a negative lr0, from an lr set by hand below eta_min: the rate at
        # that epoch is the set one, which may round a few ulps below 0)
        return max(self._rate(epoch, lr0), 0.0)

    def _rate(self, epoch, lr0):
        e = min(epoch, self.T_max)
        if e == 0:   # (lr0 itself, as PyTorch's first epoch: eta_min + (lr0 - eta_min) 2 / 2
            return lr0   # rounded off it for 17 % of pairs, 0.010000000000000002 for 0.01)
        # (pi e / T_max as PyTorch rounds it; a T_max past float64, 2**1024
        # and up, failed there with OverflowError: e / T_max is exact there)
        angle = math.pi * e / self.T_max if self.T_max < 2**1000 else math.pi * (e / self.T_max)
        span, cos = lr0 - self.eta_min, 1 + math.cos(angle)
        half = span * cos / 2
        if math.isinf(half) and math.isfinite(span):   # (an lr0 near the largest float)
            half = span / 2 * cos
        return self.eta_min + half


class InverseScaling(Schedule):
    """scikit-learn's ``invscaling``: ``lr0 / (t + 1) ** power_t`` with t the
    number of samples seen, updated at the end of every epoch."""

    power_t = _Param()

    def __init__(self, power_t=0.5):
        self.power_t = check_positive(power_t, "power_t")
        self.lr0 = None

    _STATE = {"_samples": "count"}

    def _start(self):
        if not hasattr(self, "_samples"):
            self._samples = 0

    def observe(self, logs):
        self._samples += self._net._samples_per_epoch

    def lr(self, epoch, lr0):
        seen = getattr(self, "_samples", 0)
        if seen == 0:
            return lr0
        try:
            return lr0 / (seen + 1) ** self.power_t
        except OverflowError:   # (the power alone; the rate, smaller, may be a float)
            return _times_power(lr0, seen + 1, -self.power_t)


class ReduceOnPlateau(Schedule):
    """Multiply lr by ``factor`` when ``monitor`` has not improved by more
    than ``min_delta`` (relative, as PyTorch's default) for ``patience``
    epochs; never below ``min_lr``, and not when the change would be ``eps``
    or less (PyTorch's ReduceLROnPlateau). ``mode`` says whether lower
    ("min") or higher ("max") is better; "auto" takes max for accuracy and
    r2, as :class:`fastbp.EarlyStopping` does."""

    _STATE = {"_best": "number", "_bad": "count", "_current": "lr"}
    monitor, factor, patience, min_delta, min_lr, eps, mode = (_Param() for _ in range(7))

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4, min_lr=0.0,
                 eps=1e-8, mode="auto"):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a metric name such as 'val_loss'; got {monitor!r}")
        min_delta, min_lr, eps = (check_nonnegative(v, name) for v, name in
                                  ((min_delta, "min_delta"), (min_lr, "min_lr"), (eps, "eps")))
        self.monitor = monitor
        self.factor = in_unit_interval(factor, open_low=True)
        if self.factor is None:
            raise ValueError(f"factor must be a number in (0, 1); got {factor!r}")
        self.patience = check_int(patience, "patience", 0)
        self.min_delta = float(min_delta)
        self.min_lr = float(min_lr)
        self.eps = float(eps)
        self.mode = check_choice(mode, "mode", ("auto", "min", "max"))
        self.lr0 = None

    def _higher_is_better(self):
        mode = getattr(self, "mode", "auto")  # (saved before mode: auto)
        return mode == "max" or (mode == "auto" and self.monitor.endswith(("accuracy", "r2")))

    def _start(self):
        if not hasattr(self, "_best"):  # a continuing schedule keeps its state
            self._best = -math.inf if self._higher_is_better() else math.inf
            self._bad, self._current = 0, None

    def observe(self, logs):
        if self.monitor not in logs:
            raise ValueError(f"ReduceOnPlateau monitors {self.monitor!r}, which training does not"
                             f" report; it reports {', '.join(sorted(logs))}")
        value = logs[self.monitor]
        if self._higher_is_better():
            improved = value > self._best * (1 + self.min_delta)
        else:
            improved = value < self._best * (1 - self.min_delta)
        if improved:
            self._best, self._bad = value, 0
        else:
            self._bad += 1
            if self._bad > self.patience:
                new = max(self._current * self.factor, self.min_lr)
                if self._current - new > getattr(self, "eps", 1e-8):  # (saved before eps: 1e-8)
                    self._current = new
                self._bad = 0

    def lr(self, epoch, lr0):
        if self._current is None:
            self._current = self._net.optimizer.lr
        return self._current

    def _follow(self, lr):
        # PyTorch's ReduceLROnPlateau reduces the group's lr as it finds it
        self._current = lr
        return True


NAMES = {cls.__name__: cls for cls in (Constant, StepDecay, ExponentialDecay, CosineAnnealing,
                                       InverseScaling, ReduceOnPlateau)}


def check_saveable(schedule):
    """Raise TypeError unless a model file can hold ``schedule``: one of the
    built-in classes, which :func:`from_json` rebuilds (a subclass of the
    user's own would be written and then refused at load)."""
    if schedule is not None and NAMES.get(type(schedule).__name__) is not type(schedule):
        raise TypeError(f"cannot save the model: its schedule {schedule!r} is a class of its own"
                        f" ({type(schedule).__name__}); model files hold the built-in schedules"
                        f" ({', '.join(NAMES)}), read back without running code: set"
                        " net.schedule = None before saving, or use a built-in one")


def _saved_state(value, kind, name):
    """A private field of a saved schedule, checked: a count (int >= 0), a
    number (not NaN; the plateau's best starts at +-inf) or an lr (None or
    a finite number >= 0: the optimizer's lr may be annealed to 0)."""
    if kind == "count":
        return check_int(value, name, 0)
    if kind == "lr" and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        raise ValueError(f"{name} must be a number; got {value!r}")
    return check_nonnegative(value, name) if kind == "lr" else float(value)


def from_json(text):
    """The schedule written by :meth:`Schedule.to_json` (built-in classes only),
    rebuilt through its constructor: a field out of range raises ValueError
    naming it, as the constructor would, not an error at the next fit."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("name") not in NAMES \
            or not isinstance(data.get("fields"), dict):
        raise ValueError(f"not a saved fastbp schedule: {text[:80]!r}")
    cls, fields = NAMES[data["name"]], dict(data["fields"])
    for key, value in fields.items():
        if not isinstance(key, str) or not isinstance(value, (int, float, str, type(None))):
            raise ValueError(f"a saved schedule's field {key!r} holds {value!r}")
    params = inspect.signature(cls.__init__).parameters
    takes = [k for k in params if k != "self"]
    try:
        missing = [k for k in takes if params[k].default is params[k].empty and k not in fields]
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}")
        schedule = cls(**{k: fields.pop(k) for k in takes if k in fields})
        lr0 = fields.pop("lr0", None)
        # (0: a schedule started where another annealed the lr to 0 saved it;
        # below 0: a cosine that went on from an lr set below its eta_min)
        schedule.lr0 = None if lr0 is None else (
            _saved_state(lr0, "float", "lr0") if cls._rises_to_floor
            else check_nonnegative(lr0, "lr0"))
        state = {"_epochs": "count"} | cls._STATE
        for key, value in fields.items():
            if key not in state:
                raise ValueError(f"unknown field {key!r}")
            setattr(schedule, key, _saved_state(value, state[key], key))
        held = [k for k in cls._STATE if k in fields]
        if held and len(held) < len(cls._STATE):
            # (a started schedule saves its whole state; _start fills in none
            # of it where some is there)
            raise ValueError("it holds " + ", ".join(held) + " without "
                             + ", ".join(k for k in cls._STATE if k not in fields))
        if schedule.lr0 is not None and schedule.lr0 < 0 and not (
                math.isfinite(schedule.lr0) and hasattr(schedule, "_epochs")
                and schedule._rate(schedule._epochs, schedule.lr0)
                >= -1e-12 * (schedule.eta_min - schedule.lr0)):   # (rounding of a set 0)
            raise ValueError(f"lr0 {schedule.lr0!r} gives a negative lr at its epoch")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a saved {cls.__name__} schedule is not valid: {exc}") from None
    return schedule
