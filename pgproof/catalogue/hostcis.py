"""HOST-1..HOST-6: the CIS PostgreSQL 17 recommendations that live on a self-managed database
host (the ``host`` layer over testinfra), and data checksums (SQL, every platform).

On RDS, Aurora and Azure the customer has no host to inspect: those platforms show the host
controls as ``inherited``, quoting the provider's documentation. The data directory's own
mode (pgdsat 2.7) is ENC-1's host check and is not repeated here.
"""

from __future__ import annotations

from typing import Any

from pgproof.catalogue.build import PASSWORDS, check, control, inherited
from pgproof.catalogue.model import Applies, Platform

_RDS = ("Amazon's documentation (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/"
        "Appendix.PostgreSQL.CommonDBATasks.Roles.rds_superuser.html): \"RDS for PostgreSQL is "
        "a managed service, so you can't access the host OS, nor connect using the PostgreSQL "
        "superuser account.\"")
_AURORA = ("Amazon's documentation (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/"
           "Appendix.PostgreSQL.CommonDBATasks.Roles.rds_superuser.html): \"the most highly "
           "privileged database user on your Aurora PostgreSQL DB cluster\" is created "
           "\"NOSUPERUSER\": the cluster's hosts are Amazon's, with nothing for the customer to "
           "inspect.")
_AZURE = ("Microsoft's documentation (https://learn.microsoft.com/en-us/training/modules/"
          "secure-azure-database-for-postgresql/3-describe-built-server-roles): \"Azure Database "
          "for PostgreSQL is a managed PaaS service and only Microsoft users have the azuresu "
          "(super user) role.\"")
PROVIDER_HOST: dict[Platform, Applies] = {
    "rds": inherited(_RDS), "aurora": inherited(_AURORA), "azure": inherited(_AZURE)}


def _hosts(facts: list[Any], what: Any) -> str:
    return "; ".join(f"{f.host}: {what(f)}" for f in facts)


def _service(facts: list[Any]) -> str:
    return _hosts(facts, lambda f: f"{f.unit} {f.unit_state}")


def _credentials(facts: list[Any]) -> str:
    return _hosts(facts, lambda f: f"{f.processes} processes"
                  + (f" (command line contains {f.scope})" if f.scope else "")
                  + f", homes {', '.join(f.homes)}: no PGPASSWORD, service-file password or "
                    "psql history")


def _private(facts: list[Any]) -> str:
    return _hosts(facts, lambda f: f"{len(f.umasks)} processes of {f.os_user} with umask 0077; "
                  f"{f.hba_file} {f.hba_mode:04o} {f.hba_owner}")


def _extdir(facts: list[Any]) -> str:
    return _hosts(facts, lambda f: f"{f.ext_dir} {f.ext_mode:04o} {f.ext_owner}:{f.ext_group}")


def _initialized(facts: list[Any], pg: Any) -> str:
    return _hosts(facts, lambda f: f"{f.pgdata} owned by {f.pgdata_owner}, PG_VERSION "
                  f"{f.pg_version_file} (server_version_num {pg.settings.get('server_version_num')})")


def _fips(facts: list[Any]) -> str:
    return _hosts(facts, lambda f: f"fips_enabled {f.fips_kernel}, OpenSSL FIPS provider active")


CONTROLS = (
    control(
        "HOST-1", "Database service starts at boot",
        "The systemd unit that starts the database is enabled (Patroni's unit where Patroni "
        "supervises PostgreSQL; the host URL names it as unit=).",
        "systemctl enable <unit> (with Patroni: enable patroni and leave postgresql disabled).",
        severity="low", cis=("1.3",), hipaa=("164.308(a)(7)(ii)(C)",),
        platforms=PROVIDER_HOST,
        checks=(check("host", "hostcis:judge_service", "host_cis_facts", evidence=_service),)),
    control(
        "HOST-2", "No database passwords left on the host",
        "No login profile sets PGPASSWORD, no process has it in its environment, no "
        "connection service file holds a password, and no psql history keeps typed commands.",
        "Use a 0600 ~/.pgpass or a client certificate instead of PGPASSWORD; remove password= "
        "from pg_service.conf; ln -sf /dev/null ~/.psql_history for every account.",
        severity="high", cis=("1.6", "1.7", "2.3", "2.4"), hipaa=PASSWORDS,
        platforms=PROVIDER_HOST,
        checks=(check("host", "hostcis:judge_credentials", "host_cis_facts",
                      evidence=_credentials),)),
    control(
        "HOST-3", "Database account creates private files",
        "Every process of the database OS account runs with umask 0077 (pgBackRest, which sets "
        "umask 0000 on itself and an explicit mode on every file, excepted), and the hba file is "
        "owned by that account with mode 0600 or 0640.",
        "Set umask 077 in the account's profile and in the service that starts its processes; "
        "chown postgres and chmod 0600 the hba file.",
        severity="medium", cis=("2.1",), hipaa=("164.312(a)(1)",), platforms=PROVIDER_HOST,
        checks=(check("host", "hostcis:judge_private_files", "host_cis_facts",
                      evidence=_private, settings="hba_file data_directory"),)),
    control(
        "HOST-4", "Extension directory writable by root only",
        "The server's extension directory ($(pg_config --sharedir)/extension) is owned by "
        "root:root and not writable by group or others.",
        "chown root:root and chmod 0755 the extension directory.",
        severity="high", cis=("2.2",), hipaa=("164.308(a)(5)(ii)(B)",), platforms=PROVIDER_HOST,
        checks=(check("host", "hostcis:judge_extension_dir", "host_cis_facts",
                      evidence=_extdir),)),
    control(
        "HOST-5", "FIPS-validated cryptography",
        "The database host's kernel runs in FIPS mode and OpenSSL's FIPS provider is active.",
        "Enable FIPS mode on the host (fips-mode-setup --enable, or the distribution's FIPS "
        "kernel and OpenSSL FIPS provider) and reboot.",
        severity="medium", cis=("6.7",), hipaa=("164.312(e)(2)(ii)", "164.312(a)(2)(iv)"),
        platforms=PROVIDER_HOST,
        checks=(check("host", "hostcis:judge_fips", "host_cis_facts", evidence=_fips),)),
    control(
        "HOST-6", "Data cluster initialised, with checksums",
        "The cluster was initialised with data checksums (SHOW data_checksums is on), so "
        "silent page corruption is detected (CIS 1.4 initialises with -k; pgdsat 1.4.3), and, "
        "on a self-managed host, its data directory was initialised for the running major "
        "version (PG_VERSION) and is owned by the database account (CIS 1.4).",
        "initdb --data-checksums for new clusters (Patroni: bootstrap.initdb: [data-checksums]); "
        "pg_checksums --enable on each stopped node of an existing one. A PG_VERSION that is not "
        "the server's major version: the data directory belongs to another installation; "
        "chown -R <account> a data directory owned by someone else.",
        severity="medium", hipaa=("164.312(c)(1)",), cis=("1.4",),
        checks=(check("sql", "hostcis:judge_checksums", "pg_facts",
                      evidence=lambda pg: "data_checksums on", settings="data_checksums"),
                check("host", "hostcis:judge_initialized", "host_cis_facts", "pg_facts",
                      settings="server_version_num", evidence=_initialized))),
)
