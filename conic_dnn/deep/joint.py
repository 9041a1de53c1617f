"""The last two layers re-fitted jointly, to their global optimum, by column generation.

With the layers before it fixed, the last hidden layer and the output layer form a *two-layer*
problem on the features ``s(Z_{L-2})`` (``X`` itself for depth 2): the same loss, ``lam``,
activation and bias. It is convex in covariance form and
:func:`conic_dnn.solve_column_generation` solves it with a certified gap, far faster than the
pattern program of the last hidden layer once that layer's input has full rank (measured,
depth 3, N = 8, leaky ReLU, bias 0.5: 0.55 s against ~4 s per layer-program step; the swept
network's layer 2 went from margin -0.005 to certified).

The result replaces the last two weight matrices only when its forward-pass loss is lower, so
the move is monotone like every other step; an uncertified or failed column generation is
ignored (the move then does nothing).
"""

from __future__ import annotations

import numpy as np

from ..core.errors import ConicDNNError
from ..core.formulations import loss_parameters
from ..core.network import Network

__all__ = ["refit_last_two", "JOINT_UNITS_PER_N2"]

#: Work units of one joint re-fit per ``N^2`` (measured ~0.5 s at N = 8, ~0.4 ms a unit).
JOINT_UNITS_PER_N2 = 20


def joint_cost(problem) -> int:
    """Work units of :func:`refit_last_two` (``20 N^2``)."""
    return JOINT_UNITS_PER_N2 * problem.N**2


def refit_last_two(problem, net: Network, seed: int = 0):
    """The network with its last two layers replaced by the certified global optimum of their
    two-layer problem (module docstring): ``(network, objective)``, or None when column
    generation failed or did not certify (the caller keeps it only if the loss is lower)."""
    from ..two_layer.column_generation import solve_column_generation

    L = problem.depth
    Zs = net.forward(problem.X)
    F = problem.activation(Zs[L - 3]) if L >= 3 else np.asarray(problem.X)
    if F.shape[1] == 0 or not np.all(np.isfinite(F)):
        return None
    try:
        sub = problem.replace(X=F, depth=2)
        res = solve_column_generation(sub, seed=seed)
    except (ValueError, TypeError, ConicDNNError, np.linalg.LinAlgError):
        return None
    if not res.certified or res.network is None:
        return None
    cand = Network(tuple(net.weights[: L - 2]) + tuple(res.network.weights),
                   problem.activation, problem.bias)
    return cand, loss_parameters(problem, cand.weights)
