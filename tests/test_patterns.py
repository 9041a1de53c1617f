import numpy as np
import pytest

from conic_dnn.patterns import (
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
