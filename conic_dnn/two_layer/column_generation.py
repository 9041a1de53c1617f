"""Column generation for the depth-2 problem with the squared loss (a scalable exact path).

Balancing each neuron (incoming unit direction ``u_j`` in R^{d'}, ``d' = d (+1 with a bias)``,
outgoing ``v_j`` in R^k; ``lam(||w||^2 + ||v||^2) >= 2 lam ||w|| ||v||`` with equality when
balanced) turns the depth-2 loss into a group lasso over a dictionary of directions:

    P = min  C( sum_j s(H0 u_j) v_j^T + beta 1 c^T ) + 2 lam sum_j ||v_j||_2 + lam ||c||^2,

``C(Z) = ||Z - Y||_F^2 / N`` (:class:`conic_dnn.core.losses.MSE`), ``H0 = [X, beta 1]`` (N x d'),
``c`` the output bias (only when ``beta = problem.bias > 0``; it is a column of ``W_2``).

Restricted master
    For a finite dictionary ``U = [u_1..u_m]`` the group lasso is solved in numpy
    (block-coordinate descent + Newton on the support,
    :func:`conic_dnn.two_layer.group_lasso.master_numpy`, warm-started),
    falling back to the SOC program (cvxpy, run through :func:`conic_dnn.solvers.run`) when
    its duality-gap / KKT tolerances are not reached. Its solution is an explicit network (rows
    ``sqrt(||v_j||) u_j`` of ``W_1``, columns ``v_j / sqrt(||v_j||)`` of ``W_2``, zero ``v_j``
    dropped); the UPPER bound is that network's own forward-pass loss.
Dual and pricing
    With ``Lambda = -grad C(Z) = 2 (Y - Z) / N`` (N x k), the Lagrangian dual of the problem over
    *all* unit directions is (derivation: minimise ``C(Z) + <Lambda, Z>`` over ``Z``, each
    ``2 lam ||v|| - <Lambda^T s(H0 u), v>`` over ``v`` and ``lam ||c||^2 - beta <Lambda^T 1, c>``
    over ``c``)

        g(Lambda) = <Lambda, Y> - (N/4) ||Lambda||_F^2 - beta^2 ||Lambda^T 1||^2 / (4 lam)
        if rho(Lambda) = max_{||u|| = 1} ||Lambda^T s(H0 u)||_2 <= 2 lam   (else -inf),

    so ``g(Lambda') <= P`` for every feasible ``Lambda'`` (weak duality), and the master's KKT
    conditions give ``||Lambda^T s(H0 u_j)|| = 2 lam`` on its active atoms. A direction improves
    the master iff ``||Lambda^T s(H0 u)|| > 2 lam``. The LOWER bound is ``max_t g(t Lambda)``
    over ``0 <= t <= 2 lam / rho_upper`` (a concave quadratic in ``t``: closed form), with any
    valid upper bound ``rho_upper >= rho(Lambda)``.
Computing rho (:mod:`conic_dnn.two_layer.pricing`)
    * identity-type activations (``a = b``): ``rho = |a| ||Lambda^T H0||_2`` (exact, any rank);
    * ``rank(H0) <= 2``: exact. On the unit circle of ``range(H0^T)``, ``u = V e(theta)``,
      ``s(H0 u) = D F e(theta)`` is linear between consecutive kinks (angles where some
      ``(F e)_i = 0``, ``F = H0 V``), ``D = diag(a or b)``; on each arc the maximum of the
      2 x 2 quadratic form ``e^T (DF)^T Lambda Lambda^T (DF) e`` is at an endpoint or at the
      top eigenvector (either sign) if it lies inside the arc;
    * ``rank(H0) > 2``: for every cell P of the hyperplane arrangement
      (:func:`conic_dnn.cone.patterns.arrangement_patterns`), with ``S_P`` the signs and
      ``D_P = T_P S_P = diag(a on P, b off P)`` (so ``s(z) = D_P z`` on the cell), the SDP
      ``max tr(M W), tr W = 1, W PSD, (S_P F) W (S_P F)^T >= 0`` entrywise,
      ``M = (D_P F)^T Lambda Lambda^T (D_P F)``, is a relaxation of the cell's maximum, so its
      largest value bounds ``rho^2`` from above. Used only with ``<= max_patterns`` cells;
      otherwise no lower bound (``-inf``). New columns come from a local ascent
      ``u <- normalise(grad ||Lambda^T s(H0 u)||^2)`` started at the SDP solutions and at
      random directions.
"""

from __future__ import annotations

import time
from numbers import Real

import numpy as np

from ..cone.dual_cone import _check_int
from ..cone.patterns import arrangement_patterns, max_regions
from ..core.budget import Deadline
from ..core.formulations import covariances_from_activations, loss_parameters
from ..core.linalg import factor_range
from ..core.losses import MSE
from ..core.network import Network
from ..core.problem import Problem
from ..core.result import Result
from ..neurons.pruning import prune
from ..solvers import _check_solver
from .group_lasso import master_cvxpy as _master
from .group_lasso import master_numpy as _master_numpy
from .pricing import lower_bound, price

__all__ = ["solve_column_generation", "price", "lower_bound"]


def _network(problem, U, Vm, c, rtol=1e-9):
    """The balanced network of a master solution (zero atoms dropped)."""
    norms = np.linalg.norm(Vm, axis=1)
    keep = norms > rtol * max(norms.max(initial=0.0), 1e-300)
    sq = np.sqrt(norms[keep])
    W1 = (U[:, keep] * sq).T
    W2 = Vm[keep].T / sq
    if problem.bias > 0:
        W2 = np.hstack([W2, c[:, None]])
    return Network((W1, W2), problem.activation, problem.bias), keep


def _validate(problem, tol, max_iter, n_init, n_add, max_patterns, seed, solver, master):
    if not isinstance(problem, Problem):
        raise TypeError(f"problem: expected a conic_dnn.Problem, got {type(problem).__name__}")
    if problem.depth != 2:
        raise ValueError(f"problem.depth: column generation needs depth 2, got {problem.depth}")
    if not isinstance(problem.loss, MSE):
        raise ValueError(f"problem.loss: column generation needs the squared loss 'mse', got "
                         f"{problem.loss.name!r}")
    problem.require_homogeneous("column generation")
    if isinstance(tol, bool) or not isinstance(tol, Real):
        raise TypeError(f"tol: expected a positive number, got {type(tol).__name__}")
    if not np.isfinite(tol) or tol <= 0:
        raise ValueError(f"tol: expected a finite number > 0, got {tol}")
    _check_int(max_iter, "max_iter", 1)
    if n_init is not None:
        _check_int(n_init, "n_init", 0)
    _check_int(n_add, "n_add", 1)
    _check_int(max_patterns, "max_patterns", 0)
    _check_int(seed, "seed", 0)
    _check_solver(solver)
    if master not in ("auto", "numpy", "cvxpy"):
        raise ValueError(f"master: expected 'auto', 'numpy' or 'cvxpy', got {master!r}")


def _is_new(u, U, cos_tol=1e-10):
    return U.shape[1] == 0 or np.max(U.T @ u) < 1 - cos_tol


def solve_column_generation(problem: Problem, *, tol: float = 1e-6, max_iter: int = 100,
                            n_init: int | None = None, n_add: int = 5, max_patterns: int = 256,
                            solver: str | None = None, seed: int = 0,
                            progress: bool = False, master: str = "auto",
                            deadline: Deadline | None = None) -> Result:
    """Solve a depth-2 squared-loss problem by column generation, with a certified gap.

    Parameters
    ----------
    problem : Problem
        ``depth == 2``, ``loss`` :class:`~conic_dnn.core.losses.MSE`, positively homogeneous
        activation. Data ``X`` (N, d), ``Y`` (N, k).
    tol : float, default 1e-6
        Stop (and certify) when ``UB - LB <= tol * |UB| + 1e-14`` (relative, as the cone
        solve's certificate).
    max_iter : int, default 100
        Master/pricing rounds.
    n_init : int, optional
        Random initial directions (default ``2 N``), plus the pricing maximiser at ``Z = 0``.
    n_add : int, default 5
        Most violating directions added per round.
    max_patterns : int, default 256
        Largest hyperplane arrangement priced by the SDP bound when ``rank(H0) > 2``; above it
        no lower bound is reported (``-inf``).
    solver : str, optional
        Cone solver (see :func:`conic_dnn.solvers.run`).
    seed : int, default 0
    progress : bool, default False
        A tqdm progress bar over the rounds.
    master : {"auto", "numpy", "cvxpy"}, default "auto"
        How the restricted master is solved: ``"numpy"`` (block-coordinate descent plus a
        Newton polish on the support, warm-started from the previous round, stopped on a
        duality gap <= 1e-12 relative over the dictionary and a KKT residual <= 1e-9; the
        cvxpy program is solved instead when that is not reached) or ``"cvxpy"`` (always the
        SOC program). ``"auto"``: numpy for one output (``k = 1``), cvxpy otherwise (the
        Newton polish for ``k > 1`` is measured slower than cvxpy at N = 40). The bounds are
        computed the same way either way.

    Returns
    -------
    Result
        ``method="column_generation"``; ``network`` has weights ``(n, d')`` and
        ``(k, n [+1])`` with ``n <= N(N+1)``; ``objective`` is its forward-pass loss;
        ``lower_bound`` the best dual bound (``-inf`` without a valid pricing bound);
        ``exact`` when the pricing is exact (identity activation or ``rank(H0) <= 2``);
        ``info``: ``iterations``, ``n_columns``, ``history_upper`` (per round),
        ``history_lower`` (best bound so far, per round),
        ``pricing``, ``master_time``, ``pricing_time``, ``n_patterns``, ``master``,
        ``master_fallbacks`` (rounds where the numpy master fell back to cvxpy).

    Raises
    ------
    TypeError, ValueError
        For a bad ``problem`` or argument, before any solver runs (the message names it).
    """
    _validate(problem, tol, max_iter, n_init, n_add, max_patterns, seed, solver, master)
    t_start = time.perf_counter()
    N = problem.N
    rng = np.random.default_rng(seed)
    H0 = problem.H0
    V = factor_range(H0.T)[1]  # orthonormal basis of range(H0^T)
    n_init = 2 * N if n_init is None else n_init
    cap = max(n_init, 2 * N) + 20 * n_add
    patterns, n_patterns = None, 0
    if V.shape[1] > 2 and problem.activation.a != problem.activation.b and max_patterns > 0:
        n_patterns = max_regions(N, V.shape[1])  # the count for data in general position
        if n_patterns <= max_patterns:  # enumerating a larger arrangement is itself costly
            patterns, _ = arrangement_patterns(H0)
            n_patterns = len(patterns)
    pricing_kw = dict(max_patterns=0, solver=solver, _patterns=patterns)
    G = V @ rng.normal(size=(V.shape[1], n_init)) if V.shape[1] else np.zeros((H0.shape[1], 0))
    U = G / np.maximum(np.linalg.norm(G, axis=0), 1e-300) if n_init else G
    t_pr = time.perf_counter()
    _, cands, method = price(problem, 2 * problem.Y / N, seed=seed, **pricing_kw)
    pricing_time = time.perf_counter() - t_pr
    for _, u in cands[:n_add]:
        if _is_new(u, U):
            U = np.hstack([U, u[:, None]])
    master_time, hist_up, hist_lo = 0.0, [], []
    V_warm, c_warm, n_fallback = None, None, 0
    if master == "auto":
        master = "numpy" if problem.k == 1 else "cvxpy"
    best_net, best_ub, best_lb, info = None, np.inf, -np.inf, None
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iter, desc="column generation", unit="round")
    it = 0
    for it in range(1, max_iter + 1):
        t0 = time.perf_counter()
        ok = False
        if master == "numpy":
            if V_warm is not None:  # the dictionary only grew at the end since last round
                V_warm = np.vstack([V_warm, np.zeros((U.shape[1] - len(V_warm), problem.k))])
            Vm, c, info, ok = _master_numpy(problem, U, V_warm, c_warm)
            n_fallback += not ok
        if not ok:
            Vm, c, info = _master(problem, U, solver)
        V_warm, c_warm = Vm, c
        master_time += time.perf_counter() - t0
        net, keep = _network(problem, U, Vm, c)
        ub = loss_parameters(problem, net.weights)
        if ub < best_ub:
            best_net, best_ub = net, ub
        Z = net.forward(problem.X)[-1]
        Lam = -problem.loss.gradient(Z, problem.Y)
        t0 = time.perf_counter()
        rho_up, cands, method = price(problem, Lam, seed=seed + it, **pricing_kw)
        pricing_time += time.perf_counter() - t0
        best_lb = max(best_lb, lower_bound(problem, Lam, rho_up))
        hist_up.append(ub)
        hist_lo.append(best_lb)
        gap = best_ub - best_lb
        if bar is not None:
            bar.update(1)
            bar.set_postfix(gap=f"{gap:.2e}", columns=U.shape[1])
        if gap <= tol * abs(best_ub) + 1e-14:
            break
        if U.shape[1] > cap:  # forget unused atoms
            U, V_warm = U[:, keep], V_warm[keep]
        added = 0
        for val, u in cands:
            if added >= n_add or val <= 2 * problem.lam * (1 + 1e-12):
                break
            if _is_new(u, U):
                U = np.hstack([U, u[:, None]])
                added += 1
        if added == 0:  # no improving direction (to the pricing's accuracy): converged
            break
    if bar is not None:
        bar.close()
    net = best_net
    if max(net.widths) > N * (N + 1):
        net = prune(problem, net)
    objective = loss_parameters(problem, net.weights)
    lower = best_lb if best_lb <= objective + tol * abs(objective) + 1e-14 else -np.inf
    gap = objective - lower
    certified = bool(gap <= tol * abs(objective) + 1e-14)
    exact = method in ("rank2", "identity")
    Zs = net.forward(problem.X)
    if certified:
        msg = "global optimum certified: the network's loss matches the dual bound"
    elif np.isfinite(lower):
        msg = f"stopped after {it} rounds with an honest gap {gap:.3g}"
    else:
        msg = (f"no lower bound: rank(H0) > 2 and the arrangement has up to {n_patterns} "
               f"cells > max_patterns={max_patterns}; the objective is an upper bound only")
    return Result(
        objective=objective, lower_bound=float(lower), gap=float(gap), certified=certified,
        network=net, covariances=covariances_from_activations(problem, Zs), history=hist_up,
        status=info.status, solver=info.solver, solve_time=time.perf_counter() - t_start,
        success=True, message=msg, method="column_generation", exact=exact,
        info={"iterations": it, "n_columns": int(U.shape[1]), "history_upper": hist_up,
              "history_lower": hist_lo, "pricing": method, "master_time": master_time,
              "pricing_time": pricing_time, "n_patterns": n_patterns,
              "master": master, "master_fallbacks": n_fallback},
    )
