"""The rescaling symmetries and the Gram reduction of conic_dnn.core.scaling, checked against
the parameter loss of explicit networks (the oracle: ``loss_parameters`` on the user's data)."""

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.core.scaling import network_to_internal, network_to_original, scale_problem

from .conftest import random_weights


@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("c", [1e-4, 0.37, 1e4])
def test_symmetry_x_lam(depth, c, rng, activation):
    """X -> c X, lam -> c^{2/L} lam, W_l -> c^{-1/L} W_l leaves the loss unchanged (no bias)."""
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    W = random_weights(rng, 3, [4] * (depth - 1), 2)
    p = cd.Problem(X, Y, depth, 0.07, activation=activation)
    q = cd.Problem(c * X, Y, depth, 0.07 * c ** (2 / depth), activation=activation)
    Wq = [c ** (-1 / depth) * w for w in W]
    assert cd.loss_parameters(q, Wq) == pytest.approx(cd.loss_parameters(p, W), rel=1e-12)


@pytest.mark.parametrize("loss", ["mse", cd.Huber(delta=0.3)])
def test_joint_symmetry_with_bias(loss, rng, activation):
    """(X, Y, bias, lam) -> (c X, c Y, c bias, c^2 lam), weights unchanged: loss times c^2
    (Huber with delta -> c delta)."""
    c, beta = 7.5, 0.4
    X, Y = rng.normal(size=(5, 2)), rng.normal(size=(5, 1))
    W = random_weights(rng, 2, [3, 4], 1, bias=beta)
    p = cd.Problem(X, Y, 3, 0.05, activation=activation, bias=beta, loss=loss)
    qloss = cd.Huber(delta=0.3 * c) if isinstance(loss, cd.Huber) else loss
    q = cd.Problem(c * X, c * Y, 3, 0.05 * c * c, activation=activation, bias=c * beta,
                   loss=qloss)
    assert cd.loss_parameters(q, W) == pytest.approx(c * c * cd.loss_parameters(p, W),
                                                     rel=1e-12)


@pytest.mark.parametrize("bias, loss, d", [(0.0, "mse", 3), (0.5, "mse", 2),
                                           (0.0, "logistic", 2), (0.5, "hinge", 2),
                                           (0.0, "mse", 40), (0.5, "mse", 40)])
def test_scale_problem_maps_networks_and_losses(bias, loss, d, rng):
    """For random networks: internal loss = loss_scale x original loss of the mapped network,
    and the two maps are inverse to each other (d = 40 > N: Gram reduction)."""
    N = 5
    X = 300.0 * rng.normal(size=(N, d))
    Y = rng.normal(size=(N, 1)) if loss == "mse" else np.sign(rng.normal(size=(N, 1)))
    p = cd.Problem(X, Y, 2, 0.01, bias=bias, loss=loss)
    internal, sc = scale_problem(p)
    assert internal.d == min(N, d)
    rms = np.sqrt(np.mean(np.sum(internal.H0**2, axis=1)))
    if bias == 0 or loss == "mse":
        assert rms == pytest.approx(1.0, rel=1e-12)
    else:  # a bias and a cost that cannot be scaled: no symmetry moves X alone
        assert sc.x_scale == 1.0 and internal.lam == p.lam
    if loss == "mse" and bias == 0:
        assert np.sqrt(np.mean(np.sum(internal.Y**2, axis=1))) == pytest.approx(1.0)
    if d > N:
        assert np.allclose(internal.X @ internal.X.T, sc.x_scale**2 * X @ X.T, rtol=1e-12,
                           atol=1e-12 * sc.x_scale**2 * np.abs(X @ X.T).max())
    for _ in range(3):
        W = random_weights(rng, internal.d, [6], 1, bias=internal.bias)
        net = cd.Network(tuple(W), p.activation, internal.bias)
        orig = network_to_original(sc, net, p)
        assert orig.input_dim == d
        assert internal.loss.value(net.predict(internal.X), internal.Y) == pytest.approx(
            sc.loss_scale * p.loss.value(orig.predict(p.X), p.Y), rel=1e-10)
        assert cd.loss_parameters(internal, net) == pytest.approx(
            sc.loss_scale * cd.loss_parameters(p, orig), rel=1e-10)
        back = network_to_internal(sc, orig, internal)
        for a, b in zip(back.weights, net.weights):
            assert np.allclose(a, b, rtol=1e-10, atol=1e-12 * np.abs(b).max())


def test_rescaled_data_give_the_same_internal_problem(rng):
    """X and c X (lam and c lam) give internal problems equal to rounding: the solvers see the
    same numbers, whatever the user's units."""
    X, Y = rng.normal(size=(6, 3)), rng.normal(size=(6, 1))
    a, _ = scale_problem(cd.Problem(X, Y, 2, 0.01))
    for c in (1e-8, 1e-3, 100.0, 1e7):
        b, _ = scale_problem(cd.Problem(c * X, 3 * Y, 2, 0.01 * c * 3))
        assert np.allclose(a.X, b.X, rtol=1e-14, atol=1e-15)
        assert np.allclose(a.Y, b.Y, rtol=1e-14, atol=1e-15)
        assert a.lam == pytest.approx(b.lam, rel=1e-14)


def test_degenerate_data_are_left_alone(rng):
    """All-zero X or Y: the corresponding factor is 1 (nothing to normalise)."""
    p = cd.Problem(np.zeros((4, 2)), np.zeros(4), 2, 0.1)
    internal, sc = scale_problem(p)
    assert sc.x_scale == sc.y_scale == 1.0 and internal.lam == 0.1
