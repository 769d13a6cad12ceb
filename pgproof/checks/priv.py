"""Judges for PRIV-1..6 (CIS sections 4, 5 and 7 on roles, privileges and connections).

Pure functions of ``probes.privileges.PrivFacts`` (and the thresholds): each returns the
problems found, one sentence each. A database whose catalogs could not be read leaves the
per-database controls unjudged there: a problem found elsewhere still fails, otherwise the
control is an error naming why (the GRANT when it is one), never a pass.
"""

from __future__ import annotations

from pgproof.probes.privileges import Database, PrivFacts, Role
from pgproof.target import Thresholds
from pgproof.verdict import CannotVerify, NotApplicable, Unreachable

BOOTSTRAP_OID = 10  # the role initdb creates: postgres, or the provider's (rdsadmin, azuresu)
PASSWORD_MODULES = ("passwordcheck", "credcheck")


def _attributes(r: Role) -> list[str]:
    return [name for name, on in (("SUPERUSER", r.superuser), ("CREATEROLE", r.createrole),
                                  ("CREATEDB", r.createdb), ("REPLICATION", r.replication),
                                  ("BYPASSRLS", r.bypassrls)) if on]


def judge_priv1(f: PrivFacts, th: Thresholds, app_role: str | None) -> list[str]:
    """CIS 4.3: no login role beyond ``admin_roles`` holds an administrative attribute or is a
    member of a superuser role or the provider's admin group. The bootstrap superuser is the
    installation's own; the application role is AUTHZ-1's."""
    problems = []
    for r in f.roles:
        if not r.login or r.oid == BOOTSTRAP_OID or r.name == app_role or r.name in th.admin_roles:
            continue
        held = _attributes(r) + [f"member of {g}" for g in r.admin_of]
        if held:
            problems.append(f"{f.endpoint}: login role {r.name!r} has {', '.join(held)}; the spec "
                            "wants administrative privileges only on the roles listed in "
                            f"thresholds.admin_roles ({', '.join(th.admin_roles) or 'none'})")
    return problems


def _databases(f: PrivFacts, problems: list[str]) -> list[str]:
    """Problems stand; with none, a database not read makes the control an error."""
    unread = [d for d in f.databases if not d.read and not d.provider]
    if problems or not unread:
        return problems
    raise Unreachable("; ".join(f"database {d.name} not read: {d.why_not}" for d in unread))


def judge_priv2(f: PrivFacts) -> list[str]:
    """CIS 4.5: no SECURITY DEFINER function outside an extension is executable by PUBLIC
    without a search_path of its own (a caller's search_path then decides what it runs)."""
    problems = [
        f"{f.endpoint}: database {d.name}: SECURITY DEFINER function {fn.signature} (owner "
        f"{fn.owner}) is executable by PUBLIC and sets no search_path; the spec wants such "
        "functions revoked from PUBLIC, given SET search_path, or made SECURITY INVOKER"
        for d in f.databases for fn in d.secdef if fn.public_execute and not fn.search_path_pinned]
    return _databases(f, problems)


def judge_priv3(f: PrivFacts) -> list[str]:
    """CIS 4.6's note (CVE-2018-1058): PUBLIC may not CREATE in any database's public schema.
    USAGE alone (PostgreSQL 15's default ``=U/pg_database_owner``) is compliant."""
    problems = [
        f"{f.endpoint}: database {d.name}: PUBLIC has CREATE on schema public ({d.public_acl}); "
        "the spec wants REVOKE CREATE ON SCHEMA public FROM PUBLIC"
        for d in f.databases if d.public_create]
    return _databases(f, problems)


def judge_priv4(f: PrivFacts) -> list[str]:
    """CIS 5.5: every login role PostgreSQL would limit has a CONNECTION LIMIT (not -1).
    Superusers are skipped: PostgreSQL never applies a role's limit to a superuser."""
    unlimited = [r.name for r in f.roles if r.login and not r.superuser and r.connlimit < 0]
    return [f"{f.endpoint}: login role {n!r} has no connection limit (rolconnlimit -1); the spec "
            "wants ALTER ROLE ... CONNECTION LIMIT n on every login role" for n in unlimited]


def _library_name(entry: str) -> tuple[str, bool]:
    """(module name, resolved through dynamic_library_path) of a preload list entry."""
    path = entry.strip().strip('"')
    base = path.rsplit("/", 1)[-1].removesuffix(".so")
    return base, "/" not in path


def judge_priv5(f: PrivFacts) -> list[str]:
    """CIS 5.6: a password-complexity hook is loaded in every backend.

    Self-managed (and wherever the modules exist): passwordcheck or credcheck in
    shared_preload_libraries; a bare name is looked up through dynamic_library_path, so CIS's
    audit accepts it only when that resolves to ``$libdir`` first. RDS and Aurora: pg_tle's
    passcheck hook, ``pgtle.enable_password_check = require`` (``on`` works only while a
    passcheck function is registered, which is not read here)."""
    libs = [e for e in f.setting("shared_preload_libraries").split(",") if e.strip()]
    found = [(name, bare) for name, bare in map(_library_name, libs) if name in PASSWORD_MODULES]
    if found:
        path = f.setting("dynamic_library_path")
        first = path.split(":")[0].strip() if path else ""
        if any(bare for _, bare in found) and first != "$libdir":
            name = next(n for n, bare in found if bare)
            return [f"{f.endpoint}: shared_preload_libraries names {name} without a path and "
                    f"dynamic_library_path is {path!r}: the module is looked up in "
                    f"{first or 'nothing'} before $libdir; the spec wants $libdir/{name} (or "
                    "dynamic_library_path = '$libdir')"]
        return []
    if any(_library_name(e)[0] == "pg_tle" for e in libs):
        mode = f.settings.get("pgtle.enable_password_check")
        if mode == "require":
            return []
        if mode == "on":
            raise CannotVerify(f"{f.endpoint}: pgtle.enable_password_check is 'on': whether a "
                               "passcheck function is registered is not read by pgproof; 'require' "
                               "makes the server refuse passwords when none is")
        return [f"{f.endpoint}: pg_tle is loaded but pgtle.enable_password_check is "
                f"{mode!r}; the spec wants a password-check hook (require)"]
    return [f"{f.endpoint}: no password-complexity module is loaded (shared_preload_libraries = "
            f"{f.settings.get('shared_preload_libraries')!r}); the spec wants passwordcheck or "
            "credcheck (self-managed), or pg_tle's passcheck hook (RDS, Aurora)"]


def judge_priv6(f: PrivFacts, readers: int) -> list[str]:
    """CIS 7.1: standbys stream WAL as a role with REPLICATION that is not a superuser."""
    if f.managed:
        raise NotApplicable(f"replication on {f.managed} is the provider's own, not a customer "
                            "role's")
    if not f.walsenders:
        if readers:
            raise CannotVerify(f"{f.endpoint}: the target names {readers} reader(s) but the "
                               "writer shows no WAL sender in pg_stat_replication")
        raise NotApplicable("no streaming standby: the writer has no WAL sender")
    roles = {r.name: r for r in f.roles}
    problems = []
    for name in dict.fromkeys(f.walsenders):
        r = roles.get(name)
        if r is None:
            problems.append(f"{f.endpoint}: a standby streams as role {name!r}, which pg_roles "
                            "does not list")
        elif r.superuser or r.oid == BOOTSTRAP_OID:
            problems.append(f"{f.endpoint}: standbys stream WAL as {name!r}, a superuser; the "
                            "spec wants a dedicated role with REPLICATION and without SUPERUSER")
        elif not r.replication:
            problems.append(f"{f.endpoint}: standbys stream WAL as {name!r}, which lacks "
                            "REPLICATION; the spec wants a replication-only role")
    return problems


def unread(databases: list[Database]) -> str:
    """The evidence's note on databases not judged (a provider's own)."""
    skipped = [d.name for d in databases if d.provider]
    return f"; not the customer's: {', '.join(skipped)}" if skipped else ""


def _target_database(f: PrivFacts, dbname: str) -> Database:
    """The target's own database as read, or why it could not be judged."""
    db = next((d for d in f.databases if d.name == dbname), None)
    if db is None:
        raise CannotVerify(f"database {dbname} is not among those the auditor role may list on "
                           f"{f.endpoint}")
    if not db.read:
        raise Unreachable(f"database {dbname} not read: {db.why_not}")
    return db


def judge_priv7(f: PrivFacts, dbname: str) -> list[str]:
    """CIS 4.8: set_user is preloaded and created in the target's database, so a superuser
    escalation goes through set_user() and is logged."""
    preload = [_library_name(e)[0] for e in f.setting("shared_preload_libraries").split(",")
               if e.strip()]
    problems = []
    if "set_user" not in preload:
        problems.append(f"{f.endpoint}: shared_preload_libraries is "
                        f"{f.settings.get('shared_preload_libraries', '')!r}, without set_user; "
                        "the spec wants set_user preloaded (CIS 4.8)")
    db = _target_database(f, dbname)
    if "set_user" not in db.extensions:
        problems.append(f"{f.endpoint}: database {dbname} has no set_user extension "
                        "(CREATE EXTENSION set_user); the spec wants it created (CIS 4.8)")
    return problems


def judge_pgcrypto(f: PrivFacts, dbname: str) -> list[str]:
    """CIS 6.11: pgcrypto is created in the target's database (installed, not only available)."""
    db = _target_database(f, dbname)
    return [] if "pgcrypto" in db.extensions else [
        f"{f.endpoint}: database {dbname} has no pgcrypto extension (extensions: "
        f"{', '.join(db.extensions) or 'none'}); the spec wants CREATE EXTENSION pgcrypto "
        "there (CIS 6.11)"]
