"""solve_many: the same results, bit for bit and in order, whichever backend runs them."""

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.sweep import solve_many


@pytest.fixture
def grid(rng):
    """seeds x lam: six small depth-2 problems (each solve well under a second)."""
    out = []
    for _ in range(3):
        X, Y = rng.normal(size=(5, 2)), rng.normal(size=(5, 1))
        out += [cd.Problem(X, Y, 2, lam) for lam in (0.05, 0.2)]
    return out


def _same(a, b):
    assert len(a) == len(b)
    for r, s in zip(a, b):
        assert r.objective == s.objective and r.lower_bound == s.lower_bound
        assert r.certified == s.certified and r.widths == s.widths
        for A, B in zip(r.network.weights, s.network.weights):
            np.testing.assert_array_equal(A, B)


def test_sequential_is_solve_in_order(grid):
    res = solve_many(grid, tol=1e-6)
    # oracle: plain solve on each problem, in order
    for p, r in zip(grid, res):
        assert r.objective == pytest.approx(cd.solve(p).objective, rel=1e-12)
    assert all(r.certified for r in res)


def test_joblib_matches_sequential(grid):
    pytest.importorskip("joblib")
    _same(solve_many(grid), solve_many(grid, backend="joblib", n_jobs=2))


@pytest.mark.slow
def test_dask_local_cluster_matches_sequential(grid):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        par = solve_many(grid, client=client)
    _same(solve_many(grid), par)


def test_bad_arguments_are_named(grid):
    with pytest.raises(TypeError, match="problems: expected an iterable"):
        solve_many(grid[0])
    with pytest.raises(TypeError, match=r"problems\[1\]: expected a conic_dnn.Problem"):
        solve_many([grid[0], "x"])
    with pytest.raises(ValueError, match="backend: expected one of"):
        solve_many(grid, backend="ray")
    with pytest.raises(ValueError, match="client: backend='dask' needs"):
        solve_many(grid, backend="dask")
    with pytest.raises(ValueError, match="n_jobs: expected"):
        solve_many(grid, backend="joblib", n_jobs=0)
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['max_itr'\]"):
        solve_many(grid, max_itr=3)
    assert solve_many([]) == []
