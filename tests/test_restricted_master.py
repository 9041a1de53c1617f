"""The restricted master of column generation (conic_dnn.two_layer.restricted_master) against
an independent formulation: the group lasso over the same dictionary written directly in
cvxpy and solved by Clarabel."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest

from conic_dnn.two_layer.restricted_master import RestrictedMaster

from .test_column_generation import _problem


def group_lasso_value(problem, U, V, c):
    """The group-lasso objective at ``(V, c)``, evaluated here (not by the master's code)."""
    Z = problem.activation(problem.H0 @ U) @ V + problem.bias * c[None, :]
    return (np.sum((Z - problem.Y) ** 2) / problem.N
            + 2 * problem.lam * np.sum(np.linalg.norm(V, axis=1)) + problem.lam * c @ c)


def group_lasso_cvxpy(problem, U):
    """Oracle: ``min ||s(H0 U) V + beta 1 c^T - Y||_F^2 / N + 2 lam sum_j ||V_j|| + lam
    ||c||^2`` (squared loss) over ``V`` (m, k) and ``c`` (k,)."""
    A = problem.activation(problem.H0 @ U)
    V = cp.Variable((U.shape[1], problem.k))
    c = cp.Variable(problem.k)
    Z = A @ V + problem.bias * np.ones((problem.N, 1)) @ cp.reshape(c, (1, problem.k), order="C")
    obj = (cp.sum_squares(Z - problem.Y) / problem.N
           + 2 * problem.lam * cp.sum(cp.norm(V, 2, axis=1)) + problem.lam * cp.sum_squares(c))
    prob = cp.Problem(cp.Minimize(obj))
    prob.solve(solver="CLARABEL")
    return float(prob.value)


@pytest.fixture(params=[(1, 0.0), (1, 1.0), (2, 1.0)], ids=["k1", "k1-bias", "k2-bias"])
def instance(request):
    k, bias = request.param
    p = _problem(4, 10, 3, bias, k=k)
    rng = np.random.default_rng(7)
    G = rng.normal(size=(p.H0.shape[1], 24))
    return p, G / np.linalg.norm(G, axis=0)


@pytest.mark.parametrize("kind", ["numpy", "cvxpy"])
def test_master_matches_the_direct_group_lasso_as_the_dictionary_grows(instance, kind):
    """Over a dictionary of 12 directions, then of 24 (warm-started from the first solve),
    the objective at the master's ``V``, ``c`` (evaluated by the test) equals the direct cvxpy group
    lasso's to 1e-6 relative (Clarabel's accuracy), and does not rise as columns are added."""
    p, U = instance
    master = RestrictedMaster(p, kind, None)
    values = []
    for m in (12, 24):
        Vm, c, info, _ = master.solve(U[:, :m])
        assert Vm.shape == (m, p.k) and c.shape == (p.k,)
        value = group_lasso_value(p, U[:, :m], Vm, c)
        assert value == pytest.approx(group_lasso_cvxpy(p, U[:, :m]), rel=1e-6)
        values.append(value)
    assert values[1] <= values[0] * (1 + 1e-9)
    assert master.kind == kind and master.time > 0
