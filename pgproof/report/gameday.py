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

from pgproof.report.html import page, table
from pgproof.report.timeline import num, origin, render_timeline, rto_text, section

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
    if fault.get("injected_at") is not None and fault.get("undo_ok") is None:
        return "The fault was injected but no undo was recorded: check the target before using it."
    return None


def _key_numbers(j: Mapping[str, Any], rel: Any) -> list[list[str]]:
    m = section(j, "measurements")
    rto, led, sb, promo = (section(m, k) for k in ("rto", "ledger", "split_brain", "promotion"))
    budget = num(section(j, "parameters").get("budget_s")) or 60
    rows: list[list[str]] = []
    if rto:
        rto_s, res = num(rto.get("rto_s")), num(rto.get("resolution_s"))
        lo, hi = rel(rto.get("last_ack_before")), rel(rto.get("first_ack_after"))
        outage = hi - lo if lo is not None and hi is not None else None
        rows.append(["RTO (writes succeed again)", rto_text(rto_s, res),
                     f"budget {budget:g} s; resolution {_secs(res, digits=3)}; outage "
                     f"{_secs(outage, digits=2)} (last ack {_secs(lo, True, digits=2)}, "
                     f"first ack {_secs(hi, True, digits=2)}); "
                     f"{rto.get('failed_writes', NA)} probe writes failed"])
    if led:
        rows.append(["Acknowledged writes lost", str(led.get("lost", NA)),
                     f"acknowledged {led.get('acknowledged', NA)}, present {led.get('present', NA)}, "
                     f"failed {led.get('failed', NA)}, extra {led.get('extra', NA)}"])
        rows.append(["Unknown commits", str(led.get("unknown", NA)),
                     f"landed {led.get('unknown_landed', NA)}, missing {led.get('unknown_missing', NA)} "
                     "(connection broke before the answer; never counted as lost)"])
    tps = num(m.get("baseline_tps"))
    if tps is not None:
        rows.append(["Baseline throughput", f"{tps:.0f} ok req/s", "median before the fault"])
    if "load_recovery_s" in m:
        rec = num(m.get("load_recovery_s"))
        rows.append(["Load recovery", "not recovered" if rec is None else _secs(rec),
                     "after the fault, back to >= 90 % of baseline throughput"])
    if "heal_s" in m:
        rows.append(["Cluster healed", _secs(num(m.get("heal_s"))), "old primary rejoined or new standby"])
    p95b, p95a = num(m.get("p95_baseline_ms")), num(m.get("p95_after_ms"))
    if p95b is not None or p95a is not None:
        rows.append(["p95 latency", f"{_secs(p95b, unit=' ms')} -> {_secs(p95a, unit=' ms')}",
                     "baseline -> after the fault was removed"])
    if m.get("failovers") is not None:
        rows.append(["Failovers", str(m["failovers"]), ""])
    if sb:
        refused = sb.get("write_refused")
        rows.append(["Split brain", "none: write refused" if refused else "WRITE ACCEPTED",
                     f"direct write on old primary {sb.get('old_primary', '?')}: {sb.get('error') or '-'}"])
    if promo:
        pat, pg = rel(promo.get("patroni_log_at")), rel(promo.get("postgres_log_at"))
        rows.append(["Promotion logged", f"Patroni {_secs(pat, True)}, PostgreSQL {_secs(pg, True)}",
                     _cross_check(pat, pg, rel(rto.get("first_ack_after")), num(rto.get("resolution_s")))])
    return rows


def _cross_check(pat: float | None, pg: float | None, ack: float | None, res: float | None) -> str:
    """Does the clock's RTO agree with the logs? A first ack before promotion means skew or split brain."""
    promoted = pg if pg is not None else pat
    notes = [f"Patroni vs PostgreSQL {abs(pat - pg):.2f} s apart"] if None not in (pat, pg) else []
    if promoted is not None and ack is not None:
        gap = ack - promoted
        if gap < -(res or 0.1):
            notes.append(f"INCONSISTENT: first ack {-gap:.2f} s before promotion was logged "
                         "(clock skew, or a write landed on the old primary)")
        else:
            notes.append(f"consistent: first ack {gap:.2f} s after promotion (reconnect and routing)")
    return "; ".join(notes) or "nothing to compare"


def blocks(j: Mapping[str, Any]) -> list[Block]:
    """The report as format-neutral blocks, in reading order."""
    t0, zero = origin(j)

    def rel(t: Any) -> float | None:
        v = num(t)
        return None if v is None or t0 is None else v - t0

    start, end = num(j.get("started_at")), num(j.get("ended_at"))
    verdict = str(j.get("verdict") or "incomplete")
    out: list[Block] = [("table", ["", ""], [
        ["Scenario", f"{j.get('scenario') or '?'}: {j.get('description') or ''}".rstrip(": ")],
        ["Target", str(j.get("target") or "?")], ["Driver", str(j.get("driver") or "?")],
        ["Run", str(j.get("run_id") or "?")], ["Started", _when(start)],
        ["Duration", _secs(end - start if start is not None and end is not None else None)],
        ["Overall verdict", verdict.upper()]])]
    warning = _undo_warning(j)
    if warning:
        out.append(("warn", warning))
    before = section(j, "steady_state_before")
    if before and not before.get("ok"):
        out.append(("warn", f"Steady state did not hold before the run: {before.get('detail') or ''}"))

    out.append(("h", "Verdicts"))
    verdicts = [v for v in j.get("verdicts") or [] if isinstance(v, dict)]
    out.append(("table", ["ID", "Control", "Verdict", "Evidence"],
                [[str(v.get("id", "?")), str(v.get("title", "")), str(v.get("verdict", "?")).upper(),
                  str(v.get("evidence", ""))] for v in verdicts])
               if verdicts else ("p", "No verdicts recorded."))

    out.append(("h", "Key numbers"))
    rows = _key_numbers(j, rel)
    out.append(("table", ["Measure", "Value", "Detail"], rows) if rows
               else ("p", "Nothing measured (the run stopped before the fault)."))
    out += [("h", "Timeline"), ("img",)]

    fault = section(j, "fault")
    out.append(("h", "Fault and undo"))
    undo = {True: "yes", False: "NO", None: "not recorded"}.get(fault.get("undo_ok"), "?")
    out.append(("table", ["", ""], [
        ["Fault", str(fault.get("name") or "none")], ["Description", str(fault.get("description") or "")],
        ["Injected", f"{_when(fault.get('injected_at'))} ({_secs(rel(fault.get('injected_at')), True)})"],
        ["Undone", f"{_when(fault.get('undone_at'))} ({_secs(rel(fault.get('undone_at')), True)})"],
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


def write_reports(journal: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write timeline.png, report.md and report.html into ``out_dir``; return them by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png = render_timeline(journal, out_dir / "timeline.png")
    md, page = out_dir / "report.md", out_dir / "report.html"
    md.write_text(to_markdown(journal, png.name), encoding="utf-8")
    page.write_text(to_html(journal, png.read_bytes()), encoding="utf-8")
    return {"timeline": png, "markdown": md, "html": page}


def summary_lines(journal: Mapping[str, Any], paths: Mapping[str, Path] | None = None) -> list[str]:
    """Terminal summary: the headline, one line per verdict, the undo warning, then where the report is."""
    rto = section(section(journal, "measurements"), "rto")
    led = section(section(journal, "measurements"), "ledger")
    head = f"{journal.get('scenario') or '?'} on {journal.get('target') or '?'}: " \
           f"{str(journal.get('verdict') or 'incomplete').upper()}"
    if rto:
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
