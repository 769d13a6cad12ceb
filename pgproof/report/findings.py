"""What the ecosystem formats (SARIF, OCSF, ASFF) share: one run, its checks, their locations.

Each writer maps the same facts; this module derives them once from the per-control
results so the formats cannot disagree on which check failed, where, or for which target.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from pgproof.catalogue import registry as catalogue
from pgproof.report.results import NOT_CHECKED, NOT_SELECTED, ControlResult
from pgproof.target import (
    DEFAULT_CONFIG,
    LAB_TARGETS,
    Target,
    configured_targets,
    lab_target_file,
)

# A finding that names a file: ``app/db.py:3: DSN with password in source; ...`` (AUTH-4).
FILE_LINE = re.compile(r"^(?P<path>[^\s:]+):(?P<line>\d+): (?P<text>.+)$")
JUDGED = ("pass", "fail", "waived", "error", "cannot-verify", "inherited", "skip")  # not-checked/not-selected say nothing


def tool_version() -> str:
    try:
        return version("pgproof")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0.0.0"


@dataclass(frozen=True)
class FileLocation:
    """A line in the target's configured source tree (``uri`` relative to it)."""

    uri: str
    line: int


@dataclass(frozen=True)
class Check:
    control: str
    nodeid: str
    verdict: str
    message: str
    waiver: dict[str, str] | None = None  # pgproof/waivers.py Decision.as_dict(), if one applied

    @property
    def name(self) -> str:
        return self.nodeid.split("::")[-1]

    def sentences(self) -> list[str]:
        return [s.strip() for s in self.message.splitlines() if s.strip()]

    def file_locations(self) -> list[tuple[FileLocation, str]]:
        """Each finding sentence that names a file line, with the sentence (AUTH-4 today).

        Only for controls proven by a source scan: ``127.0.0.1:5432: ...`` is an endpoint."""
        c = control(self.control)
        if c is None or "source" not in c.layers:
            return []
        out = []
        for s in self.sentences():
            m = FILE_LINE.match(s)
            if m:
                out.append((FileLocation(m["path"], int(m["line"])), s))
        return out


@dataclass(frozen=True)
class CloudResource:
    """The database as its cloud names it: what OCSF ``resources[]``/``cloud`` and ASFF
    ``Resources[]`` say, so a SIEM or Security Hub can join findings to its inventory."""

    provider: str  # "aws" or "azure"
    account: str | None  # AWS account ID or Azure subscription ID, when known
    region: str | None
    uid: str  # the ARN or Azure resource ID (without an AWS account: rds:<region>:<id>)
    type: str  # AwsRdsDbInstance, AwsRdsDbCluster, Microsoft.DBforPostgreSQL/flexibleServers
    name: str


@dataclass(frozen=True)
class Run:
    """One compliance run of one target, as the writers see it."""

    target_name: str
    run_id: str
    generated_at: dt.datetime
    controls: list[ControlResult]
    target: Target | None = None
    version: str = field(default_factory=tool_version)
    account: str | None = None  # the AWS account the target's credentials belong to, if asked
    config_file: Path | None = None  # the file that defines the target (SARIF locations)
    repo_root: Path | None = None  # what SARIF URIs are relative to (git root or --sarif-root)
    # Answers of the methods below, asked once per finding (a fleet: ~5,000 findings).
    _memo: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def judged(self) -> list[ControlResult]:
        return [c for c in self.controls if c.verdict not in (NOT_CHECKED, NOT_SELECTED)]

    def checks(self) -> Iterator[Check]:
        """Every check that looked: a not-checked one (its layer not configured) says nothing."""
        for c in self.judged:
            for ch in c.checks:
                if ch["verdict"] == NOT_CHECKED:
                    continue
                yield Check(c.id, ch["check"], ch["verdict"], ch.get("evidence", ""),
                            ch.get("waiver"))

    def not_checked(self) -> dict[str, dict[str, str]]:
        """Selected control -> {layer: why it was not checked} (only controls with such layers)."""
        if "not_checked" not in self._memo:
            self._memo["not_checked"] = self._not_checked()
        return self._memo["not_checked"]  # type: ignore[no-any-return]

    def _not_checked(self) -> dict[str, dict[str, str]]:
        return {c.id: dict(c.layers_not_checked) for c in self.controls
                if c.verdict != NOT_SELECTED and c.layers_not_checked}

    def endpoint(self) -> str:
        """What a finding is about: the writer (``postgresql://host:port``), or on an AWS-only
        target the DB instance or cluster (``rds:region:id``)."""
        if "endpoint" not in self._memo:
            self._memo["endpoint"] = self._endpoint()
        return self._memo["endpoint"]  # type: ignore[no-any-return]

    def _endpoint(self) -> str:
        t = self.target
        if t is not None and t.postgres is not None:
            w = t.postgres.writer
            return f"postgresql://{w.host}:{w.port}"
        aws = t.aws if t is not None else None
        ident = aws.db_instance_id or aws.db_cluster_id if aws is not None else None
        if aws is not None and ident:
            return f"rds:{aws.region}:{ident}"
        return f"target:{self.target_name}"

    def cloud_resource(self) -> CloudResource | None:
        """The RDS instance/cluster (ARN) or Azure flexible server (resource ID), if configured."""
        if "cloud_resource" not in self._memo:
            self._memo["cloud_resource"] = self._cloud_resource()
        return self._memo["cloud_resource"]  # type: ignore[no-any-return]

    def _cloud_resource(self) -> CloudResource | None:
        t = self.target
        if t is not None and t.aws is not None and not t.aws.is_fleet:  # a fleet is many databases
            aws = t.aws
            kind, ident, typ = (("db", aws.db_instance_id, "AwsRdsDbInstance") if aws.db_instance_id
                                else ("cluster", aws.db_cluster_id, "AwsRdsDbCluster"))
            if ident:
                uid = (f"arn:aws:rds:{aws.region}:{self.account}:{kind}:{ident}" if self.account
                       else f"rds:{aws.region}:{ident}")
                return CloudResource("aws", self.account, aws.region, uid, typ, ident)
        if t is not None and t.azure is not None:
            az = t.azure
            uid = (f"/subscriptions/{az.subscription_id}/resourceGroups/{az.resource_group}"
                   f"/providers/Microsoft.DBforPostgreSQL/flexibleServers/{az.server_name}")
            return CloudResource("azure", az.subscription_id, None, uid,
                                 "Microsoft.DBforPostgreSQL/flexibleServers", az.server_name)
        return None

    def iso(self) -> str:
        if "iso" not in self._memo:
            self._memo["iso"] = self._iso()
        return self._memo["iso"]  # type: ignore[no-any-return]

    def _iso(self) -> str:
        return self.generated_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def control(cid: str) -> catalogue.Control | None:
    return catalogue.CATALOGUE.get(cid)


def framework_refs(cid: str) -> list[str]:
    """``["HIPAA 164.312(e)(1)", "AWS FSBP RDS.3"]``: only the mappings the catalogue holds."""
    c = control(cid)
    names = {"hipaa": "HIPAA", "cis": "CIS", "fsbp": "AWS FSBP"}
    return [f"{names[k]} {ref}" for k in catalogue.FRAMEWORKS
            for ref in (c.frameworks.get(k, ()) if c else ())]


def config_file_of(name: str, config: Path | None = None, lab_file: Path | None = None) -> Path | None:
    """The file target ``name`` was loaded from (as ``load_target`` picks it), or None."""
    config = config or Path(os.environ.get("PGPROOF_CONFIG", DEFAULT_CONFIG))
    try:
        if config.is_file() and name in configured_targets(config):
            return config.resolve()
    except Exception:  # noqa: BLE001 - load_target already said what is wrong with the file
        return None
    if name == "lab-azure":
        f = lab_target_file(lab_file).with_name("target-azure.toml")
    elif name in LAB_TARGETS:
        f = lab_target_file(lab_file).with_name(LAB_TARGETS[name])
    else:
        return None
    return f.resolve() if f.is_file() else None


def repo_root(start: Path | None = None) -> Path | None:
    """The git work tree holding ``start`` (default: the working directory), if any."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / ".git").exists():
            return d
    return None
