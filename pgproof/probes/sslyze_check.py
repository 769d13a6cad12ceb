"""Second opinion on accepted TLS versions and cipher suites, from sslyze (an independent TLS stack: nassl).

Used by tests to show our raw probe agrees with a recognised scanner. sslyze
takes ~6 s per endpoint, so several endpoints are scanned in one ``Scanner``
run (concurrently). Only the cipher-suite commands are run: the default full
scan errors on servers that ask for a client certificate. None of these
commands takes extra arguments, so ``ScanCommandsExtraArguments`` stays empty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sslyze import (
    ProtocolWithOpportunisticTlsEnum,
    ScanCommand,
    ScanCommandAttemptStatusEnum,
    ScanCommandsExtraArguments,
    Scanner,
    ServerConnectivityStatusEnum,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerScanRequest,
)

from pgproof.probes.tls_ciphers import SCANNED_VERSIONS, CipherOutcome, CipherScan, classes_of
from pgproof.tunnel import dial
from pgproof.verdict import CannotVerify, Unreachable

# sslyze result attribute -> version name as in pgproof.probes.tls.TLS_VERSIONS
_COMMANDS: dict[ScanCommand, tuple[str, str]] = {
    ScanCommand.SSL_2_0_CIPHER_SUITES: ("ssl_2_0_cipher_suites", "SSLv2"),
    ScanCommand.SSL_3_0_CIPHER_SUITES: ("ssl_3_0_cipher_suites", "SSLv3"),
    ScanCommand.TLS_1_0_CIPHER_SUITES: ("tls_1_0_cipher_suites", "TLSv1"),
    ScanCommand.TLS_1_1_CIPHER_SUITES: ("tls_1_1_cipher_suites", "TLSv1.1"),
    ScanCommand.TLS_1_2_CIPHER_SUITES: ("tls_1_2_cipher_suites", "TLSv1.2"),
    ScanCommand.TLS_1_3_CIPHER_SUITES: ("tls_1_3_cipher_suites", "TLSv1.3"),
}


class Suites(NamedTuple):
    accepted: set[str]  # OpenSSL names
    rejected: set[str]  # tried and refused; a suite in neither set was not tried by sslyze


def accepted_suites_many(endpoints: Sequence[tuple[str, int]], timeout: int = 5
                         ) -> dict[tuple[str, int], dict[str, Suites]]:
    """Accepted and rejected cipher suites per version per ``(host, port)``, scanned concurrently.

    sslyze offers suites from its own legacy OpenSSL too (RC4, EXPORT, DES, 3DES),
    which is what makes it a second opinion on the classes our client cannot offer.
    It does not try every suite (measured: not ADH-CAMELLIA*-SHA256), hence ``rejected``.
    """
    requests: list[ServerScanRequest] = []
    asked: dict[tuple[str, int], tuple[str, int]] = {}  # the address scanned -> the endpoint
    for host, port in endpoints:
        addr, via_port = dial(host, port)  # the bastion's forward if ``postgres.via``
        asked[(host, via_port)] = (host, port)
        req = ServerScanRequest(
            server_location=ServerNetworkLocation(
                hostname=host, port=via_port, ip_address=addr if addr != host else None),
            network_configuration=ServerNetworkConfiguration(
                tls_server_name_indication=host,
                tls_opportunistic_encryption=ProtocolWithOpportunisticTlsEnum.POSTGRES,
                network_timeout=timeout, network_max_retries=1,
            ),
            scan_commands=set(_COMMANDS),
            scan_commands_extra_arguments=ScanCommandsExtraArguments(),
        )
        requests.append(req)
    scanner = Scanner(concurrent_server_scans_limit=max(1, len(requests)))
    scanner.queue_scans(requests)
    found: dict[tuple[str, int], dict[str, Suites]] = {}
    for result in scanner.get_results():
        loc = result.server_location
        where = asked.get((loc.hostname, loc.port), (loc.hostname, loc.port))
        label = f"{where[0]}:{where[1]}"
        if result.connectivity_status is not ServerConnectivityStatusEnum.COMPLETED:
            trace = result.connectivity_error_trace
            raise Unreachable(f"sslyze could not reach {label}: {trace or 'no detail'}")
        if result.scan_result is None:
            raise CannotVerify(f"sslyze did not complete its scan of {label}")
        per_version: dict[str, Suites] = {}
        for attr, version in _COMMANDS.values():
            attempt = getattr(result.scan_result, attr)
            if attempt.status is not ScanCommandAttemptStatusEnum.COMPLETED:
                raise CannotVerify(f"sslyze {attr} on {label} failed: {attempt.error_reason}: "
                                   f"{attempt.error_trace}")
            per_version[version] = Suites(
                {a.cipher_suite.openssl_name for a in attempt.result.accepted_cipher_suites},
                {r.cipher_suite.openssl_name for r in attempt.result.rejected_cipher_suites})
        found[where] = per_version
    return found


def accepted_versions_many(endpoints: Sequence[tuple[str, int]], timeout: int = 5
                           ) -> dict[tuple[str, int], set[str]]:
    """Accepted protocol versions per ``(host, port)``, scanned concurrently."""
    return {where: {v for v, suites in per.items() if suites.accepted}
            for where, per in accepted_suites_many(endpoints, timeout).items()}


def accepted_versions(host: str, port: int, timeout: int = 5) -> set[str]:
    """Accepted protocol versions of one endpoint (SSLv2 and SSLv3 included)."""
    return accepted_versions_many([(host, port)], timeout)[(host, port)]


def weak_suite_disagreements(scan: CipherScan, scanned: dict[str, Suites]
                             ) -> dict[str, tuple[set[str], set[str]]]:
    """Per version, the weak suites on which our scan and sslyze disagree: (ours, theirs).

    Compared on the suites sslyze tried. A weak suite sslyze accepted that our
    client cannot offer agrees only if one of its classes is reported not probed.
    """
    diff = {}
    for v in SCANNED_VERSIONS:
        tried = scanned[v].accepted | scanned[v].rejected
        ours = scan.accepted(v) & tried
        theirs = {s for s in scanned[v].accepted if classes_of(s)}
        offered = {s for r in scan.results if r.version == v for s in r.offered}
        beyond = theirs - offered
        unprobed = {r.weak_class for r in scan.results
                    if r.version == v and r.outcome is CipherOutcome.NOT_PROBED}
        if ours != theirs - beyond or any(not classes_of(s) & unprobed for s in beyond):
            diff[v] = (ours, theirs)
    return diff
