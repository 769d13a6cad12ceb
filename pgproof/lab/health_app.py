"""The lab's stand-in for the product's app: ``GET /api/health/database`` through PgBouncer.

Run: ``python -m pgproof.lab.health_app --port N --conninfo-file F``. The file
holds libpq keywords (no password: libpq reads the passfile it names).
"""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

HEALTH_PATH = "/api/health/database"


def database_health(conninfo: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """One round trip: connection status, version, SSL in use, active connections, timing."""
    started = time.perf_counter()
    try:
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            version, ssl_on, active = conn.execute(
                "SELECT current_setting('server_version'),"
                " coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false),"
                " (SELECT count(*) FROM pg_stat_activity WHERE state = 'active')"
            ).fetchone()  # type: ignore[misc]
            # Behind PgBouncer the server sees PgBouncer's TLS; the client leg is ours.
            client_ssl = conn.pgconn.ssl_in_use
        body = {
            "status": "healthy",
            "database": {
                "connected": True,
                "version": version,
                "ssl": bool(client_ssl and ssl_on),
                "active_connections": int(active),
            },
            "response_time_ms": round((time.perf_counter() - started) * 1000, 2),
        }
        return 200, body
    except psycopg.Error as exc:
        return 503, {
            "status": "unhealthy",
            "database": {"connected": False, "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__},
            "response_time_ms": round((time.perf_counter() - started) * 1000, 2),
        }


def make_handler(conninfo: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path != HEALTH_PATH:
                code, body = 404, {"error": "not found"}
            else:
                code, body = database_health(conninfo)
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt: str, *args: Any) -> None:
            pass

    return Handler


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--conninfo-file", type=Path, required=True)
    args = ap.parse_args(argv)
    conninfo = json.loads(args.conninfo_file.read_text())
    ThreadingHTTPServer((args.host, args.port), make_handler(conninfo)).serve_forever()


if __name__ == "__main__":
    main()
