"""A hand-built ClientHello, the way scanners (testssl.sh, sslyze's nassl) prove a suite refused.

Python's OpenSSL cannot put suites it has removed (EXPORT, RC4, DES, 3DES ...)
into a ClientHello, so we write the record ourselves after PostgreSQL's
SSLRequest/``S`` and read only the server's first answer: a ServerHello means
it picked one of the offered suites (accepted; we close at once, nothing
else is sent), an alert that refuses a negotiation means refused, anything
else is inconclusive. Observe-only: no key exchange, no login.

An alert that blames the message itself (decode_error, illegal_parameter,
unexpected_message ...) says our bytes were wrong, not that the suites are
refused, so it is inconclusive too.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pgproof.probes.tls_wire import SSL_REQUEST, NoTls, connect, recv_exact

WIRE_VERSION = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303}
VERSION_NAME = {v: k for k, v in WIRE_VERSION.items()} | {0x0300: "SSLv3", 0x0304: "TLSv1.3"}
RENEGOTIATION_SCSV = 0x00FF  # RFC 5746: stands for the renegotiation_info extension
ALERTS = {
    0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow",
    30: "decompression_failure", 40: "handshake_failure", 42: "bad_certificate",
    47: "illegal_parameter", 49: "access_denied", 50: "decode_error", 51: "decrypt_error",
    60: "export_restriction", 70: "protocol_version", 71: "insufficient_security",
    80: "internal_error", 86: "inappropriate_fallback", 90: "user_canceled",
    109: "missing_extension", 110: "unsupported_extension", 112: "unrecognized_name",
}
# Alerts with which a server declines to negotiate what was offered: proof of refusal.
# internal_error is what OpenSSL servers send when nothing configured fits the offer
# (e.g. TLS 1.0 offered at SECLEVEL 1), and Python's ssl path counts it as refused too.
REFUSING_ALERTS = frozenset({40, 70, 71, 80})
# x25519, secp256r1, secp384r1, secp521r1, x448: ECDHE and ECDH suites need one of them.
_GROUPS = (0x001D, 0x0017, 0x0018, 0x0019, 0x001E)
# TLS 1.2 signature_algorithms: ECDSA, EdDSA, RSA-PSS, PKCS#1 and DSA, SHA-2 then SHA-1, so a
# server with any certificate (RSA, EC, DSA) can sign with something we listed.
_SIGALGS = (0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080A,
            0x080B, 0x0401, 0x0501, 0x0601, 0x0402, 0x0502, 0x0602, 0x0303, 0x0301, 0x0302,
            0x0203, 0x0201, 0x0202)
_MAX_HELLO_BYTES = 1 << 16


class HelloOutcome(StrEnum):
    ACCEPTED = "accepted"  # ServerHello: the server picked one of the offered suites
    REFUSED = "refused"  # an alert declining the negotiation
    INCONCLUSIVE = "inconclusive"  # another alert, or bytes that are not a TLS answer
    ERROR = "error"  # closed without a word, timed out


@dataclass(frozen=True)
class HelloReply:
    outcome: HelloOutcome
    suite: int | None = None  # the suite the server picked
    version: str = ""  # the version of its ServerHello
    alert: str = ""  # alert description, e.g. handshake_failure
    detail: str = ""


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack("!HH", kind, len(body)) + body


def _u16_list(values: Sequence[int]) -> bytes:
    return struct.pack(f"!H{len(values)}H", 2 * len(values), *values)


def _is_hostname(name: str | None) -> bool:
    """RFC 6066: server_name carries a DNS name, never an IP literal."""
    if not name:
        return False
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return True
    return False


def client_hello(version: str, suites: Sequence[int], server_name: str | None = None) -> bytes:
    """One TLS record holding a ClientHello at ``version`` offering exactly ``suites``.

    Extensions a modern server needs before it will choose: server_name (when
    there is a hostname), supported_groups and ec_point_formats (ECDHE/ECDH),
    signature_algorithms (TLS 1.2 only, RFC 5246 7.4.1.4.1); renegotiation_info
    as the SCSV suite. The record layer says TLS 1.0, as clients do.
    """
    if not suites:
        raise ValueError("a ClientHello needs at least one cipher suite")
    exts = b""
    if _is_hostname(server_name):
        host = server_name.encode("idna")  # type: ignore[union-attr]
        entry = b"\x00" + struct.pack("!H", len(host)) + host
        exts += _ext(0x0000, struct.pack("!H", len(entry)) + entry)
    exts += _ext(0x000A, _u16_list(_GROUPS))
    exts += _ext(0x000B, b"\x01\x00")  # uncompressed points
    if version == "TLSv1.2":
        exts += _ext(0x000D, _u16_list(_SIGALGS))
    body = struct.pack("!H", WIRE_VERSION[version]) + os.urandom(32) + b"\x00"  # no session id
    body += _u16_list([*suites, RENEGOTIATION_SCSV]) + b"\x01\x00"  # null compression only
    body += struct.pack("!H", len(exts)) + exts
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack("!BHH", 22, 0x0301, len(handshake)) + handshake


def _read_record(sock: socket.socket) -> tuple[int, int, bytes]:
    kind, rec_version, length = struct.unpack("!BHH", recv_exact(sock, 5))
    if kind not in (20, 21, 22, 23) or rec_version >> 8 != 3 or length > 18432:
        raise ValueError(f"not a TLS record (type {kind}, version {rec_version:#06x}, "
                         f"length {length})")
    return kind, rec_version, recv_exact(sock, length)


def read_reply(sock: socket.socket) -> HelloReply:
    """The server's first answer to our ClientHello (ServerHello, alert, or something else)."""
    try:
        kind, _, data = _read_record(sock)
        if kind == 21:
            if len(data) < 2:
                return HelloReply(HelloOutcome.INCONCLUSIVE, detail=f"short alert {data!r}")
            desc = data[1]
            name = ALERTS.get(desc, f"alert {desc}")
            refused = desc in REFUSING_ALERTS
            return HelloReply(HelloOutcome.REFUSED if refused else HelloOutcome.INCONCLUSIVE,
                              alert=name, detail="" if refused else
                              f"the server rejected our ClientHello itself (alert {name})")
        if kind != 22:
            return HelloReply(HelloOutcome.INCONCLUSIVE, detail=f"record type {kind} first")
        while len(data) < 4 or len(data) < 4 + int.from_bytes(data[1:4], "big"):
            if len(data) > _MAX_HELLO_BYTES:
                raise ValueError("handshake message too long")
            more_kind, _, more = _read_record(sock)
            if more_kind != 22:
                raise ValueError(f"record type {more_kind} inside the first handshake message")
            data += more
        if data[0] != 2:
            return HelloReply(HelloOutcome.INCONCLUSIVE, detail=f"handshake type {data[0]} first")
        return _server_hello(data[4:4 + int.from_bytes(data[1:4], "big")])
    except (ConnectionError, TimeoutError) as exc:
        return HelloReply(HelloOutcome.ERROR, detail=f"no answer to our ClientHello: {exc}")
    except (ValueError, struct.error) as exc:
        return HelloReply(HelloOutcome.INCONCLUSIVE, detail=f"not a TLS answer: {exc}")


def _server_hello(body: bytes) -> HelloReply:
    if len(body) < 35 or len(body) < 37 + body[34]:
        raise ValueError("truncated ServerHello")
    version = int.from_bytes(body[0:2], "big")
    sid_len = body[34]
    suite = int.from_bytes(body[35 + sid_len:37 + sid_len], "big")
    return HelloReply(HelloOutcome.ACCEPTED, suite=suite,
                      version=VERSION_NAME.get(version, f"{version:#06x}"))


def hello(host: str, port: int, version: str, suites: Sequence[int],
          server_name: str | None = None, timeout: float = 3.0,
          payload: bytes | None = None) -> HelloReply:
    """SSLRequest, our ClientHello (or ``payload``), the first answer; then close.

    Raises ``ConnectFailed`` if unreachable and ``NoTls`` if the server answers N.
    """
    sock = connect(host, port, timeout)
    try:
        sock.sendall(SSL_REQUEST)
        answer = recv_exact(sock, 1)
        if answer == b"N":
            raise NoTls("server answered N to SSLRequest: TLS is not enabled")
        if answer != b"S":
            return HelloReply(HelloOutcome.INCONCLUSIVE,
                              detail=f"answered {answer!r} to SSLRequest: not a PostgreSQL server?")
        sock.sendall(payload if payload is not None else client_hello(version, suites, server_name))
        return read_reply(sock)
    except (ConnectionError, TimeoutError) as exc:
        return HelloReply(HelloOutcome.ERROR, detail=f"{type(exc).__name__}: {exc}")
    finally:
        sock.close()
