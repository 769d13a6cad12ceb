"""Shared fixtures: one real lab per test session, brought up once and torn down at the end.

Lab modules run in stages (``stage`` marker: lab, suites, matrix, game days, teardown)
because later stages change the cluster (switchovers, kills); unit tests run first. Under
pytest-xdist each worker brings up its own lab, so independent modules run in parallel.
"""

from __future__ import annotations

import fcntl
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pgproof.lab import lifecycle
from pgproof.lab.state import LabState
from pgproof.target import Target, load_target

# A runner started as a background job (`make test &`, some CI shells) inherits SIGINT
# ignored, and so would every process a test starts: Python would then never raise
# KeyboardInterrupt and every "Ctrl-C answers within 2 s" test would wait in vain. The
# tests stand in for a person at a terminal, so they get Ctrl-C back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The lab tier's stages, in the order one lab sees them. A lab module names its stage with
# `pytestmark = pytest.mark.stage("gameday")`; a lab test without one is in the first stage.
# Later stages change the cluster (mutations, switchovers, kills, `lab down`).
STAGE_ORDER = ("lab", "suites", "matrix", "gameday", "teardown")
LAB_FIXTURES = {"lab", "lab_dir", "lab_target"}


def stage_of(item: pytest.Item) -> str:
    """The item's stage: its ``stage`` marker, else the first (lab tests) or "" (fast tier)."""
    marker = item.get_closest_marker("stage")
    if marker is not None:
        return str(marker.args[0])
    return STAGE_ORDER[0] if item.get_closest_marker("lab") else ""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Lab tests carry the ``lab`` marker (``make test-fast`` is ``-m "not lab"``) and run by stage.

    A test is a lab test when it names a stage, uses the session lab's fixtures, or its module
    says ``pytest.mark.lab`` (a module that brings up a lab of its own). Sorting is stable, so
    within a stage (and among the tests without a lab) the collection order holds; under
    xdist every worker has its own lab and receives its modules in this order (``--dist
    loadfile --no-loadscope-reorder``)."""
    for item in items:
        marker = item.get_closest_marker("stage")
        if marker is not None and (len(marker.args) != 1 or marker.args[0] not in STAGE_ORDER):
            raise pytest.UsageError(f"{item.nodeid}: stage must be one of {', '.join(STAGE_ORDER)}")
        if marker is not None or LAB_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.lab)
        stage = stage_of(item)
        if stage:
            item.user_properties.append(("stage", stage))
    items.sort(key=_order)


def _order(item: pytest.Item) -> int:
    """Lab stages in order, then the rest: in the lab tier the slow tests without a lab come
    last, so workers start their labs at once and the slow tests fill whichever worker is free."""
    stage = stage_of(item)
    return STAGE_ORDER.index(stage) if stage else len(STAGE_ORDER)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A failure names its stage: the lab tier's failures, grouped by the stage they ran in.
    Then where the time went: seconds per module and xdist worker (what balancing CI reads)."""
    _time_per_module(terminalreporter)
    by_stage: dict[str, list[str]] = {}
    for report in terminalreporter.stats.get("failed", []) + terminalreporter.stats.get("error", []):
        stage = dict(getattr(report, "user_properties", ())).get("stage")
        if stage:
            by_stage.setdefault(str(stage), []).append(report.nodeid)
    if by_stage:
        terminalreporter.section("failures by lab stage")
        for stage in STAGE_ORDER:
            for nodeid in dict.fromkeys(by_stage.get(stage, ())):
                terminalreporter.line(f"{stage}: {nodeid}")


def _time_per_module(tr: pytest.TerminalReporter) -> None:
    spent: dict[tuple[str, str], float] = {}
    for reports in tr.stats.values():
        for r in reports:
            if isinstance(r, pytest.TestReport):
                key = (r.nodeid.split("::")[0], str(getattr(r, "node", None) and r.node.gateway.id
                                                    or getattr(r, "worker_id", "-")))
                spent[key] = spent.get(key, 0.0) + r.duration
    if sum(spent.values()) < 60:  # the fast tier: nothing to balance
        return
    tr.section("seconds per module (worker)")
    for (module, worker), s in sorted(spent.items(), key=lambda kv: -kv[1])[:30]:
        tr.line(f"{s:7.1f}  {module} ({worker})")


@pytest.fixture(scope="session")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh lab for this session; PGPROOF_TEST_LAB_DIR reuses a running one (kept afterwards)."""
    reuse = os.environ.get("PGPROOF_TEST_LAB_DIR")
    if reuse and os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.fail("PGPROOF_TEST_LAB_DIR shares one lab: run without -n (xdist workers would "
                    "change it under each other)")
    if reuse:
        yield Path(reuse).resolve()
        return
    d = tmp_path_factory.mktemp("lab")
    yield d
    lifecycle.down(d)


@contextmanager
def _one_lab_up_at_a_time(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """xdist workers bring up their labs one after another, not all at the same second: the
    bring-ups then do not fight over two cores (each waits up to 90 s per component)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    lock = tmp_path_factory.getbasetemp().parent / "lab-up.lock"  # the run's root, shared
    with lock.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def lab(lab_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> LabState:
    """A running lab (etcd, Patroni x2, HAProxy, PgBouncer, Toxiproxy, moto, health app)."""
    state = LabState.load(lab_dir)
    if state is None or not state.target_file.exists():
        with _one_lab_up_at_a_time(tmp_path_factory):
            state = lifecycle.up(lab_dir, timeout=90, with_azure=True)
    from pgproof.lab import backup

    backup.wait_ready(state)  # BAK-2 wants a full backup: the first one runs after `lab up`
    return state


@pytest.fixture(scope="session")
def lab_target(lab: LabState) -> Target:
    return load_target("lab", config=Path("/nonexistent"), lab_file=lab.target_file)


@pytest.fixture(autouse=True)
def _no_aws_endpoint_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process moto must not send calls to a running moto server."""
    if "AWS_ENDPOINT_URL" in os.environ:
        monkeypatch.delenv("AWS_ENDPOINT_URL")
