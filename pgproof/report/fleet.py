"""The database x control matrix of a fleet run as HTML, worst database first
(``results.matrix`` builds the rows).

Why: with 200 databases a control's single verdict ("fail") says nothing about
which database to fix; the matrix does, and sorting the worst rows first puts
the work at the top. Built from the per-check ``database`` of the control
results, so waivers already applied there show here too.
"""

from __future__ import annotations

import html
from typing import Any


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
