"""One hidden layer's certificate for one multiplier ``V``: the dual-cone tests, complementarity,
stationarity and the verified improving neuron (the engine of :func:`conic_dnn.certify`; the
mathematics is in :mod:`conic_dnn.certificates.certificate`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..cone.dual_cone import _search_only, _test
from ..core.formulations import layer_inputs
from ..core.forward import forward, insert_neuron
from ..core.linalg import FACTOR_RTOL, sym
from ..core.problem import Problem

__all__ = ["LayerCertificate", "RANGE_RTOL"]

RANGE_RTOL = 1e-5
"""Singular values of ``H_{l-1}`` below this (relative) are left out of the dual-cone test;
the bound is lowered rigorously to cover them (:mod:`conic_dnn.certificates.certificate`,
"Tolerances")."""


# --------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class LayerCertificate:
    """The certificate of one hidden layer (the mathematics: :mod:`.certificate`).

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



def _num(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


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
    dual_ok = math.isfinite(lower_rel) and lower_rel >= -tol and not violated
    if dual_ok and lower_rel < 0:
        # within tol of the dual cone: the rigorous bound rho(V)^2 <= 1 - lower_rel (rho is
        # homogeneous in V) makes alpha V, alpha^2 = 1 / (1 - lower_rel), dual feasible; the
        # certificate is stated for that multiplier (margin >= 0, its own residuals)
        alpha = (1.0 - 2.0**-50) / math.sqrt(1.0 - lower_rel)
        V = alpha * V
        B = alpha**2 * B
        kB = alpha**2 * kB
        comp = abs(kA + kB) / (kA + abs(kB)) if kA + abs(kB) > 0 else 0.0
        VH = alpha * VH
        stat_abs = float(np.sum((ctx.Wn - VH) ** 2))
        nW = max(float(np.linalg.norm(ctx.Wn)), float(np.linalg.norm(VH)))
        stat = math.sqrt(stat_abs) / nW if nW > 0 else 0.0
        lower_rel = max(0.0, 1.0 - alpha**2 * (1.0 - lower_rel))
        val_rel = 1.0 - alpha**2 * (1.0 - val_rel)
        method += f" (scaled by {alpha:.9f} into the dual cone)"
    margin = val_rel if violated else lower_rel
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
    last (docs/MATH.md's covariance multiplier when it was tried)."""
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
