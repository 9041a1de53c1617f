"""Turning neurons into a network, and making it no worse.

* :func:`network_from_hidden` builds the network whose hidden pre-activations are given:
  min-norm weights for the hidden layers and the *optimal* output weights for those features
  (ridge regression in closed form for the MSE, a small convex program otherwise). Its loss is
  never above the covariance loss of the same hidden layers with any output.
* :func:`polish` runs L-BFGS in parameter space from a network at fixed widths; it is accepted
  only when it lowers the loss, so the returned objective can only improve.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
from scipy.optimize import minimize

from ..core.formulations import loss_parameters, min_norm_weights
from ..core.losses import MSE
from ..core.network import Network
from ..solvers import run
from .gradient import single_blas_thread

__all__ = ["output_weights", "network_from_hidden", "polish", "balance", "rebalance"]


def output_weights(problem, H: np.ndarray, solver=None, solver_options=None) -> np.ndarray:
    """``argmin_W C(H W^T) + lam ||W||_F^2`` for the last layer's input ``H`` (shape (N, p)).

    Returns ``W`` of shape ``(k, p)``.
    """
    N, p = H.shape
    if p == 0:
        return np.zeros((problem.k, 0))
    if isinstance(problem.loss, MSE):
        # (1/N)||H W^T - Y||^2 + lam ||W||^2  ->  (H^T H + N lam I) W^T = H^T Y
        A = H.T @ H + N * problem.lam * np.eye(p)
        try:
            return np.linalg.solve(A, H.T @ problem.Y).T
        except np.linalg.LinAlgError:  # lam ~ 1e-300 with dependent columns: min-norm solution
            return np.linalg.lstsq(A, H.T @ problem.Y, rcond=None)[0].T
    W = cp.Variable((problem.k, p))
    prob = cp.Problem(cp.Minimize(problem.loss.expression(H @ W.T, problem.Y)
                                  + problem.lam * cp.sum_squares(W)))
    run(prob, solver, solver_options)
    return np.asarray(W.value, dtype=float)


def network_from_hidden(problem, hidden: list[np.ndarray], solver=None,
                        solver_options=None) -> Network:
    """The network with hidden pre-activations ``hidden = [Z_1, ..., Z_{L-1}]``: min-norm
    hidden weights and optimal output weights.

    Each ``Z_l`` must lie in the range of its layer input (project first if it comes from a
    solver).
    """
    act = problem.activation
    H_last = problem.with_input(act(hidden[-1]))
    W_out = output_weights(problem, H_last, solver, solver_options)
    Zs = [*hidden, H_last @ W_out.T]
    weights = min_norm_weights(problem, Zs)
    weights[-1] = W_out
    return Network(tuple(weights), act, problem.bias)


@single_blas_thread
def polish(problem, network: Network, max_iter: int = 2000, tol: float = 1e-14) -> Network:
    """L-BFGS on the regularised loss from ``network``'s weights (same widths).

    Returns the polished network if it is better, else ``network`` itself.
    """
    from .gradient import loss_and_gradient

    shapes = [W.shape for W in network.weights]
    sizes = [int(np.prod(s)) for s in shapes]
    if sum(sizes) == 0:
        return network

    def unflat(x):
        out, i = [], 0
        for s, n in zip(shapes, sizes):
            out.append(x[i:i + n].reshape(s))
            i += n
        return out

    def fun(x):
        f, g = loss_and_gradient(problem, unflat(x))
        return f, np.concatenate([gi.ravel() for gi in g])

    x0 = np.concatenate([W.ravel() for W in network.weights])
    res = minimize(fun, x0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "ftol": tol, "gtol": 1e-12, "maxcor": 30})
    cand = Network(tuple(unflat(res.x)), network.activation, network.bias)
    cand = cand.min_norm(problem)
    if loss_parameters(problem, cand.weights) < loss_parameters(problem, network.weights):
        return cand
    return network


def balance(network: Network) -> Network:
    """Rescale every hidden neuron so that its incoming and outgoing weight norms are equal.

    Neuron ``j`` of layer ``l`` gets incoming row ``alpha_j w_j`` and outgoing column
    ``v_j / alpha_j`` with ``alpha_j^2 = ||v_j|| / ||w_j||`` (layers in order, each using the
    already rescaled next-layer columns). Positive homogeneity keeps every later
    pre-activation, and ``alpha ||w||^2 + ||v||^2 / alpha`` is minimal there, so the loss
    never increases. A neuron with ``||w|| ||v|| = 0`` contributes nothing to later layers:
    both its weights are set to zero.
    """
    Ws = [np.array(W, dtype=float) for W in network.weights]
    for l in range(len(Ws) - 1):
        n = Ws[l].shape[0]
        a = np.linalg.norm(Ws[l], axis=1)
        b = np.linalg.norm(Ws[l + 1][:, :n], axis=0)
        ok = (a > 0) & (b > 0)
        alpha = np.sqrt(b[ok] / a[ok])
        Ws[l][ok] *= alpha[:, None]
        Ws[l + 1][:, np.flatnonzero(ok)] /= alpha[None, :]
        # a neuron without outgoing (incoming) weights does nothing: drop the other side too
        Ws[l][~ok] = 0.0
        Ws[l + 1][:, np.flatnonzero(~ok)] = 0.0
    return Network(tuple(Ws), network.activation, network.bias)


def rebalance(problem, network: Network, max_iter: int = 200, rtol: float = 1e-13) -> Network:
    """Alternate :func:`balance` with minimum-norm hidden weights and the optimal output layer
    (squared loss: closed form; other losses: the output layer is kept) until the loss stops
    decreasing (relative ``rtol``) or ``max_iter`` rounds. Every round is monotone.

    It finishes the deep solver: at points where later pre-activations sit at kinks of ``s``
    a gradient polish stalls, while these exact block steps still converge (and the
    certificate's complementarity residual is the imbalance they remove).
    """
    best, val = network, network.loss(problem)
    for _ in range(max_iter):
        cand = balance(best)
        try:
            if isinstance(problem.loss, MSE):
                cand = network_from_hidden(problem, list(cand.forward(problem.X)[:-1]))
            else:
                cand = cand.min_norm(problem)
        except ValueError:  # a layer outside the numerical range of its input: stop here
            break
        cval = cand.loss(problem)
        if not cval < val:
            break
        done = val - cval <= rtol * max(abs(val), 1e-300)
        best, val = cand, cval
        if done:
            break
    return best
