"""The certifying-multiplier SDP (conic_dnn.certificates.multiplier) against independent oracles.

Oracles: the fixed-multiplier dual-cone SDP (a second formulation, without the Schur
complement), and dense sampling of the unit circle of incoming weights (``d = 2``: the
minimum of ``f / lam`` over 400,001 directions, exact to ~1e-9 for these instances).
"""

from __future__ import annotations

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.certificates.multiplier import certifying_multiplier
from conic_dnn.cone.dual_cone import _margin


def circle_min(X, V, act):
    """``min over unit w in R^2 of 1 - ||V^T s(X w)||^2 / ||w||^2`` by dense sampling."""
    kinks = np.arctan2(-X[:, 0], X[:, 1])  # w perpendicular to a data point: f has a kink
    th = np.concatenate([np.linspace(0.0, 2 * np.pi, 400_001), kinks, kinks + np.pi])
    Wd = np.vstack([np.cos(th), np.sin(th)])
    S = act(X @ Wd)
    return float(np.min(1.0 - np.sum((V.T @ S) ** 2, axis=0)))


def layer_setup(rng, act, width1, width2, scale=1.0):
    """Layer 1 of a depth-3 network on ``N = 4`` points in ``d = 2``: ``Qb = X`` (incoming
    weights are coordinates), the next layer's input ``H_1`` and weights ``W_2``."""
    N, d = 4, 2
    X = np.linalg.qr(rng.normal(size=(N, d)))[0] * np.array([1.5, 0.7])
    while True:  # generic: H_1 of full rank min(width1, N)
        W1 = rng.normal(size=(width1, d))
        H1 = act(X @ W1.T)
        if np.linalg.matrix_rank(H1) == min(width1, N):
            break
    W2 = scale * rng.normal(size=(width2, width1)) / np.sqrt(width1)
    return X, H1, W2 @ np.linalg.pinv(H1) @ H1  # min-norm: rows in the row space of H_1


@pytest.mark.parametrize("activation", ["relu", "abs", cd.leaky_relu(0.2)],
                         ids=lambda a: a if isinstance(a, str) else a.name)
def test_full_rank_next_layer_reduces_to_mathmd_multiplier(activation, rng):
    """With ``G_l`` of full rank and no stationarity slack, ``V`` is forced to MATH.md's
    ``pinv(G_l) Z_{l+1}`` and the margin equals the fixed-``V`` SDP (second formulation)."""
    act = cd.get_activation(activation)
    X, H1, W2 = layer_setup(rng, act, 6, 3, scale=0.5)
    assert np.linalg.matrix_rank(H1) == 4
    V, margin = certifying_multiplier(act, X, H1, W2, delta=1e-10 * np.linalg.norm(W2))
    V_cov = np.linalg.pinv(H1.T) @ W2.T
    np.testing.assert_allclose(V, V_cov, atol=1e-5 * np.abs(V_cov).max())
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    A = (U / s**2) @ U.T
    ref = _margin(A, -V_cov @ V_cov.T, act, X)[0]  # per unit incoming weight, like ours
    # 1e-5: the interior-point solve of the near-equality cone ||W - V^T H|| <= 1e-10 ||W||
    # is accurate to ~1e-6 in the margin (observed 1.2e-6 for abs); margins are O(1) here.
    # The sampled minimum includes the kink directions, where the minimum may sit.
    assert margin == pytest.approx(ref, abs=1e-5)
    assert margin == pytest.approx(circle_min(X, V_cov, act), abs=1e-5)


@pytest.mark.parametrize("activation", ["relu", "abs", cd.leaky_relu(0.2)],
                         ids=lambda a: a if isinstance(a, str) else a.name)
def test_rank_deficient_next_layer(activation, rng):
    """``G_l`` of rank 2 (< N = 4): the optimised ``V`` meets the stationarity bound, its margin
    is the sampled minimum of ``f / lam`` for that ``V``, and it is at least the margin of
    MATH.md's ``pinv(G_l) Z_{l+1}`` (which is feasible: zero residual)."""
    act = cd.get_activation(activation)
    X, H1, W2 = layer_setup(rng, act, 2, 3, scale=2.0)
    assert np.linalg.matrix_rank(H1) == 2
    delta = 1e-3 * np.linalg.norm(W2)
    V, margin = certifying_multiplier(act, X, H1, W2, delta=delta)
    assert V.shape == (4, 3)
    assert np.linalg.norm(W2 - V.T @ H1) <= delta * (1 + 1e-5)  # solver feasibility ~1e-8
    assert margin == pytest.approx(circle_min(X, V, act), abs=1e-5)
    V_cov = np.linalg.pinv(H1.T) @ W2.T
    assert margin >= circle_min(X, V_cov, act) - 1e-7


def test_none_when_too_many_patterns(rng):
    act = cd.get_activation("relu")
    X, H1, W2 = layer_setup(rng, act, 3, 2)
    V, margin = certifying_multiplier(act, np.eye(4), H1, W2, 1e-3, max_patterns=4)
    assert V is None and np.isnan(margin)
