"""Pricing and the dual lower bound of column generation (depth 2, squared loss).

``rho(Lam) = max_{||u|| = 1} ||Lam^T s(H0 u)||`` decides whether a neuron direction improves
the restricted master (it does iff ``rho > 2 lam`` at ``Lam = -grad C``), and any ``Lam`` gives
the Fenchel lower bound :func:`lower_bound` once scaled so that ``rho <= 2 lam``. See
:mod:`conic_dnn.two_layer.column_generation` for the derivation. :func:`price` is exact for a linear
activation (a spectral norm) and for ``rank(H0) <= 2`` (arcs between kinks); otherwise an SDP
per arrangement cell gives an upper bound.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from ..cone.patterns import arrangement_patterns, max_regions
from ..core.linalg import factor_range
from ..core.problem import Problem
from ..solvers import run

__all__ = ["price", "lower_bound"]


# --- pricing --------------------------------------------------------------------------------
def _values(Lam, H0, act, U) -> np.ndarray:
    """``||Lambda^T s(H0 u)||`` for every column ``u`` of ``U`` (d' x m)."""
    return np.linalg.norm(Lam.T @ act(H0 @ U), axis=0)


def _price_rank2(Lam, F, V, a, b):
    """Exact maximisation on the unit circle of a rank-2 range; returns (rho, [(val, u)])."""
    N = F.shape[0]
    nz = np.linalg.norm(F, axis=1) > 1e-14 * max(np.abs(F).max(), 1e-300)
    kinks = np.arctan2(F[nz, 0], -F[nz, 1]) % np.pi  # F_i . e(theta) = 0, plus pi
    kinks = np.unique(np.concatenate([kinks, kinks + np.pi, [0.0, 2 * np.pi]]))
    kinks = kinks[(kinks >= 0) & (kinks <= 2 * np.pi)]
    cands = []
    for t0, t1 in zip(kinks[:-1], kinks[1:]):
        if t1 - t0 <= 0:
            continue
        mid = 0.5 * (t0 + t1)
        z = F @ np.array([np.cos(mid), np.sin(mid)])
        DF = np.where(z > 0, a, b)[:, None] * F if N else F
        B = Lam.T @ DF  # k x 2
        Q = B.T @ B
        thetas = [t0, t1]
        w, E = np.linalg.eigh(Q)
        phi = np.arctan2(E[1, 1], E[0, 1]) % (2 * np.pi)
        for p in (phi, (phi + np.pi) % (2 * np.pi)):
            if t0 < p < t1:
                thetas.append(p)
        for th in thetas:
            e = np.array([np.cos(th), np.sin(th)])
            cands.append((float(np.sqrt(max(e @ Q @ e, 0.0))), V @ e))
    cands.sort(key=lambda c: -c[0])
    return cands[0][0], cands


def _ascent(Lam, H0, act, u, iters=50):
    """Monotone local ascent of ``||Lambda^T s(H0 u)||`` on the unit sphere of range(H0^T)."""
    best = float(_values(Lam, H0, act, u[:, None])[0])
    for _ in range(iters):
        z = H0 @ u
        g = H0.T @ (act.derivative(z) * (Lam @ (Lam.T @ act(z))))
        n = np.linalg.norm(g)
        if n == 0:
            break
        cand = g / n
        val = float(_values(Lam, H0, act, cand[:, None])[0])
        if val <= best * (1 + 1e-13):
            break
        u, best = cand, val
    return best, u


def _price_sdp(Lam, H0, V, act, patterns, solver, rng, n_starts):
    """SDP upper bound per cell (or +inf without cells) and heuristic columns."""
    F = H0 @ V
    N, r = F.shape
    starts = list((V @ rng.normal(size=(r, n_starts))).T)
    upper = np.inf
    if patterns is not None:
        W = cp.Variable((r, r), PSD=True)
        Mp = cp.Parameter((r, r), PSD=True)
        Sig = cp.Parameter((N, N))
        prob = cp.Problem(cp.Maximize(cp.trace(Mp @ W)),
                          [cp.trace(W) == 1, cp.multiply(Sig, F @ W @ F.T) >= 0])
        upper = 0.0
        for P in patterns:
            S = np.where(P, 1.0, -1.0)
            DF = np.where(P, act.a, act.b)[:, None] * F
            B = Lam.T @ DF
            M = B.T @ B
            Mp.value = 0.5 * (M + M.T) + 1e-300 * np.eye(r)
            Sig.value = np.outer(S, S)
            upper = max(upper, run(prob, solver, warn=False).value)
            w, E = np.linalg.eigh(W.value)
            starts.append(V @ E[:, -1])
        upper = float(np.sqrt(max(upper, 0.0)))
    cands = []
    for u in starts:
        for sgn in (1.0, -1.0):
            u0 = sgn * u / max(np.linalg.norm(u), 1e-300)
            cands.append(_ascent(Lam, H0, act, u0))
    cands.sort(key=lambda c: -c[0])
    found = cands[0][0]
    return max(upper, found), found, cands


def price(problem: Problem, Lam: np.ndarray, *, max_patterns: int = 256, solver=None,
          seed: int = 0, _patterns=None):
    """Maximise ``||Lam^T s(H0 u)||_2`` over unit ``u`` (the pricing problem).

    Parameters
    ----------
    problem : Problem
        Depth-2 problem with a positively homogeneous activation.
    Lam : ndarray, shape (N, k)
        Dual variable (``-grad C(Z)`` at a master solution).
    max_patterns : int
        Largest arrangement for the SDP bound (rank(H0) > 2 only).

    Returns
    -------
    rho_upper : float
        A valid upper bound on ``rho(Lam)`` (``inf`` when none is available).
    candidates : list of (float, ndarray of shape (d',))
        Unit directions with their values ``||Lam^T s(H0 u)||``, best first.
    method : str
        ``"identity"``, ``"rank2"`` (both exact) or ``"sdp"`` / ``"heuristic"``.
    """
    act, H0 = problem.activation, problem.H0
    V = factor_range(H0.T)[1]  # orthonormal basis of range(H0^T)
    r = V.shape[1]
    if r == 0:
        return 0.0, [], "rank2"
    if act.a == act.b:  # identity-type: the spectral norm
        _, sv, Wt = np.linalg.svd(Lam.T @ H0, full_matrices=False)
        return abs(act.a) * sv[0], [(abs(act.a) * s_, w) for s_, w in zip(sv, Wt)], "identity"
    if r == 1:
        u = V[:, 0]
        cands = sorted(((float(_values(Lam, H0, act, (s_ * u)[:, None])[0]), s_ * u)
                        for s_ in (1.0, -1.0)), key=lambda c: -c[0])
        return cands[0][0], cands, "rank2"
    if r == 2:
        rho, cands = _price_rank2(Lam, H0 @ V, V, act.a, act.b)
        return rho, cands, "rank2"
    rng = np.random.default_rng(seed)
    patterns = _patterns
    if patterns is None and max_patterns > 0:
        if max_regions(problem.N, r) <= max_patterns:
            patterns, _ = arrangement_patterns(H0)
            patterns = patterns if len(patterns) <= max_patterns else None
    upper, _, cands = _price_sdp(Lam, H0, V, act, patterns, solver, rng, n_starts=20)
    return upper, cands, ("sdp" if patterns is not None else "heuristic")


def lower_bound(problem: Problem, Lam: np.ndarray, rho_upper: float) -> float:
    """``max_{0 <= t <= 2 lam / rho_upper} g(t Lam)``: a lower bound on the global optimum.

    ``g(L) = <L, Y> - (N/4)||L||^2 - bias^2 ||L^T 1||^2 / (4 lam)`` (see the module docstring);
    ``-inf`` when ``rho_upper`` is infinite or not a number.
    """
    if not np.isfinite(rho_upper):
        return float("-inf")
    N, lam, beta = problem.N, problem.lam, problem.bias
    lin = float(np.sum(Lam * problem.Y))
    quad = N / 4 * float(np.sum(Lam**2)) + beta**2 * float(np.sum(Lam.sum(axis=0) ** 2)) / (4 * lam)
    t_max = 2 * lam / rho_upper if rho_upper > 0 else np.inf
    t = lin / (2 * quad) if quad > 0 else (t_max if lin > 0 else 0.0)
    t = float(np.clip(t, 0.0, t_max))
    return t * lin - t * t * quad


