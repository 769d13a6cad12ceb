"""Compare the write ledger with what the (new) primary holds: HA-3, zero acknowledged writes lost.

``verify`` reads the run's keys in one query and does the set algebra in
Python. ``full_diff`` computes the same numbers a second, independent way
(COPY the ledger into a temp table, SQL EXCEPT/INTERSECT on the server), so a
bug in one shows up as a disagreement in the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgproof.gameday.measurements import LedgerCounts
from pgproof.load.runner import LedgerEntry
from pgproof.load.schema import LEDGER_TABLE

Key = tuple[int, int]  # (writer, seq)
SAMPLE = 20


@dataclass(frozen=True)
class LedgerVerdict:
    """Counts of commit attempts and how they compare with the server's rows.

    lost: acknowledged, but missing on the server (must be 0). unknown_*: the
    answer to COMMIT never came; landed or not, neither is a failure. extra:
    on the server but never acknowledged nor in flight (not attempted, or
    recorded as failed): the ledger and the database disagree.
    """

    acknowledged: int
    failed: int
    unknown: int
    present: int
    lost: int
    unknown_landed: int
    unknown_missing: int
    extra: int
    lost_keys: tuple[Key, ...] = field(default=(), compare=False)
    extra_keys: tuple[Key, ...] = field(default=(), compare=False)

    @property
    def ok(self) -> bool:
        return self.lost == 0

    def counts(self) -> LedgerCounts:
        return LedgerCounts(acknowledged=self.acknowledged, failed=self.failed, unknown=self.unknown,
                            present=self.present, lost=self.lost, unknown_landed=self.unknown_landed,
                            unknown_missing=self.unknown_missing, extra=self.extra)

    def sentence(self) -> str:
        """The finding, phrased for the report (what was found, what the spec wants)."""
        head = (f"{self.acknowledged} acknowledged commits, {self.present} rows on the server, "
                f"{self.unknown} unknown ({self.unknown_landed} landed), {self.failed} failed")
        if self.ok:
            return f"{head}: no acknowledged write lost (HA-3 wants 0)."
        sample = ", ".join(f"writer {w} seq {s}" for w, s in self.lost_keys[:5])
        return f"{head}: {self.lost} acknowledged writes LOST (HA-3 wants 0), e.g. {sample}."


def _by_status(run_id: str, entries: Iterable[LedgerEntry]) -> dict[str, set[Key]]:
    """Keys per status for ``run_id``; a key recorded twice keeps its most committed status."""
    rank = {"failed": 0, "unknown": 1, "acknowledged": 2}
    best: dict[Key, str] = {}
    for e in entries:
        if e.run_id != run_id:
            continue
        if e.status not in rank:
            raise ValueError(f"ledger entry {e.key}: unknown status {e.status!r}")
        if e.key not in best or rank[e.status] > rank[best[e.key]]:
            best[e.key] = e.status
    out: dict[str, set[Key]] = {s: set() for s in rank}
    for key, status in best.items():
        out[status].add(key)
    return out


def server_keys(conninfo: Mapping[str, Any], run_id: str) -> set[Key]:
    """All (writer, seq) of the run on the server, in one query."""
    with psycopg.connect(**conninfo, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT writer_id, seq FROM {LEDGER_TABLE} WHERE run_id = %s", (run_id,))
        return {(int(w), int(s)) for w, s in cur}


def verify(conninfo: Mapping[str, Any], run_id: str, entries: Iterable[LedgerEntry]) -> LedgerVerdict:
    """Set difference of the ledger against the server's rows of ``run_id``."""
    st = _by_status(run_id, entries)
    present = server_keys(conninfo, run_id)
    ack, unknown, failed = st["acknowledged"], st["unknown"], st["failed"]
    lost = ack - present
    extra = present - ack - unknown
    return LedgerVerdict(
        acknowledged=len(ack), failed=len(failed), unknown=len(unknown), present=len(present),
        lost=len(lost), unknown_landed=len(unknown & present),
        unknown_missing=len(unknown - present), extra=len(extra),
        lost_keys=tuple(sorted(lost)[:SAMPLE]), extra_keys=tuple(sorted(extra)[:SAMPLE]))


_DIFF_SQL = f"""
WITH srv AS (SELECT writer_id, seq FROM {LEDGER_TABLE} WHERE run_id = %(run)s),
     ack AS (SELECT writer_id, seq FROM chk WHERE status = 'acknowledged'),
     unk AS (SELECT writer_id, seq FROM chk WHERE status = 'unknown'),
     att AS (SELECT writer_id, seq FROM ack UNION SELECT writer_id, seq FROM unk)
SELECT (SELECT count(*) FROM ack),
       (SELECT count(*) FROM chk WHERE status = 'failed'),
       (SELECT count(*) FROM unk),
       (SELECT count(*) FROM srv),
       (SELECT count(*) FROM (SELECT * FROM ack EXCEPT SELECT * FROM srv) x),
       (SELECT count(*) FROM (SELECT * FROM unk INTERSECT SELECT * FROM srv) x),
       (SELECT count(*) FROM (SELECT * FROM unk EXCEPT SELECT * FROM srv) x),
       (SELECT count(*) FROM (SELECT * FROM srv EXCEPT SELECT * FROM att) x)
"""


def full_diff(conninfo: Mapping[str, Any], run_id: str,
              entries: Iterable[LedgerEntry]) -> LedgerVerdict:
    """Independent cross-check of ``verify``: the ledger is COPYed to the server and diffed in SQL.

    Duplicate attempts of one key collapse server-side too (DISTINCT ON, most
    committed status first), so both paths agree on the same input.
    """
    rows = [(e.writer, e.seq, e.status) for e in entries if e.run_id == run_id]
    with psycopg.connect(**conninfo) as conn, conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE raw (writer_id int, seq bigint, status text) ON COMMIT DROP")
        with cur.copy("COPY raw (writer_id, seq, status) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            "CREATE TEMP TABLE chk ON COMMIT DROP AS SELECT DISTINCT ON (writer_id, seq)"
            " writer_id, seq, status FROM raw ORDER BY writer_id, seq,"
            " array_position(ARRAY['acknowledged','unknown','failed'], status)")
        cur.execute(_DIFF_SQL, {"run": run_id})
        counts = cur.fetchone()
        assert counts is not None
        cur.execute(
            f"SELECT writer_id, seq FROM chk WHERE status = 'acknowledged' EXCEPT"
            f" SELECT writer_id, seq FROM {LEDGER_TABLE} WHERE run_id = %s"
            f" ORDER BY 1, 2 LIMIT {SAMPLE}", (run_id,))
        lost_keys = tuple((int(w), int(s)) for w, s in cur.fetchall())
        conn.rollback()
    names = ("acknowledged", "failed", "unknown", "present", "lost",
             "unknown_landed", "unknown_missing", "extra")
    n = dict(zip(names, (int(c) for c in counts), strict=True))
    return LedgerVerdict(n["acknowledged"], n["failed"], n["unknown"], n["present"], n["lost"],
                         n["unknown_landed"], n["unknown_missing"], n["extra"], lost_keys=lost_keys)
