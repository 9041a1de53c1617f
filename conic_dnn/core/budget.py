"""Time budgets: one ``Deadline`` object carried from ``solve(..., time_limit=)`` down to every
loop that can run long (rounds of column generation, sweeps, restarts, fallback solvers).

A method that sees ``deadline.expired()`` stops at the next safe point and returns the best
network it has, with its bound, and ``status="time_limit"`` (``success=False``): a time limit
never raises and never returns a network worse than one already found.
"""

from __future__ import annotations

import math
import time

__all__ = ["Deadline", "check_time_limit", "TIME_LIMIT_STATUS"]

TIME_LIMIT_STATUS = "time_limit"


def check_time_limit(time_limit, name: str = "time_limit") -> float | None:
    """``None`` or a positive finite number of seconds; ``ValueError``/``TypeError`` else."""
    if time_limit is None:
        return None
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)):
        raise TypeError(f"{name}: expected a number of seconds or None, got "
                        f"{type(time_limit).__name__}")
    if not (math.isfinite(time_limit) and time_limit > 0):
        raise ValueError(f"{name}: expected a finite number of seconds > 0, got {time_limit!r}")
    return float(time_limit)


class Deadline:
    """A wall-clock budget started at construction (``time.monotonic``).

    Parameters
    ----------
    time_limit : float or None
        Seconds; ``None`` is an unlimited budget (``expired()`` is always False).
    """

    __slots__ = ("time_limit", "start")

    def __init__(self, time_limit: float | None = None):
        self.time_limit = check_time_limit(time_limit)
        self.start = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def remaining(self) -> float:
        """Seconds left (``inf`` without a limit, never below 0)."""
        if self.time_limit is None:
            return math.inf
        return max(0.0, self.time_limit - self.elapsed())

    def expired(self) -> bool:
        return self.time_limit is not None and self.elapsed() >= self.time_limit

    def fraction(self, share: float) -> Deadline:
        """A sub-budget of ``share`` of what remains (for a method that may fall back)."""
        sub = Deadline(None if self.time_limit is None else self.remaining() * share)
        return sub

    def __repr__(self) -> str:
        lim = "none" if self.time_limit is None else f"{self.time_limit:g} s"
        return f"Deadline(limit={lim}, elapsed={self.elapsed():.3g} s)"
