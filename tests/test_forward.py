"""core.forward: the forward pass, the weight checks and neuron insertion, against loops
written out by hand (one neuron at a time)."""

from __future__ import annotations

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.core.forward import check_weights, forward, insert_neuron


def _by_hand(X, weights, a, b, beta):
    """Neuron by neuron: z_j(x) = sum_i W[j, i] h_i(x) (+ W[j, -1] * beta)."""
    out = []
    H = [list(row) + ([beta] if beta > 0 else []) for row in X]
    for li, W in enumerate(weights):
        Z = [[sum(W[j, i] * h[i] for i in range(len(h))) for j in range(W.shape[0])] for h in H]
        out.append(np.array(Z))
        if li < len(weights) - 1:
            H = [[a * max(z, 0.0) - b * max(-z, 0.0) for z in row] + ([beta] if beta > 0 else [])
                 for row in Z]
    return out


@pytest.mark.parametrize("act, a, b", [(cd.relu, 1.0, 0.0), (cd.leaky_relu(0.1), 1.0, 0.1),
                                       (cd.absolute, 1.0, -1.0), (cd.identity, 1.0, 1.0)])
@pytest.mark.parametrize("beta", [0.0, 0.7])
def test_forward_matches_the_neuron_by_neuron_loop(rng, act, a, b, beta):
    X = rng.normal(size=(5, 3))
    extra = 1 if beta > 0 else 0
    Ws = [rng.normal(size=(4, 3 + extra)), rng.normal(size=(6, 4 + extra)),
          rng.normal(size=(2, 6 + extra))]
    Zs = forward(X, Ws, act, beta)
    for Z, R in zip(Zs, _by_hand(X, Ws, a, b, beta)):
        # entries are sums of at most 7 products of O(1) numbers: rounding ~ 1e-15 relative
        np.testing.assert_allclose(Z, R, rtol=1e-12, atol=1e-12)


def test_check_weights_names_the_matrix_and_what_was_expected():
    with pytest.raises(ValueError, match=r"weights\[1\]: expected 5 columns .* \+ 1 bias"):
        check_weights([np.ones((4, 3)), np.ones((1, 4))], 2, 1, 2, bias=1.0)
    with pytest.raises(ValueError, match=r"weights\[-1\]: expected 2 rows"):
        check_weights([np.ones((4, 2)), np.ones((1, 4))], 2, 2, 2, bias=0.0)
    with pytest.raises(ValueError, match="expected 3 weight matrices"):
        check_weights([np.ones((4, 2)), np.ones((1, 4))], 2, 1, 3, bias=0.0)
    with pytest.raises(TypeError, match="real array"):
        check_weights([np.ones((1, 2), dtype=complex)], 2, 1, 1, bias=0.0)
    with pytest.raises(ValueError, match="finite"):
        check_weights([np.array([[np.nan, 1.0]])], 2, 1, 1, bias=0.0)


def test_insert_neuron_adds_exactly_that_neuron(rng):
    X = rng.normal(size=(5, 2))
    beta = 0.5
    Ws = [rng.normal(size=(3, 3)), rng.normal(size=(1, 4))]
    w_in, w_out = rng.normal(size=3), rng.normal(size=1)
    new = insert_neuron(Ws, 1, w_in, w_out, scale=2.0, bias=beta)
    assert new[0].shape == (4, 3) and new[1].shape == (1, 5)
    act = cd.relu
    H0 = np.hstack([X, np.full((5, 1), beta)])
    added = np.maximum(H0 @ (2.0 * w_in), 0.0)[:, None] * (2.0 * w_out)[None, :]
    np.testing.assert_allclose(forward(X, new, act, beta)[-1],
                               forward(X, Ws, act, beta)[-1] + added, rtol=1e-12, atol=1e-12)
