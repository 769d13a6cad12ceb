"""summary.html: one row per control (verdict, what was seen), the page an auditor reads first."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from pgproof.report.html import page, table
from pgproof.report.results import ControlResult

ORDER = ("fail", "error", "waived", "cannot-verify", "not-checked", "skip", "pass", "not-selected")


def evidence_line(ch: dict[str, Any]) -> str:
    """``[fail] test_x: what was seen``, plus what a waiver did to it (waived, or expired)."""
    line = f"[{ch['verdict']}] {ch['check'].split('::')[-1]}: {ch['evidence']}".rstrip(": ")
    waiver = ch.get("waiver")
    return f"{line}\n  {waiver['note']}" if waiver else line


def render(target: str, when: str, controls: list[ControlResult],
           warnings: list[str] | None = None) -> str:
    counts = {v: sum(c.verdict == v for c in controls) for v in ORDER}
    head = table(["Target", "Run", *[v.upper() for v in ORDER]],
                 [[target, when, *[str(counts[v]) for v in ORDER]]])
    rows = []
    for c in sorted(controls, key=lambda c: ORDER.index(c.verdict) if c.verdict in ORDER else 9):
        evidence = "\n".join(evidence_line(ch) for ch in c.checks) or "no check ran for this control"
        rows.append([c.id, c.title, c.verdict.upper(), evidence])
    body = table(["ID", "Control", "Verdict", "Checks and evidence"], rows)
    left_out = counts["not-selected"]
    if left_out:  # say it first: a partial run proves nothing about what it left out
        head += (f"<p class='warn'>Partial run: {len(controls) - left_out} of {len(controls)} "
                 f"controls selected; {left_out} not selected (not judged).</p>")
    for w in warnings or []:
        head += f"<p class='warn'>Warning: {html.escape(w)}</p>"
    from pgproof.report.fleet import matrix
    from pgproof.report.fleet import render as fleet_table

    fleet = fleet_table(matrix(controls))
    return page(f"pgproof compliance: {target}",
                head + fleet + "<h2>Controls</h2>" + pre_last_cell(body))


def pre_last_cell(body: str) -> str:
    """Keep multi-line evidence readable: wrap the last cell of each row in <pre>."""
    out = []
    for row in body.split("</tr>"):
        i = row.rfind("<td>")
        out.append(row if i < 0 else row[:i] + "<td><pre>" + row[i + 4:].replace("</td>", "</pre></td>", 1))
    return "</tr>".join(out)


def write(d: Path, target: str, when: str, controls: list[ControlResult],
          warnings: list[str] | None = None) -> Path:
    path = d / "summary.html"
    path.write_text(render(target, when, controls, warnings))
    return path


