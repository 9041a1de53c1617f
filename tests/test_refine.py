"""Refinement steps (conic_dnn.training.refine): optimal output layer, neuron balancing.

Oracles: the forward pass (predictions unchanged), the normal equations of ridge regression,
and the per-neuron minimum of ``alpha ||w||^2 + ||v||^2 / alpha`` (AM-GM).
"""

from __future__ import annotations

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.training.refine import balance, output_weights, rebalance

from .conftest import random_weights


@pytest.mark.parametrize("bias", [0.0, 0.7])
def test_balance_keeps_predictions_and_equalises_norms(activation, bias, rng):
    N, d, k = 6, 3, 2
    X, Y = rng.normal(size=(N, d)), rng.normal(size=(N, k))
    p = cd.Problem(X, Y, 4, 0.05, activation=activation, bias=bias)
    Ws = random_weights(rng, d, [5, 7, 4], k, bias)
    Ws[1] *= 3.0  # unbalanced on purpose
    net = cd.Network(tuple(Ws), p.activation, bias)
    bal = balance(net)
    np.testing.assert_allclose(bal.predict(X), net.predict(X), rtol=1e-12, atol=1e-12)
    # the last rescaled layer is balanced exactly (earlier ones change again afterwards)
    n = bal.weights[-2].shape[0]
    np.testing.assert_allclose(np.linalg.norm(bal.weights[-2], axis=1),
                               np.linalg.norm(bal.weights[-1][:, :n], axis=0), rtol=1e-12)
    # AM-GM: each neuron's cost alpha a^2 + b^2 / alpha >= 2 a b, equality when balanced
    reg = lambda W: sum(float(np.sum(w**2)) for w in W)  # noqa: E731
    assert reg(bal.weights) < reg(net.weights)
    assert bal.loss(p) < net.loss(p)


def test_rebalance_is_monotone_and_reaches_balance(rng):
    N, d = 5, 2
    X, Y = rng.normal(size=(N, d)), rng.normal(size=(N, 1))
    p = cd.Problem(X, Y, 3, 0.02)
    net = cd.Network(tuple(random_weights(rng, d, [6, 6], 1)), p.activation, 0.0)
    out = rebalance(p, net, max_iter=2000, rtol=0.0)
    assert out.loss(p) <= net.loss(p)
    W = out.weights
    for l in range(2):  # balanced layer norms at the fixed point (1e-6 relative)
        assert np.sum(W[l] ** 2) == pytest.approx(np.sum(W[l + 1] ** 2), rel=1e-6)
    # the output layer is the ridge solution for its input (normal equations)
    H = np.maximum(np.maximum(X @ W[0].T, 0) @ W[1].T, 0)
    np.testing.assert_allclose(W[2].T, np.linalg.solve(H.T @ H + N * p.lam * np.eye(H.shape[1]),
                                                       H.T @ Y), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(output_weights(p, H), W[2], rtol=1e-9, atol=1e-12)
