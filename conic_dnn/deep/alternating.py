"""The depth >= 3 entry point: the portfolio (:mod:`conic_dnn.deep.portfolio`) turned into a
:class:`~conic_dnn.core.result.Result` with the winner's per-layer certificate.

The modules of this stage: ``starts.py`` (starting networks), ``sweeps.py`` (layer steps and
sweeps, the program cache), ``moves.py`` (escape, joint mode deletion, dead neurons),
``portfolio.py`` (training, sweeps from each start, finishing, the winner).
"""

from __future__ import annotations

import time
import warnings

from ..core.budget import TIME_LIMIT_STATUS, Deadline
from ..core.errors import InaccurateSolutionWarning
from ..core.formulations import covariances_from_activations
from ..core.result import Result
from .certified import CERTIFY_ROUNDS, certify_and_improve
from .portfolio import CERTIFY_TOL, SWEEP_BUDGET, TRAIN_WIDTH, Portfolio, run_portfolio
from .starts import initial_network
from .sweeps import SUBSPACE_RTOL, SWEEPS

__all__ = ["solve_alternating", "initial_network", "SWEEPS", "SUBSPACE_RTOL"]


def _check(sweep, max_sweeps, n_starts, sweep_budget):
    if sweep not in SWEEPS:
        raise ValueError(f"sweep: expected one of {', '.join(SWEEPS)}, got {sweep!r}")
    if isinstance(max_sweeps, bool) or not isinstance(max_sweeps, int) or max_sweeps < 1:
        raise ValueError(f"max_sweeps: expected a positive integer, got {max_sweeps!r}")
    if n_starts is not None and (isinstance(n_starts, bool) or not isinstance(n_starts, int)
                                 or n_starts < 0):
        raise ValueError(f"n_starts: expected an integer >= 0 or None, got {n_starts!r}")
    if sweep_budget is not None and (isinstance(sweep_budget, bool) or not isinstance(
            sweep_budget, (int, float)) or not sweep_budget > 0):
        raise ValueError(f"sweep_budget: expected a number > 0 or None, got {sweep_budget!r}")


def _info(pf: Portfolio, cert) -> dict:
    """The result's ``info``: every start, the winner, the counters of the winner's sweeps."""
    run = pf.runs[pf.winner] if pf.winner in pf.runs else next(iter(pf.runs.values()))
    tr = pf.training
    runs = list(pf.runs.values())
    return {
        "winner": pf.winner,
        "start_objectives": list(tr.runs) if tr is not None else [],
        "best_start": tr.best_start if tr is not None else None,
        "training_time": tr.solve_time if tr is not None else 0.0,
        "swept": {name: {"start": r.history[0], "swept": r.objective,
                         "finished": pf.finished[name], "sweeps": r.sweeps,
                         "converged": r.converged, "escapes": r.escapes,
                         "deletions": r.deletions, "timed_out": r.timed_out}
                  for name, r in pf.runs.items()},
        "sweeps": run.sweeps, "rejected_steps": sum(r.rejected for r in runs),
        "skipped_steps": sum(r.skipped for r in runs), "work": sum(r.work for r in runs),
        "inaccurate_steps": sum(r.inaccurate for r in runs), "escapes": run.escapes,
        "deletions": run.deletions, "failed_steps": sum(r.failed for r in runs),
        "compile_time": sum(r.compile_time for r in runs),
        "solver_time": sum(r.solver_time for r in runs),
        "attempts": [a for r in runs for a in r.attempts],
        "programs_built": pf.programs.builds,
        "certificate": cert,
        "layer_certified": [lc.certified for lc in cert.layers] if cert is not None else [],
    }


def _warn(info):
    if info["failed_steps"]:
        warnings.warn(f"{info['failed_steps']} layer program(s) could not be solved and were "
                      f"skipped (solver failures: see info['attempts'])",
                      InaccurateSolutionWarning, stacklevel=4)
    if info["inaccurate_steps"]:
        warnings.warn(f"{info['inaccurate_steps']} layer program(s) were solved only to reduced "
                      f"accuracy (optimal_inaccurate); every step was checked by the network's "
                      f"own loss", InaccurateSolutionWarning, stacklevel=4)


def solve_alternating(problem, representation="pattern", solver=None, solver_options=None, *,
                      init=None, n_starts: int | None = None, max_sweeps: int = 50,
                      tol: float = 1e-6, sweep: str = "both", polish: bool = True,
                      seed: int = 0, progress: bool = False, max_moves: int = 10,
                      escape_tol: float = 1e-3, sweep_budget: float | None = SWEEP_BUDGET,
                      width: int = TRAIN_WIDTH, certify_tol: float = CERTIFY_TOL,
                      certify_rounds: int = CERTIFY_ROUNDS,
                      deadline: Deadline | None = None) -> Result:
    """Depth >= 3: the portfolio, then the winner's per-layer certificate, improved by at most
    ``certify_rounds`` verified improving neurons (:mod:`conic_dnn.deep.certified`; see
    :func:`conic_dnn.solve` for the other options)."""
    _check(sweep, max_sweeps, n_starts, sweep_budget)
    t0 = time.perf_counter()
    deadline = deadline or Deadline(None)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(desc="sweeps", unit="sweep")
    try:
        pf = run_portfolio(problem, representation, solver, solver_options, init=init,
                           n_starts=n_starts, width=width, max_sweeps=max_sweeps, tol=tol,
                           sweep=sweep, polish=polish, seed=seed, max_moves=max_moves,
                           escape_tol=escape_tol, sweep_budget=sweep_budget,
                           deadline=deadline, bar=bar)
    finally:
        if bar is not None:
            bar.close()
    cert, rounds = None, 0
    if not pf.timed_out:
        net, obj, cert, rounds, hist = certify_and_improve(
            problem, pf.network, pf.objective, certify_tol, rounds=certify_rounds,
            polish=polish, solver=solver, solver_options=solver_options, seed=seed,
            progs=pf.programs, deadline=deadline)
        if obj < pf.objective:
            pf.network, pf.objective = net, obj
            pf.history = pf.history + hist
    info = _info(pf, cert)
    info["certify_rounds"] = rounds
    _warn(info)
    net, obj = pf.network, pf.objective
    run = pf.runs[pf.winner]
    status = TIME_LIMIT_STATUS if pf.timed_out else run.status
    n_cert = sum(info["layer_certified"])
    msg = (f"portfolio of {len(pf.runs)} start(s) ({', '.join(pf.runs)}), best: {pf.winner} "
           f"({run.sweeps} sweep(s), {run.escapes} escape(s), {run.deletions} mode "
           f"deletion(s)"
           + (f", {info['failed_steps']} failed layer program(s) skipped" if info["failed_steps"]
              else "") + "); "
           + ("stopped at the time limit, not certified; " if pf.timed_out else
              f"{n_cert}/{problem.depth - 1} layer(s) certified (tol {certify_tol:g}); ")
           + "no global lower bound for depth >= 3")
    return Result(
        objective=obj, lower_bound=float("-inf"), gap=float("inf"), certified=False,
        network=net, covariances=covariances_from_activations(problem, net.forward(problem.X)),
        history=pf.history, status=status, solver=run.solver,
        solve_time=time.perf_counter() - t0, success=not pf.timed_out, message=msg,
        method=f"alternating/{representation}", exact=False, info=info)
