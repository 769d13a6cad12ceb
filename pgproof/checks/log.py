"""Judges of the CIS logging controls (LOG-*, pgproof/catalogue/log.py).

One rule per server setting, read where the fact lives: ``pg_settings`` over SQL, the
effective value of an RDS/Aurora parameter group (a parameter no group sets runs with
PostgreSQL's own default: RDS lists it without a ``ParameterValue``), an Azure server
parameter. The same rule judges all three, so a layer cannot pass what another fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pgproof.catalogue.build import reads
from pgproof.checks.aws_util import param_problems
from pgproof.checks.azure_util import param, srv
from pgproof.probes.aws_inventory import AwsInventory
from pgproof.probes.azure import AzureInventory
from pgproof.probes.postgres import PostgresFacts
from pgproof.target import Target, Thresholds
from pgproof.verdict import CannotVerify, NotApplicable

ON = {"1", "on", "true", "yes"}
OFF = {"0", "off", "false", "no"}
# Every name the tz database (and PostgreSQL) gives the zero-offset zone without summer time:
# CIS 3.1.26 asks for GMT or UTC, and ``Etc/UTC`` is UTC (pgdsat compares the string only).
UTC_NAMES = frozenset(n.lower() for n in (
    "UTC", "Etc/UTC", "UCT", "Etc/UCT", "GMT", "Etc/GMT", "GMT0", "Etc/GMT0", "GMT+0", "Etc/GMT+0",
    "GMT-0", "Etc/GMT-0", "Greenwich", "Etc/Greenwich", "Universal", "Etc/Universal", "Zulu",
    "Etc/Zulu"))
# The only log_line_prefix RDS and Aurora allow (Amazon RDS User Guide, "PostgreSQL database
# log files"): it names time, client host and port, user, database and process.
RDS_PREFIX = "%t:%r:%u@%d:[%p]:"
# log_line_prefix escapes CIS 3.1.24 asks for, as (what, any of these escapes).
PREFIX_PARTS = (("a time stamp", ("%t", "%m", "%n")), ("the process or session", ("%p", "%c")),
                ("the user", ("%u",)), ("the database", ("%d",)),
                ("the client host", ("%h", "%r")))
# RDS keeps its data directory here; on RDS and Aurora the provider fixes the log file
# settings (DescribeDBParameters: Source "system", IsModifiable false).
RDS_DATA = "/rdsdbdata/"
DAY_MIN = 1440  # log_rotation_age is in minutes; CIS 3.1.8: "log rotation at least daily"


def _on(v: str) -> bool:
    return v.strip().lower() in ON


def _off(v: str) -> bool:
    return v.strip().lower() in OFF


def _int(v: str) -> int | None:
    try:
        return int(v.strip().split()[0])
    except (ValueError, IndexError):
        return None


def _mode(v: str) -> int | None:
    try:
        return int(v.strip(), 8)
    except ValueError:
        return None


def private_mode(v: str) -> bool:
    """CIS 3.1.6: 0600, i.e. no bit for group or others."""
    m = _mode(v)
    return m is not None and m & 0o077 == 0


# strftime escapes that change with time (CIS 3.1.5: a log file name pattern, not a fixed name).
TIME_ESCAPES = frozenset("YyCGgmbBhdejaAuwUVWHIklMSpsFDTRrc")


def time_escapes(name: str) -> list[str]:
    """The time escapes of a log_filename (``%%`` is a literal %)."""
    return [e for e in re.findall(r"%(.)", name.replace("%%", "")) if e in TIME_ESCAPES]


def prefix_missing(prefix: str) -> list[str]:
    """What a log_line_prefix leaves out of CIS 3.1.24's who/where/when (``%%`` is a literal %)."""
    escapes = set(re.findall(r"%[^%]", prefix.replace("%%", "")))
    return [what for what, any_of in PREFIX_PARTS if not escapes & set(any_of)]


@dataclass(frozen=True)
class Rule:
    """What CIS asks of one setting: ``wants`` in words, ``ok`` on the value as reported,
    ``builtin`` PostgreSQL's own default (what a parameter no RDS group sets runs with)."""

    wants: str
    ok: Callable[[str], bool]
    builtin: str


RULES: dict[str, Rule] = {
    "log_file_mode": Rule("0600 (no access for group or others, CIS 3.1.6)", private_mode, "0600"),
    "log_truncate_on_rotation": Rule("on (CIS 3.1.7)", _on, "off"),
    "log_rotation_age": Rule("1 to 1440 minutes: rotation at least daily (CIS 3.1.8)",
                             lambda v: 0 < (_int(v) or 0) <= DAY_MIN, "1440"),
    "log_rotation_size": Rule("a size above 0, so files rotate by size (CIS 3.1.9)",
                              lambda v: (_int(v) or 0) > 0, "10240"),
    "log_min_messages": Rule("warning (CIS 3.1.14)", lambda v: v.strip().lower() == "warning",
                             "warning"),
    "log_min_error_statement": Rule("error (CIS 3.1.15)", lambda v: v.strip().lower() == "error",
                                    "error"),
    "debug_print_parse": Rule("off (CIS 3.1.16)", _off, "off"),
    "debug_print_rewritten": Rule("off (CIS 3.1.17)", _off, "off"),
    "debug_print_plan": Rule("off (CIS 3.1.18)", _off, "off"),
    "debug_pretty_print": Rule("on (CIS 3.1.19)", _on, "on"),
    "log_error_verbosity": Rule("verbose (CIS 3.1.22)", lambda v: v.strip().lower() == "verbose",
                                "default"),
    "log_hostname": Rule("off (CIS 3.1.23)", _off, "off"),
    "log_line_prefix": Rule("time, process, user, database and client host escapes "
                            "(%m or %t, %p, %u, %d, %h or %r; CIS 3.1.24)",
                            lambda v: not prefix_missing(v), "%m [%p] "),
    "log_statement": Rule("ddl, mod or all (CIS 3.1.25)",
                          lambda v: v.strip().lower() in ("ddl", "mod", "all"), "none"),
    "log_timezone": Rule("UTC or GMT (CIS 3.1.26)", lambda v: v.strip().lower() in UTC_NAMES, "GMT"),
    "ignore_system_indexes": Rule("off (CIS 6.2)", _off, "off"),
    "jit_debugging_support": Rule("off (CIS 6.2)", _off, "off"),
    "jit_profiling_support": Rule("off (CIS 6.2)", _off, "off"),
    "post_auth_delay": Rule("0 (CIS 6.2)", lambda v: _int(v) == 0, "0"),
    "log_replication_commands": Rule("on (CIS 7.2)", _on, "off"),
    "log_filename": Rule("a name with a time escape (%Y, %m, %d, %H, %a, ...), so a rotation "
                         "opens a new file instead of reusing one (CIS 3.1.5)",
                         lambda v: bool(time_escapes(v)), "postgresql-%Y-%m-%d_%H%M%S.log"),
    "syslog_sequence_numbers": Rule("on (CIS 3.1.11)", _on, "on"),
    "syslog_split_messages": Rule("on (CIS 3.1.12)", _on, "on"),
    "syslog_ident": Rule("a program name that is not empty (CIS 3.1.13; PostgreSQL's default "
                         "is postgres)", lambda v: bool(v.strip()), "postgres"),
}
BACKEND = ("ignore_system_indexes", "jit_debugging_support", "jit_profiling_support",
           "post_auth_delay")
# Where a log is captured without the logging collector (CIS 3.1.3: the collector, or syslog).
CAPTURED_WITHOUT_COLLECTOR = {"syslog", "eventlog"}
DESTINATIONS = {"stderr", "csvlog", "jsonlog", "syslog", "eventlog"}


# -- SQL ---------------------------------------------------------------------------------------

def sql_rule(pg: PostgresFacts, name: str) -> list[str]:
    """The setting as the server reports it, against its rule."""
    v = pg.setting(name)
    if name not in pg.settings:
        raise CannotVerify(f"{pg.endpoint}: the server reports no setting {name}")
    rule = RULES[name]
    return [] if rule.ok(v) else [f"{pg.endpoint}: {name} is {v!r}; the spec wants {rule.wants}"]


def _provider_managed(pg: PostgresFacts, target: Target, name: str, where: dict[str, str]) -> None:
    """A setting the provider fixes is the provider's, never the customer's failure: RDS and
    Aurora keep their data directory under /rdsdbdata; an Azure target says so in [azure]."""
    if "rds" in where and pg.setting("data_directory").startswith(RDS_DATA):
        raise NotApplicable(f"{pg.endpoint}: {name} = {pg.settings.get(name)!r} is fixed by RDS/"
                            f"Aurora ({where['rds']}); inherited from the provider")
    if "azure" in where and target.azure is not None:
        raise NotApplicable(f"{pg.endpoint}: {name} = {pg.settings.get(name)!r} is a read-only "
                            f"server parameter on Azure ({where['azure']}); inherited from the "
                            "provider")


def _managed_rule(pg: PostgresFacts, target: Target, name: str, where: dict[str, str]) -> list[str]:
    problems = sql_rule(pg, name)
    if problems:
        _provider_managed(pg, target, name, where)
    return problems


AZ_WHERE = ("Azure: read-only server parameter, https://learn.microsoft.com/azure/postgresql/"
            "flexible-server/concepts-server-parameters")
RDS_FIXED = "DescribeDBParameters reports it with Source system and IsModifiable false"


def judge_captured(pg: PostgresFacts, target: Target) -> list[str]:
    """CIS 3.1.2 and 3.1.3: log_destination names only real destinations, and a file
    destination (stderr, csvlog, jsonlog) is written by the logging collector."""
    dest = [d.strip().lower() for d in pg.setting("log_destination").split(",") if d.strip()]
    if "log_destination" not in pg.settings or "logging_collector" not in pg.settings:
        raise CannotVerify(f"{pg.endpoint}: the server reports no log_destination or logging_collector")
    problems = []
    unknown = [d for d in dest if d not in DESTINATIONS]
    if not dest or unknown:
        problems.append(f"{pg.endpoint}: log_destination is {pg.settings['log_destination']!r}; "
                        f"the spec wants one or more of {', '.join(sorted(DESTINATIONS))} (CIS 3.1.2)")
    files = [d for d in dest if d not in CAPTURED_WITHOUT_COLLECTOR]
    if files and not _on(pg.settings["logging_collector"]):
        if target.azure is not None:
            raise NotApplicable(f"{pg.endpoint}: logging_collector is off, a read-only server "
                                f"parameter on Azure, which captures the log itself ({AZ_WHERE}); "
                                "inherited from the provider")
        problems.append(f"{pg.endpoint}: log_destination {','.join(files)} is written by no "
                        "logging collector (logging_collector is off); the spec wants "
                        "logging_collector on, or syslog (CIS 3.1.3)")
    return problems


def judge_file_mode(pg: PostgresFacts, target: Target) -> list[str]:
    return _managed_rule(pg, target, "log_file_mode", {"rds": RDS_FIXED})


def judge_truncate(pg: PostgresFacts, target: Target) -> list[str]:
    return _managed_rule(pg, target, "log_truncate_on_rotation", {"rds": RDS_FIXED, "azure": AZ_WHERE})


def judge_log_directory(pg: PostgresFacts) -> list[str]:
    """CIS 3.1.4: the collector's directory is set; pgproof's policy (CIS 8.1's intent) places
    it outside the data directory, where base backups would copy it and a restore reset it."""
    if "log_directory" not in pg.settings or "logging_collector" not in pg.settings:
        raise CannotVerify(f"{pg.endpoint}: the server reports no log_directory or logging_collector")
    if not _on(pg.settings["logging_collector"]):
        raise NotApplicable(f"{pg.endpoint}: logging_collector is off: no file is written to "
                            "log_directory (LOG-1 judges where the log goes)")
    where = pg.settings["log_directory"].strip()
    if not where:
        return [f"{pg.endpoint}: log_directory is empty: the collector writes to the file system "
                "root and the log is lost; the spec wants an absolute directory outside the "
                "data directory (CIS 3.1.4)"]
    if not where.startswith("/"):
        return [f"{pg.endpoint}: log_directory is {where!r}, relative to the data directory: "
                "every base backup copies the logs and a restore overwrites them; the spec wants "
                "an absolute directory outside the data directory (CIS 3.1.4, 8.1)"]
    data = pg.setting("data_directory").rstrip("/")  # hidden: an error naming the GRANT
    if not data:
        raise CannotVerify(f"{pg.endpoint}: the server reports no data_directory, so whether "
                           f"log_directory {where!r} lies inside it is unknown")
    if where.rstrip("/") == data or where.startswith(data + "/"):
        return [f"{pg.endpoint}: log_directory {where!r} is inside the data directory {data!r}; "
                "the spec wants an absolute directory outside it (CIS 3.1.4, 8.1)"]
    return []


def judge_backend(pg: PostgresFacts) -> list[str]:
    """CIS 6.2: the developer-only backend parameters are at their safe values."""
    return [p for name in BACKEND for p in sql_rule(pg, name)]


# One SQL judge per single-setting control (named, so `pgproof controls show` lists it).

def sql_log_rotation_age(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "log_rotation_age")


def sql_log_rotation_size(pg: PostgresFacts) -> list[str]:
    """CIS 3.1.9: size 0 disables size-triggered rotation, a risk "unless age-based rotation
    is configured": a daily age rotation makes size 0 acceptable."""
    problems = sql_rule(pg, "log_rotation_size")
    if problems and not sql_rule(pg, "log_rotation_age"):
        return []
    return [p + ", or age-based rotation at least daily" for p in problems]


def sql_log_min_messages(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "log_min_messages")


def sql_log_min_error_statement(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "log_min_error_statement")


def sql_debug_print_parse(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "debug_print_parse")


def sql_debug_print_rewritten(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "debug_print_rewritten")


def sql_debug_print_plan(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "debug_print_plan")


def sql_debug_pretty_print(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "debug_pretty_print")


def sql_log_error_verbosity(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "log_error_verbosity")


def sql_log_hostname(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "log_hostname")


def sql_log_line_prefix(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "log_line_prefix")


def sql_log_statement(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "log_statement")


def sql_log_timezone(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "log_timezone")


def sql_log_replication_commands(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "log_replication_commands")


def sql_log_filename(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "log_filename")


def sql_syslog_sequence_numbers(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "syslog_sequence_numbers")


def sql_syslog_split_messages(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "syslog_split_messages")


def sql_syslog_ident(pg: PostgresFacts) -> list[str]:
    return sql_rule(pg, "syslog_ident")


# -- AWS (RDS and Aurora parameter groups) --------------------------------------------------------

def aws_rule(inv: AwsInventory, name: str) -> list[str]:
    """The effective value of ``name`` on every instance: its group, the cluster group, the
    engine default, else PostgreSQL's own default (RDS lists such a parameter without value)."""
    rule = RULES[name]
    return param_problems(inv, name, rule.ok, rule.wants, builtin=rule.builtin)


@reads("DescribeDBInstances, DescribeDBParameters (every page), DescribeDBClusterParameters, "
       "DescribeEngineDefault(Cluster)Parameters",
       "`DBParameterGroups` → `DBParameterGroupName`; parameter `log_min_messages`; `DBInstanceIdentifier`; "
       "cluster `DBClusterParameterGroup` (the effective value as TLS-1)",
       "as TLS-1, except a parameter set in no group and without an engine value: PostgreSQL's "
       "own default, judged (RDS lists such a parameter without a `ParameterValue`); the "
       "engine default unreadable: cannot verify")
def aws_min_messages(inv: AwsInventory, th: Thresholds) -> list[str]:
    return aws_rule(inv, "log_min_messages")


@reads("DescribeDBInstances, DescribeDBParameters (every page), DescribeDBClusterParameters, "
       "DescribeEngineDefault(Cluster)Parameters",
       "`DBParameterGroups` → `DBParameterGroupName`; parameter `log_min_error_statement`; `DBInstanceIdentifier`; "
       "cluster `DBClusterParameterGroup` (the effective value as TLS-1)",
       "as TLS-1, except a parameter set in no group and without an engine value: PostgreSQL's "
       "own default, judged (RDS lists such a parameter without a `ParameterValue`); the "
       "engine default unreadable: cannot verify")
def aws_min_error_statement(inv: AwsInventory, th: Thresholds) -> list[str]:
    return aws_rule(inv, "log_min_error_statement")


@reads("DescribeDBInstances, DescribeDBParameters (every page), DescribeDBClusterParameters, "
       "DescribeEngineDefault(Cluster)Parameters",
       "`DBParameterGroups` → `DBParameterGroupName`; parameter `debug_print_parse`; `DBInstanceIdentifier`; "
       "cluster `DBClusterParameterGroup` (the effective value as TLS-1)",
       "as TLS-1, except a parameter set in no group and without an engine value: PostgreSQL's "
       "own default, judged (RDS lists such a parameter without a `ParameterValue`); the "
       "engine default unreadable: cannot verify")
def aws_debug_parse(inv: AwsInventory, th: Thresholds) -> list[str]:
    return aws_rule(inv, "debug_print_parse")


@reads("DescribeDBInstances, DescribeDBParameters (every page), DescribeDBClusterParameters, "
       "DescribeEngineDefault(Cluster)Parameters",
       "`DBParameterGroups` → `DBParameterGroupName`; parameter `debug_print_rewritten`; `DBInstanceIdentifier`; "
       "cluster `DBClusterParameterGroup` (the effective value as TLS-1)",
       "as TLS-1, except a parameter set in no group and without an engine value: PostgreSQL's "
       "own default, judged (RDS lists such a parameter without a `ParameterValue`); the "
       "engine default unreadable: cannot verify")
def aws_debug_rewritten(inv: AwsInventory, th: Thresholds) -> list[str]:
    return aws_rule(inv, "debug_print_rewritten")


@reads("DescribeDBInstances, DescribeDBParameters (every page), DescribeDBClusterParameters, "
       "DescribeEngineDefault(Cluster)Parameters",
       "`DBParameterGroups` → `DBParameterGroupName`; parameter `debug_print_plan`; `DBInstanceIdentifier`; "
       "cluster `DBClusterParameterGroup` (the effective value as TLS-1)",
       "as TLS-1, except a parameter set in no group and without an engine value: PostgreSQL's "
       "own default, judged (RDS lists such a parameter without a `ParameterValue`); the "
       "engine default unreadable: cannot verify")
def aws_debug_plan(inv: AwsInventory, th: Thresholds) -> list[str]:
    return aws_rule(inv, "debug_print_plan")


@reads("DescribeDBInstances, DescribeDBParameters (every page), DescribeDBClusterParameters, "
       "DescribeEngineDefault(Cluster)Parameters",
       "`DBParameterGroups` → `DBParameterGroupName`; parameter `debug_pretty_print`; `DBInstanceIdentifier`; "
       "cluster `DBClusterParameterGroup` (the effective value as TLS-1)",
       "as TLS-1, except a parameter set in no group and without an engine value: PostgreSQL's "
       "own default, judged (RDS lists such a parameter without a `ParameterValue`); the "
       "engine default unreadable: cannot verify")
def aws_pretty_print(inv: AwsInventory, th: Thresholds) -> list[str]:
    return aws_rule(inv, "debug_pretty_print")


@reads("DescribeDBInstances, DescribeDBParameters (every page), DescribeDBClusterParameters, "
       "DescribeEngineDefault(Cluster)Parameters",
       "`DBParameterGroups` → `DBParameterGroupName`; parameter `log_error_verbosity`; `DBInstanceIdentifier`; "
       "cluster `DBClusterParameterGroup` (the effective value as TLS-1)",
       "as TLS-1, except a parameter set in no group and without an engine value: PostgreSQL's "
       "own default, judged (RDS lists such a parameter without a `ParameterValue`); the "
       "engine default unreadable: cannot verify")
def aws_error_verbosity(inv: AwsInventory, th: Thresholds) -> list[str]:
    return aws_rule(inv, "log_error_verbosity")


@reads("DescribeDBInstances, DescribeDBParameters (every page), DescribeDBClusterParameters, "
       "DescribeEngineDefault(Cluster)Parameters",
       "`DBParameterGroups` → `DBParameterGroupName`; parameter `log_hostname`; `DBInstanceIdentifier`; "
       "cluster `DBClusterParameterGroup` (the effective value as TLS-1)",
       "as TLS-1, except a parameter set in no group and without an engine value: PostgreSQL's "
       "own default, judged (RDS lists such a parameter without a `ParameterValue`); the "
       "engine default unreadable: cannot verify")
def aws_hostname(inv: AwsInventory, th: Thresholds) -> list[str]:
    return aws_rule(inv, "log_hostname")


@reads("DescribeDBInstances, DescribeDBParameters (every page), DescribeDBClusterParameters, "
       "DescribeEngineDefault(Cluster)Parameters",
       "`DBParameterGroups` → `DBParameterGroupName`; parameter `log_statement`; `DBInstanceIdentifier`; "
       "cluster `DBClusterParameterGroup` (the effective value as TLS-1)",
       "as TLS-1, except a parameter set in no group and without an engine value: PostgreSQL's "
       "own default, judged (RDS lists such a parameter without a `ParameterValue`); the "
       "engine default unreadable: cannot verify")
def aws_statement(inv: AwsInventory, th: Thresholds) -> list[str]:
    return aws_rule(inv, "log_statement")


@reads("DescribeDBInstances, DescribeDBParameters (every page), DescribeDBClusterParameters, "
       "DescribeEngineDefault(Cluster)Parameters",
       "`DBParameterGroups` → `DBParameterGroupName`; parameter `log_replication_commands`; `DBInstanceIdentifier`; "
       "cluster `DBClusterParameterGroup` (the effective value as TLS-1)",
       "as TLS-1, except a parameter set in no group and without an engine value: PostgreSQL's "
       "own default, judged (RDS lists such a parameter without a `ParameterValue`); the "
       "engine default unreadable: cannot verify")
def aws_replication_commands(inv: AwsInventory, th: Thresholds) -> list[str]:
    return aws_rule(inv, "log_replication_commands")


# -- Azure (flexible server parameters) ---------------------------------------------------------

def azure_rule(inv: AzureInventory, name: str) -> list[str]:
    v = param(inv, name)
    rule = RULES[name]
    return [] if rule.ok(v) else [f"{srv(inv)}: {name} is {v!r}; the spec wants {rule.wants}"]


@reads("Configurations_ListByServer", "parameter `log_min_messages`; `name`",
       "parameter not reported: cannot verify")
def azure_min_messages(inv: AzureInventory, th: Thresholds) -> list[str]:
    return azure_rule(inv, "log_min_messages")


@reads("Configurations_ListByServer", "parameter `log_min_error_statement`; `name`",
       "parameter not reported: cannot verify")
def azure_min_error_statement(inv: AzureInventory, th: Thresholds) -> list[str]:
    return azure_rule(inv, "log_min_error_statement")


@reads("Configurations_ListByServer", "parameter `debug_print_parse`; `name`",
       "parameter not reported: cannot verify")
def azure_debug_parse(inv: AzureInventory, th: Thresholds) -> list[str]:
    return azure_rule(inv, "debug_print_parse")


@reads("Configurations_ListByServer", "parameter `debug_print_rewritten`; `name`",
       "parameter not reported: cannot verify")
def azure_debug_rewritten(inv: AzureInventory, th: Thresholds) -> list[str]:
    return azure_rule(inv, "debug_print_rewritten")


@reads("Configurations_ListByServer", "parameter `debug_print_plan`; `name`",
       "parameter not reported: cannot verify")
def azure_debug_plan(inv: AzureInventory, th: Thresholds) -> list[str]:
    return azure_rule(inv, "debug_print_plan")


@reads("Configurations_ListByServer", "parameter `debug_pretty_print`; `name`",
       "parameter not reported: cannot verify")
def azure_pretty_print(inv: AzureInventory, th: Thresholds) -> list[str]:
    return azure_rule(inv, "debug_pretty_print")


@reads("Configurations_ListByServer", "parameter `log_error_verbosity`; `name`",
       "parameter not reported: cannot verify")
def azure_error_verbosity(inv: AzureInventory, th: Thresholds) -> list[str]:
    return azure_rule(inv, "log_error_verbosity")


@reads("Configurations_ListByServer", "parameter `log_line_prefix`; `name`",
       "parameter not reported: cannot verify")
def azure_line_prefix(inv: AzureInventory, th: Thresholds) -> list[str]:
    return azure_rule(inv, "log_line_prefix")


@reads("Configurations_ListByServer", "parameter `log_statement`; `name`",
       "parameter not reported: cannot verify")
def azure_statement(inv: AzureInventory, th: Thresholds) -> list[str]:
    return azure_rule(inv, "log_statement")
