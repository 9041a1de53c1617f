"""Rigorous lower bounds for depth 2: the cone program's dual, evaluated at a repaired point.

The dual (docs/MATH.md §3, "Certificates")
    Write ``matrix_frac(Z, G) = sup_V 2<V, Z> - <V V^T, G>`` and put ``Lam = 2 lam V``. For
    every ``Lam`` (N x k) weak duality gives, for every network,

        F >= D(Lam) = min_Z [C(Z) + <Lam, Z>] - bias^2 ||Lam^T 1||^2 / (4 lam)

    as soon as ``(lam pinv(G0), -Lam Lam^T / (4 lam))`` lies in the dual cone ``S_s*`` on
    ``range(H0)``, i.e. ``rho(Lam) = max_{||u|| = 1} ||Lam^T s(H0 u)|| <= 2 lam`` (the pricing
    condition of column generation). So a dual point is a matrix ``Lam`` and a *certified*
    upper bound ``rho_bar >= rho(Lam)``; ``t Lam`` with ``t = min(1, 2 lam / rho_bar)`` (or any
    smaller ``t >= 0``) is then dual feasible, and its value is a lower bound.
Where ``rho_bar`` comes from (all verified here in floating point, with margins)
    * exact pricing (:func:`conic_dnn.two_layer.pricing.price` for a linear activation,
      ``rank(H0) <= 2``, or one output on the cells of the arrangement while it has at most
      :data:`MAX_EXACT_SUBSETS` vertex subsets);
    * the pattern program's own dual: on a cell ``P`` of the arrangement (neurons
      ``z = F w``, ``F = H0 V``, ``S_P z >= 0``) any entrywise nonnegative ``N_P`` gives
      ``||Lam^T s(F w)||^2 <= w^T F^T S_P (T_P Lam Lam^T T_P + N_P) S_P F w``, so
      ``rho^2 <= max_P lambda_max(F^T S_P (T_P Lam Lam^T T_P + N_P) S_P F)`` — the solver's
      multipliers of the blocks' nonnegativity, clipped at 0, make it tight (any ``N_P >= 0``
      keeps it valid: their accuracy affects the bound's quality, never its validity).
    Rows of ``F`` below ``1e-12`` of the largest and singular directions of ``H0`` dropped as
    numerically zero are accounted for by the Lipschitz constant of ``s``; every eigenvalue
    and inner product gets a relative margin well above its rounding error.
``min_Z C(Z) + <Lam, Z> = -C*(-Lam)`` with the conjugates of :mod:`conic_dnn.core.losses`
    (``-inf`` off the domain; ``Lam`` is first repaired into it by ``-dual_point(-Lam)``):
    squared error ``<Lam, Y> - N ||Lam||^2 / 4``; logistic ``sum H(q) / N``, ``q = N y Lam
    in [0, 1]`` (H the binary entropy); hinge ``sum q / N``, ``q in [0, 1]``; Huber
    ``sum (<Lam, Y> - N Lam^2 / 4)``, ``|N Lam| <= 2 delta``; cross-entropy
    ``-sum q log q / N``, rows of ``q = Y - N Lam`` in the simplex (row sums of ``Lam`` zero
    exactly). User losses have no verified conjugate: no bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.scaling import lipschitz_constant
from .fenchel import (  # noqa: F401  (re-exported: the bound's one evaluation)
    CONJUGATE_LOSSES,
    EPS,
    VALUE_MARGIN,
    conjugate_value,
    dual_value,
    repair,
    supported,
)

__all__ = ["DualPoint", "conjugate_value", "repair", "rho_exact", "rho_cells", "rho_crude",
           "dual_value", "exact_available", "exact_cells", "EXACT_PRICING",
           "EXACT_METHODS"]

#: Relative margin added to every certified ``rho`` (rounding of eigenvalues and norms is
#: ~1e-15 relative on these small matrices; 1e-9 costs ~1e-9 relative in the bound).
RHO_MARGIN = 1e-9
#: A cell is repaired by its own SDP only when its bound exceeds ``(2 lam)^2`` by more than this
#: (relative): an excess ``delta`` shrinks ``t`` by ``delta / 2`` and costs the bound about as
#: much, relative (the constraint is active at the dual optimum); with the pattern program's
#: multipliers the excesses measured 1e-9..1e-5, and below 1e-3 they came from ``Lam`` itself
#: (the solver's accuracy), which no multiplier repairs.
REPAIR_RTOL = 1e-3
#: ``price`` methods whose ``rho`` is exact (not a heuristic or a solver's value); ``"cells"``
#: is a rigorous upper bound attained to 1e-13 (:func:`.cells.max_projection`).
EXACT_PRICING = ("identity", "rank2", "cells")
#: ``DualPoint.method`` of a ``rho`` from exact pricing (:func:`rho_exact`).
EXACT_METHODS = ("identity", "rank2", "cells_exact")


@dataclass
class DualPoint:
    """A dual-feasible point: ``Lam`` with a certified ``rho >= rho(Lam)``; ``source`` says
    where ``Lam`` came from, ``method`` how ``rho`` was certified."""

    Lam: np.ndarray
    rho: float
    source: str = ""
    method: str = ""


# --- certified rho ---------------------------------------------------------------------------
def _factor(H0: np.ndarray, rtol: float = 1e-12):
    """``(F, tail)``: ``F = H0 V`` over the kept right singular directions, rows below ``rtol``
    of the largest zeroed, and ``tail`` bounding ``||(H0 u) - F w||`` for a unit ``u`` (the
    dropped singular values and rows)."""
    if H0.size == 0:
        return np.zeros((H0.shape[0], 0)), 0.0
    _, s, Vt = np.linalg.svd(H0, full_matrices=False)
    if s.size == 0 or s[0] == 0:
        return np.zeros((H0.shape[0], 0)), 0.0
    keep = s > rtol * s[0]
    F = H0 @ Vt[keep].T
    tail = float(s[~keep].max()) if np.any(~keep) else 0.0
    rows = np.linalg.norm(F, axis=1)
    small = rows <= rtol * rows.max()
    if np.any(small):
        tail += float(np.linalg.norm(F[small]))
        F = F.copy()
        F[small] = 0.0
    return F, tail


def _inflate(problem, Lam, rho: float, tail: float) -> float:
    kappa = lipschitz_constant(problem)
    lam_norm = float(np.linalg.norm(Lam, 2)) if Lam.size else 0.0
    return float(rho * (1 + RHO_MARGIN) + kappa * lam_norm * tail * (1 + RHO_MARGIN)
                 + 1e-300)


def rho_crude(problem, Lam: np.ndarray) -> float:
    """``kappa ||Lam||_2 sigma_max(H0) >= rho(Lam)`` (``||s(z)|| <= kappa ||z||``): closed form,
    tight only when one neuron direction dominates; decides when the zero network is optimal."""
    H0 = problem.H0
    sig = float(np.linalg.norm(H0, 2)) if H0.size else 0.0
    return _inflate(problem, Lam, lipschitz_constant(problem) * float(np.linalg.norm(Lam, 2))
                    * sig, 0.0)


#: Largest ``C(m, r - 1)`` (vertex subsets, m distinct hyperplanes of ``H0``) for which one
#: output at rank > 2 is priced exactly on the cells of :mod:`conic_dnn.two_layer.cells`
#: (enumerated once per solve; above it the per-cell eigenvalue certificate is used).
MAX_EXACT_SUBSETS = 20_000


def exact_cells(problem):
    """``(V, F, patterns)`` for exact cell pricing of one output at rank > 2
    (:func:`conic_dnn.two_layer.pricing.cell_patterns_for`), ``None`` when the arrangement
    exceeds :data:`MAX_EXACT_SUBSETS` or the case needs no cells (k > 1, linear activation,
    rank <= 2)."""
    from ..core.linalg import factor_range
    from .pricing import cell_patterns_for

    act = problem.activation
    if problem.Y.shape[1] != 1 or act.a == act.b:
        return None
    if len(factor_range(problem.H0)[0]) <= 2:
        return None
    return cell_patterns_for(problem, max_subsets=MAX_EXACT_SUBSETS)


def exact_available(problem) -> bool:
    """True when :func:`rho_exact` is exact: a linear activation, ``rank(H0) <= 2``, or one
    output with at most :data:`MAX_EXACT_SUBSETS` vertex subsets (counted, not enumerated)."""
    from ..core.linalg import factor_range
    from .cells import count_vertex_subsets

    act = problem.activation
    V = factor_range(problem.H0.T)[1]
    if act.a == act.b or V.shape[1] <= 2:
        return True
    return (problem.Y.shape[1] == 1
            and count_vertex_subsets(problem.H0 @ V) <= MAX_EXACT_SUBSETS)


def rho_exact(problem, Lam: np.ndarray, cells=None) -> tuple[float, str]:
    """``(rho_bar, method)`` from exact pricing, or ``(inf, "")`` when pricing is not exact.
    ``cells``: :func:`exact_cells` of the problem (one output at rank > 2; computed once by the
    caller)."""
    from .pricing import price

    rho, _, method = price(problem, Lam, cells=cells, max_patterns=0)
    if method not in EXACT_PRICING:
        return float("inf"), ""
    F, tail = _factor(problem.H0)  # price drops the same directions (singular values < 1e-12)
    # the planar pricing ignores the kinks of rows below 1e-14 of the largest entry (the cells,
    # rows below 1e-12 of the largest row, zeroed in F and counted in the tail): their share of
    # any ||s(F w)|| is at most sqrt(N) 1e-14 max|F| (Lipschitz, unit w)
    if F.size:
        tail += np.sqrt(F.shape[0]) * 1e-14 * float(np.abs(F).max())
    # "cells_exact": not the per-cell eigenvalue certificate of rho_cells (method "cells")
    method = "cells_exact" if method == "cells" else str(method)
    return _inflate(problem, Lam, float(rho), tail), method


def _cell_multiplier(M: np.ndarray, SF: np.ndarray):
    """Multipliers ``N >= 0`` (N x N, zero diagonal) nearly minimising
    ``lambda_max(M + SF^T N SF)``: the dual of the cell's pricing SDP, solved by a cone solver
    (its accuracy does not matter: the caller verifies the result). None on failure."""
    import cvxpy as cp

    from ..core.errors import SolverFailedError
    from ..solvers import run

    n, r = SF.shape
    Nm = cp.Variable((n, n), symmetric=True)
    t = cp.Variable()
    lmi = t * np.eye(r) - M - SF.T @ Nm @ SF
    prob = cp.Problem(cp.Minimize(t), [0.5 * (lmi + lmi.T) >> 0, Nm >= 0, cp.diag(Nm) == 0])
    try:
        run(prob, None, warn=False, fallback=False, accept_inaccurate=True)
    except SolverFailedError:
        return None
    return None if Nm.value is None else np.asarray(Nm.value, dtype=float)


def _lambda_max(M: np.ndarray) -> float:
    M = 0.5 * (M + M.T)
    err = 4 * M.shape[0] * EPS * float(np.linalg.norm(M))  # Weyl: |computed - exact|
    return float(np.linalg.eigvalsh(M)[-1]) + err


def rho_cells(problem, Lam: np.ndarray, patterns: np.ndarray,
              multipliers: list | None = None, repair: bool = False,
              deadline=None) -> float:
    """``rho_bar`` from the cell certificate over ``patterns`` (every cell of the arrangement of
    ``H0`` that can carry a useful neuron), with nonnegative multipliers ``N_P`` (N x N, or
    None for zero). ``repair``: where a cell's bound exceeds ``2 lam``, compute multipliers for
    it by its own small SDP (then verified like the others)."""
    F, tail = _factor(problem.H0)
    if F.shape[1] == 0:
        return _inflate(problem, Lam, 0.0, tail)
    act = problem.activation
    target = (2 * problem.lam) ** 2
    top = 0.0
    for i, P in enumerate(np.asarray(patterns, dtype=bool)):
        S = np.where(P, 1.0, -1.0)
        T = np.where(P, act.a, -act.b)
        B = (T * S)[:, None] * F  # rows T_i S_i F_i: s(F w) = B w on the cell
        LB = Lam.T @ B
        M = LB.T @ LB
        SF = S[:, None] * F
        best = _lambda_max(M)
        if multipliers is not None and multipliers[i] is not None:
            Np = np.maximum(multipliers[i], 0.0)
            best = min(best, _lambda_max(M + SF.T @ (0.5 * (Np + Np.T)) @ SF))
        late = deadline is not None and deadline.expired()
        if repair and best > target * (1 + REPAIR_RTOL) and not late:
            Np = _cell_multiplier(M, SF)
            if Np is not None:
                Np = np.maximum(0.5 * (Np + Np.T), 0.0)
                np.fill_diagonal(Np, 0.0)
                best = min(best, _lambda_max(M + SF.T @ Np @ SF))
        top = max(top, best)
    return _inflate(problem, Lam, float(np.sqrt(max(top, 0.0))), tail)
