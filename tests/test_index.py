"""reports/index.html and the run pages' nav bars, built by the real hooks, viewed in Chromium.

Runs are written by the code a real run uses: results/summary writers plus
``index.after_run`` for checks (what the pytest plugin calls), and the game-day
runner's own ``_finish`` for a game day. Chromium (Debian's ``chromium``, headless)
loads the pages from a local http.server; the test asserts what it rendered and
what it fetched, not only what the files say.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlparse
from xml.etree import ElementTree

import pytest

from pgproof.catalogue.registry import of_kind
from pgproof.gameday import run as gd_run
from pgproof.gameday.journal import Journal
from pgproof.report import index, index_chart, summary
from pgproof.report import results as res
from pgproof.report.history import all_runs, drift
from pgproof.verdict import Verdict as V

IDS = of_kind("compliance")
HEALTHY = {c: "pass" for c in IDS}


def _check(base: Path, verdicts: dict[str, str], target: str = "staging",
           selected: list[str] | None = None) -> Path:
    d = res.run_dir(base, target)
    controls = res.aggregate([res.CheckResult(f"suites/t.py::{c}", [c], V(v), f"saw {v}")
                              for c, v in verdicts.items()], IDS, selected)
    res.write(d, target, controls, {})
    summary.write(d, target, d.name, controls)
    res.point_latest(base, d)
    index.after_run(d, "check")
    time.sleep(1.05)  # run dirs are stamped to the second
    return d


def _gameday(base: Path, verdict: str = "fail") -> Path:
    j = Journal("kp-test", "staging", "kill-primary", "SIGKILL the leader", "lab", {"users": 4})
    j.verdicts = [{"id": "HA-2", "title": "RTO", "verdict": "pass", "evidence": "RTO 19.8 s"},
                  {"id": "HA-3", "title": "No lost writes", "verdict": verdict, "evidence": "1 lost"}]
    j.verdict = verdict
    out = res.run_dir(base, "staging", "kill-primary")
    gd_run._finish(j, out)  # what the runner calls when a game day ends
    time.sleep(1.05)
    return out


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Built once (each run regenerates the index: seconds under load); tests that change it copy it."""
    base = tmp_path_factory.mktemp("index") / "reports"
    runs = {"c1": _check(base, HEALTHY)}
    runs["c2"] = _check(base, {**HEALTHY, "TLS-1": "fail", "BAK-2": "cannot-verify"})
    runs["gd"] = _gameday(base)
    runs["c3"] = _check(base, {"TLS-1": "pass", "NET-1": "pass"}, selected=["TLS-1", "NET-1"])
    runs["other"] = _check(base, HEALTHY, target="eu-other")
    return {"base": base, **runs}


@pytest.mark.slow
def test_game_days_join_the_history_but_drift_compares_checks_only(reports: dict[str, Any]) -> None:
    base = reports["base"]
    lines = all_runs(base / "history.jsonl")
    assert [(r.get("kind", "check"), r["target"]) for r in lines] == [
        ("check", "staging"), ("check", "staging"), ("gameday", "staging"), ("check", "staging"),
        ("check", "eu-other")]
    gd = lines[2]
    assert gd["scenario"] == "kill-primary" and gd["verdict"] == "fail" and gd["dir"] == reports["gd"].name
    assert gd["verdicts"] == {"HA-2": "pass", "HA-3": "fail"}
    prev, last, changes = drift(base / "history.jsonl", "staging")
    assert (prev["dir"], last["dir"]) == (reports["c2"].name, reports["c3"].name)  # the game day skipped
    assert [(c.control, c.before, c.after) for c in changes] == [("TLS-1", "fail", "pass")]
    assert (base / "latest-check").resolve() == reports["other"].resolve()
    assert (base / "latest-gameday").resolve() == reports["gd"].resolve()
    assert (base / "latest").resolve() == reports["other"].resolve()  # newest of any kind


def test_timeline_marks_drift_on_checks_only(reports: dict[str, Any]) -> None:
    staging = [r for r in all_runs(reports["base"] / "history.jsonl") if r["target"] == "staging"]
    assert index_chart.drifted(staging) == {(1, "TLS-1"), (1, "BAK-2"), (3, "TLS-1")}
    svg = ElementTree.parse(reports["base"] / "index-timeline-staging.svg").getroot()
    ns = "{http://www.w3.org/2000/svg}"
    labels = [t.text for t in svg.iter(f"{ns}text") if t.get("text-anchor") == "end"
              and t.get("transform") is None]
    assert set(labels) == set(IDS) | {"HA-2", "HA-3"}  # one row per control judged
    cells = [(r, r.find(f"{ns}title")) for r in svg.iter(f"{ns}rect")]
    framed = sorted(str(t.text).split(":")[0] for r, t in cells
                    if t is not None and r.get("stroke") == "#000000")
    assert framed == ["BAK-2", "TLS-1", "TLS-1"]  # the drifted cells, and only those, framed
    assert int(svg.get("width")) >= 600 and int(svg.get("height")) >= 22 * (len(IDS) + 2)


def test_pages_link_index_and_neighbours(reports: dict[str, Any]) -> None:
    base = reports["base"]
    c2 = (reports["c2"] / "summary.html").read_text()
    assert "href='../index.html'" in c2
    assert f"href='../{reports['c1'].name}/summary.html'" in c2  # before: a check
    assert f"href='../{reports['gd'].name}/report.html'" in c2  # after: the game day
    gd = (reports["gd"] / "report.html").read_text()
    assert f"href='../{reports['c3'].name}/summary.html'" in gd and "<h1>Game day" in gd
    assert "next run of staging: none" in (reports["c3"] / "summary.html").read_text()  # newest of staging
    assert c2.count(index.NAV_START) == 1  # rewritten in place, never stacked
    page = (base / "index.html").read_text()
    assert page.count("<tr class='drift'") == 2 and "TLS-1 pass-&gt;fail" in page


def _chromium() -> str:
    path = shutil.which("chromium")
    assert path, "Debian's chromium is missing: `make setup` installs it"
    return path


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.imgs: list[dict[str, str | None]] = []
        self.rows: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(str(a["href"]))
        if tag == "img":
            self.imgs.append(a)
        if tag == "tr" and a.get("data-dir"):
            self.rows.append(str(a["data-dir"]))


def _serve(base: Path) -> tuple[ThreadingHTTPServer, list[tuple[str, int]]]:
    served: list[tuple[str, int]] = []

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(base), **kw)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            served.append((self.path, int(code)))

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, served


def _dump(url: str, profile: Path, *extra: str) -> str:
    profile.mkdir()
    r = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", f"--user-data-dir={profile}", *extra, url],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.mark.slow
def test_chromium_renders_index_and_run_pages(reports: dict[str, Any], tmp_path: Path) -> None:
    base = reports["base"]
    srv, served = _serve(base)
    root = f"http://127.0.0.1:{srv.server_address[1]}/"
    try:
        dom = _dump(root + "index.html", tmp_path / "p1", "--dump-dom")
        p = _Links()
        p.feed(dom)
        history = [r["dir"] for r in all_runs(base / "history.jsonl")]
        assert sorted(p.rows) == sorted(history) and len(p.rows) == 5  # every run has its row
        assert "game day: kill-primary" in dom and "yes (2 selected)" in dom
        timelines = [i for i in p.imgs if "timeline" in str(i.get("class"))]
        assert len(timelines) == 2
        for img in timelines:  # set by the page's onload: the browser decoded a non-empty image
            w, h = (int(x) for x in str(img.get("data-loaded")).split("x"))
            assert w > 500 and h > 300, img
        pages = {root + "index.html": p.links}
        for name in (f"{reports['c2'].name}/summary.html", f"{reports['gd'].name}/report.html"):
            sub = _Links()
            sub.feed(_dump(root + name, tmp_path / name.split("/")[0], "--dump-dom"))
            assert any(link.endswith("index.html") for link in sub.links), name
            pages[root + name] = sub.links
        for page, links in pages.items():  # every link resolves to an existing file
            for link in links:
                rel = urlparse(urljoin(page, link)).path.lstrip("/")
                assert (base / rel).is_file(), f"{page} links {link}, which does not exist"
        fetched = {path: code for path, code in served}
        assert fetched.get("/index-timeline-staging.svg") == 200, fetched
        assert all(code < 400 for path, code in served if path != "/favicon.ico"), served
        shot = tmp_path / "index.png"
        _dump(root + "index.html", tmp_path / "p9", f"--screenshot={shot}", "--window-size=1280,1800")
        assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    finally:
        srv.shutdown()
        srv.server_close()


def test_index_survives_a_removed_run_and_a_torn_history_line(reports: dict[str, Any],
                                                              tmp_path: Path) -> None:
    base = tmp_path / "reports"
    shutil.copytree(reports["base"], base, symlinks=True)
    reports = {k: base / v.name if isinstance(v, Path) else v for k, v in reports.items()}
    shutil.rmtree(reports["c1"])
    with (base / "history.jsonl").open("a") as fh:
        fh.write('{"at": "2026-12-01T00:00:00+00:00", "target": "stag')  # a run killed mid-write
    index.regenerate(base)
    page = (base / "index.html").read_text()
    assert "report removed" in page and f"href='{reports['c1'].name}/" not in page
    assert json.loads((reports["c2"] / "results.json").read_text())["target"] == "staging"
    assert "(report removed)" in (reports["c2"] / "summary.html").read_text()


def test_cannot_verify_is_not_plain_compliant(tmp_path: Path) -> None:
    """A run whose only blemish is cannot-verify says so in the verdict column, and the page
    says what cannot-verify means (issue 18: five cannot-verify were labelled "compliant")."""
    base = tmp_path / "reports"
    d = _check(base, {**HEALTHY, "BAK-2": "cannot-verify", "TLS-4": "cannot-verify"})
    text = (base / index.INDEX).read_text()
    row = next(line for line in text.split("<tr") if d.name in line)
    assert ">compliant (2 cannot-verify)</td>" in row
    assert "v-CANNOT-VERIFY" in row
    assert "does not expose the fact" in text and "neither confirm nor refute" in text
