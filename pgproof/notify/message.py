"""What a notification says: the run's state, its non-compliant controls, drift, where the report is.

Built from results.json and history.jsonl only. It names control IDs, verdicts and
titles, never evidence: evidence can quote hosts, users or DSNs, and a chat channel
is not the place for them. The same text goes to every channel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgproof.report.history import CHECK, Change, changes, incomplete, kind, runs

STATES = {0: "compliant", 1: "non-compliant", 2: "could not check"}
MAX_LISTED = 25  # a message, not a report: the rest is one line and the link


@dataclass(frozen=True)
class Summary:
    target: str
    run: str
    at: str
    exit_code: int
    problems: list[tuple[str, str, str]]  # (control, verdict, title) of fail/error controls
    drift: list[Change]
    report: str  # URL or local path of summary.html
    previous_exit: int | None = None
    partial: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return STATES.get(self.exit_code, "could not check")

    @property
    def recovered(self) -> bool:
        return self.exit_code == 0 and self.previous_exit not in (None, 0)

    @property
    def dedup_key(self) -> str:
        """Stable per target: PagerDuty folds every non-compliant night into one incident."""
        return f"pgproof/{self.target}/compliance"

    def headline(self) -> str:
        what = "compliant again" if self.recovered else self.state.upper()
        part = " (partial run)" if self.partial else ""
        return f"pgproof: {self.target} is {what}{part}, run {self.run}"

    def text(self) -> str:
        lines = [self.headline()]
        if self.problems:
            shown = [f"{c} {v} ({t})" for c, v, t in self.problems[:MAX_LISTED]]
            more = len(self.problems) - len(shown)
            lines.append("Not compliant: " + "; ".join(shown) + (f"; and {more} more" if more else ""))
        if self.drift:
            lines.append("Drift since the previous check: "
                         + ", ".join(f"{c.control} {c.before} -> {c.after}" for c in self.drift))
        lines.append(f"Report: {self.report}")
        return "\n".join(lines)


def summarize(run_dir: Path, report_url: str | None = None) -> Summary:
    """The notification for the check whose reports are in ``run_dir`` (history beside it)."""
    doc = json.loads((run_dir / "results.json").read_text())
    target = str(doc.get("target"))
    problems = [(c["id"], c["verdict"], c.get("title", "")) for c in doc.get("controls", [])
                if c.get("verdict") in ("fail", "error")]
    history = [r for r in runs(run_dir.parent / "history.jsonl", target) if kind(r) == CHECK]
    mine = next((i for i, r in enumerate(history) if r.get("dir") == run_dir.name), None)
    # Drift against the previous complete check; an interrupted or polluted run has none.
    prev = next((r for r in reversed(history[:mine]) if incomplete(r) is None), None) if mine else None
    moved = (changes(prev, history[mine]) if prev is not None and mine is not None
             and incomplete(history[mine]) is None else [])
    report = (f"{report_url.rstrip('/')}/{run_dir.name}/summary.html" if report_url
              else str((run_dir / "summary.html").resolve()))
    return Summary(target, run_dir.name, str(doc.get("generated_at", "")), int(doc.get("exit_code", 2)),
                   problems, moved, report, _exit_of(prev) if prev is not None else None,
                   bool(doc.get("partial")))


def _exit_of(line: dict[str, Any]) -> int:
    counts = line.get("summary") or {}
    return 1 if counts.get("fail") else 2 if counts.get("error") else 0


def should_notify(s: Summary, on: str) -> bool:
    """``always``; ``change``: drift or the state moved; ``non-compliant``: that, or not compliant."""
    if on == "always":
        return True
    changed = bool(s.drift) or (s.previous_exit is None and s.exit_code != 0) or (
        s.previous_exit is not None and s.previous_exit != s.exit_code)
    return changed if on == "change" else changed or s.exit_code != 0
