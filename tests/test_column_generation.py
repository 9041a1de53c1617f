"""Column generation for depth 2 (conic_dnn.two_layer.column_generation) against oracles."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.core.formulations import loss_parameters
from conic_dnn.two_layer.column_generation import lower_bound, price, solve_column_generation

from .test_two_layer import nuclear_norm_optimum

ACTS = {"relu": "relu", "leaky": cd.leaky_relu(0.1), "abs": "abs"}


def _problem(seed, N, d, bias, act="relu", k=1, lam=0.05):
    rng = np.random.default_rng([seed, N, d])
    return cd.Problem(rng.normal(size=(N, d)), rng.normal(size=(N, k)), 2, lam,
                      activation=act, bias=bias)


@pytest.fixture(params=[(5, 2, 0.0), (6, 1, 1.0)], ids=["d2", "d1-bias"])
def shape(request):
    return request.param


@pytest.fixture(params=list(ACTS), ids=list(ACTS))
def small(request, shape):
    N, d, bias = shape
    return _problem(0, N, d, bias, ACTS[request.param])


@pytest.fixture(scope="module")
def large():
    """N = 40, d = 2 (no bias), relu, two outputs: beyond the exact pattern program."""
    return _problem(3, 40, 2, 0.0, "relu", k=2, lam=0.01)


def test_matches_exact_cone_program(small):
    """Exact rank-2 pricing reaches the global optimum of cd.solve (1e-6 relative) and its
    lower bound never exceeds it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact = cd.solve(small)
    res = solve_column_generation(small, tol=1e-8)
    assert res.certified and res.exact and res.method == "column_generation"
    assert res.info["pricing"] == "rank2"
    assert res.objective == pytest.approx(exact.objective, rel=1e-6)
    assert res.lower_bound <= exact.objective + 1e-7
    assert res.gap <= 1e-8 * max(1.0, res.objective)


def test_network_loss_is_objective_and_bounds_are_ordered(small):
    res = solve_column_generation(small)
    assert loss_parameters(small, res.network.weights) == pytest.approx(res.objective,
                                                                        rel=1e-12)
    assert res.network.loss(small) == pytest.approx(res.objective, rel=1e-12)
    up, lo = res.info["history_upper"], res.info["history_lower"]
    assert len(up) == len(lo) == res.info["iterations"]
    assert all(lb <= ub + 1e-12 for lb, ub in zip(lo, up))
    assert all(lb <= min(up) + 1e-12 for lb in lo)
    assert max(res.network.widths) <= small.N * (small.N + 1)


@pytest.mark.parametrize("N, d, bias", [(5, 2, 0.0), (6, 3, 0.5)])
def test_identity_pricing_and_nuclear_norm(N, d, bias):
    """Identity activation: rho = ||Lambda^T H0||_2 and the optimum is the nuclear-norm one."""
    p = _problem(1, N, d, bias, "identity", k=2)
    Lam = np.random.default_rng(5).normal(size=(N, 2))
    rho, cands, method = price(p, Lam)
    assert method == "identity"
    assert rho == pytest.approx(np.linalg.norm(Lam.T @ p.H0, 2), rel=1e-12)
    val, u = cands[0]
    assert np.linalg.norm(Lam.T @ (p.H0 @ u)) == pytest.approx(rho, rel=1e-12)
    res = solve_column_generation(p, tol=1e-8)
    ref = nuclear_norm_optimum(p.X, p.Y, p.lam, bias)
    assert res.certified and res.exact
    assert res.objective == pytest.approx(ref, rel=1e-6)
    assert res.lower_bound <= ref + 1e-7


def test_kkt_constant_and_dual_bound(small):
    """At the optimum, ||Lambda^T s(H0 u_j)|| = 2 lam on active atoms (Lambda = -grad C;
    atoms with ||v_j|| > 1e-4 max, the rest are solver residue),
    rho(Lambda) = 2 lam, and the dual value equals the optimum."""
    res = solve_column_generation(small, tol=1e-9)
    W1, W2 = res.network.weights
    weight = np.linalg.norm(W1, axis=1) * np.linalg.norm(W2[:, :W1.shape[0]], axis=0)
    big = weight > 1e-4 * weight.max()  # interior-point solutions leave tiny atoms behind
    U = (W1[big].T / np.linalg.norm(W1[big], axis=1))
    Z = res.network.forward(small.X)[-1]
    Lam = -small.loss.gradient(Z, small.Y)
    vals = np.linalg.norm(Lam.T @ small.activation(small.H0 @ U), axis=0)
    np.testing.assert_allclose(vals, 2 * small.lam, rtol=1e-4)
    rho, _, _ = price(small, Lam)
    assert rho == pytest.approx(2 * small.lam, rel=1e-4)
    assert lower_bound(small, Lam, rho) == pytest.approx(res.objective, abs=1e-7)


def test_lower_bound_valid_for_any_multiplier(small):
    """Weak duality: any Lambda, scaled into the feasible set, bounds the optimum from below."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = cd.solve(small).objective
    rng = np.random.default_rng(11)
    for _ in range(20):
        Lam = rng.normal(size=small.Y.shape) * rng.uniform(0.01, 3)
        rho, _, _ = price(small, Lam)
        assert lower_bound(small, Lam, rho) <= opt + 1e-9
    assert lower_bound(small, np.ones(small.Y.shape), np.inf) == -np.inf


def test_cell_pricing_rank3():
    """rank(H0) = 3, one output: exact cell pricing certifies against the exact program."""
    p = _problem(4, 5, 3, 0.0, "relu")
    res = solve_column_generation(p, tol=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact = cd.solve(p)
    assert res.info["pricing"] == "cells" and res.exact and res.certified
    assert res.lower_bound <= exact.objective + 1e-7
    assert res.objective == pytest.approx(exact.objective, rel=1e-6)


def test_too_many_cells_reports_no_bound():
    p = _problem(4, 12, 3, 0.0, "relu")
    res = solve_column_generation(p, max_patterns=10, max_iter=5)
    assert res.lower_bound == -np.inf and not res.certified and res.gap == np.inf
    assert res.info["pricing"] == "heuristic"
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-12)


def test_large_instance_certified(large):
    """N = 40: far beyond the exact pattern program, certified to 1e-6 relative."""
    res = solve_column_generation(large, progress=False)
    assert res.certified and res.exact
    assert res.gap <= 1e-6 * max(1.0, abs(res.objective))
    assert res.network.loss(large) == pytest.approx(res.objective, rel=1e-12)
    assert max(res.network.widths) <= large.N * (large.N + 1)


def test_validation_errors():
    p = _problem(0, 4, 2, 0.0)
    with pytest.raises(TypeError, match="problem"):
        solve_column_generation("p")
    with pytest.raises(ValueError, match="problem.depth"):
        solve_column_generation(p.replace(depth=3))
    from conic_dnn.core.losses import MSE, Loss

    class Plain(Loss):  # a user loss without a conjugate: no Fenchel bound
        name = "plain"
        value, expression, gradient = MSE.value, MSE.expression, MSE.gradient

    with pytest.raises(ValueError, match="problem.loss"):
        solve_column_generation(p.replace(loss=Plain()))
    with pytest.raises(ValueError, match="activation"):
        solve_column_generation(p.replace(activation=np.tanh))
    for kw, err, name in [({"tol": 0.0}, ValueError, "tol"), ({"tol": "x"}, TypeError, "tol"),
                          ({"max_iter": 0}, ValueError, "max_iter"),
                          ({"max_iter": 2.5}, TypeError, "max_iter"),
                          ({"seed": -1}, ValueError, "seed"), ({"seed": 1.0}, TypeError, "seed"),
                          ({"n_add": 0}, ValueError, "n_add"),
                          ({"n_init": -1}, ValueError, "n_init"),
                          ({"max_patterns": -1}, ValueError, "max_patterns"),
                          ({"solver": "NOPE"}, ValueError, "solver")]:
        with pytest.raises(err, match=name):
            solve_column_generation(p, **kw)


def test_master_option():
    p = _problem(0, 5, 2, 0.0)
    # relative 1e-7 (F ~ 0.24): the cvxpy master's own accuracy is ~1e-8 (its gap stalls at
    # 1.5e-8 relative here); the numpy master reaches 6e-9
    a = solve_column_generation(p, tol=1e-7)
    b = solve_column_generation(p, tol=1e-7, master="cvxpy")
    assert a.info["master"] == "numpy" and b.info["master"] == "cvxpy"
    assert a.certified and b.certified
    assert a.objective <= b.objective * (1 + 1e-9)
    assert a.network.loss(p) == pytest.approx(a.objective, rel=1e-12)
    with pytest.raises(ValueError, match="master"):
        solve_column_generation(p, master="scipy")


@pytest.mark.slow
@pytest.mark.blas_sensitive  # (Huber on Haswell / Zen: a stop with unseen refined columns)
@pytest.mark.parametrize("loss, d, bias", [("logistic", 3, 0.0), ("hinge", 2, 1.0),
                                           ("huber", 3, 0.0)])
def test_classification_losses_certified_and_below_training(loss, d, bias):
    """Logistic / hinge / Huber, rank 3: certified to 1e-5 (their master is a cvxpy program:
    Clarabel's exponential-cone accuracy, ~1e-8 absolute, leaves relative gaps of ~1e-6; seen
    1.2e-6 for the logistic), the network's loss is its forward pass, and the lower bound is
    never above multi-start L-BFGS of a wide network (a bound above a trained loss would be
    false)."""
    from conic_dnn.training.gradient import train_lbfgs

    rng = np.random.default_rng([7, d])
    N = 12
    X = rng.normal(size=(N, d))
    Y = (rng.normal(size=(N, 1)) if loss == "huber"
         else np.where(X[:, :1] * X[:, -1:] + 0.3 * rng.normal(size=(N, 1)) > 0, 1.0, -1.0))
    p = cd.Problem(X, Y, 2, 0.01, loss=loss, bias=bias)
    res = solve_column_generation(p, tol=1e-5)
    assert res.certified and res.exact and res.lower_bound <= res.objective
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-12)
    trained = train_lbfgs(p, [24], n_starts=4, seed=0, max_iter=2000).objective
    assert res.lower_bound <= trained * (1 + 1e-9)
    # the certified optimum is the global one: training does not beat it beyond the gap
    assert trained >= res.objective - res.gap - 1e-9 * res.objective


def test_cross_entropy_bound_is_valid():
    """Cross-entropy (k = 3, rank 3): a finite lower bound below the network's loss and below
    multi-start training (k > 1: the per-cell bound need not certify)."""
    from conic_dnn.training.gradient import train_lbfgs

    rng = np.random.default_rng(3)
    N = 8
    p = cd.Problem(rng.normal(size=(N, 3)), np.eye(3)[rng.integers(0, 3, N)], 2, 0.05,
                   loss="cross_entropy")
    res = solve_column_generation(p, max_iter=20)
    assert np.isfinite(res.lower_bound) and res.lower_bound <= res.objective
    trained = train_lbfgs(p, [16], n_starts=3, seed=1, max_iter=1000).objective
    assert res.lower_bound <= trained * (1 + 1e-9)


def _sectors(C, N, seed):
    """Cross-entropy, ``C`` classes: Gaussian points in the plane labelled by the sector of
    ``2 pi / C`` of their angle (the instances of ``benchmarks/output_range.py``)."""
    rng = np.random.default_rng([seed, N, C])
    X = rng.normal(size=(N, 2))
    labels = np.floor(np.arctan2(X[:, 1], X[:, 0]) / (2 * np.pi / C)).astype(int) % C
    return cd.Problem(X, np.eye(C)[labels], 2, 0.05, loss="cross_entropy", bias=1.0)


@pytest.mark.blas_sensitive
@pytest.mark.parametrize("C, N, seed", [(2, 20, 2), (3, 12, 2)])
def test_cross_entropy_certified(C, N, seed):
    """Cross-entropy, rank 3: the dual's rows sum to zero, so two classes are priced on the
    one-dimensional output range by the exact cells of one output (``"cells"``, ``exact``)
    and three on a circle; the master solved to Clarabel's 1e-11 (``MASTER_CLARABEL``; with
    the 1e-9 defaults these two stall at relative gaps of 1.2e-6 and 2.1e-6): certified at the
    default tol 1e-6, the bound below multi-start training (an independent oracle), the
    objective the network's forward-pass loss."""
    from conic_dnn.training.gradient import train_lbfgs

    p = _sectors(C, N, seed)
    res = solve_column_generation(p)
    assert res.info["pricing"] == ("cells" if C == 2 else "cells_sphere") and res.exact
    assert res.certified and res.lower_bound <= res.objective
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-12)
    trained = train_lbfgs(p, [2 * N], n_starts=4, seed=0, max_iter=2000).objective
    assert res.lower_bound <= trained * (1 + 1e-9)


def test_deadline_stops_between_rounds():
    """An expired deadline: the best network so far, its valid bound, status time_limit."""
    from conic_dnn.core.budget import TIME_LIMIT_STATUS, Deadline

    p = _problem(2, 16, 3, 0.0, "relu")
    dl = Deadline(1e-9)
    res = solve_column_generation(p, deadline=dl)
    assert res.status == TIME_LIMIT_STATUS and not res.success and not res.certified
    assert res.info["iterations"] == 1
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-12)
    full = solve_column_generation(p)
    assert full.certified and res.lower_bound <= full.objective * (1 + 1e-9)
    with pytest.raises(TypeError, match="deadline"):
        solve_column_generation(p, deadline=5.0)


@pytest.mark.slow
@pytest.mark.blas_sensitive
def test_restart_closes_what_the_first_pass_leaves_open():
    """k = 2, rank 5, N = 10 with a small pricing budget: the first pass ends open (absolute
    gap 8.8e-4); the restart from one L-BFGS run's directions shrinks the gap at least 10x
    (measured: certified, gap 1e-11), with a bound no lower and a loss no higher. (The
    instances used before are certified by the first pass since the k > 1 refinement and its
    local moves.)
    Oracles: the network's own forward pass gives the objective, and multi-start training of
    a wide network is never below the bound."""
    from conic_dnn.training.gradient import train_lbfgs

    p = _problem(1, 10, 5, 0.0, k=2)
    first = solve_column_generation(p, restart=False, pricing_budget=3000)
    assert not first.certified and not first.info["restarted"]
    assert np.isfinite(first.lower_bound)
    res = solve_column_generation(p, pricing_budget=3000, restart=True)
    assert res.info["restarted"] and res.info["restart_time"] > 0
    assert res.gap <= first.gap / 10
    assert res.objective <= first.objective * (1 + 1e-12)
    assert res.lower_bound >= first.lower_bound
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-12)
    assert res.info["iterations"] == len(res.info["history_upper"])
    trained = train_lbfgs(p, [20], n_starts=3, seed=0, max_iter=3000).objective
    assert res.lower_bound <= trained * (1 + 1e-9)
    with pytest.raises(TypeError, match="restart"):
        solve_column_generation(p, restart=1)
    with pytest.raises(TypeError, match="extend"):
        solve_column_generation(p, extend=1)


@pytest.mark.parametrize("seed", range(4))
def test_width_never_above_caratheodory(seed):
    """N = 4 (a dictionary of up to 2N + 20 n_add directions): the returned width is at most
    N(N+1) = 20 on every instance, with the same loss as reported."""
    p = _problem(seed, 4, 3, 0.5, "relu", k=2, lam=1e-3)
    res = solve_column_generation(p, n_init=40, n_add=10)
    assert max(res.network.widths) <= 20
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-12)


def test_user_subclass_of_a_builtin_cost_is_refused(rng):
    """A subclass may change ``value`` and keep the inherited conjugate: column generation
    refuses it (the Fenchel bound would be unverified), as the cone program gives no bound."""
    class Scaled(cd.MSE):
        name = "scaled"

        def value(self, Z, Y):
            return 2.0 * super().value(Z, Y)

    p = cd.Problem(rng.normal(size=(5, 2)), rng.normal(size=5), 2, 0.05, loss=Scaled())
    with pytest.raises(ValueError, match="problem.loss: column generation needs a built-in"):
        cd.solve_column_generation(p)


@pytest.mark.parametrize("k, bias", [(1, 0.0), (2, 0.0), (2, 1.0)])
def test_extreme_lam_never_above_the_zero_network(k, bias):
    """lam = 1e15: the zero network is optimal; column generation returns it certified, its
    loss C(0) (the forward pass of a network without hidden neurons). Before it was the first
    incumbent, a failed k = 2 master returned a loss 1.4x C(0), uncertified."""
    p = _problem(0, 5, 3, bias, k=k, lam=1e15)
    res = solve_column_generation(p)
    c0 = p.loss.value(np.zeros_like(p.Y), p.Y)
    assert res.certified and res.widths == (0,)
    assert res.objective == pytest.approx(c0, rel=1e-12)
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-12)
