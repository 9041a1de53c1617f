"""Choosing, running and falling back between cone solvers.

May import: conic_dnn.core.

Never leave the choice to cvxpy (with an unlicensed MOSEK installed its default picks MOSEK and
fails). ``solver=None`` tries, in order: Clarabel (interior point, tolerances 1e-9; if it
only reaches ``optimal_inaccurate`` there, once more at its own defaults 1e-8), MOSEK when it
imports *and* a license check passes, SCS (first order; ``eps_abs = eps_rel = 1e-7``,
``max_iters = 100000``) — most accurate first. ``solver_options`` may be keyed by solver
name; a flat dict goes to the first solver tried only. A status ``optimal_inaccurate`` moves
on to the next solver; if nothing better is found the inaccurate solution is kept with a warning.
``infeasible`` / ``unbounded`` also move on: the package's programs are always feasible and
bounded below (every cost is >= 0), so these statuses are numerical (measured: Clarabel says
``unbounded`` on data scaled by 1e-6, where SCS solves it).
"""

from __future__ import annotations

import functools
import time
import warnings
from dataclasses import dataclass, field

import cvxpy as cp

from .core.errors import InaccurateSolutionWarning, SolverFailedError

__all__ = ["SolveInfo", "available_solvers", "mosek_licensed", "run", "DEFAULT_OPTIONS",
           "SOLVER_NAMES", "check_solver_options", "known_options"]

SOLVER_NAMES = ("CLARABEL", "MOSEK", "SCS")
DEFAULT_OPTIONS = {
    "CLARABEL": {"max_iter": 500, "tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9},
    "SCS": {"eps_abs": 1e-7, "eps_rel": 1e-7, "max_iters": 100_000},
    "MOSEK": {},
}


@functools.lru_cache(maxsize=1)
def mosek_licensed() -> bool:
    """True when ``mosek`` imports and a license can be checked out (cached, silent)."""
    try:
        import mosek

        with mosek.Env() as env:
            env.checkoutlicense(mosek.feature.pts)
        return True
    except Exception:
        return False


@functools.lru_cache(maxsize=1)
def _installed() -> frozenset:
    """``cvxpy.installed_solvers()``, once per process: it probes imports on every call
    (measured 2.8 ms, more than a small re-solve's solver time)."""
    return frozenset(cp.installed_solvers())


def available_solvers() -> list[str]:
    """Usable solvers in the automatic order (Clarabel, MOSEK if licensed, SCS)."""
    installed = _installed()
    out = []
    for name in SOLVER_NAMES:
        if name not in installed:
            continue
        if name == "MOSEK" and not mosek_licensed():
            continue
        out.append(name)
    return out


def _check_solver(solver) -> list[str]:
    if solver is None:
        names = available_solvers()
        if not names:
            raise SolverFailedError("no cone solver is installed: expected Clarabel or SCS "
                                    "(pip install clarabel scs)", status="no solver")
        return names
    if not isinstance(solver, str):
        raise TypeError(f"solver: expected a solver name or None, got {type(solver).__name__}")
    name = solver.upper()
    if name not in SOLVER_NAMES:
        raise ValueError(f"solver: expected one of {', '.join(SOLVER_NAMES)} or None, "
                         f"got {solver!r}")
    if name not in _installed():
        hint = " (pip install -e '.[mosek]' and a license)" if name == "MOSEK" else ""
        raise ValueError(f"solver: expected an installed solver "
                         f"({', '.join(available_solvers()) or 'none'}) or None, got "
                         f"{solver!r}: {name} is not installed{hint}")
    if name == "MOSEK" and not mosek_licensed():
        raise ValueError(f"solver: expected a licensed solver or None, got {solver!r}: MOSEK is "
                         "installed but no license was found; put a license file at "
                         "~/mosek/mosek.lic (or set MOSEKLM_LICENSE_FILE), or pick another "
                         "solver (solver=None chooses Clarabel, then SCS)")
    return [name]


#: Options of ``cvxpy.Problem.solve`` itself that any solver accepts (``warm_start`` is set by
#: :func:`run`).
CVXPY_OPTIONS = frozenset({"verbose", "canon_backend", "ignore_dpp", "enforce_dpp"})
#: SCS 3 settings (its documentation, "Settings") and the keywords of its Python interface.
SCS_OPTIONS = frozenset({
    "max_iters", "eps_abs", "eps_rel", "eps_infeas", "alpha", "time_limit_secs", "normalize",
    "scale", "adaptive_scale", "rho_x", "acceleration_lookback", "acceleration_interval",
    "write_data_filename", "log_csv_filename", "use_indirect", "gpu", "mkl"})
#: cvxpy's MOSEK interface keywords.
MOSEK_OPTIONS = frozenset({"mosek_params", "save_file", "bfs", "accept_unknown", "eps"})
#: Clarabel settings, used when the installed clarabel cannot be introspected.
CLARABEL_OPTIONS = frozenset({
    "max_iter", "time_limit", "max_step_fraction", "tol_gap_abs", "tol_gap_rel", "tol_feas",
    "tol_infeas_abs", "tol_infeas_rel", "tol_ktratio", "reduced_tol_gap_abs",
    "reduced_tol_gap_rel", "reduced_tol_feas", "reduced_tol_infeas_abs",
    "reduced_tol_infeas_rel", "reduced_tol_ktratio", "equilibrate_enable",
    "equilibrate_max_iter", "equilibrate_min_scaling", "equilibrate_max_scaling",
    "linesearch_backtrack_step", "min_switch_step_length", "min_terminate_step_length",
    "direct_kkt_solver", "direct_solve_method", "static_regularization_enable",
    "static_regularization_constant", "static_regularization_proportional",
    "dynamic_regularization_enable", "dynamic_regularization_eps",
    "dynamic_regularization_delta", "iterative_refinement_enable",
    "iterative_refinement_reltol", "iterative_refinement_abstol",
    "iterative_refinement_max_iter", "iterative_refinement_stop_ratio", "presolve_enable",
    "chordal_decomposition_enable", "chordal_decomposition_merge_method",
    "chordal_decomposition_compact", "chordal_decomposition_complete_dual", "max_threads",
    "input_sparse_dropzeros"})


@functools.cache
def known_options(name: str) -> frozenset:
    """The option names solver ``name`` accepts through cvxpy (its own settings, read from the
    installed package where it can be introspected, plus cvxpy's generic ones)."""
    name = name.upper()
    if name == "CLARABEL":
        try:
            import clarabel

            own = frozenset(a for a in dir(clarabel.DefaultSettings())
                            if not a.startswith("_") and a != "default")
        except Exception:
            own = CLARABEL_OPTIONS
        return own | CVXPY_OPTIONS
    if name == "SCS":
        return SCS_OPTIONS | CVXPY_OPTIONS
    if name == "MOSEK":
        return MOSEK_OPTIONS | CVXPY_OPTIONS
    return CVXPY_OPTIONS


def check_solver_options(solver_options, solver=None) -> None:
    """Raise ``ValueError`` naming every option the solver it goes to does not know (a flat
    dict goes to ``solver``, or to the first solver tried), ``TypeError`` for a non-dict.
    Called before any solver runs."""
    if solver_options is None:
        return
    names = _check_solver(solver) if solver is not None else [
        next((n for n in SOLVER_NAMES if n in available_solvers()), "CLARABEL")]
    _check_known(_split_options(solver_options, names, check=False))


def _check_known(per: dict) -> None:
    for name, opts in per.items():
        if "warm_start" in opts:
            raise ValueError("solver_options: 'warm_start' is set by conic_dnn (Clarabel has no "
                             "iterate warm start; SCS is warm-started on re-solves); remove it")
        unknown = sorted(str(k) for k in opts if str(k) not in known_options(name))
        if unknown:
            raise ValueError(f"solver_options: unknown option(s) {', '.join(map(repr, unknown))} "
                             f"for {name}; expected names among its documented settings, e.g. "
                             f"{', '.join(sorted(DEFAULT_OPTIONS.get(name, {})) or ['verbose'])}")


def _split_options(solver_options, names: list[str], check: bool = True) -> dict:
    """Options per solver. ``solver_options`` is either keyed by solver name
    (``{"CLARABEL": {...}, "SCS": {...}}``) or flat, in which case it applies to the first
    solver tried (the one named by ``solver=``, or Clarabel): option names differ between
    solvers, so a flat dict is never passed to a fallback."""
    if solver_options is None:
        return {}
    if not isinstance(solver_options, dict):
        raise TypeError(f"solver_options: expected a dict or None, got "
                        f"{type(solver_options).__name__}")
    keys = {str(k).upper() for k in solver_options}
    if solver_options and keys <= set(SOLVER_NAMES):
        out = {}
        for k, v in solver_options.items():
            if not isinstance(v, dict):
                raise TypeError(f"solver_options[{k!r}]: expected a dict, got "
                                f"{type(v).__name__}")
            out[str(k).upper()] = dict(v)
    else:
        out = {names[0]: dict(solver_options)}
    if check:
        _check_known(out)
    return out


@dataclass
class SolveInfo:
    """What happened when a program was solved.

    Attributes
    ----------
    status : str
        cvxpy status of the solution kept.
    solver : str
        The solver that produced it.
    value : float
        Optimal value reported by the solver.
    attempts : list of (str, str)
        ``(solver, status)`` of every attempt, in order (fallbacks show here).
    compile_time, solver_time : float
        Seconds spent in cvxpy's compilation and in the solver (summed over attempts).
    iterations : int or None
    """

    status: str
    solver: str
    value: float
    attempts: list = field(default_factory=list)
    compile_time: float = 0.0
    solver_time: float = 0.0
    iterations: int | None = None

    @property
    def fell_back(self) -> bool:
        return len(self.attempts) > 1

    @property
    def inaccurate(self) -> bool:
        return self.status == cp.OPTIMAL_INACCURATE


def _problem_for(problem: cp.Problem, name: str) -> cp.Problem:
    """The cvxpy problem to hand to solver ``name``.

    cvxpy keeps one compiled program per ``Problem`` (the last solver's), so a fallback to SCS
    and back to Clarabel recompiled both on every re-solve (measured: 30-60 ms per re-solve at
    N = 8 instead of 1 ms). The first solver used keeps ``problem``; every other solver gets a
    twin ``Problem`` (same objective, constraints and Variables, so the solution lands in the
    same Variables) with its own cache."""
    owner = problem.__dict__.setdefault("_conic_dnn_owner", name)
    if name == owner:
        return problem
    twins = problem.__dict__.setdefault("_conic_dnn_twins", {})
    if name not in twins:
        twins[name] = cp.Problem(problem.objective, problem.constraints)
    return twins[name]


def run(problem: cp.Problem, solver: str | None = None, solver_options: dict | None = None,
        layer: int | None = None, warm_start: bool = True, accept_inaccurate: bool = False,
        warn: bool = True, fallback: bool = True) -> SolveInfo:
    """Solve a cvxpy problem with an explicit, checked solver and automatic fallback.

    Parameters
    ----------
    accept_inaccurate : bool, default False
        Keep the first ``optimal_inaccurate`` solution (after Clarabel's own retry) instead of
        trying the next solver. For callers that verify the solution independently (the
        alternating solver keeps a step only if the rebuilt network's loss does not rise).
    warn : bool, default True
        Emit an :class:`InaccurateSolutionWarning` when the kept solution is inaccurate.
    fallback : bool, default True
        With ``solver=None``, move on to the next installed solver when one fails. ``False``
        tries the first one only (with Clarabel's own retry): for callers that can skip a
        failed step (an SCS fallback takes ~40 s on programs Clarabel solves in 10 ms).

    Raises
    ------
    SolverFailedError
        When no solver returned an (inaccurate or accurate) optimal solution; the message names
        the layer, every solver tried and its status.
    """
    names = _check_solver(solver)
    if not fallback:
        names = names[:1]
    per_solver = _split_options(solver_options, names)
    attempts, compile_time, solver_time = [], 0.0, 0.0
    kept = None
    plan = []
    for name in names:
        opts = dict(DEFAULT_OPTIONS.get(name, {}))
        opts.update(per_solver.get(name, {}))
        plan.append((name, opts))
        if name == "CLARABEL" and name not in per_solver:
            # Clarabel's own 1e-8 tolerances, spelled out: cvxpy keeps settings between solves
            plan.append((name, {"max_iter": 500, "tol_gap_abs": 1e-8, "tol_gap_rel": 1e-8,
                                "tol_feas": 1e-8}))
    for idx, (name, opts) in enumerate(plan):
        if idx > 0 and plan[idx - 1][0] == name and attempts[-1][1] != cp.OPTIMAL_INACCURATE:
            continue  # the relaxed Clarabel retry is only for an inaccurate tight solve
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():  # cvxpy's own "may be inaccurate": we warn below
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                target = _problem_for(problem, name)
                # Clarabel has no iterate warm start: cvxpy's warm_start=True only updates the
                # data of the previous solver object, which went inaccurate on re-solves that
                # succeed from a fresh object (a lam path: 2 of 4); SCS does warm start
                target.solve(solver=name, warm_start=warm_start and name != "CLARABEL",
                             **opts)
            status = target.status
        except Exception as exc:  # solver errors, mosek.Error, numerical trouble
            status = f"error: {type(exc).__name__}: {exc}".splitlines()[0][:200]
        elapsed = time.perf_counter() - t0
        target = _problem_for(problem, name)
        stats = target.solver_stats if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) else None
        st = getattr(stats, "solve_time", None) if stats is not None else None
        ct = getattr(target, "compilation_time", None)
        compile_time += float(ct) if ct else 0.0
        solver_time += float(st) if st else max(elapsed - (float(ct) if ct else 0.0), 0.0)
        attempts.append((name, status))
        if status == cp.OPTIMAL:
            return SolveInfo(status, name, float(target.value), attempts, compile_time,
                             solver_time, getattr(stats, "num_iters", None))
        if status == cp.OPTIMAL_INACCURATE and (kept is None or kept.solver == name):
            kept = SolveInfo(status, name, float(target.value), attempts, compile_time,
                             solver_time, getattr(stats, "num_iters", None))
        if (kept is not None and accept_inaccurate
                and (idx + 1 == len(plan) or plan[idx + 1][0] != name)):
            break
    if kept is not None:
        where = f" (layer {layer})" if layer is not None else ""
        if warn:
            warnings.warn(f"solver {kept.solver} returned optimal_inaccurate{where}; the "
                          f"result's status says so", InaccurateSolutionWarning, stacklevel=3)
        # re-solve with the kept solver would be wasteful: its values are still in place only if
        # it was the last attempt; otherwise solve again with it.
        if attempts[-1][0] != kept.solver:
            opts = dict(DEFAULT_OPTIONS.get(kept.solver, {}))
            opts.update(per_solver.get(kept.solver, {}))
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Solution may be inaccurate")
                _problem_for(problem, kept.solver).solve(solver=kept.solver, **opts)
        kept.attempts, kept.compile_time, kept.solver_time = attempts, compile_time, solver_time
        return kept
    where = f"layer {layer}: " if layer is not None else ""
    tried = "; ".join(f"{n}: {s}" for n, s in attempts)
    raise SolverFailedError(f"{where}the cone program could not be solved ({tried})",
                            solver=attempts[-1][0], status=attempts[-1][1], layer=layer,
                            attempts=attempts)
