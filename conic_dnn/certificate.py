"""Per-layer certificates of layerwise optimality (MATH.md §3, "Certificates").

The layer problem
    Hold every layer but the hidden layer ``l`` (``1 <= l <= L-1``) fixed. In covariance form the
    loss is a function of the layer's pair ``(K_l, G_l)``,

        F(K_l, G_l) = lam * tr(K_l pinv(G_{l-1})) + lam * tr(Y^T pinv(G_l) Y) + const,

    ``Y = Z_{l+1}`` (so ``Y Y^T = K_{l+1}``, or ``Z_L Z_L^T`` for the last hidden layer), over the
    shifted cone ``(K_l, G_l - bias^2 1 1^T) in S_s`` with ``range(K_l) in range(G_{l-1})``.
    It is convex, and adding a neuron ``z`` (``(K, G) += t (z z^T, s(z) s(z)^T)``) is the basic
    move.

The gradient pair
    ``A_l = lam * pinv(G_{l-1})`` and ``B_l = -lam * V V^T``. MATH.md writes
    ``V = pinv(G_l) Y``; that is one subgradient of the matrix-fractional term, and it is the
    gradient only when ``G_l`` has full rank. When ``G_l`` is rank deficient -- the usual case
    at an optimum with fewer than ``N`` independent neurons -- or nearly so (a solver's
    network), that choice fails to certify true optima and blows up like ``1 / sigma_min^2``.
    This module takes the multiplier the next layer's weights actually see,

        V = -(1 / (2 lam)) * dC(Z_L) / dZ_{l+1}      (back-propagated through the network),

    for which everything below is exact and well conditioned:

    * *Improving neurons.* Adding a neuron with incoming weights ``sqrt(t) w`` to ``W_l``
      (pre-activation ``sqrt(t) z``, ``z = H_{l-1} w``) and outgoing weights
      ``sqrt(t) V^T s(z)`` to ``W_{l+1}`` changes the loss by ``t f(z) + O(t^2)`` with

          f(z) = z^T A_l z + s(z)^T B_l s(z) = lam * (||w||^2 - ||V^T s(z)||^2)

      (``w`` min-norm). So ``f(z) < 0`` is a genuine first-order descent direction (when a
      later pre-activation sits exactly at the kink of ``s``, the backprop derivative is
      one-sided; the reported rate is then recomputed exactly by forward propagation).
    * *Certificate.* For every ``V``, ``tr(Y^T pinv(G') Y) >= 2 tr(V^T Y) - tr(V^T G' V)``, so
      for every feasible ``(K', G')``

          F(K', G') >= F(K, G) - lam * ||W_{l+1} - V^T H_l||^2
                       + [<A, K'> + <B, G'_s>] - [<A, K> + <B, G_s>],   G_s = G - bias^2 11^T.

      If ``(A, B)`` is in the dual cone (``f >= 0`` on ``range(G_{l-1})``), the first bracket
      is ``>= 0`` and the layer is optimal up to ``gap_bound = lam ||W_{l+1} - V^T H_l||^2 +
      <A, K> + <B, G_s>``: a stationarity term (zero when ``W_{l+1}`` is a critical point of the
      loss) plus complementarity (``lam (||W_l||^2 - ||V^T s(Z_l)||^2)``: balanced norms).
      At a stationary point with full-rank ``G_l`` this ``V`` is MATH.md's ``pinv(G_l) Y``.
    * *The last hidden layer.* ``V`` comes from ``grad C(Z_L)`` and ``C`` is convex, so the same
      bound holds with the output ``Z_L`` re-optimised as well: the certificate of layer ``L-1``
      covers that layer *jointly with the output layer*. For depth 2 it is a certificate of
      global optimality (the convex two-layer problem). Deeper layers are certified with their
      neighbours' covariances fixed.

Testing the dual cone
    In incoming-weight coordinates ``z = H_{l-1} w`` (reduced: ``z = U diag(sigma) c`` from the
    SVD of ``H_{l-1}``, ``||c|| = ||w||``) the test is ``min_{||c|| = 1} f = lam (1 - rho^2)``,
    ``rho = max_{||w|| = 1} ||V^T s(H_{l-1} w)||``. The reported margin is ``min f / lam``
    (dimensionless; ``1`` for a layer that nothing can use, negative when violated).

    * Exact semidefinite test (:func:`dual_cone_margin`): on a sign pattern ``P``,
      ``z = S_P u``, ``u >= 0``, ``f = u^T M_P u`` with ``M_P = S_P A S_P + T_P B T_P``; solve
      ``max t  s.t.  V_P^T (M_P - N_P) V_P >= t I``, ``N_P >= 0`` entrywise, ``V_P = S_P Q``.
      A lower bound on ``min f``; exact for ``N <= 4`` (its dual asks ``V_P W V_P^T`` to be
      doubly nonnegative, which for ``N <= 4`` means completely positive with factors in
      ``range(V_P)``: Maxfield-Minc / Diananda). Above ``max_patterns`` patterns a lifted
      ``2N x 2N`` program on ``(z_+, z_-)`` (free diagonal on the ``+-`` block for
      ``z_+ z_- = 0``) replaces it: cheaper, sufficient only.
    * Exhaustive enumeration (when ``3^N <= max_faces``, default ``N <= 8``): the minimiser of
      ``f`` on the unit sphere lies in the relative interior of one face ``{sign(z) = sigma}``,
      ``sigma in {-1, 0, +1}^N``, where ``f`` is the quadratic ``z^T (A + D B D) z`` and a local
      minimum of its Rayleigh quotient is a bottom eigenvector; enumerating all faces gives the
      exact minimum and its minimiser (a face whose bottom eigenvalue is not simple counts
      conservatively towards the lower bound).
    * Local search otherwise (:func:`find_violating_neuron`): BFGS on ``f(Qc) / ||c||^2`` from
      the layer's own neurons, one eigenvector start per sign pattern (sampled above
      ``max_patterns`` patterns) and ``n_search`` random starts, then an eigenvector polish on
      the face reached. A negative value is always a genuine violation (``f`` is evaluated
      exactly); a nonnegative one proves nothing by itself.
    For a linear activation (``a == b``) the test is an eigenvalue, exact for any ``N``.

Tolerances
    A layer is *certified* when (i) the rigorous lower bound on ``min f / lam`` is
    ``>= -tol``, (ii) no neuron with ``f / lam < -tol`` was found, (iii) the complementarity
    residual ``|<A,K> + <B,G_s>| / (<A,K> + |<B,G_s>|)`` is ``<= tol`` and (iv) the stationarity
    residual ``||W_{l+1} - V^T H_l|| / max(||W_{l+1}||, ||V^T H_l||)`` is ``<= tol``. All four
    are first-order quantities: a network within ``eps`` (relative) of optimal in loss
    typically has them at ``~sqrt(eps)``, so for networks produced by a cone solver (loss
    accuracy ``~1e-8``) use ``tol ~ 1e-4 .. 1e-3``. The SDP (Clarabel, then SCS, via
    :func:`conic_dnn.solvers.run`) is itself accurate to about ``1e-8`` relative.
    Differentiable costs are assumed (a subgradient is used for the hinge loss).
"""

from __future__ import annotations

import itertools
import json
import math
import warnings
from dataclasses import dataclass, field
from numbers import Integral, Real

import cvxpy as cp
import numpy as np
from scipy.linalg import null_space
from scipy.optimize import minimize

from .activations import get_activation
from .formulations import layer_inputs, min_norm_weights
from .linalg import FACTOR_RTOL, factor_range, sym
from .network import Network, check_weights, forward, insert_neuron
from .patterns import all_patterns, arrangement_patterns, max_regions, pattern_signs
from .problem import Problem
from .solvers import run

__all__ = ["LayerCertificate", "Certificate", "certify", "dual_cone_margin",
           "find_violating_neuron", "EXACT_MAX_N"]

EXACT_MAX_N = 4
"""Largest ``N`` for which the PSD + NN test is exact (copositive = PSD + NN up to order 4)."""

_GAP_RTOL = 1e-9  # eigenvalue gap (relative to the scale) below which a face is ambiguous


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LayerCertificate:
    """The certificate of one hidden layer (module docstring for the mathematics).

    Attributes
    ----------
    layer : int
        Hidden layer, 1-based (``1 .. L-1``).
    A, B : ndarray, shape (N, N)
        The gradient pair ``A = lam pinv(G_{l-1})``, ``B = -lam V V^T``.
    min_margin : float
        ``min f / lam`` over neurons with unit incoming weight (``z^T A z = lam``): the value
        of the violating neuron when one was found, otherwise the rigorous lower bound
        (``1.0`` when no neuron fits in ``range(G_{l-1})``). Negative = violated.
    certified : bool
        All four conditions of the module docstring ("Tolerances") hold.
    exact : bool
        The dual-cone test is exact (``N <= 4`` SDP, complete face enumeration, or a linear
        activation): a failed test then means a violating neuron was found.
    complementarity : float
        Relative residual of ``<A, K_l> + <B, G_l - bias^2 11^T> = 0`` (balanced norms); when
        it fails, rescaling the layer improves the loss.
    stationarity : float
        Relative residual ``||W_{l+1} - V^T H_l|| / max(||W_{l+1}||, ||V^T H_l||)``: zero when
        the next layer's weights are a critical point of the loss.
    improving_neuron : ndarray, shape (N,), or None
        A unit ``z`` in ``range(G_{l-1})`` with ``f(z) < 0`` (``f / lam < -tol`` for unit
        incoming weight), if one was found.
    decrease : float
        The first-order rate for that unit ``z``: inserting it (see ``incoming`` /
        ``outgoing``) with weight ``t`` changes the loss by ``t * decrease + O(t^2)``;
        ``0.0`` if none found. It is ``f(z)``, unless a later layer has a pre-activation
        exactly at a kink (e.g. a dead row without bias), where the exact one-sided rate is
        computed by forward propagation; a neuron is only reported when that rate is ``< 0``.
    incoming, outgoing : ndarray or None
        Weights realising ``z`` (row of ``W_l``, bias entry last when ``bias > 0``) and its
        outgoing column of ``W_{l+1}``: add ``sqrt(t) * incoming`` and
        ``sqrt(t) * outgoing`` (before the bias column).
    gap_bound : float
        Upper bound on the layer's suboptimality (loss units) when the dual-cone test passed,
        ``inf`` otherwise.
    lower_bound : float
        Rigorous lower bound on ``min f / lam`` (``-inf`` if none could be computed).
    search_value : float
        Smallest ``f / lam`` found (unit incoming weight): an upper bound on the minimum.
    method : str
        Which tests were run.
    """

    layer: int
    A: np.ndarray = field(repr=False)
    B: np.ndarray = field(repr=False)
    min_margin: float
    certified: bool
    exact: bool
    complementarity: float
    stationarity: float
    improving_neuron: np.ndarray | None = field(repr=False)
    decrease: float
    incoming: np.ndarray | None = field(default=None, repr=False)
    outgoing: np.ndarray | None = field(default=None, repr=False)
    gap_bound: float = math.inf
    lower_bound: float = -math.inf
    search_value: float = math.inf
    method: str = ""

    def to_dict(self) -> dict:
        """JSON-serialisable dictionary (arrays as nested lists, non-finite floats as None)."""
        def arr(x):
            return None if x is None else np.asarray(x).tolist()

        return {
            "layer": int(self.layer), "A": arr(self.A), "B": arr(self.B),
            "min_margin": _num(self.min_margin), "certified": bool(self.certified),
            "exact": bool(self.exact), "complementarity": _num(self.complementarity),
            "stationarity": _num(self.stationarity),
            "improving_neuron": arr(self.improving_neuron), "decrease": _num(self.decrease),
            "incoming": arr(self.incoming), "outgoing": arr(self.outgoing),
            "gap_bound": _num(self.gap_bound), "lower_bound": _num(self.lower_bound),
            "search_value": _num(self.search_value), "method": self.method,
        }


@dataclass(frozen=True, eq=False)
class Certificate:
    """Certificates of every hidden layer of a network.

    Attributes
    ----------
    layers : tuple of LayerCertificate
        One per hidden layer ``1 .. L-1``.
    certified : bool
        Every layer certified.
    objective : float
        Regularised loss of the certified network (the input with minimum-norm weights).
    network : Network
        That network.
    tol : float
        The relative tolerance used.
    """

    layers: tuple
    certified: bool
    objective: float
    network: Network | None = field(default=None, repr=False)
    tol: float = 1e-6

    def __str__(self) -> str:
        status = "certified layerwise optimal" if self.certified else "NOT certified"
        head = (f"{'layer':>5} | {'margin':>10} | {'complementarity':>15} | {'certified':>9} | "
                f"{'exact':>5} | {'decrease':>10}")
        lines = [f"conic_dnn layer certificates ({status}; objective {self.objective:.10g}, "
                 f"tol {self.tol:g})", head, "-" * len(head)]
        for c in self.layers:
            lines.append(f"{c.layer:>5} | {c.min_margin:>10.3e} | {c.complementarity:>15.3e} | "
                         f"{'yes' if c.certified else 'no':>9} | "
                         f"{'yes' if c.exact else 'no':>5} | {c.decrease:>10.3e}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-serialisable dictionary (see :meth:`LayerCertificate.to_dict`)."""
        return {"certified": bool(self.certified), "objective": _num(self.objective),
                "tol": float(self.tol), "layers": [c.to_dict() for c in self.layers]}

    def to_json(self, **kwargs) -> str:
        """:meth:`to_dict` as a JSON string (``kwargs`` go to :func:`json.dumps`)."""
        return json.dumps(self.to_dict(), **kwargs)


def _num(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


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


# --------------------------------------------------------------------------------------------
# certify a network
# --------------------------------------------------------------------------------------------
def _check_network(problem: Problem, network) -> list[np.ndarray]:
    if isinstance(network, Network):
        act = problem.activation
        if (network.activation.a, network.activation.b) != (act.a, act.b):
            raise ValueError(f"network: expected the problem's activation {act.name!r}, got "
                             f"{network.activation.name!r}")
        if network.bias != problem.bias:
            raise ValueError(f"network: expected bias {problem.bias:g} (the problem's), got "
                             f"{network.bias:g}")
        weights = list(network.weights)
    elif isinstance(network, (list, tuple)):
        weights = list(network)
    else:
        raise TypeError(f"network: expected a conic_dnn.Network or a list of weight matrices, "
                        f"got {type(network).__name__}")
    return check_weights(weights, problem.d, problem.k, problem.depth, problem.bias,
                         name="network")


def _backprop(problem: Problem, weights, Zs) -> list[np.ndarray]:
    """``dC(Z_L)/dZ_l`` for ``l = 1..L`` (the weights held fixed)."""
    act = problem.activation
    grads = [None] * len(Zs)
    grads[-1] = problem.loss.gradient(Zs[-1], problem.Y)
    for i in range(len(Zs) - 2, -1, -1):
        n = Zs[i].shape[1]
        grads[i] = (grads[i + 1] @ weights[i + 1][:, :n]) * act.derivative(Zs[i])
    return grads


def _insertion_rate(problem: Problem, weights, Zs, grad_out, layer: int, z, w_out) -> float:
    """Exact one-sided rate ``d/dt`` of the loss when ``t (z z^T, s(z) s(z)^T)`` is added to
    hidden layer ``layer`` with outgoing weights ``sqrt(t) w_out`` (``z`` in the range).

    ``lam z^T pinv(G) z + lam ||w_out||^2 + <grad C(Z_L), dZ_L>`` with ``dZ_{l+1} = s(z) w_out^T``
    pushed forward through the later layers by the one-sided derivative of ``s`` (so exact
    zeros of later pre-activations, e.g. dead rows without bias, are handled exactly). Equals
    ``f(z)`` whenever the later layers are differentiable at the network."""
    act, lam = problem.activation, problem.lam
    H = layer_inputs(problem, Zs)[layer - 1]
    w_in = np.linalg.lstsq(H, z, rcond=FACTOR_RTOL)[0]
    dZ = np.outer(act(z), w_out)
    for i in range(layer, len(Zs) - 1):  # Zs[i] = Z_{i+1}: hidden layers after `layer`
        Z = Zs[i]
        dH = np.where(Z > 0, act.a * dZ, np.where(Z < 0, act.b * dZ, act(dZ)))
        dZ = dH @ weights[i + 1][:, :Z.shape[1]].T
    return float(lam * (w_in @ w_in) + lam * (w_out @ w_out) + np.sum(grad_out * dZ))


def certify(problem, network, tol: float = 1e-6, n_search: int = 20, seed=0, solver=None,
            max_patterns: int = 128, max_faces: int = 3**8) -> Certificate:
    """Certify (or refute) the layerwise optimality of every hidden layer of a network.

    Works on any network of the problem's shape (trained by SGD, by :func:`conic_dnn.solve`,
    hand-made). First the weights are replaced by the **minimum-norm weights** realising the
    same pre-activations (:func:`conic_dnn.min_norm_weights`): this never increases the loss
    and is the network the covariance loss describes; the certificate is about that network
    (``Certificate.network``, ``Certificate.objective``).

    For each hidden layer ``l`` the gradient pair ``A_l = lam pinv(G_{l-1})``,
    ``B_l = -lam V V^T`` (``V`` the back-propagated multiplier, module docstring) is tested
    for membership of the dual cone, by an SDP (exact for ``N <= 4``) or exhaustive
    enumeration (exact, ``3^N <= max_faces``) and a local search for a violating neuron, and
    complementarity and the next layer's stationarity are checked. Layers ``l < L-1`` are
    certified with their neighbours' covariances fixed; the last hidden layer jointly with the
    output layer (its re-optimisation is a convex problem that the certificate covers: for
    depth 2 a certified layer is a global optimum). See the module docstring ("Tolerances")
    for exactly what ``tol`` bounds.

    Parameters
    ----------
    problem : Problem
        With a positively homogeneous activation.
    network : Network or list of ndarray
        The weights ``W_1..W_L`` (bias column included when ``problem.bias > 0``).
    tol : float, default 1e-6
        Relative tolerance of the margin (in units of ``lam``), complementarity and
        stationarity residuals (first-order quantities: use ~sqrt of the loss accuracy,
        e.g. 1e-4 .. 1e-3, for networks produced by cone solvers).
    n_search : int, default 20
        Random starts (and pattern starts refined) of the violating-neuron search.
    seed : int, numpy Generator or None, default 0
    solver : str, optional
        Cone solver for the SDP test (default Clarabel, then SCS).
    max_patterns : int, default 128
        Largest number of sign patterns for the per-pattern SDP; above it the lifted SDP.
    max_faces : int, default 6561
        Largest ``3^N`` for the exhaustive enumeration (``N <= 8`` by default).

    Returns
    -------
    Certificate

    Raises
    ------
    TypeError, ValueError
        Invalid arguments ("expected ..., got ...").
    conic_dnn.SolverFailedError
        If no solver could solve a dual-cone SDP.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected a conic_dnn.Problem, got {type(problem).__name__}")
    act = problem.require_homogeneous("certify")
    weights = _check_network(problem, network)
    tol = _check_tol(tol)
    n_search = _check_int(n_search, "n_search", 0)
    max_patterns = _check_int(max_patterns, "max_patterns", 1)
    max_faces = _check_int(max_faces, "max_faces", 0)
    rng = np.random.default_rng(_check_seed(seed))

    Wm = min_norm_weights(problem, forward(problem.X, weights, act, problem.bias))
    net = Network(tuple(Wm), act, problem.bias)
    Zs = forward(problem.X, Wm, act, problem.bias)
    objective = problem.loss.value(Zs[-1], problem.Y) + problem.lam * sum(
        float(np.sum(W**2)) for W in Wm)
    Hs = layer_inputs(problem, Zs)
    grads = _backprop(problem, Wm, Zs)
    lam = problem.lam

    layers = []
    for l in range(1, problem.depth):
        H, Hn, W, Wn = Hs[l - 1], Hs[l], Wm[l - 1], Wm[l]
        sv, U, Vt = _svd_range(H)
        Qb = U * sv  # z = Qb c, c = V_H^T w: ||c|| = ||w|| for min-norm incoming weights w
        A = sym(lam * (U / sv**2) @ U.T)
        V = -grads[l] / (2.0 * lam)
        B = -lam * (V @ V.T)
        # complementarity (balanced norms) and stationarity of W_{l+1}
        VS = V.T @ act(Zs[l - 1])
        kA, kB = lam * float(np.sum(W**2)), -lam * float(np.sum(VS**2))
        den = kA + abs(kB)
        comp = abs(kA + kB) / den if den > 0 else 0.0
        VH = V.T @ Hn
        nW = max(float(np.linalg.norm(Wn)), float(np.linalg.norm(VH)))
        stat_abs = float(np.sum((Wn - VH) ** 2))
        stat = math.sqrt(stat_abs) / nW if nW > 0 else 0.0
        # dual cone, in incoming-weight coordinates (A restricted = lam I)
        starts_c = Vt @ W.T if W.shape[0] else None
        c, val, lower, exact, method = _test(
            A, B, act, Qb, n_search=n_search, rng=rng, starts_c=starts_c, solver=solver,
            max_patterns=max_patterns, max_faces=max_faces)
        if c is None:  # no neuron fits in range(G_{l-1})
            val_rel = lower_rel = 1.0
        else:
            val_rel, lower_rel = val / lam, lower / lam
        violated = c is not None and val_rel < -tol
        z = w_in = w_out = None
        decrease = 0.0
        if violated:
            c = c / np.linalg.norm(c)
            zr = Qb @ c
            nz = float(np.linalg.norm(zr))
            rate = _insertion_rate(problem, Wm, Zs, grads[-1], l, zr / nz, V.T @ act(zr) / nz)
            step = (_verified_step(problem, Wm, l, Vt.T @ c, V.T @ act(zr), objective,
                                   rate * nz**2) if rate < 0 else None)
            if step is not None:  # a real forward pass confirms the decrease
                z, w_in, w_out, decrease = zr / nz, Vt.T @ c, V.T @ act(zr), rate
            elif rate < 0:
                method += (" (violation found, but no step size lowers the loss: later "
                           "pre-activations sit within rounding of a kink)")
            else:
                method += " (violation found, but a kink in a later layer blocks it)"
        margin = val_rel if violated else lower_rel
        dual_ok = lower_rel >= -tol and not violated
        certified = bool(dual_ok and comp <= tol and stat <= tol)
        gap = lam * stat_abs + max(kA + kB, 0.0) if dual_ok else math.inf
        layers.append(LayerCertificate(
            layer=l, A=A, B=B, min_margin=float(margin), certified=certified, exact=bool(exact),
            complementarity=float(comp), stationarity=float(stat), improving_neuron=z,
            decrease=float(decrease), incoming=w_in, outgoing=w_out, gap_bound=float(gap),
            lower_bound=float(lower_rel), search_value=float(val_rel), method=method))
    return Certificate(layers=tuple(layers), certified=all(c.certified for c in layers),
                       objective=float(objective), network=net, tol=tol)


def _verified_step(problem: Problem, weights, layer: int, w_in, w_out, objective: float,
                   rate: float):
    """Smallest ``k`` such that inserting the neuron with size ``t = 2^-k`` (incoming
    ``sqrt(t) w_in``, outgoing ``sqrt(t) w_out``) lowers the forward-pass loss by at least half
    the first-order prediction ``t * |rate|`` (Armijo) and by more than rounding
    (``1e-12`` relative), ``k = 0..60``; ``None`` if no such step exists: the first-order
    rate then holds only on a vanishing neighbourhood (later pre-activations within rounding
    of a kink), which no optimiser can use."""
    act, bias = problem.activation, problem.bias
    for k in range(61):
        Ws = insert_neuron(weights, layer, w_in, w_out, 2.0 ** (-k / 2), bias)
        Zs = forward(problem.X, Ws, act, bias)
        val = problem.loss.value(Zs[-1], problem.Y) + problem.lam * sum(
            float(np.sum(W**2)) for W in Ws)
        t = 2.0**-k
        if (val <= objective + 0.5 * t * rate
                and val < objective - 1e-12 * max(abs(objective), 1e-300)):
            return k
    return None


def _svd_range(H: np.ndarray):
    """``(sigma, U, V^T)`` of ``H`` on its numerical range (``FACTOR_RTOL``)."""
    if H.size == 0:
        return np.zeros(0), np.zeros((H.shape[0], 0)), np.zeros((0, H.shape[1]))
    U, s, Vt = np.linalg.svd(H, full_matrices=False)
    keep = s > FACTOR_RTOL * s[0] if s[0] > 0 else np.zeros_like(s, dtype=bool)
    return s[keep], U[:, keep], Vt[keep]
