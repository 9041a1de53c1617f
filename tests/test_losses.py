import cvxpy as cp
import numpy as np
import pytest

import conic_dnn as cd


def _targets(loss, rng, N, k):
    if loss.name in ("logistic", "hinge"):
        return np.sign(rng.normal(size=(N, k))) + 0.0
    if loss.name == "cross_entropy":
        return np.eye(k)[rng.integers(0, k, size=N)]
    return rng.normal(size=(N, k))


@pytest.mark.parametrize("loss", [cd.MSE(), cd.Logistic(), cd.Hinge(), cd.CrossEntropy(),
                                  cd.Huber(0.5)], ids=lambda x: x.name)
def test_numpy_value_matches_cvxpy_and_gradient(loss, rng):
    N, k = 6, 3
    Z = rng.normal(size=(N, k))
    Y = _targets(loss, rng, N, k)
    loss.check_targets(Y)
    Zc = cp.Constant(Z)
    assert loss.expression(Zc, Y).value == pytest.approx(loss.value(Z, Y), rel=1e-10)
    # with Y as a Parameter the expression stays DPP
    Yp = cp.Parameter((N, k), value=Y)
    Zv = cp.Variable((N, k))
    prob = cp.Problem(cp.Minimize(loss.expression(Zv, Yp) + cp.sum_squares(Zv)))
    assert prob.is_dcp(dpp=True)
    # gradient vs central differences
    E = rng.normal(size=Z.shape)
    h = 1e-6
    fd = (loss.value(Z + h * E, Y) - loss.value(Z - h * E, Y)) / (2 * h)
    assert np.sum(loss.gradient(Z, Y) * E) == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_mse_is_paper_convention():
    Z = np.array([[1.0], [2.0]])
    Y = np.zeros((2, 1))
    assert cd.MSE().value(Z, Y) == pytest.approx((1 + 4) / 2)


LOSSES = [cd.MSE(), cd.Logistic(), cd.Hinge(), cd.CrossEntropy(), cd.Huber(0.5)]


@pytest.mark.parametrize("loss", LOSSES, ids=lambda x: x.name)
def test_conjugate_fenchel_young(loss, rng):
    """C(Z) + C*(W) >= <W, Z> for every Z and W in the domain (random, many), with equality at
    W = grad C(Z) (to 1e-10; for the hinge at a Z off its kinks), and dual_scale / dual_point
    keep W in the domain."""
    N, k = 7, (3 if loss.name == "cross_entropy" else 2)
    Y = _targets(loss, rng, N, k)
    for _ in range(20):
        Z = 2 * rng.normal(size=(N, k))
        W = loss.gradient(Z, Y)  # a point of the domain: equality
        if loss.name == "hinge":
            Z = Z + 0.1 * np.sign(1 - Y * Z) * Y  # off the kink: 1 - y z away from 0
            W = loss.gradient(Z, Y)
        lhs = loss.value(Z, Y) + loss.conjugate(W, Y)
        assert lhs == pytest.approx(float(np.sum(W * Z)), rel=1e-10, abs=1e-10)
        # any other Z: Fenchel-Young inequality
        Z2 = 2 * rng.normal(size=(N, k))
        assert loss.value(Z2, Y) + loss.conjugate(W, Y) >= np.sum(W * Z2) - 1e-12
        # scaling into the domain: t W is in it for t <= dual_scale (finite conjugate)
        t = min(loss.dual_scale(W, Y), 3.0)
        assert np.isfinite(loss.conjugate(t * W * (1 - 1e-12), Y))
        # clipping (projection for the cross-entropy): any W lands in the domain
        Wp = loss.dual_point(W + 1e-1 * rng.normal(size=W.shape) / N, Y)
        assert np.isfinite(loss.conjugate(Wp, Y))
        assert np.isfinite(loss.conjugate_magnitude(Wp, Y))


@pytest.mark.parametrize("loss", [cd.Logistic(), cd.Hinge(), cd.Huber(0.5)],
                         ids=lambda x: x.name)
def test_conjugate_outside_domain_is_infinite(loss, rng):
    N = 5
    Y = _targets(loss, rng, N, 1)
    W = 10.0 * np.ones((N, 1)) * (-Y if loss.name != "huber" else 1.0)
    assert loss.conjugate(-W if loss.name != "huber" else W, Y) == np.inf
