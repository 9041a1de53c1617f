import numpy as np
import pytest

import conic_dnn as cd


def test_problem_attributes_and_shapes(rng):
    X = rng.normal(size=(5, 3))
    y = rng.normal(size=5)
    p = cd.Problem(X, y, depth=3, lam=0.1, activation="leaky_relu", bias=0.5)
    assert p.Y.shape == (5, 1) and p.X.shape == (5, 3)
    assert (p.N, p.d, p.k, p.depth, p.lam, p.bias) == (5, 3, 1, 3, 0.1, 0.5)
    assert p.activation.b == pytest.approx(0.01)
    assert p.loss.name == "mse"
    np.testing.assert_allclose(p.G0, X @ X.T + 0.25)
    assert p.H0.shape == (5, 4)


def test_problem_is_immutable(rng):
    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=(4, 1)), 2, 1.0)
    with pytest.raises(AttributeError):
        p.lam = 2.0
    with pytest.raises(ValueError):
        p.X[0, 0] = 1.0
    X = rng.normal(size=(4, 2))
    q = cd.Problem(X, np.ones(4), 2, 1.0)
    X[0, 0] = 99.0
    assert q.X[0, 0] != 99.0


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(X=np.ones((3, 2)), Y=np.ones(4)), ValueError, "expected 3 rows"),
    (dict(X=np.ones(3), Y=np.ones(3)), ValueError, "2-D"),
    (dict(X=np.ones((3, 2, 1)), Y=np.ones(3)), ValueError, "2-D"),
    (dict(X=np.full((3, 2), np.nan), Y=np.ones(3)), ValueError, "finite"),
    (dict(X=np.ones((3, 2)), Y=[np.inf, 1, 1]), ValueError, "finite"),
    (dict(X=np.zeros((0, 2)), Y=np.zeros(0)), ValueError, "non-empty"),
    (dict(X=[["a", "b"]], Y=[1.0]), TypeError, "numeric"),
    (dict(lam=0.0), ValueError, "lam"),
    (dict(lam=float("nan")), ValueError, "lam"),
    (dict(lam="1"), TypeError, "lam"),
    (dict(depth=1), ValueError, "depth"),
    (dict(depth=2.0), TypeError, "depth"),
    (dict(activation="tanh"), ValueError, "relu, leaky_relu, abs, identity"),
    (dict(activation=3), TypeError, "activation"),
    (dict(loss="l1"), ValueError, "mse"),
    (dict(bias=-1.0), ValueError, "bias"),
    (dict(loss="logistic", Y=np.array([0.0, 1.0, 1.0])), ValueError, "-1, \\+1"),
])
def test_problem_validation(kwargs, exc, match):
    base = dict(X=np.arange(6.0).reshape(3, 2), Y=np.ones(3), depth=2, lam=0.1)
    base.update(kwargs)
    with pytest.raises(exc, match=match):
        cd.Problem(**base)


def test_nonhomogeneous_flagged(rng):
    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=4), 2, 0.1, activation=np.tanh)
    assert not p.is_homogeneous
    with pytest.raises(ValueError, match="homogeneous"):
        p.require_homogeneous()


def test_replace_revalidates(rng):
    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=4), 2, 0.1)
    q = p.replace(lam=0.5)
    assert q.lam == 0.5 and p.lam == 0.1
    with pytest.raises(ValueError, match="lam"):
        p.replace(lam=-1.0)
