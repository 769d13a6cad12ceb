"""The catalogue is consistent, its docs are current, and selection by control ID works.

A control's layers are the layers its registered checks read (their inputs), so an entry
cannot drift from what proves it; this module holds the registry to its vocabulary.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgproof import pytest_fixtures
from pgproof.catalogue import render, runner
from pgproof.catalogue.model import FIXTURES, PLAIN_INPUTS
from pgproof.catalogue.registry import (
    CATALOGUE,
    FRAMEWORKS,
    LAYERS,
    UnknownControl,
    of_kind,
    select,
)
from pgproof.gameday import alarm_drill, restore
from pgproof.gameday.scenarios import SCENARIOS
from pgproof.lab.state import LabState
from pgproof.target import Thresholds

REPO = Path(__file__).resolve().parent.parent
SCENARIO_MODULES = sorted(p.stem for p in (REPO / "scenarios").glob("test_*.py"))


def _scenario_controls() -> set[str]:
    """Control IDs on the scenarios' tests (their ``control`` markers)."""
    out: set[str] = set()
    for name in SCENARIO_MODULES:
        mod = importlib.import_module(f"scenarios.{name}")
        for fn in vars(mod).values():
            for m in getattr(fn, "pytestmark", []):
                if m.name == "control":
                    out.update(m.args)
    return out


def test_every_compliance_control_has_checks_and_every_game_day_a_scenario() -> None:
    for c in CATALOGUE.values():
        assert bool(c.checks) == (c.kind == "compliance"), c.id
    in_scenarios = ({cid for s in SCENARIOS.values() for cid in s.controls} | set(alarm_drill.CONTROLS)
                    | set(restore.CONTROLS))
    marked = _scenario_controls()
    assert marked <= set(CATALOGUE), "scenario markers not in the catalogue"
    assert set(of_kind("gameday")) <= marked & in_scenarios


def test_checks_read_known_inputs_and_their_judges_take_them() -> None:
    """Each check's inputs are layer fixtures (gated on the target configuring the layer) or
    plain inputs; its judge and evidence resolve and accept them; a control's layers are its
    checks' layers; cloud layers have one judge per control."""
    known = set(FIXTURES) | set(PLAIN_INPUTS)
    for c in of_kind("compliance"):
        ctl = CATALOGUE[c]
        assert ctl.layers == tuple(dict.fromkeys(x for k in ctl.checks for x in k.layers)), c
        for k in ctl.checks:
            assert set(k.inputs) | set(k.shows) <= known, (c, k.inputs)
            assert k.layer in LAYERS and k.layer == (FIXTURES[k.inputs[0]]), (c, k.layer, k.inputs)
            inspect.signature(runner.resolve(k.judge)).bind(*k.inputs)
            if k.evidence is not None:
                inspect.signature(runner.resolve(k.evidence)).bind(*k.inputs, *k.shows)
        for layer in ("aws", "azure"):
            assert len([k for k in ctl.checks if k.layer == layer]) <= 1, (c, layer)


def test_layer_fixtures_are_gated_on_the_target() -> None:
    """A check reaches a layer only through its fixture, whose probe (run in the check that
    first asks, or early with the run's other probes) first asks ``layers.require``."""
    for name, layer in FIXTURES.items():
        assert f'"{name}", _{name})' in inspect.getsource(getattr(pytest_fixtures, name)), name
        src = inspect.getsource(pytest_fixtures.PROBES[name])
        assert f'layers.require(target, "{layer}")' in src, name


def test_suite_items_are_the_registry() -> None:
    """suites/ holds one generated test; its items are exactly the registry's units."""
    assert sorted(p.name for p in (REPO / "suites").glob("test_*.py")) == ["test_controls.py"]
    ids = [u.id for u in runner.units(CATALOGUE.values())]
    assert len(ids) == len(set(ids))
    assert {u.control for u in runner.units(CATALOGUE.values())} == set(of_kind("compliance"))


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
    return {f"{runner.SUITE_TEST}[{u.id}]" for u in runner.units(CATALOGUE.values())
            if u.control in ids}


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
    rc, part = _run(lab, tmp_path, "suites", "-k", "NET-", pytest_direct=True)
    assert rc == 0 and part["partial"] is True
    assert part["selected"] == ["NET-1", "NET-2", "NET-3", "NET-4", "NET-5"]
    assert {c["verdict"] for c in part["controls"] if c["id"] == "TLS-1"} == {"not-selected"}
    rc, full = _run(lab, tmp_path)
    assert rc == 0 and full["partial"] is False and full["selected"] == of_kind("compliance")
    r = _cli("drift", "--target", "lab", "--reports", str(tmp_path))
    assert r.returncode == 0, r.stdout
    assert "no control changed verdict" in r.stdout and "not compared" in r.stdout


# --- the registry's runner: it names the control; judges never do ---------------------------

def _unit(*judges: object) -> runner.Unit:
    from pgproof.catalogue.build import check

    return runner.Unit("ZZ-9", "sql", tuple(check("sql", j, "pg_facts") for j in judges))  # type: ignore[arg-type]


def _raise(exc: Exception):  # type: ignore[no-untyped-def]
    def judge(_facts: object) -> list[str]:
        raise exc
    return judge


def test_the_runner_tags_every_sentence_and_keeps_the_worst_answer() -> None:
    from pgproof.verdict import CannotVerify, NotApplicable, Unreachable

    def found(_facts: object) -> list[str]:
        return ["role app is superuser"]

    def passes(_facts: object) -> list[str]:
        return []

    v = {"pg_facts": object()}
    assert runner.judge(_unit(found, _raise(CannotVerify("x"))), v) == ["role app is superuser (ZZ-9)"]
    with pytest.raises(Unreachable, match="down"):
        runner.judge(_unit(_raise(CannotVerify("gap")), _raise(Unreachable("down"))), v)
    with pytest.raises(CannotVerify, match="gap"):
        runner.judge(_unit(passes, _raise(CannotVerify("gap"))), v)
    with pytest.raises(NotApplicable):
        runner.judge(_unit(_raise(NotApplicable("no proxy"))), v)
    assert runner.judge(_unit(passes, _raise(NotApplicable("no proxy"))), v) == []


_ID = r"(?:TLS|NET|AUTHZ|AUTH|ENC|AUDIT|BAK|HA|MON|MNT|POOL)-\d"


def test_no_judge_sentence_types_its_control_id() -> None:
    """``(TLS-4)`` or ``TLS-4: `` inside a judge's string: the runner adds the ID, not the judge."""
    import re

    files = [*(REPO / "pgproof" / "checks").glob("*.py"), *(REPO / "pgproof" / "catalogue").glob("*.py")]
    typed = [f"{f.name}: {m[0]}" for f in files for m in re.finditer(
        rf"""\({_ID}\)["']|(?<!["'])["']{_ID}: """, f.read_text())]
    assert not typed, typed


# --- `pgproof controls show ID`: everything about one control -------------------------------

@pytest.mark.slow  # > 4 s (subprocesses / a twin of its own): the lab tier runs it
def test_controls_show_prints_everything_about_one_control(tmp_path: Path) -> None:
    r = _cli("controls", "show", "TLS-5")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    c = CATALOGUE["TLS-5"]
    for words in (c.requirement, "defined in: pgproof.catalogue.tls", "layers: tls",
                  "tls: pgproof.checks.tls:judge_tls5 per endpoint",
                  "tls_facts (pgproof.pytest_fixtures:tls_facts)",
                  "suites/test_controls.py::test_control[TLS-5-tls]",
                  "broken by lab mutations: tls-anon-ciphers, tls-no-forward-secrecy, tls-weak",
                  "HIPAA Security Rule 164.312(e)(1)", "CIS PostgreSQL 17 Benchmark 6.10",
                  "docs: docs/controls.md#tls-5-strong-crypto"):
        assert words in out, (words, out)
    assert "### TLS-5: Strong crypto" in (REPO / "docs" / "controls.md").read_text()
    # The suite items it names are the ones pytest collects.
    items = [line.split()[-1] for line in _cli("controls", "show", "BAK-2").stdout.splitlines()
             if "::test_control[" in line]
    assert _collected(_collect(tmp_path, "--control", "BAK-2")) == set(items) != set()
    for bad, words in ((["show"], "name a control"), (["show", "NOPE-1"], "unknown control ID")):
        r = _cli("controls", *bad)
        assert r.returncode == 2 and words in r.stderr and r.stdout == "", r.stderr


# --- adding a control: one module of your own (plus its registration), nothing else --------

THROWAWAY = '''\
"""ZZ-1..ZZ-3, throwaway controls: the whole of each, definition and judge, in one module."""

from pgproof.catalogue.build import aws, check, control, reads


def no_literals(source_findings):
    return [f"{f.path}:{f.line}: {f.kind}" for f in source_findings]


def work_mem_bounded(pg_facts):
    return [] if pg_facts.setting("work_mem") == "4096" else ["work_mem is not 4MB"]


@reads("DescribeDBInstances", "`StorageType`; `DBInstanceIdentifier`", "absent: fail")
def io2_storage(inv, th):
    return [f"{i['DBInstanceIdentifier']}: storage {i.get('StorageType')}"
            for i in inv.instances if i.get("StorageType") != "io2"]


CONTROLS = (control(
    "ZZ-1", "No literals (throwaway)", "The source tree holds no credential literal.",
    "Remove them.", severity="low", unmapped_reason="it is a test",
    checks=(check("source", no_literals, "source_findings",
                  evidence=lambda f: f"{len(f)} literals"),)),
    control("ZZ-2", "Bounded work_mem (throwaway)", "work_mem is 4MB.", "Set it.",
            severity="low", unmapped_reason="it is a test",
            checks=(check("sql", work_mem_bounded, "pg_facts", settings="work_mem"),)),
    control("ZZ-3", "io2 storage (throwaway)", "Every instance uses io2 storage.", "Move it.",
            severity="low", unmapped_reason="it is a test",
            checks=(aws(io2_storage, lambda inv: "io2"),)),
)
'''
# Run in the plug-in's environment: what the repo's own tests derive from the catalogue.
DERIVED = """\
import json, sys
sys.path.insert(0, "tests")
from test_api_fields import undeclared
from pgproof.catalogue.registry import judges, setting_uses
from pgproof.catalogue.render import markdown
from pgproof.probes.postgres import settings_read
print(json.dumps({"read": "work_mem" in settings_read(), "uses": setting_uses().get("work_mem"),
                  "aws": sorted(judges("aws")), "undeclared": undeclared(judges("aws")),
                  "rows": [r for r in markdown().splitlines() if r.startswith("| ZZ-")]}))
"""


@pytest.mark.slow  # > 4 s (subprocesses / a twin of its own): the lab tier runs it
def test_a_throwaway_control_is_listed_shown_collected_and_judged(tmp_path: Path) -> None:
    """Three files make three new controls, on the source, SQL-setting and AWS layers: no
    edit to the probe's settings, to a doc page or to an API-field list (issue 20 item 1)."""
    plug = tmp_path / "plug"
    (plug / "zz_controls-0.dist-info").mkdir(parents=True)
    added = {plug / "zz_controls.py": THROWAWAY,
             plug / "zz_controls-0.dist-info" / "METADATA": "Name: zz-controls\nVersion: 0\n",
             plug / "zz_controls-0.dist-info" / "entry_points.txt":
                 "[pgproof.controls]\nzz = zz_controls\n"}
    for f, text in added.items():
        f.write_text(text)
    assert len(added) <= 3
    src = tmp_path / "src"
    src.mkdir()
    (src / "db.py").write_text('DSN = "postgresql://app:hunter2hunter2@db/app"\n')
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text(f'[targets.t]\nsource_tree = "{src}"\n[targets.t.postgres]\n'
                   'writer = { host = "127.0.0.1", port = 1 }\nuser = "x"\n')
    env = {**os.environ, "PYTHONPATH": str(plug), "PGPROOF_CONFIG": str(cfg)}

    listed = _cli("controls", env=env)
    for cid, layer in (("ZZ-1", "source"), ("ZZ-2", "sql"), ("ZZ-3", "aws")):
        assert any(line.split()[:3] == [cid, "compliance", layer]
                   for line in listed.stdout.splitlines()), listed.stdout + listed.stderr
    shown = _cli("controls", "show", "ZZ-1", env=env).stdout
    assert "source: zz_controls:no_literals" in shown and "defined in: zz_controls" in shown
    assert "suites/test_controls.py::test_control[ZZ-1-source]" in shown
    # The SQL probe reads the new setting and doctor names its control; the AWS judge's
    # fields are declared on it, pass the API-field test, and appear in the generated tables.
    derived = subprocess.run([sys.executable, "-c", DERIVED], capture_output=True, text=True,
                             cwd=REPO, timeout=120, env=env)
    assert derived.returncode == 0, derived.stderr
    facts = json.loads(derived.stdout)
    assert facts["read"] and facts["uses"] == "ZZ-2" and "ZZ-3" in facts["aws"], facts
    assert facts["undeclared"] == {}, facts
    assert "| ZZ-3 | DescribeDBInstances | `StorageType`; `DBInstanceIdentifier` | absent: fail |" \
        in facts["rows"], facts["rows"]

    reports = tmp_path / "reports"
    r = subprocess.run([sys.executable, "-m", "pytest", "suites", "--target", "t",
                        "--pgproof-config", str(cfg), "--control", "ZZ-*", "--reports",
                        str(reports), "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
                       capture_output=True, text=True, cwd=REPO, timeout=120, env=env)
    for item in ("ZZ-1-source", "ZZ-2-sql"):
        assert f"suites/test_controls.py::test_control[{item}]" in r.stdout, r.stdout + r.stderr
    results = json.loads((reports / "latest" / "results.json").read_text())
    verdicts = {c["id"]: c for c in results["controls"] if c["id"].startswith("ZZ-")}
    zz = verdicts["ZZ-1"]
    assert zz["verdict"] == "fail" and r.returncode == 1, (zz, r.stdout[-2000:])
    assert zz["checks"][0]["evidence"].endswith("(ZZ-1)"), zz
    # Collected and run on their layers: the SQL probe could not log in (an error, never a
    # verdict on work_mem); the target has no [aws], so the AWS item says so.
    assert verdicts["ZZ-2"]["checks"][0]["check"].endswith("test_control[ZZ-2-sql]")
    assert verdicts["ZZ-2"]["verdict"] == "error" and "127.0.0.1:1" in \
        verdicts["ZZ-2"]["checks"][0]["evidence"], verdicts["ZZ-2"]
    assert verdicts["ZZ-3"]["checks"][0]["check"].endswith("test_control[ZZ-3-aws]")
    assert verdicts["ZZ-3"]["layers_not_checked"]["aws"].startswith("AWS layer not checked: "
                                                                     "target has no [aws]")
