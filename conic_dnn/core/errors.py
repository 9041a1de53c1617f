"""Exceptions and warnings raised by conic_dnn.

Solver trouble keeps cvxpy's tiers: an inaccurate solution gives an
:class:`InaccurateSolutionWarning` and a status saying so; a failure raises
:class:`SolverFailedError` (a :class:`cvxpy.error.SolverError`) naming the layer, the solver
and the status.
"""

from __future__ import annotations

from cvxpy.error import SolverError


class ConicDNNError(Exception):
    """Base class of the errors specific to conic_dnn (other than argument errors)."""


class SolverFailedError(SolverError, ConicDNNError):
    """A cone program could not be solved.

    Attributes
    ----------
    solver : str
        Name of the solver that failed (the last one tried when several were).
    status : str
        The cvxpy status string, or the exception text of the solver.
    layer : int or None
        The hidden layer (1-based) whose program failed, if known.
    attempts : list of (str, str)
        Every ``(solver, status)`` pair that was tried.
    """

    def __init__(self, message: str, *, solver: str = "", status: str = "",
                 layer: int | None = None, attempts: list | None = None):
        super().__init__(message)
        self.solver = solver
        self.status = status
        self.layer = layer
        self.attempts = list(attempts or [])


class SizeLimitError(ValueError, ConicDNNError):
    """The requested exact program is too large to build (see ``force=True``)."""


class InaccurateSolutionWarning(UserWarning):
    """A solver returned ``optimal_inaccurate``: the result carries that status."""


class DecompositionWarning(UserWarning):
    """A block could not be factorised exactly into neurons; the result says by how much."""


class ConvergenceWarning(UserWarning):
    """An iterative method stopped at ``max_sweeps`` / ``max_iter`` before meeting ``tol``."""
