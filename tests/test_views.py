"""The view intrinsics (fastbp._views) against the layout they encode, worked
out here with NumPy slicing from the plan's columns and the workspace
regions A, D, P, Y, M of fastbp.network's docstring."""
import numba
import numpy as np
import pytest

import fastbp
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
