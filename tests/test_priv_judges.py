"""PRIV-1..6's judges at their exact boundaries (no lab): the CIS 4.3, 4.5, 4.6, 5.5, 5.6 and
7.1 rules as pgproof judges them, the probe's permission list, and the lab's passwords."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pgproof.checks import priv
from pgproof.lab import state as lab_state
from pgproof.probes import privileges
from pgproof.probes.privileges import Database, PrivFacts, Role, SecDef
from pgproof.target import Thresholds
from pgproof.verdict import CannotVerify, NotApplicable, Unreachable

REPO = Path(__file__).resolve().parent.parent


def role(name: str, oid: int = 20000, *, login: bool = True, connlimit: int = 10,
         admin_of: tuple[str, ...] = (), **attrs: bool) -> Role:
    return Role(name, oid, login, attrs.get("superuser", False), attrs.get("createrole", False),
                attrs.get("createdb", False), attrs.get("replication", False),
                attrs.get("bypassrls", False), connlimit, list(admin_of))


POSTGRES = role("postgres", 10, connlimit=-1, superuser=True, createrole=True, createdb=True,
                replication=True, bypassrls=True)
REPLICATOR = role("replicator", 16384, replication=True)


def facts(*roles: Role, databases: tuple[Database, ...] = (), walsenders: tuple[str, ...] = (),
          managed: str | None = None, hidden: tuple[str, ...] = (), **settings: str) -> PrivFacts:
    base = {"shared_preload_libraries": "pgaudit,passwordcheck", "dynamic_library_path": "$libdir"}
    base.update({k.replace("__", "."): v for k, v in settings.items()})
    return PrivFacts("db:5432", "pgproof", [POSTGRES, REPLICATOR, *roles], base, list(hidden),
                     managed, list(walsenders), list(databases))


def db(name: str = "appdb", *funcs: SecDef, create: bool = False) -> Database:
    acl = "{pg_database_owner=UC/pg_database_owner,=U" + ("C" if create else "") + "/pg_database_owner}"
    return Database(name, True, public_acl=acl, public_create=create, secdef=list(funcs))


TH = Thresholds(admin_roles=("replicator",))


# -- PRIV-1 (CIS 4.3) ----------------------------------------------------------------------------
def test_priv1_bootstrap_superuser_app_role_and_allow_list_pass() -> None:
    f = facts(role("app", superuser=True), role("pgproof"))
    assert priv.judge_priv1(f, TH, "app") == []  # app: AUTHZ-1's; postgres: oid 10


@pytest.mark.parametrize("attr", ["superuser", "createrole", "createdb", "replication", "bypassrls"])
def test_priv1_one_attribute_beyond_the_allow_list_fails(attr: str) -> None:
    got = priv.judge_priv1(facts(role("ops", **{attr: True})), TH, "app")
    assert got == [f"db:5432: login role 'ops' has {attr.upper()}; the spec wants administrative "
                   "privileges only on the roles listed in thresholds.admin_roles (replicator)"]
    assert priv.judge_priv1(facts(role("ops", **{attr: True})),
                            Thresholds(admin_roles=("replicator", "ops")), "app") == []


def test_priv1_provider_admin_group_membership_counts_and_nologin_groups_do_not() -> None:
    f = facts(role("rds_superuser", 16001, login=False, createrole=True, createdb=True),
              role("master", createrole=True, createdb=True, admin_of=("rds_superuser",)))
    assert priv.judge_priv1(f, TH, "app") == [
        "db:5432: login role 'master' has CREATEROLE, CREATEDB, member of rds_superuser; the spec "
        "wants administrative privileges only on the roles listed in thresholds.admin_roles "
        "(replicator)"]
    assert priv.judge_priv1(f, Thresholds(admin_roles=("master", "replicator")), "app") == []
    assert priv.judge_priv1(facts(role("dba", admin_of=("postgres",))), TH, "app")  # SET ROLE postgres


def test_priv1_without_an_allow_list_the_replication_role_is_named() -> None:
    assert "(none)" in priv.judge_priv1(facts(), Thresholds(), "app")[0]


# -- PRIV-2 (CIS 4.5) ----------------------------------------------------------------------------
def fn(public: bool = True, pinned: bool = False) -> SecDef:
    return SecDef("public", "f", "integer", "postgres", public, pinned)


def test_priv2_open_secdef_function_fails_and_each_defence_passes() -> None:
    assert priv.judge_priv2(facts(databases=(db("appdb", fn()),))) == [
        "db:5432: database appdb: SECURITY DEFINER function public.f(integer) (owner postgres) is "
        "executable by PUBLIC and sets no search_path; the spec wants such functions revoked from "
        "PUBLIC, given SET search_path, or made SECURITY INVOKER"]
    assert priv.judge_priv2(facts(databases=(db("appdb", fn(public=False)),))) == []
    assert priv.judge_priv2(facts(databases=(db("appdb", fn(pinned=True)),))) == []


def test_per_database_controls_never_pass_a_database_they_could_not_read() -> None:
    grant = "role pgproof may not connect to database hr (GRANT CONNECT ON DATABASE hr TO pgproof;)"
    unread = Database("hr", False, grant)
    with pytest.raises(Unreachable, match=re.escape(f"database hr not read: {grant}")):
        priv.judge_priv2(facts(databases=(db(), unread)))
    with pytest.raises(Unreachable, match="database hr not read"):
        priv.judge_priv3(facts(databases=(db(), unread)))
    # A problem found elsewhere still fails; a provider's own database is not the customer's.
    assert priv.judge_priv3(facts(databases=(db(create=True), unread)))
    provider = Database("rdsadmin", False, "owned by rdsadmin", provider=True)
    assert priv.judge_priv2(facts(databases=(db(), provider))) == []
    assert priv.unread([db(), provider]) == "; not the customer's: rdsadmin"


# -- PRIV-3 (CIS 4.6's public-schema note) ---------------------------------------------------------
def test_priv3_create_for_public_fails_usage_alone_passes() -> None:
    assert priv.judge_priv3(facts(databases=(db("template1"), db("appdb")))) == []
    assert priv.judge_priv3(facts(databases=(db("template1", create=True),))) == [
        "db:5432: database template1: PUBLIC has CREATE on schema public "
        "({pg_database_owner=UC/pg_database_owner,=UC/pg_database_owner}); the spec wants REVOKE "
        "CREATE ON SCHEMA public FROM PUBLIC"]


# -- PRIV-4 (CIS 5.5) ----------------------------------------------------------------------------
def test_priv4_boundary_is_minus_one() -> None:
    assert priv.judge_priv4(facts(role("app", connlimit=0))) == []  # 0: no login at all, a limit
    assert priv.judge_priv4(facts(role("app", connlimit=-1))) == [
        "db:5432: login role 'app' has no connection limit (rolconnlimit -1); the spec wants "
        "ALTER ROLE ... CONNECTION LIMIT n on every login role"]


def test_priv4_superusers_and_nologin_roles_are_not_limited_by_postgres() -> None:
    assert priv.judge_priv4(facts(role("grp", login=False, connlimit=-1),
                                  role("su", superuser=True, connlimit=-1))) == []


# -- PRIV-5 (CIS 5.6) ----------------------------------------------------------------------------
@pytest.mark.parametrize(("libs", "path", "ok"), [
    ("pgaudit,passwordcheck", "$libdir", True),
    ("pgaudit, passwordcheck", "$libdir:/opt/extra", True),  # $libdir searched first
    ("credcheck", "$libdir", True),
    ("$libdir/passwordcheck", "/tmp/x:$libdir", True),  # an explicit path ignores the search
    ("passwordcheck", "/var/tmp/pgproof-untrusted-libs:$libdir", False),
    ("passwordcheck", "", False),
    ("pgaudit", "$libdir", False),
    ("", "$libdir", False),
])
def test_priv5_module_and_where_it_is_looked_up(libs: str, path: str, ok: bool) -> None:
    got = priv.judge_priv5(facts(shared_preload_libraries=libs, dynamic_library_path=path))
    assert (got == []) is ok, got


def test_priv5_pg_tle_passcheck_on_rds() -> None:
    tle = {"shared_preload_libraries": "rdsutils,pg_tle"}
    assert priv.judge_priv5(facts(**tle, pgtle__enable_password_check="require")) == []
    with pytest.raises(CannotVerify, match="passcheck function is registered"):
        priv.judge_priv5(facts(**tle, pgtle__enable_password_check="on"))
    assert "is 'off'" in priv.judge_priv5(facts(**tle, pgtle__enable_password_check="off"))[0]


def test_priv5_hidden_setting_is_an_error_naming_the_grant() -> None:
    with pytest.raises(Unreachable, match=re.escape("(GRANT pg_read_all_settings TO pgproof;)")):
        priv.judge_priv5(facts(hidden=("shared_preload_libraries",)))


# -- PRIV-6 (CIS 7.1) ----------------------------------------------------------------------------
def test_priv6_replication_only_role_passes_a_superuser_fails() -> None:
    assert priv.judge_priv6(facts(walsenders=("replicator", "replicator")), 1) == []
    su = role("repl", superuser=True, replication=True)
    assert priv.judge_priv6(facts(su, walsenders=("repl",)), 1) == [
        "db:5432: standbys stream WAL as 'repl', a superuser; the spec wants a dedicated role "
        "with REPLICATION and without SUPERUSER"]
    assert priv.judge_priv6(facts(walsenders=("postgres",)), 1)


def test_priv6_managed_and_missing_standbys() -> None:
    with pytest.raises(NotApplicable, match="provider's own"):
        priv.judge_priv6(facts(managed="RDS", walsenders=("rdsrepladmin",)), 1)
    with pytest.raises(CannotVerify, match="names 1 reader"):
        priv.judge_priv6(facts(), 1)
    with pytest.raises(NotApplicable, match="no streaming standby"):
        priv.judge_priv6(facts(), 0)


# -- the probe and the lab -------------------------------------------------------------------------
def test_probe_permission_list_matches_its_sql() -> None:
    """``pgproof doctor`` checks privileges.RELATIONS: every catalog the probe's SQL reads."""
    tree = ast.parse((REPO / "pgproof/probes/privileges.py").read_text())
    sql = " ".join(c.value for c in ast.walk(tree)
                   if isinstance(c, ast.Constant) and isinstance(c.value, str))
    relations = set(re.findall(r"\b(?:FROM|JOIN) (pg_\w+)", sql))
    assert relations == set(privileges.RELATIONS)


def test_lab_passwords_always_satisfy_passwordcheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """passwordcheck (preloaded in the lab) refuses letters-only passwords and ones holding the
    user name; a draw like that must be redrawn, or Patroni's bootstrap fails once in ~770."""
    draws = iter(["A" * 32, "xxreplicatorxx-1" * 2, "abcDEF-123_ghi" * 2])
    monkeypatch.setattr(lab_state.secrets, "token_urlsafe", lambda _n: next(draws))
    assert lab_state._password("replicator") == "abcDEF-123_ghi" * 2


# -- PRIV-7 (CIS 4.8) and ENC-4 (CIS 6.11): extensions in the target's database ------------------
def ext_db(*extensions: str, name: str = "appdb") -> Database:
    return Database(name, True, extensions=list(extensions))


@pytest.mark.parametrize("libs", ["pgaudit,set_user", "set_user", "$libdir/set_user",
                                  " pgaudit , set_user.so "])
def test_priv7_preloaded_and_created_passes(libs: str) -> None:
    f = facts(databases=(ext_db("plpgsql", "set_user"),), shared_preload_libraries=libs)
    assert priv.judge_priv7(f, "appdb") == []


def test_priv7_one_step_short_fails_with_each_missing_part() -> None:
    created = (ext_db("plpgsql", "set_user"),)
    [p] = priv.judge_priv7(facts(databases=created, shared_preload_libraries="pgaudit,set_user_x"),
                           "appdb")
    assert "without set_user" in p and "CIS 4.8" in p
    [p] = priv.judge_priv7(facts(databases=(ext_db("plpgsql"),),
                                 shared_preload_libraries="set_user"), "appdb")
    assert "database appdb has no set_user extension" in p
    # Created in another database only: the target's database is the one judged.
    assert priv.judge_priv7(facts(databases=(ext_db("plpgsql"), ext_db("set_user", name="other")),
                                  shared_preload_libraries="set_user"), "appdb")


def test_priv7_hidden_preload_list_names_the_grant_and_an_unread_database_is_an_error() -> None:
    with pytest.raises(Unreachable, match="GRANT pg_read_all_settings TO pgproof"):
        priv.judge_priv7(facts(databases=(ext_db("set_user"),),
                               hidden=("shared_preload_libraries",)), "appdb")
    grant = "role pgproof may not connect to database appdb (GRANT CONNECT ON DATABASE appdb TO pgproof;)"
    with pytest.raises(Unreachable, match=re.escape(grant)):
        priv.judge_priv7(facts(databases=(Database("appdb", False, grant),),
                               shared_preload_libraries="set_user"), "appdb")
    with pytest.raises(CannotVerify, match="database appdb is not among"):
        priv.judge_pgcrypto(facts(databases=(ext_db("pgcrypto", name="postgres"),)), "appdb")


def test_pgcrypto_created_passes_available_only_fails() -> None:
    assert priv.judge_pgcrypto(facts(databases=(ext_db("pgcrypto"),)), "appdb") == []
    [p] = priv.judge_pgcrypto(facts(databases=(ext_db("plpgsql", "pgaudit"),)), "appdb")
    assert "database appdb has no pgcrypto extension (extensions: plpgsql, pgaudit)" in p
    assert "CIS 6.11" in p
    [p] = priv.judge_pgcrypto(facts(databases=(ext_db(),)), "appdb")
    assert "(extensions: none)" in p
