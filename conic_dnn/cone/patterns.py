"""Sign patterns of neurons and the hyperplane arrangement of the data (docs/MATH.md §3).

A neuron ``z`` in R^N with positive set ``P`` is ``z = S_P u`` with ``u >= 0``,
``S_P = diag(+1 on P, -1 off P)``; its post-activation is ``s(z) = T_P u`` with
``T_P = diag(a on P, -b off P)``. A pattern is stored as a boolean row of length N
(``True`` = in P).

Which patterns a layer needs
    All ``2^N`` in general, minus those whose generators are useless or repeated:
    ``T_P = 0`` (ReLU: ``P`` empty) adds cost and nothing else, and for the absolute value
    ``P`` and its complement give the same generators (keep the one containing point 0).
    The identity needs no patterns at all (one PSD block).
First layer
    Pre-activations lie in ``range(H_0)``, so only the cells of the hyperplane arrangement
    ``{w : h_i^T w = 0}`` occur: :func:`arrangement_patterns` enumerates them exactly (one LP per
    candidate cell and row, HiGHS), with a witness ``w`` for each.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import linprog

from ..core.linalg import factor_range

__all__ = ["all_patterns", "useful_patterns", "arrangement_patterns", "pattern_signs",
           "max_regions"]


def all_patterns(N: int) -> np.ndarray:
    """All ``2^N`` patterns as a boolean array of shape ``(2^N, N)`` (row 0 = empty set)."""
    return np.array(list(itertools.product([False, True], repeat=N)), dtype=bool)[:, ::-1]


def pattern_signs(patterns: np.ndarray, a: float, b: float):
    """Diagonals of ``S_P`` and ``T_P`` for each pattern: two arrays of shape ``(m, N)``."""
    P = np.asarray(patterns, dtype=bool)
    S = np.where(P, 1.0, -1.0)
    T = np.where(P, float(a), -float(b))
    return S, T


def useful_patterns(patterns: np.ndarray, a: float, b: float) -> np.ndarray:
    """Drop patterns whose generators add nothing: ``T_P = 0``, and for ``b = -a`` (absolute
    value) one of each complementary pair (``P`` and its complement give the same pairs)."""
    P = np.asarray(patterns, dtype=bool)
    _, T = pattern_signs(P, a, b)
    keep = np.any(T != 0, axis=1)
    if b == -a and P.shape[0] > 0:
        seen, rows = set(), []
        for i, p in enumerate(P):
            key = p.tobytes()
            comp = (~p).tobytes()
            if keep[i] and comp not in seen:
                seen.add(key)
                rows.append(i)
        return P[rows]
    return P[keep]


def max_regions(N: int, r: int) -> int:
    """Number of cells of a central arrangement of N hyperplanes in general position in R^r:
    ``2 * sum_{i<r} C(N-1, i)`` (Cover / Zaslavsky)."""
    from math import comb

    if r >= N:
        return 2**N
    return 2 * sum(comb(N - 1, i) for i in range(r))


def _feasible(F: np.ndarray, signs: np.ndarray):
    """A ``w`` with ``signs_i * F_i w >= 1`` for all rows, or None (HiGHS LP)."""
    r = F.shape[1]
    A = -(signs[:, None] * F)
    res = linprog(np.zeros(r), A_ub=A, b_ub=-np.ones(len(signs)), bounds=[(None, None)] * r,
                  method="highs")
    return res.x if res.status == 0 else None


def arrangement_patterns(H: np.ndarray, rtol: float = 1e-12):
    """The sign patterns ``{i : (H w)_i > 0}`` realisable by some ``w`` (cells of the arrangement).

    Parameters
    ----------
    H : ndarray, shape (N, d)
        Layer input (the first layer's ``[X, bias*1]``).
    rtol : float
        Relative singular-value tolerance for the rank of ``H``; rows that vanish in the
        reduced coordinates are always 0 and are put in ``P`` by convention.

    Returns
    -------
    patterns : ndarray of bool, shape (m, N)
    witnesses : ndarray, shape (m, d)
        For each pattern a ``w`` with ``sign(H w)`` equal to it on the nonzero rows.
    """
    H = np.asarray(H, dtype=float)
    N = H.shape[0]
    s, U = factor_range(H, rtol)
    r = len(s)
    if r == 0:
        return np.ones((1, N), dtype=bool), np.zeros((1, H.shape[1]))
    F = U * s  # (N, r): reduced coordinates, H = F V^T
    _, _, Vt = np.linalg.svd(H, full_matrices=False)
    V = Vt[:r].T
    if r == N:  # H w can be any vector: every pattern occurs, witness = pinv(H) S_P 1
        patterns = all_patterns(N)
        S = np.where(patterns, 1.0, -1.0)
        witnesses = (np.linalg.pinv(H) @ S.T).T
        order = np.lexsort(patterns.T[::-1])
        return patterns[order], witnesses[order]
    rownorm = np.linalg.norm(F, axis=1)
    active = np.flatnonzero(rownorm > rtol * max(rownorm.max(), 1e-300))
    Fa = F[active] / rownorm[active, None]
    cells = _cells_circle(Fa) if r == 2 else _cells_lp(Fa)
    patterns = np.ones((len(cells), N), dtype=bool)
    witnesses = np.zeros((len(cells), H.shape[1]))
    for j, (sg, w) in enumerate(cells):
        patterns[j, active] = sg > 0
        witnesses[j] = _to_input(w, s, V)
    order = np.lexsort(patterns.T[::-1])
    return patterns[order], witnesses[order]


def _cells_lp(Fa: np.ndarray) -> list:
    """Cells of the central arrangement of the rows of ``Fa`` (unit rows, ``r`` columns) as
    ``(signs, witness)``: rows are added one at a time and each cell is split where an LP
    finds both sides feasible."""
    r = Fa.shape[1]
    cells = [(np.zeros(0), np.zeros(r))]
    for i in range(len(Fa)):
        new = []
        h = Fa[i]
        for sg, w in cells:
            v = h @ w
            for sign in (1.0, -1.0):
                cand = np.append(sg, sign)
                if v * sign > 1e-9 * max(np.linalg.norm(w), 1e-300) and i > 0:
                    new.append((cand, w))
                    continue
                w2 = _feasible(Fa[: i + 1], cand)
                if w2 is not None:
                    new.append((cand, w2))
        cells = new
    return cells


def _cells_circle(Fa: np.ndarray, gap: float = 1e-12) -> list:
    """The same for ``r = 2``, exactly and without LPs: ``sign(Fa w(theta))`` changes only at
    the angles ``theta`` orthogonal to a row, so the cells are the arcs between consecutive
    such angles (arcs shorter than ``gap`` radians, from parallel rows, are one angle), each
    with its midpoint as witness."""
    base = np.arctan2(Fa[:, 1], Fa[:, 0])
    crit = np.sort(np.mod(np.concatenate([base + np.pi / 2, base - np.pi / 2]), 2 * np.pi))
    nxt = np.append(crit[1:], crit[0] + 2 * np.pi)
    keep = nxt - crit > gap
    mids = (crit[keep] + nxt[keep]) / 2
    W = np.stack([np.cos(mids), np.sin(mids)], axis=1)
    return [(np.where(Fa @ w > 0, 1.0, -1.0), w) for w in W]


def _to_input(w_reduced: np.ndarray, s: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Map reduced coordinates (``F w``, ``F = U diag(s)``) back to ``H``'s input space:
    ``H x = U diag(s) V^T x = F w`` for ``x = V w``."""
    return V @ w_reduced
