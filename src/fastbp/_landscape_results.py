"""The results of :mod:`fastbp.landscape`: plain records of a grid and its
losses, read by the computation that makes them and the plots that draw
them (``fastbp._plot_landscape``), so neither of those imports the other.
Their public names are ``fastbp.landscape.Line``, ``Surface`` and
``Interpolation``."""
from dataclasses import dataclass

import numpy as np


@dataclass(eq=False, repr=False)
class Line:
    """The loss along one direction: ``losses[i] = E(params + alphas[i] direction)``.

    Attributes
    ----------
    alphas : ndarray of float64, (steps,)
        The grid, symmetric about 0 (exactly 0 in the middle for odd steps).
    losses : ndarray of float64, (steps,)
    direction : ndarray of float64, (n_params,)
        In the layout of ``net.params``.
    centre : float
        The loss at the model's params, equal to ``net.loss(X, y)``.
    normalise : {"filter", None}
        How a random direction was scaled (``"given"`` for a given one).
    seed : int or None
        The seed of a random direction; None for a given one (the seed
        argument is then unused) or a fresh draw.
    model : str
        A one-line description of the network, for titles.
    seconds : float
        Time of the grid's evaluation (compilation excluded).
    """

    alphas: np.ndarray
    losses: np.ndarray
    direction: np.ndarray
    centre: float
    normalise: object
    seed: object
    model: str
    seconds: float

    def __repr__(self):
        return (f"Line(steps={self.alphas.size}, span={self.alphas[-1]:g}, centre={self.centre:.6g},"
                f" min={self.losses.min():.6g}, max={self.losses.max():.6g},"
                f" normalise={self.normalise!r}, seconds={self.seconds:.3g})")


@dataclass(eq=False, repr=False)
class Surface:
    """The loss over a plane: ``losses[j, i] = E(params + alphas[i] d1 + betas[j] d2)``.

    ``losses`` is indexed ``[i_beta, i_alpha]`` (rows follow ``betas``), as
    matplotlib's ``contour(alphas, betas, losses)`` expects.

    Attributes
    ----------
    alphas, betas : ndarray of float64, (steps,)
        The grid along ``directions[0]`` and ``directions[1]``.
    losses : ndarray of float64, (steps, steps)
    directions : ndarray of float64, (2, n_params)
        ``d1`` and ``d2`` in the layout of ``net.params``.
    centre, normalise, seed, model, seconds
        As for :class:`Line`.
    """

    alphas: np.ndarray
    betas: np.ndarray
    losses: np.ndarray
    directions: np.ndarray
    centre: float
    normalise: object
    seed: object
    model: str
    seconds: float

    def __repr__(self):
        return (f"Surface(steps={self.alphas.size}x{self.betas.size}, span={self.alphas[-1]:g},"
                f" centre={self.centre:.6g}, min={self.losses.min():.6g},"
                f" max={self.losses.max():.6g}, normalise={self.normalise!r},"
                f" seconds={self.seconds:.3g})")


@dataclass(eq=False, repr=False)
class Interpolation:
    """The loss along ``theta(t) = (1 - t) theta_a + t theta_b``.

    Attributes
    ----------
    ts : ndarray of float64, (steps,)
    losses : ndarray of float64, (steps,)
    loss_a, loss_b : float
        The loss at t = 0 and t = 1, equal to ``net_a.loss(X, y)`` and
        ``net_b.loss(X, y)``.
    model, seconds
        As for :class:`Line`.
    """

    ts: np.ndarray
    losses: np.ndarray
    loss_a: float
    loss_b: float
    model: str
    seconds: float

    def __repr__(self):
        return (f"Interpolation(steps={self.ts.size}, span=({self.ts[0]:g}, {self.ts[-1]:g}),"
                f" loss_a={self.loss_a:.6g}, loss_b={self.loss_b:.6g},"
                f" min={self.losses.min():.6g}, seconds={self.seconds:.3g})")


for _cls in (Line, Surface, Interpolation):
    _cls.__module__ = "fastbp.landscape"  # their public home (repr, pickle, help)
