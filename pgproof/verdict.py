"""Verdict vocabulary shared by checks, the pytest plugin and reports.

Checks are pure judges: ``judge_*(facts, thresholds) -> list[str]`` returns
the problems found (empty = compliant), each a sentence saying what was
found, where, and what the spec wants. A fact the target cannot show raises
``CannotVerify``; a probe that could not reach the target raises ``Unreachable``;
a layer the target does not configure (no ``[aws]``, no hosts) raises ``NotChecked``.
"""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"
    CANNOT_VERIFY = "cannot-verify"
    NOT_CHECKED = "not-checked"  # the check's layer is not configured: says nothing either way
    # The provider manages it on this target's platform and says the customer cannot change it
    # (the reason quotes where): never pass, never a failure for the exit code.
    INHERITED = "inherited"


class CannotVerify(Exception):
    """The target does not expose this fact (emulator gap, API missing): never pass, never fail."""


class Unreachable(Exception):
    """The probe could not observe the target (network, credentials, permission)."""


class NotApplicable(Exception):
    """The control does not apply to this target (e.g. no RDS Proxy configured)."""


class NotOnPlatform(NotApplicable):
    """The catalogue states the control does not exist on the target's platform: nothing was
    probed, so reports list the layer with this reason, not as checked."""


class Inherited(Exception):
    """The control is the provider's on this target's platform (the message says whose words)."""


class NotChecked(Exception):
    """The target configures no vantage point for this layer: the check did not look at all.

    Unlike ``NotApplicable`` (the control does not apply), this says nothing about the
    control; reports list the layer as not checked, with this reason.
    """


class TimedOut(Unreachable):
    """A probe gave up at its time limit: its controls are errors ("could not check"), never fail.

    The sentence names what did not answer and the limit, e.g. ``SQL statement on
    127.0.0.1:5432 did not answer within 30 s (timeouts.statement_s)``.
    """

    def __init__(self, what: str, seconds: float, field: str) -> None:
        self.what, self.seconds, self.field = what, seconds, field
        super().__init__(f"{what} did not answer within {seconds:g} s (timeouts.{field})")
