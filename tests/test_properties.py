"""Property tests (hypothesis): random shapes, scales and networks.

* ``solve`` on random small problems raises nothing but the documented errors, and every network
  it returns reproduces the reported objective by its own forward pass;
* the three formulations of the loss (parameters, activations, covariances) agree on random
  networks.

``derandomize=True``: the examples are a fixed function of the test, so a run is reproducible.
"""

import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import conic_dnn as cd

from .conftest import random_weights

#: what solve() may raise (its docstring): argument errors, size guard, solver failure
DOCUMENTED = (ValueError, TypeError, cd.SolverFailedError, cd.SizeLimitError)
#: an argument error of the library names the argument: "<name>: expected ..., got ..."
ARGUMENT_ERROR = re.compile(r"^[A-Za-z_][\w\[\]()\-', ]*: .*expected .*got ", re.S)

ACTS = st.sampled_from(["relu", "abs", "identity", "leaky_relu", cd.leaky_relu(0.3)])
SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def _solve(problem, **kwargs):
    """Solve, accepting only the documented failures; return the Result or None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cd.InaccurateSolutionWarning)
        warnings.simplefilter("ignore", cd.ConvergenceWarning)
        warnings.simplefilter("ignore", cd.DecompositionWarning)
        try:
            res = cd.solve(problem, **kwargs)
            event("solved")
            return res
        except DOCUMENTED as exc:
            event(f"raised {type(exc).__name__}")
            note(f"{type(exc).__name__}: {exc}")
            if type(exc) in (ValueError, TypeError):
                # every input here is valid: a bare ValueError / TypeError must at least be one
                # of the library's argument errors, not an internal crash
                assert ARGUMENT_ERROR.match(str(exc)), f"internal error: {exc!r}"
            return None


def _check_network(problem, res):
    assert isinstance(res.network, cd.Network)
    own = cd.loss_parameters(problem, list(res.network.weights))
    assert abs(own - res.objective) <= 1e-9 * abs(res.objective), (own, res.objective)
    assert res.network.depth == problem.depth
    assert res.network.input_dim == problem.d and res.network.output_dim == problem.k
    assert np.isfinite(res.objective) and res.objective >= 0


@settings(max_examples=20, **SETTINGS)
@given(seed=st.integers(0, 2**16), N=st.integers(2, 5), d=st.integers(1, 3), k=st.integers(1, 2),
       x_scale=st.sampled_from([1e-2, 0.3, 1.0, 3.0, 1e2]),
       y_scale=st.sampled_from([1e-2, 1.0, 1e2]),
       lam=st.sampled_from([1e-4, 1e-2, 0.1, 1.0]), act=ACTS,
       bias=st.sampled_from([0.0, 0.0, 0.5]), method=st.sampled_from(["auto", "lifted"]))
def test_depth2_solve_never_crashes_and_reproduces_objective(seed, N, d, k, x_scale, y_scale,
                                                             lam, act, bias, method):
    rng = np.random.default_rng(seed)
    X = x_scale * rng.normal(size=(N, d))
    Y = y_scale * rng.normal(size=(N, k))
    p = cd.Problem(X, Y, 2, lam, activation=act, bias=bias)
    res = _solve(p, method=method)
    if res is not None:
        _check_network(p, res)
        # the zero network is feasible: never report more than predicting 0
        assert res.objective <= p.loss.value(np.zeros_like(p.Y), p.Y) * (1 + 1e-9)


@settings(max_examples=10, **SETTINGS)
@given(seed=st.integers(0, 2**16), N=st.integers(2, 3), d=st.integers(1, 2),
       lam=st.sampled_from([1e-3, 1e-2, 0.1]), act=ACTS)
def test_depth3_solve_never_crashes_and_reproduces_objective(seed, N, d, lam, act):
    rng = np.random.default_rng(seed)
    p = cd.Problem(rng.normal(size=(N, d)), rng.normal(size=(N, 1)), 3, lam, activation=act)
    res = _solve(p, max_sweeps=3)
    if res is not None:
        _check_network(p, res)
        # never increases, except by the documented price of the width bound: a network wider
        # than N(N+1) whose exact pruning is ill-conditioned is pruned at loss_rtol 1e-6
        # (conic_dnn.deep.portfolio._prune_into; the start depends on a wall-clock sweep
        # budget, hence which case occurs may vary from run to run)
        assert all(b <= a * (1 + 1e-6) for a, b in zip(res.history, res.history[1:]))
        assert res.network.widths == () or max(res.network.widths) <= p.N * (p.N + 1)


@settings(max_examples=25, **SETTINGS)
@given(seed=st.integers(0, 2**16),
       X=st.sampled_from([None] * 5 + ["nan", "inf", "3d", "str", "empty", "rows"]),
       lam=st.sampled_from([0.1] * 6 + [0.0, -1.0, float("inf"), float("nan"), "0.1", None]),
       depth=st.sampled_from([2] * 6 + [1, 0, 2.0, "2", None]),
       act=st.sampled_from(["relu"] * 4 + ["tanh", np.tanh, 3]),
       method=st.sampled_from(["auto", "exact", None]),
       solver=st.sampled_from([None, "GUROBI", 1]))
def test_invalid_inputs_raise_argument_errors(seed, X, lam, depth, act, method, solver):
    """Random combinations of bad arguments: only ValueError / TypeError naming the argument,
    before any solver runs (then the problem is valid and solve() may run: checked above)."""
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(3, 2))
    Y = rng.normal(size=3)
    if X == "nan":
        data[0, 0] = np.nan
    elif X == "inf":
        data[1, 1] = -np.inf
    elif X == "3d":
        data = data[:, :, None]
    elif X == "str":
        data = data.astype(str)
    elif X == "empty":
        data, Y = data[:0], Y[:0]
    elif X == "rows":
        Y = Y[:2]
    valid = (X is None and lam == 0.1 and depth == 2 and act == "relu" and method == "auto"
             and solver is None)
    if valid:
        return
    try:
        p = cd.Problem(data, Y, depth, lam, activation=act)
        cd.solve(p, method=method, solver=solver, polish=False)
    except (ValueError, TypeError) as exc:
        event(f"{type(exc).__name__} {str(exc).split(':')[0]}")
        assert ARGUMENT_ERROR.match(str(exc)), repr(exc)
        assert not isinstance(exc, cd.ConicDNNError)
    else:  # pragma: no cover
        pytest.fail("an invalid argument was accepted")


@settings(max_examples=25, **SETTINGS)
@given(seed=st.integers(0, 2**16), N=st.integers(2, 6), d=st.integers(1, 4),
       k=st.integers(1, 3), widths=st.lists(st.integers(1, 6), min_size=1, max_size=3),
       act=ACTS, bias=st.sampled_from([0.0, 0.5]), lam=st.sampled_from([1e-3, 0.1, 2.0]),
       w_scale=st.sampled_from([0.1, 1.0, 3.0]))
def test_three_formulations_agree(seed, N, d, k, widths, act, bias, lam, w_scale):
    rng = np.random.default_rng(seed)
    p = cd.Problem(rng.normal(size=(N, d)), rng.normal(size=(N, k)), len(widths) + 1, lam,
                   activation=act, bias=bias)
    W = [w_scale * w for w in random_weights(rng, d, widths, k, bias)]
    lp = cd.loss_parameters(p, W)
    assert cd.loss_parameters(p, cd.Network(tuple(W), p.activation, bias)) == lp
    Zs = cd.activations_from_weights(p, W)
    la = cd.loss_activations(p, Zs)
    assert np.isfinite(la)
    # the activation loss is the parameter loss of the min-norm weights: never above any W
    assert la <= lp * (1 + 1e-12)
    Wm = cd.min_norm_weights(p, Zs)
    assert cd.loss_parameters(p, Wm) == pytest.approx(la, rel=1e-9)
    cov = cd.covariances_from_activations(p, Zs)
    lc = cd.loss_covariances(p, cov, Zs[-1])
    # Gram matrices lose digits with their condition number (see test_formulations.py)
    conds = [np.linalg.cond(G) for _, G in cov if np.linalg.matrix_rank(G) == N]
    note(f"la={la!r} lc={lc!r} lp={lp!r} conds={conds}")
    assert lc == pytest.approx(la, rel=max(1e-9, 1e-15 * max(conds, default=1.0)))


@settings(max_examples=8, **SETTINGS)
@given(seed=st.integers(0, 2**16), N=st.integers(3, 5), d=st.integers(1, 3),
       log_c=st.floats(-4, 4), lam_rel=st.sampled_from([1e-4, 1e-3, 1e-2, 0.1]),
       act=st.sampled_from(["relu", "abs", cd.leaky_relu(0.2)]))
def test_rescaling_invariance_and_no_network_beats_the_bound(seed, N, d, log_c, lam_rel, act):
    """X -> c X, lam -> c lam (depth 2, c in 1e-4..1e4) is the same problem with the weights
    mapped (W_l -> c^{-1/2} W_l): the certified objectives agree to 1e-6 and no network —
    the other run's, or one trained by multi-start L-BFGS — has a loss below either reported
    lower bound (beyond rounding, 1e-12 relative)."""
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(N, d)), rng.normal(size=(N, 1))
    c = 10.0**log_c
    p = cd.Problem(X, Y, 2, lam_rel, activation=act)
    q = cd.Problem(c * X, Y, 2, lam_rel * c, activation=act)
    a, b = _solve(p), _solve(q)
    assert a is not None and b is not None
    if a.certified and b.certified:
        assert b.objective == pytest.approx(a.objective, rel=1e-6)
    event(f"certified {a.certified + b.certified} of 2")
    trained = cd.train_lbfgs(p, 2 * N, n_starts=2, seed=seed, max_iter=1500).objective
    found = min(trained, a.objective, b.network.loss(q))
    for res in (a, b):
        assert found >= res.lower_bound - 1e-12 * abs(res.lower_bound), (found, res.lower_bound)
