"""A gradient polish that holds pre-activations at the kink of ``s``.

Why
    The layer programs' optima sit on faces of the covariance cone: some hidden pre-activations
    are exactly zero on some samples (the kink of ReLU, leaky ReLU, ``|x|``). After recovery and
    an ordinary L-BFGS polish they are ``1e-6 .. 1e-16`` away from zero, on either side, and
    L-BFGS stalls there (its line search meets the kink in every direction). Two things go
    wrong at such a point (measured on ``benchmarks/deep.py``, depth 4, N = 8): the next
    layer's weights are not stationary (residual ~1e-2, so no multiplier of the certificate
    fits), and the certificate's improving neurons are first-order rates that a sign flip of
    a nearby pre-activation cancels after a step of ~1e-4 (a gain of ~1e-9 a round).

What
    :func:`kink_polish` takes every hidden pre-activation with ``|Z_l[i, j]| <= rtol *
    max |Z_l|`` as *meant* to be at the kink and runs L-BFGS on the weights restricted to the
    affine set where those entries are exactly zero: row ``j`` of ``W_l`` moves in the null
    space of the rows ``i`` of the layer input ``H_{l-1}``. On that set the loss is smooth near
    the point, so L-BFGS converges; the result is kept only if its loss is lower
    (measured there: 9e-6 lower, and two of the three layers then certify).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import null_space
from scipy.optimize import minimize

from ..core.formulations import layer_inputs, loss_parameters
from ..core.network import Network
from .gradient import loss_and_gradient, single_blas_thread

__all__ = ["kink_polish", "KINK_RTOL"]

#: Pre-activations within this fraction of their layer's largest one are held at the kink.
KINK_RTOL = 1e-4


def _row_bases(problem, net: Network, rtol: float):
    """Per weight matrix, per row: an orthonormal basis of the row's allowed directions
    (``None``: the row is free; an ``(m, 0)`` basis: the row is held fixed)."""
    Ws = net.weights
    Zs = net.forward(problem.X)
    Hs = layer_inputs(problem, Zs)
    bases = []
    for l, W in enumerate(Ws):
        rows = [None] * W.shape[0]
        if l < len(Ws) - 1:  # hidden layers only: the output layer has no kink
            Z = Zs[l]
            scale = float(np.abs(Z).max(initial=0.0))
            if scale > 0:
                for j in range(W.shape[0]):
                    S = np.abs(Z[:, j]) <= rtol * scale
                    if S.any():
                        rows[j] = null_space(Hs[l][S])
        bases.append(rows)
    return bases


@single_blas_thread
def kink_polish(problem, net: Network, rtol: float = KINK_RTOL, max_iter: int = 2000,
                rounds: int = 5) -> Network:
    """L-BFGS with the near-zero hidden pre-activations held exactly at the kink (module
    docstring), repeated while it lowers the loss (entries that reach the kink during one
    round are held in the next; measured: 2-3 rounds to a standstill). Returns the polished
    network if its loss is lower, else ``net`` itself.

    Parameters
    ----------
    problem : Problem
    net : Network
        Any network for ``problem``.
    rtol : float
        Entries of ``Z_l`` with ``|Z_l[i, j]| <= rtol * max |Z_l|`` are held at zero.
    max_iter : int
        L-BFGS iterations per round at most.
    rounds : int
        Rounds at most.
    """
    if problem.activation.is_linear:
        return net  # no kink
    for _ in range(rounds):
        cand = _one_round(problem, net, rtol, max_iter)
        if cand is net:
            break
        net = cand
    return net


def _one_round(problem, net: Network, rtol: float, max_iter: int) -> Network:
    Ws = net.weights
    bases = _row_bases(problem, net, rtol)
    if all(B is None for rows in bases for B in rows):
        return net  # nothing at a kink: the ordinary polish applies
    # parameters: free rows entire, constrained rows by their coefficients in the basis
    slots = []  # (layer, row, basis or None, start, size)
    x0, i = [], 0
    for l, (W, rows) in enumerate(zip(Ws, bases)):
        for j, B in enumerate(rows):
            c = W[j] if B is None else B.T @ W[j]
            slots.append((l, j, B, i, c.size))
            x0.append(c)
            i += c.size
    x0 = np.concatenate(x0) if x0 else np.zeros(0)

    def unflat(x):
        out = [np.array(W, dtype=float) for W in Ws]  # rows with an empty basis keep theirs
        for l, j, B, s, n in slots:
            if B is None:
                out[l][j] = x[s:s + n]
            elif B.shape[1]:
                out[l][j] = B @ x[s:s + n]
        return out

    def fun(x):
        f, g = loss_and_gradient(problem, unflat(x))
        gr = np.empty_like(x)
        for l, j, B, s, n in slots:
            gr[s:s + n] = g[l][j] if B is None else B.T @ g[l][j]
        return f, gr

    res = minimize(fun, x0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "ftol": 1e-15, "gtol": 1e-13, "maxcor": 30})
    cand = Network(tuple(unflat(res.x)), net.activation, net.bias)
    if loss_parameters(problem, cand.weights) < loss_parameters(problem, net.weights):
        return cand
    return net
