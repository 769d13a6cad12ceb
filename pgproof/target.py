"""Target: what pgproof tests, loaded from ``pgproof.toml`` and validated before any test runs.

A target names the database endpoints, the AWS ids, the hosts and the chaos
policy of one environment. Each of ``[postgres]``, ``[aws]`` and the host lists is
optional (a CI runner may reach the AWS API but not a database in private
subnets; a self-managed server has no AWS account), but at least one must be
there: ``pgproof.layers`` says what an absent one leaves not checked. Thresholds default to the values in docs/controls.md and can be overridden
per target. Passwords never live here: they come from the environment
(``password_env``), a libpq passfile, or Secrets Manager.
"""

from __future__ import annotations

import errno
import math
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pgproof import plugins
from pgproof.catalogue import platforms
from pgproof.catalogue.model import Platform
from pgproof.errors import UserError
from pgproof.libpq import resolve_postgres
from pgproof.notify.config import Notify
from pgproof.target_azure import Azure
from pgproof.target_backup import Backup
from pgproof.target_fields import Strict as _Strict
from pgproof.target_fields import is_ca_file as _is_ca_file
from pgproof.target_fields import relative_to_config as _relative_to_config
from pgproof.target_timeouts import Timeouts
from pgproof.tunnel import dial, parse_via
from pgproof.waivers import Waiver

DEFAULT_CONFIG = Path("pgproof.toml")
LAB_TARGET_FILE = Path(".pgproof/lab/target.toml")
# Targets `pgproof lab up` writes, by name -> file beside the lab's target.toml.
LAB_TARGETS = {"lab": "target.toml", "lab-rds": "target-lab-rds.toml",
               "lab-aurora": "target-lab-aurora.toml",  # the AWS twin's Aurora cluster shape
               "lab-ssh": "target-lab-ssh.toml"}  # lab-ssh: `lab up --supervisor supervisord`
# Words that mark an environment as production (case-insensitive, as whole words of a name/tag).
PRODUCTION_WORDS = re.compile(r"^(prod|prd|production|live)\d*$")
# A target name becomes a directory and file names under reports/: ASCII only (two names
# must never map to one file), no path separator, no leading dot or dash, bounded length.
TARGET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
TARGET_NAME_RULE = ("1-64 ASCII letters, digits, '.', '_' or '-', starting with a letter or "
                    "digit (it names directories and files under reports/)")


class ConfigError(UserError):
    """A target configuration problem, phrased for the person who wrote the file."""


class Thresholds(_Strict):
    """Defaults are the thresholds docs/controls.md lists per control."""

    tls_min_version: Literal["TLSv1.2", "TLSv1.3"] = "TLSv1.2"
    cert_min_days: int = Field(30, ge=0)
    tls_require_forward_secrecy: bool = True  # TLS-5: static-RSA key exchange accepted -> fail
    backup_retention_min_days: int = Field(7, ge=0)
    backup_retention_max_days: int = Field(30, ge=1)
    rpo_minutes: float = Field(5, gt=0)
    restore_budget_s: float = Field(900, gt=0)  # BAK-6: restore request to a verified instance
    archive_min_days: int = Field(90, ge=0)
    secret_rotation_max_days: int = Field(90, ge=1)
    min_password_length: int = Field(16, ge=1)
    replica_lag_max_s: float = Field(30, gt=0)
    pool_size: int = Field(20, ge=1)
    rto_budget_s: float = Field(60, gt=0)
    load_recovery_ratio: float = Field(0.9, gt=0, le=1)
    # A recovery (HA-4 throughput, CH-LAT p95, HA-6 steady state) counts once it has held this
    # many consecutive seconds, and is given up this long after it could start (writes back, undo).
    recovery_sustain_s: int = Field(5, ge=1, le=60)
    recovery_budget_s: float = Field(60, gt=0)
    latency_error_budget: float = Field(0.01, ge=0, le=1)  # CH-LAT: failed share of requests
    p95_recovery_factor: float = Field(1.5, ge=1)  # CH-LAT: p95 after <= factor x baseline + 10 ms
    cpu_alarm_max_pct: float = Field(80, gt=0, le=100)
    memory_alarm_max_pct: float = Field(85, gt=0, le=100)
    storage_alarm_max_pct: float = Field(80, gt=0, le=100)
    connections_alarm_max_pct: float = Field(90, gt=0, le=100)
    alarm_delivery_budget_s: float = Field(60, gt=0)  # MON-4: set_alarm_state -> notification received
    deprecated_ca_ids: tuple[str, ...] = ("rds-ca-2015", "rds-ca-2019")
    engine_major: int = 15
    forbidden_admin_names: tuple[str, ...] = ("postgres", "admin", "root", "rdsadmin")
    # PRIV-1 (CIS 4.3): login roles allowed administrative attributes or the provider's admin
    # group (rds_superuser, azure_pg_admin), e.g. the master user; the bootstrap superuser always is.
    admin_roles: tuple[str, ...] = ()
    full_backup_max_age_days: float = Field(7, gt=0)  # BAK-2: newest full base backup


class Endpoint(_Strict):
    """A TCP endpoint a client may use (writer, reader, pooler)."""

    host: str
    port: int = Field(ge=1, le=65535)
    dbname: str = "postgres"
    user: str | None = None


class Postgres(_Strict):
    """How to log in. The password comes from ``password_env`` or ``passfile``, never the file."""

    writer: Endpoint
    readers: list[Endpoint] = []
    pooler: Endpoint | None = None
    pooler_admin: Endpoint | None = None
    dbname: str = "postgres"
    user: str
    password_env: str = "PGPASSWORD"
    passfile: Path | None = None
    # A CA file, or "system" (the system trust store, as libpq 16+ has it). Unset: PGSSLROOTCERT.
    sslrootcert: Path | Literal["system"] | None = None
    sslmode: Literal["require", "verify-ca", "verify-full"] | None = None  # unset: PGSSLMODE
    service: str | None = None  # a libpq service (pg_service.conf); unset: PGSERVICE
    # Kept for existing configs; timeouts.connect_s is the one to set (both set: they must agree).
    connect_timeout: float | None = Field(None, gt=0, le=86_400, allow_inf_nan=False)
    app_role: str | None = None
    nodes: list[Endpoint] = []
    via: str | None = None  # ssh://user@bastion:port: every live probe goes through it (tunnel.py)

    _paths = field_validator("passfile", mode="before")(_relative_to_config)

    @field_validator("sslrootcert", mode="before")
    @classmethod
    def _ca_path(cls, value: Any, info: ValidationInfo) -> Any:
        return value if value == "system" else _relative_to_config(value, info)

    @model_validator(mode="before")
    @classmethod
    def _libpq_conventions(cls, raw: Any) -> Any:
        """The service file's and PG* variables' settings, as libpq would apply them."""
        return resolve_postgres(raw) if isinstance(raw, dict) else raw

    @field_validator("via", mode="after")
    @classmethod
    def _via_is_ssh(cls, value: str | None) -> str | None:
        if value is not None:
            parse_via(value)
        return value

    @property
    def ca_file(self) -> Path | None:
        """The CA bundle the TLS probe trusts: libpq's; None is the system trust store."""
        return None if self.sslrootcert in (None, "system") else Path(self.sslrootcert)

    @field_validator("sslrootcert", mode="after")
    @classmethod
    def _ca_is_certificate(cls, value: Path | str | None) -> Path | str | None:
        why = None if value is None or value == "system" else _is_ca_file(Path(value))
        if why:
            raise ValueError(why)
        return value


class Aws(_Strict):
    region: str
    endpoint_url: str | None = None
    profile: str | None = None
    credentials_file: Path | None = None  # a shared-credentials file (e.g. the lab's dummy keys)
    db_instance_id: str | None = None
    db_cluster_id: str | None = None
    db_proxy_name: str | None = None
    backup_bucket: str | None = None
    secret_id: str | None = None
    backup_plan_id: str | None = None
    app_security_group_ids: list[str] = []
    log_group_prefix: str | None = None
    # A fleet: db_instance_id = "*" (or a glob), db_tags, and regions select many databases.
    regions: list[str] = []  # where to look (default: [region])
    db_tags: dict[str, str] = {}  # every tag must match (values may be globs)

    _paths = field_validator("credentials_file", mode="before")(_relative_to_config)

    @property
    def is_fleet(self) -> bool:
        """True when the section selects databases rather than naming one."""
        glob = any(ch in (self.db_instance_id or "") for ch in "*?[")
        return glob or bool(self.db_tags) or len(self.regions) > 1

    @model_validator(mode="after")
    def _fleet_names_no_single_resource(self) -> Aws:
        if not self.is_fleet:
            return self
        one = [f for f in ("db_cluster_id", "db_proxy_name", "secret_id", "log_group_prefix")
               if getattr(self, f) is not None]
        if one:
            raise ValueError(f"{one[0]} names one database's resource, but this [aws] section "
                             "selects a fleet (db_instance_id glob, db_tags or regions); drop it")
        return self


class Chaos(_Strict):
    allowed: bool = False
    driver: Literal["lab", "ssh", "aws", "azure"] = "lab"
    production: bool = False
    load_users: int = Field(10, ge=1)
    # Tasks per second per load user (Locust's constant_throughput); 0: each user as fast as it
    # can. Paced load measures the failover, not the host's spare CPU: a saturated baseline on a
    # small or shared host is noise that HA-4's recovery ratio then judges.
    load_rate: float = Field(0, ge=0)
    baseline_s: float = Field(5, gt=0)  # load before the fault: the pre-fault median
    duration_s: float = Field(8, gt=0)  # how long a non-failover fault (latency) stays on
    snapshot_before: bool = False  # a snapshot/backup before the fault; no snapshot, no game day
    app_cidrs: list[str] = []  # the app tier by CIDR: aws security-group blackhole, azure NSG deny rule


class Lab(_Strict):
    """Only for the embedded lab: where its state lives, so faults can reach its processes."""

    state_dir: Path

    _paths = field_validator("state_dir", mode="before")(_relative_to_config)


class Target(_Strict):
    name: str
    # Where the database runs (rds, aurora, azure, self-managed); unset: derived from what the
    # target configures (``runs_on``). Decides which controls are inherited or n/a there.
    platform: Platform | None = None
    environment: str | None = None  # e.g. "staging", "prd": the production guard reads it
    tags: dict[str, str] = {}
    postgres: Postgres | None = None  # absent: an AWS-only (or hosts-only) vantage point
    health_url: str | None = None
    hosts: list[str] = []  # database nodes (self-managed), as testinfra URLs
    app_hosts: list[str] = []  # NET-5: vantage points that must reach the writer
    outside_hosts: list[str] = []  # NET-5: vantage points that must not (netns://NAME too)
    source_tree: Path | None = None
    aws: Aws | None = None
    azure: Azure | None = None
    chaos: Chaos = Chaos()
    thresholds: Thresholds = Thresholds()
    lab: Lab | None = None
    notify: Notify | None = None  # pgproof check --notify: where and when to tell people
    waivers: list[Waiver] = []  # accepted failures: pgproof/waivers.py
    backup: Backup | None = None  # the backup tool's own view (self-managed backup layer)
    timeouts: Timeouts = Timeouts()  # every probe's time limit, and the whole run's

    _paths = field_validator("source_tree", mode="before")(_relative_to_config)

    @model_validator(mode="after")
    def _some_layer(self) -> Target:
        if self.postgres is None and self.aws is None and not (
                self.hosts or self.app_hosts or self.outside_hosts):
            raise ValueError("configures nothing to check: add a [postgres] section (live SQL "
                             "and TLS), an [aws] section (the AWS API), or hosts")
        return self

    @model_validator(mode="after")
    def _one_connect_limit(self) -> Target:
        old = self.postgres.connect_timeout if self.postgres else None
        if (old is not None and "connect_s" in self.timeouts.model_fields_set
                and old != self.timeouts.connect_s):
            raise ValueError(f"postgres.connect_timeout ({old:g}) and timeouts.connect_s "
                             f"({self.timeouts.connect_s:g}) disagree; set only timeouts.connect_s")
        return self

    @property
    def runs_on(self) -> Platform:
        """The stated platform, else derived: an AWS cluster -> aurora, an AWS instance (or
        fleet) -> rds, an Azure server -> azure, no cloud database -> self-managed."""
        aws = self.aws
        return platforms.derive(self.platform, db_cluster_id=aws.db_cluster_id if aws else None,
                                db_instance_id=aws.db_instance_id if aws else None,
                                aws_fleet=bool(aws and aws.is_fleet), azure=self.azure is not None)

    @property
    def connect_limit_s(self) -> float:
        """Seconds a SQL connect may take: ``timeouts.connect_s`` (or the older
        ``postgres.connect_timeout``)."""
        old = self.postgres.connect_timeout if self.postgres else None
        return self.timeouts.connect_s if old is None else old

    def require_postgres(self, purpose: str) -> Postgres:
        """The ``[postgres]`` section, or one sentence saying ``purpose`` needs it (bad input)."""
        if self.postgres is None:
            raise ConfigError(f"target {self.name!r} has no [postgres] section, and {purpose} "
                              "needs a database endpoint")
        return self.postgres

    @property
    def via(self) -> str | None:
        """The bastion every live probe goes through (``postgres.via``), if any."""
        return self.postgres.via if self.postgres else None

    def live_endpoints(self) -> list[tuple[str, int]]:
        """Every (host, port) a compliance run opens a connection to (what a tunnel forwards)."""
        pg = self.require_postgres("a compliance run")
        eps = [pg.writer, *pg.readers, *(e for e in (pg.pooler, pg.pooler_admin) if e), *pg.nodes]
        out = [(e.host, e.port) for e in eps]
        if self.health_url:
            u = urlsplit(self.health_url)
            if u.hostname:
                out.append((u.hostname, u.port or (443 if u.scheme == "https" else 80)))
        return list(dict.fromkeys(out))

    @property
    def production_hint(self) -> str | None:
        """What marks this target as production (name, environment, a tag, chaos.production)."""
        if self.chaos.production:
            return "chaos.production = true"
        fields = [("name", self.name), ("environment", self.environment or ""),
                  *((f"tags.{k}", v) for k, v in self.tags.items())]
        for where, text in fields:
            words = re.split(r"[^a-z0-9]+", text.lower())
            hit = next((w for w in words if PRODUCTION_WORDS.match(w)), None)
            if hit:
                return f"{where} {text!r} says {hit!r}"
        return None

    @property
    def looks_like_production(self) -> bool:
        return self.production_hint is not None

    def password(self) -> str | None:
        """The password from the environment; ``None`` lets libpq use the passfile."""
        return None if self.postgres is None else os.environ.get(self.postgres.password_env)

    def conninfo(self, endpoint: Endpoint | None = None, **overrides: Any) -> dict[str, Any]:
        """libpq keyword arguments for ``endpoint`` (default: the writer)."""
        pg = self.require_postgres("a database connection")
        ep = endpoint or pg.writer
        kw: dict[str, Any] = {
            "host": ep.host,
            "port": ep.port,
            "dbname": ep.dbname if endpoint else pg.dbname,
            "user": ep.user or pg.user,
            "connect_timeout": max(1, math.ceil(self.connect_limit_s)),
            **self.timeouts.libpq(),  # an established session that goes silent is noticed
            "sslmode": pg.sslmode or ("verify-full" if pg.sslrootcert else "require"),
            "application_name": "pgproof",
        }
        if pg.service:  # libpq reads the rest of the service (e.g. its password) itself
            kw["service"] = pg.service
        if pg.sslrootcert:
            kw["sslrootcert"] = str(pg.sslrootcert)
        if pg.passfile:
            kw["passfile"] = str(pg.passfile)
        pw = self.password()
        if pw:
            kw["password"] = pw
        addr, port = dial(kw["host"], kw["port"])
        if addr != kw["host"]:  # through the bastion: verify the certificate against the real name
            kw["hostaddr"], kw["port"] = addr, port
        kw.update(overrides)
        return kw


def _describe(err: Any) -> str:  # pydantic_core.ErrorDetails: loc, msg, input
    loc = "".join(f".{p}" for p in err["loc"])
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling)"
    elif err["type"] == "value_error":  # our own sentence: it already names the value
        msg = msg.removeprefix("Value error, ")
    elif "input" in err and not isinstance(err["input"], dict):
        msg = f"{msg}, got {err['input']!r}"
    return f"{loc}: {msg}" if loc else f" {msg}"


def parse_target(name: str, data: dict[str, Any], source: str) -> Target:
    try:
        base = Path(source).resolve().parent
        return Target.model_validate({"name": name, **data}, context={"base": base})
    except ValidationError as exc:
        lines = [f"targets.{name}{_describe(e)}" for e in exc.errors()]
        if len(lines) == 1:  # one wrong field: one sentence
            raise ConfigError(f"{source}: {lines[0]}") from None
        raise ConfigError(f"{source}: invalid target {name!r}:\n  " + "\n  ".join(lines)) from None


def check_target_name(name: str, where: str = "target name") -> str:
    """``name`` if it is safe as a directory and file name; else one sentence saying the rule."""
    if not TARGET_NAME.fullmatch(name):
        shown = repr(name) if len(name) <= 70 else f"{name[:60]!r}... ({len(name)} characters)"
        raise ConfigError(f"{where} {shown} is not allowed: a target name is {TARGET_NAME_RULE}")
    return name


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a config file") from None
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, "?")
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror} ({code})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: "
                          f"{exc.object[exc.start:exc.start + 1]!r}); save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def load_target(name: str, config: Path | None = None, lab_file: Path | None = None) -> Target:
    """Load target ``name``. ``lab`` comes from the lab's generated file unless the config names it."""
    check_target_name(name)  # before any file is read or written
    config = config or Path(os.environ.get("PGPROOF_CONFIG", DEFAULT_CONFIG))
    targets: dict[str, Any] = {}
    if config.exists():
        doc = _read_toml(config)
        unknown = set(doc) - {"targets"}
        if unknown:
            raise ConfigError(f"{config}: unknown top-level key(s): {', '.join(sorted(unknown))}")
        targets = doc.get("targets", {})
        if not isinstance(targets, dict):
            raise ConfigError(f"{config}: targets: expected a table of [targets.<name>]")
        for key in targets:
            check_target_name(key, f"{config}: target name")
    if name in targets:
        if not isinstance(targets[name], dict):
            raise ConfigError(f"{config}: targets.{name}: expected a table [targets.{name}] of "
                              f"settings, got {targets[name]!r}")
        return parse_target(name, targets[name], str(config))
    if name == "lab-azure":
        az_file = lab_target_file(lab_file).with_name("target-azure.toml")
        if not az_file.exists():
            raise ConfigError(f"target 'lab-azure': {az_file} not found; start the lab with "
                              "`pgproof lab up --cloud azure` (or --cloud both)")
        return parse_target("lab-azure", _read_toml(az_file), str(az_file))
    if name in LAB_TARGETS:
        lab_file = lab_target_file(lab_file)
        if name != "lab":  # the lab's other targets live beside its target.toml
            lab_file = lab_file.with_name(LAB_TARGETS[name])
        if not lab_file.exists():
            how = "pgproof lab up" + (" --supervisor supervisord" if name == "lab-ssh" else "")
            raise ConfigError(f"target {name!r}: {lab_file} not found; start the lab with `{how}`")
        return parse_target(name, _read_toml(lab_file), str(lab_file))
    valid = ", ".join(valid_targets(targets, lab_file)) or "none"
    if not config.exists():
        raise ConfigError(f"no target named {name!r}: {config} does not exist (valid targets: "
                          f"{valid}; copy pgproof.example.toml to pgproof.toml to add yours)")
    raise ConfigError(f"{config}: no target named {name!r} (valid targets: {valid})")


def lab_target_file(lab_file: Path | None = None) -> Path:
    return lab_file or Path(os.environ.get("PGPROOF_LAB_TARGET", LAB_TARGET_FILE))


def valid_targets(configured: dict[str, Any] | list[str], lab_file: Path | None = None) -> list[str]:
    """Every name ``--target`` accepts: the configured ones, plus ``lab`` when it is up or can be."""
    names = sorted(configured)
    if "lab" in names:
        return names
    if lab_target_file(lab_file).exists():
        more = [n for n in ("lab-rds", "lab-aurora", "lab-ssh") if n not in names
                and lab_target_file(lab_file).with_name(LAB_TARGETS[n]).exists()]
        return ["lab", *more, *names]
    if plugins.missing_extra("lab"):  # the checker alone: no lab to offer
        return names
    return ["lab (after `pgproof lab up`)", *names]


def configured_targets(config: Path | None = None) -> list[str]:
    """Target names in the config file (empty when it does not exist)."""
    config = config or Path(os.environ.get("PGPROOF_CONFIG", DEFAULT_CONFIG))
    if not config.exists():
        return []
    targets = _read_toml(config).get("targets", {})
    return sorted(targets) if isinstance(targets, dict) else []
