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
