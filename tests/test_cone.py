"""The cone as a composable cvxpy building block."""

import cvxpy as cp
import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.cone.covariance_cone import CovarianceCone, cone_constraints
from conic_dnn.cone.patterns import arrangement_patterns


def _member(K0, G0, activation, representation="pattern", H=None, shift=0.0):
    """'optimal' when the squared distance of (K0, G0) to the cone is ~0 (relative 1e-7),
    'infeasible' when it is clearly positive (equality-constrained feasibility problems on a
    face of the cone have no interior, which interior-point solvers handle poorly)."""
    N = K0.shape[0]
    K = cp.Variable((N, N), symmetric=True)
    G = cp.Variable((N, N), symmetric=True)
    cons = cone_constraints(K, G, activation, representation, H=H, shift=shift)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(K - K0) + cp.sum_squares(G - G0)), cons)
    prob.solve(solver="CLARABEL")
    # targets on low-dimensional faces (rank-one, range-restricted) lack strict
    # complementarity: Clarabel may call the (correct) distance inaccurate
    assert prob.status in ("optimal", "optimal_inaccurate")
    scale = np.sum(K0**2) + np.sum(G0**2)
    if prob.value <= 1e-7 * scale:
        return "optimal"
    assert prob.value > 1e-4 * scale  # no grey zone in these tests
    return "infeasible"


@pytest.mark.parametrize("rep", ["pattern", "lifted"])
@pytest.mark.parametrize("act", ["relu", cd.leaky_relu(0.2), "abs", "identity"])
def test_networks_are_members(rep, act, rng):
    N = 4
    a = cd.get_activation(act)
    Z = rng.normal(size=(N, 6))
    K0, G0 = Z @ Z.T, a(Z) @ a(Z).T
    assert _member(K0, G0, act, rep) == "optimal"
    # with the bias shift
    assert _member(K0, G0 + 0.25, act, rep, shift=0.25) == "optimal"


@pytest.mark.parametrize("rep", ["pattern", "lifted"])
def test_non_members_rejected(rep, rng):
    N = 3
    Z = rng.normal(size=(N, 5))
    K0 = Z @ Z.T
    # ReLU: G must be entrywise nonnegative and dominated by K on the diagonal
    assert _member(K0, K0 - 10 * np.eye(N) * 0 + np.diag([10.0, 0, 0]) @ K0 @ np.diag(
        [10.0, 0, 0]), "relu", rep) == "infeasible"
    G_neg = np.maximum(Z, 0) @ np.maximum(Z, 0).T
    G_neg[0, 1] = G_neg[1, 0] = -1.0
    assert _member(K0, G_neg, "relu", rep) == "infeasible"


def test_first_layer_range_restriction(rng):
    X = rng.normal(size=(5, 2))
    z_in = X @ rng.normal(size=2)
    z_out = rng.normal(size=5)
    for z, expected in [(z_in, "optimal"), (z_out, "infeasible")]:
        K0 = np.outer(z, z)
        s = np.maximum(z, 0)
        assert _member(K0, np.outer(s, s), "relu", "pattern", H=X) == expected
        assert _member(K0, np.outer(s, s), "relu", "lifted", H=X) == expected


def test_cone_object(rng):
    c = CovarianceCone(4, "relu", drop_useless=True)
    assert c.exact and len(c.patterns) == 15 and len(c.blocks) == 15
    assert len(CovarianceCone(4, "relu").patterns) == 16
    assert len(CovarianceCone(4, "abs").patterns) == 8
    c5 = CovarianceCone(5, "relu")
    assert not c5.exact
    ci = CovarianceCone(6, "identity")
    assert ci.exact and len(ci.blocks) == 1
    H = rng.normal(size=(6, 2))
    cr = CovarianceCone(6, "relu", H=H)
    cells = arrangement_patterns(H)[0]
    assert cr.restricted and len(cells) == 12 and len(cr.patterns) == 12
    cu = CovarianceCone(6, "relu", H=H, drop_useless=True)
    assert len(cu.patterns) == len(cells) - int(any(not p.any() for p in cells))
    assert "exact=True" in repr(c)
    with pytest.raises(ValueError, match="representation"):
        CovarianceCone(3, "relu", representation="cp")
    with pytest.raises(ValueError, match="homogeneous"):
        CovarianceCone(3, np.tanh)
    with pytest.raises(ValueError, match="N"):
        CovarianceCone(0, "relu")


def test_plugin_in_users_own_model(rng):
    """A user's own model: the ReLU-realisable K closest to a target, with G fixed."""
    N = 3
    Z = rng.normal(size=(N, 4))
    K = cp.Variable((N, N), symmetric=True)
    G = cp.Variable((N, N), symmetric=True)
    target = Z @ Z.T
    prob = cp.Problem(cp.Minimize(cp.sum_squares(K - target) + cp.trace(G)),
                      cone_constraints(K, G, "relu"))
    prob.solve(solver="CLARABEL")
    assert prob.status == "optimal"
    # the optimum puts no mass on G where it can avoid it: value <= ||0 - 0|| + tr(G) for the
    # all-negative neurons... any member with K = target has tr(G) >= 0, so value >= 0
    assert prob.value >= -1e-8


@pytest.mark.parametrize("N, act", [(7, "relu"), (9, "leaky_relu"), (8, "abs")])
def test_planar_cells_are_wedges_and_the_cone_is_exact(N, act, rng):
    """Neurons in a plane (H of rank 2): each block is parametrised by the two edges of its
    cell, and the cone is exact for any N. Checked against two independent facts: every
    generator (z z^T, s(z) s(z)^T), z in range(H), is a member (distance 0), and the blocks'
    edges really bound the cells (dense sampling of the circle lands in the wedges)."""
    H = rng.normal(size=(N, 2))
    cone = CovarianceCone(N, act, H=H, drop_useless=True)
    assert cone.exact and cone.wedges is not None
    S = np.where(cone.patterns, 1.0, -1.0)
    for s, V in zip(S, cone.wedges):
        E = cone.Q @ V                                  # the edges, as neurons z
        assert np.all(s[:, None] * E >= -1e-12)         # both edges lie in the closed cell
        mid = E.sum(axis=1)                             # the wedge's interior ...
        assert np.all(np.sign(mid[np.abs(mid) > 1e-9]) == s[np.abs(mid) > 1e-9])
    # every direction of the plane lies in some wedge, with nonnegative edge coefficients
    theta = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
    Z = H @ np.stack([np.cos(theta), np.sin(theta)])
    v = np.linalg.lstsq(cone.Q, Z, rcond=None)[0]       # (2, 2000) coordinates in range(H)
    Zs = np.sign(np.where(np.abs(Z) < 1e-12, 0, Z))
    a = cd.get_activation(act)
    for j in range(0, 2000, 37):
        if np.all(a(Z[:, j]) == 0):
            continue  # a dead ReLU neuron: its pattern is dropped as useless
        # (for |x| one of each complementary pair is kept: z and -z give the same generator)
        flips = (1.0, -1.0) if act == "abs" else (1.0,)
        i, f = next((i, f) for f in flips for i, s in enumerate(S)
                    if np.all((Zs[:, j] == 0) | (f * Zs[:, j] == s)))
        coef = np.linalg.solve(cone.wedges[i], f * v[:, j])
        assert np.all(coef >= -1e-9)
    # generators are members: min ||K - zz^T|| + ||G - s(z)s(z)^T|| over the cone is 0
    z = H @ rng.normal(size=2)
    K0, G0 = np.outer(z, z), np.outer(a(z), a(z))
    prob = cp.Problem(cp.Minimize(cp.sum_squares(cone.K - K0) + cp.sum_squares(cone.G - G0)),
                      cone.constraints)
    prob.solve(solver="CLARABEL")
    assert prob.value <= 1e-7 * (np.sum(K0**2) + np.sum(G0**2))


def test_restricted_lifted_basis_matches_an_orthonormal_one(rng):
    """The restricted lifted relaxation uses the sparse basis [[I, Q], [I, 0]] of
    {(z+, z-) : z+ - z- in range(Q)}; the same relaxation written independently with an
    orthonormal basis of that subspace (SVD) has the same projection of a random target."""
    N = 6
    H = rng.normal(size=(N, 2))
    Z = H @ rng.normal(size=(2, 3))
    K0 = Z @ Z.T + 0.3 * rng.normal(size=(N, N))
    K0 = (K0 + K0.T) / 2
    G0 = np.maximum(Z, 0) @ np.maximum(Z, 0).T + 0.2

    cone = CovarianceCone(N, "relu", "lifted", H=H)
    ours = cp.Problem(cp.Minimize(cp.sum_squares(cone.K - K0) + cp.sum_squares(cone.G - G0)),
                      cone.constraints)
    ours.solve(solver="CLARABEL")

    Q = np.linalg.svd(H, full_matrices=False)[0]
    V = np.linalg.svd(np.eye(N) - Q @ Q.T)[0][:, : N - 2]      # null basis of Q^T
    R = np.linalg.svd(np.vstack([V, -V]))[0][:, N - 2:]        # orthonormal, (2N, N + 2)
    Mr = cp.Variable((N + 2, N + 2), PSD=True)
    M = R @ Mr @ R.T
    Mpp, Mpm, Mmp, Mmm = M[:N, :N], M[:N, N:], M[N:, :N], M[N:, N:]
    K, G = Mpp - Mpm - Mmp + Mmm, Mpp
    ref = cp.Problem(cp.Minimize(cp.sum_squares(K - K0) + cp.sum_squares(G - G0)),
                     [cp.upper_tri(M) >= 0, cp.diag(Mpm) == 0])
    ref.solve(solver="CLARABEL")
    assert ours.value == pytest.approx(ref.value, rel=1e-6)


# --- the size guard of cone_constraints (#19: N = 30 enumerated 2^30 patterns) ---------------
def test_cone_constraints_size_guard():
    from conic_dnn.cone.covariance_cone import MAX_CONE_BLOCK_VARIABLES, pattern_cone_size

    N = 30
    K, G = cp.Variable((N, N), symmetric=True), cp.Variable((N, N), symmetric=True)
    with pytest.raises(cd.SizeLimitError, match=r"N = 30 has 2\^30 = 1,073,741,824 sign "
                                                r"patterns.*representation='lifted'.*force"):
        cd.cone_constraints(K, G, "relu")
    # the ways out it names are cheap: lifted, and neurons in a plane (H of rank 2)
    assert cd.cone_constraints(K, G, "relu", representation="lifted")
    H = np.random.default_rng(0).normal(size=(N, 2))
    assert cd.cone_constraints(K, G, "relu", H=H)
    assert pattern_cone_size(N, rank=2) == 2 * N * 3  # 2N wedges of 3 variables
    # the estimate is the pattern count times the block size, before enumeration
    assert pattern_cone_size(12) == 4096 * 78 <= MAX_CONE_BLOCK_VARIABLES
    assert pattern_cone_size(14) > MAX_CONE_BLOCK_VARIABLES
    # linear activations are one PSD block at any N: no guard
    assert cd.cone_constraints(K, G, "identity")
