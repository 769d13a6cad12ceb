"""Shared fixtures: one real lab per test session, brought up once and torn down at the end.

Integration modules run in stages (lab, matrix, game days) because later
stages change the cluster (switchovers, kills); unit tests run first.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
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

STAGES = {"test_lab": 1, "test_suites_lab": 2, "test_azure_lab": 2, "test_replica_lag_lab": 2,
          "test_probe_limits": 2, "test_twin_secrets": 2, "test_interrupts_lab": 2,
          "test_matrix": 3, "test_aurora_lab": 3,
          "test_backup_lab": 4, "test_gameday_lab": 4, "test_crash_safe": 4, "test_rds_gameday": 4,
          "test_azure_gameday": 4, "test_gameday_workers": 4, "test_gameday_signals": 4,
          "test_aurora_gameday": 4, "test_restore_lab": 4, "test_wheel": 4,
          "test_lab_down": 5}


def _stage(item: pytest.Item) -> int:
    return STAGES.get(item.path.stem, 0)


LAB_FIXTURES = {"lab", "lab_dir", "lab_target"}
OWN_LAB = {"test_vpc_lab", "test_ssh_supervised"}  # modules that bring up a lab of their own


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Lab tests carry the ``lab`` marker (``make test-fast`` is ``-m "not lab"``) and run by stage."""
    for item in items:
        if (_stage(item) or item.path.stem in OWN_LAB
                or LAB_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.lab)
    items.sort(key=_stage)


@pytest.fixture(scope="session")
def lab_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh lab for this session; PGPROOF_TEST_LAB_DIR reuses a running one (kept afterwards)."""
    reuse = os.environ.get("PGPROOF_TEST_LAB_DIR")
    if reuse:
        yield Path(reuse).resolve()
        return
    d = tmp_path_factory.mktemp("lab")
    yield d
    lifecycle.down(d)


@pytest.fixture(scope="session")
def lab(lab_dir: Path) -> LabState:
    """A running lab (etcd, Patroni x2, HAProxy, PgBouncer, Toxiproxy, moto, health app)."""
    state = LabState.load(lab_dir)
    if state is None or not state.target_file.exists():
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
