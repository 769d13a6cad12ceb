"""The mutation catalogue: one named misconfiguration of the lab and the controls it must fail.

``pgproof lab break NAME`` applies one (live side, AWS twin, or both) and
records it; ``pgproof lab heal`` reverts it. ``--shape aurora`` sends the AWS half
to the twin's Aurora cluster (``lab-aurora``) instead of its RDS instance. The matrix in tests/ proves each
check can fail: healthy -> all pass, break -> exactly ``breaks`` fail, heal -> healthy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pgproof.lab import aws_twin, configs
from pgproof.lab import backup_mutations as bm
from pgproof.lab import live_mutations as lm
from pgproof.lab.aws_mutations import AWS_MUTATIONS
from pgproof.lab.azure_mutations import AZURE_MUTATIONS
from pgproof.lab.configs import CONNECTION_LIMITS, PG_HBA
from pgproof.lab.state import LabState, default_state_dir
from pgproof.procs import ComponentError

Step = Callable[[LabState], None]


@dataclass(frozen=True)
class Mutation:
    name: str
    description: str
    breaks: frozenset[str]
    live_break: Step | None = None
    live_heal: Step | None = None
    aws: str | None = None  # name in pgproof.lab.aws_mutations.AWS_MUTATIONS


def _m(name: str, description: str, breaks: str, live_break: Step | None = None,
       live_heal: Step | None = None, aws: str | None = None) -> Mutation:
    return Mutation(name, description, frozenset(breaks.split()), live_break, live_heal, aws)


LAB_HOSTS = ("127.0.0.1", "localhost")
LOG_QUIET = {"log_min_messages": "error", "log_min_error_statement": "fatal",
             "log_error_verbosity": "terse", "log_statement": "none",
             "log_replication_commands": "off"}
LOG_DEBUG = {"debug_print_parse": "on", "debug_print_rewritten": "on", "debug_print_plan": "on",
             "debug_pretty_print": "off"}
# A directory nobody created, searched before $libdir (PRIV-5's mutation; a reload, no restart).
UNTRUSTED_LIBRARY_PATH = "/var/tmp/pgproof-untrusted-libs:$libdir"
SYSLOG_LOSSY = {"syslog_sequence_numbers": "off", "syslog_split_messages": "off", "syslog_ident": ""}
PLAINTEXT_HBA = [*PG_HBA, "host all all 127.0.0.1/32 scram-sha-256"]
MD5_HBA = [line.replace("scram-sha-256", "md5") if line.startswith("hostssl all") else line
           for line in PG_HBA]


def _md5_auth(s: LabState) -> None:
    lm.set_parameters(s, {"password_encryption": "md5"})
    lm.set_hba(s, MD5_HBA)


def _scram_auth(s: LabState) -> None:
    lm.set_parameters(s, {"password_encryption": "scram-sha-256"})
    lm.set_hba(s, PG_HBA)


LIVE: list[Mutation] = [
    _m("tls-weak", "TLS minimum lowered to 1.0 with every cipher allowed", "TLS-1 TLS-5",
       lambda s: lm.set_parameters(s, {"ssl_min_protocol_version": "TLSv1",
                                       "ssl_ciphers": "ALL:@SECLEVEL=0"}),
       lambda s: lm.set_parameters(s, {"ssl_min_protocol_version": "TLSv1.2", "ssl_ciphers": None}),
       aws="tls-min-1.0"),
    _m("tls-anon-ciphers", "ssl_ciphers = 'ALL:@SECLEVEL=0': anonymous ADH/AECDH suites "
       "accepted at TLS 1.2 (the minimum stays 1.2)", "TLS-5",
       lambda s: lm.set_parameters(s, {"ssl_ciphers": "ALL:@SECLEVEL=0"}),
       lambda s: lm.set_parameters(s, {"ssl_ciphers": None})),
    _m("tls-no-forward-secrecy", "RSA server certificate with the default ssl_ciphers: static-RSA "
       "key exchange (no forward secrecy) accepted", "TLS-5",
       lambda s: lm.reissue_cert(s, LAB_HOSTS, 365, key_type="rsa"),
       lambda s: lm.reissue_cert(s, LAB_HOSTS, 365)),
    _m("plaintext-allowed", "a 'host' hba rule accepts plaintext; rds.force_ssl=0", "TLS-2",
       lambda s: lm.set_hba(s, PLAINTEXT_HBA), lambda s: lm.set_hba(s, PG_HBA), aws="force-ssl-off"),
    _m("cert-expiring", "server certificate expires in 10 days", "TLS-4",
       lambda s: lm.reissue_cert(s, LAB_HOSTS, 10), lambda s: lm.reissue_cert(s, LAB_HOSTS, 365)),
    _m("cert-wrong-host", "server certificate issued for db.example.com", "TLS-3",
       lambda s: lm.reissue_cert(s, ("db.example.com",), 365),
       lambda s: lm.reissue_cert(s, LAB_HOSTS, 365)),
    _m("pooler-server-tls-optional", "PgBouncer only prefers TLS to the server", "TLS-6",
       lambda s: lm.pgbouncer_setting(s, server_tls="prefer"), lambda s: lm.pgbouncer_setting(s)),
    _m("md5-auth", "password_encryption=md5 and md5 hba rules", "AUTH-1",
       _md5_auth, _scram_auth),
    _m("superuser-app", "the app role is a superuser", "AUTHZ-1",
       lambda s: lm.set_app_superuser(s, True), lambda s: lm.set_app_superuser(s, False)),
    _m("extra-admin", "one more login role with CREATEDB, not in admin_roles", "PRIV-1",
       lambda s: lm.extra_admin(s, True), lambda s: lm.extra_admin(s, False)),
    _m("secdef-public", "a SECURITY DEFINER function in appdb, executable by PUBLIC, without a "
       "search_path", "PRIV-2",
       lambda s: lm.secdef_function(s, True), lambda s: lm.secdef_function(s, False)),
    _m("public-schema-create", "PUBLIC may CREATE in appdb's public schema", "PRIV-3",
       lambda s: lm.public_schema_create(s, True), lambda s: lm.public_schema_create(s, False)),
    _m("connlimit-off", "the app role has no connection limit", "PRIV-4",
       lambda s: lm.app_connection_limit(s, -1),
       lambda s: lm.app_connection_limit(s, CONNECTION_LIMITS["app"])),
    _m("library-path-untrusted", "dynamic_library_path searches another directory before "
       "$libdir, so the preloaded passwordcheck resolves there first", "PRIV-5",
       lambda s: lm.set_parameters(s, {"dynamic_library_path": UNTRUSTED_LIBRARY_PATH}),
       lambda s: lm.set_parameters(s, {"dynamic_library_path": None})),
    _m("replicator-superuser", "the role the standbys stream as is a superuser", "PRIV-6",
       lambda s: lm.replicator_superuser(s, True), lambda s: lm.replicator_superuser(s, False)),
    _m("source-dsn", "a DSN with a password committed to the app's source", "AUTH-4",
       lambda s: lm.write_source_literal(s, True), lambda s: lm.write_source_literal(s, False)),
    _m("pgaudit-off", "pgaudit.log = none live; pgaudit dropped from the RDS parameter group",
       "AUDIT-1",
       lambda s: lm.set_parameters(s, {"pgaudit.log": "none"}),
       lambda s: lm.set_parameters(s, {"pgaudit.log": "ddl,role"}), aws="pgaudit-off"),
    _m("replica-writable", "the reader endpoint routes to the primary", "HA-5",
       lambda s: lm.restart_haproxy(s, "/primary"), lambda s: lm.restart_haproxy(s, "/replica")),
    _m("pool-size-wrong", "PgBouncer default_pool_size = 5", "POOL-1",
       lambda s: lm.pgbouncer_setting(s, pool_size=5), lambda s: lm.pgbouncer_setting(s)),
    _m("health-no-ssl", "the app connects without TLS (its health endpoint breaks)", "MON-3",
       lambda s: lm.restart_health(s, "disable"), lambda s: lm.restart_health(s, "verify-full")),
    _m("exposed-to-outside", "the writer answers from outside the private network", "NET-5",
       lambda s: lm.expose_writer(s, True), lambda s: lm.expose_writer(s, False)),
    _m("slow-query-log-off", "log_min_duration_statement = -1", "MON-2",
       lambda s: lm.set_parameters(s, {"log_min_duration_statement": -1}),
       lambda s: lm.set_parameters(s, {"log_min_duration_statement": 1000}), aws="slow-log-off"),
    _m("archive-failing", "archive_command fails (/bin/false): WAL stops reaching the repository",
       "BAK-2", lambda s: bm.archive_failing(s, True), lambda s: bm.archive_failing(s, False)),
    _m("backup-retention-short", "pgBackRest keeps full backups 3 days", "BAK-1",
       lambda s: bm.retention(s, 3), lambda s: bm.retention(s, 7)),
    _m("backup-unencrypted", "the pgBackRest repository has no cipher (cipher-type none)", "ENC-2",
       lambda s: bm.repository_cipher(s, False), lambda s: bm.repository_cipher(s, True)),
    # The CIS logging controls (LOG-*): one realistic change each, through Patroni + reload.
    _m("log-quiet", "logging turned down to save disk: log_min_messages=error, "
       "log_min_error_statement=fatal, log_error_verbosity=terse, log_statement=none, "
       "log_replication_commands=off (and in the twins' parameters)",
       "LOG-6 LOG-7 LOG-12 LOG-15 LOG-18",
       lambda s: lm.set_parameters(s, LOG_QUIET),
       lambda s: lm.set_parameters(s, {k: configs.CLUSTER_PARAMETERS.get(k) for k in LOG_QUIET}),
       aws="log-quiet"),
    _m("log-debug", "a developer's query debugging left on: debug_print_parse, "
       "debug_print_rewritten and debug_print_plan on, debug_pretty_print off", "LOG-8 LOG-9 "
       "LOG-10 LOG-11", lambda s: lm.set_parameters(s, LOG_DEBUG),
       lambda s: lm.set_parameters(s, dict.fromkeys(LOG_DEBUG)), aws="log-debug"),
    _m("log-files-lax", "log files readable by others (log_file_mode=0644), never truncated "
       "and never rotated (log_truncate_on_rotation=off, log_rotation_age=0, "
       "log_rotation_size=0)", "LOG-2 LOG-3 LOG-4 LOG-5",
       lambda s: lm.set_parameters(s, {"log_file_mode": "0644", "log_truncate_on_rotation": "off",
                                       "log_rotation_age": 0, "log_rotation_size": 0}),
       lambda s: _back_to_defaults(s, {"log_file_mode": "0600", "log_rotation_age": 1440,
                                       "log_rotation_size": 10240},
                                   log_truncate_on_rotation="on")),
    _m("log-prefix-local", "log lines without user, database or client (log_line_prefix='%m '), "
       "in local time (log_timezone=America/New_York), with a DNS lookup per connection "
       "(log_hostname=on; log_hostname=1 in the twin's parameter group)", "LOG-13 LOG-14 LOG-16",
       lambda s: lm.set_parameters(s, {"log_line_prefix": "%m ", "log_timezone": "America/New_York",
                                       "log_hostname": "on"}),
       lambda s: lm.set_parameters(s, {"log_line_prefix": configs.CLUSTER_PARAMETERS["log_line_prefix"],
                                       "log_timezone": "UTC", "log_hostname": None}),
       aws="log-hostname-on"),
    _m("jit-debug-on", "JIT debugger and profiler hooks on (jit_debugging_support, "
       "jit_profiling_support: new sessions)", "LOG-17",
       lambda s: lm.set_parameters(s, {"jit_debugging_support": "on", "jit_profiling_support": "on"}),
       lambda s: lm.set_parameters(s, {"jit_debugging_support": None, "jit_profiling_support": None})),
    _m("replication-plaintext", "standbys replicate with sslmode=disable; a 'host replication' "
       "hba rule accepts them", "TLS-2 TLS-7",
       lambda s: bm.replication_plaintext(s, True), lambda s: bm.replication_plaintext(s, False)),
    _m("host-psql-history", "a psql history file in the database account's home (the lab's "
       "own, its nodes' HOME)", "HOST-2",
       lambda s: lm.psql_history(s, True), lambda s: lm.psql_history(s, False)),
    _m("host-pgpassword-env", "a process of the lab's database account runs with PGPASSWORD "
       "in its environment", "HOST-2",
       lambda s: lm.pgpassword_process(s, True), lambda s: lm.pgpassword_process(s, False)),
    _m("host-umask-open", "a process of the lab's database account runs with umask 0022",
       "HOST-3", lambda s: lm.open_umask_process(s, True),
       lambda s: lm.open_umask_process(s, False)),
    _m("host-hba-readable", "the nodes' pg_hba.conf readable by every OS user (0644)", "HOST-3",
       lambda s: lm.hba_mode(s, 0o644), lambda s: lm.hba_mode(s, 0o600)),
    _m("log-files-default", "PostgreSQL's own log placement on every node (ALTER SYSTEM): "
       "log_directory = 'log' inside PGDATA and a fixed log_filename = 'postgresql.log'",
       "LOG-19 LOG-20", lambda s: lm.log_files_misplaced(s, True),
       lambda s: lm.log_files_misplaced(s, False)),
    _m("syslog-lossy", "syslog settings that lose messages: syslog_sequence_numbers off, "
       "syslog_split_messages off, syslog_ident ''", "LOG-21 LOG-22 LOG-23",
       lambda s: lm.set_parameters(s, SYSLOG_LOSSY),
       lambda s: lm.set_parameters(s, dict.fromkeys(SYSLOG_LOSSY))),
    _m("set-user-dropped", "the set_user extension dropped from appdb", "PRIV-7",
       lambda s: lm.app_extension(s, "set_user", True),
       lambda s: lm.app_extension(s, "set_user", False)),
    _m("pgdata-version-stale", "node2's data directory says PG_VERSION 14 (a data directory "
       "left from another installation) while the server runs 15", "HOST-6",
       lambda s: lm.pg_version_file(s, "node2", "14"),
       lambda s: lm.pg_version_file(s, "node2", lm.PG_MAJOR)),
    _m("backup-stanza-missing", "pgBackRest pointed at a repository where the stanza was never "
       "created: pgbackrest info says missing stanza path, WAL archiving fails", "BAK-2 BAK-7",
       lambda s: bm.stanza_missing(s, True), lambda s: bm.stanza_missing(s, False)),
    _m("pgcrypto-dropped", "the pgcrypto extension dropped from appdb", "ENC-4",
       lambda s: lm.app_extension(s, "pgcrypto", True),
       lambda s: lm.app_extension(s, "pgcrypto", False)),
]

def _back_to_defaults(state: LabState, defaults: dict[str, object], **lab: object) -> None:
    """Wait for PostgreSQL's defaults as ``setting`` shows them (log_file_mode's boot_val is
    384, its setting '0600', so the generic "back to boot_val" wait never holds), then drop
    the keys from Patroni's configuration again: the lab never had them."""
    lm.set_parameters(state, {**defaults, **lab})
    lm.patch_cluster(state, {"postgresql": {"parameters": dict.fromkeys(defaults)}})


# Controls no lab mutation can break, and why (the matrix test checks this list is complete).
# Game-day controls and the lab mutation their lab test applies to prove they can fail.
GAMEDAY_MUTATIONS: dict[str, str] = {
    "BAK-6": "archive-failing",  # the WAL after T never reaches the repository: no restore to T
}

UNBREAKABLE: dict[str, str] = {
    "NET-4": "the lab lives on loopback; a public address cannot be bound here (unit-tested judge)",
    "LOG-1": "logging_collector changes only with a restart (too slow for the matrix) and "
             "PostgreSQL refuses an empty or unknown log_destination (unit-tested judge)",
    "HOST-1": "no systemd unit starts the lab's nodes (the lab target says unit=none, so it "
              "cannot be verified) and a unit's state is machine-wide; unit-tested judge",
    "HOST-4": "the extension directory is the machine's, shared by every lab: judged read-only; "
              "unit-tested judge",
    "HOST-5": "FIPS mode is machine-wide (kernel, OpenSSL): judged read-only, failing, waived "
              "in the lab target; unit-tested judge",
}


def catalogue() -> dict[str, Mutation]:
    out = {m.name: m for m in LIVE}
    used = {m.aws for m in LIVE if m.aws}
    for name, am in AWS_MUTATIONS.items():
        if name not in used and name not in out and not am.in_process_only:
            out[name] = Mutation(name, am.description, frozenset(am.breaks), aws=name)
    return out


def _active_file(state: LabState) -> Path:
    return state.state_dir / "mutation.json"


def _state(state_dir: Path | None) -> LabState:
    state = LabState.load((state_dir or default_state_dir()).resolve())
    if state is None or not state.target_file.exists():
        raise ComponentError("lab", "not running; start it with `pgproof lab up`")
    return state


def apply(state_dir: Path | None, name: str | None, aurora: bool = False) -> str:
    """Apply ``name``; ``aurora``: its AWS half on the Aurora cluster twin (``lab-aurora``)."""
    cat = catalogue()
    if not name or name not in cat:
        raise ComponentError("mutation", f"unknown mutation {name!r}; known: {', '.join(sorted(cat))}")
    state = _state(state_dir)
    if state.topology == "vpc":  # mutations drive the DB tier from the root namespace
        raise ComponentError("mutation", "mutations run on the loopback lab only; this lab has "
                             "the vpc topology (`pgproof lab up` without --topology vpc)")
    active = _active_file(state)
    if active.exists():
        current = json.loads(active.read_text())["name"]
        raise ComponentError("mutation", f"{current!r} is still applied; run `pgproof lab heal` first")
    m = cat[name]
    if aurora and not m.aws:
        raise ComponentError("mutation", f"{name} changes only the live lab, which lab-rds and "
                             "lab-aurora share; run it without --shape aurora")
    if aurora and not state.aws_aurora:
        raise ComponentError("mutation", "this lab has no Aurora twin (it was started with "
                             "--no-aws or --cloud azure); start it with `pgproof lab up`")
    # Record first: a half-applied mutation must still be healable.
    active.write_text(json.dumps({"name": name, "shape": "aurora" if aurora else "rds"}))
    if m.live_break:
        m.live_break(state)
    if m.aws:
        _aws(state, m.aws, "apply", aurora)
    where = " to lab-aurora's cluster" if aurora else ""
    return f"lab: applied {name}{where} ({m.description}); must fail: {', '.join(sorted(m.breaks))}"


def heal(state_dir: Path | None) -> str:
    state = _state(state_dir)
    active = _active_file(state)
    if not active.exists():
        return "lab: nothing to heal"
    record = json.loads(active.read_text())
    name, aurora = record["name"], record.get("shape") == "aurora"
    m = catalogue()[name]
    if m.live_heal:
        m.live_heal(state)
    if m.aws:
        _aws(state, m.aws, "heal", aurora)
    active.unlink()
    return f"lab: healed {name}"


def _aws(state: LabState, name: str, action: str, aurora: bool = False) -> None:
    if not (state.aws_aurora if aurora else state.aws):
        return
    aws_twin.run_lab_mutation(state, AWS_MUTATIONS[name], action, aurora=aurora)


def breaks_by_name() -> dict[str, frozenset[str]]:
    """Every lab mutation (Azure twin's as ``azure:NAME``) -> the controls it must fail: what
    ``pgproof controls show`` lists, registered under the ``pgproof.mutations`` entry point."""
    out = {n: m.breaks for n, m in catalogue().items()}
    out.update({f"azure:{n}": m.breaks for n, m in AZURE_MUTATIONS.items()})
    return out
