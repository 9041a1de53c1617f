"""Pricing (conic_dnn.two_layer.pricing): the exact rank-2 maximiser against dense sampling of the
circle including the kink angles."""

from __future__ import annotations

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.two_layer.pricing import price

from .test_column_generation import _problem

ACTS = {"relu": "relu", "leaky": cd.leaky_relu(0.1), "abs": "abs"}


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("N, d, bias", [(7, 2, 0.0), (9, 1, 0.7)])
def test_rank2_pricing_vs_dense_circle(act, N, d, bias):
    """Exact rank-2 rho against dense sampling of the circle of range(H0^T), kinks included."""
    p = _problem(2, N, d, bias, ACTS[act], k=2)
    Lam = np.random.default_rng(7).normal(size=(N, 2))
    rho, cands, method = price(p, Lam)
    assert method == "rank2"
    _, _, Vt = np.linalg.svd(p.H0, full_matrices=False)
    V = Vt[:2].T
    F = p.H0 @ V
    kinks = np.arctan2(F[:, 0], -F[:, 1])
    th = np.concatenate([np.linspace(0, 2 * np.pi, 200_001), kinks, kinks + np.pi])
    U = V @ np.vstack([np.cos(th), np.sin(th)])
    vals = np.linalg.norm(Lam.T @ p.activation(p.H0 @ U), axis=0)
    assert vals.max() <= rho * (1 + 1e-9)
    assert vals.max() >= rho * (1 - 1e-9)
    val, u = cands[0]
    assert np.linalg.norm(u) == pytest.approx(1.0, abs=1e-12)
    assert np.linalg.norm(Lam.T @ p.activation(p.H0 @ u)) == pytest.approx(rho, rel=1e-12)
