"""Locust (pgproof.load.users) against pgbench on the same insert transaction and client count.

Tells how much of the server a Locust game-day load can actually push, and
what resolution the failover clock achieves while that load runs. Run it
through ``bench/loadgen``; ``--help`` for options.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from statistics import mean
from typing import Any

from pgproof.gameday.clock import FailoverClock
from pgproof.gameday.ledger import verify
from pgproof.lab import procs
from pgproof.load.runner import LoadProcess, ensure_ledger_table
from pgproof.load.schema import LEDGER_INSERT

ROOT = Path(__file__).resolve().parents[1]
PGBENCH = procs.PG_BIN / "pgbench"
PAYLOAD = "x" * 64  # same as pgproof.load.users.PAYLOAD

# The Locust user's transaction, written for pgbench: BEGIN; one ledger row; COMMIT.
PGBENCH_SCRIPT = "\\set seq :seq + 1\nBEGIN;\n{insert};\nCOMMIT;\n".format(
    insert=LEDGER_INSERT.replace("%s, %s, %s, %s", ":run_id, :client_id, :seq, :payload"))


@contextlib.contextmanager
def database(target: str | None, endpoint: str) -> Iterator[dict[str, Any]]:
    if target is None:
        from pgproof.lab.standalone import standalone_postgres

        with standalone_postgres({"max_connections": "100"}) as server:
            yield server.conninfo()
        return
    from pgproof.target import load_target

    t = load_target(target)
    ep = {"writer": None, "pooler": t.postgres.pooler}[endpoint]
    yield t.conninfo(ep)


def libpq_string(conninfo: Mapping[str, Any]) -> str:
    def quote(v: Any) -> str:
        s = str(v).replace("\\", "\\\\").replace("'", "\\'")
        return f"'{s}'"
    return " ".join(f"{k}={quote(v)}" for k, v in conninfo.items() if k != "password")


def run_pgbench(conninfo: Mapping[str, Any], clients: int, duration: int, out: Path) -> float:
    script = out / "ledger_insert.sql"
    script.write_text(PGBENCH_SCRIPT)
    env = procs.clean_env(home=os.environ.get("HOME", "/tmp"))
    if conninfo.get("password"):
        env["PGPASSWORD"] = str(conninfo["password"])
    run_id = time.strftime("bench-pgbench-%Y%m%dT%H%M%SZ", time.gmtime())
    argv = [str(PGBENCH), "-n", "-M", "extended", "-c", str(clients),
            "-j", str(min(clients, os.cpu_count() or 1)), "-T", str(duration),
            "-D", "seq=0", "-D", f"run_id={run_id}", "-D", f"payload={PAYLOAD}",
            "-f", str(script), libpq_string(conninfo)]
    res = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    (out / "pgbench.log").write_text(res.stdout + res.stderr)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", res.stdout)
    if res.returncode != 0 or m is None:
        sys.exit(f"pgbench failed (exit {res.returncode}):\n{res.stderr[-2000:]}")
    return float(m.group(1))


def run_locust(conninfo: Mapping[str, Any], clients: int, duration: int, processes: int,
               out: Path) -> dict[str, Any]:
    load = LoadProcess("ledger.py", conninfo, out / "locust", users=clients, run_time=duration,
                       processes=processes)
    with FailoverClock(conninfo) as clock:
        load.start()
        load.wait(timeout=duration + 60)
    seconds = [s for s in load.stats() if s.users >= clients][1:]
    verdict = verify(conninfo, load.run_id, load.ledger())
    lat = sorted(p.t_acked - p.t_sent for p in clock.probes if p.t_acked is not None)
    gaps = [b.t_sent - a.t_sent for a, b in zip(clock.probes, clock.probes[1:], strict=False)]
    return {
        "tps": mean(s.ok for s in seconds) if seconds else 0.0,
        "seconds": len(seconds), "failures": sum(s.failures for s in seconds),
        "ledger": verdict.counts(),
        "clock": {"resolution_s": clock.resolution(), "probes": len(clock.probes),
                  "median_gap_s": sorted(gaps)[len(gaps) // 2] if gaps else None,
                  "p95_write_s": lat[int(0.95 * (len(lat) - 1))] if lat else None,
                  "failed": sum(1 for p in clock.probes if not p.ok)},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/loadgen", description=__doc__.splitlines()[0])
    ap.add_argument("--target", help="pgproof target (default: a throwaway standalone PostgreSQL)")
    ap.add_argument("--endpoint", choices=("writer", "pooler"), default="writer")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--duration", type=int, default=15, help="seconds per tool")
    ap.add_argument("--processes", type=int, default=0, help="Locust --processes (0: one process)")
    ap.add_argument("--out", type=Path, help="result directory (default reports/loadgen-<UTC>)")
    args = ap.parse_args(argv)
    out = args.out or ROOT / "reports" / time.strftime("loadgen-%Y%m%dT%H%M%SZ", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    with database(args.target, args.endpoint) as conninfo:
        ensure_ledger_table(conninfo)
        pgb = run_pgbench(conninfo, args.clients, args.duration, out)
        loc = run_locust(conninfo, args.clients, args.duration, args.processes, out)
    result = {"clients": args.clients, "duration_s": args.duration, "processes": args.processes,
              "target": args.target or "standalone", "pgbench_tps": pgb, "locust": loc,
              "ratio": loc["tps"] / pgb if pgb else None}
    (out / "result.json").write_text(json.dumps(result, indent=2))
    clock = loc["clock"]
    print(f"transaction: BEGIN; INSERT one ledger row; COMMIT  ({args.clients} clients, "
          f"{args.duration} s each, target {result['target']})")
    print(f"pgbench -M extended : {pgb:9.1f} tx/s")
    print(f"locust ({args.processes or 1} proc)     : {loc['tps']:9.1f} tx/s  "
          f"(ratio {result['ratio']:.2f}, {loc['failures']} failures, "
          f"ledger lost {loc['ledger']['lost']} of {loc['ledger']['acknowledged']})")
    print(f"failover clock under that load: resolution {clock['resolution_s']:.3f} s "
          f"(median gap {clock['median_gap_s']:.3f} s + p95 write {clock['p95_write_s']:.3f} s, "
          f"{clock['failed']} failed of {clock['probes']})")
    print(f"details: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
