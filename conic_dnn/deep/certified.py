"""The last stage of the deep solve: certify the winner, and while a layer has a verified
improving neuron, take it and certify again.

The per-layer certificate (:func:`conic_dnn.certify`) needs no layer program: it tests the
network's own gradient pair against the dual cone (exhaustively for ``N <= 8``). When it fails
on a layer with a *verified* improving neuron (a real forward pass confirmed the decrease),
that layer was not optimal. An uncertified last hidden layer is re-fitted jointly with the
output layer to their certified global optimum (:mod:`conic_dnn.deep.joint`); an uncertified
middle layer gets a step of its own layer program (the sweeps may not have afforded it;
again once the network has moved, and as a last resort);
otherwise the neuron is the way out: it is inserted
(:func:`conic_dnn.deep.moves.escape`, reusing the certificate's neurons), the network is
finished again (polish, exact rebalancing, the kink-holding polish of
:mod:`conic_dnn.training.kinks`, pruning) and certified again. Measured on depth 3,
N = 8 (benchmarks/deep.py): the sweeps' network had layer 1 at margin -0.32, stationarity
0.23; six such rounds (about 2 s each) certified both layers.

The number of rounds is bounded (``rounds``), so the stage is deterministic; the wall-clock
``deadline`` is only an outer safety net. Every round is kept only if it lowers the loss.
"""

from __future__ import annotations

from ..core.budget import Deadline
from ..core.network import Network
from .joint import refit_last_two
from .moves import escape
from .portfolio import finish
from .sweeps import SweepRun, layer_step

__all__ = ["certify_and_improve", "CERTIFY_ROUNDS"]

#: Rounds of (re-fit or improving neuron, finish, certify) at most. Measured on
#: benchmarks/deep.py (with the kink-holding polish in ``finish``): 13/14 certified, 12 of
#: them within 2 rounds, depth 3 N = 10 in 5 (~2-4 s a round); an earlier variant needed 7
#: and 9 rounds on two instances, which 5 rounds cut short.
CERTIFY_ROUNDS = 12

#: A middle layer's program step is tried again once the loss has fallen by this much
#: (relative) since its last try: the escapes move the network, and the layer program from
#: the new point can make the progress they make only slowly (measured on benchmarks/deep.py,
#: depth 4 N = 6 abs: with one try per layer, 12 rounds crept by ~1e-9 each; with the retries
#: the layer program took the larger steps, in 4 rounds).
REPROGRAM_RTOL = 1e-7


def _certify(problem, net: Network, tol: float, bounds: bool = True):
    from ..certificates.certificate import certify

    # up to N = 8 the enumeration of faces is exhaustive (exact): no random search needed;
    # N = 9, 10 enumerate too (3^10 faces: measured 4.2 s against 2.9 s for the lifted
    # relaxation at N = 10, which is sufficient only and refused optimal layers)
    return certify(problem, net, tol=tol, n_search=0 if problem.N <= 8 else 20,
                   max_faces=3 ** max(8, min(problem.N, 10)), bounds=bounds)


def _program_step(problem, net, obj, layer, progs, solver, solver_options, seed):
    """One layer-program step (:func:`conic_dnn.deep.sweeps.layer_step`) on ``layer``."""
    run = SweepRun(net, obj, [obj])
    layer_step(problem, run, progs, layer, solver, solver_options, seed)
    return (run.network, run.objective) if run.objective < obj else None


def _round(problem, net, obj, tol, cert, polish, solver, solver_options, seed, progs,
           programmed: dict, joint: bool = True):
    """One round: an uncertified last hidden layer re-fitted jointly with the output layer
    (:func:`conic_dnn.deep.joint.refit_last_two`); else an uncertified middle layer's own
    program (once per layer and point: ``programmed`` maps a layer to the objective it was
    last tried at; it is tried again once the loss has fallen by ``REPROGRAM_RTOL``); else the
    certificate's best verified improving
    neuron; then finish. The new ``(network, objective)`` or None when nothing lowers the
    loss."""
    step = None
    if joint and not cert.layers[-1].certified:
        step = refit_last_two(problem, net, seed)
        if step is not None and not step[1] < obj:
            step = None

    def program(due):
        """The first uncertified middle layer (last first) that is ``due(last tried at)``:
        its program step, or None."""
        for lc in cert.layers[:-1][::-1]:
            if progs is not None and not lc.certified and due(programmed.get(lc.layer)):
                programmed[lc.layer] = obj
                found = _program_step(problem, net, obj, lc.layer, progs, solver,
                                      solver_options, seed)
                if found is not None:
                    return found
        return None

    if step is None:
        step = program(lambda last: last is None or obj < last * (1 - REPROGRAM_RTOL))
    if step is None:
        # the full certificate reports, per layer, the multiplier with the best margin; its
        # violating neuron need not be the one that lowers the loss most (an optimised V is
        # not the gradient), so the search's own multipliers (backprop, covariance) are
        # offered too and the lower result taken
        steps = [escape(problem, net, obj, tol, cert=cert)]
        if joint:
            steps.append(escape(problem, net, obj, tol))
        steps = [s for s in steps if s is not None]
        step = min(steps, key=lambda s: s[1]) if steps else None
    if step is None:
        # nothing else lowers the loss: the program of every uncertified middle layer not yet
        # tried at this very point (its neurons may all be blocked by kinks of the next layer)
        step = program(lambda last: last != obj)
    if step is None:
        return None
    cand, val, _ = finish(problem, step[0], step[1], polish, solver, solver_options)
    return (cand, val) if val < obj else None


def certify_and_improve(problem, net: Network, obj: float, tol: float, *,
                        rounds: int = CERTIFY_ROUNDS, polish: bool = True, solver=None,
                        solver_options=None, seed: int = 0, progs=None,
                        deadline: Deadline | None = None):
    """Certify ``net``; while not certified and a round (:func:`_round`) lowers the loss,
    take it, finish and certify again (at most ``rounds`` times). ``progs``: the
    :class:`~conic_dnn.deep.sweeps.LayerPrograms` cache for middle layers' program steps
    (None: no program steps).

    Returns ``(network, objective, certificate, rounds taken, history entries)``: the
    certificate is that of the returned network.
    """
    deadline = deadline or Deadline(None)
    taken, hist, programmed = 0, [], {}
    # the first round from the search alone (no dual-cone bounds: the optimised multiplier's
    # SDP is most of a certificate's cost, 5-13 s at N = 8), every later one from the full
    # certificate (measured, depth 3 N = 8: searching alone throughout kept taking
    # first-order neurons on a layer the optimised multiplier certifies within tol: 10 rounds
    # and 17 s against 4 rounds and 13 s)
    cert, full = _certify(problem, net, tol, bounds=False), False
    while taken < rounds and not deadline.expired() and not (full and cert.certified):
        step = _round(problem, net, obj, tol, cert, polish, solver, solver_options, seed,
                      progs, programmed, joint=full)  # the joint re-fit has just run
        if step is None and full:
            break
        if step is not None:
            net, obj = step
            taken += 1
            hist.append(obj)
        cert, full = _certify(problem, net, tol), True
    if not full:
        cert = _certify(problem, net, tol)
    return net, obj, cert, taken, hist
