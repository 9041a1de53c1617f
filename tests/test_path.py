"""Path: the result of solve_path is a Sequence of Result with the path's columns."""

from collections.abc import Sequence

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.core.path import Path


@pytest.fixture
def path(rng):
    p = cd.Problem(rng.normal(size=(5, 2)), rng.normal(size=(5, 1)), 2, 1.0)
    return p, cd.solve_path(p, [0.02, 0.1, 0.5])


def test_path_is_a_sequence_of_results(path):
    p, res = path
    assert isinstance(res, Path) and isinstance(res, Sequence)
    assert len(res) == 3 and all(isinstance(r, cd.Result) for r in res)
    assert res[-1] is res.results[2] and isinstance(res[1:], Path) and len(res[1:]) == 2
    np.testing.assert_array_equal(res.lams, [0.02, 0.1, 0.5])
    for lam, r in zip(res.lams, res):
        # oracle: each result's own network evaluated on the problem at its lam
        assert r.objective == pytest.approx(r.network.loss(p.replace(lam=lam)), rel=1e-12)
    np.testing.assert_array_equal(res.objectives, [r.objective for r in res])
    np.testing.assert_array_equal(res.lower_bounds, [r.lower_bound for r in res])
    np.testing.assert_allclose(res.rel_gaps,
                               [(r.objective - r.lower_bound) / abs(r.objective) for r in res],
                               rtol=1e-12, atol=1e-300)
    assert res.widths == [r.widths for r in res]
    assert res.certified.dtype == bool and res.certified.all()
    assert "lam" in str(res) and "Path(n=3" in repr(res)


def test_rel_gaps_without_a_bound_is_inf(path):
    _, res = path
    r = res[0]
    fake = cd.Result(r.objective, -np.inf, np.inf, False, r.network, r.covariances, [],
                     "optimal", "none", 0.0)
    assert Path([1.0], [fake]).rel_gaps[0] == np.inf


def test_plot_draws_both_panels(path):
    mpl = pytest.importorskip("matplotlib")
    mpl.use("Agg")
    _, res = path
    fig, (top, bottom) = res.plot()
    assert top.get_xscale() == "log" and bottom.get_ylabel().startswith("hidden width")
    assert len(top.get_lines()) == 2  # objective and lower bound
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_bad_construction_is_named(path):
    _, res = path
    with pytest.raises(ValueError, match="lams: expected 3 values"):
        Path([1.0, 2.0], list(res))
    with pytest.raises(TypeError, match="results: expected a sequence of conic_dnn.Result"):
        Path([1.0], ["x"])
