"""Per-control aggregation, exit codes for schedulers, and secret scrubbing."""

from __future__ import annotations

from pathlib import Path

from pgproof.report import results as res
from pgproof.verdict import Verdict as V


def _r(cid: str, v: V) -> res.CheckResult:
    return res.CheckResult(f"t::{cid}::{v}", [cid], v, f"saw {v}")


def test_worst_layer_decides_and_unchecked_controls_show() -> None:
    out = {c.id: c.verdict for c in res.aggregate(
        [_r("TLS-1", V.PASS), _r("TLS-1", V.FAIL), _r("HA-1", V.PASS), _r("HA-1", V.CANNOT_VERIFY),
         _r("NET-5", V.SKIP), _r("BAK-1", V.ERROR), _r("BAK-1", V.PASS)])}
    assert out["TLS-1"] == "fail" and out["HA-1"] == "cannot-verify"
    assert out["NET-5"] == "skip" and out["BAK-1"] == "error"
    assert out["MON-1"] == res.NOT_CHECKED  # a control nothing checked does not vanish


def test_exit_codes() -> None:
    def code(*vs: V) -> int:
        return res.exit_code(res.aggregate([_r("TLS-1", v) for v in vs], ["TLS-1"]))
    assert code(V.PASS) == 0 and code(V.CANNOT_VERIFY) == 0
    assert code(V.FAIL) == 1 and code(V.ERROR) == 2


def test_scrub_replaces_secrets(tmp_path: Path) -> None:
    f = tmp_path / "report.html"
    f.write_text("dsn=postgresql://app:S3cretPassw0rd@db/app")
    res.scrub([f], ["S3cretPassw0rd"])
    assert "S3cretPassw0rd" not in f.read_text() and "********" in f.read_text()


def test_drift_between_the_last_two_runs(tmp_path: Path) -> None:
    from pgproof.report.history import drift

    for verdicts in ({"TLS-1": "pass", "BAK-1": "pass"}, {"TLS-1": "pass", "BAK-1": "fail"}):
        d = res.run_dir(tmp_path, "staging")
        controls = res.aggregate([_r(c, V(v)) for c, v in verdicts.items()], list(verdicts))
        res.write(d, "staging", controls, {})
    prev, last, changes = drift(tmp_path / "history.jsonl", "staging")
    assert prev and last and [(c.control, c.before, c.after) for c in changes] == [("BAK-1", "pass", "fail")]
    assert drift(tmp_path / "history.jsonl", "prod") == (None, None, [])


def _write_run(base: Path, verdicts: dict[str, str], selected: list[str] | None = None,
               partial: bool = False) -> dict:  # type: ignore[type-arg]
    """One run through the real aggregate/write code; returns its results.json."""
    import json

    from pgproof.catalogue.registry import of_kind

    d = res.run_dir(base, "staging")
    controls = res.aggregate([_r(c, V(v)) for c, v in verdicts.items()], of_kind("compliance"),
                             selected if selected is not None else of_kind("compliance"))
    res.write(d, "staging", controls, {}, partial=partial)
    return json.loads((d / "results.json").read_text())


def test_not_selected_is_not_not_checked_and_does_not_count() -> None:
    out = {c.id: c.verdict for c in res.aggregate([_r("TLS-1", V.PASS)], ["TLS-1", "TLS-2", "NET-1"],
                                                   ["TLS-1", "TLS-2"])}
    assert out == {"TLS-1": "pass", "TLS-2": res.NOT_CHECKED, "NET-1": res.NOT_SELECTED}
    assert res.exit_code(res.aggregate([_r("TLS-1", V.FAIL)], ["TLS-1", "NET-1"], ["TLS-1"])) == 1
    assert res.exit_code(res.aggregate([_r("TLS-1", V.PASS)], ["TLS-1", "NET-1"], ["TLS-1"])) == 0


def test_partial_run_is_marked_in_results_and_history(tmp_path: Path) -> None:
    import json

    from pgproof.catalogue.registry import of_kind

    n = len(of_kind("compliance"))
    doc = _write_run(tmp_path, {"TLS-1": "fail"}, ["TLS-1"])
    assert doc["partial"] is True and doc["selected"] == ["TLS-1"] and doc["exit_code"] == 1
    assert doc["summary"] == {"fail": 1, res.NOT_SELECTED: n - 1}
    full = _write_run(tmp_path, {"TLS-1": "pass"})
    assert full["partial"] is False and len(full["selected"]) == n
    narrowed = _write_run(tmp_path, {"TLS-1": "pass"}, partial=True)  # -k kept one TLS-1 layer
    assert narrowed["partial"] is True and len(narrowed["selected"]) == n
    lines = [json.loads(x) for x in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [(x["partial"], len(x["selected"])) for x in lines] == [(True, 1), (False, n), (True, n)]


def test_drift_compares_only_controls_both_runs_selected(tmp_path: Path) -> None:
    from pgproof.catalogue.registry import of_kind
    from pgproof.report.history import compared, drift

    everything = dict.fromkeys(of_kind("compliance"), "pass")
    hist = tmp_path / "history.jsonl"
    _write_run(tmp_path, {"TLS-1": "pass", "TLS-2": "pass"}, ["TLS-1", "TLS-2"])  # partial first
    _write_run(tmp_path, {**everything, "BAK-1": "fail"})  # then full: no "not-selected -> x"
    prev, last, changes = drift(hist, "staging")
    assert changes == [] and compared(prev, last)[0] == ["TLS-1", "TLS-2"]
    _write_run(tmp_path, {"BAK-1": "pass", "TLS-1": "fail"}, ["BAK-1", "TLS-1"])  # partial after full
    _, _, changes = drift(hist, "staging")
    assert [(c.control, c.before, c.after) for c in changes] == [
        ("TLS-1", "pass", "fail"), ("BAK-1", "fail", "pass")]
    _write_run(tmp_path, {**everything, "MON-1": "error"})  # a full run: only the overlap again
    _, _, changes = drift(hist, "staging")
    assert [(c.control, c.before, c.after) for c in changes] == [("TLS-1", "fail", "pass")]


def test_drift_reads_history_lines_written_before_selection_existed(tmp_path: Path) -> None:
    import json

    from pgproof.report.history import drift

    hist = tmp_path / "history.jsonl"
    old = {"at": "a", "target": "s", "verdicts": {"TLS-1": "pass", "NET-1": "not-checked"}}
    new = {"at": "b", "target": "s", "partial": True, "selected": ["TLS-1"],
           "verdicts": {"TLS-1": "fail", "NET-1": "not-selected"}}
    hist.write_text(json.dumps(old) + "\n" + json.dumps(new) + "\n")
    assert [(c.control, c.after) for c in drift(hist, "s")[2]] == [("TLS-1", "fail")]


def test_report_scope_of_a_selection() -> None:
    from pgproof.catalogue.registry import of_kind
    from pgproof.pytest_selection import plan

    scope, selected, partial = plan(of_kind("compliance"), set())
    assert scope == of_kind("compliance") and not partial
    assert plan(of_kind("compliance"), {"TLS-1"})[2] is True  # one TLS-1 check deselected
    scope, _, partial = plan(["HA-2", "HA-3"], {"CH-LAT"})
    assert scope == of_kind("gameday") and partial
    assert plan([], set()) == ([], [], False)


def test_summary_says_a_run_is_partial() -> None:
    from pgproof.report import summary

    controls = res.aggregate([_r("TLS-1", V.PASS)], ["TLS-1", "NET-1"], ["TLS-1"])
    assert "Partial run: 1 of 2 controls selected" in summary.render("t", "now", controls)
    full = res.aggregate([_r("TLS-1", V.PASS)], ["TLS-1"], ["TLS-1"])
    assert "Partial run" not in summary.render("t", "now", full)
