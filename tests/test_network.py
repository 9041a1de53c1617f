import numpy as np
import pytest

import conic_dnn as cd

from .conftest import random_weights


def test_network_basics_and_io(tmp_path, rng):
    W = random_weights(rng, 3, (5, 4), 2, bias=0.5)
    net = cd.Network(tuple(W), cd.leaky_relu(0.2), bias=0.5)
    assert net.widths == (5, 4) and net.depth == 3 and net.input_dim == 3
    X = rng.normal(size=(6, 3))
    out = net.predict(X)
    assert out.shape == (6, 2)
    path = net.save(tmp_path / "net.npz")
    back = cd.Network.load(path)
    assert back.activation.b == pytest.approx(0.2) and back.bias == 0.5
    np.testing.assert_array_equal(back.predict(X), out)
    p = cd.Problem(X, rng.normal(size=(6, 2)), 3, 0.1, activation=cd.leaky_relu(0.2), bias=0.5)
    assert net.loss(p) == pytest.approx(cd.loss_parameters(p, W))
    assert net.min_norm(p).loss(p) <= net.loss(p) * (1 + 1e-12)


def test_zero_width_network(rng):
    net = cd.Network((np.zeros((0, 3)), np.zeros((2, 0))), "relu")
    assert net.widths == (0,)
    np.testing.assert_array_equal(net.predict(rng.normal(size=(4, 3))), np.zeros((4, 2)))


def test_network_validation(tmp_path):
    with pytest.raises(ValueError, match=r"weights\[1\]: expected 4 columns"):
        cd.Network((np.ones((4, 3)), np.ones((1, 5))))
    with pytest.raises(ValueError, match="shape"):
        cd.Network((np.ones((4, 3)), np.ones((1, 4)))).predict(np.ones((2, 2)))
    with pytest.raises(FileNotFoundError):
        cd.Network.load(tmp_path / "missing.npz")
