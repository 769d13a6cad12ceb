"""LOG-1..LOG-18 judges (pgproof/checks/log.py) at their exact boundaries, without a server:
each rule passes at the value CIS names and fails one step past it, on every layer."""

from __future__ import annotations

import pytest

from pgproof.checks import log
from pgproof.probes.aws import AwsInventory
from pgproof.probes.azure import AzureInventory
from pgproof.probes.postgres import PostgresFacts
from pgproof.target import Target, Thresholds
from pgproof.verdict import CannotVerify, NotApplicable, Unreachable

TH = Thresholds()
SELF = Target(name="t", postgres={"writer": {"host": "db", "port": 5432}, "user": "pgproof"})
AZURE = Target(name="t", postgres={"writer": {"host": "db", "port": 5432}, "user": "pgproof"},
               azure={"subscription_id": "00000000-0000-4000-8000-000000000001", "resource_group": "g",
                      "server_name": "srv"})

HEALTHY = {
    "log_destination": "stderr", "logging_collector": "on", "log_file_mode": "0600",
    "log_truncate_on_rotation": "on", "log_rotation_age": "1440", "log_rotation_size": "10240",
    "log_min_messages": "warning", "log_min_error_statement": "error",
    "debug_print_parse": "off", "debug_print_rewritten": "off", "debug_print_plan": "off",
    "debug_pretty_print": "on", "log_error_verbosity": "verbose", "log_hostname": "off",
    "log_line_prefix": "%m [%p]: db=%d,user=%u,app=%a,client=%h ", "log_statement": "ddl",
    "log_timezone": "UTC", "ignore_system_indexes": "off", "jit_debugging_support": "off",
    "jit_profiling_support": "off", "post_auth_delay": "0", "log_replication_commands": "on",
    "data_directory": "/var/lib/postgresql/15/main",
}


def pg(hidden: tuple[str, ...] = (), **settings: str) -> PostgresFacts:
    values = {k: v for k, v in {**HEALTHY, **settings}.items() if k not in hidden}
    return PostgresFacts("db:5432", values, "ddl", [], None, {}, {}, hidden=list(hidden),
                         role="pgproof")


# (setting, passes at the boundary, one step past it fails)
BOUNDARIES = [
    ("log_file_mode", ["0600", "0400"], ["0640", "0604", "0644", "0601"]),
    ("log_truncate_on_rotation", ["on"], ["off"]),
    ("log_rotation_age", ["1", "1440"], ["0", "1441"]),
    ("log_rotation_size", ["1", "10240"], ["0"]),
    ("log_min_messages", ["warning", "WARNING"], ["error", "notice"]),
    ("log_min_error_statement", ["error"], ["log", "warning", "fatal"]),
    ("debug_print_parse", ["off"], ["on"]),
    ("debug_print_rewritten", ["off"], ["on"]),
    ("debug_print_plan", ["off"], ["on"]),
    ("debug_pretty_print", ["on"], ["off"]),
    ("log_error_verbosity", ["verbose"], ["default", "terse"]),
    ("log_hostname", ["off"], ["on"]),
    ("log_line_prefix", ["%m [%p]: db=%d,user=%u,app=%a,client=%h ", log.RDS_PREFIX,
                         "%n %c %u %d %h"],
     ["%m [%p] ", "%t-%c-", "%m [%p]: db=%d,user=%u,app=%a ", "%%h %m %p %u %d", ""]),
    ("log_statement", ["ddl", "mod", "all"], ["none"]),
    ("log_timezone", ["UTC", "Etc/UTC", "GMT", "Etc/GMT", "Zulu", "utc"],
     ["America/New_York", "Europe/London", "Etc/GMT+1", "UTC+1"]),
    ("ignore_system_indexes", ["off"], ["on"]),
    ("jit_debugging_support", ["off"], ["on"]),
    ("jit_profiling_support", ["off"], ["on"]),
    ("post_auth_delay", ["0"], ["1"]),
    ("log_replication_commands", ["on"], ["off"]),
    ("log_filename", ["postgresql-%Y%m%d.log", "postgresql-%a.log", "pg-%H.log",
                      "postgresql.log.%Y-%m-%d-%H"],
     ["postgresql.log", "postgresql-%%Y.log", "postgresql-%q.log", ""]),
    ("syslog_sequence_numbers", ["on"], ["off"]),
    ("syslog_split_messages", ["on"], ["off"]),
    ("syslog_ident", ["postgres", "p"], ["", " "]),
]


@pytest.mark.parametrize(("name", "good", "bad"), BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_sql_rule_boundary(name: str, good: list[str], bad: list[str]) -> None:
    for v in good:
        assert log.sql_rule(pg(**{name: v}), name) == [], (name, v)
    for v in bad:
        problems = log.sql_rule(pg(**{name: v}), name)
        assert len(problems) == 1 and f"{name} is {v!r}" in problems[0], (name, v, problems)
        assert "the spec wants" in problems[0] and "db:5432" in problems[0]


def test_every_rule_has_a_boundary_and_builtin_defaults_are_postgresqls() -> None:
    assert {b[0] for b in BOUNDARIES} == set(log.RULES)
    builtin_fails = {n for n, r in log.RULES.items() if not r.ok(r.builtin)}
    # PostgreSQL's own defaults that CIS asks to change (an unset RDS parameter fails these).
    assert builtin_fails == {"log_truncate_on_rotation", "log_error_verbosity", "log_line_prefix",
                             "log_statement", "log_replication_commands"}


def test_a_hidden_setting_is_could_not_check_and_a_missing_one_cannot_verify() -> None:
    with pytest.raises(Unreachable, match="GRANT pg_read_all_settings TO pgproof"):
        log.sql_rule(pg(hidden=("log_statement",)), "log_statement")
    facts = pg()
    del facts.settings["log_statement"]
    with pytest.raises(CannotVerify, match="no setting log_statement"):
        log.sql_rule(facts, "log_statement")


def test_log_directory_boundary() -> None:
    """CIS 3.1.4: set, absolute, outside the data directory; a directory whose name only
    starts like the data directory's is outside it."""
    data = HEALTHY["data_directory"]
    for ok in ("/var/log/postgresql", data + "-log", "/var/lib/postgresql/15/pglog",
               "/rdsdbdata/log"):
        assert log.judge_log_directory(pg(log_directory=ok)) == [], ok
    for bad, says in (("", "is empty"), ("log", "relative to the data directory"),
                      (data + "/log", "inside the data directory"), (data, "inside the data"),
                      (data + "/", "inside the data directory")):
        problems = log.judge_log_directory(pg(log_directory=bad))
        assert len(problems) == 1 and says in problems[0] and "CIS 3.1.4" in problems[0], bad
    with pytest.raises(NotApplicable, match="logging_collector is off"):
        log.judge_log_directory(pg(log_directory="log", logging_collector="off"))
    with pytest.raises(Unreachable, match="GRANT pg_read_all_settings TO pgproof"):
        log.judge_log_directory(pg(hidden=("data_directory",), log_directory="/var/log/pg"))
    facts = pg(log_directory="/var/log/pg")
    del facts.settings["data_directory"]
    with pytest.raises(CannotVerify, match="no data_directory"):
        log.judge_log_directory(facts)
    facts = pg()
    with pytest.raises(CannotVerify, match="no log_directory"):
        log.judge_log_directory(facts)


def test_time_escapes_ignore_literal_percent() -> None:
    assert log.time_escapes("postgresql-%Y-%m-%d_%H%M%S.log") == ["Y", "m", "d", "H", "M", "S"]
    assert log.time_escapes("a%%Yb") == [] and log.time_escapes("a%%%Yb") == ["Y"]


def test_prefix_missing_names_what_is_absent() -> None:
    assert log.prefix_missing("%m [%p] ") == ["the user", "the database", "the client host"]
    assert log.prefix_missing(log.RDS_PREFIX) == []
    assert log.prefix_missing("%%u %%d %m %p %h") == ["the user", "the database"]


def test_size_rotation_zero_is_fine_with_daily_age_rotation() -> None:
    assert log.sql_log_rotation_size(pg(log_rotation_size="0")) == []
    assert log.sql_log_rotation_size(pg(log_rotation_size="1", log_rotation_age="0")) == []
    lax = log.sql_log_rotation_size(pg(log_rotation_size="0", log_rotation_age="1441"))
    assert len(lax) == 1 and lax[0].endswith("or age-based rotation at least daily")


def test_backend_names_each_parameter() -> None:
    assert log.judge_backend(pg()) == []
    problems = log.judge_backend(pg(post_auth_delay="1", ignore_system_indexes="on"))
    assert len(problems) == 2 and "post_auth_delay is '1'" in problems[1]


def test_captured() -> None:
    assert log.judge_captured(pg(), SELF) == []
    assert log.judge_captured(pg(log_destination="syslog", logging_collector="off"), SELF) == []
    assert log.judge_captured(pg(log_destination="stderr,csvlog"), SELF) == []
    off = log.judge_captured(pg(logging_collector="off"), SELF)
    assert len(off) == 1 and "written by no logging collector" in off[0]
    mixed = log.judge_captured(pg(log_destination="syslog,csvlog", logging_collector="off"), SELF)
    assert len(mixed) == 1 and "csvlog" in mixed[0]
    assert "one or more of" in log.judge_captured(pg(log_destination=""), SELF)[0]
    with pytest.raises(NotApplicable, match="read-only server parameter on Azure"):
        log.judge_captured(pg(logging_collector="off"), AZURE)


def test_provider_fixed_log_files_are_inherited_not_failed() -> None:
    rds = {"data_directory": "/rdsdbdata/db"}
    assert log.judge_file_mode(pg(), SELF) == []
    assert "log_file_mode is '0644'" in log.judge_file_mode(pg(log_file_mode="0644"), SELF)[0]
    with pytest.raises(NotApplicable, match="fixed by RDS/Aurora"):
        log.judge_file_mode(pg(log_file_mode="0644", **rds), SELF)
    assert log.judge_file_mode(pg(log_file_mode="0600", **rds), SELF) == []
    with pytest.raises(NotApplicable, match="fixed by RDS/Aurora"):
        log.judge_truncate(pg(log_truncate_on_rotation="off", **rds), SELF)
    with pytest.raises(NotApplicable, match="read-only server parameter on Azure"):
        log.judge_truncate(pg(log_truncate_on_rotation="off"), AZURE)
    # log_file_mode is 0600 and read-only on Azure: a self-managed 0644 behind an Azure
    # section still fails (Azure cannot be the reason).
    assert log.judge_file_mode(pg(log_file_mode="0644"), AZURE)
    with pytest.raises(Unreachable):  # data_directory unreadable: could not check, never a guess
        log.judge_file_mode(pg(hidden=("data_directory",), log_file_mode="0644"), SELF)


def aws_inv(group: dict[str, str | None], defaults: dict[str, str | None] | None = None) -> AwsInventory:
    inv = AwsInventory("us-east-1", "https://rds.us-east-1.amazonaws.com")
    inv.primary = {"DBInstanceIdentifier": "db1", "DBParameterGroups": [{"DBParameterGroupName": "g"}]}
    inv.parameters = {"g": group}
    inv.parameter_sources = {"g": {k: "user" for k in group}}
    inv.parameter_families = {"g": "postgres15"}
    if defaults is not None:
        inv.engine_defaults = {"postgres15": defaults}
    return inv


def test_aws_rule_boundaries_and_postgresql_defaults() -> None:
    assert log.aws_statement(aws_inv({"log_statement": "ddl"}), TH) == []
    bad = log.aws_statement(aws_inv({"log_statement": "none"}), TH)
    assert bad == ["parameter group g (used by db-instance db1): log_statement is 'none'; the spec "
                   "wants ddl, mod or all (CIS 3.1.25)"]
    # Set nowhere (RDS lists it without a ParameterValue): PostgreSQL's own default runs.
    assert log.aws_min_messages(aws_inv({"log_min_messages": None}, {}), TH) == []
    unset = log.aws_error_verbosity(aws_inv({"log_error_verbosity": None}, {}), TH)
    assert "PostgreSQL's default" in unset[0] and "'default'" in unset[0]
    assert log.aws_hostname(aws_inv({"log_hostname": "0"}), TH) == []
    assert log.aws_hostname(aws_inv({"log_hostname": "1"}), TH)
    assert log.aws_replication_commands(aws_inv({"log_replication_commands": "1"}), TH) == []
    assert log.aws_replication_commands(aws_inv({"log_replication_commands": "0"}), TH)
    assert log.aws_pretty_print(aws_inv({"debug_pretty_print": "0"}), TH)
    # Engine defaults unreadable (moto): unknown, never a guessed pass.
    with pytest.raises(CannotVerify, match="engine default"):
        log.aws_debug_plan(aws_inv({}), TH)
    with pytest.raises(CannotVerify, match="no DB instance"):
        log.aws_statement(AwsInventory("us-east-1", "https://rds.us-east-1.amazonaws.com"), TH)


def az_inv(**params: str) -> AzureInventory:
    inv = AzureInventory("https://management.azure.com", "/subscriptions/s/x/flexibleServers/srv")
    inv.server = {"name": "srv"}
    inv.parameters = dict(params)
    return inv


def test_azure_rule_boundaries() -> None:
    assert log.azure_statement(az_inv(log_statement="ddl"), TH) == []
    assert log.azure_statement(az_inv(log_statement="none"), TH) == [
        "flexible server srv: log_statement is 'none'; the spec wants ddl, mod or all (CIS 3.1.25)"]
    assert log.azure_line_prefix(az_inv(log_line_prefix="%t-%c-"), TH)  # Azure's default
    assert log.azure_line_prefix(az_inv(log_line_prefix="%t:%h:%u@%d:[%p]:"), TH) == []
    with pytest.raises(CannotVerify, match="log_min_messages not reported"):
        log.azure_min_messages(az_inv(), TH)
