"""Alternating block-coordinate minimisation for depth >= 3 (docs/MATH.md §5).

Start from a network (``init``), then sweep over the hidden layers. Each step solves the cone
program of one layer with its neighbours fixed (:class:`conic_dnn.cone.layer_program.LayerProgram`),
decomposes the solution into neurons, rebuilds a real network around them and keeps it only if
its *forward-pass* loss is not higher: the iterate is always a network and ``history`` (one
entry per layer step) never increases.

Rebuilding around a new layer ``l``: layers ``< l`` are unchanged; the next layer keeps its
pre-activations ``Z_{l+1}`` (min-norm fit from the new ``H_l``; exact when
``range(K_{l+1}) in range(G_l)``, which the program imposes); deeper layers are propagated and
the output layer re-optimised in closed form.

Sweep order: ``"both"`` (forward then backward, default), ``"backward"`` (L-1 down to 1) or
``"forward"``. The default was chosen by measurement (benchmarks/deep.py: "both" was the best
or within 2e-4 of it on every instance; mean excess over the best order 1e-4, against 2e-2
for backward and 3e-2 for forward).
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ..cone.layer_program import LayerProgram
from ..core.budget import Deadline
from ..core.errors import ConvergenceWarning, InaccurateSolutionWarning, SolverFailedError
from ..core.formulations import covariances_from_activations, layer_inputs, loss_parameters
from ..core.forward import insert_neuron
from ..core.linalg import factor_range
from ..core.network import Network
from ..core.result import Result
from ..neurons.decompose import caratheodory
from ..neurons.pruning import prune
from ..neurons.recovery import recover_neurons
from ..training.refine import network_from_hidden, output_weights, rebalance
from ..training.refine import polish as polish_net

__all__ = ["solve_alternating", "initial_network", "SWEEPS", "SUBSPACE_RTOL"]

SWEEPS = ("backward", "forward", "both")

#: A layer's neurons are sought in the span of the left singular vectors of its input ``H``
#: whose singular values exceed ``SUBSPACE_RTOL * sigma_max``. Directions below it would cost
#: ``lam * |z|^2 / sigma^2`` (> 1e8 times the cheapest direction), so an optimal step never
#: uses them, while keeping them makes ``pinv(G_{l-1})`` so ill-conditioned that Clarabel
#: fails (measured: eigenvalues of ``G`` at 1e-10 relative after a CP factorisation). The
#: restricted program is an inner approximation: its neurons are exactly realisable.
SUBSPACE_RTOL = 1e-3

#: A sweep that lowers the loss by less than this (relative) counts as stalled and triggers an
#: escape step (measured: stalled sweeps creep by ~1e-4 per sweep far from a stationary point).
STALL_RTOL = 1e-3


def initial_network(problem, init="linear", seed: int = 0) -> Network:
    """Starting network for the sweeps.

    ``"linear"``: the ridge solution ``M`` of the end-to-end linear map, split in a balanced
    way over the layers and passed through the activation as ``s(z) - s(-z) = (a + b) z``
    (pairs of opposite neurons); falls back to ``"random"`` when ``a + b = 0`` (absolute value).
    ``"random"``: Gaussian weights of width N (seeded). A :class:`Network` is used as given.
    """
    act, L, N = problem.activation, problem.depth, problem.N
    if isinstance(init, Network):
        if init.depth != L or init.input_dim != problem.d or init.output_dim != problem.k:
            raise ValueError(f"init: expected a network of depth {L} with input {problem.d} "
                             f"and output {problem.k}, got {init!r}")
        return init.min_norm(problem)
    if isinstance(init, (list, tuple)):
        return Network(tuple(init), act, problem.bias).min_norm(problem)
    if init is None:
        init = "linear"
    if init not in ("linear", "random"):
        raise ValueError(f"init: expected a Network, 'linear' or 'random', got {init!r}")
    e = 1 if problem.has_bias else 0
    if init == "linear" and act.a + act.b != 0:
        H0 = problem.H0
        M = np.linalg.solve(H0.T @ H0 + N * problem.lam * np.eye(H0.shape[1]), H0.T @ problem.Y).T
        U, s, Vt = np.linalg.svd(M, full_matrices=False)
        r = max(int(np.sum(s > 1e-12 * max(s[0], 1e-300))), 1)
        U, s, Vt = U[:, :r], s[:r], Vt[:r]
        root = s ** (1.0 / L)
        c = 1.0 / (act.a + act.b)
        Ws = [np.vstack([root[:, None] * Vt, -root[:, None] * Vt])]
        for _ in range(L - 2):
            D = np.diag(root) * c
            Ws.append(np.block([[D, -D], [-D, D]]))
        Ws.append(np.hstack([U * root, -U * root]) * c)
        if e:  # W_1 already acts on [X, bias] (H0); zero bias columns after it
            Ws = [Ws[0]] + [np.hstack([W, np.zeros((W.shape[0], 1))]) for W in Ws[1:]]
        return Network(tuple(Ws), act, problem.bias).min_norm(problem)
    rng = np.random.default_rng(seed)
    dims = [problem.d, *([N] * (L - 1)), problem.k]
    Ws = [rng.normal(size=(dims[i + 1], dims[i] + e)) / np.sqrt(dims[i] + e)
          for i in range(L)]
    return Network(tuple(Ws), act, problem.bias).min_norm(problem)


def _rebuild(problem, net: Network, layer: int, Z_new: np.ndarray) -> Network:
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


class _Programs:
    """Cache of layer programs: one per (layer kind, subspace); Parameters do the rest."""

    def __init__(self, problem, representation):
        self.problem, self.rep, self.cache = problem, representation, {}
        self.compile_time = self.solver_time = 0.0
        self.attempts = []

    def get(self, layer: int, H: np.ndarray, G_prev: np.ndarray) -> LayerProgram:
        p = self.problem
        last = layer == p.depth - 1
        s, U = factor_range(H, SUBSPACE_RTOL)
        restricted = len(s) < p.N
        key = (last, U.round(12).tobytes() if restricted else None)
        if key not in self.cache:
            self.cache[key] = LayerProgram(
                p.N, p.activation, last=last, loss=p.loss if last else None,
                k=p.k if last else None, bias=p.bias, representation=self.rep,
                H=U if restricted else None)
        return self.cache[key]


def _insert_neuron(problem, net: Network, layer: int, w_in, w_out, t: float) -> Network:
    """``net`` with one more neuron in hidden layer ``layer``: incoming row ``sqrt(t) w_in``,
    outgoing column ``sqrt(t) w_out`` (inserted before the bias column of ``W_{layer+1}``)."""
    Ws = insert_neuron(net.weights, layer, w_in, w_out, np.sqrt(t), problem.bias)
    return Network(tuple(Ws), problem.activation, problem.bias)


def _escape(problem, net: Network, obj: float, tol: float):
    """One escape step from a point where every layer program is optimal but the parameter
    loss is not stationary (the layer programs fix the next layer's covariance ``K_{l+1}``,
    and with a rank-deficient ``G_l`` the range condition ``range(K_{l+1}) in range(G_l)``
    couples neighbouring blocks, so block-coordinate descent can stall there).
    :func:`conic_dnn.certify` finds an improving neuron (with the next layer's weights fixed,
    or -- for docs/MATH.md's multiplier -- with them re-fitted to the same pre-activations);
    it is inserted with the best of a geometric range of sizes, then the network is polished.
    Returns ``(network, objective)`` or ``None`` if no layer has an improving neuron."""
    from ..certificates.certificate import certify

    # search only: an escape needs verified improving neurons, not bounds; the exhaustive
    # enumeration finds them exactly for N <= 8 (random starts only beyond)
    cert = certify(problem, net, tol=tol, bounds=False,
                   n_search=0 if problem.N <= 8 else 20)  # certify's max_faces = 3^8
    best = None
    for lc in cert.layers:
        if lc.certified or lc.incoming is None or lc.outgoing is None:
            continue
        refit = lc.multiplier == "covariance"  # verified with Z_{l+1} kept (re-fitted W_{l+1})
        for t in 2.0 ** -np.arange(0, 31):
            if refit:
                try:
                    cand = _insert_neuron(problem, cert.network, lc.layer, lc.incoming,
                                          np.zeros_like(lc.outgoing), t).min_norm(problem)
                except ValueError:  # outside the numerical range: try a smaller step
                    continue
            else:
                cand = _insert_neuron(problem, cert.network, lc.layer, lc.incoming,
                                      lc.outgoing, t)
            val = cand.loss(problem)
            if val < obj - 1e-12 * abs(obj) and (best is None or val < best[1]):
                best = (cand, val)
                break
    if best is None:
        return None
    cand = polish_net(problem, best[0]).min_norm(problem)
    val = cand.loss(problem)
    return (cand, val) if val < best[1] else best


def solve_alternating(problem, representation="pattern", solver=None, solver_options=None, *,
                      init="linear", max_sweeps: int = 50, tol: float = 1e-6,
                      sweep: str = "both", polish: bool = True, seed: int = 0,
                      progress: bool = False, max_escapes: int = 10,
                      escape_tol: float = 1e-3, deadline: Deadline | None = None) -> Result:
    """Block-coordinate minimisation over the hidden layers (see :func:`conic_dnn.solve`)."""
    if sweep not in SWEEPS:
        raise ValueError(f"sweep: expected one of {', '.join(SWEEPS)}, got {sweep!r}")
    if isinstance(max_sweeps, bool) or not isinstance(max_sweeps, int) or max_sweeps < 1:
        raise ValueError(f"max_sweeps: expected a positive integer, got {max_sweeps!r}")
    t0 = time.perf_counter()
    L = problem.depth
    net = initial_network(problem, init, seed)
    obj = loss_parameters(problem, net.weights)
    history = [obj]
    order = {"backward": list(range(L - 1, 0, -1)), "forward": list(range(1, L)),
             "both": list(range(1, L)) + list(range(L - 2, 0, -1))}[sweep]
    progs = _Programs(problem, representation)
    status, solver_used, converged, rejected, inaccurate = "optimal", "", False, 0, 0
    failed = 0
    n_sweeps = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_sweeps, desc="sweeps", unit="sweep")
    escapes = 0
    while n_sweeps < max_sweeps:
        n_sweeps += 1
        start = obj
        for layer in order:
            Zs = net.forward(problem.X)
            Hs = layer_inputs(problem, Zs)
            G_prev = Hs[layer - 1] @ Hs[layer - 1].T
            if factor_range(Hs[layer - 1], SUBSPACE_RTOL)[1].shape[1] == 0:
                # a zero input (dead previous layer): the only neurons are zero ones
                try:
                    cand = _rebuild(problem, net, layer, np.zeros((problem.N, 0)))
                    cand_obj = loss_parameters(problem, cand.weights)
                except ValueError:
                    cand, cand_obj = None, float("inf")
                if cand_obj <= obj:
                    net, obj = cand, cand_obj
                history.append(obj)
                continue
            prog = progs.get(layer, Hs[layer - 1], G_prev)
            if layer == L - 1:
                prog.set_data(problem.lam, G_prev, Y=problem.Y)
            else:
                prog.set_data(problem.lam, G_prev, B=Zs[layer] @ Zs[layer].T)
            # an inaccurate step is kept without falling back to SCS (measured: 4 s per SCS
            # solve against 5 ms): the rebuilt network is accepted only if its loss is lower
            # and a failed one is skipped (the step is rejected) rather than handed to SCS
            try:
                info = prog.solve(solver, solver_options, layer=layer, accept_inaccurate=True,
                                  warn=False, fallback=solver is not None)
            except SolverFailedError as exc:
                failed += 1
                progs.attempts.extend(exc.attempts or [])
                rejected += 1
                history.append(obj)
                continue
            progs.compile_time += info.compile_time
            progs.solver_time += info.solver_time
            progs.attempts.extend(info.attempts)
            if info.status != "optimal":
                status = info.status
                inaccurate += 1
            solver_used = info.solver
            sol = prog.read(info)
            # to the solver's accuracy (~1e-8): a tighter residual only spends the restart
            # budget on noise (measured: 20-25 % of the time at N = 4, 6, same objectives to
            # 4e-7; each step is kept only if the rebuilt network's loss does not rise)
            rec = recover_neurons(sol, problem.activation, seed=seed, tol=1e-8, rank_rtol=1e-9)
            Q = prog.cone.Q
            Zl = Q @ (Q.T @ rec.Z)
            if Zl.shape[1] > 0:
                keep, c = caratheodory(Zl, problem.activation)
                Zl = Zl[:, keep] * np.sqrt(c)
            try:
                cand = _rebuild(problem, net, layer, Zl)
            except ValueError:  # the min-norm rebuild found a layer outside the numerical
                cand = None     # range (ill-conditioned input): reject the step
            cand_obj = loss_parameters(problem, cand.weights) if cand else float("inf")
            if cand_obj <= obj:
                net, obj = cand, cand_obj
            else:
                rejected += 1
            history.append(obj)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(objective=f"{obj:.6g}")
        gain = (start - obj) / max(abs(obj), 1e-300)
        if gain <= STALL_RTOL and escapes < max_escapes:
            # stalled (slow sweeps are the signature of the range coupling between layers):
            # try an escape step along a verified improving neuron
            step = _escape(problem, net, obj, escape_tol)
            if step is not None:
                escapes += 1
                net, obj = step
                history.append(obj)
                continue
        if gain <= tol:
            converged = True
            break
    if bar is not None:
        bar.close()
    if polish:
        pol = polish_net(problem, net)
        pobj = loss_parameters(problem, pol.weights)
        if pobj < obj:
            net, obj = pol, pobj
            history.append(obj)
        reb = rebalance(problem, net)  # exact block steps; a gradient polish stalls at kinks
        robj = loss_parameters(problem, reb.weights)
        if robj < obj:
            net, obj = reb, robj
            history.append(obj)
    # escape steps and the polish may leave more than N(N+1) neurons: prune (same covariances,
    # so the loss can only fall to the activation loss)
    try:
        pruned = prune(problem, net)
        pobj = loss_parameters(problem, pruned.weights)
    except ValueError:  # an ill-conditioned layer: min-norm weights cannot be rebuilt
        pruned, pobj = net, obj
    too_wide = max(net.widths, default=0) > problem.N * (problem.N + 1)
    if pobj <= obj or (too_wide and pobj <= obj * (1 + 1e-12)):  # rounding only
        if pobj != obj:
            history.append(pobj)
        net, obj = pruned, pobj
    if not converged:
        warnings.warn(f"alternating minimisation stopped at max_sweeps={max_sweeps} before the "
                      f"relative improvement fell below tol={tol:g}", ConvergenceWarning,
                      stacklevel=3)
    # the zero network with its optimal output layer (the same construction as depth 2)
    zero = network_from_hidden(problem, [np.zeros((problem.N, 0))] * (L - 1), solver,
                               solver_options)
    if zero.loss(problem) <= obj:  # the optimum can be the zero network (e.g. Y = 0)
        net, obj = zero, zero.loss(problem)
        history.append(obj)
    if failed:
        warnings.warn(f"{failed} layer program(s) could not be solved and were skipped "
                      f"(solver failures: see info['attempts'])", InaccurateSolutionWarning,
                      stacklevel=3)
    if inaccurate:
        warnings.warn(f"{inaccurate} layer program(s) were solved only to reduced accuracy "
                      f"(optimal_inaccurate); every step was checked by the network's own loss",
                      InaccurateSolutionWarning, stacklevel=3)
    Zs = net.forward(problem.X)
    msg = (f"layerwise minimisation {'converged' if converged else 'did not converge'} in "
           f"{n_sweeps} sweep(s), {escapes} escape step(s)"
           f"{f', {failed} failed layer program(s) skipped' if failed else ''}; no global "
           f"lower bound for depth >= 3 (use certify() for per-layer certificates)")
    return Result(
        objective=obj, lower_bound=float("-inf"), gap=float("inf"), certified=False,
        network=net, covariances=covariances_from_activations(problem, Zs), history=history,
        status=status, solver=solver_used, solve_time=time.perf_counter() - t0,
        success=converged, message=msg, method=f"alternating/{representation}",
        exact=False,
        info={"sweeps": n_sweeps, "rejected_steps": rejected,
              "inaccurate_steps": inaccurate, "escapes": escapes,
              "failed_steps": failed, "sweep": sweep,
              "compile_time": progs.compile_time, "solver_time": progs.solver_time,
              "attempts": progs.attempts, "programs_built": len(progs.cache)})
