"""Compile time, guarded structurally: a fit compiles only the kernels of the
path it takes, and no kernel compiles string formatting.

A cold start compiles every kernel a fit touches and every branch those
kernels hold; these tests pin down *what* is compiled (from Numba's compile
events, in a fresh process with an empty cache), never how long it takes.
Timings are in asv_bench/compile_profile.py and asv_bench/benchmarks.
"""
import ast
import inspect
import json
import textwrap

import numba
import numpy as np
import pytest

import fastbp
from fastbp import _fastmath, network, ops, optim
from fastbp._jit import matrix, jit
from fastbp._static import static
from fastbp.train import _l2, choose_epoch

from compile_events import compiled_by

# A fresh process, empty cache: which functions does each step compile?
_STEPS = """
    import numpy as np
    import fastbp
    X = np.random.default_rng(0).normal(size=(40, 4))
    y = (X[:, 0] > 0).astype(int)
    net = fastbp.MLP([4, 8, 2], seed=0)
    step[0] = "sgd"
    net.fit(X, y, epochs=2, batch_size=8, lr=0.1, verbose=0)
    net.predict(X)
    step[0] = "adam"
    net.fit(X, y, epochs=1, batch_size=8, optimizer="adam", verbose=0)
    step[0] = "sparse"
    import scipy.sparse as sp
    net.fit(sp.csr_matrix(X), y, epochs=1, batch_size=8, lr=0.1, optimizer="sgd", verbose=0)
    step[0] = "l2"
    net.alpha = 0.1
    net.fit(X, y, epochs=1, batch_size=8, optimizer="adam", verbose=0)
    # float64: nothing shared with the steps above
    drop = fastbp.MLP([4, 8, 2], seed=0, dropout=0.2, dtype="float64")
    step[0] = "dropout adam"
    drop.fit(X, y, epochs=1, batch_size=8, optimizer="adam", verbose=0)
    step[0] = "dropout sgd"
    drop.fit(X, y, epochs=1, batch_size=8, lr=0.1, optimizer="sgd", verbose=0)
"""


@pytest.fixture(scope="module")
def _cold(tmp_path_factory):
    wrapped, emitted = {}, {}
    compiled = compiled_by(_STEPS, tmp_path_factory.mktemp("numba_cache"), wrapped=wrapped,
                           emitted=emitted)
    return compiled, wrapped, emitted


@pytest.fixture(scope="module")
def cold_compiles(_cold):
    return _cold[0]


@pytest.fixture(scope="module")
def cold_wrapped(_cold):
    """Step: the compilations among cold_compiles that built a CPython wrapper."""
    return _cold[1]


@pytest.fixture(scope="module")
def cold_emitted(_cold):
    """Step: the code libraries made machine code (named by their function)."""
    return {step: set(names) for step, names in _cold[2].items()}


def _fastbp(names):
    return {n.removeprefix("fastbp.") for n in names if n.startswith("fastbp.")}


# What plain SGD without dropout needs: the epoch loop, forward, loss,
# the fused backward and update, shuffling, and the inference kernel.
PLAIN_SGD = {
    "network.epoch_sgd", "network._predict",
    # no L2 term (alpha = 0): the L2 loss term is a constant 0.0, penalty is
    # not compiled
    "network._penalty_if_typed.<locals>.without",
    # the model's own activation (tanh), output function (softmax, code 7) and
    # loss (cross-entropy, code 0) only: the codes are compile-time constants
    # (fastbp._static), and the output layer's identity
    "ops.bias_act_forward__act_2", "ops.act_backward__act_2",
    "ops.bias_act_forward__act_0", "network._output_layer_act_typed.<locals>.identity",
    # the output layer's product: BLAS in training, the narrow loop where it
    # pays at inference (fastbp._narrow), both inlined
    "network._output_product_typed.<locals>.blas",
    "network._output_product_typed.<locals>.narrow_first",
    # and the first layer's, which is the output layer in a network without
    # hidden layers: the loop only at inference, for dense rows
    "network._first_layer_product_typed.<locals>.plain",
    "network._first_layer_product_typed.<locals>.narrow_first",
    "ops.output_forward__act_7", "ops.loss_forward__loss_0", "ops.loss_backward__loss_0",
    # the dense side of the dense-or-CSR first layer: the epoch's, for rows
    # with a flag saying whether the first layer is stored transposed
    # (fastbp.train.dense_transposes), and predict's; and the class labels
    # (softmax targets) copied into the workspace batch by batch
    "network._rows_typed.<locals>.dense", "network._rows_of_typed.<locals>.dense",
    "network._first_product_typed.<locals>.dense",
    "network._rows_typed.<locals>.dense_t", "network._batch_inputs_typed.<locals>.dense_t",
    "network._first_product_typed.<locals>.dense_t",
    "network._first_weight_sgd_typed.<locals>.dense_t", "network._batch_targets",
    # the bias step's column sums in registers (narrow layers)
    "ops.column_sums",
    # the finiteness check of the parameters, once per epoch: linked, not
    # inlined at each of its call sites
    "network.all_finite",
}
# The layers in between (the forward and backward passes, one dense layer)
# are inlined into the epoch and inference kernels: each level compiled as a
# kernel of its own had its callees' machine code optimised again at every
# level above it.
INLINED = {"network._forward_batch", "network._backward_sgd", "network._backward_batch",
           "ops.dense_forward", "ops.dense_backward", "ops.dense_backward_sgd", "network._gather",
           # small loops, each a compile of its own for less than it costs
           "network._sum_squares", "ops.shuffle", "ops.rng_next",
           # exp and tanh in the model's precision, bound by name in the
           # specialised leaves (fastbp._static.bound): not the overloads that
           # choose the precision, each a function of its own
           "_fastmath._exp.<locals>.<lambda>", "_fastmath._tanh.<locals>.<lambda>",
           "_fastmath.exp32", "_fastmath.exp64", "_fastmath.tanh32", "_fastmath.tanh64"}


def test_plain_sgd_fit_compiles_only_its_path(cold_compiles):
    compiled = _fastbp(cold_compiles["sgd"])
    # The exact set, so that a new kernel on this path is a deliberate change.
    assert compiled == PLAIN_SGD, (sorted(compiled - PLAIN_SGD), sorted(PLAIN_SGD - compiled))
    # Each kernel compiles once: no second specialisation for a literal argument.
    fastbp_compiles = [n for n in cold_compiles["sgd"] if n.startswith("fastbp.")]
    assert len(fastbp_compiles) == len(compiled), sorted(fastbp_compiles)
    assert not compiled & INLINED, sorted(compiled & INLINED)
    # min and max are fastbp._fastmath's intrinsics: Numba's builtins compile
    # a function per argument type
    assert not [n for n in cold_compiles["sgd"] if n.startswith("numba.cpython.builtins")]


def test_only_the_kernels_python_calls_get_a_python_wrapper(cold_compiles, cold_wrapped):
    """Numba builds a CPython wrapper (and a C one) for every function it
    compiles unless told not to; a callee's code is linked into its caller
    and never entered through them. The overloads' bodies and the helpers
    only kernels call are compiled without (fastbp._jit.KERNEL_ONLY)."""
    wrapped = {step: set(_fastbp(names)) for step, names in cold_wrapped.items()}
    assert wrapped["sgd"] == {"network.epoch_sgd", "network._predict"}, sorted(wrapped["sgd"])
    assert wrapped["adam"] == {"network.epoch_optimizer"}, sorted(wrapped["adam"])
    # the rest of the fit's path compiled without one
    assert set(_fastbp(cold_compiles["sgd"])) - wrapped["sgd"] == \
        PLAIN_SGD - {"network.epoch_sgd", "network._predict"}


def _qualname(name):
    # "fastbp.network._rows_typed.<locals>.dense" -> "_rows_typed.<locals>.dense"
    return name.split(".", 2)[2]


def test_functions_only_kernels_call_are_not_made_machine_code_alone(cold_compiles, cold_wrapped,
                                                                    cold_emitted):
    """Their code is linked into each kernel calling them, which LLVM
    optimises and makes machine code as a whole; Numba optimised and emitted
    each of them alone too, for nothing (fastbp._jit's link-only library)."""
    emitted = cold_emitted
    # act_grad's specialised bodies (act_backward__act_<code>) are the one
    # exception, optimised alone on purpose (fastbp._static, optimised_alone:
    # inside a large kernel LLVM left their pass scalar).
    alone = {n for n in emitted["sgd"] if n.startswith("act_backward__act_")}
    # plain SGD: machine code for the two kernels Python calls, and Numba's runtime
    assert alone and emitted["sgd"] - alone == {"epoch_sgd", "_predict", "nrt"}, \
        sorted(emitted["sgd"])
    for step, names in cold_compiles.items():
        ours = {n for n in names if n.startswith("fastbp.")}
        called = {n for n in cold_wrapped.get(step, ()) if n.startswith("fastbp.")}
        assert {_qualname(n) for n in called} <= emitted[step], (step, sorted(emitted[step]))
        leaves = {_qualname(n) for n in ours - called}
        leaves = {n for n in leaves if not n.startswith("act_backward__act_")}
        if step.startswith("dropout"):  # dropout_backward's act_grad takes its code at
            leaves.discard("generic")  # run time: act_grad's fallback, optimised alone too
        assert leaves and not leaves & emitted[step], (step, sorted(leaves & emitted[step]))


def test_a_cached_link_only_function_serves_a_later_kernel(tmp_path):
    """A link-only function is cached as LLVM bitcode (no machine code of its
    own to save): a later process compiling another kernel that calls it
    loads it from there, and trains exactly as a process compiling it all."""
    fit = """
        import json
        import numpy as np
        import fastbp
        X = np.random.default_rng(1).normal(size=(48, 5))
        y = (X[:, 1] > 0).astype(int)
        net = fastbp.MLP([5, 6, 2], seed=3)
        step[0] = "{step}"
        net.fit(X, y, epochs=2, batch_size=16, optimizer="{optimizer}", verbose=0)
        with open(r"{out}", "w") as fh:
            json.dump(net.params.tolist(), fh)
    """
    shared, fresh = tmp_path / "shared", tmp_path / "fresh"
    shared.mkdir(), fresh.mkdir()
    first = compiled_by(fit.format(step="sgd", optimizer="sgd", out=tmp_path / "sgd.json"), shared)
    assert "fastbp.network._batch_targets" in first["sgd"], first["sgd"]
    later = compiled_by(fit.format(step="adam", optimizer="adam", out=tmp_path / "a.json"), shared)
    assert "fastbp.network.epoch_optimizer" in later["adam"], later["adam"]
    assert "fastbp.network._batch_targets" not in later["adam"], later["adam"]  # loaded
    alone = compiled_by(fit.format(step="adam", optimizer="adam", out=tmp_path / "b.json"), fresh)
    assert "fastbp.network._batch_targets" in alone["adam"], alone["adam"]
    with open(tmp_path / "a.json") as a, open(tmp_path / "b.json") as b:
        assert json.load(a) == json.load(b)


def test_train_epoch_makes_no_machine_code_of_the_epoch_it_calls(tmp_path):
    """The public train_epoch is its checks and the general epoch loop
    (network.epoch_dropout's source), linked in as code to optimise once
    inside train_epoch: the loop compiled as a kernel of its own was
    optimised and made machine code alone first, for nothing."""
    script = """
        import numpy as np
        import fastbp
        net = fastbp.MLP([3, 2], output="identity", dtype="float64", seed=0)
        opt = fastbp.SGD(lr=0.1)
        step[0] = "train_epoch"
        fastbp.kernels.train_epoch(net.params, np.zeros(0), np.zeros((2, 0)), net.workspace(4),
                                   net.plan, np.ones((6, 3)), np.zeros((6, 2)),
                                   np.empty(6, np.int64), np.zeros(1, np.uint64), 4, True,
                                   fastbp.kernels.MSE, opt.code, opt.hyper, 0, np.zeros(2), -1)
    """
    emitted = {}
    compiled = compiled_by(script, tmp_path, emitted=emitted)
    assert "fastbp.network.epoch_dropout" in compiled["train_epoch"]
    assert "train_epoch" in emitted["train_epoch"]
    assert "epoch_dropout" not in emitted["train_epoch"], sorted(emitted["train_epoch"])


def test_an_optimizer_fit_adds_only_the_optimizer_path(cold_compiles):
    added = _fastbp(cold_compiles["adam"])
    assert added == {"network.epoch_optimizer", "network._add_penalty_gradient_if_typed.<locals>.without",
                     "optim.optimizer_step__code_1",  # Adam's branch only
                     "network._first_weight_grad_typed.<locals>.dense_t"}, sorted(added)
    # Dropout is compiled only by a model that has it.
    for step, names in cold_compiles.items():
        if not step.startswith("dropout"):
            assert not any("dropout" in n for n in names), names


def test_a_dropout_fit_compiles_only_its_own_path(cold_compiles):
    """network.epoch_dropout holds every path (train_epoch's); a fit with
    dropout runs its code for its own paths only (a constant ``paths``,
    fastbp._static). An Adam fit compiles no SGD step and none of the plain
    forward pass's pieces, and the backward pass once: with ``dropout``
    typed from a literal False, Numba compiled it for the constant too.
    Plain SGD then adds only its fused backward: no optimizer step."""
    adam = _fastbp(cold_compiles["dropout adam"])
    assert {"network.epoch_dropout_optimizer", "network.epoch_dropout__paths_2",
            "network._forward_dropout", "optim.optimizer_step__code_1"} <= adam, sorted(adam)
    assert not {"network.epoch_dropout", "optim.optimizer_step__code_0",
                "network._output_product_typed.<locals>.blas",
                "network._first_layer_product_typed.<locals>.plain"} & adam, sorted(adam)
    assert cold_compiles["dropout adam"].count("fastbp.network._backward") == 1
    sgd = _fastbp(cold_compiles["dropout sgd"])
    assert sgd == {"network.epoch_dropout_sgd", "network.epoch_dropout__paths_1",
                   "network._backward", "optim.is_plain_sgd"}, sorted(sgd)
    assert cold_compiles["dropout sgd"].count("fastbp.network._backward") == 1


def test_the_l2_kernels_compile_only_for_a_fit_with_l2(cold_compiles):
    """Without an L2 term (alpha = 0, the default) the epoch kernels get
    static(NO_L2) and compile neither penalty kernel; a fit with alpha > 0
    compiles both, in a second specialisation of its epoch kernel."""
    for step in ("sgd", "adam", "sparse"):
        assert not {"fastbp.network._penalty", "fastbp.network._add_penalty_gradient"} \
            & set(cold_compiles[step]), cold_compiles[step]
    added = _fastbp(cold_compiles["l2"])
    assert added == {"network.epoch_optimizer", "network._penalty", "network._add_penalty_gradient",
                     "network._penalty_if_typed.<locals>.with_l2",
                     "network._add_penalty_gradient_if_typed.<locals>.with_l2"}, sorted(added)


def test_sparse_kernels_compile_only_for_a_sparse_input(cold_compiles):
    """A dense fit compiles no sparse kernel; a sparse X compiles the CSR
    side of the first layer (and the kernels that carry it), no dense gather.
    The fit runs its epochs with the first layer stored transposed
    (fastbp.train.first_layer_transposed), so it compiles those kernels, not
    the ones on W (which predict, loss and gradient on a sparse X use)."""
    for step in ("sgd", "adam"):
        assert not any("sparse" in n for n in cold_compiles[step]), cold_compiles[step]
    added = _fastbp(cold_compiles["sparse"])
    assert {"ops.sparse_product_t", "ops.sparse_weight_sgd_t",
            "network._first_product_typed.<locals>.sparse_t"} <= added, sorted(added)
    assert not {"ops.sparse_product", "ops.sparse_weight_sgd"} & added, sorted(added)
    assert not any(n.endswith(".dense") or n == "network._gather" for n in added), sorted(added)


def test_no_fit_compiles_string_formatting(cold_compiles):
    """Error paths that format their message (reshape's shape report, a
    broadcast's, str()/repr() in a kernel) compiled Numba's whole unicode
    library into every cold start: seconds for messages never shown."""
    for step, names in cold_compiles.items():
        for name in names:
            assert name.startswith(("fastbp.", "numba.cpython.builtins.ol_min",
                                    "numba.cpython.builtins.ol_max")), (step, name)


def _kernels():
    """Every Numba dispatcher defined in fastbp's modules, with its module."""
    import fastbp.landscape
    from fastbp import _sklearn_kernels, _weighted
    found = []
    for module in (network, ops, optim, _fastmath, fastbp.landscape, _weighted, _sklearn_kernels):
        for name, obj in vars(module).items():
            if isinstance(obj, numba.core.registry.CPUDispatcher) \
                    and obj.py_func.__module__ == module.__name__:
                found.append((f"{module.__name__}.{name}", obj.py_func))
    return found


def _string_work(func):
    """The string-building constructs in func's source: f-strings, str(),
    repr(), format(), '%' on a string, .format() and .join()."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            found.append("f-string")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("str", "repr", "format"):
            found.append(node.func.id + "()")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in ("format", "join"):
            found.append("." + node.func.attr + "()")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) \
                and isinstance(node.left, ast.Constant) and isinstance(node.left.value, str):
            found.append("% formatting")
    return found


def test_no_kernel_formats_strings():
    kernels = _kernels()
    assert len(kernels) > 40  # the scan sees the kernels
    offenders = {name: work for name, func in kernels if (work := _string_work(func))}
    assert offenders == {}


def _slice_assignments(func):
    """The assignments of anything but a constant into a slice in func's
    source: a[:] = b, a[i:j] = c * d, a[:, k] += c (a[:] = 0 is fine)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    found = []
    for node in ast.walk(tree):
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AugAssign) else []
        constant = isinstance(getattr(node, "value", None), ast.Constant)
        for target in targets:
            if isinstance(target, ast.Subscript) and not constant:
                index = target.slice.elts if isinstance(target.slice, ast.Tuple) else [target.slice]
                if any(isinstance(part, ast.Slice) for part in index):
                    found.append(ast.unparse(target))
    return found


def test_no_kernel_assigns_into_a_slice():
    """Numba compiles an array assigned into a slice through its
    broadcasting setitem, on every cold start that compiles the kernel:
    2.5-3.4 s for ``a[:] = b`` (``relayout`` took 3.0 s to compile with
    one, 0.6 s with a loop; ``a[:] = 0`` costs what the loop costs).
    Kernels write the loop."""
    offenders = {name: found for name, func in _kernels() if (found := _slice_assignments(func))}
    assert offenders == {}


def test_the_slice_scan_finds_slice_assignments():
    def bad(a, b, i):
        a[:] = b
        a[i:, 0] += b[0]
        a[:] = 0  # a constant: fine
        a[i] = b  # an element: fine
        return a[:i]
    assert _slice_assignments(bad) == ["a[:]", "a[i:, 0]"]


def test_the_string_scan_finds_formatting():
    def bad(x, n):
        if n < 0:
            raise ValueError(f"n must be >= 0; got {n}")
        return str(x) + "%d" % n
    assert sorted(_string_work(bad)) == ["% formatting", "f-string", "str()"]


# ------------------------------------------------------------- the variants
def _epoch_args(net, X, y, optimizer, batch, shuffled, max_steps=-1):
    Xc, Yc = net._data(X, y)
    if optimizer.fused:
        grads, state = net.params[:0], np.zeros((2, 0), dtype=net.dtype)
    else:
        grads, state = np.zeros_like(net.params), np.zeros((2, net.n_params), net.dtype)
    return (net.params, grads, state, net.workspace(batch), net.plan, Xc, Yc,
            np.empty(len(X), np.int64), net._rng, batch, shuffled, net._loss_code, optimizer.code,
            optimizer.hyper, 3, net._reg, max_steps, False)


def _as_fit_calls(net, args):
    """The arguments of train_epoch as fit passes them to its kernel: the
    loss, the optimizer, the hidden activation and the presence of an L2
    term as compile-time constants."""
    loss, hidden = net._kernel_codes
    return args[:11] + (loss, static(args[12])) + args[13:] + (hidden, _l2(net))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shuffled", [True, False])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("optimizer", [fastbp.SGD(lr=0.1), fastbp.SGD(lr=0.1, momentum=0.9),
                                       fastbp.Adam(lr=0.01)], ids=["sgd", "momentum", "adam"])
@pytest.mark.parametrize("activation", [["tanh", "relu"], "relu"], ids=["mixed", "one"])
def test_each_variant_equals_train_epoch_bitwise(dtype, shuffled, alpha, optimizer, activation):
    """The kernel fit chooses gives what the general train_epoch gives, bit
    for bit, on several epochs (state carried over), partial last batch included."""
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(37, 5)), rng.integers(0, 3, size=37)
    kernel = choose_epoch(optimizer.fused, False)
    assert kernel is (network.epoch_sgd if optimizer.fused else network.epoch_optimizer)
    nets = [fastbp.MLP([5, 7, 6, 3], activation=activation, dtype=dtype, seed=4,
                       alpha=alpha) for _ in range(2)]
    args = [_epoch_args(net, X, y, optimizer, 8, shuffled) for net in nets]
    # the specialised kernels (constant codes) against the general one (codes from the plan)
    assert (nets[0]._kernel_codes[1] == network.RUNTIME) == (activation != "relu")
    for _ in range(3):
        got = kernel(*_as_fit_calls(nets[0], args[0]))
        want = network.train_epoch(*args[1])
        assert got == want
        np.testing.assert_array_equal(nets[0].params, nets[1].params)
        np.testing.assert_array_equal(args[0][2], args[1][2])  # optimizer state
        np.testing.assert_array_equal(nets[0]._rng, nets[1]._rng)
    assert got[1] == 5 and np.isfinite(got[0])


@pytest.mark.parametrize("fused", [True, False])
def test_variants_stop_like_train_epoch(fused):
    """max_steps and divergence: the same steps, the same NaN, the same params."""
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(20, 3)) * 50, rng.normal(size=20) * 1e3
    optimizer = fastbp.SGD(lr=5.0) if fused else fastbp.SGD(lr=5.0, momentum=0.5)
    kernel = choose_epoch(fused, False)
    for max_steps in (2, -1):
        nets = [fastbp.MLP([3, 6, 1], activation="relu", output="identity", dtype="float64",
                           seed=2) for _ in range(2)]
        args = [_epoch_args(net, X, y, optimizer, 4, False, max_steps) for net in nets]
        results = []
        for _ in range(40):
            got, want = kernel(*_as_fit_calls(nets[0], args[0])), network.train_epoch(*args[1])
            assert got[1] == want[1] and (got[0] == want[0] or np.isnan(got[0]) and np.isnan(want[0]))
            np.testing.assert_array_equal(nets[0].params, nets[1].params)
            results.append(got)
        if max_steps == 2:
            assert all(steps == 2 for _, steps in results[:1])
        else:
            assert any(np.isnan(loss) for loss, _ in results)  # it did diverge


def test_choose_epoch():
    assert choose_epoch(True, False) is network.epoch_sgd
    assert choose_epoch(False, False) is network.epoch_optimizer
    assert choose_epoch(True, True) is network.epoch_dropout_sgd
    assert choose_epoch(False, True) is network.epoch_dropout_optimizer


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("optimizer", [fastbp.SGD(lr=0.1), fastbp.SGD(lr=0.1, momentum=0.9),
                                       fastbp.Adam(lr=0.01)], ids=["sgd", "momentum", "adam"])
def test_dropout_fit_kernels_equal_every_path_bitwise(optimizer, weighted):
    """A dropout fit's kernel, its own paths compiled, gives what the code
    of every path gives (train_epoch; epoch_weighted with EVERY_PATH and
    run-time codes), bit for bit over epochs: loss, steps, parameters,
    optimizer state, both random streams; L2 on, a partial last batch."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(37, 5)), rng.integers(0, 3, size=37)
    sw = rng.uniform(0.5, 2.0, size=37)
    nets = [fastbp.MLP([5, 7, 6, 3], dtype="float32", seed=4, alpha=0.1, dropout=[0.3, 0.2])
            for _ in range(2)]
    args = [_epoch_args(net, X, y, optimizer, 8, True) for net in nets]
    kernel = choose_epoch(optimizer.fused, True)
    assert kernel is (network.epoch_dropout_sgd if optimizer.fused
                      else network.epoch_dropout_optimizer)
    if weighted:
        from fastbp import _weighted
        kernel = {network.epoch_dropout_sgd: _weighted.epoch_weighted_dropout_sgd,
                  network.epoch_dropout_optimizer: _weighted.epoch_weighted_dropout_optimizer}[kernel]
        extra = (sw, np.empty(8))

        def every(*a):
            return _weighted.epoch_weighted(*a[:7], *extra, *a[7:], network.RUNTIME,
                                            network.RUNTIME, network.EVERY_PATH)

        def own(*a):
            return kernel(*_insert(_as_fit_calls(nets[0], a), extra))
    else:
        every = network.train_epoch

        def own(*a):
            return kernel(*_as_fit_calls(nets[0], a))
    for _ in range(3):
        got, want = own(*args[0]), every(*args[1])
        assert got == want and np.isfinite(got[0]) and got[1] == 5
        np.testing.assert_array_equal(nets[0].params, nets[1].params)
        np.testing.assert_array_equal(args[0][2], args[1][2])  # optimizer state
        np.testing.assert_array_equal(nets[0]._rng, nets[1]._rng)


def _insert(args, extra):
    """train_epoch's arguments with the weights and their scratch after Y."""
    return args[:7] + extra + args[7:]


# --------------------------------------------------------------- the view
@jit
def _view(flat, start, rows, cols):
    return matrix(flat, start, rows, cols)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matrix_is_the_reshaped_slice_sharing_memory(dtype):
    flat = np.arange(30, dtype=dtype)
    view = _view(flat, 4, 5, 3)
    np.testing.assert_array_equal(view, flat[4:19].reshape(5, 3))
    assert view.flags.c_contiguous and np.shares_memory(view, flat)
    view[1, 2] = -1
    assert flat[4 + 1 * 3 + 2] == -1
    assert _view(flat, 30, 0, 3).shape == (0, 3)
    frozen = flat.copy()
    frozen.setflags(write=False)
    assert not _view(frozen, 0, 2, 2).flags.writeable  # read-only stays read-only


def test_public_views_refuse_what_the_buffers_do_not_hold():
    """weight and mask are unchecked views inside the kernels; called from
    outside they check first, so a wrong plan cannot read past a buffer."""
    net = fastbp.MLP([3, 4, 2], dtype="float64", seed=0, dropout=0.5)
    W = fastbp.kernels.weight(net.params, net.plan, 1)
    np.testing.assert_array_equal(W, net.weights[1])
    assert np.shares_memory(W, net.params)
    ws = net.workspace(4)
    assert fastbp.kernels.mask(ws, net.plan, 0, 4).shape == (4, 4)
    with pytest.raises(ValueError, match="params has the wrong length for this plan"):
        fastbp.kernels.weight(net.params[:5], net.plan, 1)
    with pytest.raises(ValueError, match="no such layer"):
        fastbp.kernels.weight(net.params, net.plan, 2)
    b = fastbp.kernels.bias(net.params, net.plan, 1)
    np.testing.assert_array_equal(b, net.biases[1])
    assert np.shares_memory(b, net.params)
    for l in (-1, 2):   # (an unchecked view read past the buffer: a crash, in review)
        with pytest.raises(ValueError, match="no such layer"):
            fastbp.kernels.bias(net.params, net.plan, l)
    with pytest.raises(ValueError, match="params has the wrong length for this plan"):
        fastbp.kernels.bias(net.params[:-1], net.plan, 1)
    with pytest.raises(ValueError, match="no dropout mask"):
        fastbp.kernels.mask(ws, net.plan, 1, 2)  # the output layer has none
    with pytest.raises(ValueError, match="capacity"):
        fastbp.kernels.mask(ws, net.plan, 0, 5)
