"""Shared fixtures: small random instances."""

from __future__ import annotations

import numpy as np
import pytest

import conic_dnn as cd

ACTIVATIONS = ["relu", cd.leaky_relu(0.1), "abs", "identity"]


def random_weights(rng, d, widths, k, bias=0.0):
    e = 1 if bias > 0 else 0
    dims = [d, *widths, k]
    return [rng.normal(size=(dims[i + 1], dims[i] + e)) / np.sqrt(dims[i] + e)
            for i in range(len(dims) - 1)]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(params=ACTIVATIONS, ids=lambda a: a if isinstance(a, str) else a.name)
def activation(request):
    return request.param
