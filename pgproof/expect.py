"""The one assertion suites use: fail with the judge's sentences, not our internals."""

from __future__ import annotations

from collections.abc import Callable

import pytest


def expect(problems: list[str], evidence: Callable[[str], None] | None = None, seen: str = "") -> None:
    """Fail with every problem found; on success record what was seen as evidence."""
    __tracebackhide__ = True
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    if evidence is not None and seen:
        evidence(seen)
