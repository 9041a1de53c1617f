"""Membership tests for the dual cone ``S_s*`` (docs/MATH.md §3, Certificates): the engine behind
:func:`conic_dnn.certify`, and two public building blocks.

``(A, B)`` is in ``S_s*`` when ``f(z) = z^T A z + s(z)^T B s(z) >= 0`` for every ``z`` (in the
subspace ``range(Q)``). :func:`dual_cone_margin` gives a rigorous lower bound on
``min f / ||z||^2`` (an SDP per sign pattern, PSD + NN: exact for ``N <= 4``; or the lifted
relaxation), :func:`find_violating_neuron` the best ``z`` a search finds (an upper bound).
See :mod:`conic_dnn.certificates.certificate` for the full description of the tests and tolerances.
"""

from __future__ import annotations

import itertools
import math
import warnings
from numbers import Integral, Real

import cvxpy as cp
import numpy as np
from scipy.linalg import null_space
from scipy.optimize import minimize

from ..core.activations import get_activation
from ..core.linalg import FACTOR_RTOL, factor_range, sym
from ..solvers import run
from .patterns import all_patterns, arrangement_patterns, max_regions, pattern_signs

__all__ = ["dual_cone_margin", "find_violating_neuron", "EXACT_MAX_N"]

EXACT_MAX_N = 4
"""Largest ``N`` for which the PSD + NN test is exact (copositive = PSD + NN up to order 4)."""

_GAP_RTOL = 1e-9  # eigenvalue gap (relative to the scale) below which a face is ambiguous


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------
def _check_square(M, name: str, N: int | None = None) -> np.ndarray:
    if isinstance(M, (str, bytes)) or M is None:
        raise TypeError(f"{name}: expected a square numeric array, got {type(M).__name__}")
    try:
        M = np.asarray(M, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a square numeric array, got "
                        f"{type(M).__name__}") from None
    if M.ndim != 2 or M.shape[0] != M.shape[1] or M.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty square 2-D array, got shape {M.shape}")
    if N is not None and M.shape[0] != N:
        raise ValueError(f"{name}: expected shape ({N}, {N}), got {M.shape}")
    if not np.all(np.isfinite(M)):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return sym(M)


def _check_activation(activation):
    act = get_activation(activation)
    if not act.is_homogeneous:
        raise ValueError(f"activation: expected a positively homogeneous activation (relu, "
                         f"leaky_relu, abs, identity), got the non-homogeneous {act.name!r}")
    return act


def _check_Q(Q, N: int) -> np.ndarray:
    """Orthonormal basis of the column space of ``Q`` (default: the identity)."""
    if Q is None:
        return np.eye(N)
    if isinstance(Q, (str, bytes)):
        raise TypeError(f"Q: expected a numeric array, got {type(Q).__name__}")
    try:
        Q = np.asarray(Q, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"Q: expected a numeric array, got {type(Q).__name__}") from None
    if Q.ndim != 2 or Q.shape[0] != N:
        raise ValueError(f"Q: expected shape ({N}, r), got {Q.shape}")
    if not np.all(np.isfinite(Q)):
        raise ValueError("Q: expected finite values, got NaN or inf")
    if Q.shape[1] and np.allclose(Q.T @ Q, np.eye(Q.shape[1]), atol=1e-12):
        return Q
    return factor_range(Q, FACTOR_RTOL)[1]


def _check_int(v, name: str, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, Integral):
        raise TypeError(f"{name}: expected an integer >= {lo}, got {type(v).__name__}")
    if v < lo:
        raise ValueError(f"{name}: expected an integer >= {lo}, got {v}")
    return int(v)


def _check_tol(tol) -> float:
    if isinstance(tol, bool) or not isinstance(tol, Real):
        raise TypeError(f"tol: expected a positive number, got {type(tol).__name__}")
    if not math.isfinite(tol) or tol <= 0:
        raise ValueError(f"tol: expected a finite number > 0, got {tol}")
    return float(tol)


def _check_seed(seed):
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"seed: expected an integer, a numpy Generator or None, got "
                        f"{type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed}")
    return int(seed)


def _check_patterns(patterns, N: int) -> np.ndarray:
    P = np.asarray(patterns)
    if P.ndim != 2 or P.shape[1] != N or P.shape[0] == 0:
        raise ValueError(f"patterns: expected a non-empty boolean array of shape (m, {N}), "
                         f"got shape {P.shape}")
    if P.dtype != bool:
        if not np.all(np.isin(P, (0, 1))):
            raise ValueError("patterns: expected booleans (or 0/1), got other values")
        P = P.astype(bool)
    return P


# --------------------------------------------------------------------------------------------
# the engine: everything in coordinates c, z = Qb c (Qb of full column rank, any scaling);
# values are the quotient f(Qb c) / ||c||^2
# --------------------------------------------------------------------------------------------
def _scale(A, B, act, Qb) -> float:
    s2 = max(float(act.a) ** 2, float(act.b) ** 2)
    nq = np.linalg.norm(Qb, 2) ** 2 if Qb.size else 0.0
    return float(np.linalg.norm(Qb.T @ A @ Qb, 2) + s2 * nq * np.linalg.norm(B, 2))


def _fq(C: np.ndarray, Qb, A, B, act) -> np.ndarray:
    """``f(Qb c) / ||c||^2`` for each column ``c`` of ``C``."""
    Z = Qb @ C
    S = act(Z)
    f = np.einsum("im,im->m", Z, A @ Z) + np.einsum("im,im->m", S, B @ S)
    return f / np.einsum("im,im->m", C, C)


def _dedupe_even(P: np.ndarray) -> np.ndarray:
    seen, rows = set(), []
    for i, p in enumerate(P):
        if (~p).tobytes() not in seen:
            seen.add(p.tobytes())
            rows.append(i)
    return P[rows]


def _default_patterns(N: int, Qb: np.ndarray, act, max_patterns: int) -> np.ndarray | None:
    """Patterns covering ``range(Qb)`` (all ``2^N``, or the cells of its hyperplane arrangement
    when it is a proper subspace; one of each complementary pair for ``b = -a``), or None when
    there would be more than ``max_patterns``."""
    r = Qb.shape[1]
    if (2**N if r == N else max_regions(N, r)) > max_patterns:
        return None
    P = all_patterns(N) if r == N else arrangement_patterns(Qb)[0]
    return _dedupe_even(P) if act.b == -act.a else P


def _pattern_matrices(A, B, P, act):
    """``M_P = S_P A S_P + T_P B T_P`` for every pattern, shape ``(m, N, N)``, and ``S``."""
    S, T = pattern_signs(P, act.a, act.b)
    M = S[:, :, None] * A[None] * S[:, None, :] + T[:, :, None] * B[None] * T[:, None, :]
    return M, S


def _sdp_patterns(A, B, act, Qb, P, solver) -> float:
    N, r = Qb.shape
    M, S = _pattern_matrices(A, B, P, act)
    t = cp.Variable()
    cons = []
    for i in range(len(P)):
        V = S[i][:, None] * Qb  # S_P Qb
        Nn = cp.Variable((N, N), symmetric=True)
        E = V.T @ (M[i] - Nn) @ V
        cons += [Nn >= 0, 0.5 * (E + E.T) - t * np.eye(r) >> 0]
    run(cp.Problem(cp.Maximize(t), cons), solver)
    return float(t.value)


def _sdp_lifted(A, B, act, Qb, solver) -> float:
    """``w = (z_+, z_-) >= 0`` with ``z_+ z_- = 0``, ``z = Qb c``: write ``z_- = p`` and
    ``z_+ = Qb c + p``, i.e. ``w = J (c, p)``; require ``J^T (M - N + D) J >= t diag(I, 0)``."""
    N, r = Qb.shape
    a, b = float(act.a), float(act.b)
    off = -(A + a * b * B)
    M = np.block([[A + a * a * B, off], [off, A + b * b * B]])
    J = np.block([[Qb, np.eye(N)], [np.zeros((N, r)), np.eye(N)]])
    t = cp.Variable()
    Nn = cp.Variable((2 * N, 2 * N), symmetric=True)
    D = cp.diag(cp.Variable(N))
    Z = np.zeros((N, N))
    E = J.T @ (M - Nn + cp.bmat([[Z, D], [D, Z]])) @ J
    W = np.zeros((r + N, r + N))
    W[:r, :r] = np.eye(r)
    run(cp.Problem(cp.Maximize(t), [Nn >= 0, 0.5 * (E + E.T) - t * W >> 0]), solver)
    return float(t.value)


def _margin(A, B, act, Qb, patterns=None, solver=None, method="auto", max_patterns=128):
    """``(lower bound on min f(Qb c)/||c||^2, description, exact)``."""
    N, r = Qb.shape
    if method not in ("auto", "patterns", "lifted"):
        raise ValueError(f"method: expected 'auto', 'patterns' or 'lifted', got {method!r}")
    if r == 0:
        return math.inf, "empty range (no neuron can be added)", True
    if act.a == act.b:  # linear: f(z) = z^T (A + a^2 B) z
        w = np.linalg.eigvalsh(sym(Qb.T @ (A + act.a**2 * B) @ Qb))
        return float(w[0]), "eigenvalue (linear activation)", True
    scale = _scale(A, B, act, Qb)
    if scale == 0:
        return 0.0, "zero gradient pair", True
    An, Bn = A / scale, B / scale
    if method != "lifted":
        P = (_check_patterns(patterns, N) if patterns is not None
             else _default_patterns(N, Qb, act, max_patterns))
        if P is None and method == "patterns":
            raise ValueError(f"patterns: expected at most max_patterns={max_patterns} sign "
                             f"patterns for N={N}, got more; pass patterns= or use "
                             f"method='lifted'")
        if P is not None:
            t = _sdp_patterns(An, Bn, act, Qb, P, solver)
            exact = N <= EXACT_MAX_N and patterns is None
            return t * scale, f"PSD+NN SDP ({len(P)} sign patterns)", exact
    t = _sdp_lifted(An, Bn, act, Qb, solver)
    return t * scale, f"lifted PSD+NN SDP ({2 * N}x{2 * N})", False


def _enumerate_faces(A, B, act, Qb, gap_tol):
    """Exact ``min f(Qb c)/||c||^2`` by enumerating the ``3^N`` sign faces (docstring).

    Returns ``(c_best or None, value, lower_bound)``.
    """
    N, r = Qb.shape
    a, b = float(act.a), float(act.b)
    best_c, best_v, lower = None, math.inf, math.inf
    for zero in itertools.product((False, True), repeat=N):
        zero = np.array(zero)
        supp = np.flatnonzero(~zero)
        if supp.size == 0:
            continue
        C0 = null_space(Qb[zero]) if zero.any() else np.eye(r)
        r0 = C0.shape[1]
        if r0 == 0:
            continue
        Vf = Qb @ C0  # (N, r0); rows on the zero set vanish
        VAV = Vf.T @ A @ Vf
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=supp.size)))
        if a == -b:  # abs: sigma and -sigma give the same quadratic; the +-e check covers both
            signs = signs[signs[:, 0] > 0]
        D = np.zeros((len(signs), N))
        D[:, supp] = np.where(signs > 0, a, b)
        DV = D[:, :, None] * Vf[None]
        Mf = VAV[None] + np.einsum("mni,nk,mkj->mij", DV, B, DV)
        w, U = np.linalg.eigh(0.5 * (Mf + np.transpose(Mf, (0, 2, 1))))
        e = U[:, :, 0]
        zs = np.einsum("ni,mi->mn", Vf[supp], e)  # (m, |supp|)
        pos = np.all(signs * zs > 0, axis=1)
        neg = np.all(signs * zs < 0, axis=1)
        ok = pos | neg
        gap = w[:, 1] - w[:, 0] if r0 > 1 else np.full(len(w), np.inf)
        counted = ok | (gap <= gap_tol)
        if counted.any():
            lower = min(lower, float(w[counted, 0].min()))
        if ok.any():
            j = np.flatnonzero(ok)[np.argmin(w[ok, 0])]
            if w[j, 0] < best_v:
                best_v = float(w[j, 0])
                best_c = C0 @ (e[j] if pos[j] else -e[j])
    return best_c, best_v, lower


def _quotient(c, Qb, A, B, act):
    z = Qb @ c
    s = act(z)
    Az, Bs = A @ z, B @ s
    nc2 = float(c @ c)
    if nc2 == 0:
        return 0.0, np.zeros_like(c)
    q = float(z @ Az + s @ Bs) / nc2
    g = 2.0 * (Qb.T @ (Az + act.derivative(z) * Bs))
    return q, (g - 2.0 * q * c) / nc2


def _polish(c, A, B, act, Qb):
    """Refine a point BFGS left near a kink of ``f``: on the face where the (nearly) zero
    entries of ``z = Qb c`` vanish and the others keep their signs, ``f`` is the quadratic
    ``z^T (A + D B D) z``, ``D = diag(s'(z))``, minimised by a bottom eigenvector."""
    c = c / np.linalg.norm(c)
    best_c, best_v = c, float(_fq(c[:, None], Qb, A, B, act)[0])
    z = Qb @ c
    D = act.derivative(z)
    Mf = A + D[:, None] * B * D[None, :]
    zmax = float(np.max(np.abs(z)))
    tried = set()
    for tau in (0.0, 1e-8, 1e-6, 1e-4, 1e-3, 1e-2):
        zero = np.abs(z) <= tau * zmax
        if zero.tobytes() in tried:
            continue
        tried.add(zero.tobytes())
        C0 = null_space(Qb[zero]) if np.any(zero) else np.eye(Qb.shape[1])
        if C0.shape[1] == 0:
            continue
        Vf = Qb @ C0
        _, U = np.linalg.eigh(sym(Vf.T @ Mf @ Vf))
        cn = C0 @ U[:, 0]
        if (Qb @ cn) @ z < 0:
            cn = -cn
        v = float(_fq(cn[:, None], Qb, A, B, act)[0])
        if v < best_v:
            best_c, best_v = cn, v
    return best_c, best_v


def _local_search(A, B, act, Qb, n_search, rng, starts_c=None, max_patterns=4096):
    """Multi-start BFGS on the quotient (docstring). Returns ``(c, value)``."""
    N, r = Qb.shape
    cands = []
    if starts_c is not None and starts_c.shape[1] > 0:
        cands.append(starts_c)
    # one start per sign pattern: bottom eigenvector of V_P^T M_P V_P, clipped to the pattern
    if 2**N <= max_patterns and r == N:
        P = all_patterns(N)
    else:
        P = np.unique(Qb @ rng.standard_normal((r, max_patterns)) > 0, axis=1).T
    M, S = _pattern_matrices(A, B, P, act)
    V = S[:, :, None] * Qb[None]
    R = np.einsum("mni,mnk,mkj->mij", V, M, V)
    _, vecs = np.linalg.eigh(0.5 * (R + np.transpose(R, (0, 2, 1))))
    U = np.einsum("mni,mi->mn", V, vecs[:, :, 0])
    U *= np.where(U.sum(axis=1) < 0, -1.0, 1.0)[:, None]
    Zp = S * np.maximum(U, 0.0)
    cands.append(np.linalg.lstsq(Qb, Zp.T, rcond=None)[0])
    C = np.hstack(cands)
    norms = np.linalg.norm(C, axis=0)
    C = C[:, norms > 1e-12 * max(norms.max(initial=0.0), 1e-300)]
    if C.shape[1]:
        C = C[:, np.argsort(_fq(C, Qb, A, B, act))[:max(n_search, 1)]]
    C = np.hstack([C, rng.standard_normal((r, n_search))])
    best_c, best_v = None, math.inf
    for j in range(C.shape[1]):
        c0 = C[:, j] / np.linalg.norm(C[:, j])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = minimize(_quotient, c0, args=(Qb, A, B, act), jac=True, method="BFGS",
                           options={"maxiter": 200 * r, "gtol": 1e-12})
        for c in (c0, res.x):
            nc = np.linalg.norm(c)
            if not np.isfinite(nc) or nc == 0:
                continue
            c, v = _polish(c, A, B, act, Qb)
            if v < best_v:
                best_c, best_v = c, v
    return best_c, best_v


def _test(A, B, act, Qb, *, n_search, rng, starts_c, solver, max_patterns, max_faces):
    """Everything about one gradient pair in coordinates ``Qb``.

    Returns ``(c_best, value, lower, exact, method)``: the smallest quotient found and its
    ``c`` (None when the range is empty), a rigorous lower bound, whether it is exact.
    """
    N, r = Qb.shape
    if r == 0:
        return None, math.inf, math.inf, True, "empty range (no neuron can be added)"
    if act.a == act.b:
        w, U = np.linalg.eigh(sym(Qb.T @ (A + act.a**2 * B) @ Qb))
        return U[:, 0], float(w[0]), float(w[0]), True, "eigenvalue (linear activation)"
    scale = _scale(A, B, act, Qb)
    lower, exact, parts = -math.inf, False, []
    best_c, best_v = None, math.inf
    if 3**N <= max_faces:
        c, v, lb = _enumerate_faces(A, B, act, Qb, _GAP_RTOL * scale)
        parts.append(f"exhaustive enumeration ({3**N} sign faces)")
        if c is not None:
            best_c, best_v = c, v
        lower = lb
        exact = lb >= v - 1e-9 * scale
    if N <= EXACT_MAX_N or 3**N > max_faces:
        lb, desc, ex = _margin(A, B, act, Qb, None, solver, "auto", max_patterns)
        lower, exact = max(lower, lb), exact or ex
        parts.append(desc)
    c, v = _local_search(A, B, act, Qb, n_search, rng, starts_c)
    parts.append(f"local search ({n_search} random starts)")
    if v < best_v:
        best_c, best_v = c, v
    return best_c, best_v, lower, exact, " + ".join(parts)


# --------------------------------------------------------------------------------------------
# public building blocks
# --------------------------------------------------------------------------------------------
def dual_cone_margin(A, B, activation, patterns=None, Q=None, solver=None, method="auto",
                     max_patterns: int = 128) -> float:
    """Sufficient test of ``(A, B) in S_s*``: a lower bound on ``min f(z)`` over unit ``z``.

    ``f(z) = z^T A z + s(z)^T B s(z)``; the bound is the value of the SDP of the module
    docstring (``max t`` with ``V_P^T (M_P - N_P) V_P >= t I``, ``N_P >= 0``, every pattern).
    It is ``>= 0`` only if ``(A, B)`` lies in the dual cone (restricted to ``range(Q)``), and
    it *equals* ``min f`` for ``N <= 4`` with the default patterns, or for a linear activation
    (then an eigenvalue, no SDP).

    Parameters
    ----------
    A, B : array_like, shape (N, N)
        Symmetric matrices (symmetrised if not).
    activation : str or Homogeneous
        A positively homogeneous activation.
    patterns : ndarray of bool, shape (m, N), optional
        The sign patterns to test (they must cover ``range(Q)``). Default: all ``2^N`` (one of
        each complementary pair for the absolute value) or, when ``Q`` is given, the cells of
        its hyperplane arrangement; with more than ``max_patterns`` of them the lifted
        ``2N x 2N`` test is used instead (also sufficient, more conservative).
    Q : array_like, shape (N, r), optional
        Restrict ``z`` to ``range(Q)`` (an orthonormal basis of it is taken). Default: R^N.
    solver : str, optional
        Cone solver (:func:`conic_dnn.solvers.run`; default Clarabel, then SCS).
    method : {"auto", "patterns", "lifted"}
    max_patterns : int, default 128

    Returns
    -------
    float
        The margin, in the units of ``A`` and ``B`` (``inf`` when ``range(Q) = {0}``).
    """
    act = _check_activation(activation)
    A = _check_square(A, "A")
    N = A.shape[0]
    B = _check_square(B, "B", N)
    Qo = _check_Q(Q, N)
    max_patterns = _check_int(max_patterns, "max_patterns", 1)
    return _margin(A, B, act, Qo, patterns, solver, method, max_patterns)[0]


def find_violating_neuron(A, B, activation, Q=None, n_search: int = 20, seed=0, starts=None,
                          max_patterns: int = 4096, max_faces: int = 3**8):
    """Search for a unit ``z`` in ``range(Q)`` minimising ``f(z) = z^T A z + s(z)^T B s(z)``.

    Exhaustive (exact up to ties) when ``3^N <= max_faces``; always followed by the local search
    of the module docstring (from ``starts``, one eigenvector start per sign pattern, and
    ``n_search`` random directions). For a linear activation the exact minimiser (an
    eigenvector) is returned.

    Parameters
    ----------
    A, B : array_like, shape (N, N)
    activation : str or Homogeneous
    Q : array_like, shape (N, r), optional
        Search ``z`` in ``range(Q)`` only. Default: R^N.
    n_search : int, default 20
        Random starts (and number of pattern starts refined) of the local search.
    seed : int, numpy Generator or None, default 0
    starts : array_like, shape (N, m) or (N,), optional
        Extra starting neurons (e.g. a layer's own neurons), projected on ``range(Q)``.
    max_patterns : int, default 4096
    max_faces : int, default 6561 (N <= 8)

    Returns
    -------
    z : ndarray, shape (N,), or None
        The best unit neuron found (None when ``range(Q) = {0}``).
    value : float
        ``f(z)`` (``inf`` when ``range(Q) = {0}``). Negative: ``z`` is a violation.
    """
    act = _check_activation(activation)
    A = _check_square(A, "A")
    N = A.shape[0]
    B = _check_square(B, "B", N)
    Qo = _check_Q(Q, N)
    n_search = _check_int(n_search, "n_search", 0)
    max_patterns = _check_int(max_patterns, "max_patterns", 1)
    max_faces = _check_int(max_faces, "max_faces", 0)
    rng = np.random.default_rng(_check_seed(seed))
    starts_c = None
    if starts is not None:
        starts = np.asarray(starts, dtype=float)
        if starts.ndim == 1:
            starts = starts[:, None]
        if starts.ndim != 2 or starts.shape[0] != N:
            raise ValueError(f"starts: expected shape ({N}, m), got {starts.shape}")
        if not np.all(np.isfinite(starts)):
            raise ValueError("starts: expected finite values, got NaN or inf")
        starts_c = Qo.T @ starts
    if Qo.shape[1] == 0:
        return None, math.inf
    c, _ = _search_only(A, B, act, Qo, n_search, rng, starts_c, max_patterns, max_faces)
    z = Qo @ c
    z /= np.linalg.norm(z)
    return z, float(_fq(z[:, None], np.eye(N), A, B, act)[0])


def _search_only(A, B, act, Qo, n_search, rng, starts_c, max_patterns, max_faces):
    N = Qo.shape[0]
    if act.a == act.b:
        w, U = np.linalg.eigh(sym(Qo.T @ (A + act.a**2 * B) @ Qo))
        return U[:, 0], float(w[0])
    best_c, best_v = None, math.inf
    if 3**N <= max_faces:
        best_c, best_v, _ = _enumerate_faces(A, B, act, Qo, _GAP_RTOL * _scale(A, B, act, Qo))
    c, v = _local_search(A, B, act, Qo, n_search, rng, starts_c, max_patterns)
    if v < best_v or best_c is None:
        best_c, best_v = c, v
    return best_c, best_v


