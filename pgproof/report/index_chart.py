"""The per-control timeline on the index: one row per control, one column per run, colour = verdict.

A table of 40 controls x 30 runs is unreadable; a grid of coloured cells shows at a
glance which control flapped and when. Cells where a check's verdict differs from
the previous check of the same control (drift) get a thick black frame. Game-day
columns only colour the controls that scenario judged; a control a run did not
select stays blank with a hatch, because it says nothing either way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# The Agg canvas is bound explicitly (no pyplot): no display, no global backend switch.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from pgproof import catalogue
from pgproof.report.history import GAMEDAY, NOT_SELECTED, kind

COLOURS = {"pass": "#2da44e", "fail": "#cf222e", "error": "#bf8700", "cannot-verify": "#8250df",
           "skip": "#afb8c1", "not-checked": "#eaeef2", NOT_SELECTED: "#ffffff"}
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
        if kind(r) == GAMEDAY:
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
    return f"{when}\n{what}" + (" (partial)" if r.get("partial") and kind(r) != GAMEDAY else "")


def render(runs: Sequence[Mapping[str, Any]], target: str, path: Path) -> Path:
    """Write the timeline PNG for one target's runs (oldest first) to ``path``."""
    shown = list(runs)[-MAX_COLUMNS:]
    ids = rows_of(shown)
    marks = drifted(shown)
    cols, nrows = max(len(shown), 1), max(len(ids), 1)
    fig = Figure(figsize=(min(max(3.2 + 0.62 * cols, 6.5), 28), 1.9 + 0.24 * nrows), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for x, r in enumerate(shown):
        verdicts = r.get("verdicts") or {}
        for y, cid in enumerate(ids):
            v = verdicts.get(cid)
            if v is None:  # a game day's column for a compliance control, or the reverse
                continue
            ax.add_patch(Rectangle((x + 0.06, y + 0.08), 0.88, 0.84, facecolor=COLOURS.get(v, "#d0d7de"),
                                   edgecolor="#000000" if (x, cid) in marks else "#d0d7de",
                                   linewidth=2.6 if (x, cid) in marks else 0.5,
                                   hatch="///" if v == NOT_SELECTED else None))
    ax.set_xlim(0, cols)
    ax.set_ylim(nrows, 0)
    ax.set_yticks([y + 0.5 for y in range(len(ids))], ids, fontsize=8)
    ax.set_xticks([x + 0.5 for x in range(len(shown))], [_label(r) for r in shown], fontsize=7,
                  rotation=60, ha="right")
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    older = len(runs) - len(shown)
    ax.set_title(f"{target}: verdict per control and run (oldest left)"
                 + (f"; {older} older runs in the table only" if older else ""), fontsize=10, loc="left")
    legend = [Patch(facecolor=c, edgecolor="#8c959f", label=v) for v, c in COLOURS.items()]
    legend.append(Patch(facecolor="#ffffff", edgecolor="#000000", linewidth=2.6, label="drift"))
    ax.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    tmp.replace(path)
    return path
