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
    Directions of ``range(G_{l-1})`` whose singular value in ``H_{l-1}`` is below
    ``RANGE_RTOL = 1e-5`` (relative) are left out of the dual-cone tests (in them ``A`` has
    condition number ``> 1e10`` and ``z^T A z`` loses every digit); the lower bound is then
    lowered by ``(L_s ||V||_2 sigma_dropped)^2`` (``L_s = max(|a|, |b|)``), which covers them
    rigorously: for unit ``c = (c_r, c_n)``,
    ``||V^T s(Q_r c_r + Q_n c_n)|| <= ||V^T s(Q_r c_r)|| + L_s ||V|| sigma_dropped ||c_n||``.

Multipliers
    Any ``V`` gives a valid bound. The last hidden layer uses the back-propagated ``V`` (which
    covers the output layer jointly). Layers ``l < L-1`` try, in turn, the back-propagated
    ``V``, MATH.md's ``pinv(G_l) Z_{l+1}`` and the ``V`` of the subdifferential
    ``{V : G_l V = Z_{l+1}}`` (stationarity within ``tol / 2``) with the best PSD + NN margin
    (:mod:`conic_dnn.multiplier`): the first that certifies is reported
    (``LayerCertificate.multiplier``). The back-propagated ``V`` is ambiguous when a later
    pre-activation sits at the kink of ``s``; MATH.md's blows up when ``G_l`` is rank
    deficient up to solver noise; the optimised one is robust to both. Improving neurons
    found with MATH.md's ``V`` are verified by re-fitting ``W_{l+1}`` to the same ``Z_{l+1}``
    (later layers unchanged), with the others by inserting the outgoing weights.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from .dual_cone import (
    EXACT_MAX_N,
    _check_int,
    _check_seed,
    _check_tol,
    _search_only,
    _test,
    dual_cone_margin,
    find_violating_neuron,
)
from .formulations import layer_inputs, min_norm_weights
from .linalg import FACTOR_RTOL, sym
from .multiplier import certifying_multiplier
from .network import Network, check_weights, forward, insert_neuron
from .problem import Problem

RANGE_RTOL = 1e-5
"""Singular values of ``H_{l-1}`` below this (relative) are left out of the dual-cone test;
the bound is lowered rigorously to cover them (module docstring, "Tolerances")."""

__all__ = ["LayerCertificate", "Certificate", "certify", "dual_cone_margin",
           "find_violating_neuron", "EXACT_MAX_N"]


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
    multiplier: str = "backprop"

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
            "multiplier": self.multiplier,
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
            max_patterns: int = 128, max_faces: int = 3**8, bounds: bool = True) -> Certificate:
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
    bounds : bool, default True
        ``False`` skips the rigorous lower bounds (the SDPs) and only searches for improving
        neurons (enumeration when ``3^N <= max_faces``, else the local search): no layer is
        then certified. The deep solver's escape steps use it (3x faster at ``N = 4``).

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
        sv, U, Vt, dropped = _svd_range(H, RANGE_RTOL)
        ctx = _LayerContext(problem, Wm, Zs, grads, objective, l, H, Hn, W, Wn, sv, U, Vt,
                            dropped)
        # multipliers: back-propagated (covers the last hidden layer jointly with the output
        # layer); for l < L-1 also MATH.md's pinv(G_l) Z_{l+1} (next covariance fixed), which
        # later kinks cannot affect. Either one certifies (the bound holds for every V).
        V_bp = -grads[l] / (2.0 * lam)
        runs = [_test_layer(ctx, V_bp, "backprop", tol, n_search, rng, solver, max_patterns,
                            max_faces, bounds)]
        if l < problem.depth - 1 and not runs[0].certified:
            sn, Un, Vtn, _ = _svd_range(Hn)
            V_cov = (Un / sn) @ (Vtn @ Wn.T)  # pinv(G_l) Z_{l+1}, G_l = H_l H_l^T
            runs.append(_test_layer(ctx, V_cov, "covariance", tol, n_search, rng, solver,
                                    max_patterns, max_faces, bounds))
            if bounds and not runs[-1].certified:  # search the subdifferential for a certifying V
                V_best, _ = certifying_multiplier(
                    act, ctx.U * ctx.sv, Hn, Wn, 0.5 * tol * float(np.linalg.norm(Wn)),
                    max_patterns, solver)
                if V_best is not None:
                    runs.insert(0, _test_layer(ctx, V_best, "optimised", tol, n_search, rng,
                                               solver, max_patterns, max_faces))
        layers.append(_pick(runs))
    return Certificate(layers=tuple(layers), certified=all(c.certified for c in layers),
                       objective=float(objective), network=net, tol=tol)


@dataclass(frozen=True)
class _LayerContext:
    problem: Problem
    weights: list
    Zs: list
    grads: list
    objective: float
    layer: int
    H: np.ndarray
    Hn: np.ndarray
    W: np.ndarray
    Wn: np.ndarray
    sv: np.ndarray
    U: np.ndarray
    Vt: np.ndarray
    dropped: float


def _test_layer(ctx: _LayerContext, V, multiplier: str, tol, n_search, rng, solver,
                max_patterns, max_faces, bounds: bool = True) -> LayerCertificate:
    """The four conditions of the module docstring for one multiplier ``V``."""
    problem, l = ctx.problem, ctx.layer
    act, lam = problem.activation, problem.lam
    Qb = ctx.U * ctx.sv  # z = Qb c, c = V_H^T w: ||c|| = ||w|| for min-norm incoming weights w
    A = sym(lam * (ctx.U / ctx.sv**2) @ ctx.U.T)
    B = -lam * (V @ V.T)
    # complementarity (balanced norms) and stationarity of W_{l+1}
    VS = V.T @ act(ctx.Zs[l - 1])
    kA, kB = lam * float(np.sum(ctx.W**2)), -lam * float(np.sum(VS**2))
    den = kA + abs(kB)
    comp = abs(kA + kB) / den if den > 0 else 0.0
    VH = V.T @ ctx.Hn
    nW = max(float(np.linalg.norm(ctx.Wn)), float(np.linalg.norm(VH)))
    stat_abs = float(np.sum((ctx.Wn - VH) ** 2))
    stat = math.sqrt(stat_abs) / nW if nW > 0 else 0.0
    # dual cone, in incoming-weight coordinates (A restricted = lam I)
    starts_c = ctx.Vt @ ctx.W.T if ctx.W.shape[0] else None
    if bounds:
        c, val, lower, exact, method = _test(
            A, B, act, Qb, n_search=n_search, rng=rng, starts_c=starts_c, solver=solver,
            max_patterns=max_patterns, max_faces=max_faces)
    elif Qb.shape[1] == 0:
        c, val, lower, exact, method = None, math.inf, math.inf, True, "empty range"
    else:
        c, val = _search_only(A, B, act, Qb, n_search, rng, starts_c, max_patterns, max_faces)
        lower, exact, method = -math.inf, False, "search only (no bounds)"
    method = f"{multiplier} multiplier: {method}"
    if c is None:  # no neuron fits in range(G_{l-1})
        val_rel = lower_rel = 1.0
    else:
        val_rel, lower_rel = val / lam, lower / lam
    if ctx.dropped > 0:  # directions of range(G_{l-1}) below RANGE_RTOL (module docstring)
        kappa = max(abs(float(act.a)), abs(float(act.b))) * float(np.linalg.norm(V, 2))
        lower_rel -= (kappa * ctx.dropped) ** 2
        method += f" (range truncated: bound lowered by {(kappa * ctx.dropped) ** 2:.1e})"
    violated = c is not None and val_rel < -tol
    z = w_in = w_out = None
    decrease = 0.0
    if violated:
        c = c / np.linalg.norm(c)
        zr = Qb @ c
        nz = float(np.linalg.norm(zr))
        w_in = ctx.Vt.T @ c
        if multiplier == "covariance":
            # the next layer's pre-activations are kept: its weights are re-fitted
            rate, w_out = _refit_rate(ctx, w_in, zr)
        else:
            w_out = V.T @ act(zr)
            rate = _insertion_rate(problem, ctx.weights, ctx.Zs, ctx.grads[-1], l, zr / nz,
                                   w_out / nz) * nz**2
        step = (_verified_step(ctx, w_in, None if multiplier == "covariance" else w_out,
                               rate) if rate < 0 else None)
        if step is not None:  # a real forward pass confirms the decrease
            z, decrease = zr / nz, rate / nz**2
        else:
            w_in = w_out = None
            if rate < 0:
                method += (" (violation found, but no step size lowers the loss: later "
                           "pre-activations sit within rounding of a kink)")
            else:
                method += (" (violation found, but it does not lower the loss: a kink in a "
                           "later layer or s(z) outside range(G_l) blocks it)")
    margin = val_rel if violated else lower_rel
    dual_ok = lower_rel >= -tol and not violated
    certified = bool(dual_ok and comp <= tol and stat <= tol)
    gap = lam * stat_abs + max(kA + kB, 0.0) if dual_ok else math.inf
    return LayerCertificate(
        layer=l, A=A, B=B, min_margin=float(margin), certified=certified, exact=bool(exact),
        complementarity=float(comp), stationarity=float(stat), improving_neuron=z,
        decrease=float(decrease), incoming=w_in, outgoing=w_out, gap_bound=float(gap),
        lower_bound=float(lower_rel), search_value=float(val_rel), method=method,
        multiplier=multiplier)


def _pick(runs: list) -> LayerCertificate:
    """The certifying run if any; else the one with a verified improving neuron; else the
    last (MATH.md's covariance multiplier when it was tried)."""
    for pred in (lambda r: r.certified, lambda r: r.improving_neuron is not None):
        for r in runs:
            if pred(r):
                return r
    return runs[-1]


def _refit_rate(ctx: _LayerContext, w_in, z):
    """First-order rate of adding ``sqrt(t) w_in`` (pre-activation ``sqrt(t) z``) to layer
    ``l`` while re-fitting ``W_{l+1}`` as the min-norm weights of the *same* ``Z_{l+1}``:
    ``lam (||w_in||^2 - ||V^T s(z)||^2)`` with ``V = pinv(G_l) Z_{l+1}`` when ``s(z)`` lies in
    ``range(G_l)``; ``lam ||w_in||^2`` (no use) when it does not. Returns the rate and the
    outgoing column of the re-fit to first order (``V^T s(z)``)."""
    problem = ctx.problem
    act, lam = problem.activation, problem.lam
    sn, Un, Vtn, _ = _svd_range(ctx.Hn)
    sz = act(z)
    out = sz - Un @ (Un.T @ sz)
    if float(np.linalg.norm(out)) > 1e-9 * max(float(np.linalg.norm(sz)), 1e-300):
        return lam * float(w_in @ w_in), None
    w_out = (Vtn @ ctx.Wn.T).T @ ((Un.T @ sz) / sn)
    return lam * (float(w_in @ w_in) - float(w_out @ w_out)), w_out


def _verified_step(ctx: _LayerContext, w_in, w_out, rate: float):
    """Smallest ``k`` such that inserting the neuron with size ``t = 2^-k`` (incoming
    ``sqrt(t) w_in``; outgoing ``sqrt(t) w_out``, or -- ``w_out is None`` -- the next layer
    re-fitted as the min-norm weights of the same pre-activations ``Z_{l+1}``) lowers the
    forward-pass loss by at least half the first-order prediction ``t * |rate|`` (Armijo) and
    by more than rounding (``1e-12`` relative), ``k = 0..60``; ``None`` if no such step
    exists: the first-order rate then holds only on a vanishing neighbourhood (later
    pre-activations within rounding of a kink), which no optimiser can use."""
    problem, layer, objective = ctx.problem, ctx.layer, ctx.objective
    act, bias = problem.activation, problem.bias
    Zn = ctx.Zs[layer]
    for k in range(61):
        t = 2.0**-k
        if w_out is None:
            Ws = insert_neuron(ctx.weights, layer, w_in, np.zeros(Zn.shape[1]), math.sqrt(t),
                               bias)
            Hn = problem.with_input(act(forward(problem.X, Ws[:layer], act, bias)[-1]))
            Ws[layer] = np.linalg.lstsq(Hn, Zn, rcond=FACTOR_RTOL)[0].T
        else:
            Ws = insert_neuron(ctx.weights, layer, w_in, w_out, math.sqrt(t), bias)
        Zs = forward(problem.X, Ws, act, bias)
        val = problem.loss.value(Zs[-1], problem.Y) + problem.lam * sum(
            float(np.sum(W**2)) for W in Ws)
        if (val <= objective + 0.5 * t * rate
                and val < objective - 1e-12 * max(abs(objective), 1e-300)):
            return k
    return None


def _svd_range(H: np.ndarray, rtol: float = FACTOR_RTOL):
    """``(sigma, U, V^T, dropped)`` of ``H`` on its numerical range (singular values above
    ``rtol`` times the largest); ``dropped`` is the largest singular value left out."""
    if H.size == 0:
        return np.zeros(0), np.zeros((H.shape[0], 0)), np.zeros((0, H.shape[1])), 0.0
    U, s, Vt = np.linalg.svd(H, full_matrices=False)
    keep = s > rtol * s[0] if s[0] > 0 else np.zeros_like(s, dtype=bool)
    dropped = float(np.max(s[~keep], initial=0.0)) if s[0] > 0 else 0.0
    return s[keep], U[:, keep], Vt[keep], dropped
