"""The requirements of the frameworks pgproof maps to, so a report can be read by requirement.

Each framework lists the requirements an auditor asks about for a managed PostgreSQL
database, including those no control covers (the framework report says "not covered by
pgproof" for them, instead of staying silent). Where every ID comes from:

- HIPAA: the Security Rule, 45 CFR Part 164 Subpart C (164.308 administrative and
  164.312 technical safeguards), as codified in the eCFR.
- CIS: the CIS PostgreSQL 17 Benchmark v1.0.0, all 71 recommendations with their numbers,
  titles, Automated/Manual assessment and profile level (all Level 1). pgdsat 2.0 follows
  the same numbering but adds checks of its own, marked "(*)" there (1.4.3, 4.10, 5.7-5.12,
  ...): they are not CIS and are not listed. Where pgdsat reuses a number for another topic
  (its 6.9 pgcrypto/pgsodium, 6.11 anonymizer) the number here means the benchmark's item
  (6.9 TLSv1.3, 6.11 pgcrypto). v1.1.0 (2026) renumbers some items; this list is v1.0.0.
- FSBP: AWS Security Hub control IDs that the AWS Foundational Security Best Practices
  standard lists (awsdocs/aws-security-hub-user-guide, fsbp-standard.md and the per-service
  control pages as of 2023-03-19, commit bda5bf7). Controls that exist in Security Hub but
  belong only to other standards there (KMS.4, S3.7, S3.14, RDS.26, CloudWatch.15) are not cited,
  nor is S3.4 (bucket default encryption): its current FSBP status was not confirmed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Recommendation:
    """What a benchmark says about one of its requirements besides the title."""

    assessment: Literal["Automated", "Manual"]  # CIS: can a tool decide it, or a person only
    level: int  # profile level (1 or 2)
    profile: str = "PostgreSQL"  # "PostgreSQL" or "PostgreSQL on Linux"


@dataclass(frozen=True)
class Framework:
    key: str
    name: str
    version: str
    source: str
    pattern: re.Pattern[str]  # what a well-formed requirement ID looks like
    requirements: dict[str, str]  # ID -> title, in the framework's own order
    # Per requirement, where the framework says it (CIS): assessment and profile level.
    recommendations: dict[str, Recommendation] = field(default_factory=dict)
    sections: dict[str, str] = field(default_factory=dict)  # section number -> heading

    def section_of(self, rid: str) -> str:
        """The top-level section a requirement sits in (``"3.1.22"`` -> ``"3"``)."""
        return rid.split(".")[0]


HIPAA = Framework(
    "hipaa", "HIPAA Security Rule", "45 CFR 164 Subpart C",
    "45 CFR 164.308 (administrative) and 164.312 (technical safeguards), eCFR",
    re.compile(r"^164\.(308|310|312|314|316)\([a-z]\)(\(\d+\))?(\((i|ii|iii|iv|v|vi)\))?(\([A-H]\))?$"),
    {
        "164.308(a)(1)(ii)(A)": "Risk analysis",
        "164.308(a)(1)(ii)(B)": "Risk management",
        "164.308(a)(1)(ii)(D)": "Information system activity review",
        "164.308(a)(4)(i)": "Information access management",
        "164.308(a)(5)(ii)(B)": "Protection from malicious software",
        "164.308(a)(5)(ii)(C)": "Log-in monitoring",
        "164.308(a)(5)(ii)(D)": "Password management",
        "164.308(a)(6)(i)": "Security incident procedures",
        "164.308(a)(6)(ii)": "Response and reporting",
        "164.308(a)(7)(i)": "Contingency plan",
        "164.308(a)(7)(ii)(A)": "Data backup plan",
        "164.308(a)(7)(ii)(B)": "Disaster recovery plan",
        "164.308(a)(7)(ii)(C)": "Emergency mode operation plan",
        "164.308(a)(7)(ii)(D)": "Testing and revision procedures",
        "164.308(a)(7)(ii)(E)": "Applications and data criticality analysis",
        "164.308(a)(8)": "Evaluation",
        "164.312(a)(1)": "Access control",
        "164.312(a)(2)(i)": "Unique user identification",
        "164.312(a)(2)(ii)": "Emergency access procedure",
        "164.312(a)(2)(iii)": "Automatic logoff",
        "164.312(a)(2)(iv)": "Encryption and decryption (at rest)",
        "164.312(b)": "Audit controls",
        "164.312(c)(1)": "Integrity",
        "164.312(c)(2)": "Mechanism to authenticate electronic protected health information",
        "164.312(d)": "Person or entity authentication",
        "164.312(e)(1)": "Transmission security",
        "164.312(e)(2)(i)": "Integrity controls (in transit)",
        "164.312(e)(2)(ii)": "Encryption (in transit)",
    })

# CIS PostgreSQL 17 Benchmark v1.0.0, every recommendation: (number, assessment, profile level,
# LINUX when the profile is "Level 1 - PostgreSQL on Linux", title). Transcribed from the public
# JSON copy anupyadav27/lab raw_cis_compliance_database/database/postgresql/
# CIS_POSTGRESQL_17_BENCHMARK_V1.0.0.json (commit ec00ff8); 71 recommendations, 43 Automated.
# Every one is Level 1: the benchmark (15, 16 and 17 alike) has no Level 2 item.
A, M, LINUX = "Automated", "Manual", "PostgreSQL on Linux"
_CIS17: tuple[tuple[object, ...], ...] = (
        ("1.1", M, 1, LINUX, "Ensure packages are obtained from authorized repositories"),
        ("1.2", M, 1, "Install only required packages"),
        ("1.3", A, 1, LINUX, "Ensure systemd Service Files Are Enabled"),
        ("1.4", A, 1, LINUX, "Ensure Data Cluster Initialized Successfully"),
        ("1.5", M, 1, "Ensure the Latest Security Patches are Applied"),
        ("1.6", A, 1, "Verify That 'PGPASSWORD' is Not Set in Users' Profiles"),
        ("1.7", A, 1, "Verify That the 'PGPASSWORD' Environment Variable is Not in Use"),
        ("2.1", M, 1, LINUX, "Ensure the file permissions mask is correct"),
        ("2.2", A, 1, "Ensure extension directory has appropriate ownership and permissions"),
        ("2.3", A, 1, "Disable PostgreSQL Command History"),
        ("2.4", M, 1, "Ensure Passwords are Not Stored in the service file"),
        ("3.1.2", A, 1, "Ensure the log destinations are set correctly"),
        ("3.1.3", A, 1, "Ensure the logging collector is enabled"),
        ("3.1.4", A, 1, "Ensure the log file destination directory is set correctly"),
        ("3.1.5", A, 1, "Ensure the filename pattern for log files is set correctly"),
        ("3.1.6", A, 1, "Ensure the log file permissions are set correctly"),
        ("3.1.7", A, 1, "Ensure 'log_truncate_on_rotation' is enabled"),
        ("3.1.8", A, 1, "Ensure the maximum log file lifetime is set correctly"),
        ("3.1.9", A, 1, "Ensure the maximum log file size is set correctly"),
        ("3.1.10", M, 1, "Ensure the correct syslog facility is selected"),
        ("3.1.11", A, 1, "Ensure syslog messages are not suppressed"),
        ("3.1.12", A, 1, "Ensure syslog messages are not lost due to size"),
        ("3.1.13", A, 1, "Ensure the program name for PostgreSQL syslog messages are correct"),
        ("3.1.14", A, 1, "Ensure the correct messages are written to the server log"),
        ("3.1.15", A, 1, "Ensure the correct SQL statements generating errors are recorded"),
        ("3.1.16", A, 1, "Ensure 'debug_print_parse' is disabled"),
        ("3.1.17", A, 1, "Ensure 'debug_print_rewritten' is disabled"),
        ("3.1.18", A, 1, "Ensure 'debug_print_plan' is disabled"),
        ("3.1.19", A, 1, "Ensure 'debug_pretty_print' is enabled"),
        ("3.1.20", A, 1, "Ensure 'log_connections' is enabled"),
        ("3.1.21", A, 1, "Ensure 'log_disconnections' is enabled"),
        ("3.1.22", A, 1, "Ensure 'log_error_verbosity' is set correctly"),
        ("3.1.23", A, 1, "Ensure 'log_hostname' is set correctly"),
        ("3.1.24", A, 1, "Ensure 'log_line_prefix' is set correctly"),
        ("3.1.25", A, 1, "Ensure 'log_statement' is set correctly"),
        ("3.1.26", A, 1, "Ensure 'log_timezone' is set correctly"),
        ("3.2", A, 1, "Ensure the PostgreSQL Audit Extension (pgAudit) is enabled"),
        ("4.1", M, 1, "Ensure Interactive Login is Disabled"),
        ("4.2", M, 1, LINUX, "Ensure sudo is configured correctly"),
        ("4.3", M, 1, "Ensure excessive administrative privileges are revoked"),
        ("4.4", M, 1, "Lock Out Accounts if Not Currently in Use"),
        ("4.5", A, 1, "Ensure excessive function privileges are revoked"),
        ("4.6", M, 1, "Ensure excessive DML privileges are revoked"),
        ("4.7", M, 1, "Ensure Row Level Security (RLS) is configured correctly"),
        ("4.8", A, 1, "Ensure the set_user extension is installed"),
        ("4.9", M, 1, "Make use of predefined roles"),
        ("5.1", M, 1, "Do Not Specify Passwords in the Command Line"),
        ("5.2", M, 1, "Ensure PostgreSQL is Bound to an IP Address"),
        ("5.3", M, 1, LINUX, "Ensure login via 'local' UNIX Domain Socket is configured correctly"),
        ("5.4", M, 1, LINUX, "Ensure login via 'host' TCP/IP Socket is configured correctly"),
        ("5.5", A, 1, "Ensure per-account connection limits are used"),
        ("5.6", M, 1, "Ensure Password Complexity is configured"),
        ("6.1", M, 1, "Understanding attack vectors and runtime parameters"),
        ("6.2", A, 1, "Ensure 'backend' runtime parameters are configured correctly"),
        ("6.3", M, 1, "Ensure 'Postmaster' Runtime Parameters are Configured"),
        ("6.4", M, 1, "Ensure 'SIGHUP' Runtime Parameters are Configured"),
        ("6.5", M, 1, "Ensure 'Superuser' Runtime Parameters are Configured"),
        ("6.6", M, 1, "Ensure 'User' Runtime Parameters are Configured"),
        ("6.7", A, 1, LINUX, "Ensure FIPS 140-2 OpenSSL Cryptography Is Used"),
        ("6.8", A, 1, "Ensure TLS is enabled and configured correctly"),
        ("6.9", A, 1, "Ensure that TLSv1.3, or later, is configured"),
        ("6.10", A, 1, "Ensure Weak SSL/TLS Ciphers Are Disabled"),
        ("6.11", A, 1, "Ensure the pgcrypto extension is installed and configured correctly"),
        ("7.1", M, 1, "Ensure a replication-only user is created and used for streaming replication"),
        ("7.2", A, 1, "Ensure logging of replication commands is configured"),
        ("7.3", M, 1, "Ensure base backups are configured and functional"),
        ("7.4", A, 1, LINUX, "Ensure WAL archiving is configured and functional"),
        ("7.5", M, 1, "Ensure streaming replication parameters are configured correctly"),
        ("8.1", M, 1, "Ensure PostgreSQL subdirectory locations are outside the data cluster"),
        ("8.2", A, 1, LINUX, "Ensure the backup and restore tool, 'pgBackRest', is installed and configured"),
        ("8.3", M, 1, "Ensure miscellaneous configuration settings are correct"),
)
CIS_SECTIONS = {  # the benchmark's section headings (pgdsat 2.0 Labels.pm uses the same)
    "1": "Installation and Patches", "2": "Directory and File Permissions",
    "3": "Logging Monitoring and Auditing", "3.1": "PostgreSQL Logging",
    "4": "User Access and Authorization", "5": "Connection and Login",
    "6": "PostgreSQL Settings", "7": "Replication", "8": "Special Configuration Considerations",
}


def _cis(rows: tuple[tuple[object, ...], ...]) -> tuple[dict[str, str], dict[str, Recommendation]]:
    titles: dict[str, str] = {}
    recs: dict[str, Recommendation] = {}
    for row in rows:
        rid, assessment, level = str(row[0]), str(row[1]), int(str(row[2]))
        profile = str(row[3]) if len(row) == 5 else "PostgreSQL"
        titles[rid] = str(row[-1])
        recs[rid] = Recommendation(assessment, level, profile)  # type: ignore[arg-type]
    return titles, recs


_CIS_TITLES, _CIS_RECS = _cis(_CIS17)

CIS = Framework(
    "cis", "CIS PostgreSQL 17 Benchmark", "v1.0.0",
    "CIS PostgreSQL 17 Benchmark v1.0.0 (as transcribed in anupyadav27/lab, "
    "raw_cis_compliance_database/database/postgresql/CIS_POSTGRESQL_17_BENCHMARK_V1.0.0.json, "
    "commit ec00ff8); pgdsat 2.0's own extra checks (marked (*) there) are not CIS and not listed",
    re.compile(r"^[1-8](\.\d{1,2}){1,2}$"),
    _CIS_TITLES, _CIS_RECS, CIS_SECTIONS)

FSBP = Framework(
    "fsbp", "AWS Foundational Security Best Practices", "Security Hub FSBP (controls as of 2023-03)",
    "awsdocs/aws-security-hub-user-guide (commit bda5bf7): fsbp-standard.md, *-controls.md",
    re.compile(r"^(RDS|S3|KMS|SecretsManager|EC2|CloudWatch|Backup)\.\d{1,3}$"),
    {
        "RDS.1": "RDS snapshot should be private",
        "RDS.2": "RDS DB instances should prohibit public access (PubliclyAccessible)",
        "RDS.3": "RDS DB instances should have encryption at-rest enabled",
        "RDS.4": "RDS cluster snapshots and database snapshots should be encrypted at rest",
        "RDS.5": "RDS DB instances should be configured with multiple Availability Zones",
        "RDS.6": "Enhanced monitoring should be configured for RDS DB instances",
        "RDS.7": "RDS clusters should have deletion protection enabled",
        "RDS.8": "RDS DB instances should have deletion protection enabled",
        "RDS.9": "Database logging should be enabled",
        "RDS.10": "IAM authentication should be configured for RDS instances",
        "RDS.11": "RDS instances should have automatic backups enabled",
        "RDS.13": "RDS automatic minor version upgrades should be enabled",
        "RDS.18": "RDS instances should be deployed in a VPC",
        "RDS.23": "RDS instances should not use a database engine default port",
        "RDS.25": "RDS database instances should use a custom administrator username",
        "S3.1": "S3 Block Public Access setting should be enabled",
        "S3.5": "S3 buckets should require requests to use Secure Socket Layer",
        "S3.8": "S3 Block Public Access setting should be enabled at the bucket-level",
        "S3.13": "S3 buckets should have lifecycle policies configured",
        "KMS.3": "AWS KMS keys should not be deleted unintentionally",
        "SecretsManager.1": "Secrets Manager secrets should have automatic rotation enabled",
        "SecretsManager.4": "Secrets Manager secrets should be rotated within a specified "
                            "number of days",
        "EC2.18": "Security groups should only allow unrestricted incoming traffic for "
                  "authorized ports",
        "EC2.19": "Security groups should not allow unrestricted access to ports with high risk",
    })

FRAMEWORK_DEFS: dict[str, Framework] = {f.key: f for f in (HIPAA, CIS, FSBP)}
