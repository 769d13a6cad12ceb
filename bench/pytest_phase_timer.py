"""A pytest plugin for the benches: where a `pgproof check` run's wall time goes, unprofiled.

Loaded with `-p pytest_phase_timer` (bench/ on PYTHONPATH); writes JSON to $PGPROOF_BENCH_PHASES:
collection, the whole test loop, the time inside check bodies (pytest_pyfunc_call) and inside
fixture set-up (the probes' gathering), the probes gathered together before the first check
(early_s: pytest_fixtures.gather_early), and report writing at session end. The loop minus
bodies, fixtures and early gathering is pytest's per-item protocol (hooks, reports, terminal,
junit/html rows).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator
from pathlib import Path

import pytest

_T: dict[str, float] = {"collect_s": 0.0, "loop_s": 0.0, "bodies_s": 0.0, "fixtures_s": 0.0,
                        "sessionfinish_s": 0.0, "early_s": 0.0, "items": 0.0}
_LOOP: dict[str, float] = {}
_START = time.perf_counter()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    t = time.perf_counter()
    try:
        return (yield)
    finally:
        _T["collect_s"] += time.perf_counter() - t
        _T["items"] = float(len(session.items))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    t = _LOOP["start"] = time.perf_counter()
    try:
        return (yield)
    finally:
        _T["loop_s"] += time.perf_counter() - t


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logstart() -> None:
    if "first" not in _LOOP and "start" in _LOOP:  # the loop's start to the first check
        _LOOP["first"] = time.perf_counter()
        _T["early_s"] = _LOOP["first"] - _LOOP["start"]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    t = time.perf_counter()
    try:
        return (yield)
    finally:
        _T["bodies_s"] += time.perf_counter() - t


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_fixture_setup(fixturedef: object, request: object) -> Generator[None, object, object]:
    t = time.perf_counter()
    try:
        return (yield)
    finally:
        _T["fixtures_s"] += time.perf_counter() - t


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, object, object]:
    t = time.perf_counter()
    try:
        return (yield)
    finally:
        _T["sessionfinish_s"] += time.perf_counter() - t


def pytest_unconfigure(config: pytest.Config) -> None:
    out = os.environ.get("PGPROOF_BENCH_PHASES")
    if out:
        _T["protocol_s"] = _T["loop_s"] - _T["bodies_s"] - _T["fixtures_s"] - _T["early_s"]
        _T["plugin_alive_s"] = time.perf_counter() - _START
        Path(out).write_text(json.dumps({k: round(v, 3) for k, v in _T.items()}))
