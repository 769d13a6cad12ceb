"""PRIV-1..6's facts: roles and their attributes, the password-check module, the WAL senders'
roles, and, in every database, the public schema's ACL and the SECURITY DEFINER functions.

Catalogs such as ``pg_namespace`` and ``pg_proc`` are per database, so the probe opens one
session per database that accepts connections (``datallowconn``; template1 included, since new
databases copy it). Every session is bounded like the main SQL probe's (``timeouts.connect_s``
for the login, ``timeouts.statement_s`` for each statement); after the first timeout the
remaining databases are not tried (each would wait as long) and are reported as not read.
Everything here is readable with ``pg_monitor`` and the default PUBLIC grants: no
``pg_authid`` (superuser only, refused on RDS, Aurora and Azure).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import psycopg

from pgproof.probes.postgres import connect
from pgproof.probes.replication import MANAGED_SQL
from pgproof.target import Target
from pgproof.verdict import TimedOut, Unreachable

# Settings the judges read; a role outside pg_read_all_settings cannot see the first two.
SETTINGS = ("shared_preload_libraries", "dynamic_library_path", "pgtle.enable_password_check")
# What the queries below touch, for ``pgproof doctor`` (tests hold this list to the SQL here).
RELATIONS = ("pg_roles", "pg_settings", "pg_stat_replication", "pg_database",
             "pg_namespace", "pg_proc", "pg_depend", "pg_extension")
# The providers' administrator groups (RDS-SU / AUR-SU: rds_superuser; AZ-ROLES: azure_pg_admin).
ADMIN_GROUPS = ("rds_superuser", "azure_pg_admin")

ROLES_SQL = """
SELECT r.rolname, r.oid::int, r.rolcanlogin, r.rolsuper, r.rolcreaterole, r.rolcreatedb,
       r.rolreplication, r.rolbypassrls, r.rolconnlimit,
       ARRAY(SELECT g.rolname FROM pg_roles g
             WHERE g.oid <> r.oid AND (g.rolsuper OR g.rolname = ANY(%s))
               AND pg_has_role(r.oid, g.oid, 'MEMBER') ORDER BY g.rolname)
FROM pg_roles r WHERE r.rolname !~ '^pg_' ORDER BY r.rolname
"""
DATABASES_SQL = """
SELECT datname, has_database_privilege(datname, 'CONNECT'), datdba::int
FROM pg_database WHERE datallowconn ORDER BY datname
"""
# PUBLIC's privileges on the schema named public (grantee 0 in aclexplode is PUBLIC).
PUBLIC_SCHEMA_SQL = """
SELECT coalesce(n.nspacl::text, '(default)'),
       EXISTS (SELECT 1 FROM aclexplode(n.nspacl) a WHERE a.grantee = 0 AND a.privilege_type = 'CREATE')
FROM pg_namespace n WHERE n.nspname = 'public'
"""
# SECURITY DEFINER functions outside the system schemas and not members of an extension,
# with whether PUBLIC may execute them (a NULL proacl is the default: PUBLIC has EXECUTE) and
# whether search_path is pinned in their own configuration.
SECDEF_SQL = """
SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), r.rolname,
       p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                                   WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE'),
       EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) c WHERE c LIKE 'search\\_path=%')
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     LEFT JOIN pg_roles r ON r.oid = p.proowner
WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


@dataclass
class Role:
    name: str
    oid: int
    login: bool
    superuser: bool
    createrole: bool
    createdb: bool
    replication: bool
    bypassrls: bool
    connlimit: int
    admin_of: list[str]  # superuser roles and provider admin groups it is a member of


@dataclass
class SecDef:
    schema: str
    name: str
    args: str
    owner: str | None
    public_execute: bool
    search_path_pinned: bool

    @property
    def signature(self) -> str:
        return f"{self.schema}.{self.name}({self.args})"


@dataclass
class Database:
    name: str
    read: bool  # its catalogs were read
    why_not: str = ""  # why not: the sentence (names the grant when it is one)
    provider: bool = False  # a managed platform's own database the customer cannot enter
    public_acl: str | None = None  # None: no schema named public
    public_create: bool = False
    secdef: list[SecDef] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)  # pg_extension.extname (PRIV-7, ENC-4)


@dataclass
class PrivFacts:
    endpoint: str
    role: str
    roles: list[Role]
    settings: dict[str, str]
    hidden: list[str]  # SETTINGS the role may not read (pgtle's is absent without pg_tle)
    managed: str | None  # "RDS" / "Aurora" / "Azure": the provider's platform, seen from SQL
    walsenders: list[str]  # the role of each WAL sender on the writer (pg_stat_replication)
    databases: list[Database]

    def setting(self, name: str) -> str:
        """A setting's value; one the role may not read is "could not check", never ""."""
        if name in self.hidden:
            raise Unreachable(f"role {self.role} cannot read setting {name} on {self.endpoint} "
                              f"(GRANT pg_read_all_settings TO {self.role};)")
        return self.settings.get(name, "")


def _ident(name: str) -> str:
    """A name as GRANT wants it: bare when it is a plain lower-case identifier."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def _managed(conn: psycopg.Connection) -> str | None:
    row = conn.execute(MANAGED_SQL).fetchone()
    if row and row[0]:
        return str(row[0])
    azure = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = 'azure_pg_admin'").fetchone()
    return "Azure" if azure else None


def _database(target: Target, name: str) -> Database:
    with connect(target, dbname=name) as conn:
        row = conn.execute(PUBLIC_SCHEMA_SQL).fetchone()
        funcs = [SecDef(*r) for r in conn.execute(SECDEF_SQL)]
        exts = [str(r[0]) for r in conn.execute("SELECT extname FROM pg_extension ORDER BY 1")]
    acl, create = (str(row[0]), bool(row[1])) if row else (None, False)
    return Database(name, True, public_acl=acl, public_create=create, secdef=funcs,
                    extensions=exts)


def gather(target: Target) -> PrivFacts:
    pg = target.require_postgres("the live SQL layer")
    ep = pg.writer
    with connect(target) as conn:
        role = str(conn.execute("SELECT current_user").fetchone()[0])  # type: ignore[index]
        roles = [Role(*r) for r in conn.execute(ROLES_SQL, (list(ADMIN_GROUPS),))]
        settings = {n: s for n, s in conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", (list(SETTINGS),))}
        managed = _managed(conn)
        walsenders = [str(r[0]) for r in conn.execute(
            "SELECT usename FROM pg_stat_replication WHERE usename IS NOT NULL ORDER BY pid")]
        dbs = conn.execute(DATABASES_SQL).fetchall()
    bootstrap = next((r.name for r in roles if r.oid == 10), "")
    databases: list[Database] = []
    stop = ""
    for name, may_connect, owner in dbs:
        if stop:
            databases.append(Database(name, False, stop))
        elif not may_connect and managed and owner == 10:
            databases.append(Database(name, False, f"owned by {bootstrap}, the provider's own "
                                      f"superuser on {managed}; no customer role may enter it",
                                      provider=True))
        elif not may_connect:
            databases.append(Database(name, False, f"role {role} may not connect to database "
                                      f"{name} (GRANT CONNECT ON DATABASE {_ident(name)} TO "
                                      f"{_ident(role)};)"))
        else:
            try:
                databases.append(_database(target, name))
            except TimedOut as exc:
                stop = f"not tried after database {name} timed out ({exc})"
                databases.append(Database(name, False, str(exc)))
            except (Unreachable, psycopg.Error) as exc:
                databases.append(Database(name, False, str(exc).strip() or type(exc).__name__))
    hidden = [s for s in SETTINGS[:2] if s not in settings]
    return PrivFacts(f"{ep.host}:{ep.port}", role, roles, settings, hidden, managed, walsenders,
                     databases)
