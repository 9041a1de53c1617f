"""``solve``: the one entry point that picks the solver for a problem.

depth 2
    The global solve of :mod:`conic_dnn.two_layer.cone_program` (convex as a whole).
depth >= 3
    A portfolio (:mod:`conic_dnn.deep.portfolio`): seeded multi-start L-BFGS, block-coordinate
    layer sweeps from the best trained network and from the linear start, the better kept and
    certified layer by layer (never above the best trained network).

``solve_path`` solves a depth-2 problem for a sequence of ``lam`` with one compiled cone
program (``lam`` is a cvxpy Parameter): a regularisation path without recompiling; where
``"auto"`` puts column generation first (as :func:`solve` would), each ``lam`` by that.

``method="auto"`` at depth 2 picks, by measured cost, the method that certifies fastest
(:func:`auto_method`): the ``"pattern"`` program for a linear activation and for N <= 4; for
a planar first layer (rank(H0) <= 2, where both are exact) column generation, followed by
the pattern program (for several outputs only from N = :data:`AUTO_PLANAR_CG_MIN_N` on, the
pattern program first below); beyond the plane column generation (exact pricing
for one output, any rank, every built-in loss; for several outputs the capped branch and
bound, a valid bound, certified on most of the benchmark grid) while the arrangement has at
most :data:`conic_dnn.two_layer.column_generation.MAX_CELLS` cells, followed by the pattern
program when its estimated time (:func:`pattern_time_estimate`) is at most
:data:`AUTO_PATTERN_SECONDS`; else that pattern program, else the ``"lifted"`` relaxation.
With a ``time_limit`` the first choice gets 60 % of it and, if it ends
uncertified, the next method the rest (the better network and the larger valid bound
are kept; a pattern program only when its estimate fits in what remains); column
generation whose bound was capped by its pricing budget (several outputs) first spends its
share on further passes, from its best network, with the budget the time left affords. At
depth >= 3 ``"auto"`` uses ``"pattern"`` up to N = 8 and ``"lifted"`` above.
``"pattern"`` / ``"lifted"`` force one; the pattern program is refused (unless
``force=True``) above :data:`MAX_PATTERN_SIZE` block variables or
:data:`MAX_PATTERN_SECONDS` estimated seconds.

May import: every stage (conic_dnn.core ... conic_dnn.deep), conic_dnn.solvers.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .cone.covariance_cone import REPRESENTATIONS
from .cone.patterns import max_regions
from .core.budget import Deadline
from .core.errors import SizeLimitError
from .core.linalg import factor_range
from .core.path import Path
from .core.problem import Problem
from .core.result import Result, certification_slack
from .deep.portfolio import SWEEP_BUDGET

__all__ = ["solve", "solve_path", "METHODS", "pattern_program_size", "MAX_PATTERN_SIZE",
           "pattern_time_estimate", "auto_method", "MAX_PATTERN_SECONDS"]

METHODS = ("auto", *REPRESENTATIONS, "column_generation")
AUTO_PATTERN_MAX_N = 8
#: Refuse (unless ``force=True``) a pattern program whose blocks hold more scalar variables.
MAX_PATTERN_SIZE = 60_000
#: Seconds per unit of ``cells x N^2 x r`` of the pattern program (one Clarabel solve, 2 shared
#: cores; measured: N = 8, r = 3 4.2 s (est. 3.7); N = 10, r = 4 11 s (est. 35); iris N = 20,
#: r = 4 19.5 min (est. 21 min)); conservative: it over-estimates the mid-sized instances.
PATTERN_SECONDS_PER_UNIT = 1 / 3000
#: Refuse (unless ``force=True``) a depth-2 pattern program estimated to run longer.
MAX_PATTERN_SECONDS = 120.0
#: Planar first layer (rank(H0) <= 2), several outputs: ``auto`` puts column generation first
#: from this N on (measured: at N = 5 the pattern program was 1.1-2.5x faster, at N >= 6
#: column generation 0.9-17x faster).
AUTO_PLANAR_CG_MIN_N = 6
#: ``auto`` with several outputs takes the pattern program only below this estimate.
AUTO_PATTERN_SECONDS = 10.0


def pattern_time_estimate(problem: Problem) -> float:
    """Estimated seconds of the depth-2 pattern program: ``cells x N^2 x r`` (one entrywise
    cone constraint per pair of samples and cell, r x r blocks) times
    :data:`PATTERN_SECONDS_PER_UNIT` (0 for a linear activation or rank(H0) <= 2, whose
    programs are small and measured fast)."""
    r = len(factor_range(problem.H0)[0])
    if problem.activation.is_linear or r <= 2:
        return 0.0
    N = problem.N
    m = max_regions(N, r) if r < N else 2**N
    return m * N * N * r * PATTERN_SECONDS_PER_UNIT


def _cg_cells(problem: Problem) -> bool:
    """True when column generation can bound this depth-2 problem (built-in loss with a
    conjugate, and the arrangement small enough to enumerate or planar/linear)."""
    from .two_layer.column_generation import MAX_CELLS
    from .two_layer.fenchel import supported

    if not supported(problem.loss):
        return False
    r = len(factor_range(problem.H0)[0])
    return r <= 2 or problem.activation.is_linear or max_regions(problem.N, r) <= MAX_CELLS


def auto_method(problem: Problem, solver_options: dict | None = None) -> list[str]:
    """The methods ``method="auto"`` tries for a depth-2 problem, first choice first (see the
    module docstring); ``solver_options`` keep it on the cone programs."""
    r = len(factor_range(problem.H0)[0])
    if problem.activation.is_linear or problem.N <= 4:
        return ["pattern"]
    if r <= 2:  # both exact; measured (one process, lam = 0.05): column generation 4.6-64x
        # faster for one output at N = 5-24; several outputs: AUTO_PLANAR_CG_MIN_N
        cg = (solver_options is None and _cg_cells(problem)
              and (problem.k == 1 or problem.N >= AUTO_PLANAR_CG_MIN_N))
        return ["column_generation", "pattern"] if cg else ["pattern"]
    cg = solver_options is None and _cg_cells(problem)
    fast_pattern = pattern_time_estimate(problem) <= AUTO_PATTERN_SECONDS
    if cg:  # (k > 1 too since the k > 1 refinement: measured faster than the pattern program)
        return ["column_generation", "pattern"] if fast_pattern else ["column_generation"]
    return ["pattern"] if fast_pattern else ["lifted"]


def pattern_program_size(problem: Problem, first_layer: bool = True) -> int:
    """Estimated number of scalar block variables of the pattern program
    (patterns x r(r+1)/2, r the dimension the neurons live in)."""
    N = problem.N
    r = len(factor_range(problem.H0)[0]) if first_layer else N
    m = max_regions(N, r) if r < N else 2**N
    return m * r * (r + 1) // 2


def _recorded(res, problem: Problem):
    """``res`` carrying ``problem``'s record (what a saved result needs); other objects (test
    stubs) pass unchanged."""
    return res.with_problem(problem) if isinstance(res, Result) else res


def _check_options(problem, method, solver_options, tol):
    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected a conic_dnn.Problem, got {type(problem).__name__}")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    problem.require_homogeneous("solve")
    if solver_options is not None and not isinstance(solver_options, dict):
        raise TypeError(f"solver_options: expected a dict or None, got "
                        f"{type(solver_options).__name__}")
    if not (isinstance(tol, (int, float)) and 0 < tol < 1):
        raise ValueError(f"tol: expected a number in (0, 1), got {tol!r}")


def _representation(problem: Problem, method: str, force: bool) -> str:
    """The cone representation for ``method`` (``"auto"`` resolved); raises SizeLimitError
    for a pattern program above the size guard."""
    rep = method
    if method == "auto":
        # a planar first layer (rank(H0) <= 2, depth 2): every cell is a wedge and the pattern
        # program is exact and small (2 x 2 blocks) at any N
        planar = problem.depth == 2 and len(factor_range(problem.H0)[0]) <= 2
        rep = "pattern" if problem.N <= AUTO_PATTERN_MAX_N or planar else "lifted"
    if rep == "pattern" and not problem.activation.is_linear and not force:
        size = pattern_program_size(problem, first_layer=problem.depth == 2)
        if size > MAX_PATTERN_SIZE:
            raise SizeLimitError(
                f"method: the pattern program for N = {problem.N} would have ~{size:,} block "
                f"variables (limit {MAX_PATTERN_SIZE:,}); use method='lifted' (a relaxation), "
                f"a smaller N, or force=True")
        est = pattern_time_estimate(problem) if problem.depth == 2 else 0.0
        if est > MAX_PATTERN_SECONDS:
            raise SizeLimitError(
                f"method: the pattern program for N = {problem.N} is estimated at ~{est:,.0f} s "
                f"(limit {MAX_PATTERN_SECONDS:g} s); use method='column_generation' (exact for "
                f"one output), method='lifted' (a relaxation), or force=True")
    return rep


def solve(problem: Problem, method: str = "auto", solver: str | None = None,
          solver_options: dict | None = None, *, tol: float = 1e-6, polish: bool = True,
          force: bool = False, init=None, max_sweeps: int = 50, sweep: str = "both",
          seed: int = 0, progress: bool = False, n_starts: int | None = None,
          sweep_budget: float | None = SWEEP_BUDGET,
          time_limit: float | None = None) -> Result:
    """Solve an L2-regularised training problem through its covariance cone.

    Parameters
    ----------
    problem : Problem
        A problem with a positively homogeneous activation.
    method : {"auto", "pattern", "lifted", "column_generation"}
        Cone representation (see :mod:`conic_dnn.cone.covariance_cone`), or, for depth 2 with
        the squared loss, column generation (:func:`conic_dnn.solve_column_generation`: a
        group-lasso
        master over neuron directions, exact pricing when ``rank(H0) <= 2``, and a Fenchel
        dual lower bound; scales to N in the dozens).
    solver : {"CLARABEL", "MOSEK", "SCS"} or None
        None: Clarabel, then MOSEK (if licensed), then SCS, falling back on failure.
    solver_options : dict, optional
        Passed to cvxpy's ``Problem.solve`` (overrides the defaults of
        :data:`conic_dnn.solvers.DEFAULT_OPTIONS`).
    tol : float
        Depth 2: relative gap under which the result is ``certified``. Depth >= 3: relative
        improvement per sweep under which the sweeps stop.
    polish : bool
        Run L-BFGS from the recovered network (only accepted if it lowers the loss).
    force : bool
        Build a pattern program even above the size guard.
    init : Network, "linear" or "random", optional
        Depth >= 3: a starting network for the sweeps. None (default): the portfolio, i.e.
        ``n_starts`` seeded L-BFGS runs and the balanced linear start, each swept. A Network:
        **train anywhere, then certify and improve here** -- ``solve(problem, init=net)``
        sweeps from ``net`` (any width; made min-norm first), so the result is never worse
        than ``net``, and returns it pruned with its per-layer certificate
        (``info["certificate"]``); pass ``n_starts`` too to add the trained start.
    max_sweeps : int
        Depth >= 3: maximum number of sweeps over the layers.
    sweep : {"both", "backward", "forward"}
        Depth >= 3: layer order within a sweep; "both" (forward then backward, default) was
        the most robust in benchmarks/deep.py (mean excess over the best order 1e-4, against
        2e-2 and 3e-2).
    seed : int
        Seeds every random choice (restarts of the CP factorisation, random init, the deep
        portfolio's L-BFGS starts: the same as ``train_lbfgs(problem, 32, n_starts, seed)``).
    progress : bool
        Show a progress bar (depth >= 3).
    n_starts : int, optional
        Depth >= 3: seeded L-BFGS starts (:func:`conic_dnn.train_lbfgs`, width 32, seed
        ``seed``) whose best network is swept next to the linear start (or ``init``); the
        better result wins. Default: 10 without ``init``, none with it.
        ``info["start_objectives"]`` lists every training start, ``info["best_start"]`` the
        best, ``info["swept"]`` each swept start, ``info["winner"]`` the one returned.
    sweep_budget : float or None, default 12000
        Depth >= 3: work units the sweeps of all starts may use together (a step costs
        ``40 N^2`` plus the block variables of its layer program, e.g. 2560 + 9216 for a
        full-rank N = 8 layer; steps it cannot afford are skipped). Deterministic: results
        are bit-for-bit reproducible on any machine. None: only ``max_sweeps``, ``tol``
        and ``time_limit`` stop the sweeps.
    time_limit : float, optional
        Wall-clock budget in seconds for the whole solve (checked between rounds, sweeps,
        starts and fallbacks). When it runs out the best network found so far is returned
        with its bound, ``status="time_limit"`` and ``success=False``.

    Returns
    -------
    Result
        ``objective`` (loss of ``network``: an upper bound), ``lower_bound``, ``gap``,
        ``certified``, ``network``, ``covariances``, ``history``, ``status``, ``solver``...

    Raises
    ------
    ValueError, TypeError
        Invalid arguments, before any solver runs.
    SizeLimitError
        The pattern program would be too large (use ``method="lifted"`` or ``force=True``).
    SolverFailedError
        Every solver tried failed (the message lists them with their statuses).
    """
    _check_options(problem, method, solver_options, tol)
    deadline = Deadline(time_limit)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"seed: expected an integer >= 0, got {seed!r}")
    # depth >= 3 options are checked for every depth: a typo must not pass silently
    from .deep.alternating import SWEEPS

    if sweep not in SWEEPS:
        raise ValueError(f"sweep: expected one of {', '.join(SWEEPS)}, got {sweep!r}")
    for name, value in (("max_sweeps", max_sweeps), ("n_starts", n_starts)):
        if name == "n_starts" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    if sweep_budget is not None and (isinstance(sweep_budget, bool) or not isinstance(
            sweep_budget, (int, float)) or not sweep_budget > 0):
        raise ValueError(f"sweep_budget: expected a number > 0 or None, got {sweep_budget!r}")
    if method == "column_generation":
        if problem.depth != 2:
            raise ValueError(f"method: 'column_generation' is for depth 2, got depth "
                             f"{problem.depth}")
        if solver_options:
            raise ValueError("solver_options: not supported with method='column_generation'")
        from .two_layer.column_generation import solve_column_generation

        return _recorded(solve_column_generation(problem, tol=tol, solver=solver, seed=seed,
                                                 progress=progress, deadline=deadline), problem)
    if problem.depth == 2 and method == "auto":
        return _recorded(_solve_auto(problem, solver, solver_options, tol, polish, force, seed,
                                     progress, deadline), problem)
    try:
        rep = _representation(problem, method, force)
    except SizeLimitError as exc:
        if time_limit is None or problem.depth != 2:
            raise
        return _recorded(_budget_fallback(problem, method, exc, solver, solver_options, tol,
                                          polish, force, seed, progress, deadline), problem)
    if problem.depth == 2:
        from .two_layer.cone_program import solve_two_layer

        return _recorded(solve_two_layer(problem, rep, solver, solver_options,
                                         polish_network=polish, tol=tol, seed=seed,
                                         deadline=deadline), problem)
    from .deep.alternating import solve_alternating

    return _recorded(solve_alternating(problem, rep, solver, solver_options, init=init,
                                       n_starts=n_starts, max_sweeps=max_sweeps, tol=tol,
                                       sweep=sweep, polish=polish, seed=seed,
                                       progress=progress, sweep_budget=sweep_budget,
                                       deadline=deadline), problem)


def _budget_fallback(problem, method, exc, solver, solver_options, tol, polish, force, seed,
                     progress, deadline) -> Result:
    """Depth 2 with a ``time_limit``: a cone program the size guard refuses cannot finish in
    the budget, so the budget goes to what ``method="auto"`` runs instead (said in
    ``message`` and ``info["fallback"]``)."""
    res = _solve_auto(problem, solver, solver_options, tol, polish, force, seed, progress,
                      deadline)
    note = (f"method={method!r} was not run within time_limit={deadline.time_limit:g} s "
            f"({exc}); solved with {res.method!r} instead. ")
    return dataclasses.replace(res, message=note + res.message,
                               info={**res.info, "fallback": {"requested": method,
                                                              "reason": str(exc),
                                                              "used": res.method}})


def _solve_one(problem, method, solver, solver_options, tol, polish, force, seed, progress,
               deadline, extend=False):
    if method == "column_generation":
        from .two_layer.column_generation import solve_column_generation

        return solve_column_generation(problem, tol=tol, solver=solver, seed=seed,
                                       progress=progress, deadline=deadline, extend=extend)
    from .two_layer.cone_program import solve_two_layer

    rep = _representation(problem, method, force)
    return solve_two_layer(problem, rep, solver, solver_options, polish_network=polish,
                           tol=tol, seed=seed, deadline=deadline)


def _solve_auto(problem, solver, solver_options, tol, polish, force, seed, progress,
                deadline):
    """Depth 2, ``method="auto"``: the first method of :func:`auto_method` (on planar data
    followed, when it ends uncertified, by the exact pattern program); with a time limit it
    gets 60 % and the next one the rest when it ends uncertified (column generation, capped
    by its pricing budget, first spends its share on further passes with larger budgets:
    ``extend``)."""
    methods = auto_method(problem, solver_options)
    if methods[0] == "column_generation":
        from .two_layer.cone_program import zero_network_is_optimal

        if zero_network_is_optimal(problem):  # large lam: the cone program's closed form
            methods = ["pattern"]
    if deadline.time_limit is None:
        res = _solve_one(problem, methods[0], solver, solver_options, tol, polish, force, seed,
                         progress, deadline)
        if (methods[1:2] == ["pattern"] and len(factor_range(problem.H0)[0]) <= 2
                and not res.certified):  # planar: the exact program
            res = _merge(problem, res, _solve_one(problem, "pattern", solver, solver_options,
                                                  tol, polish, force, seed, progress,
                                                  deadline), tol)
            res.info["auto_methods"] = methods
        return res
    best = None
    for i, m in enumerate(methods):
        sub = deadline.fraction(0.6) if i < len(methods) - 1 else deadline
        if i > 0 and m == "pattern" and pattern_time_estimate(problem) > deadline.remaining():
            break  # the cone program does not stop between rounds: only if it fits
        try:
            res = _solve_one(problem, m, solver, solver_options, tol, polish, force, seed,
                             progress, sub, extend=True)
        except SizeLimitError:
            if best is None and i == len(methods) - 1:
                raise
            continue
        best = res if best is None else _merge(problem, best, res, tol)
        if best.certified or deadline.expired():
            break
    best.info["auto_methods"] = methods
    return best


def _merge(problem: Problem, a: Result, b: Result, tol: float) -> Result:
    """The better network of two solves of one problem, with the larger of their (valid)
    lower bounds."""
    res = a if a.objective <= b.objective else b
    lower = min(max(a.lower_bound, b.lower_bound), res.objective)
    gap = res.objective - lower
    return dataclasses.replace(res, lower_bound=float(lower), gap=float(gap),
                               certified=bool(gap <= certification_slack(problem, tol,
                                                                        res.objective)))


def solve_path(problem: Problem, lams, method: str = "auto", solver: str | None = None,
               solver_options: dict | None = None, *, tol: float = 1e-6, polish: bool = True,
               force: bool = False, seed: int = 0, progress: bool = False,
               time_limit: float | None = None) -> Path:
    """Solve a depth-2 problem for each regularisation strength in ``lams``.

    The cone program is built and compiled once and re-solved for each ``lam`` (a cvxpy
    Parameter, DPP), so the path costs one compilation instead of ``len(lams)``; every
    solve is otherwise exactly :func:`solve` (same decomposition, polish, bounds and
    certificate) on ``problem.replace(lam=lam)``.

    Parameters
    ----------
    problem : Problem
        Depth 2; its own ``lam`` is not used.
    lams : array_like, shape (n,)
        Positive, finite regularisation strengths, solved in the order given.
    method, solver, solver_options, tol, polish, force, seed
        As for :func:`solve`. With ``method="column_generation"``, and with ``"auto"`` when
        :func:`auto_method` puts column generation first (whenever its arrangement can be
        enumerated), each ``lam`` is solved independently by :func:`solve` (that
        method compiles nothing large); otherwise ``"auto"`` compiles its first choice
        (``"pattern"`` or ``"lifted"``) once.
    progress : bool, default False
        A tqdm progress bar over ``lams``.
    time_limit : float, optional
        Wall-clock budget in seconds for the whole path; the ``lam`` being solved when it runs
        out returns with ``status="time_limit"`` and the remaining ones are not solved.

    Returns
    -------
    Path
        A sequence of :class:`Result`, one per ``lam`` solved (indexing, ``len`` and iteration
        as for a list), with ``lams``, ``objectives``, ``lower_bounds``, ``rel_gaps``,
        ``widths`` and ``plot()``; ``info["program_reused"]`` (a compiled cone program) is
        True for all but the first.

    Raises
    ------
    ValueError, TypeError
        Invalid arguments (``lams`` empty, not 1-D, not positive and finite; depth != 2),
        before any solver runs.
    """
    _check_options(problem, method, solver_options, tol)
    deadline = Deadline(time_limit)
    if problem.depth != 2:
        raise ValueError(f"problem: solve_path needs depth 2 (one compiled program for the "
                         f"whole path), got depth {problem.depth}; call solve per lam")
    if isinstance(lams, (str, bytes)) or np.ndim(lams) != 1:
        raise TypeError(f"lams: expected a 1-D sequence of numbers, got {lams!r}")
    try:
        lam_values = np.asarray(lams, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"lams: expected a 1-D sequence of numbers, got {lams!r}") from None
    if lam_values.size == 0 or not np.all(np.isfinite(lam_values)) or np.any(lam_values <= 0):
        raise ValueError(f"lams: expected a non-empty sequence of finite numbers > 0, "
                         f"got {lams!r}")
    problems = [problem.replace(lam=float(v)) for v in lam_values]
    # "auto" resolves as solve's: when its first choice is column generation, each lam is
    # solved by solve(method="auto") (with its fallbacks); else one compiled cone program
    first = auto_method(problem, solver_options)[0] if method == "auto" else method
    rep = None if first == "column_generation" else _representation(problem, first, force)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(problems), desc="lam path", unit="lam")
    results, program = [], None
    try:
        for i, p in enumerate(problems):
            if rep is None:
                res = solve(p, method, solver, solver_options, tol=tol, polish=polish,
                            force=force, seed=seed,
                            time_limit=max(deadline.remaining(), 1e-9) if time_limit else None)
            else:
                from .two_layer.cone_program import build_program, solve_two_layer

                program = program or build_program(p, rep)
                res = solve_two_layer(p, rep, solver, solver_options, polish_network=polish,
                                      tol=tol, seed=seed, program=program, deadline=deadline)
                res.info["program_reused"] = i > 0
            results.append(_recorded(res, p))
            if deadline.expired():
                break
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return Path(lam_values[:len(results)], results)
