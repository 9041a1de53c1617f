"""PyTorch interop (optional ``torch`` extra): ``torch.nn.Sequential`` <-> :class:`Network`.

May import: conic_dnn.core.

A module converts only when the package computes exactly the same function: ``Linear``
layers (with or without bias) separated by exactly one activation each (``ReLU``,
``LeakyReLU`` or ``Identity``, the same one everywhere), no activation before the first or
after the last ``Linear``. Anything else raises a ``ValueError`` naming the offending layer
(``module[i]``) instead of being converted to another function. ``torch`` is imported lazily:
the core never needs it.

Biases. The package's bias model (docs/MATH.md §1) appends a constant column of value
``beta`` (``Network.bias``) to every layer's input, so layer ``l`` computes
``Z = H @ W[:, :n].T + beta * W[:, n]``: torch's per-neuron bias of that layer is
``b = beta * W[:, n]`` exactly, and conversely ``W[:, n] = b / beta``. A layer without bias is
a zero last column. Only ``beta = 0`` with a non-zero torch bias cannot be represented (refused,
naming the layer). The penalty ``lam * ||W||_F^2`` then charges ``lam * ||b||^2 / beta^2`` for
a bias, i.e. torch's ``weight_decay`` on all parameters when ``beta = 1`` (README: "PyTorch
conventions").
"""

from __future__ import annotations

import numpy as np

from .core.activations import Homogeneous, get_activation, leaky_relu
from .core.network import Network

__all__ = ["from_torch", "to_torch"]


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("torch interop needs PyTorch: pip install 'conic-dnn[torch]'") from exc
    return torch


def _activation_of(nn, layer, i: int):
    if isinstance(layer, nn.ReLU):
        return get_activation("relu")
    if isinstance(layer, nn.LeakyReLU):
        return leaky_relu(float(layer.negative_slope))
    if isinstance(layer, nn.Identity):
        return get_activation("identity")
    raise ValueError(f"module[{i}]: expected Linear, ReLU, LeakyReLU or Identity, got "
                     f"{type(layer).__name__} (no exact equivalent in conic_dnn)")


def _check_bias_argument(bias) -> float | None:
    if bias is None:
        return None
    if isinstance(bias, bool) or not isinstance(bias, (int, float)) or not np.isfinite(bias) \
            or bias < 0:
        raise ValueError(f"bias: expected None or a finite number >= 0, got {bias!r}")
    return float(bias)


def from_torch(module, bias: float | None = None) -> Network:
    """A :class:`Network` computing exactly what a ``torch.nn.Sequential`` computes.

    Parameters
    ----------
    module : torch.nn.Sequential
        ``Linear, act, Linear, act, ..., Linear`` with one ``ReLU`` / ``LeakyReLU`` /
        ``Identity`` (the same, same slope) between consecutive ``Linear`` layers. ``Linear``
        layers may have a bias or not.
    bias : float, optional
        The package's ``beta`` (``Problem(bias=...)``). Default: ``1.0`` if any ``Linear`` has a
        bias, else ``0.0``. With ``bias=0`` every torch bias must be zero.

    Returns
    -------
    Network
        ``weights[l]`` is the ``l``-th ``Linear``'s ``weight`` (shape ``(out, in)``), with the
        extra last column ``layer.bias / beta`` (zeros for a layer without bias) when
        ``beta > 0``, as float64 NumPy arrays.

    Raises
    ------
    TypeError
        ``module`` is not a ``torch.nn.Sequential``.
    ValueError
        A layer with no exact equivalent, naming it (``module[i]``): another layer type, two
        ``Linear`` without an activation between them, an activation first, last or twice in
        a row, different activations, a non-zero bias with ``bias=0``, non-finite weights.
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"module: expected a torch.nn.Sequential, got {type(module).__name__}")
    beta = _check_bias_argument(bias)
    layers = list(module)
    if not any(isinstance(layer, nn.Linear) for layer in layers):
        raise ValueError("module: expected at least one Linear layer, got none")
    if beta is None:
        beta = 1.0 if any(isinstance(layer, nn.Linear) and layer.bias is not None
                          for layer in layers) else 0.0
    weights, act, prev_linear = [], None, False
    for i, layer in enumerate(layers):
        if isinstance(layer, nn.Linear):
            if weights and prev_linear:
                raise ValueError(f"module[{i}]: expected an activation between module[{i - 1}] "
                                 f"and module[{i}] (two Linear layers in a row compose to one "
                                 f"linear map; insert nn.Identity() to mean a linear network)")
            weights.append(_linear_weights(layer, i, beta))
            prev_linear = True
            continue
        this = _activation_of(nn, layer, i)
        if not weights:
            raise ValueError(f"module[{i}]: expected a Linear layer first, got "
                             f"{type(layer).__name__} (an activation on the input is not part "
                             f"of the package's networks)")
        if not prev_linear:
            raise ValueError(f"module[{i}]: expected a Linear layer after the activation "
                             f"module[{i - 1}], got {type(layer).__name__} (two activations in "
                             f"a row)")
        if act is not None and (act.a, act.b) != (this.a, this.b):
            raise ValueError(f"module[{i}]: expected the same activation between all layers, "
                             f"got {act.name!r} and {this.name!r}")
        act = this
        prev_linear = False
    if not prev_linear:
        raise ValueError(f"module[{len(layers) - 1}]: expected the last layer to be Linear, got "
                         f"{type(layers[-1]).__name__} (the package's output layer is linear)")
    return Network(tuple(weights), act or get_activation("relu"), beta)


def _linear_weights(layer, i: int, beta: float) -> np.ndarray:
    W = layer.weight.detach().cpu().double().numpy().copy()
    b = None if layer.bias is None else layer.bias.detach().cpu().double().numpy().copy()
    if not np.all(np.isfinite(W)) or (b is not None and not np.all(np.isfinite(b))):
        raise ValueError(f"module[{i}]: expected finite weights and bias, got NaN or inf")
    if beta == 0:
        if b is not None and np.any(b != 0):
            raise ValueError(f"module[{i}]: a non-zero bias cannot be represented with bias=0 "
                             f"(pass bias=beta > 0: the layer's bias becomes beta times the "
                             f"last weight column)")
        return W
    col = np.zeros(W.shape[0]) if b is None else b / beta
    return np.hstack([W, col[:, None]])


def _torch_activation(nn, act):
    if not isinstance(act, Homogeneous):
        raise ValueError(f"network: expected a homogeneous activation, got {act.name!r}")
    if act.is_linear and act.a == 1:
        return nn.Identity
    if act.b == 0 and act.a == 1:
        return nn.ReLU
    if act.a == 1 and act.b > 0:
        def make():
            return nn.LeakyReLU(act.b)
        return make
    raise ValueError(f"network: {act.name!r} has no torch.nn equivalent (ReLU, LeakyReLU, "
                     f"Identity)")


def to_torch(network: Network, dtype=None):
    """A ``torch.nn.Sequential`` computing ``network`` exactly (in float64).

    Parameters
    ----------
    network : Network
        With or without bias; its activation must be ReLU, leaky ReLU (``a = 1``) or the
        identity.
    dtype : torch.dtype, optional
        Default ``torch.float64`` (the weights are copied exactly).

    Returns
    -------
    torch.nn.Sequential
        ``Linear, act, ..., Linear``; ``Linear(bias=True)`` with ``bias = beta * W[:, -1]`` when
        ``network.bias > 0``, ``bias=False`` otherwise.
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(network, Network):
        raise TypeError(f"network: expected a conic_dnn.Network, got {type(network).__name__}")
    make = _torch_activation(nn, network.activation)
    dtype = dtype or torch.float64
    beta = network.bias
    layers = []
    for i, W in enumerate(network.weights):
        W = np.array(W, dtype=float)  # a writable copy: torch warns on read-only arrays
        if beta > 0:
            W, b = W[:, :-1], beta * W[:, -1]
        lin = nn.Linear(W.shape[1], W.shape[0], bias=beta > 0, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)).to(dtype))
            if beta > 0:
                lin.bias.copy_(torch.from_numpy(np.ascontiguousarray(b)).to(dtype))
        layers.append(lin)
        if i < network.depth - 1:
            layers.append(make())
    return nn.Sequential(*layers)
