"""Block-coordinate sweeps over the hidden layers (docs/MATH.md §5).

Each step solves the cone program of one layer with its neighbours fixed
(:class:`conic_dnn.cone.layer_program.LayerProgram`), decomposes the solution into neurons,
rebuilds a real network around them and keeps it only if its *forward-pass* loss is not
higher: the iterate is always a network and ``history`` (one entry per step) never increases.

Rebuilding around a new layer ``l``: layers ``< l`` are unchanged; the next layer keeps its
pre-activations ``Z_{l+1}`` (min-norm fit from the new ``H_l``; exact when
``range(K_{l+1}) in range(G_l)``, which the program imposes); deeper layers are propagated and
the output layer re-optimised in closed form.

Sweep order: ``"both"`` (forward then backward, default), ``"backward"`` (L-1 down to 1) or
``"forward"``. When a sweep stalls, the moves of :mod:`conic_dnn.deep.moves` (an improving
neuron, then the deletion of the weakest mode) try to leave the basin.

The last hidden layer is re-fitted jointly with the output layer by column generation
(:mod:`conic_dnn.deep.joint`) instead of its pattern program when that is cheaper
(:func:`step_cost` above :func:`conic_dnn.deep.joint.joint_cost`: N >= 7 with a full-rank
input).

Work budget: each step costs the size of its layer program (:func:`step_cost`, the block
variables of its cone, known before the program is built); a :class:`WorkBudget` skips the
steps it cannot afford, so the sweeps stop at a point that depends on the data only, never on
the machine's speed or load (the wall-clock ``deadline`` is an outer safety net).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..cone.covariance_cone import pattern_cone_size
from ..cone.layer_program import LayerProgram
from ..core.budget import Deadline
from ..core.errors import SolverFailedError
from ..core.formulations import layer_inputs, loss_parameters
from ..core.linalg import factor_range
from ..core.network import Network
from ..neurons.decompose import caratheodory
from ..neurons.recovery import recover_neurons
from ..training.refine import output_weights
from .joint import joint_cost, refit_last_two
from .moves import delete_mode, escape

__all__ = ["run_sweeps", "SweepRun", "LayerPrograms", "rebuild", "SWEEPS", "SUBSPACE_RTOL",
           "SUBSPACE_ANGLE", "WorkBudget", "step_cost"]

SWEEPS = ("backward", "forward", "both")

#: A layer's neurons are sought in the span of the left singular vectors of its input ``H``
#: whose singular values exceed ``SUBSPACE_RTOL * sigma_max``. Directions below it would cost
#: ``lam * |z|^2 / sigma^2`` (> 1e8 times the cheapest direction), so an optimal step never
#: uses them, while keeping them makes ``pinv(G_{l-1})`` so ill-conditioned that Clarabel
#: fails (measured: eigenvalues of ``G`` at 1e-10 relative after a CP factorisation). The
#: restricted program is an inner approximation: its neurons are exactly realisable.
SUBSPACE_RTOL = 1e-3

#: A cached restricted program is reused when the new subspace (same dimension) is within this
#: largest principal angle (radians) of the cached one: the program's neurons are then within
#: ~1e-6 of the admissible ones, the rebuild projects them, and the forward-pass check decides.
SUBSPACE_ANGLE = 1e-6

#: A sweep that lowers the loss by less than this (relative) counts as stalled and triggers
#: the moves (measured: stalled sweeps creep by ~1e-4 per sweep far from a stationary point).
STALL_RTOL = 1e-3


def rebuild(problem, net: Network, layer: int, Z_new: np.ndarray) -> Network:
    """Network with hidden layer ``layer`` (1-based) replaced by the neurons ``Z_new``."""
    act, L = problem.activation, problem.depth
    Zs = net.forward(problem.X)
    Hs = layer_inputs(problem, Zs)
    Ws = list(net.weights[: layer - 1])
    Ws.append(np.linalg.lstsq(Hs[layer - 1], Z_new, rcond=None)[0].T)
    H = problem.with_input(act(Hs[layer - 1] @ Ws[-1].T))
    for j in range(layer, L - 1):  # keep Z_{j+1} of the old network
        W = np.linalg.lstsq(H, Zs[j], rcond=None)[0].T
        Ws.append(W)
        H = problem.with_input(act(H @ W.T))
    Ws.append(output_weights(problem, H))
    return Network(tuple(Ws), act, problem.bias).min_norm(problem)


class LayerPrograms:
    """Cache of layer programs, one per (layer kind, subspace); Parameters do the rest.

    A full-rank input shares one program; a restricted one is keyed on its dimension and
    reused while the subspace stays within :data:`SUBSPACE_ANGLE` (a rank-deficient input whose
    basis only rotates inside the same span, or moves by noise, does not rebuild)."""

    def __init__(self, problem, representation):
        self.problem, self.rep = problem, representation
        self.cache: dict = {}
        self.builds = 0

    def get(self, layer: int, H: np.ndarray) -> LayerProgram:
        p = self.problem
        last = layer == p.depth - 1
        _, U = factor_range(H, SUBSPACE_RTOL)
        restricted = U.shape[1] < p.N
        key = (last, U.shape[1] if restricted else None)
        for basis, prog in self.cache.get(key, []):
            if basis is None or np.linalg.norm(U - basis @ (basis.T @ U), 2) <= SUBSPACE_ANGLE:
                return prog
        prog = LayerProgram(p.N, p.activation, last=last, loss=p.loss if last else None,
                            k=p.k if last else None, bias=p.bias, representation=self.rep,
                            H=U if restricted else None)
        self.cache.setdefault(key, []).append((U if restricted else None, prog))
        self.builds += 1
        return prog


#: Work units of a step's fixed part, per ``N^2`` (forward pass, recovery of the neurons,
#: rebuild; measured ~1 s at N = 8 against ~0.4 ms per block variable).
STEP_UNITS_PER_N2 = 40


def step_cost(problem, representation: str, H: np.ndarray) -> int:
    """Work units of one step on the layer with input ``H``: ``40 N^2`` (its fixed part) plus
    the block variables of its cone (:func:`conic_dnn.cone.covariance_cone.pattern_cone_size`
    on the subspace the step uses, an upper estimate computed without enumerating a pattern;
    ``r(2r+1)`` for the lifted cone's ``2r x 2r`` block); 0 for a zero input; ``N^2 +
    r(r+1)/2`` for a linear activation (one PSD block, no factorisation). One unit is ~0.4 ms
    of solve and recovery (measured, N = 4..8)."""
    r = factor_range(H, SUBSPACE_RTOL)[1].shape[1]
    if r == 0:
        return 0
    if problem.activation.is_linear:  # one PSD block, neurons by an eigendecomposition
        return problem.N**2 + r * (r + 1) // 2
    fixed = STEP_UNITS_PER_N2 * problem.N**2
    if representation == "lifted":
        return fixed + r * (2 * r + 1)
    return fixed + pattern_cone_size(problem.N, r if r < problem.N else None)


def move_cost(problem) -> int:
    """Work units of one move (:func:`_try_moves`): the search for an improving neuron
    enumerates ``3^N`` faces (``3^(N-1)`` units) and the polish (``40 N^2``)."""
    return STEP_UNITS_PER_N2 * problem.N**2 + 3 ** (problem.N - 1)


@dataclass
class WorkBudget:
    """A deterministic budget of work units (:func:`step_cost`); ``units=None``: unlimited."""

    units: float | None = None
    spent: int = 0

    def remaining(self) -> float:
        return np.inf if self.units is None else self.units - self.spent

    def affords(self, cost: int) -> bool:
        return self.units is None or self.spent + cost <= self.units


def _charge(run: SweepRun, work: WorkBudget | None, cost: int) -> bool:
    """Spend ``cost`` units on ``run`` (and ``work``); False (a skip counted) when ``work``
    cannot afford it."""
    if work is not None:
        if not work.affords(cost):
            run.skipped += 1
            return False
        work.spent += cost
    run.work += cost
    return True


@dataclass
class SweepRun:
    """State and record of one run of sweeps (the network is always the best so far)."""

    network: Network
    objective: float
    history: list = field(default_factory=list)
    sweeps: int = 0
    rejected: int = 0
    inaccurate: int = 0
    failed: int = 0
    escapes: int = 0
    deletions: int = 0
    converged: bool = False
    timed_out: bool = False
    skipped: int = 0          # steps the work budget could not afford
    out_of_work: bool = False  # a whole sweep was unaffordable: the run stopped there
    work: int = 0             # work units spent (step_cost of every step taken)
    joints: int = 0           # joint re-fits of the last two layers (conic_dnn.deep.joint)
    joint_ok: bool = True     # column generation worked so far
    status: str = "optimal"
    solver: str = ""
    compile_time: float = 0.0
    solver_time: float = 0.0
    attempts: list = field(default_factory=list)


def _solve_layer(problem, run: SweepRun, prog: LayerProgram, layer: int, solver,
                 solver_options):
    """Solve one layer program; the info, or None on a solver failure (recorded)."""
    try:
        # an inaccurate step is kept without falling back to SCS (measured: 4 s per SCS
        # solve against 5 ms): the rebuilt network is accepted only if its loss is lower
        info = prog.solve(solver, solver_options, layer=layer, accept_inaccurate=True,
                          warn=False, fallback=solver is not None)
    except SolverFailedError as exc:
        run.failed += 1
        run.rejected += 1
        run.attempts.extend(exc.attempts or [])
        return None
    run.compile_time += info.compile_time
    run.solver_time += info.solver_time
    run.attempts.extend(info.attempts)
    if info.status != "optimal":
        run.status = info.status
        run.inaccurate += 1
    run.solver = info.solver
    return info


def layer_step(problem, run: SweepRun, progs: LayerPrograms, layer: int, solver=None,
               solver_options=None, seed: int = 0, work: WorkBudget | None = None) -> bool:
    """One block step on hidden layer ``layer``: program, neurons, rebuild, forward check.
    Returns False (nothing done, ``run.skipped`` counted) when ``work`` cannot afford it."""
    net, L = run.network, problem.depth
    Zs = net.forward(problem.X)
    Hs = layer_inputs(problem, Zs)
    cost = step_cost(problem, progs.rep, Hs[layer - 1])
    if layer == L - 1 and cost > joint_cost(problem) and run.joint_ok:
        # the last hidden layer with the output layer, by column generation: cheaper than
        # its pattern program here (conic_dnn.deep.joint); the program if it fails
        if not _charge(run, work, joint_cost(problem)):
            return False
        step = refit_last_two(problem, net, seed)
        if step is not None:
            run.joints += 1
            ok = step[1] <= run.objective
            if ok:
                run.network, run.objective = step
            else:
                run.rejected += 1
            run.history.append(run.objective)
            return True
        run.joint_ok = False  # not available for this problem: the pattern program from now
    if not _charge(run, work, cost):
        return False
    if cost == 0:
        # a zero input (dead previous layer): the only neurons are zero ones
        _offer_rebuild(problem, run, layer, np.zeros((problem.N, 0)))
        return True
    G_prev = Hs[layer - 1] @ Hs[layer - 1].T
    prog = progs.get(layer, Hs[layer - 1])
    if layer == L - 1:
        prog.set_data(problem.lam, G_prev, Y=problem.Y)
    else:
        prog.set_data(problem.lam, G_prev, B=Zs[layer] @ Zs[layer].T)
    info = _solve_layer(problem, run, prog, layer, solver, solver_options)
    if info is None:
        run.history.append(run.objective)
        return True
    # to the solver's accuracy (~1e-8), with the cheap factorisation budget: the neurons are
    # only a candidate, checked by the forward pass here and polished at the end
    rec = recover_neurons(prog.read(info), problem.activation, seed=seed, tol=1e-8,
                          rank_rtol=1e-9, cheap=True)
    Q = prog.cone.Q
    Zl = Q @ (Q.T @ rec.Z)
    if Zl.shape[1] > 0:
        keep, c = caratheodory(Zl, problem.activation)
        Zl = Zl[:, keep] * np.sqrt(c)
    if not _offer_rebuild(problem, run, layer, Zl):
        run.rejected += 1
    return True


def _offer_rebuild(problem, run: SweepRun, layer: int, Zl: np.ndarray) -> bool:
    try:
        cand = rebuild(problem, run.network, layer, Zl)
    except ValueError:  # the min-norm rebuild found a layer outside the numerical
        cand = None     # range (ill-conditioned input): reject the step
    value = loss_parameters(problem, cand.weights) if cand is not None else None
    ok = cand is not None and value <= run.objective
    if ok:
        run.network, run.objective = cand, value
    run.history.append(run.objective)
    return ok


def _order(L: int, sweep: str) -> list[int]:
    return {"backward": list(range(L - 1, 0, -1)), "forward": list(range(1, L)),
            "both": list(range(1, L)) + list(range(L - 2, 0, -1))}[sweep]


def _try_moves(problem, run: SweepRun, escape_tol: float, max_moves: int,
               work: WorkBudget | None = None) -> bool:
    """After a stalled sweep: an improving neuron, else the weakest mode deleted. True when
    the network improved. Nothing is tried when ``work`` cannot afford :func:`move_cost`."""
    if run.escapes + run.deletions >= max_moves:
        return False
    cost = move_cost(problem)
    if not _charge(run, work, cost):
        return False
    step = escape(problem, run.network, run.objective, escape_tol)
    if step is not None:
        run.escapes += 1
    else:
        step = delete_mode(problem, run.network, run.objective)
        if step is None:
            return False
        run.deletions += 1
    run.network, run.objective = step
    run.history.append(run.objective)
    return True


def run_sweeps(problem, net: Network, representation: str = "pattern", solver=None,
               solver_options=None, *, max_sweeps: int = 50, tol: float = 1e-6,
               sweep: str = "both", seed: int = 0, max_moves: int = 10,
               escape_tol: float = 1e-3, deadline: Deadline | None = None,
               progs: LayerPrograms | None = None, bar=None,
               work: WorkBudget | None = None) -> SweepRun:
    """Sweeps from ``net`` until a sweep gains less than ``tol`` (relative) with no move left,
    ``max_sweeps``, a sweep none of whose steps ``work`` affords (``out_of_work``; steps it
    cannot afford are skipped), or the deadline (checked after every layer step: the network
    so far is kept, ``timed_out`` set)."""
    deadline = deadline or Deadline(None)
    obj = loss_parameters(problem, net.weights)
    run = SweepRun(net, obj, [obj])
    progs = progs or LayerPrograms(problem, representation)
    order = _order(problem.depth, sweep)
    while run.sweeps < max_sweeps and not run.timed_out:
        run.sweeps += 1
        start = run.objective
        taken = 0
        for layer in order:
            taken += layer_step(problem, run, progs, layer, solver, solver_options, seed, work)
            if deadline.expired():
                run.timed_out = True
                break
        if not taken and not run.timed_out:
            run.sweeps -= 1
            run.out_of_work = True
            break
        if bar is not None:
            bar.update(1)
            bar.set_postfix(objective=f"{run.objective:.6g}")
        if run.timed_out:
            break
        gain = (start - run.objective) / max(abs(run.objective), 1e-300)
        if gain <= STALL_RTOL and _try_moves(problem, run, escape_tol, max_moves, work):
            continue
        if gain <= tol:
            run.converged = True
            break
    return run
