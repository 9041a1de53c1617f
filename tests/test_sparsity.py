"""Sparsity: the N^2/4 tight example and sparsity reports (docs/MATH.md §4); pruning itself
is tested in test_pruning.py.

Oracles: the closed-form lower bound of the tight example and, independently, the exact
two-layer solve and multi-start L-BFGS training; the input network's activation loss.
"""

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.certificates.sparsity import (
    bipartite_incidence,
    sparsity_report,
    tight_example,
    tight_example_bound,
)
from conic_dnn.neurons.decompose import generator_rank
from conic_dnn.neurons.pruning import prune


# --- the tight example ---------------------------------------------------------------------
@pytest.mark.parametrize("N", [4, 6, 8])
def test_tight_example_is_a_certified_global_minimum(N):
    lam = 1e-3
    p, net = tight_example(N, lam)
    assert net.widths == (N * N // 4,)
    bound = tight_example_bound(N, lam)
    assert bound == pytest.approx(lam * N**2 - lam**2 * N * (N - 1), rel=1e-15)
    assert net.loss(p) == pytest.approx(bound, rel=1e-7)
    # the generator family has rank N^2/4: neither pruning gets below it
    Z = net.forward(p.X)[0]
    assert generator_rank(Z, p.activation) == N * N // 4
    for method in ("caratheodory", "lp"):
        pruned = prune(p, net, method)
        assert pruned.widths == (N * N // 4,)
        assert pruned.loss(p) == pytest.approx(bound, rel=1e-9)


def test_tight_example_bound_matches_the_exact_solver():
    # independent oracle: the global two-layer optimum from the cone program (exact for N = 4)
    # (the bound is a verified dual point: on this degenerate instance the solver's dual is
    # feasible to 4e-6 only, so the certified gap is 2.5e-6, hence tol=1e-5)
    p, net = tight_example(4, 1e-3)
    res = cd.solve(p, tol=1e-5)
    assert res.exact and res.certified
    assert res.lower_bound <= tight_example_bound(4, 1e-3) * (1 + 1e-12)
    assert res.lower_bound == pytest.approx(tight_example_bound(4, 1e-3), rel=1e-5)
    assert res.objective == pytest.approx(net.loss(p), rel=1e-6)


@pytest.mark.parametrize("N", [4, 6, 8])
def test_interpolation_variant(N):
    E = bipartite_incidence(N)
    assert E.shape == (N * N // 4, N) and np.all(E.sum(axis=1) == 2)
    Y = E.T @ E
    W1, W2 = E, E.T
    Z = np.maximum(np.eye(N) @ W1.T, 0) @ W2.T
    np.testing.assert_array_equal(Z, Y)
    cost = np.sum(W1**2) + np.sum(W2**2)
    assert cost == N * N
    assert cost == pytest.approx(2 * np.linalg.norm(Y, "nuc"), rel=1e-12)
    w = np.linalg.eigvalsh(Y)
    np.testing.assert_allclose(w, [0] + [N / 2] * (N - 2) + [N], atol=1e-12)


def test_tight_example_narrower_networks_are_worse():
    # width N^2/4 - 1 cannot reach the bound (the paper: 0.1-3 % higher below N^2/4)
    p, _ = tight_example(4, 1e-3)
    train = cd.train_lbfgs(p, 3, n_starts=5, seed=0)
    assert train.objective > tight_example_bound(4, 1e-3) * (1 + 1e-3)


@pytest.mark.slow
@pytest.mark.blas_sensitive
def test_tight_example_width_n2_over_4_is_reached_by_training():
    # Which start lands in the global basin depends on the BLAS kernel's rounding (measured
    # over 24 seeded starts: 9 of 24 reach the bound under SkylakeX, 10 under Haswell and
    # Zen; the others stop 1.4-3.4 % above it). With 24 starts the chance that none does is
    # about 0.6^24 ~ 5e-6 on any kernel. The claim is the mathematical one: width N^2/4
    # attains the closed-form bound (to L-BFGS's ftol, relative 1e-6 is 1e3 times looser).
    p, _ = tight_example(4, 1e-3)
    bound = tight_example_bound(4, 1e-3)
    train = cd.train_lbfgs(p, 4, n_starts=24, seed=0)
    assert train.objective >= bound * (1 - 1e-9)  # the bound is a lower bound
    assert train.objective == pytest.approx(bound, rel=1e-6)
    assert train.network.widths == (4,)


def test_tight_example_validation():
    for bad in (3, 0, -2, 2.0, True):
        with pytest.raises(ValueError, match="N"):
            tight_example(bad)
    for lam in (0.0, 0.5, -1e-3, float("nan")):
        with pytest.raises(ValueError, match="lam"):
            tight_example(4, lam)


# --- report ----------------------------------------------------------------------------------
def test_sparsity_report(deep_instance):
    p, W = deep_instance
    rep = sparsity_report(p, W)
    assert [x.width for x in rep.layers] == [120, 90]
    for x in rep.layers:
        assert x.pruned_caratheodory <= x.rank <= x.caratheodory_bound == p.N * (p.N + 1)
        assert x.pruned_lp <= x.rank
        assert x.tight_bound == p.N**2 / 4
    assert rep.loss_caratheodory == pytest.approx(rep.loss_lp, rel=1e-9)
    text = str(rep)
    assert "N(N+1)" in text and "caratheodory" in text
    d = rep.to_dict()
    assert d["N"] == p.N and len(d["layers"]) == 2


def test_public_api_exports():
    for name in ("prune", "tight_example", "sparsity_report", "SparsityReport"):
        assert hasattr(cd, name)


def test_tight_example_size_guard():
    from conic_dnn.certificates.sparsity import MAX_EXAMPLE_BYTES, tight_example_bytes

    with pytest.raises(cd.SizeLimitError, match=r"N = 2000 needs ~\d+\.\d GiB.*"
                                                r"tight_example_bound"):
        tight_example(2000)
    with pytest.raises(cd.SizeLimitError, match="bipartite_incidence"):
        bipartite_incidence(2000)
    assert tight_example_bytes(500) <= MAX_EXAMPLE_BYTES < tight_example_bytes(600)
    # the estimate covers what is allocated: E, B and the two weight matrices
    p, net = tight_example(20)
    held = sum(W.nbytes for W in net.weights) + 2 * bipartite_incidence(20).nbytes
    assert held <= tight_example_bytes(20)
    # the closed form needs no memory at any N
    assert tight_example_bound(2000, 1e-3) == pytest.approx(1e-3 * 2000**2 - 1e-6 * 2000 * 1999)


def test_bipartite_incidence_rows_are_the_edges():
    E = bipartite_incidence(6)
    edges = {tuple(np.flatnonzero(r)) for r in E}
    assert edges == {(i, j) for i in range(3) for j in range(3, 6)}
