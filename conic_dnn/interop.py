"""PyTorch interop (optional ``torch`` extra): ``torch.nn.Sequential`` <-> :class:`Network`.

May import: conic_dnn.core.

Only bias-free ``Linear`` layers separated by one homogeneous activation (``ReLU``,
``LeakyReLU``, or ``Identity``) map onto the package's networks; anything else raises a
``ValueError`` naming the offending layer. ``torch`` is imported lazily: the core never needs it.
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


def from_torch(module) -> Network:
    """A :class:`Network` from a ``torch.nn.Sequential`` of ``Linear(bias=False)`` layers and
    ``ReLU`` / ``LeakyReLU`` / ``Identity`` activations (the same one between every pair).

    Parameters
    ----------
    module : torch.nn.Sequential

    Returns
    -------
    Network
        ``weights[l]`` is the ``l``-th ``Linear`` layer's ``weight`` (shape ``(out, in)``), as
        float64 NumPy arrays.
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(module, nn.Sequential):
        raise TypeError(f"module: expected a torch.nn.Sequential, got {type(module).__name__}")
    weights, act = [], None
    for i, layer in enumerate(module):
        if isinstance(layer, nn.Linear):
            if layer.bias is not None:
                raise ValueError(f"module[{i}]: expected Linear(..., bias=False), got a bias "
                                 f"(use Problem(bias=beta) for the paper's biases)")
            weights.append(layer.weight.detach().cpu().double().numpy().copy())
            continue
        if isinstance(layer, nn.ReLU):
            this = get_activation("relu")
        elif isinstance(layer, nn.LeakyReLU):
            this = leaky_relu(float(layer.negative_slope))
        elif isinstance(layer, nn.Identity):
            this = get_activation("identity")
        else:
            raise ValueError(f"module[{i}]: expected Linear, ReLU, LeakyReLU or Identity, got "
                             f"{type(layer).__name__}")
        if act is not None and (act.a, act.b) != (this.a, this.b):
            raise ValueError(f"module[{i}]: expected the same activation between all layers, "
                             f"got {act.name!r} and {this.name!r}")
        act = this
    if not weights:
        raise ValueError("module: expected at least one Linear layer, got none")
    return Network(tuple(weights), act or get_activation("relu"), 0.0)


def to_torch(network: Network, dtype=None):
    """A ``torch.nn.Sequential`` computing ``network`` (bias-free networks only).

    Parameters
    ----------
    network : Network
    dtype : torch.dtype, optional
        Default ``torch.float64`` (the weights are copied exactly).
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(network, Network):
        raise TypeError(f"network: expected a conic_dnn.Network, got {type(network).__name__}")
    if network.bias > 0:
        raise ValueError(f"network: expected a bias-free network, got bias {network.bias:g}")
    act = network.activation
    if not isinstance(act, Homogeneous):
        raise ValueError(f"network: expected a homogeneous activation, got {act.name!r}")
    if act.is_linear and act.a == 1:
        make = nn.Identity
    elif act.b == 0 and act.a == 1:
        make = nn.ReLU
    elif act.a == 1 and act.b > 0:
        def make():
            return nn.LeakyReLU(act.b)
    else:
        raise ValueError(f"network: {act.name!r} has no torch.nn equivalent (ReLU, LeakyReLU, "
                         f"Identity)")
    dtype = dtype or torch.float64
    layers = []
    for i, W in enumerate(network.weights):
        lin = nn.Linear(W.shape[1], W.shape[0], bias=False, dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(np.asarray(W), dtype=dtype))
        layers.append(lin)
        if i < network.depth - 1:
            layers.append(make())
    return nn.Sequential(*layers)
