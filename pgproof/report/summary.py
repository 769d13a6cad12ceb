"""summary.html: one row per control (verdict, what was seen), the page an auditor reads first."""

from __future__ import annotations

from pathlib import Path

from pgproof.report.html import page, table
from pgproof.report.results import ControlResult

ORDER = ("fail", "error", "cannot-verify", "not-checked", "skip", "pass", "not-selected")


def render(target: str, when: str, controls: list[ControlResult]) -> str:
    counts = {v: sum(c.verdict == v for c in controls) for v in ORDER}
    head = table(["Target", "Run", *[v.upper() for v in ORDER]],
                 [[target, when, *[str(counts[v]) for v in ORDER]]])
    rows = []
    for c in sorted(controls, key=lambda c: ORDER.index(c.verdict) if c.verdict in ORDER else 9):
        evidence = "\n".join(f"[{ch['verdict']}] {ch['check'].split('::')[-1]}: {ch['evidence']}".rstrip(": ")
                             for ch in c.checks) or "no check ran for this control"
        rows.append([c.id, c.title, c.verdict.upper(), evidence])
    body = table(["ID", "Control", "Verdict", "Checks and evidence"], rows)
    left_out = counts["not-selected"]
    if left_out:  # say it first: a partial run proves nothing about what it left out
        head += (f"<p class='warn'>Partial run: {len(controls) - left_out} of {len(controls)} "
                 f"controls selected; {left_out} not selected (not judged).</p>")
    return page(f"pgproof compliance: {target}", head + "<h2>Controls</h2>" + _pre(body))


def _pre(body: str) -> str:
    """Keep multi-line evidence readable: wrap the last cell of each row in <pre>."""
    out = []
    for row in body.split("</tr>"):
        i = row.rfind("<td>")
        out.append(row if i < 0 else row[:i] + "<td><pre>" + row[i + 4:].replace("</td>", "</pre></td>", 1))
    return "</tr>".join(out)


def write(d: Path, target: str, when: str, controls: list[ControlResult]) -> Path:
    path = d / "summary.html"
    path.write_text(render(target, when, controls))
    return path


