"""Small linear-algebra helpers shared by every module, with their tolerances stated once.

Numerical rank
    A Gram matrix ``G`` (PSD, N x N) has numerical rank = number of eigenvalues above
    ``GRAM_RTOL * lambda_max(G)``. When a factor ``H`` with ``G = H H^T`` is at hand (the
    activation form has it) its singular values are resolved to machine precision, so the
    threshold there is ``FACTOR_RTOL * sigma_max(H)``: the activation form is the more accurate
    one on ill-conditioned layers (a Gram matrix loses half the digits).
Range conditions
    A matrix ``Z`` lies in ``range(G)`` when ``||Z - P Z||_F <= RANGE_RTOL * ||Z||_F`` with ``P``
    the orthogonal projector on the numerical range.
PSD clean-up
    Solver output is symmetrised; eigenvalues above ``-PSD_CLIP_RTOL * lambda_max`` are clipped
    to zero, more negative ones raise (the matrix is not PSD and the caller must know).
"""

from __future__ import annotations

import numpy as np

GRAM_RTOL = 1e-12
FACTOR_RTOL = 1e-12
RANGE_RTOL = 1e-6
PSD_CLIP_RTOL = 1e-6

__all__ = ["GRAM_RTOL", "FACTOR_RTOL", "RANGE_RTOL", "PSD_CLIP_RTOL", "psd_eigh", "gram_pinv",
           "range_basis", "factor_range", "range_residual", "clean_psd", "sym"]


def sym(A: np.ndarray) -> np.ndarray:
    """Symmetric part ``(A + A^T) / 2``."""
    A = np.asarray(A, dtype=float)
    return 0.5 * (A + A.T)


def psd_eigh(G: np.ndarray, rtol: float = GRAM_RTOL):
    """Eigenpairs of a PSD matrix above the numerical-rank threshold.

    Returns
    -------
    w : ndarray, shape (r,)
        Eigenvalues kept (``> rtol * max(lambda_max, 0)``).
    U : ndarray, shape (N, r)
        Orthonormal eigenvectors.
    """
    w, U = np.linalg.eigh(sym(G))
    top = max(float(w[-1]) if w.size else 0.0, 0.0)
    keep = w > rtol * top if top > 0 else np.zeros_like(w, dtype=bool)
    return w[keep], U[:, keep]


def gram_pinv(G: np.ndarray, rtol: float = GRAM_RTOL) -> np.ndarray:
    """Pseudo-inverse of a PSD matrix with relative eigenvalue tolerance ``rtol``."""
    w, U = psd_eigh(G, rtol)
    return (U / w) @ U.T


def factor_range(H: np.ndarray, rtol: float = FACTOR_RTOL):
    """SVD of a factor ``H`` (``G = H H^T``) restricted to its numerical range.

    Returns ``(s, U)``: kept singular values and left singular vectors.
    """
    if H.size == 0:
        return np.zeros(0), np.zeros((H.shape[0], 0))
    U, s, _ = np.linalg.svd(H, full_matrices=False)
    keep = s > rtol * s[0] if s[0] > 0 else np.zeros_like(s, dtype=bool)
    return s[keep], U[:, keep]


def range_basis(G: np.ndarray, rtol: float = GRAM_RTOL) -> np.ndarray:
    """Orthonormal basis, shape ``(N, r)``, of the numerical range of a PSD matrix."""
    return psd_eigh(G, rtol)[1]


def range_residual(U: np.ndarray, Z: np.ndarray) -> float:
    """Relative size ``||Z - U U^T Z|| / ||Z||`` of the part of ``Z`` outside ``range(U)``."""
    nz = np.linalg.norm(Z)
    if nz == 0:
        return 0.0
    return float(np.linalg.norm(Z - U @ (U.T @ Z)) / nz)


def clean_psd(A: np.ndarray, rtol: float = PSD_CLIP_RTOL, name: str = "matrix") -> np.ndarray:
    """Symmetrise and clip tiny negative eigenvalues; raise on large ones.

    Raises
    ------
    ValueError
        If an eigenvalue is below ``-rtol * lambda_max``.
    """
    A = sym(A)
    w, U = np.linalg.eigh(A)
    top = max(float(np.max(np.abs(w))) if w.size else 0.0, 0.0)
    if top == 0:
        return np.zeros_like(A)
    if w[0] < -rtol * top:
        raise ValueError(f"{name}: expected a PSD matrix, got an eigenvalue {w[0]:.3g} "
                         f"(largest {top:.3g}, tolerance {rtol:g} relative)")
    w = np.clip(w, 0.0, None)
    return (U * w) @ U.T
