"""Judges for facts read over SQL: hba, auth method, privileges, audit, replicas, engine."""

from __future__ import annotations

from pgproof.probes.postgres import HbaRule, PostgresFacts
from pgproof.target import Thresholds
from pgproof.verdict import CannotVerify, NotApplicable, NotChecked, Unreachable

WEAK_METHODS = {"trust", "md5", "password"}


def _hba(f: PostgresFacts) -> list[HbaRule]:
    if f.hba_rules is None:
        raise Unreachable(f"pg_hba_file_rules not readable on {f.endpoint}: {f.hba_error}")
    return f.hba_rules


def judge_tls2_hba(f: PostgresFacts) -> list[str]:
    """no ``host``/``hostnossl`` rule may accept a connection (only ``reject``)."""
    return [
        f"{f.endpoint}: pg_hba.conf line {r.line} is '{r.type} {','.join(r.database)} "
        f"{','.join(r.user)} {r.address or ''} {r.auth_method}', which accepts plaintext; "
        "the spec wants hostssl-only rules"
        for r in _hba(f) if r.type in ("host", "hostnossl") and r.auth_method != "reject"
    ]


def judge_auth1(f: PostgresFacts) -> list[str]:
    problems = []
    enc = f.settings.get("password_encryption")
    if enc != "scram-sha-256":
        problems.append(f"{f.endpoint}: password_encryption is {enc!r}; the spec wants "
                        "scram-sha-256")
    problems += [
        f"{f.endpoint}: pg_hba.conf line {r.line} uses '{r.auth_method}' for "
        f"{','.join(r.user)}@{','.join(r.database)}; the spec forbids trust/md5/password"
        for r in _hba(f) if r.auth_method in WEAK_METHODS
    ]
    return problems


def judge_authz1(f: PostgresFacts, app_role: str | None) -> list[str]:
    if not app_role:
        raise NotChecked("live SQL layer not checked for AUTHZ-1: no postgres.app_role "
                         "configured (name the application's role to judge its privileges)")
    role = f.roles.get(app_role)
    if role is None:
        return [f"{f.endpoint}: app role {app_role!r} does not exist"]
    bad = [name for name, on in (("SUPERUSER", role.superuser), ("CREATEROLE", role.createrole),
                                 ("CREATEDB", role.createdb), ("BYPASSRLS", role.bypassrls),
                                 ("REPLICATION", role.replication)) if on]
    return [f"{f.endpoint}: app role {app_role!r} has {', '.join(bad)}; the spec wants a role "
            "without SUPERUSER/CREATEROLE/CREATEDB/BYPASSRLS"] if bad else []


def judge_audit1(f: PostgresFacts) -> list[str]:
    problems = []
    libs = [x.strip() for x in f.setting("shared_preload_libraries").split(",")]
    if "pgaudit" not in libs:
        problems.append(f"{f.endpoint}: pgaudit is not in shared_preload_libraries "
                        f"({f.settings.get('shared_preload_libraries')!r})")
    elif not f.pgaudit_log or f.pgaudit_log.strip().lower() == "none":
        problems.append(f"{f.endpoint}: pgaudit.log is {f.pgaudit_log!r}; the spec wants audit "
                        "classes logged")
    for s in ("log_connections", "log_disconnections"):
        if f.settings.get(s) != "on":
            problems.append(f"{f.endpoint}: {s} is {f.settings.get(s)!r}; the spec wants on")
    return problems


def judge_ha5(f: PostgresFacts, th: Thresholds) -> list[str]:
    if not f.replicas:
        raise NotApplicable("no reader endpoints configured")
    problems, unknown = [], []
    for r in f.replicas:
        if r.in_recovery and r.lag_s is None:
            unknown.append(f"reader {r.endpoint}: {r.how or 'lag not measured'}")
        if not r.in_recovery and not r.write_refused:
            problems.append(f"reader {r.endpoint} accepts writes (it is not in recovery); the "
                            "spec wants replicas that refuse writes")
        elif not r.write_refused:
            raise CannotVerify(f"reader {r.endpoint}: write test inconclusive: {r.write_error}")
        if r.lag_s is not None and r.lag_s > th.replica_lag_max_s:
            problems.append(f"reader {r.endpoint} lags {r.lag_s:.1f} s ({r.how}); the spec "
                            f"wants at most {th.replica_lag_max_s:g} s")
    if unknown and not problems:
        raise CannotVerify("; ".join(unknown))
    return problems


def judge_mon2_slow_query(f: PostgresFacts) -> list[str]:
    v = f.settings.get("log_min_duration_statement")
    if v is None or int(v) < 0:
        return [f"{f.endpoint}: log_min_duration_statement is {v!r} (disabled); the spec wants "
                "slow-query logging set"]
    return []


def judge_mnt1(f: PostgresFacts, th: Thresholds) -> list[str]:
    num = int(f.settings.get("server_version_num", "0"))
    if num // 10000 != th.engine_major:
        return [f"{f.endpoint}: server is PostgreSQL {f.settings.get('server_version')}; the spec "
                f"wants {th.engine_major}.x"]
    return []
