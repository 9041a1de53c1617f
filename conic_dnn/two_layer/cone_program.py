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

import time

import numpy as np

from ..cone.layer_program import LayerProgram
from ..core.budget import Deadline
from ..core.errors import SolverFailedError
from ..core.formulations import covariances_from_activations, loss_parameters
from ..core.result import Result
from ..neurons.decompose import caratheodory
from ..neurons.recovery import recover_neurons
from ..training.refine import network_from_hidden, polish

__all__ = ["solve_two_layer", "build_program"]


def _dual_available(problem) -> bool:
    """True when the Fenchel dual bound is exact and cheap: squared loss and
    ``rank(H0) <= 2`` or a linear activation."""
    from ..core.losses import MSE

    if not isinstance(problem.loss, MSE):
        return False
    return bool(problem.activation.a == problem.activation.b
                or np.linalg.matrix_rank(problem.H0) <= 2)


def _dual_bound(problem, Zs_out):
    """Rigorous lower bound from the Fenchel dual at ``Lam = -grad C(Z)`` of the returned
    network (:func:`conic_dnn.two_layer.column_generation.lower_bound`), when its pricing is
    exact and cheap (:func:`_dual_available`). ``(None, "")`` otherwise."""
    from .pricing import lower_bound, price

    if not _dual_available(problem):
        return None, ""
    Lam = -problem.loss.gradient(Zs_out, problem.Y)
    rho, _, method = price(problem, Lam)
    return float(lower_bound(problem, Lam, rho)), method


#: Ridges of further attempts of the first solver when it is inaccurate or fails (only where
#: the dual bound certifies, so the looser program value is not needed): measured on d = 2,
#: Clarabel fails or is inaccurate at 1e-8 from N ~ 8 on, solves at 1e-6 up to N = 32
#: (0.2-0.8 s, where the SCS fallback took 10 s) and at 1e-5 at N = 48, 64 (3 s, 10 s, where
#: SCS took 57 s, 129 s).
RIDGE_LADDER = (1e-6, 1e-5)
RUNG_CLARABEL = {"max_iter": 500, "tol_gap_abs": 1e-8, "tol_gap_rel": 1e-8, "tol_feas": 1e-8,
                 "equilibrate_enable": False}


def _solve_program(problem, prog, ridge, solver, solver_options):
    """Solve the program; with a rigorous dual bound available, an inaccurate or failed
    first solver is retried with the larger ridges of :data:`RIDGE_LADDER` before falling back
    to the next solver. Returns ``(SolveInfo, ridge used)``."""
    ladder = [r for r in RIDGE_LADDER if r > ridge] if _dual_available(problem) else []
    # the rungs run Clarabel without equilibration: at N = 32, 48 (d = 2) it fails with it at
    # ridges 1e-6 and 1e-5 and solves without it (one measurement per (N, ridge))
    rung_options = solver_options
    if solver_options is None and (solver is None or str(solver).upper() == "CLARABEL"):
        rung_options = {"CLARABEL": {**RUNG_CLARABEL}}
    before, t_comp, t_solv = [], 0.0, 0.0
    for i, rid in enumerate([ridge, *ladder]):
        prog.set_ridge(rid)
        last = i == len(ladder)
        try:
            info = prog.solve(solver, solver_options if i == 0 else rung_options, layer=1,
                              fallback=last, warn=last)
        except SolverFailedError as exc:
            if last:
                raise
            t_comp += float(getattr(prog.problem, "compilation_time", None) or 0.0)
            before += [(f"{n} (ridge {rid:g})" if i else n, st) for n, st in exc.attempts or []]
            continue
        tagged = [(f"{n} (ridge {rid:g})" if i else n, st) for n, st in info.attempts]
        if info.status == "optimal" or last:
            info.attempts = before + tagged
            info.compile_time += t_comp
            info.solver_time += t_solv
            return info, rid
        before += tagged
        t_comp += info.compile_time
        t_solv += info.solver_time
    raise AssertionError("unreachable")  # the last rung returns or raises


def _bounds(problem, net, value: float, tol: float) -> dict:
    """The network's loss and the best lower bound: the program's value if the solver was
    accurate (a value above the loss of a real network proves it was not, beyond the slack;
    within it the value is clipped to that loss, so a lower bound never exceeds the objective)
    and the rigorous dual bound where available (it replaces an invalid or lower value)."""
    objective = loss_parameters(problem, net.weights)
    slack = tol * abs(objective) + 1e-14  # relative: objectives can be ~1e-7 on scaled data
    valid = value <= objective + slack
    lower = min(value, objective) if valid else float("-inf")
    dual, method = _dual_bound(problem, Zs_out=net.predict(problem.X))
    if dual is not None and dual > lower:
        lower, valid = dual, True
    return {"objective": objective, "slack": slack, "valid": valid, "lower": lower,
            "dual": dual, "dual_method": method,
            "certified": bool(valid and objective - lower <= slack)}


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
    """The depth-2 cone program of ``problem``'s data; ``lam`` and ``Y`` are Parameters, so
    one program serves every ``lam`` (and target) on the same inputs ``X``
    (:func:`conic_dnn.solve_path`)."""
    return LayerProgram(problem.N, problem.activation, last=True, loss=problem.loss,
                        k=problem.k, bias=problem.bias, representation=representation,
                        H=problem.H0, ridge=ridge)


def solve_two_layer(problem, representation: str = "pattern", solver=None, solver_options=None,
                    polish_network: bool = True, tol: float = 1e-6, ridge: float = 1e-8,
                    seed: int = 0, program: LayerProgram | None = None,
                    deadline: Deadline | None = None) -> Result:
    """Globally solve a depth-2 problem (see :func:`conic_dnn.solve`). ``program``: one made
    by :func:`build_program` for a problem with the same ``X``, bias, activation, loss and
    representation (re-solved without recompiling)."""
    t0 = time.perf_counter()
    N, act = problem.N, problem.activation
    reused = program is not None
    prog = program if reused else build_program(problem, representation, ridge)
    prog.set_data(problem.lam, problem.G0, Y=problem.Y)
    info, ridge_used = _solve_program(problem, prog, ridge, solver, solver_options)
    sol = prog.read(info)
    rec = recover_neurons(sol, act, seed=seed)
    Q = prog.cone.Q
    Z1 = Q @ (Q.T @ rec.Z)  # exactly in range(H_0): removes solver round-off
    n_recovered = Z1.shape[1]
    if n_recovered > 0:
        keep, c = caratheodory(Z1, act)
        Z1 = Z1[:, keep] * np.sqrt(c)
    net = network_from_hidden(problem, [Z1], solver, solver_options)
    obj_unpolished = loss_parameters(problem, net.weights)
    value = float(sol.value)
    if polish_network:
        net = polish(problem, net)
    bounds = _bounds(problem, net, value, tol)
    if polish_network and _dual_available(problem) and not bounds["certified"]:
        refined = _master_refine(problem, net)  # exact output step: only while the gap is open
        if refined is not net:
            net, bounds = refined, _bounds(problem, refined, value, tol)
    zero = network_from_hidden(problem, [np.zeros((N, 0))], solver, solver_options)
    if loss_parameters(problem, zero.weights) <= bounds["objective"]:  # e.g. Y = 0
        net, bounds = zero, _bounds(problem, zero, value, tol)
    objective, lower, valid = bounds["objective"], bounds["lower"], bounds["valid"]
    dual, dual_method, certified = bounds["dual"], bounds["dual_method"], bounds["certified"]
    gap = objective - lower
    Zs = net.forward(problem.X)
    covs = covariances_from_activations(problem, Zs)
    if dual is not None and lower == dual:
        msg = (f"global optimum certified by the Fenchel dual bound ({dual_method} pricing)"
               if certified else f"Fenchel dual lower bound ({dual_method} pricing); the gap "
               f"is honest")
    elif not valid:
        msg = (f"no valid lower bound: the cone program's reported value {value:.10g} exceeds "
               f"the loss {objective:.10g} of the returned network, so the solver "
               f"({info.solver}, {info.status}) was inaccurate on this instance (badly scaled "
               f"data or lam?)")
    elif certified:
        msg = "global optimum certified: the network's loss matches the cone program's value"
    elif prog.exact:
        msg = ("exact cone program, but the recovered network is above its value "
               f"(decomposition residual {rec.residual:.2g}); the gap is honest")
    else:
        msg = ("relaxation: the lower bound comes from a cone program that contains S_s "
               "strictly; the gap is honest")
    return Result(
        objective=objective, lower_bound=lower, gap=gap, certified=certified, network=net,
        covariances=covs, history=[objective], status=info.status, solver=info.solver,
        solve_time=time.perf_counter() - t0, success=True, message=msg,
        method=representation, exact=prog.exact,
        info={"attempts": info.attempts, "compile_time": info.compile_time,
              "solver_time": info.solver_time, "iterations": info.iterations,
              "n_patterns": 0 if prog.cone.patterns is None else len(prog.cone.patterns),
              "decomposition_residual": rec.residual, "failed_blocks": rec.failed_blocks,
              "neurons_recovered": n_recovered, "objective_before_polish": obj_unpolished,
              "program_value": value, "dual_bound": dual, "dual_pricing": dual_method,
              "program_reused": reused, "ridge": ridge_used},
    )
