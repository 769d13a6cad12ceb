"""pytest hooks for what CI shows: control IDs in junit.xml and report.html, readable skips.

Every check with ``@pytest.mark.control`` gets one ``control`` user property per ID at
collection; pytest writes it on the testcase, and report/junit.py then moves it to the
suite (``junit_family = xunit2``, valid against Jenkins' xUnit schema) with the IDs in
the test names, and pytest-html can show a Controls column. pytest-html's hooks are optional: without the plugin they are never called.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("pgproof").addoption(
        "--sarif-root", type=Path, default=None,
        help="directory SARIF result paths are relative to (default: the git root of the "
             "working directory); the config file must be under it")


def pytest_itemcollected(item: pytest.Item) -> None:
    for marker in item.iter_markers("control"):
        for cid in marker.args:
            if ("control", cid) not in item.user_properties:
                item.user_properties.append(("control", cid))


def controls_of(report: pytest.TestReport) -> list[str]:
    return [str(v) for k, v in report.user_properties if k == "control"]


def skip_sentence(report: pytest.TestReport) -> str | None:
    """``('suites/x.py', 12, 'Skipped: no [aws] section')`` -> ``No [aws] section (suites/x.py:12).``"""
    lr = report.longrepr
    if not (report.skipped and isinstance(lr, tuple) and len(lr) == 3):
        return None
    path, line, reason = lr
    text = str(reason).removeprefix("Skipped: ").strip().rstrip(".")
    text = text[:1].upper() + text[1:]
    where = Path(str(path))
    if where.is_absolute() and where.is_relative_to(Path.cwd()):
        where = where.relative_to(Path.cwd())
    return f"{text} ({where}:{line})." if line is not None else f"{text}."


class HtmlHooks:
    """pytest-html: a title naming target and time, a Controls column, skips as sentences."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_report_title(self, report: Any) -> None:
        target = self.config.getoption("target", default=None) or "unknown target"
        when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        report.title = f"pgproof: {target}, {when}"

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        cells.insert(2, '<th class="sortable" data-column-type="controls">Controls</th>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        cells.insert(2, f'<td class="col-controls">{html.escape(", ".join(controls_of(report)))}</td>')

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_table_html(self, report: pytest.TestReport, data: list[str]) -> None:
        sentence = skip_sentence(report)
        if sentence is not None and data:
            data[0] = html.escape(sentence) + "\n"


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("html"):
        config.pluginmanager.register(HtmlHooks(config), "pgproof-html")


@pytest.hookimpl(tryfirst=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """junit.xml is complete by now (written at session finish): name the controls in it."""
    xmlpath = getattr(config.option, "xmlpath", None)
    owns = not hasattr(config, "workerinput") or getattr(config.option, "pgproof_worker_junit", False)
    if xmlpath and owns and Path(xmlpath).is_file():
        from pgproof.report.junit import tag_names

        tag_names(Path(xmlpath), config.getoption("target", default=None) or None)
