"""Deep networks: alternating block-coordinate minimisation (issue: deep)."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

import conic_dnn as cd
from conic_dnn.training.gradient import train_lbfgs


def schatten_optimum(X, Y, lam, L):
    """Identity activation, X with orthonormal columns: the depth-L optimum is
    sum over singular values s of X^T Y of min_t (t - s)^2/N + lam*L*t^(2/L), plus the part
    of Y outside range(X). Each scalar problem is solved globally (grid, then refined)."""
    N = X.shape[0]
    s = np.linalg.svd(X.T @ Y, compute_uv=False)
    rest = np.sum((Y - X @ (X.T @ Y)) ** 2) / N
    total = rest
    for si in s:
        f = lambda t, si=si: (t - si) ** 2 / N + lam * L * max(t, 0.0) ** (2.0 / L)  # noqa: E731
        grid = np.linspace(0, si * 1.2 + 1e-12, 20001)
        vals = [f(t) for t in grid]
        i = int(np.argmin(vals))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        best = min(vals[i], f(0.0))
        if hi > lo:
            r = minimize_scalar(f, bounds=(lo, hi), method="bounded",
                                options={"xatol": 1e-14})
            best = min(best, r.fun)
        total += best
    return total


@pytest.mark.parametrize("L", [3, 4])
def test_identity_reaches_schatten_optimum(L, rng):
    N, d, k = 6, 3, 2
    X = np.linalg.qr(rng.normal(size=(N, d)))[0]
    Y = rng.normal(size=(N, k))
    p = cd.Problem(X, Y, L, 0.02, activation="identity")
    res = cd.solve(p, tol=1e-10, max_sweeps=300)
    ref = schatten_optimum(X, Y, 0.02, L)
    assert res.objective == pytest.approx(ref, rel=1e-5)
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-12)


@pytest.mark.parametrize("L, seed, bias", [(3, 0, 0.0), (3, 1, 0.0), (4, 2, 0.0), (3, 3, 0.5)])
def test_relu_deep_monotone_and_beats_training(L, seed, bias):
    rng = np.random.default_rng(seed)
    N = 4
    p = cd.Problem(rng.normal(size=(N, 2)), rng.normal(size=(N, 1)), L, 0.01, bias=bias)
    # a local method against multi-start training: both get several starts
    res = cd.solve(p, max_sweeps=30, n_starts=2)
    h = np.array(res.history)
    assert np.all(np.diff(h) <= 1e-12 * np.abs(h[:-1]))
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-12)
    assert all(w <= N * (N + 1) for w in res.widths)
    train = train_lbfgs(p, 30, n_starts=5, seed=seed)
    assert res.objective <= train.objective * (1 + 1e-3)
    # every layer certified (N <= 4: exact dual-cone tests). tol 1e-3: the certificate's
    # residuals are first order, ~sqrt of the cone solver's ~1e-8 loss accuracy
    cert = cd.certify(p, res.network, tol=1e-3)
    assert cert.certified, str(cert)


def test_deep_result_reports_no_bound(rng):
    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=(4, 1)), 3, 0.05)
    res = cd.solve(p, max_sweeps=5)
    assert res.lower_bound == -np.inf and not res.certified
    assert "no global lower bound" in res.message
    assert len(res.history) >= 2
    with pytest.raises(ValueError, match="sweep"):
        cd.solve(p, sweep="sideways")
    with pytest.raises(ValueError, match="init"):
        cd.solve(p, init="zeros")


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
    import conic_dnn.deep.alternating as alt

    calls = {"n": 0}
    real = alt._rebuild

    def flaky(problem, net, layer, Z_new):
        calls["n"] += 1
        if calls["n"] % 2:
            raise ValueError("activations: expected Z_l in range(H_(l-1)) (simulated)")
        return real(problem, net, layer, Z_new)

    monkeypatch.setattr(alt, "_rebuild", flaky)
    p = cd.Problem(rng.normal(size=(4, 2)), rng.normal(size=(4, 1)), 3, 0.05)
    res = cd.solve(p, max_sweeps=4)
    assert calls["n"] >= 2 and res.info["rejected_steps"] >= 1
    h = np.array(res.history)
    assert np.all(np.diff(h) <= 1e-12 * np.abs(h[:-1]))
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-12)
