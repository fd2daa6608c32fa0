"""The view intrinsics (fastbp._views) against the layout they encode, worked
out here with NumPy slicing from the plan's columns and the workspace
regions A, D, P, Y, M of fastbp.network's docstring."""
import platform
import sys

import numba
import numpy as np
import pytest

import fastbp
import fastbp._arrays
from fastbp import _views
from fastbp.layout import B_OFF, M_OFF, N_IN, N_OUT, U_OFF, W_OFF


@numba.njit
def _all_views(params, ws, plan, l, nb):
    cap = _views.capacity_of(ws, plan)
    return (cap, _views.units(plan), _views.layer_weight(params, plan, l),
            _views.layer_bias(params, plan, l), _views.activations(ws, plan, cap, l, nb),
            _views.deltas(ws, plan, cap, l, nb), _views.dropout_mask(ws, plan, cap, l, nb),
            _views.outputs(ws, plan, cap, nb), _views.targets(ws, plan, cap, nb),
            _views.labels(ws, plan, cap, nb), _views.inputs(ws, plan, cap, nb),
            _views.logits(ws, plan, nb))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_views_are_the_documented_regions(dtype):
    net = fastbp.MLP([5, 7, 4, 3], dtype=dtype, dropout=[0.5, 0.0], seed=0)
    plan, params = net.plan, net.params
    ws = net.workspace(6)
    ws[:] = np.arange(ws.size)
    U = int(plan[-1, U_OFF] + plan[-1, N_IN] + plan[-1, N_OUT])
    m = int(plan[-1, N_OUT])
    H = int(sum(plan[l, N_OUT] for l in range(len(plan)) if plan[l, M_OFF] >= 0))
    cap = ws.size // (2 * U + 2 * m + H)
    assert cap == 6 == fastbp.kernels.capacity(ws, plan)
    # (review HIA) the first layer's mask, at offset 0, counts too: the
    # floor hid it at 6 samples (6 x 51 // 44 is 6), not at 64
    big = net.workspace(64)
    assert _all_views(params, big, plan, 0, 1)[0] == 64 == fastbp.kernels.capacity(big, plan)
    nb = 4
    for l in range(len(plan)):
        got = _all_views(params, ws, plan, l, nb)
        n_in, n_out = int(plan[l, N_IN]), int(plan[l, N_OUT])
        a = cap * int(plan[l, U_OFF] + n_in)
        want = {
            0: cap, 1: U,
            2: params[plan[l, W_OFF]:plan[l, W_OFF] + n_out * n_in].reshape(n_out, n_in),
            3: params[plan[l, B_OFF]:plan[l, B_OFF] + n_out],
            4: ws[a:a + nb * n_out].reshape(nb, n_out),
            5: ws[cap * U + a:cap * U + a + nb * n_out].reshape(nb, n_out),
            7: ws[2 * cap * U:2 * cap * U + nb * m].reshape(nb, m),
            8: ws[2 * cap * U + cap * m:2 * cap * U + cap * m + nb * m].reshape(nb, m),
            9: ws[2 * cap * U + cap * m:2 * cap * U + cap * m + nb],
            10: ws[:nb * int(plan[0, N_IN])].reshape(nb, int(plan[0, N_IN])),
        }
        if plan[l, M_OFF] >= 0:
            o = 2 * cap * U + 2 * cap * m + cap * int(plan[l, M_OFF])
            want[6] = ws[o:o + nb * n_out].reshape(nb, n_out)
        last = cap * int(plan[-1, U_OFF] + plan[-1, N_IN])
        want[11] = ws[last:last + nb * m].reshape(nb, m)
        for i, w in want.items():
            if isinstance(w, int):
                assert got[i] == w
            else:
                np.testing.assert_array_equal(got[i], w)
                assert np.shares_memory(got[i], params if i in (2, 3) else ws)
        # a view writes through to the buffer
        got[4][0, 0] = -1.0
        assert ws[a] == -1.0


def test_flat_view():
    a = np.arange(12.0).reshape(3, 4)
    flat = numba.njit(lambda x: _views.flat_view(x))(a)
    np.testing.assert_array_equal(flat, a.reshape(12))
    assert np.shares_memory(flat, a)


def test_packed_rows_is_one_row_only_when_both_arrays_are_packed():
    rows = numba.njit(lambda a, b: (fastbp._arrays.packed_rows(a, b),
                                    fastbp._arrays.packed_rows(b, a)))
    a, b = np.arange(12.0).reshape(3, 4), np.zeros((3, 4))
    ra, rb = rows(a, b)
    np.testing.assert_array_equal(ra, a.reshape(1, 12))
    assert ra.shape == rb.shape == (1, 12) and np.shares_memory(ra, a) and np.shares_memory(rb, b)
    strided = np.zeros((3, 8))[:, ::2]
    ra, rs = rows(a, strided)  # a partner that is not packed: both as they are
    assert ra.shape == rs.shape == (3, 4) and np.shares_memory(rs, strided)
    np.testing.assert_array_equal(ra, a)



@numba.njit
def _prefetch_rows(a, rows):
    for r in rows:
        fastbp._arrays.prefetch_row(a, r)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_prefetch_row_requests_the_rows_lines_and_changes_nothing(dtype):
    """The shuffled epochs' prefetch of the next batch's rows: an
    llvm.prefetch per cache line of a row (a loop stepping by CACHE_LINE, and
    the row's last byte, for rows that do not start on a line), to L2
    (locality 2: prefetcht1 on x86); it reads nothing into the program and
    writes nothing."""
    base = np.arange(7 * 37, dtype=dtype).reshape(7, 37)
    for a in (base, base[1:], np.arange(50, dtype=dtype)):  # rows of 148/296 bytes, off-line starts
        before = a.copy()
        _prefetch_rows(a, np.array([0, a.shape[0] - 1, 2], dtype=np.int64))
        np.testing.assert_array_equal(a, before)
    for sig in [s for s in _prefetch_rows.signatures if s[0].layout == "C"]:
        assert "@llvm.prefetch.p0(" in _prefetch_rows.inspect_llvm(sig)
        if platform.machine() in ("x86_64", "AMD64"):
            assert "prefetcht1" in _prefetch_rows.inspect_asm(sig)
    strided = np.zeros((4, 8), dtype=dtype)[:, ::2]  # rows not packed: nothing asked for
    _prefetch_rows(strided, np.zeros(1, dtype=np.int64))
    sig = [s for s in _prefetch_rows.signatures if s[0].layout != "C"][0]
    assert "@llvm.prefetch" not in _prefetch_rows.inspect_llvm(sig)


@numba.njit
def _prefetch_spans(a, bounds):
    for i in range(bounds.shape[0]):
        fastbp._arrays.prefetch_span(a, bounds[i, 0], bounds[i, 1])


def test_prefetch_span_requests_a_runs_lines_and_changes_nothing():
    """The shuffled sparse epochs' prefetch of the next rows' CSR values and
    indices: the same requests as prefetch_row's, over a[lo:hi]; an empty
    or reversed span asks for nothing and reads nothing."""
    for a in (np.arange(1000, dtype=np.float32), np.arange(1000, dtype=np.int32),
              np.arange(1000, dtype=np.float64)):
        before = a.copy()
        _prefetch_spans(a, np.array([[3, 700], [999, 1000], [5, 5], [9, 2]], dtype=np.int64))
        np.testing.assert_array_equal(a, before)
    for sig in _prefetch_spans.signatures:
        assert "@llvm.prefetch.p0(" in _prefetch_spans.inspect_llvm(sig)
        if platform.machine() in ("x86_64", "AMD64"):
            assert "prefetcht1" in _prefetch_spans.inspect_asm(sig)

@numba.njit
def _overlaps(a, b, c, d):
    return _views.overlap(a, b), _views.overlap2(a, b, c, d)


def _meets(a, b):
    # The reference: the byte ranges [start, start + nbytes) intersect.
    if a.size == 0 or b.size == 0:
        return False
    pa, pb = a.ctypes.data, b.ctypes.data
    return pa < pb + b.nbytes and pb < pa + a.nbytes


def test_overlap_is_whether_the_byte_ranges_meet():
    """The public kernels' aliasing check, against the byte ranges worked out
    with NumPy: slices of one buffer that share, touch or miss each other,
    other dtypes and shapes viewing the same bytes, empty arrays."""
    buf = np.zeros(64)
    raw = buf.view(np.uint8)
    cases = [
        (buf[:10], buf[5:20]),  # share five elements
        (buf[:10], buf[10:20]),  # touch: no byte in common
        (buf[10:20], buf[:11]),  # share the first element of a
        (buf[:32].reshape(4, 8), buf[31:40]),  # a 2-D view and its last element
        (buf[:4].view(np.float32), raw[15:17]),  # other dtypes: byte 15 is buf[1]'s
        (buf[:4].view(np.float32), raw[32:40]),  # just past the end
        (buf[:0], buf[:10]),  # empty: meets nothing
        (buf[3:3], buf),
        (np.zeros(5, np.int64), np.zeros(5, np.uint64)),  # two buffers
    ]
    seen = set()
    for a, b in cases:
        want = _meets(a, b)
        seen.add(want)
        for x, y in ((a, b), (b, a)):
            none = np.zeros(0)
            got, got2 = _overlaps(x, none, y, none)  # overlap2 of x and y alone
            assert _overlaps(x, y, none, none)[0] == want and got2 == want, (x.shape, y.shape)
            assert not got  # nothing meets an empty array
    assert seen == {True, False}
    # overlap2: a or b against c or d, each pair on its own
    a, b = buf[:2], buf[8:10]
    for c, d, want in ((buf[1:2], buf[20:22], True), (buf[20:22], buf[9:12], True),
                       (buf[2:8], buf[10:12], False), (buf[:0], buf[2:8], False)):
        assert _overlaps(a, b, c, d)[1] == want


@numba.extending.intrinsic
def _meminfo_of(typingctx, a):
    # The meminfo pointer of array a, as an integer (0: none).
    from numba.np.arrayobj import make_array

    def codegen(context, builder, sig, args):
        ary = make_array(sig.args[0])(context, builder, args[0])
        return builder.ptrtoint(ary.meminfo, context.get_value_type(numba.types.intp))
    return numba.types.intp(a), codegen


@numba.njit
def _borrowed_views(a, csr):
    b = fastbp._arrays.borrowed(a)
    (x, (data, indices, n), m) = fastbp._arrays.borrowed((a, csr, 3))
    # Writes through a borrowed view reach the caller's array.
    v = b[1:3]
    v[0] = -1.0
    return (_meminfo_of(a[1:]), _meminfo_of(b[1:]), _meminfo_of(x), _meminfo_of(data),
            _meminfo_of(indices), n, m, b.shape[0], b.strides[0], x.ctypes.data == a.ctypes.data,
            b.sum())


def test_borrowed_is_the_same_array_without_a_meminfo():
    a = np.arange(6, dtype=np.float64)
    csr = (np.ones(4), np.arange(4), 7)
    before = [sys.getrefcount(o) for o in (a, csr[0], csr[1])]
    mi_a, mi_b, mi_x, mi_data, mi_ind, n, m, size, stride, same, total = _borrowed_views(a, csr)
    assert mi_a != 0                       # a plain view keeps its buffer alive
    assert mi_b == mi_x == mi_data == mi_ind == 0   # borrowed ones, nested tuples included
    assert (n, m, size, stride, same) == (7, 3, 6, 8, True)
    assert a[1] == -1.0 and total == a.sum() == 13.0
    assert [sys.getrefcount(o) for o in (a, csr[0], csr[1])] == before


def test_the_epoch_kernel_counts_no_references_to_its_arguments():
    # What borrowed is for: epoch_sgd (compiled afresh here, its callees from
    # the cache) takes dozens of views of its arguments per step, and Numba
    # counted references to each (85 counts in its code, atomic on the
    # arguments' meminfos). Borrowed, no count touches an argument; what is
    # left counts views that callees return, whose meminfo is NULL.
    X = np.random.default_rng(0).normal(size=(64, 6))
    net = fastbp.MLP([6, 5, 3], activation="tanh", seed=0)
    net.fit(X, (X[:, 0] > 0).astype(int), epochs=1, batch_size=8, lr=0.01, verbose=0)
    sig = fastbp.network.epoch_sgd.signatures[0]
    fresh = numba.njit(cache=False)(fastbp.network.epoch_sgd.py_func)
    fresh.compile(sig)
    counted, inside = [], False
    for line in fresh.inspect_llvm(sig).splitlines():
        if line.startswith("define"):
            inside = "epoch_sgd" in line and "cpython" not in line
        elif inside and ("@NRT_incref(" in line or "@NRT_decref(" in line):
            counted.append(line.split("(ptr ")[1])
    assert not [c for c in counted if c.startswith("%arg.")]
    assert len(counted) <= 12
