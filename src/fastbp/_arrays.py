"""Array intrinsics the leaf kernels use: a view of a buffer's values, and
scratch on the stack.

They sit below :mod:`fastbp.ops` (which :mod:`fastbp.layout` and
:mod:`fastbp._views` import), so this module imports nothing of fastbp.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.core.imputils import impl_ret_borrowed
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array


def buffer_view(context, builder, flat_type, flat, result_type, start, shape):
    """``flat[start:start + prod(shape)]`` as a C-contiguous view of ``shape``."""
    src = make_array(flat_type)(context, builder, flat)
    itemsize = context.get_constant(types.intp, context.get_abi_sizeof(
        context.get_data_type(flat_type.dtype)))
    strides = [itemsize]
    for extent in reversed(shape[1:]):
        strides.insert(0, builder.mul(extent, strides[0]))
    out = make_array(result_type)(context, builder)
    populate_array(out, data=builder.gep(src.data, [start]), shape=list(shape), strides=strides,
                   itemsize=itemsize, meminfo=src.meminfo, parent=src.parent)
    return impl_ret_borrowed(context, builder, result_type, out._getvalue())


@intrinsic
def packed_rows(typingctx, a, partner):
    """``a`` (n, m) as one row of all its n*m elements, a (1, n*m) view
    sharing its memory, when ``a`` and ``partner`` are both C-contiguous 2-D
    arrays (known from their types, so nothing is decided at run time);
    else ``a`` itself. An element-wise loop over the rows of the result is
    one long loop that LLVM vectorises, where rows narrower than a vector
    (a float32 AVX-512 vector holds 16) ran in its scalar remainder: tanh
    on (200, 8) float32, softmax's exps on (200, 2). Pass the array the
    loop reads beside ``a`` as ``partner`` (or ``a`` twice), so that both
    are viewed alike."""
    if not (isinstance(a, types.Array) and a.ndim == 2 and isinstance(partner, types.Array)):
        return None
    if not (a.layout == "C" and partner.layout == "C" and partner.ndim == 2):
        def same(context, builder, sig, args):
            return impl_ret_borrowed(context, builder, sig.return_type, args[0])
        return a(a, partner), same
    result = types.Array(a.dtype, 2, "C", readonly=not a.mutable)

    def codegen(context, builder, sig, args):
        src = make_array(sig.args[0])(context, builder, args[0])
        return buffer_view(context, builder, sig.args[0], args[0], result,
                           context.get_constant(types.intp, 0),
                           [context.get_constant(types.intp, 1), src.nitems])
    return result(a, partner), codegen


# Bytes of the stack buffer a kernel gets from stack_buffer: eight 512-bit
# vectors, the accumulators ops.column_sums keeps in registers (128 float32
# or 64 float64 values).
STACK_BYTES = 512


# Bytes of the stack block a kernel gets from stack_block: a row of sums
# that stays in the L1 cache (2,048 float32 or 1,024 float64 columns).
STACK_BLOCK_BYTES = 8192


def _on_stack(nbytes):
    def typer(typingctx, like):
        if isinstance(like, types.Float):
            dtype = like
        elif isinstance(like, types.Array) and isinstance(like.dtype, types.Float):
            dtype = like.dtype
        else:
            return None
        result = types.Array(dtype, 1, "C")

        def codegen(context, builder, sig, args):
            item = context.get_data_type(dtype)
            itemsize = context.get_abi_sizeof(item)
            size = nbytes // itemsize
            data = cgutils.alloca_once(builder, item, size=size)
            out = make_array(result)(context, builder)
            populate_array(out, data=data, shape=[context.get_constant(types.intp, size)],
                           strides=[context.get_constant(types.intp, itemsize)],
                           itemsize=context.get_constant(types.intp, itemsize), meminfo=None)
            return out._getvalue()
        return result(like), codegen
    return typer


@intrinsic
def stack_buffer(typingctx, like):
    """A 1-D C array of ``STACK_BYTES`` bytes of ``like``'s dtype (``like``
    a float array, or a float scalar for its own type) on the calling
    kernel's stack (one ``alloca`` in its entry block, however often the
    call runs): scratch that costs no allocation and that the compiler
    knows aliases nothing else. Uninitialised; valid until the kernel
    returns, so never return it or keep a view of it."""
    return _on_stack(STACK_BYTES)(typingctx, like)


@intrinsic
def stack_block(typingctx, like):
    """:func:`stack_buffer` of ``STACK_BLOCK_BYTES`` bytes."""
    return _on_stack(STACK_BLOCK_BYTES)(typingctx, like)


@intrinsic
def packed_values(typingctx, a):
    """A 2-D array's elements as one 1-D view when its type says the rows lie
    packed (layout C, as every workspace and buffer view is); for any other
    layout a view of 0 elements, so that a kernel can take a flat loop where
    it may and fall back to rows elsewhere (``packed_values(a).size == a.size``)."""
    if not (isinstance(a, types.Array) and a.ndim == 2):
        return None
    result = types.Array(a.dtype, 1, "C", readonly=not a.mutable)

    def codegen(context, builder, sig, args):
        src = make_array(sig.args[0])(context, builder, args[0])
        size = src.nitems if a.layout == "C" else context.get_constant(types.intp, 0)
        return buffer_view(context, builder, sig.args[0], args[0], result,
                           context.get_constant(types.intp, 0), [size])
    return result(a), codegen


# Bytes of a cache line: the stride of the prefetches' requests.
CACHE_LINE = 64


def _prefetch_bytes(context, builder, start, nbytes):
    # llvm.prefetch (a read, to L2 and closer) of each cache line of the
    # nbytes bytes from the i8* start: one a line, then the last byte's
    # line, for a run that does not start on one.
    i32 = ir.IntType(32)
    prefetch = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(ir.VoidType(), [start.type, i32, i32, i32]),
        "llvm.prefetch.p0")
    zero, one = (context.get_constant(types.intp, v) for v in (0, 1))
    with cgutils.for_range_slice(builder, zero, nbytes,
                                 context.get_constant(types.intp, CACHE_LINE)) as (offset, _):
        builder.call(prefetch, [builder.gep(start, [offset]), i32(0), i32(2), i32(1)])
    with builder.if_then(builder.icmp_signed(">", nbytes, zero)):
        last = builder.gep(start, [builder.sub(nbytes, one)])
        builder.call(prefetch, [last, i32(0), i32(2), i32(1)])


@intrinsic
def prefetch_row(typingctx, a, i):
    """Ask the CPU to bring row ``i`` of ``a`` (a 1-D or a C-contiguous 2-D
    array; of a 1-D one, the element's cache line) into its caches, for a
    read soon: one prefetch per cache line, which never faults and changes
    no value (``llvm.prefetch``, to L2 and closer; ``prefetcht1`` on x86);
    nothing for a 2-D array whose type does not say its rows lie packed.
    The epochs ask for the next batch's rows while the current one computes:
    rows scattered over a data set larger than the caches otherwise arrive
    one memory latency at a time. ``i`` must be a row of ``a`` (the address
    is computed, not checked)."""
    if not (isinstance(a, types.Array) and a.ndim in (1, 2) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        if a.ndim == 2 and a.layout != "C":
            return context.get_dummy_value()
        ary = make_array(sig.args[0])(context, builder, args[0])
        row = context.cast(builder, args[1], sig.args[1], types.intp)
        itemsize = context.get_constant(
            types.intp, context.get_abi_sizeof(context.get_data_type(a.dtype)))
        strides = cgutils.unpack_tuple(builder, ary.strides, a.ndim)
        start = builder.gep(builder.bitcast(ary.data, ir.IntType(8).as_pointer()),
                            [builder.mul(row, strides[0])])
        width = itemsize if a.ndim == 1 else builder.mul(
            cgutils.unpack_tuple(builder, ary.shape, 2)[1], itemsize)
        _prefetch_bytes(context, builder, start, width)
        return context.get_dummy_value()
    return types.void(a, i), codegen


@intrinsic
def prefetch_span(typingctx, a, lo, hi):
    """:func:`prefetch_row` for the elements ``a[lo:hi]`` of a contiguous
    1-D array (a CSR row's values or column indices); nothing when hi <= lo.
    ``lo`` and ``hi`` must lie within ``a`` (not checked)."""
    if not (isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C"
            and isinstance(lo, types.Integer) and isinstance(hi, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ary = make_array(sig.args[0])(context, builder, args[0])
        first, stop = (context.cast(builder, v, t, types.intp)
                       for v, t in zip(args[1:], sig.args[1:]))
        itemsize = context.get_constant(
            types.intp, context.get_abi_sizeof(context.get_data_type(a.dtype)))
        start = builder.gep(builder.bitcast(ary.data, ir.IntType(8).as_pointer()),
                            [builder.mul(first, itemsize)])
        _prefetch_bytes(context, builder, start, builder.mul(builder.sub(stop, first), itemsize))
        return context.get_dummy_value()
    return types.void(a, lo, hi), codegen


def _borrow(context, builder, typ, value):
    # value with every array in it (through nested tuples) stripped of its
    # meminfo and parent.
    if isinstance(typ, types.Array):
        src = make_array(typ)(context, builder, value)
        out = make_array(typ)(context, builder)
        populate_array(out, data=src.data, shape=cgutils.unpack_tuple(builder, src.shape),
                       strides=cgutils.unpack_tuple(builder, src.strides),
                       itemsize=src.itemsize, meminfo=None)
        return out._getvalue()
    if isinstance(typ, types.BaseTuple):
        items = [_borrow(context, builder, t, builder.extract_value(value, i))
                 for i, t in enumerate(typ)]
        return context.make_tuple(builder, typ, items)
    return value


@intrinsic
def borrowed(typingctx, a):
    """``a`` without its references: the same arrays (data, shape, strides)
    with no meminfo, for a kernel's own use while its caller holds them.
    ``a`` is an array or a tuple (CSR data, or several arguments at once:
    ``x, y = borrowed((x, y))``); arrays anywhere in it are borrowed, other
    values come back as they are.

    Numba counts references to every view a kernel takes (an atomic add
    and subtract on the buffer's meminfo per view), dozens per training
    step of a whole-network kernel: 9 % of a 64-32-10 float32 step, and on
    two threads each count moves the meminfo's cache line between the
    cores. Views of a borrowed array carry no meminfo, so their counts are
    a call that finds NULL and returns. Never return a borrowed array or a
    view of it, nor keep one past the call."""
    if not isinstance(a, (types.Array, types.BaseTuple)):
        return None

    def codegen(context, builder, sig, args):
        return _borrow(context, builder, sig.args[0], args[0])
    return a(a), codegen
