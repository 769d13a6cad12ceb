"""Run Locust in its own process and read back what it measured.

Imported by the test process, so it must never import locust or gevent
(Locust patches the interpreter with gevent at import, which breaks boto3 and
pytest). The load talks to us only through files in its run directory: the
per-process ledger and per-second stats JSONL written by ``pgproof.load.users``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from pgproof.lab import procs
from pgproof.load.schema import ensure_clock_table, ensure_ledger_table

__all__ = ["LedgerEntry", "LoadProcess", "SecondStats", "ensure_clock_table",
           "ensure_ledger_table", "read_jsonl"]

LOCUSTFILES = Path(__file__).resolve().parents[2] / "locustfiles"


@dataclass(frozen=True)
class SecondStats:
    """One wall-clock second ``[t, t+1)`` summed over all load processes."""

    t: float
    requests: int
    failures: int
    p95_ms: float | None  # the worst process's p95 when several processes ran
    users: int

    @property
    def ok(self) -> int:
        """Successful requests: failed connects during an outage must not look like throughput."""
        return self.requests - self.failures


@dataclass(frozen=True)
class LedgerEntry:
    """One commit attempt of one writer: ``acknowledged``, ``failed`` or ``unknown``."""

    run_id: str
    writer: int
    seq: int
    status: str
    t_start: float
    t_end: float
    error: str | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.writer, self.seq)


def read_jsonl(paths: Sequence[Path]) -> Iterator[dict[str, Any]]:
    """Lines of the files; a torn last line (writer still running or killed) is skipped."""
    for path in sorted(paths):
        with path.open() as fh:
            for line in fh:
                with contextlib.suppress(json.JSONDecodeError):
                    yield json.loads(line)


def merge_seconds(rows: Sequence[dict[str, Any]]) -> list[SecondStats]:
    """Per-process per-second lines -> one ``SecondStats`` per second, in time order."""
    merged: dict[float, SecondStats] = {}
    for r in rows:
        if r.get("final"):
            continue
        cur = merged.get(r["t"])
        p95 = r.get("p95_ms")
        if cur is None:
            merged[r["t"]] = SecondStats(r["t"], r["requests"], r["failures"], p95, r["users"])
        else:
            worst = max((x for x in (cur.p95_ms, p95) if x is not None), default=None)
            merged[r["t"]] = SecondStats(cur.t, cur.requests + r["requests"],
                                         cur.failures + r["failures"], worst, cur.users + r["users"])
    return [merged[t] for t in sorted(merged)]


class LoadProcess:
    """``python -m locust --headless`` in its own process group, with a clean environment.

    The password travels in ``PGPASSWORD`` (never on the command line or in the
    conninfo JSON). ``stop()`` always ends the whole group: SIGTERM to Locust so
    users finish their transaction (``--stop-timeout``), then SIGKILL to whatever
    is left, forks included.
    """

    def __init__(self, locustfile: str | Path, conninfo: Mapping[str, Any], run_dir: Path, *,
                 users: int = 10, spawn_rate: float | None = None, run_time: float | None = None,
                 run_id: str | None = None, endpoint: str | None = None, processes: int = 0,
                 stop_timeout: float = 5, env: Mapping[str, str] | None = None,
                 extra_args: Sequence[str] = ()) -> None:
        path = Path(locustfile)
        if not path.exists() and (LOCUSTFILES / path.name).exists():
            path = LOCUSTFILES / path.name
        self.locustfile = path.resolve()
        self.run_dir = Path(run_dir)
        self.run_id = run_id or time.strftime("load-%Y%m%dT%H%M%SZ", time.gmtime())
        self.users, self.spawn_rate, self.run_time = users, spawn_rate or users, run_time
        self.stop_timeout, self.processes = stop_timeout, processes
        info = dict(conninfo)
        self._password = info.pop("password", None)
        self._conninfo = info
        self._endpoint, self._extra_env, self._extra_args = endpoint, dict(env or {}), list(extra_args)
        self.log = self.run_dir / "locust.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "locust", "-f", str(self.locustfile), "--headless",
                "-u", str(self.users), "-r", str(self.spawn_rate), "--only-summary",
                "--stop-timeout", str(self.stop_timeout), "--exit-code-on-error", "0"]
        if self.run_time is not None:
            argv += ["--run-time", f"{max(1, round(self.run_time))}s"]
        if self.processes:
            argv += ["--processes", str(self.processes)]
        return argv + self._extra_args

    def environ(self) -> dict[str, str]:
        """What the Locust process sees: no inherited PG*/AWS* variables, only ours."""
        env = procs.clean_env(home=os.environ.get("HOME", "/tmp"), PYTHONUNBUFFERED="1",
                              PGPROOF_LOAD_CONNINFO=json.dumps(self._conninfo, default=str),
                              PGPROOF_RUN_ID=self.run_id,
                              PGPROOF_LEDGER_FILE=str(self.run_dir / "ledger.jsonl"),
                              PGPROOF_STATS_FILE=str(self.run_dir / "stats.jsonl"))
        if self._password:
            env["PGPASSWORD"] = str(self._password)
        if self._endpoint:
            env["PGPROOF_LOAD_ENDPOINT"] = self._endpoint
        env.update(self._extra_env)
        return env

    def start(self) -> LoadProcess:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        stale = sorted(p.name for p in self.run_dir.glob("*.jsonl"))
        if stale:  # never delete evidence, never mix two runs' files
            raise FileExistsError(f"{self.run_dir} already holds a run ({', '.join(stale[:3])})")
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen(self.argv(), stdout=fh, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=self.environ(),
                                         cwd=self.run_dir, start_new_session=True)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_running(self, timeout: float = 30) -> None:
        """Block until a second with successful requests was recorded (the load is on)."""
        procs.wait_until(lambda: any(s.ok for s in self.stats()), timeout, "locust",
                         "producing successful requests", log=self.log, pid=self.pid)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for a ``run_time``-bounded run to end by itself; then clean up the group."""
        assert self.proc is not None, "start() first"
        try:
            self.exit_code = self.proc.wait(timeout)
        finally:
            self.stop()
        return self.exit_code

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM, wait (stop-timeout + margin), then SIGKILL the whole group. Idempotent."""
        if self.proc is None:
            return None
        pgid = self.proc.pid  # session leader: its pid is the group id
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout if timeout is not None else self.stop_timeout + 10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)  # forks and stragglers, even if the leader is gone
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        deadline = time.monotonic() + 5
        while group_pids(pgid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.exit_code = self.proc.returncode
        return self.exit_code

    def __enter__(self) -> LoadProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> list[SecondStats]:
        return merge_seconds(list(read_jsonl(list(self.run_dir.glob("stats.*.jsonl")))))

    def final_stats(self) -> dict[str, Any] | None:
        """Locust's own totals, written when it quit (the last one written wins)."""
        finals = [r for r in read_jsonl(list(self.run_dir.glob("stats.*.jsonl"))) if r.get("final")]
        return max(finals, key=lambda r: r["t"]) if finals else None

    def ledger(self) -> list[LedgerEntry]:
        return [LedgerEntry(**r) for r in read_jsonl(list(self.run_dir.glob("ledger.*.jsonl")))]

    def throughput(self, skip: int = 1) -> float:
        """Median successful transactions per second at full user count (first ``skip`` s dropped)."""
        seconds = [s for s in self.stats() if s.users >= self.users][skip:]
        return float(median(s.ok for s in seconds)) if seconds else 0.0


def group_pids(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found
