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
