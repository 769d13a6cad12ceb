"""The requirements of the frameworks pgproof maps to, so a report can be read by requirement.

Each framework lists the requirements an auditor asks about for a managed PostgreSQL
database, including those no control covers (the framework report says "not covered by
pgproof" for them, instead of staying silent). Where every ID comes from:

- HIPAA: the Security Rule, 45 CFR Part 164 Subpart C (164.308 administrative and
  164.312 technical safeguards), as codified in the eCFR.
- CIS: CIS PostgreSQL 17 Benchmark section numbers as pgdsat 2.0 implements them
  (HexaCluster/pgdsat, commit 227c8bb, lib/PGDSAT/Labels.pm, en_US); pgdsat's own extra
  checks, marked "(*)" there (e.g. 1.4.5, 5.8, 5.12), are not CIS and are not cited.
- FSBP: AWS Security Hub control IDs that the AWS Foundational Security Best Practices
  standard lists (awsdocs/aws-security-hub-user-guide, fsbp-standard.md and the per-service
  control pages as of 2023-03-19, commit bda5bf7). Controls that exist in Security Hub but
  belong only to other standards there (KMS.4, S3.7, S3.14, RDS.26, CloudWatch.15) are not cited,
  nor is S3.4 (bucket default encryption): its current FSBP status was not confirmed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Framework:
    key: str
    name: str
    version: str
    source: str
    pattern: re.Pattern[str]  # what a well-formed requirement ID looks like
    requirements: dict[str, str]  # ID -> title, in the framework's own order


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

CIS = Framework(
    "cis", "CIS PostgreSQL 17 Benchmark", "PostgreSQL 17 (section numbers as in pgdsat 2.0)",
    "HexaCluster/pgdsat 2.0 (commit 227c8bb), lib/PGDSAT/Labels.pm; pgdsat-only checks excluded",
    re.compile(r"^[1-8](\.\d{1,2}){1,2}$"),
    {
        "1.3": "Ensure systemd Service Files Are Enabled",
        "1.5": "Ensure PostgreSQL versions are up-to-date",
        "1.6": "Verify That 'PGPASSWORD' is Not Set in Users' Profiles",
        "1.7": "Verify That the 'PGPASSWORD' Environment Variable is Not in Use",
        "2.1": "Ensure the file permissions mask is correct",
        "2.2": "Ensure extension directory has appropriate ownership and permissions",
        "2.3": "Disable PostgreSQL Command History",
        "2.4": "Ensure Passwords are Not Stored in the service file",
        "3.1.2": "Ensure the log destinations are set correctly",
        "3.1.20": "Ensure 'log_connections' is enabled",
        "3.1.21": "Ensure 'log_disconnections' is enabled",
        "3.1.25": "Ensure 'log_statement' is set correctly",
        "3.2": "Ensure the PostgreSQL Audit Extension (pgAudit) is enabled",
        "4.3": "Ensure excessive administrative privileges are revoked",
        "4.4": "Lock out accounts if not currently in use",
        "4.7": "Ensure Row Level Security (RLS) is configured correctly",
        "4.10": "Ensure the public schema is protected",
        "5.4": "Ensure login via 'host' TCP/IP socket is configured correctly",
        "5.5": "Ensure per-account connection limits are used",
        "5.6": "Ensure password complexity is configured",
        "6.7": "Ensure FIPS 140-2 OpenSSL cryptography is used",
        "6.8": "Ensure TLS is enabled and configured correctly",
        "6.10": "Ensure weak SSL/TLS ciphers are disabled",
        "7.1": "Ensure a replication-only user is created and used for streaming replication",
        "7.3": "Ensure base backups are configured and functional",
        "7.4": "Ensure WAL archiving is configured and functional",
        "7.5": "Ensure streaming replication parameters are configured correctly",
        "8.2": "Ensure the backup and restore tool, 'pgBackRest', is installed and configured",
    })

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
