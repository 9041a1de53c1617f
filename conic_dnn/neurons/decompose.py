"""Neuron decomposition: completely-positive factorisation and Caratheodory reduction
(docs/MATH.md §3-4).

``cp_factorize``
    ``C = B B^T`` with ``B >= 0`` for a doubly nonnegative ``C`` (exact for n <= 4, where
    CP = DNN). Alternating projections between ``{B >= 0}`` and ``{C^{1/2} Q : Q orthogonal}``
    (Groetzner & Dür, 2020) with seeded random restarts and growing inner dimension; the result
    is verified (``residual``) and ``success`` says whether it met ``tol``.
``caratheodory``
    Reduce a conic combination ``sum_j c_j g(z_j)`` of generators
    ``g(z) = (z z^T, s(z) s(z)^T)`` to at most ``rank <= N(N+1)`` terms with the same sum.
    Default ``method="nullspace"``: Caratheodory elimination by basis exchange (one pass over
    the neurons, ``O(n r^2)`` for ``n`` neurons and generator rank ``r``; width 10,000 at
    N = 20 in seconds), verified, repaired by nonnegative least squares if rounding shows.
    ``method="lp"``: a vertex of ``{c >= 0 : A c = A c0}`` by the dual simplex (HiGHS) on
    chunks of ``2r`` columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linprog, lsq_linear, nnls

from ..core.errors import SizeLimitError

#: Relative error ``||sum_j c_j g_j - sum_j c0_j g_j||`` accepted after a Caratheodory
#: reduction (below the cone solvers' accuracy ~1e-9; the pruned network is rebuilt with
#: min-norm weights and its own loss is what gets reported).
SUM_RTOL = 1e-9

#: Largest working memory of a Caratheodory reduction (or a generator rank) without a larger
#: ``max_bytes``: the generator matrix is ``N(N+1) x n`` (N = 300 samples and n = 20,000
#: neurons is 14 GB), and the reduction holds about ``GENERATOR_COPIES`` arrays of its size
#: (the matrix, its normalised copy, the SVD factor, the projection).
MAX_GENERATOR_BYTES = 2**31
GENERATOR_COPIES = 4

__all__ = ["SUM_RTOL", "CPFactorization", "cp_factorize", "generator_matrix", "generator_rank",
           "caratheodory", "MAX_GENERATOR_BYTES", "generator_bytes", "check_generator_size"]


def generator_bytes(N: int, n: int) -> int:
    """Working memory estimate (bytes) of a reduction of ``n`` neurons on ``N`` samples."""
    return GENERATOR_COPIES * 8 * N * (N + 1) * n


def check_generator_size(N: int, n: int, max_bytes: float | None = None,
                         what: str = "caratheodory") -> None:
    """Raise :class:`~conic_dnn.SizeLimitError` before anything is allocated when a reduction
    of ``n`` neurons on ``N`` samples would need more than ``max_bytes``
    (default ``MAX_GENERATOR_BYTES``; ``inf`` disables the guard)."""
    limit = MAX_GENERATOR_BYTES if max_bytes is None else max_bytes
    need = generator_bytes(N, n)
    if need > limit:
        raise SizeLimitError(
            f"{what}: {n:,} neurons on N = {N} samples need ~{need / 2**30:.1f} GiB for the "
            f"N(N+1) x n generator matrix and its factors (limit {limit / 2**30:.3g} GiB); "
            f"prune on fewer samples, or pass a larger max_bytes= if the memory is there")


@dataclass(frozen=True)
class CPFactorization:
    """``C ~= B B^T`` with ``B >= 0``.

    Attributes
    ----------
    B : ndarray, shape (n, r), entrywise >= 0
    residual : float
        ``||B B^T - C||_F / ||C||_F``.
    success : bool
        ``residual <= tol``.
    """

    B: np.ndarray
    residual: float
    success: bool


def _residual(B, C, nc):
    return float(np.linalg.norm(B @ B.T - C) / nc) if nc > 0 else 0.0


def _polar(M):
    """Orthogonal polar factor (stacked matrices allowed)."""
    U, _, Vt = np.linalg.svd(M)
    return U @ Vt


def _batched_alternation(Rr, Q, C, nc, tol, max_iter):
    """Alternate ``B = Rr Q`` with ``Q = polar(Rr^T max(B, 0))`` for a stack of rotations
    ``Q`` (shape ``(m, r, r)``). A start stops when ``B >= 0``, when its clipped factor meets
    ``tol`` (checked every 10 iterations), or when it stalls; all stop as soon as one meets
    ``tol``. Returns the final ``B`` (shape ``(m, n, r)``) and the clipped residuals."""
    m = Q.shape[0]
    B = Rr[None] @ Q
    res = np.full(m, np.inf)
    alive = np.ones(m, dtype=bool)

    def resid(Bs):
        Bp = np.maximum(Bs, 0.0)
        return np.linalg.norm(Bp @ np.swapaxes(Bp, 1, 2) - C, axis=(1, 2)) / nc

    for it in range(max_iter):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        Ba = B[idx]
        scale = np.abs(Ba).max(axis=(1, 2))
        nonneg = Ba.min(axis=(1, 2)) >= -1e-15 * scale
        if it % 10 == 9:
            ra = resid(Ba)
            done = nonneg | (ra <= tol)
        else:
            ra, done = None, nonneg
        if np.any(done):
            res[idx[done]] = ra[done] if ra is not None else resid(Ba[done])
            alive[idx[done]] = False
            if np.any(res <= tol):
                return B, res
            idx, Ba = idx[~done], Ba[~done]
            if idx.size == 0:
                break
        Qn = _polar(Rr.T[None] @ np.maximum(Ba, 0.0))
        Bn = Rr[None] @ Qn
        stalled = (np.linalg.norm(Bn - Ba, axis=(1, 2))
                   <= 1e-12 * np.linalg.norm(Ba, axis=(1, 2)))
        B[idx] = Bn
        if np.any(stalled):  # a fixed point that is not nonnegative
            res[idx[stalled]] = resid(Bn[stalled])
            alive[idx[stalled]] = False
            if np.any(res <= tol):
                return B, res
    left = np.flatnonzero(alive)
    if left.size:
        res[left] = resid(B[left])
    return B, res


def _rank_two(R: np.ndarray) -> np.ndarray:
    """Nonnegative ``B = R Q`` (Q a rotation) for a rank-two factor whose rows have pairwise
    nonnegative inner products: they lie in an arc of at most 90 degrees, which the rotation
    moves to the first quadrant."""
    nrm = np.linalg.norm(R, axis=1)
    rows = nrm > 1e-12 * nrm.max()
    th = np.sort(np.arctan2(R[rows, 1], R[rows, 0]))
    gaps = np.diff(np.concatenate([th, th[:1] + 2 * np.pi]))
    start = th[(int(np.argmax(gaps)) + 1) % len(th)]  # the arc begins after the widest gap
    c, s = np.cos(start), np.sin(start)
    B = R @ np.array([[c, -s], [s, c]])
    return np.maximum(B, 0.0)


def cp_factorize(C: np.ndarray, max_rank: int | None = None, n_restarts: int = 10,
                 tol: float = 1e-9, max_iter: int = 2000, seed: int = 0,
                 rank_rtol: float = 1e-13) -> CPFactorization:
    """Completely-positive factorisation of a doubly nonnegative matrix.

    Parameters
    ----------
    C : ndarray, shape (n, n)
        Symmetric, PSD and entrywise nonnegative (tiny negative entries are clipped).
    max_rank : int, optional
        Largest inner dimension tried (default ``n(n+1)/2``).
    n_restarts : int
        Random orthogonal starts per inner dimension.
    tol : float
        Relative residual accepted.
    max_iter : int
        Iterations per start.
    seed : int
    rank_rtol : float
        Eigenvalues of ``C`` below ``rank_rtol * lambda_max`` are dropped (numerical rank).

    Returns
    -------
    CPFactorization
    """
    C = np.asarray(C, dtype=float)
    if C.ndim != 2 or C.shape[0] != C.shape[1]:
        raise ValueError(f"C: expected a square matrix, got shape {C.shape}")
    C = 0.5 * (C + C.T)
    n = C.shape[0]
    nc = float(np.linalg.norm(C))
    if nc == 0:
        return CPFactorization(np.zeros((n, 0)), 0.0, True)
    C = np.where(C < 0, 0.0, C)
    w, U = np.linalg.eigh(C)
    keep = w > rank_rtol * w[-1]
    R = U[:, keep] * np.sqrt(w[keep])
    r0 = R.shape[1]
    # quick exact cases: rank one, or a nonnegative square root column set
    if np.all(R >= -1e-15 * np.abs(R).max()) or np.all(R <= 1e-15 * np.abs(R).max()):
        B = np.abs(R)
        res = _residual(B, C, nc)
        if res <= tol:
            return CPFactorization(B, res, True)
    if r0 == 2:  # rank two: rotate the rows (pairwise angles <= 90 deg) into the first quadrant
        B = _rank_two(R)
        res = _residual(B, C, nc)
        if res <= tol:
            return CPFactorization(B, res, True)
    rng = np.random.default_rng(seed)
    best_B, best_res = np.maximum(R, 0), _residual(np.maximum(R, 0), C, nc)
    max_rank = max_rank or n * (n + 1) // 2
    dims = sorted({max(r0, 1), n, max_rank} - {0})
    for r in [d for d in dims if r0 <= d <= max_rank]:
        Rr = np.hstack([R, np.zeros((n, r - r0))])
        # all restarts at once (batched SVDs: the per-iteration cost of tiny matrices is
        # Python overhead); each restart stops on its own as in the one-at-a-time loop
        B, res = _batched_alternation(Rr, _polar(rng.normal(size=(n_restarts, r, r))), C, nc,
                                      tol, max_iter)
        i = int(np.argmin(res))
        if res[i] < best_res:
            best_B, best_res = np.maximum(B[i], 0.0), float(res[i])
        if best_res <= tol:
            break
    best_B = best_B[:, np.linalg.norm(best_B, axis=0) > 0]
    return CPFactorization(best_B, best_res, best_res <= tol)


def generator_matrix(Z: np.ndarray, activation) -> np.ndarray:
    """Columns ``[triu(z z^T); triu(s(z) s(z)^T)]`` for every column ``z`` of ``Z``
    (off-diagonal entries weighted by sqrt(2) so that column norms are Frobenius norms).

    Returns an array of shape ``(N(N+1), n)``.
    """
    N = Z.shape[0]
    iu = np.triu_indices(N)
    wts = np.where(iu[0] == iu[1], 1.0, np.sqrt(2.0))[:, None]
    S = activation(Z)
    top = Z[iu[0]] * Z[iu[1]] * wts
    bot = S[iu[0]] * S[iu[1]] * wts
    return np.vstack([top, bot])


def generator_rank(Z: np.ndarray, activation, rtol: float = 1e-10,
                   max_bytes: float | None = None) -> int:
    """Rank of the generator family of the neurons (columns of ``Z``), with each generator
    normalised first (as :func:`caratheodory` does, so the two agree): singular values above
    ``rtol`` times the largest. ``max_bytes``: see :func:`check_generator_size`."""
    Z = np.asarray(Z)
    check_generator_size(Z.shape[0], Z.shape[1], max_bytes, "generator_rank")
    A = generator_matrix(Z, activation)
    norms = np.linalg.norm(A, axis=0) if A.size else np.zeros(0)
    A = A[:, norms > 0] / norms[norms > 0] if A.size else A
    if A.size == 0:
        return 0
    s = np.linalg.svd(A, compute_uv=False)
    return int(np.sum(s > rtol * s[0])) if s[0] > 0 else 0


def _eliminate(M: np.ndarray, x: np.ndarray, r: int, dep_rtol: float = 1e-9) -> np.ndarray:
    """Caratheodory elimination by basis exchange on the columns of ``M`` (r x m, unit
    columns) with weights ``x >= 0``; returns new weights, at most ``r`` of them positive, with
    ``M x_new = M x``.

    Columns are taken one at a time against a basis ``S`` of independent columns, whose
    pseudo-inverse ``P`` is kept up to date (Greville's update when a column joins; a
    product-form update on an exchange) and recomputed every ``r`` exchanges. A column ``a``
    with ``a = M_S y`` gives the null vector ``(y, -1)``: the weights move along it until the
    new column or a basis column reaches zero (never below), so each dependent column costs
    ``O(r |S|)`` instead of an SVD. The weights on the final basis are then recomputed by
    least squares and checked.
    """
    x = np.asarray(x, dtype=float).copy()
    n_rows, m = M.shape
    if m <= r:
        return x
    basis: list[int] = []
    MB = np.zeros((n_rows, r))  # M[:, basis] in its first k columns
    P = np.zeros((r, n_rows))   # pinv(M[:, basis]) in its first k rows
    xs = np.zeros(r)            # weights of the basis columns
    k = exchanges = 0
    for j in range(m):
        if x[j] <= 0:
            continue
        a = M[:, j]
        y = P[:k] @ a
        if k < r:
            rho = a - MB[:, :k] @ y
            nr = float(np.linalg.norm(rho))
            if nr > dep_rtol * float(np.linalg.norm(a)):
                d = rho / nr**2
                P[:k] -= np.outer(y, d)
                P[k], MB[:, k], xs[k] = d, a, x[j]
                basis.append(j)
                k += 1
                continue
        # dependent: move along (y, -1) until x_j or a basis weight hits zero
        t, leave = x[j], -1
        neg = np.flatnonzero(y < -1e-14 * max(float(np.abs(y).max()), 1.0))
        if neg.size:
            ratios = xs[neg] / -y[neg]
            i = int(np.argmin(ratios))
            if ratios[i] < t:
                t, leave = float(ratios[i]), int(neg[i])
        xs[:k] = np.maximum(xs[:k] + t * y, 0.0)
        if leave < 0:  # the new column is absorbed
            continue
        # exchange: column j replaces basis[leave] with weight x_j - t
        xs[leave] = x[j] - t
        row = P[leave] / y[leave]
        P[:k] -= y[:, None] * row
        P[leave] = row
        MB[:, leave] = a
        basis[leave] = j
        exchanges += 1
        if exchanges % r == 0:  # refresh against drift (LU when the basis is square)
            P[:k] = _basis_inverse(MB[:, :k], square=k == n_rows == r)
    out = np.zeros(m)
    if basis:
        # exact weights on the kept basis (full column rank): least squares, then clip
        w = np.linalg.lstsq(MB[:, :k], M @ x, rcond=None)[0]
        if np.all(w >= -1e-12 * max(float(np.abs(w).max()), 1e-300)):
            xs[:k] = np.maximum(w, 0.0)
        out[basis] = xs[:k]
    return out


def _basis_inverse(MB: np.ndarray, square: bool) -> np.ndarray:
    """``inv(MB)`` (LU) for a square basis, ``pinv(MB)`` otherwise or when the exchanges
    have made the square basis numerically singular (seen: depth 4, N = 8)."""
    if square:
        try:
            return np.linalg.inv(MB)
        except np.linalg.LinAlgError:
            pass
    return np.linalg.pinv(MB)


def _nonneg_lstsq(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``argmin ||A x - b||, x >= 0``: Lawson-Hanson (scipy ``nnls``; its passive set stays
    linearly independent, so the solution is basic: at most ``rank A`` positive entries), or
    bounded-variable least squares if it stops at its iteration limit. Guarded: scipy's
    ``nnls`` crashes the interpreter on an empty matrix (measured: "double free")."""
    if A.shape[1] == 0:
        return np.zeros(0)
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
        raise ValueError("generator matrix: expected finite values, got NaN or inf")
    try:
        return nnls(A, b, maxiter=50 * A.shape[1])[0]
    except RuntimeError:  # iteration limit
        return lsq_linear(A, b, bounds=(0.0, np.inf), method="bvls", tol=1e-15).x


def _vertex(Ar: np.ndarray, x0: np.ndarray) -> np.ndarray:
    """A vertex ``x`` of ``{x >= 0 : Ar x = Ar x0}`` (dual simplex), repaired by NNLS on its
    support; ``x0`` itself if the LP fails."""
    if Ar.shape[1] <= Ar.shape[0]:
        return x0
    b = Ar @ x0
    res = linprog(np.ones(Ar.shape[1]), A_eq=Ar, b_eq=b, bounds=(0, None), method="highs-ds")
    if res.status != 0:
        return x0
    x = res.x
    sup = np.flatnonzero(x > 1e-12 * max(x.max(), 1e-300))
    xs = _nonneg_lstsq(Ar[:, sup], b)
    out = np.zeros_like(x0)
    out[sup] = xs
    if np.linalg.norm(Ar @ out - b) > SUM_RTOL * max(np.linalg.norm(b), 1e-300):
        return x0
    return out


def caratheodory(Z: np.ndarray, activation, weights=None, rtol: float = 1e-10,
                 method: str = "nullspace", _repair: bool = True,
                 max_bytes: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fewer neurons with the same conic combination of generators.

    Parameters
    ----------
    Z : ndarray, shape (N, n)
        Neurons as columns.
    activation : Homogeneous
    weights : ndarray, shape (n,), optional
        Nonnegative weights ``c`` (default ones).
    rtol : float
        Relative singular-value tolerance for the rank of the generator family.
    method : {"lp", "nullspace"}
    max_bytes : float, optional
        Memory guard (default ``MAX_GENERATOR_BYTES``), checked before anything is allocated:
        :func:`check_generator_size`.

    Returns
    -------
    keep : ndarray of int
        Indices of the kept neurons (at most the generator rank).
    c : ndarray
        Their new weights: ``sum_j c_j g(z_keep[j]) = sum_j weights_j g(z_j)``; rescaling
        ``z_j -> sqrt(c_j) z_j`` gives neurons with exactly the same covariances.
    """
    Z = np.asarray(Z, dtype=float)
    n = Z.shape[1]
    c0 = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if c0.shape != (n,) or np.any(c0 < 0):
        raise ValueError(f"weights: expected {n} nonnegative numbers, got shape {c0.shape}")
    if method not in ("lp", "nullspace"):
        raise ValueError(f"method: expected 'lp' or 'nullspace', got {method!r}")
    check_generator_size(Z.shape[0], n, max_bytes)
    A = generator_matrix(Z, activation)
    norms = np.linalg.norm(A, axis=0)
    live = np.flatnonzero((norms > 0) & (c0 > 0))
    if live.size == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    An = A[:, live] / norms[live]
    x0 = c0[live] * norms[live]  # weights of the normalised generators
    U, s, _ = np.linalg.svd(An, full_matrices=False)
    r = int(np.sum(s > rtol * s[0]))
    if live.size <= r:
        return live, c0[live]
    Ar = U[:, :r].T @ An
    x = x0.copy()
    if method == "lp":
        # reduce in chunks: the kept basis (<= r columns) plus the next r columns at a time,
        # so every LP has <= 2r columns (a width-10,000 layer is ~n/r small LPs)
        order = np.arange(live.size)
        kept = order[:0]
        for start in range(0, live.size, r):
            cols = np.concatenate([kept, order[start:start + r]])
            xc = _vertex(Ar[:, cols], x[cols])
            x[cols] = xc
            kept = cols[xc > 0]
        if (np.linalg.norm(An @ x - An @ x0) > SUM_RTOL * np.linalg.norm(An @ x0)
                or np.count_nonzero(x) > r):  # an LP failed (HiGHS feasibility ~1e-7)
            x, method = x0.copy(), "nullspace"
    if method == "nullspace":
        b = Ar @ x
        x = _eliminate(Ar, x, r)
        if np.linalg.norm(Ar @ x - b) > SUM_RTOL * np.linalg.norm(b):
            # an ill-conditioned basis: repair the weights on the support by NNLS, and if that
            # does not restore the sum, take the LP vertex (exact, slower)
            sup = np.flatnonzero(x > 0)
            xs = _nonneg_lstsq(Ar[:, sup], b)
            x = np.zeros_like(x)
            x[sup] = xs
            if not np.linalg.norm(Ar @ x - b) <= SUM_RTOL * np.linalg.norm(b):
                # on all neurons: Lawson-Hanson's basic solution (ill-conditioned families of
                # trained networks, where the exchanges lose accuracy)
                x = _nonneg_lstsq(Ar, b)
                x[x <= 1e-15 * max(float(x.max(initial=0.0)), 1e-300)] = 0.0
            if not np.linalg.norm(Ar @ x - b) <= SUM_RTOL * np.linalg.norm(b):
                if _repair:
                    return caratheodory(Z, activation, weights, rtol, "lp", _repair=False,
                                        max_bytes=max_bytes)
                x = x0.copy()  # nothing exact found: keep every neuron (honest, unpruned)
    sup = np.flatnonzero(x > 0)
    return live[sup], x[sup] / norms[live[sup]]
