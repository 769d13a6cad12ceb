"""Per-process ledger and per-second stats files of a Locust process.

Plain Python (no gevent, no psycopg), so the file formats can be tested on
their own. ``pgproof.load.runner`` reads what this writes.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import IO, Any


def per_process_path(path: str | Path, pid: int | None = None) -> Path:
    """``ledger.jsonl`` -> ``ledger.<pid>.jsonl``: master, workers and forks never share a file."""
    p = Path(path)
    return p.with_name(f"{p.stem}.{pid or os.getpid()}{p.suffix or '.jsonl'}")


# Ledger lines are kept in memory and written in blocks: one write() per block, not per
# transaction (a syscall per commit was a visible share of the load's CPU). A block goes
# out when it is full, every second (the stats ticker) and at quit.
LEDGER_BLOCK = 256


def _path_of(var: str) -> Path | None:
    path = os.environ.get(var)
    if not path:
        return None
    p = per_process_path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def _open_per_process(var: str) -> IO[str] | None:
    p = _path_of(var)
    # Line-buffered: readers never see half lines of a second that is complete.
    return p.open("a", buffering=1) if p is not None else None


def _open_ledger(var: str) -> IO[bytes] | None:
    p = _path_of(var)
    # Unbuffered binary: each block is exactly one write() of whole lines.
    return p.open("ab", buffering=0) if p is not None else None


class Recorder:
    """This process's ledger and per-second stats. One per pid: ``--processes`` forks after import."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.ledger = _open_ledger("PGPROOF_LEDGER_FILE")
        self.pending: list[str] = []  # ledger lines not yet written
        self._run_json: dict[str, str] = {}
        self.stats = _open_per_process("PGPROOF_STATS_FILE")
        self.buckets: dict[int, list[tuple[float, bool]]] = {}
        self.next_second: int | None = None
        self.ticker: Any = None  # the greenlet writing one stats line per second

    def request(self, response_time: float, failed: bool) -> None:
        self.buckets.setdefault(int(time.time()), []).append((response_time, failed))

    def attempt(self, run_id: str, writer: int, seq: int, status: str, t_start: float, t_end: float,
                error: str | None) -> None:
        """One ledger line (same JSON as ``json.dumps`` of the entry), written with its block."""
        if self.ledger is None:
            return
        rid = self._run_json.get(run_id)
        if rid is None:
            rid = self._run_json[run_id] = json.dumps(run_id)
        err = f', "error": {json.dumps(error)}' if error else ""
        self.pending.append(f'{{"run_id": {rid}, "writer": {writer:d}, "seq": {seq:d}, '
                            f'"status": {json.dumps(status)}, "t_start": {t_start:.6f}, '
                            f'"t_end": {t_end:.6f}{err}}}\n')
        if len(self.pending) >= LEDGER_BLOCK:
            self.flush()

    def flush(self) -> None:
        """Write the pending ledger lines in one block."""
        if self.ledger is not None and self.pending:
            block, self.pending = "".join(self.pending), []
            self.ledger.write(block.encode())

    def emit_seconds(self, until: int, users: int) -> None:
        """Write one line per complete second before ``until``, zero-request seconds included."""
        self.flush()
        if self.next_second is None:
            return
        for second in range(self.next_second, until):
            bucket = self.buckets.pop(second, [])
            times = sorted(rt for rt, _ in bucket)
            p95 = times[math.ceil(0.95 * len(times)) - 1] if times else None
            line = {"t": second, "requests": len(bucket),
                    "failures": sum(1 for _, f in bucket if f),
                    "p95_ms": round(p95, 3) if p95 is not None else None, "users": users}
            if self.stats is not None:
                self.stats.write(json.dumps(line) + "\n")
        self.next_second = max(self.next_second, until)
        for stale in [s for s in self.buckets if s < self.next_second]:
            del self.buckets[stale]

    def final(self, environment: Any) -> None:
        """Totals from Locust's own stats (on a master: all workers' merged)."""
        if self.stats is None:
            return
        total = environment.stats.total
        by_name = {f"{e.method} {e.name}": {
            "requests": e.num_requests, "failures": e.num_failures,
            "p95_ms": e.get_response_time_percentile(0.95)} for e in environment.stats.entries.values()}
        self.stats.write(json.dumps({
            "final": True, "t": time.time(), "requests": total.num_requests,
            "failures": total.num_failures, "rps": round(total.total_rps, 3),
            "avg_ms": round(total.avg_response_time, 3),
            "p50_ms": total.get_response_time_percentile(0.5),
            "p95_ms": total.get_response_time_percentile(0.95), "by_name": by_name,
        }) + "\n")

    def close(self) -> None:
        self.flush()
        for fh in (self.ledger, self.stats):
            if fh is not None:
                fh.close()
        self.ledger = self.stats = None


_recorder: Recorder | None = None


def recorder() -> Recorder:
    """This process's recorder, created on first use (after any fork)."""
    global _recorder
    if _recorder is None:  # no getpid() per call: a fork drops the parent's (below)
        _recorder = Recorder()
    return _recorder


def _forget_after_fork() -> None:
    global _recorder
    _recorder = None  # the child's first use opens its own <stem>.<pid> files


os.register_at_fork(after_in_child=_forget_after_fork)
