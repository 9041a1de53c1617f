"""Moves of the deep solve: dead neurons (conic_dnn.deep.moves; the mode deletion is tested
against the Schatten closed form in test_alternating.py)."""

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.deep.moves import drop_dead


def test_drop_dead_removes_silent_neurons_and_keeps_the_outputs(rng):
    p = cd.Problem(rng.normal(size=(6, 2)), rng.normal(size=(6, 1)), 3, 0.01, bias=0.5)
    W1 = rng.normal(size=(5, 3))
    W1[1] = [-1.0, 0.0, -100.0]  # pre-activation < 0 on every sample: a dead ReLU
    W2 = rng.normal(size=(4, 6))
    W2[:, 3] = 0.0               # neuron 3 of layer 1 has no outgoing weights
    W2[:, -1] = 40.0             # a large bias weight: every layer-2 neuron is live
    W3 = rng.normal(size=(1, 5))
    net = cd.Network((W1, W2, W3), p.activation, p.bias)
    out = drop_dead(p, net)
    assert out.widths == (3, 4)
    np.testing.assert_allclose(out.forward(p.X)[-1], net.forward(p.X)[-1], rtol=1e-12,
                               atol=1e-12)
    assert out.loss(p) < net.loss(p)
    # a network without dead neurons is returned as it is
    assert drop_dead(p, out).widths == out.widths
    assert drop_dead(p, out).loss(p) == pytest.approx(out.loss(p), rel=1e-15)


def test_negligible_neurons_are_dropped_only_at_their_tolerance(rng):
    """A neuron scaled to 1e-8 of its layer carries ~1e-16 of the loss: kept at the dead
    tolerance (1e-12), dropped at NEGLIGIBLE_RTOL with the loss moving by rounding only."""
    from conic_dnn.deep.moves import NEGLIGIBLE_RTOL

    p = cd.Problem(rng.normal(size=(6, 2)), rng.normal(size=(6, 1)), 3, 0.01)
    W1, W2, W3 = rng.normal(size=(5, 2)), rng.normal(size=(4, 5)), rng.normal(size=(1, 4))
    W1[2] *= 1e-8
    W2[:, 2] *= 1e-8
    net = cd.Network((W1, W2, W3), p.activation, p.bias)
    ref = drop_dead(p, net)  # (layer 2 may lose a ReLU dead on all six samples)
    assert ref.widths[0] == 5
    out = drop_dead(p, net, NEGLIGIBLE_RTOL)
    assert out.widths == (4, ref.widths[1])
    assert out.loss(p) == pytest.approx(ref.loss(p), rel=1e-12)


def test_deep_solve_returns_no_negligible_neuron():
    """The issue's example: depth 3 on make_moons, N = 6, used to come back with widths
    (14, 21) and 12 live neurons in layer 2; every neuron returned now carries at least 1e-6
    of its layer's largest activation and outgoing weight, and every layer is certified."""
    from sklearn.datasets import make_moons

    X, y = make_moons(6, noise=0.1, random_state=0)
    p = cd.Problem(X, (2 * y - 1.0)[:, None], depth=3, lam=0.01, activation="relu")
    res = cd.solve(p)
    Zs = res.network.forward(p.X)
    for layer in range(2):
        h = np.linalg.norm(np.maximum(Zs[layer], 0), axis=0)
        v = np.linalg.norm(res.network.weights[layer + 1][:, :res.network.widths[layer]], axis=0)
        assert h.min() > 1e-6 * h.max() and v.min() > 1e-6 * v.max()
    assert all(res.info["layer_certified"])
