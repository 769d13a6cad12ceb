"""The per-control timeline on the index: one row per control, one column per run, colour = verdict.

A table of 40 controls x 30 runs is unreadable; a grid of coloured cells shows at a
glance which control flapped and when. Cells where a check's verdict differs from
the previous check of the same control (drift) get a thick black frame. Game-day
columns only colour the controls that scenario judged; a control a run did not
select stays blank with a hatch, because it says nothing either way.

Drawn as SVG by hand, not with matplotlib: the index is rewritten after every check,
and importing matplotlib and rasterising a PNG cost ~1 s of each check's 3 s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from pgproof.catalogue import registry as catalogue
from pgproof.report.history import GAMEDAY, NOT_SELECTED, incomplete, kind

COLOURS = {"pass": "#2da44e", "fail": "#cf222e", "error": "#bf8700", "cannot-verify": "#8250df",
           "skip": "#afb8c1", "inherited": "#54aeff", "not-checked": "#eaeef2", NOT_SELECTED: "#ffffff"}
MAX_COLUMNS = 40  # older runs stay in the table; the picture shows the newest ones


def rows_of(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every control any run judged, in catalogue order (unknown IDs last, as first seen)."""
    seen = list(dict.fromkeys(c for r in runs for c in (r.get("verdicts") or {})))
    known = [c for c in catalogue.CATALOGUE if c in seen]
    return known + [c for c in seen if c not in known]


def drifted(runs: Sequence[Mapping[str, Any]]) -> set[tuple[int, str]]:
    """(column, control) cells whose check verdict changed since the previous check selecting it."""
    last: dict[str, str] = {}
    out: set[tuple[int, str]] = set()
    for i, r in enumerate(runs):
        if kind(r) == GAMEDAY or incomplete(r):  # interrupted or polluted: no verdict to compare
            continue
        for cid, v in (r.get("verdicts") or {}).items():
            if v == NOT_SELECTED:
                continue
            if cid in last and last[cid] != v:
                out.add((i, cid))
            last[cid] = v
    return out


def _label(r: Mapping[str, Any]) -> str:
    try:
        when = dt.datetime.fromisoformat(str(r.get("at"))).strftime("%m-%d %H:%M")
    except ValueError:
        when = "?"
    what = f"gd {r.get('scenario', '?')}" if kind(r) == GAMEDAY else "check"
    if kind(r) != GAMEDAY and incomplete(r):
        return f"{when}\n{what} (no verdict)"
    return f"{when}\n{what}" + (" (partial)" if r.get("partial") and kind(r) != GAMEDAY else "")


CELL_W, CELL_H = 44, 22  # px per run column / control row
LEFT, TOP, BOTTOM, LEGEND_W = 90, 34, 96, 150


def render(runs: Sequence[Mapping[str, Any]], target: str, path: Path) -> Path:
    """Write the timeline SVG for one target's runs (oldest first) to ``path``."""
    shown = list(runs)[-MAX_COLUMNS:]
    ids = rows_of(shown)
    marks = drifted(shown)
    cols, nrows = max(len(shown), 1), max(len(ids), 1)
    width = max(LEFT + cols * CELL_W + 20 + LEGEND_W, 640)  # the title needs room
    height = TOP + nrows * CELL_H + BOTTOM
    older = len(runs) - len(shown)
    title = (f"{target}: verdict per control and run (oldest left)"
             + (f"; {older} older runs in the table only" if older else ""))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{max(height, 260)}" '
           f'viewBox="0 0 {width} {max(height, 260)}" font-family="sans-serif">',
           '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
           'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" stroke="#8c959f"/>'
           '</pattern></defs>',
           '<rect width="100%" height="100%" fill="#ffffff"/>',
           f'<text x="4" y="18" font-size="13">{escape(title)}</text>']
    for y, cid in enumerate(ids):
        out.append(f'<text x="{LEFT - 6}" y="{TOP + y * CELL_H + 15}" font-size="11" '
                   f'text-anchor="end">{escape(cid)}</text>')
    for x, r in enumerate(shown):
        verdicts = r.get("verdicts") or {}
        for y, cid in enumerate(ids):
            v = verdicts.get(cid)
            if v is None:  # a game day's column for a compliance control, or the reverse
                continue
            drift = (x, cid) in marks
            fill = "url(#hatch)" if v == NOT_SELECTED else COLOURS.get(v, "#d0d7de")
            out.append(f'<rect x="{LEFT + x * CELL_W + 3}" y="{TOP + y * CELL_H + 2}" '
                       f'width="{CELL_W - 6}" height="{CELL_H - 4}" fill="{fill}" '
                       f'stroke="{"#000000" if drift else "#d0d7de"}" '
                       f'stroke-width="{2.6 if drift else 0.5}"><title>{escape(cid)}: {escape(v)}'
                       f'{" (drift)" if drift else ""}</title></rect>')
        cx, cy = LEFT + x * CELL_W + CELL_W / 2, TOP + nrows * CELL_H + 8
        for i, line in enumerate(_label(r).split("\n")):
            out.append(f'<text x="{cx}" y="{cy + i * 11}" font-size="9" text-anchor="end" '
                       f'transform="rotate(-60 {cx} {cy})" dx="{-i * 6}">{escape(line)}</text>')
    lx = LEFT + cols * CELL_W + 20
    legend = [*COLOURS.items(), ("drift", "#ffffff")]
    for i, (v, colour) in enumerate(legend):
        fill = "url(#hatch)" if v == NOT_SELECTED else colour
        stroke, sw = ("#000000", 2.6) if v == "drift" else ("#8c959f", 0.8)
        out.append(f'<rect x="{lx}" y="{TOP + i * 18}" width="14" height="12" fill="{fill}" '
                   f'stroke="{stroke}" stroke-width="{sw}"/>'
                   f'<text x="{lx + 20}" y="{TOP + i * 18 + 10}" font-size="11">{escape(v)}</text>')
    out.append("</svg>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(out), encoding="utf-8")
    tmp.replace(path)
    return path
