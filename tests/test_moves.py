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
