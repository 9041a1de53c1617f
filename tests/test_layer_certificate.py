"""One layer's certificate (conic_dnn.certificates.layer_certificate): the numerical range and its
rigorous truncation.

Oracle: the SVD computed directly, and a certified global optimum (depth 2, identity
activation: the nuclear-norm closed form) whose input has a singular value below RANGE_RTOL.
"""

from __future__ import annotations

import numpy as np
import pytest

import conic_dnn as cd
from conic_dnn.certificates.layer_certificate import RANGE_RTOL, _svd_range


def test_svd_range_reports_the_largest_dropped_value(rng):
    U = np.linalg.qr(rng.normal(size=(6, 3)))[0]
    V = np.linalg.qr(rng.normal(size=(4, 3)))[0]
    H = U @ np.diag([2.0, 0.5, 1e-6]) @ V.T
    s, Ur, Vt, dropped = _svd_range(H, RANGE_RTOL)
    assert s == pytest.approx([2.0, 0.5], rel=1e-12)
    assert dropped == pytest.approx(1e-6, rel=1e-6)
    assert Ur.shape == (6, 2) and Vt.shape == (2, 4)
    assert _svd_range(np.zeros((3, 2)))[3] == 0.0


def test_truncated_range_still_certifies_an_optimum(rng):
    """``X`` with a singular value 1e-7 (below RANGE_RTOL): the dropped direction is covered
    by the rigorous correction ``(L_s ||V|| sigma)^2`` (reported in ``method``), and the
    global optimum of the linear two-layer problem is still certified."""
    N = 5
    Q = np.linalg.qr(rng.normal(size=(N, 3)))[0]
    X = Q @ np.diag([1.0, 0.8, 1e-7])
    Y = rng.normal(size=(N, 2))
    p = cd.Problem(X, Y, 2, 0.02, activation="identity")
    res = cd.solve(p)
    cert = cd.certify(p, res.network, tol=1e-4)
    lc = cert.layers[0]
    assert "range truncated" in lc.method
    assert cert.certified, str(cert)
