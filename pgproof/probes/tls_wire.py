"""PostgreSQL's in-band TLS on the wire: SSLRequest, one handshake, and what a failure means.

Shared by the version/certificate probe (``tls``) and the weak-suite scan
(``tls_ciphers``). PostgreSQL answers SSLRequest with ``S``/``N`` before any
TLS byte, so every handshake opens its own connection. Only a server alert
(``TLSV1_ALERT_*``/``SSLV3_ALERT_*``) proves a refusal; any other client-side failure is inconclusive.
"""

from __future__ import annotations

import socket
import ssl
import struct
import warnings
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pgproof.tunnel import dial

# Spelled as PostgreSQL's ssl_min_protocol_version spells them, oldest first.
TLS_VERSIONS: tuple[str, ...] = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
SSL_VERSION = {
    "TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
HAS_VERSION = {"TLSv1": ssl.HAS_TLSv1, "TLSv1.1": ssl.HAS_TLSv1_1,
               "TLSv1.2": ssl.HAS_TLSv1_2, "TLSv1.3": ssl.HAS_TLSv1_3}
SSL_REQUEST = struct.pack("!ii", 8, 80877103)
SERVER_ALERT_PREFIXES = ("TLSV1_ALERT", "SSLV3_ALERT")


class VersionOutcome(StrEnum):
    ACCEPTED = "accepted"
    REFUSED = "refused"  # the server sent an alert: proof it will not speak this version
    INCONCLUSIVE = "inconclusive"  # our client could not offer it; says nothing about the server
    ERROR = "error"  # network failure, EOF without alert, TLS not enabled


class ConnectFailed(Exception):
    """TCP connect failed: the endpoint is unreachable, not non-compliant."""


class NoTls(Exception):
    """The server answered N to SSLRequest."""


@dataclass
class Handshake:
    version: str
    cipher: str
    cipher_bits: int
    chain_der: list[bytes]
    verified_der: list[bytes]


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """TCP to the endpoint (through the bastion's forward if ``postgres.via``; SNI stays ``host``)."""
    try:
        return socket.create_connection(dial(host, port), timeout=timeout)
    except OSError as exc:
        raise ConnectFailed(f"{host}:{port}: {exc.strerror or exc}") from exc


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"server closed the connection after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def tls_handshake(host: str, port: int, ctx: ssl.SSLContext, sni: str | None,
                  timeout: float) -> Handshake:
    """SSLRequest, then a TLS handshake with ``ctx``; raises on failure."""
    sock = connect(host, port, timeout)
    try:
        sock.sendall(SSL_REQUEST)
        answer = recv_exact(sock, 1)
        if answer == b"N":
            raise NoTls("server answered N to SSLRequest: TLS is not enabled")
        if answer != b"S":
            raise ConnectionError(f"answered {answer!r} to SSLRequest: not a PostgreSQL server?")
        with ctx.wrap_socket(sock, server_hostname=sni) as tls:
            name, _proto, bits = tls.cipher() or ("", "", 0)
            obj: Any = tls._sslobj  # type: ignore[attr-defined]  # private until 3.13's public get_*_chain
            leaf = tls.getpeercert(binary_form=True)
            chain = _der_list(getattr(obj, "get_unverified_chain", lambda: None)()) or (
                [leaf] if leaf else [])
            verified = _der_list(getattr(obj, "get_verified_chain", lambda: None)())
            return Handshake(tls.version() or "", name, bits, chain, verified)
    finally:
        sock.close()


def _der_list(certs: Any) -> list[bytes]:
    return [c.public_bytes(ssl._ssl.ENCODING_DER) for c in certs or ()]  # type: ignore[attr-defined]


def pinned_context(version: str, ciphers: str | None = "ALL:@SECLEVEL=0") -> ssl.SSLContext:
    """Unverified, pinned to one version; legacy versions need SECLEVEL=0 to be offered at all.

    ``ciphers`` is an OpenSSL cipher string for TLS <= 1.2 (TLS 1.3 suites are
    configured separately and all are strong); it raises ``ssl.SSLError`` when
    this client's OpenSSL has none of them.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():  # TLSVersion.TLSv1/1_1 are deprecated: we probe them on purpose
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = SSL_VERSION[version]
        ctx.maximum_version = SSL_VERSION[version]
    if version != "TLSv1.3" and ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def classify_failure(exc: BaseException) -> tuple[VersionOutcome, str]:
    """What a failed handshake proves: only a server alert is a refusal."""
    if isinstance(exc, NoTls):
        return VersionOutcome.ERROR, str(exc)
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return VersionOutcome.ERROR, f"connection closed without an alert: {exc}"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or str(exc)
        if reason.startswith(SERVER_ALERT_PREFIXES):
            return VersionOutcome.REFUSED, reason
        return VersionOutcome.INCONCLUSIVE, f"our client failed: {exc}"
    return VersionOutcome.ERROR, f"{type(exc).__name__}: {exc}"
