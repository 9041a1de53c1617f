"""The deep solve's default: a portfolio of starts, layer sweeps from each, the better kept,
then per-layer certificates on the winner.

1. Multi-start gradient training (:func:`conic_dnn.train_lbfgs`, seeded, ``n_starts`` runs);
   every start's objective is recorded.
2. Layer sweeps (:func:`conic_dnn.deep.sweeps.run_sweeps`) from the best trained network *and*
   from the balanced linear start (or the user's ``init``), sharing one cache of layer
   programs. The sweeps are monotone, so the result is never above the best trained network.
3. Each start's result is finished (L-BFGS polish, exact balance/output rounds, dead neurons
   dropped, pruned to at most N(N+1) neurons per layer, the zero network compared); the lower
   one wins and :func:`conic_dnn.certify` certifies it layer by layer.

The start decides the basin, not the polish (measured on the issue's instances: polishing
between sweeps never changed it), which is why two starts of different kinds are swept.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..core.budget import Deadline
from ..core.errors import DecompositionWarning
from ..core.formulations import loss_parameters
from ..core.network import Network
from ..neurons.pruning import prune
from ..training.gradient import train_lbfgs
from ..training.kinks import kink_polish
from ..training.refine import network_from_hidden, rebalance
from ..training.refine import polish as polish_net
from .moves import NEGLIGIBLE_RTOL, drop_dead
from .starts import initial_network
from .sweeps import LayerPrograms, SweepRun, WorkBudget, run_sweeps

__all__ = ["run_portfolio", "Portfolio", "DEFAULT_STARTS", "TRAIN_WIDTH", "SWEEP_BUDGET",
           "CERTIFY_TOL"]

#: L-BFGS starts of the default portfolio (the "best of 10 restarts" it must never lose to).
DEFAULT_STARTS = 10
#: Hidden width of the trained networks (each start; pruning follows).
TRAIN_WIDTH = 32
#: Default work budget of all sweeps together, in work units (:func:`.sweeps.step_cost`: a
#: step costs ``40 N^2`` plus the block variables of its layer program, ~0.4 ms a unit,
#: measured). Deterministic, so results are reproducible bit for bit on any machine. 12000
#: units: ~15 steps at N = 4, ~4 at N = 6, ~2 per start at N = 8 (where a full-rank step
#: would cost 2560 + 9216 and the last layer goes to column generation instead); the
#: certificate stage (:mod:`.certified`) does the rest. ``None``: no such limit.
SWEEP_BUDGET = 12_000
#: Tolerance of the final per-layer certificate: its residuals are first order, ~sqrt of the
#: cone solvers' ~1e-8 loss accuracy (see :func:`conic_dnn.certify`, "Tolerances").
CERTIFY_TOL = 1e-3


@dataclass
class Portfolio:
    """What the portfolio did: the winner, every start's result and the training runs."""

    network: Network
    objective: float
    history: list
    winner: str
    runs: dict = field(default_factory=dict)        # start name -> SweepRun
    finished: dict = field(default_factory=dict)    # start name -> objective after finish
    training: object = None                         # TrainingResult or None
    programs: LayerPrograms | None = None
    timed_out: bool = False


def finish(problem, net: Network, obj: float, polish: bool, solver=None,
           solver_options=None) -> tuple[Network, float, list]:
    """Polish, exact rebalancing, dead neurons dropped, pruning and the zero network: each kept
    only if the loss does not rise (pruning a network above the width bound excepted, see
    :func:`_prune_into`). Returns ``(network, objective, new history entries)``."""
    hist = []

    def offer(cand, rtol=0.0):
        nonlocal net, obj
        val = loss_parameters(problem, cand.weights)
        if val <= obj * (1 + rtol):
            if val != obj:
                hist.append(val)
            net, obj = cand, val
            return True
        return False

    if polish:
        offer(polish_net(problem, net))
        offer(rebalance(problem, net))  # exact block steps; a gradient polish stalls at kinks
        offer(kink_polish(problem, net))  # ... and converges with them held at zero
    # dead neurons (kept only if the loss does not rise), then negligible ones (a rise of
    # rounding size allowed)
    for drop_rtol, rise in ((1e-12, 0.0), (NEGLIGIBLE_RTOL, 1e-12)):
        cand = drop_dead(problem, net, drop_rtol)
        if cand.widths != net.widths and not offer(cand, rtol=rise):
            # a rounding-level rise (a dead neuron with zero weights carries nothing): the
            # exact output-layer rounds usually recover it; a rise of at most 1e-12 is kept
            offer(rebalance(problem, cand), rtol=1e-12)
    _prune_into(problem, net, offer, polish)
    L = problem.depth
    zero = network_from_hidden(problem, [np.zeros((problem.N, 0))] * (L - 1), solver,
                               solver_options)
    offer(zero)  # the optimum can be the zero network (e.g. Y = 0)
    return net, obj, hist


def _prune_into(problem, net: Network, offer, polish: bool) -> None:
    """Offer the pruned network (same covariances: the loss can only fall to the activation
    loss). Where a layer stays above N(N+1) neurons (:func:`prune` keeps a layer whose
    pruning moves the loss by more than its ``loss_rtol``, through an ill-conditioned Gram
    matrix), prune with ``loss_rtol = 1e-6`` and polish: the width bound is the promise, a
    rise of at most 1e-6 (relative) its price. Should that still fail (seen only on networks
    cut short by a time limit, without the polish), the pruned network is taken whatever its
    loss: its objective is its own loss, and the portfolio compares starts by it."""
    bound = problem.N * (problem.N + 1)
    too_wide = max(net.widths, default=0) > bound
    for loss_rtol, rise in ((1e-9, 1e-12), (1e-6, 1e-6), (1.0, np.inf)):
        try:
            with warnings.catch_warnings():  # a layer kept unpruned: handled below
                warnings.simplefilter("ignore", DecompositionWarning)
                cand = prune(problem, net, loss_rtol=loss_rtol)
        except ValueError:  # an ill-conditioned layer: min-norm weights cannot be rebuilt
            continue
        if rise > 1e-12 and polish:
            cand = rebalance(problem, polish_net(problem, cand))
        accepted = offer(cand, rtol=rise if too_wide else 0.0)
        if not too_wide or (accepted and max(cand.widths, default=0) <= bound):
            return


def _starts(problem, init, n_starts, seed, width, deadline):
    """The named starting networks, trained first; and the training result."""
    starts, training = [], None
    if n_starts:
        training = train_lbfgs(problem, width, n_starts=n_starts, seed=seed, deadline=deadline)
        starts.append(("trained", training.network.min_norm(problem)))
    name = init if isinstance(init, str) else ("linear" if init is None else "init")
    starts.append((name, initial_network(problem, init, seed)))
    return starts, training


def run_portfolio(problem, representation="pattern", solver=None, solver_options=None, *,
                  init=None, n_starts: int | None = None, width: int = TRAIN_WIDTH,
                  max_sweeps: int = 50, tol: float = 1e-6, sweep: str = "both",
                  polish: bool = True, seed: int = 0, max_moves: int = 10,
                  escape_tol: float = 1e-3, sweep_budget: float | None = SWEEP_BUDGET,
                  deadline: Deadline | None = None, bar=None) -> Portfolio:
    """Train, sweep from every start, finish each, keep the best (module docstring).

    ``n_starts=None``: :data:`DEFAULT_STARTS` when ``init`` is None, else no training (the
    given start only). The sweeps share ``sweep_budget`` work units (:data:`SWEEP_BUDGET`),
    split evenly over the starts (units a start leaves unused pass on), within ``deadline``.
    """
    deadline = deadline or Deadline(None)
    if n_starts is None:
        n_starts = DEFAULT_STARTS if init is None else 0
    starts, training = _starts(problem, init, n_starts, seed, width, deadline)
    spent = 0
    progs = LayerPrograms(problem, representation)
    pf = Portfolio(None, float("inf"), [], "", training=training, programs=progs)
    for i, (name, net) in enumerate(starts):
        if deadline.expired():  # no time left: the start as it is
            run = SweepRun(net, loss_parameters(problem, net.weights))
            run.history.append(run.objective)
            run.timed_out = pf.timed_out = True
        else:
            work = WorkBudget(None if sweep_budget is None
                              else (sweep_budget - spent) / (len(starts) - i))
            run = run_sweeps(problem, net, representation, solver, solver_options,
                             max_sweeps=max_sweeps, tol=tol, sweep=sweep, seed=seed,
                             max_moves=max_moves, escape_tol=escape_tol, deadline=deadline,
                             progs=progs, bar=bar, work=work)
            spent += work.spent
        pf.runs[name] = run
        # out of time: no polish, but still the cheap clean-up (dead neurons, pruning)
        pf.timed_out = pf.timed_out or deadline.expired()
        fin = finish(problem, run.network, run.objective, polish and not pf.timed_out, solver,
                     solver_options)
        pf.finished[name] = fin[1]
        if fin[1] < pf.objective:
            pf.network, pf.objective, pf.winner = fin[0], fin[1], name
            pf.history = list(run.history) + fin[2]
    return pf
