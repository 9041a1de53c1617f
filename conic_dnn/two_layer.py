"""The exact two-layer solve (MATH.md §3-4).

For depth 2 the covariance loss is jointly convex in ``(K_1, G_1, Z_2)`` over ``S_s``:

    min  C(Z_2) + lam * tr(K_1 pinv(G_0)) + lam * matrix_frac(Z_2, G_1 + bias^2 1 1^T)

with the neurons restricted to ``range(H_0)``, ``H_0 = [X, bias*1]`` (only the sign patterns
of the data's hyperplane arrangement). Its value is a lower bound — the global optimum when the
representation is exact (``pattern`` with N <= 4, or the identity activation). The solution is
decomposed into neurons (CP factorisation of the blocks), reduced to at most N(N+1) of them
(Caratheodory), turned into a network (min-norm first layer, optimal output layer) and, by
default, polished by L-BFGS; the *network's own loss* is the reported objective.
"""

from __future__ import annotations

import time

import numpy as np

from .decompose import caratheodory
from .formulations import covariances_from_activations, loss_parameters
from .layer import LayerProgram
from .recovery import recover_neurons
from .refine import network_from_hidden, polish
from .result import Result

__all__ = ["solve_two_layer", "build_program"]


def _dual_bound(problem, Zs_out):
    """Rigorous lower bound from the Fenchel dual at ``Lam = -grad C(Z)`` of the returned
    network (:func:`conic_dnn.column_generation.lower_bound`), when its pricing is exact and
    cheap: squared loss and ``rank(H0) <= 2`` or a linear activation. ``(None, "")``
    otherwise."""
    from .losses import MSE
    from .pricing import lower_bound, price

    if not isinstance(problem.loss, MSE):
        return None, ""
    if not problem.activation.a == problem.activation.b \
            and np.linalg.matrix_rank(problem.H0) > 2:
        return None, ""
    Lam = -problem.loss.gradient(Zs_out, problem.Y)
    rho, _, method = price(problem, Lam)
    return float(lower_bound(problem, Lam, rho)), method


def build_program(problem, representation: str = "pattern", ridge: float = 1e-8
                  ) -> LayerProgram:
    """The depth-2 cone program of ``problem``'s data; ``lam`` and ``Y`` are Parameters, so
    one program serves every ``lam`` (and target) on the same inputs ``X``
    (:func:`conic_dnn.solve_path`)."""
    return LayerProgram(problem.N, problem.activation, last=True, loss=problem.loss,
                        k=problem.k, bias=problem.bias, representation=representation,
                        H=problem.H0, ridge=ridge, G_scale=problem.G0)


def solve_two_layer(problem, representation: str = "pattern", solver=None, solver_options=None,
                    polish_network: bool = True, tol: float = 1e-6, ridge: float = 1e-8,
                    seed: int = 0, program: LayerProgram | None = None) -> Result:
    """Globally solve a depth-2 problem (see :func:`conic_dnn.solve`). ``program``: one made
    by :func:`build_program` for a problem with the same ``X``, bias, activation, loss and
    representation (re-solved without recompiling)."""
    t0 = time.perf_counter()
    N, act = problem.N, problem.activation
    reused = program is not None
    prog = program if reused else build_program(problem, representation, ridge)
    prog.set_data(problem.lam, problem.G0, Y=problem.Y)
    info = prog.solve(solver, solver_options, layer=1)
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
    if polish_network:
        net = polish(problem, net)
    objective = loss_parameters(problem, net.weights)
    zero = network_from_hidden(problem, [np.zeros((N, 0))], solver, solver_options)
    if loss_parameters(problem, zero.weights) <= objective:  # e.g. Y = 0: the zero network
        net, objective = zero, loss_parameters(problem, zero.weights)
    value = float(sol.value)
    # the program's value is a lower bound only if the solver solved it accurately; a value
    # above the loss of a real network proves it did not (seen on badly scaled data)
    slack = tol * abs(objective) + 1e-14  # relative: objectives can be ~1e-7 on scaled data
    valid = value <= objective + slack
    lower = value if valid else float("-inf")
    dual, dual_method = _dual_bound(problem, Zs_out=net.predict(problem.X))
    # the rigorous dual bound replaces the program value when that is invalid, below it, or
    # above the loss of the returned network (then the solver was demonstrably off, even if
    # within the slack)
    if dual is not None and (dual > lower or value > objective):
        lower, valid = dual, True
    gap = objective - lower
    certified = bool(valid and gap <= slack)
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
              "program_reused": reused},
    )
