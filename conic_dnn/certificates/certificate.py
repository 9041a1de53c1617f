"""Per-layer certificates of layerwise optimality (docs/MATH.md §3, "Certificates").

The layer problem
    Hold every layer but the hidden layer ``l`` (``1 <= l <= L-1``) fixed. In covariance form the
    loss is a function of the layer's pair ``(K_l, G_l)``,

        F(K_l, G_l) = lam * tr(K_l pinv(G_{l-1})) + lam * tr(Y^T pinv(G_l) Y) + const,

    ``Y = Z_{l+1}`` (so ``Y Y^T = K_{l+1}``, or ``Z_L Z_L^T`` for the last hidden layer), over the
    shifted cone ``(K_l, G_l - bias^2 1 1^T) in S_s`` with ``range(K_l) in range(G_{l-1})``.
    It is convex, and adding a neuron ``z`` (``(K, G) += t (z z^T, s(z) s(z)^T)``) is the basic
    move.

The gradient pair
    ``A_l = lam * pinv(G_{l-1})`` and ``B_l = -lam * V V^T``. docs/MATH.md writes
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
      At a stationary point with full-rank ``G_l`` this ``V`` is docs/MATH.md's ``pinv(G_l) Y``.
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

Tolerances (the one convention of the package)
    ``solve`` certifies a depth-2 result when its *relative gap* ``(objective - lower_bound) /
    |objective|`` is ``<= tol``, default ``GAP_TOL = 1e-6``. ``certify`` works from a network
    alone, and what it can test are *first-order* quantities, each relative: a network within
    ``eps`` (relative) of optimal in loss has them at ``~sqrt(eps)``. Its tolerance is
    therefore ``CERT_TOL = sqrt(GAP_TOL) = 1e-3`` (the default of ``certify(tol=)`` and of
    ``conic-dnn certify --tol``), and every network ``solve`` certifies at ``GAP_TOL`` is
    certified by ``certify`` with its defaults (measured on the test instances: residuals
    <= 5e-5). A layer is *certified* when (i) a multiplier is proved in the dual cone: the
    rigorous lower bound ``m`` on ``min f / lam`` is ``>= 0``, or ``-tol <= m < 0`` and ``V`` is
    rescaled by ``1 / sqrt(1 - m)``, which makes it ``>= 0`` (``f / lam = 1 - rho(V)^2`` and
    ``rho`` is homogeneous; the residuals below are those of the rescaled ``V``), so a
    certified layer never shows a negative margin; (ii) no neuron with ``f / lam < -tol`` was
    found; (iii) the complementarity residual ``|<A,K> + <B,G_s>| / (<A,K> + |<B,G_s>|)`` and
    (iv) the stationarity residual ``||W_{l+1} - V^T H_l|| / max(||W_{l+1}||, ||V^T H_l||)``
    are ``<= tol``. A certified layer also carries ``gap_bound``, a rigorous bound on its
    suboptimality in loss units (for depth 2, ``objective - gap_bound`` is a valid lower bound
    on the global optimum; ``Certificate.relative_gap`` reports it relative), which is first
    order too: it is ``~tol`` relative, not ``~tol^2``. The SDP (Clarabel, then SCS, via
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
    ``V``, docs/MATH.md's ``pinv(G_l) Z_{l+1}`` and the ``V`` of the subdifferential
    ``{V : G_l V = Z_{l+1}}`` (stationarity within ``tol / 2``) with the best PSD + NN margin
    (:mod:`conic_dnn.certificates.multiplier`): the first that certifies is reported
    (``LayerCertificate.multiplier``). The back-propagated ``V`` is ambiguous when a later
    pre-activation sits at the kink of ``s``; docs/MATH.md's blows up when ``G_l`` is rank
    deficient up to solver noise; the optimised one is robust to both. Improving neurons
    found with docs/MATH.md's ``V`` are verified by re-fitting ``W_{l+1}`` to the same ``Z_{l+1}``
    (later layers unchanged), with the others by inserting the outgoing weights.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from ..cone.dual_cone import (
    EXACT_MAX_N,
    _check_int,
    _check_seed,
    _check_tol,
    dual_cone_margin,
    find_violating_neuron,
)
from ..core.formulations import layer_inputs, min_norm_weights
from ..core.forward import check_weights, forward
from ..core.network import Network
from ..core.problem import Problem
from ..neurons.pruning import check_matches
from .layer_certificate import (
    RANGE_RTOL,
    LayerCertificate,
    _LayerContext,
    _num,
    _pick,
    _svd_range,
    _test_layer,
)
from .multiplier import certifying_multiplier

__all__ = ["LayerCertificate", "Certificate", "certify", "dual_cone_margin",
           "find_violating_neuron", "EXACT_MAX_N", "GAP_TOL", "CERT_TOL"]

#: Relative gap under which ``solve`` calls a depth-2 result certified (its ``tol`` default).
GAP_TOL = 1e-6
#: Relative tolerance of the first-order residuals of :func:`certify` (module docstring,
#: "Tolerances"): ``sqrt(GAP_TOL)``, what a network at relative gap ``GAP_TOL`` shows.
CERT_TOL = 1e-3

_LEGEND = """\
legend: margin = rigorous lower bound on min f/lam over unit neurons (>= 0: no neuron
  lowers the loss to first order; < 0: a violation, or the value of a neuron found);
  complementarity, stationarity = relative first-order residuals (balanced norms; next
  layer's weights critical); certified = margin >= 0 and both residuals <= tol;
  rel. gap = rigorous bound on the layer's suboptimality / objective (- if not certified);
  exact = the dual-cone test is exact (N <= 4, face enumeration, linear activation);
  decrease = first-order rate of a verified improving neuron (0: none found);
  multiplier = the V tested (scaled into the dual cone when its margin was in [-tol, 0))"""


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
        Regularised loss of the certified network (the input with minimum-norm weights and
        its output layer re-fitted to the optimum for its last hidden layer; never above the
        input's loss).
    network : Network
        That network.
    tol : float
        The relative tolerance used (of first-order residuals, module docstring).
    relative_gap : float
        Property: the rigorous gap bound relative to the objective (``inf`` if not certified).
    """

    layers: tuple
    certified: bool
    objective: float
    network: Network | None = field(default=None, repr=False)
    tol: float = CERT_TOL

    @property
    def relative_gap(self) -> float:
        """Largest certified layer ``gap_bound`` relative to ``|objective|`` (``inf`` unless
        every layer is certified). For depth 2 a bound on the relative gap to the global
        optimum; for deeper networks per layer, with the neighbours fixed."""
        if not self.certified:
            return math.inf
        gaps = [c.gap_bound for c in self.layers]
        return max(gaps, default=0.0) / max(abs(self.objective), 1e-300)

    def __str__(self) -> str:
        if not self.certified:
            status = "NOT certified"
        elif len(self.layers) == 1:
            status = "certified global optimum"  # depth 2: the layer jointly with the output
        else:
            status = "certified layerwise optimal"
        head = (f"{'layer':>5} | {'margin':>10} | {'complementarity':>15} | "
                f"{'stationarity':>12} | {'rel. gap':>9} | {'certified':>9} | {'exact':>5} | "
                f"{'decrease':>10} | multiplier")
        lines = [f"conic_dnn layer certificates ({status}; objective {self.objective:.10g}, "
                 f"tol {self.tol:g})", head, "-" * len(head)]
        obj = max(abs(self.objective), 1e-300)
        for c in self.layers:
            ok = c.certified and c.min_margin >= 0  # never "yes" on a negative margin
            rel = f"{c.gap_bound / obj:>9.1e}" if ok and math.isfinite(c.gap_bound) else \
                f"{'-':>9}"
            lines.append(f"{c.layer:>5} | {c.min_margin:>10.3e} | {c.complementarity:>15.3e} | "
                         f"{c.stationarity:>12.3e} | {rel} | {'yes' if ok else 'no':>9} | "
                         f"{'yes' if c.exact else 'no':>5} | {c.decrease:>10.3e} | "
                         f"{c.multiplier}")
        return "\n".join(lines + ["", _LEGEND])

    def to_dict(self) -> dict:
        """JSON-serialisable dictionary (see :meth:`LayerCertificate.to_dict`)."""
        return {"certified": bool(self.certified), "objective": _num(self.objective),
                "tol": float(self.tol), "relative_gap": _num(self.relative_gap),
                "layers": [c.to_dict() for c in self.layers]}

    def to_json(self, **kwargs) -> str:
        """:meth:`to_dict` as a JSON string (``kwargs`` go to :func:`json.dumps`)."""
        return json.dumps(self.to_dict(), **kwargs)


# --------------------------------------------------------------------------------------------
# certify a network
# --------------------------------------------------------------------------------------------
def _check_network(problem: Problem, network) -> list[np.ndarray]:
    if isinstance(network, Network):
        check_matches(problem, network)  # activation, bias, depth, shapes
        weights = list(network.weights)
    elif isinstance(network, (list, tuple)):
        weights = list(network)
    else:
        raise TypeError(f"network: expected a conic_dnn.Network or a list of weight matrices, "
                        f"got {type(network).__name__}")
    return check_weights(weights, problem.d, problem.k, problem.depth, problem.bias,
                         name="network")


def _refit_output(problem: Problem, Wm: list) -> list:
    """The weights with the output layer replaced by its optimum for the fixed last hidden
    layer, ``argmin_W C(H W^T) + lam ||W||^2`` (convex; closed form for the MSE, L-BFGS from
    the given ``W_L`` otherwise), kept only if the loss does not rise. The certificate of the
    last hidden layer covers the output layer jointly, and its stationarity residual is
    first order in the output layer's suboptimality: measured (moons N = 6, bias 1, Haswell
    kernel) a solve's network at relative gap 1e-7 had stationarity 1.3e-3 and margin
    -2.4e-3; with the re-fitted output layer (loss 5e-9 lower) 1.6e-5 and >= 0."""
    from scipy.optimize import minimize

    act, lam, Y = problem.activation, problem.lam, problem.Y
    H = layer_inputs(problem, forward(problem.X, Wm, act, problem.bias))[-1]
    W = Wm[-1]

    def loss(Wo):
        return problem.loss.value(H @ Wo.T, Y) + lam * float(np.sum(Wo**2))

    if problem.loss.name == "mse":
        N = H.shape[0]
        # (1/N) ||H W^T - Y||^2 + lam ||W||^2: W^T = (H^T H + N lam I)^{-1} H^T Y
        Wn = np.linalg.solve(H.T @ H + N * lam * np.eye(H.shape[1]), H.T @ Y).T
    else:
        def fun(x):
            Wo = x.reshape(W.shape)
            g = problem.loss.gradient(H @ Wo.T, Y).T @ H + 2.0 * lam * Wo
            return loss(Wo), g.ravel()

        res = minimize(fun, W.ravel(), jac=True, method="L-BFGS-B",
                       options={"maxiter": 500, "ftol": 1e-15, "gtol": 1e-12})
        Wn = res.x.reshape(W.shape)
    if not np.all(np.isfinite(Wn)) or loss(Wn) > loss(W):
        return Wm
    return [*Wm[:-1], Wn]


def _backprop(problem: Problem, weights, Zs) -> list[np.ndarray]:
    """``dC(Z_L)/dZ_l`` for ``l = 1..L`` (the weights held fixed)."""
    act = problem.activation
    grads = [None] * len(Zs)
    grads[-1] = problem.loss.gradient(Zs[-1], problem.Y)
    for i in range(len(Zs) - 2, -1, -1):
        n = Zs[i].shape[1]
        grads[i] = (grads[i + 1] @ weights[i + 1][:, :n]) * act.derivative(Zs[i])
    return grads


def certify(problem, network, tol: float = CERT_TOL, n_search: int = 20, seed=0, solver=None,
            max_patterns: int = 128, max_faces: int = 3**8, bounds: bool = True) -> Certificate:
    """Certify (or refute) the layerwise optimality of every hidden layer of a network.

    Works on any network of the problem's shape (trained by SGD, by :func:`conic_dnn.solve`,
    hand-made). First the weights are replaced by the **minimum-norm weights** realising the
    same pre-activations (:func:`conic_dnn.min_norm_weights`) and the output layer by its
    optimum for the fixed last hidden layer (a convex problem; closed form for the MSE): both
    never increase the loss; the certificate is about that network
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
    tol : float, default CERT_TOL = 1e-3
        Relative tolerance of the margin (in units of ``lam``), complementarity and
        stationarity residuals: first-order quantities, so ``sqrt`` of the relative gap
        ``solve`` certifies (``GAP_TOL = 1e-6``); see the module docstring, "Tolerances".
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

    Wm = _refit_output(problem, min_norm_weights(problem, forward(problem.X, weights, act,
                                                                  problem.bias)))
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
        # layer); for l < L-1 also docs/MATH.md's pinv(G_l) Z_{l+1} (next covariance fixed), which
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
