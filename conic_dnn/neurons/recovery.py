"""From a solved layer program back to explicit neurons (docs/MATH.md §3-4).

pattern representation
    Each block ``C_P`` is completely positive when exact: ``C_P = B B^T`` with ``B >= 0``
    (:func:`conic_dnn.neurons.decompose.cp_factorize`), and every column ``u`` of ``B`` is a neuron
    ``z = S_P u`` with ``s(z) = T_P u``, so ``sum_P`` of the generators is exactly ``(K, G)``.
    Where a block cannot be factorised to tolerance (a DNN-but-not-CP block, possible for
    ``N >= 5``) the closest factor found is used and the residual is reported.
identity activation
    ``K = G = M`` PSD: the neurons are ``sqrt(w_i) v_i`` from the eigendecomposition.
lifted representation
    No exact recovery exists (it is a relaxation from N = 4 on); the neurons are read from the
    eigenvectors of the lifted block (``z = w_+ - w_-``) and the caller polishes the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..cone.patterns import pattern_signs
from ..core.linalg import psd_eigh, sym
from .decompose import cp_factorize

__all__ = ["Recovery", "recover_neurons", "BLOCK_RTOL", "CHEAP_BUDGET"]

#: Blocks whose trace is below ``BLOCK_RTOL`` times the total are solver noise and skipped
#: (the solvers stop at relative accuracy ~1e-9; the network is rebuilt with min-norm weights
#: afterwards and its own loss is what gets reported, so this never misreports a value).
BLOCK_RTOL = 1e-7
#: Largest residual ``||B B^T - C_P|| / ||C_P||`` of a factorisation against the solver's own
#: block that still counts as exact (the solvers' relative accuracy is ~1e-8..1e-9).
NOISE_RTOL = 1e-6


@dataclass
class Recovery:
    """Neurons recovered from a layer solution.

    Attributes
    ----------
    Z : ndarray, shape (N, n)
        The neurons as columns (pre-activations of the hidden layer).
    residual : float
        Largest relative factorisation residual ``||B B^T - C_P|| / ||C_P||`` over the blocks
        (0 for the identity; ``nan`` for the lifted heuristic).
    failed_blocks : int
        Blocks not factorised to tolerance.
    exact : bool
        True when every block was factorised to tolerance.
    """

    Z: np.ndarray
    residual: float
    failed_blocks: int
    exact: bool


def _clean_block(C: np.ndarray) -> np.ndarray:
    """The solver's block made doubly nonnegative: alternating projections onto the PSD cone
    and the nonnegative orthant (a few rounds; solver noise is ~1e-9 of the total, so the
    change is of that order). The factorisation residual is then measured against the
    original block, so larger violations still show."""
    C = sym(C)
    for _ in range(5):
        w, U = np.linalg.eigh(C)
        if w[0] < 0:
            C = sym((U * np.maximum(w, 0.0)) @ U.T)
        if C.min() >= 0:
            break
        C = np.maximum(C, 0.0)
    return np.maximum(C, 0.0)


def _wedge_neurons(solution) -> Recovery:
    """Planar cells: ``C_P = (S_P E_P) M_P (S_P E_P)^T`` with ``M_P`` 2 x 2, ``E_P`` the
    cell's edges. A 2 x 2 doubly nonnegative matrix factors in closed form into nonnegative
    rank-one terms (``[[a, b], [b, c]] = u u^T + v v^T``, ``u = (sqrt a, b / sqrt a)``,
    ``v = (0, sqrt(c - b^2 / a))``), so the neurons are ``E_P u`` and ``E_P v``: no search."""
    N = solution.K.shape[0]
    S = np.where(solution.patterns, 1.0, -1.0)
    total = sum(float(np.trace(C)) for C in solution.blocks) or 1.0
    cols, worst = [], 0.0
    for i, (C, E, M) in enumerate(zip(solution.blocks, solution.wedge_edges,
                                      solution.wedge_cores)):
        if float(np.trace(C)) <= BLOCK_RTOL * total:
            continue
        w, U = np.linalg.eigh(sym(M))  # solver noise: project onto the 2 x 2 DNN matrices
        M = sym((U * np.maximum(w, 0.0)) @ U.T)
        a, b, c = M[0, 0], max(M[0, 1], 0.0), M[1, 1]
        if a > 1e-300:
            F = np.array([[np.sqrt(a), 0.0], [b / np.sqrt(a), np.sqrt(max(c - b * b / a, 0.0))]])
        else:
            F = np.array([[0.0, 0.0], [0.0, np.sqrt(max(c, 0.0))]])
        Zp = E @ F                       # neurons, each in the closed cell
        B = S[i][:, None] * Zp           # C_P = B B^T up to the solver's noise
        worst = max(worst, float(np.linalg.norm(B @ B.T - C) / np.linalg.norm(C)))
        cols.append(Zp[:, np.linalg.norm(Zp, axis=0) > 0])
    Z = np.hstack(cols) if cols else np.zeros((N, 0))
    failed = int(worst > NOISE_RTOL)
    return Recovery(Z, worst, failed, failed == 0)


#: The factorisation budget where a polish follows (``cheap=True``): one restart of 50
#: iterations. The neurons are then a candidate checked by a forward pass, not the result. A
#: block of order <= 4 it cannot factorise gets the full budget (a factorisation exists there);
#: a larger one keeps its closest factor (reported in the residual).
CHEAP_BUDGET = {"n_restarts": 1, "max_iter": 50}


def recover_neurons(solution, activation, tol: float = 1e-10, seed: int = 0,
                    rank_rtol: float = 1e-10, cheap: bool = False) -> Recovery:
    """Explicit neurons whose generators sum to the solution's ``(K, G)``.

    Parameters
    ----------
    solution : LayerSolution
    activation : Homogeneous
    tol : float
        Relative residual accepted for a CP factorisation.
    seed : int
        Seed of the factorisation's restarts (deterministic).
    rank_rtol : float
        Eigenvalues of a block below ``rank_rtol`` times its largest are dropped.
    cheap : bool, default False
        Try :data:`CHEAP_BUDGET` first (for a caller that checks and polishes the network it
        builds from these neurons); False: the full budget, for when the exact decomposition
        is the result.
    """
    N = solution.K.shape[0]
    if activation.is_linear:
        w, U = psd_eigh(solution.K)
        return Recovery(U * np.sqrt(w), 0.0, 0, True)
    if solution.patterns is None:  # lifted heuristic
        w, U = psd_eigh(solution.K)
        Z = U * np.sqrt(w)
        return Recovery(np.hstack([Z, -Z]) / np.sqrt(2.0), float("nan"), 0, False)
    if getattr(solution, "wedge_cores", None) is not None:
        return _wedge_neurons(solution)
    S, _ = pattern_signs(solution.patterns, activation.a, activation.b)
    total = sum(float(np.trace(C)) for C in solution.blocks) or 1.0
    cols, worst, failed = [], 0.0, 0
    for i, C in enumerate(solution.blocks):
        if float(np.trace(C)) <= BLOCK_RTOL * total:
            continue  # solver noise: an interior-point solution never has exact zero blocks
        Cc = _clean_block(C)
        # beyond order 4 a DNN block need not be CP: a small search budget (measured: the
        # default budget spent minutes on N = 12 blocks that have no factorisation)
        n = C.shape[0]
        budget = {} if n <= 4 else {"n_restarts": 2, "max_iter": 300, "max_rank": 2 * n}
        fac = None
        if cheap:
            fac = cp_factorize(Cc, tol=tol, seed=seed + i, rank_rtol=rank_rtol,
                               **{**budget, **CHEAP_BUDGET})
            if not fac.success and n > 4:  # a DNN block beyond order 4 need not be CP:
                pass                       # the closest cheap factor is the candidate
            elif not fac.success:          # order <= 4: CP = DNN, the full budget finds it
                fac = None
        if fac is None:
            fac = cp_factorize(Cc, tol=tol, seed=seed + i, rank_rtol=rank_rtol, **budget)
        B = np.maximum(fac.B, 0.0)
        res = float(np.linalg.norm(B @ B.T - C) / np.linalg.norm(C))
        worst = max(worst, res)
        if not fac.success or res > NOISE_RTOL:
            failed += 1
        B = B[:, np.linalg.norm(B, axis=0) > 0]
        cols.append(S[i][:, None] * B)
    Z = np.hstack(cols) if cols else np.zeros((N, 0))
    return Recovery(Z, worst, failed, failed == 0)
