"""bench/cis_agreement: pgdsat beside `pgproof check` on the lab, healthy and under each CIS mutation.

For the healthy lab, then for every lab mutation that breaks a control citing CIS (read from
the mutation catalogue at run time, so new CIS mutations are included without editing this
file), it runs pgdsat (bench/pgdsat.py) on the leader and `pgproof check --target lab
--control <the CIS-citing controls>`, and writes one agreement row per CIS item and scenario:
pgdsat's verdict, pgproof's control(s) and verdicts, whether they agree, and why not.

    .venv/bin/python bench/cis_agreement.py --lab-dir .pgproof/lab --out docs/cis.md [--json F]

Agreement: pgdsat SUCCESS and every mapped control passing (or inherited/skip), or pgdsat
FAILURE and a mapped control failing. A pgdsat MANUAL item is not compared. Every
disagreement must carry an explanation (``EXPLAINED``, from reading pgdsat 2.0's source and
measuring it on the lab); one without is written as "UNEXPLAINED" and the script exits 1.

Exit: 0 table written, every disagreement explained; 1 an unexplained disagreement;
2 could not run (no lab, no pgdsat, a mutation or a check that did not run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import pgdsat as bench_pgdsat  # noqa: E402

from pgproof.catalogue.frameworks import CIS  # noqa: E402
from pgproof.catalogue.registry import CATALOGUE  # noqa: E402
from pgproof.lab import mutations  # noqa: E402

HEALTHY = "healthy"
PASSING = {"pass", "waived", "inherited", "skip"}
# Why pgdsat and pgproof disagree, per CIS item ("ITEM") or per item under one scenario
# ("ITEM@scenario"). Each sentence says which tool is right and what the other does; the
# pgdsat side is from its v2.0 source (lib/PGDSAT.pm) and its runs on the lab.
EXPLAINED: dict[str, str] = {
    "1.5": "MNT-1 is cannot-verify on the lab: the AWS twin returns no DescribeDBEngineVersions "
           "record, so whether the minor is still supported is unknown. pgdsat compares the server with postgresql.org's latest minor release (curl); the lab "
           "has no Internet, so the bench runs it with --no-pg-version-check and pgdsat fails "
           "1.5 by design. pgproof MNT-1 judges the engine's major version against the "
           "target's threshold and the provider's upgrade settings; it cannot know the newest "
           "minor offline either",
    "6.8": "pgdsat's 6.8 also demands ssl_min_protocol_version TLSv1.3 and a non-empty "
           "ssl_passphrase_command; CIS 17 6.8 asks for TLS on with certificate and key (6.9 "
           "is its TLSv1.3 item). pgproof TLS-1/2/3 judge what CIS 6.8 asks, by handshake "
           "(TLS 1.2+ at the threshold), hostssl-only rules and a verify-full login: right on "
           "the lab, which keeps TLSv1.2 as its minimum and an unencrypted key (waiver: "
           "a passphrase command adds nothing on a test machine)",
    "6.10": "pgdsat splits the ssl_ciphers string on ':' and fails any token outside a fixed "
            "allow-list, so the default 'HIGH:MEDIUM:+3DES:!aNULL' fails although '!aNULL' is a "
            "removal; pgproof TLS-5 enumerates the suites the server really accepts by handshake",
    "6.10@tls-weak": "pgdsat fails 6.10 on the healthy lab already (the string rule), so under "
                     "the mutation both fail, for different reasons",
    "6.9": "CIS 17 v1.0.0's 6.9 asks TLS 1.3 as the minimum; the bench runs the default spec, "
           "where TLS-1 judges TLS 1.2+ (CIS 15/16's 6.9). Under --profile cis-level1 TLS-1 "
           "judges TLSv1.3 and fails even the healthy lab, which keeps TLS 1.2 on purpose "
           "(tests/test_matrix.py proves both)",
    "7.4@backup-stanza-missing": "pgdsat 7.4 only checks that archive_mode is on and "
                                 "archive_command is set, so it stays SUCCESS while every "
                                 "archive-push fails (the stanza does not exist in the "
                                 "repository); pgproof BAK-2 reads pg_stat_archiver and the "
                                 "repository's status and fails. pgdsat's 8.2 and pgproof's "
                                 "BAK-7 agree on the same run",
    "3.1.4@log-files-default": "pgdsat fails only an empty log_directory; pgproof LOG-19 also "
                               "fails PostgreSQL's default 'log', a directory inside PGDATA "
                               "(CIS 8.1's intent: base backups copy the logs, a restore "
                               "overwrites them), as its documented reading of 'set correctly'",
    "3.1.11@syslog-lossy": "pgdsat judges syslog_sequence_numbers only when log_destination is "
                           "exactly 'syslog' and passes it otherwise; CIS 3.1.11's audit reads "
                           "the setting unconditionally, and so does pgproof LOG-21 (the lab "
                           "logs to stderr, so the setting acts only if syslog is added later)",
    "3.1.12@syslog-lossy": "pgdsat judges syslog_split_messages only when log_destination is "
                           "exactly 'syslog'; CIS 3.1.12's audit and pgproof LOG-22 read it "
                           "unconditionally",
    "1.4@pgdata-version-stale": "pgdsat's check_1_4 is empty (\"nothing to do\"): 1.4 is always "
                                "SUCCESS there. pgproof HOST-6 reads each node's PG_VERSION "
                                "against the running major version (what CIS 1.4's "
                                "postgresql-17-check-db-dir verifies) and fails the stale one",
    "7.4@archive-failing": "pgdsat 7.4 only checks that archive_mode is on and archive_command "
                           "is set: with archive_command='/bin/false' it stays SUCCESS while no "
                           "WAL is archived. pgproof BAK-2 reads pg_stat_archiver and the "
                           "repository and fails (issue 21's finding)",
    "7.5": "pgdsat 7.5 fails unless primary_conninfo has sslmode=require/verify-ca and then "
           "demands sslcompression=1: on a primary primary_conninfo is empty, verify-full is "
           "rejected and sslcompression is obsolete (ignored since PostgreSQL 14), so it fails "
           "every node. pgproof TLS-7 reads pg_stat_ssl of the WAL senders and the standbys' "
           "sslmode",
    "3.2@pgaudit-off": "pgdsat stores a weak pgaudit.log result under the key 3.1.29 (3.1.28 "
                       "when pgaudit is absent), not 3.2, so 3.2 is always SUCCESS; pgproof "
                       "AUDIT-1 fails with pgaudit.log = none",
    **{f"{item}@pgaudit-off": "pgdsat is right here: the mutation turns pgaudit off, "
       "log_connections and log_disconnections stay on. AUDIT-1 is one control over both "
       "settings and pgaudit, so its one verdict (fail, its sentence naming pgaudit.log) "
       "shows on every CIS item it cites: pgproof's verdict is per control, not per setting"
       for item in ("3.1.20", "3.1.21")},
    "5.4@plaintext-allowed": "the new hba line is 'host all all 127.0.0.1/32 scram-sha-256': "
                             "pgdsat 5.4 judges only the method of host lines (scram-sha-256: "
                             "SUCCESS) and reports plaintext under its own 5.8 (not a CIS item; "
                             "FAILURE there). CIS 5.4's remediation accepts encrypted sessions "
                             "and rejects unencrypted ones (hostssl / hostnossl reject), which "
                             "is what pgproof TLS-2 fails",
    "5.4@replication-plaintext": "the new hba line is 'host replication replicator ... "
                                 "scram-sha-256': pgdsat 5.4 judges only its method; pgproof "
                                 "TLS-2 fails a rule that accepts unencrypted sessions, as CIS "
                                 "5.4's remediation asks",
    "7.3": "pgdsat's check_7_3 is an empty function (always SUCCESS); pgproof BAK-1 judges the "
           "repository's retention and BAK-6 proves a restore",
    "7.3@backup-retention-short": "pgdsat's 7.3 check is empty: it cannot see a 3-day retention; "
                                  "pgproof BAK-1 fails it",
    "4.3@superuser-app": "pgdsat counts \\du lines containing 'superuser' and fails at 2 or more; "
                         "here both fail, pgdsat by count, pgproof AUTHZ-1 by the app role's "
                         "SUPERUSER attribute",
    "5.4": "CIS 5.4 is Manual; pgdsat 5.4 fails host lines whose method is not scram-sha-256 "
           "(and, by a result-key bug, the local lines' methods). pgproof AUTH-1 and TLS-2 "
           "judge the same hba rules",
    "5.6": "pgdsat looks for passwordcheck/credcheck named in any *_preload_libraries; pgproof "
           "PRIV-5 also requires the named library to resolve through $libdir (CIS's audit "
           "text), and AUTH-3 judges the AWS master secret's length: where they differ, "
           "pgproof looks at more facts than the library's name",
    "5.5": "pgdsat 5.5 fails any role not named pg_* without a connection limit, superusers "
           "and NOLOGIN roles included (SELECT ... WHERE rolconnlimit = -1): the lab's "
           "postgres superuser has none. PostgreSQL never applies a limit to a superuser, and "
           "a NOLOGIN role cannot connect, so pgproof PRIV-4 judges the non-superuser login "
           "roles (app 60, pgproof 20, replicator 10 on the lab): pgproof is right",
    "2.1": "pgdsat 2.1 runs `sh -c umask` in its own process, so it measures the umask of "
           "whoever started pgdsat (0022 here), not the database account's; pgproof HOST-3 "
           "reads the umask of every running process of that account (0077 on the lab)",
    "6.7": "both find FIPS off (this Debian machine has no /proc/sys/crypto/fips_enabled and "
           "OpenSSL has no FIPS provider); pgproof's HOST-5 failure is waived in the lab "
           "target (a machine-wide fact the lab may not change), which the table counts as "
           "passing: the tools agree on the fact",
    "4.3@extra-admin": "the mutation adds a login role with CREATEDB (not SUPERUSER): pgdsat "
                       "counts only \\du lines containing 'superuser', so it stays SUCCESS; CIS "
                       "4.3 names CREATEDB among the administrative privileges to revoke, and "
                       "pgproof PRIV-1 fails it (AUTHZ-1 judges only the app role)",
    "7.1@replicator-superuser": "pgdsat 7.1 passes when two or more roles have REPLICATION, "
                                "whoever they are; the mutation makes the standbys' role a "
                                "superuser, which CIS 7.1 (a replication-only role) forbids: "
                                "pgproof PRIV-6 fails it",
    **{f"{item}@host-psql-history": "HOST-2 is one control over CIS 1.6, 1.7, 2.3 and 2.4, so "
       "its one verdict shows on each item it cites. On 2.3 pgdsat is wrong: it searches "
       "only /home for .psql_history, and the lab account's home is the lab's own directory; "
       "on 1.6, 1.7 and 2.4 pgdsat is right (the mutation writes only a history file)"
       for item in ("1.6", "1.7", "2.3", "2.4")},
    **{f"{item}@host-pgpassword-env": "HOST-2 is one control over CIS 1.6, 1.7, 2.3 and 2.4, "
       "so its one verdict shows on each item it cites. On 1.7 pgdsat missed a running "
       "process of the database account holding PGPASSWORD (measured): it greps "
       "/proc/*/environ as the postgres user with errors discarded, and a process started by "
       "root and switched to postgres is not dumpable, so its environ is readable by root "
       "only (pgproof's host probe reads it as root). On 1.6, 2.3 and 2.4 pgdsat is right"
       for item in ("1.6", "1.7", "2.3", "2.4")},
}


# pgdsat 2.0's false or vacuous results found by reading lib/PGDSAT.pm (several confirmed on the
# lab), for items no pgproof control judges yet or that the table above does not reach.
PGDSAT_FALSE = (
    ("3.2", "a weak pgaudit.log is stored under the key 3.1.29 (3.1.28 without pgaudit): 3.2 is "
            "always SUCCESS"),
    ("7.3, 8.1, 3.1.1, 3.1, 1.4", "empty check functions: always SUCCESS"),
    ("7.4", "settings only: SUCCESS with archive_command = '/bin/false'"),
    ("7.5", "always FAILURE: empty primary_conninfo on a primary, verify-full rejected, obsolete "
            "sslcompression demanded"),
    ("6.10", "judges the ssl_ciphers string against an allow-list, not the suites accepted"),
    ("5.10", "its failure is stored under 5.7: 5.10 never fails"),
    ("5.11", "its failure is stored under 5.8, and 'all' on an hba line is not seen to include "
             "superusers: 5.11 never fails"),
    ("5.3", "bad local methods are stored under 5.4"),
    ("4.7", "greps the database list for 'Bypass RLS': never fails"),
    ("1.9", "its failure is stored under 1.8"),
    ("1.3, 1.5", "loop over PGDG packages only: with distribution packages nothing is compared"),
    ("2.1", "measures the umask of pgdsat's own process, not the postgres account's or the server's"),
    ("2.5", "the directory fallback re-tests the file's mode"),
    ("2.6", "compares unchomped ls output (never equal): only the setting 0777 fails"),
    ("3.1.3", "`ne 'syslog' or ne 'stderr'` is always true: fails whenever logging_collector is off"),
    ("3.1.26", "accepts only the strings GMT/UTC: Etc/UTC fails"),
    ("4.3", "counts lines containing 'superuser' in `\\du+` output: a role named superuser_x counts, "
            "rds_superuser/azure_pg_admin members are not seen"),
    ("4.10", "not a CIS 17 item; fails PostgreSQL 15+'s own default (PUBLIC has USAGE, no CREATE)"),
    ("5.6", "any passwordcheck/credcheck preload passes; pg_tle passcheck (RDS) is not recognised"),
    ("6.9", "pgdsat's 6.9 is 'pgcrypto/pgsodium available'; CIS 17 6.9 is TLSv1.3"),
    ("all", "needs a superuser session and creates a view in the audited database: cannot run on "
            "RDS, Aurora or Azure"),
)


def cis_controls() -> dict[str, list[str]]:
    """CIS item -> the compliance controls citing it."""
    out: dict[str, list[str]] = {}
    for c in CATALOGUE.values():
        if c.kind != "compliance":
            continue
        for rid in c.frameworks.get("cis", ()):
            out.setdefault(rid, []).append(c.id)
    return out


def cis_mutations() -> dict[str, Any]:
    """Live lab mutations breaking a control that cites CIS (the catalogue as installed now)."""
    citing = {cid for ids in cis_controls().values() for cid in ids}
    return {n: m for n, m in mutations.catalogue().items()
            if m.live_break is not None and m.breaks & citing}


def agree(pgdsat_status: str | None, verdicts: dict[str, str]) -> bool | None:
    """True/False, or None when there is nothing to compare (pgdsat MANUAL or no such item;
    no mapped control judged; pgproof could not judge: cannot-verify or error, no failure)."""
    judged = {v for v in verdicts.values() if v not in ("not-checked", "not-selected")}
    if pgdsat_status not in ("SUCCESS", "FAILURE") or not judged:
        return None
    if "fail" in judged:
        return pgdsat_status == "FAILURE"
    if judged <= PASSING:
        return pgdsat_status == "SUCCESS"
    return None


def explain(item: str, scenario: str) -> str | None:
    return EXPLAINED.get(f"{item}@{scenario}") or EXPLAINED.get(item)


def rows_for(scenario: str, items: dict[str, dict[str, Any]], verdicts: dict[str, str],
             only: set[str] | None = None) -> list[dict[str, Any]]:
    """One row per CIS item cited by a control (``only``: the items the mutation's controls cite)."""
    out = []
    for rid, ids in cis_controls().items():
        if only is not None and rid not in only:
            continue
        p = items.get(rid)
        status = p["status"] if p is not None and p.get("cis17") == rid else None
        mine = {cid: verdicts.get(cid, "not-checked") for cid in ids}
        ok = agree(status, mine)
        why = "" if ok in (True, None) else (explain(rid, scenario) or "UNEXPLAINED")
        if ok is None and status is None:
            why = "pgdsat 2.0 has no check for this CIS 17 item" + (
                " (its number means another check there)" if p is not None else "")
            why += f": {explain(rid, scenario)}" if explain(rid, scenario) else ""
        elif ok is None and status == "MANUAL":
            why = "pgdsat reports it MANUAL"
        elif ok is None:
            judged = sorted({v for v in mine.values() if v not in ("not-checked", "not-selected")})
            why = (f"pgproof could not judge it here ({', '.join(judged)})" if judged
                   else "no mapped control was judged on this target")
            why += f": {explain(rid, scenario)}" if explain(rid, scenario) else ""
        out.append({"scenario": scenario, "item": rid, "title": CIS.requirements.get(rid, ""),
                    "pgdsat": status or "-", "pgproof": mine, "agree": ok, "why": why})
    return out


def run_check(lab_dir: Path, controls: list[str], reports: Path, timeout: float) -> dict[str, str]:
    env = {**os.environ, "PGPROOF_LAB_TARGET": str(lab_dir / "target.toml")}
    r = subprocess.run([str(REPO / ".venv" / "bin" / "pgproof"), "check", "--target", "lab",
                        "--control", ",".join(controls), "--reports", str(reports)],
                       capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    latest = reports / "latest" / "results.json"
    if r.returncode not in (0, 1) or not latest.exists():
        raise bench_pgdsat.CannotRun(f"pgproof check exited {r.returncode}: "
                                     f"{(r.stderr.strip() or r.stdout.strip())[-300:]}")
    doc = json.loads(latest.read_text())
    return {c["id"]: c["verdict"] for c in doc["controls"]}


def run_pgdsat(lab_dir: Path, pgdsat: Path, timeout: float) -> dict[str, dict[str, Any]]:
    args = argparse.Namespace(pgdsat=pgdsat, lab_dir=lab_dir, node="leader", report=None,
                              pg_version_check=False, timeout=timeout)
    return {i["id"]: i for i in bench_pgdsat.assess(args)["items"]}


def scenario(name: str, lab_dir: Path, pgdsat: Path, controls: list[str], timeout: float,
             only: set[str] | None) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="cis-agree-") as tmp:
        verdicts = run_check(lab_dir, controls, Path(tmp), timeout)
    items = run_pgdsat(lab_dir, pgdsat, timeout)
    return rows_for(name, items, verdicts, only)


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    out = ["# pgproof and pgdsat on the CIS PostgreSQL benchmark", "",
           "Generated by `bench/cis_agreement.py` (do not edit by hand): "
           f"{meta['when']}, pgdsat {meta['pgdsat_version']} on the lab's leader "
           f"(PostgreSQL {meta['server_version']}), `pgproof check --target lab` beside it, "
           "on the healthy lab and under every lab mutation that breaks a control citing CIS.",
           "",
           "pgdsat (HexaCluster, GPLv3) is the CIS PostgreSQL benchmark as a shell tool: it must "
           "run on the database host as the PostgreSQL superuser, so it cannot run on RDS, "
           "Aurora or Azure at all; pgproof judges the same items through SQL, the TLS "
           "handshake, the cloud APIs and the backup tool. A row agrees when pgdsat's SUCCESS "
           "meets passing controls or its FAILURE a failing one. Every disagreement is "
           "explained; most are pgdsat's own false results, found by reading its source "
           "(`lib/PGDSAT.pm`, v2.0) and confirmed on the lab.", "",
           "| Scenario | CIS item | pgdsat | pgproof control(s) | Agree | Explanation |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        ctl = ", ".join(f"{k} {v}" for k, v in r["pgproof"].items())
        mark = {True: "yes", False: "**no**", None: "-"}[r["agree"]]
        why = r["why"].replace("|", "\\|")
        out.append(f"| {r['scenario']} | {r['item']} {r['title']} | {r['pgdsat']} | {ctl} | "
                   f"{mark} | {why} |")
    n = sum(r["agree"] is False for r in rows)
    out += ["", f"{len(rows)} rows, {sum(r['agree'] is True for r in rows)} agree, {n} disagree "
            f"(each explained above), {sum(r['agree'] is None for r in rows)} not comparable.",
            "", "Mutations run: " + (", ".join(meta["mutations"]) or "none") + ".", "",
            "## pgdsat 2.0's false or vacuous results, from its source", "",
            "Read in `lib/PGDSAT.pm` (v2.0, commit 227c8bb); 3.2, 3.1.26, 5.10, 5.11, 7.4 and 7.5 "
            "were also seen on the lab. Where pgproof has a control for the item, the table "
            "above shows the consequence.", "", "| pgdsat item | What goes wrong |", "|---|---|"]
    out += [f"| {item} | {what} |" for item, what in PGDSAT_FALSE]
    out += ["", "Regenerate on a running lab: `.venv/bin/python bench/cis_agreement.py --lab-dir "
            ".pgproof/lab --out docs/cis.md` (about 15 minutes on a loaded 2-core machine); "
            "`--from-json` re-renders a saved run without the lab.", ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lab-dir", type=Path)
    ap.add_argument("--from-json", type=Path, help="re-render a run saved with --json (no lab)")
    ap.add_argument("--pgdsat", type=Path, default=bench_pgdsat.DEFAULT_PGDSAT)
    ap.add_argument("--out", type=Path, required=True, help="the Markdown table (docs/cis.md)")
    ap.add_argument("--json", type=Path, help="also the rows as JSON")
    ap.add_argument("--settle", type=float, default=5, help="seconds after a break or heal")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        for r in saved["rows"]:  # explanations may have been refined since the run
            if r["agree"] is False:
                r["why"] = explain(r["item"], r["scenario"]) or "UNEXPLAINED"
            elif r["agree"] is None and r["pgdsat"] == "-" and explain(r["item"], r["scenario"]):
                r["why"] = r["why"].split(": ", 1)[0] + ": " + str(explain(r["item"], r["scenario"]))
        args.out.write_text(markdown(saved["rows"], saved["meta"]))
        return 0
    if args.lab_dir is None:
        ap.error("--lab-dir is required (or --from-json)")
    lab_dir = args.lab_dir.resolve()
    controls = sorted({c for ids in cis_controls().values() for c in ids})
    rows: list[dict[str, Any]] = []
    try:
        info = bench_pgdsat.assess(argparse.Namespace(
            pgdsat=args.pgdsat, lab_dir=lab_dir, node="leader", report=None,
            pg_version_check=False, timeout=args.timeout))
        rows += scenario(HEALTHY, lab_dir, args.pgdsat, controls, args.timeout, None)
        muts = cis_mutations()
        for name, m in muts.items():
            print(f"cis_agreement: {name}", file=sys.stderr, flush=True)
            mutations.apply(lab_dir, name)
            try:
                time.sleep(args.settle)
                only = {rid for cid in m.breaks if cid in CATALOGUE
                        for rid in CATALOGUE[cid].frameworks.get("cis", ())}
                rows += scenario(name, lab_dir, args.pgdsat, controls, args.timeout, only)
            finally:
                mutations.heal(lab_dir)
                time.sleep(args.settle)
    except (bench_pgdsat.CannotRun, subprocess.TimeoutExpired) as exc:
        print(f"cis_agreement: {exc}", file=sys.stderr)
        return 2
    meta = {"when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "pgdsat_version": info["version"], "server_version": info["server_version"],
            "mutations": list(muts)}
    args.out.write_text(markdown(rows, meta))
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    bad = [f"{r['scenario']} {r['item']}" for r in rows if r["why"] == "UNEXPLAINED"]
    if bad:
        print(f"cis_agreement: unexplained disagreements: {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
