"""One hidden layer's cone program, built once with cvxpy Parameters (docs/MATH.md §3).

With every other layer fixed, hidden layer ``l`` enters the covariance loss through

    lam * tr(K_l pinv(G_{l-1}))  +  lam * tr(B pinv(G_l)),          (K_l, G_l) in S_s

with ``B = K_{l+1}`` for a middle layer. For the last hidden layer the output ``Z_L`` joins the
block and the cost becomes ``C(Z_L) + lam * matrix_frac(Z_L, G_l)`` (jointly convex); for depth 2
this *is* the whole problem. ``G_l`` carries the ``bias^2 1 1^T`` shift.

Build, solve, read back:

* :class:`LayerProgram` builds the cvxpy problem once. The data that change between re-solves
  are Parameters: ``A = lam * pinv(G_{l-1})``, ``R = sqrt(lam) * B^{1/2}`` (middle layers),
  ``Y`` and ``lam`` (last layer), so a re-solve skips recompilation (DPP).
* :meth:`LayerProgram.solve` runs it through :func:`conic_dnn.solvers.run` (explicit solver,
  fallback).
* :meth:`LayerProgram.read` returns the numbers: ``K``, ``G`` (without the shift), ``Z``, the
  ``N x N`` blocks ``C_P`` and the optimal value.

The range condition ``range(K_l) in range(G_{l-1})`` is imposed by building the cone on the
subspace ``range(G_{l-1})`` when ``G_{l-1}`` is rank deficient (always for the first layer with
``rank X < N``), which also shrinks the blocks and the set of sign patterns.
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np

from ..core.linalg import gram_pinv, psd_eigh, sym
from ..solvers import SolveInfo, run
from .covariance_cone import CovarianceCone

__all__ = ["LayerProgram", "LayerSolution"]


@dataclass
class LayerSolution:
    """The numbers read back from a solved layer program.

    Attributes
    ----------
    K, G : ndarray, shape (N, N)
        Optimal covariances (``G`` without the bias shift).
    Z : ndarray, shape (N, k) or None
        Optimal output (last hidden layer only).
    blocks : list of ndarray
        The ``N x N`` blocks ``C_P`` (pattern representation), with their ``patterns``.
    patterns : ndarray of bool or None
    value : float
        Optimal value of the program (a lower bound on the layer's exact optimum).
    info : SolveInfo
    wedge_edges, wedge_cores : list of ndarray or None
        Planar cones only: per pattern the cell's two edges ``E_P`` (N x 2, as neurons) and the
        2 x 2 block ``M_P`` with ``C_P = S_P E_P M_P E_P^T S_P`` (neurons come from ``M_P``).
    """

    K: np.ndarray
    G: np.ndarray
    Z: np.ndarray | None
    blocks: list
    patterns: np.ndarray | None
    value: float
    info: SolveInfo
    wedge_edges: list | None = None
    wedge_cores: list | None = None


class LayerProgram:
    """The cone program of one hidden layer with its neighbours fixed.

    Parameters
    ----------
    N : int
    activation : Homogeneous
    last : bool
        True for the last hidden layer (the output ``Z_L`` is a variable).
    loss : Loss, optional
        The cost ``C`` (last layer only).
    k : int, optional
        Output dimension (last layer only).
    bias : float
        ``beta``; ``G`` is shifted by ``beta^2 1 1^T`` in the cost.
    representation : {"pattern", "lifted"}
    H : ndarray, shape (N, p), optional
        Input of the layer when the neurons are restricted to its range (first layer:
        ``[X, bias*1]``; deeper layers: a factor of a rank-deficient ``G_{l-1}``).
    patterns : ndarray of bool, optional
        Patterns to use (default: all useful ones / the arrangement of ``H``).
    ridge : float
        ``matrix_frac(Z, G + ridge * g I)`` with ``g = tr(G_prev) / N`` (a scale-free ridge, set
        with the data by :meth:`set_data`; a Parameter, so :meth:`set_ridge` changes it without
        recompiling): it keeps interior-point solvers accurate (Clarabel reports
        ``optimal_inaccurate`` without it on some instances) and can only lower the optimal
        value, so the value stays a lower bound. Default ``1e-8`` (measured: lowers the value
        by ~1e-7 relative).
    """

    def __init__(self, N, activation, *, last: bool, loss=None, k: int | None = None,
                 bias: float = 0.0, representation: str = "pattern", H=None, patterns=None,
                 ridge: float = 1e-8):
        self.N, self.last, self.loss, self.k = N, last, loss, k
        self.bias, self.ridge = float(bias), float(ridge)
        self.cone = CovarianceCone(N, activation, representation, patterns, H, drop_useless=True)
        self.A = cp.Parameter((N, N), name="A", symmetric=True)  # lam * pinv(G_{l-1})
        self.rho = cp.Parameter(nonneg=True, name="ridge")  # ridge * tr(G_prev) / N
        self._g = 1.0
        Gtot = self.cone.G + self.rho * np.eye(N)
        if self.bias > 0:
            Gtot = Gtot + self.bias**2 * np.ones((N, N))
        cost = cp.trace(self.A @ self.cone.K)
        # matrix_frac(X, Gtot) = min tr(T) s.t. [[Gtot, X], [X^T, T]] PSD, written out:
        # lam * matrix_frac(Z, G + rho I) multiplies two Parameters (not DPP), and cvxpy's own
        # canonicalisation adds N(N-1)/2 redundant equalities upper(G) = upper(G^T) because it
        # cannot see that G is symmetric (it is, by construction)
        cons = list(self.cone.constraints)
        if last:
            if loss is None or k is None:
                raise ValueError("LayerProgram(last=True) needs loss and k")
            self.Y = cp.Parameter((N, k), name="Y")
            self.lam = cp.Parameter(nonneg=True, name="lam")
            self.Z = cp.Variable((N, k), name="Z")
            T = cp.Variable((k, k), symmetric=True, name="T")
            cons.append(cp.bmat([[Gtot, self.Z], [self.Z.T, T]]) >> 0)
            cost = cost + loss.expression(self.Z, self.Y) + self.lam * cp.trace(T)
        else:
            self.R = cp.Parameter((N, N), name="R")  # sqrt(lam) * B^{1/2}
            self.Z = None
            T = cp.Variable((N, N), symmetric=True, name="T")
            cons.append(cp.bmat([[Gtot, self.R], [self.R.T, T]]) >> 0)
            cost = cost + cp.trace(T)
        self.problem = cp.Problem(cp.Minimize(cost), cons)

    @property
    def exact(self) -> bool:
        """True when the program's value is the exact layer optimum (CP = DNN)."""
        return self.cone.exact

    def set_data(self, lam: float, G_prev: np.ndarray, *, Y=None, B=None) -> None:
        """Fill the Parameters: ``A = lam * pinv(G_prev)``; ``Y`` (last) or ``B`` (middle).

        On a restricted cone (basis ``Q`` of the layer's subspace) ``A`` is the compression
        ``Q Q^T pinv(G_prev) Q Q^T``: the same cost on every admissible ``K``, without the huge
        eigenvalues of discarded directions that would ruin the solver's conditioning."""
        G_prev = np.asarray(G_prev, dtype=float)
        self._g = max(float(np.trace(G_prev)) / self.N, 1e-300)
        self.set_ridge(self.ridge)
        A = gram_pinv(G_prev)
        if self.cone.restricted:
            Q = self.cone.Q
            A = Q @ (Q.T @ A @ Q) @ Q.T
        self.A.value = sym(lam * A)
        if self.last:
            self.Y.value = np.asarray(Y, dtype=float)
            self.lam.value = float(lam)
        else:
            w, U = psd_eigh(np.asarray(B, dtype=float))
            R = np.zeros((self.N, self.N))
            R[:, : len(w)] = U * np.sqrt(w)
            self.R.value = np.sqrt(lam) * R

    def set_ridge(self, ridge: float) -> None:
        """Change the ridge (relative to ``tr(G_prev) / N``) without recompiling."""
        if isinstance(ridge, bool) or not (isinstance(ridge, (int, float)) and ridge >= 0):
            raise ValueError(f"ridge: expected a number >= 0, got {ridge!r}")
        self.ridge = float(ridge)
        self.rho.value = self.ridge * self._g

    def solve(self, solver=None, solver_options=None, layer: int | None = None,
              **run_options) -> SolveInfo:
        """Solve with :func:`conic_dnn.solvers.run` (``run_options`` go there); raises
        ``SolverFailedError`` on failure."""
        return run(self.problem, solver, solver_options, layer=layer, **run_options)

    def read(self, info: SolveInfo) -> LayerSolution:
        """The solution's numbers (call after :meth:`solve`)."""
        K = sym(np.asarray(self.cone.K.value, dtype=float))
        G = sym(np.asarray(self.cone.G.value, dtype=float))
        Z = np.asarray(self.Z.value, dtype=float) if self.last else None
        blocks = self.cone.block_values() if self.cone.patterns is not None else []
        edges = cores = None
        if self.cone.wedges is not None:  # C_P = (S_P E_P) M_P (S_P E_P)^T, E_P the cell's edges
            edges = [self.cone.Q @ V for V in self.cone.wedges]
            cores = [sym(np.asarray(W.value, dtype=float)) for W in self.cone.blocks]
        return LayerSolution(K, G, Z, blocks, self.cone.patterns, info.value, info, edges,
                             cores)
