"""Compile only the branch a fit takes: codes as compile-time constants.

A leaf kernel such as :func:`fastbp.ops.loss_forward` branches on a code
(the loss, the activation, the optimizer). Numba compiles every branch of a
kernel, and LLVM then optimises each again in every kernel that calls it,
so a first fit paid for five losses, three output functions and four
optimizers to use one of each. Here the code can be a compile-time constant:

- :func:`static` wraps a code on the Python side (like JAX's static
  arguments): Numba types it as a literal, ``Literal[int](code)``, and
  compiles the kernel that receives it for that value (a cache entry per
  value). Passing one costs the call about 0.6 µs, so only the per-epoch and
  per-batch-chunk kernels take it.
- :func:`specialising` makes an internal twin of a leaf kernel: called with a
  literal code, it compiles the kernel's own source with that argument bound
  as a constant, so Numba prunes the other branches before typing them;
  called with a run-time code, it calls the kernel itself. The source is the
  kernel's, one copy: nothing to keep in step.
"""
import ast
import inspect
import textwrap

from numba import types
from numba.extending import overload

from ._jit import KERNEL_ONLY, linked

# The options of fastbp's kernels (see fastbp._jit) for the specialised
# bodies and the other overloads, which Numba compiles as part of the kernel
# calling them (so they need no wrappers: fastbp._jit.KERNEL_ONLY).
JIT_OPTIONS = {"nogil": True, "error_model": "numpy", **KERNEL_ONLY}


class Static:
    """An int that Numba types as a compile-time constant (``Literal[int]``)."""

    __slots__ = ("value", "_numba_type_")

    def __init__(self, value):
        self.value = int(value)
        self._numba_type_ = types.IntegerLiteral(self.value)

    def __int__(self):
        return self.value

    __index__ = __int__

    def __eq__(self, other):
        return self.value == other

    def __hash__(self):
        return hash(self.value)

    def __repr__(self):
        return f"static({self.value})"

    def __reduce__(self):   # (pickle protocols 0 and 1 refused a __slots__ class without it)
        return static, (self.value,)


_statics = {}


def static(value):
    """``value`` (an int code) as a compile-time constant argument."""
    value = int(value)
    if value not in _statics:
        _statics[value] = Static(value)
    return _statics[value]


def bound(kernel, name, value, rename=None, extra=(), dtype=None):
    """``kernel``'s Python function, compiled from its own source with the
    argument ``name`` fixed to ``value``: the parameter is renamed (to
    ``rename``, else ``_name``) and ``name`` becomes a global constant of the
    new function, which Numba folds, pruning the branches it rules out.
    ``extra`` names parameters to append (unused; see :func:`specialising`).
    With ``dtype`` (the Numba type of the kernel's floats: its arrays'
    dtype), the kernel's ``exp`` and ``tanh`` (fastbp._fastmath) are bound
    to that precision's functions, inlined instead of compiled apart."""
    func = getattr(kernel, "py_func", kernel)
    tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    fdef = tree.body[0]
    fdef.decorator_list = []
    for arg in fdef.args.args:
        if arg.arg == name:
            arg.arg = rename or "_" + name
    fdef.args.args += [ast.arg(arg=e) for e in extra]
    fdef.name = f"{func.__name__}__{name}_{value}"
    namespace = dict(func.__globals__)
    namespace[name] = value
    if dtype is not None:
        from ._fastmath import in_precision  # (it imports this module)
        for generic, specific in in_precision(dtype):
            for global_name, global_value in func.__globals__.items():
                if global_value is generic:
                    namespace[global_name] = specific
    filename = inspect.getsourcefile(func)
    exec(compile(ast.fix_missing_locations(tree), filename, "exec"), namespace)
    return namespace[fdef.name]


def specialising(kernel, name, doc, fallback=None, optimised_alone=False):
    """An internal twin of ``kernel`` (a fastbp @jit kernel), for kernels to
    call: with a literal ``name`` argument (>= 0) it runs :func:`bound`'s
    body for that value, compiled into the caller; otherwise it calls
    ``kernel``. With ``fallback`` (a parameter name) the twin takes one more
    argument, the code to use at run time when ``name`` is not a constant
    (a caller with a code known only for some networks passes the constant,
    or -1, and the run-time code).

    ``optimised_alone``: the bodies get a code library of their own, which
    LLVM optimises by itself before the callers inline it, instead of the
    link-only library (fastbp._jit.KERNEL_ONLY) optimised only inside each
    caller. For element-wise passes over arrays that may overlap: inside a
    large kernel LLVM could not vectorise them (it could not tell the
    arrays apart there), and a scalar pass with a branch a value cost a
    784-1024-1024-10 fit a sixth of its speed."""
    func = kernel.py_func
    params = list(inspect.signature(func).parameters)
    stub_params = params + ([fallback] if fallback else [])
    call = [fallback if (fallback and p == name) else p for p in params]
    # with a run-time code: the kernel's own code, linked in (fastbp._jit.linked)
    namespace = {"kernel": linked(kernel), "__name__": func.__module__}
    exec(f"def {func.__name__}({', '.join(stub_params)}):\n    pass\n"
         f"def generic({', '.join(stub_params)}):\n    return kernel({', '.join(call)})\n",
         namespace)
    stub, generic = namespace[func.__name__], namespace["generic"]
    stub.__doc__ = doc
    index = params.index(name)
    bodies = {}

    options = ({k: v for k, v in JIT_OPTIONS.items() if k != "pipeline_class"}
               if optimised_alone else JIT_OPTIONS)

    @overload(stub, prefer_literal=True, strict=False, jit_options=options)
    def _typed(*args):
        code = args[index]
        if isinstance(code, types.IntegerLiteral) and code.literal_value >= 0:
            # the kernel's floats are its first argument's (an array)
            key = code.literal_value, getattr(args[0], "dtype", None)
            if key not in bodies:
                bodies[key] = bound(kernel, name, key[0], extra=[fallback] if fallback else (),
                                    dtype=key[1])
            return bodies[key]
        return generic

    return stub


def _dtype_guard(name):
    """An intrinsic ``guard(params, a)`` that does nothing and fails to
    compile, with a TypingError naming ``name``, unless the array ``a`` has
    ``params``' dtype: a mixed call failed deep in fastbp's typing ("No
    implementation of function gemm_call"), or ran in mixed precision. (An
    intrinsic, not an overload: it compiles no function of its own, so the
    kernels that call it compile nothing more.)"""
    from numba.core import errors
    from numba.extending import intrinsic

    def guard(typingctx, params, a):
        # A list or tuple failed deep in Numba ("Unknown attribute 'flags' of
        # type reflected list"; X may be the CSR tuple of fastbp.network)
        if not isinstance(params, types.Array):   # (as fastbp.network's own check says it)
            raise errors.TypingError("params must be a 1-D float32 or float64 NumPy array"
                                     f" (net.params); got {params}")
        if not isinstance(a, types.Array) and name not in ("x", "X"):   # (theirs: ops)
            raise errors.TypingError(
                f"{name} must be a NumPy array (np.ascontiguousarray({name}), of params'"
                f" dtype), not a list or tuple; got {a}")
        if isinstance(a, types.Array) and a.dtype != params.dtype:
            raise errors.TypingError(
                f"the kernels' float arrays share one dtype, float32 or float64: params is"
                f" {params.dtype} and {name} {a.dtype} ({name}.astype(params.dtype))")

        def codegen(context, builder, signature, args):
            return context.get_dummy_value()
        return types.none(params, a), codegen
    guard.__name__ = guard.__qualname__ = f"same_{name}"
    return intrinsic(guard)


def array_guard(what, ndims, dtypes=None):
    """An intrinsic ``guard(a)`` that does nothing and fails to compile,
    with a TypingError saying ``what`` and what ``a`` is, unless ``a`` is a
    NumPy array of one of ``ndims`` dimensions (and, given ``dtypes``, of one
    of those dtypes' names): a list, a 1-D state or an int32 plan failed
    deep in Numba's typing, and an int64 rng ran, its signed shifts dropping
    no unit at a dropout rate of 0.5. An intrinsic, as :func:`_dtype_guard`."""
    from numba.core import errors
    from numba.extending import intrinsic

    def guard(typingctx, a):
        if not (isinstance(a, types.Array) and a.ndim in ndims
                and (dtypes is None or str(a.dtype) in dtypes)):
            raise errors.TypingError(f"{what}; got {a}")

        def codegen(context, builder, signature, args):
            return context.get_dummy_value()
        return types.none(a), codegen
    return intrinsic(guard)


# params' dtype, or a compile-time error that names the argument
same_x, same_X, same_ws, same_grads, same_scratch, same_state = (
    _dtype_guard(name) for name in ("x", "X", "ws", "grads", "scratch", "state"))
