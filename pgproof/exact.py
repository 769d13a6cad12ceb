"""Thresholds as the user wrote them: exact rationals, so a value at the spec is at the spec.

``8 GiB * (1 - 85/100)`` is 1288490188.8000002 in floating point, which made an
alarm set at exactly 85 % used look late. A threshold from a TOML file is read
back as the decimal the user typed (``Fraction("0.1")``, not the binary
approximation of 0.1), and every comparison against it is exact.
"""

from __future__ import annotations

import math
from datetime import timedelta
from fractions import Fraction


def exact(x: float | int | Fraction) -> Fraction:
    """A configured number as the decimal the user wrote (``str`` of a float is its shortest repr)."""
    if isinstance(x, Fraction | int):
        return Fraction(x)
    return Fraction(str(x))


def share(total: int | Fraction, pct: float) -> Fraction:
    """``pct`` percent of ``total``, exactly."""
    return Fraction(total) * exact(pct) / 100


def duration(seconds: float = 0, minutes: float = 0, days: float = 0) -> timedelta:
    """A configured duration as a timedelta (whole microseconds, rounded up: never shorter)."""
    total = exact(seconds) + exact(minutes) * 60 + exact(days) * 86400
    return timedelta(microseconds=math.ceil(total * 1_000_000))


def whole(limit: Fraction) -> int:
    """A limit on a whole-valued metric (bytes, connections) to the nearest unit, half up.

    A threshold a user computed in floating point (``8 GiB * 0.15``) lands within a
    fraction of a unit of the exact one; to the nearest unit both are the same."""
    return math.floor(limit + Fraction(1, 2))


def integer_fires_above(op: str, threshold: float, limit: Fraction) -> bool:
    """Whether an alarm on a whole-valued metric fires for every value above ``whole(limit)``.

    CloudWatch fires ``GreaterThanThreshold`` for ``x > t``; over integers that is
    ``x >= floor(t) + 1``; ``GreaterThanOrEqualToThreshold`` is ``x >= ceil(t)``."""
    t = exact(threshold)
    first = math.floor(t) + 1 if op == "GreaterThanThreshold" else math.ceil(t)
    return first <= whole(limit) + 1


def integer_fires_below(op: str, threshold: float, limit: Fraction) -> bool:
    """Whether an alarm on a whole-valued metric fires for every value below ``whole(limit)``."""
    t = exact(threshold)
    last = math.ceil(t) - 1 if op == "LessThanThreshold" else math.floor(t)
    return last >= whole(limit) - 1
