"""The exact GRANT a denied SQL statement needs, from PostgreSQL's own "permission denied" words.

On RDS, Aurora and Azure the auditor role is no superuser; a probe whose query is refused makes
its controls *error* ("could not check"), never fail, and the sentence carries the statement
that fixes it, as ``pgproof doctor`` would print it.
"""

from __future__ import annotations

import re

# Functions PostgreSQL overloads or revokes from PUBLIC: the signature GRANT needs.
FUNCTION_SIGNATURES = {
    "pg_ls_dir": "pg_ls_dir(text)", "pg_stat_file": "pg_stat_file(text)",
    "pg_read_file": "pg_read_file(text)", "pg_read_binary_file": "pg_read_binary_file(text)",
    "pg_ls_archive_statusdir": "pg_ls_archive_statusdir()", "pg_ls_waldir": "pg_ls_waldir()",
    "pg_ls_logdir": "pg_ls_logdir()", "pg_hba_file_rules": "pg_hba_file_rules()",
    "pg_ident_file_mappings": "pg_ident_file_mappings()",
}
# The view calls its function with the caller's rights (PostgreSQL 15+): both are needed.
ALSO = {"pg_hba_file_rules": "GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO {who};",
        "pg_ident_file_mappings": "GRANT EXECUTE ON FUNCTION pg_ident_file_mappings() TO {who};"}

_OBJECT = re.compile(r"permission denied for (?P<kind>table|view|relation|materialized view|"
                     r"sequence|function|schema|database) (?P<name>[\w.\"$]+)")
_SETTING = re.compile(r"have privileges of (?P<role>pg_\w+) to examine")


def ident(name: str) -> str:
    """A role name as GRANT wants it: bare when it is a plain lower-case identifier."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def grant_for(message: str, role: str) -> str | None:
    """The GRANT statement(s) that lift the refusal PostgreSQL describes in ``message`` for
    ``role``; None when no grant can (superuser-only, or words this does not know)."""
    who = ident(role)
    m = _SETTING.search(message)
    if m:
        return f"GRANT {m['role']} TO {who};"
    m = _OBJECT.search(message)
    if m is None:
        return None
    kind, name = m["kind"], m["name"].strip('"')
    if kind == "function":
        return f"GRANT EXECUTE ON FUNCTION {FUNCTION_SIGNATURES.get(name, name)} TO {who};"
    if kind == "schema":
        return f"GRANT USAGE ON SCHEMA {name} TO {who};"
    if kind == "database":
        return f"GRANT CONNECT ON DATABASE {name} TO {who};"
    also = ALSO.get(name)
    return f"GRANT SELECT ON {name} TO {who};" + (f" {also.format(who=who)}" if also else "")


def denied_sentence(message: str, role: str, where: str) -> str:
    """``role X may not ... on H:P: <PostgreSQL's words>; run: GRANT ...`` (or why no grant helps)."""
    first = message.strip().splitlines()[0] if message.strip() else "permission denied"
    grant = grant_for(first, role)
    fix = (f"run: {grant}" if grant else
           "no grant gives this (it needs superuser, which no customer role has on RDS, "
           "Aurora or Azure)")
    return f"role {role} was refused on {where}: {first}; {fix}"
