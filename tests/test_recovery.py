"""Neurons from a solved layer program: their generators sum to the program's (K, G)."""

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.neurons.recovery import recover_neurons
from conic_dnn.two_layer.cone_program import build_program


@pytest.mark.parametrize("act", ["relu", "leaky_relu", "abs"])
@pytest.mark.parametrize("N, d, bias", [(7, 2, 0.0), (9, 1, 1.0), (4, 3, 0.0)])
def test_recovered_neurons_reproduce_the_covariances(act, N, d, bias, rng):
    """Planar data (rank [X, bias] = 2) go through the closed-form 2 x 2 factorisation of the
    wedge blocks, the (4, 3) case through the CP factorisation search; either way the
    neurons' generators sum to the solver's (K, G) (oracle: the forward computation of
    z z^T and s(z) s(z)^T) and every neuron lies in range([X, bias])."""
    p = cd.Problem(rng.normal(size=(N, d)), rng.normal(size=(N, 1)), 2, 0.02,
                   activation=act, bias=bias)
    prog = build_program(p, "pattern")
    prog.set_data(p.lam, p.G0, Y=p.Y)
    sol = prog.read(prog.solve())
    assert (sol.wedge_cores is not None) == (np.linalg.matrix_rank(p.H0) == 2)
    rec = recover_neurons(sol, p.activation)
    Z = rec.Z
    s = p.activation(Z)
    K, G = Z @ Z.T, s @ s.T
    scale = np.linalg.norm(sol.K) + np.linalg.norm(sol.G)
    assert rec.exact and rec.failed_blocks == 0 and rec.residual <= 1e-6
    assert np.linalg.norm(K - sol.K) <= 1e-6 * scale
    assert np.linalg.norm(G - sol.G) <= 1e-6 * scale
    Qh = np.linalg.svd(p.H0, full_matrices=False)[0][:, : np.linalg.matrix_rank(p.H0)]
    assert np.linalg.norm(Z - Qh @ (Qh.T @ Z)) <= 1e-9 * max(np.linalg.norm(Z), 1e-300)


@pytest.mark.parametrize("act", ["relu", "abs"])
def test_cheap_budget_is_still_exact_up_to_order_four(act, rng):
    """``cheap=True`` (the deep sweeps) tries one short factorisation first; blocks of order
    <= 4 that it misses get the full budget (CP = DNN there), so the result stays exact."""
    p = cd.Problem(rng.normal(size=(4, 3)), rng.normal(size=(4, 1)), 2, 0.02, activation=act)
    prog = build_program(p, "pattern")
    prog.set_data(p.lam, p.G0, Y=p.Y)
    sol = prog.read(prog.solve())
    rec = recover_neurons(sol, p.activation, cheap=True)
    Z = rec.Z
    scale = np.linalg.norm(sol.K) + np.linalg.norm(sol.G)
    assert rec.exact and rec.residual <= 1e-6
    assert np.linalg.norm(Z @ Z.T - sol.K) <= 1e-6 * scale
    s = p.activation(Z)
    assert np.linalg.norm(s @ s.T - sol.G) <= 1e-6 * scale
