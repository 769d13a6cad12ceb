"""pgproof installs like a tool: the built wheel, in a fresh venv, outside this checkout.

The wheel is built from this tree and installed with its declared dependencies
(``pip install <wheel>``, as a user or ``pipx`` would) into a venv under a temporary
directory; every command then runs from another temporary directory, so nothing of
the checkout (``suites/``, ``locustfiles/``, the editable install) can be found by
accident. The checker's venv has the wheel without extras: a check against the session
lab's target file works with no moto or supervisor installed, and ``pgproof lab`` refuses in one
sentence. A second venv adds the ``lab`` extra (``pgproof[lab]``) for a kill-primary game day.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from labcli import gameday_rc_ok, lab_cli_env, wait_steady

from pgproof.lab.state import LabState
from pgproof.target import Target

pytestmark = pytest.mark.stage("gameday")

REPO = Path(__file__).resolve().parent.parent
PYTHON = "/usr/bin/python3"  # the system interpreter, as a user's pipx would use


def test_the_wheel_lists_every_package() -> None:
    """pyproject lists packages by hand (find cannot see the mapped folders): none may be missing."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "pgproof").rglob("__init__.py")}
    shipped = {f"pgproof.{d}" for d in ("suites", "scenarios", "locustfiles")}
    assert listed == on_disk | shipped, (sorted(on_disk | shipped - listed), sorted(listed - on_disk - shipped))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([str(REPO / ".venv/bin/pip"), "wheel", "--no-deps", "-q", "-w", str(root / "dist"),
                    str(REPO)], check=True, capture_output=True, timeout=300)
    (built,) = (root / "dist").glob("pgproof-*.whl")
    return built


def _venv(wheel: Path, root: Path, requirement: str) -> Path:
    """The bin directory of a fresh venv holding only ``requirement`` and its dependencies."""
    subprocess.run([PYTHON, "-m", "venv", str(root / "venv")], check=True, timeout=120)
    # --no-compile: byte-compiling botocore & co. is a third of the install and proves nothing here
    pip = subprocess.run([str(root / "venv/bin/pip"), "install", "-q", "--no-compile", requirement],
                         capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-2000:]
    return root / "venv/bin"


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checker alone: the wheel without extras (no moto, no supervisor)."""
    return _venv(wheel, tmp_path_factory.mktemp("checker"), str(wheel))


@pytest.fixture(scope="module")
def installed_lab(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checker with the lab extra, as ``pip install 'pgproof[lab]'``."""
    return _venv(wheel, tmp_path_factory.mktemp("with-lab"), f"{wheel}[lab]")


def _run(bin_dir: Path, args: list[str], cwd: Path, lab: LabState,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = lab_cli_env(lab)
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    return subprocess.run([str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


def test_the_installed_pgproof_is_the_wheel(installed: Path, tmp_path: Path, lab: LabState) -> None:
    out = _run(installed, ["python", "-c", "import pgproof, pgproof.shipped as s; "
                           "print(pgproof.__file__); print(s.folder('suites'))"], tmp_path, lab)
    assert out.returncode == 0, out.stderr
    for line in out.stdout.split():
        assert line.startswith(str(installed.parent)), line  # the venv's copy, not the checkout
        assert not line.startswith(str(REPO)), line
    ctl = _run(installed, ["pgproof", "controls", "TLS-5"], tmp_path, lab)
    assert ctl.returncode == 0 and "TLS-5" in ctl.stdout, ctl.stderr


def test_the_checker_installs_without_the_lab(installed: Path, tmp_path: Path, lab: LabState) -> None:
    """The lab's dependencies are an extra: none of them comes with the checker."""
    out = _run(installed, ["python", "-c", "import importlib.util as u; "
                           "print([m for m in ('moto', 'supervisor') if u.find_spec(m)])"],
               tmp_path, lab)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_lab_without_the_extra_says_so(installed: Path, tmp_path: Path, lab: LabState) -> None:
    """One sentence, exit 2, nothing created: the lab is not part of the checker."""
    out = _run(installed, ["pgproof", "lab", "up", "--lab-dir", str(tmp_path / "lab")], tmp_path, lab)
    assert out.returncode == 2, out.stdout + out.stderr
    assert out.stdout == "" and out.stderr.count("\n") == 1, out.stderr
    assert "install pgproof[lab]" in out.stderr and "pip install 'pgproof[lab]'" in out.stderr
    assert not (tmp_path / "lab").exists()
    # a game day on the lab needs the lab's driver: refused the same way, before anything starts
    gd = _run(installed, ["pgproof", "gameday", "kill-primary", "--target", "lab", "--reports",
                          str(tmp_path / "r")], tmp_path, lab)
    assert gd.returncode == 2 and gd.stderr.count("\n") == 1, gd.stdout + gd.stderr
    assert "chaos.driver = 'lab'" in gd.stderr and "pip install 'pgproof[lab]'" in gd.stderr
    assert not [p for p in (tmp_path / "r").rglob("*") if p.is_file()]  # no run written


def test_a_check_from_the_wheel(installed: Path, tmp_path: Path, lab: LabState) -> None:
    """The checker alone against the lab's target file (PGPROOF_LAB_TARGET): it never needs the lab."""
    out = _run(installed, ["pgproof", "check", "--target", "lab", "--reports", str(tmp_path / "r")],
               tmp_path, lab)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    (results,) = (tmp_path / "r").glob("*-lab/results.json")
    doc = json.loads(results.read_text())
    assert doc["exit_code"] == 0 and doc["controls"], doc.get("exit_code")
    # pytest on the installed suites finds the plugin by its entry point, from any directory
    suites = _run(installed, ["python", "-c", "import pgproof.shipped as s; print(s.folder('suites'))"],
                  tmp_path, lab).stdout.strip()
    col = _run(installed, ["pytest", suites, "--target", "lab", "--co", "-q", "--no-reports",
                           "-p", "no:cacheprovider"], tmp_path, lab)
    assert col.returncode == 0 and "tests collected" in col.stdout, col.stdout[-2000:] + col.stderr


def test_tests_of_your_own_on_pgproofs_fixtures(installed: Path, tmp_path: Path, lab: LabState) -> None:
    """examples/own-tests, copied into an unrelated directory: the plugin comes by entry point."""
    own = tmp_path / "our-repo"
    shutil.copytree(REPO / "examples/own-tests", own)
    out = _run(installed, ["pytest", str(own), "--target", "lab", "-q", "-p", "no:cacheprovider"],
               own, lab)
    assert out.returncode == 0 and "3 passed" in out.stdout, out.stdout[-3000:] + out.stderr[-2000:]


def test_a_game_day_from_the_wheel(installed_lab: Path, tmp_path: Path, lab: LabState,
                                   lab_target: Target) -> None:
    """The lab's driver plugs in by entry point once pgproof[lab] is installed."""
    wait_steady(lab_target)
    out = _run(installed_lab, ["pgproof", "gameday", "kill-primary", "--target", "lab", "--baseline", "3",
                           "--users", "4", "--reports", str(tmp_path / "r")], tmp_path, lab, timeout=600)
    (journal,) = (tmp_path / "r").rglob("journal.json")
    j = json.loads(journal.read_text())
    assert gameday_rc_ok(out.returncode, j["verdicts"]), out.stdout[-3000:] + out.stderr[-2000:]
    verdicts = {v["id"]: v["verdict"] for v in j["verdicts"]}
    # HA-4 (load recovery) may be unjudgeable on a busy host; the failover and the ledger may not.
    assert verdicts.get("HA-2") == "pass" and verdicts.get("HA-3") == "pass", out.stdout[-3000:]
    assert j["measurements"]["ledger"]["acknowledged"] > 0
    wait_steady(lab_target)  # the old primary rejoined (restarted from a directory it cannot enter)
