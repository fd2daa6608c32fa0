"""The views the whole-network kernels take of ``params``, ``grads`` and the
workspace, as Numba intrinsics.

Every kernel in :mod:`fastbp.network` turns a plan row into views dozens of
times: layer l's ``W`` and ``b``, its activations and deltas in the
workspace, the outputs, the targets. Written as ``@jit(inline="always")``
helpers, each call site cost Numba a copy of the helper's IR run through
its untyped passes, then typing and lowering in the caller: about half of a
cold start's compile time went into these few lines of arithmetic. As
intrinsics they are typed by a Python function and lowered straight to the
handful of LLVM instructions they are (read the plan, multiply, add, make a
view), at no compile cost to speak of.

The layout is :mod:`fastbp.layout`'s (the plan's columns) and
:mod:`fastbp.network`'s (the workspace regions A, D, P, Y, M). The callers
guarantee that the plan fits the buffers (the public kernels check it once
at entry); these read without bounds checks, as the kernels' loops do.
A view shares the buffer's memory and keeps it alive (its meminfo).
"""
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array, populate_array

from ._arrays import buffer_view
from .layout import B_OFF, M_OFF, N_IN, N_OUT, U_OFF, W_OFF


def _is_flat(t):
    return isinstance(t, types.Array) and t.ndim == 1 and t.layout == "C"


def _is_plan(t):
    return (isinstance(t, types.Array) and t.ndim == 2 and t.layout == "C"
            and t.dtype == types.int64)


def _ints(*ts):
    return all(isinstance(t, types.Integer) for t in ts)


class _Plan:
    """Reads a C-contiguous int64 plan inside generated code."""

    def __init__(self, context, builder, plan_type, plan):
        self.builder = builder
        self.context = context
        ary = make_array(plan_type)(context, builder, plan)
        self.data = ary.data
        self.layers, self.columns = cgutils.unpack_tuple(builder, ary.shape, 2)

    def const(self, value):
        return self.context.get_constant(types.intp, value)

    def at(self, layer, column):
        """plan[layer, column]."""
        b = self.builder
        index = b.add(b.mul(layer, self.columns), self.const(column))
        return b.load(b.gep(self.data, [index]))

    def last(self):
        return self.builder.sub(self.layers, self.const(1))

    def units(self):
        """sum(sizes): the units of every layer, inputs and logits included."""
        b, last = self.builder, self.last()
        return b.add(b.add(self.at(last, U_OFF), self.at(last, N_IN)), self.at(last, N_OUT))

    def outputs(self):
        return self.at(self.last(), N_OUT)

    def masked_units(self):
        """Units with a dropout mask (the mask region's width)."""
        b = self.builder
        total = cgutils.alloca_once_value(b, self.const(0))
        with cgutils.for_range(b, self.layers) as loop:
            has = b.icmp_signed(">=", self.at(loop.index, M_OFF), self.const(0))
            width = b.select(has, self.at(loop.index, N_OUT), self.const(0))
            b.store(b.add(b.load(total), width), total)
        return b.load(total)


def _intp(context, builder, value, type_):
    return context.cast(builder, value, type_, types.intp)


def _result(flat, ndim):
    return types.Array(flat.dtype, ndim, "C", readonly=not flat.mutable)


def _capacity_of(context, builder, ws_type, ws, plan):
    """ws.size // (2 U + 2 m + H): the samples the workspace holds."""
    b = builder
    size = make_array(ws_type)(context, builder, ws).nitems
    per_sample = b.add(b.add(b.mul(plan.const(2), plan.units()), b.mul(plan.const(2), plan.outputs())),
                       plan.masked_units())
    return b.sdiv(size, per_sample)


@intrinsic
def capacity_of(typingctx, ws, plan):
    """How many samples the workspace ``ws`` holds for this plan."""
    if not (_is_flat(ws) and _is_plan(plan)):
        return None

    def codegen(context, builder, sig, args):
        p = _Plan(context, builder, sig.args[1], args[1])
        return _capacity_of(context, builder, sig.args[0], args[0], p)
    return types.int64(ws, plan), codegen


@intrinsic
def units(typingctx, plan):
    """sum(sizes) of the plan's network."""
    if not _is_plan(plan):
        return None

    def codegen(context, builder, sig, args):
        return _Plan(context, builder, sig.args[0], args[0]).units()
    return types.int64(plan), codegen


@intrinsic
def layer_weight(typingctx, params, plan, l):
    """Layer l's W, (n_out, n_in), in the flat buffer ``params``."""
    if not (_is_flat(params) and _is_plan(plan) and _ints(l)):
        return None
    result = _result(params, 2)

    def codegen(context, builder, sig, args):
        p = _Plan(context, builder, sig.args[1], args[1])
        layer = _intp(context, builder, args[2], sig.args[2])
        return buffer_view(context, builder, sig.args[0], args[0], result, p.at(layer, W_OFF),
                           [p.at(layer, N_OUT), p.at(layer, N_IN)])
    return result(params, plan, l), codegen


@intrinsic
def layer_bias(typingctx, params, plan, l):
    """Layer l's b, (n_out,), in the flat buffer ``params``."""
    if not (_is_flat(params) and _is_plan(plan) and _ints(l)):
        return None
    result = _result(params, 1)

    def codegen(context, builder, sig, args):
        p = _Plan(context, builder, sig.args[1], args[1])
        layer = _intp(context, builder, args[2], sig.args[2])
        return buffer_view(context, builder, sig.args[0], args[0], result, p.at(layer, B_OFF),
                           [p.at(layer, N_OUT)])
    return result(params, plan, l), codegen


@intrinsic
def flat_view(typingctx, a):
    """A C-contiguous 2-D array as a 1-D view of all its elements (what
    ``a.reshape(a.size)`` gives, without reshape's error path)."""
    if not (isinstance(a, types.Array) and a.ndim == 2 and a.layout == "C"):
        return None
    result = types.Array(a.dtype, 1, "C", readonly=not a.mutable)

    def codegen(context, builder, sig, args):
        src = make_array(sig.args[0])(context, builder, args[0])
        return buffer_view(context, builder, sig.args[0], args[0], result,
                           context.get_constant(types.intp, 0), [src.nitems])
    return result(a), codegen


def _region_view(name, ndim, where, layered=True):
    """An intrinsic ``name(ws, plan, cap, l, nb)`` (``name(ws, plan, cap, nb)``
    when not ``layered``): rows 0..nb-1 of the workspace block that
    ``where(plan, builder, cap, l)`` places, as ``(start, width)``."""

    def typed(ws, plan, cap, rest):
        if not (_is_flat(ws) and _is_plan(plan) and _ints(cap, *rest)):
            return None
        result = _result(ws, ndim)

        def codegen(context, builder, sig, args):
            p = _Plan(context, builder, sig.args[1], args[1])
            ints = [_intp(context, builder, v, t) for v, t in zip(args[2:], sig.args[2:])]
            cap_, l_, nb_ = ints if layered else (ints[0], None, ints[1])
            start, width = where(p, builder, cap_, l_)
            shape = [nb_, width] if ndim == 2 else [nb_]
            return buffer_view(context, builder, sig.args[0], args[0], result, start, shape)
        return result(ws, plan, cap, *rest), codegen

    if layered:
        def typer(typingctx, ws, plan, cap, l, nb):
            return typed(ws, plan, cap, (l, nb))
    else:
        def typer(typingctx, ws, plan, cap, nb):
            return typed(ws, plan, cap, (nb,))

    typer.__name__ = typer.__qualname__ = name
    return intrinsic(typer)


def _a(p, b, cap, l):
    # Region A, layer l's outputs (the logits for the last): cap * (U_OFF + N_IN).
    return b.mul(cap, b.add(p.at(l, U_OFF), p.at(l, N_IN))), p.at(l, N_OUT)


def _d(p, b, cap, l):
    # Region D: as A, one region (cap * U) further.
    return b.mul(cap, b.add(p.units(), b.add(p.at(l, U_OFF), p.at(l, N_IN)))), p.at(l, N_OUT)


def _p(p, b, cap, l):
    # Region P, the outputs g(logits): after A and D.
    return b.mul(b.mul(p.const(2), cap), p.units()), p.outputs()


def _y(p, b, cap, l):
    # Region Y, the batch's targets: after P.
    start, m = _p(p, b, cap, l)
    return b.add(start, b.mul(cap, m)), m


def _m(p, b, cap, l):
    # Region M, layer l's dropout factors: after Y, at the layer's M_OFF.
    start, m = _y(p, b, cap, l)
    return b.add(b.add(start, b.mul(cap, m)), b.mul(cap, p.at(l, M_OFF))), p.at(l, N_OUT)


def _x(p, b, cap, l):
    # Layer 0's input block of region A (where shuffled rows are gathered).
    return p.const(0), p.at(p.const(0), N_IN)


activations = _region_view("activations", 2, _a)
deltas = _region_view("deltas", 2, _d)
dropout_mask = _region_view("dropout_mask", 2, _m)
outputs = _region_view("outputs", 2, _p, layered=False)
targets = _region_view("targets", 2, _y, layered=False)
labels = _region_view("labels", 1, _y, layered=False)
inputs = _region_view("inputs", 2, _x, layered=False)


@intrinsic
def logits(typingctx, ws, plan, nb):
    """The last layer's activations, (nb, m), at the workspace's own capacity."""
    if not (_is_flat(ws) and _is_plan(plan) and _ints(nb)):
        return None
    result = _result(ws, 2)

    def codegen(context, builder, sig, args):
        p = _Plan(context, builder, sig.args[1], args[1])
        cap = _capacity_of(context, builder, sig.args[0], args[0], p)
        start, width = _a(p, builder, cap, p.last())
        nb_ = _intp(context, builder, args[2], sig.args[2])
        return buffer_view(context, builder, sig.args[0], args[0], result, start, [nb_, width])
    return result(ws, plan, nb), codegen


# ----------------------------------------------------- the public kernels' checks
def _span(context, builder, ty, value):
    # An array's memory as integers: its first byte and its byte count
    # (size * itemsize, as numpy's nbytes).
    ary = make_array(ty)(context, builder, value)
    return builder.ptrtoint(ary.data, cgutils.intp_t), builder.mul(ary.nitems, ary.itemsize)


def _spans_meet(builder, a, b):
    # Both non-empty, and each starts before the other ends.
    (pa, na), (pb, nb) = a, b
    zero = na.type(0)
    nonempty = builder.and_(builder.icmp_signed(">", na, zero), builder.icmp_signed(">", nb, zero))
    before = builder.icmp_unsigned("<", pa, builder.add(pb, nb))
    after = builder.icmp_unsigned("<", pb, builder.add(pa, na))
    return builder.and_(nonempty, builder.and_(before, after))


@intrinsic
def overlap(typingctx, a, b):
    """True when the memory of the arrays a and b intersects (an empty array
    meets nothing): ``a.ctypes.data < b.ctypes.data + b.nbytes and
    b.ctypes.data < a.ctypes.data + a.nbytes``, for contiguous arrays.

    As a kernel it compiled once per pair of array types, and a public
    kernel's checks call it for a dozen pairs: about 2 s of
    ``train_epoch``'s first call (with the four-array form), 129 compiled
    specialisations in the test suite."""
    if not (isinstance(a, types.Array) and isinstance(b, types.Array)):
        return None

    def codegen(context, builder, sig, args):
        return _spans_meet(builder, _span(context, builder, sig.args[0], args[0]),
                           _span(context, builder, sig.args[1], args[1]))
    return types.boolean(a, b), codegen


@intrinsic
def overlap2(typingctx, a, b, c, d):
    """``a`` or ``b`` overlaps ``c`` or ``d`` (:func:`overlap`)."""
    if not all(isinstance(t, types.Array) for t in (a, b, c, d)):
        return None

    def codegen(context, builder, sig, args):
        spans = [_span(context, builder, t, v) for t, v in zip(sig.args, args)]
        result = cgutils.false_bit
        for x in spans[:2]:
            for y in spans[2:]:
                result = builder.or_(result, _spans_meet(builder, x, y))
        return result
    return types.boolean(a, b, c, d), codegen
