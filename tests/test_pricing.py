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


def _sphere(r, n, rng):
    E = rng.normal(size=(r, n))
    return E / np.linalg.norm(E, axis=0)


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("N, d, bias", [(9, 3, 0.0), (8, 3, 1.0), (7, 4, 0.0)])
def test_cell_pricing_k1_vs_dense_sphere(act, N, d, bias):
    """One output, rank 3 / 4: the cell pricing's rho is an upper bound on the value at 200k
    random unit directions AND at the returned maximiser, which attains it (1e-9): exact."""
    p = _problem(3, N, d, bias, ACTS[act], k=1)
    Lam = np.random.default_rng(8).normal(size=(N, 1))
    rho, cands, method = price(p, Lam, max_patterns=10_000)
    assert method == "cells"
    V = np.linalg.svd(p.H0, full_matrices=False)[2][: np.linalg.matrix_rank(p.H0)].T
    U = V @ _sphere(V.shape[1], 200_000, np.random.default_rng(9))
    vals = np.abs(Lam[:, 0] @ p.activation(p.H0 @ U))
    assert vals.max() <= rho * (1 + 1e-12)
    val, u = cands[0]
    assert np.linalg.norm(u) == pytest.approx(1.0, abs=1e-12)
    assert abs(Lam[:, 0] @ p.activation(p.H0 @ u)) == pytest.approx(val, rel=1e-12)
    assert val == pytest.approx(rho, rel=1e-9)
    # sampling cannot beat it, and comes close (the maximum is a real direction)
    assert vals.max() >= rho * (1 - 0.05)


def test_cell_patterns_cover_the_arrangement():
    """Generic data: exactly max_regions(N, r) cells; every sign pattern of a random direction
    is one of them (coverage, which exactness needs); degenerate data (repeated and parallel
    rows) still covered."""
    from conic_dnn.cone.patterns import max_regions
    from conic_dnn.two_layer.cells import cell_patterns

    rng = np.random.default_rng(1)
    for N, r in [(10, 3), (9, 4), (6, 5)]:
        F = rng.normal(size=(N, r))
        P = cell_patterns(F)
        assert len(P) == max_regions(N, r)
        seen = {row.tobytes() for row in P}
        S = (F @ _sphere(r, 20_000, rng)).T > 0
        assert all(row.tobytes() in seen for row in S)
    F = rng.normal(size=(6, 3))
    F = np.vstack([F, 2 * F[:2], -F[2:3], np.zeros((1, 3))])  # parallel, opposite, zero rows
    P = cell_patterns(F)
    seen = {row[:6].tobytes() for row in P}
    S = (F[:6] @ _sphere(3, 20_000, rng)).T > 0
    assert all(row.tobytes() in seen for row in S)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_cell_bound_k_is_valid(k, monkeypatch):
    """k > SPHERE_MAX_K (forced for k = 2, 3), rank 3: the per-cell bound is never below the
    value at 200k random unit directions nor at its own candidates."""
    from conic_dnn.two_layer import pricing

    if k <= pricing.SPHERE_MAX_K:
        monkeypatch.setattr(pricing, "SPHERE_MAX_K", 1)
    p = _problem(5, 8, 3, 0.0, "relu", k=k)
    Lam = np.random.default_rng(4).normal(size=(8, k))
    rho, cands, method = price(p, Lam, max_patterns=10_000)
    assert method == "cell_bound"
    V = np.linalg.svd(p.H0, full_matrices=False)[2][:3].T
    U = V @ _sphere(3, 200_000, np.random.default_rng(2))
    vals = np.linalg.norm(Lam.T @ p.activation(p.H0 @ U), axis=0)
    assert vals.max() <= rho * (1 + 1e-12)
    assert cands[0][0] <= rho * (1 + 1e-12)


def _cross_entropy_dual(p, rng):
    """``-grad C(Z)`` of the cross-entropy at random logits: rows summing to zero."""
    Z = rng.normal(size=p.Y.shape)
    return -p.loss.gradient(Z, p.Y)


@pytest.mark.parametrize("act", list(ACTS))
@pytest.mark.parametrize("k, N, d, bias", [(2, 9, 3, 0.0), (2, 8, 2, 1.0), (3, 8, 3, 0.0),
                                           (3, 7, 2, 1.0)])
def test_cross_entropy_output_range_pricing_vs_full_sphere(act, k, N, d, bias):
    """A cross-entropy dual (rows summing to zero, rank k - 1) is priced on its output range:
    two classes by the exact one-output cells (method "cells"), three on a circle. Oracle:
    the branch and bound over the full sphere of k output directions (no reduction, no cap,
    a second formulation): same rho to its 1e-9, and no random unit direction (200k) above
    it."""
    from conic_dnn.two_layer.pricing import cell_patterns_for
    from conic_dnn.two_layer.sphere import price_sphere

    rng = np.random.default_rng([k, N, d])
    X = rng.normal(size=(N, d))
    Y = np.eye(k)[np.arange(N) % k]
    p = cd.Problem(X, Y, 2, 0.05, activation=ACTS[act], loss="cross_entropy", bias=bias)
    Lam = _cross_entropy_dual(p, rng)
    assert np.abs(Lam.sum(axis=1)).max() <= 1e-15
    cells = cell_patterns_for(p)
    rho, cands, method = price(p, Lam, max_patterns=0, cells=cells)
    assert method == ("cells" if k == 2 else "cells_sphere")
    V, F, pats = cells
    full = price_sphere(Lam, V, F, p.activation.a, p.activation.b, pats, rtol=1e-9)
    assert full.closed
    assert rho == pytest.approx(full.rho_upper, rel=2e-9)
    val, u = cands[0]
    assert np.linalg.norm(Lam.T @ p.activation(p.H0 @ u)) == pytest.approx(val, rel=1e-12)
    assert val >= rho * (1 - 2e-9)  # attained: exact
    U = V @ _sphere(V.shape[1], 200_000, np.random.default_rng(3))
    assert np.linalg.norm(Lam.T @ p.activation(p.H0 @ U), axis=0).max() <= rho * (1 + 1e-12)


def test_output_range_margin_covers_what_it_drops():
    """A dual of rank 2 plus a part of 1e-13 (below the 1e-12 cut): the reduced values plus
    the margin are never below the true values (200k unit directions), and the margin is of
    the dropped part's size (at most 1e-11 of the values); a full-rank dual is unchanged."""
    from conic_dnn.two_layer.pricing import output_range

    p = _problem(6, 10, 3, 1.0, "relu", k=3)
    rng = np.random.default_rng(5)
    A, B = rng.normal(size=(10, 2)), rng.normal(size=(2, 3))
    Lam = A @ B + 1e-13 * np.linalg.norm(A @ B, 2) * np.outer(rng.normal(size=10),
                                                            rng.normal(size=3)) / 10
    Lq, margin = output_range(Lam, p.H0, p.activation)
    assert Lq.shape == (10, 2)
    U = np.linalg.svd(p.H0, full_matrices=False)[2].T @ _sphere(4, 200_000, rng)
    S = p.activation(p.H0 @ U)
    true, reduced = np.linalg.norm(Lam.T @ S, axis=0), np.linalg.norm(Lq.T @ S, axis=0)
    assert np.all(true <= reduced + margin)
    assert 0 < margin <= 1e-11 * true.max()
    L2 = rng.normal(size=(10, 3))
    same, m0 = output_range(L2, p.H0, p.activation)
    assert same is L2 and m0 == 0.0
