"""The probes of a catalogue run start together before the first check (``gather_early``).

What stays true: each check sees the probe's facts or the probe's own exception (so a probe
that cannot answer still makes its controls error), a probe that asks another's facts gets
them, the wait ends at the run's time limit whatever a probe does, and no probe thread runs
once the checks start (pytest's PYTEST_CURRENT_TEST churn raced botocore's os.environ reads).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pgproof import pytest_fixtures as pf
from pgproof.verdict import Unreachable


class _Request:
    """What ``_facts`` reads of a fixture request: the config's stash, and a fixture getter."""

    def __init__(self, stash: pytest.Stash) -> None:
        self.config = type("Config", (), {"stash": stash})()
        self.asked: list[str] = []

    def getfixturevalue(self, name: str) -> Any:
        self.asked.append(name)
        return f"asked {name}"


def _probes(monkeypatch: pytest.MonkeyPatch, **probes: Any) -> None:
    monkeypatch.setattr(pf, "PROBES", probes)
    monkeypatch.setattr(pf, "NEEDS", {"host_facts": ("pg_facts",)})
    monkeypatch.setattr(pf, "LAZY", {})


def _sleeping(value: Any, s: float) -> Any:
    def probe(target: Any, ask: Any) -> Any:
        time.sleep(s)
        if isinstance(value, BaseException):
            raise value
        return value
    return probe


def test_probes_run_together_and_each_check_gets_its_facts_or_its_error(monkeypatch: pytest.MonkeyPatch) -> None:
    down = Unreachable("port 1 refused the connection")
    _probes(monkeypatch, pg_facts=_sleeping("pg", 0.6), tls_facts=_sleeping("tls", 0.6),
            aws_inventory=_sleeping(down, 0.6))
    stash = pytest.Stash()
    t0 = time.monotonic()
    waited = pf.gather_early(type("C", (), {"stash": stash})(), object(),  # type: ignore[arg-type]
                             ["pg_facts", "tls_facts", "aws_inventory"], limit_s=30)
    wall = time.monotonic() - t0
    assert wall < 1.5, f"three 0.6 s probes took {wall:.2f} s: they ran one after another"
    assert waited <= wall
    req = _Request(stash)
    assert pf._facts(req, object(), "pg_facts", pf.PROBES["pg_facts"]) == "pg"  # type: ignore[arg-type]
    assert pf._facts(req, object(), "tls_facts", pf.PROBES["tls_facts"]) == "tls"  # type: ignore[arg-type]
    with pytest.raises(Unreachable, match="port 1 refused"):  # the check errors, as before
        pf._facts(req, object(), "aws_inventory", pf.PROBES["aws_inventory"])  # type: ignore[arg-type]
    assert not [t for t in threading.enumerate() if t.name.startswith("pgproof-probe")], \
        "a probe thread outlived the early gathering: it would run beside the checks"


def test_a_probe_asking_another_gets_the_same_facts_and_unasked_probes_run_in_the_check(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def pg(target: Any, ask: Any) -> str:
        calls.append("pg")
        time.sleep(0.2)
        return "pg"

    def host(target: Any, ask: Any) -> str:
        return f"host saw {ask('pg_facts')}"

    _probes(monkeypatch, pg_facts=pg, host_facts=host, priv_facts=_sleeping("priv", 0))
    stash = pytest.Stash()
    pf.gather_early(type("C", (), {"stash": stash})(), object(), ["host_facts", "tls_facts"],  # type: ignore[arg-type]
                    limit_s=30)
    req = _Request(stash)
    assert pf._facts(req, object(), "host_facts", host) == "host saw pg"  # type: ignore[arg-type]
    assert pf._facts(req, object(), "pg_facts", pg) == "pg"  # type: ignore[arg-type]
    assert calls == ["pg"], "pg_facts was gathered twice"
    # Not gathered early (not asked for by the run): the check that asks runs it, as before.
    assert pf._facts(req, object(), "priv_facts",  # type: ignore[arg-type]
                     lambda t, ask: ask("something")) == "asked something"


def test_the_wait_ends_at_the_run_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """A probe slower than the time left does not hold the run: the checks then start and the
    run limit makes each of them an error (pytest_limits), never a pass."""
    release = threading.Event()

    def stuck(target: Any, ask: Any) -> str:
        release.wait(10)
        return "late"

    _probes(monkeypatch, pg_facts=stuck, tls_facts=_sleeping("tls", 0))
    stash = pytest.Stash()
    t0 = time.monotonic()
    pf.gather_early(type("C", (), {"stash": stash})(), object(), ["pg_facts", "tls_facts"],  # type: ignore[arg-type]
                    limit_s=0.3)
    assert time.monotonic() - t0 < 2, "the early gathering waited past the run's time limit"
    assert not stash[pf._EARLY]["pg_facts"].done()
    release.set()
    assert stash[pf._EARLY]["pg_facts"].result(timeout=5) == "late"


def test_one_probe_is_not_gathered_early(monkeypatch: pytest.MonkeyPatch) -> None:
    _probes(monkeypatch, pg_facts=_sleeping("pg", 0))
    stash = pytest.Stash()
    assert pf.gather_early(type("C", (), {"stash": stash})(), object(), ["pg_facts"], limit_s=30) == 0  # type: ignore[arg-type]
    assert pf._EARLY not in stash


def test_every_layer_fixture_has_its_probe() -> None:
    from pgproof.layers import FIXTURES

    assert set(pf.PROBES) == set(FIXTURES), "a layer fixture without an early probe (or the reverse)"
    assert set(pf.LAZY) <= set(pf.PROBES) and set(pf.NEEDS) <= set(pf.PROBES)


def test_the_host_process_scan_starts_after_every_other_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """HOST-2/HOST-3 judge the database account's processes: pgproof's own probe commands
    (the backup probe's ``pgbackrest info``, run as that account) must not be among them."""
    times: dict[str, float] = {}

    def timed(name: str, s: float) -> Any:
        def probe(target: Any, ask: Any) -> str:
            times[name + "_start"] = time.monotonic()
            time.sleep(s)
            times[name + "_end"] = time.monotonic()
            return name
        return probe

    _probes(monkeypatch, pg_facts=timed("pg", 0.1), backup_facts=timed("backup", 0.5),
            host_cis_facts=timed("hostcis", 0))
    stash = pytest.Stash()
    pf.gather_early(type("C", (), {"stash": stash})(), object(), ["pg_facts", "backup_facts", "host_cis_facts"],  # type: ignore[arg-type]
                    limit_s=30)
    assert times["hostcis_start"] >= times["backup_end"], "the host scan ran beside the backup probe"
    assert times["backup_start"] < times["pg_end"], "the other probes did not start together"
    assert stash[pf._EARLY]["host_cis_facts"].result() == "hostcis"
