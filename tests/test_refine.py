"""Direction refinement of column generation (conic_dnn.two_layer.refine) against the
Pilanci-Ergen program (all arrangement patterns, cvxpy) as the independent oracle."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.core.formulations import loss_parameters
from conic_dnn.two_layer.cells import cell_patterns
from conic_dnn.two_layer.column_generation import solve_column_generation
from conic_dnn.two_layer.group_lasso import master_numpy
from conic_dnn.two_layer.refine import refine_directions

from .test_cells import cell_value_socp


def _pilanci_ergen(p):
    """The convex program over all patterns (squared loss, ReLU, one output)."""
    H0, y, N, lam, beta = p.H0, p.Y[:, 0], p.N, p.lam, p.bias
    pats = cell_patterns(H0)
    pats = pats[pats.any(axis=1)]
    Dm = pats.astype(float)
    S = 2 * Dm - 1
    V, W = cp.Variable((H0.shape[1], len(pats))), cp.Variable((H0.shape[1], len(pats)))
    out = cp.sum(cp.multiply(Dm.T, H0 @ (V - W)), axis=1)
    reg = 2 * lam * (cp.sum(cp.norm(V, 2, axis=0)) + cp.sum(cp.norm(W, 2, axis=0)))
    if beta > 0:
        c = cp.Variable()
        out, reg = out + beta * c, reg + lam * cp.square(c)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(out - y) / N + reg),
                      [cp.multiply(S.T, H0 @ V) >= 0, cp.multiply(S.T, H0 @ W) >= 0])
    prob.solve(solver="CLARABEL")
    return float(prob.value)


def _problem(seed, N, d, bias):
    rng = np.random.default_rng([seed, N, d, 11])
    return cd.Problem(rng.normal(size=(N, d)), rng.normal(size=(N, 1)), 2, 0.05, bias=bias)


@pytest.mark.parametrize("seed, N, d, bias", [(0, 8, 3, 0.0), (1, 8, 2, 1.0), (2, 10, 4, 0.0),
                                              (3, 8, 3, 1.0)])
def test_certified_optimum_matches_pilanci_ergen(seed, N, d, bias):
    """Rank 3-5, one output: column generation (with the refinement) certifies, its objective
    equals the Pilanci-Ergen optimum to 1e-6 relative (Clarabel's accuracy) and its lower bound
    is not above that optimum (beyond the same accuracy)."""
    p = _problem(seed, N, d, bias)
    res = solve_column_generation(p)
    pe = _pilanci_ergen(p)
    assert res.certified
    assert res.objective == pytest.approx(pe, rel=1e-6)
    assert res.lower_bound <= pe * (1 + 1e-7)
    assert res.network.loss(p) == pytest.approx(res.objective, rel=1e-12)


def test_refined_network_is_its_model_and_not_worse():
    """From a master solution on random directions the refined neurons stay in their cells
    (the network's forward-pass loss equals the restricted problem's value the Newton method
    decreased) and the loss does not rise."""
    p = _problem(4, 10, 3, 0.0)
    rng = np.random.default_rng(0)
    U = rng.normal(size=(p.H0.shape[1], 40))
    U /= np.linalg.norm(U, axis=0)
    V, c, _, ok = master_numpy(p, U)
    assert ok
    keep = V[:, 0] != 0
    w = np.sqrt(np.abs(V[keep, 0]))
    before = loss_parameters(p, ((U[:, keep] * w).T, (np.sign(V[keep, 0]) * w)[None, :]))
    Ur, Vr, cr = refine_directions(p, U, V, c)
    assert np.allclose(np.linalg.norm(Ur, axis=0), 1.0)
    wr = np.sqrt(np.abs(Vr[:, 0]))
    W1, W2 = (Ur * wr).T, (np.sign(Vr[:, 0]) * wr)[None, :]
    after = loss_parameters(p, (W1, W2))
    assert after <= before * (1 + 1e-12)
    # balanced weights: the penalty is 2 lam sum ||w_j||, so the loss part is the model's
    Z = np.maximum(p.H0 @ Ur, 0) @ Vr
    model = np.mean((Z - p.Y) ** 2) + 2 * p.lam * np.abs(Vr).sum()
    assert after == pytest.approx(model, rel=1e-12)


def test_forgetting_columns_after_refinement():
    """A dictionary past its cap is pruned right after a refinement appended columns the
    master has not seen (its warm start is shorter than the dictionary): still certified, and
    the objective matches the Pilanci-Ergen optimum."""
    p = _problem(1, 12, 4, 0.0)
    res = solve_column_generation(p, n_init=0, n_add=1)  # cap 2 N + 20 = 44 columns
    assert res.certified and res.info["iterations"] > 1
    assert res.objective == pytest.approx(_pilanci_ergen(p), rel=1e-6)


def _worst_local_cell(p, U, V, c):
    """The largest value, over each neuron's own cell and its neighbours across each of its
    face rows, of ``max_e sign(v) Lambda^T D_P H0 e`` at ``Lambda = -grad C``, by the SOCP
    oracle (a value above ``2 lam`` is an improving local move)."""
    H0, v = p.H0, V[:, 0]
    Z = np.maximum(H0 @ U, 0) @ v + p.bias * c[0]
    Lam = -p.loss.gradient(Z[:, None], p.Y)[:, 0]
    worst = 0.0
    for j in range(U.shape[1]):
        z = H0 @ U[:, j]
        zero = np.flatnonzero(np.abs(z) <= 1e-12 * np.linalg.norm(H0, axis=1))
        for flip in [None, *zero]:
            P = z > 0
            if flip is not None:
                P[flip] = True
            cvec = np.sign(v[j]) * (H0.T @ (P * Lam))
            worst = max(worst, cell_value_socp(H0, P, cvec))
    return worst


@pytest.mark.parametrize("seed, N, d", [(0, 8, 3), (2, 10, 4)])
def test_local_moves_leave_no_improving_neighbour_cell(seed, N, d):
    """With the local pricing, the refined neurons are optimal against their own cells and
    their neighbours across every face row (checked by an SOCP per cell, to Clarabel's 1e-6):
    the moves column generation's pricing would otherwise find one round at a time. Without
    it the same start leaves an improving local move (so the check has power here), and the
    local moves never give a higher loss."""
    p = _problem(seed, N, d, 0.0)
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(p.H0.shape[1], 2 * N))
    U /= np.linalg.norm(U, axis=0)
    V, c, _, ok = master_numpy(p, U)
    assert ok
    out = {}
    for local in (False, True):
        Ur, Vr, cr = refine_directions(p, U, V, c, max_faces=60, local=local)
        wr = np.sqrt(np.abs(Vr[:, 0]))
        out[local] = (loss_parameters(p, ((Ur * wr).T, (np.sign(Vr[:, 0]) * wr)[None, :])),
                      _worst_local_cell(p, Ur, Vr, cr))
    assert out[True][1] <= 2 * p.lam * (1 + 1e-6)
    assert out[False][1] > 2 * p.lam * (1 + 1e-4)
    assert out[True][0] <= out[False][0] * (1 + 1e-12)


@pytest.mark.parametrize("seed, N, d, bias", [(0, 8, 3, 0.0), (2, 10, 4, 0.0), (3, 8, 3, 1.0)])
def test_no_newton_pass_stalls_on_a_vanishing_neuron(seed, N, d, bias, monkeypatch):
    """A neuron whose step is cut at its cone's apex is left at rounding size; it must leave
    (``refine._DEAD_TOL``), not stall the next passes with ``1 / ||z||`` ~ 1e16 (steps of
    1e-20 and less, each cut again at the apex). No Newton pass of column generation's
    refinement ends cut with a step below 1e-12 of ``||x||``; each of these instances had
    2-13 such passes before. Still certified."""
    import conic_dnn.two_layer.refine as refine

    stalls, newton = [], refine._newton

    def recording(problem, M, x, C, cuts, nb, max_steps):
        out = newton(problem, M, x, C, cuts, nb, max_steps)
        if out[1] and np.linalg.norm(out[0] - x) <= 1e-12 * np.linalg.norm(x):
            stalls.append(np.linalg.norm(out[0] - x))
        return out

    monkeypatch.setattr(refine, "_newton", recording)
    res = solve_column_generation(_problem(seed, N, d, bias))
    assert res.certified
    assert stalls == []
