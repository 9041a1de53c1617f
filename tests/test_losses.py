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
