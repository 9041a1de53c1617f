"""Column generation for the depth-2 problem, every built-in convex loss (a scalable exact path).

Balancing each neuron (incoming unit direction ``u_j`` in R^{d'}, ``d' = d (+1 with a bias)``,
outgoing ``v_j`` in R^k; ``lam(||w||^2 + ||v||^2) >= 2 lam ||w|| ||v||`` with equality when
balanced) turns the depth-2 loss into a group lasso over a dictionary of directions:

    P = min  C( sum_j s(H0 u_j) v_j^T + beta 1 c^T ) + 2 lam sum_j ||v_j||_2 + lam ||c||^2,

``C(Z)`` the problem's convex loss (the squared loss ``||Z - Y||_F^2 / N`` below; any built-in
loss through its conjugate ``C*``: ``g(Lambda) = -C*(-Lambda) - beta^2 ||Lambda^T 1||^2 /
(4 lam)``, with ``Lambda`` from the master's dual), ``H0 = [X, beta 1]`` (N x d'),
``c`` the output bias (only when ``beta = problem.bias > 0``; it is a column of ``W_2``).

Restricted master (:mod:`conic_dnn.two_layer.restricted_master`)
    For a finite dictionary ``U = [u_1..u_m]`` the group lasso is solved in numpy
    (squared loss: an exact active-set solve for one output, block-coordinate descent + Newton
    on the support otherwise, :func:`conic_dnn.two_layer.group_lasso.master_numpy`; the other
    smooth losses: Newton on the support, :mod:`conic_dnn.two_layer.smooth_master`;
    warm-started), falling back to the conic program (cvxpy, run through
    :func:`conic_dnn.solvers.run`; for a smooth loss its solution is then polished by the
    Newton method) when its duality-gap / KKT tolerances are not reached (the hinge: cvxpy).
    Its solution is an explicit network (rows
    ``sqrt(||v_j||) u_j`` of ``W_1``, columns ``v_j / sqrt(||v_j||)`` of ``W_2``, zero ``v_j``
    dropped); the UPPER bound is that network's own forward-pass loss.
Refinement (cells enumerated, smooth loss)
    Column generation alone converges linearly in its tail (each round's directions are the
    maximisers for the last round's ``Lambda``). After each master the neurons are refined by
    :func:`conic_dnn.two_layer.refine.refine_directions`: a Newton method over their directions
    inside their cells and faces (the Pilanci-Ergen program restricted to the master's cells),
    then a local pricing of each neuron's own cell and its neighbours across its face rows
    (an improving cell moves the neuron off a face or adds one across the kink, and the Newton
    method runs again); the refined network replaces the master's when its forward-pass loss
    is lower and its directions join the dictionary. Several outputs:
    :func:`conic_dnn.two_layer.refine_outputs.refine_outputs`, a Newton method over each
    neuron's direction (in its cell and face) and output vector, balanced, then the same local
    pricing along each neuron's output direction. It changes only which network is priced:
    bounds and certificates are computed exactly as for any other network.
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
    * ``rank(H0) > 2``, one output: exact. The cells of the hyperplane arrangement are
      enumerated once from their extreme rays (:mod:`conic_dnn.two_layer.cells`); on a cell
      ``P`` the value is ``||Proj_{K_P}(c_P)||`` (one NNLS), cells are searched best-first
      with rigorous dual bounds;
    * ``rank(H0) > 2``, ``k > 1``: exact to 1e-9 above ``2 lam`` (to ``1e-3 (rho / 2 lam -
      1)`` while ``rho`` is far above it, where the bound is weak anyway). ``rho = max_{||w|| = 1}
      rho1(Lambda w)`` (``rho1`` the one-output value, convex in the output direction ``w``)
      by branch and bound over spherical simplices of ``w`` (per-cell bounds ``max_i
      g_P(v_i) / h`` at the simplex's vertices, ``h`` its hull's distance to 0;
      :mod:`conic_dnn.two_layer.sphere`); its best cell projections are the new columns.
      Every round first runs a cheap search (capped at :data:`SEARCH_WORK` units of one exact
      cell projection, seeded with the master's atoms and last round's unused columns); the
      full branch and bound runs only when it finds no new improving column, and all full
      searches of a solve share ``pricing_budget`` (deterministic work, not wall-clock). A
      search stopped by its cap returns the largest bound of its open nodes: rigorous, looser
      (``info["pricing"] == "sphere_budget"``, ``info["pricing_capped"]``). ``k > 4``: a
      rigorous, looser per-cell bound. More than ``max_patterns`` cells: no lower bound
      (``-inf``).
"""

from __future__ import annotations

import time
from numbers import Real

import numpy as np

from ..cone.dual_cone import _check_int
from ..cone.patterns import max_regions
from ..core.budget import TIME_LIMIT_STATUS, Deadline
from ..core.formulations import covariances_from_activations, loss_parameters
from ..core.linalg import factor_range
from ..core.network import Network
from ..core.problem import Problem
from ..core.result import Result, certification_slack
from ..neurons.pruning import prune
from ..solvers import _check_solver
from ..training.gradient import train_lbfgs
from . import pricing as _pricing
from .fenchel import supported
from .pricing import cell_patterns_for, lower_bound, price
from .refine import refine_directions
from .refine_outputs import refine_outputs
from .restricted_master import RestrictedMaster
from .smooth_master import smooth

__all__ = ["solve_column_generation", "price", "lower_bound"]

#: Default largest number of arrangement cells enumerated for the pricing at rank(H0) > 2.
MAX_CELLS = 200_000
#: Work cap (units of one exact cell projection, :mod:`conic_dnn.two_layer.sphere`) of the
#: cheap k > 1 pricing tried first every round (seeded by the master's atoms).
SEARCH_WORK = 2_000
#: Default total work (over a solve) of the full branch and bound over output directions
#: (k > 1), run only in rounds where the cheap search finds no improving column; once spent,
#: the rounds keep the cheap search and its valid, looser bound.
PRICING_BUDGET = 150_000
#: ``extend``: the share of the seconds left that a further pass may spend in its pricing
#: budget (at the measured work rate), and the most further passes.
EXTEND_SHARE = 0.5
EXTEND_PASSES = 4
#: Iteration cap of the L-BFGS training whose directions seed the second pass (``restart``).
RESTART_ITER = 2_000
EXACT_PRICING = ("rank2", "identity", "cells", "cells_search", "cells_sphere")


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
    if not supported(problem.loss):  # the cone program's rule: built-in costs only
        raise ValueError(f"problem.loss: column generation needs a built-in convex loss with a "
                         f"conjugate, got {getattr(problem.loss, 'name', problem.loss)!r}")
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


def _pricing_cells(problem, max_patterns):
    """``(cells or None, n_patterns)``: the arrangement cells when rank(H0) > 2 and the
    activation is not linear, if at most ``max_patterns`` (``None`` above it)."""
    V = factor_range(problem.H0.T)[1]
    r = V.shape[1]
    if r <= 2 or problem.activation.a == problem.activation.b or max_patterns == 0:
        return None, 0
    n_cells = max_regions(problem.N, r)  # the count for data in general position
    if n_cells > max_patterns:
        return None, n_cells
    cells = cell_patterns_for(problem)
    return cells, (len(cells[2]) if cells is not None else n_cells)


def _add_columns(U, cands, n_add, threshold):
    """Append up to ``n_add`` new directions whose value exceeds ``threshold``; returns
    ``(U, added)``."""
    added = 0
    for val, u in cands:
        if added >= n_add or val <= threshold:
            break
        if _is_new(u, U):
            U = np.hstack([U, u[:, None]])
            added += 1
    return U, added


def _dual_multiplier(problem, Z, Lam_master):
    """``Lambda``: ``-grad C(Z)`` for smooth losses; the master's dual for the hinge (whose
    gradient at a kink is not the optimal multiplier), moved into the conjugate's domain."""
    Lam = -problem.loss.gradient(Z, problem.Y)
    if problem.loss.name == "hinge" and Lam_master is not None:
        Lam = Lam_master
    return -problem.loss.dual_point(-Lam, problem.Y)  # into the conjugate's domain


def solve_column_generation(problem: Problem, *, tol: float = 1e-6, max_iter: int = 100,
                            n_init: int | None = None, n_add: int = 5,
                            max_patterns: int = MAX_CELLS, solver: str | None = None,
                            seed: int = 0, progress: bool = False, master: str = "auto",
                            deadline: Deadline | None = None,
                            pricing_budget: float = PRICING_BUDGET,
                            restart: bool = False, extend: bool = False) -> Result:
    """Solve a depth-2 problem by column generation, with a certified gap.

    Parameters
    ----------
    problem : Problem
        ``depth == 2``, a built-in convex loss (squared, logistic, hinge, cross-entropy,
        Huber), positively homogeneous activation. Data ``X`` (N, d), ``Y`` (N, k).
    tol : float, default 1e-6
        Stop (and certify) when ``UB - LB <= tol * |UB| + 1e-14 C(0)`` (relative, as the cone
        solve's certificate).
    max_iter : int, default 100
        Master/pricing rounds.
    n_init : int, optional
        Random initial directions (default ``2 N``), plus the pricing maximiser at ``Z = 0``.
    n_add : int, default 5
        Most violating directions added per round.
    max_patterns : int, default 200_000
        Largest hyperplane arrangement (cells) enumerated for the pricing when
        ``rank(H0) > 2``; above it no lower bound is reported (``-inf``).
    solver : str, optional
        Cone solver (see :func:`conic_dnn.solvers.run`).
    seed : int, default 0
    progress : bool, default False
        A tqdm progress bar over the rounds.
    master : {"auto", "numpy", "cvxpy"}, default "auto"
        How the restricted master is solved: ``"numpy"`` (smooth losses; squared loss: an
        exact active-set solve for one output, else block-coordinate descent plus a Newton
        polish on the support, warm-started, stopped on a duality gap <= 1e-12 relative and a
        KKT residual <= 1e-9; logistic, Huber, cross-entropy: a Newton method on the support
        warm-started at the last round's solution, stopped on a KKT residual <= 1e-9; where
        that is not reached the cvxpy program is solved and its solution polished by the same
        Newton method) or ``"cvxpy"`` (always the conic program). ``"auto"``: numpy for one
        output and a smooth loss; cvxpy for the hinge and for ``k > 1`` (there the numpy
        attempts were measured to fail often, at seconds each: 208 s against 39 s on a k = 2,
        rank 5, N = 8 instance).
    deadline : Deadline, optional
        Checked between rounds: when it has expired the best network so far is returned with
        its bound, ``status="time_limit"`` and ``success=False``.
    pricing_budget : float, default 150_000
        ``2 <= k <= 4`` at rank > 2: the total work of the full branch and bound over output
        directions in one solve, in units of one exact cell projection (about 50-80 us each
        at N = 8..30); once spent, rounds keep the cheap search and its valid, looser bound.
        ``inf``: no cap (exact pricing every time the search fails, at any cost). Measured on
        ``benchmarks/pilanci_ergen.py``'s k in {2, 3} grid (with the k > 1 refinement): the
        default certifies 17/18 in at most 5 s per instance (before the refinement's local
        moves: 400,000 also 17/18, up to 15 s; uncapped 18/18, up to 32 s). ``solve(...,
        time_limit=)`` with ``method="auto"`` follows a capped pass by further passes from its
        best network with the budget the time left affords (``extend``; the last instance:
        certified in 9 s with ``time_limit=10``).
    restart : bool, default False
        When the rounds end with a finite bound but no certificate (before the deadline):
        one L-BFGS training of a width ``max(2 N, 8)`` network
        (:func:`conic_dnn.training.train_lbfgs`, one start, at most :data:`RESTART_ITER`
        iterations), then a second pass of the rounds whose dictionary starts from its
        first-layer directions and the first pass's neurons; the result keeps the lower
        forward-pass loss and the larger of the two (valid) bounds (``info["restarted"]``).
        Certified solves are unchanged. Measured (before the k > 1 refinement, which now
        certifies most of these in the first pass) on the k in {2, 3}, rank 5, N = 16
        instances of ``benchmarks/pilanci_ergen.py`` (3 seeds): 3 of the 9 the first pass left
        open were certified, the other gaps shrank 3-180x, in 1.3-2.3x the time. Off by
        default: on
        many small uncertified solves it costs about as much (scikit-learn's estimator checks
        of ``ConicNetClassifier``: 1.3x the time with it on).
    extend : bool, default False
        With a ``deadline`` that has a time limit: while the bound is capped by the pricing
        budget (several outputs), uncertified, and time is left, a further pass of the rounds
        starts from the best network's directions with the budget the time left affords (the
        measured work rate, units per second of pricing, times :data:`EXTEND_SHARE` of the
        seconds left); at most :data:`EXTEND_PASSES` passes, stopping when one improves
        neither bound. Passes merge as for ``restart`` (``info["extend_passes"]``,
        ``info["pricing_budgets"]``). ``solve(..., time_limit=)`` with ``method="auto"``
        sets it.

    Returns
    -------
    Result
        ``method="column_generation"``; ``network`` has weights ``(n, d')`` and
        ``(k, n [+1])`` with ``n <= N(N+1)`` (pruned when wider); ``objective`` is its
        forward-pass loss; ``lower_bound`` the best dual bound (``-inf`` without a valid
        pricing bound); ``exact`` when the pricing is exact (identity activation,
        ``rank(H0) <= 2``, one output or a dual of output rank one (two-class
        cross-entropy, :func:`~conic_dnn.two_layer.pricing.output_range`), or the last
        round's branch and bound over output directions closed:
        ``info["pricing"] == "cells_sphere"``); ``info``: ``iterations``,
        ``n_columns``,
        ``history_upper``, ``history_lower`` (best bound so far, per round), ``pricing``
        (the last round's method), ``master_time``, ``pricing_time``, ``n_patterns``,
        ``master``, ``master_fallbacks``, ``refine_time``, ``pricing_capped`` (k > 1: the
        last round's bound came from a search stopped by its work cap) and ``pricing_work``
        (k > 1: total work of the searches), ``restarted`` and ``restart_time`` (the
        training's seconds; see ``restart``).

    Raises
    ------
    TypeError, ValueError
        For a bad ``problem`` or argument, before any solver runs (the message names it).
    """
    _validate(problem, tol, max_iter, n_init, n_add, max_patterns, seed, solver, master)
    if isinstance(pricing_budget, bool) or not isinstance(pricing_budget, Real):
        raise TypeError(f"pricing_budget: expected a number > 0, got "
                        f"{type(pricing_budget).__name__}")
    if not pricing_budget > 0:
        raise ValueError(f"pricing_budget: expected a number > 0 (or inf), got "
                         f"{pricing_budget}")
    if deadline is not None and not isinstance(deadline, Deadline):
        raise TypeError(f"deadline: expected a conic_dnn.core.budget.Deadline or None, got "
                        f"{type(deadline).__name__}")
    deadline = deadline or Deadline(None)
    t_start = time.perf_counter()
    if not isinstance(restart, bool):
        raise TypeError(f"restart: expected a bool, got {type(restart).__name__}")
    if not isinstance(extend, bool):
        raise TypeError(f"extend: expected a bool, got {type(extend).__name__}")
    args = (problem, tol, max_iter, n_init, n_add, max_patterns, solver, seed, progress, master,
            deadline, pricing_budget)
    state = _run(*args)
    gap = state["best_ub"] - state["best_lb"]
    if (restart and np.isfinite(state["best_lb"])  # (no bound: a second pass cannot certify)
            and gap > certification_slack(problem, tol, state["best_ub"])
            and not state["timed_out"] and not deadline.expired()):
        U0, t_train = _restart_directions(problem, state["best_net"], seed, deadline)
        state = _merged(state, _run(*args, U0=U0), t_train)
    if extend and deadline.time_limit is not None:
        state = _extended(problem, state, args, tol, deadline)
    return _finish(problem, state, tol, max_patterns, time.perf_counter() - t_start)


def _unit_directions(net):
    W = net.weights[0]
    n = np.linalg.norm(W, axis=1)
    live = n > 1e-9 * max(n.max(initial=0.0), 1e-300)
    return (W[live] / n[live, None]).T


def _extended(problem, state, args, tol, deadline):
    """Further passes while the bound is capped by the pricing budget (see ``extend``)."""
    budgets = []
    for _ in range(EXTEND_PASSES):
        gap = state["best_ub"] - state["best_lb"]
        if (gap <= certification_slack(problem, tol, state["best_ub"]) or not state["capped"]
                or not np.isfinite(state["best_lb"]) or deadline.expired()):
            break
        rate = state["pricing_work"] / max(state["pricing_time"], 1e-3)
        budget = rate * EXTEND_SHARE * deadline.remaining()
        if not budget > args[-1]:  # (no more than the pass that was capped)
            break
        before = (state["best_ub"], state["best_lb"])
        U0 = _unit_directions(state["best_net"])
        state = _merged(state, _run(*args[:-1], budget, U0=U0))
        budgets.append(float(budget))
        if (state["best_ub"], state["best_lb"]) == before:
            break
    state["extend_passes"], state["pricing_budgets"] = len(budgets), budgets
    return state


def _restart_directions(problem, net, seed, deadline):
    """``(U0 (d', m), seconds)``: unit first-layer directions of one L-BFGS training run
    (width ``max(2 N, 8)``) and of ``net`` (the first pass's best network)."""
    t0 = time.perf_counter()
    trained = train_lbfgs(problem, [max(2 * problem.N, 8)], n_starts=1, seed=seed,
                          max_iter=RESTART_ITER, deadline=deadline).network
    return (np.hstack([_unit_directions(trained), _unit_directions(net)]),
            time.perf_counter() - t0)


def _merged(st1, st2, t_train=None):
    """The state of two passes: the lower upper bound's network, the larger lower bound
    (both valid), rounds, times and histories summed / concatenated (``t_train``: the
    restart's training seconds)."""
    out = dict(st2)
    if "restart_time" in st1:
        out["restart_time"] = st1["restart_time"]
    if st1["best_ub"] <= st2["best_ub"]:
        out["best_net"], out["best_ub"] = st1["best_net"], st1["best_ub"]
    if st1["best_lb"] > st2["best_lb"]:  # (the pricing kind of the bound kept)
        out["best_lb"], out["method"] = st1["best_lb"], st1["method"]
        out["capped"] = st1["capped"]
    for key in ("it", "pricing_time", "refine_time", "pricing_work", "full_work"):
        out[key] = st1[key] + st2[key]
    out["hist_up"] = st1["hist_up"] + st2["hist_up"]
    out["hist_lo"] = st1["hist_lo"] + [max(v, st1["best_lb"]) for v in st2["hist_lo"]]
    out["master"].time += st1["master"].time
    out["master"].fallbacks += st1["master"].fallbacks
    if t_train is not None:
        out["restart_time"] = t_train
    return out


def _initial(problem, n_init, n_add, rng, seed, pricing_kw, budget=PRICING_BUDGET):
    """The first dictionary: random unit directions plus the best pricing columns at Z = 0."""
    H0 = problem.H0
    V = factor_range(H0.T)[1]
    G = V @ rng.normal(size=(V.shape[1], n_init)) if V.shape[1] else np.zeros((H0.shape[1], 0))
    U = G / np.maximum(np.linalg.norm(G, axis=0), 1e-300) if n_init else G
    Lam0 = -problem.loss.gradient(np.zeros_like(problem.Y), problem.Y)
    extra = {}  # (the bound at Z = 0 is not used: the cheapest search for columns)
    if _sphere_pricing(problem, pricing_kw.get("cells")):
        extra = {"max_work": min(SEARCH_WORK, budget)}
    elif pricing_kw.get("cells") is not None and problem.k == 1:
        extra = {"bound": False}
    _, cands, method = price(problem, Lam0, seed=seed, **pricing_kw, **extra)
    U, _ = _add_columns(U, cands, n_add, -np.inf)
    return U, method


def _sphere_pricing(problem, cells) -> bool:
    """True when :func:`price` runs the branch and bound over output directions."""
    return cells is not None and 2 <= problem.k <= _pricing.SPHERE_MAX_K


def _price_round(problem, Lam, seed, pricing_kw, search, U=None, atoms=None, budget=np.inf,
                 stats=None, search_work=SEARCH_WORK, deadline=None):
    """Pricing of one round: with ``search``, the cheap cell search first; the full (bounded)
    pricing when it finds no improving column. ``k > 1`` (branch and bound over output
    directions): first the search capped at ``search_work``, seeded with ``atoms`` (the
    master's atoms and last round's unused columns; a valid, loose bound); when it finds no
    improving column new to the dictionary ``U`` and did not close, the full branch and bound
    capped at ``budget`` (the work left of the solve's ``pricing_budget``), seeded with the
    atoms and the search's columns. ``stats`` (a dict) gets ``closed``, ``capped`` (of the
    search whose bound is returned), ``work`` (both searches) and ``full_work`` (the full
    branch and bound's). ``deadline``: the full branch and bound stops when it expires (a
    valid, looser bound, as at its cap)."""
    improving = 2 * problem.lam * (1 + 1e-6)

    def found(cands):
        return any(v > improving and (U is None or _is_new(u, U)) for v, u in cands[:32])

    if _sphere_pricing(problem, pricing_kw.get("cells")):
        st = {}
        rho, cands, method = price(problem, Lam, seed=seed, max_work=search_work, seeds=atoms,
                                   stats=st, **pricing_kw)
        work, full = st["work"], 0.0
        if not (st["closed"] or found(cands) or budget < 1):
            more = [u for _, u in cands[:8]]
            seeds = more if atoms is None else list(atoms) + more
            rho2, cands2, method2 = price(problem, Lam, seed=seed, max_work=budget,
                                          seeds=seeds, stats=st, deadline=deadline,
                                          **pricing_kw)
            full = st["work"]
            work += full
            if rho2 <= rho:  # (both valid: the smaller)
                rho, method = rho2, method2
            cands = sorted(cands + cands2, key=lambda c: -c[0])
        if stats is not None:
            stats.update(st, work=work, full_work=full)
        return rho, cands, method
    if search:
        rho, cands, method = price(problem, Lam, seed=seed, bound=False, **pricing_kw)
        if cands and cands[0][0] > improving:
            return rho, cands, method
    return price(problem, Lam, seed=seed, **pricing_kw)


def _refined(problem, U, Vm, c, net, ub, keep, cache=None):
    """The master's network, or its direction-refined version
    (:func:`~conic_dnn.two_layer.refine.refine_directions` for one output,
    :func:`~conic_dnn.two_layer.refine_outputs.refine_outputs` for several) when that has a
    lower loss; the
    refined directions join the dictionary (so the next master can use them)."""
    found = (refine_directions(problem, U, Vm, c, cache=cache) if problem.k == 1
             else refine_outputs(problem, U, Vm, c))
    if found is None:
        return net, ub, U, keep
    Ur, Vr, cr = found
    net2, _ = _network(problem, Ur, Vr, cr)
    ub2 = loss_parameters(problem, net2.weights)
    if not ub2 < ub:
        return net, ub, U, keep
    new = [j for j in range(Ur.shape[1]) if _is_new(Ur[:, j], U)]
    U = np.hstack([U, Ur[:, new]])
    return net2, ub2, U, np.concatenate([keep, np.ones(len(new), dtype=bool)])


def _run(problem, tol, max_iter, n_init, n_add, max_patterns, solver, seed, progress, master,
         deadline, pricing_budget=PRICING_BUDGET, U0=None):
    """The rounds: master, network, dual, pricing, bound, new columns (``U0``: directions
    put first in the initial dictionary)."""
    N, lam = problem.N, problem.lam
    rng = np.random.default_rng(seed)
    cells, n_patterns = _pricing_cells(problem, max_patterns)
    pricing_kw = dict(max_patterns=0, solver=solver, cells=cells, target=2 * lam)
    n_init = 2 * N if n_init is None else n_init
    cap = max(n_init, 2 * N) + 20 * n_add
    t0 = time.perf_counter()
    U, method = _initial(problem, n_init, n_add, rng, seed, pricing_kw, pricing_budget)
    if U0 is not None:
        U = np.hstack([U0, U])
    st = dict(pricing_time=time.perf_counter() - t0, hist_up=[], hist_lo=[], best_net=None,
              best_ub=np.inf, best_lb=-np.inf, info=None, it=0, method=method,
              n_patterns=n_patterns, timed_out=False, refine_time=0.0, capped=False,
              pricing_work=0.0, full_work=0.0)
    # the network without hidden neurons is the first incumbent: a master that fails at an
    # extreme lam (measured: k = 2, lam = 1e15) cannot return a loss above C(0)
    zero_net, _ = _network(problem, U[:, :0], np.zeros((0, problem.k)), np.zeros(problem.k))
    st["best_net"], st["best_ub"] = zero_net, loss_parameters(problem, zero_net.weights)
    mast = RestrictedMaster(problem, master, solver)
    # cells enumerated, smooth loss: Newton over the directions inside their cells (and, for
    # k > 1, the output vectors)
    refine = cells is not None and smooth(problem.loss)
    face_cache = {}  # the refinements' face bases and blocks, shared by the rounds
    # one output with cells: search the promising cells first, bound only when that fails
    search = False  # measured: the cheap search's columns make convergence slow
    bar, spare, stalls = None, [], 0
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iter, desc="column generation", unit="round")
    for it in range(1, max_iter + 1):
        st["it"] = it
        Vm, c, st["info"], Lam_m = mast.solve(U)
        net, keep = _network(problem, U, Vm, c)
        ub = loss_parameters(problem, net.weights)
        unseen = 0  # refined columns the master has not solved over yet
        if refine:
            t0 = time.perf_counter()
            m_seen = U.shape[1]
            net, ub, U, keep = _refined(problem, U, Vm, c, net, ub, keep, face_cache)
            unseen = U.shape[1] - m_seen
            st["refine_time"] += time.perf_counter() - t0
        if ub < st["best_ub"]:
            st["best_net"], st["best_ub"] = net, ub
        Lam = _dual_multiplier(problem, net.forward(problem.X)[-1], Lam_m)
        t0 = time.perf_counter()
        sph = {}
        atoms = list(U[:, keep].T) + spare
        rho_up, cands, st["method"] = _price_round(
            problem, Lam, seed + it, pricing_kw, search, U, atoms,
            pricing_budget - st["full_work"], sph, min(SEARCH_WORK, pricing_budget),
            deadline)
        if sph:
            st["capped"] = bool(sph["capped"])
            st["pricing_work"] += sph["work"]
            st["full_work"] += sph["full_work"]
        st["best_lb"] = max(st["best_lb"], lower_bound(problem, Lam, rho_up))
        st["pricing_time"] += time.perf_counter() - t0
        st["hist_up"].append(ub)
        st["hist_lo"].append(st["best_lb"])
        gap = st["best_ub"] - st["best_lb"]
        if bar is not None:
            bar.update(1)
            bar.set_postfix(gap=f"{gap:.2e}", columns=U.shape[1])
        if gap <= certification_slack(problem, tol, st["best_ub"]):
            break
        if deadline.expired():
            st["timed_out"] = True
            break
        if U.shape[1] > cap:  # forget unused atoms
            U = U[:, keep]
            mast.forget(keep)
        U, added = _add_columns(U, cands, n_add, 2 * lam * (1 + 1e-12))
        # k > 1: the next round's search starts from the columns not added (one per cell)
        spare = [u for _, u in cands[:n_add + 16] if _is_new(u, U)] if sph else []
        if added == 0 and not (unseen and stalls == 0):
            break  # no improving direction (to the pricing's accuracy): converged
        # (an improving direction already among the columns, with refined columns the master
        # has not seen: one more master over them before stopping)
        stalls = stalls + 1 if added == 0 else 0
    if bar is not None:
        bar.close()
    st.update(U=U, master=mast)
    return st


def _finish(problem, st, tol, max_patterns, elapsed):
    """The Result: the best network (pruned to width <= N(N+1)), its loss and the bound."""
    N = problem.N
    net = st["best_net"]
    if max(net.widths) > N * (N + 1):
        net = prune(problem, net)
        if max(net.widths) > N * (N + 1):  # pragma: no cover - Caratheodory guarantees it
            raise RuntimeError(f"column generation: width {max(net.widths)} > N(N+1) after "
                               f"pruning")
    objective = loss_parameters(problem, net.weights)
    best_lb = st["best_lb"]
    slack = certification_slack(problem, tol, objective)
    lower = best_lb if best_lb <= objective + slack else -np.inf
    lower = min(lower, objective)
    gap = objective - lower
    certified = bool(gap <= slack)
    method, it = st["method"], st["it"]
    exact = method in EXACT_PRICING
    status, success = st["info"].status, True
    if certified:
        msg = "global optimum certified: the network's loss matches the dual bound"
    elif st["timed_out"]:
        status, success = TIME_LIMIT_STATUS, False
        msg = f"time limit after {it} rounds; honest gap {gap:.3g}"
    elif np.isfinite(lower):
        msg = f"stopped after {it} rounds with an honest gap {gap:.3g}"
    else:
        msg = (f"no lower bound: rank(H0) > 2 and the arrangement has up to "
               f"{st['n_patterns']} cells > max_patterns={max_patterns}; the objective is an "
               f"upper bound only")
    mast = st["master"]
    return Result(
        objective=objective, lower_bound=float(lower), gap=float(gap), certified=certified,
        network=net, covariances=covariances_from_activations(problem, net.forward(problem.X)),
        history=st["hist_up"], status=status, solver=st["info"].solver, solve_time=elapsed,
        success=success, message=msg, method="column_generation", exact=exact,
        info={"iterations": it, "n_columns": int(st["U"].shape[1]),
              "history_upper": st["hist_up"], "history_lower": st["hist_lo"],
              "pricing": method, "master_time": mast.time, "pricing_time": st["pricing_time"],
              "n_patterns": st["n_patterns"], "master": mast.kind,
              "master_fallbacks": mast.fallbacks, "refine_time": st["refine_time"],
              "pricing_capped": st["capped"], "pricing_work": st["pricing_work"],
              "restarted": "restart_time" in st, "restart_time": st.get("restart_time", 0.0),
              "extend_passes": st.get("extend_passes", 0),
              "pricing_budgets": st.get("pricing_budgets", [])},
    )
