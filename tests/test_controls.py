"""The catalogue matches the suites, its docs are current, and selection by control ID works.

Layers are derived from what each check really touches (its fixtures and probe
calls, read from the source), so a catalogue entry that drifts from its suite fails.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgproof.catalogue import CATALOGUE, FRAMEWORKS, LAYERS, UnknownControl, of_kind, render, select
from pgproof.gameday import alarm_drill, restore
from pgproof.gameday.scenarios import SCENARIOS
from pgproof.lab.state import LabState
from pgproof.layers import FIXTURES
from pgproof.target import Thresholds

REPO = Path(__file__).resolve().parent.parent
FIXTURE_LAYERS = FIXTURES  # the suites' layer fixtures (each gated on the target configuring it)
# A probe called from a check would bypass its layer's gate: checks must ask for the fixture.
CALL_LAYERS = {"source.scan": "source", "network.resolve": "dns",
               "network.reachable_from": "vantage", "host.gather": "host",
               "postgres.verify_full_login": "sql", "postgres.gather": "sql", "aws.gather": "aws"}


def _control_ids(fn: ast.FunctionDef) -> list[str]:
    out = []
    for d in fn.decorator_list:
        if isinstance(d, ast.Call) and ast.unparse(d.func) in ("control", "pytest.mark.control"):
            out += [a.value for a in d.args if isinstance(a, ast.Constant)]
    return out


def checks() -> list[tuple[str, str, list[str], set[str]]]:
    """(file, test name, control IDs, layers it touches) for every check in suites/ and scenarios/."""
    out = []
    for f in sorted([*(REPO / "suites").glob("test_*.py"), *(REPO / "scenarios").glob("test_*.py")]):
        for fn in ast.walk(ast.parse(f.read_text())):
            if isinstance(fn, ast.FunctionDef) and fn.name.startswith("test_"):
                layers = {FIXTURE_LAYERS[a.arg] for a in fn.args.args if a.arg in FIXTURE_LAYERS}
                layers |= {CALL_LAYERS[ast.unparse(c.func)] for c in ast.walk(fn)
                           if isinstance(c, ast.Call) and ast.unparse(c.func) in CALL_LAYERS}
                out.append((f"{f.parent.name}/{f.name}", fn.name, _control_ids(fn), layers))
    return out


def test_every_marker_is_in_the_catalogue_and_every_compliance_control_has_a_check() -> None:
    found = checks()
    assert all(ids for _, _, ids, _ in found), [n for _, n, ids, _ in found if not ids]
    used = {cid for _, _, ids, _ in found for cid in ids}
    assert used - set(CATALOGUE) == set(), "markers not in the catalogue"
    assert set(of_kind("compliance")) - used == set(), "compliance controls without a check"
    in_scenarios = ({cid for s in SCENARIOS.values() for cid in s.controls} | set(alarm_drill.CONTROLS)
                    | set(restore.CONTROLS))
    assert set(of_kind("gameday")) <= used & in_scenarios


def test_catalogue_layers_are_what_the_suites_touch() -> None:
    derived: dict[str, set[str]] = {}
    for _, _, ids, layers in checks():
        for cid in ids:
            derived.setdefault(cid, set()).update(layers)
    for cid in of_kind("compliance"):
        want = derived[cid]
        assert set(CATALOGUE[cid].layers) == want, f"{cid}: catalogue {CATALOGUE[cid].layers}, suites {want}"


def test_suites_reach_layers_only_through_gated_fixtures() -> None:
    direct = [(f, n, layers) for f, n, _, layers in checks() if f.startswith("suites/")
              and layers - {FIXTURE_LAYERS[a] for a in _args(f, n) if a in FIXTURE_LAYERS}]
    assert not direct, f"checks calling a probe directly (use the layer's fixture): {direct}"


def _args(file: str, name: str) -> list[str]:
    tree = ast.parse((REPO / file).read_text())
    fn = next(f for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == name)
    return [a.arg for a in fn.args.args]


def test_entries_are_complete_and_use_known_vocabulary() -> None:
    fields = set(Thresholds.model_fields)
    for c in CATALOGUE.values():
        assert c.title and c.requirement.endswith(".") and c.remediation.endswith("."), c.id
        assert c.layers and set(c.layers) <= set(LAYERS), c.id
        assert set(c.thresholds) <= fields, f"{c.id}: unknown thresholds {set(c.thresholds) - fields}"
        assert set(c.frameworks) <= set(FRAMEWORKS), c.id
    used = {t for c in CATALOGUE.values() for t in c.thresholds}
    assert fields - used == set(), "threshold fields no control names"


def test_select_by_id_and_glob() -> None:
    assert select(["TLS-1", "NET-*"]) == ["TLS-1", "NET-1", "NET-2", "NET-3", "NET-4", "NET-5"]
    assert select(["HA-?"], "gameday") == ["HA-2", "HA-3", "HA-4", "HA-6"]
    with pytest.raises(UnknownControl, match="unknown control ID 'TLS-9'"):
        select(["TLS-9"])
    with pytest.raises(UnknownControl, match="game-day control"):
        select(["CH-*"], "compliance")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgproof.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=120, env=env)


def test_docs_controls_md_is_generated_and_current() -> None:
    shipped = (REPO / "docs" / "controls.md").read_text()
    assert shipped == render.markdown(), \
        "docs/controls.md is stale: run `pgproof controls --format markdown > docs/controls.md`"
    r = _cli("controls", "--format", "markdown")
    assert r.returncode == 0 and r.stdout == shipped
    assert all(f"### {c.id}: {c.title}" in shipped for c in CATALOGUE.values())


@pytest.mark.slow
def test_controls_command_table_json_and_bad_pattern() -> None:
    r = _cli("controls")
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert len(lines) == 1 + len(CATALOGUE)
    assert any(line.split()[:3] == ["TLS-1", "compliance", "tls,sql,aws,azure"] for line in lines)
    doc = json.loads(_cli("controls", "NET-*", "--format", "json").stdout)
    assert [c["id"] for c in doc["controls"]] == select(["NET-*"])
    assert doc["controls"][0]["frameworks"] == {"hipaa": ["164.312(a)(1)", "164.312(e)(1)"],
                                                "cis": [], "fsbp": ["RDS.2"]}
    bad = _cli("controls", "NOPE-1")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "pgproof: controls: unknown control ID 'NOPE-1': no control matches it "
        "(`pgproof controls` lists them)"]


@pytest.mark.slow
def test_check_refuses_unknown_or_game_day_controls_before_any_report(tmp_path: Path) -> None:
    for pattern, words in (("TLS-9", "unknown control ID 'TLS-9'"), ("X*", "unknown pattern"),
                           ("HA-2", "game-day control")):
        r = _cli("check", "--target", "lab", "--reports", str(tmp_path), "--control", pattern)
        assert r.returncode == 2, r.stdout + r.stderr
        assert words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert list(tmp_path.iterdir()) == []


# pytest-level selection, checked on collection against a target that need not exist.
def _collect(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text('[targets.t.postgres]\nwriter = { host = "127.0.0.1", port = 1 }\nuser = "x"\n')
    return subprocess.run([sys.executable, "-m", "pytest", "suites", "--target", "t",
                           "--pgproof-config", str(cfg), "--collect-only", "-q", "--no-reports",
                           "-p", "no:cacheprovider", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120, env={**os.environ, "PGPROOF_CONFIG": str(cfg)})


def _expected(*ids: str) -> set[str]:
    return {f"{f}::{n}" for f, n, cids, _ in checks() if set(cids) & set(ids)}


def _collected(r: subprocess.CompletedProcess[str]) -> set[str]:
    return {line for line in r.stdout.splitlines() if "::" in line}


@pytest.mark.slow
@pytest.mark.parametrize(("args", "ids"), [
    (["--control", "TLS-1"], ["TLS-1"]),
    (["--control", "tls-2,NET-*", "--control", "AUTH-2"],
     ["TLS-2", "NET-1", "NET-2", "NET-3", "NET-4", "NET-5", "AUTH-2"]),
    (["-m", "TLS-1 or NET-2"], ["TLS-1", "NET-2"]),
    (["-k", "AUTH-2"], ["AUTH-2"]),
])
def test_pytest_selects_by_control_id(tmp_path: Path, args: list[str], ids: list[str]) -> None:
    r = _collect(tmp_path, *args)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert _collected(r) == _expected(*ids) != set()


@pytest.mark.slow
@pytest.mark.parametrize(("pattern", "words"), [
    ("TLS-9", "unknown control ID 'TLS-9'"), ("ZZ-*", "unknown pattern 'ZZ-*'"),
    ("HA-2", "no collected test proves HA-2")])
def test_pytest_control_errors_exit_2(tmp_path: Path, pattern: str, words: str) -> None:
    r = _collect(tmp_path, "--control", pattern)
    assert r.returncode == 2 and words in r.stdout + r.stderr, r.stdout + r.stderr


# End to end on the lab: a partial run is marked, not-selected, and does not drift.
def _run(lab: LabState, reports: Path, *args: str, pytest_direct: bool = False) -> tuple[int, dict]:  # type: ignore[type-arg]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}
    env.update(PGPROOF_LAB_TARGET=str(lab.target_file), PGPROOF_CONFIG="/nonexistent")
    cmd = ([sys.executable, "-m", "pytest", *args, "--target", "lab", "--reports", str(reports), "-q"]
           if pytest_direct else
           [sys.executable, "-m", "pgproof.cli", "check", "--target", "lab", "--reports",
            str(reports), *args])
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    doc = json.loads((reports / "latest" / "results.json").read_text())
    return r.returncode, doc


def test_check_control_on_the_lab_is_partial(lab: LabState, tmp_path: Path) -> None:
    rc, doc = _run(lab, tmp_path, "--control", "TLS-1")
    verdicts = {c["id"]: c["verdict"] for c in doc["controls"]}
    assert rc == 0 == doc["exit_code"], doc["summary"]
    assert doc["partial"] is True and doc["selected"] == ["TLS-1"]
    assert verdicts.pop("TLS-1") == "pass"
    assert set(verdicts) == set(of_kind("compliance")) - {"TLS-1"}
    assert set(verdicts.values()) == {"not-selected"}
    line = json.loads((tmp_path / "history.jsonl").read_text().splitlines()[-1])
    assert line["partial"] is True and line["selected"] == ["TLS-1"]


def test_subset_of_files_then_full_run_shows_no_drift(lab: LabState, tmp_path: Path) -> None:
    rc, part = _run(lab, tmp_path, "suites/test_network.py", pytest_direct=True)
    assert rc == 0 and part["partial"] is True
    assert part["selected"] == ["NET-1", "NET-2", "NET-3", "NET-4", "NET-5"]
    assert {c["verdict"] for c in part["controls"] if c["id"] == "TLS-1"} == {"not-selected"}
    rc, full = _run(lab, tmp_path)
    assert rc == 0 and full["partial"] is False and full["selected"] == of_kind("compliance")
    r = _cli("drift", "--target", "lab", "--reports", str(tmp_path))
    assert r.returncode == 0, r.stdout
    assert "no control changed verdict" in r.stdout and "not compared" in r.stdout
