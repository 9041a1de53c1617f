"""Starting networks for the layer sweeps: the balanced linear start, a seeded random one, or
a network given by the user (trained anywhere)."""

from __future__ import annotations

import numpy as np

from ..core.network import Network

__all__ = ["initial_network", "INITS"]

INITS = ("linear", "random")


def _linear_start(problem) -> Network:
    """The ridge solution ``M`` of the end-to-end linear map, split in a balanced way over the
    layers and passed through the activation as ``s(z) - s(-z) = (a + b) z`` (pairs of opposite
    neurons)."""
    act, L, N = problem.activation, problem.depth, problem.N
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
    if problem.has_bias:  # W_1 already acts on [X, bias] (H0); zero bias columns after it
        Ws = [Ws[0]] + [np.hstack([W, np.zeros((W.shape[0], 1))]) for W in Ws[1:]]
    return Network(tuple(Ws), act, problem.bias).min_norm(problem)


def initial_network(problem, init="linear", seed: int = 0) -> Network:
    """Starting network for the sweeps.

    Parameters
    ----------
    problem : Problem
    init : Network, list of ndarray, "linear", "random" or None
        ``"linear"`` (also None): :func:`_linear_start`; falls back to ``"random"`` when
        ``a + b = 0`` (absolute value). ``"random"``: Gaussian weights of width N (seeded).
        A :class:`Network` (or its weight list) is used as given, made min-norm.
    seed : int

    Returns
    -------
    Network
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
    if not isinstance(init, str) or init not in INITS:
        raise ValueError(f"init: expected a Network, 'linear' or 'random', got {init!r}")
    if init == "linear" and act.a + act.b != 0:
        return _linear_start(problem)
    rng = np.random.default_rng(seed)
    e = 1 if problem.has_bias else 0
    dims = [problem.d, *([N] * (L - 1)), problem.k]
    Ws = [rng.normal(size=(dims[i + 1], dims[i] + e)) / np.sqrt(dims[i] + e)
          for i in range(L)]
    return Network(tuple(Ws), act, problem.bias).min_norm(problem)
