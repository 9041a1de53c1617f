"""Activation functions.

Every positively homogeneous scalar function is ``s(z) = a*max(z, 0) - b*max(-z, 0)``
(docs/MATH.md §1): ReLU ``(a, b) = (1, 0)``, leaky ReLU ``(1, alpha)``, absolute value ``(1, -1)``,
identity ``(1, 1)``. These are :class:`Homogeneous` objects and work with every formulation.
Any other callable is wrapped as :class:`NonHomogeneous`; it is accepted by the parameter and
activation formulations only, and the covariance machinery rejects it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "Homogeneous", "NonHomogeneous", "relu", "leaky_relu", "absolute", "identity",
    "homogeneous", "get_activation", "ACTIVATION_NAMES",
]


@dataclass(frozen=True)
class Homogeneous:
    """A positively homogeneous activation ``s(z) = a*max(z,0) - b*max(-z,0)``.

    Parameters
    ----------
    a : float
        Slope on the positive half-line.
    b : float
        Slope on the negative half-line (``s(z) = b*z`` for ``z < 0``).
    name : str
        Display name.
    """

    a: float
    b: float
    name: str = "homogeneous"
    is_homogeneous = True

    def __post_init__(self):
        for field in ("a", "b"):
            v = getattr(self, field)
            if not isinstance(v, (int, float, np.floating, np.integer)) or not np.isfinite(v):
                raise ValueError(f"activation slope {field!r}: expected a finite number, got {v!r}")
        if self.a == 0 and self.b == 0:
            raise ValueError("activation slopes: expected (a, b) != (0, 0), got the zero function")

    def __call__(self, z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=float)
        return self.a * np.maximum(z, 0.0) - self.b * np.maximum(-z, 0.0)

    def derivative(self, z: np.ndarray) -> np.ndarray:
        """Elementwise derivative (``a`` for ``z > 0``, ``b`` for ``z <= 0``)."""
        z = np.asarray(z, dtype=float)
        return np.where(z > 0, float(self.a), float(self.b))

    @property
    def is_linear(self) -> bool:
        """True when ``s`` is linear (``a == b``), e.g. the identity."""
        return self.a == self.b

    @property
    def is_even(self) -> bool:
        """True when ``s(-z) = s(z)`` up to sign symmetry, i.e. ``b == -a`` (absolute value)."""
        return self.b == -self.a

    def __repr__(self) -> str:
        return f"Homogeneous(name={self.name!r}, a={self.a:g}, b={self.b:g})"


@dataclass(frozen=True)
class NonHomogeneous:
    """Any other elementwise activation (tanh, GELU, ...): activation form only."""

    func: Callable[[np.ndarray], np.ndarray]
    name: str = "custom"
    deriv: Callable[[np.ndarray], np.ndarray] | None = None
    is_homogeneous = False

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(self.func(np.asarray(z, dtype=float)), dtype=float)

    def derivative(self, z: np.ndarray) -> np.ndarray:
        if self.deriv is None:
            raise ValueError(f"activation {self.name!r}: no derivative was given")
        return np.asarray(self.deriv(np.asarray(z, dtype=float)), dtype=float)


relu = Homogeneous(1.0, 0.0, "relu")
absolute = Homogeneous(1.0, -1.0, "abs")
identity = Homogeneous(1.0, 1.0, "identity")


def leaky_relu(alpha: float = 0.01) -> Homogeneous:
    """Leaky ReLU ``max(z, 0) + alpha*min(z, 0)`` (``a = 1``, ``b = alpha``)."""
    if not isinstance(alpha, (int, float, np.floating, np.integer)) or not np.isfinite(alpha):
        raise ValueError(f"leaky_relu alpha: expected a finite number, got {alpha!r}")
    return Homogeneous(1.0, float(alpha), f"leaky_relu({alpha:g})")


def homogeneous(a: float, b: float, name: str | None = None) -> Homogeneous:
    """Any positively homogeneous activation from its two slopes."""
    return Homogeneous(float(a), float(b), name or f"homogeneous({a:g},{b:g})")


_NAMED = {"relu": relu, "leaky_relu": leaky_relu(0.01), "abs": absolute, "identity": identity,
          "linear": identity}
ACTIVATION_NAMES = ("relu", "leaky_relu", "abs", "identity")


def get_activation(spec) -> Homogeneous | NonHomogeneous:
    """Turn a name, an activation object or a callable into an activation object.

    Raises
    ------
    ValueError
        Unknown name (the message lists the valid ones).
    TypeError
        Neither a string, an activation object nor a callable.
    """
    if isinstance(spec, (Homogeneous, NonHomogeneous)):
        return spec
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key not in _NAMED:
            raise ValueError(
                f"activation: expected one of {', '.join(ACTIVATION_NAMES)} "
                f"(or an activation object / callable), got {spec!r}")
        return _NAMED[key]
    if callable(spec):
        return NonHomogeneous(spec, getattr(spec, "__name__", "custom"))
    raise TypeError(f"activation: expected a name, an activation object or a callable, "
                    f"got {type(spec).__name__}")
