"""The restricted master of column generation: the group lasso over a finite dictionary of
unit directions, warm-started from one round to the next (see
:mod:`conic_dnn.two_layer.column_generation` for the problem and its dual)."""

from __future__ import annotations

import time

import numpy as np

from ..core.losses import MSE
from ..solvers import SolveInfo
from .group_lasso import master_cvxpy as _master
from .group_lasso import master_numpy as _master_numpy
from .smooth_master import polish as _polish
from .smooth_master import smooth

__all__ = ["RestrictedMaster"]


class RestrictedMaster:
    """The restricted master with its warm start. ``numpy``: the squared loss by
    :func:`~conic_dnn.two_layer.group_lasso.master_numpy`, the other smooth losses by the
    Newton method of :func:`~conic_dnn.two_layer.smooth_master.polish` from the last round's
    solution; where that does not converge, the cvxpy program, its solution then polished by
    the same Newton method (kept when the polish converges). ``cvxpy``: the conic program
    only (the hinge, not smooth, always)."""

    def __init__(self, problem, master, solver):
        smooth_loss = smooth(problem.loss)
        if master == "auto":  # k > 1: measured slower (failed numpy attempts cost seconds)
            master = "numpy" if (smooth_loss and problem.k == 1) else "cvxpy"
        if master == "numpy" and not smooth_loss:
            master = "cvxpy"
        self.problem, self.kind, self.solver = problem, master, solver
        self.mse = isinstance(problem.loss, MSE)
        self.V, self.c, self.fallbacks, self.time = None, None, 0, 0.0
        # two failures in a row: that numpy step is not tried again (k > 1 at a tiny lam can
        # take seconds per failed attempt)
        self.strikes, self.polish_failures = 0, 0

    def _value(self, U, V, c):
        p = self.problem
        Z = p.activation(p.H0 @ U) @ V + p.bias * c[None, :]
        return (p.loss.value(Z, p.Y) + 2 * p.lam * float(np.sum(np.linalg.norm(V, axis=1)))
                + p.lam * float(c @ c))

    def solve(self, U):
        """``(Vm, c, info, Lam)``: the master solution and the cvxpy dual ``Lambda`` (N x k;
        None when the numpy solution is kept)."""
        t0 = time.perf_counter()
        p, ok, Lam = self.problem, False, None
        numpy = self.kind == "numpy" and self.strikes < 2
        if numpy:
            if self.V is not None:  # the dictionary only grew at the end since last round
                self.V = np.vstack([self.V, np.zeros((U.shape[1] - len(self.V), p.k))])
            if self.mse:
                Vm, c, info, ok = _master_numpy(p, U, self.V, self.c)
            elif self.V is not None:
                Vm, c, ok = _polish(p, U, self.V, self.c)
                info = SolveInfo("optimal", "numpy", self._value(U, Vm, c), [("numpy", "kkt")])
            tried = self.mse or self.V is not None
            self.fallbacks += (not ok) and tried
            self.strikes = (self.strikes + 1) if (tried and not ok) else 0
        if not ok:
            Vm, c, info, Lam = _master(p, U, self.solver, return_dual=True)
            if self.kind == "numpy" and self.polish_failures < 2:
                Vp, cp_, ok = _polish(p, U, Vm, c)
                self.polish_failures = 0 if ok else self.polish_failures + 1
                if ok:
                    Vm, c, Lam = Vp, cp_, None
                    info = SolveInfo("optimal", "numpy", self._value(U, Vm, c),
                                     info.attempts + [("numpy", "polish")])
        self.V, self.c = Vm, c
        self.time += time.perf_counter() - t0
        return Vm, c, info, Lam

    def forget(self, keep):
        if self.V is not None:  # (refined columns appended after the master are not in V)
            self.V = self.V[keep[:len(self.V)]]
