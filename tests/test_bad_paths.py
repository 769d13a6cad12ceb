"""Bad paths, disks, configs, names and numbers: one sentence, exit 2, nothing half-written.

Each case runs the real CLI in a subprocess (stderr, the exit code and what is left in
the reports folder are the point). Disks are real: small or read-only tmpfs mounts
(root only), and an AWS-only target against moto's HTTP server for a full ``check``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from twins import aws_only_config

from pgproof.target import ConfigError, load_target

PGPROOF = Path(sys.executable).parent / "pgproof"
PG = '[targets.staging.postgres]\nuser = "auditor"\nwriter = { host = "127.0.0.1", port = 1 }\n'
RULE = ("a target name is 1-64 ASCII letters, digits, '.', '_' or '-', starting with a letter "
        "or digit (it names directories and files under reports/)")
ROOT = os.geteuid() == 0


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "PG")) or k.startswith("PGPROOF_TEST")}
    return {**env, "PGPROOF_LAB_TARGET": "/nonexistent", **extra}


def pgproof(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PGPROOF), *args], capture_output=True, text=True, cwd=cwd,
                          env=_env(), timeout=timeout)


def one_error(r: subprocess.CompletedProcess[str]) -> str:
    """Exit 2, no traceback, exactly one line on stderr."""
    assert r.returncode == 2, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def untouched(base: Path) -> None:
    assert not base.exists() or not any(base.iterdir()), sorted(base.rglob("*"))


@pytest.fixture
def tmpfs() -> Iterator[callable]:  # type: ignore[valid-type]
    """Mount small tmpfs filesystems (root only); each is unmounted at the end."""
    if not ROOT or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    mounted: list[Path] = []

    def mount(path: Path, size: str, ro: bool = False) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        opts = f"size={size}" + (",ro" if ro else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True)
        mounted.append(path)
        return path

    try:
        yield mount
    finally:
        for p in reversed(mounted):
            subprocess.run(["umount", "-l", str(p)], check=False)


# -- numbers -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "sentence"), [
    (["gameday", "latency", "--baseline", "-5"],
     "pgproof: --baseline takes a positive number of seconds (finite, > 0), got '-5'"),
    (["gameday", "latency", "--baseline", "inf"],
     "pgproof: --baseline takes a positive number of seconds (finite, > 0), got 'inf'"),
    (["gameday", "latency", "--baseline", "nan"],
     "pgproof: --baseline takes a positive number of seconds (finite, > 0), got 'nan'"),
    (["gameday", "latency", "--users", "0"],
     "pgproof: --users takes a positive whole number (>= 1), got '0'"),
    (["gameday", "latency", "--users", "-3"],
     "pgproof: --users takes a positive whole number (>= 1), got '-3'"),
    (["lab", "up", "--timeout", "0"],
     "pgproof: --timeout takes a positive number of seconds (finite, > 0), got '0'"),
])
def test_numbers_on_the_command_line(tmp_path: Path, args: list[str], sentence: str) -> None:
    """Refused by the parser, before a config is read or Locust started (--baseline -5 started it)."""
    line = one_error(pgproof(*args, "--reports" if args[0] == "gameday" else "--lab-dir",
                             str(tmp_path / "r"), cwd=tmp_path))
    assert line.startswith(sentence + " (`pgproof "), line
    untouched(tmp_path / "r")


@pytest.mark.slow
def test_empty_control_selects_nothing_instead_of_everything(tmp_path: Path) -> None:
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text(PG)
    for bad in ("", ",", " , "):
        line = one_error(pgproof("check", "--target", "staging", "--config", str(cfg), "--control",
                                 bad, "--reports", str(tmp_path / "r"), cwd=tmp_path))
        assert line.startswith("pgproof: --control: no control ID given"), line
    untouched(tmp_path / "r")


@pytest.mark.slow
@pytest.mark.parametrize(("table", "field", "value"), [
    ("chaos", "duration_s", "inf"), ("chaos", "duration_s", "nan"), ("chaos", "duration_s", "0"),
    ("chaos", "baseline_s", "-1"), ("chaos", "load_users", "0"), ("thresholds", "rto_budget_s", "inf"),
    ("thresholds", "rto_budget_s", "-inf"), ("thresholds", "recovery_budget_s", "nan"),
    ("thresholds", "cpu_alarm_max_pct", "inf"),
])
def test_numbers_in_the_config(tmp_path: Path, table: str, field: str, value: str) -> None:
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text(PG + f"[targets.staging.{table}]\n{field} = {value}\n")
    with pytest.raises(ConfigError) as err:
        load_target("staging", cfg)
    assert str(err.value).startswith(f"{cfg}: targets.staging.{table}.{field}: "), err.value
    line = one_error(pgproof("gameday", "latency", "--target", "staging", "--config", str(cfg),
                             "--reports", str(tmp_path / "r"), cwd=tmp_path))
    assert line == f"pgproof: {err.value}"
    untouched(tmp_path / "r")


# -- the config file ---------------------------------------------------------------------------
@pytest.mark.slow
def test_config_that_is_a_directory_not_utf8_or_nottoml_value(tmp_path: Path) -> None:
    cases = {"dir.toml": (None, "is a directory, not a config file"),
             "latin1.toml": ('[targets.staging]\nenvironment = "Z\xfcrich"\n'.encode("latin-1"),
                             "not UTF-8 text (byte 34: b'\\xfc'); save the file as UTF-8"),
             "plain.toml": (b"this is not toml\n", "not valid TOML: ")}
    for name, (body, want) in cases.items():
        path = tmp_path / name
        if body is None:
            path.mkdir()
        else:
            path.write_bytes(body)
        for cmd in (["check"], ["doctor"], ["gameday", "latency", "--dry-run"]):
            line = one_error(pgproof(*cmd, "--target", "staging", "--config", str(path),
                                     *(["--reports", str(tmp_path / "r")] if cmd[0] != "doctor"
                                       else []), cwd=tmp_path))
            assert line.startswith(f"pgproof: {path}: {want}"), (cmd, line)
    untouched(tmp_path / "r")


@pytest.mark.slow
def test_unreadable_config_as_a_user_who_cannot_read_it(tmp_path: Path) -> None:
    """Root reads every file, so the CLI runs as ``nobody`` (setpriv) on a file mode 0600."""
    if not ROOT or not shutil.which("setpriv"):
        pytest.skip("needs root to switch to nobody")
    probe = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            str(PGPROOF), "--version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"nobody cannot run this venv's pgproof: {probe.stderr.strip()[:200]}")
    work = Path("/tmp") / f"pgproof-unreadable-{os.getpid()}"
    work.mkdir(mode=0o755)
    try:
        cfg = work / "pgproof.toml"
        cfg.write_text(PG)
        cfg.chmod(0o600)
        r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            str(PGPROOF), "check", "--target", "staging", "--config", str(cfg),
                            "--reports", str(work / "r")], capture_output=True, text=True,
                           cwd=work, env=_env(HOME=str(work)), timeout=120)
        assert one_error(r) == f"pgproof: {cfg}: cannot read the config file: Permission denied (EACCES)"
        untouched(work / "r")
    finally:
        shutil.rmtree(work, ignore_errors=True)


@pytest.mark.slow
def test_target_that_is_not_a_table(tmp_path: Path) -> None:
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text("[targets]\nx = 5\n")
    line = one_error(pgproof("check", "--target", "x", "--config", str(cfg), "--reports",
                             str(tmp_path / "r"), cwd=tmp_path))
    assert line == f"pgproof: {cfg}: targets.x: expected a table [targets.x] of settings, got 5"
    untouched(tmp_path / "r")


# -- target names ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["../../x", "a/b", "..", ".hidden", "-x", "dbä", "a b", "x" * 250])
def test_unsafe_target_names_are_refused_before_any_file(tmp_path: Path, name: str) -> None:
    work = tmp_path / "w"
    work.mkdir()
    shown = repr(name) if len(name) <= 70 else f"{name[:60]!r}... ({len(name)} characters)"
    for cmd in (["check"], ["gameday", "latency"], ["drift"]):
        line = one_error(pgproof(*cmd, f"--target={name}", "--reports", str(work / "reports"),
                                 cwd=work))
        assert line == f"pgproof: target name {shown} is not allowed: {RULE}", line
    assert not any(tmp_path.rglob("*x")) and sorted(p.name for p in tmp_path.iterdir()) == ["w"]
    untouched(work)


def test_unsafe_names_in_the_config_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text(PG + '[targets."../evil".postgres]\nuser = "a"\nwriter = { host = "h", port = 1 }\n')
    line = one_error(pgproof("check", "--target", "staging", "--config", str(cfg), "--reports",
                             str(tmp_path / "r"), cwd=tmp_path))
    assert line == f"pgproof: {cfg}: target name '../evil' is not allowed: {RULE}"
    untouched(tmp_path / "r")


def test_index_pictures_of_similar_names_never_collide() -> None:
    """dbä and dbö (from a history older than the ASCII rule) used to share index-timeline-db_.png."""
    from pgproof.report.index import _safe

    names = ["dbä", "dbö", "db_", "db-", "lab", "a/b", "a_b"]
    files = [_safe(n) for n in names]
    assert len(set(files)) == len(files), files
    assert _safe("lab") == "lab" and all("/" not in f and not f.startswith(".") for f in files)


# -- the reports folder ------------------------------------------------------------------------
def test_reports_that_is_a_file(tmp_path: Path) -> None:
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text(PG)
    (tmp_path / "r").write_text("a file\n")
    line = one_error(pgproof("check", "--target", "staging", "--config", str(cfg), "--reports",
                             str(tmp_path / "r"), cwd=tmp_path))
    assert line == (f"pgproof: --reports {tmp_path / 'r'} is a file, not a directory: name a "
                    "directory (it is created if missing)")
    assert (tmp_path / "r").read_text() == "a file\n"


def test_latest_that_is_a_directory(tmp_path: Path) -> None:
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text(PG)
    (tmp_path / "r" / "latest").mkdir(parents=True)
    for cmd in (["check", "--target", "staging"], ["gameday", "latency", "--target", "staging"]):
        line = one_error(pgproof(*cmd, "--config", str(cfg), "--reports", str(tmp_path / "r"),
                                 cwd=tmp_path))
        assert line == (f"pgproof: {tmp_path / 'r' / 'latest'} is a directory, not pgproof's link "
                        "to the newest run: move it away (pgproof replaces it after every run)")
    assert [p.name for p in (tmp_path / "r").iterdir()] == ["latest"]


def test_reports_on_a_read_only_filesystem(tmp_path: Path, tmpfs) -> None:  # type: ignore[no-untyped-def]
    """Root ignores file modes: a read-only tmpfs mount refuses root too (EROFS)."""
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text(PG)
    ro = tmpfs(tmp_path / "ro", "64k", ro=True)
    line = one_error(pgproof("check", "--target", "staging", "--config", str(cfg), "--reports",
                             str(ro), cwd=tmp_path))
    assert line.startswith(f"pgproof: reports directory is not writable: cannot write {ro}/"), line
    assert line.endswith(": Read-only file system (EROFS)"), line
    line = one_error(pgproof("check", "--target", "staging", "--config", str(cfg), "--reports",
                             str(ro / "sub"), cwd=tmp_path))
    assert line == (f"pgproof: cannot create the reports directory {ro / 'sub'}: Read-only file "
                    "system (EROFS)")


def test_an_oserror_escaping_a_command_is_one_sentence(tmp_path: Path) -> None:
    """drift reading a history.jsonl that is a directory: not a traceback with exit 1."""
    (tmp_path / "r" / "history.jsonl").mkdir(parents=True)
    line = one_error(pgproof("drift", "--target", "lab", "--reports", str(tmp_path / "r"),
                             cwd=tmp_path))
    assert line == (f"pgproof: cannot use {tmp_path / 'r' / 'history.jsonl'}: Is a directory "
                    "(EISDIR)"), line


# -- a full disk during a real check -----------------------------------------------------------
@pytest.fixture
def twin_config(tmp_path: Path) -> Iterator[Path]:
    """moto's HTTP server provisioned like the lab's twin; a target with [aws] only (cheap to check)."""
    with aws_only_config(tmp_path) as cfg:
        yield cfg


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["pgproof check", "pytest suites"])
def test_full_disk_during_a_check_leaves_no_half_run(tmp_path: Path, twin_config: Path,
                                                     tmpfs, runner: str) -> None:  # type: ignore[no-untyped-def]
    """200 KB of reports space: the check's files do not fit. Before: a traceback (exit 1/3),
    findings.ocsf.json truncated to invalid JSON, and `latest` pointing at the half run."""
    small = tmpfs(tmp_path / "small", "200k")
    prev = small / "20260101T000000Z-ci"  # a complete earlier run that `latest` points at
    prev.mkdir()
    (prev / "results.json").write_text('{"target": "ci", "exit_code": 0}')
    (small / "latest").symlink_to(prev.name)
    history = json.dumps({"at": "2026-01-01T00:00:00+00:00", "target": "ci", "dir": prev.name}) + "\n"
    (small / "history.jsonl").write_text(history)
    if runner == "pgproof check":
        r = pgproof("check", "--target", "ci", "--config", str(twin_config), "--reports",
                    str(small), cwd=tmp_path)
    else:
        suites = Path(__file__).resolve().parent.parent / "suites"
        r = subprocess.run([sys.executable, "-m", "pytest", str(suites), "--target", "ci",
                            "--pgproof-config", str(twin_config), "--reports", str(small), "-q",
                            "-p", "no:randomly"], capture_output=True, text=True, cwd=tmp_path,
                           env=_env(), timeout=300)
    line = one_error(r)
    print(line)
    assert "No space left on device (ENOSPC)" in line and f"cannot write {small}/" in line, line
    assert "nothing kept of this run" in line, line
    left = sorted(p.relative_to(small).as_posix() for p in small.rglob("*"))
    assert left == ["20260101T000000Z-ci", "20260101T000000Z-ci/results.json", "history.jsonl",
                    "latest"], left  # no half run directory
    assert os.readlink(small / "latest") == prev.name  # still the previous complete run
    assert (small / "history.jsonl").read_text() == history  # no line for a run that is not kept
    for p in small.rglob("*.json"):
        json.loads(p.read_text())


def test_a_report_file_is_replaced_whole_or_not_at_all(tmp_path: Path, tmpfs) -> None:  # type: ignore[no-untyped-def]
    """A file that does not fit leaves the previous one intact, and no temporary file behind."""
    from pgproof import fsio

    small = tmpfs(tmp_path / "s", "64k")
    f = small / "results.json"
    fsio.write_text(f, json.dumps({"old": True}))
    with pytest.raises(fsio.DiskError) as err:
        fsio.write_text(f, json.dumps({"new": "y" * 200_000}))
    assert str(err.value) == f"cannot write {f}: No space left on device (ENOSPC)"
    assert json.loads(f.read_text()) == {"old": True}
    h = small / "history.jsonl"
    fsio.append_line(h, '{"run": 1}')
    with pytest.raises(fsio.DiskError):
        fsio.append_line(h, json.dumps({"run": 2, "pad": "z" * 200_000}))
    assert h.read_text() == '{"run": 1}\n'  # no torn line for the next reader
    assert sorted(p.name for p in small.iterdir()) == ["history.jsonl", "results.json"]
