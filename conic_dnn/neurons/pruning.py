"""Pruning: remove neurons without changing any layer's covariances (docs/MATH.md §4).

For every hidden layer the neurons' generators ``g(z) = (z z^T, s(z) s(z)^T)`` are reduced to
an independent subfamily with the same conic combination
(:func:`conic_dnn.neurons.decompose.caratheodory`), the kept neurons are rescaled by the square
roots of their weights, and every weight matrix is rebuilt as the min-norm one. The covariances
``(K_l, G_l)`` of every layer are unchanged, hence so are the next layer's pre-activations and
the activation loss: the pruned network's loss is the activation loss of the input network
(equal to its loss when the input is already min-norm).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..core.errors import DecompositionWarning
from ..core.formulations import activations_from_weights, loss_activations, min_norm_weights
from ..core.forward import check_weights
from ..core.network import Network
from ..core.problem import Problem
from .decompose import caratheodory, check_generator_size

__all__ = ["prune", "as_network", "check_matches", "PRUNE_METHODS", "RTOL_FLOOR"]

PRUNE_METHODS = ("caratheodory", "lp")

#: Tightest rank tolerance tried when a pruning at ``rtol`` moves the loss beyond
#: ``loss_rtol``: directions of the generator family below ``rtol`` are dropped by the rank
#: cut, and through an ill-conditioned next-layer Gram matrix (cond ~1e6 on a trained layer)
#: a 7e-11 relative residual of the sums moved the loss by 3e-8. A tighter cut keeps a few
#: more neurons and matches the sums to rounding.
RTOL_FLOOR = 1e-14


def as_network(problem: Problem, network) -> Network:
    """A :class:`Network` from a ``Network``, a list of weight matrices, an ``.npz`` path or a
    ``torch.nn.Sequential`` (optional ``torch`` extra; its biases map to the problem's ``bias``
    column, :func:`conic_dnn.interop.from_torch`), checked against ``problem``: the same
    activation (slopes), bias, depth and chaining shapes (a list of weights is taken with the
    problem's activation and bias).

    Raises
    ------
    TypeError, ValueError
        When the network does not match ``problem`` (naming what differs: a network with
        another activation computes another function, so pruning or certifying it against
        this problem would report the loss of a network it is not), or for an unknown type.
    """
    if isinstance(network, Network):
        net = network
    elif isinstance(network, (str, Path)):
        net = Network.load(network)
    elif isinstance(network, (list, tuple)):
        net = Network(tuple(network), problem.activation, problem.bias)
    elif _is_torch(network):
        from ..interop import from_torch

        net = from_torch(network, bias=problem.bias)
    else:
        raise TypeError(f"network: expected a Network, a list of weight matrices, an .npz path "
                        f"or a torch.nn.Sequential, got {type(network).__name__}")
    check_matches(problem, net)
    return net


def _same_activation(a, b) -> bool:
    if a.is_homogeneous and b.is_homogeneous:
        return (float(a.a), float(a.b)) == (float(b.a), float(b.b))
    return a is b or (not a.is_homogeneous and not b.is_homogeneous and a.name == b.name
                      and getattr(a, "func", None) is getattr(b, "func", None))


def check_matches(problem: Problem, net: Network) -> None:
    """Raise ``ValueError`` unless ``net`` has ``problem``'s activation, bias, depth and
    shapes (the message names the first difference)."""
    act = problem.activation
    if not _same_activation(net.activation, act):
        raise ValueError(f"network: expected the problem's activation {act.name!r}, got "
                         f"{net.activation.name!r} (pass a network of the same activation, or "
                         f"a Problem with activation={net.activation.name!r})")
    if net.bias != problem.bias:
        raise ValueError(f"network: expected bias {problem.bias:g} (the problem's), got "
                         f"{net.bias:g}")
    if len(net.weights) != problem.depth:
        raise ValueError(f"network: expected {problem.depth} weight matrices (the problem's "
                         f"depth), got {len(net.weights)}")
    check_weights(list(net.weights), problem.d, problem.k, problem.depth, problem.bias,
                  name="network weights")


def _check_method(method: str) -> str:
    if method not in PRUNE_METHODS:
        raise ValueError(f"method: expected one of {', '.join(PRUNE_METHODS)}, got {method!r}")
    return method


def _rank_rtols(rtol: float) -> tuple[float, ...]:
    """The rank tolerances tried, ``rtol`` first, then tighter ones down to ``RTOL_FLOOR``."""
    out = [rtol]
    while out[-1] * 1e-2 >= RTOL_FLOOR:
        out.append(out[-1] * 1e-2)
    return tuple(out)


def _prune_layer(problem, Zs, l, Z, methods, rtols, ref, loss_rtol, max_bytes=None):
    """Activations with hidden layer ``l`` pruned, the first candidate (rank tolerance by
    rank tolerance, method by method) whose activation loss is within ``loss_rtol`` of
    ``ref``; ``None`` if none is."""
    for rt in rtols:
        for m in methods:
            keep, c = caratheodory(Z, problem.activation, rtol=rt, method=m,
                                   **({} if max_bytes is None else {"max_bytes": max_bytes}))
            cand = list(Zs)
            cand[l] = Z[:, keep] * np.sqrt(c)
            if abs(loss_activations(problem, cand) - ref) <= loss_rtol * max(abs(ref), 1e-300):
                return cand
    return None


def prune(problem: Problem, network, method: str = "caratheodory",
          rtol: float = 1e-10, loss_rtol: float = 1e-9,
          max_bytes: float | None = None) -> Network:
    """Remove neurons without changing any layer's covariances or the output.

    What is kept, precisely: the covariances ``(K_l, G_l)`` of every hidden layer and the
    output pre-activations ``Z_L`` (so the data term ``C(Z_L)``), to the sum tolerance of
    :func:`~conic_dnn.neurons.decompose.caratheodory`. The weights are rebuilt min-norm, so
    the pruned network's loss is the *activation loss* of the input,
    ``loss_activations(problem, activations_from_weights(problem, weights))``, to
    ``loss_rtol``: equal to the input's loss when the input already has min-norm weights (a
    solve's network, or any stationary point of training), and below it otherwise (never
    above: the min-norm weights are the cheapest ones with these activations).

    Parameters
    ----------
    problem : Problem
        Supplies the data ``X`` on which the covariances are taken, the activation and ``lam``.
        The activation must be positively homogeneous.
    network : Network, list of ndarray, path to ``.npz`` or torch.nn.Sequential
        ``weights[l]`` of shape ``(n_{l+1}, n_l [+1 with bias])``. A torch module is converted
        exactly (:func:`conic_dnn.interop.from_torch` with ``bias=problem.bias``) or refused.
    method : {"caratheodory", "lp"}
        ``"caratheodory"``: null-space elimination (at most ``rank`` neurons remain, the rank of
        the generator family, ``<= N(N+1)``). ``"lp"``: a vertex of ``{c >= 0 : sum_j c_j g_j
        = sum_j g_j}`` by the dual simplex (HiGHS), which is a basic solution with the same
        bound and often fewer neurons on degenerate data.
    rtol : float
        Relative singular-value tolerance of the generator family's rank. When no pruning at
        ``rtol`` meets ``loss_rtol``, tighter tolerances (``rtol * 1e-2``, ... down to
        ``RTOL_FLOOR``) are tried: they keep a few more neurons and match the sums closer.
    loss_rtol : float, default 1e-9
        Guard: a layer's pruning is kept only if the loss of the rebuilt network stays within
        ``loss_rtol`` (relative) of the input's activation loss. The generator sums are
        matched to 1e-9, but through an ill-conditioned Gram matrix of the next layer's input
        the min-norm weights can amplify that (measured: 1.3e-4 on an LP-pruned layer of an
        interior-point solution). A layer that fails is pruned with the other method and
        tighter rank tolerances; if all fail it is kept as it was, with a
        :class:`DecompositionWarning` (so the loss never moves beyond ``loss_rtol`` unsaid).
    max_bytes : float, optional
        Memory guard per layer (default ``MAX_GENERATOR_BYTES`` = 2 GiB): every hidden layer's
        ``N(N+1) x width`` generator matrix is estimated before anything is pruned, and a
        :class:`~conic_dnn.SizeLimitError` names the layer when it does not fit.

    Returns
    -------
    Network or torch.nn.Sequential
        A ``torch.nn.Sequential`` (same dtype as its parameters) when ``network`` was one, else
        a :class:`Network`. Hidden widths ``<= min(width, N(N+1))`` (unless a layer was kept,
        see ``loss_rtol``); min-norm weights. Its loss equals
        ``loss_activations(problem, activations_from_weights(problem, weights))`` to
        ``loss_rtol``.
    """
    _check_method(method)
    if not problem.activation.is_homogeneous:
        raise ValueError(f"problem.activation: pruning needs a positively homogeneous "
                         f"activation, got {problem.activation.name!r}")
    if isinstance(loss_rtol, bool) or not isinstance(loss_rtol, (int, float)) \
            or not loss_rtol >= 0:
        raise ValueError(f"loss_rtol: expected a number >= 0, got {loss_rtol!r}")
    net = as_network(problem, network)
    for l, W in enumerate(net.weights[:-1]):  # before any allocation of a generator matrix
        check_generator_size(problem.N, W.shape[0], max_bytes, f"prune: hidden layer {l + 1}")
    Zs = activations_from_weights(problem, list(net.weights))
    new = list(Zs)
    act = problem.activation
    ref = loss_activations(problem, Zs)
    methods = ("nullspace", "lp") if method == "caratheodory" else ("lp", "nullspace")
    kept = []
    for l in range(problem.depth - 1):  # hidden layers, front to back
        Z = Zs[l]
        if Z.shape[1] == 0:
            continue
        cand = _prune_layer(problem, new, l, Z, methods, _rank_rtols(rtol), ref, loss_rtol,
                            max_bytes)
        if cand is None:
            kept.append(l + 1)
        else:
            new = cand
    if kept:
        warnings.warn(f"prune: hidden layer(s) {kept} kept unpruned: every pruning moved the "
                      f"loss by more than loss_rtol={loss_rtol:g} (ill-conditioned next-layer "
                      f"Gram matrix); pass a larger loss_rtol to prune them",
                      DecompositionWarning, stacklevel=2)
    pruned = Network(tuple(min_norm_weights(problem, new)), act, problem.bias)
    if _is_torch(network):  # a module in, a module out (same dtype)
        from ..interop import to_torch

        return to_torch(pruned, dtype=next(network.parameters()).dtype)
    return pruned


def _is_torch(obj) -> bool:
    return type(obj).__module__.split(".")[0] == "torch"


# --- the tight example ---------------------------------------------------------------------
