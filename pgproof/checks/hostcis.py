"""Judges for the CIS PostgreSQL recommendations that live on a self-managed database host.

Pure functions of the facts ``pgproof.probes.hostcis`` reads (and of the SQL layer for data
checksums). Where several hosts are judged, any problem fails the check; otherwise a host
that could not show the fact makes it ``CannotVerify``, never a guessed pass.
"""

from __future__ import annotations

from pgproof.probes.hostcis import HostCisFacts
from pgproof.probes.postgres import PostgresFacts
from pgproof.verdict import CannotVerify


def _verdict(problems: list[str], unknown: list[str]) -> list[str]:
    if not problems and unknown:
        raise CannotVerify("; ".join(unknown))
    return problems


def judge_service(facts: list[HostCisFacts]) -> list[str]:
    """CIS 1.3: the unit that starts the database (Patroni's, where it supervises) is enabled."""
    problems, unknown = [], []
    for f in facts:
        if f.unit_state is None:
            unknown.append(f"{f.host}: whether {f.unit} starts at boot is unknown: {f.unit_note}")
        elif f.unit_state != "enabled":
            problems.append(f"{f.host}: systemd unit {f.unit} is {f.unit_state}; the database "
                            "must start at boot (systemctl enable it)")
    return _verdict(problems, unknown)


def judge_credentials(facts: list[HostCisFacts]) -> list[str]:
    """CIS 1.6, 1.7, 2.3, 2.4: no cleartext database password in profiles, process
    environments, connection service files or psql history."""
    problems, unknown = [], []
    for f in facts:
        problems += [f"{f.host}: {w} sets PGPASSWORD in a login profile" for w in f.profile_hits]
        problems += [f"{f.host}: process {p} has PGPASSWORD in its environment"
                     for p in f.env_hits]
        problems += [f"{f.host}: {w} stores a password in a connection service file"
                     for w in f.service_hits]
        problems += [f"{f.host}: psql history {h} keeps typed commands (link it to /dev/null)"
                     for h in f.histories]
        if f.env_unreadable:
            unknown.append(f"{f.host}: {f.env_unreadable} processes' environments could not be "
                           "read (run the host probe as root)")
    return _verdict(problems, unknown)


# Tools that set umask 0000 on themselves by design and give every file an explicit mode:
# pgBackRest's neutral-umask (default y; repository and restored files 0640, directories
# 0750). A backup or archive-push running during the scan is not the account's umask.
NEUTRAL_UMASK = frozenset({"pgbackrest"})


def judge_private_files(facts: list[HostCisFacts]) -> list[str]:
    """CIS 2.1: the database account's processes create private files (umask 077), and the
    hba file is the account's own, unreadable by others (0600 or 0640)."""
    problems, unknown = [], []
    for f in facts:
        if not f.umasks:
            unknown.append(f"{f.host}: no process of OS user {f.os_user} was found"
                           + (f" whose command line contains {f.scope}" if f.scope else ""))
        problems += [f"{f.host}: process {who} of {f.os_user} runs with umask {m:04o}; files "
                     "it creates must be private (umask 0077)"
                     for who, m in sorted(f.umasks.items())
                     if m & 0o077 != 0o077 and who.split(" ", 1)[-1] not in NEUTRAL_UMASK]
        if f.hba_file is None:
            unknown.append(f"{f.host}: the hba file's path is unknown (GRANT pg_read_all_settings "
                           "to the auditor role, or set hba_file= in the host URL)")
        elif f.hba_mode is None:
            unknown.append(f"{f.host}: hba file {f.hba_file} was not found there")
        else:
            if f.hba_mode & 0o037:
                problems.append(f"{f.host}: hba file {f.hba_file} has mode {f.hba_mode:04o}; at "
                                "most 0640 (no group write, nothing for others)")
            if f.hba_owner != f.os_user:
                problems.append(f"{f.host}: hba file {f.hba_file} is owned by {f.hba_owner}, not "
                                f"the database account {f.os_user}")
    return _verdict(problems, unknown)


def judge_extension_dir(facts: list[HostCisFacts]) -> list[str]:
    """CIS 2.2: the extension directory is root:root and writable by root alone (0755)."""
    problems, unknown = [], []
    for f in facts:
        if f.ext_dir is None:
            unknown.append(f"{f.host}: pg_config did not answer, so the extension directory is "
                           "unknown (set pg_bin= in the host URL)")
        elif f.ext_mode is None:
            unknown.append(f"{f.host}: extension directory {f.ext_dir} was not found there")
        else:
            if (f.ext_owner, f.ext_group) != ("root", "root"):
                problems.append(f"{f.host}: extension directory {f.ext_dir} is owned by "
                                f"{f.ext_owner}:{f.ext_group}; it must be root:root")
            if f.ext_mode & 0o022:
                problems.append(f"{f.host}: extension directory {f.ext_dir} has mode "
                                f"{f.ext_mode:04o}; only root may write it (0755)")
    return _verdict(problems, unknown)


def judge_fips(facts: list[HostCisFacts]) -> list[str]:
    """CIS 6.7: the kernel runs in FIPS mode and OpenSSL has its FIPS provider active."""
    problems, unknown = [], []
    for f in facts:
        if f.fips_kernel != "1":
            problems.append(f"{f.host}: the kernel is not in FIPS mode "
                            f"(/proc/sys/crypto/fips_enabled {f.fips_kernel or 'absent'})")
        if f.openssl_providers is None:
            unknown.append(f"{f.host}: no openssl command to list the active providers")
        elif "fips" not in f.openssl_providers.lower():
            problems.append(f"{f.host}: OpenSSL has no FIPS provider active "
                            "(openssl list -providers)")
    return _verdict(problems, unknown)


def judge_checksums(pg: PostgresFacts) -> list[str]:
    """Data checksums on (pgdsat 1.4.3; not a CIS recommendation): silent corruption is seen."""
    value = pg.settings.get("data_checksums")
    if value is None:
        raise CannotVerify("data_checksums is not visible to the auditor role")
    return [] if value == "on" else [f"data_checksums is {value}; pages carry no checksum, so "
                                      "silent corruption goes unnoticed (initdb --data-checksums "
                                      "or pg_checksums --enable on a stopped node)"]


def judge_initialized(facts: list[HostCisFacts], pg: PostgresFacts) -> list[str]:
    """CIS 1.4: each host's data directory was initialised for this server (its PG_VERSION is
    the running major version, what postgresql-check-db-dir verifies) and is owned by the
    database account, never root."""
    num = pg.settings.get("server_version_num", "")
    if not num.isdigit():
        raise CannotVerify(f"{pg.endpoint}: the server reports no server_version_num")
    major = str(int(num) // 10000)
    problems: list[str] = []
    unknown: list[str] = []
    for f in facts:
        if not f.pgdata:
            unknown.append(f"{f.host}: no data directory to look at (set pgdata= in the host URL)")
            continue
        if f.pgdata_owner is None or f.pg_version_file is None:
            unknown.append(f"{f.host}: {f.pgdata} or its PG_VERSION is not readable from this "
                           "account")
            continue
        if f.pg_version_file != major:
            problems.append(f"{f.host}: {f.pgdata}/PG_VERSION says {f.pg_version_file}, the "
                            f"server runs {major}; the spec wants a data directory initialised "
                            "(initdb) for the running major version (CIS 1.4)")
        if f.pgdata_owner != f.os_user:
            problems.append(f"{f.host}: {f.pgdata} is owned by {f.pgdata_owner}, not the database "
                            f"account {f.os_user}; the spec wants it owned by the account that "
                            "initialised it (CIS 1.4)")
    return _verdict(problems, unknown)
