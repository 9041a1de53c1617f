"""The same inputs and seed give the same result, bit for bit, twice in one process."""

import warnings

import numpy as np
import pytest

import conic_dnn as cd


def _data(seed, N, d, k):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, d)), rng.normal(size=(N, k))


def _solve_twice(make_problem, **kwargs):
    out = []
    for _ in range(2):
        p = make_problem()  # a fresh Problem (and fresh copies of the data) each time
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", cd.InaccurateSolutionWarning)
            warnings.simplefilter("ignore", cd.ConvergenceWarning)
            out.append((p, cd.solve(p, **kwargs)))
    return out


def assert_identical(r1, r2):
    assert r1.objective == r2.objective
    assert np.array_equal(r1.lower_bound, r2.lower_bound)  # -inf == -inf for depth >= 3
    assert r1.widths == r2.widths
    assert len(r1.network.weights) == len(r2.network.weights)
    for W1, W2 in zip(r1.network.weights, r2.network.weights):
        assert W1.shape == W2.shape and W1.dtype == W2.dtype
        assert W1.tobytes() == W2.tobytes()  # bit for bit (also -0.0 vs 0.0, NaN payloads)
    assert r1.history == r2.history
    for (K1, G1), (K2, G2) in zip(r1.covariances, r2.covariances):
        assert K1.tobytes() == K2.tobytes() and G1.tobytes() == G2.tobytes()
    assert (r1.status, r1.solver, r1.certified) == (r2.status, r2.solver, r2.certified)


@pytest.mark.parametrize("act, bias, method", [
    ("relu", 0.0, "auto"),
    ("abs", 0.0, "pattern"),
    (cd.leaky_relu(0.1), 0.5, "auto"),
    ("identity", 0.0, "auto"),
    ("relu", 0.0, "lifted"),
], ids=["relu", "abs", "leaky-bias", "identity", "relu-lifted"])
def test_depth2_bit_for_bit(act, bias, method):
    X, Y = _data(3, 4, 2, 1)
    (p, r1), (_, r2) = _solve_twice(
        lambda: cd.Problem(X.copy(), Y.copy(), 2, 0.05, activation=act, bias=bias),
        method=method, seed=7)
    assert_identical(r1, r2)
    assert r1.network.loss(p) == r1.objective


def test_depth2_two_outputs_five_points():
    X, Y = _data(4, 5, 3, 2)
    (_, r1), (_, r2) = _solve_twice(lambda: cd.Problem(X, Y, 2, 0.02), seed=1)
    assert_identical(r1, r2)


def test_depth3_bit_for_bit_linear_init():
    X, Y = _data(0, 4, 2, 1)
    (p, r1), (_, r2) = _solve_twice(lambda: cd.Problem(X[:3], Y[:3], 3, 0.05), seed=0)
    assert_identical(r1, r2)
    assert r1.network.loss(p) == r1.objective
    assert r1.info["sweeps"] == r2.info["sweeps"]
    assert r1.info["rejected_steps"] == r2.info["rejected_steps"]


def test_depth3_bit_for_bit_random_init():
    X, Y = _data(0, 4, 2, 1)
    (_, r1), (_, r2) = _solve_twice(lambda: cd.Problem(X[:3], Y[:3], 3, 0.05, activation="abs"),
                                    init="random", seed=5, max_sweeps=2)
    assert_identical(r1, r2)


def test_depth3_work_budget_bit_for_bit():
    """The sweeps cut short by the (deterministic) work budget: same cut, same result."""
    X, Y = _data(2, 5, 2, 1)
    (p, r1), (_, r2) = _solve_twice(lambda: cd.Problem(X, Y, 3, 0.02, bias=0.5), seed=1,
                                    n_starts=2, sweep_budget=3000)
    assert_identical(r1, r2)
    assert r1.info["skipped_steps"] >= 1 and 0 < r1.info["work"] <= 3000
    for key in ("work", "skipped_steps", "sweeps", "rejected_steps", "certify_rounds",
                "layer_certified"):
        assert r1.info[key] == r2.info[key], key


def test_interleaved_solves_do_not_leak_state():
    """A solve in between (another problem, another solver) changes nothing."""
    X, Y = _data(3, 4, 2, 1)

    def make():
        return cd.Problem(X, Y, 2, 0.05)

    r1 = cd.solve(make(), seed=3)
    Xo, Yo = _data(9, 3, 3, 2)
    cd.solve(cd.Problem(Xo, Yo, 2, 1.0, activation="abs"), solver="SCS", polish=False)
    r2 = cd.solve(make(), seed=3)
    assert_identical(r1, r2)


def test_training_baselines_are_seeded():
    X, Y = _data(5, 4, 2, 1)
    p = cd.Problem(X, Y, 3, 0.05)
    a, b = (cd.train_lbfgs(p, 3, n_starts=2, seed=11, max_iter=200) for _ in range(2))
    assert a.objective == b.objective and a.runs == b.runs
    assert all(W1.tobytes() == W2.tobytes()
               for W1, W2 in zip(a.network.weights, b.network.weights))
