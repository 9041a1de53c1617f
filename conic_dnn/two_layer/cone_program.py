"""The exact two-layer solve (docs/MATH.md §3-4).

For depth 2 the covariance loss is jointly convex in ``(K_1, G_1, Z_2)`` over ``S_s``:

    min  C(Z_2) + lam * tr(K_1 pinv(G_0)) + lam * matrix_frac(Z_2, G_1 + bias^2 1 1^T)

with the neurons restricted to ``range(H_0)``, ``H_0 = [X, bias*1]`` (only the sign patterns
of the data's hyperplane arrangement). Its value is a lower bound — the global optimum when the
representation is exact (``pattern`` with N <= 4 or ``rank(H0) <= 2``, or the identity
activation). The solution is decomposed into neurons (CP factorisation of the blocks), reduced
to at most N(N+1) of them (Caratheodory), turned into a network (min-norm first layer, optimal
output layer) and, by default, polished by L-BFGS (for the squared loss, then by the exact
group-lasso master over its neuron directions); the *network's own loss* is the reported
objective.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..cone.layer_program import LayerProgram
from ..core.budget import TIME_LIMIT_STATUS, Deadline
from ..core.errors import SolverFailedError
from ..core.formulations import covariances_from_activations, loss_parameters
from ..core.losses import MSE
from ..core.result import Result, certification_slack
from ..core.scaling import lipschitz_constant, network_to_original, scale_problem
from ..neurons.decompose import caratheodory
from ..neurons.recovery import recover_neurons
from ..solvers import check_solver_options
from ..training.refine import network_from_hidden, polish

__all__ = ["solve_two_layer", "build_program"]


def _dual_available(problem) -> bool:
    """True when exact pricing applies (:func:`conic_dnn.two_layer.dual_bound.exact_available`:
    a linear activation, ``rank(H0) <= 2``, or one output with a small enough arrangement)
    and the cost's conjugate is implemented: the Fenchel dual bound is then rigorous and
    cheap, whatever the cone program's accuracy."""
    from .dual_bound import exact_available, supported

    return supported(problem.loss) and exact_available(problem)


#: Ridges of further attempts of the first solver when it is inaccurate or fails (the lower
#: bound comes from a verified dual point, never from the program's value, so a looser
#: program costs only tightness): measured on d = 2, Clarabel fails or is inaccurate at 1e-8
#: from N ~ 8 on, solves at 1e-6 up to N = 32 (0.2-0.8 s, where the SCS fallback took 10 s)
#: and at 1e-5 at N = 48, 64 (3 s, 10 s, where SCS took 57 s, 129 s).
RIDGE_LADDER = (1e-6, 1e-5)
RUNG_CLARABEL = {"max_iter": 500, "tol_gap_abs": 1e-8, "tol_gap_rel": 1e-8, "tol_feas": 1e-8,
                 "equilibrate_enable": False}


def _solve_program(problem, prog, ridge, solver, solver_options, deadline=None):
    """Solve the program; an inaccurate first solve is retried at the same ridge with
    :data:`RUNG_CLARABEL` (Clarabel without equilibration), then an inaccurate or failed one
    with the larger ridges of :data:`RIDGE_LADDER`, before falling back to the next solver (no
    further rung once ``deadline`` has expired). Returns ``(SolveInfo, ridge used)``."""
    # the rungs run Clarabel without equilibration: at N = 32, 48 (d = 2) it fails with it at
    # ridges 1e-6 and 1e-5 and solves without it (one measurement per (N, ridge)); at the
    # first ridge it turns two inaccurate solves optimal (N = 6, planar, OpenBLAS Haswell and
    # Zen kernels, where the program's value was otherwise that of ridge 1e-6: 1e-5 lower)
    rung_options = solver_options
    if solver_options is None and (solver is None or str(solver).upper() == "CLARABEL"):
        rung_options = {"CLARABEL": {**RUNG_CLARABEL}}
    rungs = [(ridge, solver_options, "")]
    if rung_options is not solver_options:
        rungs.append((ridge, rung_options, " (no equilibration)"))
    rungs += [(r, rung_options, f" (ridge {r:g})") for r in RIDGE_LADDER if r > ridge]
    before, t_comp, t_solv = [], 0.0, 0.0
    for i, (rid, options, tag) in enumerate(rungs):
        if i > 0 and rid == ridge and not (before and before[-1][1] == "optimal_inaccurate"):
            continue  # the same ridge again only for an inaccurate (not a failed) solve
        prog.set_ridge(rid)
        last = i == len(rungs) - 1 or (i > 0 and deadline is not None and deadline.expired())
        try:
            info = prog.solve(solver, options, layer=1, fallback=last, warn=last)
        except SolverFailedError as exc:
            if last:
                exc.attempts = before + [(n + tag, st) for n, st in exc.attempts or []]
                raise
            t_comp += float(getattr(prog.problem, "compilation_time", None) or 0.0)
            before += [(n + tag, st) for n, st in exc.attempts or []]
            continue
        tagged = [(n + tag, st) for n, st in info.attempts]
        if info.status == "optimal" or last:
            info.attempts = before + tagged
            info.compile_time += t_comp
            info.solver_time += t_solv
            return info, rid
        before += tagged
        t_comp += info.compile_time
        t_solv += info.solver_time
    raise AssertionError("unreachable")  # the last rung returns or raises


def _multipliers(prog) -> list | None:
    """The solver's multipliers ``N_P`` (N x N, symmetric, zero diagonal) of the blocks'
    entrywise nonnegativity, one per pattern, in the program's own units; None where the
    representation has no such constraint (wedges, lifted, identity) or no dual values."""
    cone = prog.cone
    if cone.patterns is None or cone.wedges is not None or len(cone.constraints) != 1:
        return None
    y = cone.constraints[0].dual_value
    N, m = prog.N, len(cone.patterns)
    n_up = N * (N - 1) // 2
    if y is None or np.size(y) != m * n_up:
        return None
    y = np.asarray(y, dtype=float).reshape(m, n_up)
    iu, ju = np.triu_indices(N, 1)
    out = []
    for i in range(m):
        Np = np.zeros((N, N))
        Np[iu, ju] = Np[ju, iu] = 0.5 * y[i]
        out.append(Np)
    return out


def _solver_duals(problem, prog) -> list:
    """Candidate dual points from the solver: ``-grad C`` at the solver's ``Z``, and
    ``Lam = -2 Psi`` with ``Psi`` the off-diagonal block of the multiplier of
    ``[[G, Z], [Z^T, T]] >> 0`` (its sign taken to agree with the first: any ``Lam`` is
    checked before it is used, so a wrong guess costs only tightness)."""
    out = []
    N = problem.N
    primal = None
    if prog.Z.value is not None and np.all(np.isfinite(prog.Z.value)):
        primal = -problem.loss.gradient(np.asarray(prog.Z.value), problem.Y)
        out.append(("solver primal", primal))
    D = prog.problem.constraints[-1].dual_value
    if D is not None and np.all(np.isfinite(D)):
        Lam = -2 * np.asarray(D, dtype=float)[:N, N:]
        if primal is not None and np.sum(Lam * primal) < 0:  # the sign convention, checked
            Lam = -Lam
        out.append(("solver dual", Lam))
    return out


#: Largest arrangement (cells) for which the lifted relaxation is certified cell by cell.
MAX_CERTIFIED_CELLS = 512


def _cells_for(problem, prog):
    """``(patterns, multipliers)`` for the cell certificate: the pattern program's own, or,
    for the lifted relaxation, the arrangement of ``H0`` when it has at most
    :data:`MAX_CERTIFIED_CELLS` cells (multipliers then come from a small SDP per cell)."""
    from ..cone.patterns import arrangement_patterns, max_regions, useful_patterns
    from ..core.linalg import factor_range

    if prog is not None and prog.cone.patterns is not None:
        mult = _multipliers(prog)
        if mult is not None:  # solver units (lam pinv(G0) - T Phi T) -> Lam Lam^T units
            mult = [4 * problem.lam * Np for Np in mult]
        return prog.cone.patterns, mult
    r = len(factor_range(problem.H0)[0])
    if max_regions(problem.N, r) > MAX_CERTIFIED_CELLS:
        return None, None
    act = problem.activation
    return useful_patterns(arrangement_patterns(problem.H0)[0], act.a, act.b), None


def _dual_points(problem, candidates, prog=None, deadline=None, fix: bool = False) -> list:
    """Certify each candidate ``Lam`` (repaired into the conjugate's domain): exact pricing
    where available, else the cell certificate (the pattern program's multipliers; with
    ``fix``, cells they leave violated get multipliers from their own small SDP — ~0.1 s per
    cell, so the callers spend it once, on the final network). Returns the
    :class:`DualPoint` s with a finite ``rho``."""
    from .dual_bound import DualPoint, exact_cells, repair, rho_cells, rho_exact, supported

    if not supported(problem.loss):
        return []
    exact = _dual_available(problem)
    patterns = multipliers = cells = None
    if exact:
        cells = exact_cells(problem)
    else:
        patterns, multipliers = _cells_for(problem, prog)
    points = []
    for source, Lam in candidates:
        if Lam is None or not np.all(np.isfinite(Lam)):
            continue
        Lam = repair(problem.loss, np.asarray(Lam, dtype=float), problem.Y)
        if exact:
            rho, method = rho_exact(problem, Lam, cells)
        elif patterns is not None:
            rho = rho_cells(problem, Lam, patterns, multipliers, repair=fix, deadline=deadline)
            method = "cells"
        else:
            continue
        if np.isfinite(rho):
            points.append(DualPoint(Lam, rho, source, method))
    return points


def _best_bound(original, scaling, points) -> tuple[float, str]:
    """The best lower bound over the dual points, evaluated on the *original* problem: ``Lam``
    and ``rho`` mapped back (``rho(Lam / b) = rho_int(Lam) / (a b)`` on the internal data mapped
    back), ``rho`` widened by the Lipschitz bound of the distance between those data and the
    user's (:attr:`Scaling.residual`: Gram reduction, rounding)."""
    from .dual_bound import dual_value

    kappa = lipschitz_constant(original)
    best, how = float("-inf"), ""
    for pt in points:
        Lam = pt.Lam / scaling.y_scale
        rho = pt.rho / (scaling.x_scale * scaling.y_scale)
        if scaling.residual > 0:
            rho = rho + kappa * float(np.linalg.norm(Lam, 2)) * scaling.residual * (1 + 1e-9)
        v = dual_value(original, Lam, rho)
        if v > best:
            best, how = v, f"{pt.method} pricing at the {pt.source}"
    return best, how




def _master_refine(problem, net):
    """Squared loss: the optimal output weights for the network's own neuron directions, by
    the group-lasso master of column generation (duality gap 1e-12 over these directions;
    :func:`conic_dnn.two_layer.group_lasso.master_numpy`). The polish stops at a gradient
    tolerance; this exact step is what lets the dual bound certify large instances.
    Run only when the gap is
    still open (it can take 0.3 s for k = 3); kept only if the loss drops."""
    from .column_generation import _network
    from .group_lasso import master_cvxpy, master_numpy

    W1, W2 = net.weights
    norms = np.linalg.norm(W1, axis=1)
    live = norms > 0
    if not np.any(live):
        return net
    U = (W1[live] / norms[live, None]).T
    V0 = (W2[:, : W1.shape[0]][:, live] * norms[live]).T
    c0 = W2[:, -1] if problem.bias > 0 else None
    V, c, _, converged = master_numpy(problem, U, V0, c0)
    if not converged:  # the SOC program over the same directions (as column generation does)
        try:
            V, c, _ = master_cvxpy(problem, U, None)
        except SolverFailedError:
            return net
    cand, _ = _network(problem, U, V, c)
    if loss_parameters(problem, cand.weights) < loss_parameters(problem, net.weights):
        return cand
    return net


def build_program(problem, representation: str = "pattern", ridge: float = 1e-8
                  ) -> LayerProgram:
    """The depth-2 cone program of ``problem``'s data, built on the internally scaled problem
    (:func:`conic_dnn.core.scaling.scale_problem`); ``lam`` and ``Y`` are Parameters, so one
    program serves every ``lam`` (and target) on the same inputs ``X``
    (:func:`conic_dnn.solve_path`)."""
    internal, _ = scale_problem(problem)
    prog = LayerProgram(internal.N, internal.activation, last=True, loss=internal.loss,
                        k=internal.k, bias=internal.bias, representation=representation,
                        H=internal.H0, ridge=ridge)
    prog.built_for = internal.H0.copy()  # reused only on the same internal data
    return prog


def _zero_network(problem, solver, solver_options):
    """The network without hidden neurons (output bias only, when ``bias > 0``)."""
    return network_from_hidden(problem, [np.zeros((problem.N, 0))], solver, solver_options)


def _zero_is_optimal(internal, zero) -> list:
    """Dual points proving that no hidden neuron helps (``rho(Lam) <= 2 lam`` at
    ``Lam = -grad C`` of the zero network, by the closed-form ``rho`` bound: large ``lam``)."""
    from .dual_bound import DualPoint, repair, rho_crude, supported

    if not supported(internal.loss):
        return []
    Lam = repair(internal.loss, -internal.loss.gradient(zero.predict(internal.X), internal.Y),
                 internal.Y)
    rho = rho_crude(internal, Lam)
    return [DualPoint(Lam, rho, "zero network", "closed-form")] if rho <= 2 * internal.lam \
        else []


def zero_network_is_optimal(problem) -> bool:
    """True when the closed-form test of :func:`solve_two_layer` (large ``lam``) proves the
    network without hidden neurons optimal, so that no program needs to run."""
    internal, _ = scale_problem(problem)
    return bool(_zero_is_optimal(internal, _zero_network(internal, None, None)))


def _network_from_solution(internal, prog, sol, solver, solver_options, seed):
    rec = recover_neurons(sol, internal.activation, seed=seed)
    Q = prog.cone.Q
    Z1 = Q @ (Q.T @ rec.Z)  # exactly in range(H_0): removes solver round-off
    n_recovered = Z1.shape[1]
    if n_recovered > 0:
        keep, c = caratheodory(Z1, internal.activation)
        Z1 = Z1[:, keep] * np.sqrt(c)
    return network_from_hidden(internal, [Z1], solver, solver_options), rec, n_recovered


def _message(lower, certified, how, exact, residual, zero_shortcut):
    if zero_shortcut:
        return ("the zero network is optimal: lam is above the closed-form threshold "
                "kappa ||grad C(0)||_2 sigma_max(H0) / 2 (no cone program solved)")
    if not np.isfinite(lower):
        return ("no valid lower bound: no dual point could be verified on this instance "
                "(no exact pricing and no cell certificate for this representation or cost); "
                "the objective is the loss of a real network, not a certified optimum")
    if certified:
        return f"global optimum certified by a verified dual point ({how})"
    if exact:
        return (f"valid lower bound from a verified dual point ({how}); the recovered network "
                f"is above it (decomposition residual {residual:.2g}): the gap is honest")
    return (f"valid lower bound from a verified dual point ({how}) of a relaxation; the gap "
            f"is honest")


def solve_two_layer(problem, representation: str = "pattern", solver=None, solver_options=None,
                    polish_network: bool = True, tol: float = 1e-6, ridge: float = 1e-8,
                    seed: int = 0, program: LayerProgram | None = None,
                    deadline: Deadline | None = None) -> Result:
    """Globally solve a depth-2 problem (see :func:`conic_dnn.solve`). ``program``: one made
    by :func:`build_program` for a problem with the same ``X``, bias, activation, loss and
    representation (re-solved without recompiling).

    The solvers see the internally scaled (and, for ``d > N``, Gram-reduced) problem; the
    network is mapped back exactly and its loss is recomputed on ``problem``. The lower bound
    is the value, on ``problem``, of a dual point whose feasibility was verified in floating
    point (:mod:`conic_dnn.two_layer.dual_bound`) — never the program's value."""
    t0 = time.perf_counter()
    check_solver_options(solver_options, solver)  # a typo is an error before any solve
    deadline = deadline if deadline is not None else Deadline(None)
    internal, scaling = scale_problem(problem)
    zero = _zero_network(internal, solver, solver_options)
    points = _zero_is_optimal(internal, zero)
    info_extra = {"scaling": scaling.as_dict(), "program_reused": False}
    if points:  # large lam: the zero network is optimal, no program needed
        return _finish(problem, internal, scaling, zero, points, tol, t0, status="optimal",
                       solver_name="none", exact=True, representation=representation,
                       extra={**info_extra, "attempts": [], "program_value": None},
                       zero_shortcut=True)
    if deadline.expired():  # no time for a program: the zero network, a closed-form bound
        from .dual_bound import DualPoint, repair, rho_crude, supported

        Lam = repair(internal.loss, -internal.loss.gradient(zero.predict(internal.X),
                                                            internal.Y), internal.Y)
        pts = ([DualPoint(Lam, rho_crude(internal, Lam), "zero network", "closed-form")]
               if supported(internal.loss) else [])
        return _finish(problem, internal, scaling, zero, pts, tol, t0, status=TIME_LIMIT_STATUS,
                       solver_name="none", exact=False, representation=representation,
                       extra={**info_extra, "attempts": [], "program_value": None})
    reused = program is not None and np.array_equal(getattr(program, "built_for", None),
                                                    internal.H0)
    prog = program if reused else build_program(problem, representation, ridge)
    info_extra["program_reused"] = reused
    prog.set_data(internal.lam, internal.G0, Y=internal.Y)
    try:
        info, ridge_used = _solve_program(internal, prog, ridge, solver, solver_options,
                                          deadline)
    except SolverFailedError as exc:  # a valid input: still a network and a valid bound
        return _without_program(problem, internal, scaling, prog, zero, exc, tol, t0, seed,
                                representation, info_extra)
    sol = prog.read(info)
    net, rec, n_recovered = _network_from_solution(internal, prog, sol, solver, solver_options,
                                                   seed)
    obj_unpolished = loss_parameters(internal, net.weights) / scaling.loss_scale
    solver_points = _dual_points(internal, _solver_duals(internal, prog), prog)
    if polish_network and not deadline.expired():
        net = polish(internal, net)

    def certify(candidate):
        Lam = -internal.loss.gradient(candidate.predict(internal.X), internal.Y)
        pts = solver_points + _dual_points(internal, [("returned network", Lam)], prog)
        return pts

    points = certify(net)
    lower, _ = _best_bound(problem, scaling, points)
    net_orig = network_to_original(scaling, net, problem)
    objective = loss_parameters(problem, net_orig.weights)
    if (polish_network and isinstance(internal.loss, MSE) and not deadline.expired()
            and objective - lower > certification_slack(problem, tol, objective)):
        refined = _master_refine(internal, net)  # exact output step: only while the gap is open
        if refined is not net:
            net, points = refined, certify(refined)
    if loss_parameters(internal, zero.weights) <= loss_parameters(internal, net.weights):
        net, points = zero, points + certify(zero)  # e.g. Y = 0
    points = points + _repaired_point(problem, internal, scaling, net, points, prog, tol,
                                      deadline)
    status = TIME_LIMIT_STATUS if deadline.expired() else info.status
    extra = {**info_extra, "attempts": info.attempts, "compile_time": info.compile_time,
             "solver_time": info.solver_time, "iterations": info.iterations,
             "n_patterns": 0 if prog.cone.patterns is None else len(prog.cone.patterns),
             "decomposition_residual": rec.residual, "failed_blocks": rec.failed_blocks,
             "neurons_recovered": n_recovered, "objective_before_polish": obj_unpolished,
             "program_value": float(sol.value) / scaling.loss_scale, "ridge": ridge_used}
    return _finish(problem, internal, scaling, net, points, tol, t0, status=status,
                   solver_name=info.solver, exact=prog.exact, representation=representation,
                   extra=extra, residual=rec.residual)


def _repaired_point(problem, internal, scaling, net, points, prog, tol, deadline) -> list:
    """The final network's dual point with every violated cell repaired by its own SDP, when
    the points at hand do not certify (and there is time)."""
    net_orig = network_to_original(scaling, net, problem)
    objective = loss_parameters(problem, net_orig.weights)
    lower, _ = _best_bound(problem, scaling, points)
    if objective - lower <= certification_slack(problem, tol, objective) or deadline.expired():
        return []
    Lam = -internal.loss.gradient(net.predict(internal.X), internal.Y)
    return _dual_points(internal, [("returned network", Lam)], prog, deadline, fix=True)


def _without_program(problem, internal, scaling, prog, zero, exc, tol, t0, seed,
                     representation, extra) -> Result:
    """Every solver failed on the program: the best of the zero network and multi-start
    L-BFGS (width 2N), with whatever dual point can still be verified (exact pricing, or the
    cell certificate with multipliers from the cells' own small SDPs)."""
    from ..training.gradient import train_lbfgs

    net = zero
    trained = train_lbfgs(internal, 2 * internal.N, n_starts=3, seed=seed, max_iter=3000)
    if trained.objective < loss_parameters(internal, zero.weights):
        net = trained.network
    Lam = -internal.loss.gradient(net.predict(internal.X), internal.Y)
    prog_cells = prog if prog.cone.patterns is not None else None
    points = _dual_points(internal, [("returned network", Lam)], prog_cells, fix=True)
    tried = "; ".join(f"{n}: {st}" for n, st in exc.attempts or [])
    res = _finish(problem, internal, scaling, net, points, tol, t0, status="solver_failed",
                  solver_name=str(exc.solver or ""), exact=False,
                  representation=representation,
                  extra={**extra, "attempts": list(exc.attempts or []), "program_value": None})
    msg = (f"the cone program could not be solved ({tried}); returned the best of the zero "
           f"network and multi-start L-BFGS with a verified dual bound. " + res.message)
    return dataclasses.replace(res, success=False, message=msg)


def _finish(problem, internal, scaling, net, points, tol, t0, *, status, solver_name, exact,
            representation, extra, residual=0.0, zero_shortcut=False) -> Result:
    """Map the internal network back, recompute its loss on ``problem``, evaluate the dual
    points there and assemble the :class:`Result`."""
    net_orig = network_to_original(scaling, net, problem)
    objective = loss_parameters(problem, net_orig.weights)
    lower, how = _best_bound(problem, scaling, points)
    raw_lower = lower
    lower = min(lower, objective)  # a valid bound is below every network's loss already
    slack = certification_slack(problem, tol, objective)
    certified = bool(np.isfinite(lower) and objective - lower <= slack)
    Zs = net_orig.forward(problem.X)
    covs = covariances_from_activations(problem, Zs)
    from .dual_bound import EXACT_METHODS

    rigorous = [p for p in points if p.method in EXACT_METHODS]
    dual, dual_method = None, ""
    if rigorous:
        dual, dual_method = _best_bound(problem, scaling, rigorous)[0], rigorous[0].method
    time_out = status == TIME_LIMIT_STATUS
    msg = _message(lower, certified, how, exact, residual, zero_shortcut)
    if time_out:
        msg = "time limit reached: the best network so far, with its valid bound. " + msg
    return Result(
        objective=objective, lower_bound=lower, gap=objective - lower, certified=certified,
        network=net_orig, covariances=covs, history=[objective], status=status,
        solver=solver_name, solve_time=time.perf_counter() - t0, success=not time_out,
        message=msg, method=representation, exact=exact,
        info={**extra, "dual_bound": dual, "dual_pricing": dual_method, "bound_source": how,
              "raw_lower_bound": raw_lower},
    )
