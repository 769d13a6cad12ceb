"""``pytest suites --target a,b``: many targets in one run, one target per pytest-xdist worker.

Why xdist and ``--dist each``: every worker runs the whole suite, so worker ``gwN``
simply becomes target N and writes that target's report (results.json, SARIF,
junit.xml, ...) as a single-target run would. The controller only checks the
input, then writes the combined index of the runs its workers report back.

PYTEST_DONT_REWRITE: product code that pgproof.pytest_plugin imports before pytest could rewrite
it (pytest otherwise warns "Module already imported so cannot be rewritten" on every run).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Literal

import pytest

from pgproof.catalogue.profiles import raised_thresholds
from pgproof.errors import UserError
from pgproof.target import Target, load_target

Role = Literal["single", "controller", "worker"]
_RUNS = pytest.StashKey[list[tuple[str, str]]]()
LAST_INDEX: list[Path] = []  # the combined index this process wrote last (pgproof check reads it)


def names(config: pytest.Config) -> list[str]:
    return [t.strip() for t in str(config.getoption("target")).split(",") if t.strip()]


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config) -> Generator[None, object, object]:
    """Before xdist reads its options: ``--target a,b`` means ``-n 2 --dist each``.

    A wrapper, so it runs first however the plugins were registered (by this repository's
    conftest, after xdist; or by entry point, before it).
    """
    _multi_target_options(config)
    return (yield)


def _multi_target_options(config: pytest.Config) -> None:
    targets = names(config)
    if len(targets) < 2 or hasattr(config, "workerinput"):
        return
    if len(set(targets)) != len(targets):
        raise pytest.UsageError(f"--target {','.join(targets)}: a target is named twice")
    if not config.pluginmanager.hasplugin("xdist"):
        raise pytest.UsageError("--target with several targets needs pytest-xdist (one target "
                                "per worker); install it or name one target")
    n = getattr(config.option, "numprocesses", None)
    if n not in (None, 0, len(targets)) or getattr(config.option, "dist", "no") not in ("no", "each"):
        raise pytest.UsageError(f"--target names {len(targets)} targets: run them with "
                                f"-n {len(targets)} --dist each (or leave both out)")
    config.option.numprocesses = len(targets)
    config.option.dist = "each"


def configure(config: pytest.Config) -> Role:
    """Pick this process's role; a worker's ``--target`` becomes its own one target."""
    targets = names(config)
    if len(targets) < 2:
        return "single"
    if hasattr(config, "workerinput"):
        worker = int(config.workerinput["workerid"].removeprefix("gw"))
        config.option.target = targets[worker]
        return "worker"
    for t in targets:  # bad input (any target) stops the run before a worker starts
        check_input(config, t)
    config.stash[_RUNS] = []
    config.pluginmanager.register(_Controller(config), "pgproof-multi-target")
    return "controller"


def worker_junit(config: pytest.Config, path: Path) -> None:
    """Register pytest's own junit writer on this worker, for its target's report directory."""
    from _pytest.junitxml import LogXML, xml_key

    config.option.xmlpath = str(path)
    config.option.pgproof_worker_junit = True
    config.stash[xml_key] = LogXML(str(path), config.option.junitprefix,
                                   config.getini("junit_suite_name"), config.getini("junit_logging"),
                                   config.getini("junit_duration_report"),
                                   config.getini("junit_family"),
                                   config.getini("junit_log_passing_tests"))
    config.pluginmanager.register(config.stash[xml_key])


class _Controller:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_testnodedown(self, node: object, error: object) -> None:
        out = getattr(node, "workeroutput", {}) or {}
        if out.get("pgproof_run_dir"):
            self.config.stash[_RUNS].append((out["pgproof_target"], out["pgproof_run_dir"]))

    def pytest_terminal_summary(self, terminalreporter: object) -> None:
        runs = self.config.stash[_RUNS]
        if not runs:
            return
        from pgproof.report.multi import write

        path, lines = write(Path(self.config.getoption("reports")).resolve(), runs)
        LAST_INDEX.append(path)
        tr = terminalreporter
        tr.section("pgproof: targets")  # type: ignore[attr-defined]
        for line in lines:
            tr.write_line(line)  # type: ignore[attr-defined]
        tr.write_line(f"combined index: {path}")  # type: ignore[attr-defined]


def check_input(config: pytest.Config, name: str) -> Target:
    """Load and pre-flight target ``name``; bad input exits the run (2) with its one sentence."""
    from pgproof import preflight

    try:
        target = load_target(name, config.getoption("pgproof_config"))
        preflight.check(target)
    except UserError as exc:
        pytest.exit(f"pgproof: {exc}", returncode=2)
    return target


TARGET_KEY = pytest.StashKey[Target]()


def get_target(config: pytest.Config) -> Target:
    """Load and validate the target once; bad input (config, port, password) stops the run."""
    if TARGET_KEY not in config.stash:
        target = check_input(config, config.getoption("target"))
        profile = config.getoption("profile", None)
        if profile is not None:  # a profile may raise thresholds (CIS 17 6.9: TLS 1.3)
            th = target.thresholds
            raised = raised_thresholds(profile, {"tls_min_version": th.tls_min_version})
            if raised:
                target = target.model_copy(update={"thresholds": th.model_copy(update=raised)})
        config.stash[TARGET_KEY] = target
    return config.stash[TARGET_KEY]
