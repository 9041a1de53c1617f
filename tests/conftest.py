"""Shared fixtures: small random instances; a strict JSON parser."""

from __future__ import annotations

import json

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


def strict_loads(text):
    """json.loads that refuses NaN / Infinity (what a strict parser does)."""
    def bad(name):
        raise AssertionError(f"non-strict JSON constant {name}")
    return json.loads(text, parse_constant=bad)


@pytest.fixture(params=[0.0, 0.7], ids=["nobias", "bias"])
def deep_instance(request, rng):
    """Depth 3, N = 5, widths 120 and 90 (far above N(N+1) = 30), with and without bias."""
    bias = request.param
    N, d, k, e = 5, 3, 2, 1 if bias else 0
    p = cd.Problem(rng.normal(size=(N, d)), rng.normal(size=(N, k)), 3, 0.01, bias=bias)
    W = [rng.normal(size=(120, d + e)), rng.normal(size=(90, 120 + e)) / 10,
         rng.normal(size=(k, 90 + e)) / 10]
    return p, W
