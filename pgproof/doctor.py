"""``pgproof doctor``: before any run, can each configured layer be reached, with every permission?

A scheduled run that discovers a missing grant halfway through reports a string
of errors; the doctor says up front, one line per finding, what is reachable
(TCP, TLS, login for PostgreSQL; an STS and describe call for AWS; a command over
testinfra for hosts) and which grant the auditor role lacks, with the exact
statement to run. The permissions come from what ``pgproof.probes.postgres``
really queries (its ``settings_read()``, ``RELATIONS`` and ``FUNCTIONS``). It only reads.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pgproof import layers
from pgproof.catalogue.registry import setting_uses
from pgproof.checks.backup import TOOL_COULD_NOT_READ
from pgproof.probes import commands
from pgproof.target import Endpoint, Target
from pgproof.verdict import TimedOut, Unreachable

# Which controls each privilege serves: a missing grant names what it would leave unchecked.
WHY = {"pg_settings": "every SQL-layer control", "pg_hba_file_rules": "TLS-2, AUTH-1",
       "pg_hba_file_rules()": "TLS-2, AUTH-1", "pg_stat_ssl": "TLS-1", "pg_roles": "AUTHZ-1",
       "pg_backend_pid()": "TLS-1", "TEMP": "HA-5 (the replica write probe)",
       "pg_read_all_stats": "TLS-7 (replication encrypted), HA-5 (replay_lag per standby)",
       "pg_stat_replication": "HA-5 (replica lag), TLS-7",
       "pg_ls_archive_statusdir()": "BAK-2 (WAL waiting to be archived)",
       "CONNECT": "PRIV-2, PRIV-3 (each database's functions and public schema)"}
PRIV_WHY = "PRIV-1..6 (roles, functions, schemas)"
SETTING_USES = setting_uses()  # from the checks' declared settings (pgproof/catalogue/)


@dataclass
class Finding:
    """One line of the report: ``ok`` False means something is missing or unreachable."""

    layer: str
    ok: bool | None  # None: informational (layer not configured)
    text: str

    def line(self) -> str:
        mark = {True: "ok", False: "MISSING", None: "--"}[self.ok]
        return f"{mark:<8} {self.layer:<9} {self.text}"


def ident(name: str) -> str:
    """A role name as GRANT wants it: bare when it is a plain lower-case identifier."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


# -- postgres --------------------------------------------------------------------------------
def _endpoint_findings(target: Target) -> tuple[list[Finding], bool]:
    """TCP and protocol at every endpoint; True when the writer speaks PostgreSQL."""
    from pgproof import preflight, tunnel

    out = []
    try:  # postgres.via: every probe below goes through the bastion, as a check's would
        t = tunnel.ensure(target)
    except tunnel.TunnelError as exc:
        return [Finding("postgres", False, str(exc))], False
    if t is not None:
        out.append(Finding("postgres", True, f"bastion {t.via.name}: tunnel open, "
                                             f"{len(t.routes)} forwards"))
    answers = preflight.greet_all(target)
    for name, a in answers:
        where = f"{name} {a.host}:{a.port}"
        if a.postgres:
            out.append(Finding("postgres", True, f"{where}: TCP open, speaks PostgreSQL"))
        elif a.postgres is False:
            out.append(Finding("postgres", False, f"{where}: speaks {a.protocol}, not "
                                                  "PostgreSQL (check the port)"))
        else:
            out.append(Finding("postgres", False, f"{where}: {a.detail or 'no answer'}"))
    return out, bool(answers and answers[0][1].postgres)


def _login(target: Target, ep: Endpoint | None, name: str) -> tuple[Finding, Any]:
    """TLS and login at one endpoint; the open connection when it worked."""
    from pgproof.probes.postgres import connect

    pg = target.require_postgres("the postgres layer")
    info = target.conninfo(ep)
    try:
        conn = connect(target, ep)
    except Unreachable as exc:
        return Finding("postgres", False, f"{name}: {exc}"), None
    row = conn.execute("SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    tls = row[0] if row and row[0] else None
    anchor = "the system trust store" if pg.sslrootcert == "system" else pg.sslrootcert
    verified = (f"verified against {anchor} (sslmode={info['sslmode']})"
                if pg.sslrootcert and info["sslmode"].startswith("verify") else
                "certificate NOT verified, so TLS-3 cannot pass: no CA to verify against (set "
                "postgres.sslrootcert to the CA file, export PGSSLROOTCERT, or sslrootcert = "
                "\"system\" for a publicly trusted certificate)" if not pg.sslrootcert else
                f"certificate NOT verified (sslmode={info['sslmode']})")
    text = (f"{name}: login as {info['user']} to {info['dbname']} over "
            + (f"{tls}, {verified}" if tls else "plaintext"))
    return Finding("postgres", bool(tls) and bool(pg.sslrootcert), text), conn


def privilege_findings(conn: Any, role: str, dbname: str) -> list[Finding]:
    """One MISSING line per grant the probes need and the session's role lacks."""
    from pgproof.probes import privileges
    from pgproof.probes.postgres import FUNCTIONS, RELATIONS, settings_read

    who, out = ident(role), []
    visible = {r[0] for r in conn.execute(
        "SELECT name FROM pg_settings WHERE name = ANY(%s)", (list(settings_read()),))}
    hidden = [s for s in settings_read() if s not in visible]
    if hidden:
        uses = ", ".join(dict.fromkeys(SETTING_USES.get(s, "SQL facts") for s in hidden))
        out.append(Finding("postgres", False, f"role {role} cannot read {', '.join(hidden)} "
                                              f"({uses}): GRANT pg_read_all_settings TO {who};"))
    where = f"; in database {dbname} (catalog grants are per database)"
    for rel in dict.fromkeys((*RELATIONS, *privileges.RELATIONS)):
        if not conn.execute("SELECT has_table_privilege(%s, 'SELECT')",
                            (f"pg_catalog.{rel}",)).fetchone()[0]:
            out.append(Finding("postgres", False, f"role {role} cannot read {rel} "
                                                  f"({WHY.get(rel, PRIV_WHY)}){where}: "
                                                  f"GRANT SELECT ON {rel} TO {who};"))
    # A managed platform's own databases (owned by its bootstrap superuser) are not the customer's.
    for (db,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datallowconn AND NOT has_database_privilege("
            "datname, 'CONNECT') AND NOT (datdba = 10 AND EXISTS (SELECT 1 FROM pg_roles WHERE "
            "rolname = ANY(%s))) ORDER BY 1", (list(privileges.ADMIN_GROUPS),)).fetchall():
        out.append(Finding("postgres", False, f"role {role} may not connect to database {db} "
                                              f"({WHY['CONNECT']}): GRANT CONNECT ON DATABASE "
                                              f"{ident(db)} TO {who};"))
    for fn in FUNCTIONS:
        if not conn.execute("SELECT has_function_privilege(%s, 'EXECUTE')",
                            (f"pg_catalog.{fn}",)).fetchone()[0]:
            why = WHY.get(fn, "HA-5 (replica lag)")
            out.append(Finding("postgres", False, f"role {role} cannot execute {fn} ({why})"
                                                  f"{where}: GRANT EXECUTE ON FUNCTION {fn} TO {who};"))
    if not conn.execute("SELECT pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')"
                        ).fetchone()[0]:  # else other sessions' pg_stat_replication rows are blank
        out.append(Finding("postgres", False, f"role {role} cannot see the WAL senders' "
                                              f"connections ({WHY['pg_read_all_stats']}): "
                                              f"GRANT pg_read_all_stats TO {who};"))
    if not conn.execute("SELECT has_database_privilege(current_database(), 'TEMP')").fetchone()[0]:
        out.append(Finding("postgres", False, f"role {role} may not create temporary tables "
                                              f"({WHY['TEMP']}): GRANT TEMPORARY ON DATABASE "
                                              f"{ident(dbname)} TO {who};"))
    return out


def postgres_findings(target: Target) -> list[Finding]:
    pg = target.require_postgres("the postgres layer")
    out, speaks = _endpoint_findings(target)
    if not speaks:
        return out
    login, conn = _login(target, None, "writer")
    out.append(login)
    if conn is None:
        return out
    with conn:
        dbname = conn.execute("SELECT current_database()").fetchone()[0]
        role = conn.execute("SELECT current_user").fetchone()[0]
        grants = privilege_findings(conn, role, dbname)
        out += grants or [Finding("postgres", True, f"role {role} has every permission the "
                                                     "SQL probes use")]
        if pg.app_role and conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s",
                                        (pg.app_role,)).fetchone()[0] == 0:
            out.append(Finding("postgres", False, f"app_role {pg.app_role!r} does not exist on "
                                                  "the writer (AUTHZ-1 judges it)"))
    for i, ep in enumerate(pg.readers):
        f, c = _login(target, ep, f"readers[{i}]")
        out.append(f)
        if c is not None:
            c.close()
    if pg.pooler_admin is not None:
        out.append(_pooler_admin(target))
    return out


def _pooler_admin(target: Target) -> Finding:
    from pgproof.probes import pooler

    try:
        facts = pooler.gather(target)
    except Unreachable as exc:
        user = target.conninfo(target.postgres.pooler_admin)["user"] if target.postgres else "?"
        return Finding("postgres", False, f"{exc} (the role {user} must be in PgBouncer's "
                                          "admin_users or stats_users for SHOW CONFIG)")
    return Finding("postgres", True, f"pooler admin console {facts.endpoint}: SHOW CONFIG works")


# -- aws -------------------------------------------------------------------------------------
def aws_findings(target: Target) -> list[Finding]:
    from pgproof.probes.aws import _Ctx

    cfg = target.aws
    assert cfg is not None
    t = target.timeouts
    ctx = _Ctx(cfg, connect_timeout=t.sdk_connect_s, max_attempts=min(2, t.sdk_attempts),
               read_timeout=t.sdk_read_s)
    calls: list[tuple[str, Callable[[], str]]] = [
        ("sts:GetCallerIdentity", lambda: "caller " + ctx.client("sts").get_caller_identity()["Arn"])]
    if cfg.db_instance_id:
        calls.append(("rds:DescribeDBInstances", lambda: "DB instance {} is {}".format(
            cfg.db_instance_id, ctx.client("rds").describe_db_instances(
                DBInstanceIdentifier=cfg.db_instance_id)["DBInstances"][0]["DBInstanceStatus"])))
    if cfg.db_cluster_id:
        calls.append(("rds:DescribeDBClusters", lambda: _cluster_line(target, ctx.client(
            "rds").describe_db_clusters(DBClusterIdentifier=cfg.db_cluster_id)["DBClusters"][0])))
    out = []
    for what, call in calls:
        try:
            out.append(Finding("aws", True, f"{ctx.endpoint}: {call()}"))
        except Exception as exc:  # noqa: BLE001 - every failure is a finding, said in one line
            out.append(Finding("aws", False, str(ctx.unreachable(exc, what))))
    return out


def _cluster_line(target: Target, c: dict[str, Any]) -> str:
    """Status and the endpoints the live layers should use: the cluster's writer and reader."""
    line = (f"DB cluster {c.get('DBClusterIdentifier')} is {c.get('Status')}; writer endpoint "
            f"{c.get('Endpoint')}, reader endpoint {c.get('ReaderEndpoint')}")
    pg = target.postgres
    if pg is not None and pg.writer is not None and c.get("Endpoint") and pg.writer.host != c["Endpoint"]:
        line += (f"; postgres.writer is {pg.writer.host}, not the writer endpoint (fine for a "
                 f"proxy or DNS alias; an instance endpoint stops being the writer at failover)")
    return line


# -- hosts -----------------------------------------------------------------------------------
def _host(url: str, command: str, what: str, limit_s: float) -> Finding:
    if url.startswith("netns://"):
        ns = url.removeprefix("netns://")
        try:
            names = commands.run(["ip", "netns", "list"], min(10.0, limit_s), "`ip netns list`")
        except TimedOut as exc:
            return Finding("hosts", False, f"{url}: {exc}")
        listed = names.stdout.decode(errors="replace").splitlines()
        ok = ns in {line.split()[0] for line in listed if line.strip()}
        return Finding("hosts", ok, f"{url}: " + ("network namespace exists" if ok else
                                                  "no such network namespace"))
    try:
        r = commands.host(url, limit_s).run(command)
    except TimedOut as exc:
        return Finding("hosts", False, f"{url}: {exc}")
    except Exception as exc:  # noqa: BLE001 - an unreachable host is a finding
        return Finding("hosts", False, f"{url}: cannot run a command over testinfra: {exc}")
    if r.rc != 0:
        return Finding("hosts", False, f"{url}: `{command}` failed ({what}): "
                                       f"{(r.stderr or r.stdout).strip()[:200]}")
    return Finding("hosts", True, f"{url}: reachable over testinfra, {what} available")


def host_findings(target: Target) -> list[Finding]:
    limit = target.timeouts.subprocess_s
    out = [_host(u, "findmnt --version && lsblk --version", "findmnt and lsblk (ENC-1)", limit)
           for u in target.hosts]
    out += [_host(u, "command -v bash && command -v timeout", "bash and timeout (NET-5)", limit)
            for u in dict.fromkeys([*target.app_hosts, *target.outside_hosts])]
    return out


def backup_findings(target: Target, conn: Any | None = None) -> list[Finding]:
    """The backup tool answers ``info`` for the stanza; the auditor may list the archive status."""
    from pgproof.probes import backup

    cfg = target.backup
    if cfg is None:
        return []
    try:
        doc = json.loads(backup._run(cfg, "--output=json info", target.timeouts.subprocess_s)
                         or "[]")
        unread = [r["status"].get("message") for s in doc for r in s.get("repo") or []
                  if (r.get("status") or {}).get("code") == TOOL_COULD_NOT_READ]
        out = [Finding("backup", False, f"{cfg.tool} on {cfg.host}: stanza {cfg.stanza}: the tool "
                                        f"could not read its repository: {'; '.join(unread)}")
               ] if unread else [
            Finding("backup", True, f"{cfg.tool} on {cfg.host}: stanza {cfg.stanza} answers "
                                    f"info ({sum(len(s.get('backup', [])) for s in doc)} backups)")]
    except (Unreachable, ValueError) as exc:
        out = [Finding("backup", False, f"{cfg.tool} on {cfg.host}: {exc}")]
    if conn is not None:
        fn = "pg_ls_archive_statusdir()"
        role = conn.execute("SELECT current_user").fetchone()[0]
        if not conn.execute("SELECT has_function_privilege(%s, 'EXECUTE')",
                            (f"pg_catalog.{fn}",)).fetchone()[0]:
            out.append(Finding("backup", False, f"role {role} cannot execute {fn} ({WHY[fn]}): "
                                                f"GRANT EXECUTE ON FUNCTION {fn} TO {ident(role)};"))
    return out


# -- the report ------------------------------------------------------------------------------
def steps(target: Target) -> list[tuple[str, Callable[[], list[Finding]]]]:
    """Each configured layer: what the doctor waits on while asking it (with its limits), and how."""
    t = target.timeouts
    sql = f"connect limit {target.connect_limit_s:g} s, statement {t.statement_s:g} s"
    out: list[tuple[str, Callable[[], list[Finding]]]] = []
    if target.postgres is not None:
        w = target.postgres.writer
        out.append((f"postgres: the endpoints and a login at the writer {w.host}:{w.port} ({sql})",
                    lambda: postgres_findings(target)))
    if target.backup is not None:
        b = target.backup
        out.append((f"backup: `{b.tool} info` for stanza {b.stanza} on {b.host} "
                    f"(limit {t.subprocess_s:g} s, timeouts.subprocess_s)",
                    lambda: _backup_with_session(target)))
    if target.aws is not None:
        out.append((f"aws: the AWS API in {target.aws.region} (connect {t.sdk_connect_s:g} s, "
                    f"read {t.sdk_read_s:g} s per attempt)", lambda: aws_findings(target)))
    if target.hosts or target.app_hosts or target.outside_hosts:
        out.append((f"hosts: a command on each host (limit {t.subprocess_s:g} s)",
                    lambda: host_findings(target)))
    return out


def _not_checked(target: Target) -> list[Finding]:
    return [Finding(layer, None, why) for layer, why in layers.configured(target).items() if why]


def _ask(what: str, step: Callable[[], list[Finding]]) -> list[Finding]:
    """One layer's findings; a probe that gave up mid-way (a session that went silent) is one."""
    try:
        return step()
    except Unreachable as exc:
        return [Finding(what.split(":")[0], False, str(exc))]


def diagnose(target: Target) -> list[Finding]:
    """Every finding, configured layers first, then what the target leaves not checked."""
    return [f for what, step in steps(target) for f in _ask(what, step)] + _not_checked(target)


def _backup_with_session(target: Target) -> list[Finding]:
    """The backup layer's findings, with the archive-status grant when the writer logs in."""
    if target.postgres is None:
        return backup_findings(target)
    _, conn = _login(target, None, "writer")
    if conn is None:  # the postgres findings already say why
        return backup_findings(target)
    with conn:
        return backup_findings(target, conn)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _say(line: str) -> None:
    print(line, flush=True)  # a finding shows when its layer answers, also through a pipe


def run(target: Target, echo: Callable[[str], None] = _say,
        progress: Callable[[str], None] = _progress) -> int:
    """Print one line per finding as each layer answers; 0 when every configured layer is
    ready, else 1. Before each layer, ``progress`` (stderr) says what the doctor waits on."""
    findings: list[Finding] = []
    for what, step in steps(target):
        progress(f"doctor: asking {what} ...")
        t0 = time.monotonic()
        got = _ask(what, step)
        progress(f"doctor: {what.split(':')[0]} done in {time.monotonic() - t0:.1f} s")
        for f in got:
            echo(f.line())
        findings += got
    for f in _not_checked(target):
        echo(f.line())
        findings.append(f)
    missing = sum(f.ok is False for f in findings)
    echo(f"doctor {target.name}: " + (f"{missing} problem(s) to fix before a run" if missing
                                      else "every configured layer is reachable with the "
                                           "permissions the suites need"))
    return 1 if missing else 0
