"""Exact cone projections of the arrangement cells (conic_dnn.two_layer.cells) against an
independent oracle: the second-order cone program ``max c^T e s.t. S_P F e >= 0, ||e|| <= 1``
solved by cvxpy + Clarabel."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest

from conic_dnn.two_layer.cells import cell_patterns, cone_projection


def cell_value_socp(F, pattern, c):
    """Oracle: ``max c^T e`` over the closed cone ``S_P F e >= 0`` of ``pattern`` and the unit
    ball, by cvxpy + Clarabel (also used by tests/test_refine.py)."""
    e = cp.Variable(F.shape[1])
    S = np.where(pattern, 1.0, -1.0)
    prob = cp.Problem(cp.Maximize(c @ e), [cp.multiply(S, F @ e) >= 0, cp.norm(e) <= 1])
    prob.solve(solver="CLARABEL")
    return max(float(prob.value), 0.0)


@pytest.fixture(params=[(8, 3, 0), (8, 4, 1), (12, 5, 2)], ids=lambda p: f"N{p[0]}r{p[1]}")
def cells(request):
    N, r, seed = request.param
    rng = np.random.default_rng([N, r, seed])
    F = rng.normal(size=(N, r))
    return F, cell_patterns(F), rng


def test_projection_value_matches_the_socp(cells):
    """On 40 cells (two random ``c`` each) and for ``c`` inside its own cell, the value
    equals the SOCP's to 1e-7 (Clarabel's accuracy), never below it by more than that (the
    value is an upper bound),
    and a positive value's direction is a unit vector of the cone attaining it (to 1e-12): the
    interior, one-violated-row and NNLS paths are all hit (asserted)."""
    F, pats, rng = cells
    paths = set()
    cases = [(P, rng.normal(size=F.shape[1])) for P in pats[:40] for _ in range(2)]
    for _ in range(5):  # c inside its own cell
        c = rng.normal(size=F.shape[1])
        cases.append((F @ c > 0, c))
    for P, c in cases:
        val, e = cone_projection(F, P, c)
        A = np.where(P, 1.0, -1.0)[:, None] * F
        n_out = int(np.sum(A @ c < 0))
        paths.add(min(n_out, 2))
        ref = cell_value_socp(F, P, c)
        assert val == pytest.approx(ref, abs=1e-7 * max(1.0, np.linalg.norm(c)))
        assert val >= ref - 1e-7 * np.linalg.norm(c)
        if val > 1e-12 * np.linalg.norm(c):  # (below: rounding, e carries no meaning)
            assert np.linalg.norm(e) == pytest.approx(1.0, abs=1e-12)
            assert np.min(A @ e) >= -1e-12 * np.abs(A).max()
            assert float(c @ e) == pytest.approx(val, rel=1e-10, abs=1e-14)
    assert paths == {0, 1, 2}


def test_single_row_shortcut_falls_back_when_the_hyperplane_point_leaves_the_cone():
    """A ``c`` violating exactly one row whose hyperplane projection violates another row
    (found by a seeded search, asserted): the shortcut must not be taken, and the value is
    still the SOCP's (the NNLS projection onto a lower-dimensional face)."""
    rng = np.random.default_rng(5)
    F = rng.normal(size=(8, 3))
    P = cell_patterns(F)[3]
    A = np.where(P, 1.0, -1.0)[:, None] * F
    found = 0
    for _ in range(2000):
        c = rng.normal(size=3)
        out = A @ c < 0
        if out.sum() != 1:
            continue
        a = A[out][0]
        p = c - (a @ c) / (a @ a) * a
        if np.min(A @ p) >= -1e-6:  # (clearly outside: not a rounding-level case)
            continue
        found += 1
        val, e = cone_projection(F, P, c)
        assert val == pytest.approx(cell_value_socp(F, P, c), abs=1e-7)
        assert val < np.linalg.norm(p) - 1e-9  # below the rejected hyperplane value
        if found == 5:
            break
    assert found == 5
