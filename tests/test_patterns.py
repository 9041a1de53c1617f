import numpy as np
import pytest

from conic_dnn.cone.patterns import (
    all_patterns,
    arrangement_patterns,
    max_regions,
    pattern_signs,
    useful_patterns,
)


@pytest.mark.parametrize("N, d", [(3, 2), (4, 2), (5, 3), (6, 2), (6, 4), (7, 7), (9, 3)])
def test_arrangement_matches_brute_force_and_counting_formula(N, d, rng):
    H = rng.normal(size=(N, d))
    P, W = arrangement_patterns(H)
    # every witness realises its pattern
    for p, w in zip(P, W):
        np.testing.assert_array_equal(H @ w > 0, p)
    # no duplicates
    assert len({p.tobytes() for p in P}) == len(P)
    # generic data: the number of cells is Cover's count
    assert len(P) == max_regions(N, min(N, d))
    # brute force: every pattern seen by dense random sampling is enumerated
    seen = {row.tobytes() for row in (rng.normal(size=(20000, d)) @ H.T > 0)}
    assert seen <= {p.tobytes() for p in P}


def test_arrangement_with_bias_column_and_duplicates(rng):
    X = rng.normal(size=(5, 1))
    X = np.vstack([X, X[:1]])  # a duplicate point
    H = np.hstack([X, np.ones((6, 1))])
    P, W = arrangement_patterns(H)
    assert np.all(P[:, 0] == P[:, 5])  # duplicates always share a sign
    seen = {row.tobytes() for row in (rng.normal(size=(20000, 2)) @ H.T > 0)}
    assert seen <= {p.tobytes() for p in P}
    for p, w in zip(P, W):
        np.testing.assert_array_equal(H @ w > 0, p)


def test_zero_rows_and_zero_matrix():
    H = np.array([[1.0, 0.0], [0.0, 0.0], [-1.0, 1.0]])
    P, _ = arrangement_patterns(H)
    assert np.all(P[:, 1])  # zero row: in P by convention
    P0, _ = arrangement_patterns(np.zeros((3, 2)))
    assert P0.shape == (1, 3)


def test_useful_patterns():
    P = all_patterns(3)
    assert P.shape == (8, 3) and not P[0].any()
    assert len(useful_patterns(P, 1.0, 0.0)) == 7      # ReLU: drop the empty pattern
    assert len(useful_patterns(P, 1.0, -1.0)) == 4     # abs: one of each complementary pair
    assert len(useful_patterns(P, 1.0, 0.1)) == 8      # leaky: all
    S, T = pattern_signs(P[1:2], 1.0, 0.1)
    np.testing.assert_array_equal(S, [[1, -1, -1]])
    np.testing.assert_allclose(T, [[1, -0.1, -0.1]])


@pytest.mark.parametrize("kind", ["generic", "parallel", "antiparallel", "lifted_3d"])
def test_circle_sweep_matches_lp_enumeration(kind, rng):
    """rank 2: the exact angular sweep and the LP enumeration (an independent method) give
    the same cells, with parallel / antiparallel rows and for rank-2 data in R^3."""
    from conic_dnn.cone.patterns import _cells_circle, _cells_lp

    F = rng.normal(size=(9, 2))
    if kind == "parallel":
        F[3] = 2.5 * F[0]
    elif kind == "antiparallel":
        F[3] = -0.5 * F[0]
        F[5] = -F[1]
    Fa = F / np.linalg.norm(F, axis=1, keepdims=True)
    circle = {tuple(sg) for sg, _ in _cells_circle(Fa)}
    lp = {tuple(sg) for sg, _ in _cells_lp(Fa)}
    assert circle == lp
    if kind == "lifted_3d":  # through the public function, rank 2 in 3 coordinates
        H = F @ rng.normal(size=(2, 3))
        P, W = arrangement_patterns(H)
        assert len(P) == max_regions(9, 2)
        for p, w in zip(P, W):
            np.testing.assert_array_equal(H @ w > 0, p)
