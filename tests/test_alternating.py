"""Deep networks (depth >= 3): the portfolio solve, against closed forms and multi-start
training (conic_dnn.deep)."""

import numpy as np
import pytest
from scipy.optimize import brentq, minimize_scalar

import conic_dnn as cd
from conic_dnn.training.gradient import train_lbfgs


def _scalar_optimum(s, N, lam, L):
    """min_{t >= 0} (t - s)^2/N + lam L t^(2/L), from its stationarity condition.

    For t > 0, f'(t) = 0 <=> h(t) = t^(1 - 2/L) (s - t) = N lam. h vanishes at 0 and s and is
    unimodal with its maximum at t_m = (1 - 2/L) s / (2 - 2/L); if h(t_m) < N lam, f is
    increasing and t = 0 wins; otherwise the larger root (in (t_m, s)) is the local minimum,
    to be compared with t = 0 (f is concave-dominated near 0 for L >= 3: 0 is always a local
    minimum)."""
    f = lambda t: (t - s) ** 2 / N + lam * L * t ** (2.0 / L)  # noqa: E731
    tm = (1 - 2.0 / L) * s / (2 - 2.0 / L)
    h = lambda t: t ** (1 - 2.0 / L) * (s - t) - N * lam  # noqa: E731
    best = f(0.0)
    if s > 0 and h(tm) > 0:
        best = min(best, f(brentq(h, tm, s, xtol=1e-15, rtol=1e-15)))
    return best


def schatten_optimum(X, Y, lam, L):
    """Identity activation, X with orthonormal columns: the depth-L optimum.

    The network is linear, ``X M^T`` with ``M = W_L ... W_1``; the least weight norm
    realising ``M`` is ``L * sum_i sigma_i(M)^(2/L)`` (balanced factors); and
    ``||X M^T - Y||^2 = ||M^T - X^T Y||^2 + ||(I - X X^T) Y||^2``. By von Neumann's trace
    inequality the optimal ``M^T`` shares the singular vectors of ``X^T Y``, so the problem
    decouples over its singular values ``s``: ``min_t (t - s)^2/N + lam L t^(2/L)``."""
    N = X.shape[0]
    s = np.linalg.svd(X.T @ Y, compute_uv=False)
    rest = np.sum((Y - X @ (X.T @ Y)) ** 2) / N
    return rest + sum(_scalar_optimum(si, N, lam, L) for si in s)


def _orthonormal_instance(seed, L, N=8, d=3, k=2, lam=0.05):
    rng = np.random.default_rng(seed)
    X = np.linalg.qr(rng.normal(size=(N, d)))[0]
    Y = rng.normal(size=(N, k))
    return X, Y, cd.Problem(X, Y, L, lam, activation="identity")


@pytest.mark.parametrize("L", [3, 4, 5])
@pytest.mark.parametrize("s", [0.05, 0.3, 0.7, 1.3, 3.0])
def test_scalar_oracle_matches_brute_force(L, s):
    # the oracle against a dense grid refined by bounded Brent (independent of the
    # stationarity argument); the brute force is within 1e-12 of it, never below
    N, lam = 8, 0.05
    f = lambda t: (t - s) ** 2 / N + lam * L * t ** (2.0 / L)  # noqa: E731
    grid = np.linspace(0.0, 1.2 * s, 200001)
    vals = f(grid)
    i = int(np.argmin(vals))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    brute = min(vals[i], minimize_scalar(f, bounds=(lo, hi), method="bounded",
                                         options={"xatol": 1e-14}).fun)
    ref = _scalar_optimum(s, N, lam, L)
    assert ref <= brute + 1e-14
    assert brute == pytest.approx(ref, rel=1e-12, abs=1e-15)


def test_schatten_optimum_is_a_lower_bound_for_training():
    # wide L-BFGS can only be above the global optimum (an independent sanity check)
    X, Y, p = _orthonormal_instance(1, 3)
    ref = schatten_optimum(X, Y, 0.05, 3)
    train = train_lbfgs(p, 8, n_starts=5, seed=0)
    assert train.objective >= ref * (1 - 1e-9)
    assert min(train.runs) == pytest.approx(ref, rel=1e-6)  # some start finds it here


@pytest.mark.parametrize("L, seed", [(3, 0), (3, 1), (3, 2), (4, 0), (4, 1), (4, 2)])
def test_identity_portfolio_reaches_schatten_optimum(L, seed):
    X, Y, p = _orthonormal_instance(seed, L)
    res = cd.solve(p)
    ref = schatten_optimum(X, Y, 0.05, L)
    # to 1e-6 relative: the final L-BFGS polish converges to ~1e-12 on this smooth problem;
    # never below the global optimum by more than rounding
    assert res.objective == pytest.approx(ref, rel=1e-6)
    assert res.objective >= ref * (1 - 1e-10)
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-12)
    assert len(res.info["layer_certified"]) == L - 1


@pytest.mark.parametrize("L, seed", [(3, 1), (4, 1), (4, 2)])
def test_identity_linear_start_leaves_the_wrong_basin(L, seed):
    """From the linear start alone (no training): every mode starts in the t > 0 basin and a
    layer program cannot drop a mode the next layer uses; the joint mode deletion does."""
    X, Y, p = _orthonormal_instance(seed, L)
    res = cd.solve(p, init="linear")
    assert res.info["winner"] == "linear" and res.info["start_objectives"] == []
    assert res.objective == pytest.approx(schatten_optimum(X, Y, 0.05, L), rel=1e-6)


def test_mode_deletion_reaches_the_zero_basin():
    # a balanced linear network carrying a weak mode (s below the threshold of the scalar
    # problem: its optimum is t = 0) and a strong one; one deletion drops the weak one
    from conic_dnn.deep.moves import delete_mode

    N, L, lam = 8, 3, 0.05
    X = np.linalg.qr(np.random.default_rng(3).normal(size=(N, 2)))[0]
    s = np.array([2.0, 0.2])
    Y = X @ np.diag(s)  # X^T Y = diag(s)
    p = cd.Problem(X, Y, L, lam, activation="identity")
    root = np.array([1.5, 0.15]) ** (1.0 / L)  # both modes alive
    Ws = (np.diag(root), np.diag(root), np.diag(root))
    net = cd.Network(Ws, p.activation, 0.0)
    obj = net.loss(p)
    out = delete_mode(p, net, obj)
    assert out is not None
    cand, val = out
    assert val < obj and val == pytest.approx(cand.loss(p), rel=1e-12)
    ref = schatten_optimum(X, Y, lam, L)
    assert val == pytest.approx(ref, rel=1e-6)
    assert np.linalg.matrix_rank(cand.weights[0], tol=1e-6) == 1


@pytest.mark.parametrize("L, seed, bias, act", [
    (3, 0, 0.0, "relu"), (3, 1, 0.0, "abs"),
    pytest.param(4, 2, 0.0, "relu", marks=pytest.mark.slow),
    pytest.param(3, 3, 0.5, "leaky_relu", marks=pytest.mark.slow)])
def test_portfolio_never_above_best_of_n_starts(L, seed, bias, act):
    rng = np.random.default_rng(seed)
    N, n = 4, 2
    p = cd.Problem(rng.normal(size=(N, 2)), rng.normal(size=(N, 1)), L, 0.01, bias=bias,
                   activation=act)
    res = cd.solve(p, n_starts=n, seed=seed, max_sweeps=3)  # the claim holds at any budget
    train = train_lbfgs(p, 32, n_starts=n, seed=seed)  # the same seeds: the same runs
    assert res.info["start_objectives"] == train.runs
    assert res.info["best_start"] == int(np.argmin(train.runs))
    assert res.objective <= train.objective * (1 + 1e-12)
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-12)
    assert set(res.info["swept"]) == {"trained", "linear"}
    assert res.info["winner"] in res.info["swept"]
    cert = res.info["certificate"]
    assert len(cert.layers) == L - 1
    assert res.info["layer_certified"] == [lc.certified for lc in cert.layers]
    # pruned: at most N(N+1) neurons per layer, none dead
    assert all(w <= N * (N + 1) for w in res.widths)
    Zs = res.network.forward(p.X)
    for l in range(L - 1):
        n_l = res.widths[l]
        assert np.all(np.linalg.norm(p.activation(Zs[l]), axis=0) > 0)
        assert np.all(np.linalg.norm(res.network.weights[l + 1][:, :n_l], axis=0) > 0)


def test_relu_depth3_every_layer_certified():
    # N = 4: the dual-cone tests are exact; tol 1e-3 (first-order residuals, ~sqrt of the
    # cone solver's ~1e-8 loss accuracy)
    rng = np.random.default_rng(0)
    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=(4, 1)), 3, 0.01)
    res = cd.solve(p, n_starts=3)
    assert all(res.info["layer_certified"]), str(res.info["certificate"])
    h = np.array(res.history)
    assert np.all(np.diff(h) <= 1e-12 * np.abs(h[:-1]))


def test_train_anywhere_then_improve_here():
    rng = np.random.default_rng(4)
    p = cd.Problem(rng.normal(size=(5, 2)), rng.normal(size=(5, 1)), 3, 0.01)
    net = cd.train_adam(p, 12, n_steps=300, seed=0).network
    res = cd.solve(p, init=net, max_sweeps=3)
    assert res.info["winner"] == "init" and res.info["start_objectives"] == []
    assert res.objective <= net.loss(p)
    assert res.info["certificate"] is not None


def test_time_limit_returns_best_so_far():
    rng = np.random.default_rng(5)
    p = cd.Problem(rng.normal(size=(5, 2)), rng.normal(size=(5, 1)), 3, 0.01)
    res = cd.solve(p, time_limit=0.05)
    assert res.status == "time_limit" and not res.success
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-12)
    assert len(res.info["start_objectives"]) >= 1
    # the trained start cut short has width 32 > N(N+1) = 30: pruning it to the bound may
    # cost up to 1e-6 (relative; conic_dnn.deep.portfolio, the price of the width bound)
    assert res.objective <= min(res.info["start_objectives"]) * (1 + 1e-6)
    assert all(w <= p.N * (p.N + 1) for w in res.widths)


def test_deep_result_reports_no_bound(rng):
    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=(4, 1)), 3, 0.05)
    res = cd.solve(p, max_sweeps=5, n_starts=1)
    assert res.lower_bound == -np.inf and not res.certified
    assert "no global lower bound" in res.message
    assert len(res.history) >= 2
    with pytest.raises(ValueError, match="sweep"):
        cd.solve(p, sweep="sideways")
    with pytest.raises(ValueError, match="init"):
        cd.solve(p, init="zeros")
    with pytest.raises(ValueError, match="sweep_budget"):
        cd.solve(p, sweep_budget=0)


def test_identity_middle_layer_is_the_matrix_geometric_mean(rng):
    # identity activation: min_K tr(K A) + tr(B K^-1) over K PSD is solved by the matrix
    # geometric mean K = A^-1 # B (A = pinv(G_prev)); an independent closed form
    from scipy.linalg import sqrtm

    from conic_dnn.cone.layer_program import LayerProgram

    N, lam = 4, 0.1
    F1, F2 = rng.normal(size=(N, N)), rng.normal(size=(N, N))
    G_prev, B = F1 @ F1.T + 0.5 * np.eye(N), F2 @ F2.T + 0.5 * np.eye(N)
    prog = LayerProgram(N, cd.identity, last=False, ridge=0.0)
    prog.set_data(lam, G_prev, B=B)
    sol = prog.read(prog.solve())
    r = np.real(sqrtm(G_prev))
    ri = np.linalg.inv(r)
    K_ref = r @ np.real(sqrtm(ri @ B @ ri)) @ r
    # the value to the solver's gap tolerance; the minimiser only to ~its square root (the
    # objective is flat to first order at the optimum): 1e-9 gap -> ~3e-5 in K
    assert np.linalg.norm(sol.K - K_ref) <= 1e-4 * np.linalg.norm(K_ref)
    ref_value = lam * (np.trace(K_ref @ np.linalg.inv(G_prev)) + np.trace(B @ np.linalg.inv(K_ref)))
    assert sol.value == pytest.approx(ref_value, rel=1e-7)


def test_failed_rebuild_is_a_rejected_step(monkeypatch, rng):
    """A layer step whose min-norm rebuild fails (a pre-activation outside the numerical range
    of an ill-conditioned input; seen at depth 4, N = 12) is rejected, not raised: the solve
    goes on from the current network and the history stays monotone."""
    import conic_dnn.deep.sweeps as sweeps

    calls = {"n": 0}
    real = sweeps.rebuild

    def flaky(problem, net, layer, Z_new):
        calls["n"] += 1
        if calls["n"] % 2:
            raise ValueError("activations: expected Z_l in range(H_(l-1)) (simulated)")
        return real(problem, net, layer, Z_new)

    monkeypatch.setattr(sweeps, "rebuild", flaky)
    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=(4, 1)), 3, 0.05)
    res = cd.solve(p, max_sweeps=4, init="linear")
    assert calls["n"] >= 2 and res.info["rejected_steps"] >= 1
    h = np.array(res.history)
    assert np.all(np.diff(h) <= 1e-12 * np.abs(h[:-1]))
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-12)
