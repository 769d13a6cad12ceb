"""The combined index of a many-target run: one row per target, its verdicts and report.

Why: a platform team checking every environment at night reads one page first;
each row links the target's own run directory (written as a single run would be),
and ``reports/index.html`` keeps the history of each target as before.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
from pathlib import Path

from pgproof import fsio
from pgproof.report.html import page, table

EXIT = {0: "compliant", 1: "NON-COMPLIANT", 2: "could not check"}


def write(base: Path, runs: list[tuple[str, str]]) -> tuple[Path, list[str]]:
    """``targets-<stamp>.html``/``.json`` under ``base``; returns its path and one line per target."""
    rows: list[str] = []
    doc: list[dict[str, object]] = []
    lines: list[str] = []
    for target, run_dir in sorted(runs):
        d = Path(run_dir)
        results = d / "results.json"
        res = json.loads(results.read_text()) if results.exists() else {}
        code = int(res.get("exit_code", 2))
        summary = res.get("summary", {})
        counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.items()))
        rel = os.path.relpath(d / "summary.html", base)
        doc.append({"target": target, "dir": str(d), "exit_code": code, "summary": summary})
        rows.append(f"<tr><td>{html.escape(target)}</td><td>{html.escape(EXIT.get(code, str(code)))}"
                    f"</td><td>{html.escape(counts or 'no results')}</td><td><a href='{html.escape(rel)}'>"
                    f"{html.escape(d.name)}</a></td></tr>")
        lines.append(f"{EXIT.get(code, str(code)).upper():<15} {target:<16} {counts}  ({d})")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    worst = max((int(str(r["exit_code"])) for r in doc), default=2)
    path = base / f"targets-{stamp}.html"
    body = (table(["Target", "Verdict", "Controls", "Report"], []).removesuffix("</table>")
            + "".join(rows) + "</table>")
    fsio.write_text(path, page(f"pgproof: {len(doc)} targets", body))
    fsio.write_text(base / f"targets-{stamp}.json", json.dumps(
        {"generated_at": stamp, "exit_code": worst, "targets": doc}, indent=2))
    from pgproof.report import index

    index.regenerate(base)
    return path, lines
