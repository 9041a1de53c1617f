"""The covariance cone ``S_s`` as cvxpy constraints: a composable building block.

``S_s = cone{(z z^T, s(z) s(z)^T) : z in R^N}`` for ``s(z) = a*max(z,0) - b*max(-z,0)``
(docs/MATH.md §3). Representations behind one interface, :class:`CovarianceCone`:

``"pattern"``
    ``K = sum_P S_P C_P S_P``, ``G = sum_P T_P C_P T_P`` with one doubly-nonnegative block
    ``C_P`` (PSD and entrywise >= 0) per sign pattern ``P``. Exact for ``N <= 4``
    (CP = DNN up to order 4), a relaxation (outer approximation) beyond. When the neurons are
    restricted to a subspace ``range(Q)`` (first layer: ``range(X)``), each block is
    parametrised as ``C_P = S_P Q W_P Q^T S_P`` with ``W_P`` PSD (facial reduction: the
    range condition holds by construction and the blocks are ``r x r``), and only the patterns
    of the hyperplane arrangement are used. In a plane (``r = 2``) every cell is a wedge with
    two edges ``E_P`` and the block is ``C_P = S_P E_P M_P E_P^T S_P`` with ``M_P`` 2 x 2,
    PSD (a second-order cone) with a nonnegative off-diagonal: exactly the completely positive
    cone of the cell, so the representation is exact for any N.
``"lifted"``
    ``w = (z_+, z_-)`` in R^{2N}; one ``2N x 2N`` DNN block ``M`` with ``diag(M_{+-}) = 0``;
    ``K = M_{++} - M_{+-} - M_{-+} + M_{--}``, ``G = a^2 M_{++} - ab (M_{+-} + M_{-+})
    + b^2 M_{--}``. Cheaper, looser: a lower bound only.
identity activation
    ``S_s = {(M, M) : M PSD}`` exactly, one PSD block (any representation).

Usage in a model of one's own::

    K = cp.Variable((N, N), symmetric=True); G = cp.Variable((N, N), symmetric=True)
    cons = cone_constraints(K, G, "relu")            # (K, G) in S_s (relaxed for N > 4)
    cons = cone_constraints(K, G, "relu", H=X)       # neurons in range(X); exact if rank X <= 2
    cp.Problem(objective, cons + my_constraints)
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from ..core.activations import get_activation
from ..core.errors import SizeLimitError
from .patterns import all_patterns, arrangement_patterns, pattern_signs, useful_patterns

__all__ = ["CovarianceCone", "cone_constraints", "REPRESENTATIONS", "EXACT_PATTERN_MAX_N",
           "MAX_CONE_BLOCK_VARIABLES", "pattern_cone_size"]

REPRESENTATIONS = ("pattern", "lifted")
EXACT_PATTERN_MAX_N = 4
#: Largest number of block variables ``cone_constraints`` builds without ``force=True``
#: (measured to build: N = 12, 4,096 patterns, 319,488 variables in 1.1 s and +70 MB; the
#: enumeration doubles with every N, N = 30 is 2^30 patterns).
MAX_CONE_BLOCK_VARIABLES = 1_000_000


def pattern_cone_size(N: int, rank: int | None = None, n_patterns: int | None = None) -> int:
    """Upper estimate of the block variables of the pattern representation, computed before
    anything is enumerated: ``n_patterns * r(r+1)/2`` with ``r = rank`` (neurons restricted to
    a rank-``r`` subspace) or ``N``; the number of patterns is ``n_patterns`` when given,
    ``2^N`` without a restriction, and at most ``2 sum_{i<r} C(N-1, i)`` (cells of a central
    arrangement of ``N`` hyperplanes in ``R^r``) with one; a wedge (``r = 2``) has 3."""
    from math import comb

    r = N if rank is None else rank
    if n_patterns is None:
        n_patterns = 2**N if r >= N else 2 * sum(comb(N - 1, i) for i in range(r))
    per_block = 3 if r == 2 and rank is not None and rank < N else r * (r + 1) // 2
    return int(n_patterns) * per_block


def _nonneg(M: cp.Expression) -> cp.Constraint:
    """Entrywise nonnegativity of a symmetric matrix through its strict upper triangle
    (the diagonal of a PSD matrix is nonnegative already; measured ~17 % faster)."""
    return cp.upper_tri(M) >= 0


def _dedupe_even(patterns: np.ndarray) -> np.ndarray:
    """Keep one of each complementary pair (for ``b = -a``, ``P`` and its complement give the
    same generators)."""
    seen, rows = set(), []
    for i, p in enumerate(patterns):
        if (~p).tobytes() not in seen:
            seen.add(p.tobytes())
            rows.append(i)
    return patterns[rows]


def _stack_vec(blocks: list) -> cp.Expression:
    """The column-major vecs of the blocks, stacked into one vector."""
    vecs = [cp.vec(W, order="F") for W in blocks]
    return cp.hstack(vecs) if len(vecs) > 1 else vecs[0]


def _kron_rows(D: np.ndarray, B: np.ndarray) -> np.ndarray:
    """``kron(D_i B_i, D_i B_i)`` for every pattern ``i`` (``D`` the diagonals, ``(m, N)``;
    ``B`` of shape ``(m, N, r)``): an array ``(m, N^2, r^2)``, rows ``k N + j``, columns
    ``b r + a`` (so that ``vec(U W U^T) = kron(U, U) vec(W)``, column-major)."""
    U = D[:, :, None] * B
    m, N, r = U.shape
    return np.einsum("ikb,ija->ikjba", U, U).reshape(m, N * N, r * r)


class _WedgeBlock:
    """Block ``i`` of the wedge variable, read as the 2 x 2 matrix ``[[a, b], [b, c]]``."""

    def __init__(self, var: cp.Variable, i: int):
        self.var, self.i = var, i

    @property
    def value(self):
        v = self.var.value
        if v is None:
            return None
        a, b, c = v[:, self.i]
        return np.array([[a, b], [b, c]])


def _wedge(Q: np.ndarray, s: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """The two extreme rays (unit columns, ``2 x 2``) of the cell ``{v : s * (Q v) >= 0}`` of
    a plane (``Q`` with 2 columns, not all rows parallel, so every cell is a wedge of angle
    < pi). Candidates are the normals of the rows; those in the cell lie on its two edges."""
    rows = Q[np.linalg.norm(Q, axis=1) > tol]
    cand = np.concatenate([rows @ [[0.0, 1.0], [-1.0, 0.0]], rows @ [[0.0, -1.0], [1.0, 0.0]]])
    cand /= np.linalg.norm(cand, axis=1, keepdims=True)
    ok = cand[np.all(s[:, None] * (Q @ cand.T) >= -tol, axis=0)]
    if len(ok) == 0:
        raise ValueError(f"patterns: {np.where(s > 0, 1, 0)} is not a cell of the arrangement "
                         f"of H (no neuron in range(H) has this sign pattern)")
    first = ok[0]
    far = ok[np.argmin(ok @ first)]  # the other edge (the same ray if the cell is one ray)
    return np.stack([first, far], axis=1)


class CovarianceCone:
    """Expressions ``K``, ``G`` (cvxpy, ``N x N``) ranging over (an approximation of) ``S_s``.

    Parameters
    ----------
    N : int
        Number of data points.
    activation : str or Homogeneous
        A positively homogeneous activation.
    representation : {"pattern", "lifted"}
    patterns : ndarray of bool, shape (m, N), optional
        Sign patterns to use (``"pattern"`` only); default: every useful pattern, or those of
        the arrangement of ``H`` when given.
    H : ndarray, shape (N, p), optional
        Restrict neurons to ``range(H)`` (the first layer: ``H = [X, bias*1]``).
    drop_useless : bool, default False
        Leave out the patterns whose generators have ``s(z) = 0`` (ReLU: all-negative
        neurons) and, for the absolute value, one of each complementary pair. The cone is then
        smaller, but no minimiser of a layer program (whose cost grows with ``K`` and falls
        only through ``G``) is lost; the layer programs use it.

    Attributes
    ----------
    K, G : cvxpy.Expression
        The pre- and post-activation covariances (``G`` without any bias shift).
    constraints : list of cvxpy.Constraint
        Everything that makes ``(K, G)`` a member.
    blocks : list
        cvxpy Variables: ``W_P`` per pattern (``"pattern"``), ``[M]`` (``"lifted"``) or ``[M]``
        (identity). In a plane, read-only views (``.value``: the 2 x 2 ``M_P``) of the single
        variable ``wedge_variable``.
    wedge_variable : cvxpy.Variable, shape (3, m), or None
        In a plane: the entries ``(a, b, c)`` of every ``M_P = [[a, b], [b, c]]``.
    patterns : ndarray of bool or None
    Q : ndarray, shape (N, r)
        Basis of the subspace the neurons live in (identity matrix when unrestricted).
    exact : bool
        True when the representation equals ``S_s`` (not only a relaxation of it).
    """

    def __init__(self, N: int, activation="relu", representation: str = "pattern",
                 patterns: np.ndarray | None = None, H: np.ndarray | None = None,
                 drop_useless: bool = False):
        if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 1:
            raise ValueError(f"N: expected a positive integer, got {N!r}")
        act = get_activation(activation)
        if not act.is_homogeneous:
            raise ValueError(f"activation: the covariance cone needs a positively homogeneous "
                             f"activation, got {act.name!r}")
        if representation not in REPRESENTATIONS:
            raise ValueError(f"representation: expected one of {', '.join(REPRESENTATIONS)}, "
                             f"got {representation!r}")
        self.N, self.activation, self.representation = int(N), act, representation
        a, b = float(act.a), float(act.b)
        if H is not None:
            H = np.asarray(H, dtype=float)
            if H.ndim != 2 or H.shape[0] != N:
                raise ValueError(f"H: expected shape ({N}, p), got {H.shape}")
            U, sv, _ = np.linalg.svd(H, full_matrices=False)
            r = int(np.sum(sv > 1e-12 * sv[0])) if sv.size and sv[0] > 0 else 0
            self.Q = U[:, :r]
        else:
            self.Q = np.eye(N)
        self.restricted = self.Q.shape[1] < N
        self.constraints: list = []
        self.blocks: list = []
        self.patterns = None
        self._bases = None
        self.wedges = self.wedge_variable = None
        if act.is_linear:
            self._identity()
        elif representation == "pattern":
            if patterns is None:
                if H is not None and self.restricted:
                    patterns = arrangement_patterns(H)[0]
                else:
                    patterns = all_patterns(N)
            patterns = np.asarray(patterns, dtype=bool)
            if patterns.ndim != 2 or patterns.shape[1] != N:
                raise ValueError(f"patterns: expected a boolean array of shape (m, {N}), "
                                 f"got {patterns.shape}")
            if drop_useless:
                patterns = useful_patterns(patterns, a, b)
            elif a == -b:  # P and its complement give identical generators
                patterns = _dedupe_even(patterns)
            self.patterns = patterns
            self._pattern(a, b)
        else:
            self._lifted(a, b)
        # exact: CP = DNN up to order 4; and in a plane (r <= 2) every cell is a wedge whose
        # CP cone is 2 x 2 (or a ray), which the wedge parametrisation represents exactly
        self.exact = bool(act.is_linear or (representation == "pattern"
                                            and (N <= EXACT_PATTERN_MAX_N
                                                 or (self.restricted and self.Q.shape[1] <= 2))))

    # --- representations -----------------------------------------------------------------
    def _identity(self):
        Q, r = self.Q, self.Q.shape[1]
        W = cp.Variable((r, r), PSD=True, name="M")
        self.blocks = [W]
        M = W if not self.restricted else Q @ W @ Q.T
        self.K = self.G = M

    def _pattern(self, a, b):
        # Block i: C_i = B_i W_i B_i^T with W_i PSD and B_i = S_i Q (restricted), I, or, when
        # the neurons live in a plane (r = 2), S_i Q V_i with V_i the two extreme rays of the
        # cell (a wedge): then W_i is 2 x 2 with one sign constraint, and the block is exactly
        # the completely positive cone of the cell (CP = DNN in dimension 2) for any N. Then
        # S_i C_i S_i and T_i C_i T_i are linear in vec(W_i) through Kronecker products; the
        # whole cone is posed as three sparse constant maps applied to the stacked vec(W_i):
        # a few cvxpy nodes instead of several per pattern.
        N = self.N
        if len(self.patterns) == 0:
            zero = cp.Constant(np.zeros((N, N)))
            self.K = self.G = zero
            return
        S, T = pattern_signs(self.patterns, a, b)
        iu, ju = np.triu_indices(N, 1)
        upper = iu + N * ju  # entry (j, k), j < k, of a column-major vec
        self.wedges = None
        if self.restricted and self.Q.shape[1] == 2:
            self.wedges = np.stack([_wedge(self.Q, s) for s in S])  # (m, 2, 2)
            B = S[:, :, None] * np.einsum("nr,irc->inc", self.Q, self.wedges)
        elif self.restricted:
            B = S[:, :, None] * self.Q[None]
        else:
            B = None
        m = len(self.patterns)
        nmap = None
        if self.wedges is not None:
            # one (3, m) variable holding (a, b, c) of M_i = [[a, b], [b, c]]: M_i PSD as one
            # vectorised second-order cone a + c >= ||(2b, a - c)||, and C_i >= 0 iff b >= 0.
            # No PSD variables: compiles 2-3x faster than m 2 x 2 PSD blocks (N = 4, 8)
            self._bases = list(B)
            Wv = self.wedge_variable = cp.Variable((3, m), name="M")
            self.blocks = [_WedgeBlock(Wv, i) for i in range(m)]
            w = cp.vec(cp.vstack([Wv[0], Wv[1], Wv[1], Wv[2]]), order="F")  # vec(M_i), i = 1..m
            self.constraints += [cp.SOC(Wv[0] + Wv[2], cp.vstack([2 * Wv[1], Wv[0] - Wv[2]]),
                                        axis=0), Wv[1] >= 0]
            kmap = sp.csr_matrix(np.concatenate(_kron_rows(S, B), axis=1))   # S_i C_i S_i
            gmap = sp.csr_matrix(np.concatenate(_kron_rows(T, B), axis=1))   # T_i C_i T_i
        elif B is not None:
            self._bases = list(B)
            r = B.shape[2]
            self.blocks = [cp.Variable((r, r), PSD=True, name=f"W_{i}") for i in range(m)]
            w = _stack_vec(self.blocks)
            kmap = sp.csr_matrix(np.concatenate(_kron_rows(S, B), axis=1))   # S_i C_i S_i
            gmap = sp.csr_matrix(np.concatenate(_kron_rows(T, B), axis=1))   # T_i C_i T_i
            entries = _kron_rows(np.ones_like(S), B)[:, upper]                # C_i, j < k
            nmap = sp.block_diag(list(entries), format="csr")
        else:  # C_i = W_i: diagonal maps vec(W_i) -> vec(s s^T * W_i), entries -> upper part
            self._bases = None
            self.blocks = [cp.Variable((N, N), PSD=True, name=f"C_{i}") for i in range(m)]
            w = _stack_vec(self.blocks)
            cols = np.arange(m * N * N)
            rows = np.tile(np.arange(N * N), m)
            kmap = sp.csr_matrix((np.einsum("ik,ij->ikj", S, S).ravel(), (rows, cols)))
            gmap = sp.csr_matrix((np.einsum("ik,ij->ikj", T, T).ravel(), (rows, cols)))
            sel = (np.arange(m)[:, None] * N * N + upper[None]).ravel()
            nmap = sp.csr_matrix((np.ones(len(sel)), (np.arange(len(sel)), sel)),
                                 shape=(len(sel), m * N * N))
        if nmap is not None and nmap.shape[0] > 0:
            self.constraints.append(nmap @ w >= 0)
        self.K = cp.reshape(kmap @ w, (N, N), order="F")
        self.G = cp.reshape(gmap @ w, (N, N), order="F")

    def _lifted(self, a, b):
        N = self.N
        if self.restricted:
            # facial reduction: w = (z_+, z_-) with z_+ - z_- in range(Q) is w = R (u, c) for
            # R = [[I, Q], [I, 0]] (z_- = u, z_+ = u + Q c), so M = R M' R^T (Slater holds).
            # This basis is sparse: each entry of M involves O(r^2) entries of M' instead of
            # all of them with an orthonormal basis (d = 2: N = 8 1.9 s -> 0.06 s, N = 12
            # 9.3 s -> 0.16 s)
            r = self.Q.shape[1]
            R = np.block([[np.eye(N), self.Q], [np.eye(N), np.zeros((N, r))]])
            Mr = cp.Variable((N + r, N + r), PSD=True, name="M")
            M = sp.csr_matrix(R) @ Mr @ sp.csr_matrix(R.T)
            self.blocks = [Mr]
            self._lift_basis = R
        else:
            M = cp.Variable((2 * N, 2 * N), PSD=True, name="M")
            self.blocks = [M]
            self._lift_basis = None
        Mpp, Mpm, Mmp, Mmm = M[:N, :N], M[:N, N:], M[N:, :N], M[N:, N:]
        self.constraints += [_nonneg(M), cp.diag(Mpm) == 0]
        self.K = Mpp - Mpm - Mmp + Mmm
        self.G = a * a * Mpp - a * b * (Mpm + Mmp) + b * b * Mmm

    # --- reading back ----------------------------------------------------------------------
    def block_values(self) -> list[np.ndarray]:
        """The ``N x N`` blocks ``C_P`` at the current solution (``"pattern"`` only)."""
        out = []
        for i, W in enumerate(self.blocks):
            Wv = np.asarray(W.value, dtype=float)
            if self._bases is not None:
                out.append(self._bases[i] @ Wv @ self._bases[i].T)
            else:
                out.append(Wv)
        return out

    def contains(self, K, G, shift: float = 0.0) -> list:
        """Constraints saying ``(K, G - shift * 1 1^T)`` equals this cone's member."""
        ones = np.ones((self.N, self.N))
        return [K == self.K, G - shift * ones == self.G] + self.constraints

    def __repr__(self) -> str:
        m = len(self.patterns) if self.patterns is not None else 0
        return (f"CovarianceCone(N={self.N}, activation={self.activation.name!r}, "
                f"representation={self.representation!r}, patterns={m}, "
                f"subspace_dim={self.Q.shape[1]}, exact={self.exact})")


def cone_constraints(K, G, activation="relu", representation: str = "pattern",
                     patterns=None, H=None, shift: float = 0.0,
                     drop_useless: bool = False, force: bool = False) -> list:
    """Constraints putting the user's ``(K, G - shift * 1 1^T)`` in (an approximation of) S_s.

    Parameters
    ----------
    K, G : cvxpy.Expression, shape (N, N)
        The user's own variables or expressions.
    activation, representation, patterns, H, drop_useless
        As for :class:`CovarianceCone`.
    shift : float, default 0
        ``bias^2``: the cone is shifted by ``(0, bias^2 1 1^T)`` with biases (docs/MATH.md §1).
    force : bool, default False
        Build the pattern representation even above ``MAX_CONE_BLOCK_VARIABLES``.

    Returns
    -------
    list of cvxpy.Constraint

    Raises
    ------
    SizeLimitError
        Before enumerating anything, when the pattern representation would have more than
        ``MAX_CONE_BLOCK_VARIABLES`` block variables (:func:`pattern_cone_size`); the message
        names the ways out (``representation="lifted"``, ``patterns=`` / ``H=``,
        ``force=True``).
    """
    N = K.shape[0]
    if representation == "pattern" and not force:
        _check_cone_size(N, activation, patterns, H)
    cone = CovarianceCone(N, activation, representation, patterns, H, drop_useless)
    return cone.contains(K, G, shift)


def _check_cone_size(N: int, activation, patterns, H) -> None:
    """Raise :class:`SizeLimitError` before any pattern is enumerated when the pattern
    representation would exceed ``MAX_CONE_BLOCK_VARIABLES``."""
    act = get_activation(activation)
    if not act.is_homogeneous or act.is_linear:
        return  # refused by CovarianceCone / one PSD block
    rank = None
    if H is not None:
        Ha = np.asarray(H, dtype=float)
        if Ha.ndim == 2 and Ha.shape[0] == N and Ha.size:
            sv = np.linalg.svd(Ha, compute_uv=False)
            rank = int(np.sum(sv > 1e-12 * sv[0])) if sv[0] > 0 else 0
    n_pat = None if patterns is None else int(np.shape(patterns)[0])
    size = pattern_cone_size(N, rank, n_pat)
    if size > MAX_CONE_BLOCK_VARIABLES:
        count = (f"{n_pat:,} patterns" if n_pat is not None else
                 f"2^{N} = {2**N:,} sign patterns" if rank is None or rank >= N else
                 f"up to {size // max(rank * (rank + 1) // 2, 1):,} cells")
        raise SizeLimitError(
            f"cone_constraints: the pattern representation at N = {N} has {count} "
            f"(~{size:.2e} block variables, limit {MAX_CONE_BLOCK_VARIABLES:,}); use "
            f"representation='lifted' (a relaxation, one 2N x 2N block), pass patterns= or H= "
            f"(neurons in a low-dimensional subspace: far fewer cells), or force=True")
