"""Framework mappings reviewed against the catalogue, and the grouped report they produce.

The mapping table must hold up to an auditor: every compliance control cites HIPAA or
says why not, every cited ID is well formed and listed in its framework (with a source),
and the grouped report names the requirements nothing covers instead of omitting them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from pgproof.catalogue.frameworks import FRAMEWORK_DEFS
from pgproof.catalogue.registry import CATALOGUE, FRAMEWORKS, of_kind
from pgproof.report import framework, history

# The citations the HIPAA part of the brief names: each must be listed, so the report can say
# whether pgproof covers it (even when nothing does).
NAMED_HIPAA = ["164.312(a)(1)", "164.312(a)(2)(i)", "164.312(a)(2)(iv)", "164.312(b)",
               "164.312(c)(1)", "164.312(d)", "164.312(e)(1)", "164.312(e)(2)(ii)",
               "164.308(a)(7)(i)", "164.308(a)(7)(ii)(A)", "164.308(a)(7)(ii)(B)",
               "164.308(a)(7)(ii)(D)", "164.308(a)(6)(i)", "164.308(a)(1)(ii)(D)"]
# pgdsat's own checks, marked "(*)" in its Labels.pm: not CIS, so never cited as CIS. (pgdsat's
# 6.11, an anonymizer, is its own too, but 6.11 is also CIS 17's "pgcrypto installed": listed.)
PGDSAT_ONLY = {"1.4.3", "1.4.4", "1.4.5", "1.9", "2.5", "2.6", "2.7", "2.8", "3.1.27", "4.10",
               "5.7", "5.8", "5.9", "5.10", "5.11", "5.12"}


def test_every_compliance_control_maps_to_hipaa_or_says_why() -> None:
    for cid in of_kind("compliance"):
        c = CATALOGUE[cid]
        cited = bool(c.frameworks.get("hipaa"))
        assert cited != bool(c.unmapped_reason), \
            f"{cid}: needs exactly one of a HIPAA citation or an unmapped_reason"
        if c.unmapped_reason:
            assert len(c.unmapped_reason.split()) >= 6, f"{cid}: a reason is a sentence"


def test_every_cited_id_is_well_formed_and_listed() -> None:
    assert set(FRAMEWORK_DEFS) == set(FRAMEWORKS)
    for c in CATALOGUE.values():
        for key, ids in c.frameworks.items():
            fw = FRAMEWORK_DEFS[key]
            assert len(set(ids)) == len(ids), f"{c.id}: duplicate {key} citation"
            for rid in ids:
                assert fw.pattern.match(rid), f"{c.id}: {key} ID {rid!r} is not well formed"
                assert rid in fw.requirements, f"{c.id}: {key} {rid} is not in frameworks.py"
    assert not PGDSAT_ONLY & {r for c in CATALOGUE.values() for r in c.frameworks.get("cis", ())}


def test_framework_lists_are_well_formed_and_sourced() -> None:
    for fw in FRAMEWORK_DEFS.values():
        assert fw.name and fw.version and fw.source, fw.key
        bad = [r for r in fw.requirements if not fw.pattern.match(r)]
        assert not bad, f"{fw.key}: malformed requirement IDs {bad}"
        assert all(t.strip() for t in fw.requirements.values())
    assert set(NAMED_HIPAA) <= set(FRAMEWORK_DEFS["hipaa"].requirements)
    assert not PGDSAT_ONLY & set(FRAMEWORK_DEFS["cis"].requirements)


@pytest.mark.parametrize(("key", "bad"), [
    ("hipaa", ["164.312(E)(1)", "164.312e1", "164.312(e)(1)(ii)(A)(7)", "45 CFR 164.312(b)"]),
    ("cis", ["6", "6.8.", "CIS 6.8", "9.1"]),
    ("fsbp", ["RDS-3", "rds.3", "RDS.", "IAM.1"]),
])
def test_the_id_patterns_can_fail(key: str, bad: list[str]) -> None:
    assert not [b for b in bad if FRAMEWORK_DEFS[key].pattern.match(b)]


def _results(verdicts: dict[str, str]) -> dict[str, object]:
    return {"target": "t", "generated_at": "2026-01-01T00:00:00+00:00", "partial": False,
            "controls": [{"id": cid, "title": CATALOGUE[cid].title, "verdict": v,
                          "checks": [{"check": f"suites/x.py::test_{cid}", "verdict": v,
                                      "evidence": f"seen for {cid}"}]}
                         for cid, v in verdicts.items()]}


def test_grouped_report_by_requirement(tmp_path: Path) -> None:
    verdicts = {cid: "pass" for cid in of_kind("compliance")}
    verdicts["TLS-2"] = "fail"
    (tmp_path / "results.json").write_text(json.dumps(_results(verdicts)))
    js, page = framework.write(tmp_path, "hipaa")
    doc = json.loads(js.read_text())
    by = {r["id"]: r for r in doc["requirements"]}
    assert list(by) == list(FRAMEWORK_DEFS["hipaa"].requirements)
    assert by["164.312(e)(1)"]["status"] == "fail"  # TLS-2 fails: transmission security fails
    tls2 = next(c for c in by["164.312(e)(1)"]["controls"] if c["id"] == "TLS-2")
    assert tls2["checks"][0]["evidence"] == "seen for TLS-2"
    assert by["164.312(a)(2)(iv)"]["status"] == "pass"
    assert by["164.312(a)(2)(i)"]["status"] == framework.NOT_COVERED
    assert by["164.312(a)(2)(i)"]["controls"] == []
    # Testing and revision is proven by game days, which `pgproof check` does not run.
    assert by["164.308(a)(7)(ii)(D)"]["status"] == framework.NOT_CHECKED
    assert {c["verdict"] for c in by["164.308(a)(7)(ii)(D)"]["controls"]} == {"not-run"}
    assert {c["id"] for c in doc["controls_without_requirement"]} == {"POOL-1", "MON-3", "LOG-17", "PRIV-4"}
    html = page.read_text()
    assert "164.312(a)(2)(i)" in html and "not covered by pgproof" in html
    assert "seen for TLS-2" in html and html.count("<tr>") > len(by)


def test_cis_and_fsbp_reports(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text(json.dumps(_results(
        {cid: "pass" for cid in of_kind("compliance")})))
    for key in ("cis", "fsbp"):
        doc = json.loads(framework.write(tmp_path, key)[0].read_text())
        covered = {r["id"] for r in doc["requirements"] if r["status"] == "pass"}
        mapped = {rid for c in CATALOGUE.values() if c.kind == "compliance"
                  for rid in c.frameworks.get(key, ())}
        assert covered == mapped
        assert framework.NOT_COVERED in {r["status"] for r in doc["requirements"]}
        assert re.search(r"pgdsat|awsdocs", doc["source"])


def test_tls7_answers_cis_7_5() -> None:
    """pgdsat's 7.5 fails a lab for replication without TLS: exactly what TLS-7 checks."""
    assert "7.5" in CATALOGUE["TLS-7"].frameworks.get("cis", ())


def _gameday_line(base: Path, target: str, ended: float, verdicts: dict[str, str],
                  scenario: str = "kill-primary") -> str:
    """A finished game day as the runner records it: its journal, then its history line."""
    name = f"{target}-{scenario}-{int(ended)}"
    d = base / name
    d.mkdir(parents=True)
    journal = {"target": target, "scenario": scenario, "ended_at": ended, "verdict": "pass",
               "verdicts": [{"id": c, "title": CATALOGUE[c].title, "verdict": v,
                             "evidence": f"{scenario} judged {c} {v}"} for c, v in verdicts.items()]}
    (d / "journal.json").write_text(json.dumps(journal))
    history.append_gameday(d, journal)
    return name


def test_requirement_with_unchecked_controls_is_partial(tmp_path: Path) -> None:
    """Issue 18: 164.312(c)(1) read PASS with 2 of its 5 mapped controls checked."""
    run = tmp_path / "reports" / "t-check"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps(_results(
        {cid: "pass" for cid in of_kind("compliance")})))
    js, page = framework.write(run, "hipaa")
    by = {r["id"]: r for r in json.loads(js.read_text())["requirements"]}
    integrity = by["164.312(c)(1)"]
    mapped = [c["id"] for c in integrity["controls"]]
    games = [c for c in mapped if CATALOGUE[c].kind == "gameday"]
    assert games and len(games) < len(mapped)
    assert integrity["status"] == framework.PARTIAL
    assert integrity["unchecked"] == games
    assert integrity["checked"].startswith(f"{len(mapped) - len(games)} of {len(mapped)} ")
    assert all(g in integrity["checked"] for g in games)
    html = page.read_text()
    assert f"partial: {len(mapped) - len(games)} of {len(mapped)} checked" in html
    assert "within 30 days" in html
    # A requirement whose every control was checked and passed stays PASS.
    assert by["164.312(a)(2)(iv)"]["status"] == "pass"


def test_gameday_controls_come_from_the_latest_gameday_in_the_window(tmp_path: Path) -> None:
    base = tmp_path / "reports"
    run = base / "t-check"
    run.mkdir(parents=True)
    results = _results({cid: "pass" for cid in of_kind("compliance")})
    (run / "results.json").write_text(json.dumps(results))
    at = dt.datetime.fromisoformat(str(results["generated_at"])).timestamp()
    day = 86400.0
    games = {c: "fail" for c in of_kind("gameday")}
    _gameday_line(base, "t", at - 40 * day, {**games}, "too-old")  # outside the window
    _gameday_line(base, "other", at - 60, {c: "pass" for c in games}, "other-target")
    _gameday_line(base, "t", at - 2 * day, {c: "fail" for c in games}, "older")
    newest = _gameday_line(base, "t", at - 60, {c: "pass" for c in games}, "newest")
    doc = json.loads(framework.write(run, "hipaa")[0].read_text())
    by = {r["id"]: r for r in doc["requirements"]}
    integrity = by["164.312(c)(1)"]
    assert integrity["status"] == "pass" and integrity["unchecked"] == []
    ha3 = next(c for c in integrity["controls"] if c["id"] == "HA-3")
    assert ha3["verdict"] == "pass" and newest in ha3["note"] and "30 days" in ha3["note"]
    assert ha3["checks"][0]["evidence"] == "newest judged HA-3 pass"
    assert doc["gameday_window_days"] == 30
    # Only the too-old game day judged a control: it stays not-run, the requirement partial.
    base2 = tmp_path / "reports2"
    run2 = base2 / "t-check"
    run2.mkdir(parents=True)
    (run2 / "results.json").write_text(json.dumps(results))
    _gameday_line(base2, "t", at - 40 * day, {"HA-3": "pass"}, "too-old")
    by2 = {r["id"]: r for r in json.loads(framework.write(run2, "hipaa")[0].read_text())["requirements"]}
    assert by2["164.312(c)(1)"]["status"] == framework.PARTIAL
