"""What the restore drill proves on the restored instance, and BAK-6's verdict from it.

Markers are written one at a time with the server's ``clock_timestamp()``; the
target time T is taken in a quiet gap with no marker in flight, so a marker's
insert and commit are on the same side of T and "at or before T" is exact.
"""

from __future__ import annotations

import contextlib
import ipaddress
import time
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any

import psycopg

from pgproof.controls import title
from pgproof.gameday.measurements import Measurements

MARKERS = "pgproof_restore_markers"
TLS_ORDER = {"TLSv1": 0, "TLSv1.1": 1, "TLSv1.2": 2, "TLSv1.3": 3}
HBA = "SELECT type, database, user_name, address, netmask, auth_method FROM pg_hba_file_rules " \
      "WHERE error IS NULL ORDER BY line_number"


def ensure_markers(app: dict[str, Any]) -> None:
    with psycopg.connect(**app, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {MARKERS} (run_id text NOT NULL, seq int NOT NULL, "
                     "at timestamptz NOT NULL, PRIMARY KEY (run_id, seq))")


@dataclass
class Markers:
    """Acknowledged markers (seq -> server time) of one run, written through one connection."""

    app: dict[str, Any]
    run_id: str
    acked: dict[int, datetime] = field(default_factory=dict)
    failed: int = 0
    _conn: psycopg.Connection[Any] | None = None
    _seq: int = 0

    def write_for(self, seconds: float, every_s: float = 0.1) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._seq += 1
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(**self.app, autocommit=True)
                row = self._conn.execute(f"INSERT INTO {MARKERS} VALUES (%s, %s, clock_timestamp()) "
                                         "RETURNING at", (self.run_id, self._seq)).fetchone()
                if row:
                    self.acked[self._seq] = row[0]  # acknowledged: the commit returned
            except psycopg.Error:
                self.failed += 1  # unknown outcome: neither required nor forbidden after restore
                with contextlib.suppress(Exception):
                    if self._conn is not None:
                        self._conn.close()
                self._conn = None
            time.sleep(every_s)

    def server_now(self) -> datetime:
        assert self._conn is not None
        row = self._conn.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        return row[0]  # type: ignore[no-any-return]

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()


def archive_after(admin: dict[str, Any], timeout: float) -> tuple[bool, str]:
    """Switch WAL and wait until that segment is archived (the commits after T must be restorable)."""
    with psycopg.connect(**admin, autocommit=True) as conn:
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        wal = str(row[0]) if row else ""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            r = conn.execute("SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver").fetchone()
            last = r
            if r and r[0] and len(str(r[0])) == 24 and str(r[0]) >= wal:
                return True, f"WAL {wal} (holding the commits after T) archived"
            time.sleep(0.5)
    return False, (f"WAL {wal} (holding the commits after T) not archived within {timeout:.0f} s "
                   f"(last archived {last[0] if last else None}, last failed {last[1] if last else None})")


def probe(app: dict[str, Any], admin: dict[str, Any], source_admin: dict[str, Any], run_id: str,
          min_tls: str) -> dict[str, Any]:
    """Log in to the restored instance as the application and as pgproof; read markers, TLS, hba."""
    out: dict[str, Any] = {}
    with psycopg.connect(**app, autocommit=True) as conn:
        out["login"] = f"{app['user']} logged in over {app.get('sslmode')}"
        out["restored"] = {int(s): a for s, a in conn.execute(
            f"SELECT seq, at FROM {MARKERS} WHERE run_id = %s", (run_id,))}
        ssl = conn.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        out["ssl"] = {"ssl": bool(ssl and ssl[0]), "version": ssl[1] if ssl else None}
        out["ssl_setting"] = conn.execute("SHOW ssl").fetchone()[0]  # type: ignore[index]
        out["in_recovery"] = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]  # type: ignore[index]
    try:
        psycopg.connect(**{**app, "sslmode": "disable"}, autocommit=True).close()
        out["plaintext"] = "ACCEPTED"
    except psycopg.OperationalError as exc:
        out["plaintext"] = "refused: " + str(exc).strip().splitlines()[-1][:160]
    with psycopg.connect(**admin, autocommit=True) as conn:
        out["listen_addresses"] = conn.execute("SHOW listen_addresses").fetchone()[0]  # type: ignore[index]
        out["hba"] = _hba(conn)
    with psycopg.connect(**source_admin, autocommit=True) as conn:
        out["source_hba"] = _hba(conn)
    out["min_tls"] = min_tls
    return out


def _hba(conn: psycopg.Connection[Any]) -> list[list[Any]] | None:
    """The pg_hba rules (None where they are not readable, e.g. RDS: then not compared)."""
    try:
        return [list(map(_plain, r)) for r in conn.execute(HBA)]
    except psycopg.errors.InsufficientPrivilege:
        return None


def _plain(v: Any) -> Any:
    return list(v) if isinstance(v, list | tuple) else v


def _loopback(addrs: str) -> bool:
    parts = [a.strip() for a in addrs.split(",") if a.strip()]
    try:
        return bool(parts) and all(a == "localhost" or ipaddress.ip_address(a).is_loopback for a in parts)
    except ValueError:
        return False


def judge(m: Measurements, rpo_budget_s: float | Fraction, restore_budget_s: float) -> dict[str, str]:
    """BAK-6 from the drill's measurements; the evidence says what was found and wanted."""
    cid = "BAK-6"
    if m.get("restore_error"):
        return {"id": cid, "title": title(cid), "verdict": "fail",
                "evidence": f"restore to T {m.get('target_time')} impossible: {m['restore_error']}"}
    p = m.get("probe")
    if not p:
        return {"id": cid, "title": title(cid), "verdict": "error",
                "evidence": "the drill ended before the restored instance was probed"}
    problems, said = [], []
    missing, extra = m["missing"], m["after_t"]
    said.append(f"{m['before_t']} acknowledged markers at or before T, {len(missing)} missing; "
                f"{m['after_t_acked']} after T, {len(extra)} restored")
    if missing:
        problems.append(f"markers at or before T missing: seq {missing[:5]}")
    if extra:
        problems.append(f"markers after T restored: seq {extra[:5]}")
    rpo, rt = m.get("rpo_s"), m["restore_s"]
    said.append(f"RPO {rpo:.2f} s (budget {float(rpo_budget_s):g} s)" if rpo is not None else "RPO unknown")
    if rpo is None or rpo > rpo_budget_s:
        problems.append("RPO over budget" if rpo is not None else "no marker restored: RPO unknown")
    said.append(f"restore {rt:.1f} s (budget {restore_budget_s:.0f} s)")
    if rt > restore_budget_s:
        problems.append("restore time over budget")
    ssl, want = p["ssl"], TLS_ORDER.get(p["min_tls"], 2)
    said.append(f"login ok; TLS {ssl['version']}; plaintext {p['plaintext'].split(':')[0]}; "
                + (p.get("private") or f"listens on {p['listen_addresses']}"))
    if not ssl["ssl"] or TLS_ORDER.get(ssl["version"] or "", -1) < want:
        problems.append(f"restored instance not encrypted at {p['min_tls']}+ ({ssl})")
    if p["plaintext"] == "ACCEPTED":
        problems.append("restored instance accepts plaintext")
    if not p.get("private") and not _loopback(p["listen_addresses"]):
        problems.append(f"restored instance listens beyond loopback ({p['listen_addresses']})")
    if p["hba"] is not None and p["source_hba"] is not None and p["hba"] != p["source_hba"]:
        problems.append("restored pg_hba rules differ from the source's")
    if p["in_recovery"]:
        problems.append("restored instance still in recovery (not promoted)")
    verdict = "fail" if problems else "pass"
    return {"id": cid, "title": title(cid), "verdict": verdict,
            "evidence": "; ".join(problems + said) if problems else "; ".join(said)}


def compare(acked: dict[int, datetime], restored: dict[int, datetime], t: datetime) -> Measurements:
    before = {s for s, a in acked.items() if a <= t}
    after = {s for s, a in acked.items() if a > t}
    missing = sorted(before - set(restored))
    extra = sorted(s for s, a in restored.items() if a > t)
    newest = max((a for a in restored.values() if a <= t), default=None)
    return {"before_t": len(before), "after_t_acked": len(after), "missing": missing,
            "after_t": extra, "restored_markers": len(restored),
            "newest_restored": newest.isoformat() if newest else None,
            "rpo_s": (t - newest).total_seconds() if newest else None}
