"""The three equivalent forms of the regularised loss (docs/MATH.md §1-3).

parameters
    ``F(W) = C(Z_L) + lam * sum_l ||W_l||_F^2``.
activations (any activation)
    ``F(Z) = C(Z_L) + lam * sum_l tr(Z_l^T pinv(G_{l-1}) Z_l)``, ``G_{l-1} = H_{l-1} H_{l-1}^T``,
    ``+inf`` unless every ``Z_l`` lies in ``range(H_{l-1})``.
covariances (homogeneous activations)
    ``F = C(Z_L) + lam * [tr(K_1 pinv(G_0)) + sum_l tr(K_l pinv(G_{l-1}))
    + tr(Z_L^T pinv(G_{L-1}) Z_L)]`` with ``K_l = Z_l Z_l^T``,
    ``G_l = s(Z_l) s(Z_l)^T + bias^2 1 1^T``.

Pseudo-inverses and range checks use the tolerances of :mod:`conic_dnn.core.linalg`.
The activation form is computed from the SVD of each layer input ``H``; the covariance form from
the eigendecomposition of ``G``; minimum-norm weights from a least-squares solve. The three code
paths are independent, which the tests exploit.
"""

from __future__ import annotations

import numpy as np

from .forward import check_weights, forward
from .linalg import FACTOR_RTOL, GRAM_RTOL, RANGE_RTOL, factor_range, psd_eigh, range_residual
from .problem import Problem

__all__ = [
    "loss_parameters", "activations_from_weights", "loss_activations", "range_residuals",
    "range_violations", "min_norm_weights", "covariances_from_activations",
    "loss_covariances", "layer_inputs",
]


def _check_problem(problem) -> Problem:
    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected a conic_dnn.Problem, got {type(problem).__name__}")
    return problem


def _weights(problem: Problem, weights) -> list[np.ndarray]:
    if hasattr(weights, "weights") and not isinstance(weights, (list, tuple)):
        weights = list(weights.weights)
    return check_weights(weights, problem.d, problem.k, problem.depth, problem.bias)


def _activations(problem: Problem, activations) -> list[np.ndarray]:
    if isinstance(activations, np.ndarray) or not isinstance(activations, (list, tuple)):
        raise TypeError("activations: expected a list of 2-D arrays Z_1..Z_L, got "
                        f"{type(activations).__name__}")
    if len(activations) != problem.depth:
        raise ValueError(f"activations: expected {problem.depth} arrays (depth), "
                         f"got {len(activations)}")
    out = []
    for i, Z in enumerate(activations):
        Z = np.asarray(Z, dtype=float)
        if Z.ndim != 2 or Z.shape[0] != problem.N:
            raise ValueError(f"activations[{i}]: expected shape ({problem.N}, n), got {Z.shape}")
        if not np.all(np.isfinite(Z)):
            raise ValueError(f"activations[{i}]: expected finite values, got NaN or inf")
        out.append(Z)
    if out[-1].shape[1] != problem.k:
        raise ValueError(f"activations[-1]: expected shape ({problem.N}, {problem.k}) "
                         f"(the output Z_L), got {out[-1].shape}")
    return out


def layer_inputs(problem: Problem, activations) -> list[np.ndarray]:
    """The layer inputs ``H_0..H_{L-1}`` (with the bias column when ``bias > 0``)."""
    act = problem.activation
    Hs = [problem.H0]
    for Z in activations[:-1]:
        Hs.append(problem.with_input(act(Z)))
    return Hs


def loss_parameters(problem: Problem, weights) -> float:
    """Regularised loss in parameter form, ``C(Z_L) + lam * sum_l ||W_l||_F^2``.

    Parameters
    ----------
    problem : Problem
    weights : list of ndarray or Network
        ``weights[l]`` of shape ``(n_{l+1}, n_l)`` (``+1`` column when ``problem.bias > 0``).

    Returns
    -------
    float
    """
    problem = _check_problem(problem)
    ws = _weights(problem, weights)
    Z_L = forward(problem.X, ws, problem.activation, problem.bias)[-1]
    return problem.loss.value(Z_L, problem.Y) + problem.lam * sum(float(np.sum(W**2)) for W in ws)


def activations_from_weights(problem: Problem, weights) -> list[np.ndarray]:
    """Pre-activations ``Z_1..Z_L`` of the training set, each of shape ``(N, n_l)``."""
    problem = _check_problem(problem)
    ws = _weights(problem, weights)
    return forward(problem.X, ws, problem.activation, problem.bias)


def range_residuals(problem: Problem, activations) -> list[float]:
    """For each layer ``l = 1..L``: ``||Z_l - P_l Z_l|| / ||Z_l||``, ``P_l`` the projector on
    ``range(H_{l-1})``. The activation loss is finite iff all are ``<= RANGE_RTOL``."""
    problem = _check_problem(problem)
    Zs = _activations(problem, activations)
    res = []
    for H, Z in zip(layer_inputs(problem, Zs), Zs):
        _, U = factor_range(H, FACTOR_RTOL)
        res.append(range_residual(U, Z))
    return res


def range_violations(problem: Problem, activations, rtol: float = RANGE_RTOL) -> list[int]:
    """The layers (1-based) whose pre-activations are *not* in the range of their input,
    i.e. the reason :func:`loss_activations` is ``inf``; empty when the loss is finite."""
    return [i + 1 for i, r in enumerate(range_residuals(problem, activations)) if r > rtol]


def loss_activations(problem: Problem, activations) -> float:
    """Regularised loss in activation form (docs/MATH.md §2); any activation.

    Parameters
    ----------
    problem : Problem
    activations : list of ndarray
        ``Z_1..Z_L``, each of shape ``(N, n_l)``; ``Z_L`` of shape ``(N, k)``.

    Returns
    -------
    float
        ``C(Z_L) + lam * sum_l tr(Z_l^T pinv(G_{l-1}) Z_l)``, or ``inf`` when some ``Z_l`` is
        not in ``range(H_{l-1})`` (see :func:`range_violations` for which layer).
    """
    problem = _check_problem(problem)
    Zs = _activations(problem, activations)
    total = 0.0
    for H, Z in zip(layer_inputs(problem, Zs), Zs):
        s, U = factor_range(H, FACTOR_RTOL)
        if range_residual(U, Z) > RANGE_RTOL:
            return float("inf")
        total += float(np.sum(((U.T @ Z).T / s) ** 2))
    return problem.loss.value(Zs[-1], problem.Y) + problem.lam * total


def min_norm_weights(problem: Problem, activations) -> list[np.ndarray]:
    """Minimal-norm weights realising the given pre-activations: ``W_l^T = pinv(H_{l-1}) Z_l``.

    Returns
    -------
    list of ndarray
        ``W_l`` of shape ``(n_l, n_{l-1} [+1])``.

    Raises
    ------
    ValueError
        If some ``Z_l`` is not in the range of its input (no weights realise it).
    """
    problem = _check_problem(problem)
    Zs = _activations(problem, activations)
    bad = range_violations(problem, Zs)
    if bad:
        raise ValueError(f"activations: expected Z_l in range(H_(l-1)) for every layer, got "
                         f"layer(s) {bad} outside (no weights realise them)")
    ws = []
    for H, Z in zip(layer_inputs(problem, Zs), Zs):
        if Z.shape[1] == 0 or H.shape[1] == 0:
            ws.append(np.zeros((Z.shape[1], H.shape[1])))
            continue
        rcond = FACTOR_RTOL
        Wt = np.linalg.lstsq(H, Z, rcond=rcond)[0]
        ws.append(np.ascontiguousarray(Wt.T))
    return ws


def covariances_from_activations(problem: Problem, activations) -> list[tuple[np.ndarray,
                                                                              np.ndarray]]:
    """Covariance pairs ``(K_l, G_l)`` of the hidden layers ``l = 1..L-1``.

    ``K_l = Z_l Z_l^T`` and ``G_l = s(Z_l) s(Z_l)^T + bias^2 1 1^T``, each ``(N, N)``.
    """
    problem = _check_problem(problem)
    act = problem.require_homogeneous("covariances_from_activations")
    Zs = _activations(problem, activations)
    b2 = problem.bias ** 2
    out = []
    for Z in Zs[:-1]:
        S = act(Z)
        out.append((Z @ Z.T, S @ S.T + b2))
    return out


def _check_pair(A, N, name):
    A = np.asarray(A, dtype=float)
    if A.shape != (N, N):
        raise ValueError(f"{name}: expected shape ({N}, {N}), got {A.shape}")
    if not np.all(np.isfinite(A)):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return A


def loss_covariances(problem: Problem, covariances, output) -> float:
    """Regularised loss in covariance form (docs/MATH.md §3); homogeneous activations.

    Parameters
    ----------
    problem : Problem
    covariances : list of (ndarray, ndarray)
        ``(K_l, G_l)`` for ``l = 1..L-1``, each ``(N, N)``; ``G_l`` includes the
        ``bias^2 1 1^T`` shift.
    output : ndarray, shape (N, k)
        ``Z_L``.

    Returns
    -------
    float
        ``inf`` when a range condition ``range(K_l) in range(G_{l-1})`` (or ``Z_L`` in
        ``range(G_{L-1})``) fails.
    """
    problem = _check_problem(problem)
    problem.require_homogeneous("loss_covariances")
    N, L = problem.N, problem.depth
    if not isinstance(covariances, (list, tuple)) or len(covariances) != L - 1:
        got = (f"{len(covariances)} pairs" if isinstance(covariances, (list, tuple))
               else type(covariances).__name__)
        raise ValueError(f"covariances: expected a list of {L - 1} (K, G) pairs, got {got}")
    Z_L = np.asarray(output, dtype=float)
    if Z_L.shape != (N, problem.k):
        raise ValueError(f"output: expected shape ({N}, {problem.k}), got {Z_L.shape}")
    pairs = [(_check_pair(pair[0], N, f"covariances[{i}][0] (K_{i + 1})"),
              _check_pair(pair[1], N, f"covariances[{i}][1] (G_{i + 1})"))
             for i, pair in enumerate(covariances)]  # every pair checked before any value
    total = 0.0
    G_prev = problem.G0
    for K, G in pairs:
        w, U = psd_eigh(G_prev, GRAM_RTOL)
        UtKU = U.T @ K @ U
        trK = float(np.trace(K))
        if trK > 0 and (trK - float(np.trace(UtKU))) > RANGE_RTOL**2 * trK:
            return float("inf")
        total += float(np.sum(np.diag(UtKU) / w))
        G_prev = G
    w, U = psd_eigh(G_prev, GRAM_RTOL)
    if range_residual(U, Z_L) > RANGE_RTOL:
        return float("inf")
    total += float(np.sum(((U.T @ Z_L).T / np.sqrt(w)) ** 2))
    return problem.loss.value(Z_L, problem.Y) + problem.lam * total
