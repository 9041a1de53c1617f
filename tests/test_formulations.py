"""The three forms of the loss agree (MATH.md §1-3), against a hand-written forward pass."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import conic_dnn as cd
from conic_dnn.core.formulations import layer_inputs

from .conftest import ACTIVATIONS, random_weights

REL = 1e-9


def hand_loss(X, Y, weights, s, lam, beta):
    """Independent oracle: an explicit loop over layers, written without the package."""
    H = X if beta == 0 else np.hstack([X, beta * np.ones((X.shape[0], 1))])
    for i, W in enumerate(weights):
        Z = H @ W.T
        if i < len(weights) - 1:
            A = s(Z)
            H = A if beta == 0 else np.hstack([A, beta * np.ones((A.shape[0], 1))])
    return np.mean(np.sum((Z - Y) ** 2, axis=1)) + lam * sum(np.sum(W * W) for W in weights)


SHAPES = [  # (N, d, widths, k)
    (5, 3, (7,), 2),         # N > d
    (3, 6, (4,), 1),         # N < d
    (6, 2, (10, 4), 3),      # depth 3, widths above and below N
    (4, 4, (2, 9, 3), 2),    # depth 4
    (5, 3, (6, 6, 6, 6), 1),  # depth 5
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_three_formulations_agree(shape, beta, activation, rng):
    N, d, widths, k = shape
    X, Y = rng.normal(size=(N, d)), rng.normal(size=(N, k))
    p = cd.Problem(X, Y, len(widths) + 1, 0.05, activation=activation, bias=beta)
    W = random_weights(rng, d, widths, k, beta)
    lp = cd.loss_parameters(p, W)
    assert lp == pytest.approx(hand_loss(X, Y, W, p.activation, 0.05, beta), rel=1e-12)
    Zs = cd.activations_from_weights(p, W)
    la = cd.loss_activations(p, Zs)
    assert la <= lp * (1 + 1e-12)
    Wm = cd.min_norm_weights(p, Zs)
    # min-norm weights reproduce the activations and give the activation loss
    for Z, Zm in zip(Zs, cd.activations_from_weights(p, Wm)):
        np.testing.assert_allclose(Zm, Z, rtol=1e-9, atol=1e-9 * np.abs(Z).max())
    assert cd.loss_parameters(p, Wm) == pytest.approx(la, rel=REL)
    cov = cd.covariances_from_activations(p, Zs)
    lc = cd.loss_covariances(p, cov, Zs[-1])
    # The covariance form works from Gram matrices, which lose digits as their condition
    # number grows (forward error ~ eps * cond); the stated tolerance is 1e-9, widened only
    # by that documented amount on the rare ill-conditioned random layer.
    conds = [np.linalg.cond(G) for _, G in cov if np.linalg.matrix_rank(G) == N]
    assert lc == pytest.approx(la, rel=max(REL, 1e-15 * max(conds, default=1.0)))


def test_rank_deficient_X(activation, rng):
    B = rng.normal(size=(6, 2))
    X = B @ rng.normal(size=(2, 4))  # rank 2, d = 4
    p = cd.Problem(X, rng.normal(size=(6, 2)), 3, 0.1, activation=activation)
    W = random_weights(rng, 4, (8, 5), 2)
    Zs = cd.activations_from_weights(p, W)
    la = cd.loss_activations(p, Zs)
    assert la < cd.loss_parameters(p, W)  # the null-space part of W_1 is wasted norm
    # the oracle for the first term: min ||W_1||^2 with X W_1^T = Z_1 via the pseudo-inverse of X
    W1 = (np.linalg.pinv(X) @ Zs[0]).T
    assert np.sum(W1**2) <= np.sum(W[0] ** 2)
    assert cd.loss_covariances(p, cd.covariances_from_activations(p, Zs), Zs[-1]) == \
        pytest.approx(la, rel=REL)


def test_range_condition_gives_inf_and_names_layer(rng):
    X = np.hstack([rng.normal(size=(5, 2)), np.zeros((5, 1))])
    p = cd.Problem(X, rng.normal(size=(5, 1)), 2, 0.1, activation="identity")
    Z1 = rng.normal(size=(5, 3))  # generic: not in range(X) (rank 2 < 5)
    Zs = [Z1, rng.normal(size=(5, 1))]
    assert cd.loss_activations(p, Zs) == np.inf
    assert 1 in cd.range_violations(p, Zs)
    with pytest.raises(ValueError, match="layer"):
        cd.min_norm_weights(p, Zs)
    cov = cd.covariances_from_activations(p, Zs)
    assert cd.loss_covariances(p, cov, Zs[-1]) == np.inf


def test_covariances_shift_with_bias(rng):
    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=4), 2, 0.1, bias=2.0)
    W = random_weights(rng, 2, (3,), 1, 2.0)
    Zs = cd.activations_from_weights(p, W)
    K, G = cd.covariances_from_activations(p, Zs)[0]
    S = np.maximum(Zs[0], 0)
    np.testing.assert_allclose(G, S @ S.T + 4.0)
    np.testing.assert_allclose(K, Zs[0] @ Zs[0].T)


def test_invariances_of_covariance_loss(rng):
    """Permuting, rescaling (by homogeneity) and splitting neurons keeps the covariance loss."""
    for act in ACTIVATIONS:
        p = cd.Problem(rng.normal(size=(5, 3)), rng.normal(size=(5, 2)), 3, 0.1, activation=act)
        W = random_weights(rng, 3, (6, 4), 2)
        Zs = cd.activations_from_weights(p, W)
        base = cd.loss_covariances(p, cd.covariances_from_activations(p, Zs), Zs[-1])
        Z1 = Zs[0]
        perm = Z1[:, rng.permutation(6)]
        # rescale: neuron j by c_j > 0 and compensate in the covariance by splitting evenly
        split = np.hstack([Z1[:, :1] / np.sqrt(2), Z1[:, :1] / np.sqrt(2), Z1[:, 1:]])
        for Z1new in (perm, split):
            Znew = [Z1new, *Zs[1:]]
            val = cd.loss_covariances(p, cd.covariances_from_activations(p, Znew), Zs[-1])
            assert val == pytest.approx(base, rel=REL)
            # and the activation loss is the same too
            assert cd.loss_activations(p, Znew) == pytest.approx(base, rel=REL)


def test_errors_name_arguments(rng):
    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=4), 2, 0.1)
    with pytest.raises(ValueError, match=r"weights\[1\]: expected 5 columns"):
        cd.loss_parameters(p, [np.ones((5, 2)), np.ones((1, 4))])
    with pytest.raises(ValueError, match="expected 2 weight matrices"):
        cd.loss_parameters(p, [np.ones((5, 2))])
    with pytest.raises(TypeError, match="list of 2-D arrays"):
        cd.loss_parameters(p, np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"expected \d+ rows \(output"):
        cd.loss_parameters(p, [np.ones((5, 2)), np.ones((3, 5))])
    with pytest.raises(TypeError, match="Problem"):
        cd.loss_parameters("p", [np.ones((5, 2)), np.ones((1, 5))])
    with pytest.raises(ValueError, match="covariances"):
        cd.loss_covariances(p, [], np.zeros((4, 1)))
    q = p.replace(activation=np.tanh)
    with pytest.raises(ValueError, match="homogeneous"):
        cd.covariances_from_activations(q, [np.ones((4, 3)), np.ones((4, 1))])


def test_nonhomogeneous_activation_form(rng):
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 1))
    p = cd.Problem(X, Y, 3, 0.1, activation=np.tanh)
    W = random_weights(rng, 3, (7, 6), 1)
    assert cd.loss_parameters(p, W) == pytest.approx(hand_loss(X, Y, W, np.tanh, 0.1, 0.0))
    Zs = cd.activations_from_weights(p, W)
    assert cd.loss_parameters(p, cd.min_norm_weights(p, Zs)) == \
        pytest.approx(cd.loss_activations(p, Zs), rel=REL)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), step=st.floats(1e-4, 1.0),
       act=st.sampled_from(["relu", "abs", "identity", "leaky_relu"]),
       widths=st.lists(st.integers(1, 8), min_size=1, max_size=3))
def test_gradient_step_never_beats_min_norm(seed, step, act, widths):
    """Any weight-space step from W is no better than the min-norm weights of W's own
    activations... of the stepped network: F(W') >= F_act(Z(W')) for every W'."""
    rng = np.random.default_rng(seed)
    N, d, k = 5, 3, 2
    p = cd.Problem(rng.normal(size=(N, d)), rng.normal(size=(N, k)), len(widths) + 1, 0.1,
                   activation=act)
    W = random_weights(rng, d, widths, k)
    Wstep = [w - step * rng.normal(size=w.shape) for w in W]
    Zs = cd.activations_from_weights(p, Wstep)
    Wm = cd.min_norm_weights(p, Zs)
    assert cd.loss_parameters(p, Wm) <= cd.loss_parameters(p, Wstep) * (1 + 1e-10) + 1e-12
    # and the min-norm weights of the original network are no worse than the original
    Wm0 = cd.min_norm_weights(p, cd.activations_from_weights(p, W))
    assert cd.loss_parameters(p, Wm0) <= cd.loss_parameters(p, W) * (1 + 1e-10) + 1e-12


def test_layer_inputs_bias_column(rng):
    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=4), 2, 0.1, bias=0.3)
    Zs = cd.activations_from_weights(p, random_weights(rng, 2, (3,), 1, 0.3))
    Hs = layer_inputs(p, Zs)
    np.testing.assert_allclose(Hs[0][:, -1], 0.3)
    np.testing.assert_allclose(Hs[1][:, -1], 0.3)
