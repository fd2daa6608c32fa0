"""Optimizers over the flat buffer: each step is one compiled loop.

Every optimizer keeps its state (momentum, Adam's m and v, RMSprop's square
average) in a ``(2, n_params)`` array with the layout of ``params``, so a
step, a checkpoint or a restore is one pass over a few flat arrays. The
semantics are PyTorch's ``torch.optim`` (SGD with momentum, dampening and
Nesterov, Adam, AdamW, RMSprop), with the same defaults but SGD's learning
rate (0.01 here; PyTorch 2.13's is 0.001).

    opt = fastbp.Adam(lr=1e-3)
    opt.step(net.params, net.gradient(X, y))    # in place

The kernel :func:`optimizer_step` is public for use from Numba code.
"""
import numbers

import numpy as np

from ._jit import jit
from ._static import array_guard, same_grads, same_state, specialising
from ._validate import check_bool, check_nonnegative, check_positive, in_unit_interval

# Codes and the layout of the hyper-parameter vector each kernel call reads.
SGD_CODE, ADAM_CODE, ADAMW_CODE, RMSPROP_CODE = 0, 1, 2, 3
# scikit-learn's MLP optimizers (sklearn/neural_network/_stochastic_optimizers.py),
# used by fastbp.sklearn: SGD with its velocity form of momentum and Nesterov,
# Adam with the bias correction folded into the step size (eps unscaled).
SKL_SGD_CODE, SKL_ADAM_CODE = 4, 5
LR, MOMENTUM, DAMPENING, NESTEROV, BETA1, BETA2, EPS, WEIGHT_DECAY, ALPHA = range(9)
N_HYPER = 9


@jit
def is_plain_sgd(code, hyper):
    """True for SGD without momentum or weight decay: the one update that
    training folds into the backward pass (no gradient buffer, no state)."""
    return code == SGD_CODE and hyper[MOMENTUM] == 0 and hyper[WEIGHT_DECAY] == 0


@jit
def known_code(code):
    """Whether ``code`` is one of the optimizers' codes (SGD_CODE .. SKL_ADAM_CODE)."""
    return SGD_CODE <= code <= SKL_ADAM_CODE


_a_state = array_guard("optimizer step: state must be an optimizer's state, a 2-D array"
                       " (2, n_params), or (2, 0) for plain SGD", (2,))
_a_hyper = array_guard("optimizer step: hyper must be an optimizer's hyper-parameters"
                       " (optimizer.hyper), a 1-D float64 NumPy array", (1,), ("float64",))


@jit(inline="always")
def check_step(params, grads, state, hyper, code, t):
    """Raise ValueError unless the arrays of an optimizer step fit: O(1)."""
    _a_state(state)   # (a 1-D one failed in Numba's typing: "tuple index out of range")
    _a_hyper(hyper)
    # (first: an unknown code with an empty state blamed the state; known_code's
    # test written out, so that the kernels compile no function for it)
    if code < SGD_CODE or code > SKL_ADAM_CODE:
        raise ValueError("optimizer step: unknown optimizer code")
    if grads.size != params.size:
        raise ValueError("optimizer step: grads must have the length of params")
    if hyper.size < N_HYPER:
        raise ValueError("optimizer step: hyper must hold N_HYPER values (an optimizer's hyper)")
    if t < 1:
        raise ValueError("optimizer step: t, the number of this step, must be >= 1")
    if ((state.shape[0] != 2 or state.shape[1] != params.size)
            and not (code == SGD_CODE and hyper[MOMENTUM] == 0)):
        raise ValueError("optimizer step: state must be (2, params.size)")


@jit
def optimizer_step(params, grads, state, hyper, code, t):
    """One update of ``params`` in place from ``grads``, all of length n.

    state is (2, n), zero before the first step; hyper is float64 (N_HYPER,);
    t is the 1-based number of this step. ``grads`` is not modified.
    Checked, in O(1): the lengths (plain SGD without momentum reads no
    state, which may then be empty), hyper's size and t >= 1; raises
    ValueError before writing anything.
    """
    same_grads(params, grads)
    same_state(params, state)   # (even empty, for plain SGD)
    check_step(params, grads, state, hyper, code, t)
    s0 = state[0]
    s1 = state[1]
    one = params.dtype.type(1.0)
    lr = params.dtype.type(hyper[LR])
    wd = params.dtype.type(hyper[WEIGHT_DECAY])
    mu = params.dtype.type(hyper[MOMENTUM])
    eps = params.dtype.type(hyper[EPS])
    if code == SGD_CODE:
        damp = params.dtype.type(1.0 - hyper[DAMPENING])
        nesterov = hyper[NESTEROV] != 0
        if mu == 0:  # no buffer: the state is not read (never written, it may be unmapped)
            for i in range(params.size):
                params[i] -= lr * (grads[i] + wd * params[i])
        else:
            for i in range(params.size):
                g = grads[i] + wd * params[i]
                # torch: the first step copies g into the buffer, undamped.
                s0[i] = g if t == 1 else mu * s0[i] + damp * g
                g = g + mu * s0[i] if nesterov else s0[i]
                params[i] -= lr * g
    elif code == ADAM_CODE or code == ADAMW_CODE:
        b1 = params.dtype.type(hyper[BETA1])
        b2 = params.dtype.type(hyper[BETA2])
        a1 = params.dtype.type(1.0 - hyper[BETA1])  # in float64, rounded once, as torch:
        a2 = params.dtype.type(1.0 - hyper[BETA2])  # 1 - float32(0.9999) is 1.7e-4 off
        # Bias corrections in float64, then folded into two scalars.
        c1 = 1.0 - hyper[BETA1] ** t
        c2 = 1.0 - hyper[BETA2] ** t
        step = params.dtype.type(hyper[LR] / c1)
        root_c2 = params.dtype.type(np.sqrt(c2))
        decay = params.dtype.type(1.0 - hyper[LR] * hyper[WEIGHT_DECAY]) if code == ADAMW_CODE else one
        l2 = wd if code == ADAM_CODE else params.dtype.type(0.0)
        for i in range(params.size):
            g = grads[i] + l2 * params[i]
            s0[i] = b1 * s0[i] + a1 * g
            s1[i] = b2 * s1[i] + a2 * g * g
            params[i] = params[i] * decay - step * s0[i] / (np.sqrt(s1[i]) / root_c2 + eps)
    elif code == SKL_SGD_CODE or code == SKL_ADAM_CODE:
        _sklearn_update(params, grads, s0, s1, hyper, code, t, 1.0, 0.0)
    elif code == RMSPROP_CODE:
        alpha = params.dtype.type(hyper[ALPHA])
        rest = params.dtype.type(1.0 - hyper[ALPHA])
        for i in range(params.size):
            g = grads[i] + wd * params[i]
            s0[i] = alpha * s0[i] + rest * g * g
            # With momentum 0 the buffer is just this step's g / avg.
            s1[i] = mu * s1[i] + g / (np.sqrt(s0[i]) + eps)
            params[i] -= lr * s1[i]
    else:  # (a literal code, as the kernels pass, compiles only its own branch)
        raise ValueError("unknown optimizer code")


# The epoch kernels' twin: a literal code compiles that optimizer only.
_optimizer_step = specialising(optimizer_step, "code",
                               "optimizer_step for the kernels (see fastbp._static).")


@jit
def sklearn_update(params, grads, state, hyper, code, t, lo, hi, scale, l2):
    """scikit-learn's SGD or Adam step (SKL_SGD_CODE, SKL_ADAM_CODE) on
    ``params[lo:hi]`` from the gradient ``scale * grads + l2 * params``.

    scale and l2 fold a gradient's constant factor and the L2 term's
    gradient (``alpha / n`` on weights, 0 on biases) into the update's one
    pass (:mod:`fastbp._sklearn_kernels`); ``grads`` is not modified.
    Arguments otherwise as :func:`optimizer_step`.
    """
    # Views indexed from 0: LLVM then knows no index is negative (no
    # wraparound select per element) and vectorises the loop.
    _sklearn_update(params[lo:hi], grads[lo:hi], state[0, lo:hi], state[1, lo:hi], hyper, code, t,
                    scale, l2)


@jit(inline="always")  # inlined: optimizer_step compiles no function of its own for it
def _sklearn_update(p, grads, s0, s1, hyper, code, t, scale, l2):
    lr = p.dtype.type(hyper[LR])
    mu = p.dtype.type(hyper[MOMENTUM])
    eps = p.dtype.type(hyper[EPS])
    k = p.dtype.type(scale)
    c = p.dtype.type(l2)
    if code == SKL_SGD_CODE:
        # v = mu v - lr g; the step is v, or mu v - lr g again with Nesterov.
        nesterov = hyper[NESTEROV] != 0
        for i in range(p.size):
            g = grads[i] * k + c * p[i]
            s0[i] = mu * s0[i] - lr * g
            p[i] += mu * s0[i] - lr * g if nesterov else s0[i]
    else:
        b1 = p.dtype.type(hyper[BETA1])
        b2 = p.dtype.type(hyper[BETA2])
        a1 = p.dtype.type(1.0 - hyper[BETA1])  # NumPy's (1 - beta_1) * grad: a double, rounded once
        a2 = p.dtype.type(1.0 - hyper[BETA2])
        step = p.dtype.type(hyper[LR] * np.sqrt(1.0 - hyper[BETA2] ** t) / (1.0 - hyper[BETA1] ** t))
        for i in range(p.size):
            g = grads[i] * k + c * p[i]
            s0[i] = b1 * s0[i] + a1 * g
            s1[i] = b2 * s1[i] + a2 * (g * g)
            p[i] += -step * s0[i] / (np.sqrt(s1[i]) + eps)


NAMES = {}  # filled below: "sgd", "adam", "adamw", "rmsprop"


class _Fixed:
    """A hyper-parameter other than lr, read from ``hyper``: fixed when the
    optimizer is made (torch lets a param group's change between steps;
    here only lr may, and assigning another is refused rather than ignored)."""

    def __init__(self, *indices, kind=float):
        self.indices, self.kind = indices, kind

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        values = tuple(self.kind(obj.hyper[i]) for i in self.indices)
        return values if len(values) > 1 else values[0]

    def __set__(self, obj, value):
        cls = type(obj).__name__
        raise AttributeError(f"{cls}.{self.name} is fixed when the optimizer is made (only lr can"
                             f" change between steps): make a new one, {cls}({self.name}=...),"
                             " which starts with a fresh state")


class Optimizer:
    """Base class: hyper-parameters, a step count and the flat state."""
    code = None

    def __init__(self, lr, weight_decay):
        self.hyper = np.zeros(N_HYPER)
        self.hyper[LR] = check_positive(lr, "lr")
        self.hyper[WEIGHT_DECAY] = check_nonnegative(weight_decay, "weight_decay")
        self.t = 0
        self.state = None

    @property
    def keeps_state(self):
        """Whether its steps carry a state from one to the next (moments, a
        mean of squares, a momentum buffer): after ``t > 0`` steps it holds
        one. (Plain SGD's steps carry none.)"""
        return self.code not in (SGD_CODE, SKL_SGD_CODE) or bool(self.hyper[MOMENTUM] > 0)

    def __setstate__(self, state):
        # Arrays of its own and writable, as a new optimizer's: unpickled
        # (joblib's mmap_mode="r" gives read-only maps), the kernels write them.
        for key in ("hyper", "state"):
            if isinstance(state.get(key), np.ndarray):
                state[key] = np.array(state[key], copy=True)
        self.__dict__.update(state)

    @property
    def lr(self):
        return float(self.hyper[LR])

    @lr.setter
    def lr(self, value):
        # 0 is allowed here (a schedule may anneal to it), not in the constructor;
        # a real 0 only (np.False_, 0j and np.array([0.0]) were taken as one).
        if (isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
                and value == 0):   # (the type first: an array's == is no truth value)
            self.hyper[LR] = 0.0
        else:
            self.hyper[LR] = check_positive(value, "lr")

    @property
    def fused(self):
        """True when the update is plain SGD, which fit folds into backprop."""
        return bool(is_plain_sgd.py_func(self.code, self.hyper))  # same rule, no dispatch

    def check_state(self, params):
        """Raise ValueError unless this optimizer can update ``params``."""
        hyper = self.hyper
        if not (isinstance(hyper, np.ndarray) and hyper.shape == (N_HYPER,)
                and hyper.dtype == np.float64):
            # (a hyper set by hand to np.zeros(0) failed with IndexError)
            raise ValueError(f"this optimizer's hyper must be its {N_HYPER} float64"
                             f" hyper-parameters (optimizer.hyper); got {hyper!r}")
        state = self.state
        if state is None:
            return
        if not isinstance(state, np.ndarray) or state.ndim != 2 or state.shape[0] != 2:
            # (a 1-D state failed with IndexError building the message below)
            raise ValueError(f"this optimizer's state must be a (2, n_params) array; got"
                             f" {getattr(state, 'shape', type(state).__name__)}")
        if state.shape != (2, params.size) or state.dtype != params.dtype:
            raise ValueError(f"this optimizer's state is for {state.shape[1]} {state.dtype}"
                             f" parameters; got {params.size} {params.dtype}")

    def ensure_state(self, params):
        """The state for ``params``, made (zeros) on first use; raises
        ValueError when it was made for parameters of another size or dtype
        (the kernels index it unchecked)."""
        self.check_state(params)
        if self.state is None:
            self.state = np.zeros((2, params.size), dtype=params.dtype)
        return self.state

    def step(self, params, grads):
        """Update the flat ``params`` in place from ``grads`` (same shape and dtype)."""
        if not (isinstance(params, np.ndarray) and isinstance(grads, np.ndarray)):
            raise TypeError("params and grads must be NumPy arrays")
        if params.ndim != 1 or grads.shape != params.shape or grads.dtype != params.dtype \
                or params.dtype not in (np.float32, np.float64) or not params.flags.c_contiguous \
                or not grads.flags.c_contiguous:
            raise ValueError("params and grads must be 1-D C-contiguous float32/float64 arrays of one"
                             f" shape and dtype; got {params.dtype}{params.shape} and"
                             f" {grads.dtype}{grads.shape}")
        if not params.flags.writeable:
            # (the kernel would fail to type a write, after t and the state moved)
            raise ValueError("params must be writable: step updates it in place")
        self.check_state(params)
        self.ensure_state(params)
        self.t += 1
        optimizer_step(params, grads, self.state, self.hyper, self.code, self.t)

    def _betas(self, betas):
        try:
            b = tuple(betas)
        except TypeError:
            raise TypeError(f"betas must be two numbers in [0, 1); got {betas!r}") from None
        stored = [in_unit_interval(x) for x in b]
        if len(b) != 2 or None in stored:
            raise ValueError(f"betas must be two numbers in [0, 1); got {betas!r}")
        self.hyper[BETA1], self.hyper[BETA2] = stored

    def _eps(self, eps):
        self.hyper[EPS] = check_positive(eps, "eps")

    def _fraction(self, value, name, index):
        stored = in_unit_interval(value)
        if stored is None:
            raise ValueError(f"{name} must be a number in [0, 1); got {value!r}")
        self.hyper[index] = stored

    def __repr__(self):
        return f"{type(self).__name__}(lr={self.lr:g}, t={self.t})"


class SGD(Optimizer):
    """``torch.optim.SGD``: momentum (with dampening), Nesterov, L2 weight decay."""
    code = SGD_CODE
    momentum, dampening = _Fixed(MOMENTUM), _Fixed(DAMPENING)
    nesterov, weight_decay = _Fixed(NESTEROV, kind=bool), _Fixed(WEIGHT_DECAY)

    def __init__(self, lr=0.01, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self._fraction(momentum, "momentum", MOMENTUM)
        self._fraction(dampening, "dampening", DAMPENING)
        # (as stored: a momentum of Fraction(1, 10**400) is 0.0)
        if check_bool(nesterov, "nesterov") and (self.hyper[MOMENTUM] == 0
                                                 or self.hyper[DAMPENING] != 0):
            raise ValueError("nesterov needs momentum > 0 and dampening = 0")
        self.hyper[NESTEROV] = float(nesterov)


class Adam(Optimizer):
    """``torch.optim.Adam``: bias-corrected moments; weight decay as an L2 term."""
    code = ADAM_CODE
    betas, eps, weight_decay = _Fixed(BETA1, BETA2), _Fixed(EPS), _Fixed(WEIGHT_DECAY)

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr, weight_decay)
        self._betas(betas)
        self._eps(eps)


class AdamW(Adam):
    """``torch.optim.AdamW``: Adam with decoupled weight decay ``p *= 1 - lr wd``."""
    code = ADAMW_CODE

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(lr, betas, eps, weight_decay)


class RMSprop(Optimizer):
    """``torch.optim.RMSprop`` (not centred): a running mean of squared gradients."""
    code = RMSPROP_CODE
    alpha, eps, momentum = _Fixed(ALPHA), _Fixed(EPS), _Fixed(MOMENTUM)
    weight_decay = _Fixed(WEIGHT_DECAY)

    def __init__(self, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0):
        super().__init__(lr, weight_decay)
        self._fraction(alpha, "alpha", ALPHA)
        self._eps(eps)
        self._fraction(momentum, "momentum", MOMENTUM)


NAMES.update(sgd=SGD, adam=Adam, adamw=AdamW, rmsprop=RMSprop)


MAX_LS = 2**31 - 1   # the largest max_ls SciPy's L-BFGS-B takes (a C int)


class LBFGS:
    """Full-batch L-BFGS through ``scipy.optimize.minimize(method="L-BFGS-B")``,
    for small data sets (where scikit-learn's MLP recommends its ``"lbfgs"``
    solver; its default is Adam).

    ``fit(..., optimizer=fastbp.LBFGS())`` runs up to ``epochs`` iterations;
    each objective evaluation is one full-batch forward and backward pass in
    the kernels, reading SciPy's iterate as the parameter buffer itself (in
    float64; a float32 model converts it once per evaluation). ``tol`` is
    SciPy's ``gtol``/``ftol``.

    After a fit, ``result`` holds SciPy's ``OptimizeResult`` of that fit
    (``nit``, ``status``, ``message``, ...; a callback's stop included); it
    is None before the first fit, after a fit of 0 epochs and after one
    interrupted by Ctrl-C (SciPy returned nothing), and is not saved.
    """
    fused = False

    def __init__(self, tol=1e-7, max_ls=20):
        self.tol = check_positive(tol, "tol")
        if (isinstance(max_ls, bool) or not isinstance(max_ls, numbers.Integral) or max_ls < 1
                or max_ls > MAX_LS):
            # (SciPy's L-BFGS-B takes it as a C int: 2**31 was accepted here,
            # then failed inside SciPy with OverflowError after the fit began)
            raise ValueError(f"max_ls must be an integer from 1 to 2**31 - 1 (SciPy's L-BFGS-B"
                             f" takes a C int); got {max_ls!r}")
        self.max_ls = int(max_ls)   # (np.int64(5) was refused as no integer)
        self.t = 0
        self.state = None
        self.result = None

    @property
    def lr(self):
        """1.0: L-BFGS takes no learning rate (its line search chooses each
        step); kept so that logs can read one."""
        return 1.0

    @lr.setter
    def lr(self, value):
        # (a callback's net.optimizer.lr = 1e-6 was ignored, and recorded in the history)
        if value != 1.0:
            raise ValueError(f"L-BFGS takes no learning rate (its line search chooses each"
                             f" step); got lr={value!r}")

    def check_state(self, params):
        pass

    def __repr__(self):
        return f"LBFGS(tol={self.tol:g}, t={self.t})"


NAMES["lbfgs"] = LBFGS


class SklearnSGD(Optimizer):
    """scikit-learn's MLP SGD: ``v = momentum v - lr g``, the step ``v`` (or,
    with Nesterov, ``momentum v - lr g``); no weight decay (the MLP's
    ``alpha`` is in the gradient)."""
    code = SKL_SGD_CODE
    momentum, nesterov = _Fixed(MOMENTUM), _Fixed(NESTEROV, kind=bool)

    def __init__(self, lr=0.1, momentum=0.9, nesterov=True):
        super().__init__(lr, 0.0)
        # (NaN and inf were taken, and the fit diverged blaming the lr)
        self.hyper[MOMENTUM] = check_nonnegative(momentum, "momentum")
        self.hyper[NESTEROV] = float(check_bool(nesterov, "nesterov"))

    @property
    def learning_rate(self):
        """The current rate, by scikit-learn's name (its ``_optimizer.learning_rate``)."""
        return self.lr


class SklearnAdam(Optimizer):
    """scikit-learn's MLP Adam: the bias correction folded into the step size
    ``lr sqrt(1 - beta2^t) / (1 - beta1^t)``, ``eps`` added to ``sqrt(v)``."""
    code = SKL_ADAM_CODE
    betas, eps = _Fixed(BETA1, BETA2), _Fixed(EPS)

    def __init__(self, lr=0.001, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(lr, 0.0)
        self._betas(betas)
        self._eps(eps)

    @property
    def learning_rate(self):
        """scikit-learn's ``_optimizer.learning_rate``: the last step's size,
        ``lr sqrt(1 - beta2^t) / (1 - beta1^t)`` (``lr`` before any step)."""
        t, h = self.t, self.hyper
        if t == 0:
            return self.lr
        return float(h[LR] * np.sqrt(1 - h[BETA2] ** t) / (1 - h[BETA1] ** t))


# The optimizers a model file names (fastbp.io): each by the name of the
# class whose code it runs, so that a subclass of one saves as that one.
FILE_NAMES = {**NAMES, "sklearnsgd": SklearnSGD, "sklearnadam": SklearnAdam}


def file_name(opt):
    """The name a model file gives ``opt``: that of the fastbp optimizer it
    runs as (its update is its ``code`` and hyper-parameters); TypeError for
    one that is none of them."""
    for name, cls in FILE_NAMES.items():
        if isinstance(opt, cls) and getattr(opt, "code", None) == getattr(cls, "code", None):
            return name
    raise TypeError(f"a model file can hold fastbp's optimizers ({', '.join(FILE_NAMES)}) and their"
                    f" subclasses; net.optimizer is a {type(opt).__name__}")
