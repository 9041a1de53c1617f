"""The deep solve's deterministic work budget and its certify-and-improve stage
(conic_dnn.deep.sweeps.WorkBudget, conic_dnn.deep.certified)."""

import warnings

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.cone.covariance_cone import pattern_cone_size
from conic_dnn.deep.starts import initial_network
from conic_dnn.deep.sweeps import (
    STEP_UNITS_PER_N2,
    LayerPrograms,
    WorkBudget,
    move_cost,
    run_sweeps,
    step_cost,
)


def _block_variables(prog) -> int:
    """The scalar variables of the program's cone blocks, counted on the built cvxpy
    problem (``r x r`` PSD blocks hold ``r(r+1)/2``)."""
    total = 0
    for v in prog.problem.variables():
        if v.name().startswith(("W_", "C_")):
            r = v.shape[0]
            total += r * (r + 1) // 2
        elif v.name() == "M":  # wedges: 3 per pattern
            total += v.size
    return total


@pytest.mark.parametrize("rank", [1, 2, 3, 5])
def test_step_cost_bounds_the_program_it_prices(rng, rank):
    N = 5
    p = cd.Problem(rng.normal(size=(N, 2)), rng.normal(size=(N, 1)), 3, 0.01)
    H = rng.normal(size=(N, rank)) @ rng.normal(size=(rank, 7))
    prog = LayerPrograms(p, "pattern").get(2, H)
    fixed = STEP_UNITS_PER_N2 * N**2
    cost = step_cost(p, "pattern", H)
    blocks = _block_variables(prog)
    assert 0 < blocks <= cost - fixed
    if rank == N:  # full rank: all 2^N patterns, nothing restricted
        assert cost - fixed == 2**N * N * (N + 1) // 2 == pattern_cone_size(N)
    assert step_cost(p, "pattern", np.zeros((N, 3))) == 0  # a dead input: no program
    assert move_cost(p) == fixed + 3 ** (N - 1)


def test_work_budget_stops_the_sweeps_deterministically(rng):
    p = cd.Problem(rng.normal(size=(5, 2)), rng.normal(size=(5, 1)), 3, 0.01)
    net = initial_network(p, "linear")
    full = run_sweeps(p, net, max_sweeps=4, work=WorkBudget(None))
    units = full.work // 2
    runs = []
    for _ in range(2):
        work = WorkBudget(units)
        runs.append(run_sweeps(p, net, max_sweeps=4, work=work))
        assert work.spent == runs[-1].work <= units
    a, b = runs
    assert a.out_of_work and a.skipped >= 1 and a.work < full.work
    assert a.history == b.history and a.objective == b.objective
    for W1, W2 in zip(a.network.weights, b.network.weights):
        assert W1.tobytes() == W2.tobytes()
    assert a.history[:2] == full.history[:2]  # the same first step
    h = np.array(a.history)
    assert np.all(np.diff(h) <= 0) and a.objective == pytest.approx(a.network.loss(p),
                                                                    rel=1e-12)
    with pytest.raises(ValueError, match="sweep_budget"):
        cd.solve(p, sweep_budget=-1.0)


def _features_problem(p, net):
    """The two-layer problem of the last two layers: features ``s(Z_{L-2})``."""
    Zs = net.forward(p.X)
    return p.replace(X=p.activation(Zs[p.depth - 3]), depth=2)


@pytest.mark.parametrize("act, bias", [("relu", 0.0), ("leaky_relu", 0.5)])
def test_joint_refit_reaches_the_two_layer_optimum(act, bias):
    from conic_dnn.deep.joint import refit_last_two

    rng = np.random.default_rng(11)
    p = cd.Problem(rng.normal(size=(5, 2)), rng.normal(size=(5, 1)), 3, 0.01, activation=act,
                   bias=bias)
    net = cd.train_lbfgs(p, 6, n_starts=1, seed=0, max_iter=30).network
    cand, val = refit_last_two(p, net)
    assert val == pytest.approx(cand.loss(p), rel=1e-12)
    assert cand.weights[0].tobytes() == net.weights[0].tobytes()  # layer 1 kept
    # oracle: the same two-layer problem by the pattern cone program (another formulation)
    sub = _features_problem(p, net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cd.InaccurateSolutionWarning)
        ref = cd.solve(sub, method="pattern")
    assert ref.certified
    fixed = p.lam * float(np.sum(net.weights[0] ** 2))
    assert val - fixed == pytest.approx(ref.objective, rel=2e-6)
    assert val <= net.loss(p)
    # the last hidden layer is now certified, and its bound is consistent with the oracle:
    # the two-layer optimum (<= ref.objective) is >= objective - gap_bound, as claimed
    cert = cd.certify(p, cand)
    last = cert.layers[-1]
    assert last.certified
    part = cert.objective - p.lam * float(np.sum(cert.network.weights[0] ** 2))
    assert part - last.gap_bound <= ref.objective * (1 + 1e-9)
    assert ref.lower_bound <= part * (1 + 1e-9)
    assert last.gap_bound <= 1e-3 * cert.objective


def test_certify_and_improve_is_monotone_and_its_certificate_is_real():
    from conic_dnn.deep.certified import certify_and_improve

    rng = np.random.default_rng(2)
    p = cd.Problem(rng.normal(size=(5, 2)), rng.normal(size=(5, 1)), 3, 0.01)
    net = cd.train_lbfgs(p, 8, n_starts=1, seed=0, max_iter=40).network  # far from stationary
    obj = net.loss(p)
    assert not cd.certify(p, net).certified
    out, val, cert, taken, hist = certify_and_improve(p, net, obj, 1e-3)
    assert taken >= 1 and val < obj
    assert val == pytest.approx(out.loss(p), rel=1e-12)
    assert hist[-1] == val and all(b < a for a, b in zip([obj] + hist, hist))
    again = cd.certify(p, out)  # the certificate returned is the returned network's
    assert [lc.certified for lc in again.layers] == [lc.certified for lc in cert.layers]
    assert cert.objective == pytest.approx(again.objective, rel=1e-12)
    assert cert.certified, str(cert)
    # oracle for the last hidden layer (certified jointly with the output layer): the
    # two-layer problem on its features, by the pattern cone program
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cd.InaccurateSolutionWarning)
        ref = cd.solve(_features_problem(p, cert.network), method="pattern")
    part = cert.objective - p.lam * float(np.sum(cert.network.weights[0] ** 2))
    assert ref.lower_bound <= part * (1 + 1e-9)
    assert part - cert.layers[-1].gap_bound <= ref.objective * (1 + 1e-9)
