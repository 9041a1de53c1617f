"""Solver choice, fallback and failure reporting."""

import cvxpy as cp
import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn import solvers


def _sdp():
    X = cp.Variable((4, 4), PSD=True)
    return cp.Problem(cp.Minimize(cp.trace(X @ np.diag([1.0, 2, 3, 4]))
                                  + cp.matrix_frac(np.ones(4), X)))


def test_automatic_order_never_leaves_choice_to_cvxpy():
    names = solvers.available_solvers()
    assert names[0] == "CLARABEL" and "SCS" in names
    if "MOSEK" in names:
        assert solvers.mosek_licensed()
    info = solvers.run(_sdp())
    assert info.solver == "CLARABEL" and info.status == "optimal"
    assert info.attempts == [("CLARABEL", "optimal")] and not info.fell_back


def test_fallback_is_recorded():
    info = solvers.run(_sdp(), solver_options={"max_iter": 3})  # flat: Clarabel only
    # Clarabel stops at its iteration limit, SCS takes over
    assert info.attempts[0][0] == "CLARABEL" and info.attempts[0][1] != "optimal"
    assert info.solver == "SCS" and info.fell_back


def test_fallback_keeps_each_solvers_compiled_program():
    """Each solver compiles once: re-solving after a fallback reuses both compiled programs
    (cvxpy keeps one per Problem, so the fallback solver works on a twin Problem that shares
    the Variables), and the solution lands in the caller's Variables."""
    c = cp.Parameter(4, value=np.array([1.0, 2, 3, 4]))
    X = cp.Variable((4, 4), PSD=True)
    prob = cp.Problem(cp.Minimize(cp.trace(X @ cp.diag(c)) + cp.matrix_frac(np.ones(4), X)))
    opts = {"CLARABEL": {"max_iter": 3}}
    first = solvers.run(prob, solver_options=opts)
    assert first.solver == "SCS"
    programs = (prob._cache.param_prog, prob._conic_dnn_twins["SCS"]._cache.param_prog)
    assert all(p is not None for p in programs)
    c.value = np.array([4.0, 3, 2, 1])
    second = solvers.run(prob, solver_options=opts)
    assert second.solver == "SCS"
    assert prob._cache.param_prog is programs[0]
    assert prob._conic_dnn_twins["SCS"]._cache.param_prog is programs[1]
    # the solution is in X: its cost is the value SCS reported
    Xv = X.value
    cost = np.trace(Xv @ np.diag(c.value)) + np.ones(4) @ np.linalg.solve(Xv, np.ones(4))
    assert cost == pytest.approx(second.value, rel=1e-4)
    # and an accurate solve of the same data agrees (Clarabel, default options)
    assert solvers.run(prob).value == pytest.approx(second.value, rel=1e-4)


def test_options_keyed_by_solver():
    info = solvers.run(_sdp(), solver_options={"clarabel": {"max_iter": 3},
                                               "SCS": {"eps_abs": 1e-6}})
    assert info.solver == "SCS"
    with pytest.raises(TypeError, match=r"solver_options\['SCS'\]"):
        solvers.run(_sdp(), solver_options={"SCS": 1})


def test_inaccurate_warns_and_says_so():
    with pytest.warns(cd.InaccurateSolutionWarning, match="optimal_inaccurate"):
        info = solvers.run(_sdp(), solver="SCS", solver_options={"max_iters": 5})
    assert info.status == "optimal_inaccurate" and info.inaccurate


def test_infeasible_raises_solver_error_naming_everything():
    x = cp.Variable(2)
    prob = cp.Problem(cp.Minimize(cp.sum(x)), [x >= 1, x <= 0])
    with pytest.raises(cd.SolverFailedError,
                       match=r"layer 3: .*CLARABEL: infeasible; SCS: infeasible") as ei:
        solvers.run(prob, layer=3)
    err = ei.value
    assert isinstance(err, cp.error.SolverError)
    assert err.solver == "SCS" and err.status == "infeasible" and err.layer == 3


def test_bad_solver_arguments():
    with pytest.raises(ValueError, match="solver: expected one of CLARABEL, MOSEK, SCS"):
        solvers.run(_sdp(), solver="GUROBI")
    with pytest.raises(TypeError, match="solver"):
        solvers.run(_sdp(), solver=3)
    with pytest.raises(TypeError, match="solver_options"):
        solvers.run(_sdp(), solver_options=[1])
    if "MOSEK" not in cp.installed_solvers():
        with pytest.raises(ValueError, match="MOSEK is not installed"):
            solvers.run(_sdp(), solver="MOSEK")
    elif not solvers.mosek_licensed():
        with pytest.raises(ValueError, match="license"):
            solvers.run(_sdp(), solver="MOSEK")


@pytest.mark.parametrize("opts, bad", [({"max_itr": 5}, "max_itr"),
                                       ({"CLARABEL": {"tol_gap": 1e-8}}, "tol_gap"),
                                       ({"SCS": {"eps": 1e-6}}, "eps")])
def test_unknown_option_names_are_errors(opts, bad):
    """A typo in solver_options is a ValueError naming it (not silently ignored), raised by
    run() and by solve() before any solver runs."""
    with pytest.raises(ValueError, match=f"unknown option.*'{bad}'"):
        solvers.run(_sdp(), solver_options=opts)
    p = cd.Problem(np.eye(3), np.ones(3), 2, 0.1)
    with pytest.raises(ValueError, match=f"solver_options: unknown option.*'{bad}'"):
        cd.solve(p, solver_options=opts)


def test_known_options_pass_and_warm_start_is_refused():
    assert "tol_gap_abs" in solvers.known_options("CLARABEL")
    assert {"eps_abs", "max_iters"} <= solvers.known_options("SCS")
    solvers.check_solver_options({"CLARABEL": {"max_iter": 50}, "SCS": {"eps_abs": 1e-5}})
    solvers.check_solver_options({"max_iters": 50}, "SCS")
    with pytest.raises(ValueError, match="warm_start"):
        solvers.check_solver_options({"warm_start": False})
