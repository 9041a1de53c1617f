import warnings

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.core.formulations import layer_inputs

from .conftest import random_weights


def _terms(p, Zs, layer):
    """The two regularisation terms that depend on Z_layer, by explicit inverses."""
    Hs = layer_inputs(p, Zs)
    G_prev = Hs[layer - 1] @ Hs[layer - 1].T
    G = Hs[layer] @ Hs[layer].T
    Z, Zn = Zs[layer - 1], Zs[layer]
    att = p.lam * np.trace(Z.T @ np.linalg.pinv(G_prev) @ Z)
    rep = p.lam * np.trace(Zn.T @ np.linalg.inv(G) @ Zn)
    return att, rep


@pytest.mark.parametrize("act", ["relu", "abs", "identity", "leaky_relu"])
@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_forces_match_finite_differences(act, beta, rng):
    N = 4
    p = cd.Problem(rng.normal(size=(N, 6)), rng.normal(size=(N, 2)), 3, 0.3, activation=act,
                   bias=beta)
    W = random_weights(rng, 6, (9, 7), 2, beta)  # widths >= N: G_1 invertible
    Zs = cd.activations_from_weights(p, W)
    f = cd.attraction_repulsion(p, Zs, 1)
    E = rng.normal(size=Zs[0].shape)
    h = 1e-6
    plus = _terms(p, [Zs[0] + h * E, *Zs[1:]], 1)
    minus = _terms(p, [Zs[0] - h * E, *Zs[1:]], 1)
    fd_att = (plus[0] - minus[0]) / (2 * h)
    fd_rep = (plus[1] - minus[1]) / (2 * h)
    assert np.sum(f.attraction * E) == pytest.approx(fd_att, rel=1e-5)
    assert np.sum(f.repulsion * E) == pytest.approx(fd_rep, rel=1e-5)
    np.testing.assert_allclose(f.total, f.attraction + f.repulsion)


def test_forces_validation(rng):
    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=4), 2, 0.1)
    Zs = cd.activations_from_weights(p, random_weights(rng, 2, (5,), 1))
    with pytest.raises(ValueError, match="hidden layer 1..1"):
        cd.attraction_repulsion(p, Zs, 2)
    f = cd.attraction_repulsion(p, Zs, 1, eps=1e-3)
    assert f.attraction.shape == (4, 5)


def test_rank_deficient_layer_warns_without_eps(rng):
    # width 2 < N = 5: G_1 has rank <= 2, where pinv is not differentiable
    p = cd.Problem(rng.normal(size=(5, 3)), rng.normal(size=(5, 1)), 3, 0.1)
    W = [rng.normal(size=(2, 3)), rng.normal(size=(4, 2)), rng.normal(size=(1, 4))]
    Zs = cd.activations_from_weights(p, W)
    with pytest.warns(RuntimeWarning, match="rank deficient"):
        cd.attraction_repulsion(p, Zs, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cd.attraction_repulsion(p, Zs, 1, eps=1e-6)
