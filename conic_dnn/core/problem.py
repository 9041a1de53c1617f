"""The training problem: data, depth, regularisation, activation, cost, bias (docs/MATH.md §1).

Validation happens here, once, at the boundary: every later module trusts a :class:`Problem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Real

import numpy as np

from .activations import Homogeneous, NonHomogeneous, get_activation
from .losses import Loss, get_loss

__all__ = ["Problem", "as_data_array", "check_real_dtype", "reject_masked"]


def check_real_dtype(arr: np.ndarray, name: str, allow_bool: bool = True) -> None:
    """Raise ``TypeError`` naming ``name`` unless ``arr`` holds real numbers: integers,
    floats (and booleans, read as 0/1, when ``allow_bool``). Refused: object, complex,
    timedelta64 / datetime64 (numpy counts timedelta64 as a number; it is not one here),
    strings, structured dtypes."""
    kinds = "iuf" + ("b" if allow_bool else "")
    if arr.dtype.kind not in kinds:
        what = "a real array" if arr.dtype.kind == "c" else "a numeric array"
        raise TypeError(f"{name}: expected {what}, got dtype {arr.dtype}")


def reject_masked(A, name: str) -> None:
    """Raise ``TypeError`` for a numpy masked array (its mask would be dropped silently)."""
    if isinstance(A, np.ma.MaskedArray):
        raise TypeError(f"{name}: expected a plain array, got a numpy masked array (its mask "
                        f"would be ignored): fill or drop the masked entries first")


def as_data_array(A, name: str, ndim_ok=(1, 2)) -> np.ndarray:
    """Validate a numeric, finite, non-empty array (``X`` or ``Y``); return a float copy.
    Booleans are read as 0/1; object, complex, timedelta64 / datetime64 dtypes and masked
    arrays are refused."""
    if isinstance(A, (str, bytes)) or A is None:
        raise TypeError(f"{name}: expected a numeric array, got {type(A).__name__}")
    reject_masked(A, name)
    try:
        arr = np.array(A)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: expected a numeric array, got {type(A).__name__} ({exc})") \
            from None
    check_real_dtype(arr, name)
    if arr.ndim not in ndim_ok:
        raise ValueError(f"{name}: expected a {' or '.join(f'{k}-D' for k in ndim_ok)} array, "
                         f"got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    arr = arr.astype(float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected finite values, got NaN or inf")
    return arr


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False)
class Problem:
    """An L2-regularised training problem.

    ``F(W) = C(Z_L) + lam * sum_l ||W_l||_F^2`` with ``Z_1 = H_0 W_1^T``,
    ``Z_l = H_{l-1} W_l^T``, ``H_0 = [X, bias*1]``, ``H_l = [s(Z_l), bias*1]`` (the bias column
    only when ``bias > 0``).

    Parameters
    ----------
    X : array_like, shape (N, d)
        Inputs, one sample per row.
    Y : array_like, shape (N, k) or (N,)
        Targets; a 1-D ``Y`` is stored as ``(N, 1)``.
    depth : int
        Number of weight matrices ``L >= 2``.
    lam : float
        Regularisation strength ``> 0``.
    activation : str or activation object or callable, default "relu"
        ``"relu"``, ``"leaky_relu"`` (slope 0.01), ``"abs"``, ``"identity"``, an object such as
        ``conic_dnn.leaky_relu(0.1)``, or any callable (activation form only).
    loss : str or Loss, default "mse"
        ``"mse"``, ``"logistic"``, ``"hinge"``, ``"cross_entropy"``, ``"huber"`` or a
        :class:`~conic_dnn.core.losses.Loss`.
    bias : float, default 0.0
        The paper's ``beta >= 0``: every layer input gets a constant column ``beta``.

    Attributes
    ----------
    X, Y, depth, lam, activation, loss, bias
        As given, validated (``X``, ``Y`` as read-only float arrays, ``Y`` 2-D, ``activation``
        and ``loss`` as objects).
    """

    X: np.ndarray
    Y: np.ndarray
    depth: int
    lam: float
    activation: Homogeneous | NonHomogeneous = field(default="relu")
    loss: Loss = field(default="mse")
    bias: float = 0.0

    def __post_init__(self):
        X = as_data_array(self.X, "X", ndim_ok=(2,))
        Y = as_data_array(self.Y, "Y")
        if Y.ndim == 1:
            Y = Y[:, None]
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"Y: expected {X.shape[0]} rows (one per row of X), "
                             f"got {Y.shape[0]}")
        depth = self.depth
        if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)):
            raise TypeError(f"depth: expected an integer >= 2, got {type(depth).__name__}")
        if depth < 2:
            raise ValueError(f"depth: expected an integer >= 2 (number of weight matrices), "
                             f"got {depth}")
        lam = self.lam
        if isinstance(lam, bool) or not isinstance(lam, Real):
            raise TypeError(f"lam: expected a positive number, got {type(lam).__name__}")
        if not np.isfinite(lam) or lam <= 0:
            raise ValueError(f"lam: expected a finite number > 0, got {lam}")
        bias = self.bias
        if isinstance(bias, bool) or not isinstance(bias, Real):
            raise TypeError(f"bias: expected a number >= 0, got {type(bias).__name__}")
        if not np.isfinite(bias) or bias < 0:
            raise ValueError(f"bias: expected a finite number >= 0, got {bias}")
        activation = get_activation(self.activation)
        loss = get_loss(self.loss)
        loss.check_targets(Y)
        object.__setattr__(self, "X", _frozen(X))
        object.__setattr__(self, "Y", _frozen(Y))
        object.__setattr__(self, "depth", int(depth))
        object.__setattr__(self, "lam", float(lam))
        object.__setattr__(self, "bias", float(bias))
        object.__setattr__(self, "activation", activation)
        object.__setattr__(self, "loss", loss)

    # --- derived sizes -------------------------------------------------------------------
    @property
    def N(self) -> int:
        """Number of training points."""
        return self.X.shape[0]

    @property
    def d(self) -> int:
        """Input dimension."""
        return self.X.shape[1]

    @property
    def k(self) -> int:
        """Output dimension."""
        return self.Y.shape[1]

    @property
    def is_homogeneous(self) -> bool:
        """True when the activation is positively homogeneous (covariance form available)."""
        return bool(self.activation.is_homogeneous)

    @property
    def has_bias(self) -> bool:
        return self.bias > 0

    def with_input(self, H: np.ndarray) -> np.ndarray:
        """Append the bias column ``bias*1`` to a layer input when ``bias > 0``."""
        if not self.has_bias:
            return H
        return np.hstack([H, np.full((H.shape[0], 1), self.bias)])

    @property
    def H0(self) -> np.ndarray:
        """The first layer's input ``[X, bias*1]``, shape ``(N, d)`` or ``(N, d+1)``."""
        return self.with_input(np.asarray(self.X))

    @property
    def G0(self) -> np.ndarray:
        """The input Gram matrix ``X X^T + bias^2 1 1^T``, shape ``(N, N)``."""
        H = self.H0
        return H @ H.T

    def replace(self, **changes) -> Problem:
        """A copy with some fields changed (validated again)."""
        kw = dict(X=self.X, Y=self.Y, depth=self.depth, lam=self.lam,
                  activation=self.activation, loss=self.loss, bias=self.bias)
        kw.update(changes)
        return Problem(**kw)

    def require_homogeneous(self, what: str = "the covariance formulation") -> Homogeneous:
        """Return the activation, or raise if it is not positively homogeneous."""
        if not self.is_homogeneous:
            raise ValueError(
                f"activation: {what} needs a positively homogeneous activation: expected "
                f"one of relu, leaky_relu, abs, identity or a conic_dnn.homogeneous(a, b), "
                f"got the non-homogeneous {self.activation.name!r}; use the parameter or "
                f"activation formulation")
        return self.activation

    def __repr__(self) -> str:
        return (f"Problem(N={self.N}, d={self.d}, k={self.k}, depth={self.depth}, "
                f"lam={self.lam:g}, activation={self.activation.name!r}, "
                f"loss={self.loss.name!r}, bias={self.bias:g})")
