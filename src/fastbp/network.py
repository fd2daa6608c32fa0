"""Whole-network kernels: forward, backward, a training step, an epoch.

Every function here takes the flat ``params`` (and ``grads``) buffer, a flat
workspace ``ws`` and the layout ``plan`` (see :mod:`fastbp.layout`); only this
module turns offsets into views. The workspace holds, for up to ``cap``
samples (its *capacity*), five regions::

    A: activations of all units, layer by layer (inputs, hidden, logits)   cap * U
    D: deltas dE/dz of the same units                                      cap * U
    P: outputs g(logits) (softmax, sigmoid or identity)                    cap * m
    Y: the batch's targets, gathered (class labels: one column, as floats) cap * m
    M: dropout masks of the hidden layers that have dropout                cap * H

with ``U = sum(sizes)``, ``m = sizes[-1]`` and ``H`` the number of dropped
units (plan column ``M_OFF``); a smaller batch uses the first rows of each
layer's block. Nothing here allocates.

Targets: ``Y`` is (n, m) floats, or for a softmax output (cross-entropy)
int64 class labels (n,); the training and loss kernels copy a batch's labels
into region Y as floats (whole numbers, exact: float32 holds every label
below 2**24, the most classes a float32 ``MLP`` takes), so inside an epoch the loss
kernels see one labels type whatever the caller's, and Numba compiles the
labels variant only for a softmax model (``Y.ndim`` is a compile-time
constant; each specialisation holds only its own branch).

Sparse inputs: the internal (``_``) kernels also take ``X`` as a CSR tuple
``(data, indices, indptr, rows, first, n)`` (see :func:`fastbp.ops.sparse_forward`):
only the first layer differs (:func:`_first_forward`, :func:`_first_backward`),
batches are row selections of it (no gathering, no densifying), and Numba
compiles those variants only when a sparse X is used. A seventh element
(any value) says that the first layer's block of ``params`` (and of
``grads``) holds ``W.T``, (n_in, n_out): the first layer then runs
:func:`fastbp.ops.sparse_product_t` and its twins, one weight row per
non-zero (see :func:`fastbp.train.first_layer_transposed`).

The public whole-network kernels (those without a leading underscore) check
their arguments once at entry (see :mod:`fastbp.kernels` for the contract)
and then call an unchecked ``_`` twin, which internal callers that have
validated already (the model class) call directly. The twins only ever see
C-contiguous array types (``_c`` gives a C-typed view of an array already
checked to be C-contiguous), so a strided or Fortran array is refused
without compiling a second copy of the network code.

Regularisation reaches the training kernels as ``reg``, a float64 vector of
``n_layers + 1``: ``reg[0]`` is the L2 penalty ``alpha`` (scikit-learn's:
``alpha / (2 n_batch) * sum |W|^2`` added to each batch's loss, biases not
penalised), ``reg[1 + l]`` the dropout rate of layer l's outputs (0 for
none; > 0 only where the plan has a mask).
"""
import numpy as np
from numba.core import errors, types
from numba.extending import overload

from . import _views
from ._ahead import waits_for_helper
from ._arrays import borrowed, packed_values, prefetch_row, prefetch_span
from ._fastmath import smax, smin
from ._jit import KERNEL_ONLY, jit, linked, matrix
from .layout import ACT, B_OFF, M_OFF, N_IN, N_OUT, PLAN_COLUMNS, U_OFF, W_OFF
from .optim import LR, N_HYPER, _optimizer_step, check_step, is_plain_sgd, known_code
from ._blas import gemm_call
from ._narrow import narrow_product
from ._static import (JIT_OPTIONS, array_guard, same_grads, same_scratch, same_state, same_ws, same_X,
                      same_x, specialising)
from .ops import (CROSS_ENTROPY, HUBER, IDENTITY, SOFTPLUS, _an_rng, _dense_backward,
                  _dense_backward_sgd,
                  bias_act, bias_add, bias_grad, bias_sgd, dense_backward, dense_backward_sgd, dense_forward,
                  dropout_backward,
                  dropout_forward, _loss_backward, _loss_forward, outputs_for_loss, rng_next,
                  sgd_update, shuffle, sparse_product, sparse_product_t, sparse_weight_grad,
                  sparse_weight_grad_t, sparse_weight_sgd, sparse_weight_sgd_t)


# Views of the buffers: intrinsics (see fastbp._views), so that the many
# call sites below cost Numba nothing to compile. Region names as in the
# module docstring; ``cap`` is the workspace's capacity, ``nb`` the rows.
_units = _views.units
_weight = _views.layer_weight       # (params, plan, l): W_l, (n_out, n_in)
_bias = _views.layer_bias           # (params, plan, l): b_l, (n_out,)
_block = matrix                     # (ws, start, nb, width)
_act = _views.activations           # (ws, plan, cap, l, nb): region A, layer l's outputs
_delta = _views.deltas              # (ws, plan, cap, l, nb): region D, dE/dz of layer l
_mask = _views.dropout_mask         # (ws, plan, cap, l, nb): region M, layer l's dropout factors
_logits = _views.logits             # (ws, plan, nb): the last layer's A block
_outputs = _views.outputs           # (ws, plan, cap, nb): region P, (nb, m)
_targets = _views.targets           # (ws, plan, cap, nb): region Y, (nb, m)
_labels = _views.labels             # (ws, plan, cap, nb): region Y as one column, (nb,)
_inputs = _views.inputs             # (ws, plan, cap, nb): layer 0's input block of A
_capacity = _views.capacity_of      # (ws, plan)


@jit(inline="always")
def capacity(ws, plan):
    """How many samples the workspace ``ws`` holds for this plan."""
    # Any layout (the public kernels' checks call it before refusing a
    # strided array); the kernels behind the checks call _capacity.
    last = plan.shape[0] - 1
    masked = 0
    for l in range(last + 1):
        if plan[l, M_OFF] >= 0:
            masked += plan[l, N_OUT]
    units = plan[last, U_OFF] + plan[last, N_IN] + plan[last, N_OUT]
    return ws.size // (2 * units + 2 * plan[last, N_OUT] + masked)


@jit
def weight(params, plan, l):
    """View of layer l's W, (n_out, n_in), in the flat buffer."""
    _check_plan(params, plan)   # (O(layers): a plan that params does not fit gave a view past it)
    if l < 0 or l >= plan.shape[0]:
        raise ValueError("no such layer in this plan")
    return _weight(_c(params), _c(plan), l)   # (an 'A'-typed params failed to compile)


@jit
def bias(params, plan, l):
    """View of layer l's b, (n_out,), in the flat buffer."""
    _check_plan(params, plan)
    if l < 0 or l >= plan.shape[0]:
        raise ValueError("no such layer in this plan")
    return _bias(_c(params), _c(plan), l)


@jit
def mask(ws, plan, l, nb):
    """View of layer l's dropout mask (nb, n_out) from the last training
    step: 0 for a dropped unit, 1 / (1 - rate) for a kept one."""
    _a_ws(ws)
    _check_layers(plan, MAX_WIDTH)   # (a mask offset past the mask region gave a view past ws)
    if not ws.flags.c_contiguous:
        raise ValueError("ws must be C-contiguous")
    if l < 0 or l >= plan.shape[0] or plan[l, M_OFF] < 0 or nb < 0 or nb > capacity(ws, plan):
        raise ValueError("layer l has no dropout mask, or nb exceeds the workspace's capacity")
    return _mask(_c(ws), _c(plan), _capacity(_c(ws), _c(plan)), l, nb)


# ------------------------------------------------- dense or CSR inputs
# X is a dense array or a CSR tuple (see the module docstring). Which code a
# call takes is decided by the argument's type when Numba compiles it (an
# overload), so a dense fit never compiles the sparse kernels and the other
# way round; an ``if isinstance(...)`` would compile both branches.
def _rows(x):
    """Rows of a batch."""


def _rows_of(X, start, nb):
    """Rows start..start + nb - 1 of X: a view, no copy."""


def _batch_inputs(ws, plan, cap, X, perm, start, nb, shuffled):
    """X's rows perm[start:start + nb]: dense rows gathered into the
    workspace when shuffled, else a view; CSR rows as a selection (perm
    holds 0..n-1 when not shuffled), never densified."""


def _first_product(out, x, W):
    """Layer 0's product ``out = x @ W.T``."""


def _first_weight_grad(dW, dout, x):
    """Layer 0's weight gradient ``dW = dout^T x``."""


def _first_weight_sgd(W, dout, x, lr, decay):
    """Layer 0's weight step ``W = decay W - lr dout^T x``."""


def _csr(x):
    return isinstance(x, types.BaseTuple) and len(x) >= 6


def _dense_t(x):
    """Whether x is ``(X, transposed)``: the dense rows a fit's epoch takes,
    with an int64 flag, 1 when the first layer's weights are stored
    transposed for the epoch (fastbp.train.dense_transposes). A flag read at
    run time, not a type: every dense fit shares one specialisation of each
    epoch kernel, whichever way its first layer is stored."""
    return isinstance(x, types.BaseTuple) and len(x) == 2


@overload(_rows, jit_options=JIT_OPTIONS)
def _rows_typed(x):
    def sparse(x):
        return x[5]

    def dense(x):
        return x.shape[0]

    def dense_t(x):
        return x[0].shape[0]
    return sparse if _csr(x) else dense_t if _dense_t(x) else dense


@overload(_rows_of, jit_options=JIT_OPTIONS)
def _rows_of_typed(X, start, nb):
    def sparse(X, start, nb):
        return (X[0], X[1], X[2], X[3], X[4] + start, nb) + X[6:]

    def dense(X, start, nb):
        return X[start:start + nb]

    def dense_t(X, start, nb):
        return (X[0][start:start + nb], X[1])
    return sparse if _csr(X) else dense_t if _dense_t(X) else dense


@overload(_batch_inputs, jit_options=JIT_OPTIONS)
def _batch_inputs_typed(ws, plan, cap, X, perm, start, nb, shuffled):
    def sparse(ws, plan, cap, X, perm, start, nb, shuffled):
        if shuffled:
            _prefetch_csr_next(X, perm, start + nb, nb)
        return (X[0], X[1], X[2], perm, start, nb) + X[6:]
    if _csr(X):
        return sparse

    def dense(ws, plan, cap, X, perm, start, nb, shuffled):
        return _dense_rows(ws, plan, cap, X, perm, start, nb, shuffled)

    def dense_t(ws, plan, cap, X, perm, start, nb, shuffled):
        return (_dense_rows(ws, plan, cap, X[0], perm, start, nb, shuffled), X[1])
    return dense_t if _dense_t(X) else dense


@jit(inline="always")
def _dense_rows(ws, plan, cap, X, perm, start, nb, shuffled):
    # _batch_inputs for a dense X: the rows gathered into the workspace when
    # shuffled (the next batch's asked for), else a view.
    if shuffled:
        xb = gathered_rows(ws, plan, cap, X, perm, start, nb)
        _prefetch_next(X, perm, start + nb, nb)
        return xb
    return X[start:start + nb]


@jit(inline="always")
def gathered_rows(ws, plan, cap, X, perm, start, nb):
    """Dense X's rows perm[start:start + nb] gathered into the workspace,
    without asking for the rows after them: for the split epoch's pieces
    (fastbp._sklearn_kernels), where those rows are another thread's piece:
    the request fetched rows this thread never reads. (60,000 x 784 float32,
    adam, batch 200, two threads, fastest of 7 fits, alternating: 0.369-0.392
    s without it against 0.378-0.386 s with it in four pairs; 0.400-0.405
    against 0.405-0.416 s in three pairs of an earlier test.)"""
    xb = _inputs(ws, plan, cap, nb)
    _gather(xb, X, perm, start)
    return xb


def _stored_transposed(x):
    """Whether the CSR batch x comes with the first layer's weights stored
    transposed (a seventh element; see :func:`fastbp.train.first_layer_transposed`).
    Dense rows say so at run time (:func:`_dense_t`)."""
    return _csr(x) and len(x) == 7


@jit(inline="always")
def _transposed(W):
    # The (m, k) view W of a block that holds W^T: that block as (k, m).
    return matrix(packed_values(W), 0, W.shape[1], W.shape[0])


@overload(_first_product, jit_options=JIT_OPTIONS)
def _first_product_typed(out, x, W):
    def sparse(out, x, W):
        sparse_product(out, x, W)

    def sparse_t(out, x, W):
        sparse_product_t(out, x, _transposed(W))

    def dense(out, x, W):
        gemm_call(out, x, W, False, True, 1.0, 0.0)

    def dense_t(out, x, W):
        if x[1]:  # x @ W^T with W^T stored: no copy of it per step
            gemm_call(out, x[0], _transposed(W), False, False, 1.0, 0.0)
        else:
            gemm_call(out, x[0], W, False, True, 1.0, 0.0)
    if _dense_t(x):
        return dense_t
    return (sparse_t if _stored_transposed(x) else sparse) if _csr(x) else dense


@overload(_first_weight_grad, jit_options=JIT_OPTIONS)
def _first_weight_grad_typed(dW, dout, x):
    def sparse(dW, dout, x):
        sparse_weight_grad(dW, dout, x)

    def sparse_t(dW, dout, x):
        sparse_weight_grad_t(_transposed(dW), dout, x)

    def dense(dW, dout, x):
        gemm_call(dW, dout, x, True, False, 1.0, 0.0)

    def dense_t(dW, dout, x):
        if x[1]:
            gemm_call(_transposed(dW), x[0], dout, True, False, 1.0, 0.0)
        else:
            gemm_call(dW, dout, x[0], True, False, 1.0, 0.0)
    if _dense_t(x):
        return dense_t
    return (sparse_t if _stored_transposed(x) else sparse) if _csr(x) else dense


@overload(_first_weight_sgd, jit_options=JIT_OPTIONS)
def _first_weight_sgd_typed(W, dout, x, lr, decay):
    def sparse(W, dout, x, lr, decay):
        sparse_weight_sgd(W, dout, x, lr, decay)

    def sparse_t(W, dout, x, lr, decay):
        sparse_weight_sgd_t(_transposed(W), dout, x, lr, decay)

    def dense(W, dout, x, lr, decay):
        gemm_call(W, dout, x, True, False, -lr, decay)

    def dense_t(W, dout, x, lr, decay):
        if x[1]:
            gemm_call(_transposed(W), x[0], dout, True, False, -lr, decay)
        else:
            gemm_call(W, dout, x[0], True, False, -lr, decay)
    if _dense_t(x):
        return dense_t
    return (sparse_t if _stored_transposed(x) else sparse) if _csr(x) else dense


# Layer 0 as the other layers, its product through the overloads above: the
# activation, the bias and the L2 term are the same code for dense and CSR X.
@jit(inline="always")
def _first_forward(out, x, W, b, act):
    _first_product(out, x, W)
    bias_act(out, b, act, act)


@jit(inline="always")
def _first_backward(grads, params, ws, plan, cap, nb, x):
    # Layer 0's gradient into grads (no delta passed back).
    dout = _delta(ws, plan, cap, 0, nb)
    _first_weight_grad(_weight(grads, plan, 0), dout, x)
    bias_grad(_bias(grads, plan, 0), dout)


@jit(inline="always")
def _first_backward_sgd(ws, params, plan, cap, nb, x, lr, decay):
    # Layer 0's fused SGD step (no delta passed back).
    dout = _delta(ws, plan, cap, 0, nb)
    _first_weight_sgd(_weight(params, plan, 0), dout, x, lr, decay)
    bias_sgd(_bias(params, plan, 0), dout, lr)


@jit(inline="always")
def _first_layer_backward(grads, params, ws, plan, cap, nb, x, alpha, fused, lr):
    # Layer 0 of _backward: the fused step, or the gradient and the L2 term.
    coef = alpha / nb
    if fused:
        _first_backward_sgd(ws, params, plan, cap, nb, x, lr, 1.0 - lr * coef)
    else:
        _first_backward(grads, params, ws, plan, cap, nb, x)
        if alpha != 0:
            _add_weight_decay(grads, params, plan, 0, coef)


@jit
def forward_batch(params, ws, plan, x, loss):
    """Forward pass of a batch ``x`` (nb, n_in) with nb <= capacity.

    Leaves every layer's activation, the logits and the outputs in ``ws``
    and returns the outputs (nb, m), a view into ``ws``.
    """
    same_x(params, x)
    same_ws(params, ws)
    _check_net(params, plan, loss)
    _check_x(x, plan)
    _check_rows(x)
    _check_ws(ws, plan, x.shape[0])
    if _overlap(ws, params) or _overlap(ws, x) or _overlap(ws, plan):
        raise ValueError("ws must not overlap params, x or plan")
    # ws not borrowed: the outputs returned are a view of it.
    p, pl, xb = borrowed((_c(params), _c(plan), _c(x)))
    return _forward_batch(p, _c(ws), pl, xb, loss)


# ``hidden``: the activation of every hidden layer as a compile-time
# constant (fastbp._static), for a model's own plan, whose output layer is the
# identity: only that activation compiles. RUNTIME: each layer's code from the
# plan, every activation compiled (the public kernels, a plan of mixed codes).
RUNTIME = -1


@jit(inline="always")
def _forward_batch(params, ws, plan, x, loss):
    return _forward(params, ws, plan, x, loss, RUNTIME, False)


@jit(inline="always")
def _forward(params, ws, plan, x, loss, hidden, narrow):
    # narrow: the constant True in the inference kernels (_predict,
    # _loss_sum), whose output layer then runs its product through
    # _narrow.narrow_product where that pays; False in training's.
    cap = _capacity(ws, plan)
    nb = _rows(x)
    last = plan.shape[0] - 1
    for l in range(last + 1):
        a = _act(ws, plan, cap, l, nb)
        if l == 0:
            _first_layer_product(a, x, _weight(params, plan, 0), narrow, last == 0)
        elif l < last:
            gemm_call(a, _act(ws, plan, cap, l - 1, nb), _weight(params, plan, l), False, True,
                      1.0, 0.0)
        else:
            _output_product(a, _act(ws, plan, cap, l - 1, nb), _weight(params, plan, l), narrow)
        if l < last:
            bias_act(a, _bias(params, plan, l), hidden, plan[l, ACT])
        else:
            _output_layer_act(a, _bias(params, plan, l), hidden, plan[l, ACT])
    out = _outputs(ws, plan, cap, nb)
    outputs_for_loss(out, _act(ws, plan, cap, last, nb), loss)
    return out


def _output_product(out, inp, W, narrow):
    """``out = inp @ W^T``, the output layer's product: with ``narrow`` the
    constant True through :func:`fastbp._narrow.narrow_product` where it
    takes the shape, else (and otherwise) BLAS."""


@overload(_output_product, inline="always", prefer_literal=True, jit_options=JIT_OPTIONS)
def _output_product_typed(out, inp, W, narrow):
    def narrow_first(out, inp, W, narrow):
        if not narrow_product(out, inp, W):
            gemm_call(out, inp, W, False, True, 1.0, 0.0)

    def blas(out, inp, W, narrow):
        gemm_call(out, inp, W, False, True, 1.0, 0.0)
    return narrow_first if isinstance(narrow, types.BooleanLiteral) and narrow.literal_value \
        else blas


def _first_layer_product(out, x, W, narrow, output):
    """The first layer's product (:func:`_first_product`); with ``narrow``
    the constant True and dense rows x, through
    :func:`fastbp._narrow.narrow_product` where it takes the shape when the
    first layer is also the output layer (``output``: a network without
    hidden layers)."""


@overload(_first_layer_product, inline="always", prefer_literal=True, jit_options=JIT_OPTIONS)
def _first_layer_product_typed(out, x, W, narrow, output):
    def narrow_first(out, x, W, narrow, output):
        if not (output and narrow_product(out, x, W)):
            _first_product(out, x, W)

    def plain(out, x, W, narrow, output):
        _first_product(out, x, W)
    return narrow_first if isinstance(narrow, types.BooleanLiteral) and narrow.literal_value \
        and isinstance(x, types.Array) else plain


def _output_layer_act(z, b, hidden, runtime_act):
    """The output layer's bias and activation: the identity when ``hidden``
    is a constant (a model's plan), else the plan's code."""


@overload(_output_layer_act, prefer_literal=True, strict=False, jit_options=JIT_OPTIONS)
def _output_layer_act_typed(z, b, hidden, runtime_act):
    def identity(z, b, hidden, runtime_act):
        bias_act(z, b, IDENTITY, IDENTITY)

    def from_plan(z, b, hidden, runtime_act):
        bias_act(z, b, runtime_act, runtime_act)
    return identity if isinstance(hidden, types.IntegerLiteral) and hidden.literal_value >= 0 \
        else from_plan


@jit(**KERNEL_ONLY)
def _forward_dropout(params, ws, plan, x, loss, reg, rng, first_row):
    # forward_batch in training mode: after each hidden layer with a mask,
    # inverted dropout with rate reg[1 + l], drawing from rng (uint64[1]);
    # x holds rows first_row.. of the batch (see dropout_forward).
    cap = _capacity(ws, plan)
    nb = _rows(x)
    last = plan.shape[0] - 1
    for l in range(last + 1):
        a = _act(ws, plan, cap, l, nb)
        if l == 0:
            _first_forward(a, x, _weight(params, plan, 0), _bias(params, plan, 0), plan[0, ACT])
        else:
            dense_forward(a, _act(ws, plan, cap, l - 1, nb), _weight(params, plan, l),
                          _bias(params, plan, l), plan[l, ACT])
        if l < last and plan[l, M_OFF] >= 0 and reg[1 + l] > 0:
            dropout_forward(a, _mask(ws, plan, cap, l, nb), reg[1 + l], rng, first_row)
    out = _outputs(ws, plan, cap, nb)
    outputs_for_loss(out, _act(ws, plan, cap, last, nb), loss)
    return out


@jit(inline="always")
def _dropped(plan, reg, l):
    return l < plan.shape[0] - 1 and plan[l, M_OFF] >= 0 and reg[1 + l] > 0


@jit(inline="always")
def _any_dropped(plan, reg):
    """Whether any layer has dropout: a bool from its first value. (From a
    literal False, Numba typed the calls that take it, and compiled
    ``_backward``, once more for the constant.)"""
    dropout = _dropped(plan, reg, 0)
    for l in range(1, plan.shape[0]):
        dropout = dropout or _dropped(plan, reg, l)
    return dropout


@jit(**KERNEL_ONLY)
def _backward(grads, params, ws, plan, x, y, loss, reg, alpha, dropped, fused, lr):
    # Backpropagation with the L2 penalty alpha and, when ``dropped``, through
    # the dropout masks of the last forward; ``fused`` updates params by SGD
    # with ``lr`` as it goes (grads unused), else writes grads.
    cap = _capacity(ws, plan)
    nb = _rows(x)
    last = plan.shape[0] - 1
    _loss_backward(_delta(ws, plan, cap, last, nb), _outputs(ws, plan, cap, nb), y, loss)
    for l in range(last, 0, -1):
        through = dropped and _dropped(plan, reg, l - 1)
        dinp = _delta(ws, plan, cap, l - 1, nb)
        inp = _act(ws, plan, cap, l - 1, nb)
        _layer_backward(grads, params, ws, plan, cap, l, nb, dinp, inp,
                        IDENTITY if through else plan[l - 1, ACT], alpha, fused, lr)
        if through:
            dropout_backward(dinp, inp, _mask(ws, plan, cap, l - 1, nb), reg[l], plan[l - 1, ACT])
    _first_layer_backward(grads, params, ws, plan, cap, nb, x, alpha, fused, lr)


@jit(inline="always")
def _add_weight_decay(grads, params, plan, l, coef):
    # dW_l += coef W_l: the L2 term's gradient for one layer.
    W = _weight(params, plan, l)
    dW = _weight(grads, plan, l)
    c = W.dtype.type(coef)
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            dW[i, j] += c * W[i, j]


@jit(inline="always")
def _layer_backward(grads, params, ws, plan, cap, l, nb, dinp, inp, act_in, alpha, fused, lr):
    coef = alpha / nb
    if fused:
        dense_backward_sgd(dinp, _weight(params, plan, l), _bias(params, plan, l),
                           _delta(ws, plan, cap, l, nb), inp, act_in, lr, 1.0 - lr * coef)
    else:
        W = _weight(params, plan, l)
        dW = _weight(grads, plan, l)
        dense_backward(dinp, dW, _bias(grads, plan, l), _delta(ws, plan, cap, l, nb), inp, W, act_in)
        if alpha != 0:
            c = W.dtype.type(coef)
            for i in range(W.shape[0]):
                for j in range(W.shape[1]):
                    dW[i, j] += c * W[i, j]


@jit
def penalty(params, plan):
    """``sum |W|^2`` over every layer's weights (not biases), in float64; the
    L2 term of the loss is ``alpha / (2 n) * penalty``. The additions are
    free to reorder (:func:`_sum_squares`)."""
    _check_plan(params, plan)   # (O(layers): a plan past params summed what it found)
    return _penalty(params, plan)


@jit(fastmath={"reassoc"})
def _penalty(params, plan):
    # penalty behind the checks (the kernels' own plan and buffers).
    total = 0.0
    for l in range(plan.shape[0]):
        o = plan[l, W_OFF]
        total += _sum_squares(params[o:o + plan[l, N_OUT] * plan[l, N_IN]])
    return total


@jit(inline="always")
def _sum_squares(v):
    # sum v^2 in float64, inlined into a caller compiled with
    # fastmath={"reassoc"} (penalty, fastbp._columns.squares), so that the
    # additions reorder into a vectorised reduction. Four explicit partial
    # sums, as it was, ran at one value a cycle: 110 us for 266,000 float32
    # weights (784-256-256-10, every batch of a fit with alpha > 0) against
    # 23 us, 0.69 against 0.34 us for 2,400 float64.
    total = 0.0
    for i in range(v.size):
        x = np.float64(v[i])
        total += x * x
    return total


@jit
def add_penalty_gradient(grads, params, plan, coef):
    """``grads_W += coef * W`` for every layer (biases untouched): with
    ``coef = alpha / n``, the gradient of the L2 term. Checks that ``plan``
    is a layout plan that ``params`` fits and ``grads`` has the length of
    ``params`` (O(layers)), ValueError otherwise."""
    same_grads(params, grads)
    _a_grads(grads)
    _check_plan(params, plan)   # (a plan past params wrote past grads)
    if grads.size != params.size:
        raise ValueError("grads must have the length of params")
    if _overlap(grads, plan):
        raise ValueError("grads must not overlap plan")
    _add_penalty_gradient(grads, params, plan, coef)


@jit
def _add_penalty_gradient(grads, params, plan, coef):
    # add_penalty_gradient behind the checks (the kernels' own plan and buffers).
    c = params.dtype.type(coef)
    for l in range(plan.shape[0]):
        o, size = plan[l, W_OFF], plan[l, N_OUT] * plan[l, N_IN]
        # Indexed from 0 (no wraparound checks), so the loop vectorises:
        # indexed from o, 166 against 41 us for 784-256-256-10's float32
        # weights, every batch of a fit with alpha > 0 and an optimizer.
        g, p = grads[o:o + size], params[o:o + size]
        for i in range(size):
            g[i] += c * p[i]


# Whether a fit has an L2 term, as a compile-time constant (fastbp._static):
# the epoch kernels take ``l2``, static(NO_L2) when alpha == 0 (so their
# ``if alpha != 0`` branches are never taken and the two L2 kernels above need
# not compile: a first fit without L2 compiles neither), static(WITH_L2) or
# RUNTIME otherwise. fastbp.train derives it from reg[0] at every call.
NO_L2, WITH_L2 = 0, 1


def _no_l2(l2):
    return isinstance(l2, types.IntegerLiteral) and l2.literal_value == NO_L2


def _penalty_if(params, plan, l2):
    """:func:`penalty`, or 0.0 without compiling it when ``l2`` is static(NO_L2)."""
    return _penalty(params, plan)


def _add_penalty_gradient_if(grads, params, plan, coef, l2):
    """:func:`add_penalty_gradient`, or nothing when ``l2`` is static(NO_L2)."""
    _add_penalty_gradient(grads, params, plan, coef)


@overload(_penalty_if, inline="always", prefer_literal=True, jit_options=JIT_OPTIONS)
def _penalty_if_typed(params, plan, l2):
    def without(params, plan, l2):
        return 0.0

    def with_l2(params, plan, l2):
        return _penalty(params, plan)
    return without if _no_l2(l2) else with_l2


@overload(_add_penalty_gradient_if, inline="always", prefer_literal=True, jit_options=JIT_OPTIONS)
def _add_penalty_gradient_if_typed(grads, params, plan, coef, l2):
    def without(grads, params, plan, coef, l2):
        pass

    def with_l2(grads, params, plan, coef, l2):
        _add_penalty_gradient(grads, params, plan, coef)
    return without if _no_l2(l2) else with_l2


@jit
def backward_batch(grads, params, ws, plan, x, y, loss):
    """Backpropagation through the batch last run by :func:`forward_batch`.

    Writes the mean-loss gradient of every parameter into ``grads`` (same
    layout as ``params``). x is (nb, n_in), y is (nb, m).
    """
    same_x(params, x)
    same_ws(params, ws)
    same_grads(params, grads)
    _check_net(params, plan, loss)
    _check_xy(x, y, plan, loss)
    _check_rows(x)
    _check_ws(ws, plan, x.shape[0])
    _check_buffer(grads, params)
    if (_overlap(grads, ws) or _overlap(grads, params) or _overlap(grads, x) or _overlap(grads, y)
            or _overlap(ws, params) or _overlap(ws, x) or _overlap(ws, y)
            or _overlap2(grads, ws, plan, plan)):
        raise ValueError("grads and ws must not overlap each other, params, x, y or plan")
    g, p, w, pl, xb, yb = borrowed((_c(grads), _c(params), _c(ws), _c(plan), _c(x), _c(y)))
    _backward_batch(g, p, w, pl, xb, yb, loss)


@jit(inline="always")
def _backward_batch(grads, params, ws, plan, x, y, loss):
    _backward_batch_h(grads, params, ws, plan, x, y, loss, RUNTIME)


@jit(inline="always")
def _backward_batch_h(grads, params, ws, plan, x, y, loss, hidden):
    cap = _capacity(ws, plan)
    nb = _rows(x)
    last = plan.shape[0] - 1
    _loss_backward(_delta(ws, plan, cap, last, nb), _outputs(ws, plan, cap, nb), y, loss)
    # The chain rule, layer by layer from the output back:
    # dW_l = delta_l^T a_{l-1}, db_l = sum delta_l, delta_{l-1} = (delta_l W_l) f'(a_{l-1}).
    for l in range(last, 0, -1):
        _dense_backward(_delta(ws, plan, cap, l - 1, nb), _weight(grads, plan, l),
                        _bias(grads, plan, l), _delta(ws, plan, cap, l, nb),
                        _act(ws, plan, cap, l - 1, nb), _weight(params, plan, l), hidden,
                        plan[l - 1, ACT])
    _first_backward(grads, params, ws, plan, cap, nb, x)  # act unused: no dinp


@jit
def backward_sgd_batch(params, ws, plan, x, y, loss, lr):
    """:func:`backward_batch` fused with the SGD update, layer by layer from
    the output: each layer's delta is passed back through its old weights,
    then its weights are updated in place by one accumulating GEMM."""
    same_x(params, x)
    same_ws(params, ws)
    _check_net(params, plan, loss)
    _check_xy(x, y, plan, loss)
    _check_rows(x)
    _check_ws(ws, plan, x.shape[0])
    if (_overlap(ws, params) or _overlap(params, x) or _overlap(params, y) or _overlap(ws, x)
            or _overlap(ws, y) or _overlap2(params, ws, plan, plan)):
        raise ValueError("params and ws must not overlap each other, x, y or plan")
    p, w, pl, xb, yb = borrowed((_c(params), _c(ws), _c(plan), _c(x), _c(y)))
    _backward_sgd(p, w, pl, xb, yb, loss, lr, 1.0)



@jit(inline="always")
def _backward_sgd(params, ws, plan, x, y, loss, lr, decay):
    _backward_sgd_h(params, ws, plan, x, y, loss, lr, decay, RUNTIME)


@jit(inline="always")
def _backward_sgd_h(params, ws, plan, x, y, loss, lr, decay, hidden):
    # backward_sgd_batch with W <- decay W - lr dW: decay is 1 - lr alpha / nb
    # for the L2 penalty alpha / (2 nb) |W|^2, 1 without it; hidden as in _forward.
    cap = _capacity(ws, plan)
    nb = _rows(x)
    last = plan.shape[0] - 1
    _loss_backward(_delta(ws, plan, cap, last, nb), _outputs(ws, plan, cap, nb), y, loss)
    for l in range(last, 0, -1):
        _dense_backward_sgd(_delta(ws, plan, cap, l - 1, nb), _weight(params, plan, l),
                            _bias(params, plan, l), _delta(ws, plan, cap, l, nb),
                            _act(ws, plan, cap, l - 1, nb), hidden, plan[l - 1, ACT], lr, decay)
    _first_backward_sgd(ws, params, plan, cap, nb, x, lr, decay)


# ------------------------------------------------------------ entry checks
# Once per public call, O(layers), never per element; constant messages
# (no string formatting in kernels).
def _c(a):
    """The array itself, typed C-contiguous (the caller has checked that it
    is): so the unchecked kernels compile for C-contiguous types only."""
    return a


@overload(_c, jit_options=JIT_OPTIONS)
def _c_typed(a):
    _an_array_typed(a)  # a list or tuple: the error that names it
    if a.layout == "C":  # unchanged, read-only flag included (one specialisation)
        return lambda a: a
    if a.layout == "F":
        # Numba's np.ascontiguousarray copies every 'F'-typed array: predict
        # wrote into a copy of an (n, 1) out made as a row's .T, silently,
        # and a training step on x = row.T allocated a copy (review HBK). An
        # array both F- and C-contiguous has at most one axis longer than 1,
        # so its transpose (typed C) holds the elements in C order: reshaped
        # to the array's shape it is a C-typed view of the same memory.
        return lambda a: a.T.reshape(a.shape)
    return lambda a: np.ascontiguousarray(a)  # 'A', contiguous already: a view, no copy


def _an_array_typed(a):
    """At typing: raise a TypingError naming the argument's type unless ``a``
    is a NumPy array (a list given for x failed inside fastbp's typing)."""
    if not isinstance(a, types.Array):
        raise errors.TypingError(f"the kernels take NumPy arrays for x, y and X"
                                 f" (np.ascontiguousarray(...)); got {a}")


def _ndim_guard(ndims, what):
    """A function that does nothing and fails to compile, with a TypingError
    that says ``what``, unless its argument is a NumPy array of one of the
    ``ndims`` (a wrong one failed deep inside fastbp's typing)."""
    def guard(a):
        pass

    @overload(guard, jit_options=JIT_OPTIONS)
    def guard_typed(a):
        _an_array_typed(a)
        if a.ndim not in ndims:
            raise errors.TypingError(f"{what}; got a {a.ndim}-D array")
        return lambda a: None
    return guard


_a_matrix = _ndim_guard((2,), "the kernels take x and X as 2-D arrays, (rows, n_in): one sample"
                              " as x.reshape(1, -1)")
_labels_or_matrix = _ndim_guard((1, 2), "the kernels take y as a 1-D array of class labels or a"
                                        " 2-D array (rows, n_out)")


# Whether two arrays' memory intersects: intrinsics (fastbp._views), so that
# the checks of the public kernels compile nothing per pair of array types.
_overlap, _overlap2 = _views.overlap, _views.overlap2


_FLOATS = ("float32", "float64")
_a_plan = array_guard("plan must be a network's layout plan (net.plan), a 2-D int64 array", (2,),
                      ("int64",))
_a_params = array_guard("params must be a 1-D float32 or float64 NumPy array (net.params)", (1,),
                        _FLOATS)
_a_ws = array_guard("ws must be a workspace (net.workspace(rows)), a 1-D float32 or float64 NumPy"
                    " array", (1,), _FLOATS)
_a_perm = array_guard("perm must be a 1-D int64 NumPy array", (1,), ("int64",))
_a_hyper = array_guard("hyper must be an optimizer's hyper-parameters (optimizer.hyper), a 1-D"
                       " float64 NumPy array", (1,), ("float64",))
_a_state = array_guard("state must be an optimizer's state, a 2-D array (2, n_params), or (2, 0)"
                       " for plain SGD", (2,))
_an_out = array_guard("out must be a 2-D float32 or float64 NumPy array (X.shape[0], n_out)", (2,),
                     _FLOATS)
_a_reg = array_guard("reg must be a 1-D NumPy array: alpha, then a dropout rate per layer", (1,))
_a_grads = array_guard("grads must be a 1-D float32 or float64 NumPy array with the layout of"
                       " params", (1,), _FLOATS)


# The widest layer a plan may hold, and the most parameters: bounds that keep
# the checks' sums below from overflowing int64 (a hand-made plan whose
# offsets added up only modulo 2**64 passed them, and the kernel behind died
# of a division by zero).
MAX_WIDTH = 2**31 - 1
MAX_PARAMS = 2**61


@jit(**KERNEL_ONLY)
def _check_layers(plan, limit):
    # plan is a layout plan whose layers follow each other, of widths
    # 1..limit, and whose unit and mask offsets add up.
    _a_plan(plan)
    if plan.shape[0] < 1 or plan.shape[1] != PLAN_COLUMNS or not plan.flags.c_contiguous:
        raise ValueError("plan must be a network's layout plan (net.plan)")
    units = 0
    masked = 0
    for l in range(plan.shape[0]):
        if plan[l, ACT] < IDENTITY or plan[l, ACT] > SOFTPLUS:
            raise ValueError("the plan holds an unknown activation code")
        if l == plan.shape[0] - 1 and plan[l, ACT] != IDENTITY:
            # (the output's function is the loss code's; backprop starts from the logits)
            raise ValueError("plan must be a network's layout plan (net.plan): its last row's"
                             " activation must be IDENTITY (the logits)")
        n_in, n_out = plan[l, N_IN], plan[l, N_OUT]
        if (n_in < 1 or n_out < 1 or n_in > limit or n_out > limit
                or (l > 0 and n_in != plan[l - 1, N_OUT]) or plan[l, U_OFF] != units
                or (plan[l, M_OFF] != masked and plan[l, M_OFF] != -1)):
            raise ValueError("plan must be a network's layout plan (net.plan): its offsets do not add up")
        units += n_in
        if plan[l, M_OFF] >= 0:
            masked += n_out


@jit(**KERNEL_ONLY)
def _parameters_of(plan):
    # The parameters a plan checked by _check_layers lays out, its weight and
    # bias offsets checked to add up.
    w = 0
    for l in range(plan.shape[0]):
        n_in, n_out = plan[l, N_IN], plan[l, N_OUT]
        if w > MAX_PARAMS or plan[l, W_OFF] != w or plan[l, B_OFF] != w + n_in * n_out:
            raise ValueError("plan must be a network's layout plan (net.plan): its offsets do not add up")
        w += n_in * n_out + n_out
    return w


@jit(**KERNEL_ONLY)
def _params_fit(params, w):
    # params is the flat buffer of w parameters a plan lays out.
    if not params.flags.c_contiguous:
        raise ValueError("params must be C-contiguous")
    if params.size != w:
        raise ValueError("params has the wrong length for this plan")


@jit(**KERNEL_ONLY)
def _check_plan(params, plan):
    # plan is a layout plan whose offsets add up, and params fits it.
    _check_layers(plan, MAX_WIDTH)
    _a_params(params)
    _params_fit(params, _parameters_of(plan))


@jit(**KERNEL_ONLY)
def _check_net(params, plan, loss):
    # plan is a layout plan whose offsets add up, params fits it, loss is
    # known (named before params: the order of the checks as they were).
    _check_layers(plan, MAX_WIDTH)
    _a_params(params)
    w = _parameters_of(plan)
    if loss < CROSS_ENTROPY or loss > HUBER:
        raise ValueError("unknown loss code")
    _params_fit(params, w)


@jit(**KERNEL_ONLY)
def _check_x(x, plan):
    _a_matrix(x)
    if not x.flags.c_contiguous:
        raise ValueError("x must be C-contiguous (np.ascontiguousarray(x)): not Fortran-ordered,"
                         " not a column slice")
    if x.shape[1] != plan[0, N_IN]:
        raise ValueError("x has the wrong number of columns for this plan")


@jit(**KERNEL_ONLY)
def _check_xy(x, y, plan, loss):
    _check_x(x, plan)
    _labels_or_matrix(y)
    if not y.flags.c_contiguous:
        raise ValueError("y must be C-contiguous (np.ascontiguousarray(y))")
    m = plan[plan.shape[0] - 1, N_OUT]
    if y.ndim == 1:  # class labels: O(rows), as reading them
        if loss != CROSS_ENTROPY or y.shape[0] != x.shape[0]:
            raise ValueError("1-D y holds class labels, one per row of x, for cross-entropy only")
        for i in range(y.shape[0]):
            if not (y[i] >= 0 and y[i] < m and y[i] == np.int64(y[i])):
                raise ValueError("class labels must be whole numbers in 0..n_out-1")
    elif y.shape[0] != x.shape[0] or y.shape[1] != m:
        raise ValueError("y must be (x.shape[0], n_out), or (x.shape[0],) class labels")


@jit(**KERNEL_ONLY)
def _check_ws(ws, plan, rows):
    # ws holds at least max(rows, 1) samples.
    _a_ws(ws)
    if not ws.flags.c_contiguous:
        raise ValueError("ws must be C-contiguous")
    if capacity(ws, plan) < smax(rows, 1):
        raise ValueError("the batch is larger than the workspace's capacity (see net.workspace)")


@jit(**KERNEL_ONLY)
def _check_buffer(grads, params):
    # grads: a flat buffer with the layout of params.
    if not grads.flags.c_contiguous or grads.size != params.size:
        raise ValueError("grads (and scratch) must be C-contiguous with the length of params")


@jit(**KERNEL_ONLY)
def _check_rows(X):
    if X.shape[0] < 1:
        raise ValueError("X must have at least one row")


@jit
def train_step(params, grads, ws, plan, x, y, loss, lr):
    """One SGD step on the batch (x, y): forward, loss, backward, update.

    params, grads are flat (n_params,); ws is a workspace of capacity >= nb;
    x is (nb, n_in), y is (nb, m) float targets, or for cross-entropy (nb,)
    int64 class labels (one-hot rows are accepted too). Returns the batch's mean loss before the update.
    """
    same_x(params, x)
    same_ws(params, ws)
    same_grads(params, grads)
    _check_net(params, plan, loss)
    _check_xy(x, y, plan, loss)
    _check_rows(x)
    _check_ws(ws, plan, x.shape[0])
    _check_buffer(grads, params)
    if (_overlap(params, grads) or _overlap(params, ws) or _overlap(grads, ws)
            or _overlap(params, x) or _overlap(params, y) or _overlap(grads, x)
            or _overlap(grads, y) or _overlap(ws, x) or _overlap(ws, y)
            or _overlap2(params, grads, plan, plan) or _overlap(ws, plan)):
        raise ValueError("params, grads and ws must not overlap each other, x, y or plan")
    return _step(_c(params), _c(grads), _c(ws), _c(plan), _c(x), _c(y), loss, lr)


@jit
def _step(params, grads, ws, plan, x, y, loss, lr):
    params, grads, ws, plan, x, y = borrowed((params, grads, ws, plan, x, y))
    out = _forward_batch(params, ws, plan, x, loss)
    value = _loss_forward(_logits(ws, plan, x.shape[0]), out, y, loss)
    _backward_batch(grads, params, ws, plan, x, y, loss)
    sgd_update(params, grads, lr)
    return value


@jit(inline="always")
def _prefetch_next(src, perm, first, count):
    # The next batch's rows perm[first:first + count] of src (X or Y) on
    # their way to the caches while this batch computes (see prefetch_row):
    # a shuffled epoch over a data set larger than the caches waited for
    # each gathered row (64-32-10 at batch 32 float32, 262,144 rows: 7.8
    # against 6.4 us a step in order).
    for i in range(first, smin(first + count, perm.size)):
        prefetch_row(src, perm[i])


@jit(inline="always")
def _prefetch_csr_next(X, perm, first, count):
    # _prefetch_next for CSR X: the next batch's rows' values and column
    # indices (each row's span read from indptr now; the sparse kernels read
    # them a step later). A shuffled fit on 200,000 x 5000 at 1 %, 5000-32-10,
    # batch 32, float32: 36.6 against 25.2 us a step in order before.
    data, indices, indptr = X[0], X[1], X[2]
    for i in range(first, smin(first + count, perm.size)):
        r = perm[i]
        lo, hi = indptr[r], indptr[r + 1]
        prefetch_span(data, lo, hi)
        prefetch_span(indices, lo, hi)


@jit(inline="always")
def _gather(dst, src, perm, start):
    n, k = dst.shape
    for i in range(n):
        row = perm[start + i]
        for j in range(k):
            dst[i, j] = src[row, j]


# The epoch kernels a fit runs. Compile time is what a new user waits for
# first, and a kernel compiles every branch it holds, so the variant is
# chosen in Python (fastbp.train.choose_epoch) and each stays small: plain
# SGD (the default, the lecture's step) compiles neither the optimizers nor
# dropout. All three take the arguments of train_epoch, already validated
# (they check nothing; ``check_every_step`` is passed explicitly), run the
# same loop and return the same (mean_loss, steps); the tests hold each
# against train_epoch.

@jit
def epoch_sgd(params, grads, state, ws, plan, X, Y, perm, rng, batch_size, shuffled, loss,
              code, hyper, t0, reg, max_steps, check_every_step, hidden, l2):
    """:func:`train_epoch` for plain SGD without dropout (the L2 penalty
    reg[0] is allowed): the update fused into backpropagation; ``grads``,
    ``state``, ``code`` and ``t0`` are not read."""
    params, ws, plan, X, Y, perm = borrowed((params, ws, plan, X, Y, perm))
    n = _rows(X)
    cap = _capacity(ws, plan)
    _order(perm, rng, n, shuffled)
    lr, alpha = hyper[LR], reg[0]
    total, seen, steps = 0.0, 0, 0
    for start in range(0, n, batch_size):
        if steps == max_steps:
            break
        nb = smin(batch_size, n - start)
        xb, yb = _batch(ws, plan, cap, X, Y, perm, start, nb, shuffled)
        value = _batch_loss(params, ws, plan, xb, yb, loss, alpha, hidden, l2)
        if not np.isfinite(value):
            return np.nan, steps
        total += value
        seen += nb
        steps += 1
        _backward_sgd_h(params, ws, plan, xb, yb, loss, lr, 1.0 - lr * (alpha / nb), hidden)
        if check_every_step and not _all_finite(params):
            return np.nan, steps
    return _epoch_loss(params, total, seen), steps


@jit
def epoch_optimizer(params, grads, state, ws, plan, X, Y, perm, rng, batch_size, shuffled, loss,
                    code, hyper, t0, reg, max_steps, check_every_step, hidden, l2):
    """:func:`train_epoch` for an optimizer with state (SGD with momentum or
    weight decay, Adam, AdamW, RMSprop) without dropout: backpropagation
    into ``grads``, the L2 term, then :func:`fastbp.optim.optimizer_step`."""
    params, grads, state, ws, plan, X, Y, perm = \
        borrowed((params, grads, state, ws, plan, X, Y, perm))
    n = _rows(X)
    cap = _capacity(ws, plan)
    _order(perm, rng, n, shuffled)
    alpha = reg[0]
    total, seen, steps = 0.0, 0, 0
    for start in range(0, n, batch_size):
        if steps == max_steps:
            break
        nb = smin(batch_size, n - start)
        xb, yb = _batch(ws, plan, cap, X, Y, perm, start, nb, shuffled)
        value = _batch_loss(params, ws, plan, xb, yb, loss, alpha, hidden, l2)
        if not np.isfinite(value):
            return np.nan, steps
        total += value
        seen += nb
        steps += 1
        _backward_batch_h(grads, params, ws, plan, xb, yb, loss, hidden)
        if alpha != 0:
            _add_penalty_gradient_if(grads, params, plan, alpha / nb, l2)
        _optimizer_step(params, grads, state, hyper, code, t0 + steps)
        if check_every_step and not _all_finite(params):
            return np.nan, steps
    return _epoch_loss(params, total, seen), steps


@jit(inline="always")
def _order(perm, rng, n, shuffled):
    # The epoch's row order: 0..n-1, shuffled when asked. Only perm[:n]: a
    # longer perm's other entries (not row numbers of X) stay out of it.
    for i in range(n):
        perm[i] = i
    if shuffled:
        shuffle(perm[:n], rng)


@jit(inline="always")
def _label_in(v, m):
    """Class label ``v`` as the loss kernels take it, or -1 (no class: the
    row's loss NaN, see ops.cross_entropy_label_row) where it is not in
    0..m-1: labels used in place are checked once, at a call's start, and a
    callback or another process may write them during a fit (review HDU:
    labels of 10**9 written between epochs were read past the logits, and
    the process died)."""
    return v if v >= 0 and v < m else -1


@jit(inline="always")
def _batch(ws, plan, cap, X, Y, perm, start, nb, shuffled):
    # Rows perm[start:start + nb] of (X, Y): dense rows gathered into the
    # workspace when shuffled, else a view of consecutive rows; CSR rows as
    # a selection (perm holds 0..n-1 unshuffled), never densified.
    return _batch_inputs(ws, plan, cap, X, perm, start, nb, shuffled), \
        _batch_targets(ws, plan, cap, Y, perm, start, nb, shuffled)


@jit(**KERNEL_ONLY)
def _batch_targets(ws, plan, cap, Y, perm, start, nb, shuffled):
    # Targets of the batch's rows (as _batch); class labels always copied
    # into region Y as floats, so the loss kernels see one labels type.
    if Y.ndim == 1:
        yb = _labels(ws, plan, cap, nb)
        m = plan[plan.shape[0] - 1, N_OUT]
        for i in range(nb):
            yb[i] = _label_in(Y[perm[start + i] if shuffled else start + i], m)
        if shuffled:
            _prefetch_next(Y, perm, start + nb, nb)
        return yb
    elif shuffled:
        yt = _targets(ws, plan, cap, nb)
        _gather(yt, Y, perm, start)
        _prefetch_next(Y, perm, start + nb, nb)
        return yt
    else:
        return _consecutive_targets(ws, plan, cap, Y, start, nb)


def _consecutive_targets(ws, plan, cap, Y, start, nb):
    """Rows start..start + nb - 1 of 2-D targets in the network's dtype, as
    the shuffled branch of _batch_targets gathers them: a view, or a copy
    into region Y where Y has another dtype (the two branches must type
    alike: int or float32 targets of a float64 network failed to compile)."""


@overload(_consecutive_targets, jit_options=JIT_OPTIONS)
def _consecutive_targets_typed(ws, plan, cap, Y, start, nb):
    if Y.dtype == ws.dtype:
        return lambda ws, plan, cap, Y, start, nb: Y[start:start + nb]

    def copied(ws, plan, cap, Y, start, nb):
        yt = _targets(ws, plan, cap, nb)
        for i in range(nb):
            for j in range(Y.shape[1]):
                yt[i, j] = Y[start + i, j]
        return yt
    return copied


@jit(**KERNEL_ONLY)
def _chunk_targets(ws, plan, cap, Y, start, nb):
    # Targets of rows start..start + nb - 1: a view, or labels copied as in _batch_targets.
    if Y.ndim == 1:
        yb = _labels(ws, plan, cap, nb)
        m = plan[plan.shape[0] - 1, N_OUT]
        for i in range(nb):
            yb[i] = _label_in(Y[start + i], m)
        return yb
    else:
        return Y[start:start + nb]


@jit(inline="always")
def _batch_loss(params, ws, plan, xb, yb, loss, alpha, hidden, l2):
    # Forward pass; the batch's loss *sum* with the L2 term.
    out = _forward(params, ws, plan, xb, loss, hidden, False)
    value = _loss_forward(_logits(ws, plan, _rows(xb)), out, yb, loss) * _rows(xb)
    if alpha != 0:
        value += 0.5 * alpha * _penalty_if(params, plan, l2)
    return value


@jit(inline="always")
def _epoch_loss(params, total, seen):
    # The mean batch loss, or NaN when the last update left non-finite params.
    if not _all_finite(params):
        return np.nan
    return total / smax(seen, 1)


@jit
def train_epoch(params, grads, state, ws, plan, X, Y, perm, rng, batch_size, shuffled, loss,
                code, hyper, t0, reg, max_steps, check_every_step=False):
    """One epoch of minibatch training, in one call.

    X is (n, n_in), Y is (n, m); ``perm`` is an int64 scratch array of length
    at least n (its first n entries are the epoch's order; any others are
    left alone); ``rng`` is a uint64[1] splitmix64 state, advanced when ``shuffled``.
    Without shuffling the batches are consecutive rows in order, the last
    one possibly smaller. ``code``, ``hyper`` and ``state`` are an optimizer's
    (see :mod:`fastbp.optim`), ``t0`` the number of steps it has taken
    (>= 0). Plain SGD (no momentum, no weight decay) fuses the update into
    the backward pass and reads neither ``grads`` nor ``state`` (they may be
    empty, of the network's dtype); the others backpropagate into ``grads``
    (n_params,) and call :func:`fastbp.optim.optimizer_step` with ``state``
    (2, n_params).
    Fused, the L2 term is the factor ``1 - lr alpha / nb`` on the weights:
    in float32 it rounds to a multiple of 2^-24, so a small alpha acts
    larger, or not at all (:meth:`fastbp.MLP.fit` runs float32 plain SGD
    with an L2 term through :func:`epoch_optimizer` instead: the term in
    the gradient, then the step).
    ``reg`` (float64, n_layers + 1) holds the L2 penalty and dropout rates
    (see the module's docstring); with dropout, ``rng`` has a second element,
    the dropout stream. At most ``max_steps`` steps run (all with a negative
    value).

    Returns ``(mean_loss, steps)``: the mean over samples of the batch losses
    (before each update, L2 term included) and the number of updates made.
    Training stops at the first batch whose loss is not finite, before
    updating with it, and the mean loss is then NaN; the state after
    ``steps`` updates is then the first bad one. The parameters are checked
    once, after the last update (one pass per epoch keeps the hot path
    fast): if they are not finite the mean loss is NaN too, and the first
    bad state is at most ``steps`` updates in. With ``check_every_step`` they
    are checked after every update instead, and training stops at the first
    update that leaves them non-finite, so that the state after ``steps``
    updates is exactly the first bad one (what a rollback replays up to).
    """
    _a_perm(perm)
    _a_hyper(hyper)
    _a_state(state)
    _an_rng(rng)
    if X.shape[0] < 1:   # (the message the other whole-network kernels give)
        raise ValueError("X must have at least one row")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if Y.shape[0] != X.shape[0] or perm.size < X.shape[0] or rng.size < 1:
        raise ValueError("Y and perm need X.shape[0] rows, rng one element")
    same_X(params, X)
    same_ws(params, ws)
    same_grads(params, grads)   # (even empty, for plain SGD: every branch is compiled)
    same_state(params, state)
    _check_net(params, plan, loss)
    _check_xy(X, Y, plan, loss)
    if (not perm.flags.c_contiguous or not rng.flags.c_contiguous
            or not hyper.flags.c_contiguous or not reg.flags.c_contiguous):
        raise ValueError("perm, rng, hyper and reg must be C-contiguous")
    if hyper.size < N_HYPER:
        raise ValueError("hyper must hold an optimizer's hyper-parameters (optimizer.hyper)")
    if not known_code(code):
        raise ValueError("code must be an optimizer's code (optimizer.code)")
    if t0 < 0:   # (here, not at the first step: after the shuffle and a gradient)
        raise ValueError("t0, the number of optimizer steps taken before this epoch, must be >= 0")
    if not is_plain_sgd(code, hyper):
        _check_buffer(grads, params)
        if not state.flags.c_contiguous or state.shape[0] != 2 or state.shape[1] != params.size:
            raise ValueError("state must be C-contiguous (2, n_params)")
    _check_ws(ws, plan, smin(batch_size, X.shape[0]))
    if check_reg(plan, reg) and rng.size < 2:
        raise ValueError("with dropout rng needs two elements: the shuffling and the dropout stream")
    # What the epoch writes (params, grads, state, ws, perm, rng) must not
    # share memory with anything else it reads or writes.
    if (_overlap(params, grads) or _overlap(params, state) or _overlap(params, ws)
            or _overlap(grads, state) or _overlap(grads, ws) or _overlap(state, ws)
            or _overlap2(perm, rng, params, grads) or _overlap2(perm, rng, state, ws)
            or _overlap(perm, rng)
            or _overlap2(X, Y, params, grads) or _overlap2(X, Y, state, ws) or _overlap2(X, Y, perm, rng)
            or _overlap2(hyper, reg, params, grads) or _overlap2(hyper, reg, state, ws)
            or _overlap2(hyper, reg, perm, rng)
            # (review HBK: a perm sharing plan's memory reshuffled the plan
            # after it was checked, and the epoch failed in gemm, or read past)
            or _overlap2(perm, rng, plan, plan) or _overlap2(params, grads, plan, plan)
            or _overlap2(state, ws, plan, plan)):
        raise ValueError("params, grads, state, ws, perm and rng must not overlap each other, X, Y,"
                         " hyper, reg or plan")
    return _epoch_dropout_linked(_c(params), _c(grads), _c(state), _c(ws), _c(plan), _c(X), _c(Y),
                                 _c(perm), _c(rng), batch_size, shuffled, loss, code, _c(hyper), t0,
                                 _c(reg), max_steps, check_every_step, RUNTIME, RUNTIME, EVERY_PATH)


# Which of epoch_dropout's paths compile: EVERY_PATH (train_epoch: dropout
# or not, fused SGD or an optimizer, as the arguments say at run time), or
# a fit's own, known when it starts: dropout in a layer, and fused SGD
# (DROPOUT_SGD) or an optimizer step (DROPOUT_STEP). As a constant (the
# twin _epoch_dropout, fastbp._static) the others are pruned before typing:
# a dropout fit's first epoch compiled the plain forward pass, the hidden
# layer's fused step and both backward passes besides its own.
EVERY_PATH, DROPOUT_SGD, DROPOUT_STEP = 0, 1, 2


@jit
def epoch_dropout(params, grads, state, ws, plan, X, Y, perm, rng, batch_size, shuffled, loss,
                  code, hyper, t0, reg, max_steps, check_every_step, hidden, l2, paths):
    """:func:`train_epoch` without its checks, every variant (dropout, L2,
    fused SGD or an optimizer) with ``paths`` EVERY_PATH; a fit with
    dropout runs :func:`epoch_dropout_sgd` or :func:`epoch_dropout_optimizer`,
    this code compiled for its own path only."""
    params, grads, state, ws, plan, X, Y, perm = \
        borrowed((params, grads, state, ws, plan, X, Y, perm))
    fused = is_plain_sgd(code, hyper)
    dropout = _any_dropped(plan, reg)
    drop_rng = rng[rng.size - 1:]
    alpha = reg[0]
    plain = alpha == 0 and not dropout
    n = _rows(X)
    cap = _capacity(ws, plan)
    _order(perm, rng, n, shuffled)
    total = 0.0
    t = t0
    seen = 0
    for start in range(0, n, batch_size):
        if max_steps >= 0 and t - t0 >= max_steps:
            break
        nb = smin(batch_size, n - start)
        xb, yb = _batch(ws, plan, cap, X, Y, perm, start, nb, shuffled)
        if paths != EVERY_PATH or dropout:  # (a fit's own paths: it has dropout)
            out = _forward_dropout(params, ws, plan, xb, loss, reg, drop_rng, 0)
        else:
            out = _forward(params, ws, plan, xb, loss, hidden, False)
        value = _loss_forward(_logits(ws, plan, nb), out, yb, loss) * nb
        if alpha != 0:
            value += 0.5 * alpha * _penalty_if(params, plan, l2)
        if not np.isfinite(value):
            return np.nan, t - t0
        total += value
        seen += nb
        t += 1
        if paths == EVERY_PATH and fused and plain:  # the lecture's step, for small networks
            _backward_sgd_h(params, ws, plan, xb, yb, loss, hyper[LR], 1.0, hidden)
        elif paths == DROPOUT_SGD or (paths == EVERY_PATH and fused):
            _backward(grads, params, ws, plan, xb, yb, loss, reg, alpha, dropout, True, hyper[LR])
        else:
            _backward(grads, params, ws, plan, xb, yb, loss, reg, alpha, dropout, False, 0.0)
            _optimizer_step(params, grads, state, hyper, code, t)
        if check_every_step and not _all_finite(params):
            return np.nan, t - t0
    if not _all_finite(params):
        return np.nan, t - t0
    return total / smax(seen, 1), t - t0


# train_epoch's loop: epoch_dropout's code, optimised once, inside train_epoch
_epoch_dropout_linked = linked(epoch_dropout)
_epoch_dropout = specialising(epoch_dropout, "paths", "epoch_dropout for the dropout fits: with a"
                              " constant ``paths``, only those paths (see fastbp._static).")


@jit
def epoch_dropout_sgd(params, grads, state, ws, plan, X, Y, perm, rng, batch_size, shuffled,
                      loss, code, hyper, t0, reg, max_steps, check_every_step, hidden, l2):
    """The epoch of a fit with dropout by plain SGD (fused into the backward
    pass): :func:`epoch_dropout`'s code, its path only."""
    return _epoch_dropout(params, grads, state, ws, plan, X, Y, perm, rng, batch_size, shuffled,
                          loss, code, hyper, t0, reg, max_steps, check_every_step, hidden, l2,
                          DROPOUT_SGD)


@jit
def epoch_dropout_optimizer(params, grads, state, ws, plan, X, Y, perm, rng, batch_size,
                            shuffled, loss, code, hyper, t0, reg, max_steps, check_every_step,
                            hidden, l2):
    """The epoch of a fit with dropout and an optimizer step (momentum,
    weight decay, Adam, ...): :func:`epoch_dropout`'s code, its path only."""
    return _epoch_dropout(params, grads, state, ws, plan, X, Y, perm, rng, batch_size, shuffled,
                          loss, code, hyper, t0, reg, max_steps, check_every_step, hidden, l2,
                          DROPOUT_STEP)


@jit(fastmath={"reassoc"})
def all_finite(v):
    """True when every element of the flat array v is finite (one pass)."""
    # x * 0 is 0 for finite x and NaN for NaN or inf, and a sum holding a
    # NaN is NaN in any order: the additions are free to reorder (a vector
    # loop; reassoc alone does not let the compiler fold x * 0 to 0).
    zero = v.dtype.type(0.0)
    total = zero
    for i in range(v.size):
        total += v[i] * zero
    return total == zero


@jit
def argmax_rows(out, idx):
    """``idx[i] = out[i].argmax()`` for each row of the 2-D ``out``, as NumPy
    picks it (the first of equal maxima; the first NaN where a row has one),
    without the GIL: for predict's labels, chunk by chunk on the threads of
    :meth:`fastbp.MLP._split`, in place of NumPy's argmax and the store of
    its result (a 1023 x 10 float32 chunk, one thread: 7.7 against 10.4 us,
    the Python around each call included)."""
    m = out.shape[1]
    for i in range(out.shape[0]):
        best = 0
        v = out[i, 0]
        if v == v:
            for j in range(1, m):
                w = out[i, j]
                if w != w:
                    best = j
                    break
                if w > v:
                    v = w
                    best = j
        idx[i] = best


# The kernels' copy: a call once per epoch (or step) rather than the loop
# inlined at each of their call sites, compiled once and linked into them
# (a cold first fit + predict, helper off: 3.28-3.35 against 3.36-3.47 s of CPU).
_all_finite = linked(all_finite)


@jit
def shard_gradient(grads, params, ws, plan, X, Y, perm, start, stop, first_row, loss, reg, rng):
    """Gradient *sum* over the rows ``perm[start:stop]`` of (X, Y), for
    data-parallel training: each process takes its shard of a global batch,
    the sums are added across processes (one allreduce of ``grads``) and
    :func:`distributed_step` divides by the global batch size. Returns the
    shard's loss sum; an empty shard gives zeros. Needs capacity >= stop - start.

    ``reg`` is as in :func:`train_epoch` (its alpha is ignored here: the
    L2 term is added once, after the reduction). With dropout, ``rng`` is the
    dropout stream (uint64[1]), advanced once per dropped layer on every
    process alike, and ``first_row`` the shard's first row within its global
    batch, so the masks are the ones single-process training draws.
    """
    same_X(params, X)
    same_ws(params, ws)
    same_grads(params, grads)
    _a_perm(perm)
    _an_rng(rng)
    _check_net(params, plan, loss)
    _check_xy(X, Y, plan, loss)
    _check_buffer(grads, params)
    dropout = check_reg(plan, reg)
    if dropout and rng.size < 1:
        raise ValueError("with dropout rng needs one element: the dropout stream")
    if (not perm.flags.c_contiguous or not rng.flags.c_contiguous
            or not reg.flags.c_contiguous):
        raise ValueError("perm, rng and reg must be C-contiguous")
    if stop > start:
        _check_ws(ws, plan, stop - start)
        if start < 0 or stop > perm.size:
            raise ValueError("start and stop must be within perm")
        for i in range(start, stop):  # O(rows), as the gather itself
            if perm[i] < 0 or perm[i] >= X.shape[0]:
                raise ValueError("perm[start:stop] must hold row numbers of X")
    elif not ws.flags.c_contiguous:
        raise ValueError("ws must be C-contiguous")
    if (_overlap(grads, ws) or _overlap(grads, rng) or _overlap(ws, rng)
            or _overlap2(grads, ws, params, X) or _overlap2(grads, ws, Y, perm)
            or _overlap2(grads, ws, reg, plan) or _overlap2(rng, rng, params, X)
            or _overlap2(rng, rng, Y, perm) or _overlap2(rng, rng, reg, plan)):
        raise ValueError("grads, ws and rng must not overlap each other, params, X, Y, perm, reg or"
                         " plan")
    return _shard_gradient(_c(grads), _c(params), _c(ws), _c(plan), _c(X), _c(Y), _c(perm), start,
                           stop, first_row, loss, _c(reg), _c(rng))


@jit
def _shard_gradient(grads, params, ws, plan, X, Y, perm, start, stop, first_row, loss, reg, rng):
    grads, params, ws, plan, X, Y, perm, reg, rng = \
        borrowed((grads, params, ws, plan, X, Y, perm, reg, rng))
    dropout = check_reg(plan, reg)
    nb = stop - start
    if nb <= 0:
        if dropout:  # keep the stream in step with the other processes
            for l in range(plan.shape[0]):
                if _dropped(plan, reg, l):
                    rng_next(rng)
        grads[:] = 0
        return 0.0
    cap = _capacity(ws, plan)
    xb, yb = _batch(ws, plan, cap, X, Y, perm, start, nb, True)
    if dropout:
        out = _forward_dropout(params, ws, plan, xb, loss, reg, rng, first_row)
    else:
        out = _forward_batch(params, ws, plan, xb, loss)
    value = _loss_forward(_logits(ws, plan, nb), out, yb, loss) * nb
    _backward(grads, params, ws, plan, xb, yb, loss, reg, 0.0, dropout, False, 0.0)
    w = grads.dtype.type(nb)
    for i in range(grads.size):
        grads[i] *= w
    return value


@jit
def distributed_step(params, grads, state, hyper, code, t, batch, alpha, plan):
    """The update after the allreduce: ``grads`` holds the gradient sum over
    a global batch of ``batch`` samples; divide, add the L2 term
    ``alpha W / batch``, and take optimizer step ``t``. Checks as
    :func:`fastbp.optim.optimizer_step` does, and ``batch >= 1``."""
    same_grads(params, grads)
    same_state(params, state)   # (even empty, for plain SGD)
    check_step(params, grads, state, hyper, code, t)
    if batch < 1:
        raise ValueError("distributed_step: batch, the global batch size, must be >= 1")
    if alpha != 0:
        _check_plan(params, plan)   # (only its last row was: a plan past params wrote past grads)
        if _overlap2(params, grads, plan, plan) or _overlap(state, plan):
            raise ValueError("distributed_step: params, grads and state must not overlap plan")
    inv = grads.dtype.type(1.0 / batch)
    for i in range(grads.size):
        grads[i] *= inv
    if alpha != 0:
        _add_penalty_gradient(grads, params, plan, alpha / batch)
    _optimizer_step(params, grads, state, hyper, code, t)


@jit
def check_reg(plan, reg):
    """Raise ValueError unless ``reg`` fits the plan; True when it asks for dropout."""
    _a_reg(reg)
    last = plan.shape[0] - 1
    if reg.size != last + 2:
        raise ValueError("reg must hold n_layers + 1 values: alpha, then a dropout rate per layer")
    if not (reg[0] >= 0 and np.isfinite(reg[0])):
        raise ValueError("reg[0], the L2 penalty alpha, must be finite and >= 0")
    dropout = False
    for l in range(last + 1):
        rate = reg[1 + l]
        if not (rate >= 0 and rate < 1):
            raise ValueError("dropout rates must be in [0, 1)")
        if rate > 0:
            if l == last or plan[l, M_OFF] < 0:
                raise ValueError("a dropout rate is set for a layer without a mask in the plan")
            dropout = True
    return dropout


@jit
def predict(out, params, ws, plan, X, loss):
    """Outputs (n, m) of the network for X (n, n_in), in chunks of the capacity."""
    _an_out(out)
    same_X(params, X)
    same_ws(params, ws)
    _check_net(params, plan, loss)
    _check_x(X, plan)
    _check_ws(ws, plan, 1)
    if (not out.flags.c_contiguous or out.shape[0] != X.shape[0]
            or out.shape[1] != plan[plan.shape[0] - 1, N_OUT]):
        raise ValueError("out must be C-contiguous (X.shape[0], n_out)")
    if _overlap(out, ws) or _overlap2(out, ws, params, X) or _overlap2(out, ws, plan, plan):
        raise ValueError("out and ws must not overlap each other, params, X or plan")
    _predict(_c(out), _c(params), _c(ws), _c(plan), _c(X), loss, RUNTIME)


@jit
def _predict(out, params, ws, plan, X, loss, hidden):
    out, params, ws, plan, X = borrowed((out, params, ws, plan, X))
    cap = _capacity(ws, plan)
    m = out.shape[1]
    n = _rows(X)
    for start in range(0, n, cap):
        stop = smin(start + cap, n)
        chunk = _forward(params, ws, plan, _rows_of(X, start, stop - start), loss, hidden, True)
        for i in range(stop - start):  # not out[start:stop] = chunk: no broadcasting's error path
            for j in range(m):
                out[start + i, j] = chunk[i, j]


# A model's first predict or evaluate after a cold fit may find these in the
# cache, written by the helper process that fit started (fastbp._ahead).
waits_for_helper(_predict)


@jit
def loss_value(params, ws, plan, X, Y, loss):
    """Mean loss over all of (X, Y), in chunks of the workspace's capacity."""
    same_X(params, X)
    same_ws(params, ws)
    _check_net(params, plan, loss)
    _check_xy(X, Y, plan, loss)
    _check_rows(X)
    _check_ws(ws, plan, 1)
    if _overlap2(ws, ws, params, X) or _overlap2(ws, ws, Y, plan):
        raise ValueError("ws must not overlap params, X, Y or plan")
    p, w, pl = _c(params), _c(ws), _c(plan)
    return _loss_sum(p, w, pl, _c(X), _c(Y), loss, RUNTIME, _outputs(w, pl, _capacity(w, pl), 0)) \
        / _rows(X)


@jit
def _loss_sum(params, ws, plan, X, Y, loss, hidden, out):
    # The loss summed over the rows of (X, Y) (the mean is this over n, as
    # loss_value); with ``out`` of n rows the outputs are written there too, so
    # that metrics need one forward pass, with 0 rows they are not kept.
    params, ws, plan, X, Y, out = borrowed((params, ws, plan, X, Y, out))
    cap = _capacity(ws, plan)
    n = _rows(X)
    m = out.shape[1]
    keep = out.shape[0] != 0
    total = 0.0
    for start in range(0, n, cap):
        nb = smin(cap, n - start)
        chunk = _forward(params, ws, plan, _rows_of(X, start, nb), loss, hidden, True)
        total += _loss_forward(_logits(ws, plan, nb), chunk,
                               _chunk_targets(ws, plan, cap, Y, start, nb), loss) * nb
        if keep:
            for i in range(nb):
                for j in range(m):
                    out[start + i, j] = chunk[i, j]
    return total


waits_for_helper(_loss_sum)


@jit
def gradient(grads, scratch, params, ws, plan, X, Y, loss):
    """Full-batch gradient of the mean loss over (X, Y) by backpropagation.

    Chunks larger data by the workspace's capacity; ``scratch`` (same length
    as ``grads``) holds one chunk's gradient when X has more rows than the
    capacity, and must then not overlap ``grads`` (else it is unused and may
    be ``grads`` itself). Returns the mean loss.
    """
    same_X(params, X)
    same_ws(params, ws)
    same_grads(params, grads)
    same_scratch(params, scratch)
    _check_net(params, plan, loss)
    _check_xy(X, Y, plan, loss)
    _check_rows(X)
    _check_ws(ws, plan, 1)
    _check_buffer(grads, params)
    _check_buffer(scratch, params)
    chunked = X.shape[0] > capacity(ws, plan)
    if chunked and _overlap(grads, scratch):
        raise ValueError("scratch must not overlap grads when X has more rows than ws holds")
    if (_overlap(grads, ws) or _overlap2(grads, ws, params, X) or _overlap2(grads, ws, Y, plan)
            or (chunked and (_overlap(scratch, ws) or _overlap2(scratch, scratch, params, X)
                             or _overlap2(scratch, scratch, Y, plan)))):
        raise ValueError("grads, scratch and ws must not overlap each other, params, X, Y or plan")
    return _gradient(_c(grads), _c(scratch), _c(params), _c(ws), _c(plan), _c(X), _c(Y), loss)


@jit
def _gradient(grads, scratch, params, ws, plan, X, Y, loss):
    grads, scratch, params, ws, plan, X, Y = borrowed((grads, scratch, params, ws, plan, X, Y))
    cap = _capacity(ws, plan)
    n = _rows(X)
    total = 0.0
    grads[:] = 0
    for start in range(0, n, cap):
        nb = smin(cap, n - start)
        xb = _rows_of(X, start, nb)
        yb = _chunk_targets(ws, plan, cap, Y, start, nb)
        out = _forward_batch(params, ws, plan, xb, loss)
        total += _loss_forward(_logits(ws, plan, nb), out, yb, loss) * nb
        target = grads if nb == n else scratch
        _backward_batch(target, params, ws, plan, xb, yb, loss)
        if nb < n:
            w = grads.dtype.type(nb / n)
            for i in range(grads.size):
                grads[i] += w * scratch[i]
    return total / n


@jit
def _objective(params, ws, plan, X, Y, loss, alpha):
    value = _loss_sum(params, ws, plan, X, Y, loss, RUNTIME, _outputs(ws, plan, _capacity(ws, plan), 0)) \
        / _rows(X)
    if alpha != 0:
        value += 0.5 * alpha * _penalty(params, plan) / _rows(X)
    return value


@jit
def numerical_gradient(grads, params, ws, plan, X, Y, loss, eps, alpha):
    """The lecture's naive gradient: one central difference per weight.

    ``grads[i] = (E(p + eps e_i) - E(p - eps e_i)) / (2 eps)``: two forward
    passes over all of (X, Y) for every one of the W parameters, O(W^2) in
    all, against O(W) for backpropagation. ``params`` is restored bitwise.
    E includes the L2 term ``alpha / (2 n) sum |W|^2`` (0 with alpha = 0).
    """
    same_X(params, X)
    same_ws(params, ws)
    same_grads(params, grads)
    _check_net(params, plan, loss)
    _check_xy(X, Y, plan, loss)
    _check_rows(X)
    _check_ws(ws, plan, 1)
    _a_grads(grads)   # (1-D: a (1, n) grads took whole rows, past its end)
    _check_buffer(grads, params)
    if not (eps > 0 and np.isfinite(eps)) or not (alpha >= 0 and np.isfinite(alpha)):
        raise ValueError("eps must be finite and > 0, alpha finite and >= 0")
    if (_overlap(grads, params) or _overlap(grads, ws) or _overlap(params, ws)
            or _overlap2(grads, params, X, Y) or _overlap(ws, X) or _overlap(ws, Y)
            or _overlap2(grads, params, plan, plan) or _overlap(ws, plan)):
        raise ValueError("grads, params and ws must not overlap each other, X, Y or plan")
    _numerical_gradient(_c(grads), _c(params), _c(ws), _c(plan), _c(X), _c(Y), loss, eps, alpha)


@jit
def _numerical_gradient(grads, params, ws, plan, X, Y, loss, eps, alpha):
    grads, params, ws, plan, X, Y = borrowed((grads, params, ws, plan, X, Y))
    h = params.dtype.type(eps)
    for i in range(params.size):  # O(W), before anything is written
        if not np.isfinite(params[i]):
            raise ValueError("params holds a NaN or an infinity: finite differences need finite"
                             " parameters")
        up, down = params.dtype.type(params[i] + h), params.dtype.type(params[i] - h)
        if not (np.isfinite(up) and np.isfinite(down)):
            raise ValueError("eps is too large for the parameters' dtype: p + eps or p - eps"
                             " overflows it")
        if up == down:
            raise ValueError("eps is too small for the parameters' dtype: p + eps and p - eps"
                             " round to the same number")
    # A loss already not finite at p (a NaN or an infinity in X or Y: the
    # kernels do not scan the data) is no matter of eps (review HBK: the
    # message below advised a smaller eps). One pass beside the 2 W.
    if not np.isfinite(_objective(params, ws, plan, X, Y, loss, alpha)):
        raise ValueError("the loss at params is not finite: X or Y holds a NaN or an infinity,"
                         " or the loss overflows at these parameters; finite differences need"
                         " a finite loss")
    # The differences go to grads once all are known: a loss that overflows at
    # some p +- eps (inf - inf, a NaN returned with no word why) is refused
    # with grads as it was. (O(W) memory beside the O(W^2) passes.)
    diffs = np.empty(params.size)
    for i in range(params.size):
        p = params[i]
        params[i] = p + h
        up = _objective(params, ws, plan, X, Y, loss, alpha)
        params[i] = p - h
        down = _objective(params, ws, plan, X, Y, loss, alpha)
        # The step actually taken, after rounding to the buffer's dtype.
        step = np.float64(params.dtype.type(p + h)) - np.float64(params.dtype.type(p - h))
        params[i] = p
        if not (np.isfinite(up) and np.isfinite(down)):
            raise ValueError("the loss at p + eps or p - eps is not finite: eps is too large for"
                             " these parameters, or the loss overflows near them; try a smaller"
                             " eps")
        diffs[i] = (up - down) / step  # (step != 0: checked above)
    for i in range(params.size):
        grads[i] = diffs[i]
