"""The result of a solve: a frozen dataclass with named fields and a readable summary."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .network import Network

__all__ = ["Result"]


@dataclass(frozen=True, eq=False)
class Result:
    """Outcome of :func:`conic_dnn.solve`.

    Attributes
    ----------
    objective : float
        Regularised loss of ``network`` (its own forward pass): an upper bound, achieved.
    lower_bound : float
        Depth 2: the value of a dual point verified in floating point (never a solver's
        value; ``info["bound_source"]`` says which point and how ``rho`` was certified),
        ``-inf`` when none could be verified; deep networks: ``-inf``. Column generation:
        its Fenchel dual bound.
    gap : float
        ``objective - lower_bound`` (``inf`` without a bound).
    certified : bool
        True when ``gap <= tol * |objective| + 1e-14 * C(0)`` (depth 2; ``C(0)`` the cost of
        the zero predictor): ``network`` is a global minimiser to that accuracy.
    network : Network
        The explicit finite network (hidden widths <= N(N+1)).
    covariances : list of (ndarray, ndarray)
        ``(K_l, G_l)`` of ``network`` on the training data (``G_l`` with the bias shift).
    history : list of float
        Objective after every step (one entry for a global solve).
    status : str
        Solver status of the (last) cone program: ``"optimal"`` or ``"optimal_inaccurate"``.
    solver : str
        Solver that produced the solution (after any fallback).
    solve_time : float
        Wall-clock seconds of the whole solve.
    success : bool
    message : str
    method : str
        ``"pattern"``, ``"lifted"`` (cone representation) or ``"alternating"``.
    exact : bool
        True when the cone representation is exact, so ``lower_bound`` is the true optimum.
    info : dict
        Details: compile and solver times, attempts (fallbacks), decomposition residuals,
        widths before pruning, polishing.
    """

    objective: float
    lower_bound: float
    gap: float
    certified: bool
    network: Network
    covariances: list
    history: list
    status: str
    solver: str
    solve_time: float
    success: bool = True
    message: str = ""
    method: str = ""
    exact: bool = False
    info: dict = field(default_factory=dict)

    @property
    def widths(self) -> tuple:
        return self.network.widths

    def __str__(self) -> str:
        lb = "none" if not np.isfinite(self.lower_bound) else f"{self.lower_bound:.10g}"
        gap = "n/a" if not np.isfinite(self.gap) else f"{self.gap:.3g}"
        kind = ("certified global optimum" if self.certified else
                ("relaxation bound, not certified" if np.isfinite(self.lower_bound)
                 else "local solution (no global bound)"))
        lines = [
            f"conic_dnn result ({self.method}, {kind})",
            f"  objective   : {self.objective:.10g}   (loss of the returned network)",
            f"  lower bound : {lb}" + ("   (dual bound)" if self.method == "column_generation"
                                       and np.isfinite(self.lower_bound) else
                                       "   (exact cone program)" if self.exact else
                                       "   (relaxation value; tight here)" if self.certified
                                       else "   (relaxation)" if np.isfinite(self.lower_bound)
                                       else ""),
            f"  gap         : {gap}",
            f"  widths      : {self.widths}",
            f"  status      : {self.status} ({self.solver}), {self.solve_time:.2f} s",
        ]
        if self.info.get("attempts") and len(self.info["attempts"]) > 1 \
                and self.method.split("/")[0] != "alternating":
            lines.append("  fallbacks   : " + ", ".join(f"{n}: {s}" for n, s in
                                                        self.info["attempts"]))
        if self.message:
            lines.append(f"  message     : {self.message}")
        return "\n".join(lines)
