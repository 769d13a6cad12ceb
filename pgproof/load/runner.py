"""Run Locust in its own process and read back what it measured.

Imported by the test process, so it must never import locust or gevent
(Locust patches the interpreter with gevent at import, which breaks boto3 and
pytest). The load talks to us only through files in its run directory: the
per-process ledger and per-second stats JSONL written by ``pgproof.load.users``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from pgproof import procs, shipped
from pgproof.fsio import DiskError
from pgproof.load.schema import ensure_clock_table, ensure_ledger_table

__all__ = ["LedgerEntry", "LoadProcess", "SecondStats", "ensure_clock_table",
           "ensure_ledger_table", "read_jsonl"]

LOCUSTFILES = shipped.folder("locustfiles")


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


def complete_seconds(rows_by_file: Sequence[Sequence[dict[str, Any]]],
                     live_lag: int = 3) -> list[dict[str, Any]]:
    """Per-second lines of every file, up to the last second every live writer has reported.

    Each worker writes its second a little after it ends; a reader between two
    workers' writes would see a half-counted second that looks like a dip. A
    file whose newest second lags the newest of all by more than ``live_lag``
    seconds is a writer that died: it no longer holds the others back.
    """
    newest = [max((r["t"] for r in rows if not r.get("final")), default=None) for rows in rows_by_file]
    known = [t for t in newest if t is not None]
    if not known:
        return [r for rows in rows_by_file for r in rows]
    top = max(known)
    horizon = min(t for t in known if t >= top - live_lag)
    return [r for rows in rows_by_file for r in rows if r.get("final") or r["t"] <= horizon]


Spawned = Callable[[str, int], None]


def load_env(rate: float) -> dict[str, str]:
    """The load users' pacing (``chaos.load_rate``, tasks/s per user; 0: unpaced)."""
    return {"PGPROOF_LOAD_RATE": f"{rate:g}"} if rate > 0 else {}


class LoadProcess:
    """``python -m locust --headless`` in its own process group, with a clean environment.

    The password travels in ``PGPASSWORD`` (never on the command line or in the
    conninfo JSON). ``stop()`` always ends the whole group: SIGTERM to Locust so
    users finish their transaction (``--stop-timeout``), then SIGKILL to whatever
    is left, forks included.

    ``workers`` > 0: Locust's own distributed engine, a ``--master`` bound to
    127.0.0.1 on a port chosen at start plus that many ``--worker`` processes,
    each in its own process group (its own log, ledger and stats files), all
    stopped and reaped together. The master only counts and merges; the users,
    and so every ledger line and per-second stats line, live in the workers.
    """

    def __init__(self, locustfile: str | Path, conninfo: Mapping[str, Any], run_dir: Path, *,
                 users: int = 10, spawn_rate: float | None = None, run_time: float | None = None,
                 run_id: str | None = None, endpoint: str | None = None, processes: int = 0,
                 workers: int = 0, stop_timeout: float = 5, env: Mapping[str, str] | None = None,
                 extra_args: Sequence[str] = ()) -> None:
        path = Path(locustfile)
        if not path.exists() and (LOCUSTFILES / path.name).exists():
            path = LOCUSTFILES / path.name
        self.locustfile = path.resolve()
        self.run_dir = Path(run_dir)
        self.run_id = run_id or time.strftime("load-%Y%m%dT%H%M%SZ", time.gmtime())
        self.users, self.spawn_rate, self.run_time = users, spawn_rate or users, run_time
        self.stop_timeout, self.processes, self.workers = stop_timeout, processes, workers
        self.master_port: int | None = None
        info = dict(conninfo)
        self._password = info.pop("password", None)
        self._conninfo = info
        self._endpoint, self._extra_env, self._extra_args = endpoint, dict(env or {}), list(extra_args)
        self.log = self.run_dir / "locust.log"
        self.proc: subprocess.Popen[bytes] | None = None  # the master when distributed
        self.worker_procs: list[subprocess.Popen[bytes]] = []
        self.exit_code: int | None = None

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "locust", "-f", str(self.locustfile), "--headless",
                "-u", str(self.users), "-r", str(self.spawn_rate), "--only-summary",
                "--stop-timeout", str(self.stop_timeout), "--exit-code-on-error", "0"]
        if self.run_time is not None:
            argv += ["--run-time", f"{max(1, round(self.run_time))}s"]
        if self.processes:
            argv += ["--processes", str(self.processes)]
        if self.workers:
            # A worker that never connects must not leave the master waiting forever.
            argv += ["--master", "--master-bind-host", "127.0.0.1",
                     "--master-bind-port", str(self.master_port), "--expect-workers", str(self.workers),
                     "--expect-workers-max-wait", "60"]
        return argv + self._extra_args

    def worker_argv(self, master_host: str = "127.0.0.1") -> list[str]:
        """One worker; users, stop timeout and options come from the master when it spawns."""
        return [sys.executable, "-m", "locust", "-f", str(self.locustfile), "--worker",
                "--master-host", master_host, "--master-port", str(self.master_port)]

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

    def start(self, on_spawn: Spawned | None = None) -> LoadProcess:
        """Start Locust (master first, then workers); ``on_spawn(role, pid)`` right after each one,
        so a crash-safe record names every process before the next starts."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        stale = sorted(p.name for p in self.run_dir.glob("*.jsonl"))
        if stale:  # never delete evidence, never mix two runs' files
            raise FileExistsError(f"{self.run_dir} already holds a run ({', '.join(stale[:3])})")
        if self.workers:
            self.master_port = procs.free_ports(1)[0]
        try:
            self.proc = self._spawn(self.argv(), self.log)
            if on_spawn is not None:
                on_spawn("locust master" if self.workers else "locust", self.proc.pid)
            for i in range(1, self.workers + 1):
                w = self._spawn(self.worker_argv(), self.run_dir / f"locust-worker-{i}.log")
                self.worker_procs.append(w)
                if on_spawn is not None:
                    on_spawn(f"locust worker {i}", w.pid)
        except BaseException:
            self.stop()  # a half-started load never outlives the call
            raise
        return self

    def _spawn(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as fh:
            return subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=self.environ(), cwd=self.run_dir, start_new_session=True)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def members(self) -> list[subprocess.Popen[bytes]]:
        """Every process started: the master (or the only Locust) first, then the workers."""
        return ([self.proc] if self.proc else []) + self.worker_procs

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_running(self, timeout: float = 30) -> None:
        """Block until a second with successful requests was recorded (the load is on).

        Locust reports through files in ``run_dir``: when none arrives because that disk is
        full or read-only, say so (``DiskError``), not "no successful requests"."""
        try:
            procs.wait_until(lambda: any(s.ok for s in self.stats()), timeout, "locust",
                             "producing successful requests", log=self.log, pid=self.pid)
        except procs.ComponentError:
            why = disk_problem(self.run_dir, self.log)
            if why:
                raise DiskError(why) from None
            raise

    def wait(self, timeout: float | None = None) -> int:
        """Wait for a ``run_time``-bounded run to end by itself; then clean up the group."""
        assert self.proc is not None, "start() first"
        try:
            self.exit_code = self.proc.wait(timeout)
        finally:
            self.stop()
        return self.exit_code

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM, wait (stop-timeout + margin), then SIGKILL every group. Idempotent.

        Distributed: the master goes first (it tells its workers to stop their users
        and quit, so their last ledger blocks are written); a worker still there
        after the same grace gets its own SIGTERM, then everything is killed.
        """
        if self.proc is None:
            return None
        grace = timeout if timeout is not None else self.stop_timeout + 10
        _terminate(self.proc, grace)
        deadline = time.monotonic() + grace
        for w in self.worker_procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                w.wait(max(0.1, deadline - time.monotonic()))
        for w in self.worker_procs:
            _terminate(w, grace)
        for p in self.members():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(p.pid, signal.SIGKILL)  # forks and stragglers, even if the leader is gone
        for p in self.members():
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(5)
        deadline = time.monotonic() + 5
        while any(group_pids(p.pid) for p in self.members()) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.exit_code = self.proc.returncode
        return self.exit_code

    def __enter__(self) -> LoadProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> list[SecondStats]:
        files = [list(read_jsonl([p])) for p in self.run_dir.glob("stats.*.jsonl")]
        return merge_seconds(complete_seconds(files))

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


LOW_SPACE = 64 * 1024  # a second of stats and a ledger block need a few KiB; less is "full"
_OS_ERROR = re.compile(r"(\w*Error): \[Errno (\d+)\] ([^:\n]+)(?:: '([^'\n]+)')?")


def disk_problem(run_dir: Path, log: Path | None = None) -> str | None:
    """One sentence if the load's files cannot be written in ``run_dir`` (None: the disk is fine)."""
    if log is not None:
        with contextlib.suppress(OSError):
            m = _OS_ERROR.search(log.read_text(errors="replace"))
            if m and int(m.group(2)) in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT):
                code = errno.errorcode[int(m.group(2))]
                return (f"the load could not write its files: cannot write {m.group(4) or run_dir}: "
                        f"{m.group(3)} ({code})")
    try:
        st = os.statvfs(run_dir)
    except OSError:
        return None
    if st.f_bavail * st.f_frsize < LOW_SPACE:
        return (f"the load could not write its files: cannot write {run_dir}: No space left on "
                f"device (ENOSPC, {st.f_bavail * st.f_frsize} bytes free)")
    return None


def _terminate(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM one session leader and wait up to ``grace`` for it to exit."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)


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
