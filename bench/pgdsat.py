"""bench/pgdsat: run HexaCluster's pgdsat (the CIS PostgreSQL benchmark as a shell tool) on a lab node.

pgdsat must run on the database host as the PostgreSQL superuser's OS account: it reads
PGDATA, pg_hba.conf, /etc/shadow-style facts and `ps` output besides SQL. This script
finds the lab node (the Patroni leader by default) from `--lab-dir`, runs pgdsat there as
the `postgres` OS user over the node's Unix socket (peer authentication, no password),
keeps pgdsat's own text report, and writes its verdicts as JSON:

    {"tool": "pgdsat", "version": "2.0", "node": ..., "role": ..., "counts": {...},
     "items": [{"id": "3.1.22", "title": ..., "manual": false, "status": "FAILURE",
                "pgdsat_own": false, "cis17": "3.1.22", "cis_level": 1, "messages": ["WARNING: ..."]}]}

`status` is pgdsat's summary verdict: SUCCESS, FAILURE, or MANUAL (a manual item pgdsat did
not fail). Section headings (1..8) are not items. `pgdsat_own` is pgdsat's "(*)" mark (a
check it adds to the benchmark). `cis17` is the CIS PostgreSQL 17 Benchmark v1.0.0
recommendation the item judges (null when the benchmark has no such number, e.g. 4.10 or
5.7-5.12, or the number means another recommendation there: 6.9, 6.11); `cis_level` its
profile level (every recommendation of v1.0.0 is Level 1).

pgdsat is GPLv3 and is not vendored: pass `--pgdsat DIR`, a checkout or release tree of
https://github.com/HexaCluster/pgdsat (tested with v2.0, commit 227c8bb), or set
PGDSAT_HOME; the default is /opt/pgproof/pgdsat-2.0. It is on no Debian, PyPI or npm
package. Its Perl needs only Debian's perl and perl-modules-5.36 (bignum, Math::BigInt,
Getopt::Long, POSIX); it also calls psql, pg_config, systemctl, lsblk and curl.

Exit status: 0 when pgdsat ran and its report was parsed (whatever it judged),
2 when it could not run (bad input, no lab, pgdsat missing or crashed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pgproof.lab import backup  # noqa: E402
from pgproof.lab.state import NODES, LabState  # noqa: E402
from pgproof.procs import PG_BIN  # noqa: E402

DEFAULT_PGDSAT = Path(os.environ.get("PGDSAT_HOME", "/opt/pgproof/pgdsat-2.0"))
PG_OS_USER = "postgres"
STATUSES = ("SUCCESS", "FAILURE", "MANUAL")
# CIS PostgreSQL 17 Benchmark v1.0.0: every recommendation's profile is Level 1
# ("PostgreSQL" or "PostgreSQL on Linux"); there is no Level 2 item in 15, 16 or 17.
CIS_LEVEL = 1
# Its recommendation numbers (71), plus the 3.1 / 3.1.1 headings pgdsat also lists.
CIS17_IDS = frozenset([
    *(f"1.{n}" for n in range(1, 8)), *(f"2.{n}" for n in range(1, 5)),
    "3.1", "3.1.1", *(f"3.1.{n}" for n in range(2, 27)), "3.2",
    *(f"4.{n}" for n in range(1, 10)), *(f"5.{n}" for n in range(1, 7)),
    *(f"6.{n}" for n in range(1, 12)), *(f"7.{n}" for n in range(1, 6)), *(f"8.{n}" for n in range(1, 4)),
])
# Same number, another recommendation: CIS 17 6.9 is "TLSv1.3, or later, is configured" (15/16:
# "TLSv1.0 and TLSv1.1 disabled"), pgdsat 6.9 looks for pgcrypto/pgsodium being available;
# CIS 6.11 is "pgcrypto installed and configured", pgdsat 6.11 looks for an anonymizer.
CIS17_OTHER_TOPIC = frozenset({"6.9", "6.11"})

SUMMARY_RE = re.compile(r"^(?P<id>\d+(?:\.\d+)*) - (?P<title>.*?)(?P<manual> \(Manual\))?"
                        r"(?: => (?P<status>SUCCESS|FAILURE))?$")
DETAIL_HEAD_RE = re.compile(r"^\s*# (?P<id>\d+(?:\.\d+)*) - ")
FOOTER = "(*) Check not part of the CIS Benchmark"
DETAIL_MSG_RE = re.compile(r"^\s*(?P<sev>WARNING|ERROR|CRITICAL|INFO): (?P<msg>.*)$")


class CannotRun(Exception):
    """pgdsat could not be run or its report could not be read: exit 2, one sentence."""


def parse_report(text: str) -> list[dict[str, object]]:
    """Turn pgdsat's text report (`-f text`) into one dict per numbered item.

    The summary table gives the verdicts; the detailed part gives each item's messages
    and the "(*)" mark of checks that are pgdsat's own, not the benchmark's.
    """
    if "# Summary Table of security checks" not in text or "# Detailled security assessment" not in text:
        raise CannotRun("the pgdsat output is not a text report (no summary table)")
    summary, details = text.split("# Detailled security assessment", 1)
    items: dict[str, dict[str, object]] = {}
    for line in summary.splitlines():
        m = SUMMARY_RE.match(line.strip())
        if not m or "." not in m["id"]:  # "1 - Installation and Patches" is a section heading
            continue
        manual = bool(m["manual"])
        status = m["status"] or ("MANUAL" if manual else None)
        if status is None:
            raise CannotRun(f"pgdsat's summary gives no verdict for item {m['id']}")
        in_cis = m["id"] in CIS17_IDS and m["id"] not in CIS17_OTHER_TOPIC
        items[m["id"]] = {"id": m["id"], "title": m["title"], "manual": manual, "status": status,
                          "pgdsat_own": False, "cis17": m["id"] if in_cis else None,
                          "cis_level": CIS_LEVEL if in_cis else None, "messages": []}
    if not items:
        raise CannotRun("pgdsat's summary table lists no item")
    details = details.split(FOOTER, 1)[0]
    current: dict[str, object] | None = None
    for line in details.splitlines():
        head = DETAIL_HEAD_RE.match(line)
        if head:  # a per-database sub-heading (4.10.2 - appdb) belongs to its item (4.10)
            hid = head["id"]
            while hid not in items and "." in hid:
                hid = hid.rsplit(".", 1)[0]
            current = items.get(hid)
            continue
        if current is None:
            continue
        if "(*)" in line and not line.lstrip().startswith(("DATA:", "WARNING:", "CRITICAL:", "INFO:")):
            current["pgdsat_own"] = True
        msg = DETAIL_MSG_RE.match(line)
        if msg:
            current["messages"].append(f"{msg['sev']}: {msg['msg'].strip()}")  # type: ignore[union-attr]
    return list(items.values())


def counts(items: list[dict[str, object]]) -> dict[str, int]:
    return {s: sum(1 for i in items if i["status"] == s) for s in STATUSES}


def node_role(state: LabState, node: str) -> str:
    """The node's Patroni role from its REST API ("primary"/"leader", "replica", ...)."""
    try:
        with urllib.request.urlopen(state.rest_url(node) + "/patroni", timeout=10) as resp:
            return str(json.load(resp).get("role", ""))
    except (OSError, ValueError) as exc:
        raise CannotRun(f"the Patroni REST API of {node} ({state.rest_url(node)}) did not answer: {exc}") from exc


def pick_node(state: LabState, wanted: str) -> tuple[str, str]:
    roles = {n: node_role(state, n) for n in NODES}
    leaders = [n for n, r in roles.items() if r in ("primary", "master", "leader")]
    if wanted in NODES:
        return wanted, roles[wanted]
    pool = leaders if wanted == "leader" else [n for n in NODES if n not in leaders]
    if not pool:
        raise CannotRun(f"the lab has no {wanted} node (Patroni roles: {roles})")
    return pool[0], roles[pool[0]]


def server_version(state: LabState, node: str) -> str:
    """The numeric server version (e.g. 15.14), so pgdsat judges the running cluster."""
    out = run_as_postgres([str(PG_BIN / "psql"), "-h", str(state.node_dir(node)), "-p",
                           str(state.ports[node + "_pg"]), "-U", PG_OS_USER, "-d", "postgres",
                           "-XAtc", "SHOW server_version"], timeout=60)
    m = re.match(r"\d+(\.\d+)?", out.stdout.strip())
    if out.returncode != 0 or not m:
        raise CannotRun(f"psql on {node}'s socket failed: {out.stderr.strip() or out.stdout.strip()}")
    return m.group(0)


def run_as_postgres(argv: list[str], timeout: float, extra_env: tuple[str, ...] = ()
                    ) -> subprocess.CompletedProcess[str]:
    """Run as the lab's database OS user with a clean environment (no PGPASSWORD leaks in)."""
    env = ["env", "-i", f"PATH={PG_BIN}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
           "HOME=/var/lib/postgresql", f"USER={PG_OS_USER}", "LANG=C", *extra_env]
    prefix = [] if os.geteuid() != 0 else ["setpriv", f"--reuid={PG_OS_USER}", f"--regid={PG_OS_USER}",
                                            "--init-groups", "--"]
    return subprocess.run([*prefix, *env, *argv], capture_output=True, text=True, timeout=timeout, cwd="/")


def run_pgdsat(state: LabState, node: str, pgdsat: Path, version: str, report: Path,
               version_check: bool, timeout: float) -> list[str]:
    argv = ["perl", "-I", str(pgdsat / "lib"), str(pgdsat / "pgdsat"),
            "-U", PG_OS_USER, "-h", str(state.node_dir(node)), "-p", str(state.ports[node + "_pg"]),
            "-d", "postgres", "-D", str(state.data_dir(node)), "-V", version,
            "-P", str(PG_BIN / "psql"), "-C", str(PG_BIN / "pg_config"),
            "-f", "text", "-T", f"on pgproof lab {node}", "-o", str(report)]
    if not version_check:
        argv.append("--no-pg-version-check")
    # pgdsat 8.2 runs a bare `pgbackrest info`; the lab keeps its pgBackRest configuration
    # beside the nodes, not in /etc, so point pgBackRest at it as a packaged install would find it.
    conf = backup.config_file(state)
    extra = (f"PGBACKREST_CONFIG={conf}",) if conf.exists() else ()
    try:
        out = run_as_postgres(argv, timeout=timeout, extra_env=extra)
    except subprocess.TimeoutExpired as exc:
        raise CannotRun(f"pgdsat did not finish on {node} within {timeout:.0f} s") from exc
    if out.returncode != 0 or not report.exists():
        tail = (out.stderr.strip() or out.stdout.strip()).splitlines()[-3:]
        raise CannotRun(f"pgdsat failed on {node} (exit {out.returncode}): {' / '.join(tail)}")
    return argv


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lab-dir", type=Path, required=True, help="the lab's state directory (pgproof lab up --lab-dir)")
    ap.add_argument("--pgdsat", type=Path, default=DEFAULT_PGDSAT, help="a pgdsat checkout (default %(default)s)")
    ap.add_argument("--node", default="leader", choices=["leader", "standby", *NODES])
    ap.add_argument("--out", type=Path, help="JSON result file (default stdout)")
    ap.add_argument("--report", type=Path, help="also keep pgdsat's own text report here")
    ap.add_argument("--pg-version-check", action="store_true",
                    help="let pgdsat 1.5 fetch postgresql.org with curl (off: 1.5 reports FAILURE)")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args(argv)
    try:
        result = assess(args)
    except CannotRun as exc:
        print(f"pgdsat: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def assess(args: argparse.Namespace) -> dict[str, object]:
    pgdsat = args.pgdsat.resolve()
    if not (pgdsat / "pgdsat").is_file() or not (pgdsat / "lib" / "PGDSAT.pm").is_file():
        raise CannotRun(f"{pgdsat} is not a pgdsat checkout (fetch github.com/HexaCluster/pgdsat v2.0 there)")
    state = LabState.load(args.lab_dir.resolve())
    if state is None:
        raise CannotRun(f"{args.lab_dir} holds no lab (no readable state.json; run pgproof lab up --lab-dir)")
    node, role = pick_node(state, args.node)
    version = server_version(state, node)
    with tempfile.TemporaryDirectory(prefix="pgdsat-") as tmp:
        os.chmod(tmp, 0o777)  # the postgres user writes the report here; the directory is ours
        report = Path(tmp) / "report.txt"
        command = run_pgdsat(state, node, pgdsat, version, report, args.pg_version_check, args.timeout)
        text = report.read_text()
    if args.report:
        args.report.write_text(text)
    items = parse_report(text)
    tool_version = subprocess.run(["perl", "-I", str(pgdsat / "lib"), str(pgdsat / "pgdsat"), "--version"],
                                  capture_output=True, text=True, timeout=60).stdout.strip()
    return {"tool": "pgdsat", "version": tool_version.removeprefix("pgdsat v"), "pgdsat_dir": str(pgdsat),
            "node": node, "role": role, "server_version": version, "command": command,
            "counts": counts(items), "items": items}


if __name__ == "__main__":
    sys.exit(main())
