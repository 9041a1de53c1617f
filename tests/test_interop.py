"""PyTorch interop (optional): the torch module and our Network compute the same thing, with and
without biases, and whatever has no exact equivalent is refused with the layer named."""

import warnings

import numpy as np
import pytest

import conic_dnn as cd

torch = pytest.importorskip("torch")
nn = torch.nn
from conic_dnn.interop import from_torch, to_torch  # noqa: E402

# Both forward passes are float64 sums of a few tens of products of O(1) numbers: they agree to
# a few ulps (1e-15); 1e-12 leaves a margin for other BLAS kernels' summation orders.
FWD = 1e-12


def _out(module, X):
    with torch.no_grad():
        return module(torch.as_tensor(X)).numpy()


@pytest.mark.parametrize("act", ["relu", cd.leaky_relu(0.1), "identity"],
                         ids=["relu", "leaky", "identity"])
@pytest.mark.parametrize("bias", [0.0, 1.0, 0.3])
def test_roundtrip_and_forward_agree(act, bias, rng):
    e = 1 if bias > 0 else 0
    W = [rng.normal(size=(7, 3 + e)), rng.normal(size=(5, 7 + e)), rng.normal(size=(2, 5 + e))]
    net = cd.Network(tuple(W), act, bias)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's "array is not writable" warning is gone
        mod = to_torch(net)
    lins = [m for m in mod if isinstance(m, nn.Linear)]
    assert all((m.bias is not None) == (bias > 0) for m in lins)
    X = rng.normal(size=(6, 3))
    # independent oracle: torch's own forward pass against ours
    np.testing.assert_allclose(_out(mod, X), net.predict(X), rtol=FWD, atol=FWD)
    back = from_torch(mod, bias=bias)
    assert (back.activation.a, back.activation.b) == (net.activation.a, net.activation.b)
    assert back.bias == bias
    for A, B in zip(back.weights, net.weights):
        np.testing.assert_allclose(A, B, rtol=1e-15, atol=1e-15)  # b / beta * beta


def test_torch_biases_map_to_the_bias_column(rng):
    torch.manual_seed(0)
    mod = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 4, bias=False), nn.ReLU(),
                        nn.Linear(4, 2)).double()
    X = rng.normal(size=(5, 3))
    for beta in (1.0, 0.25):
        net = from_torch(mod, bias=beta)
        assert net.bias == beta
        np.testing.assert_allclose(net.predict(X), _out(mod, X), rtol=FWD, atol=FWD)
        np.testing.assert_array_equal(net.weights[1][:, -1], 0.0)  # the layer without bias
        np.testing.assert_allclose(beta * net.weights[0][:, -1],
                                   mod[0].bias.detach().numpy(), rtol=1e-15)
    assert from_torch(mod).bias == 1.0  # default beta when any Linear has a bias
    assert from_torch(nn.Sequential(nn.Linear(2, 3, bias=False), nn.ReLU(),
                                    nn.Linear(3, 1, bias=False))).bias == 0.0


def test_convention_table_mse_and_penalty(rng):
    """README's table: package objective = k * MSELoss(mean) + lam * (||W||^2 + ||b||^2/beta^2),
    checked against torch's own loss on a solved network (beta = 1: weight decay on all)."""
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    p = cd.Problem(X, Y, 2, 0.1, bias=1.0)
    net = cd.Network(tuple(np.array(W) for W in
                           [rng.normal(size=(5, 3)), rng.normal(size=(2, 6))]), "relu", 1.0)
    mod = to_torch(net)
    out = mod(torch.as_tensor(X))
    mse = nn.MSELoss()(out, torch.as_tensor(Y)).item()  # mean over N * k entries
    penalty = sum(float((q.detach() ** 2).sum()) for q in mod.parameters())
    assert net.loss(p) == pytest.approx(Y.shape[1] * mse + p.lam * penalty, rel=1e-13)


def test_biased_roundtrip_prune_certify(rng):
    """torch Sequential with biases -> prune -> certify -> torch reproduces the forward pass.

    The wide module is random (width 60 > N(N+1) = 42), so its hidden activations are well
    conditioned and pruning (which keeps every layer's covariances, hence the output on the
    training inputs) reproduces the output to rounding; 1e-10 is the issue's bar."""
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    p = cd.Problem(X, Y, 2, 0.1, bias=1.0)
    torch.manual_seed(0)
    wide = nn.Sequential(nn.Linear(2, 60), nn.ReLU(), nn.Linear(60, 1)).double()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pruned = cd.prune(p, wide)
    assert isinstance(pruned, nn.Sequential)  # a module in, a module out
    assert pruned[0].bias is not None and pruned[2].bias is not None
    assert pruned[0].out_features <= p.N * (p.N + 1)
    np.testing.assert_allclose(_out(pruned, X), _out(wide, X), rtol=0, atol=1e-10)
    net = from_torch(pruned, bias=p.bias)
    cert = cd.certify(p, net)  # certifies net's layers (it may re-fit the output layer of
    assert len(cert.layers) == 1  # cert.network; the network we export is the pruned one)
    back = to_torch(net)
    np.testing.assert_allclose(_out(back, X), _out(wide, X), rtol=0, atol=1e-10)
    np.testing.assert_allclose(_out(back, X), net.predict(X), rtol=0, atol=1e-10)


def test_certified_biased_network_survives_torch(rng):
    """A certified biased solve exported to torch and read back is still certified, with the
    same objective and the same outputs (on any input, not only the training data)."""
    X, Y = rng.normal(size=(6, 2)), rng.normal(size=(6, 1))
    p = cd.Problem(X, Y, 2, 0.1, bias=1.0)
    res = cd.solve(p)
    assert res.certified
    mod = to_torch(res.network)
    Xn = rng.normal(size=(20, 2))
    np.testing.assert_allclose(_out(mod, Xn), res.network.predict(Xn), rtol=0, atol=1e-10)
    back = from_torch(mod, bias=p.bias)
    assert back.loss(p) == pytest.approx(res.objective, rel=1e-12)
    cert = cd.certify(p, back, tol=1e-4)  # first-order tolerance for a cone-solver network
    assert cert.certified


def test_prune_accepts_a_torch_module(rng):
    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=(4, 1)), 2, 0.05)
    mod = nn.Sequential(nn.Linear(2, 50, bias=False), nn.ReLU(),
                        nn.Linear(50, 1, bias=False)).double()
    pruned = cd.prune(p, mod)
    assert isinstance(pruned, nn.Sequential) and pruned[0].weight.dtype == torch.float64
    net = from_torch(mod)
    assert pruned[0].out_features <= 20
    ref = cd.loss_activations(p, cd.activations_from_weights(p, list(net.weights)))
    assert from_torch(pruned).loss(p) == pytest.approx(ref, rel=1e-9)


def test_prune_refuses_a_biased_module_on_a_bias_free_problem(rng):
    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=(4, 1)), 2, 0.05)
    mod = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 1, bias=False)).double()
    with pytest.raises(ValueError, match=r"module\[0\]: a non-zero bias cannot be represented"):
        cd.prune(p, mod)


@pytest.mark.parametrize("layers, where, what", [
    (lambda: [nn.Linear(2, 3), nn.Linear(3, 1)], r"module\[1\]", "activation between"),
    (lambda: [nn.ReLU(), nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)], r"module\[0\]",
     "Linear layer first"),
    (lambda: [nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1), nn.ReLU()], r"module\[3\]",
     "last layer to be Linear"),
    (lambda: [nn.Linear(2, 3), nn.LeakyReLU(0.1), nn.LeakyReLU(0.1), nn.Linear(3, 1)],
     r"module\[2\]", "two activations in a row"),
    (lambda: [nn.Linear(2, 3), nn.LeakyReLU(0.1), nn.Linear(3, 3), nn.LeakyReLU(0.2),
              nn.Linear(3, 1)], r"module\[3\]", "same activation"),
    (lambda: [nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)], r"module\[1\]",
     "expected Linear, ReLU"),
    (lambda: [nn.Linear(2, 3), nn.Dropout(0.1), nn.Linear(3, 1)], r"module\[1\]",
     "expected Linear, ReLU"),
])
def test_what_cannot_be_represented_is_refused(layers, where, what):
    """Each of these used to be converted to another function (issue: from_torch silently
    converts); now the offending layer is named."""
    mod = nn.Sequential(*layers()).double()
    with pytest.raises(ValueError, match=where + ".*" + what):
        from_torch(mod)


def test_unsupported_inputs_are_named():
    with pytest.raises(TypeError, match="module: expected a torch.nn.Sequential"):
        from_torch(nn.Linear(2, 3))
    with pytest.raises(ValueError, match="module: expected at least one Linear"):
        from_torch(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="bias: expected None or a finite number"):
        from_torch(nn.Sequential(nn.Linear(2, 1)), bias=-1.0)
    with pytest.raises(ValueError, match=r"module\[0\]: a non-zero bias"):
        from_torch(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)), bias=0.0)
    with pytest.raises(ValueError, match="no torch.nn equivalent"):
        to_torch(cd.Network((np.ones((2, 2)), np.ones((1, 2))), "abs"))
    with pytest.raises(TypeError, match="network: expected a conic_dnn.Network"):
        to_torch([np.ones((2, 2))])
