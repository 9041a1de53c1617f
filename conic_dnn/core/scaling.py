"""Internal scaling of a problem to unit size, and the reduction of wide data to its Gram factor.

The rescaling symmetry (docs/MATH.md §1, depth ``L``, homogeneous ``s``)
    For ``c > 0`` and weights ``W_l -> c^{-1/L} W_l`` the network computes the same outputs on
    ``c X`` as on ``X`` (each layer is homogeneous of degree one, ``c * (c^{-1/L})^L = 1``), and
    ``lam' sum ||c^{-1/L} W_l||^2 = lam sum ||W_l||^2`` for ``lam' = c^{2/L} lam``. So
    ``F_{cX, Y, c^{2/L} lam}(c^{-1/L} W) = F_{X, Y, lam}(W)``: the loss is invariant, and the
    map is a bijection of the weights, so optima, bounds and certificates correspond. Depth 2:
    ``X -> c X``, ``lam -> c lam``. This needs ``bias = 0``: the bias column ``beta * 1`` of every
    hidden layer does not scale with the layer.
The joint symmetry (any bias)
    With the weights unchanged, ``(X, beta) -> (c X, c beta)`` multiplies every layer's output,
    bias column included, by ``c``; for a cost homogeneous of degree two in ``(Z, Y)`` (squared
    error; Huber with ``delta -> c delta``) ``(X, Y, beta, lam) -> (c X, c Y, c beta, c^2 lam)``
    multiplies the whole loss by ``c^2``.
Combined (``bias = 0``, degree-two cost)
    ``(X, Y, lam) -> (a X, b Y, b^2 (a/b)^{2/L} lam)``, weights ``W_l -> (b/a)^{1/L} W_l``, loss
    times ``b^2``.

:func:`scale_problem` picks ``a`` and ``b`` that bring the row RMS of ``[X, beta 1]`` and of
``Y`` to 1, as far as the symmetry allows. Nothing computed internally is trusted as such: the
network is mapped back and its loss recomputed on the user's problem, and the lower bound is a
dual point mapped back and verified there (:mod:`conic_dnn.two_layer.dual_bound`). When
``d > N`` it also replaces ``X`` by the ``N x N`` factor ``X_r = U S`` of its thin SVD
``X = U S V^T`` (same Gram matrix ``X X^T``): every first-layer weight ``A`` on ``X`` can
be replaced by its projection ``A V V^T`` without changing ``X A^T`` or raising ``||A||``, so
the problems are equivalent, with ``A = A_r V^T``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .losses import MSE, Huber
from .network import Network
from .problem import Problem

__all__ = ["Scaling", "scale_problem", "network_to_original", "network_to_internal",
           "lipschitz_constant"]


@dataclass(frozen=True)
class Scaling:
    """How an internal problem was made from the user's.

    Attributes
    ----------
    x_scale : float
        ``a``: internal ``X = a X`` (times ``V``).
    y_scale : float
        ``b``: internal ``Y = b Y`` (1 when the cost is not homogeneous).
    weight_scale : float
        Original weights = ``weight_scale`` x internal weights (``(a/b)^{1/L}``).
    loss_scale : float
        Internal loss = ``loss_scale`` x original loss (``b^2``).
    basis : ndarray of shape (d, N) or None
        ``V`` when ``X`` was reduced to its Gram factor (``d > N``), else None.
    residual : float
        A bound on ``||X - X_int V^T / a||_2`` in original units: the reduction's residual plus
        the rounding of ``a X``.
    """

    x_scale: float = 1.0
    y_scale: float = 1.0
    weight_scale: float = 1.0
    loss_scale: float = 1.0
    basis: np.ndarray | None = None
    residual: float = 0.0

    @property
    def identity(self) -> bool:
        return (self.x_scale == 1.0 and self.y_scale == 1.0 and self.weight_scale == 1.0
                and self.basis is None)

    def as_dict(self) -> dict:
        """JSON-safe summary for ``Result.info``."""
        return {"x_scale": self.x_scale, "y_scale": self.y_scale,
                "weight_scale": self.weight_scale, "loss_scale": self.loss_scale,
                "gram_reduced": self.basis is not None, "reduction_residual": self.residual}


def _y_scalable(problem: Problem) -> bool:
    return type(problem.loss) in (MSE, Huber)


def lipschitz_constant(problem: Problem) -> float:
    """``max(|a|, |b|)``: the Lipschitz constant of the activation ``s``."""
    act = problem.activation
    return float(max(abs(act.a), abs(act.b)))


def _reduce(X: np.ndarray):
    """``(X_r, V, residual)`` with ``X_r = U S`` (N x N) and ``X ~= X_r V^T``."""
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    Xr = U * s
    resid = float(np.linalg.norm(X - Xr @ Vt))
    return Xr, Vt.T, resid


def scale_problem(problem: Problem, reduce: bool = True, scale: bool = True
                  ) -> tuple[Problem, Scaling]:
    """The internal problem the solvers see, and the :class:`Scaling` that maps back.

    ``a = 1 / rms(rows of [X, beta 1])``, ``b = 1 / rms(rows of Y)`` (``b = 1`` when the cost is
    not homogeneous of degree two, ``b = a`` with a bias), so that ``X`` and ``c X`` give the
    same internal problem up to one rounding per entry: the solve is invariant under the
    symmetry. ``residual`` bounds the distance between the original data and the internal
    data mapped back (the Gram reduction's residual plus ``2 eps ||X||_F`` for the rounding of
    ``a X``), for the bounds' Lipschitz margin.

    Parameters
    ----------
    problem : Problem
        Homogeneous activation (the symmetry needs ``s(c z) = c s(z)``).
    reduce : bool
        Replace ``X`` by its ``N x N`` Gram factor when ``d > N``.
    scale : bool
        Apply the rescaling.

    Returns
    -------
    internal : Problem
    scaling : Scaling
    """
    problem.require_homogeneous("internal scaling")
    X, Y, L, beta = np.asarray(problem.X), np.asarray(problem.Y), problem.depth, problem.bias
    basis, resid = None, 0.0
    if reduce and X.shape[1] > X.shape[0]:
        X, basis, resid = _reduce(X)
    a = b = 1.0
    if scale:
        N = X.shape[0]
        size_x = math.sqrt((float(np.sum(X**2)) + N * beta**2) / N)
        size_y = math.sqrt(float(np.sum(Y**2)) / N)
        a = 1.0 / size_x if 0 < size_x < np.inf else 1.0
        b = 1.0 / size_y if (0 < size_y < np.inf and _y_scalable(problem)) else 1.0
        if beta > 0:  # only the joint symmetry: a = b, or nothing if Y cannot be scaled
            a = b = (a if _y_scalable(problem) else 1.0)
        if not all(np.isfinite(v) and v > 0 for v in (a, b)):
            a = b = 1.0
    w = (a / b) ** (1.0 / L) if beta == 0 else 1.0
    lam_int = problem.lam * b * b * (a / b) ** (2.0 / L) if beta == 0 else problem.lam * a * a
    loss = problem.loss
    if isinstance(loss, Huber) and b != 1.0:
        loss = Huber(delta=loss.delta * b)
    if not (np.isfinite(lam_int) and lam_int > 0):  # over/underflow: no scaling
        a = b = w = 1.0
        lam_int = problem.lam
        loss = problem.loss
    if a != 1.0:
        resid += 2 * float(np.finfo(float).eps) * float(np.linalg.norm(X))
    internal = problem.replace(X=a * X, Y=b * Y, lam=lam_int, bias=a * beta, loss=loss)
    scaling = Scaling(x_scale=a, y_scale=b, weight_scale=w, loss_scale=b * b,
                      basis=basis, residual=resid)
    return internal, scaling


def network_to_original(scaling: Scaling, network: Network, original: Problem) -> Network:
    """The user's network from an internal one: weights times ``weight_scale``, the first
    layer's input weights mapped through ``V^T`` after a Gram reduction."""
    ws = [scaling.weight_scale * np.asarray(W, dtype=float) for W in network.weights]
    if scaling.basis is not None:
        V = scaling.basis
        W1 = ws[0]
        r = V.shape[1]
        parts = [W1[:, :r] @ V.T]
        if original.bias > 0:
            parts.append(W1[:, r:])
        ws[0] = np.hstack(parts)
    return Network(tuple(ws), original.activation, original.bias)


def network_to_internal(scaling: Scaling, network: Network, internal: Problem) -> Network:
    """The inverse map (an initial network given by the user, in original units)."""
    ws = [np.asarray(W, dtype=float) / scaling.weight_scale for W in network.weights]
    if scaling.basis is not None:
        V = scaling.basis
        W1 = ws[0]
        d = V.shape[0]
        parts = [W1[:, :d] @ V]
        if internal.bias > 0:
            parts.append(W1[:, d:])
        ws[0] = np.hstack(parts)
    return Network(tuple(ws), internal.activation, internal.bias)
