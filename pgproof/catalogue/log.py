"""LOG-1..LOG-18: the CIS PostgreSQL 17 logging recommendations (3.1.x), the backend runtime
parameters (6.2) and replication command logging (7.2), one control per recommendation.

Each is judged where the fact lives: ``pg_settings`` over SQL on every platform, the RDS/Aurora
parameter groups and the Azure server parameters where the customer sets it. Where the
provider fixes a setting (RDS ``IsModifiable`` false, an Azure read-only server parameter) the
control is ``inherited`` there, with the provider's words. CIS 3.1.20 and 3.1.21
(log_connections, log_disconnections) are AUDIT-1's; the judges are in ``checks/log.py``.
"""

from __future__ import annotations

from typing import Any

from pgproof.catalogue.build import aws, azure, check, control, inherited, lazy
from pgproof.catalogue.model import Applies, Check, Control, Platform

AUDIT = ("164.312(b)",)
RDS_LOG = "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_LogAccess.Concepts.PostgreSQL.html"
RDS_API = ("DescribeDBParameters reports it with Source \"system\" and IsModifiable false, which "
           "AWS defines as \"whether (true) or not (false) the parameter can be modified\" "
           "(https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_Parameter.html; seen in "
           "a real account's recorded response, tests/data/recorded/aws/instance/)")
_AZ_TABLE = ("https://github.com/MicrosoftDocs/azure-docs/blob/main/articles/postgresql/"
             "flexible-server/includes/server-parameters-table-16-reporting-and-logging---{}.md")
AZ_PARAMS = "https://learn.microsoft.com/azure/postgresql/flexible-server/concepts-server-parameters"


def _az_ro(name: str, value: str, table: str) -> Applies:
    return inherited(f"Azure lists {name} as read-only, value {value}: \"Read-only: These "
                     f"parameters aren't user configurable\" ({AZ_PARAMS}; {_AZ_TABLE.format(table)})")


def _rds_fixed(name: str, value: str) -> Applies:
    return inherited(f"RDS sets {name} = {value} itself: {RDS_API}")


def _sql(name: str, also: str = "") -> Check:
    """The setting's SQL judge; ``also``: further settings it reads."""
    return check("sql", f"log:sql_{name}", "pg_facts", settings=f"{name} {also}",
                 evidence=lambda pg: ", ".join(f"{n}={pg.settings.get(n)!r}"
                                               for n in (name, *also.split())))


def _aws(judge: str, *names: str) -> Check:
    return aws(f"log:{judge}", lazy("aws_util:settings", *names))


def _setting(cid: str, title: str, name: str, value: str, why: str, *, cis: str,
             severity: Any = "low", aws_judge: str = "", azure_judge: str = "",
             platforms: dict[Platform, Applies] | None = None,
             hipaa: tuple[str, ...] = AUDIT) -> Control:
    """A control over one server setting: SQL everywhere, plus the cloud layers named."""
    checks = [_sql(name, "log_rotation_age" if name == "log_rotation_size" else "")]
    if aws_judge:
        checks.append(_aws(aws_judge, name))
    if azure_judge:
        checks.append(azure(f"log:{azure_judge}", params=(name,)))
    fixed = platforms or {}
    rds = ("RDS fixes it (the provider's value, stated per platform); Aurora: the DB cluster "
           "parameter group, where Aurora lets it be changed" if "rds" in fixed else
           "RDS/Aurora: in the custom DB parameter group (Aurora: the DB cluster parameter group)")
    az = ("Azure: a read-only server parameter (the provider's value, stated per platform)"
          if "azure" in fixed else
          f"Azure: the server parameter (az postgres flexible-server parameter set --name {name} "
          f"--value '{value}')")
    return control(
        cid, title, f"{name} is '{value}': {why}",
        f"Set {name} = '{value}': self-managed ALTER SYSTEM SET {name} = '{value}' (or the "
        f"Patroni dynamic configuration) and reload; {rds}; {az}.",
        severity=severity, hipaa=hipaa, cis=(cis,), checks=tuple(checks), platforms=platforms)


CONTROLS = (
    control(
        "LOG-1", "Server log captured",
        "log_destination names only real destinations (stderr, csvlog, jsonlog, syslog), and a "
        "file destination is written by the logging collector (logging_collector on).",
        "Self-managed: log_destination = 'stderr' (or csvlog/jsonlog) with logging_collector = "
        "on (restart), or syslog to a collected syslog; RDS/Aurora capture the log themselves "
        "(export it: AUDIT-1); Azure captures it through diagnostic settings.",
        severity="medium", hipaa=AUDIT, cis=("3.1.2", "3.1.3"),
        checks=(check("sql", "log:judge_captured", "pg_facts", "target",
                      settings="log_destination logging_collector",
                      evidence=lambda pg, _t: f"log_destination={pg.settings.get('log_destination')!r}, "
                                              f"logging_collector={pg.settings.get('logging_collector')}"),),
        platforms={"rds": _rds_fixed("logging_collector", "1"),
                   "azure": _az_ro("logging_collector", "off (Azure captures the log itself)",
                                   "where-to-log")}),
    control(
        "LOG-2", "Log files private",
        "log_file_mode is 0600: no one but the server's account reads the log files.",
        "Self-managed: ALTER SYSTEM SET log_file_mode = '0600' and reload. RDS/Aurora and Azure "
        "fix it themselves (stated per platform).",
        severity="medium", hipaa=(*AUDIT, "164.312(a)(1)"), cis=("3.1.6",),
        checks=(check("sql", "log:judge_file_mode", "pg_facts", "target",
                      settings="log_file_mode data_directory",
                      evidence=lambda pg, _t: f"log_file_mode={pg.settings.get('log_file_mode')!r}"),),
        platforms={"rds": _rds_fixed("log_file_mode", "0644"),
                   "aurora": _rds_fixed("log_file_mode", "0644"),
                   "azure": _az_ro("log_file_mode", "0600", "where-to-log")}),
    control(
        "LOG-3", "Logs truncated on rotation",
        "log_truncate_on_rotation is on: a rotated file name that recurs is overwritten, so "
        "the log directory's size stays bounded.",
        "Self-managed: ALTER SYSTEM SET log_truncate_on_rotation = on and reload. RDS/Aurora "
        "and Azure fix it (off) and bound the logs by their retention instead.",
        severity="low", hipaa=AUDIT, cis=("3.1.7",),
        checks=(check("sql", "log:judge_truncate", "pg_facts", "target",
                      settings="log_truncate_on_rotation data_directory",
                      evidence=lambda pg, _t: "log_truncate_on_rotation="
                                              f"{pg.settings.get('log_truncate_on_rotation')}"),),
        platforms={"rds": _rds_fixed("log_truncate_on_rotation", "0"),
                   "aurora": _rds_fixed("log_truncate_on_rotation", "0"),
                   "azure": _az_ro("log_truncate_on_rotation", "off", "where-to-log")}),
    _setting("LOG-4", "Logs rotate at least daily", "log_rotation_age", "1d",
             "a log file lives at most one day (1 to 1440 minutes; 0 disables age rotation).",
             cis="3.1.8",
             platforms={"azure": _az_ro("log_rotation_age", "60 (minutes)", "where-to-log")}),
    _setting("LOG-5", "Logs rotate by size", "log_rotation_size", "1GB",
             "a log file's size is bounded (any value above 0), or, as CIS allows, files "
             "rotate by age at least daily.", cis="3.1.9",
             platforms={"azure": _az_ro("log_rotation_size", "102400 (kB)", "where-to-log")}),
    _setting("LOG-6", "Server messages logged at warning", "log_min_messages", "warning",
             "warnings and everything more severe reach the log, without debug noise (CIS "
             "names exactly warning).", cis="3.1.14", severity="medium",
             aws_judge="aws_min_messages", azure_judge="azure_min_messages"),
    _setting("LOG-7", "Failing statements logged", "log_min_error_statement", "error",
             "the SQL text of every statement that raises an error is logged (CIS names exactly "
             "error).", cis="3.1.15", severity="medium",
             aws_judge="aws_min_error_statement", azure_judge="azure_min_error_statement"),
    _setting("LOG-8", "No parse trees in the log", "debug_print_parse", "off",
             "parse trees (with the literals of every query) stay out of the log.", cis="3.1.16",
             aws_judge="aws_debug_parse", azure_judge="azure_debug_parse"),
    _setting("LOG-9", "No rewritten queries in the log", "debug_print_rewritten", "off",
             "rewriter output (with the literals of every query) stays out of the log.",
             cis="3.1.17", aws_judge="aws_debug_rewritten", azure_judge="azure_debug_rewritten"),
    _setting("LOG-10", "No plans in the log", "debug_print_plan", "off",
             "execution plans (with the literals of every query) stay out of the log.",
             cis="3.1.18", aws_judge="aws_debug_plan", azure_judge="azure_debug_plan"),
    _setting("LOG-11", "Debug output indented", "debug_pretty_print", "on",
             "debug output, when someone turns it on, is indented and readable.", cis="3.1.19",
             aws_judge="aws_pretty_print", azure_judge="azure_pretty_print"),
    _setting("LOG-12", "Errors logged in full", "log_error_verbosity", "verbose",
             "every logged error carries its SQLSTATE, source file, function and line.",
             cis="3.1.22", severity="medium",
             aws_judge="aws_error_verbosity", azure_judge="azure_error_verbosity"),
    _setting("LOG-13", "No host name lookups", "log_hostname", "off",
             "the log records client addresses, without a DNS lookup per connection.",
             cis="3.1.23", aws_judge="aws_hostname",
             platforms={"azure": _az_ro("log_hostname", "off", "what-to-log")}),
    _setting("LOG-14", "Log lines say who, where and when", "log_line_prefix",
             "%m [%p]: db=%d,user=%u,app=%a,client=%h ",
             "every line carries a time stamp (%m/%t/%n), the process or session (%p/%c), the "
             "user (%u), the database (%d) and the client host (%h/%r); RDS's fixed "
             "'%t:%r:%u@%d:[%p]:' has all five. CIS's example also has app=%a: the application "
             "name is the client's own claim, and RDS cannot log it, so it is not required.", cis="3.1.24", severity="medium",
             azure_judge="azure_line_prefix",
             platforms={"rds": inherited("\"Amazon RDS only allows the following value for "
                                         f"log_line_prefix: %t:%r:%u@%d:[%p]:\" ({RDS_LOG}); it "
                                         "names time, client, user, database and process")}),
    _setting("LOG-15", "Statements logged", "log_statement", "ddl",
             "every schema change (ddl), or more (mod, all), is logged (CIS 3.1.25: not none).",
             cis="3.1.25", severity="medium", aws_judge="aws_statement",
             azure_judge="azure_statement"),
    _setting("LOG-16", "Log times in UTC", "log_timezone", "UTC",
             "log time stamps are UTC (or GMT; any tz-database alias of them, e.g. Etc/UTC).",
             cis="3.1.26",
             platforms={"rds": _rds_fixed("log_timezone", "UTC"),
                        "azure": _az_ro("log_timezone", "UTC", "what-to-log")}),
    control(
        "LOG-17", "Developer runtime parameters off",
        "ignore_system_indexes, jit_debugging_support and jit_profiling_support are off and "
        "post_auth_delay is 0 (CIS 6.2; its log_connections and log_disconnections part is "
        "AUDIT-1).",
        "Remove these developer options: ALTER SYSTEM RESET each (self-managed) and reload; "
        "RDS/Aurora: reset them in the DB parameter group; Azure: reset the server parameters.",
        severity="medium",
        unmapped_reason="developer and debugging switches (index bypass, JIT debugger hooks, "
        "a delay after login); no Security Rule standard names them",
        cis=("6.2",),
        checks=(check("sql", "log:judge_backend", "pg_facts",
                      settings="ignore_system_indexes jit_debugging_support "
                               "jit_profiling_support post_auth_delay",
                      evidence=lambda pg: ", ".join(
                          f"{n}={pg.settings.get(n)}" for n in (
                              "ignore_system_indexes", "jit_debugging_support",
                              "jit_profiling_support", "post_auth_delay"))),)),
    _setting("LOG-18", "Replication commands logged", "log_replication_commands", "on",
             "every replication command (a base backup, a replication slot, a WAL stream) is "
             "logged.", cis="7.2", aws_judge="aws_replication_commands",
             platforms={"azure": _az_ro("log_replication_commands", "on", "what-to-log")}),
)
