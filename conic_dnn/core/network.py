"""A finite network: plain weight matrices, its forward pass, loss and I/O.

``weights[l]`` has shape ``(n_{l+1}, n_l [+1])``: the extra last column is the bias, scaled by
``bias`` (docs/MATH.md §1). Hidden widths may be 0 (the zero network).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .activations import Homogeneous, NonHomogeneous, get_activation
from .formulations import loss_parameters, min_norm_weights
from .forward import check_weights, forward

__all__ = ["Network"]


@dataclass(frozen=True, eq=False)
class Network:
    """A feed-forward network with a positively homogeneous (or any) activation.

    Parameters
    ----------
    weights : tuple of ndarray
        ``weights[l]`` of shape ``(n_{l+1}, n_l)`` or ``(n_{l+1}, n_l + 1)`` with a bias.
    activation : activation object or name
    bias : float, default 0
        The paper's ``beta``: the bias column of each layer input holds this constant.
    """

    weights: tuple
    activation: Homogeneous | NonHomogeneous = "relu"
    bias: float = 0.0

    def __post_init__(self):
        act = get_activation(self.activation)
        bias = float(self.bias)
        if not np.isfinite(bias) or bias < 0:
            raise ValueError(f"bias: expected a finite number >= 0, got {self.bias}")
        ws = self.weights
        if isinstance(ws, (list, tuple)) and len(ws) > 0:
            first = np.asarray(ws[0])
            d = first.shape[1] - (1 if bias > 0 else 0) if first.ndim == 2 else -1
        else:
            d = 0
        ws = check_weights(ws, d, None, None, bias)
        for W in ws:
            W.flags.writeable = False
        object.__setattr__(self, "weights", tuple(ws))
        object.__setattr__(self, "activation", act)
        object.__setattr__(self, "bias", bias)

    @property
    def depth(self) -> int:
        """Number of weight matrices."""
        return len(self.weights)

    @property
    def widths(self) -> tuple[int, ...]:
        """Hidden widths ``(n_1, ..., n_{L-1})``."""
        return tuple(W.shape[0] for W in self.weights[:-1])

    @property
    def input_dim(self) -> int:
        return self.weights[0].shape[1] - (1 if self.bias > 0 else 0)

    @property
    def output_dim(self) -> int:
        return self.weights[-1].shape[0]

    def forward(self, X: np.ndarray) -> list[np.ndarray]:
        """Pre-activations ``Z_1..Z_L`` on ``X`` (shape ``(N, d)``)."""
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.input_dim:
            raise ValueError(f"X: expected shape (N, {self.input_dim}), got {X.shape}")
        return forward(X, self.weights, self.activation, self.bias)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Network output ``Z_L``, shape ``(N, k)``."""
        return self.forward(X)[-1]

    def squared_norm(self) -> float:
        """``sum_l ||W_l||_F^2``."""
        return float(sum(np.sum(W**2) for W in self.weights))

    def loss(self, problem) -> float:
        """Regularised loss ``C(Z_L) + lam * sum ||W_l||^2`` on ``problem``'s data."""
        return loss_parameters(problem, list(self.weights))

    def min_norm(self, problem) -> Network:
        """Same activations on ``problem.X``, minimal-norm weights (never a higher loss)."""
        return Network(tuple(min_norm_weights(problem, self.forward(problem.X))),
                       self.activation, self.bias)

    # --- I/O -----------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write an ``.npz`` with ``W0..W{L-1}``, ``activation_a``/``_b`` and ``bias``."""
        path = Path(path)
        act = self.activation
        if not act.is_homogeneous:
            raise ValueError("activation: only homogeneous activations can be saved, got "
                             f"{act.name!r}")
        arrays = {f"W{i}": W for i, W in enumerate(self.weights)}
        np.savez(path, **arrays, activation_a=act.a, activation_b=act.b,
                 activation_name=act.name, bias=self.bias, depth=self.depth)
        return path if path.suffix == ".npz" else path.with_suffix(path.suffix + ".npz")

    @classmethod
    def load(cls, path) -> Network:
        """Read a network written by :meth:`save` (or any npz with ``W0, W1, ...``)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"network file not found: {path}")
        with np.load(path, allow_pickle=False) as f:
            keys = sorted((k for k in f.files if k[:1] == "W" and k[1:].isdigit()),
                          key=lambda k: int(k[1:]))
            if not keys:
                raise ValueError(f"{path}: expected arrays W0, W1, ... in the npz file, "
                                 f"got {f.files}")
            weights = [f[k] for k in keys]
            if "activation_a" in f.files:
                from .activations import Homogeneous

                name = str(f["activation_name"]) if "activation_name" in f.files else "custom"
                act = Homogeneous(float(f["activation_a"]), float(f["activation_b"]), name)
            else:
                act = "relu"
            bias = float(f["bias"]) if "bias" in f.files else 0.0
        return cls(tuple(weights), act, bias)

    def __repr__(self) -> str:
        return (f"Network(widths={self.widths}, input_dim={self.input_dim}, "
                f"output_dim={self.output_dim}, activation={self.activation.name!r}, "
                f"bias={self.bias:g})")
