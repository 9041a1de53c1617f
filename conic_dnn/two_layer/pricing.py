"""Pricing and the dual lower bound of column generation (depth 2, squared loss).

``rho(Lam) = max_{||u|| = 1} ||Lam^T s(H0 u)||`` decides whether a neuron direction improves
the restricted master (it does iff ``rho > 2 lam`` at ``Lam = -grad C``), and any ``Lam`` gives
the Fenchel lower bound :func:`lower_bound` once scaled so that ``rho <= 2 lam``. See
:mod:`conic_dnn.two_layer.column_generation` for the derivation. :func:`price` is exact for a linear
activation (a spectral norm), for ``rank(H0) <= 2`` (arcs between kinks) and, for one output
(``k = 1``), at any rank (the cells of the hyperplane arrangement, each a projection onto a
polyhedral cone: :mod:`conic_dnn.two_layer.cells`). For ``2 <= k <=`` :data:`SPHERE_MAX_K` at
rank > 2 it is exact to ``rtol`` too: ``rho = max_{||w|| = 1} rho1(Lam w)`` (a convex function of
the output direction ``w``) by branch and bound over spherical simplices of ``w``, each vertex an
exact one-output cell pricing (:mod:`conic_dnn.two_layer.sphere`), ``"cells_sphere"``; a branch
and bound stopped by its deterministic work cap (``max_work``) or node budget returns the largest
bound of its open nodes, rigorous but looser (``"sphere_budget"``). Larger ``k``: a rigorous but
looser bound (per-cell spectral norm and the rotated cone bound of :func:`_cell_bound_k`, an SDP
per cell when few cells remain). Before any of these, ``Lam`` is reduced to its numerical range
in the output space (:func:`output_range`): ``||Lam^T s|| = ||Lam_q^T s||`` for ``Lam = U S W^T``,
``Lam_q = U_q S_q``. A cross-entropy dual has rows summing to zero (``q <= k - 1``), so two
classes are priced exactly as one output and ``C`` classes on a sphere of one dimension less.

:func:`lower_bound` is the Fenchel dual bound for every built-in convex loss (conjugates in
:mod:`conic_dnn.core.losses`).
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from ..cone.patterns import max_regions
from ..core.linalg import factor_range
from ..core.problem import Problem
from ..solvers import run
from . import cells as _cells_mod
from .fenchel import dual_value
from .sphere import price_sphere

__all__ = ["price", "lower_bound", "cell_patterns_for", "output_range", "MAX_CELL_SUBSETS",
           "SPHERE_MAX_K"]

#: Largest ``C(m, r - 1)`` (vertex subsets) for which the cells are enumerated for pricing.
MAX_CELL_SUBSETS = 400_000
#: Most outputs priced exactly by the branch and bound over output directions (``2^(k-1)``
#: root simplices; above it the per-cell bound).
SPHERE_MAX_K = 4


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


def _ascend_all(Lam, H0, act, starts) -> list:
    """:func:`_ascent` from every start and its opposite, best first."""
    cands = []
    for u in starts:
        for sgn in (1.0, -1.0):
            u0 = sgn * u / max(np.linalg.norm(u), 1e-300)
            cands.append(_ascent(Lam, H0, act, u0))
    cands.sort(key=lambda c: -c[0])
    return cands


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
    cands = _ascend_all(Lam, H0, act, starts)
    found = cands[0][0]
    return max(upper, found), found, cands


def cell_patterns_for(problem: Problem, max_subsets: int | None = None):
    """``(V, F, patterns)`` for exact cell pricing (``F = H0 V``, ``V`` an orthonormal basis of
    ``range(H0^T)``), or ``None`` when the enumeration would exceed ``max_subsets`` vertex
    subsets (default :data:`MAX_CELL_SUBSETS`)."""
    V = factor_range(problem.H0.T)[1]
    F = problem.H0 @ V
    limit = MAX_CELL_SUBSETS if max_subsets is None else max_subsets
    if V.shape[1] == 0 or _cells_mod.count_vertex_subsets(F) > limit:
        return None
    return V, F, _cells_mod.cell_patterns(F)


def _price_cells_k1(Lam, V, F, act, patterns, bound=True):
    kw = {} if bound else {"n_seed": 32}
    rho, cands, n = _cells_mod.max_projection(F, Lam[:, 0], patterns, act.a, act.b,
                                              bound=bound, **kw)
    return rho, [(val, V @ e) for val, e in cands]


def _cell_bound_k(Lam, F, act, patterns, best, iters=40):
    """Rigorous upper bounds on ``max_{e in K_P, ||e|| <= 1} ||B_P e||``, ``B_P = Lam^T D_P F``,
    per cell: ``min(sigma_1(B_P), sqrt(sum_j sigma_j^2 max_+- ||Proj_K(+-w_j)||^2))`` with
    ``B_P = sum_j sigma_j z_j w_j^T`` (``||B e||^2 = sum_j sigma_j^2 (w_j^T e)^2`` and
    ``w^T e <= ||Proj_K(w)||`` on the cell), the projections bounded by dual iterates."""
    D = np.where(patterns, act.a, act.b)  # (M, N)
    B = np.einsum("nk,mn,nr->mkr", Lam, D, F)
    _, sig, Wt = np.linalg.svd(B, full_matrices=False)  # sig (M, q), Wt (M, q, r)
    bound = sig[:, 0] * (1 + 1e-14)
    live = np.flatnonzero(bound > best)
    if len(live) == 0:
        return bound, B
    S = np.where(patterns[live], 1.0, -1.0)
    tot = np.zeros(len(live))
    for j in range(sig.shape[1]):
        Cj = sig[live, j, None] * Wt[live, j, :]
        up = _cells_mod._dual_bounds(F, Cj, S, 0.0, iters, 0.0)
        dn = _cells_mod._dual_bounds(F, -Cj, S, 0.0, iters, 0.0)
        tot += np.maximum(up, dn) ** 2
    bound[live] = np.minimum(bound[live], np.sqrt(tot) * (1 + 1e-14))
    return bound, B


def _price_cells_k(Lam, H0, V, F, act, patterns, rng, n_starts, solver, sdp_max):
    """k > 1 at rank > 2: heuristic columns (ascent) and a rigorous per-cell upper bound,
    tightened by the cell's SDP where at most ``sdp_max`` cells stay above the best value."""
    r = V.shape[1]
    starts = list((V @ rng.normal(size=(r, n_starts))).T)
    D = np.where(patterns, act.a, act.b)
    B = np.einsum("nk,mn,nr->mkr", Lam, D, F)
    top = np.argsort(-np.linalg.norm(B, axis=(1, 2)))[:8]
    for j in top:
        _, e = _cells_mod.cone_projection(F, patterns[j], np.linalg.svd(B[j])[2][0])
        if np.linalg.norm(e) > 0:
            starts.append(V @ e)
    cands = _ascend_all(Lam, H0, act, starts)
    best = cands[0][0]
    bound, _ = _cell_bound_k(Lam, F, act, patterns, best)
    above = np.flatnonzero(bound > best * (1 + 1e-9))
    if 0 < len(above) <= sdp_max:
        up, _, more = _price_sdp(Lam, H0, V, act, patterns[above], solver, rng, 0)
        # the SDP is a relaxation of each cell: its value bounds the cell from above
        bound[above] = np.minimum(bound[above], up * (1 + 1e-7))
        cands = sorted(cands + more, key=lambda c: -c[0])
        best = cands[0][0]
    return max(float(bound.max(initial=0.0)), best), cands


def price(problem: Problem, Lam: np.ndarray, *, max_patterns: int = 256, solver=None,
          seed: int = 0, _patterns=None, cells=None, sdp_max: int = 32,
          bound: bool = True, target: float = 0.0, rtol: float = 1e-9,
          max_nodes: int = 20_000, max_work: float = np.inf, seeds=None,
          stats: dict | None = None, deadline=None):
    """Maximise ``||Lam^T s(H0 u)||_2`` over unit ``u`` (the pricing problem).

    Parameters
    ----------
    problem : Problem
        Depth-2 problem with a positively homogeneous activation.
    Lam : ndarray, shape (N, k)
        Dual variable (``-grad C(Z)`` at a master solution).
    max_patterns : int
        Without ``cells``: largest arrangement for the per-cell bounds at rank(H0) > 2 (cells
        are then enumerated here; ``0``: no bound, heuristic columns only).
    cells : tuple, optional
        ``(V, F, patterns)`` from :func:`cell_patterns_for` (enumerated once per problem).
    sdp_max : int
        ``k > 1``: the per-cell SDP tightens the bound when at most this many cells stay
        above the best value found.
    bound : bool, default True
        False: one output at rank > 2 only searches the most promising cells for improving
        columns (``rho_upper = inf``, method ``"cells_search"``); cheaper than the bound.
    target, rtol, max_nodes
        ``2 <= k <= SPHERE_MAX_K`` at rank > 2 (:func:`conic_dnn.two_layer.sphere.price_sphere`):
        directions with values below ``target (1 + rtol)`` are not resolved (column
        generation passes ``2 lam``), ``rtol`` the relative accuracy above
        ``max(rho, target)``, ``max_nodes`` the node budget.
    max_work, seeds, stats
        The branch and bound's deterministic work cap (units of one exact cell projection;
        reached: a valid, looser bound, method ``"sphere_budget"``), columns ``u`` to seed its
        incumbent (the master's atoms), and a dict filled with ``closed``, ``capped``,
        ``work``, ``n_nodes`` of the search.
    deadline : conic_dnn.core.budget.Deadline, optional
        The branch and bound stops when it expires, as at its work cap.

    Returns
    -------
    rho_upper : float
        A valid upper bound on ``rho(Lam)`` (``inf`` when none is available). ``Lam`` is
        priced on its numerical output range (:func:`output_range`, dropped singular values
        below ``1e-12`` of the largest; their bound on the value is added here), so ``Lam``
        of rank one (two-class cross-entropy) gets the exact one-output cell pricing, method
        ``"cells"``.
    candidates : list of (float, ndarray of shape (d',))
        Unit directions with their values ``||Lam^T s(H0 u)||``, best first.
    method : str
        ``"identity"``, ``"rank2"``, ``"cells"`` (all exact), ``"cells_sphere"`` (k > 1, exact
        to ``rtol`` above ``target``), ``"sphere_budget"`` (k > 1, work or node cap reached:
        valid, looser), ``"cell_bound"`` (k > SPHERE_MAX_K, a valid bound) or ``"heuristic"``
        (no bound).
    """
    Lam = np.asarray(Lam, dtype=float).reshape(problem.N, -1)
    margin = 0.0
    if Lam.shape[1] > 1:
        Lam, margin = output_range(Lam, problem.H0, problem.activation)
    inner = None if stats is None else {}
    rho, cands, method = _price(problem, Lam, max_patterns=max_patterns, solver=solver,
                                seed=seed, _patterns=_patterns, cells=cells, sdp_max=sdp_max,
                                bound=bound, target=target, rtol=rtol, max_nodes=max_nodes,
                                max_work=max_work, seeds=seeds, stats=inner,
                                deadline=deadline)
    if stats is not None:  # one output left: exact, closed, not charged to the work cap
        stats.update(inner or {"closed": True, "capped": False, "work": 0.0, "n_nodes": 0})
    return rho + margin, cands, method


def output_range(Lam: np.ndarray, H0: np.ndarray, activation) -> tuple[np.ndarray, float]:
    """``(Lam_q, margin)``: ``Lam`` (N, k) on its numerical range in the output space.

    ``Lam = U S W^T`` (thin SVD); ``Lam_q = U_q S_q`` (N, q) keeps the singular values above
    ``1e-12`` of the largest, so ``||Lam^T s|| = ||S U^T s||`` and
    ``||Lam_q^T s|| <= ||Lam^T s|| <= ||Lam_q^T s|| + margin`` for every ``s = s(H0 u)``,
    ``||u|| = 1``: ``margin`` bounds the dropped part, ``||S_rest||_2 max ||s(H0 u)||`` with
    ``||s(H0 u)|| <= max(|a|, |b|) ||H0||_2``, plus ``4e-15 N S_1`` of the same for the
    rounding of the factorisation. A cross-entropy dual point (rows summing to zero) has
    ``q <= k - 1``.
    """
    U, sv, _ = np.linalg.svd(Lam, full_matrices=False)
    q = max(1, int(np.sum(sv > 1e-12 * sv[0]))) if sv[0] > 0 else 1
    if q == Lam.shape[1]:
        return Lam, 0.0
    scale = max(abs(activation.a), abs(activation.b)) * float(np.linalg.norm(H0, 2))
    margin = (float(np.sqrt(np.sum(sv[q:] ** 2))) + 4e-15 * Lam.shape[0] * float(sv[0])) * scale
    return U[:, :q] * sv[:q], margin


def _price(problem, Lam, *, max_patterns, solver, seed, _patterns, cells, sdp_max, bound,
           target, rtol, max_nodes, max_work, seeds, stats, deadline=None):
    """:func:`price` on ``Lam`` as given (no output range reduction)."""
    act, H0 = problem.activation, problem.H0
    V = factor_range(H0.T)[1] if cells is None else cells[0]
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
    if cells is None and _patterns is not None:
        cells = (V, H0 @ V, np.asarray(_patterns, dtype=bool))
    if cells is None and max_patterns > 0 and max_regions(problem.N, r) <= max_patterns:
        cells = cell_patterns_for(problem)
    if cells is None:
        upper, _, cands = _price_sdp(Lam, H0, V, act, None, solver, rng, n_starts=20)
        return upper, cands, "heuristic"
    V, F, patterns = cells
    if Lam.shape[1] == 1:
        rho, cands = _price_cells_k1(Lam, V, F, act, patterns, bound)
        return rho, cands, ("cells" if bound else "cells_search")
    if Lam.shape[1] <= SPHERE_MAX_K:
        res = price_sphere(Lam, V, F, act.a, act.b, patterns, target=target, rtol=rtol,
                           max_nodes=max_nodes, max_work=max_work, seeds=seeds,
                           deadline=deadline)
        if stats is not None:
            stats.update(closed=res.closed, capped=res.capped, work=res.work,
                         n_nodes=res.n_nodes)
        return res.rho_upper, res.candidates, ("cells_sphere" if res.closed else
                                               "sphere_budget")
    rho, cands = _price_cells_k(Lam, H0, V, F, act, patterns, rng, 20, solver, sdp_max)
    return rho, cands, "cell_bound"


def lower_bound(problem: Problem, Lam: np.ndarray, rho_upper: float) -> float:
    """``max_{0 <= t <= 2 lam / rho_upper} g(t Lam)``: a lower bound on the global optimum.

    ``g(L) = -C*(-L) - bias^2 ||L^T 1||^2 / (4 lam)`` (``C*`` the loss's conjugate,
    :meth:`conic_dnn.core.losses.Loss.conjugate`; for the squared loss
    ``<L, Y> - (N/4)||L||^2 - ...``), valid whenever ``rho(L) <= 2 lam``; ``t`` is also kept in
    the conjugate's domain (move ``Lam`` into it first, before pricing it:
    ``-loss.dual_point(-Lam, Y)``). ``-inf`` when ``rho_upper`` is infinite or not a number.
    Evaluated by :func:`conic_dnn.two_layer.fenchel.dual_value` (with its rounding margin).
    """
    return dual_value(problem, np.asarray(Lam, dtype=float).reshape(problem.N, -1), rho_upper)
