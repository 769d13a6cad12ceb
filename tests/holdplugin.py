"""A pytest plugin the interruption tests load into a real run (``-p holdplugin``).

It makes "a signal during a check" deterministic on a loaded machine: the run holds
inside one check until the test has sent its signal (or releases it), and it can make
one probe raise KeyboardInterrupt, as a probe interrupted by Ctrl-C does.

- ``PGPROOF_TEST_HOLD_AT``: a substring of the node id to hold at, as it starts;
  ``PGPROOF_TEST_HELD``: a file touched once held; ``PGPROOF_TEST_RELEASE``: a file
  whose appearance releases the hold (it gives up after 120 s either way).
- ``PGPROOF_TEST_RAISE_IN``: ``module:function`` replaced by one raising KeyboardInterrupt.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    spec = os.environ.get("PGPROOF_TEST_RAISE_IN")
    if spec:
        module, name = spec.split(":")

        def interrupted(*args: object, **kw: object) -> None:
            raise KeyboardInterrupt

        setattr(importlib.import_module(module), name, interrupted)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """Hold as the check starts (before its fixtures: a not-configured layer ends it there)."""
    at = os.environ.get("PGPROOF_TEST_HOLD_AT")
    if at and at in item.nodeid:
        Path(os.environ["PGPROOF_TEST_HELD"]).touch()
        release = Path(os.environ.get("PGPROOF_TEST_RELEASE", "/nonexistent"))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not release.exists():
            time.sleep(0.05)  # the signal lands here: inside a check
    return (yield)
