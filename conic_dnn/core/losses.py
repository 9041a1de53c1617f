"""Convex per-sample costs ``C(Z) = (1/N) sum_i c(Z[i], Y[i])``.

Each cost has its faces side by side: a NumPy value (for networks), a cvxpy expression (for
the cone programs), a NumPy gradient (for the training baselines) and the convex conjugate
``C*(W) = sup_Z <W, Z> - C(Z) = (1/N) sum_i c*(N w_i, y_i)`` with :meth:`Loss.dual_scale`,
the largest ``t`` with ``t W`` in its domain (for the Fenchel dual bounds of column
generation). ``Z`` and ``Y`` have shape
``(N, k)``; in :meth:`Loss.expression` ``Y`` may be a cvxpy ``Parameter`` (DPP-compliant).
"""

from __future__ import annotations

from dataclasses import dataclass

import cvxpy as cp
import numpy as np
from scipy.special import log_softmax, logsumexp, xlogy

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

    def conjugate(self, W: np.ndarray, Y: np.ndarray) -> float:  # pragma: no cover - abstract
        """``C*(W)`` for ``W`` of shape ``(N, k)`` (``inf`` outside its domain)."""
        raise NotImplementedError

    def conjugate_magnitude(self, W: np.ndarray, Y: np.ndarray) -> float:
        """A scale for the rounding error of :meth:`conjugate` at ``W`` in its domain: the sum
        of the magnitudes of its summands. Default ``|C*(W)|``, crude where terms cancel:
        override it with the conjugate."""
        return abs(float(self.conjugate(W, Y)))

    def dual_scale(self, W: np.ndarray, Y: np.ndarray) -> float:
        """Largest ``t >= 0`` with ``t W`` in the domain of ``C*`` (``inf``: unbounded)."""
        return float("inf")

    def dual_point(self, W: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """``W`` moved into the conjugate's domain (clipped, or projected for the
        cross-entropy; identity by default). ``-dual_point(-Lambda)`` is the multiplier to
        price and bound with."""
        return W


def _entropy_magnitude(P):
    """``sum(|p log p| + |(1-p) log(1-p)| + 1) / N`` for entries ``P`` in [0, 1]: the ``+ 1``
    per entry covers the absolute rounding of ``p`` (~eps, where ``p log p`` has slope
    ``|log p| + 1 < 40``), which a relative margin on the terms alone would miss near 0."""
    t = np.abs(xlogy(P, P)) + np.abs(xlogy(1 - P, 1 - P)) + 1.0
    return float(np.sum(t) / P.shape[0])


def _simplex_rows(Q):
    """Euclidean projection of every row of ``Q`` onto the probability simplex."""
    k = Q.shape[1]
    U = -np.sort(-Q, axis=1)
    css = np.cumsum(U, axis=1) - 1.0
    ks = np.arange(1, k + 1)
    rho = np.sum(U - css / ks > 0, axis=1)
    theta = css[np.arange(Q.shape[0]), rho - 1] / rho
    return np.maximum(Q - theta[:, None], 0.0)


def _box_scale(p, hi):
    """Largest t >= 0 with 0 <= t p <= hi entrywise (0 if some p < 0)."""
    if np.any(p < 0):
        return 0.0
    m = float(p.max(initial=0.0))
    return float("inf") if m == 0 else hi / m


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

    def conjugate(self, W, Y):  # c*(s) = s.y + ||s||^2 / 4
        return float(np.sum(W * Y) + W.shape[0] / 4 * np.sum(W * W))

    def conjugate_magnitude(self, W, Y):
        return float(np.sum(np.abs(W * Y)) + W.shape[0] / 4 * np.sum(W * W))


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

    def conjugate(self, W, Y):  # c*(s) = s y + s^2 / 4 on |s| <= 2 delta
        S = W.shape[0] * W
        if np.any(np.abs(S) > 2 * self.delta):
            return float("inf")
        return float(np.sum(S * Y + S * S / 4) / W.shape[0])

    def conjugate_magnitude(self, W, Y):
        S = W.shape[0] * W
        return float(np.sum(np.abs(S * Y) + S * S / 4) / W.shape[0])

    def dual_scale(self, W, Y):
        m = float(np.abs(W.shape[0] * W).max(initial=0.0))
        return float("inf") if m == 0 else 2 * self.delta / m

    def dual_point(self, W, Y):
        return np.clip(W, -2 * self.delta / W.shape[0], 2 * self.delta / W.shape[0])


def _check_pm1(Y, name):
    if not np.all(np.isin(Y, (-1.0, 1.0))):
        raise ValueError(f"loss {name!r}: expected targets Y in {{-1, +1}}, got other values")


@dataclass(frozen=True)
class _MarginLoss(Loss):
    """A cost of the margin ``y z``, targets in ``{-1, +1}``: its conjugate lives on
    ``p = -N w y in [0, 1]``."""

    def check_targets(self, Y):
        _check_pm1(Y, self.name)

    def dual_scale(self, W, Y):
        return _box_scale(-W.shape[0] * W * Y, 1.0)

    def dual_point(self, W, Y):  # -N w y clipped into [0, 1] (solver residue)
        return -np.clip(-W.shape[0] * W * Y, 0.0, 1.0) * Y / W.shape[0]


@dataclass(frozen=True)
class Logistic(_MarginLoss):
    """Logistic cost ``log(1 + exp(-y z))`` per output, targets in ``{-1, +1}``."""

    name = "logistic"

    def value(self, Z, Y):
        return float(np.sum(np.logaddexp(0.0, -Y * Z)) / Z.shape[0])

    def expression(self, Z, Y):
        return cp.sum(cp.logistic(-cp.multiply(Y, Z))) / Z.shape[0]

    def gradient(self, Z, Y):
        return -Y * 0.5 * (1.0 - np.tanh(0.5 * Y * Z)) / Z.shape[0]

    def conjugate(self, W, Y):  # p = -s y in [0, 1]: c* = p log p + (1 - p) log(1 - p)
        p = -W.shape[0] * W * Y
        if np.any(p < 0) or np.any(p > 1):
            return float("inf")
        return float(np.sum(xlogy(p, p) + xlogy(1 - p, 1 - p)) / W.shape[0])

    def conjugate_magnitude(self, W, Y):
        return _entropy_magnitude(np.clip(-W.shape[0] * W * Y, 0.0, 1.0))


@dataclass(frozen=True)
class Hinge(_MarginLoss):
    """Hinge cost ``max(0, 1 - y z)`` per output, targets in ``{-1, +1}``."""

    name = "hinge"

    def value(self, Z, Y):
        return float(np.sum(np.maximum(0.0, 1.0 - Y * Z)) / Z.shape[0])

    def expression(self, Z, Y):
        return cp.sum(cp.pos(1 - cp.multiply(Y, Z))) / Z.shape[0]

    def gradient(self, Z, Y):
        return np.where(1.0 - Y * Z > 0, -Y, 0.0) / Z.shape[0]

    def conjugate(self, W, Y):  # p = -s y in [0, 1]: c* = -p
        p = -W.shape[0] * W * Y
        if np.any(p < 0) or np.any(p > 1):
            return float("inf")
        return float(-np.sum(p) / W.shape[0])

    def conjugate_magnitude(self, W, Y):
        return float(np.sum(np.abs(W * Y)))


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

    def conjugate(self, W, Y):
        """``q = y + s`` in the simplex: ``c* = sum q log q`` (row sums of ``s`` are zero to
        rounding, 1e-12 accepted; :meth:`dual_point` makes them exactly zero)."""
        Q = Y + W.shape[0] * W
        if np.any(Q < 0) or np.any(np.abs(Q.sum(axis=1) - 1) > 1e-12):
            return float("inf")
        return float(np.sum(xlogy(Q, Q)) / W.shape[0])

    def dual_scale(self, W, Y):
        S = W.shape[0] * W
        neg = S < 0
        if np.any(neg & (Y <= 0)):
            return 0.0
        return float(np.min(Y[neg] / -S[neg], initial=np.inf))

    def conjugate_magnitude(self, W, Y):
        Q = np.clip(Y + W.shape[0] * W, 0.0, 1.0)
        return float((np.sum(np.abs(xlogy(Q, Q))) + Q.size) / W.shape[0])  # + 1: as logistic

    def dual_point(self, W, Y):
        """``Q = Y + N W`` projected onto the simplex (row by row), pulled ``1e-9`` towards
        ``Y``, and ``W`` rounded up to a power-of-two grid, with one entry per row (where ``Y``
        is largest, which the pull leaves ``1e-9 max Y`` of slack) set to minus the sum of the
        others: ``Q >= 0`` and the row sums are zero exactly, not only to rounding (the
        conjugate is ``inf`` at any nonzero row sum)."""
        N = W.shape[0]
        Q = (1 - 1e-9) * _simplex_rows(Y + N * np.nan_to_num(W)) + 1e-9 * Y
        Wq = (Q - Y) / N
        m = float(np.abs(Wq).max(initial=0.0))
        if m < 1e-280:  # (0 is in the domain)
            return np.zeros_like(Wq)
        g = 2.0 ** (np.ceil(np.log2(m)) - 40)
        # integers below 2^41 times g: sums of < 2^11 are exact; rounding up raises Q
        Wq = np.ceil(Wq / g) * g
        rows = np.arange(N)
        j = np.argmax(Y, axis=1)
        Wq[rows, j] = 0.0
        Wq[rows, j] = -Wq.sum(axis=1)
        return Wq


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
