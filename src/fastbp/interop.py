"""Weights in and out: PyTorch ``nn.Sequential`` and scikit-learn's
``MLPClassifier`` / ``MLPRegressor``.

    seq = net.to_torch()                                   # Linear + activation modules
    net = fastbp.MLP.from_torch(seq, output="softmax")     # back, bitwise
    net = fastbp.MLP.from_sklearn(fitted_sklearn_mlp)      # same probabilities
    est = fastbp.sklearn.MLPClassifier.from_sklearn(fitted_sklearn_mlp)
    sk = est.to_sklearn()                                  # a fitted scikit-learn estimator

``torch`` and ``sklearn`` are imported inside these functions only; neither
is needed by the rest of fastbp. Layouts: fastbp, PyTorch's ``Linear.weight``
and ONNX's ``Gemm`` with ``transB=1`` all hold W as ``(n_out, n_in)``;
scikit-learn's ``coefs_[l]`` is its transpose ``(n_in, n_out)``.
"""
import numpy as np

from ._validate import broadcasts_to


# fastbp hidden activation -> the torch.nn module class name and its arguments
TORCH_ACTIVATIONS = {"sigmoid": ("Sigmoid", {}), "tanh": ("Tanh", {}), "relu": ("ReLU", {}),
                     "leaky_relu": ("LeakyReLU", {"negative_slope": 0.01}),
                     "elu": ("ELU", {"alpha": 1.0}),
                     # torch takes x itself above threshold (20 by default: 2e-9
                     # apart in float64); from 40 on the two agree to rounding
                     "softplus": ("Softplus", {"threshold": 40.0})}
TORCH_DTYPES = ("float32", "float64")
# scikit-learn's activation names <-> fastbp's
SKLEARN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
SKLEARN_OUTPUTS = {"softmax": "softmax", "logistic": "sigmoid", "identity": "identity"}


def _torch(what):
    try:
        import torch
    except ImportError:
        raise ImportError(f"{what} needs PyTorch, which is not installed: pip install torch"
                          " (https://pytorch.org for the build that fits your machine)") from None
    return torch


# ------------------------------------------------------------------ PyTorch
def _folded(net):
    """Per-layer (W, b) in float64 with the input standardisation folded into
    the first layer (W / scale, b - W / scale @ mean) and the target scaling
    into the last (scale * W, scale * b + mean); unchanged otherwise."""
    Ws = [np.array(W, dtype=np.float64) for W in net.weights]
    bs = [np.array(b, dtype=np.float64) for b in net.biases]
    given = [np.isfinite(W) for W in Ws], [np.isfinite(b) for b in bs]

    def check(what, l):
        # (W / scale past the dtype's range: inf weights answered other
        # probabilities, silently; weights not finite already are the model's)
        with np.errstate(over="ignore"):
            bad = any((~np.isfinite(a.astype(net.dtype)) & ok).any()
                      for a, ok in ((Ws[l], given[0][l]), (bs[l], given[1][l])))
        if bad:
            raise ValueError(f"to_torch: folding the model's {what} scaling into layer {l}"
                             f" gives weights past {net.dtype.name}'s range; predict scales"
                             " in float64 first, as to_onnx's graph does: use to_onnx")

    if net.input_mean is not None:
        Ws[0] = Ws[0] / net.input_scale
        bs[0] = bs[0] - Ws[0] @ net.input_mean
        check("input", 0)
    if net.target_mean is not None:
        Ws[-1] = Ws[-1] * net.target_scale[:, None]
        bs[-1] = bs[-1] * net.target_scale + net.target_mean
        check("target", len(Ws) - 1)
    return Ws, bs


def to_torch(net):
    """See :meth:`fastbp.MLP.to_torch`."""
    torch = _torch("MLP.to_torch")
    if net.categories:
        raise ValueError(f"to_torch: this model encodes text columns {sorted(net.categories)}"
                         " (net.categories) as one-hot inputs, which a torch module cannot take"
                         " from raw rows; net.to_onnx() encodes them in its graph")
    dtype = getattr(torch, net.dtype.name)
    if net.input_mean is None and net.target_mean is None:  # exact copies
        Ws, bs = net.weights, net.biases
    else:
        Ws, bs = _folded(net)
    modules = []
    for l, (W, b) in enumerate(zip(Ws, bs)):
        # (not initialised: torch's own random draw would move the caller's
        # seeded stream, for weights overwritten at once)
        linear = torch.nn.utils.skip_init(torch.nn.Linear, W.shape[1], W.shape[0], dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.array(W, dtype=net.dtype)))
            linear.bias.copy_(torch.from_numpy(np.array(b, dtype=net.dtype)))
        modules.append(linear)
        if l < len(net.activations) and net.activations[l] != "identity":
            name, kwargs = TORCH_ACTIVATIONS[net.activations[l]]
            modules.append(getattr(torch.nn, name)(**kwargs))
        if l < len(net.dropout) and net.dropout[l] > 0:  # after the activation, as fastbp's
            modules.append(torch.nn.Dropout(net.dropout[l]))
    # In inference mode, as predict: .train() turns the dropout on.
    return torch.nn.Sequential(*modules).eval()


def _flatten(torch, module):
    if isinstance(module, torch.nn.Sequential):
        _check_computes_as_torchs(module, type(module).__name__)
        return [m for child in module for m in _flatten(torch, child)]
    return [module]


def _check_computes_as_torchs(m, where):
    """Raise TypeError if module ``m`` computes other than the ``torch.nn``
    class it derives from: a subclass with a ``forward``, ``__call__`` or
    ``_call_impl`` of its own (a residual Sequential, a scaled Linear), a
    ``forward`` replaced on the module itself (as accelerate's hooks do), a
    TorchScript module, forward hooks on the module or on every module.
    from_torch reads only weights and module kinds, so such a module was
    read as its base class, into a network computing something else."""
    import inspect

    import torch
    from torch.nn.modules import module as base_module
    from torch.nn.modules.lazy import LazyModuleMixin
    cls = type(m)
    # (torch.nn.utils.parametrize makes a class Parametrized<Cls> of the
    # module's own: the base is past it, and past the user's own classes)
    base = next(c for c in cls.__mro__ if c.__module__.startswith("torch.nn")
                and c.__module__ != "torch.nn.utils.parametrize")
    # (static lookups: a TorchScript class's forward is a descriptor that
    # fails when read from the class)
    own = [name for name in ("forward", "__call__", "_call_impl")
           if inspect.getattr_static(cls, name) is not inspect.getattr_static(base, name)]
    if isinstance(m, torch.jit.ScriptModule):
        raise TypeError(f"from_torch cannot read {where}: a TorchScript module, whose code"
                        " fastbp cannot follow; give the torch.nn module it was made from")
    if own:
        raise TypeError(f"from_torch cannot read {where}: {cls.__name__} overrides"
                        f" torch.nn.{base.__name__}'s {own[0]}, which fastbp cannot follow;"
                        f" use torch.nn's own modules")
    if "forward" in vars(m):
        raise TypeError(f"from_torch cannot read {where}: its forward is replaced on the module"
                        " itself, which fastbp cannot follow")
    lazy = isinstance(m, LazyModuleMixin)   # (its own hook: an unrun one is refused below)
    if getattr(m, "_forward_hooks", None) or (getattr(m, "_forward_pre_hooks", None)
                                               and not lazy):
        raise TypeError(f"from_torch cannot read {where}: it has forward hooks, which may"
                        " change what it computes; remove them first")
    if getattr(base_module, "_global_forward_hooks", None) \
            or getattr(base_module, "_global_forward_pre_hooks", None):
        raise TypeError(f"from_torch cannot read {where}: forward hooks are registered on every"
                        " module (torch.nn.modules.module.register_module_forward_hook), which"
                        " may change what it computes; remove them first")


def _torch_activation(torch, m):
    """The fastbp name of an activation module, None if it is not one; a
    supported module with other settings is a ValueError naming them."""
    nn = torch.nn
    if isinstance(m, nn.LeakyReLU) and m.negative_slope != 0.01:
        raise ValueError(f"fastbp's leaky_relu has slope 0.01; got {m!r}")
    if isinstance(m, nn.ELU) and m.alpha != 1.0:
        raise ValueError(f"fastbp's elu has alpha 1; got {m!r}")
    if isinstance(m, nn.Softplus) and (m.beta != 1 or not m.threshold >= 20):
        raise ValueError(f"fastbp's softplus is log(1 + exp(x)), torch.nn.Softplus with beta=1"
                         f" and a threshold of 20 or more (above it torch takes x itself: at the"
                         f" default 20, up to 2.1e-9 apart in float64); got {m!r}")
    for name, (cls, _) in TORCH_ACTIVATIONS.items():
        if type(m) is getattr(nn, cls):
            return name
    return None


def from_torch(cls, module, output="softmax", **kwargs):
    """See :meth:`fastbp.MLP.from_torch`."""
    torch = _torch("MLP.from_torch")
    nn = torch.nn
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Sequential (or Linear); got {module!r}")
    modules = _flatten(torch, module)
    supported = ("Linear, Tanh, Sigmoid, ReLU, LeakyReLU(0.01), ELU(1), Softplus(), Identity,"
                 " Dropout, and a final Softmax(dim=1) or Sigmoid")
    linears, after, rates = [], [], []  # per Linear: the activation after it, its dropout
    early = []  # per Linear: whether its Dropout comes before its activation
    final = None  # a trailing Softmax / Sigmoid: the output function
    # (a trailing Identity computes nothing: a Softmax before it is still the
    # output function, where it was read as a hidden activation and refused)
    end = max((i for i, m in enumerate(modules) if not isinstance(m, nn.Identity)), default=-1)
    for i, m in enumerate(modules):
        where = f"module {i} ({type(m).__name__})"
        last = i == end
        _check_computes_as_torchs(m, where)
        if isinstance(m, nn.Linear):
            linears.append(m)
            after.append(None)
            rates.append(0.0)
            early.append(False)
        elif not linears and not isinstance(m, nn.Identity):
            # (a module fastbp cannot read at all, Flatten or BatchNorm1d,
            # is the docstring's TypeError wherever it stands)
            if not (type(m) in (nn.Dropout, nn.Sigmoid) or isinstance(m, nn.Softmax)
                    or _torch_activation(torch, m) is not None):
                raise TypeError(f"from_torch cannot read {where}: {m!r}; fastbp reads a"
                                f" Sequential of {supported}")
            raise ValueError(f"from_torch needs the Sequential to start with a Linear layer;"
                             f" {where} comes first: {m!r}")
        elif isinstance(m, nn.Identity):
            continue
        elif isinstance(m, nn.Dropout) and type(m) is nn.Dropout:
            # fastbp drops a layer's outputs after its activation, one rate
            # a layer: a second Dropout replaced the first unseen.
            if rates[-1]:
                raise ValueError(f"{where}: a second Dropout on one layer; fastbp has one rate"
                                 f" per layer (two of p and q drop as one of"
                                 f" 1 - (1 - p)(1 - q))")
            rates[-1], early[-1] = float(m.p), after[-1] is None
        elif last and (isinstance(m, nn.Softmax) or type(m) is nn.Sigmoid) and after[-1] is None:
            if isinstance(m, nn.Softmax) and m.dim not in (1, -1):
                raise ValueError(f"a final Softmax must normalise the features (dim=1 or -1);"
                                 f" got {m!r}")
            final = "softmax" if isinstance(m, nn.Softmax) else "sigmoid"
        else:
            name = _torch_activation(torch, m)
            if name is None:
                raise TypeError(f"from_torch cannot read {where}: {m!r}; fastbp reads a Sequential"
                                f" of {supported}")
            if after[-1] is not None:
                raise ValueError(f"{where} follows another activation ({after[-1]}); fastbp"
                                 " networks have one activation per layer")
            if early[-1] and rates[-1] and name not in ("relu", "leaky_relu", "identity"):
                # (ReLU and leaky ReLU commute with the dropout's mask and scaling)
                raise ValueError(f"{where} comes after a Dropout: fastbp drops a layer's"
                                 f" outputs after its activation, and a {name} of inputs"
                                 " dropped and scaled by 1 / (1 - p) is not the same dropout"
                                 " of its outputs (only ReLU and leaky ReLU commute with it);"
                                 " put the Dropout after the activation")
            after[-1] = name
    if not linears:
        raise ValueError("from_torch needs at least one Linear layer; the module has none")
    if after[-1] is not None:
        raise ValueError(f"the last Linear layer is followed by {after[-1]!r}; the last layer of"
                         " a fastbp network ends in the output function (softmax, sigmoid or"
                         " identity), set by output=")
    if final is not None and final != output:
        raise ValueError(f"the module ends in {final.capitalize()}, but output={output!r};"
                         f" pass output={final!r}")
    if rates[-1]:
        raise ValueError("a Dropout after the last Linear layer has no fastbp counterpart")
    for k, lin in enumerate(linears):
        if any(isinstance(p, nn.parameter.UninitializedParameter) for p in lin.parameters()):
            raise ValueError(f"Linear layer {k} is a {type(lin).__name__} that has not run yet:"
                             " its sizes are not known; run the module on one batch first")
    # Sizes as torch computes them, from the weights (a hand-pruned Linear
    # keeps its old in_features / out_features: read from those, one kept
    # unit's weights were broadcast over the old width, the network's
    # outputs other than the module's)
    sizes = []
    for k, lin in enumerate(linears):
        shape = tuple(lin.weight.shape)
        if len(shape) != 2:
            raise ValueError(f"Linear layer {k}'s weight has shape {shape}; a Linear's weight is"
                             f" (out_features, in_features)")
        if not sizes:
            sizes.append(shape[1])
        if shape[1] != sizes[-1]:
            raise ValueError(f"Linear layer {k} takes {shape[1]} features, but the layer before"
                             f" gives {sizes[-1]} (its weight has shape {shape})")
        bias = None if lin.bias is None else tuple(lin.bias.shape)
        # (torch adds a bias that broadcasts to the layer's outputs: (), (1,), (1, out))
        if bias is not None and not broadcasts_to(bias, (shape[0],)):
            raise ValueError(f"Linear layer {k}'s bias has shape {bias}, its weight {shape}:"
                             f" the bias must be of shape ({shape[0]},)")
        sizes.append(shape[0])
    dtypes = {str(p.dtype).replace("torch.", "") for lin in linears for p in
              (lin.weight, lin.bias) if p is not None}
    if len(dtypes) != 1 or not dtypes <= set(TORCH_DTYPES):
        raise TypeError(f"from_torch reads float32 or float64 weights and biases, one dtype for"
                        f" all layers; got {sorted(dtypes)}")
    kwargs.setdefault("dtype", dtypes.pop())
    net = cls(sizes, activation=[a or "identity" for a in after[:-1]], output=output,
              dropout=rates[:-1], **kwargs)
    for W, b, lin in zip(net.weights, net.biases, linears):
        W[...] = lin.weight.detach().cpu().numpy()
        b[...] = 0 if lin.bias is None else \
            np.broadcast_to(lin.bias.detach().cpu().numpy(), (1, b.size))[0]
    return net


# ------------------------------------------------------------- scikit-learn
def _check_fitted(fitted, kinds, what):
    if not isinstance(fitted, kinds):
        names = " or ".join(f"sklearn.neural_network.{k.__name__}" for k in kinds)
        got = type(fitted)
        hint = ""
        if got.__module__ == "fastbp.sklearn":   # already fastbp's
            hint = (": a fastbp.sklearn estimator is fastbp's already (its network is"
                    " est.net_)")
        raise TypeError(f"{what} needs a fitted {names}; got {got.__module__}.{got.__qualname__}"
                        f"{hint}")
    if not hasattr(fitted, "coefs_"):
        from sklearn.exceptions import NotFittedError
        raise NotFittedError(f"this {type(fitted).__name__} is not fitted yet: call fit(X, y)"
                             f" before {what}")


def _multilabel(fitted):
    binarizer = getattr(fitted, "_label_binarizer", None)
    return getattr(binarizer, "y_type_", None) == "multilabel-indicator"


def from_sklearn(cls, fitted, **kwargs):
    """See :meth:`fastbp.MLP.from_sklearn`."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    _check_fitted(fitted, (MLPClassifier, MLPRegressor), "MLP.from_sklearn")
    if fitted.out_activation_ not in SKLEARN_OUTPUTS:
        raise ValueError(f"fastbp has no output {fitted.out_activation_!r} (scikit-learn's output of"
                         f" loss={getattr(fitted, 'loss', None)!r}); it reads softmax, logistic"
                         f" and identity outputs")
    if isinstance(fitted, MLPClassifier) and not _multilabel(fitted) and len(fitted.classes_) < 2:
        raise ValueError(f"this MLPClassifier was fitted on one class ({fitted.classes_.tolist()}),"
                         " which a fastbp.MLP cannot hold (it needs two or more classes);"
                         " fastbp.sklearn.MLPClassifier.from_sklearn takes it, as scikit-learn")
    coefs, intercepts = fitted.coefs_, fitted.intercepts_
    from .sklearn import _chained_sizes, _layer_count
    given = getattr(fitted, "n_layers_", len(coefs) + 1)
    n = _layer_count(given)
    if n != len(coefs) + 1:
        # scikit-learn's forward pass runs n_layers_ - 1 layers: one set
        # smaller cuts the network there (it was read whole, predicting other
        # values), a larger one asks for layers coefs_ does not hold
        if n is None or not 2 <= n <= len(coefs):
            raise ValueError(f"n_layers_ is {given!r}: scikit-learn's forward pass runs"
                             f" n_layers_ - 1 layers, and coefs_ holds {len(coefs)}")
        if isinstance(fitted, MLPClassifier):
            raise ValueError(f"n_layers_ is {n}, which cuts this classifier's network at a hidden"
                             " layer, whose units are no classes;"
                             " fastbp.sklearn.MLPClassifier.from_sklearn takes it, as scikit-learn")
        coefs, intercepts = coefs[:n - 1], intercepts[:n - 1]
    # (unchained, one weight was broadcast over a whole layer: checked as
    # fastbp.sklearn's from_sklearn checks them)
    sizes = _chained_sizes([np.asarray(c) for c in coefs], [np.asarray(i) for i in intercepts])
    kwargs.setdefault("dtype", coefs[0].dtype.name)
    # scikit-learn's penalty alpha / (2n) |W|^2 beside its own losses, whose
    # gradients are fastbp's times a constant (fastbp._sklearn_kernels): its
    # binary log loss sums the m labels' means (m times fastbp's BCE: the
    # optimum of fastbp's with alpha / m), its squared error's gradient is
    # that of sum (a - y)^2 / (2n) (m / 2 times fastbp's MSE: 2 alpha / m).
    alpha = float(fitted.alpha)
    if fitted.out_activation_ == "identity":
        alpha *= 2.0 / sizes[-1]
    elif fitted.out_activation_ == "logistic":
        alpha /= sizes[-1]
    kwargs.setdefault("alpha", alpha)
    net = cls(sizes, activation=SKLEARN_ACTIVATIONS[fitted.activation],
              output=SKLEARN_OUTPUTS[fitted.out_activation_], **kwargs)
    for W, b, coef, intercept in zip(net.weights, net.biases, coefs, intercepts):
        W[...] = coef.T
        b[...] = intercept
    if isinstance(fitted, MLPClassifier) and not _multilabel(fitted):
        net.classes_ = fitted.classes_
    net.metadata = {"source": f"sklearn.neural_network.{type(fitted).__name__}"}
    return net


def estimator_from_sklearn(cls, fitted, classifier):
    """A fitted fastbp.sklearn estimator of class ``cls`` (a classifier or
    not) with the parameters, weights and fitted attributes of a
    scikit-learn one (multilabel and Poisson included): it predicts the
    same, and trains on from there as scikit-learn's would."""
    import copy

    from sklearn.neural_network import MLPClassifier, MLPRegressor
    want = MLPClassifier if classifier else MLPRegressor
    _check_fitted(fitted, (want,), f"{cls.__name__}.from_sklearn")
    ours = set(cls._get_param_names())
    # (copies, as sklearn.base.clone takes them: a RandomState shared with
    # the source moved on as the new estimator trained)
    est = cls(**{k: copy.deepcopy(v) for k, v in fitted.get_params().items() if k in ours})
    for name in ("n_features_in_", "feature_names_in_", "out_activation_", "n_layers_",
                 "n_outputs_", "n_iter_", "t_", "loss_", "best_loss_", "validation_scores_",
                 "best_validation_score_", "_no_improvement_count", "classes_"):
        if hasattr(fitted, name):
            setattr(est, name, copy.deepcopy(getattr(fitted, name)))
    if hasattr(fitted, "loss_curve_"):
        est.loss_curve_ = list(fitted.loss_curve_)
    if classifier:
        est._label_binarizer = copy.deepcopy(fitted._label_binarizer)
    est.coefs_ = [np.array(c) for c in fitted.coefs_]
    est.intercepts_ = [np.array(b) for b in fitted.intercepts_]
    est._adopt_coefs()   # a network of their shapes and dtype takes the weights
    est._expose()
    # The optimizer scikit-learn's partial_fit would go on with: of its own
    # kind, whatever solver is set since, and only for weights of its shapes
    # (coefs_ assigned since: scikit-learn predicts with them, and a fit
    # makes a new optimizer).
    theirs = getattr(fitted, "_optimizer", None)
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer
    if isinstance(theirs, (SGDOptimizer, AdamOptimizer)) and [
            a.shape for a in (theirs.velocities if isinstance(theirs, SGDOptimizer) else theirs.ms)
    ] == [W.T.shape for W in est.net_.weights] + [b.shape for b in est.net_.biases]:
        # (the shapes trained, of the network that took coefs_: an intercept
        # scikit-learn predicts with may be a scalar, a list or of shape
        # (1, k), broadcasting, its state still of the trained (k,))
        _optimizer_from_sklearn(est, theirs)
    if hasattr(fitted, "n_layers_"):
        # _adopt_coefs counted every layer; an n_layers_ set smaller, which
        # scikit-learn's forward pass cuts the network at, is kept (and cuts
        # it here too, as the estimator's own does)
        est.n_layers_ = copy.deepcopy(fitted.n_layers_)
    return est


def _optimizer_from_sklearn(est, theirs):
    # scikit-learn's optimizer state is a list in coefs_ + intercepts_ order:
    # flattened, that is its packing, which est._pack_index() places.
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

    from .optim import LR, SklearnAdam, SklearnSGD
    # The optimizer's own hyper-parameters, as it was made (a set_params
    # since then is not read by scikit-learn's partial_fit, nor by ours).
    sgd = isinstance(theirs, SGDOptimizer)
    if sgd:
        opt = SklearnSGD(lr=float(theirs.learning_rate_init), momentum=float(theirs.momentum),
                         nesterov=bool(theirs.nesterov))
    else:
        opt = SklearnAdam(lr=float(theirs.learning_rate_init),
                          betas=(float(theirs.beta_1), float(theirs.beta_2)),
                          eps=float(theirs.epsilon))
    state = opt.ensure_state(est.net_.params)
    pack = est._pack_index()
    if sgd:
        state[0][pack] = np.concatenate([v.ravel() for v in theirs.velocities])
        opt.hyper[LR] = theirs.learning_rate
        est._schedule_args = (theirs.lr_schedule, float(theirs.learning_rate_init), theirs.power_t)
    else:
        state[0][pack] = np.concatenate([m.ravel() for m in theirs.ms])
        state[1][pack] = np.concatenate([v.ravel() for v in theirs.vs])
        opt.t = int(theirs.t)
    est._optimizer = opt


def _optimizer_to_sklearn(sk, est):
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

    from .optim import BETA1, BETA2, EPS, LR, MOMENTUM, NESTEROV, SklearnSGD
    opt = est._optimizer
    params = sk.coefs_ + sk.intercepts_
    pack = est._pack_index()
    sizes = np.cumsum([p.size for p in params])[:-1]

    def unpack(flat):
        return [a.reshape(p.shape).astype(p.dtype) for a, p in zip(np.split(flat[pack], sizes), params)]
    h = opt.hyper   # the optimizer's own settings, not est's parameters (set_params since)
    if isinstance(opt, SklearnSGD):
        schedule, lr_init, power_t = est._schedule()
        theirs = SGDOptimizer(params, lr_init, schedule, float(h[MOMENTUM]), bool(h[NESTEROV]),
                              power_t)
        theirs.velocities = unpack(opt.state[0])
        theirs.learning_rate = float(h[LR])
    else:
        theirs = AdamOptimizer(params, float(h[LR]), float(h[BETA1]), float(h[BETA2]),
                               float(h[EPS]))
        theirs.ms, theirs.vs, theirs.t = unpack(opt.state[0]), unpack(opt.state[1]), opt.t
    sk._optimizer = theirs


def estimator_to_sklearn(est):
    """A fitted scikit-learn MLPClassifier / MLPRegressor with copies of a
    fitted fastbp.sklearn estimator's parameters, weights and attributes."""
    import copy

    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(est, "net_", msg=f"this {type(est).__name__} is not fitted yet: call fit(X, y)"
                                     " before to_sklearn()")
    net = est.net_
    if net.input_mean is not None or net.target_mean is not None:
        raise ValueError("scikit-learn's MLPs have no input or target scaling; this estimator's"
                         " network has one (net_.input_mean / net_.target_mean)")
    # The weights its predictions run: arrays a user assigned to coefs_ /
    # intercepts_ taken in (or refused with predict's error), those of other
    # shapes in a network of their own.
    net = est._predicting_net()
    cls = MLPClassifier if hasattr(est, "classes_") else MLPRegressor
    theirs = set(cls._get_param_names())
    sk = cls(**{k: copy.deepcopy(v) for k, v in est.get_params().items() if k in theirs})
    sk.coefs_ = [np.array(W.T) for W in net.weights]
    sk.intercepts_ = [np.array(b) for b in net.biases]
    sk.n_layers_ = len(net.sizes)
    sk.n_outputs_ = net.sizes[-1]
    sk.out_activation_ = est.out_activation_
    sk.n_features_in_ = est.n_features_in_
    if hasattr(est, "feature_names_in_"):
        sk.feature_names_in_ = np.array(est.feature_names_in_)
    sk.n_iter_ = est.n_iter_
    sk.t_ = est.t_
    for name in ("loss_", "best_loss_", "validation_scores_", "best_validation_score_",
                 "_no_improvement_count"):
        if hasattr(est, name):
            setattr(sk, name, copy.deepcopy(getattr(est, name)))
    if hasattr(est, "loss_curve_"):
        sk.loss_curve_ = list(est.loss_curve_)
    if cls is MLPClassifier:
        sk.classes_ = np.array(est.classes_)
        sk._label_binarizer = copy.deepcopy(est._label_binarizer)
    from .optim import SklearnAdam, SklearnSGD
    if isinstance(getattr(est, "_optimizer", None), (SklearnSGD, SklearnAdam)) \
            and net.sizes == est.net_.sizes:   # (its state: of the fitted network's shapes)
        _optimizer_to_sklearn(sk, est)
    if hasattr(est, "best_validation_score_") and est.best_validation_score_ is not None:
        # After early stopping scikit-learn's best coefficients *are* coefs_
        # (fastbp.sklearn's _best_is_current); else the best ones kept.
        if getattr(est, "_best_is_current", True):
            sk._best_coefs, sk._best_intercepts = sk.coefs_, sk.intercepts_
        else:
            Ws, bs = est.net_._layout.views(est._best_params)
            sk._best_coefs = [np.array(W.T) for W in Ws]
            sk._best_intercepts = [np.array(b) for b in bs]
    return sk
