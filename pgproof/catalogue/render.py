"""The catalogue rendered for people: a terminal table, JSON, and docs/controls.md."""

from __future__ import annotations

import json

from pgproof.catalogue import runner
from pgproof.catalogue.build import api_fields
from pgproof.catalogue.frameworks import FRAMEWORK_DEFS
from pgproof.catalogue.model import FIXTURES, PLATFORMS, Platform
from pgproof.catalogue.platforms import ABSENT, LAYERS_ON, applies
from pgproof.catalogue.registry import CATALOGUE, FRAMEWORKS, LAYERS, Control, family_of, judges
from pgproof.target import Thresholds

FRAMEWORK_NAMES = {k: f.name for k, f in FRAMEWORK_DEFS.items()}
KIND_HEADINGS = {"compliance": "Compliance controls (read-only: `pgproof check`, `pytest suites`)",
                 "gameday": "Game-day controls (they change the target: `pgproof gameday`, "
                            "`pytest scenarios -m chaos`)"}


def table(controls: list[Control]) -> str:
    """One line per control: ID, kind, layers, title (what `pgproof controls` prints)."""
    rows = [("ID", "KIND", "LAYERS", "TITLE")]
    rows += [(c.id, c.kind, ",".join(c.layers), c.title) for c in controls]
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join(f"{a:<{w[0]}}  {b:<{w[1]}}  {c:<{w[2]}}  {d}" for a, b, c, d in rows)


def platform_table(controls: list[Control], platform: Platform) -> str:
    """``pgproof controls --platform rds``: per control, checked (layers), inherited or n/a (why)."""
    rows = [("ID", "ON " + platform.upper(), "LAYERS OR WHY")]
    for c in controls:
        a = applies(c, platform)
        rows.append((c.id, a.status, ", ".join(a.layers) if a.status == "checked" else a.why))
    w = [max(len(r[i]) for r in rows) for i in range(2)]
    counts = {s: sum(r[1] == s for r in rows[1:]) for s in ("checked", "inherited", "n/a")}
    tail = f"\n{len(rows) - 1} controls on {platform}: " + ", ".join(f"{v} {k}" for k, v in counts.items())
    return "\n".join(f"{a:<{w[0]}}  {b:<{w[1]}}  {c}" for a, b, c in rows) + tail


def platform_json(controls: list[Control], platform: Platform) -> str:
    return json.dumps({"platform": platform, "controls": [
        {"id": c.id, "status": (a := applies(c, platform)).status, "layers": list(a.layers),
         "why": a.why} for c in controls]}, indent=2)


def _applicability_tables() -> list[str]:
    """docs/controls.md: which layers exist where, and each control on each platform."""
    out = ["## Where each control applies", "",
           "Per platform a control is **checked** (by those of its layers that exist there), "
           "**inherited** (the provider manages it and its documentation says the customer "
           "cannot change it: the verdict is `inherited`, never pass, and the exit code does not "
           "count it as a failure) or **n/a** (the recommendation does not exist there). A "
           "target's platform is `platform = \"rds\"` (`aurora`, `azure`, `self-managed`) in "
           "its file, else derived: an `[aws]` `db_cluster_id` is aurora, a `db_instance_id` "
           "(or a fleet) rds, an `[azure]` server azure, anything else self-managed. "
           "`pgproof controls --platform rds` prints one column. A control none of whose "
           "layers exists on a platform is listed n/a there; a target that configures such a "
           "layer anyway (the lab: a self-managed cluster beside a twin of the AWS API) has it "
           "judged, since only a control's stated exceptions change its verdict.", "",
           "Layers by platform:", "",
           "| Layer | " + " | ".join(PLATFORMS) + " |", "|---|" + "---|" * len(PLATFORMS)]
    for layer, on in LAYERS_ON.items():
        out.append(f"| `{layer}` | " + " | ".join("yes" if p in on else "no" for p in PLATFORMS)
                   + " |")
    out += ["", "Why a layer is absent:", ""]
    out += [f"- `{layer}` on {p}: {_cell(why)}" for (layer, p), why in ABSENT.items()]
    out += ["", "| ID | " + " | ".join(PLATFORMS) + " |", "|---|" + "---|" * len(PLATFORMS)]
    notes: list[str] = []
    for c in CATALOGUE.values():
        cells = []
        for p in PLATFORMS:
            a = applies(c, p)
            if a.status == "checked":
                cells.append(", ".join(a.layers))
            else:
                notes.append(f"{c.id} on {p}: {a.why}")
                cells.append(f"{a.status} [{len(notes)}]")
        out.append(f"| {c.id} | " + " | ".join(_cell(x) for x in cells) + " |")
    out += ["", *[f"{i}. {_cell(n)}" for i, n in enumerate(notes, 1)], ""]
    return out


def as_json(controls: list[Control]) -> str:
    def on(c: Control) -> dict[str, object]:
        return {p: {"status": (a := applies(c, p)).status, "layers": list(a.layers), "why": a.why}
                for p in PLATFORMS}

    return json.dumps({"layers": LAYERS, "controls": [{**c.as_dict(), "platforms": on(c)}
                                                      for c in controls]}, indent=2)


def _threshold(name: str) -> str:
    default = Thresholds.model_fields[name].default
    if isinstance(default, tuple):
        default = ", ".join(default)
    return f"`{name}` (default {default})"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _section(c: Control) -> list[str]:
    lines = [f"### {c.id}: {c.title}", "", c.requirement, "",
             f"- Severity (of a failure): {c.severity}",
             f"- Proven by: {', '.join(f'`{x}`' for x in c.layers)}",
             f"- Thresholds: {', '.join(_threshold(t) for t in c.thresholds) or 'none'}",
             f"- Remediation: {c.remediation}"]
    refs = [f"{FRAMEWORK_NAMES[k]} {', '.join(c.frameworks[k])}"
            for k in FRAMEWORKS if c.frameworks.get(k)]
    lines.append(f"- Framework references: {'; '.join(refs) if refs else 'none'}")
    if c.unmapped_reason:
        lines.append(f"- No HIPAA citation because {c.unmapped_reason}.")
    lines.append("- Platforms: " + "; ".join(f"{p} {applies(c, p).text()}" for p in PLATFORMS))
    return [*lines, ""]


def _framework_tables() -> list[str]:
    """Per framework: every listed requirement and the controls that map to it (or none)."""
    out = ["## Framework mappings", "",
           "`pgproof check --framework hipaa` (or `cis`, `fsbp`) also writes "
           "`framework-<name>.html` and `.json` in the run directory: the run grouped by these "
           "requirements, with every mapped control's verdict and evidence. A requirement is PASS "
           "only when every mapped control was checked and passed, else \"partial: N of M "
           "checked\" naming the rest; game-day controls come from the newest game day of the "
           "target within 30 days before the check. IDs and titles come "
           "from the sources named below (`pgproof/catalogue/frameworks.py`).", ""]
    for key, fw in FRAMEWORK_DEFS.items():
        out += [f"### {fw.name}", "", f"Version: {fw.version}. Source: {fw.source}.", ""]
        recs = fw.recommendations
        out += (["| Requirement | Title | Assessment | Level | Controls |", "|---|---|---|---|---|"]
                if recs else ["| Requirement | Title | Controls |", "|---|---|---|"])
        for rid, title in fw.requirements.items():
            ids = [c.id for c in CATALOGUE.values() if rid in c.frameworks.get(key, ())]
            cited = ', '.join(ids) or 'not covered by pgproof'
            rec = recs.get(rid)
            how = f" {rec.assessment} | {rec.level} |" if rec else ""
            out.append(f"| {rid} | {_cell(title)} |{how} {cited} |")
        out.append("")
    return out


CLOUDS = {"aws": "AWS", "azure": "Azure"}
API_FIELDS_HEADING = "API fields each cloud judge reads"


def _api_field_tables() -> list[str]:
    """Per cloud layer: each judge's ``@reads`` declaration (this imports the judges)."""
    out = [f"## {API_FIELDS_HEADING}", "",
           "Declared beside each judge with `@reads` (`pgproof/catalogue/build.py`); "
           "`tests/test_api_fields.py` fails when a judge reads a field its declaration does not "
           "name. How to read these tables (verdicts, pgproof's own inventory keys, recorded "
           "real responses): [api-fields.md](api-fields.md).", ""]
    for layer, cloud in CLOUDS.items():
        out += [f"### {cloud}", "", "| Control | Calls | Fields read | When a field is absent |",
                "|---|---|---|---|"]
        for cid, judge in judges(layer).items():
            d = api_fields(judge)
            cells = (d.calls, d.fields, d.absent) if d else ("not declared",) * 3
            out.append(f"| {cid} | " + " | ".join(_cell(x) for x in cells) + " |")
        out.append("")
    return out


SELECTING = """\
## Running a subset

- `pgproof check --target staging --control TLS-1,NET-*` runs only the matching controls
  (comma-separated, repeatable, shell-style globs).
- `pytest suites --target staging --control TLS-1` does the same in pytest.
- `pgproof check --profile cis-level1` (or `pytest suites --profile cis-level1`) runs the
  controls citing a CIS PostgreSQL recommendation of that profile level; `cis-level2`
  includes level 1. The CIS PostgreSQL 15, 16 and 17 benchmarks have only Level 1 items, so
  both select the same controls. With `--control` too, the controls in both. An unknown
  profile stops the run with one sentence (exit 2).
- Every control ID is also a pytest marker and a keyword: `pytest suites -m "TLS-1 or NET-2"`
  and `pytest suites -k AUTH-2` select by ID too.

An unknown ID, or a pattern that matches nothing, stops the run with one sentence
(exit 2). A run that leaves controls out (by `--control`, `-k`, `-m` or a subset of
files) is marked `"partial": true` in `results.json` with its `"selected"` list, and
in `reports/history.jsonl`; controls left out show as `not-selected` (never
`not-checked`), the exit code counts only the selected controls, and
`pgproof drift` compares only controls both runs selected. A run that did not finish
its selection (interrupted by a signal, stopped by `-x`/`--maxfail`) is also marked
partial, with `"interrupted"` or `"stopped_early"`, and drift never compares it: its
not-checked controls say nothing about the target.
"""


WAIVERS = """\
## Waivers

A known failure can be accepted for a while, in the target's config:

```toml
[[targets.staging.waivers]]
control = "NET-3"            # or: check = "suites/test_controls.py::test_control[NET-3-aws]"
justification = "legacy batch host until the VPC migration (CHG-1234)"
owner = "dba-team@example.com"
expires = 2027-03-31
```

While the waiver is valid (until the day before `expires`), a failing check it covers is
reported as **waived**, never pass, with its justification and owner in results.json,
summary.html, junit.xml (a `waiver:<class>::<test>` suite property), SARIF (`suppressions[]`), OCSF (status
Suppressed) and ASFF (`Workflow.Status` SUPPRESSED), and the exit code counts it as
compliant. From `expires` on it waives nothing: the failure is a fail again and every report
says "waiver expired on <date>". A waiver only ever covers a failure (an error or
cannot-verify stays what it is); one that matches nothing in a run is a warning line. A
missing justification or owner, a bad date or an unknown control ID stops the run with one
sentence naming the field (exit 2).
"""


def markdown() -> str:
    """docs/controls.md, generated: `pgproof controls --format markdown > docs/controls.md`."""
    out = ["# pgproof controls", "",
           "Generated from `pgproof/catalogue/` (one module per family) by "
           "`pgproof controls --format markdown`; do not edit by hand.", "",
           "Verdicts per control: **pass**, **fail**, **error** (could not check), **skip** "
           "(not applicable, with the reason), **cannot-verify** (the target does not expose "
           "the fact), **not-checked** (selected, but no layer was checked), **not-selected** "
           "(left out of a partial run), **inherited** (the provider's on the target's platform, with "
           "its documented source: never pass, not a failure). A control is only as verified as its least verified "
           "layer. A layer the target does not configure (no `[postgres]` on an AWS-only "
           "runner, no `[aws]` or hosts on a self-managed server) is listed as not checked, "
           "with the reason; the verdict is judged on the layers that were checked.", ""]
    for kind, heading in KIND_HEADINGS.items():
        group = [c for c in CATALOGUE.values() if c.kind == kind]
        out += [f"## {heading}", "", "| ID | Title | Proven by | Thresholds |", "|---|---|---|---|"]
        out += [f"| [{c.id}](#{_anchor(c)}) | {_cell(c.title)} | {', '.join(c.layers)} | "
                f"{', '.join(c.thresholds) or '-'} |" for c in group]
        out.append("")
    out += ["## Layers", "", "| Layer | What it looks at |", "|---|---|"]
    out += [f"| `{k}` | {_cell(v)} |" for k, v in LAYERS.items()]
    out += ["", SELECTING, *WAIVERS.splitlines(), *_applicability_tables(), *_framework_tables(), *_api_field_tables(),
            "## Control details", ""]
    for c in CATALOGUE.values():
        out += _section(c)
    return "\n".join(out).rstrip() + "\n"


def _anchor(c: Control) -> str:
    """GitHub's heading anchor for '### ID: Title'."""
    text = f"{c.id}: {c.title}".lower()
    keep = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return keep.replace(" ", "-")


def show(c: Control, mutations: dict[str, frozenset[str]] | None) -> str:
    """Everything about one control (``pgproof controls show ID``): what it requires, each
    layer's judges (module:function) and the probe fixtures they read, its suite items, the
    lab mutations that break it, its framework citations and its section in docs/controls.md."""
    lines = [f"{c.id}: {c.title}", f"  defined in: {family_of(c.id)}",
             f"  kind: {c.kind}; severity of a failure: {c.severity}",
             f"  requirement: {c.requirement}", f"  layers: {', '.join(c.layers)}",
             f"  thresholds: {', '.join(c.thresholds) or 'none'}",
             f"  remediation: {c.remediation}"]
    if c.checks:
        lines.append("  judges:")
        for k in c.checks:
            probes = [f"{i} (pgproof.pytest_fixtures:{i})" for i in k.inputs if i in FIXTURES]
            each = " per endpoint" if k.per_endpoint else ""
            lines.append(f"    {k.layer}: {runner.where(k.judge)}{each}; reads {', '.join(probes)}")
        lines.append("  suite items:")
        lines += [f"    {runner.SUITE_TEST}[{u.id}]" for u in runner.units([c])]
    else:
        lines.append("  proven by a game day: `pgproof gameday` / `pytest scenarios` "
                     "(docs/gamedays.md)")
    if mutations is None:
        lines.append("  broken by: (the lab is not installed, so its mutations are unknown)")
    else:
        names = sorted(n for n, breaks in mutations.items() if c.id in breaks)
        lines.append(f"  broken by lab mutations: {', '.join(names) or 'none'}")
    refs = [f"{FRAMEWORK_NAMES[k]} {', '.join(c.frameworks[k])}"
            for k in FRAMEWORKS if c.frameworks.get(k)]
    lines.append(f"  frameworks: {'; '.join(refs) or 'none'}")
    if c.unmapped_reason:
        lines.append(f"  no HIPAA citation because {c.unmapped_reason}")
    lines.append("  platforms:")
    lines += [f"    {p}: {applies(c, p).text()}" for p in PLATFORMS]
    lines.append(f"  docs: docs/controls.md#{_anchor(c)}")
    return "\n".join(lines)
