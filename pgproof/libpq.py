"""libpq's own conventions, read as libpq reads them, so a target means what ``psql`` means.

A user whose ``psql "service=staging"`` works, or who exports ``PGSSLROOTCERT``, expects
pgproof to use the same connection settings and, above all, the same CA: a TLS probe
that trusts another CA than the login would judge TLS-3 against the wrong anchor.

Service files (libpq's lookup order): ``PGSERVICEFILE`` or ``~/.pg_service.conf`` first,
then ``PGSYSCONFDIR/pg_service.conf``; the first file with the service's section wins.
"""

from __future__ import annotations

import configparser
import os
from pathlib import Path
from typing import Any

# Service-file keys a [postgres] section takes over (the rest stays libpq's: it reads the
# same file through ``service=``). A password in a service file is never copied.
ENDPOINT_KEYS = ("host", "port", "dbname")
SECTION_KEYS = ("user", "dbname", "sslrootcert", "sslmode", "passfile")
# sslmodes pgproof accepts for its own sessions: it never sends credentials in plaintext.
TLS_MODES = ("require", "verify-ca", "verify-full")



class ServiceError(ValueError):
    """A named service that no service file defines (one sentence, names the files looked at)."""


def service_files() -> list[Path]:
    """Where libpq looks for service definitions, in its order."""
    user = os.environ.get("PGSERVICEFILE") or str(Path.home() / ".pg_service.conf")
    sysconf = os.environ.get("PGSYSCONFDIR")
    return [Path(user)] + ([Path(sysconf) / "pg_service.conf"] if sysconf else [])


def read_service(name: str) -> tuple[dict[str, str], Path]:
    """The key/value pairs of service ``name`` and the file that defines it."""
    looked = service_files()
    for path in looked:
        if not path.is_file():
            continue
        parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
        parser.optionxform = str  # type: ignore[assignment,method-assign]
        try:
            parser.read(path, encoding="utf-8")
        except configparser.Error as exc:
            raise ServiceError(f"service file {path} cannot be parsed: "
                               f"{str(exc).splitlines()[0]}") from None
        if parser.has_section(name):
            return {k: v.strip() for k, v in parser.items(name)}, path
    where = ", ".join(str(p) for p in looked)
    raise ServiceError(f"service {name!r} is not defined in any service file (looked in {where}; "
                       f"set PGSERVICEFILE or PGSYSCONFDIR)")


def resolve_postgres(raw: dict[str, Any]) -> dict[str, Any]:
    """A ``[postgres]`` section with what libpq would add: the service's keys, then PG* variables.

    Explicit fields win over the service file, which wins over the environment's
    ``PGSSLROOTCERT``/``PGSSLMODE`` (then ``~/.postgresql/root.crt``) - libpq's own
    precedence for a conninfo with service=.
    """
    out = dict(raw)
    name = out.get("service") or os.environ.get("PGSERVICE")
    if name:
        values, _ = read_service(str(name))
        out["service"] = str(name)
        ep = {k: values[k] for k in ENDPOINT_KEYS if k in values}
        if "writer" not in out and "host" in ep:
            out["writer"] = {"port": 5432, **ep}
        for key in SECTION_KEYS:
            if key in values and out.get(key) is None:
                out[key] = _path(values[key]) if key in ("passfile", "sslrootcert") else values[key]
    if out.get("sslrootcert") is None and os.environ.get("PGSSLROOTCERT"):
        out["sslrootcert"] = _path(os.environ["PGSSLROOTCERT"])
    elif out.get("sslrootcert") is None and (default := Path.home() / ".postgresql" / "root.crt").is_file():
        out["sslrootcert"] = str(default)  # libpq's sslrootcert default
    if out.get("sslmode") is None and os.environ.get("PGSSLMODE") in TLS_MODES:
        out["sslmode"] = os.environ["PGSSLMODE"]
    return out


def _path(value: str) -> str:
    """libpq reads a file named in a service file or PG* variable from the current directory."""
    return value if value == "system" else os.path.abspath(os.path.expanduser(value))


def passfile_in_use(configured: Path | None) -> tuple[Path, str]:
    """The passfile libpq will read, and why (postgres.passfile, PGPASSFILE or its default)."""
    if configured:
        return configured, "postgres.passfile"
    env = os.environ.get("PGPASSFILE")
    if env:
        return Path(env), "PGPASSFILE"
    return Path.home() / ".pgpass", "libpq's default"
