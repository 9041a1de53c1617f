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

:func:`scale_problem` picks ``a`` and ``b`` as powers of two (so every scaling is exact in
floating point and mapping back loses nothing) that bring the row RMS of ``[X, beta 1]`` and of
``Y`` near 1, as far as the symmetry allows. When ``d > N`` it also replaces ``X`` by the
``N x N`` factor ``X_r = U S`` of its thin SVD ``X = U S V^T`` (same Gram matrix ``X X^T``):
every first-layer weight ``A`` on ``X`` can be replaced by its projection ``A V V^T`` without
changing ``X A^T`` or raising ``||A||``, so the problems are equivalent, with ``A = A_r V^T``.
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
        ``a``: internal ``X = a X`` (times ``V``), a power of two.
    y_scale : float
        ``b``: internal ``Y = b Y`` (1 when the cost is not homogeneous), a power of two.
    weight_scale : float
        Original weights = ``weight_scale`` x internal weights (``(a/b)^{1/L}``).
    loss_scale : float
        Internal loss = ``loss_scale`` x original loss (``b^2``).
    basis : ndarray of shape (d, N) or None
        ``V`` when ``X`` was reduced to its Gram factor (``d > N``), else None.
    residual : float
        ``||X - X_r V^T||_F`` of that reduction in original units (0 without it): a bound
        on how far the reduced data are from the original.
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


def _pow2(x: float) -> int:
    """Exponent ``p`` with ``2^p`` nearest to ``x`` in log scale (0 for 0, inf or nan)."""
    if not (np.isfinite(x) and x > 0):
        return 0
    return int(round(math.log2(x)))


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

    Parameters
    ----------
    problem : Problem
        Homogeneous activation (the symmetry needs ``s(c z) = c s(z)``).
    reduce : bool
        Replace ``X`` by its ``N x N`` Gram factor when ``d > N``.
    scale : bool
        Apply the power-of-two rescaling.

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
    if not scale:
        a_exp = b_exp = 0
    else:
        N = X.shape[0]
        size_x = math.sqrt((float(np.sum(X**2)) + N * beta**2) / N)
        size_y = math.sqrt(float(np.sum(Y**2)) / N)
        a_exp = _pow2(1.0 / size_x) if size_x > 0 else 0
        b_exp = _pow2(1.0 / size_y) if (size_y > 0 and _y_scalable(problem)) else 0
        if beta > 0:
            # only the joint symmetry: a = b (or a alone if the cost cannot be scaled: none)
            b_exp = a_exp if _y_scalable(problem) else 0
            a_exp = b_exp
        else:
            # (a / b)^{1/L} must be a power of two: a_exp - b_exp divisible by L
            a_exp = b_exp + L * int(round((a_exp - b_exp) / L))
    a, b = 2.0**a_exp, 2.0**b_exp
    w_exp = (a_exp - b_exp) // L if beta == 0 else 0
    lam_int = problem.lam * 2.0 ** (2 * b_exp + 2 * ((a_exp - b_exp) // L if beta == 0 else 0))
    loss = problem.loss
    if isinstance(loss, Huber) and b != 1.0:
        loss = Huber(delta=loss.delta * b)
    internal = problem.replace(X=a * X, Y=b * Y, lam=lam_int, bias=a * beta, loss=loss)
    scaling = Scaling(x_scale=a, y_scale=b, weight_scale=2.0**w_exp, loss_scale=b * b,
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
