"""Where the load connects: ``PGPROOF_LOAD_CONNINFO`` or a pgproof target's endpoint.

Plain Python (no gevent, no psycopg at import), so it is safe to import from a
locustfile before or after gevent patched the interpreter.
"""

from __future__ import annotations

import json
import os
from typing import Any

ENDPOINTS = ("writer", "pooler", "reader")
_conninfo_cache: dict[str, dict[str, Any]] = {}


class LoadConfigError(Exception):
    """The load cannot find its database; the message says which variable to set."""


def endpoint_conninfo(endpoint: str, target: str | None = None) -> dict[str, Any]:
    """libpq keywords for ``endpoint``, from ``PGPROOF_LOAD_CONNINFO`` or the named target."""
    if endpoint in _conninfo_cache:
        return _conninfo_cache[endpoint]
    if endpoint not in ENDPOINTS:
        raise LoadConfigError(f"PGPROOF_LOAD_ENDPOINT={endpoint!r}: expected one of {ENDPOINTS}")
    raw = os.environ.get("PGPROOF_LOAD_CONNINFO")
    if raw:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise LoadConfigError(f"PGPROOF_LOAD_CONNINFO is not JSON: {exc}") from None
        if not isinstance(data, dict) or not data:
            raise LoadConfigError("PGPROOF_LOAD_CONNINFO: expected a JSON object")
        if all(isinstance(v, dict) for v in data.values()):
            if endpoint not in data:
                raise LoadConfigError(
                    f"PGPROOF_LOAD_CONNINFO has no {endpoint!r} endpoint (has: {', '.join(data)})")
            data = data[endpoint]
        info = dict(data)
    else:
        info = _target_conninfo(endpoint, target or os.environ.get("PGPROOF_TARGET"))
    _conninfo_cache[endpoint] = info
    return info


def _target_conninfo(endpoint: str, name: str | None) -> dict[str, Any]:
    if not name:
        raise LoadConfigError("no database: set PGPROOF_LOAD_CONNINFO or pass --target NAME")
    from pgproof.target import ConfigError, load_target

    try:
        target = load_target(name)
    except ConfigError as exc:
        raise LoadConfigError(str(exc)) from None
    pg = target.require_postgres("load")
    # Load is the app's traffic: it runs as the app's role, not as pgproof's read-only auditor.
    user = pg.app_role or pg.user
    if endpoint == "writer":
        return target.conninfo(user=user)
    ep = pg.pooler if endpoint == "pooler" else (pg.readers[0] if pg.readers else None)
    if ep is None:
        raise LoadConfigError(f"target {name!r} has no {endpoint} endpoint")
    return target.conninfo(ep, user=user)
