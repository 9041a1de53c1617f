"""core/result.py: the Result's fields, aliases, strict JSON and saved files."""

import math

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.core.records import ProblemRecord

from .conftest import strict_loads


@pytest.fixture
def problem(rng):
    return cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=(4, 1)), 2, 0.05,
                      loss=cd.Huber(0.7))


@pytest.fixture
def solved(problem):
    return cd.solve(problem)


def _unbounded(rng):
    """A result without a lower bound (as a deep solve gives), built by hand."""
    net = cd.Network((rng.normal(size=(3, 2)), rng.normal(size=(1, 3))))
    return cd.Result(objective=1.5, lower_bound=-math.inf, gap=math.inf, certified=False,
                     network=net, covariances=[], history=[2.0, 1.5], status="optimal",
                     solver="CLARABEL", solve_time=0.1, method="alternating/pattern",
                     info={"sweeps": 4, "arr": np.ones(3),
                           "budget_pass": {"pricing_budget": math.inf, "certified": False},
                           "nested_arr": {"a": np.ones(2)}})


def test_scipy_aliases_and_rel_gap(solved):
    assert solved.fun == solved.objective and solved.x is solved.network
    assert solved.success is True and isinstance(solved.message, str) and solved.message
    assert isinstance(solved.nit, int) and solved.nit >= 1
    assert solved.rel_gap == pytest.approx(solved.gap / abs(solved.objective), rel=1e-15)
    assert solved.certified and solved.rel_gap <= 1e-6


def test_rel_gap_edge_cases(rng):
    res = _unbounded(rng)
    assert res.rel_gap == math.inf and res.nit == 4
    import dataclasses
    zero = dataclasses.replace(res, objective=0.0, lower_bound=0.0, gap=0.0)
    assert zero.rel_gap == 0.0


def test_repr_is_short_and_str_shows_relative_gap(solved):
    r = repr(solved)
    assert len(r.splitlines()) == 1 and len(r) < 250 and "array" not in r
    assert "rel_gap=" in r and "certified=True" in r
    assert "relative" in str(solved)


def test_to_json_is_strict_and_complete(rng, solved):
    res = _unbounded(rng).with_warnings(["ConvergenceWarning: stopped"])
    d = strict_loads(res.to_json())
    assert d["lower_bound"] is None and d["gap"] is None and d["rel_gap"] is None
    assert d["warnings"] == ["ConvergenceWarning: stopped"] and d["nit"] == 4
    assert "covariances" not in d and "arr" not in d["info"]  # no array dumps unless asked
    # small dicts of plain values are kept (strict: inf -> null), those holding arrays not
    assert d["info"]["budget_pass"] == {"pricing_budget": None, "certified": False}
    assert "nested_arr" not in d["info"]
    d = strict_loads(solved.to_json(covariances=True))
    K, G = solved.covariances[0]
    np.testing.assert_array_equal(np.array(d["covariances"][0][0]), K)
    assert d["problem"]["lam"] == 0.05 and d["problem"]["loss_params"] == {"delta": 0.7}
    for key in ("objective", "lower_bound", "gap", "rel_gap", "certified", "widths", "status",
                "solver", "method", "success", "message", "history", "timings"):
        assert key in d


def test_solve_attaches_the_record(problem, solved):
    rec = solved.problem_record
    assert rec == ProblemRecord.from_problem(problem, solved.method)
    assert solved.network.problem_record == rec


def test_save_and_load_round_trip(problem, solved, tmp_path, rng):
    path = solved.save(tmp_path / "out")
    assert path.name == "result.json"
    back = cd.load_result(tmp_path / "out")
    assert back.objective == solved.objective and back.lower_bound == solved.lower_bound
    assert back.certified == solved.certified and back.widths == solved.widths
    assert back.problem_record == solved.problem_record
    assert back.network.problem_record == solved.problem_record
    # the loaded network is the solved one: its forward pass gives the same objective
    assert back.network.loss(problem) == pytest.approx(solved.objective, rel=1e-14)
    with pytest.raises(FileExistsError):
        solved.save(tmp_path / "out", overwrite=False)
    # unbounded values come back as -inf / inf
    _unbounded(rng).save(tmp_path / "u", problem.replace(depth=2))
    u = cd.load_result(tmp_path / "u" / "result.json")
    assert u.lower_bound == -math.inf and u.gap == math.inf and u.covariances == []


def test_load_result_detects_a_changed_network(solved, tmp_path, rng):
    solved.save(tmp_path)
    other = cd.Network((rng.normal(size=(2, 2)), rng.normal(size=(1, 2))))
    other.save(tmp_path / "network.npz")
    with pytest.raises(ValueError, match="changed since"):
        cd.load_result(tmp_path)
    (tmp_path / "x.json").write_text('{"objective": 1}')
    with pytest.raises(ValueError, match="not a conic_dnn result"):
        cd.load_result(tmp_path / "x.json")
    with pytest.raises(FileNotFoundError):
        cd.load_result(tmp_path / "missing.json")
