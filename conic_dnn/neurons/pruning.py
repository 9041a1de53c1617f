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
from .decompose import caratheodory

__all__ = ["prune", "as_network", "PRUNE_METHODS"]

PRUNE_METHODS = ("caratheodory", "lp")


def as_network(problem: Problem, network) -> Network:
    """A :class:`Network` from a ``Network``, a list of weight matrices, an ``.npz`` path or a
    ``torch.nn.Sequential`` (optional ``torch`` extra; its biases map to the problem's ``bias``
    column, :func:`conic_dnn.interop.from_torch`).

    Raises
    ------
    TypeError, ValueError
        When the weights do not chain with ``problem``'s dimensions, or for an unknown type.
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
    check_weights(list(net.weights), problem.d, problem.k, problem.depth, problem.bias,
                  name="network weights")
    if net.bias != problem.bias:
        raise ValueError(f"network: expected bias {problem.bias:g} (the problem's), got "
                         f"{net.bias:g}")
    return net


def _check_method(method: str) -> str:
    if method not in PRUNE_METHODS:
        raise ValueError(f"method: expected one of {', '.join(PRUNE_METHODS)}, got {method!r}")
    return method


def prune(problem: Problem, network, method: str = "caratheodory",
          rtol: float = 1e-10, loss_rtol: float = 1e-9) -> Network:
    """Remove neurons without changing any layer's covariances (so without raising the loss).

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
        Relative singular-value tolerance of the generator family's rank.
    loss_rtol : float, default 1e-9
        Guard: a layer's pruning is kept only if the loss of the rebuilt network stays within
        ``loss_rtol`` (relative) of the input's activation loss. The generator sums are
        matched to 1e-9, but through an ill-conditioned Gram matrix of the next layer's input
        the min-norm weights can amplify that (measured: 1.3e-4 on an LP-pruned layer of an
        interior-point solution). A layer that fails is pruned with the other method; if that
        fails too it is kept as it was, with a :class:`DecompositionWarning`.

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
        for m in methods:
            keep, c = caratheodory(Z, act, rtol=rtol, method=m)
            cand = list(new)
            cand[l] = Z[:, keep] * np.sqrt(c)
            if abs(loss_activations(problem, cand) - ref) <= loss_rtol * max(abs(ref), 1e-300):
                new = cand
                break
        else:
            kept.append(l + 1)
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
