"""Where everything lives: parameter offsets and the workspace plan.

This is the one place that computes offsets. Parameters of layer ``l`` sit in
the flat buffer as ``W_l`` (``(n_out, n_in)``, row-major, PyTorch's order),
then ``b_l``, layer after layer. Gradients and every optimizer state use the
same layout, so an optimizer step, a restore or an allreduce is one pass over
one array.

The kernels receive the layout as a *plan*: an int64 array with one row per
layer and the columns below. Its shape depends on the depth, its type does
not, so a network of any depth or width runs the same compiled code.
"""
import numpy as np

from . import ops

# Columns of a plan row.
N_IN = 0    # input width of the layer
N_OUT = 1   # output width
W_OFF = 2   # offset of W (n_out, n_in) in the flat buffer
B_OFF = 3   # offset of b (n_out,)
ACT = 4     # activation code applied to the layer's output (IDENTITY for the last: logits)
U_OFF = 5   # offset, in units, of the layer's input among all units sum(sizes)
M_OFF = 6   # offset, in units, of the layer's dropout mask in the mask region, or -1 (no dropout)
PLAN_COLUMNS = 7


def frozen(arr):
    """A read-only copy of ``arr`` whose memory is an immutable ``bytes``:
    NumPy refuses ``setflags(write=True)`` on it (an array owning its memory,
    merely flagged read-only, could be made writable again and written)."""
    arr = np.asarray(arr)   # (tobytes: C order; ascontiguousarray made a 0-d array 1-d)
    return np.frombuffer(arr.tobytes(), dtype=arr.dtype).reshape(arr.shape)


class Layout:
    """Offsets of every layer's ``W`` and ``b`` in one flat buffer.

    Parameters
    ----------
    sizes : sequence of int
        ``[n_in, h1, ..., n_out]``.
    acts : sequence of int
        Activation code of each hidden layer (``len(sizes) - 2`` of them).
    dropped : sequence of bool, optional
        Which hidden layers' outputs have dropout (default none); each such
        layer gets a mask block in the workspace.
    """

    def __init__(self, sizes, acts, dropped=()):
        self.sizes = tuple(int(s) for s in sizes)
        n_layers = len(self.sizes) - 1
        acts, dropped = list(acts), list(dropped)
        # (acts one short or long built a plan of the wrong codes, and a third
        # dropped flag gave the output layer a mask, or blamed it for one)
        if n_layers < 1:   # (it asked for -1 activation codes)
            raise ValueError(f"sizes must hold at least [n_in, n_out]; got {list(self.sizes)}")
        if min(self.sizes) < 1:   # (a plan of negative offsets and n_params was made)
            raise ValueError(f"sizes must be widths of at least 1; got {list(self.sizes)}")
        if len(acts) != n_layers - 1:
            raise ValueError(f"acts must hold one activation code per hidden layer: {n_layers - 1}"
                             f" for sizes {list(self.sizes)}; got {len(acts)}")
        if len(dropped) > n_layers - 1:
            raise ValueError(f"dropped must hold at most one flag per hidden layer"
                             f" ({n_layers - 1}); got {len(dropped)}: the output layer cannot"
                             " have dropout")
        codes = acts + [ops.IDENTITY]
        dropped = dropped + [False] * (n_layers - len(dropped))
        plan = np.zeros((n_layers, PLAN_COLUMNS), dtype=np.int64)
        offset = 0
        units = 0
        masked = 0
        for l in range(n_layers):
            n_in, n_out = self.sizes[l], self.sizes[l + 1]
            plan[l] = (n_in, n_out, offset, offset + n_out * n_in, codes[l], units,
                       masked if dropped[l] else -1)
            offset += n_out * n_in + n_out
            units += n_in
            masked += n_out if dropped[l] else 0
        self.plan = frozen(plan)
        self.n_params = offset
        self.masked_units = masked

    @property
    def n_layers(self):
        return len(self.sizes) - 1

    def weight_slice(self, l):
        start = int(self.plan[l, W_OFF])
        return slice(start, start + self.sizes[l + 1] * self.sizes[l])

    def bias_slice(self, l):
        start = int(self.plan[l, B_OFF])
        return slice(start, start + self.sizes[l + 1])

    def views(self, buffer):
        """``(weights, biases)``: tuples of views into ``buffer``, never copies."""
        weights = tuple(buffer[self.weight_slice(l)].reshape(self.sizes[l + 1], self.sizes[l])
                        for l in range(self.n_layers))
        biases = tuple(buffer[self.bias_slice(l)] for l in range(self.n_layers))
        return weights, biases

    def workspace_size(self, rows):
        """Length of a flat workspace for batches of up to ``rows`` samples."""
        return rows * workspace_row(self.sizes, self.masked_units)

    def __repr__(self):
        return f"Layout(sizes={list(self.sizes)}, n_params={self.n_params})"


def workspace_row(sizes, masked_units=0):
    """Workspace elements per sample: activations and deltas of every unit
    (inputs included, logits as the last layer's activations), the outputs
    and the gathered targets, then the dropout masks of the dropped units."""
    return 2 * sum(sizes) + 2 * sizes[-1] + masked_units
