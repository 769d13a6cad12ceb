"""summary.html: one row per control (verdict, layers, what was seen), the page an auditor reads first.

Every row says which of the control's layers were checked and which were not, with the
reason (an AWS-only runner checks no SQL layer): a pass on one layer is not a pass on all.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from pgproof import fsio
from pgproof.report.fleet import render as fleet_table
from pgproof.report.html import page, table
from pgproof.report.results import INHERITED, NOT_CHECKED, NOT_SELECTED, ControlResult, matrix

ORDER = ("fail", "error", "waived", "cannot-verify", "not-checked", "inherited", "skip", "pass",
         "not-selected")


def evidence_line(ch: dict[str, Any]) -> str:
    """``[fail] test_x: what was seen``, plus what a waiver did to it (waived, or expired)."""
    line = f"[{ch['verdict']}] {ch['check'].split('::')[-1]}: {ch['evidence']}".rstrip(": ")
    waiver = ch.get("waiver")
    return f"{line}\n  {waiver['note']}" if waiver else line


def render(target: str, when: str, controls: list[ControlResult],
           warnings: list[str] | None = None, incomplete: list[str] | None = None) -> str:
    """``incomplete``: why the run is no verdict (interrupted, stopped early, a fault left on
    the target), said above everything else."""
    counts = {v: sum(c.verdict == v for c in controls) for v in ORDER}
    head = "".join(f"<p class='warn incomplete'><b>Not a verdict: {html.escape(line)}.</b></p>"
                   for line in incomplete or [])
    head += table(["Target", "Run", *[v.upper() for v in ORDER]],
                  [[target, when, *[str(counts[v]) for v in ORDER]]])
    rows = []
    for c in sorted(controls, key=lambda c: ORDER.index(c.verdict) if c.verdict in ORDER else 9):
        evidence = "\n".join(evidence_line(ch) for ch in c.checks) or "no check ran for this control"
        rows.append([c.id, c.title, c.verdict.upper(), layer_text(c), evidence])
    body = table(["ID", "Control", "Verdict", "Layers", "Checks and evidence"], rows)
    left_out = counts["not-selected"]
    if left_out:  # say it first: a partial run proves nothing about what it left out
        head += (f"<p class='warn'>Partial run: {len(controls) - left_out} of {len(controls)} "
                 f"controls selected; {left_out} not selected (not judged).</p>")
    for w in warnings or []:
        head += f"<p class='warn'>Warning: {html.escape(w)}</p>"
    fleet = fleet_table(matrix(controls))
    return page(f"pgproof compliance: {target}",
                head + fleet + "<h2>Controls</h2>" + pre_last_cells(body, 2))


def layer_text(c: ControlResult) -> str:
    """``checked: aws (pass)``, then one line per layer not checked: its reason."""
    done = [f"{r['layer']} ({r['verdict']})" for r in c.layers
            if r["verdict"] != NOT_CHECKED and "reason" not in r]
    if c.verdict == INHERITED:
        return "none probed: the provider's on this platform"
    lines = [f"checked: {', '.join(done) if done else 'none'}"]
    lines += [r.get("reason", f"{r['layer']} layer not checked")  # the reason names the layer
              for r in c.layers if r["verdict"] == NOT_CHECKED or "reason" in r]
    return "\n".join(lines)


def terminal_lines(controls: list[ControlResult]) -> list[str]:
    """One line per selected control with its layers, then each not-checked reason once."""
    out: list[str] = []
    reasons: dict[str, list[str]] = {}
    for c in controls:
        if c.verdict == NOT_SELECTED:
            continue
        missing = ", ".join(c.layers_not_checked)
        layers = (f"checked: {', '.join(c.layers_checked) or 'none'}"
                  + (f"; not checked: {missing}" if missing else ""))
        absent = bool(c.layers) and all("reason" in r and r["verdict"] != NOT_CHECKED
                                        for r in c.layers)  # n/a on the platform
        if c.verdict == INHERITED or absent:  # nothing probed: say why, and where that is written
            why = next((ch["evidence"] for ch in c.checks if ch["verdict"] == c.verdict), "")
            out.append(f"{c.verdict.upper():<14} {c.id:<8} {c.title}  [nothing probed]")
            out.append(f"{'':<14} {'':<8} {why}")
            continue
        out.append(f"{c.verdict.upper():<14} {c.id:<8} {c.title}  [{layers}]")
        out += [f"{'':<14} {'':<8} {w['note']}" for w in c.waivers]  # waived, or expired
        for why in c.layers_not_checked.values():
            reasons.setdefault(why, []).append(c.id)
    if reasons:
        out.append("layers not checked:")
        out += [f"  {why} ({', '.join(dict.fromkeys(ids))})" for why, ids in reasons.items()]
    return out


def pre_last_cell(body: str) -> str:
    """Keep multi-line evidence readable: wrap the last cell of each row in <pre>."""
    return pre_last_cells(body, 1)


def pre_last_cells(body: str, n: int) -> str:
    """Keep multi-line cells readable: wrap the last ``n`` cells of each row in <pre>."""
    out = []
    for row in body.split("</tr>"):
        for _ in range(n):
            i = row.rfind("<td>", 0, row.rfind("<td><pre>") if "<td><pre>" in row else len(row))
            if i < 0:
                break
            j = row.index("</td>", i)
            row = row[:i] + "<td><pre>" + row[i + 4:j] + "</pre></td>" + row[j + 5:]
        out.append(row)
    return "</tr>".join(out)


def write(d: Path, target: str, when: str, controls: list[ControlResult],
          warnings: list[str] | None = None, incomplete: list[str] | None = None) -> Path:
    path = d / "summary.html"
    fsio.write_text(path, render(target, when, controls, warnings, incomplete))
    return path


