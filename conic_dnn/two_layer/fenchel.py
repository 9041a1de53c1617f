"""The Fenchel dual bound of depth 2 at a given ``Lam`` (shared by the cone program's verified
dual points, :mod:`conic_dnn.two_layer.dual_bound`, and column generation,
:func:`conic_dnn.two_layer.pricing.lower_bound`).

For every ``Lam`` (N x k) with ``rho(Lam) <= 2 lam`` and every network,
``F >= D(Lam) = min_Z [C(Z) + <Lam, Z>] - bias^2 ||Lam^T 1||^2 / (4 lam)``, and
``min_Z C(Z) + <Lam, Z> = -C*(-Lam)`` with the conjugates of :mod:`conic_dnn.core.losses`
(``-inf`` off the domain; ``Lam`` is first repaired into it by ``-dual_point(-Lam)``).
"""

from __future__ import annotations

import numpy as np

from ..core.losses import MSE, CrossEntropy, Hinge, Huber, Logistic, Loss

__all__ = ["supported", "repair", "conjugate_value", "dual_value", "VALUE_MARGIN"]

EPS = np.finfo(float).eps
#: Relative margin subtracted from every dual value (sums of N k terms, each exact to eps).
VALUE_MARGIN = 1e-11


# --- min_Z C(Z) + <Lam, Z> = -C*(-Lam) (the conjugates of conic_dnn.core.losses) ---------
#: Costs whose conjugate is implemented and tested (exact types: a subclass may change the
#: value without changing the conjugate).
CONJUGATE_LOSSES = (MSE, Logistic, Hinge, Huber, CrossEntropy)


def supported(loss) -> bool:
    """True for the built-in costs whose conjugates are verified (exact types: a user's
    subclass may change ``value`` and keep an inherited, then wrong, conjugate). The one rule
    for every Fenchel bound: the cone program, column generation and ``auto``."""
    return type(loss) in CONJUGATE_LOSSES


def repair(loss, Lam: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """``Lam`` moved into the domain of ``Z -> min C(Z) + <Lam, Z>``:
    ``-loss.dual_point(-Lam, Y)`` (a convex set containing 0, so ``t Lam`` stays in it for
    ``t in [0, 1]``)."""
    return -loss.dual_point(-Lam, Y)


def conjugate_value(loss, Lam: np.ndarray, Y: np.ndarray) -> tuple[float, float]:
    """``(min_Z C(Z) + <Lam, Z>, size) = (-C*(-Lam), ...)``: the value (``-inf`` off the
    domain, ``nan`` for a cost without a conjugate) and the sum of the magnitudes of its terms (for
    the margin, :meth:`~conic_dnn.core.losses.Loss.conjugate_magnitude`)."""
    if not _has_conjugate(loss):
        return float("nan"), 0.0
    value = -loss.conjugate(-Lam, Y)
    if not np.isfinite(value):
        return float("-inf"), 0.0
    return float(value), loss.conjugate_magnitude(-Lam, Y)


def _has_conjugate(loss) -> bool:
    return isinstance(loss, Loss) and type(loss).conjugate is not Loss.conjugate


def dual_value(problem, Lam: np.ndarray, rho: float, n_grid: int = 60) -> float:
    """``max_{0 <= t <= t_max} D(t Lam)`` minus its rounding margin, ``t_max = min(2 lam / rho,
    dual_scale)`` (``t Lam`` kept in the conjugate's domain): a valid lower bound when
    ``rho >= rho(Lam)`` (``-inf`` if ``rho`` is not finite or the cost has no conjugate; ``D``
    concave in ``t``: closed form for the squared error, a golden-section search otherwise —
    any ``t`` in the interval is valid, so the search affects only the quality). The one
    evaluation of the Fenchel bound, for the cone program (costs gated by :func:`supported`)
    and for column generation (:func:`conic_dnn.two_layer.pricing.lower_bound`)."""
    loss = problem.loss
    if not _has_conjugate(loss) or not np.isfinite(rho) or rho < 0:
        return float("-inf")
    lam, beta, Y = problem.lam, problem.bias, problem.Y
    t_max = 2 * lam / rho if rho > 0 else np.inf
    t_max = min(t_max, loss.dual_scale(-Lam, Y) * (1 - 1e-12))
    bias_q = beta**2 * float(np.sum(Lam.sum(axis=0) ** 2)) / (4 * lam)

    def value(t):
        v, size = conjugate_value(loss, t * Lam, Y)
        b = t * t * bias_q
        return v - b - (VALUE_MARGIN + 4 * Lam.size * EPS) * (size + b) - 1e-300

    if isinstance(loss, MSE):
        lin = float(np.sum(Lam * Y))
        quad = problem.N / 4 * float(np.sum(Lam**2)) + bias_q
        if quad > 0:
            t = float(np.clip(lin / (2 * quad), 0.0, t_max))
        else:
            t = t_max if (lin > 0 and np.isfinite(t_max)) else 0.0
        return float(max(value(t), value(0.0)))
    if not np.isfinite(t_max):
        t_max = 1e6
    if t_max <= 0:
        return float(value(0.0))
    lo, hi = 0.0, float(t_max)
    g = (np.sqrt(5) - 1) / 2
    best = max(value(0.0), value(hi), value(min(1.0, hi)))
    x1, x2 = hi - g * (hi - lo), lo + g * (hi - lo)
    f1, f2 = value(x1), value(x2)
    for _ in range(n_grid):
        if f1 >= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - g * (hi - lo)
            f1 = value(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + g * (hi - lo)
            f2 = value(x2)
    return float(max(best, f1, f2))
