"""The restricted master (conic_dnn.two_layer.group_lasso): numpy solver vs the cvxpy SOCP."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from conic_dnn.two_layer.group_lasso import master_cvxpy, master_numpy

from .test_column_generation import _problem


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("bias", [0.0, 0.8])
def test_numpy_master_matches_cvxpy(k, bias):
    """The numpy master (BCD + Newton polish) reaches the cvxpy group-lasso optimum on random
    dictionaries (1e-9 relative, or better: it is never worse), cold and warm started."""

    for seed, (N, m) in enumerate([(3, 6), (6, 14), (10, 25)]):
        p = _problem(seed, N, 2, bias, "relu", k=k, lam=0.01)
        rng = np.random.default_rng(seed)
        U = rng.normal(size=(p.H0.shape[1], m))
        U /= np.linalg.norm(U, axis=0)
        A = p.activation(p.H0 @ U)

        def obj(V, c, A=A, p=p, N=N):
            R = A @ V + p.bias * c - p.Y
            return (np.sum(R**2) / N + 2 * p.lam * np.sum(np.linalg.norm(V, axis=1))
                    + p.lam * c @ c)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            V1, c1, _ = master_cvxpy(p, U, None)
        V2, c2, info, ok = master_numpy(p, U, max_rounds=50)
        assert ok and info.solver == "numpy"
        ref, new = obj(V1, c1), obj(V2, c2)
        assert new <= ref * (1 + 1e-9)
        assert new == pytest.approx(ref, rel=1e-6)  # cvxpy itself is accurate to ~1e-8
        assert info.value == pytest.approx(new, rel=1e-12)
        if bias == 0:
            assert not c2.any()
        V3, c3, _, ok = master_numpy(p, U, V2, c2)  # warm start at the optimum: immediate
        assert ok and obj(V3, c3) == pytest.approx(new, rel=1e-12)


@pytest.mark.parametrize("bias", [0.0, 0.8])
def test_active_set_k1_on_nearly_collinear_dictionary(bias):
    """One output: the exact active-set solve (feature-sign) handles dictionaries of nearly
    parallel directions (the columns column generation adds in one cell) and matches the cvxpy
    SOCP; its own duality gap over the dictionary is below 1e-12 relative."""
    from conic_dnn.two_layer.group_lasso import _active_set_k1, _Lasso

    for seed in range(4):
        p = _problem(seed, 12, 3, bias, "relu", k=1, lam=0.02)
        rng = np.random.default_rng(seed)
        base = rng.normal(size=(p.H0.shape[1], 8))
        U = np.hstack([base + 1e-3 * rng.normal(size=base.shape) for _ in range(4)])
        U /= np.linalg.norm(U, axis=0)
        ls = _Lasso(p, U, None, None)
        assert _active_set_k1(ls)
        P, gap, res = ls.certificate()
        assert gap <= 1e-12 * P and res <= 1e-9
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            V1, c1, info = master_cvxpy(p, U, None)
        assert P <= info.value * (1 + 1e-9)
        assert P == pytest.approx(info.value, rel=1e-6)
