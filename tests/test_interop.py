"""PyTorch interop (optional): the torch module and our Network compute the same thing."""

import numpy as np
import pytest

import conic_dnn as cd

torch = pytest.importorskip("torch")
from conic_dnn.interop import from_torch, to_torch  # noqa: E402


@pytest.mark.parametrize("act", ["relu", cd.leaky_relu(0.1), "identity"],
                         ids=["relu", "leaky", "identity"])
def test_roundtrip_and_forward_agree(act, rng):
    W = [rng.normal(size=(7, 3)), rng.normal(size=(5, 7)), rng.normal(size=(2, 5))]
    net = cd.Network(tuple(W), act)
    mod = to_torch(net)
    X = rng.normal(size=(6, 3))
    out = mod(torch.as_tensor(X)).detach().numpy()
    # independent oracle: torch's own forward pass against ours
    np.testing.assert_allclose(out, net.predict(X), rtol=1e-12, atol=1e-12)
    back = from_torch(mod)
    assert (back.activation.a, back.activation.b) == (net.activation.a, net.activation.b)
    for A, B in zip(back.weights, net.weights):
        np.testing.assert_array_equal(A, B)


def test_prune_accepts_a_torch_module(rng):
    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=(4, 1)), 2, 0.05)
    mod = torch.nn.Sequential(torch.nn.Linear(2, 50, bias=False), torch.nn.ReLU(),
                              torch.nn.Linear(50, 1, bias=False)).double()
    pruned = cd.prune(p, mod)
    net = from_torch(mod)
    assert pruned.widths[0] <= 20
    ref = cd.loss_activations(p, cd.activations_from_weights(p, list(net.weights)))
    assert pruned.loss(p) == pytest.approx(ref, rel=1e-9)


def test_unsupported_modules_are_named():
    nn = torch.nn
    with pytest.raises(ValueError, match=r"module\[0\]: expected Linear\(\.\.\., bias=False\)"):
        from_torch(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1, bias=False)))
    with pytest.raises(ValueError, match=r"module\[1\]: expected Linear, ReLU"):
        from_torch(nn.Sequential(nn.Linear(2, 3, bias=False), nn.Tanh(),
                                 nn.Linear(3, 1, bias=False)))
    with pytest.raises(TypeError, match="module: expected a torch.nn.Sequential"):
        from_torch(nn.Linear(2, 3))
    with pytest.raises(ValueError, match="bias-free"):
        to_torch(cd.Network((np.ones((2, 3)), np.ones((1, 3))), "relu", bias=1.0))
    with pytest.raises(ValueError, match="no torch.nn equivalent"):
        to_torch(cd.Network((np.ones((2, 2)), np.ones((1, 2))), "abs"))
