"""Gradient-training baselines: the oracles the exact solvers are tested and measured against.

``loss_and_gradient`` is hand-written backpropagation of
``F(W) = C(Z_L) + lam * sum_l ||W_l||_F^2``; ``train_lbfgs`` runs multi-start L-BFGS on it and
``train_adam`` full-batch Adam (the weight-decay term in the gradient). Both are deterministic
for a given seed.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from ..core.formulations import loss_parameters
from ..core.network import Network

__all__ = ["loss_and_gradient", "train_lbfgs", "train_adam", "TrainingResult"]


def loss_and_gradient(problem, weights) -> tuple[float, list[np.ndarray]]:
    """Regularised loss and its gradient in the weights (backpropagation, ``s'(0) = b``).

    Parameters
    ----------
    problem : Problem
    weights : list of ndarray
        ``weights[l]`` of shape ``(n_{l+1}, n_l [+1])``.

    Returns
    -------
    (float, list of ndarray)
    """
    act, beta = problem.activation, problem.bias
    H = problem.H0
    Hs, Zs = [H], []
    for i, W in enumerate(weights):
        Z = H @ W.T
        Zs.append(Z)
        if i < len(weights) - 1:
            H = problem.with_input(act(Z))
            Hs.append(H)
    Y = problem.Y
    f = problem.loss.value(Zs[-1], Y) + problem.lam * sum(float(np.sum(W * W)) for W in weights)
    dZ = problem.loss.gradient(Zs[-1], Y)
    grads = [None] * len(weights)
    for i in range(len(weights) - 1, -1, -1):
        W = weights[i]
        grads[i] = dZ.T @ Hs[i] + 2 * problem.lam * W
        if i > 0:
            dH = dZ @ W
            if beta > 0:
                dH = dH[:, :-1]
            dZ = dH * act.derivative(Zs[i - 1])
    return f, grads


@dataclass(frozen=True)
class TrainingResult:
    """Outcome of a training baseline.

    Attributes
    ----------
    network : Network
        Best network found.
    objective : float
        Its regularised loss (``loss_parameters``).
    history : list of float
        Objective per iteration of the best run.
    runs : list of float
        Final objective of every start.
    n_starts : int
    method : str
    solve_time : float
    success : bool
    message : str
    best_start : int
        Index (in ``runs``) of the start that won.
    timed_out : bool
        True when a ``deadline`` stopped the training (fewer runs than ``n_starts``, or the
        last one cut short).
    """

    network: Network
    objective: float
    history: list = field(default_factory=list)
    runs: list = field(default_factory=list)
    n_starts: int = 1
    method: str = ""
    solve_time: float = 0.0
    success: bool = True
    message: str = ""
    best_start: int = 0
    timed_out: bool = False

    def __str__(self) -> str:
        return (f"{self.method}: objective {self.objective:.10g} (best of {self.n_starts}; "
                f"widths {self.network.widths}), {self.solve_time:.2f} s")


def _widths(problem, widths) -> list[int]:
    L = problem.depth
    if isinstance(widths, (int, np.integer)) and not isinstance(widths, bool):
        widths = [int(widths)] * (L - 1)
    if not isinstance(widths, (list, tuple)) or len(widths) != L - 1:
        raise ValueError(f"widths: expected an int or a sequence of {L - 1} ints, got {widths!r}")
    for w in widths:
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
            raise ValueError(f"widths: expected positive integers, got {widths!r}")
    return [int(w) for w in widths]


def _check_count(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")


def _init(problem, widths, rng, init_scale):
    e = 1 if problem.has_bias else 0
    dims = [problem.d, *widths, problem.k]
    out = []
    for i in range(len(dims) - 1):
        fan_in = dims[i] + e
        std = init_scale if init_scale is not None else 1.0 / np.sqrt(fan_in)
        out.append(rng.normal(scale=std, size=(dims[i + 1], fan_in)))
    return out


def _flatten(ws):
    return np.concatenate([w.ravel() for w in ws])


def _unflatten(x, shapes):
    out, i = [], 0
    for s in shapes:
        n = s[0] * s[1]
        out.append(x[i:i + n].reshape(s))
        i += n
    return out


def single_blas_thread(func):
    """Run ``func`` with BLAS limited to one thread: the training loops multiply tiny
    matrices, where OpenBLAS's threading costs far more than it gives (measured: L-BFGS at
    N = 5, width 30 takes 0.32 s on one thread, 19.8 s on two)."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with threadpool_limits(1, user_api="blas"):
            return func(*args, **kwargs)

    return wrapper


@single_blas_thread
def train_lbfgs(problem, widths, n_starts: int = 10, seed: int = 0, max_iter: int = 5000,
                tol: float = 1e-12, init_scale: float | None = None,
                deadline=None) -> TrainingResult:
    """Multi-start L-BFGS on the regularised loss; returns the best run.

    Parameters
    ----------
    problem : Problem
    widths : int or sequence of int
        Hidden widths (one int for all hidden layers).
    n_starts : int
        Random restarts (Gaussian init, std ``init_scale`` or ``1/sqrt(fan_in)``).
    seed : int
    max_iter, tol : L-BFGS limits (``ftol``; ``gtol`` is ``tol`` too).
    deadline : conic_dnn.core.budget.Deadline, optional
        Checked after every L-BFGS iteration: when it has expired the current start stops
        (its point so far counts) and no further start begins (``timed_out``).

    The starts draw their initial weights one after the other from one generator seeded with
    ``seed``, so the first ``m`` starts of a run with ``n_starts >= m`` are the same.
    """
    ws = _widths(problem, widths)
    _check_count(n_starts, "n_starts")
    _check_count(max_iter, "max_iter")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    best, runs, best_hist, timed_out = None, [], [], False

    def stop(intermediate_result):
        if deadline is not None and deadline.expired():
            raise StopIteration

    for _ in range(n_starts):
        if runs and deadline is not None and deadline.expired():
            timed_out = True
            break
        W0 = _init(problem, ws, rng, init_scale)
        shapes = [w.shape for w in W0]
        hist = []

        def fun(x, shapes=shapes, hist=hist):
            f, g = loss_and_gradient(problem, _unflatten(x, shapes))
            hist.append(f)
            return f, _flatten(g)

        res = minimize(fun, _flatten(W0), jac=True, method="L-BFGS-B", callback=stop,
                       options={"maxiter": max_iter, "ftol": tol, "gtol": tol, "maxcor": 30,
                                "maxfun": 4 * max_iter})
        W = _unflatten(res.x, shapes)
        f = loss_parameters(problem, W)
        runs.append(f)
        if best is None or f < best[0]:
            best, best_hist = (f, W, res, len(runs) - 1), hist
    timed_out = timed_out or (deadline is not None and deadline.expired())
    f, W, res, i_best = best
    net = Network(tuple(W), problem.activation, problem.bias)
    return TrainingResult(net, f, best_hist, runs, len(runs), "lbfgs",
                          time.perf_counter() - t0, bool(res.success), str(res.message),
                          i_best, timed_out)


@single_blas_thread
def train_adam(problem, widths, n_steps: int = 2000, lr: float = 1e-2, seed: int = 0,
               n_starts: int = 1, betas=(0.9, 0.999), eps: float = 1e-8,
               init_scale: float | None = None) -> TrainingResult:
    """Full-batch Adam on the regularised loss (weight decay as part of the loss gradient)."""
    ws = _widths(problem, widths)
    _check_count(n_steps, "n_steps")
    _check_count(n_starts, "n_starts")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr: expected a positive number, got {lr!r}")
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    b1, b2 = betas
    best, runs, best_hist = None, [], []
    for _ in range(n_starts):
        W = _init(problem, ws, rng, init_scale)
        m = [np.zeros_like(w) for w in W]
        v = [np.zeros_like(w) for w in W]
        hist = []
        for t in range(1, n_steps + 1):
            f, g = loss_and_gradient(problem, W)
            hist.append(f)
            for i in range(len(W)):
                m[i] = b1 * m[i] + (1 - b1) * g[i]
                v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
                mh = m[i] / (1 - b1**t)
                vh = v[i] / (1 - b2**t)
                W[i] = W[i] - lr * mh / (np.sqrt(vh) + eps)
        f = loss_parameters(problem, W)
        hist.append(f)
        runs.append(f)
        if best is None or f < best[0]:
            best, best_hist = (f, [w.copy() for w in W]), hist
    f, W = best
    net = Network(tuple(W), problem.activation, problem.bias)
    return TrainingResult(net, f, best_hist, runs, n_starts, "adam", time.perf_counter() - t0,
                          True, f"{n_steps} steps")
