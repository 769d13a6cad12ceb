"""The game-day timeline chart: what the load saw around the fault, in one PNG.

Three panels share one x axis (seconds from the fault) so a reader can line up
the throughput dip, the error burst and the latency spike with the instants the
run measured (fault, recovery with its RTO, load recovery, undo). Journals from
interrupted runs have holes anywhere, so every field is optional here.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# The Agg canvas is bound explicitly (no pyplot): no display needed, no global
# backend switch for the host process, safe to call from any thread.
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from pgproof import fsio

VERDICT_COLOURS = {"pass": "#1a7f37", "fail": "#cf222e", "error": "#9a6700"}


def num(value: Any) -> float | None:
    """A finite float, or None: journals may hold null, strings or NaN after a crash."""
    if isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def section(journal: Mapping[str, Any], key: str) -> dict[str, Any]:
    """A sub-dict of the journal, ``{}`` when missing, null or malformed."""
    value = journal.get(key)
    return value if isinstance(value, dict) else {}


def origin(journal: Mapping[str, Any]) -> tuple[float | None, str]:
    """Time zero and its name: the fault instant if there was one, else the run start."""
    fault_at = num(section(journal, "fault").get("injected_at"))
    if fault_at is None:
        fault_at = num(section(section(journal, "measurements"), "rto").get("fault_at"))
    if fault_at is not None:
        return fault_at, "fault"
    start = num(journal.get("started_at"))
    if start is None:
        series = journal.get("series") or []
        start = next((num(s.get("t")) for s in series if isinstance(s, dict)), None)
    return start, "start"


def verdict_label(journal: Mapping[str, Any]) -> str:
    """``PASS`` / ``FAIL`` / ``ERROR``, and ``INTERRUPTED (ERROR)`` when a signal stopped the run."""
    verdict = str(journal.get("verdict") or "incomplete").upper()
    return f"INTERRUPTED ({verdict})" if section(journal, "interrupted") else verdict


def rto_text(rto_s: float | None, resolution_s: float | None) -> str:
    """``20.4 s ± 0.06``: the number is only as good as the clock's resolution."""
    if rto_s is None:
        return "not recovered"
    return f"{rto_s:.1f} s" + (f" ± {resolution_s:.2g}" if resolution_s is not None else "")


def _series(journal: Mapping[str, Any], t0: float) -> dict[str, list[float]]:
    cols: dict[str, list[float]] = {"x": [], "ok": [], "err": [], "p95": []}
    for s in journal.get("series") or []:
        t = num(s.get("t")) if isinstance(s, dict) else None
        if t is None:
            continue
        req, fail = num(s.get("requests")) or 0.0, num(s.get("failures")) or 0.0
        p95 = num(s.get("p95_ms"))
        cols["x"].append(t - t0)
        cols["ok"].append(max(req - fail, 0.0))
        cols["err"].append(fail)
        cols["p95"].append(math.nan if p95 is None else p95)  # NaN leaves a gap, not a zero
    return cols


def render_timeline(journal: Mapping[str, Any], out: Path) -> Path:
    """Draw the timeline of ``journal`` to ``out`` (PNG) and return ``out``."""
    t0, zero = origin(journal)
    t0 = t0 or 0.0
    meas = section(journal, "measurements")
    rto, fault = section(meas, "rto"), section(journal, "fault")
    cols = _series(journal, t0)

    fig = Figure(figsize=(10, 7), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(3, 1, sharex=True)
    ax_tps, ax_err, ax_p95 = axes
    ax_tps.plot(cols["x"], cols["ok"], color="#0969da", lw=1.4, drawstyle="steps-post")
    ax_err.plot(cols["x"], cols["err"], color="#cf222e", lw=1.4, drawstyle="steps-post")
    ax_p95.plot(cols["x"], cols["p95"], color="#8250df", lw=1.4, marker=".", ms=3)
    ax_tps.set_ylabel("ok requests/s")
    ax_err.set_ylabel("failures/s")
    ax_p95.set_ylabel("p95 latency (ms)")
    ax_p95.set_xlabel("seconds since " + ("fault injection" if zero == "fault" else "start"))
    if not cols["x"]:
        for ax in axes:
            ax.text(0.5, 0.5, "no load data", transform=ax.transAxes, ha="center",
                    va="center", color="grey")
            ax.set_yticks([])

    baseline = num(meas.get("baseline_tps"))
    if baseline is not None:
        ax_tps.axhline(baseline, color="grey", lw=0.8, ls=":", label=f"baseline {baseline:.0f}/s")
        ax_tps.axhline(0.9 * baseline, color="grey", lw=0.8, ls="--", label="90 % of baseline")
    p95_base = num(meas.get("p95_baseline_ms"))
    if p95_base is not None:
        ax_p95.axhline(p95_base, color="grey", lw=0.8, ls=":", label=f"baseline p95 {p95_base:.0f} ms")

    def rel(t: Any) -> float | None:
        v = num(t)
        return None if v is None else v - t0

    lo, hi = rel(rto.get("last_ack_before")), rel(rto.get("first_ack_after"))
    fault_x = rel(fault.get("injected_at"))
    fault_x = rel(rto.get("fault_at")) if fault_x is None else fault_x
    rto_s, res = num(rto.get("rto_s")), num(rto.get("resolution_s"))
    recovery_x = fault_x + rto_s if fault_x is not None and rto_s is not None else None
    load_rec = num(meas.get("load_recovery_s"))
    load_x = fault_x + load_rec if fault_x is not None and load_rec is not None else None
    marks = [  # (x, label, colour, style)
        (fault_x, "fault injected", "#cf222e", "-"),
        (recovery_x, f"writes back: RTO {rto_text(rto_s, res)}", "#1a7f37", "-"),
        (load_x, f"load recovered (+{load_rec or 0:.0f} s)", "#0969da", "--"),
        (rel(fault.get("undone_at")), "fault undone", "#57606a", "-."),
        (rel(section(journal, "interrupted").get("at")), "interrupted", "#9a6700", ":"),
    ]
    for i, ax in enumerate(axes):
        if lo is not None and hi is not None and hi >= lo:
            ax.axvspan(lo, hi, color="#cf222e", alpha=0.10, lw=0,
                       label=f"outage ({hi - lo:.1f} s no ack)" if i == 0 else None)
        for x, label, colour, style in marks:
            if x is not None:
                ax.axvline(x, color=colour, ls=style, lw=1.2, label=label if i == 0 else None)
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    if recovery_x is not None and fault_x is not None:  # the RTO as a span, labelled in the gap
        trans = ax_tps.get_xaxis_transform()
        ax_tps.annotate("", xy=(fault_x, 0.45), xytext=(recovery_x, 0.45), xycoords=trans,
                        arrowprops={"arrowstyle": "<->", "color": "#1a7f37", "lw": 1.2})
        ax_tps.text((fault_x + recovery_x) / 2, 0.5, f"RTO {rto_text(rto_s, res)}", transform=trans,
                    ha="center", va="bottom", color="#1a7f37", fontweight="bold")
    verdict = str(journal.get("verdict") or "incomplete")
    title = f"{journal.get('scenario') or 'game day'} on {journal.get('target') or '?'}: {verdict_label(journal)}"
    fig.suptitle(title, fontsize=13, fontweight="bold", color=VERDICT_COLOURS.get(verdict, "#24292f"))
    handles, labels = [], []
    for ax in axes:
        h, lab = ax.get_legend_handles_labels()
        handles += h
        labels += lab
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(handles)), fontsize=8,
                   frameon=False)
    fig.tight_layout(rect=(0, 0.07 if handles else 0, 1, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()  # rendered in memory, then written whole or not at all
    fig.savefig(buf, format="png")
    return fsio.write_bytes(out, buf.getvalue())
