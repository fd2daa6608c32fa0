"""A model's scratch memory for the kernels, bounded and safe between threads.

The kernels release the GIL and write activations and deltas into a
workspace, so two calls that share one race. Each thread that runs inference
(``forward``, ``loss``, ``gradient``, validation metrics...) on a model gets
its own workspace (``threading.local``); a fit uses a separate one, owned by
the thread whose ``fit`` has claimed the model, and a second concurrent
``fit`` of the same model is refused. Each workspace is grown to the most rows
its user has needed and smaller batches use its first rows (the kernels chunk
by ``capacity``), so a model holds at most one workspace per live thread plus
one for training, whatever the row counts asked for (during a fit with
validation data, two: the epochs keep their batches' while the validation
metrics grow the training one to their chunk; one workspace sized for both
would spread the batches' layers a chunk apart).
"""
import contextlib
import os
import threading
import weakref

import numpy as np


class Claim:
    """One fit at a time of what holds it (a model's workspaces, a
    scikit-learn estimator): :meth:`training` claims it for the calling
    thread, and a second fit, from another thread or from inside the first,
    is refused. ``noun`` and ``copy`` name the thing and how to train a copy
    of it in the refusal."""
    noun, copy = "model", "copy.deepcopy(net)"

    def __init__(self):
        self._lock = threading.Lock()   # (the claim's, and the setters': see MLP._unclaimed)
        _ALL.add(self)
        self._trainer = None  # ident of the thread whose fit holds it

    @contextlib.contextmanager
    def training(self, on_claim=None):
        """Claim it for one fit in this thread; released on every exit.
        ``on_claim()`` runs under the claim's lock as it is taken (a setter
        that checks and sets under the same lock sees the claim whole)."""
        me = threading.get_ident()
        with self._lock:
            if self._trainer is not None:
                if self._trainer == me:
                    raise RuntimeError(f"this {self.noun} is already being trained by a fit in"
                                       f" this thread (fit was called from inside a running fit,"
                                       f" e.g. from a callback); train a copy ({self.copy})"
                                       " instead")
                raise RuntimeError(f"this {self.noun} is already being trained in another thread;"
                                   f" two fits of one {self.noun} at once would overwrite each"
                                   " other's updates. Wait for that fit to return, or train a"
                                   f" copy ({self.copy}) in this thread")
            self._trainer = me
            if on_claim is not None:
                on_claim()
            _CLAIMED.add(self)
        try:
            yield
        finally:
            self._trainer = None
            _CLAIMED.discard(self)


class Workspaces(Claim):
    """Workspaces of one model: ``get(rows)`` for the calling thread's use."""

    def __init__(self, layout, dtype):
        super().__init__()
        self._row = layout.workspace_size(1)  # elements per sample
        self._dtype = dtype
        self._local = threading.local()  # .ws: this thread's inference workspace
        self._train = None    # the training workspace

    def get(self, rows):
        """A workspace for ``rows`` samples: the training workspace in the
        thread that is fitting the model, else this thread's own, or the
        first ``rows`` samples' part of it where it has grown larger. Valid
        for the caller until it next calls ``get``.

        Exactly ``rows`` (``capacity`` reads it from the size): the kernels
        cut a call's rows into pieces of the workspace's capacity, and the
        pieces' rows come out in bits of their own (a piece of fewer than
        fastbp._narrow.LEAST_ROWS rows runs its output layer on BLAS, a
        larger one in fastbp._narrow's loop), so a
        larger workspace a thread kept from an earlier call gave other bits
        than the same call in a fresh thread (review HFG: a sparse X, whose
        workspace is capped, after a dense call on that thread)."""
        size = self._row * rows if rows > 1 else self._row  # (not max(): 0.15 us a call)
        if self._trainer is not None and self._trainer == threading.get_ident():
            if self._train is None or self._train.size < size:
                self._train = None  # let the old one go before allocating the new
                self._train = np.zeros(size, dtype=self._dtype)
            ws = self._train
            return ws if ws.size == size else ws[:size]
        # This thread's, kept as the view last handed out (its base the
        # whole workspace): the same size again, as one-row predicts ask,
        # costs no new view (0.1 us of 2.8).
        ws = getattr(self._local, "ws", None)
        if ws is not None and ws.size == size:
            return ws
        whole = None if ws is None else ws if ws.base is None else ws.base
        if whole is None or whole.size < size:
            self._local.ws = ws = whole = None  # let the old one go before allocating the new
            whole = np.zeros(size, dtype=self._dtype)
        self._local.ws = ws = whole if whole.size == size else whole[:size]
        return ws


# The models a fit holds now, for a fork: the forked child has only the
# thread that forked, so the claims of the others are let go there (their
# fits never end in the child, and a new thread there may get a dead one's
# ident); the forking thread's own claim stays (its fit goes on in the child).
_CLAIMED = weakref.WeakSet()
# Every model's, for a fork: another thread inside a setter at the fork held
# its lock, which the child's setters and fits then waited on for ever.
_ALL = weakref.WeakSet()


def _after_fork():
    me = threading.get_ident()
    for ws in list(_ALL):
        ws._lock = threading.Lock()
        if ws._trainer is not None and ws._trainer != me:
            ws._trainer = None   # (forked as another thread took the claim: not yet in _CLAIMED)
    for ws in list(_CLAIMED):
        if ws._trainer != me:
            ws._trainer = None
            _CLAIMED.discard(ws)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
