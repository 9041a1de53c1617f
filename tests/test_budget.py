"""core.budget: the Deadline every long loop checks."""

from __future__ import annotations

import math
import time

import pytest

from conic_dnn.core.budget import Deadline, check_time_limit


def test_unlimited_deadline_never_expires():
    d = Deadline(None)
    assert not d.expired() and d.remaining() == math.inf


def test_deadline_expires_after_its_limit():
    d = Deadline(0.01)
    assert d.remaining() <= 0.01
    time.sleep(0.02)
    assert d.expired() and d.remaining() == 0.0


def test_fraction_is_a_share_of_what_remains():
    d = Deadline(100.0)
    sub = d.fraction(0.25)
    assert 24.0 < sub.time_limit <= 25.0
    assert Deadline(None).fraction(0.5).time_limit is None


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-1.0, ValueError),
                                      (math.inf, ValueError), (math.nan, ValueError),
                                      ("5", TypeError), (True, TypeError)])
def test_bad_time_limits_name_the_argument(bad, exc):
    with pytest.raises(exc, match="time_limit"):
        check_time_limit(bad)
