"""Attraction and repulsion in a hidden layer (docs/MATH.md §2; the paper's
attraction/repulsion forces).

For hidden layer ``l`` the activation loss depends on ``Z_l`` through two terms:
``lam * tr(Z_l^T pinv(G_{l-1}) Z_l)`` (attraction, from ``||W_l||^2``) and
``lam * tr(Z_{l+1}^T pinv(G_l) Z_{l+1})`` (repulsion, from ``||W_{l+1}||^2`` through
``G_l = s(Z_l) s(Z_l)^T + bias^2 1 1^T``). Their gradients in ``Z_l`` are

    attraction = 2 lam pinv(G_{l-1}) Z_l
    repulsion  = -2 lam [pinv(G_l) Z_{l+1} Z_{l+1}^T pinv(G_l) s(Z_l)] * s'(Z_l)

(the forces are minus these). The second formula holds where the rank of ``G_l`` is locally
constant (e.g. ``G_l`` invertible); ``eps > 0`` replaces every ``pinv(G)`` by ``(G + eps I)^-1``,
as the paper does for its plots.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .formulations import _activations, _check_problem, layer_inputs
from .linalg import gram_pinv, psd_eigh

__all__ = ["Forces", "attraction_repulsion"]


@dataclass(frozen=True)
class Forces:
    """Gradients of the two regularisation terms in ``Z_l``, each of shape ``(N, n_l)``.

    Attributes
    ----------
    layer : int
        The hidden layer (1-based).
    attraction : ndarray
        Gradient of ``lam * tr(Z_l^T pinv(G_{l-1}) Z_l)``.
    repulsion : ndarray
        Gradient of ``lam * tr(Z_{l+1}^T pinv(G_l) Z_{l+1})``.
    """

    layer: int
    attraction: np.ndarray
    repulsion: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """Gradient of the activation loss in ``Z_l`` (attraction + repulsion)."""
        return self.attraction + self.repulsion


def _inv(G, eps):
    if eps > 0:
        return np.linalg.inv(G + eps * np.eye(G.shape[0]))
    return gram_pinv(G)


def attraction_repulsion(problem, activations, layer: int, eps: float = 0.0) -> Forces:
    """Attraction and repulsion gradients of hidden layer ``layer`` (1-based, ``< depth``).

    Parameters
    ----------
    problem : Problem
    activations : list of ndarray
        ``Z_1..Z_L``.
    layer : int
        Hidden layer ``1 <= layer <= depth - 1``.
    eps : float, default 0
        Tikhonov regularisation of the inverses (0: pseudo-inverse).

    Returns
    -------
    Forces
    """
    problem = _check_problem(problem)
    Zs = _activations(problem, activations)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
        raise TypeError(f"layer: expected an integer, got {type(layer).__name__}")
    if not 1 <= layer <= problem.depth - 1:
        raise ValueError(f"layer: expected a hidden layer 1..{problem.depth - 1}, got {layer}")
    if eps < 0:
        raise ValueError(f"eps: expected a number >= 0, got {eps}")
    act = problem.activation
    Hs = layer_inputs(problem, Zs)
    Z, Z_next = Zs[layer - 1], Zs[layer]
    A = _inv(Hs[layer - 1] @ Hs[layer - 1].T, eps)
    G = Hs[layer] @ Hs[layer].T
    if eps == 0 and psd_eigh(G)[0].size < problem.N:
        warnings.warn(f"layer {layer}: G_l is rank deficient (rank {psd_eigh(G)[0].size} < N = "
                      f"{problem.N}); the pseudo-inverse formula is the gradient only where the "
                      f"rank is locally constant: pass eps > 0 for a regularised gradient",
                      RuntimeWarning, stacklevel=2)
    Ginv = _inv(G, eps)
    attraction = 2 * problem.lam * (A @ Z)
    M = Ginv @ Z_next @ Z_next.T @ Ginv
    repulsion = -2 * problem.lam * (M @ act(Z)) * act.derivative(Z)
    return Forces(layer, attraction, repulsion)
