"""Neuron decomposition: CP factorisation and Caratheodory reduction (MATH.md §3-4).

Oracles: matrices built as ``B B^T`` with ``B >= 0`` (CP by construction), a classical
doubly-nonnegative matrix that is *not* completely positive (the factorisation must say it
failed), and the covariance sums ``sum_j c_j z_j z_j^T`` / ``sum_j c_j s(z_j) s(z_j)^T`` formed
directly from the neurons.
"""

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.neurons.decompose import (
    SUM_RTOL,
    caratheodory,
    cp_factorize,
    generator_matrix,
    generator_rank,
)


def covariances(Z, act, c=None):
    c = np.ones(Z.shape[1]) if c is None else c
    S = act(Z)
    return (Z * c) @ Z.T, (S * c) @ S.T


def assert_same_sums(Z, act, keep, c, w=None, rtol=1e-10):
    """The contract of ``caratheodory``: the generator sum ``sum_j c_j (z_j z_j^T, s(z_j)
    s(z_j)^T)`` is verified to ``SUM_RTOL`` relative to its norm, ``||(K0, G0)||_F``, in the
    span of the generators kept by the rank cut (singular values of the normalised family
    above ``rtol * s_max``); the part below the cut adds at most ``s_(r+1) * sum_j w_j
    ||g_j||``. Each block's error is bounded by the joint one. A bound of the algorithm, not
    of one BLAS kernel's digits (the exchanges' rounding differs between kernels: 1.6e-10
    under SkylakeX, 4e-16 under Haswell on the singular-basis regression below)."""
    w = np.ones(Z.shape[1]) if w is None else w
    K0, G0 = covariances(Z, act, w)
    K1, G1 = covariances(Z[:, keep], act, c)
    A = generator_matrix(Z, act)
    nrm = np.linalg.norm(A, axis=0)
    live = nrm > 0
    s = np.linalg.svd(A[:, live] / nrm[live], compute_uv=False)
    r = int(np.sum(s > rtol * s[0]))
    cut = s[r] * float(w[live] @ nrm[live]) if r < s.size else 0.0
    total = np.hypot(np.linalg.norm(K0), np.linalg.norm(G0))
    err = np.hypot(np.linalg.norm(K1 - K0), np.linalg.norm(G1 - G0))
    assert err <= SUM_RTOL * total + cut, (err, total, cut)


@pytest.mark.parametrize("n, r", [(2, 1), (3, 2), (3, 5), (4, 3), (4, 8)])
def test_cp_factorize_recovers_cp_matrices(n, r, rng):
    B0 = np.abs(rng.normal(size=(n, r))) * (rng.random((n, r)) > 0.3)
    C = B0 @ B0.T
    fac = cp_factorize(C)
    assert fac.success and fac.residual <= 1e-9
    assert np.all(fac.B >= 0)
    assert np.linalg.norm(fac.B @ fac.B.T - C) <= 1e-9 * np.linalg.norm(C)


def test_cp_factorize_rank_two_closed_form(rng):
    # rank two, n = 6: rows spread over a 90-degree arc
    th = rng.uniform(0.3, 0.3 + np.pi / 2, size=6)
    R = np.c_[np.cos(th), np.sin(th)] * rng.uniform(0.5, 2, size=(6, 1))
    C = R @ R.T
    assert C.min() >= 0
    fac = cp_factorize(C)
    assert fac.success and fac.B.shape[1] == 2 and np.all(fac.B >= 0)


def test_cp_factorize_reports_failure_on_dnn_not_cp():
    # doubly nonnegative but not completely positive (Berman & Shaked-Monderer, 2003)
    C = np.array([[1, 1, 0, 0, 1], [1, 2, 1, 0, 0], [0, 1, 2, 1, 0], [0, 0, 1, 2, 1],
                  [1, 0, 0, 1, 6]], float)
    assert np.linalg.eigvalsh(C)[0] > 0 and C.min() >= 0
    fac = cp_factorize(C, n_restarts=3, max_iter=300)
    assert not fac.success and fac.residual > 1e-3
    assert np.all(fac.B >= 0)


def test_cp_factorize_validates_and_handles_zero():
    with pytest.raises(ValueError, match="square"):
        cp_factorize(np.ones((2, 3)))
    fac = cp_factorize(np.zeros((3, 3)))
    assert fac.success and fac.B.shape == (3, 0)


def test_generator_matrix_norms(rng):
    Z = rng.normal(size=(4, 7))
    A = generator_matrix(Z, cd.relu)
    assert A.shape == (20, 7)
    S = np.maximum(Z, 0)
    for j in range(7):
        ref = np.sqrt(np.linalg.norm(np.outer(Z[:, j], Z[:, j])) ** 2
                      + np.linalg.norm(np.outer(S[:, j], S[:, j])) ** 2)
        assert np.linalg.norm(A[:, j]) == pytest.approx(ref, rel=1e-12)


@pytest.mark.blas_sensitive
@pytest.mark.parametrize("method", ["nullspace", "lp"])
@pytest.mark.parametrize("act", [cd.relu, cd.leaky_relu(0.2), cd.absolute, cd.identity],
                         ids=["relu", "leaky", "abs", "identity"])
def test_caratheodory_keeps_covariances(method, act, rng):
    N, n = 5, 400
    Z = rng.normal(size=(N, n))
    w = rng.uniform(0.1, 2.0, size=n)
    keep, c = caratheodory(Z, act, weights=w, method=method)
    rank = generator_rank(Z, act)
    assert len(keep) <= rank <= N * (N + 1)
    if act.is_linear:
        assert rank == N * (N + 1) // 2
    assert np.all(c > 0)
    assert_same_sums(Z, act, keep, c, w)


def test_caratheodory_collapses_copies(rng):
    z = rng.normal(size=(4, 1))
    Z = z * rng.uniform(0.5, 2.0, size=(1, 50))  # 50 positive multiples of one neuron
    keep, c = caratheodory(Z, cd.relu)
    assert len(keep) == 1
    K0, G0 = covariances(Z, cd.relu)
    K1, G1 = covariances(Z[:, keep], cd.relu, c)
    assert np.allclose(K1, K0, rtol=1e-12, atol=0) and np.allclose(G1, G0, rtol=1e-12, atol=0)


def test_caratheodory_low_rank_inputs(rng):
    # neurons in a 2-D subspace: the family's rank is far below N(N+1)
    N = 6
    Z = rng.normal(size=(N, 2)) @ rng.normal(size=(2, 300))
    keep, c = caratheodory(Z, cd.relu)
    assert len(keep) <= generator_rank(Z, cd.relu) < N * (N + 1)
    assert_same_sums(Z, cd.relu, keep, c)


def test_caratheodory_validation(rng):
    Z = rng.normal(size=(3, 5))
    with pytest.raises(ValueError, match="weights"):
        caratheodory(Z, cd.relu, weights=-np.ones(5))
    with pytest.raises(ValueError, match="method"):
        caratheodory(Z, cd.relu, method="greedy")
    keep, c = caratheodory(np.zeros((3, 4)), cd.relu)
    assert keep.size == 0 and c.size == 0


@pytest.mark.blas_sensitive
def test_caratheodory_survives_a_singular_basis_refresh():
    """Regression: neurons of a depth-4, N = 8 alternating solve (benchmarks/deep.py) where the
    exchanges made the square basis exactly singular at a refresh, and ``inv`` raised
    LinAlgError; the refresh now falls back to ``pinv``. Same generator sums to SUM_RTOL
    (the kept basis has cond ~1e12: the rounding of the exchanges is kernel-dependent)."""
    from pathlib import Path

    Z = np.load(Path(__file__).parent / "data" / "caratheodory_singular_basis.npy")
    keep, c = caratheodory(Z, cd.relu)
    assert np.all(c > 0) and len(keep) <= generator_rank(Z, cd.relu)
    assert_same_sums(Z, cd.relu, keep, c)
