"""PRIV-1..PRIV-7: the automatable CIS PostgreSQL 17 recommendations on roles, privileges and
connections (sections 4, 5 and 7), judged over SQL with pg_monitor and PUBLIC's default grants.

CIS numbers are CIS PostgreSQL 17 Benchmark v1.0.0's; 15 v1.2.0 and 16 v1.1.0 number and word
these items the same (their audit queries differ only in letter case). The application role's
privileges stay AUTHZ-1's; PRIV-1 judges every other login role.
"""

from __future__ import annotations

from typing import Any

from pgproof.catalogue.build import PASSWORDS, check, control, inherited, not_applicable
from pgproof.catalogue.runner import resolve

RDS_REPLICAS = ("https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/"
                "USER_PostgreSQL.Replication.ReadReplicas.Configuration.html")
AURORA_OVERVIEW = "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Aurora.Overview.html"
AZURE_HA = "https://learn.microsoft.com/azure/reliability/reliability-azure-database-postgresql"


def _facts(name: str) -> Any:
    return resolve(f"pgproof.checks.priv:{name}")


def admin_roles(priv_facts: Any, target: Any, thresholds: Any) -> list[str]:
    """PRIV-1 with the application role left to AUTHZ-1."""
    app = target.postgres.app_role if target.postgres else None
    return _facts("judge_priv1")(priv_facts, thresholds, app)  # type: ignore[no-any-return]


def replication_role(priv_facts: Any, target: Any) -> list[str]:
    """PRIV-6, told how many readers the target names (a standby that should be streaming)."""
    readers = len(target.postgres.readers) if target.postgres else 0
    return _facts("judge_priv6")(priv_facts, readers)  # type: ignore[no-any-return]


def _dbname(target: Any) -> str:
    return str(target.postgres.dbname) if target.postgres else "postgres"


def set_user_installed(priv_facts: Any, target: Any) -> list[str]:
    """PRIV-7 in the target's own database."""
    return _facts("judge_priv7")(priv_facts, _dbname(target))  # type: ignore[no-any-return]


def _set_user(f: Any, target: Any) -> str:
    return (f"shared_preload_libraries={f.settings.get('shared_preload_libraries')}; database "
            f"{_dbname(target)} has set_user")


def _admins(f: Any, target: Any, th: Any) -> str:
    allowed = [r.name for r in f.roles if r.login and (r.oid == 10 or r.name in th.admin_roles)]
    return (f"{len([r for r in f.roles if r.login])} login roles; administrators: "
            f"{', '.join(allowed) or 'none'} (bootstrap superuser and thresholds.admin_roles); "
            f"the app role is AUTHZ-1's")


def _dbs(f: Any) -> str:
    read = [d.name for d in f.databases if d.read]
    return f"databases read: {', '.join(read)}" + str(_facts("unread")(f.databases))


def _secdef(f: Any) -> str:
    n = sum(len(d.secdef) for d in f.databases)
    return f"{_dbs(f)}; {n} SECURITY DEFINER function(s) outside extensions, none open to PUBLIC"


def _public(f: Any) -> str:
    return (_dbs(f) + "; schema public: " + ", ".join(
        f"{d.name} {d.public_acl}" for d in f.databases if d.read and d.public_acl))


def _limits(f: Any) -> str:
    return "connection limits: " + ", ".join(
        f"{r.name} {r.connlimit if not r.superuser else 'superuser (no limit applies)'}"
        for r in f.roles if r.login)


def _passcheck(f: Any) -> str:
    return (f"shared_preload_libraries={f.settings.get('shared_preload_libraries')}, "
            f"dynamic_library_path={f.settings.get('dynamic_library_path')}")


def _walsenders(f: Any, _t: Any) -> str:
    return "WAL senders stream as: " + ", ".join(dict.fromkeys(f.walsenders))


CONTROLS = (
    control(
        "PRIV-1", "Few administrators",
        "No login role other than the bootstrap superuser, the application role (AUTHZ-1) and "
        "the roles in admin_roles has SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS, "
        "or is a member of a superuser role, rds_superuser or azure_pg_admin.",
        "Self-managed: ALTER ROLE <r> NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION "
        "NOBYPASSRLS; REVOKE <superuser role> FROM <r>. RDS/Aurora: REVOKE rds_superuser FROM <r> "
        "(as the master user). Azure: REVOKE azure_pg_admin FROM <r> (as the server admin). Name "
        "the intended administrators (e.g. the master user) in thresholds.admin_roles.",
        severity="high", thresholds="admin_roles", hipaa=("164.312(a)(1)", "164.308(a)(4)(i)"),
        cis=("4.3",),
        checks=(check("sql", admin_roles, "priv_facts", "target", "thresholds",
                      evidence=_admins),)),
    control(
        "PRIV-2", "No open SECURITY DEFINER functions",
        "In every database, no SECURITY DEFINER function outside an extension is executable by "
        "PUBLIC without its own search_path.",
        "REVOKE EXECUTE ON FUNCTION <f> FROM PUBLIC and grant it to the roles that need it; "
        "ALTER FUNCTION <f> SET search_path = <trusted schemas>, pg_temp; or ALTER FUNCTION <f> "
        "SECURITY INVOKER. The same SQL on RDS, Aurora and Azure (as the function's owner).",
        severity="high", hipaa=("164.312(a)(1)",), cis=("4.5",),
        checks=(check("sql", "priv:judge_priv2", "priv_facts", evidence=_secdef),)),
    control(
        "PRIV-3", "Public schema closed to PUBLIC",
        "In every database (template1 included), PUBLIC has no CREATE on schema public; "
        "USAGE alone (PostgreSQL 15's default) is compliant.",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC in each database (and template1); the same "
        "SQL on RDS, Aurora and Azure as the database owner. Databases upgraded from PostgreSQL "
        "14 or earlier keep the old grant until revoked.",
        severity="medium", hipaa=("164.312(a)(1)",), cis=("4.6",),
        checks=(check("sql", "priv:judge_priv3", "priv_facts", evidence=_public),)),
    control(
        "PRIV-4", "Per-role connection limits",
        "Every login role that is not a superuser has a CONNECTION LIMIT (not -1).",
        "ALTER ROLE <r> CONNECTION LIMIT <n>, sized to the role's pools and clients; the same SQL "
        "on RDS, Aurora and Azure.",
        severity="low", unmapped_reason="availability against one role exhausting the "
        "connection slots; no HIPAA Security Rule safeguard names per-account session limits",
        cis=("5.5",),
        checks=(check("sql", "priv:judge_priv4", "priv_facts", evidence=_limits),)),
    control(
        "PRIV-5", "Password complexity enforced",
        "A password-check hook is loaded: passwordcheck or credcheck in shared_preload_libraries "
        "(a bare name only with dynamic_library_path resolving to $libdir first), or pg_tle with "
        "pgtle.enable_password_check = require.",
        "Self-managed: shared_preload_libraries = '...,$libdir/passwordcheck' (or credcheck) and "
        "restart. RDS/Aurora: add pg_tle to shared_preload_libraries in the parameter group, "
        "register a passcheck function (pgtle.register_feature) and set "
        "pgtle.enable_password_check = require. Azure: load a password-check extension if the "
        "server's azure.extensions offers one (not established here).",
        severity="medium", hipaa=PASSWORDS, cis=("5.6",),
        checks=(check("sql", "priv:judge_priv5", "priv_facts",
                      settings="shared_preload_libraries dynamic_library_path",
                      evidence=_passcheck),)),
    control(
        "PRIV-6", "Replication-only role",
        "Standbys stream WAL as a role with REPLICATION that is not a superuser.",
        "CREATE ROLE <replicator> LOGIN REPLICATION; use it in the standbys' primary_conninfo "
        "(Patroni: authentication.replication) and in a 'hostssl replication <replicator>' rule; "
        "ALTER ROLE <replicator> NOSUPERUSER.",
        severity="medium", hipaa=("164.312(a)(1)",), cis=("7.1",),
        platforms={
            "rds": inherited("\"Amazon RDS sets the necessary parameters and permissions for you, "
                             "on the source DB instance and the read replica\"; \"PostgreSQL uses "
                             f"a replication role to perform streaming replication\" ({RDS_REPLICAS})"),
            "aurora": not_applicable("an Aurora Replica \"connects to the same storage volume as "
                                     "the primary DB instance\": no WAL streams to a standby "
                                     f"({AURORA_OVERVIEW})"),
            "azure": inherited("the service provisions \"physically separate primary and standby "
                               "replicas\" with data \"synchronously committed to both\"; the "
                               f"replication is Microsoft's ({AZURE_HA})"),
        },
        checks=(check("sql", replication_role, "priv_facts", "target", evidence=_walsenders),)),
    control(
        "PRIV-7", "Superuser escalation through set_user",
        "set_user is in shared_preload_libraries and created in the target's database, so "
        "administrators escalate with set_user() / set_user_u(), logged, instead of logging in "
        "as a superuser (CIS 4.8).",
        "Self-managed: install set_user (Debian: postgresql-<major>-set-user), add it to "
        "shared_preload_libraries and restart, then CREATE EXTENSION set_user in the database "
        "and GRANT EXECUTE ON FUNCTION set_user(text) only to the administrators. RDS, Aurora "
        "and Azure: where the provider offers it (SELECT name FROM pg_available_extensions "
        "WHERE name = 'set_user'); the check reads what the server reports on every platform.",
        severity="medium", hipaa=("164.312(b)", "164.312(a)(1)"), cis=("4.8",),
        checks=(check("sql", set_user_installed, "priv_facts", "target",
                      settings="shared_preload_libraries", evidence=_set_user),)),
)
