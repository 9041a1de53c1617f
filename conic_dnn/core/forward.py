"""The forward pass of a list of weight matrices and the checks on their shapes.

``weights[l]`` has shape ``(n_{l+1}, n_l [+1])``: the extra last column is the bias, scaled by
``bias`` (docs/MATH.md §1). These free functions sit below both :mod:`.network` (the
``Network`` dataclass) and :mod:`.formulations` (the losses), so neither imports the other's
helpers in a circle.
"""

from __future__ import annotations

import numpy as np

__all__ = ["forward", "check_weights", "insert_neuron"]


def check_weights(weights, d: int, k: int | None, depth: int | None, bias: float,
                  name: str = "weights") -> list[np.ndarray]:
    """Validate that the weight matrices chain; return them as float arrays.

    Raises
    ------
    TypeError, ValueError
        With an "expected ..., got ..." message naming the offending matrix.
    """
    if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
        raise TypeError(f"{name}: expected a list of 2-D arrays, got {type(weights).__name__}")
    if depth is not None and len(weights) != depth:
        raise ValueError(f"{name}: expected {depth} weight matrices (depth), got {len(weights)}")
    if len(weights) < 1:
        raise ValueError(f"{name}: expected at least one weight matrix, got none")
    extra = 1 if bias > 0 else 0
    out, n_prev = [], d
    for i, W in enumerate(weights):
        if isinstance(W, np.ma.MaskedArray):
            raise TypeError(f"{name}[{i}]: expected a plain array, got a numpy masked array "
                            f"(its mask would be ignored)")
        try:
            W = np.asarray(W)
        except ValueError:
            raise ValueError(f"{name}[{i}]: expected a 2-D array, got a ragged nested "
                             f"sequence") from None
        if W.dtype.kind not in "iuf":  # no bool, complex, object, timedelta64, datetime64
            what = "a real array" if W.dtype.kind == "c" else "a numeric array"
            raise TypeError(f"{name}[{i}]: expected {what}, got dtype {W.dtype}")
        if W.ndim != 2:
            raise ValueError(f"{name}[{i}]: expected a 2-D array, got shape {W.shape}")
        if W.shape[1] != n_prev + extra:
            raise ValueError(f"{name}[{i}]: expected {n_prev + extra} columns "
                             f"({'width of the previous layer' if i else 'input dimension d'}"
                             f"{' + 1 bias column' if extra else ''}), got shape {W.shape}")
        W = W.astype(float)
        if not np.all(np.isfinite(W)):
            raise ValueError(f"{name}[{i}]: expected finite values, got NaN or inf")
        out.append(W)
        n_prev = W.shape[0]
    if k is not None and n_prev != k:
        raise ValueError(f"{name}[-1]: expected {k} rows (output dimension k), got {n_prev}")
    return out


def insert_neuron(weights, layer: int, w_in, w_out, scale: float = 1.0,
                  bias: float = 0.0) -> list[np.ndarray]:
    """Weights with one more neuron in hidden layer ``layer`` (1-based): incoming row
    ``scale * w_in`` appended to ``W_layer`` and outgoing column ``scale * w_out`` inserted in
    ``W_{layer+1}`` before its bias column (when ``bias > 0``)."""
    Ws = [np.asarray(W, dtype=float) for W in weights]
    Ws[layer - 1] = np.vstack([Ws[layer - 1], scale * np.asarray(w_in, dtype=float)[None, :]])
    Wn = Ws[layer]
    n = Wn.shape[1] - (1 if bias > 0 else 0)
    Ws[layer] = np.hstack([Wn[:, :n], scale * np.asarray(w_out, dtype=float)[:, None],
                           Wn[:, n:]])
    return Ws


def _with_bias(H: np.ndarray, bias: float) -> np.ndarray:
    if bias > 0:
        return np.hstack([H, np.full((H.shape[0], 1), bias)])
    return H


def forward(X: np.ndarray, weights, activation, bias: float = 0.0) -> list[np.ndarray]:
    """The pre-activations ``Z_1..Z_L`` of a network on inputs ``X``.

    Parameters
    ----------
    X : ndarray, shape (N, d)
    weights : list of ndarray
        ``weights[l]`` of shape ``(n_{l+1}, n_l)`` (``+1`` column with a bias).
    activation : activation object
    bias : float

    Returns
    -------
    list of ndarray
        ``Z_l`` of shape ``(N, n_l)``; the last one is the output (no activation).
    """
    H = _with_bias(np.asarray(X, dtype=float), bias)
    Zs = []
    for i, W in enumerate(weights):
        Z = H @ W.T
        Zs.append(Z)
        if i < len(weights) - 1:
            H = _with_bias(activation(Z), bias)
    return Zs
