"""Layers by vantage point: which of a control's layers this target lets pgproof look at.

A scheduled runner on hosted CI may reach the AWS API but not a database in
private subnets; a self-managed server has no AWS account at all. Each layer
(the catalogue's vocabulary) needs some part of the target: ``[postgres]``,
``[aws]``, ``hosts``, ... A layer the target does not configure is "not checked"
with a sentence saying why (``NotChecked``), never an error, and a control is
judged on the layers that were checked.
"""

from __future__ import annotations

from collections.abc import Iterable

from pgproof.catalogue.model import FIXTURES, LAYERS
from pgproof.target import Target
from pgproof.verdict import NotChecked

__all__ = ["FIXTURES", "configured", "of_fixtures", "reasons", "require", "why_not"]


def _no_postgres(t: Target, layer: str, what: str) -> str:
    where = " (AWS-only vantage point)" if t.aws is not None else ""
    return f"{layer} layer not checked: target has no [postgres] section{where}{what}"


def why_not(t: Target, layer: str) -> str | None:
    """Why ``layer`` cannot be checked on ``t`` (None: the target configures it)."""
    pg = t.postgres
    if layer in ("tls", "sql") and pg is None:
        return _no_postgres(t, "live TLS" if layer == "tls" else "live SQL", "")
    if layer == "dns" and pg is None:
        return _no_postgres(t, "DNS", ", so there is no writer endpoint to resolve")
    if layer == "aws" and t.aws is None:
        return ("AWS layer not checked: target has no [aws] section (live-only or "
                "self-managed vantage point)")
    if layer == "azure" and t.azure is None:
        return ("Azure layer not checked: target has no [azure] section (not an Azure "
                "flexible server, or a live-only vantage point)")
    if layer == "pooler":
        if pg is None:
            return _no_postgres(t, "pooler", "")
        if pg.pooler_admin is None:
            return ("pooler layer not checked: no postgres.pooler_admin endpoint configured "
                    "(the PgBouncer admin console)")
    if layer == "health" and not t.health_url:
        return "health layer not checked: no health_url configured"
    if layer == "backup":
        if t.backup is None:
            return ("backup layer not checked: no [backup] section (the backup tool's own view, "
                    "e.g. pgBackRest on self-managed hosts; RDS backups are the aws layer)")
        if pg is None:
            return _no_postgres(t, "backup", ", and pg_stat_archiver is read over SQL")
    if layer == "source" and t.source_tree is None:
        return "source layer not checked: no source_tree configured"
    if layer == "vantage":
        if not (t.app_hosts or t.outside_hosts):
            return "vantage layer not checked: no app_hosts or outside_hosts configured"
        if pg is None:
            return _no_postgres(t, "vantage", ", so there is no writer endpoint to reach")
    if layer == "host":
        if not t.hosts:
            return ("host layer not checked: no [[hosts]] configured (hosts = [\"ssh://db1\", "
                    "...]: the database hosts as testinfra URLs, to inspect the data directory)")
        if pg is None:
            return _no_postgres(t, "host", ", and the data directory is read over SQL")
    return None


def require(t: Target, layer: str) -> None:
    """Raise ``NotChecked`` with the reason when ``t`` does not configure ``layer``."""
    why = why_not(t, layer)
    if why:
        raise NotChecked(why)


def of_fixtures(names: Iterable[str]) -> list[str]:
    """The layers a check observes, from the fixtures it uses, in a stable order."""
    wanted = {FIXTURES[n] for n in names if n in FIXTURES}
    return [layer for layer in LAYERS if layer in wanted]


def reasons(t: Target | None, names: Iterable[str]) -> dict[str, str]:
    """Why each of ``names`` is not configured on ``t`` (only those that are not)."""
    if t is None:
        return {}
    return {n: why for n in names if (why := why_not(t, n))}


def configured(t: Target) -> dict[str, str | None]:
    """Every layer of the vocabulary that a compliance check can look at -> None or why not."""
    return {layer: why_not(t, layer) for layer in LAYERS if layer in set(FIXTURES.values())}
