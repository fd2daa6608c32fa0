"""fastbp's compiled kernels, for use from your own ``@numba.njit`` code.

Everything here is a Numba dispatcher compiled with ``cache=True`` and
``nogil=True``; call it from Python or from nopython code. The model class is
a thin shell around these; with them a simulation loop can train a network
without returning to Python (see ``examples/train_inside_numba.py``)::

    net = fastbp.MLP([4, 16, 1], output="identity", dtype="float64")
    params, plan = net.params, net.plan           # flat buffer, layout plan
    grads = np.zeros_like(params)
    ws = net.workspace(32)                        # room for batches of <= 32

    @numba.njit
    def simulate(params, grads, ws, plan, ...):
        ...
        loss = fastbp.kernels.train_step(params, grads, ws, plan, x, y,
                                         fastbp.kernels.MSE, 0.01)

Conventions: arrays are C-contiguous and of the model's dtype (float32 or
float64); ``x`` is ``(nb, n_in)``; ``y`` is ``(nb, n_out)`` float targets, or
for cross-entropy ``(nb,)`` int64 class labels 0..n_out-1 (what ``fit`` uses:
O(n) memory; one-hot rows are still accepted and give the same results bit
for bit, each type compiling its own specialisation on first use); outputs
come first in every signature. ``train_epoch`` with labels copies each
batch's labels into the workspace's target region. Activation and loss
codes are the module's integer constants (see Codes, below). The whole-network kernels here take
dense X; ``fastbp.MLP`` also trains on scipy.sparse X through its internal
kernels (see :mod:`fastbp.network`).

The contract, and what is checked
---------------------------------
- Layout: every array argument is C-contiguous (``np.ascontiguousarray``):
  not Fortran-ordered, not a column slice or a strided view; NumPy arrays,
  not lists or tuples (those fail to compile, with a message saying so,
  in the whole-network kernels and the optimizer steps; ``plan`` int64,
  ``perm`` int64, ``rng`` uint64 and ``state`` 2-D, or the same).
  The float arrays ``x``, ``params``, ``grads``, ``scratch``, ``state`` and
  ``ws`` share one dtype, float32 or float64 (mixing them fails to compile,
  with a message that names the array; an empty ``grads`` or ``state`` too);
  targets may be of any bool, integer, float32 or float64 dtype (the batch
  kernels read them as they are, float64 targets in float64; ``train_epoch``
  and ``shard_gradient``, which gather a batch's rows, take them in the
  network's dtype; Numba types neither float16 nor longdouble), and
  ``predict``'s ``out`` takes the outputs in its own dtype (a float32 ``out``
  rounds a float64 network's).
- Codes: loss and activation codes are this module's integer constants:
  activations ``IDENTITY`` 0, ``SIGMOID`` 1, ``TANH`` 2, ``RELU`` 3,
  ``LEAKY_RELU`` 4, ``ELU`` 5, ``SOFTPLUS`` 6 (and ``SOFTMAX`` 7, an output
  function only); losses ``CROSS_ENTROPY`` 0, ``BINARY_CROSS_ENTROPY`` 1,
  ``MSE`` 2, ``MAE`` 3, ``HUBER`` 4. Optimizer codes are an optimizer's
  ``code`` (:mod:`fastbp.optim`); the whole-network kernels
  and ``optimizer_step`` refuse an unknown code. The leaf kernels take their
  codes unchecked (an unknown loss code acts as Huber, an unknown
  activation as the identity), and their loss kernels read 1-D class labels
  with ``CROSS_ENTROPY`` (softmax) only: with any other loss,
  ``BINARY_CROSS_ENTROPY`` included, a 1-D ``y`` is not read (the loss is
  0 and ``dz`` is left as it was); give a single sigmoid output its 0/1
  targets as ``y.reshape(-1, 1)``.
- Shapes: ``plan`` is a model's ``net.plan``; ``params`` and ``grads`` (and
  ``gradient``'s ``scratch``) are flat with ``net.n_params`` elements;
  ``x``/``X`` has ``n_in`` columns and ``y``/``Y`` is ``(rows of x, n_out)``,
  or ``(rows of x,)`` class labels with the cross-entropy loss (each checked
  to be a whole number in 0..n_out-1: O(rows));
  ``predict``'s ``out`` is ``(rows of X, n_out)``; ``ws`` (from
  ``net.workspace(rows)``) holds the batch: ``capacity(ws, plan) >= nb`` for
  the batch kernels, ``>= 1`` for those that chunk X by it (``predict``,
  ``loss_value``, ``gradient``, ``numerical_gradient``).
- No aliasing: an array a kernel writes (``params`` for the training
  kernels, ``grads``, ``scratch``, ``ws``, ``out``, ``state``, ``perm``,
  ``rng``) shares no memory with any other argument. ``gradient`` writes
  ``scratch`` only when X has more rows than the capacity; otherwise
  ``scratch`` may be ``grads`` itself.
- ``backward_batch`` and ``backward_sgd_batch`` read the activations that the
  last ``forward_batch`` with the same ``ws`` and ``x`` left there.

The whole-network kernels (``train_step``, ``train_epoch``,
``forward_batch``, ``backward_batch``, ``backward_sgd_batch``, ``predict``,
``loss_value``, ``gradient``, ``numerical_gradient``, ``shard_gradient``)
check all of this once at entry, in O(layers) and never per element
(``shard_gradient`` also checks its rows of ``perm``, as it gathers them, and
class labels are checked one by one), and
raise ``ValueError`` before writing anything. A batch of no rows is refused
("X must have at least one row") by all of them but ``predict``, which then
writes nothing, and ``shard_gradient``, for which an empty shard gives a zero
gradient. ``optimizer_step`` and ``distributed_step`` check, in O(1), that
``grads`` has the length of ``params``, ``state`` is ``(2, n_params)`` (it
may be empty for plain SGD without momentum, which reads none), ``hyper``
holds ``fastbp.optim.N_HYPER`` values and ``t >= 1`` (``distributed_step``
also that its global ``batch`` is >= 1, and with ``alpha != 0`` that the plan
is one that ``params`` fits). The plan's accessors ``weight``, ``bias``
and ``mask`` and the L2 kernels ``penalty`` and ``add_penalty_gradient`` check the plan
against ``params`` (``mask``: against ``ws``) in O(layers) too, so that no
view or write reaches past the buffer. The leaf kernels are the
building blocks of those and check nothing per call beyond :func:`gemm`'s
shapes and layout (O(1)): give them C-contiguous views of the shapes their
docstrings state. A workspace is scratch for one call at a time: two threads
must not share one (the model class gives each thread its own). Inside a
``prange`` loop of ``@njit(parallel=True)`` code Numba drops what the body
raises: a refused call there writes nothing and ends its iteration
silently (what it would have returned is never assigned), so make one
serial call with the same shapes and dtypes before the loop.

Leaf kernels (one dense layer, output functions, losses)
--------------------------------------------------------
``dense_forward(out, inp, W, b, act)``, ``dense_backward(dinp, dW, db, dout, inp, W, act_in)``
and their loop-only references ``dense_forward_ref``, ``dense_backward_ref``;
``dense_backward_sgd(dinp, W, b, dout, inp, act_in, lr, decay)`` (backward fused with the
SGD step: ``W = decay W - lr dout^T inp`` as one accumulating GEMM); ``gemm(C, A, B, trans_a,
trans_b, alpha, beta)``;
``bias_act_forward``, ``act_backward``, ``output_forward``, ``loss_forward``,
``loss_backward``, ``sgd_update``, ``rng_next``, ``shuffle``;
``dropout_forward(a, mask, rate, state, first_row)`` and ``dropout_backward(dz, a, mask, rate, act)``
(inverted dropout, the mask holding each unit's factor 0 or 1 / (1 - rate));
``sparse_forward(out, x, W, b, act)``, ``sparse_backward(dW, db, dout, x)`` and
``sparse_backward_sgd(W, b, dout, x, lr, decay)``: the first layer for a CSR batch
``x = (data, indices, indptr, rows, first, n)`` (see :func:`fastbp.ops.sparse_forward`).

Optimizers
----------
``optimizer_step(params, grads, state, hyper, code, t)``: SGD (momentum, Nesterov),
Adam, AdamW, RMSprop over a whole flat buffer (see :mod:`fastbp.optim`).

Whole network
-------------
``train_step``, ``train_epoch``, ``forward_batch``, ``backward_batch``, ``backward_sgd_batch``,
``predict``, ``loss_value``, ``gradient``, ``numerical_gradient``,
``capacity``, ``weight``, ``bias``, ``mask``; ``penalty`` and
``add_penalty_gradient`` (the L2 term); ``check_reg``; ``all_finite``;
``shard_gradient`` and ``distributed_step`` (data-parallel training, see
:mod:`fastbp.distributed`).
``train_epoch(..., t0, reg, max_steps, check_every_step=False)`` takes ``reg``
(float64, n_layers + 1): the L2 penalty alpha, then each layer's dropout rate;
it returns ``(mean_loss, steps)`` and stops early, with a NaN loss, when
training diverges (parameters checked once per epoch, or after every update
with ``check_every_step=True``, so that ``steps`` locates the first bad state).
Pass ``check_every_step`` explicitly, as ``fit`` does: Numba compiles a call
that omits a default argument as a separate specialisation.
(``fit`` runs its unchecked variants ``fastbp.network.epoch_sgd``, ``epoch_optimizer``,
``epoch_dropout_sgd`` or ``epoch_dropout_optimizer``, of the same arguments plus the hidden
activation and whether there is an L2 term as compile-time constants, so a fit compiles
only its own path; a network
of one hidden layer trained in small batches, ``fastbp._columns.epoch_columns``, its
hidden units split between two threads.)
"""
from .network import (add_penalty_gradient, all_finite, backward_batch, distributed_step,
                      shard_gradient, backward_sgd_batch, bias, capacity,
                      check_reg, forward_batch, gradient, loss_value, mask, numerical_gradient,
                      penalty, predict, train_epoch, train_step, weight)
from .optim import optimizer_step
from .ops import (BINARY_CROSS_ENTROPY, CROSS_ENTROPY, ELU, HUBER, IDENTITY, LEAKY_RELU, MAE,
                  MSE, RELU, SIGMOID, SOFTMAX, SOFTPLUS, TANH, act_backward, bias_act_forward,
                  dense_backward, dense_backward_ref, dense_backward_sgd, dense_forward,
                  dense_forward_ref, dropout_backward, dropout_forward, gemm,
                  loss_backward, loss_forward, output_forward, output_of, rng_next, sgd_update,
                  shuffle, sparse_backward, sparse_backward_sgd, sparse_forward)

__all__ = [
    "IDENTITY", "SIGMOID", "TANH", "RELU", "LEAKY_RELU", "ELU", "SOFTPLUS", "SOFTMAX",
    "CROSS_ENTROPY", "BINARY_CROSS_ENTROPY", "MSE", "MAE", "HUBER",
    "dense_forward", "dense_backward", "dense_forward_ref", "dense_backward_ref",
    "dense_backward_sgd", "gemm", "dropout_forward", "dropout_backward",
    "bias_act_forward", "act_backward", "output_forward", "output_of",
    "loss_forward", "loss_backward", "sgd_update", "rng_next", "shuffle",
    "sparse_forward", "sparse_backward", "sparse_backward_sgd",
    "forward_batch", "backward_batch", "backward_sgd_batch", "train_step", "train_epoch", "predict",
    "loss_value", "gradient", "numerical_gradient", "capacity", "weight", "bias",
    "mask", "all_finite", "shard_gradient", "distributed_step", "penalty", "add_penalty_gradient", "check_reg", "optimizer_step",
]
