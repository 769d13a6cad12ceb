"""Shared HTML pieces for pgproof's self-contained pages (game days, control summaries)."""

from __future__ import annotations

import html

CSS = """body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#24292f}
h1{font-size:1.6em}h2{margin-top:1.6em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
table{border-collapse:collapse;width:100%;margin:.5em 0}th,td{border:1px solid #d0d7de;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f6f8fa}td:first-child{white-space:nowrap}
.warn{border:3px solid #cf222e;background:#ffebe9;padding:1em;margin:1em 0;font-weight:600}
.v-PASS{color:#1a7f37;font-weight:700}.v-FAIL{color:#cf222e;font-weight:700}
.v-ERROR{color:#9a6700;font-weight:700}.v-SKIP,.v-NOT-CHECKED{color:#57606a}
.v-CANNOT-VERIFY{color:#8250df;font-weight:700}.v-WAIVED{color:#bc4c00;font-weight:700}img{max-width:100%}
td pre{white-space:pre-wrap;margin:0;font:12px/1.4 ui-monospace,monospace}"""

VERDICT_CLASSES = ("PASS", "FAIL", "ERROR", "SKIP", "CANNOT-VERIFY", "NOT-CHECKED", "WAIVED")


def cell(text: str) -> str:
    esc = html.escape(text)
    cls = f' class="v-{esc}"' if text in VERDICT_CLASSES else ""
    return f"<td{cls}>{esc}</td>"


def table(heads: list[str], rows: list[list[str]]) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in heads) + "</tr>" if any(heads) else ""
    body = "".join("<tr>" + "".join(cell(c) for c in r) + "</tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def page(title: str, body: str) -> str:
    t = html.escape(title)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{t}</title>"
            f"<style>{CSS}</style></head><body><h1>{t}</h1>{body}</body></html>\n")
