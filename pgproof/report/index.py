"""reports/index.html: every run (checks and game days), drift highlighted, a timeline per target.

Regenerated after every run from ``history.jsonl`` (the record) and the run
directories (what still exists). Each run's own page (summary.html of a check,
report.html of a game day) gets a small nav bar linking the index and the runs
before and after it of the same target; the bar sits between markers and is
rewritten in place, because "the next run" does not exist when a page is written.
Only links to files that exist are written, so a pruned run dir leaves no dead link.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import html
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pgproof.report.history import (
    CHECK,
    GAMEDAY,
    LATEST,
    NOT_SELECTED,
    all_runs,
    append_gameday,
    changes,
    incomplete,
    kind,
    point_kind_latest,
)
from pgproof.report.html import page
from pgproof.target import TARGET_NAME

INDEX = "index.html"
NAV_START, NAV_END = "<!--pgproof-nav-->", "<!--/pgproof-nav-->"
MAIN_PAGE = {CHECK: "summary.html", GAMEDAY: "report.html"}
FILES = {CHECK: ("summary.html", "report.html", "results.json", "results.sarif", "junit.xml"),
         GAMEDAY: ("report.html", "report.md", "journal.json", "timeline.png")}
COUNT_ORDER = ("fail", "error", "cannot-verify", "not-checked", "inherited", "skip", "pass",
               NOT_SELECTED)
# What the verdict column means: "compliant" alone must never hide what was not verified.
VERDICT_LEGEND = ("compliant: no control failed or could not be checked. "
                  "compliant (N cannot-verify): nothing failed, but for N controls the target does not "
                  "expose the fact the check needs (e.g. a managed service hiding a setting), so "
                  "pgproof could neither confirm nor refute them; verify those another way. "
                  "non-compliant: at least one control failed. could not check: a check errored.")
EXTRA_CSS = """nav.pgproof-nav{background:#f6f8fa;border:1px solid #d0d7de;padding:6px 10px;margin:0 0 1em}
nav.pgproof-nav a,nav.pgproof-nav span{margin-right:1.2em}tr.drift td{background:#fff8c5}.drift-cell{color:#cf222e;font-weight:700}
img.timeline{border:1px solid #d0d7de;margin:.5em 0}"""


def after_run(d: Path, of: str, journal: Mapping[str, Any] | None = None) -> Path | None:
    """The hook each run calls when its reports are complete; never raises (one warning line)."""
    try:
        if of == GAMEDAY and journal is not None:
            append_gameday(d, journal)
        point_kind_latest(d.parent, d, of)
        return regenerate(d.parent)
    except Exception as exc:  # noqa: BLE001 - an index problem must not fail the run it follows
        print(f"pgproof: reports/{INDEX} not updated: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def regenerate(base: Path) -> Path:
    """Rewrite index.html, the timeline pictures and every run page's nav bar under ``base``."""
    from pgproof.report import index_chart

    runs = all_runs(base / "history.jsonl")
    by_target: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by_target.setdefault(str(r.get("target")), []).append(r)
    charts = {t: index_chart.render(rs, t, base / f"index-timeline-{_safe(t)}.svg").name
              for t, rs in by_target.items()}
    for rs in by_target.values():
        for i, r in enumerate(rs):
            _write_nav(base, r, rs[i - 1] if i else None, rs[i + 1] if i + 1 < len(rs) else None)
    path = base / INDEX
    tmp = base / f".{INDEX}.{os.getpid()}"
    tmp.write_text(render(base, runs, by_target, charts), encoding="utf-8")
    tmp.replace(path)
    return path


def render(base: Path, runs: Sequence[Mapping[str, Any]], by_target: Mapping[str, Sequence[Mapping[str, Any]]],
           charts: Mapping[str, str]) -> str:
    drift = _drift_by_run(by_target)
    latest = " · ".join(f"<a href='{name}/{MAIN_PAGE[of]}'>newest {'game day' if of == GAMEDAY else of}</a>"
                        for of, name in LATEST.items() if (base / name / MAIN_PAGE[of]).exists())
    parts = [f"<p>{len(runs)} runs of {len(by_target)} target(s); generated "
             f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S} UTC. {latest}</p>"]
    if not runs:
        parts.append("<p>No runs yet: <code>pgproof check</code> or <code>pgproof gameday</code> adds one.</p>")
    parts.append("<h2>Runs (newest first)</h2>")
    rows = []
    for r in reversed(runs):
        moved = drift.get(id(r), [])
        d = base / str(r.get("dir"))
        links = " ".join(f"<a href='{_href(r, f)}'>{f}</a>" for f in FILES[kind(r)] if (d / f).is_file())
        what = f"game day: {r.get('scenario', '?')}" if kind(r) == GAMEDAY else "check"
        partial = "yes" if r.get("partial") else "no"
        if r.get("partial") and kind(r) == CHECK:
            partial = f"yes ({len(r.get('selected') or [])} selected)"
        rows.append(f"<tr class='{'drift' if moved else 'run'}' data-dir='{html.escape(str(r.get('dir')))}'>"
                    f"<td>{html.escape(_when(r))}</td><td>{html.escape(str(r.get('target')))}</td>"
                    f"<td>{html.escape(what)}</td>{_verdict_cell(r)}<td>{html.escape(_counts(r))}</td>"
                    f"<td>{partial}</td><td class='drift-cell'>{html.escape(', '.join(moved))}</td>"
                    f"<td>{links or 'report removed'}</td></tr>")
    heads = ["When (UTC)", "Target", "Kind", "Verdict", "Counts", "Partial", "Drift vs previous check", "Files"]
    parts.append("<table><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr>" + "".join(rows) + "</table>")
    parts.append(f"<p class='legend'>{html.escape(VERDICT_LEGEND)}</p>")
    parts.append("<h2>Timeline per control</h2><p>One column per run of the target, oldest left; a thick "
                 "black frame marks drift (a check's verdict changed since the previous check).</p>")
    for t, name in charts.items():
        parts.append(f"<h3>{html.escape(t)}</h3><img class='timeline' alt='timeline of {html.escape(t)}' "
                     f"src='{html.escape(name)}' onload=\"this.dataset.loaded=this.naturalWidth+'x'+"
                     f"this.naturalHeight\" onerror=\"this.alt='timeline image missing: '+this.src\">")
    return page("pgproof: every run", "".join(parts)).replace("</style>", EXTRA_CSS + "</style>", 1)


def _drift_by_run(by_target: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[int, list[str]]:
    """For each check: 'ID before->after' against the previous check of its target."""
    out: dict[int, list[str]] = {}
    for rs in by_target.values():
        prev = None
        for r in rs:
            if kind(r) != CHECK or incomplete(r):  # an interrupted run is no verdict to compare
                continue
            if prev is not None:
                out[id(r)] = [f"{c.control} {c.before}->{c.after}" for c in changes(prev, r)]
            prev = r
    return out


def _verdict_cell(r: Mapping[str, Any]) -> str:
    why = incomplete(r) if kind(r) == CHECK else None
    if why:  # interrupted, stopped early, a fault left on the target: never "compliant"
        return f"<td class='v-ERROR'>not a verdict: {html.escape(why)}</td>"
    if kind(r) == GAMEDAY:
        v = str(r.get("verdict") or "incomplete")
    else:
        counts = r.get("summary") or {}
        v = "fail" if counts.get("fail") else "error" if counts.get("error") else "pass"
        v = {"pass": "compliant", "fail": "non-compliant", "error": "could not check"}[v]
        if v == "compliant" and counts.get("cannot-verify"):
            v = f"compliant ({counts['cannot-verify']} cannot-verify)"
    cls = {"pass": "PASS", "compliant": "PASS", "fail": "FAIL", "non-compliant": "FAIL"}.get(
        v, "CANNOT-VERIFY" if v.startswith("compliant (") else "ERROR")
    return f"<td class='v-{cls}'>{html.escape(v)}</td>"


def _counts(r: Mapping[str, Any]) -> str:
    counts = r.get("summary") or {}
    keys = [k for k in COUNT_ORDER if counts.get(k)] + [k for k in counts if k not in COUNT_ORDER]
    return ", ".join(f"{k} {counts[k]}" for k in keys) or "no verdicts"


def _when(r: Mapping[str, Any]) -> str:
    try:
        return dt.datetime.fromisoformat(str(r.get("at"))).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(r.get("at") or "?")


def _href(r: Mapping[str, Any], name: str, up: str = "") -> str:
    return html.escape(f"{up}{r.get('dir')}/{name}")


def _safe(target: str) -> str:
    """A file-name part for ``target``: the name itself when it is a valid target name, else a
    hash-suffixed form, so ``dbä`` and ``dbö`` (from an older history) never share a picture."""
    if TARGET_NAME.fullmatch(target):
        return target
    digest = hashlib.sha256(target.encode()).hexdigest()[:12]
    return f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', target)[:40]}-{digest}"


def nav_html(r: Mapping[str, Any], prev: Mapping[str, Any] | None, nxt: Mapping[str, Any] | None,
             base: Path) -> str:
    def link(other: Mapping[str, Any] | None, label: str, after: str = "") -> str:
        if other is None:
            return f"<span>{html.escape(label)}: none</span>"
        page_ = base / str(other.get("dir")) / MAIN_PAGE[kind(other)]
        what = f"game day {other.get('scenario', '?')}" if kind(other) == GAMEDAY else "check"
        text = html.escape(f"{label}: {what}, {_when(other)}{after}")
        return f"<a href='{_href(other, MAIN_PAGE[kind(other)], '../')}'>{text}</a>" if page_.is_file() \
            else f"<span>{text} (report removed)</span>"

    who = str(r.get("target"))
    return (f"{NAV_START}<nav class='pgproof-nav'><a href='../{INDEX}'>All runs</a>"
            f"{link(prev, f'← previous run of {who}')}{link(nxt, f'next run of {who}', ' →')}"
            f"</nav>{NAV_END}")


def _write_nav(base: Path, r: Mapping[str, Any], prev: Mapping[str, Any] | None,
               nxt: Mapping[str, Any] | None) -> None:
    """Put (or refresh) the nav bar in the run's main page; untouched when already current."""
    path = base / str(r.get("dir")) / MAIN_PAGE[kind(r)]
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    nav = nav_html(r, prev, nxt, base)
    if NAV_START in text and NAV_END in text:
        new = text[:text.index(NAV_START)] + nav + text[text.index(NAV_END) + len(NAV_END):]
    elif "<body>" in text:
        style = f"<style>{EXTRA_CSS}</style>" if "pgproof-nav{" not in text else ""
        new = text.replace("<body>", f"<body>{style}{nav}", 1)
    else:
        return
    if new != text:
        with contextlib.suppress(OSError):
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(new, encoding="utf-8")
            tmp.replace(path)
