"""The one decorator every fastbp kernel is compiled with, and the 2-D view.

``cache=True`` writes the machine code next to the source (or under
``NUMBA_CACHE_DIR`` when set, e.g. for a read-only install), so a new process
loads instead of compiling. ``nogil=True`` lets two models train in two
threads at once. ``error_model="numpy"`` makes division by zero give inf/nan
instead of raising, which keeps the division out of a branch and lets LLVM
vectorise the loops. No fastmath: fastbp checks for non-finite values, which
``nnan``/``ninf`` would optimise away.
"""
import functools

import numba
from numba.core import types
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

jit = functools.partial(numba.njit, cache=True, nogil=True, error_model="numpy")


@intrinsic
def matrix(typingctx, flat, start, rows, cols):
    """``flat[start:start + rows * cols]`` as a C-contiguous ``(rows, cols)``
    view of the 1-D C-contiguous array ``flat``, sharing its memory.

    What ``flat[a:b].reshape(rows, cols)`` gives, without reshape's checks:
    the caller (the layout) guarantees the range fits. Reshape's error path
    formats the shapes into its message, and compiling that formatting cost
    more than a second of every cold start; this is a few instructions.
    """
    if not (isinstance(flat, types.Array) and flat.ndim == 1 and flat.layout == "C"
            and all(isinstance(t, types.Integer) for t in (start, rows, cols))):
        return None
    result = types.Array(flat.dtype, 2, "C", readonly=not flat.mutable)

    def codegen(context, builder, signature, args):
        flat_type = signature.args[0]
        src = make_array(flat_type)(context, builder, args[0])
        first, n_rows, n_cols = (context.cast(builder, v, t, types.intp)
                                 for v, t in zip(args[1:], signature.args[1:]))
        itemsize = context.get_constant(types.intp, context.get_abi_sizeof(
            context.get_data_type(flat_type.dtype)))
        out = make_array(signature.return_type)(context, builder)
        populate_array(out, data=builder.gep(src.data, [first]), shape=[n_rows, n_cols],
                       strides=[builder.mul(n_cols, itemsize), itemsize], itemsize=itemsize,
                       meminfo=src.meminfo, parent=src.parent)
        return impl_ret_borrowed(context, builder, signature.return_type, out._getvalue())

    return result(flat, start, rows, cols), codegen
