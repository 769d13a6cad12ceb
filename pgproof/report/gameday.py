"""The game-day retro: one journal rendered as report.md, report.html and timeline.png.

Both documents come from the same list of blocks so Markdown (for the ticket or
the repo) and HTML (self-contained, for e-mail or an artefact store) never
disagree. A failed undo leads the report: someone has to fix the target by hand.
Journals of interrupted runs miss fields anywhere; every lookup tolerates that.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pgproof import fsio
from pgproof.report.html import page, table
from pgproof.report.keynumbers import CONTROL_PLANE, key_numbers, scenario_outage
from pgproof.report.timeline import num, origin, render_timeline, rto_text, section, verdict_label

Block = tuple[Any, ...]  # ("h", text) | ("p", text) | ("warn", text) | ("table", heads, rows) | ("img",)
NA = "n/a"


def _when(t: Any) -> str:
    v = num(t)
    return dt.datetime.fromtimestamp(v, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if v is not None else NA


def _secs(v: float | None, signed: bool = False, unit: str = " s", digits: int = 1) -> str:
    return NA if v is None else f"{v:{'+' if signed else ''}.{digits}f}{unit}"


def _undo_warning(j: Mapping[str, Any]) -> str | None:
    """Why the target may still be broken, or None: failed or unrecorded undo of an injected fault."""
    fault = section(j, "fault")
    if fault.get("undo_ok") is False or j.get("manual_fix"):
        err = fault.get("undo_error") or "no error recorded"
        fix = j.get("manual_fix") or "no manual fix recorded: inspect the target by hand"
        return (f"UNDO FAILED: the fault '{fault.get('name') or '?'}' may still be in place ({err}). "
                f"Manual fix: {fix}")
    if (fault.get("injected_at") is not None and fault.get("undo_ok") is None
            and fault.get("undone_at") is None):
        return "The fault was injected but no undo was recorded: check the target before using it."
    return None


def blocks(j: Mapping[str, Any]) -> list[Block]:
    """The report as format-neutral blocks, in reading order."""
    t0, zero = origin(j)

    def rel(t: Any) -> float | None:
        v = num(t)
        return None if v is None or t0 is None else v - t0

    start, end = num(j.get("started_at")), num(j.get("ended_at"))
    stop = section(j, "interrupted")
    stopped = (f"by {stop.get('by') or 'a signal'} at {_secs(rel(stop.get('at')), True)} "
               f"({_when(stop.get('at'))}), during {stop.get('phase') or '?'}") if stop else ""
    out: list[Block] = [("table", ["", ""], [
        ["Scenario", f"{j.get('scenario') or '?'}: {j.get('description') or ''}".rstrip(": ")],
        ["Target", str(j.get("target") or "?")], ["Driver", str(j.get("driver") or "?")],
        ["Run", str(j.get("run_id") or "?")], ["Started", _when(start)],
        ["Duration", _secs(end - start if start is not None and end is not None else None)],
        ["Overall verdict", verdict_label(j)],
        *([["Interrupted", stopped]] if stop else [])])]
    warning = _undo_warning(j)
    if warning:
        out.append(("warn", warning))
    before = section(j, "steady_state_before")
    if before and not before.get("ok"):
        out.append(("warn", f"Steady state did not hold before the run: {before.get('detail') or ''}"))

    out.append(("h", "Verdicts"))
    verdicts = [v for v in j.get("verdicts") or [] if isinstance(v, dict)]
    none = (f"No verdicts: the run was interrupted {stopped}, before its controls were decided."
            if stop else "No verdicts: the undo failed, so the run stopped before its controls were "
            "decided." if section(j, "fault").get("undo_ok") is False else "No verdicts recorded.")
    out.append(("table", ["ID", "Control", "Verdict", "Evidence"],
                [[str(v.get("id", "?")), str(v.get("title", "")), str(v.get("verdict", "?")).upper(),
                  str(v.get("evidence", ""))] for v in verdicts])
               if verdicts else ("p", none))

    out.append(("h", "Key numbers"))
    rows = key_numbers(j, rel)
    injected = num(section(j, "fault").get("injected_at")) is not None
    out.append(("table", ["Measure", "Value", "Detail"], rows) if rows
               else ("p", "Nothing measured before the run stopped." if injected
                     else "Nothing measured (the run stopped before the fault)."))
    out += [("h", "Timeline"), ("img",)]

    fault = section(j, "fault")
    out.append(("h", "Fault and undo"))
    undo = {True: "yes", False: "NO", None: "not recorded"}.get(fault.get("undo_ok"), "?")
    if fault.get("undo_ok") is None and not fault.get("name"):
        undo = "nothing to undo (no fault was injected)"
    out.append(("table", ["", ""], [
        ["Fault", str(fault.get("name") or "none")], ["Description", str(fault.get("description") or "")],
        ["Injected", f"{_when(fault.get('injected_at'))} ({_secs(rel(fault.get('injected_at')), True)})"],
        ["Undo attempted" if fault.get("undo_ok") is False else "Undone",
         f"{_when(fault.get('undone_at'))} ({_secs(rel(fault.get('undone_at')), True)})"],
        ["Undo succeeded", undo], ["Undo error", str(fault.get("undo_error") or "-")],
        ["Manual fix", str(j.get("manual_fix") or "-")]]))

    out.append(("h", "Steady state"))
    out.append(("table", ["When", "Holds", "Detail"], [
        [name, NA if not s else ("yes" if s.get("ok") else "NO"), str(s.get("detail") or "not checked")]
        for name, s in (("before", before), ("after", section(j, "steady_state_after")))]))

    out.append(("h", f"Events (seconds since {zero})"))
    events = sorted((e for e in j.get("events") or [] if isinstance(e, dict)),
                    key=lambda e: num(e.get("t")) or 0.0)
    out.append(("table", ["t", "Phase", "Event", "Detail"],
                [[_secs(rel(e.get("t")), True, ""), str(e.get("phase", "")), str(e.get("event", "")),
                  str(e.get("detail", ""))] for e in events]) if events else ("p", "No events recorded."))

    for title, key in (("Parameters", "parameters"), ("Versions", "versions")):
        items = section(j, key)
        out.append(("h", title))
        out.append(("table", ["Name", "Value"], [[str(k), str(v)] for k, v in items.items()])
                   if items else ("p", "None recorded."))
    return out


def _title(j: Mapping[str, Any]) -> str:
    return f"Game day: {j.get('scenario') or '?'} on {j.get('target') or '?'}"


def _md_cell(text: str) -> str:
    """Escape what would break a table row or turn into markup; keep the raw file readable."""
    text = re.sub(r"([\\`*|\[\]]|<(?=[A-Za-z/!?]))", r"\\\1", text)  # "<" only where it opens a tag
    return text.replace("\r", "").replace("\n", "<br>")


def to_markdown(j: Mapping[str, Any], image: str = "timeline.png") -> str:
    lines = [f"# {_md_cell(_title(j))}", ""]
    for b in blocks(j):
        if b[0] == "h":
            lines += [f"## {_md_cell(b[1])}", ""]
        elif b[0] == "p":
            lines += [_md_cell(b[1]), ""]
        elif b[0] == "warn":
            lines += [f"> **WARNING:** {_md_cell(b[1])}", ""]
        elif b[0] == "img":
            lines += [f"![timeline]({image})", ""]
        else:
            heads, rows = b[1], b[2]
            lines.append("| " + " | ".join(_md_cell(h) for h in heads) + " |")
            lines.append("|" + "---|" * len(heads))
            lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            lines.append("")
    return "\n".join(lines)


def to_html(j: Mapping[str, Any], png: bytes | None) -> str:
    """One self-contained page: CSS inline, the chart as a data URI, every value escaped."""
    parts: list[str] = []
    for b in blocks(j):
        if b[0] == "h":
            parts.append(f"<h2>{html.escape(b[1])}</h2>")
        elif b[0] == "p":
            parts.append(f"<p>{html.escape(b[1])}</p>")
        elif b[0] == "warn":
            parts.append(f"<div class='warn'>&#9888; {html.escape(b[1])}</div>")
        elif b[0] == "img":
            parts.append(f"<img alt='timeline' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
                         if png else "<p>No chart.</p>")
        else:
            parts.append(table(b[1], b[2]))
    return page(_title(j), "".join(parts))


def with_load_files(journal: Mapping[str, Any], out_dir: Path) -> Mapping[str, Any]:
    """A journal without a series (the run stopped early) still charts the load files it left."""
    if journal.get("series") or not list((out_dir / "load").glob("stats.*.jsonl")):
        return journal
    from pgproof.load.runner import merge_seconds, read_jsonl

    stats = merge_seconds(list(read_jsonl(list((out_dir / "load").glob("stats.*.jsonl")))))
    return {**journal, "series": [{"t": x.t, "requests": x.requests, "failures": x.failures,
                                   "p95_ms": x.p95_ms, "users": x.users} for x in stats]}


def write_reports(journal: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write timeline.png, report.md and report.html into ``out_dir``; return them by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    journal = with_load_files(journal, out_dir)
    png = render_timeline(journal, out_dir / "timeline.png")
    md, page = out_dir / "report.md", out_dir / "report.html"
    fsio.write_text(md, to_markdown(journal, png.name))
    fsio.write_text(page, to_html(journal, png.read_bytes()))
    return {"timeline": png, "markdown": md, "html": page}


def summary_lines(journal: Mapping[str, Any], paths: Mapping[str, Path] | None = None) -> list[str]:
    """Terminal summary: the headline, one line per verdict, the undo warning, then where the report is."""
    rto = section(section(journal, "measurements"), "rto")
    led = section(section(journal, "measurements"), "ledger")
    head = f"{journal.get('scenario') or '?'} on {journal.get('target') or '?'}: {verdict_label(journal)}"
    if rto and (rto.get("judged") == "outage" or journal.get("scenario") in CONTROL_PLANE):
        out, res = scenario_outage(dict(rto))
        head += f" (RTO (outage) {rto_text(num(out), num(res))}"
        head += f", lost {led.get('lost', NA)}, unknown {led.get('unknown', NA)})" if led else ")"
    elif rto:
        head += f" (RTO {rto_text(num(rto.get('rto_s')), num(rto.get('resolution_s')))}"
        head += f", lost {led.get('lost', NA)}, unknown {led.get('unknown', NA)})" if led else ")"
    lines = [head]
    for v in journal.get("verdicts") or []:
        if isinstance(v, dict):
            evidence = " ".join(str(v.get("evidence") or "").split())
            evidence = evidence if len(evidence) <= 100 else evidence[:99] + "…"
            lines.append(f"  {str(v.get('verdict', '?')).upper():5} {v.get('id', '?'):8} {evidence}")
    warning = _undo_warning(journal)
    if warning:
        lines.append("!! " + warning)
    lines += [f"  {name}: {p}" for name, p in (paths or {}).items()]
    return lines
