"""The best multiplier for a layer certificate: a subgradient search (docs/MATH.md §3,
Certificates).

Why
    A hidden layer ``l < L-1`` is certified with its neighbours' covariances fixed through the
    inequality, valid for *every* ``V`` in ``R^{N x n_{l+1}}``,

        tr(Y^T pinv(G') Y) >= 2 tr(V^T Y) - tr(V^T G' V),      Y = Z_{l+1},

    which makes the layer optimal up to ``lam ||W_{l+1} - V^T H_l||^2`` plus complementarity
    whenever ``(lam pinv(G_{l-1}), -lam V V^T)`` lies in the dual cone
    (:mod:`conic_dnn.certificates.certificate`). docs/MATH.md's ``V = pinv(G_l) Y`` is the gradient
    when ``G_l``
    has full rank. At a solver's optimum ``G_l`` is often rank deficient up to solver noise
    (relative eigenvalues ~1e-9): that ``V`` then blows up along the noise directions, and the
    back-propagated ``V`` is ambiguous when a later pre-activation sits at the kink of ``s``.
    The true subdifferential of the matrix-fractional term is ``{-V V^T : G_l V = Y}``: a
    *set*, and the layer is optimal iff one of its members passes the dual-cone test.

What
    :func:`certifying_multiplier` searches that set (relaxed to a stationarity residual
    ``||W_{l+1} - V^T H_l||_F <= delta``) for the ``V`` with the largest PSD + NN margin: for
    every sign pattern ``P`` covering ``range(G_{l-1})`` (coordinates ``z = Qb c``,
    ``||c|| = ||w||``, ``Qb^T A Qb = lam I``), with ``D_P = diag(a on P, b off P)``,

        [ (1 - t) I - Qb^T S_P N_P S_P Qb    (D_P Qb)^T V ]
        [ V^T D_P Qb                          I           ]  >= 0,     N_P >= 0 entrywise,

    the Schur complement of ``||c||^2 - ||V^T s(z)||^2 - c^T (...) c >= t ||c||^2`` on the
    pattern's cone. All constraints are jointly convex in ``(V, N_P, t)``: one SDP, exact in
    the same sense as the fixed-``V`` test (``N <= 4``). The returned ``V`` is then checked
    independently by the ordinary tests (enumeration, SDP, search) of
    :mod:`conic_dnn.certificates.certificate`; this module only proposes it.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np

from ..cone.dual_cone import _default_patterns
from ..cone.patterns import pattern_signs
from ..core.errors import SolverFailedError
from ..core.linalg import FACTOR_RTOL
from ..solvers import run

__all__ = ["certifying_multiplier"]


def certifying_multiplier(act, Qb: np.ndarray, Hn: np.ndarray, Wn: np.ndarray, delta: float,
                          max_patterns: int = 128, solver=None):
    """The multiplier ``V`` with the best PSD + NN dual-cone margin (module docstring).

    Parameters
    ----------
    act : Homogeneous
        The activation.
    Qb : ndarray, shape (N, q)
        ``z = Qb c`` parametrises ``range(G_{l-1})`` with ``||c||`` the incoming-weight norm.
    Hn : ndarray, shape (N, m)
        The next layer's input ``H_l`` (bias column included).
    Wn : ndarray, shape (n, m)
        The next layer's minimum-norm weights ``W_{l+1}`` (rows in the row space of ``Hn``;
        otherwise no ``V`` meets a small ``delta``).
    delta : float
        Allowed stationarity residual ``||W_{l+1} - V^T H_l||_F``.
    max_patterns : int
        ``None`` is returned when more sign patterns than this would be needed.
    solver : str, optional

    Returns
    -------
    V : ndarray, shape (N, n), or None
        ``None`` when the patterns are too many or the SDP could not be solved.
    margin : float
        The SDP's margin (``min f / lam`` bound for that ``V``; ``nan`` with ``V = None``).
    """
    N, q = Qb.shape
    P = _default_patterns(N, Qb, act, max_patterns)
    if P is None or q == 0:
        return None, float("nan")
    # reduce the n outgoing columns to the k <= N directions W_{l+1} uses
    U, s, _ = np.linalg.svd(Wn, full_matrices=False)
    keep = s > FACTOR_RTOL * s[0] if s.size and s[0] > 0 else np.zeros(s.size, dtype=bool)
    Pw = U[:, keep]  # (n, k)
    k = Pw.shape[1]
    if k == 0:
        return np.zeros((N, Wn.shape[0])), float("nan")
    Wr = Pw.T @ Wn  # (k, m); ||W - Pw V'^T H|| = ||Wr - V'^T H|| for V = V' Pw^T
    S, _ = pattern_signs(P, act.a, act.b)
    Dg = np.where(P, float(act.a), float(act.b))
    V = cp.Variable((N, k))
    t = cp.Variable()
    cons = [cp.norm(Wr - V.T @ Hn, "fro") <= delta]
    for i in range(len(P)):
        SQ = S[i][:, None] * Qb
        Nn = cp.Variable((N, N), symmetric=True)
        top = (1 - t) * np.eye(q) - SQ.T @ Nn @ SQ
        off = (Dg[i][:, None] * Qb).T @ V
        M = cp.bmat([[0.5 * (top + top.T), off], [off.T, np.eye(k)]])
        cons += [Nn >= 0, M >> 0]
    try:
        # a proposal only (checked by the caller): the first solver, inaccurate accepted --
        # an SCS fallback on these SDPs takes minutes
        run(cp.Problem(cp.Maximize(t), cons), solver, accept_inaccurate=True, warn=False,
            fallback=False)
    except SolverFailedError:  # the caller keeps its own multipliers
        return None, float("nan")
    if V.value is None:
        return None, float("nan")
    return V.value @ Pw.T, float(t.value)
