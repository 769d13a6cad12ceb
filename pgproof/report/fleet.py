"""The database x control matrix of a fleet run, worst database first.

Why: with 200 databases a control's single verdict ("fail") says nothing about
which database to fix; the matrix does, and sorting the worst rows first puts
the work at the top. Built from the per-check ``database`` of the control
results, so waivers already applied there show here too.
"""

from __future__ import annotations

import html
from typing import Any

from pgproof.report.results import WORST, ControlResult

RANK = {v: i for i, v in enumerate([*WORST, "not-checked"])}


def matrix(controls_: list[ControlResult]) -> list[dict[str, Any]]:
    """One row per database: its worst verdict, counts, and each control's verdict on it."""
    rows: dict[str, dict[str, str]] = {}
    for c in controls_:
        for ch in c.checks:
            db = ch.get("database")
            if not db:
                continue
            cur = rows.setdefault(db, {}).get(c.id)
            v = ch["verdict"]
            if cur is None or RANK.get(v, 99) < RANK.get(cur, 99):
                rows[db][c.id] = v
    out: list[dict[str, Any]] = []
    for db, verdicts in rows.items():
        counts: dict[str, int] = {}
        for v in verdicts.values():
            counts[v] = counts.get(v, 0) + 1
        worst = min(verdicts.values(), key=lambda v: RANK.get(v, 99))
        out.append({"database": db, "worst": worst, "counts": counts, "controls": verdicts})
    out.sort(key=lambda r: (RANK.get(r["worst"], 99), -r["counts"].get(r["worst"], 0), r["database"]))
    return out


def render(rows: list[dict[str, Any]]) -> str:
    """An HTML table (databases down, controls across); empty for a single-database run."""
    if not rows:
        return ""
    cids = sorted({c for r in rows for c in r["controls"]})
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cids)
    body = []
    for r in rows:
        cells = "".join(f"<td class='v-{html.escape(r['controls'].get(c, '-').upper())}'>"
                        f"{html.escape(r['controls'].get(c, '-').upper())}</td>" for c in cids)
        body.append(f"<tr><td>{html.escape(r['database'])}</td>"
                    f"<td>{html.escape(r['worst'].upper())}</td>{cells}</tr>")
    return (f"<h2>Fleet: {len(rows)} databases x {len(cids)} controls (worst first)</h2>"
            f"<table><tr><th>Database</th><th>Worst</th>{head}</tr>{''.join(body)}</table>")
