"""Per-layer certificates (MATH.md §3, "Certificates") against independent oracles.

Oracles: closed-form optima of linear networks (soft-thresholded / Schatten-2/L singular
values), the zero-network threshold computed by brute force over the unit circle, the loss of
explicitly modified networks (``conic_dnn.loss_parameters``), dense random sampling of the
sphere, and the global two-layer cone solve.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.certificates.certificate import (
    Certificate,
    LayerCertificate,
    certify,
    dual_cone_margin,
    find_violating_neuron,
)

from .conftest import random_weights

NONLINEAR = ["relu", cd.leaky_relu(0.2), "abs", cd.homogeneous(1.0, -0.5)]


def _id(a):
    return a if isinstance(a, str) else a.name


# --------------------------------------------------------------------------------------------
# helpers (written without the certificate module)
# --------------------------------------------------------------------------------------------
def linear_optimum(X, Y, lam, depth):
    """Global optimum of the depth-L linear network for ``X^T X = I`` (closed form).

    ``M = W_L ... W_1`` minimises ``(1/N)||X M^T - Y||^2 + L lam sum_i m_i^(2/L)`` over its
    singular values ``m_i`` (balanced factorisation): per singular value ``sigma`` of
    ``Y^T X``, depth 2 soft-thresholds at ``lam N``; depth 3 solves ``x^4 - sigma x + N lam = 0``
    for ``x = m^(1/3)`` (or ``x = 0``).
    """
    N = X.shape[0]
    U, sig, Vt = np.linalg.svd(Y.T @ X, full_matrices=False)
    xs = []
    for s in sig:
        if depth == 2:
            xs.append(math.sqrt(max(s - lam * N, 0.0)))
            continue
        cands = [0.0] + [r.real for r in np.roots([1.0, 0.0, 0.0, -s, N * lam])
                         if abs(r.imag) < 1e-12 and r.real > 0]
        h = [(x**3 - s) ** 2 / N + 3 * lam * x * x for x in cands]
        xs.append(cands[int(np.argmin(h))])
    x = np.array(xs)
    keep = x > 0
    x, U, Vt = x[keep], U[:, keep], Vt[keep]
    Ws = [x[:, None] * Vt] + [np.diag(x)] * (depth - 2) + [U * x]
    m = x**depth
    M = (U * m) @ Vt
    value = float(np.sum((X @ M.T - Y) ** 2) / N + depth * lam * np.sum(m ** (2 / depth)))
    return Ws, value


def insert_neuron(problem, weights, layer, incoming, outgoing):
    """A copy of ``weights`` with one more neuron in hidden layer ``layer`` (1-based): row
    ``incoming`` of ``W_layer`` and column ``outgoing`` of ``W_{layer+1}`` (before the bias)."""
    ws = [np.array(W, dtype=float) for W in weights]
    n = ws[layer - 1].shape[0]
    ws[layer - 1] = np.vstack([ws[layer - 1], incoming])
    ws[layer] = np.insert(ws[layer], n, outgoing, axis=1)
    return ws


def ridge_output(problem, W1):
    """Optimal output layer of a depth-2 network with first layer ``W1`` (MSE, ridge)."""
    H = problem.with_input(problem.activation(problem.H0 @ W1.T))
    N = problem.N
    return np.linalg.solve(H.T @ H + N * problem.lam * np.eye(H.shape[1]), H.T @ problem.Y).T


def f_value(A, B, act, z):
    s = act(z)
    return float(z @ A @ z + s @ B @ s)


# --------------------------------------------------------------------------------------------
# 1. known optima are certified
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("shape", [(6, 3, 2), (5, 5, 3), (8, 2, 1)])
def test_linear_closed_form_optimum_is_certified(depth, shape, rng):
    N, d, k = shape
    X = np.linalg.qr(rng.normal(size=(N, d)))[0]
    Y = rng.normal(size=(N, k))
    lam = 0.02
    Ws, value = linear_optimum(X, Y, lam, depth)
    p = cd.Problem(X, Y, depth, lam, activation="identity")
    cert = certify(p, Ws)
    assert cert.objective == pytest.approx(value, rel=1e-10)
    assert cert.certified, str(cert)
    assert len(cert.layers) == depth - 1
    for lc in cert.layers:
        assert lc.exact and lc.certified
        assert lc.complementarity < 1e-9 and lc.stationarity < 1e-9
        assert lc.min_margin > -1e-9
        assert lc.improving_neuron is None and lc.decrease == 0.0
        assert lc.gap_bound < 1e-10 * value


def test_unbalanced_linear_optimum_is_not_certified(rng):
    """Rescaling W1 by c and W2 by 1/c keeps the function but not the optimum. certify
    re-fits the output layer to its optimum for the scaled W1 (the ridge solution: stationarity
    0), and the imbalance remains in the margin and complementarity."""
    X = np.linalg.qr(rng.normal(size=(6, 3)))[0]
    Y = rng.normal(size=(6, 2))
    (W1, W2), _ = linear_optimum(X, Y, 0.02, 2)
    p = cd.Problem(X, Y, 2, 0.02, activation="identity")
    c = 1.5
    cert = certify(p, [c * W1, W2 / c])
    lc = cert.layers[0]
    assert not cert.certified
    assert lc.stationarity <= 1e-12
    assert max(lc.complementarity, -lc.min_margin) > 1e-2
    # the re-fitted output never raises the loss, and the balanced optimum stays below it
    assert cert.objective <= cd.loss_parameters(p, [c * W1, W2 / c]) * (1 + 1e-12)
    assert cert.objective > certify(p, [W1, W2]).objective


@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_zero_network_threshold(activation, rng):
    """The zero network is a global optimum of a depth-2 problem iff
    ``lam >= lam* = max_{||w||=1} ||Y^T s(X w)|| / N``; lam* by brute force over the circle."""
    N = 6
    X, Y = rng.normal(size=(N, 2)), rng.normal(size=(N, 2))
    act = cd.get_activation(activation)
    kinks = np.arctan2(-X[:, 0], X[:, 1])  # w perpendicular to a data point: max may sit there
    theta = np.concatenate([np.linspace(0.0, 2 * np.pi, 200_001), kinks, kinks + np.pi])
    Wc = np.stack([np.cos(theta), np.sin(theta)])
    lam_star = np.max(np.linalg.norm(Y.T @ act(X @ Wc), axis=0)) / N
    zero = [np.zeros((1, 2)), np.zeros((2, 1))]
    above = certify(cd.Problem(X, Y, 2, 1.01 * lam_star, activation=activation), zero)
    below = certify(cd.Problem(X, Y, 2, 0.99 * lam_star, activation=activation), zero)
    assert above.certified and above.layers[0].exact
    assert not below.certified and below.layers[0].improving_neuron is not None
    # the margin is 1 - (lam*/lam)^2 exactly (unit incoming weights)
    assert above.layers[0].min_margin == pytest.approx(1 - 1 / 1.01**2, abs=1e-6)
    assert below.layers[0].min_margin == pytest.approx(1 - 1 / 0.99**2, abs=1e-6)


# --------------------------------------------------------------------------------------------
# 2. non-optimal networks: the improving neuron really improves
# --------------------------------------------------------------------------------------------
CASES = [(2, 0.0, "relu"), (2, 0.5, "relu"), (2, 0.0, "abs"), (3, 0.0, "relu"),
         (3, 0.5, cd.leaky_relu(0.1))]


@pytest.mark.parametrize("depth,bias,activation", CASES,
                         ids=[f"L{c[0]}-b{c[1]}-{_id(c[2])}" for c in CASES])
@pytest.mark.parametrize("d", [2, 5])
def test_improving_neuron_decreases_loss(depth, bias, activation, d, rng):
    N = 4
    X, Y = rng.normal(size=(N, d)), rng.normal(size=(N, 2))
    p = cd.Problem(X, Y, depth, 0.05, activation=activation, bias=bias)
    for _ in range(10):  # a narrow random ReLU network can be dead (stuck): draw again
        W = random_weights(rng, d, (2,) * (depth - 1), 2, bias)
        if depth == 2:
            W[1] = ridge_output(p, W[0])  # optimal output layer
        cert = certify(p, W)
        assert not cert.certified
        found = [lc for lc in cert.layers if lc.improving_neuron is not None]
        for lc in cert.layers:  # exact test (N = 4): a neuron is reported iff violated
            assert (lc.improving_neuron is None) == (lc.min_margin >= -cert.tol) \
                or "kink" in lc.method
        if found:
            break
    assert found, str(cert)
    Wm = cert.network.weights
    L0 = cd.loss_parameters(p, Wm)
    assert L0 == pytest.approx(cert.objective, rel=1e-12)
    assert L0 <= cd.loss_parameters(p, W) * (1 + 1e-12)  # min-norm never hurts
    Hs = [p.H0] + [p.with_input(p.activation(Z)) for Z in cd.activations_from_weights(p, Wm)[:-1]]
    for lc in found:
        l, z = lc.layer, lc.improving_neuron
        H = Hs[l - 1]
        assert lc.exact and lc.decrease < 0 and lc.min_margin < 0
        assert np.linalg.norm(z) == pytest.approx(1.0)
        P = H @ np.linalg.pinv(H)
        assert np.linalg.norm(z - P @ z) < 1e-10  # z in range(H_{l-1})
        # realise t * (z z^T, s(z) s(z)^T): min-norm incoming row pinv(H) z, outgoing column
        # for the unit z (the certificate's, rescaled: it is 1-homogeneous in z)
        zr = H @ lc.incoming
        out = lc.outgoing / np.linalg.norm(zr)
        np.testing.assert_allclose(zr / np.linalg.norm(zr), z, atol=1e-10)
        rates = []
        for t in (1e-4, 1e-6):
            Wt = insert_neuron(p, Wm, l, np.sqrt(t) * np.linalg.pinv(H) @ z, np.sqrt(t) * out)
            Lt = cd.loss_parameters(p, Wt)
            assert Lt < L0
            rates.append((Lt - L0) / t)
        assert np.sign(rates[-1]) == np.sign(lc.decrease)
        assert rates[-1] == pytest.approx(lc.decrease, rel=1e-3)
        assert abs(rates[-1] - lc.decrease) <= abs(rates[0] - lc.decrease) \
            + 1e-6 * abs(lc.decrease)  # converging
        if depth == 2:  # re-fitting the whole output layer can only do better
            W1t = np.vstack([Wm[0], np.sqrt(1e-6) * np.linalg.pinv(H) @ z])
            assert cd.loss_parameters(p, [W1t, ridge_output(p, W1t)]) - L0 <= \
                1e-6 * lc.decrease * (1 - 1e-3)


def test_full_rank_layer_same_next_activations(rng):
    """When ``G_l`` has full rank and the output is optimal, the construction of MATH.md works
    as is: add the min-norm row ``sqrt(t) pinv(H_0) z`` and re-fit the output as the
    min-norm fit of the *same* ``Z_2``; the loss decreases at rate ``f(z)``."""
    N, d = 4, 3
    X, Y = rng.normal(size=(N, d)), rng.normal(size=(N, 1))
    p = cd.Problem(X, Y, 2, 0.05, bias=0.5)
    W1 = 0.3 * rng.normal(size=(6, d + 1))  # small: the fit is poor, a new neuron helps
    cert = certify(p, [W1, ridge_output(p, W1)])
    lc = cert.layers[0]
    assert lc.stationarity < 1e-9 and lc.improving_neuron is not None
    Wm = cert.network.weights
    Z2 = cert.network.predict(X)
    H0 = p.H0
    assert np.linalg.matrix_rank(p.with_input(np.maximum(H0 @ Wm[0].T, 0))) == N
    for t in (1e-5, 1e-7):
        W1t = np.vstack([Wm[0], np.sqrt(t) * np.linalg.pinv(H0) @ lc.improving_neuron])
        H1 = p.with_input(np.maximum(H0 @ W1t.T, 0))
        W2t = (np.linalg.pinv(H1) @ Z2).T
        rate = (cd.loss_parameters(p, [W1t, W2t]) - cert.objective) / t
    assert rate < 0 and rate == pytest.approx(lc.decrease, rel=1e-3)


def test_rank_deficient_layer_needs_outgoing_weights(rng):
    """With ``s(z)`` outside ``range(G_l)`` the same ``Z_{l+1}`` cannot use the new neuron (it
    only adds its cost): the outgoing weights are what make the decrease real."""
    N, d = 4, 2
    X, Y = rng.normal(size=(N, d)), rng.normal(size=(N, 1))
    p = cd.Problem(X, Y, 2, 0.05)
    W1 = rng.normal(size=(1, d))
    cert = certify(p, [W1, ridge_output(p, W1)])
    lc = cert.layers[0]
    z = lc.improving_neuron
    Wm = cert.network.weights
    H1 = np.maximum(X @ Wm[0].T, 0)
    sz = np.maximum(z, 0)
    assert np.linalg.norm(sz - H1 @ np.linalg.pinv(H1) @ sz) > 1e-3  # outside range(G_1)
    t = 1e-6
    W1t = np.vstack([Wm[0], np.sqrt(t) * np.linalg.pinv(X) @ z])
    H1t = np.maximum(X @ W1t.T, 0)
    same = (np.linalg.pinv(H1t) @ cert.network.predict(X)).T
    assert cd.loss_parameters(p, [W1t, same]) > cert.objective
    out = lc.outgoing / np.linalg.norm(X @ lc.incoming)
    Wt = insert_neuron(p, Wm, 1, np.sqrt(t) * np.linalg.pinv(X) @ z, np.sqrt(t) * out)
    assert cd.loss_parameters(p, Wt) < cert.objective


# --------------------------------------------------------------------------------------------
# 3. the tests of the dual cone agree with each other and with sampling
# --------------------------------------------------------------------------------------------
def random_pair(rng, act, Q, certified):
    """``A`` positive definite, ``B = -factor V V^T`` with a known outcome: ``factor`` half the
    bound ``lambda_min(A) / (max(a,b)^2 ||V||^2)`` (then ``f > 0`` everywhere), or such that
    ``f(z0) = -z0^T A z0 < 0`` at a point ``z0`` of ``range(Q)``."""
    N = Q.shape[0]
    H = rng.normal(size=(N, N))
    A = np.linalg.inv(H @ H.T + 0.1 * np.eye(N))
    V = A @ rng.normal(size=(N, 2))
    if certified:
        s2 = max(act.a**2, act.b**2)
        factor = 0.5 * np.linalg.eigvalsh(A)[0] / (s2 * np.linalg.norm(V, 2) ** 2)
    else:
        z0 = Q @ rng.normal(size=Q.shape[1])
        z0 *= np.sign(z0[np.argmax(np.abs(z0))])  # largest entry positive: s(z0) != 0
        factor = 2.0 * (z0 @ A @ z0) / np.sum((V.T @ act(z0)) ** 2)
    return A, -factor * (V @ V.T)


def sampled_min(A, B, act, Q, rng, n=20_000):
    Z = Q @ rng.normal(size=(Q.shape[1], n))
    Z /= np.linalg.norm(Z, axis=0)
    S = act(Z)
    return float(np.min(np.sum(Z * (A @ Z), axis=0) + np.sum(S * (B @ S), axis=0)))


@pytest.mark.parametrize("activation", NONLINEAR, ids=_id)
def test_sdp_and_search_agree_for_small_N(activation, rng):
    act = cd.get_activation(activation)
    for trial in range(8):
        N = 2 + trial % 3
        restrict = trial >= 4 and N > 2
        Q = np.linalg.qr(rng.normal(size=(N, N - 1)))[0] if restrict else np.eye(N)
        expected = trial % 2 == 0
        A, B = random_pair(rng, act, Q, expected)
        scale = np.linalg.norm(A, 2) + np.linalg.norm(B, 2)
        m = dual_cone_margin(A, B, act, Q=Q if restrict else None)
        z, v = find_violating_neuron(A, B, act, Q=Q if restrict else None)
        assert np.linalg.norm(z) == pytest.approx(1.0)
        assert np.linalg.norm(z - Q @ (Q.T @ z)) < 1e-10
        assert v == pytest.approx(f_value(A, B, act, z), abs=1e-12 * scale)
        # both certify, or both find the violation; exact for N <= 4: the same minimum
        assert (m >= 0) == (v >= 0) == expected
        assert v == pytest.approx(m, abs=1e-6 * scale)
        # the SDP value is a valid lower bound (sampling oracle)
        assert sampled_min(A, B, act, Q, rng) >= m - 1e-7 * scale


def test_sufficient_tests_for_larger_N(rng):
    """N = 6: lifted <= per-pattern <= exact minimum <= any sampled value."""
    act = cd.get_activation("relu")
    N = 6
    A, B = random_pair(rng, act, np.eye(N), False)
    scale = np.linalg.norm(A, 2) + np.linalg.norm(B, 2)
    lifted = dual_cone_margin(A, B, act, method="lifted")
    pattern = dual_cone_margin(A, B, act, method="patterns")
    z, v = find_violating_neuron(A, B, act, n_search=5)
    assert lifted <= pattern + 1e-7 * scale
    assert pattern <= v + 1e-7 * scale
    assert v <= sampled_min(A, B, act, np.eye(N), rng) + 1e-12


# --------------------------------------------------------------------------------------------
# 4. global two-layer optima (the cone solve) are certified
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("activation", ["relu", "abs", cd.leaky_relu(0.1)], ids=_id)
def test_two_layer_global_optimum_is_certified(activation, rng):
    two_layer = pytest.importorskip("conic_dnn.two_layer.cone_program")
    X, Y = rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    p = cd.Problem(X, Y, 2, 0.05, activation=activation)
    res = two_layer.solve_two_layer(p)
    assert res.certified
    # first-order quantities are ~sqrt(loss accuracy ~1e-8): tol 1e-3
    cert = certify(p, res.network, tol=1e-3)
    assert cert.certified and cert.layers[0].exact, str(cert)
    # first-order residuals scale like the square root of the loss gap (observed gaps
    # 1e-9..3e-8 give gap_bound 1e-10..3e-5): bound it by sqrt(relative gap), never looser
    # than 1e-4
    rel_gap = max(res.gap / res.objective, 1e-12)
    assert cert.layers[0].gap_bound < min(np.sqrt(rel_gap), 1e-4)


def _depth_two_instances():
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=6, noise=0.1, random_state=0)
    yield "moons6-bias1", cd.Problem(X, (2.0 * y - 1)[:, None], 2, 1e-2, bias=1.0)
    rng = np.random.default_rng(0)
    for act in ("relu", "leaky_relu", "abs"):
        for bias in (0.0, 0.5):
            X, Y = rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
            yield f"{act}-bias{bias}", cd.Problem(X, Y, 2, 0.05, activation=act, bias=bias)
    yield "relu-N5-k2", cd.Problem(rng.normal(size=(5, 3)), rng.normal(size=(5, 2)), 2, 0.02)


@pytest.mark.slow
@pytest.mark.blas_sensitive
def test_certify_with_defaults_certifies_every_certified_solve():
    """One convention (certificate.py, "Tolerances"): what solve certifies at its default
    relative gap GAP_TOL, certify certifies with its defaults (first-order residuals at
    CERT_TOL = sqrt(GAP_TOL)). Before: moons N = 6, bias 1 (solve's gap 3.5e-8) was rejected
    with margin -4.3e-5 at tol 1e-6; under OPENBLAS_CORETYPE=Haswell its network (gap 1e-7)
    had margin -2.4e-3 until certify re-fitted the output layer (then residuals 1.6e-5).
    Oracle for the certificate's own bound: solve's network
    is feasible, so ``objective - gap_bound`` (a lower bound on the global optimum) cannot
    exceed its loss."""
    from conic_dnn.certificates.certificate import CERT_TOL, GAP_TOL

    assert CERT_TOL == pytest.approx(math.sqrt(GAP_TOL))
    n_certified = 0
    for name, p in _depth_two_instances():
        res = cd.solve(p)
        if not res.certified:
            continue
        n_certified += 1
        cert = certify(p, res.network)
        assert cert.tol == CERT_TOL
        assert cert.certified, f"{name}\n{cert}"
        (layer,) = cert.layers
        assert layer.min_margin >= 0  # scaled into the dual cone when within tol of 0
        assert cert.objective - layer.gap_bound <= res.objective * (1 + 1e-9), name
        assert cert.relative_gap <= CERT_TOL, name  # first order: ~tol, not ~tol^2
        assert "certified global optimum" in str(cert)  # depth 2: global, not "layerwise"
    assert n_certified >= 6


def test_margin_within_tol_is_scaled_into_the_dual_cone(rng):
    """A margin m in [-tol, 0) is turned into a proof, not waved through: V / sqrt(1 - m) is
    in the dual cone (rho is homogeneous). A perturbed optimum (W_1 entries * (1 + 1e-4 g))
    has raw margin ~ -6e-4: not certified at tol 1e-12 (and never shown "yes"); at tol 1e-2
    certified with the scaled multiplier, margin >= 0. Oracle for the scaled pair: dense
    sampling of unit neurons finds no f < 0 (to rounding)."""
    X, Y = rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    p = cd.Problem(X, Y, 2, 0.05)
    W1, W2 = cd.solve(p).network.weights
    W1 = W1 * (1 + 1e-4 * np.random.default_rng(1).normal(size=W1.shape))
    raw = certify(p, [W1, W2], tol=1e-12)
    assert raw.layers[0].min_margin < -1e-5 and not raw.certified
    assert str(raw).splitlines()[3].split("|")[5].strip() == "no"
    cert = certify(p, [W1, W2], tol=1e-2)
    (layer,) = cert.layers
    assert layer.certified and layer.min_margin >= 0 and "scaled by" in layer.method
    assert sampled_min(layer.A, layer.B, p.activation, X, rng) >= -1e-12 * p.lam
    assert cert.objective - layer.gap_bound <= cd.solve(p).objective * (1 + 1e-9)


# --------------------------------------------------------------------------------------------
# 5. report and larger instances
# --------------------------------------------------------------------------------------------
def test_report_and_serialisation(rng):
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    p = cd.Problem(X, Y, 3, 0.05, bias=0.3)
    W = random_weights(rng, 3, (4, 3), 2, 0.3)
    cert = certify(p, cd.Network(tuple(W), "relu", 0.3))
    same = certify(p, W)
    assert isinstance(cert, Certificate) and all(isinstance(c, LayerCertificate)
                                                 for c in cert.layers)
    assert cert.objective == pytest.approx(same.objective, rel=1e-14)
    assert cert.objective == pytest.approx(cd.loss_parameters(p, cert.network), rel=1e-12)
    assert cert.objective <= cd.loss_parameters(p, W) * (1 + 1e-12)
    text = str(cert)
    for word in ("layer", "margin", "complementarity", "certified", "exact", "decrease",
                 "multiplier"):
        assert word in text
    table, legend = text.split("\n\n")
    assert len(table.splitlines()) == 3 + 2
    assert legend.startswith("legend:") and "rel. gap" in legend
    for c, row in zip(cert.layers, table.splitlines()[3:]):
        shown_yes = row.split("|")[5].strip() == "yes"
        assert shown_yes == c.certified and (not shown_yes or c.min_margin >= 0)
    assert "layerwise optimal" in text or "NOT certified" in text
    d = json.loads(json.dumps(cert.to_dict()))
    assert d["certified"] == cert.certified and len(d["layers"]) == 2
    assert np.array(d["layers"][0]["A"]).shape == (5, 5)
    assert {c["multiplier"] for c in d["layers"]} <= {"backprop", "covariance", "optimised"}
    assert d["layers"][1]["multiplier"] == "backprop"  # the last hidden layer: joint with W_L
    assert json.loads(cert.to_json())["objective"] == pytest.approx(cert.objective)


def test_larger_N_uses_sufficient_tests(rng):
    N = 10  # beyond exhaustive enumeration: lifted SDP + local search
    X, Y = rng.normal(size=(N, 3)), rng.normal(size=(N, 2))
    p = cd.Problem(X, Y, 2, 0.01, bias=0.3)
    W1 = rng.normal(size=(3, 4))
    cert = certify(p, [W1, ridge_output(p, W1)], n_search=5)
    lc = cert.layers[0]
    assert not lc.exact and "lifted" in lc.method
    assert lc.lower_bound <= lc.search_value + 1e-6 * abs(lc.search_value)  # SDP accuracy
    assert lc.improving_neuron is not None
    t = 1e-7
    out = lc.outgoing / np.linalg.norm(p.H0 @ lc.incoming)
    Wt = insert_neuron(p, cert.network.weights, 1,
                       np.sqrt(t) * np.linalg.pinv(p.H0) @ lc.improving_neuron, np.sqrt(t) * out)
    assert (cd.loss_parameters(p, Wt) - cert.objective) / t == pytest.approx(lc.decrease,
                                                                             rel=1e-3)


# --------------------------------------------------------------------------------------------
# 6. argument validation
# --------------------------------------------------------------------------------------------
@pytest.fixture
def small(rng):
    X, Y = rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    return cd.Problem(X, Y, 2, 0.1), random_weights(rng, 2, (3,), 1)


def test_certify_validation(small):
    p, W = small
    with pytest.raises(TypeError, match="problem: expected a conic_dnn.Problem"):
        certify("p", W)
    with pytest.raises(TypeError, match="network: expected a conic_dnn.Network"):
        certify(p, np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"network\[0\]: expected 2 columns"):
        certify(p, [np.zeros((3, 5)), W[1]])
    with pytest.raises(ValueError, match="network: expected 2 weight matrices"):
        certify(p, W[:1])
    with pytest.raises(ValueError, match="network: expected the problem's activation"):
        certify(p, cd.Network(tuple(W), "abs"))
    with pytest.raises(ValueError, match="network: expected bias"):
        certify(p.replace(bias=0.5), cd.Network(tuple(W), "relu"))
    with pytest.raises(ValueError, match="activation: certify needs a positively homogeneous"):
        certify(p.replace(activation=np.tanh), W)
    with pytest.raises(ValueError, match="tol: expected a finite number > 0, got 0"):
        certify(p, W, tol=0)
    with pytest.raises(TypeError, match="tol: expected a positive number, got str"):
        certify(p, W, tol="1e-6")
    with pytest.raises(TypeError, match="n_search: expected an integer >= 0, got float"):
        certify(p, W, n_search=2.5)
    with pytest.raises(ValueError, match="n_search: expected an integer >= 0, got -1"):
        certify(p, W, n_search=-1)
    with pytest.raises(TypeError, match="seed: expected an integer"):
        certify(p, W, seed="a")


def test_building_block_validation():
    A, B = np.eye(3), -0.5 * np.eye(3)
    with pytest.raises(ValueError, match=r"A: expected a non-empty square 2-D array, got shape"):
        dual_cone_margin(np.ones((2, 3)), B, "relu")
    with pytest.raises(ValueError, match=r"B: expected shape \(3, 3\), got \(2, 2\)"):
        dual_cone_margin(A, np.eye(2), "relu")
    with pytest.raises(TypeError, match="A: expected a square numeric array, got str"):
        find_violating_neuron("A", B, "relu")
    with pytest.raises(ValueError, match="A: expected finite values"):
        dual_cone_margin(np.full((3, 3), np.nan), B, "relu")
    with pytest.raises(ValueError, match="activation: expected a positively homogeneous"):
        dual_cone_margin(A, B, np.tanh)
    with pytest.raises(ValueError, match="activation: expected one of"):
        dual_cone_margin(A, B, "gelu")
    with pytest.raises(ValueError, match=r"Q: expected shape \(3, r\), got \(2, 2\)"):
        find_violating_neuron(A, B, "relu", Q=np.eye(2))
    with pytest.raises(ValueError, match="method: expected 'auto', 'patterns' or 'lifted'"):
        dual_cone_margin(A, B, "relu", method="exact")
    with pytest.raises(ValueError, match=r"patterns: expected a non-empty boolean array of "
                                         r"shape \(m, 3\)"):
        dual_cone_margin(A, B, "relu", patterns=np.ones((2, 2), dtype=bool))
    with pytest.raises(ValueError, match=r"starts: expected shape \(3, m\)"):
        find_violating_neuron(A, B, "relu", starts=np.ones((2, 2)))
    with pytest.raises(ValueError, match="max_patterns: expected an integer >= 1, got 0"):
        dual_cone_margin(A, B, "relu", max_patterns=0)
