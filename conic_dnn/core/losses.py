"""Convex per-sample costs ``C(Z) = (1/N) sum_i c(Z[i], Y[i])``.

Each cost has three faces side by side: a NumPy value (for networks), a cvxpy expression (for
the cone programs) and a NumPy gradient (for the training baselines). ``Z`` and ``Y`` have shape
``(N, k)``; in :meth:`Loss.expression` ``Y`` may be a cvxpy ``Parameter`` (DPP-compliant).
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np
from scipy.special import log_softmax, logsumexp

__all__ = ["Loss", "MSE", "Logistic", "Hinge", "CrossEntropy", "Huber", "get_loss", "LOSS_NAMES"]


@dataclass(frozen=True)
class Loss:
    """Base class: a convex cost ``(1/N) sum_i c(z_i, y_i)``."""

    name = "loss"

    def value(self, Z: np.ndarray, Y: np.ndarray) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def expression(self, Z, Y) -> cp.Expression:  # pragma: no cover - abstract
        raise NotImplementedError

    def gradient(self, Z: np.ndarray, Y: np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def check_targets(self, Y: np.ndarray) -> None:
        """Raise ``ValueError`` if ``Y`` (shape ``(N, k)``) is not valid for this cost."""


@dataclass(frozen=True)
class MSE(Loss):
    """Squared error ``(1/N) sum_i ||z_i - y_i||^2`` (the paper's default)."""

    name = "mse"

    def value(self, Z, Y):
        N = Z.shape[0]
        return float(np.sum((Z - Y) ** 2) / N)

    def expression(self, Z, Y):
        return cp.sum_squares(Z - Y) / Z.shape[0]

    def gradient(self, Z, Y):
        return 2.0 * (Z - Y) / Z.shape[0]


@dataclass(frozen=True)
class Huber(Loss):
    """Huber cost with threshold ``delta``: ``h(r) = r^2`` for ``|r| <= delta``, else linear.

    Uses cvxpy's convention ``huber(r, M) = r^2`` if ``|r| <= M`` else ``2M|r| - M^2``.
    """

    delta: float = 1.0
    name = "huber"

    def value(self, Z, Y):
        r = np.abs(Z - Y)
        h = np.where(r <= self.delta, r**2, 2 * self.delta * r - self.delta**2)
        return float(np.sum(h) / Z.shape[0])

    def expression(self, Z, Y):
        return cp.sum(cp.huber(Z - Y, self.delta)) / Z.shape[0]

    def gradient(self, Z, Y):
        r = Z - Y
        return np.where(np.abs(r) <= self.delta, 2 * r, 2 * self.delta * np.sign(r)) / Z.shape[0]


def _check_pm1(Y, name):
    if not np.all(np.isin(Y, (-1.0, 1.0))):
        raise ValueError(f"loss {name!r}: expected targets Y in {{-1, +1}}, got other values")


@dataclass(frozen=True)
class Logistic(Loss):
    """Logistic cost ``log(1 + exp(-y z))`` per output, targets in ``{-1, +1}``."""

    name = "logistic"

    def check_targets(self, Y):
        _check_pm1(Y, self.name)

    def value(self, Z, Y):
        return float(np.sum(np.logaddexp(0.0, -Y * Z)) / Z.shape[0])

    def expression(self, Z, Y):
        return cp.sum(cp.logistic(-cp.multiply(Y, Z))) / Z.shape[0]

    def gradient(self, Z, Y):
        return -Y * 0.5 * (1.0 - np.tanh(0.5 * Y * Z)) / Z.shape[0]


@dataclass(frozen=True)
class Hinge(Loss):
    """Hinge cost ``max(0, 1 - y z)`` per output, targets in ``{-1, +1}``."""

    name = "hinge"

    def check_targets(self, Y):
        _check_pm1(Y, self.name)

    def value(self, Z, Y):
        return float(np.sum(np.maximum(0.0, 1.0 - Y * Z)) / Z.shape[0])

    def expression(self, Z, Y):
        return cp.sum(cp.pos(1 - cp.multiply(Y, Z))) / Z.shape[0]

    def gradient(self, Z, Y):
        return np.where(1.0 - Y * Z > 0, -Y, 0.0) / Z.shape[0]


@dataclass(frozen=True)
class CrossEntropy(Loss):
    """Softmax cross-entropy ``logsumexp(z) - y^T z``; rows of ``Y`` are probability vectors."""

    name = "cross_entropy"

    def check_targets(self, Y):
        if Y.shape[1] < 2:
            raise ValueError("loss 'cross_entropy': expected Y with k >= 2 columns (one-hot), "
                             f"got k = {Y.shape[1]}")
        if np.any(Y < 0) or not np.allclose(Y.sum(axis=1), 1.0):
            raise ValueError("loss 'cross_entropy': expected rows of Y to be probability "
                             "vectors (nonnegative, summing to 1)")

    def value(self, Z, Y):
        return float(np.sum(logsumexp(Z, axis=1) - np.sum(Y * Z, axis=1)) / Z.shape[0])

    def expression(self, Z, Y):
        return (cp.sum(cp.log_sum_exp(Z, axis=1)) - cp.sum(cp.multiply(Y, Z))) / Z.shape[0]

    def gradient(self, Z, Y):
        return (np.exp(log_softmax(Z, axis=1)) - Y) / Z.shape[0]


_LOSSES = {"mse": MSE, "logistic": Logistic, "hinge": Hinge, "cross_entropy": CrossEntropy,
           "huber": Huber}
LOSS_NAMES = tuple(_LOSSES)


def get_loss(spec) -> Loss:
    """Turn a name or a :class:`Loss` instance into a :class:`Loss`."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key not in _LOSSES:
            raise ValueError(f"loss: expected one of {', '.join(LOSS_NAMES)} or a Loss object, "
                             f"got {spec!r}")
        return _LOSSES[key]()
    raise TypeError(f"loss: expected a name or a Loss object, got {type(spec).__name__}")
