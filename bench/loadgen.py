"""Locust (pgproof.load.users) against pgbench on the same insert transaction and client count.

Tells how much of the server a Locust game-day load can actually push, and
what resolution the failover clock achieves while that load runs. Both tools
do equal work on an equal protocol: BEGIN; one ledger row; COMMIT, all
prepared in one pipeline (``--mode pipeline``: pgbench ``-M prepared`` with
``\\startpipeline``, Locust with ``PGPROOF_LOAD_PIPELINE=1``), prepared in three
round trips (``--mode prepared``, what game days send: pgbench
``-M prepared``) or unnamed (``--mode extended``: pgbench ``-M extended``,
Locust with ``PGPROOF_LOAD_PREPARE=0``). ``--pgbench-mode`` (repeatable) sets
pgbench's protocol apart from Locust's: ``--mode pipeline --pgbench-mode prepared
--pgbench-mode pipeline`` measures pgproof's writer at its best against the
transaction as pgbench runs it and, in the same run, against pgbench pipelined
too. Rounds alternate pgbench and Locust; each ratio is of the medians. CPU per transaction is each tool's utime+stime from
/proc/<pid>/stat over the steady middle of its run, over its tx/s. Run it
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
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from statistics import mean, median
from typing import Any

from pgproof import procs
from pgproof.gameday.clock import FailoverClock
from pgproof.gameday.ledger import verify
from pgproof.load.runner import LoadProcess, ensure_ledger_table, group_pids
from pgproof.load.schema import LEDGER_INSERT

ROOT = Path(__file__).resolve().parents[1]
PGBENCH = procs.PG_BIN / "pgbench"
PAYLOAD = "x" * 64  # same as pgproof.load.users.PAYLOAD

# The Locust user's transaction, written for pgbench: BEGIN; one ledger row; COMMIT.
PGBENCH_SCRIPT = "\\set seq :seq + 1\nBEGIN;\n{insert};\nCOMMIT;\n".format(
    insert=LEDGER_INSERT.replace("%s, %s, %s, %s", ":run_id, :client_id, :seq, :payload"))
# The same three statements sent as one pipeline (pgbench >= 14).
PGBENCH_PIPELINE = PGBENCH_SCRIPT.replace("BEGIN;", "\\startpipeline\nBEGIN;").replace(
    "COMMIT;\n", "COMMIT;\n\\endpipeline\n")
# What each --mode means for each tool: pgbench -M, pgbench script, Locust environment.
MODES: dict[str, tuple[str, str, dict[str, str]]] = {
    "pipeline": ("prepared", PGBENCH_PIPELINE, {"PGPROOF_LOAD_PIPELINE": "1"}),
    "prepared": ("prepared", PGBENCH_SCRIPT, {}),
    "extended": ("extended", PGBENCH_SCRIPT, {"PGPROOF_LOAD_PREPARE": "0"}),
}


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


class CpuWindow(threading.Thread):
    """Cores used by a process group between ``skip`` s after start and 1 s before the end."""

    def __init__(self, pgid: int, duration: float, skip: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.pgid, self.skip, self.length = pgid, skip, max(1.0, duration - skip - 1.0)
        self.cores: float | None = None
        self.start()

    def run(self) -> None:
        time.sleep(self.skip)
        c0, t0 = group_cpu(self.pgid), time.monotonic()
        time.sleep(self.length)
        c1, t1 = group_cpu(self.pgid), time.monotonic()
        self.cores = (c1 - c0) / (t1 - t0)


def group_cpu(pgid: int) -> float:
    """utime + stime (all threads) of the live processes of a group, in seconds."""
    total = 0
    for pid in group_pids(pgid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def us_per_tx(cores: float | None, tps: float) -> float | None:
    return round(cores / tps * 1e6, 1) if cores is not None and tps else None


def run_pgbench(conninfo: Mapping[str, Any], clients: int, duration: int, mode: str,
                out: Path) -> dict[str, Any]:
    protocol, text, _ = MODES[mode]
    script = out / "ledger_insert.sql"
    script.write_text(text)
    env = procs.clean_env(home=os.environ.get("HOME", "/tmp"))
    if conninfo.get("password"):
        env["PGPASSWORD"] = str(conninfo["password"])
    run_id = time.strftime("bench-pgbench-%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"
    run_id += f"-{time.monotonic_ns()}"
    argv = [str(PGBENCH), "-n", "-M", protocol, "-c", str(clients),
            "-j", str(min(clients, os.cpu_count() or 1)), "-T", str(duration),
            "-D", "seq=0", "-D", f"run_id={run_id}", "-D", f"payload={PAYLOAD}",
            "-f", str(script), libpq_string(conninfo)]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    cpu = CpuWindow(proc.pid, duration)
    stdout, stderr = proc.communicate()
    cpu.join(5)
    with (out / "pgbench.log").open("a") as fh:
        fh.write(stdout + stderr)
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", stdout)
    if proc.returncode != 0 or m is None:
        sys.exit(f"pgbench failed (exit {proc.returncode}):\n{stderr[-2000:]}")
    tps = float(m.group(1))
    return {"tps": tps, "cores": cpu.cores, "cpu_us_per_tx": us_per_tx(cpu.cores, tps),
            "load_avg": round(os.getloadavg()[0], 2)}


def run_locust(conninfo: Mapping[str, Any], clients: int, duration: int, processes: int,
               mode: str, out: Path) -> dict[str, Any]:
    env = dict(MODES[mode][2])
    load = LoadProcess("ledger.py", conninfo, out, users=clients, run_time=duration,
                       processes=processes, env=env)
    with FailoverClock(conninfo) as clock:
        started = time.monotonic()
        load.start()
        assert load.pid is not None
        # Locust's own start (imports, spawning users) is not load: skip it like pgbench's connects.
        load.wait_running(timeout=60)
        cpu = CpuWindow(load.pid, duration - (time.monotonic() - started), skip=1.0)
        load.wait(timeout=duration + 60)
        cpu.join(5)
    seconds = [s for s in load.stats() if s.users >= clients][1:]
    verdict = verify(conninfo, load.run_id, load.ledger())
    lat = sorted(p.t_acked - p.t_sent for p in clock.probes if p.t_acked is not None)
    gaps = [b.t_sent - a.t_sent for a, b in zip(clock.probes, clock.probes[1:], strict=False)]
    tps = mean(s.ok for s in seconds) if seconds else 0.0
    return {
        "tps": tps, "cores": cpu.cores, "cpu_us_per_tx": us_per_tx(cpu.cores, tps),
        "load_avg": round(os.getloadavg()[0], 2), "run_id": load.run_id,
        "seconds": len(seconds), "failures": sum(s.failures for s in seconds),
        "ledger": verdict.counts(),
        "clock": {"resolution_s": clock.resolution(), "probes": len(clock.probes),
                  "median_gap_s": sorted(gaps)[len(gaps) // 2] if gaps else None,
                  "p95_write_s": lat[int(0.95 * (len(lat) - 1))] if lat else None,
                  "failed": sum(1 for p in clock.probes if not p.ok)},
    }


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench/loadgen", description=__doc__.splitlines()[0])
    ap.add_argument("--target", help="pgproof target (default: a throwaway standalone PostgreSQL)")
    ap.add_argument("--endpoint", choices=("writer", "pooler"), default="writer")
    ap.add_argument("--mode", choices=tuple(MODES),
                    help="the same protocol for both tools: prepared in one pipeline, prepared"
                         " in three round trips, or unnamed (default: prepared; extended for"
                         " --endpoint pooler)")
    ap.add_argument("--pgbench-mode", action="append", choices=tuple(MODES), default=None,
                    help="pgbench's protocol, repeatable (default: the same as --mode)")
    ap.add_argument("--clients", type=positive, default=20)
    ap.add_argument("--duration", type=positive, default=15, help="seconds per tool and round")
    ap.add_argument("--rounds", type=positive, default=3, help="alternating runs of each tool")
    ap.add_argument("--processes", type=int, default=0, help="Locust --processes (0: one process)")
    ap.add_argument("--out", type=Path, help="result directory (default reports/loadgen-<UTC>)")
    args = ap.parse_args(argv)
    mode = args.mode or ("extended" if args.endpoint == "pooler" else "prepared")
    if args.duration < 5:
        ap.error(f"--duration {args.duration}: at least 5 s, so each run has a steady middle")
    out = args.out or ROOT / "reports" / time.strftime("loadgen-%Y%m%dT%H%M%SZ", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    pg_modes = list(dict.fromkeys(args.pgbench_mode or [mode]))
    pgbs: dict[str, list[dict[str, Any]]] = {m: [] for m in pg_modes}
    locs: list[dict[str, Any]] = []
    with database(args.target, args.endpoint) as conninfo:
        ensure_ledger_table(conninfo)
        for r in range(args.rounds):
            for m in pg_modes:
                pgbs[m].append(run_pgbench(conninfo, args.clients, args.duration, m, out))
            locs.append(run_locust(conninfo, args.clients, args.duration, args.processes, mode,
                                   out / f"locust-{r + 1}"))
    loc_tps = median(loc["tps"] for loc in locs)
    pgb_tps = {m: median(p["tps"] for p in runs) for m, runs in pgbs.items()}
    ratios = {m: loc_tps / tps if tps else None for m, tps in pgb_tps.items()}
    result = {"clients": args.clients, "duration_s": args.duration, "rounds": args.rounds,
              "mode": mode, "pgbench_modes": pg_modes, "processes": args.processes,
              "target": args.target or "standalone", "pgbench": pgbs, "locust": locs,
              "pgbench_tps": pgb_tps, "locust_tps": loc_tps, "ratio": ratios,
              "lost": sum(loc["ledger"]["lost"] for loc in locs)}
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(f"transaction: BEGIN; INSERT one ledger row; COMMIT  ({args.clients} clients, "
          f"{args.duration} s, {args.rounds} alternating rounds, target {result['target']})")
    for r, loc in enumerate(locs):
        led = loc["ledger"]
        for m in pg_modes:
            p = pgbs[m][r]
            print(f"round {r + 1}: pgbench ({m}) {p['tps']:8.1f} tx/s {fmt_cpu(p)}  load {p['load_avg']}")
        print(f"round {r + 1}: locust ({mode}, {args.processes or 1} proc) {loc['tps']:8.1f} tx/s "
              f"{fmt_cpu(loc)}  load {loc['load_avg']}  ledger lost {led['lost']} of "
              f"{led['acknowledged']} acknowledged, {loc['failures']} failures")
    for m in pg_modes:
        ratio = ratios[m]
        print(f"median: locust ({mode}) {loc_tps:.1f} tx/s vs pgbench ({m}) {pgb_tps[m]:.1f} tx/s: "
              f"ratio {ratio:.2f}" if ratio is not None else f"median: pgbench ({m}) ran no tx")
    clock = locs[-1]["clock"]
    print(f"failover clock under that load: resolution {clock['resolution_s']:.3f} s "
          f"(median gap {clock['median_gap_s']:.3f} s + p95 write {clock['p95_write_s']:.3f} s, "
          f"{clock['failed']} failed of {clock['probes']})")
    print(f"details: {out}")
    return 1 if result["lost"] else 0


def fmt_cpu(run: Mapping[str, Any]) -> str:
    us = run["cpu_us_per_tx"]
    return f"({us:.0f} us CPU/tx, {run['cores']:.2f} cores)" if us is not None else "(cpu n/a)"


if __name__ == "__main__":
    sys.exit(main())
