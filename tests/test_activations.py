import numpy as np
import pytest

import conic_dnn as cd


@pytest.mark.parametrize("act, ref", [
    (cd.relu, lambda z: np.maximum(z, 0)),
    (cd.leaky_relu(0.2), lambda z: np.where(z > 0, z, 0.2 * z)),
    (cd.absolute, np.abs),
    (cd.identity, lambda z: z),
])
def test_homogeneous_values(act, ref):
    z = np.linspace(-3, 3, 13)
    np.testing.assert_array_equal(act(z), ref(z))
    # positive homogeneity s(a z) = a s(z), a >= 0
    np.testing.assert_allclose(act(2.5 * z), 2.5 * act(z))
    # derivative matches finite differences away from 0
    zz = z[z != 0]
    fd = (act(zz + 1e-6) - act(zz - 1e-6)) / 2e-6
    np.testing.assert_allclose(act.derivative(zz), fd, rtol=1e-6)


def test_names_and_errors():
    assert cd.get_activation("relu") is cd.relu
    assert cd.get_activation("leaky_relu").b == 0.01
    assert cd.get_activation(np.tanh).is_homogeneous is False
    with pytest.raises(ValueError, match="expected one of"):
        cd.get_activation("gelu")
    with pytest.raises(ValueError, match="alpha"):
        cd.leaky_relu(float("nan"))
    with pytest.raises(ValueError, match="zero function"):
        cd.homogeneous(0, 0)
